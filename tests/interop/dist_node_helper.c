/*
 * dist_node_helper.c - a C node built on the public API (ambitious.h,
 * node.h; the queue stats of src/dist/dist.h for two checks), driven by
 * tests/interop/dist_node.escript from a real Erlang node:
 *
 *   dist_node_helper NAME COOKIE [--long] [--visible] [--tick MS]
 *                    [--connect NODE] [--epmd PORT]
 *                    [--tls-cert FILE [--tls-key FILE] [--tls-ca FILE]]
 *
 * It starts node NAME (short names unless --long; TLS distribution with
 * --tls-cert, node.h's tls_* options), prints "READY <node>" once up
 * (after pinging NODE first with --connect, printing "CONNECT pong" or
 * "CONNECT pang": the C node then is the initiator of the first
 * connection), and serves:
 *
 *   cnode:add, raise, die, sleep and wait (amb_rpc_register), for
 *   rpc:call, erpc:call and spawns from erl;
 *   agent  (registered) {From, Ref, Cmd} -> From ! {Ref, Result}:
 *     {erpc, Node, M, F, Args, Ms}  amb_erpc_call: {CodeName, Result}
 *     {spawn_request, Node, M, F, Args, Link, Monitor}  ok; a requester
 *                           (trapping exits) sends From {requested, Self,
 *                           ReqId}, then {requester, Self, Msg} for each
 *                           message it gets
 *     {spawn, Name, Trap}   a worker (registered as Name unless none,
 *                           trapping exits if Trap): {ok, Pid}. A worker
 *                           answers {P, Msg} with P ! {echo, self(), Msg},
 *                           ends on {die, Reason}, does {link, P},
 *                           {unlink, P}, {monitor, Target} (replying
 *                           {monitored, Ref}) and {exit, P, R} for its
 *                           creator, and forwards every {'EXIT', ...} and
 *                           {'DOWN', ...} it gets to its creator as
 *                           {worker, self(), Msg}
 *     {call, Server, Req}   gen_server call: {ok, Reply} | {error, Code, R}
 *     {cast, Server, Msg}   ok
 *     {send, To, Msg}       ok (To: a pid, a name, {Name, Node})
 *     {ping, Node}          pong | pang
 *     {nodes, Which}        visible | hidden | connected: the list
 *     {monitor_node, Node}  ok; {nodedown, Node} is forwarded to From
 *     {disconnect, Node}    ok | not_connected
 *     {blob, N}             a binary of N bytes (byte i = i mod 251)
 *     {blobs, To, N, K}     K processes at once send To {blob, I, Blob}
 *                           (I = 1..K, Blob as {blob, N}): their fragment
 *                           sequences interleave on the wire; ok
 *     {peak_sequences, Node}  the most fragmented messages Node had in
 *                           flight to us at once (dist.h's stats)
 *     {cached_messages, Node}  messages from Node whose header used the
 *                           atom cache (dist.h's stats)
 *     {fair, To, N, K}      one process sends To {bulk, Blob} (N bytes, far
 *                           above the send budget) and waits in its send;
 *                           once it waits, another sends To {small, I} for
 *                           I = 1..K: {ok, StillWaiting} when those sends
 *                           returned (StillWaiting: the bulk sender still
 *                           waited then), {error, never_waited}
 *     stop                  stops the node, then everything ends
 *   cgs    (registered) a gen_server: {echo, X} -> {ok_from_c, X};
 *          {add, A, B} -> A + B; anything else -> {unknown, Req}
 *
 * Every Result is sent back through distribution, so each check of the
 * escript crosses the wire both ways.
 */
#include <ambitious.h>
#include <stdio.h>

#include "dist/dist.h" /* the queues' stats (fair, peak_sequences) */
#include <stdlib.h>
#include <string.h>

static const char *opt_name, *opt_cookie, *opt_connect;
static amb_node_opts node_opts;

/* ---- workers ------------------------------------------------------------- */

/* The worker's first message: {Creator, Trap, Agent}; it answers the agent
 * `ready` once it traps exits (if asked), so no signal finds it half set
 * up. */
static void worker(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid creator, agent_pid;
    amb_term trap;
    if (amb_receive_match(self, AMB_INFINITY, NULL, "{~p,~w,~p}", &creator, &trap,
                          &agent_pid) != 0)
        return;
    amb_trap_exit(self, trap == AMB_ATOM_TRUE);
    amb_heap *h = amb_proc_heap(self);
    /* A pid of another node is a box in the message, which the next
     * receive frees: the worker keeps a copy. */
    amb_term_copy(h, creator, &creator);
    amb_heap_mark top = amb_heap_save(h);
    amb_send(self, agent_pid, amb_atom("ready"));
    for (;;) {
        amb_heap_rewind(h, top);
        amb_term m, a, b;
        if (amb_receive(self, AMB_INFINITY, &m) != 0)
            return;
        if (amb_match(m, "{die,~w}", &a) == 0)
            amb_exit_self(self, a);
        if (amb_match(m, "{link,~w}", &a) == 0) {
            int rc = amb_link(self, a);
            amb_send(self, creator, AMB_TUPLE(h, amb_atom("linked"), amb_int(h, rc)));
        } else if (amb_match(m, "{unlink,~w}", &a) == 0) {
            amb_unlink(self, a);
            amb_send(self, creator, amb_atom("unlinked"));
        } else if (amb_match(m, "{monitor,~w}", &a) == 0) {
            amb_term ref = AMB_NONE;
            int rc = amb_monitor(self, a, &ref);
            amb_send(self, creator,
                     AMB_TUPLE(h, amb_atom("monitored"), rc == 0 ? ref : amb_int(h, rc)));
        } else if (amb_match(m, "{exit,~w,~w}", &a, &b) == 0) {
            amb_exit(self, a, b);
        } else if (amb_is_record(m, AMB_ATOM_EXIT, 3) ||
                   amb_is_record(m, AMB_ATOM_DOWN, 5)) {
            amb_send(self, creator, AMB_TUPLE(h, amb_atom("worker"), amb_self(self), m));
        } else if (amb_match(m, "{~p,~w}", &a, &b) == 0) {
            amb_send(self, a, AMB_TUPLE(h, amb_atom("echo"), amb_self(self), b));
        }
    }
}

/* ---- the gen_server --------------------------------------------------------- */

static amb_gen_ret cgs_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)state, (void)from;
    amb_heap *h = amb_proc_heap(self);
    amb_term x;
    int a, b;
    if (amb_match(req, "{echo,~w}", &x) == 0)
        return amb_gen_reply(AMB_TUPLE(h, amb_atom("ok_from_c"), x));
    if (amb_match(req, "{add,~i,~i}", &a, &b) == 0)
        return amb_gen_reply(amb_int(h, a + b));
    return amb_gen_reply(AMB_TUPLE(h, amb_atom("unknown"), req));
}
static const amb_gen_server cgs = {.name = "cgs", .handle_call = cgs_call};

/* ---- functions other nodes call (amb_rpc_register) ----------------------- */

/* cnode:add(A, B, ...): the sum. */
static amb_rpc_class rpc_add(amb_proc *self, void *ctx, amb_term args, amb_term *value)
{
    (void)ctx;
    int64_t sum = 0, x;
    for (amb_term l = args; amb_is_cons(l); l = amb_list_tail(l)) {
        if (amb_int_get(amb_list_head(l), &x) != 0) {
            *value = amb_atom("badarith");
            return AMB_RPC_ERROR;
        }
        sum += x;
    }
    *value = amb_int(amb_proc_heap(self), sum);
    return AMB_RPC_RETURN;
}

/* cnode:raise(Class, Reason): raises Reason as Class (throw, exit, error). */
static amb_rpc_class rpc_raise(amb_proc *self, void *ctx, amb_term args, amb_term *value)
{
    (void)self, (void)ctx;
    amb_term cls;
    if (amb_match(args, "[~w,~w]", &cls, value) != 0)
        return AMB_RPC_ERROR;
    return cls == amb_atom("throw")  ? AMB_RPC_THROW
           : cls == amb_atom("exit") ? AMB_RPC_EXIT
                                     : AMB_RPC_ERROR;
}

/* cnode:die(Reason): its process ends with Reason (an exit by signal to
 * the caller). */
static amb_rpc_class rpc_die(amb_proc *self, void *ctx, amb_term args, amb_term *value)
{
    (void)ctx, (void)value;
    amb_exit_self(self, amb_list_head(args));
}

/* cnode:sleep(Ms): returns slept after Ms. */
static amb_rpc_class rpc_sleep(amb_proc *self, void *ctx, amb_term args, amb_term *value)
{
    (void)ctx;
    int64_t ms = 0;
    amb_match(args, "[~l]", &ms);
    amb_sleep(self, ms);
    *value = amb_atom("slept");
    return AMB_RPC_RETURN;
}

/* cnode:wait(Pid): tells Pid {ready, self()}, then ends as {die, R} says
 * (R = normal returns). */
static amb_rpc_class rpc_wait(amb_proc *self, void *ctx, amb_term args, amb_term *value)
{
    (void)ctx;
    amb_heap *h = amb_proc_heap(self);
    amb_pid to;
    if (amb_match(args, "[~p]", &to) == 0)
        amb_send(self, to, AMB_TUPLE(h, amb_atom("ready"), amb_self(self)));
    amb_term r;
    if (amb_receive_match(self, AMB_INFINITY, NULL, "{die,~w}", &r) != 0)
        return AMB_RPC_ERROR;
    if (r == AMB_ATOM_NORMAL) {
        *value = AMB_ATOM_OK;
        return AMB_RPC_RETURN;
    }
    amb_exit_self(self, r); /* an exit by signal, to a caller */
}

/* A process that asks for a spawn and passes every message it gets on to
 * its creator (trapping exits, so a linked process's end is a message):
 * first message {Creator, Node, M, F, Args, Link, Monitor}. */
static void requester(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid creator;
    amb_term node, mod, fun, args, link, mon, m;
    if (amb_receive_match(self, AMB_INFINITY, &m, "{~p,~w,~w,~w,~w,~w,~w}", &creator,
                          &node, &mod, &fun, &args, &link, &mon) != 0)
        return;
    amb_heap *h = amb_proc_heap(self);
    amb_term_copy(h, m, &m);
    amb_match(m, "{~p,~w,~w,~w,~w,~w,~w}", &creator, &node, &mod, &fun, &args, &link,
              &mon);
    amb_trap_exit(self, true);
    amb_spawn_request_opts so = {.link = link == AMB_ATOM_TRUE,
                                 .monitor = mon == AMB_ATOM_TRUE};
    amb_term req;
    int rc = amb_spawn_request(self, node, amb_atom_name(mod, NULL),
                               amb_atom_name(fun, NULL), args, &so, &req);
    amb_send(self, creator,
             rc == 0 ? AMB_TUPLE(h, amb_atom("requested"), amb_self(self), req)
                     : AMB_TUPLE(h, AMB_ATOM_ERROR, amb_atom(amb_err_name(rc))));
    amb_heap_mark top = amb_heap_save(h);
    for (;;) {
        amb_heap_rewind(h, top);
        if (amb_receive(self, AMB_INFINITY, &m) != 0)
            return;
        amb_send(self, creator, AMB_TUPLE(h, amb_atom("requester"), amb_self(self), m));
    }
}

/* ---- the agent ------------------------------------------------------------ */

/* First message {From, Node, Agent}: monitors Node, tells the agent it is
 * ready, then passes {nodedown, Node} on to From. */
static void node_watcher(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid from, agent_pid;
    amb_term node, m;
    if (amb_receive_match(self, AMB_INFINITY, NULL, "{~p,~w,~p}", &from, &node,
                          &agent_pid) != 0)
        return;
    amb_term_copy(amb_proc_heap(self), from, &from); /* outlives the message */
    amb_monitor_node(self, node, true);
    amb_send(self, agent_pid, amb_atom("ready"));
    if (amb_receive_match(self, AMB_INFINITY, &m, "{nodedown,_}") == 0)
        amb_send(self, from, m);
}

static amb_term blob(amb_heap *h, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i % 251);
    amb_term t = amb_binary(h, b, n);
    free(b);
    return t;
}

/* {To, Msg}: sends Msg to To, then tells the agent `sent` (blobs, fair). */
static void sender(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term m, to, msg, agent_pid;
    if (amb_receive(self, AMB_INFINITY, &m) != 0 ||
        amb_match(m, "{~w,~w,~p}", &to, &msg, &agent_pid) != 0)
        return;
    amb_term list;
    if (amb_match(msg, "{'$many',~w}", &list) == 0) {
        for (; amb_is_cons(list); list = amb_list_tail(list))
            amb_send(self, to, amb_list_head(list));
    } else {
        amb_send(self, to, msg);
    }
    amb_send(self, agent_pid,
             AMB_TUPLE(amb_proc_heap(self), amb_atom("sent"), amb_self(self)));
}

/* Starts a sender of msg to `to`; its pid. */
static amb_pid start_sender(amb_proc *self, amb_term to, amb_term msg)
{
    amb_pid p = AMB_NONE;
    amb_spawn(self, sender, NULL, &p);
    amb_send(self, p, AMB_TUPLE(amb_proc_heap(self), to, msg, amb_self(self)));
    return p;
}

/* Whether pid waits over the budget on the connection to node; its bytes
 * queued in *bytes (internal: the stats of src/dist/dist.h). */
static bool sender_waits(amb_proc *self, amb_term node, amb_pid pid, size_t *bytes)
{
    amb__conn_stats st;
    *bytes = 0;
    amb__dist *d = amb__dist_of(amb_proc_rt(self));
    return d != NULL && amb__conn_stats_of(d, node, pid, &st, bytes) == 0 &&
           st.waiting > 0 && *bytes > 0;
}

static amb_term fair(amb_proc *self, amb_term to, size_t n, int64_t k)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term node;
    if (amb_pid_get(to, &node, NULL, NULL, NULL) != 0)
        return AMB_ATOM_ERROR;
    amb_pid bulk = start_sender(self, to, AMB_TUPLE(h, amb_atom("bulk"), blob(h, n)));
    size_t bytes;
    int64_t until = amb_now_ms() + 20000;
    while (!sender_waits(self, node, bulk, &bytes) || bytes < n / 2) {
        if (amb_now_ms() > until)
            return AMB_TUPLE(h, AMB_ATOM_ERROR, amb_atom("never_waited"));
        amb_sleep(self, 1);
    }
    amb_term smalls = AMB_NIL;
    for (int64_t i = k; i >= 1; i--)
        smalls = amb_cons(h, AMB_TUPLE(h, amb_atom("small"), AMB_SMALL(i)), smalls);
    /* One process sends them all: a list of messages, sent in order. */
    amb_pid small = AMB_NONE;
    amb_spawn(self, sender, NULL, &small);
    amb_send(self, small,
             AMB_TUPLE(h, to, AMB_TUPLE(h, amb_atom("$many"), smalls), amb_self(self)));
    amb_term m;
    amb_receive_match(self, 20000, &m, "{sent,~p}", &(amb_pid){0});
    bool still = sender_waits(self, node, bulk, &bytes);
    return AMB_TUPLE(h, AMB_ATOM_OK, amb_bool(still));
}

static amb_term command(amb_proc *self, amb_term from, amb_term cmd, bool *stop)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term a, b;
    int64_t n;
    if (cmd == AMB_ATOM_STOP) {
        *stop = true;
        return AMB_ATOM_OK;
    }
    if (amb_match(cmd, "{spawn,~w,~w}", &a, &b) == 0) {
        amb_pid p;
        amb_spawn(self, worker, NULL, &p);
        amb_send(self, p, AMB_TUPLE(h, from, b, amb_self(self)));
        amb_receive_match(self, AMB_INFINITY, NULL, "ready");
        if (amb_is_atom(a) && a != amb_atom("none"))
            amb_register(self, a, p);
        return AMB_TUPLE(h, AMB_ATOM_OK, p);
    }
    if (amb_match(cmd, "{call,~w,~w}", &a, &b) == 0) {
        amb_term reply = AMB_NONE;
        int rc = amb_gen_server_call(self, a, b, 30000, &reply);
        if (rc == 0)
            return AMB_TUPLE(h, AMB_ATOM_OK, reply);
        return AMB_TUPLE(h, AMB_ATOM_ERROR, amb_atom(amb_err_name(rc)),
                         reply != AMB_NONE ? reply : AMB_ATOM_UNDEFINED);
    }
    if (amb_match(cmd, "{cast,~w,~w}", &a, &b) == 0)
        return amb_gen_server_cast(self, a, b) == 0 ? AMB_ATOM_OK : AMB_ATOM_ERROR;
    if (amb_match(cmd, "{send,~w,~w}", &a, &b) == 0)
        return amb_send(self, a, b) == 0 ? AMB_ATOM_OK : AMB_ATOM_ERROR;
    if (amb_match(cmd, "{ping,~w}", &a) == 0)
        return amb_atom(amb_node_ping(self, a) == 0 ? "pong" : "pang");
    if (amb_match(cmd, "{nodes,~w}", &a) == 0) {
        unsigned which = a == amb_atom("hidden")      ? AMB_NODES_HIDDEN
                         : a == amb_atom("connected") ? AMB_NODES_CONNECTED
                                                      : AMB_NODES_VISIBLE;
        amb_term l = AMB_NIL;
        amb_nodes(self, which, &l);
        return l;
    }
    if (amb_match(cmd, "{monitor_node,~w}", &a) == 0) {
        /* A watcher holds the monitor and passes its nodedown on. */
        amb_pid w;
        amb_spawn(self, node_watcher, NULL, &w);
        amb_send(self, w, AMB_TUPLE(h, from, a, amb_self(self)));
        amb_receive_match(self, AMB_INFINITY, NULL, "ready");
        return AMB_ATOM_OK;
    }
    if (amb_match(cmd, "{disconnect,~w}", &a) == 0)
        return amb_disconnect_node(self, a) == 0 ? AMB_ATOM_OK
                                                 : amb_atom("not_connected");
    amb_term c3, c4;
    if (amb_match(cmd, "{erpc,~w,~w,~w,~w,~l}", &a, &b, &c3, &c4, &n) == 0) {
        amb_term res = AMB_ATOM_UNDEFINED;
        int rc = amb_erpc_call(self, a, amb_atom_name(b, NULL), amb_atom_name(c3, NULL),
                               c4, n < 0 ? AMB_INFINITY : n, &res);
        return AMB_TUPLE(h, amb_atom(amb_err_name(rc)), res);
    }
    if (amb_is_record(cmd, amb_atom("spawn_request"), 7)) {
        /* {spawn_request, Node, M, F, Args, Link, Monitor}: a requester
         * asks; its messages go to From. */
        amb_pid p;
        amb_spawn(self, requester, NULL, &p);
        amb_send(self, p,
                 AMB_TUPLE(h, from, amb_tuple_elem(cmd, 1), amb_tuple_elem(cmd, 2),
                           amb_tuple_elem(cmd, 3), amb_tuple_elem(cmd, 4),
                           amb_tuple_elem(cmd, 5), amb_tuple_elem(cmd, 6)));
        return AMB_ATOM_OK;
    }
    if (amb_match(cmd, "{blob,~l}", &n) == 0 && n >= 0)
        return blob(h, (size_t)n);
    int64_t k;
    if (amb_match(cmd, "{blobs,~w,~l,~l}", &a, &n, &k) == 0 && n >= 0 && k >= 1) {
        amb_term bin = blob(h, (size_t)n);
        for (int64_t i = 1; i <= k; i++)
            start_sender(self, a, AMB_TUPLE(h, amb_atom("blob"), AMB_SMALL(i), bin));
        return AMB_ATOM_OK;
    }
    if (amb_match(cmd, "{peak_sequences,~w}", &a) == 0) {
        amb__conn_stats st;
        amb__dist *d = amb__dist_of(amb_proc_rt(self));
        if (d == NULL || amb__conn_stats_of(d, a, AMB_NONE, &st, NULL) != 0)
            return AMB_ATOM_ERROR;
        return amb_uint(h, st.peak_sequences);
    }
    if (amb_match(cmd, "{cached_messages,~w}", &a) == 0) {
        amb__conn_stats st;
        amb__dist *d = amb__dist_of(amb_proc_rt(self));
        if (d == NULL || amb__conn_stats_of(d, a, AMB_NONE, &st, NULL) != 0)
            return AMB_ATOM_ERROR;
        return amb_uint(h, st.cached_messages);
    }
    if (amb_match(cmd, "{fair,~w,~l,~l}", &a, &n, &k) == 0 && n > 0 && k >= 1)
        return fair(self, a, (size_t)n, k);
    return AMB_TUPLE(h, amb_atom("bad_command"), cmd);
}

static void agent(amb_proc *self, void *arg)
{
    (void)arg;
    amb_register(self, amb_atom("agent"), amb_self(self));
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    for (;;) {
        amb_heap_rewind(h, top);
        amb_term m, from, ref, cmd;
        if (amb_receive(self, AMB_INFINITY, &m) != 0)
            return;
        /* A command may receive again (a worker's ready), which frees this
         * message's boxes (the erl pid and ref): the agent keeps a copy. */
        if (amb_term_copy(h, m, &m) != 0 ||
            amb_match(m, "{~p,~w,~w}", &from, &ref, &cmd) != 0)
            continue;
        bool stop = false;
        amb_term r = command(self, from, cmd, &stop);
        amb_send(self, from, AMB_TUPLE(h, ref, r));
        if (stop) {
            amb_node_stop(self);
            amb_rt_halt(amb_proc_rt(self), -1000);
            return;
        }
    }
}

static void main_proc(amb_proc *self, void *arg)
{
    (void)arg;
    int rc = amb_node_start(self, opt_name, &node_opts);
    if (rc != 0) {
        printf("FAILED %s\n", amb_err_name(rc));
        fflush(stdout);
        amb_rt_halt(amb_proc_rt(self), rc);
        return;
    }
    amb_gen_opts go = {.name = amb_atom("cgs")};
    amb_gen_server_start(self, &cgs, NULL, &go, NULL, NULL);
    amb_rpc_register(self, "cnode", "add", rpc_add, NULL);
    amb_rpc_register(self, "cnode", "raise", rpc_raise, NULL);
    amb_rpc_register(self, "cnode", "sleep", rpc_sleep, NULL);
    amb_rpc_register(self, "cnode", "die", rpc_die, NULL);
    amb_rpc_register(self, "cnode", "wait", rpc_wait, NULL);
    amb_spawn(self, agent, NULL, NULL);
    if (opt_connect != NULL)
        printf("CONNECT %s\n",
               amb_node_ping(self, amb_atom(opt_connect)) == 0 ? "pong" : "pang");
    size_t len;
    printf("READY %s\n", amb_atom_name(amb_node(self), &len));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: dist_node_helper NAME COOKIE [options]\n");
        return 2;
    }
    opt_name = argv[1];
    opt_cookie = argv[2];
    node_opts.cookie = strcmp(opt_cookie, "-") == 0 ? NULL : opt_cookie;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--long") == 0)
            node_opts.long_names = true;
        else if (strcmp(argv[i], "--visible") == 0)
            node_opts.visible = true;
        else if (strcmp(argv[i], "--tick") == 0 && i + 1 < argc)
            node_opts.ticktime_ms = atoll(argv[++i]);
        else if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc)
            opt_connect = argv[++i];
        else if (strcmp(argv[i], "--epmd") == 0 && i + 1 < argc)
            node_opts.epmd_port = (uint16_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc)
            node_opts.tls_certfile = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc)
            node_opts.tls_keyfile = argv[++i];
        else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc)
            node_opts.tls_cacertfile = argv[++i];
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = amb_main(NULL, main_proc, NULL);
    return rc == -1000 ? 0 : 1;
}

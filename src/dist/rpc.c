/*
 * rpc.c - calling C functions from other nodes (node.h "rpc and remote
 * spawn"): the registry of functions a C node offers by module and name,
 * the runner process that applies one, the node's `rex` server (rpc's
 * gen_server, which libei's ei_rpc and old callers use), and erpc:call
 * from C (amb_erpc_call, on spawn.c's amb_spawn_request).
 *
 * What OTP 25 sends (rpc.erl and erpc.erl, read, not copied):
 *   - erpc:call and rpc:call (which is erpc:call since OTP 23) send a
 *     SPAWN_REQUEST of erpc:execute_call(Ref, M, F, A) with a monitor; the
 *     new process ends with {Ref, return, V}, {Ref, throw, V}, {Ref, exit,
 *     V} or {Ref, error, V, Stack} and the caller reads its DOWN. So that
 *     is what a runner of kind `call` ends with (spawn.c starts it).
 *   - erpc:cast and multicast spawn erpc:execute_cast(M, F, A).
 *   - rex gets {call, M, F, A, GroupLeader} as a gen_server call, and
 *     {From, {call, ...}} as a plain message (ei_rpc): the answer is the
 *     value, or {badrpc, {'EXIT', Reason}}; {From, features_request} is
 *     answered {features_reply, Node, [erpc]}.
 *
 * Invariants:
 *   - The registry is guarded by the node's lock; a runner copies fn and
 *     ctx out under it and calls fn after unlock (fn may take long).
 *   - A runner learns what to run from its first message (the go
 *     message), sent by whoever spawned it after everything the runner's
 *     caller must see first (spawn.c: the link, the monitor, SPAWN_REPLY).
 *   - A runner of kind `call` ends with erpc's reason without a crash
 *     report (exit/1 of a plain BEAM process logs nothing either); a
 *     spawned function that raises error or throw is logged, as BEAM logs
 *     a process that dies of one.
 */
#include <string.h>

#include "dist.h"

/* ===========================================================================
 * The registry
 * ======================================================================== */

typedef struct rpc_entry {
    amb_term module, function; /* atoms */
    amb_rpc_fn *fn;
    void *ctx;
} rpc_entry;

/* Guarded by the node's lock, every field. */
struct amb__rpc {
    rpc_entry *v;
    size_t len, cap;
    amb_pid rex; /* AMB_NONE until rex runs, or when the name is taken */
};

int amb__rpc_new(amb__dist *d)
{
    d->rpc = amb__calloc(1, sizeof *d->rpc);
    return d->rpc == NULL ? AMB_ENOMEM : 0;
}

void amb__rpc_free(struct amb__rpc *r)
{
    if (r == NULL)
        return;
    amb__free(r->v);
    amb__free(r);
}

/* The index of module:function, or len. Under the lock. */
static size_t find(const struct amb__rpc *r, amb_term module, amb_term function)
{
    size_t i = 0;
    while (i < r->len && (r->v[i].module != module || r->v[i].function != function))
        i++;
    return i;
}

bool amb__rpc_lookup(amb__dist *d, amb_term module, amb_term function, amb_rpc_fn **fn,
                     void **ctx)
{
    pthread_mutex_lock(&d->lock);
    size_t i = find(d->rpc, module, function);
    bool found = i < d->rpc->len;
    if (found) {
        *fn = d->rpc->v[i].fn;
        *ctx = d->rpc->v[i].ctx;
    }
    pthread_mutex_unlock(&d->lock);
    return found;
}

/* The node of self when one runs, after checking the names: 0, or the
 * error of amb_rpc_register. */
static int names(amb_proc *self, const char *module, const char *function, amb__dist **d,
                 amb_term *m, amb_term *f)
{
    if (self == NULL || module == NULL || function == NULL || *module == '\0' ||
        *function == '\0')
        return AMB_EBADARG;
    *d = amb__dist_of(amb_proc_rt(self));
    if (*d == NULL || !amb_is_alive(self))
        return AMB_ENOTSUP;
    *m = amb_atom(module);
    *f = amb_atom(function);
    return *m == AMB_NONE || *f == AMB_NONE ? AMB_EBADARG : 0;
}

int amb_rpc_register(amb_proc *self, const char *module, const char *function,
                     amb_rpc_fn *fn, void *ctx)
{
    amb__dist *d;
    amb_term m, f;
    int rc = names(self, module, function, &d, &m, &f);
    if (rc != 0 || fn == NULL)
        return rc != 0 ? rc : AMB_EBADARG;
    struct amb__rpc *r = d->rpc;
    pthread_mutex_lock(&d->lock);
    size_t i = find(r, m, f);
    if (i == r->len && r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        rpc_entry *v = amb__realloc(r->v, cap * sizeof *v);
        if (v == NULL) {
            pthread_mutex_unlock(&d->lock);
            return AMB_ENOMEM;
        }
        r->v = v;
        r->cap = cap;
    }
    r->v[i] = (rpc_entry){.module = m, .function = f, .fn = fn, .ctx = ctx};
    if (i == r->len)
        r->len++;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

int amb_rpc_unregister(amb_proc *self, const char *module, const char *function)
{
    amb__dist *d;
    amb_term m, f;
    int rc = names(self, module, function, &d, &m, &f);
    if (rc != 0)
        return rc;
    struct amb__rpc *r = d->rpc;
    pthread_mutex_lock(&d->lock);
    size_t i = find(r, m, f);
    bool found = i < r->len;
    if (found)
        r->v[i] = r->v[--r->len];
    pthread_mutex_unlock(&d->lock);
    return found ? 0 : AMB_ENOTFOUND;
}

/* ===========================================================================
 * The runner
 * ======================================================================== */

/* The stack erpc reports for module:function(args): [{M, F, Arity, []}], or,
 * for a function that is not there, [{M, F, Args, []}] as BEAM's undef. */
static amb_term stack_of(amb_heap *h, amb_term m, amb_term f, amb_term args, bool undef)
{
    size_t n = 0;
    for (amb_term l = args; amb_is_cons(l); l = amb_list_tail(l))
        n++;
    amb_term frame = AMB_TUPLE(h, m, f, undef ? args : amb_int(h, (int64_t)n), AMB_NIL);
    return AMB_LIST(h, frame);
}

void amb__rpc_runner(amb_proc *self, void *arg)
{
    amb__dist *d = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_term go, kind, m, f, args, extra;
    if (amb_receive_match(self, AMB_INFINITY, &go, "{'$amb_rpc',~w,~w,~w,~w,~w}", &kind,
                          &m, &f, &args, &extra) != 0)
        return;
    /* The go message's boxes die at the next receive, which fn may make. */
    if (amb_term_copy(h, go, &go) != 0 ||
        amb_match(go, "{'$amb_rpc',~w,~w,~w,~w,~w}", &kind, &m, &f, &args, &extra) != 0)
        amb_exit_self(self, amb_atom("system_limit"));
    amb_rpc_fn *fn;
    void *ctx;
    amb_rpc_class cls;
    amb_term value = AMB_NONE, stack;
    if (amb_is_atom(m) && amb_is_atom(f) && amb__rpc_lookup(d, m, f, &fn, &ctx)) {
        cls = fn(self, ctx, args, &value);
        if ((unsigned)cls > AMB_RPC_ERROR || value == AMB_NONE) {
            /* A result the runner cannot use: error, as a bad return. */
            value = AMB_TUPLE(h, amb_atom("bad_return_value"), amb_int(h, (int64_t)cls));
            cls = AMB_RPC_ERROR;
        }
        stack = stack_of(h, m, f, args, false);
    } else {
        cls = AMB_RPC_ERROR;
        value = amb_atom("undef");
        stack = stack_of(h, m, f, args, true);
    }
    static const char *const names[] = {"return", "throw", "exit", "error"};
    amb_term class_atom = amb_atom(names[cls]);
    if (kind == amb_atom("call")) {
        /* erpc:execute_call: the exit reason is the answer. */
        amb_term reason = cls == AMB_RPC_ERROR
                              ? AMB_TUPLE(h, extra, class_atom, value, stack)
                              : AMB_TUPLE(h, extra, class_atom, value);
        amb__remote_exit_quiet(self,
                               reason != AMB_NONE ? reason : amb_atom("system_limit"));
    }
    if (kind == amb_atom("rex")) {
        /* rex's answer: the value (a throw's too), or {badrpc, {'EXIT', R}}. */
        amb_term reply =
            cls <= AMB_RPC_THROW
                ? value
                : AMB_TUPLE(h, amb_atom("badrpc"),
                            AMB_TUPLE(h, AMB_ATOM_EXIT,
                                      cls == AMB_RPC_EXIT ? value
                                                          : AMB_TUPLE(h, value, stack)));
        amb_pid to;
        if (amb_match(extra, "{rex,~p}", &to) == 0)
            amb_send(self, to, AMB_TUPLE(h, amb_atom("rex"), reply));
        else
            amb_gen_server_reply(self, extra, reply);
        return;
    }
    /* A spawned function (kind apply): ends as a BEAM process would. */
    switch (cls) {
    case AMB_RPC_RETURN:
        return;
    case AMB_RPC_EXIT:
        amb__remote_exit_quiet(self, value);
    case AMB_RPC_THROW:
        amb_exit_self(self,
                      AMB_TUPLE(h, AMB_TUPLE(h, amb_atom("nocatch"), value), stack));
    case AMB_RPC_ERROR:
        amb_exit_self(self, AMB_TUPLE(h, value, stack));
    }
}

/* ===========================================================================
 * rex
 * ======================================================================== */

/* Starts a runner of kind for module:function(args) answering to extra,
 * watched by the calling server: *mref the monitor's reference. */
static int run_watched(amb_proc *self, amb__dist *d, amb_term kind, amb_term m,
                       amb_term f, amb_term args, amb_term extra, amb_term *mref)
{
    amb_spawn_opts so = {.monitor = true, .name = AMB_NONE};
    amb_pid p;
    int rc = amb_spawn_opt(self, amb__rpc_runner, d, &so, &p, mref);
    if (rc != 0)
        return rc;
    amb_heap *h = amb_proc_heap(self);
    return amb_send(self, p, AMB_TUPLE(h, amb_atom("$amb_rpc"), kind, m, f, args, extra));
}

static amb__dist *rex_node(amb_proc *self)
{
    return amb__dist_of(amb_proc_rt(self));
}

static amb_gen_ret rex_init(amb_proc *self, void *state, void *arg)
{
    amb__dist *d = arg;
    /* The node's end (net_kernel's) is rex's. */
    int rc = amb_link(self, d->net_kernel);
    if (rc != 0)
        return amb_gen_fail(rc);
    *(amb_term *)state = amb_map(amb_proc_heap(self), 0, NULL, NULL);
    return amb_gen_ok();
}

/* A call runs in a runner that answers `to` itself; rex remembers it so
 * that a runner that dies before answering is answered for. */
static amb_gen_ret rex_run(amb_proc *self, amb_term *map, amb_term req, amb_term to)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term m, f, args, mref;
    if (amb_match(req, "{_,~w,~w,~w,_}", &m, &f, &args) != 0)
        return amb_gen_noreply();
    if (run_watched(self, rex_node(self), amb_atom("rex"), m, f, args, to, &mref) != 0) {
        amb_term r = AMB_TUPLE(h, amb_atom("badrpc"),
                               AMB_TUPLE(h, AMB_ATOM_EXIT, amb_atom("system_limit")));
        return amb_gen_reply(r);
    }
    *map = amb_map_put(h, *map, mref, to);
    return amb_gen_noreply();
}

static amb_gen_ret rex_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    /* block_call runs like call: a C node has no group leaders to lend. */
    if (amb_is_record(req, amb_atom("call"), 5) ||
        amb_is_record(req, amb_atom("block_call"), 5))
        return rex_run(self, state, req, from);
    return amb_gen_noreply(); /* ignored, as OTP's rex ignores it */
}

static amb_gen_ret rex_cast(amb_proc *self, void *state, amb_term msg)
{
    (void)state;
    amb_term m, f, args, mref;
    if (amb_match(msg, "{cast,~w,~w,~w,_}", &m, &f, &args) == 0)
        run_watched(self, rex_node(self), amb_atom("apply"), m, f, args, AMB_NIL, &mref);
    return amb_gen_noreply();
}

static amb_gen_ret rex_info(amb_proc *self, void *state, amb_term msg)
{
    amb_term *map = state;
    amb_heap *h = amb_proc_heap(self);
    amb_term ref, reason, req, to;
    amb_pid from;
    if (amb_match(msg, "{'DOWN',~w,process,_,~w}", &ref, &reason) == 0) {
        if (amb_map_take(h, *map, ref, &to, map) == 0 && reason != AMB_ATOM_NORMAL) {
            amb_term r =
                AMB_TUPLE(h, amb_atom("badrpc"), AMB_TUPLE(h, AMB_ATOM_EXIT, reason));
            amb_pid p;
            if (amb_match(to, "{rex,~p}", &p) == 0)
                amb_send(self, p, AMB_TUPLE(h, amb_atom("rex"), r));
            else
                amb_gen_server_reply(self, to, r);
        }
        return amb_gen_noreply();
    }
    if (amb_match(msg, "{~p,features_request}", &from) == 0) {
        amb_send(self, from,
                 AMB_TUPLE(h, amb_atom("features_reply"), amb_node(self),
                           AMB_LIST(h, amb_atom("erpc"))));
        return amb_gen_noreply();
    }
    amb_term reply_as;
    if (amb_match(msg, "{io_request,~p,~w,_}", &from, &reply_as) == 0) {
        /* The group leader of what this node spawns elsewhere: output is
         * dropped (a C node has no terminal to lend), and answered. */
        amb_send(self, from, AMB_TUPLE(h, amb_atom("io_reply"), reply_as, AMB_ATOM_OK));
        return amb_gen_noreply();
    }
    if (amb_match(msg, "{~p,~w}", &from, &req) == 0 &&
        amb_is_record(req, amb_atom("call"), 5))
        return rex_run(self, map, req, AMB_TUPLE(h, amb_atom("rex"), from));
    return amb_gen_noreply();
}

static const amb_gen_server rex = {
    .name = "rex",
    .state_term = true,
    .init = rex_init,
    .handle_call = rex_call,
    .handle_cast = rex_cast,
    .handle_info = rex_info,
};

amb_pid amb__rpc_rex(amb__dist *d)
{
    pthread_mutex_lock(&d->lock);
    amb_pid pid = d->rpc->rex;
    pthread_mutex_unlock(&d->lock);
    return pid;
}

int amb__rpc_start_rex(amb_proc *self, amb__dist *d)
{
    amb_gen_opts go = {.name = amb_atom("rex")};
    amb_pid pid = AMB_NONE;
    int rc = amb_gen_server_start(self, &rex, d, &go, &pid, NULL);
    pthread_mutex_lock(&d->lock);
    d->rpc->rex = rc == 0 ? pid : AMB_NONE;
    pthread_mutex_unlock(&d->lock);
    if (rc == AMB_EEXIST) {
        /* The program has a rex of its own: it answers rpc's calls. */
        amb_log(
            self, AMB_LOG_WARNING,
            "distribution: the name rex is taken; rpc:call by rex goes to its holder");
        return 0;
    }
    return rc;
}

/* ===========================================================================
 * erpc:call from C
 * ======================================================================== */

typedef struct erpc_wait {
    amb_term req_id;
} erpc_wait;

/* The spawn_reply error or the DOWN of the request. */
static bool erpc_answer(void *ctx, amb_term msg)
{
    const erpc_wait *w = ctx;
    return (amb_is_record(msg, amb_atom("spawn_reply"), 4) ||
            amb_is_record(msg, AMB_ATOM_DOWN, 5)) &&
           amb_equal(amb_tuple_elem(msg, 1), w->req_id);
}

/* erpc's result/4 for the request's answer msg: the code and *out. */
static int erpc_result(amb_heap *h, amb_term res, amb_term msg, amb_term *out)
{
    amb_term reason, v, stack, cls, tag;
    if (amb_is_record(msg, amb_atom("spawn_reply"), 4)) {
        reason = amb_tuple_elem(msg, 3);
        *out = AMB_TUPLE(h, AMB_ATOM_ERROR, AMB_TUPLE(h, amb_atom("erpc"), reason));
        return reason == amb_atom("noconnection")   ? AMB_ENOTCONN
               : reason == amb_atom("notsup")       ? AMB_ENOTSUP
               : reason == amb_atom("system_limit") ? AMB_ESYSLIMIT
                                                    : AMB_EBADARG;
    }
    reason = amb_tuple_elem(msg, 4);
    if (amb_match(reason, "{~w,~w,~w}", &tag, &cls, &v) == 0 && amb_equal(tag, res)) {
        if (cls == amb_atom("return")) {
            *out = v;
            return 0;
        }
        if (cls == amb_atom("throw")) {
            *out = AMB_TUPLE(h, amb_atom("throw"), v);
            return AMB_EEXIT;
        }
        if (cls == amb_atom("exit")) {
            *out = AMB_TUPLE(h, amb_atom("exit"), AMB_TUPLE(h, amb_atom("exception"), v));
            return AMB_EEXIT;
        }
        if (cls == amb_atom("error")) {
            /* {Res, error, {erpc, R}}: erpc's own error (system_limit: too
             * many arguments for the node). */
            *out = AMB_TUPLE(h, AMB_ATOM_ERROR, v);
            return amb_tuple_elem(v, 1) == amb_atom("system_limit") ? AMB_ESYSLIMIT
                                                                    : AMB_EEXIT;
        }
    }
    if (amb_tuple_arity(reason) == 4 && amb_equal(amb_tuple_elem(reason, 0), res) &&
        amb_tuple_elem(reason, 1) == AMB_ATOM_ERROR) {
        v = amb_tuple_elem(reason, 2);
        stack = amb_tuple_elem(reason, 3);
        *out =
            AMB_TUPLE(h, AMB_ATOM_ERROR, AMB_TUPLE(h, amb_atom("exception"), v, stack));
        return AMB_EEXIT;
    }
    if (reason == amb_atom("noconnection")) {
        *out = AMB_TUPLE(h, AMB_ATOM_ERROR, AMB_TUPLE(h, amb_atom("erpc"), reason));
        return AMB_ENOTCONN;
    }
    *out = AMB_TUPLE(h, amb_atom("exit"), AMB_TUPLE(h, amb_atom("signal"), reason));
    return AMB_EEXIT;
}

int amb_erpc_call(amb_proc *self, amb_term node, const char *module, const char *function,
                  amb_term args, int64_t timeout_ms, amb_term *result)
{
    if (self == NULL ||
        (timeout_ms != AMB_INFINITY &&
         (timeout_ms < 0 || timeout_ms > AMB_TIMEOUT_MAX)) ||
        module == NULL || function == NULL || !amb_is_atom(node) || !amb_is_list(args))
        return AMB_EBADARG;
    amb_heap *h = amb_proc_heap(self);
    amb_term m = amb_atom(module), f = amb_atom(function), res = amb_make_ref(self);
    if (m == AMB_NONE || f == AMB_NONE)
        return AMB_EBADARG;
    if (res == AMB_NONE)
        return AMB_ENOMEM;
    amb_term call_args = AMB_LIST(h, res, m, f, args);
    if (call_args == AMB_NONE)
        return AMB_ENOMEM;
    amb_spawn_request_opts so = {.monitor = true, .reply = AMB_SPAWN_REPLY_ERROR_ONLY};
    amb_recv_mark mark = amb_receive_mark(self);
    erpc_wait w;
    int rc =
        amb_spawn_request(self, node, "erpc", "execute_call", call_args, &so, &w.req_id);
    if (rc != 0)
        return rc;
    amb_term msg, out = AMB_NONE;
    rc = amb_receive_if_after(self, mark, erpc_answer, &w, timeout_ms, &msg);
    if (rc == AMB_ETIMEDOUT) {
        /* Here: the monitor is the process's own, and a demonitor with
         * flush drops its DOWN. Elsewhere: the node forgets the request. */
        bool here = node == amb_node(self);
        if (here)
            amb_demonitor(self, w.req_id, AMB_DEMONITOR_FLUSH);
        if (here || amb__spawn_abandon(self, w.req_id)) {
            out = AMB_TUPLE(h, AMB_ATOM_ERROR,
                            AMB_TUPLE(h, amb_atom("erpc"), amb_atom("timeout")));
            if (result != NULL)
                *result = out;
            return AMB_ETIMEDOUT;
        }
        /* The answer was on its way when the time ran out: it is the
         * result (erpc's rule), and it comes (the node committed to it). */
        rc = amb_receive_if_after(self, mark, erpc_answer, &w, AMB_INFINITY, &msg);
    }
    if (rc != 0)
        return rc;
    rc = erpc_result(h, res, msg, &out);
    if (out == AMB_NONE || amb_term_copy(h, out, &out) != 0)
        return AMB_ENOMEM;
    if (result != NULL)
        *result = out;
    return rc;
}

/*
 * cluster.c - a cluster of C nodes (include/ambitious/node.h), the program
 * of docs/distribution.md:
 *
 *   cluster boss NAME WORKER_NODE...   a supervisor whose two children run
 *                                      on the first worker node that
 *                                      answers; a `tally` server that
 *                                      hands work to them
 *   cluster worker NAME                a node that starts workers on
 *                                      request (its `spawner` server)
 *   cluster                            the demo (and the test): runs one
 *                                      boss and two worker nodes as three
 *                                      OS processes, kills the worker node
 *                                      the children run on, and checks that
 *                                      the supervisor restarts them on the
 *                                      other one; exits 0 when it did
 *
 * Options: --cookie C (default: ~/.erlang.cookie), --epmd PORT (default:
 * $ERL_EPMD_PORT or 4369). From an erl shell: gen_server:call({tally,
 * Boss}, {work, w1, 21}) calls the C server, and {ask_erlang, node()} has
 * it call an Erlang gen_server back (OTP's rpc server, rex).
 *
 * The first node started finds no epmd and serves the embedded registry;
 * the others register with it. Nothing but this program is needed.
 */
#define _GNU_SOURCE
#include <ambitious.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static amb_node_opts opts;

/* ---------------------------------------------------------------------------
 * The worker node: `spawner` starts a `worker` gen_server per request.
 * ------------------------------------------------------------------------ */

/* A worker: {work, X} -> {done, ItsNode, 2 * X}. */
static amb_gen_ret work_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)state, (void)from;
    int x;
    if (amb_match(req, "{work,~i}", &x) != 0)
        return amb_gen_reply(amb_atom("what"));
    amb_heap *h = amb_proc_heap(self);
    return amb_gen_reply(
        AMB_TUPLE(h, amb_atom("done"), amb_node(self), amb_int(h, 2 * x)));
}
static const amb_gen_server worker = {.name = "worker", .handle_call = work_call};

/* start -> {ok, Pid} of a new worker (not linked to the spawner: the
 * supervisor that asked links to it). */
static amb_gen_ret spawn_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)state, (void)from;
    amb_pid pid;
    if (req != amb_atom("start") ||
        amb_gen_server_start(self, &worker, NULL, NULL, &pid, NULL) != 0)
        return amb_gen_reply(AMB_ATOM_ERROR);
    return amb_gen_reply(AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_OK, pid));
}
static const amb_gen_server spawner = {.name = "spawner", .handle_call = spawn_call};

/* cluster:double(N) -> 2 * N, for rpc:call and erpc:call from any node. */
static amb_rpc_class double_fn(amb_proc *self, void *ctx, amb_term args, amb_term *value)
{
    (void)ctx;
    int64_t n;
    if (amb_match(args, "[~l]", &n) != 0) {
        *value = amb_atom("badarg");
        return AMB_RPC_ERROR;
    }
    *value = amb_int(amb_proc_heap(self), 2 * n);
    return AMB_RPC_RETURN;
}

static void worker_main(amb_proc *self, void *arg)
{
    const char *name = arg;
    int rc = amb_node_start(self, name, &opts);
    if (rc != 0) {
        printf("FAILED %s\n", amb_err_name(rc));
        amb_rt_halt(amb_proc_rt(self), rc);
        return;
    }
    amb_gen_opts o = {.name = amb_atom("spawner")};
    amb_gen_server_start(self, &spawner, NULL, &o, NULL, NULL);
    amb_rpc_register(self, "cluster", "double", double_fn, NULL);
    printf("READY %s\n", amb_atom_name(amb_node(self), NULL));
}

/* ---------------------------------------------------------------------------
 * The boss node: a supervisor of remote children, and `tally`.
 * ------------------------------------------------------------------------ */

typedef struct where {
    const char *id;
    char **nodes; /* worker nodes, in order of preference */
    int nnodes;
} where;

/* A child's start: the first worker node whose spawner answers starts a
 * worker there; the supervisor links to it, as to a local child. A node
 * that is gone answers nothing (noconnection), and the next one is tried. */
static int start_remote(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    where *w = arg;
    amb_heap *h = amb_proc_heap(self);
    for (int i = 0; i < w->nnodes; i++) {
        amb_term reply;
        amb_term server = AMB_TUPLE(h, amb_atom("spawner"), amb_atom(w->nodes[i]));
        if (amb_gen_server_call(self, server, amb_atom("start"), 5000, &reply) != 0)
            continue;
        amb_pid pid;
        if (amb_match(reply, "{ok,~p}", &pid) != 0 || amb_link(self, pid) != 0)
            continue;
        printf("CHILD %s %s\n", w->id, w->nodes[i]);
        *out = pid;
        return 0;
    }
    *reason = amb_atom("no_worker_node");
    return AMB_EINIT;
}

/* An Erlang gen_server from C: the rpc server of OTP (rex, on every Erlang
 * node) runs erlang:system_info(otp_release) there. */
static amb_term ask_erlang(amb_proc *self, amb_term node)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term reply;
    amb_term req = amb_pack(h, "{call,erlang,system_info,[otp_release],~p}", amb_self(self));
    int rc = amb_gen_server_call(self, AMB_TUPLE(h, amb_atom("rex"), node), req, 10000, &reply);
    return rc == 0 ? AMB_TUPLE(h, AMB_ATOM_OK, reply)
                   : AMB_TUPLE(h, AMB_ATOM_ERROR, amb_atom(amb_err_name(rc)));
}

/* tally: {work, Id, X} -> the child Id's answer; {ask_erlang, Node} ->
 * {ok, Release} from that Erlang node. */
static amb_gen_ret tally_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)state, (void)from;
    amb_term id, x, children, node;
    if (amb_match(req, "{ask_erlang,~w}", &node) == 0)
        return amb_gen_reply(ask_erlang(self, node));
    if (amb_match(req, "{work,~w,~w}", &id, &x) != 0 ||
        amb_sup_which_children(self, amb_atom("boss_sup"), &children) != 0)
        return amb_gen_reply(AMB_ATOM_ERROR);
    for (amb_term l = children; amb_is_cons(l); l = amb_list_tail(l)) {
        amb_term c = amb_list_head(l), reply;
        if (amb_equal(amb_tuple_elem(c, 0), id) &&
            amb_gen_server_call(self, amb_tuple_elem(c, 1),
                                AMB_TUPLE(amb_proc_heap(self), amb_atom("work"), x), 5000,
                                &reply) == 0)
            return amb_gen_reply(reply);
    }
    return amb_gen_reply(AMB_ATOM_ERROR);
}
static const amb_gen_server tally = {.name = "tally", .handle_call = tally_call};

typedef struct boss_arg {
    const char *name;
    char **workers;
    int nworkers;
} boss_arg;

static void boss_main(amb_proc *self, void *arg)
{
    boss_arg *b = arg;
    int rc = amb_node_start(self, b->name, &opts);
    if (rc != 0) {
        printf("FAILED %s\n", amb_err_name(rc));
        amb_rt_halt(amb_proc_rt(self), rc);
        return;
    }
    printf("NODE %s\n", amb_atom_name(amb_node(self), NULL));
    /* Wait (20 s at most) for the first worker node. */
    for (int i = 0; i < 200 && amb_node_ping(self, amb_atom(b->workers[0])) != 0; i++)
        amb_sleep(self, 100);
    static where w1, w2;
    w1 = (where){"w1", b->workers, b->nworkers};
    w2 = (where){"w2", b->workers, b->nworkers};
    amb_child_spec kids[] = {
        {.id = amb_atom("w1"),
         .start = start_remote,
         .arg = &w1,
         .restart = AMB_PERMANENT},
        {.id = amb_atom("w2"),
         .start = start_remote,
         .arg = &w2,
         .restart = AMB_PERMANENT},
    };
    amb_sup_spec spec = {
        .flags = {.strategy = AMB_ONE_FOR_ONE, .intensity = 10, .period_ms = 10000},
        .children = kids,
        .nchildren = 2};
    amb_gen_opts so = {.name = amb_atom("boss_sup")};
    amb_term why;
    if ((rc = amb_sup_start_link(self, &spec, &so, NULL, &why)) != 0) {
        printf("FAILED supervisor %s\n", amb_err_name(rc));
        amb_rt_halt(amb_proc_rt(self), rc);
        return;
    }
    amb_gen_opts to = {.name = amb_atom("tally")};
    amb_gen_server_start(self, &tally, NULL, &to, NULL, NULL);
    printf("READY %s\n", amb_atom_name(amb_node(self), NULL));
    /* Work now and then: each line says where the children run. */
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    for (int n = 1;; n++) {
        amb_heap_rewind(h, top);
        const char *ids[] = {"w1", "w2"};
        for (int i = 0; i < 2; i++) {
            amb_term reply, node;
            int x;
            if (amb_gen_server_call(
                    self, amb_atom("tally"),
                    AMB_TUPLE(h, amb_atom("work"), amb_atom(ids[i]), amb_int(h, n)),
                    10000, &reply) == 0 &&
                amb_match(reply, "{done,~w,~i}", &node, &x) == 0)
                printf("WORK %s %s %d\n", ids[i], amb_atom_name(node, NULL), x);
        }
        amb_sleep(self, 1000);
    }
}

/* ---------------------------------------------------------------------------
 * The demo: three OS processes, one killed.
 * ------------------------------------------------------------------------ */

typedef struct child {
    pid_t pid;
    FILE *out;
} child;

static child run(const char *const argv[])
{
    int fd[2];
    if (pipe(fd) != 0)
        exit(2);
    pid_t p = fork();
    if (p == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        /* execv takes char *const[] for history's sake; it writes nothing. */
        execv("/proc/self/exe", (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fd[1]);
    return (child){p, fdopen(fd[0], "r")};
}

/* Reads c's lines until one starts with want (true), or deadline_ms passes
 * or c ends (false). Each line is shown. */
static bool expect(child *c, const char *want, int64_t deadline_ms)
{
    char line[512];
    for (;;) {
        struct pollfd p = {.fd = fileno(c->out), .events = POLLIN};
        int64_t left = deadline_ms;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return false;
        if (fgets(line, sizeof line, c->out) == NULL)
            return false;
        printf("  | %s", line);
        if (strncmp(line, want, strlen(want)) == 0)
            return true;
    }
}

static int demo(void)
{
    char port[16], cookie[32], boss[64], wa[64], wb[64];
    srand((unsigned)getpid());
    /* Below Linux's ephemeral range (32768-60999 by default), where client
     * sockets would make the port taken now and then. */
    snprintf(port, sizeof port, "%d", 20000 + rand() % 12000);
    snprintf(cookie, sizeof cookie, "demo%d", rand());
    snprintf(boss, sizeof boss, "boss%d@localhost", getpid());
    snprintf(wa, sizeof wa, "wa%d@localhost", getpid());
    snprintf(wb, sizeof wb, "wb%d@localhost", getpid());
    setvbuf(stdout, NULL, _IOLBF, 0);
    const int64_t T = 20000;
    child b = run((const char *[]){"cluster", "boss", boss, wa, wb, "--cookie", cookie,
                                   "--epmd", port, NULL});
    bool ok = expect(&b, "NODE", T);
    child a = run((const char *[]){"cluster", "worker", wa, "--cookie", cookie, "--epmd",
                                   port, NULL});
    child c = run((const char *[]){"cluster", "worker", wb, "--cookie", cookie, "--epmd",
                                   port, NULL});
    printf("boss %s, workers on %s and %s\n", boss, wa, wb);
    ok = ok && expect(&a, "READY", T) && expect(&c, "READY", T);
    /* Both children on the first worker node, and work done there. */
    char want[128];
    snprintf(want, sizeof want, "WORK w2 %s", wa);
    ok = ok && expect(&b, want, T);
    printf("killing the node %s (pid %d)\n", wa, (int)a.pid);
    kill(a.pid, SIGKILL);
    /* The supervisor sees both children end (noconnection) and starts them
     * again on the other node. */
    snprintf(want, sizeof want, "CHILD w1 %s", wb);
    ok = ok && expect(&b, want, T);
    snprintf(want, sizeof want, "WORK w2 %s", wb);
    ok = ok && expect(&b, want, T);
    kill(b.pid, SIGKILL);
    kill(c.pid, SIGKILL);
    waitpid(a.pid, NULL, 0);
    waitpid(b.pid, NULL, 0);
    waitpid(c.pid, NULL, 0);
    printf(ok ? "the supervisor moved its children: ok\n" : "FAILED\n");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return demo();
    char *pos[16];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cookie") == 0 && i + 1 < argc)
            opts.cookie = argv[++i];
        else if (strcmp(argv[i], "--epmd") == 0 && i + 1 < argc)
            opts.epmd_port = (uint16_t)atoi(argv[++i]);
        else if (npos < 16)
            pos[npos++] = argv[i];
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (npos >= 2 && strcmp(pos[0], "worker") == 0)
        return amb_main(NULL, worker_main, pos[1]) == 0 ? 0 : 1;
    if (npos >= 3 && strcmp(pos[0], "boss") == 0) {
        boss_arg b = {pos[1], pos + 2, npos - 2};
        return amb_main(NULL, boss_main, &b) == 0 ? 0 : 1;
    }
    fprintf(stderr, "usage: cluster [boss NAME WORKER_NODE... | worker NAME] "
                    "[--cookie C] [--epmd PORT]\n");
    return 2;
}

/*
 * kv_tcp.c - the KV server of Elixir's "Mix and OTP" guide over TCP
 * (chapters "Task and gen_tcp" and "Doctests, patterns and with"), in C,
 * with the guide's test talking to it through real sockets on loopback.
 *
 * The guide's pieces, one for one:
 *   KV.Bucket               a gen_server whose state is a map (a term)
 *   KV.BucketSupervisor     a dynamic supervisor of temporary buckets
 *   KV.Registry             a gen_server: {Names, Refs}, monitors buckets
 *   KV.Supervisor           one_for_all over the two above
 *   KVServer.TaskSupervisor a dynamic supervisor of temporary tasks, one
 *                           per connection (Task.Supervisor.start_child)
 *   KVServer.accept/1       the acceptor: {packet, line}, passive, as the
 *                           guide's :gen_tcp.listen options; a permanent
 *                           child of KVServer.Supervisor
 *   KVServer.serve/1        a task: recv a line, parse, run, send
 *   KVServer.Command        parse/1 and run/1 (CREATE, GET, PUT, DELETE)
 *
 * The protocol, as the guide's doctests and kv_server_test.exs have it:
 *   CREATE shopping         OK
 *   PUT shopping milk 1     OK
 *   GET shopping milk       1\r\nOK
 *   DELETE shopping eggs    OK
 *   (a bucket that does not exist: NOT FOUND; anything else: UNKNOWN
 *   COMMAND; every reply line ends with \r\n)
 *
 * main runs the guide's server test (kv_server_test.exs) over a real
 * socket, then the same with several clients at once, then kills a task to
 * show that a connection's crash is its own. Exit status 0 when every
 * check held.
 */
#include <ambitious.h>
#include <stdio.h>
#include <string.h>

/* ===========================================================================
 * KV.Bucket: a map of strings, kept as a term
 * ======================================================================== */

static amb_gen_ret bucket_init(amb_proc *self, void *state, void *arg)
{
    (void)arg;
    *(amb_term *)state = amb_map(amb_proc_heap(self), 0, NULL, NULL);
    return amb_gen_ok();
}

static amb_gen_ret bucket_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    amb_term *map = state, k, v, nil = amb_atom("nil");
    amb_heap *h = amb_proc_heap(self);
    if (amb_match(req, "{get,~w}", &k) == 0) /* Map.get(map, key) */
        return amb_gen_reply(amb_map_get(*map, k, &v) == 0 ? v : nil);
    if (amb_match(req, "{put,~w,~w}", &k, &v) == 0) { /* Map.put(map, key, value) */
        *map = amb_map_put(h, *map, k, v);
        return amb_gen_reply(AMB_ATOM_OK);
    }
    if (amb_match(req, "{delete,~w}", &k) == 0) { /* Map.pop(map, key) */
        int rc = amb_map_take(h, *map, k, &v, map);
        return rc == 0 || rc == AMB_ENOTFOUND ? amb_gen_reply(rc == 0 ? v : nil)
                                              : amb_gen_fail(rc);
    }
    return amb_gen_reply(nil);
}

static const amb_gen_server kv_bucket = {.name = "KV.Bucket",
                                         .state_term = true,
                                         .init = bucket_init,
                                         .handle_call = bucket_call};
static const amb_gen_child bucket_child = {&kv_bucket, NULL, AMB_NONE};
static const amb_child_spec bucket_spec = {
    .start = amb_gen_child_start, .arg = (void *)&bucket_child, .restart = AMB_TEMPORARY};

/* KV.Bucket.get / put / delete: the reply is borrowed until the next call. */
static amb_term bucket_ask(amb_proc *self, amb_pid bucket, amb_term req)
{
    amb_term reply = AMB_NONE;
    return amb_gen_server_call(self, bucket, req, 5000, &reply) == 0 ? reply : AMB_NONE;
}

/* ===========================================================================
 * KV.Registry: {Names, Refs}; buckets under KV.BucketSupervisor
 * ======================================================================== */

static amb_gen_ret registry_init(amb_proc *self, void *state, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    *(amb_term *)state =
        AMB_TUPLE(h, amb_map(h, 0, NULL, NULL), amb_map(h, 0, NULL, NULL));
    return amb_gen_ok();
}

static amb_gen_ret registry_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    amb_term *st = state, names = amb_tuple_elem(*st, 0), refs = amb_tuple_elem(*st, 1);
    amb_term name, pid, ref;
    amb_heap *h = amb_proc_heap(self);
    if (amb_match(req, "{lookup,~w}", &name) == 0)
        return amb_gen_reply(amb_map_get(names, name, &pid) == 0
                                 ? AMB_TUPLE(h, AMB_ATOM_OK, pid)
                                 : AMB_ATOM_ERROR);
    if (amb_match(req, "{create,~w}", &name) == 0) {
        if (amb_map_get(names, name, &pid) == 0)
            return amb_gen_reply(pid);
        int rc = amb_dynsup_start_child(self, amb_atom("KV.BucketSupervisor"),
                                        &bucket_spec, &pid, NULL);
        if (rc == 0)
            rc = amb_monitor(self, pid, &ref);
        if (rc != 0)
            return amb_gen_fail(rc);
        *st = AMB_TUPLE(h, amb_map_put(h, names, name, pid),
                        amb_map_put(h, refs, ref, name));
        return amb_gen_reply(pid);
    }
    return amb_gen_reply(AMB_ATOM_ERROR);
}

static amb_gen_ret registry_info(amb_proc *self, void *state, amb_term msg)
{
    amb_term *st = state, names = amb_tuple_elem(*st, 0), refs = amb_tuple_elem(*st, 1);
    amb_term ref, name;
    amb_heap *h = amb_proc_heap(self);
    if (amb_match(msg, "{'DOWN',~w,process,_,_}", &ref) == 0 &&
        amb_map_take(h, refs, ref, &name, &refs) == 0)
        *st = AMB_TUPLE(h, amb_map_remove(h, names, name), refs);
    return amb_gen_noreply();
}

static const amb_gen_server kv_registry = {.name = "KV.Registry",
                                           .state_term = true,
                                           .init = registry_init,
                                           .handle_call = registry_call,
                                           .handle_info = registry_info};

/* ===========================================================================
 * KVServer.Command: parse/1 and run/1
 * ======================================================================== */

enum command { CMD_UNKNOWN, CMD_CREATE, CMD_GET, CMD_PUT, CMD_DELETE };

/* Splits a line into words (String.split/1): up to 4, NUL-terminated in
 * place; the count. */
static int words(char *line, char *w[4])
{
    int n = 0;
    for (char *p = strtok(line, " \t\r\n"); p != NULL; p = strtok(NULL, " \t\r\n"))
        if (n < 4)
            w[n++] = p;
        else
            return 5; /* too many: no command has more */
    return n;
}

static enum command parse(char *line, char *w[4])
{
    int n = words(line, w);
    if (n == 2 && strcmp(w[0], "CREATE") == 0)
        return CMD_CREATE;
    if (n == 3 && strcmp(w[0], "GET") == 0)
        return CMD_GET;
    if (n == 4 && strcmp(w[0], "PUT") == 0)
        return CMD_PUT;
    if (n == 3 && strcmp(w[0], "DELETE") == 0)
        return CMD_DELETE;
    return CMD_UNKNOWN;
}

static amb_term str(amb_proc *self, const char *s) /* an Elixir string */
{
    return amb_binary(amb_proc_heap(self), (const uint8_t *)s, strlen(s));
}

/* run/1: the reply text into out (cap bytes); its length. */
static size_t run(amb_proc *self, char *line, char *out, size_t cap)
{
    amb_heap *h = amb_proc_heap(self);
    char *w[4];
    enum command cmd = parse(line, w);
    if (cmd == CMD_UNKNOWN)
        return (size_t)snprintf(out, cap, "UNKNOWN COMMAND\r\n");
    amb_term reply, bucket;
    if (cmd == CMD_CREATE) {
        amb_gen_server_call(self, amb_atom("KV.Registry"),
                            AMB_TUPLE(h, amb_atom("create"), str(self, w[1])), 5000,
                            NULL);
        return (size_t)snprintf(out, cap, "OK\r\n");
    }
    /* lookup(bucket, callback) */
    if (amb_gen_server_call(self, amb_atom("KV.Registry"),
                            AMB_TUPLE(h, amb_atom("lookup"), str(self, w[1])), 5000,
                            &reply) != 0 ||
        amb_match(reply, "{ok,~p}", &bucket) != 0)
        return (size_t)snprintf(out, cap, "NOT FOUND\r\n");
    if (cmd == CMD_GET) {
        amb_term v =
            bucket_ask(self, bucket, AMB_TUPLE(h, amb_atom("get"), str(self, w[2])));
        const uint8_t *bytes = NULL;
        size_t len = 0;
        if (amb_binary_get(v, &bytes, &len) != 0) /* nil: "#{nil}" is "" */
            len = 0;
        return (size_t)snprintf(out, cap, "%.*s\r\nOK\r\n", (int)len,
                                (const char *)bytes);
    }
    if (cmd == CMD_PUT)
        bucket_ask(self, bucket,
                   AMB_TUPLE(h, amb_atom("put"), str(self, w[2]), str(self, w[3])));
    else
        bucket_ask(self, bucket, AMB_TUPLE(h, amb_atom("delete"), str(self, w[2])));
    return (size_t)snprintf(out, cap, "OK\r\n");
}

/* ===========================================================================
 * KVServer: accept/1, serve/1 (a task per connection)
 * ======================================================================== */

/* serve/1: passive, one line at a time. Returning ends the task; it owned
 * the socket, so the socket is closed. */
static void serve(amb_proc *self, void *arg)
{
    amb_socket c = (amb_socket)(uintptr_t)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    char line[1024], reply[1100];
    size_t n;
    int rc;
    while ((rc = amb_tcp_recv(self, c, 0, AMB_INFINITY, line, sizeof line - 1, &n)) ==
           0) {
        amb_heap_rewind(h, top); /* each command's terms are scratch */
        line[n] = '\0';
        size_t m = run(self, line, reply, sizeof reply);
        if (amb_tcp_send(self, c, reply, m, 5000, NULL) != 0)
            break;
    }
    if (rc == AMB_EMSGSIZE || rc == AMB_EBUFSIZE) /* a line too long for us */
        amb_tcp_send(self, c, "ERROR\r\n", 7, 5000, NULL);
}

/* Task.Supervisor.start_child(KVServer.TaskSupervisor, fn -> serve(c) end):
 * a temporary child running serve, linked to the task supervisor. */
static int task_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    (void)reason;
    amb_spawn_opts so = {.link = true};
    return amb_spawn_opt(self, serve, arg, &so, out, NULL);
}

typedef struct server_cfg {
    uint16_t port;
    amb_pid tell; /* who hears {listening, Port} */
} server_cfg;

static void accept_loop(amb_proc *self, void *arg)
{
    const server_cfg *cfg = arg;
    amb_sock_opts o = {.packet = AMB_PACKET_LINE}; /* [:binary, packet: :line,
                                                      active: false, reuseaddr: true] */
    amb_socket l;
    amb_addr where;
    if (amb_tcp_listen(self, "127.0.0.1", cfg->port, &o, &l) != 0 ||
        amb_inet_sockname(self, l, &where) != 0)
        amb_exit_self(self, amb_atom("listen_failed"));
    printf("Accepting connections on port %u\n", where.port);
    amb_send(self, cfg->tell,
             amb_pack(amb_proc_heap(self), "{listening,~i}", (int64_t)where.port));
    for (;;) {
        amb_socket c;
        amb_pid pid;
        if (amb_tcp_accept(self, l, AMB_INFINITY, &c) != 0)
            continue;
        amb_child_spec task = {
            .start = task_start, .arg = (void *)(uintptr_t)c, .restart = AMB_TEMPORARY};
        if (amb_dynsup_start_child(self, amb_atom("KVServer.TaskSupervisor"), &task, &pid,
                                   NULL) != 0 ||
            amb_inet_controlling_process(self, c, pid) != 0)
            amb_inet_close(self, c);
    }
}

/* {Task, fn -> KVServer.accept(port) end} with restart: :permanent. */
static int acceptor_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    (void)reason;
    return amb_spawn_link(self, accept_loop, arg, out);
}

/* ===========================================================================
 * The supervision trees
 * ======================================================================== */

static char bucket_sup_name[] = "KV.BucketSupervisor";
static char task_sup_name[] = "KVServer.TaskSupervisor";

/* A dynamic supervisor registered under the name arg points to. */
static int dynsup_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    amb_gen_opts o = {.name = amb_atom(arg)};
    return amb_dynsup_start_link(self, NULL, &o, out, reason);
}

static amb_gen_child registry_child = {&kv_registry, NULL, AMB_NONE};

/* KV.Supervisor: one_for_all over KV.BucketSupervisor and KV.Registry. */
static int kv_supervisor_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    (void)arg;
    registry_child.name = amb_atom("KV.Registry");
    amb_child_spec children[] = {
        {.id = amb_atom("KV.BucketSupervisor"),
         .start = dynsup_start,
         .arg = bucket_sup_name,
         .type = AMB_SUPERVISOR},
        {.id = amb_atom("KV.Registry"),
         .start = amb_gen_child_start,
         .arg = &registry_child},
    };
    amb_sup_spec spec = {{.strategy = AMB_ONE_FOR_ALL}, children, AMB_COUNTOF(children)};
    amb_gen_opts o = {.name = amb_atom("KV.Supervisor")};
    return amb_sup_start_link(self, &spec, &o, out, reason);
}

/* KVServer.Supervisor: the task supervisor, then the acceptor. */
static int kv_server_start(amb_proc *self, server_cfg *cfg, amb_pid *out)
{
    amb_child_spec children[] = {
        {.id = amb_atom("KV.Supervisor"),
         .start = kv_supervisor_start,
         .type = AMB_SUPERVISOR},
        {.id = amb_atom("KVServer.TaskSupervisor"),
         .start = dynsup_start,
         .arg = task_sup_name,
         .type = AMB_SUPERVISOR},
        {.id = amb_atom("acceptor"), .start = acceptor_start, .arg = cfg},
    };
    amb_sup_spec spec = {{.strategy = AMB_ONE_FOR_ONE}, children, AMB_COUNTOF(children)};
    amb_gen_opts o = {.name = amb_atom("KVServer.Supervisor")};
    return amb_sup_start_link(self, &spec, &o, out, NULL);
}

/* ===========================================================================
 * kv_server_test.exs, through real sockets
 * ======================================================================== */

static int failures;

#define EXPECT(cond)                                                   \
    do {                                                               \
        if (!(cond)) {                                                 \
            printf("FAILED: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            failures++;                                                \
        }                                                              \
    } while (0)

/* send_and_recv(socket, command): sends the text (may be empty), returns
 * the next line (borrowed: buf). */
static const char *send_and_recv(amb_proc *self, amb_socket s, const char *cmd, char *buf,
                                 size_t cap)
{
    size_t n = 0;
    if ((cmd[0] != '\0' && amb_tcp_send(self, s, cmd, strlen(cmd), 1000, NULL) != 0) ||
        amb_tcp_recv(self, s, 0, 1000, buf, cap - 1, &n) != 0)
        n = 0;
    buf[n] = '\0';
    return buf;
}

#define ASSERT_REPLY(s, cmd, want) \
    EXPECT(strcmp(send_and_recv(self, (s), (cmd), buf, sizeof buf), (want)) == 0)

typedef struct client {
    amb_pid main;
    uint16_t port;
    int id;
} client;

/* test "server interaction", one client per bucket so that clients run at
 * once without sharing state. */
static void guide_test(amb_proc *self, uint16_t port, const char *bucket)
{
    amb_sock_opts o = {.packet = AMB_PACKET_LINE};
    amb_socket s;
    EXPECT(amb_tcp_connect(self, "127.0.0.1", port, &o, 1000, &s) == 0);
    char buf[256], cmd[128];
    ASSERT_REPLY(s, "UNKNOWN shopping\r\n", "UNKNOWN COMMAND\r\n");
    snprintf(cmd, sizeof cmd, "GET %s eggs\r\n", bucket);
    ASSERT_REPLY(s, cmd, "NOT FOUND\r\n");
    snprintf(cmd, sizeof cmd, "CREATE %s\r\n", bucket);
    ASSERT_REPLY(s, cmd, "OK\r\n");
    snprintf(cmd, sizeof cmd, "PUT %s eggs 3\r\n", bucket);
    ASSERT_REPLY(s, cmd, "OK\r\n");
    /* GET returns two lines */
    snprintf(cmd, sizeof cmd, "GET %s eggs\r\n", bucket);
    ASSERT_REPLY(s, cmd, "3\r\n");
    ASSERT_REPLY(s, "", "OK\r\n");
    snprintf(cmd, sizeof cmd, "DELETE %s eggs\r\n", bucket);
    ASSERT_REPLY(s, cmd, "OK\r\n");
    /* GET returns two lines */
    snprintf(cmd, sizeof cmd, "GET %s eggs\r\n", bucket);
    ASSERT_REPLY(s, cmd, "\r\n");
    ASSERT_REPLY(s, "", "OK\r\n");
    amb_inet_close(self, s);
}

static void client_main(amb_proc *self, void *arg)
{
    client *c = arg;
    char bucket[32];
    snprintf(bucket, sizeof bucket, "list%d", c->id);
    guide_test(self, c->port, bucket);
    amb_send(self, c->main, amb_atom("done"));
}

static size_t tasks(amb_proc *self)
{
    amb_sup_counts n;
    return amb_sup_count_children(self, amb_atom("KVServer.TaskSupervisor"), &n) == 0
               ? n.active
               : (size_t)-1;
}

static void main_process(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    static server_cfg cfg;
    cfg.port = 0; /* the guide's 4040; any free port here */
    cfg.tell = amb_self(self);
    amb_pid top;
    EXPECT(kv_server_start(self, &cfg, &top) == 0);
    int64_t port = 0;
    EXPECT(amb_receive_match(self, 5000, NULL, "{listening,~i}", &port) == 0);

    printf("test \"server interaction\"\n");
    guide_test(self, (uint16_t)port, "shopping");

    printf("the walk-through's session: CREATE, PUT, GET, DELETE\n");
    amb_sock_opts o = {.packet = AMB_PACKET_LINE};
    amb_socket s;
    char buf[256];
    EXPECT(amb_tcp_connect(self, "127.0.0.1", (uint16_t)port, &o, 1000, &s) == 0);
    ASSERT_REPLY(s, "CREATE shopping\r\n", "OK\r\n");
    ASSERT_REPLY(s, "PUT shopping milk 1\r\n", "OK\r\n");
    ASSERT_REPLY(s, "GET shopping milk\r\n", "1\r\n");
    ASSERT_REPLY(s, "", "OK\r\n");
    ASSERT_REPLY(s, "DELETE shopping eggs\r\n", "OK\r\n");

    printf("16 clients at once, each with its own bucket\n");
    static client clients[16];
    for (int i = 0; i < 16; i++) {
        clients[i] = (client){amb_self(self), (uint16_t)port, i};
        EXPECT(amb_spawn(self, client_main, &clients[i], NULL) == 0);
    }
    for (int i = 0; i < 16; i++)
        EXPECT(amb_receive_match(self, 10000, NULL, "done") == 0);

    printf("a connection's task crashes: only that connection ends\n");
    /* The clients' tasks end as their clients close; the session above is
     * the one left. */
    for (int tries = 0; tries < 500 && tasks(self) != 1; tries++)
        amb_sleep(self, 10);
    EXPECT(tasks(self) == 1);
    amb_term children;
    amb_pid task;
    EXPECT(amb_sup_which_children(self, amb_atom("KVServer.TaskSupervisor"), &children) ==
           0);
    EXPECT(amb_match(amb_list_head(children), "{_,~p,_,_}", &task) == 0);
    EXPECT(amb_exit(self, task, amb_atom("boom")) == 0);
    size_t n;
    EXPECT(amb_tcp_recv(self, s, 0, 5000, buf, sizeof buf, &n) == AMB_ECLOSED);
    amb_inet_close(self, s);
    EXPECT(amb_tcp_connect(self, "127.0.0.1", (uint16_t)port, &o, 1000, &s) == 0);
    ASSERT_REPLY(s, "GET shopping milk\r\n", "1\r\n"); /* the data lives on */
    ASSERT_REPLY(s, "", "OK\r\n");
    amb_inet_close(self, s);

    EXPECT(amb_gen_server_stop(self, top, AMB_ATOM_SHUTDOWN, 5000) == 0);
}

int main(void)
{
    int rc = amb_main(NULL, main_process, NULL);
    if (rc != 0 || failures != 0) {
        printf("kv_tcp: %d check(s) failed (%s)\n", failures, amb_err_name(rc));
        return 1;
    }
    printf("kv_tcp: all checks passed\n");
    return 0;
}

/*
 * chat.c - a line-based chat server: many clients, every line broadcast to
 * everyone else, over real sockets on loopback (docs/guide.md, "Sockets").
 *
 * The server:
 *   - the hub, a gen_server registered as `chat_hub` whose state (a term)
 *     maps each member's pid to its name; it monitors members, so one
 *     that ends (its client left, or it crashed) is forgotten;
 *   - one handler process per connection (no stack while it waits), its
 *     socket in {packet, line} and {active, 50}: the first line is the
 *     client's name (a join), every later line a cast to the hub, which
 *     sends {line, Text} to every other member; the member writes it to
 *     its own socket, so a slow client only slows its own handler;
 *   - an acceptor process owning the listener.
 *
 * The test: 20 clients (stackful processes, passive sockets) join, each
 * says 5 lines, and each must read the 95 lines of the others, each
 * sender's in the order sent; then they leave and the hub is empty.
 * Exit status 0 when every check held.
 */
#include <ambitious.h>
#include <stdio.h>
#include <string.h>

#define CLIENTS 20
#define LINES   5

/* ===========================================================================
 * The hub: state #{Pid => Name}
 * ======================================================================== */

static amb_gen_ret hub_init(amb_proc *self, void *state, void *arg)
{
    (void)arg;
    *(amb_term *)state = amb_map(amb_proc_heap(self), 0, NULL, NULL);
    return amb_gen_ok();
}

static amb_gen_ret hub_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    if (amb_match(req, "count") == 0)
        return amb_gen_reply(
            amb_int(amb_proc_heap(self), (int64_t)amb_map_size(*(amb_term *)state)));
    return amb_gen_reply(AMB_ATOM_ERROR);
}

static amb_gen_ret hub_cast(amb_proc *self, void *state, amb_term msg)
{
    amb_term *members = state, pid, name, text;
    amb_heap *h = amb_proc_heap(self);
    if (amb_match(msg, "{join,~p,~w}", &pid, &name) == 0) {
        amb_monitor(self, pid, NULL);
        *members = amb_map_put(h, *members, pid, name);
    } else if (amb_match(msg, "{say,~p,~w}", &pid, &text) == 0 &&
               amb_map_get(*members, pid, &name) == 0) {
        /* "name: text" to everyone but the speaker */
        const uint8_t *n, *t;
        size_t nl, tl;
        amb_binary_get(name, &n, &nl);
        amb_binary_get(text, &t, &tl);
        char line[600];
        int len = snprintf(line, sizeof line, "%.*s: %.*s", (int)nl, (const char *)n,
                           (int)tl, (const char *)t);
        amb_term out = amb_pack(h, "{line,~b}", line, (size_t)len);
        amb_map_iter it;
        amb_term k, v;
        amb_map_iterator(*members, &it);
        while (amb_map_next(&it, &k, &v))
            if (k != pid)
                amb_send(self, k, out);
    }
    return amb_gen_noreply();
}

static amb_gen_ret hub_info(amb_proc *self, void *state, amb_term msg)
{
    amb_term *members = state, pid;
    if (amb_match(msg, "{'DOWN',_,process,~p,_}", &pid) == 0)
        *members = amb_map_remove(amb_proc_heap(self), *members, pid);
    return amb_gen_noreply();
}

static const amb_gen_server hub = {.name = "chat_hub",
                                   .state_term = true,
                                   .init = hub_init,
                                   .handle_call = hub_call,
                                   .handle_cast = hub_cast,
                                   .handle_info = hub_info};

/* ===========================================================================
 * A member: one handler process per connection
 * ======================================================================== */

typedef struct member {
    amb_socket s;
    bool joined;
} member;

static int member_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    ((member *)state)->s = (amb_socket)(uintptr_t)arg;
    return 0;
}

static int member_handle(amb_proc *self, void *state, amb_term msg)
{
    member *m = state;
    const uint8_t *d;
    size_t len;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    int rc = 0;
    if (amb_match(msg, "{tcp,~v,~b}", m->s, &d, &len) == 0) {
        while (len > 0 && (d[len - 1] == '\n' || d[len - 1] == '\r'))
            len--; /* the line without its end */
        amb_term text = amb_binary(h, d, len);
        amb_term req = m->joined ? AMB_TUPLE(h, amb_atom("say"), amb_self(self), text)
                                 : AMB_TUPLE(h, amb_atom("join"), amb_self(self), text);
        m->joined = true;
        rc = amb_gen_server_cast(self, amb_atom("chat_hub"), req);
    } else if (amb_match(msg, "{line,~b}", &d, &len) == 0) {
        rc = amb_tcp_send(self, m->s, d, len, 5000, NULL);
        if (rc == 0)
            rc = amb_tcp_send(self, m->s, "\n", 1, 5000, NULL);
    } else if (amb_match(msg, "{tcp_passive,~v}", m->s) == 0) {
        amb_sock_opts o = {.active = 50};
        rc = amb_inet_setopts(self, m->s, &o, AMB_SOCKOPT_ACTIVE);
    } else {
        amb_exit_self(self, AMB_ATOM_NORMAL); /* tcp_closed, tcp_error */
    }
    amb_heap_rewind(h, top);
    return rc;
}

static const amb_handler member_handler = {
    .state_size = sizeof(member), .init = member_init, .handle = member_handle};

static void acceptor(amb_proc *self, void *arg)
{
    amb_pid main = *(amb_pid *)arg;
    amb_sock_opts lines = {.packet = AMB_PACKET_LINE, .packet_size = 512};
    amb_socket l;
    amb_addr where;
    if (amb_tcp_listen(self, "127.0.0.1", 0, &lines, &l) != 0 ||
        amb_inet_sockname(self, l, &where) != 0)
        amb_exit_self(self, amb_atom("listen_failed"));
    amb_send(self, main,
             amb_pack(amb_proc_heap(self), "{listening,~i}", (int64_t)where.port));
    for (;;) {
        amb_socket c;
        amb_pid pid;
        if (amb_tcp_accept(self, l, AMB_INFINITY, &c) != 0)
            continue;
        amb_sock_opts o = {.active = 50};
        if (amb_spawn_handler(self, &member_handler, (void *)(uintptr_t)c, &pid) != 0 ||
            amb_inet_controlling_process(self, c, pid) != 0 ||
            amb_inet_setopts(self, c, &o, AMB_SOCKOPT_ACTIVE) != 0)
            amb_inet_close(self, c);
    }
}

/* ===========================================================================
 * The clients
 * ======================================================================== */

typedef struct client {
    amb_pid main;
    uint16_t port;
    int id;
} client;

static int64_t hub_count(amb_proc *self)
{
    amb_term n;
    int64_t v = -1;
    if (amb_gen_server_call(self, amb_atom("chat_hub"), amb_atom("count"), 5000, &n) == 0)
        amb_int_get(n, &v);
    return v;
}

static void chat_client(amb_proc *self, void *arg)
{
    client *c = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_sock_opts lines = {.packet = AMB_PACKET_LINE};
    amb_socket s;
    int ok = amb_tcp_connect(self, "127.0.0.1", c->port, &lines, 5000, &s) == 0;
    char text[64];
    int len = snprintf(text, sizeof text, "user%d\n", c->id);
    ok = ok && amb_tcp_send(self, s, text, (size_t)len, 5000, NULL) == 0;
    /* Everyone in before anyone speaks: main says go. */
    amb_send(self, c->main, amb_atom("connected"));
    ok = ok && amb_receive_match(self, 10000, NULL, "go") == 0;
    for (int i = 0; ok && i < LINES; i++) {
        len = snprintf(text, sizeof text, "line %d\n", i);
        ok = amb_tcp_send(self, s, text, (size_t)len, 5000, NULL) == 0;
    }
    /* Read everyone else's lines; each sender's must come in order. */
    int next[CLIENTS] = {0}, got = 0;
    while (ok && got < (CLIENTS - 1) * LINES) {
        char line[128];
        size_t n;
        int from, i;
        if (amb_tcp_recv(self, s, 0, 10000, line, sizeof line - 1, &n) != 0)
            break;
        line[n] = '\0';
        if (sscanf(line, "user%d: line %d", &from, &i) != 2 || from == c->id ||
            from < 0 || from >= CLIENTS || next[from] != i)
            ok = 0;
        else
            next[from]++, got++;
    }
    amb_send(self, c->main,
             amb_pack(h, "{heard,~i,~i}", (int64_t)c->id, (int64_t)(ok ? got : -1)));
    amb_receive_match(self, 10000, NULL, "leave");
    amb_inet_close(self, s);
}

/* ===========================================================================
 * main
 * ======================================================================== */

static int failures;

#define EXPECT(cond)                                                   \
    do {                                                               \
        if (!(cond)) {                                                 \
            printf("FAILED: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            failures++;                                                \
        }                                                              \
    } while (0)

static void main_process(amb_proc *self, void *arg)
{
    (void)arg;
    amb_gen_opts named = {.name = amb_atom("chat_hub"), .link = true};
    EXPECT(amb_gen_server_start(self, &hub, NULL, &named, NULL, NULL) == 0);
    amb_pid me = amb_self(self), acc;
    EXPECT(amb_spawn(self, acceptor, &me, &acc) == 0);
    int64_t port = 0;
    EXPECT(amb_receive_match(self, 5000, NULL, "{listening,~i}", &port) == 0);
    printf("chat server on 127.0.0.1:%d\n", (int)port);

    static client clients[CLIENTS];
    amb_pid pids[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (client){me, (uint16_t)port, i};
        EXPECT(amb_spawn(self, chat_client, &clients[i], &pids[i]) == 0);
    }
    for (int i = 0; i < CLIENTS; i++)
        EXPECT(amb_receive_match(self, 10000, NULL, "connected") == 0);
    /* The joins are casts from the members: wait until the hub has all. */
    for (int tries = 0; tries < 500 && hub_count(self) != CLIENTS; tries++)
        amb_sleep(self, 10);
    EXPECT(hub_count(self) == CLIENTS);
    for (int i = 0; i < CLIENTS; i++)
        amb_send(self, pids[i], amb_atom("go"));
    int all = 0;
    for (int i = 0; i < CLIENTS; i++) {
        int64_t id, heard;
        if (amb_receive_match(self, 20000, NULL, "{heard,~i,~i}", &id, &heard) == 0 &&
            heard == (CLIENTS - 1) * LINES)
            all++;
    }
    printf("%d of %d clients heard all %d lines of the others, in order\n", all, CLIENTS,
           (CLIENTS - 1) * LINES);
    EXPECT(all == CLIENTS);
    for (int i = 0; i < CLIENTS; i++)
        amb_send(self, pids[i], amb_atom("leave"));
    for (int tries = 0; tries < 500 && hub_count(self) != 0; tries++)
        amb_sleep(self, 10);
    printf("members left after everyone left: %lld\n", (long long)hub_count(self));
    EXPECT(hub_count(self) == 0);
    amb_exit(self, acc, AMB_ATOM_KILL);
    EXPECT(amb_gen_server_stop(self, amb_atom("chat_hub"), AMB_ATOM_NORMAL, 5000) == 0);
}

int main(void)
{
    int rc = amb_main(NULL, main_process, NULL);
    if (rc != 0 || failures != 0) {
        printf("chat: %d check(s) failed (%s)\n", failures, amb_err_name(rc));
        return 1;
    }
    printf("chat: all checks passed\n");
    return 0;
}

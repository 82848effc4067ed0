/*
 * echo_server.c - a TCP echo server with a process per connection under a
 * dynamic supervisor (docs/guide.md, "Sockets"; docs/design/sockets.md
 * §3.4), and clients that check it through real sockets on loopback.
 *
 * The server:
 *   - an acceptor process owns the listener; for each connection it asks
 *     the dynamic supervisor `echo_sup` for a child, makes the child the
 *     socket's owner (amb_inet_controlling_process) and turns the socket
 *     to {active, 100};
 *   - each child is a handler process (no stack while it waits): data
 *     arrives as {tcp, S, Data} messages and goes straight back;
 *     {tcp_passive, S} after 100 messages re-arms the count (flow control:
 *     a fast peer can never fill the mailbox); {tcp_closed, S} ends it;
 *   - children are temporary: a connection that ends is not restarted, and
 *     a child that crashes takes only its own connection with it (the
 *     socket belonged to it, so it is closed: nothing leaks).
 *
 * The clients (stackful processes, passive sockets): 50 connections at
 * once, each sending 200 messages of mixed sizes and checking every echo;
 * then one client's handler is killed and the client sees its connection
 * end while the others go on. Exit status 0 when every check held.
 */
#include <ambitious.h>
#include <stdio.h>
#include <string.h>

#define CLIENTS  50
#define MESSAGES 200

/* ===========================================================================
 * The server
 * ======================================================================== */

static int echo_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    *(amb_socket *)state = (amb_socket)(uintptr_t)arg; /* an immediate: a value */
    return 0;
}

static int echo(amb_proc *self, void *state, amb_term msg)
{
    amb_socket s = *(amb_socket *)state;
    const uint8_t *data;
    size_t len;
    if (amb_match(msg, "{tcp,~v,~b}", s, &data, &len) == 0)
        return amb_tcp_send(self, s, data, len, 5000, NULL); /* an error ends it */
    if (amb_match(msg, "{tcp_passive,~v}", s) == 0) {
        amb_sock_opts o = {.active = 100};
        return amb_inet_setopts(self, s, &o, AMB_SOCKOPT_ACTIVE);
    }
    amb_exit_self(self, AMB_ATOM_NORMAL); /* tcp_closed, tcp_error */
}

static const amb_handler echo_handler = {
    .state_size = sizeof(amb_socket), .init = echo_init, .handle = echo};

/* The child spec's start function, run by the supervisor: a handler
 * process linked to it (arg: the socket). */
static int echo_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    (void)reason;
    amb_spawn_opts so = {.handler = &echo_handler, .link = true};
    return amb_spawn_opt(self, NULL, arg, &so, out, NULL);
}

typedef struct server {
    amb_pid main;
    uint16_t port; /* 0: any; the acceptor tells main the one it got */
} server;

static void acceptor(amb_proc *self, void *arg)
{
    server *srv = arg;
    amb_socket l;
    amb_addr where;
    if (amb_tcp_listen(self, "127.0.0.1", srv->port, NULL, &l) != 0 ||
        amb_inet_sockname(self, l, &where) != 0)
        amb_exit_self(self, amb_atom("listen_failed"));
    amb_send(self, srv->main,
             amb_pack(amb_proc_heap(self), "{listening,~i}", (int64_t)where.port));
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    for (;;) {
        amb_heap_rewind(h, top);
        amb_socket c;
        amb_pid child;
        int rc = amb_tcp_accept(self, l, AMB_INFINITY, &c);
        if (rc == AMB_ESYSLIMIT) {
            amb_sleep(self, 100); /* out of fds: back off, the listener stays */
            continue;
        }
        if (rc != 0)
            continue;
        amb_child_spec spec = {
            .start = echo_start, .arg = (void *)(uintptr_t)c, .restart = AMB_TEMPORARY};
        amb_sock_opts o = {.active = 100};
        if (amb_dynsup_start_child(self, amb_atom("echo_sup"), &spec, &child, NULL) !=
                0 ||
            amb_inet_controlling_process(self, c, child) != 0 ||
            amb_inet_setopts(self, c, &o, AMB_SOCKOPT_ACTIVE) != 0) /* to the owner */
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

/* Connects, echoes MESSAGES messages of sizes 1 .. 4000, checks each, then
 * tells main {ok, Id} (or {failed, Id, Why}). */
static void echo_client(amb_proc *self, void *arg)
{
    client *c = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_socket s;
    int rc = amb_tcp_connect(self, "127.0.0.1", c->port, NULL, 5000, &s);
    uint8_t out[4096], in[4096]; /* on this process's stack */
    for (int i = 0; rc == 0 && i < MESSAGES; i++) {
        size_t len = 1 + (size_t)((c->id * 7919 + i * 104729) % 4000);
        for (size_t j = 0; j < len; j++)
            out[j] = (uint8_t)(c->id + i + j);
        size_t n;
        rc = amb_tcp_send(self, s, out, len, 5000, NULL);
        if (rc == 0) /* exactly len bytes back, however they were cut */
            rc = amb_tcp_recv(self, s, len, 5000, in, sizeof in, &n);
        if (rc == 0 && memcmp(out, in, len) != 0)
            rc = AMB_EIO;
    }
    amb_send(self, c->main,
             rc == 0 ? amb_pack(h, "{ok,~i}", (int64_t)c->id)
                     : amb_pack(h, "{failed,~i,~a}", (int64_t)c->id, amb_err_name(rc)));
    /* Main kills one handler, then asks each client whether its connection
     * is still there: nothing comes within 200 ms on a live one, the end of
     * the stream on the one whose handler died. */
    amb_term msg;
    if (amb_receive(self, 10000, &msg) == 0 && amb_match(msg, "check") == 0) {
        size_t n;
        rc = amb_tcp_recv(self, s, 0, 200, in, sizeof in, &n);
        amb_send(self, c->main, amb_pack(h, "{checked,~a}", amb_err_name(rc)));
    }
    amb_inet_close(self, s); /* its handler sees tcp_closed and ends */
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

static size_t active_children(amb_proc *self)
{
    amb_sup_counts counts;
    return amb_sup_count_children(self, amb_atom("echo_sup"), &counts) == 0
               ? counts.active
               : (size_t)-1;
}

static void main_process(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    amb_gen_opts named = {.name = amb_atom("echo_sup")};
    EXPECT(amb_dynsup_start_link(self, NULL, &named, NULL, NULL) == 0);
    static server srv;
    srv.main = amb_self(self);
    amb_pid acc;
    EXPECT(amb_spawn_link(self, acceptor, &srv, &acc) == 0);
    int64_t port = 0;
    EXPECT(amb_receive_match(self, 5000, NULL, "{listening,~i}", &port) == 0);
    printf("echo server on 127.0.0.1:%d\n", (int)port);

    static client clients[CLIENTS];
    amb_pid pids[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (client){amb_self(self), (uint16_t)port, i};
        EXPECT(amb_spawn(self, echo_client, &clients[i], &pids[i]) == 0);
    }
    int ok = 0;
    for (int i = 0; i < CLIENTS; i++) {
        amb_term m;
        int64_t id;
        if (amb_receive_match(self, 30000, &m, "{ok,~i}", &id) == 0)
            ok++;
    }
    printf("%d of %d clients echoed %d messages each\n", ok, CLIENTS, MESSAGES);
    EXPECT(ok == CLIENTS);
    EXPECT(active_children(self) == CLIENTS);

    /* One handler crashes: only its connection ends, and it is not
     * restarted (temporary). */
    amb_term children;
    EXPECT(amb_sup_which_children(self, amb_atom("echo_sup"), &children) == 0);
    amb_pid victim = AMB_NONE;
    EXPECT(amb_match(amb_list_head(children), "{_,~p,_,_}", &victim) == 0);
    EXPECT(amb_exit(self, victim, amb_atom("crash")) == 0);
    for (int i = 0; i < CLIENTS; i++)
        amb_send(self, pids[i], amb_atom("check"));
    int closed = 0, alive = 0;
    for (int i = 0; i < CLIENTS; i++) {
        amb_term why;
        if (amb_receive_match(self, 10000, NULL, "{checked,~w}", &why) == 0) {
            closed += why == amb_atom("AMB_ECLOSED");
            alive += why == amb_atom("AMB_ETIMEDOUT");
        }
    }
    printf("after one handler crashed: %d connection closed, %d alive\n", closed, alive);
    EXPECT(closed == 1 && alive == CLIENTS - 1);
    /* The clients close: their handlers end with tcp_closed. */
    for (int tries = 0; tries < 500 && active_children(self) != 0; tries++)
        amb_sleep(self, 10);
    printf("handlers left: %zu\n", active_children(self));
    EXPECT(active_children(self) == 0);

    amb_exit(self, acc, AMB_ATOM_KILL);
    amb_pid sup;
    if (amb_whereis(self, amb_atom("echo_sup"), &sup) == 0)
        EXPECT(amb_gen_server_stop(self, sup, AMB_ATOM_NORMAL, 5000) == 0);
}

int main(void)
{
    int rc = amb_main(NULL, main_process, NULL);
    if (rc != 0 || failures != 0) {
        printf("echo_server: %d check(s) failed (%s)\n", failures, amb_err_name(rc));
        return 1;
    }
    printf("echo_server: all checks passed\n");
    return 0;
}

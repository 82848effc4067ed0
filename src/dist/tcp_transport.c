/*
 * tcp_transport.c - the node's transport (dist.h) over the socket layer:
 * the sockets user code gets (socket.h), so a connection blocks only its
 * own processes and no poller of its own exists.
 *
 *   start    listen (every interface, or opts.listen_host), then register
 *            with EPMD on 127.0.0.1:epmd_port; when no EPMD answers, serve
 *            the embedded registry from this node and register there
 *            (a race with another node starting it: the loser registers
 *            with the winner's). Two processes linked to net_kernel keep
 *            what must live with the node: the listener (accepts, hands
 *            each socket to a new acceptor reader, or, for TLS, to the
 *            transport's `accepted`) and the EPMD keeper
 *            (owns the registration's connection; when that registry goes
 *            away, it registers again, with whatever EPMD answers then).
 *   connect  PORT_PLEASE2 on the peer host's EPMD, then TCP to that port
 *            (TCP_NODELAY: distribution frames are small and latency
 *            matters), active mode. The TLS transport (tls_transport.c)
 *            dials the same way with its context in the socket options.
 *   send     amb_tcp_send, waiting as long as it takes: a peer that does
 *            not read is found out by the tick (its reader ends, and the
 *            linked writer with it).
 *
 * Invariants: every socket here has an owner in the node's processes
 * (the listener, the keeper, a reader), so none outlives the node.
 * Active mode is {active, N}, re-armed on tcp_passive: a reader busy with a
 * large message is not flooded with more bytes meanwhile.
 */
#include <stdio.h>
#include <string.h>

#include "ambitious/socket.h"
#include "dist.h"

/* Messages a reader takes in one go before it re-arms. */
#define ACTIVE_N 32
/* Bytes a read takes: a 64 KiB fragment in one message. */
#define READ_BYTES ((size_t)64 << 10)

/* Registers with EPMD, starting the embedded registry when none answers. */
static int epmd_register(amb_proc *self, amb__dist *d, uint16_t port, amb_socket *conn,
                         uint32_t *creation)
{
    int rc = AMB_ECONNREFUSED;
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = amb__epmd_client_register(self, d->epmd_port, d->alive, port, !d->visible,
                                       d->setuptime_ms, conn, creation);
        if (rc != AMB_ECONNREFUSED || d->no_embedded_epmd)
            return rc;
        rc = amb__epmd_server_start(self, d, d->epmd_port);
        if (rc != 0 && rc != AMB_EADDRINUSE)
            return rc;
    }
    return rc;
}

/* The keeper: owns the registration's connection (first message: {Sock,
 * Port, NetKernel}); registers again when it closes. */
static void keeper(amb_proc *self, void *arg)
{
    amb__dist *d = arg;
    amb_term s, nk;
    int64_t port;
    if (amb_receive_match(self, AMB_INFINITY, NULL, "{'$epmd_keep',~w,~l,~p}", &s, &port,
                          &nk) != 0 ||
        amb_link(self, nk) != 0)
        return;
    amb_sock_opts once = {.active = AMB_ACTIVE_ONCE};
    for (;;) {
        amb_inet_setopts(self, s, &once, AMB_SOCKOPT_ACTIVE);
        amb_term m;
        amb_receive(self, AMB_INFINITY, &m);
        if (amb_match(m, "{tcp_closed,_}") != 0 && amb_match(m, "{tcp_error,_,_}") != 0)
            continue;
        amb_inet_close(self, s);
        /* The registry went away (the node serving it ended): register
         * again, serving it ourselves if nobody does. The creation stays
         * ours: our pids carry it. */
        for (;;) {
            uint32_t creation;
            int rc = epmd_register(self, d, (uint16_t)port, &s, &creation);
            if (rc == 0)
                break;
            amb_sleep(self, 1000);
        }
    }
}

/* What the listener does with an accepted socket over plain TCP: a new
 * acceptor reader takes it. */
static void tcp_accepted(amb__dist *d, amb_proc *self, amb_socket s)
{
    amb_pid r;
    if (amb__conn_start_reader(self, d, AMB_NONE, s, &r) != 0 ||
        amb_inet_controlling_process(self, s, r) != 0)
        amb_inet_close(self, s);
}

/* The listener: accepts and hands each socket to the transport's
 * `accepted`, or to a new acceptor reader (first message: {Listen,
 * NetKernel}). */
static void listener(amb_proc *self, void *arg)
{
    amb__dist *d = arg;
    amb_term l, nk;
    if (amb_receive_match(self, AMB_INFINITY, NULL, "{'$dist_listen',~w,~p}", &l, &nk) !=
            0 ||
        amb_link(self, nk) != 0)
        return;
    for (;;) {
        amb_socket s;
        int rc = amb_tcp_accept(self, l, AMB_INFINITY, &s);
        if (rc == AMB_ECLOSED)
            return;
        if (rc == AMB_ESYSLIMIT)
            amb_sleep(self, 100); /* out of fds: the connection waits its turn */
        if (rc != 0)
            continue;
        if (d->transport->accepted != NULL)
            d->transport->accepted(d, self, s);
        else
            tcp_accepted(d, self, s);
    }
}

/* Spawns body with arg, gives it sock, and sends it {Tag, Sock, Extra...}. */
static int hand_over(amb_proc *self, amb_fn *body, amb__dist *d, amb_socket sock,
                     amb_term first)
{
    amb_pid p = AMB_NONE;
    int rc = amb_spawn(self, body, d, &p);
    if (rc == 0 && (rc = amb_inet_controlling_process(self, sock, p)) == 0)
        rc = amb_send(self, p, first);
    if (rc != 0 && p != AMB_NONE)
        amb_exit(self, p, AMB_ATOM_KILL);
    return rc;
}

int amb__tcp_transport_start(amb__dist *d, amb_proc *self, amb_pid nk, uint32_t *creation)
{
    amb_sock_opts lo = {.nodelay = true, .buffer = READ_BYTES};
    amb_socket l, reg;
    int rc = amb_tcp_listen(self, d->listen_host[0] != '\0' ? d->listen_host : NULL,
                            d->port, &lo, &l);
    if (rc != 0)
        return rc;
    amb_addr a;
    if ((rc = amb_inet_sockname(self, l, &a)) != 0) {
        amb_inet_close(self, l);
        return rc;
    }
    d->port = a.port;
    if ((rc = epmd_register(self, d, a.port, &reg, creation)) != 0) {
        amb_inet_close(self, l);
        return rc;
    }
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    rc = hand_over(self, listener, d, l, AMB_TUPLE(h, amb_atom("$dist_listen"), l, nk));
    if (rc == 0)
        rc = hand_over(self, keeper, d, reg,
                       AMB_TUPLE(h, amb_atom("$epmd_keep"), reg, amb_int(h, a.port), nk));
    amb_heap_rewind(h, m);
    if (rc != 0) {
        amb_inet_close(self, l);
        amb_inet_close(self, reg);
    }
    return rc;
}

/* The kernel's send buffer of a connection (Linux doubles it): small, so
 * that the writer's round robin over senders (conn.c), not a deep socket
 * queue, decides what goes next; a small call waits behind at most this
 * much bulk data besides one fragment per sender. */
#define SEND_BUFFER ((size_t)64 << 10)

/* Sets active mode on a socket the caller owns, and its send buffer. */
static int activate(amb_proc *self, amb_socket s)
{
    amb_sock_opts o = {.active = ACTIVE_N, .buffer = READ_BYTES, .sndbuf = SEND_BUFFER};
    return amb_inet_setopts(self, s, &o,
                            AMB_SOCKOPT_ACTIVE | AMB_SOCKOPT_BUFFER | AMB_SOCKOPT_SNDBUF);
}

int amb__tcp_transport_dial(amb__dist *d, amb_proc *self, amb_term node,
                            int64_t timeout_ms, amb_sock_opts *o, amb_term *sock)
{
    size_t len;
    const char *name = amb_atom_name(node, &len);
    const char *at = name != NULL ? memchr(name, '@', len) : NULL;
    if (at == NULL || (size_t)(at - name) >= AMB__NODE_NAME_MAX)
        return AMB_EBADARG;
    char alive[AMB__NODE_NAME_MAX + 1];
    memcpy(alive, name, (size_t)(at - name));
    alive[at - name] = '\0';
    const char *host = at + 1;
    int64_t deadline = amb_now_ms() + timeout_ms;
    uint16_t port;
    int rc = amb__epmd_client_port(self, host, d->epmd_port, alive, timeout_ms, &port);
    if (rc != 0)
        return rc;
    int64_t left = deadline - amb_now_ms();
    if (left <= 0)
        return AMB_ETIMEDOUT;
    o->nodelay = true;
    amb_socket s;
    if ((rc = amb_tcp_connect(self, host, port, o, left, &s)) != 0)
        return rc;
    if ((rc = activate(self, s)) != 0) {
        amb_inet_close(self, s);
        return rc;
    }
    *sock = s;
    return 0;
}

static int tcp_connect(amb__dist *d, amb_proc *self, amb_term node, int64_t timeout_ms,
                       amb_term *sock)
{
    amb_sock_opts o = {0};
    return amb__tcp_transport_dial(d, self, node, timeout_ms, &o, sock);
}

int amb__tcp_transport_adopt(amb__dist *d, amb_proc *self, amb_term sock)
{
    (void)d;
    return activate(self, sock);
}

int amb__tcp_transport_send(amb__dist *d, amb_proc *self, amb_term sock,
                            const uint8_t *data, size_t len)
{
    (void)d;
    return amb_tcp_send(self, sock, data, len, AMB_INFINITY, NULL);
}

void amb__tcp_transport_close(amb__dist *d, amb_proc *self, amb_term sock)
{
    (void)d;
    amb_inet_close(self, sock);
}

void amb__tcp_transport_stop(amb__dist *d, amb_proc *self)
{
    /* The listener, the keeper and an embedded registry are linked to
     * net_kernel: its end takes them, their sockets closing with them (the
     * registration first of all, which leaves EPMD). */
    (void)d, (void)self;
}

const amb__dist_transport amb__tcp_transport = {
    .start = amb__tcp_transport_start,
    .connect = tcp_connect,
    .adopt = amb__tcp_transport_adopt,
    .send = amb__tcp_transport_send,
    .close = amb__tcp_transport_close,
    .stop = amb__tcp_transport_stop,
};

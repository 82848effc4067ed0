/*
 * epmd_server.c - the embedded EPMD-compatible registry (epmd_proto.h has the
 * bytes), served by a node when no epmd answers on the EPMD port, so that a
 * cluster of C nodes needs nothing installed; erl nodes use it as they use
 * epmd (erts/epmd/src/epmd_srv.c, read, not copied, for the rules).
 *
 *   acceptor (stackful, owns the listen socket, linked to net_kernel)
 *      | one handler process per connection (active mode, linked to it)
 *      v
 *   ALIVE2_REQ    the name is registered for as long as that connection
 *                 lives; a name taken already is refused (result 1)
 *   PORT_PLEASE2  the port of a registered name, then the connection closes
 *   NAMES         "name N at port P" lines, then the connection closes
 *   anything else (DUMP, KILL, STOP, garbage): the connection closes
 *
 * Invariants:
 *   - The registry lives as long as the node's memory (it is freed with the
 *     node, after every process of the runtime ended), so a handler never
 *     outlives it; its table is guarded by its lock.
 *   - A connection buffers at most one request (AMB__EPMD_REQUEST_MAX bytes
 *     after the length): a longer one closes it.
 *   - Creations are random, non-zero, and unused by another name.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "ambitious/socket.h"
#include "dist.h"
#include "epmd_proto.h"

typedef struct reg_entry {
    amb__epmd_node node;
    amb_pid owner; /* the handler of its registration connection */
    uint32_t creation;
} reg_entry;

typedef struct amb__epmd_server amb__epmd_server;
struct amb__epmd_server {
    pthread_mutex_t lock;
    reg_entry *v;
    size_t n, cap;
    uint16_t port;
};

/* The handler's state: the connection and the request being read. */
typedef struct conn_state {
    amb__epmd_server *srv;
    amb_socket s;
    size_t len;
    uint8_t buf[AMB__EPMD_REQUEST_MAX + 2];
} conn_state;

static uint32_t fresh_creation(amb__epmd_server *srv)
{
    for (;;) {
        uint32_t c;
        if (RAND_bytes((unsigned char *)&c, sizeof c) != 1)
            c = (uint32_t)amb_now_ms() * 2654435761u;
        bool used = c == 0;
        for (size_t i = 0; i < srv->n && !used; i++)
            used = srv->v[i].creation == c;
        if (!used)
            return c;
    }
}

/* Registers node for owner: the creation, or 0 when the name is taken (or
 * no memory). */
static uint32_t reg_add(amb__epmd_server *srv, const amb__epmd_node *node, amb_pid owner)
{
    uint32_t creation = 0;
    pthread_mutex_lock(&srv->lock);
    bool taken = false;
    for (size_t i = 0; i < srv->n && !taken; i++)
        taken = srv->v[i].node.name_len == node->name_len &&
                memcmp(srv->v[i].node.name, node->name, node->name_len) == 0;
    if (!taken && srv->n == srv->cap) {
        size_t cap = srv->cap ? srv->cap * 2 : 8;
        reg_entry *v = amb__realloc(srv->v, cap * sizeof *v);
        if (v != NULL) {
            srv->v = v;
            srv->cap = cap;
        }
    }
    if (!taken && srv->n < srv->cap) {
        creation = fresh_creation(srv);
        srv->v[srv->n++] =
            (reg_entry){.node = *node, .owner = owner, .creation = creation};
    }
    pthread_mutex_unlock(&srv->lock);
    return creation;
}

static void reg_drop(amb__epmd_server *srv, amb_pid owner)
{
    pthread_mutex_lock(&srv->lock);
    for (size_t i = 0; i < srv->n; i++) {
        if (srv->v[i].owner == owner) {
            srv->v[i] = srv->v[--srv->n];
            break;
        }
    }
    pthread_mutex_unlock(&srv->lock);
}

/* Answers one request; false when the connection is to close. */
static bool answer(amb_proc *self, conn_state *c, const amb__epmd_request *req)
{
    amb__epmd_server *srv = c->srv;
    uint8_t out[AMB__EPMD_REQUEST_MAX + 32];
    size_t n = 0;
    switch (req->code) {
    case AMB__EPMD_ALIVE2_REQ: {
        uint32_t creation = reg_add(srv, &req->node, amb_self(self));
        amb__epmd_alive2_resp_encode(creation != 0 ? 0 : 1, creation, req->node.high_vsn,
                                     out, sizeof out, &n);
        amb_tcp_send(self, c->s, out, n, 5000, NULL);
        return creation != 0; /* a refused registration closes, as epmd's */
    }
    case AMB__EPMD_PORT_PLEASE2_REQ: {
        amb__epmd_node found;
        bool have = false;
        pthread_mutex_lock(&srv->lock);
        for (size_t i = 0; i < srv->n && !have; i++) {
            if (srv->v[i].node.name_len == req->node.name_len &&
                memcmp(srv->v[i].node.name, req->node.name, req->node.name_len) == 0) {
                found = srv->v[i].node;
                have = true;
            }
        }
        pthread_mutex_unlock(&srv->lock);
        if (amb__epmd_port2_resp_encode(have ? &found : NULL, out, sizeof out, &n) == 0)
            amb_tcp_send(self, c->s, out, n, 5000, NULL);
        return false;
    }
    case AMB__EPMD_NAMES_REQ: {
        if (amb__epmd_names_resp_port_encode(srv->port, out, sizeof out, &n) == 0)
            amb_tcp_send(self, c->s, out, n, 5000, NULL);
        for (size_t i = 0;; i++) {
            pthread_mutex_lock(&srv->lock);
            bool more = i < srv->n;
            int rc = more ? amb__epmd_names_line_encode(
                                srv->v[i].node.name, srv->v[i].node.name_len,
                                srv->v[i].node.port, out, sizeof out, &n)
                          : 0;
            pthread_mutex_unlock(&srv->lock);
            if (!more)
                break;
            if (rc == 0)
                amb_tcp_send(self, c->s, out, n, 5000, NULL);
        }
        return false;
    }
    default:
        return false; /* DUMP, KILL, STOP: refused */
    }
}

static int conn_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    conn_state *c = state;
    c->srv = arg;
    c->s = AMB_NONE;
    return 0;
}

/* The end of a connection: its registration goes, the socket closes. */
_Noreturn static void conn_end(amb_proc *self, conn_state *c)
{
    reg_drop(c->srv, amb_self(self));
    if (c->s != AMB_NONE)
        amb_inet_close(self, c->s);
    amb_exit_self(self, AMB_ATOM_NORMAL);
}

static int conn_handle(amb_proc *self, void *state, amb_term msg)
{
    conn_state *c = state;
    amb_term s, data;
    amb_sock_opts on = {.active = 16};
    if (amb_match(msg, "{'$epmd_sock',~w}", &s) == 0) {
        /* The acceptor gave us the socket: reads as messages from now. */
        c->s = s;
        if (amb_inet_setopts(self, s, &on, AMB_SOCKOPT_ACTIVE) != 0)
            conn_end(self, c);
        return 0;
    }
    if (amb_match(msg, "{tcp_passive,_}") == 0) {
        if (amb_inet_setopts(self, c->s, &on, AMB_SOCKOPT_ACTIVE) != 0)
            conn_end(self, c);
        return 0;
    }
    if (amb_match(msg, "{tcp,_,~w}", &data) != 0)
        conn_end(self, c); /* tcp_closed, tcp_error */
    const uint8_t *p;
    size_t n;
    if (amb_binary_get(data, &p, &n) != 0 || n > sizeof c->buf - c->len)
        conn_end(self, c);
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    for (;;) {
        amb__epmd_request req;
        size_t used;
        int rc = amb__epmd_request_decode(c->buf, c->len, &used, &req);
        if (rc == AMB_EAGAIN)
            return 0;
        if (rc != 0 || !answer(self, c, &req))
            conn_end(self, c);
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
}

static const amb_handler conn_handler = {
    .state_size = sizeof(conn_state),
    .init = conn_init,
    .handle = conn_handle,
};

/* The acceptor: the listen socket and net_kernel's pid come in its first
 * message; linked to net_kernel, the registry goes with the node. */
static void acceptor(amb_proc *self, void *arg)
{
    amb__epmd_server *srv = arg;
    amb_term l, nk;
    if (amb_receive_match(self, AMB_INFINITY, NULL, "{'$epmd_listen',~w,~p}", &l, &nk) !=
            0 ||
        amb_link(self, nk) != 0)
        return;
    for (;;) {
        amb_socket s;
        int rc = amb_tcp_accept(self, l, AMB_INFINITY, &s);
        if (rc == AMB_ECLOSED)
            return;
        if (rc != 0)
            continue; /* out of fds, or one client's trouble: keep serving */
        amb_pid h;
        amb_spawn_opts so = {.handler = &conn_handler, .link = true, .name = AMB_NONE};
        if (amb_spawn_opt(self, NULL, srv, &so, &h, NULL) != 0 ||
            amb_inet_controlling_process(self, s, h) != 0) {
            amb_inet_close(self, s);
            continue;
        }
        amb_heap *hp = amb_proc_heap(self);
        amb_heap_mark m = amb_heap_save(hp);
        amb_send(self, h, AMB_TUPLE(hp, amb_atom("$epmd_sock"), s));
        amb_heap_rewind(hp, m);
    }
}

int amb__epmd_server_start(amb_proc *self, amb__dist *d, uint16_t port)
{
    if (d->epmd == NULL) {
        d->epmd = amb__calloc(1, sizeof *d->epmd);
        if (d->epmd == NULL)
            return AMB_ENOMEM;
        pthread_mutex_init(&d->epmd->lock, NULL);
    }
    amb__epmd_server *srv = d->epmd;
    srv->port = port;
    /* epmd's own rule: ERL_EPMD_ADDRESS, else every interface. */
    const char *host = getenv("ERL_EPMD_ADDRESS");
    amb_socket l;
    int rc = amb_tcp_listen(self, host, port, NULL, &l);
    if (rc != 0)
        return rc;
    amb_pid a = AMB_NONE;
    amb_spawn_opts so = {.name = AMB_NONE};
    rc = amb_spawn_opt(self, acceptor, srv, &so, &a, NULL);
    if (rc == 0)
        rc = amb_inet_controlling_process(self, l, a);
    if (rc != 0) {
        amb_inet_close(self, l);
        if (a != AMB_NONE)
            amb_exit(self, a, AMB_ATOM_KILL);
        return rc;
    }
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    amb_send(self, a, AMB_TUPLE(h, amb_atom("$epmd_listen"), l, d->net_kernel));
    amb_heap_rewind(h, m);
    return 0;
}

void amb__epmd_server_free(amb__epmd_server *srv)
{
    if (srv == NULL)
        return;
    amb__free(srv->v);
    pthread_mutex_destroy(&srv->lock);
    amb__free(srv);
}

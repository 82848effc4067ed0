/*
 * tls_transport.c - the node's transport over TLS (dist.h), speaking what
 * erl's inet_tls_dist speaks (erl -proto_dist inet_tls): TLS from the
 * connection's first byte, then the distribution handshake inside it with
 * 4-byte packet lengths (inet_tls_dist's socket is {packet, 4} from the
 * start, where inet_tcp_dist's handshake has 2), then frames as over TCP.
 * EPMD is unchanged: a TLS node registers and is looked up as a TCP one.
 *
 * Everything but three steps is the TCP transport's (tcp_transport.c):
 *   start    the TLS contexts are built before (amb_node_start ->
 *            amb__tls_transport_node_start, in the caller, files read on
 *            the blocking pool), then the TCP transport's start.
 *   accepted the listener hands each plain accepted socket to a new
 *            handshaker process, which runs the TLS server handshake
 *            (amb_tcp_starttls) within the set-up time and then gives the
 *            socket to a new acceptor reader: as inet_tls_dist's
 *            accept_loop, one slow or hostile client never holds up the
 *            listener or other clients.
 *   connect  the TCP transport's dial with the client context: the
 *            certificate is checked for the host part of the node name.
 *
 * Verification (node.h "TLS"): the server context requires a client
 * certificate that chains to the node's CAs (AMB_TLS_VERIFY_REQUIRE); the
 * client context verifies the server's chain and its name. A failed TLS
 * handshake is logged (a warning) on the side that saw it and ends only
 * that connection.
 *
 * Invariants: the contexts live as long as the node (freed by the node's
 * free through tls_free, after every process of it has ended; sockets hold
 * their own references meanwhile). Every socket has an owner among the
 * node's processes (listener, handshaker, reader); a handshaker is linked
 * to the listener, so a stopping node takes it too.
 */
#include <stdio.h>
#include <string.h>

#include "ambitious/socket.h"
#include "dist.h"
#include "internal.h"

/* The node's TLS material (d->tctx). */
typedef struct tls_dist {
    amb_tls_ctx *server; /* accepted connections */
    amb_tls_ctx *client; /* connections this node makes */
} tls_dist;

static void tls_free(void *tctx)
{
    tls_dist *t = tctx;
    if (t == NULL)
        return;
    amb_tls_ctx_free(t->server);
    amb_tls_ctx_free(t->client);
    amb__free(t);
}

/* Logs why a TLS handshake with a peer (what: its node or address) failed. */
static void log_failure(amb_proc *self, const char *what, int rc)
{
    amb_log(self, AMB_LOG_WARNING, "distribution: TLS connection %s refused: %s (%s)",
            what, amb_err_name(rc), amb_strerror(rc));
}

/* The handshaker: first message {'$dist_tls', Sock, Listener}; the socket
 * is its own by then. */
static void handshaker(amb_proc *self, void *arg)
{
    amb__dist *d = arg;
    const tls_dist *t = d->tctx;
    amb_term s;
    amb_pid l;
    if (amb_receive_match(self, d->setuptime_ms, NULL, "{'$dist_tls',~w,~p}", &s, &l) !=
        0)
        return;
    if (amb_link(self, l) != 0) {
        amb_inet_close(self, s);
        return;
    }
    int rc = amb_tcp_starttls(self, s, t->server, NULL, d->setuptime_ms);
    if (rc != 0) {
        char peer[AMB_ADDR_PATH_MAX + 16] = "from an unknown address";
        amb_addr a;
        if (amb_inet_peername(self, s, &a) == 0) {
            memcpy(peer, "from ", 5);
            amb_addr_format(&a, peer + 5, sizeof peer - 5, NULL);
        }
        log_failure(self, peer, rc);
        amb_inet_close(self, s);
        return;
    }
    amb_pid r;
    if (amb__conn_start_reader(self, d, AMB_NONE, s, &r) != 0 ||
        amb_inet_controlling_process(self, s, r) != 0)
        amb_inet_close(self, s);
}

static void tls_accepted(amb__dist *d, amb_proc *self, amb_term s)
{
    amb_pid p = AMB_NONE;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    int rc = amb_spawn(self, handshaker, d, &p);
    if (rc == 0 && (rc = amb_inet_controlling_process(self, s, p)) == 0)
        rc = amb_send(self, p, AMB_TUPLE(h, amb_atom("$dist_tls"), s, amb_self(self)));
    amb_heap_rewind(h, m);
    if (rc != 0) {
        if (p != AMB_NONE)
            amb_exit(self, p, AMB_ATOM_KILL);
        amb_inet_close(self, s);
    }
}

static int tls_connect(amb__dist *d, amb_proc *self, amb_term node, int64_t timeout_ms,
                       amb_term *sock)
{
    const tls_dist *t = d->tctx;
    /* tls_name stays NULL: the certificate must name the host connected
     * to, the node name's host (erl's server_name_indication). */
    amb_sock_opts o = {.tls = t->client};
    int rc = amb__tcp_transport_dial(d, self, node, timeout_ms, &o, sock);
    if (rc == AMB_ECERT || rc == AMB_ETLS) {
        char what[AMB__NODE_NAME_MAX + 8];
        snprintf(what, sizeof what, "to %s", amb_atom_name(node, NULL));
        log_failure(self, what, rc);
    }
    return rc;
}

static const amb__dist_transport tls_transport = {
    .start = amb__tcp_transport_start,
    .connect = tls_connect,
    .adopt = amb__tcp_transport_adopt,
    .send = amb__tcp_transport_send,
    .close = amb__tcp_transport_close,
    .stop = amb__tcp_transport_stop,
    .accepted = tls_accepted,
    .free = tls_free,
    .hs_len_size = 4,
};

int amb__tls_transport_node_start(amb_proc *self, const char *name,
                                  const amb_node_opts *opts)
{
    tls_dist *t = amb__calloc(1, sizeof *t);
    if (t == NULL)
        return AMB_ENOMEM;
    /* erl's keyfile defaults to certfile, whose PEM then holds both. */
    const char *key = opts->tls_keyfile != NULL ? opts->tls_keyfile : opts->tls_certfile;
    amb_tls_opts so = {
        .server = true,
        .cert_file = opts->tls_certfile,
        .key_file = key,
        .ca_file = opts->tls_cacertfile,
        .verify = AMB_TLS_VERIFY_REQUIRE,
    };
    amb_tls_opts co = so;
    co.server = false;
    co.verify = AMB_TLS_VERIFY_DEFAULT;
    int rc = amb_tls_ctx_new(self, &so, &t->server);
    if (rc == 0)
        rc = amb_tls_ctx_new(self, &co, &t->client);
    /* From here on t is the node's (freed by tls_free at the node's end). */
    if (rc == 0)
        rc = amb__dist_start(self, name, opts, &tls_transport, t);
    if (rc != 0)
        tls_free(t);
    return rc;
}

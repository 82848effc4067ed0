/*
 * tcp.c - stream sockets (gen_tcp): connect, listen, accept, send, recv,
 * shutdown, STARTTLS; TCP and Unix streams, TLS over either
 * (docs/design/sockets.md §3-§4, §9). Every call blocks only its process:
 * the fd is non-blocking, and a call that cannot finish waits on the
 * poller through the process layer (pio.h) after the protocol of poll.h
 * (reset, syscall, wait on EAGAIN).
 *
 * Invariants:
 *   - Calls of one direction are served in order, one at a time (the
 *     socket's turns): two acceptors each get their own connection, two
 *     senders' messages never interleave, a reader's bytes are never taken
 *     by another reader mid-packet.
 *   - A call holds a reference on its socket from lookup to return, parked
 *     time included, and registers its frame (amb__sock_call) with the
 *     process layer: a process that ends inside a call gives its turn and
 *     reference back, and a send it had begun is finished by the next
 *     sender or cut at close, never interleaved (socket.c, call_cleanup).
 *   - A short plain read ends the read without a second syscall (poll.h);
 *     a TLS read never does (OpenSSL reads one record at a time, so a
 *     short read says nothing about the kernel's buffer).
 *   - A TLS step runs under the socket's lock (an SSL object is not
 *     thread-safe), never across a wait.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/oserr.h"
#include "io/socket.h"

#define CONNECT_ADDRS 8
/* STARTTLS's and shutdown's close_notify have no timeout argument: a peer
 * that never reads cannot hold them longer than this. */
#define TLS_CLOSE_MS 5000

/* ---------------------------------------------------------------------------
 * Reading and writing without waiting
 * ------------------------------------------------------------------------ */

/* A TLS step's result as the plain calls give theirs: 0 done, AMB_EAGAIN
 * with *dir the direction to wait for, or an error. */
static int tls_result(int rc, int *dir)
{
    if (rc == AMB__TLS_WANT_READ) {
        *dir = AMB__SOCK_READ;
        return AMB_EAGAIN;
    }
    if (rc == AMB__TLS_WANT_WRITE) {
        *dir = AMB__SOCK_WRITE;
        return AMB_EAGAIN;
    }
    return rc;
}

ssize_t amb__tcp_read_some(amb__sock *k, void *buf, size_t cap, int *dir)
{
    if (k->tls != NULL) {
        size_t n = 0;
        amb__spin_lock(&k->lock);
        int rc = amb__tls_read(k->tls, buf, cap, &n);
        amb__spin_unlock(&k->lock);
        if (rc == 0)
            return (ssize_t)n;
        if (rc == AMB_ECLOSED)
            return 0; /* the end of the stream, with or without close_notify */
        return tls_result(rc, dir);
    }
    for (;;) {
        ssize_t r = recv(k->fd, buf, cap, MSG_DONTWAIT);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        *dir = AMB__SOCK_READ;
        return errno == EAGAIN || errno == EWOULDBLOCK ? AMB_EAGAIN
                                                       : amb__oserr_code(errno);
    }
}

/* Writes what it can of a[0..alen) then b[0..blen): the count, or
 * AMB_EAGAIN (*dir to wait for), or an error. */
static ssize_t write_some(amb__sock *k, const uint8_t *a, size_t alen, const uint8_t *b,
                          size_t blen, int *dir)
{
    *dir = AMB__SOCK_WRITE;
    if (k->tls != NULL) {
        const uint8_t *d = alen != 0 ? a : b;
        size_t len = alen != 0 ? alen : blen, n = 0;
        amb__spin_lock(&k->lock);
        int rc = amb__tls_write(k->tls, d, len, &n);
        amb__spin_unlock(&k->lock);
        return rc == 0 ? (ssize_t)n : tls_result(rc, dir);
    }
    struct iovec iov[2];
    int cnt = 0;
    if (alen != 0)
        iov[cnt++] = (struct iovec){(void *)(uintptr_t)a, alen};
    if (blen != 0)
        iov[cnt++] = (struct iovec){(void *)(uintptr_t)b, blen};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
    for (;;) {
        ssize_t r = sendmsg(k->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? AMB_EAGAIN
                                                       : amb__oserr_code(errno);
    }
}

/* Writes all of a then b, waiting as needed; *done counts what went (of
 * a, then b). */
static int write_all(amb_proc *p, amb__sock *k, const uint8_t *a, size_t alen,
                     const uint8_t *b, size_t blen, size_t *done, uint64_t deadline)
{
    while (*done < alen + blen) {
        size_t d = *done;
        const uint8_t *x = d < alen ? a + d : NULL;
        size_t xl = d < alen ? alen - d : 0;
        size_t boff = d > alen ? d - alen : 0;
        amb__poll_reset(k->pd, AMB__SOCK_WRITE);
        int dir = AMB__SOCK_READ;
        ssize_t r = write_some(k, x, xl, b + boff, blen - boff, &dir);
        if (r > 0) {
            *done += (size_t)r;
            continue;
        }
        if (r != AMB_EAGAIN)
            return (int)r;
        int rc = amb__socket_wait(p, k, dir, deadline);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The TLS handshake of k, within deadline: each step under the lock, each
 * WANT a wait. */
int amb__tcp_handshake(amb_proc *p, amb__sock *k, uint64_t deadline)
{
    for (;;) {
        amb__poll_reset(k->pd, AMB__SOCK_READ);
        amb__poll_reset(k->pd, AMB__SOCK_WRITE);
        amb__spin_lock(&k->lock);
        int rc = amb__tls_handshake(k->tls);
        amb__spin_unlock(&k->lock);
        if (rc == 0)
            return 0;
        int dir = AMB__SOCK_READ;
        rc = tls_result(rc, &dir);
        if (rc != AMB_EAGAIN)
            return rc;
        rc = amb__socket_wait(p, k, dir, deadline);
        if (rc != 0)
            return rc;
    }
}

/* Makes k a TLS socket over ctx (client: verifying name) and handshakes. */
static int start_tls(amb_proc *p, amb__sock *k, struct amb_tls_ctx *ctx, const char *name,
                     uint64_t deadline)
{
    bool server = amb__tlsctx_server(ctx);
    amb__tls *t;
    int rc = amb__tls_new(amb__tlsctx_engine(ctx), k->fd, server ? NULL : name, &t);
    if (rc != 0)
        return rc;
    amb__spin_lock(&k->lock);
    k->tls = t;
    k->tag = AMB__TAG_SSL;
    amb__spin_unlock(&k->lock);
    return amb__tcp_handshake(p, k, deadline);
}

/* ---------------------------------------------------------------------------
 * Connecting and listening
 * ------------------------------------------------------------------------ */

static int af_of(int family)
{
    return family == AMB__ADDR_INET    ? AF_INET
           : family == AMB__ADDR_INET6 ? AF_INET6
                                       : AF_UNIX;
}

/* A socket of the address's family: non-blocking, close-on-exec. */
static int new_fd(int family, int type, int *fd)
{
    *fd = socket(af_of(family), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return *fd >= 0 ? 0 : amb__oserr_code(errno);
}

/* Whether k's connect has completed: 0 yes, AMB_EAGAIN not yet, or its
 * error. */
static int connect_done(amb__sock *k)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return amb__oserr_code(errno);
    if (err != 0)
        return amb__oserr_code(err);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(k->fd, (struct sockaddr *)&ss, &sl) == 0)
        return 0;
    return errno == ENOTCONN ? AMB_EAGAIN : amb__oserr_code(errno);
}

/* One address: a socket owned by p, connected within deadline. */
static int connect_one(amb_proc *p, const amb__addr *a, const amb_sock_opts *opts,
                       const amb__sock_opts *o, uint64_t deadline, amb__sock **out)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd;
    int rc = amb__addr_to_sockaddr(a, &ss, &sl);
    if (rc == 0)
        rc = new_fd(a->family, SOCK_STREAM, &fd);
    if (rc != 0)
        return rc;
    rc = amb__socket_sysopts(fd, a->family, opts, false);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    amb__sock *k;
    rc = amb__socket_new(p, fd, AMB__SOCK_STREAM, a->family, o, &k);
    if (rc != 0)
        return rc;
    for (;;) {
        amb__poll_reset(k->pd, AMB__SOCK_WRITE);
        if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN && a->family == AMB__ADDR_UNIX) {
            /* A Unix listener's queue is full: no edge says when it is not;
             * look again in a millisecond. */
            rc = amb__mailbox_sleep(p, 1);
            if (rc == 0 && deadline != UINT64_MAX &&
                amb__clock_ms(&p->rt->exec.clock) >= deadline)
                rc = AMB_ETIMEDOUT;
            if (rc != 0)
                goto fail;
            continue;
        }
        if (errno != EINPROGRESS) {
            rc = amb__oserr_code(errno);
            goto fail;
        }
        /* In progress: writable means done, one way or the other. */
        for (;;) {
            rc = amb__socket_wait(p, k, AMB__SOCK_WRITE, deadline);
            if (rc != 0)
                goto fail;
            amb__poll_reset(k->pd, AMB__SOCK_WRITE);
            rc = connect_done(k);
            if (rc != AMB_EAGAIN)
                break;
        }
        if (rc != 0)
            goto fail;
        break;
    }
    *out = k;
    return 0;
fail:
    amb__socket_close(p, k);
    return rc;
}

int amb_tcp_connect(amb_proc *self, const char *host, uint16_t port,
                    const amb_sock_opts *opts, int64_t timeout_ms, amb_socket *out)
{
    if (self == NULL || host == NULL || out == NULL || !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    amb__sock_opts o;
    int rc = amb__socket_opts(opts, &o);
    if (rc != 0)
        return rc;
    if (!amb__proc_may_wait(self))
        return AMB_ESTATE;
    struct amb_tls_ctx *tls = opts != NULL ? opts->tls : NULL;
    if (tls != NULL && amb__tlsctx_server(tls))
        return AMB_EBADARG;
    uint64_t deadline = amb__pio_deadline(self, timeout_ms);
    amb__addr addrs[CONNECT_ADDRS];
    size_t n;
    rc = amb__resolve_host(self, host, port, opts != NULL ? opts->family : 0, false,
                           addrs, CONNECT_ADDRS, &n);
    if (rc != 0)
        return rc;
    amb__sock *k = NULL;
    for (size_t i = 0; i < n; i++) {
        rc = connect_one(self, &addrs[i], opts, &o, deadline, &k);
        if (rc == 0 || rc == AMB_ETIMEDOUT)
            break;
    }
    if (rc != 0)
        return rc;
    if (tls != NULL) {
        const char *name = opts->tls_name != NULL ? opts->tls_name : host;
        if (strncmp(name, "unix:", 5) == 0)
            name = NULL; /* a path is no name: tls_name, or verify none */
        rc = start_tls(self, k, tls, name, deadline);
        if (rc != 0) {
            amb__socket_close(self, k);
            return rc;
        }
    }
    amb__active_kick(self->task.sched, k);
    *out = amb__socket_term(k);
    return 0;
}

int amb_tcp_listen(amb_proc *self, const char *host, uint16_t port,
                   const amb_sock_opts *opts, amb_socket *out)
{
    if (self == NULL || out == NULL)
        return AMB_EBADARG;
    amb__sock_opts o;
    int rc = amb__socket_opts(opts, &o);
    if (rc != 0)
        return rc;
    amb_sock_opts d = {0};
    if (opts == NULL)
        opts = &d;
    if (opts->tls != NULL && !amb__tlsctx_server(opts->tls))
        return AMB_EBADARG;
    if (opts->backlog < 0)
        return AMB_EBADARG;
    amb__addr a;
    bool any = host == NULL || host[0] == '\0';
    if (any) {
        /* Every interface: "::" taking IPv4 too, else 0.0.0.0 (Go's rule). */
        memset(&a, 0, sizeof a);
        a.family = opts->family == AMB_ADDR_INET ? AMB__ADDR_INET : AMB__ADDR_INET6;
        a.port = port;
    } else {
        size_t n;
        rc = amb__resolve_host(self, host, port, opts->family, true, &a, 1, &n);
        if (rc != 0)
            return rc;
    }
    int fd;
    rc = new_fd(a.family, SOCK_STREAM, &fd);
    if (rc == AMB_ENOTSUP && any && a.family == AMB__ADDR_INET6) {
        a.family = AMB__ADDR_INET; /* no IPv6 on this host */
        rc = new_fd(a.family, SOCK_STREAM, &fd);
    }
    if (rc != 0)
        return rc;
    int one = 1, v6only = opts->ipv6_only;
    if (a.family != AMB__ADDR_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a.family == AMB__ADDR_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    rc = amb__socket_sysopts(fd, a.family, opts, true);
    struct sockaddr_storage ss;
    socklen_t sl;
    if (rc == 0)
        rc = amb__addr_to_sockaddr(&a, &ss, &sl);
    if (rc == 0 && bind(fd, (struct sockaddr *)&ss, sl) != 0)
        rc = amb__oserr_code(errno);
    if (rc == 0 && listen(fd, opts->backlog > 0 ? opts->backlog : SOMAXCONN) != 0)
        rc = amb__oserr_code(errno);
    char *path = NULL;
    if (rc == 0 && a.family == AMB__ADDR_UNIX && a.path_len > 0 && a.path[0] != '\0') {
        path = amb__malloc((size_t)a.path_len + 1);
        if (path == NULL) {
            unlink(a.path);
            rc = AMB_ENOMEM;
        } else {
            memcpy(path, a.path, a.path_len);
            path[a.path_len] = '\0';
        }
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    amb__sock *k;
    o.active = 0; /* a listener is never active: what it accepts may be */
    rc = amb__socket_new(self, fd, AMB__SOCK_LISTEN, a.family, &o, &k);
    if (rc != 0) {
        if (path != NULL)
            unlink(path);
        amb__free(path);
        return rc;
    }
    k->unlink_path = path;
    amb__spin_lock(&k->lock);
    k->opts.active = opts->active; /* inherited by accepted sockets */
    if (opts->tls != NULL) {
        amb__tlsctx_ref(opts->tls);
        k->tls_ctx = opts->tls;
    }
    amb__spin_unlock(&k->lock);
    *out = amb__socket_term(k);
    return 0;
}

int amb_tcp_accept(amb_proc *self, amb_socket listener, int64_t timeout_ms,
                   amb_socket *out)
{
    if (self == NULL || out == NULL || !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    amb__sock *k = amb__socket_get(self->rt, listener);
    if (k == NULL)
        return AMB_ECLOSED;
    if (k->kind != AMB__SOCK_LISTEN) {
        amb__socket_put(self->task.sched, k);
        return AMB_EBADARG;
    }
    uint64_t deadline = amb__pio_deadline(self, timeout_ms);
    amb__sock_call c;
    int rc = amb__socket_call_begin(self, k, AMB__SOCK_READ, deadline, &c);
    int fd = -1;
    while (rc == 0) {
        amb__poll_reset(k->pd, AMB__SOCK_READ);
        fd = accept4(k->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            break;
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue; /* that connection is gone: the next one */
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            /* EMFILE: AMB_ESYSLIMIT; the connection stays queued and the
             * listener keeps working (the next accept tries at once). */
            rc = amb__oserr_code(errno);
            break;
        }
        rc = amb__socket_wait(self, k, AMB__SOCK_READ, deadline);
    }
    if (c.turn >= 0)
        amb__socket_call_end(self, &c);
    if (rc != 0) {
        amb__socket_put(self->task.sched, k);
        return rc;
    }
    /* What the listener's options say, and its TLS context. */
    amb__sock_opts o;
    amb__spin_lock(&k->lock);
    o = k->opts;
    struct amb_tls_ctx *tls = k->tls_ctx;
    if (tls != NULL)
        amb__tlsctx_ref(tls);
    amb__spin_unlock(&k->lock);
    int family = k->family;
    amb__socket_put(self->task.sched, k);
    if (o.nodelay || o.keepalive) {
        amb_sock_opts so = {.nodelay = o.nodelay, .keepalive = o.keepalive};
        amb__socket_sysopts(fd, family, &so, false);
    }
    amb__sock *nk;
    rc = amb__socket_new(self, fd, AMB__SOCK_STREAM, family, &o, &nk);
    if (rc == 0 && tls != NULL) {
        rc = start_tls(self, nk, tls, NULL, deadline);
        if (rc != 0)
            amb__socket_close(self, nk); /* that client's failure, not ours */
    }
    amb_tls_ctx_free(tls);
    if (rc != 0)
        return rc;
    amb__active_kick(self->task.sched, nk);
    *out = amb__socket_term(nk);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Data
 * ------------------------------------------------------------------------ */

/* A stream socket of rt named s, referenced, or an error. */
static int get_stream(amb_proc *self, amb_socket s, amb__sock **out)
{
    return amb__socket_get_kind(self, s, AMB__SOCK_STREAM, out);
}

int amb_tcp_send(amb_proc *self, amb_socket s, const void *data, size_t len,
                 int64_t timeout_ms, size_t *sent)
{
    if (self == NULL || (data == NULL && len > 0) || !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    amb__sock *k;
    int rc = get_stream(self, s, &k);
    if (rc != 0)
        return rc;
    uint8_t hdr[4];
    size_t hlen;
    amb__spin_lock(&k->lock);
    amb__packet_mode mode = k->opts.packet.mode;
    amb__spin_unlock(&k->lock);
    rc = amb__packet_header(mode, len, hdr, &hlen);
    if (rc != 0) {
        amb__socket_put(self->task.sched, k);
        return rc;
    }
    uint64_t deadline = amb__pio_deadline(self, timeout_ms);
    amb__sock_call c;
    rc = amb__socket_call_begin(self, k, AMB__SOCK_WRITE, deadline, &c);
    if (rc == 0 && k->pend != NULL) {
        /* A sender killed mid-message left its rest: it goes first. */
        rc = write_all(self, k, k->pend, k->pend_len, NULL, 0, &k->pend_off, deadline);
        if (rc == 0) {
            amb__free(k->pend);
            k->pend = NULL;
            k->pend_len = k->pend_off = 0;
        }
    }
    if (rc == 0) {
        c.hdr = hdr;
        c.hlen = hlen;
        c.data = data;
        c.len = len;
        rc = write_all(self, k, hdr, hlen, data, len, &c.done, deadline);
    }
    if (sent != NULL)
        *sent = c.done > hlen ? c.done - hlen : 0;
    if (c.turn >= 0)
        amb__socket_call_end(self, &c);
    amb__socket_put(self->task.sched, k);
    return rc;
}

/* Copies a packet out: EBUFSIZE puts it back (*n its size). */
static int hand_out(amb__sock *k, amb__packet_pos pos, const uint8_t *d, size_t dn,
                    void *buf, size_t cap, size_t *n)
{
    *n = dn;
    if (dn > cap) {
        amb__packet_seek(&k->rx, pos);
        return AMB_EBUFSIZE;
    }
    if (dn > 0)
        memcpy(buf, d, dn);
    return 0;
}

static bool is_active(amb__sock *k)
{
    amb__spin_lock(&k->lock);
    bool a = k->opts.active != 0;
    amb__spin_unlock(&k->lock);
    return a;
}

/* recv's loop, the read turn held. */
static int recv_loop(amb_proc *self, amb__sock *k, size_t len, uint64_t deadline,
                     void *buf, size_t cap, size_t *n)
{
    bool short_read = false;
    for (;;) {
        amb__socket_rx_sync(k);
        if (is_active(k))
            return AMB_ESTATE; /* went active meanwhile */
        const uint8_t *d;
        size_t dn;
        amb__packet_pos pos = amb__packet_tell(&k->rx);
        int rc = len > 0 ? amb__packet_take(&k->rx, len, &d, &dn)
                         : amb__packet_next(&k->rx, &d, &dn);
        if (rc == 0)
            return hand_out(k, pos, d, dn, buf, cap, n);
        if (rc != AMB_EAGAIN)
            return rc; /* EMSGSIZE: the framing is lost; EBADARG */
        if (k->rd_eof) {
            rc = amb__packet_finish(&k->rx, &d, &dn);
            if (rc == 0)
                return hand_out(k, pos, d, dn, buf, cap, n);
            return rc == AMB_EAGAIN ? AMB_ECLOSED : rc;
        }
        if (k->rd_err != 0)
            return k->rd_err;
        int dir = AMB__SOCK_READ;
        ssize_t r = AMB_EAGAIN;
        if (!short_read || (k->tls != NULL && amb__tls_pending(k->tls))) {
            amb__poll_reset(k->pd, AMB__SOCK_READ);
            bool direct = k->rx.mode == AMB__PACKET_RAW && len == 0 &&
                          amb__packet_buffered(&k->rx) == 0;
            if (direct) {
                /* Raw, nothing buffered: straight into the caller's buffer. */
                r = amb__tcp_read_some(k, buf, cap, &dir);
                if (r > 0) {
                    *n = (size_t)r;
                    return 0;
                }
            } else {
                size_t want = k->rd_buffer, have = amb__packet_buffered(&k->rx);
                if (len > have && len - have > want)
                    want = len - have;
                uint8_t *at;
                size_t room;
                rc = amb__packet_space(&k->rx, want, &at, &room);
                if (rc != 0)
                    return rc;
                r = amb__tcp_read_some(k, at, room, &dir);
                if (r > 0) {
                    amb__packet_commit(&k->rx, (size_t)r);
                    short_read =
                        k->tls == NULL && (size_t)r < room && !amb__poll_hup(k->pd);
                    continue;
                }
            }
            if (r == 0) {
                k->rd_eof = true;
                continue;
            }
            if (r != AMB_EAGAIN) {
                k->rd_err = (int)r; /* a reset stays the answer */
                continue;
            }
        }
        short_read = false;
        rc = amb__socket_wait(self, k, dir, deadline);
        if (rc != 0)
            return rc;
    }
}

int amb_tcp_recv(amb_proc *self, amb_socket s, size_t len, int64_t timeout_ms, void *buf,
                 size_t cap, size_t *n)
{
    if (self == NULL || n == NULL || (buf == NULL && cap > 0) || len > cap ||
        !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    amb__sock *k;
    int rc = get_stream(self, s, &k);
    if (rc != 0)
        return rc;
    amb__spin_lock(&k->lock);
    bool active = k->opts.active != 0;
    bool framed = k->opts.packet.mode != AMB__PACKET_RAW;
    amb__spin_unlock(&k->lock);
    if (active || (framed && len > 0) || (cap == 0 && !framed)) {
        amb__socket_put(self->task.sched, k);
        return active ? AMB_ESTATE : AMB_EBADARG;
    }
    uint64_t deadline = amb__pio_deadline(self, timeout_ms);
    amb__sock_call c;
    rc = amb__socket_call_begin(self, k, AMB__SOCK_READ, deadline, &c);
    if (rc == 0)
        rc = recv_loop(self, k, len, deadline, buf, cap, n);
    if (c.turn >= 0)
        amb__socket_call_end(self, &c);
    amb__socket_put(self->task.sched, k);
    return rc;
}

int amb_tcp_shutdown(amb_proc *self, amb_socket s, unsigned how)
{
    if (self == NULL || how < AMB_SHUT_READ || how > AMB_SHUT_BOTH)
        return AMB_EBADARG;
    amb__sock *k;
    int rc = get_stream(self, s, &k);
    if (rc != 0)
        return rc;
    if (k->tls != NULL && (how & AMB_SHUT_WRITE)) {
        /* close_notify first, in the write turn (never inside a send). */
        uint64_t deadline = amb__pio_deadline(self, TLS_CLOSE_MS);
        amb__sock_call c;
        rc = amb__socket_call_begin(self, k, AMB__SOCK_WRITE, deadline, &c);
        while (rc == 0) {
            amb__poll_reset(k->pd, AMB__SOCK_WRITE);
            amb__spin_lock(&k->lock);
            int r = amb__tls_shutdown(k->tls);
            amb__spin_unlock(&k->lock);
            if (r == 0)
                break;
            int dir = AMB__SOCK_WRITE;
            r = tls_result(r, &dir);
            if (r != AMB_EAGAIN)
                break; /* the peer is gone: shutdown(2) says the rest */
            rc = amb__socket_wait(self, k, dir, deadline);
        }
        if (c.turn >= 0)
            amb__socket_call_end(self, &c);
    }
    static const int sys[] = {0, SHUT_RD, SHUT_WR, SHUT_RDWR};
    if (rc == 0 || rc == AMB_ETIMEDOUT)
        rc = shutdown(k->fd, sys[how]) == 0 ? 0 : amb__oserr_code(errno);
    amb__socket_put(self->task.sched, k);
    return rc;
}

int amb_tcp_starttls(amb_proc *self, amb_socket s, amb_tls_ctx *ctx, const char *name,
                     int64_t timeout_ms)
{
    if (self == NULL || ctx == NULL || !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    amb__sock *k;
    int rc = get_stream(self, s, &k);
    if (rc != 0)
        return rc;
    uint64_t deadline = amb__pio_deadline(self, timeout_ms);
    amb__sock_call c;
    rc = amb__socket_call_begin(self, k, AMB__SOCK_READ, deadline, &c);
    if (rc == 0) {
        rc = amb__pio_turn_acquire(self, &k->turn[AMB__SOCK_WRITE], deadline);
        c.both = rc == 0;
    }
    if (rc == 0 && (k->tls != NULL || amb__packet_buffered(&k->rx) != 0 || is_active(k)))
        rc = AMB_ESTATE; /* TLS already, plaintext unread, or active */
    if (rc == 0)
        rc = start_tls(self, k, ctx, name, deadline);
    if (c.turn >= 0)
        amb__socket_call_end(self, &c);
    amb__socket_put(self->task.sched, k);
    return rc;
}

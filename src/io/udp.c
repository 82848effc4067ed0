/*
 * udp.c - datagram sockets (gen_udp): open, send, recv; active mode is
 * active.c's (docs/design/sockets.md §3). A datagram is sent and received
 * whole by one syscall, so the turns here only keep the poller's one
 * waiter per direction: a sender waits for room, a receiver for a
 * datagram.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/oserr.h"
#include "io/socket.h"

int amb_udp_open(amb_proc *self, const char *host, uint16_t port,
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
    if (opts->tls != NULL || opts->packet != AMB_PACKET_RAW || opts->nodelay)
        return AMB_EBADARG; /* no TLS, framing or Nagle over datagrams */
    amb__addr a;
    bool any = host == NULL || host[0] == '\0';
    if (any) {
        memset(&a, 0, sizeof a);
        a.family = opts->family == AMB_ADDR_INET6 ? AMB__ADDR_INET6 : AMB__ADDR_INET;
        a.port = port;
    } else {
        size_t n;
        rc = amb__resolve_host(self, host, port, opts->family, true, &a, 1, &n);
        if (rc != 0)
            return rc;
        if (a.family == AMB__ADDR_UNIX)
            return AMB_ENOTSUP; /* Unix datagrams: not offered */
    }
    int fd = socket(a.family == AMB__ADDR_INET6 ? AF_INET6 : AF_INET,
                    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return amb__oserr_code(errno);
    if (a.family == AMB__ADDR_INET6) {
        int v6only = opts->ipv6_only;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    rc = amb__socket_sysopts(fd, a.family, opts, true);
    struct sockaddr_storage ss;
    socklen_t sl;
    if (rc == 0)
        rc = amb__addr_to_sockaddr(&a, &ss, &sl);
    if (rc == 0 && bind(fd, (struct sockaddr *)&ss, sl) != 0)
        rc = amb__oserr_code(errno);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    amb__sock *k;
    rc = amb__socket_new(self, fd, AMB__SOCK_DGRAM, a.family, &o, &k);
    if (rc != 0)
        return rc;
    amb__active_kick(self->task.sched, k);
    *out = amb__socket_term(k);
    return 0;
}

static int get_dgram(amb_proc *self, amb_socket s, amb__sock **out)
{
    return amb__socket_get_kind(self, s, AMB__SOCK_DGRAM, out);
}

int amb_udp_send(amb_proc *self, amb_socket s, const amb_addr *to, const void *data,
                 size_t len, int64_t timeout_ms)
{
    if (self == NULL || (data == NULL && len > 0) || !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (to != NULL) {
        amb__addr a;
        memcpy(&a, to, sizeof a);
        int rc = amb__addr_to_sockaddr(&a, &ss, &sl);
        if (rc != 0)
            return rc;
    }
    amb__sock *k;
    int rc = get_dgram(self, s, &k);
    if (rc != 0)
        return rc;
    uint64_t deadline = amb__pio_deadline(self, timeout_ms);
    amb__sock_call c;
    rc = amb__socket_call_begin(self, k, AMB__SOCK_WRITE, deadline, &c);
    while (rc == 0) {
        amb__poll_reset(k->pd, AMB__SOCK_WRITE);
        ssize_t r = sendto(k->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT,
                           to != NULL ? (struct sockaddr *)&ss : NULL, sl);
        if (r >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            rc = amb__oserr_code(errno);
            break;
        }
        rc = amb__socket_wait(self, k, AMB__SOCK_WRITE, deadline);
    }
    if (c.turn >= 0)
        amb__socket_call_end(self, &c);
    amb__socket_put(self->task.sched, k);
    return rc;
}

int amb_udp_recv(amb_proc *self, amb_socket s, int64_t timeout_ms, void *buf, size_t cap,
                 size_t *n, amb_addr *from)
{
    if (self == NULL || n == NULL || (buf == NULL && cap > 0) ||
        !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    amb__sock *k;
    int rc = get_dgram(self, s, &k);
    if (rc != 0)
        return rc;
    amb__spin_lock(&k->lock);
    bool active = k->opts.active != 0;
    amb__spin_unlock(&k->lock);
    if (active) {
        amb__socket_put(self->task.sched, k);
        return AMB_ESTATE;
    }
    uint64_t deadline = amb__pio_deadline(self, timeout_ms);
    amb__sock_call c;
    rc = amb__socket_call_begin(self, k, AMB__SOCK_READ, deadline, &c);
    while (rc == 0) {
        amb__poll_reset(k->pd, AMB__SOCK_READ);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        /* MSG_TRUNC: the datagram's real length, so a cut one is told. */
        ssize_t r = recvfrom(k->fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *)&ss, &sl);
        if (r >= 0) {
            *n = (size_t)r > cap ? cap : (size_t)r;
            if (from != NULL) {
                amb__addr a;
                memset(&a, 0, sizeof a);
                amb__addr_from_sockaddr((struct sockaddr *)&ss, sl, &a);
                memcpy(from, &a, sizeof *from);
            }
            rc = (size_t)r > cap ? AMB_EMSGSIZE : 0;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            rc = amb__oserr_code(errno);
            break;
        }
        rc = amb__socket_wait(self, k, AMB__SOCK_READ, deadline);
    }
    if (c.turn >= 0)
        amb__socket_call_end(self, &c);
    amb__socket_put(self->task.sched, k);
    return rc;
}

/*
 * resolve.c - host names to addresses without blocking a scheduler
 * (docs/design/sockets.md §8): literals and "unix:" paths are read on the
 * spot (addr.h); a name goes to getaddrinfo on the blocking pool
 * (amb_blocking_call) while only the calling process waits.
 *
 * A request is shared by the caller and the pool thread, each holding a
 * reference: the caller may be killed while getaddrinfo runs (its
 * reference is dropped by the cleanup of its call, pio.h), and the pool
 * thread drops its own when getaddrinfo returns; whoever drops the last
 * frees it. So neither side ever reads freed memory and nothing leaks.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "io/oserr.h"
#include "io/socket.h"

typedef struct request {
    _Atomic int refs;
    char *host;
    char service[8];
    int family; /* AF_UNSPEC, AF_INET, AF_INET6 */
    bool passive;
    /* set by the pool thread before it drops its reference */
    struct addrinfo *res;
    int rc;
} request;

static void drop(request *r)
{
    /* acq_rel: the last holder sees everything the other wrote (the pool
     * thread's results, the caller's reads) before it frees. */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (r->res != NULL)
        freeaddrinfo(r->res);
    amb__free(r->host);
    amb__free(r);
}

/* On a pool thread: may block as long as the resolver likes. */
static intptr_t lookup(void *arg)
{
    request *r = arg;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = r->family;
    hints.ai_socktype = SOCK_STREAM; /* one entry per address */
    hints.ai_flags = AI_ADDRCONFIG | (r->passive ? AI_PASSIVE : 0);
    int e = getaddrinfo(r->host, r->service, &hints, &r->res);
    r->rc = e == 0 ? 0 : amb__oserr_gai(e, errno);
    drop(r);
    return 0;
}

/* The caller ended while it waited: its reference goes. */
static void lookup_cleanup(amb_proc *p, void *ctx)
{
    (void)p;
    drop(ctx);
}

int amb__resolve_host(amb_proc *p, const char *host, uint16_t port, unsigned family,
                      bool passive, amb__addr *addrs, size_t cap, size_t *n)
{
    if (host == NULL || cap == 0 ||
        (family != 0 && family != AMB_ADDR_INET && family != AMB_ADDR_INET6))
        return AMB_EBADARG;
    size_t len = strlen(host);
    amb__addr a;
    int rc = amb__addr_from_host(host, len, port, &a);
    if (rc == 0) {
        if (family != 0 && a.family != family)
            return AMB_ENOHOST; /* a literal of the other family */
        addrs[0] = a;
        *n = 1;
        return 0;
    }
    if (rc != AMB_ENOTFOUND)
        return rc; /* malformed: never reaches the resolver */
    amb__pio *io = amb__pio_of(p);
    request *r = amb__calloc(1, sizeof *r);
    char *h = amb__malloc(len + 1);
    if (io == NULL || r == NULL || h == NULL) {
        amb__free(r);
        amb__free(h);
        return AMB_ENOMEM;
    }
    memcpy(h, host, len + 1);
    r->host = h;
    snprintf(r->service, sizeof r->service, "%u", (unsigned)port);
    r->family = family == AMB_ADDR_INET    ? AF_INET
                : family == AMB_ADDR_INET6 ? AF_INET6
                                           : AF_UNSPEC;
    r->passive = passive;
    atomic_init(&r->refs, 2);
    amb__pio_call_begin(io, lookup_cleanup, r);
    rc = amb_blocking_call(p, lookup, r, NULL);
    amb__pio_call_end(io);
    if (rc != 0) {
        drop(r); /* the pool never took it: both references are ours */
        drop(r);
        return rc;
    }
    rc = r->rc;
    size_t k = 0;
    for (struct addrinfo *ai = r->res; rc == 0 && ai != NULL && k < cap;
         ai = ai->ai_next) {
        if (amb__addr_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &a) != 0)
            continue;
        bool seen = false;
        for (size_t i = 0; i < k && !seen; i++)
            seen = memcmp(&addrs[i], &a, sizeof a) == 0;
        if (!seen)
            addrs[k++] = a;
    }
    drop(r);
    if (rc == 0 && k == 0)
        rc = AMB_ENOHOST;
    if (rc == 0)
        *n = k;
    return rc;
}

int amb_inet_getaddrs(amb_proc *self, const char *host, uint16_t port, amb_addr *addrs,
                      size_t cap, size_t *n)
{
    if (self == NULL || host == NULL || (addrs == NULL && cap > 0) || n == NULL ||
        cap == 0)
        return AMB_EBADARG;
    if (!amb__proc_may_wait(self))
        return AMB_ESTATE;
    _Static_assert(sizeof(amb_addr) == sizeof(amb__addr), "one layout");
    return amb__resolve_host(self, host, port, 0, false, (amb__addr *)(void *)addrs, cap,
                             n);
}

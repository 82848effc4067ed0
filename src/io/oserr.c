/*
 * oserr.c - errno and getaddrinfo codes in the library's words (oserr.h).
 *
 * One table holds each errno with its Erlang name and its AMB_E* code, so
 * the name and the code of a value can never disagree. Lookups walk it:
 * they run on error paths only (the socket layer handles EAGAIN and EINTR
 * itself before it asks), and a walk over 40 entries needs no switch that
 * would break where two names share a value (EWOULDBLOCK, EOPNOTSUPP).
 */
#include <errno.h>
#include <netdb.h>
#include <stddef.h>

#include "internal.h"
#include "io/oserr.h"

typedef struct oserr_entry {
    int err;
    int code;
    const char *name;
} oserr_entry;

/* Why each fold (docs/design/sockets.md, "Errors"):
 *   - EPIPE and ESHUTDOWN are AMB_ECLOSED: the stream can no longer carry
 *     what we write, as Erlang's {error, closed};
 *   - ECONNABORTED and ENETRESET are AMB_ECONNRESET: the connection was
 *     torn down under us, like a reset;
 *   - EHOSTDOWN joins EHOSTUNREACH and ENETDOWN joins ENETUNREACH;
 *   - EMFILE/ENFILE are AMB_ESYSLIMIT (a bounded table is full);
 *   - EBADF and ENOTSOCK are AMB_ECLOSED: the socket layer never passes a
 *     descriptor it does not own, so these mean it was closed meanwhile;
 *   - EINTR is AMB_EAGAIN: the call is simply repeated. */
static const oserr_entry table[] = {
    {EAGAIN, AMB_EAGAIN, "eagain"},
    {EINTR, AMB_EAGAIN, "eintr"},
    {EINPROGRESS, AMB_EAGAIN, "einprogress"},
    {ECONNREFUSED, AMB_ECONNREFUSED, "econnrefused"},
    {ECONNRESET, AMB_ECONNRESET, "econnreset"},
    {ECONNABORTED, AMB_ECONNRESET, "econnaborted"},
    {ENETRESET, AMB_ECONNRESET, "enetreset"},
    {EPIPE, AMB_ECLOSED, "epipe"},
    {ESHUTDOWN, AMB_ECLOSED, "eshutdown"},
    {EBADF, AMB_ECLOSED, "ebadf"},
    {ENOTSOCK, AMB_ECLOSED, "enotsock"},
    {ENOTCONN, AMB_ENOTCONN, "enotconn"},
    {EDESTADDRREQ, AMB_ENOTCONN, "edestaddrreq"},
    {EISCONN, AMB_ESTATE, "eisconn"},
    {EALREADY, AMB_ESTATE, "ealready"},
    {EADDRINUSE, AMB_EADDRINUSE, "eaddrinuse"},
    {EADDRNOTAVAIL, AMB_EADDRNOTAVAIL, "eaddrnotavail"},
    {EHOSTUNREACH, AMB_EHOSTUNREACH, "ehostunreach"},
    {EHOSTDOWN, AMB_EHOSTUNREACH, "ehostdown"},
    {ENETUNREACH, AMB_ENETUNREACH, "enetunreach"},
    {ENETDOWN, AMB_ENETUNREACH, "enetdown"},
    {ETIMEDOUT, AMB_ETIMEDOUT, "etimedout"},
    {EMSGSIZE, AMB_EMSGSIZE, "emsgsize"},
    {EACCES, AMB_EACCES, "eacces"},
    {EPERM, AMB_EACCES, "eperm"},
    {EMFILE, AMB_ESYSLIMIT, "emfile"},
    {ENFILE, AMB_ESYSLIMIT, "enfile"},
    {ENOBUFS, AMB_ENOMEM, "enobufs"},
    {ENOMEM, AMB_ENOMEM, "enomem"},
    {EINVAL, AMB_EBADARG, "einval"},
    {EFAULT, AMB_EBADARG, "efault"},
    {EAFNOSUPPORT, AMB_ENOTSUP, "eafnosupport"},
    {EPROTONOSUPPORT, AMB_ENOTSUP, "eprotonosupport"},
    {ESOCKTNOSUPPORT, AMB_ENOTSUP, "esocktnosupport"},
    {EOPNOTSUPP, AMB_ENOTSUP, "eopnotsupp"},
    {EPROTOTYPE, AMB_ENOTSUP, "eprototype"},
    {ENOPROTOOPT, AMB_ENOTSUP, "enoprotoopt"},
    {ENOENT, AMB_ENOTFOUND, "enoent"},
    {ENAMETOOLONG, AMB_ERANGE, "enametoolong"},
    {EPROTO, AMB_EIO, "eproto"},
    {EIO, AMB_EIO, "eio"},
};

static const oserr_entry *find(int err)
{
    for (size_t i = 0; i < AMB_COUNTOF(table); i++)
        if (table[i].err == err)
            return &table[i];
    return NULL;
}

int amb__oserr_code(int err)
{
    if (err <= 0)
        return AMB_EBADARG;
    const oserr_entry *e = find(err);
    return e != NULL ? e->code : AMB_EIO;
}

const char *amb__oserr_name(int err)
{
    const oserr_entry *e = err > 0 ? find(err) : NULL;
    return e != NULL ? e->name : "unknown";
}

int amb__oserr_gai(int eai, int err)
{
    switch (eai) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA: /* the name exists but has no address: not found either */
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return AMB_ENOHOST;
    case EAI_AGAIN:
        return AMB_EAGAIN;
    case EAI_MEMORY:
        return AMB_ENOMEM;
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
    case EAI_SERVICE:
        return AMB_ENOTSUP;
    case EAI_BADFLAGS:
        return AMB_EBADARG;
    case EAI_OVERFLOW:
        return AMB_EBUFSIZE;
    case EAI_SYSTEM:
        return err > 0 ? amb__oserr_code(err) : AMB_EIO;
    default: /* EAI_FAIL: the resolver failed for good */
        return AMB_EIO;
    }
}

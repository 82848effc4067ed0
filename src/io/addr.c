/*
 * addr.c - socket addresses from and to text and the kernel's sockaddr
 * (addr.h has the forms and the invariants).
 *
 * Literals go through inet_pton, whose IPv4 form is the strict one (four
 * decimal parts, no leading zeros, no shortened "1.2.3"): the looser
 * inet_aton forms ("0x7f.1", "127.1") are how address-confusion bugs start,
 * and nobody types them on purpose. What is neither a literal nor a valid
 * DNS name never reaches a resolver.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "ambitious/socket.h"
#include "internal.h"
#include "io/addr.h"

#define UNIX_PREFIX     "unix:"
#define UNIX_PREFIX_LEN 5

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool has_unix_prefix(const char *s, size_t len)
{
    return len >= UNIX_PREFIX_LEN && memcmp(s, UNIX_PREFIX, UNIX_PREFIX_LEN) == 0;
}

int amb__addr_parse_port(const char *s, size_t len, uint16_t *out)
{
    if (len == 0 || len > 5)
        return AMB_ESYNTAX;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return AMB_ESYNTAX;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > 65535)
        return AMB_ESYNTAX;
    *out = (uint16_t)v;
    return 0;
}

bool amb__addr_is_name(const char *host, size_t len)
{
    if (len > 0 && host[len - 1] == '.')
        len--; /* the root label: "example.com." is fully qualified */
    if (len == 0 || len > 253)
        return false;
    bool numeric = true; /* only digits and dots so far: a literal, not a name */
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || host[i] == '.') {
            if (label == 0 || label > 63 || host[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        char c = host[i];
        bool ok = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '_';
        if (!ok || (label == 0 && c == '-'))
            return false;
        numeric = numeric && is_digit(c);
        label++;
    }
    return !numeric;
}

/* "unix:PATH" (the prefix already checked). */
static int from_unix(const char *path, size_t len, amb__addr *out)
{
    if (len == 0 || (path[0] == '@' && len == 1))
        return AMB_ESYNTAX;
    if (len > AMB__ADDR_PATH_MAX)
        return AMB_ERANGE;
    if (memchr(path, '\0', len) != NULL)
        return AMB_ESYNTAX;
    memset(out, 0, sizeof *out);
    out->family = AMB__ADDR_UNIX;
    out->path_len = (uint8_t)len;
    memcpy(out->path, path, len);
    if (path[0] == '@')
        out->path[0] = '\0'; /* abstract: the name starts with a NUL byte */
    return 0;
}

/* The zone of an IPv6 literal: an interface index or name. */
static int zone_index(const char *z, size_t len, uint32_t *out)
{
    if (len == 0)
        return AMB_ESYNTAX;
    bool numeric = true;
    for (size_t i = 0; i < len; i++)
        numeric = numeric && is_digit(z[i]);
    if (numeric) {
        if (len > 10)
            return AMB_ESYNTAX;
        uint64_t v = 0;
        for (size_t i = 0; i < len; i++)
            v = v * 10 + (uint64_t)(z[i] - '0');
        if (v > UINT32_MAX)
            return AMB_ESYNTAX;
        *out = (uint32_t)v;
        return 0;
    }
    char name[IF_NAMESIZE];
    if (len >= sizeof name || memchr(z, '\0', len) != NULL)
        return AMB_ESYNTAX;
    memcpy(name, z, len);
    name[len] = '\0';
    unsigned idx = if_nametoindex(name);
    if (idx == 0)
        return AMB_EADDRNOTAVAIL;
    *out = idx;
    return 0;
}

static int from_inet6(const char *h, size_t len, uint16_t port, amb__addr *out)
{
    const char *pct = memchr(h, '%', len);
    size_t alen = pct != NULL ? (size_t)(pct - h) : len;
    char buf[INET6_ADDRSTRLEN];
    if (alen == 0 || alen >= sizeof buf || memchr(h, '\0', alen) != NULL)
        return AMB_ESYNTAX;
    memcpy(buf, h, alen);
    buf[alen] = '\0';
    uint8_t ip[16];
    if (inet_pton(AF_INET6, buf, ip) != 1)
        return AMB_ESYNTAX;
    uint32_t scope = 0;
    if (pct != NULL) {
        int rc = zone_index(pct + 1, len - alen - 1, &scope);
        if (rc != 0)
            return rc;
    }
    memset(out, 0, sizeof *out);
    out->family = AMB__ADDR_INET6;
    out->port = port;
    out->scope_id = scope;
    memcpy(out->ip, ip, 16);
    return 0;
}

int amb__addr_from_host(const char *host, size_t len, uint16_t port, amb__addr *out)
{
    if (host == NULL || out == NULL || len == 0)
        return host == NULL || out == NULL ? AMB_EBADARG : AMB_ESYNTAX;
    if (has_unix_prefix(host, len))
        return from_unix(host + UNIX_PREFIX_LEN, len - UNIX_PREFIX_LEN, out);
    if (host[0] == '[') {
        if (len < 2 || host[len - 1] != ']')
            return AMB_ESYNTAX;
        return from_inet6(host + 1, len - 2, port, out);
    }
    if (memchr(host, ':', len) != NULL)
        return from_inet6(host, len, port, out);
    bool dotted = true; /* digits and dots only: meant as an IPv4 literal */
    for (size_t i = 0; i < len; i++)
        dotted = dotted && (is_digit(host[i]) || host[i] == '.');
    if (!dotted)
        return amb__addr_is_name(host, len) ? AMB_ENOTFOUND : AMB_ESYNTAX;
    char buf[INET_ADDRSTRLEN];
    uint8_t ip[4];
    if (len >= sizeof buf)
        return AMB_ESYNTAX;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, ip) != 1)
        return AMB_ESYNTAX;
    memset(out, 0, sizeof *out);
    out->family = AMB__ADDR_INET;
    out->port = port;
    memcpy(out->ip, ip, 4);
    return 0;
}

int amb__addr_split(const char *text, size_t len, bool port_optional, const char **host,
                    size_t *host_len, uint16_t *port)
{
    if (text == NULL || host == NULL || host_len == NULL || port == NULL)
        return AMB_EBADARG;
    if (has_unix_prefix(text, len)) {
        *host = text;
        *host_len = len;
        *port = 0;
        return 0;
    }
    const char *h = text, *p = NULL;
    size_t hlen = len, plen = 0;
    if (len > 0 && text[0] == '[') {
        const char *close = memchr(text, ']', len);
        if (close == NULL)
            return AMB_ESYNTAX;
        h = text + 1;
        hlen = (size_t)(close - h);
        size_t rest = len - (size_t)(close + 1 - text);
        if (rest > 0) {
            if (close[1] != ':')
                return AMB_ESYNTAX;
            p = close + 2;
            plen = rest - 1;
        }
    } else {
        const char *colon = memchr(text, ':', len);
        if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon + 1 - text)))
            colon = NULL; /* two colons: a bare IPv6 literal, never a port */
        if (colon == NULL && memchr(text, ':', len) != NULL && !port_optional)
            return AMB_ESYNTAX;
        if (colon != NULL) {
            hlen = (size_t)(colon - text);
            p = colon + 1;
            plen = len - hlen - 1;
        }
    }
    uint16_t pv = 0;
    if (p == NULL) {
        if (!port_optional)
            return AMB_ESYNTAX;
    } else {
        int rc = amb__addr_parse_port(p, plen, &pv);
        if (rc != 0)
            return rc;
    }
    *host = h;
    *host_len = hlen;
    *port = pv;
    return 0;
}

int amb__addr_parse(const char *text, size_t len, bool port_optional, amb__addr *out)
{
    const char *host;
    size_t hlen;
    uint16_t port;
    int rc = amb__addr_split(text, len, port_optional, &host, &hlen, &port);
    if (rc != 0)
        return rc;
    if (hlen > 0 && host > text && host[-1] == '[')
        return from_inet6(host, hlen, port, out); /* brackets mean IPv6 only */
    return amb__addr_from_host(host, hlen, port, out);
}

int amb__addr_format(const amb__addr *a, char *buf, size_t cap, size_t *len)
{
    if (a == NULL || (buf == NULL && cap > 0))
        return AMB_EBADARG;
    char text[AMB__ADDR_TEXT_MAX + 1];
    size_t n;
    switch (a->family) {
    case AMB__ADDR_INET:
    case AMB__ADDR_INET6: {
        char ip[INET6_ADDRSTRLEN];
        bool v6 = a->family == AMB__ADDR_INET6;
        if (inet_ntop(v6 ? AF_INET6 : AF_INET, a->ip, ip, sizeof ip) == NULL)
            return AMB_EBADARG;
        int w;
        if (!v6)
            w = snprintf(text, sizeof text, "%s:%u", ip, (unsigned)a->port);
        else if (a->scope_id != 0)
            w = snprintf(text, sizeof text, "[%s%%%lu]:%u", ip,
                         (unsigned long)a->scope_id, (unsigned)a->port);
        else
            w = snprintf(text, sizeof text, "[%s]:%u", ip, (unsigned)a->port);
        AMB__CHECK(w > 0 && (size_t)w < sizeof text);
        n = (size_t)w;
        break;
    }
    case AMB__ADDR_UNIX:
        if (a->path_len > AMB__ADDR_PATH_MAX)
            return AMB_EBADARG;
        memcpy(text, UNIX_PREFIX, UNIX_PREFIX_LEN);
        for (size_t i = 0; i < a->path_len; i++) /* NUL (abstract) shows as '@' */
            text[UNIX_PREFIX_LEN + i] = a->path[i] == '\0' ? '@' : a->path[i];
        n = UNIX_PREFIX_LEN + a->path_len;
        text[n] = '\0';
        break;
    default:
        return AMB_EBADARG;
    }
    if (len != NULL)
        *len = n;
    if (n + 1 > cap) {
        if (cap > 0) {
            memcpy(buf, text, cap - 1);
            buf[cap - 1] = '\0';
        }
        return AMB_EBUFSIZE;
    }
    memcpy(buf, text, n + 1);
    return 0;
}

int amb__addr_to_sockaddr(const amb__addr *a, struct sockaddr_storage *ss,
                          socklen_t *sslen)
{
    if (a == NULL || ss == NULL || sslen == NULL)
        return AMB_EBADARG;
    memset(ss, 0, sizeof *ss);
    switch (a->family) {
    case AMB__ADDR_INET: {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->ip, 4);
        *sslen = sizeof *in;
        return 0;
    }
    case AMB__ADDR_INET6: {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        in6->sin6_scope_id = a->scope_id;
        memcpy(&in6->sin6_addr, a->ip, 16);
        *sslen = sizeof *in6;
        return 0;
    }
    case AMB__ADDR_UNIX: {
        if (a->path_len == 0 || a->path_len > AMB__ADDR_PATH_MAX)
            return AMB_EBADARG;
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, a->path, a->path_len);
        /* A path counts its terminating NUL; an abstract name is exactly
         * its bytes (a NUL after it would become part of the name). */
        bool abstract = a->path[0] == '\0';
        *sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + a->path_len +
                             (abstract ? 0 : 1));
        return 0;
    }
    default:
        return AMB_EBADARG;
    }
}

int amb__addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, amb__addr *out)
{
    if (sa == NULL || out == NULL || len < (socklen_t)sizeof(sa_family_t))
        return AMB_EBADARG;
    amb__addr a;
    memset(&a, 0, sizeof a);
    switch (sa->sa_family) {
    case AF_INET: {
        struct sockaddr_in in;
        if (len < (socklen_t)sizeof in)
            return AMB_EBADARG;
        memcpy(&in, sa, sizeof in);
        a.family = AMB__ADDR_INET;
        a.port = ntohs(in.sin_port);
        memcpy(a.ip, &in.sin_addr, 4);
        break;
    }
    case AF_INET6: {
        struct sockaddr_in6 in6;
        if (len < (socklen_t)sizeof in6)
            return AMB_EBADARG;
        memcpy(&in6, sa, sizeof in6);
        a.family = AMB__ADDR_INET6;
        a.port = ntohs(in6.sin6_port);
        a.scope_id = in6.sin6_scope_id;
        memcpy(a.ip, &in6.sin6_addr, 16);
        break;
    }
    case AF_UNIX: {
        size_t off = offsetof(struct sockaddr_un, sun_path);
        if ((size_t)len < off || (size_t)len > sizeof(struct sockaddr_un))
            return AMB_EBADARG;
        size_t n = (size_t)len - off;
        const char *path = (const char *)sa + off;
        if (n > 0 && path[0] != '\0')
            n = strnlen(path, n); /* a path: up to its NUL, if the kernel gave one */
        if (n > AMB__ADDR_PATH_MAX)
            return AMB_ERANGE;
        a.family = AMB__ADDR_UNIX;
        a.path_len = (uint8_t)n;
        memcpy(a.path, path, n);
        break;
    }
    default:
        return AMB_ENOTSUP;
    }
    *out = a;
    return 0;
}

/* ---------------------------------------------------------------------------
 * The public face (ambitious/socket.h): the same struct, under its public
 * name, and Erlang's term forms of an address.
 * ------------------------------------------------------------------------ */

_Static_assert(sizeof(amb_addr) == sizeof(amb__addr) &&
                   offsetof(amb_addr, port) == offsetof(amb__addr, port) &&
                   offsetof(amb_addr, scope_id) == offsetof(amb__addr, scope_id) &&
                   offsetof(amb_addr, ip) == offsetof(amb__addr, ip) &&
                   offsetof(amb_addr, path) == offsetof(amb__addr, path) &&
                   AMB_ADDR_INET == AMB__ADDR_INET && AMB_ADDR_INET6 == AMB__ADDR_INET6 &&
                   AMB_ADDR_UNIX == AMB__ADDR_UNIX &&
                   AMB_ADDR_PATH_MAX == AMB__ADDR_PATH_MAX,
               "amb_addr is amb__addr");

int amb_addr_parse(const char *text, size_t len, bool port_optional, amb_addr *out)
{
    if (text == NULL || out == NULL)
        return AMB_EBADARG;
    amb__addr a;
    int rc = amb__addr_parse(text, len, port_optional, &a);
    if (rc == 0)
        memcpy(out, &a, sizeof *out);
    return rc;
}

int amb_addr_format(const amb_addr *a, char *buf, size_t cap, size_t *len)
{
    if (a == NULL || (buf == NULL && cap > 0))
        return AMB_EBADARG;
    amb__addr x;
    memcpy(&x, a, sizeof x);
    return amb__addr_format(&x, buf, cap, len);
}

amb_term amb_addr_to_term(amb_heap *heap, const amb_addr *a)
{
    if (heap == NULL || a == NULL)
        return AMB_NONE;
    amb_term e[8];
    switch (a->family) {
    case AMB_ADDR_INET:
        for (int i = 0; i < 4; i++)
            e[i] = AMB_SMALL(a->ip[i]);
        return amb_tuple(heap, 4, e);
    case AMB_ADDR_INET6:
        for (int i = 0; i < 8; i++)
            e[i] = AMB_SMALL((unsigned)a->ip[2 * i] << 8 | a->ip[2 * i + 1]);
        return amb_tuple(heap, 8, e);
    case AMB_ADDR_UNIX:
        return AMB_TUPLE(heap, amb_atom("local"),
                         amb_binary(heap, (const uint8_t *)a->path, a->path_len));
    default:
        return AMB_NONE;
    }
}

int amb_addr_from_term(amb_term ip, uint16_t port, amb_addr *out)
{
    if (out == NULL)
        return AMB_EBADARG;
    amb__addr a;
    memset(&a, 0, sizeof a);
    size_t n = amb_tuple_arity(ip);
    if (n == 4 || n == 8) {
        unsigned width = n == 4 ? 255u : 65535u;
        for (size_t i = 0; i < n; i++) {
            amb_term t = amb_tuple_elem(ip, i);
            if (!amb_is_small(t) || amb_small_value(t) < 0 ||
                amb_small_value(t) > (int64_t)width)
                return AMB_ETYPE;
            unsigned v = (unsigned)amb_small_value(t);
            if (n == 4) {
                a.ip[i] = (uint8_t)v;
            } else {
                a.ip[2 * i] = (uint8_t)(v >> 8);
                a.ip[2 * i + 1] = (uint8_t)v;
            }
        }
        a.family = n == 4 ? AMB__ADDR_INET : AMB__ADDR_INET6;
        a.port = port;
    } else if (n == 2 && amb_tuple_elem(ip, 0) == amb_atom("local")) {
        const uint8_t *path;
        size_t len;
        if (amb_binary_get(amb_tuple_elem(ip, 1), &path, &len) != 0)
            return AMB_ETYPE;
        if (len > AMB__ADDR_PATH_MAX)
            return AMB_ERANGE;
        a.family = AMB__ADDR_UNIX;
        a.path_len = (uint8_t)len;
        memcpy(a.path, path, len);
    } else {
        return AMB_ETYPE;
    }
    memcpy(out, &a, sizeof *out);
    return 0;
}

/*
 * addr.h - socket addresses as values: IPv4, IPv6 (with a zone) and Unix
 * paths; reading them from text, writing them as text, and converting to
 * and from the kernel's struct sockaddr. No name resolution here: a host
 * name is recognised as one and handed back, so the caller can resolve it
 * off the schedulers (the blocking pool, docs/design/sockets.md).
 *
 * Text forms (read by amb__addr_parse, written by amb__addr_format):
 *   1.2.3.4:80              IPv4, dotted quad, each part 0..255, no
 *                           leading zeros (inet_pton's strict form)
 *   [::1]:80                IPv6 in brackets (required with a port)
 *   [fe80::1%2]:80          IPv6 with a zone: an interface index or name
 *   unix:/run/app.sock      a Unix-domain path (at most 107 bytes)
 *   unix:@name              a Linux abstract name (the '@' is the NUL)
 * A host alone (amb__addr_from_host) may also be an IPv6 literal without
 * brackets ("::1") or a DNS name ("example.com").
 *
 * Ports are decimal 0..65535 (1 to 5 digits, no sign); 0 means "any" where
 * an address is bound (the kernel picks a port).
 *
 * Invariants: an amb__addr is plain data (copy it with =); the bytes after
 * the used ones are zero, so two equal addresses compare equal with
 * memcmp; an address that came out of a parse, a conversion or a format
 * always goes back through the others unchanged (round trip). Pure
 * functions of their arguments, any thread, no allocation (a zone name
 * asks the kernel for its index: if_nametoindex, a local call that does
 * not block on the network).
 */
#ifndef AMB_IO_ADDR_H
#define AMB_IO_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef enum amb__addr_family {
    AMB__ADDR_NONE = 0,
    AMB__ADDR_INET,  /* IPv4: ip[0..4) */
    AMB__ADDR_INET6, /* IPv6: ip[0..16), scope_id */
    AMB__ADDR_UNIX,  /* path[0..path_len); an abstract name starts with '\0' */
} amb__addr_family;

/* sun_path holds 108 bytes; we keep one for a terminating NUL so that a
 * path is a C string for every tool that reads it back. */
#define AMB__ADDR_PATH_MAX 107

/* Longest text of an address: "unix:" and a path, or a bracketed IPv6
 * with a zone and a port. */
#define AMB__ADDR_TEXT_MAX (5 + AMB__ADDR_PATH_MAX + 1)

typedef struct amb__addr {
    uint8_t family;    /* amb__addr_family */
    uint8_t path_len;  /* UNIX */
    uint16_t port;     /* INET, INET6: host order */
    uint32_t scope_id; /* INET6: zone (interface index), 0 for none */
    uint8_t ip[16];
    char path[AMB__ADDR_PATH_MAX + 1];
} amb__addr;

/* Reads a port: 1 to 5 decimal digits, value 0..65535. AMB_ESYNTAX
 * otherwise (empty, a sign, a non-digit, a value above 65535). */
int amb__addr_parse_port(const char *s, size_t len, uint16_t *out);

/* Reads a host text[0..len) with port into *out: an IPv4 literal, an IPv6
 * literal (brackets optional, a %zone allowed) or "unix:PATH" (port
 * ignored). Returns:
 *   AMB_ENOTFOUND  the host is a well-formed DNS name, not a literal:
 *                  resolve it (*out untouched);
 *   AMB_ESYNTAX    neither a literal nor a valid name ("1.2.3.256",
 *                  "[::1", "a..b", an empty host, "unix:");
 *   AMB_ERANGE     a Unix path longer than AMB__ADDR_PATH_MAX;
 *   AMB_EADDRNOTAVAIL  a zone naming no interface of this host. */
int amb__addr_from_host(const char *host, size_t len, uint16_t port, amb__addr *out);

/* True when host[0..len) is a syntactically valid DNS name (labels of 1..63
 * letters, digits and '-', not starting or ending with '-', 253 bytes at
 * most, one trailing dot allowed) that is not an address literal. */
bool amb__addr_is_name(const char *host, size_t len);

/* Splits "HOST:PORT", "[IPV6]:PORT" or "unix:PATH" into its host (borrowed
 * from text; brackets removed; "unix:PATH" whole) and port (0 for unix:).
 * With port_optional, a host alone is accepted too and its port is 0 (then
 * a bare IPv6 literal "::1" is a host: without brackets, its colons cannot
 * start a port). An empty host (":80", Go's way of saying every interface)
 * is returned empty: the caller decides what it means. AMB_ESYNTAX for a
 * missing or bad port, unbalanced brackets, or a bare IPv6 literal with
 * port_optional false. */
int amb__addr_split(const char *text, size_t len, bool port_optional, const char **host,
                    size_t *host_len, uint16_t *port);

/* amb__addr_split then amb__addr_from_host: numeric text to an address. A
 * name is AMB_ENOTFOUND as above. */
int amb__addr_parse(const char *text, size_t len, bool port_optional, amb__addr *out);

/* Writes a's text form (above) into buf[0..cap) with a NUL, its length
 * without the NUL into *len (may be NULL). AMB_EBUFSIZE when cut (*len then
 * holds the length needed), AMB_EBADARG for an address of no family. An
 * unnamed Unix socket (path_len 0, as getpeername reports an unbound
 * client) is "unix:". */
int amb__addr_format(const amb__addr *a, char *buf, size_t cap, size_t *len);

/* The kernel's form of a, in *ss, its length in *sslen. AMB_EBADARG for an
 * address of no family. */
int amb__addr_to_sockaddr(const amb__addr *a, struct sockaddr_storage *ss,
                          socklen_t *sslen);

/* *out from the kernel's form sa[0..len). AMB_ENOTSUP for a family other
 * than AF_INET, AF_INET6 and AF_UNIX; AMB_EBADARG for a length too short
 * for its family. */
int amb__addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, amb__addr *out);

#endif /* AMB_IO_ADDR_H */

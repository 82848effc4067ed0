/*
 * ambitious/socket.h - sockets that block only the calling process: TCP
 * and Unix stream sockets (gen_tcp), UDP (gen_udp), TLS over either
 * stream kind, passive calls and active mode, owned by a process like an
 * Erlang port.
 *
 * Rules for the whole layer:
 *   - A socket (amb_socket) is a port term #Port<0.N>: a value, copied and
 *     compared freely, never dangling (a closed or unknown one is
 *     AMB_ECLOSED).
 *   - Every socket has an owner, the process that opened or accepted it.
 *     When the owner ends (normally, by a crash, by a kill), its sockets
 *     are closed. Active-mode messages go to the owner.
 *     amb_inet_controlling_process gives a socket to another process.
 *   - Any process may send on, close, shut down, ask about and set options
 *     of a socket; only the owner may change its owner. Calls of the same
 *     direction are served one at a time, in order (two processes in
 *     amb_tcp_accept on one listener each get their own connection; two
 *     senders' messages never interleave).
 *   - A call that waits (accept, connect, recv, send) parks only its
 *     process; a process killed while it waits is torn down at once and
 *     the socket stays usable by others (docs/design/sockets.md §4.3).
 *   - Host names are resolved on the blocking pool (amb_blocking_call);
 *     literal addresses and "unix:PATH" never are. TLS contexts that name
 *     files read them on the pool too.
 *   - Times are int64_t ms like receive's: 0 polls, AMB_INFINITY waits.
 *   - Calls take self (the calling process) first, as in process.h.
 *   - Errors: AMB_EBADARG (misuse), AMB_ECLOSED (the socket is closed, or
 *     was closed while the call waited), AMB_ETIMEDOUT, AMB_ENOMEM, and the
 *     socket codes of core.h (refused, reset, address in use, unreachable,
 *     no such host, message too large, TLS, certificate), as each function
 *     lists.
 */
#ifndef AMBITIOUS_SOCKET_H
#define AMBITIOUS_SOCKET_H

#include "process.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef amb_term amb_socket;

/* ---- addresses ---------------------------------------------------------- */

#define AMB_ADDR_INET     1u /* IPv4 */
#define AMB_ADDR_INET6    2u /* IPv6 */
#define AMB_ADDR_UNIX     3u /* a Unix path, or a Linux abstract name */
#define AMB_ADDR_PATH_MAX 107

/* An address as plain data (copy with =). Bytes past the used ones are
 * zero, so equal addresses compare equal with memcmp. */
typedef struct amb_addr {
    uint8_t family;    /* AMB_ADDR_* */
    uint8_t path_len;  /* UNIX: bytes of path; an abstract name starts with '\0' */
    uint16_t port;     /* INET, INET6 */
    uint32_t scope_id; /* INET6: the zone's interface index, 0 for none */
    uint8_t ip[16];    /* INET: ip[0..4) */
    char path[AMB_ADDR_PATH_MAX + 1];
} amb_addr;

/* Reads "1.2.3.4:80", "[::1]:80", "[fe80::1%eth0]:80", "unix:/path" or
 * "unix:@abstract" (with port_optional, also a host alone: port 0). No
 * name resolution: AMB_ENOTFOUND when the host is a DNS name (resolve it
 * with amb_inet_getaddrs), AMB_ESYNTAX when it is malformed, AMB_ERANGE for
 * a Unix path over AMB_ADDR_PATH_MAX bytes, AMB_EADDRNOTAVAIL for an unknown
 * zone. Any thread. */
AMB_API int amb_addr_parse(const char *text, size_t len, bool port_optional,
                           amb_addr *out);
/* Writes a's text (the forms above) into buf[0..cap) with a NUL, its length
 * into *len (may be NULL). AMB_EBUFSIZE (then *len is the size needed),
 * AMB_EBADARG. Any thread. */
AMB_API int amb_addr_format(const amb_addr *a, char *buf, size_t cap, size_t *len);
/* Erlang's forms: {A,B,C,D} or the 8-tuple of an IPv6 address, and
 * {local, Path} (without the port, which travels beside it in Erlang's
 * messages). AMB_NONE on ENOMEM; amb_addr_from_term: AMB_ETYPE. */
AMB_API amb_term amb_addr_to_term(amb_heap *heap, const amb_addr *a);
AMB_API int amb_addr_from_term(amb_term ip, uint16_t port, amb_addr *out);

/* Resolves host (a name or a literal) for port: up to cap addresses into
 * addrs, their count in *n (IPv6 and IPv4 in the order the system
 * prefers). Runs getaddrinfo on the blocking pool; the process waits.
 * AMB_ENOHOST (no such name), AMB_EAGAIN (the resolver failed for now),
 * AMB_EBADARG, AMB_ENOMEM. Inside a process. */
AMB_API int amb_inet_getaddrs(amb_proc *self, const char *host, uint16_t port,
                              amb_addr *addrs, size_t cap, size_t *n);

/* ---- options ------------------------------------------------------------ */

#define AMB_ACTIVE_ONCE ((int32_t)-1) /* {active, once} */
#define AMB_ACTIVE_TRUE ((int32_t)-2) /* {active, true} */
/* 0: passive ({active, false}); 1..32767: {active, N} */

#define AMB_PACKET_RAW  0u
#define AMB_PACKET_1    1u
#define AMB_PACKET_2    2u
#define AMB_PACKET_4    4u
#define AMB_PACKET_LINE 5u

typedef struct amb_tls_ctx amb_tls_ctx;

/* Socket options: inputs only; zero is the default in every field. */
typedef struct amb_sock_opts {
    int32_t active;        /* see AMB_ACTIVE_*: default passive */
    unsigned packet;       /* AMB_PACKET_*: default raw */
    size_t packet_size;    /* largest packet or line accepted: default 1 MiB,
                              at most 1 GiB; AMB_EMSGSIZE above it */
    char line_delimiter;   /* AMB_PACKET_LINE: default '\n' */
    bool nodelay;          /* TCP_NODELAY */
    bool keepalive;        /* SO_KEEPALIVE */
    bool reuseport;        /* listen: SO_REUSEPORT */
    bool ipv6_only;        /* an IPv6 socket: IPV6_V6ONLY */
    int backlog;           /* listen: default SOMAXCONN */
    size_t recbuf, sndbuf; /* SO_RCVBUF, SO_SNDBUF: default the kernel's */
    size_t buffer;         /* bytes read per receive call: default 16 KiB */
    unsigned family;       /* AMB_ADDR_INET or _INET6 to restrict a name's
                              addresses: default either */
    amb_tls_ctx *tls;      /* TLS over this socket (borrowed during the
                              call; the socket keeps its own reference) */
    const char *tls_name;  /* client: the name the certificate must be for;
                              default the host connected to */
} amb_sock_opts;

/* Which fields amb_inet_setopts applies (a bit per field). */
#define AMB_SOCKOPT_ACTIVE    (1u << 0)
#define AMB_SOCKOPT_PACKET    (1u << 1) /* packet, packet_size, line_delimiter */
#define AMB_SOCKOPT_NODELAY   (1u << 2)
#define AMB_SOCKOPT_KEEPALIVE (1u << 3)
#define AMB_SOCKOPT_RECBUF    (1u << 4)
#define AMB_SOCKOPT_SNDBUF    (1u << 5)
#define AMB_SOCKOPT_BUFFER    (1u << 6)

/* Sets the fields of *opts named in which. active adds like Erlang's
 * {active, N}: N is added to the count left (and AMB_ACTIVE_ONCE / _TRUE /
 * 0 replace it); a count that reaches 0 turns the socket passive and sends
 * the owner {tcp_passive, S}. A new packet mode frames the bytes already
 * buffered. AMB_EBADARG (a value out of range, a field the socket kind does
 * not have), AMB_ECLOSED. Nothing changes on an error. Any process. */
AMB_API int amb_inet_setopts(amb_proc *self, amb_socket s, const amb_sock_opts *opts,
                             unsigned which);
/* The socket's options now (active: the count left) into *out. tls is
 * NULL; tls_name NULL. AMB_ECLOSED, AMB_EBADARG. Any process. */
AMB_API int amb_inet_getopts(amb_proc *self, amb_socket s, amb_sock_opts *out);

/* ---- TLS contexts ------------------------------------------------------- */

#define AMB_TLS_VERIFY_DEFAULT 0u /* client: the server; server: no client cert */
#define AMB_TLS_VERIFY_NONE    1u /* client: accept any server (say so on purpose) */
#define AMB_TLS_VERIFY_PEER    2u /* server: ask for a client certificate */
#define AMB_TLS_VERIFY_REQUIRE                         \
    3u /* server: a verified client certificate, or no \
          connection */

/* Inputs only; zero is the default. Each of certificate, key and CAs as
 * PEM text or as a file. */
typedef struct amb_tls_opts {
    bool server;
    const char *cert_pem, *cert_file;      /* our chain, leaf first */
    const char *key_pem, *key_file;        /* its key (unencrypted) */
    const char *ca_pem, *ca_file, *ca_dir; /* trusted CAs; default the system's */
    unsigned verify;                       /* AMB_TLS_VERIFY_* */
} amb_tls_opts;

/* A TLS context for many sockets in *out (owned: amb_tls_ctx_free; sockets
 * using it keep it alive). Files are read on the blocking pool. Copies
 * opts. AMB_EBADARG (a server without certificate and key, material that
 * is not PEM, a key that is not the certificate's, a verify mode the side
 * does not have), AMB_ENOTFOUND, AMB_EACCES (files), AMB_ENOMEM, AMB_ETLS.
 * Inside a process. */
AMB_API int amb_tls_ctx_new(amb_proc *self, const amb_tls_opts *opts, amb_tls_ctx **out);
/* Drops the caller's reference. NULL is fine. Any thread. */
AMB_API void amb_tls_ctx_free(amb_tls_ctx *ctx);

/* ---- stream sockets (gen_tcp): TCP, Unix, TLS over either ----------------- */

/* Connects to host:port (host: a name, an IPv4/IPv6 literal, or
 * "unix:PATH" with port 0), trying each address of a name in turn within
 * the timeout; with opts->tls, then does the TLS handshake (verifying the
 * server for opts->tls_name, default host). The caller owns *out.
 * AMB_ECONNREFUSED, AMB_EHOSTUNREACH, AMB_ENETUNREACH, AMB_ETIMEDOUT (the
 * timeout ran out; nothing is left open), AMB_ENOHOST, AMB_EADDRNOTAVAIL,
 * AMB_ENOTFOUND (no such Unix path), AMB_EACCES, AMB_ECERT, AMB_ETLS,
 * AMB_ESYSLIMIT (out of fds), AMB_ENOMEM, AMB_EBADARG. Inside a process. */
AMB_API int amb_tcp_connect(amb_proc *self, const char *host, uint16_t port,
                            const amb_sock_opts *opts, int64_t timeout_ms,
                            amb_socket *out);

/* A listening socket on host:port (host NULL or "": every interface, both
 * families; port 0: the kernel picks one, see amb_inet_sockname; "unix:PATH"
 * creates PATH, removed again at close). opts->tls makes accepted sockets
 * TLS servers. The caller owns *out. AMB_EADDRINUSE, AMB_EADDRNOTAVAIL,
 * AMB_EACCES, AMB_ENOHOST, AMB_ESYSLIMIT, AMB_ENOMEM, AMB_EBADARG. */
AMB_API int amb_tcp_listen(amb_proc *self, const char *host, uint16_t port,
                           const amb_sock_opts *opts, amb_socket *out);

/* Waits for a connection on listener; the accepted socket inherits the
 * listener's options, is owned by the caller, and has finished its TLS
 * handshake when the listener has TLS. Callers on one listener are served
 * in order. AMB_ETIMEDOUT; AMB_ESYSLIMIT (out of fds: the connection stays
 * queued and the listener keeps working; retry after freeing fds or
 * backing off); AMB_ECERT, AMB_ETLS (that client's handshake failed; the
 * listener is fine); AMB_ECLOSED (the listener was closed); AMB_ENOMEM. */
AMB_API int amb_tcp_accept(amb_proc *self, amb_socket listener, int64_t timeout_ms,
                           amb_socket *out);

/* Sends all len bytes of data (with the packet header of a {packet, N}
 * socket), or fails: AMB_ETIMEDOUT after timeout_ms with *sent (may be NULL)
 * bytes gone (the stream may then be mid-message: close it unless the
 * protocol can resume); AMB_ECLOSED (closed here, or by the peer: EPIPE);
 * AMB_ECONNRESET; AMB_EMSGSIZE (too long for the packet header). A send is
 * atomic with respect to other sends on the socket. Any process. data is
 * read during the call only. */
AMB_API int amb_tcp_send(amb_proc *self, amb_socket s, const void *data, size_t len,
                         int64_t timeout_ms, size_t *sent);

/* Receives into buf[0..cap) and *n: in raw mode, len 0 takes what has
 * arrived (at least 1 byte) and len > 0 exactly len bytes (len <= cap); in
 * a packet mode (len must be 0) one whole packet or line. Passive sockets
 * only (an active one is AMB_ESTATE). AMB_ETIMEDOUT (nothing taken; bytes
 * of an unfinished packet stay buffered), AMB_EBUFSIZE (the packet is
 * larger than cap: *n says its size and it stays for the next call),
 * AMB_EMSGSIZE (a packet over packet_size: the stream has lost its
 * framing), AMB_ECLOSED (the peer closed; in raw and line mode the bytes
 * left come first), AMB_ECONNRESET, AMB_ETLS. Any process; callers are
 * served in order. */
AMB_API int amb_tcp_recv(amb_proc *self, amb_socket s, size_t len, int64_t timeout_ms,
                         void *buf, size_t cap, size_t *n);

#define AMB_SHUT_READ  1u
#define AMB_SHUT_WRITE 2u
#define AMB_SHUT_BOTH  3u
/* shutdown(2); for TLS, AMB_SHUT_WRITE sends close_notify first.
 * AMB_ECLOSED, AMB_ENOTCONN, AMB_EBADARG. Any process. */
AMB_API int amb_tcp_shutdown(amb_proc *self, amb_socket s, unsigned how);

/* Upgrades a connected stream socket to TLS (STARTTLS): as a client
 * (verifying name, NULL only with AMB_TLS_VERIFY_NONE) or a server, by ctx.
 * Buffered plaintext bytes must have been read first (AMB_ESTATE
 * otherwise). Errors as amb_tcp_connect's handshake part. */
AMB_API int amb_tcp_starttls(amb_proc *self, amb_socket s, amb_tls_ctx *ctx,
                             const char *name, int64_t timeout_ms);

/* ---- datagrams (gen_udp) -------------------------------------------------- */

/* A UDP socket bound to host:port (NULL host: every interface; port 0: any).
 * The caller owns it. Errors as amb_tcp_listen's. */
AMB_API int amb_udp_open(amb_proc *self, const char *host, uint16_t port,
                         const amb_sock_opts *opts, amb_socket *out);
/* Sends one datagram to *to (NULL: the connected peer). AMB_EMSGSIZE,
 * AMB_EHOSTUNREACH, AMB_ENETUNREACH, AMB_ECONNREFUSED (an earlier datagram
 * was refused, ICMP), AMB_ECLOSED. Never waits for the peer; may wait for
 * room in the socket's buffer up to timeout_ms. */
AMB_API int amb_udp_send(amb_proc *self, amb_socket s, const amb_addr *to,
                         const void *data, size_t len, int64_t timeout_ms);
/* Receives one datagram into buf[0..cap), its length in *n and its sender in
 * *from (may be NULL). A datagram longer than cap is cut to cap and the call
 * returns AMB_EMSGSIZE with the first cap bytes stored (a datagram cannot be
 * read twice; 65,507 bytes of cap always suffice). AMB_ETIMEDOUT, AMB_ECLOSED,
 * AMB_ESTATE (active socket). */
AMB_API int amb_udp_recv(amb_proc *self, amb_socket s, int64_t timeout_ms, void *buf,
                         size_t cap, size_t *n, amb_addr *from);

/* ---- every kind ------------------------------------------------------------ */

/* Closes s: waiting callers get AMB_ECLOSED, the fd is closed when the last
 * of them has left, active messages already delivered stay in the owner's
 * mailbox. Closing a closed socket is 0 (as gen_tcp:close). Any process. */
AMB_API int amb_inet_close(amb_proc *self, amb_socket s);

/* Makes pid the owner of s. Only the owner may (AMB_ENOTOWNER otherwise);
 * AMB_ENOPROC when pid is not a live local process (s stays the caller's).
 * Active messages of s already in the caller's mailbox move to pid, in
 * order, ahead of any later ones (as inet:tcp_controlling_process does). */
AMB_API int amb_inet_controlling_process(amb_proc *self, amb_socket s, amb_pid pid);

/* The peer's and our own address. AMB_ENOTCONN, AMB_ECLOSED. Any process. */
AMB_API int amb_inet_peername(amb_proc *self, amb_socket s, amb_addr *out);
AMB_API int amb_inet_sockname(amb_proc *self, amb_socket s, amb_addr *out);

#ifdef __cplusplus
}
#endif
#endif /* AMBITIOUS_SOCKET_H */

/*
 * tls.h - TLS over a non-blocking socket with OpenSSL, as steps: each call
 * does what it can now and says whether it must wait for the socket to be
 * readable or writable. No processes and no poller here: the socket layer
 * (docs/design/sockets.md, "TLS") turns AMB__TLS_WANT_READ into a wait on
 * the read slot of its descriptor, and the tests drive two ends over a
 * socketpair with a plain loop.
 *
 * Defaults that make a careless configuration safe:
 *   - A client verifies the server's certificate chain (against the CAs it
 *     was given, else the system's trust store) and that the certificate is
 *     for the name it connects to (a DNS name, or an IP literal checked
 *     against the certificate's IP addresses); turning verification off
 *     takes AMB__TLS_VERIFY_NONE, spelled out.
 *   - TLS 1.2 is the oldest version spoken.
 *   - A server asks for client certificates only when told to.
 *
 * Invariants:
 *   - Calls on one amb__tls never overlap (OpenSSL's SSL object is not
 *     thread-safe, not even one reader and one writer): the socket layer
 *     serialises them. Different amb__tls may be used on different threads
 *     at once; an amb__tls_ctx is shared read-only by all its connections.
 *   - No call suspends, so a call starts and ends on one thread: OpenSSL's
 *     per-thread error queue is cleared before each step and drained after
 *     it, never left for another process that runs on this thread next.
 *   - After a WANT result the same step is called again with the same
 *     arguments once the socket is ready (for a write, the same bytes; the
 *     buffer may move, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
 *   - Decrypted bytes can be buffered inside OpenSSL (amb__tls_pending):
 *     the socket layer reads them before it waits for the socket, or they
 *     would sit there with no edge ever coming for them.
 *   - An idle connection releases OpenSSL's record buffers
 *     (SSL_MODE_RELEASE_BUFFERS): 10,000 idle TLS connections do not hold
 *     10,000 pairs of 16 KiB buffers.
 *
 * Errors of the steps: AMB_ECERT (a certificate was refused: ours by the
 * peer, or the peer's by us: untrusted, expired, another name, missing when
 * required), AMB_ETLS (any other protocol failure: a non-TLS peer, no
 * common version or cipher), AMB_ECLOSED (the peer ended the stream: with
 * close_notify, or without one, which TLS calls a truncation and Erlang's
 * ssl reports as closed too), the socket's own errors (AMB_ECONNRESET, ...,
 * from oserr.h), AMB_ENOMEM. amb__tls_error_text says more.
 *
 * Memory: OpenSSL allocates through its own allocator, not the library's
 * hook (CRYPTO_set_mem_functions is process-wide and must run before
 * OpenSSL's first allocation, which an embedding program may already have
 * made); the dist layer's libcrypto use has the same exception.
 */
#ifndef AMB_IO_TLS_H
#define AMB_IO_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* The non-error results of a step (positive: not AMB_E* codes). */
#define AMB__TLS_WANT_READ  1 /* call again once the socket is readable */
#define AMB__TLS_WANT_WRITE 2 /* call again once the socket is writable */

typedef enum amb__tls_verify {
    AMB__TLS_VERIFY_DEFAULT = 0, /* client: the peer; server: no client certificate */
    AMB__TLS_VERIFY_NONE,        /* client: accept any server (explicit opt-out) */
    AMB__TLS_VERIFY_PEER,        /* server: ask for a client certificate, verify it
                                    if one is sent */
    AMB__TLS_VERIFY_REQUIRE,     /* server: a verified client certificate or no
                                    connection */
} amb__tls_verify;

/* Configuration of one context; zero means the default in every field.
 * Each of certificate, key and CAs is given as PEM text (a C string) or as
 * a file (reading files blocks: the socket layer builds contexts through
 * the blocking pool). Copied: nothing is kept after amb__tls_ctx_new. */
typedef struct amb__tls_config {
    bool server;
    const char *cert_pem, *cert_file; /* our certificate chain, leaf first */
    const char *key_pem, *key_file;   /* its private key */
    const char *ca_pem, *ca_file;     /* CAs to trust; default: the system's */
    const char *ca_dir;               /* a hashed CA directory (c_rehash) */
    amb__tls_verify verify;
} amb__tls_config;

typedef struct amb__tls_ctx amb__tls_ctx;
typedef struct amb__tls amb__tls;

/* A context for many connections, in *out (owned: amb__tls_ctx_free).
 * AMB_EBADARG (a server without a certificate and key, a PEM text that is
 * no certificate or key, a key that does not match the certificate, a
 * verify mode the side does not have), AMB_ENOTFOUND (a file that does not
 * exist), AMB_EACCES (one that cannot be read), AMB_ENOMEM, AMB_ETLS. Blocks
 * on files. Any thread. */
int amb__tls_ctx_new(const amb__tls_config *cfg, amb__tls_ctx **out);

/* Drops the caller's reference; connections made from ctx keep it alive
 * until they are freed. NULL is fine. */
void amb__tls_ctx_free(amb__tls_ctx *ctx);

/* A connection over fd (connected, non-blocking; not owned: the caller
 * closes it after amb__tls_free) in *out (owned: amb__tls_free). For a
 * client, peer_name is the name connected to: sent as SNI when it is a DNS
 * name, and what the certificate must be for; NULL only with
 * AMB__TLS_VERIFY_NONE. Ignored for a server. AMB_EBADARG, AMB_ENOMEM. */
int amb__tls_new(amb__tls_ctx *ctx, int fd, const char *peer_name, amb__tls **out);

/* Frees the connection (sends nothing: amb__tls_shutdown first for a clean
 * close). NULL is fine. */
void amb__tls_free(amb__tls *t);

/* One step of the handshake: 0 when it is done (data may flow),
 * AMB__TLS_WANT_READ / WANT_WRITE, or an error (above). */
int amb__tls_handshake(amb__tls *t);

/* Up to cap (> 0) decrypted bytes into buf, their count in *n (>= 1): 0,
 * a WANT result (a renegotiation or key update can want a write), or an
 * error; AMB_ECLOSED at the end of the stream. */
int amb__tls_read(amb__tls *t, void *buf, size_t cap, size_t *n);

/* Up to len (> 0) bytes of buf encrypted and written; *n (>= 1) says how
 * many were taken (less than len when the socket filled up: call again
 * with the rest). 0, a WANT result (nothing taken), or an error. */
int amb__tls_write(amb__tls *t, const void *buf, size_t len, size_t *n);

/* Sends close_notify (once; later calls return 0 at once): 0, or
 * AMB__TLS_WANT_WRITE, or an error. Does not wait for the peer's. */
int amb__tls_shutdown(amb__tls *t);

/* True when decrypted or undecrypted bytes wait inside OpenSSL: read them
 * before waiting for the socket. */
bool amb__tls_pending(const amb__tls *t);

/* Why the last failed step failed ("certificate verify failed: hostname
 * mismatch"), or "" when it did not fail. Borrowed from t until its next
 * call. */
const char *amb__tls_error_text(const amb__tls *t);

/* The negotiated protocol ("TLSv1.3"), or "" before the handshake is done.
 * Static. */
const char *amb__tls_version(const amb__tls *t);

#endif /* AMB_IO_TLS_H */

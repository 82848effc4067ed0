/*
 * tls.c - TLS steps over a non-blocking fd with OpenSSL (tls.h has the
 * contract, the safe defaults and the invariants).
 *
 * OpenSSL does the socket reads and writes itself, through a BIO of ours
 * (below) rather than its socket BIO, whose write() raises SIGPIPE when the
 * peer has gone: ours sends with MSG_NOSIGNAL, so a dead peer is an error
 * (AMB_ECLOSED), never a signal that kills the OS process. A step that
 * hits EAGAIN comes back as SSL_ERROR_WANT_READ/WRITE, which we pass up as
 * AMB__TLS_WANT_*. Every step clears the thread's error queue first and
 * classifies, then clears, whatever the step left in it (step_result), so
 * no error outlives the call that caused it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "io/oserr.h"
#include "io/tls.h"

struct amb__tls_ctx {
    SSL_CTX *ssl_ctx;
    bool server;
};

struct amb__tls {
    SSL *ssl;
    bool shut;     /* close_notify sent */
    char err[200]; /* why the last step failed */
};

/* ---- the socket BIO: recv/send on the fd kept in the BIO's data ----- */

static int bio_fd(BIO *b)
{
    return (int)(intptr_t)BIO_get_data(b);
}

static int bio_write(BIO *b, const char *in, int n)
{
    ssize_t r = send(bio_fd(b), in, (size_t)n, MSG_NOSIGNAL);
    BIO_clear_retry_flags(b);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(b);
    return (int)r;
}

static int bio_read(BIO *b, char *out, int n)
{
    ssize_t r = recv(bio_fd(b), out, (size_t)n, 0);
    BIO_clear_retry_flags(b);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(b);
    if (r == 0)
        BIO_set_flags(b, BIO_FLAGS_IN_EOF); /* BIO_eof: how TLS tells a truncation */
    return (int)r;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* nothing is buffered here */
        return 1;
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

/* Made once per OS process and kept (OpenSSL keeps its own methods the
 * same way); NULL when out of memory. */
static void bio_method_make(void)
{
    BIO_METHOD *m =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "amb-socket");
    if (m != NULL &&
        (BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_read(m, bio_read) != 1 ||
         BIO_meth_set_ctrl(m, bio_ctrl) != 1 ||
         BIO_meth_set_create(m, bio_create) != 1)) {
        BIO_meth_free(m);
        m = NULL;
    }
    bio_method = m;
}

/* A BIO over fd, owned by the caller (SSL_set_bio takes it). */
static BIO *bio_new(int fd)
{
    pthread_once(&bio_once, bio_method_make);
    if (bio_method == NULL)
        return NULL;
    BIO *b = BIO_new(bio_method);
    if (b != NULL)
        BIO_set_data(b, (void *)(intptr_t)fd);
    return b;
}

/* ---- contexts --------------------------------------------------------- */

/* Keys are never prompted for: an encrypted key without a passphrase is
 * refused instead of OpenSSL reading one from the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* The code for a failure to load configuration: a file that is missing or
 * unreadable, else material that is not what it should be. Drains the
 * error queue. */
static int load_error(void)
{
    int rc = AMB_EBADARG;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_LIB(e) != ERR_LIB_SYS)
            continue;
        int err = ERR_GET_REASON(e);
        if (err == ENOENT)
            rc = AMB_ENOTFOUND;
        else if (err == EACCES || err == EPERM)
            rc = AMB_EACCES;
        else if (err == ENOMEM)
            rc = AMB_ENOMEM;
    }
    return rc;
}

/* The certificates of a PEM text, in order (owned: sk_X509_pop_free), or
 * NULL when the text holds none (or out of memory). */
static STACK_OF(X509) * read_certs(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    STACK_OF(X509) *certs = sk_X509_new_null();
    if (b == NULL || certs == NULL)
        goto fail;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
        if (sk_X509_push(certs, x) == 0) {
            X509_free(x);
            goto fail;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(b);
    if (sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        return NULL;
    }
    return certs;
fail:
    BIO_free(b);
    sk_X509_pop_free(certs, X509_free);
    return NULL;
}

/* Our chain from PEM: the first certificate is the leaf, the others its
 * chain. */
static int use_cert_pem(SSL_CTX *c, const char *pem)
{
    STACK_OF(X509) *certs = read_certs(pem);
    if (certs == NULL)
        return AMB_EBADARG;
    int ok = SSL_CTX_use_certificate(c, sk_X509_value(certs, 0));
    for (int i = 1; ok && i < sk_X509_num(certs); i++)
        ok = SSL_CTX_add1_chain_cert(c, sk_X509_value(certs, i));
    sk_X509_pop_free(certs, X509_free);
    return ok ? 0 : load_error();
}

static int use_key_pem(SSL_CTX *c, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (b == NULL)
        return AMB_ENOMEM;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    if (k == NULL)
        return load_error();
    int ok = SSL_CTX_use_PrivateKey(c, k);
    EVP_PKEY_free(k);
    return ok ? 0 : load_error();
}

static int trust_pem(SSL_CTX *c, const char *pem)
{
    STACK_OF(X509) *certs = read_certs(pem);
    if (certs == NULL)
        return AMB_EBADARG;
    X509_STORE *store = SSL_CTX_get_cert_store(c);
    int ok = 1;
    for (int i = 0; ok && i < sk_X509_num(certs); i++)
        ok = X509_STORE_add_cert(store, sk_X509_value(certs, i));
    sk_X509_pop_free(certs, X509_free);
    return ok ? 0 : load_error();
}

static int configure(SSL_CTX *c, const amb__tls_config *cfg)
{
    bool ours = cfg->cert_pem != NULL || cfg->cert_file != NULL;
    bool key = cfg->key_pem != NULL || cfg->key_file != NULL;
    bool cas = cfg->ca_pem != NULL || cfg->ca_file != NULL || cfg->ca_dir != NULL;
    if (ours != key || (cfg->server && !ours))
        return AMB_EBADARG;
    bool client_verify = !cfg->server && cfg->verify == AMB__TLS_VERIFY_DEFAULT;
    bool server_verify = cfg->server && (cfg->verify == AMB__TLS_VERIFY_PEER ||
                                         cfg->verify == AMB__TLS_VERIFY_REQUIRE);
    if ((cfg->server && cfg->verify == AMB__TLS_VERIFY_NONE) ||
        (!cfg->server && cfg->verify != AMB__TLS_VERIFY_DEFAULT &&
         cfg->verify != AMB__TLS_VERIFY_NONE))
        return AMB_EBADARG; /* a mode this side does not have */

    if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1)
        return AMB_ETLS;
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(c, no_passphrase);

    int rc = 0;
    if (cfg->cert_pem != NULL)
        rc = use_cert_pem(c, cfg->cert_pem);
    else if (cfg->cert_file != NULL &&
             SSL_CTX_use_certificate_chain_file(c, cfg->cert_file) != 1)
        rc = load_error();
    if (rc == 0 && cfg->key_pem != NULL)
        rc = use_key_pem(c, cfg->key_pem);
    else if (rc == 0 && cfg->key_file != NULL &&
             SSL_CTX_use_PrivateKey_file(c, cfg->key_file, SSL_FILETYPE_PEM) != 1)
        rc = load_error();
    if (rc == 0 && ours && SSL_CTX_check_private_key(c) != 1)
        rc = AMB_EBADARG; /* the key is not the certificate's */
    if (rc != 0)
        return rc;

    if (cfg->ca_pem != NULL && (rc = trust_pem(c, cfg->ca_pem)) != 0)
        return rc;
    if ((cfg->ca_file != NULL || cfg->ca_dir != NULL) &&
        SSL_CTX_load_verify_locations(c, cfg->ca_file, cfg->ca_dir) != 1)
        return load_error();
    if (!cas && (client_verify || server_verify) &&
        SSL_CTX_set_default_verify_paths(c) != 1)
        return load_error();

    int mode = SSL_VERIFY_NONE;
    if (client_verify || server_verify)
        mode = SSL_VERIFY_PEER;
    if (cfg->server && cfg->verify == AMB__TLS_VERIFY_REQUIRE)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(c, mode, NULL);
    return 0;
}

int amb__tls_ctx_new(const amb__tls_config *cfg, amb__tls_ctx **out)
{
    static const amb__tls_config defaults;
    if (out == NULL)
        return AMB_EBADARG;
    if (cfg == NULL)
        cfg = &defaults;
    amb__tls_ctx *ctx = amb__malloc(sizeof *ctx);
    if (ctx == NULL)
        return AMB_ENOMEM;
    ERR_clear_error();
    ctx->server = cfg->server;
    ctx->ssl_ctx = SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());
    int rc = ctx->ssl_ctx == NULL ? AMB_ENOMEM : configure(ctx->ssl_ctx, cfg);
    ERR_clear_error();
    if (rc != 0) {
        SSL_CTX_free(ctx->ssl_ctx);
        amb__free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void amb__tls_ctx_free(amb__tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx); /* each SSL holds its own reference */
    amb__free(ctx);
}

static bool is_ip_literal(const char *name)
{
    unsigned char ip[16];
    return inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
}

int amb__tls_new(amb__tls_ctx *ctx, int fd, const char *peer_name, amb__tls **out)
{
    if (ctx == NULL || fd < 0 || out == NULL)
        return AMB_EBADARG;
    bool server = ctx->server;
    bool verify = (SSL_CTX_get_verify_mode(ctx->ssl_ctx) & SSL_VERIFY_PEER) != 0;
    if (!server && verify && (peer_name == NULL || peer_name[0] == '\0'))
        return AMB_EBADARG; /* verifying a certificate means: for which name? */
    amb__tls *t = amb__malloc(sizeof *t);
    if (t == NULL)
        return AMB_ENOMEM;
    memset(t, 0, sizeof *t);
    ERR_clear_error();
    int rc = AMB_ENOMEM;
    t->ssl = SSL_new(ctx->ssl_ctx);
    BIO *bio = t->ssl != NULL ? bio_new(fd) : NULL;
    if (bio == NULL)
        goto fail;
    SSL_set_bio(t->ssl, bio, bio); /* one BIO both ways; the SSL owns it */
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (peer_name != NULL && is_ip_literal(peer_name)) {
            /* an address: no SNI (RFC 6066 forbids it), the certificate's
             * IP addresses must hold it */
            if (verify &&
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), peer_name) != 1)
                goto fail;
        } else if (peer_name != NULL) {
            SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set_tlsext_host_name(t->ssl, peer_name) != 1 ||
                (verify && SSL_set1_host(t->ssl, peer_name) != 1)) {
                rc = AMB_EBADARG; /* a name OpenSSL cannot use (too long) */
                goto fail;
            }
        }
    }
    ERR_clear_error();
    *out = t;
    return 0;
fail:
    ERR_clear_error();
    SSL_free(t->ssl);
    amb__free(t);
    return rc;
}

void amb__tls_free(amb__tls *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    amb__free(t);
}

/* Reasons that mean a certificate was refused, by us or by the peer (its
 * alert tells us which). */
static bool is_cert_reason(int reason)
{
    switch (reason) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

/* What a step that returned ret (with errno err right after it) means;
 * leaves the error queue empty and t->err set. */
static int step_result(amb__tls *t, int ret, int err)
{
    int rc;
    int e = SSL_get_error(t->ssl, ret);
    unsigned long q = ERR_peek_error();
    t->err[0] = '\0';
    switch (e) {
    case SSL_ERROR_NONE:
        rc = 0;
        break;
    case SSL_ERROR_WANT_READ:
        rc = AMB__TLS_WANT_READ;
        break;
    case SSL_ERROR_WANT_WRITE:
        rc = AMB__TLS_WANT_WRITE;
        break;
    case SSL_ERROR_ZERO_RETURN:
        rc = AMB_ECLOSED;
        snprintf(t->err, sizeof t->err, "the peer closed the stream (close_notify)");
        break;
    case SSL_ERROR_SYSCALL:
        /* the socket failed; with no errno it simply ended */
        rc = err != 0 && q == 0 ? amb__oserr_code(err) : AMB_ECLOSED;
        snprintf(t->err, sizeof t->err, "%s",
                 err != 0 ? amb__oserr_name(err) : "the peer closed the connection");
        break;
    case SSL_ERROR_SSL: {
        int reason = ERR_GET_REASON(q);
        long v = SSL_get_verify_result(t->ssl);
        bool verifying = (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER) != 0;
        if (verifying && v != X509_V_OK) {
            rc = AMB_ECERT;
            snprintf(t->err, sizeof t->err, "certificate verify failed: %s",
                     X509_verify_cert_error_string(v));
            break;
        }
        const char *why = ERR_reason_error_string(q);
        snprintf(t->err, sizeof t->err, "%s", why != NULL ? why : "TLS failure");
        if (ERR_GET_LIB(q) == ERR_LIB_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            rc = AMB_ECLOSED; /* no close_notify: a truncation, closed for Erlang */
        else if (ERR_GET_LIB(q) == ERR_LIB_SSL && is_cert_reason(reason))
            rc = AMB_ECERT;
        else if (ERR_GET_LIB(q) == ERR_LIB_SYS && ERR_GET_REASON(q) > 0)
            rc = amb__oserr_code(ERR_GET_REASON(q));
        else if (ERR_GET_REASON(q) == ERR_R_MALLOC_FAILURE)
            rc = AMB_ENOMEM;
        else
            rc = AMB_ETLS;
        break;
    }
    default:
        rc = AMB_ETLS;
        snprintf(t->err, sizeof t->err, "TLS failure (%d)", e);
        break;
    }
    ERR_clear_error();
    return rc;
}

int amb__tls_handshake(amb__tls *t)
{
    ERR_clear_error();
    errno = 0;
    int ret = SSL_do_handshake(t->ssl);
    int err = errno;
    return ret == 1 ? step_result(t, 1, 0) : step_result(t, ret, err);
}

int amb__tls_read(amb__tls *t, void *buf, size_t cap, size_t *n)
{
    if (cap == 0)
        return AMB_EBADARG;
    ERR_clear_error();
    errno = 0;
    size_t got = 0;
    int ret = SSL_read_ex(t->ssl, buf, cap, &got);
    int err = errno;
    int rc = step_result(t, ret, err);
    if (rc == 0)
        *n = got;
    return rc;
}

int amb__tls_write(amb__tls *t, const void *buf, size_t len, size_t *n)
{
    if (len == 0)
        return AMB_EBADARG;
    ERR_clear_error();
    errno = 0;
    size_t put = 0;
    int ret = SSL_write_ex(t->ssl, buf, len, &put);
    int err = errno;
    int rc = step_result(t, ret, err);
    if (rc == 0)
        *n = put;
    return rc;
}

int amb__tls_shutdown(amb__tls *t)
{
    if (t->shut)
        return 0;
    ERR_clear_error();
    errno = 0;
    int ret = SSL_shutdown(t->ssl);
    int err = errno;
    if (ret >= 0) { /* 0: ours sent, the peer's not seen yet (we do not wait) */
        t->shut = true;
        ERR_clear_error();
        return 0;
    }
    return step_result(t, ret, err);
}

bool amb__tls_pending(const amb__tls *t)
{
    return SSL_has_pending(t->ssl) == 1;
}

const char *amb__tls_error_text(const amb__tls *t)
{
    return t->err;
}

const char *amb__tls_version(const amb__tls *t)
{
    return SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : "";
}

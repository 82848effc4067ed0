/*
 * io_tls.c - the TLS steps (src/io/tls.h) without the runtime: a client
 * and a server over a non-blocking socketpair, driven by a loop that steps
 * whichever end is waiting. Certificates are made at test time
 * (tests/tls_test.h). Covered: a handshake and data both ways; a write
 * larger than the socket can hold going through WANT_WRITE in pieces;
 * verification on by default (no CA given: the system's store does not
 * know our CA); an untrusted chain, another host name, another IP address
 * and an expired certificate refused with AMB_ECERT on the client and a
 * failure on the server; verification turned off on purpose; client
 * certificates required and given; close_notify and a bare EOF; a write
 * to a peer that has gone (an error, never SIGPIPE); a peer
 * that does not speak TLS; certificates and keys from files, and the
 * errors for missing, malformed and mismatched ones; and OpenSSL's error
 * queue left empty after every step.
 */
#include <errno.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amb_test.h"
#include "io/tls.h"
#include "tls_test.h"

typedef struct pki {
    char *ca, *other_ca;         /* the CA we trust; one nobody trusts */
    char *leaf, *leaf_key;       /* DNS:localhost, IP:127.0.0.1, by ca */
    char *rogue, *rogue_key;     /* the same names, by other_ca */
    char *expired, *expired_key; /* by ca, expired yesterday */
    char *client, *client_key;   /* DNS:client, by ca */
} pki;

static pki make_pki(void)
{
    pki p;
    EVP_PKEY *ca_key = tls_test_key(), *other_key = tls_test_key();
    X509 *ca = tls_test_ca(ca_key, "amb test CA");
    X509 *other = tls_test_ca(other_key, "somebody else's CA");
    p.ca = tls_test_cert_pem(ca);
    p.other_ca = tls_test_cert_pem(other);

    struct {
        char **cert, **key;
        X509 *issuer;
        EVP_PKEY *issuer_key;
        const char *san;
        long from, to;
    } leaves[] = {
        {&p.leaf, &p.leaf_key, ca, ca_key, "DNS:localhost,IP:127.0.0.1", -1, 30},
        {&p.rogue, &p.rogue_key, other, other_key, "DNS:localhost,IP:127.0.0.1", -1, 30},
        {&p.expired, &p.expired_key, ca, ca_key, "DNS:localhost", -10, -1},
        {&p.client, &p.client_key, ca, ca_key, "DNS:client", -1, 30},
    };
    for (size_t i = 0; i < AMB_COUNTOF(leaves); i++) {
        EVP_PKEY *k = tls_test_key();
        X509 *x = tls_test_leaf(k, leaves[i].issuer, leaves[i].issuer_key, leaves[i].san,
                                leaves[i].from, leaves[i].to);
        *leaves[i].cert = tls_test_cert_pem(x);
        *leaves[i].key = tls_test_key_pem(k);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    X509_free(ca);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    return p;
}

static void free_pki(pki *p)
{
    char *all[] = {p->ca,        p->other_ca, p->leaf,        p->leaf_key, p->rogue,
                   p->rogue_key, p->expired,  p->expired_key, p->client,   p->client_key};
    for (size_t i = 0; i < AMB_COUNTOF(all); i++)
        free(all[i]);
}

typedef struct end {
    amb__tls_ctx *ctx;
    amb__tls *t;
    int fd;
    int rc; /* of the last step */
} end;

/* A client and a server over a socketpair with the configurations given;
 * the client connects to peer_name. */
static void connect_pair(end *c, end *s, const amb__tls_config *cc,
                         const amb__tls_config *sc, const char *peer_name)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    memset(c, 0, sizeof *c);
    memset(s, 0, sizeof *s);
    c->fd = fds[0];
    s->fd = fds[1];
    assert_ok(amb__tls_ctx_new(cc, &c->ctx));
    assert_ok(amb__tls_ctx_new(sc, &s->ctx));
    assert_ok(amb__tls_new(c->ctx, c->fd, peer_name, &c->t));
    assert_ok(amb__tls_new(s->ctx, s->fd, NULL, &s->t));
    c->rc = s->rc = AMB__TLS_WANT_READ;
}

static void close_end(end *e)
{
    amb__tls_free(e->t);
    amb__tls_ctx_free(e->ctx);
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    assert_int_equal(ERR_peek_error(), 0); /* no error left for the next user */
}

/* Steps both handshakes until neither can make progress. A socketpair
 * always has room for a handshake, so a bounded number of rounds is
 * enough; an end still waiting afterwards waits for something that will
 * never come. */
static void handshake(end *c, end *s)
{
    for (int round = 0; round < 100 && (c->rc > 0 || s->rc > 0); round++) {
        if (c->rc > 0)
            c->rc = amb__tls_handshake(c->t);
        if (s->rc > 0)
            s->rc = amb__tls_handshake(s->t);
        assert_int_equal(ERR_peek_error(), 0);
    }
}

/* Sends len bytes from one end and receives them at the other, stepping
 * both (the writer blocks on a full socket until the reader drains it). */
static void transfer(end *from, end *to, const uint8_t *data, size_t len)
{
    size_t sent = 0, got = 0;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    int pieces = 0; /* writes that took part of the rest, or none of it */
    for (int round = 0; got < len; round++) {
        assert_true(round < 1000000);
        if (sent < len) {
            size_t n = 0;
            int rc = amb__tls_write(from->t, data + sent, len - sent, &n);
            if (rc == 0 && n < len - sent)
                pieces++;
            if (rc == 0)
                sent += n;
            else if (rc == AMB__TLS_WANT_WRITE)
                pieces++;
            else
                fail_msg("write: %s (%s)", amb_err_name(rc),
                         amb__tls_error_text(from->t));
        }
        size_t n = 0;
        int rc = amb__tls_read(to->t, buf + got, len - got, &n);
        if (rc == 0)
            got += n;
        else if (rc != AMB__TLS_WANT_READ)
            fail_msg("read: %s (%s)", amb_err_name(rc), amb__tls_error_text(to->t));
    }
    assert_memory_equal(buf, data, len);
    free(buf);
    if (len > (1u << 20))
        assert_true(pieces > 0); /* the socket filled up on the way */
}

AMB_TEST(handshake_then_data_both_ways)
{
    pki p = make_pki();
    amb__tls_config cc = {.ca_pem = p.ca};
    amb__tls_config sc = {.server = true, .cert_pem = p.leaf, .key_pem = p.leaf_key};
    end c, s;
    connect_pair(&c, &s, &cc, &sc, "localhost");
    assert_string_equal(amb__tls_version(c.t), "");
    handshake(&c, &s);
    assert_ok(c.rc);
    assert_ok(s.rc);
    assert_string_equal(amb__tls_version(c.t), "TLSv1.3");
    transfer(&c, &s, (const uint8_t *)"PING", 4);
    transfer(&s, &c, (const uint8_t *)"PONG!", 5);
    assert_false(amb__tls_pending(c.t));

    /* four megabytes: the socket fills, a write takes part, the rest goes
     * later (partial writes, or WANT_WRITE when it is full to begin with) */
    size_t big = 4u << 20;
    uint8_t *data = malloc(big);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 12));
    transfer(&c, &s, data, big);
    free(data);
    close_end(&c);
    close_end(&s);
    free_pki(&p);
}

AMB_TEST(pending_bytes_are_read_before_waiting_for_the_socket)
{
    pki p = make_pki();
    amb__tls_config cc = {.ca_pem = p.ca};
    amb__tls_config sc = {.server = true, .cert_pem = p.leaf, .key_pem = p.leaf_key};
    end c, s;
    connect_pair(&c, &s, &cc, &sc, "localhost");
    handshake(&c, &s);
    assert_ok(c.rc);
    size_t n;
    assert_ok(amb__tls_write(s.t, "0123456789", 10, &n));
    uint8_t b[4];
    assert_ok(amb__tls_read(c.t, b, 4, &n)); /* the record holds 10 bytes */
    assert_int_equal(n, 4);
    assert_true(amb__tls_pending(c.t)); /* 6 more, with no edge on the socket */
    assert_ok(amb__tls_read(c.t, b, 4, &n));
    assert_ok(amb__tls_read(c.t, b, 4, &n));
    assert_int_equal(n, 2);
    assert_false(amb__tls_pending(c.t));
    assert_int_equal(amb__tls_read(c.t, b, 4, &n), AMB__TLS_WANT_READ);
    close_end(&c);
    close_end(&s);
    free_pki(&p);
}

/* The handshake the client refuses: AMB_ECERT with text on the client,
 * a failure on the server (it is told by an alert). */
static void expect_refused(const amb__tls_config *cc, const amb__tls_config *sc,
                           const char *peer_name, const char *why)
{
    end c, s;
    connect_pair(&c, &s, cc, sc, peer_name);
    handshake(&c, &s);
    if (c.rc != AMB_ECERT)
        fail_msg("client: %s (%s), expected AMB_ECERT", amb_err_name(c.rc),
                 amb__tls_error_text(c.t));
    if (strstr(amb__tls_error_text(c.t), why) == NULL)
        fail_msg("client says \"%s\", expected it to mention \"%s\"",
                 amb__tls_error_text(c.t), why);
    assert_true(s.rc < 0); /* the alert ended the server's handshake too */
    close_end(&c);
    close_end(&s);
}

AMB_TEST(verification_is_on_by_default)
{
    pki p = make_pki();
    /* no CA given: the system's trust store, which does not know ours */
    amb__tls_config cc = {0};
    amb__tls_config sc = {.server = true, .cert_pem = p.leaf, .key_pem = p.leaf_key};
    expect_refused(&cc, &sc, "localhost", "certificate verify failed");
    /* and a client that verifies must say for which name */
    amb__tls_ctx *ctx;
    assert_ok(amb__tls_ctx_new(&cc, &ctx));
    amb__tls *t;
    assert_rc(AMB_EBADARG, amb__tls_new(ctx, 0, NULL, &t));
    amb__tls_ctx_free(ctx);
    free_pki(&p);
}

AMB_TEST(an_untrusted_chain_is_refused)
{
    pki p = make_pki();
    amb__tls_config cc = {.ca_pem = p.ca};
    amb__tls_config sc = {.server = true, .cert_pem = p.rogue, .key_pem = p.rogue_key};
    expect_refused(&cc, &sc, "localhost", "local issuer");
    free_pki(&p);
}

AMB_TEST(a_certificate_for_another_name_or_address_is_refused)
{
    pki p = make_pki();
    amb__tls_config cc = {.ca_pem = p.ca};
    amb__tls_config sc = {.server = true, .cert_pem = p.leaf, .key_pem = p.leaf_key};
    expect_refused(&cc, &sc, "other.example", "hostname mismatch");
    expect_refused(&cc, &sc, "127.0.0.2", "IP address mismatch");
    /* the certificate's own address passes */
    end c, s;
    connect_pair(&c, &s, &cc, &sc, "127.0.0.1");
    handshake(&c, &s);
    assert_ok(c.rc);
    assert_ok(s.rc);
    close_end(&c);
    close_end(&s);
    free_pki(&p);
}

AMB_TEST(an_expired_certificate_is_refused)
{
    pki p = make_pki();
    amb__tls_config cc = {.ca_pem = p.ca};
    amb__tls_config sc = {
        .server = true, .cert_pem = p.expired, .key_pem = p.expired_key};
    expect_refused(&cc, &sc, "localhost", "expired");
    free_pki(&p);
}

AMB_TEST(verification_off_must_be_asked_for_and_then_accepts_anyone)
{
    pki p = make_pki();
    amb__tls_config cc = {.verify = AMB__TLS_VERIFY_NONE};
    amb__tls_config sc = {.server = true, .cert_pem = p.rogue, .key_pem = p.rogue_key};
    end c, s;
    connect_pair(&c, &s, &cc, &sc, "whatever.example");
    handshake(&c, &s);
    assert_ok(c.rc);
    assert_ok(s.rc);
    close_end(&c);
    close_end(&s);
    /* modes a side does not have */
    amb__tls_ctx *ctx;
    amb__tls_config bad = {.verify = AMB__TLS_VERIFY_REQUIRE};
    assert_rc(AMB_EBADARG, amb__tls_ctx_new(&bad, &ctx));
    bad = sc;
    bad.verify = AMB__TLS_VERIFY_NONE;
    assert_rc(AMB_EBADARG, amb__tls_ctx_new(&bad, &ctx));
    free_pki(&p);
}

AMB_TEST(client_certificates_required_and_given)
{
    pki p = make_pki();
    amb__tls_config sc = {.server = true,
                          .cert_pem = p.leaf,
                          .key_pem = p.leaf_key,
                          .ca_pem = p.ca,
                          .verify = AMB__TLS_VERIFY_REQUIRE};
    amb__tls_config anonymous = {.ca_pem = p.ca};
    end c, s;
    connect_pair(&c, &s, &anonymous, &sc, "localhost");
    handshake(&c, &s);
    if (s.rc != AMB_ECERT)
        fail_msg("server: %s (%s)", amb_err_name(s.rc), amb__tls_error_text(s.t));
    /* In TLS 1.3 the client finishes first and hears of the refusal at
     * its first read. */
    if (c.rc == 0) {
        uint8_t b[1];
        size_t n;
        int rc = AMB__TLS_WANT_READ;
        for (int i = 0; i < 10 && rc == AMB__TLS_WANT_READ; i++)
            rc = amb__tls_read(c.t, b, 1, &n);
        c.rc = rc;
    }
    assert_int_equal(c.rc, AMB_ECERT);
    close_end(&c);
    close_end(&s);

    amb__tls_config known = {
        .ca_pem = p.ca, .cert_pem = p.client, .key_pem = p.client_key};
    connect_pair(&c, &s, &known, &sc, "localhost");
    handshake(&c, &s);
    assert_ok(c.rc);
    assert_ok(s.rc);
    transfer(&c, &s, (const uint8_t *)"hi", 2);
    close_end(&c);
    close_end(&s);

    /* a client certificate by a CA the server does not trust */
    amb__tls_config stranger = {
        .ca_pem = p.ca, .cert_pem = p.rogue, .key_pem = p.rogue_key};
    connect_pair(&c, &s, &stranger, &sc, "localhost");
    handshake(&c, &s);
    assert_int_equal(s.rc, AMB_ECERT);
    close_end(&c);
    close_end(&s);
    free_pki(&p);
}

AMB_TEST(close_notify_and_a_bare_eof_both_end_the_stream)
{
    pki p = make_pki();
    amb__tls_config cc = {.ca_pem = p.ca};
    amb__tls_config sc = {.server = true, .cert_pem = p.leaf, .key_pem = p.leaf_key};
    end c, s;
    connect_pair(&c, &s, &cc, &sc, "localhost");
    handshake(&c, &s);
    assert_ok(c.rc);
    transfer(&c, &s, (const uint8_t *)"last words", 10);
    assert_ok(amb__tls_shutdown(c.t));
    assert_ok(amb__tls_shutdown(c.t)); /* once */
    uint8_t b[16];
    size_t n;
    assert_rc(AMB_ECLOSED, amb__tls_read(s.t, b, sizeof b, &n));
    assert_true(strstr(amb__tls_error_text(s.t), "close_notify") != NULL);
    close_end(&c);
    close_end(&s);

    connect_pair(&c, &s, &cc, &sc, "localhost");
    handshake(&c, &s);
    assert_ok(c.rc);
    /* The client takes what it was sent (TLS 1.3 session tickets): a socket
     * closed with unread data resets the connection (AMB_ECONNRESET), one
     * closed after reading everything just ends it. */
    assert_int_equal(amb__tls_read(c.t, b, sizeof b, &n), AMB__TLS_WANT_READ);
    close(c.fd); /* gone without close_notify */
    c.fd = -1;
    int rc = AMB__TLS_WANT_READ;
    for (int i = 0; i < 10 && rc == AMB__TLS_WANT_READ; i++)
        rc = amb__tls_read(s.t, b, sizeof b, &n);
    assert_int_equal(rc, AMB_ECLOSED);
    close_end(&c);
    close_end(&s);

    /* a write to a peer that has gone is an error (EPIPE), never SIGPIPE */
    connect_pair(&c, &s, &cc, &sc, "localhost");
    handshake(&c, &s);
    assert_ok(c.rc);
    assert_int_equal(amb__tls_read(c.t, b, sizeof b, &n), AMB__TLS_WANT_READ);
    close(c.fd);
    c.fd = -1;
    assert_rc(AMB_ECLOSED, amb__tls_write(s.t, "anyone?", 7, &n));
    assert_true(strstr(amb__tls_error_text(s.t), "epipe") != NULL);
    close_end(&c);
    close_end(&s);
    free_pki(&p);
}

AMB_TEST(a_peer_that_does_not_speak_tls_fails_the_handshake)
{
    pki p = make_pki();
    amb__tls_config sc = {.server = true, .cert_pem = p.leaf, .key_pem = p.leaf_key};
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    amb__tls_ctx *ctx;
    amb__tls *t;
    assert_ok(amb__tls_ctx_new(&sc, &ctx));
    assert_ok(amb__tls_new(ctx, fds[1], NULL, &t));
    assert_int_equal(amb__tls_handshake(t), AMB__TLS_WANT_READ);
    const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fds[0], http, sizeof http - 1), (ssize_t)(sizeof http - 1));
    assert_rc(AMB_ETLS, amb__tls_handshake(t));
    assert_true(amb__tls_error_text(t)[0] != '\0');
    assert_int_equal(ERR_peek_error(), 0);
    amb__tls_free(t);
    amb__tls_ctx_free(ctx);
    close(fds[0]);
    close(fds[1]);
    free_pki(&p);
}

static void write_file(const char *dir, const char *name, const char *text, char *path,
                       size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

AMB_TEST(certificates_keys_and_cas_from_files)
{
    pki p = make_pki();
    char dir[] = "/tmp/amb-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[128], key[128], ca[128], junk[128], missing[128];
    write_file(dir, "cert.pem", p.leaf, cert, sizeof cert);
    write_file(dir, "key.pem", p.leaf_key, key, sizeof key);
    write_file(dir, "ca.pem", p.ca, ca, sizeof ca);
    write_file(dir, "junk.pem", "not a certificate\n", junk, sizeof junk);
    snprintf(missing, sizeof missing, "%s/missing.pem", dir);

    amb__tls_config cc = {.ca_file = ca};
    amb__tls_config sc = {.server = true, .cert_file = cert, .key_file = key};
    end c, s;
    connect_pair(&c, &s, &cc, &sc, "localhost");
    handshake(&c, &s);
    assert_ok(c.rc);
    assert_ok(s.rc);
    close_end(&c);
    close_end(&s);

    amb__tls_ctx *ctx = NULL;
    amb__tls_config bad = sc;
    bad.cert_file = missing;
    assert_rc(AMB_ENOTFOUND, amb__tls_ctx_new(&bad, &ctx));
    bad.cert_file = junk;
    assert_rc(AMB_EBADARG, amb__tls_ctx_new(&bad, &ctx));
    bad = sc;
    bad.key_pem = p.client_key; /* another certificate's key */
    bad.key_file = NULL;
    assert_rc(AMB_EBADARG, amb__tls_ctx_new(&bad, &ctx));
    bad = sc;
    bad.cert_file = NULL;
    bad.cert_pem = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n";
    assert_rc(AMB_EBADARG, amb__tls_ctx_new(&bad, &ctx));
    amb__tls_config nocert = {.server = true};
    assert_rc(AMB_EBADARG, amb__tls_ctx_new(&nocert, &ctx)); /* a server needs one */
    amb__tls_config noca = {.ca_file = missing};
    assert_rc(AMB_ENOTFOUND, amb__tls_ctx_new(&noca, &ctx));
    noca.ca_file = junk;
    assert_rc(AMB_EBADARG, amb__tls_ctx_new(&noca, &ctx));
    assert_null(ctx); /* nothing made by the failures */
    assert_int_equal(ERR_peek_error(), 0);

    unlink(cert);
    unlink(key);
    unlink(ca);
    unlink(junk);
    rmdir(dir);
    free_pki(&p);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(handshake_then_data_both_ways),
              AMB_TEST_ENTRY(pending_bytes_are_read_before_waiting_for_the_socket),
              AMB_TEST_ENTRY(verification_is_on_by_default),
              AMB_TEST_ENTRY(an_untrusted_chain_is_refused),
              AMB_TEST_ENTRY(a_certificate_for_another_name_or_address_is_refused),
              AMB_TEST_ENTRY(an_expired_certificate_is_refused),
              AMB_TEST_ENTRY(verification_off_must_be_asked_for_and_then_accepts_anyone),
              AMB_TEST_ENTRY(client_certificates_required_and_given),
              AMB_TEST_ENTRY(close_notify_and_a_bare_eof_both_end_the_stream),
              AMB_TEST_ENTRY(a_peer_that_does_not_speak_tls_fails_the_handshake),
              AMB_TEST_ENTRY(certificates_keys_and_cas_from_files))

/*
 * ssl.c - TLS over real sockets (ambitious/socket.h: opts.tls,
 * amb_tls_ctx_new, amb_tcp_starttls), between processes of one runtime
 * over loopback, with certificates made at test time (tests/tls_test.h):
 * a handshake, echo both ways, 4 MiB through partial writes, active mode
 * with ssl tags; verification on by default (no CA given: the system's
 * store refuses our test CA); bad certificates (untrusted, another name,
 * expired) refused on the client with AMB_ECERT while the listener goes on
 * serving; a non-TLS peer; client certificates required; STARTTLS; contexts
 * from files read on the blocking pool, and missing files.
 */
#include <sys/socket.h>
#include <unistd.h>

#include "amb_test_rt.h"
#include "tls_test.h"

/* The fixtures: one CA, its leaves, and a stranger's CA. */
typedef struct certs {
    char *ca, *key, *leaf, *other_name, *expired, *stranger_leaf, *stranger_key;
    char dir[64], ca_file[96], leaf_file[96], key_file[96];
} certs;

static certs g;

static void make_certs(void)
{
    if (g.ca != NULL)
        return;
    EVP_PKEY *ca_key = tls_test_key(), *key = tls_test_key(), *skey = tls_test_key();
    X509 *ca = tls_test_ca(ca_key, "amb test CA");
    X509 *leaf = tls_test_leaf(key, ca, ca_key, "DNS:localhost,IP:127.0.0.1", -1, 30);
    X509 *other = tls_test_leaf(key, ca, ca_key, "DNS:elsewhere.example", -1, 30);
    X509 *old = tls_test_leaf(key, ca, ca_key, "DNS:localhost,IP:127.0.0.1", -30, -1);
    X509 *sca = tls_test_ca(skey, "stranger CA");
    X509 *sleaf = tls_test_leaf(skey, sca, skey, "DNS:localhost,IP:127.0.0.1", -1, 30);
    g.ca = tls_test_cert_pem(ca);
    g.key = tls_test_key_pem(key);
    g.leaf = tls_test_cert_pem(leaf);
    g.other_name = tls_test_cert_pem(other);
    g.expired = tls_test_cert_pem(old);
    g.stranger_leaf = tls_test_cert_pem(sleaf);
    g.stranger_key = tls_test_key_pem(skey);
    X509 *all[] = {ca, leaf, other, old, sca, sleaf};
    for (size_t i = 0; i < AMB_COUNTOF(all); i++)
        X509_free(all[i]);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    EVP_PKEY_free(skey);
    /* The same material as files, for contexts read on the pool. */
    snprintf(g.dir, sizeof g.dir, "/tmp/amb-ssl-XXXXXX");
    assert_non_null(mkdtemp(g.dir));
    const char *names[] = {"ca.pem", "leaf.pem", "key.pem"};
    char *files[] = {g.ca_file, g.leaf_file, g.key_file};
    const char *texts[] = {g.ca, g.leaf, g.key};
    for (int i = 0; i < 3; i++) {
        snprintf(files[i], 96, "%s/%s", g.dir, names[i]);
        FILE *f = fopen(files[i], "w");
        assert_non_null(f);
        fputs(texts[i], f);
        fclose(f);
    }
}

static void drop_certs(void)
{
    unlink(g.ca_file);
    unlink(g.leaf_file);
    unlink(g.key_file);
    rmdir(g.dir);
}

static amb_tls_ctx *server_ctx(amb_proc *self, const char *cert, const char *key,
                               unsigned verify)
{
    amb_tls_opts o = {.server = true,
                      .cert_pem = cert,
                      .key_pem = key,
                      .ca_pem = g.ca,
                      .verify = verify};
    amb_tls_ctx *c;
    CHECK_OK(self, amb_tls_ctx_new(self, &o, &c));
    return c;
}

static amb_tls_ctx *client_ctx(amb_proc *self, const char *ca, const char *cert,
                               const char *key)
{
    amb_tls_opts o = {.ca_pem = ca, .cert_pem = cert, .key_pem = key};
    amb_tls_ctx *c;
    CHECK_OK(self, amb_tls_ctx_new(self, &o, &c));
    return c;
}

typedef struct srv {
    amb_pid parent;
    amb_socket l;
    int rounds;
} srv;

/* Accepts `rounds` connections, reporting each accept's result; echoes
 * each connection until it ends. */
static void tls_server(amb_proc *self, void *arg)
{
    /* A copy: the starter's frame may end before the last round does (the
     * starter hears of each accept before this process loops again). */
    srv copy = *(srv *)arg, *a = &copy;
    amb_heap *h = amb_proc_heap(self);
    for (int i = 0; i < a->rounds; i++) {
        amb_socket s;
        int rc = amb_tcp_accept(self, a->l, AMB_TEST_WAIT_MS, &s);
        amb_send(self, a->parent, AMB_TUPLE(h, amb_atom("accepted"), amb_int(h, rc)));
        if (rc != 0)
            continue;
        static uint8_t buf[1 << 16];
        size_t n;
        while (amb_tcp_recv(self, s, 0, AMB_TEST_WAIT_MS, buf, sizeof buf, &n) == 0)
            CHECK_OK(self, amb_tcp_send(self, s, buf, n, AMB_TEST_WAIT_MS, NULL));
        amb_inet_close(self, s);
    }
}

static uint16_t port_of(amb_proc *self, amb_socket s)
{
    amb_addr a;
    CHECK_OK(self, amb_inet_sockname(self, s, &a));
    return a.port;
}

/* A TLS listener served by tls_server for `rounds` connections. */
static uint16_t start_server(amb_proc *self, amb_tls_ctx *ctx, int rounds, srv *a)
{
    amb_sock_opts o = {.tls = ctx};
    a->parent = amb_self(self);
    a->rounds = rounds;
    CHECK_OK(self, amb_tcp_listen(self, "127.0.0.1", 0, &o, &a->l));
    amb_tls_ctx_free(ctx); /* the listener keeps its own reference */
    uint16_t port = port_of(self, a->l);
    amb_pid pid;
    CHECK_OK(self, amb_spawn(self, tls_server, a, &pid));
    CHECK_OK(self, amb_inet_controlling_process(self, a->l, pid));
    return port;
}

static int accepted(amb_proc *self)
{
    int64_t rc;
    WAIT_MSG(self, NULL, "{accepted,~i}", &rc);
    return (int)rc;
}

typedef struct writer_arg {
    amb_pid parent;
    amb_socket s;
    const uint8_t *data;
    size_t len;
} writer_arg;

static void writer(amb_proc *self, void *arg)
{
    writer_arg *w = arg;
    CHECK_OK(self, amb_tcp_send(self, w->s, w->data, w->len, AMB_TEST_WAIT_MS, NULL));
    amb_send(self, w->parent, amb_atom("written"));
}

static uint8_t big[4 << 20], back[4 << 20];

static void echo_body(amb_proc *self, void *arg)
{
    (void)arg;
    srv a;
    uint16_t port = start_server(self, server_ctx(self, g.leaf, g.key, 0), 2, &a);
    amb_tls_ctx *cc = client_ctx(self, g.ca, NULL, NULL);
    amb_sock_opts o = {.tls = cc};
    amb_socket c;
    /* By name, then by IP: the certificate holds both. */
    CHECK_OK(self, amb_tcp_connect(self, "localhost", port, &o, AMB_TEST_WAIT_MS, &c));
    CHECK_EQ(self, accepted(self), 0);
    CHECK_OK(self, amb_tcp_send(self, c, "secret", 6, 5000, NULL));
    char b[8];
    size_t n;
    CHECK_OK(self, amb_tcp_recv(self, c, 6, AMB_TEST_WAIT_MS, b, sizeof b, &n));
    CHECK(self, memcmp(b, "secret", 6) == 0);
    /* 4 MiB echoed: partial writes and many records, while this process
     * reads what comes back. */
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31 + 7);
    writer_arg w = {amb_self(self), c, big, sizeof big};
    CHECK_OK(self, amb_spawn(self, writer, &w, NULL));
    size_t got = 0;
    while (got < sizeof back) {
        CHECK_OK(self, amb_tcp_recv(self, c, 0, AMB_TEST_WAIT_MS, back + got,
                                    sizeof back - got, &n));
        got += n;
    }
    CHECK(self, memcmp(big, back, sizeof big) == 0);
    WAIT_MSG(self, NULL, "written");
    /* Active mode: ssl tags. */
    amb_sock_opts on = {.active = AMB_ACTIVE_TRUE};
    CHECK_OK(self, amb_inet_setopts(self, c, &on, AMB_SOCKOPT_ACTIVE));
    CHECK_OK(self, amb_tcp_send(self, c, "act", 3, 5000, NULL));
    const uint8_t *d;
    size_t len;
    WAIT_MSG(self, NULL, "{ssl,~v,~b}", c, &d, &len);
    CHECK(self, len == 3 && memcmp(d, "act", 3) == 0);
    /* close_notify: the server's recv ends, and its close comes back. */
    CHECK_OK(self, amb_tcp_shutdown(self, c, AMB_SHUT_WRITE));
    WAIT_MSG(self, NULL, "{ssl_closed,~v}", c);
    CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", port, &o, AMB_TEST_WAIT_MS, &c));
    CHECK_EQ(self, accepted(self), 0);
    CHECK_OK(self, amb_inet_close(self, c));
    amb_tls_ctx_free(cc);
}

AMB_TEST(handshake_echo_and_active_mode)
{
    make_certs();
    run_both(echo_body, NULL);
}

/* What the client sees of a server certificate, and what the listener
 * makes of it: the client refuses with AMB_ECERT, the accept fails for
 * that client only, and the listener serves the next one. */
static void bad_certs_body(amb_proc *self, void *arg)
{
    (void)arg;
    struct {
        const char *cert, *key, *host;
    } cases[] = {
        {g.stranger_leaf, g.stranger_key, "localhost"}, /* untrusted chain */
        {g.other_name, g.key, "localhost"},             /* another name */
        {g.leaf, g.key, "127.0.0.2"},                   /* another IP: not in the SANs */
        {g.expired, g.key, "localhost"},                /* expired */
    };
    amb_tls_ctx *cc = client_ctx(self, g.ca, NULL, NULL);
    amb_sock_opts o = {.tls = cc};
    for (size_t i = 0; i < AMB_COUNTOF(cases); i++) {
        srv a;
        amb_tls_ctx *sc = server_ctx(self, cases[i].cert, cases[i].key, 0);
        uint16_t port = start_server(self, sc, 2, &a);
        amb_socket c;
        amb_sock_opts oo = o;
        if (strcmp(cases[i].host, "127.0.0.2") == 0)
            oo.tls_name = "127.0.0.2"; /* connect to 127.0.0.1, expect .2 */
        CHECK_RC(self, AMB_ECERT,
                 amb_tcp_connect(self, "127.0.0.1", port, &oo, AMB_TEST_WAIT_MS, &c));
        int rc = accepted(self);
        CHECK(self, rc == AMB_ECERT || rc == AMB_ETLS || rc == AMB_ECLOSED);
        /* The listener goes on: a client that trusts anything gets in. */
        amb_tls_opts any = {.verify = AMB_TLS_VERIFY_NONE};
        amb_tls_ctx *nc;
        CHECK_OK(self, amb_tls_ctx_new(self, &any, &nc));
        amb_sock_opts no = {.tls = nc};
        CHECK_OK(self,
                 amb_tcp_connect(self, "127.0.0.1", port, &no, AMB_TEST_WAIT_MS, &c));
        CHECK_EQ(self, accepted(self), 0);
        CHECK_OK(self, amb_inet_close(self, c));
        amb_tls_ctx_free(nc);
    }
    /* No CA given: the system's store, which does not know our test CA. */
    amb_tls_ctx *sys = client_ctx(self, NULL, NULL, NULL);
    srv a;
    uint16_t port = start_server(self, server_ctx(self, g.leaf, g.key, 0), 1, &a);
    amb_sock_opts so = {.tls = sys};
    amb_socket c;
    CHECK_RC(self, AMB_ECERT,
             amb_tcp_connect(self, "localhost", port, &so, AMB_TEST_WAIT_MS, &c));
    accepted(self);
    amb_tls_ctx_free(sys);
    amb_tls_ctx_free(cc);
}

AMB_TEST(bad_certificates_are_refused_and_the_listener_goes_on)
{
    make_certs();
    run_both(bad_certs_body, NULL);
}

/* Handshake failures that are not about certificates. */
static void plain_talker(amb_proc *self, void *arg)
{
    amb_pid parent = *(amb_pid *)arg;
    amb_socket l;
    CHECK_OK(self, amb_tcp_listen(self, "127.0.0.1", 0, NULL, &l));
    amb_addr la;
    CHECK_OK(self, amb_inet_sockname(self, l, &la));
    amb_send(self, parent, amb_int(amb_proc_heap(self), la.port));
    amb_socket s;
    CHECK_OK(self, amb_tcp_accept(self, l, AMB_TEST_WAIT_MS, &s));
    CHECK_OK(self,
             amb_tcp_send(self, s, "HTTP/1.0 400 Bad Request\r\n\r\n", 28, 5000, NULL));
    char b[64];
    size_t n;
    while (amb_tcp_recv(self, s, 0, AMB_TEST_WAIT_MS, b, sizeof b, &n) == 0) {
    }
    CHECK_OK(self, amb_inet_close(self, s));
    CHECK_OK(self, amb_inet_close(self, l));
}

static void handshake_fail_body(amb_proc *self, void *arg)
{
    (void)arg;
    /* A TLS client against a plain server that answers in text. */
    amb_pid me = amb_self(self);
    CHECK_OK(self, amb_spawn(self, plain_talker, &me, NULL));
    int64_t port = int_of(RECV(self));
    amb_tls_ctx *cc = client_ctx(self, g.ca, NULL, NULL);
    amb_sock_opts o = {.tls = cc};
    amb_socket c;
    int rc = amb_tcp_connect(self, "127.0.0.1", (uint16_t)port, &o, AMB_TEST_WAIT_MS, &c);
    CHECK(self, rc == AMB_ETLS || rc == AMB_ECLOSED);
    /* A plain client against a TLS server: the accept fails for it. */
    srv a;
    uint16_t sport = start_server(self, server_ctx(self, g.leaf, g.key, 0), 1, &a);
    CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", sport, NULL, AMB_TEST_WAIT_MS, &c));
    CHECK_OK(self, amb_tcp_send(self, c, "GET / HTTP/1.0\r\n\r\n", 18, 5000, NULL));
    rc = accepted(self);
    CHECK(self, rc == AMB_ETLS || rc == AMB_ECLOSED);
    CHECK_OK(self, amb_inet_close(self, c));
    /* A server that requires a client certificate: none is a failure, a
     * trusted one gets in. */
    srv r;
    uint16_t rport = start_server(
        self, server_ctx(self, g.leaf, g.key, AMB_TLS_VERIFY_REQUIRE), 2, &r);
    rc = amb_tcp_connect(self, "127.0.0.1", rport, &o, AMB_TEST_WAIT_MS, &c);
    if (rc == 0) {
        /* TLS 1.3: the client's handshake ends before the server's check;
         * the refusal comes with the first read. */
        char b[4];
        size_t n;
        rc = amb_tcp_recv(self, c, 0, AMB_TEST_WAIT_MS, b, sizeof b, &n);
        amb_inet_close(self, c);
    }
    CHECK(self, rc == AMB_ECERT || rc == AMB_ETLS || rc == AMB_ECLOSED);
    rc = accepted(self);
    CHECK(self, rc == AMB_ECERT || rc == AMB_ETLS);
    amb_tls_ctx *withcert = client_ctx(self, g.ca, g.leaf, g.key);
    amb_sock_opts wo = {.tls = withcert};
    CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", rport, &wo, AMB_TEST_WAIT_MS, &c));
    CHECK_EQ(self, accepted(self), 0);
    CHECK_OK(self, amb_tcp_send(self, c, "mtls", 4, 5000, NULL));
    char b[4];
    size_t n;
    CHECK_OK(self, amb_tcp_recv(self, c, 4, AMB_TEST_WAIT_MS, b, sizeof b, &n));
    CHECK_OK(self, amb_inet_close(self, c));
    amb_tls_ctx_free(withcert);
    amb_tls_ctx_free(cc);
}

AMB_TEST(handshake_failures_over_real_sockets)
{
    make_certs();
    run_both(handshake_fail_body, NULL);
}

/* STARTTLS: plain text first, then both sides upgrade in place. */
static void starttls_server(amb_proc *self, void *arg)
{
    amb_socket l = *(amb_socket *)arg;
    amb_socket s;
    CHECK_OK(self, amb_tcp_accept(self, l, AMB_TEST_WAIT_MS, &s));
    char b[16];
    size_t n;
    CHECK_OK(self, amb_tcp_recv(self, s, 9, AMB_TEST_WAIT_MS, b, sizeof b, &n));
    CHECK(self, memcmp(b, "STARTTLS\n", 9) == 0);
    CHECK_OK(self, amb_tcp_send(self, s, "GO\n", 3, 5000, NULL));
    amb_tls_ctx *sc = server_ctx(self, g.leaf, g.key, 0);
    CHECK_OK(self, amb_tcp_starttls(self, s, sc, NULL, AMB_TEST_WAIT_MS));
    amb_tls_ctx_free(sc);
    CHECK_OK(self, amb_tcp_recv(self, s, 5, AMB_TEST_WAIT_MS, b, sizeof b, &n));
    CHECK_OK(self, amb_tcp_send(self, s, b, n, 5000, NULL));
    while (amb_tcp_recv(self, s, 0, AMB_TEST_WAIT_MS, b, sizeof b, &n) == 0) {
    }
    amb_inet_close(self, s);
}

static void starttls_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_socket l;
    CHECK_OK(self, amb_tcp_listen(self, "127.0.0.1", 0, NULL, &l));
    uint16_t port = port_of(self, l);
    CHECK_OK(self, amb_spawn(self, starttls_server, &l, NULL));
    amb_socket c;
    CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", port, NULL, AMB_TEST_WAIT_MS, &c));
    CHECK_OK(self, amb_tcp_send(self, c, "STARTTLS\n", 9, 5000, NULL));
    char b[16];
    size_t n;
    CHECK_OK(self, amb_tcp_recv(self, c, 3, AMB_TEST_WAIT_MS, b, sizeof b, &n));
    amb_tls_ctx *cc = client_ctx(self, g.ca, NULL, NULL);
    CHECK_RC(self, AMB_EBADARG, amb_tcp_starttls(self, c, cc, NULL, AMB_TEST_WAIT_MS));
    CHECK_OK(self, amb_tcp_starttls(self, c, cc, "localhost", AMB_TEST_WAIT_MS));
    CHECK_RC(self, AMB_ESTATE,
             amb_tcp_starttls(self, c, cc, "localhost", AMB_TEST_WAIT_MS));
    CHECK_OK(self, amb_tcp_send(self, c, "hello", 5, 5000, NULL));
    CHECK_OK(self, amb_tcp_recv(self, c, 5, AMB_TEST_WAIT_MS, b, sizeof b, &n));
    CHECK(self, memcmp(b, "hello", 5) == 0);
    CHECK_OK(self, amb_inet_close(self, c));
    CHECK_OK(self, amb_inet_close(self, l));
    amb_tls_ctx_free(cc);
}

AMB_TEST(starttls_upgrades_a_connected_socket)
{
    make_certs();
    run_both(starttls_body, NULL);
}

/* Contexts from files, read on the blocking pool. */
static void files_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_tls_opts so = {.server = true, .cert_file = g.leaf_file, .key_file = g.key_file};
    amb_tls_ctx *sc;
    CHECK_OK(self, amb_tls_ctx_new(self, &so, &sc));
    srv a;
    uint16_t port = start_server(self, sc, 1, &a);
    amb_tls_opts co = {.ca_file = g.ca_file};
    amb_tls_ctx *cc;
    CHECK_OK(self, amb_tls_ctx_new(self, &co, &cc));
    amb_sock_opts o = {.tls = cc};
    amb_socket c;
    CHECK_OK(self, amb_tcp_connect(self, "localhost", port, &o, AMB_TEST_WAIT_MS, &c));
    CHECK_EQ(self, accepted(self), 0);
    CHECK_OK(self, amb_inet_close(self, c));
    amb_tls_ctx_free(cc);
    /* Missing and malformed material; a server without a key. */
    amb_tls_opts missing = {.ca_file = "/nonexistent/ca.pem"};
    CHECK_RC(self, AMB_ENOTFOUND, amb_tls_ctx_new(self, &missing, &cc));
    amb_tls_opts junk = {.ca_pem = "not a certificate"};
    CHECK_RC(self, AMB_EBADARG, amb_tls_ctx_new(self, &junk, &cc));
    amb_tls_opts nokey = {.server = true, .cert_pem = g.leaf};
    CHECK_RC(self, AMB_EBADARG, amb_tls_ctx_new(self, &nokey, &cc));
    /* A client context on a listener, a server one on a connect. */
    amb_tls_ctx *client = client_ctx(self, g.ca, NULL, NULL);
    amb_sock_opts wrong = {.tls = client};
    amb_socket l;
    CHECK_RC(self, AMB_EBADARG, amb_tcp_listen(self, "127.0.0.1", 0, &wrong, &l));
    amb_tls_ctx_free(client);
}

AMB_TEST(contexts_from_files_on_the_blocking_pool)
{
    make_certs();
    run_both(files_body, NULL);
    drop_certs();
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(handshake_echo_and_active_mode),
              AMB_TEST_ENTRY(bad_certificates_are_refused_and_the_listener_goes_on),
              AMB_TEST_ENTRY(handshake_failures_over_real_sockets),
              AMB_TEST_ENTRY(starttls_upgrades_a_connected_socket),
              AMB_TEST_ENTRY(contexts_from_files_on_the_blocking_pool))

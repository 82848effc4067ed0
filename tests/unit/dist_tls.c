/*
 * tests/unit/dist_tls.c - C nodes over TLS distribution (node.h's tls_*
 * options; src/dist/tls_transport.c) in one OS process, with the embedded
 * EPMD on a private port. Certificates are made at test time (tls_test.h)
 * into a temp dir: a CA, a leaf it signs for localhost (every good node's),
 * another CA and a leaf that one signs.
 *
 * What is proved: two TLS nodes connect both ways (each one the initiator
 * once) and carry a registered send, a gen_server call, a monitor with a
 * real reason and 8 MiB both ways; a node with another CA's certificate is
 * refused both ways (and the refusal logged); a plain-TCP node and a TLS
 * node refuse each other both ways; after all that the good nodes still
 * connect, and every node stops cleanly; bad TLS options are refused at
 * start (a missing file, a key that is not the certificate's, a key or CA
 * without a certificate).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amb_test_rt.h"
#include "ambitious/gen_server.h"
#include "dist_test.h"
#include "tls_test.h"

/* A TCP port nobody listens on now (the kernel's pick). */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static uint16_t epmd_port;
static char dir[64];
static char ca_file[128], node_cert[128], node_key[128], bad_cert[128], bad_key[128];

static void write_file(const char *path, char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    free(text);
}

/* The certificates, into a new temp dir. */
static void make_certs(void)
{
    strcpy(dir, "/tmp/amb-dist-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    EVP_PKEY *cak = tls_test_key(), *oak = tls_test_key();
    X509 *ca = tls_test_ca(cak, "dist test CA"), *other = tls_test_ca(oak, "other CA");
    EVP_PKEY *nk = tls_test_key(), *bk = tls_test_key();
    X509 *node = tls_test_leaf(nk, ca, cak, "DNS:localhost,IP:127.0.0.1", -1, 2);
    X509 *bad = tls_test_leaf(bk, other, oak, "DNS:localhost,IP:127.0.0.1", -1, 2);
    snprintf(ca_file, sizeof ca_file, "%s/ca.pem", dir);
    snprintf(node_cert, sizeof node_cert, "%s/node.pem", dir);
    snprintf(node_key, sizeof node_key, "%s/node.key", dir);
    snprintf(bad_cert, sizeof bad_cert, "%s/bad.pem", dir);
    snprintf(bad_key, sizeof bad_key, "%s/bad.key", dir);
    write_file(ca_file, tls_test_cert_pem(ca));
    write_file(node_cert, tls_test_cert_pem(node));
    write_file(node_key, tls_test_key_pem(nk));
    write_file(bad_cert, tls_test_cert_pem(bad));
    write_file(bad_key, tls_test_key_pem(bk));
    X509_free(ca), X509_free(other), X509_free(node), X509_free(bad);
    EVP_PKEY_free(cak), EVP_PKEY_free(oak), EVP_PKEY_free(nk), EVP_PKEY_free(bk);
}

static void remove_certs(void)
{
    const char *files[] = {ca_file, node_cert, node_key, bad_cert, bad_key};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(files[i]);
    rmdir(dir);
}

typedef enum { GOOD, BAD, PLAIN } kind;

static amb_node_opts opts_of(kind k)
{
    amb_node_opts o = {.cookie = "tls-cookie", .epmd_port = epmd_port};
    if (k != PLAIN) {
        o.tls_certfile = k == GOOD ? node_cert : bad_cert;
        o.tls_keyfile = k == GOOD ? node_key : bad_key;
        o.tls_cacertfile = ca_file;
    }
    return o;
}

/* ---------------------------------------------------------------------------
 * Two TLS nodes
 * ------------------------------------------------------------------------ */

/* Node b: serves echo and adder; once a is done (flag 2), connects to a
 * itself (b the initiator this time), then waits for a's stop. */
static void pair_b(amb_proc *self, void *arg)
{
    (void)arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(1)) == 1); /* a serves EPMD */
    amb_node_opts o = opts_of(GOOD);
    CHECK_OK(self, amb_node_start(self, "b@localhost", &o));
    amb_pid e;
    CHECK_OK(self, amb_spawn(self, dist_test_echo, NULL, &e));
    CHECK_OK(self, amb_register(self, amb_atom("echo"), e));
    amb_gen_opts go = {.name = amb_atom("adder")};
    amb_pid ad;
    CHECK_OK(self, amb_gen_server_start(self, dist_test_adder(), NULL, &go, &ad, NULL));
    atomic_store(nodes_flag(0), 1);
    WAIT_UNTIL(self, atomic_load(nodes_flag(2)) == 1);
    amb_term a = amb_atom("a@localhost");
    CHECK_OK(self, amb_disconnect_node(self, a));
    CHECK_OK(self, amb_node_ping(self, a));
    atomic_store(nodes_flag(3), 1);
    WAIT_UNTIL(self, atomic_load(nodes_flag(4)) == 1);
    CHECK_OK(self, amb_node_stop(self));
    amb_exit(self, e, AMB_ATOM_KILL);
    amb_gen_server_stop(self, ad, AMB_ATOM_NORMAL, AMB_INFINITY);
}

static void pair_a(amb_proc *self, void *arg)
{
    (void)arg;
    amb_node_opts o = opts_of(GOOD);
    CHECK_OK(self, amb_node_start(self, "a@localhost", &o));
    atomic_store(nodes_flag(1), 1);
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1);
    amb_heap *h = amb_proc_heap(self);
    amb_term b = amb_atom("b@localhost");
    CHECK_OK(self, amb_node_ping(self, b));
    /* A message, 8 MiB both ways (many TLS records each way), a call; a
     * monitor with its reason. */
    dist_test_exchange(self, b, "tls");

    /* b connects to us now (it disconnects first). */
    atomic_store(nodes_flag(2), 1);
    WAIT_UNTIL(self, atomic_load(nodes_flag(3)) == 1);
    amb_term nodes, reply;
    CHECK_OK(self, amb_nodes(self, AMB_NODES_CONNECTED, &nodes));
    CHECK_TERM(self, nodes, "['b@localhost']");
    CHECK_OK(self,
             amb_gen_server_call(self, AMB_TUPLE(h, amb_atom("adder"), b),
                                 amb_pack(h, "{add,1,2}"), AMB_TEST_WAIT_MS, &reply));
    CHECK_TERM(self, reply, "3");
    atomic_store(nodes_flag(4), 1);
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_tls_two_c_nodes_both_ways)
{
    epmd_port = free_port();
    make_certs();
    amb_fn *bodies[] = {pair_a, pair_b};
    void *args[] = {NULL, NULL};
    run_nodes(2, 2, bodies, args);
    remove_certs();
}

/* ---------------------------------------------------------------------------
 * Refusals: another CA's certificate, plain TCP
 * ------------------------------------------------------------------------ */

/* Flags: 0..3 node i up; 4 a has tried c and p; 5, 6 c, p have tried a;
 * 7 a is done (everyone stops). Node args: "c@localhost" (BAD) or
 * "p@localhost" (PLAIN) or "b@localhost" (GOOD). */
typedef struct peer_arg {
    const char *name;
    kind kind;
    int up_flag, tried_flag;
} peer_arg;

static void refusal_peer(amb_proc *self, void *arg)
{
    const peer_arg *pa = arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1); /* a serves EPMD */
    amb_node_opts o = opts_of(pa->kind);
    CHECK_OK(self, amb_node_start(self, pa->name, &o));
    atomic_store(nodes_flag(pa->up_flag), 1);
    if (pa->tried_flag != 0) {
        WAIT_UNTIL(self, atomic_load(nodes_flag(4)) == 1);
        CHECK_RC(self, AMB_ENOTCONN, amb_node_ping(self, amb_atom("a@localhost")));
        amb_term nodes;
        CHECK_OK(self, amb_nodes(self, AMB_NODES_CONNECTED, &nodes));
        CHECK(self, nodes == AMB_NIL);
        atomic_store(nodes_flag(pa->tried_flag), 1);
    }
    WAIT_UNTIL(self, atomic_load(nodes_flag(7)) == 1);
    CHECK_OK(self, amb_node_stop(self));
}

static void refusal_a(amb_proc *self, void *arg)
{
    (void)arg;
    amb_node_opts o = opts_of(GOOD);
    CHECK_OK(self, amb_node_start(self, "a@localhost", &o));
    atomic_store(nodes_flag(0), 1);
    for (int i = 1; i <= 3; i++)
        WAIT_UNTIL(self, atomic_load(nodes_flag(i)) == 1);
    /* We connect: c's certificate is not from our CA, p speaks no TLS. */
    CHECK_RC(self, AMB_ENOTCONN, amb_node_ping(self, amb_atom("c@localhost")));
    CHECK_RC(self, AMB_ENOTCONN, amb_node_ping(self, amb_atom("p@localhost")));
    atomic_store(nodes_flag(4), 1);
    /* They connect (and are refused); then a good node still gets in. */
    WAIT_UNTIL(self, atomic_load(nodes_flag(5)) == 1 && atomic_load(nodes_flag(6)) == 1);
    amb_term nodes;
    CHECK_OK(self, amb_nodes(self, AMB_NODES_CONNECTED, &nodes));
    CHECK(self, nodes == AMB_NIL);
    CHECK_OK(self, amb_node_ping(self, amb_atom("b@localhost")));
    /* Each refused TLS handshake was logged by a side that saw it. */
    WAIT_UNTIL(self, amb_test_log_level_count(AMB_LOG_WARNING) >= 2);
    atomic_store(nodes_flag(7), 1);
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_tls_another_ca_and_plain_tcp_are_refused_both_ways)
{
    epmd_port = free_port();
    make_certs();
    static const peer_arg b = {"b@localhost", GOOD, 1, 0};
    static const peer_arg c = {"c@localhost", BAD, 2, 5};
    static const peer_arg p = {"p@localhost", PLAIN, 3, 6};
    amb_fn *bodies[] = {refusal_a, refusal_peer, refusal_peer, refusal_peer};
    void *args[] = {NULL, (void *)&b, (void *)&c, (void *)&p};
    run_nodes(4, 1, bodies, args);
    remove_certs();
}

/* ---------------------------------------------------------------------------
 * Bad options
 * ------------------------------------------------------------------------ */

static void bad_options(amb_proc *self, void *arg)
{
    (void)arg;
    amb_node_opts o = opts_of(GOOD);
    o.tls_certfile = "/nonexistent/node.pem";
    CHECK_RC(self, AMB_ENOTFOUND, amb_node_start(self, "x@localhost", &o));
    o = opts_of(GOOD);
    o.tls_keyfile = bad_key; /* not the certificate's key */
    CHECK_RC(self, AMB_EBADARG, amb_node_start(self, "x@localhost", &o));
    o = opts_of(PLAIN);
    o.tls_keyfile = node_key;
    CHECK_RC(self, AMB_EBADARG, amb_node_start(self, "x@localhost", &o));
    o = opts_of(PLAIN);
    o.tls_cacertfile = ca_file;
    CHECK_RC(self, AMB_EBADARG, amb_node_start(self, "x@localhost", &o));
    CHECK(self, !amb_is_alive(self));
    /* Nothing was left half started: the good options work. */
    o = opts_of(GOOD);
    CHECK_OK(self, amb_node_start(self, "x@localhost", &o));
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_tls_bad_options_are_refused_at_start)
{
    epmd_port = free_port();
    make_certs();
    amb_fn *bodies[] = {bad_options};
    void *args[] = {NULL};
    run_nodes(1, 1, bodies, args);
    remove_certs();
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(dist_tls_two_c_nodes_both_ways),
              AMB_TEST_ENTRY(dist_tls_another_ca_and_plain_tcp_are_refused_both_ways),
              AMB_TEST_ENTRY(dist_tls_bad_options_are_refused_at_start))

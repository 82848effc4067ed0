/*
 * tcp.c - stream sockets (ambitious/socket.h) between processes of one
 * runtime over loopback: each test starts its own listener on a port the
 * kernel picks.
 */
#include "amb_test_rt.h"

/* A listener on 127.0.0.1, its port in *port. */
static amb_socket listen_local(amb_proc *self, const amb_sock_opts *o, uint16_t *port)
{
    amb_socket l;
    CHECK_OK(self, amb_tcp_listen(self, "127.0.0.1", 0, o, &l));
    amb_addr a;
    CHECK_OK(self, amb_inet_sockname(self, l, &a));
    CHECK_EQ(self, a.family, AMB_ADDR_INET);
    *port = a.port;
    return l;
}

typedef struct echo_arg {
    amb_pid parent;
    uint16_t port;
} echo_arg;

static void echo_client(amb_proc *self, void *arg)
{
    echo_arg *a = arg;
    amb_socket c;
    CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", a->port, NULL, 5000, &c));
    for (int i = 0; i < 100; i++) {
        char msg[32], back[32];
        int len = snprintf(msg, sizeof msg, "hello %d", i);
        CHECK_OK(self, amb_tcp_send(self, c, msg, (size_t)len, 5000, NULL));
        size_t got = 0;
        while (got < (size_t)len) {
            size_t n;
            CHECK_OK(self,
                     amb_tcp_recv(self, c, 0, 5000, back + got, sizeof back - got, &n));
            got += n;
        }
        CHECK(self, memcmp(back, msg, (size_t)len) == 0);
    }
    CHECK_OK(self, amb_inet_close(self, c));
    amb_send(self, a->parent, amb_atom("client_done"));
}

static void echo_body(amb_proc *self, void *arg)
{
    (void)arg;
    echo_arg a = {amb_self(self), 0};
    amb_socket l = listen_local(self, NULL, &a.port);
    CHECK_OK(self, amb_spawn(self, echo_client, &a, NULL));
    amb_socket s;
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
    char buf[256];
    size_t n;
    int rc;
    while ((rc = amb_tcp_recv(self, s, 0, 5000, buf, sizeof buf, &n)) == 0)
        CHECK_OK(self, amb_tcp_send(self, s, buf, n, 5000, NULL));
    CHECK_RC(self, AMB_ECLOSED, rc);
    WAIT_MSG(self, NULL, "client_done");
    CHECK_OK(self, amb_inet_close(self, s));
    CHECK_OK(self, amb_inet_close(self, l));
}

AMB_TEST(echo_over_loopback)
{
    run_both(echo_body, NULL);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(echo_over_loopback))

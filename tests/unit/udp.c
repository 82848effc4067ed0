/*
 * udp.c - datagram sockets (ambitious/socket.h, gen_udp) over loopback:
 * send to an address and receive with the sender's address, a datagram
 * cut to the caller's buffer (AMB_EMSGSIZE with the first bytes), a
 * connected-style send to NULL refused, receive timeouts, active mode
 * ({udp, S, IP, Port, Data}, {active, N} and udp_passive), a process
 * killed while blocked in a receive, and the address helpers' term forms.
 */
#include "amb_test_rt.h"

static uint16_t port_of(amb_proc *self, amb_socket s)
{
    amb_addr a;
    CHECK_OK(self, amb_inet_sockname(self, s, &a));
    return a.port;
}

static void datagrams_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_socket a, b;
    CHECK_OK(self, amb_udp_open(self, "127.0.0.1", 0, NULL, &a));
    CHECK_OK(self, amb_udp_open(self, "127.0.0.1", 0, NULL, &b));
    amb_addr to;
    char text[64];
    snprintf(text, sizeof text, "127.0.0.1:%u", port_of(self, b));
    CHECK_OK(self, amb_addr_parse(text, strlen(text), false, &to));
    CHECK_OK(self, amb_udp_send(self, a, &to, "ping", 4, 5000));
    char buf[16];
    size_t n;
    amb_addr from;
    CHECK_OK(self, amb_udp_recv(self, b, AMB_TEST_WAIT_MS, buf, sizeof buf, &n, &from));
    CHECK(self, n == 4 && memcmp(buf, "ping", 4) == 0);
    CHECK_EQ(self, from.port, port_of(self, a));
    /* The answer goes where it came from. */
    CHECK_OK(self, amb_udp_send(self, b, &from, "pong!", 5, 5000));
    CHECK_OK(self, amb_udp_recv(self, a, AMB_TEST_WAIT_MS, buf, sizeof buf, &n, NULL));
    CHECK(self, n == 5 && memcmp(buf, "pong!", 5) == 0);
    /* Too long for the buffer: cut, and said so; the rest is gone. */
    CHECK_OK(self, amb_udp_send(self, a, &to, "0123456789", 10, 5000));
    CHECK_RC(self, AMB_EMSGSIZE,
             amb_udp_recv(self, b, AMB_TEST_WAIT_MS, buf, 4, &n, NULL));
    CHECK(self, n == 4 && memcmp(buf, "0123", 4) == 0);
    CHECK_RC(self, AMB_ETIMEDOUT, amb_udp_recv(self, b, 20, buf, sizeof buf, &n, NULL));
    /* An empty datagram is a datagram. */
    CHECK_OK(self, amb_udp_send(self, a, &to, "", 0, 5000));
    CHECK_OK(self, amb_udp_recv(self, b, AMB_TEST_WAIT_MS, buf, sizeof buf, &n, NULL));
    CHECK_EQ(self, n, 0);
    /* Stream calls and framing are not for datagrams. */
    CHECK_RC(self, AMB_EBADARG, amb_tcp_send(self, a, "x", 1, 0, NULL));
    amb_sock_opts line = {.packet = AMB_PACKET_LINE};
    CHECK_RC(self, AMB_EBADARG, amb_inet_setopts(self, a, &line, AMB_SOCKOPT_PACKET));
    amb_socket c;
    CHECK_RC(self, AMB_EBADARG, amb_udp_open(self, NULL, 0, &line, &c));
    CHECK_OK(self, amb_inet_close(self, a));
    CHECK_OK(self, amb_inet_close(self, b));
    CHECK_RC(self, AMB_ECLOSED, amb_udp_send(self, a, &to, "x", 1, 0));
}

AMB_TEST(send_to_and_recv_from)
{
    run_both(datagrams_body, NULL);
}

static void active_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_sock_opts three = {.active = 3};
    amb_socket a, b;
    CHECK_OK(self, amb_udp_open(self, "127.0.0.1", 0, NULL, &a));
    CHECK_OK(self, amb_udp_open(self, "127.0.0.1", 0, &three, &b));
    amb_addr to;
    CHECK_OK(self, amb_inet_sockname(self, b, &to));
    for (int i = 0; i < 4; i++) {
        char d = (char)('0' + i);
        CHECK_OK(self, amb_udp_send(self, a, &to, &d, 1, 5000));
    }
    uint16_t aport = port_of(self, a);
    for (int i = 0; i < 3; i++) {
        const uint8_t *data;
        size_t len;
        int64_t port;
        amb_term ip;
        WAIT_MSG(self, NULL, "{udp,~v,~w,~i,~b}", b, &ip, &port, &data, &len);
        CHECK_TERM(self, ip, "{127,0,0,1}");
        CHECK_EQ(self, port, aport);
        CHECK(self, len == 1 && data[0] == '0' + i);
    }
    WAIT_MSG(self, NULL, "{udp_passive,~v}", b);
    char buf[4];
    size_t n;
    CHECK_OK(self, amb_udp_recv(self, b, AMB_TEST_WAIT_MS, buf, sizeof buf, &n, NULL));
    CHECK(self, n == 1 && buf[0] == '3');
    CHECK_OK(self, amb_inet_close(self, a));
    CHECK_OK(self, amb_inet_close(self, b));
}

AMB_TEST(active_mode_delivers_datagrams_as_messages)
{
    run_both(active_body, NULL);
}

static void blocked_recv(amb_proc *self, void *arg)
{
    amb_socket s = (amb_socket)(uintptr_t)arg;
    char buf[8];
    size_t n;
    amb_udp_recv(self, s, AMB_INFINITY, buf, sizeof buf, &n, NULL);
}

static void killed_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_socket a, b;
    CHECK_OK(self, amb_udp_open(self, "127.0.0.1", 0, NULL, &a));
    CHECK_OK(self, amb_udp_open(self, "127.0.0.1", 0, NULL, &b));
    amb_pid pid;
    amb_term ref;
    CHECK_OK(self,
             amb_spawn_monitor(self, blocked_recv, (void *)(uintptr_t)b, &pid, &ref));
    amb_proc_info info;
    WAIT_UNTIL(self, amb_process_info(self, pid, &info) == 0 &&
                         info.status == AMB_STATUS_WAITING);
    CHECK_OK(self, amb_exit(self, pid, AMB_ATOM_KILL));
    wait_down(self, ref, pid);
    amb_addr to;
    CHECK_OK(self, amb_inet_sockname(self, b, &to));
    CHECK_OK(self, amb_udp_send(self, a, &to, "after", 5, 5000));
    char buf[8];
    size_t n;
    CHECK_OK(self, amb_udp_recv(self, b, AMB_TEST_WAIT_MS, buf, sizeof buf, &n, NULL));
    CHECK(self, n == 5 && memcmp(buf, "after", 5) == 0);
    CHECK_OK(self, amb_inet_close(self, a));
    CHECK_OK(self, amb_inet_close(self, b));
}

AMB_TEST(killed_while_blocked_in_recv)
{
    run_both(killed_body, NULL);
}

AMB_TEST(address_terms_round_trip)
{
    amb_heap *h;
    assert_ok(amb_heap_new(&h));
    const char *texts[] = {"10.1.2.3:80", "[2001:db8::1]:443", "unix:/run/x.sock"};
    const char *terms[] = {"{10,1,2,3}", "{8193,3512,0,0,0,0,0,1}",
                           "{local,<<\"/run/x.sock\">>}"};
    for (size_t i = 0; i < 3; i++) {
        amb_addr a, b;
        assert_ok(amb_addr_parse(texts[i], strlen(texts[i]), false, &a));
        amb_term t = amb_addr_to_term(h, &a);
        char buf[128];
        assert_ok(amb_print(t, buf, sizeof buf, NULL));
        assert_true(amb_test_same_term_text(buf, terms[i]));
        assert_ok(amb_addr_from_term(t, a.port, &b));
        assert_memory_equal(&a, &b, sizeof a);
        size_t len;
        assert_ok(amb_addr_format(&b, buf, sizeof buf, &len));
        assert_string_equal(buf, texts[i]);
    }
    amb_addr a;
    assert_rc(AMB_ETYPE, amb_addr_from_term(amb_atom("x"), 0, &a));
    assert_rc(AMB_ETYPE, amb_addr_from_term(AMB_TUPLE(h, AMB_SMALL(1), AMB_SMALL(2),
                                                      AMB_SMALL(3), AMB_SMALL(256)),
                                            0, &a));
    assert_rc(AMB_ENOTFOUND, amb_addr_parse("example.com:80", 14, false, &a));
    assert_rc(AMB_ESYNTAX, amb_addr_parse("1.2.3.256:80", 12, false, &a));
    char small[4];
    size_t len;
    assert_ok(amb_addr_parse("10.1.2.3:80", 11, false, &a));
    assert_rc(AMB_EBUFSIZE, amb_addr_format(&a, small, sizeof small, &len));
    assert_int_equal(len, 11);
    amb_heap_free(h);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(send_to_and_recv_from),
              AMB_TEST_ENTRY(active_mode_delivers_datagrams_as_messages),
              AMB_TEST_ENTRY(killed_while_blocked_in_recv),
              AMB_TEST_ENTRY(address_terms_round_trip))

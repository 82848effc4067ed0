/*
 * tcp.c - stream sockets (ambitious/socket.h) between processes of one
 * runtime, and against plain sockets driven by a test thread, over
 * loopback only; each test starts its own listeners on ports the kernel
 * picks. Every wait has a deadline; none sleeps to let something happen.
 *
 * Covered: echo in raw mode; {packet, 4}, line and exact-length receives,
 * a packet larger than the caller's buffer kept for the next call; timeouts
 * of accept, recv and connect; concurrent acceptors and senders; active
 * mode ({active, true | once | N}, tcp_passive, tcp_closed, tcp_error);
 * controlling_process (messages moved in order, a dead new owner closes
 * the socket, only the owner may, an owner killed inside it leaves no
 * reference); an owner's end however it ends (return,
 * crash, kill) closing its sockets and giving back fds and memory; a
 * process killed while blocked in accept, recv, send and connect, the
 * socket staying usable by others; EMFILE on accept with the listener
 * still working; a reset mid-message; half-close both ways; a slowloris
 * peer; a 1 GiB line bounded by packet_size; sends to a closed socket;
 * Unix-domain streams; names; options.
 */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amb_test_rt.h"
#include "io/socket.h"

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* A listener on 127.0.0.1 with options o, its port in *port. */
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

/* The fds this OS process has open. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

/* A plain socket connecting to 127.0.0.1:port: blocking (loopback
 * connects to a listener with room complete in the kernel at once), or
 * not, to only send the SYN (a listener with a full queue never answers). */
static int raw_connect_as(uint16_t port, bool nonblock)
{
    int fd =
        socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static int raw_connect(uint16_t port)
{
    return raw_connect_as(port, false);
}

/* Reads exactly n bytes from s (raw mode) within the test's deadline. */
static void recv_exact(amb_proc *self, amb_socket s, void *buf, size_t n)
{
    size_t got;
    CHECK_OK(self, amb_tcp_recv(self, s, n, AMB_TEST_WAIT_MS, buf, n, &got));
    CHECK_EQ(self, got, n);
}

typedef struct peer {
    amb_pid parent;
    uint16_t port;
    amb_socket sock;
    int n;
} peer;

/* ---------------------------------------------------------------------------
 * Data
 * ------------------------------------------------------------------------ */

static void echo_client(amb_proc *self, void *arg)
{
    peer *a = arg;
    amb_socket c;
    CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", a->port, NULL, 5000, &c));
    for (int i = 0; i < 100; i++) {
        char msg[32], back[32];
        int len = snprintf(msg, sizeof msg, "hello %d", i);
        CHECK_OK(self, amb_tcp_send(self, c, msg, (size_t)len, 5000, NULL));
        recv_exact(self, c, back, (size_t)len);
        CHECK(self, memcmp(back, msg, (size_t)len) == 0);
    }
    CHECK_OK(self, amb_inet_close(self, c));
    amb_send(self, a->parent, amb_atom("client_done"));
}

static void echo_body(amb_proc *self, void *arg)
{
    (void)arg;
    peer a = {amb_self(self), 0, 0, 0};
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

/* A connected pair (client c, server side s) through a fresh listener. */
static void pair(amb_proc *self, const amb_sock_opts *co, const amb_sock_opts *lo,
                 amb_socket *c, amb_socket *s)
{
    uint16_t port;
    amb_socket l = listen_local(self, lo, &port);
    CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", port, co, 5000, c));
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, s));
    CHECK_OK(self, amb_inet_close(self, l));
}

static void framing_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_sock_opts p4 = {.packet = AMB_PACKET_4};
    amb_socket c, s;
    pair(self, &p4, &p4, &c, &s);
    /* {packet, 4}: one send, one packet, headers added and stripped. */
    CHECK_OK(self, amb_tcp_send(self, c, "abc", 3, 5000, NULL));
    CHECK_OK(self, amb_tcp_send(self, c, "", 0, 5000, NULL));
    CHECK_OK(self, amb_tcp_send(self, c, "0123456789", 10, 5000, NULL));
    char buf[64];
    size_t n;
    CHECK_OK(self, amb_tcp_recv(self, s, 0, 5000, buf, sizeof buf, &n));
    CHECK(self, n == 3 && memcmp(buf, "abc", 3) == 0);
    CHECK_OK(self, amb_tcp_recv(self, s, 0, 5000, buf, sizeof buf, &n));
    CHECK_EQ(self, n, 0);
    /* Too small a buffer: the size, and the packet stays for the next call. */
    CHECK_RC(self, AMB_EBUFSIZE, amb_tcp_recv(self, s, 0, 5000, buf, 4, &n));
    CHECK_EQ(self, n, 10);
    CHECK_OK(self, amb_tcp_recv(self, s, 0, 5000, buf, sizeof buf, &n));
    CHECK(self, n == 10 && memcmp(buf, "0123456789", 10) == 0);
    /* A length with a framed socket is a misuse. */
    CHECK_RC(self, AMB_EBADARG, amb_tcp_recv(self, s, 3, 5000, buf, sizeof buf, &n));

    /* Lines, then raw with exact lengths: setopts reframes what is buffered. */
    amb_sock_opts line = {.packet = AMB_PACKET_LINE};
    CHECK_OK(self, amb_inet_setopts(self, s, &line, AMB_SOCKOPT_PACKET));
    amb_sock_opts raw = {.packet = AMB_PACKET_RAW};
    CHECK_OK(self, amb_inet_setopts(self, c, &raw, AMB_SOCKOPT_PACKET));
    CHECK_OK(self, amb_tcp_send(self, c, "one\ntwo\nthree", 13, 5000, NULL));
    CHECK_OK(self, amb_tcp_recv(self, s, 0, 5000, buf, sizeof buf, &n));
    CHECK(self, n == 4 && memcmp(buf, "one\n", 4) == 0);
    CHECK_OK(self, amb_tcp_recv(self, s, 0, 5000, buf, sizeof buf, &n));
    CHECK(self, n == 4 && memcmp(buf, "two\n", 4) == 0);
    CHECK_RC(self, AMB_ETIMEDOUT, amb_tcp_recv(self, s, 0, 50, buf, sizeof buf, &n));
    CHECK_OK(self, amb_inet_setopts(self, s, &raw, AMB_SOCKOPT_PACKET));
    CHECK_OK(self, amb_tcp_send(self, c, "45", 2, 5000, NULL));
    recv_exact(self, s, buf, 7);
    CHECK(self, memcmp(buf, "three45", 7) == 0);
    /* The end of the stream: a line mode's last line without its delimiter. */
    CHECK_OK(self, amb_inet_setopts(self, s, &line, AMB_SOCKOPT_PACKET));
    CHECK_OK(self, amb_tcp_send(self, c, "tail", 4, 5000, NULL));
    CHECK_OK(self, amb_inet_close(self, c));
    CHECK_OK(self, amb_tcp_recv(self, s, 0, 5000, buf, sizeof buf, &n));
    CHECK(self, n == 4 && memcmp(buf, "tail", 4) == 0);
    CHECK_RC(self, AMB_ECLOSED, amb_tcp_recv(self, s, 0, 5000, buf, sizeof buf, &n));
    CHECK_OK(self, amb_inet_close(self, s));
}

AMB_TEST(packet_line_and_exact_modes)
{
    run_both(framing_body, NULL);
}

static void timeouts_body(amb_proc *self, void *arg)
{
    (void)arg;
    uint16_t port;
    amb_socket l = listen_local(self, NULL, &port);
    amb_socket s;
    int64_t t0 = amb_now_ms();
    CHECK_RC(self, AMB_ETIMEDOUT, amb_tcp_accept(self, l, 30, &s));
    CHECK(self, amb_now_ms() - t0 >= 30);
    CHECK_RC(self, AMB_ETIMEDOUT, amb_tcp_accept(self, l, 0, &s));
    amb_socket c;
    CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", port, NULL, 5000, &c));
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
    char b[8];
    size_t n;
    t0 = amb_now_ms();
    CHECK_RC(self, AMB_ETIMEDOUT, amb_tcp_recv(self, s, 0, 30, b, sizeof b, &n));
    CHECK(self, amb_now_ms() - t0 >= 30);
    /* Still usable after a timeout. */
    CHECK_OK(self, amb_tcp_send(self, c, "x", 1, 5000, NULL));
    recv_exact(self, s, b, 1);
    CHECK_OK(self, amb_inet_close(self, c));
    CHECK_OK(self, amb_inet_close(self, s));

    /* A listener whose queue is full and never accepted from: further
     * connects get no answer, and time out. */
    amb_sock_opts tiny = {.backlog = 1};
    uint16_t p2;
    amb_socket full = listen_local(self, &tiny, &p2);
    int rc = 0;
    for (int i = 0; i < 8 && rc == 0; i++) {
        amb_socket x; /* the ones that get in are closed with this process */
        rc = amb_tcp_connect(self, "127.0.0.1", p2, NULL, 200, &x);
    }
    CHECK_RC(self, AMB_ETIMEDOUT, rc);
    CHECK_OK(self, amb_inet_close(self, full));
    CHECK_OK(self, amb_inet_close(self, l));
}

AMB_TEST(accept_recv_and_connect_time_out)
{
    run_both(timeouts_body, NULL);
}

/* Several acceptors on one listener, several senders on one socket. */
static void acceptor(amb_proc *self, void *arg)
{
    peer *a = arg;
    amb_socket s;
    CHECK_OK(self, amb_tcp_accept(self, a->sock, AMB_TEST_WAIT_MS, &s));
    char b[1];
    recv_exact(self, s, b, 1);
    amb_send(self, a->parent, amb_int(amb_proc_heap(self), b[0]));
    CHECK_OK(self, amb_inet_close(self, s));
}

static void sender(amb_proc *self, void *arg)
{
    peer *a = arg;
    /* 64 messages of 4 KiB, each filled with the sender's byte: the
     * receiver checks that no message is interleaved with another. */
    uint8_t msg[4096];
    memset(msg, 'a' + a->n, sizeof msg);
    for (int i = 0; i < 64; i++)
        CHECK_OK(self,
                 amb_tcp_send(self, a->sock, msg, sizeof msg, AMB_TEST_WAIT_MS, NULL));
    amb_send(self, a->parent, amb_atom("sent"));
}

static void concurrency_body(amb_proc *self, void *arg)
{
    (void)arg;
    uint16_t port;
    peer a = {amb_self(self), 0, 0, 0};
    a.sock = listen_local(self, NULL, &port);
    for (int i = 0; i < 4; i++)
        CHECK_OK(self, amb_spawn(self, acceptor, &a, NULL));
    int got = 0;
    for (int i = 0; i < 4; i++) {
        amb_socket c;
        CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", port, NULL, 5000, &c));
        char b = (char)('0' + i);
        CHECK_OK(self, amb_tcp_send(self, c, &b, 1, 5000, NULL));
        CHECK_OK(self, amb_inet_close(self, c));
    }
    for (int i = 0; i < 4; i++) {
        amb_term m = RECV(self);
        got |= 1 << (int_of(m) - '0');
    }
    CHECK_EQ(self, got, 15);

    amb_socket c, s;
    CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", port, NULL, 5000, &c));
    CHECK_OK(self, amb_tcp_accept(self, a.sock, 5000, &s));
    amb_sock_opts small = {.sndbuf = 4096, .recbuf = 4096};
    CHECK_OK(self, amb_inet_setopts(self, c, &small, AMB_SOCKOPT_SNDBUF));
    peer senders[3];
    for (int i = 0; i < 3; i++) {
        senders[i] = (peer){amb_self(self), 0, c, i};
        CHECK_OK(self, amb_spawn(self, sender, &senders[i], NULL));
    }
    static uint8_t buf[4096];
    for (int i = 0; i < 3 * 64; i++) {
        recv_exact(self, s, buf, sizeof buf);
        for (size_t j = 1; j < sizeof buf; j++)
            CHECK(self, buf[j] == buf[0]);
    }
    for (int i = 0; i < 3; i++)
        WAIT_MSG(self, NULL, "sent");
    CHECK_OK(self, amb_inet_close(self, c));
    CHECK_OK(self, amb_inet_close(self, s));
    CHECK_OK(self, amb_inet_close(self, a.sock));
}

AMB_TEST(acceptors_and_senders_are_served_in_turn)
{
    run_both(concurrency_body, NULL);
}

/* ---------------------------------------------------------------------------
 * Active mode
 * ------------------------------------------------------------------------ */

static void active_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_socket c, s;
    pair(self, NULL, NULL, &c, &s);
    const uint8_t *d;
    size_t len;
    /* {active, once}: one message, then passive (no tcp_passive). */
    amb_sock_opts once = {.active = AMB_ACTIVE_ONCE};
    CHECK_OK(self, amb_inet_setopts(self, s, &once, AMB_SOCKOPT_ACTIVE));
    CHECK_OK(self, amb_tcp_send(self, c, "hi", 2, 5000, NULL));
    WAIT_MSG(self, NULL, "{tcp,~v,~b}", s, &d, &len);
    CHECK(self, len == 2 && memcmp(d, "hi", 2) == 0);
    amb_sock_opts now;
    CHECK_OK(self, amb_inet_getopts(self, s, &now));
    CHECK_EQ(self, now.active, 0);
    char b[8];
    size_t n;
    CHECK_OK(self, amb_tcp_send(self, c, "p", 1, 5000, NULL));
    recv_exact(self, s, b, 1); /* passive again: recv works */

    /* {active, 3}: three messages then {tcp_passive, S}; lines framed. */
    amb_sock_opts three = {.active = 3, .packet = AMB_PACKET_LINE};
    CHECK_OK(self,
             amb_inet_setopts(self, s, &three, AMB_SOCKOPT_ACTIVE | AMB_SOCKOPT_PACKET));
    CHECK_RC(self, AMB_ESTATE, amb_tcp_recv(self, s, 0, 0, b, sizeof b, &n));
    CHECK_OK(self, amb_tcp_send(self, c, "1\n2\n3\n4\n", 8, 5000, NULL));
    for (int i = 1; i <= 3; i++) {
        WAIT_MSG(self, NULL, "{tcp,~v,~b}", s, &d, &len);
        CHECK(self, len == 2 && d[0] == '0' + i && d[1] == '\n');
    }
    WAIT_MSG(self, NULL, "{tcp_passive,~v}", s);
    CHECK_OK(self, amb_tcp_recv(self, s, 0, 5000, b, sizeof b, &n));
    CHECK(self, n == 2 && b[0] == '4');
    /* {active, N} adds to what is left. */
    amb_sock_opts two = {.active = 2};
    CHECK_OK(self, amb_inet_setopts(self, s, &two, AMB_SOCKOPT_ACTIVE));
    CHECK_OK(self, amb_inet_setopts(self, s, &two, AMB_SOCKOPT_ACTIVE));
    CHECK_OK(self, amb_inet_getopts(self, s, &now));
    CHECK_EQ(self, now.active, 4);
    amb_sock_opts too_many = {.active = 32767};
    CHECK_RC(self, AMB_EBADARG, amb_inet_setopts(self, s, &too_many, AMB_SOCKOPT_ACTIVE));

    /* {active, true}, then the peer closes: the last line without its
     * delimiter, then tcp_closed; the socket is closed by then. */
    amb_sock_opts on = {.active = AMB_ACTIVE_TRUE};
    CHECK_OK(self, amb_inet_setopts(self, s, &on, AMB_SOCKOPT_ACTIVE));
    CHECK_OK(self, amb_tcp_send(self, c, "x\ny", 3, 5000, NULL));
    CHECK_OK(self, amb_inet_close(self, c));
    WAIT_MSG(self, NULL, "{tcp,~v,~b}", s, &d, &len);
    CHECK(self, len == 2 && d[0] == 'x');
    WAIT_MSG(self, NULL, "{tcp,~v,~b}", s, &d, &len);
    CHECK(self, len == 1 && d[0] == 'y');
    WAIT_MSG(self, NULL, "{tcp_closed,~v}", s);
    CHECK_RC(self, AMB_ECLOSED, amb_tcp_send(self, s, "z", 1, 0, NULL));
    CHECK_OK(self, amb_inet_close(self, s)); /* closing a closed socket: fine */
}

AMB_TEST(active_once_n_and_true)
{
    run_both(active_body, NULL);
}

/* An echo handler: no stack while idle, a connection in {active, 2}. */
static int echo_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    *(amb_socket *)state = (amb_socket)(uintptr_t)arg;
    return 0;
}

static int echo_handle(amb_proc *self, void *state, amb_term msg)
{
    amb_socket s = *(amb_socket *)state;
    const uint8_t *data;
    size_t len;
    if (amb_match(msg, "{tcp,~v,~b}", s, &data, &len) == 0)
        return amb_tcp_send(self, s, data, len, 5000, NULL);
    if (amb_match(msg, "{tcp_passive,~v}", s) == 0) {
        amb_sock_opts o = {.active = 2};
        return amb_inet_setopts(self, s, &o, AMB_SOCKOPT_ACTIVE);
    }
    amb_exit_self(self, AMB_ATOM_NORMAL); /* tcp_closed, tcp_error */
}

static const amb_handler echo_handler = {
    .state_size = sizeof(amb_socket), .init = echo_init, .handle = echo_handle};

static void handler_client(amb_proc *self, void *arg)
{
    peer *a = arg;
    amb_socket c;
    CHECK_OK(self,
             amb_tcp_connect(self, "127.0.0.1", a->port, NULL, AMB_TEST_WAIT_MS, &c));
    uint8_t msg[512], back[512];
    for (int i = 0; i < 50; i++) {
        memset(msg, i, sizeof msg);
        CHECK_OK(self, amb_tcp_send(self, c, msg, sizeof msg, AMB_TEST_WAIT_MS, NULL));
        recv_exact(self, c, back, sizeof back);
        CHECK(self, memcmp(msg, back, sizeof msg) == 0);
    }
    CHECK_OK(self, amb_inet_close(self, c));
    amb_send(self, a->parent, amb_atom("done"));
}

static void handler_body(amb_proc *self, void *arg)
{
    (void)arg;
    peer a = {amb_self(self), 0, 0, 0};
    amb_socket l = listen_local(self, NULL, &a.port);
    enum { CLIENTS = 20 };
    for (int i = 0; i < CLIENTS; i++)
        CHECK_OK(self, amb_spawn(self, handler_client, &a, NULL));
    amb_pid handlers[CLIENTS];
    amb_term refs[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        amb_socket s;
        CHECK_OK(self, amb_tcp_accept(self, l, AMB_TEST_WAIT_MS, &s));
        amb_spawn_opts so = {.handler = &echo_handler, .monitor = true};
        CHECK_OK(self, amb_spawn_opt(self, NULL, (void *)(uintptr_t)s, &so, &handlers[i],
                                     &refs[i]));
        CHECK_OK(self, amb_inet_controlling_process(self, s, handlers[i]));
        amb_sock_opts o = {.active = 2};
        CHECK_OK(self, amb_inet_setopts(self, s, &o, AMB_SOCKOPT_ACTIVE));
    }
    for (int i = 0; i < CLIENTS; i++)
        WAIT_MSG(self, NULL, "done");
    /* Each handler ends when its client closes (tcp_closed). */
    for (int i = 0; i < CLIENTS; i++)
        CHECK_TERM(self, wait_down(self, refs[i], handlers[i]), "normal");
    CHECK_OK(self, amb_inet_close(self, l));
}

AMB_TEST(handler_processes_own_connections_in_active_mode)
{
    run_both(handler_body, NULL);
}

/* ---------------------------------------------------------------------------
 * Ownership
 * ------------------------------------------------------------------------ */

static void collect_then_report(amb_proc *self, void *arg)
{
    (void)arg;
    /* Waits for the go, then reports every socket message it has, in
     * order, as one list. */
    amb_pid parent;
    WAIT_MSG(self, NULL, "{go,~p}", &parent);
    amb_heap *h = amb_proc_heap(self);
    amb_term items[16];
    size_t n = 0;
    amb_term m;
    while (n < 16 && amb_receive(self, 200, &m) == 0) {
        CHECK_OK(self, amb_term_copy(h, m, &items[n]));
        n++;
    }
    amb_send(self, parent, amb_list(h, n, items));
}

/* A pid that names nobody: a process that has ended. */
static void ends_at_once(amb_proc *self, void *arg)
{
    (void)self;
    (void)arg;
}

static amb_pid dead_pid(amb_proc *self)
{
    amb_pid pid;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, ends_at_once, NULL, &pid, &ref));
    wait_down(self, ref, pid);
    return pid;
}

static void owner_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_socket c, s;
    pair(self, NULL, NULL, &c, &s);
    amb_sock_opts two = {.active = 2};
    CHECK_OK(self, amb_inet_setopts(self, s, &two, AMB_SOCKOPT_ACTIVE));
    amb_sock_opts line = {.packet = AMB_PACKET_LINE};
    CHECK_OK(self, amb_inet_setopts(self, s, &line, AMB_SOCKOPT_PACKET));
    CHECK_OK(self, amb_tcp_send(self, c, "a\n", 2, 5000, NULL));
    /* The first message arrives here and stays. */
    WAIT_UNTIL(self, amb_message_queue_len(self) >= 1);
    amb_pid to;
    CHECK_OK(self, amb_spawn(self, collect_then_report, NULL, &to));
    CHECK_RC(self, AMB_ENOPROC, amb_inet_controlling_process(self, s, dead_pid(self)));
    CHECK_OK(self, amb_inet_controlling_process(self, s, to));
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    /* Only the owner may give it away. */
    CHECK_RC(self, AMB_ENOTOWNER, amb_inet_controlling_process(self, s, amb_self(self)));
    CHECK_OK(self,
             amb_tcp_send(self, c, "b\nc\n", 4, 5000, NULL)); /* c: beyond the count */
    amb_send(self, to, AMB_TUPLE(amb_proc_heap(self), amb_atom("go"), amb_self(self)));
    amb_term list;
    WAIT_MSG(self, &list, "~w", &list);
    /* The moved message first, then what came after: a, b, passive (the
     * count of 2 ran out), and no c. */
    const uint8_t *d;
    size_t len;
    size_t count;
    CHECK_OK(self, amb_list_length(list, &count));
    CHECK_EQ(self, count, 3);
    CHECK_OK(self, amb_match(amb_list_head(list), "{tcp,~v,~b}", s, &d, &len));
    CHECK(self, len == 2 && d[0] == 'a');
    list = amb_list_tail(list);
    CHECK_OK(self, amb_match(amb_list_head(list), "{tcp,~v,~b}", s, &d, &len));
    CHECK(self, len == 2 && d[0] == 'b');
    list = amb_list_tail(list);
    CHECK_OK(self, amb_match(amb_list_head(list), "{tcp_passive,~v}", s));
    /* The new owner ended (normally): its socket was closed, with "c"
     * unread, which the peer sees as a close (or a reset). */
    char b[4];
    size_t n;
    int rc = amb_tcp_recv(self, c, 0, AMB_TEST_WAIT_MS, b, sizeof b, &n);
    CHECK(self, rc == AMB_ECLOSED || rc == AMB_ECONNRESET);
    CHECK_RC(self, AMB_ECLOSED, amb_tcp_send(self, s, "x", 1, 0, NULL));
    CHECK_OK(self, amb_inet_close(self, c));
}

AMB_TEST(controlling_process_moves_messages_in_order)
{
    run_both(owner_body, NULL);
}

/* A new owner that is dead by the time the socket reaches it: the socket
 * is closed, nothing leaks (the run's memory check). */
static void give_to_dying(amb_proc *self, void *arg)
{
    (void)arg;
    amb_socket c, s;
    pair(self, NULL, NULL, &c, &s);
    amb_pid to;
    amb_term ref;
    /* It waits for a message and ends on it: the socket's give cell is a
     * cell too, but the process ends without ever draining again. */
    CHECK_OK(self, amb_spawn_monitor(self, collect_then_report, NULL, &to, &ref));
    CHECK_OK(self, amb_inet_controlling_process(self, s, to));
    CHECK_OK(self, amb_exit(self, to, AMB_ATOM_KILL));
    wait_down(self, ref, to);
    char b[4];
    size_t n;
    int rc = amb_tcp_recv(self, c, 0, AMB_TEST_WAIT_MS, b, sizeof b, &n);
    CHECK(self, rc == AMB_ECLOSED || rc == AMB_ECONNRESET);
    CHECK_OK(self, amb_inet_close(self, c));
}

AMB_TEST(a_socket_given_to_a_dead_process_is_closed)
{
    run_both(give_to_dying, NULL);
}

/* An owner killed inside controlling_process, while it drains for its
 * active socket's fired event cell: the exit signal ends it there, and the
 * call's reference goes with it (else the socket, closed by the owner's
 * end, stayed open with that reference and the runtime's teardown
 * panicked: a node's listener killed as it handed a connection on). */
typedef struct give_kill {
    amb_pid victim;
    atomic_int sent; /* the kill is in the victim's mailbox */
} give_kill;

static void kill_victim(amb_proc *self, void *arg)
{
    give_kill *g = arg;
    CHECK_OK(self, amb_exit(self, g->victim, AMB_ATOM_KILL));
    atomic_store(&g->sent, 1);
}

static void killed_while_giving(amb_proc *self, void *arg)
{
    give_kill *g = arg;
    g->victim = amb_self(self);
    amb_socket c, s;
    pair(self, NULL, NULL, &c, &s);
    amb_sock_opts on = {.active = AMB_ACTIVE_TRUE};
    CHECK_OK(self, amb_inet_setopts(self, s, &on, AMB_SOCKOPT_ACTIVE));
    amb_pid to;
    CHECK_OK(self, amb_spawn(self, collect_then_report, NULL, &to));
    CHECK_OK(self, amb_link(self, to)); /* it ends with us */
    CHECK_OK(self, amb_tcp_send(self, c, "x", 1, 5000, NULL));
    CHECK_OK(self, amb_spawn(self, kill_victim, g, NULL));
    /* Without a drain (which would take the kill now): the kill is in our
     * mailbox and the poller has fired s's event cell, so the call below
     * cannot take the cell back and drains. */
    amb__sock *k = amb__socket_get(amb_proc_rt(self), s);
    CHECK(self, k != NULL);
    int64_t until = amb_now_ms() + AMB_TEST_WAIT_MS;
    while ((atomic_load(&g->sent) == 0 ||
            atomic_load(&k->pd->slot[AMB__SOCK_READ]) != AMB__POLL_READY) &&
           amb_now_ms() < until)
        ;
    amb__socket_put(self->task.sched, k);
    CHECK(self, atomic_load(&g->sent) == 1);
    amb_inet_controlling_process(self, s, to); /* killed in it */
    proc_fail(self, __FILE__, __LINE__, "controlling_process returned");
}

static void give_kill_body(amb_proc *self, void *arg)
{
    (void)arg;
    give_kill g = {0};
    amb_pid pid;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, killed_while_giving, &g, &pid, &ref));
    CHECK_TERM(self, wait_down(self, ref, pid), "killed");
}

AMB_TEST(an_owner_killed_inside_controlling_process_leaves_no_reference)
{
    /* Two schedulers: the victim spins while its killer runs. */
    run_in(2, give_kill_body, NULL);
}

/* How an owner ends. */
enum end_how { END_RETURN, END_CRASH, END_KILL };

typedef struct owner_arg {
    amb_pid parent;
    uint16_t port;
    int how;
} owner_arg;

static void owning(amb_proc *self, void *arg)
{
    owner_arg *a = arg;
    amb_socket socks[4];
    for (int i = 0; i < 4; i++)
        CHECK_OK(self,
                 amb_tcp_connect(self, "127.0.0.1", a->port, NULL, 5000, &socks[i]));
    amb_sock_opts on = {.active = AMB_ACTIVE_TRUE};
    CHECK_OK(self, amb_inet_setopts(self, socks[0], &on, AMB_SOCKOPT_ACTIVE));
    amb_send(self, a->parent, amb_atom("connected"));
    if (a->how == END_RETURN)
        return;
    if (a->how == END_CRASH)
        amb_exit_self(self, amb_atom("crash"));
    char b[4];
    size_t n;
    amb_tcp_recv(self, socks[1], 0, AMB_INFINITY, b, sizeof b, &n); /* killed here */
}

static void owner_end_body(amb_proc *self, void *arg)
{
    (void)arg;
    int before = open_fds();
    for (int how = END_RETURN; how <= END_KILL; how++) {
        owner_arg a = {amb_self(self), 0, how};
        amb_socket l = listen_local(self, NULL, &a.port);
        amb_pid pid;
        amb_term ref;
        CHECK_OK(self, amb_spawn_monitor(self, owning, &a, &pid, &ref));
        WAIT_MSG(self, NULL, "connected");
        amb_socket acc[4];
        for (int i = 0; i < 4; i++)
            CHECK_OK(self, amb_tcp_accept(self, l, 5000, &acc[i]));
        if (how == END_KILL)
            CHECK_OK(self, amb_exit(self, pid, AMB_ATOM_KILL));
        wait_down(self, ref, pid);
        /* Every socket of the owner is closed: the peers see the end. */
        for (int i = 0; i < 4; i++) {
            char b[4];
            size_t n;
            CHECK_RC(self, AMB_ECLOSED,
                     amb_tcp_recv(self, acc[i], 0, AMB_TEST_WAIT_MS, b, sizeof b, &n));
            CHECK_OK(self, amb_inet_close(self, acc[i]));
        }
        CHECK_OK(self, amb_inet_close(self, l));
    }
    /* Every fd is back (the runtime's poller keeps its two). */
    WAIT_UNTIL(self, open_fds() <= before + 2);
}

AMB_TEST(an_owner_ending_any_way_closes_its_sockets)
{
    run_both(owner_end_body, NULL);
}

static void sender_mark(amb_proc *self, void *arg)
{
    peer *a = arg;
    amb_pid parent = a->parent;
    amb_socket c = a->sock;
    CHECK_OK(self, amb_tcp_send(self, c, "MARK", 4, AMB_TEST_WAIT_MS, NULL));
    amb_send(self, parent, amb_atom("sent"));
}

/* ---------------------------------------------------------------------------
 * Killed while blocked
 * ------------------------------------------------------------------------ */

enum blocked_in { IN_ACCEPT, IN_RECV, IN_SEND, IN_CONNECT };

typedef struct blocked_arg {
    amb_pid parent;
    amb_socket sock;
    uint16_t port;
    int where;
} blocked_arg;

static void blocks(amb_proc *self, void *arg)
{
    blocked_arg *a = arg;
    amb_send(self, a->parent, amb_atom("blocking"));
    static uint8_t big[1 << 20];
    amb_socket x;
    size_t n;
    switch (a->where) {
    case IN_ACCEPT:
        amb_tcp_accept(self, a->sock, AMB_INFINITY, &x);
        break;
    case IN_RECV:
        amb_tcp_recv(self, a->sock, 0, AMB_INFINITY, big, sizeof big, &n);
        break;
    case IN_SEND:
        /* A peer that does not read: the send fills the buffers, then
         * waits, with part of the message gone. */
        for (;;)
            amb_tcp_send(self, a->sock, big, sizeof big, AMB_INFINITY, NULL);
    case IN_CONNECT:
        amb_tcp_connect(self, "127.0.0.1", a->port, NULL, AMB_INFINITY, &x);
        break;
    }
    amb_send(self, a->parent, amb_atom("returned")); /* never */
}

/* Kills a process blocked in `where` on a socket the test owns; the socket
 * then still works for the owner. */
static void killed_body(amb_proc *self, void *arg)
{
    (void)arg;
    for (int where = IN_ACCEPT; where <= IN_CONNECT; where++) {
        uint16_t port;
        amb_sock_opts lo = {.backlog = 1};
        amb_socket l = listen_local(self, where == IN_CONNECT ? &lo : NULL, &port);
        amb_socket c = 0, s = 0;
        if (where != IN_ACCEPT) {
            CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", port, NULL, 5000, &c));
            CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
        }
        int extra[4] = {-1, -1, -1, -1};
        if (where == IN_CONNECT) {
            /* Fill the listener's queue so that a connect gets no answer. */
            for (int i = 0; i < 4; i++)
                extra[i] = raw_connect_as(port, true);
        }
        blocked_arg a = {amb_self(self), where == IN_ACCEPT ? l : c, port, where};
        amb_pid pid;
        amb_term ref;
        CHECK_OK(self, amb_spawn_monitor(self, blocks, &a, &pid, &ref));
        WAIT_MSG(self, NULL, "blocking");
        /* Until it is parked: its status says waiting. */
        amb_proc_info info;
        WAIT_UNTIL(self, amb_process_info(self, pid, &info) == 0 &&
                             info.status == AMB_STATUS_WAITING);
        CHECK_OK(self, amb_exit(self, pid, AMB_ATOM_KILL));
        CHECK_TERM(self, wait_down(self, ref, pid), "killed");
        CHECK_RC(self, AMB_ETIMEDOUT, amb_receive_match(self, 0, NULL, "returned"));
        /* The socket serves the next caller. */
        switch (where) {
        case IN_ACCEPT: {
            amb_socket c2, s2;
            CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", port, NULL, 5000, &c2));
            CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s2));
            CHECK_OK(self, amb_inet_close(self, c2));
            CHECK_OK(self, amb_inet_close(self, s2));
            break;
        }
        case IN_RECV: {
            CHECK_OK(self, amb_tcp_send(self, s, "ok", 2, 5000, NULL));
            char b[2];
            recv_exact(self, c, b, 2);
            CHECK(self, memcmp(b, "ok", 2) == 0);
            break;
        }
        case IN_SEND: {
            /* The killed sender's message is finished before ours: the
             * reader sees whole 1 MiB messages of zeros, then ours. */
            static const uint8_t mark[4] = {'M', 'A', 'R', 'K'};
            peer pa = {amb_self(self), 0, c, 0};
            CHECK_OK(self, amb_spawn(self, sender_mark, &pa, NULL));
            static uint8_t got[1 << 20];
            size_t total = 0, at_mark = 0;
            while (at_mark < 4) {
                size_t n;
                CHECK_OK(self,
                         amb_tcp_recv(self, s, 0, AMB_TEST_WAIT_MS, got, sizeof got, &n));
                for (size_t i = 0; i < n && at_mark < 4; i++) {
                    if (at_mark == 0 && got[i] == 0)
                        continue;
                    /* the mark starts exactly at a 1 MiB boundary */
                    if (at_mark == 0)
                        CHECK_EQ(self, (total + i) % (1u << 20), 0);
                    CHECK_EQ(self, got[i], mark[at_mark]);
                    at_mark++;
                }
                total += n;
            }
            WAIT_MSG(self, NULL, "sent");
            break;
        }
        case IN_CONNECT:
            for (int i = 0; i < 4; i++)
                if (extra[i] >= 0)
                    close(extra[i]);
            break;
        }
        if (c != 0)
            CHECK_OK(self, amb_inet_close(self, c));
        if (s != 0)
            CHECK_OK(self, amb_inet_close(self, s));
        CHECK_OK(self, amb_inet_close(self, l));
    }
}

AMB_TEST(killed_while_blocked_in_accept_recv_send_connect)
{
    run_both(killed_body, NULL);
}

/* ---------------------------------------------------------------------------
 * Bad peers and limits
 * ------------------------------------------------------------------------ */

static void emfile_body(amb_proc *self, void *arg)
{
    (void)arg;
    uint16_t port;
    amb_socket l = listen_local(self, NULL, &port);
    int raw[3];
    for (int i = 0; i < 3; i++)
        CHECK(self, (raw[i] = raw_connect(port)) >= 0);
    /* Not one fd more: a low limit, and its holes filled. */
    struct rlimit old, low;
    CHECK(self, getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = old;
    low.rlim_cur = (rlim_t)open_fds() + 8;
    CHECK(self, setrlimit(RLIMIT_NOFILE, &low) == 0);
    int fill[64], nfill = 0;
    while (nfill < 64 && (fill[nfill] = dup(0)) >= 0)
        nfill++;
    amb_socket s;
    int rc = amb_tcp_accept(self, l, 5000, &s);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    CHECK(self, setrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECK(self, nfill < 64);
    CHECK_RC(self, AMB_ESYSLIMIT, rc);
    /* The listener still works, and the connections waited for us. */
    for (int i = 0; i < 3; i++) {
        CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
        char c = (char)('a' + i), b;
        CHECK(self, write(raw[i], &c, 1) == 1);
        recv_exact(self, s, &b, 1);
        CHECK_EQ(self, b, c);
        CHECK_OK(self, amb_inet_close(self, s));
        close(raw[i]);
    }
    CHECK_OK(self, amb_inet_close(self, l));
}

AMB_TEST(emfile_on_accept_leaves_the_listener_working)
{
    run_both(emfile_body, NULL);
}

/* A peer that resets the connection (SO_LINGER 0) after part of a
 * message. */
static void reset_fd(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static void reset_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_sock_opts p4 = {.packet = AMB_PACKET_4};
    uint16_t port;
    amb_socket l = listen_local(self, &p4, &port);
    /* Passive: the reader gets ECONNRESET, and keeps getting it. */
    int fd = raw_connect(port);
    amb_socket s;
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
    const uint8_t part[] = {0, 0, 0, 100, 'p', 'a', 'r', 't'};
    CHECK(self, write(fd, part, sizeof part) == (ssize_t)sizeof part);
    char b[128];
    size_t n;
    CHECK_RC(self, AMB_ETIMEDOUT, amb_tcp_recv(self, s, 0, 20, b, sizeof b, &n));
    reset_fd(fd);
    CHECK_RC(self, AMB_ECONNRESET, amb_tcp_recv(self, s, 0, 5000, b, sizeof b, &n));
    CHECK_RC(self, AMB_ECONNRESET, amb_tcp_recv(self, s, 0, 5000, b, sizeof b, &n));
    CHECK_OK(self, amb_inet_close(self, s));
    /* Active: {tcp_error, S, econnreset}, then {tcp_closed, S}. */
    fd = raw_connect(port);
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
    amb_sock_opts on = {.active = AMB_ACTIVE_TRUE};
    CHECK_OK(self, amb_inet_setopts(self, s, &on, AMB_SOCKOPT_ACTIVE));
    CHECK(self, write(fd, part, sizeof part) == (ssize_t)sizeof part);
    reset_fd(fd);
    WAIT_MSG(self, NULL, "{tcp_error,~v,econnreset}", s);
    WAIT_MSG(self, NULL, "{tcp_closed,~v}", s);
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive_match(self, 0, NULL, "{tcp,~v,_}", s));
    CHECK_OK(self, amb_inet_close(self, l));
}

AMB_TEST(reset_mid_message)
{
    run_both(reset_body, NULL);
}

static void half_close_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_socket c, s;
    char b[16];
    size_t n;
    /* The client stops writing: the server reads to the end, then still
     * writes, and the client still reads. */
    pair(self, NULL, NULL, &c, &s);
    CHECK_OK(self, amb_tcp_send(self, c, "last", 4, 5000, NULL));
    CHECK_OK(self, amb_tcp_shutdown(self, c, AMB_SHUT_WRITE));
    recv_exact(self, s, b, 4);
    CHECK_RC(self, AMB_ECLOSED, amb_tcp_recv(self, s, 0, 5000, b, sizeof b, &n));
    CHECK_OK(self, amb_tcp_send(self, s, "reply", 5, 5000, NULL));
    recv_exact(self, c, b, 5);
    CHECK(self, memcmp(b, "reply", 5) == 0);
    CHECK_RC(self, AMB_ECLOSED, amb_tcp_send(self, c, "x", 1, 5000, NULL));
    CHECK_OK(self, amb_inet_close(self, c));
    CHECK_OK(self, amb_inet_close(self, s));
    /* The server stops writing: the other way round. */
    pair(self, NULL, NULL, &c, &s);
    CHECK_OK(self, amb_tcp_shutdown(self, s, AMB_SHUT_WRITE));
    CHECK_RC(self, AMB_ECLOSED, amb_tcp_recv(self, c, 0, 5000, b, sizeof b, &n));
    CHECK_OK(self, amb_tcp_send(self, c, "still", 5, 5000, NULL));
    recv_exact(self, s, b, 5);
    CHECK(self, memcmp(b, "still", 5) == 0);
    CHECK_RC(self, AMB_EBADARG, amb_tcp_shutdown(self, s, 0));
    CHECK_OK(self, amb_inet_close(self, c));
    CHECK_OK(self, amb_inet_close(self, s));
}

AMB_TEST(half_close_both_ways)
{
    run_both(half_close_body, NULL);
}

/* A peer thread: sends `byte` every 20 ms (slowloris) or as fast as it
 * can (a flood), until the connection fails or it is told to stop. */
typedef struct trickle {
    int fd;
    bool flood;
    atomic_bool stop;
    atomic_size_t sent;
    pthread_t thread;
} trickle;

static void *trickle_main(void *arg)
{
    trickle *t = arg;
    static const char block[65536] = {'a'}; /* one 'a', then zeros: no '\n' */
    while (!atomic_load(&t->stop)) {
        ssize_t r = send(t->fd, block, t->flood ? sizeof block : 1, MSG_NOSIGNAL);
        if (r <= 0)
            break;
        atomic_fetch_add(&t->sent, (size_t)r);
        if (!t->flood) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void trickle_start(trickle *t, uint16_t port, bool flood)
{
    t->fd = raw_connect(port);
    t->flood = flood;
    atomic_init(&t->stop, false);
    atomic_init(&t->sent, 0);
    pthread_create(&t->thread, NULL, trickle_main, t);
}

static void trickle_stop(trickle *t)
{
    atomic_store(&t->stop, true);
    shutdown(t->fd, SHUT_RDWR);
    pthread_join(t->thread, NULL);
    close(t->fd);
}

static void slowloris_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_sock_opts line = {.packet = AMB_PACKET_LINE};
    uint16_t port;
    amb_socket l = listen_local(self, &line, &port);
    trickle t;
    trickle_start(&t, port, false);
    amb_socket slow;
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &slow));
    /* Meanwhile another client is served. */
    amb_socket c, s;
    CHECK_OK(self, amb_tcp_connect(self, "127.0.0.1", port, NULL, 5000, &c));
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
    char b[64];
    size_t n;
    /* The slow one: no line within the timeout, however many bytes came. */
    int64_t t0 = amb_now_ms();
    CHECK_RC(self, AMB_ETIMEDOUT, amb_tcp_recv(self, slow, 0, 150, b, sizeof b, &n));
    CHECK(self, amb_now_ms() - t0 >= 150);
    CHECK_OK(self, amb_tcp_send(self, c, "fine\n", 5, 5000, NULL));
    CHECK_OK(self, amb_tcp_recv(self, s, 0, 5000, b, sizeof b, &n));
    CHECK(self, n == 5 && memcmp(b, "fine\n", 5) == 0);
    /* The timeout ends it: the server closes the slow peer. */
    CHECK_OK(self, amb_inet_close(self, slow));
    trickle_stop(&t);
    CHECK(self, atomic_load(&t.sent) >= 1);
    CHECK_OK(self, amb_inet_close(self, c));
    CHECK_OK(self, amb_inet_close(self, s));
    CHECK_OK(self, amb_inet_close(self, l));
}

AMB_TEST(slowloris_peer_times_out_others_unaffected)
{
    run_both(slowloris_body, NULL);
}

static void long_line_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_sock_opts line = {.packet = AMB_PACKET_LINE}; /* packet_size: 1 MiB */
    uint16_t port;
    amb_socket l = listen_local(self, &line, &port);
    trickle t;
    trickle_start(&t, port, true); /* a line that would go on for 1 GiB */
    amb_socket s;
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
    long rss0 = amb_test_rss_kib();
    char b[64];
    size_t n;
    CHECK_RC(self, AMB_EMSGSIZE,
             amb_tcp_recv(self, s, 0, AMB_TEST_WAIT_MS, b, sizeof b, &n));
    CHECK_RC(self, AMB_EMSGSIZE,
             amb_tcp_recv(self, s, 0, 0, b, sizeof b, &n)); /* sticky */
    /* Bounded: about 1 MiB of buffer, not the stream. */
    CHECK(self, amb_test_rss_kib() - rss0 < 16 * 1024);
    CHECK(self, atomic_load(&t.sent) >= ((size_t)1 << 20));
    /* Active mode says the same as a message, then closes. */
    CHECK_OK(self, amb_inet_close(self, s));
    trickle_stop(&t);
    trickle_start(&t, port, true);
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
    amb_sock_opts on = {.active = AMB_ACTIVE_TRUE};
    CHECK_OK(self, amb_inet_setopts(self, s, &on, AMB_SOCKOPT_ACTIVE));
    WAIT_MSG(self, NULL, "{tcp_error,~v,emsgsize}", s);
    WAIT_MSG(self, NULL, "{tcp_closed,~v}", s);
    trickle_stop(&t);
    CHECK_OK(self, amb_inet_close(self, l));
}

AMB_TEST(a_1gib_line_is_emsgsize_after_packet_size)
{
    run_both(long_line_body, NULL);
}

static void closed_send_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_socket c, s;
    pair(self, NULL, NULL, &c, &s);
    CHECK_OK(self, amb_inet_close(self, c));
    /* Closed here: at once. */
    CHECK_RC(self, AMB_ECLOSED, amb_tcp_send(self, c, "x", 1, 5000, NULL));
    size_t n;
    char b[4];
    CHECK_RC(self, AMB_ECLOSED, amb_tcp_recv(self, c, 0, 5000, b, sizeof b, &n));
    CHECK_RC(self, AMB_ECLOSED, amb_inet_setopts(self, c, &(amb_sock_opts){0}, 0));
    /* Closed by the peer: a send fails once the peer's reset is back. */
    int rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++)
        rc = amb_tcp_send(self, s, "data", 4, 5000, NULL);
    CHECK(self, rc == AMB_ECLOSED || rc == AMB_ECONNRESET);
    CHECK_OK(self, amb_inet_close(self, s));
}

AMB_TEST(send_to_a_closed_socket)
{
    run_both(closed_send_body, NULL);
}

/* ---------------------------------------------------------------------------
 * Unix streams, names, options
 * ------------------------------------------------------------------------ */

static void unix_body(amb_proc *self, void *arg)
{
    (void)arg;
    char dir[] = "/tmp/amb-unix-XXXXXX";
    CHECK(self, mkdtemp(dir) != NULL);
    char where[128];
    snprintf(where, sizeof where, "unix:%s/s", dir);
    amb_socket l, c, s;
    CHECK_OK(self, amb_tcp_listen(self, where, 0, NULL, &l));
    CHECK(self, access(where + 5, F_OK) == 0);
    CHECK_OK(self, amb_tcp_connect(self, where, 0, NULL, 5000, &c));
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
    amb_addr a;
    CHECK_OK(self, amb_inet_sockname(self, l, &a));
    CHECK_EQ(self, a.family, AMB_ADDR_UNIX);
    CHECK(self, strcmp(a.path, where + 5) == 0);
    char text[160];
    CHECK_OK(self, amb_addr_format(&a, text, sizeof text, NULL));
    CHECK(self, strcmp(text, where) == 0);
    CHECK_OK(self, amb_tcp_send(self, c, "unix", 4, 5000, NULL));
    char b[4];
    recv_exact(self, s, b, 4);
    CHECK(self, memcmp(b, "unix", 4) == 0);
    /* TCP-only options are refused. */
    amb_sock_opts nd = {.nodelay = true};
    CHECK_RC(self, AMB_EBADARG, amb_inet_setopts(self, s, &nd, AMB_SOCKOPT_NODELAY));
    CHECK_OK(self, amb_inet_close(self, c));
    CHECK_OK(self, amb_inet_close(self, s));
    CHECK_OK(self, amb_inet_close(self, l));
    /* The listener's path went with it. */
    CHECK(self, access(where + 5, F_OK) != 0);
    CHECK_RC(self, AMB_ENOTFOUND, amb_tcp_connect(self, where, 0, NULL, 5000, &c));
    rmdir(dir);
    /* An abstract name: nothing in the file system. */
    snprintf(where, sizeof where, "unix:@amb-test-%d", (int)getpid());
    CHECK_OK(self, amb_tcp_listen(self, where, 0, NULL, &l));
    CHECK_OK(self, amb_tcp_connect(self, where, 0, NULL, 5000, &c));
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
    CHECK_OK(self, amb_inet_close(self, c));
    CHECK_OK(self, amb_inet_close(self, s));
    CHECK_OK(self, amb_inet_close(self, l));
}

AMB_TEST(unix_domain_streams)
{
    run_both(unix_body, NULL);
}

static void names_body(amb_proc *self, void *arg)
{
    (void)arg;
    /* A name goes to the resolver on the blocking pool. */
    amb_addr addrs[8];
    size_t n;
    CHECK_OK(self, amb_inet_getaddrs(self, "localhost", 80, addrs, 8, &n));
    CHECK(self, n >= 1);
    for (size_t i = 0; i < n; i++)
        CHECK(self, addrs[i].port == 80 && (addrs[i].family == AMB_ADDR_INET ||
                                            addrs[i].family == AMB_ADDR_INET6));
    CHECK_RC(self, AMB_ESYNTAX, amb_inet_getaddrs(self, "a..b", 80, addrs, 8, &n));
    /* Every interface, both families: reached over 127.0.0.1 and ::1. */
    amb_socket l, c, s;
    amb_sock_opts nd = {.nodelay = true, .keepalive = true};
    CHECK_OK(self, amb_tcp_listen(self, NULL, 0, &nd, &l));
    amb_addr la;
    CHECK_OK(self, amb_inet_sockname(self, l, &la));
    CHECK_OK(self, amb_tcp_connect(self, "localhost", la.port, NULL, 5000, &c));
    CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
    amb_addr theirs, mine;
    CHECK_OK(self, amb_inet_peername(self, s, &theirs));
    CHECK_OK(self, amb_inet_sockname(self, c, &mine));
    CHECK_EQ(self, theirs.port, mine.port);
    amb_sock_opts o;
    CHECK_OK(self, amb_inet_getopts(self, s, &o));
    CHECK(self, o.nodelay && o.keepalive); /* inherited from the listener */
    CHECK_EQ(self, o.active, 0);
    CHECK_EQ(self, o.packet, AMB_PACKET_RAW);
    CHECK(self, o.packet_size == ((size_t)1 << 20) && o.buffer == ((size_t)16 << 10));
    CHECK(self, o.recbuf > 0 && o.sndbuf > 0);
    CHECK_OK(self, amb_inet_close(self, c));
    CHECK_OK(self, amb_inet_close(self, s));
    amb_socket c6;
    if (amb_tcp_connect(self, "::1", la.port, NULL, 5000, &c6) == 0) {
        CHECK_OK(self, amb_tcp_accept(self, l, 5000, &s));
        CHECK_OK(self, amb_inet_peername(self, s, &theirs));
        CHECK_EQ(self, theirs.family, AMB_ADDR_INET6);
        CHECK_OK(self, amb_inet_close(self, c6));
        CHECK_OK(self, amb_inet_close(self, s));
    }
    CHECK_OK(self, amb_inet_close(self, l));
    /* Refused, and bad arguments. */
    CHECK_RC(self, AMB_ECONNREFUSED,
             amb_tcp_connect(self, "127.0.0.1", la.port, NULL, 5000, &c));
    CHECK_RC(self, AMB_EBADARG, amb_tcp_connect(self, NULL, 1, NULL, 5000, &c));
    amb_sock_opts bad = {.active = -7};
    CHECK_RC(self, AMB_EBADARG, amb_tcp_listen(self, NULL, 0, &bad, &l));
    CHECK_RC(self, AMB_ECLOSED, amb_inet_close(self, AMB_NIL) == 0 ? AMB_ECLOSED : 0);
}

AMB_TEST(names_addresses_and_options)
{
    run_both(names_body, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(echo_over_loopback), AMB_TEST_ENTRY(packet_line_and_exact_modes),
    AMB_TEST_ENTRY(accept_recv_and_connect_time_out),
    AMB_TEST_ENTRY(acceptors_and_senders_are_served_in_turn),
    AMB_TEST_ENTRY(active_once_n_and_true),
    AMB_TEST_ENTRY(handler_processes_own_connections_in_active_mode),
    AMB_TEST_ENTRY(controlling_process_moves_messages_in_order),
    AMB_TEST_ENTRY(an_owner_killed_inside_controlling_process_leaves_no_reference),
    AMB_TEST_ENTRY(a_socket_given_to_a_dead_process_is_closed),
    AMB_TEST_ENTRY(an_owner_ending_any_way_closes_its_sockets),
    AMB_TEST_ENTRY(killed_while_blocked_in_accept_recv_send_connect),
    AMB_TEST_ENTRY(emfile_on_accept_leaves_the_listener_working),
    AMB_TEST_ENTRY(reset_mid_message), AMB_TEST_ENTRY(half_close_both_ways),
    AMB_TEST_ENTRY(slowloris_peer_times_out_others_unaffected),
    AMB_TEST_ENTRY(a_1gib_line_is_emsgsize_after_packet_size),
    AMB_TEST_ENTRY(send_to_a_closed_socket), AMB_TEST_ENTRY(unix_domain_streams),
    AMB_TEST_ENTRY(names_addresses_and_options))

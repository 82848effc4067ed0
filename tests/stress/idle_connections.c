/*
 * tests/stress/idle_connections.c - 10,000 idle connections, each owned by
 * a handler process in {active, 100} (no stack while it waits), cost less
 * than 2 KiB each in the server (sockets.md §5.4, issue 15's target), beyond
 * the kernel's socket buffers, which are not in a process's RSS.
 *
 * The clients are plain sockets in a child OS process (forked before the
 * runtime exists), so that the server's fds and memory are the test
 * process's alone: the child connects N times, sends one 64-byte message
 * on each and reads its echo (the server has accepted every connection and
 * set up everything it keeps per connection, as peer-bench's idle case
 * does), then holds them open. The server measures its RSS and the library
 * allocator's live bytes before and after, prints both per connection, and
 * checks the RSS per connection against 2 KiB; then the child closes them
 * all and every handler ends (tcp_closed), and the run's leak check says
 * nothing stayed.
 *
 * Under the sanitizers N is smaller and RSS is printed, not bounded (shadow
 * memory and quarantine say nothing about the library).
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEADLINE_MS 20000
#include "amb_test_rt.h"

#if defined(AMB_TSAN) || defined(AMB_ASAN)
#define N_CONNS 1000
#else
#define N_CONNS 10000
#endif
#define BOUND_BYTES 2048

/* ===========================================================================
 * The clients: a child OS process
 * ======================================================================== */

static void child_main(int ports_r, int done_w, int go_r)
{
    uint16_t port;
    if (read(ports_r, &port, sizeof port) != (ssize_t)sizeof port)
        _exit(2);
    static int fds[N_CONNS];
    char msg[64], back[64];
    memset(msg, 'x', sizeof msg);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < N_CONNS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0)
            _exit(3);
        if (write(fds[i], msg, sizeof msg) != (ssize_t)sizeof msg)
            _exit(4);
        size_t got = 0;
        while (got < sizeof back) {
            ssize_t r = read(fds[i], back + got, sizeof back - got);
            if (r <= 0)
                _exit(5);
            got += (size_t)r;
        }
    }
    char one = 1;
    if (write(done_w, &one, 1) != 1)
        _exit(6);
    /* Hold them until the parent has measured. */
    if (read(go_r, &one, 1) < 0)
        _exit(7);
    for (int i = 0; i < N_CONNS; i++)
        close(fds[i]);
    _exit(0);
}

/* ===========================================================================
 * The server
 * ======================================================================== */

static atomic_int g_live;

static int echo_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    *(amb_socket *)state = (amb_socket)(uintptr_t)arg;
    atomic_fetch_add(&g_live, 1);
    return 0;
}

static int echo(amb_proc *self, void *state, amb_term msg)
{
    amb_socket s = *(amb_socket *)state;
    const uint8_t *data;
    size_t len;
    if (amb_match(msg, "{tcp,~v,~b}", s, &data, &len) == 0 &&
        amb_tcp_send(self, s, data, len, 5000, NULL) == 0)
        return 0;
    if (amb_match(msg, "{tcp_passive,~v}", s) == 0) {
        amb_sock_opts o = {.active = 100};
        return amb_inet_setopts(self, s, &o, AMB_SOCKOPT_ACTIVE);
    }
    atomic_fetch_sub(&g_live, 1);
    amb_exit_self(self, AMB_ATOM_NORMAL);
}

static const amb_handler echo_handler = {
    .state_size = sizeof(amb_socket), .init = echo_init, .handle = echo};

typedef struct fixture {
    int ports_w, done_r, go_w;
    pid_t child;
} fixture;

static void acceptor(amb_proc *self, void *arg)
{
    amb_socket l = (amb_socket)(uintptr_t)arg;
    amb_sock_opts active = {.active = 100};
    for (;;) {
        amb_socket c;
        amb_pid pid;
        CHECK_OK(self, amb_tcp_accept(self, l, AMB_INFINITY, &c));
        CHECK_OK(self,
                 amb_spawn_handler(self, &echo_handler, (void *)(uintptr_t)c, &pid));
        CHECK_OK(self, amb_inet_controlling_process(self, c, pid));
        CHECK_OK(self, amb_inet_setopts(self, c, &active, AMB_SOCKOPT_ACTIVE));
    }
}

/* Waits for a byte on fd without blocking a scheduler: polls, yielding. */
static void wait_byte(amb_proc *self, int fd)
{
    char b;
    WAIT_UNTIL(self, read(fd, &b, 1) == 1);
}

static void idle_body(amb_proc *self, void *arg)
{
    fixture *f = arg;
    amb_sock_opts lo = {.backlog = 4096};
    amb_socket l;
    CHECK_OK(self, amb_tcp_listen(self, "127.0.0.1", 0, &lo, &l));
    amb_addr a;
    CHECK_OK(self, amb_inet_sockname(self, l, &a));
    /* The runtime is warm (the poller, a first socket): the baseline
     * measures what the connections add. */
    long rss0 = amb_test_rss_kib();
    amb_test_alloc_count before = amb_test_alloc_now();
    amb_pid acc;
    CHECK_OK(self, amb_spawn(self, acceptor, (void *)(uintptr_t)l, &acc));
    CHECK(self, write(f->ports_w, &a.port, sizeof a.port) == (ssize_t)sizeof a.port);
    wait_byte(self, f->done_r);
    WAIT_COUNT(self, &g_live, N_CONNS);
    long rss1 = amb_test_rss_kib();
    amb_test_alloc_count after = amb_test_alloc_now();
    double per_conn = (double)(rss1 - rss0) * 1024.0 / N_CONNS;
    double alloc_per_conn = (double)(after.live_bytes - before.live_bytes) / N_CONNS;
    printf("%d idle connections: RSS %ld -> %ld KiB, %.0f bytes per connection "
           "(%.0f through the allocator, the rest slabs: process blocks)\n",
           N_CONNS, rss0, rss1, per_conn, alloc_per_conn);
#if !defined(AMB_TSAN) && !defined(AMB_ASAN)
    CHECK(self, per_conn < BOUND_BYTES);
#endif
    /* The child closes them all: every handler ends. */
    char go = 1;
    CHECK(self, write(f->go_w, &go, 1) == 1);
    WAIT_UNTIL(self, atomic_load(&g_live) == 0);
    CHECK_OK(self, amb_exit(self, acc, AMB_ATOM_KILL));
    CHECK_OK(self, amb_inet_close(self, l));
}

AMB_TEST(ten_thousand_idle_connections_under_2_kib_each)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max < N_CONNS + 256) {
        printf("skipped: the fd limit (%lu) is below %d connections\n",
               (unsigned long)rl.rlim_max, N_CONNS);
        skip();
    }
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int ports[2], done[2], go[2];
    assert_int_equal(pipe(ports), 0);
    assert_int_equal(pipe2(done, O_NONBLOCK), 0);
    assert_int_equal(pipe(go), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(ports[1]);
        close(done[0]);
        close(go[1]);
        child_main(ports[0], done[1], go[0]);
    }
    close(ports[0]);
    close(done[1]);
    close(go[0]);
    fixture f = {ports[1], done[0], go[1], child};
    amb_test_cfg cfg = {.rt = {.schedulers = 2}};
    amb_test_run(&cfg, idle_body, &f);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ports[1]);
    close(done[0]);
    close(go[1]);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(ten_thousand_idle_connections_under_2_kib_each))

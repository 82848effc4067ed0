/*
 * poll.c - the runtime's poller (src/runtime/poll.h) on its own, over
 * pipes and socketpairs, with test structs standing in for tasks: an edge
 * fires the armed waiter exactly once, an edge with nobody armed is kept
 * as READY and consumed by the next arm, reset before the syscall, the
 * writer side, peer close and socket errors waking the right directions,
 * disarm before and after a fire, a second waiter refused, eviction and
 * close with a waiter armed, a FIN queued behind data setting the sticky
 * hup a short read checks, a stale generation dropped after the fd is
 * reused, the eventfd break (deduplicated) waking a blocked poller, the
 * blocking claim, and two threads ping-ponging through a poller thread for
 * thousands of round trips without a lost wake-up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amb_test.h"
#include "runtime/poll.h"

static void make_pipe(int fds[2])
{
    assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

static void make_pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
}

/* A stand-in for a task: the test only looks at which waiters fired. */
static amb__poll_waiter waiter(void *task)
{
    amb__poll_waiter w = {.task = (struct amb__task *)task, .node = NULL, .next = NULL};
    return w;
}

/* Polls (up to 5 s, by deadline, not by sleeping) until n waiters fired. */
static void wait_fired(amb__poll *p, amb__poll_list *fired, size_t n)
{
    uint64_t deadline = amb_test_deadline_ms(5000);
    while (fired->n < n) {
        int rc = amb__poll_wait(p, 100, fired);
        assert_true(rc >= 0);
        if (amb_test_now_ms() > deadline)
            fail_msg("%zu of %zu waiters fired before the deadline", fired->n, n);
    }
}

static uintptr_t slot(amb__poll_desc *pd, int dir)
{
    return atomic_load(&pd->slot[dir]);
}

AMB_TEST(an_edge_fires_the_armed_waiter_once)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    int fds[2];
    make_pipe(fds);
    amb__poll_desc *pd;
    uint32_t gen;
    assert_ok(amb__poll_open(&p, fds[0], &pd, &gen));
    assert_int_equal(amb__poll_nopen(&p), 1);

    int task;
    amb__poll_waiter w = waiter(&task);
    char c;
    amb__poll_reset(pd, AMB__POLL_READ);
    assert_int_equal(read(fds[0], &c, 1), -1);
    assert_int_equal(errno, EAGAIN);
    assert_ok(amb__poll_arm(pd, gen, AMB__POLL_READ, &w));

    amb__poll_list fired;
    amb__poll_list_init(&fired);
    assert_int_equal(amb__poll_wait(&p, 0, &fired), 0); /* nothing yet */
    assert_int_equal(write(fds[1], "x", 1), 1);
    wait_fired(&p, &fired, 1);
    assert_ptr_equal(fired.head, &w);
    assert_ptr_equal(amb__poll_list_pop(&fired)->task, (struct amb__task *)&task);
    assert_null(amb__poll_list_pop(&fired));
    assert_int_equal(slot(pd, AMB__POLL_READ), AMB__POLL_READY);
    assert_true(amb__poll_last_ms(&p) > 0);

    /* the woken task retries: reset, read, EAGAIN, arm; no edge, no fire */
    amb__poll_reset(pd, AMB__POLL_READ);
    assert_int_equal(read(fds[0], &c, 1), 1);
    assert_int_equal(read(fds[0], &c, 1), -1);
    assert_ok(amb__poll_arm(pd, gen, AMB__POLL_READ, &w));
    assert_int_equal(amb__poll_wait(&p, 0, &fired), 0);
    assert_int_equal(fired.n, 0);

    amb__poll_close(&p, pd, gen, &fired); /* still armed: close fires it */
    assert_int_equal(fired.n, 1);
    assert_int_equal(amb__poll_nopen(&p), 0);
    close(fds[0]);
    close(fds[1]);
    amb__poll_destroy(&p);
}

AMB_TEST(an_edge_with_nobody_armed_is_kept_for_the_next_arm)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    int fds[2];
    make_pipe(fds);
    amb__poll_desc *pd;
    uint32_t gen;
    assert_ok(amb__poll_open(&p, fds[0], &pd, &gen));
    amb__poll_list fired;
    amb__poll_list_init(&fired);

    /* data arrives between the task's EAGAIN and its arm */
    char c;
    amb__poll_reset(pd, AMB__POLL_READ);
    assert_int_equal(read(fds[0], &c, 1), -1);
    assert_int_equal(write(fds[1], "x", 1), 1);
    uint64_t deadline = amb_test_deadline_ms(5000);
    while (slot(pd, AMB__POLL_READ) != AMB__POLL_READY) {
        assert_int_equal(amb__poll_wait(&p, 100, &fired), 0);
        assert_true(amb_test_now_ms() < deadline);
    }
    int task;
    amb__poll_waiter w = waiter(&task);
    assert_rc(AMB_EAGAIN, amb__poll_arm(pd, gen, AMB__POLL_READ, &w)); /* retry now */
    assert_int_equal(slot(pd, AMB__POLL_READ), AMB__POLL_NIL);         /* consumed */
    assert_int_equal(read(fds[0], &c, 1), 1);

    /* an edge that the reset consumed before the syscall is not lost: the
     * syscall itself sees the data */
    assert_int_equal(write(fds[1], "y", 1), 1);
    deadline = amb_test_deadline_ms(5000);
    while (slot(pd, AMB__POLL_READ) != AMB__POLL_READY) {
        assert_int_equal(amb__poll_wait(&p, 100, &fired), 0);
        assert_true(amb_test_now_ms() < deadline);
    }
    amb__poll_reset(pd, AMB__POLL_READ);
    assert_int_equal(slot(pd, AMB__POLL_READ), AMB__POLL_NIL);
    assert_int_equal(read(fds[0], &c, 1), 1);
    assert_int_equal(c, 'y');

    amb__poll_close(&p, pd, gen, &fired);
    assert_int_equal(fired.n, 0);
    close(fds[0]);
    close(fds[1]);
    amb__poll_destroy(&p);
}

AMB_TEST(the_writer_is_woken_when_room_frees_up)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    int fds[2];
    make_pair(fds);
    amb__poll_desc *pd;
    uint32_t gen;
    assert_ok(amb__poll_open(&p, fds[0], &pd, &gen));
    amb__poll_list fired;
    amb__poll_list_init(&fired);

    static char buf[1 << 16];
    memset(buf, 'z', sizeof buf);
    amb__poll_reset(pd, AMB__POLL_WRITE);
    while (write(fds[0], buf, sizeof buf) > 0)
        ; /* fill the socket until the kernel says EAGAIN */
    assert_int_equal(errno, EAGAIN);
    int task;
    amb__poll_waiter w = waiter(&task);
    int rc = amb__poll_arm(pd, gen, AMB__POLL_WRITE, &w);
    if (rc == AMB_EAGAIN) /* the first edge of a new socket (writable) */
        rc = amb__poll_arm(pd, gen, AMB__POLL_WRITE, &w);
    assert_ok(rc);

    while (read(fds[1], buf, sizeof buf) > 0)
        ; /* the peer drains */
    wait_fired(&p, &fired, 1);
    assert_ptr_equal(amb__poll_list_pop(&fired), &w);
    amb__poll_close(&p, pd, gen, &fired);
    close(fds[0]);
    close(fds[1]);
    amb__poll_destroy(&p);
}

AMB_TEST(peer_close_wakes_the_reader_and_an_error_wakes_both)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    amb__poll_list fired;
    amb__poll_list_init(&fired);

    int fds[2];
    make_pair(fds);
    amb__poll_desc *pd;
    uint32_t gen;
    assert_ok(amb__poll_open(&p, fds[0], &pd, &gen));
    int task;
    amb__poll_waiter r = waiter(&task);
    assert_ok(amb__poll_arm(pd, gen, AMB__POLL_READ, &r));
    close(fds[1]); /* EPOLLRDHUP | EPOLLIN: the read will say 0 */
    wait_fired(&p, &fired, 1);
    assert_ptr_equal(amb__poll_list_pop(&fired), &r);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 0);
    amb__poll_close(&p, pd, gen, &fired);
    close(fds[0]);

    /* a connection refused on loopback: EPOLLERR | EPOLLHUP, both sides */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&in, sizeof in), 0);
    socklen_t sl = sizeof in;
    assert_int_equal(getsockname(l, (struct sockaddr *)&in, &sl), 0);
    close(l); /* nobody listens there now */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int crc = connect(s, (struct sockaddr *)&in, sizeof in);
    int cerr = errno;
    assert_true(crc == -1 && (cerr == EINPROGRESS || cerr == ECONNREFUSED));
    assert_ok(amb__poll_open(&p, s, &pd, &gen));
    amb__poll_waiter rd = waiter(&task), wr = waiter(&task);
    assert_ok(amb__poll_arm(pd, gen, AMB__POLL_READ, &rd));
    assert_ok(amb__poll_arm(pd, gen, AMB__POLL_WRITE, &wr));
    wait_fired(&p, &fired, 2);
    amb__poll_waiter *a = amb__poll_list_pop(&fired), *b = amb__poll_list_pop(&fired);
    assert_true((a == &rd && b == &wr) || (a == &wr && b == &rd));
    if (cerr == EINPROGRESS) { /* the refusal came later: the socket holds it */
        int err = 0;
        socklen_t el = sizeof err;
        assert_int_equal(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el), 0);
        assert_int_equal(err, ECONNREFUSED);
    }
    amb__poll_close(&p, pd, gen, &fired);
    close(s);
    amb__poll_destroy(&p);
}

/* Data queued ahead of a FIN: a read returns the data and says nothing of
 * the FIN, whose edge the reset before it consumed. The descriptor's hup
 * tells the reader that a short read must read again (poll.h). */
AMB_TEST(a_fin_behind_data_sets_hup_which_a_short_read_checks)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    int fds[2];
    make_pair(fds);
    amb__poll_desc *pd;
    uint32_t gen;
    assert_ok(amb__poll_open(&p, fds[0], &pd, &gen));
    assert_false(amb__poll_hup(pd));
    assert_int_equal(write(fds[1], "tail", 4), 4);
    assert_int_equal(amb__poll_wait(&p, 1000, &fired), 0); /* READY, no waiter */
    assert_false(amb__poll_hup(pd));
    close(fds[1]);
    uint64_t deadline = amb_test_deadline_ms(5000);
    while (!amb__poll_hup(pd) && amb_test_now_ms() < deadline)
        assert_true(amb__poll_wait(&p, 100, &fired) >= 0);
    assert_true(amb__poll_hup(pd));
    /* The reader: reset, a short read of the data, and hup says "again". */
    amb__poll_reset(pd, AMB__POLL_READ);
    char buf[64];
    assert_int_equal(read(fds[0], buf, sizeof buf), 4);
    assert_true(amb__poll_hup(pd));
    assert_int_equal(read(fds[0], buf, sizeof buf), 0);
    /* An injected hup (the deterministic mode's way) does the same. */
    amb__poll_close(&p, pd, gen, &fired);
    int pfd[2];
    make_pipe(pfd);
    assert_ok(amb__poll_open(&p, pfd[0], &pd, &gen));
    assert_false(amb__poll_hup(pd)); /* a reused descriptor starts clean */
    amb__poll_inject(&p, amb__poll_token(pd, gen), AMB__POLL_HUP, &fired);
    assert_true(amb__poll_hup(pd));
    amb__poll_close(&p, pd, gen, &fired);
    close(pfd[0]);
    close(pfd[1]);
    close(fds[0]);
    amb__poll_destroy(&p);
}

AMB_TEST(disarm_takes_back_a_waiter_that_has_not_fired)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    int fds[2];
    make_pipe(fds);
    amb__poll_desc *pd;
    uint32_t gen;
    assert_ok(amb__poll_open(&p, fds[0], &pd, &gen));
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    int task;
    amb__poll_waiter w = waiter(&task), other = waiter(&task);

    assert_ok(amb__poll_arm(pd, gen, AMB__POLL_READ, &w));
    assert_rc(AMB_ESTATE, amb__poll_arm(pd, gen, AMB__POLL_READ, &other));
    assert_true(amb__poll_disarm(pd, AMB__POLL_READ, &w));  /* a timeout came first */
    assert_false(amb__poll_disarm(pd, AMB__POLL_READ, &w)); /* not armed any more */
    assert_int_equal(write(fds[1], "x", 1), 1);
    uint64_t deadline = amb_test_deadline_ms(5000);
    while (slot(pd, AMB__POLL_READ) != AMB__POLL_READY) {
        assert_int_equal(amb__poll_wait(&p, 100, &fired), 0); /* nobody fired */
        assert_true(amb_test_now_ms() < deadline);
    }

    /* fired, then the timeout: disarm says so, the fire is the one to take */
    char c;
    amb__poll_reset(pd, AMB__POLL_READ);
    assert_int_equal(read(fds[0], &c, 1), 1);
    assert_ok(amb__poll_arm(pd, gen, AMB__POLL_READ, &w));
    assert_int_equal(write(fds[1], "y", 1), 1);
    wait_fired(&p, &fired, 1);
    assert_false(amb__poll_disarm(pd, AMB__POLL_READ, &w));
    assert_ptr_equal(amb__poll_list_pop(&fired), &w);

    amb__poll_close(&p, pd, gen, &fired);
    close(fds[0]);
    close(fds[1]);
    amb__poll_destroy(&p);
}

AMB_TEST(evict_and_close_fire_the_armed_waiters)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    int fds[2];
    make_pair(fds);
    amb__poll_desc *pd;
    uint32_t gen;
    assert_ok(amb__poll_open(&p, fds[0], &pd, &gen));
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    int task;
    amb__poll_waiter r = waiter(&task), w = waiter(&task);

    /* a writer waits (the send buffer was full) and a reader waits */
    assert_ok(amb__poll_arm(pd, gen, AMB__POLL_READ, &r));
    assert_ok(amb__poll_arm(pd, gen, AMB__POLL_WRITE, &w));
    amb__poll_evict(pd, &fired); /* the owner closes the socket */
    assert_int_equal(fired.n, 2);
    assert_ptr_equal(amb__poll_list_pop(&fired), &r);
    assert_ptr_equal(amb__poll_list_pop(&fired), &w);
    assert_int_equal(slot(pd, AMB__POLL_READ), AMB__POLL_CLOSED);
    assert_rc(AMB_ECLOSED, amb__poll_arm(pd, gen, AMB__POLL_READ, &r));
    assert_int_equal(write(fds[1], "x", 1), 1); /* events change nothing now */
    assert_int_equal(amb__poll_wait(&p, 50, &fired), 0);
    assert_int_equal(slot(pd, AMB__POLL_READ), AMB__POLL_CLOSED);
    amb__poll_evict(pd, &fired); /* idempotent */
    assert_int_equal(fired.n, 0);

    amb__poll_close(&p, pd, gen, &fired); /* the last reference */
    assert_int_equal(fired.n, 0);
    assert_rc(AMB_ECLOSED, amb__poll_arm(pd, gen, AMB__POLL_READ, &r));
    amb__poll_close(&p, pd, gen, &fired); /* a stale close does nothing */
    assert_int_equal(amb__poll_nopen(&p), 0);
    close(fds[0]);
    close(fds[1]);
    amb__poll_destroy(&p);
}

AMB_TEST(a_stale_generation_is_dropped_after_the_descriptor_is_reused)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    amb__poll_desc *pa, *pb;
    uint32_t ga, gb;
    assert_ok(amb__poll_open(&p, a[0], &pa, &ga));
    uint64_t stale = amb__poll_token(pa, ga); /* an event read, not yet handled */
    amb__poll_close(&p, pa, ga, &fired);
    close(a[0]);
    assert_ok(amb__poll_open(&p, b[0], &pb, &gb));
    assert_ptr_equal(pb, pa);     /* the same descriptor, reused ... */
    assert_int_not_equal(gb, ga); /* ... under a new generation */
    int task;
    amb__poll_waiter w = waiter(&task);
    assert_ok(amb__poll_arm(pb, gb, AMB__POLL_READ, &w));

    /* the old incarnation's event arrives now: dropped, w stays armed */
    assert_int_equal(amb__poll_inject(&p, stale, 1u << AMB__POLL_READ, &fired), 0);
    assert_int_equal(fired.n, 0);
    assert_int_equal(slot(pb, AMB__POLL_READ), (uintptr_t)&w);
    /* a holder of the old generation cannot arm on the new fd */
    amb__poll_waiter old = waiter(&task);
    assert_rc(AMB_ECLOSED, amb__poll_arm(pb, ga, AMB__POLL_WRITE, &old));
    /* a token for an index the table never reached is dropped too */
    assert_int_equal(amb__poll_inject(&p, (uint64_t)gb << 32 | 999999u, 3u, &fired), 0);
    /* the new incarnation's own event fires w */
    assert_int_equal(
        amb__poll_inject(&p, amb__poll_token(pb, gb), 1u << AMB__POLL_READ, &fired), 1);
    assert_ptr_equal(amb__poll_list_pop(&fired), &w);

    amb__poll_close(&p, pb, gb, &fired);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    amb__poll_destroy(&p);
}

AMB_TEST(regular_files_and_bad_fds_are_refused)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    char path[64];
    int fd = amb_test_tmpfile("amb-poll-", path, sizeof path);
    assert_true(fd >= 0);
    unlink(path);
    amb__poll_desc *pd;
    uint32_t gen;
    assert_rc(AMB_ENOTSUP, amb__poll_open(&p, fd, &pd, &gen));
    close(fd);
    assert_rc(AMB_EBADARG, amb__poll_open(&p, fd, &pd, &gen)); /* closed now */
    assert_rc(AMB_EBADARG, amb__poll_open(&p, -1, &pd, &gen));
    assert_int_equal(amb__poll_nopen(&p), 0);
    int fds[2];
    make_pipe(fds);
    assert_ok(amb__poll_open(&p, fds[0], &pd, &gen)); /* the failed ones freed theirs */
    assert_int_equal(pd->idx, 0);
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    amb__poll_close(&p, pd, gen, &fired);
    close(fds[0]);
    close(fds[1]);
    amb__poll_destroy(&p);
}

typedef struct breaker {
    amb__poll *p;
    atomic_int state; /* 1: about to block, 2: returned */
    int rc;
} breaker;

static void *block_in_poll(void *arg)
{
    breaker *b = arg;
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    assert_true(amb__poll_claim(b->p));
    atomic_store(&b->state, 1);
    b->rc = amb__poll_wait(b->p, -1, &fired); /* forever, unless broken */
    amb__poll_unclaim(b->p);
    atomic_store(&b->state, 2);
    return NULL;
}

AMB_TEST(break_wakes_a_blocked_poller_and_is_deduplicated)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    breaker b = {.p = &p};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, block_in_poll, &b), 0);
    uint64_t deadline = amb_test_deadline_ms(5000);
    while (atomic_load(&b.state) != 1)
        assert_true(amb_test_now_ms() < deadline);
    assert_true(amb__poll_blocked(&p));
    assert_false(amb__poll_claim(&p)); /* one blocker at a time */
    amb__poll_break(&p);
    deadline = amb_test_deadline_ms(5000);
    while (atomic_load(&b.state) != 2)
        if (amb_test_now_ms() > deadline)
            fail_msg("the break did not wake the poller");
    pthread_join(t, NULL);
    assert_int_equal(b.rc, 0);
    assert_false(amb__poll_blocked(&p));
    assert_false(atomic_load(&p.break_pending));
    uint64_t v;
    assert_int_equal(read(p.evfd, &v, sizeof v), -1); /* read back by the poller */
    assert_int_equal(errno, EAGAIN);

    /* a break with nobody blocked is taken by the next wait, which returns */
    amb__poll_break(&p);
    amb__poll_break(&p);
    assert_int_equal(read(p.evfd, &v, sizeof v), (ssize_t)sizeof v);
    assert_int_equal(v, 1);                                           /* deduplicated */
    assert_int_equal(write(p.evfd, &v, sizeof v), (ssize_t)sizeof v); /* put it back */
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    assert_int_equal(amb__poll_wait(&p, -1, &fired), 0);
    assert_false(atomic_load(&p.break_pending));
    amb__poll_destroy(&p);
}

/* Two threads ping-pong one byte over a socketpair, each blocking reads
 * through the poller (reset, read, arm, sleep on a semaphore); a third
 * thread polls and posts the semaphores of fired waiters. A lost wake-up
 * hangs a side: the semaphore wait has a deadline. */
enum { ROUNDS = 5000 };

typedef struct side {
    amb__poll *p;
    amb__poll_desc *pd;
    uint32_t gen;
    int fd;
    sem_t sem;
    amb__poll_waiter w;
    bool serve; /* the echoing side */
} side;

static void read_one(side *s)
{
    for (;;) {
        char c;
        amb__poll_reset(s->pd, AMB__POLL_READ);
        ssize_t n = read(s->fd, &c, 1);
        if (n == 1)
            return;
        assert_true(n < 0 && errno == EAGAIN);
        int rc = amb__poll_arm(s->pd, s->gen, AMB__POLL_READ, &s->w);
        if (rc == AMB_EAGAIN)
            continue;
        assert_int_equal(rc, 0);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 10;
        if (sem_timedwait(&s->sem, &ts) != 0)
            fail_msg("lost wake-up: no fire within 10 s");
    }
}

static void *play(void *arg)
{
    side *s = arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (!s->serve)
            assert_int_equal(write(s->fd, "p", 1), 1);
        read_one(s);
        if (s->serve)
            assert_int_equal(write(s->fd, "q", 1), 1);
    }
    return NULL;
}

static atomic_bool stop_polling;

static void *poll_loop(void *arg)
{
    amb__poll *p = arg;
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    while (!atomic_load(&stop_polling)) {
        assert_true(amb__poll_wait(p, -1, &fired) >= 0);
        amb__poll_waiter *w;
        while ((w = amb__poll_list_pop(&fired)) != NULL)
            sem_post(&((side *)(void *)w->task)->sem); /* "make it runnable" */
    }
    return NULL;
}

AMB_TEST(ping_pong_through_a_poller_thread_loses_no_wake_up)
{
    amb__poll p;
    assert_ok(amb__poll_init(&p));
    int fds[2];
    make_pair(fds);
    side s[2];
    for (int i = 0; i < 2; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].p = &p;
        s[i].fd = fds[i];
        s[i].serve = i == 1;
        assert_int_equal(sem_init(&s[i].sem, 0, 0), 0);
        s[i].w = waiter(&s[i]);
        assert_ok(amb__poll_open(&p, fds[i], &s[i].pd, &s[i].gen));
    }
    pthread_t poller, t[2];
    atomic_store(&stop_polling, false);
    assert_int_equal(pthread_create(&poller, NULL, poll_loop, &p), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, play, &s[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stop_polling, true);
    amb__poll_break(&p);
    pthread_join(poller, NULL);
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    for (int i = 0; i < 2; i++) {
        amb__poll_close(&p, s[i].pd, s[i].gen, &fired);
        sem_destroy(&s[i].sem);
        close(fds[i]);
    }
    assert_int_equal(fired.n, 0); /* nobody was left waiting */
    amb__poll_destroy(&p);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(an_edge_fires_the_armed_waiter_once),
    AMB_TEST_ENTRY(an_edge_with_nobody_armed_is_kept_for_the_next_arm),
    AMB_TEST_ENTRY(the_writer_is_woken_when_room_frees_up),
    AMB_TEST_ENTRY(peer_close_wakes_the_reader_and_an_error_wakes_both),
    AMB_TEST_ENTRY(a_fin_behind_data_sets_hup_which_a_short_read_checks),
    AMB_TEST_ENTRY(disarm_takes_back_a_waiter_that_has_not_fired),
    AMB_TEST_ENTRY(evict_and_close_fire_the_armed_waiters),
    AMB_TEST_ENTRY(a_stale_generation_is_dropped_after_the_descriptor_is_reused),
    AMB_TEST_ENTRY(regular_files_and_bad_fds_are_refused),
    AMB_TEST_ENTRY(break_wakes_a_blocked_poller_and_is_deduplicated),
    AMB_TEST_ENTRY(ping_pong_through_a_poller_thread_loses_no_wake_up))

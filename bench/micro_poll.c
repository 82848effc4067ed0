/*
 * bench/micro_poll.c - what the poller of src/runtime/poll.h costs per
 * event, beside a plain level-triggered epoll loop, on one thread.
 *
 *   micro_poll [PAIRS [ROUNDS [SIZE [CASE]]]]
 *
 * PAIRS socketpairs (AF_UNIX, non-blocking); one end is the "server", the
 * other the "client". Every round, each client has one SIZE-byte request in
 * flight; the server loop waits for readiness, reads the request and writes
 * it back; then the client half reads every echo and writes the next
 * request. Client work is the same in every case, so the differences are
 * the server's: how it learns of readiness and what it does per event.
 * Cases, each printed as one `RESULT bench=... impl=c ...` line with ns of
 * thread CPU time per round trip (both halves):
 *   poll.epoll_lt     epoll_wait (level-triggered) -> read -> write: the
 *                     C epoll baseline of peer-bench/echo
 *   poll.amb          amb__poll_wait -> deliver fired waiters -> reset,
 *                     read, write, then arm directly after the short read
 *                     (poll.h: no read to see EAGAIN)
 *   poll.amb_eagain   the same, but reading again until EAGAIN before
 *                     arming, as a server that trusts no short read would
 * Defaults: PAIRS = 100, ROUNDS = 20,000 (requests per pair), SIZE = 64,
 * every case; CASE (epoll_lt, amb or amb_eagain) runs one, e.g. under
 * `valgrind --tool=callgrind` for user-space instructions per trip, which
 * do not depend on the machine's load the way CPU time does here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "micro_clock.h"
#include "runtime/poll.h"

typedef struct pair {
    int srv, cli;
    amb__poll_desc *pd;
    uint32_t gen;
    amb__poll_waiter w;
    int echoed; /* the server wrote this round's echo */
} pair;

static size_t npairs, msg_size;
static pair *pairs;
static char *buf;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void setup(void)
{
    pairs = calloc(npairs, sizeof *pairs);
    buf = malloc(65536);
    if (pairs == NULL || buf == NULL)
        die("malloc");
    memset(buf, 'r', 65536);
    for (size_t i = 0; i < npairs; i++) {
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0)
            die("socketpair");
        pairs[i].srv = fds[0];
        pairs[i].cli = fds[1];
    }
}

static void teardown(void)
{
    for (size_t i = 0; i < npairs; i++) {
        close(pairs[i].srv);
        close(pairs[i].cli);
    }
    free(pairs);
    free(buf);
}

/* The client half: read each echo, send the next request. */
static void clients(void)
{
    for (size_t i = 0; i < npairs; i++) {
        if (!pairs[i].echoed)
            continue;
        pairs[i].echoed = 0;
        if (read(pairs[i].cli, buf, msg_size) != (ssize_t)msg_size)
            die("client read");
        if (write(pairs[i].cli, buf, msg_size) != (ssize_t)msg_size)
            die("client write");
    }
}

static void start(void)
{
    for (size_t i = 0; i < npairs; i++)
        if (write(pairs[i].cli, buf, msg_size) != (ssize_t)msg_size)
            die("first write");
}

/* The server's work for one readable pair. */
static void serve(pair *p)
{
    ssize_t n = read(p->srv, buf, 65536);
    if (n != (ssize_t)msg_size)
        die("server read");
    if (write(p->srv, buf, (size_t)n) != n)
        die("server write");
    p->echoed = 1;
}

static void report(const char *name, uint64_t ns, uint64_t trips)
{
    printf("RESULT bench=%s impl=c pairs=%zu size=%zu trips=%llu ns_per_trip=%.1f\n",
           name, npairs, msg_size, (unsigned long long)trips, (double)ns / (double)trips);
}

static void bench_epoll_lt(uint64_t rounds)
{
    setup();
    int ep = epoll_create1(0);
    for (size_t i = 0; i < npairs; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, pairs[i].srv, &ev) != 0)
            die("epoll_ctl");
    }
    start();
    uint64_t want = rounds * npairs, done = 0, t0 = cpu_ns();
    struct epoll_event ev[128];
    while (done < want) {
        int n = epoll_wait(ep, ev, 128, -1);
        for (int i = 0; i < n; i++)
            serve(&pairs[ev[i].data.u64]);
        done += (uint64_t)n;
        clients();
    }
    report("poll.epoll_lt", cpu_ns() - t0, done);
    close(ep);
    teardown();
}

static void arm(amb__poll *p, pair *q)
{
    int rc;
    while ((rc = amb__poll_arm(q->pd, q->gen, AMB__POLL_READ, &q->w)) == AMB_EAGAIN) {
        /* an edge came between the read and the arm: read again */
        ssize_t n = read(q->srv, buf, 65536);
        if (n > 0)
            die("unexpected data");
    }
    (void)p;
}

static void bench_amb(uint64_t rounds, bool until_eagain)
{
    setup();
    amb__poll p;
    if (amb__poll_init(&p) != 0)
        die("amb__poll_init");
    for (size_t i = 0; i < npairs; i++) {
        if (amb__poll_open(&p, pairs[i].srv, &pairs[i].pd, &pairs[i].gen) != 0)
            die("amb__poll_open");
        pairs[i].w.task = (struct amb__task *)&pairs[i]; /* the "task" */
        amb__poll_reset(pairs[i].pd, AMB__POLL_READ);
        arm(&p, &pairs[i]);
    }
    start();
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    uint64_t want = rounds * npairs, done = 0, t0 = cpu_ns();
    while (done < want) {
        if (amb__poll_wait(&p, -1, &fired) < 0)
            die("amb__poll_wait");
        amb__poll_waiter *w;
        while ((w = amb__poll_list_pop(&fired)) != NULL) {
            pair *q = (pair *)(void *)w->task; /* "delivered, and it runs" */
            amb__poll_reset(q->pd, AMB__POLL_READ);
            serve(q);
            if (until_eagain && read(q->srv, buf, 65536) != -1)
                die("more than one request");
            arm(&p, q);
            done++;
        }
        clients();
    }
    report(until_eagain ? "poll.amb_eagain" : "poll.amb", cpu_ns() - t0, done);
    amb__poll_list dead;
    amb__poll_list_init(&dead);
    for (size_t i = 0; i < npairs; i++)
        amb__poll_close(&p, pairs[i].pd, pairs[i].gen, &dead);
    amb__poll_destroy(&p);
    teardown();
}

int main(int argc, char **argv)
{
    npairs = argc > 1 ? strtoul(argv[1], NULL, 10) : 100;
    uint64_t rounds = argc > 2 ? strtoull(argv[2], NULL, 10) : 20000;
    msg_size = argc > 3 ? strtoul(argv[3], NULL, 10) : 64;
    const char *which = argc > 4 ? argv[4] : "all";
    if (npairs == 0 || rounds == 0 || msg_size == 0 || msg_size > 65536) {
        fprintf(stderr, "usage: micro_poll [PAIRS [ROUNDS [SIZE [CASE]]]]\n");
        return 2;
    }
    bool all = strcmp(which, "all") == 0;
    if (all || strcmp(which, "epoll_lt") == 0)
        bench_epoll_lt(rounds);
    if (all || strcmp(which, "amb") == 0)
        bench_amb(rounds, false);
    if (all || strcmp(which, "amb_eagain") == 0)
        bench_amb(rounds, true);
    return 0;
}

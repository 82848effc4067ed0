/*
 * bench/micro_mpscq.c - micro benchmark of the mailbox queue
 * (src/runtime/mpscq.h).
 *
 *   micro_mpscq [OPS [PER_PRODUCER]]
 *
 * Cases, each printed as one `RESULT bench=... impl=c ...` line:
 *   mpscq.pushpop    push one node, pop it (the queue drains to empty every
 *                    time, so every pop takes the last-node swap): ns/op
 *   mpscq.batch64    push 64, pop 64: ns per push+pop pair
 *   mpscq.pingpong   the scheduler's round trip on one thread through two
 *                    queues, parking protocol included (push, pop, empty
 *                    pop, mark_empty, twice): ns per round trip
 *   mpscq.m2o        4 producer threads x PER_PRODUCER pushes into one queue,
 *                    consumer thread pops (yielding when empty): M msgs/s
 *   mpscq.m2o_park   same, but the consumer parks on a condition variable
 *                    whenever the queue is empty: M msgs/s and parks
 *   mpscq.m2o_2t     the 4 senders take turns on ONE producer thread (a
 *                    burst of 1,000 each, as a scheduler runs processes for
 *                    a reduction budget), so two threads on two cores: the
 *                    shape of the m2o peer benchmark with 2 schedulers
 * Nodes are allocated and touched before timing, so page faults are not
 * counted. The single-thread cases are timed in thread CPU time (time spent
 * descheduled on a shared machine does not count), the threaded ones in
 * wall time. Defaults: OPS = 10,000,000, PER_PRODUCER = 1,000,000.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "micro_clock.h"
#include "runtime/mpscq.h"

#define NPRODUCERS 4

struct msg {
    amb__mpscq_node node;
    uint64_t payload;
};

/* Keeps the compiler from discarding work whose result is otherwise unused. */
static volatile uint64_t sink;

static void bench_pushpop(uint64_t ops)
{
    amb__mpscq q;
    struct msg m = {0};
    uint64_t sum = 0;

    amb__mpscq_init(&q, false);
    uint64_t t0 = cpu_ns();
    for (uint64_t i = 0; i < ops; i++) {
        m.payload = i;
        amb__mpscq_push(&q, &m.node);
        sum += ((struct msg *)amb__mpscq_pop(&q))->payload;
    }
    uint64_t dt = cpu_ns() - t0;
    sink = sum;
    printf("RESULT bench=mpscq.pushpop impl=c ops=%llu ns_per_op=%.2f\n",
           (unsigned long long)ops, (double)dt / (double)ops);
}

static void bench_batch(uint64_t ops)
{
    enum { B = 64 };
    static struct msg m[B];
    amb__mpscq q;
    uint64_t sum = 0;
    uint64_t rounds = ops / B;

    amb__mpscq_init(&q, false);
    uint64_t t0 = cpu_ns();
    for (uint64_t r = 0; r < rounds; r++) {
        for (int i = 0; i < B; i++)
            amb__mpscq_push(&q, &m[i].node);
        for (int i = 0; i < B; i++)
            sum += ((struct msg *)amb__mpscq_pop(&q))->payload;
    }
    uint64_t dt = cpu_ns() - t0;
    sink = sum;
    printf("RESULT bench=mpscq.batch64 impl=c ops=%llu ns_per_op=%.2f\n",
           (unsigned long long)(rounds * B), (double)dt / (double)(rounds * B));
}

/* Two "processes" on one thread, as a scheduler runs a ping-pong: each
 * receive drains its queue and parks it, and each send finds the peer
 * parked and would make it runnable. */
static void bench_pingpong(uint64_t rounds)
{
    amb__mpscq qa, qb;
    struct msg ping = {0}, pong = {0};
    uint64_t wakes = 0;

    amb__mpscq_init(&qa, true);
    amb__mpscq_init(&qb, true);
    uint64_t t0 = cpu_ns();
    for (uint64_t i = 0; i < rounds; i++) {
        wakes += amb__mpscq_push(&qb, &ping.node); /* a sends ping */
        amb__mpscq_node *n = amb__mpscq_pop(&qb);  /* b receives it */
        wakes += amb__mpscq_push(&qa, &pong.node); /* b replies */
        if (amb__mpscq_pop(&qb) == NULL)           /* b finds nothing more */
            amb__mpscq_mark_empty(&qb);            /* and parks */
        n = amb__mpscq_pop(&qa);                   /* a receives the reply */
        if (amb__mpscq_pop(&qa) == NULL)
            amb__mpscq_mark_empty(&qa);
        sink += (uintptr_t)n;
    }
    uint64_t dt = cpu_ns() - t0;
    if (wakes != 2 * rounds)
        fprintf(stderr, "pingpong: %llu wake-ups for %llu round trips\n",
                (unsigned long long)wakes, (unsigned long long)rounds);
    printf("RESULT bench=mpscq.pingpong impl=c rounds=%llu ns_per_round_trip=%.2f\n",
           (unsigned long long)rounds, (double)dt / (double)rounds);
}

/* ---- many to one ---- */

struct m2o {
    amb__mpscq q;
    struct msg *msgs;
    uint64_t per;
    atomic_int go;
    bool parking;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int token;
};

struct prod {
    struct m2o *s;
    uint64_t id;
    bool all; /* one thread plays all senders in turns */
};

static void wake(struct m2o *s)
{
    pthread_mutex_lock(&s->mu);
    s->token = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *producer(void *argp)
{
    struct prod *p = argp;
    struct m2o *s = p->s;
    struct msg *mine = s->msgs + p->id * s->per;

    /* acquire: pairs with the release that opens the gate. */
    while (!atomic_load_explicit(&s->go, memory_order_acquire))
        sched_yield();
    if (p->all) {
        enum { TURN = 1000 };
        for (uint64_t base = 0; base < s->per; base += TURN) {
            uint64_t end = base + TURN < s->per ? base + TURN : s->per;
            for (uint64_t id = 0; id < NPRODUCERS; id++) {
                struct msg *theirs = s->msgs + id * s->per;
                for (uint64_t i = base; i < end; i++) {
                    theirs[i].payload = i;
                    if (amb__mpscq_push(&s->q, &theirs[i].node))
                        wake(s);
                }
            }
        }
        return NULL;
    }
    for (uint64_t i = 0; i < s->per; i++) {
        mine[i].payload = i;
        if (amb__mpscq_push(&s->q, &mine[i].node))
            wake(s);
    }
    return NULL;
}

static void bench_m2o(uint64_t per, bool parking, bool two_threads)
{
    static struct m2o s;
    struct prod p[NPRODUCERS];
    pthread_t th[NPRODUCERS];
    uint64_t total = per * NPRODUCERS, got = 0, sum = 0, parks = 0;

    memset(&s, 0, sizeof s);
    amb__mpscq_init(&s.q, false);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    s.per = per;
    s.parking = parking;
    s.msgs = amb__malloc(total * sizeof *s.msgs);
    if (s.msgs == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memset(s.msgs, 0, total * sizeof *s.msgs); /* first touch outside the timing */

    int nthreads = two_threads ? 1 : NPRODUCERS;
    for (int i = 0; i < nthreads; i++) {
        p[i] = (struct prod){.s = &s, .id = (uint64_t)i, .all = two_threads};
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    uint64_t t0 = now_ns();
    /* release: publishes the initialised queue and nodes. */
    atomic_store_explicit(&s.go, 1, memory_order_release);
    unsigned idle = 0;
    while (got < total) {
        amb__mpscq_node *n = amb__mpscq_pop(&s.q);
        if (n != NULL) {
            sum += ((struct msg *)n)->payload;
            got++;
            idle = 0;
            continue;
        }
        if (parking && amb__mpscq_mark_empty(&s.q)) {
            parks++;
            pthread_mutex_lock(&s.mu);
            while (!s.token)
                pthread_cond_wait(&s.cv, &s.mu);
            s.token = 0;
            pthread_mutex_unlock(&s.mu);
        } else if (++idle > 64) {
            sched_yield();
        }
    }
    uint64_t dt = now_ns() - t0;
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    sink = sum;
    printf("RESULT bench=%s impl=c senders=%d per_sender=%llu mmsgs_per_s=%.2f "
           "ns_per_msg=%.2f parks=%llu\n",
           two_threads ? "mpscq.m2o_2t"
           : parking   ? "mpscq.m2o_park"
                       : "mpscq.m2o",
           NPRODUCERS, (unsigned long long)per, (double)total * 1e3 / (double)dt,
           (double)dt / (double)total, (unsigned long long)parks);
    amb__free(s.msgs);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
}

int main(int argc, char **argv)
{
    uint64_t ops = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000u;
    uint64_t per = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000u;

    if (ops < 64 || per == 0) {
        fprintf(stderr, "usage: %s [OPS >= 64 [PER_PRODUCER > 0]]\n", argv[0]);
        return 2;
    }
    bench_pushpop(ops);
    bench_batch(ops);
    bench_pingpong(ops / 2);
    bench_m2o(per, false, false);
    bench_m2o(per, true, false);
    bench_m2o(per, true, true);
    return 0;
}

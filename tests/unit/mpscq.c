/*
 * tests/unit/mpscq.c - the intrusive MPSC queue and its parked-bit protocol
 * (src/runtime/mpscq.h).
 *
 * What is proved: FIFO order on one thread; per-producer FIFO order and no
 * loss or duplication with four producers; that exactly one pusher learns
 * of each empty -> non-empty transition while four race for it; and that a
 * consumer which parks whenever its queue is empty never loses a message
 * and never sleeps forever (every wait has a deadline); and that a closed
 * queue is taken over by the one pusher that finds it closed, so every
 * node pushed into it is popped exactly once, by its pushers. Threads never call
 * cmocka: they record what they saw and the test thread asserts after
 * joining them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "amb_test.h"
#include "internal.h"
#include "runtime/mpscq.h"

/* A message: the link first, so a node pointer is a message pointer. */
struct msg {
    amb__mpscq_node node;
    uint32_t producer;
    uint32_t seq;
};

#define NPRODUCERS 4

/* ThreadSanitizer runs these loops 5-15x slower; fewer operations still
 * cover every interleaving class the checks look for. */
#ifdef AMB_TSAN
#define SCALE_DOWN 4
#else
#define SCALE_DOWN 1
#endif

#define DEADLINE_MS 60000

static struct msg *msg_of(amb__mpscq_node *n)
{
    return (struct msg *)n;
}

/* ---- a parking spot: the consumer sleeps here, a producer wakes it ---- */

/* tokens counts wake-ups not yet consumed. The protocol promises at most one
 * per park, so a second token while one is pending is a double wake-up. */
struct parker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int tokens;
    int double_wakeups;
    long wakeups;
};

static void parker_init(struct parker *p)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&p->mu, NULL);
    p->tokens = 0;
    p->double_wakeups = 0;
    p->wakeups = 0;
}

static void parker_destroy(struct parker *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

static void unpark(struct parker *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->tokens != 0)
        p->double_wakeups++;
    p->tokens++;
    p->wakeups++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Waits for one token until the absolute CLOCK_MONOTONIC deadline (ms).
 * Returns false when the deadline passed: a lost wake-up. */
static bool park(struct parker *p, uint64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    bool ok = true;

    pthread_mutex_lock(&p->mu);
    while (p->tokens == 0) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) != 0 && p->tokens == 0) {
            ok = false;
            break;
        }
    }
    if (ok)
        p->tokens--;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

/* ---- single thread ---- */

AMB_TEST(mpscq_single_thread_fifo)
{
    enum { N = 1000 };
    static struct msg m[N];
    amb__mpscq q;

    amb__mpscq_init(&q, false);
    assert_null(amb__mpscq_pop(&q));
    assert_true(amb__mpscq_is_empty(&q));

    /* Fill, then drain: strict FIFO, and the queue is empty after. */
    for (uint32_t i = 0; i < N; i++) {
        m[i].seq = i;
        assert_false(amb__mpscq_push(&q, &m[i].node));
        assert_false(amb__mpscq_is_empty(&q));
    }
    for (uint32_t i = 0; i < N; i++) {
        amb__mpscq_node *n = amb__mpscq_pop(&q);
        assert_non_null(n);
        assert_ptr_equal(n, &m[i].node);
        assert_int_equal(msg_of(n)->seq, i);
    }
    assert_null(amb__mpscq_pop(&q));
    assert_true(amb__mpscq_is_empty(&q));

    /* Interleaved: push two, pop one, so the queue drains through the
     * one-node case (the last-node swap) at every step of the second half. */
    uint32_t next_in = 0, next_out = 0;
    while (next_out < N) {
        for (int k = 0; k < 2 && next_in < N; k++)
            amb__mpscq_push(&q, &m[next_in++].node);
        amb__mpscq_node *n = amb__mpscq_pop(&q);
        assert_non_null(n);
        assert_int_equal(msg_of(n)->seq, next_out++);
        /* A real node is at tail now unless the queue just drained. */
        assert_int_equal(amb__mpscq_is_empty(&q), next_out == next_in);
    }
    assert_null(amb__mpscq_pop(&q));
}

AMB_TEST(mpscq_popped_node_can_be_pushed_again)
{
    struct msg a = {.seq = 1}, b = {.seq = 2};
    amb__mpscq q, r;

    amb__mpscq_init(&q, false);
    amb__mpscq_init(&r, false);

    /* A popped node belongs to the consumer at once: pushing it straight
     * back (to the same queue or another) must not disturb either queue. */
    for (int round = 0; round < 100; round++) {
        amb__mpscq_push(&q, &a.node);
        amb__mpscq_push(&q, &b.node);
        assert_ptr_equal(amb__mpscq_pop(&q), &a.node);
        amb__mpscq_push(&q, &a.node);
        assert_ptr_equal(amb__mpscq_pop(&q), &b.node);
        amb__mpscq_push(&r, &b.node);
        assert_ptr_equal(amb__mpscq_pop(&q), &a.node);
        assert_null(amb__mpscq_pop(&q));
        assert_ptr_equal(amb__mpscq_pop(&r), &b.node);
        assert_null(amb__mpscq_pop(&r));
    }
}

AMB_TEST(mpscq_park_protocol_single_thread)
{
    struct msg a, b, c;
    amb__mpscq q;

    /* A queue created parked reports its first push, once. */
    amb__mpscq_init(&q, true);
    assert_true(amb__mpscq_mark_empty(&q)); /* already parked: idempotent */
    assert_true(amb__mpscq_push(&q, &a.node));
    assert_false(amb__mpscq_push(&q, &b.node));

    /* Messages waiting: parking is refused and changes nothing. */
    assert_false(amb__mpscq_mark_empty(&q));
    assert_ptr_equal(amb__mpscq_pop(&q), &a.node);
    assert_false(amb__mpscq_mark_empty(&q));
    assert_false(amb__mpscq_push(&q, &c.node)); /* still awake */
    assert_ptr_equal(amb__mpscq_pop(&q), &b.node);
    assert_ptr_equal(amb__mpscq_pop(&q), &c.node);
    assert_null(amb__mpscq_pop(&q));

    /* Drained: park, then the next push (only) reports the transition. */
    assert_true(amb__mpscq_mark_empty(&q));
    assert_true(amb__mpscq_is_empty(&q));
    assert_null(amb__mpscq_pop(&q));
    assert_true(amb__mpscq_push(&q, &a.node));
    assert_false(amb__mpscq_push(&q, &b.node));
    assert_ptr_equal(amb__mpscq_pop(&q), &a.node);
    assert_ptr_equal(amb__mpscq_pop(&q), &b.node);

    /* A queue created awake does not report its first push. */
    amb__mpscq_init(&q, false);
    assert_false(amb__mpscq_push(&q, &a.node));
    assert_ptr_equal(amb__mpscq_pop(&q), &a.node);
    assert_true(amb__mpscq_mark_empty(&q));
    assert_true(amb__mpscq_push(&q, &a.node));
}

AMB_TEST(mpscq_mark_empty_refuses_during_a_push)
{
    struct msg a, b;
    amb__mpscq q;

    amb__mpscq_init(&q, false);

    /* Replay the window a producer leaves between its exchange and its link
     * store, by doing the exchange half by hand: the consumer sees nothing
     * to pop, yet must not be allowed to park. */
    atomic_store(&a.node.next, NULL);
    uintptr_t prev = atomic_exchange(&q.head, (uintptr_t)&a.node);
    assert_int_equal(prev, (uintptr_t)&q.sentinel);
    assert_null(amb__mpscq_pop(&q));
    assert_false(amb__mpscq_is_empty(&q));
    assert_false(amb__mpscq_mark_empty(&q));

    /* Same window with a real node at tail: pop must not hand out the last
     * linked node before its successor's link exists. */
    atomic_store(&q.sentinel.next, &a.node); /* the link store, completed */
    amb__mpscq_push(&q, &b.node);
    assert_ptr_equal(amb__mpscq_pop(&q), &a.node);
    struct msg c;
    atomic_store(&c.node.next, NULL);
    prev = atomic_exchange(&q.head, (uintptr_t)&c.node);
    assert_int_equal(prev, (uintptr_t)&b.node);
    assert_null(amb__mpscq_pop(&q));
    assert_false(amb__mpscq_mark_empty(&q));
    atomic_store(&b.node.next, &c.node);
    assert_ptr_equal(amb__mpscq_pop(&q), &b.node);
    assert_ptr_equal(amb__mpscq_pop(&q), &c.node);
    assert_null(amb__mpscq_pop(&q));
    assert_true(amb__mpscq_mark_empty(&q));
}

/* A closed queue (an ended task's): the first push after the close learns
 * it, takes the queue over, and closes it again once it is empty. */
AMB_TEST(mpscq_close_protocol_single_thread)
{
    struct msg a, b;
    amb__mpscq q;

    amb__mpscq_init(&q, false);
    assert_int_equal(amb__mpscq_push(&q, &a.node), 0);
    assert_false(amb__mpscq_close(&q)); /* a node is waiting */
    assert_ptr_equal(amb__mpscq_pop(&q), &a.node);
    assert_true(amb__mpscq_close(&q));
    assert_true(amb__mpscq_is_empty(&q));
    assert_null(amb__mpscq_pop(&q));

    /* The first push finds it closed; the next ones find it taken over. */
    assert_int_equal(amb__mpscq_push(&q, &a.node), AMB__MPSCQ_CLOSED);
    assert_int_equal(amb__mpscq_push(&q, &b.node), 0);
    assert_false(amb__mpscq_close(&q));
    assert_ptr_equal(amb__mpscq_pop(&q), &a.node);
    assert_ptr_equal(amb__mpscq_pop(&q), &b.node);
    assert_null(amb__mpscq_pop(&q));
    assert_true(amb__mpscq_close(&q));
    assert_int_equal(amb__mpscq_push(&q, &b.node), AMB__MPSCQ_CLOSED);
    assert_ptr_equal(amb__mpscq_pop(&q), &b.node);
    assert_true(amb__mpscq_close(&q));

    /* A park and a close are told apart. */
    amb__mpscq_init(&q, true);
    assert_int_equal(amb__mpscq_push(&q, &a.node), AMB__MPSCQ_PARKED);
}

/* Four producers push into a closed queue at once: whoever's push finds it
 * closed pops everything (its own node first), then closes it again,
 * spinning while a push is half done. Every node is popped exactly once,
 * and the queue ends closed and empty. */
#define CLOSED_PER 20000

static struct {
    amb__mpscq q;
    struct msg msgs[NPRODUCERS][CLOSED_PER];
    atomic_uchar popped[NPRODUCERS][CLOSED_PER];
    atomic_long twice, takeovers;
    atomic_int start;
} closed;

static void drain_and_close(void)
{
    /* Linger now and then, so that other pushes land meanwhile (they then
     * find the queue taken over, not closed). */
    if (atomic_load(&closed.takeovers) % 8 == 0)
        for (volatile int i = 0; i < 2000; i++)
            ;
    for (;;) {
        amb__mpscq_node *n;
        while ((n = amb__mpscq_pop(&closed.q)) != NULL) {
            struct msg *m = (struct msg *)n;
            if (atomic_exchange(&closed.popped[m->producer][m->seq], 1) != 0)
                atomic_fetch_add(&closed.twice, 1);
        }
        if (amb__mpscq_close(&closed.q))
            return;
        sched_yield();
    }
}

static void *closed_producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    while (!atomic_load(&closed.start))
        ;
    for (uint32_t i = 0; i < CLOSED_PER / SCALE_DOWN; i++) {
        struct msg *m = &closed.msgs[id][i];
        m->producer = id;
        m->seq = i;
        if (amb__mpscq_push(&closed.q, &m->node) == AMB__MPSCQ_CLOSED) {
            atomic_fetch_add(&closed.takeovers, 1);
            drain_and_close();
        }
    }
    return NULL;
}

AMB_TEST(mpscq_pushers_into_a_closed_queue_take_every_node_back_once)
{
    amb__mpscq_init(&closed.q, false);
    assert_true(amb__mpscq_close(&closed.q));
    pthread_t th[NPRODUCERS];
    for (uintptr_t i = 0; i < NPRODUCERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, closed_producer, (void *)i), 0);
    atomic_store(&closed.start, 1);
    for (int i = 0; i < NPRODUCERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&closed.twice), 0);
    for (int p = 0; p < NPRODUCERS; p++)
        for (uint32_t i = 0; i < CLOSED_PER / SCALE_DOWN; i++)
            assert_int_equal(atomic_load(&closed.popped[p][i]), 1);
    assert_null(amb__mpscq_pop(&closed.q));
    assert_true(amb__mpscq_is_empty(&closed.q));
    /* Fewer takeovers than pushes: some pushes found the queue taken over. */
    print_message("%ld takeovers for %d pushes\n", atomic_load(&closed.takeovers),
                  NPRODUCERS * (CLOSED_PER / SCALE_DOWN));
}

/* ---- four producers, one consumer ---- */

struct shared {
    amb__mpscq q;
    struct parker parker;
    struct msg *msgs; /* NPRODUCERS * per_producer, producer-major */
    uint32_t per_producer;
    atomic_int start;
    /* Lock-step test only: the consumer's park count, which producers wait
     * on before each round. */
    atomic_long parks;
    uint32_t burst;
    uint32_t yield_mask; /* free-running producers yield when (i & mask) == 0 */
    bool lockstep;
};

struct producer_arg {
    struct shared *s;
    uint32_t id;
    long woke; /* pushes that returned true */
    bool timed_out;
};

static void wait_start(struct shared *s)
{
    /* acquire: pairs with the release store that opens the gate, so the
     * producer sees the initialised queue and messages. */
    while (!atomic_load_explicit(&s->start, memory_order_acquire))
        sched_yield();
}

static void *producer_main(void *argp)
{
    struct producer_arg *a = argp;
    struct shared *s = a->s;
    struct msg *mine = s->msgs + (size_t)a->id * s->per_producer;
    uint64_t deadline = amb_test_deadline_ms(DEADLINE_MS);
    uint32_t i = 0;
    long round = 0;

    wait_start(s);
    while (i < s->per_producer) {
        if (s->lockstep) {
            /* Round r starts once the consumer has parked r+1 times, so
             * every producer races to be the one that ends that park. */
            while (atomic_load_explicit(&s->parks, memory_order_acquire) < round + 1) {
                if (amb_test_now_ms() > deadline) {
                    a->timed_out = true;
                    return NULL;
                }
                sched_yield();
            }
            round++;
        }
        uint32_t n = s->burst;
        for (uint32_t k = 0; k < n && i < s->per_producer; k++, i++) {
            mine[i].producer = a->id;
            mine[i].seq = i;
            if (amb__mpscq_push(&s->q, &mine[i].node)) {
                a->woke++;
                unpark(&s->parker);
            }
        }
        /* Let the consumer drain and park now and then. A yield can cost a
         * whole time slice on busy cores, so only the parking test does it. */
        if (s->yield_mask != 0 && (i & s->yield_mask) == 0)
            sched_yield();
    }
    return NULL;
}

struct consumer_result {
    uint32_t received;
    uint32_t order_errors;
    uint32_t bad_producer;
    long parks;
    bool lost_wakeup;
};

/* Pops everything, checking per-producer FIFO order. With a parker, parks
 * whenever the queue is empty; without one, yields and polls. */
static void consume(struct shared *s, bool parking, struct consumer_result *r)
{
    uint32_t expect[NPRODUCERS] = {0};
    uint32_t total = NPRODUCERS * s->per_producer;
    uint64_t deadline = amb_test_deadline_ms(DEADLINE_MS);
    unsigned idle = 0;

    while (r->received < total) {
        amb__mpscq_node *n = amb__mpscq_pop(&s->q);
        if (n != NULL) {
            struct msg *m = msg_of(n);
            if (m->producer >= NPRODUCERS) {
                r->bad_producer++;
            } else {
                if (m->seq != expect[m->producer])
                    r->order_errors++;
                expect[m->producer] = m->seq + 1;
            }
            r->received++;
            idle = 0;
            continue;
        }
        if (amb_test_now_ms() > deadline) {
            r->lost_wakeup = true;
            return;
        }
        if (!parking) {
            if (++idle > 16)
                sched_yield();
            continue;
        }
        if (amb__mpscq_mark_empty(&s->q)) {
            r->parks++;
            /* release: producers waiting for this count (lock-step test)
             * then see the queue parked. */
            atomic_store_explicit(&s->parks, r->parks, memory_order_release);
            if (!park(&s->parker, deadline)) {
                r->lost_wakeup = true;
                return;
            }
        } else if (++idle > 16) {
            /* A producer sits between its exchange and its link store. */
            sched_yield();
        }
    }
}

static void run_many_to_one(uint32_t per_producer, bool parking, bool lockstep,
                            uint32_t burst, uint32_t yield_mask,
                            struct consumer_result *r,
                            struct producer_arg args[NPRODUCERS], struct shared *s)
{
    pthread_t th[NPRODUCERS];

    memset(s, 0, sizeof *s);
    /* A parking consumer starts awake and parks on its first empty look,
     * which is what lock-step round 0 waits for. */
    amb__mpscq_init(&s->q, false);
    parker_init(&s->parker);
    s->per_producer = per_producer;
    s->lockstep = lockstep;
    s->burst = burst;
    s->yield_mask = yield_mask;
    s->msgs = amb__calloc((size_t)NPRODUCERS * per_producer, sizeof *s->msgs);
    assert_non_null(s->msgs);

    for (uint32_t i = 0; i < NPRODUCERS; i++) {
        args[i] = (struct producer_arg){.s = s, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, producer_main, &args[i]), 0);
    }
    /* release: publishes the initialised queue to the producers. */
    atomic_store_explicit(&s->start, 1, memory_order_release);

    memset(r, 0, sizeof *r);
    consume(s, parking, r);
    if (r->lost_wakeup) {
        /* Threads are still running; the failing test ends the process. */
        fail_msg("consumer waited past the deadline after %u of %u messages, %ld parks",
                 r->received, NPRODUCERS * per_producer, r->parks);
    }
    for (uint32_t i = 0; i < NPRODUCERS; i++)
        pthread_join(th[i], NULL);
    amb__free(s->msgs);
    s->msgs = NULL;
}

AMB_TEST(mpscq_four_producers_fifo)
{
    static struct shared s;
    struct producer_arg args[NPRODUCERS];
    struct consumer_result r;
    uint32_t per = 1000000 / SCALE_DOWN;

    run_many_to_one(per, false, false, 1, 0, &r, args, &s);
    assert_int_equal(r.received, NPRODUCERS * per);
    assert_int_equal(r.bad_producer, 0);
    assert_int_equal(r.order_errors, 0);
    assert_null(amb__mpscq_pop(&s.q));
    assert_true(amb__mpscq_is_empty(&s.q));
    parker_destroy(&s.parker);
}

AMB_TEST(mpscq_parking_consumer_never_loses_a_message)
{
    static struct shared s;
    struct producer_arg args[NPRODUCERS];
    struct consumer_result r;
    uint32_t per = 200000 / SCALE_DOWN;

    run_many_to_one(per, true, false, 3, 255, &r, args, &s);
    assert_int_equal(r.received, NPRODUCERS * per);
    assert_int_equal(r.order_errors, 0);
    assert_int_equal(r.bad_producer, 0);

    /* Every park was ended by exactly one wake-up: no double wake-up, none
     * lost, none pending. */
    long woke = 0;
    for (int i = 0; i < NPRODUCERS; i++)
        woke += args[i].woke;
    assert_int_equal(s.parker.double_wakeups, 0);
    assert_int_equal(woke, s.parker.wakeups);
    assert_int_equal(woke, r.parks);
    assert_int_equal(s.parker.tokens, 0);
    assert_true(amb__mpscq_mark_empty(&s.q));
    print_message("%ld park/wake cycles\n", r.parks);
    parker_destroy(&s.parker);
}

AMB_TEST(mpscq_exactly_one_pusher_wakes_each_park)
{
    static struct shared s;
    struct producer_arg args[NPRODUCERS];
    struct consumer_result r;
    uint32_t burst = 2;
    uint32_t per = 20000 / SCALE_DOWN * burst;

    /* Lock-step rounds: the consumer parks, then all four producers push at
     * once and race for the parked bit. Each round ends a park, so at least
     * one park per round is guaranteed, and each must be woken once. */
    run_many_to_one(per, true, true, burst, 0, &r, args, &s);
    for (int i = 0; i < NPRODUCERS; i++)
        assert_false(args[i].timed_out);
    assert_int_equal(r.received, NPRODUCERS * per);
    assert_int_equal(r.order_errors, 0);

    long woke = 0;
    for (int i = 0; i < NPRODUCERS; i++)
        woke += args[i].woke;
    assert_true(r.parks >= (long)(per / burst));
    assert_int_equal(s.parker.double_wakeups, 0);
    assert_int_equal(woke, r.parks);
    assert_int_equal(s.parker.tokens, 0);
    print_message("%ld park/wake cycles\n", r.parks);
    parker_destroy(&s.parker);
}

/* ---- two threads bouncing a fixed set of nodes (ping-pong) ---- */

#define INFLIGHT 8

/* Side 0 stamps nodes with sequence numbers and sends them to side 1, which
 * echoes every node back at once; side 0 re-sends each returning node with
 * the next number until it has sent `rounds`, then sends a stop node. Nodes
 * are reused the moment they are popped, and both sides park when their
 * queue is empty, so every message crosses the park protocol both ways. */
struct pong {
    amb__mpscq q[2];
    struct parker parker[2];
    struct msg nodes[INFLIGHT];
    struct msg stop;
    uint32_t rounds;
};

struct side {
    struct pong *p;
    int me;
    uint32_t received;
    uint32_t order_errors;
    bool lost_wakeup;
};

static void send_to(struct pong *p, int to, struct msg *m)
{
    if (amb__mpscq_push(&p->q[to], &m->node))
        unpark(&p->parker[to]);
}

/* Pops one node, parking while the queue is empty. NULL after the deadline. */
static struct msg *receive(struct pong *p, int me, uint64_t deadline)
{
    for (;;) {
        amb__mpscq_node *n = amb__mpscq_pop(&p->q[me]);
        if (n != NULL)
            return msg_of(n);
        if (amb__mpscq_mark_empty(&p->q[me])) {
            if (!park(&p->parker[me], deadline))
                return NULL;
        } else {
            sched_yield();
        }
    }
}

static void *side_main(void *argp)
{
    struct side *sd = argp;
    struct pong *p = sd->p;
    uint64_t deadline = amb_test_deadline_ms(DEADLINE_MS);

    if (sd->me == 1) {
        for (;;) {
            struct msg *m = receive(p, 1, deadline);
            if (m == NULL) {
                sd->lost_wakeup = true;
                return NULL;
            }
            if (m == &p->stop)
                return NULL;
            sd->received++;
            send_to(p, 0, m);
        }
    }

    uint32_t sent = 0, inflight = 0;
    for (; sent < INFLIGHT; sent++, inflight++) {
        p->nodes[sent].seq = sent;
        send_to(p, 1, &p->nodes[sent]);
    }
    while (inflight > 0) {
        struct msg *m = receive(p, 0, deadline);
        if (m == NULL) {
            sd->lost_wakeup = true;
            return NULL;
        }
        /* Two FIFO queues in a ring keep side 0's sending order. */
        if (m->seq != sd->received)
            sd->order_errors++;
        sd->received++;
        inflight--;
        if (sent < p->rounds) {
            m->seq = sent++;
            inflight++;
            send_to(p, 1, m);
        }
    }
    send_to(p, 1, &p->stop);
    return NULL;
}

AMB_TEST(mpscq_ping_pong_two_threads)
{
    static struct pong p;
    struct side sides[2];
    pthread_t th[2];

    memset(&p, 0, sizeof p);
    p.rounds = 200000 / SCALE_DOWN;
    for (int i = 0; i < 2; i++) {
        amb__mpscq_init(&p.q[i], false); /* both threads start awake */
        parker_init(&p.parker[i]);
    }
    for (int i = 0; i < 2; i++) {
        sides[i] = (struct side){.p = &p, .me = i};
        assert_int_equal(pthread_create(&th[i], NULL, side_main, &sides[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);

    for (int i = 0; i < 2; i++) {
        assert_false(sides[i].lost_wakeup);
        assert_int_equal(sides[i].received, p.rounds);
        assert_int_equal(p.parker[i].double_wakeups, 0);
        assert_int_equal(p.parker[i].tokens, 0);
    }
    assert_int_equal(sides[0].order_errors, 0);
    for (int i = 0; i < 2; i++)
        parker_destroy(&p.parker[i]);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(mpscq_single_thread_fifo),
              AMB_TEST_ENTRY(mpscq_popped_node_can_be_pushed_again),
              AMB_TEST_ENTRY(mpscq_park_protocol_single_thread),
              AMB_TEST_ENTRY(mpscq_mark_empty_refuses_during_a_push),
              AMB_TEST_ENTRY(mpscq_close_protocol_single_thread),
              AMB_TEST_ENTRY(mpscq_pushers_into_a_closed_queue_take_every_node_back_once),
              AMB_TEST_ENTRY(mpscq_four_producers_fifo),
              AMB_TEST_ENTRY(mpscq_parking_consumer_never_loses_a_message),
              AMB_TEST_ENTRY(mpscq_exactly_one_pusher_wakes_each_park),
              AMB_TEST_ENTRY(mpscq_ping_pong_two_threads))

/*
 * tests/unit/blocking.c - the blocking-call pool (amb_blocking_call).
 *
 * Processes never call cmocka's asserts (they run on their own stacks and
 * on other threads): they record what they observe in the test's state,
 * and the test asserts on it after amb_rt_run returns. Every wait is on an
 * observation with a deadline; the blocking functions wait on a pipe or a
 * flag the test releases, bounded so that a broken pool fails instead of
 * hanging.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <sched.h>

#include "amb_test.h"
#include "process/rt.h"
#include "runtime/blocking.h"

#define DEADLINE_MS 20000

static amb_rt *new_rt(unsigned schedulers, unsigned blocking_threads)
{
    amb_config cfg = {.schedulers = schedulers, .blocking_threads = blocking_threads};
    amb_rt *rt = NULL;
    assert_ok(amb_rt_new(&cfg, &rt));
    return rt;
}

/* Gives up the CPU once: the blocking functions below wait on an
 * observation (with a deadline), yielding between looks. */
static void let_others_run(void)
{
    sched_yield();
}

/* Waits (bounded) for a byte on the pipe; returns it, or -1. */
static intptr_t read_pipe(void *arg)
{
    int fd = *(const int *)arg;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, DEADLINE_MS) != 1)
        return -1;
    unsigned char c;
    if (read(fd, &c, 1) != 1)
        return -1;
    return c;
}

/* Lets the process yield until *flag is set or the deadline passes. */
static bool yield_until(amb_proc *self, atomic_bool *flag)
{
    uint64_t deadline = amb_test_deadline_ms(DEADLINE_MS);
    while (!atomic_load(flag)) {
        if (amb_test_now_ms() > deadline)
            return false;
        amb_yield(self);
    }
    return true;
}

/* ------------------------------------------------------------------------
 * The scheduler keeps running other processes during a call.
 * ---------------------------------------------------------------------- */

#define TRIPS 200

static struct {
    int pipe[2];
    atomic_bool call_started;
    atomic_int trips;
    intptr_t result;
    int rc;
    int trips_at_return;
    int pinger_ok;
    pthread_t caller_thread, fn_thread;
} sched_free;

static intptr_t wait_released(void *arg)
{
    sched_free.fn_thread = pthread_self();
    atomic_store(&sched_free.call_started, true);
    return read_pipe(arg);
}

static void caller(amb_proc *self, void *arg)
{
    (void)arg;
    sched_free.caller_thread = pthread_self();
    sched_free.rc =
        amb_blocking_call(self, wait_released, &sched_free.pipe[0], &sched_free.result);
    sched_free.trips_at_return = atomic_load(&sched_free.trips);
}

static void echo(amb_proc *self, void *arg)
{
    (void)arg;
    for (;;) {
        amb_term m;
        if (amb_receive(self, AMB_INFINITY, &m) != 0 || m == AMB_ATOM_STOP)
            return;
        amb_send(self, amb_tuple_elem(m, 0), amb_tuple_elem(m, 1));
    }
}

static void pinger(amb_proc *self, void *arg)
{
    (void)arg;
    if (!yield_until(self, &sched_free.call_started))
        return;
    amb_pid e;
    if (amb_spawn(self, echo, NULL, &e) != 0)
        return;
    amb_heap *h = amb_proc_heap(self);
    for (int i = 0; i < TRIPS; i++) {
        amb_term m, reply;
        m = AMB_TUPLE(h, amb_self(self), AMB_SMALL(i));
        if (amb_send(self, e, m) != 0 || amb_receive(self, DEADLINE_MS, &reply) != 0 ||
            reply != AMB_SMALL(i))
            return;
        atomic_fetch_add(&sched_free.trips, 1);
        amb_heap_reset(h);
    }
    amb_send(self, e, AMB_ATOM_STOP);
    sched_free.pinger_ok = 1;
    /* Only now does the blocking call return. */
    unsigned char c = 42;
    if (write(sched_free.pipe[1], &c, 1) != 1)
        sched_free.pinger_ok = 0;
}

AMB_TEST(blocking_call_leaves_scheduler_free)
{
    memset(&sched_free, 0, sizeof sched_free);
    assert_int_equal(pipe(sched_free.pipe), 0);
    amb_rt *rt = new_rt(1, 0);
    assert_ok(amb_rt_spawn(rt, caller, NULL, NULL));
    assert_ok(amb_rt_spawn(rt, pinger, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    amb_rt_free(rt);
    close(sched_free.pipe[0]);
    close(sched_free.pipe[1]);

    assert_ok(sched_free.rc);
    assert_int_equal(sched_free.pinger_ok, 1);
    /* With one scheduler, the round trips happened while the call was in
     * progress: the call returned only after the pinger finished them. */
    assert_int_equal(sched_free.trips_at_return, TRIPS);
    assert_int_equal(sched_free.result, 42);
    assert_false(pthread_equal(sched_free.caller_thread, sched_free.fn_thread));
}

/* ------------------------------------------------------------------------
 * Many concurrent calls.
 * ---------------------------------------------------------------------- */

#define CALLERS 100

static struct {
    atomic_int inflight, max_inflight, ok;
    intptr_t args[CALLERS];
} many;

static intptr_t square_slowly(void *arg)
{
    intptr_t v = *(const intptr_t *)arg;
    int n = atomic_fetch_add(&many.inflight, 1) + 1;
    int m = atomic_load(&many.max_inflight);
    while (n > m && !atomic_compare_exchange_weak(&many.max_inflight, &m, n))
        ;
    /* A blocking C call: wait until a second call is in flight beside this
     * one (or a short deadline passes), so the pool really overlaps calls. */
    uint64_t until = amb_test_deadline_ms(5);
    while (atomic_load(&many.inflight) < 2 && amb_test_now_ms() < until)
        let_others_run();
    atomic_fetch_sub(&many.inflight, 1);
    return v * v + 7;
}

static void many_caller(amb_proc *self, void *arg)
{
    intptr_t *v = arg, r = 0;
    if (amb_blocking_call(self, square_slowly, v, &r) == 0 && r == *v * *v + 7)
        atomic_fetch_add(&many.ok, 1);
}

AMB_TEST(blocking_many_concurrent_calls)
{
    memset(&many, 0, sizeof many);
    amb_rt *rt = new_rt(2, 4);
    for (int i = 0; i < CALLERS; i++) {
        many.args[i] = i - 50;
        assert_ok(amb_rt_spawn(rt, many_caller, &many.args[i], NULL));
    }
    assert_ok(amb_rt_run(rt));
    unsigned threads = amb__blocking_nthreads(&rt->exec);
    amb_rt_free(rt);
    assert_int_equal(atomic_load(&many.ok), CALLERS);
    assert_in_range(threads, 1, 4);
    assert_in_range(atomic_load(&many.max_inflight), 1, 4);
}

/* The pool's threads run calls in parallel, up to blocking_threads. */
static struct {
    atomic_int arrived, met;
} par;

static intptr_t meet_three(void *arg)
{
    (void)arg;
    atomic_fetch_add(&par.arrived, 1);
    uint64_t deadline = amb_test_deadline_ms(DEADLINE_MS);
    while (atomic_load(&par.arrived) < 3)
        if (amb_test_now_ms() > deadline)
            return 0;
        else
            let_others_run();
    return 1;
}

static void par_caller(amb_proc *self, void *arg)
{
    (void)arg;
    intptr_t r = 0;
    if (amb_blocking_call(self, meet_three, NULL, &r) == 0 && r == 1)
        atomic_fetch_add(&par.met, 1);
}

AMB_TEST(blocking_calls_run_in_parallel)
{
    memset(&par, 0, sizeof par);
    amb_rt *rt = new_rt(1, 3);
    for (int i = 0; i < 3; i++)
        assert_ok(amb_rt_spawn(rt, par_caller, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    unsigned threads = amb__blocking_nthreads(&rt->exec);
    amb_rt_free(rt);
    assert_int_equal(atomic_load(&par.met), 3);
    assert_int_equal(threads, 3);
}

/* ------------------------------------------------------------------------
 * Messages that arrive during a call wait, in order.
 * ---------------------------------------------------------------------- */

#define NMSG 20

static struct {
    int pipe[2];
    atomic_bool call_started;
    amb_pid waiter;
    intptr_t result;
    size_t queued_at_return;
    int in_order;
    int then_empty;
} order;

static intptr_t order_wait(void *arg)
{
    atomic_store(&order.call_started, true);
    return read_pipe(arg);
}

static void order_waiter(amb_proc *self, void *arg)
{
    (void)arg;
    if (amb_blocking_call(self, order_wait, &order.pipe[0], &order.result) != 0)
        return;
    order.queued_at_return = amb_message_queue_len(self);
    order.in_order = 1;
    for (int i = 0; i < NMSG; i++) {
        amb_term m;
        if (amb_receive(self, 0, &m) != 0 || m != AMB_SMALL(i))
            order.in_order = 0;
    }
    amb_term m;
    order.then_empty = amb_receive(self, 0, &m) == AMB_ETIMEDOUT;
}

static void order_sender(amb_proc *self, void *arg)
{
    (void)arg;
    if (!yield_until(self, &order.call_started))
        return;
    for (int i = 0; i < NMSG; i++)
        amb_send(self, order.waiter, AMB_SMALL(i));
    unsigned char c = 7;
    if (write(order.pipe[1], &c, 1) != 1)
        return;
}

AMB_TEST(blocking_messages_during_call_stay_in_order)
{
    memset(&order, 0, sizeof order);
    assert_int_equal(pipe(order.pipe), 0);
    amb_rt *rt = new_rt(2, 0);
    assert_ok(amb_rt_spawn(rt, order_waiter, NULL, &order.waiter));
    assert_ok(amb_rt_spawn(rt, order_sender, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    amb_rt_free(rt);
    close(order.pipe[0]);
    close(order.pipe[1]);
    assert_int_equal(order.result, 7);
    assert_int_equal(order.queued_at_return, NMSG);
    assert_int_equal(order.in_order, 1);
    assert_int_equal(order.then_empty, 1);
}

/* ------------------------------------------------------------------------
 * Arguments, NULL result, handlers, thread start-up.
 * ---------------------------------------------------------------------- */

static struct {
    atomic_int ran;
    int rc_null_result, rc_null_self, rc_null_fn;
    int sequential_ok;
} misc;

static intptr_t count_run(void *arg)
{
    (void)arg;
    return atomic_fetch_add(&misc.ran, 1) + 1;
}

static void null_result(amb_proc *self, void *arg)
{
    (void)arg;
    misc.rc_null_result = amb_blocking_call(self, count_run, NULL, NULL);
    misc.rc_null_self = amb_blocking_call(NULL, count_run, NULL, NULL);
    misc.rc_null_fn = amb_blocking_call(self, NULL, NULL, NULL);
}

AMB_TEST(blocking_result_may_be_null)
{
    memset(&misc, 0, sizeof misc);
    amb_rt *rt = new_rt(1, 0);
    assert_ok(amb_rt_spawn(rt, null_result, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    amb_rt_free(rt);
    assert_ok(misc.rc_null_result);
    assert_int_equal(misc.rc_null_self, AMB_EBADARG);
    assert_int_equal(misc.rc_null_fn, AMB_EBADARG);
    /* The call ran; the failed ones did not. */
    assert_int_equal(atomic_load(&misc.ran), 1);
}

static void no_call(amb_proc *self, void *arg)
{
    (void)self;
    (void)arg;
}

static void sequential(amb_proc *self, void *arg)
{
    (void)arg;
    misc.sequential_ok = 1;
    for (int i = 1; i <= 5; i++) {
        intptr_t r = 0;
        if (amb_blocking_call(self, count_run, NULL, &r) != 0 || r != i)
            misc.sequential_ok = 0;
    }
}

AMB_TEST(blocking_threads_start_on_demand)
{
    memset(&misc, 0, sizeof misc);
    /* A runtime that never blocks starts no thread. */
    amb_rt *rt = new_rt(2, 4);
    assert_ok(amb_rt_spawn(rt, no_call, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    assert_int_equal(amb__blocking_nthreads(&rt->exec), 0);
    /* Calls one after another reuse one thread: it is free again before
     * the caller learns the result. */
    assert_ok(amb_rt_spawn(rt, sequential, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    assert_int_equal(amb__blocking_nthreads(&rt->exec), 1);
    amb_rt_free(rt);
    assert_int_equal(misc.sequential_ok, 1);
}

/* A handler process may make a blocking call inside handle(). */
static struct {
    amb_pid handler;
    int64_t reply;
} hb;

static intptr_t twice(void *arg)
{
    return 2 * (intptr_t)arg;
}

static int hb_handle(amb_proc *self, void *state, amb_term msg)
{
    (void)state;
    int64_t v;
    if (amb_int_get(amb_tuple_elem(msg, 1), &v) != 0)
        return AMB_EBADARG;
    intptr_t r = 0;
    int rc = amb_blocking_call(self, twice, (void *)(intptr_t)v, &r);
    if (rc != 0)
        return rc;
    amb_send(self, amb_tuple_elem(msg, 0), AMB_SMALL(r));
    amb_exit_self(self, AMB_ATOM_NORMAL);
}

static const amb_handler hb_table = {.handle = hb_handle};

static void hb_client(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid h;
    if (amb_spawn_handler(self, &hb_table, NULL, &h) != 0)
        return;
    amb_send(self, h, AMB_TUPLE(amb_proc_heap(self), amb_self(self), AMB_SMALL(21)));
    amb_term m;
    if (amb_receive(self, DEADLINE_MS, &m) == 0)
        amb_int_get(m, &hb.reply);
}

AMB_TEST(blocking_call_from_handler)
{
    memset(&hb, 0, sizeof hb);
    amb_rt *rt = new_rt(2, 0);
    assert_ok(amb_rt_spawn(rt, hb_client, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    amb_rt_free(rt);
    assert_int_equal(hb.reply, 42);
}

/* ------------------------------------------------------------------------
 * Stopping: a call survives amb_rt_stop; queued calls still run when
 * amb_rt_free stops the pool, their results discarded.
 * ---------------------------------------------------------------------- */

static struct {
    amb_rt *rt;
    int pipe[2];
    atomic_bool started, b_posted, c_posted, all_posted;
    atomic_bool saw_stopping;
    atomic_int others_ran;
    intptr_t result;
    int rc;
} stop;

static intptr_t stop_wait_pipe(void *arg)
{
    atomic_store(&stop.started, true);
    return read_pipe(arg);
}

static void stop_caller(amb_proc *self, void *arg)
{
    (void)arg;
    stop.rc = amb_blocking_call(self, stop_wait_pipe, &stop.pipe[0], &stop.result);
}

static void stopper(amb_proc *self, void *arg)
{
    atomic_bool *flag = arg;
    if (yield_until(self, flag))
        amb_rt_stop(amb_proc_rt(self));
}

AMB_TEST(blocking_call_survives_stop_and_rerun)
{
    memset(&stop, 0, sizeof stop);
    stop.rc = 1;
    assert_int_equal(pipe(stop.pipe), 0);
    amb_rt *rt = new_rt(1, 1);
    assert_ok(amb_rt_spawn(rt, stop_caller, NULL, NULL));
    assert_ok(amb_rt_spawn(rt, stopper, &stop.started, NULL));
    assert_ok(amb_rt_run(rt));
    /* Stopped while the call is in progress: the caller still waits. */
    assert_int_equal(stop.rc, 1);
    unsigned char c = 99;
    assert_int_equal(write(stop.pipe[1], &c, 1), 1);
    /* The result, delivered while no scheduler ran, wakes it now. */
    assert_ok(amb_rt_run(rt));
    amb_rt_free(rt);
    close(stop.pipe[0]);
    close(stop.pipe[1]);
    assert_ok(stop.rc);
    assert_int_equal(stop.result, 99);
}

static intptr_t wait_for_free(void *arg)
{
    (void)arg;
    atomic_store(&stop.started, true);
    uint64_t deadline = amb_test_deadline_ms(DEADLINE_MS);
    while (!amb__blocking_stopping(&stop.rt->exec)) {
        if (amb_test_now_ms() > deadline)
            return 0;
        let_others_run();
    }
    atomic_store(&stop.saw_stopping, true);
    return 1;
}

static intptr_t other_call(void *arg)
{
    (void)arg;
    atomic_fetch_add(&stop.others_ran, 1);
    return 0;
}

static void first_caller(amb_proc *self, void *arg)
{
    (void)arg;
    amb_blocking_call(self, wait_for_free, NULL, NULL);
}

static void queued_caller(amb_proc *self, void *arg)
{
    atomic_bool *posted = arg;
    /* One scheduler: nothing runs between this store and the post. */
    atomic_store(posted, true);
    amb_blocking_call(self, other_call, NULL, NULL);
}

static void free_stopper(amb_proc *self, void *arg)
{
    (void)arg;
    if (!yield_until(self, &stop.started) || !yield_until(self, &stop.b_posted) ||
        !yield_until(self, &stop.c_posted))
        return;
    atomic_store(&stop.all_posted, true);
    amb_rt_stop(amb_proc_rt(self));
}

AMB_TEST(blocking_queued_calls_run_at_free_and_are_discarded)
{
    memset(&stop, 0, sizeof stop);
    amb_rt *rt = new_rt(1, 1);
    stop.rt = rt;
    assert_ok(amb_rt_spawn(rt, first_caller, NULL, NULL));
    assert_ok(amb_rt_spawn(rt, queued_caller, &stop.b_posted, NULL));
    assert_ok(amb_rt_spawn(rt, queued_caller, &stop.c_posted, NULL));
    assert_ok(amb_rt_spawn(rt, free_stopper, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    assert_true(atomic_load(&stop.all_posted));
    /* One thread, busy with the first call until the runtime is freed:
     * the other two calls are still queued then. They still run (a caller
     * may have handed fn what it frees: the socket layer's name lookups
     * do), and their results are discarded (LeakSanitizer checks their
     * cells are freed). */
    amb_rt_free(rt);
    assert_true(atomic_load(&stop.saw_stopping));
    assert_int_equal(atomic_load(&stop.others_ran), 2);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(blocking_call_leaves_scheduler_free),
              AMB_TEST_ENTRY(blocking_many_concurrent_calls),
              AMB_TEST_ENTRY(blocking_calls_run_in_parallel),
              AMB_TEST_ENTRY(blocking_messages_during_call_stay_in_order),
              AMB_TEST_ENTRY(blocking_result_may_be_null),
              AMB_TEST_ENTRY(blocking_threads_start_on_demand),
              AMB_TEST_ENTRY(blocking_call_from_handler),
              AMB_TEST_ENTRY(blocking_call_survives_stop_and_rerun),
              AMB_TEST_ENTRY(blocking_queued_calls_run_at_free_and_are_discarded))

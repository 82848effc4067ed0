/*
 * Unit tests of the run queue (src/runtime/runq.[ch]): the owner's ring
 * (put, get, FIFO order, overflow of half the ring to the inject queue), a
 * thief's steal of half, the run-next slot, the inject queue, and the one
 * promise everything rests on: with an owner and thieves racing, every
 * task is taken exactly once.
 *
 * The tasks are bare amb__task structs: the run queue touches only their
 * addresses and, in the inject queue, their link. Threads other than the
 * test's own record failures in a counter the test asserts on (cmocka's
 * asserts jump to the test thread's stack).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "amb_test.h"
#include "runtime/runq.h"

#define N AMB__RUNQ_SIZE

static amb__task tasks[4 * N];

static amb__runq *new_q(void)
{
    amb__runq *q = aligned_alloc(_Alignof(amb__runq), sizeof *q);
    assert_non_null(q);
    amb__runq_init(q);
    return q;
}

AMB_TEST(runq_owner_gets_in_put_order)
{
    amb__runq *q = new_q();
    amb__runq_inject inj;
    amb__runq_inject_init(&inj);
    assert_true(amb__runq_empty(q));
    assert_null(amb__runq_get(q));
    /* Several rounds, so the free-running counters wrap around the ring. */
    for (int round = 0; round < 5; round++) {
        for (unsigned i = 0; i < N - 1; i++)
            amb__runq_put(&inj, q, &tasks[i]);
        assert_false(amb__runq_empty(q));
        for (unsigned i = 0; i < N - 1; i++)
            assert_ptr_equal(amb__runq_get(q), &tasks[i]);
        assert_null(amb__runq_get(q));
        assert_true(amb__runq_empty(q));
    }
    assert_null(amb__runq_inject_get(&inj)); /* nothing overflowed */
    amb__runq_inject_term(&inj);
    free(q);
}

AMB_TEST(runq_full_ring_moves_its_older_half_to_inject)
{
    amb__runq *q = new_q();
    amb__runq_inject inj;
    amb__runq_inject_init(&inj);
    for (unsigned i = 0; i < N; i++)
        amb__runq_put(&inj, q, &tasks[i]);
    assert_null(amb__runq_inject_get(&inj)); /* exactly full: no overflow yet */
    amb__runq_put(&inj, q, &tasks[N]);
    /* The older half, then the task that did not fit, went to the inject
     * queue in order; the ring kept the younger half. */
    for (unsigned i = 0; i < N / 2; i++)
        assert_ptr_equal(amb__runq_inject_get(&inj), &tasks[i]);
    assert_ptr_equal(amb__runq_inject_get(&inj), &tasks[N]);
    assert_null(amb__runq_inject_get(&inj));
    for (unsigned i = N / 2; i < N; i++)
        assert_ptr_equal(amb__runq_get(q), &tasks[i]);
    assert_null(amb__runq_get(q));
    amb__runq_inject_term(&inj);
    free(q);
}

AMB_TEST(runq_thief_takes_the_older_half)
{
    amb__runq *victim = new_q(), *q = new_q();
    amb__runq_inject inj;
    amb__runq_inject_init(&inj);
    for (unsigned n = 1; n <= 9; n++) {
        for (unsigned i = 0; i < n; i++)
            amb__runq_put(&inj, victim, &tasks[i]);
        /* The thief takes ceil(n/2): it runs the last of them now, and the
         * others are in its own ring, in order. */
        unsigned taken = n - n / 2;
        assert_ptr_equal(amb__runq_steal(q, victim, false), &tasks[taken - 1]);
        for (unsigned i = 0; i + 1 < taken; i++)
            assert_ptr_equal(amb__runq_get(q), &tasks[i]);
        assert_null(amb__runq_get(q));
        for (unsigned i = taken; i < n; i++)
            assert_ptr_equal(amb__runq_get(victim), &tasks[i]);
        assert_null(amb__runq_get(victim));
    }
    assert_null(amb__runq_steal(q, victim, false)); /* nothing to take */
    amb__runq_inject_term(&inj);
    free(victim);
    free(q);
}

AMB_TEST(runq_run_next_slot_is_the_owners_unless_asked)
{
    amb__runq *victim = new_q(), *q = new_q();
    assert_null(amb__runq_put_next(victim, &tasks[0]));
    assert_false(amb__runq_empty(victim));
    /* A newer wake-up displaces the older one, which the caller re-queues. */
    assert_ptr_equal(amb__runq_put_next(victim, &tasks[1]), &tasks[0]);
    /* A thief takes run-next only when told the owner is stuck. */
    assert_null(amb__runq_steal(q, victim, false));
    assert_ptr_equal(amb__runq_steal(q, victim, true), &tasks[1]);
    assert_true(amb__runq_empty(victim));
    assert_null(amb__runq_steal(q, victim, true));
    /* The owner empties its own slot. */
    assert_null(amb__runq_put_next(victim, &tasks[2]));
    assert_ptr_equal(amb__runq_get_next(victim), &tasks[2]);
    assert_null(amb__runq_get_next(victim));
    /* With tasks in the ring, a thief takes from the ring, not the slot. */
    amb__runq_inject inj;
    amb__runq_inject_init(&inj);
    amb__runq_put(&inj, victim, &tasks[3]);
    assert_null(amb__runq_put_next(victim, &tasks[4]));
    assert_ptr_equal(amb__runq_steal(q, victim, true), &tasks[3]);
    assert_ptr_equal(amb__runq_get_next(victim), &tasks[4]);
    amb__runq_inject_term(&inj);
    free(victim);
    free(q);
}

AMB_TEST(runq_inject_batch_goes_to_the_ring_in_order)
{
    amb__runq *q = new_q();
    amb__runq_inject inj;
    amb__runq_inject_init(&inj);
    assert_null(amb__runq_inject_take(&inj, q, 4));
    for (unsigned i = 0; i < 10; i++)
        amb__runq_inject_put(&inj, &tasks[i]);
    /* The oldest to run now, the next three in the ring, the rest left. */
    assert_ptr_equal(amb__runq_inject_take(&inj, q, 4), &tasks[0]);
    for (unsigned i = 1; i < 4; i++)
        assert_ptr_equal(amb__runq_get(q), &tasks[i]);
    assert_null(amb__runq_get(q));
    /* At most half a ring per batch, whatever is asked. */
    for (unsigned i = 10; i < 3 * N; i++)
        amb__runq_inject_put(&inj, &tasks[i]);
    assert_ptr_equal(amb__runq_inject_take(&inj, q, 4 * N), &tasks[4]);
    for (unsigned i = 5; i < 4 + N / 2; i++)
        assert_ptr_equal(amb__runq_get(q), &tasks[i]);
    assert_null(amb__runq_get(q));
    assert_ptr_equal(amb__runq_inject_get(&inj), &tasks[4 + N / 2]);
    amb__runq_inject_term(&inj);
    free(q);
}

AMB_TEST(runq_inject_queue_is_fifo)
{
    amb__runq_inject inj;
    amb__runq_inject_init(&inj);
    assert_null(amb__runq_inject_get(&inj));
    for (unsigned i = 0; i < 10; i++)
        amb__runq_inject_put(&inj, &tasks[i]);
    for (unsigned i = 0; i < 5; i++)
        assert_ptr_equal(amb__runq_inject_get(&inj), &tasks[i]);
    amb__runq_inject_put(&inj, &tasks[10]);
    for (unsigned i = 5; i <= 10; i++)
        assert_ptr_equal(amb__runq_inject_get(&inj), &tasks[i]);
    assert_null(amb__runq_inject_get(&inj));
    amb__runq_inject_term(&inj);
}

/* ------------------------------------------------------------------------
 * An owner puts and gets (and overflows into the inject queue) while
 * thieves steal: each of the tasks is taken exactly once, by someone.
 * ---------------------------------------------------------------------- */

#define THIEVES 2
#define TOTAL   (4 * N)
#define ROUNDS  200

static struct {
    amb__runq *owner_q;
    amb__runq_inject inj;
    atomic_uint taken[TOTAL];
    atomic_uint done;   /* tasks taken this round */
    atomic_uint stolen; /* of them, by thieves */
    atomic_uint bad;    /* a thief's failures */
    atomic_bool stop;
} race;

static void take(amb__task *t, bool by_thief)
{
    size_t i = (size_t)(t - tasks);
    if (i >= TOTAL) {
        atomic_fetch_add(&race.bad, 1);
        return;
    }
    atomic_fetch_add(&race.taken[i], 1);
    if (by_thief)
        atomic_fetch_add(&race.stolen, 1);
    atomic_fetch_add(&race.done, 1);
}

static void *thief(void *arg)
{
    (void)arg;
    amb__runq *q = aligned_alloc(_Alignof(amb__runq), sizeof *q);
    if (q == NULL) {
        atomic_fetch_add(&race.bad, 1);
        return NULL;
    }
    amb__runq_init(q);
    while (!atomic_load(&race.stop)) {
        amb__task *t = amb__runq_steal(q, race.owner_q, true);
        if (t == NULL)
            t = amb__runq_inject_get(&race.inj);
        if (t == NULL) {
            sched_yield();
            continue;
        }
        take(t, true);
        while ((t = amb__runq_get(q)) != NULL) /* the rest of the loot */
            take(t, true);
    }
    free(q);
    return NULL;
}

AMB_TEST(runq_owner_and_thieves_take_each_task_once)
{
    race.owner_q = new_q();
    amb__runq_inject_init(&race.inj);
    atomic_store(&race.stop, false);
    atomic_store(&race.bad, 0);
    pthread_t th[THIEVES];
    for (int i = 0; i < THIEVES; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thief, NULL), 0);
    uint64_t deadline = amb_test_deadline_ms(60000);
    for (int round = 0; round < ROUNDS; round++) {
        for (unsigned i = 0; i < TOTAL; i++)
            atomic_store(&race.taken[i], 0);
        atomic_store(&race.done, 0);
        atomic_store(&race.stolen, 0);
        /* More tasks than the ring holds: some overflow to inject. */
        for (unsigned i = 0; i < TOTAL; i++) {
            if (i % 3 == 0)
                amb__runq_put(&race.inj, race.owner_q, &tasks[i]);
            else if (i % 3 == 1) {
                amb__task *old = amb__runq_put_next(race.owner_q, &tasks[i]);
                if (old != NULL)
                    amb__runq_put(&race.inj, race.owner_q, old);
            } else {
                amb__runq_put(&race.inj, race.owner_q, &tasks[i]);
                amb__task *t = amb__runq_get(race.owner_q);
                if (t != NULL)
                    take(t, false);
                t = amb__runq_get(race.owner_q);
                if (t != NULL)
                    take(t, false);
            }
        }
        /* The thieves race with the owner: wait until they have taken
         * something this round before the owner drains the rest. */
        while (atomic_load(&race.stolen) == 0 && atomic_load(&race.bad) == 0)
            assert_true(amb_test_now_ms() < deadline);
        assert_int_equal(atomic_load(&race.bad), 0);
        for (;;) { /* the owner drains what is left */
            amb__task *t = amb__runq_get_next(race.owner_q);
            if (t == NULL)
                t = amb__runq_get(race.owner_q);
            if (t == NULL)
                t = amb__runq_inject_get(&race.inj);
            if (t != NULL)
                take(t, false);
            else if (atomic_load(&race.done) == TOTAL)
                break;
            else
                assert_true(amb_test_now_ms() < deadline);
        }
        for (unsigned i = 0; i < TOTAL; i++)
            assert_int_equal(atomic_load(&race.taken[i]), 1);
    }
    atomic_store(&race.stop, true);
    for (int i = 0; i < THIEVES; i++)
        pthread_join(th[i], NULL);
    amb__runq_inject_term(&race.inj);
    free(race.owner_q);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(runq_owner_gets_in_put_order),
              AMB_TEST_ENTRY(runq_full_ring_moves_its_older_half_to_inject),
              AMB_TEST_ENTRY(runq_thief_takes_the_older_half),
              AMB_TEST_ENTRY(runq_run_next_slot_is_the_owners_unless_asked),
              AMB_TEST_ENTRY(runq_inject_batch_goes_to_the_ring_in_order),
              AMB_TEST_ENTRY(runq_inject_queue_is_fifo),
              AMB_TEST_ENTRY(runq_owner_and_thieves_take_each_task_once))

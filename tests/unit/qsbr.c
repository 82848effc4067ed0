/*
 * Unit tests of QSBR (src/runtime/qsbr.h). Outside readers: a thread
 * outside the runtime that looks tasks up (amb_rt_send, the blocking pool,
 * the watchdog) holds back only the advance after the epoch it announced,
 * so readers that keep overlapping never stop reclamation (issue 12, item
 * 7: with one counter for all of them, two threads in amb_rt_send kept the
 * epoch still and limbo grew by 136 MiB over 2M spawns). The end of a run:
 * processes retired while the epoch could not move are reclaimed before
 * amb_rt_run returns, and their memory goes back (a kill storm of a million
 * processes kept up to 270 MiB of blocks in limbo after its run).
 *
 * The executor of a runtime that is made but not run: its schedulers are
 * offline, so only outside readers decide; amb__qsbr_reclaim on scheduler
 * 0 tries an advance, as an idle or busy scheduler does. Tokens stand for
 * readers on other threads (enter/leave only count).
 */
#include <time.h>

#include "amb_test.h"
#include "process/rt.h"
#include "runtime/qsbr.h"
#include "runtime/slab.h"

static uint64_t epoch(amb__exec *x)
{
    return atomic_load(&x->epoch);
}

AMB_TEST(qsbr_overlapping_outside_readers_never_stop_the_epoch)
{
    amb_rt *rt = NULL;
    assert_ok(amb_rt_new(&(amb_config){.schedulers = 1}, &rt));
    amb__exec *x = &rt->exec;
    amb__sched *s = amb__exec_sched(x, 0);

    /* Nobody inside: it advances. */
    uint64_t e0 = epoch(x);
    amb__qsbr_reclaim(s, false);
    assert_int_equal(epoch(x), e0 + 1);

    /* A chain of readers, always one inside, each entering before the
     * previous one leaves: every advance waits only for the reader of the
     * epoch before, so the epoch keeps moving. */
    uint64_t e = epoch(x);
    unsigned older = amb__qsbr_enter(x); /* announces e */
    amb__qsbr_reclaim(s, false);         /* e -> e + 1: a reader of e does not hold it */
    assert_int_equal(epoch(x), e + 1);
    for (int i = 0; i < 100; i++) {
        unsigned newer = amb__qsbr_enter(x); /* announces e + 1 */
        /* The reader of e holds the advance from e + 1 back: a task it may
         * have found (retired at e at the earliest) is still in use. */
        amb__qsbr_reclaim(s, false);
        assert_int_equal(epoch(x), e + 1);
        amb__qsbr_leave(x, older);
        amb__qsbr_reclaim(s, false); /* only the reader of e + 1 is inside */
        assert_int_equal(epoch(x), e + 2);
        older = newer;
        e++;
    }
    amb__qsbr_leave(x, older);
    amb__qsbr_reclaim(s, false);
    assert_int_equal(epoch(x), e + 2);
    amb_rt_free(rt);
}

/* The end of a run. A process spawns CHILDREN processes that end at once,
 * then spins in C (no runtime call, so its scheduler passes no quiescent
 * point) until all have ended: the other scheduler steals and runs them,
 * and their blocks wait in its limbo, since the epoch cannot move twice
 * while the spinner's scheduler is in one run. Then the spinner ends, and
 * with it the run, at once. Before the run reclaimed on its way out, 4936
 * of the 5000 blocks (35 slabs) were still there when amb_rt_run returned. */
#define CHILDREN 5000
#define SPIN_MS  30000 /* a deadline only: the children end in milliseconds */
static atomic_int g_children_ended;

static void child(amb_proc *self, void *arg)
{
    (void)self, (void)arg;
    atomic_fetch_add(&g_children_ended, 1);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void spinner(amb_proc *self, void *arg)
{
    (void)arg;
    for (int i = 0; i < CHILDREN; i++)
        if (amb_spawn(self, child, NULL, NULL) != 0)
            return; /* the count below tells */
    int64_t until = now_ms() + SPIN_MS;
    while (atomic_load(&g_children_ended) < CHILDREN && now_ms() < until)
        ;
}

AMB_TEST(qsbr_a_run_returns_the_memory_of_processes_that_ended_before_its_last_epoch)
{
    amb_rt *rt = NULL;
    amb_config cfg = {.schedulers = 2, .watchdog_ms = AMB_INFINITY};
    assert_ok(amb_rt_new(&cfg, &rt));
    size_t slabs = amb__slab_mapped();
    atomic_store(&g_children_ended, 0);
    assert_ok(amb_rt_spawn(rt, spinner, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    assert_int_equal(atomic_load(&g_children_ended), CHILDREN);
    /* Nothing retired is left, and every slab the run mapped (blocks, cells)
     * is unmapped: the schedulers gave their caches back. */
    for (unsigned i = 0; i < rt->exec.nsched; i++)
        assert_int_equal(amb__exec_sched(&rt->exec, i)->limbo_count, 0);
    assert_int_equal(amb__slab_mapped(), slabs);
    amb_rt_free(rt);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(qsbr_overlapping_outside_readers_never_stop_the_epoch),
    AMB_TEST_ENTRY(
        qsbr_a_run_returns_the_memory_of_processes_that_ended_before_its_last_epoch))

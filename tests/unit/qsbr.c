/*
 * Unit tests of QSBR's outside readers (src/runtime/qsbr.h): a thread
 * outside the runtime that looks tasks up (amb_rt_send, the blocking pool,
 * the watchdog) holds back only the advance after the epoch it announced,
 * so readers that keep overlapping never stop reclamation (issue 12, item
 * 7: with one counter for all of them, two threads in amb_rt_send kept the
 * epoch still and limbo grew by 136 MiB over 2M spawns).
 *
 * The executor of a runtime that is made but not run: its schedulers are
 * offline, so only outside readers decide; amb__qsbr_reclaim on scheduler
 * 0 tries an advance, as an idle or busy scheduler does. Tokens stand for
 * readers on other threads (enter/leave only count).
 */
#include "amb_test.h"
#include "process/rt.h"
#include "runtime/qsbr.h"

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

AMB_TEST_MAIN(AMB_TEST_ENTRY(qsbr_overlapping_outside_readers_never_stop_the_epoch))

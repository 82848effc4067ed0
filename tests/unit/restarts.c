/*
 * tests/unit/restarts.c - the restart-intensity window of both supervisors
 * (src/supervisor/restarts.c): more than `intensity` restarts within the
 * period is exceeded, a restart older than the period no longer counts,
 * and a restart that cannot be recorded (out of memory) is AMB_ENOMEM with
 * the window unchanged, so the supervisor can give up with that reason
 * instead of taking it for an exceeded intensity.
 */
#include "amb_test.h"
#include "supervisor/sup_internal.h"

AMB_TEST(more_than_intensity_restarts_within_the_period_is_exceeded)
{
    amb__restarts r;
    amb__restarts_init(&r, 3, 5000);
    bool exceeded = true;
    for (int i = 0; i < 3; i++) {
        assert_ok(amb__restarts_add(&r, 1000 + i, &exceeded));
        assert_false(exceeded);
    }
    assert_ok(amb__restarts_add(&r, 1003, &exceeded));
    assert_true(exceeded);
    /* 5000 ms after the first three, only the fourth counts. */
    assert_ok(amb__restarts_add(&r, 6002, &exceeded));
    assert_false(exceeded);
    assert_int_equal(r.total, 2);
    amb__restarts_free(&r);
}

AMB_TEST(a_restart_that_cannot_be_recorded_is_enomem_and_changes_nothing)
{
    amb__restarts r;
    amb__restarts_init(&r, 100, 5000);
    bool exceeded = true;
    /* The first restart allocates the ring: that allocation fails. */
    amb_test_alloc_fail(0, AMB_TEST_FAIL_ONCE);
    assert_rc(AMB_ENOMEM, amb__restarts_add(&r, 1000, &exceeded));
    amb_test_alloc_disarm();
    assert_true(exceeded); /* untouched */
    assert_int_equal(r.total, 0);
    assert_int_equal(r.len, 0);
    /* Eight runs fill the ring; the ninth grows it, and that fails. */
    for (int i = 0; i < 8; i++)
        assert_ok(amb__restarts_add(&r, 1000 + i, &exceeded));
    amb_test_alloc_fail(0, AMB_TEST_FAIL_ONCE);
    assert_rc(AMB_ENOMEM, amb__restarts_add(&r, 1008, &exceeded));
    amb_test_alloc_disarm();
    assert_int_equal(r.total, 8);
    assert_int_equal(r.len, 8);
    /* Memory back: the same restart is recorded, the runs kept in order. */
    assert_ok(amb__restarts_add(&r, 1008, &exceeded));
    assert_false(exceeded);
    assert_int_equal(r.total, 9);
    assert_ok(amb__restarts_add(&r, 6000, &exceeded)); /* drops 1000 */
    assert_int_equal(r.total, 9);
    amb__restarts_free(&r);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(more_than_intensity_restarts_within_the_period_is_exceeded),
    AMB_TEST_ENTRY(a_restart_that_cannot_be_recorded_is_enomem_and_changes_nothing))

/*
 * tests/unit/harness.c - the harness itself (tests/amb_test.h,
 * tests/amb_test_rt.h): the test allocator counts and fails exactly the
 * allocations it is told to, the fault-injection loop walks every
 * allocation of a body, and a run reports each thing it promises to catch
 * (a leak, a runtime that does not end, a first process that does not
 * reach its end, a CHECK that failed) instead of passing.
 */
#include "amb_test_rt.h"

AMB_TEST(the_allocator_counts_live_blocks_and_bytes)
{
    amb_test_alloc_count a = amb_test_alloc_now();
    void *p = amb_malloc(100);
    assert_non_null(p);
    p = amb_realloc(p, 300);
    assert_non_null(p);
    amb_test_alloc_count b = amb_test_alloc_now();
    assert_int_equal(b.calls - a.calls, 2);
    assert_int_equal(b.live_blocks - a.live_blocks, 1);
    assert_int_equal(b.live_bytes - a.live_bytes, 300);
    char leak[128];
    assert_string_equal(amb_test_alloc_leak(&a, &b, leak, sizeof leak),
                        "1 blocks (300 bytes) leaked");
    amb_free(p);
    b = amb_test_alloc_now();
    assert_string_equal(amb_test_alloc_leak(&a, &b, leak, sizeof leak), "");
}

AMB_TEST(the_allocator_fails_exactly_the_allocations_armed)
{
    void *p[6];
    /* Once: only the third from now. */
    amb_test_alloc_fail(2, AMB_TEST_FAIL_ONCE);
    for (int i = 0; i < 6; i++)
        p[i] = amb_malloc(8);
    amb_test_alloc_disarm();
    for (int i = 0; i < 6; i++)
        assert_true((p[i] == NULL) == (i == 2));
    for (int i = 0; i < 6; i++)
        amb_free(p[i]);
    /* A window of two, and realloc counts (the old block stays). */
    void *q = amb_malloc(8);
    amb_test_alloc_fail(1, 2);
    p[0] = amb_malloc(8);
    assert_null(amb_realloc(q, 64));
    p[1] = amb_malloc(8);
    p[2] = amb_malloc(8);
    amb_test_alloc_disarm();
    assert_non_null(p[0]);
    assert_null(p[1]);
    assert_non_null(p[2]);
    /* Forever: every one from the first on. */
    amb_test_alloc_fail(0, AMB_TEST_FAIL_FOREVER);
    for (int i = 3; i < 6; i++)
        p[i] = amb_malloc(8);
    amb_test_alloc_disarm();
    for (int i = 3; i < 6; i++)
        assert_null(p[i]);
    amb_free(p[0]);
    amb_free(p[2]);
    amb_free(q);
}

/* A body with three allocations, each failing cleanly. */
static int three_allocations(void *ctx)
{
    int *runs = ctx;
    ++*runs;
    amb_heap *h = NULL;
    int rc = amb_heap_new(&h);
    if (rc != 0)
        return rc;
    uint8_t big[400] = {0};
    amb_term t = amb_binary(h, big, sizeof big); /* off-heap: one more */
    amb_term l = amb_list(h, 0, NULL);
    rc = t == AMB_NONE || l == AMB_NONE ? AMB_ENOMEM : 0;
    amb_heap_free(h);
    return rc;
}

AMB_TEST(the_oom_loop_fails_every_allocation_once_then_stops)
{
    int runs = 0;
    amb_test_oom_stats st =
        amb_test_oom_loop(three_allocations, &runs, AMB_TEST_OOM_ONCE);
    assert_int_equal(st.runs, runs);
    assert_true(st.allocations >= 2);
    assert_int_equal(st.failed_runs, (long)st.allocations);
    assert_int_equal(st.runs, st.failed_runs + 1);
    runs = 0;
    st = amb_test_oom_loop(three_allocations, &runs, AMB_TEST_OOM_FROM);
    assert_int_equal(st.runs, (long)st.allocations + 1);
}

/* ---------------------------------------------------------------------------
 * The waits
 * ------------------------------------------------------------------------ */

typedef struct waits_arg {
    atomic_int counter;
    amb_pid parent;
} waits_arg;

/* Counts, says hello, waits for go, ends with reason bye. */
static void child(amb_proc *self, void *arg)
{
    waits_arg *w = arg;
    atomic_fetch_add(&w->counter, 1);
    CHECK_OK(self, amb_send(self, w->parent,
                            amb_pack(amb_proc_heap(self), "{hello,~p}", amb_self(self))));
    WAIT_MSG(self, NULL, "go");
    amb_exit_self(self, amb_atom("bye"));
}

static void waits_body(amb_proc *self, void *arg)
{
    (void)arg;
    waits_arg w = {.parent = amb_self(self)};
    atomic_store(&w.counter, 0);
    amb_trap_exit(self, true);
    amb_pid c = AMB_NONE;
    CHECK_OK(self, amb_spawn_link(self, child, &w, &c));
    amb_term ref = AMB_NONE;
    CHECK_OK(self, amb_monitor(self, c, &ref));
    WAIT_COUNT(self, &w.counter, 1);
    amb_pid from = AMB_NONE;
    amb_term msg = AMB_NONE;
    WAIT_MSG(self, &msg, "{hello,~p}", &from);
    CHECK(self, from == c);
    CHECK_TEXT(self, amb_tuple_elem(msg, 0), "hello");
    CHECK_TERM(self, amb_pack(amb_proc_heap(self), "{a,~b}", "x", (size_t)1),
               "{a, <<\"x\">>}");
    WAIT_UNTIL(self, amb_message_queue_len(self) == 0);
    CHECK_OK(self, amb_send(self, c, amb_atom("go")));
    CHECK(self, wait_down(self, ref, c) == amb_atom("bye"));
    CHECK(self, wait_exit(self, c) == amb_atom("bye"));
    amb_trap_exit(self, false);
}

AMB_TEST(the_waits_see_a_counter_a_message_a_down_and_an_exit)
{
    run_both(waits_body, NULL);
}

/* ---------------------------------------------------------------------------
 * What a run catches
 * ------------------------------------------------------------------------ */

static void leaks(amb_proc *self, void *arg)
{
    (void)self;
    *(void **)arg = amb_malloc(64);
}

static void waits_for_ever(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term m;
    amb_receive(self, AMB_INFINITY, &m);
}

static void leaves_a_process(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid p;
    CHECK_OK(self, amb_spawn(self, waits_for_ever, NULL, &p));
}

static void is_killed(amb_proc *self, void *arg)
{
    (void)arg;
    amb_exit(self, amb_self(self), AMB_ATOM_KILL);
    amb_yield(self);
}

static void is_usable(amb_proc *self, void *arg)
{
    (void)arg;
    amb_test_check_usable(self);
}

static void checks_and_fails(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_EQ(self, 1 + 1, 3);
}

static void expect_failure(amb_fn *fn, void *arg, int64_t deadline_ms, const char *want)
{
    amb_test_cfg cfg = {.rt = config_of(1), .deadline_ms = deadline_ms};
    char why[1536];
    assert_false(amb_test_run_ex(&cfg, fn, arg, why, sizeof why));
    if (strstr(why, want) == NULL)
        fail_msg("the run failed with \"%s\", expected it to say \"%s\"", why, want);
}

AMB_TEST(a_run_reports_a_leak_a_hang_an_early_end_and_a_failed_check)
{
    void *leaked = NULL;
    expect_failure(leaks, &leaked, 0, "1 blocks (64 bytes) leaked");
    amb_free(leaked);
    expect_failure(leaves_a_process, NULL, 300, "did not end within 300 ms");
    expect_failure(is_killed, NULL, 0, "did not reach its end");
    expect_failure(checks_and_fails, NULL, 0, "1 + 1 == 2, expected 3 == 3");
    /* And a run with none of these passes. */
    run_both(is_usable, NULL);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(the_allocator_counts_live_blocks_and_bytes),
              AMB_TEST_ENTRY(the_waits_see_a_counter_a_message_a_down_and_an_exit),
              AMB_TEST_ENTRY(the_allocator_fails_exactly_the_allocations_armed),
              AMB_TEST_ENTRY(the_oom_loop_fails_every_allocation_once_then_stops),
              AMB_TEST_ENTRY(a_run_reports_a_leak_a_hang_an_early_end_and_a_failed_check))

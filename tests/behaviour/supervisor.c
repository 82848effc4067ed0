/*
 * tests/behaviour/supervisor.c - OTP's supervisor (supervisor.h): the three
 * strategies, restart intensity (exceeded at exactly max + 1 restarts in
 * the period, not when they are spread out), escalation through three
 * levels, restart types on normal / shutdown / abnormal ends, shutdown order
 * and rules (timeout, brutal_kill, infinity), the management calls and each
 * of their errors, a failed start in init, nested trees, EXITs from the
 * parent and from strangers, and a restart storm whose supervisor memory
 * returns to baseline.
 *
 * How these tests work (tests/amb_test_rt.h): each runs a first
 * process in a fresh runtime, with one scheduler and with two; processes
 * record failures with CHECK and the test thread asserts afterwards. The
 * first process traps exits (a supervisor that gives up would otherwise
 * take it along) and stops what it started, so every runtime ends. Children
 * are sup_test.h's workers: they announce each start as {up, Tag, Pid} and
 * log their end, so a test waits on those observations, never on sleeps.
 */
#include <stdlib.h>

#define DEADLINE_MS 10000

#ifdef AMB_TSAN
#define STORM_N 10000
#define CHURN_N 2000
#else
#define STORM_N 100000
#define CHURN_N 10000
#endif

#include "sup_test.h"

static amb_term A(const char *name)
{
    return amb_atom(name);
}

/* Starts a supervisor of n children linked to the caller. */
static amb_pid start_sup(amb_proc *self, amb_sup_strategy strategy, int intensity,
                         int64_t period_ms, const amb_child_spec *cs, size_t n)
{
    amb_sup_spec spec = {{strategy, intensity, period_ms}, cs, n};
    amb_pid sup = AMB_NONE;
    CHECK_OK(self, amb_sup_start_link(self, &spec, NULL, &sup, NULL));
    return sup;
}

/* Stops sup as its parent would (exit signal shutdown) and waits for it. */
static void stop_sup(amb_proc *self, amb_pid sup)
{
    CHECK_OK(self, amb_exit(self, sup, AMB_ATOM_SHUTDOWN));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
}

/* ===========================================================================
 * Strategies
 * ======================================================================== */

typedef struct strat_case {
    amb_sup_strategy strategy;
    bool changed[3]; /* which children get a new pid when child 1 crashes */
    int log[3];      /* the order they end in */
    int nlog;
    stoplog stops;
    wk w[3];
} strat_case;

static void strategy_body(amb_proc *self, void *arg)
{
    strat_case *sc = arg;
    amb_trap_exit(self, true);
    memset(&sc->stops, 0, sizeof sc->stops);
    amb_child_spec cs[3];
    memset(sc->w, 0, sizeof sc->w);
    wk_init(sc->w, 3, amb_self(self), &sc->stops);
    for (int i = 0; i < 3; i++) {
        cs[i] = wspec(AMB_SMALL(i), &sc->w[i], AMB_PERMANENT, 1000);
    }
    amb_pid sup = start_sup(self, sc->strategy, 3, 5000, cs, 3);
    amb_pid before[3], after[3];
    for (int i = 0; i < 3; i++)
        before[i] = wait_up(self, i);
    amb_term k[3];
    CHECK_EQ(self, kids(self, sup, k, 3), 3);
    for (int i = 0; i < 3; i++)
        CHECK(self, k[i] == before[i]);

    CHECK_OK(self, amb_send(self, before[1], A("crash")));
    for (int i = 0; i < 3; i++)
        after[i] = sc->changed[i] ? wait_up(self, i) : before[i];
    CHECK_EQ(self, kids(self, sup, k, 3), 3);
    for (int i = 0; i < 3; i++) {
        CHECK(self, k[i] == after[i]);
        CHECK(self, (before[i] != after[i]) == sc->changed[i]);
        CHECK(self, amb_is_process_alive(self, after[i]));
        CHECK(self, sc->changed[i] || amb_is_process_alive(self, before[i]));
        CHECK(self, !sc->changed[i] || !amb_is_process_alive(self, before[i]));
    }
    CHECK_EQ(self, log_len(&sc->stops), sc->nlog);
    for (int i = 0; i < sc->nlog; i++)
        CHECK_EQ(self, log_at(&sc->stops, i), sc->log[i]);
    CHECK(self, amb_receive(self, 0, &(amb_term){0}) == AMB_ETIMEDOUT); /* no extra up */

    stop_sup(self, sup);
    /* Shut down in reverse start order after the crash's ends. */
    CHECK_EQ(self, log_len(&sc->stops), sc->nlog + 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(self, log_at(&sc->stops, sc->nlog + i), 2 - i);
}

AMB_TEST(one_for_one_restarts_only_the_child_that_crashed)
{
    static strat_case sc = {.strategy = AMB_ONE_FOR_ONE,
                            .changed = {false, true, false},
                            .log = {1},
                            .nlog = 1};
    run_both(strategy_body, &sc);
}

AMB_TEST(one_for_all_restarts_every_child_stopping_the_others_in_reverse)
{
    static strat_case sc = {.strategy = AMB_ONE_FOR_ALL,
                            .changed = {true, true, true},
                            .log = {1, 2, 0},
                            .nlog = 3};
    run_both(strategy_body, &sc);
}

AMB_TEST(rest_for_one_restarts_the_child_and_those_started_after_it)
{
    static strat_case sc = {.strategy = AMB_REST_FOR_ONE,
                            .changed = {false, true, true},
                            .log = {1, 2},
                            .nlog = 2};
    run_both(strategy_body, &sc);
}

/* ===========================================================================
 * Restart intensity
 * ======================================================================== */

typedef struct intensity_case {
    int intensity;
    bool zero_flags; /* start with intensity 0 and period 0: the defaults */
    wk w;
    stoplog stops;
} intensity_case;

/* More than intensity restarts within the period: the supervisor stops its
 * children and ends with shutdown at exactly the (intensity + 1)-th. */
static void intensity_body(amb_proc *self, void *arg)
{
    intensity_case *ic = arg;
    amb_trap_exit(self, true);
    memset(&ic->w, 0, sizeof ic->w);
    memset(&ic->stops, 0, sizeof ic->stops);
    ic->w.observer = amb_self(self);
    ic->w.log = &ic->stops;
    wk other = {0};
    other.tag = 1;
    other.log = &ic->stops;
    amb_child_spec cs[2] = {wspec(A("other"), &other, AMB_PERMANENT, 1000),
                            wspec(A("w"), &ic->w, AMB_PERMANENT, 1000)};
    int intensity = ic->intensity > 0 ? ic->intensity : AMB_NO_RESTARTS;
    amb_pid sup = ic->zero_flags
                      ? start_sup(self, AMB_ONE_FOR_ONE, 0, 0, cs, 2)
                      : start_sup(self, AMB_ONE_FOR_ONE, intensity, 60000, cs, 2);
    amb_pid pid = wait_up(self, 0);
    for (int i = 0; i < ic->intensity; i++) {
        CHECK_OK(self, amb_send(self, pid, A("crash")));
        amb_pid next = wait_up(self, 0);
        CHECK(self, next != pid);
        pid = next;
    }
    CHECK(self, amb_is_process_alive(self, sup));
    CHECK_OK(self, amb_send(self, pid, A("crash")));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
    /* No restart after the last crash, and both children ended: w's crashes,
     * then `other` stopped by the supervisor. */
    CHECK(self, amb_receive(self, 0, &(amb_term){0}) == AMB_ETIMEDOUT);
    CHECK_EQ(self, atomic_load(&ic->w.starts), ic->intensity + 1);
    CHECK_EQ(self, log_len(&ic->stops), ic->intensity + 2);
    CHECK_EQ(self, log_at(&ic->stops, ic->intensity + 1), 1);
    CHECK_RC(self, AMB_ENOPROC, amb_sup_count_children(self, sup, &(amb_sup_counts){0}));
}

AMB_TEST(intensity_exceeded_at_exactly_max_plus_one_restarts)
{
    static intensity_case ic = {.intensity = 3};
    run_both(intensity_body, &ic);
}

AMB_TEST(intensity_zero_gives_up_at_the_first_crash)
{
    /* AMB_NO_RESTARTS: zero restarts allowed. */
    static intensity_case ic = {.intensity = 0};
    run_both(intensity_body, &ic);
}

AMB_TEST(zero_intensity_and_period_are_otps_3_restarts_in_5000_ms)
{
    /* Zero means the default in every option field: 3 restarts in 5 s, so
     * quick crashes end it at the 4th. */
    static intensity_case ic = {.intensity = 3, .zero_flags = true};
    run_both(intensity_body, &ic);
}

/* Waits until the runtime clock reads at least t (the one use of waiting
 * for time itself: restarts must fall out of the period). */
static void wait_clock(amb_proc *self, int64_t t)
{
    int64_t limit = amb_now_ms() + DEADLINE_MS;
    while (amb_now_ms() < t) {
        CHECK(self, amb_now_ms() < limit);
        amb_sleep(self, t - amb_now_ms() + 1);
    }
}

static void spread_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w = {0};
    w.observer = amb_self(self);
    amb_child_spec cs = wspec(A("w"), &w, AMB_PERMANENT, 1000);
    const int period = 200, intensity = 2;
    amb_pid sup = start_sup(self, AMB_ONE_FOR_ONE, intensity, period, &cs, 1);
    amb_pid pid = wait_up(self, 0);
    /* Three rounds of `intensity` restarts, each after the last round's
     * restarts left the period: 6 restarts, never 3 within 200 ms. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < intensity; i++) {
            CHECK_OK(self, amb_send(self, pid, A("crash")));
            pid = wait_up(self, 0);
        }
        wait_clock(self, amb_now_ms() + period);
    }
    CHECK(self, amb_is_process_alive(self, sup));
    CHECK_EQ(self, atomic_load(&w.starts), 1 + 3 * intensity);
    /* And the window still counts: intensity + 1 quick ones end it. */
    for (int i = 0; i < intensity; i++) {
        CHECK_OK(self, amb_send(self, pid, A("crash")));
        pid = wait_up(self, 0);
    }
    CHECK_OK(self, amb_send(self, pid, A("crash")));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
}

AMB_TEST(intensity_not_exceeded_when_restarts_are_spread_out)
{
    run_both(spread_body, NULL);
}

/* A child whose restarts keep failing: each retry counts, so the supervisor
 * gives up after intensity retries (OTP's try_again_restart). */
static void failing_restart_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w = {0};
    w.observer = amb_self(self);
    amb_child_spec cs = wspec(A("w"), &w, AMB_PERMANENT, 1000);
    amb_pid sup = start_sup(self, AMB_ONE_FOR_ONE, 5, 60000, &cs, 1);
    amb_pid pid = wait_up(self, 0);
    atomic_store(&w.fail_starts, 1000);
    CHECK_OK(self, amb_send(self, pid, A("crash")));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
    /* The first attempt and 4 retries each ran a start that failed; the
     * 6th restart counted exceeds intensity 5 before its start. */
    CHECK_EQ(self, 1000 - atomic_load(&w.fail_starts), 5);
}

AMB_TEST(failed_restarts_are_retried_and_count_toward_intensity)
{
    run_both(failing_restart_body, NULL);
}

/* ===========================================================================
 * Escalation: leaf worker -> middle supervisor -> top supervisor
 * ======================================================================== */

static void escalation_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    stoplog stops = {0};
    wk leaf = {0}, sibling = {0};
    leaf.observer = amb_self(self);
    leaf.log = &stops;
    sibling.tag = 1;
    sibling.observer = amb_self(self);
    sibling.log = &stops;
    /* The middle supervisor gives up at its first restart. */
    amb_child_spec leaf_spec = wspec(A("leaf"), &leaf, AMB_PERMANENT, 1000);
    amb_sup_spec middle = {{AMB_ONE_FOR_ONE, AMB_NO_RESTARTS, 60000}, &leaf_spec, 1};
    amb_child_spec top_cs[2] = {
        wspec(A("sibling"), &sibling, AMB_PERMANENT, 1000),
        {A("middle"), sup_child_start, &middle, AMB_PERMANENT, 0, AMB_SUPERVISOR}};
    /* The top restarts the middle once, then gives up too. */
    amb_pid top = start_sup(self, AMB_ONE_FOR_ONE, 1, 60000, top_cs, 2);
    amb_pid sib = wait_up(self, 1);
    amb_pid leaf1 = wait_up(self, 0);
    amb_term mid1 = AMB_NONE, mid2 = AMB_NONE;
    CHECK(self, kid(self, top, A("middle"), &mid1));
    CHECK(self, amb_type_of(mid1) == AMB_T_PID);
    amb_term mref;
    CHECK_OK(self, amb_monitor(self, mid1, &mref));

    /* Level 1 -> 2: the leaf crashes, the middle escalates with shutdown,
     * the top restarts the middle (a new middle, a new leaf). */
    CHECK_OK(self, amb_send(self, leaf1, A("crash")));
    CHECK(self, wait_down(self, mref, AMB_NONE) == AMB_ATOM_SHUTDOWN);
    amb_pid leaf2 = wait_up(self, 0);
    CHECK(self, leaf2 != leaf1);
    CHECK(self, kid(self, top, A("middle"), &mid2));
    CHECK(self, amb_type_of(mid2) == AMB_T_PID && mid2 != mid1);
    CHECK(self, amb_is_process_alive(self, sib)); /* one_for_one at the top */
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, top, &n));
    CHECK(self, n.specs == 2 && n.active == 2 && n.supervisors == 1 && n.workers == 1);

    /* Level 2 -> 3: again; now the top exceeds its intensity and ends. */
    CHECK_OK(self, amb_send(self, leaf2, A("crash")));
    CHECK(self, wait_exit(self, top) == AMB_ATOM_SHUTDOWN);
    CHECK(self, !amb_is_process_alive(self, mid2) && !amb_is_process_alive(self, sib));
    CHECK(self, !amb_is_process_alive(self, leaf2));
    /* leaf1, leaf2 crashed; then the top stopped the sibling. */
    CHECK_EQ(self, log_len(&stops), 3);
    CHECK_EQ(self, log_at(&stops, 2), 1);
}

AMB_TEST(escalation_through_three_levels)
{
    run_both(escalation_body, NULL);
}

/* ===========================================================================
 * Restart types
 * ======================================================================== */

/* Child state after each kind of end, for permanent (0), transient (1)
 * and temporary (2) children. */
static void restart_types_for(amb_proc *self, const char *how, bool abnormal)
{
    wk w[3] = {{0}};
    amb_restart types[3] = {AMB_PERMANENT, AMB_TRANSIENT, AMB_TEMPORARY};
    amb_child_spec cs[3];
    wk_init(w, 3, amb_self(self), NULL);
    for (int i = 0; i < 3; i++) {
        cs[i] = wspec(AMB_SMALL(i), &w[i], types[i], 1000);
    }
    amb_pid sup = start_sup(self, AMB_ONE_FOR_ONE, 100, 60000, cs, 3);
    amb_pid pid[3];
    for (int i = 0; i < 3; i++)
        pid[i] = wait_up(self, i);
    for (int i = 0; i < 3; i++)
        CHECK_OK(self, amb_send(self, pid[i], A(how)));
    /* Permanent: always restarted. */
    CHECK(self, wait_up(self, 0) != pid[0]);
    /* Transient: restarted only after an abnormal end; else kept stopped. */
    amb_term st;
    if (abnormal) {
        CHECK(self, wait_up(self, 1) != pid[1]);
    } else {
        WAIT_UNTIL(self, kid(self, sup, AMB_SMALL(1), &st) && st == AMB_ATOM_UNDEFINED);
    }
    /* Temporary: never restarted, its spec removed. */
    WAIT_UNTIL(self, !kid(self, sup, AMB_SMALL(2), &st));
    CHECK(self, amb_receive(self, 0, &(amb_term){0}) == AMB_ETIMEDOUT);
    CHECK_EQ(self, atomic_load(&w[2].starts), 1);
    CHECK_EQ(self, atomic_load(&w[1].starts), abnormal ? 2 : 1);
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK_EQ(self, n.specs, 2);
    CHECK_EQ(self, n.active, abnormal ? 2 : 1);
    stop_sup(self, sup);
}

static void restart_types_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    restart_types_for(self, "normal", false);
    restart_types_for(self, "shutdown", false);
    restart_types_for(self, "shutdown_tuple", false);
    restart_types_for(self, "crash", true);
}

AMB_TEST(permanent_transient_temporary_on_normal_shutdown_and_abnormal_ends)
{
    run_both(restart_types_body, NULL);
}

/* ===========================================================================
 * Shutdown: order and rules
 * ======================================================================== */

/* A parent process that starts the supervisor and waits; the test ends it
 * with reason bye. */
typedef struct parent_case {
    stoplog stops;
    wk w[4];
    amb_pid tester;
} parent_case;

static void parent_main(amb_proc *self, void *arg)
{
    parent_case *pc = arg;
    amb_child_spec cs[4];
    for (int i = 0; i < 4; i++)
        cs[i] = wspec(AMB_SMALL(i), &pc->w[i], AMB_PERMANENT, 1000);
    amb_pid sup = start_sup(self, AMB_ONE_FOR_ONE, 3, 5000, cs, 4);
    CHECK_OK(self,
             amb_send(self, pc->tester, amb_pack(amb_proc_heap(self), "{sup,~p}", sup)));
    amb_receive_match(self, AMB_INFINITY, NULL, "never");
}

static void shutdown_order_body(amb_proc *self, void *arg)
{
    parent_case *pc = arg;
    memset(pc, 0, sizeof *pc);
    pc->tester = amb_self(self);
    wk_init(pc->w, 4, AMB_NONE, &pc->stops);
    for (int i = 0; i < 4; i++) {
        pc->w[i].trap = i % 2 == 0; /* trapping or not: both end in order */
    }
    amb_pid parent, sup;
    CHECK_OK(self, amb_spawn(self, parent_main, pc, &parent));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{sup,~p}", &sup));
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, sup, &ref));
    CHECK_EQ(self, log_len(&pc->stops), 0);
    /* The parent ends: the supervisor stops its children in reverse and
     * ends with the parent's reason. */
    CHECK_OK(self, amb_exit(self, parent, A("bye")));
    CHECK(self, wait_down(self, ref, AMB_NONE) == A("bye"));
    CHECK_EQ(self, log_len(&pc->stops), 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(self, log_at(&pc->stops, i), 3 - i);
}

AMB_TEST(parent_exit_stops_children_in_reverse_start_order)
{
    static parent_case pc;
    run_both(shutdown_order_body, &pc);
}

static void gen_stop_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    stoplog stops = {0};
    wk w[3] = {{0}};
    amb_child_spec cs[3];
    wk_init(w, 3, AMB_NONE, &stops);
    for (int i = 0; i < 3; i++) {
        cs[i] = wspec(AMB_SMALL(i), &w[i], AMB_PERMANENT, AMB_SHUTDOWN_DEFAULT);
    }
    amb_pid sup = start_sup(self, AMB_REST_FOR_ONE, 3, 5000, cs, 3);
    CHECK_OK(self, amb_gen_server_stop(self, sup, A("enough"), AMB_INFINITY));
    CHECK_EQ(self, log_len(&stops), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(self, log_at(&stops, i), 2 - i);
    CHECK(self, wait_exit(self, sup) == A("enough"));
}

AMB_TEST(gen_server_stop_stops_children_in_reverse_and_ends_with_its_reason)
{
    run_both(gen_stop_body, NULL);
}

/* An EXIT from a process that is neither the parent nor a child is ignored:
 * a stranger links to the supervisor, sends it exit(boom), then calls it
 * (ordered after the signal) and finds it well. */
typedef struct stranger_case {
    amb_pid sup, tester;
    amb_pid kids_before[2];
} stranger_case;

static void stranger_main(amb_proc *self, void *arg)
{
    stranger_case *sc = arg;
    amb_trap_exit(self, true);
    CHECK_OK(self, amb_link(self, sc->sup));
    CHECK_OK(self, amb_exit(self, sc->sup, A("boom")));
    amb_term k[2];
    CHECK_EQ(self, kids(self, sc->sup, k, 2), 2);
    CHECK(self, k[0] == sc->kids_before[0] && k[1] == sc->kids_before[1]);
    CHECK(self, amb_is_process_alive(self, sc->sup));
    CHECK_OK(self, amb_send(self, sc->tester, A("checked")));
    /* And its own end (linked) is ignored as well. */
    amb_exit_self(self, A("stranger_died"));
}

static void stranger_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w[2] = {{0}};
    amb_child_spec cs[2];
    wk_init(w, 2, AMB_NONE, NULL);
    for (int i = 0; i < 2; i++) {
        cs[i] = wspec(AMB_SMALL(i), &w[i], AMB_PERMANENT, 1000);
    }
    stranger_case sc = {0};
    sc.tester = amb_self(self);
    sc.sup = start_sup(self, AMB_ONE_FOR_ALL, AMB_NO_RESTARTS, 5000, cs, 2);
    CHECK_EQ(self, kids(self, sc.sup, sc.kids_before, 2), 2);
    amb_pid s;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, stranger_main, &sc, &s, &ref));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "checked"));
    CHECK(self, wait_down(self, ref, AMB_NONE) == A("stranger_died"));
    /* Intensity 0: had any EXIT been taken for a child's, it would have
     * ended. A call after the stranger's end finds all as it was. */
    amb_term k[2];
    CHECK_EQ(self, kids(self, sc.sup, k, 2), 2);
    CHECK(self, k[0] == sc.kids_before[0] && k[1] == sc.kids_before[1]);
    stop_sup(self, sc.sup);
}

AMB_TEST(exit_from_a_stranger_is_ignored)
{
    run_both(stranger_body, NULL);
}

/* A child that traps exits and ignores shutdown is killed after its
 * timeout, not sooner; one that obeys stops at once. */
static void timeout_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    const int timeout = 200;
    wk defiant = {0}, obedient = {0};
    defiant.trap = defiant.ignore_shutdown = true;
    obedient.tag = 1;
    obedient.trap = true;
    amb_child_spec cs[2] = {wspec(A("defiant"), &defiant, AMB_PERMANENT, timeout),
                            wspec(A("obedient"), &obedient, AMB_PERMANENT, 5000)};
    amb_pid sup = start_sup(self, AMB_ONE_FOR_ONE, 3, 5000, cs, 2);
    amb_term p0, p1, r0, r1;
    CHECK(self, kid(self, sup, A("defiant"), &p0));
    CHECK(self, kid(self, sup, A("obedient"), &p1));
    CHECK_OK(self, amb_monitor(self, p0, &r0));
    CHECK_OK(self, amb_monitor(self, p1, &r1));

    int64_t t0 = amb_now_ms();
    CHECK_OK(self, amb_sup_terminate_child(self, sup, A("defiant")));
    int64_t elapsed = amb_now_ms() - t0;
    CHECK(self, elapsed >= timeout);
    CHECK(self, elapsed < DEADLINE_MS);
    CHECK(self, !amb_is_process_alive(self, p0));
    CHECK(self, wait_down(self, r0, AMB_NONE) == AMB_ATOM_KILLED);

    t0 = amb_now_ms();
    CHECK_OK(self, amb_sup_terminate_child(self, sup, A("obedient")));
    CHECK(self, amb_now_ms() - t0 < 2500); /* far below its 5000 ms */
    CHECK(self, wait_down(self, r1, AMB_NONE) == AMB_ATOM_SHUTDOWN);
    amb_term st;
    CHECK(self, kid(self, sup, A("defiant"), &st) && st == AMB_ATOM_UNDEFINED);
    stop_sup(self, sup);
}

AMB_TEST(shutdown_timeout_kills_a_child_that_ignores_shutdown_after_the_timeout)
{
    run_both(timeout_body, NULL);
}

static void brutal_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    stoplog stops = {0};
    wk w = {0};
    w.trap = w.ignore_shutdown = true;
    w.log = &stops;
    amb_child_spec cs = wspec(A("w"), &w, AMB_PERMANENT, AMB_SHUTDOWN_BRUTAL_KILL);
    amb_pid sup = start_sup(self, AMB_ONE_FOR_ONE, 3, 5000, &cs, 1);
    amb_term p, r;
    CHECK(self, kid(self, sup, A("w"), &p));
    CHECK_OK(self, amb_monitor(self, p, &r));
    int64_t t0 = amb_now_ms();
    CHECK_OK(self, amb_sup_terminate_child(self, sup, A("w")));
    CHECK(self, amb_now_ms() - t0 < 2000);
    CHECK_EQ(self, log_len(&stops), 1); /* gone when the call returned */
    CHECK(self, wait_down(self, r, AMB_NONE) == AMB_ATOM_KILLED);
    stop_sup(self, sup);
}

AMB_TEST(brutal_kill_kills_at_once)
{
    run_both(brutal_body, NULL);
}

/* infinity: the supervisor waits as long as the child takes. A helper
 * makes the call; the child holds its end until told `go`. */
typedef struct inf_case {
    amb_pid sup, tester;
} inf_case;

static void terminator_main(amb_proc *self, void *arg)
{
    inf_case *ic = arg;
    CHECK_OK(self, amb_sup_terminate_child(self, ic->sup, A("slow")));
    CHECK_OK(self, amb_send(self, ic->tester, A("terminated")));
}

static void infinity_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    stoplog stops = {0};
    wk w = {0};
    w.trap = w.slow_shutdown = true;
    w.observer = amb_self(self);
    w.log = &stops;
    amb_child_spec cs = wspec(A("slow"), &w, AMB_PERMANENT, AMB_SHUTDOWN_INFINITY);
    inf_case ic = {start_sup(self, AMB_ONE_FOR_ONE, 3, 5000, &cs, 1), amb_self(self)};
    amb_pid child = wait_up(self, 0);
    CHECK_OK(self, amb_spawn(self, terminator_main, &ic, NULL));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{stopping,0}"));
    /* The child has the shutdown and holds on: the call has not returned. */
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive_match(self, 0, NULL, "terminated"));
    CHECK(self, amb_is_process_alive(self, child));
    CHECK_OK(self, amb_send(self, child, A("go")));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "terminated"));
    CHECK_EQ(self, log_len(&stops), 1);
    stop_sup(self, ic.sup);
}

AMB_TEST(shutdown_infinity_waits_for_the_child)
{
    run_both(infinity_body, NULL);
}

/* ===========================================================================
 * Management calls
 * ======================================================================== */

static void management_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    amb_heap *h = amb_proc_heap(self);
    wk w[4] = {{0}};
    wk_init(w, 4, amb_self(self), NULL);
    amb_term id0 = amb_pack(h, "{w,0}"), id1 = amb_pack(h, "{w,1}");
    amb_term id2 = amb_pack(h, "<<\"w2\">>"), id3 = amb_pack(h, "{w,3}");
    amb_child_spec c0 = wspec(id0, &w[0], AMB_PERMANENT, 1000);
    /* Intensity beyond reach: a child whose restarts keep failing is
     * retried at full speed below. */
    amb_pid sup = start_sup(self, AMB_ONE_FOR_ONE, 1000000000, 10000, &c0, 1);
    amb_pid p0 = wait_up(self, 0), p1, p;

    /* start_child: new, already started, already present. */
    amb_child_spec c1 = wspec(id1, &w[1], AMB_TRANSIENT, 1000);
    CHECK_OK(self, amb_sup_start_child(self, sup, &c1, &p1, NULL));
    CHECK(self, p1 == wait_up(self, 1));
    p = AMB_NONE;
    CHECK_RC(self, AMB_EEXIST, amb_sup_start_child(self, sup, &c1, &p, NULL));
    CHECK(self, p == p1);
    CHECK_OK(self, amb_sup_terminate_child(self, sup, id1));
    CHECK(self, !amb_is_process_alive(self, p1));
    CHECK_RC(self, AMB_EPRESENT, amb_sup_start_child(self, sup, &c1, NULL, NULL));
    amb_term st;
    CHECK(self, kid(self, sup, id1, &st) && st == AMB_ATOM_UNDEFINED);

    /* restart_child / delete_child on stopped, running, unknown. */
    CHECK_OK(self, amb_sup_terminate_child(self, sup, id1)); /* not running: 0 */
    CHECK_OK(self, amb_sup_restart_child(self, sup, id1, &p, NULL));
    CHECK(self, p == wait_up(self, 1) && p != p1);
    CHECK_RC(self, AMB_ERUNNING, amb_sup_restart_child(self, sup, id1, NULL, NULL));
    CHECK_RC(self, AMB_ERUNNING, amb_sup_delete_child(self, sup, id1));
    CHECK_OK(self, amb_sup_terminate_child(self, sup, id1));
    CHECK_OK(self, amb_sup_delete_child(self, sup, id1));
    CHECK_RC(self, AMB_ENOTFOUND, amb_sup_delete_child(self, sup, id1));
    CHECK_RC(self, AMB_ENOTFOUND, amb_sup_restart_child(self, sup, id1, NULL, NULL));
    CHECK_RC(self, AMB_ENOTFOUND, amb_sup_terminate_child(self, sup, A("nobody")));

    /* ignore: kept as a spec without a process (restart_child says ignore
     * again while the start ignores). */
    atomic_store(&w[2].ignore_starts, 2);
    amb_child_spec c2 = wspec(id2, &w[2], AMB_PERMANENT, 1000);
    CHECK_RC(self, AMB_EIGNORE, amb_sup_start_child(self, sup, &c2, NULL, NULL));
    CHECK(self, kid(self, sup, id2, &st) && st == AMB_ATOM_UNDEFINED);
    CHECK_RC(self, AMB_EIGNORE, amb_sup_restart_child(self, sup, id2, NULL, NULL));
    CHECK_OK(self, amb_sup_restart_child(self, sup, id2, &p, NULL));
    CHECK(self, p == wait_up(self, 2));

    /* A start that fails: AMB_EINIT, nothing kept; a restart that fails. */
    atomic_store(&w[3].fail_starts, 1);
    amb_child_spec c3 = wspec(id3, &w[3], AMB_PERMANENT, 1000);
    CHECK_RC(self, AMB_EINIT, amb_sup_start_child(self, sup, &c3, NULL, NULL));
    CHECK(self, !kid(self, sup, id3, &st));
    /* A temporary child that ignores is not kept (OTP). */
    atomic_store(&w[3].ignore_starts, 1);
    amb_child_spec c3t = wspec(id3, &w[3], AMB_TEMPORARY, 1000);
    CHECK_RC(self, AMB_EIGNORE, amb_sup_start_child(self, sup, &c3t, NULL, NULL));
    CHECK(self, !kid(self, sup, id3, &st));

    /* restarting: a crashed child whose restarts keep failing. */
    atomic_store(&w[0].fail_always, true);
    CHECK_OK(self, amb_send(self, p0, A("crash")));
    WAIT_UNTIL(self, kid(self, sup, id0, &st) && st == A("restarting"));
    CHECK_RC(self, AMB_ERESTARTING, amb_sup_restart_child(self, sup, id0, NULL, NULL));
    CHECK_RC(self, AMB_ERESTARTING, amb_sup_delete_child(self, sup, id0));
    CHECK_RC(self, AMB_EPRESENT, amb_sup_start_child(self, sup, &c0, NULL, NULL));
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 2 && n.active == 1 && n.workers == 2 && n.supervisors == 0);
    atomic_store(&w[0].fail_always, false);
    CHECK(self, wait_up(self, 0) != p0);
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 2 && n.active == 2);

    /* which_children: newest first (OTP), ids as given, types. */
    amb_term list;
    CHECK_OK(self, amb_sup_which_children(self, sup, &list));
    size_t len = 0;
    CHECK_OK(self, amb_list_length(list, &len));
    CHECK_EQ(self, len, 2);
    CHECK(self, amb_equal(amb_tuple_elem(amb_list_head(list), 0), id2));
    CHECK(self, amb_equal(amb_tuple_elem(amb_list_head(amb_list_tail(list)), 0), id0));
    CHECK(self, amb_tuple_elem(amb_list_head(list), 2) == A("worker"));
    CHECK(self, amb_tuple_elem(amb_list_head(list), 3) == AMB_NIL);

    /* Bad arguments. */
    amb_child_spec bad = c1;
    bad.start = NULL;
    CHECK_RC(self, AMB_EBADARG, amb_sup_start_child(self, sup, &bad, NULL, NULL));
    bad = c1;
    bad.restart = (amb_restart)7;
    CHECK_RC(self, AMB_EBADARG, amb_sup_start_child(self, sup, &bad, NULL, NULL));
    bad = c1;
    bad.shutdown_ms = -5;
    CHECK_RC(self, AMB_EBADARG, amb_sup_start_child(self, sup, &bad, NULL, NULL));
    bad = c1;
    bad.type = (amb_child_type)3;
    CHECK_RC(self, AMB_EBADARG, amb_sup_start_child(self, sup, &bad, NULL, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_sup_start_child(self, sup, NULL, NULL, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_sup_which_children(self, sup, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_sup_count_children(self, sup, NULL));
    /* A dynamic supervisor's call on a static one. */
    CHECK_RC(self, AMB_ENOTSUP, amb_dynsup_terminate_child(self, sup, p0));

    stop_sup(self, sup);
    CHECK_RC(self, AMB_ENOPROC, amb_sup_which_children(self, sup, &list));
    CHECK_RC(self, AMB_ENOPROC, amb_sup_start_child(self, sup, &c1, NULL, NULL));
    CHECK_RC(self, AMB_ENOPROC, amb_sup_terminate_child(self, sup, id0));
    CHECK_RC(self, AMB_ENOPROC, amb_sup_count_children(self, A("no_such_sup"), &n));
}

AMB_TEST(management_calls_and_their_errors)
{
    run_both(management_body, NULL);
}

static void bad_spec_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w = {0};
    amb_child_spec cs[2] = {wspec(A("a"), &w, AMB_PERMANENT, 1000),
                            wspec(A("a"), &w, AMB_PERMANENT, 1000)};
    amb_sup_spec spec = {{AMB_ONE_FOR_ONE, 3, 5000}, cs, 2};
    amb_pid sup = AMB_NONE;
    CHECK_RC(self, AMB_EBADARG,
             amb_sup_start_link(self, &spec, NULL, &sup, NULL)); /* dup */
    spec.nchildren = 1;
    spec.flags.intensity = AMB_NO_RESTARTS - 1;
    CHECK_RC(self, AMB_EBADARG, amb_sup_start_link(self, &spec, NULL, &sup, NULL));
    spec.flags.intensity = 3;
    static const int64_t bad_periods[] = {-1, AMB_INFINITY - 1, AMB_TIMEOUT_MAX + 1,
                                          INT64_MAX};
    for (size_t i = 0; i < AMB_COUNTOF(bad_periods); i++) {
        spec.flags.period_ms = bad_periods[i];
        CHECK_RC(self, AMB_EBADARG, amb_sup_start_link(self, &spec, NULL, &sup, NULL));
    }
    spec.flags.period_ms = 5000;
    /* A bad shutdown time: anything but 1 ..= AMB_TIMEOUT_MAX and the
     * AMB_SHUTDOWN_* rules. */
    static const int64_t bad_shutdowns[] = {-3, AMB_TIMEOUT_MAX + 1, INT64_MIN};
    for (size_t i = 0; i < AMB_COUNTOF(bad_shutdowns); i++) {
        cs[0].shutdown_ms = bad_shutdowns[i];
        CHECK_RC(self, AMB_EBADARG, amb_sup_start_link(self, &spec, NULL, &sup, NULL));
    }
    cs[0].shutdown_ms = 1000;
    spec.flags.strategy = (amb_sup_strategy)9;
    CHECK_RC(self, AMB_EBADARG, amb_sup_start_link(self, &spec, NULL, &sup, NULL));
    spec.flags.strategy = AMB_ONE_FOR_ONE;
    spec.children = NULL;
    CHECK_RC(self, AMB_EBADARG, amb_sup_start_link(self, &spec, NULL, &sup, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_sup_start_link(self, NULL, NULL, &sup, NULL));
    CHECK(self, sup == AMB_NONE);
    CHECK_EQ(self, atomic_load(&w.starts), 0);
    /* No children at all is fine; a name is honoured. */
    spec.nchildren = 0;
    amb_gen_opts o = {0};
    o.name = A("empty_sup");
    CHECK_OK(self, amb_sup_start_link(self, &spec, &o, &sup, NULL));
    amb_pid named;
    CHECK_OK(self, amb_whereis(self, A("empty_sup"), &named));
    CHECK(self, named == sup);
    CHECK_RC(self, AMB_EEXIST, amb_sup_start_link(self, &spec, &o, NULL, NULL));
    amb_sup_counts n = {9, 9, 9, 9};
    CHECK_OK(self, amb_sup_count_children(self, A("empty_sup"), &n));
    CHECK(self, n.specs == 0 && n.active == 0 && n.workers == 0 && n.supervisors == 0);
    stop_sup(self, sup);
}

AMB_TEST(start_link_rejects_bad_specs_and_takes_a_name)
{
    run_both(bad_spec_body, NULL);
}

/* ===========================================================================
 * A failed start in init
 * ======================================================================== */

static void init_failure_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    stoplog stops = {0};
    wk w[3] = {{0}};
    amb_child_spec cs[3];
    wk_init(w, 3, AMB_NONE, &stops);
    for (int i = 0; i < 3; i++) {
        cs[i] = wspec(A(i == 0 ? "a" : i == 1 ? "b" : "c"), &w[i], AMB_PERMANENT, 1000);
    }
    atomic_store(&w[1].fail_starts, 1);
    amb_sup_spec spec = {{AMB_ONE_FOR_ONE, 3, 5000}, cs, 3};
    amb_term reason = AMB_NONE;
    amb_pid sup = AMB_NONE;
    CHECK_RC(self, AMB_EINIT, amb_sup_start_link(self, &spec, NULL, &sup, &reason));
    CHECK_TEXT(self, reason, "{shutdown,{failed_to_start_child,b,no_luck}}");
    CHECK_EQ(self, atomic_load(&w[0].starts), 1);
    CHECK_EQ(self, atomic_load(&w[2].starts), 0);
    CHECK_EQ(self, log_len(&stops), 1); /* a was stopped before the return */
    CHECK_EQ(self, log_at(&stops, 0), 0);
    /* The caller was unlinked first: no EXIT comes. */
    CHECK(self, amb_receive(self, 0, &(amb_term){0}) == AMB_ETIMEDOUT);

    /* A start function that gives no reason: {error, 'AMB_E...'}. */
    atomic_store(&w[1].fail_starts, 0);
    atomic_store(&w[2].ignore_starts, 1); /* and ignore is no failure */
    amb_child_spec gs[2] = {cs[2],
                            {A("g"), amb_gen_child_start, NULL, AMB_PERMANENT, 0, 0}};
    spec.children = gs;
    spec.nchildren = 2;
    CHECK_RC(self, AMB_EINIT, amb_sup_start_link(self, &spec, NULL, &sup, &reason));
    CHECK_TEXT(self, reason,
               "{shutdown,{failed_to_start_child,g,{error,'AMB_EBADARG'}}}");
}

AMB_TEST(start_failure_of_the_second_child_stops_the_first)
{
    run_both(init_failure_body, NULL);
}

/* ===========================================================================
 * Nested trees
 * ======================================================================== */

static void nested_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    stoplog stops = {0};
    wk w[4] = {{0}};
    amb_child_spec leaves[4];
    wk_init(w, 4, amb_self(self), &stops);
    for (int i = 0; i < 4; i++) {
        leaves[i] = wspec(AMB_SMALL(i), &w[i], AMB_PERMANENT, 1000);
    }
    amb_sup_spec s1 = {{AMB_ONE_FOR_ONE, 3, 5000}, &leaves[0], 2};
    amb_sup_spec s2 = {{AMB_ONE_FOR_ALL, 3, 5000}, &leaves[2], 2};
    amb_child_spec top_cs[2] = {{A("s1"), sup_child_start, &s1, AMB_PERMANENT,
                                 AMB_SHUTDOWN_DEFAULT, AMB_SUPERVISOR},
                                {A("s2"), sup_child_start, &s2, AMB_PERMANENT,
                                 AMB_SHUTDOWN_INFINITY, AMB_SUPERVISOR}};
    amb_pid top = start_sup(self, AMB_ONE_FOR_ONE, 3, 5000, top_cs, 2);
    amb_pid leaf[4];
    for (int i = 0; i < 4; i++)
        leaf[i] = wait_up(self, i);
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, top, &n));
    CHECK(self, n.specs == 2 && n.active == 2 && n.supervisors == 2 && n.workers == 0);
    amb_term sups[2];
    CHECK_EQ(self, kids(self, top, sups, 2), 2);
    amb_term list;
    CHECK_OK(self, amb_sup_which_children(self, top, &list));
    CHECK(self, amb_tuple_elem(amb_list_head(list), 2) == A("supervisor"));

    /* A crash deep in s2 (one_for_all) restarts both its leaves, nothing
     * else. */
    CHECK_OK(self, amb_send(self, leaf[3], A("crash")));
    amb_pid n2 = wait_up(self, 2), n3 = wait_up(self, 3);
    CHECK(self, n2 != leaf[2] && n3 != leaf[3]);
    amb_term sups2[2];
    CHECK_EQ(self, kids(self, top, sups2, 2), 2);
    CHECK(self, sups2[0] == sups[0] && sups2[1] == sups[1]);
    CHECK(self,
          amb_is_process_alive(self, leaf[0]) && amb_is_process_alive(self, leaf[1]));
    CHECK_EQ(self, log_len(&stops), 2); /* 3 crashed, 2 was stopped */

    /* The whole tree stops depth-first in reverse: s2's leaves, then s1's. */
    stop_sup(self, top);
    CHECK_EQ(self, log_len(&stops), 6);
    int want[4] = {3, 2, 1, 0};
    for (int i = 0; i < 4; i++)
        CHECK_EQ(self, log_at(&stops, 2 + i), want[i]);
}

AMB_TEST(nested_trees_restart_locally_and_stop_depth_first)
{
    run_both(nested_body, NULL);
}

/* ===========================================================================
 * gen_server children through amb_gen_child_start
 * ======================================================================== */

static amb_gen_ret echo_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    if (req == A("crash"))
        return amb_gen_stop_reply(A("crashed"), AMB_ATOM_OK);
    return amb_gen_reply(req);
}

static const amb_gen_server echo_cb = {.name = "echo", .handle_call = echo_call};

static void gen_child_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    amb_gen_child g = {&echo_cb, NULL, A("sup_echo")};
    amb_child_spec cs = {A("echo"), amb_gen_child_start, &g, AMB_PERMANENT,
                         0,         AMB_WORKER};
    amb_pid sup = start_sup(self, AMB_ONE_FOR_ONE, 3, 5000, &cs, 1);
    amb_term reply, p1, p2;
    CHECK_OK(self,
             amb_gen_server_call(self, A("sup_echo"), A("hi"), DEADLINE_MS, &reply));
    CHECK(self, reply == A("hi"));
    CHECK(self, kid(self, sup, A("echo"), &p1));
    CHECK_OK(self,
             amb_gen_server_call(self, A("sup_echo"), A("crash"), DEADLINE_MS, &reply));
    WAIT_UNTIL(self, kid(self, sup, A("echo"), &p2) && amb_type_of(p2) == AMB_T_PID &&
                         p2 != p1);
    CHECK_OK(self,
             amb_gen_server_call(self, A("sup_echo"), A("again"), DEADLINE_MS, &reply));
    CHECK(self, reply == A("again"));
    /* A second child under the same name: already_started. */
    amb_child_spec dup = cs;
    dup.id = A("echo2");
    CHECK_RC(self, AMB_EINIT, amb_sup_start_child(self, sup, &dup, NULL, NULL));
    stop_sup(self, sup);
    CHECK(self, !amb_is_process_alive(self, p2));
}

AMB_TEST(gen_server_children_are_restarted_under_their_name)
{
    run_both(gen_child_body, NULL);
}

/* ===========================================================================
 * Restart storm: memory back to baseline
 * ======================================================================== */

static void storm_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    storm st = {0};
    st.observer = amb_self(self);
    st.limit = STORM_N;
    wk other = {0};
    amb_child_spec cs[2] = {wspec(A("other"), &other, AMB_PERMANENT, 1000),
                            {amb_pack(amb_proc_heap(self), "{storm,\"child\"}"),
                             storm_start, &st, AMB_PERMANENT, AMB_SHUTDOWN_BRUTAL_KILL,
                             AMB_WORKER}};
    amb_pid sup = start_sup(self, AMB_REST_FOR_ONE, STORM_N * 2, 60000, cs, 2);
    /* Warm up (the first restart grows what a restart needs once). */
    amb_term k[2];
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(self, kids(self, sup, k, 2), 2);
        CHECK_OK(self, amb_send(self, k[1], A("crash")));
        WAIT_UNTIL(self, kids(self, sup, k, 2) == 2 && atomic_load(&st.starts) == 2 + i);
    }
    amb_proc_info base, after;
    CHECK_OK(self, amb_process_info(self, sup, &base));
    atomic_store(&st.starts, 0);
    atomic_store(&st.armed, true);
    CHECK_EQ(self, kids(self, sup, k, 2), 2);
    CHECK_OK(self, amb_send(self, k[1], A("crash")));
    CHECK_OK(self, amb_receive_match(self, 120000, NULL, "storm_done"));
    CHECK_EQ(self, atomic_load(&st.starts), STORM_N);
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.active == 2 && n.specs == 2);
    CHECK_OK(self, amb_process_info(self, sup, &after));
    CHECK(self, after.memory <= base.memory + 4096);
    CHECK(self, after.heap_size <= base.heap_size + 4096);
    CHECK_EQ(self, after.links, base.links);
    CHECK_EQ(self, after.monitors, 0);
    CHECK_EQ(self, after.message_queue_len, 0);
    stop_sup(self, sup);
}

AMB_TEST(restart_storm_leaves_supervisor_memory_at_baseline)
{
    run_in(2, storm_body, NULL);
}

/* ===========================================================================
 * Id churn: adding and deleting children with boxed ids for ever uses
 * bounded memory (each id lives on a heap its record owns). Measured as the
 * live bytes of the test allocator (amb_test.h).
 * ======================================================================== */

static void churn_cycles(amb_proc *self, amb_pid sup, wk *w, int from, int to)
{
    amb_heap *h = amb_proc_heap(self);
    for (int i = from; i < to; i++) {
        amb_heap_mark m = amb_heap_save(h);
        amb_term id = amb_pack(h, "{churn,<<\"a binary id of some length\">>,~i}", i);
        amb_child_spec c = wspec(id, w, AMB_PERMANENT, 1000);
        CHECK_OK(self, amb_sup_start_child(self, sup, &c, NULL, NULL));
        CHECK_OK(self, amb_sup_terminate_child(self, sup, id));
        CHECK_OK(self, amb_sup_delete_child(self, sup, id));
        amb_heap_rewind(h, m);
    }
}

static void churn_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w = {0};
    amb_pid sup = start_sup(self, AMB_ONE_FOR_ONE, 3, 5000, NULL, 0);
    churn_cycles(self, sup, &w, 0, CHURN_N / 10); /* warm every cache up */
    amb_proc_info base, after;
    CHECK_OK(self, amb_process_info(self, sup, &base));
    int64_t live0 = amb_test_alloc_now().live_bytes;
    churn_cycles(self, sup, &w, CHURN_N / 10, CHURN_N);
    int64_t grown = amb_test_alloc_now().live_bytes - live0;
    CHECK_OK(self, amb_process_info(self, sup, &after));
    CHECK(self, grown < 256 * 1024); /* a leaked id heap per cycle: megabytes */
    CHECK(self, after.memory <= base.memory + 4096);
    CHECK_EQ(self, atomic_load(&w.starts), CHURN_N);
    stop_sup(self, sup);
}

AMB_TEST(id_churn_leaves_allocated_memory_at_baseline)
{
    run_in(2, churn_body, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(one_for_one_restarts_only_the_child_that_crashed),
    AMB_TEST_ENTRY(one_for_all_restarts_every_child_stopping_the_others_in_reverse),
    AMB_TEST_ENTRY(rest_for_one_restarts_the_child_and_those_started_after_it),
    AMB_TEST_ENTRY(intensity_exceeded_at_exactly_max_plus_one_restarts),
    AMB_TEST_ENTRY(intensity_zero_gives_up_at_the_first_crash),
    AMB_TEST_ENTRY(zero_intensity_and_period_are_otps_3_restarts_in_5000_ms),
    AMB_TEST_ENTRY(intensity_not_exceeded_when_restarts_are_spread_out),
    AMB_TEST_ENTRY(failed_restarts_are_retried_and_count_toward_intensity),
    AMB_TEST_ENTRY(escalation_through_three_levels),
    AMB_TEST_ENTRY(permanent_transient_temporary_on_normal_shutdown_and_abnormal_ends),
    AMB_TEST_ENTRY(parent_exit_stops_children_in_reverse_start_order),
    AMB_TEST_ENTRY(gen_server_stop_stops_children_in_reverse_and_ends_with_its_reason),
    AMB_TEST_ENTRY(exit_from_a_stranger_is_ignored),
    AMB_TEST_ENTRY(
        shutdown_timeout_kills_a_child_that_ignores_shutdown_after_the_timeout),
    AMB_TEST_ENTRY(brutal_kill_kills_at_once),
    AMB_TEST_ENTRY(shutdown_infinity_waits_for_the_child),
    AMB_TEST_ENTRY(management_calls_and_their_errors),
    AMB_TEST_ENTRY(start_link_rejects_bad_specs_and_takes_a_name),
    AMB_TEST_ENTRY(start_failure_of_the_second_child_stops_the_first),
    AMB_TEST_ENTRY(nested_trees_restart_locally_and_stop_depth_first),
    AMB_TEST_ENTRY(gen_server_children_are_restarted_under_their_name),
    AMB_TEST_ENTRY(restart_storm_leaves_supervisor_memory_at_baseline),
    AMB_TEST_ENTRY(id_churn_leaves_allocated_memory_at_baseline))

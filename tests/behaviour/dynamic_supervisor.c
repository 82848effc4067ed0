/*
 * tests/behaviour/dynamic_supervisor.c - Elixir's DynamicSupervisor
 * (supervisor.h): start / terminate / which / count, max_children, restart
 * rules per type, intensity, ignore and failed starts, children linked to
 * the supervisor and never to the caller, concurrent shutdown, a parent's
 * exit, and a restart storm whose supervisor memory returns to baseline.
 *
 * Harness as tests/behaviour/supervisor.c (sup_test.h): the first process
 * traps exits, workers announce {up, Tag, Pid} and log their end; waits
 * are on observations with deadlines.
 */

#define DEADLINE_MS 10000

#ifdef AMB_TSAN
#define STORM_N 5000
#else
#define STORM_N 100000
#endif

#include "sup_test.h"

static amb_term A(const char *name)
{
    return amb_atom(name);
}

static amb_pid start_dynsup(amb_proc *self, int intensity, int64_t period_ms, size_t max)
{
    amb_dynsup_opts o = {intensity, period_ms, max};
    amb_pid sup = AMB_NONE;
    CHECK_OK(self, amb_dynsup_start_link(self, &o, NULL, &sup, NULL));
    return sup;
}

static void stop_sup(amb_proc *self, amb_pid sup)
{
    CHECK_OK(self, amb_exit(self, sup, AMB_ATOM_SHUTDOWN));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
}

static amb_pid start_kid(amb_proc *self, amb_pid sup, wk *w, amb_restart r,
                         int64_t shutdown)
{
    amb_child_spec s = wspec(AMB_ATOM_UNDEFINED, w, r, shutdown);
    amb_pid pid = AMB_NONE;
    CHECK_OK(self, amb_dynsup_start_child(self, sup, &s, &pid, NULL));
    CHECK(self, wait_up(self, w->tag) == pid);
    return pid;
}

/* ===========================================================================
 * The calls
 * ======================================================================== */

static void calls_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    stoplog stops = {0};
    wk w[3] = {{0}};
    wk_init(w, 3, amb_self(self), &stops);
    amb_pid sup = AMB_NONE;
    CHECK_OK(self, amb_dynsup_start_link(self, NULL, NULL, &sup, NULL));
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 0 && n.active == 0);
    amb_pid p[3];
    for (int i = 0; i < 3; i++)
        p[i] = start_kid(self, sup, &w[i], AMB_PERMANENT, 1000);
    CHECK(self, p[0] != p[1] && p[1] != p[2]);

    amb_term list;
    CHECK_OK(self, amb_sup_which_children(self, sup, &list));
    size_t len = 0, seen = 0;
    CHECK_OK(self, amb_list_length(list, &len));
    CHECK_EQ(self, len, 3);
    for (; amb_is_cons(list); list = amb_list_tail(list)) {
        amb_term e = amb_list_head(list);
        CHECK(self, amb_tuple_elem(e, 0) == AMB_ATOM_UNDEFINED);
        CHECK(self, amb_tuple_elem(e, 2) == A("worker"));
        for (int i = 0; i < 3; i++)
            seen |= (size_t)(amb_tuple_elem(e, 1) == p[i]) << i;
    }
    CHECK_EQ(self, seen, 7);
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 3 && n.active == 3 && n.workers == 3 && n.supervisors == 0);

    /* terminate_child: stopped by its rule when the call returns, forgotten. */
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, p[1], &ref));
    CHECK_OK(self, amb_dynsup_terminate_child(self, sup, p[1]));
    CHECK_EQ(self, log_len(&stops), 1);
    CHECK(self, wait_down(self, ref, AMB_NONE) == AMB_ATOM_SHUTDOWN);
    CHECK_RC(self, AMB_ENOTFOUND, amb_dynsup_terminate_child(self, sup, p[1]));
    CHECK_RC(self, AMB_ENOTFOUND, amb_dynsup_terminate_child(self, sup, amb_self(self)));
    CHECK_RC(self, AMB_EBADARG, amb_dynsup_terminate_child(self, sup, A("p")));
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 2 && n.active == 2);
    CHECK(self, amb_receive(self, 0, &(amb_term){0}) == AMB_ETIMEDOUT); /* no restart */

    /* ignore: nothing kept; a failed start: AMB_EINIT, nothing kept. */
    wk x = {0};
    x.tag = 9;
    atomic_store(&x.ignore_starts, 1);
    amb_child_spec xs = wspec(AMB_ATOM_UNDEFINED, &x, AMB_PERMANENT, 1000);
    CHECK_RC(self, AMB_EIGNORE, amb_dynsup_start_child(self, sup, &xs, NULL, NULL));
    atomic_store(&x.fail_starts, 1);
    CHECK_RC(self, AMB_EINIT, amb_dynsup_start_child(self, sup, &xs, NULL, NULL));
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 2 && n.active == 2);

    /* Bad arguments; a static supervisor's call here. */
    amb_child_spec bad = xs;
    bad.start = NULL;
    CHECK_RC(self, AMB_EBADARG, amb_dynsup_start_child(self, sup, &bad, NULL, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_dynsup_start_child(self, sup, NULL, NULL, NULL));
    CHECK_RC(self, AMB_ENOTSUP, amb_sup_delete_child(self, sup, A("x")));
    amb_dynsup_opts o = {-2, 0, 0};
    CHECK_RC(self, AMB_EBADARG, amb_dynsup_start_link(self, &o, NULL, NULL, NULL));
    o = (amb_dynsup_opts){0, -1, 0};
    CHECK_RC(self, AMB_EBADARG, amb_dynsup_start_link(self, &o, NULL, NULL, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_dynsup_start_link(NULL, NULL, NULL, NULL, NULL));

    stop_sup(self, sup);
    CHECK_EQ(self, log_len(&stops), 3);
    CHECK_RC(self, AMB_ENOPROC, amb_dynsup_start_child(self, sup, &xs, NULL, NULL));
}

AMB_TEST(dynsup_start_terminate_which_count)
{
    run_both(calls_body, NULL);
}

static void max_children_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w[3] = {{0}};
    wk_init(w, 3, amb_self(self), NULL);
    amb_pid sup = start_dynsup(self, 3, 5000, 2);
    amb_pid p0 = start_kid(self, sup, &w[0], AMB_PERMANENT, 1000);
    start_kid(self, sup, &w[1], AMB_PERMANENT, 1000);
    amb_child_spec s = wspec(AMB_ATOM_UNDEFINED, &w[2], AMB_PERMANENT, 1000);
    CHECK_RC(self, AMB_ESYSLIMIT, amb_dynsup_start_child(self, sup, &s, NULL, NULL));
    CHECK_EQ(self, atomic_load(&w[2].starts), 0);
    /* A restart keeps the count. */
    CHECK_OK(self, amb_send(self, p0, A("crash")));
    CHECK(self, wait_up(self, 0) != p0);
    CHECK_RC(self, AMB_ESYSLIMIT, amb_dynsup_start_child(self, sup, &s, NULL, NULL));
    amb_term k[2];
    CHECK_EQ(self, kids(self, sup, k, 2), 2);
    CHECK_OK(self, amb_dynsup_terminate_child(self, sup, k[0]));
    start_kid(self, sup, &w[2], AMB_PERMANENT, 1000);
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 2 && n.active == 2);
    stop_sup(self, sup);
}

AMB_TEST(dynsup_max_children)
{
    run_both(max_children_body, NULL);
}

/* ===========================================================================
 * Restarts
 * ======================================================================== */

static void restarts_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w[5] = {{0}};
    wk_init(w, 5, amb_self(self), NULL);
    amb_pid sup = start_dynsup(self, 100, 60000, 0);
    amb_pid perm = start_kid(self, sup, &w[0], AMB_PERMANENT, 1000);
    amb_pid temp = start_kid(self, sup, &w[1], AMB_TEMPORARY, 1000);
    amb_pid tr_normal = start_kid(self, sup, &w[2], AMB_TRANSIENT, 1000);
    amb_pid tr_crash = start_kid(self, sup, &w[3], AMB_TRANSIENT, 1000);
    amb_pid perm_normal = start_kid(self, sup, &w[4], AMB_PERMANENT, 1000);

    CHECK_OK(self, amb_send(self, perm, A("crash")));
    amb_pid perm2 = wait_up(self, 0);
    CHECK(self, perm2 != perm);
    CHECK_OK(self, amb_send(self, perm_normal, A("normal")));
    CHECK(self, wait_up(self, 4) != perm_normal);
    CHECK_OK(self, amb_send(self, tr_crash, A("crash")));
    CHECK(self, wait_up(self, 3) != tr_crash);
    /* Not restarted, and forgotten: temporary on a crash, transient on
     * a normal end. */
    CHECK_OK(self, amb_send(self, temp, A("crash")));
    CHECK_OK(self, amb_send(self, tr_normal, A("shutdown_tuple")));
    amb_sup_counts n;
    WAIT_UNTIL(self, amb_sup_count_children(self, sup, &n) == 0 && n.specs == 3);
    CHECK_EQ(self, n.active, 3);
    CHECK(self, amb_receive(self, 0, &(amb_term){0}) == AMB_ETIMEDOUT);
    CHECK_EQ(self, atomic_load(&w[1].starts), 1);
    CHECK_EQ(self, atomic_load(&w[2].starts), 1);
    CHECK_RC(self, AMB_ENOTFOUND, amb_dynsup_terminate_child(self, sup, temp));
    stop_sup(self, sup);
}

AMB_TEST(dynsup_restarts_by_type_and_forgets_temporary_children)
{
    run_both(restarts_body, NULL);
}

static void intensity_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    stoplog stops = {0};
    wk w[2] = {{0}};
    wk_init(w, 2, amb_self(self), &stops);
    amb_pid sup = start_dynsup(self, 1, 60000, 0);
    amb_pid p = start_kid(self, sup, &w[0], AMB_PERMANENT, 1000);
    start_kid(self, sup, &w[1], AMB_PERMANENT, 1000);
    CHECK_OK(self, amb_send(self, p, A("crash")));
    p = wait_up(self, 0);
    CHECK_OK(self, amb_send(self, p, A("crash")));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
    CHECK_EQ(self, log_len(&stops), 3); /* two crashes, then the other */
    CHECK_EQ(self, log_at(&stops, 2), 1);

    /* AMB_NO_RESTARTS: the first crash ends it. */
    memset(&stops, 0, sizeof stops);
    sup = start_dynsup(self, AMB_NO_RESTARTS, 0, 0);
    p = start_kid(self, sup, &w[0], AMB_PERMANENT, 1000);
    CHECK_OK(self, amb_send(self, p, A("crash")));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
    CHECK_EQ(self, log_len(&stops), 1);
}

AMB_TEST(dynsup_intensity_exceeded_stops_everything)
{
    run_both(intensity_body, NULL);
}

/* A restart whose start fails: the child is `restarting` until a retry
 * succeeds. */
static void retry_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w = {0};
    w.observer = amb_self(self);
    amb_pid sup = start_dynsup(self, 1000000000, 10000, 0);
    amb_pid p = start_kid(self, sup, &w, AMB_PERMANENT, 1000);
    atomic_store(&w.fail_always, true);
    CHECK_OK(self, amb_send(self, p, A("crash")));
    amb_term k[1];
    WAIT_UNTIL(self, kids(self, sup, k, 1) == 1 && k[0] == A("restarting"));
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 1 && n.active == 0);
    atomic_store(&w.fail_always, false);
    amb_pid p2 = wait_up(self, 0);
    CHECK_EQ(self, kids(self, sup, k, 1), 1);
    CHECK(self, k[0] == p2);
    stop_sup(self, sup);
}

AMB_TEST(dynsup_retries_a_failed_restart)
{
    run_both(retry_body, NULL);
}

/* ===========================================================================
 * The child is linked to the supervisor, not to the caller
 * ======================================================================== */

typedef struct caller_case {
    amb_pid sup, tester;
    wk *w;
} caller_case;

static void caller_main(amb_proc *self, void *arg)
{
    caller_case *cc = arg;
    amb_child_spec s = wspec(AMB_ATOM_UNDEFINED, cc->w, AMB_PERMANENT, 1000);
    amb_pid child;
    CHECK_OK(self, amb_dynsup_start_child(self, cc->sup, &s, &child, NULL));
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK_EQ(self, pi.links, 0);
    CHECK_OK(self, amb_send(self, cc->tester,
                            amb_pack(amb_proc_heap(self), "{child,~p}", child)));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "done"));
}

static void caller_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w = {0};
    w.observer = amb_self(self);
    caller_case cc = {start_dynsup(self, 3, 5000, 0), amb_self(self), &w};
    amb_pid caller, child;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, caller_main, &cc, &caller, &ref));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{child,~p}", &child));
    CHECK(self, wait_up(self, 0) == child);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, child, &pi));
    CHECK_EQ(self, pi.links, 1); /* the supervisor */
    CHECK_OK(self, amb_send(self, child, A("crash")));
    CHECK(self, wait_up(self, 0) != child); /* restarted by the supervisor */
    CHECK(self, amb_is_process_alive(self, caller));
    CHECK_OK(self, amb_send(self, caller, A("done")));
    CHECK(self, wait_down(self, ref, AMB_NONE) == AMB_ATOM_NORMAL);
    stop_sup(self, cc.sup);
}

AMB_TEST(dynsup_child_is_linked_to_the_supervisor_not_the_caller)
{
    run_both(caller_body, NULL);
}

/* ===========================================================================
 * Shutdown
 * ======================================================================== */

#define SLOW_N     10
#define SLOW_MS    300
#define SLOW_BOUND 1500

/* N children that each ignore shutdown with a 300 ms timeout: all told at
 * once, all killed around 300 ms, not N * 300. */
static void concurrent_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    stoplog stops = {0};
    wk w[SLOW_N + 1] = {{0}};
    amb_pid sup = start_dynsup(self, 3, 5000, 0);
    amb_pid p[SLOW_N + 1];
    wk_init(w, SLOW_N + 1, amb_self(self), &stops);
    for (int i = 0; i <= SLOW_N; i++) {
        w[i].trap = true;
        w[i].ignore_shutdown = i < SLOW_N; /* the last one obeys */
        p[i] = start_kid(self, sup, &w[i], AMB_PERMANENT, SLOW_MS);
    }
    int64_t t0 = amb_now_ms();
    CHECK_OK(self, amb_gen_server_stop(self, sup, AMB_ATOM_SHUTDOWN, AMB_INFINITY));
    int64_t elapsed = amb_now_ms() - t0;
    CHECK(self, elapsed >= SLOW_MS);
    CHECK(self, elapsed < SLOW_BOUND);
    CHECK_EQ(self, log_len(&stops), SLOW_N + 1);
    CHECK_EQ(self, log_at(&stops, 0), SLOW_N); /* the obedient one first */
    for (int i = 0; i <= SLOW_N; i++)
        CHECK(self, !amb_is_process_alive(self, p[i]));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
}

AMB_TEST(dynsup_shutdown_stops_children_concurrently)
{
    run_both(concurrent_body, NULL);
}

/* The parent ends: every child is stopped, the supervisor ends with the
 * parent's reason. */
typedef struct parent_case {
    stoplog stops;
    wk w[3];
    amb_pid tester;
} parent_case;

static void parent_main(amb_proc *self, void *arg)
{
    parent_case *pc = arg;
    amb_pid sup = start_dynsup(self, 3, 5000, 0);
    for (int i = 0; i < 3; i++) {
        amb_child_spec s =
            wspec(AMB_ATOM_UNDEFINED, &pc->w[i], AMB_PERMANENT,
                  i == 0 ? AMB_SHUTDOWN_BRUTAL_KILL : AMB_SHUTDOWN_INFINITY);
        CHECK_OK(self, amb_dynsup_start_child(self, sup, &s, NULL, NULL));
    }
    CHECK_OK(self,
             amb_send(self, pc->tester, amb_pack(amb_proc_heap(self), "{sup,~p}", sup)));
    amb_receive_match(self, AMB_INFINITY, NULL, "never");
}

static void parent_body(amb_proc *self, void *arg)
{
    parent_case *pc = arg;
    memset(pc, 0, sizeof *pc);
    pc->tester = amb_self(self);
    wk_init(pc->w, 3, AMB_NONE, &pc->stops);
    for (int i = 0; i < 3; i++) {
        pc->w[i].trap = i == 1;
    }
    amb_pid parent, sup;
    CHECK_OK(self, amb_spawn(self, parent_main, pc, &parent));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{sup,~p}", &sup));
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, sup, &ref));
    CHECK_OK(self, amb_exit(self, parent, A("bye")));
    CHECK(self, wait_down(self, ref, AMB_NONE) == A("bye"));
    CHECK_EQ(self, log_len(&pc->stops), 3);
}

AMB_TEST(dynsup_parent_exit_stops_every_child)
{
    static parent_case pc;
    run_both(parent_body, &pc);
}

/* ===========================================================================
 * Restart storm and churn: memory back to baseline
 * ======================================================================== */

static void storm_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    storm st = {0};
    st.observer = amb_self(self);
    st.limit = STORM_N;
    amb_pid sup = start_dynsup(self, STORM_N * 2, 60000, 0);
    amb_child_spec s = {AMB_ATOM_UNDEFINED,       storm_start, &st, AMB_PERMANENT,
                        AMB_SHUTDOWN_BRUTAL_KILL, AMB_WORKER};
    wk w = {0};
    w.observer = amb_self(self);
    /* Churn first: start and terminate children (grows the tables once). */
    for (int i = 0; i < 100; i++) {
        amb_pid p = start_kid(self, sup, &w, AMB_TEMPORARY, 1000);
        CHECK_OK(self, amb_dynsup_terminate_child(self, sup, p));
    }
    amb_pid p;
    CHECK_OK(self, amb_dynsup_start_child(self, sup, &s, &p, NULL));
    amb_proc_info base, after;
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK_OK(self, amb_process_info(self, sup, &base));
    for (int i = 0; i < 1000; i++) {
        amb_pid q = start_kid(self, sup, &w, AMB_TEMPORARY, 1000);
        CHECK_OK(self, amb_dynsup_terminate_child(self, sup, q));
    }
    atomic_store(&st.starts, 0);
    atomic_store(&st.armed, true);
    CHECK_OK(self, amb_send(self, p, A("crash")));
    CHECK_OK(self, amb_receive_match(self, 120000, NULL, "storm_done"));
    CHECK_EQ(self, atomic_load(&st.starts), STORM_N);
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 1 && n.active == 1);
    CHECK_OK(self, amb_process_info(self, sup, &after));
    CHECK(self, after.memory <= base.memory + 4096);
    CHECK_EQ(self, after.links, base.links);
    CHECK_EQ(self, after.monitors, 0);
    CHECK_EQ(self, after.message_queue_len, 0);
    stop_sup(self, sup);
}

AMB_TEST(dynsup_restart_storm_and_churn_leave_memory_at_baseline)
{
    run_in(2, storm_body, NULL);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(dynsup_start_terminate_which_count),
              AMB_TEST_ENTRY(dynsup_max_children),
              AMB_TEST_ENTRY(dynsup_restarts_by_type_and_forgets_temporary_children),
              AMB_TEST_ENTRY(dynsup_intensity_exceeded_stops_everything),
              AMB_TEST_ENTRY(dynsup_retries_a_failed_restart),
              AMB_TEST_ENTRY(dynsup_child_is_linked_to_the_supervisor_not_the_caller),
              AMB_TEST_ENTRY(dynsup_shutdown_stops_children_concurrently),
              AMB_TEST_ENTRY(dynsup_parent_exit_stops_every_child),
              AMB_TEST_ENTRY(dynsup_restart_storm_and_churn_leave_memory_at_baseline))

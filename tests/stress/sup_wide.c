/*
 * tests/stress/sup_wide.c - a supervisor and a dynamic supervisor with
 * 100,000 children each (issue 13, item 14): the children are started one
 * by one with start_child, found by id and by pid among all the others
 * (restart one, terminate one, delete one), counted and listed, and the
 * supervisor's shutdown ends every one of them.
 *
 * When each start_child compared the new id with every other and each
 * DOWN of a shutdown scanned every child, this took minutes (quadratic);
 * now it takes seconds, and the CTest timeout bounds it. The assertions
 * are about counts, never times: amb-bench sup_wide measures the speed.
 *
 * The children are gen_servers (handler processes: no stack while idle).
 * Each counts its start and, through an on_exit handler, its end however
 * it ends, so "every child ended" is a number to check.
 */
#include "amb_test.h"

#define DEADLINE_MS 60000

#include "amb_test_rt.h"

#ifdef AMB_TSAN
/* ThreadSanitizer makes each process start and context switch ~100x dearer
 * (20,000 children took 50 s of CPU): it is here for races, not width. */
#define WIDE_N 5000
#else
#define WIDE_N 100000
#endif

typedef struct wide {
    atomic_long started, ended;
} wide;

static void wide_ended(void *ctx)
{
    atomic_fetch_add(&((wide *)ctx)->ended, 1);
}

static amb_gen_ret wide_init(amb_proc *self, void *state, void *arg)
{
    (void)state;
    wide *w = arg;
    if (amb_on_exit(self, wide_ended, w) != 0)
        return amb_gen_fail(AMB_ENOMEM);
    atomic_fetch_add(&w->started, 1);
    return amb_gen_ok();
}

static const amb_gen_server wide_server = {.name = "wide", .init = wide_init};

typedef struct wide_case {
    bool dynamic;
    wide w;
} wide_case;

static amb_term id_of(amb_proc *self, long i)
{
    return amb_pack(amb_proc_heap(self), "{wide,~l}", (int64_t)i);
}

static void check_counts(amb_proc *self, amb_pid sup, size_t specs, size_t active)
{
    amb_sup_counts n = {0};
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK_EQ(self, n.specs, specs);
    CHECK_EQ(self, n.active, active);
    CHECK_EQ(self, n.workers, specs);
    CHECK_EQ(self, n.supervisors, 0);
}

static void wide_body(amb_proc *self, void *arg)
{
    wide_case *wc = arg;
    wide *w = &wc->w;
    amb_heap *h = amb_proc_heap(self);
    amb_trap_exit(self, true);
    amb_gen_child gc = {&wide_server, w, AMB_NONE};
    amb_pid sup = AMB_NONE;
    amb_sup_spec none = {0};
    CHECK_OK(self, wc->dynamic ? amb_dynsup_start_link(self, NULL, NULL, &sup, NULL)
                               : amb_sup_start_link(self, &none, NULL, &sup, NULL));

    /* Start them one by one; keep the middle one's pid. */
    amb_pid mid = AMB_NONE;
    for (long i = 0; i < WIDE_N; i++) {
        amb_heap_mark m = amb_heap_save(h);
        amb_child_spec cs = {id_of(self, i), amb_gen_child_start, &gc, AMB_PERMANENT,
                             1000,           AMB_WORKER};
        amb_pid pid = AMB_NONE;
        int rc = wc->dynamic ? amb_dynsup_start_child(self, sup, &cs, &pid, NULL)
                             : amb_sup_start_child(self, sup, &cs, &pid, NULL);
        amb_heap_rewind(h, m);
        CHECK_OK(self, rc);
        if (i == WIDE_N / 2)
            mid = pid;
    }
    CHECK_EQ(self, atomic_load(&w->started), WIDE_N);
    check_counts(self, sup, WIDE_N, WIDE_N);

    /* which_children: all of them, the newest first. */
    amb_heap_mark m = amb_heap_save(h);
    amb_term list = AMB_NONE;
    size_t len = 0;
    CHECK_OK(self, amb_sup_which_children(self, sup, &list));
    CHECK_OK(self, amb_list_length(list, &len));
    CHECK_EQ(self, len, WIDE_N);
    if (!wc->dynamic)
        CHECK(self,
              amb_equal(amb_tuple_elem(amb_list_head(list), 0), id_of(self, WIDE_N - 1)));
    amb_heap_rewind(h, m);

    /* One child among all the others: restarted when killed, found by id
     * (static) or by pid (dynamic) to be terminated. */
    CHECK_OK(self, amb_exit(self, mid, AMB_ATOM_KILL));
    WAIT_UNTIL(self, atomic_load(&w->started) == WIDE_N + 1);
    check_counts(self, sup, WIDE_N, WIDE_N);
    if (wc->dynamic) {
        amb_pid first = AMB_NONE;
        CHECK_OK(self, amb_sup_which_children(self, sup, &list));
        for (; amb_is_cons(list); list = amb_list_tail(list))
            first = amb_tuple_elem(amb_list_head(list), 1); /* the oldest */
        CHECK_OK(self, amb_dynsup_terminate_child(self, sup, first));
        CHECK_RC(self, AMB_ENOTFOUND, amb_dynsup_terminate_child(self, sup, first));
    } else {
        amb_term id = id_of(self, WIDE_N / 2);
        amb_child_spec again = {id,   amb_gen_child_start, &gc, AMB_PERMANENT,
                                1000, AMB_WORKER};
        CHECK_RC(self, AMB_EEXIST, amb_sup_start_child(self, sup, &again, NULL, NULL));
        CHECK_OK(self, amb_sup_terminate_child(self, sup, id));
        CHECK_OK(self, amb_sup_restart_child(self, sup, id, NULL, NULL));
        CHECK_OK(self, amb_sup_terminate_child(self, sup, id));
        CHECK_OK(self, amb_sup_delete_child(self, sup, id));
        CHECK_RC(self, AMB_ENOTFOUND, amb_sup_delete_child(self, sup, id));
    }
    amb_heap_rewind(h, m);
    check_counts(self, sup, WIDE_N - 1, WIDE_N - 1);

    /* Shutdown: when the stop returns, every child has ended. */
    CHECK_OK(self, amb_gen_server_stop(self, sup, AMB_ATOM_SHUTDOWN, AMB_INFINITY));
    CHECK_EQ(self, atomic_load(&w->ended), atomic_load(&w->started));
}

/* Supervisor reports (the killed child) are expected: not printed. */
static void quiet(void *ctx, const amb_log_event *ev)
{
    (void)ctx;
    (void)ev;
}

static void run_wide(bool dynamic)
{
    static wide_case wc;
    memset(&wc, 0, sizeof wc);
    wc.dynamic = dynamic;
    amb_config cfg = config_of(2);
    cfg.max_processes = (size_t)1 << 18; /* room for every child */
    amb_rt *rt = NULL;
    reset_failure();
    assert_ok(amb_rt_new(&cfg, &rt));
    assert_ok(amb_logger_set_handler(rt, quiet, NULL));
    assert_ok(amb_rt_spawn(rt, wide_body, &wc, NULL));
    int rc = amb_rt_run(rt);
    amb_rt_free(rt);
    assert_ok(rc);
    assert_no_process_failure();
}

AMB_TEST(supervisor_of_100k_children_starts_them_one_by_one_and_shuts_down)
{
    run_wide(false);
}

AMB_TEST(dynamic_supervisor_of_100k_children_starts_them_and_shuts_down)
{
    run_wide(true);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(supervisor_of_100k_children_starts_them_one_by_one_and_shuts_down),
    AMB_TEST_ENTRY(dynamic_supervisor_of_100k_children_starts_them_and_shuts_down))

/*
 * tests/behaviour/supervisor_otp.c - where supervisors and start functions
 * must do exactly what OTP does (issue 13, item 10). The expected
 * values were recorded on an OTP 25.2.3 node (erl on this machine):
 *
 *   - which_children lists the children newest first (reverse start
 *     order): a static supervisor started with [a, b, c] lists [c, b, a];
 *     start_child(d) makes it [d, c, b, a]; deleting b and starting it
 *     again, [b, d, c, a]; a terminated child keeps its place with
 *     `undefined`; a restart (any strategy) keeps the order and drops a
 *     temporary child it stopped. The dynamic supervisor (OTP's
 *     simple_one_for_one and Elixir's DynamicSupervisor leave the order to
 *     their map) follows the same rule, so one rule holds for both.
 *   - count_children of a static supervisor counts as active only children
 *     that are alive (OTP's is_process_alive), also when the EXIT of a dead
 *     one waits behind the call.
 */
#include "amb_test.h"

#define DEADLINE_MS 10000

#include "sup_test.h"

static amb_term A(const char *name)
{
    return amb_atom(name);
}

/* ===========================================================================
 * Item 10: which_children lists the newest child first
 * ======================================================================== */

/* sup's children as which_children lists them, as text: each id with its
 * Child, a pid shown as `pid` ("[{a,pid},{c,undefined}]"). */
static void check_ids(amb_proc *self, amb_term sup, const char *want, const char *file,
                      int line)
{
    amb_term list = AMB_NONE;
    CHECK_OK(self, amb_sup_which_children(self, sup, &list));
    char text[512] = "[", item[128];
    for (; amb_is_cons(list); list = amb_list_tail(list)) {
        amb_term e = amb_list_head(list), c = amb_tuple_elem(e, 1);
        if (amb_type_of(c) == AMB_T_PID)
            c = A("pid");
        amb_term pair = AMB_TUPLE(amb_proc_heap(self), amb_tuple_elem(e, 0), c);
        CHECK_OK(self, amb_print(pair, item, sizeof item, NULL));
        if (text[1] != '\0')
            strcat(text, ",");
        strncat(text, item, sizeof text - strlen(text) - 2);
    }
    strcat(text, "]");
    if (strcmp(text, want) != 0)
        proc_fail(self, file, line, "which_children: got %s, expected %s", text, want);
}
#define CHECK_IDS(self, sup, want) check_ids((self), (sup), (want), __FILE__, __LINE__)

static void static_order_body(amb_proc *self, void *arg)
{
    amb_sup_strategy strategy = *(const amb_sup_strategy *)arg;
    amb_trap_exit(self, true);
    wk w[5] = {{0}};
    wk_init(w, 5, amb_self(self), NULL);
    amb_child_spec cs[3] = {wspec(A("a"), &w[0], AMB_PERMANENT, 1000),
                            wspec(A("b"), &w[1], AMB_PERMANENT, 1000),
                            wspec(A("t"), &w[2], AMB_TEMPORARY, 1000)};
    amb_sup_spec spec = {{strategy, 10, 5000}, cs, 3};
    amb_pid sup = AMB_NONE;
    CHECK_OK(self, amb_sup_start_link(self, &spec, NULL, &sup, NULL));
    for (int i = 0; i < 3; i++)
        wait_up(self, i);
    CHECK_IDS(self, sup, "[{t,pid},{b,pid},{a,pid}]");

    amb_child_spec d = wspec(A("d"), &w[3], AMB_PERMANENT, 1000);
    CHECK_OK(self, amb_sup_start_child(self, sup, &d, NULL));
    wait_up(self, 3);
    CHECK_IDS(self, sup, "[{d,pid},{t,pid},{b,pid},{a,pid}]");

    /* Deleted and added again: the newest. */
    CHECK_OK(self, amb_sup_terminate_child(self, sup, A("b")));
    CHECK_OK(self, amb_sup_delete_child(self, sup, A("b")));
    CHECK_OK(self, amb_sup_start_child(self, sup, &cs[1], NULL));
    amb_pid b = wait_up(self, 1);
    CHECK_IDS(self, sup, "[{b,pid},{d,pid},{t,pid},{a,pid}]");

    /* A child that is not running keeps its place. */
    CHECK_OK(self, amb_sup_terminate_child(self, sup, A("d")));
    CHECK_IDS(self, sup, "[{b,pid},{d,undefined},{t,pid},{a,pid}]");
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 4 && n.active == 3 && n.workers == 4 && n.supervisors == 0);
    CHECK_OK(self, amb_sup_restart_child(self, sup, A("d"), NULL));
    wait_up(self, 3);

    /* A restart keeps the order. a is the oldest, so rest_for_one and
     * one_for_all restart everything and drop the temporary t (OTP's
     * terminate_children); one_for_one restarts a alone. */
    amb_term ref;
    amb_pid a = AMB_NONE;
    CHECK(self, kid(self, sup, A("a"), &a));
    CHECK_OK(self, amb_monitor(self, b, &ref));
    CHECK_OK(self, amb_send(self, a, A("crash")));
    CHECK(self, wait_up(self, 0) != a);
    if (strategy == AMB_ONE_FOR_ONE) {
        CHECK_IDS(self, sup, "[{b,pid},{d,pid},{t,pid},{a,pid}]");
    } else {
        wait_down(self, ref);
        CHECK(self, wait_up(self, 3) != AMB_NONE && wait_up(self, 1) != b);
        CHECK_IDS(self, sup, "[{b,pid},{d,pid},{a,pid}]");
    }
    CHECK_OK(self, amb_exit(self, sup, AMB_ATOM_SHUTDOWN));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
}

AMB_TEST(which_children_lists_static_children_newest_first_one_for_one)
{
    static const amb_sup_strategy s = AMB_ONE_FOR_ONE;
    run_both(static_order_body, (void *)&s);
}

AMB_TEST(which_children_lists_static_children_newest_first_rest_for_one)
{
    static const amb_sup_strategy s = AMB_REST_FOR_ONE;
    run_both(static_order_body, (void *)&s);
}

AMB_TEST(which_children_lists_static_children_newest_first_one_for_all)
{
    static const amb_sup_strategy s = AMB_ONE_FOR_ALL;
    run_both(static_order_body, (void *)&s);
}

static amb_pid dyn_start(amb_proc *self, amb_pid sup, wk *w)
{
    amb_child_spec s = wspec(AMB_ATOM_UNDEFINED, w, AMB_PERMANENT, 1000);
    amb_pid pid = AMB_NONE;
    CHECK_OK(self, amb_dynsup_start_child(self, sup, &s, &pid));
    CHECK(self, wait_up(self, w->tag) == pid);
    return pid;
}

static void dynamic_order_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w[4] = {{0}};
    wk_init(w, 4, amb_self(self), NULL);
    amb_pid sup = AMB_NONE;
    CHECK_OK(self, amb_dynsup_start_link(self, NULL, NULL, &sup, NULL));
    amb_pid p[4];
    for (int i = 0; i < 3; i++)
        p[i] = dyn_start(self, sup, &w[i]);
    /* kids() (sup_test.h) gives them in start order: which_children
     * listed them newest first. */
    amb_term list = AMB_NONE;
    CHECK_OK(self, amb_sup_which_children(self, sup, &list));
    CHECK(self, amb_tuple_elem(amb_list_head(list), 1) == p[2]);
    amb_term k[4];
    CHECK_EQ(self, kids(self, sup, k, 4), 3);
    CHECK(self, k[0] == p[0] && k[1] == p[1] && k[2] == p[2]);

    /* A restarted child keeps its place. */
    CHECK_OK(self, amb_send(self, p[1], A("crash")));
    amb_pid again = wait_up(self, 1);
    CHECK(self, again != p[1]);
    CHECK_EQ(self, kids(self, sup, k, 4), 3);
    CHECK(self, k[0] == p[0] && k[1] == again && k[2] == p[2]);

    /* A terminated one leaves; a new one is the newest. */
    CHECK_OK(self, amb_dynsup_terminate_child(self, sup, p[2]));
    p[3] = dyn_start(self, sup, &w[3]);
    CHECK_EQ(self, kids(self, sup, k, 4), 3);
    CHECK(self, k[0] == p[0] && k[1] == again && k[2] == p[3]);
    CHECK_OK(self, amb_exit(self, sup, AMB_ATOM_SHUTDOWN));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
}

AMB_TEST(which_children_lists_dynamic_children_newest_first)
{
    run_both(dynamic_order_body, NULL);
}

/* ===========================================================================
 * count_children: a dead child is not active, even before its EXIT is
 * handled
 *
 * The supervisor is held inside a start_child (its start function waits
 * for `gate_go`) while a count_children call queues behind it; then child
 * a is killed, so its EXIT queues behind the call. When the supervisor
 * answers the count, a is dead and its EXIT not yet handled: OTP counts it
 * inactive (is_process_alive); a supervisor that trusted its record would
 * say 2 active.
 * ======================================================================== */

typedef struct gate {
    amb_pid observer;
    wk w; /* the child the gate starts once opened */
} gate;

static int gate_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    gate *g = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    int rc = amb_send(self, g->observer, A("gate_waiting"));
    amb_heap_rewind(h, m);
    if (rc == 0)
        rc = amb_receive_match(self, DEADLINE_MS, NULL, "gate_go");
    return rc != 0 ? rc : wk_start(self, &g->w, out, reason);
}

typedef struct counter_job {
    amb_pid sup, tester;
} counter_job;

static void count_caller(amb_proc *self, void *arg)
{
    counter_job *j = arg;
    amb_sup_counts n = {0};
    CHECK_OK(self, amb_sup_count_children(self, j->sup, &n));
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self, amb_send(self, j->tester,
                            AMB_TUPLE(h, A("counted"), AMB_SMALL((int64_t)n.specs),
                                      AMB_SMALL((int64_t)n.active))));
}

typedef struct starter_job {
    amb_pid sup, tester;
    amb_child_spec spec;
} starter_job;

static void gate_caller(amb_proc *self, void *arg)
{
    starter_job *j = arg;
    CHECK_OK(self, amb_sup_start_child(self, j->sup, &j->spec, NULL));
    CHECK_OK(self, amb_send(self, j->tester, A("gate_started")));
}

static void count_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    wk w = {0};
    wk_init(&w, 1, amb_self(self), NULL);
    amb_child_spec a = wspec(A("a"), &w, AMB_PERMANENT, 1000);
    amb_sup_spec spec = {{AMB_ONE_FOR_ONE, 3, 5000}, &a, 1};
    amb_pid sup = AMB_NONE;
    CHECK_OK(self, amb_sup_start_link(self, &spec, NULL, &sup, NULL));
    amb_pid pa = wait_up(self, 0);

    gate g = {0};
    g.observer = amb_self(self);
    wk_init(&g.w, 1, AMB_NONE, NULL);
    g.w.tag = 1;
    starter_job sj = {sup, amb_self(self), {0}};
    sj.spec = wspec(A("g"), NULL, AMB_PERMANENT, 1000);
    sj.spec.start = gate_start;
    sj.spec.arg = &g;
    CHECK_OK(self, amb_spawn(self, gate_caller, &sj, NULL));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "gate_waiting"));

    /* The count call queues in the held supervisor's mailbox. */
    counter_job cj = {sup, amb_self(self)};
    CHECK_OK(self, amb_spawn(self, count_caller, &cj, NULL));
    amb_proc_info info;
    WAIT_UNTIL(self,
               amb_process_info(self, sup, &info) == 0 && info.message_queue_len >= 1);

    /* Then a dies: its EXIT queues behind the call. */
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, pa, &ref));
    CHECK_OK(self, amb_exit(self, pa, AMB_ATOM_KILL));
    CHECK(self, wait_down(self, ref) == AMB_ATOM_KILLED);
    WAIT_UNTIL(self,
               amb_process_info(self, sup, &info) == 0 && info.message_queue_len >= 2);
    CHECK_OK(self, amb_send(self, sup, A("gate_go")));

    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "gate_started"));
    int64_t specs = -1, active = -1;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{counted,~l,~l}", &specs,
                                     &active));
    CHECK_EQ(self, specs, 2);
    CHECK_EQ(self, active, 1);
    /* Then the EXIT is handled: a runs again. */
    CHECK(self, wait_up(self, 0) != pa);
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK(self, n.specs == 2 && n.active == 2);
    CHECK_OK(self, amb_exit(self, sup, AMB_ATOM_SHUTDOWN));
    CHECK(self, wait_exit(self, sup) == AMB_ATOM_SHUTDOWN);
}

AMB_TEST(count_children_does_not_count_a_dead_child_whose_exit_waits)
{
    run_both(count_body, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(which_children_lists_static_children_newest_first_one_for_one),
    AMB_TEST_ENTRY(which_children_lists_static_children_newest_first_rest_for_one),
    AMB_TEST_ENTRY(which_children_lists_static_children_newest_first_one_for_all),
    AMB_TEST_ENTRY(which_children_lists_dynamic_children_newest_first),
    AMB_TEST_ENTRY(count_children_does_not_count_a_dead_child_whose_exit_waits))

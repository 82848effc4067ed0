/*
 * tests/behaviour/gen_server_stop.c - how a gen_server ends
 * (include/ambitious/gen_server.h, "Exit reasons"): stop results with and
 * without a reply, a stop cast, amb_gen_server_stop (waits for terminate,
 * times out, reports a crash in terminate), the exact reason seen by a
 * linked process that traps exits and by a monitor, crash reports only for
 * abnormal reasons, an EXIT from the parent (terminate when trapping, none
 * when not), an EXIT from another process (a message), kill, amb_gen_fail.
 *
 * The harness and the test server (tsrv) are in gs_test.h; the way the
 * tests run is described in gen_server.c.
 */
#include "amb_test_rt.h"

#include "gs_test.h"

/* A server linked to the caller (which traps exits) and monitored by it. */
typedef struct watched {
    amb_pid pid;
    amb_term ref;
} watched;

static watched start_watched(amb_proc *self, tsrv_arg *a)
{
    watched w;
    amb_trap_exit(self, true);
    CHECK_OK(self, amb_gen_server_start_link(self, &tsrv_cb, a, &w.pid, NULL));
    CHECK_OK(self, amb_monitor(self, w.pid, &w.ref));
    return w;
}

/* The server ran terminate(reason) and then ended with exactly reason, as
 * the link (an EXIT) and the monitor (a DOWN) both say. Nothing else is
 * left in the caller's mailbox. */
static void check_ended(amb_proc *self, const watched *w, tsrv_arg *a, const char *reason)
{
    CHECK_TERM(self, gs_wait_event(self, "terminate", w->pid), reason);
    amb_term r;
    CHECK_OK(self,
             amb_receive_match(self, DEADLINE_MS, NULL, "{'EXIT',~v,~w}", w->pid, &r));
    CHECK_TERM(self, r, reason);
    CHECK_TERM(self, wait_down(self, w->ref, w->pid), reason);
    CHECK(self, !amb_is_process_alive(self, w->pid));
    CHECK_EQ(self, atomic_load_explicit(&a->terminated, memory_order_acquire), 1);
    CHECK(self, amb_test_same_term_text(a->terminate_reason, reason));
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

/* tsrv_arg_init for these tests: terminate tells the test. */
static void arg_init(tsrv_arg *a, amb_proc *self)
{
    tsrv_arg_init(a, self, INIT_OK);
    a->tell_terminate = true;
}

static const char *const reasons[] = {
    "normal", "shutdown", "{shutdown,x}", "my_custom_reason", "{my,custom,[reason]}",
};
#define ABNORMAL_REASONS 2 /* the last two above */

typedef enum stop_way {
    STOP_CALL_REPLY,
    STOP_CALL_NOREPLY,
    STOP_CAST,
    STOP_API
} stop_way;

static void stop_one(amb_proc *self, stop_way way, const char *reason)
{
    tsrv_arg a;
    arg_init(&a, self);
    watched w = start_watched(self, &a);
    amb_heap *h = amb_proc_heap(self);
    amb_term rt = P(self, reason);
    amb_term reply = AMB_NONE;
    switch (way) {
    case STOP_CALL_REPLY:
        reply = CALL(self, w.pid, amb_pack(h, "{stop_reply,~w}", rt));
        CHECK(self, reply == AMB_ATOM_OK);
        break;
    case STOP_CALL_NOREPLY:
        CHECK_RC(self, AMB_EEXIT,
                 amb_gen_server_call(self, w.pid, amb_pack(h, "{stop_noreply,~w}", rt),
                                     DEADLINE_MS, &reply));
        CHECK_TERM(self, reply, reason);
        break;
    case STOP_CAST:
        CHECK_OK(self, amb_gen_server_cast(self, w.pid, amb_pack(h, "{stop,~w}", rt)));
        break;
    case STOP_API:
        CHECK_OK(self, amb_gen_server_stop(self, w.pid, rt, DEADLINE_MS));
        /* It waited: terminate has run and the server is gone. */
        CHECK_EQ(self, atomic_load_explicit(&a.terminated, memory_order_acquire), 1);
        CHECK(self, !amb_is_process_alive(self, w.pid));
        break;
    }
    check_ended(self, &w, &a, reason);
}

static void stop_ways_body(amb_proc *self, void *arg)
{
    stop_way way = (stop_way)(intptr_t)arg;
    for (size_t i = 0; i < AMB_COUNTOF(reasons); i++)
        stop_one(self, way, reasons[i]);
}

static void run_stop_way(stop_way way)
{
    run_both(stop_ways_body, (void *)(intptr_t)way);
    /* One crash report for each abnormal reason, none for the others. */
    assert_int_equal(amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS), ABNORMAL_REASONS);
}

AMB_TEST(gen_server_stop_result_with_reply)
{
    run_stop_way(STOP_CALL_REPLY);
}

AMB_TEST(gen_server_stop_result_without_reply)
{
    run_stop_way(STOP_CALL_NOREPLY);
}

AMB_TEST(gen_server_stop_result_from_a_cast)
{
    run_stop_way(STOP_CAST);
}

AMB_TEST(gen_server_stop_api_waits_for_terminate)
{
    run_stop_way(STOP_API);
}

static void stop_by_name_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    arg_init(&a, self);
    amb_term name = amb_atom("gst_stop_me");
    amb_gen_opts o = {.name = name};
    amb_pid srv = tsrv_start(self, &a, &o);
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, srv, &ref));
    CHECK_OK(self, amb_gen_server_stop(self, name, P(self, "{shutdown,by_name}"),
                                       AMB_INFINITY));
    CHECK_EQ(self, atomic_load_explicit(&a.terminated, memory_order_acquire), 1);
    CHECK_TERM(self, wait_down(self, ref, srv), "{shutdown,by_name}");
    amb_pid holder;
    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, name, &holder));
    gs_wait_event(self, "terminate", srv);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_stop_by_name)
{
    run_both(stop_by_name_body, NULL);
}

static void stop_timeout_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    arg_init(&a, self);
    a.hang_in_terminate = true;
    watched w = start_watched(self, &a);
    int64_t t0 = amb_now_ms();
    CHECK_RC(self, AMB_ETIMEDOUT,
             amb_gen_server_stop(self, w.pid, amb_atom("slow_stop"), 50));
    CHECK(self, amb_now_ms() - t0 >= 49);
    /* Left running: still in terminate. */
    CHECK(self, amb_is_process_alive(self, w.pid));
    CHECK_EQ(self, atomic_load(&a.terminated), 0);
    CHECK_OK(self, amb_send(self, w.pid, amb_atom("release")));
    check_ended(self, &w, &a, "slow_stop");
}

AMB_TEST(gen_server_stop_api_times_out_and_leaves_the_server_running)
{
    run_both(stop_timeout_body, NULL);
}

static void terminate_crash_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    arg_init(&a, self);
    a.crash_in_terminate = true;
    amb_pid srv = tsrv_start(self, &a, NULL);
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, srv, &ref));
    CHECK_RC(self, AMB_EEXIT,
             amb_gen_server_stop(self, srv, AMB_ATOM_NORMAL, DEADLINE_MS));
    CHECK(self, wait_down(self, ref, srv) == amb_atom("crashed_in_terminate"));
    CHECK(self, gs_wait_event(self, "terminate", srv) == AMB_ATOM_NORMAL);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    /* The caller of stop is the server: AMB_EDEADLK (gen_server_call.c's
     * stop_self checks it from a callback). */
}

AMB_TEST(gen_server_stop_api_reports_a_crash_in_terminate_as_eexit)
{
    run_both(terminate_crash_body, NULL);
}

static void gen_fail_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    arg_init(&a, self);
    watched w = start_watched(self, &a);
    CHECK_OK(self, amb_gen_server_cast(self, w.pid, amb_atom("fail")));
    check_ended(self, &w, &a, "{error,'AMB_ENOPROC'}");
}

AMB_TEST(gen_server_gen_fail_stops_with_the_error_code)
{
    run_both(gen_fail_body, NULL);
    assert_int_equal(amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS), 1);
}

/* ===========================================================================
 * Exit signals: from the parent, from others, kill
 * ======================================================================== */

typedef struct parent_arg {
    tsrv_arg *a;
    amb_pid test;
    bool exit_self; /* end itself (else: send the exit signal explicitly) */
    const char *reason;
} parent_arg;

/* Starts the server linked, hands it to the test, waits for 'go', then
 * ends (or sends an exit signal to the server) with reason. */
static void parent(amb_proc *self, void *arg)
{
    parent_arg *p = arg;
    amb_pid srv;
    CHECK_OK(self, amb_gen_server_start_link(self, &tsrv_cb, p->a, &srv, NULL));
    CHECK_OK(self,
             amb_send(self, p->test, amb_pack(amb_proc_heap(self), "{srv,~p}", srv)));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "go"));
    amb_term reason = P(self, p->reason);
    if (p->exit_self)
        amb_exit_self(self, reason);
    CHECK_OK(self, amb_exit(self, srv, reason));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "done"));
}

static void parent_exit_body(amb_proc *self, void *arg)
{
    (void)arg;
    for (int trap = 0; trap <= 1; trap++) {
        for (int exit_self = 0; exit_self <= 1; exit_self++) {
            tsrv_arg a;
            arg_init(&a, self);
            a.trap = trap;
            const char *reason = exit_self ? "{shutdown,parent_gone}" : "parent_says_bye";
            parent_arg p = {&a, amb_self(self), exit_self, reason};
            amb_pid par;
            CHECK_OK(self, amb_spawn(self, parent, &p, &par));
            amb_pid srv;
            CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{srv,~p}", &srv));
            CHECK(self, CALL(self, srv, amb_atom("is_trapping")) == amb_bool(trap));
            amb_term ref;
            CHECK_OK(self, amb_monitor(self, srv, &ref));
            CHECK_OK(self, amb_send(self, par, amb_atom("go")));
            CHECK_TERM(self, wait_down(self, ref, srv), reason);
            if (trap) {
                /* terminate(Reason) ran before the end. */
                CHECK_TERM(self, gs_wait_event(self, "terminate", srv), reason);
                CHECK_EQ(self, atomic_load(&a.terminated), 1);
            } else {
                /* Ended by the signal directly: no terminate. */
                CHECK_EQ(self, atomic_load(&a.terminated), 0);
            }
            CHECK_EQ(self, amb_message_queue_len(self), 0);
            if (!exit_self)
                CHECK_OK(self, amb_send(self, par, amb_atom("done")));
        }
    }
}

AMB_TEST(gen_server_exit_from_the_parent_runs_terminate_when_trapping)
{
    run_both(parent_exit_body, NULL);
    /* A server killed by the signal writes no report; one that traps ends
     * itself after terminate and reports an abnormal reason (OTP's
     * "Generic server terminating"): parent_says_bye, once. The parent
     * ending with {shutdown, _} writes none. */
    assert_int_equal(amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS), 1);
}

static void other_exit_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    arg_init(&a, self);
    a.trap = true;
    amb_pid srv = tsrv_start(self, &a, NULL);
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, srv, &ref));
    /* An EXIT from a process that is not the parent: a message for
     * handle_info; the server goes on. */
    CHECK_OK(self, amb_exit(self, srv, amb_atom("not_from_parent")));
    amb_term d = gs_wait_event(self, "exit_msg", srv);
    amb_pid from;
    CHECK_OK(self, amb_match(d, "{~p,not_from_parent}", &from));
    CHECK(self, from == amb_self(self));
    CHECK_EQ(self, int_of(CALL(self, srv, amb_atom("get"))), 0);
    /* kill ends even a trapping server, without terminate. */
    CHECK_OK(self, amb_exit(self, srv, AMB_ATOM_KILL));
    CHECK(self, wait_down(self, ref, srv) == AMB_ATOM_KILLED);
    CHECK_EQ(self, atomic_load(&a.terminated), 0);
    CHECK_EQ(self, amb_message_queue_len(self), 0);

    /* A server that does not trap: any abnormal signal ends it, no
     * terminate. */
    arg_init(&a, self);
    srv = tsrv_start(self, &a, NULL);
    CHECK_OK(self, amb_monitor(self, srv, &ref));
    CHECK_OK(self, amb_exit(self, srv, AMB_ATOM_NORMAL)); /* ignored */
    CHECK_EQ(self, int_of(CALL(self, srv, amb_atom("get"))), 0);
    CHECK_OK(self, amb_exit(self, srv, P(self, "{shutdown,from_other}")));
    CHECK_TERM(self, wait_down(self, ref, srv), "{shutdown,from_other}");
    CHECK_EQ(self, atomic_load(&a.terminated), 0);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_exit_from_another_process_is_a_message_or_the_end)
{
    run_both(other_exit_body, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(gen_server_stop_result_with_reply),
    AMB_TEST_ENTRY(gen_server_stop_result_without_reply),
    AMB_TEST_ENTRY(gen_server_stop_result_from_a_cast),
    AMB_TEST_ENTRY(gen_server_stop_api_waits_for_terminate),
    AMB_TEST_ENTRY(gen_server_stop_by_name),
    AMB_TEST_ENTRY(gen_server_stop_api_times_out_and_leaves_the_server_running),
    AMB_TEST_ENTRY(gen_server_stop_api_reports_a_crash_in_terminate_as_eexit),
    AMB_TEST_ENTRY(gen_server_gen_fail_stops_with_the_error_code),
    AMB_TEST_ENTRY(gen_server_exit_from_the_parent_runs_terminate_when_trapping),
    AMB_TEST_ENTRY(gen_server_exit_from_another_process_is_a_message_or_the_end))

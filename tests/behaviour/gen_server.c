/*
 * tests/behaviour/gen_server.c - gen_server (include/ambitious/gen_server.h):
 * the counter server (call, cast, info), every init result, start_link,
 * the defaults of NULL callbacks, hibernate, idle timeouts and continue.
 * Calls and their failures are in gen_server_call.c, stopping in
 * gen_server_stop.c, names in gen_server_names.c.
 *
 * How these tests work (tests/amb_test_rt.h): each test runs a
 * first process in a fresh runtime, once with one scheduler and once with
 * two, until every process has ended. Processes never call cmocka: a failed
 * CHECK records the first failure and stops the runtime; the test thread
 * asserts after amb_rt_run returned. The server is tsrv (gs_test.h); it
 * tells the test process about events by message. Every wait has a
 * deadline; nothing sleeps.
 */
#include "amb_test_rt.h"

#include "gs_test.h"

/* ===========================================================================
 * The counter: call, cast, info
 * ======================================================================== */

static void counter_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_pid srv = tsrv_start(self, &a, NULL);
    amb_heap *h = amb_proc_heap(self);
    CHECK_EQ(self, int_of(CALL(self, srv, amb_atom("get"))), 0);
    CHECK_EQ(self, int_of(CALL(self, srv, P(self, "{add,5}"))), 5);
    CHECK_EQ(self, int_of(CALL(self, srv, P(self, "{add,-2}"))), 3);
    /* Casts are handled in the order sent, before a later call. */
    for (int i = 0; i < 10; i++)
        CHECK_OK(self, amb_gen_server_cast(self, srv, amb_pack(h, "{add,~i}", i)));
    CHECK_EQ(self, int_of(CALL(self, srv, amb_atom("get"))), 3 + 45);
    /* Plain messages go to handle_info. */
    CHECK_OK(self, amb_send(self, srv, amb_atom("hello")));
    CHECK_OK(self, amb_send(self, srv, P(self, "{some,[tuple],<<\"x\">>}")));
    CHECK_TERM(self, gs_wait_event(self, "info", srv), "{some,[tuple],<<\"x\">>}");
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("world")));
    CHECK_TERM(self, CALL(self, srv, amb_atom("log")), "[init,hello,world]");
    /* A reply that is a part of the request itself (gen_server:call's
     * usual echo idiom). */
    CHECK_TERM(self, CALL(self, srv, P(self, "{echo,{deep,[1,2,{3}],<<\"bin\">>}}")),
               "{deep,[1,2,{3}],<<\"bin\">>}");
    /* A reply built on the server's heap, with a shared binary. */
    amb_term r = CALL(self, srv, mk_int(7));
    const uint8_t *bytes;
    size_t size;
    CHECK_OK(self, amb_match(r, "{7,[7,8,9],~b}", &bytes, &size));
    CHECK_EQ(self, size, 100);
    CHECK_EQ(self, bytes[99], 7);
    tsrv_stop(self, srv);
    CHECK(self, !amb_is_process_alive(self, srv));
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_counter_call_cast_info)
{
    run_both(counter_body, NULL);
}

/* A server whose state is the caller's (state_size 0): `state` is arg. */
typedef struct ext_state {
    int calls;
    void *seen; /* the state pointer init saw */
} ext_state;

static amb_gen_ret ext_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    ext_state *s = state;
    s->seen = state;
    CHECK(self, state == arg);
    return amb_gen_ok();
}

static amb_gen_ret ext_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)req;
    (void)from;
    ext_state *s = state;
    CHECK(self, s->seen == state);
    return amb_gen_reply(amb_int(amb_proc_heap(self), ++s->calls));
}

static const amb_gen_server ext_cb = {
    .name = "ext", .state_size = 0, .init = ext_init, .handle_call = ext_call};

/* A server with a zeroed state of its own and no init. */
typedef struct zero_state {
    int64_t words[32];
} zero_state;

static amb_gen_ret zero_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)req;
    (void)from;
    zero_state *s = state;
    int64_t sum = 0;
    for (size_t i = 0; i < AMB_COUNTOF(s->words); i++)
        sum += s->words[i];
    s->words[0]++;
    return amb_gen_reply(amb_int(amb_proc_heap(self), sum));
}

static const amb_gen_server zero_cb = {
    .name = "zero", .state_size = sizeof(zero_state), .handle_call = zero_call};

static void state_body(amb_proc *self, void *arg)
{
    (void)arg;
    ext_state st = {0};
    amb_pid srv;
    CHECK_OK(self, amb_gen_server_start(self, &ext_cb, &st, NULL, &srv, NULL));
    CHECK_EQ(self, int_of(CALL(self, srv, AMB_ATOM_OK)), 1);
    CHECK_EQ(self, int_of(CALL(self, srv, AMB_ATOM_OK)), 2);
    tsrv_stop(self, srv);
    CHECK_EQ(self, st.calls, 2); /* the caller's memory was the state */
    CHECK(self, st.seen == &st);

    CHECK_OK(self, amb_gen_server_start(self, &zero_cb, NULL, NULL, &srv, NULL));
    CHECK_EQ(self, int_of(CALL(self, srv, AMB_ATOM_OK)), 0); /* zeroed */
    CHECK_EQ(self, int_of(CALL(self, srv, AMB_ATOM_OK)), 1); /* kept */
    tsrv_stop(self, srv);
}

AMB_TEST(gen_server_state_is_the_arg_or_zeroed_memory_of_the_server)
{
    run_both(state_body, NULL);
}

/* ===========================================================================
 * init results
 * ======================================================================== */

static void init_ok_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_pid srv = tsrv_start(self, &a, NULL);
    CHECK(self, amb_is_process_alive(self, srv));
    /* Unlinked by default. */
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, srv, &pi));
    CHECK_EQ(self, pi.links, 0);
    CHECK_TERM(self, CALL(self, srv, amb_atom("log")), "[init]");
    tsrv_stop(self, srv);

    /* init with a deadline that it meets. */
    amb_gen_opts o = {.timeout_ms = DEADLINE_MS};
    srv = tsrv_start(self, &a, &o);
    CHECK_TERM(self, CALL(self, srv, amb_atom("log")), "[init]");
    tsrv_stop(self, srv);
}

AMB_TEST(gen_server_init_ok)
{
    run_both(init_ok_body, NULL);
}

static void init_timeout_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_TIMEOUT);
    a.timeout_ms = 20;
    int64_t t0 = amb_now_ms();
    amb_pid srv = tsrv_start(self, &a, NULL);
    CHECK_TERM(self, gs_wait_event(self, "timeout", srv), "{0,0}");
    CHECK(self, amb_now_ms() - t0 >= 19);
    CHECK_TERM(self, CALL(self, srv, amb_atom("log")), "[init,timeout]");
    /* timeout 0 from init: at once (no message waits). */
    tsrv_stop(self, srv);
    a.timeout_ms = 0;
    srv = tsrv_start(self, &a, NULL);
    gs_wait_event(self, "timeout", srv);
    tsrv_stop(self, srv);
}

AMB_TEST(gen_server_init_ok_with_timeout)
{
    run_both(init_timeout_body, NULL);
}

static void init_continue_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_CONTINUE);
    amb_pid srv = tsrv_start(self, &a, NULL);
    /* The first request is served after handle_continue. */
    CHECK_TERM(self, CALL(self, srv, amb_atom("log")), "[init,continue]");
    CHECK(self, gs_wait_event(self, "continued", srv) == amb_atom("init_cont"));
    tsrv_stop(self, srv);
}

AMB_TEST(gen_server_init_ok_with_continue_runs_before_the_first_message)
{
    run_both(init_continue_body, NULL);
}

static void init_ignore_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_IGNORE);
    amb_term name = amb_atom("gst_ignored");
    amb_gen_opts o = {.name = name};
    amb_pid pid = AMB_NONE;
    CHECK_RC(self, AMB_EIGNORE, amb_gen_server_start(self, &tsrv_cb, &a, &o, &pid, NULL));
    /* The server has ended: its name is free again at once. */
    amb_pid holder;
    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, name, &holder));
    CHECK_RC(self, AMB_ENOPROC, amb_gen_server_whereis(self, name, &holder));
    /* With link: ignore ends the server normally, the caller lives on and
     * (trapping) sees no EXIT. */
    bool was = amb_trap_exit(self, true);
    o.link = true;
    CHECK_RC(self, AMB_EIGNORE, amb_gen_server_start(self, &tsrv_cb, &a, &o, NULL, NULL));
    amb_trap_exit(self, was);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    /* And the name can be taken by a server that starts. */
    a.init = INIT_OK;
    amb_pid srv = tsrv_start(self, &a, &o);
    CHECK_OK(self, amb_whereis(self, name, &holder));
    CHECK(self, holder == srv);
    tsrv_stop(self, name);
}

AMB_TEST(gen_server_init_ignore_is_eignore)
{
    run_both(init_ignore_body, NULL);
}

/* Starts tsrv whose init fails (init_kind, reason text), with link and
 * trap as told: AMB_EINIT, the reason, the caller alive, nothing queued. */
static void check_failed_init(amb_proc *self, tsrv_init init_kind, const char *reason,
                              bool link, bool trap)
{
    tsrv_arg a;
    tsrv_arg_init(&a, self, init_kind);
    a.reason = reason;
    amb_term name = amb_atom("gst_failing");
    amb_term why = AMB_NONE;
    amb_gen_opts o = {.name = name, .link = link};
    bool was = amb_trap_exit(self, trap);
    amb_pid pid = AMB_NONE;
    CHECK_RC(self, AMB_EINIT, amb_gen_server_start(self, &tsrv_cb, &a, &o, &pid, &why));
    CHECK_TERM(self, why, reason); /* on the caller's heap */
    /* No EXIT: the failed start is the error, not a signal. */
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    amb_trap_exit(self, was);
    /* The name is free again. */
    amb_pid holder;
    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, name, &holder));
    /* reason may be NULL. */
    CHECK_RC(self, AMB_EINIT, amb_gen_server_start(self, &tsrv_cb, &a, &o, NULL, NULL));
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

static void init_stop_body(amb_proc *self, void *arg)
{
    (void)arg;
    const char *reasons[] = {"{shutdown,x}", "my_reason",
                             "{bad,[1,2],<<\"some binary longer than sixty four bytes, "
                             "so that it is a shared one, off the heap\">>}"};
    for (size_t i = 0; i < AMB_COUNTOF(reasons); i++) {
        check_failed_init(self, INIT_STOP, reasons[i], false, false);
        check_failed_init(self, INIT_STOP, reasons[i], true, false);
        check_failed_init(self, INIT_STOP, reasons[i], true, true);
    }
}

AMB_TEST(gen_server_init_stop_is_einit_with_the_reason_and_spares_the_caller)
{
    run_both(init_stop_body, NULL);
}

/* A caller that start_links a server whose init crashes, without trapping
 * exits: it is ended by the exit signal (OTP 25), so it never gets here. */
static void crash_starter(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_CRASH);
    a.reason = "{crash,42}";
    amb_gen_server_start_link(self, &tsrv_cb, &a, NULL, NULL);
    amb_exit_self(self, amb_atom("survived"));
}

static void init_crash_body(amb_proc *self, void *arg)
{
    (void)arg;
    /* Unlinked: the error and the reason, nothing else. */
    check_failed_init(self, INIT_CRASH, "{crash,42}", false, false);
    /* Linked and trapping: the error, and then the EXIT of a linked process
     * that ended itself. */
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_CRASH);
    a.reason = "{crash,42}";
    amb_term why = AMB_NONE;
    amb_gen_opts o = {.link = true};
    bool was = amb_trap_exit(self, true);
    CHECK_RC(self, AMB_EINIT, amb_gen_server_start(self, &tsrv_cb, &a, &o, NULL, &why));
    CHECK_TERM(self, why, "{crash,42}");
    amb_term exit_reason;
    CHECK_OK(self,
             amb_receive_match(self, DEADLINE_MS, NULL, "{'EXIT', _, ~w}", &exit_reason));
    CHECK_TERM(self, exit_reason, "{crash,42}");
    amb_trap_exit(self, was);
    /* Linked, not trapping: the caller is ended with the server's reason. */
    amb_pid starter;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, crash_starter, NULL, &starter, &ref));
    CHECK_TERM(self, wait_down(self, ref, starter), "{crash,42}");
}

AMB_TEST(gen_server_init_crash_is_einit_and_signals_a_linked_caller)
{
    run_both(init_crash_body, NULL);
}

static void name_taken_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_term name = amb_atom("gst_taken");
    amb_gen_opts o = {.name = name};
    amb_pid first = tsrv_start(self, &a, &o);
    amb_pid holder = AMB_NONE;
    tsrv_arg b;
    tsrv_arg_init(&b, self, INIT_OK);
    CHECK_RC(self, AMB_EEXIST,
             amb_gen_server_start(self, &tsrv_cb, &b, &o, &holder, NULL));
    CHECK(self, holder == first);
    /* The first server is untouched; the second one's init never ran. */
    CHECK_TERM(self, CALL(self, name, amb_atom("log")), "[init]");
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    /* With link too: no EXIT reaches a trapping caller. */
    bool was = amb_trap_exit(self, true);
    o.link = true;
    holder = AMB_NONE;
    CHECK_RC(self, AMB_EEXIST,
             amb_gen_server_start(self, &tsrv_cb, &b, &o, &holder, NULL));
    CHECK(self, holder == first);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    amb_trap_exit(self, was);
    tsrv_stop(self, first);
    /* A name held by a plain process. */
    CHECK_OK(self, amb_register(self, name, amb_self(self)));
    o.link = false;
    CHECK_RC(self, AMB_EEXIST,
             amb_gen_server_start(self, &tsrv_cb, &b, &o, &holder, NULL));
    CHECK(self, holder == amb_self(self));
    CHECK_OK(self, amb_unregister(self, name));
}

AMB_TEST(gen_server_start_with_a_taken_name_is_eexist_with_the_holder)
{
    run_both(name_taken_body, NULL);
}

/* Watches the server that hangs in init: monitors it once it says so, lets
 * it go on (to hang) and reports {down, Reason} to the test process. */
static void init_watcher(amb_proc *self, void *arg)
{
    amb_pid test = *(amb_pid *)arg;
    amb_pid srv;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{init_pid,~p,ok}", &srv));
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, srv, &ref));
    CHECK_OK(self, amb_send(self, srv, amb_atom("go")));
    amb_term reason = wait_down(self, ref, srv);
    CHECK_OK(self,
             amb_send(self, test, amb_pack(amb_proc_heap(self), "{down,~w}", reason)));
}

static void init_deadline_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self);
    amb_pid watcher;
    CHECK_OK(self, amb_spawn(self, init_watcher, &me, &watcher));
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_HANG);
    a.observer = watcher;
    amb_term name = amb_atom("gst_slow_init");
    /* 200 ms: far more than init needs to reach its hang, even under TSan. */
    amb_gen_opts o = {.name = name, .timeout_ms = 200, .link = true};
    bool was = amb_trap_exit(self, true);
    int64_t t0 = amb_now_ms();
    amb_pid pid = AMB_NONE;
    CHECK_RC(self, AMB_ETIMEDOUT,
             amb_gen_server_start(self, &tsrv_cb, &a, &o, &pid, NULL));
    CHECK(self, amb_now_ms() - t0 >= 199);
    amb_term reason = AMB_NONE;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{down,~w}", &reason));
    CHECK(self, reason == AMB_ATOM_KILLED);
    /* Killed, so it did not run terminate; the caller got no EXIT. */
    CHECK_EQ(self, atomic_load(&a.terminated), 0);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    amb_trap_exit(self, was);
    amb_pid holder;
    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, name, &holder));
}

AMB_TEST(gen_server_init_past_its_deadline_is_etimedout_and_killed)
{
    run_both(init_deadline_body, NULL);
}

/* The same with a linked caller that does not trap exits: the killed
 * server does not take it along. */
static void init_deadline_untrapped_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self);
    amb_pid watcher;
    CHECK_OK(self, amb_spawn(self, init_watcher, &me, &watcher));
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_HANG);
    a.observer = watcher;
    amb_gen_opts o = {.timeout_ms = 200, .link = true};
    CHECK_RC(self, AMB_ETIMEDOUT,
             amb_gen_server_start(self, &tsrv_cb, &a, &o, NULL, NULL));
    amb_term reason = AMB_NONE;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{down,~w}", &reason));
    CHECK(self, reason == AMB_ATOM_KILLED);
    /* Still alive here, and still alive after a round trip through a
     * process that was started after the kill (signals are in order). */
    CHECK(self, amb_is_process_alive(self, me));
    a.init = INIT_OK;
    a.observer = me;
    amb_pid srv = tsrv_start(self, &a, NULL);
    CHECK_EQ(self, int_of(CALL(self, srv, amb_atom("get"))), 0);
    tsrv_stop(self, srv);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, me, &pi));
    CHECK_EQ(self, pi.links, 0);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_init_deadline_spares_a_linked_caller_that_does_not_trap)
{
    run_both(init_deadline_untrapped_body, NULL);
}

/* A state larger than any size class the server keeps inline. */
typedef struct big_state {
    uint8_t bytes[200 * 1024];
    int64_t calls;
} big_state;

static amb_gen_ret big_init(amb_proc *self, void *state, void *arg)
{
    (void)arg;
    big_state *s = state;
    for (size_t i = 0; i < sizeof s->bytes; i++)
        CHECK(self, s->bytes[i] == 0); /* zeroed */
    memset(s->bytes, 0xab, sizeof s->bytes);
    return amb_gen_ok();
}

static amb_gen_ret big_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)req;
    (void)from;
    big_state *s = state;
    CHECK(self, s->bytes[0] == 0xab && s->bytes[sizeof s->bytes - 1] == 0xab);
    return amb_gen_reply(amb_int(amb_proc_heap(self), ++s->calls));
}

static const amb_gen_server big_cb = {.name = "big",
                                      .state_size = sizeof(big_state),
                                      .init = big_init,
                                      .handle_call = big_call};

static void big_state_body(amb_proc *self, void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        amb_pid srv;
        amb_term ref;
        CHECK_OK(self, amb_gen_server_start(self, &big_cb, NULL, NULL, &srv, NULL));
        CHECK_OK(self, amb_monitor(self, srv, &ref));
        CHECK_EQ(self, int_of(CALL(self, srv, AMB_ATOM_OK)), 1);
        CHECK_EQ(self, int_of(CALL(self, srv, AMB_ATOM_OK)), 2);
        if (i == 0)
            tsrv_stop(self, srv);
        else
            CHECK_OK(self, amb_exit(self, srv, AMB_ATOM_KILL)); /* freed too (ASan) */
        wait_down(self, ref, srv);
    }
}

AMB_TEST(gen_server_big_state)
{
    run_both(big_state_body, NULL);
}

static void start_badarg_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_pid pid = AMB_NONE;
    CHECK_RC(self, AMB_EBADARG,
             amb_gen_server_start(NULL, &tsrv_cb, &a, NULL, &pid, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_gen_server_start(self, NULL, &a, NULL, &pid, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_gen_server_start_link(self, NULL, &a, &pid, NULL));
    amb_gen_opts o = {.name = mk_int(3)};
    CHECK_RC(self, AMB_EBADARG, amb_gen_server_start(self, &tsrv_cb, &a, &o, &pid, NULL));
    o.name = P(self, "{via,gst_no_such_via_module}");
    CHECK_RC(self, AMB_EBADARG, amb_gen_server_start(self, &tsrv_cb, &a, &o, &pid, NULL));
    o.name = AMB_ATOM_UNDEFINED;
    CHECK_RC(self, AMB_EBADARG, amb_gen_server_start(self, &tsrv_cb, &a, &o, &pid, NULL));
    CHECK(self, pid == AMB_NONE); /* failed calls did nothing */
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_start_with_bad_arguments_is_ebadarg)
{
    run_both(start_badarg_body, NULL);
}

/* ===========================================================================
 * start_link
 * ======================================================================== */

static void start_link_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    bool was = amb_trap_exit(self, true);
    amb_pid srv;
    CHECK_OK(self, amb_gen_server_start_link(self, &tsrv_cb, &a, &srv, NULL));
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK_EQ(self, pi.links, 1);
    CHECK_OK(self, amb_process_info(self, srv, &pi));
    CHECK_EQ(self, pi.links, 1);
    /* The link carries the server's end to the caller. */
    CHECK_OK(self, amb_gen_server_cast(self, srv, P(self, "{stop,linked_end}")));
    CHECK_OK(self,
             amb_receive_match(self, DEADLINE_MS, NULL, "{'EXIT',~v,linked_end}", srv));
    amb_trap_exit(self, was);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_start_link_links_the_caller)
{
    run_both(start_link_body, NULL);
}

/* A linked server that crashes later takes a non-trapping caller with it
 * (the link is real), with the server's reason. */
static void linked_child(amb_proc *self, void *arg)
{
    tsrv_arg *a = arg;
    amb_pid srv;
    CHECK_OK(self, amb_gen_server_start_link(self, &tsrv_cb, a, &srv, NULL));
    CHECK_OK(self, amb_gen_server_cast(self, srv, P(self, "{stop,boom}")));
    amb_term m;
    amb_receive(self, DEADLINE_MS, &m); /* the exit signal ends us here */
    CHECK(self, false);
}

static void start_link_kills_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, NULL, INIT_OK);
    amb_pid child;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, linked_child, &a, &child, &ref));
    CHECK(self, wait_down(self, ref, child) == amb_atom("boom"));
}

AMB_TEST(gen_server_start_link_crash_reaches_the_caller)
{
    run_both(start_link_kills_body, NULL);
}

/* ===========================================================================
 * Defaults of NULL callbacks
 * ======================================================================== */

static const amb_gen_server bare_cb = {.name = "bare", .state_size = 16};

static void defaults_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid srv;
    amb_term ref;
    CHECK_OK(self, amb_gen_server_start(self, &bare_cb, NULL, NULL, &srv, NULL));
    CHECK_OK(self, amb_monitor(self, srv, &ref));
    amb_term r = CALL(self, srv, P(self, "{hello,[1]}"));
    CHECK_TERM(self, r, "{error,{bad_call,{hello,[1]}}}");
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("some_cast")));
    CHECK_OK(self, amb_send(self, srv, amb_atom("some_info")));
    CHECK_OK(self, amb_send(self, srv, P(self, "{'EXIT',1,2}")));
    r = CALL(self, srv, AMB_ATOM_OK);
    CHECK_TERM(self, r, "{error,{bad_call,ok}}");
    CHECK(self, amb_is_process_alive(self, srv));
    /* NULL terminate: stop just ends it. */
    CHECK_OK(self, amb_gen_server_stop(self, srv, AMB_ATOM_NORMAL, DEADLINE_MS));
    CHECK(self, wait_down(self, ref, srv) == AMB_ATOM_NORMAL);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_null_callbacks_reply_bad_call_and_survive)
{
    run_both(defaults_body, NULL);
    /* A warning for the call and the cast, a notice for the infos. */
    assert_true(amb_test_log_count(AMB_TEST_LOG_OTHERS) >= 4);
    assert_int_equal(amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS), 0);
}

static amb_gen_ret cont_init(amb_proc *self, void *state, void *arg)
{
    (void)state;
    (void)arg;
    (void)self;
    return amb_gen_continue(amb_gen_ok(), amb_atom("more"));
}

static const amb_gen_server no_continue_cb = {.name = "no_continue", .init = cont_init};

static void no_continue_body(amb_proc *self, void *arg)
{
    (void)arg;
    bool was = amb_trap_exit(self, true);
    amb_pid srv;
    CHECK_OK(self, amb_gen_server_start_link(self, &no_continue_cb, NULL, &srv, NULL));
    amb_term reason;
    CHECK_OK(self,
             amb_receive_match(self, DEADLINE_MS, NULL, "{'EXIT',~v,~w}", srv, &reason));
    CHECK_TERM(self, reason, "{undef,handle_continue}");
    amb_trap_exit(self, was);
}

AMB_TEST(gen_server_continue_without_handle_continue_stops_with_undef)
{
    run_both(no_continue_body, NULL);
    assert_int_equal(amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS), 1);
}

/* ===========================================================================
 * hibernate
 * ======================================================================== */

static void hibernate_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_pid srv = tsrv_start(self, &a, NULL);
    CHECK(self, CALL(self, srv, amb_atom("hibernate")) == amb_atom("hibernated"));
    CHECK_EQ(self, int_of(CALL(self, srv, P(self, "{add,2}"))), 2);
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("hibernate")));
    CHECK_OK(self, amb_gen_server_cast(self, srv, P(self, "{add,3}")));
    CHECK_EQ(self, int_of(CALL(self, srv, amb_atom("get"))), 5);
    /* A call that hibernates after a continue. */
    CHECK(self, CALL(self, srv, P(self, "{continue,{hib_cont,[1,2,3]}}")) == AMB_ATOM_OK);
    CHECK(self, gs_wait_event(self, "continued", srv) == amb_atom("hib_cont"));
    CHECK_EQ(self, int_of(CALL(self, srv, amb_atom("get"))), 5);
    tsrv_stop(self, srv);
}

AMB_TEST(gen_server_hibernate_works_like_noreply)
{
    run_both(hibernate_body, NULL);
}

/* ===========================================================================
 * Timeouts
 * ======================================================================== */

#define TICKS   20
#define TICK_MS 30
#define IDLE_MS 100

static void idle_timeout_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    a.idle_ms = IDLE_MS; /* every result, init's too */
    amb_pid srv = tsrv_start(self, &a, NULL);
    /* A burst of TICKS messages TICK_MS apart, by timers (each resets the
     * idle timeout, which therefore never fires during the burst). */
    amb_heap *h = amb_proc_heap(self);
    for (int i = 1; i <= TICKS; i++)
        CHECK_OK(self, amb_send_after(self, srv, amb_pack(h, "{tick,~i}", i),
                                      (uint64_t)(i * TICK_MS), NULL));
    /* The first timeout comes after the last tick, at least IDLE_MS later. */
    int64_t ticks, gap;
    amb_term d = gs_wait_event(self, "timeout", srv);
    CHECK_OK(self, amb_match(d, "{~l,~l}", &ticks, &gap));
    CHECK_EQ(self, ticks, TICKS);
    CHECK(self, gap >= IDLE_MS - 1);
    /* And it goes on firing while idle (each timeout re-arms it). */
    d = gs_wait_event(self, "timeout", srv);
    CHECK_OK(self, amb_match(d, "{~l,~l}", &ticks, &gap));
    CHECK_EQ(self, ticks, TICKS);
    CHECK(self, gap >= 2 * IDLE_MS - 1);
    tsrv_stop(self, srv);
}

AMB_TEST(gen_server_timeout_fires_only_when_idle_and_resets_on_every_message)
{
    run_both(idle_timeout_body, NULL);
}

static void timeout_cancelled_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_pid srv = tsrv_start(self, &a, NULL);
    /* Armed, then a message comes: the timeout is gone for good (the next
     * result has none). */
    CHECK_OK(self, amb_gen_server_cast(self, srv, P(self, "{timeout,50}")));
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("marker")));
    /* A later timeout, from a call, armed after the first would have fired. */
    int64_t t0 = amb_now_ms();
    CHECK(self, CALL(self, srv, P(self, "{timeout,150}")) == AMB_ATOM_OK);
    gs_wait_event(self, "timeout", srv);
    CHECK(self, amb_now_ms() - t0 >= 149);
    CHECK_TERM(self, CALL(self, srv, amb_atom("log")), "[init,marker,timeout]");
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    tsrv_stop(self, srv);
}

AMB_TEST(gen_server_timeout_is_cancelled_by_a_message)
{
    run_both(timeout_cancelled_body, NULL);
}

static void timeout_zero_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_pid srv = tsrv_start(self, &a, NULL);
    /* Timeout 0 while a message waits: the message is served instead. */
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("zero_when_waiting")));
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("marker")));
    CHECK_TERM(self, CALL(self, srv, amb_atom("log")), "[init,marker]");
    /* Timeout 0 when idle: at once. */
    CHECK_OK(self, amb_gen_server_cast(self, srv, P(self, "{timeout,0}")));
    gs_wait_event(self, "timeout", srv);
    CHECK_TERM(self, CALL(self, srv, amb_atom("log")), "[init,marker,timeout]");
    tsrv_stop(self, srv);
}

AMB_TEST(gen_server_timeout_zero_yields_to_a_waiting_message)
{
    run_both(timeout_zero_body, NULL);
}

/* Times follow process.h: 0 ..= AMB_TIMEOUT_MAX or AMB_INFINITY. A timeout
 * result out of range is a bad result (the server stops with
 * bad_return_value); a time argument out of range is AMB_EBADARG. */
static void timeout_range_body(amb_proc *self, void *arg)
{
    (void)arg;
    static const char *const bad[] = {"{timeout,-2}", "{timeout,4294967296}",
                                      "{timeout,-9223372036854775808}"};
    static const char *const why[] = {
        "{bad_return_value,{noreply,-2}}", "{bad_return_value,{noreply,4294967296}}",
        "{bad_return_value,{noreply,-9223372036854775808}}"};
    for (size_t i = 0; i < AMB_COUNTOF(bad); i++) {
        tsrv_arg a;
        tsrv_arg_init(&a, self, INIT_OK);
        amb_pid srv = tsrv_start(self, &a, NULL);
        amb_term ref;
        CHECK_OK(self, amb_monitor(self, srv, &ref));
        CHECK_OK(self, amb_gen_server_cast(self, srv, P(self, bad[i])));
        CHECK_TEXT(self, wait_down(self, ref, srv), why[i]);
    }
    /* A call's result out of range stops the server before its reply goes
     * out: the caller sees the server end with the result described. */
    tsrv_arg c;
    tsrv_arg_init(&c, self, INIT_OK);
    amb_pid csrv = tsrv_start(self, &c, NULL);
    amb_term cwhy = AMB_NONE;
    CHECK_RC(
        self, AMB_EEXIT,
        amb_gen_server_call(self, csrv, P(self, "{timeout,-2}"), DEADLINE_MS, &cwhy));
    CHECK_TEXT(self, cwhy, "{bad_return_value,{reply,ok,-2}}");
    /* The longest timeout and infinity are good results. */
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_pid srv = tsrv_start(self, &a, NULL);
    CHECK(self, CALL(self, srv, P(self, "{timeout,4294967295}")) == AMB_ATOM_OK);
    CHECK(self, CALL(self, srv, P(self, "{timeout,-1}")) == AMB_ATOM_OK);
    CHECK(self, amb_is_process_alive(self, srv));

    static const int64_t bad_ms[] = {-2, INT64_MIN, AMB_TIMEOUT_MAX + 1, INT64_MAX};
    for (size_t i = 0; i < AMB_COUNTOF(bad_ms); i++) {
        amb_term r = AMB_NONE;
        CHECK_RC(self, AMB_EBADARG,
                 amb_gen_server_call(self, srv, AMB_ATOM_OK, bad_ms[i], &r));
        CHECK_RC(self, AMB_EBADARG,
                 amb_gen_server_stop(self, srv, AMB_ATOM_NORMAL, bad_ms[i]));
        CHECK_RC(self, AMB_EBADARG,
                 amb_gen_server_multi_call(self, AMB_NONE, amb_atom("gst_nobody"),
                                           AMB_ATOM_OK, bad_ms[i], &r, NULL));
        amb_gen_opts o = {.timeout_ms = bad_ms[i]};
        amb_pid none = AMB_NONE;
        CHECK_RC(self, AMB_EBADARG,
                 amb_gen_server_start(self, &tsrv_cb, &a, &o, &none, NULL));
        CHECK(self, none == AMB_NONE && r == AMB_NONE);
    }
    CHECK(self, amb_is_process_alive(self, srv));
    tsrv_stop(self, srv);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_times_out_of_range_are_ebadarg_or_bad_return_value)
{
    run_both(timeout_range_body, NULL);
}

/* ===========================================================================
 * continue
 * ======================================================================== */

static void continue_order_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_pid srv = tsrv_start(self, &a, NULL);
    /* cont_when_waiting returns only once 'marker' is queued behind it. */
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("cont_when_waiting")));
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("marker")));
    CHECK_TERM(self, CALL(self, srv, amb_atom("log")),
               "[init,cont_when_waiting,continue,marker]");
    CHECK(self, gs_wait_event(self, "continued", srv) == amb_atom("cast_cont"));
    /* From a call: the reply first, then the continue, then the next. */
    CHECK(self,
          CALL(self, srv, P(self, "{continue,{call_cont,[1,2,3]}}")) == AMB_ATOM_OK);
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("second")));
    CHECK_TERM(self, CALL(self, srv, amb_atom("log")),
               "[init,cont_when_waiting,continue,marker,continue,second]");
    CHECK(self, gs_wait_event(self, "continued", srv) == amb_atom("call_cont"));
    tsrv_stop(self, srv);
}

AMB_TEST(gen_server_continue_runs_before_the_next_queued_message)
{
    run_both(continue_order_body, NULL);
}

/* A server whose init waits for `go`; its start argument, {TestPid}, comes
 * by value (amb_gen_opts.arg_term). */
static amb_gen_ret orphan_init(amb_proc *self, void *state, void *arg)
{
    (void)state;
    amb_pid test = amb_tuple_elem(*(const amb_term *)arg, 0);
    CHECK_OK(self, amb_send(self, test,
                            AMB_TUPLE(amb_proc_heap(self), amb_atom("waiting"),
                                      amb_self(self))));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "go"));
    return amb_gen_ok();
}

static amb_gen_ret orphan_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)self, (void)state, (void)from;
    return amb_gen_reply(req);
}

static const amb_gen_server orphan_cb = {
    .name = "orphan", .init = orphan_init, .handle_call = orphan_call};

/* The starter: its stack and heap are gone once it is killed. */
static void orphan_starter(amb_proc *self, void *arg)
{
    amb_pid test = *(const amb_pid *)arg;
    amb_gen_opts o = {.name = amb_atom("gst_orphan"),
                      .arg_term = AMB_TUPLE(amb_proc_heap(self), test)};
    amb_gen_server_start(self, &orphan_cb, NULL, &o, NULL, NULL);
}

static void orphan_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self), starter, srv;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, orphan_starter, &me, &starter, &ref));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{waiting, ~p}", &srv));
    CHECK_OK(self, amb_exit(self, starter, AMB_ATOM_KILL));
    CHECK_TERM(self, wait_down(self, ref, starter), "killed");
    /* The starter is gone while init still runs: init finishes with what
     * the start message carried, the ack goes nowhere, the server serves. */
    CHECK_OK(self, amb_send(self, srv, amb_atom("go")));
    amb_term reply;
    CHECK_OK(self, amb_gen_server_call(self, amb_atom("gst_orphan"), amb_atom("ping"),
                                       DEADLINE_MS, &reply));
    CHECK(self, reply == amb_atom("ping"));
    CHECK_OK(self, amb_gen_server_stop(self, srv, AMB_ATOM_NORMAL, DEADLINE_MS));
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_starter_killed_during_init_leaves_a_working_server)
{
    run_both(orphan_body, NULL);
}

/* Idle servers hold no stack: 10,000 of them, each after a call, cost far
 * less than the one stack page each would touch. Measured as resident
 * memory, so only in builds without a sanitizer (their shadow memory and
 * allocators make RSS mean something else). */
#define IDLE_SERVERS 10000
static amb_gen_ret idle_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)self, (void)state, (void)from;
    return amb_gen_reply(req);
}
static const amb_gen_server idle_cb = {
    .name = "idle", .state_size = 64, .handle_call = idle_call};

static void idle_body(amb_proc *self, void *arg)
{
    (void)arg;
    static amb_pid pids[IDLE_SERVERS];
    long before = amb_test_rss_kib();
    for (int i = 0; i < IDLE_SERVERS; i++) {
        CHECK_OK(self, amb_gen_server_start(self, &idle_cb, NULL, NULL, &pids[i], NULL));
        amb_term r;
        CHECK_OK(self, amb_gen_server_call(self, pids[i], AMB_SMALL(i), DEADLINE_MS, &r));
        CHECK(self, r == AMB_SMALL(i));
    }
    long per = (amb_test_rss_kib() - before) * 1024 / IDLE_SERVERS;
#if !defined(AMB_ASAN) && !defined(AMB_TSAN)
    /* A process holding a stack costs 4.5 KiB at least (one touched page
     * plus its block); an idle server measured ~1.7 KiB (process block,
     * state, its first heap block, an empty monitor table). */
    if (before > 0)
        CHECK(self, per < 3072);
#endif
    (void)per;
    for (int i = 0; i < IDLE_SERVERS; i++)
        CHECK_OK(self, amb_gen_server_stop(self, pids[i], AMB_ATOM_NORMAL, DEADLINE_MS));
}

AMB_TEST(gen_server_idle_servers_hold_no_stack)
{
    run_in(2, idle_body, NULL);
}

/* A server that tells its owner (the arg, a pid) when terminate runs. */
static amb_gen_ret order_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)self, (void)state, (void)from;
    if (req == amb_atom("reply_nothing"))
        return amb_gen_reply(AMB_NONE); /* a reply whose build failed */
    return amb_gen_stop_reply(amb_atom("done"), amb_atom("bye"));
}
static amb_gen_ret order_cast(amb_proc *self, void *state, amb_term msg)
{
    (void)self, (void)state;
    return amb_gen_reply(msg); /* not a result a cast may give */
}
static void order_terminate(amb_proc *self, void *state, amb_term reason)
{
    (void)reason;
    amb_send(self, *(amb_pid *)state, amb_atom("terminated"));
}
static const amb_gen_server order_cb = {.name = "order",
                                        .handle_call = order_call,
                                        .handle_cast = order_cast,
                                        .terminate = order_terminate};

static void result_rules_body(amb_proc *self, void *arg)
{
    (void)arg;
    static amb_pid owner;
    owner = amb_self(self);
    amb_pid srv;
    amb_term reply, ref;
    /* stop_reply: terminate runs before the reply is sent (OTP). */
    CHECK_OK(self, amb_gen_server_start(self, &order_cb, &owner, NULL, &srv, NULL));
    CHECK_OK(self, amb_monitor(self, srv, &ref));
    CHECK_OK(self, amb_gen_server_call(self, srv, amb_atom("stop"), DEADLINE_MS, &reply));
    CHECK(self, reply == amb_atom("bye"));
    amb_term m;
    CHECK_OK(self, amb_receive(self, 0, &m)); /* already here: sent before the reply */
    CHECK(self, m == amb_atom("terminated"));
    CHECK_TEXT(self, wait_down(self, ref, srv), "done");
    /* A cast answered with a reply: {bad_return_value, {reply, R}}, after
     * terminate. */
    CHECK_OK(self, amb_gen_server_start(self, &order_cb, &owner, NULL, &srv, NULL));
    CHECK_OK(self, amb_monitor(self, srv, &ref));
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("x")));
    CHECK_TEXT(self, wait_down(self, ref, srv), "{bad_return_value,{reply,x}}");
    CHECK_OK(self, amb_receive(self, 0, &m));
    CHECK(self, m == amb_atom("terminated"));
    /* A reply that failed to build: the caller is told at once (the server
     * stops with {error,'AMB_ENOMEM'}), it does not wait for its timeout. */
    CHECK_OK(self, amb_gen_server_start(self, &order_cb, &owner, NULL, &srv, NULL));
    CHECK_RC(
        self, AMB_EEXIT,
        amb_gen_server_call(self, srv, amb_atom("reply_nothing"), AMB_INFINITY, &reply));
    CHECK_TERM(self, reply, "{error,'AMB_ENOMEM'}");
    CHECK_OK(self, amb_receive(self, DEADLINE_MS, &m));
    CHECK(self, m == amb_atom("terminated"));
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_result_rules_stop_reply_after_terminate_and_bad_results)
{
    run_both(result_rules_body, NULL);
}

/* A result a callback may not return stops the server with OTP's
 * {bad_return_value, Value}; Value is the result as the Erlang callback
 * would have written it, without the state (gen_server.h). */
static amb_gen_ret bad_init(amb_proc *self, void *state, void *arg)
{
    (void)self, (void)state;
    int64_t ms = arg != NULL ? *(const int64_t *)arg : 0;
    return ms != 0 ? amb_gen_timeout(amb_gen_ok(), ms) : amb_gen_ok();
}

static amb_gen_ret bad_cast(amb_proc *self, void *state, amb_term msg)
{
    (void)state;
    amb_heap *h = amb_proc_heap(self);
    if (msg == amb_atom("ignore"))
        return amb_gen_ignore();
    if (msg == amb_atom("reply_hibernate"))
        return amb_gen_hibernate(amb_gen_reply(amb_atom("r")));
    if (msg == amb_atom("reply_continue"))
        return amb_gen_continue(amb_gen_reply(amb_atom("r")),
                                AMB_TUPLE(h, amb_atom("c")));
    amb_gen_ret r = amb_gen_noreply();
    if (msg == amb_atom("action"))
        r.action = 9;
    if (msg == amb_atom("next"))
        r.next = 7;
    return r;
}

static const amb_gen_server bad_cb = {
    .name = "bad", .init = bad_init, .handle_cast = bad_cast};

static void bad_result_body(amb_proc *self, void *arg)
{
    (void)arg;
    static const char *const casts[] = {"ignore", "reply_hibernate", "reply_continue",
                                        "action", "next"};
    static const char *const whys[] = {
        "{bad_return_value,ignore}", "{bad_return_value,{reply,r,hibernate}}",
        "{bad_return_value,{reply,r,{continue,{c}}}}", "{bad_return_value,{action,9}}",
        "{bad_return_value,{noreply,{next,7}}}"};
    for (size_t i = 0; i < AMB_COUNTOF(casts); i++) {
        amb_pid srv;
        amb_term ref;
        CHECK_OK(self, amb_gen_server_start(self, &bad_cb, NULL, NULL, &srv, NULL));
        CHECK_OK(self, amb_monitor(self, srv, &ref));
        CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom(casts[i])));
        CHECK_TEXT(self, wait_down(self, ref, srv), whys[i]);
    }
    /* init: a timeout out of range fails the start (OTP's {ok, S, -5}). */
    static const int64_t bad_ms = -5;
    amb_pid srv = AMB_NONE;
    amb_term why = AMB_NONE;
    CHECK_RC(self, AMB_EINIT,
             amb_gen_server_start(self, &bad_cb, (void *)&bad_ms, NULL, &srv, &why));
    CHECK_TEXT(self, why, "{bad_return_value,{ok,-5}}");
    CHECK(self, srv == AMB_NONE);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_bad_result_stops_with_bad_return_value_naming_the_result)
{
    run_both(bad_result_body, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(gen_server_counter_call_cast_info),
    AMB_TEST_ENTRY(gen_server_state_is_the_arg_or_zeroed_memory_of_the_server),
    AMB_TEST_ENTRY(gen_server_init_ok), AMB_TEST_ENTRY(gen_server_init_ok_with_timeout),
    AMB_TEST_ENTRY(gen_server_init_ok_with_continue_runs_before_the_first_message),
    AMB_TEST_ENTRY(gen_server_init_ignore_is_eignore),
    AMB_TEST_ENTRY(gen_server_init_stop_is_einit_with_the_reason_and_spares_the_caller),
    AMB_TEST_ENTRY(gen_server_init_crash_is_einit_and_signals_a_linked_caller),
    AMB_TEST_ENTRY(gen_server_start_with_a_taken_name_is_eexist_with_the_holder),
    AMB_TEST_ENTRY(gen_server_starter_killed_during_init_leaves_a_working_server),
    AMB_TEST_ENTRY(gen_server_idle_servers_hold_no_stack),
    AMB_TEST_ENTRY(gen_server_result_rules_stop_reply_after_terminate_and_bad_results),
    AMB_TEST_ENTRY(gen_server_init_past_its_deadline_is_etimedout_and_killed),
    AMB_TEST_ENTRY(gen_server_init_deadline_spares_a_linked_caller_that_does_not_trap),
    AMB_TEST_ENTRY(gen_server_big_state),
    AMB_TEST_ENTRY(gen_server_start_with_bad_arguments_is_ebadarg),
    AMB_TEST_ENTRY(gen_server_start_link_links_the_caller),
    AMB_TEST_ENTRY(gen_server_start_link_crash_reaches_the_caller),
    AMB_TEST_ENTRY(gen_server_null_callbacks_reply_bad_call_and_survive),
    AMB_TEST_ENTRY(gen_server_continue_without_handle_continue_stops_with_undef),
    AMB_TEST_ENTRY(gen_server_hibernate_works_like_noreply),
    AMB_TEST_ENTRY(gen_server_timeout_fires_only_when_idle_and_resets_on_every_message),
    AMB_TEST_ENTRY(gen_server_timeout_is_cancelled_by_a_message),
    AMB_TEST_ENTRY(gen_server_timeout_zero_yields_to_a_waiting_message),
    AMB_TEST_ENTRY(gen_server_times_out_of_range_are_ebadarg_or_bad_return_value),
    AMB_TEST_ENTRY(gen_server_bad_result_stops_with_bad_return_value_naming_the_result),
    AMB_TEST_ENTRY(gen_server_continue_runs_before_the_next_queued_message))

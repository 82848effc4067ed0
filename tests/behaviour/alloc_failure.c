/*
 * tests/behaviour/alloc_failure.c - the behaviours under allocation failure
 * (docs/design/testing.md, "Fault injection"): gen_server start, call and
 * stop; supervisor start (with children) and restart; dynamic supervisor
 * start_child; application start (with a supervision tree).
 *
 * Each test is amb_test_oom_loop_rt (tests/amb_test_rt.h): the operation
 * runs with allocation n failing, once, for n = 0, 1, 2, ... until it runs
 * with none failing, so every allocation point of the calls and of the
 * processes they talk to fails once. Each time the operation must end in
 * success or AMB_ENOMEM, the runtime must still work afterwards (the same
 * operation with no failure succeeds; a fresh process answers), every
 * process must end, and the runtime's memory must all come back when it
 * is freed.
 *
 * What out-of-memory looks like at each call, as the headers document it:
 *   - a call's own allocations, or the new server's before its init
 *     returned: AMB_ENOMEM (amb_gen_server_start also sets *reason to
 *     {error, 'AMB_ENOMEM'});
 *   - a supervisor child's start: amb_sup_start_link fails with AMB_EINIT
 *     and {shutdown, {failed_to_start_child, Id, {error, 'AMB_ENOMEM'}}};
 *     amb_sup_start_child and amb_dynsup_start_child return AMB_ENOMEM;
 *   - a server that cannot go on (a reply it cannot build, a restart its
 *     supervisor cannot count) ends with {error, 'AMB_ENOMEM'}, and a call
 *     waiting on it gets AMB_EEXIT with that reason;
 *   - an application's start: AMB_EINIT with {App, Reason}, Reason one of
 *     the above.
 * The operations below map each of these to AMB_ENOMEM and let anything
 * else through, so the loop fails on it.
 */
#include "amb_test_rt.h"

/* The op's result for a call that failed with rc: AMB_ENOMEM when reason
 * (of an AMB_EINIT or AMB_EEXIT) says an allocation failed, directly or as
 * the reason a child's start gave; any other reason fails the test, with
 * the call named by what. */
#define ENOMEM_OF(self, what, rc, reason) \
    enomem_of((self), (what), (rc), (reason), __LINE__)
static int enomem_of(amb_proc *self, const char *what, int rc, amb_term reason, int line)
{
    if (rc != AMB_EINIT && rc != AMB_EEXIT)
        return rc;
    amb_term inner = AMB_NONE;
    if (amb_test_is_enomem_reason(reason) ||
        (amb_match(reason, "{shutdown,{failed_to_start_child,_,~w}}", &inner) == 0 &&
         amb_test_is_enomem_reason(inner)))
        return AMB_ENOMEM;
    char text[512];
    amb_test_text(reason, text, sizeof text);
    proc_fail(self, __FILE__, line, "%s returned %s with reason %s", what,
              amb_err_name(rc), text);
}

/* ===========================================================================
 * gen_server: start, call, stop
 * ======================================================================== */

static amb_gen_ret echo_init(amb_proc *self, void *state, void *arg)
{
    (void)self, (void)arg;
    *(int64_t *)state = 1;
    return amb_gen_ok();
}

static amb_gen_ret echo_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    amb_heap *h = amb_proc_heap(self);
    /* A reply built on the server's heap: it allocates there. */
    return amb_gen_reply(amb_pack(h, "{echo,~w,~l}", req, (*(int64_t *)state)++));
}

static const amb_gen_server echo_cb = {
    .name = "oom_echo",
    .state_size = sizeof(int64_t),
    .init = echo_init,
    .handle_call = echo_call,
};

typedef struct gs_ctx {
    amb_pid srv;  /* started and not yet stopped, or AMB_NONE */
    amb_term req; /* built in setup */
} gs_ctx;

static void gs_setup(amb_proc *self, void *arg)
{
    gs_ctx *c = arg;
    uint8_t bytes[100];
    memset(bytes, 7, sizeof bytes);
    c->srv = AMB_NONE;
    amb_heap_reset(amb_proc_heap(self));
    c->req = amb_pack(amb_proc_heap(self), "{hello,[1,2,3],~b}", bytes, sizeof bytes);
    CHECK(self, c->req != AMB_NONE);
}

static int gs_op(amb_proc *self, void *arg)
{
    gs_ctx *c = arg;
    amb_term reason = AMB_NONE, reply = AMB_NONE;
    amb_pid srv = AMB_NONE;
    int rc = amb_gen_server_start(self, &echo_cb, NULL, NULL, &srv, &reason);
    if (rc != 0)
        return ENOMEM_OF(self, "amb_gen_server_start", rc, reason);
    c->srv = srv;
    rc = amb_gen_server_call(self, srv, c->req, DEADLINE_MS, &reply);
    if (rc != 0)
        return ENOMEM_OF(self, "amb_gen_server_call", rc, reply);
    amb_term got = AMB_NONE;
    CHECK_OK(self, amb_match(reply, "{echo,~w,1}", &got));
    CHECK(self, amb_equal(got, c->req));
    rc = amb_gen_server_stop(self, srv, AMB_ATOM_NORMAL, DEADLINE_MS);
    if (rc == 0)
        c->srv = AMB_NONE;
    return rc;
}

/* Kills pid and waits until it has ended. */
static void kill_and_wait(amb_proc *self, amb_pid pid)
{
    amb_term ref = AMB_NONE;
    CHECK_OK(self, amb_monitor(self, pid, &ref));
    CHECK_OK(self, amb_exit(self, pid, AMB_ATOM_KILL));
    wait_down(self, ref, pid);
}

/* Takes every {'EXIT', _, _} the caller (trapping exits) has been sent. */
static void take_exits(amb_proc *self)
{
    while (amb_receive_match(self, 0, NULL, "{'EXIT',_,_}") == 0)
        ;
}

static void print_stats(const char *what, amb_test_oom_stats st)
{
    print_message("%s: %ld runs, %ld with an allocation failing, %llu allocations\n",
                  what, st.runs, st.failed_runs, (unsigned long long)st.allocations);
}

/* Ends what op left running (its server, if it was not stopped). */
static void gs_cleanup(amb_proc *self, void *arg, int rc)
{
    (void)rc;
    gs_ctx *c = arg;
    if (c->srv != AMB_NONE)
        kill_and_wait(self, c->srv);
    c->srv = AMB_NONE;
}

AMB_TEST(gen_server_start_call_stop_survive_every_allocation_failure)
{
    gs_ctx c;
    amb_test_oom_rt t = {
        .op = gs_op, .setup = gs_setup, .cleanup = gs_cleanup, .ctx = &c};
    amb_test_oom_stats st = amb_test_oom_loop_rt(&t);
    print_stats("gen_server start, call, stop", st);
    assert_true(st.failed_runs > 0);
}

/* The same with a registered name and a link (start_link's path, and the
 * name given back when the start fails). */
static int gs_named_op(amb_proc *self, void *arg)
{
    gs_ctx *c = arg;
    amb_term reason = AMB_NONE, reply = AMB_NONE;
    amb_pid srv = AMB_NONE;
    amb_term name = amb_atom("oom_named");
    amb_gen_opts o = {.name = name, .link = true};
    int rc = amb_gen_server_start(self, &echo_cb, NULL, &o, &srv, &reason);
    /* A failed start is its error, never an exit signal (gen_server.h):
     * nothing is left in the caller's mailbox. */
    if (rc != 0)
        CHECK_EQ(self, amb_message_queue_len(self), 0);
    if (rc != 0)
        return ENOMEM_OF(self, "amb_gen_server_start", rc, reason);
    c->srv = srv;
    rc = amb_gen_server_call(self, name, c->req, DEADLINE_MS, &reply);
    if (rc != 0)
        return ENOMEM_OF(self, "amb_gen_server_call", rc, reply);
    rc = amb_gen_server_stop(self, name, AMB_ATOM_NORMAL, DEADLINE_MS);
    if (rc == 0)
        c->srv = AMB_NONE;
    return rc;
}

static void gs_named_setup(amb_proc *self, void *arg)
{
    amb_trap_exit(self, true);
    gs_setup(self, arg);
}

static void gs_named_cleanup(amb_proc *self, void *arg, int rc)
{
    gs_cleanup(self, arg, rc);
    amb_pid holder = AMB_NONE;
    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, amb_atom("oom_named"), &holder));
    take_exits(self);
}

AMB_TEST(gen_server_named_start_link_survives_every_allocation_failure)
{
    gs_ctx c;
    amb_test_oom_rt t = {.op = gs_named_op,
                         .setup = gs_named_setup,
                         .cleanup = gs_named_cleanup,
                         .ctx = &c};
    amb_test_oom_stats st = amb_test_oom_loop_rt(&t);
    print_stats("gen_server named start_link, call, stop", st);
    assert_true(st.failed_runs > 0);
}

/* ===========================================================================
 * Supervisor: start with children, restart
 * ======================================================================== */

static const amb_gen_child echo_child = {&echo_cb, NULL, AMB_NONE};

static amb_child_spec echo_spec(const char *id)
{
    amb_child_spec s = {0};
    s.id = amb_atom(id);
    s.start = amb_gen_child_start;
    s.arg = (void *)&echo_child;
    s.restart = AMB_PERMANENT;
    s.shutdown_ms = 1000;
    return s;
}

typedef struct sup_ctx {
    amb_pid sup;  /* running and not yet stopped, or AMB_NONE */
    amb_term ref; /* a monitor of it (restart) */
    amb_pid kid;  /* the child the restart test kills */
} sup_ctx;

/* The Child field of which_children's entry of that id (AMB_NONE: none),
 * or the call's error in *rc. */
static amb_term child_of(amb_proc *self, amb_pid sup, const char *id, int *rc)
{
    amb_term list = AMB_NONE;
    *rc = amb_sup_which_children(self, sup, &list);
    for (; *rc == 0 && amb_is_cons(list); list = amb_list_tail(list))
        if (amb_tuple_elem(amb_list_head(list), 0) == amb_atom(id))
            return amb_tuple_elem(amb_list_head(list), 1);
    return AMB_NONE;
}

static void sup_setup(amb_proc *self, void *arg)
{
    sup_ctx *c = arg;
    amb_trap_exit(self, true);
    amb_heap_reset(amb_proc_heap(self));
    c->sup = c->kid = c->ref = AMB_NONE;
}

static int sup_start_op(amb_proc *self, void *arg)
{
    sup_ctx *c = arg;
    amb_child_spec kids[] = {echo_spec("a"), echo_spec("b")};
    amb_sup_spec spec = {.children = kids, .nchildren = 2};
    amb_term reason = AMB_NONE;
    amb_pid sup = AMB_NONE;
    int rc = amb_sup_start_link(self, &spec, NULL, &sup, &reason);
    if (rc != 0)
        CHECK_EQ(self, amb_message_queue_len(self), 0); /* as gs_named_op */
    if (rc != 0)
        return ENOMEM_OF(self, "amb_sup_start_link", rc, reason);
    c->sup = sup;
    amb_term kid = child_of(self, sup, "b", &rc);
    if (rc != 0)
        return rc;
    CHECK(self, amb_type_of(kid) == AMB_T_PID);
    rc = amb_gen_server_stop(self, sup, AMB_ATOM_SHUTDOWN, DEADLINE_MS);
    if (rc == 0)
        c->sup = AMB_NONE;
    return rc;
}

static void sup_cleanup(amb_proc *self, void *arg, int rc)
{
    (void)rc;
    sup_ctx *c = arg;
    if (c->ref != AMB_NONE)
        amb_demonitor(self, c->ref, AMB_DEMONITOR_FLUSH);
    if (c->sup != AMB_NONE && amb_is_process_alive(self, c->sup))
        CHECK_OK(self, amb_gen_server_stop(self, c->sup, AMB_ATOM_SHUTDOWN, DEADLINE_MS));
    c->sup = AMB_NONE;
    take_exits(self);
}

AMB_TEST(supervisor_start_with_children_survives_every_allocation_failure)
{
    sup_ctx c;
    amb_test_oom_rt t = {
        .op = sup_start_op, .setup = sup_setup, .cleanup = sup_cleanup, .ctx = &c};
    amb_test_oom_stats st = amb_test_oom_loop_rt(&t);
    print_stats("supervisor start_link with two children, stop", st);
    assert_true(st.failed_runs > 0);
}

/* A supervisor whose child dies restarts it; under allocation failure the
 * restart is retried (OTP), or the supervisor gives up with a reason that
 * says why. */
static void sup_restart_setup(amb_proc *self, void *arg)
{
    sup_ctx *c = arg;
    sup_setup(self, arg);
    amb_child_spec kids[] = {echo_spec("a"), echo_spec("b")};
    amb_sup_spec spec = {.children = kids, .nchildren = 2};
    CHECK_OK(self, amb_sup_start_link(self, &spec, NULL, &c->sup, NULL));
    CHECK_OK(self, amb_monitor(self, c->sup, &c->ref));
    int rc;
    c->kid = child_of(self, c->sup, "a", &rc);
    CHECK_OK(self, rc);
}

/* AMB_ENOMEM when the supervisor ended for want of memory. */
static int sup_gone(amb_proc *self, sup_ctx *c)
{
    amb_term reason = wait_down(self, c->ref, c->sup);
    c->ref = AMB_NONE;
    c->sup = AMB_NONE;
    return ENOMEM_OF(self, "the supervisor", AMB_EEXIT, reason);
}

static int sup_restart_op(amb_proc *self, void *arg)
{
    sup_ctx *c = arg;
    int rc = amb_exit(self, c->kid, AMB_ATOM_KILL);
    if (rc != 0)
        return rc;
    int64_t until = amb_now_ms() + DEADLINE_MS;
    for (;;) {
        amb_term now = child_of(self, c->sup, "a", &rc);
        if (rc == AMB_EEXIT || rc == AMB_ENOPROC)
            return sup_gone(self, c);
        if (rc != 0)
            return rc;
        if (amb_type_of(now) == AMB_T_PID && now != c->kid)
            return 0; /* restarted */
        if (amb_now_ms() > until)
            proc_fail(self, __FILE__, __LINE__, "child a not restarted");
        amb_yield(self);
    }
}

AMB_TEST(supervisor_restart_survives_every_allocation_failure)
{
    sup_ctx c;
    amb_test_oom_rt t = {.op = sup_restart_op,
                         .setup = sup_restart_setup,
                         .cleanup = sup_cleanup,
                         .ctx = &c};
    amb_test_oom_stats st = amb_test_oom_loop_rt(&t);
    print_stats("supervisor restart of a killed child", st);
    assert_true(st.failed_runs > 0);
}

/* ===========================================================================
 * Dynamic supervisor: start_child
 * ======================================================================== */

static void dynsup_setup(amb_proc *self, void *arg)
{
    sup_ctx *c = arg;
    sup_setup(self, arg);
    CHECK_OK(self, amb_dynsup_start_link(self, NULL, NULL, &c->sup, NULL));
}

static int dynsup_op(amb_proc *self, void *arg)
{
    sup_ctx *c = arg;
    amb_child_spec spec = echo_spec("ignored");
    amb_pid kid = AMB_NONE;
    int rc = amb_dynsup_start_child(self, c->sup, &spec, &kid, NULL);
    if (rc != 0)
        return rc;
    amb_term reply = AMB_NONE;
    rc = amb_gen_server_call(self, kid, AMB_ATOM_OK, DEADLINE_MS, &reply);
    if (rc != 0)
        return ENOMEM_OF(self, "amb_gen_server_call", rc, reply);
    CHECK_OK(self, amb_match(reply, "{echo,ok,1}"));
    return 0;
}

AMB_TEST(dynamic_supervisor_start_child_survives_every_allocation_failure)
{
    sup_ctx c;
    amb_test_oom_rt t = {
        .op = dynsup_op, .setup = dynsup_setup, .cleanup = sup_cleanup, .ctx = &c};
    amb_test_oom_stats st = amb_test_oom_loop_rt(&t);
    print_stats("dynamic supervisor start_child, call", st);
    assert_true(st.failed_runs > 0);
}

/* ===========================================================================
 * Application: start (with its supervision tree)
 * ======================================================================== */

static int app_top(amb_proc *self, void *arg, amb_pid *top, amb_term *reason)
{
    (void)arg;
    amb_child_spec kids[] = {echo_spec("a"), echo_spec("b")};
    amb_sup_spec spec = {.children = kids, .nchildren = 2};
    return amb_sup_start_link(self, &spec, NULL, top, reason);
}

static const amb_app oom_app = {
    .name = "oom_app",
    .env = "[{greeting, hello}, {limits, [1, 2, 3]}]",
    .start = app_top,
};

static void app_setup(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap_reset(amb_proc_heap(self));
}

/* The first amb_app_* call starts the controller: load does here. */
static int app_op(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term reason = AMB_NONE, inner = AMB_NONE;
    int rc = amb_app_load(self, &oom_app);
    if (rc != 0)
        return rc;
    rc = amb_app_start(self, "oom_app", AMB_APP_TEMPORARY, &reason);
    if (rc == AMB_EINIT && amb_match(reason, "{oom_app,~w}", &inner) == 0)
        return ENOMEM_OF(self, "amb_app_start", rc, inner);
    if (rc != 0)
        return ENOMEM_OF(self, "amb_app_start", rc, reason);
    amb_term list = AMB_NONE;
    rc = amb_app_which_applications(self, &list);
    if (rc != 0)
        return rc;
    CHECK_OK(self, amb_match(list, "[{oom_app,_,_}]"));
    amb_term v = AMB_NONE;
    rc = amb_app_get_env(self, "oom_app", amb_atom("greeting"), &v);
    if (rc != 0)
        return rc;
    CHECK(self, v == amb_atom("hello"));
    return 0;
}

/* Stops the applications and the controller (if it runs): every process
 * of the tree ends, and the next load starts a fresh controller. */
static void app_cleanup(amb_proc *self, void *arg, int rc)
{
    (void)arg, (void)rc;
    CHECK_OK(self, amb_app_shutdown(self));
}

AMB_TEST(application_load_and_start_survive_every_allocation_failure)
{
    amb_test_oom_rt t = {.op = app_op, .setup = app_setup, .cleanup = app_cleanup};
    amb_test_oom_stats st = amb_test_oom_loop_rt(&t);
    print_stats("application load and start with a supervision tree", st);
    assert_true(st.failed_runs > 0);
}

/* ===========================================================================
 * The forms above, each made directly
 * ======================================================================== */

static amb_gen_ret oom_init(amb_proc *self, void *state, void *arg)
{
    (void)self, (void)state, (void)arg;
    return amb_gen_fail(AMB_ENOMEM);
}

static const amb_gen_server oom_init_cb = {.name = "oom_init", .init = oom_init};

static int oom_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    (void)self, (void)arg, (void)out, (void)reason;
    return AMB_ENOMEM;
}

static void forms_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    /* An init out of memory: the start is AMB_ENOMEM, with the reason. */
    amb_term reason = AMB_NONE;
    amb_pid pid = AMB_NONE;
    CHECK_RC(self, AMB_ENOMEM,
             amb_gen_server_start(self, &oom_init_cb, NULL, NULL, &pid, &reason));
    CHECK_TEXT(self, reason, "{error,'AMB_ENOMEM'}");
    CHECK(self, pid == AMB_NONE);
    /* A child's start out of memory: start_link's reason names it;
     * start_child (no reason to tell it by) is AMB_ENOMEM, nothing kept. */
    amb_child_spec oom = echo_spec("oom");
    oom.start = oom_start;
    amb_sup_spec spec = {.children = &oom, .nchildren = 1};
    CHECK_RC(self, AMB_EINIT, amb_sup_start_link(self, &spec, NULL, &pid, &reason));
    CHECK_TEXT(self, reason,
               "{shutdown,{failed_to_start_child,oom,{error,'AMB_ENOMEM'}}}");
    amb_pid sup = AMB_NONE, dyn = AMB_NONE;
    spec.nchildren = 0;
    CHECK_OK(self, amb_sup_start_link(self, &spec, NULL, &sup, NULL));
    CHECK_RC(self, AMB_ENOMEM, amb_sup_start_child(self, sup, &oom, &pid, NULL));
    amb_sup_counts n;
    CHECK_OK(self, amb_sup_count_children(self, sup, &n));
    CHECK_EQ(self, n.specs, 0);
    CHECK_OK(self, amb_dynsup_start_link(self, NULL, NULL, &dyn, NULL));
    CHECK_RC(self, AMB_ENOMEM, amb_dynsup_start_child(self, dyn, &oom, &pid, NULL));
    CHECK_OK(self, amb_sup_count_children(self, dyn, &n));
    CHECK_EQ(self, n.specs, 0);
    CHECK_OK(self, amb_gen_server_stop(self, sup, AMB_ATOM_SHUTDOWN, DEADLINE_MS));
    CHECK_OK(self, amb_gen_server_stop(self, dyn, AMB_ATOM_SHUTDOWN, DEADLINE_MS));
    take_exits(self);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(out_of_memory_in_a_start_is_enomem_or_says_so_in_the_reason)
{
    run_both(forms_body, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(gen_server_start_call_stop_survive_every_allocation_failure),
    AMB_TEST_ENTRY(gen_server_named_start_link_survives_every_allocation_failure),
    AMB_TEST_ENTRY(supervisor_start_with_children_survives_every_allocation_failure),
    AMB_TEST_ENTRY(supervisor_restart_survives_every_allocation_failure),
    AMB_TEST_ENTRY(dynamic_supervisor_start_child_survives_every_allocation_failure),
    AMB_TEST_ENTRY(application_load_and_start_survive_every_allocation_failure),
    AMB_TEST_ENTRY(out_of_memory_in_a_start_is_enomem_or_says_so_in_the_reason))

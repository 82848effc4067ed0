/*
 * tests/unit/exit_status.c - how a run ends, and the exit status a program
 * that returns amb_main's result gets (process.h, amb_main, amb_rt_run,
 * amb_rt_halt; docs/design/runtime.md, "How a run ends").
 *
 * Each program runs in a child OS process (forked before any runtime
 * thread exists) whose C main would be `return amb_main(...)`: the child
 * exits with amb_main's result, and the test checks the status the parent
 * sees. A child that hangs is killed by its alarm and fails the test.
 *
 * What is proved:
 *   - a main process that returns ends the program with status 0 once the
 *     others have ended;
 *   - a main process that fails an AMB_ASSERT while an application (a
 *     server that never ends) runs, that ends itself with `shutdown`, or
 *     that is taken down by a linked process's crash, halts the runtime at
 *     once: AMB_EMAINEXIT, a non-zero status, no hang;
 *   - a permanent application whose tree dies halts the runtime while the
 *     main process waits for ever: AMB_EAPPEXIT (erl: "Kernel pid
 *     terminated", status 1); a transient one that ends normally does not;
 *   - amb_rt_run returns the first amb_rt_halt code of its run and 0 for a
 *     later run; amb_rt_stop is no failure; amb_rt_halt refuses 0 and NULL.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amb_test.h"
#include "ambitious/application.h"
#include "ambitious/logger.h"

/* The status of a child whose C main returns amb_main(NULL, body, arg);
 * its crash reports go nowhere. */
static int status_of(amb_fn *body, void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30);
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(3);
        _exit(amb_main(NULL, body, arg));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("the child did not exit (signal %d: a hang ends by its alarm)",
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

/* The status `return code;` from C's main gives. */
static int status_for(int code)
{
    return code & 0xff;
}

static void forever(amb_proc *self, void *arg)
{
    (void)arg;
    amb_receive(self, AMB_INFINITY, NULL);
}

/* ===========================================================================
 * The main process
 * ======================================================================== */

static void returns_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    amb_spawn(self, forever, NULL, &pid);
    amb_send(self, pid, AMB_ATOM_OK); /* it ends after main returned */
}

AMB_TEST(a_main_that_returns_ends_the_program_with_status_0)
{
    assert_int_equal(status_of(returns_body, NULL), 0);
}

/* An application whose tree is one server that never ends. */
static amb_gen_ret idle_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    (void)state;
    (void)arg;
    return amb_gen_ok();
}

static const amb_gen_server idle = {.name = "idle", .init = idle_init};

static int idle_start(amb_proc *self, void *arg, amb_pid *top, amb_term *reason)
{
    (void)arg;
    return amb_gen_server_start_link(self, &idle, NULL, top, reason);
}

static const amb_app idle_app = {.name = "idle_app", .start = idle_start};

static void assert_body(amb_proc *self, void *arg)
{
    (void)arg;
    if (amb_app_load(self, &idle_app) != 0 ||
        amb_app_start(self, "idle_app", AMB_APP_PERMANENT, NULL) != 0)
        return; /* status 0: the test fails */
    AMB_ASSERT(self, 1 + 1 == 3);
}

AMB_TEST(a_main_that_fails_an_assert_while_an_application_runs_halts)
{
    assert_int_equal(status_of(assert_body, NULL), status_for(AMB_EMAINEXIT));
    assert_int_not_equal(status_for(AMB_EMAINEXIT), 0);
}

static void shutdown_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_spawn(self, forever, NULL, NULL);
    amb_exit_self(self, AMB_ATOM_SHUTDOWN);
}

AMB_TEST(a_main_that_ends_with_shutdown_halts)
{
    assert_int_equal(status_of(shutdown_body, NULL), status_for(AMB_EMAINEXIT));
}

static void crasher(amb_proc *self, void *arg)
{
    (void)arg;
    amb_exit_self(self, amb_atom("crashed"));
}

static void linked_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_spawn(self, forever, NULL, NULL);
    amb_spawn_link(self, crasher, NULL, NULL);
    amb_receive(self, AMB_INFINITY, NULL); /* ended by the link */
}

AMB_TEST(a_main_taken_down_by_a_linked_crash_halts)
{
    assert_int_equal(status_of(linked_body, NULL), status_for(AMB_EMAINEXIT));
}

/* ===========================================================================
 * Applications
 * ======================================================================== */

/* A tree that ends by itself with reason `why` a moment after it starts. */
static amb_gen_ret dying_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    *(amb_term *)state = *(amb_term *)arg; /* the reason to end with */
    return amb_gen_timeout(amb_gen_ok(), 10);
}

static amb_gen_ret dying_info(amb_proc *self, void *state, amb_term msg)
{
    (void)self;
    (void)msg;
    return amb_gen_stop(*(amb_term *)state);
}

static const amb_gen_server dying = {
    .name = "dying", .state_term = true, .init = dying_init, .handle_info = dying_info};

static int dying_start(amb_proc *self, void *arg, amb_pid *top, amb_term *reason)
{
    amb_gen_opts o = {.link = true, .arg_term = amb_atom(arg)};
    return amb_gen_server_start(self, &dying, NULL, &o, top, reason);
}

typedef struct app_case {
    amb_app_type type;
    const char *why;
} app_case;

static void app_body(amb_proc *self, void *arg)
{
    const app_case *c = arg;
    amb_app app = {.name = "dying_app", .start = dying_start, .arg = (void *)c->why};
    if (amb_app_load(self, &app) != 0 ||
        amb_app_start(self, "dying_app", c->type, NULL) != 0)
        return; /* status 0: the test fails */
    if (c->type == AMB_APP_PERMANENT) {
        amb_receive(self, AMB_INFINITY, NULL); /* the halt ends the run */
        return;
    }
    /* A transient application that ended normally stops nothing: wait for
     * it to be gone (a non-normal end of main when it is not: a failure),
     * then end the program with status 0. */
    for (int64_t until = amb_now_ms() + 10000;;) {
        amb_term apps = AMB_NONE;
        if (amb_app_which_applications(self, &apps) == 0 && apps == AMB_NIL)
            break;
        if (amb_now_ms() > until)
            amb_exit_self(self, amb_atom("still_running"));
        amb_sleep(self, 10);
    }
    amb_app_shutdown(self);
}

AMB_TEST(a_permanent_application_that_dies_halts_the_runtime)
{
    app_case c = {AMB_APP_PERMANENT, "crashed"};
    assert_int_equal(status_of(app_body, &c), status_for(AMB_EAPPEXIT));
    assert_int_not_equal(status_for(AMB_EAPPEXIT), 0);
}

AMB_TEST(a_transient_application_that_ends_normally_halts_nothing)
{
    app_case c = {AMB_APP_TRANSIENT, "normal"};
    assert_int_equal(status_of(app_body, &c), 0);
}

/* ===========================================================================
 * amb_rt_halt and amb_rt_run
 * ======================================================================== */

static void halts_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_spawn(self, forever, NULL, NULL);
    amb_rt_halt(amb_proc_rt(self), AMB_EIO);    /* the program's own reason */
    amb_rt_halt(amb_proc_rt(self), AMB_ENOMEM); /* too late: the first counts */
    amb_receive(self, AMB_INFINITY, NULL);
}

static void stops_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_spawn(self, forever, NULL, NULL);
    amb_rt_stop(amb_proc_rt(self));
}

AMB_TEST(amb_rt_run_returns_the_first_halt_code_of_its_run)
{
    amb_rt *rt;
    amb_config cfg = {.schedulers = 2};
    assert_ok(amb_rt_new(&cfg, &rt));
    assert_ok(amb_rt_spawn(rt, halts_body, NULL, NULL));
    assert_rc(AMB_EIO, amb_rt_run(rt));
    /* The next run starts clean; a stop is no failure. */
    assert_ok(amb_rt_spawn(rt, stops_body, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    assert_rc(AMB_EBADARG, amb_rt_halt(rt, 0));
    assert_rc(AMB_EBADARG, amb_rt_halt(rt, 1));
    assert_rc(AMB_EBADARG, amb_rt_halt(NULL, AMB_EIO));
    amb_rt_free(rt); /* ends the processes the halts left */
    assert_int_equal(status_of(halts_body, NULL), status_for(AMB_EIO));
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(a_main_that_returns_ends_the_program_with_status_0),
              AMB_TEST_ENTRY(a_main_that_fails_an_assert_while_an_application_runs_halts),
              AMB_TEST_ENTRY(a_main_that_ends_with_shutdown_halts),
              AMB_TEST_ENTRY(a_main_taken_down_by_a_linked_crash_halts),
              AMB_TEST_ENTRY(a_permanent_application_that_dies_halts_the_runtime),
              AMB_TEST_ENTRY(a_transient_application_that_ends_normally_halts_nothing),
              AMB_TEST_ENTRY(amb_rt_run_returns_the_first_halt_code_of_its_run))

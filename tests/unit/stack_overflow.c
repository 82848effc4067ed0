/*
 * tests/unit/stack_overflow.c - a process that runs out of stack never goes
 * unnoticed and never silently corrupts another process (issue 13, item 1;
 * process.h "Stacks", docs/design/stacks.md "Overflow").
 *
 * What is proved, with guard pages and without any (the canary alone, as
 * on a kernel without guard regions past the mprotect budget):
 *   - a recursion that calls the runtime is stopped at a runtime call with
 *     room to spare: the process ends with reason stack_overflow (its
 *     monitor's DOWN says so), the process whose stack lies below it is
 *     intact and answers, and the runtime goes on;
 *   - a recursion that never calls the runtime and crosses the end of an
 *     unguarded stack into its neighbour's is caught when the process
 *     switches out, in every build: the OS process stops with a message
 *     naming the overflow (before, a release build went on and later
 *     resumed the neighbour's corrupted context);
 *   - the same on a guarded stack faults at the guard page.
 * The harness is tests/amb_test_rt.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/rt.h"
#include "amb_test_rt.h"

/* A runtime with stack guards on (the default) or off. */
static amb_rt *new_rt(unsigned schedulers, bool guards)
{
    amb_config cfg = config_of(schedulers);
    amb_rt *rt = NULL;
    assert_ok(amb_rt_new(&cfg, &rt));
    rt->exec.stack_guards_off = !guards;
    return rt;
}

/* ---------------------------------------------------------------------------
 * A recursion that calls the runtime at every level
 * ------------------------------------------------------------------------ */

/* Holds a value in its frame while blocked, then checks it is intact. */
static void neighbour(amb_proc *self, void *arg)
{
    (void)arg;
    volatile uint64_t mine[8];
    for (int i = 0; i < 8; i++)
        mine[i] = 0x1234567800000000u + (uint64_t)i;
    amb_pid from = AMB_NONE;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{check,~p}", &from));
    bool ok = true;
    for (int i = 0; i < 8; i++)
        ok &= mine[i] == 0x1234567800000000u + (uint64_t)i;
    CHECK_OK(self, amb_send(self, from, ok ? AMB_ATOM_OK : AMB_ATOM_ERROR));
}

/* The lowest byte of the stack, for the test to look at afterwards. */
static const char *dived_lo;

__attribute__((noinline)) static int dive(amb_proc *self, int depth)
{
    volatile char pad[200];
    pad[0] = (char)depth;
    /* A runtime call at every level (it never finds a message: nothing is
     * sent to the diver); the test on its result keeps gcc's recursion
     * check quiet. */
    if (amb_receive(self, 0, NULL) == 0)
        return pad[0];
    return dive(self, depth + 1) + pad[0];
}

static void diver(amb_proc *self, void *arg)
{
    (void)arg;
    dived_lo = self->task.ctx.stack_lo;
    dive(self, 0);
}

typedef struct dive_obs {
    amb_term reason;
    bool neighbour_ok, runtime_ok;
    long lowest; /* bytes above lo of the lowest byte the stack was written at */
} dive_obs;

static void ends_at_once(amb_proc *self, void *arg)
{
    (void)self, (void)arg;
}

static void dive_main(amb_proc *self, void *arg)
{
    dive_obs *o = arg;
    amb_pid n, d, x;
    amb_term ref, ref2;
    CHECK_OK(self, amb_spawn(self, neighbour, NULL, &n));
    CHECK_OK(self, amb_spawn_monitor(self, diver, NULL, &d, &ref));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{'DOWN',~v,process,~v,~w}",
                                     ref, d, &o->reason));
    /* The diver's stack, fresh before it (zero), back in a cache now and
     * not used since: how deep was it written, the end included? */
    const char *p = dived_lo;
    while (*p == 0)
        p++;
    o->lowest = (long)(p - dived_lo);
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self, amb_send(self, n, AMB_TUPLE(h, amb_atom("check"), amb_self(self))));
    o->neighbour_ok = RECV(self) == AMB_ATOM_OK;
    CHECK_OK(self, amb_spawn_monitor(self, ends_at_once, NULL, &x, &ref2));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL,
                                     "{'DOWN',~v,process,_,normal}", ref2));
    o->runtime_ok = true;
}

AMB_TEST(a_recursion_that_calls_the_runtime_ends_with_stack_overflow)
{
    for (int guards = 0; guards <= 1; guards++)
        for (unsigned n = 1; n <= 2; n++) {
            dive_obs o = {0};
            reset_failure();
            amb_rt *rt = new_rt(n, guards);
            assert_ok(amb_rt_spawn(rt, dive_main, &o, NULL));
            assert_ok(amb_rt_run(rt));
            amb_rt_free(rt);
            assert_no_process_failure();
            assert_true(o.reason == amb_atom("stack_overflow"));
            assert_true(o.neighbour_ok);
            assert_true(o.runtime_ok);
            /* Ending took less than the margin kept for it: the stack was
             * never written below lo (and so never near its guard). */
            print_message("guards %d, %u scheduler(s): the stack was written down to lo "
                          "+ %ld (the margin is %d)\n",
                          guards, n, o.lowest, AMB__TASK_STACK_MARGIN);
            assert_true(o.lowest > 0);
        }
}

/* ---------------------------------------------------------------------------
 * A recursion that never calls the runtime (in a child OS process: it must
 * stop the whole process)
 * ------------------------------------------------------------------------ */

static const char *overflow_lo;
static long overflow_by;

/* Recurses until its frame is overflow_by bytes below the stack's lo,
 * writing 0x41 over each frame (as the reproducer did), then unwinds. */
__attribute__((noinline, noclone, no_sanitize("address"))) static int smash(void)
{
    volatile char junk[256];
    memset((char *)junk, 0x41, sizeof junk);
    if ((const char *)junk < overflow_lo - overflow_by)
        return junk[0];
    int r = smash();
    __asm__ volatile("" ::: "memory");
    return r + junk[1];
}

/* The smasher's arg: the neighbour and where it answers. */
typedef struct smash_arg {
    amb_pid neighbour, main;
} smash_arg;

static void smasher(amb_proc *self, void *arg)
{
    smash_arg *a = arg;
    overflow_lo = self->task.ctx.stack_lo;
    smash();
    /* Back up its own stack, it goes on as if nothing happened, and wakes
     * the neighbour whose saved context it wrote over: the neighbour is the
     * next to run on this scheduler when the smasher ends. The runtime must
     * stop before it resumes it. */
    amb_heap *h = amb_proc_heap(self);
    amb_send(self, a->neighbour, AMB_TUPLE(h, amb_atom("check"), a->main));
}

static void smash_main(amb_proc *self, void *arg)
{
    (void)arg;
    static smash_arg a;
    a.main = amb_self(self);
    CHECK_OK(self, amb_spawn(self, neighbour, NULL, &a.neighbour));
    /* The neighbour blocks in its receive before the smasher starts. */
    amb_yield(self);
    CHECK_OK(self, amb_spawn(self, smasher, &a, NULL));
    amb_receive(self, DEADLINE_MS, NULL);
}

/* Runs smash_main in a child OS process whose stderr goes to a file; its
 * wait status, and whether the file names the overflow. */
static int run_child(bool guards, bool *said_overflow)
{
    char path[] = "/tmp/amb_stack_overflow_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, 2);
        /* As a program without a SIGSEGV handler of its own (cmocka has
         * one): the runtime's report of a guard fault is installed. */
        signal(SIGSEGV, SIG_DFL);
        amb_rt *rt = NULL;
        amb_config cfg = config_of(1);
        if (amb_rt_new(&cfg, &rt) != 0)
            _exit(3);
        rt->exec.stack_guards_off = !guards;
        amb_rt_spawn(rt, smash_main, NULL, NULL);
        amb_rt_run(rt);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char text[4096] = "";
    ssize_t len = pread(fd, text, sizeof text - 1, 0);
    text[len > 0 ? len : 0] = '\0';
    close(fd);
    unlink(path);
    *said_overflow = strstr(text, "stack overflow") != NULL;
    print_message("child (guards %d): %s %d; stderr: %.200s\n", guards,
                  WIFSIGNALED(status) ? "signal" : "exit",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), text);
    return status;
}

AMB_TEST(an_overflow_into_the_neighbour_of_an_unguarded_stack_stops_the_os_process)
{
    /* 6 KiB past lo: through the canary and the 4 KiB red zone into the
     * top of the neighbour's stack, where its saved context lies. */
    overflow_by = 6 * 1024;
    bool said = false;
    int status = run_child(false, &said);
    /* Stopped by the runtime's panic (a sanitizer sees the bad write first
     * and reports it its own way). */
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!(AMB__CTX_ASAN || AMB__CTX_TSAN)) {
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
        assert_true(said);
    }
}

AMB_TEST(an_overflow_of_a_guarded_stack_faults_at_its_guard)
{
    overflow_by = 6 * 1024;
    bool said = false;
    int status = run_child(true, &said);
    /* Killed by SIGSEGV after one line that says what happened (a
     * sanitizer reports it its own way and exits instead). */
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!(AMB__CTX_ASAN || AMB__CTX_TSAN)) {
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
        assert_true(said);
    }
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(a_recursion_that_calls_the_runtime_ends_with_stack_overflow),
    AMB_TEST_ENTRY(
        an_overflow_into_the_neighbour_of_an_unguarded_stack_stops_the_os_process),
    AMB_TEST_ENTRY(an_overflow_of_a_guarded_stack_faults_at_its_guard))

/*
 * tests/unit/spawn_exhaust.c - running out of address space for stacks is
 * an ordinary failure of the process that needed one (issue 13, item 4:
 * the runtime panicked "no memory for a process stack" when the process
 * first ran).
 *
 * In a child OS process with RLIMIT_AS a little above what it uses (room
 * for one 1 GiB region of stacks, not two), stackful processes that block
 * in receive are spawned and monitored one at a time until one cannot get
 * a stack at its first run: it must end with {error, 'AMB_ENOMEM'} (its
 * DOWN says so), every process before it must have run (each answers), and
 * amb_spawn itself keeps succeeding (a process takes its stack when it
 * first runs: process.h). A handler process spawned before, whose next
 * activation needs a stack when none is left, ends with
 * {error, 'AMB_ENOMEM'} too instead of stopping the runtime. Then
 * everything ends normally and the child exits 0. Not under the
 * sanitizers: their shadow memory does not live with a limit on the
 * address space.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amb_test_rt.h"

/* VmSize of this process, in bytes. */
static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kib = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmSize: %zu", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib * 1024;
}

static void blocker(amb_proc *self, void *arg)
{
    amb_pid parent = *(amb_pid *)arg;
    amb_send(self, parent, AMB_ATOM_OK); /* it ran: it has its stack */
    amb_receive(self, AMB_INFINITY, NULL);
}

static int echo_handle(amb_proc *self, void *state, amb_term msg)
{
    (void)state;
    return amb_send(self, msg, AMB_ATOM_OK);
}

static const amb_handler echo = {.handle = echo_handle};

#define MAX_SPAWNS 200000

typedef struct exhaust_obs {
    int spawned, ran, stackless, spawn_rc;
    bool handler_enomem;
} exhaust_obs;

static void exhaust_main(amb_proc *self, void *arg)
{
    exhaust_obs *o = arg;
    static amb_pid me, kids[MAX_SPAWNS];
    me = amb_self(self);
    amb_pid h;
    amb_term href;
    CHECK_OK(self, amb_spawn_opt(self, NULL, NULL, &(amb_spawn_opts){.handler = &echo},
                                 &h, NULL));
    CHECK_OK(self, amb_monitor(self, h, &href));
    /* One round trip: its activation has run (it has seen the monitor). */
    CHECK_OK(self, amb_send(self, h, me));
    CHECK_OK(self, amb_receive_match(self, AMB_INFINITY, NULL, "ok"));
    /* (No timeouts from here on: arming one takes a cell, and the address
     * space is being used up; the test's own timeout bounds the waits.) */
    while (o->spawned < MAX_SPAWNS && o->stackless == 0) {
        amb_pid kid;
        amb_term ref;
        o->spawn_rc = amb_spawn_monitor(self, blocker, &me, &kid, &ref);
        if (o->spawn_rc != 0)
            break;
        kids[o->spawned++] = kid;
        /* It runs and answers, or it could get no stack and ends: nothing
         * else comes to this process now. */
        amb_term got = AMB_NONE, reason = AMB_NONE;
        CHECK_OK(self, amb_receive(self, AMB_INFINITY, &got));
        if (got == AMB_ATOM_OK) {
            o->ran++;
            CHECK_OK(self, amb_demonitor(self, ref, AMB_DEMONITOR_FLUSH));
        } else {
            CHECK_OK(self,
                     amb_match(got, "{'DOWN',~r,process,~v,~w}", ref, kid, &reason));
            CHECK(self, amb_test_is_enomem_reason(reason));
            o->stackless++;
        }
    }
    /* The handler's next activation needs a stack: none is left. */
    CHECK_OK(self, amb_send(self, h, me));
    amb_term reason = AMB_NONE;
    CHECK_OK(self, amb_receive_match(self, AMB_INFINITY, NULL,
                                     "{'DOWN',~r,process,~v,~w}", href, h, &reason));
    o->handler_enomem = amb_test_is_enomem_reason(reason);
    for (int i = 0; i < o->spawned; i++)
        amb_exit(self, kids[i], AMB_ATOM_KILL);
}

AMB_TEST(a_process_that_can_get_no_stack_ends_with_enomem)
{
#ifdef AMB_SANITIZER
    skip();
#endif
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        amb_rt *rt = NULL;
        amb_config cfg = config_of(1);
        cfg.max_processes = 1 << 20;
        if (amb_rt_new(&cfg, &rt) != 0)
            _exit(10);
        struct rlimit lim;
        lim.rlim_cur = lim.rlim_max = vm_size() + ((size_t)3 << 29); /* 1.5 GiB */
        if (setrlimit(RLIMIT_AS, &lim) != 0)
            _exit(11);
        static exhaust_obs o;
        amb_rt_spawn(rt, exhaust_main, &o, NULL);
        amb_rt_run(rt);
        amb_rt_free(rt);
        printf("spawned %d (last spawn: %s): %d ran, %d ended with ENOMEM; the handler "
               "ended with ENOMEM: %d%s%s\n",
               o.spawned, amb_err_name(o.spawn_rc), o.ran, o.stackless, o.handler_enomem,
               g_failed ? "; failed: " : "", g_failed ? g_fail_text : "");
        fflush(stdout);
        _exit(o.spawn_rc == 0 && o.stackless == 1 && o.ran == o.spawned - 1 &&
                      o.ran > 1000 && o.handler_enomem && !g_failed
                  ? 0
                  : 12);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("the child died of signal %d", WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(a_process_that_can_get_no_stack_ends_with_enomem))

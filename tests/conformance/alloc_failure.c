/*
 * tests/conformance/alloc_failure.c - the process layer under allocation
 * failure: spawn, send, timers, link, monitor. Each test is one line: an
 * operation run by amb_test_oom_loop_rt (tests/amb_test_rt.h) with every
 * allocation point failing once, in a fresh runtime each time; it must end
 * in success or AMB_ENOMEM, the runtime must still work afterwards, every
 * process must end and nothing may be left when the runtime is freed.
 *
 * The runtime's slabs (message cells, process blocks) come from the test
 * allocator's map (tests/amb_test.h), so a cell's allocation fails in these
 * loops too, wherever a pool has to take a new slab.
 */
#include "amb_test_rt.h"

/* The loop, with its figures printed; something must have failed. */
static void oom_loop(const char *what, int (*op)(amb_proc *, void *),
                     void (*cleanup)(amb_proc *, void *, int))
{
    amb_pid target = AMB_NONE;
    amb_test_oom_rt t = {.op = op, .cleanup = cleanup, .ctx = &target};
    amb_test_oom_stats st = amb_test_oom_loop_rt(&t);
    print_message("%s: %ld runs, %ld with an allocation failing, %llu allocations\n",
                  what, st.runs, st.failed_runs, (unsigned long long)st.allocations);
    assert_true(st.failed_runs > 0);
}

static void returns_at_once(amb_proc *self, void *arg)
{
    (void)self, (void)arg;
}

/* Answers {ping, From} with pong, for ever (the operations kill it). The
 * allocation that fails may be its own (a message cell): it tries again,
 * as a process that must answer does. */
static void echo(amb_proc *self, void *arg)
{
    (void)arg;
    for (;;) {
        amb_pid from = AMB_NONE;
        if (amb_receive_match(self, AMB_INFINITY, NULL, "{ping,~p}", &from) == 0)
            while (amb_send(self, from, amb_atom("pong")) == AMB_ENOMEM)
                amb_yield(self);
    }
}

/* Spawns an echo process, the target of an operation (in *ctx). */
static int spawn_target(amb_proc *self, void *ctx)
{
    return amb_spawn(self, echo, NULL, (amb_pid *)ctx);
}

/* A round trip with the target: it has handled every signal sent to it
 * before (signals between two processes arrive in order). */
static int round_trip(amb_proc *self, amb_pid target)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term ping = h == NULL ? AMB_NONE : amb_pack(h, "{ping,~p}", amb_self(self));
    int rc = ping == AMB_NONE ? AMB_ENOMEM : amb_send(self, target, ping);
    if (rc == 0)
        WAIT_MSG(self, NULL, "pong");
    return rc;
}

/* Ends the target, if one was spawned, and takes its EXIT (if linked). */
static void end_target(amb_proc *self, void *ctx, int rc)
{
    (void)rc;
    amb_pid *target = ctx;
    if (*target == AMB_NONE)
        return;
    amb_term ref = AMB_NONE;
    CHECK_OK(self, amb_monitor(self, *target, &ref));
    CHECK_OK(self, amb_exit(self, *target, AMB_ATOM_KILL));
    wait_down(self, ref, *target);
    amb_receive_match(self, 0, NULL, "{'EXIT',~v,_}", *target);
    amb_trap_exit(self, false);
    *target = AMB_NONE;
}

static int spawn_op(amb_proc *self, void *ctx)
{
    (void)ctx;
    amb_pid p = AMB_NONE;
    amb_term ref = AMB_NONE;
    int rc = amb_spawn_monitor(self, returns_at_once, NULL, &p, &ref);
    if (rc == 0)
        CHECK(self, wait_down(self, ref, p) == AMB_ATOM_NORMAL);
    return rc;
}

AMB_TEST(spawn_survives_every_allocation_failure)
{
    oom_loop("spawn_monitor", spawn_op, NULL);
}

static int send_op(amb_proc *self, void *ctx)
{
    (void)ctx;
    uint8_t bytes[200] = {0};
    amb_heap *h = amb_proc_heap(self);
    amb_term msg =
        h == NULL ? AMB_NONE : amb_pack(h, "{a,[1,2,3],~b}", bytes, sizeof bytes);
    int rc = msg == AMB_NONE ? AMB_ENOMEM : amb_send(self, amb_self(self), msg);
    if (rc == 0)
        WAIT_MSG(self, NULL, "{a,[1,2,3],_}");
    return rc;
}

AMB_TEST(send_survives_every_allocation_failure)
{
    oom_loop("send and receive", send_op, NULL);
}

static int timer_op(amb_proc *self, void *ctx)
{
    (void)ctx;
    amb_tref t;
    int rc = amb_send_after(self, amb_self(self), amb_atom("tick"), 1, &t);
    if (rc == 0)
        WAIT_MSG(self, NULL, "tick");
    if (rc == 0)
        rc = amb_send_after(self, amb_self(self), amb_atom("tock"), 60000, &t);
    if (rc == 0)
        CHECK_OK(self, amb_cancel_timer(self, t, NULL));
    return rc;
}

AMB_TEST(timers_survive_every_allocation_failure)
{
    oom_loop("send_after and cancel_timer", timer_op, NULL);
}

static int link_op(amb_proc *self, void *ctx)
{
    amb_trap_exit(self, true);
    int rc = spawn_target(self, ctx);
    if (rc == 0)
        rc = amb_link(self, *(amb_pid *)ctx);
    return rc != 0 ? rc : round_trip(self, *(amb_pid *)ctx);
}

AMB_TEST(link_survives_every_allocation_failure)
{
    oom_loop("link", link_op, end_target);
}

static int monitor_op(amb_proc *self, void *ctx)
{
    int rc = spawn_target(self, ctx);
    amb_term ref = AMB_NONE;
    if (rc == 0)
        rc = amb_monitor(self, *(amb_pid *)ctx, &ref);
    if (rc == 0)
        rc = round_trip(self, *(amb_pid *)ctx);
    if (rc == 0)
        rc = amb_demonitor(self, ref, AMB_DEMONITOR_FLUSH);
    return rc;
}

AMB_TEST(monitor_survives_every_allocation_failure)
{
    oom_loop("monitor", monitor_op, end_target);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(spawn_survives_every_allocation_failure),
              AMB_TEST_ENTRY(send_survives_every_allocation_failure),
              AMB_TEST_ENTRY(timers_survive_every_allocation_failure),
              AMB_TEST_ENTRY(link_survives_every_allocation_failure),
              AMB_TEST_ENTRY(monitor_survives_every_allocation_failure))

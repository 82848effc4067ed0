/*
 * tests/conformance/alloc_failure.c - the process layer under allocation
 * failure: spawn (plain, linked, handler, with options), send, timers,
 * link, monitor, unlink, demonitor, exit, register and sends by name,
 * aliases, monitors of names and alias monitors, process_info (counts and
 * items). Each test is one line: an
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
    if (rc == 0) {
        /* The monitor goes whether the round trip could be made or not: a
         * DOWN of it must not outlive the operation. */
        rc = round_trip(self, *(amb_pid *)ctx);
        int drc = amb_demonitor(self, ref, AMB_DEMONITOR_FLUSH);
        if (rc == 0)
            rc = drc;
    }
    return rc;
}

AMB_TEST(monitor_survives_every_allocation_failure)
{
    oom_loop("monitor", monitor_op, end_target);
}

/* Linked spawn: the caller gets the child's EXIT. */
static void ends_at_once(amb_proc *self, void *arg)
{
    (void)self, (void)arg;
}

static int spawn_link_op(amb_proc *self, void *ctx)
{
    (void)ctx;
    amb_trap_exit(self, true);
    amb_pid p = AMB_NONE;
    int rc = amb_spawn_link(self, ends_at_once, NULL, &p);
    if (rc == 0)
        CHECK(self, wait_exit(self, p) == AMB_ATOM_NORMAL);
    amb_trap_exit(self, false);
    return rc;
}

AMB_TEST(spawn_link_survives_every_allocation_failure)
{
    oom_loop("spawn_link", spawn_link_op, NULL);
}

/* A handler process with state, and a spawn with options (a name, a
 * reserved heap, a monitor). */
static int echo_handle(amb_proc *self, void *state, amb_term msg)
{
    (void)state;
    amb_pid from = AMB_NONE;
    if (amb_match(msg, "{ping,~p}", &from) != 0)
        return 0;
    int rc;
    while ((rc = amb_send(self, from, amb_atom("pong"))) == AMB_ENOMEM)
        amb_yield(self);
    return rc;
}

static const amb_handler echo_handler = {.state_size = 64, .handle = echo_handle};

static int spawn_handler_op(amb_proc *self, void *ctx)
{
    int rc = amb_spawn_handler(self, &echo_handler, NULL, (amb_pid *)ctx);
    return rc != 0 ? rc : round_trip(self, *(amb_pid *)ctx);
}

AMB_TEST(spawn_handler_survives_every_allocation_failure)
{
    oom_loop("spawn_handler", spawn_handler_op, end_target);
}

static int spawn_opt_op(amb_proc *self, void *ctx)
{
    (void)ctx;
    amb_spawn_opts o = {
        .name = amb_atom("oom_named"), .min_heap_size = 4096, .monitor = true};
    amb_pid p = AMB_NONE;
    amb_term ref = AMB_NONE;
    int rc = amb_spawn_opt(self, ends_at_once, NULL, &o, &p, &ref);
    if (rc == 0)
        CHECK(self, wait_down(self, ref, p) == AMB_ATOM_NORMAL);
    return rc;
}

AMB_TEST(spawn_opt_survives_every_allocation_failure)
{
    oom_loop("spawn_opt (name, min_heap_size, monitor)", spawn_opt_op, NULL);
}

/* A name: register, whereis, a send by name (a round trip), unregister. */
static int register_op(amb_proc *self, void *ctx)
{
    int rc = spawn_target(self, ctx);
    amb_term name = amb_atom("oom_target");
    if (rc == 0)
        rc = amb_register(self, name, *(amb_pid *)ctx);
    if (rc != 0)
        return rc;
    amb_pid found = AMB_NONE;
    CHECK_OK(self, amb_whereis(self, name, &found));
    CHECK(self, found == *(amb_pid *)ctx);
    rc = round_trip(self, name);
    CHECK_OK(self, amb_unregister(self, name));
    return rc;
}

AMB_TEST(register_survives_every_allocation_failure)
{
    oom_loop("register, send by name, unregister", register_op, end_target);
}

/* An alias: a message through it, then unalias. */
static int alias_op(amb_proc *self, void *ctx)
{
    (void)ctx;
    amb_term a = AMB_NONE;
    int rc = amb_alias(self, 0, &a);
    if (rc == 0)
        rc = amb_send(self, a, amb_atom("via_alias"));
    if (rc == 0)
        WAIT_MSG(self, NULL, "via_alias");
    if (a != AMB_NONE)
        CHECK_OK(self, amb_unalias(self, a));
    return rc;
}

AMB_TEST(alias_survives_every_allocation_failure)
{
    oom_loop("alias, send through it, unalias", alias_op, NULL);
}

/* process_info of another process (a request it answers) and of self. */
static int process_info_op(amb_proc *self, void *ctx)
{
    int rc = spawn_target(self, ctx);
    amb_proc_info pi;
    if (rc == 0)
        rc = amb_process_info(self, *(amb_pid *)ctx, &pi);
    if (rc == 0)
        CHECK(self, pi.status == AMB_STATUS_WAITING || pi.status == AMB_STATUS_RUNNABLE);
    if (rc == 0)
        rc = amb_process_info(self, amb_self(self), &pi);
    return rc;
}

AMB_TEST(process_info_survives_every_allocation_failure)
{
    oom_loop("process_info", process_info_op, end_target);
}

/* process_info's items of another process (the answer is a term it builds
 * and sends back) and of self: lists of links, monitors, messages. */
static int process_info_items_op(amb_proc *self, void *ctx)
{
    amb_pid *target = ctx;
    amb_trap_exit(self, true); /* the target's kill comes back as a message */
    int rc = spawn_target(self, ctx);
    amb_term ref = AMB_NONE;
    if (rc == 0)
        rc = amb_link(self, *target);
    if (rc == 0)
        rc = amb_monitor(self, *target, &ref);
    amb_heap *h = amb_proc_heap(self);
    amb_term items = h == NULL ? AMB_NONE : amb_pack(h, "[links,monitored_by,messages]");
    if (rc == 0 && items == AMB_NONE)
        rc = AMB_ENOMEM;
    amb_term v = AMB_NONE;
    if (rc == 0)
        rc = amb_process_info_items(self, *target, items, &v);
    if (rc == 0)
        CHECK_OK(self, amb_match(v, "[{links,[~v]},{monitored_by,[~v]},{messages,[]}]",
                                 amb_self(self), amb_self(self)));
    if (rc == 0)
        rc = amb_process_info_items(self, amb_self(self), amb_atom("monitors"), &v);
    if (rc == 0)
        CHECK_OK(self, amb_match(v, "{monitors,[{process,~v}]}", *target));
    if (ref != AMB_NONE)
        amb_demonitor(self, ref, AMB_DEMONITOR_FLUSH);
    return rc;
}

AMB_TEST(process_info_items_survive_every_allocation_failure)
{
    oom_loop("process_info items", process_info_items_op, end_target);
}

/* A monitor of a registered name, and an alias monitor whose reply ends
 * it ({alias, reply_demonitor}: a gen_server call's). The name's DOWN
 * names {Name, Node}, built in the monitor's own cell. */
static int name_and_alias_monitor_op(amb_proc *self, void *ctx)
{
    amb_pid *target = ctx;
    amb_term name = amb_atom("oom_monitored");
    int rc = spawn_target(self, ctx);
    if (rc == 0)
        rc = amb_register(self, name, *target);
    amb_term by_name = AMB_NONE, alias = AMB_NONE;
    if (rc == 0)
        rc = amb_monitor(self, name, &by_name);
    amb_monitor_opts o = {.alias = AMB_MONITOR_ALIAS_REPLY_DEMONITOR};
    if (rc == 0)
        rc = amb_monitor_opt(self, *target, &o, &alias);
    if (rc == 0)
        rc = amb_send(self, alias, amb_atom("reply"));
    if (rc == 0) {
        WAIT_MSG(self, NULL, "reply");
        /* The reply ended the monitor: nothing left to remove. */
        CHECK_RC(self, AMB_ENOTFOUND, amb_demonitor(self, alias, 0));
    }
    if (rc == 0)
        rc = amb_exit(self, *target, AMB_ATOM_KILL);
    if (rc == 0) {
        CHECK_OK(self, amb_receive_match(self, AMB_TEST_WAIT_MS, NULL,
                                         "{'DOWN',~r,process,{oom_monitored,"
                                         "'nonode@nohost'},killed}",
                                         by_name));
        *target = AMB_NONE; /* it is gone, its name with it */
    }
    if (by_name != AMB_NONE)
        amb_demonitor(self, by_name, AMB_DEMONITOR_FLUSH);
    if (alias != AMB_NONE)
        amb_demonitor(self, alias, AMB_DEMONITOR_FLUSH);
    return rc;
}

AMB_TEST(name_and_alias_monitors_survive_every_allocation_failure)
{
    oom_loop("monitor of a name, alias monitor", name_and_alias_monitor_op, end_target);
}

/* The rest of the failure API: unlink, demonitor, exit with a boxed reason
 * (the target traps: it gets the message, made in the signal's cell). */
static void trapper(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    echo(self, NULL);
}

static int exit_op(amb_proc *self, void *ctx)
{
    amb_pid *target = ctx;
    int rc = amb_spawn(self, trapper, NULL, target);
    if (rc == 0) /* it traps exits from here on */
        rc = round_trip(self, *target);
    if (rc == 0)
        rc = amb_link(self, *target);
    if (rc == 0)
        rc = amb_unlink(self, *target);
    amb_term ref = AMB_NONE;
    if (rc == 0)
        rc = amb_monitor(self, *target, &ref);
    if (rc == 0)
        rc = amb_demonitor(self, ref, AMB_DEMONITOR_FLUSH);
    amb_heap *h = amb_proc_heap(self);
    amb_term reason = h == NULL ? AMB_NONE : amb_pack(h, "{shutdown,~s}", "oom");
    if (rc == 0)
        rc = reason == AMB_NONE ? AMB_ENOMEM : amb_exit(self, *target, reason);
    return rc != 0 ? rc : round_trip(self, *target);
}

AMB_TEST(unlink_demonitor_exit_survive_every_allocation_failure)
{
    oom_loop("link, unlink, monitor, demonitor, exit", exit_op, end_target);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(spawn_survives_every_allocation_failure),
              AMB_TEST_ENTRY(send_survives_every_allocation_failure),
              AMB_TEST_ENTRY(timers_survive_every_allocation_failure),
              AMB_TEST_ENTRY(link_survives_every_allocation_failure),
              AMB_TEST_ENTRY(monitor_survives_every_allocation_failure),
              AMB_TEST_ENTRY(spawn_link_survives_every_allocation_failure),
              AMB_TEST_ENTRY(spawn_handler_survives_every_allocation_failure),
              AMB_TEST_ENTRY(spawn_opt_survives_every_allocation_failure),
              AMB_TEST_ENTRY(register_survives_every_allocation_failure),
              AMB_TEST_ENTRY(alias_survives_every_allocation_failure),
              AMB_TEST_ENTRY(process_info_survives_every_allocation_failure),
              AMB_TEST_ENTRY(process_info_items_survive_every_allocation_failure),
              AMB_TEST_ENTRY(name_and_alias_monitors_survive_every_allocation_failure),
              AMB_TEST_ENTRY(unlink_demonitor_exit_survive_every_allocation_failure))

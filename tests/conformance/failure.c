/*
 * tests/conformance/failure.c - Erlang's failure semantics (DESIGN §4,
 * docs/semantics.md): exit signals for trapping and non-trapping targets,
 * links, monitors (of pids and of registered names, with and without an
 * alias), demonitor flush, spawn_link / spawn_monitor, kill of a
 * process wherever it waits, exit_self, AMB_ASSERT, on_exit, crash reports,
 * races, a cascade through a long chain and a kill storm. Each test is named
 * after the Erlang rule it checks; the expected outcomes were checked
 * against OTP 25.
 *
 * How these tests work (tests/amb_test_rt.h): each test runs a first
 * process in a fresh runtime (once with one scheduler, once with two) until
 * every process has ended. Processes never call cmocka: a failed CHECK
 * records the first failure and stops the runtime; the test thread asserts
 * after amb_rt_run returned. Every wait has a deadline; nothing sleeps.
 *
 * The usual target is a "forwarder": it sets trap_exit as told, says ready,
 * then sends every message it receives to its parent as {got, Msg}. The
 * parent monitors it, so a death is seen as a DOWN with the exact reason.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>


#define DEADLINE_MS            10000
#define AMB_TEST_MAX_PROCESSES ((size_t)1 << 21) /* the kill storm */

#ifdef AMB_TSAN
#define CHAIN_N     1000
#define STORM_N     100000
#define RACE_PAIRS  20
#define RACE_ROUNDS 200
#define BURST_N     300
#else
#define CHAIN_N     10000
#define STORM_N     1000000
#define RACE_PAIRS  100
#define RACE_ROUNDS 1000
#define BURST_N     2000
#endif

#include "amb_test_rt.h"

/* ===========================================================================
 * Helpers
 * ======================================================================== */

static amb_term heap_of(amb_proc *self, const char *text)
{
    amb_term t = AMB_NONE;
    amb_parse(amb_proc_heap(self), text, strlen(text), &t, NULL);
    return t;
}

/* The forwarder: {init, Parent, Trap} first, then forwards everything. */
static void forwarder(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid parent;
    const char *trap;
    CHECK_OK(self,
             amb_receive_match(self, DEADLINE_MS, NULL, "{init,~p,~a}", &parent, &trap));
    amb_trap_exit(self, strcmp(trap, "true") == 0);
    CHECK_OK(self, amb_send(self, parent,
                            amb_pack(amb_proc_heap(self), "{ready,~p}", amb_self(self))));
    for (;;) {
        amb_term m;
        CHECK_OK(self, amb_receive(self, AMB_INFINITY, &m));
        CHECK_OK(self, amb_send(self, parent,
                                amb_pack(amb_proc_heap(self), "{got,~p,~w}",
                                         amb_self(self), m)));
        amb_heap_reset(amb_proc_heap(self));
    }
}

/* Spawns a forwarder monitored by the caller; waits until it is ready. */
static amb_pid start_forwarder(amb_proc *self, bool trap, amb_term *ref)
{
    amb_pid pid;
    CHECK_OK(self, amb_spawn_monitor(self, forwarder, NULL, &pid, ref));
    CHECK_OK(self, amb_send(self, pid,
                            amb_pack(amb_proc_heap(self), "{init,~p,~a}", amb_self(self),
                                     trap ? "true" : "false")));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{ready,~v}", pid));
    return pid;
}

#define CHECK_EQ_LEN(self) CHECK((self), amb_message_queue_len(self) == 0)

/* Waits for what pid forwarded; returns the message. */
static amb_term wait_got(amb_proc *self, amb_pid pid)
{
    amb_term m = AMB_NONE;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{got,~v,~w}", pid, &m));
    return m;
}

/* True when pid is alive and still answers (a ping goes through it). */
static bool answers(amb_proc *self, amb_pid pid)
{
    if (amb_send(self, pid, amb_atom("ping")) != 0)
        return false;
    amb_term m = AMB_NONE;
    if (amb_receive_match(self, DEADLINE_MS, NULL, "{got,~v,~w}", pid, &m) != 0)
        return false;
    return m == amb_atom("ping");
}

/* Ends a forwarder that survived, and checks that nothing else is queued. */
static void finish(amb_proc *self, amb_pid pid, amb_term ref)
{
    CHECK_OK(self, amb_exit(self, pid, AMB_ATOM_KILL));
    CHECK(self, wait_down(self, ref, pid) == AMB_ATOM_KILLED);
    CHECK_EQ_LEN(self);
}

/* ===========================================================================
 * DESIGN §4, row by row, for targets that do and do not trap exits
 * ======================================================================== */

static void exit_normal_ignored_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term ref;
    amb_pid t = start_forwarder(self, false, &ref);
    CHECK_OK(self, amb_exit(self, t, AMB_ATOM_NORMAL));
    CHECK(self, answers(self, t)); /* ordered after the exit signal */
    CHECK(self, amb_is_process_alive(self, t));
    finish(self, t, ref);
}

AMB_TEST(exit_normal_from_other_is_ignored_when_not_trapping)
{
    run_both(exit_normal_ignored_body, NULL);
}

static void exit_normal_trapped_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term ref;
    amb_pid t = start_forwarder(self, true, &ref);
    CHECK_OK(self, amb_exit(self, t, AMB_ATOM_NORMAL));
    amb_term m = wait_got(self, t);
    CHECK_OK(self, amb_match(m, "{'EXIT',~v,normal}", amb_self(self)));
    CHECK(self, answers(self, t));
    finish(self, t, ref);
}

AMB_TEST(exit_normal_from_other_is_a_message_when_trapping)
{
    run_both(exit_normal_trapped_body, NULL);
}

static void exit_kill_body(amb_proc *self, void *arg)
{
    bool trap = arg != NULL;
    amb_term ref;
    amb_pid t = start_forwarder(self, trap, &ref);
    CHECK_OK(self, amb_exit(self, t, AMB_ATOM_KILL));
    CHECK(self, wait_down(self, ref, t) == AMB_ATOM_KILLED);
    CHECK(self, !amb_is_process_alive(self, t));
    CHECK_EQ_LEN(self); /* a trapping target did not forward an EXIT */
}

AMB_TEST(exit_kill_kills_with_reason_killed_when_not_trapping)
{
    run_both(exit_kill_body, NULL);
}

AMB_TEST(exit_kill_is_untrappable_and_kills_with_reason_killed_when_trapping)
{
    run_both(exit_kill_body, (void *)1);
}

static const char *const other_reasons[] = {"shutdown", "boom", "{shutdown,restart}",
                                            "{badmatch,[1,2,{x,y,2.5}]}", "kill_me"};

static void exit_other_kills_body(amb_proc *self, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < sizeof other_reasons / sizeof *other_reasons; i++) {
        amb_term ref;
        amb_pid t = start_forwarder(self, false, &ref);
        CHECK_OK(self, amb_exit(self, t, heap_of(self, other_reasons[i])));
        CHECK_TEXT(self, wait_down(self, ref, t), other_reasons[i]);
    }
    CHECK_EQ_LEN(self);
    CHECK(self, amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS) ==
                    0); /* killed by a signal: no report */
}

AMB_TEST(exit_any_other_reason_including_shutdown_kills_with_it_when_not_trapping)
{
    run_both(exit_other_kills_body, NULL);
}

static void exit_other_trapped_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term ref;
    amb_pid t = start_forwarder(self, true, &ref);
    for (size_t i = 0; i < sizeof other_reasons / sizeof *other_reasons; i++) {
        CHECK_OK(self, amb_exit(self, t, heap_of(self, other_reasons[i])));
        amb_term r;
        CHECK_OK(self,
                 amb_match(wait_got(self, t), "{'EXIT',~v,~w}", amb_self(self), &r));
        CHECK_TEXT(self, r, other_reasons[i]);
    }
    CHECK(self, answers(self, t));
    finish(self, t, ref);
}

AMB_TEST(exit_any_other_reason_is_a_message_when_trapping)
{
    run_both(exit_other_trapped_body, NULL);
}

/* ---------------------------------------------------------------------------
 * Rules people get wrong
 * ------------------------------------------------------------------------ */

static void self_normal_body(amb_proc *self, void *arg)
{
    atomic_int *after = arg;
    amb_exit(self, amb_self(self), AMB_ATOM_NORMAL);
    atomic_store(after, 1); /* not reached */
}

static void self_normal_trapping_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    CHECK_OK(self, amb_exit(self, amb_self(self), AMB_ATOM_NORMAL));
    amb_term m;
    CHECK_OK(self, amb_receive(self, 0, &m));
    CHECK_OK(self, amb_match(m, "{'EXIT',~v,normal}", amb_self(self)));
    /* exit(self(), kill) is untrappable. */
    amb_exit(self, amb_self(self), AMB_ATOM_KILL);
    proc_fail(self, __FILE__, __LINE__, "survived exit(self(), kill)");
}

static void self_signals_root(amb_proc *self, void *arg)
{
    (void)arg;
    static atomic_int after;
    amb_pid a;
    amb_term ra, rb;
    CHECK_OK(self, amb_spawn_monitor(self, self_normal_body, &after, &a, &ra));
    CHECK(self, wait_down(self, ra, a) == AMB_ATOM_NORMAL);
    CHECK(self, atomic_load(&after) == 0);
    CHECK_OK(self, amb_spawn_monitor(self, self_normal_trapping_body, NULL, &a, &rb));
    CHECK(self, wait_down(self, rb, a) == AMB_ATOM_KILLED);
}

AMB_TEST(exit_normal_to_self_kills_when_not_trapping_and_is_a_message_when_trapping)
{
    run_both(self_signals_root, NULL);
}

/* A process that ends itself with reason kill: an ordinary reason. */
static void ends_with_kill(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    CHECK_OK(self, amb_link(self, parent));
    amb_exit_self(self, AMB_ATOM_KILL);
}

static void plain_linked_waiter(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term m;
    amb_receive(self, DEADLINE_MS, &m); /* ends by the link */
    proc_fail(self, __FILE__, __LINE__, "survived a linked kill reason");
}

static void exit_self_kill_root(amb_proc *self, void *arg)
{
    (void)arg;
    /* Trapping: {'EXIT', Pid, kill}, not killed. */
    amb_trap_exit(self, true);
    amb_pid c;
    CHECK_OK(self,
             amb_spawn(self, ends_with_kill, (void *)(uintptr_t)amb_self(self), &c));
    amb_term m;
    CHECK_OK(self, amb_receive(self, DEADLINE_MS, &m));
    CHECK_OK(self, amb_match(m, "{'EXIT',~v,kill}", c));
    /* Not trapping: a linked process dies with kill (not killed). */
    amb_pid w, k;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, plain_linked_waiter, NULL, &w, &ref));
    CHECK_OK(self, amb_spawn(self, ends_with_kill, (void *)(uintptr_t)w, &k));
    CHECK(self, wait_down(self, ref, w) == AMB_ATOM_KILL);
}

AMB_TEST(exit_self_with_reason_kill_is_an_ordinary_trappable_reason_for_links)
{
    run_both(exit_self_kill_root, NULL);
}

static void killed_linked(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    CHECK_OK(self, amb_link(self, parent));
    CHECK_OK(self, amb_send(self, parent, amb_atom("linked")));
    amb_term m;
    amb_receive(self, AMB_INFINITY, &m);
}

static void killed_propagates_root(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    amb_pid c;
    CHECK_OK(self, amb_spawn(self, killed_linked, (void *)(uintptr_t)amb_self(self), &c));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "linked"));
    CHECK_OK(self, amb_exit(self, c, AMB_ATOM_KILL));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{'EXIT',~v,killed}", c));
}

AMB_TEST(killed_propagates_to_links_as_killed)
{
    run_both(killed_propagates_root, NULL);
}

/* ===========================================================================
 * Links
 * ======================================================================== */

/* A child that links to the pid it is given, tells the parent, waits for go
 * and ends with its reason. */
typedef struct link_child_arg {
    amb_pid parent;
    amb_pid link_to;
    const char *reason;
} link_child_arg;

static void link_child(amb_proc *self, void *arg)
{
    link_child_arg *a = arg;
    CHECK_OK(self, amb_link(self, a->link_to));
    CHECK_OK(self, amb_send(self, a->parent, amb_atom("linked")));
    amb_term m;
    CHECK_OK(self, amb_receive(self, DEADLINE_MS, &m));
    amb_exit_self(self, heap_of(self, a->reason));
}

static void link_reasons_body(amb_proc *self, void *arg)
{
    bool trap = arg != NULL;
    static const char *const reasons[] = {"normal", "shutdown", "{shutdown,x}", "boom",
                                          "{any,[term,1.5]}"};
    static link_child_arg args[5];
    for (size_t i = 0; i < 5; i++) {
        amb_term wref, cref;
        amb_pid w = start_forwarder(self, trap, &wref);
        args[i] = (link_child_arg){amb_self(self), w, reasons[i]};
        amb_pid c;
        CHECK_OK(self, amb_spawn_monitor(self, link_child, &args[i], &c, &cref));
        CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "linked"));
        CHECK_OK(self, amb_send(self, c, amb_atom("go")));
        CHECK_TEXT(self, wait_down(self, cref, c), reasons[i]);
        if (trap) {
            amb_term r;
            CHECK_OK(self, amb_match(wait_got(self, w), "{'EXIT',~v,~w}", c, &r));
            CHECK_TEXT(self, r, reasons[i]);
            CHECK(self, answers(self, w));
            finish(self, w, wref);
        } else if (i == 0) {
            /* normal through a link is ignored by a non-trapping process. */
            CHECK(self, answers(self, w));
            finish(self, w, wref);
        } else {
            CHECK_TEXT(self, wait_down(self, wref, w), reasons[i]);
        }
    }
    CHECK_EQ_LEN(self);
}

AMB_TEST(linked_exit_normal_is_ignored_and_other_reasons_kill_when_not_trapping)
{
    run_both(link_reasons_body, NULL);
}

AMB_TEST(linked_exit_of_any_reason_is_a_message_when_trapping)
{
    run_both(link_reasons_body, (void *)1);
}

static void dead_pid(amb_proc *self, void *arg)
{
    (void)self;
    (void)arg;
}

/* A pid that has ended. */
static amb_pid a_dead_pid(amb_proc *self)
{
    amb_pid d;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, dead_pid, NULL, &d, &ref));
    CHECK(self, wait_down(self, ref, d) == AMB_ATOM_NORMAL);
    return d;
}

static void link_dead_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid d = a_dead_pid(self);
    CHECK_RC(self, AMB_ENOPROC, amb_link(self, d));
    CHECK_EQ_LEN(self);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK(self, pi.links == 0);
    CHECK(self, amb_trap_exit(self, true) == false);
    CHECK_OK(self, amb_link(self, d));
    CHECK_OK(self, amb_receive_match(self, 0, NULL, "{'EXIT',~v,noproc}", d));
    CHECK(self, amb_trap_exit(self, false) == true);
    /* Bad arguments. */
    CHECK_RC(self, AMB_EBADARG, amb_link(self, amb_atom("x")));
    CHECK_RC(self, AMB_EBADARG, amb_link(NULL, d));
    CHECK_OK(self, amb_link(self, amb_self(self))); /* no-op */
}

AMB_TEST(
    link_to_dead_pid_is_noproc_error_when_not_trapping_and_exit_message_when_trapping)
{
    run_both(link_dead_body, NULL);
}

/* A target that ends right after the link reaches it or right before: the
 * linker always hears of it, with the real reason or noproc. */
static void short_lived(amb_proc *self, void *arg)
{
    (void)arg;
    amb_exit_self(self, amb_atom("gone"));
}

static void link_race_end_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    for (int i = 0; i < BURST_N; i++) {
        amb_pid c;
        CHECK_OK(self, amb_spawn(self, short_lived, NULL, &c));
        CHECK_OK(self, amb_link(self, c));
        amb_term r;
        CHECK_OK(self,
                 amb_receive_match(self, DEADLINE_MS, NULL, "{'EXIT',~v,~w}", c, &r));
        CHECK(self, r == amb_atom("gone") || r == AMB_ATOM_NOPROC);
    }
    CHECK_EQ_LEN(self);
}

AMB_TEST(link_racing_with_target_end_gives_exactly_one_exit_real_reason_or_noproc)
{
    run_both(link_race_end_body, NULL);
}

static void unlink_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term wref;
    amb_pid w = start_forwarder(self, false, &wref);
    /* Link, unlink, then the other ends abnormally: no effect on us. */
    CHECK_OK(self, amb_link(self, w));
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK(self, pi.links == 1);
    CHECK_OK(self, amb_unlink(self, w));
    CHECK_OK(self, amb_unlink(self, w)); /* idempotent */
    CHECK_OK(self, amb_exit(self, w, amb_atom("boom")));
    CHECK_TEXT(self, wait_down(self, wref, w), "boom");
    CHECK_EQ_LEN(self);
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK(self, pi.links == 0);
}

AMB_TEST(unlink_removes_the_link_both_ways)
{
    run_both(unlink_body, NULL);
}

/* ===========================================================================
 * Monitors
 * ======================================================================== */

static void monitor_dead_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid d = a_dead_pid(self);
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, d, &ref));
    CHECK(self, amb_type_of(ref) == AMB_T_REF);
    CHECK_OK(self,
             amb_receive_match(self, 0, NULL, "{'DOWN',~r,process,~v,noproc}", ref, d));
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK(self, pi.monitors == 0);
    CHECK_RC(self, AMB_ENOTFOUND, amb_demonitor(self, ref, 0));
    /* A caller that does not want the reference passes NULL; the DOWN
     * comes all the same. */
    CHECK_OK(self, amb_monitor(self, d, NULL));
    CHECK_OK(self, amb_receive_match(self, 0, NULL, "{'DOWN',_,process,~v,noproc}", d));
}

AMB_TEST(monitor_of_dead_pid_gives_immediate_down_noproc)
{
    run_both(monitor_dead_body, NULL);
}

static void several_monitors_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term r0;
    amb_pid t = start_forwarder(self, false, &r0);
    amb_term refs[5];
    for (int i = 0; i < 5; i++)
        CHECK_OK(self, amb_monitor(self, t, &refs[i]));
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < i; j++)
            CHECK(self, !amb_equal(refs[i], refs[j]));
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK(self, pi.monitors == 6);
    CHECK_OK(self, amb_exit(self, t, amb_atom("bye")));
    CHECK(self, wait_down(self, r0, t) == amb_atom("bye"));
    for (int i = 4; i >= 0; i--)
        CHECK(self, wait_down(self, refs[i], t) == amb_atom("bye"));
    CHECK_EQ_LEN(self);
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK(self, pi.monitors == 0);
}

AMB_TEST(several_monitors_on_one_target_each_get_their_down)
{
    run_both(several_monitors_body, NULL);
}

static void demonitor_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term r0, r1, r2;
    amb_pid t = start_forwarder(self, false, &r0);
    CHECK_OK(self, amb_monitor(self, t, &r1));
    CHECK_OK(self, amb_monitor(self, t, &r2));
    /* Plain demonitor before the end: no DOWN for r1 ever. */
    CHECK_OK(self, amb_demonitor(self, r1, 0));
    CHECK_RC(self, AMB_ENOTFOUND, amb_demonitor(self, r1, 0));
    CHECK_OK(self, amb_exit(self, t, amb_atom("bye")));
    /* Wait until r0's DOWN is here: r2's was sent before... or after it;
     * either way, once both are queued a flush removes r2's. */
    CHECK(self, wait_down(self, r0, t) == amb_atom("bye"));
    WAIT_UNTIL(self, amb_message_queue_len(self) == 1);
    /* A flush is not a receive: the message borrowed last stays valid. */
    CHECK_OK(self, amb_send(self, amb_self(self), heap_of(self, "{keep,[1,2]}")));
    amb_term kept;
    CHECK_OK(self, amb_receive_match(self, 0, &kept, "{keep,_}"));
    CHECK_RC(self, AMB_ENOTFOUND, amb_demonitor(self, r2, AMB_DEMONITOR_FLUSH));
    CHECK_EQ_LEN(self);
    CHECK_TEXT(self, kept, "{keep,[1,2]}");
}

static void demonitor_in_flight_body(amb_proc *self, void *arg)
{
    (void)arg;
    /* demonitor (with or without flush) racing with the end: afterwards no
     * DOWN of that monitor ever reaches the mailbox. */
    for (int i = 0; i < BURST_N; i++) {
        amb_pid c;
        amb_term ref, ref2;
        CHECK_OK(self, amb_spawn(self, short_lived, NULL, &c));
        CHECK_OK(self, amb_monitor(self, c, &ref));
        CHECK_OK(self, amb_monitor(self, c, &ref2)); /* a witness */
        int rc = amb_demonitor(self, ref, (i & 1) ? AMB_DEMONITOR_FLUSH : 0);
        CHECK(self, rc == 0 || rc == AMB_ENOTFOUND);
        amb_term r = wait_down(self, ref2, c);
        CHECK(self, r == amb_atom("gone") || r == AMB_ATOM_NOPROC);
        if (rc == 0 || (i & 1)) {
            CHECK_EQ_LEN(self);
        } else {
            CHECK_OK(self, amb_receive_match(self, 0, NULL, "{'DOWN',~r,_,_,_}", ref));
        }
    }
}

AMB_TEST(demonitor_flush_removes_a_queued_down)
{
    run_both(demonitor_body, NULL);
}

AMB_TEST(demonitor_guarantees_no_later_down_even_racing_with_the_end)
{
    run_both(demonitor_in_flight_body, NULL);
}

/* ===========================================================================
 * Monitors of registered names (issue 13, item 11; recorded on OTP 25)
 * ======================================================================== */

/* monitor(process, Name) and monitor(process, {Name, node()}) watch the
 * process registered under Name when the monitor is made (unregistering it
 * later does not matter), and the DOWN names it {Name, Node}; demonitor works
 * as for a pid. */
static void monitor_name_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term r0;
    amb_pid t = start_forwarder(self, false, &r0);
    amb_term name = amb_atom("mon_target");
    CHECK_OK(self, amb_register(self, name, t));
    amb_term r1, r2, r3;
    CHECK_OK(self, amb_monitor(self, name, &r1));
    CHECK_OK(self, amb_monitor(self, heap_of(self, "{mon_target,'nonode@nohost'}"), &r2));
    CHECK_OK(self, amb_monitor(self, name, &r3));
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK_EQ(self, pi.monitors, 4);
    CHECK_OK(self, amb_demonitor(self, r3, 0));
    CHECK_RC(self, AMB_ENOTFOUND, amb_demonitor(self, r3, 0));
    CHECK_OK(self, amb_unregister(self, name));
    CHECK_OK(self, amb_exit(self, t, amb_atom("bye")));
    CHECK(self, wait_down(self, r0, t) == amb_atom("bye"));
    amb_term m;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, &m, "{'DOWN',~r,_,_,_}", r1));
    CHECK_TEXT(self, amb_tuple_elem(m, 3), "{mon_target,nonode@nohost}");
    CHECK(self, amb_tuple_elem(m, 2) == AMB_ATOM_PROCESS);
    CHECK(self, amb_tuple_elem(m, 4) == amb_atom("bye"));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, &m, "{'DOWN',~r,_,_,_}", r2));
    CHECK_TEXT(self, amb_tuple_elem(m, 3), "{mon_target,nonode@nohost}");
    CHECK_EQ_LEN(self); /* none for the demonitored r3 */
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK_EQ(self, pi.monitors, 0);
}

AMB_TEST(monitor_of_a_registered_name_gives_a_down_naming_name_and_node)
{
    run_both(monitor_name_body, NULL);
}

/* A name nobody has: an immediate DOWN noproc naming {Name, Node} (also for
 * `undefined`, which nobody can register). Another node is not served until
 * distribution exists; anything but a pid, an atom or {atom, atom} is
 * badarg, as in OTP. */
static void monitor_no_name_body(amb_proc *self, void *arg)
{
    (void)arg;
    static const char *const names[] = {"nobody", "{nobody,'nonode@nohost'}",
                                        "undefined"};
    static const char *const objects[] = {
        "{nobody,nonode@nohost}", "{nobody,nonode@nohost}", "{undefined,nonode@nohost}"};
    for (size_t i = 0; i < AMB_COUNTOF(names); i++) {
        amb_term ref, m;
        CHECK_OK(self, amb_monitor(self, heap_of(self, names[i]), &ref));
        CHECK_OK(self,
                 amb_receive_match(self, 0, &m, "{'DOWN',~r,process,_,noproc}", ref));
        CHECK_TEXT(self, amb_tuple_elem(m, 3), objects[i]);
        CHECK_RC(self, AMB_ENOTFOUND, amb_demonitor(self, ref, 0));
    }
    CHECK_RC(self, AMB_ENOTSUP,
             amb_monitor(self, heap_of(self, "{nobody,'other@host'}"), NULL));
    static const char *const bad[] = {"{a,b,c}", "{1,'nonode@nohost'}", "{a,1}",
                                      "[a]",     "<<\"a\">>",           "{}"};
    for (size_t i = 0; i < AMB_COUNTOF(bad); i++)
        CHECK_RC(self, AMB_EBADARG, amb_monitor(self, heap_of(self, bad[i]), NULL));
    CHECK_RC(self, AMB_EBADARG, amb_monitor(self, amb_make_ref(self), NULL));
    amb_term alias;
    CHECK_OK(self, amb_alias(self, 0, &alias));
    CHECK_RC(self, AMB_EBADARG, amb_monitor(self, alias, NULL));
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK_EQ(self, pi.monitors, 0);
    CHECK_EQ_LEN(self);
}

AMB_TEST(monitor_of_a_name_nobody_has_gives_immediate_down_noproc_with_name_and_node)
{
    run_both(monitor_no_name_body, NULL);
}

/* ===========================================================================
 * Alias monitors (OTP 24's monitor(process, P, [{alias, _}]))
 * ======================================================================== */

static void waiter_until_stop(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK(self, RECV(self) == AMB_ATOM_STOP);
}

/* A third process that, once the target has ended (its own DOWN), sends
 * `late` through the alias, then `sent` to the test. */
static void late_sender(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term m = RECV(self); /* {Target, Alias, Test} */
    amb_term kept;
    CHECK_OK(self, amb_term_copy(amb_proc_heap(self), m, &kept));
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, amb_tuple_elem(kept, 0), &ref));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{'DOWN',~r,_,_,_}", ref));
    CHECK_OK(self, amb_send(self, amb_tuple_elem(kept, 1), amb_atom("late")));
    CHECK_OK(self, amb_send(self, amb_tuple_elem(kept, 2), amb_atom("sent")));
}

static void alias_monitor_body(amb_proc *self, void *arg)
{
    const unsigned *nsched = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_proc_info pi;
    /* demonitor: the reference is an alias while the monitor lasts. */
    amb_pid t, ls;
    CHECK_OK(self, amb_spawn(self, waiter_until_stop, NULL, &t));
    amb_monitor_opts dem = {.alias = AMB_MONITOR_ALIAS_DEMONITOR};
    amb_term a;
    CHECK_OK(self, amb_monitor_opt(self, t, &dem, &a));
    CHECK_OK(self, amb_send(self, a, amb_atom("via")));
    CHECK(self, RECV(self) == amb_atom("via"));
    CHECK_OK(self, amb_send(self, a, amb_atom("again"))); /* not a reply alias */
    CHECK(self, RECV(self) == amb_atom("again"));
    /* The target ends; a message sent through the alias after that, taken in
     * after the DOWN, is dropped. */
    CHECK_OK(self, amb_spawn(self, late_sender, NULL, &ls));
    CHECK_OK(self, amb_send(self, ls, AMB_TUPLE(h, t, a, amb_self(self))));
    CHECK_OK(self, amb_send(self, t, AMB_ATOM_STOP));
    bool down = false, late_before_down = false;
    for (bool sent = false; !sent || !down;) {
        amb_term m = RECV(self);
        if (m == amb_atom("sent")) {
            sent = true;
        } else if (m == amb_atom("late")) {
            CHECK(self, !down); /* only while the alias was active */
            late_before_down = true;
        } else {
            CHECK_OK(self, amb_match(m, "{'DOWN',~r,process,~v,normal}", a, t));
            down = true;
        }
    }
    /* On one scheduler the target's end is complete (our DOWN sent) before
     * the late sender runs: the late message always comes after the DOWN. */
    CHECK(self, *nsched == 2 || !late_before_down);
    CHECK_RC(self, AMB_ENOTFOUND, amb_unalias(self, a));
    CHECK_OK(self, amb_send(self, a, amb_atom("after")));
    CHECK_EQ_LEN(self);

    /* demonitor ends the alias too; unalias alone leaves the monitor. */
    CHECK_OK(self, amb_spawn(self, waiter_until_stop, NULL, &t));
    CHECK_OK(self, amb_monitor_opt(self, t, &dem, &a));
    CHECK_OK(self, amb_demonitor(self, a, 0));
    CHECK_RC(self, AMB_ENOTFOUND, amb_unalias(self, a));
    CHECK_OK(self, amb_monitor_opt(self, t, &dem, &a));
    CHECK_OK(self, amb_unalias(self, a));
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK_EQ(self, pi.monitors, 1);
    CHECK_OK(self, amb_demonitor(self, a, 0));

    /* explicit_unalias: the alias outlives the monitor. */
    amb_monitor_opts expl = {.alias = AMB_MONITOR_ALIAS_EXPLICIT};
    CHECK_OK(self, amb_monitor_opt(self, t, &expl, &a));
    CHECK_OK(self, amb_demonitor(self, a, 0));
    CHECK_OK(self, amb_send(self, a, amb_atom("still")));
    CHECK(self, RECV(self) == amb_atom("still"));
    CHECK_OK(self, amb_unalias(self, a));

    /* reply_demonitor: the first message through the alias ends both. */
    amb_monitor_opts rep = {.alias = AMB_MONITOR_ALIAS_REPLY_DEMONITOR};
    CHECK_OK(self, amb_monitor_opt(self, t, &rep, &a));
    CHECK_OK(self, amb_send(self, a, amb_atom("first")));
    CHECK_OK(self, amb_send(self, a, amb_atom("second")));
    CHECK(self, RECV(self) == amb_atom("first"));
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK_EQ(self, pi.monitors, 0);
    CHECK_RC(self, AMB_ENOTFOUND, amb_demonitor(self, a, 0));
    CHECK_RC(self, AMB_ENOTFOUND, amb_unalias(self, a));
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, t, &ref));
    CHECK_OK(self, amb_send(self, t, AMB_ATOM_STOP));
    CHECK(self, wait_down(self, ref, t) == AMB_ATOM_NORMAL);
    CHECK_EQ_LEN(self); /* no `second`, no DOWN of the reply monitor */

    /* A name, with an alias: the DOWN has the alias and {Name, Node}; a
     * flush removes a DOWN already taken in. */
    CHECK_OK(self, amb_spawn(self, waiter_until_stop, NULL, &t));
    CHECK_OK(self, amb_register(self, amb_atom("alias_target"), t));
    CHECK_OK(self, amb_monitor_opt(self, amb_atom("alias_target"), &dem, &a));
    CHECK_OK(self, amb_monitor(self, t, &ref));
    CHECK_OK(self, amb_send(self, t, AMB_ATOM_STOP));
    CHECK(self, wait_down(self, ref, t) == AMB_ATOM_NORMAL);
    amb_term m;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, &m,
                                     "{'DOWN',~r,process,{alias_target,'nonode@nohost'},"
                                     "normal}",
                                     a));
    CHECK_OK(self, amb_spawn(self, waiter_until_stop, NULL, &t));
    CHECK_OK(self, amb_monitor_opt(self, t, &dem, &a));
    CHECK_OK(self, amb_monitor(self, t, &ref));
    CHECK_OK(self, amb_send(self, t, AMB_ATOM_STOP));
    CHECK(self, wait_down(self, ref, t) == AMB_ATOM_NORMAL);
    WAIT_UNTIL(self, amb_message_queue_len(self) == 1);
    CHECK_RC(self, AMB_ENOTFOUND, amb_demonitor(self, a, AMB_DEMONITOR_FLUSH));
    CHECK_EQ_LEN(self);
    /* Bad kinds. */
    amb_monitor_opts bad = {.alias = (amb_monitor_alias)7};
    CHECK_RC(self, AMB_EBADARG, amb_monitor_opt(self, t, &bad, &a));
}

AMB_TEST(alias_monitor_drops_what_comes_through_its_alias_after_the_down)
{
    unsigned n = 1;
    run_in(1, alias_monitor_body, &n);
    n = 2;
    run_in(2, alias_monitor_body, &n);
}

/* ===========================================================================
 * spawn_link / spawn_monitor
 * ======================================================================== */

static void die_at_once(amb_proc *self, void *arg)
{
    amb_exit_self(self, amb_int(NULL, (int64_t)(intptr_t)arg));
}

static void spawn_link_burst_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    static amb_pid pids[BURST_N];
    for (int i = 0; i < BURST_N; i++)
        CHECK_OK(self, amb_spawn_link(self, die_at_once, (void *)(intptr_t)i, &pids[i]));
    for (int i = 0; i < BURST_N; i++) {
        amb_pid from;
        int64_t reason;
        CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{'EXIT',~p,~l}", &from,
                                         &reason));
        CHECK(self, reason >= 0 && reason < BURST_N && pids[reason] == from);
        pids[reason] = AMB_NONE; /* exactly once */
    }
    CHECK_EQ_LEN(self);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK(self, pi.links == 0);
}

AMB_TEST(spawn_link_children_that_die_immediately_each_send_one_exit)
{
    run_both(spawn_link_burst_body, NULL);
}

static void spawn_link_nontrapping_parent(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid c;
    CHECK_OK(self, amb_spawn_link(self, die_at_once, (void *)(intptr_t)7, &c));
    amb_term m;
    amb_receive(self, DEADLINE_MS, &m);
    proc_fail(self, __FILE__, __LINE__, "survived a linked child's crash");
}

static void spawn_link_nontrapping_root(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid p;
    amb_term ref;
    CHECK_OK(self,
             amb_spawn_monitor(self, spawn_link_nontrapping_parent, NULL, &p, &ref));
    CHECK_TEXT(self, wait_down(self, ref, p), "7");
}

AMB_TEST(spawn_link_child_crash_kills_a_non_trapping_parent_with_its_reason)
{
    run_both(spawn_link_nontrapping_root, NULL);
}

static void spawn_monitor_burst_body(amb_proc *self, void *arg)
{
    (void)arg;
    for (int i = 0; i < BURST_N; i++) {
        amb_pid c;
        amb_term ref;
        CHECK_OK(self,
                 amb_spawn_monitor(self, die_at_once, (void *)(intptr_t)i, &c, &ref));
        amb_term r = wait_down(self, ref, c);
        int64_t v = -1;
        CHECK_OK(self, amb_int_get(r, &v));
        CHECK(self, v == i); /* never noproc: the monitor was there first */
    }
    CHECK_EQ_LEN(self);
}

AMB_TEST(spawn_monitor_is_atomic_child_dying_at_once_gives_its_real_reason)
{
    run_both(spawn_monitor_burst_body, NULL);
}

/* ===========================================================================
 * Ordering
 * ======================================================================== */

typedef struct order_arg {
    amb_pid target;
    int n;
} order_arg;

static void order_sender(amb_proc *self, void *arg)
{
    order_arg *a = arg;
    for (int i = 0; i < a->n; i++)
        CHECK_OK(self, amb_send(self, a->target, amb_int(NULL, i)));
    CHECK_OK(self, amb_exit(self, a->target, amb_atom("after_all")));
}

static void order_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    static order_arg a;
    a = (order_arg){amb_self(self), BURST_N * 5};
    amb_pid s;
    CHECK_OK(self, amb_spawn(self, order_sender, &a, &s));
    for (int i = 0; i < a.n; i++) {
        amb_term m;
        CHECK_OK(self, amb_receive(self, DEADLINE_MS, &m));
        int64_t v = -1;
        CHECK_OK(self, amb_int_get(m, &v));
        CHECK(self, v == i);
    }
    amb_term m;
    CHECK_OK(self, amb_receive(self, DEADLINE_MS, &m));
    CHECK_OK(self, amb_match(m, "{'EXIT',~v,after_all}", s));
}

AMB_TEST(exit_signal_is_ordered_after_messages_sent_before_it_by_the_same_sender)
{
    run_both(order_body, NULL);
}

/* ===========================================================================
 * Killing really stops the target, wherever it waits
 * ======================================================================== */

static void in_receive(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    amb_send(self, parent, amb_atom("waiting"));
    amb_term m;
    amb_receive(self, AMB_INFINITY, &m);
    proc_fail(self, __FILE__, __LINE__, "receive returned after kill");
}

static void in_sleep(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    amb_send(self, parent, amb_atom("waiting"));
    amb_sleep(self, 60000);
    proc_fail(self, __FILE__, __LINE__, "sleep returned after kill");
}

static void in_receive_timeout(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    amb_send(self, parent, amb_atom("waiting"));
    amb_term m;
    amb_receive_match(self, 60000, &m, "never_sent");
    proc_fail(self, __FILE__, __LINE__, "receive with timeout returned after kill");
}

static atomic_int g_blocking_release, g_blocking_done;

static intptr_t blocking_fn(void *arg)
{
    (void)arg;
    /* Waits until the test has seen the caller's DOWN (bounded). */
    int64_t until = amb_now_ms() + DEADLINE_MS;
    while (!atomic_load(&g_blocking_release) && amb_now_ms() < until)
        sched_yield();
    atomic_store(&g_blocking_done, 1);
    return 42;
}

static void in_blocking_call(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    amb_send(self, parent, amb_atom("waiting"));
    intptr_t r;
    amb_blocking_call(self, blocking_fn, NULL, &r);
    proc_fail(self, __FILE__, __LINE__, "blocking call returned after kill");
}

static void in_busy_loop(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    amb_send(self, parent, amb_atom("waiting"));
    /* Runs without ever waiting; every send is a runtime call. */
    for (;;)
        amb_send(self, amb_self(self), amb_atom("spin")),
            amb_receive(self, 0, &(amb_term){0});
}

static atomic_int g_cleanups;

static void count_cleanup(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&g_cleanups, 1);
}

static void kill_where_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_fn *fns[] = {in_receive, in_sleep, in_receive_timeout, in_blocking_call,
                     in_busy_loop};
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
        for (int reason_kind = 0; reason_kind < 2; reason_kind++) {
            amb_pid c;
            amb_term ref;
            atomic_store(&g_blocking_release, 0);
            atomic_store(&g_blocking_done, 0);
            CHECK_OK(self,
                     amb_spawn_monitor(self, fns[i], (void *)(uintptr_t)amb_self(self),
                                       &c, &ref));
            CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "waiting"));
            amb_term reason = reason_kind ? amb_atom("shutdown") : AMB_ATOM_KILL;
            CHECK_OK(self, amb_exit(self, c, reason));
            amb_term got = wait_down(self, ref, c);
            CHECK(self, got == (reason_kind ? amb_atom("shutdown") : AMB_ATOM_KILLED));
            CHECK(self, !amb_is_process_alive(self, c));
            if (fns[i] == in_blocking_call) {
                /* The C call still finishes; its result is discarded. */
                CHECK(self, atomic_load(&g_blocking_done) == 0);
                atomic_store(&g_blocking_release, 1);
                WAIT_UNTIL(self, atomic_load(&g_blocking_done) == 1);
            }
        }
    }
    CHECK_EQ_LEN(self);
}

AMB_TEST(kill_stops_a_process_in_receive_sleep_timed_receive_blocking_call_or_running)
{
    run_both(kill_where_body, NULL);
}

/* ===========================================================================
 * Ending: exit_self from any depth, AMB_ASSERT, on_exit, crash reports
 * ======================================================================== */

/* volatile: the compiler must not turn the recursion into a loop. */
static volatile int g_depth_guard = 1;

static int deep(amb_proc *self, int n)
{
    if (n == 0) {
        if (g_depth_guard)
            amb_exit_self(self, amb_pack(amb_proc_heap(self), "{deep,~i}", 200));
        return 0;
    }
    return deep(self, n - 1) + g_depth_guard;
}

static void deep_body(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, amb_on_exit(self, count_cleanup, NULL));
    CHECK_OK(self, amb_on_exit(self, count_cleanup, NULL));
    deep(self, 200);
}

static void deep_root(amb_proc *self, void *arg)
{
    (void)arg;
    atomic_store(&g_cleanups, 0);
    amb_pid c;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, deep_body, NULL, &c, &ref));
    CHECK_TEXT(self, wait_down(self, ref, c), "{deep,200}");
    CHECK(self, atomic_load(&g_cleanups) == 2);
}

AMB_TEST(exit_self_ends_the_process_at_once_from_deep_in_the_stack)
{
    run_both(deep_root, NULL);
}

static int g_assert_line;

static void assert_body(amb_proc *self, void *arg)
{
    int x = (int)(intptr_t)arg;
    g_assert_line = __LINE__ + 1;
    AMB_ASSERT(self, x == 2);
    proc_fail(self, __FILE__, __LINE__, "survived a failed AMB_ASSERT");
}

static void assert_root(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid c;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, assert_body, (void *)(intptr_t)1, &c, &ref));
    amb_term r = wait_down(self, ref, c);
    const uint8_t *file, *expr;
    size_t flen, elen;
    int line;
    CHECK_OK(self, amb_match(r, "{assert,[{file,~b},{line,~i},{expression,~b}]}", &file,
                             &flen, &line, &expr, &elen));
    CHECK(self, line == g_assert_line);
    CHECK(self, flen >= 9 && memcmp(file + flen - 9, "failure.c", 9) == 0);
    CHECK(self, elen == 6 && memcmp(expr, "x == 2", 6) == 0);
    CHECK(self, amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS) == 1); /* a crash report */
}

AMB_TEST(failed_assert_ends_the_process_with_a_reason_naming_file_and_line)
{
    run_both(assert_root, NULL);
}

static void cleanup_waiter(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    amb_on_exit(self, count_cleanup, NULL);
    amb_on_exit(self, count_cleanup, (void *)1);
    CHECK_OK(self, amb_on_exit_cancel(self, count_cleanup, (void *)1));
    CHECK_RC(self, AMB_ENOTFOUND, amb_on_exit_cancel(self, count_cleanup, (void *)2));
    CHECK_OK(self, amb_send(self, parent, amb_atom("x")));
    amb_term m;
    amb_receive(self, AMB_INFINITY, &m);
}

static void cleanup_returns(amb_proc *self, void *arg)
{
    (void)arg;
    amb_on_exit(self, count_cleanup, NULL);
}

static void on_exit_root(amb_proc *self, void *arg)
{
    (void)arg;
    atomic_store(&g_cleanups, 0);
    amb_pid c;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, cleanup_waiter,
                                     (void *)(uintptr_t)amb_self(self), &c, &ref));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "x"));
    CHECK_OK(self, amb_exit(self, c, AMB_ATOM_KILL));
    CHECK(self, wait_down(self, ref, c) == AMB_ATOM_KILLED);
    CHECK(self, atomic_load(&g_cleanups) == 1); /* before the DOWN */
    CHECK_OK(self, amb_spawn_monitor(self, cleanup_returns, NULL, &c, &ref));
    CHECK(self, wait_down(self, ref, c) == AMB_ATOM_NORMAL);
    CHECK(self, atomic_load(&g_cleanups) == 2);
}

AMB_TEST(on_exit_handlers_run_when_killed_and_when_returning)
{
    run_both(on_exit_root, NULL);
}

static void crasher(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, amb_register(self, amb_atom("the_crasher"), amb_self(self)));
    amb_term m;
    CHECK_OK(self, amb_receive(self, DEADLINE_MS, &m));
    amb_exit_self(self, heap_of(self, "{badarg,[{where,here}]}"));
}

static void quiet_ender(amb_proc *self, void *arg)
{
    amb_exit_self(self, heap_of(self, arg));
}

static void crash_report_root(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid c;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, crasher, NULL, &c, &ref));
    WAIT_UNTIL(self, amb_whereis(self, amb_atom("the_crasher"), &(amb_pid){0}) == 0);
    CHECK_OK(self, amb_send(self, c, heap_of(self, "{last,message,42}")));
    wait_down(self, ref, c);
    CHECK(self, amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS) == 1);
    char pidtext[64], report[1024];
    amb_print(c, pidtext, sizeof pidtext, NULL);
    amb_pid report_pid = AMB_NONE;
    amb_test_log_last_report(report, sizeof report, &report_pid);
    bool ok = report_pid == c && strstr(report, "CRASH REPORT") &&
              strstr(report, pidtext) && strstr(report, "the_crasher") &&
              strstr(report, "{badarg,[{where,here}]}") &&
              strstr(report, "{last,message,42}");
    if (!ok)
        proc_fail(self, __FILE__, __LINE__, "crash report: %s", report);
    /* normal, shutdown, {shutdown, _} and deaths by signal: no report. */
    static const char *const quiet[] = {"normal", "shutdown", "{shutdown,bye}"};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(self, amb_spawn_monitor(self, quiet_ender, (void *)quiet[i], &c, &ref));
        wait_down(self, ref, c);
    }
    amb_term r2;
    c = start_forwarder(self, false, &r2);
    CHECK_OK(self, amb_exit(self, c, amb_atom("boom")));
    wait_down(self, r2, c);
    CHECK(self, amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS) == 1);
}

AMB_TEST(crash_report_names_pid_registered_name_reason_and_last_message)
{
    run_both(crash_report_root, NULL);
}

static void logger_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_rt *rt = amb_proc_rt(self);
    int before = amb_test_log_count(AMB_TEST_LOG_ALL);
    CHECK_OK(self, amb_log(self, AMB_LOG_NOTICE, "hello %d", 42));
    CHECK(self, amb_test_log_count(AMB_TEST_LOG_ALL) == before + 1);
    char text[256];
    amb_log_level level = AMB_LOG_DEBUG;
    amb_test_log_last_event(text, sizeof text, &level);
    CHECK(self, level == AMB_LOG_NOTICE && strcmp(text, "hello 42\n") == 0);
    CHECK_OK(self, amb_log(self, AMB_LOG_INFO, "below the default level"));
    CHECK(self, amb_test_log_count(AMB_TEST_LOG_ALL) == before + 1);
    /* At level critical a crash report (error) is dropped too. */
    CHECK_OK(self, amb_logger_set_level(rt, AMB_LOG_CRITICAL));
    amb_pid c;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, quiet_ender, (void *)"boom", &c, &ref));
    wait_down(self, ref, c);
    CHECK(self, amb_test_log_count(AMB_TEST_LOG_ALL) == before + 1);
    CHECK_OK(self, amb_logger_set_level(rt, AMB_LOG_DEBUG));
    CHECK_OK(self, amb_log(self, AMB_LOG_DEBUG, "now %s", "seen"));
    CHECK(self, amb_test_log_count(AMB_TEST_LOG_ALL) == before + 2);
    CHECK_RC(self, AMB_EBADARG, amb_logger_set_level(rt, (amb_log_level)99));
    CHECK_RC(self, AMB_EBADARG, amb_log(self, (amb_log_level)-1, "x"));
    CHECK_RC(self, AMB_EBADARG, amb_logger_set_handler(NULL, amb_test_log_handler, NULL));
}

AMB_TEST(logger_levels_filter_events_and_the_handler_gets_them)
{
    run_both(logger_body, NULL);
}

/* ===========================================================================
 * Handler processes
 * ======================================================================== */

static int fwd_handle(amb_proc *self, void *state, amb_term msg)
{
    amb_pid parent = *(amb_pid *)state;
    return amb_send(self, parent,
                    amb_pack(amb_proc_heap(self), "{got,~p,~w}", amb_self(self), msg));
}

static int fwd_init(amb_proc *self, void *state, void *arg)
{
    *(amb_pid *)state = (amb_pid)(uintptr_t)arg;
    amb_trap_exit(self, true);
    return 0;
}

static int plain_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    *(amb_pid *)state = (amb_pid)(uintptr_t)arg;
    return 0;
}

static const amb_handler trapping_handler = {sizeof(amb_pid), fwd_init, fwd_handle};
static const amb_handler plain_handler = {sizeof(amb_pid), plain_init, fwd_handle};

static void handler_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_spawn_opts o = {.handler = &trapping_handler, .name = AMB_NONE, .monitor = true};
    amb_pid h;
    amb_term ref;
    CHECK_OK(self,
             amb_spawn_opt(self, NULL, (void *)(uintptr_t)amb_self(self), &o, &h, &ref));
    CHECK(self, answers(self, h)); /* init ran: it traps exits now */
    CHECK_OK(self, amb_exit(self, h, amb_atom("stop_please")));
    CHECK_OK(self,
             amb_match(wait_got(self, h), "{'EXIT',~v,stop_please}", amb_self(self)));
    CHECK_OK(self, amb_exit(self, h, AMB_ATOM_KILL));
    CHECK(self, wait_down(self, ref, h) == AMB_ATOM_KILLED);
    /* An idle handler without a stack is killed too. */
    o.handler = &plain_handler;
    CHECK_OK(self,
             amb_spawn_opt(self, NULL, (void *)(uintptr_t)amb_self(self), &o, &h, &ref));
    CHECK(self, answers(self, h));
    CHECK_OK(self, amb_exit(self, h, AMB_ATOM_NORMAL)); /* ignored */
    CHECK(self, answers(self, h));
    CHECK_OK(self, amb_exit(self, h, amb_atom("shutdown")));
    CHECK(self, wait_down(self, ref, h) == AMB_ATOM_SHUTDOWN);
    CHECK_EQ_LEN(self);
}

AMB_TEST(handler_processes_follow_the_same_exit_rules)
{
    run_both(handler_body, NULL);
}

/* ===========================================================================
 * Races, cascades, storms
 * ======================================================================== */

/* Each pair: a trapping process A links and unlinks a target B over and
 * over while other processes send B exit signals with reason normal (which
 * B ignores); then A links for good and a killer ends B with shutdown. A
 * must get exactly one {'EXIT', B, shutdown} and no other EXIT. */
static atomic_int g_race_done;

static void race_noise(amb_proc *self, void *arg)
{
    amb_pid b = (amb_pid)(uintptr_t)arg;
    for (int i = 0; i < RACE_ROUNDS && amb_is_process_alive(self, b); i++)
        CHECK_OK(self, amb_exit(self, b, AMB_ATOM_NORMAL));
}

static void race_a(amb_proc *self, void *arg)
{
    (void)arg;
    amb_trap_exit(self, true);
    amb_term bref;
    amb_pid b = start_forwarder(self, false, &bref);
    amb_spawn(self, race_noise, (void *)(uintptr_t)b, NULL);
    amb_spawn(self, race_noise, (void *)(uintptr_t)b, NULL);
    for (int i = 0; i < RACE_ROUNDS; i++) {
        CHECK_OK(self, amb_link(self, b));
        if (i & 1)
            amb_yield(self);
        CHECK_OK(self, amb_unlink(self, b));
    }
    CHECK_OK(self, amb_link(self, b));
    CHECK_OK(self, amb_exit(self, b, AMB_ATOM_SHUTDOWN)); /* not a link exit */
    /* B's link exit comes before its DOWN (both from B, in order). */
    CHECK(self, wait_down(self, bref, b) == AMB_ATOM_SHUTDOWN);
    CHECK_OK(self, amb_receive_match(self, 0, NULL, "{'EXIT',~v,shutdown}", b));
    CHECK_EQ_LEN(self);
    atomic_fetch_add(&g_race_done, 1);
}

static void race_root(amb_proc *self, void *arg)
{
    (void)arg;
    atomic_store(&g_race_done, 0);
    for (int i = 0; i < RACE_PAIRS; i++)
        CHECK_OK(self, amb_spawn(self, race_a, NULL, NULL));
}

AMB_TEST(link_unlink_and_exit_racing_from_many_threads_keep_exactly_once)
{
    run_both(race_root, NULL);
    assert_int_equal(atomic_load(&g_race_done), RACE_PAIRS);
}

/* Both ends link and unlink each other at the same time (the race Erlang's
 * UNLINK_ID protocol settles): once the signals in flight are handled, the
 * two agree, and an end then delivers its exit signal exactly when they
 * agree they are linked. */
typedef struct duel_arg {
    amb_pid root;
    amb_pid other; /* filled in by the root before go */
    unsigned seed;
} duel_arg;

static void dueller(amb_proc *self, void *arg)
{
    duel_arg *a = arg;
    amb_trap_exit(self, true);
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "go"));
    unsigned x = a->seed;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        x = x * 1103515245u + 12345u;
        if ((x >> 16) & 1)
            CHECK_OK(self, amb_link(self, a->other));
        else
            CHECK_OK(self, amb_unlink(self, a->other));
        if (((x >> 17) & 3) == 0)
            amb_yield(self);
    }
    /* Two rounds: everything the other sent before its "done" is handled
     * in the first, the acks that handling caused in the second. */
    for (int round = 0; round < 2; round++) {
        CHECK_OK(self,
                 amb_send(self, a->root,
                          amb_pack(amb_proc_heap(self), "{done,~p}", amb_self(self))));
        CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "check"));
    }
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK_OK(self, amb_send(self, a->root,
                            amb_pack(amb_proc_heap(self), "{links,~p,~i}", amb_self(self),
                                     (int)pi.links)));
    /* The root kills the other end, then asks: did its exit reach us? */
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "report"));
    int got = amb_receive_match(self, 0, NULL, "{'EXIT',~v,killed}", a->other) == 0;
    CHECK_OK(self, amb_send(self, a->root,
                            amb_pack(amb_proc_heap(self), "{exit_seen,~p,~i}",
                                     amb_self(self), got)));
    amb_term m;
    amb_receive(self, AMB_INFINITY, &m); /* until the root ends us */
}

static void duel_root(amb_proc *self, void *arg)
{
    (void)arg;
    static duel_arg args[RACE_PAIRS][2];
    amb_pid pids[RACE_PAIRS][2];
    amb_term refs[RACE_PAIRS][2];
    for (int i = 0; i < RACE_PAIRS; i++)
        for (int j = 0; j < 2; j++) {
            args[i][j] = (duel_arg){amb_self(self), AMB_NONE, (unsigned)(i * 2 + j + 1)};
            CHECK_OK(self, amb_spawn_monitor(self, dueller, &args[i][j], &pids[i][j],
                                             &refs[i][j]));
        }
    for (int i = 0; i < RACE_PAIRS; i++) {
        args[i][0].other = pids[i][1];
        args[i][1].other = pids[i][0];
    }
    for (int i = 0; i < RACE_PAIRS; i++)
        for (int j = 0; j < 2; j++)
            CHECK_OK(self, amb_send(self, pids[i][j], amb_atom("go")));
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < RACE_PAIRS * 2; k++)
            CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{done,_}"));
        for (int i = 0; i < RACE_PAIRS; i++)
            for (int j = 0; j < 2; j++)
                CHECK_OK(self, amb_send(self, pids[i][j], amb_atom("check")));
    }
    int linked = 0;
    for (int i = 0; i < RACE_PAIRS; i++) {
        int n0 = -1, n1 = -1;
        CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{links,~v,~i}",
                                         pids[i][0], &n0));
        CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{links,~v,~i}",
                                         pids[i][1], &n1));
        if (n0 != n1)
            proc_fail(self, __FILE__, __LINE__, "pair %d disagrees: %d and %d links", i,
                      n0, n1);
        linked += n0;
        /* Kill the first: the second gets its exit signal iff they agreed
         * they were linked. (The first's exit signal to the second was
         * pushed before its DOWN reached us, so before our "report".) */
        CHECK_OK(self, amb_exit(self, pids[i][0], AMB_ATOM_KILL));
        CHECK(self, wait_down(self, refs[i][0], pids[i][0]) == AMB_ATOM_KILLED);
        CHECK_OK(self, amb_send(self, pids[i][1], amb_atom("report")));
        int seen = -1;
        CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{exit_seen,~v,~i}",
                                         pids[i][1], &seen));
        CHECK(self, seen == n0);
        CHECK_OK(self, amb_exit(self, pids[i][1], AMB_ATOM_KILL));
        CHECK(self, wait_down(self, refs[i][1], pids[i][1]) == AMB_ATOM_KILLED);
    }
    print_message("link duel: %d of %d pairs ended linked\n", linked, RACE_PAIRS);
    CHECK_EQ_LEN(self);
}

AMB_TEST(concurrent_link_and_unlink_from_both_ends_always_agree)
{
    run_both(duel_root, NULL);
}

/* Chain: each process spawn_links the next; the last one crashes; the
 * reason travels back through every link. */
static atomic_long g_chain_built, g_chain_ended;

static void chain_cleanup(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&g_chain_ended, 1);
}

static void chain_link(amb_proc *self, void *arg)
{
    long left = (long)(intptr_t)arg;
    amb_on_exit(self, chain_cleanup, NULL);
    atomic_fetch_add(&g_chain_built, 1);
    if (left == 0) {
        CHECK_OK(self, amb_register(self, amb_atom("chain_tail"), amb_self(self)));
        amb_term m;
        CHECK_OK(self, amb_receive(self, 60000, &m)); /* the go */
        amb_exit_self(self, amb_atom("chain_broke"));
    }
    CHECK_OK(self, amb_spawn_link(self, chain_link, (void *)(intptr_t)(left - 1), NULL));
    amb_term m;
    amb_receive(self, AMB_INFINITY, &m);
    proc_fail(self, __FILE__, __LINE__, "a chain link survived");
}

static void chain_root(amb_proc *self, void *arg)
{
    (void)arg;
    atomic_store(&g_chain_built, 0);
    atomic_store(&g_chain_ended, 0);
    amb_pid head;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, chain_link, (void *)(intptr_t)(CHAIN_N - 1),
                                     &head, &ref));
    int64_t until = amb_now_ms() + 60000;
    while (atomic_load(&g_chain_built) < CHAIN_N) {
        CHECK(self, amb_now_ms() < until);
        amb_sleep(self, 1);
    }
    /* The tail registered itself. */
    amb_pid tail;
    WAIT_UNTIL(self, amb_whereis(self, amb_atom("chain_tail"), &tail) == 0);
    CHECK_OK(self, amb_send(self, tail, amb_atom("go")));
    CHECK(self, wait_down(self, ref, head) == amb_atom("chain_broke"));
    WAIT_UNTIL(self, atomic_load(&g_chain_ended) == CHAIN_N);
}

AMB_TEST(exit_cascades_through_a_chain_of_linked_processes_with_the_real_reason)
{
    run_both(chain_root, NULL);
}

/* Kill storm: many handler processes (each registers an on_exit handler in
 * init), all killed (half with kill, half with shutdown), some before their
 * init ran. Every one ends, every handler that was registered runs, and
 * memory comes back. */
static atomic_long g_storm_inits, g_storm_ended;

static void storm_cleanup(void *ctx)
{
    (void)ctx;
    atomic_fetch_add_explicit(&g_storm_ended, 1, memory_order_relaxed);
}

static int storm_init(amb_proc *self, void *state, void *arg)
{
    (void)state;
    (void)arg;
    atomic_fetch_add_explicit(&g_storm_inits, 1, memory_order_relaxed);
    return amb_on_exit(self, storm_cleanup, NULL);
}

static int storm_handle(amb_proc *self, void *state, amb_term msg)
{
    (void)self;
    (void)state;
    (void)msg;
    return 0;
}

static const amb_handler storm_handler = {0, storm_init, storm_handle};

static amb_pid *g_storm_pids;

static void storm_root(amb_proc *self, void *arg)
{
    (void)arg;
    atomic_store(&g_storm_inits, 0);
    atomic_store(&g_storm_ended, 0);
    for (long i = 0; i < STORM_N; i++)
        CHECK_OK(self, amb_spawn_handler(self, &storm_handler, NULL, &g_storm_pids[i]));
    for (long i = 0; i < STORM_N; i++)
        CHECK_OK(self, amb_exit(self, g_storm_pids[i],
                                (i & 1) ? AMB_ATOM_KILL : AMB_ATOM_SHUTDOWN));
    int64_t until = amb_now_ms() + 120000;
    for (long i = 0; i < STORM_N;) {
        if (!amb_is_process_alive(self, g_storm_pids[i])) {
            i++;
            continue;
        }
        if (amb_now_ms() > until)
            proc_fail(self, __FILE__, __LINE__, "process %ld of %ld still alive", i,
                      (long)STORM_N);
        amb_sleep(self, 1);
    }
    WAIT_UNTIL(self, atomic_load(&g_storm_ended) == atomic_load(&g_storm_inits));
}

AMB_TEST(kill_storm_ends_every_process_and_memory_returns_to_baseline)
{
    g_storm_pids = calloc(STORM_N, sizeof *g_storm_pids);
    assert_non_null(g_storm_pids);
    memset(g_storm_pids, 0xff, STORM_N * sizeof *g_storm_pids);
    amb_config cfg = {0};
    cfg.schedulers = 2;
    amb_rt *rt = NULL;
    reset_failure();
    assert_ok(amb_rt_new(&cfg, &rt));
    assert_ok(amb_logger_set_handler(rt, amb_test_log_handler, NULL));
    malloc_trim(0);
    long base = amb_test_rss_kib();
    size_t base_used = mallinfo2().uordblks;
    assert_ok(amb_rt_spawn(rt, storm_root, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    /* The C allocator keeps freed small blocks (the link tables, on_exit
     * arrays) in its free lists: what the runtime holds is what is in use
     * (mallinfo2), what the OS sees is RSS after malloc_trim. */
    size_t used = mallinfo2().uordblks;
    malloc_trim(0);
    long after = amb_test_rss_kib();
    amb_rt_free(rt);
    free(g_storm_pids);
    assert_no_process_failure();
    assert_int_equal(atomic_load(&g_storm_ended), atomic_load(&g_storm_inits));
    print_message("kill storm of %d (%ld ran init): RSS baseline %ld KiB, after %ld KiB; "
                  "malloc in use "
                  "%zu -> %zu bytes\n",
                  STORM_N, atomic_load(&g_storm_inits), base, after, base_used, used);
#ifndef AMB_SANITIZER
    /* The table keeps 16 bytes per slot its peak touched; 64 MiB slack. */
    long limit = base + (long)STORM_N * 16 / 1024 + 64 * 1024;
    if (after >= limit)
        fail_msg("RSS after the storm %ld KiB is not below %ld KiB", after, limit);
    if (used >= base_used + (size_t)16 * 1024 * 1024)
        fail_msg("malloc in use after the storm %zu is not near %zu", used, base_used);
#endif
}

/* ===========================================================================
 * Arguments
 * ======================================================================== */

static void args_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid d = a_dead_pid(self);
    CHECK_OK(self, amb_exit(self, d, amb_atom("x"))); /* a dead pid is fine */
    CHECK_RC(self, AMB_EBADARG, amb_exit(self, amb_atom("x"), AMB_ATOM_KILL));
    CHECK_RC(self, AMB_EBADARG, amb_exit(self, d, AMB_NONE));
    CHECK_RC(self, AMB_EBADARG, amb_monitor(self, amb_int(NULL, 3), &(amb_term){0}));
    CHECK_RC(self, AMB_EBADARG, amb_demonitor(self, amb_atom("r"), 0));
    CHECK_RC(self, AMB_EBADARG, amb_on_exit(self, NULL, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_unlink(self, amb_atom("x")));
    CHECK_RC(self, AMB_EBADARG, amb_spawn_link(self, NULL, NULL, NULL));
    CHECK(self, amb_trap_exit(self, false) == false);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK(self, !pi.trap_exit);
    amb_trap_exit(self, true);
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    CHECK(self, pi.trap_exit);
}

AMB_TEST(failure_api_checks_its_arguments)
{
    run_both(args_body, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(exit_normal_from_other_is_ignored_when_not_trapping),
    AMB_TEST_ENTRY(exit_normal_from_other_is_a_message_when_trapping),
    AMB_TEST_ENTRY(exit_kill_kills_with_reason_killed_when_not_trapping),
    AMB_TEST_ENTRY(exit_kill_is_untrappable_and_kills_with_reason_killed_when_trapping),
    AMB_TEST_ENTRY(
        exit_any_other_reason_including_shutdown_kills_with_it_when_not_trapping),
    AMB_TEST_ENTRY(exit_any_other_reason_is_a_message_when_trapping),
    AMB_TEST_ENTRY(
        exit_normal_to_self_kills_when_not_trapping_and_is_a_message_when_trapping),
    AMB_TEST_ENTRY(exit_self_with_reason_kill_is_an_ordinary_trappable_reason_for_links),
    AMB_TEST_ENTRY(killed_propagates_to_links_as_killed),
    AMB_TEST_ENTRY(
        linked_exit_normal_is_ignored_and_other_reasons_kill_when_not_trapping),
    AMB_TEST_ENTRY(linked_exit_of_any_reason_is_a_message_when_trapping),
    AMB_TEST_ENTRY(
        link_to_dead_pid_is_noproc_error_when_not_trapping_and_exit_message_when_trapping),
    AMB_TEST_ENTRY(
        link_racing_with_target_end_gives_exactly_one_exit_real_reason_or_noproc),
    AMB_TEST_ENTRY(unlink_removes_the_link_both_ways),
    AMB_TEST_ENTRY(monitor_of_dead_pid_gives_immediate_down_noproc),
    AMB_TEST_ENTRY(several_monitors_on_one_target_each_get_their_down),
    AMB_TEST_ENTRY(demonitor_flush_removes_a_queued_down),
    AMB_TEST_ENTRY(demonitor_guarantees_no_later_down_even_racing_with_the_end),
    AMB_TEST_ENTRY(monitor_of_a_registered_name_gives_a_down_naming_name_and_node),
    AMB_TEST_ENTRY(
        monitor_of_a_name_nobody_has_gives_immediate_down_noproc_with_name_and_node),
    AMB_TEST_ENTRY(alias_monitor_drops_what_comes_through_its_alias_after_the_down),
    AMB_TEST_ENTRY(spawn_link_children_that_die_immediately_each_send_one_exit),
    AMB_TEST_ENTRY(spawn_link_child_crash_kills_a_non_trapping_parent_with_its_reason),
    AMB_TEST_ENTRY(spawn_monitor_is_atomic_child_dying_at_once_gives_its_real_reason),
    AMB_TEST_ENTRY(
        exit_signal_is_ordered_after_messages_sent_before_it_by_the_same_sender),
    AMB_TEST_ENTRY(
        kill_stops_a_process_in_receive_sleep_timed_receive_blocking_call_or_running),
    AMB_TEST_ENTRY(exit_self_ends_the_process_at_once_from_deep_in_the_stack),
    AMB_TEST_ENTRY(failed_assert_ends_the_process_with_a_reason_naming_file_and_line),
    AMB_TEST_ENTRY(on_exit_handlers_run_when_killed_and_when_returning),
    AMB_TEST_ENTRY(crash_report_names_pid_registered_name_reason_and_last_message),
    AMB_TEST_ENTRY(logger_levels_filter_events_and_the_handler_gets_them),
    AMB_TEST_ENTRY(handler_processes_follow_the_same_exit_rules),
    AMB_TEST_ENTRY(link_unlink_and_exit_racing_from_many_threads_keep_exactly_once),
    AMB_TEST_ENTRY(concurrent_link_and_unlink_from_both_ends_always_agree),
    AMB_TEST_ENTRY(
        exit_cascades_through_a_chain_of_linked_processes_with_the_real_reason),
    AMB_TEST_ENTRY(kill_storm_ends_every_process_and_memory_returns_to_baseline),
    AMB_TEST_ENTRY(failure_api_checks_its_arguments))

/*
 * tests/unit/late_signals.c - a signal that reaches a process after its
 * teardown is answered at once (issue 12, item 4).
 *
 * A sender looks the target up, the target ends, then the sender pushes:
 * the cell lands in a dead mailbox. Before, it stayed there until the
 * block was reclaimed (64 retired blocks or an idle scheduler), so a
 * MONITOR racing with the target's end got its DOWN seconds late on busy
 * schedulers, and a call with an infinite timeout to a server that was
 * just ending could hang. Now the teardown closes the mailbox and the
 * sender's own push answers the cell: the DOWN is in the watcher's mailbox
 * when amb_monitor returns.
 *
 * The window is made exact rather than hoped for: on two schedulers, the
 * watcher looks the target up (amb__ptab_lookup, as amb_monitor does),
 * lets it end on the other scheduler and spins without passing a quiescent
 * point (so the block cannot be reclaimed under it) until the target's
 * teardown is over (the DOWN of an earlier monitor has come), then
 * finishes the monitor with the block it found (amb__monitor_make, the
 * rest of amb_monitor). Before the fix no DOWN came in any of the rounds. The harness is
 * tests/amb_test_rt.h.
 */
#include "process/fail.h"
#include "amb_test_rt.h"

static void waits_for_go(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term t = RECV(self);
    CHECK(self, t == amb_atom("go"));
}

typedef struct late_obs {
    int rounds;       /* races made */
    int down_at_once; /* the DOWN was there when the monitor call returned */
} late_obs;

static void late_main(amb_proc *self, void *arg)
{
    late_obs *o = arg;
    amb_rt *rt = amb_proc_rt(self);
    for (int round = 0; round < 20; round++) {
        amb_pid t;
        amb_term first;
        CHECK_OK(self, amb_spawn_monitor(self, waits_for_go, NULL, &t, &first));
        amb_proc *q = amb__ptab_lookup(rt, t);
        CHECK(self, q != NULL);
        CHECK_OK(self, amb_send(self, t, amb_atom("go")));
        /* From here until amb__monitor_make, no runtime call that could
         * switch us out (no receive, no send: amb_message_queue_len only
         * drains), so q stays valid (QSBR) while the target ends and is
         * torn down. It runs on the other scheduler: ours is held by this
         * loop, and a thief takes a process stuck behind a long run. The
         * DOWN of the first monitor is sent at the end of the teardown,
         * after the mailbox was drained (and closed). */
        int64_t until = amb_now_ms() + DEADLINE_MS;
        while (amb_message_queue_len(self) == 0 && amb_now_ms() < until)
            ;
        CHECK(self, !amb_is_process_alive(self, t));
        amb_term ref;
        CHECK_OK(self,
                 amb__monitor_make(self, t, q, AMB_NONE, AMB_MONITOR_NO_ALIAS, &ref));
        /* The push found the mailbox closed and answered it: the DOWN is
         * already here. */
        if (amb_receive_match(self, 0, NULL, "{'DOWN',~v,process,~v,noproc}", ref, t) ==
            0)
            o->down_at_once++;
        CHECK_OK(self, amb_receive_match(self, 0, NULL, "{'DOWN',~v,process,~v,normal}",
                                         first, t));
        o->rounds++;
    }
}

AMB_TEST(monitor_pushed_after_teardown_gets_its_down_at_once)
{
    late_obs o = {0};
    run_in(2, late_main, &o);
    assert_int_equal(o.rounds, 20);
    assert_int_equal(o.down_at_once, 20);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(monitor_pushed_after_teardown_gets_its_down_at_once))

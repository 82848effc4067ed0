/*
 * sched.h - the schedulers of an executor (DESIGN §2 "Scheduler"; sched.c;
 * docs/design/runtime.md, "Scheduling", has the loop, its rules and the
 * layout).
 *
 * One scheduler per OS thread. Each has:
 *   - a run queue: a 256-slot FIFO ring the owner appends to and takes from,
 *     from which idle schedulers steal half (runq.h), plus a one-slot
 *     "run next" for the task the running one just woke, so a ping-pong
 *     stays on one core without touching the ring. A task taken from
 *     run-next inherits what is left of the waker's time slice (Go's
 *     inheritTime), so a pair that keeps waking each other shares one slice
 *     and the ring's head runs when it is spent;
 *   - a timing wheel for its timers (timer.h), under a small lock so that
 *     another scheduler can cancel a timer on it at once, and an idle one
 *     can fire its expired timers while it is busy or stuck in one task;
 *   - a cache of stacks per size class;
 *   - an epoch for QSBR (qsbr.h), a futex word and a sleep state;
 *   - counts of the tasks it began and ended (the executor stops when they
 *     balance);
 *   - an extension area for the layer above (amb__sched_ext), right behind
 *     the struct, so reaching it costs an addition and no load.
 *
 * A task that a scheduler wakes goes to that scheduler's run-next slot
 * (the previous occupant moves to the ring). A task woken from outside the
 * runtime goes to the inject queue, which every scheduler polls. An idle
 * scheduler spins a little (adaptively), stealing, taking run-next from a
 * scheduler that has not switched for a few microseconds and firing other
 * schedulers' expired timers, then sleeps until its next timer or until
 * woken; whoever adds work to a ring while nobody spins wakes one sleeper.
 *
 * One pass of the loop is a step (amb__sched_step) that never blocks, so
 * that one thread could drive several schedulers (a deterministic test
 * mode); only amb__sched_loop's idle part spins and sleeps.
 */
#ifndef AMB_RUNTIME_SCHED_H
#define AMB_RUNTIME_SCHED_H

#include <pthread.h>
#include <stdatomic.h>

#include "runtime/poll.h"
#include "runtime/runq.h"
#include "runtime/spin.h"
#include "runtime/task.h"
#include "runtime/wheel.h"

#define AMB__STACK_CLASSES 13 /* up to 4096 x the default size */

/* How a scheduler sleeps (amb__sched.sleep): a waker reads it to know how
 * to wake it: on its futex, or blocked in the I/O poller (sockets.md §5.3),
 * woken by the poller's eventfd (Tokio's PARKED_CONDVAR and
 * PARKED_DRIVER). */
enum amb__sleep {
    AMB__AWAKE = 0,
    AMB__SLEEP_FUTEX, /* in futex_wait on its futex word */
    AMB__SLEEP_POLL,  /* blocked in the poller: woken by amb__poll_break */
};

/* What a step of the loop did (amb__sched_step). */
enum amb__step {
    AMB__STEP_RAN,  /* ran a task (and whatever it handed over to) */
    AMB__STEP_IDLE, /* found nothing to run: the caller may spin or sleep */
    AMB__STEP_STOP, /* the executor is stopping */
};

struct amb__sched {
    /* The owner's own fields: no other thread reads them. */
    amb__exec *exec;
    unsigned id;
    amb__task *current;
    /* The task that just switched away and what it asked for; finished by
     * whichever context lands next on this scheduler (sched.c). */
    amb__task *pending;
    uint8_t pending_req;
    /* Reductions left in the current time slice when the last task
     * switched out: what a task taken from run-next inherits. */
    int16_t slice;
    uint32_t tick;    /* loop passes, for periodic work */
    uint32_t direct;  /* direct switches, to come back to the loop now and then */
    uint64_t now_ms;  /* the exact clock as last read */
    uint32_t rng;     /* the state of the scheduler's choices (sched.c) */
    uint32_t spin_us; /* how long an idle spin lasts now (adaptive) */
    uint64_t trim_at; /* ms: the next sleep that gives caches back */
    uint64_t poll_ns; /* ns: its last look at the poller (find_work) */
    /* An idle scheduler watching another's run-next (sched.c, steal). */
    struct {
        unsigned victim;
        uint64_t seq;
        uint64_t since_ns;
    } watch;
    pthread_t thread;
    amb__ctx ctx;                       /* the thread's own stack */
    struct amb__timer_refs *timer_refs; /* its timers' references (timer.h) */
    amb__task *limbo, *limbo_tail;      /* QSBR: retired tasks, oldest first */
    size_t limbo_count;
    /* A task taken to run next that could have no stack: the loop ends it
     * (start_failed in sched.c). */
    amb__task *unstarted;
    /* One stack cache per stack size class, set up when a class is first
     * used on this scheduler. */
    amb__stack_cache stacks[AMB__STACK_CLASSES];
    amb__stack_altstack altstack; /* while it runs (stack.h: guard faults) */

    /* The run queue; its first line is what thieves read (runq.h). */
    amb__runq q;

    /* Timers (timer.h): the earliest deadline on the wheel (a lower bound;
     * UINT64_MAX: none), read by anyone without the lock; the lock; then
     * the wheel, which the lock guards. */
    _Alignas(64) _Atomic uint64_t timer_next;
    amb__spin wheel_lock;
    _Alignas(64) amb__wheel wheel;

    /* QSBR (qsbr.h): written by the owner when it sees a new epoch. */
    _Alignas(64) _Atomic uint64_t epoch_seen; /* AMB__QSBR_OFFLINE while asleep */

    /* Sleeping: written by the owner and by its wakers. The futex word is
     * bumped by every wake. */
    _Alignas(64) _Atomic uint32_t futex;
    _Atomic uint32_t sleep; /* enum amb__sleep */

    /* Tasks begun here (spawned on this scheduler) and ended here: written
     * by the owner only, summed by an idle scheduler to know whether any
     * task is left (exec.h, amb__exec_live). */
    _Alignas(64) _Atomic uint64_t begun;
    _Atomic uint64_t ended;
};

/* The extension area of s: exec.h's sched_ext bytes, 64-byte aligned,
 * zeroed when the executor is made, owned by the layer above. */
static inline void *amb__sched_ext(amb__sched *s)
{
    return s + 1;
}

/* Makes t runnable. On a scheduler (s != NULL): into s's run-next slot.
 * From outside (s == NULL): into the inject queue, waking a scheduler. */
void amb__sched_ready(amb__exec *x, amb__sched *s, amb__task *t);
/* Makes t runnable at the back of s's ring (fairness: yields). */
void amb__sched_ready_tail(amb__sched *s, amb__task *t);
/* Wakes one sleeping scheduler if nobody spins (called after adding work);
 * from is the waker's scheduler, or NULL from outside the runtime. */
void amb__sched_wake_one(amb__exec *x, amb__sched *from);
/* Wakes every scheduler (stop), the one blocked in the poller too. */
void amb__sched_wake_all(amb__exec *x);
/* Makes the tasks of the fired waiters runnable: each waiter's node is
 * pushed into its task's inbox, and a push that finds the task parked
 * readies it, on s's ring (waking one more scheduler when more than one
 * became runnable), or from outside the runtime (s NULL: the watchdog,
 * inside amb__qsbr_enter/leave) through the inject queue. Allocates
 * nothing. A waiter belongs to its task again once delivered. */
void amb__sched_deliver(amb__exec *x, amb__sched *s, amb__poll_list *fired);

/* The running task t switches back to its scheduler with a request (YIELD
 * or PARK). Returns when t runs again, possibly on another scheduler:
 * re-read t->sched. */
void amb__sched_switch_out(amb__task *t, enum amb__task_req req);
/* The running task t ends its context with a request (EXIT, IDLE or
 * REQUEUE): its stack is released. Never returns. */
_Noreturn void amb__sched_exit(amb__task *t, enum amb__task_req req);

/* One pass of s's loop, on s's thread (or on whichever single thread
 * drives s): the periodic work (QSBR, timers due, reclamation), then one
 * runnable task found without waiting (local queues, the inject queue,
 * stealing, other schedulers' expired timers) is run until control comes
 * back. Never blocks. */
enum amb__step amb__sched_step(amb__sched *s);
/* The loop of one scheduler thread: steps, and spins then sleeps whenever
 * a step finds nothing; returns when the executor stops. */
void amb__sched_loop(amb__sched *s);
/* Frees t's context and stack, if it has them: a task that never ended,
 * at executor teardown, from the thread freeing it (s: any scheduler). */
void amb__sched_release(amb__sched *s, amb__task *t);
/* Returns every stack of s's caches to their pools (executor teardown). */
void amb__sched_term(amb__sched *s);

#endif /* AMB_RUNTIME_SCHED_H */

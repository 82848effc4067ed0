/*
 * sched.h - the schedulers of an executor (DESIGN §2 "Scheduler"; sched.c).
 *
 * One scheduler per OS thread. Each has:
 *   - a run queue: a 256-slot FIFO ring the owner appends to and takes from,
 *     from which idle schedulers steal half (runq.h), plus a one-slot
 *     "run next" for the task the running one just woke, so a ping-pong
 *     stays on one core without touching the ring;
 *   - a timing wheel for its timers (timer.h);
 *   - a cache of stacks per size class;
 *   - an epoch for QSBR (qsbr.h) and a futex word to sleep on;
 *   - an extension area for the layer above (amb__sched_ext), right behind
 *     the struct, so reaching it costs an addition and no load.
 *
 * A task that a scheduler wakes goes to that scheduler's run-next slot
 * (the previous occupant moves to the ring). A task woken from outside the
 * runtime goes to the inject queue, which every scheduler polls. An idle
 * scheduler spins a little, stealing, then sleeps until its next timer or
 * until woken; whoever adds work to a ring while nobody spins wakes one
 * sleeper.
 */
#ifndef AMB_RUNTIME_SCHED_H
#define AMB_RUNTIME_SCHED_H

#include <pthread.h>
#include <stdatomic.h>

#include "runtime/runq.h"
#include "runtime/task.h"
#include "runtime/wheel.h"

#define AMB__STACK_CLASSES 13 /* up to 4096 x the default size */

struct amb__sched {
    amb__exec *exec;
    unsigned id;
    pthread_t thread;
    amb__ctx ctx; /* the thread's own stack */
    amb__task *current;
    /* The task that just switched away and what it asked for; finished by
     * whichever context lands next on this scheduler (sched.c). */
    amb__task *pending;
    uint8_t pending_req;
    /* A task taken to run next that could have no stack: the loop ends it
     * (start_failed in sched.c). */
    amb__task *unstarted;

    amb__runq q;
    uint32_t tick;   /* loop iterations, for periodic work */
    uint32_t direct; /* direct switches, to come back to the loop now and then */

    amb__wheel wheel;                   /* its timers (timer.h) */
    uint64_t now_ms;                    /* the clock as last read */
    struct amb__timer_refs *timer_refs; /* their references (timer.h) */

    /* One stack cache per stack size class, set up when a class is first
     * used on this scheduler. */
    amb__stack_cache stacks[AMB__STACK_CLASSES];
    amb__stack_altstack altstack; /* while it runs (stack.h: guard faults) */

    /* QSBR (qsbr.h) */
    _Alignas(64) _Atomic uint64_t epoch_seen; /* AMB__QSBR_OFFLINE while asleep */
    amb__task *limbo, *limbo_tail;            /* retired tasks, oldest first */
    size_t limbo_count;

    /* Sleeping: the futex word is bumped by every wake. */
    _Alignas(64) _Atomic uint32_t futex;
    _Atomic bool sleeping;
    /* When the current task was switched in (0: idle), and its id: read by
     * thieves and the watchdog. */
    _Atomic uint64_t run_started_ms;
    _Atomic uint32_t current_id;
};

/* The extension area of s: exec.h's sched_ext bytes, 64-byte aligned,
 * zeroed when the executor is made, owned by the layer above. */
static inline void *amb__sched_ext(amb__sched *s)
{
    return s + 1;
}

/* Gives t (not yet run) its stack now, from s's cache, so that running out
 * of address space is the spawner's AMB_ENOMEM rather than a failed first
 * run. 0 (also when t has one), AMB_ENOMEM. The context is made at t's
 * first run. */
int amb__sched_stack_reserve(amb__sched *s, amb__task *t);

/* Makes t runnable. On a scheduler (s != NULL): into s's run-next slot.
 * From outside (s == NULL): into the inject queue, waking a scheduler. */
void amb__sched_ready(amb__exec *x, amb__sched *s, amb__task *t);
/* Makes t runnable at the back of s's ring (fairness: yields, spawns). */
void amb__sched_ready_tail(amb__sched *s, amb__task *t);
/* Wakes one sleeping scheduler if nobody spins (called after adding work). */
void amb__sched_wake_one(amb__exec *x);
/* Wakes every scheduler (stop). */
void amb__sched_wake_all(amb__exec *x);

/* The running task t switches back to its scheduler with a request (YIELD
 * or PARK). Returns when t runs again, possibly on another scheduler:
 * re-read t->sched. */
void amb__sched_switch_out(amb__task *t, enum amb__task_req req);
/* The running task t ends its context with a request (EXIT, IDLE or
 * REQUEUE): its stack is released. Never returns. */
_Noreturn void amb__sched_exit(amb__task *t, enum amb__task_req req);

/* The loop of one scheduler thread; returns when the executor stops. */
void amb__sched_loop(amb__sched *s);
/* Frees t's context and stack, if it has them: a task that never ended,
 * at executor teardown, from the thread freeing it (s: any scheduler). */
void amb__sched_release(amb__sched *s, amb__task *t);
/* Returns every stack of s's caches to their pools (executor teardown). */
void amb__sched_term(amb__sched *s);

#endif /* AMB_RUNTIME_SCHED_H */

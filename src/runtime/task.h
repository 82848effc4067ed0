/*
 * task.h - the runtime's unit of work (a task) and the contract between the
 * runtime and the layer above it (docs/design/layers.md).
 *
 * The runtime runs tasks and knows nothing else about them: not pids, not
 * messages, not links. A task is what a scheduler needs to run something
 * cooperatively: a context with a stack, a reduction budget, its place in
 * run queues and in QSBR's limbo, and an inbox (the MPSC queue of mpscq.h)
 * whose PARKED bit *is* the task's runnable/parked state (Pony's
 * messageq): the push that finds the inbox parked, and only it, makes the
 * task runnable (amb__sched_ready). The request a task makes when it
 * switches out (enum amb__task_req) travels with its scheduler, which
 * carries it out once the task's context is saved (sched.c).
 *
 * The layer above embeds a task as the first member of its own object
 * (struct amb_proc in src/process/proc.h), so converting between the two
 * is a cast, and supplies behaviour through the ops table below, given when
 * the executor is created (exec.h). Only cold paths go through the table
 * (a task's first run on a fresh context, its end, a timer's end, a
 * scheduler going to sleep); switching, readying and parking are direct
 * calls into the runtime (sched.h).
 *
 * Who owns what: the inbox may be pushed to by any thread; everything else
 * belongs to the scheduler running the task (and to the task's own code
 * while it runs). A task is in at most one run queue, so at most one thread
 * owns it at any time.
 */
#ifndef AMB_RUNTIME_TASK_H
#define AMB_RUNTIME_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "arch/ctx.h"
#include "runtime/mpscq.h"
#include "runtime/stack.h"

typedef struct amb__sched amb__sched;
typedef struct amb__exec amb__exec;
typedef struct amb__timer amb__timer;
typedef struct amb__blocking_job amb__blocking_job;

/* What a task asks of its scheduler when it switches back to it. */
enum amb__task_req {
    AMB__TASK_NONE = 0,
    AMB__TASK_YIELD,   /* runnable: to the back of the run queue */
    AMB__TASK_PARK,    /* parks its inbox (runnable again at the next push) */
    AMB__TASK_EXIT,    /* ended: stack released, then ops->teardown */
    AMB__TASK_IDLE,    /* its activation ended: parks without a stack */
    AMB__TASK_REQUEUE, /* its activation spent its budget: runnable, no stack */
};

typedef struct amb__task {
    amb__mpscq inbox; /* first: it is 64-byte aligned (two cache lines) */

    amb__sched *sched; /* the scheduler running it; re-read after any switch */
    union {
        amb__ctx ctx; /* while it has a context (stack != NULL) */
        /* QSBR: the epoch at its retirement; a retired task never has a
         * context again. */
        uint64_t retire_epoch;
    };
    amb__stack *stack; /* NULL while it has no context */
    /* The inject queue's link while queued there, and QSBR's limbo link
     * once retired: a task in limbo is never queued. */
    struct amb__task *link;
    /* Reductions left in this run: a fresh slice at a switch-in from the
     * ring, what is left of the previous task's from run-next (sched.c). */
    int16_t budget;
    uint8_t stack_class; /* size class of its stacks (amb__exec_stack_class) */
    /* Its stack has no guard page: the scheduler checks the canary at every
     * switch-out (stack.h). Set with the context. */
    bool stack_unguarded;
    /* A name for diagnostics, set by the layer above (a process puts its
     * index in the process table there): what the watchdog reports a stuck
     * task by. */
    uint32_t id;
} amb__task;

/* Bytes of stack a running task keeps for ending itself from a runtime
 * call (its crash report, the switch away) when its own frames have used
 * the rest: see amb__task_stack_low. Measured (docs/design/stacks.md,
 * "Overflow"). */
#define AMB__TASK_STACK_MARGIN (8 * 1024)

/* True when the running task t, whose stack pointer is sp (amb__ctx_sp),
 * has less than AMB__TASK_STACK_MARGIN bytes of stack left. The layer
 * above asks at every runtime call and ends the task instead of going
 * deeper: a deep recursion that calls the runtime is stopped before it
 * reaches the end of its stack. Inline: a load of the context's stack_lo
 * (on the task's line the budget is on) and a compare. */
static inline bool amb__task_stack_low(const amb__task *t, const char *sp)
{
    return sp < (const char *)t->ctx.stack_lo + AMB__TASK_STACK_MARGIN;
}

/* Eight words behind the inbox: a task is three cache lines. */
_Static_assert(sizeof(amb__task) <= 3 * 64 || AMB__CTX_ASAN || AMB__CTX_TSAN,
               "a task fits three cache lines");

/* Behaviour the layer above gives the executor. Every function is called on
 * a scheduler thread unless it says otherwise. */
typedef struct amb__task_ops {
    /* The body of a fresh context of t, on its stack, after the scheduler
     * has finished the previous context's request. Never returns: ends with
     * amb__sched_exit. */
    void (*entry)(amb__task *t);
    /* t ended (AMB__TASK_EXIT); its stack is already released. Afterwards
     * the runtime retires t: no new reference to it may be made from here
     * on, and ops->reclaim gets it after the grace period (qsbr.h). */
    void (*teardown)(amb__sched *s, amb__task *t);
    /* t was to run but no stack could be had for it (the address space is
     * used up): it ends without running. The callee records why; the
     * runtime then calls teardown and retires t as for an ended task. */
    void (*start_failed)(amb__sched *s, amb__task *t);
    /* The runtime pushed a node into the inbox of t, which has ended (the
     * push returned AMB__MPSCQ_CLOSED: a fired I/O waiter racing with its
     * task's end). The callee takes back what is there and closes the
     * inbox again (mpscq.h). s may be NULL (the watchdog's poll). */
    void (*inbox_closed)(amb__sched *s, amb__task *t);
    /* t's grace period has passed: nobody holds a reference to it. Also
     * called for every task still in limbo when the executor is freed. */
    void (*reclaim)(amb__sched *s, amb__task *t);
    /* A timer ends on scheduler s (timer.h): it fired (live), on s,
     * which may be its owner or an idle scheduler firing a busy one's
     * expired timers; or the executor is being freed (not live). The
     * callee owns the timer's memory from now on. */
    void (*timer_fire)(amb__sched *s, amb__timer *tm, bool live);
    /* A blocking job finished on a pool thread (not a scheduler: any lookup
     * goes inside amb__qsbr_enter/leave), its result to be dropped when it
     * finished while the pool stopped (discard). The callee owns the job's memory from
     * now on. */
    void (*blocking_done)(amb__exec *x, amb__blocking_job *job, bool discard);
    /* The executor is being freed (it does not run, its blocking pool is
     * stopped): release every task that has not ended, its context and
     * stack with amb__sched_release. The runtime keeps no list of parked
     * tasks; the layer above knows its tasks. */
    void (*discard)(amb__exec *x);
    /* s is about to sleep, or the run ended (on the thread that ran it,
     * every scheduler thread joined): give cached memory back. */
    void (*sched_trim)(amb__sched *s);
    /* The executor is being freed: release what the layer above keeps in
     * s's extension area (exec.h); s's limbo and timers are empty. */
    void (*sched_term)(amb__sched *s);
    /* The watchdog's report (its own thread): the task named `id` has run
     * `ms` milliseconds on scheduler `sched` without switching out. */
    void (*report_stuck)(amb__exec *x, unsigned sched, uint32_t id, uint64_t ms);
} amb__task_ops;

#endif /* AMB_RUNTIME_TASK_H */

/*
 * exec.h - the executor: the runtime's object (exec.c). It owns the
 * scheduler threads and their run queues, the inject queue, the stack pools
 * by size class, QSBR's epoch, the blocking pool and the watchdog, and runs
 * tasks (task.h) for the layer above, which embeds it (struct amb_rt in
 * src/process/rt.h) and gives it a const ops table.
 *
 * Life cycle: amb__exec_init (no thread yet) -> amb__exec_run (the calling
 * thread becomes scheduler 0, the others start; returns when every task has
 * ended or amb__exec_stop was called) -> run again, or -> amb__exec_term.
 *
 * Invariant: `live` counts tasks begun (amb__exec_task_begin) and not yet
 * ended; the scheduler that tears down the last one stops the executor.
 */
#ifndef AMB_RUNTIME_EXEC_H
#define AMB_RUNTIME_EXEC_H

#include <pthread.h>
#include <stdatomic.h>

#include "runtime/runq.h"
#include "runtime/sched.h"
#include "runtime/task.h"

typedef struct amb__exec_config {
    unsigned schedulers;       /* 1 ..= 1024 */
    size_t stack_size;         /* the smallest stack class, in bytes */
    unsigned blocking_threads; /* the most the blocking pool starts */
    uint64_t watchdog_ms;      /* report a run this long; UINT64_MAX: never */
    size_t sched_ext;          /* bytes of extension area per scheduler */
    const amb__task_ops *ops;  /* copied */
} amb__exec_config;

struct amb__exec {
    amb__task_ops ops;
    unsigned nsched;
    size_t sched_stride; /* bytes from one scheduler to the next */
    char *scheds;        /* nsched of them with their extension areas */
    size_t stack_size;
    unsigned blocking_threads;
    uint64_t watchdog_ms;
    /* Stacks without guard pages of any kind (the canary only), as on a
     * kernel without guard regions past the mprotect budget: tests set it
     * before the first task runs. */
    bool stack_guards_off;

    /* Stack pools by size class: class k holds stacks of stack_size << k,
     * made on first use (stack_lock). */
    pthread_mutex_t stack_lock;
    _Atomic(amb__stack_pool *) stack_pools[AMB__STACK_CLASSES];

    amb__runq_inject inject;

    _Atomic size_t live;   /* tasks begun and not ended */
    _Atomic bool stopping; /* amb__exec_stop, or every task ended */
    _Atomic bool running;
    _Atomic unsigned nspinning;
    _Atomic unsigned nsleeping;

    /* QSBR (qsbr.h) */
    _Alignas(64) _Atomic uint64_t epoch;
    /* Threads outside the runtime inside a lookup, by the parity of the
     * epoch they announced (qsbr.h). */
    _Atomic unsigned ext_active[2];

    void *watchdog; /* watchdog.c, while running */
    void *blocking; /* blocking.c, from the first run on */
};

/* Makes x (no thread starts). 0, AMB_ENOMEM. */
int amb__exec_init(amb__exec *x, const amb__exec_config *cfg);
/* Frees x, which does not run, in this order: the blocking pool (jobs to
 * ops->blocking_done), the tasks that never ended (ops->discard), the
 * tasks in limbo (ops->reclaim), pending timers (ops->timer_fire), each
 * scheduler's extension (ops->sched_term), stacks. */
void amb__exec_term(amb__exec *x);
/* Runs until every task has ended or amb__exec_stop. Before it returns,
 * the tasks retired during the run are reclaimed (those an outside thread
 * may still be reading excepted) and every scheduler's cached objects go
 * back (ops->sched_trim), so what ended during the run holds no memory.
 * 0 (also when there is no task), AMB_ESTATE (already running), AMB_ENOMEM
 * or AMB_EAGAIN (a thread could not start: what ran was stopped). */
int amb__exec_run(amb__exec *x);
/* Makes amb__exec_run return soon (any thread). */
void amb__exec_stop(amb__exec *x);

/* Scheduler i of x. */
static inline amb__sched *amb__exec_sched(amb__exec *x, unsigned i)
{
    return (amb__sched *)(void *)(x->scheds + (size_t)i * x->sched_stride);
}

/* A new task will become runnable or parked: counted until it ends. */
static inline void amb__exec_task_begin(amb__exec *x)
{
    /* relaxed: a counter; the executor reads it only to stop after the
     * last task (an acq_rel decrement in sched.c) and at amb__exec_run's
     * start, which a task made before the run happens before. */
    atomic_fetch_add_explicit(&x->live, 1, memory_order_relaxed);
}

/* The stack size class for a stack of `size` usable bytes, or -1 when it
 * is larger than the largest class. */
int amb__exec_stack_class(amb__exec *x, size_t size);
/* The pool of stack class cls, made on first use; NULL when out of memory. */
amb__stack_pool *amb__exec_stack_pool(amb__exec *x, unsigned cls);

#endif /* AMB_RUNTIME_EXEC_H */

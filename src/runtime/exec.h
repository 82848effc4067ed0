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
 * Invariant: every task is counted once when it begins
 * (amb__exec_task_begin: on the scheduler that spawned it, or in
 * ext_begun) and once when it ends (amb__sched.ended of the scheduler that
 * tore it down); an idle scheduler that finds the sums equal stops the
 * executor (amb__exec_live). No counter is shared by two schedulers, so a
 * spawn and an exit write no line another scheduler writes.
 */
#ifndef AMB_RUNTIME_EXEC_H
#define AMB_RUNTIME_EXEC_H

#include <pthread.h>
#include <stdatomic.h>

#include "runtime/clock.h"
#include "runtime/poll.h"
#include "runtime/runq.h"
#include "runtime/sched.h"
#include "runtime/task.h"

typedef struct amb__exec_config {
    unsigned schedulers;       /* 1 ..= 1024 */
    size_t stack_size;         /* the smallest stack class, in bytes */
    unsigned blocking_threads; /* the most the blocking pool starts */
    uint64_t watchdog_ms;      /* report a run this long; UINT64_MAX: never */
    size_t sched_ext;          /* bytes of extension area per scheduler */
    /* The longest idle spin before a scheduler sleeps, in us (the spin
     * adapts between a few us and this); 0: none. */
    uint32_t spin_max_us;
    const amb__task_ops *ops; /* copied */
} amb__exec_config;

/* Layout by writer (docs/design/runtime.md, "Layout"): what is set when
 * the executor is made and only read afterwards comes first; each group of
 * fields that some thread writes while the others run has a line of its
 * own, so that a write to one never invalidates another. */
struct amb__exec {
    /* Read-mostly: set by amb__exec_init, or once per run. */
    amb__task_ops ops;
    unsigned nsched;
    size_t sched_stride; /* bytes from one scheduler to the next */
    char *scheds;        /* nsched of them with their extension areas */
    size_t stack_size;
    unsigned blocking_threads;
    uint64_t watchdog_ms;
    amb__clock clock;     /* every time the runtime reads (clock.h) */
    void *watchdog;       /* watchdog.c, while running */
    void *blocking;       /* blocking.c, from the first run on */
    uint32_t spin_max_us; /* amb__exec_config's */
    /* The I/O poller (poll.h), made by the first I/O layer that needs it
     * (amb__exec_poll_open) and kept until amb__exec_term; NULL before. */
    _Atomic(amb__poll *) poll;
    _Atomic bool stopping; /* amb__exec_stop, or every task ended */
    _Atomic bool running;
    /* Stacks without guard pages of any kind (the canary only), as on a
     * kernel without guard regions past the mprotect budget: tests set it
     * before the first task runs. */
    bool stack_guards_off;

    /* Stack pools by size class: class k holds stacks of stack_size << k,
     * made on first use (stack_lock). */
    pthread_mutex_t stack_lock;
    _Atomic(amb__stack_pool *) stack_pools[AMB__STACK_CLASSES];

    /* Idle accounting: written when a scheduler starts or stops spinning
     * or sleeping, read by every waker (sched.c). */
    _Alignas(64) _Atomic unsigned nspinning;
    _Atomic unsigned nsleeping;

    /* The inject queue (runq.h): outside wake-ups and overflow. */
    _Alignas(64) amb__runq_inject inject;

    /* Tasks begun from outside any scheduler (amb_rt_spawn); the
     * schedulers count their own (amb__sched.begun, .ended). */
    _Alignas(64) _Atomic uint64_t ext_begun;

    /* QSBR (qsbr.h): the epoch (advanced now and then, read at every loop
     * pass), and the threads outside the runtime inside a lookup, by the
     * parity of the epoch they announced. */
    _Alignas(64) _Atomic uint64_t epoch;
    _Alignas(64) _Atomic unsigned ext_active[2];
};

/* Makes x (no thread starts). 0, AMB_ENOMEM. */
int amb__exec_init(amb__exec *x, const amb__exec_config *cfg);
/* Frees x, which does not run, in this order: the blocking pool (jobs to
 * ops->blocking_done), the tasks that never ended (ops->discard), the
 * tasks in limbo (ops->reclaim), pending timers (ops->timer_fire), each
 * scheduler's extension (ops->sched_term), stacks, the poller (whose
 * descriptors the I/O layer has closed by then, releasing what the tasks
 * owned). */
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

/* The poller of x, made on first use (under stack_lock). 0, AMB_ENOMEM,
 * AMB_ESYSLIMIT (no fd for epoll), AMB_EIO. Any thread. */
int amb__exec_poll_open(amb__exec *x, amb__poll **out);

/* The poller of x, or NULL while nobody has asked for one: what the
 * scheduler loop and the watchdog look at (one load when there is none). */
static inline amb__poll *amb__exec_poller(amb__exec *x)
{
    /* acquire: pairs with the release that published it, complete. */
    return atomic_load_explicit(&x->poll, memory_order_acquire);
}

/* Scheduler i of x. */
static inline amb__sched *amb__exec_sched(amb__exec *x, unsigned i)
{
    return (amb__sched *)(void *)(x->scheds + (size_t)i * x->sched_stride);
}

/* A new task will become runnable or parked: counted until it ends. s is
 * the scheduler spawning it, or NULL outside the runtime. */
static inline void amb__exec_task_begin(amb__exec *x, amb__sched *s)
{
    if (s != NULL) {
        /* relaxed load and store: only s's thread writes s->begun. A
         * reader sums it after acquiring the end of every task it counts
         * as ended (amb__exec_live), and each of those began before it
         * ran, so that begin happens before the read. */
        uint64_t n = atomic_load_explicit(&s->begun, memory_order_relaxed);
        atomic_store_explicit(&s->begun, n + 1, memory_order_relaxed);
    } else {
        /* relaxed: as above; several outside threads may spawn at once,
         * hence the RMW. */
        atomic_fetch_add_explicit(&x->ext_begun, 1, memory_order_relaxed);
    }
}

/* The number of tasks begun and not ended, as seen now: 0 only when every
 * task has ended (it may count a task that ends meanwhile, never miss a
 * live one). O(schedulers); an idle scheduler asks. */
uint64_t amb__exec_live(amb__exec *x);

/* The stack size class for a stack of `size` usable bytes, or -1 when it
 * is larger than the largest class. */
int amb__exec_stack_class(amb__exec *x, size_t size);
/* The pool of stack class cls, made on first use; NULL when out of memory. */
amb__stack_pool *amb__exec_stack_pool(amb__exec *x, unsigned cls);

#endif /* AMB_RUNTIME_EXEC_H */

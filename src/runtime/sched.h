/*
 * sched.h - the runtime and its schedulers (DESIGN §2 "Scheduler").
 *
 * One scheduler per OS thread. Each has:
 *   - a run queue: a 256-slot FIFO ring the owner appends to and takes from,
 *     from which idle schedulers steal half (runq.c), plus a one-slot
 *     "run next" for the process the running one just woke, so a ping-pong
 *     stays on one core without touching the ring;
 *   - a timing wheel for its timers and receive timeouts (wheel.h);
 *   - caches: stacks, message cells, process blocks;
 *   - an epoch for QSBR (below) and a futex word to sleep on.
 *
 * A process that a scheduler wakes goes to that scheduler's run-next slot
 * (the previous occupant moves to the ring). A process woken from outside
 * the runtime goes to the inject queue (a mutex-protected list), which every
 * scheduler polls. An idle scheduler spins a little, stealing, then sleeps
 * until its next timer or until woken; whoever adds work to a ring while
 * nobody spins wakes one sleeper.
 *
 * QSBR (quiescent-state-based reclamation, BEAM's "thread progress"):
 * process blocks are read by senders without locks, so a block is freed
 * only when every scheduler has passed a quiescent point (between two
 * process runs) since the block was retired. rt->epoch advances when every
 * online scheduler has seen the current one; a block retired at epoch e is
 * freed once the epoch reaches e + 2. A sleeping scheduler is offline (holds
 * no references). Threads outside the runtime that look processes up
 * (amb_rt_send) hold rt->ext_active while they do, and the epoch does not
 * advance meanwhile.
 */
#ifndef AMB_RUNTIME_SCHED_H
#define AMB_RUNTIME_SCHED_H

#include <pthread.h>
#include <stdatomic.h>

#include "ambitious/logger.h"
#include "process/proc.h"
#include "runtime/slab.h"

#define AMB__RUNQ_SIZE     256u
#define AMB__STACK_CLASSES 13 /* up to 4096 x the default size */

/* A scheduler's run queue (runq.c). head is taken by the owner and by
 * thieves (CAS); tail is written by the owner only. */
typedef struct amb__runq {
    _Atomic uint32_t head;
    _Atomic uint32_t tail;
    _Atomic(amb_proc *) next; /* run next */
    _Atomic(amb_proc *) ring[AMB__RUNQ_SIZE];
} amb__runq;

/* Size classes of message cells (msg.c). */
#define AMB__MSG_CLASSES 4

struct amb__sched {
    amb_rt *rt;
    unsigned id;
    pthread_t thread;
    amb__ctx ctx; /* the thread's own stack */
    amb_proc *current;
    /* The process that just switched away and what it asked for; finished
     * by whichever context lands next on this scheduler (sched.c). */
    amb_proc *pending;
    uint8_t pending_req;

    amb__runq q;
    uint32_t tick;   /* loop iterations, for periodic work */
    uint32_t direct; /* direct switches, to come back to the loop now and then */

    amb__wheel wheel;
    uint64_t now_ms; /* the clock as last read */

    /* One stack cache per stack size class (stacks.c pools), set up when a
     * class is first used on this scheduler. */
    amb__stack_cache stacks[AMB__STACK_CLASSES];
    amb__slab_pool msgs[AMB__MSG_CLASSES];
    amb__slab_pool procs; /* process blocks (proc.c) */
    uint32_t *free_idx;   /* freed table indices (ptab.c) */
    size_t free_idx_len, free_idx_cap;
    uint64_t ref_counter; /* for amb_make_ref: unique per scheduler */
    void *timers;         /* send_after handles (timer.c) */

    /* QSBR */
    _Alignas(64) _Atomic uint64_t epoch_seen; /* AMB__EPOCH_OFFLINE while asleep */
    amb_proc *limbo, *limbo_tail;             /* retired blocks, oldest first */
    size_t limbo_count;

    /* Sleeping: the futex word is bumped by every wake. */
    _Alignas(64) _Atomic uint32_t futex;
    _Atomic bool sleeping;
    /* When the current process was switched in (0: idle), and which it is:
     * read by thieves and the watchdog. */
    _Atomic uint64_t run_started_ms;
    _Atomic amb_pid current_pid;
};

#define AMB__EPOCH_OFFLINE UINT64_MAX

struct amb_rt {
    amb_config cfg;
    unsigned nsched;
    amb__sched *scheds; /* nsched of them, 64-byte aligned */
    amb__ptab ptab;
    /* Stack pools by size class: class k holds stacks of cfg.stack_size << k,
     * made on first use (stack_lock). */
    pthread_mutex_t stack_lock;
    _Atomic(amb__stack_pool *) stack_pools[AMB__STACK_CLASSES];

    amb_term node_name;
    uint32_t creation;
    unsigned node_slot;
    _Atomic uint64_t next_ref;

    /* The inject queue: processes made runnable from outside a scheduler. */
    pthread_mutex_t inject_lock;
    amb_proc *inject_head, *inject_tail;
    _Atomic size_t inject_len;

    _Atomic size_t live;   /* processes alive */
    _Atomic bool stopping; /* amb_rt_stop or all processes ended */
    _Atomic bool running;
    _Atomic unsigned nspinning;
    _Atomic unsigned nsleeping;

    _Alignas(64) _Atomic uint64_t epoch;
    _Atomic unsigned ext_active; /* external threads inside a lookup */

    /* Depots of the slab classes (msg.c, proc.c): free objects flow between
     * schedulers through them. */
    amb__slab_depot msg_depots[AMB__MSG_CLASSES];
    amb__slab_depot proc_depot;

    /* Registered names (names.c). */
    pthread_mutex_t names_lock;
    void *names; /* the name table */

    /* Logger (src/process/logger.c): the level plus one (0: the default), and
     * the handler with its context, changed under log_busy (a spin flag:
     * changes are rare and a read is two loads). */
    _Atomic int log_level;
    _Atomic bool log_busy;
    void (*log_fn)(void *ctx, const struct amb_log_event *ev);
    void *log_ctx;

    /* Watchdog and blocking pool (watchdog.c, blocking.c). */
    void *watchdog;
    void *blocking;
};


/* Current time in ms on the monotonic clock. */
uint64_t amb__clock_ms(void);

/* Makes p runnable. On a scheduler (s != NULL): into s's run-next slot.
 * From outside (s == NULL): into the inject queue, waking a scheduler. */
void amb__sched_ready(amb_rt *rt, amb__sched *s, amb_proc *p);
/* Makes p runnable at the back of s's ring (fairness: yields, spawns). */
void amb__sched_ready_tail(amb__sched *s, amb_proc *p);
/* Wakes one sleeping scheduler if nobody spins (called after adding work). */
void amb__sched_wake_one(amb_rt *rt);
/* Wakes every scheduler (stop). */
void amb__sched_wake_all(amb_rt *rt);

/* The process switches back to its scheduler with a request. Returns when
 * the process runs again (possibly on another scheduler: re-read p->sched). */
void amb__proc_switch_out(amb_proc *p, enum amb__req req);
/* The process ends: switches back for teardown and never returns. */
_Noreturn void amb__proc_exit(amb_proc *p);

/* Yields: first handles the signals that have arrived (a running process
 * answers process_info, links and monitors at its next yield, as a BEAM
 * process does when it is scheduled out; exit signals act even sooner, see
 * amb__proc_reduce), then goes to the back of the run queue. */
void amb__proc_yield(amb_proc *p);
/* Spends one reduction; yields when the budget is gone. Handles pending
 * exit signals first: every send and receive passes here, so a running
 * process notices an exit signal at its next runtime call. */
static inline void amb__proc_reduce(amb_proc *p)
{
    /* relaxed: a hint only; amb__proc_signals re-reads it with acquire. */
    if (amb__unlikely(atomic_load_explicit(&p->sig_pending, memory_order_relaxed)))
        amb__proc_signals(p);
    amb__counter_add(&p->reductions, 1);
    if (amb__unlikely(--p->budget <= 0))
        amb__proc_yield(p);
}
/* A handler activation ends (its stack is released): never returns. */
_Noreturn void amb__sched_exit_to(amb_proc *p, enum amb__req req);
/* Ends p with reason {error, 'AMB_E...'} for a callback's error code. */
_Noreturn void amb__proc_exit_error(amb_proc *p, int rc);

/* The loop of one scheduler thread (rt.c starts the threads). */
void amb__sched_loop(amb__sched *s);
/* Frees every retired block of s at once (the runtime is stopped). */
void amb__sched_reclaim_all(amb__sched *s);

/* External threads around a process-table lookup (see QSBR above). */
void amb__rt_ext_enter(amb_rt *rt);
void amb__rt_ext_leave(amb_rt *rt);

/* Run queue (runq.c) */
void amb__runq_init(amb__runq *q);
/* Owner: appends p; when the ring is full, moves half of it and p to the
 * inject queue. */
void amb__runq_put(amb_rt *rt, amb__runq *q, amb_proc *p);
/* Owner: takes the oldest, or NULL. */
amb_proc *amb__runq_get(amb__runq *q);
/* Thief: moves about half of victim's ring into q (which must be empty);
 * returns one of them to run now, or NULL. */
amb_proc *amb__runq_steal(amb__runq *q, amb__runq *victim, bool take_next);
bool amb__runq_empty(amb__runq *q);

/* Inject queue */
void amb__inject_put(amb_rt *rt, amb_proc *p);
amb_proc *amb__inject_get(amb_rt *rt);

/* Teardown of an ended process (proc.c), on its scheduler. */
void amb__proc_teardown(amb__sched *s, amb_proc *p);
/* Frees a retired block once its grace period has passed (proc.c). */
void amb__proc_reclaim(amb__sched *s, amb_proc *p);
/* Frees a process that never ended (runtime teardown), and s's block pool. */
void amb__proc_discard(amb__sched *s, amb_proc *p);
void amb__proc_pool_free(amb__sched *s);
/* Retires p (QSBR). */
void amb__sched_retire(amb__sched *s, amb_proc *p);

/* Stacks by size class (rt.c): the class for a size (-1 when too big), and
 * alloc/free through s's cache of that class. */
int amb__stack_class_for(amb_rt *rt, size_t size);
int amb__sched_stack_alloc(amb__sched *s, unsigned cls, amb__stack **out);
void amb__sched_stack_free(amb__sched *s, unsigned cls, amb__stack *st);

/* Timers (timer.c) */
/* Arms a receive timeout for p's current wait. */
int amb__timer_wait(amb__sched *s, amb_proc *p, uint64_t ms);
/* Cancels p's wait timer if it is still pending (any scheduler). */
void amb__timer_wait_cancel(amb__sched *s, amb_proc *p);
/* Fires due timers of s. */
void amb__timers_advance(amb__sched *s, uint64_t now_ms);
/* Frees every pending timer of s (runtime teardown). */
void amb__timers_free_all(amb__sched *s);
int amb__timers_init(amb__sched *s);
/* A match function that matches nothing (amb_sleep). */
bool amb__match_nothing(void *ctx, amb_term msg);
/* Frees the scheduler's message-cell pools (msg.c). */
void amb__msg_pools_free(amb__sched *s);
/* Gives the free objects cached by s and by the runtime's depots back to
 * their slabs (a scheduler going to sleep; msg.c, proc.c). */
void amb__msg_pools_trim(amb__sched *s);
void amb__proc_pool_trim(amb__sched *s);
/* The runtime's slab depots and each scheduler's pools wired to them
 * (msg.c, proc.c); freed after every pool was drained. */
int amb__msg_depots_init(amb_rt *rt);
void amb__msg_depots_free(amb_rt *rt);
int amb__proc_depot_init(amb_rt *rt);
void amb__proc_depot_free(amb_rt *rt);

#endif /* AMB_RUNTIME_SCHED_H */

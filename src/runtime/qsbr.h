/*
 * qsbr.h - quiescent-state-based reclamation of tasks (BEAM's "thread
 * progress"; qsbr.c).
 *
 * The layer above reads tasks without locks (a sender looks a process up in
 * its table and pushes into its inbox), so an ended task is freed only when
 * every scheduler has passed a quiescent point (between two task runs,
 * where it holds no task pointer) since the task was retired:
 *   - x->epoch advances when every online scheduler has seen the current
 *     one (its epoch_seen);
 *   - a task retired at epoch e is reclaimed (ops->reclaim) once the epoch
 *     reaches e + 2: then every scheduler has passed a quiescent point
 *     after the retirement;
 *   - a sleeping scheduler is offline (AMB__QSBR_OFFLINE) and holds nothing;
 *   - a thread outside the runtime that looks tasks up (amb_rt_send, the
 *     blocking pool, the watchdog) announces, for the time of its lookup,
 *     the epoch e it saw, in the counter of e's parity
 *     (x->ext_active[e & 1]; amb__qsbr_enter/leave): it then counts as a
 *     scheduler that announced e, which holds back the advance from e + 1
 *     only. Announced epochs are only ever the current one or the one
 *     before (an advance from E waits for the counter of E - 1, the only
 *     other parity in use), so two counters tell them apart, and outside
 *     threads that keep entering and leaving never stop the epoch: each
 *     new one announces the current epoch (issue 12: with one counter for
 *     all, two threads calling amb_rt_send in a loop kept it above zero,
 *     and limbo grew from 14 to 136 MiB over 2M spawns).
 * A scheduler's limbo is a FIFO: tasks are appended with non-decreasing
 * epochs, so the ones whose grace period has passed are at its head.
 *
 * Memory orders follow crossbeam-epoch's (an epoch scheme with the same
 * e + 2 rule): a seq_cst fence where a scheduler comes back online (its
 * announcement must be visible before its first lookup: a store followed
 * by loads, which a store buffer would reorder), where a task is retired
 * (the table entry's clearing must be visible before the epoch is read, or
 * a task could be retired at an epoch that a reader already left behind),
 * and where an advance reads the schedulers' epochs (the other side of both
 * pairs). A scheduler that was online and sees a new epoch needs no fence:
 * until its new announcement is visible, it looks one epoch behind, which
 * only holds the next advance back.
 */
#ifndef AMB_RUNTIME_QSBR_H
#define AMB_RUNTIME_QSBR_H

#include "runtime/exec.h"

#define AMB__QSBR_OFFLINE UINT64_MAX

/* A quiescent point of s: it holds no task pointer here. */
static inline void amb__qsbr_quiescent(amb__sched *s)
{
    /* acquire: pairs with the advancing CAS, whose release passes on every
     * scheduler's announcement and so every table clearing made before it:
     * lookups after this point do not find a task retired two epochs ago. */
    uint64_t e = atomic_load_explicit(&s->exec->epoch, memory_order_acquire);
    /* relaxed: only this thread writes epoch_seen. */
    uint64_t seen = atomic_load_explicit(&s->epoch_seen, memory_order_relaxed);
    if (seen == e)
        return;
    /* release: every read of a task made before this point happens before
     * a reclaimer that sees this epoch frees the task. */
    atomic_store_explicit(&s->epoch_seen, e, memory_order_release);
    /* seq_cst: back online, the announcement comes before any lookup (see
     * above); a rare path (after a sleep, at start). */
    if (amb__unlikely(seen == AMB__QSBR_OFFLINE))
        atomic_thread_fence(memory_order_seq_cst);
}

/* s goes offline (to sleep, or out of the loop): it holds no task pointer
 * until its next quiescent point. */
static inline void amb__qsbr_offline(amb__sched *s)
{
    /* release: as in amb__qsbr_quiescent, every read of a task made before
     * going offline happens before a reclaimer that sees us offline. */
    atomic_store_explicit(&s->epoch_seen, AMB__QSBR_OFFLINE, memory_order_release);
}

/* Retires t (ended, unreachable for new lookups) into s's limbo. */
void amb__qsbr_retire(amb__sched *s, amb__task *t);
/* Tries to advance the epoch, then reclaims the tasks of s's limbo whose
 * grace period has passed; with force (the executor is stopped), all. */
void amb__qsbr_reclaim(amb__sched *s, bool force);

/* A thread outside the runtime around a lookup of tasks: enter returns a
 * token (the parity of the epoch it announced) that leave takes back. */
unsigned amb__qsbr_enter(amb__exec *x);
void amb__qsbr_leave(amb__exec *x, unsigned token);

#endif /* AMB_RUNTIME_QSBR_H */

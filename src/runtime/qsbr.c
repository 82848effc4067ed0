/*
 * qsbr.c - retiring and reclaiming tasks (qsbr.h explains the scheme).
 *
 * Invariants:
 *   - A scheduler's limbo is touched only by its own thread.
 *   - The epoch only grows, by one, and only when every online scheduler
 *     has published the current value and no outside thread that
 *     announced the one before is still inside its lookup.
 */
#include "runtime/qsbr.h"

static void try_advance(amb__exec *x)
{
    /* acquire: as in amb__qsbr_quiescent. */
    uint64_t e = atomic_load_explicit(&x->epoch, memory_order_acquire);
    /* seq_cst: the other side of the fences of a scheduler coming online,
     * of an outside thread entering and of a retirement (qsbr.h): the
     * announcements read below are the ones made before those fences. */
    atomic_thread_fence(memory_order_seq_cst);
    /* Outside threads that announced e - 1 hold the advance from e back;
     * those that announced e do not (qsbr.h). acquire: one that finished
     * its lookup (its release decrement) is done with the tasks it read. */
    if (atomic_load_explicit(&x->ext_active[(e - 1) & 1], memory_order_acquire) != 0)
        return;
    for (unsigned i = 0; i < x->nsched; i++) {
        /* acquire: pairs with the scheduler's release store of its epoch,
         * so its reads of tasks before that point happen before the advance
         * (and so before any reclamation that the advance allows). */
        uint64_t seen = atomic_load_explicit(&amb__exec_sched(x, i)->epoch_seen,
                                             memory_order_acquire);
        if (seen != AMB__QSBR_OFFLINE && seen != e)
            return;
    }
    /* acq_rel: release passes on what the loads above acquired, to every
     * thread that later reads the new epoch with acquire; the CAS makes two
     * racing advancers advance once. */
    atomic_compare_exchange_strong_explicit(&x->epoch, &e, e + 1, memory_order_acq_rel,
                                            memory_order_relaxed);
}

void amb__qsbr_retire(amb__sched *s, amb__task *t)
{
    /* seq_cst: the layer above made t unreachable (a release store into its
     * table) before it handed t over; that store must be visible before we
     * read the epoch, or a reader that already announced a newer epoch could
     * still find t (qsbr.h). One fence per ended task. */
    atomic_thread_fence(memory_order_seq_cst);
    /* acquire: at least as new as any epoch this thread has seen. */
    t->retire_epoch = atomic_load_explicit(&s->exec->epoch, memory_order_acquire);
    t->link = NULL;
    if (s->limbo_tail != NULL)
        s->limbo_tail->link = t;
    else
        s->limbo = t;
    s->limbo_tail = t;
    s->limbo_count++;
}

void amb__qsbr_reclaim(amb__sched *s, bool force)
{
    amb__exec *x = s->exec;
    if (!force)
        try_advance(x);
    /* acquire: pairs with the advancing CAS, so every scheduler's last use
     * of a task retired two epochs ago happens before we reclaim it. */
    uint64_t e = atomic_load_explicit(&x->epoch, memory_order_acquire);
    while (s->limbo != NULL && (force || s->limbo->retire_epoch + 2 <= e)) {
        amb__task *t = s->limbo;
        s->limbo = t->link;
        if (s->limbo == NULL)
            s->limbo_tail = NULL;
        s->limbo_count--;
        x->ops.reclaim(s, t);
    }
}

unsigned amb__qsbr_enter(amb__exec *x)
{
    /* relaxed: a guess, checked after the announcement below. */
    uint64_t e = atomic_load_explicit(&x->epoch, memory_order_relaxed);
    for (;;) {
        unsigned k = (unsigned)(e & 1);
        /* seq_cst RMW, then a seq_cst fence: the announcement comes before
         * the epoch's re-read and our table read, as when a scheduler comes
         * back online (an RMW alone does not order later plain loads in
         * C11's model, though it does on x86). It pairs with try_advance's
         * fence: an advance from e + 1 that read the epoch after ours sees
         * the count (the fences are ordered as the two epoch reads are). */
        atomic_fetch_add_explicit(&x->ext_active[k], 1, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        /* acquire: as in amb__qsbr_quiescent. Still e: we announced the
         * current epoch, and only the advance from e + 1 waits for us.
         * Moved on: our count may sit in the parity of the current epoch,
         * where no advance looks; take it back and announce again (rare: an
         * advance happened between two loads). */
        uint64_t now = atomic_load_explicit(&x->epoch, memory_order_acquire);
        if (now == e)
            return k;
        /* relaxed: nothing was read under this announcement. */
        atomic_fetch_sub_explicit(&x->ext_active[k], 1, memory_order_relaxed);
        e = now;
    }
}

void amb__qsbr_leave(amb__exec *x, unsigned token)
{
    /* release: our reads of the task happen before a reclaimer sees 0. */
    atomic_fetch_sub_explicit(&x->ext_active[token], 1, memory_order_release);
}

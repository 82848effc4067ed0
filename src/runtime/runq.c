/*
 * runq.c - a scheduler's run queue and the runtime's inject queue.
 *
 * The ring (Go's runq, the same idea): a fixed array of AMB__RUNQ_SIZE slots
 * indexed by free-running 32-bit counters.
 *   - Only the owner writes tail (and the slots between head and tail).
 *   - The owner and thieves take from head with a CAS, so a slot is taken
 *     exactly once. A thief copies the slots it wants first, then claims them
 *     with the CAS; if the CAS fails, the copies are discarded and it tries
 *     again, so nothing is taken twice or lost.
 *   - When the ring is full the owner moves half of it to the inject queue,
 *     so a put never fails and the ring's cost stays O(1) amortised.
 * The run-next slot is an atomic pointer the owner exchanges; thieves take it
 * only when asked to (take_next), with a CAS.
 *
 * The inject queue is a plain FIFO list under a mutex: it is used from
 * outside the runtime and on overflow, both rare.
 */
#include "runtime/sched.h"

void amb__runq_init(amb__runq *q)
{
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    atomic_init(&q->next, NULL);
    for (unsigned i = 0; i < AMB__RUNQ_SIZE; i++)
        atomic_init(&q->ring[i], NULL);
}

bool amb__runq_empty(amb__runq *q)
{
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    return h == t && atomic_load_explicit(&q->next, memory_order_acquire) == NULL;
}

/* Moves half the ring plus p to the inject queue. False when a thief raced
 * us (the ring is no longer full; the caller retries the put). */
static bool put_slow(amb_rt *rt, amb__runq *q, amb_proc *p, uint32_t h, uint32_t t)
{
    uint32_t n = (t - h) / 2;
    amb_proc *batch[AMB__RUNQ_SIZE / 2 + 1];
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&q->ring[(h + i) % AMB__RUNQ_SIZE],
                                        memory_order_relaxed);
    /* acq_rel: release so the slots we read stay ours; acquire pairs with
     * thieves' CAS on head. */
    if (!atomic_compare_exchange_strong_explicit(
            &q->head, &h, h + n, memory_order_acq_rel, memory_order_relaxed))
        return false;
    batch[n] = p;
    pthread_mutex_lock(&rt->inject_lock);
    for (uint32_t i = 0; i <= n; i++) {
        batch[i]->runq_next = NULL;
        if (rt->inject_tail != NULL)
            rt->inject_tail->runq_next = batch[i];
        else
            rt->inject_head = batch[i];
        rt->inject_tail = batch[i];
    }
    atomic_fetch_add_explicit(&rt->inject_len, n + 1, memory_order_release);
    pthread_mutex_unlock(&rt->inject_lock);
    return true;
}

void amb__runq_put(amb_rt *rt, amb__runq *q, amb_proc *p)
{
    for (;;) {
        /* acquire: pairs with the CAS of thieves, so a slot they freed is
         * free before we write it. */
        uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (t - h < AMB__RUNQ_SIZE) {
            atomic_store_explicit(&q->ring[t % AMB__RUNQ_SIZE], p, memory_order_relaxed);
            /* release: the slot is written before a thief can see it. */
            atomic_store_explicit(&q->tail, t + 1, memory_order_release);
            return;
        }
        if (put_slow(rt, q, p, h, t))
            return;
    }
}

amb_proc *amb__runq_get(amb__runq *q)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        amb_proc *p =
            atomic_load_explicit(&q->ring[h % AMB__RUNQ_SIZE], memory_order_relaxed);
        /* acq_rel: the CAS claims the slot against thieves. */
        if (atomic_compare_exchange_weak_explicit(
                &q->head, &h, h + 1, memory_order_acq_rel, memory_order_relaxed))
            return p;
    }
}

amb_proc *amb__runq_steal(amb__runq *q, amb__runq *victim, bool take_next)
{
    for (;;) {
        /* acquire on both: the slots between them were published by the
         * victim's release store of tail. */
        uint32_t h = atomic_load_explicit(&victim->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&victim->tail, memory_order_acquire);
        uint32_t n = t - h;
        if (n > AMB__RUNQ_SIZE)
            continue; /* read head and tail at different moments: retry */
        n -= n / 2;
        if (n == 0) {
            if (!take_next)
                return NULL;
            amb_proc *p = atomic_load_explicit(&victim->next, memory_order_acquire);
            if (p == NULL)
                return NULL;
            if (atomic_compare_exchange_strong_explicit(
                    &victim->next, &p, NULL, memory_order_acq_rel, memory_order_relaxed))
                return p;
            continue;
        }
        uint32_t qt = atomic_load_explicit(&q->tail, memory_order_relaxed);
        for (uint32_t i = 0; i < n; i++) {
            amb_proc *p = atomic_load_explicit(&victim->ring[(h + i) % AMB__RUNQ_SIZE],
                                               memory_order_relaxed);
            atomic_store_explicit(&q->ring[(qt + i) % AMB__RUNQ_SIZE], p,
                                  memory_order_relaxed);
        }
        if (!atomic_compare_exchange_strong_explicit(
                &victim->head, &h, h + n, memory_order_acq_rel, memory_order_relaxed))
            continue;
        /* Keep the last one to run now; publish the rest in our ring. */
        n--;
        amb_proc *run = atomic_load_explicit(&q->ring[(qt + n) % AMB__RUNQ_SIZE],
                                             memory_order_relaxed);
        if (n > 0)
            atomic_store_explicit(&q->tail, qt + n, memory_order_release);
        return run;
    }
}

void amb__inject_put(amb_rt *rt, amb_proc *p)
{
    p->runq_next = NULL;
    pthread_mutex_lock(&rt->inject_lock);
    if (rt->inject_tail != NULL)
        rt->inject_tail->runq_next = p;
    else
        rt->inject_head = p;
    rt->inject_tail = p;
    /* release: a scheduler that sees the count non-zero takes the lock anyway. */
    atomic_fetch_add_explicit(&rt->inject_len, 1, memory_order_release);
    pthread_mutex_unlock(&rt->inject_lock);
}

amb_proc *amb__inject_get(amb_rt *rt)
{
    /* relaxed: a cheap hint; the list itself is read under the lock. */
    if (atomic_load_explicit(&rt->inject_len, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&rt->inject_lock);
    amb_proc *p = rt->inject_head;
    if (p != NULL) {
        rt->inject_head = p->runq_next;
        if (rt->inject_head == NULL)
            rt->inject_tail = NULL;
        atomic_fetch_sub_explicit(&rt->inject_len, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&rt->inject_lock);
    return p;
}

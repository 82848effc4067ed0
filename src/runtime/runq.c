/*
 * runq.c - a scheduler's run queue and the executor's inject queue (runq.h
 * explains both).
 *
 * Memory orders, in one place: a slot of the ring is plain data published
 * by the owner's release store of tail and claimed by a CAS on head. So a
 * reader of slots first loads tail with acquire (the slots up to it are
 * written), and whoever claims slots does so with an acq_rel CAS on head;
 * the slot loads and stores themselves are relaxed.
 */
#include "runtime/runq.h"

void amb__runq_init(amb__runq *q)
{
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    atomic_init(&q->next, NULL);
    atomic_init(&q->seq, 0);
    atomic_init(&q->task_id, 0);
    for (unsigned i = 0; i < AMB__RUNQ_SIZE; i++)
        atomic_init(&q->ring[i], NULL);
}

bool amb__runq_empty(amb__runq *q)
{
    /* acquire: a hint for a caller about to look at the queue's tasks
     * (the watchdog, a scheduler about to sleep); each load sees a value at
     * least as new as the last one this thread acquired. */
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    return h == t && atomic_load_explicit(&q->next, memory_order_acquire) == NULL;
}

/* Moves half the ring plus t to the inject queue. False when a thief raced
 * us (the ring is no longer full; the caller retries the put). */
static bool put_slow(amb__runq *q, amb__task *t, uint32_t h, uint32_t tail,
                     amb__runq_inject *inj)
{
    uint32_t n = (tail - h) / 2;
    amb__task *batch[AMB__RUNQ_SIZE / 2 + 1];
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&q->ring[(h + i) % AMB__RUNQ_SIZE],
                                        memory_order_relaxed);
    /* acq_rel: the RMW claims the slots we read, exclusively against a
     * thief's CAS on head; its acquire half, like the load of head in
     * amb__runq_put, orders a thief's reads of slots it freed before our
     * later writes to them. The slots' contents were written by us. */
    if (!atomic_compare_exchange_strong_explicit(
            &q->head, &h, h + n, memory_order_acq_rel, memory_order_relaxed))
        return false;
    batch[n] = t;
    pthread_mutex_lock(&inj->lock);
    for (uint32_t i = 0; i <= n; i++) {
        batch[i]->link = NULL;
        if (inj->tail != NULL)
            inj->tail->link = batch[i];
        else
            inj->head = batch[i];
        inj->tail = batch[i];
    }
    /* release: the count is a hint read without the lock (see
     * amb__runq_inject_get); the list itself is published by the unlock. */
    atomic_fetch_add_explicit(&inj->len, n + 1, memory_order_release);
    pthread_mutex_unlock(&inj->lock);
    return true;
}

void amb__runq_put(amb__runq_inject *inj, amb__runq *q, amb__task *t)
{
    for (;;) {
        /* acquire: pairs with the CAS of thieves, so a slot they freed is
         * free (read by them) before we write it. */
        uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        /* relaxed: only this thread writes tail. */
        uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (tail - h < AMB__RUNQ_SIZE) {
            /* relaxed: published by the release store of tail below. */
            atomic_store_explicit(&q->ring[tail % AMB__RUNQ_SIZE], t,
                                  memory_order_relaxed);
            /* release: the slot (and what happened to t before it was made
             * runnable) is written before a thief can see it. */
            atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
            return;
        }
        if (put_slow(q, t, h, tail, inj))
            return;
    }
}

amb__task *amb__runq_get(amb__runq *q)
{
    for (;;) {
        /* acquire: pairs with a thief's CAS on head (see amb__runq_put). */
        uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        /* relaxed: only this thread writes tail. */
        uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (tail == h)
            return NULL;
        /* relaxed: the slot was written by this thread. */
        amb__task *t =
            atomic_load_explicit(&q->ring[h % AMB__RUNQ_SIZE], memory_order_relaxed);
        /* acq_rel: the RMW claims the slot exclusively against thieves;
         * the slot's content was written by this thread, so nothing else
         * needs ordering here. */
        if (atomic_compare_exchange_weak_explicit(
                &q->head, &h, h + 1, memory_order_acq_rel, memory_order_relaxed))
            return t;
    }
}

amb__task *amb__runq_steal(amb__runq *q, amb__runq *victim, bool take_next)
{
    for (;;) {
        /* acquire on both: the slots between them were published by the
         * victim's release store of tail, and freed slots by a CAS on head. */
        uint32_t h = atomic_load_explicit(&victim->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&victim->tail, memory_order_acquire);
        uint32_t n = t - h;
        if (n > AMB__RUNQ_SIZE)
            continue; /* read head and tail at different moments: retry */
        n -= n / 2;
        if (n == 0) {
            if (!take_next)
                return NULL;
            /* acquire: pairs with the owner's release exchange that put the
             * task in the slot (runq.h, amb__runq_put_next). */
            amb__task *p = atomic_load_explicit(&victim->next, memory_order_acquire);
            if (p == NULL)
                return NULL;
            /* acq_rel: the CAS takes the task exclusively against the owner's
             * exchange; acquire as the load above. */
            if (atomic_compare_exchange_strong_explicit(
                    &victim->next, &p, NULL, memory_order_acq_rel, memory_order_relaxed))
                return p;
            continue;
        }
        /* relaxed: q is ours and empty; its tail is written only by us. */
        uint32_t qt = atomic_load_explicit(&q->tail, memory_order_relaxed);
        for (uint32_t i = 0; i < n; i++) {
            /* relaxed: the acquire load of the victim's tail above covers
             * these slots; our copies are published by our tail store. */
            amb__task *p = atomic_load_explicit(&victim->ring[(h + i) % AMB__RUNQ_SIZE],
                                                memory_order_relaxed);
            atomic_store_explicit(&q->ring[(qt + i) % AMB__RUNQ_SIZE], p,
                                  memory_order_relaxed);
        }
        /* acq_rel: the CAS claims the copied slots; if it fails, another
         * thief or the owner took some of them, and the copies are dropped. */
        if (!atomic_compare_exchange_strong_explicit(
                &victim->head, &h, h + n, memory_order_acq_rel, memory_order_relaxed))
            continue;
        /* Keep the last one to run now; publish the rest in our ring. */
        n--;
        amb__task *run = atomic_load_explicit(&q->ring[(qt + n) % AMB__RUNQ_SIZE],
                                              memory_order_relaxed);
        if (n > 0)
            /* release: as amb__runq_put, for thieves of our ring. */
            atomic_store_explicit(&q->tail, qt + n, memory_order_release);
        return run;
    }
}

void amb__runq_inject_init(amb__runq_inject *inj)
{
    pthread_mutex_init(&inj->lock, NULL);
    inj->head = inj->tail = NULL;
    atomic_init(&inj->len, 0);
}

void amb__runq_inject_term(amb__runq_inject *inj)
{
    pthread_mutex_destroy(&inj->lock);
}

void amb__runq_inject_put(amb__runq_inject *inj, amb__task *t)
{
    t->link = NULL;
    pthread_mutex_lock(&inj->lock);
    if (inj->tail != NULL)
        inj->tail->link = t;
    else
        inj->head = t;
    inj->tail = t;
    /* release: more than the hint needs (a scheduler that sees the count
     * non-zero takes the lock, which orders the list); kept so that a
     * sleeper's acquire check of the count sees the queue as non-empty. */
    atomic_fetch_add_explicit(&inj->len, 1, memory_order_release);
    pthread_mutex_unlock(&inj->lock);
}

amb__task *amb__runq_inject_get(amb__runq_inject *inj)
{
    /* relaxed: a cheap hint; the list itself is read under the lock. A
     * task put just now and missed here is found at the next look (every
     * scheduler polls the queue, and whoever puts wakes one). */
    if (atomic_load_explicit(&inj->len, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&inj->lock);
    amb__task *t = inj->head;
    if (t != NULL) {
        inj->head = t->link;
        if (inj->head == NULL)
            inj->tail = NULL;
        /* relaxed: under the lock, which orders it with the other writers. */
        atomic_fetch_sub_explicit(&inj->len, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&inj->lock);
    return t;
}

amb__task *amb__runq_inject_take(amb__runq_inject *inj, amb__runq *q, unsigned max)
{
    /* relaxed: a hint, as in amb__runq_inject_get. */
    if (atomic_load_explicit(&inj->len, memory_order_relaxed) == 0)
        return NULL;
    if (max > AMB__RUNQ_SIZE / 2)
        max = AMB__RUNQ_SIZE / 2;
    /* Unlinked under the lock into a private array: once one is in our
     * ring a thief may take it, run it and queue it again, link and all. */
    amb__task *batch[AMB__RUNQ_SIZE / 2];
    unsigned n = 0;
    pthread_mutex_lock(&inj->lock);
    while (n < max && inj->head != NULL) {
        batch[n++] = inj->head;
        inj->head = inj->head->link;
    }
    if (inj->head == NULL)
        inj->tail = NULL;
    /* relaxed: under the lock, which orders it with the other writers. */
    atomic_fetch_sub_explicit(&inj->len, n, memory_order_relaxed);
    pthread_mutex_unlock(&inj->lock);
    /* The ring is empty and n - 1 < half of it: no overflow. */
    for (unsigned i = 1; i < n; i++)
        amb__runq_put(NULL, q, batch[i]);
    return n != 0 ? batch[0] : NULL;
}

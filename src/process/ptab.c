/*
 * ptab.c - the process table: pid index -> process block, and the allocation
 * of indices.
 *
 * A local pid carries (index, serial). serials[index] is the serial the next
 * process at that index gets; it is bumped when a process leaves the index,
 * so an old pid never matches a newer process at the same index (for 2^22
 * reuses of one index).
 *
 * Indices: each scheduler keeps a small cache of freed indices (no lock);
 * beyond CACHE_MAX it moves a batch to the shared stack under the table's
 * lock, and it refills from there, or from never-used indices, when empty.
 *
 * Invariants: slots[i] is non-NULL exactly while a process holds index i
 * (published with a release store after the block is complete, cleared at
 * teardown); serials[i] is written only by the holder of index i's
 * allocation or free, never concurrently.
 */
#include <pthread.h>

#include "process/rt.h"

#define CACHE_MAX 256
#define BATCH     64

int amb__ptab_init(amb__ptab *t, size_t size)
{
    memset(t, 0, sizeof *t);
    t->slots = amb__calloc(size, sizeof *t->slots);
    t->serials = amb__calloc(size, sizeof *t->serials);
    t->free_idx = amb__calloc(size, sizeof *t->free_idx);
    pthread_mutex_t *lock = amb__malloc(sizeof *lock);
    if (t->slots == NULL || t->serials == NULL || t->free_idx == NULL || lock == NULL) {
        amb__free((void *)t->slots);
        amb__free(t->serials);
        amb__free(t->free_idx);
        amb__free(lock);
        return AMB_ENOMEM;
    }
    pthread_mutex_init(lock, NULL);
    t->lock = lock;
    t->size = size;
    atomic_init(&t->fresh, 0);
    return 0;
}

void amb__ptab_term(amb__ptab *t)
{
    if (t->lock != NULL) {
        pthread_mutex_destroy(t->lock);
        amb__free(t->lock);
    }
    amb__free((void *)t->slots);
    amb__free(t->serials);
    amb__free(t->free_idx);
    memset(t, 0, sizeof *t);
}

amb_proc *amb__ptab_lookup(amb_rt *rt, amb_pid pid)
{
    if (!amb_is_local_pid(pid) || amb__lpid_slot(pid) != rt->node_slot)
        return NULL;
    uint32_t i = amb__lpid_index(pid);
    if (i >= rt->ptab.size)
        return NULL;
    /* acquire: pairs with the release store that published the block. */
    amb_proc *p = atomic_load_explicit(&rt->ptab.slots[i], memory_order_acquire);
    return p != NULL && p->pid == pid ? p : NULL;
}

static bool cache_reserve(amb__rt_sched *s)
{
    if (s->free_idx_cap > s->free_idx_len)
        return true;
    size_t cap = s->free_idx_cap ? s->free_idx_cap * 2 : CACHE_MAX + BATCH;
    uint32_t *p = amb__realloc(s->free_idx, cap * sizeof *p);
    if (p == NULL)
        return false;
    s->free_idx = p;
    s->free_idx_cap = cap;
    return true;
}

int amb__ptab_alloc(amb_rt *rt, amb__sched *sched, uint32_t *index, uint32_t *serial)
{
    amb__ptab *t = &rt->ptab;
    amb__rt_sched *s = sched ? amb__rt_sched_of(sched) : NULL;
    uint32_t i;
    if (s != NULL && s->free_idx_len > 0) {
        i = s->free_idx[--s->free_idx_len];
    } else {
        bool got = false;
        pthread_mutex_lock(t->lock);
        if (t->free_len > 0) {
            i = t->free_idx[--t->free_len];
            got = true;
            /* Refill the cache with a batch while we hold the lock. */
            while (s != NULL && t->free_len > 0 && s->free_idx_len < BATCH &&
                   cache_reserve(s))
                s->free_idx[s->free_idx_len++] = t->free_idx[--t->free_len];
        }
        pthread_mutex_unlock(t->lock);
        if (!got) {
            /* relaxed: the RMW alone hands each fresh index out once; the
             * slot behind it is published by spawn's release store. */
            size_t f = atomic_fetch_add_explicit(&t->fresh, 1, memory_order_relaxed);
            if (f >= t->size || f > AMB__LPID_INDEX_MAX) {
                atomic_fetch_sub_explicit(&t->fresh, 1, memory_order_relaxed);
                return AMB_ESYSLIMIT;
            }
            i = (uint32_t)f;
        }
    }
    *index = i;
    *serial = t->serials[i];
    return 0;
}

static void give_back(amb__ptab *t, const uint32_t *idx, size_t n)
{
    pthread_mutex_lock(t->lock);
    memcpy(t->free_idx + t->free_len, idx, n * sizeof *idx);
    t->free_len += n;
    pthread_mutex_unlock(t->lock);
}

void amb__ptab_free(amb_rt *rt, amb__sched *sched, uint32_t index)
{
    amb__ptab *t = &rt->ptab;
    amb__rt_sched *s = sched ? amb__rt_sched_of(sched) : NULL;
    t->serials[index] = (t->serials[index] + 1) & AMB__LPID_SERIAL_MAX;
    if (s == NULL || !cache_reserve(s)) {
        give_back(t, &index, 1);
        return;
    }
    s->free_idx[s->free_idx_len++] = index;
    if (s->free_idx_len > CACHE_MAX) {
        s->free_idx_len -= BATCH;
        give_back(t, s->free_idx + s->free_idx_len, BATCH);
    }
}

void amb__ptab_flush_cache(amb_rt *rt, amb__sched *sched)
{
    amb__rt_sched *s = amb__rt_sched_of(sched);
    if (s->free_idx_len > 0)
        give_back(&rt->ptab, s->free_idx, s->free_idx_len);
    s->free_idx_len = 0;
    amb__free(s->free_idx);
    s->free_idx = NULL;
    s->free_idx_cap = 0;
}

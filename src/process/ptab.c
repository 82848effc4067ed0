/*
 * ptab.c - the process table: pid index -> process block, and the allocation
 * of indices.
 *
 * A local pid carries (index, serial). serials[index] is the serial the next
 * process at that index gets; it is bumped when a process leaves the index,
 * so an old pid never matches a newer process at the same index until the
 * serial wraps.
 *
 * Indices are reused round-robin over the whole table, as BEAM does: the
 * free ones form one queue, oldest first (the never-used indices, then the
 * freed ones in the order they were freed), an allocation takes the head
 * and a free joins the tail. So an index comes back only after every other
 * free index has been used once, and a pid (index, serial) only after
 * 2^22 such rounds: with the default table of 4M indices, after more than
 * 2^43 spawns. (Before, freed indices were reused last-in-first-out: a
 * spawn/exit loop reused one index, and its pid named a stranger after
 * 2^22 spawns, about a second; issue 13.) The price is memory: the table's
 * pages (slots, serials, the queue's ring: 16 bytes an index) become
 * resident as the indices are first used, up to 64 MiB for 4M indices.
 *
 * Schedulers take indices from the head in batches and give freed ones to
 * the tail in batches, so the queue's lock is taken once per batch; a batch
 * is used in queue order, so the order changes only within a batch. An
 * allocation that finds the queue empty first gives its own freed batch
 * back, so a table is "full" only when at most a batch per scheduler is
 * held elsewhere.
 *
 * Invariants: slots[i] is non-NULL exactly while a process holds index i
 * (published with a release store after the block is complete, cleared at
 * teardown); serials[i] is written only by the holder of index i's
 * allocation or free, never concurrently; every index is in exactly one of:
 * held by a process, in a scheduler's batch, in the queue.
 */
#include <pthread.h>

#include "process/rt.h"

int amb__ptab_init(amb__ptab *t, size_t size, unsigned nsched)
{
    memset(t, 0, sizeof *t);
    t->slots = amb__calloc(size, sizeof *t->slots);
    t->serials = amb__calloc(size, sizeof *t->serials);
    t->freed = amb__calloc(size, sizeof *t->freed);
    pthread_mutex_t *lock = amb__malloc(sizeof *lock);
    if (t->slots == NULL || t->serials == NULL || t->freed == NULL || lock == NULL) {
        amb__free((void *)t->slots);
        amb__free(t->serials);
        amb__free(t->freed);
        amb__free(lock);
        return AMB_ENOMEM;
    }
    pthread_mutex_init(lock, NULL);
    t->lock = lock;
    t->size = size;
    /* Batches held by schedulers stay a small part of the table: at most
     * two per scheduler (one to take from, one of freed indices). */
    size_t batch = size / (8 * (size_t)(nsched ? nsched : 1));
    t->batch = batch < 1                 ? 1
               : batch > AMB__PTAB_BATCH ? AMB__PTAB_BATCH
                                         : (unsigned)batch;
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
    amb__free(t->freed);
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

/* Under the lock: up to n indices from the queue's head into out. */
static unsigned take(amb__ptab *t, uint32_t *out, unsigned n)
{
    unsigned got = 0;
    /* relaxed: under the lock, which orders it with every other change. */
    size_t fresh = atomic_load_explicit(&t->fresh, memory_order_relaxed);
    while (got < n && fresh < t->size && fresh <= AMB__LPID_INDEX_MAX)
        out[got++] = (uint32_t)fresh++;
    atomic_store_explicit(&t->fresh, fresh, memory_order_relaxed);
    while (got < n && t->freed_len > 0) {
        out[got++] = t->freed[t->freed_head];
        t->freed_head = t->freed_head + 1 == t->size ? 0 : t->freed_head + 1;
        t->freed_len--;
    }
    return got;
}

/* Appends n freed indices at the queue's tail. */
static void give_back(amb__ptab *t, const uint32_t *idx, unsigned n)
{
    pthread_mutex_lock(t->lock);
    for (unsigned k = 0; k < n; k++) {
        size_t at = t->freed_head + t->freed_len;
        t->freed[at >= t->size ? at - t->size : at] = idx[k];
        t->freed_len++;
    }
    pthread_mutex_unlock(t->lock);
}

int amb__ptab_alloc(amb_rt *rt, amb__sched *sched, uint32_t *index, uint32_t *serial)
{
    amb__ptab *t = &rt->ptab;
    amb__rt_sched *s = sched ? amb__rt_sched_of(sched) : NULL;
    uint32_t i;
    if (s != NULL && s->idx_take_pos < s->idx_take_len) {
        i = s->idx_take[s->idx_take_pos++];
    } else {
        unsigned got;
        for (;;) {
            pthread_mutex_lock(t->lock);
            if (s != NULL) {
                got = take(t, s->idx_take, t->batch);
                s->idx_take_pos = got > 0 ? 1 : 0;
                s->idx_take_len = got;
                i = s->idx_take[0];
            } else {
                got = take(t, &i, 1);
            }
            pthread_mutex_unlock(t->lock);
            if (got > 0 || s == NULL || s->idx_freed_len == 0)
                break;
            /* Empty: our own freed batch goes to the queue first. */
            give_back(t, s->idx_freed, s->idx_freed_len);
            s->idx_freed_len = 0;
        }
        if (got == 0)
            return AMB_ESYSLIMIT;
    }
    *index = i;
    *serial = t->serials[i];
    return 0;
}

void amb__ptab_free(amb_rt *rt, amb__sched *sched, uint32_t index)
{
    amb__ptab *t = &rt->ptab;
    amb__rt_sched *s = sched ? amb__rt_sched_of(sched) : NULL;
    t->serials[index] = (t->serials[index] + 1) & AMB__LPID_SERIAL_MAX;
    if (s == NULL) {
        give_back(t, &index, 1);
        return;
    }
    s->idx_freed[s->idx_freed_len++] = index;
    if (s->idx_freed_len >= t->batch) {
        give_back(t, s->idx_freed, s->idx_freed_len);
        s->idx_freed_len = 0;
    }
}

void amb__ptab_flush_cache(amb_rt *rt, amb__sched *sched)
{
    amb__rt_sched *s = amb__rt_sched_of(sched);
    give_back(&rt->ptab, s->idx_freed, s->idx_freed_len);
    s->idx_freed_len = 0;
    give_back(&rt->ptab, s->idx_take + s->idx_take_pos,
              s->idx_take_len - s->idx_take_pos);
    s->idx_take_pos = s->idx_take_len = 0;
}

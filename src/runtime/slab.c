/*
 * slab.c - see slab.h. A free object holds two words for us: the link to the
 * next free object, and its own index in its slab.
 *
 * Locks: a depot's mutex guards its batches, its partial and empty lists
 * and the free lists of its slabs. Pools are their owners' alone. A slab's
 * header is written under the lock of its depot only, except while it is
 * being mapped (nobody else knows it yet).
 */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "runtime/slab.h"

typedef amb__slab_free_obj free_obj;

/* Where a slab is, in its depot. */
enum { ON_NO_LIST, ON_PARTIAL, ON_EMPTY };

typedef struct slab {
    amb__slab_depot *depot;
    struct slab *prev, *next; /* in the partial or the empty list */
    free_obj *free;           /* objects given back to this slab */
    uint32_t nfree;
    uint8_t where; /* ON_* */
} slab;

_Static_assert(sizeof(slab) <= AMB__SLAB_HEADER, "the header fits its room");

/* A batch in the depot: a chain of free objects; the first one carries the
 * link to the next batch in its third word. */
typedef struct batch {
    free_obj obj;
    struct batch *next_batch;
} batch;

/* Slabs mapped by this OS process (amb__slab_mapped). relaxed: a statistic
 * for tests; nothing is published through it. */
static _Atomic size_t mapped_slabs;

size_t amb__slab_mapped(void)
{
    return atomic_load_explicit(&mapped_slabs, memory_order_relaxed);
}

static inline slab *slab_of(const amb__slab_class *cls, void *obj, uint16_t index)
{
    return (slab *)(void *)((char *)obj - (size_t)index * cls->size - AMB__SLAB_HEADER);
}

/* Slabs are whole pages from the allocator's map (amb__map: mmap unless the
 * program gave its own), not malloc'd: a slab is page-sized work memory of
 * the runtime (like a stack), and a freed slab must go back to the OS at
 * once. From malloc, a million freed process blocks stayed in the C
 * library's heap (hundreds of MiB of RSS) until a malloc_trim. */
static size_t slab_bytes(const amb__slab_class *cls)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t bytes = AMB__SLAB_HEADER + (size_t)cls->per_slab * cls->size;
    return (bytes + page - 1) & ~(page - 1);
}

static void unmap(const amb__slab_class *cls, slab *sl)
{
    /* A user of the slab may have poisoned its objects (ASan builds:
     * message cells do); ASan does not clear that on munmap, and the next
     * mapping at this address must start clean. */
    AMB__UNPOISON(sl, slab_bytes(cls));
    amb__unmap(sl, slab_bytes(cls));
    atomic_fetch_sub_explicit(&mapped_slabs, 1, memory_order_relaxed);
}

/* The doubly linked lists of a depot, under its lock. */
static void list_push(slab **head, slab *sl)
{
    sl->prev = NULL;
    sl->next = *head;
    if (*head != NULL)
        (*head)->prev = sl;
    *head = sl;
}

static void list_remove(slab **head, slab *sl)
{
    if (sl->prev != NULL)
        sl->prev->next = sl->next;
    else
        *head = sl->next;
    if (sl->next != NULL)
        sl->next->prev = sl->prev;
}

static slab **list_of(amb__slab_depot *d, uint8_t where)
{
    return (slab **)(where == ON_PARTIAL ? &d->partial : &d->empty);
}

/* Moves sl to the list `where` (or none), under the depot's lock. */
static void move(amb__slab_depot *d, slab *sl, uint8_t where)
{
    if (sl->where == where)
        return;
    if (sl->where != ON_NO_LIST) {
        list_remove(list_of(d, sl->where), sl);
        d->nempty -= sl->where == ON_EMPTY;
    }
    if (where != ON_NO_LIST) {
        list_push(list_of(d, where), sl);
        d->nempty += where == ON_EMPTY;
    }
    sl->where = where;
}

/* Under the depot's lock: the objects of a slab that has some back (a
 * partial one first: it fills the holes survivors leave; then an empty
 * one), all into the pool. False when the depot has no such slab. */
static bool from_slabs(amb__slab_pool *pool)
{
    amb__slab_depot *d = pool->depot;
    slab *sl = d->partial != NULL ? d->partial : d->empty;
    if (sl == NULL)
        return false;
    move(d, sl, ON_NO_LIST);
    free_obj *last = sl->free;
    while (last->next != NULL)
        last = last->next;
    last->next = pool->free;
    pool->free = sl->free;
    pool->count += sl->nfree;
    sl->free = NULL;
    sl->nfree = 0;
    return true;
}

static int refill(amb__slab_pool *pool, const amb__slab_class *cls)
{
    amb__slab_depot *d = pool->depot;
    pthread_mutex_lock(d->lock);
    bool got = from_slabs(pool);
    pthread_mutex_unlock(d->lock);
    if (got)
        return 0;
    char *mem = amb__map(slab_bytes(cls));
    if (mem == NULL)
        return AMB_ENOMEM;
    atomic_fetch_add_explicit(&mapped_slabs, 1, memory_order_relaxed);
    slab *sl = (slab *)(void *)mem;
    *sl = (slab){.depot = d, .where = ON_NO_LIST};
    /* Pushed backwards, so object 0 comes out first. */
    for (unsigned i = cls->per_slab; i-- > 0;) {
        free_obj *f =
            (free_obj *)(void *)(mem + AMB__SLAB_HEADER + (size_t)i * cls->size);
        f->next = pool->free;
        f->index = (uint16_t)i;
        pool->free = f;
    }
    pool->count += cls->per_slab;
    return 0;
}

int amb__slab_depot_init(amb__slab_depot *d, unsigned max_batches)
{
    pthread_mutex_t *lock = amb__malloc(sizeof *lock);
    if (lock == NULL)
        return AMB_ENOMEM;
    pthread_mutex_init(lock, NULL);
    *d = (amb__slab_depot){.lock = lock, .max_batches = max_batches};
    atomic_init(&d->count, 0);
    return 0;
}

/* Takes a batch from the depot into the (empty) pool. */
static bool from_depot(amb__slab_pool *pool, const amb__slab_class *cls)
{
    amb__slab_depot *d = pool->depot;
    /* relaxed: a hint; the list itself is read under the lock. */
    if (atomic_load_explicit(&d->count, memory_order_relaxed) == 0)
        return false;
    pthread_mutex_lock(d->lock);
    batch *b = d->batches;
    if (b != NULL) {
        d->batches = b->next_batch;
        /* relaxed: under the lock (see to_depot). */
        atomic_store_explicit(&d->count,
                              atomic_load_explicit(&d->count, memory_order_relaxed) - 1,
                              memory_order_relaxed);
    }
    pthread_mutex_unlock(d->lock);
    if (b == NULL)
        return false;
    pool->free = &b->obj;
    pool->count = cls->pool_max / 2;
    return true;
}

/* The last of the first n objects of the chain f (n >= 1, f that long). */
static free_obj *nth(free_obj *f, unsigned n)
{
    while (--n > 0)
        f = f->next;
    return f;
}

/* Moves half of a full pool to the depot as one batch; false when the
 * depot is full (the caller then gives objects back to their slabs). */
static bool to_depot(amb__slab_pool *pool, const amb__slab_class *cls)
{
    amb__slab_depot *d = pool->depot;
    /* relaxed: a hint that spares the walk below when the depot is full. */
    if (atomic_load_explicit(&d->count, memory_order_relaxed) >= d->max_batches)
        return false;
    unsigned n = cls->pool_max / 2;
    free_obj *first = pool->free, *last = nth(first, n);
    free_obj *rest = last->next;
    pthread_mutex_lock(d->lock);
    /* relaxed (load and store): under the depot's lock, which orders them
     * with every other change; lock-free readers take the count as a hint. */
    unsigned count = atomic_load_explicit(&d->count, memory_order_relaxed);
    bool ok = count < d->max_batches;
    if (ok) {
        last->next = NULL;
        batch *b = (batch *)(void *)first;
        b->next_batch = d->batches;
        d->batches = b;
        atomic_store_explicit(&d->count, count + 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(d->lock);
    if (ok) {
        pool->free = rest;
        pool->count -= n;
    }
    return ok;
}

/* Gives a chain of free objects (linked through next) back to their slabs,
 * under their depot's lock, taken once for a chain of one depot (a pool's
 * objects all are). A slab that gets all its objects back is kept empty
 * while the depot keeps fewer than AMB__SLAB_EMPTY_KEEP (none with
 * keep_none), else unmapped after the lock is dropped (munmap is a TLB
 * shootdown on every CPU). */
static void give_back(const amb__slab_class *cls, free_obj *chain, bool keep_none)
{
    if (chain == NULL)
        return;
    amb__slab_depot *d = slab_of(cls, chain, chain->index)->depot;
    slab *dead = NULL;
    pthread_mutex_lock(d->lock);
    while (chain != NULL) {
        free_obj *f = chain;
        chain = f->next;
        slab *sl = slab_of(cls, f, f->index);
        if (amb__unlikely(sl->depot != d)) {
            pthread_mutex_unlock(d->lock);
            d = sl->depot;
            pthread_mutex_lock(d->lock);
        }
        f->next = sl->free;
        sl->free = f;
        if (++sl->nfree < cls->per_slab) {
            move(d, sl, ON_PARTIAL);
        } else if (!keep_none && d->nempty < AMB__SLAB_EMPTY_KEEP) {
            move(d, sl, ON_EMPTY);
        } else {
            move(d, sl, ON_NO_LIST);
            sl->next = dead;
            dead = sl;
        }
    }
    pthread_mutex_unlock(d->lock);
    while (dead != NULL) {
        slab *next = dead->next;
        unmap(cls, dead);
        dead = next;
    }
}

/* Unmaps every empty slab the depot keeps. */
static void unmap_empty(amb__slab_depot *d, const amb__slab_class *cls)
{
    pthread_mutex_lock(d->lock);
    slab *list = d->empty;
    for (slab *sl = list; sl != NULL; sl = sl->next)
        sl->where = ON_NO_LIST;
    d->empty = NULL;
    d->nempty = 0;
    pthread_mutex_unlock(d->lock);
    while (list != NULL) {
        slab *next = list->next;
        unmap(cls, list);
        list = next;
    }
}

void amb__slab_depot_drain(amb__slab_depot *d, const amb__slab_class *cls)
{
    if (d->lock == NULL)
        return;
    /* relaxed: a hint; an empty depot costs no lock for its batches. */
    batch *b = NULL;
    if (atomic_load_explicit(&d->count, memory_order_relaxed) != 0) {
        pthread_mutex_lock(d->lock);
        b = d->batches;
        d->batches = NULL;
        /* relaxed: under the lock (see to_depot). */
        atomic_store_explicit(&d->count, 0, memory_order_relaxed);
        pthread_mutex_unlock(d->lock);
    }
    while (b != NULL) {
        batch *next = b->next_batch;
        give_back(cls, &b->obj, true);
        b = next;
    }
    unmap_empty(d, cls);
}

void amb__slab_depot_free(amb__slab_depot *d, const amb__slab_class *cls)
{
    if (d->lock == NULL)
        return;
    amb__slab_depot_drain(d, cls);
    pthread_mutex_destroy(d->lock);
    amb__free(d->lock);
    d->lock = NULL;
}

void *amb__slab_alloc_slow(amb__slab_pool *pool, const amb__slab_class *cls,
                           uint16_t *index)
{
    if (pool->free == NULL && !from_depot(pool, cls) && refill(pool, cls) != 0)
        return NULL;
    free_obj *f = pool->free;
    pool->free = f->next;
    pool->count--;
    *index = f->index;
    return f;
}

void amb__slab_free_slow(amb__slab_pool *pool, const amb__slab_class *cls, void *obj,
                         uint16_t index)
{
    free_obj *f = obj;
    f->index = index;
    if (pool == NULL) {
        f->next = NULL;
        give_back(cls, f, false);
        return;
    }
    if (pool->count >= cls->pool_max && !to_depot(pool, cls)) {
        /* The depot is full: half the pool goes back to its slabs as one
         * chain, under one lock (one lock per object freed made a long
         * mailbox's frees cost two mutex calls each). */
        unsigned n = cls->pool_max / 2;
        free_obj *first = pool->free, *last = nth(first, n);
        pool->free = last->next;
        pool->count -= n;
        last->next = NULL;
        give_back(cls, first, false);
    }
    f->next = pool->free;
    pool->free = f;
    pool->count++;
}

void amb__slab_pool_drain(amb__slab_pool *pool, const amb__slab_class *cls)
{
    give_back(cls, pool->free, false);
    pool->free = NULL;
    pool->count = 0;
}

/*
 * slab.c - see slab.h. A free object holds two words for us: the link to the
 * next free object, and its own index in its slab. A slab's header holds
 * its count of objects out, and (with a depot) the free list of objects
 * given back and its place on the depot's partial list, all under the
 * depot's lock.
 */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "runtime/slab.h"

typedef struct slab {
    /* Objects out of the slab (in use or pooled). With a depot it changes
     * under the depot's lock; without one, the last decrement unmaps the
     * slab (give_back says why acq_rel is enough). */
    _Atomic uint32_t out;
    uint32_t nfree;                  /* under the depot's lock: objects on free */
    struct amb__slab_free_obj *free; /* objects given back, to reuse */
    struct slab *next, *prev;        /* the depot's partial list */
    amb__slab_depot *depot;          /* the carving pool's, or NULL */
    bool listed;                     /* on the partial list */
} slab;

_Static_assert(sizeof(slab) <= AMB__SLAB_HEADER, "a slab header fits its line");

typedef amb__slab_free_obj free_obj;

/* A batch in the depot: a chain of free objects; the first one carries the
 * link to the next batch in its third word. */
typedef struct batch {
    free_obj obj;
    struct batch *next_batch;
} batch;

static inline slab *slab_of(const amb__slab_class *cls, void *obj, uint16_t index)
{
    return (slab *)(void *)((char *)obj - (size_t)index * cls->size - AMB__SLAB_HEADER);
}

/* Slabs are mapped from the OS directly, not taken from the allocator: a
 * slab is page-sized work memory of the runtime (like a stack), and a freed
 * slab must go back to the OS at once. From malloc, a million freed process
 * blocks stayed in the C library's heap (hundreds of MiB of RSS) until a
 * malloc_trim. */
static size_t slab_bytes(const amb__slab_class *cls)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t bytes = AMB__SLAB_HEADER + (size_t)cls->per_slab * cls->size;
    return (bytes + page - 1) & ~(page - 1);
}

static void unlist(amb__slab_depot *d, slab *sl)
{
    if (!sl->listed)
        return;
    if (sl->prev != NULL)
        sl->prev->next = sl->next;
    else
        d->partial = sl->next;
    if (sl->next != NULL)
        sl->next->prev = sl->prev;
    sl->next = sl->prev = NULL;
    sl->listed = false;
}

/* Objects given back to a slab of the depot (or its spare's), moved into
 * the (empty) pool: false when no slab has any. */
static bool from_partial(amb__slab_pool *pool)
{
    amb__slab_depot *d = pool->depot;
    if (d == NULL)
        return false;
    pthread_mutex_lock(d->lock);
    slab *sl = d->partial != NULL ? d->partial : d->spare;
    if (sl != NULL) {
        if (sl == d->spare)
            d->spare = NULL;
        else
            unlist(d, sl);
        pool->free = sl->free;
        pool->count += sl->nfree;
        /* relaxed: under the depot's lock, like every change of a slab
         * that has a depot. */
        atomic_store_explicit(
            &sl->out, atomic_load_explicit(&sl->out, memory_order_relaxed) + sl->nfree,
            memory_order_relaxed);
        sl->free = NULL;
        sl->nfree = 0;
    }
    pthread_mutex_unlock(d->lock);
    return sl != NULL;
}

static int refill(amb__slab_pool *pool, const amb__slab_class *cls)
{
    if (from_partial(pool))
        return 0;
    char *mem = mmap(NULL, slab_bytes(cls), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return AMB_ENOMEM;
    slab *sl = (slab *)(void *)mem;
    atomic_init(&sl->out, cls->per_slab);
    sl->depot = pool->depot; /* the rest is zero: a fresh mapping */
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
    d->lock = lock;
    d->batches = NULL;
    atomic_init(&d->count, 0);
    d->max_batches = max_batches;
    d->partial = NULL;
    d->spare = NULL;
    return 0;
}

/* Takes a batch from the depot into the (empty) pool. */
static bool from_depot(amb__slab_pool *pool, const amb__slab_class *cls)
{
    amb__slab_depot *d = pool->depot;
    /* relaxed: a hint; the list itself is read under the lock. */
    if (d == NULL || atomic_load_explicit(&d->count, memory_order_relaxed) == 0)
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

static void give_back(const amb__slab_class *cls, void *obj, uint16_t index);
static void unmap(const amb__slab_class *cls, void *sl);

/* Moves half of a full pool to the depot as one batch; false when the
 * depot is full (the caller then gives objects back to their slabs). */
static bool to_depot(amb__slab_pool *pool, const amb__slab_class *cls)
{
    amb__slab_depot *d = pool->depot;
    /* relaxed: a hint that spares the walk below when the depot is full. */
    if (d == NULL ||
        atomic_load_explicit(&d->count, memory_order_relaxed) >= d->max_batches)
        return false;
    unsigned n = cls->pool_max / 2;
    free_obj *first = pool->free, *last = first;
    for (unsigned i = 1; i < n; i++)
        last = last->next;
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

void amb__slab_depot_drain(amb__slab_depot *d, const amb__slab_class *cls)
{
    /* relaxed: a hint; an empty depot costs no lock. */
    if (d->lock == NULL || atomic_load_explicit(&d->count, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(d->lock);
    batch *b = d->batches;
    d->batches = NULL;
    /* relaxed: under the lock (see to_depot). */
    atomic_store_explicit(&d->count, 0, memory_order_relaxed);
    pthread_mutex_unlock(d->lock);
    while (b != NULL) {
        batch *next = b->next_batch;
        for (free_obj *f = &b->obj; f != NULL;) {
            free_obj *fn = f->next;
            give_back(cls, f, f->index);
            f = fn;
        }
        b = next;
    }
}

void amb__slab_depot_free(amb__slab_depot *d, const amb__slab_class *cls)
{
    if (d->lock == NULL)
        return;
    amb__slab_depot_drain(d, cls);
    if (d->spare != NULL) {
        unmap(cls, d->spare);
        d->spare = NULL;
    }
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

static void unmap(const amb__slab_class *cls, void *sl)
{
    /* A user of the slab may have poisoned its objects (ASan builds:
     * message cells do); ASan does not clear that on munmap, and the next
     * mapping at this address must start clean. */
    AMB__UNPOISON(sl, slab_bytes(cls));
    munmap(sl, slab_bytes(cls));
}

static void give_back(const amb__slab_class *cls, void *obj, uint16_t index)
{
    slab *sl = slab_of(cls, obj, index);
    amb__slab_depot *d = sl->depot;
    if (d != NULL) {
        /* Onto the slab's free list, the slab onto the partial list; a
         * slab wholly back becomes the spare, or is unmapped. */
        free_obj *f = obj;
        bool drop = false;
        pthread_mutex_lock(d->lock);
        f->next = sl->free;
        f->index = index;
        sl->free = f;
        sl->nfree++;
        /* relaxed: under the depot's lock (see from_partial). */
        uint32_t out = atomic_load_explicit(&sl->out, memory_order_relaxed) - 1;
        atomic_store_explicit(&sl->out, out, memory_order_relaxed);
        if (out == 0) {
            unlist(d, sl);
            if (d->spare == NULL)
                d->spare = sl;
            else
                drop = true;
        } else if (!sl->listed) {
            sl->prev = NULL;
            sl->next = d->partial;
            if (sl->next != NULL)
                sl->next->prev = sl;
            d->partial = sl;
            sl->listed = true;
        }
        pthread_mutex_unlock(d->lock);
        if (drop)
            unmap(cls, sl);
        return;
    }
    /* acq_rel: the last one out unmaps the slab. The release half orders
     * this thread's last use of obj (and of the slab's other objects it gave
     * back before) before its decrement; the acquire half makes the thread
     * that sees 1 see every other thread's release, so every use of every
     * object of the slab happens before the munmap. The RMW makes exactly
     * one thread see 1. */
    if (atomic_fetch_sub_explicit(&sl->out, 1, memory_order_acq_rel) == 1)
        unmap(cls, sl);
}

void amb__slab_free_slow(amb__slab_pool *pool, const amb__slab_class *cls, void *obj,
                         uint16_t index)
{
    if (pool == NULL || (pool->count >= cls->pool_max && !to_depot(pool, cls))) {
        give_back(cls, obj, index);
        return;
    }
    free_obj *f = obj;
    f->next = pool->free;
    f->index = index;
    pool->free = f;
    pool->count++;
}

void amb__slab_pool_drain(amb__slab_pool *pool, const amb__slab_class *cls)
{
    while (pool->free != NULL) {
        free_obj *f = pool->free;
        pool->free = f->next;
        give_back(cls, f, f->index);
    }
    pool->count = 0;
}

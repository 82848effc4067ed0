/*
 * slab.h - fixed-size objects carved from slabs, with per-scheduler pools.
 *
 * One mmap per slab of `per_slab` objects (about 64 KiB) instead of one
 * malloc per object, and no per-object header: an object remembers only its index in its
 * slab (the caller keeps it in a spare 16-bit field), which locates the slab header.
 *
 *   slab: [ header (64 B): its depot, list links, its free objects ]
 *         [ obj 0 ] [ obj 1 ] ...
 *
 * A scheduler's pool keeps up to `pool_max` free objects without locks (an
 * object freed on another scheduler joins that one's pool). Beyond that,
 * half the pool moves as one batch to the class's depot, a short list of
 * batches under a mutex, from which an empty pool refills first: so
 * objects freed on one scheduler (a receiver) flow back to the ones that
 * allocate (its senders) without fresh memory. When the depot is full too,
 * objects go back to their slab's own free list. The depot keeps the slabs
 * that have objects back but not all (partial) and up to
 * AMB__SLAB_EMPTY_KEEP slabs with all of them back (empty); an empty pool
 * that finds no batch takes a partial slab's objects, then an empty slab's,
 * and maps a new slab only when there is neither. So a slab pinned by a few
 * survivors is filled again before any new memory is mapped (issue 12: with
 * 1% of 400k handlers left, a second wave used to map 175 MiB more), and
 * an empty slab beyond the few kept is unmapped at once; trimming (a
 * scheduler about to sleep) unmaps every empty slab, so memory returns
 * after a burst. Objects are 64-byte aligned at the slab start and
 * `size`-strided.
 *
 * Every pool has a depot; a slab belongs to the depot of the pool it was
 * mapped for. Invariant: each object of a slab is in use, in a pool or
 * batch, or on its slab's free list; a slab is on its depot's partial list
 * exactly while its free list holds some but not all of its objects, on
 * the empty list while it holds all of them, and on no list while it
 * holds none. The lists and the slabs' free lists are under the depot's
 * lock.
 */
#ifndef AMB_RUNTIME_SLAB_H
#define AMB_RUNTIME_SLAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct amb__slab_class {
    size_t size;       /* object size, a multiple of 16, at least 32 */
    unsigned per_slab; /* objects per slab, at most 65535 */
    unsigned pool_max; /* free objects a pool keeps (even, >= 2) */
} amb__slab_class;

/* Empty slabs a depot keeps mapped for reuse (more are unmapped at once). */
#define AMB__SLAB_EMPTY_KEEP 4

/* A depot shared by the pools of one class in one runtime: at most
 * max_batches batches of pool_max / 2 objects, and its slabs' lists, under
 * its mutex. */
typedef struct amb__slab_depot {
    void *lock;             /* pthread_mutex_t */
    void *batches;          /* the batch list, under lock */
    _Atomic unsigned count; /* batches; relaxed reads are hints */
    unsigned max_batches;
    void *partial; /* slabs with some of their objects back, under lock */
    void *empty;   /* slabs with all of them back, under lock */
    unsigned nempty;
} amb__slab_depot;

int amb__slab_depot_init(amb__slab_depot *d, unsigned max_batches);
/* Gives the depot's objects back to their slabs and unmaps every empty
 * slab (the depot stays usable): a scheduler about to sleep. */
void amb__slab_depot_drain(amb__slab_depot *d, const amb__slab_class *cls);
/* The same, and frees its lock: every object must be back (a slab with
 * objects still out stays mapped). */
void amb__slab_depot_free(amb__slab_depot *d, const amb__slab_class *cls);
/* Slabs mapped now by this OS process, all depots together (tests). */
size_t amb__slab_mapped(void);

typedef struct amb__slab_pool {
    void *free; /* free objects, linked through their first word */
    size_t count;
    amb__slab_depot *depot; /* set before the first alloc */
} amb__slab_pool;

#define AMB__SLAB_HEADER 64

/* A free object: the pool's link and the object's index in its slab. */
typedef struct amb__slab_free_obj {
    struct amb__slab_free_obj *next;
    uint16_t index;
} amb__slab_free_obj;

/* The slow paths of the two inline functions below (slab.c). */
void *amb__slab_alloc_slow(amb__slab_pool *pool, const amb__slab_class *cls,
                           uint16_t *index);
void amb__slab_free_slow(amb__slab_pool *pool, const amb__slab_class *cls, void *obj,
                         uint16_t index);

/* An object of cls from pool, and its index in its slab. NULL on ENOMEM.
 * The pool's hit is inline: a message send and receive do one each. */
static inline void *amb__slab_alloc(amb__slab_pool *pool, const amb__slab_class *cls,
                                    uint16_t *index)
{
    amb__slab_free_obj *f = (amb__slab_free_obj *)pool->free;
    if (__builtin_expect(f == NULL, 0))
        return amb__slab_alloc_slow(pool, cls, index);
    pool->free = f->next;
    pool->count--;
    *index = f->index;
    return f;
}

/* Returns obj (with its index) to pool, or to its slab when the pool and
 * the depot are full. pool may be NULL (straight back to the slab). */
static inline void amb__slab_free(amb__slab_pool *pool, const amb__slab_class *cls,
                                  void *obj, uint16_t index)
{
    if (__builtin_expect(pool == NULL || pool->count >= cls->pool_max, 0)) {
        amb__slab_free_slow(pool, cls, obj, index);
        return;
    }
    amb__slab_free_obj *f = (amb__slab_free_obj *)obj;
    f->next = (amb__slab_free_obj *)pool->free;
    f->index = index;
    pool->free = f;
    pool->count++;
}
/* Gives every pooled object back to its slab. */
void amb__slab_pool_drain(amb__slab_pool *pool, const amb__slab_class *cls);

#endif /* AMB_RUNTIME_SLAB_H */

/*
 * slab.h - fixed-size objects carved from slabs, with per-scheduler pools.
 *
 * One mmap per slab of `per_slab` objects (about 64 KiB) instead of one
 * malloc per object, and no per-object header: an object remembers only its index in its
 * slab (the caller keeps it in a spare 16-bit field), which locates the slab header.
 *
 *   slab: [ header (64 B): count of objects out ] [ obj 0 ] [ obj 1 ] ...
 *
 * A scheduler's pool keeps up to `pool_max` free objects without locks (an
 * object freed on another scheduler joins that one's pool). Beyond that,
 * half the pool moves as one batch to the class's depot, a short list of
 * batches under a mutex, from which an empty pool refills before it carves
 * a new slab: so objects freed on one scheduler (a receiver) flow back to
 * the ones that allocate (its senders) without fresh memory. When the depot
 * is full too, objects go back to their slab; the last one back frees the
 * slab, so memory returns after a burst. Objects are 64-byte aligned at the
 * slab start and `size`-strided.
 *
 * Objects given back to a slab are reused: the slab keeps them on a free
 * list of its own and joins its depot's list of slabs with free objects,
 * from which a pool refills before it maps a new slab (a slab allocator's
 * partial list). Without it, a server that makes one long-lived object per
 * burst (a process per connection, a scheduler that sleeps between
 * connections and gives its pool back each time) stranded a 64 KiB slab
 * per object: each slab kept one object out and could neither be reused
 * nor freed (measured: 10,000 idle connections took 8-12 KiB each instead
 * of under 2). One wholly free slab per depot stays mapped as a spare, so
 * that a pool that empties and refills at every burst does not map and
 * unmap a slab each time.
 *
 * Invariant: slab->out counts the slab's objects that are in use or in some
 * pool; it reaches 0 once per life of the slab, and then the slab is freed
 * or becomes its depot's spare. A slab carved by a pool without a depot
 * keeps no free list (its objects come back only to be counted).
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

/* A depot shared by the pools of one class in one runtime: at most
 * max_batches batches of pool_max / 2 objects, under its mutex. */
typedef struct amb__slab_depot {
    void *lock;             /* pthread_mutex_t */
    void *batches;          /* the batch list, under lock */
    _Atomic unsigned count; /* batches; relaxed reads are hints */
    unsigned max_batches;
    void *partial; /* slabs with objects given back, under lock */
    void *spare;   /* a wholly free slab kept mapped, under lock */
} amb__slab_depot;

int amb__slab_depot_init(amb__slab_depot *d, unsigned max_batches);
/* Gives the depot's objects back to their slabs (the depot stays usable). */
void amb__slab_depot_drain(amb__slab_depot *d, const amb__slab_class *cls);
/* Gives the depot's objects back to their slabs, unmaps its spare and frees
 * its lock (every object of its slabs is back by then). */
void amb__slab_depot_free(amb__slab_depot *d, const amb__slab_class *cls);

typedef struct amb__slab_pool {
    void *free; /* free objects, linked through their first word */
    size_t count;
    amb__slab_depot *depot; /* may be NULL */
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

/* Returns obj (with its index) to pool, or to its slab when the pool is full.
 * pool may be NULL (straight back to the slab). */
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

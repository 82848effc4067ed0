/*
 * slab.h - fixed-size objects carved from slabs, with per-scheduler pools.
 *
 * One malloc per slab of `per_slab` objects instead of one per object, and no
 * per-object header: an object remembers only its index in its slab (the
 * caller keeps it in a spare 16-bit field), which locates the slab header.
 *
 *   slab: [ header (64 B): count of objects out ] [ obj 0 ] [ obj 1 ] ...
 *
 * A scheduler's pool keeps up to `pool_max` free objects without locks (an
 * object freed on another scheduler joins that one's pool). Beyond that an
 * object goes back to its slab; the last one back frees the slab, so memory
 * returns after a burst. Objects are `align`-aligned (at most 64).
 *
 * Invariant: slab->out counts the slab's objects that are in use or in some
 * pool; it reaches 0 exactly once, and then the slab is freed.
 */
#ifndef AMB_RUNTIME_SLAB_H
#define AMB_RUNTIME_SLAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct amb__slab_class {
    size_t size;       /* object size, a multiple of align */
    unsigned per_slab; /* objects per slab, at most 65535 */
    unsigned pool_max; /* free objects a pool keeps */
} amb__slab_class;

typedef struct amb__slab_pool {
    void *free; /* free objects, linked through their first word */
    size_t count;
} amb__slab_pool;

#define AMB__SLAB_HEADER 64

/* An object of cls from pool, and its index in its slab. NULL on ENOMEM. */
void *amb__slab_alloc(amb__slab_pool *pool, const amb__slab_class *cls, uint16_t *index);
/* Returns obj (with its index) to pool, or to its slab when the pool is full.
 * pool may be NULL (straight back to the slab). */
void amb__slab_free(amb__slab_pool *pool, const amb__slab_class *cls, void *obj,
                    uint16_t index);
/* Gives every pooled object back to its slab. */
void amb__slab_pool_drain(amb__slab_pool *pool, const amb__slab_class *cls);

#endif /* AMB_RUNTIME_SLAB_H */

/*
 * refbin.c - the shared bytes of large binaries: one allocation holding a
 * reference count and the bytes, shared by every binary term that views
 * them, on any heap and in any thread, and freed by the last release.
 *
 * Invariants:
 *   - The bytes are written once, before the first term that views them is
 *     published (amb_binary_alloc's caller fills them first), and never again.
 *   - Every BINARY box with refc != NULL holds exactly one reference, dropped
 *     by its heap's reset, rewind or free (heap.c).
 */
#include "term_internal.h"

amb__refbin *amb__refbin_new(size_t size)
{
    if (size > SIZE_MAX - sizeof(amb__refbin))
        return NULL;
    amb__refbin *rb = amb__malloc(sizeof(amb__refbin) + size);
    if (rb == NULL)
        return NULL;
    /* Not an ordered store: the refbin is not shared yet; whatever later
     * hands a term viewing it to another thread (a send) publishes it. */
    atomic_init(&rb->refs, 1);
    rb->size = size;
    return rb;
}

void amb__refbin_retain(amb__refbin *rb)
{
    /* relaxed: the caller already holds a reference, so the count cannot
     * reach zero concurrently; nothing is published by the increment. */
    atomic_fetch_add_explicit(&rb->refs, 1, memory_order_relaxed);
}

void amb__refbin_release(amb__refbin *rb)
{
    /* acq_rel: release makes this owner's reads of the bytes happen before
     * the free; acquire on the last decrement sees every other owner's. */
    if (atomic_fetch_sub_explicit(&rb->refs, 1, memory_order_acq_rel) == 1)
        amb__free(rb);
}

/*
 * slab.c - see slab.h. A free object holds two words for us: the link to the
 * next free object, and its own index in its slab.
 */
#include <string.h>

#include "internal.h"
#include "runtime/slab.h"

typedef struct slab {
    /* acq_rel on the decrement: the thread that frees the slab sees every
     * other thread's last use of its objects. */
    _Atomic uint32_t out;
} slab;

typedef struct free_obj {
    struct free_obj *next;
    uint16_t index;
} free_obj;

static inline slab *slab_of(const amb__slab_class *cls, void *obj, uint16_t index)
{
    return (slab *)(void *)((char *)obj - (size_t)index * cls->size - AMB__SLAB_HEADER);
}

static int refill(amb__slab_pool *pool, const amb__slab_class *cls)
{
    char *mem = amb__malloc_aligned(AMB__SLAB_HEADER + cls->per_slab * cls->size, 64);
    if (mem == NULL)
        return AMB_ENOMEM;
    slab *sl = (slab *)(void *)mem;
    atomic_init(&sl->out, cls->per_slab);
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

void *amb__slab_alloc(amb__slab_pool *pool, const amb__slab_class *cls, uint16_t *index)
{
    if (pool->free == NULL && refill(pool, cls) != 0)
        return NULL;
    free_obj *f = pool->free;
    pool->free = f->next;
    pool->count--;
    *index = f->index;
    return f;
}

static void give_back(const amb__slab_class *cls, void *obj, uint16_t index)
{
    slab *sl = slab_of(cls, obj, index);
    if (atomic_fetch_sub_explicit(&sl->out, 1, memory_order_acq_rel) == 1)
        amb__free_aligned(sl);
}

void amb__slab_free(amb__slab_pool *pool, const amb__slab_class *cls, void *obj,
                    uint16_t index)
{
    if (pool == NULL || pool->count >= cls->pool_max) {
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

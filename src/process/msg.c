/*
 * msg.c - message cells: allocation from per-scheduler pools, and the copy of
 * a term into a cell.
 *
 * A cell's term lives in a fixed heap over the cell's own buffer (sized
 * exactly with amb_term_size), so a message is one allocation whatever its
 * shape, and its shared binaries are released when the cell is freed.
 *
 * Pools: four size classes, each a slab class (src/runtime/slab.h: one
 * mapping per 64 KiB of cells, per-scheduler pools without locks, memory returned
 * after a burst). Cells larger than the largest class, and cells made
 * outside a scheduler, are single allocations (size_class NOSLAB).
 */
#include "runtime/sched.h"
#include "runtime/slab.h"

#define NOSLAB 0xff

/* Words of storage per class. */
static const size_t class_words[AMB__MSG_CLASSES] = {0, 10, 32, 128};

#define CELL_BYTES(words) \
    ((sizeof(amb__msg) + (words) * sizeof(uint64_t) + 15) & ~(size_t)15)

/* About 64 KiB per slab. */
static const amb__slab_class classes[AMB__MSG_CLASSES] = {
    {CELL_BYTES(0), 65536 / CELL_BYTES(0), 1024},
    {CELL_BYTES(10), 65536 / CELL_BYTES(10), 1024},
    {CELL_BYTES(32), 65536 / CELL_BYTES(32), 512},
    {CELL_BYTES(128), 65536 / CELL_BYTES(128), 128},
};

static unsigned class_of(size_t nwords)
{
    for (unsigned c = 0; c < AMB__MSG_CLASSES; c++)
        if (nwords <= class_words[c])
            return c;
    return NOSLAB;
}

amb__msg *amb__msg_alloc(amb__sched *s, size_t nwords)
{
    unsigned c = class_of(nwords);
    amb__msg *m = NULL;
    size_t words = nwords;
    if (c != NOSLAB && s != NULL) {
        uint16_t index;
        m = amb__slab_alloc(&s->msgs[c], &classes[c], &index);
        if (m == NULL)
            return NULL;
        m->slab_index = index;
        words = class_words[c];
    } else {
        if (nwords > (SIZE_MAX - sizeof(amb__msg)) / sizeof(uint64_t))
            return NULL;
        m = amb__malloc(sizeof(amb__msg) + nwords * sizeof(uint64_t));
        if (m == NULL)
            return NULL;
        c = NOSLAB;
    }
    m->size_class = (uint8_t)c;
    m->kind = AMB__MSG_TERM;
    m->wait_seq = 0;
    m->seq = 0;
    m->term = AMB_NONE;
    amb__heap_init_fixed(&m->heap, m->words, words);
    atomic_store_explicit(&m->node.next, NULL, memory_order_relaxed);
    return m;
}

void amb__msg_free(amb__sched *s, amb__msg *m)
{
    if (m == NULL)
        return;
    /* Only cells whose term holds shared binaries or outgrew the buffer
     * have anything to release. */
    if (m->heap.offheap != NULL || m->heap.blocks != NULL)
        amb__heap_release(&m->heap);
    unsigned c = m->size_class;
    if (c == NOSLAB)
        amb__free(m);
    else
        amb__slab_free(s ? &s->msgs[c] : NULL, &classes[c], m, m->slab_index);
}

/* A tuple whose elements are all immediates ({ping, Pid}, {ok, 42}): the
 * commonest message, copied word for word. 0 when t is not one. */
static size_t flat_tuple_words(amb_term t)
{
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_TUPLE)
        return 0;
    const uint64_t *p = amb__box(t);
    size_t arity = (size_t)AMB__HDR_PAYLOAD(p[0]);
    if (arity > 8)
        return 0;
    for (size_t i = 1; i <= arity; i++)
        if (amb_is_cons(p[i]) || amb__is_boxed(p[i]))
            return 0;
    return arity + 1;
}

amb__msg *amb__msg_new_term_after(amb__sched *s, amb_term t, size_t reserve)
{
    size_t flat = flat_tuple_words(t);
    bool immediate = !amb_is_cons(t) && !amb__is_boxed(t);
    size_t nwords = flat ? flat : immediate ? 0 : amb_term_size(t) / sizeof(uint64_t);
    amb__msg *m = amb__msg_alloc(s, reserve + nwords);
    if (m == NULL)
        return NULL;
    /* The term's storage starts behind the caller's reserved words. */
    m->heap.top += reserve;
    if (immediate) {
        m->term = t;
    } else if (flat) {
        const uint64_t *src = amb__box(t);
        uint64_t *dst = m->heap.top;
        for (size_t i = 0; i < flat; i++)
            dst[i] = src[i];
        m->heap.top += flat;
        m->term = amb__make_box(dst);
    } else if (amb_term_copy(&m->heap, t, &m->term) != 0) {
        amb__msg_free(s, m);
        return NULL;
    }
    return m;
}

amb__msg *amb__msg_new_term(amb__sched *s, amb_term t)
{
    return amb__msg_new_term_after(s, t, 0);
}

int amb__msg_depots_init(amb_rt *rt)
{
    for (unsigned c = 0; c < AMB__MSG_CLASSES; c++) {
        int rc = amb__slab_depot_init(&rt->msg_depots[c], 16);
        if (rc != 0) {
            while (c-- > 0)
                amb__slab_depot_free(&rt->msg_depots[c], &classes[c]);
            return rc;
        }
        for (unsigned i = 0; i < rt->nsched; i++)
            rt->scheds[i].msgs[c].depot = &rt->msg_depots[c];
    }
    return 0;
}

void amb__msg_depots_free(amb_rt *rt)
{
    for (unsigned c = 0; c < AMB__MSG_CLASSES; c++)
        amb__slab_depot_free(&rt->msg_depots[c], &classes[c]);
}

/* Frees every cell of the scheduler's pools (runtime teardown). */
void amb__msg_pools_free(amb__sched *s)
{
    for (unsigned c = 0; c < AMB__MSG_CLASSES; c++)
        amb__slab_pool_drain(&s->msgs[c], &classes[c]);
}

void amb__msg_pools_trim(amb__sched *s)
{
    for (unsigned c = 0; c < AMB__MSG_CLASSES; c++) {
        amb__slab_pool_drain(&s->msgs[c], &classes[c]);
        amb__slab_depot_drain(&s->rt->msg_depots[c], &classes[c]);
    }
}

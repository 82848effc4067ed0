/*
 * msg.c - message cells: allocation from per-scheduler pools, and the copy of
 * a term into a cell.
 *
 * A cell's term lives in a fixed heap over the cell's own buffer (sized
 * exactly with amb_term_size), so a message is one allocation whatever its
 * shape, and its shared binaries are released when the cell is freed.
 *
 * Pools: four size classes; a scheduler keeps up to POOL_MAX free cells of
 * each class, without locks (a cell freed on another scheduler simply joins
 * that one's pool). Cells larger than the largest class, and cells freed
 * outside a scheduler, go straight to the allocator.
 */
#include "runtime/sched.h"

#define POOL_MAX 4096

/* Words of storage per class; class AMB__MSG_CLASSES means "exact size". */
static const size_t class_words[AMB__MSG_CLASSES] = {0, 10, 32, 128};

static unsigned class_of(size_t nwords)
{
    for (unsigned c = 0; c < AMB__MSG_CLASSES; c++)
        if (nwords <= class_words[c])
            return c;
    return AMB__MSG_CLASSES;
}

amb__msg *amb__msg_alloc(amb__sched *s, size_t nwords)
{
    unsigned c = class_of(nwords);
    amb__msg *m = NULL;
    if (c < AMB__MSG_CLASSES && s != NULL && s->msgs[c].free != NULL) {
        m = s->msgs[c].free;
        s->msgs[c].free =
            (amb__msg *)(void *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
        s->msgs[c].count--;
    } else {
        size_t words = c < AMB__MSG_CLASSES ? class_words[c] : nwords;
        if (words > (SIZE_MAX - sizeof(amb__msg)) / sizeof(uint64_t))
            return NULL;
        m = amb__malloc(sizeof(amb__msg) + words * sizeof(uint64_t));
        if (m == NULL)
            return NULL;
    }
    m->size_class = (uint16_t)c;
    m->kind = AMB__MSG_TERM;
    m->wait_seq = 0;
    m->seq = 0;
    m->term = AMB_NONE;
    amb__heap_init_fixed(&m->heap, m->words,
                         c < AMB__MSG_CLASSES ? class_words[c] : nwords);
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
    if (c < AMB__MSG_CLASSES && s != NULL && s->msgs[c].count < POOL_MAX) {
        atomic_store_explicit(&m->node.next, (amb__mpscq_node *)(void *)s->msgs[c].free,
                              memory_order_relaxed);
        s->msgs[c].free = m;
        s->msgs[c].count++;
        return;
    }
    amb__free(m);
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

amb__msg *amb__msg_new_term(amb__sched *s, amb_term t)
{
    size_t flat = flat_tuple_words(t);
    if (flat != 0) {
        amb__msg *m = amb__msg_alloc(s, flat);
        if (m == NULL)
            return NULL;
        const uint64_t *src = amb__box(t);
        for (size_t i = 0; i < flat; i++)
            m->words[i] = src[i];
        m->heap.top += flat;
        m->term = amb__make_box(m->words);
        return m;
    }
    bool immediate = !amb_is_cons(t) && !amb__is_boxed(t);
    size_t nwords = immediate ? 0 : amb_term_size(t) / sizeof(uint64_t);
    amb__msg *m = amb__msg_alloc(s, nwords);
    if (m == NULL)
        return NULL;
    if (immediate) {
        m->term = t;
        return m;
    }
    if (amb_term_copy(&m->heap, t, &m->term) != 0) {
        amb__msg_free(s, m);
        return NULL;
    }
    return m;
}

/* Frees every cell of the scheduler's pools (runtime teardown). */
void amb__msg_pools_free(amb__sched *s)
{
    for (unsigned c = 0; c < AMB__MSG_CLASSES; c++) {
        amb__msg *m = s->msgs[c].free;
        while (m != NULL) {
            amb__msg *next = (amb__msg *)(void *)atomic_load_explicit(
                &m->node.next, memory_order_relaxed);
            amb__free(m);
            m = next;
        }
        s->msgs[c].free = NULL;
        s->msgs[c].count = 0;
    }
}

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
#include "process/rt.h"

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
        m = amb__slab_alloc(&amb__rt_sched_of(s)->msgs[c], &classes[c], &index);
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
    /* relaxed: the cell is private until a push publishes it (release). */
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
        amb__slab_free(s ? &amb__rt_sched_of(s)->msgs[c] : NULL, &classes[c], m,
                       m->slab_index);
}

size_t amb__msg_bytes(const amb__msg *m)
{
    /* A pooled cell is its class's size; a cell of its own was sized for its
     * term (amb__msg_new_term). Either may have grown blocks. */
    size_t bytes = m->size_class != NOSLAB ? classes[m->size_class].size
                                           : sizeof(amb__msg) + amb_term_size(m->term);
    return bytes + m->heap.bytes;
}

/* Small messages ({ping, Pid}, {ok, 42}, a call {'$gen_call', {Pid, Alias},
 * Req} with an immediate Req) are copied in one pass with no size
 * computation of the general kind: tuples of arity <= SMALL_ARITY nested at
 * most SMALL_DEPTH deep, whose leaves are immediates or references (a
 * reference's box is plain words). */
#define SMALL_ARITY 8
#define SMALL_DEPTH 3

/* Adds the words t takes to *words; false when t is not small. */
static bool small_size(amb_term t, int depth, size_t *words)
{
    if (!amb__is_boxed(t))
        return !amb_is_cons(t);
    if (depth == 0)
        return false;
    const uint64_t *p = amb__box(t);
    size_t n = (size_t)AMB__HDR_PAYLOAD(p[0]);
    switch (AMB__HDR_KIND(p[0])) {
    case AMB__K_REF:
        *words += 3 + n;
        return true;
    case AMB__K_TUPLE:
        if (n > SMALL_ARITY)
            return false;
        *words += 1 + n;
        for (size_t i = 1; i <= n; i++)
            if (!small_size(p[i], depth - 1, words))
                return false;
        return true;
    default:
        return false;
    }
}

/* Copies a small term to *top (which advances). */
static amb_term small_copy(amb_term t, uint64_t **top)
{
    if (!amb__is_boxed(t))
        return t;
    const uint64_t *p = amb__box(t);
    size_t n = (size_t)AMB__HDR_PAYLOAD(p[0]);
    uint64_t *dst = *top;
    if (AMB__HDR_KIND(p[0]) == AMB__K_REF) {
        memcpy(dst, p, (3 + n) * sizeof *dst);
        *top += 3 + n;
    } else {
        *top += 1 + n;
        dst[0] = p[0];
        for (size_t i = 1; i <= n; i++)
            dst[i] = small_copy(p[i], top);
    }
    return amb__make_box(dst);
}

amb__msg *amb__msg_new_term_after(amb__sched *s, amb_term t, size_t reserve)
{
    size_t small = 0;
    bool is_small = small_size(t, SMALL_DEPTH, &small);
    size_t nwords = is_small ? small : amb_term_size(t) / sizeof(uint64_t);
    amb__msg *m = amb__msg_alloc(s, reserve + nwords);
    if (m == NULL)
        return NULL;
    /* The term's storage starts behind the caller's reserved words. */
    m->heap.top += reserve;
    if (is_small) {
        m->term = small_copy(t, &m->heap.top);
    } else if (amb_term_copy(&m->heap, t, &m->term) != 0) {
        amb__msg_free(s, m);
        return NULL;
    }
    return m;
}

amb__msg *amb__msg_new_signal(amb__sched *s, enum amb__msg_kind kind, size_t n)
{
    amb__msg *m = amb__msg_alloc(s, n);
    if (m != NULL)
        m->kind = (uint8_t)kind;
    return m;
}

amb__msg *amb__msg_new_reserved(amb__sched *s, enum amb__msg_kind kind, size_t reserve,
                                size_t extra)
{
    amb__msg *m = amb__msg_alloc(s, reserve + extra);
    if (m != NULL) {
        m->kind = (uint8_t)kind;
        m->heap.top += reserve;
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
        for (unsigned i = 0; i < rt->exec.nsched; i++)
            amb__rt_sched_of(amb__exec_sched(&rt->exec, i))->msgs[c].depot =
                &rt->msg_depots[c];
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
        amb__slab_pool_drain(&amb__rt_sched_of(s)->msgs[c], &classes[c]);
}

void amb__msg_pools_trim(amb__sched *s)
{
    for (unsigned c = 0; c < AMB__MSG_CLASSES; c++) {
        amb__slab_pool_drain(&amb__rt_sched_of(s)->msgs[c], &classes[c]);
        amb__slab_depot_drain(&amb__rt_of(s->exec)->msg_depots[c], &classes[c]);
    }
}

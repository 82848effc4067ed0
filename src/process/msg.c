/*
 * msg.c - message cells: allocation from per-scheduler pools, and the copy of
 * a term into a cell.
 *
 * A small term (proc.h, amb__msg) is copied into the cell's words as it is;
 * any other lives in a fixed heap inside the cell's words (sized exactly
 * with amb_term_size), so a message is one allocation whatever its shape,
 * and its shared binaries are released when the cell is freed.
 *
 * Pools: four size classes, each a slab class (src/runtime/slab.h: one
 * mapping per 64 KiB of cells, per-scheduler pools without locks, memory returned
 * after a burst). Cells larger than the largest class, and cells made
 * outside a scheduler, are single allocations (size_class NOSLAB).
 *
 * Invariants:
 *   - A TERM cell's term lies in the cell's words, from their start to the
 *     end of the term (amb__msg_ranges): in a cell without heap, its top box
 *     and what it holds, right behind the creator's words; in a cell with
 *     one, up to the heap's top. A TERM cell's heap never spills into
 *     blocks: it is sized exactly (amb_term_size), and a copy that falls
 *     back from the fast path starts over at the heap's start. Only a
 *     signal cell's heap may spill (a reason larger than the room kept for
 *     it: amb__msg_new_reserved), and then its blocks are ranges too. A
 *     process with term state keeps received cells and collects them as
 *     part of its heap (pheap.c), which needs those ranges.
 *   - In ASan builds a pooled cell's buffer is poisoned from its free to its
 *     next allocation: a received message read after its borrow ended (the
 *     next receive, the callback's return) is a use-after-poison report.
 *     Pools hand out the cell freed last first, so a freed cell would be the
 *     very next message (a call's reply, the next reply) and the stale read
 *     would see it: each scheduler holds its last AMB__MSG_QUARANTINE freed
 *     cells back first, as ASan's allocator quarantines what it frees.
 *     Single allocations are ASan's own to watch.
 */
#include "process/rt.h"

#define NOSLAB 7 /* size_class of a cell that is one allocation of its own */

/* Words of a cell of each class: with the 32-byte header, one, two, four
 * and sixteen cache lines. */
static const size_t class_words[AMB__MSG_CLASSES] = {4, 12, 28, 124};

/* The words an amb_heap takes inside a heap cell. */
#define HEAP_WORDS ((sizeof(amb_heap) + 7) / 8)

#define CELL_BYTES(words) (sizeof(amb__msg) + (words) * sizeof(uint64_t))

/* About 64 KiB per slab. */
static const amb__slab_class classes[AMB__MSG_CLASSES] = {
    {CELL_BYTES(4), 65536 / CELL_BYTES(4), 1024},
    {CELL_BYTES(12), 65536 / CELL_BYTES(12), 1024},
    {CELL_BYTES(28), 65536 / CELL_BYTES(28), 512},
    {CELL_BYTES(124), 65536 / CELL_BYTES(124), 128},
};

static inline unsigned class_of(size_t nwords)
{
    return nwords <= 4     ? 0
           : nwords <= 12  ? 1
           : nwords <= 28  ? 2
           : nwords <= 124 ? 3
                           : NOSLAB;
}

/* A cell with at least nwords words, its header set (no heap), its words
 * not. */
static amb__msg *cell_alloc(amb__sched *s, size_t nwords)
{
    unsigned c = class_of(nwords);
    amb__msg *m;
    if (amb__likely(c != NOSLAB && s != NULL)) {
        uint16_t index;
        m = amb__slab_alloc(&amb__rt_sched_of(s)->msgs[c], &classes[c], &index);
        if (m == NULL)
            return NULL;
        m->slab_index = index;
        AMB__UNPOISON(m->words, class_words[c] * sizeof(uint64_t));
    } else {
        if (nwords > (SIZE_MAX - sizeof(amb__msg)) / sizeof(uint64_t))
            return NULL;
        m = amb__malloc(CELL_BYTES(nwords));
        if (m == NULL)
            return NULL;
        c = NOSLAB;
    }
    m->size_class = (uint8_t)c & 7u;
    m->kind = AMB__MSG_TERM;
    m->heap_at = 0;
    m->wait_seq = 0;
    m->term = AMB_NONE;
    /* relaxed: the cell is private until a push publishes it (release). */
    atomic_store_explicit(&m->node.next, NULL, memory_order_relaxed);
    return m;
}

amb__msg *amb__msg_alloc(amb__sched *s, size_t nwords)
{
    return cell_alloc(s, nwords);
}

amb__msg *amb__msg_alloc_heap(amb__sched *s, size_t reserve, size_t nwords)
{
    if (reserve > UINT8_MAX - 1 || nwords > SIZE_MAX / 2)
        return NULL;
    size_t total = reserve + HEAP_WORDS + nwords;
    amb__msg *m = cell_alloc(s, total);
    if (m == NULL)
        return NULL;
    size_t cap = m->size_class == NOSLAB ? total : class_words[m->size_class];
    m->heap_at = (uint8_t)(reserve + 1);
    amb__heap_init_fixed(amb__msg_heap(m), m->words + reserve + HEAP_WORDS,
                         cap - reserve - HEAP_WORDS);
    return m;
}

/* Returns a slab cell to its pool (s may be NULL: to its slab). */
static void pool_free(amb__sched *s, amb__msg *m)
{
    unsigned c = m->size_class;
    amb__slab_free(s ? &amb__rt_sched_of(s)->msgs[c] : NULL, &classes[c], m,
                   m->slab_index);
}

#if AMB__ASAN
/* Holds m back; returns the cell that leaves the quarantine, or NULL. */
static amb__msg *quarantine(amb__rt_sched *rs, amb__msg *m)
{
    amb__msg *out = NULL;
    if (rs->quarantine_len == AMB__MSG_QUARANTINE) {
        out = rs->quarantine[rs->quarantine_head];
        rs->quarantine_head = (rs->quarantine_head + 1) % AMB__MSG_QUARANTINE;
        rs->quarantine_len--;
    }
    rs->quarantine[(rs->quarantine_head + rs->quarantine_len++) % AMB__MSG_QUARANTINE] =
        m;
    return out;
}
#endif

/* Every cell s holds back goes to its pool (before the pools drain). */
static void quarantine_flush(amb__sched *s)
{
#if AMB__ASAN
    amb__rt_sched *rs = amb__rt_sched_of(s);
    for (; rs->quarantine_len > 0; rs->quarantine_len--) {
        pool_free(s, rs->quarantine[rs->quarantine_head]);
        rs->quarantine_head = (rs->quarantine_head + 1) % AMB__MSG_QUARANTINE;
    }
#else
    (void)s;
#endif
}

void amb__msg_free(amb__sched *s, amb__msg *m)
{
    if (m == NULL)
        return;
    /* Only heaps that hold shared binaries or outgrew the cell have
     * anything to release. */
    if (m->heap_at != 0) {
        amb_heap *h = amb__msg_heap(m);
        if (h->offheap != NULL || h->blocks != NULL)
            amb__heap_release(h);
    }
    unsigned c = m->size_class;
    if (c == NOSLAB) {
        amb__free(m);
        return;
    }
    /* The slab's free list uses the cell's first words, never its buffer. */
    AMB__POISON(m->words, class_words[c] * sizeof(uint64_t));
#if AMB__ASAN
    if (s != NULL && (m = quarantine(amb__rt_sched_of(s), m)) == NULL)
        return;
#endif
    pool_free(s, m);
}

size_t amb__msg_bytes(const amb__msg *m)
{
    /* A pooled cell is its class's size; a cell of its own was sized for its
     * term (amb__msg_new_term). Either may have grown blocks. */
    size_t bytes = m->size_class != NOSLAB ? classes[m->size_class].size
                                           : sizeof(amb__msg) + amb_term_size(m->term);
    if (m->heap_at != 0)
        bytes += amb__msg_heap((amb__msg *)m)->bytes; /* blocks it grew */
    return bytes;
}

/* Small messages ({ping, Pid}, {ok, 42}, a call {'$gen_call', {Pid, Alias},
 * Req} with an immediate Req) are copied in one pass with no size
 * computation of the general kind and no heap: tuples of arity <=
 * SMALL_ARITY nested at most SMALL_DEPTH deep, whose leaves are immediates
 * or references (a reference's box is plain words). */
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
        for (size_t i = 1; i <= n; i++) {
            if (!amb__is_boxed(p[i]) && !amb_is_cons(p[i]))
                continue; /* an immediate: nothing beyond its word */
            if (!small_size(p[i], depth - 1, words))
                return false;
        }
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
            dst[i] = amb__is_boxed(p[i]) ? small_copy(p[i], top) : p[i];
    }
    return amb__make_box(dst);
}

amb__msg *amb__msg_new_term_after(amb__sched *s, amb_term t, size_t reserve)
{
    amb__msg *m;
    size_t small = 0;
    if (!amb__is_boxed(t) && !amb_is_cons(t)) {
        /* An immediate: the term is the word itself. */
        if ((m = cell_alloc(s, reserve)) != NULL)
            m->term = t;
        return m;
    }
    if (small_size(t, SMALL_DEPTH, &small)) {
        if ((m = cell_alloc(s, reserve + small)) != NULL) {
            uint64_t *top = m->words + reserve;
            m->term = small_copy(t, &top);
        }
        return m;
    }
    size_t nwords = amb_term_size(t) / sizeof(uint64_t);
    m = amb__msg_alloc_heap(s, reserve, nwords);
    if (m == NULL)
        return NULL;
    amb_heap *h = amb__msg_heap(m);
    uint64_t *start = h->top;
    if (amb_term_copy(h, t, &m->term) != 0) {
        amb__msg_free(s, m);
        return NULL;
    }
    if (h->blocks != NULL) {
        /* The fast path of the copy gave up half way (a deep term) and the
         * rest spilled out of the cell: copy again from its start, where the
         * exact size fits (amb__msg_ranges counts on it). */
        amb__heap_release(h);
        amb__heap_init_fixed(h, start, nwords);
        if (amb_term_copy(h, t, &m->term) != 0 || h->blocks != NULL)
            amb__panic("a message outgrew its exact size");
    }
    return m;
}

size_t amb__msg_ranges(const amb__msg *m, amb__range *out, size_t cap)
{
    const uint64_t *hi = m->words;
    size_t n = 1;
    if (m->heap_at != 0) {
        const amb_heap *h = amb__msg_heap((amb__msg *)m);
        if (h->blocks == NULL) {
            hi = h->top;
        } else {
            /* The cell's own words are full or nearly: all of them. Only
             * signal cells spill (amb__msg_new_reserved), and those are
             * pooled; a TERM cell's heap is sized exactly. */
            AMB__CHECK(m->size_class != NOSLAB);
            hi = m->words + class_words[m->size_class];
            n += amb__heap_ranges(h, cap > 1 ? out + 1 : NULL, cap > 1 ? cap - 1 : 0);
        }
    } else {
        /* No heap: a small term copied behind the creator's words, its top
         * box first (small_copy), or an immediate. */
        size_t small = 0;
        if (amb__is_boxed(m->term) && small_size(m->term, SMALL_DEPTH, &small))
            hi = amb__box(m->term) + small;
    }
    if (cap > 0)
        out[0] = (amb__range){m->words, hi};
    return n;
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
    amb__msg *m = amb__msg_alloc_heap(s, reserve, extra);
    if (m != NULL)
        m->kind = (uint8_t)kind;
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
    quarantine_flush(s);
    for (unsigned c = 0; c < AMB__MSG_CLASSES; c++)
        amb__slab_pool_drain(&amb__rt_sched_of(s)->msgs[c], &classes[c]);
}

void amb__msg_pools_trim(amb__sched *s)
{
    quarantine_flush(s);
    for (unsigned c = 0; c < AMB__MSG_CLASSES; c++) {
        amb__slab_pool_drain(&amb__rt_sched_of(s)->msgs[c], &classes[c]);
        amb__slab_depot_drain(&amb__rt_of(s->exec)->msg_depots[c], &classes[c]);
    }
}

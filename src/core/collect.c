/*
 * collect.c - the collection of a process heap: what a set of roots reaches
 * is copied out of a from-space (a process heap's blocks and the message
 * cells it kept) onto a fresh heap, each sub-term once, and the from-space
 * is then freed whole by its owner (src/process/pheap.c).
 *
 * Because the from-space is thrown away, the copy may write into it, as a
 * copying collector does (Cheney's, BEAM's):
 *
 *   a moved box      [ FORWARD | new >> 3 ][ rest of the box unchanged ]
 *   a moved cell     [ AMB_NONE ][ the new cell ]   (no head is AMB_NONE)
 *
 * A second reference to a moved term finds the forwarding word and takes
 * the new address, so sharing survives (a map put shares all but one path
 * with the map before it: copying per reference would blow the state up)
 * and the cost is O(live words), whatever the garbage around them.
 *
 * Invariants:
 *   - Only words inside the from-space are moved or written. A term outside
 *     it (an immediate, a term of another heap, static data) is referred to
 *     as it is: its owner promised, by building with it, that it outlives
 *     the result (term.h's rule for every constructor's inputs). A box or
 *     cell is in the from-space when its first word is in one of the sorted
 *     ranges (binary search).
 *   - Each from-space word is read before it is overwritten: a box is
 *     copied (or its binary rebuilt, which reads data, size and refc), then
 *     its header becomes the forwarding word; the rest of a moved binary box
 *     stays intact, so its heap's off-heap list (which links through `next`
 *     and holds `refc`) is still walked and released exactly once when the
 *     from-space is freed. A copied shared binary takes its own reference,
 *     recorded on the new heap.
 *   - The walk is depth-first with an explicit stack of slots (words of the
 *     copy that still hold an old term); a list's tail is followed in the
 *     loop, so neither depth nor length recurses on the C stack.
 *   - The copy of a term takes exactly the words of the original
 *     (amb__copy_box_words; binaries keep their kind: inline bytes stay
 *     inline, shared ones stay shared), so the new heap never holds more
 *     than the from-space held.
 */
#include <stdlib.h>

#include "term_internal.h"

typedef struct collector {
    amb_heap *to;
    const amb__range *ranges;
    size_t nranges;
    size_t last; /* the range of the last hit: neighbours live together */
    amb__wstack slots;
} collector;

static int by_start(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const amb__range *)a)->lo;
    uintptr_t y = (uintptr_t)((const amb__range *)b)->lo;
    return x < y ? -1 : x > y;
}

/* True when the word at p is in the from-space. Addresses are compared as
 * integers: the ranges are separate objects. The range of the last hit is
 * tried first (a term's parts were mostly built in one block), then a
 * branch-free binary search. */
static bool in_space(collector *c, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    const amb__range *r = c->ranges;
    if (c->nranges == 0)
        return false;
    if (a - (uintptr_t)r[c->last].lo <
        (uintptr_t)r[c->last].hi - (uintptr_t)r[c->last].lo)
        return true;
    /* The last range whose start is at or below a. */
    size_t base = 0, n = c->nranges;
    while (n > 1) {
        size_t half = n / 2;
        base = (uintptr_t)r[base + half].lo <= a ? base + half : base;
        n -= half;
    }
    if (a - (uintptr_t)r[base].lo >= (uintptr_t)r[base].hi - (uintptr_t)r[base].lo)
        return false;
    c->last = base;
    return true;
}

static inline bool is_compound(amb_term t)
{
    return amb_is_cons(t) || amb__is_boxed(t);
}

static inline int push_slot(collector *c, amb_term *slot)
{
    amb__wstack *st = &c->slots;
    if (amb__likely(st->len < st->cap)) {
        st->items[st->len++] = (uint64_t)(uintptr_t)slot;
        return 0;
    }
    return amb__wstack_push(st, (uint64_t)(uintptr_t)slot);
}

/* A box of the from-space, copied (a binary rebuilt) onto the new heap; its
 * compound parts' slots are pushed. The new box, or NULL on ENOMEM. The
 * containers' sizes are read once here (the walk's hot path: a map's trie
 * nodes); every other kind is a leaf of amb__copy_box_words' size. */
static uint64_t *move_box(collector *c, uint64_t *old)
{
    uint64_t hdr = old[0];
    size_t first = 1, n = 0, words;
    switch (AMB__HDR_KIND(hdr)) {
    case AMB__K_TUPLE:
        n = (size_t)AMB__HDR_PAYLOAD(hdr);
        words = 1 + n;
        break;
    case AMB__K_HNODE: /* the nodemap word (a small integer) is no part */
        first = 2;
        n = 2 * (size_t)amb__hamt_popcount((uint32_t)AMB__HDR_PAYLOAD(hdr)) +
            (size_t)amb__hamt_popcount(amb__hnode_nodemap(old));
        words = 2 + n;
        break;
    case AMB__K_MAP:
    case AMB__K_HCOLL:
        n = 2 * (size_t)AMB__HDR_PAYLOAD(hdr);
        words = 1 + n;
        break;
    case AMB__K_HAMT:
        n = 1;
        words = 2;
        break;
    case AMB__K_BINARY: {
        const amb__binary *b = (const amb__binary *)(const void *)old;
        amb_term nb = amb__binary_make(c->to, b->refc, b->data, b->size,
                                       (unsigned)AMB__HDR_PAYLOAD(hdr));
        return nb != AMB_NONE ? amb__box(nb) : NULL;
    }
    default:
        words = amb__copy_box_words(old);
        break;
    }
    uint64_t *p = amb__heap_alloc(c->to, words);
    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < words; i++)
        p[i] = old[i];
    /* Pushed last to first, so the first part is copied first (the copy of
     * a tuple or map node lies next to its parts, in order). */
    for (size_t i = first + n; i-- > first;)
        if (is_compound(p[i]) && push_slot(c, (amb_term *)&p[i]) != 0)
            return NULL;
    return p;
}

/* Replaces the old term in *slot by its new version, moving it when it is
 * in the from-space and not moved yet. */
static int evacuate(collector *c, amb_term *slot)
{
    for (;;) {
        amb_term t = *slot;
        if (amb_is_cons(t)) {
            amb_term *old = amb__cons_cell(t);
            if (!in_space(c, old))
                return 0;
            if (old[0] == AMB_NONE) {
                *slot = old[1]; /* moved already */
                return 0;
            }
            amb_term *cell = (amb_term *)amb__heap_alloc(c->to, 2);
            if (cell == NULL)
                return AMB_ENOMEM;
            cell[0] = old[0];
            cell[1] = old[1];
            old[0] = AMB_NONE;
            old[1] = amb__make_cons(cell);
            *slot = amb__make_cons(cell);
            if (is_compound(cell[0]) && push_slot(c, &cell[0]) != 0)
                return AMB_ENOMEM;
            slot = &cell[1]; /* the tail, in this loop */
            continue;
        }
        if (!amb__is_boxed(t))
            return 0;
        uint64_t *old = amb__box(t);
        if (!in_space(c, old))
            return 0;
        if (AMB__HDR_KIND(old[0]) == AMB__K_FORWARD) {
            *slot = (amb_term)(AMB__HDR_PAYLOAD(old[0]) << 3);
            return 0;
        }
        uint64_t *p = move_box(c, old);
        if (p == NULL)
            return AMB_ENOMEM;
        old[0] = AMB__HDR(AMB__K_FORWARD, (uintptr_t)p >> 3);
        *slot = amb__make_box(p);
        return 0;
    }
}

int amb__collect_roots(amb_heap *to, amb__range *ranges, size_t nranges, amb_term *roots,
                       size_t nroots)
{
    qsort(ranges, nranges, sizeof *ranges, by_start);
    collector c = {.to = to, .ranges = ranges, .nranges = nranges};
    amb__wstack_init(&c.slots);
    int rc = 0;
    for (size_t i = 0; i < nroots && rc == 0; i++) {
        rc = evacuate(&c, &roots[i]);
        while (rc == 0 && !amb__wstack_empty(&c.slots))
            rc = evacuate(&c, (amb_term *)(uintptr_t)amb__wstack_pop(&c.slots));
    }
    amb__wstack_free(&c.slots);
    return rc;
}

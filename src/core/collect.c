/*
 * collect.c - the collection of a process heap: what a set of roots reaches
 * is kept, each sub-term once, and the rest of the memory is freed. Two
 * forms share one walk:
 *
 *   - amb__collect_roots copies out of a from-space (blocks, message cells)
 *     onto another heap; the owner frees the from-space whole afterwards.
 *   - amb__collect_compact (term state, src/process/pheap.c) keeps a heap
 *     where it is and compacts it in place: its live terms slide down
 *     within its own blocks, and only what the kept message cells hold is
 *     copied (into a block that joins the heap). No to-space, so a
 *     process's memory is its heap and a twentieth more, not twice it.
 *   - amb_heap_collect (a heap its owner collects, a loop's) copies out of
 *     the heap's blocks into the spare blocks the heap holds and, for what
 *     they cannot hold, one block taken before the walk: the walk is the
 *     whole collection (no plan, no move: 0.4x the compaction's time in the
 *     maps bench, docs/design/terms.md), for the live size more memory at
 *     the peak; the old blocks become the spares of the next cycle.
 *
 * Copying writes into the from-space, as a copying collector does
 * (Cheney's, BEAM's), since the from-space is thrown away:
 *
 *   a moved box      [ FORWARD | new >> 3 ][ rest of the box unchanged ]
 *   a moved cell     [ AMB_NONE ][ the new cell ]   (no head is AMB_NONE)
 *
 * A second reference to a moved term finds the forwarding word and takes
 * the new address, so sharing survives (a map put shares all but one path
 * with the map before it: copying per reference would blow the state up)
 * and the cost is O(live words), whatever the garbage around them.
 *
 * Compacting (the Lisp 2 algorithm with side tables instead of a word per
 * object, as the Compressor's):
 *
 *   1. mark    the walk sets, per block, a bit for the first word of each
 *              live term, one for each of its words, and one for list
 *              cells (they have no header, so the bits say what they are);
 *   2. plan    blocks in address order, terms in address order, are given
 *              places from the first block on: a term goes where the last
 *              one ended, or to the next block when it does not fit. A
 *              block's terms keep their order, so a term's new place is its
 *              block's segment start + the live words before it (a popcount
 *              over the bits and a per-64-word count): a few segments per
 *              block, no table per term;
 *   3. move    each live term's words that refer to the heap are rewritten
 *              to the new places, then the term slides down to its own.
 *              Places never pass the term's old place in that order, so
 *              nothing not yet moved is overwritten;
 *   4. rebuild blocks that received nothing are freed; the heap allocates
 *              after the last term.
 *
 * Invariants:
 *   - Only words inside the from-space or the compacted heap are moved or
 *     written. A term outside both (an immediate, a term of another heap,
 *     static data) is referred to as it is: its owner promised, by
 *     building with it, that it outlives the result (term.h's rule for
 *     every constructor's inputs). Membership is a binary search in sorted
 *     ranges.
 *   - Each from-space word is read before it is overwritten: a box is
 *     copied (or its binary rebuilt, which reads data, size and refc), then
 *     its header becomes the forwarding word; the rest of a moved binary box
 *     stays intact, so its heap's off-heap list (which links through `next`
 *     and holds `refc`) is still walked and released exactly once when the
 *     from-space is freed. A copied shared binary takes its own reference,
 *     recorded on the new heap.
 *   - Compacting releases the reference of every binary box of the heap
 *     that is not live (before the move overwrites it), and links the live
 *     ones again at their new places; a heap binary's data pointer, which
 *     points into its own box, moves with it.
 *   - The walk is depth-first with an explicit stack of slots (words that
 *     still hold an old term); a list's tail is followed in the loop, so
 *     neither depth nor length recurses on the C stack.
 *   - The copy of a term takes exactly the words of the original
 *     (amb__copy_box_words; binaries keep their kind: inline bytes stay
 *     inline, shared ones stay shared), so the copies of the cells' terms
 *     fit a block the size of the cells.
 *   - Compacting allocates only before anything changes (side tables, the
 *     block for the cells' terms) and while marking (the stack of slots);
 *     the plan, the move and the rebuild allocate nothing.
 *   - amb_heap_collect's copy allocates only before anything changes: the
 *     block for what the spares cannot hold has as many words as the heap
 *     uses, and the stack of slots one per word (each slot pushed is a
 *     word of a copy, pushed once), so the live terms fit whatever the
 *     spares' sizes, and the walk cannot fail half way.
 */
#include <stdlib.h>

#include "term_internal.h"

/* One block of the heap being compacted (or the block the cells' terms are
 * copied to, which is compacted with them). */
typedef struct space {
    uint64_t *lo;           /* the block's words */
    size_t n;               /* words that may hold terms: [lo, lo + n) */
    size_t cap;             /* words it can hold as a destination */
    amb__heap_block *blk;   /* NULL for the destination of sanitizer builds */
    uint64_t *start, *cons; /* per word: a term starts here; it is a list cell */
    uint64_t *live;         /* per word: it belongs to a live term */
    uint32_t *rank;         /* live words before each 64-word chunk */
    size_t seg, nseg;       /* its segments in the table */
    size_t filled;          /* words the plan put into it as a destination */
} space;

/* From live rank `rank` of its space on, terms go to dest + (r - rank). */
typedef struct segment {
    size_t rank;
    uint64_t *dest;
} segment;

typedef struct collector {
    amb_heap *to;
    const amb__range *ranges;
    size_t nranges;
    size_t last; /* the range of the last hit: neighbours live together */
    amb__wstack slots;
    /* Compacting only: the spaces in address order. */
    space *spaces;
    size_t nspaces;
    size_t last_space;
    space *copies; /* the space of `to`: what the cells held */
    bool moved;    /* a term of the from-space has been moved (forwarded) */
    /* amb_heap_collect's copy only: the blocks `to` may take, in order,
     * the last one large enough for all that is left (so the copy never
     * asks for memory), and the stack of slots given whole beforehand. */
    amb__heap_block *cands;
    bool fixed_slots;
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

/* The space of the compacted heap that holds the word at p, or NULL; the
 * same search as in_space. */
static space *space_of(collector *c, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    space *s = c->spaces;
    if (c->nspaces == 0)
        return NULL;
    space *l = &s[c->last_space];
    if (a - (uintptr_t)l->lo < l->n * sizeof(uint64_t))
        return l;
    size_t base = 0, n = c->nspaces;
    while (n > 1) {
        size_t half = n / 2;
        base = (uintptr_t)s[base + half].lo <= a ? base + half : base;
        n -= half;
    }
    if (a - (uintptr_t)s[base].lo >= s[base].n * sizeof(uint64_t))
        return NULL;
    c->last_space = base;
    return &s[base];
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
    /* A stack given whole holds a slot per word the copy can write. */
    AMB__CHECK(!c->fixed_slots);
    return amb__wstack_push(st, (uint64_t)(uintptr_t)slot);
}

/* Room for words more words in the current block of `to`, in the copy of
 * amb_heap_collect: when the block is full, the first candidate block that
 * can hold them becomes current (the rest of the full one stays unused,
 * poisoned as a spare block is). The last candidate holds everything the
 * copy can still write, so one always can. Nothing to do in the other
 * forms, whose `to` grows by itself. */
static inline void to_room(collector *c, size_t words)
{
    amb_heap *to = c->to;
    if (c->cands == NULL || (size_t)(to->end - to->top) >= words)
        return;
    amb__heap_block **pp = &c->cands;
    while ((*pp)->nwords < words)
        pp = &(*pp)->next;
    amb__heap_block *b = *pp;
    *pp = b->next;
    b->next = to->blocks;
    to->blocks = b;
    to->top = b->words;
    to->end = b->words + b->nwords;
    to->bytes += amb__heap_block_bytes(b);
}

/* ---------------------------------------------------------------------------
 * Bits
 * ------------------------------------------------------------------------ */

/* Bits set in x: the instruction where the target has it, else the
 * bit-parallel sum inline (libgcc's call would cost more than the rest of a
 * step of the plan). */
static inline size_t pop64(uint64_t x)
{
#ifdef __POPCNT__
    return (size_t)__builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555u);
    x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return (size_t)((x * 0x0101010101010101u) >> 56);
#endif
}

static inline bool bit_get(const uint64_t *bm, size_t i)
{
    return (bm[i >> 6] >> (i & 63)) & 1u;
}

static inline void bit_set(uint64_t *bm, size_t i)
{
    bm[i >> 6] |= (uint64_t)1 << (i & 63);
}

/* Sets bits i .. i + n - 1. */
static void bits_set(uint64_t *bm, size_t i, size_t n)
{
    while (n > 0) {
        size_t b = i & 63, k = 64 - b < n ? 64 - b : n;
        bm[i >> 6] |= (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << b;
        i += k;
        n -= k;
    }
}

/* Records a live term of `words` words at p in space s (its first time). */
static void mark(space *s, const uint64_t *p, size_t words, bool cons)
{
    size_t off = (size_t)(p - s->lo);
    bit_set(s->start, off);
    if (cons)
        bit_set(s->cons, off);
    bits_set(s->live, off, words);
}

/* Live words of s before word off. */
static inline size_t rank_of(const space *s, size_t off)
{
    uint64_t below = s->live[off >> 6] & ((((uint64_t)1) << (off & 63)) - 1);
    return s->rank[off >> 6] + pop64(below);
}

/* ---------------------------------------------------------------------------
 * The walk
 * ------------------------------------------------------------------------ */

/* Words of box p, and the range [*first, *first + *n) of its sub-terms:
 * one switch for both (the walk's hot path: a map's trie nodes). */
static inline size_t box_shape(const uint64_t *p, size_t *first, size_t *n)
{
    uint64_t payload = AMB__HDR_PAYLOAD(p[0]);
    *first = 1;
    switch (AMB__HDR_KIND(p[0])) {
    case AMB__K_HNODE: /* the nodemap word (a small integer) is no part */
        *first = 2;
        *n = 2 * (size_t)amb__hamt_popcount((uint32_t)payload) +
             (size_t)amb__hamt_popcount(amb__hnode_nodemap(p));
        return 2 + *n;
    case AMB__K_TUPLE:
        *n = (size_t)payload;
        return 1 + *n;
    case AMB__K_MAP:
    case AMB__K_HCOLL:
        *n = 2 * (size_t)payload;
        return 1 + *n;
    case AMB__K_HAMT:
        *n = 1;
        return 2;
    default:
        *n = 0;
        return amb__copy_box_words(p);
    }
}

/* Pushes the compound parts of box p (whose shape is first, n) as slots. */
static int push_parts(collector *c, uint64_t *p, size_t first, size_t n)
{
    /* Pushed last to first, so the first part is walked first (a copy lies
     * next to its parts, in order). Each part's first word is asked for
     * now: the walk then waits for the misses of a node's parts together,
     * not one after another (a trie's leaves are scattered). */
    for (size_t i = first + n; i-- > first;) {
        if (!is_compound(p[i]))
            continue;
        __builtin_prefetch((const void *)(uintptr_t)(p[i] & ~(uint64_t)7));
        if (push_slot(c, (amb_term *)&p[i]) != 0)
            return AMB_ENOMEM;
    }
    return 0;
}

/* A box of the from-space, copied (a binary rebuilt) onto the new heap; its
 * compound parts' slots are pushed. The new box, or NULL on ENOMEM. */
static uint64_t *move_box(collector *c, uint64_t *old)
{
    uint64_t *p;
    size_t first, n, words = box_shape(old, &first, &n);
    to_room(c, words);
    if (AMB__HDR_KIND(old[0]) == AMB__K_BINARY) {
        const amb__binary *b = (const amb__binary *)(const void *)old;
        amb_term nb = amb__binary_make(c->to, b->refc, b->data, b->size,
                                       (unsigned)AMB__HDR_PAYLOAD(old[0]));
        if (nb == AMB_NONE)
            return NULL;
        p = amb__box(nb);
    } else {
        p = amb__heap_alloc(c->to, words);
        if (p == NULL)
            return NULL;
        for (size_t i = 0; i < words; i++)
            p[i] = old[i];
    }
    if (c->copies != NULL)
        mark(c->copies, p, words, false);
    return push_parts(c, p, first, n) == 0 ? p : NULL;
}

/* The term in *slot: moved (copied) when it is in the from-space and not
 * moved yet, marked when it is in the compacted heap and not marked yet,
 * and *slot updated to a moved term's new place. */
static int evacuate(collector *c, amb_term *slot)
{
    for (;;) {
        amb_term t = *slot;
        if (amb_is_cons(t)) {
            amb_term *old = amb__cons_cell(t);
            space *s = space_of(c, old);
            if (s != NULL) {
                if (bit_get(s->start, (size_t)((uint64_t *)old - s->lo)))
                    return 0;
                mark(s, (uint64_t *)old, 2, true);
                if (is_compound(old[0]) && push_slot(c, &old[0]) != 0)
                    return AMB_ENOMEM;
                slot = &old[1]; /* the tail, in this loop */
                continue;
            }
            if (!in_space(c, old))
                return 0;
            if (old[0] == AMB_NONE) {
                *slot = old[1]; /* moved already */
                return 0;
            }
            to_room(c, 2);
            amb_term *cell = (amb_term *)amb__heap_alloc(c->to, 2);
            if (cell == NULL)
                return AMB_ENOMEM;
            if (c->copies != NULL)
                mark(c->copies, (uint64_t *)cell, 2, true);
            cell[0] = old[0];
            cell[1] = old[1];
            old[0] = AMB_NONE;
            old[1] = amb__make_cons(cell);
            *slot = amb__make_cons(cell);
            c->moved = true;
            if (is_compound(cell[0]) && push_slot(c, &cell[0]) != 0)
                return AMB_ENOMEM;
            slot = &cell[1];
            continue;
        }
        if (!amb__is_boxed(t))
            return 0;
        uint64_t *old = amb__box(t);
        space *s = space_of(c, old);
        if (s != NULL) {
            if (bit_get(s->start, (size_t)(old - s->lo)))
                return 0;
            size_t first, n;
            mark(s, old, box_shape(old, &first, &n), false);
            return push_parts(c, old, first, n);
        }
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
        c->moved = true;
        return 0;
    }
}

/* Walks from every root; 0 or AMB_ENOMEM (half way). */
static int walk(collector *c, amb_term *roots, size_t nroots)
{
    int rc = 0;
    for (size_t i = 0; i < nroots && rc == 0; i++) {
        rc = evacuate(c, &roots[i]);
        while (rc == 0 && !amb__wstack_empty(&c->slots))
            rc = evacuate(c, (amb_term *)(uintptr_t)amb__wstack_pop(&c->slots));
    }
    return rc;
}

int amb__collect_roots(amb_heap *to, amb__range *ranges, size_t nranges, amb_term *roots,
                       size_t nroots)
{
    qsort(ranges, nranges, sizeof *ranges, by_start);
    collector c = {.to = to, .ranges = ranges, .nranges = nranges};
    amb__wstack_init(&c.slots);
    int rc = walk(&c, roots, nroots);
    amb__wstack_free(&c.slots);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Compacting
 * ------------------------------------------------------------------------ */

static int space_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const space *)a)->lo;
    uintptr_t y = (uintptr_t)((const space *)b)->lo;
    return x < y ? -1 : x > y;
}

/* Words of the live term at word off of s, from the bits alone: its words
 * run to the next term's start or to the first word no live term holds. */
static inline size_t term_words(const space *s, size_t off)
{
    size_t w = off >> 6, chunks = (s->n + 63) / 64;
    uint64_t ends = (s->start[w] | ~s->live[w]) & ~((((uint64_t)2) << (off & 63)) - 1);
    while (ends == 0 && ++w < chunks)
        ends = s->start[w] | ~s->live[w];
    size_t end = ends != 0 ? w * 64 + (size_t)__builtin_ctzll(ends) : s->n;
    return (end < s->n ? end : s->n) - off;
}

/* The new place of the live term at word off of s. */
static uint64_t *place_of(const space *s, const segment *segs, size_t off)
{
    size_t r = rank_of(s, off), i = s->seg + s->nseg - 1;
    while (segs[i].rank > r)
        i--;
    return segs[i].dest + (r - segs[i].rank);
}

/* t with its reference into the compacted heap (if any) moved. */
static amb_term moved(collector *c, const segment *segs, amb_term t)
{
    if (!is_compound(t))
        return t;
    uint64_t *p = amb_is_cons(t) ? (uint64_t *)amb__cons_cell(t) : amb__box(t);
    space *s = space_of(c, p);
    if (s == NULL)
        return t;
    uint64_t *d = place_of(s, segs, (size_t)(p - s->lo));
    return amb_is_cons(t) ? amb__make_cons((const amb_term *)d) : amb__make_box(d);
}

/* The side tables of a compaction: one allocation for every space's. */
typedef struct tablemem {
    uint64_t *words;
    size_t mapped; /* bytes of its own mapping, 0 when from calloc */
} tablemem;

/* Tables of 64 KiB and more are a mapping of their own (zero pages from
 * the OS, given back at once): from the C library they stayed in the arena
 * of whichever scheduler thread ran the collection, one arena's worth per
 * thread. */
#define TABLES_MAP_MIN ((size_t)64 << 10)

/* words zeroed words of scratch memory in *mem (a mapping from
 * TABLES_MAP_MIN bytes on: its pages take memory only once written); 0 or
 * AMB_ENOMEM. */
static int scratch(size_t words, tablemem *mem)
{
    size_t bytes = (words ? words : 1) * sizeof(uint64_t);
    mem->mapped = 0;
    if (bytes >= TABLES_MAP_MIN) {
        mem->mapped = (bytes + 4095) & ~(size_t)4095;
        mem->words = amb__map(mem->mapped);
    } else {
        mem->words = amb__calloc(bytes / sizeof(uint64_t), sizeof(uint64_t));
    }
    return mem->words != NULL ? 0 : AMB_ENOMEM;
}

/* Side tables for every space; 0 or AMB_ENOMEM. */
static int tables(space *sp, size_t ns, tablemem *mem)
{
    size_t words = 0;
    for (size_t i = 0; i < ns; i++) {
        size_t chunks = (sp[i].n + 63) / 64;
        words += 3 * chunks + (chunks + 1) / 2;
    }
    if (scratch(words, mem) != 0)
        return AMB_ENOMEM;
    uint64_t *m = mem->words;
    for (size_t i = 0; i < ns; i++) {
        size_t chunks = (sp[i].n + 63) / 64;
        sp[i].start = m;
        sp[i].cons = m + chunks;
        sp[i].live = m + 2 * chunks;
        sp[i].rank = (uint32_t *)(void *)(m + 3 * chunks);
        m += 3 * chunks + (chunks + 1) / 2;
    }
    return 0;
}

static void tables_free(tablemem *mem)
{
    if (mem->mapped != 0)
        amb__unmap(mem->words, mem->mapped);
    else
        amb__free(mem->words);
}

/* The plan: places for every live term, spaces[] in address order as both
 * sources and destinations (dst NULL), or all in dst (sanitizer builds).
 * Fills segs (at most 2 per space). Returns the index of the last space
 * that received terms (ns when dst holds them all). */
static size_t plan(space *sp, size_t ns, segment *segs, space *dst)
{
    size_t nsegs = 0, d = 0;
    space *to = dst != NULL ? dst : &sp[0];
    uint64_t *cur = to->lo;
    for (size_t i = 0; i < ns; i++) {
        space *s = &sp[i];
        size_t chunks = (s->n + 63) / 64, r = 0;
        s->seg = nsegs;
        s->nseg = 0;
        for (size_t w = 0; w < chunks; w++) {
            s->rank[w] = (uint32_t)r;
            r += pop64(s->live[w]);
        }
        r = 0;
        for (size_t w = 0; w < chunks; w++) {
            for (uint64_t m = s->start[w]; m != 0; m &= m - 1) {
                size_t off = w * 64 + (size_t)__builtin_ctzll(m),
                       words = term_words(s, off);
                bool fresh = s->nseg == 0;
                /* The next destination with room: at worst this term's own
                 * block, at its own place, so d never passes i. */
                while (cur + words > to->lo + to->cap) {
                    to->filled = (size_t)(cur - to->lo);
                    to = &sp[++d];
                    cur = to->lo;
                    fresh = true;
                }
                if (fresh) {
                    segs[nsegs++] = (segment){r, cur};
                    s->nseg++;
                }
                cur += words;
                r += words;
            }
        }
    }
    to->filled = (size_t)(cur - to->lo);
    return dst != NULL ? ns : d;
}

/* A run of live words that slides as one (consecutive terms of one
 * segment), moved by flush. */
typedef struct run {
    uint64_t *src, *dst;
    size_t len;
} run;

static void flush(run *r)
{
    if (r->len > 0 && r->dst != r->src)
        memmove(r->dst, r->src, r->len * sizeof *r->src);
    r->len = 0;
}

/* The move: every live term's references rewritten where it is, then the
 * term slid to its place, spaces in address order. A run's slide waits
 * until the run ends: the terms after it are still where they were (a
 * place is never past its term). Live shared binaries are linked on
 * *offheap at their new places. */
static void move(collector *c, const segment *segs, amb__binary **offheap)
{
    for (size_t i = 0; i < c->nspaces; i++) {
        space *s = &c->spaces[i];
        size_t chunks = (s->n + 63) / 64;
        run r = {0};
        for (size_t w = 0; w < chunks; w++) {
            for (uint64_t m = s->start[w]; m != 0; m &= m - 1) {
                size_t off = w * 64 + (size_t)__builtin_ctzll(m), words;
                uint64_t *p = s->lo + off, *d = place_of(s, segs, off);
                if (bit_get(s->cons, off)) {
                    words = 2;
                    p[0] = moved(c, segs, p[0]);
                    p[1] = moved(c, segs, p[1]);
                } else {
                    size_t first, n;
                    words = box_shape(p, &first, &n);
                    for (size_t k = first; k < first + n; k++)
                        p[k] = moved(c, segs, p[k]);
                    if (AMB__HDR_KIND(p[0]) == AMB__K_BINARY) {
                        amb__binary *b = (amb__binary *)(void *)p;
                        if (b->refc == NULL) {
                            b->data = (const uint8_t *)d + (b->data - (const uint8_t *)p);
                        } else {
                            b->next = *offheap;
                            *offheap = (amb__binary *)(void *)d;
                        }
                    }
                }
                if (p == r.src + r.len && d == r.dst + r.len) {
                    r.len += words;
                } else {
                    flush(&r);
                    r = (run){p, d, words};
                }
            }
        }
        flush(&r);
    }
}

/* The heap after the move: the destinations that received terms, the last
 * one current; the others kept as spare blocks up to spare[0] / spare[1]
 * of the live size (SIZE_MAX: all; the heap grows back before it is
 * collected again, and those blocks need no new pages then) and up to
 * what its terms took before (used bytes), and freed beyond. In sanitizer builds every
 * old block is freed: a term kept from before is a use after free. */
static void rebuild(amb_heap *heap, space *sp, size_t ns, size_t last, space *dst,
                    amb__binary *offheap, const size_t spare[2], size_t used)
{
    amb__heap_block *head = NULL;
    size_t bytes = 0, live = 0, spare_max;
    for (size_t i = 0; i < ns; i++)
        live += sp[i].filled * sizeof(uint64_t);
    /* No more than the heap grew by since the last collection either: a
     * cycle like this one needs no more (the kept cells the trigger also
     * counted are not the heap's). */
    spare_max = spare[0] == SIZE_MAX ? SIZE_MAX : live / spare[1] * spare[0];
    if (used > live && used - live < spare_max)
        spare_max = used - live;
    for (size_t i = 0; i < ns; i++) {
        space *s = &sp[i];
        bool keep = dst == NULL && (i == last || (i < last && s->filled > 0));
        if (!keep) {
            size_t b = amb__heap_block_bytes(s->blk);
            if (dst == NULL && heap->spare_bytes <= spare_max &&
                b <= spare_max - heap->spare_bytes)
                amb__heap_spare(heap, s->blk);
            else
                amb__heap_block_free(s->blk);
            continue;
        }
        /* What is past the terms is free: poisoned until allocated (or for
         * good, in a block that is not the current one). */
        AMB__POISON(s->lo + s->filled, (s->cap - s->filled) * sizeof(uint64_t));
        s->blk->next = head;
        head = s->blk;
        bytes += amb__heap_block_bytes(s->blk);
    }
    space *cur = dst != NULL ? dst : &sp[last];
    if (dst != NULL) {
        AMB__POISON(dst->lo + dst->filled, (dst->cap - dst->filled) * sizeof(uint64_t));
        dst->blk->next = NULL;
        head = dst->blk;
        bytes = amb__heap_block_bytes(dst->blk);
    }
    heap->blocks = head;
    heap->top = cur->lo + cur->filled;
    heap->end = cur->lo + cur->cap;
    heap->bytes = bytes;
    heap->offheap = offheap;
}

/* Releases the reference of every shared binary on the heap's off-heap
 * list that the walk did not reach (before the move overwrites it). */
static void release_dead(collector *c, amb__binary *list)
{
    for (amb__binary *b = list; b != NULL; b = b->next) {
        space *s = space_of(c, b);
        if (s == NULL || !bit_get(s->start, (size_t)((uint64_t *)(void *)b - s->lo)))
            amb__refbin_release(b->refc);
    }
}

/* What a compaction that could not start had allocated, freed. */
static int give_up(space *sp, segment *segs, amb__heap_block *copies)
{
    if (copies != NULL)
        amb__heap_block_free(copies);
    amb__free(sp);
    amb__free(segs);
    return AMB_ENOMEM;
}

int amb__collect_compact(amb_heap *heap, amb__range *ranges, size_t nranges,
                         amb_term *roots, size_t nroots, const size_t spare[2],
                         bool *ruined)
{
    *ruined = false;
    size_t nblocks = 0, cell_words = 0;
    for (amb__heap_block *b = heap->blocks; b != NULL; b = b->next)
        nblocks++;
    for (size_t i = 0; i < nranges; i++)
        cell_words += (size_t)(ranges[i].hi - ranges[i].lo);
    /* spaces[nblocks] is the block for the cells' terms; segs: at most two
     * per space (one where it starts, one where its terms cross into the
     * next destination). */
    size_t ns = nblocks + (cell_words > 0);
    space *sp = amb__calloc(ns ? ns : 1, sizeof *sp);
    segment *segs = amb__malloc((2 * ns + 2) * sizeof *segs);
    amb__heap_block *copies = cell_words > 0 ? amb__heap_block_new(cell_words) : NULL;
    tablemem mem = {NULL, 0};
    if (sp == NULL || segs == NULL || (cell_words > 0 && copies == NULL))
        return give_up(sp, segs, copies);
    size_t i = 0, used = 0;
    for (amb__heap_block *b = heap->blocks; b != NULL; b = b->next, i++) {
        sp[i].lo = b->words;
        sp[i].cap = b->nwords;
        /* The current block holds terms below its top only. */
        sp[i].n = b == heap->blocks ? (size_t)(heap->top - b->words) : b->nwords;
        sp[i].blk = b;
        used += sp[i].n * sizeof(uint64_t);
    }
    if (copies != NULL)
        sp[nblocks] = (space){.lo = copies->words,
                              .n = copies->nwords,
                              .cap = copies->nwords,
                              .blk = copies};
    if (tables(sp, ns, &mem) != 0)
        return give_up(sp, segs, copies);
    qsort(sp, ns, sizeof *sp, space_cmp);
    if (nranges > 0)
        qsort(ranges, nranges, sizeof *ranges, by_start);
    /* The cells' terms are copied by a heap over the copies' block (it
     * never needs more: a copy takes the words of the original). */
    amb_heap to;
    amb__heap_init_fixed(&to, copies ? copies->words : NULL, copies ? copies->nwords : 0);
    collector c = {
        .to = &to, .ranges = ranges, .nranges = nranges, .spaces = sp, .nspaces = ns};
    for (size_t k = 0; k < ns; k++)
        if (copies != NULL && sp[k].blk == copies)
            c.copies = &sp[k];
    amb__wstack_init(&c.slots);
    int rc = walk(&c, roots, nroots);
    amb__wstack_free(&c.slots);
    AMB__CHECK(to.blocks == NULL); /* the copies fit their block */
    if (rc != 0 && !c.moved) {
        /* Only bits were set: nothing changed. */
        tables_free(&mem);
        return give_up(sp, segs, copies);
    }
    if (rc != 0) {
        /* Cells are half moved: the owner can only free everything. The
         * copies' block joins the heap so that it is freed with it, and
         * the references its binaries took are released now. */
        for (amb__binary *b = to.offheap; b != NULL; b = b->next)
            amb__refbin_release(b->refc);
        if (copies != NULL) {
            copies->next = heap->blocks ? heap->blocks->next : NULL;
            if (heap->blocks != NULL)
                heap->blocks->next = copies;
            else
                heap->blocks = copies;
            heap->bytes += amb__heap_block_bytes(copies);
        }
        tables_free(&mem);
        amb__free(sp);
        amb__free(segs);
        *ruined = true;
        return rc;
    }
    /* The copies' shared binaries are in the copies' space: linked again
     * with the others by the move, their references kept. */
    release_dead(&c, heap->offheap);
    space fresh = {0}, *dst = NULL;
    if (AMB__ASAN) {
        /* A fresh block for the live terms, the old ones freed: a term kept
         * from before the collection is a use after free, as with copying.
         * If there is no memory for it, in place after all. */
        size_t live = 0;
        for (size_t k = 0; k < ns; k++) {
            size_t chunks = (sp[k].n + 63) / 64;
            for (size_t w = 0; w < chunks; w++)
                live += pop64(sp[k].live[w]);
        }
        amb__heap_block *fb = amb__heap_block_new(live ? live : 1);
        if (fb != NULL) {
            fresh = (space){.lo = fb->words, .n = 0, .cap = fb->nwords, .blk = fb};
            dst = &fresh;
        }
    }
    size_t last = plan(sp, ns, segs, dst);
    amb__binary *offheap = NULL;
    for (size_t k = 0; k < nroots; k++)
        roots[k] = moved(&c, segs, roots[k]);
    move(&c, segs, &offheap);
    rebuild(heap, sp, ns, last, dst, offheap, spare, used);
    tables_free(&mem);
    amb__free(sp);
    amb__free(segs);
    return 0;
}

/* ---------------------------------------------------------------------------
 * amb_heap_collect: copying, into memory held before the walk starts
 * ------------------------------------------------------------------------ */

/* Copies what roots[0..n) reach out of every block of heap into the
 * blocks it holds as spares and, behind them, one block of as many words
 * as the heap uses (a mapping: only the pages the copy writes take
 * memory). That block and the stack of slots (a word per word the copy
 * can write) are taken before anything changes, so the copy itself never
 * asks for memory: 0, or AMB_ENOMEM with nothing changed. Afterwards the
 * old blocks are the heap's spares (freed in sanitizer builds, so that a
 * term kept from before is a use-after-free report), up to the words the
 * heap used: the next cycle grows into them and copies into what is left
 * of them, touching no new page. */
static int copy_collect(amb_heap *heap, amb_term *roots, size_t n)
{
    size_t nblocks = 0, used = 0;
    for (amb__heap_block *b = heap->blocks; b != NULL; b = b->next, nblocks++)
        used += b == heap->blocks ? (size_t)(heap->top - b->words) : b->nwords;
    amb__range *ranges = amb__malloc((nblocks ? nblocks : 1) * sizeof *ranges);
    tablemem stack = {NULL, 0};
    amb__heap_block *last = amb__heap_block_new(used ? used : 1);
    if (ranges == NULL || last == NULL || scratch(used + 1, &stack) != 0) {
        amb__free(ranges);
        if (last != NULL)
            amb__heap_block_free(last);
        if (stack.words != NULL)
            tables_free(&stack);
        return AMB_ENOMEM;
    }
    size_t i = 0;
    for (amb__heap_block *b = heap->blocks; b != NULL; b = b->next, i++)
        ranges[i] =
            (amb__range){b->words, b == heap->blocks ? heap->top : b->words + b->nwords};
    qsort(ranges, nblocks, sizeof *ranges, by_start);
    /* The candidates: the spares in their order, then `last`. */
    amb__heap_block **tail = &heap->spare;
    while (*tail != NULL)
        tail = &(*tail)->next;
    last->next = NULL;
    *tail = last;
    amb_heap to = {0};
    collector c = {.to = &to, .ranges = ranges, .nranges = nblocks, .cands = heap->spare};
    c.fixed_slots = true;
    c.slots.items = stack.words;
    c.slots.cap = used + 1;
    AMB__CHECK(walk(&c, roots, n) == 0); /* no allocation can fail */
    amb__free(ranges);
    tables_free(&stack);
    /* The copies took references of their own. */
    for (amb__binary *b = heap->offheap; b != NULL; b = b->next)
        amb__refbin_release(b->refc);
    if (to.blocks == last) {
        /* The pages of `last` the copy did not write are never handed out:
         * the heap grows into the rest of the last page written, then into
         * the spares, which hold memory already. */
        size_t before = last->nwords;
        amb__heap_block_trim(last, (size_t)(to.top - last->words));
        to.bytes -= (before - last->nwords) * sizeof(uint64_t);
        to.end = last->words + last->nwords;
    }
    /* Candidates not taken (`last` among them when the spares sufficed),
     * then the old blocks, become spares while they fit in what the heap
     * used; the others are freed. */
    amb__heap_block *rest = c.cands;
    size_t budget = used * sizeof(uint64_t);
    for (int pass = 0; pass < 2; pass++) {
        for (amb__heap_block *b = pass == 0 ? rest : heap->blocks, *next; b != NULL;
             b = next) {
            next = b->next;
            size_t bytes = amb__heap_block_bytes(b);
            if (b == last || (AMB__ASAN && pass == 1) || to.spare_bytes + bytes > budget)
                amb__heap_block_free(b);
            else
                amb__heap_spare(&to, b);
        }
    }
    heap->blocks = NULL;
    heap->spare = NULL;
    heap->offheap = NULL;
    *heap = to;
    return 0;
}

int amb_heap_collect(amb_heap *heap, amb_term *roots, size_t n)
{
    if (heap == NULL || (roots == NULL && n > 0))
        return AMB__MISUSE();
    if (heap->blocks == NULL)
        return 0; /* no block of its own: nothing it could free */
    if (copy_collect(heap, roots, n) == 0)
        return 0;
    /* No memory for the copy: in place, needing a twentieth of the heap
     * more. Nothing is moved before its walk ends: a failure leaves every
     * term as it was. */
    bool ruined;
    static const size_t all[2] = {SIZE_MAX, 1};
    return amb__collect_compact(heap, NULL, 0, roots, n, all, &ruined);
}

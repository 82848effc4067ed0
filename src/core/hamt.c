/*
 * hamt.c - the hash trie behind maps of more than AMB__MAP_FLAT_MAX pairs: a
 * persistent hash array mapped trie (Bagwell; Hickey's persistent form; the
 * layout is Steindorfer and Vinju's CHAMP), so that get, put and remove are
 * O(log n) and a new version shares every node it did not change with the
 * old one. map.c decides when a map is flat and when it is a trie.
 *
 * Shape (layouts in term_internal.h):
 *
 *   HAMT [size | root] ──► HNODE [datamap | nodemap | k v k v ... | n n ...]
 *                                                                 │
 *                                        HNODE ... or, after the last level,
 *                                        HCOLL [k v k v ...] (one full hash)
 *
 * A key's hash (amb_hash, 64 bits, the same on every machine) is read
 * AMB__HAMT_BITS bits at a time from its low end; digit l picks the slot at
 * level l. A slot holds one pair inline (datamap) or a child node (nodemap).
 *
 * Invariants:
 *   - Nodes are immutable once their map is returned: every change copies
 *     the nodes on the path from the root to the change, and only those.
 *   - Canonical shape: a key sits at the shallowest level where no other
 *     key of the map has the same digits, a node other than the root holds
 *     at least two pairs in all (a node that would hold one hands it up to
 *     its parent), and an HCOLL's keys are in exact order. The shape is then
 *     a function of the key set, which is what lets =:= and amb_hash walk
 *     tries node by node, and what makes the iteration order stable: keys
 *     ordered by their hash digits from the low end, equal hashes in exact
 *     key order.
 *   - Bounded C stack: walks down are loops; the only recursion (building a
 *     trie from many pairs) is at most AMB__HAMT_LEVELS + 1 deep.
 *
 * Edits (the transient form of Clojure, what BEAM's maps:from_list does
 * inside): map.c's amb_map_edit holds a root box of its own, and the nodes
 * an edit makes are its own too, so it changes them in place instead of
 * copying a path per operation. While an edit is open:
 *
 *   edit's HAMT [size | root|OWNED] ──► its HNODE [datamap|cap | ... | kid|OWNED ...]
 *                                                                     │
 *                                    a node it did not make (no OWNED): shared, never
 * written
 *
 *   - A child word (or the root box's word) with the OWNED bit (bit 63: no
 *     user-space address has it) refers to a node the edit made; that node
 *     is reachable from the edit's root through that one word and from
 *     nothing else (its map has not been returned yet), so changing it
 *     changes no other term. A node without the mark (the map the edit
 *     started from, a subtree built in one piece) is copied, with room to
 *     grow, the first time the edit changes it, as a put would.
 *   - An owned node keeps its capacity in words in header bits CAP_SHIFT..
 *     (the datamap is 32 bits from bit 8 and never reaches them); the words
 *     between its size and its capacity are spare.
 *   - amb__hamt_edit_seal clears every mark and capacity (a walk over the
 *     owned nodes only: the marks say where they are), after which the
 *     trie is an ordinary immutable one: the spare words stay behind as
 *     garbage no walker reads (every walker sizes a node by its maps).
 *   - An operation that fails (ENOMEM) leaves the edit's pairs as they
 *     were: it allocates first, and what it has changed by then are copies
 *     of nodes with the same contents.
 *
 * Speed: a get touches one path; at a million pairs that is 4 or 5 nodes,
 * of which the last two are memory misses. The bit counts that index a
 * node use the popcnt instruction: x86-64's baseline lacks it, so the hot
 * functions are compiled twice and one is picked at run time
 * (docs/design/terms.md, "Maps: what a get and a put cost").
 */
#include <stdlib.h>

#include "term_internal.h"

#define SLOTS (1u << AMB__HAMT_BITS)
/* The most words an HNODE takes: 32 pairs. */
#define NODE_MAX_WORDS (2 + 2 * SLOTS)

/* The edit marks (see the top of the file). */
#define OWNED     ((uint64_t)1 << 63)
#define CAP_SHIFT 40
#define CAP_MASK  ((uint64_t)0xff << CAP_SHIFT)

/* Bit counts: the instruction when the target has it or a run-time check
 * finds it (x86-64 without -mpopcnt), else the bit-parallel sum. */
#if defined(__x86_64__) && !defined(__POPCNT__) && \
    (defined(__GNUC__) || defined(__clang__))
#define DISPATCH   1
#define HW_DEFAULT false
#else
#define DISPATCH   0
#define HW_DEFAULT true
#endif

/* The hot functions take `hw` (a constant once inlined into one of their
 * two instances) and are always inlined, so each instance has its own bit
 * count. */
#define HOT static inline __attribute__((always_inline))

HOT unsigned pc(uint32_t x, bool hw)
{
    if (hw)
        return (unsigned)__builtin_popcount(x);
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return (x * 0x01010101u) >> 24;
}

static inline unsigned digit(uint64_t h, unsigned level)
{
    return (unsigned)(h >> (AMB__HAMT_BITS * level)) & (SLOTS - 1);
}

/* The node a child word (or a root box's word) refers to, mark or not. */
static inline uint64_t *node_at(amb_term w)
{
    return amb__box(w & ~OWNED);
}

static inline uint32_t dmap_of(const uint64_t *p)
{
    return (uint32_t)(p[0] >> 8);
}

static inline uint32_t nmap_of(const uint64_t *p)
{
    return (uint32_t)(p[1] >> 1); /* a SMALL term */
}

HOT size_t node_words(const uint64_t *p, bool hw)
{
    return 2 + 2 * (size_t)pc(dmap_of(p), hw) + pc(nmap_of(p), hw);
}

/* =:= for keys, with the common case (immediates, one term) inline. */
static inline bool key_eq(amb_term a, amb_term b)
{
    if (a == b)
        return true;
    return amb__is_boxed(a) && amb__is_boxed(b)
               ? amb_equal(a, b)
               : amb_is_cons(a) && amb_is_cons(b) && amb_equal(a, b);
}

/* ---------------------------------------------------------------------------
 * Making nodes. A change to one node is a copy of it with one slot changed
 * (node_set) or with a pair and/or a child added or dropped (node_write);
 * the path copy of a put or a remove is a chain of these.
 * ------------------------------------------------------------------------ */

/* n words on heap: p's words with word i set to x. */
HOT uint64_t *node_set(amb_heap *heap, const uint64_t *p, size_t n, size_t i, amb_term x)
{
    uint64_t *q = amb__heap_alloc(heap, n);
    if (q != NULL) {
        memcpy(q, p, n * sizeof *q);
        q[i] = x;
    }
    return q;
}

/* Writes node p into d with its data slot dbit switched (a pair (k, v)
 * added where the slot is empty, its pair dropped where it holds one; 0:
 * no change) and likewise its child slot nbit (child c); returns the words
 * written. d must not overlap p. */
HOT size_t node_write(uint64_t *d, const uint64_t *p, uint32_t dbit, amb_term k,
                      amb_term v, uint32_t nbit, amb_term c, bool hw)
{
    uint32_t dmap = dmap_of(p), nmap = nmap_of(p);
    size_t nd = 2 * (size_t)pc(dmap, hw), nn = pc(nmap, hw);
    const uint64_t *src = p + 2;
    uint64_t *w = d + 2;
    d[0] = AMB__HDR(AMB__K_HNODE, dmap ^ dbit);
    d[1] = AMB_SMALL(nmap ^ nbit);
    size_t i = dbit ? 2 * (size_t)pc(dmap & (dbit - 1), hw) : nd;
    memcpy(w, src, i * sizeof *w);
    w += i;
    if (dbit & dmap) {
        i += 2; /* the pair dropped */
    } else if (dbit) {
        *w++ = k;
        *w++ = v;
    }
    memcpy(w, src + i, (nd - i) * sizeof *w);
    w += nd - i;
    src += nd;
    i = nbit ? pc(nmap & (nbit - 1), hw) : nn;
    memcpy(w, src, i * sizeof *w);
    w += i;
    if (nbit & nmap)
        i++; /* the child dropped */
    else if (nbit)
        *w++ = c;
    memcpy(w, src + i, (nn - i) * sizeof *w);
    w += nn - i;
    return (size_t)(w - d);
}

/* node_write onto heap. NULL on ENOMEM. */
HOT uint64_t *node_change(amb_heap *heap, const uint64_t *p, uint32_t dbit, amb_term k,
                          amb_term v, uint32_t nbit, amb_term c, bool hw)
{
    uint32_t dmap = dmap_of(p) ^ dbit, nmap = nmap_of(p) ^ nbit;
    uint64_t *q = amb__heap_alloc(heap, 2 + 2 * (size_t)pc(dmap, hw) + pc(nmap, hw));
    if (q != NULL)
        node_write(q, p, dbit, k, v, nbit, c, hw);
    return q;
}

/* A node with the given maps; the caller fills p[2...]. */
static uint64_t *node_alloc(amb_heap *heap, uint32_t dmap, uint32_t nmap)
{
    uint64_t *p = amb__heap_alloc(heap, 2 + 2 * (size_t)amb__hamt_popcount(dmap) +
                                            amb__hamt_popcount(nmap));
    if (p != NULL) {
        p[0] = AMB__HDR(AMB__K_HNODE, dmap);
        p[1] = AMB_SMALL(nmap);
    }
    return p;
}

/* An HCOLL of n pairs, from the pairs of old (NULL: none) minus index drop
 * (SIZE_MAX: none), plus (k, v) at index add (SIZE_MAX: none), kept in exact
 * key order by the caller's choice of add. */
static amb_term coll_make(amb_heap *heap, const uint64_t *old, size_t oldn, size_t drop,
                          size_t add, amb_term k, amb_term v)
{
    size_t n = oldn - (drop != SIZE_MAX) + (add != SIZE_MAX);
    uint64_t *p = amb__heap_alloc(heap, 1 + 2 * n);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_HCOLL, n);
    amb_term *d = (amb_term *)&p[1];
    for (size_t i = 0; i <= oldn; i++) {
        if (i == add) {
            *d++ = k;
            *d++ = v;
        }
        if (i < oldn && i != drop) {
            *d++ = old[1 + 2 * i];
            *d++ = old[2 + 2 * i];
        }
    }
    return amb__make_box(p);
}

/* The subtree at level that holds two pairs whose hashes agree below it:
 * single-child nodes down to the first level where their digits differ,
 * and there a node with both (an HCOLL when the hashes are equal). */
static amb_term two_pairs(amb_heap *heap, unsigned level, amb_term k1, amb_term v1,
                          uint64_t h1, amb_term k2, amb_term v2, uint64_t h2)
{
    uint64_t diff = h1 ^ h2;
    unsigned split =
        diff == 0 ? AMB__HAMT_LEVELS : (unsigned)__builtin_ctzll(diff) / AMB__HAMT_BITS;
    amb_term t;
    if (split == AMB__HAMT_LEVELS) {
        bool first = amb_compare_exact(k1, k2) < 0;
        uint64_t *p = amb__heap_alloc(heap, 5);
        if (p == NULL)
            return AMB_NONE;
        p[0] = AMB__HDR(AMB__K_HCOLL, 2);
        p[1] = first ? k1 : k2;
        p[2] = first ? v1 : v2;
        p[3] = first ? k2 : k1;
        p[4] = first ? v2 : v1;
        t = amb__make_box(p);
    } else {
        uint32_t b1 = 1u << digit(h1, split), b2 = 1u << digit(h2, split);
        uint64_t *p = node_alloc(heap, b1 | b2, 0);
        if (p == NULL)
            return AMB_NONE;
        bool first = b1 < b2;
        p[2] = first ? k1 : k2;
        p[3] = first ? v1 : v2;
        p[4] = first ? k2 : k1;
        p[5] = first ? v2 : v1;
        t = amb__make_box(p);
    }
    for (unsigned l = split; l-- > level;) {
        uint64_t *p = node_alloc(heap, 0, 1u << digit(h1, l));
        if (p == NULL)
            return AMB_NONE;
        p[2] = t;
        t = amb__make_box(p);
    }
    return t;
}

static amb_term root_make(amb_heap *heap, size_t size, amb_term node)
{
    if (node == AMB_NONE)
        return AMB_NONE;
    uint64_t *p = amb__heap_alloc(heap, 2);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_HAMT, size);
    p[1] = node;
    return amb__make_box(p);
}

/* A step down a trie loads a node's first line with its bitmaps, and only
 * then knows which of its up to 66 words it needs: a second miss in a row.
 * Asking for the next lines at once makes them arrive together (a node
 * of the deep, cold levels is at most 5 lines; the hot levels hit the cache
 * anyway). How many lines was measured (docs/design/terms.md). */
#ifndef PREFETCH_LINES
#define PREFETCH_LINES 4
#endif

static inline void prefetch_node(const uint64_t *p)
{
    for (unsigned i = 1; i <= PREFETCH_LINES; i++)
        __builtin_prefetch(p + 8 * i);
}

/* ---------------------------------------------------------------------------
 * Walking down. Every operation first walks from the root to where its key
 * is or would be, reading only; what it then builds depends on where the
 * walk stopped.
 * ------------------------------------------------------------------------ */

enum stop {
    STOP_EMPTY, /* node[level] has neither pair nor child at the key's slot */
    STOP_KEY,   /* the key's pair: node[level][at], [at + 1] */
    STOP_OTHER, /* another key's pair in the key's slot: node[level][at] */
    STOP_COLL,  /* node[level] is an HCOLL (level AMB__HAMT_LEVELS); at: the
                   key's index in it, or its count when the key is missing */
};

typedef struct path {
    const uint64_t *node[AMB__HAMT_LEVELS + 1];
    unsigned kid[AMB__HAMT_LEVELS]; /* word of node[l] that leads to node[l + 1] */
    unsigned level;                 /* where the walk stopped */
    unsigned at;
    enum stop stop;
} path;

HOT void walk(const uint64_t *root_box, amb_term key, uint64_t h, path *pt, bool hw)
{
    const uint64_t *p = node_at(root_box[1]);
    pt->at = 0;
    for (unsigned level = 0;; level++, h >>= AMB__HAMT_BITS) {
        pt->node[level] = p;
        pt->level = level;
        if (level == AMB__HAMT_LEVELS) {
            size_t n = (size_t)AMB__HDR_PAYLOAD(p[0]), i = 0;
            while (i < n && !key_eq(p[1 + 2 * i], key))
                i++;
            pt->at = (unsigned)i;
            pt->stop = STOP_COLL;
            return;
        }
        uint32_t dmap = dmap_of(p), bit = 1u << (h & (SLOTS - 1));
        if (dmap & bit) {
            pt->at = 2 + 2 * pc(dmap & (bit - 1), hw);
            pt->stop = key_eq(p[pt->at], key) ? STOP_KEY : STOP_OTHER;
            return;
        }
        uint32_t nmap = nmap_of(p);
        if (!(nmap & bit)) {
            pt->stop = STOP_EMPTY;
            return;
        }
        unsigned kid = 2 + 2 * pc(dmap, hw) + pc(nmap & (bit - 1), hw);
        pt->kid[level] = kid;
        p = node_at(p[kid]);
        prefetch_node(p);
    }
}

/* The slot bit of hash h at level (an HNODE's: level < AMB__HAMT_LEVELS;
 * 0 below, where an HCOLL holds the pairs and no slot is read). */
static inline uint32_t bit_at(uint64_t h, unsigned level)
{
    return level < AMB__HAMT_LEVELS ? 1u << digit(h, level) : 0;
}

/* An HCOLL's pair count. */
static inline size_t coll_size(const uint64_t *p)
{
    return (size_t)AMB__HDR_PAYLOAD(p[0]);
}

/* Where key goes among the pairs of an HCOLL (exact key order). */
static size_t coll_place(const uint64_t *p, amb_term key)
{
    size_t n = coll_size(p), at = 0;
    while (at < n && amb_compare_exact(p[1 + 2 * at], key) < 0)
        at++;
    return at;
}

/* ---------------------------------------------------------------------------
 * Get, put, remove (persistent)
 * ------------------------------------------------------------------------ */

HOT bool get_impl(amb_term m, amb_term key, uint64_t h, amb_term *value, bool hw)
{
    const uint64_t *p = node_at(amb__box(m)[1]);
    for (unsigned level = 0; level < AMB__HAMT_LEVELS; level++, h >>= AMB__HAMT_BITS) {
        uint32_t dmap = dmap_of(p), bit = 1u << (h & (SLOTS - 1));
        if (dmap & bit) {
            const amb_term *kv = &p[2 + 2 * pc(dmap & (bit - 1), hw)];
            if (!key_eq(kv[0], key))
                return false;
            *value = kv[1];
            return true;
        }
        uint32_t nmap = nmap_of(p);
        if (!(nmap & bit))
            return false;
        p = node_at(p[2 + 2 * pc(dmap, hw) + pc(nmap & (bit - 1), hw)]);
        prefetch_node(p);
    }
    size_t n = coll_size(p);
    for (size_t i = 0; i < n; i++) {
        if (key_eq(p[1 + 2 * i], key)) {
            *value = p[2 + 2 * i];
            return true;
        }
    }
    return false;
}

/* The nodes of pt above level, copied with `changed` in place of the one
 * below each; the new top node, or AMB_NONE on ENOMEM. */
HOT amb_term rebuild(amb_heap *heap, const path *pt, unsigned level, amb_term changed,
                     bool hw)
{
    while (changed != AMB_NONE && level-- > 0) {
        const uint64_t *p = pt->node[level];
        uint64_t *q = node_set(heap, p, node_words(p, hw), pt->kid[level], changed);
        changed = q != NULL ? amb__make_box(q) : AMB_NONE;
    }
    return changed;
}

static inline amb_term box_or_none(uint64_t *p)
{
    return p != NULL ? amb__make_box(p) : AMB_NONE;
}

HOT int put_impl(amb_heap *heap, amb_term m, amb_term key, amb_term value, uint64_t h,
                 enum amb__hamt_mode mode, amb_term *out, bool hw)
{
    path pt;
    walk(amb__box(m), key, h, &pt, hw);
    const uint64_t *p = pt.node[pt.level];
    uint32_t bit = bit_at(h, pt.level);
    amb_term changed;
    bool grows = true;
    switch (pt.stop) {
    case STOP_KEY:
        if (mode == AMB__HAMT_INSERT || p[pt.at + 1] == value) {
            *out = m;
            return 0;
        }
        changed = box_or_none(node_set(heap, p, node_words(p, hw), pt.at + 1, value));
        grows = false;
        break;
    case STOP_OTHER: {
        if (mode == AMB__HAMT_UPDATE)
            return AMB_ENOTFOUND;
        /* Two keys in one slot: they move down into a subtree. */
        amb_term k = p[pt.at];
        amb_term sub = two_pairs(heap, pt.level + 1, k, p[pt.at + 1], amb__hash_key(k),
                                 key, value, h);
        changed = sub == AMB_NONE ? AMB_NONE
                                  : box_or_none(node_change(heap, p, bit, AMB_NONE,
                                                            AMB_NONE, bit, sub, hw));
        break;
    }
    case STOP_EMPTY:
        if (mode == AMB__HAMT_UPDATE)
            return AMB_ENOTFOUND;
        changed = box_or_none(node_change(heap, p, bit, key, value, 0, AMB_NONE, hw));
        break;
    default: /* STOP_COLL */
        if (pt.at < coll_size(p)) {
            if (mode == AMB__HAMT_INSERT || p[2 + 2 * pt.at] == value) {
                *out = m;
                return 0;
            }
            changed =
                coll_make(heap, p, coll_size(p), pt.at, pt.at, p[1 + 2 * pt.at], value);
            grows = false;
        } else {
            if (mode == AMB__HAMT_UPDATE)
                return AMB_ENOTFOUND;
            changed = coll_make(heap, p, coll_size(p), SIZE_MAX, coll_place(p, key), key,
                                value);
        }
        break;
    }
    changed = rebuild(heap, &pt, pt.level, changed, hw);
    amb_term root = root_make(heap, amb__map_size(m) + grows, changed);
    if (root == AMB_NONE)
        return AMB_ENOMEM;
    *out = root;
    return 0;
}

/* What a remove that walked to pt leaves at its level: a node or HCOLL
 * (*node), or a lone pair (*k, *v) that its parent takes inline (*node
 * AMB_NONE), with *level the level of the node that keeps it: the root, or
 * the nearest node that holds anything besides the child it replaces. The
 * value removed is in *removed. Reads only. */
HOT void remove_plan(const path *pt, unsigned *level, amb_term *removed, amb_term *k,
                     amb_term *v, bool *lone, bool hw)
{
    const uint64_t *p = pt->node[pt->level];
    *lone = false;
    *level = pt->level;
    if (pt->stop == STOP_COLL) {
        *removed = p[2 + 2 * pt->at];
        if (coll_size(p) == 2) {
            *k = p[1 + 2 * (1 - pt->at)];
            *v = p[2 + 2 * (1 - pt->at)];
            *lone = true;
        }
    } else {
        *removed = p[pt->at + 1];
        if (pt->level > 0 && pc(dmap_of(p), hw) == 2 && nmap_of(p) == 0) {
            unsigned other = pt->at == 2 ? 4 : 2;
            *k = p[other];
            *v = p[other + 1];
            *lone = true;
        }
    }
    if (!*lone)
        return;
    /* Single-child nodes above would be left with one pair: they go too. */
    unsigned l = pt->level;
    do
        l--;
    while (l > 0 && dmap_of(pt->node[l]) == 0 && pc(nmap_of(pt->node[l]), hw) == 1);
    *level = l;
}

HOT int remove_impl(amb_heap *heap, amb_term m, amb_term key, uint64_t h, amb_term *value,
                    amb_term *out, bool hw)
{
    path pt;
    walk(amb__box(m), key, h, &pt, hw);
    if (pt.stop == STOP_EMPTY || pt.stop == STOP_OTHER ||
        (pt.stop == STOP_COLL && pt.at == coll_size(pt.node[pt.level])))
        return AMB_ENOTFOUND;
    size_t size = amb__map_size(m);
    unsigned level;
    amb_term removed, k = AMB_NONE, v = AMB_NONE, changed;
    bool lone;
    remove_plan(&pt, &level, &removed, &k, &v, &lone, hw);
    if (size - 1 <= AMB__MAP_FLAT_MAX) {
        /* Back to a flat map: its pairs are the old ones but the key. */
        int rc = amb__map_flatten(heap, m, key, out);
        if (rc == 0 && value != NULL)
            *value = removed;
        return rc;
    }
    const uint64_t *p = pt.node[level];
    if (lone) {
        uint32_t bit = bit_at(h, level);
        changed = box_or_none(node_change(heap, p, bit, k, v, bit, AMB_NONE, hw));
    } else if (pt.stop == STOP_COLL) {
        changed = coll_make(heap, p, coll_size(p), pt.at, SIZE_MAX, AMB_NONE, AMB_NONE);
    } else {
        changed = box_or_none(
            node_change(heap, p, bit_at(h, level), AMB_NONE, AMB_NONE, 0, AMB_NONE, hw));
    }
    changed = rebuild(heap, &pt, level, changed, hw);
    amb_term root = root_make(heap, size - 1, changed);
    if (root == AMB_NONE)
        return AMB_ENOMEM;
    if (value != NULL)
        *value = removed;
    *out = root;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Edits: the same walks, then changes in place on the nodes the edit owns.
 * ------------------------------------------------------------------------ */

static inline size_t cap_of(const uint64_t *p)
{
    return (size_t)((p[0] & CAP_MASK) >> CAP_SHIFT);
}

/* Room for a node of n words that an edit is changing: half as much again
 * (a node that grows in place is copied O(log) times, not once per pair). */
static inline size_t room_for(size_t n)
{
    size_t cap = n + n / 2;
    return cap < 8 ? 8 : cap > NODE_MAX_WORDS ? NODE_MAX_WORDS : cap;
}

/* cap words on heap for an owned node, of which the first n are written by
 * the caller, who then calls own_header. NULL on ENOMEM. */
static inline uint64_t *owned_alloc(amb_heap *heap, size_t cap)
{
    return amb__heap_alloc(heap, cap);
}

static inline void own_header(uint64_t *q, size_t cap)
{
    q[0] = (q[0] & ~CAP_MASK) | ((uint64_t)cap << CAP_SHIFT);
}

/* Makes the nodes pt->node[0..level] the edit's own: each one it did not
 * make is copied (with room to grow) into its parent's slot, top down.
 * Returns the word that refers to node[level] (in the root box or in
 * node[level - 1]), with pt->node[] now the owned nodes; NULL on ENOMEM
 * (the nodes owned so far have the contents they had). */
HOT uint64_t *own_path(amb_heap *heap, uint64_t *root, path *pt, unsigned level, bool hw)
{
    uint64_t *slot = &root[1];
    for (unsigned l = 0;; l++) {
        uint64_t *q = node_at(*slot);
        if (!(*slot & OWNED)) {
            size_t n = node_words(q, hw), cap = room_for(n);
            uint64_t *c = owned_alloc(heap, cap);
            if (c == NULL)
                return NULL;
            memcpy(c, q, n * sizeof *c);
            own_header(c, cap);
            *slot = amb__make_box(c) | OWNED;
            q = c;
        }
        pt->node[l] = q;
        if (l == level)
            return slot;
        slot = &q[pt->kid[l]];
    }
}

/* Node q (owned, referred to by *slot) changed as node_write says: in
 * place when it has the room, else moved to a larger node of the edit's.
 * 0 or ENOMEM (nothing changed). */
HOT int owned_change(amb_heap *heap, uint64_t *slot, uint32_t dbit, amb_term k,
                     amb_term v, uint32_t nbit, amb_term c, bool hw)
{
    uint64_t *q = node_at(*slot);
    uint32_t dmap = dmap_of(q) ^ dbit, nmap = nmap_of(q) ^ nbit;
    size_t n = 2 + 2 * (size_t)pc(dmap, hw) + pc(nmap, hw), cap = cap_of(q);
    uint64_t tmp[NODE_MAX_WORDS];
    if (n <= cap) {
        node_write(tmp, q, dbit, k, v, nbit, c, hw);
        memcpy(q, tmp, n * sizeof *q);
    } else {
        cap = room_for(n);
        uint64_t *g = owned_alloc(heap, cap);
        if (g == NULL)
            return AMB_ENOMEM;
        node_write(g, q, dbit, k, v, nbit, c, hw);
        *slot = amb__make_box(g) | OWNED;
        q = g;
    }
    own_header(q, cap);
    return 0;
}

static inline void set_size(uint64_t *root, size_t size)
{
    root[0] = AMB__HDR(AMB__K_HAMT, size);
}

HOT int edit_put_impl(amb_heap *heap, uint64_t *root, amb_term key, amb_term value,
                      uint64_t h, bool hw)
{
    path pt;
    walk(root, key, h, &pt, hw);
    const uint64_t *p = pt.node[pt.level];
    size_t size = (size_t)AMB__HDR_PAYLOAD(root[0]);
    amb_term sub = AMB_NONE;
    switch (pt.stop) {
    case STOP_KEY:
        if (p[pt.at + 1] == value)
            return 0;
        break;
    case STOP_OTHER: {
        amb_term k = p[pt.at];
        sub = two_pairs(heap, pt.level + 1, k, p[pt.at + 1], amb__hash_key(k), key, value,
                        h);
        break;
    }
    case STOP_EMPTY:
        break;
    default: /* STOP_COLL: HCOLLs are never owned; a changed one is new */
        if (pt.at < coll_size(p)) {
            if (p[2 + 2 * pt.at] == value)
                return 0;
            sub = coll_make(heap, p, coll_size(p), pt.at, pt.at, p[1 + 2 * pt.at], value);
        } else {
            sub = coll_make(heap, p, coll_size(p), SIZE_MAX, coll_place(p, key), key,
                            value);
        }
        break;
    }
    if ((pt.stop == STOP_OTHER || pt.stop == STOP_COLL) && sub == AMB_NONE)
        return AMB_ENOMEM;
    unsigned level = pt.stop == STOP_COLL ? pt.level - 1 : pt.level;
    uint64_t *slot = own_path(heap, root, &pt, level, hw);
    if (slot == NULL)
        return AMB_ENOMEM;
    uint64_t *q = (uint64_t *)pt.node[level];
    uint32_t bit = bit_at(h, level);
    switch (pt.stop) {
    case STOP_KEY:
        q[pt.at + 1] = value;
        return 0;
    case STOP_COLL:
        q[pt.kid[level]] = sub;
        if (pt.at == coll_size(p))
            set_size(root, size + 1);
        return 0;
    default: {
        int rc = pt.stop == STOP_OTHER
                     ? owned_change(heap, slot, bit, AMB_NONE, AMB_NONE, bit, sub, hw)
                     : owned_change(heap, slot, bit, key, value, 0, AMB_NONE, hw);
        if (rc == 0)
            set_size(root, size + 1);
        return rc;
    }
    }
}

HOT int edit_remove_impl(amb_heap *heap, uint64_t *root, amb_term key, uint64_t h,
                         amb_term *value, bool hw)
{
    path pt;
    walk(root, key, h, &pt, hw);
    if (pt.stop == STOP_EMPTY || pt.stop == STOP_OTHER ||
        (pt.stop == STOP_COLL && pt.at == coll_size(pt.node[pt.level])))
        return AMB_ENOTFOUND;
    unsigned level;
    amb_term removed, k = AMB_NONE, v = AMB_NONE, coll = AMB_NONE;
    bool lone;
    remove_plan(&pt, &level, &removed, &k, &v, &lone, hw);
    if (!lone && pt.stop == STOP_COLL) {
        const uint64_t *p = pt.node[pt.level];
        coll = coll_make(heap, p, coll_size(p), pt.at, SIZE_MAX, AMB_NONE, AMB_NONE);
        if (coll == AMB_NONE)
            return AMB_ENOMEM;
        level = pt.level - 1;
    }
    uint64_t *slot = own_path(heap, root, &pt, level, hw);
    if (slot == NULL)
        return AMB_ENOMEM;
    uint32_t bit = bit_at(h, level);
    int rc = 0;
    if (coll != AMB_NONE)
        ((uint64_t *)pt.node[level])[pt.kid[level]] = coll;
    else if (lone)
        rc = owned_change(heap, slot, bit, k, v, bit, AMB_NONE, hw);
    else
        rc = owned_change(heap, slot, bit, AMB_NONE, AMB_NONE, 0, AMB_NONE, hw);
    if (rc != 0)
        return rc;
    set_size(root, (size_t)AMB__HDR_PAYLOAD(root[0]) - 1);
    if (value != NULL)
        *value = removed;
    return 0;
}

/* ---------------------------------------------------------------------------
 * The entry points: one instance of each hot function per bit count.
 * ------------------------------------------------------------------------ */

#if DISPATCH
#define HW_TARGET __attribute__((target("popcnt")))
HW_TARGET static bool get_hw(amb_term m, amb_term key, uint64_t h, amb_term *value)
{
    return get_impl(m, key, h, value, true);
}
HW_TARGET static int put_hw(amb_heap *heap, amb_term m, amb_term key, amb_term value,
                            uint64_t h, enum amb__hamt_mode mode, amb_term *out)
{
    return put_impl(heap, m, key, value, h, mode, out, true);
}
HW_TARGET static int remove_hw(amb_heap *heap, amb_term m, amb_term key, uint64_t h,
                               amb_term *value, amb_term *out)
{
    return remove_impl(heap, m, key, h, value, out, true);
}
HW_TARGET static int edit_put_hw(amb_heap *heap, uint64_t *root, amb_term key,
                                 amb_term value, uint64_t h)
{
    return edit_put_impl(heap, root, key, value, h, true);
}
HW_TARGET static int edit_remove_hw(amb_heap *heap, uint64_t *root, amb_term key,
                                    uint64_t h, amb_term *value)
{
    return edit_remove_impl(heap, root, key, h, value, true);
}
/* Whether this CPU counts bits in one instruction: a load and a test
 * (libgcc's and compiler-rt's constructors fill the CPU model before main). */
#define HAVE_HW() __builtin_cpu_supports("popcnt")
#endif

bool amb__hamt_get(amb_term m, amb_term key, uint64_t h, amb_term *value)
{
#if DISPATCH
    if (HAVE_HW())
        return get_hw(m, key, h, value);
#endif
    return get_impl(m, key, h, value, HW_DEFAULT);
}

int amb__hamt_put(amb_heap *heap, amb_term m, amb_term key, amb_term value, uint64_t h,
                  enum amb__hamt_mode mode, amb_term *out)
{
#if DISPATCH
    if (HAVE_HW())
        return put_hw(heap, m, key, value, h, mode, out);
#endif
    return put_impl(heap, m, key, value, h, mode, out, HW_DEFAULT);
}

int amb__hamt_remove(amb_heap *heap, amb_term m, amb_term key, uint64_t h,
                     amb_term *value, amb_term *out)
{
#if DISPATCH
    if (HAVE_HW())
        return remove_hw(heap, m, key, h, value, out);
#endif
    return remove_impl(heap, m, key, h, value, out, HW_DEFAULT);
}

uint64_t *amb__hamt_edit_begin(amb_heap *heap, amb_term m)
{
    uint64_t *root = amb__heap_alloc(heap, 2);
    if (root != NULL)
        memcpy(root, amb__box(m), 2 * sizeof *root);
    return root;
}

int amb__hamt_edit_put(amb_heap *heap, uint64_t *root, amb_term key, amb_term value,
                       uint64_t h)
{
#if DISPATCH
    if (HAVE_HW())
        return edit_put_hw(heap, root, key, value, h);
#endif
    return edit_put_impl(heap, root, key, value, h, HW_DEFAULT);
}

int amb__hamt_edit_remove(amb_heap *heap, uint64_t *root, amb_term key, uint64_t h,
                          amb_term *value)
{
#if DISPATCH
    if (HAVE_HW())
        return edit_remove_hw(heap, root, key, h, value);
#endif
    return edit_remove_impl(heap, root, key, h, value, HW_DEFAULT);
}

void amb__hamt_edit_seal(uint64_t *root)
{
    if (!(root[1] & OWNED))
        return;
    root[1] &= ~OWNED;
    /* Depth first over the owned nodes only: an owned node's parent is
     * owned (an edit owns a path from the root down), and HCOLLs never are,
     * so the depth is at most AMB__HAMT_LEVELS. */
    struct {
        uint64_t *kid, *end;
    } st[AMB__HAMT_LEVELS];
    unsigned top = 0;
    uint64_t *q = node_at(root[1]);
    for (;;) {
        q[0] &= ~CAP_MASK;
        AMB__CHECK(top < AMB__HAMT_LEVELS);
        uint64_t *kids = q + 2 + 2 * (size_t)amb__hamt_popcount(dmap_of(q));
        st[top].kid = kids;
        st[top++].end = kids + amb__hamt_popcount(nmap_of(q));
        q = NULL;
        while (q == NULL && top > 0) {
            if (st[top - 1].kid == st[top - 1].end) {
                top--;
                continue;
            }
            uint64_t *w = st[top - 1].kid++;
            if (*w & OWNED) {
                *w &= ~OWNED;
                q = node_at(*w);
            }
        }
        if (q == NULL)
            return;
    }
}

/* ---------------------------------------------------------------------------
 * Building a trie from many pairs at once: sort them in iteration order,
 * then make every node once, bottom up (no garbage).
 * ------------------------------------------------------------------------ */

/* Iteration order: hash digits from the low end, then exact key order. */
static int digit_order(uint64_t a, uint64_t b)
{
    uint64_t diff = a ^ b;
    if (diff == 0)
        return 0;
    unsigned level = (unsigned)__builtin_ctzll(diff) / AMB__HAMT_BITS;
    return digit(a, level) < digit(b, level) ? -1 : 1;
}

static int item_cmp(const void *pa, const void *pb)
{
    const amb__hamt_item *a = pa, *b = pb;
    int c = digit_order(a->hash, b->hash);
    if (c == 0 && a->hash == b->hash)
        c = amb_compare_exact(a->key, b->key);
    if (c != 0)
        return c;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* The node at level for items[0..n), n >= 2, sorted, unique. */
static amb_term build(amb_heap *heap, const amb__hamt_item *items, size_t n,
                      unsigned level)
{
    if (level == AMB__HAMT_LEVELS) {
        uint64_t *p = amb__heap_alloc(heap, 1 + 2 * n);
        if (p == NULL)
            return AMB_NONE;
        p[0] = AMB__HDR(AMB__K_HCOLL, n);
        for (size_t i = 0; i < n; i++) {
            p[1 + 2 * i] = items[i].key;
            p[2 + 2 * i] = items[i].value;
        }
        return amb__make_box(p);
    }
    uint32_t dmap = 0, nmap = 0;
    amb_term kids[SLOTS];
    unsigned nkids = 0;
    for (size_t i = 0; i < n;) {
        unsigned d = digit(items[i].hash, level);
        size_t j = i + 1;
        while (j < n && digit(items[j].hash, level) == d)
            j++;
        if (j - i == 1) {
            dmap |= 1u << d;
        } else {
            nmap |= 1u << d;
            if ((kids[nkids++] = build(heap, items + i, j - i, level + 1)) == AMB_NONE)
                return AMB_NONE;
        }
        i = j;
    }
    uint64_t *p = node_alloc(heap, dmap, nmap);
    if (p == NULL)
        return AMB_NONE;
    amb_term *d = (amb_term *)&p[2];
    for (size_t i = 0; i < n;) {
        unsigned dg = digit(items[i].hash, level);
        size_t j = i + 1;
        while (j < n && digit(items[j].hash, level) == dg)
            j++;
        if (j - i == 1) {
            *d++ = items[i].key;
            *d++ = items[i].value;
        }
        i = j;
    }
    memcpy(d, kids, nkids * sizeof *kids);
    return amb__make_box(p);
}

int amb__hamt_build(amb_heap *heap, amb__hamt_item *items, size_t n, bool dups_fail,
                    amb_term *out)
{
    qsort(items, n, sizeof *items, item_cmp);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && items[i].hash == items[i + 1].hash &&
            key_eq(items[i].key, items[i + 1].key)) {
            if (dups_fail)
                return AMB_EEXIST;
            continue; /* a later duplicate follows and wins */
        }
        items[unique++] = items[i];
    }
    if (unique <= AMB__MAP_FLAT_MAX) {
        amb_term keys[AMB__MAP_FLAT_MAX], values[AMB__MAP_FLAT_MAX];
        for (size_t i = 0; i < unique; i++) {
            keys[i] = items[i].key;
            values[i] = items[i].value;
        }
        return amb__map_from_arrays(heap, unique, keys, values, false, out);
    }
    amb_term root = root_make(heap, unique, build(heap, items, unique, 0));
    if (root == AMB_NONE)
        return AMB_ENOMEM;
    *out = root;
    return 0;
}

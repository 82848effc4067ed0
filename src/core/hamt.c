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
 */
#include <stdlib.h>

#include "term_internal.h"

#define SLOTS (1u << AMB__HAMT_BITS)

static inline unsigned digit(uint64_t h, unsigned level)
{
    return (unsigned)(h >> (AMB__HAMT_BITS * level)) & (SLOTS - 1);
}

static inline unsigned popcount(uint32_t x)
{
    return (unsigned)amb__hamt_popcount(x);
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

/* A node's parts. */
typedef struct view {
    const uint64_t *p;
    uint32_t dmap, nmap;
    unsigned nd, nn;
} view;

static inline view view_of(const uint64_t *p)
{
    view v = {.p = p, .dmap = amb__hnode_datamap(p), .nmap = amb__hnode_nodemap(p)};
    v.nd = popcount(v.dmap);
    v.nn = popcount(v.nmap);
    return v;
}

static inline const amb_term *data_of(const view *v)
{
    return (const amb_term *)&v->p[2];
}

static inline const amb_term *kids_of(const view *v)
{
    return (const amb_term *)&v->p[2 + 2 * v->nd];
}

static inline unsigned index_below(uint32_t map, uint32_t bit)
{
    return popcount(map & (bit - 1));
}

static inline bool is_coll(amb_term node)
{
    return amb__box_kind(node) == AMB__K_HCOLL;
}

/* ---------------------------------------------------------------------------
 * Making nodes. Each maker copies one node with one change: the path copy
 * of a put or a remove is a chain of these.
 * ------------------------------------------------------------------------ */

/* A node with the given maps; the caller fills p[2...]. */
static uint64_t *node_alloc(amb_heap *heap, uint32_t dmap, uint32_t nmap)
{
    uint64_t *p = amb__heap_alloc(heap, 2 + 2 * (size_t)popcount(dmap) + popcount(nmap));
    if (p != NULL) {
        p[0] = AMB__HDR(AMB__K_HNODE, dmap);
        p[1] = AMB_SMALL(nmap);
    }
    return p;
}

/* v with data slot bit's value replaced. */
static amb_term node_set_value(amb_heap *heap, const view *v, uint32_t bit,
                               amb_term value)
{
    size_t words = 2 + 2 * (size_t)v->nd + v->nn;
    uint64_t *p = amb__heap_alloc(heap, words);
    if (p == NULL)
        return AMB_NONE;
    memcpy(p, v->p, words * sizeof *p);
    p[3 + 2 * index_below(v->dmap, bit)] = value;
    return amb__make_box(p);
}

/* v with child slot bit replaced. */
static amb_term node_set_child(amb_heap *heap, const view *v, uint32_t bit,
                               amb_term child)
{
    size_t words = 2 + 2 * (size_t)v->nd + v->nn;
    uint64_t *p = amb__heap_alloc(heap, words);
    if (p == NULL)
        return AMB_NONE;
    memcpy(p, v->p, words * sizeof *p);
    p[2 + 2 * v->nd + index_below(v->nmap, bit)] = child;
    return amb__make_box(p);
}

/* Copies v's pairs without the one at drop (0: none) and with (k, val) at
 * add (0: none) into d, in slot order. */
static void copy_data(amb_term *d, const view *v, uint32_t drop, uint32_t add, amb_term k,
                      amb_term val)
{
    const amb_term *src = data_of(v);
    uint32_t dmap = (v->dmap & ~drop) | add;
    for (uint32_t m = dmap; m != 0; m &= m - 1) {
        uint32_t bit = m & -m;
        if (bit == add) {
            *d++ = k;
            *d++ = val;
        } else {
            unsigned i = index_below(v->dmap, bit);
            *d++ = src[2 * i];
            *d++ = src[2 * i + 1];
        }
    }
}

/* The same for children. */
static void copy_kids(amb_term *d, const view *v, uint32_t drop, uint32_t add, amb_term c)
{
    const amb_term *src = kids_of(v);
    uint32_t nmap = (v->nmap & ~drop) | add;
    for (uint32_t m = nmap; m != 0; m &= m - 1) {
        uint32_t bit = m & -m;
        *d++ = bit == add ? c : src[index_below(v->nmap, bit)];
    }
}

/* v with its data slots changed (drop a pair, add one) and its child slots
 * changed (drop a child, add one): every structural change is one of these.
 * A bit is 0 when there is nothing to drop or add. */
static amb_term node_change(amb_heap *heap, const view *v, uint32_t ddrop, uint32_t dadd,
                            amb_term k, amb_term val, uint32_t ndrop, uint32_t nadd,
                            amb_term child)
{
    uint32_t dmap = (v->dmap & ~ddrop) | dadd, nmap = (v->nmap & ~ndrop) | nadd;
    uint64_t *p = node_alloc(heap, dmap, nmap);
    if (p == NULL)
        return AMB_NONE;
    copy_data((amb_term *)&p[2], v, ddrop, dadd, k, val);
    copy_kids((amb_term *)&p[2 + 2 * (size_t)popcount(dmap)], v, ndrop, nadd, child);
    return amb__make_box(p);
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

/* ---------------------------------------------------------------------------
 * Get, put, remove
 * ------------------------------------------------------------------------ */

bool amb__hamt_get(amb_term m, amb_term key, uint64_t h, amb_term *value)
{
    amb_term node = amb__box(m)[1];
    for (unsigned level = 0;; level++) {
        const uint64_t *p = amb__box(node);
        if (AMB__HDR_KIND(p[0]) == AMB__K_HCOLL) {
            size_t n = (size_t)AMB__HDR_PAYLOAD(p[0]);
            for (size_t i = 0; i < n; i++) {
                if (key_eq(p[1 + 2 * i], key)) {
                    *value = p[2 + 2 * i];
                    return true;
                }
            }
            return false;
        }
        uint32_t dmap = amb__hnode_datamap(p), bit = 1u << digit(h, level);
        if (dmap & bit) {
            unsigned i = index_below(dmap, bit);
            if (!key_eq(p[2 + 2 * i], key))
                return false;
            *value = p[3 + 2 * i];
            return true;
        }
        uint32_t nmap = amb__hnode_nodemap(p);
        if (!(nmap & bit))
            return false;
        node = p[2 + 2 * popcount(dmap) + index_below(nmap, bit)];
    }
}

/* The nodes from the root down to where a walk for hash h stopped. */
typedef struct path {
    const uint64_t *node[AMB__HAMT_LEVELS + 1];
    unsigned depth; /* node[depth] is where the walk stopped */
} path;

/* Rebuilds the path above node[level] with `child` in place of it. */
static amb_term rebuild(amb_heap *heap, const path *pt, unsigned level, uint64_t h,
                        amb_term child)
{
    while (child != AMB_NONE && level-- > 0) {
        view v = view_of(pt->node[level]);
        child = node_set_child(heap, &v, 1u << digit(h, level), child);
    }
    return child;
}

int amb__hamt_put(amb_heap *heap, amb_term m, amb_term key, amb_term value, uint64_t h,
                  enum amb__hamt_mode mode, amb_term *out)
{
    size_t size = amb__map_size(m);
    path pt;
    amb_term node = amb__box(m)[1], changed;
    bool grows = false;
    unsigned level = 0;
    for (;; level++) {
        pt.node[level] = amb__box(node);
        if (is_coll(node)) {
            const uint64_t *p = pt.node[level];
            size_t n = (size_t)AMB__HDR_PAYLOAD(p[0]), at = n;
            for (size_t i = 0; i < n; i++) {
                if (key_eq(p[1 + 2 * i], key)) {
                    if (mode == AMB__HAMT_INSERT || p[2 + 2 * i] == value) {
                        *out = m;
                        return 0;
                    }
                    changed = coll_make(heap, p, n, i, i, p[1 + 2 * i], value);
                    goto done;
                }
                if (at == n && amb_compare_exact(key, p[1 + 2 * i]) < 0)
                    at = i;
            }
            if (mode == AMB__HAMT_UPDATE)
                return AMB_ENOTFOUND;
            changed = coll_make(heap, p, n, SIZE_MAX, at, key, value);
            grows = true;
            goto done;
        }
        view v = view_of(pt.node[level]);
        uint32_t bit = 1u << digit(h, level);
        if (v.dmap & bit) {
            unsigned i = index_below(v.dmap, bit);
            amb_term k = data_of(&v)[2 * i];
            if (key_eq(k, key)) {
                if (mode == AMB__HAMT_INSERT || data_of(&v)[2 * i + 1] == value) {
                    *out = m;
                    return 0;
                }
                changed = node_set_value(heap, &v, bit, value);
                goto done;
            }
            if (mode == AMB__HAMT_UPDATE)
                return AMB_ENOTFOUND;
            /* Two keys in one slot: they move down into a subtree. */
            amb_term sub = two_pairs(heap, level + 1, k, data_of(&v)[2 * i + 1],
                                     amb__hash_key(k), key, value, h);
            changed = sub == AMB_NONE ? AMB_NONE
                                      : node_change(heap, &v, bit, 0, AMB_NONE, AMB_NONE,
                                                    0, bit, sub);
            grows = true;
            goto done;
        }
        if (v.nmap & bit) {
            node = kids_of(&v)[index_below(v.nmap, bit)];
            continue;
        }
        if (mode == AMB__HAMT_UPDATE)
            return AMB_ENOTFOUND;
        changed = node_change(heap, &v, 0, bit, key, value, 0, 0, AMB_NONE);
        grows = true;
        goto done;
    }
done:
    changed = rebuild(heap, &pt, level, h, changed);
    amb_term root = root_make(heap, size + grows, changed);
    if (root == AMB_NONE)
        return AMB_ENOMEM;
    *out = root;
    return 0;
}

int amb__hamt_remove(amb_heap *heap, amb_term m, amb_term key, uint64_t h,
                     amb_term *value, amb_term *out)
{
    size_t size = amb__map_size(m);
    path pt;
    amb_term node = amb__box(m)[1];
    /* What replaces node[level] in its parent: a node (changed), or a lone
     * pair (k, v) that the parent takes inline (changed == AMB_NONE). */
    amb_term changed = AMB_NONE, k = AMB_NONE, v = AMB_NONE, removed;
    unsigned level = 0;
    for (;; level++) {
        pt.node[level] = amb__box(node);
        const uint64_t *p = pt.node[level];
        if (is_coll(node)) {
            size_t n = (size_t)AMB__HDR_PAYLOAD(p[0]), i = 0;
            while (i < n && !key_eq(p[1 + 2 * i], key))
                i++;
            if (i == n)
                return AMB_ENOTFOUND;
            removed = p[2 + 2 * i];
            if (n == 2) {
                k = p[1 + 2 * (1 - i)];
                v = p[2 + 2 * (1 - i)];
            } else if ((changed = coll_make(heap, p, n, i, SIZE_MAX, AMB_NONE,
                                            AMB_NONE)) == AMB_NONE) {
                return AMB_ENOMEM;
            }
            break;
        }
        view vw = view_of(p);
        uint32_t bit = 1u << digit(h, level);
        if (vw.dmap & bit) {
            unsigned i = index_below(vw.dmap, bit);
            if (!key_eq(data_of(&vw)[2 * i], key))
                return AMB_ENOTFOUND;
            removed = data_of(&vw)[2 * i + 1];
            if (level > 0 && vw.nd == 2 && vw.nn == 0) {
                unsigned other = 1 - i;
                k = data_of(&vw)[2 * other];
                v = data_of(&vw)[2 * other + 1];
            } else if ((changed = node_change(heap, &vw, bit, 0, AMB_NONE, AMB_NONE, 0, 0,
                                              AMB_NONE)) == AMB_NONE) {
                return AMB_ENOMEM;
            }
            break;
        }
        if (!(vw.nmap & bit))
            return AMB_ENOTFOUND;
        node = kids_of(&vw)[index_below(vw.nmap, bit)];
    }
    if (size - 1 <= AMB__MAP_FLAT_MAX) {
        /* Back to a flat map: its pairs are the old ones but the key. */
        amb_term keys[AMB__MAP_FLAT_MAX], values[AMB__MAP_FLAT_MAX];
        amb_map_iter it;
        amb_term ik, iv;
        size_t n = 0;
        amb_map_iterator(m, &it);
        while (amb_map_next(&it, &ik, &iv))
            if (!key_eq(ik, key)) {
                keys[n] = ik;
                values[n++] = iv;
            }
        int rc = amb__map_from_arrays(heap, n, keys, values, false, out);
        if (rc == 0 && value != NULL)
            *value = removed;
        return rc;
    }
    /* Hand a lone pair up until a node keeps it: the root, or a node that
     * holds anything besides the child it replaces. */
    while (changed == AMB_NONE) {
        AMB__CHECK(level > 0);
        level--;
        view vw = view_of(pt.node[level]);
        uint32_t bit = 1u << digit(h, level);
        if (level > 0 && vw.nd == 0 && vw.nn == 1)
            continue;
        changed = node_change(heap, &vw, 0, bit, k, v, bit, 0, AMB_NONE);
        if (changed == AMB_NONE)
            return AMB_ENOMEM;
    }
    changed = rebuild(heap, &pt, level, h, changed);
    amb_term root = root_make(heap, size - 1, changed);
    if (root == AMB_NONE)
        return AMB_ENOMEM;
    if (value != NULL)
        *value = removed;
    *out = root;
    return 0;
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

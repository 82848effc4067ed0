/*
 * map.c - maps: the public operations of term.h, flat maps, and walking
 * either kind. A map of up to AMB__MAP_FLAT_MAX pairs is flat (its keys
 * sorted in exact term order, then its values: a lookup is a binary
 * search); a larger one is a hash trie (hamt.c). Each operation here picks
 * the kind of its result by the result's size, so a map is always the one
 * canonical form of its pairs (term_internal.h).
 *
 * Invariants:
 *   - Maps are immutable: every operation builds its result on the heap it
 *     is given and leaves its arguments as they were; a result may share
 *     words with its arguments (a trie shares every node it did not
 *     change), and is the argument itself when nothing changes.
 *   - Iteration order: a flat map's keys in exact order; a trie's in the
 *     trie's order (hamt.c). Every walker (the iterator, the printer, the
 *     ETF encoder) goes through amb__map_node_next, so they all agree.
 */
#include <stdlib.h>

#include "term_internal.h"

/* =:= for keys, with the common case (immediates, one term) inline. */
static inline bool key_eq(amb_term a, amb_term b)
{
    return a == b || ((amb__is_boxed(a) || amb_is_cons(a)) && amb_equal(a, b));
}

/* amb_is_map without the call: a map is a flat or trie box. */
static inline bool is_map(amb_term m)
{
    return amb__is_map_box(m);
}

static bool is_trie(amb_term m)
{
    return amb__box_kind(m) == AMB__K_HAMT;
}

/* ---------------------------------------------------------------------------
 * Flat maps
 * ------------------------------------------------------------------------ */

/* The index of key in flat map m (true), or where it would go (false). */
static bool flat_find(amb_term m, amb_term key, size_t *index)
{
    size_t lo = 0, hi = amb__map_size(m);
    const amb_term *keys = amb__map_keys(m);
    /* An immediate key is found by == without ordering: cheaper than a
     * binary search of compare calls for the small maps most messages
     * carry. */
    if (!amb__is_boxed(key) && !amb_is_cons(key)) {
        for (size_t i = 0; i < hi; i++)
            if (keys[i] == key) {
                *index = i;
                return true;
            }
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = amb_compare_exact(keys[mid], key);
        if (c == 0) {
            *index = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *index = lo;
    return false;
}

/* A flat map of n pairs: keys[0..n) are at least ordered, and skipped is
 * an index to leave out (SIZE_MAX: none), with (key, value) added at
 * index at (SIZE_MAX: none) of the result. */
static amb_term flat_make(amb_heap *heap, size_t n, const amb_term *keys,
                          const amb_term *values, size_t skipped, size_t at, amb_term key,
                          amb_term value)
{
    size_t size = n - (skipped != SIZE_MAX) + (at != SIZE_MAX);
    uint64_t *p = amb__heap_alloc(heap, 1 + 2 * size);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_MAP, size);
    amb_term *nk = (amb_term *)&p[1], *nv = (amb_term *)&p[1 + size];
    size_t j = 0;
    for (size_t i = 0; i <= n; i++) {
        if (j == at) {
            nk[j] = key;
            nv[j++] = value;
        }
        if (i < n && i != skipped) {
            nk[j] = keys[i];
            nv[j++] = values[i];
        }
    }
    return amb__make_box(p);
}

typedef struct pair {
    amb_term key, value;
    size_t pos;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    int c = amb_compare_exact(x->key, y->key);
    if (c != 0)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The hash of a key, as amb_hash gives it. */
static inline uint64_t key_hash(amb_term key)
{
    return amb__hash_key(key);
}

int amb__map_from_arrays(amb_heap *heap, size_t n, const amb_term *keys,
                         const amb_term *values, bool dups_fail, amb_term *out)
{
    if (n > AMB__MAP_FLAT_MAX) {
        if (n > SIZE_MAX / sizeof(amb__hamt_item))
            return AMB_ENOMEM;
        amb__hamt_item *items = amb__malloc(n * sizeof *items);
        if (items == NULL)
            return AMB_ENOMEM;
        for (size_t i = 0; i < n; i++)
            items[i] = (amb__hamt_item){key_hash(keys[i]), keys[i], values[i], i};
        int rc = amb__hamt_build(heap, items, n, dups_fail, out);
        amb__free(items);
        return rc;
    }
    pair pairs[AMB__MAP_FLAT_MAX];
    for (size_t i = 0; i < n; i++)
        pairs[i] = (pair){keys[i], values[i], i};
    qsort(pairs, n, sizeof *pairs, pair_cmp);
    /* Of equal keys the one given last wins (it sorts after the others). */
    amb_term k[AMB__MAP_FLAT_MAX], v[AMB__MAP_FLAT_MAX];
    size_t unique = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && amb_equal(pairs[i].key, pairs[i + 1].key)) {
            if (dups_fail)
                return AMB_EEXIST;
            continue;
        }
        k[unique] = pairs[i].key;
        v[unique++] = pairs[i].value;
    }
    amb_term m = flat_make(heap, unique, k, v, SIZE_MAX, SIZE_MAX, AMB_NONE, AMB_NONE);
    if (m == AMB_NONE)
        return AMB_ENOMEM;
    *out = m;
    return 0;
}

/* A flat map of AMB__MAP_FLAT_MAX pairs and one more key: a trie. */
static int flat_grow(amb_heap *heap, amb_term m, amb_term key, amb_term value,
                     amb_term *out)
{
    amb__hamt_item items[AMB__MAP_FLAT_MAX + 1];
    size_t n = amb__map_size(m);
    const amb_term *keys = amb__map_keys(m), *values = amb__map_values(m);
    for (size_t i = 0; i < n; i++)
        items[i] = (amb__hamt_item){key_hash(keys[i]), keys[i], values[i], i};
    items[n] = (amb__hamt_item){key_hash(key), key, value, n};
    return amb__hamt_build(heap, items, n + 1, false, out);
}

/* ---------------------------------------------------------------------------
 * One put, remove and get for both kinds
 * ------------------------------------------------------------------------ */

static int map_put(amb_heap *heap, amb_term m, amb_term key, amb_term value,
                   enum amb__hamt_mode mode, amb_term *out)
{
    if (is_trie(m))
        return amb__hamt_put(heap, m, key, value, key_hash(key), mode, out);
    size_t n = amb__map_size(m), at;
    const amb_term *keys = amb__map_keys(m), *values = amb__map_values(m);
    amb_term r;
    if (flat_find(m, key, &at)) {
        if (mode == AMB__HAMT_INSERT || values[at] == value) {
            *out = m;
            return 0;
        }
        r = flat_make(heap, n, keys, values, at, at, keys[at], value);
    } else if (mode == AMB__HAMT_UPDATE) {
        return AMB_ENOTFOUND;
    } else if (n == AMB__MAP_FLAT_MAX) {
        return flat_grow(heap, m, key, value, out);
    } else {
        r = flat_make(heap, n, keys, values, SIZE_MAX, at, key, value);
    }
    if (r == AMB_NONE)
        return AMB_ENOMEM;
    *out = r;
    return 0;
}

static int map_remove(amb_heap *heap, amb_term m, amb_term key, amb_term *value,
                      amb_term *out)
{
    if (is_trie(m))
        return amb__hamt_remove(heap, m, key, key_hash(key), value, out);
    size_t at;
    if (!flat_find(m, key, &at))
        return AMB_ENOTFOUND;
    const amb_term *values = amb__map_values(m);
    amb_term r = flat_make(heap, amb__map_size(m), amb__map_keys(m), values, at, SIZE_MAX,
                           AMB_NONE, AMB_NONE);
    if (r == AMB_NONE)
        return AMB_ENOMEM;
    if (value != NULL)
        *value = values[at];
    *out = r;
    return 0;
}

static bool map_get(amb_term m, amb_term key, amb_term *value)
{
    if (is_trie(m))
        return amb__hamt_get(m, key, key_hash(key), value);
    size_t at;
    if (!flat_find(m, key, &at))
        return false;
    *value = amb__map_values(m)[at];
    return true;
}

/* ---------------------------------------------------------------------------
 * Walking
 * ------------------------------------------------------------------------ */

enum amb__map_step amb__map_node_next(amb_term node, size_t *pos, amb_term *out)
{
    const uint64_t *p = amb__box(node);
    size_t n = (size_t)AMB__HDR_PAYLOAD(p[0]), i = *pos;
    switch (AMB__HDR_KIND(p[0])) {
    case AMB__K_MAP:
        if (i >= 2 * n)
            return AMB__MAP_END;
        *out = p[1 + i / 2 + (i & 1) * n];
        *pos = i + 1;
        return (i & 1) ? AMB__MAP_VALUE : AMB__MAP_KEY;
    case AMB__K_HCOLL:
        if (i >= 2 * n)
            return AMB__MAP_END;
        *out = p[1 + i];
        *pos = i + 1;
        return (i & 1) ? AMB__MAP_VALUE : AMB__MAP_KEY;
    case AMB__K_HAMT:
        if (i > 0)
            return AMB__MAP_END;
        *out = p[1];
        *pos = 1;
        return AMB__MAP_CHILD;
    default: { /* HNODE: pos is slot << 1, | 1 between a key and its value */
        uint32_t dmap = amb__hnode_datamap(p), nmap = amb__hnode_nodemap(p);
        size_t slot = i >> 1;
        if (i & 1) {
            unsigned d = (unsigned)amb__hamt_popcount(dmap & ((1u << slot) - 1));
            *out = p[3 + 2 * d];
            *pos = (slot + 1) << 1;
            return AMB__MAP_VALUE;
        }
        uint64_t left = (uint64_t)(dmap | nmap) & ~(((uint64_t)1 << slot) - 1);
        if (left == 0)
            return AMB__MAP_END;
        unsigned s = (unsigned)__builtin_ctzll(left);
        uint32_t bit = 1u << s;
        if (dmap & bit) {
            *out = p[2 + 2 * (size_t)amb__hamt_popcount(dmap & (bit - 1))];
            *pos = (size_t)s << 1 | 1;
            return AMB__MAP_KEY;
        }
        *out = p[2 + 2 * (size_t)amb__hamt_popcount(dmap) +
                 (size_t)amb__hamt_popcount(nmap & (bit - 1))];
        *pos = (size_t)(s + 1) << 1;
        return AMB__MAP_CHILD;
    }
    }
}

int amb_map_iterator(amb_term m, amb_map_iter *it)
{
    if (it == NULL)
        return AMB__MISUSE();
    if (!is_map(m))
        return AMB_ETYPE;
    it->node_[0] = m;
    it->pos_[0] = 0;
    it->depth_ = 1;
    return 0;
}

bool amb_map_next(amb_map_iter *it, amb_term *key, amb_term *value)
{
    while (it->depth_ > 0) {
        size_t d = it->depth_ - 1;
        amb_term t;
        switch (amb__map_node_next(it->node_[d], &it->pos_[d], &t)) {
        case AMB__MAP_KEY: {
            amb_term v;
            enum amb__map_step s = amb__map_node_next(it->node_[d], &it->pos_[d], &v);
            AMB__CHECK(s == AMB__MAP_VALUE);
            if (key != NULL)
                *key = t;
            if (value != NULL)
                *value = v;
            return true;
        }
        case AMB__MAP_CHILD:
            AMB__CHECK(it->depth_ < AMB_COUNTOF(it->node_));
            it->node_[it->depth_] = t;
            it->pos_[it->depth_++] = 0;
            break;
        default:
            it->depth_--;
            break;
        }
    }
    return false;
}

int amb__map_flatten(amb_heap *heap, amb_term m, amb_term skip, amb_term *out)
{
    amb_term keys[AMB__MAP_FLAT_MAX], values[AMB__MAP_FLAT_MAX];
    amb_map_iter it;
    amb_term k, v;
    size_t n = 0;
    amb_map_iterator(m, &it);
    while (amb_map_next(&it, &k, &v)) {
        if (skip != AMB_NONE && key_eq(k, skip))
            continue;
        AMB__CHECK(n < AMB__MAP_FLAT_MAX);
        keys[n] = k;
        values[n++] = v;
    }
    return amb__map_from_arrays(heap, n, keys, values, false, out);
}

amb_term amb__map_sorted(amb_heap *heap, amb_term m)
{
    size_t n = amb__map_size(m);
    if (!is_trie(m))
        return m;
    pair *pairs = amb__malloc(n * sizeof *pairs);
    if (pairs == NULL)
        return AMB_NONE;
    amb_map_iter it;
    amb_map_iterator(m, &it);
    for (size_t i = 0; amb_map_next(&it, &pairs[i].key, &pairs[i].value); i++)
        pairs[i].pos = i;
    qsort(pairs, n, sizeof *pairs, pair_cmp);
    uint64_t *p = amb__heap_alloc(heap, 1 + 2 * n);
    if (p != NULL) {
        p[0] = AMB__HDR(AMB__K_MAP, n);
        for (size_t i = 0; i < n; i++) {
            p[1 + i] = pairs[i].key;
            p[1 + n + i] = pairs[i].value;
        }
    }
    amb__free(pairs);
    return p != NULL ? amb__make_box(p) : AMB_NONE;
}

/* ---------------------------------------------------------------------------
 * The public operations
 * ------------------------------------------------------------------------ */

amb_term amb_map(amb_heap *heap, size_t n, const amb_term *keys, const amb_term *values)
{
    if (heap == NULL || (n > 0 && (keys == NULL || values == NULL)))
        return AMB_NONE;
    for (size_t i = 0; i < n; i++)
        if (keys[i] == AMB_NONE || values[i] == AMB_NONE)
            return AMB_NONE;
    amb_term m;
    return amb__map_from_arrays(heap, n, keys, values, false, &m) == 0 ? m : AMB_NONE;
}

/* The checks every operation on one key makes. */
static bool key_op_ok(amb_heap *heap, amb_term m, amb_term key)
{
    return heap != NULL && key != AMB_NONE && is_map(m);
}

amb_term amb_map_put(amb_heap *heap, amb_term m, amb_term key, amb_term value)
{
    amb_term r;
    if (!key_op_ok(heap, m, key) || value == AMB_NONE)
        return AMB_NONE;
    return map_put(heap, m, key, value, AMB__HAMT_PUT, &r) == 0 ? r : AMB_NONE;
}

int amb_map_update(amb_heap *heap, amb_term m, amb_term key, amb_term value,
                   amb_term *out)
{
    if (heap == NULL || key == AMB_NONE || value == AMB_NONE || out == NULL)
        return AMB__MISUSE();
    if (!is_map(m))
        return AMB_ETYPE;
    return map_put(heap, m, key, value, AMB__HAMT_UPDATE, out);
}

amb_term amb_map_remove(amb_heap *heap, amb_term m, amb_term key)
{
    amb_term r;
    if (!key_op_ok(heap, m, key))
        return AMB_NONE;
    int rc = map_remove(heap, m, key, NULL, &r);
    return rc == 0 ? r : rc == AMB_ENOTFOUND ? m : AMB_NONE;
}

int amb_map_take(amb_heap *heap, amb_term m, amb_term key, amb_term *value,
                 amb_term *rest)
{
    if (heap == NULL || key == AMB_NONE || value == NULL || rest == NULL)
        return AMB__MISUSE();
    if (!is_map(m))
        return AMB_ETYPE;
    amb_term v, r;
    int rc = map_remove(heap, m, key, &v, &r);
    if (rc == 0) {
        *value = v;
        *rest = r;
    }
    return rc;
}

size_t amb_map_size(amb_term m)
{
    return is_map(m) ? amb__map_size(m) : 0;
}

int amb_map_get(amb_term m, amb_term key, amb_term *value)
{
    if (value == NULL || key == AMB_NONE)
        return AMB__MISUSE();
    if (!is_map(m))
        return AMB_ETYPE;
    return map_get(m, key, value) ? 0 : AMB_ENOTFOUND;
}

amb_term amb_map_merge(amb_heap *heap, amb_term m1, amb_term m2)
{
    if (heap == NULL || !is_map(m1) || !is_map(m2))
        return AMB_NONE;
    size_t n1 = amb__map_size(m1), n2 = amb__map_size(m2);
    if (n1 + n2 <= AMB__MAP_FLAT_MAX) {
        /* Both flat and small: one build, m2's pairs last so they win. */
        amb_term k[AMB__MAP_FLAT_MAX], v[AMB__MAP_FLAT_MAX];
        memcpy(k, amb__map_keys(m1), n1 * sizeof *k);
        memcpy(v, amb__map_values(m1), n1 * sizeof *v);
        memcpy(k + n1, amb__map_keys(m2), n2 * sizeof *k);
        memcpy(v + n1, amb__map_values(m2), n2 * sizeof *v);
        return amb_map(heap, n1 + n2, k, v);
    }
    /* Put the smaller map's pairs into the larger: m2's values win, so
     * m1's pairs go into m2 only where m2 lacks the key. */
    bool into_m2 = n2 >= n1;
    amb_term acc = into_m2 ? m2 : m1;
    amb_map_iter it;
    amb_term k, v;
    amb_map_iterator(into_m2 ? m1 : m2, &it);
    while (amb_map_next(&it, &k, &v))
        if (map_put(heap, acc, k, v, into_m2 ? AMB__HAMT_INSERT : AMB__HAMT_PUT, &acc) !=
            0)
            return AMB_NONE;
    return acc;
}

/* A list of m's keys (want_values false) or values, in iteration order. */
static amb_term map_list(amb_heap *heap, amb_term m, bool want_values)
{
    if (heap == NULL || !is_map(m))
        return AMB_NONE;
    size_t n = amb__map_size(m);
    if (n == 0)
        return AMB_NIL;
    amb_term *cells = (amb_term *)amb__heap_alloc(heap, 2 * n);
    if (cells == NULL)
        return AMB_NONE;
    amb_map_iter it;
    amb_term k, v;
    amb_map_iterator(m, &it);
    for (size_t i = 0; amb_map_next(&it, &k, &v); i++) {
        cells[2 * i] = want_values ? v : k;
        cells[2 * i + 1] = i + 1 < n ? amb__make_cons(&cells[2 * (i + 1)]) : AMB_NIL;
    }
    return amb__make_cons(cells);
}

amb_term amb_map_keys(amb_heap *heap, amb_term m)
{
    return map_list(heap, m, false);
}

amb_term amb_map_values(amb_heap *heap, amb_term m)
{
    return map_list(heap, m, true);
}

/* ---------------------------------------------------------------------------
 * Edits (term.h): a flat map takes the ordinary operations (it is at most
 * 65 words); a trie gets a root box of the edit's own at its first change,
 * and hamt.c changes the nodes the edit owns in place.
 * ------------------------------------------------------------------------ */

static inline bool edit_open(const amb_map_edit *e)
{
    return e != NULL && e->heap_ != NULL;
}

/* The edit's trie as a root box it owns: 0 or AMB_ENOMEM. */
static int edit_own(amb_map_edit *e)
{
    if (e->own_)
        return 0;
    uint64_t *root = amb__hamt_edit_begin(e->heap_, e->map_);
    if (root == NULL)
        return AMB_ENOMEM;
    e->map_ = amb__make_box(root);
    e->own_ = true;
    return 0;
}

int amb_map_edit_init(amb_map_edit *e, amb_heap *heap, amb_term m)
{
    if (e == NULL || heap == NULL)
        return AMB__MISUSE();
    if (!is_map(m))
        return AMB_ETYPE;
    *e = (amb_map_edit){.heap_ = heap, .map_ = m, .own_ = false};
    return 0;
}

int amb_map_edit_put(amb_map_edit *e, amb_term key, amb_term value)
{
    if (!edit_open(e) || key == AMB_NONE || value == AMB_NONE)
        return AMB__MISUSE();
    if (!is_trie(e->map_))
        return map_put(e->heap_, e->map_, key, value, AMB__HAMT_PUT, &e->map_);
    int rc = edit_own(e);
    return rc != 0 ? rc
                   : amb__hamt_edit_put(e->heap_, amb__box(e->map_), key, value,
                                        key_hash(key));
}

int amb_map_edit_remove(amb_map_edit *e, amb_term key, amb_term *value)
{
    if (!edit_open(e) || key == AMB_NONE)
        return AMB__MISUSE();
    if (!is_trie(e->map_))
        return map_remove(e->heap_, e->map_, key, value, &e->map_);
    int rc = edit_own(e);
    return rc != 0 ? rc
                   : amb__hamt_edit_remove(e->heap_, amb__box(e->map_), key,
                                           key_hash(key), value);
}

int amb_map_edit_get(const amb_map_edit *e, amb_term key, amb_term *value)
{
    if (!edit_open(e) || key == AMB_NONE || value == NULL)
        return AMB__MISUSE();
    return map_get(e->map_, key, value) ? 0 : AMB_ENOTFOUND;
}

size_t amb_map_edit_size(const amb_map_edit *e)
{
    return edit_open(e) ? amb__map_size(e->map_) : 0;
}

int amb_map_edit_end(amb_map_edit *e, amb_term *out)
{
    if (!edit_open(e) || out == NULL)
        return AMB__MISUSE();
    if (e->own_) {
        amb__hamt_edit_seal(amb__box(e->map_));
        e->own_ = false;
    }
    /* Removes inside the edit left a trie of 32 pairs or fewer: its
     * canonical form is flat. */
    if (is_trie(e->map_) && amb__map_size(e->map_) <= AMB__MAP_FLAT_MAX) {
        int rc = amb__map_flatten(e->heap_, e->map_, AMB_NONE, &e->map_);
        if (rc != 0)
            return rc;
    }
    *out = e->map_;
    *e = (amb_map_edit){.heap_ = NULL, .map_ = AMB_NONE, .own_ = false};
    return 0;
}

/*
 * map.c - maps: building them from pairs, putting a key, looking one up,
 * and walking the pairs.
 *
 * Invariant (layout in term_internal.h): a map's keys are unique and sorted
 * by amb_compare_exact, so a lookup is a binary search and two equal maps
 * have their pairs in the same order.
 */
#include <stdlib.h>

#include "term_internal.h"

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

/* Sorts pairs by key; of equal keys the one given last wins. Writes the
 * unique pairs to the new map box. */
static amb_term map_build(amb_heap *heap, pair *pairs, size_t n)
{
    qsort(pairs, n, sizeof *pairs, pair_cmp);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && amb_equal(pairs[i].key, pairs[i + 1].key))
            continue; /* a later duplicate follows and wins */
        pairs[unique++] = pairs[i];
    }
    uint64_t *p = amb__heap_alloc(heap, 1 + 2 * unique);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_MAP, unique);
    for (size_t i = 0; i < unique; i++) {
        p[1 + i] = pairs[i].key;
        p[1 + unique + i] = pairs[i].value;
    }
    return amb__make_box(p);
}

amb_term amb_map(amb_heap *heap, size_t n, const amb_term *keys, const amb_term *values)
{
    if (heap == NULL || (n > 0 && (keys == NULL || values == NULL)) ||
        n > SIZE_MAX / sizeof(pair))
        return AMB_NONE;
    for (size_t i = 0; i < n; i++)
        if (keys[i] == AMB_NONE || values[i] == AMB_NONE)
            return AMB_NONE;
    pair small[16];
    pair *pairs = n <= AMB_COUNTOF(small) ? small : amb__malloc(n * sizeof *pairs);
    if (pairs == NULL)
        return AMB_NONE;
    for (size_t i = 0; i < n; i++)
        pairs[i] = (pair){keys[i], values[i], i};
    amb_term m = map_build(heap, pairs, n);
    if (pairs != small)
        amb__free(pairs);
    return m;
}

static bool map_find(amb_term m, amb_term key, size_t *index)
{
    size_t lo = 0, hi = amb__map_size(m);
    const amb_term *keys = amb__map_keys(m);
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

amb_term amb_map_put(amb_heap *heap, amb_term m, amb_term key, amb_term value)
{
    if (heap == NULL || !amb_is_map(m) || key == AMB_NONE || value == AMB_NONE)
        return AMB_NONE;
    size_t n = amb__map_size(m), at;
    bool found = map_find(m, key, &at);
    size_t size = found ? n : n + 1;
    uint64_t *p = amb__heap_alloc(heap, 1 + 2 * size);
    if (p == NULL)
        return AMB_NONE;
    const amb_term *keys = amb__map_keys(m), *values = amb__map_values(m);
    p[0] = AMB__HDR(AMB__K_MAP, size);
    amb_term *nk = (amb_term *)&p[1], *nv = (amb_term *)&p[1 + size];
    memcpy(nk, keys, at * sizeof(amb_term));
    memcpy(nv, values, at * sizeof(amb_term));
    nk[at] = key;
    nv[at] = value;
    size_t rest = found ? n - at - 1 : n - at;
    size_t from = found ? at + 1 : at;
    memcpy(nk + at + 1, keys + from, rest * sizeof(amb_term));
    memcpy(nv + at + 1, values + from, rest * sizeof(amb_term));
    return amb__make_box(p);
}

size_t amb_map_size(amb_term m)
{
    return amb_is_map(m) ? amb__map_size(m) : 0;
}

int amb_map_get(amb_term m, amb_term key, amb_term *value)
{
    if (value == NULL || key == AMB_NONE)
        return AMB__MISUSE();
    if (!amb_is_map(m))
        return AMB_ETYPE;
    size_t at;
    if (!map_find(m, key, &at))
        return AMB_ENOTFOUND;
    *value = amb__map_values(m)[at];
    return 0;
}

int amb_map_pair(amb_term m, size_t i, amb_term *key, amb_term *value)
{
    if (!amb_is_map(m))
        return AMB_ETYPE;
    if (i >= amb__map_size(m))
        return AMB_ERANGE;
    if (key != NULL)
        *key = amb__map_keys(m)[i];
    if (value != NULL)
        *value = amb__map_values(m)[i];
    return 0;
}

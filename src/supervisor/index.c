/*
 * index.c - a hash index of items by a term: the static supervisor finds a
 * child by id (and checks a start spec for duplicate ids) and both
 * supervisors find one by pid in O(1) expected time, whatever the number of
 * children.
 *
 * Open addressing with linear probing over (hash, item) slots; the home
 * slot is the top bits of hash * 2^64/phi (Fibonacci hashing), so keys
 * that differ only in their high or only in their low bits (pids: a serial
 * above an index) spread alike. Deletion shifts the following entries of
 * the run back (no tombstones), so lookups never degrade after churn.
 *
 * Invariants:
 *   - cap is 0 or a power of two >= 16, and len <= cap / 2, so every probe
 *     ends at an empty slot within a short run.
 *   - The table never shrinks: it holds as many slots as the most entries
 *     ever reserved at once needed (bounded by the supervisor's own
 *     children).
 *   - An entry's hash is stored: growing rehashes without touching the
 *     items, and a probe compares hashes before it calls eq.
 */
#include <assert.h>
#include <stdint.h>

#include "sup_internal.h"

static size_t home(const amb__index *x, uint64_t hash)
{
    return (size_t)((hash * 0x9E3779B97F4A7C15ull) >> x->shift);
}

static void insert(amb__index *x, uint64_t hash, const void *item)
{
    size_t mask = x->cap - 1, i = home(x, hash);
    while (x->slots[i].item != NULL)
        i = (i + 1) & mask;
    x->slots[i].hash = hash;
    x->slots[i].item = item;
    x->len++;
}

int amb__index_reserve(amb__index *x, size_t n)
{
    if (n <= x->cap / 2)
        return 0;
    if (n > SIZE_MAX / sizeof *x->slots / 4)
        return AMB_ENOMEM; /* the doubling below would overflow */
    size_t cap = x->cap ? x->cap : 16;
    unsigned bits = 0;
    while (cap / 2 < n)
        cap *= 2;
    while (((size_t)1 << bits) < cap)
        bits++;
    struct amb__index_slot *slots = amb_malloc(cap * sizeof *slots);
    if (slots == NULL)
        return AMB_ENOMEM;
    for (size_t i = 0; i < cap; i++)
        slots[i].item = NULL;
    struct amb__index_slot *old = x->slots;
    size_t oldcap = x->cap;
    x->slots = slots;
    x->cap = cap;
    x->shift = 64 - bits;
    x->len = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].item != NULL)
            insert(x, old[i].hash, old[i].item);
    amb_free(old);
    return 0;
}

void amb__index_put(amb__index *x, uint64_t hash, const void *item)
{
    assert(x->len + 1 <= x->cap / 2); /* reserved: never allocates */
    insert(x, hash, item);
}

const void *amb__index_get(const amb__index *x, uint64_t hash, amb__index_eq *eq,
                           amb_term key)
{
    if (x->cap == 0)
        return NULL;
    size_t mask = x->cap - 1;
    for (size_t i = home(x, hash); x->slots[i].item != NULL; i = (i + 1) & mask)
        if (x->slots[i].hash == hash && (eq == NULL || eq(x->slots[i].item, key)))
            return x->slots[i].item;
    return NULL;
}

void amb__index_del(amb__index *x, uint64_t hash, const void *item)
{
    if (x->cap == 0)
        return;
    size_t mask = x->cap - 1, i = home(x, hash);
    while (x->slots[i].item != item) {
        if (x->slots[i].item == NULL)
            return;
        i = (i + 1) & mask;
    }
    /* Backward-shift deletion: move each following entry of the run into
     * the hole when its home slot does not lie between the hole and it. */
    for (size_t j = (i + 1) & mask; x->slots[j].item != NULL; j = (j + 1) & mask) {
        size_t h = home(x, x->slots[j].hash);
        if (((j - h) & mask) >= ((j - i) & mask)) {
            x->slots[i] = x->slots[j];
            i = j;
        }
    }
    x->slots[i].item = NULL;
    x->len--;
}

void amb__index_free(amb__index *x)
{
    amb_free(x->slots);
    *x = (amb__index){0};
}

/*
 * pidmap.c - pid -> index, for the dynamic supervisor, whose children are
 * named by pid: an EXIT or a terminate_child finds its child in O(1).
 *
 * Open addressing with linear probing; deletion shifts the following
 * entries back (no tombstones), so lookups never degrade after churn. The
 * table is at most half full; it grows by doubling and never shrinks below
 * what the most children ever run at once needed (bounded, as the
 * supervisor's children are).
 */
#include <stdint.h>

#include "sup_internal.h"

static size_t slot_of(const amb__pidmap *m, amb_pid pid)
{
    uint64_t h = pid * 0x9E3779B97F4A7C15ull; /* Fibonacci hashing */
    return (size_t)(h >> 32) & (m->cap - 1);
}

static void insert(amb__pidmap *m, amb_pid pid, size_t index)
{
    size_t i = slot_of(m, pid);
    while (m->slots[i].pid != AMB_NONE)
        i = (i + 1) & (m->cap - 1);
    m->slots[i].pid = pid;
    m->slots[i].index = index;
    m->len++;
}

int amb__pidmap_put(amb__pidmap *m, amb_pid pid, size_t index)
{
    if ((m->len + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct amb__pidmap_slot *slots = amb_malloc(cap * sizeof *slots);
        if (slots == NULL)
            return AMB_ENOMEM;
        for (size_t i = 0; i < cap; i++)
            slots[i].pid = AMB_NONE;
        struct amb__pidmap_slot *old = m->slots;
        size_t oldcap = m->cap;
        m->slots = slots;
        m->cap = cap;
        m->len = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].pid != AMB_NONE)
                insert(m, old[i].pid, old[i].index);
        amb_free(old);
    }
    insert(m, pid, index);
    return 0;
}

static size_t find(const amb__pidmap *m, amb_pid pid)
{
    if (m->cap == 0)
        return SIZE_MAX;
    for (size_t i = slot_of(m, pid);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].pid == pid)
            return i;
        if (m->slots[i].pid == AMB_NONE)
            return SIZE_MAX;
    }
}

size_t amb__pidmap_get(const amb__pidmap *m, amb_pid pid)
{
    size_t i = find(m, pid);
    return i == SIZE_MAX ? SIZE_MAX : m->slots[i].index;
}

void amb__pidmap_set(amb__pidmap *m, amb_pid pid, size_t index)
{
    size_t i = find(m, pid);
    if (i != SIZE_MAX)
        m->slots[i].index = index;
}

void amb__pidmap_del(amb__pidmap *m, amb_pid pid)
{
    size_t i = find(m, pid);
    if (i == SIZE_MAX)
        return;
    /* Backward-shift deletion: move each following entry of the run into
     * the hole when its home slot does not lie between the hole and it. */
    size_t mask = m->cap - 1;
    for (size_t j = (i + 1) & mask; m->slots[j].pid != AMB_NONE; j = (j + 1) & mask) {
        size_t home = slot_of(m, m->slots[j].pid);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].pid = AMB_NONE;
    m->len--;
}

void amb__pidmap_free(amb__pidmap *m)
{
    amb_free(m->slots);
    *m = (amb__pidmap){0};
}

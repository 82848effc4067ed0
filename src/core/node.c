/*
 * node.c - the registry of local nodes: the runtimes living in this OS
 * process, each with a node name and a creation. It is what lets a pid of a
 * local node be an immediate word (term_internal.h) and still be encoded,
 * printed and compared with its full node name.
 *
 * Invariants:
 *   - A slot is written once, under `lock`, then published by a release store
 *     of `used`; readers acquire `used` and read only slots below it, so they
 *     see complete entries without a lock.
 *   - Slots are never reused, so a pid word names at most one node ever.
 */
#include <pthread.h>

#include "term_internal.h"

static struct {
    pthread_mutex_t lock;
    struct {
        amb_term name;
        uint32_t creation;
    } slots[AMB__NODE_SLOTS];
    _Atomic(unsigned) used; /* slots [1, used) are registered */
} nodes = {.lock = PTHREAD_MUTEX_INITIALIZER, .used = 1};

unsigned amb__node_find(amb_term name, uint32_t creation)
{
    /* acquire: pairs with the release in amb__node_register, so slots below
     * used are complete. */
    unsigned used = atomic_load_explicit(&nodes.used, memory_order_acquire);
    for (unsigned i = 1; i < used; i++)
        if (nodes.slots[i].name == name && nodes.slots[i].creation == creation)
            return i;
    return 0;
}

int amb__node_register(amb_term name, uint32_t creation, unsigned *slot)
{
    if (!amb_is_atom(name) || slot == NULL)
        return AMB__MISUSE();
    int rc = 0;
    pthread_mutex_lock(&nodes.lock);
    /* relaxed: registrations hold the lock, so this thread is the only
     * writer of used and the lock orders it after every earlier one. */
    unsigned used = atomic_load_explicit(&nodes.used, memory_order_relaxed);
    if (amb__node_find(name, creation) != 0) {
        rc = AMB_EEXIST;
    } else if (used >= AMB__NODE_SLOTS) {
        rc = AMB_ESYSLIMIT;
    } else {
        nodes.slots[used].name = name;
        nodes.slots[used].creation = creation;
        /* release: the entry is complete before a reader can see it. */
        atomic_store_explicit(&nodes.used, used + 1, memory_order_release);
        *slot = used;
    }
    pthread_mutex_unlock(&nodes.lock);
    return rc;
}

bool amb__node_get(unsigned slot, amb_term *name, uint32_t *creation)
{
    /* acquire: pairs with the release in amb__node_register, so slots below
     * used are complete. */
    unsigned used = atomic_load_explicit(&nodes.used, memory_order_acquire);
    if (slot == 0 || slot >= used)
        return false;
    *name = nodes.slots[slot].name;
    *creation = nodes.slots[slot].creation;
    return true;
}

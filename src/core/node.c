/*
 * node.c - the registry of local nodes: the runtimes living in this OS
 * process, each with a node name and a creation. It is what lets a pid of a
 * local node be an immediate word (term_internal.h) and still be encoded,
 * printed and compared with its full node name.
 *
 * A slot has a first identity (name and creation), given when its runtime
 * is made, and may get one more: the name and creation the runtime takes
 * when it starts distribution (amb__node_rename, as net_kernel:start gives
 * a running BEAM its name). A pid word holds the slot, not the identity, so
 * every pid of the runtime, made before or after, is seen under the new
 * name from then on (ERTS does the same: its local pids carry no node).
 * Both identities keep finding the slot (amb__node_find), so a term encoded
 * under the first one still decodes to the runtime's own pids and
 * references.
 *
 * Invariants:
 *   - A slot is written once, under `lock`, then published by a release store
 *     of `used`; readers acquire `used` and read only slots below it, so they
 *     see complete entries without a lock.
 *   - The current identity is one atomic word (atom index and creation), so
 *     a reader never sees the name of one identity with the creation of the
 *     other; it changes at most once, under `lock`.
 *   - No two slots share an identity (first or current), so (name,
 *     creation) finds at most one slot.
 *   - Slots are never reused, so a pid word names at most one runtime ever.
 */
#include <pthread.h>

#include "term_internal.h"

static struct {
    pthread_mutex_t lock;
    struct {
        amb_term first_name; /* written once, before `used` publishes it */
        uint32_t first_creation;
        _Atomic uint64_t now; /* the current identity: pack(name, creation) */
    } slots[AMB__NODE_SLOTS];
    _Atomic(unsigned) used; /* slots [1, used) are registered */
} nodes = {.lock = PTHREAD_MUTEX_INITIALIZER, .used = 1};

/* An identity in one word: the atom's index (below 2^24, amb_atom_limit)
 * and the creation. */
static uint64_t pack(amb_term name, uint32_t creation)
{
    return ((name >> 3) << 32) | creation;
}
static amb_term name_of(uint64_t id)
{
    return AMB__ATOM(id >> 32);
}

unsigned amb__node_find(amb_term name, uint32_t creation)
{
    /* acquire: pairs with the release in amb__node_register, so slots below
     * used are complete. */
    unsigned used = atomic_load_explicit(&nodes.used, memory_order_acquire);
    uint64_t want = pack(name, creation);
    for (unsigned i = 1; i < used; i++) {
        if (nodes.slots[i].first_name == name &&
            nodes.slots[i].first_creation == creation)
            return i;
        /* relaxed: the word is the whole identity; a rename racing with this
         * lookup finds the slot under either name, both of which are its. */
        if (atomic_load_explicit(&nodes.slots[i].now, memory_order_relaxed) == want)
            return i;
    }
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
        nodes.slots[used].first_name = name;
        nodes.slots[used].first_creation = creation;
        /* relaxed: published by the release store of used below. */
        atomic_store_explicit(&nodes.slots[used].now, pack(name, creation),
                              memory_order_relaxed);
        /* release: the entry is complete before a reader can see it. */
        atomic_store_explicit(&nodes.used, used + 1, memory_order_release);
        *slot = used;
    }
    pthread_mutex_unlock(&nodes.lock);
    return rc;
}

int amb__node_rename(unsigned slot, amb_term name, uint32_t creation)
{
    if (!amb_is_atom(name))
        return AMB__MISUSE();
    int rc = 0;
    pthread_mutex_lock(&nodes.lock);
    /* relaxed: under the lock, as in amb__node_register. */
    unsigned used = atomic_load_explicit(&nodes.used, memory_order_relaxed);
    unsigned other = amb__node_find(name, creation);
    if (slot == 0 || slot >= used) {
        rc = AMB__MISUSE();
    } else if (other != 0 && other != slot) {
        rc = AMB_EEXIST;
    } else if (atomic_load_explicit(&nodes.slots[slot].now, memory_order_relaxed) !=
               pack(nodes.slots[slot].first_name, nodes.slots[slot].first_creation)) {
        rc = AMB_ESTATE; /* renamed once already */
    } else {
        /* relaxed: a single word; readers take either identity as the
         * slot's (amb__node_find), and nothing else is published with it. */
        atomic_store_explicit(&nodes.slots[slot].now, pack(name, creation),
                              memory_order_relaxed);
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
    /* relaxed: see amb__node_find. */
    uint64_t id = atomic_load_explicit(&nodes.slots[slot].now, memory_order_relaxed);
    *name = name_of(id);
    *creation = (uint32_t)id;
    return true;
}

/*
 * rt.h - the runtime object of the process layer (struct amb_rt, the
 * public amb_rt of ambitious/process.h; rt.c), and what the process layer
 * keeps per scheduler.
 *
 * An amb_rt embeds the executor (src/runtime/exec.h) as its first member,
 * so that the executor's callbacks get back to the amb_rt with a cast
 * (amb__rt_of), and adds what only processes need: the process table, the
 * node name, the registry of names, the message-cell and process-block
 * depots, the logger.
 *
 * Per scheduler, the process layer keeps its caches (message-cell pools,
 * the process-block pool, freed table indices) and the reference counter
 * in the scheduler's extension area (amb__rt_sched): a fixed offset from
 * the scheduler, so reaching them costs no load.
 *
 * Invariants: everything here is set up by amb_rt_new before any process
 * exists and torn down by amb_rt_free after the last one is gone; the
 * registry is guarded by names_lock, the logger's handler by log_busy
 * (logger.c); the per-scheduler part belongs to its scheduler's thread.
 */
#ifndef AMB_PROCESS_RT_H
#define AMB_PROCESS_RT_H

#include <pthread.h>

#include "ambitious/logger.h"
#include "process/proc.h"
#include "runtime/exec.h"
#include "runtime/slab.h"

struct amb__remote; /* remote.h */

/* Size classes of message cells (msg.c). */
#define AMB__MSG_CLASSES 4
/* Cells a scheduler holds back before reuse in ASan builds (msg.c). */
#define AMB__MSG_QUARANTINE 1024

/* The process layer's part of a scheduler (its extension area). */
typedef struct amb__rt_sched {
    amb__slab_pool msgs[AMB__MSG_CLASSES]; /* message cells (msg.c) */
    amb__slab_pool procs;                  /* process blocks (proc.c) */
    /* Table indices (ptab.c): a batch taken from the table's queue, used
     * in order, and freed ones waiting to join the queue's tail. */
    uint32_t idx_take[AMB__PTAB_BATCH];
    uint32_t idx_freed[AMB__PTAB_BATCH];
    unsigned idx_take_pos, idx_take_len, idx_freed_len;
    uint64_t ref_counter; /* references made here (proc.c) */
    uint8_t *io_scratch;  /* AMB__PIO_SCRATCH bytes for reads (pio.c) */
#if AMB__ASAN
    /* Freed message cells held back from their pool (msg.c), oldest first:
     * a read of a borrowed message after its borrow ended meets poison,
     * not the next message that reused the cell. */
    struct amb__msg *quarantine[AMB__MSG_QUARANTINE];
    unsigned quarantine_head, quarantine_len;
#endif
} amb__rt_sched;

struct amb_rt {
    amb__exec exec; /* first: amb__rt_of is a cast */
    amb_config cfg;
    amb__ptab ptab;

    /* The node: its slot (node.c) holds the name and creation now, which
     * change once, when distribution starts (amb__remote_set_node); the
     * first ones stay here, since references made under them stay ours. */
    unsigned node_slot;
    amb_term first_node;
    uint32_t first_creation;
    /* The dist layer when a node runs (remote.h), else NULL: set once,
     * read by every route to a foreign destination. */
    _Atomic(const struct amb__remote *) remote;
    /* Reasons made with the runtime, so that using them needs no memory:
     * a process whose stack ran out; {error, 'AMB_ENOMEM'}, the reason a
     * signal carries when its own cannot be copied (fail.h), on
     * reason_heap. */
    amb_term atom_stack_overflow;
    amb_term reason_enomem;
    amb_heap *reason_heap;

    /* Depots of the slab classes (msg.c, proc.c): free objects flow between
     * schedulers through them. */
    amb__slab_depot msg_depots[AMB__MSG_CLASSES];
    amb__slab_depot proc_depot;

    /* Registered names (names.c). */
    pthread_mutex_t names_lock;
    void *names; /* the name table */

    /* Logger (logger.c): the level plus one (0: the default), and the
     * handler with its context, changed under log_busy (a spin flag:
     * changes are rare and a read is two loads). */
    _Atomic int log_level;
    _Atomic bool log_busy;
    void (*log_fn)(void *ctx, const struct amb_log_event *ev);
    void *log_ctx;

    /* The I/O layer's state (src/io/socket.c: the socket table), made with
     * its first socket (a CAS installs it); io_free frees it at
     * amb_rt_free, after the executor, whose teardown closed the sockets
     * its processes owned. */
    _Atomic(void *) io;
    void (*io_free)(amb_rt *rt);

    /* The code amb_rt_run returns for a halt (amb_rt_halt), 0 for none:
     * the first halt of a run sets it (a CAS), the run's end takes it. */
    _Atomic int halt_code;
};

/* The amb_rt that embeds x. */
static inline amb_rt *amb__rt_of(amb__exec *x)
{
    _Static_assert(offsetof(amb_rt, exec) == 0, "the executor comes first");
    return (amb_rt *)(void *)x;
}

/* The process layer's part of scheduler s. */
static inline amb__rt_sched *amb__rt_sched_of(amb__sched *s)
{
    return (amb__rt_sched *)amb__sched_ext(s);
}

/* A fresh reference's words, made on scheduler s (amb_make_ref, monitors):
 * a counter of s and s's id, so references made on two schedulers never
 * collide. */
static inline void amb__rt_ref_words(amb__sched *s, uint32_t w[3])
{
    uint64_t n = ++amb__rt_sched_of(s)->ref_counter;
    w[0] = (uint32_t)n;
    w[1] = (uint32_t)(n >> 32);
    w[2] = s->id;
}

/* rt's node name and creation now (a pid of rt carries them). */
static inline void amb__rt_identity(amb_rt *rt, amb_term *name, uint32_t *creation)
{
    if (!amb__node_get(rt->node_slot, name, creation))
        amb__panic("a runtime without its node slot");
}
static inline amb_term amb__rt_node(amb_rt *rt)
{
    amb_term name;
    uint32_t creation;
    amb__rt_identity(rt, &name, &creation);
    return name;
}
/* True when a reference or alias with this node and creation is rt's:
 * made under its identity now or under the first one. */
static inline bool amb__rt_is_own_node(amb_rt *rt, amb_term name, uint32_t creation)
{
    if (name == rt->first_node && creation == rt->first_creation)
        return true;
    amb_term n;
    uint32_t c;
    amb__rt_identity(rt, &n, &c);
    return name == n && creation == c;
}
/* True for a pid of rt (an own pid, remote.h); false for any other term. */
static inline bool amb__rt_own_pid(amb_rt *rt, amb_term t)
{
    return amb_is_local_pid(t) && amb__lpid_slot(t) == rt->node_slot;
}

/* A 64-bit key unique on the node for reference words w (monitors and
 * aliases are found by it): the counter and the scheduler's id, (n << 10)
 * | id, never 0, unique while n < 2^54. */
static inline uint64_t amb__rt_ref_key(const uint32_t w[3])
{
    uint64_t n = (uint64_t)w[0] | ((uint64_t)w[1] << 32);
    return (n << 10) | (w[2] & 1023u);
}

/* The reference term of rt for words w, on heap h (AMB_NONE: no memory). */
static inline amb_term amb__rt_ref_term(amb_rt *rt, amb_heap *h, const uint32_t w[3])
{
    amb_term name;
    uint32_t creation;
    amb__rt_identity(rt, &name, &creation);
    return amb_ref_term(h, name, creation, w, 3);
}

#endif /* AMB_PROCESS_RT_H */

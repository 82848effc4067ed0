/*
 * mpscq.c - the intrusive MPSC queue with a parked bit (see mpscq.h for the
 * contract, docs/design/mailbox-queue.md for the protocol and why it holds).
 *
 * Shape of the queue, oldest node on the left:
 *
 *     tail                                   head
 *      |                                      |
 *      v                                      v
 *    [ A ] --next--> [ B ] --next--> ... --> [ Z ] --next--> NULL
 *
 * The sentinel node takes part in the chain like any other node; the consumer
 * skips it when it meets it. A node can be handed out once its successor
 * is known (no producer will write its `next` again). The last node has no
 * successor, so the consumer instead swings head from it back to the sentinel
 * with a compare-and-swap, which proves that no producer holds the node as
 * its predecessor. Empty means tail == head == &sentinel.
 *
 * Invariants beyond mpscq.h:
 *   - head carries the parked or the closed bit only while tail == &sentinel
 *     and head (without the bits) == &sentinel: mark_empty and close set them
 *     only then, and every push clears them.
 *   - The consumer's swing of head back to the sentinel expects an untagged
 *     head: it happens only while tail is a real node, and then head is
 *     never tagged.
 */
#include "runtime/mpscq.h"

#include <assert.h>
#include <stddef.h>

/* Nodes hold an atomic pointer, so they are at least pointer-aligned and the
 * two low bits of a node address are free for the parked and closed flags. */
_Static_assert(_Alignof(amb__mpscq_node) >= 4, "the flags need two free bits");

#define FLAGS (AMB__MPSCQ_PARKED | AMB__MPSCQ_CLOSED)

void amb__mpscq_init(amb__mpscq *q, bool parked)
{
    /* Plain (relaxed) initialisation: q is not shared yet, and whatever
     * publishes q to other threads (spawn, a run queue) orders these
     * stores. */
    atomic_store_explicit(&q->sentinel.next, NULL, memory_order_relaxed);
    q->tail = &q->sentinel;
    atomic_store_explicit(&q->head,
                          (uintptr_t)&q->sentinel | (parked ? AMB__MPSCQ_PARKED : 0),
                          memory_order_relaxed);
}

unsigned amb__mpscq_push(amb__mpscq *q, amb__mpscq_node *n)
{
    assert(n != NULL && ((uintptr_t)n & FLAGS) == 0);

    /* relaxed: n is still private to this thread. The release half of the
     * exchange below publishes this store, together with the caller's
     * payload, to whoever later acquires n from head. */
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);

    /* acq_rel on the exchange:
     *  - release: the next producer reads n from head and then stores into
     *    n->next; the release/acquire pair on head makes our NULL store above
     *    happen before its link store, so the NULL cannot overwrite the link.
     *    It also orders the payload before head for the consumer's
     *    mark_empty compare-and-swap, which must see n as "not empty".
     *  - acquire: (1) pairs with the previous producer's release exchange so
     *    that its `prev->next = NULL` happens before our link store below
     *    (same location, same reason as above); (2) when prev carries the
     *    parked bit, pairs with the consumer's release compare-and-swap in
     *    amb__mpscq_mark_empty, so everything the consumer did before it
     *    parked happens before the wake-up this caller is about to do;
     *    with the closed bit, the same with amb__mpscq_close: the queue's
     *    state (tail, the sentinel) is visible to us, its new consumer. */
    uintptr_t prev =
        atomic_exchange_explicit(&q->head, (uintptr_t)n, memory_order_acq_rel);
    amb__mpscq_node *p = (amb__mpscq_node *)(prev & ~FLAGS);

    /* release: the consumer acquire-loads p->next, finds n, and then reads
     * n's payload; this store orders the payload (written before the
     * exchange, in program order) before the link. p cannot have been
     * popped and freed yet: the consumer hands p out only after seeing
     * p->next non-NULL, which is this very store. */
    atomic_store_explicit(&p->next, n, memory_order_release);

    return (unsigned)(prev & FLAGS);
}

amb__mpscq_node *amb__mpscq_pop(amb__mpscq *q)
{
    amb__mpscq_node *tail = q->tail;

    /* acquire (here and below): pairs with the producer's release link store,
     * so the node we get, its payload and its own NULL `next` are visible. */
    amb__mpscq_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);

    if (tail == &q->sentinel) {
        if (next == NULL)
            return NULL;
        /* Skip the sentinel: it is never handed out. Its `next` is left as it
         * is; it is reset before the sentinel is made head again. */
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&tail->next, memory_order_acquire);
    }

    if (next != NULL) {
        /* tail's successor is known, so no producer will write tail again:
         * it leaves the queue and belongs to the caller from here on. */
        q->tail = next;
        return tail;
    }

    /* tail is the last linked node. If head has moved past it, a producer is
     * between its exchange and its link store: report "nothing yet" rather
     * than wait for it.
     *
     * relaxed: head is only compared, never dereferenced. And it cannot show
     * a value older than tail's own installation: we reached tail through
     * acquire loads of link stores that each producer made after the
     * exchange that installed the node, so that exchange happens before this
     * load (write-read coherence). Equality cannot be an ABA either: tail is
     * still in the queue, so no one may push it again. */
    uintptr_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (head != (uintptr_t)tail)
        return NULL;

    /* tail is the only node. Swing head from tail to the sentinel: if that
     * succeeds, no producer holds tail as its `prev`, so no one will ever
     * write tail->next and tail can be handed out. If a producer slipped in
     * since our load, the swap fails and we report "nothing yet": that
     * producer's link store will make tail poppable by the path above. The
     * sentinel's own `next` must be NULL before it becomes head again.
     *
     * relaxed store: ordered before the producers that will write sentinel.next
     * by the release on the swap (they acquire head = &sentinel in their
     * exchange).
     * Success: release, for that store. Nothing needs acquiring: tail and
     * everything before it were already acquired through the links.
     * Failure: relaxed; only the fact of failure is used. */
    atomic_store_explicit(&q->sentinel.next, NULL, memory_order_relaxed);
    uintptr_t expected = (uintptr_t)tail;
    if (atomic_compare_exchange_strong_explicit(
            &q->head, &expected, (uintptr_t)&q->sentinel, memory_order_release,
            memory_order_relaxed)) {
        q->tail = &q->sentinel;
        return tail;
    }
    return NULL;
}

bool amb__mpscq_mark_empty(amb__mpscq *q)
{
    /* A real node at tail is a message not yet popped. */
    if (q->tail != &q->sentinel)
        return false;

    uintptr_t expected = (uintptr_t)&q->sentinel;

    /* Success: release. Everything the consumer did before parking (its
     * saved state, q->tail) happens before the push that takes the bit off
     * (its exchange is acquire), and through that pusher's hand-off (a run
     * queue) before the thread that resumes the consumer.
     * Failure: relaxed. We only learn that head moved (a push happened or is
     * under way) or is already parked, and read nothing through it.
     * Strong, not weak: a spurious failure would send the consumer round its
     * pop loop for nothing. */
    if (atomic_compare_exchange_strong_explicit(
            &q->head, &expected, expected | AMB__MPSCQ_PARKED, memory_order_release,
            memory_order_relaxed))
        return true;
    return expected == ((uintptr_t)&q->sentinel | AMB__MPSCQ_PARKED);
}

bool amb__mpscq_close(amb__mpscq *q)
{
    if (q->tail != &q->sentinel)
        return false;
    uintptr_t expected = (uintptr_t)&q->sentinel;
    /* Success: release, as in mark_empty: what the consumer did (its last
     * pops, q->tail) happens before the push that takes the queue over
     * (its exchange is acquire). Failure: relaxed; a push happened or is
     * under way, and the caller pops again. */
    return atomic_compare_exchange_strong_explicit(
        &q->head, &expected, expected | AMB__MPSCQ_CLOSED, memory_order_release,
        memory_order_relaxed);
}

bool amb__mpscq_is_empty(amb__mpscq *q)
{
    if (q->tail != &q->sentinel)
        return false;
    /* relaxed: a comparison only; the answer is a hint by contract. */
    uintptr_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    return (head & ~FLAGS) == (uintptr_t)&q->sentinel;
}

/*
 * mpscq.h - an intrusive multi-producer, single-consumer queue with a
 * "parked" bit: the mailbox under every process (docs/design/mailbox-queue.md).
 *
 * The idea is Pony's messageq (and before it Dmitry Vyukov's intrusive MPSC
 * queue): producers link nodes with one atomic exchange on `head`, the
 * consumer walks `next` pointers from `tail`, and a sentinel node embedded in the
 * queue stands in when the queue is empty, so nothing is allocated here.
 *
 * Invariants (who touches what):
 *   - `head` is the most recently pushed node (or the sentinel), tagged with
 *     AMB__MPSCQ_PARKED in its low bit while the consumer is parked.
 *     Producers change it only with an exchange; the consumer only with two
 *     compare-and-swaps: one that swings it from the last node back to the
 *     sentinel when it pops that node, and one that parks.
 *   - `tail` belongs to the consumer alone: the oldest node not yet popped,
 *     or the sentinel.
 *   - A node's `next` is written twice: NULL by the producer that pushes it
 *     (before the node is published), then once by the producer that pushes
 *     the node after it. The consumer only reads it.
 *   - The parked bit is set only by amb__mpscq_mark_empty(), only when the
 *     queue holds nothing, and cleared by the first push that follows; that
 *     push, and only it, returns AMB__MPSCQ_PARKED. So exactly one producer
 *     learns that the consumer must be made runnable, and no message can
 *     arrive unseen between the consumer's last look and its going to
 *     sleep.
 *   - The closed bit works the same way for a consumer that is gone for
 *     good (an ended task): amb__mpscq_close() sets it, only when the queue
 *     holds nothing, and the first push that follows clears it and returns
 *     AMB__MPSCQ_CLOSED: that producer becomes the consumer, pops what is
 *     there (its own node first) and closes the queue again. So a node
 *     pushed into a closed queue never waits for anyone: its own producer
 *     (or one that came after it) takes it back at once.
 *
 * Ownership: a pushed node belongs to the queue until it is popped; a
 * popped node belongs to the consumer at once (no producer writes it again),
 * so it may be freed, reused or pushed elsewhere immediately.
 *
 * The queue is not lock-free in one corner, exactly like Pony's and
 * Vyukov's: between a producer's exchange and its link store, the consumer
 * sees the queue as empty (amb__mpscq_pop returns NULL) although it is not,
 * and amb__mpscq_mark_empty refuses to park. The consumer simply tries
 * again later; the window is two instructions unless the producer thread is
 * preempted in between.
 */
#ifndef AMB_RUNTIME_MPSCQ_H
#define AMB_RUNTIME_MPSCQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The intrusive link: embed one in the struct that travels through the
 * queue and recover the struct with offsetof (container-of). */
typedef struct amb__mpscq_node {
    _Atomic(struct amb__mpscq_node *) next;
} amb__mpscq_node;

/* Field layout: `head` is the producers' word; `tail` and the sentinel are the
 * consumer's. They sit on separate cache lines: otherwise every pop (which
 * writes tail) steals the line that every push exchanges on, and the
 * consumer and producers on different cores fight over it for every
 * message. Measured on the 2-core VM with 4 producer threads and one
 * consumer (bench/micro_mpscq.c, docs/design/mailbox-queue.md): about 3x
 * the throughput (9-12 -> 32-38 M msgs/s). The price is 128 bytes per queue
 * instead of 24, which a process block (with its stack and heap) can
 * afford; the struct that embeds a queue must then be 64-byte aligned. */
#define AMB__MPSCQ_LINE 64

typedef struct amb__mpscq {
    /* Producers: the last pushed node | AMB__MPSCQ_PARKED. */
    _Atomic(uintptr_t) head;
    /* Consumer: the oldest node not yet popped, or &sentinel. */
    _Alignas(AMB__MPSCQ_LINE) amb__mpscq_node *tail;
    /* Stands in for "no node"; never handed out. */
    amb__mpscq_node sentinel;
} amb__mpscq;

/* The low bits of head: the consumer is parked and waits for a push; the
 * consumer is gone and the next pusher takes the queue over. */
#define AMB__MPSCQ_PARKED ((uintptr_t)1)
#define AMB__MPSCQ_CLOSED ((uintptr_t)2)

/* Makes q an empty queue. With parked true the consumer starts parked, so
 * the first push returns true (a process created idle, waiting for its
 * first message); with parked false the consumer starts awake and must call
 * amb__mpscq_mark_empty() before it may sleep (a freshly spawned process
 * that is already on a run queue). Not thread-safe: q must not be shared
 * yet. */
void amb__mpscq_init(amb__mpscq *q, bool parked);

/* Any thread. Appends n (which must not be in any queue) at the end of q.
 * One atomic exchange and one store; never blocks, never fails.
 * Returns AMB__MPSCQ_PARKED exactly when this push found the consumer
 * parked: the caller then owns the duty to make the consumer runnable
 * (once). Returns AMB__MPSCQ_CLOSED exactly when it found the queue closed:
 * the caller is now its consumer, and must pop everything (n first) and
 * amb__mpscq_close() it again. Returns 0 when the consumer is awake,
 * including when the queue was empty but not yet marked: the consumer will
 * then see n before it can park. */
unsigned amb__mpscq_push(amb__mpscq *q, amb__mpscq_node *n);

/* Consumer only. Removes and returns the oldest node, which then belongs to
 * the caller, or returns NULL when there is none visible yet (the queue is
 * empty, or a producer is between its exchange and its link store). */
amb__mpscq_node *amb__mpscq_pop(amb__mpscq *q);

/* Consumer only, when amb__mpscq_pop() has returned NULL and the consumer
 * wants to sleep. Atomically marks q empty and the consumer parked, and
 * returns true: from then on the consumer must not pop until a push has
 * returned true and that pusher has woken it. Returns false when a node is
 * in the queue or on its way (nothing changed): pop again. Returns true
 * without change when q is already parked. */
bool amb__mpscq_mark_empty(amb__mpscq *q);

/* Consumer only, for good: marks q empty and closed, and returns true,
 * when nothing is in it or on its way; from then on the first push takes
 * the queue over (amb__mpscq_push). Returns false when a node is in the
 * queue or on its way (nothing changed): pop it, then close again. A
 * consumer that must close spins on false while a producer is between its
 * exchange and its link store (two instructions, unless it is preempted). */
bool amb__mpscq_close(amb__mpscq *q);

/* Consumer only: true when nothing is waiting to be popped and no push is
 * under way. A hint for the consumer's own decisions (a racing producer may
 * change it right after). */
bool amb__mpscq_is_empty(amb__mpscq *q);

#endif /* AMB_RUNTIME_MPSCQ_H */

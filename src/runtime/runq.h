/*
 * runq.h - a scheduler's run queue, and the executor's inject queue
 * (runq.c).
 *
 * The ring (Go's runq, the same idea): a fixed array of AMB__RUNQ_SIZE slots
 * indexed by free-running 32-bit counters.
 *   - Only the owner writes tail (and the slots between head and tail).
 *   - The owner and thieves take from head with a CAS, so a slot is taken
 *     exactly once. A thief copies the slots it wants first, then claims them
 *     with the CAS; if the CAS fails, the copies are discarded and it tries
 *     again, so nothing is taken twice or lost.
 *   - When the ring is full the owner moves half of it to the inject queue,
 *     so a put never fails and the ring's cost stays O(1) amortised.
 * The run-next slot is an atomic pointer the owner exchanges; thieves take it
 * only when asked to (take_next), with a CAS: the scheduler decides when
 * (a few microseconds without a switch of the owner, sched.c).
 *
 * The inject queue is a plain FIFO list under a mutex: it is used from
 * outside the runtime and on overflow, both rare.
 */
#ifndef AMB_RUNTIME_RUNQ_H
#define AMB_RUNTIME_RUNQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/task.h"

#define AMB__RUNQ_SIZE 256u

/* A scheduler's run queue. Layout by writer (docs/design/runtime.md,
 * "Layout"): the first line holds everything a thief reads to decide
 * what to take (head, tail, run-next and the owner's switch count), all
 * written by the owner at switches and wakes, head also by thieves' CAS;
 * the ring's slots follow on lines of their own, written by the owner
 * between head and tail and only read by thieves. */
typedef struct amb__runq {
    _Alignas(64) _Atomic uint32_t head;
    _Atomic uint32_t tail;
    _Atomic(amb__task *) next; /* run next */
    /* The owner's switch count, odd while one of its tasks runs: a thief
     * that sees the same odd value for a while knows the owner is inside
     * one long run and cannot take run-next itself (sched.c). Written
     * only by the owner (amb__runq_switched). */
    _Atomic uint64_t seq;
    /* The running task's id (task.h), for the watchdog's report. */
    _Atomic uint32_t task_id;
    _Alignas(64) _Atomic(amb__task *) ring[AMB__RUNQ_SIZE];
} amb__runq;

/* The executor's inject queue: tasks made runnable from outside a
 * scheduler, and a full ring's overflow. Linked through amb__task.link. */
typedef struct amb__runq_inject {
    pthread_mutex_t lock;
    amb__task *head, *tail; /* under lock */
    _Atomic size_t len;     /* written under lock; read without it as a hint */
} amb__runq_inject;

void amb__runq_init(amb__runq *q);
/* Owner: appends t to q; when the ring is full, moves half of it and t to
 * inj (the executor's inject queue, first like any shared context). */
void amb__runq_put(amb__runq_inject *inj, amb__runq *q, amb__task *t);
/* Owner: takes the oldest, or NULL. */
amb__task *amb__runq_get(amb__runq *q);
/* Thief: moves about half of victim's ring into q (which must be empty);
 * returns one of them to run now, or NULL. With take_next, an empty ring's
 * run-next slot is taken instead. */
amb__task *amb__runq_steal(amb__runq *q, amb__runq *victim, bool take_next);
/* Any thread: true when the ring and the run-next slot look empty (a hint:
 * it may change right after). */
bool amb__runq_empty(amb__runq *q);

/* Owner: a task of q's scheduler is switched in (running true) or the
 * scheduler is back in its loop (false): the switch count thieves and the
 * watchdog read. id names the task. */
static inline void amb__runq_switched(amb__runq *q, bool running, uint32_t id)
{
    /* relaxed, here and below: only the owner writes them; readers take
     * them as hints (a thief re-checks run-next with its CAS, the watchdog
     * only reports), and nothing is published through them. */
    uint64_t seq = atomic_load_explicit(&q->seq, memory_order_relaxed);
    seq = running ? (seq + 2) | 1 : (seq + 2) & ~(uint64_t)1;
    atomic_store_explicit(&q->seq, seq, memory_order_relaxed);
    if (running)
        atomic_store_explicit(&q->task_id, id, memory_order_relaxed);
}

/* Any thread: the owner's switch count (see amb__runq.seq). */
static inline uint64_t amb__runq_seq(amb__runq *q)
{
    /* relaxed: a hint (see amb__runq_switched). */
    return atomic_load_explicit(&q->seq, memory_order_relaxed);
}

/* Thief: what run-next holds now (a hint), without taking it. */
static inline amb__task *amb__runq_peek_next(amb__runq *q)
{
    /* relaxed: only compared; a take goes through the CAS of
     * amb__runq_steal, which acquires. */
    return atomic_load_explicit(&q->next, memory_order_relaxed);
}

/* Owner: puts t in the run-next slot; returns the task it displaced (the
 * caller puts that one in the ring), or NULL.
 *
 * Only the owner fills the slot; thieves only empty it (CAS from a task to
 * NULL). So a slot the owner sees empty stays empty until the owner
 * writes it, and filling it needs no RMW: a store. Only taking a task out
 * (or displacing one) races with thieves and needs the exchange. A
 * ping-pong fills and takes the slot once per message: one RMW instead of
 * two. */
static inline amb__task *amb__runq_put_next(amb__runq *q, amb__task *t)
{
    /* relaxed: see above; only compared with NULL. */
    if (atomic_load_explicit(&q->next, memory_order_relaxed) == NULL) {
        /* release: a thief that takes t with its acquire CAS sees
         * everything that happened to t before it was made runnable (its
         * saved context, the push that woke it). */
        atomic_store_explicit(&q->next, t, memory_order_release);
        return NULL;
    }
    /* acq_rel: the release half as above; the RMW makes the hand-over
     * exclusive against a thief's CAS of the displaced task. */
    return atomic_exchange_explicit(&q->next, t, memory_order_acq_rel);
}

/* Owner: empties the run-next slot; returns what it held, or NULL. */
static inline amb__task *amb__runq_get_next(amb__runq *q)
{
    /* relaxed: an empty slot stays empty but for the owner (see
     * amb__runq_put_next). */
    if (atomic_load_explicit(&q->next, memory_order_relaxed) == NULL)
        return NULL;
    /* acq_rel: more than needed. The task in the slot was stored by this
     * thread, so there is nothing to acquire; the RMW alone makes the take
     * exclusive against a thief's CAS. */
    return atomic_exchange_explicit(&q->next, NULL, memory_order_acq_rel);
}

void amb__runq_inject_init(amb__runq_inject *inj);
void amb__runq_inject_term(amb__runq_inject *inj);
/* Any thread: appends t. */
void amb__runq_inject_put(amb__runq_inject *inj, amb__task *t);
/* Any thread: takes the oldest, or NULL. */
amb__task *amb__runq_inject_get(amb__runq_inject *inj);
/* Owner of q, whose ring is empty: takes the oldest task and up to max - 1
 * more (at most half the ring) into q's ring, in order (Go's
 * globrunqget: one lock round for a batch, and the batch runs at ring
 * speed). Returns the oldest, or NULL. */
amb__task *amb__runq_inject_take(amb__runq_inject *inj, amb__runq *q, unsigned max);

#endif /* AMB_RUNTIME_RUNQ_H */

/*
 * timer.h - timers on each scheduler's timing wheel (wheel.h), with a
 * cross-thread cancel and optional references (timer.c).
 *
 * A timer is embedded by its user (the process layer keeps one in a
 * message cell, src/process/ptimer.c). The scheduler that arms it owns it:
 * only that thread arms, fires and frees it on its wheel. Its `state` is
 * the one word other threads touch:
 *
 *   ARMED --(owner fires)--> FIRED         ops->timer_fire(live = true)
 *   ARMED --(anyone cancels)--> CANCELLED  ops->timer_fire(live = false)
 *                                          when its deadline comes (lazy:
 *                                          no cross-thread wheel surgery)
 *
 * A cancel on the owner's own thread takes the entry off the wheel at once
 * and hands the timer straight back to the caller, so the common case (a
 * process woken by its message on the scheduler that armed its timeout)
 * leaves nothing behind.
 *
 * References: a timer armed with one gets a slot in its owner's reference
 * table, and the reference is (owner scheduler, slot, generation), so a
 * reference to a timer that has fired or was freed is recognised as stale
 * (amb__timer_find). The table is guarded by the owner's lock, because
 * finds may come from any scheduler.
 */
#ifndef AMB_RUNTIME_TIMER_H
#define AMB_RUNTIME_TIMER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/clock.h"
#include "runtime/sched.h"
#include "runtime/task.h"
#include "runtime/wheel.h"

enum { AMB__TIMER_ARMED = 1, AMB__TIMER_FIRED, AMB__TIMER_CANCELLED };

#define AMB__TIMER_NO_SLOT UINT32_MAX

struct amb__timer {
    amb__wheel_entry entry; /* first: the wheel's entry is the timer */
    _Atomic uint32_t state; /* AMB__TIMER_*, see above */
    uint32_t owner;         /* the id of the scheduler that armed it */
    uint32_t slot;          /* in the owner's reference table, or NO_SLOT */
};

/* A scheduler's reference table (amb__sched.timer_refs). Free slots are
 * reused round-robin (oldest freed first), so a reference comes back only
 * after every other free slot was used once, 2^29 times over (timer.c). */
struct amb__timer_refs {
    pthread_mutex_t lock;
    amb__timer **timers; /* slot -> armed timer, or NULL */
    uint32_t *gens;      /* slot -> generation */
    uint32_t *free;      /* free slots: a ring of cap entries, oldest first */
    size_t len, cap, free_head, nfree;
};

/* Sets up and tears down s's timers: its wheel and reference table. 0 or
 * AMB_ENOMEM. Term ends every pending timer with ops->timer_fire(live =
 * false). */
int amb__timer_init(amb__sched *s, uint64_t now_ms);
void amb__timer_term(amb__sched *s);

/* Arms t on s (the calling scheduler) to fire ms milliseconds from now,
 * never earlier. ms <= 2^32 - 1. Inline: every receive with a timeout
 * arms one. */
static inline void amb__timer_arm(amb__sched *s, amb__timer *t, uint64_t ms)
{
    amb__wheel_entry_init(&t->entry);
    atomic_init(&t->state, AMB__TIMER_ARMED);
    t->owner = s->id;
    t->slot = AMB__TIMER_NO_SLOT;
    /* The deadline base is the clock now (the wheel's own time may lag),
     * plus one tick, because the clock is in whole milliseconds and "now"
     * may be almost a millisecond old already: a timer never fires early.
     * ms <= 2^32 - 1, so the deadline stays in the wheel's range, and the
     * wheel's end of time (amb__timer_term) stays beyond it. */
    s->now_ms = amb__clock_ms();
    amb__wheel_arm(&s->wheel, &t->entry, s->now_ms + 1 + ms);
}

/* The same, and t gets a reference (*ref, never 0). 0, or AMB_ENOMEM (t
 * is not armed then). */
int amb__timer_arm_ref(amb__sched *s, amb__timer *t, uint64_t ms, uint64_t *ref);

/* Frees the reference of t, which s has just taken off its own wheel (the
 * slow path of amb__timer_cancel). */
void amb__timer_unref(amb__sched *s, amb__timer *t);

/* Cancels t from scheduler s (any scheduler). True when t was on s's own
 * wheel and had not fired: it is off the wheel and belongs to the caller
 * again. False otherwise: ops->timer_fire gets it, with live = false if
 * this cancel came before the owner fired it. Inline: a receive that ends
 * before its timeout cancels one. */
static inline bool amb__timer_cancel(amb__sched *s, amb__timer *t)
{
    if (t->owner == s->id) {
        /* Our own wheel: if it has not fired, take it off. */
        if (!amb__wheel_cancel(&s->wheel, &t->entry))
            return false; /* it fired: its user gets it through ops */
        if (t->slot != AMB__TIMER_NO_SLOT)
            amb__timer_unref(s, t);
        return true;
    }
    uint32_t armed = AMB__TIMER_ARMED;
    /* acq_rel. The RMW alone decides between this cancel and the owner's
     * fire (both CAS from ARMED). Its release half is needed: when this
     * cancel wins, the owner frees and reuses the timer once its own CAS
     * fails, and it reads CANCELLED with acquire (fire() in timer.c), so
     * this thread's reads of the timer (owner, slot) happen before the
     * reuse. No other data passes through the state: the timer goes back
     * to its user only through ops->timer_fire, on the owner's thread, and
     * the deadline read by amb__timer_find is ordered by the reference
     * table's lock. */
    atomic_compare_exchange_strong_explicit(&t->state, &armed, AMB__TIMER_CANCELLED,
                                            memory_order_acq_rel, memory_order_relaxed);
    return false;
}

/* Says, under the owner's lock, whether an armed timer is gone for its user
 * although armed (the process a timer is aimed at has ended). */
typedef bool amb__timer_gone_fn(void *ctx, amb__timer *t);

/* Finds the armed timer of ref, from scheduler cur. *left_ms (may be NULL)
 * gets the time to its deadline. With cancel, cancels it too: if it was on
 * cur's own wheel, *freed gets it back (off the wheel, no longer
 * referenced: the caller frees it), else *freed is NULL and ops->timer_fire
 * gets it later; freed is never NULL. gone (may be NULL) treats an armed
 * timer as gone. 0, AMB_ENOTFOUND (fired, cancelled, gone, or a stale
 * reference), AMB_EBADARG (no scheduler of this executor in ref). */
int amb__timer_find(amb__sched *cur, uint64_t ref, bool cancel, amb__timer_gone_fn *gone,
                    void *ctx, int64_t *left_ms, amb__timer **freed);

/* Fires every timer of s due at now_ms (the scheduler loop). */
void amb__timer_advance(amb__sched *s, uint64_t now_ms);

#endif /* AMB_RUNTIME_TIMER_H */

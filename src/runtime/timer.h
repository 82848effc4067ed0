/*
 * timer.h - timers on each scheduler's timing wheel (wheel.h), with a
 * cross-thread cancel and optional references (timer.c;
 * docs/design/timers.md, "Threads").
 *
 * A timer is embedded by its user (the process layer keeps one in a
 * message cell, src/process/ptimer.c). It is armed on the wheel of the
 * scheduler that arms it (its owner). Each wheel has a small lock
 * (amb__sched.wheel_lock, spin.h), and the rule is simply: whoever takes a
 * timer off a wheel, under that wheel's lock, owns it from then on.
 *
 *   - Arm (the owner): onto its own wheel, under its lock.
 *   - Fire (the owner at a switch or in its loop, or an idle scheduler
 *     for a busy or stuck owner): expired timers are taken off the wheel
 *     under the lock, then handed to ops->timer_fire outside it, on the
 *     firing scheduler.
 *   - Cancel (any scheduler, amb__timer_cancel): under the owner's lock,
 *     take the entry off the wheel. True: it had not fired, the caller has
 *     it back and frees it at once (from another scheduler too, so a
 *     cancelled timer never holds memory until its deadline). False: it
 *     is being fired or has fired; its user gets it through timer_fire.
 *
 * So no timer is ever handed back twice and none is lost, without a state
 * word or a queue of cancel requests: the wheel lock decides.
 *
 * amb__sched.timer_next is a lower bound of the wheel's earliest
 * deadline, written under the lock and read without it: the owner
 * compares it with the cheap clock at every switch, idle schedulers and
 * the watchdog to find expired timers elsewhere.
 *
 * References: a timer armed with one gets a slot in its owner's reference
 * table, and the reference is (owner scheduler, slot, generation), so a
 * reference to a timer that has fired or was freed is recognised as stale
 * (amb__timer_find). The table has its own lock (finds come from any
 * scheduler); the order is reference lock, then wheel lock.
 */
#ifndef AMB_RUNTIME_TIMER_H
#define AMB_RUNTIME_TIMER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/clock.h"
#include "runtime/exec.h"
#include "runtime/sched.h"
#include "runtime/task.h"
#include "runtime/wheel.h"

#define AMB__TIMER_NO_SLOT UINT32_MAX

struct amb__timer {
    amb__wheel_entry entry; /* first: the wheel's entry is the timer */
    uint32_t owner;         /* the id of the scheduler whose wheel holds it */
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

/* Arms t on s (the calling scheduler) to fire when the clock reaches
 * deadline_ms (absolute, from amb__clock_ms or a bound above it; one in the
 * past fires at the next advance). Inline: receive timeouts arm one. */
static inline void amb__timer_arm_at(amb__sched *s, amb__timer *t, uint64_t deadline_ms)
{
    amb__wheel_entry_init(&t->entry);
    t->owner = s->id;
    t->slot = AMB__TIMER_NO_SLOT;
    amb__spin_lock(&s->wheel_lock);
    amb__wheel_arm(&s->wheel, &t->entry, deadline_ms);
    /* relaxed, load and store: written only under the lock; readers
     * without it take it as a hint and lock before acting on it. */
    if (deadline_ms < atomic_load_explicit(&s->timer_next, memory_order_relaxed))
        atomic_store_explicit(&s->timer_next, deadline_ms, memory_order_relaxed);
    amb__spin_unlock(&s->wheel_lock);
}

/* The deadline of a timer of ms milliseconds armed now on s, never early:
 * the exact clock plus one tick, because the clock is in whole
 * milliseconds and "now" may be almost a millisecond old already. ms <=
 * 2^32 - 1, so the deadline stays in the wheel's range, and the wheel's
 * end of time (amb__timer_term) stays beyond it. */
static inline uint64_t amb__timer_deadline(amb__sched *s, uint64_t ms)
{
    s->now_ms = amb__clock_ms(&s->exec->clock);
    return s->now_ms + 1 + ms;
}

/* Arms t on s (the calling scheduler) to fire ms milliseconds from now,
 * never earlier. */
static inline void amb__timer_arm(amb__sched *s, amb__timer *t, uint64_t ms)
{
    amb__timer_arm_at(s, t, amb__timer_deadline(s, ms));
}

/* The same, and t gets a reference (*ref, never 0). 0, or AMB_ENOMEM (t
 * is not armed then). */
int amb__timer_arm_ref(amb__sched *s, amb__timer *t, uint64_t ms, uint64_t *ref);

/* The slow path of amb__timer_cancel: t's owner is another scheduler, or
 * t has a reference to free. */
bool amb__timer_cancel_slow(amb__sched *s, amb__timer *t);

/* Cancels t from scheduler s (any scheduler of t's executor). True when t
 * had not fired: it is off its wheel and belongs to the caller again (who
 * frees it now). False when it is being fired or has fired: ops->timer_fire
 * gets it. Inline: a receive that ends before its timeout cancels one. */
static inline bool amb__timer_cancel(amb__sched *s, amb__timer *t)
{
    if (amb__unlikely(t->owner != s->id || t->slot != AMB__TIMER_NO_SLOT))
        return amb__timer_cancel_slow(s, t);
    amb__spin_lock(&s->wheel_lock);
    bool on = amb__wheel_cancel(&s->wheel, &t->entry);
    amb__spin_unlock(&s->wheel_lock);
    return on;
}

/* Says, under the owner's reference lock, whether an armed timer is gone
 * for its user although armed (the process a timer is aimed at has
 * ended). */
typedef bool amb__timer_gone_fn(void *ctx, amb__timer *t);

/* Finds the armed timer of ref, from scheduler cur. *left_ms (may be NULL)
 * gets the time to its deadline. With cancel, cancels it too: *freed gets
 * it back (off its wheel, no longer referenced: the caller frees it);
 * freed is never NULL and is NULL'd when nothing is handed back. gone (may
 * be NULL) treats an armed timer as gone (a gone timer stays armed and is
 * freed when it fires). 0, AMB_ENOTFOUND (fired, being fired, cancelled,
 * gone, or a stale reference), AMB_EBADARG (no scheduler of this executor
 * in ref). */
int amb__timer_find(amb__sched *cur, uint64_t ref, bool cancel, amb__timer_gone_fn *gone,
                    void *ctx, int64_t *left_ms, amb__timer **freed);

/* Fires, from scheduler s, every timer of scheduler owner (s itself, or
 * another) due at now_ms. With wait false it gives up when the owner's
 * wheel is locked (an idle scheduler helping a busy one). Returns the
 * number of timers fired. */
size_t amb__timer_fire_due(amb__sched *s, amb__sched *owner, uint64_t now_ms, bool wait);

#endif /* AMB_RUNTIME_TIMER_H */

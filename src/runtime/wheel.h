/*
 * wheel.h - a hierarchical timing wheel: the timers of one scheduler
 * (docs/design/timers.md).
 *
 * Six levels of 64 slots, 1 ms per tick. Level L holds the entries whose
 * deadline first differs from the wheel's current time in base-64 digit L;
 * slot s of that level holds those whose digit L is s. An entry is moved
 * ("cascaded") to a lower level when the wheel's time reaches the start of
 * its slot, so every entry fires exactly on its own tick, and at most once
 * per level on the way down. Deadlines that differ from now above bit 36
 * (about 795 days) wait in an overflow list; when nothing else is pending
 * the wheel jumps to the 2^36 ms block of the earliest of them, so an
 * advance over any span does at most one such round per overflow entry.
 *
 * Invariants (w->now is the last tick processed):
 *   - Every pending entry with deadline <= w->now is in the due list; it
 *     fires first at the next advance.
 *   - An entry in level L, slot s has deadline d with
 *     d >> 6(L+1) == now >> 6(L+1) and digit L of d == s > digit L of now.
 *     So every non-empty slot lies ahead of now, and the lowest non-empty
 *     level holds the earliest entries.
 *   - Bit s of occupied[L] is set iff slot s of level L is non-empty (one
 *     of its ways is).
 *   - Entries with the same deadline always sit in the same slot. In a
 *     slot of levels 1..5 they share one way (chosen by the deadline), in
 *     the order they arrived; in a level-0 slot their arrival numbers
 *     (pos) increase in arrival order, and way j holds those with
 *     pos % WAYS == j, in increasing pos. So they fire in arm order.
 *
 * Threads: nothing here is atomic; one thread at a time uses a wheel. The
 * timer layer keeps a lock per wheel for that (timer.h;
 * docs/design/timers.md, "Threads: one lock per wheel").
 *
 * Memory: the wheel allocates nothing. An entry is embedded in the
 * caller's struct (a timer, a process waiting with a timeout), and a
 * zero-filled entry is a valid idle entry. The wheel itself is about
 * 27 KiB, most of it list heads.
 */
#ifndef AMB_RUNTIME_WHEEL_H
#define AMB_RUNTIME_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AMB__WHEEL_BITS   6
#define AMB__WHEEL_SLOTS  (1u << AMB__WHEEL_BITS) /* 64: one uint64_t bitmap per level */
#define AMB__WHEEL_LEVELS 6                       /* 36 bits of ms: ~795 days */
/* Each slot is split into this many lists ("ways"), so that firing or
 * cascading a slot walks several independent chains of entries at once
 * and their cache misses overlap (docs/design/timers.md, "Ways"). */
#define AMB__WHEEL_WAYS 4

/* A doubly linked list link; the wheel's lists are circular with a sentinel. */
typedef struct amb__wheel_link {
    struct amb__wheel_link *next;
    struct amb__wheel_link *prev;
} amb__wheel_link;

/* Embed one per timer. Fields are private to the wheel, read them with the
 * accessors below. 32 bytes on 64-bit targets. */
typedef struct amb__wheel_entry {
    amb__wheel_link link; /* first: the wheel converts a link to its entry */
    uint64_t deadline;    /* absolute ms, as armed */
    uint32_t where;       /* 0: idle; else 1 + index of the list holding it */
    uint32_t pos;         /* in a level-0 slot: its arrival number there */
} amb__wheel_entry;

typedef struct amb__wheel {
    uint64_t now;                         /* ms: the last tick processed */
    size_t count;                         /* pending entries */
    uint64_t occupied[AMB__WHEEL_LEVELS]; /* bit s: slot s of that level non-empty */
    /* A lower bound of the deadlines in each slot of levels 1..5 (level 0
     * slots hold a single deadline), so next_deadline() can be exact
     * without scanning a slot; reset when the slot is emptied. */
    uint64_t slot_min[AMB__WHEEL_LEVELS - 1][AMB__WHEEL_SLOTS];
    uint64_t overflow_min;
    /* Arrival numbers handed out in each level-0 slot since it was last
     * empty; an entry goes to way pos % AMB__WHEEL_WAYS. */
    uint32_t npos[AMB__WHEEL_SLOTS];
    uint32_t pos_limit; /* renumber a slot past this (tests lower it) */
    bool advancing;     /* guards against a nested advance */
    amb__wheel_link lists[AMB__WHEEL_LEVELS * AMB__WHEEL_SLOTS * AMB__WHEEL_WAYS];
    amb__wheel_link due;      /* armed with a deadline <= now */
    amb__wheel_link overflow; /* beyond the top level */
} amb__wheel;

/* Called once per fired entry, in deadline order. The entry is idle when
 * the callback runs: it may be re-armed, or the struct holding it freed.
 * The callback may arm and cancel any entry of the wheel (an entry armed
 * with a deadline at or before the tick being fired waits for the next
 * advance, so a callback that re-arms "now" cannot loop forever); it must
 * not call amb__wheel_advance. */
typedef void amb__wheel_fire_fn(void *ctx, amb__wheel_entry *e);

/* Makes w an empty wheel whose time is now_ms. */
void amb__wheel_init(amb__wheel *w, uint64_t now_ms);

/* Makes e idle (the same as zero-filling it). */
void amb__wheel_entry_init(amb__wheel_entry *e);

/* O(1). Arms e to fire at deadline_ms (absolute). If e is already pending,
 * it is moved (re-armed), as if cancelled first. A deadline at or before
 * the wheel's time fires at the next advance. */
void amb__wheel_arm(amb__wheel *w, amb__wheel_entry *e, uint64_t deadline_ms);

/* O(1). Disarms e. Returns true if it was pending (it will not fire),
 * false if it was idle (never armed, already fired, or cancelled). */
bool amb__wheel_cancel(amb__wheel *w, amb__wheel_entry *e);

/* Fires, in deadline order, every pending entry with deadline <= now_ms
 * (and every entry armed in the past), then sets the wheel's time to
 * now_ms. Entries with equal deadlines fire in the order they were armed.
 * Time never goes back: now_ms below the wheel's time counts as the
 * wheel's time. Returns the number of entries fired. Work is proportional
 * to the entries fired or cascaded plus the number of non-empty slots
 * passed, never to the time elapsed. */
size_t amb__wheel_advance(amb__wheel *w, uint64_t now_ms, amb__wheel_fire_fn *fire,
                          void *ctx);

/* O(levels), no scan. UINT64_MAX when nothing is pending; the wheel's time
 * when something is already due; otherwise a time T such that advancing to
 * any time before T fires nothing. T is the earliest pending deadline,
 * except after that entry was cancelled, when T may be earlier (an advance
 * to T then fires nothing and tightens T). An idle scheduler may sleep
 * until T. */
uint64_t amb__wheel_next_deadline(const amb__wheel *w);

/* The wheel's time: the now_ms of the last advance (or of init). */
static inline uint64_t amb__wheel_now(const amb__wheel *w)
{
    return w->now;
}

/* Number of pending entries. */
static inline size_t amb__wheel_count(const amb__wheel *w)
{
    return w->count;
}

/* True from arming until the entry fires or is cancelled. */
static inline bool amb__wheel_pending(const amb__wheel_entry *e)
{
    return e->where != 0;
}

/* The deadline e was last armed with. */
static inline uint64_t amb__wheel_deadline(const amb__wheel_entry *e)
{
    return e->deadline;
}

/* Time left until e's deadline, seen at now_ms (0 once it is reached): the
 * value erlang:read_timer/cancel_timer report. Meaningful while e is
 * pending; the caller passes the clock it trusts (the wheel's time lags
 * the real clock by up to one scheduler loop). */
static inline uint64_t amb__wheel_remaining(const amb__wheel_entry *e, uint64_t now_ms)
{
    return e->deadline > now_ms ? e->deadline - now_ms : 0;
}

#endif /* AMB_RUNTIME_WHEEL_H */

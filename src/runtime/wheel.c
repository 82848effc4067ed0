/*
 * wheel.c - the hierarchical timing wheel (contract and invariants in
 * wheel.h, design and its reasons in docs/design/timers.md).
 *
 * Placement. For an entry with deadline d and the wheel at time now
 * (d > now), let x = d XOR now. The level is the base-64 digit of the
 * highest set bit of x, the slot is d's digit at that level:
 *
 *     now = ..  | 5 | 17 | 40 |      digits, base 64, level 2 1 0
 *     d   = ..  | 5 | 20 |  3 |      highest differing digit: level 1
 *                     ^ slot 20 of level 1
 *
 * The entry must be looked at again when now reaches ..|5|20|0, the start
 * of its slot: then d and now agree on digit 1, so it moves to level 0,
 * slot 3, and fires at ..|5|20|3. Time advances from event to event (the
 * start of the next non-empty slot of the lowest non-empty level), never
 * tick by tick, so a wheel left alone for an hour costs nothing to catch
 * up.
 *
 * Ways. Firing or cascading a slot follows `next` pointers from entry to
 * entry; the entries lie wherever their owners put them, so each step is a
 * cache miss (~150 ns for a million timers on the test VM), and one chain
 * allows only one miss in flight. So each slot is split into WAYS lists,
 * and the walk takes them in turn, prefetching each list's next entry as
 * it takes the current one: WAYS misses overlap. Order still holds:
 *   - In levels 1..5, the way is chosen by the deadline, so entries with
 *     equal deadlines stay in one list in arrival order; a cascade may
 *     interleave different deadlines freely.
 *   - In a level-0 slot every entry has the same deadline, so the way is
 *     chosen round-robin by arrival number (pos), and the walk visits pos
 *     0, 1, 2, ... in turn: the next one is always at the head of way
 *     pos % WAYS, unless it was cancelled, and then the walk skips to the
 *     smallest pos left at the heads.
 *
 * Lists. Every list is circular and doubly linked with a sentinel in the
 * wheel, so an entry unlinks itself in O(1), even while it sits on a list
 * detached for firing. entry->where names its list (1 + index) so that
 * cancel can clear the occupancy bit of a slot it empties.
 */
#include "runtime/wheel.h"

#include <assert.h>
#include <string.h>

#define WAYS           AMB__WHEEL_WAYS
#define SLOT_MASK      ((uint64_t)AMB__WHEEL_SLOTS - 1)
#define NSLOTS         (AMB__WHEEL_LEVELS * AMB__WHEEL_SLOTS)
#define NLISTS         (NSLOTS * WAYS)
#define DUE_INDEX      NLISTS
#define OVERFLOW_INDEX (NLISTS + 1)
#define TOP_BITS       (AMB__WHEEL_LEVELS * AMB__WHEEL_BITS) /* 36 */

_Static_assert((WAYS & (WAYS - 1)) == 0, "WAYS must be a power of two");
/* An entry converts from its link by a plain cast: the link is its first
 * member. */
_Static_assert(offsetof(amb__wheel_entry, link) == 0, "link must come first");

static amb__wheel_entry *entry_of(amb__wheel_link *l)
{
    return (amb__wheel_entry *)l;
}

static void list_init(amb__wheel_link *l)
{
    l->next = l;
    l->prev = l;
}

static bool list_empty(const amb__wheel_link *l)
{
    return l->next == l;
}

static void list_append(amb__wheel_link *l, amb__wheel_link *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static void list_unlink(amb__wheel_link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    /* Poisoned, so a stale use of an idle entry faults at once. */
    n->next = NULL;
    n->prev = NULL;
}

/* Moves every link of `from` to the local sentinel `to`, in order. */
static void list_take(amb__wheel_link *from, amb__wheel_link *to)
{
    if (list_empty(from)) {
        list_init(to);
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

static bool slot_empty(const amb__wheel *w, unsigned slot)
{
    for (unsigned j = 0; j < WAYS; j++)
        if (!list_empty(&w->lists[slot * WAYS + j]))
            return false;
    return true;
}

/* Moves the WAYS lists of a slot to local sentinels. */
static void take_slot(amb__wheel *w, unsigned slot, amb__wheel_link loc[WAYS])
{
    for (unsigned j = 0; j < WAYS; j++)
        list_take(&w->lists[slot * WAYS + j], &loc[j]);
}

/* The first tick of slot s of level `level` in the block now lies in. */
static uint64_t slot_start(uint64_t now, unsigned level, unsigned s)
{
    unsigned shift = AMB__WHEEL_BITS * level;
    uint64_t block = ((uint64_t)1 << (shift + AMB__WHEEL_BITS)) - 1;
    return (now & ~block) | ((uint64_t)s << shift);
}

/* Takes the entry with the next arrival number from a level-0 slot's
 * detached ways, or returns NULL when they are empty. *q is the arrival
 * number expected next. Positions at the heads are never below *q: each
 * way is in increasing pos, and everything below *q has been taken. */
static amb__wheel_entry *take_next(amb__wheel_link loc[WAYS], uint32_t *q)
{
    for (;;) {
        amb__wheel_link *l = &loc[*q & (WAYS - 1)];
        amb__wheel_link *h = l->next;
        if (h != l && entry_of(h)->pos == *q) {
            list_unlink(h);
            /* This way's next entry is wanted WAYS takes from now: start
             * fetching it while the others are handled. */
            __builtin_prefetch(l->next);
            (*q)++;
            return entry_of(h);
        }
        /* Position *q was cancelled: skip to the smallest one left. */
        bool any = false;
        uint32_t min = 0;
        for (unsigned j = 0; j < WAYS; j++) {
            if (list_empty(&loc[j]))
                continue;
            uint32_t p = entry_of(loc[j].next)->pos;
            if (!any || p < min)
                min = p;
            any = true;
        }
        if (!any)
            return NULL;
        *q = min;
    }
}

/* Appends e to level-0 slot s with the next arrival number. */
static void append_level0(amb__wheel *w, amb__wheel_entry *e, unsigned s)
{
    e->pos = w->npos[s]++;
    unsigned li = s * WAYS + (e->pos & (WAYS - 1));
    e->where = li + 1;
    list_append(&w->lists[li], &e->link);
}

/* Gives the entries of level-0 slot s fresh arrival numbers 0, 1, ...
 * keeping their order. Needed only if one slot saw 2^32 arrivals without
 * ever being emptied (an entry kept while others are armed and cancelled
 * beside it, with the wheel never advanced). */
static void renumber(amb__wheel *w, unsigned s)
{
    amb__wheel_link loc[WAYS];
    amb__wheel_entry *e;
    uint32_t q = 0;

    take_slot(w, s, loc);
    w->npos[s] = 0;
    while ((e = take_next(loc, &q)) != NULL)
        append_level0(w, e, s);
}

/* Puts e (deadline >= w->now) into its level, slot and way, or the
 * overflow list. A deadline equal to now happens only while cascading at
 * tick now; it lands in level 0's current slot, which the advance loop
 * fires next. */
static void place(amb__wheel *w, amb__wheel_entry *e)
{
    uint64_t d = e->deadline;
    uint64_t x = d ^ w->now;

    assert(d >= w->now);
    if (x >> TOP_BITS != 0) {
        e->where = OVERFLOW_INDEX + 1;
        list_append(&w->overflow, &e->link);
        if (d < w->overflow_min)
            w->overflow_min = d;
        return;
    }
    unsigned level =
        x < AMB__WHEEL_SLOTS ? 0 : (unsigned)(63 - __builtin_clzll(x)) / AMB__WHEEL_BITS;
    unsigned s = (unsigned)(d >> (AMB__WHEEL_BITS * level)) & SLOT_MASK;

    w->occupied[level] |= (uint64_t)1 << s;
    if (level == 0) {
        if (w->npos[s] > w->pos_limit)
            renumber(w, s);
        append_level0(w, e, s);
        return;
    }
    unsigned li = (level * AMB__WHEEL_SLOTS + s) * WAYS + ((unsigned)d & (WAYS - 1));
    e->where = li + 1;
    list_append(&w->lists[li], &e->link);
    if (d < w->slot_min[level - 1][s])
        w->slot_min[level - 1][s] = d;
}

/* Takes e off its list; keeps the occupancy bitmap exact. */
static void detach(amb__wheel *w, amb__wheel_entry *e)
{
    unsigned li = e->where - 1;

    assert(e->where != 0 && li <= OVERFLOW_INDEX);
    list_unlink(&e->link);
    e->where = 0;
    if (li < NLISTS) {
        unsigned slot = li / WAYS;
        if (slot_empty(w, slot)) {
            unsigned level = slot / AMB__WHEEL_SLOTS, s = slot % AMB__WHEEL_SLOTS;
            w->occupied[level] &= ~((uint64_t)1 << s);
            /* Both could stay (a stale lower bound, a higher count), but
             * resetting keeps next_deadline exact and numbers small. */
            if (level > 0)
                w->slot_min[level - 1][s] = UINT64_MAX;
            else
                w->npos[s] = 0;
        }
    } else if (li == OVERFLOW_INDEX && list_empty(&w->overflow)) {
        w->overflow_min = UINT64_MAX;
    }
}

void amb__wheel_init(amb__wheel *w, uint64_t now_ms)
{
    w->now = now_ms;
    w->count = 0;
    w->advancing = false;
    memset(w->occupied, 0, sizeof w->occupied);
    memset(w->npos, 0, sizeof w->npos);
    w->pos_limit = UINT32_MAX - 1;
    for (unsigned l = 0; l + 1 < AMB__WHEEL_LEVELS; l++)
        for (unsigned s = 0; s < AMB__WHEEL_SLOTS; s++)
            w->slot_min[l][s] = UINT64_MAX;
    w->overflow_min = UINT64_MAX;
    for (unsigned i = 0; i < NLISTS; i++)
        list_init(&w->lists[i]);
    list_init(&w->due);
    list_init(&w->overflow);
}

void amb__wheel_entry_init(amb__wheel_entry *e)
{
    memset(e, 0, sizeof *e);
}

void amb__wheel_arm(amb__wheel *w, amb__wheel_entry *e, uint64_t deadline_ms)
{
    if (e->where != 0)
        detach(w, e);
    else
        w->count++;
    e->deadline = deadline_ms;
    if (deadline_ms <= w->now) {
        e->where = DUE_INDEX + 1;
        list_append(&w->due, &e->link);
    } else {
        place(w, e);
    }
}

bool amb__wheel_cancel(amb__wheel *w, amb__wheel_entry *e)
{
    if (e->where == 0)
        return false;
    detach(w, e);
    w->count--;
    return true;
}

/* Hands e to the callback: it is idle from here on. */
static void fire_one(amb__wheel *w, amb__wheel_entry *e, amb__wheel_fire_fn *fire,
                     void *ctx)
{
    e->where = 0;
    w->count--;
    fire(ctx, e);
}

/* Fires level-0 slot s in arrival order. The callback may cancel entries
 * still on the detached ways (they unlink themselves) and arm new ones;
 * those never land in this slot (their deadline would be now: due list). */
static size_t fire_slot(amb__wheel *w, unsigned s, amb__wheel_fire_fn *fire, void *ctx)
{
    amb__wheel_link loc[WAYS];
    amb__wheel_entry *e;
    uint32_t q = 0;
    size_t n = 0;

    take_slot(w, s, loc);
    w->occupied[0] &= ~((uint64_t)1 << s);
    w->npos[s] = 0;
    while ((e = take_next(loc, &q)) != NULL) {
        fire_one(w, e, fire, ctx);
        n++;
    }
    return n;
}

/* Moves every entry of slot `slot` (level >= 1) down, relative to w->now,
 * taking the ways in turn so that their cache misses overlap. */
static void cascade(amb__wheel *w, unsigned level, unsigned s)
{
    amb__wheel_link loc[WAYS];
    unsigned slot = level * AMB__WHEEL_SLOTS + s;
    bool any = true;

    take_slot(w, slot, loc);
    w->occupied[level] &= ~((uint64_t)1 << s);
    w->slot_min[level - 1][s] = UINT64_MAX;
    while (any) {
        any = false;
        for (unsigned j = 0; j < WAYS; j++) {
            amb__wheel_link *h = loc[j].next;
            if (h == &loc[j])
                continue;
            any = true;
            list_unlink(h);
            __builtin_prefetch(loc[j].next);
            place(w, entry_of(h));
        }
    }
}

/* The next tick at which something happens, and where. Returns false when
 * nothing is pending in the levels or the overflow list. The lowest
 * non-empty level always holds the earliest event: its slots lie inside
 * the current block of the level above, whose own slots lie beyond it. */
static bool next_event(const amb__wheel *w, uint64_t *tick, unsigned *level, unsigned *s)
{
    for (unsigned l = 0; l < AMB__WHEEL_LEVELS; l++) {
        if (w->occupied[l] != 0) {
            *level = l;
            *s = (unsigned)__builtin_ctzll(w->occupied[l]);
            *tick = slot_start(w->now, l, *s);
            return true;
        }
    }
    if (!list_empty(&w->overflow)) {
        /* The levels are empty, so nothing happens before the start of the
         * 2^36 block of the earliest overflow deadline (overflow_min is a
         * lower bound of them): jump there, not to the next boundary, or a
         * deadline 2^62 ms away would take 2^26 rounds of re-placing the
         * list. Each round then places at least the entries of that block,
         * or tightens a stale overflow_min, so the rounds are bounded by the
         * entries. It cannot wrap: an overflow entry has d >> 36 > now >> 36,
         * so now >> 36 is not the largest value, and the next boundary is a
         * lower bound when overflow_min is stale below it. */
        uint64_t next = ((w->now >> TOP_BITS) + 1) << TOP_BITS;
        uint64_t first = (w->overflow_min >> TOP_BITS) << TOP_BITS;
        *level = AMB__WHEEL_LEVELS;
        *s = 0;
        *tick = first > next ? first : next;
        return true;
    }
    return false;
}

size_t amb__wheel_advance(amb__wheel *w, uint64_t now_ms, amb__wheel_fire_fn *fire,
                          void *ctx)
{
    amb__wheel_link local;
    size_t n = 0;

    assert(!w->advancing);
    w->advancing = true;
    if (now_ms < w->now)
        now_ms = w->now;

    /* Entries armed in the past come first: their deadlines are all at or
     * before w->now, earlier than anything in the levels. The callback may
     * arm more of them; those wait for the next advance. */
    if (!list_empty(&w->due)) {
        list_take(&w->due, &local);
        while (!list_empty(&local)) {
            amb__wheel_entry *e = entry_of(local.next);
            list_unlink(&e->link);
            fire_one(w, e, fire, ctx);
            n++;
        }
    }

    uint64_t tick;
    unsigned level, s;
    while (next_event(w, &tick, &level, &s) && tick <= now_ms) {
        /* Jumping straight to the event keeps every invariant: no slot
         * starts between the old time and tick. */
        w->now = tick;
        if (level == 0) {
            n += fire_slot(w, s, fire, ctx);
        } else if (level < AMB__WHEEL_LEVELS) {
            cascade(w, level, s);
        } else {
            list_take(&w->overflow, &local);
            w->overflow_min = UINT64_MAX;
            while (!list_empty(&local)) {
                amb__wheel_entry *e = entry_of(local.next);
                list_unlink(&e->link);
                place(w, e);
            }
        }
    }
    w->now = now_ms;
    w->advancing = false;
    return n;
}

uint64_t amb__wheel_next_deadline(const amb__wheel *w)
{
    uint64_t tick, min;
    unsigned level, s;

    if (w->count == 0)
        return UINT64_MAX;
    if (!list_empty(&w->due))
        return w->now;
    if (!next_event(w, &tick, &level, &s))
        return UINT64_MAX; /* unreachable while count > 0 */
    if (level == 0)
        return tick; /* a level-0 slot holds exactly one deadline */
    min = level < AMB__WHEEL_LEVELS ? w->slot_min[level - 1][s] : w->overflow_min;
    /* Every entry of the slot lies at or after its start, and slot_min is a
     * lower bound of them (exact unless its entry was cancelled). */
    return min > tick ? min : tick;
}

/*
 * timer.c - timers on each scheduler's wheel, their cross-thread cancel and
 * their references (timer.h explains the states and who touches what).
 *
 * A reference is (owner + 1) << 53 | generation << 24 | slot: the owner's
 * id + 1 in 11 bits (so a reference is never 0; 1024 schedulers fit), a
 * 29-bit generation bumped when the slot is freed, and the slot in the
 * owner's table (at most 2^24 timers with references per scheduler).
 * Freed slots are reused oldest first, so a stale reference names another
 * timer only after every other free slot was used once, 2^29 times over
 * (with LIFO reuse and 24 bits, a cancel/arm loop brought a reference back
 * after 2^24 timers; issue 13).
 *
 * Firing is two steps: under the wheel's lock the due entries are taken
 * off the wheel into a private list (nothing else is done there, so the
 * lock is held for pointer moves only); then, without it, each one's
 * reference is freed and it goes to ops->timer_fire. The layer above may
 * do anything there (deliver a message, wake a task), arms included, since
 * no wheel lock is held.
 */
#include "runtime/timer.h"

#include "runtime/exec.h"

#define NO_SLOT     AMB__TIMER_NO_SLOT
#define OWNER_SHIFT 53
#define GEN_SHIFT   24
#define GEN_MASK    ((1u << (OWNER_SHIFT - GEN_SHIFT)) - 1)
#define SLOT_MAX    ((size_t)1 << GEN_SHIFT)

typedef struct amb__timer_refs refs;

int amb__timer_init(amb__sched *s, uint64_t now_ms)
{
    refs *r = amb__calloc(1, sizeof *r);
    if (r == NULL)
        return AMB_ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    s->timer_refs = r;
    amb__wheel_init(&s->wheel, now_ms);
    return 0;
}

/* A slot for t in r, or AMB_ENOMEM. */
static int ref_alloc(refs *r, amb__timer *t, uint32_t *slot, uint32_t *gen)
{
    pthread_mutex_lock(&r->lock);
    if (r->nfree == 0 && r->len == r->cap) {
        /* Full: twice the room (the ring is empty: no order to keep). */
        size_t cap = r->cap ? r->cap * 2 : 1024;
        amb__timer **timers =
            cap <= SLOT_MAX ? amb__realloc(r->timers, cap * sizeof *timers) : NULL;
        if (timers != NULL)
            r->timers = timers;
        uint32_t *gens = timers ? amb__realloc(r->gens, cap * sizeof *gens) : NULL;
        if (gens != NULL)
            r->gens = gens;
        uint32_t *fr = gens ? amb__realloc(r->free, cap * sizeof *fr) : NULL;
        if (fr != NULL)
            r->free = fr;
        if (fr == NULL) {
            pthread_mutex_unlock(&r->lock);
            return AMB_ENOMEM;
        }
        r->cap = cap;
        r->free_head = 0;
    }
    /* Round-robin: the never-used slots first, then the oldest freed one
     * (the table grows only when neither is left). */
    uint32_t i;
    if (r->len < r->cap) {
        i = (uint32_t)r->len++;
        r->gens[i] = 0;
    } else {
        i = r->free[r->free_head];
        r->free_head = r->free_head + 1 == r->cap ? 0 : r->free_head + 1;
        r->nfree--;
    }
    r->timers[i] = t;
    *slot = i;
    *gen = r->gens[i];
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* Frees slot (under r->lock): its reference goes stale. */
static void ref_release(refs *r, uint32_t slot)
{
    r->timers[slot] = NULL;
    r->gens[slot] = (r->gens[slot] + 1) & GEN_MASK;
    size_t at = r->free_head + r->nfree;
    r->free[at >= r->cap ? at - r->cap : at] = slot;
    r->nfree++;
}

static void ref_free(refs *r, uint32_t slot)
{
    pthread_mutex_lock(&r->lock);
    ref_release(r, slot);
    pthread_mutex_unlock(&r->lock);
}

int amb__timer_arm_ref(amb__sched *s, amb__timer *t, uint64_t ms, uint64_t *ref)
{
    uint32_t slot, gen;
    if (ref_alloc(s->timer_refs, t, &slot, &gen) != 0)
        return AMB_ENOMEM;
    amb__timer_arm(s, t, ms);
    t->slot = slot;
    *ref = ((uint64_t)(s->id + 1) << OWNER_SHIFT) | ((uint64_t)gen << GEN_SHIFT) | slot;
    return 0;
}

/* Recomputes owner's timer_next after its wheel changed (under its lock). */
static void publish_next(amb__sched *owner)
{
    /* relaxed: see amb__timer_arm. */
    atomic_store_explicit(&owner->timer_next, amb__wheel_next_deadline(&owner->wheel),
                          memory_order_relaxed);
}

bool amb__timer_cancel_slow(amb__sched *s, amb__timer *t)
{
    amb__sched *o = t->owner == s->id ? s : amb__exec_sched(s->exec, t->owner);
    amb__spin_lock(&o->wheel_lock);
    bool on = amb__wheel_cancel(&o->wheel, &t->entry);
    amb__spin_unlock(&o->wheel_lock);
    /* Off the wheel: ours, and so is its reference slot (a find racing
     * with us locks the wheel after the table and finds it gone). */
    if (on && t->slot != NO_SLOT) {
        ref_free(o->timer_refs, t->slot);
        t->slot = NO_SLOT;
    }
    return on;
}

/* Takes t (pending) off owner's wheel and frees its reference: under both
 * of owner's locks. */
static amb__timer *take_back(amb__sched *owner, amb__timer *t)
{
    amb__wheel_cancel(&owner->wheel, &t->entry);
    ref_release(owner->timer_refs, t->slot);
    t->slot = NO_SLOT;
    return t;
}

int amb__timer_find(amb__sched *cur, uint64_t ref, bool cancel, amb__timer_gone_fn *gone,
                    void *ctx, int64_t *left_ms, amb__timer **freed)
{
    amb__exec *x = cur->exec;
    *freed = NULL;
    unsigned owner = (unsigned)(ref >> OWNER_SHIFT);
    if (owner == 0 || owner > x->nsched)
        return AMB_EBADARG;
    amb__sched *s = amb__exec_sched(x, owner - 1);
    refs *r = s->timer_refs;
    uint32_t slot = (uint32_t)(ref & (SLOT_MAX - 1)),
             gen = (uint32_t)(ref >> GEN_SHIFT) & GEN_MASK;
    int rc = AMB_ENOTFOUND;
    pthread_mutex_lock(&r->lock);
    if (slot < r->len && r->gens[slot] == gen && r->timers[slot] != NULL) {
        amb__timer *t = r->timers[slot];
        /* The wheel's lock inside the table's (the one order): the entry
         * is pending until a firer or a canceller takes it off. */
        amb__spin_lock(&s->wheel_lock);
        bool pending = amb__wheel_pending(&t->entry);
        if (pending && gone != NULL && gone(ctx, t)) {
            /* Gone for its user: not found, and a cancel frees it now. */
            if (cancel)
                *freed = take_back(s, t);
        } else if (pending) {
            /* The deadline carries one tick of margin (amb__timer_arm): it
             * is not time the caller asked for, so it is not reported. */
            uint64_t now = amb__clock_ms(&x->clock) + 1;
            uint64_t deadline = amb__wheel_deadline(&t->entry);
            if (left_ms != NULL)
                *left_ms = deadline > now ? (int64_t)(deadline - now) : 0;
            rc = 0;
            if (cancel)
                *freed = take_back(s, t);
        }
        amb__spin_unlock(&s->wheel_lock);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* The wheel's callback while collecting (under the lock): the entry is
 * idle, so its link is free to chain it on the private list. */
typedef struct collected {
    amb__wheel_link *head, **tail;
} collected;

static void collect(void *ctx, amb__wheel_entry *e)
{
    collected *c = ctx;
    e->link.next = NULL;
    *c->tail = &e->link;
    c->tail = &e->link.next;
}

size_t amb__timer_fire_due(amb__sched *s, amb__sched *owner, uint64_t now_ms, bool wait)
{
    if (wait)
        amb__spin_lock(&owner->wheel_lock);
    else if (!amb__spin_trylock(&owner->wheel_lock))
        return 0;
    collected c = {NULL, &c.head};
    size_t n = amb__wheel_advance(&owner->wheel, now_ms, collect, &c);
    publish_next(owner);
    amb__spin_unlock(&owner->wheel_lock);
    /* In deadline order (the wheel's), and in arm order among equal
     * deadlines. The references are the owner's. */
    for (amb__wheel_link *l = c.head; l != NULL;) {
        amb__timer *t = (amb__timer *)(void *)l;
        l = l->next;
        if (t->slot != NO_SLOT) {
            ref_free(owner->timer_refs, t->slot);
            t->slot = NO_SLOT;
        }
        s->exec->ops.timer_fire(s, t, true);
    }
    return n;
}

static void discard(void *ctx, amb__wheel_entry *e)
{
    amb__sched *s = ctx;
    s->exec->ops.timer_fire(s, (amb__timer *)(void *)e, false);
}

void amb__timer_term(amb__sched *s)
{
    /* Advance to the end of time, handing every timer over as not live
     * (nothing runs any more: no lock needed). */
    amb__wheel_advance(&s->wheel, UINT64_MAX - 1, discard, s);
    refs *r = s->timer_refs;
    if (r != NULL) {
        amb__free(r->timers);
        amb__free(r->gens);
        amb__free(r->free);
        pthread_mutex_destroy(&r->lock);
        amb__free(r);
        s->timer_refs = NULL;
    }
}

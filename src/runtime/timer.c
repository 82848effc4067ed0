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
 */
#include "runtime/timer.h"

#include "runtime/exec.h"

#define ARMED       AMB__TIMER_ARMED
#define FIRED       AMB__TIMER_FIRED
#define CANCELLED   AMB__TIMER_CANCELLED
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

void amb__timer_unref(amb__sched *s, amb__timer *t)
{
    ref_free(s->timer_refs, t->slot);
    t->slot = NO_SLOT;
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
    /* On the owner's own thread the wheel is ours to change: a cancelled
     * timer leaves the wheel and goes back to the caller now, not at its
     * deadline. */
    bool own = cancel && cur == s;
    int rc = AMB_ENOTFOUND;
    pthread_mutex_lock(&r->lock);
    if (slot < r->len && r->gens[slot] == gen && r->timers[slot] != NULL) {
        amb__timer *t = r->timers[slot];
        /* acquire: more than needed (see amb__timer_cancel): the state
         * only decides what we report. A timer seen ARMED may still fire
         * meanwhile; the CAS below settles that for a cancel. */
        uint32_t state = atomic_load_explicit(&t->state, memory_order_acquire);
        if (state == ARMED && gone != NULL && gone(ctx, t))
            state = CANCELLED;
        if (state == ARMED) {
            /* The deadline carries one tick of margin (amb__timer_arm): it
             * is not time the caller asked for, so it is not reported. */
            uint64_t now = amb__clock_ms() + 1;
            uint64_t deadline = amb__wheel_deadline(&t->entry);
            if (left_ms != NULL)
                *left_ms = deadline > now ? (int64_t)(deadline - now) : 0;
            rc = 0;
            uint32_t armed = ARMED;
            /* acq_rel: as in amb__timer_cancel: the RMW decides. */
            if (cancel && !atomic_compare_exchange_strong_explicit(
                              &t->state, &armed, CANCELLED, memory_order_acq_rel,
                              memory_order_relaxed)) {
                rc = AMB_ENOTFOUND;
            } else if (own && amb__wheel_cancel(&s->wheel, &t->entry)) {
                ref_release(r, slot);
                *freed = t;
            }
        }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static void fire(void *ctx, amb__wheel_entry *e)
{
    amb__sched *s = ctx;
    amb__timer *t = (amb__timer *)(void *)e;
    uint32_t armed = ARMED;
    /* Success (acq_rel): the RMW alone decides against a canceller's CAS
     * whether the timer is live; more than needed there. Failure (acquire):
     * a canceller from another scheduler won, and this thread is about to
     * free the timer and reuse its memory; the canceller read the timer
     * (owner, slot) before its release CAS, so reading CANCELLED with
     * acquire orders those reads before the reuse. Relaxed let the reuse
     * race with them (issue 13, item 9). */
    bool live = atomic_compare_exchange_strong_explicit(
        &t->state, &armed, FIRED, memory_order_acq_rel, memory_order_acquire);
    if (t->slot != NO_SLOT)
        ref_free(s->timer_refs, t->slot);
    s->exec->ops.timer_fire(s, t, live);
}

void amb__timer_advance(amb__sched *s, uint64_t now_ms)
{
    amb__wheel_advance(&s->wheel, now_ms, fire, s);
}

static void discard(void *ctx, amb__wheel_entry *e)
{
    amb__sched *s = ctx;
    s->exec->ops.timer_fire(s, (amb__timer *)(void *)e, false);
}

void amb__timer_term(amb__sched *s)
{
    /* Advance to the end of time, handing every timer over as not live. */
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

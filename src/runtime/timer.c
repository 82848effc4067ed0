/*
 * timer.c - timers on each scheduler's wheel: receive timeouts, send_after,
 * cancel_timer / read_timer, sleep.
 *
 * A timer is a message cell (msg.c) whose buffer holds struct timer. The
 * scheduler that arms it owns it: only that thread arms, fires and frees it
 * on its wheel. Its `state` is the one word other threads touch:
 *
 *   ARMED --(owner fires)--> FIRED      the owner delivers, then frees
 *   ARMED --(anyone cancels)--> CANCELLED   the owner frees it when its
 *                                           deadline comes (lazy: no
 *                                           cross-thread wheel surgery)
 *
 * A cancel on the owner's own thread also takes the entry off the wheel at
 * once, so the common case (a process woken by its message on the scheduler
 * that armed its timeout) leaves nothing behind.
 *
 * Receive timeouts: firing pushes the timer cell itself into the process's
 * mailbox as a TIMEOUT signal (so waking a parked process goes through the
 * one protocol of mpscq.h, and a timeout that loses the race with a message
 * is simply recognised as stale by the process and freed).
 *
 * send_after: the message is copied, when the timer is armed, into the
 * timer's own cell behind the timer state; firing turns the cell into an
 * ordinary message and delivers it (one allocation per timer). Timer references are
 * (owner scheduler, slot, generation) triples into the owner's handle table, which is
 * guarded by the owner's timer lock because cancel and read may come from anywhere.
 */
#include <pthread.h>

#include "runtime/sched.h"

enum { ARMED = 1, FIRED, CANCELLED };

typedef struct timer {
    amb__wheel_entry entry;
    amb_pid target;     /* the waiting process, or send_after's pid */
    amb_term dest_name; /* send_after to a name: looked up when it fires */
    bool is_send;       /* send_after (else a receive timeout) */
    _Atomic uint32_t state;
    uint32_t owner;  /* scheduler id */
    uint32_t handle; /* send_after: slot in the owner's handle table */
} timer;

#define TIMER_WORDS ((sizeof(timer) + 7) / 8)

static inline timer *timer_of(amb__msg *m)
{
    return (timer *)(void *)m->words;
}

static inline amb__msg *cell_of_entry(amb__wheel_entry *e)
{
    return (amb__msg *)(void *)((char *)e - offsetof(amb__msg, words));
}

/* The handle table of one scheduler (send_after references). */
typedef struct handles {
    pthread_mutex_t lock;
    amb__msg **cells; /* slot -> armed cell, or NULL */
    uint32_t *gens;   /* slot -> generation */
    uint32_t *free;   /* free slots */
    size_t len, cap, nfree;
} handles;

/* A scheduler's timer state beyond its wheel (s->timers, made by
 * amb__timers_init when the runtime is created). */
typedef struct timers {
    handles h;
} timers;

static timers *timers_of(amb__sched *s)
{
    return (timers *)s->timers;
}

/* Makes the timer state in m's reserved words and arms it on s. */
static void timer_arm(amb__sched *s, amb__msg *m, amb_pid target, uint64_t deadline)
{
    timer *t = timer_of(m);
    amb__wheel_entry_init(&t->entry);
    t->target = target;
    t->dest_name = AMB_NONE;
    t->is_send = false;
    atomic_init(&t->state, ARMED);
    t->owner = s->id;
    t->handle = UINT32_MAX;
    amb__wheel_arm(&s->wheel, &t->entry, deadline);
}

/* The deadline base: the clock now (the wheel's own time may lag), plus one
 * tick, because the clock is in whole milliseconds and "now" may be almost
 * a millisecond old already: a timer never fires early. */
static uint64_t now_of(amb__sched *s)
{
    s->now_ms = amb__clock_ms();
    return s->now_ms + 1;
}

/* now + ms. Every caller checked ms <= AMB_TIMEOUT_MAX (amb__timeout_ok),
 * so the deadline neither wraps nor leaves the wheel's range, and the
 * wheel's end of time (used to flush it at shutdown) stays beyond it. */
static uint64_t deadline_of(amb__sched *s, uint64_t ms)
{
    return now_of(s) + ms;
}

int amb__timer_wait(amb__sched *s, amb_proc *p, uint64_t ms)
{
    amb__msg *m = amb__msg_alloc(s, TIMER_WORDS);
    if (m == NULL)
        return AMB_ENOMEM;
    m->kind = AMB__MSG_TIMEOUT;
    timer_arm(s, m, p->pid, deadline_of(s, ms));
    m->wait_seq = p->wait_seq;
    p->wait_timer = m;
    return 0;
}

void amb__timer_wait_cancel(amb__sched *s, amb_proc *p)
{
    amb__msg *m = p->wait_timer;
    if (m == NULL)
        return;
    p->wait_timer = NULL;
    timer *t = timer_of(m);
    if (t->owner == s->id) {
        /* Our own wheel: if it has not fired, take it off and free it. */
        if (amb__wheel_cancel(&s->wheel, &t->entry))
            amb__msg_free(s, m);
        /* else it fired already and sits in the mailbox: stale, freed there */
        return;
    }
    uint32_t armed = ARMED;
    /* acq_rel: against the owner's CAS to FIRED; whoever wins decides. */
    atomic_compare_exchange_strong_explicit(&t->state, &armed, CANCELLED,
                                            memory_order_acq_rel, memory_order_relaxed);
    /* Lost the race: it fired and is (or will be) in the mailbox, stale. */
}

/* ---------------------------------------------------------------------------
 * send_after handles
 * ------------------------------------------------------------------------ */

int amb__timers_init(amb__sched *s)
{
    timers *ts = amb__calloc(1, sizeof *ts);
    if (ts == NULL)
        return AMB_ENOMEM;
    pthread_mutex_init(&ts->h.lock, NULL);
    s->timers = ts;
    return 0;
}

static int handle_alloc(handles *h, amb__msg *m, uint32_t *slot, uint32_t *gen)
{
    pthread_mutex_lock(&h->lock);
    if (h->nfree == 0 && h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        amb__msg **cells = amb__realloc(h->cells, cap * sizeof *cells);
        if (cells != NULL)
            h->cells = cells;
        uint32_t *gens = cells ? amb__realloc(h->gens, cap * sizeof *gens) : NULL;
        if (gens != NULL)
            h->gens = gens;
        uint32_t *fr = gens ? amb__realloc(h->free, cap * sizeof *fr) : NULL;
        if (fr != NULL)
            h->free = fr;
        if (fr == NULL || cap > UINT32_MAX) {
            pthread_mutex_unlock(&h->lock);
            return AMB_ENOMEM;
        }
        h->cap = cap;
    }
    uint32_t i;
    if (h->nfree > 0) {
        i = h->free[--h->nfree];
    } else {
        i = (uint32_t)h->len++;
        h->gens[i] = 0;
    }
    h->cells[i] = m;
    *slot = i;
    *gen = h->gens[i];
    pthread_mutex_unlock(&h->lock);
    return 0;
}

static void handle_free(handles *h, uint32_t slot)
{
    pthread_mutex_lock(&h->lock);
    h->cells[slot] = NULL;
    h->gens[slot] = (h->gens[slot] + 1) & 0xffffff;
    h->free[h->nfree++] = slot;
    pthread_mutex_unlock(&h->lock);
}

static amb_tref make_tref(unsigned owner, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)(owner + 1) << 56) | ((uint64_t)gen << 32) | slot;
}

int amb_send_after(amb_proc *self, amb_term dest, amb_term msg, int64_t delay_ms,
                   amb_tref *tref)
{
    if (self == NULL || msg == AMB_NONE || !amb__timeout_ok(delay_ms, false) ||
        (!amb_is_atom(dest) && !amb_is_local_pid(dest)))
        return AMB_EBADARG;
    if (amb_is_local_pid(dest) && amb__lpid_slot(dest) != self->rt->node_slot)
        return AMB_ENOTSUP;
    amb__sched *s = self->sched;
    amb__msg *m = amb__msg_new_term_after(s, msg, TIMER_WORDS);
    if (m == NULL)
        return AMB_ENOMEM;
    m->kind = AMB__MSG_TIMEOUT; /* until it fires: then an ordinary message */
    timer_arm(s, m, amb_is_atom(dest) ? AMB_NONE : dest,
              deadline_of(s, (uint64_t)delay_ms));
    timer *t = timer_of(m);
    t->is_send = true;
    t->dest_name = amb_is_atom(dest) ? dest : AMB_NONE;
    if (tref != NULL) {
        uint32_t slot, gen;
        if (handle_alloc(&timers_of(s)->h, m, &slot, &gen) != 0) {
            amb__wheel_cancel(&s->wheel, &t->entry);
            amb__msg_free(s, m);
            return AMB_ENOMEM;
        }
        t->handle = slot;
        *tref = make_tref(s->id, slot, gen);
    }
    amb__proc_reduce(self);
    return 0;
}

/* Finds the armed timer of tref under its owner's lock and applies op. */
static int with_tref(amb_proc *self, amb_tref tref, bool cancel, int64_t *left_ms)
{
    if (self == NULL)
        return AMB_EBADARG;
    unsigned owner = (unsigned)(tref >> 56);
    if (owner == 0 || owner > self->rt->nsched)
        return AMB_EBADARG;
    amb__sched *s = &self->rt->scheds[owner - 1];
    handles *h = &timers_of(s)->h;
    uint32_t slot = (uint32_t)tref, gen = (uint32_t)(tref >> 32) & 0xffffff;
    /* On the owner's own thread the wheel is ours to change: a cancelled
     * timer leaves the wheel and is freed now, not at its deadline. */
    bool own = cancel && self->sched == s;
    amb__msg *reclaim = NULL;
    int rc = AMB_ENOTFOUND;
    pthread_mutex_lock(&h->lock);
    if (slot < h->len && h->gens[slot] == gen && h->cells[slot] != NULL) {
        amb__msg *m = h->cells[slot];
        timer *t = timer_of(m);
        uint32_t state = atomic_load_explicit(&t->state, memory_order_acquire);
        /* A timer aimed at a pid dies with that process, as in Erlang: it
         * reads as gone (it is freed when its deadline comes). */
        if (state == ARMED && t->dest_name == AMB_NONE &&
            amb__ptab_lookup(self->rt, t->target) == NULL)
            state = CANCELLED;
        if (state == ARMED) {
            /* The deadline carries one tick of margin (now_of): it is not
             * time the caller asked for, so it is not reported. */
            uint64_t now = amb__clock_ms() + 1;
            uint64_t deadline = amb__wheel_deadline(&t->entry);
            if (left_ms != NULL)
                *left_ms = deadline > now ? (int64_t)(deadline - now) : 0;
            rc = 0;
            if (cancel) {
                uint32_t armed = ARMED;
                /* acq_rel: against the owner's CAS to FIRED. */
                if (!atomic_compare_exchange_strong_explicit(&t->state, &armed, CANCELLED,
                                                             memory_order_acq_rel,
                                                             memory_order_relaxed))
                    rc = AMB_ENOTFOUND;
                else if (own && amb__wheel_cancel(&s->wheel, &t->entry)) {
                    h->cells[slot] = NULL;
                    h->gens[slot] = (h->gens[slot] + 1) & 0xffffff;
                    h->free[h->nfree++] = slot;
                    reclaim = m;
                }
            }
        }
    }
    pthread_mutex_unlock(&h->lock);
    if (reclaim != NULL)
        amb__msg_free(s, reclaim);
    return rc;
}

int amb_cancel_timer(amb_proc *self, amb_tref tref, int64_t *left_ms)
{
    return with_tref(self, tref, true, left_ms);
}

int amb_read_timer(amb_proc *self, amb_tref tref, int64_t *left_ms)
{
    return with_tref(self, tref, false, left_ms);
}

int amb_sleep(amb_proc *self, int64_t ms)
{
    if (self == NULL || !amb__timeout_ok(ms, true))
        return AMB_EBADARG;
    /* A receive that matches nothing, with a timeout. */
    amb_term unused;
    int rc = amb_receive_if(self, amb__match_nothing, NULL, ms, &unused);
    return rc == AMB_ETIMEDOUT ? 0 : rc;
}

bool amb__match_nothing(void *ctx, amb_term msg)
{
    (void)msg;
    (void)ctx;
    return false;
}

/* ---------------------------------------------------------------------------
 * Firing
 * ------------------------------------------------------------------------ */

static void fire(void *ctx, amb__wheel_entry *e)
{
    amb__sched *s = ctx;
    amb__msg *m = cell_of_entry(e);
    timer *t = timer_of(m);
    uint32_t armed = ARMED;
    bool live = atomic_compare_exchange_strong_explicit(
        &t->state, &armed, FIRED, memory_order_acq_rel, memory_order_relaxed);
    if (t->handle != UINT32_MAX)
        handle_free(&timers_of(s)->h, t->handle);
    amb_rt *rt = s->rt;
    amb_proc *p = NULL;
    if (live && !t->is_send)
        p = amb__ptab_lookup(rt, t->target);
    else if (live)
        p = t->dest_name != AMB_NONE ? amb__names_lookup(rt, t->dest_name)
                                     : amb__ptab_lookup(rt, t->target);
    if (p == NULL) {
        amb__msg_free(s, m);
        return;
    }
    /* A receive timeout is delivered as the TIMEOUT signal it is; a
     * send_after cell becomes the message it carries. */
    if (t->is_send)
        m->kind = AMB__MSG_TERM;
    amb__mailbox_deliver(rt, s, p, m);
}

void amb__timers_advance(amb__sched *s, uint64_t now_ms)
{
    amb__wheel_advance(&s->wheel, now_ms, fire, s);
}

static void discard(void *ctx, amb__wheel_entry *e)
{
    amb__sched *s = ctx;
    amb__msg_free(s, cell_of_entry(e));
}

void amb__timers_free_all(amb__sched *s)
{
    /* Advance to the end of time, discarding instead of delivering. */
    amb__wheel_advance(&s->wheel, UINT64_MAX - 1, discard, s);
    timers *ts = timers_of(s);
    if (ts != NULL) {
        amb__free(ts->h.cells);
        amb__free(ts->h.gens);
        amb__free(ts->h.free);
        pthread_mutex_destroy(&ts->h.lock);
        amb__free(ts);
        s->timers = NULL;
    }
}

/*
 * sched.c - the scheduler loop: pick a runnable process, switch to it, act
 * on what it asks when it switches back; steal, sleep and wake; timers; and
 * the quiescent points of QSBR (sched.h explains the design).
 *
 * Invariants:
 *   - A process runs on at most one scheduler: it is switched to only after
 *     being taken from exactly one run queue, and it becomes findable again
 *     (parked mailbox, run queue) only after it has switched out completely,
 *     because parking is done here, on the scheduler's stack, after the
 *     switch (Go's park_m pattern). So no two threads ever run one context.
 *   - A scheduler's own fields (wheel, caches, limbo) are touched only by its
 *     thread; other threads touch only its run queue (steal), its futex and
 *     `sleeping` flag (wake), and read epoch_seen / run_started_ms.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime/sched.h"

#define BUDGET        2000 /* reductions per run, as BEAM's 4000 halved */
#define HANDLER_BATCH 64   /* messages a handler takes per activation */
#define SPIN_ROUNDS   64   /* steal attempts before sleeping */
#define INJECT_EVERY  4    /* check the inject queue first this often (fairness) */
#define CLOCK_EVERY   16   /* read the clock this often */
#define RECLAIM_AT    64   /* limbo length that triggers reclamation */
#define DIRECT_EVERY  16   /* every this many switches go through the loop */

uint64_t amb__clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t amb_now_ms(void)
{
    return (int64_t)amb__clock_ms();
}

/* ---------------------------------------------------------------------------
 * Sleeping and waking
 * ------------------------------------------------------------------------ */

static void futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ms)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void wake_sched(amb__sched *s)
{
    /* release: the work added before this wake is visible to the sleeper,
     * which re-reads the queues after its futex wait returns. */
    atomic_fetch_add_explicit(&s->futex, 1, memory_order_release);
    futex_wake(&s->futex);
}

void amb__sched_wake_one(amb_rt *rt)
{
    /* seq_cst: pairs with the sleeper's seq_cst increment of nsleeping and
     * its re-check of the queues (a Dekker pattern): either we see it
     * sleeping, or it sees the work we added. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&rt->nspinning, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&rt->nsleeping, memory_order_relaxed) == 0)
        return;
    for (unsigned i = 0; i < rt->nsched; i++) {
        amb__sched *s = &rt->scheds[i];
        bool yes = true;
        if (atomic_load_explicit(&s->sleeping, memory_order_relaxed) &&
            atomic_compare_exchange_strong_explicit(
                &s->sleeping, &yes, false, memory_order_acq_rel, memory_order_relaxed)) {
            wake_sched(s);
            return;
        }
    }
}

void amb__sched_wake_all(amb_rt *rt)
{
    for (unsigned i = 0; i < rt->nsched; i++) {
        atomic_store_explicit(&rt->scheds[i].sleeping, false, memory_order_relaxed);
        wake_sched(&rt->scheds[i]);
    }
}

/* ---------------------------------------------------------------------------
 * Making processes runnable
 * ------------------------------------------------------------------------ */

void amb__sched_ready(amb_rt *rt, amb__sched *s, amb_proc *p)
{
    if (s == NULL) {
        amb__inject_put(rt, p);
        amb__sched_wake_one(rt);
        return;
    }
    /* acq_rel: a thief's CAS on `next` may take the old occupant. */
    amb_proc *old = atomic_exchange_explicit(&s->q.next, p, memory_order_acq_rel);
    if (old != NULL) {
        amb__runq_put(rt, &s->q, old);
        amb__sched_wake_one(rt);
    }
}

void amb__sched_ready_tail(amb__sched *s, amb_proc *p)
{
    amb__runq_put(s->rt, &s->q, p);
    amb__sched_wake_one(s->rt);
}

/* ---------------------------------------------------------------------------
 * QSBR
 * ------------------------------------------------------------------------ */

static void quiescent(amb__sched *s)
{
    uint64_t e = atomic_load_explicit(&s->rt->epoch, memory_order_acquire);
    /* release: every read of a process block made before this point
     * happens before a reclaimer that sees this epoch frees the block. */
    if (atomic_load_explicit(&s->epoch_seen, memory_order_relaxed) != e)
        atomic_store_explicit(&s->epoch_seen, e, memory_order_release);
}

static void try_advance_epoch(amb_rt *rt)
{
    /* acquire: an external thread that finished its lookup is done with the
     * blocks it read. */
    if (atomic_load_explicit(&rt->ext_active, memory_order_acquire) != 0)
        return;
    uint64_t e = atomic_load_explicit(&rt->epoch, memory_order_acquire);
    for (unsigned i = 0; i < rt->nsched; i++) {
        uint64_t seen =
            atomic_load_explicit(&rt->scheds[i].epoch_seen, memory_order_acquire);
        if (seen != AMB__EPOCH_OFFLINE && seen != e)
            return;
    }
    atomic_compare_exchange_strong_explicit(&rt->epoch, &e, e + 1, memory_order_acq_rel,
                                            memory_order_relaxed);
}

/* Limbo is a FIFO: blocks are appended with non-decreasing epochs, so the
 * ones whose grace period has passed are always at its head. */
void amb__sched_retire(amb__sched *s, amb_proc *p)
{
    p->retire_epoch = atomic_load_explicit(&s->rt->epoch, memory_order_acquire);
    p->limbo_next = NULL;
    if (s->limbo_tail != NULL)
        s->limbo_tail->limbo_next = p;
    else
        s->limbo = p;
    s->limbo_tail = p;
    s->limbo_count++;
}

static void reclaim(amb__sched *s, bool force)
{
    if (!force)
        try_advance_epoch(s->rt);
    uint64_t e = atomic_load_explicit(&s->rt->epoch, memory_order_acquire);
    while (s->limbo != NULL && (force || s->limbo->retire_epoch + 2 <= e)) {
        amb_proc *p = s->limbo;
        s->limbo = p->limbo_next;
        if (s->limbo == NULL)
            s->limbo_tail = NULL;
        s->limbo_count--;
        amb__proc_reclaim(s, p);
    }
}

void amb__rt_ext_enter(amb_rt *rt)
{
    /* seq_cst: the increment is ordered before our table read, and against
     * a reclaimer's check of ext_active. */
    atomic_fetch_add_explicit(&rt->ext_active, 1, memory_order_seq_cst);
}

void amb__rt_ext_leave(amb_rt *rt)
{
    /* release: our reads of the block happen before a reclaimer sees 0. */
    atomic_fetch_sub_explicit(&rt->ext_active, 1, memory_order_release);
}

/* ---------------------------------------------------------------------------
 * Switching processes in and out
 * ------------------------------------------------------------------------ */

static void stackful_entry(amb__ctx *ctx, void *arg);
static void handler_entry(amb__ctx *ctx, void *arg);

/* Gets p ready to be switched to on s: a context (with a stack from s's
 * cache) if it has none, its budget, and the bookkeeping the watchdog and
 * thieves read. */
static void prepare(amb__sched *s, amb_proc *p)
{
    s->current = p;
    p->sched = s;
    p->budget = BUDGET;
    atomic_store_explicit(&s->current_pid, p->pid, memory_order_relaxed);
    atomic_store_explicit(&s->run_started_ms, s->now_ms | 1, memory_order_relaxed);
    if (!(p->flags & AMB__PF_CTX_LIVE)) {
        amb__stack *st;
        if (amb__sched_stack_alloc(s, p->stack_class, &st) != 0)
            amb__panic("no memory for a process stack");
        p->stack = st;
        amb__ctx_make(&p->ctx, st->lo, st->size,
                      (p->flags & AMB__PF_HANDLER) ? handler_entry : stackful_entry, p);
        p->flags |= AMB__PF_CTX_LIVE;
    }
}

static void release_stack(amb__sched *s, amb_proc *p)
{
    amb__ctx_destroy(&p->ctx);
    amb__sched_stack_free(s, p->stack_class, p->stack);
    p->stack = NULL;
    p->flags &= ~AMB__PF_CTX_LIVE;
}

/* Every context calls this right after it lands on s: it finishes what the
 * context that switched away asked for (s->pending). This runs after that
 * context is completely saved (or dead), which is what makes parking safe:
 * the parked process becomes findable only now. */
static void after_switch(amb__sched *s)
{
    amb_proc *p = s->pending;
    if (p == NULL)
        return;
    s->pending = NULL;
#ifndef NDEBUG
    /* Debug builds check the canary at every switch; release builds do not,
     * because the first read of a fresh stack's canary page is a page fault
     * (docs/design/stacks.md: overflow detection). */
    if (p->stack != NULL)
        amb__stack_check(p->stack);
#endif
    switch ((enum amb__req)s->pending_req) {
    case AMB__REQ_YIELD:
        amb__sched_ready_tail(s, p);
        break;
    case AMB__REQ_PARK:
        /* Parked only if nothing arrived since it last looked; otherwise
         * it runs next. */
        if (!amb__mpscq_mark_empty(&p->mbox))
            amb__sched_ready(s->rt, s, p);
        break;
    case AMB__REQ_IDLE:
        release_stack(s, p);
        if (!amb__mpscq_mark_empty(&p->mbox))
            amb__sched_ready(s->rt, s, p);
        break;
    case AMB__REQ_REQUEUE:
        release_stack(s, p);
        amb__sched_ready_tail(s, p);
        break;
    case AMB__REQ_EXIT:
        release_stack(s, p);
        amb__proc_teardown(s, p);
        break;
    case AMB__REQ_NONE:
        amb__panic("process switched out without a request");
    }
}

/* The next process to switch to directly, skipping the scheduler loop: the
 * run-next slot or the ring, but every DIRECT_EVERY-th switch goes through
 * the loop so its periodic work (clock, timers, QSBR, inject queue) runs. */
static amb_proc *next_direct(amb__sched *s)
{
    if ((++s->direct % DIRECT_EVERY) == 0)
        return NULL;
    /* acq_rel: against a thief's CAS on the slot. */
    amb_proc *q = atomic_exchange_explicit(&s->q.next, NULL, memory_order_acq_rel);
    return q != NULL ? q : amb__runq_get(&s->q);
}

/* Leaves p's context for the next one on the same scheduler: another
 * process directly when one is ready, else the scheduler loop. */
static amb__ctx *leave(amb_proc *p, enum amb__req req)
{
    amb__sched *s = p->sched;
    s->pending = p;
    s->pending_req = (uint8_t)req;
    amb_proc *q = next_direct(s);
    if (q == NULL) {
        s->current = NULL;
        return &s->ctx;
    }
    prepare(s, q);
    return &q->ctx;
}

void amb__proc_switch_out(amb_proc *p, enum amb__req req)
{
    amb__ctx *to = leave(p, req);
    amb__ctx_switch(&p->ctx, to);
    after_switch(p->sched);
}

void amb__proc_exit(amb_proc *p)
{
    amb__ctx *to = leave(p, AMB__REQ_EXIT);
    amb__ctx_exit(&p->ctx, to);
}

void amb__sched_exit_to(amb_proc *p, enum amb__req req)
{
    amb__mailbox_release_borrowed(p);
    amb__ctx *to = leave(p, req);
    amb__ctx_exit(&p->ctx, to);
}

static void stackful_entry(amb__ctx *ctx, void *arg)
{
    amb_proc *p = arg;
    (void)ctx;
    after_switch(p->sched);
    /* An exit signal that arrived before the first run acts before the
     * body starts. relaxed: see amb__proc_reduce. */
    if (atomic_load_explicit(&p->sig_pending, memory_order_relaxed))
        amb__proc_signals(p);
    p->fn(p, p->arg);
    p->exit_reason = AMB_ATOM_NORMAL;
    amb__proc_exit(p);
}

/* The body of a handler activation: init once, then one handle() per
 * message until the mailbox is empty or the batch is spent. The activation
 * then ends and its stack goes back to the pool. */
static void handler_entry(amb__ctx *ctx, void *arg)
{
    amb_proc *p = arg;
    (void)ctx;
    after_switch(p->sched);
    const amb_handler *h = p->handler;
    /* relaxed: see amb__proc_reduce. */
    if (atomic_load_explicit(&p->sig_pending, memory_order_relaxed))
        amb__proc_signals(p);
    if (!(p->flags & AMB__PF_INIT_DONE)) {
        p->flags |= AMB__PF_INIT_DONE;
        if (h->init != NULL) {
            int rc = h->init(p, p->state, p->arg);
            if (rc < 0)
                amb__proc_exit_error(p, rc);
        }
    }
    for (int n = 0; n < HANDLER_BATCH && p->budget > 0; n++) {
        amb_term msg;
        if (!amb__mailbox_take(p, &msg))
            amb__sched_exit_to(p, AMB__REQ_IDLE);
        amb__counter_add(&p->reductions, 1);
        p->budget--;
        int rc = h->handle(p, p->state, msg);
        if (rc < 0)
            amb__proc_exit_error(p, rc);
    }
    amb__sched_exit_to(p, AMB__REQ_REQUEUE);
}

/* From the scheduler loop: runs p, and whatever it hands over to directly,
 * until control comes back to the loop. */
static void run(amb__sched *s, amb_proc *p)
{
    prepare(s, p);
    amb__ctx_switch(&s->ctx, &p->ctx);
    after_switch(s);
    s->current = NULL;
    atomic_store_explicit(&s->run_started_ms, 0, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------
 * Finding work
 * ------------------------------------------------------------------------ */

static amb_proc *take_local(amb__sched *s)
{
    if ((s->tick % INJECT_EVERY) == 0) {
        amb_proc *p = amb__inject_get(s->rt);
        if (p != NULL)
            return p;
    }
    /* acq_rel: against a thief's CAS on the same slot. */
    amb_proc *p = atomic_exchange_explicit(&s->q.next, NULL, memory_order_acq_rel);
    if (p != NULL)
        return p;
    p = amb__runq_get(&s->q);
    if (p != NULL)
        return p;
    return amb__inject_get(s->rt);
}

static amb_proc *steal(amb__sched *s)
{
    amb_rt *rt = s->rt;
    unsigned n = rt->nsched;
    unsigned start = (unsigned)(s->tick * 2654435761u) % n;
    uint64_t now = s->now_ms;
    for (unsigned k = 0; k < n; k++) {
        amb__sched *v = &rt->scheds[(start + k) % n];
        if (v == s)
            continue;
        /* The victim's run-next is taken only from a scheduler stuck in one
         * process for over the watchdog's patience: otherwise it is about
         * to run it itself, on a warm cache. */
        uint64_t started = atomic_load_explicit(&v->run_started_ms, memory_order_relaxed);
        bool stuck = started != 0 && now > started + 10;
        amb_proc *p = amb__runq_steal(&s->q, &v->q, stuck);
        if (p != NULL)
            return p;
    }
    return NULL;
}

static void advance_timers(amb__sched *s)
{
    uint64_t now = amb__clock_ms();
    s->now_ms = now;
    if (amb__wheel_count(&s->wheel) != 0 && amb__wheel_next_deadline(&s->wheel) <= now)
        amb__timers_advance(s, now);
}

/* No local work: spin stealing, then sleep until a timer is due or someone
 * wakes us. Returns a process to run, or NULL to look again. */
static amb_proc *idle(amb__sched *s)
{
    amb_rt *rt = s->rt;
    atomic_fetch_add_explicit(&rt->nspinning, 1, memory_order_seq_cst);
    for (int round = 0; round < SPIN_ROUNDS; round++) {
        quiescent(s); /* a spinner holds no block: let the epoch move */
        amb_proc *p = steal(s);
        if (p == NULL)
            p = amb__inject_get(rt);
        if (p != NULL) {
            /* The last spinner found work: another may be needed. */
            if (atomic_fetch_sub_explicit(&rt->nspinning, 1, memory_order_seq_cst) == 1)
                amb__sched_wake_one(rt);
            return p;
        }
        if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
            break;
        if ((round & 7) == 7)
            sched_yield();
    }
    atomic_fetch_sub_explicit(&rt->nspinning, 1, memory_order_seq_cst);

    if (s->limbo_count != 0)
        reclaim(s, false);
    advance_timers(s);
    if (!amb__runq_empty(&s->q))
        return NULL;

    uint32_t seq = atomic_load_explicit(&s->futex, memory_order_acquire);
    atomic_store_explicit(&s->sleeping, true, memory_order_relaxed);
    /* seq_cst: the Dekker pair of amb__sched_wake_one (see there). */
    atomic_fetch_add_explicit(&rt->nsleeping, 1, memory_order_seq_cst);
    atomic_store_explicit(&s->epoch_seen, AMB__EPOCH_OFFLINE, memory_order_release);

    bool work = atomic_load_explicit(&rt->inject_len, memory_order_acquire) != 0 ||
                atomic_load_explicit(&rt->stopping, memory_order_acquire);
    for (unsigned i = 0; i < rt->nsched && !work; i++)
        work = !amb__runq_empty(&rt->scheds[i].q);
    if (!work) {
        uint64_t next = amb__wheel_next_deadline(&s->wheel);
        int64_t timeout = -1;
        if (next != UINT64_MAX)
            timeout = next > s->now_ms ? (int64_t)(next - s->now_ms) : 0;
        /* With processes stuck in limbo, wake up now and then to free them. */
        if (s->limbo_count != 0 && (timeout < 0 || timeout > 10))
            timeout = 10;
        if (timeout != 0) {
            /* Going to sleep: give cached objects back to their slabs, so
             * memory returns after a burst (slab.h). */
            amb__msg_pools_trim(s);
            amb__proc_pool_trim(s);
            futex_wait(&s->futex, seq, timeout);
        }
    }
    atomic_store_explicit(&s->sleeping, false, memory_order_relaxed);
    atomic_fetch_sub_explicit(&rt->nsleeping, 1, memory_order_seq_cst);
    quiescent(s);
    advance_timers(s);
    return NULL;
}

/* The loop of one scheduler thread; returns when the runtime stops. */
void amb__sched_loop(amb__sched *s)
{
    amb_rt *rt = s->rt;
    quiescent(s);
    s->now_ms = amb__clock_ms();
    while (!atomic_load_explicit(&rt->stopping, memory_order_acquire)) {
        s->tick++;
        quiescent(s);
        if ((s->tick % CLOCK_EVERY) == 0)
            advance_timers(s);
        if (s->limbo_count >= RECLAIM_AT)
            reclaim(s, false);
        amb_proc *p = take_local(s);
        if (p == NULL)
            p = idle(s);
        if (p != NULL)
            run(s, p);
    }
    atomic_store_explicit(&s->epoch_seen, AMB__EPOCH_OFFLINE, memory_order_release);
}

/* Frees what is left in limbo (the runtime is stopped). */
void amb__sched_reclaim_all(amb__sched *s)
{
    reclaim(s, true);
}

/*
 * sched.c - the scheduler loop: pick a runnable task, switch to it, act on
 * what it asks when it switches back; steal, sleep and wake; timers; and
 * the quiescent points of QSBR (sched.h explains the design).
 *
 * Invariants:
 *   - A task runs on at most one scheduler: it is switched to only after
 *     being taken from exactly one run queue, and it becomes findable again
 *     (parked inbox, run queue) only after it has switched out completely,
 *     because parking is done here, on the scheduler's side, after the
 *     switch (Go's park_m pattern). So no two threads ever run one context.
 *   - A scheduler's own fields (wheel, caches, limbo) are touched only by its
 *     thread; other threads touch only its run queue (steal), its futex and
 *     `sleeping` flag (wake), and read epoch_seen / run_started_ms /
 *     current_id.
 *   - The layer above is called only through the executor's ops, at a
 *     fresh context's start, at a task's end, at reclamation and when a
 *     scheduler goes to sleep: never on the switch path.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/clock.h"
#include "runtime/exec.h"
#include "runtime/qsbr.h"
#include "runtime/timer.h"

#define BUDGET       2000 /* reductions per run, as BEAM's 4000 halved */
#define SPIN_ROUNDS  64   /* steal attempts before sleeping */
#define INJECT_EVERY 4    /* check the inject queue first this often (fairness) */
#define CLOCK_EVERY  16   /* read the clock this often */
#define RECLAIM_AT   64   /* limbo length that triggers reclamation */
#define DIRECT_EVERY 16   /* every this many switches go through the loop */
#define STUCK_MS     10   /* a run this old lets thieves take run-next */

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

void amb__sched_wake_one(amb__exec *x)
{
    /* seq_cst: pairs with the sleeper's seq_cst increment of nsleeping and
     * its re-check of the queues (a Dekker pattern): either we see it
     * sleeping, or it sees the work we added. The loads after the fence can
     * then be relaxed. */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: after the fence; nspinning is only a hint (a spinner that
     * leaves without work wakes nobody, but sleeps only after the same
     * Dekker check). acquire on nsleeping: pairs with the sleeper's
     * increment (a release), so its `sleeping` flag, set before, is seen. */
    if (atomic_load_explicit(&x->nspinning, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&x->nsleeping, memory_order_acquire) == 0)
        return;
    for (unsigned i = 0; i < x->nsched; i++) {
        amb__sched *s = amb__exec_sched(x, i);
        bool yes = true;
        /* relaxed load: a hint; acq_rel CAS: exactly one waker claims the
         * sleeper (release: nothing else of ours needs publishing beyond
         * wake_sched's own release). */
        if (atomic_load_explicit(&s->sleeping, memory_order_relaxed) &&
            atomic_compare_exchange_strong_explicit(
                &s->sleeping, &yes, false, memory_order_acq_rel, memory_order_relaxed)) {
            wake_sched(s);
            return;
        }
    }
}

void amb__sched_wake_all(amb__exec *x)
{
    for (unsigned i = 0; i < x->nsched; i++) {
        amb__sched *s = amb__exec_sched(x, i);
        /* relaxed: a hint for wake_one; the futex bump below is what wakes. */
        atomic_store_explicit(&s->sleeping, false, memory_order_relaxed);
        wake_sched(s);
    }
}

/* ---------------------------------------------------------------------------
 * Making tasks runnable
 * ------------------------------------------------------------------------ */

void amb__sched_ready(amb__exec *x, amb__sched *s, amb__task *t)
{
    if (s == NULL) {
        amb__runq_inject_put(&x->inject, t);
        amb__sched_wake_one(x);
        return;
    }
    amb__task *old = amb__runq_put_next(&s->q, t);
    if (old != NULL) {
        amb__runq_put(&x->inject, &s->q, old);
        amb__sched_wake_one(x);
    }
}

void amb__sched_ready_tail(amb__sched *s, amb__task *t)
{
    amb__runq_put(&s->exec->inject, &s->q, t);
    amb__sched_wake_one(s->exec);
}

/* ---------------------------------------------------------------------------
 * Stacks: s's cache of each class, over the executor's pools
 * ------------------------------------------------------------------------ */

static amb__stack_cache *cache_of(amb__sched *s, unsigned cls)
{
    amb__stack_cache *c = &s->stacks[cls];
    if (amb__unlikely(c->pool == NULL)) {
        amb__stack_pool *pool = amb__exec_stack_pool(s->exec, cls);
        if (pool == NULL)
            return NULL;
        amb__stack_cache_init(c, pool);
    }
    return c;
}

/* Frees t's context and gives its stack to s's cache of its class (whose
 * pool exists: the stack came from it). */
static void release_stack(amb__sched *s, amb__task *t)
{
    amb__ctx_destroy(&t->ctx);
    amb__stack_free(cache_of(s, t->stack_class), t->stack);
    t->stack = NULL;
}

void amb__sched_release(amb__sched *s, amb__task *t)
{
    if (t->stack != NULL)
        release_stack(s, t);
}

void amb__sched_term(amb__sched *s)
{
    for (unsigned k = 0; k < AMB__STACK_CLASSES; k++)
        if (s->stacks[k].pool != NULL)
            amb__stack_cache_term(&s->stacks[k]);
}

/* ---------------------------------------------------------------------------
 * Switching tasks in and out
 * ------------------------------------------------------------------------ */

static void task_boot(amb__ctx *ctx, void *arg);

/* Gives t a stack of its class from s's cache. 0, or AMB_ENOMEM (no
 * address space left for one). */
static int take_stack(amb__sched *s, amb__task *t)
{
    amb__stack_cache *c = cache_of(s, t->stack_class);
    amb__stack *st;
    if (c == NULL || amb__stack_alloc(c, &st) != 0)
        return AMB_ENOMEM;
    t->stack = st;
    t->stack_unguarded = !(st->flags & AMB__STACK_GUARDED);
    return 0;
}

int amb__sched_stack_reserve(amb__sched *s, amb__task *t)
{
    return t->stack != NULL ? 0 : take_stack(s, t);
}

/* Gets t ready to be switched to on s: a context (on its reserved stack,
 * or one from s's cache) if it has none, its budget, and the bookkeeping
 * the watchdog and thieves read. False when no stack could be had: t
 * cannot run (start_failed). */
static bool prepare(amb__sched *s, amb__task *t)
{
    if (!(t->ctx.flags & AMB__CTX_MADE)) {
        if (t->stack == NULL && take_stack(s, t) != 0)
            return false;
        amb__ctx_make(&t->ctx, t->stack->lo, t->stack->size, task_boot, t);
    }
    s->current = t;
    t->sched = s;
    t->budget = BUDGET;
    /* relaxed: read by the watchdog as a diagnostic snapshot (watchdog.c). */
    atomic_store_explicit(&s->current_id, t->id, memory_order_relaxed);
    /* relaxed: read by thieves and the watchdog as a hint of how long the
     * run has lasted; nothing is published through it. */
    atomic_store_explicit(&s->run_started_ms, s->now_ms | 1, memory_order_relaxed);
    return true;
}

/* t has ended (its context is gone): the layer above tears it down, the
 * runtime retires it, and the last task to end stops the executor. */
static void end_task(amb__sched *s, amb__task *t)
{
    amb__exec *x = s->exec;
    x->ops.teardown(s, t);
    amb__qsbr_retire(s, t);
    /* acq_rel: the last task to end tells the executor it is done; the
     * release half orders every earlier end before it, the acquire half
     * lets the one that sees 1 act on all of them. */
    if (atomic_fetch_sub_explicit(&x->live, 1, memory_order_acq_rel) == 1)
        amb__exec_stop(x);
}

/* t could have no stack to run on (the address space is used up): it ends
 * without running, the layer above saying why (ops.start_failed). */
static void start_failed(amb__sched *s, amb__task *t)
{
    s->exec->ops.start_failed(s, t);
    end_task(s, t);
}

/* Every context calls this right after it lands on s: it finishes what the
 * context that switched away asked for (s->pending). This runs after that
 * context is completely saved (or dead), which is what makes parking safe:
 * the parked task becomes findable only now. */
static void after_switch(amb__sched *s)
{
    amb__task *t = s->pending;
    if (t == NULL)
        return;
    s->pending = NULL;
    switch ((enum amb__task_req)s->pending_req) {
    case AMB__TASK_YIELD:
        amb__sched_ready_tail(s, t);
        break;
    case AMB__TASK_PARK:
        /* Parked only if nothing arrived since it last looked; otherwise
         * it runs next. */
        if (!amb__mpscq_mark_empty(&t->inbox))
            amb__sched_ready(s->exec, s, t);
        break;
    case AMB__TASK_IDLE:
        release_stack(s, t);
        if (!amb__mpscq_mark_empty(&t->inbox))
            amb__sched_ready(s->exec, s, t);
        break;
    case AMB__TASK_REQUEUE:
        release_stack(s, t);
        amb__sched_ready_tail(s, t);
        break;
    case AMB__TASK_EXIT:
        release_stack(s, t);
        end_task(s, t);
        break;
    case AMB__TASK_NONE:
        amb__panic("task switched out without a request");
    }
}

/* The next task to switch to directly, skipping the scheduler loop: the
 * run-next slot or the ring, but every DIRECT_EVERY-th switch goes through
 * the loop so its periodic work (clock, timers, QSBR, inject queue) runs. */
static amb__task *next_direct(amb__sched *s)
{
    if ((++s->direct % DIRECT_EVERY) == 0)
        return NULL;
    amb__task *q = amb__runq_get_next(&s->q);
    return q != NULL ? q : amb__runq_get(&s->q);
}

/* Leaves t's context for the next one on the same scheduler: another task
 * directly when one is ready, else the scheduler loop. */
static amb__ctx *leave(amb__task *t, enum amb__task_req req)
{
    /* A stack without a guard page has its canary checked at every switch
     * out, in every build, before any other context runs: an overflow past
     * it may have written over the saved context of the stack below, which
     * may be the very task we would switch to next. A guarded stack only in
     * debug builds: its guard faults at the overflow itself, and the first
     * read of a fresh canary page is a page fault. docs/design/stacks.md,
     * "Overflow". */
#ifdef NDEBUG
    if (t->stack_unguarded)
#endif
        amb__stack_check(t->stack);
    amb__sched *s = t->sched;
    s->pending = t;
    s->pending_req = (uint8_t)req;
    amb__task *q = next_direct(s);
    if (q != NULL && prepare(s, q))
        return &q->ctx;
    /* Back to the loop, which ends q if it could not start (run). */
    s->unstarted = q;
    s->current = NULL;
    return &s->ctx;
}

void amb__sched_switch_out(amb__task *t, enum amb__task_req req)
{
    amb__ctx *to = leave(t, req);
    amb__ctx_switch(&t->ctx, to);
    after_switch(t->sched);
}

void amb__sched_exit(amb__task *t, enum amb__task_req req)
{
    amb__ctx *to = leave(t, req);
    amb__ctx_exit(&t->ctx, to);
}

/* The first code of every fresh context: finish the previous context's
 * request, then hand over to the layer above (which never returns). */
static void task_boot(amb__ctx *ctx, void *arg)
{
    amb__task *t = arg;
    (void)ctx;
    after_switch(t->sched);
    t->sched->exec->ops.entry(t);
    amb__panic("a task's entry returned");
}

/* From the scheduler loop: runs t, and whatever it hands over to directly,
 * until control comes back to the loop. */
static void run(amb__sched *s, amb__task *t)
{
    if (prepare(s, t)) {
        amb__ctx_switch(&s->ctx, &t->ctx);
        after_switch(s);
        s->current = NULL;
        /* relaxed: see prepare. */
        atomic_store_explicit(&s->run_started_ms, 0, memory_order_relaxed);
    } else {
        s->unstarted = t;
    }
    /* A task that could not start here or in a direct switch ends now, on
     * the scheduler's own stack. */
    if (amb__unlikely(s->unstarted != NULL)) {
        amb__task *u = s->unstarted;
        s->unstarted = NULL;
        start_failed(s, u);
    }
}

/* ---------------------------------------------------------------------------
 * Finding work
 * ------------------------------------------------------------------------ */

static amb__task *take_local(amb__sched *s)
{
    if ((s->tick % INJECT_EVERY) == 0) {
        amb__task *t = amb__runq_inject_get(&s->exec->inject);
        if (t != NULL)
            return t;
    }
    amb__task *t = amb__runq_get_next(&s->q);
    if (t != NULL)
        return t;
    t = amb__runq_get(&s->q);
    if (t != NULL)
        return t;
    return amb__runq_inject_get(&s->exec->inject);
}

static amb__task *steal(amb__sched *s)
{
    amb__exec *x = s->exec;
    unsigned n = x->nsched;
    unsigned start = (unsigned)(s->tick * 2654435761u) % n;
    uint64_t now = s->now_ms;
    for (unsigned k = 0; k < n; k++) {
        amb__sched *v = amb__exec_sched(x, (start + k) % n);
        if (v == s)
            continue;
        /* The victim's run-next is taken only from a scheduler stuck in one
         * task for over STUCK_MS: otherwise it is about to run it itself,
         * on a warm cache. relaxed: a hint (see prepare). */
        uint64_t started = atomic_load_explicit(&v->run_started_ms, memory_order_relaxed);
        bool stuck = started != 0 && now > started + STUCK_MS;
        amb__task *t = amb__runq_steal(&s->q, &v->q, stuck);
        if (t != NULL)
            return t;
    }
    return NULL;
}

static void advance_timers(amb__sched *s)
{
    uint64_t now = amb__clock_ms();
    s->now_ms = now;
    if (amb__wheel_count(&s->wheel) != 0 && amb__wheel_next_deadline(&s->wheel) <= now)
        amb__timer_advance(s, now);
}

/* No local work: spin stealing, then sleep until a timer is due or someone
 * wakes us. Returns a task to run, or NULL to look again. */
static amb__task *idle(amb__sched *s)
{
    amb__exec *x = s->exec;
    /* seq_cst: amb__sched_wake_one reads nspinning after its seq_cst fence
     * (it wakes nobody while someone spins); this RMW is ordered with it. */
    atomic_fetch_add_explicit(&x->nspinning, 1, memory_order_seq_cst);
    for (int round = 0; round < SPIN_ROUNDS; round++) {
        amb__qsbr_quiescent(s); /* a spinner holds no task: let the epoch move */
        amb__task *t = steal(s);
        if (t == NULL)
            t = amb__runq_inject_get(&x->inject);
        if (t != NULL) {
            /* The last spinner found work: another may be needed.
             * seq_cst: as the increment above. */
            if (atomic_fetch_sub_explicit(&x->nspinning, 1, memory_order_seq_cst) == 1)
                amb__sched_wake_one(x);
            return t;
        }
        /* acquire: pairs with amb__exec_stop's release store. */
        if (atomic_load_explicit(&x->stopping, memory_order_acquire))
            break;
        if ((round & 7) == 7)
            sched_yield();
    }
    /* seq_cst: as the increment above. */
    atomic_fetch_sub_explicit(&x->nspinning, 1, memory_order_seq_cst);

    if (s->limbo_count != 0)
        amb__qsbr_reclaim(s, false);
    advance_timers(s);
    if (!amb__runq_empty(&s->q))
        return NULL;

    /* acquire: a wake after this read changes the word, so the futex wait
     * below returns at once (no lost wake-up). */
    uint32_t seq = atomic_load_explicit(&s->futex, memory_order_acquire);
    /* relaxed: published by the increment of nsleeping right after (a
     * release), which a waker acquires before it reads `sleeping`. */
    atomic_store_explicit(&s->sleeping, true, memory_order_relaxed);
    /* seq_cst RMW, then a seq_cst fence: the Dekker pair of
     * amb__sched_wake_one (see there); the fence orders the increment before
     * the queue checks below (an RMW alone does not, in C11's model). */
    atomic_fetch_add_explicit(&x->nsleeping, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    amb__qsbr_offline(s);

    /* acquire: pairs with the release of whoever added the work. */
    bool work = atomic_load_explicit(&x->inject.len, memory_order_acquire) != 0 ||
                atomic_load_explicit(&x->stopping, memory_order_acquire);
    for (unsigned i = 0; i < x->nsched && !work; i++)
        work = !amb__runq_empty(&amb__exec_sched(x, i)->q);
    if (!work) {
        uint64_t next = amb__wheel_next_deadline(&s->wheel);
        int64_t timeout = -1;
        if (next != UINT64_MAX)
            timeout = next > s->now_ms ? (int64_t)(next - s->now_ms) : 0;
        /* With tasks stuck in limbo, wake up now and then to free them. */
        if (s->limbo_count != 0 && (timeout < 0 || timeout > 10))
            timeout = 10;
        if (timeout != 0) {
            /* Going to sleep: the layer above gives cached objects back to
             * their slabs, so memory returns after a burst (slab.h). */
            x->ops.sched_trim(s);
            futex_wait(&s->futex, seq, timeout);
        }
    }
    /* relaxed: as the store above. */
    atomic_store_explicit(&s->sleeping, false, memory_order_relaxed);
    /* seq_cst: as the increment above. */
    atomic_fetch_sub_explicit(&x->nsleeping, 1, memory_order_seq_cst);
    amb__qsbr_quiescent(s);
    advance_timers(s);
    return NULL;
}

void amb__sched_loop(amb__sched *s)
{
    amb__exec *x = s->exec;
    amb__stack_altstack_on(&s->altstack);
    amb__qsbr_quiescent(s);
    s->now_ms = amb__clock_ms();
    /* acquire: pairs with amb__exec_stop's release store. */
    while (!atomic_load_explicit(&x->stopping, memory_order_acquire)) {
        s->tick++;
        amb__qsbr_quiescent(s);
        if ((s->tick % CLOCK_EVERY) == 0)
            advance_timers(s);
        if (s->limbo_count >= RECLAIM_AT)
            amb__qsbr_reclaim(s, false);
        amb__task *t = take_local(s);
        if (t == NULL)
            t = idle(s);
        if (t != NULL)
            run(s, t);
    }
    amb__qsbr_offline(s);
    amb__stack_altstack_off(&s->altstack);
}

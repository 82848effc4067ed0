/*
 * sched.c - the scheduler loop: pick a runnable task, switch to it, act on
 * what it asks when it switches back; fire timers; steal, spin, sleep and
 * wake; and the quiescent points of QSBR (sched.h explains the design,
 * docs/design/runtime.md "Scheduling" the rules and their reasons).
 *
 * Invariants:
 *   - A task runs on at most one scheduler: it is switched to only after
 *     being taken from exactly one run queue, and it becomes findable again
 *     (parked inbox, run queue) only after it has switched out completely,
 *     because parking is done here, on the scheduler's side, after the
 *     switch (Go's park_m pattern). So no two threads ever run one context.
 *   - A scheduler's own fields (caches, limbo, slice, watch) are touched
 *     only by its thread; other threads touch its run queue (steal), its
 *     wheel under the wheel's lock (timer.h), its futex and sleep state
 *     (wake), and read its switch count, timer_next, epoch and counts.
 *   - Time slices: a task taken from the ring, the inject queue or another
 *     scheduler starts a fresh slice of BUDGET reductions; a task taken
 *     from run-next gets what is left of the slice of the task that
 *     switched out before it (a fresh one if nothing is left). A task that
 *     spends the slice yields to the back of the ring. So tasks that keep
 *     waking each other share one slice, and when it is spent one of them
 *     leaves the chain for the ring, behind the tasks already there: a
 *     ping-pong pair cannot starve the ring (the other one of the pair
 *     runs until it waits for the one that left, then the ring's head
 *     runs).
 *   - Timers: the earliest deadline of the scheduler's wheel is compared
 *     with the cheap clock at every switch; a due timer sends the switch
 *     through the loop, which fires it. An idle scheduler fires the expired
 *     timers of any other.
 *   - Every scheduling choice (run-next or ring, the order of victims, the
 *     order in which wheels are fired, whom to wake) is made by one of the
 *     functions of "Choices" below, so that a seeded test mode can make
 *     them; every clock read goes through the executor's clock (clock.h).
 *   - The layer above is called only through the executor's ops, at a
 *     fresh context's start, at a task's end, at reclamation, when a timer
 *     fires and when a scheduler goes to sleep: never on the switch path.
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
#include "runtime/watchdog.h"

#define BUDGET       2000 /* reductions per time slice, as BEAM's 4000 halved */
#define INJECT_EVERY 4    /* check the inject queue first this often (fairness) */
#define RECLAIM_AT   64   /* limbo length that triggers reclamation */
#define DIRECT_EVERY 16   /* every this many switches go through the loop */
/* A run-next task that has waited this long behind one run of its
 * scheduler (no switch meanwhile) may be taken by an idle scheduler; Go
 * waits 3 us (runqgrab). Short enough that a process woken by one that
 * then computes runs elsewhere almost at once, long enough that a
 * ping-pong (a switch every ~100 ns) is never split. */
#define STEAL_NEXT_NS 5000
/* An idle scheduler spins (stealing, firing others' timers) before it
 * sleeps, because waking a sleeping vCPU costs 100-180 us on the test VM:
 * work that arrives within the spin does not pay it. The spin doubles
 * after one that found work and halves after one that did not. */
#define SPIN_MIN_US   4
#define SPIN_START_US 50
#define NO_VICTIM     UINT_MAX
/* A busy scheduler looks at the poller without blocking every this many
 * loop passes (Go's and Tokio's 61: prime, so it does not fall in step
 * with INJECT_EVERY). */
#define POLL_EVERY 61
/* A scheduler looking for work polls without blocking at most this often:
 * events gather between two looks, so one epoll_wait serves several (each
 * look that finds one or two costs a syscall per request), and a request
 * waits at most this much longer for a spinning scheduler to see it. */
#ifndef POLL_GAP_NS
#define POLL_GAP_NS 3000
#endif
/* An idle poller with tasks in limbo wakes this often to free them. */
#define LIMBO_WAKE_MS 10
/* A scheduler going to sleep gives its caches back (ops->sched_trim) at
 * most this often; one that sleeps sooner again sleeps at most until then
 * first. Trimming at every sleep cost a 1-connection echo a pool's worth
 * of frees (and a slab's mmap and munmap) per request. */
#define TRIM_EVERY_MS 50

/* ---------------------------------------------------------------------------
 * Choices: every scheduling decision that a seed could make
 * ------------------------------------------------------------------------ */

/* The scheduler's own pseudo-random sequence (xorshift32), for victim
 * order. */
static uint32_t choose_random(amb__sched *s)
{
    uint32_t r = s->rng;
    r ^= r << 13;
    r ^= r >> 17;
    r ^= r << 5;
    s->rng = r;
    return r;
}

/* The next task of s's own queues for a switch whose previous task left
 * `left` reductions of its slice; *budget gets the new task's. Run-next
 * comes first and inherits the slice while any is left (Go's
 * inheritTime), so tasks that wake each other share one slice; a task
 * whose slice is spent yields to the back of the ring, and the run-next
 * task then starts a fresh slice. */
static amb__task *choose_local(amb__sched *s, int left, int16_t *budget)
{
    amb__task *t = amb__runq_get_next(&s->q);
    if (t != NULL) {
        *budget = left > 0 ? (int16_t)left : BUDGET;
        return t;
    }
    *budget = BUDGET;
    return amb__runq_get(&s->q);
}

/* The first of the other schedulers to look at in one pass over them (to
 * steal, watch, fire timers); the pass goes on in id order from there, so
 * idle schedulers do not all fall on the same victim. */
static unsigned choose_first_victim(amb__sched *s)
{
    return choose_random(s) % s->exec->nsched;
}

/* Where a wake-up starts looking for a sleeper: behind the waker, so that
 * wakers spread over the sleepers instead of all waking scheduler 0. From
 * outside the runtime, by the caller's stack address (threads differ). */
static unsigned choose_wake_start(amb__exec *x, amb__sched *from)
{
    if (from != NULL)
        return (from->id + 1) % x->nsched;
    uintptr_t here = (uintptr_t)&x;
    return (unsigned)((here >> 12) % x->nsched);
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

/* Wakes s, which slept as `how` says: on its futex, or blocked in the
 * poller (sockets.md §5.3), which its eventfd breaks. */
static void wake_sched(amb__sched *s, uint32_t how)
{
    if (how == AMB__SLEEP_POLL) {
        /* The sleeper set SLEEP_POLL only after it held a poller. */
        amb__poll_break(amb__exec_poller(s->exec));
        return;
    }
    /* release: the work added before this wake is visible to the sleeper,
     * which re-reads the queues after its futex wait returns. */
    atomic_fetch_add_explicit(&s->futex, 1, memory_order_release);
    futex_wake(&s->futex);
}

void amb__sched_wake_one(amb__exec *x, amb__sched *from)
{
    /* seq_cst: pairs with the sleeper's seq_cst increment of nsleeping and
     * its fence before it re-checks the queues (a Dekker pattern): either
     * we see it sleeping, or it sees the work we added. The loads after the
     * fence can then be relaxed. */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: after the fence; nspinning is only a hint (a spinner that
     * leaves without work wakes nobody, but sleeps only after the same
     * Dekker check). acquire on nsleeping: pairs with the sleeper's
     * increment (a release), so its sleep state, set before, is seen. */
    if (atomic_load_explicit(&x->nspinning, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&x->nsleeping, memory_order_acquire) == 0)
        return;
    unsigned n = x->nsched, start = choose_wake_start(x, from);
    for (unsigned k = 0; k < n; k++) {
        amb__sched *s = amb__exec_sched(x, (start + k) % n);
        /* relaxed load: a hint; acq_rel CAS: exactly one waker claims the
         * sleeper (release: nothing else of ours needs publishing beyond
         * wake_sched's own release). */
        uint32_t how = atomic_load_explicit(&s->sleep, memory_order_relaxed);
        if (how != AMB__AWAKE && atomic_compare_exchange_strong_explicit(
                                     &s->sleep, &how, AMB__AWAKE, memory_order_acq_rel,
                                     memory_order_relaxed)) {
            wake_sched(s, how);
            return;
        }
    }
}

void amb__sched_wake_all(amb__exec *x)
{
    for (unsigned i = 0; i < x->nsched; i++) {
        amb__sched *s = amb__exec_sched(x, i);
        /* relaxed: a hint for wake_one; the futex bump below is what wakes. */
        atomic_store_explicit(&s->sleep, AMB__AWAKE, memory_order_relaxed);
        wake_sched(s, AMB__SLEEP_FUTEX);
    }
    /* The one blocked in the poller, if any: a break is cheap when none is
     * (deduplicated, and read back by the next wait). */
    amb__poll *p = amb__exec_poller(x);
    if (p != NULL)
        amb__poll_break(p);
}

/* ---------------------------------------------------------------------------
 * Making tasks runnable
 * ------------------------------------------------------------------------ */

void amb__sched_ready(amb__exec *x, amb__sched *s, amb__task *t)
{
    if (s == NULL) {
        amb__runq_inject_put(&x->inject, t);
        amb__sched_wake_one(x, NULL);
        return;
    }
    amb__task *old = amb__runq_put_next(&s->q, t);
    if (old != NULL) {
        amb__runq_put(&x->inject, &s->q, old);
        amb__sched_wake_one(x, s);
    }
}

void amb__sched_ready_tail(amb__sched *s, amb__task *t)
{
    amb__runq_put(&s->exec->inject, &s->q, t);
    amb__sched_wake_one(s->exec, s);
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
 * Timers
 * ------------------------------------------------------------------------ */

/* Whether s's earliest timer may be due: timer_next against the cheap
 * clock, which is never ahead of the exact one, so this is never true
 * early; it may be true late by a clock tick (4 ms here). Free while s
 * has no timer. */
static inline bool timers_due(amb__sched *s)
{
    /* relaxed: a lower bound written under the wheel's lock; acting on it
     * takes the lock (amb__timer_fire_due). */
    uint64_t next = atomic_load_explicit(&s->timer_next, memory_order_relaxed);
    return amb__unlikely(next != UINT64_MAX) &&
           next <= amb__clock_coarse_ms(&s->exec->clock);
}

/* Fires s's own expired timers (exact clock). */
static void fire_own(amb__sched *s)
{
    uint64_t now = amb__clock_ms(&s->exec->clock);
    s->now_ms = now;
    /* relaxed: as in timers_due. */
    if (atomic_load_explicit(&s->timer_next, memory_order_relaxed) <= now)
        amb__timer_fire_due(s, s, now, true);
}

/* Fires, from s, the expired timers of the other schedulers whose wheels
 * are free now (a busy one's between its switches, a stuck one's while it
 * computes). Returns the number fired; the tasks they woke are in s's
 * queues. */
static size_t fire_others(amb__sched *s, uint64_t now_ms)
{
    amb__exec *x = s->exec;
    unsigned n = x->nsched, first = choose_first_victim(s);
    size_t fired = 0;
    for (unsigned k = 0; k < n; k++) {
        amb__sched *v = amb__exec_sched(x, (first + k) % n);
        /* relaxed: as in timers_due. */
        if (v != s &&
            atomic_load_explicit(&v->timer_next, memory_order_relaxed) <= now_ms)
            fired += amb__timer_fire_due(s, v, now_ms, false);
    }
    return fired;
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

/* A fresh context for t, on a stack from s's cache: t's first run, or its
 * first since its last context ended (a handler's activation). False when
 * no stack could be had. Out of line: prepare is on every switch. */
static __attribute__((noinline)) bool give_context(amb__sched *s, amb__task *t)
{
    if (take_stack(s, t) != 0)
        return false;
    amb__ctx_make(&t->ctx, t->stack->lo, t->stack->size, task_boot, t);
    return true;
}

/* Gets t ready to be switched to on s: a context if it has none, its
 * budget, and the switch count thieves and the watchdog read. False when
 * no stack could be had: t cannot run (start_failed). On every switch:
 * inline. */
static inline bool prepare(amb__sched *s, amb__task *t, int16_t budget)
{
    if (amb__unlikely(!(t->ctx.flags & AMB__CTX_MADE)) && !give_context(s, t))
        return false;
    s->current = t;
    t->sched = s;
    t->budget = budget;
    amb__runq_switched(&s->q, true, t->id);
    return true;
}

/* A task ended on s: counted, for amb__exec_live. */
static void count_end(amb__sched *s)
{
    uint64_t n = atomic_load_explicit(&s->ended, memory_order_relaxed);
    /* release: the end (and everything the task did, its spawns counted in
     * some `begun` included) happens before a reader that acquires this
     * count (amb__exec_live). relaxed load: only this thread writes it. */
    atomic_store_explicit(&s->ended, n + 1, memory_order_release);
}

/* t has ended (its context is gone): the layer above tears it down, the
 * runtime retires it and counts the end. */
static void end_task(amb__sched *s, amb__task *t)
{
    s->exec->ops.teardown(s, t);
    amb__qsbr_retire(s, t);
    count_end(s);
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

/* Leaves t's context for the next one on the same scheduler: another task
 * directly when one is ready, else the scheduler loop, which is also where
 * every DIRECT_EVERY-th switch goes (its periodic work: QSBR, reclamation,
 * the inject queue) and every switch while a timer is due. */
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
    s->slice = t->budget;
    amb__task *q = NULL;
    int16_t budget;
    if (amb__likely((++s->direct % DIRECT_EVERY) != 0) && !timers_due(s))
        q = choose_local(s, t->budget, &budget);
    if (q != NULL && prepare(s, q, budget))
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

/* From the loop: runs t, and whatever it hands over to directly, until
 * control comes back to the loop. */
static void run(amb__sched *s, amb__task *t, int16_t budget)
{
    if (prepare(s, t, budget)) {
        amb__ctx_switch(&s->ctx, &t->ctx);
        after_switch(s);
        s->current = NULL;
        amb__runq_switched(&s->q, false, 0);
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
 * The poller (docs/design/sockets.md §5.3; poll.h): who polls when
 *
 *   - an idle scheduler spinning polls without blocking at every look for
 *     work (find_work, before it steals), also while another scheduler is
 *     blocked in the poller: epoll hands an event to one of them, and the
 *     spinner, awake, gets it without the blocked one's wake-up (~100 us
 *     on this VM);
 *   - a busy scheduler polls without blocking every POLL_EVERY loop passes
 *     when nobody is blocked in the poller;
 *   - an idle scheduler that found nothing while spinning becomes *the*
 *     poller when descriptors are open and it wins the claim: it blocks in
 *     the poller until its next timer (sleep_until_woken), offline for
 *     QSBR, and comes back online before it dispatches (a fired waiter
 *     lives in a task block, which QSBR keeps only for online readers);
 *   - the watchdog polls when nobody has for 10 ms (watchdog.c).
 * A fired waiter's node goes into its task's inbox; the push that finds
 * the task parked makes it runnable (mpscq.h), exactly as a message does.
 * ------------------------------------------------------------------------ */

void amb__sched_deliver(amb__exec *x, amb__sched *s, amb__poll_list *fired)
{
    unsigned readied = 0;
    amb__poll_waiter *w;
    while ((w = amb__poll_list_pop(fired)) != NULL) {
        /* w is the task's again once its node is pushed: read it first. */
        amb__task *t = w->task;
        amb__mpscq_node *n = w->node;
        unsigned r = amb__mpscq_push(&t->inbox, n);
        if (r == 0)
            continue;
        if (r == AMB__MPSCQ_CLOSED) { /* t has ended: its layer takes n back */
            x->ops.inbox_closed(s, t);
            continue;
        }
        readied++;
        if (s != NULL)
            amb__runq_put(&x->inject, &s->q, t);
        else
            amb__sched_ready(x, NULL, t); /* inject queue, wakes a sleeper */
    }
    /* The delivering scheduler runs what it readied; a second one is woken
     * to steal when there is more than one (Go's wakep). */
    if (s != NULL && readied > 1)
        amb__sched_wake_one(x, s);
}

/* Polls without blocking and makes the woken tasks runnable on s. Returns
 * how many became runnable. */
static size_t poll_now(amb__sched *s, amb__poll *p)
{
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    if (amb__poll_wait(p, 0, &fired) <= 0)
        return 0;
    size_t n = fired.n;
    amb__sched_deliver(s->exec, s, &fired);
    return n;
}

/* The poller of s's executor when descriptors are open in it, else NULL:
 * one load while no I/O layer made one. */
static inline amb__poll *poll_open(amb__sched *s)
{
    amb__poll *p = amb__exec_poller(s->exec);
    return p != NULL && amb__poll_nopen(p) != 0 ? p : NULL;
}

/* ---------------------------------------------------------------------------
 * Finding work
 * ------------------------------------------------------------------------ */

static amb__task *take_local(amb__sched *s, int16_t *budget)
{
    *budget = BUDGET;
    if ((s->tick % INJECT_EVERY) == 0) {
        amb__task *t = amb__runq_inject_get(&s->exec->inject);
        if (t != NULL)
            return t;
    }
    amb__task *t = choose_local(s, s->slice, budget);
    if (t != NULL)
        return t;
    *budget = BUDGET;
    /* Nothing local: a fair share of the inject queue, in one lock round. */
    amb__exec *x = s->exec;
    /* relaxed: a hint for the batch's size. */
    size_t share =
        atomic_load_explicit(&x->inject.len, memory_order_relaxed) / x->nsched + 1;
    return amb__runq_inject_take(
        &x->inject, &s->q, share < AMB__RUNQ_SIZE ? (unsigned)share : AMB__RUNQ_SIZE);
}

/* Whether v looks like it holds a run-next task behind a run in progress;
 * *seq gets v's switch count. */
static bool next_waits(amb__sched *v, uint64_t *seq)
{
    *seq = amb__runq_seq(&v->q);
    return (*seq & 1) != 0 && amb__runq_peek_next(&v->q) != NULL;
}

/* Run-next of another scheduler: taken once it has waited STEAL_NEXT_NS
 * behind one run of its owner (the same switch count all along). s
 * watches one victim at a time and keeps it while it qualifies, so that
 * the wait is measured on one victim. */
static amb__task *steal_next(amb__sched *s, uint64_t now_ns)
{
    amb__exec *x = s->exec;
    uint64_t seq;
    if (s->watch.victim != NO_VICTIM) {
        amb__sched *v = amb__exec_sched(x, s->watch.victim);
        if (next_waits(v, &seq) && seq == s->watch.seq) {
            if (now_ns - s->watch.since_ns < STEAL_NEXT_NS)
                return NULL;
            amb__task *t = amb__runq_steal(&s->q, &v->q, true);
            s->watch.victim = NO_VICTIM;
            return t;
        }
        s->watch.victim = NO_VICTIM;
    }
    unsigned n = x->nsched, first = choose_first_victim(s);
    for (unsigned k = 0; k < n; k++) {
        amb__sched *v = amb__exec_sched(x, (first + k) % n);
        if (v != s && next_waits(v, &seq)) {
            s->watch.victim = v->id;
            s->watch.seq = seq;
            s->watch.since_ns = now_ns;
            break;
        }
    }
    return NULL;
}

/* One pass over the other schedulers' rings: half of the first non-empty
 * one. */
static amb__task *steal_ring(amb__sched *s)
{
    amb__exec *x = s->exec;
    unsigned n = x->nsched, first = choose_first_victim(s);
    for (unsigned k = 0; k < n; k++) {
        amb__sched *v = amb__exec_sched(x, (first + k) % n);
        if (v == s)
            continue;
        amb__task *t = amb__runq_steal(&s->q, &v->q, false);
        if (t != NULL)
            return t;
    }
    return NULL;
}

/* Work for s without waiting: its own queues, the inject queue, the tasks
 * woken by other schedulers' expired timers, then stealing. */
static amb__task *find_work(amb__sched *s, int16_t *budget)
{
    amb__task *t = take_local(s, budget);
    if (t != NULL)
        return t;
    amb__poll *p = poll_open(s);
    uint64_t now_ns = amb__clock_ns(&s->exec->clock);
    if (p != NULL && now_ns - s->poll_ns >= POLL_GAP_NS) {
        s->poll_ns = now_ns;
        if (poll_now(s, p) != 0 && (t = take_local(s, budget)) != NULL)
            return t;
    }
    if (s->exec->nsched == 1)
        return NULL;
    *budget = BUDGET;
    if (fire_others(s, now_ns / 1000000u) != 0 && (t = take_local(s, budget)) != NULL)
        return t;
    *budget = BUDGET;
    if ((t = steal_ring(s)) != NULL)
        return t;
    return steal_next(s, now_ns);
}

/* ---------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------ */

enum amb__step amb__sched_step(amb__sched *s)
{
    amb__exec *x = s->exec;
    /* acquire: pairs with amb__exec_stop's release store. */
    if (atomic_load_explicit(&x->stopping, memory_order_acquire))
        return AMB__STEP_STOP;
    s->tick++;
    amb__qsbr_quiescent(s);
    if (timers_due(s))
        fire_own(s);
    if (s->limbo_count >= RECLAIM_AT)
        amb__qsbr_reclaim(s, false);
    if ((s->tick % POLL_EVERY) == 0) {
        amb__poll *p = poll_open(s);
        if (p != NULL && !amb__poll_blocked(p))
            poll_now(s, p);
    }
    int16_t budget;
    amb__task *t = find_work(s, &budget);
    if (t == NULL)
        return AMB__STEP_IDLE;
    run(s, t, budget);
    return AMB__STEP_RAN;
}

/* Whether s may spin: as Go, at most half of the schedulers that are not
 * asleep spin, so that idle schedulers do not all poll every victim. */
static bool may_spin(amb__exec *x)
{
    if (x->spin_max_us == 0)
        return false;
    /* relaxed: hints; a wrong answer costs a spin or a sleep, and the
     * sleep's Dekker check below is what keeps wake-ups from being lost. */
    unsigned spinning = atomic_load_explicit(&x->nspinning, memory_order_relaxed);
    unsigned sleeping = atomic_load_explicit(&x->nsleeping, memory_order_relaxed);
    /* One scheduler with descriptors open spins too: the poll in each look
     * is how a reply that comes within the spin is caught without a
     * sleep and a wake-up. */
    if (x->nsched == 1)
        return amb__exec_poller(x) != NULL;
    return 2 * spinning < x->nsched - sleeping;
}

/* s found nothing: spins a while looking for work (stealing, firing other
 * schedulers' timers), adapting how long to what the last spins found.
 * Returns a task (its budget in *budget) or NULL. */
static amb__task *spin(amb__sched *s, int16_t *budget)
{
    amb__exec *x = s->exec;
    /* seq_cst: amb__sched_wake_one reads nspinning after its seq_cst fence
     * (it wakes nobody while someone spins); this RMW is ordered with it. */
    atomic_fetch_add_explicit(&x->nspinning, 1, memory_order_seq_cst);
    uint64_t start = amb__clock_ns(&x->clock);
    amb__task *t = NULL;
    for (unsigned round = 1;; round++) {
        amb__qsbr_quiescent(s); /* a spinner holds no task: let the epoch move */
        if (timers_due(s))
            fire_own(s);
        if ((t = find_work(s, budget)) != NULL)
            break;
        /* acquire: pairs with amb__exec_stop's release store. */
        if (atomic_load_explicit(&x->stopping, memory_order_acquire))
            break;
        if (amb__clock_ns(&x->clock) - start >= (uint64_t)s->spin_us * 1000u)
            break;
        /* About a microsecond between looks, so that the victims' lines
         * are not pulled away from their owners all the time. */
        for (int i = 0; i < 32; i++)
            amb__spin_pause();
        if ((round & 15) == 0)
            sched_yield();
    }
    if (t != NULL) {
        uint32_t max = x->spin_max_us;
        s->spin_us = s->spin_us * 2 > max ? max : s->spin_us * 2;
        /* The last spinner found work: another may be needed.
         * seq_cst: as the increment above. */
        if (atomic_fetch_sub_explicit(&x->nspinning, 1, memory_order_seq_cst) == 1)
            amb__sched_wake_one(x, s);
        return t;
    }
    uint32_t min = SPIN_MIN_US < x->spin_max_us ? SPIN_MIN_US : x->spin_max_us;
    s->spin_us = s->spin_us / 2 < min ? min : s->spin_us / 2;
    /* seq_cst: as the increment above. */
    atomic_fetch_sub_explicit(&x->nspinning, 1, memory_order_seq_cst);
    return NULL;
}

/* Whether any work is visible to a scheduler about to sleep. */
static bool work_visible(amb__exec *x)
{
    /* acquire: pairs with the release of whoever added the work. */
    if (atomic_load_explicit(&x->inject.len, memory_order_acquire) != 0 ||
        atomic_load_explicit(&x->stopping, memory_order_acquire))
        return true;
    for (unsigned i = 0; i < x->nsched; i++)
        if (!amb__runq_empty(&amb__exec_sched(x, i)->q))
            return true;
    return false;
}

/* s sleeps until its next timer is due or someone wakes it: blocked in
 * the poller when descriptors are open and no other scheduler is (the
 * claim), else on its futex. Its sleep state says which, for its wakers. */
static void sleep_until_woken(amb__sched *s)
{
    amb__exec *x = s->exec;
    if (s->limbo_count != 0)
        amb__qsbr_reclaim(s, false);
    fire_own(s);
    if (!amb__runq_empty(&s->q))
        return;

    amb__poll *p = poll_open(s);
    if (p != NULL && !amb__poll_claim(p))
        p = NULL;
    /* acquire: a wake after this read changes the word, so the futex wait
     * below returns at once (no lost wake-up). */
    uint32_t seq = atomic_load_explicit(&s->futex, memory_order_acquire);
    /* relaxed: published by the increment of nsleeping right after (a
     * release), which a waker acquires before it reads the state. */
    atomic_store_explicit(&s->sleep, p != NULL ? AMB__SLEEP_POLL : AMB__SLEEP_FUTEX,
                          memory_order_relaxed);
    /* seq_cst RMW, then a seq_cst fence: the Dekker pair of
     * amb__sched_wake_one (see there); the fence orders the increment before
     * the queue checks below (an RMW alone does not, in C11's model). */
    atomic_fetch_add_explicit(&x->nsleeping, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    amb__qsbr_offline(s);

    bool blocked = false;
    if (!work_visible(x)) {
        /* relaxed: a lower bound written under the wheel's lock. */
        uint64_t next = atomic_load_explicit(&s->timer_next, memory_order_relaxed);
        int64_t timeout = -1;
        if (next != UINT64_MAX)
            timeout = next > s->now_ms ? (int64_t)(next - s->now_ms) : 0;
        /* With tasks stuck in limbo, wake up now and then to free them. */
        if (s->limbo_count != 0 && (timeout < 0 || timeout > LIMBO_WAKE_MS))
            timeout = LIMBO_WAKE_MS;
        if (timeout != 0) {
            /* Going to sleep: the layer above gives cached objects back to
             * their slabs, so memory returns after a burst (slab.h): now,
             * or by the end of TRIM_EVERY_MS since the last time. */
            if (s->now_ms >= s->trim_at) {
                x->ops.sched_trim(s);
                s->trim_at = s->now_ms + TRIM_EVERY_MS;
            } else if (timeout < 0 || (uint64_t)timeout > s->trim_at - s->now_ms) {
                timeout = (int64_t)(s->trim_at - s->now_ms);
            }
            if (p != NULL)
                blocked = amb__poll_block(p, timeout) == 0;
            else
                futex_wait(&s->futex, seq, timeout);
        }
    }
    /* relaxed: as the store above. */
    atomic_store_explicit(&s->sleep, AMB__AWAKE, memory_order_relaxed);
    /* seq_cst: as the increment above; the fence orders it before the
     * watchdog's state is read (its Dekker pair, watchdog.c). */
    atomic_fetch_sub_explicit(&x->nsleeping, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    amb__watchdog_kick(x);
    /* Online again before the poller's events touch any waiter. */
    amb__qsbr_quiescent(s);
    if (p != NULL) {
        amb__poll_list fired;
        amb__poll_list_init(&fired);
        if (blocked)
            amb__poll_dispatch(p, &fired);
        amb__poll_unclaim(p);
        amb__sched_deliver(x, s, &fired);
    }
    fire_own(s);
}

void amb__sched_loop(amb__sched *s)
{
    amb__exec *x = s->exec;
    amb__stack_altstack_on(&s->altstack);
    amb__qsbr_quiescent(s);
    s->now_ms = amb__clock_ms(&x->clock);
    s->watch.victim = NO_VICTIM;
    if (s->spin_us == 0)
        s->spin_us = SPIN_START_US < x->spin_max_us ? SPIN_START_US : x->spin_max_us;
    if (s->rng == 0)
        s->rng = 2654435761u * (s->id + 1);
    for (;;) {
        enum amb__step r = amb__sched_step(s);
        if (r == AMB__STEP_STOP)
            break;
        if (r == AMB__STEP_RAN)
            continue;
        /* Idle: nothing left anywhere ends the run; else spin, then
         * sleep. */
        if (amb__exec_live(x) == 0) {
            amb__exec_stop(x);
            break;
        }
        int16_t budget;
        amb__task *t = may_spin(x) ? spin(s, &budget) : NULL;
        if (t != NULL)
            run(s, t, budget);
        else
            sleep_until_woken(s);
    }
    amb__qsbr_offline(s);
    amb__stack_altstack_off(&s->altstack);
}

/*
 * exec.c - making, running, stopping and freeing an executor (exec.h), and
 * its stack pools by size class.
 *
 * amb__exec_run turns the calling thread into scheduler 0 and starts the
 * other scheduler threads; it returns when every task has ended (the last
 * teardown stops the executor) or amb__exec_stop was called, after the
 * memory of ended tasks went back (settle). Between runs the executor
 * keeps its tasks.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/blocking.h"
#include "runtime/clock.h"
#include "runtime/exec.h"
#include "runtime/qsbr.h"
#include "runtime/timer.h"
#include "runtime/watchdog.h"

#define MAX_STACK ((size_t)256 << 20) /* the largest stack class */

int amb__exec_init(amb__exec *x, const amb__exec_config *cfg)
{
    memset(x, 0, sizeof *x);
    x->ops = *cfg->ops;
    x->nsched = cfg->schedulers;
    x->stack_size = cfg->stack_size;
    x->blocking_threads = cfg->blocking_threads;
    x->watchdog_ms = cfg->watchdog_ms;
    x->spin_max_us = cfg->spin_max_us;
    /* The extension area follows each scheduler, 64-byte aligned like it. */
    x->sched_stride = sizeof(amb__sched) + ((cfg->sched_ext + 63) & ~(size_t)63);
    x->scheds = amb__malloc_aligned(x->nsched * x->sched_stride, 64);
    if (x->scheds == NULL)
        return AMB_ENOMEM;
    memset(x->scheds, 0, x->nsched * x->sched_stride);
    x->clock.virt = NULL;
    uint64_t now = amb__clock_ms(&x->clock);
    for (unsigned i = 0; i < x->nsched; i++) {
        amb__sched *s = amb__exec_sched(x, i);
        s->exec = x;
        s->id = i;
        amb__runq_init(&s->q);
        s->now_ms = now;
        atomic_init(&s->epoch_seen, AMB__QSBR_OFFLINE);
        atomic_init(&s->timer_next, UINT64_MAX);
        atomic_init(&s->sleep, AMB__AWAKE);
        if (amb__timer_init(s, now) != 0) {
            while (i-- > 0)
                amb__timer_term(amb__exec_sched(x, i));
            amb__free_aligned(x->scheds);
            return AMB_ENOMEM;
        }
    }
    amb__runq_inject_init(&x->inject);
    pthread_mutex_init(&x->stack_lock, NULL);
    return 0;
}

void amb__exec_term(amb__exec *x)
{
    /* seq_cst: a misuse check made once per executor, as amb__exec_run's
     * own accesses of the flag; the strongest order costs nothing here. */
    if (atomic_load_explicit(&x->running, memory_order_seq_cst))
        amb__panic("an executor freed while it runs");
    amb__blocking_stop(x); /* before any task is discarded */
    x->ops.discard(x);
    for (unsigned i = 0; i < x->nsched; i++) {
        amb__sched *s = amb__exec_sched(x, i);
        amb__qsbr_reclaim(s, true);
        amb__timer_term(s);
        x->ops.sched_term(s);
        amb__sched_term(s);
    }
    /* relaxed: no scheduler runs any more (their threads were joined), so
     * the pools made by them are visible to this thread. */
    for (unsigned k = 0; k < AMB__STACK_CLASSES; k++)
        amb__stack_pool_free(
            atomic_load_explicit(&x->stack_pools[k], memory_order_relaxed));
    /* relaxed: nothing runs any more; the thread that made it was joined
     * or is this one. */
    amb__poll *p = atomic_load_explicit(&x->poll, memory_order_relaxed);
    if (p != NULL) {
        amb__poll_destroy(p);
        amb__free(p);
        atomic_store_explicit(&x->poll, NULL, memory_order_relaxed);
    }
    pthread_mutex_destroy(&x->stack_lock);
    amb__runq_inject_term(&x->inject);
    amb__free_aligned(x->scheds);
    x->scheds = NULL;
}

int amb__exec_stack_class(amb__exec *x, size_t size)
{
    for (unsigned k = 0; k < AMB__STACK_CLASSES; k++) {
        size_t cls = x->stack_size << k;
        if (cls > MAX_STACK)
            return -1;
        /* A class's size is address space, guard page and canary included:
         * what the task can use is a page and a little less. */
        if (cls - 2 * 4096 >= size)
            return (int)k;
    }
    return -1;
}

amb__stack_pool *amb__exec_stack_pool(amb__exec *x, unsigned cls)
{
    /* acquire: pairs with the release below; the pool is complete. */
    amb__stack_pool *pool =
        atomic_load_explicit(&x->stack_pools[cls], memory_order_acquire);
    if (pool != NULL)
        return pool;
    pthread_mutex_lock(&x->stack_lock);
    /* relaxed: under the lock, which orders it with the only writer. */
    pool = atomic_load_explicit(&x->stack_pools[cls], memory_order_relaxed);
    if (pool == NULL) {
        /* A large per-scheduler cache: stacks given back to the OS go in big
         * batches (each MADV_DONTNEED is a TLB shootdown on every CPU), and
         * a burst of short-lived tasks reuses warm stacks. */
        amb__stack_config sc = {.stack_size = x->stack_size << cls,
                                .cache_max = 1024,
                                .max_guards =
                                    x->stack_guards_off ? AMB__STACK_NO_GUARDS : 0};
        if (amb__stack_pool_new(&sc, &pool) == 0)
            /* release: the pool is complete before another scheduler's
             * acquire load above can see it. */
            atomic_store_explicit(&x->stack_pools[cls], pool, memory_order_release);
        else
            pool = NULL;
    }
    pthread_mutex_unlock(&x->stack_lock);
    return pool;
}

int amb__exec_poll_open(amb__exec *x, amb__poll **out)
{
    amb__poll *p = amb__exec_poller(x);
    if (p != NULL) {
        *out = p;
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&x->stack_lock);
    /* relaxed: under the lock, which orders it with the only writer. */
    p = atomic_load_explicit(&x->poll, memory_order_relaxed);
    if (p == NULL) {
        p = amb__malloc(sizeof *p);
        rc = p == NULL ? AMB_ENOMEM : amb__poll_init(p);
        if (rc == 0) {
            /* release: the poller is complete before a scheduler's acquire
             * load (amb__exec_poller) can see it. */
            atomic_store_explicit(&x->poll, p, memory_order_release);
        } else {
            amb__free(p);
            p = NULL;
        }
    }
    pthread_mutex_unlock(&x->stack_lock);
    *out = p;
    return rc;
}

static void *thread_main(void *arg)
{
    amb__sched_loop(arg);
    return NULL;
}

/* The end of a run, every scheduler thread joined: the tasks retired in
 * the run's last moments (a burst of teardowns outruns the epoch, more so
 * when the OS preempts a scheduler) are reclaimed, and every scheduler
 * gives its cached objects back, as one going to sleep does. Without this
 * they stayed in limbo and in the pools until amb__exec_term: a run that
 * ended right after a million processes did kept up to hundreds of MiB of
 * process blocks (conformance.failure.kill_storm...). The schedulers are
 * offline, so two advances of the epoch reclaim everything, unless a thread
 * outside the runtime is inside a lookup (qsbr.h): what it holds back waits
 * for the next run or for amb__exec_term. This thread may touch the
 * schedulers' own state: their threads were joined (scheduler 0 is this
 * one), as amb__exec_term does. */
static void settle(amb__exec *x)
{
    for (int advance = 0; advance < 2; advance++)
        for (unsigned i = 0; i < x->nsched; i++)
            amb__qsbr_reclaim(amb__exec_sched(x, i), false);
    for (unsigned i = 0; i < x->nsched; i++)
        x->ops.sched_trim(amb__exec_sched(x, i));
}

int amb__exec_run(amb__exec *x)
{
    bool was = false;
    /* seq_cst: one runner at a time, and the strongest order for a call
     * made once per run (no hot path). */
    if (!atomic_compare_exchange_strong_explicit(
            &x->running, &was, true, memory_order_seq_cst, memory_order_seq_cst))
        return AMB_ESTATE;
    /* A task counted before this run (amb__exec_task_begin on this
     * thread, or by a task of an earlier run, which that run's thread join
     * orders before us) is seen. */
    if (amb__exec_live(x) == 0) {
        atomic_store_explicit(&x->running, false, memory_order_seq_cst);
        return 0;
    }
    /* The pool's state (no thread yet) and the watchdog (blocking.h,
     * watchdog.h). */
    int rc = amb__blocking_prepare(x);
    if (rc == 0)
        rc = amb__watchdog_start(x);
    if (rc != 0) {
        atomic_store_explicit(&x->running, false, memory_order_seq_cst);
        return rc;
    }
    /* seq_cst: before any scheduler thread starts (pthread_create orders
     * it for them in any case). */
    atomic_store_explicit(&x->stopping, false, memory_order_seq_cst);
    unsigned started = 1;
    for (unsigned i = 1; i < x->nsched; i++) {
        amb__sched *s = amb__exec_sched(x, i);
        if (pthread_create(&s->thread, NULL, thread_main, s) != 0) {
            rc = AMB_EAGAIN;
            atomic_store_explicit(&x->stopping, true, memory_order_seq_cst);
            break;
        }
        started++;
    }
    if (rc == 0)
        amb__sched_loop(amb__exec_sched(x, 0));
    amb__sched_wake_all(x);
    for (unsigned i = 1; i < started; i++)
        pthread_join(amb__exec_sched(x, i)->thread, NULL);
    amb__watchdog_stop(x);
    settle(x);
    atomic_store_explicit(&x->running, false, memory_order_seq_cst);
    return rc;
}

uint64_t amb__exec_live(amb__exec *x)
{
    /* seq_cst: a scheduler that ends a task and then asks here, and another
     * that does the same at the same time, form a store-buffering pair: the
     * fences make at least one of them see both ends, so the last end is
     * never missed by everyone (sched.c calls this before sleeping). */
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t ended = 0, begun = 0;
    /* acquire: pairs with the release store of each end (sched.c), so
     * every task counted as ended here had its begin (and the begins of
     * the tasks it spawned) happen before the loads of the begin counts
     * below, which therefore count them. */
    for (unsigned i = 0; i < x->nsched; i++)
        ended +=
            atomic_load_explicit(&amb__exec_sched(x, i)->ended, memory_order_acquire);
    /* relaxed: see above; a begin missed here belongs to a task whose
     * spawner is still counted as live, so the difference stays above 0. */
    begun = atomic_load_explicit(&x->ext_begun, memory_order_relaxed);
    for (unsigned i = 0; i < x->nsched; i++)
        begun +=
            atomic_load_explicit(&amb__exec_sched(x, i)->begun, memory_order_relaxed);
    return begun > ended ? begun - ended : 0;
}

void amb__exec_stop(amb__exec *x)
{
    /* release: what the stopper did before is visible to a scheduler that
     * sees the flag (its acquire load in the loop). */
    atomic_store_explicit(&x->stopping, true, memory_order_release);
    amb__sched_wake_all(x);
}

/*
 * rt.c - creating, running, stopping and freeing a runtime, and amb_main.
 *
 * amb_rt_run turns the calling thread into scheduler 0 and starts the other
 * scheduler threads; it returns when every process has ended (the last
 * teardown sets `stopping`) or amb_rt_stop was called. Between runs the
 * runtime keeps its processes; amb_rt_free discards whatever is left.
 */
#include <stdlib.h>
#include <unistd.h>

#include "runtime/blocking.h"
#include "runtime/sched.h"
#include "runtime/watchdog.h"

#define DEFAULT_STACK     ((size_t)64 << 10)
#define DEFAULT_MAX_PROCS ((size_t)1 << 22)

static unsigned default_schedulers(void)
{
    const char *env = getenv("AMB_SCHEDULERS");
    if (env != NULL) {
        long n = strtol(env, NULL, 10);
        if (n > 0 && n <= 1024)
            return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static void sched_term(amb__sched *s)
{
    amb__sched_reclaim_all(s);
    amb__timers_free_all(s);
    amb__msg_pools_free(s);
    amb__proc_pool_free(s);
    for (unsigned k = 0; k < AMB__STACK_CLASSES; k++)
        if (s->stacks[k].pool != NULL)
            amb__stack_cache_term(&s->stacks[k]);
    amb__ptab_flush_cache(s->rt, s);
}

int amb_rt_new(const amb_config *cfg, amb_rt **out)
{
    if (out == NULL)
        return AMB_EBADARG;
    amb_config c = cfg ? *cfg : (amb_config){0};
    if (c.schedulers == 0)
        c.schedulers = default_schedulers();
    if (c.stack_size == 0)
        c.stack_size = DEFAULT_STACK;
    if (c.max_processes == 0)
        c.max_processes = DEFAULT_MAX_PROCS;
    if (c.blocking_threads == 0)
        c.blocking_threads = 4;
    if (c.watchdog_ms == 0)
        c.watchdog_ms = 2000;
    if (c.node_name == NULL)
        c.node_name = "nonode@nohost";
    if (c.schedulers > 1024 || c.max_processes > ((size_t)1 << 28) ||
        c.max_processes < 16 || c.stack_size < 16384 ||
        c.stack_size > ((size_t)256 << 20) || c.blocking_threads > 1024 ||
        !amb__timeout_ok(c.watchdog_ms, true))
        return AMB_EBADARG;
    amb_term node = amb_atom(c.node_name);
    if (node == AMB_NONE)
        return AMB_EBADARG;

    /* The struct holds cache-line-aligned members: an aligned block. */
    amb_rt *rt = amb__malloc_aligned(sizeof *rt, _Alignof(amb_rt));
    if (rt == NULL)
        return AMB_ENOMEM;
    memset(rt, 0, sizeof *rt);
    rt->cfg = c;
    rt->cfg.node_name = NULL; /* the caller's string need not outlive us */
    rt->node_name = node;
    rt->nsched = c.schedulers;
    int rc;
    /* A fresh creation per runtime of the same name, so pids of two local
     * runtimes never look alike. */
    for (uint32_t cr = 0;; cr++) {
        rc = amb__node_register(node, cr, &rt->node_slot);
        if (rc != AMB_EEXIST) {
            rt->creation = cr;
            break;
        }
    }
    if (rc != 0)
        goto fail_rt;
    pthread_mutex_init(&rt->inject_lock, NULL);
    if ((rc = amb__ptab_init(&rt->ptab, c.max_processes)) != 0)
        goto fail_lock;
    if ((rc = amb__names_init(rt)) != 0)
        goto fail_ptab;
    pthread_mutex_init(&rt->stack_lock, NULL);
    rt->scheds = amb__malloc_aligned(rt->nsched * sizeof(amb__sched), 64);
    if (rt->scheds == NULL) {
        rc = AMB_ENOMEM;
        goto fail_pool;
    }
    memset(rt->scheds, 0, rt->nsched * sizeof(amb__sched));
    uint64_t now = amb__clock_ms();
    for (unsigned i = 0; i < rt->nsched; i++) {
        amb__sched *s = &rt->scheds[i];
        s->rt = rt;
        s->id = i;
        amb__runq_init(&s->q);
        amb__wheel_init(&s->wheel, now);
        s->now_ms = now;
        atomic_init(&s->epoch_seen, AMB__EPOCH_OFFLINE);
        if ((rc = amb__timers_init(s)) != 0) {
            for (unsigned j = 0; j < i; j++)
                amb__timers_free_all(&rt->scheds[j]);
            goto fail_scheds;
        }
    }
    if ((rc = amb__msg_depots_init(rt)) != 0)
        goto fail_timers;
    if ((rc = amb__proc_depot_init(rt)) != 0) {
        amb__msg_depots_free(rt);
        goto fail_timers;
    }
    *out = rt;
    return 0;

fail_timers:
    for (unsigned j = 0; j < rt->nsched; j++)
        amb__timers_free_all(&rt->scheds[j]);
fail_scheds:
    amb__free_aligned(rt->scheds);
fail_pool:
    pthread_mutex_destroy(&rt->stack_lock);
    amb__names_term(rt);
fail_ptab:
    amb__ptab_term(&rt->ptab);
fail_lock:
    pthread_mutex_destroy(&rt->inject_lock);
fail_rt:
    amb__free_aligned(rt);
    return rc;
}

int amb__stack_class_for(amb_rt *rt, size_t size)
{
    for (unsigned k = 0; k < AMB__STACK_CLASSES; k++) {
        size_t cls = rt->cfg.stack_size << k;
        if (cls > ((size_t)256 << 20))
            return -1;
        /* A class's size is address space, guard page and canary included:
         * what the process can use is a page and a little less. */
        if (cls - 2 * 4096 >= size)
            return (int)k;
    }
    return -1;
}

/* The pool of class k, made on first use. */
static amb__stack_pool *pool_of(amb_rt *rt, unsigned k)
{
    /* acquire: pairs with the release below; the pool is complete. */
    amb__stack_pool *pool =
        atomic_load_explicit(&rt->stack_pools[k], memory_order_acquire);
    if (pool != NULL)
        return pool;
    pthread_mutex_lock(&rt->stack_lock);
    pool = atomic_load_explicit(&rt->stack_pools[k], memory_order_relaxed);
    if (pool == NULL) {
        /* A large per-scheduler cache: stacks given back to the OS go in big
         * batches (each MADV_DONTNEED is a TLB shootdown on every CPU), and
         * a burst of short-lived processes reuses warm stacks. */
        amb__stack_config sc = {.stack_size = rt->cfg.stack_size << k, .cache_max = 1024};
        if (amb__stack_pool_new(&sc, &pool) == 0)
            atomic_store_explicit(&rt->stack_pools[k], pool, memory_order_release);
        else
            pool = NULL;
    }
    pthread_mutex_unlock(&rt->stack_lock);
    return pool;
}

int amb__sched_stack_alloc(amb__sched *s, unsigned cls, amb__stack **out)
{
    amb__stack_cache *c = &s->stacks[cls];
    if (amb__unlikely(c->pool == NULL)) {
        amb__stack_pool *pool = pool_of(s->rt, cls);
        if (pool == NULL)
            return AMB_ENOMEM;
        amb__stack_cache_init(c, pool);
    }
    return amb__stack_alloc(c, out);
}

void amb__sched_stack_free(amb__sched *s, unsigned cls, amb__stack *st)
{
    amb__stack_cache *c = &s->stacks[cls];
    if (amb__unlikely(c->pool == NULL))
        amb__stack_cache_init(c, pool_of(s->rt, cls));
    amb__stack_free(c, st);
}

static void *thread_main(void *arg)
{
    amb__sched_loop(arg);
    return NULL;
}

int amb_rt_run(amb_rt *rt)
{
    if (rt == NULL)
        return AMB_EBADARG;
    bool was = false;
    if (!atomic_compare_exchange_strong(&rt->running, &was, true))
        return AMB_ESTATE;
    if (atomic_load(&rt->live) == 0) {
        atomic_store(&rt->running, false);
        return 0;
    }
    /* The pool's state (no thread yet) and the watchdog (blocking.h,
     * watchdog.h). */
    int rc = amb__blocking_prepare(rt);
    if (rc == 0)
        rc = amb__watchdog_start(rt);
    if (rc != 0) {
        atomic_store(&rt->running, false);
        return rc;
    }
    atomic_store(&rt->stopping, false);
    unsigned started = 1;
    for (unsigned i = 1; i < rt->nsched; i++) {
        if (pthread_create(&rt->scheds[i].thread, NULL, thread_main, &rt->scheds[i]) !=
            0) {
            rc = AMB_EAGAIN;
            atomic_store(&rt->stopping, true);
            break;
        }
        started++;
    }
    if (rc == 0)
        amb__sched_loop(&rt->scheds[0]);
    amb__sched_wake_all(rt);
    for (unsigned i = 1; i < started; i++)
        pthread_join(rt->scheds[i].thread, NULL);
    amb__watchdog_stop(rt);
    atomic_store(&rt->running, false);
    return rc;
}

int amb_rt_stop(amb_rt *rt)
{
    if (rt == NULL)
        return AMB_EBADARG;
    atomic_store_explicit(&rt->stopping, true, memory_order_release);
    amb__sched_wake_all(rt);
    return 0;
}

void amb_rt_free(amb_rt *rt)
{
    if (rt == NULL)
        return;
    if (atomic_load(&rt->running))
        amb__panic("amb_rt_free on a running runtime");
    amb__blocking_stop(rt); /* before any process is discarded */
    amb__sched *s0 = &rt->scheds[0];
    for (size_t i = 0; i < rt->ptab.size && i < atomic_load(&rt->ptab.fresh); i++) {
        amb_proc *p = atomic_load_explicit(&rt->ptab.slots[i], memory_order_relaxed);
        if (p != NULL) {
            atomic_store_explicit(&rt->ptab.slots[i], NULL, memory_order_relaxed);
            amb__proc_discard(s0, p);
        }
    }
    for (unsigned i = 0; i < rt->nsched; i++)
        sched_term(&rt->scheds[i]);
    amb__msg_depots_free(rt);
    amb__proc_depot_free(rt);
    for (unsigned k = 0; k < AMB__STACK_CLASSES; k++)
        amb__stack_pool_free(atomic_load(&rt->stack_pools[k]));
    pthread_mutex_destroy(&rt->stack_lock);
    amb__names_term(rt);
    amb__ptab_term(&rt->ptab);
    pthread_mutex_destroy(&rt->inject_lock);
    amb__free_aligned(rt->scheds);
    amb__free_aligned(rt);
}

int amb_main(const amb_config *cfg, amb_fn *fn, void *arg)
{
    if (fn == NULL)
        return AMB_EBADARG;
    amb_rt *rt;
    int rc = amb_rt_new(cfg, &rt);
    if (rc != 0)
        return rc;
    rc = amb_rt_spawn(rt, fn, arg, NULL);
    if (rc == 0)
        rc = amb_rt_run(rt);
    amb_rt_free(rt);
    return rc;
}

/*
 * rt.c - creating, running, stopping and freeing a runtime (amb_rt_*), and
 * amb_main: the process layer's runtime object over the executor
 * (src/runtime/exec.h), and the ops table that tells the executor what its
 * tasks are (processes).
 *
 * amb_rt_run runs the executor: the calling thread becomes scheduler 0;
 * it returns when every process has ended or amb_rt_stop or amb_rt_halt
 * was called, with the halt's code if there was one. Between runs the
 * runtime keeps its processes; amb_rt_free discards whatever is left.
 *
 * The exit status rule (docs/design/runtime.md, "How a run ends"): a run
 * fails only when something halted it: the application controller when an
 * application the program needs ended (AMB_EAPPEXIT, erl's "Kernel pid
 * terminated"), amb_main's process ending with any reason but normal
 * (AMB_EMAINEXIT, an escript's status 127), or the user (amb_rt_halt).
 */
#include <stdlib.h>
#include <unistd.h>

#include "process/remote.h"

#define DEFAULT_STACK     ((size_t)64 << 10)
#define DEFAULT_MAX_PROCS ((size_t)1 << 22)
/* The idle spin's upper bound: waking a sleeping vCPU costs 100-180 us on
 * the machines measured (runtime.md, "Idle and wake-up"), so work that
 * arrives within 200 us of the last is caught awake. */
#define DEFAULT_SPIN_US 200
#define MAX_SPIN_US     100000

/* Going to sleep: cached cells and blocks go back to their slabs. */
static void sched_trim(amb__sched *s)
{
    amb__msg_pools_trim(s);
    amb__proc_pool_trim(s);
}

/* Teardown of the process layer's part of s (its limbo and timers are
 * empty: every cell and block is back in the pools). */
static void sched_term(amb__sched *s)
{
    amb__free(amb__rt_sched_of(s)->io_scratch);
    amb__rt_sched_of(s)->io_scratch = NULL;
    amb__msg_pools_free(s);
    amb__proc_pool_free(s);
    amb__ptab_flush_cache(amb__rt_of(s->exec), s);
}

static const amb__task_ops ops = {
    .entry = amb__proc_entry,
    .teardown = amb__proc_teardown,
    .start_failed = amb__proc_start_failed,
    .inbox_closed = amb__proc_inbox_closed,
    .reclaim = amb__proc_reclaim,
    .timer_fire = amb__ptimer_fire,
    .blocking_done = amb__blocking_call_done,
    .discard = amb__proc_discard_all,
    .sched_trim = sched_trim,
    .sched_term = sched_term,
    .report_stuck = amb__logger_stuck,
};

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

/* A node name as erl takes one (net_kernel): Name@Host, Name of letters,
 * digits, '_' and '-', Host non-empty and of printable characters without
 * spaces. */
static bool node_name_ok(const char *name)
{
    const char *at = strchr(name, '@');
    if (at == NULL || at == name || at[1] == '\0')
        return false;
    for (const char *c = name; c < at; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return false;
    for (const char *c = at + 1; *c != '\0'; c++)
        if (*c < '!' || *c > '~')
            return false;
    return true;
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
    if (c.spin_us == 0)
        c.spin_us = DEFAULT_SPIN_US;
    if (c.schedulers > 1024 || c.max_processes > ((size_t)1 << 28) ||
        c.max_processes < 16 || c.stack_size < 16384 ||
        c.stack_size > ((size_t)256 << 20) || c.blocking_threads > 1024 ||
        !amb__timeout_ok(c.watchdog_ms, true) || !node_name_ok(c.node_name) ||
        !(c.spin_us == AMB_SPIN_OFF || (c.spin_us > 0 && c.spin_us <= MAX_SPIN_US)))
        return AMB_EBADARG;
    /* A full atom table is AMB_ESYSLIMIT, as for any new atom. */
    amb_term node, overflow, enomem;
    int arc = amb_atom_new(c.node_name, strlen(c.node_name), &node);
    if (arc == 0)
        arc = amb_atom_new("stack_overflow", 14, &overflow);
    if (arc == 0)
        arc = amb_atom_new("AMB_ENOMEM", 10, &enomem);
    if (arc != 0)
        return arc;

    /* The struct holds cache-line-aligned members: an aligned block. */
    amb_rt *rt = amb__malloc_aligned(sizeof *rt, _Alignof(amb_rt));
    if (rt == NULL)
        return AMB_ENOMEM;
    memset(rt, 0, sizeof *rt);
    rt->cfg = c;
    rt->cfg.node_name = NULL; /* the caller's string need not outlive us */
    rt->first_node = node;
    rt->atom_stack_overflow = overflow;
    int rc = amb_heap_new(&rt->reason_heap);
    if (rc != 0)
        goto fail_rt;
    rt->reason_enomem = AMB_TUPLE(rt->reason_heap, AMB_ATOM_ERROR, enomem);
    if (rt->reason_enomem == AMB_NONE) {
        rc = AMB_ENOMEM;
        goto fail_rt;
    }
    /* A fresh creation per runtime of the same name, so pids of two local
     * runtimes never look alike. */
    for (uint32_t cr = 0;; cr++) {
        rc = amb__node_register(node, cr, &rt->node_slot);
        if (rc != AMB_EEXIST) {
            rt->first_creation = cr;
            break;
        }
    }
    if (rc != 0)
        goto fail_rt;
    if ((rc = amb__ptab_init(&rt->ptab, c.max_processes, c.schedulers)) != 0)
        goto fail_rt;
    if ((rc = amb__names_init(rt)) != 0)
        goto fail_ptab;
    amb__exec_config ec = {
        .schedulers = c.schedulers,
        .stack_size = c.stack_size,
        .blocking_threads = c.blocking_threads,
        .watchdog_ms =
            c.watchdog_ms == AMB_INFINITY ? UINT64_MAX : (uint64_t)c.watchdog_ms,
        .sched_ext = sizeof(amb__rt_sched),
        .spin_max_us = c.spin_us == AMB_SPIN_OFF ? 0 : (uint32_t)c.spin_us,
        .ops = &ops,
    };
    if ((rc = amb__exec_init(&rt->exec, &ec)) != 0)
        goto fail_names;
    if ((rc = amb__msg_depots_init(rt)) != 0)
        goto fail_exec;
    if ((rc = amb__proc_depot_init(rt)) != 0) {
        amb__msg_depots_free(rt);
        goto fail_exec;
    }
    *out = rt;
    return 0;

fail_exec:
    amb__exec_term(&rt->exec);
fail_names:
    amb__names_term(rt);
fail_ptab:
    amb__ptab_term(&rt->ptab);
fail_rt:
    amb_heap_free(rt->reason_heap);
    amb__free_aligned(rt);
    return rc;
}

int amb_rt_run(amb_rt *rt)
{
    if (rt == NULL)
        return AMB_EBADARG;
    /* relaxed: no process runs yet; a halt asked for while the runtime did
     * not run is forgotten, as amb_rt_stop's is. */
    atomic_store_explicit(&rt->halt_code, 0, memory_order_relaxed);
    int rc = amb__exec_run(&rt->exec);
    /* acq_rel: takes the code a halt stored before it stopped the
     * executor, whose threads this run joined; a halt of a later run
     * starts from 0 again. */
    int halt = atomic_exchange_explicit(&rt->halt_code, 0, memory_order_acq_rel);
    return rc != 0 ? rc : halt;
}

int amb_rt_stop(amb_rt *rt)
{
    if (rt == NULL)
        return AMB_EBADARG;
    amb__exec_stop(&rt->exec);
    return 0;
}

int amb_rt_halt(amb_rt *rt, int code)
{
    if (rt == NULL || code >= 0)
        return AMB_EBADARG;
    int none = 0;
    /* relaxed: only the first code counts, and amb_rt_run reads it after
     * the executor's stop, which orders it (see amb_rt_run). */
    atomic_compare_exchange_strong_explicit(&rt->halt_code, &none, code,
                                            memory_order_relaxed, memory_order_relaxed);
    amb__exec_stop(&rt->exec);
    return 0;
}

void amb_rt_free(amb_rt *rt)
{
    if (rt == NULL)
        return;
    /* Discards the processes still alive (amb__proc_discard_all), the
     * blocks in limbo, pending timers and the per-scheduler caches. */
    amb__exec_term(&rt->exec);
    /* The dist layer's state goes after the last process that could use
     * it (remote.h). relaxed: no thread runs any more. */
    const amb__remote *r = atomic_load_explicit(&rt->remote, memory_order_relaxed);
    if (r != NULL)
        r->ops->free(r->ctx);
    if (rt->io_free != NULL)
        rt->io_free(rt);
    amb__msg_depots_free(rt);
    amb__proc_depot_free(rt);
    amb__names_term(rt);
    amb__ptab_term(&rt->ptab);
    amb_heap_free(rt->reason_heap);
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
    rc = amb__proc_spawn_main(rt, fn, arg);
    if (rc == 0)
        rc = amb_rt_run(rt);
    amb_rt_free(rt);
    return rc;
}

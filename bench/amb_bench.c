/*
 * bench/amb_bench.c - the peer benchmarks (../shared/peer-bench) on this
 * library's runtime: the same work, arguments and output as the Erlang, Go
 * and CAF programs there, so that run_all.sh can run it beside them.
 *
 *   amb-bench spawn N [ROUNDS]          stackful processes blocked in a receive
 *   amb-bench spawn_handler N [ROUNDS]  the same with handler processes
 *   amb-bench ring N M [HANDLERS]       N processes pass a token N*M hops
 *   amb-bench pingpong N                N round trips between two processes
 *   amb-bench skynet SIZE DIV           a DIV-ary tree of SIZE leaves sums
 *   amb-bench call TOTAL K [RAW]   K clients call one server TOTAL times
 *   amb-bench call_queued N QUEUED      N calls by a client with QUEUED other
 *                                       messages in its mailbox (ours)
 *   amb-bench m2o S PER                 S senders x PER messages to one
 *   amb-bench timers N MAXDELAY         N send_after timers of 1..MAXDELAY ms
 *   amb-bench sup_wide N [DYNAMIC]      one supervisor with N children (ours)
 *   amb-bench maps N                    N puts into one map, N gets, N removes
 *   amb-bench call_state KEYS PUTS      calls putting into a gen_server's term map
 *
 * Each prints one line, `RESULT bench=<name> impl=c schedulers=<n> key=value
 * ...`, with the key names of RESULTS.md ("What each benchmark does"), and
 * exits 0; a wrong answer (a bad sum, a lost message, a wrong reply) prints
 * why on stderr and exits 1 without a RESULT line. The scheduler count comes
 * from AMB_SCHEDULERS (default: one per online CPU) and is passed to the
 * runtime explicitly, so the count printed is the count used.
 *
 * Shape of every benchmark: main() creates a runtime, spawns one root
 * process running the benchmark and runs the runtime until every process
 * has ended. The root fills a report, which main() prints after amb_rt_run
 * returns; nothing is printed while the clock runs. Data the processes
 * share beyond messages (a benchmark's parameters, "has started" flags, a
 * place for a result) lives in structs owned by the root, which outlive the
 * processes that read them because the root waits for those processes'
 * replies before it returns.
 *
 * Differences from the peers, all deliberate:
 *   - spawn: a stackful process gets its stack when it first runs, so the
 *     RSS sample waits until every child has run into its receive
 *     (settle_ms); the peers' processes own their memory from the spawn on.
 *     The `go` message is the parent's pid, so a child needs no other state.
 *   - ring: the root waits until every node has started before the clock
 *     starts (set-up excluded, as RESULTS.md says); the nodes end on a
 *     negative token after the clock stopped. HANDLERS=1 makes the nodes
 *     handler processes (no stack of their own while they wait).
 *   - call: a gen_server echo server and amb_gen_server_call with a 5000 ms
 *     timeout: the full semantics (monitor, alias, selective receive after a
 *     mark). RAW=1 measures instead a raw call with no monitor and no alias
 *     to a plain handler process, to show what those cost.
 *   - timers: prints within_1_5x (1 when the last tick arrived no later than
 *     1.5 x MAXDELAY after the first timer was armed).
 *   - sup_wide has no peer program: it measures the supervisor's cost per
 *     child operation (each phase should grow linearly with N).
 *   - call_state has no peer program: the call of `call` to a gen_server
 *     whose state is a term map the runtime keeps alive, and the memory
 *     that costs (peak RSS over the live data).
 *   - call_queued has no peer program either: the cost of a gen_server call
 *     must not depend on how many unrelated messages wait in the caller's
 *     mailbox (DESIGN §2, the receive mark); ns_per_call should be flat in
 *     QUEUED. It reports the calling thread's CPU time too (cpu_ns_per_call),
 *     which the other engineers' load on a shared machine does not inflate.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ambitious/gen_server.h"
#include "ambitious/process.h"
#include "ambitious/supervisor.h"
#include "ambitious/term.h"

/* ---------------------------------------------------------------------------
 * Reports and failures
 * ------------------------------------------------------------------------ */

#define MAX_KV 24

struct kv {
    const char *key;
    double num;
    const char *str; /* a string value instead of num, or NULL */
    bool is_int;
};

struct run {
    const char *bench; /* the bench= name printed */
    long long args[3];
    int nargs;
    unsigned schedulers;
    struct kv kv[MAX_KV];
    int nkv;
    _Atomic bool failed; /* any process may fail the run */
};

/* Atoms the benchmarks send, made once in main() before the runtime starts
 * and read-only afterwards. */
static struct {
    amb_term done, go, tick, stop, count, ping, pong, child, put, check;
} A;

static void kv_int(struct run *r, const char *key, long long v)
{
    if (r->nkv < MAX_KV)
        r->kv[r->nkv++] = (struct kv){.key = key, .num = (double)v, .is_int = true};
}

static void kv_num(struct run *r, const char *key, double v)
{
    if (r->nkv < MAX_KV)
        r->kv[r->nkv++] = (struct kv){.key = key, .num = v};
}

static void kv_str(struct run *r, const char *key, const char *v)
{
    if (r->nkv < MAX_KV)
        r->kv[r->nkv++] = (struct kv){.key = key, .str = v};
}

static void print_report(const struct run *r)
{
    printf("RESULT bench=%s impl=c schedulers=%u", r->bench, r->schedulers);
    for (int i = 0; i < r->nkv; i++) {
        const struct kv *k = &r->kv[i];
        if (k->str != NULL)
            printf(" %s=%s", k->key, k->str);
        else if (k->is_int)
            printf(" %s=%lld", k->key, (long long)k->num);
        else
            printf(" %s=%.3f", k->key, k->num);
    }
    printf("\n");
    fflush(stdout);
}

/* Marks the run failed, says why, and stops the runtime: processes still
 * blocked in a receive would otherwise keep amb_rt_run from returning. Any
 * process may call it; the caller then returns from its body. */
__attribute__((format(printf, 3, 4))) static void fail(struct run *r, amb_proc *self,
                                                       const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "amb-bench %s: ", r->bench);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    /* seq_cst: not a hot path, and main() reads it after amb_rt_run
     * returned, which already orders it; the default is the simplest. */
    atomic_store(&r->failed, true);
    amb_rt_stop(amb_proc_rt(self));
}

static bool failed(struct run *r)
{
    return atomic_load(&r->failed);
}

/* ---------------------------------------------------------------------------
 * Clocks and memory
 * ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* A line "Name: N kB" of /proc/self/status in KiB, or -1. */
static long status_kb(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kb = -1;
    size_t len = strlen(name);
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, name, len) == 0 && line[len] == ':') {
            kb = strtol(line + len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* VmRSS of this OS process in KiB (what the peers sample), or -1. */
static long rss_kb(void)
{
    return status_kb("VmRSS");
}

/* Resets the peak RSS (VmHWM) to the current RSS (Linux's clear_refs 5):
 * a phase's peak is then VmHWM at its end. False where unsupported. */
static bool reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f == NULL)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/* Minor page faults of this OS process so far (every first touch of a
 * fresh page is one; ~2 us each on this VM). */
static long minflt(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : -1;
}

/* A zeroed array that is already resident, so that its pages do not count
 * in an RSS delta or a timing taken later (calloc may hand out untouched
 * pages that fault in on first write). */
static void *alloc_touched(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = malloc(n * size > 0 ? n * size : 1);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

/* Waits until n flags, stride bytes apart from *first on, are all set: each
 * is set by a process when it starts. The waiter sleeps 1 ms between looks
 * instead of yielding: a process that waits for others should not compete
 * with them for the scheduler (and a yield may be scheduled again before
 * the processes that overflowed the run queue). Relaxed loads suffice: a
 * flag only says when to go on (sample RSS, start a clock); no data is read
 * through it. */
static void wait_started(amb_proc *self, const _Atomic uint8_t *first, size_t n,
                         size_t stride)
{
    size_t i = 0;
    while (i < n) {
        const _Atomic uint8_t *f =
            (const _Atomic uint8_t *)((const char *)first + i * stride);
        if (atomic_load_explicit(f, memory_order_relaxed))
            i++;
        else
            amb_sleep(self, 1);
    }
}

static void mark_started(_Atomic uint8_t *flag)
{
    /* Relaxed: see wait_started. */
    atomic_store_explicit(flag, 1, memory_order_relaxed);
}

/* Receives n messages that must all be `want`. */
static int receive_n(struct run *r, amb_proc *self, size_t n, amb_term want)
{
    for (size_t i = 0; i < n; i++) {
        amb_term m;
        int rc = amb_receive(self, AMB_INFINITY, &m);
        if (rc != 0) {
            fail(r, self, "receive: %s", amb_strerror(rc));
            return rc;
        }
        if (m != want) {
            fail(r, self, "unexpected message %zu of %zu", i, n);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * 1. spawn N ROUNDS and spawn_handler N ROUNDS
 *
 * Spawn N processes that each wait for one message; sample VmRSS once all
 * exist (and, stackful, have run into their receive); send each one message
 * (the parent's pid); each sends `done` to the parent and ends; stop the
 * clock when the parent has all N. Round 1 is cold (fresh memory); rounds 2..
 * reuse whatever the runtime kept (warm_total_ms = the best of them).
 * ------------------------------------------------------------------------ */

struct spawn_round {
    uint64_t total, spawn, settle, msg_exit; /* ns */
    long rss_delta_kb;
    long minflt;
};

static void waiter_body(amb_proc *self, void *arg)
{
    mark_started(arg);
    amb_term parent;
    if (amb_receive(self, AMB_INFINITY, &parent) == 0)
        amb_send(self, parent, A.done);
}

static int waiter_handle(amb_proc *self, void *state, amb_term parent)
{
    (void)state;
    int rc = amb_send(self, parent, A.done);
    if (rc != 0)
        return rc;
    amb_exit_self(self, AMB_ATOM_NORMAL);
}

static const amb_handler waiter_handler = {.handle = waiter_handle};

static int spawn_round(struct run *r, amb_proc *self, bool handler, size_t n,
                       amb_pid *pids, _Atomic uint8_t *started, struct spawn_round *out)
{
    memset(started, 0, n);
    long rss0 = rss_kb(), flt0 = minflt();
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        int rc = handler ? amb_spawn_handler(self, &waiter_handler, NULL, &pids[i])
                         : amb_spawn(self, waiter_body, (void *)&started[i], &pids[i]);
        if (rc != 0) {
            fail(r, self, "spawn %zu of %zu: %s", i, n, amb_strerror(rc));
            return rc;
        }
    }
    uint64_t t1 = now_ns();
    /* A handler holds all it will hold while idle from its spawn on; a
     * stackful process gets its stack when it first runs. */
    if (!handler)
        wait_started(self, started, n, sizeof *started);
    uint64_t t2 = now_ns();
    long rss1 = rss_kb();
    amb_pid me = amb_self(self);
    for (size_t i = 0; i < n; i++) {
        int rc = amb_send(self, pids[i], me);
        if (rc != 0) {
            fail(r, self, "send: %s", amb_strerror(rc));
            return rc;
        }
    }
    int rc = receive_n(r, self, n, A.done);
    if (rc != 0)
        return rc;
    uint64_t t3 = now_ns();
    *out = (struct spawn_round){
        .total = t3 - t0,
        .spawn = t1 - t0,
        .settle = t2 - t1,
        .msg_exit = t3 - t2,
        .rss_delta_kb = rss1 - rss0,
        .minflt = minflt() - flt0,
    };
    return 0;
}

static void bench_spawn_common(struct run *r, amb_proc *self, bool handler)
{
    size_t n = (size_t)r->args[0];
    long long rounds = r->args[1];
    amb_pid *pids = alloc_touched(n, sizeof *pids);
    _Atomic uint8_t *started = alloc_touched(n, sizeof *started);
    if (pids == NULL || started == NULL) {
        fail(r, self, "out of memory for %zu pids", n);
        goto out;
    }
    struct spawn_round cold, warm = {0}, w;
    if (spawn_round(r, self, handler, n, pids, started, &cold) != 0)
        goto out;
    for (long long i = 1; i < rounds; i++) {
        if (spawn_round(r, self, handler, n, pids, started, &w) != 0)
            goto out;
        if (warm.total == 0 || w.total < warm.total)
            warm = w;
    }
    kv_str(r, "kind", handler ? "handler" : "stackful");
    kv_int(r, "n", (long long)n);
    kv_num(r, "total_ms", ms(cold.total));
    kv_num(r, "spawn_ms", ms(cold.spawn));
    kv_num(r, "settle_ms", ms(cold.settle));
    kv_num(r, "msg_exit_ms", ms(cold.msg_exit));
    kv_num(r, "ns_per_proc", (double)cold.total / (double)n);
    kv_int(r, "rss_delta_kb", cold.rss_delta_kb);
    kv_num(r, "bytes_per_proc", (double)cold.rss_delta_kb * 1024.0 / (double)n);
    kv_int(r, "minflt", cold.minflt);
    kv_num(r, "warm_total_ms", ms(warm.total));
    kv_num(r, "warm_spawn_ms", ms(warm.spawn));
    kv_int(r, "warm_minflt", warm.minflt);
    kv_int(r, "rounds", rounds);
out:
    free(pids);
    free(started);
}

static void bench_spawn(struct run *r, amb_proc *self)
{
    bench_spawn_common(r, self, false);
}

static void bench_spawn_handler(struct run *r, amb_proc *self)
{
    bench_spawn_common(r, self, true);
}

/* ---------------------------------------------------------------------------
 * 2. ring N M
 *
 * N processes, node i sends to node (i+1) mod N. The token N*M enters at
 * node 0; each node forwards k-1; the node that receives 0 (node 0, after
 * exactly N*M hops) tells the root. A negative token ends a node.
 * ------------------------------------------------------------------------ */

struct ring_node {
    amb_pid next, root;
    struct run *run;
    _Atomic uint8_t started;
};

/* One token at a node: forwards k-1, tells the root at 0, ends (*end) on a
 * negative token. */
static int ring_step(amb_proc *self, const struct ring_node *node, amb_term m, bool *end)
{
    int64_t k = amb_small_value(m);
    *end = k < 0;
    if (k > 0)
        return amb_send(self, node->next, AMB_SMALL(k - 1));
    if (k == 0)
        return amb_send(self, node->root, amb_self(self));
    return 0;
}

static void ring_body(amb_proc *self, void *arg)
{
    struct ring_node *node = arg;
    mark_started(&node->started);
    for (;;) {
        amb_term m;
        bool end = false;
        int rc = amb_receive(self, AMB_INFINITY, &m);
        if (rc == 0)
            rc = ring_step(self, node, m, &end);
        if (rc != 0) {
            fail(node->run, self, "ring: %s", amb_strerror(rc));
            return;
        }
        if (end)
            return;
    }
}

/* The handler variant (ring N M 1): the node's state is its ring_node. */
static int ring_init(amb_proc *self, void *state, void *arg)
{
    *(struct ring_node **)state = arg;
    mark_started(&((struct ring_node *)arg)->started);
    return 0;
}

static int ring_handle(amb_proc *self, void *state, amb_term m)
{
    bool end = false;
    int rc = ring_step(self, *(struct ring_node **)state, m, &end);
    if (end)
        amb_exit_self(self, AMB_ATOM_NORMAL);
    return rc;
}

static const amb_handler ring_handler = {
    .state_size = sizeof(struct ring_node *),
    .init = ring_init,
    .handle = ring_handle,
};

static void bench_ring(struct run *r, amb_proc *self)
{
    size_t n = (size_t)r->args[0];
    long long laps = r->args[1];
    long long hops = (long long)n * laps;
    bool handlers = r->nargs > 2 && r->args[2] != 0;
    struct ring_node *nodes = alloc_touched(n, sizeof *nodes);
    amb_pid *pids = alloc_touched(n, sizeof *pids);
    size_t spawned = 0;
    if (nodes == NULL || pids == NULL) {
        fail(r, self, "out of memory for %zu nodes", n);
        goto out;
    }
    for (; spawned < n; spawned++) {
        nodes[spawned].root = amb_self(self);
        nodes[spawned].run = r;
        int rc = handlers ? amb_spawn_handler(self, &ring_handler, &nodes[spawned],
                                              &pids[spawned])
                          : amb_spawn(self, ring_body, &nodes[spawned], &pids[spawned]);
        if (rc != 0) {
            fail(r, self, "spawn: %s", amb_strerror(rc));
            goto out;
        }
    }
    /* The nodes read `next` only when the first token reaches them, which
     * the send below orders after these stores. */
    for (size_t i = 0; i < n; i++)
        nodes[i].next = pids[(i + 1) % n];
    wait_started(self, &nodes[0].started, n, sizeof *nodes);

    uint64_t t0 = now_ns();
    int rc = amb_send(self, pids[0], AMB_SMALL(hops));
    amb_term who = AMB_NONE;
    if (rc == 0)
        rc = amb_receive(self, AMB_INFINITY, &who);
    uint64_t t1 = now_ns();
    if (rc != 0) {
        fail(r, self, "ring: %s", amb_strerror(rc));
        goto out;
    }
    if (who != pids[0]) {
        fail(r, self, "the token reached 0 at the wrong node");
        goto out;
    }
    kv_str(r, "kind", handlers ? "handler" : "stackful");
    kv_int(r, "n", (long long)n);
    kv_int(r, "rounds", laps);
    kv_int(r, "hops", hops);
    kv_num(r, "total_ms", ms(t1 - t0));
    kv_num(r, "ns_per_hop", (double)(t1 - t0) / (double)hops);
out:
    for (size_t i = 0; i < spawned; i++)
        amb_send(self, pids[i], AMB_SMALL(-1));
    /* The nodes may still read their struct until they take the negative
     * token; wait until each is gone before freeing it. */
    for (size_t i = 0; i < spawned; i++)
        while (amb_is_process_alive(self, pids[i]) && !failed(r))
            amb_yield(self);
    free(nodes);
    free(pids);
}

/* ---------------------------------------------------------------------------
 * 3. pingpong N
 *
 * ping sends {ping, self()}, pong answers `pong`; N round trips timed in
 * the ping process.
 * ------------------------------------------------------------------------ */

struct pingpong {
    struct run *run;
    amb_pid pong, root;
    long long n;
    uint64_t elapsed_ns;
};

static void pong_body(amb_proc *self, void *arg)
{
    struct run *r = arg;
    for (;;) {
        amb_term m;
        int rc = amb_receive(self, AMB_INFINITY, &m);
        if (rc != 0) {
            fail(r, self, "pong receive: %s", amb_strerror(rc));
            return;
        }
        if (m == A.stop)
            return;
        if (!amb_is_record(m, A.ping, 2)) {
            fail(r, self, "pong: unexpected message");
            return;
        }
        rc = amb_send(self, amb_tuple_elem(m, 1), A.pong);
        if (rc != 0) {
            fail(r, self, "pong send: %s", amb_strerror(rc));
            return;
        }
    }
}

static void ping_body(amb_proc *self, void *arg)
{
    struct pingpong *pp = arg;
    amb_term m;
    if (receive_n(pp->run, self, 1, A.go) != 0)
        return;
    /* Built once: a term is immutable and a send copies it. */
    amb_term ping = AMB_TUPLE(amb_proc_heap(self), A.ping, amb_self(self));
    if (ping == AMB_NONE) {
        fail(pp->run, self, "out of memory");
        return;
    }
    uint64_t t0 = now_ns();
    for (long long i = 0; i < pp->n; i++) {
        int rc = amb_send(self, pp->pong, ping);
        if (rc == 0)
            rc = amb_receive(self, AMB_INFINITY, &m);
        if (rc != 0 || m != A.pong) {
            fail(pp->run, self, "ping: %s", rc ? amb_strerror(rc) : "not pong");
            return;
        }
    }
    pp->elapsed_ns = now_ns() - t0;
    amb_send(self, pp->pong, A.stop);
    amb_send(self, pp->root, A.done);
}

static void bench_pingpong(struct run *r, amb_proc *self)
{
    struct pingpong pp = {.run = r, .root = amb_self(self), .n = r->args[0]};
    amb_pid ping;
    int rc = amb_spawn(self, pong_body, r, &pp.pong);
    if (rc == 0)
        rc = amb_spawn(self, ping_body, &pp, &ping);
    if (rc == 0)
        rc = amb_send(self, ping, A.go);
    if (rc != 0) {
        fail(r, self, "pingpong: %s", amb_strerror(rc));
        return;
    }
    if (receive_n(r, self, 1, A.done) != 0)
        return;
    kv_int(r, "roundtrips", pp.n);
    kv_num(r, "total_ms", ms(pp.elapsed_ns));
    kv_num(r, "ns_per_roundtrip", (double)pp.elapsed_ns / (double)pp.n);
}

/* ---------------------------------------------------------------------------
 * 4. skynet SIZE DIV
 *
 * A node of size > 1 spawns DIV children (num + i*size/DIV, size/DIV),
 * sums their replies and sends the sum to its parent; a leaf sends num.
 * A parent keeps its children's arguments in its own stack frame: it
 * outlives their reads, since it waits for every child's reply.
 * ------------------------------------------------------------------------ */

#define SKY_MAX_DIV 16

struct sky_arg {
    struct run *run;
    amb_pid parent;
    int64_t num, size, div;
};

static void sky_body(amb_proc *self, void *arg);

/* The inner-node part, kept out of sky_body so that a leaf's frame stays
 * small (a leaf touches less stack). */
__attribute__((noinline)) static void sky_inner(amb_proc *self, const struct sky_arg *a)
{
    struct sky_arg kids[SKY_MAX_DIV];
    int64_t sub = a->size / a->div;
    amb_pid me = amb_self(self);
    for (int64_t i = 0; i < a->div; i++) {
        kids[i] = (struct sky_arg){a->run, me, a->num + i * sub, sub, a->div};
        int rc = amb_spawn(self, sky_body, &kids[i], NULL);
        if (rc != 0) {
            fail(a->run, self, "skynet spawn: %s", amb_strerror(rc));
            return;
        }
    }
    int64_t sum = 0;
    for (int64_t i = 0; i < a->div; i++) {
        amb_term m;
        int rc = amb_receive(self, AMB_INFINITY, &m);
        if (rc != 0 || !amb_is_small(m)) {
            fail(a->run, self, "skynet receive: %s",
                 rc ? amb_strerror(rc) : "not a number");
            return;
        }
        sum += amb_small_value(m);
    }
    amb_send(self, a->parent, AMB_SMALL(sum));
}

static void sky_body(amb_proc *self, void *arg)
{
    const struct sky_arg *a = arg;
    if (a->size == 1)
        amb_send(self, a->parent, AMB_SMALL(a->num));
    else
        sky_inner(self, a);
}

static void bench_skynet(struct run *r, amb_proc *self)
{
    int64_t size = r->args[0], div = r->args[1];
    struct sky_arg root = {r, amb_self(self), 0, size, div};
    uint64_t t0 = now_ns();
    int rc = amb_spawn(self, sky_body, &root, NULL);
    amb_term m = AMB_NONE;
    if (rc == 0)
        rc = amb_receive(self, AMB_INFINITY, &m);
    uint64_t t1 = now_ns();
    if (rc != 0) {
        fail(r, self, "skynet: %s", amb_strerror(rc));
        return;
    }
    int64_t want = size * (size - 1) / 2;
    if (!amb_is_small(m) || amb_small_value(m) != want) {
        fail(r, self, "bad sum %lld, want %lld",
             amb_is_small(m) ? (long long)amb_small_value(m) : -1LL, (long long)want);
        return;
    }
    long long procs = 0;
    for (int64_t s = size; s >= 1; s /= div) {
        procs += size / s;
        if (s == 1)
            break;
    }
    kv_int(r, "leaves", size);
    kv_int(r, "processes", procs);
    kv_int(r, "sum", want);
    kv_num(r, "total_ms", ms(t1 - t0));
}

/* ---------------------------------------------------------------------------
 * 5. call TOTAL K [RAW]
 *
 * One echo gen_server that counts the calls it served; K clients each make
 * TOTAL/K gen_server calls back to back (5000 ms timeout); Reply must be X.
 * RAW=1: the raw shape instead (Ref = make_ref, mark, send
 * {'$gen_call', {self(), Ref}, X}, receive {Ref, Reply} after the mark, no
 * monitor, no alias) to a plain handler process.
 * ------------------------------------------------------------------------ */

#define CALL_TIMEOUT_MS 5000

struct call_bench {
    struct run *run;
    amb_pid server, root;
    long long per;
    bool raw;
};

struct server_state {
    long long served;
};

static bool is_reply_to(void *ref, amb_term msg)
{
    return amb_tuple_arity(msg) == 2 &&
           amb_equal(amb_tuple_elem(msg, 0), *(amb_term *)ref);
}

/* A raw call (no monitor): 0 and *reply (borrowed until the next receive),
 * or a negative code. Leaves the caller's heap as it found it. */
static int raw_call(amb_proc *self, amb_pid server, amb_term req, amb_term *reply)
{
    amb_heap *heap = amb_proc_heap(self);
    amb_term ref = amb_make_ref(self);
    amb_recv_mark mark = amb_receive_mark(self);
    amb_term msg =
        AMB_TUPLE(heap, AMB_ATOM_GEN_CALL, AMB_TUPLE(heap, amb_self(self), ref), req);
    if (ref == AMB_NONE || msg == AMB_NONE)
        return AMB_ENOMEM;
    int rc = amb_send(self, server, msg);
    amb_term m = AMB_NONE;
    if (rc == 0)
        rc = amb_receive_if_after(self, mark, is_reply_to, &ref, CALL_TIMEOUT_MS, &m);
    amb_heap_reset(heap);
    if (rc == 0)
        *reply = amb_tuple_elem(m, 1);
    return rc;
}

/* The raw server's reaction to one message: replies to a call; `stop`
 * ends it. */
static int raw_serve(amb_proc *self, void *state, amb_term msg)
{
    struct server_state *st = state;
    if (msg == A.stop)
        amb_exit_self(self, AMB_ATOM_NORMAL);
    if (!amb_is_record(msg, AMB_ATOM_GEN_CALL, 3))
        return 0;
    amb_term from = amb_tuple_elem(msg, 1), req = amb_tuple_elem(msg, 2);
    amb_heap *heap = amb_proc_heap(self);
    amb_term value = req == A.count ? amb_int(heap, st->served) : req;
    if (req != A.count)
        st->served++;
    amb_term reply = AMB_TUPLE(heap, amb_tuple_elem(from, 1), value);
    int rc =
        reply == AMB_NONE ? AMB_ENOMEM : amb_send(self, amb_tuple_elem(from, 0), reply);
    amb_heap_reset(heap);
    return rc;
}

static const amb_handler raw_server = {
    .state_size = sizeof(struct server_state),
    .handle = raw_serve,
};

/* The gen_server: echoes a request, answers `count` with the calls served. */
static amb_gen_ret echo_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    struct server_state *st = state;
    (void)from;
    if (req == A.count)
        return amb_gen_reply(amb_int(amb_proc_heap(self), st->served));
    st->served++;
    return amb_gen_reply(req);
}

static const amb_gen_server echo_server = {
    .name = "echo",
    .state_size = sizeof(struct server_state),
    .handle_call = echo_call,
};

static int do_call(const struct call_bench *cb, amb_proc *self, amb_term req,
                   amb_term *reply)
{
    return cb->raw ? raw_call(self, cb->server, req, reply)
                   : amb_gen_server_call(self, cb->server, req, CALL_TIMEOUT_MS, reply);
}

static void client_body(amb_proc *self, void *arg)
{
    const struct call_bench *cb = arg;
    for (long long i = cb->per; i > 0; i--) {
        amb_term reply;
        int rc = do_call(cb, self, AMB_SMALL(i), &reply);
        if (rc != 0 || reply != AMB_SMALL(i)) {
            fail(cb->run, self, "call: %s", rc ? amb_strerror(rc) : "wrong reply");
            return;
        }
    }
    amb_send(self, cb->root, A.done);
}

static void bench_call(struct run *r, amb_proc *self)
{
    long long total = r->args[0], clients = r->args[1];
    bool raw = r->nargs > 2 && r->args[2] != 0;
    struct call_bench cb = {
        .run = r, .root = amb_self(self), .per = total / clients, .raw = raw};
    int rc = raw ? amb_spawn_handler(self, &raw_server, NULL, &cb.server)
                 : amb_gen_server_start(self, &echo_server, NULL, NULL, &cb.server, NULL);
    if (rc != 0) {
        fail(r, self, "spawn server: %s", amb_strerror(rc));
        return;
    }
    uint64_t t0 = now_ns();
    for (long long c = 0; c < clients; c++) {
        rc = amb_spawn(self, client_body, &cb, NULL);
        if (rc != 0) {
            fail(r, self, "spawn client: %s", amb_strerror(rc));
            return;
        }
    }
    if (receive_n(r, self, (size_t)clients, A.done) != 0)
        return;
    uint64_t t1 = now_ns();
    long long calls = cb.per * clients;
    amb_term served = AMB_NONE;
    rc = do_call(&cb, self, A.count, &served);
    int64_t n = -1;
    if (rc == 0)
        rc = amb_int_get(served, &n);
    if (raw)
        amb_send(self, cb.server, A.stop);
    else
        amb_gen_server_stop(self, cb.server, AMB_ATOM_NORMAL, AMB_INFINITY);
    if (rc != 0 || n != calls) {
        fail(r, self, "server served %lld calls, want %lld (%s)", (long long)n, calls,
             amb_strerror(rc));
        return;
    }
    double dt = (double)(t1 - t0);
    kv_str(r, "kind", raw ? "raw_call" : "gen_server_call");
    kv_int(r, "clients", clients);
    kv_int(r, "calls", calls);
    kv_int(r, "timeout_ms", CALL_TIMEOUT_MS);
    kv_num(r, "total_ms", ms(t1 - t0));
    kv_num(r, "ns_per_call", dt / (double)calls);
    kv_num(r, "calls_per_sec", (double)calls / (dt / 1e9));
}

/* ---------------------------------------------------------------------------
 * 6. m2o S PER
 *
 * S senders each send PER small integers (PER down to 1) to one receiver,
 * which counts and sums them; timed from spawning the receiver to its last
 * receive.
 * ------------------------------------------------------------------------ */

struct m2o {
    struct run *run;
    amb_pid root, receiver;
    long long per, total;
    int64_t sum;
};

static void m2o_receiver(amb_proc *self, void *arg)
{
    struct m2o *mo = arg;
    int64_t sum = 0;
    for (long long i = 0; i < mo->total; i++) {
        amb_term m;
        int rc = amb_receive(self, AMB_INFINITY, &m);
        if (rc != 0) {
            fail(mo->run, self, "m2o receive: %s", amb_strerror(rc));
            return;
        }
        sum += amb_small_value(m);
    }
    mo->sum = sum;
    amb_send(self, mo->root, A.done);
}

static void m2o_sender(amb_proc *self, void *arg)
{
    const struct m2o *mo = arg;
    for (long long k = mo->per; k > 0; k--) {
        int rc = amb_send(self, mo->receiver, AMB_SMALL(k));
        if (rc != 0) {
            fail(mo->run, self, "m2o send: %s", amb_strerror(rc));
            return;
        }
    }
}

static void bench_m2o(struct run *r, amb_proc *self)
{
    long long senders = r->args[0], per = r->args[1];
    struct m2o mo = {
        .run = r, .root = amb_self(self), .per = per, .total = senders * per};
    uint64_t t0 = now_ns();
    int rc = amb_spawn(self, m2o_receiver, &mo, &mo.receiver);
    for (long long s = 0; rc == 0 && s < senders; s++)
        rc = amb_spawn(self, m2o_sender, &mo, NULL);
    if (rc != 0) {
        fail(r, self, "m2o spawn: %s", amb_strerror(rc));
        return;
    }
    if (receive_n(r, self, 1, A.done) != 0)
        return;
    uint64_t t1 = now_ns();
    int64_t want = (int64_t)senders * (per * (per + 1) / 2);
    if (mo.sum != want) {
        fail(r, self, "m2o: sum %lld, want %lld", (long long)mo.sum, (long long)want);
        return;
    }
    double dt = (double)(t1 - t0);
    kv_int(r, "senders", senders);
    kv_int(r, "messages", mo.total);
    kv_num(r, "total_ms", ms(t1 - t0));
    kv_num(r, "msgs_per_sec", (double)mo.total / (dt / 1e9));
    kv_num(r, "ns_per_msg", dt / (double)mo.total);
}

/* ---------------------------------------------------------------------------
 * 7. timers N MAXDELAY
 *
 * The root arms N one-shot send_after timers to itself with delays
 * 1 + k mod MAXDELAY ms (k = N..1), then receives the N ticks.
 * ------------------------------------------------------------------------ */

static void bench_timers(struct run *r, amb_proc *self)
{
    long long n = r->args[0], max_delay = r->args[1];
    amb_pid me = amb_self(self);
    uint64_t t0 = now_ns();
    for (long long k = n; k > 0; k--) {
        int rc = amb_send_after(self, me, A.tick, (uint64_t)(1 + k % max_delay), NULL);
        if (rc != 0) {
            fail(r, self, "send_after: %s", amb_strerror(rc));
            return;
        }
    }
    uint64_t t1 = now_ns();
    if (receive_n(r, self, (size_t)n, A.tick) != 0)
        return;
    uint64_t t2 = now_ns();
    bool within = ms(t2 - t0) <= 1.5 * (double)max_delay;
    if (!within)
        fprintf(stderr,
                "amb-bench timers: the last tick came %.1f ms after the start, "
                "later than 1.5 x %lld ms\n",
                ms(t2 - t0), max_delay);
    kv_int(r, "n", n);
    kv_int(r, "max_delay_ms", max_delay);
    kv_num(r, "arm_ms", ms(t1 - t0));
    kv_num(r, "ns_per_arm", (double)(t1 - t0) / (double)n);
    kv_num(r, "total_ms", ms(t2 - t0));
    kv_num(r, "fire_ms", ms(t2 - t1));
    kv_num(r, "over_max_delay_ms", ms(t2 - t0) - (double)max_delay);
    kv_int(r, "within_1_5x", within);
}

/* ---------------------------------------------------------------------------
 * 8. sup_wide N [DYNAMIC] (ours only)
 *
 * One supervisor (DYNAMIC=1: a dynamic supervisor) with N gen_server
 * children, each phase timed on its own:
 *   start_ms      N amb_sup_start_child calls, one child each, ids {child, I}
 *                 (boxed, so an id lookup hashes and compares a tuple);
 *   restart_ms    the middle child is killed; until the supervisor has
 *                 started it again (its init tells the root);
 *   terminate_ms  that child is terminated and its spec deleted, by id
 *                 (dynamic: terminate_child by pid);
 *   count_ms      count_children (checked: N - 1 specs, all active);
 *   shutdown_ms   amb_gen_server_stop of the supervisor: every child stopped.
 * Each per-child operation should cost the same whatever N: the phases of
 * one operation stay flat as N grows, the others grow linearly.
 * ------------------------------------------------------------------------ */

struct sup_wide {
    amb_pid root;
    _Atomic bool notify; /* set while the root waits for a restart */
};

/* A child's init: tells the root its pid while the root waits for it. */
static amb_gen_ret wide_init(amb_proc *self, void *state, void *arg)
{
    struct sup_wide *w = arg;
    (void)state;
    /* Relaxed: the flag only says whether to send; the root sets it before
     * the kill whose restart runs this init, and the kill orders it. */
    if (atomic_load_explicit(&w->notify, memory_order_relaxed))
        amb_send(self, w->root, amb_self(self));
    return amb_gen_ok();
}

static const amb_gen_server wide_worker = {.name = "wide_worker", .init = wide_init};

static void bench_sup_wide(struct run *r, amb_proc *self)
{
    long long n = r->args[0];
    bool dyn = r->nargs > 1 && r->args[1] != 0;
    struct sup_wide w = {.root = amb_self(self)};
    amb_gen_child gc = {.cb = &wide_worker, .arg = &w};
    amb_heap *h = amb_proc_heap(self);
    amb_trap_exit(self, true); /* the supervisor is linked to the root */
    amb_pid sup, mid = AMB_NONE;
    amb_sup_spec none = {0};
    int rc = dyn ? amb_dynsup_start_link(self, NULL, NULL, &sup, NULL)
                 : amb_sup_start_link(self, &none, NULL, &sup, NULL);
    if (rc != 0) {
        fail(r, self, "supervisor start: %s", amb_strerror(rc));
        return;
    }
    uint64_t t0 = now_ns();
    for (long long i = 0; i < n; i++) {
        amb_heap_mark m = amb_heap_save(h);
        amb_child_spec cs = {.id = AMB_TUPLE(h, A.child, AMB_SMALL(i)),
                             .start = amb_gen_child_start,
                             .arg = &gc};
        amb_pid pid = AMB_NONE;
        rc = dyn ? amb_dynsup_start_child(self, sup, &cs, &pid, NULL)
                 : amb_sup_start_child(self, sup, &cs, &pid, NULL);
        amb_heap_rewind(h, m);
        if (rc != 0) {
            fail(r, self, "start_child %lld: %s", i, amb_strerror(rc));
            return;
        }
        if (i == n / 2)
            mid = pid;
    }
    uint64_t t1 = now_ns();
    /* Relaxed: the kill below is what the child's restart follows. */
    atomic_store_explicit(&w.notify, true, memory_order_relaxed);
    amb_exit(self, mid, AMB_ATOM_KILL);
    amb_term again;
    rc = amb_receive(self, CALL_TIMEOUT_MS, &again);
    atomic_store_explicit(&w.notify, false, memory_order_relaxed);
    if (rc != 0 || amb_type_of(again) != AMB_T_PID) {
        fail(r, self, "restart: %s", rc ? amb_strerror(rc) : "not a pid");
        return;
    }
    uint64_t t2 = now_ns();
    amb_heap_mark m = amb_heap_save(h);
    if (dyn) {
        rc = amb_dynsup_terminate_child(self, sup, again);
    } else {
        amb_term id = AMB_TUPLE(h, A.child, AMB_SMALL(n / 2));
        rc = amb_sup_terminate_child(self, sup, id);
        if (rc == 0)
            rc = amb_sup_delete_child(self, sup, id);
    }
    amb_heap_rewind(h, m);
    uint64_t t3 = now_ns();
    amb_sup_counts c = {0};
    if (rc == 0)
        rc = amb_sup_count_children(self, sup, &c);
    uint64_t t4 = now_ns();
    if (rc != 0 || c.specs != (size_t)n - 1 || c.active != (size_t)n - 1) {
        fail(r, self, "terminate/count: %s, %zu specs, %zu active", amb_strerror(rc),
             c.specs, c.active);
        return;
    }
    rc = amb_gen_server_stop(self, sup, AMB_ATOM_SHUTDOWN, AMB_INFINITY);
    uint64_t t5 = now_ns();
    if (rc != 0) {
        fail(r, self, "stop: %s", amb_strerror(rc));
        return;
    }
    kv_str(r, "kind", dyn ? "dynamic" : "static");
    kv_int(r, "children", n);
    kv_num(r, "start_ms", ms(t1 - t0));
    kv_num(r, "us_per_start", (double)(t1 - t0) / 1e3 / (double)n);
    kv_num(r, "restart_ms", ms(t2 - t1));
    kv_num(r, "terminate_ms", ms(t3 - t2));
    kv_num(r, "count_ms", ms(t4 - t3));
    kv_num(r, "shutdown_ms", ms(t5 - t4));
    kv_num(r, "us_per_stop", (double)(t5 - t4) / 1e3 / (double)(n - 1));
}

/* call_queued: the root fills its own mailbox with QUEUED atoms (taken into
 * its private queue before the clock starts), then makes N calls to an echo
 * gen_server. The queue must be intact afterwards. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void bench_call_queued(struct run *r, amb_proc *self)
{
    long long calls = r->args[0], queued = r->args[1];
    struct call_bench cb = {.run = r, .root = amb_self(self), .per = calls};
    int rc = amb_gen_server_start(self, &echo_server, NULL, NULL, &cb.server, NULL);
    if (rc != 0) {
        fail(r, self, "start server: %s", amb_strerror(rc));
        return;
    }
    for (long long i = 0; i < queued && rc == 0; i++)
        rc = amb_send(self, cb.root, A.tick);
    if (rc != 0 || amb_message_queue_len(self) != (size_t)queued) {
        fail(r, self, "queue %lld messages: %s", queued, amb_strerror(rc));
        return;
    }
    uint64_t t0 = now_ns(), c0 = thread_cpu_ns();
    for (long long i = 0; i < calls; i++) {
        amb_term reply;
        rc = do_call(&cb, self, AMB_SMALL(i), &reply);
        if (rc != 0 || reply != AMB_SMALL(i)) {
            fail(r, self, "call: %s", rc ? amb_strerror(rc) : "wrong reply");
            return;
        }
    }
    /* The process may have moved to another thread meanwhile: the CPU time
     * is that of the threads it ran on, which are the schedulers; with one
     * scheduler (AMB_SCHEDULERS=1) it is exactly the caller's and server's. */
    uint64_t t1 = now_ns(), c1 = thread_cpu_ns();
    size_t left = amb_message_queue_len(self);
    amb_gen_server_stop(self, cb.server, AMB_ATOM_NORMAL, AMB_INFINITY);
    if (left != (size_t)queued) {
        fail(r, self, "%zu messages left in the queue, want %lld", left, queued);
        return;
    }
    kv_str(r, "kind", "gen_server_call");
    kv_int(r, "queued", queued);
    kv_int(r, "calls", calls);
    kv_num(r, "total_ms", ms(t1 - t0));
    kv_num(r, "ns_per_call", (double)(t1 - t0) / (double)calls);
    kv_num(r, "cpu_ns_per_call", (double)(c1 - c0) / (double)calls);
}

/* ---------------------------------------------------------------------------
 * 9. maps N (ours; the Erlang twin is bench/maps_bench.erl)
 *
 * The root puts N distinct integer keys 1..N into one map starting empty,
 * then gets them (each value checked), then removes them: ns per operation
 * of each phase, as Erlang's maps:put/maps:get/maps:remove loop.
 *
 * Two ways to make the puts and removes, each timed:
 *   - put_ns, remove_ns: inside one amb_map_edit per phase, which changes
 *     the nodes it made in place (the way a C program builds or empties a
 *     map whose earlier versions it does not keep; BEAM's maps:from_list
 *     builds that way, its maps:put loop cannot);
 *   - persistent_put_ns, persistent_remove_ns: amb_map_put/amb_map_remove,
 *     each result a map of its own that shares all but one path with the
 *     map before it (what Erlang's loop does).
 * The gets (get_ns) read the map the edit made. from_arrays_ns: amb_map
 * of the same pairs at once (arrays made beforehand), beside Erlang's
 * maps:from_list.
 *
 * The map is a process's state, collected as the runtime collects term
 * state (issue 14): when the heap holds COMPACT times the live size after
 * the last collection, amb_heap_collect collects it to the map (copying
 * into the blocks the heap emptied the time before),
 * so memory stays within a constant factor of the live map and the
 * collections cost O(1) amortised per operation (checked after every
 * persistent operation, and when an edit ends). The collections are in the
 * times, as Erlang's garbage collections are in its; copies and copy_ms
 * say how many there were and what they cost, peak_heap_mb how large the
 * heap got.
 * ------------------------------------------------------------------------ */

#define MAPS_COMPACT 8

struct maps_heap {
    amb_heap *heap;
    size_t live; /* bytes of the map at the last copy */
    uint64_t copy_ns;
    long copies;
    size_t peak;
    unsigned long ops;
};

/* Collects the heap to *m (amb_heap_collect, what a loop that owns its
 * heap calls) when it has grown COMPACT times past the live
 * size; 0 or an error code. */
static int maps_compact(struct maps_heap *mh, amb_term *m)
{
    size_t size = amb_heap_size(mh->heap);
    if (size > mh->peak)
        mh->peak = size;
    if (size <= MAPS_COMPACT * mh->live)
        return 0;
    uint64_t t0 = now_ns();
    int rc = amb_heap_collect(mh->heap, m, 1);
    if (rc != 0)
        return rc;
    size = amb_heap_size(mh->heap);
    mh->live = size > 65536 ? size : 65536;
    mh->copies++;
    mh->copy_ns += now_ns() - t0;
    return 0;
}

/* A process that runs for seconds without yielding is what the watchdog
 * reports: the loops yield every 4096 operations. */
static void maps_tick(amb_proc *self, struct maps_heap *mh)
{
    if ((++mh->ops & 4095) == 0)
        amb_yield(self);
}

/* Keys 1..n put (edit: inside one amb_map_edit) into *m; 0 or an error. */
static int maps_put_all(amb_proc *self, struct maps_heap *mh, amb_term *m, long long n,
                        bool edit)
{
    int rc = 0;
    amb_map_edit e;
    if (edit && (rc = amb_map_edit_init(&e, mh->heap, *m)) != 0)
        return rc;
    for (long long i = 1; i <= n && rc == 0; i++) {
        if (edit) {
            rc = amb_map_edit_put(&e, AMB_SMALL(i), AMB_SMALL(i));
        } else {
            *m = amb_map_put(mh->heap, *m, AMB_SMALL(i), AMB_SMALL(i));
            rc = *m == AMB_NONE ? AMB_ENOMEM : maps_compact(mh, m);
        }
        maps_tick(self, mh);
    }
    if (edit && rc == 0 && (rc = amb_map_edit_end(&e, m)) == 0)
        rc = maps_compact(mh, m);
    return rc;
}

/* Keys 1..n removed from *m, likewise. */
static int maps_remove_all(amb_proc *self, struct maps_heap *mh, amb_term *m, long long n,
                           bool edit)
{
    int rc = 0;
    amb_map_edit e;
    if (edit && (rc = amb_map_edit_init(&e, mh->heap, *m)) != 0)
        return rc;
    for (long long i = 1; i <= n && rc == 0; i++) {
        if (edit) {
            rc = amb_map_edit_remove(&e, AMB_SMALL(i), NULL);
        } else {
            *m = amb_map_remove(mh->heap, *m, AMB_SMALL(i));
            rc = *m == AMB_NONE ? AMB_ENOMEM : maps_compact(mh, m);
        }
        maps_tick(self, mh);
    }
    if (edit && rc == 0 && (rc = amb_map_edit_end(&e, m)) == 0)
        rc = maps_compact(mh, m);
    return rc;
}

static void bench_maps(struct run *r, amb_proc *self)
{
    long long n = r->args[0];
    struct maps_heap mh = {.live = 65536};
    int rc = amb_heap_new(&mh.heap);
    if (rc != 0) {
        fail(r, self, "heap: %s", amb_strerror(rc));
        return;
    }
    amb_term m = amb_map(mh.heap, 0, NULL, NULL);
    uint64_t t[7];
    t[0] = now_ns();
    rc = maps_put_all(self, &mh, &m, n, true);
    t[1] = now_ns();
    long long bad = 0;
    for (long long i = 1; i <= n && rc == 0; i++) {
        amb_term v;
        bad += amb_map_get(m, AMB_SMALL(i), &v) != 0 || v != AMB_SMALL(i);
        maps_tick(self, &mh);
    }
    t[2] = now_ns();
    size_t size_full = rc == 0 ? amb_map_size(m) : 0;
    if (rc == 0)
        rc = maps_remove_all(self, &mh, &m, n, true);
    t[3] = now_ns();
    size_t size_end = rc == 0 ? amb_map_size(m) : 1;
    long copies_edit = mh.copies;
    /* The persistent phases start as the edit's did: an empty map on a
     * fresh heap (the compaction rule's live size is the map's). */
    amb_heap_free(mh.heap);
    mh.heap = NULL;
    mh.live = 65536;
    if (rc == 0 && (rc = amb_heap_new(&mh.heap)) == 0 &&
        (m = amb_map(mh.heap, 0, NULL, NULL)) == AMB_NONE)
        rc = AMB_ENOMEM;
    t[4] = now_ns();
    if (rc == 0)
        rc = maps_put_all(self, &mh, &m, n, false);
    t[5] = now_ns();
    size_t size_full2 = rc == 0 ? amb_map_size(m) : 0;
    long copies_put = mh.copies - copies_edit;
    if (rc == 0)
        rc = maps_remove_all(self, &mh, &m, n, false);
    t[6] = now_ns();
    size_t size_end2 = rc == 0 ? amb_map_size(m) : 1;
    amb_heap_free(mh.heap);
    if (rc != 0) {
        fail(r, self, "map operation: %s", amb_strerror(rc));
        return;
    }
    if (bad != 0 || size_full != (size_t)n || size_end != 0 || size_full2 != (size_t)n ||
        size_end2 != 0) {
        fail(r, self,
             "maps: %lld wrong values, %zu/%zu keys after the puts, %zu/%zu at the end",
             bad, size_full, size_full2, size_end, size_end2);
        return;
    }
    /* The same pairs at once (amb_map: sorted, every node made once),
     * the arrays made beforehand: beside Erlang's maps:from_list. */
    uint64_t tb = 0;
    amb_term *kv = malloc(2 * (size_t)n * sizeof *kv);
    amb_heap *bh = NULL;
    if (kv != NULL && amb_heap_new(&bh) == 0) {
        for (long long i = 0; i < n; i++)
            kv[i] = kv[n + i] = AMB_SMALL(i + 1);
        uint64_t t7 = now_ns();
        amb_term built = amb_map(bh, (size_t)n, kv, kv + n);
        tb = now_ns() - t7;
        if (built == AMB_NONE || amb_map_size(built) != (size_t)n)
            tb = 0;
    }
    amb_heap_free(bh);
    free(kv);
    if (tb == 0) {
        fail(r, self, "maps: amb_map of %lld pairs failed", n);
        return;
    }
    kv_int(r, "n", n);
    kv_num(r, "put_ns", (double)(t[1] - t[0]) / (double)n);
    kv_num(r, "get_ns", (double)(t[2] - t[1]) / (double)n);
    kv_num(r, "remove_ns", (double)(t[3] - t[2]) / (double)n);
    kv_num(r, "persistent_put_ns", (double)(t[5] - t[4]) / (double)n);
    kv_num(r, "persistent_remove_ns", (double)(t[6] - t[5]) / (double)n);
    kv_num(r, "from_arrays_ns", (double)tb / (double)n);
    kv_int(r, "copies_edit", copies_edit);
    kv_int(r, "copies_persistent_put", copies_put);
    kv_int(r, "copies", mh.copies);
    kv_num(r, "copy_ms", ms(mh.copy_ns));
    kv_num(r, "peak_heap_mb", (double)mh.peak / (1 << 20));
}

/* ---------------------------------------------------------------------------
 * 10. call_state KEYS PUTS (ours)
 *
 * One gen_server whose state is a term (`.state_term`): a map of KEYS
 * integer keys (built in init), and one client calling {put, K, V} PUTS
 * times with K random in 0..KEYS-1: ns per call, beside `call`'s, and the
 * memory the runtime's collections keep: the peak RSS of the put phase
 * (VmHWM, reset when the puts start) above the RSS before the server
 * started (the runtime warmed by calls to another server first), over the
 * live data (the state's bytes). At the end the server answers `check` with {Size, Sum of
 * values, LiveBytes, HeapBytes}, which must match the client's own
 * bookkeeping.
 * ------------------------------------------------------------------------ */

static amb_gen_ret state_init(amb_proc *self, void *state, void *arg)
{
    /* An edit builds the map in place: no arrays beside it, little garbage
     * (what is left, the first collection drops). */
    long long keys = *(const long long *)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_map_edit e;
    amb_term m = AMB_NONE;
    int rc = amb_map_edit_init(&e, h, amb_map(h, 0, NULL, NULL));
    for (long long i = 0; i < keys && rc == 0; i++)
        rc = amb_map_edit_put(&e, AMB_SMALL(i), AMB_SMALL(0));
    if (rc == 0 && amb_map_edit_end(&e, &m) != 0)
        m = AMB_NONE;
    *(amb_term *)state = m; /* AMB_NONE: the start fails with AMB_ENOMEM */
    return amb_gen_ok();
}

static amb_gen_ret state_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    amb_term *m = state;
    amb_heap *h = amb_proc_heap(self);
    if (amb_tuple_arity(req) == 3) { /* {put, K, V} */
        *m = amb_map_put(h, *m, amb_tuple_elem(req, 1), amb_tuple_elem(req, 2));
        return amb_gen_reply(AMB_ATOM_OK);
    }
    /* check */
    int64_t sum = 0;
    amb_map_iter it;
    amb_term k, v;
    amb_map_iterator(*m, &it);
    while (amb_map_next(&it, &k, &v))
        sum += amb_small_value(v);
    amb_proc_info info;
    size_t heap = amb_process_info(self, amb_self(self), &info) == 0 ? info.heap_size : 0;
    return amb_gen_reply(amb_pack(h, "{~u,~l,~u,~u}", (uint64_t)amb_map_size(*m), sum,
                                  (uint64_t)amb_term_size(*m), (uint64_t)heap));
}

static const amb_gen_server state_server = {
    .name = "call_state",
    .state_term = true,
    .init = state_init,
    .handle_call = state_call,
};

static void bench_call_state(struct run *r, amb_proc *self)
{
    long long keys = r->args[0], puts = r->args[1];
    int64_t *last = calloc((size_t)keys, sizeof *last);
    if (last == NULL) {
        fail(r, self, "out of memory");
        return;
    }
    /* The client's own bookkeeping is resident before the sample (calloc's
     * fresh pages are not, until written): it is not the server's memory.
     * Nor is the runtime's own for calls (every scheduler's stacks, cell
     * pools, timer cells): 10,000 calls to an echo server warm it first. */
    memset(last, 0, (size_t)keys * sizeof *last);
    amb_pid echo;
    if (amb_gen_server_start(self, &echo_server, NULL, NULL, &echo, NULL) == 0) {
        for (int i = 0; i < 10000; i++) {
            amb_term reply;
            if (amb_gen_server_call(self, echo, AMB_SMALL(i), CALL_TIMEOUT_MS, &reply) !=
                0)
                break;
        }
        amb_gen_server_stop(self, echo, AMB_ATOM_NORMAL, AMB_INFINITY);
    }
    long rss0 = rss_kb();
    amb_pid server;
    int rc = amb_gen_server_start(self, &state_server, &keys, NULL, &server, NULL);
    if (rc != 0) {
        free(last);
        fail(r, self, "start: %s", amb_strerror(rc));
        return;
    }
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64 */
    bool hwm = reset_peak_rss();
    uint64_t t0 = now_ns();
    for (long long i = 1; i <= puts && rc == 0; i++) {
        amb_heap_rewind(h, top); /* each request is scratch: the loop stays bounded */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long long key = (long long)(x % (uint64_t)keys);
        amb_term req = AMB_TUPLE(h, A.put, AMB_SMALL(key), AMB_SMALL(i));
        amb_term reply = AMB_NONE;
        rc = amb_gen_server_call(self, server, req, CALL_TIMEOUT_MS, &reply);
        if (rc == 0 && reply != AMB_ATOM_OK)
            rc = AMB_EBADARG;
        last[key] = i;
    }
    uint64_t t1 = now_ns();
    amb_heap_rewind(h, top);
    int64_t want = 0;
    for (long long k = 0; k < keys; k++)
        want += last[k];
    free(last);
    amb_term check = AMB_NONE;
    uint64_t size = 0, live = 0, heap = 0;
    int64_t sum = -1;
    if (rc == 0)
        rc = amb_gen_server_call(self, server, A.check, CALL_TIMEOUT_MS, &check);
    if (rc == 0)
        rc = amb_match(check, "{~u,~l,~u,~u}", &size, &sum, &live, &heap);
    amb_gen_server_stop(self, server, AMB_ATOM_NORMAL, AMB_INFINITY);
    if (rc != 0 || size != (uint64_t)keys || sum != want) {
        fail(r, self, "call_state: %s, %llu keys (want %lld), sum %lld (want %lld)",
             amb_strerror(rc), (unsigned long long)size, keys, (long long)sum,
             (long long)want);
        return;
    }
    long peak_kb = hwm ? status_kb("VmHWM") : -1;
    if (peak_kb < 0) { /* no reset: the whole run's peak */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        peak_kb = ru.ru_maxrss;
    }
    double peak_mb = (double)(peak_kb - rss0) / 1024;
    double live_mb = (double)live / (1 << 20);
    kv_str(r, "kind", "gen_server_call_term_state");
    kv_int(r, "keys", keys);
    kv_int(r, "calls", puts);
    kv_num(r, "total_ms", ms(t1 - t0));
    kv_num(r, "ns_per_call", (double)(t1 - t0) / (double)puts);
    kv_num(r, "live_mb", live_mb);
    kv_num(r, "heap_mb_end", (double)heap / (1 << 20));
    kv_num(r, "peak_rss_over_start_mb", peak_mb);
    kv_num(r, "peak_rss_per_live", peak_mb / live_mb);
}

/* ---------------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------------ */

struct bench {
    const char *name;
    const char *usage;
    long long defaults[3];
    int max_args;
    void (*fn)(struct run *r, amb_proc *self);
};

static const struct bench benches[] = {
    {"spawn", "spawn N [ROUNDS]", {1000000, 1}, 2, bench_spawn},
    {"spawn_handler", "spawn_handler N [ROUNDS]", {1000000, 1}, 2, bench_spawn_handler},
    {"ring", "ring N M [HANDLERS]", {10000, 100, 0}, 3, bench_ring},
    {"pingpong", "pingpong N", {1000000}, 1, bench_pingpong},
    {"skynet", "skynet SIZE DIV", {1000000, 10}, 2, bench_skynet},
    {"call", "call TOTAL K [RAW]", {1000000, 1, 0}, 3, bench_call},
    {"call_queued", "call_queued N QUEUED", {100000, 100000}, 2, bench_call_queued},
    {"m2o", "m2o S PER", {4, 1000000}, 2, bench_m2o},
    {"timers", "timers N MAXDELAY", {1000000, 100}, 2, bench_timers},
    {"sup_wide", "sup_wide N [DYNAMIC]", {100000, 0}, 2, bench_sup_wide},
    {"maps", "maps N", {1000000}, 1, bench_maps},
    {"call_state", "call_state KEYS PUTS", {100000, 10000000}, 2, bench_call_state},
};

static void usage(void)
{
    fprintf(stderr, "usage: amb-bench BENCH ARGS...   (AMB_SCHEDULERS=n sets the "
                    "scheduler count)\n");
    for (size_t i = 0; i < AMB_COUNTOF(benches); i++)
        fprintf(stderr, "  amb-bench %s\n", benches[i].usage);
}

static bool parse_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* Checks the arguments' ranges: every count must fit a small integer term
 * and the tables the benchmark allocates. NULL when fine, else why not. */
static const char *check_args(const struct bench *b, const long long *a)
{
    const long long big = 1LL << 40;
    for (int i = 0; i < b->max_args; i++)
        if (a[i] < 0 || a[i] > big)
            return "arguments must be in 0..2^40";
    if (b->fn == bench_spawn || b->fn == bench_spawn_handler)
        return a[0] >= 1 && a[1] >= 1 ? NULL : "N and ROUNDS must be >= 1";
    if (b->fn == bench_ring)
        return a[0] >= 1 && a[1] >= 1 && a[0] * a[1] <= big ? NULL
                                                            : "N, M >= 1 and N*M <= 2^40";
    if (b->fn == bench_pingpong)
        return a[0] >= 1 ? NULL : "N must be >= 1";
    if (b->fn == bench_skynet) {
        if (a[1] < 2 || a[1] > SKY_MAX_DIV)
            return "DIV must be in 2..16";
        long long s = a[0];
        while (s > 1 && s % a[1] == 0)
            s /= a[1];
        return a[0] >= 1 && s == 1 && a[0] <= (1LL << 30) ? NULL
                                                          : "SIZE must be a power of DIV";
    }
    if (b->fn == bench_call)
        return a[1] >= 1 && a[0] >= a[1] ? NULL : "need TOTAL >= K >= 1";
    if (b->fn == bench_call_queued)
        return a[0] >= 1 && a[1] <= (1LL << 26) ? NULL : "N >= 1, QUEUED <= 2^26";
    if (b->fn == bench_m2o)
        return a[0] >= 1 && a[1] >= 1 && a[0] * a[1] <= big ? NULL : "S, PER >= 1";
    if (b->fn == bench_timers)
        return a[0] >= 1 && a[1] >= 1 ? NULL : "N, MAXDELAY >= 1";
    if (b->fn == bench_sup_wide)
        return a[0] >= 2 && a[0] <= (1LL << 26) ? NULL : "N must be in 2..2^26";
    if (b->fn == bench_maps)
        return a[0] >= 1 && a[0] <= AMB_SMALL_MAX ? NULL : "N must be >= 1";
    if (b->fn == bench_call_state)
        return a[0] >= 1 && a[0] <= (1LL << 30) && a[1] >= 1
                   ? NULL
                   : "KEYS in 1..2^30, PUTS >= 1";
    return NULL;
}

/* The scheduler count: AMB_SCHEDULERS, else one per online CPU. */
static unsigned scheduler_count(void)
{
    const char *s = getenv("AMB_SCHEDULERS");
    long long v;
    if (s != NULL && *s != '\0' && parse_ll(s, &v) && v >= 1 && v <= 1024)
        return (unsigned)v;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus >= 1 ? (unsigned)cpus : 1u;
}

static const struct bench *chosen;

static void root_body(amb_proc *self, void *arg)
{
    chosen->fn(arg, self);
}

static int make_atoms(void)
{
    struct {
        amb_term *slot;
        const char *name;
    } atoms[] = {
        {&A.done, "done"},   {&A.go, "go"},       {&A.tick, "tick"}, {&A.stop, "stop"},
        {&A.count, "count"}, {&A.ping, "ping"},   {&A.pong, "pong"}, {&A.child, "child"},
        {&A.put, "put"},     {&A.check, "check"},
    };
    for (size_t i = 0; i < AMB_COUNTOF(atoms); i++) {
        *atoms[i].slot = amb_atom(atoms[i].name);
        if (*atoms[i].slot == AMB_NONE)
            return AMB_ENOMEM;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    for (size_t i = 0; i < AMB_COUNTOF(benches); i++)
        if (strcmp(argv[1], benches[i].name) == 0)
            chosen = &benches[i];
    if (chosen == NULL || argc - 2 > chosen->max_args) {
        usage();
        return 2;
    }
    static struct run run; /* static: large, and shared with the processes */
    run.bench = chosen->name;
    run.nargs = argc - 2;
    for (int i = 0; i < chosen->max_args; i++)
        run.args[i] = chosen->defaults[i];
    for (int i = 0; i < run.nargs; i++) {
        if (!parse_ll(argv[2 + i], &run.args[i])) {
            fprintf(stderr, "amb-bench: not an integer: %s\n", argv[2 + i]);
            return 2;
        }
    }
    const char *why = check_args(chosen, run.args);
    if (why != NULL) {
        fprintf(stderr, "amb-bench %s: %s\n", chosen->name, why);
        return 2;
    }
    run.schedulers = scheduler_count();

    int rc = make_atoms();
    amb_rt *rt = NULL;
    amb_config cfg = {.schedulers = run.schedulers};
    if (rc == 0)
        rc = amb_rt_new(&cfg, &rt);
    if (rc == 0)
        rc = amb_rt_spawn(rt, root_body, &run, NULL);
    if (rc == 0)
        rc = amb_rt_run(rt);
    if (rc != 0) {
        fprintf(stderr, "amb-bench %s: runtime: %s\n", chosen->name, amb_strerror(rc));
        amb_rt_free(rt);
        return 1;
    }
    /* The result first: shutting the runtime down is not part of any
     * benchmark, and a report should not be lost to a fault in it. */
    if (!failed(&run))
        print_report(&run);
    amb_rt_free(rt);
    return failed(&run) ? 1 : 0;
}

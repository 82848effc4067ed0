/*
 * amb_node.c - the C node of ../shared/peer-bench/dist (its README is the
 * contract), on the public API:
 *
 *   amb-node NODENAME COOKIE serve
 *   amb-node NODENAME COOKIE drive PEER MSGS CALLS
 *   amb-node NODENAME COOKIE hol   PEER MB ROUNDS
 *
 * serve: `sink` counts messages ({done, From} -> From ! {count, N}), `echo`
 * is a gen_server answering {echo, X} with X; prints READY. drive: MSGS
 * one-way {msg, I} to {sink, PEER}, then CALLS sequential
 * gen_server:call({echo, PEER}, {echo, I}) (with a monitor and an alias, as
 * Erlang's driver calls); prints the RESULT line. hol: a bulk sender of
 * ROUNDS messages of MB MiB while the main process calls echo back to
 * back. Long names, the EPMD at 127.0.0.1:$ERL_EPMD_PORT (never an
 * embedded one), listening on 127.0.0.1.
 *
 * TLS distribution (erl's -proto_dist inet_tls) when AMB_NODE_TLS_CERT is
 * set: node.h's tls_certfile, with AMB_NODE_TLS_KEY (tls_keyfile) and
 * AMB_NODE_TLS_CA (tls_cacertfile); docs/perf.md has the commands.
 */
#include <ambitious.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *node_name, *cookie, *mode, *peer;
static long arg1, arg2;
static int result = 1;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- serve ---------------------------------------------------------------- */

typedef struct sink_state {
    long n;
} sink_state;

static int sink_handle(amb_proc *self, void *state, amb_term msg)
{
    sink_state *s = state;
    amb_term from;
    if (amb_match(msg, "{done,~p}", &from) == 0) {
        amb_send(self, from,
                 AMB_TUPLE(amb_proc_heap(self), amb_atom("count"),
                           amb_int(amb_proc_heap(self), s->n)));
        s->n = 0;
    } else {
        s->n++;
    }
    return 0;
}
static const amb_handler sink = {.state_size = sizeof(sink_state), .handle = sink_handle};

static amb_gen_ret echo_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)self, (void)state, (void)from;
    amb_term x;
    return amb_gen_reply(amb_match(req, "{echo,~w}", &x) == 0 ? x : req);
}
static const amb_gen_server echo = {.name = "echo", .handle_call = echo_call};

static void serve(amb_proc *self)
{
    amb_pid s;
    amb_spawn_handler(self, &sink, NULL, &s);
    amb_register(self, amb_atom("sink"), s);
    amb_gen_opts o = {.name = amb_atom("echo")};
    amb_gen_server_start(self, &echo, NULL, &o, NULL, NULL);
    printf("READY\n");
    fflush(stdout);
    result = 0; /* runs until killed */
}

/* ---- drive and hol ---------------------------------------------------------- */

static amb_term sink_of(amb_proc *self)
{
    return AMB_TUPLE(amb_proc_heap(self), amb_atom("sink"), amb_atom(peer));
}

/* Sends n {msg, I} then {done, Self}; waits for the count. */
static int blast(amb_proc *self, long n)
{
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    amb_term to = sink_of(self), tag = amb_atom("msg");
    amb_heap_mark loop = amb_heap_save(h);
    for (long i = 1; i <= n; i++) {
        amb_heap_rewind(h, loop);
        if (amb_send(self, to, AMB_TUPLE(h, tag, amb_int(h, i))) != 0)
            return -1;
    }
    amb_send(self, to, AMB_TUPLE(h, amb_atom("done"), amb_self(self)));
    int64_t count = -1;
    amb_receive_match(self, 120000, NULL, "{count,~l}", &count);
    amb_heap_rewind(h, m);
    return count == n ? 0 : -1;
}

/* One call; its time in ns, or -1. */
static int64_t call(amb_proc *self, long i)
{
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    amb_term server = AMB_TUPLE(h, amb_atom("echo"), amb_atom(peer));
    amb_term req = AMB_TUPLE(h, amb_atom("echo"), amb_int(h, i)), reply;
    int64_t t0 = now_ns();
    int rc = amb_gen_server_call(self, server, req, 30000, &reply);
    int64_t t = now_ns() - t0;
    bool ok = rc == 0 && amb_small_value(reply) == i;
    amb_heap_rewind(h, m);
    return ok ? t : -1;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The ⌈p·n⌉-th smallest, in µs. */
static double pct(const int64_t *v, long n, double p)
{
    long k = (long)(p * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return (double)v[k - 1] / 1000.0;
}

static bool connect_peer(amb_proc *self)
{
    for (int i = 0; i < 100; i++) {
        if (amb_node_ping(self, amb_atom(peer)) == 0)
            return true;
        amb_sleep(self, 100);
    }
    return false;
}

static bool warm_up(amb_proc *self)
{
    if (blast(self, 10000) != 0)
        return false;
    for (long i = 1; i <= 1000; i++)
        if (call(self, i) < 0)
            return false;
    return true;
}

static void drive(amb_proc *self)
{
    long msgs = arg1, calls = arg2;
    if (!connect_peer(self) || !warm_up(self))
        return;
    int64_t t0 = now_ns();
    if (blast(self, msgs) != 0)
        return;
    double secs = (double)(now_ns() - t0) / 1e9;
    int64_t *lat = malloc((size_t)calls * sizeof *lat), total = 0;
    for (long i = 0; i < calls; i++) {
        lat[i] = call(self, i + 1);
        if (lat[i] < 0) {
            free(lat);
            return;
        }
        total += lat[i];
    }
    qsort(lat, (size_t)calls, sizeof *lat, cmp64);
    printf("RESULT bench=dist impl=c peer=%s msgs=%ld msgs_per_sec=%.0f calls=%ld "
           "us_per_call=%.1f call_p50_us=%.1f call_p99_us=%.1f call_p999_us=%.1f\n",
           peer, msgs, (double)msgs / secs, calls, (double)total / 1000.0 / (double)calls,
           pct(lat, calls, 0.50), pct(lat, calls, 0.99), pct(lat, calls, 0.999));
    fflush(stdout);
    free(lat);
    result = 0;
}

typedef struct bulk_arg {
    amb_pid parent;
    long mb, rounds;
} bulk_arg;

/* Sends the rounds, then reports {bulk_done, Ns} to the parent. */
static void bulk(amb_proc *self, void *arg)
{
    bulk_arg *b = arg;
    size_t size = (size_t)b->mb << 20;
    uint8_t *bytes = malloc(size);
    memset(bytes, 7, size);
    amb_heap *h = amb_proc_heap(self);
    amb_term bin = amb_binary(h, bytes, size);
    free(bytes);
    int64_t t0 = now_ns();
    for (long i = 0; i < b->rounds; i++)
        amb_send(self, sink_of(self), AMB_TUPLE(h, amb_atom("bulk"), bin));
    amb_send(self, sink_of(self), AMB_TUPLE(h, amb_atom("done"), amb_self(self)));
    int64_t count = -1;
    amb_receive_match(self, 600000, NULL, "{count,~l}", &count);
    amb_send(self, b->parent,
             AMB_TUPLE(h, amb_atom("bulk_done"),
                       amb_int(h, count == b->rounds ? now_ns() - t0 : -1)));
}

static bool is_bulk_done(void *ctx, amb_term msg)
{
    (void)ctx;
    return amb_match(msg, "{bulk_done,_}") == 0;
}

static void hol(amb_proc *self)
{
    long mb = arg1, rounds = arg2;
    if (!connect_peer(self) || !warm_up(self))
        return;
    static bulk_arg b;
    b = (bulk_arg){amb_self(self), mb, rounds};
    amb_spawn(self, bulk, &b, NULL);
    size_t cap = 1 << 20, n = 0;
    int64_t *lat = malloc(cap * sizeof *lat), ns = -1;
    for (long i = 1;; i++) {
        amb_term m;
        if (amb_receive_if(self, is_bulk_done, NULL, 0, &m) == 0) {
            int64_t v;
            amb_match(m, "{bulk_done,~l}", &v);
            ns = v;
            break;
        }
        int64_t t = call(self, i);
        if (t < 0)
            break;
        if (n < cap)
            lat[n++] = t;
    }
    if (ns > 0 && n > 0) {
        qsort(lat, n, sizeof *lat, cmp64);
        printf(
            "RESULT bench=dist_hol impl=c peer=%s mb=%ld rounds=%ld bulk_mb_per_sec=%.1f "
            "hol_calls=%zu hol_p50_us=%.1f hol_p90_us=%.1f hol_p99_us=%.1f "
            "hol_max_us=%.1f\n",
            peer, mb, rounds, (double)(mb * rounds) / ((double)ns / 1e9), n,
            pct(lat, (long)n, 0.5), pct(lat, (long)n, 0.9), pct(lat, (long)n, 0.99),
            (double)lat[n - 1] / 1000.0);
        fflush(stdout);
        result = 0;
    }
    free(lat);
}

static void main_proc(amb_proc *self, void *arg)
{
    (void)arg;
    amb_node_opts o = {.cookie = cookie,
                       .long_names = true,
                       .listen_host = "127.0.0.1",
                       .no_embedded_epmd = true,
                       .tls_certfile = getenv("AMB_NODE_TLS_CERT"),
                       .tls_keyfile = getenv("AMB_NODE_TLS_KEY"),
                       .tls_cacertfile = getenv("AMB_NODE_TLS_CA")};
    int rc = amb_node_start(self, node_name, &o);
    if (rc != 0) {
        fprintf(stderr, "amb-node: %s\n", amb_err_name(rc));
        amb_rt_halt(amb_proc_rt(self), rc);
        return;
    }
    if (strcmp(mode, "serve") == 0) {
        serve(self);
        return; /* the node runs until the process is killed */
    }
    if (strcmp(mode, "drive") == 0)
        drive(self);
    else
        hol(self);
    amb_node_stop(self);
    amb_rt_halt(amb_proc_rt(self), result == 0 ? -10000 : -10001);
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[3], "serve") != 0 && argc < 7)) {
        fprintf(stderr, "usage: amb-node NODENAME COOKIE serve|drive PEER MSGS CALLS|"
                        "hol PEER MB ROUNDS\n");
        return 2;
    }
    node_name = argv[1];
    cookie = argv[2];
    mode = argv[3];
    if (strcmp(mode, "serve") != 0) {
        peer = argv[4];
        arg1 = atol(argv[5]);
        arg2 = atol(argv[6]);
    }
    /* AMB_NODE_SPIN_US: the schedulers' spin before they sleep (amb_config;
     * "off" for none), for runs on shared CPUs. */
    amb_config cfg = {0};
    const char *spin = getenv("AMB_NODE_SPIN_US");
    if (spin != NULL)
        cfg.spin_us = strcmp(spin, "off") == 0 ? AMB_SPIN_OFF : atoll(spin);
    int rc = amb_main(&cfg, main_proc, NULL);
    return rc == -10000 ? 0 : 1;
}

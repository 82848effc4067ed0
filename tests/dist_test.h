/*
 * dist_test.h - two (or more) nodes in one OS process, for the tests of the
 * node layer (src/dist: dist.c, conn.c, net_kernel.c). Include it after
 * amb_test_rt.h.
 *
 * The nodes. run_nodes(n, bodies, args) makes n runtimes, runs body[i] as
 * the first process of runtime i (each runtime on its own thread) until
 * every runtime has ended, then frees them. A body starts its node
 * (start_fake_node or amb_node_start), does its part and stops its node;
 * runtimes end when their processes do. It fails the test like
 * amb_test_run: a CHECK failed in any process, a runtime still running after
 * the deadline (all are stopped then), a body that did not reach its end,
 * memory left behind once every runtime is freed.
 *
 * The fake transport. start_fake_node gives a node a transport that carries
 * a connection's bytes between runtimes of this OS process as messages
 * ({tcp, Sock, Data}, {tcp_closed, Sock}), with "EPMD" a table of the
 * running fake nodes. It exercises everything of the node but sockets and
 * EPMD (the handshake, frames, fragments, control messages, queues,
 * connection races, ticks), deterministically and without ports.
 *
 * Coordination between bodies: nodes_flag(i) is an atomic a body can set
 * and another wait for (WAIT_UNTIL), e.g. "node b is up".
 */
#ifndef AMB_DIST_TEST_H
#define AMB_DIST_TEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "ambitious/gen_server.h"
#include "ambitious/node.h"
#include "dist/dist.h"

#define FAKE_NODES 8
#define FAKE_CHANS 256

/* ===========================================================================
 * The fake transport
 * ======================================================================== */

typedef struct fake_chan {
    bool used;
    amb_rt *rt[2];
    amb_pid owner[2];
    amb_heap *buf[2]; /* data for side i before its owner is known */
    amb_term pending[2];
    bool closed;
} fake_chan;

static struct {
    pthread_mutex_t lock;
    struct {
        amb_term name;
        amb__dist *d;
        amb_rt *rt;
        amb_pid nk;
        bool refuse; /* connections to it fail (a node that is not there) */
        bool mute;   /* what it sends is lost (a node that froze) */
        bool hold;   /* its sends wait (a socket whose peer reads nothing) */
    } nodes[FAKE_NODES];
    fake_chan chans[FAKE_CHANS];
    uint32_t creation;
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

static amb_term fake_sock(amb_heap *h, size_t chan, int side)
{
    return AMB_TUPLE(h, amb_atom("fake_sock"), AMB_SMALL(chan), AMB_SMALL(side));
}

static bool fake_sock_get(amb_term sock, size_t *chan, int *side)
{
    int64_t c, sd;
    if (amb_match(sock, "{fake_sock,~l,~l}", &c, &sd) != 0 || c < 0 || c >= FAKE_CHANS)
        return false;
    *chan = (size_t)c;
    *side = (int)sd;
    return true;
}

static int fake_start(amb__dist *d, amb_proc *self, amb_pid nk, uint32_t *creation)
{
    (void)self;
    int rc = AMB_ESYSLIMIT;
    pthread_mutex_lock(&fake.lock);
    for (int i = 0; i < FAKE_NODES; i++) {
        if (fake.nodes[i].d == d || fake.nodes[i].name == d->name) {
            rc = AMB_EEXIST;
            break;
        }
    }
    for (int i = 0; rc == AMB_ESYSLIMIT && i < FAKE_NODES; i++) {
        if (fake.nodes[i].d == NULL) {
            fake.nodes[i].name = d->name;
            fake.nodes[i].d = d;
            fake.nodes[i].rt = amb_proc_rt(self);
            fake.nodes[i].nk = nk;
            fake.nodes[i].refuse = false;
            *creation = ++fake.creation;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

static void fake_stop(amb__dist *d, amb_proc *self)
{
    (void)d, (void)self;
    pthread_mutex_lock(&fake.lock);
    for (int i = 0; i < FAKE_NODES; i++)
        if (fake.nodes[i].d == d)
            memset(&fake.nodes[i], 0, sizeof fake.nodes[i]);
    pthread_mutex_unlock(&fake.lock);
}

static int fake_connect(amb__dist *d, amb_proc *self, amb_term node, int64_t timeout_ms,
                        amb_term *sock)
{
    (void)d, (void)timeout_ms;
    pthread_mutex_lock(&fake.lock);
    int peer = -1;
    for (int i = 0; i < FAKE_NODES; i++)
        if (fake.nodes[i].d != NULL && fake.nodes[i].name == node &&
            !fake.nodes[i].refuse)
            peer = i;
    size_t c = FAKE_CHANS;
    for (size_t i = 0; peer >= 0 && i < FAKE_CHANS && c == FAKE_CHANS; i++)
        if (!fake.chans[i].used)
            c = i;
    if (peer < 0 || c == FAKE_CHANS) {
        pthread_mutex_unlock(&fake.lock);
        return AMB_ECONNREFUSED;
    }
    fake_chan *ch = &fake.chans[c];
    memset(ch, 0, sizeof *ch);
    ch->used = true;
    ch->rt[0] = amb_proc_rt(self);
    ch->owner[0] = amb_self(self);
    ch->rt[1] = fake.nodes[peer].rt;
    ch->owner[1] = AMB_NONE;
    ch->pending[0] = ch->pending[1] = AMB_NONE;
    amb_rt *prt = fake.nodes[peer].rt;
    amb_pid pnk = fake.nodes[peer].nk;
    amb_heap *h = amb_proc_heap(self);
    *sock = fake_sock(h, c, 0);
    amb_term accept = AMB_TUPLE(h, amb_atom("accept"), fake_sock(h, c, 1));
    /* Under the lock: the channel exists before the peer's acceptor can
     * look at it. */
    int rc = amb_rt_send(prt, pnk, accept);
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

static int fake_adopt(amb__dist *d, amb_proc *self, amb_term sock)
{
    (void)d;
    size_t c;
    int side;
    if (!fake_sock_get(sock, &c, &side))
        return AMB_EBADARG;
    pthread_mutex_lock(&fake.lock);
    fake_chan *ch = &fake.chans[c];
    ch->owner[side] = amb_self(self);
    ch->rt[side] = amb_proc_rt(self);
    int rc = 0;
    if (ch->pending[side] != AMB_NONE) {
        amb_heap *h = amb_proc_heap(self);
        rc = amb_send(self, amb_self(self),
                      AMB_TUPLE(h, amb_atom("tcp"), sock, ch->pending[side]));
        ch->pending[side] = AMB_NONE;
        amb_heap_free(ch->buf[side]);
        ch->buf[side] = NULL;
    }
    if (rc == 0 && ch->closed)
        rc = amb_send(self, amb_self(self),
                      AMB_TUPLE(amb_proc_heap(self), amb_atom("tcp_closed"), sock));
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

static int fake_send(amb__dist *d, amb_proc *self, amb_term sock, const uint8_t *data,
                     size_t len)
{
    (void)d;
    size_t c;
    int side;
    if (!fake_sock_get(sock, &c, &side))
        return AMB_EBADARG;
    int peer = 1 - side, rc = 0;
    /* A held node's sender waits as in a full socket (the process sleeps;
     * the scheduler runs others). */
    for (bool held = true; held;) {
        held = false;
        pthread_mutex_lock(&fake.lock);
        for (int i = 0; i < FAKE_NODES; i++)
            if (fake.nodes[i].hold && fake.nodes[i].rt == fake.chans[c].rt[side])
                held = true;
        pthread_mutex_unlock(&fake.lock);
        if (held)
            amb_sleep(self, 1);
    }
    pthread_mutex_lock(&fake.lock);
    fake_chan *ch = &fake.chans[c];
    bool mute = false;
    for (int i = 0; i < FAKE_NODES; i++)
        if (fake.nodes[i].mute && fake.nodes[i].rt == ch->rt[side])
            mute = true;
    if (ch->closed) {
        rc = AMB_ECLOSED;
    } else if (mute) {
        rc = 0;
    } else if (ch->owner[peer] != AMB_NONE) {
        amb_heap *h = amb_proc_heap(self);
        amb_heap_mark m = amb_heap_save(h);
        rc = amb_rt_send(ch->rt[peer], ch->owner[peer],
                         AMB_TUPLE(h, amb_atom("tcp"), fake_sock(h, c, peer),
                                   amb_binary(h, data, len)));
        amb_heap_rewind(h, m);
    } else {
        /* Before the acceptor adopted its side: kept, then delivered as one
         * message (bytes, not messages, are the stream). */
        amb_heap *b = ch->buf[peer];
        if (b == NULL && amb_heap_new(&ch->buf[peer]) != 0)
            rc = AMB_ENOMEM;
        b = ch->buf[peer];
        if (rc == 0) {
            const uint8_t *old = NULL;
            size_t n = 0;
            if (ch->pending[peer] != AMB_NONE)
                amb_binary_get(ch->pending[peer], &old, &n);
            uint8_t *joined = malloc(n + len);
            if (n > 0)
                memcpy(joined, old, n);
            memcpy(joined + n, data, len);
            ch->pending[peer] = amb_binary(b, joined, n + len);
            free(joined);
        }
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

static void fake_close(amb__dist *d, amb_proc *self, amb_term sock)
{
    (void)d, (void)self;
    size_t c;
    int side;
    if (!fake_sock_get(sock, &c, &side))
        return;
    pthread_mutex_lock(&fake.lock);
    fake_chan *ch = &fake.chans[c];
    if (!ch->closed) {
        ch->closed = true;
        int peer = 1 - side;
        if (ch->owner[peer] != AMB_NONE) {
            uint64_t words[16];
            amb_heap h;
            amb__heap_init_fixed(&h, words, 16);
            amb_rt_send(ch->rt[peer], ch->owner[peer],
                        AMB_TUPLE(&h, amb_atom("tcp_closed"), fake_sock(&h, c, peer)));
        }
    } else {
        /* Both ends closed: the channel is free again. */
        for (int i = 0; i < 2; i++)
            amb_heap_free(ch->buf[i]);
        memset(ch, 0, sizeof *ch);
    }
    pthread_mutex_unlock(&fake.lock);
}

static const amb__dist_transport fake_transport = {
    .start = fake_start,
    .connect = fake_connect,
    .adopt = fake_adopt,
    .send = fake_send,
    .close = fake_close,
    .stop = fake_stop,
};

/* Starts self's node as name on the fake transport. */
__attribute__((unused)) static int start_fake_node(amb_proc *self, const char *name,
                                                   const amb_node_opts *opts)
{
    amb_node_opts o = opts != NULL ? *opts : (amb_node_opts){0};
    if (o.cookie == NULL)
        o.cookie = "fake-cookie";
    return amb__dist_start(self, name, &o, &fake_transport, NULL);
}

/* Makes connections to node fail from now on (a node that went away
 * without a word). */
__attribute__((unused)) static void fake_refuse(amb_term node, bool refuse)
{
    pthread_mutex_lock(&fake.lock);
    for (int i = 0; i < FAKE_NODES; i++)
        if (fake.nodes[i].name == node)
            fake.nodes[i].refuse = refuse;
    pthread_mutex_unlock(&fake.lock);
}

/* Loses what node sends from now on (mute) or not. */
__attribute__((unused)) static void fake_mute(amb_term node, bool mute)
{
    pthread_mutex_lock(&fake.lock);
    for (int i = 0; i < FAKE_NODES; i++)
        if (fake.nodes[i].name == node)
            fake.nodes[i].mute = mute;
    pthread_mutex_unlock(&fake.lock);
}

/* Makes node's sends wait (hold) or go on: a peer that stopped reading. */
__attribute__((unused)) static void fake_hold(amb_term node, bool hold)
{
    pthread_mutex_lock(&fake.lock);
    for (int i = 0; i < FAKE_NODES; i++)
        if (fake.nodes[i].name == node)
            fake.nodes[i].hold = hold;
    pthread_mutex_unlock(&fake.lock);
}

/* ===========================================================================
 * Running several nodes
 * ======================================================================== */

#define MAX_TEST_NODES 4

static atomic_int nodes_flags_[16];

/* A flag bodies share (reset by each run_nodes). */
__attribute__((unused)) static atomic_int *nodes_flag(int i)
{
    return &nodes_flags_[i];
}

typedef struct node_run_ {
    amb_rt *rt;
    amb_fn *fn;
    void *arg;
    atomic_int finished;
    int rc;
    pthread_t th;
} node_run_;

static void node_first_(amb_proc *self, void *arg)
{
    node_run_ *r = arg;
    r->fn(self, r->arg);
    atomic_store(&r->finished, 1);
}

static void *node_thread_(void *arg)
{
    node_run_ *r = arg;
    r->rc = amb_rt_run(r->rt);
    return NULL;
}

/* Runs body[i](self, arg[i]) as the first process of runtime i, n runtimes
 * of nsched schedulers each, until all have ended (see above). */
__attribute__((unused)) static void run_nodes(int n, unsigned nsched,
                                              amb_fn *const *bodies, void *const *args)
{
    node_run_ r[MAX_TEST_NODES];
    assert_true(n <= MAX_TEST_NODES);
    for (int i = 0; i < 16; i++)
        atomic_store(&nodes_flags_[i], 0);
    reset_failure();
    amb_test_log_reset_();
    amb_test_alloc_count before = amb_test_alloc_now();
    for (int i = 0; i < n; i++) {
        amb_config cfg = config_of(nsched);
        r[i] = (node_run_){.fn = bodies[i], .arg = args[i]};
        assert_int_equal(amb_rt_new(&cfg, &r[i].rt), 0);
        if (getenv("AMB_TEST_VERBOSE") == NULL)
            amb_logger_set_handler(r[i].rt, amb_test_log_handler, NULL);
        assert_int_equal(amb_rt_spawn(r[i].rt, node_first_, &r[i], NULL), 0);
    }
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&r[i].th, NULL, node_thread_, &r[i]), 0);
    /* The deadline: every runtime is stopped once it passes. */
    int64_t until = amb_now_ms() + AMB_TEST_RUN_DEADLINE_MS;
    bool hung = false;
    for (int i = 0; i < n; i++) {
        struct timespec ts;
        for (;;) {
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t left = until - amb_now_ms();
            if (left <= 0) {
                hung = true;
                for (int j = 0; j < n; j++)
                    amb_rt_stop(r[j].rt);
                pthread_join(r[i].th, NULL);
                break;
            }
            ts.tv_sec += 1;
            if (pthread_timedjoin_np(r[i].th, NULL, &ts) == 0)
                break;
        }
    }
    for (int i = 0; i < n; i++)
        amb_rt_free(r[i].rt);
    amb_test_alloc_count after = amb_test_alloc_now();
    char leak[128], report[256];
    amb_test_log_last_report(report, sizeof report, NULL);
    if (atomic_load(&g_failed))
        fail_msg("inside a process: %s", g_fail_text);
    if (hung)
        fail_msg("a runtime did not end within %lld ms (last crash report: %s)",
                 (long long)AMB_TEST_RUN_DEADLINE_MS, report);
    for (int i = 0; i < n; i++)
        if (!atomic_load(&r[i].finished))
            fail_msg("node body %d did not reach its end; last crash report: %s", i,
                     report);
    if (amb_test_alloc_leak(&before, &after, leak, sizeof leak)[0] != '\0')
        fail_msg("once the runtimes were freed: %s", leak);
}

/* ---------------------------------------------------------------------------
 * What the node tests serve and check, in one place
 * ------------------------------------------------------------------------ */

/* A process: {From, Msg} -> From ! {echo, self(), Msg}; {die, R} ends it
 * with reason R. */
static inline void dist_test_echo(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    for (;;) {
        amb_heap_rewind(h, top);
        amb_term m = RECV_WITHIN(self, 60000), from, body;
        if (amb_match(m, "{die,~w}", &body) == 0)
            amb_exit_self(self, body);
        if (amb_match(m, "{~p,~w}", &from, &body) == 0)
            CHECK_OK(self,
                     amb_send(self, from,
                              AMB_TUPLE(h, amb_atom("echo"), amb_self(self), body)));
    }
}

static inline amb_gen_ret dist_test_add_call(amb_proc *self, void *state, amb_term req,
                                             amb_term from)
{
    (void)state, (void)from;
    int a, b;
    if (amb_match(req, "{add,~i,~i}", &a, &b) == 0)
        return amb_gen_reply(amb_int(amb_proc_heap(self), a + b));
    return amb_gen_reply(amb_atom("what"));
}

/* A gen_server answering {add, A, B} with A + B. */
static inline const amb_gen_server *dist_test_adder(void)
{
    static const amb_gen_server adder = {.handle_call = dist_test_add_call};
    return &adder;
}

/* On `node`, processes registered as echo (dist_test_echo) and adder
 * (dist_test_adder) are checked from self: a message there and back, 8 MiB
 * there and back, a call of adder; then the echo process is monitored and
 * told to die with `reason`, whose DOWN must carry it. */
static inline void dist_test_exchange(amb_proc *self, amb_term node, const char *reason)
{
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self, amb_send(self, AMB_TUPLE(h, amb_atom("echo"), node),
                            AMB_TUPLE(h, amb_self(self), amb_atom("hi"))));
    amb_term m, pid;
    WAIT_MSG(self, &m, "{echo,~p,hi}", &pid);
    amb_pid e;
    CHECK_OK(self, amb_term_copy(h, pid, &e));

    /* 8 MiB there and back (many frames, records, fragments). */
    size_t big = (size_t)8 << 20;
    uint8_t *bytes = malloc(big);
    CHECK(self, bytes != NULL);
    for (size_t i = 0; i < big; i++)
        bytes[i] = (uint8_t)(i * 7);
    CHECK_OK(self,
             amb_send(self, e, AMB_TUPLE(h, amb_self(self), amb_binary(h, bytes, big))));
    amb_term back;
    WAIT_MSG(self, &m, "{echo,_,~w}", &back);
    const uint8_t *p;
    size_t n;
    CHECK_OK(self, amb_binary_get(back, &p, &n));
    CHECK_EQ(self, n, big);
    CHECK(self, memcmp(p, bytes, big) == 0);
    free(bytes);

    amb_term ref, reply;
    CHECK_OK(self,
             amb_gen_server_call(self, AMB_TUPLE(h, amb_atom("adder"), node),
                                 amb_pack(h, "{add,40,2}"), AMB_TEST_WAIT_MS, &reply));
    CHECK_TERM(self, reply, "42");
    CHECK_OK(self, amb_monitor(self, e, &ref));
    amb_term why = AMB_TUPLE(h, amb_atom("shutdown"), amb_atom(reason));
    CHECK_OK(self, amb_send(self, e, AMB_TUPLE(h, amb_atom("die"), why)));
    CHECK(self, amb_equal(wait_down(self, ref, e), why));
}

#endif /* AMB_DIST_TEST_H */

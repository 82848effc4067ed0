/*
 * sup_test.h - what the supervisor tests (supervisor.c, dynamic_supervisor.c)
 * share: a scriptable worker child, a stop log, and helpers to read a
 * supervisor's children. Define DEADLINE_MS as wanted first; it includes
 * amb_test_rt.h (the runner, CHECK, wait_down, wait_exit).
 *
 * The worker (wk) is a stackful process started by wk_start in the
 * supervisor (linked to it, as a start function must). It acks its start
 * (so a child that is stopped has always run its set-up), tells the test's
 * observer {up, Tag, Pid}, records Tag in a shared stop log when it ends
 * (however it ends: an on_exit handler), and obeys messages:
 *   crash -> ends with boom; normal -> returns; shutdown -> ends shutdown;
 *   shutdown_tuple -> ends {shutdown, done}.
 * With trap set it traps exits; then an exit(shutdown) from the supervisor
 * ends it with shutdown, unless ignore_shutdown (it goes on: the supervisor
 * must kill it) or slow_shutdown (it tells the observer {stopping, Tag} and
 * waits for `go` first).
 */
#ifndef AMB_SUP_TEST_H
#define AMB_SUP_TEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "amb_test_rt.h"

/* ---------------------------------------------------------------------------
 * The stop log
 * ------------------------------------------------------------------------ */

#define LOG_MAX 256

typedef struct stoplog {
    atomic_int n;
    atomic_int tags[LOG_MAX];
} stoplog;

static void log_add(stoplog *log, int tag)
{
    int i = atomic_fetch_add(&log->n, 1);
    if (i < LOG_MAX)
        atomic_store(&log->tags[i], tag);
}

__attribute__((unused)) static int log_len(stoplog *log)
{
    return atomic_load(&log->n);
}

__attribute__((unused)) static int log_at(stoplog *log, int i)
{
    return atomic_load(&log->tags[i]);
}

/* ---------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------ */

typedef struct wk {
    int tag;
    amb_pid observer; /* gets {up, Tag, Pid}; AMB_NONE: nobody */
    stoplog *log;     /* gets Tag when it ends; NULL: none */
    bool trap;
    bool ignore_shutdown;
    bool slow_shutdown;
    atomic_int fail_starts;   /* this many next starts fail */
    atomic_int ignore_starts; /* this many next starts return ignore */
    atomic_bool fail_always;  /* every start fails while set */
    atomic_int starts;        /* starts that ran */
} wk;

static bool take_one(atomic_int *a)
{
    int v = atomic_load(a);
    while (v > 0)
        if (atomic_compare_exchange_weak(a, &v, v - 1))
            return true;
    return false;
}

static void wk_ended(void *ctx)
{
    wk *w = ctx;
    log_add(w->log, w->tag);
}

static void wk_main(amb_proc *self, void *arg)
{
    wk *w = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid parent = AMB_NONE;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{init,~p}", &parent));
    if (w->trap)
        amb_trap_exit(self, true);
    if (w->log != NULL)
        CHECK_OK(self, amb_on_exit(self, wk_ended, w));
    atomic_fetch_add(&w->starts, 1);
    CHECK_OK(self, amb_send(self, parent, amb_pack(h, "{wk_ready,~p}", amb_self(self))));
    if (w->observer != AMB_NONE)
        CHECK_OK(self, amb_send(self, w->observer,
                                amb_pack(h, "{up,~i,~p}", w->tag, amb_self(self))));
    for (;;) {
        amb_heap_reset(h);
        amb_term m, reason;
        amb_pid from;
        CHECK_OK(self, amb_receive(self, AMB_INFINITY, &m));
        if (m == amb_atom("crash"))
            amb_exit_self(self, amb_atom("boom"));
        if (m == amb_atom("normal"))
            return;
        if (m == AMB_ATOM_SHUTDOWN)
            amb_exit_self(self, AMB_ATOM_SHUTDOWN);
        if (m == amb_atom("shutdown_tuple"))
            amb_exit_self(self, amb_pack(h, "{shutdown,done}"));
        if (amb_match(m, "{'EXIT',~p,~w}", &from, &reason) != 0)
            continue;
        if (reason == AMB_ATOM_SHUTDOWN && w->ignore_shutdown)
            continue;
        if (reason == AMB_ATOM_SHUTDOWN && w->slow_shutdown) {
            CHECK_OK(self,
                     amb_send(self, w->observer, amb_pack(h, "{stopping,~i}", w->tag)));
            CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "go"));
        }
        amb_exit_self(self, reason);
    }
}

/* The start function: spawn linked to the supervisor, wait for the ack. */
static int wk_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    wk *w = arg;
    if (atomic_load(&w->fail_always) || take_one(&w->fail_starts)) {
        *reason = amb_atom("no_luck");
        return AMB_EINIT;
    }
    if (take_one(&w->ignore_starts))
        return AMB_EIGNORE;
    amb_pid pid;
    int rc = amb_spawn_link(self, wk_main, w, &pid);
    if (rc != 0)
        return rc;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    rc = amb_send(self, pid, amb_pack(h, "{init,~p}", amb_self(self)));
    amb_heap_rewind(h, m);
    if (rc == 0)
        rc = amb_receive_match(self, DEADLINE_MS, NULL, "{wk_ready,~v}", pid);
    if (rc != 0)
        return rc;
    *out = pid;
    return 0;
}

/* Numbers workers w[0..n) by their index (tag) and gives each the observer
 * (AMB_NONE: none) and the stop log (NULL: none). */
__attribute__((unused)) static void wk_init(wk *w, int n, amb_pid observer, stoplog *log)
{
    for (int i = 0; i < n; i++) {
        w[i].tag = i;
        w[i].observer = observer;
        w[i].log = log;
    }
}

__attribute__((unused)) static amb_child_spec wspec(amb_term id, wk *w, amb_restart r,
                                                    int64_t shutdown_ms)
{
    amb_child_spec s = {0};
    s.id = id;
    s.start = wk_start;
    s.arg = w;
    s.restart = r;
    s.shutdown_ms = shutdown_ms;
    s.type = AMB_WORKER;
    return s;
}

/* A supervisor as a child: arg is its amb_sup_spec. */
__attribute__((unused)) static int sup_child_start(amb_proc *self, void *arg,
                                                   amb_pid *out, amb_term *reason)
{
    return amb_sup_start_link(self, arg, NULL, out, reason);
}

/* ---------------------------------------------------------------------------
 * Reading a supervisor
 * ------------------------------------------------------------------------ */

/* The Child field of each child in start order (which_children lists the
 * newest first, as OTP): the first max into out; returns how many children
 * there are. */
__attribute__((unused)) static size_t kids(amb_proc *self, amb_term sup, amb_term *out,
                                           size_t max)
{
    amb_term list = AMB_NONE;
    CHECK_OK(self, amb_sup_which_children(self, sup, &list));
    size_t n = 0;
    CHECK_OK(self, amb_list_length(list, &n));
    for (size_t i = n; amb_is_cons(list); list = amb_list_tail(list))
        if (--i < max)
            out[i] = amb_tuple_elem(amb_list_head(list), 1);
    return n;
}

/* The Child field of the entry with that id: true when there is one. */
__attribute__((unused)) static bool kid(amb_proc *self, amb_term sup, amb_term id,
                                        amb_term *child)
{
    amb_term list = AMB_NONE;
    CHECK_OK(self, amb_sup_which_children(self, sup, &list));
    for (; amb_is_cons(list); list = amb_list_tail(list)) {
        amb_term e = amb_list_head(list);
        if (amb_equal(amb_tuple_elem(e, 0), id)) {
            *child = amb_tuple_elem(e, 1);
            return true;
        }
    }
    return false;
}

/* Waits for {up, Tag, Pid} from the worker tagged tag; returns Pid. */
__attribute__((unused)) static amb_pid wait_up(amb_proc *self, int tag)
{
    amb_pid pid = AMB_NONE;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{up,~v,~p}",
                                     AMB_SMALL(tag), &pid));
    return pid;
}

/* The restart storm's child (supervisor.c, dynamic_supervisor.c): crashes
 * at once while armed and fewer than `limit` starts ran; the last one tells
 * the observer and waits (a `crash` message ends it). */
typedef struct storm {
    atomic_int starts;
    atomic_bool armed;
    amb_pid observer;
    int limit;
} storm;

__attribute__((unused)) static void storm_main(amb_proc *self, void *arg)
{
    storm *st = arg;
    int n = atomic_fetch_add(&st->starts, 1) + 1;
    if (atomic_load(&st->armed) && n < st->limit)
        amb_exit_self(self, amb_atom("storm"));
    if (n >= st->limit)
        amb_send(self, st->observer, amb_atom("storm_done"));
    amb_term m;
    for (;;) {
        amb_receive(self, AMB_INFINITY, &m);
        if (m == amb_atom("crash"))
            amb_exit_self(self, amb_atom("storm"));
    }
}

__attribute__((unused)) static int storm_start(amb_proc *self, void *arg, amb_pid *out,
                                               amb_term *reason)
{
    (void)reason;
    return amb_spawn_link(self, storm_main, arg, out);
}

#endif /* AMB_SUP_TEST_H */

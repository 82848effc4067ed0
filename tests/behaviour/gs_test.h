/*
 * gs_test.h - what the gen_server tests share (tests/behaviour/gen_server*.c):
 * "tsrv", one test server whose every behaviour is chosen by the test
 * through its start argument and its requests, and a few term helpers.
 * Include after amb_test_rt.h (the runner, its logger counters, CHECK_TERM,
 * wait_down).
 *
 * tsrv. Its start argument (tsrv_arg, on the test process's stack, which
 * outlives the server: every test stops its servers before it returns)
 * selects what init returns, an idle timeout applied to every result,
 * trap_exit, and what terminate does. The server tells `observer` (a pid)
 * about events as messages {Event, ServerPid, Detail} and keeps a log of
 * atoms (`log` request). Requests, casts and infos are listed at
 * tsrv_call, tsrv_cast and tsrv_info.
 */
#ifndef GS_TEST_H
#define GS_TEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Term helpers for processes
 * ------------------------------------------------------------------------ */

/* A term parsed from Erlang text onto the caller's heap. */
__attribute__((unused)) static amb_term P(amb_proc *self, const char *text)
{
    amb_term t = AMB_NONE;
    if (amb_parse(amb_proc_heap(self), text, strlen(text), &t, NULL) != 0)
        return AMB_NONE;
    return t;
}

/* x copied onto the caller's heap (a part of a borrowed term made to last
 * until the callback's result has been used). */
__attribute__((unused)) static amb_term own(amb_proc *self, amb_term x)
{
    amb_term out = AMB_NONE;
    CHECK_OK(self, amb_term_copy(amb_proc_heap(self), x, &out));
    return out;
}

/* Waits for the event {Event, pid, Detail} from tsrv; returns Detail. */
__attribute__((unused)) static amb_term gs_wait_event(amb_proc *self, const char *event,
                                                      amb_pid pid)
{
    amb_term detail = AMB_NONE;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{~v,~v,~w}",
                                     amb_atom(event), pid, &detail));
    return detail;
}

/* A call that must succeed; returns the reply. */
#define CALL(self, server, req) gs_call((self), (server), (req), __FILE__, __LINE__)
__attribute__((unused)) static amb_term gs_call(amb_proc *self, amb_term server,
                                                amb_term req, const char *file, int line)
{
    amb_term reply = AMB_NONE;
    int rc = amb_gen_server_call(self, server, req, DEADLINE_MS, &reply);
    if (rc != 0)
        proc_fail(self, file, line, "amb_gen_server_call returned %s", amb_err_name(rc));
    return reply;
}

/* ---------------------------------------------------------------------------
 * tsrv
 * ------------------------------------------------------------------------ */

typedef enum tsrv_init {
    INIT_OK = 0,
    INIT_TIMEOUT,  /* ok + timeout arg.timeout_ms */
    INIT_CONTINUE, /* ok + continue {init_cont, [1,2,3]} */
    INIT_IGNORE,
    INIT_STOP,  /* stop with arg.reason (Erlang text) */
    INIT_CRASH, /* amb_exit_self with arg.reason */
    INIT_HANG,  /* tells observer {init_pid, Pid, _}, waits for 'go', then hangs */
} tsrv_init;

typedef struct tsrv_arg {
    tsrv_init init;
    int64_t timeout_ms;      /* INIT_TIMEOUT */
    int64_t idle_ms;         /* > 0: every result gets amb_gen_timeout(idle_ms) */
    bool trap;               /* trap exits in init */
    bool hang_in_terminate;  /* terminate waits for a 'release' message */
    bool crash_in_terminate; /* terminate ends with crashed_in_terminate */
    bool tell_terminate;     /* terminate tells observer {terminate, Pid, Reason} */
    const char *reason;      /* INIT_STOP / INIT_CRASH: a term in Erlang text */
    amb_pid observer;        /* gets events; AMB_NONE: none */
    /* Written by the server, read by the test after an observation. */
    atomic_int terminated;
    char terminate_reason[256];
} tsrv_arg;

static void tsrv_arg_init(tsrv_arg *a, amb_proc *self, tsrv_init init)
{
    memset(a, 0, sizeof *a);
    a->init = init;
    a->observer = self != NULL ? amb_self(self) : AMB_NONE;
    atomic_store(&a->terminated, 0);
}

#define TSRV_LOG_MAX 64

typedef struct tsrv {
    tsrv_arg *arg;
    int64_t count;
    int64_t ticks;         /* {tick, I} infos */
    uint64_t last_tick_ms; /* when the last tick came */
    amb_heap *keep;        /* terms kept across callbacks */
    amb_term pending;      /* a from kept for a later reply, on keep */
    size_t nlog;
    amb_term log[TSRV_LOG_MAX]; /* atoms */
} tsrv;

static void tsrv_log(tsrv *s, const char *what)
{
    if (s->nlog < TSRV_LOG_MAX)
        s->log[s->nlog++] = amb_atom(what);
}

/* Sends {event, self, detail} to the observer. */
static void tsrv_tell(amb_proc *self, tsrv *s, const char *event, amb_term detail)
{
    if (s->arg->observer == AMB_NONE)
        return;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    CHECK_OK(self, amb_send(self, s->arg->observer,
                            amb_pack(h, "{~a,~p,~w}", event, amb_self(self), detail)));
    amb_heap_rewind(h, m);
}

/* The result with the idle timeout applied, when one is set. */
static amb_gen_ret tsrv_fin(tsrv *s, amb_gen_ret r)
{
    if (s->arg->idle_ms > 0 && r.action != AMB_GEN_STOP && r.next == AMB_GEN_NEXT_NONE)
        return amb_gen_timeout(r, s->arg->idle_ms);
    return r;
}

static amb_term tsrv_reason(amb_proc *self, const tsrv_arg *a)
{
    amb_term t = P(self, a->reason != NULL ? a->reason : "undefined_reason");
    CHECK(self, t != AMB_NONE);
    return t;
}

static void tsrv_free_keep(void *ctx)
{
    amb_heap_free(ctx);
}

static amb_gen_ret tsrv_init_cb(amb_proc *self, void *state, void *arg)
{
    tsrv *s = state;
    tsrv_arg *a = arg;
    s->arg = a;
    s->pending = AMB_NONE;
    CHECK_OK(self, amb_heap_new(&s->keep));
    /* Freed however the server ends (also when killed). */
    CHECK_OK(self, amb_on_exit(self, tsrv_free_keep, s->keep));
    if (a->trap)
        amb_trap_exit(self, true);
    tsrv_log(s, "init");
    switch (a->init) {
    case INIT_OK:
        return tsrv_fin(s, amb_gen_ok());
    case INIT_TIMEOUT:
        return amb_gen_timeout(amb_gen_ok(), a->timeout_ms);
    case INIT_CONTINUE:
        /* Built in init: stays for the server's life, handed on as is. */
        return amb_gen_continue(amb_gen_ok(),
                                amb_pack(amb_proc_heap(self), "{init_cont,[1,2,3]}"));
    case INIT_IGNORE:
        return amb_gen_ignore();
    case INIT_STOP:
        return amb_gen_stop(tsrv_reason(self, a));
    case INIT_CRASH:
        amb_exit_self(self, tsrv_reason(self, a));
    case INIT_HANG: {
        tsrv_tell(self, s, "init_pid", AMB_ATOM_OK);
        CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "go"));
        amb_term never;
        amb_receive_match(self, 60000, &never, "never_sent");
        return amb_gen_ok();
    }
    }
    return amb_gen_ok();
}

/* {N, [N, N+1, N+2], <<N:800>>} on h: a term with a shared binary. */
static amb_term tsrv_scratch(amb_heap *h, int64_t n)
{
    uint8_t bytes[100];
    memset(bytes, (int)(n & 0xff), sizeof bytes);
    return amb_pack(h, "{~l,[~l,~l,~l],~b}", n, n, n + 1, n + 2, bytes, sizeof bytes);
}

/*
 * Calls:
 *   get                       reply Count
 *   {add, N}                  Count += N, reply Count
 *   {mul, I, J}               Count += 1, reply I * J
 *   {echo, X}                 reply X (a part of the request itself)
 *   N (a small integer)       reply {N, [N, N+1, N+2], <<N:800>>} built on
 *                             the process heap (a shared binary)
 *   log                       reply the log, oldest first
 *   {defer_to, Pid}           send {from, self, From} to Pid, noreply
 *   hold                      keep a copy of From, noreply (see cast release)
 *   {stop_reply, R}           stop with R, reply ok
 *   {stop_noreply, R}         stop with R, no reply
 *   {die, R}                  amb_exit_self(R) in the callback
 *   call_self                 reply the code of a call to itself
 *   stop_self                 reply the code of amb_gen_server_stop(itself)
 *   {send_then_reply, To, M}  send M to To, then reply ok
 *   hibernate                 reply hibernated, with hibernate
 *   {continue, C}             reply ok, continue C
 *   {timeout, Ms}             reply ok, timeout Ms
 *   {call, Server, Req}       reply what a call of Server with Req replies
 *   is_trapping               reply whether it traps exits
 */
static amb_gen_ret tsrv_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    tsrv *s = state;
    amb_heap *h = amb_proc_heap(self);
    amb_term x = AMB_NONE, y = AMB_NONE;
    int64_t n, i, j;
    if (amb_is_small(req))
        return amb_gen_reply(tsrv_scratch(h, amb_small_value(req)));
    if (req == amb_atom("get"))
        return tsrv_fin(s, amb_gen_reply(amb_int(h, s->count)));
    if (amb_match(req, "{add,~l}", &n) == 0) {
        s->count += n;
        return tsrv_fin(s, amb_gen_reply(amb_int(h, s->count)));
    }
    if (amb_match(req, "{mul,~l,~l}", &i, &j) == 0) {
        s->count++;
        return amb_gen_reply(amb_int(h, i * j));
    }
    if (amb_match(req, "{echo,~w}", &x) == 0)
        return amb_gen_reply(x);
    if (req == amb_atom("log"))
        return amb_gen_reply(amb_list(h, s->nlog, s->log));
    if (amb_match(req, "{defer_to,~p}", &x) == 0) {
        CHECK_OK(self,
                 amb_send(self, x, amb_pack(h, "{from,~p,~w}", amb_self(self), from)));
        return tsrv_fin(s, amb_gen_noreply());
    }
    if (req == amb_atom("hold")) {
        CHECK(self, s->pending == AMB_NONE);
        CHECK_OK(self, amb_term_copy(s->keep, from, &s->pending));
        tsrv_tell(self, s, "holding", AMB_ATOM_OK);
        return tsrv_fin(s, amb_gen_noreply());
    }
    if (amb_match(req, "{stop_reply,~w}", &x) == 0)
        return amb_gen_stop_reply(own(self, x), AMB_ATOM_OK);
    if (amb_match(req, "{stop_noreply,~w}", &x) == 0)
        return amb_gen_stop(own(self, x));
    if (amb_match(req, "{die,~w}", &x) == 0)
        amb_exit_self(self, x);
    if (req == amb_atom("call_self")) {
        amb_term r = AMB_NONE;
        int rc = amb_gen_server_call(self, amb_self(self), amb_atom("get"), 1000, &r);
        return amb_gen_reply(amb_int(h, rc));
    }
    if (req == amb_atom("stop_self"))
        return amb_gen_reply(
            amb_int(h, amb_gen_server_stop(self, amb_self(self), AMB_ATOM_NORMAL, 1000)));
    if (amb_match(req, "{send_then_reply,~p,~w}", &x, &y) == 0) {
        CHECK_OK(self, amb_send(self, x, y));
        return amb_gen_reply(AMB_ATOM_OK);
    }
    if (req == amb_atom("hibernate"))
        return amb_gen_hibernate(amb_gen_reply(amb_atom("hibernated")));
    if (amb_match(req, "{continue,~w}", &x) == 0)
        return amb_gen_continue(amb_gen_reply(AMB_ATOM_OK), own(self, x));
    if (amb_match(req, "{timeout,~l}", &n) == 0)
        return amb_gen_timeout(amb_gen_reply(AMB_ATOM_OK), n);
    if (amb_match(req, "{call,~w,~w}", &x, &y) == 0) {
        /* A call from inside a callback; the reply is borrowed until our
         * next receive, which comes after it has been sent on. */
        amb_term r = AMB_NONE;
        int rc = amb_gen_server_call(self, x, y, DEADLINE_MS, &r);
        return amb_gen_reply(rc == 0 ? r : amb_pack(h, "{call_failed,~i}", rc));
    }
    if (req == amb_atom("is_trapping")) {
        amb_proc_info pi;
        CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
        return amb_gen_reply(amb_bool(pi.trap_exit));
    }
    return amb_gen_reply(amb_pack(h, "{unknown_call,~w}", req));
}

/*
 * Casts:
 *   N (small integer)   Count += 1, builds a term like call N's
 *   {add, N}            Count += N
 *   {stop, R}           stop with R
 *   release             reply released to the held From, then tell the
 *                       observer {replied, Pid, ok}
 *   {timeout, Ms}       noreply, timeout Ms
 *   zero_when_waiting   waits until a message is queued, then timeout 0
 *   cont_when_waiting   waits until a message is queued, then continue
 *                       {cast_cont, [1,2,3]} (built on the process heap)
 *   Atom                logged
 *   hibernate           noreply, hibernate
 *   fail                amb_gen_fail(AMB_ENOPROC)
 *   {continue, C}       noreply, continue C
 */
static amb_gen_ret tsrv_cast(amb_proc *self, void *state, amb_term msg)
{
    tsrv *s = state;
    amb_heap *h = amb_proc_heap(self);
    amb_term x;
    int64_t n;
    if (amb_is_small(msg)) {
        s->count++;
        CHECK(self, tsrv_scratch(h, amb_small_value(msg)) != AMB_NONE);
        return tsrv_fin(s, amb_gen_noreply());
    }
    if (amb_match(msg, "{add,~l}", &n) == 0) {
        s->count += n;
        return tsrv_fin(s, amb_gen_noreply());
    }
    if (amb_match(msg, "{stop,~w}", &x) == 0)
        return amb_gen_stop(own(self, x));
    if (msg == amb_atom("release")) {
        CHECK(self, s->pending != AMB_NONE);
        CHECK_OK(self, amb_gen_server_reply(self, s->pending, amb_atom("released")));
        s->pending = AMB_NONE;
        amb_heap_reset(s->keep);
        tsrv_tell(self, s, "replied", AMB_ATOM_OK);
        return tsrv_fin(s, amb_gen_noreply());
    }
    if (amb_match(msg, "{timeout,~l}", &n) == 0)
        return amb_gen_timeout(amb_gen_noreply(), n);
    if (msg == amb_atom("zero_when_waiting")) {
        WAIT_UNTIL(self, amb_message_queue_len(self) >= 1);
        return amb_gen_timeout(amb_gen_noreply(), 0);
    }
    if (msg == amb_atom("cont_when_waiting")) {
        WAIT_UNTIL(self, amb_message_queue_len(self) >= 1);
        tsrv_log(s, "cont_when_waiting");
        return amb_gen_continue(amb_gen_noreply(), amb_pack(h, "{cast_cont,[1,2,3]}"));
    }
    if (msg == amb_atom("hibernate"))
        return amb_gen_hibernate(amb_gen_noreply());
    if (msg == amb_atom("fail"))
        return amb_gen_fail(AMB_ENOPROC);
    if (amb_match(msg, "{continue,~w}", &x) == 0)
        return amb_gen_continue(amb_gen_noreply(), own(self, x));
    if (amb_is_atom(msg)) {
        tsrv_log(s, amb_atom_name(msg, NULL));
        return tsrv_fin(s, amb_gen_noreply());
    }
    return tsrv_fin(s, amb_gen_noreply());
}

/*
 * Infos:
 *   N (small integer) Count += 1, builds a term like call N's
 *   timeout          logged; observer gets {timeout, Pid, {Ticks, MsSinceLastTick}}
 *   {tick, I}        Ticks += 1 (the idle-timeout test)
 *   {'EXIT', F, R}   observer gets {exit_msg, Pid, {F, R}}
 *   Atom             logged
 *   anything else    observer gets {info, Pid, Msg}
 */
static amb_gen_ret tsrv_info(amb_proc *self, void *state, amb_term msg)
{
    tsrv *s = state;
    amb_heap *h = amb_proc_heap(self);
    amb_term f, r;
    if (msg == AMB_ATOM_TIMEOUT) {
        tsrv_log(s, "timeout");
        int64_t gap = s->ticks > 0 ? amb_now_ms() - s->last_tick_ms : 0;
        tsrv_tell(self, s, "timeout", amb_pack(h, "{~l,~l}", s->ticks, (int64_t)gap));
        return tsrv_fin(s, amb_gen_noreply());
    }
    if (amb_is_small(msg)) {
        s->count++;
        CHECK(self, tsrv_scratch(h, amb_small_value(msg)) != AMB_NONE);
        return tsrv_fin(s, amb_gen_noreply());
    }
    if (amb_match(msg, "{tick,_}") == 0) {
        s->ticks++;
        s->last_tick_ms = amb_now_ms();
        return tsrv_fin(s, amb_gen_noreply());
    }
    if (amb_match(msg, "{'EXIT',~w,~w}", &f, &r) == 0) {
        tsrv_tell(self, s, "exit_msg", AMB_TUPLE(h, f, r));
        return tsrv_fin(s, amb_gen_noreply());
    }
    if (amb_is_atom(msg)) {
        tsrv_log(s, amb_atom_name(msg, NULL));
        return tsrv_fin(s, amb_gen_noreply());
    }
    tsrv_tell(self, s, "info", msg);
    return tsrv_fin(s, amb_gen_noreply());
}

static amb_gen_ret tsrv_continue(amb_proc *self, void *state, amb_term cont)
{
    tsrv *s = state;
    /* The term is intact whichever heap it was built on. */
    amb_term tag;
    CHECK_OK(self, amb_match(cont, "{~w,[1,2,3]}", &tag));
    tsrv_log(s, "continue");
    tsrv_tell(self, s, "continued", tag);
    return tsrv_fin(s, amb_gen_noreply());
}

static void tsrv_terminate(amb_proc *self, void *state, amb_term reason)
{
    tsrv *s = state;
    tsrv_arg *a = s->arg;
    if (amb_print(reason, a->terminate_reason, sizeof a->terminate_reason, NULL) != 0)
        snprintf(a->terminate_reason, sizeof a->terminate_reason, "<unprintable>");
    if (a->tell_terminate)
        tsrv_tell(self, s, "terminate", reason);
    if (a->hang_in_terminate)
        CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "release"));
    /* release: the test reads terminate_reason after seeing the flag. */
    atomic_store_explicit(&a->terminated, 1, memory_order_release);
    if (a->crash_in_terminate)
        amb_exit_self(self, amb_atom("crashed_in_terminate"));
}

static const amb_gen_server tsrv_cb = {
    .name = "tsrv",
    .state_size = sizeof(tsrv),
    .init = tsrv_init_cb,
    .handle_call = tsrv_call,
    .handle_cast = tsrv_cast,
    .handle_info = tsrv_info,
    .handle_continue = tsrv_continue,
    .terminate = tsrv_terminate,
};

/* Starts tsrv with arg; checks it started. */
__attribute__((unused)) static amb_pid tsrv_start(amb_proc *self, tsrv_arg *a,
                                                  const amb_gen_opts *opts)
{
    amb_pid pid = AMB_NONE;
    CHECK_OK(self, amb_gen_server_start(self, &tsrv_cb, a, opts, &pid, NULL));
    CHECK(self, amb_is_local_pid(pid));
    return pid;
}

/* Stops a server with reason normal and checks it ended. */
__attribute__((unused)) static void tsrv_stop(amb_proc *self, amb_term server)
{
    CHECK_OK(self, amb_gen_server_stop(self, server, AMB_ATOM_NORMAL, DEADLINE_MS));
}

#endif /* GS_TEST_H */

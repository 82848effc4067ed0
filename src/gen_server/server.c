/*
 * server.c - the gen_server process: a handler process (process.h) whose
 * state block is this file's bookkeeping followed by the user's state. It
 * runs init, then one callback per message, and applies the results.
 *
 * Invariants:
 *   - Callbacks run only in the server process, one at a time.
 *   - A server with a C state (state_term false): after every message the
 *     process heap is rewound to the mark taken when init finished, so terms
 *     a callback builds live exactly until its result has been used
 *     (gen_server.h, "Terms and heaps").
 *   - A server with a term state: its handler has term state (process.h,
 *     state_terms), whose slots are the first words of the block: the
 *     user's state, the registered name and the start's arg_term. The heap
 *     is never rewound; the runtime collects it between messages with those
 *     slots as roots, so nothing else of this file keeps a term across
 *     messages. A callback that leaves AMB_NONE in the state (a build that
 *     ran out of memory) stops the server with {error, 'AMB_ENOMEM'}.
 *   - At most one idle timeout is pending: arming one bumps timer_seq, and a
 *     {'$gen_timeout', Seq} with another Seq is stale and dropped. Any message
 *     cancels the pending timer first, so a timeout fires only when idle.
 *   - A result with a continue runs handle_continue before the next message
 *     is taken (the loop below does not return to the runtime in between).
 */
#include <string.h>

#include "gen.h"

/* The server's bookkeeping, at the start of the handler state block. Its
 * terms come first: with a term state they are the handler's term slots. */
typedef struct gen_srv {
    amb_term state_term; /* the user's state, when it is a term */
    amb_term name;       /* registered name (on the process heap), or NONE */
    amb_term arg_term;   /* a start's arg_term, on the process heap */
    const amb_gen_server *cb;
    void *state;    /* the user's state: &state_term, the block behind this
                       one, or arg */
    amb_pid parent; /* the linked starter, or AMB_NONE */
    amb_heap_mark base;
    amb_tref timer;
    uint64_t timer_seq;
    bool timer_armed;
} gen_srv;
#define SRV_TERMS 3 /* the term slots at the start of gen_srv */

/* The user's state starts 16-byte aligned behind the bookkeeping. */
#define SRV_BYTES ((sizeof(gen_srv) + 15) / 16 * 16)
#define CLASS_MAX 65536

/* ---------------------------------------------------------------------------
 * Ending
 * ------------------------------------------------------------------------ */

/* The reason a STOP result carries: amb_gen_fail's code becomes
 * {error, 'AMB_E...'}. */
static amb_term stop_reason(amb_proc *self, const amb_gen_ret *r)
{
    if (r->reason != AMB_NONE)
        return r->reason;
    /* No reason: amb_gen_fail's code, or a reason whose build ran out of
     * memory (builders return AMB_NONE then). */
    int code = r->error < 0 ? r->error : AMB_ENOMEM;
    amb_term t =
        AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_ERROR, amb_atom(amb_err_name(code)));
    return t != AMB_NONE ? t : AMB_ATOM_ERROR;
}

/* terminate(reason), then the reply of a stop_reply result (OTP replies
 * after terminate), then end with reason. Never returns. */
static _Noreturn void stop_replying(amb_proc *self, gen_srv *g, amb_term reason,
                                    amb_term from, amb_term reply)
{
    if (g->timer_armed)
        amb_cancel_timer(self, g->timer, NULL);
    if (g->cb->terminate != NULL)
        g->cb->terminate(self, g->state, reason);
    if (from != AMB_NONE && reply != AMB_NONE)
        amb_gen_server_reply(self, from, reply);
    if (g->name != AMB_NONE && !amb_is_atom(g->name))
        amb__gen_unregister(self, g->name); /* a local name goes by itself */
    amb_exit_self(self, reason);
}

static _Noreturn void stop_server(amb_proc *self, gen_srv *g, amb_term reason)
{
    stop_replying(self, g, reason, AMB_NONE, AMB_NONE);
}

/* Which callback a result came from: what each may return. */
typedef enum cb_kind { CB_INIT, CB_CALL, CB_OTHER } cb_kind;

/* Whether r is a result a callback of kind k may return (gen_server.h):
 * init ok / ignore / stop, handle_call reply / noreply / stop, the others
 * noreply / stop; a timeout in range; a known next. A stop or an ignore
 * ends the server whatever its next says. */
static bool result_ok(const amb_gen_ret *r, cb_kind k)
{
    if (r->action == AMB_GEN_STOP || (k == CB_INIT && r->action == AMB_GEN_IGNORE))
        return true;
    if (r->action != AMB_GEN_NOREPLY && !(k == CB_CALL && r->action == AMB_GEN_REPLY))
        return false;
    if (r->next > AMB_GEN_NEXT_CONTINUE)
        return false;
    return r->next != AMB_GEN_NEXT_TIMEOUT || r->timeout_ms == AMB_INFINITY ||
           (r->timeout_ms >= 0 && r->timeout_ms <= AMB_TIMEOUT_MAX);
}

static amb_term or_undefined(amb_term t)
{
    return t != AMB_NONE ? t : AMB_ATOM_UNDEFINED;
}

/* The reason of a result gen_server cannot use: OTP's {bad_return_value,
 * Value}. A C result is no term, so Value is the result written as the
 * Erlang callback would have returned it, without the state: ok or noreply,
 * {reply, R}, {stop, Reason}, {stop, Reason, R}, ignore, followed by the
 * next (a timeout's integer, hibernate, {continue, C}); a field with no
 * Erlang value shows as {action, N} or {next, N}. So a cast answered with
 * amb_gen_reply(R) stops with {bad_return_value, {reply, R}}, and a timeout
 * out of range with {bad_return_value, {noreply, -2}}. */
static amb_term bad_return(amb_proc *self, const amb_gen_ret *r, cb_kind k)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term part[4];
    size_t n = 0;
    switch (r->action) {
    case AMB_GEN_NOREPLY:
        part[n++] = k == CB_INIT ? AMB_ATOM_OK : amb_atom("noreply");
        break;
    case AMB_GEN_REPLY:
        part[n++] = amb_atom("reply");
        part[n++] = or_undefined(r->reply);
        break;
    case AMB_GEN_STOP:
        part[n++] = amb_atom("stop");
        part[n++] = or_undefined(r->reason);
        if (r->reply != AMB_NONE)
            part[n++] = r->reply;
        break;
    case AMB_GEN_IGNORE:
        part[n++] = AMB_ATOM_IGNORE;
        break;
    default:
        part[n++] = AMB_TUPLE(h, amb_atom("action"), amb_int(h, r->action));
    }
    switch (r->next) {
    case AMB_GEN_NEXT_NONE:
        break;
    case AMB_GEN_NEXT_TIMEOUT:
        part[n++] = amb_int(h, r->timeout_ms);
        break;
    case AMB_GEN_NEXT_HIBERNATE:
        part[n++] = amb_atom("hibernate");
        break;
    case AMB_GEN_NEXT_CONTINUE:
        part[n++] = AMB_TUPLE(h, amb_atom("continue"), or_undefined(r->cont));
        break;
    default:
        part[n++] = AMB_TUPLE(h, amb_atom("next"), amb_int(h, r->next));
    }
    amb_term what = n == 1 ? part[0] : amb_tuple(h, n, part);
    amb_term t = AMB_TUPLE(h, amb_atom("bad_return_value"), what);
    return t != AMB_NONE ? t : amb_atom("bad_return_value"); /* out of memory */
}

/* ---------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------ */

/* A callback's result, or a stop with {error, 'AMB_ENOMEM'} when it left a
 * term state of AMB_NONE (a build that ran out of memory gives AMB_NONE,
 * and the builders pass it on). */
static amb_gen_ret checked(const gen_srv *g, amb_gen_ret r)
{
    if (g->cb->state_term && g->state_term == AMB_NONE)
        return amb_gen_fail(AMB_ENOMEM);
    return r;
}

static void arm_timeout(amb_proc *self, gen_srv *g, int64_t ms)
{
    amb_heap_mark m = amb_heap_save(amb_proc_heap(self));
    g->timer_seq++;
    amb_term msg = AMB_TUPLE(amb_proc_heap(self), amb__gen_atoms_get()->gen_timeout,
                             amb_uint(amb_proc_heap(self), g->timer_seq));
    int rc = msg == AMB_NONE ? AMB_ENOMEM
                             : amb_send_after(self, amb_self(self), msg, ms, &g->timer);
    amb_heap_rewind(amb_proc_heap(self), m);
    if (rc != 0) {
        amb_gen_ret fail = amb_gen_fail(rc);
        stop_server(self, g, stop_reason(self, &fail));
    }
    g->timer_armed = true;
}

static amb_gen_ret call_info(amb_proc *self, gen_srv *g, amb_term msg)
{
    if (g->cb->handle_info != NULL)
        return checked(g, g->cb->handle_info(self, g->state, msg));
    amb_log(self, AMB_LOG_NOTICE, "gen_server %s: unexpected message dropped",
            g->cb->name ? g->cb->name : "");
    return amb_gen_noreply();
}

/* Applies what follows a result of a callback of kind k (handle_call's
 * reply sent already, its action NOREPLY here): stop, continue (looping
 * over handle_continue's results), a timeout. A result the callback may not
 * return stops the server with bad_return_value. */
static void apply(amb_proc *self, gen_srv *g, amb_gen_ret r, cb_kind k)
{
    for (;; k = CB_OTHER) {
        if (!result_ok(&r, k))
            stop_server(self, g, bad_return(self, &r, k));
        if (r.action == AMB_GEN_STOP)
            stop_server(self, g, stop_reason(self, &r));
        if (r.next == AMB_GEN_NEXT_CONTINUE) {
            if (g->cb->handle_continue == NULL) {
                const amb__gen_atoms *a = amb__gen_atoms_get();
                amb_term why =
                    AMB_TUPLE(amb_proc_heap(self), a->undef, a->handle_continue);
                stop_server(self, g, why != AMB_NONE ? why : a->undef);
            }
            r = checked(g, g->cb->handle_continue(self, g->state, r.cont));
            continue;
        }
        if (r.next == AMB_GEN_NEXT_TIMEOUT && r.timeout_ms != AMB_INFINITY) {
            if (r.timeout_ms > 0) {
                arm_timeout(self, g, r.timeout_ms);
            } else if (amb_message_queue_len(self) == 0) {
                /* Timeout 0: fires at once unless a message is waiting. */
                r = call_info(self, g, AMB_ATOM_TIMEOUT);
                continue;
            }
        }
        return;
    }
}

/* ---------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------ */

/* True when msg is the timeout message of the timer armed now. */
static bool is_current_timeout(const gen_srv *g, amb_term msg)
{
    uint64_t seq;
    return amb_tuple_arity(msg) == 2 &&
           amb_tuple_elem(msg, 0) == amb__gen_atoms_get()->gen_timeout &&
           amb_uint_get(amb_tuple_elem(msg, 1), &seq) == 0 && seq == g->timer_seq;
}

static void handle_call(amb_proc *self, gen_srv *g, amb_term from, amb_term req)
{
    amb_gen_ret r;
    if (g->cb->handle_call != NULL) {
        r = checked(g, g->cb->handle_call(self, g->state, req, from));
    } else {
        const amb__gen_atoms *a = amb__gen_atoms_get();
        amb_heap *h = amb_proc_heap(self);
        amb_log(self, AMB_LOG_WARNING, "gen_server %s: unexpected call",
                g->cb->name ? g->cb->name : "");
        r = amb_gen_reply(AMB_TUPLE(h, AMB_ATOM_ERROR, AMB_TUPLE(h, a->bad_call, req)));
    }
    /* A result that cannot be used stops the server before anything of it
     * is acted on (no reply goes out). */
    if (!result_ok(&r, CB_CALL))
        stop_server(self, g, bad_return(self, &r, CB_CALL));
    if (r.action == AMB_GEN_STOP)
        stop_replying(self, g, stop_reason(self, &r), from, r.reply);
    if (r.action == AMB_GEN_REPLY) {
        if (r.reply == AMB_NONE) {
            /* A reply that failed to build (builders give AMB_NONE when
             * memory runs out): the caller must not wait forever. */
            amb_gen_ret fail = amb_gen_fail(AMB_ENOMEM);
            stop_server(self, g, stop_reason(self, &fail));
        }
        amb_gen_server_reply(self, from, r.reply);
        r.action = AMB_GEN_NOREPLY;
    }
    apply(self, g, r, CB_CALL);
}

static void dispatch(amb_proc *self, gen_srv *g, amb_term msg)
{
    const amb__gen_atoms *a = amb__gen_atoms_get();
    size_t arity = amb_tuple_arity(msg);
    amb_term tag = arity > 0 ? amb_tuple_elem(msg, 0) : AMB_NONE;
    if (arity == 3 && tag == AMB_ATOM_GEN_CALL &&
        amb__gen_is_from(amb_tuple_elem(msg, 1))) {
        handle_call(self, g, amb_tuple_elem(msg, 1), amb_tuple_elem(msg, 2));
        return;
    }
    if (arity == 2 && tag == AMB_ATOM_GEN_CAST) {
        if (g->cb->handle_cast != NULL) {
            apply(self, g,
                  checked(g, g->cb->handle_cast(self, g->state, amb_tuple_elem(msg, 1))),
                  CB_OTHER);
        } else {
            amb_log(self, AMB_LOG_WARNING, "gen_server %s: unexpected cast",
                    g->cb->name ? g->cb->name : "");
        }
        return;
    }
    if (arity == 2 && tag == a->gen_stop)
        stop_server(self, g, amb_tuple_elem(msg, 1));
    if (arity == 2 && tag == a->gen_timeout) {
        if (is_current_timeout(g, msg))
            apply(self, g, call_info(self, g, AMB_ATOM_TIMEOUT), CB_OTHER);
        return; /* a stale timer: dropped */
    }
    if (arity == 3 && tag == AMB_ATOM_EXIT && g->parent != AMB_NONE &&
        amb_tuple_elem(msg, 1) == g->parent)
        stop_server(self, g, amb_tuple_elem(msg, 2));
    apply(self, g, call_info(self, g, msg), CB_OTHER);
}

static int srv_handle(amb_proc *self, void *block, amb_term msg)
{
    gen_srv *g = block;
    if (g->timer_armed && is_current_timeout(g, msg)) {
        g->timer_armed = false; /* it fired: dispatch calls handle_info */
    } else if (g->timer_armed) {
        g->timer_armed = false;
        /* Not found: it fired and its message is queued; its Seq is stale
         * once the next timeout is armed, and dropped if it comes first. */
        if (amb_cancel_timer(self, g->timer, NULL) != 0)
            g->timer_seq++;
    }
    dispatch(self, g, msg);
    if (!g->cb->state_term)
        amb_heap_rewind(amb_proc_heap(self), g->base);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Init
 * ------------------------------------------------------------------------ */

/* What the start message says, with its terms copied onto the server's
 * heap (the message is borrowed, and user init may receive). */
typedef struct start_info {
    const amb_gen_server *cb;
    void *arg;
    amb_term name, alias; /* name: AMB_NONE for none */
    amb_pid starter;
    bool link;
} start_info;

/* Acks the starter: {Alias, Value}. */
static int ack(amb_proc *self, const start_info *st, amb_term value)
{
    return amb__gen_send_tagged(self, st->alias, st->alias, value);
}

/* Ends a server whose start failed: its name goes, and the starter learns
 * of the failure from the ack or from its monitor's DOWN, not from an exit
 * signal (OTP 26's init_fail). */
static _Noreturn void init_end(amb_proc *self, gen_srv *g, const start_info *st,
                               amb_term reason)
{
    if (g->name != AMB_NONE)
        amb__gen_unregister(self, g->name);
    if (st->link)
        amb_unlink(self, st->starter);
    amb_exit_self(self, reason);
}

/* Ends a server whose init did not succeed, after the ack. */
static _Noreturn void init_fail(amb_proc *self, gen_srv *g, const start_info *st,
                                amb_term ackv, amb_term reason)
{
    ack(self, st, ackv); /* lost for want of memory: the DOWN says it */
    init_end(self, g, st, reason);
}

typedef struct start_wait {
    amb_term mref;
} start_wait;

static bool is_start_or_down(void *ctx, amb_term m)
{
    const start_wait *w = ctx;
    if (amb_tuple_arity(m) == 7 &&
        amb_tuple_elem(m, 0) == amb__gen_atoms_get()->gen_start)
        return true;
    return amb_tuple_arity(m) == 5 && amb_tuple_elem(m, 0) == AMB_ATOM_DOWN &&
           amb_equal(amb_tuple_elem(m, 1), w->mref);
}

/* Ends a server that could not read its start message (a call failed with
 * rc): before the ack, so the starter sees the DOWN and fails with
 * AMB_EINIT and {error, 'AMB_E...'}. Unlinked first (a no-op without a
 * link), so the failed start is that error, never an exit signal. */
static _Noreturn void start_failed(amb_proc *self, amb_pid starter, int rc)
{
    amb_gen_ret fail = amb_gen_fail(rc);
    amb_unlink(self, starter);
    amb_exit_self(self, stop_reason(self, &fail));
}

/* Waits for the start message ({'$gen_start', Alias, Cb, Arg, Name, {} |
 * {ArgTerm}, Link}, client.c) and reads it into *st. The starter sends it
 * right after the spawn; when the starter ends first, nobody waits for this
 * server and it ends quietly. Everything the server needs travels by value,
 * so a starter killed meanwhile leaves nothing dangling. */
static void read_start(amb_proc *self, gen_srv *g, amb_pid starter, start_info *st)
{
    amb_heap *h = amb_proc_heap(self);
    start_wait w;
    amb_term m;
    int rc = amb_monitor(self, starter, &w.mref);
    if (rc == 0)
        rc = amb_receive_if(self, is_start_or_down, &w, AMB_INFINITY, &m);
    if (rc != 0)
        start_failed(self, starter, rc);
    if (amb_tuple_arity(m) != 7)
        amb_exit_self(self, AMB_ATOM_NORMAL); /* the starter is gone */
    amb_demonitor(self, w.mref, AMB_DEMONITOR_FLUSH);
    uint64_t cb = 0, arg = 0;
    amb_uint_get(amb_tuple_elem(m, 2), &cb);
    amb_uint_get(amb_tuple_elem(m, 3), &arg);
    st->cb = (const amb_gen_server *)(uintptr_t)cb;
    st->arg = (void *)(uintptr_t)arg;
    st->starter = starter;
    st->link = amb_tuple_elem(m, 6) == AMB_ATOM_TRUE;
    amb_term name = amb_tuple_elem(m, 4), box = amb_tuple_elem(m, 5);
    if (amb_term_copy(h, amb_tuple_elem(m, 1), &st->alias) != 0 ||
        amb_term_copy(h, name, &st->name) != 0 ||
        (amb_tuple_arity(box) == 1 &&
         amb_term_copy(h, amb_tuple_elem(box, 0), &g->arg_term) != 0))
        start_failed(self, starter, AMB_ENOMEM);
    if (st->name == AMB_ATOM_UNDEFINED)
        st->name = AMB_NONE;
    if (amb_tuple_arity(box) == 1)
        st->arg = &g->arg_term; /* the term passed by value */
}

static int srv_init(amb_proc *self, void *block, void *arg)
{
    gen_srv *g = block;
    amb_heap *h = amb_proc_heap(self);
    start_info sti, *st = &sti;
    g->name = AMB_NONE;
    read_start(self, g, (amb_pid)(uintptr_t)arg, st);
    g->cb = st->cb;
    g->state = st->cb->state_size > 0 ? (char *)block + SRV_BYTES : st->arg;
    if (st->cb->state_term) {
        g->state = &g->state_term;
        g->state_term = AMB_ATOM_UNDEFINED; /* until init sets it */
    } else if (st->cb->state_size > CLASS_MAX) {
        /* Too big for a class: its own zeroed block, freed however the
         * server ends. */
        g->state = amb_malloc(st->cb->state_size);
        if (g->state == NULL || amb_on_exit(self, amb_free, g->state) != 0) {
            amb_free(g->state);
            g->state = NULL;
            amb_gen_ret fail = amb_gen_fail(AMB_ENOMEM);
            amb_term why = stop_reason(self, &fail);
            init_fail(self, g, st, AMB_TUPLE(h, AMB_ATOM_ERROR, why), why);
        }
        memset(g->state, 0, st->cb->state_size);
    }
    g->parent = st->link ? st->starter : AMB_NONE;
    if (st->name != AMB_NONE) {
        amb_pid holder;
        int rc = amb__gen_register(self, st->name, &holder);
        if (rc == AMB_EEXIST)
            init_fail(self, g, st, AMB_TUPLE(h, AMB_ATOM_ALREADY_STARTED, holder),
                      AMB_ATOM_NORMAL);
        if (rc != 0) {
            amb_gen_ret fail = amb_gen_fail(rc);
            amb_term why = stop_reason(self, &fail);
            init_fail(self, g, st, AMB_TUPLE(h, AMB_ATOM_ERROR, why), why);
        }
        g->name = st->name;
    }
    amb_gen_ret r =
        checked(g, st->cb->init ? st->cb->init(self, g->state, st->arg) : amb_gen_ok());
    /* A bad result fails the start (before the ack), a timeout out of range
     * included, rather than starting a server that ends at once. */
    if (!result_ok(&r, CB_INIT)) {
        amb_term why = bad_return(self, &r, CB_INIT);
        init_fail(self, g, st, AMB_TUPLE(h, AMB_ATOM_ERROR, why), why);
    }
    if (r.action == AMB_GEN_IGNORE)
        init_fail(self, g, st, AMB_ATOM_IGNORE, AMB_ATOM_NORMAL);
    if (r.action == AMB_GEN_STOP) {
        amb_term why = stop_reason(self, &r);
        init_fail(self, g, st, AMB_TUPLE(h, AMB_ATOM_ERROR, why), why);
    }
    if (ack(self, st, AMB_ATOM_OK) != 0) {
        /* No memory for the ack: the start fails, and the starter learns
         * it from its monitor's DOWN (which needs none, fail.h) with the
         * reason {error, 'AMB_ENOMEM'}. */
        amb_gen_ret fail = amb_gen_fail(AMB_ENOMEM);
        init_end(self, g, st, stop_reason(self, &fail));
    }
    g->base = amb_heap_save(h);
    apply(self, g, r, CB_INIT);
    if (!g->cb->state_term)
        amb_heap_rewind(h, g->base);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Handler tables by state size class
 * ------------------------------------------------------------------------ */

#define CLASS(user)                                                              \
    {                                                                            \
        .state_size = SRV_BYTES + (user), .init = srv_init, .handle = srv_handle \
    }
static const amb_handler classes[] = {
    CLASS(0),    CLASS(16),    CLASS(32),    CLASS(64),    CLASS(128),
    CLASS(256),  CLASS(512),   CLASS(1024),  CLASS(2048),  CLASS(4096),
    CLASS(8192), CLASS(16384), CLASS(32768), CLASS(65536),
};

/* A term state: the bookkeeping alone, its first words the term slots. */
static const amb_handler term_class = {.state_size = SRV_BYTES,
                                       .init = srv_init,
                                       .handle = srv_handle,
                                       .state_terms = SRV_TERMS};

const amb_handler *amb__gen_handler_for(const amb_gen_server *cb)
{
    _Static_assert(offsetof(gen_srv, state_term) == 0 &&
                       offsetof(gen_srv, arg_term) == (SRV_TERMS - 1) * sizeof(amb_term),
                   "the term slots come first");
    if (cb->state_term)
        return &term_class;
    for (size_t i = 0; i < AMB_COUNTOF(classes); i++)
        if (classes[i].state_size - SRV_BYTES >= cb->state_size)
            return &classes[i];
    return &classes[0]; /* srv_init allocates the state */
}

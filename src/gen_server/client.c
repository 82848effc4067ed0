/*
 * client.c - the functions other processes use to talk to a gen_server:
 * start, call, cast, reply, stop, multi_call, abcast.
 *
 * Invariants:
 *   - Every waiting function monitors its target and waits with a selective
 *     receive after a mark taken before the monitor, so it never takes (nor
 *     reorders) a message of the caller's that arrived before, and a dead
 *     target ends the wait at once.
 *   - Replies and acks come through an alias that is gone once the wait is
 *     over (answered, timed out, target down), so nothing sent to it later
 *     reaches the caller: a call's is its monitor's reference (an alias
 *     monitor, reply_demonitor: a DOWN taken in ends it before a reply that
 *     came after it is looked at), a start's is made with AMB_ALIAS_REPLY
 *     (the server acks before it can end).
 *   - The caller's heap is rewound to where it was on entry; results for the
 *     caller are copied onto it after the rewind (or are borrowed from the
 *     received message, as receive's results are).
 */
#include "gen.h"

/* ---------------------------------------------------------------------------
 * Waiting for an answer or a DOWN
 * ------------------------------------------------------------------------ */

typedef struct waiter {
    amb_term alias, mref;
} waiter;

static bool is_answer(void *ctx, amb_term msg)
{
    const waiter *w = ctx;
    size_t n = amb_tuple_arity(msg);
    if (n == 2)
        return amb_equal(amb_tuple_elem(msg, 0), w->alias);
    return n == 5 && amb_tuple_elem(msg, 0) == AMB_ATOM_DOWN &&
           amb_equal(amb_tuple_elem(msg, 1), w->mref);
}

static bool is_down(void *ctx, amb_term msg)
{
    const waiter *w = ctx;
    return amb_tuple_arity(msg) == 5 && amb_tuple_elem(msg, 0) == AMB_ATOM_DOWN &&
           amb_equal(amb_tuple_elem(msg, 1), w->mref);
}

static bool is_down_msg(amb_term msg)
{
    return amb_tuple_arity(msg) == 5 && amb_tuple_elem(msg, 0) == AMB_ATOM_DOWN;
}

static bool match_none(void *ctx, amb_term msg)
{
    (void)ctx;
    (void)msg;
    return false;
}

/* 0 when the caller may wait here, AMB_ESTATE inside a receive's match
 * function (process.h refuses waits there). Asked with a receive after the
 * caller's mark that takes nothing and does not wait (O(1)), before anything
 * is spawned or sent: a refused call did nothing. */
static int may_wait(amb_proc *self, amb_recv_mark mark)
{
    int rc = amb_receive_if_after(self, mark, match_none, NULL, 0, NULL);
    return rc == AMB_ETIMEDOUT ? 0 : rc;
}

/* Ends a wait: the alias (if still active) and the monitor go; a DOWN of
 * it already queued is removed. */
static void wait_done(amb_proc *self, const waiter *w)
{
    if (w->alias != AMB_NONE)
        amb_unalias(self, w->alias);
    amb_demonitor(self, w->mref, AMB_DEMONITOR_FLUSH);
}

int amb__gen_send_tagged(amb_proc *self, amb_term to, amb_term tag, amb_term value)
{
    amb_heap *h = amb_proc_heap(self);
    if (h == NULL)
        return AMB_ENOMEM;
    amb_heap_mark m = amb_heap_save(h);
    amb_term msg = AMB_TUPLE(h, tag, value);
    int rc = msg == AMB_NONE ? AMB_ENOMEM : amb_send(self, to, msg);
    amb_heap_rewind(h, m);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Start
 * ------------------------------------------------------------------------ */

/* After an unsuccessful ack or a timeout: waits until the server is gone. */
static void await_down(amb_proc *self, amb_recv_mark mark, waiter *w)
{
    amb_term m;
    amb_receive_if_after(self, mark, is_down, w, AMB_INFINITY, &m);
}

/* Copies t onto the caller's heap through a scratch heap, since t lives in
 * a message the next receive frees and the caller's heap is about to be
 * rewound. *dst = AMB_ATOM_ERROR when memory runs out. */
static void keep_reason(amb_heap **tmp, amb_term t, amb_term *held)
{
    *held = AMB_ATOM_ERROR;
    if (amb_heap_new(tmp) == 0 && amb_term_copy(*tmp, t, held) != 0)
        *held = AMB_ATOM_ERROR;
}
static void give_reason(amb_heap *h, amb_heap *tmp, amb_term held, amb_term *dst)
{
    if (dst != NULL && amb_term_copy(h, held, dst) != 0)
        *dst = AMB_ATOM_ERROR;
    amb_heap_free(tmp);
}

/* True for {error, 'AMB_ENOMEM'}: the reason of a server that ran out of
 * memory (amb_gen_fail; server.c's start_failed). */
static bool is_enomem_reason(amb_term t)
{
    return amb_tuple_arity(t) == 2 && amb_tuple_elem(t, 0) == AMB_ATOM_ERROR &&
           amb_tuple_elem(t, 1) == amb_atom(amb_err_name(AMB_ENOMEM));
}

/* Reads the ack (before anything else is received: it is borrowed). */
static int read_ack(amb_term ackv, amb_pid *holder, amb_term *why)
{
    if (ackv == AMB_ATOM_OK)
        return 0;
    if (ackv == AMB_ATOM_IGNORE)
        return AMB_EIGNORE;
    amb_term tag = amb_tuple_arity(ackv) == 2 ? amb_tuple_elem(ackv, 0) : AMB_NONE;
    if (tag == AMB_ATOM_ALREADY_STARTED) {
        *holder = amb_tuple_elem(ackv, 1);
        return AMB_EEXIST;
    }
    *why = tag == AMB_ATOM_ERROR ? amb_tuple_elem(ackv, 1) : ackv;
    return AMB_EINIT;
}

/* A timeout the gen_server calls accept (process.h, "Times"). */
static bool timeout_ok(int64_t ms)
{
    return ms == AMB_INFINITY || (ms >= 0 && ms <= AMB_TIMEOUT_MAX);
}

int amb_gen_server_start(amb_proc *self, const amb_gen_server *cb, void *arg,
                         const amb_gen_opts *opts, amb_pid *out, amb_term *reason)
{
    amb_gen_opts none = {0};
    const amb_gen_opts *o = opts != NULL ? opts : &none;
    if (self == NULL || cb == NULL || !timeout_ok(o->timeout_ms) ||
        (o->name != AMB_NONE && !amb__gen_name_ok(o->name)))
        return AMB_EBADARG;
    amb_heap *h = amb_proc_heap(self);
    if (h == NULL)
        return AMB_ENOMEM;
    amb_heap_mark hm = amb_heap_save(h);
    waiter w = {AMB_NONE, AMB_NONE};
    amb_recv_mark mark = amb_receive_mark(self);
    int rc = may_wait(self, mark);
    if (rc == 0)
        rc = amb_alias(self, AMB_ALIAS_REPLY, &w.alias);
    if (rc != 0)
        return rc;
    /* Everything the server needs travels in its first message (server.c,
     * read_start): nothing of this stack or heap is read by the server, so
     * this process may be killed while it waits. */
    amb_term msg = AMB_TUPLE(
        h, amb__gen_atoms_get()->gen_start, w.alias, amb_uint(h, (uintptr_t)cb),
        amb_uint(h, (uintptr_t)arg), o->name != AMB_NONE ? o->name : AMB_ATOM_UNDEFINED,
        o->arg_term != AMB_NONE ? AMB_TUPLE(h, o->arg_term) : amb_tuple(h, 0, NULL),
        o->link ? AMB_ATOM_TRUE : AMB_ATOM_FALSE);
    amb_pid pid;
    amb_spawn_opts so = {.handler = amb__gen_handler_for(cb->state_size),
                         .link = o->link,
                         .monitor = true};
    rc = msg == AMB_NONE ? AMB_ENOMEM
                         : amb_spawn_opt(self, NULL, (void *)(uintptr_t)amb_self(self),
                                         &so, &pid, &w.mref);
    if (rc == 0 && (rc = amb_send(self, pid, msg)) != 0) {
        /* The server waits for the start message: end it. */
        if (o->link)
            amb_unlink(self, pid);
        amb_exit(self, pid, AMB_ATOM_KILL);
        await_down(self, mark, &w);
        amb_demonitor(self, w.mref, AMB_DEMONITOR_FLUSH);
    }
    if (rc != 0) {
        amb_unalias(self, w.alias);
        amb_heap_rewind(h, hm);
        return rc;
    }
    amb_term m;
    int64_t timeout = o->timeout_ms != 0 ? o->timeout_ms : AMB_INFINITY;
    rc = amb_receive_if_after(self, mark, is_answer, &w, timeout, &m);
    amb_heap *tmp = NULL;
    amb_term held = AMB_NONE;
    if (rc == AMB_ETIMEDOUT) {
        /* OTP's start timeout: the server is killed, the start fails. The
         * alias goes first, so an ack sent just before the kill is dropped
         * instead of staying in this mailbox. */
        amb_unalias(self, w.alias);
        if (o->link)
            amb_unlink(self, pid);
        amb_exit(self, pid, AMB_ATOM_KILL);
        await_down(self, mark, &w);
    } else if (rc == 0 && is_down_msg(m)) {
        /* It died during init without an ack: the DOWN is consumed. */
        keep_reason(&tmp, amb_tuple_elem(m, 4), &held);
        rc = AMB_EINIT;
    } else if (rc == 0) {
        amb_pid holder = AMB_NONE;
        amb_term why = AMB_NONE;
        rc = read_ack(amb_tuple_elem(m, 1), &holder, &why);
        if (rc == AMB_EINIT)
            keep_reason(&tmp, why, &held);
        if (rc != 0)
            await_down(self, mark, &w); /* it ends right after the ack */
        if (rc == AMB_EEXIST && out != NULL)
            *out = holder;
        if (rc == 0 && out != NULL)
            *out = pid;
    }
    wait_done(self, &w);
    amb_heap_rewind(h, hm);
    /* A start that failed for want of memory, in the server's set-up or
     * its init, is that error (with the reason too). */
    if (rc == AMB_EINIT && is_enomem_reason(held))
        rc = AMB_ENOMEM;
    if (held != AMB_NONE)
        give_reason(h, tmp, held, reason);
    return rc;
}

int amb_gen_server_start_link(amb_proc *self, const amb_gen_server *cb, void *arg,
                              amb_pid *out, amb_term *reason)
{
    amb_gen_opts o = {.link = true};
    return amb_gen_server_start(self, cb, arg, &o, out, reason);
}

/* ---------------------------------------------------------------------------
 * Call, cast, reply
 * ------------------------------------------------------------------------ */

/* What a call and a stop share: the server resolved (not the caller
 * itself), the mailbox and the heap marked, the server monitored. */
typedef struct wait_scope {
    amb_pid pid;
    amb_heap *h;
    amb_heap_mark hm;
    amb_recv_mark mark;
    waiter w;
} wait_scope;

/* 0, or an error with nothing left behind. The monitor is an alias
 * monitor of kind alias (its reference in both ws->w.mref and ws->w.alias),
 * or a plain one (AMB_MONITOR_NO_ALIAS). */
static int wait_begin(amb_proc *self, amb_term server, amb_monitor_alias alias,
                      wait_scope *ws)
{
    int rc = amb__gen_resolve(self, server, &ws->pid);
    if (rc != 0)
        return rc;
    if (ws->pid == amb_self(self))
        return AMB_EDEADLK;
    ws->h = amb_proc_heap(self);
    if (ws->h == NULL)
        return AMB_ENOMEM;
    ws->hm = amb_heap_save(ws->h);
    ws->w = (waiter){AMB_NONE, AMB_NONE};
    ws->mark = amb_receive_mark(self);
    rc = may_wait(self, ws->mark);
    amb_monitor_opts mo = {.alias = alias};
    if (rc == 0)
        rc = amb_monitor_opt(self, ws->pid, &mo, &ws->w.mref);
    if (rc != 0)
        amb_heap_rewind(ws->h, ws->hm);
    else if (alias != AMB_MONITOR_NO_ALIAS)
        ws->w.alias = ws->w.mref;
    return rc;
}

int amb_gen_server_call(amb_proc *self, amb_term server, amb_term request,
                        int64_t timeout_ms, amb_term *reply)
{
    if (self == NULL || request == AMB_NONE || !timeout_ok(timeout_ms))
        return AMB_EBADARG;
    /* One reference is the monitor and the reply's alias (OTP's
     * monitor(process, Server, [{alias, reply_demonitor}])): the reply, taken
     * in, ends the alias and the monitor; the DOWN, taken in, ends the alias,
     * so a reply sent after the server died (by a process it handed the
     * request to) is dropped wherever it is (issue 13, item 6). */
    wait_scope ws;
    int rc = wait_begin(self, server, AMB_MONITOR_ALIAS_REPLY_DEMONITOR, &ws);
    if (rc != 0)
        return rc;
    amb_heap *h = ws.h;
    amb_term msg = AMB_TUPLE(h, AMB_ATOM_GEN_CALL,
                             AMB_TUPLE(h, amb_self(self), ws.w.alias), request);
    rc = msg == AMB_NONE ? AMB_ENOMEM : amb_send(self, ws.pid, msg);
    amb_term m = AMB_NONE;
    if (rc == 0)
        rc = amb_receive_if_after(self, ws.mark, is_answer, &ws.w, timeout_ms, &m);
    if (rc == 0 && is_down_msg(m)) {
        /* The DOWN is consumed, and took the alias with it. */
        amb_term why = amb_tuple_elem(m, 4);
        rc = why == AMB_ATOM_NOPROC ? AMB_ENOPROC : AMB_EEXIT;
        if (rc == AMB_EEXIT && reply != NULL)
            *reply = why;
    } else if (rc == 0) {
        /* The reply took the alias and the monitor with it. */
        if (reply != NULL)
            *reply = amb_tuple_elem(m, 1);
    } else {
        /* A timeout: the monitor and its alias go, so a reply on its way is
         * dropped when it arrives. The monitor is active, so no DOWN of it
         * is in the queue and none will be. */
        amb_demonitor(self, ws.w.mref, 0);
    }
    amb_heap_rewind(h, ws.hm);
    return rc;
}

int amb_gen_server_cast(amb_proc *self, amb_term server, amb_term msg)
{
    if (self == NULL || msg == AMB_NONE)
        return AMB_EBADARG;
    amb_pid pid;
    int rc = amb__gen_resolve(self, server, &pid);
    if (rc == AMB_ENOPROC)
        return 0; /* a cast to nobody is not an error (OTP) */
    if (rc != 0)
        return rc;
    return amb__gen_send_tagged(self, pid, AMB_ATOM_GEN_CAST, msg);
}

int amb_gen_server_reply(amb_proc *self, amb_term from, amb_term reply)
{
    if (self == NULL || reply == AMB_NONE || amb_tuple_arity(from) != 2 ||
        amb_type_of(amb_tuple_elem(from, 1)) != AMB_T_REF)
        return AMB_EBADARG;
    amb_term alias = amb_tuple_elem(from, 1);
    return amb__gen_send_tagged(self, alias, alias, reply);
}

/* ---------------------------------------------------------------------------
 * Stop
 * ------------------------------------------------------------------------ */

int amb_gen_server_stop(amb_proc *self, amb_term server, amb_term reason,
                        int64_t timeout_ms)
{
    if (self == NULL || reason == AMB_NONE || !timeout_ok(timeout_ms))
        return AMB_EBADARG;
    wait_scope ws;
    int rc = wait_begin(self, server, AMB_MONITOR_NO_ALIAS, &ws);
    if (rc != 0)
        return rc;
    rc = amb__gen_send_tagged(self, ws.pid, amb__gen_atoms_get()->gen_stop, reason);
    amb_term m;
    if (rc == 0)
        rc = amb_receive_if_after(self, ws.mark, is_down, &ws.w, timeout_ms, &m);
    if (rc == 0) {
        amb_term why = amb_tuple_elem(m, 4);
        rc = why == AMB_ATOM_NOPROC   ? AMB_ENOPROC
             : amb_equal(why, reason) ? 0
                                      : AMB_EEXIT;
    } else {
        amb_demonitor(self, ws.w.mref, AMB_DEMONITOR_FLUSH);
    }
    amb_heap_rewind(ws.h, ws.hm);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Many nodes
 * ------------------------------------------------------------------------ */

/* The node list: nodes itself, or [node()] for AMB_NONE. AMB_EBADARG for a
 * list of anything but atoms. */
static int node_list(amb_proc *self, amb_term nodes, amb_term *out)
{
    if (nodes == AMB_NONE) {
        amb_term node;
        uint32_t id, serial, creation;
        amb_pid_get(amb_self(self), &node, &id, &serial, &creation);
        *out = amb_cons(amb_proc_heap(self), node, AMB_NIL);
        return *out == AMB_NONE ? AMB_ENOMEM : 0;
    }
    for (amb_term l = nodes; !amb_is_nil(l); l = amb_list_tail(l))
        if (!amb_is_cons(l) || !amb_is_atom(amb_list_head(l)))
            return AMB_EBADARG;
    *out = nodes;
    return 0;
}

int amb_gen_server_multi_call(amb_proc *self, amb_term nodes, amb_term name,
                              amb_term request, int64_t timeout_ms, amb_term *replies,
                              amb_term *bad_nodes)
{
    if (self == NULL || !amb_is_atom(name) || replies == NULL || request == AMB_NONE ||
        !timeout_ok(timeout_ms))
        return AMB_EBADARG;
    amb_term list;
    int rc = node_list(self, nodes, &list);
    if (rc != 0)
        return rc;
    amb_heap *h = amb_proc_heap(self);
    amb_term good = AMB_NIL, bad = AMB_NIL;
    for (amb_term l = list; !amb_is_nil(l); l = amb_list_tail(l)) {
        amb_term node = amb_list_head(l), reply, kept;
        amb_term server = AMB_TUPLE(h, name, node);
        rc = server == AMB_NONE
                 ? AMB_ENOMEM
                 : amb_gen_server_call(self, server, request, timeout_ms, &reply);
        if (rc == 0 && amb_term_copy(h, reply, &kept) == 0)
            good = amb_cons(h, AMB_TUPLE(h, node, kept), good);
        else if (rc == AMB_ENOMEM)
            return rc;
        else
            bad = amb_cons(h, node, bad);
    }
    if (good == AMB_NONE || bad == AMB_NONE)
        return AMB_ENOMEM;
    *replies = good;
    if (bad_nodes != NULL)
        *bad_nodes = bad;
    return 0;
}

int amb_gen_server_abcast(amb_proc *self, amb_term nodes, amb_term name, amb_term msg)
{
    if (self == NULL || !amb_is_atom(name) || msg == AMB_NONE)
        return AMB_EBADARG;
    amb_term list;
    int rc = node_list(self, nodes, &list);
    if (rc != 0)
        return rc;
    amb_heap *h = amb_proc_heap(self);
    for (amb_term l = list; !amb_is_nil(l); l = amb_list_tail(l)) {
        amb_term server = AMB_TUPLE(h, name, amb_list_head(l));
        if (server == AMB_NONE)
            return AMB_ENOMEM;
        rc = amb_gen_server_cast(self, server, msg);
        if (rc != 0 && rc != AMB_ENOTSUP)
            return rc;
    }
    return 0;
}

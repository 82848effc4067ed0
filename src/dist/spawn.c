/*
 * spawn.c - remote spawn (DFLAG_SPAWN, OTP 23+), both ways: a peer's
 * SPAWN_REQUEST starts a runner (rpc.c) for a registered C function and is
 * answered with SPAWN_REPLY; amb_spawn_request sends one and turns the
 * SPAWN_REPLY, and the DOWN of a requested monitor, into the caller's
 * messages.
 *
 * A request from a peer (the reader calls amb__spawn_request_in):
 *   options checked (link, monitor and the spawn options that mean nothing
 *   to a C process; anything else: badopt), the runner spawned, the link
 *   and the monitor made as the peer's own LINK and MONITOR_P would make
 *   them, SPAWN_REPLY queued, and only then the runner told what to run.
 *   So the reply leaves before anything the new process sends, and the
 *   link and monitor hold before it runs: its end reaches the requester as
 *   EXIT and DOWN with the real reason, after the reply, as ERTS orders
 *   them. erpc:execute_call(Ref, M, F, A) and erpc:execute_cast(M, F, A)
 *   run M:F; any other M:F runs itself (undef when not registered).
 *
 * A request of ours: an entry in the node's list (d->spawns, under the
 * node's lock) from before the SPAWN_REQUEST leaves until the reply (and,
 * with a monitor, until its DOWN). The reply's flags say what the peer set
 * up: a link is made on our side as an incoming LINK is (so it is a real
 * link of the process tables, ended by noconnection with the connection);
 * a monitor stays the entry's, whose DOWN the reader delivers as a message
 * (the process tables hold no monitor under a reference the peer chose);
 * amb_demonitor reaches it through remote.h's demonitor_held op.
 * A connection that goes down ends its entries: an error reply
 * noconnection, or the DOWN noconnection. A request abandoned (erpc's
 * timeout) loses its entry; its late reply is answered as ERTS answers
 * one: the new process is demonitored and, if linked, sent an exit
 * abandoned.
 *
 * Invariants: an entry is in the list or owned by the one function that
 * took it out (which delivers its last message and frees it); the list is
 * searched linearly (a node has as many entries as requests in flight).
 */
#include <string.h>

#include "dist.h"

typedef struct amb__spawn_req {
    struct amb__spawn_req *next;
    amb_heap *heap; /* req_id, tag, pid */
    amb_term req_id, tag, pid;
    amb_pid requester; /* an own pid (an immediate) */
    amb_term node;     /* an atom */
    uint32_t conn;     /* 0 until known */
    amb_spawn_reply reply;
    bool monitor;
    bool replied; /* a monitor's entry waits for its DOWN */
    bool downing; /* the reader delivers its DOWN now: still listed, and
                     only the reader takes it out (then frees it) */
} spawn_req;

static void req_free(spawn_req *r)
{
    if (r != NULL) {
        amb_heap_free(r->heap);
        amb__free(r);
    }
}

void amb__spawn_free_all(amb__dist *d)
{
    while (d->spawns != NULL) {
        spawn_req *r = d->spawns;
        d->spawns = r->next;
        req_free(r);
    }
}

/* Takes out the first entry for which pick is true. Under the lock. */
static spawn_req *take(amb__dist *d, bool (*pick)(const spawn_req *, const void *),
                       const void *arg)
{
    for (spawn_req **p = &d->spawns; *p != NULL; p = &(*p)->next)
        if (pick(*p, arg)) {
            spawn_req *r = *p;
            *p = r->next;
            r->next = NULL;
            return r;
        }
    return NULL;
}

static bool is_req(const spawn_req *r, const void *arg)
{
    return amb_equal(r->req_id, *(const amb_term *)arg);
}

static bool is_conn(const spawn_req *r, const void *arg)
{
    return r->conn == *(const uint32_t *)arg && !r->downing;
}

static bool is_ptr(const spawn_req *r, const void *arg)
{
    return r == arg;
}

/* The requester's entry of request ref with a monitor, still listed, or
 * NULL. Under the lock. */
static spawn_req *find_monitor(amb__dist *d, amb_pid requester, amb_term ref)
{
    for (spawn_req *r = d->spawns; r != NULL; r = r->next)
        if (r->monitor && r->requester == requester && amb_equal(r->req_id, ref))
            return r;
    return NULL;
}

/* The reply message {Tag, ReqId, ok|error, What}, when the entry's reply
 * mode lets it through. */
static void reply_msg(amb_proc *self, const spawn_req *r, bool ok, amb_term what)
{
    if (r->reply == AMB_SPAWN_REPLY_NO ||
        (ok && r->reply == AMB_SPAWN_REPLY_ERROR_ONLY) ||
        (!ok && r->reply == AMB_SPAWN_REPLY_SUCCESS_ONLY))
        return;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    amb_send(self, r->requester,
             AMB_TUPLE(h, r->tag, r->req_id, ok ? AMB_ATOM_OK : AMB_ATOM_ERROR, what));
    amb_heap_rewind(h, m);
}

static void down_msg(amb_proc *self, const spawn_req *r, amb_term reason)
{
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    amb_send(self, r->requester,
             AMB_TUPLE(h, AMB_ATOM_DOWN, r->req_id, AMB_ATOM_PROCESS, r->pid, reason));
    amb_heap_rewind(h, m);
}

/* The last message of an entry taken out because reason ended it (its
 * connection, or no connection at all), then frees it. */
static void fail(amb_proc *self, spawn_req *r, amb_term reason)
{
    if (r->replied)
        down_msg(self, r, reason);
    else
        reply_msg(self, r, false, reason);
    req_free(r);
}

/* The go message of a runner (rpc.c) for module:function(args): erpc's
 * wrappers stand for the function they apply. */
static amb_term go_msg(amb_heap *h, amb_term m, amb_term f, amb_term args)
{
    amb_term kind = amb_atom("apply"), extra = AMB_NIL;
    amb_term a0, a1, a2, a3;
    if (m == amb_atom("erpc") && f == amb_atom("execute_call") &&
        amb_match(args, "[~w,~w,~w,~w]", &a0, &a1, &a2, &a3) == 0) {
        kind = amb_atom("call");
        extra = a0, m = a1, f = a2, args = a3;
    } else if (m == amb_atom("erpc") && f == amb_atom("execute_cast") &&
               amb_match(args, "[~w,~w,~w]", &a1, &a2, &a3) == 0) {
        m = a1, f = a2, args = a3;
    }
    return AMB_TUPLE(h, amb_atom("$amb_rpc"), kind, m, f, args, extra);
}

/* ===========================================================================
 * Requests of ours
 * ======================================================================== */

/* A spawn request of this node itself, as spawn_request(node(), ...): the
 * runner starts here, with the caller's own link and monitor (the
 * monitor's reference is the request's). */
static int request_here(amb_proc *self, amb__dist *d, amb_term m, amb_term f,
                        amb_term args, const amb_spawn_request_opts *o, amb_term *req_id)
{
    amb_heap *h = amb_proc_heap(self);
    amb_spawn_opts so = {.link = o->link, .monitor = o->monitor, .name = AMB_NONE};
    amb_pid child;
    amb_term ref = AMB_NONE;
    int rc = amb_spawn_opt(self, amb__rpc_runner, d, &so, &child, &ref);
    if (rc == AMB_ESYSLIMIT) {
        spawn_req r = {.req_id = amb_make_ref(self),
                       .requester = amb_self(self),
                       .tag = o->reply_tag != AMB_NONE ? o->reply_tag
                                                       : amb_atom("spawn_reply"),
                       .reply = o->reply};
        reply_msg(self, &r, false, amb_atom("system_limit"));
        *req_id = r.req_id;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (ref == AMB_NONE)
        ref = amb_make_ref(self);
    spawn_req r = {.req_id = ref,
                   .requester = amb_self(self),
                   .tag =
                       o->reply_tag != AMB_NONE ? o->reply_tag : amb_atom("spawn_reply"),
                   .reply = o->reply};
    /* The reply before anything the runner does (its DOWN among them). */
    reply_msg(self, &r, true, child);
    amb_send(self, child, go_msg(h, m, f, args));
    *req_id = ref;
    return 0;
}

int amb_spawn_request(amb_proc *self, amb_term node, const char *module,
                      const char *function, amb_term args,
                      const amb_spawn_request_opts *opts, amb_term *req_id)
{
    amb_spawn_request_opts none = {0};
    const amb_spawn_request_opts *o = opts != NULL ? opts : &none;
    if (self == NULL || req_id == NULL || !amb_is_atom(node) || module == NULL ||
        function == NULL || (unsigned)o->reply > AMB_SPAWN_REPLY_NO)
        return AMB_EBADARG;
    size_t arity = 0;
    amb_term l = args;
    for (; amb_is_cons(l); l = amb_list_tail(l))
        arity++;
    amb_term m = amb_atom(module), f = amb_atom(function);
    if (l != AMB_NIL || arity > 255 || m == AMB_NONE || f == AMB_NONE)
        return AMB_EBADARG;
    amb__dist *d = amb__dist_of(amb_proc_rt(self));
    if (d == NULL || !amb_is_alive(self))
        return AMB_ENOTSUP;
    if (node == amb_node(self))
        return request_here(self, d, m, f, args, o, req_id);
    amb_heap *h = amb_proc_heap(self);
    amb_term ref = amb_make_ref(self);
    amb_term opt_list = AMB_NIL;
    if (o->monitor)
        opt_list = amb_cons(h, amb_atom("monitor"), opt_list);
    if (o->link)
        opt_list = amb_cons(h, amb_atom("link"), opt_list);
    spawn_req *r = amb__calloc(1, sizeof *r);
    if (r == NULL || ref == AMB_NONE || opt_list == AMB_NONE ||
        amb_heap_new(&r->heap) != 0 || amb_term_copy(r->heap, ref, &r->req_id) != 0 ||
        amb_term_copy(r->heap,
                      o->reply_tag != AMB_NONE ? o->reply_tag : amb_atom("spawn_reply"),
                      &r->tag) != 0) {
        req_free(r);
        return AMB_ENOMEM;
    }
    r->pid = AMB_NONE;
    r->requester = amb_self(self);
    r->node = node;
    r->reply = o->reply;
    r->monitor = o->monitor;
    /* The entry takes the connection's number under the lock that finds
     * (or makes) it, so that connection's DOWN, whenever it comes, ends
     * the entry. One that is up tells whether the peer runs remote spawn;
     * one not up yet is asked, and a peer without it never answers. */
    pthread_mutex_lock(&d->lock);
    amb__conn *c = amb__conn_get(d, node, true);
    uint32_t conn = c != NULL ? c->id : 0;
    bool notsup = c != NULL && c->state == AMB__CONN_UP && !(c->flags & AMB__DFLAG_SPAWN);
    if (c != NULL && !notsup) {
        r->conn = conn;
        r->next = d->spawns;
        d->spawns = r;
    }
    pthread_mutex_unlock(&d->lock);
    *req_id = ref;
    if (c == NULL || notsup) {
        fail(self, r, amb_atom(notsup ? "notsup" : "noconnection"));
        return 0;
    }
    /* No group leaders here: rex answers the I/O of what runs there. */
    amb_pid gl = amb__rpc_rex(d);
    if (gl == AMB_NONE)
        gl = amb_self(self);
    amb__dist_ctl ctl = {.op = AMB__DOP_SPAWN_REQUEST,
                         .ref = ref,
                         .from = amb_self(self),
                         .group_leader = gl,
                         .module = m,
                         .function = f,
                         .arity = (unsigned)arity,
                         .opts = opt_list,
                         .message = args};
    /* Dropped when that connection is gone by now: its DOWN ended the
     * entry (noconnection). */
    amb__conn_queue_on(d, amb__remote_sched(self), node, conn, &ctl);
    return 0;
}

void amb__spawn_unsupported(amb_proc *self, amb__dist *d, amb_term req_id)
{
    pthread_mutex_lock(&d->lock);
    spawn_req *r = take(d, is_req, &req_id);
    pthread_mutex_unlock(&d->lock);
    if (r != NULL) /* else abandoned by now (erpc's timeout) */
        fail(self, r, amb_atom("notsup"));
}

bool amb__spawn_abandon(amb_proc *self, amb_term req_id)
{
    amb__dist *d = amb__dist_of(amb_proc_rt(self));
    if (d == NULL)
        return false;
    pthread_mutex_lock(&d->lock);
    spawn_req *r = take(d, is_req, &req_id);
    if (r != NULL && r->downing) {
        /* Its DOWN (the answer) is on its way: the reader's entry. */
        r->next = d->spawns;
        d->spawns = r;
        r = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    if (r == NULL)
        return false;
    if (r->replied) {
        /* The new process runs: its monitor goes (the link, if any, is the
         * process tables' and stays, as ERTS leaves it). */
        amb__dist_ctl dm = {.op = AMB__DOP_DEMONITOR_P,
                            .from = r->requester,
                            .to = r->pid,
                            .ref = r->req_id};
        amb__conn_queue_on(d, amb__remote_sched(self), r->node, r->conn, &dm);
    }
    req_free(r);
    return true;
}

void amb__spawn_reply_in(amb_proc *self, amb__conn *c, const amb__dist_ctl *ctl)
{
    amb__dist *d = c->d;
    bool ok = amb_type_of(ctl->result) == AMB_T_PID &&
              amb__dist_node_of(ctl->result) == c->node;
    bool linked = ok && (ctl->spawn_flags & 1), monitored = ok && (ctl->spawn_flags & 2);
    pthread_mutex_lock(&d->lock);
    spawn_req *r = take(d, is_req, &ctl->ref);
    if (r != NULL && (r->requester != ctl->to || r->replied)) {
        /* Not this requester's: back where it was. */
        r->next = d->spawns;
        d->spawns = r;
        r = NULL;
        pthread_mutex_unlock(&d->lock);
        return;
    }
    /* An entry kept for its monitor's DOWN is back in the list when the
     * lock goes, where its requester's amb__spawn_abandon may take and free
     * it at once: what the reply needs is copied first. */
    spawn_req reply;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark mark = amb_heap_save(h);
    if (r != NULL) {
        reply = *r;
        if (amb_term_copy(h, r->tag, &reply.tag) != 0 ||
            amb_term_copy(h, r->req_id, &reply.req_id) != 0)
            amb__panic("out of memory answering a spawn request");
    }
    /* Demonitored before the reply (amb__spawn_demonitor): the peer's
     * monitor is dropped below, and the entry does not wait for a DOWN. */
    bool dropped = r != NULL && monitored && !r->monitor;
    if (dropped)
        monitored = false;
    if (r != NULL && monitored) {
        if (amb_term_copy(r->heap, ctl->result, &r->pid) != 0)
            amb__panic("out of memory keeping a spawn request's monitor");
        r->replied = true;
        r->conn = c->id;
        r->next = d->spawns;
        d->spawns = r;
    }
    pthread_mutex_unlock(&d->lock);
    if (r == NULL) {
        /* Abandoned (or never ours): the new process is let go as ERTS lets
         * it go. */
        if (monitored) {
            amb__dist_ctl dm = {.op = AMB__DOP_DEMONITOR_P,
                                .from = ctl->to,
                                .to = ctl->result,
                                .ref = ctl->ref};
            amb__conn_queue_on(d, amb__remote_sched(self), c->node, c->id, &dm);
        }
        if (linked) {
            amb__dist_ctl ex = {.op = AMB__DOP_EXIT2,
                                .from = ctl->to,
                                .to = ctl->result,
                                .reason = amb_atom("abandoned")};
            amb__conn_queue_on(d, amb__remote_sched(self), c->node, c->id, &ex);
        }
        amb_heap_rewind(h, mark);
        return;
    }
    if (dropped) {
        amb__dist_ctl dm = {.op = AMB__DOP_DEMONITOR_P,
                            .from = reply.requester,
                            .to = ctl->result,
                            .ref = reply.req_id};
        amb__conn_queue_on(d, amb__remote_sched(self), c->node, c->id, &dm);
    }
    if (linked) {
        amb__conn_interested(c, reply.requester);
        amb__remote_link(self, ctl->result, reply.requester, c->id);
    }
    reply_msg(self, &reply, ok, ctl->result);
    amb_heap_rewind(h, mark);
    if (!monitored)
        req_free(r); /* not in the list: still this function's */
}

bool amb__spawn_down_in(amb_proc *self, amb__conn *c, const amb__dist_ctl *ctl)
{
    amb__dist *d = c->d;
    pthread_mutex_lock(&d->lock);
    spawn_req *r = take(d, is_req, &ctl->ref);
    if (r != NULL) {
        /* Listed while its DOWN is delivered, so that the requester's
         * amb_demonitor waits for it (its flush then finds it). */
        r->next = d->spawns;
        d->spawns = r;
        if (!r->replied || r->requester != ctl->to || r->conn != c->id)
            r = NULL;
        else
            r->downing = true;
    }
    pthread_mutex_unlock(&d->lock);
    if (r == NULL)
        return false;
    down_msg(self, r, ctl->reason);
    pthread_mutex_lock(&d->lock);
    AMB__CHECK(take(d, is_ptr, r) == r);
    pthread_mutex_unlock(&d->lock);
    req_free(r);
    return true;
}

bool amb__spawn_demonitor(amb_proc *self, amb_term ref)
{
    amb__dist *d = amb__dist_of(amb_proc_rt(self));
    if (d == NULL || amb_type_of(ref) != AMB_T_REF)
        return false;
    amb_pid me = amb_self(self);
    for (;;) {
        pthread_mutex_lock(&d->lock);
        spawn_req *r = find_monitor(d, me, ref);
        if (r == NULL) {
            pthread_mutex_unlock(&d->lock);
            return false;
        }
        if (r->downing) {
            /* Its DOWN is being delivered: once it is in the mailbox the
             * monitor has fired (a flush finds the DOWN). */
            pthread_mutex_unlock(&d->lock);
            amb_yield(self);
            continue;
        }
        if (!r->replied) {
            /* The reply drops the monitor when it comes. */
            r->monitor = false;
            pthread_mutex_unlock(&d->lock);
            return true;
        }
        AMB__CHECK(take(d, is_ptr, r) == r);
        pthread_mutex_unlock(&d->lock);
        amb__dist_ctl dm = {
            .op = AMB__DOP_DEMONITOR_P, .from = me, .to = r->pid, .ref = r->req_id};
        amb__conn_queue_on(d, amb__remote_sched(self), r->node, r->conn, &dm);
        req_free(r);
        return true;
    }
}

void amb__spawn_conn_down(amb_proc *self, amb__dist *d, uint32_t conn)
{
    for (;;) {
        pthread_mutex_lock(&d->lock);
        spawn_req *r = take(d, is_conn, &conn);
        pthread_mutex_unlock(&d->lock);
        if (r == NULL)
            return;
        fail(self, r, amb_atom("noconnection"));
    }
}

/* ===========================================================================
 * Requests from a peer
 * ======================================================================== */

/* Checks a SPAWN_REQUEST's options: 0 and the link and monitor asked for,
 * or AMB_EBADARG (badopt). The others are BEAM's process tuning, which
 * means nothing to a C process. */
static int options(amb_term opts, bool *link, bool *monitor)
{
    static const char *const tuning[] = {
        "priority",      "fullsweep_after",    "min_heap_size", "min_bin_vheap_size",
        "max_heap_size", "message_queue_data", "async_dist",    "monitor"};
    *link = *monitor = false;
    for (amb_term l = opts; amb_is_cons(l); l = amb_list_tail(l)) {
        amb_term o = amb_list_head(l);
        if (o == amb_atom("link")) {
            *link = true;
            continue;
        }
        if (o == amb_atom("monitor")) {
            *monitor = true;
            continue;
        }
        bool known = false;
        for (size_t i = 0; i < sizeof tuning / sizeof *tuning && !known; i++)
            known =
                amb_tuple_arity(o) == 2 && amb_tuple_elem(o, 0) == amb_atom(tuning[i]);
        if (!known)
            return AMB_EBADARG;
        if (amb_tuple_elem(o, 0) == amb_atom("monitor"))
            *monitor = true; /* {monitor, Opts}: its options are the caller's side */
    }
    return 0;
}

void amb__spawn_request_in(amb_proc *self, amb__conn *c, const amb__dist_ctl *ctl)
{
    amb__dist *d = c->d;
    amb_heap *h = amb_proc_heap(self);
    amb__dist_ctl rep = {
        .op = AMB__DOP_SPAWN_REPLY, .ref = ctl->ref, .to = ctl->from, .spawn_flags = 0};
    bool link, monitor;
    if (options(ctl->opts, &link, &monitor) != 0) {
        rep.result = amb_atom("badopt");
        amb__conn_queue_on(d, amb__remote_sched(self), c->node, c->id, &rep);
        return;
    }
    amb_pid child;
    if (amb_spawn(self, amb__rpc_runner, d, &child) != 0) {
        rep.result = amb_atom("system_limit");
        amb__conn_queue_on(d, amb__remote_sched(self), c->node, c->id, &rep);
        return;
    }
    if (link || monitor)
        amb__conn_interested(c, child);
    if (link)
        amb__remote_link(self, ctl->from, child, c->id);
    if (monitor)
        amb__remote_monitor(self, ctl->from, child, AMB_NONE, ctl->ref, c->id);
    rep.spawn_flags = (link ? 1u : 0u) | (monitor ? 2u : 0u);
    rep.result = child;
    amb__conn_queue_on(d, amb__remote_sched(self), c->node, c->id, &rep);
    amb_send(self, child, go_msg(h, ctl->module, ctl->function, ctl->message));
}

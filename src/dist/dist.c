/*
 * dist.c - the node of a runtime (include/ambitious/node.h): starting and
 * stopping it, the public calls (node(), nodes(), monitor_node,
 * monitor_nodes, disconnect_node, ping), and the ops the process layer
 * calls for every signal to another node (src/process/remote.h), each
 * turned into its control message and queued on the connection to that
 * node (conn.c).
 *
 * Invariants:
 *   - The node is installed in its runtime once (amb__remote_install) and
 *     stays until amb_rt_free (ops->free); a stopped node answers the ops by
 *     dropping messages and refusing relations (AMB_ENOTSUP), as a runtime
 *     with no node does.
 *   - Every op maps one remote.h call to one control message, in the
 *     caller's order (conn.c keeps it). Relations (link, monitor) register
 *     the local process with the connection they were made over; signals
 *     of a relation (unlink, its exit, demonitor, its DOWN) go only over
 *     that connection.
 *   - Signals with no sending process (amb_rt_send, a teardown's DOWN)
 *     that the wire wants a sender pid for carry net_kernel's pid, as
 *     ERTS's do for system processes.
 */
#include <stdlib.h>
#include <string.h>

#include "dist.h"

static const amb__remote_ops dist_ops;

/* ===========================================================================
 * The ops
 * ======================================================================== */

amb_term amb__dist_node_of(amb_term t)
{
    amb_term node = AMB_NONE;
    uint32_t w[AMB_REF_MAX_WORDS];
    switch (amb_type_of(t)) {
    case AMB_T_PID:
        if (amb_pid_get(t, &node, NULL, NULL, NULL) != 0)
            node = AMB_NONE;
        break;
    case AMB_T_REF:
        if (amb_ref_get(t, w, AMB_REF_MAX_WORDS, &node, NULL, NULL) != 0)
            node = AMB_NONE;
        break;
    case AMB_T_TUPLE:
        if (amb_tuple_arity(t) == 2 && amb_is_atom(amb_tuple_elem(t, 1)))
            node = amb_tuple_elem(t, 1);
        break;
    default:
        break;
    }
    return node;
}

static int op_send(void *ctx, amb__sched *s, amb_pid from, amb_term to, amb_term msg)
{
    amb__dist *d = ctx;
    amb_term node = amb__dist_node_of(to);
    if (node == AMB_NONE)
        return 0;
    amb_pid sender = from != AMB_NONE ? from : d->net_kernel;
    amb__dist_ctl c = {.message = msg};
    switch (amb_type_of(to)) {
    case AMB_T_PID:
        c.op = from != AMB_NONE ? AMB__DOP_SEND_SENDER : AMB__DOP_SEND;
        c.from = from;
        c.to = to;
        break;
    case AMB_T_REF:
        c.op = AMB__DOP_ALIAS_SEND;
        c.from = sender;
        c.to = to;
        break;
    default:
        c.op = AMB__DOP_REG_SEND;
        c.from = sender;
        c.to = amb_tuple_elem(to, 0);
        break;
    }
    return amb__conn_send(d, s, node, &c);
}

static int op_send_wait(void *ctx, amb_proc *self, amb_term to)
{
    return amb__conn_send_wait(ctx, self, amb__dist_node_of(to));
}

static int op_link(void *ctx, amb_proc *self, amb_pid to, uint32_t *conn)
{
    amb__dist_ctl c = {.op = AMB__DOP_LINK, .from = amb_self(self), .to = to};
    return amb__conn_queue(ctx, amb__remote_sched(self), amb__dist_node_of(to), &c,
                           amb_self(self), conn);
}

static void op_unlink(void *ctx, amb_proc *self, amb_pid to, uint64_t id, uint32_t conn)
{
    amb__dist_ctl c = {
        .op = AMB__DOP_UNLINK_ID, .id = id, .from = amb_self(self), .to = to};
    amb__conn_queue_on(ctx, amb__remote_sched(self), amb__dist_node_of(to), conn, &c);
}

static void op_unlink_ack(void *ctx, amb__sched *s, amb_pid from, amb_pid to, uint64_t id,
                          uint32_t conn)
{
    amb__dist_ctl c = {.op = AMB__DOP_UNLINK_ID_ACK, .id = id, .from = from, .to = to};
    amb__conn_queue_on(ctx, s, amb__dist_node_of(to), conn, &c);
}

static void op_exit(void *ctx, amb__sched *s, amb_pid from, amb_pid to, amb_term reason,
                    bool linked, uint32_t conn)
{
    amb__dist_ctl c = {.op = linked ? AMB__DOP_EXIT : AMB__DOP_EXIT2,
                       .from = from,
                       .to = to,
                       .reason = reason};
    if (linked)
        amb__conn_queue_on(ctx, s, amb__dist_node_of(to), conn, &c);
    else
        amb__conn_queue(ctx, s, amb__dist_node_of(to), &c, AMB_NONE, NULL);
}

static int op_monitor(void *ctx, amb_proc *self, amb_term target, amb_term node,
                      amb_term ref, uint32_t *conn)
{
    amb__dist_ctl c = {
        .op = AMB__DOP_MONITOR_P, .from = amb_self(self), .to = target, .ref = ref};
    return amb__conn_queue(ctx, amb__remote_sched(self), node, &c, amb_self(self), conn);
}

static void op_demonitor(void *ctx, amb__sched *s, amb_pid watcher, amb_term target,
                         amb_term node, amb_term ref, uint32_t conn)
{
    amb__dist_ctl c = {
        .op = AMB__DOP_DEMONITOR_P, .from = watcher, .to = target, .ref = ref};
    amb__conn_queue_on(ctx, s, node, conn, &c);
}

static void op_down(void *ctx, amb__sched *s, amb_pid from, amb_term target,
                    amb_pid watcher, amb_term ref, amb_term reason, uint32_t conn)
{
    amb__dist_ctl c = {.op = AMB__DOP_MONITOR_P_EXIT,
                       .from = target,
                       .to = watcher,
                       .ref = ref,
                       .reason = reason};
    /* In the queue of the process that ended, after what it sent (a DOWN
     * by name names no process). */
    amb__conn_queue_as(ctx, s, amb__dist_node_of(watcher), conn, &c, from);
}

static void op_gone(void *ctx, amb__sched *s, amb_pid pid)
{
    (void)s;
    amb__conn_forget(ctx, pid);
}

static bool op_demonitor_held(void *ctx, amb_proc *self, amb_term ref)
{
    (void)ctx;
    return amb__spawn_demonitor(self, ref);
}

static void op_free(void *ctx)
{
    amb__dist *d = ctx;
    /* Every process is gone (their on_exit handlers dropped their
     * references): what is left is the table's. */
    for (size_t i = 0; i < d->conns_cap; i++)
        if (d->conns[i] != NULL)
            amb__conn_unref(d->conns[i]);
    amb__free(d->conns);
    amb__free(d->subs);
    amb__spawn_free_all(d);
    amb__rpc_free(d->rpc);
    amb__epmd_server_free(d->epmd);
    if (d->transport->free != NULL)
        d->transport->free(d->tctx);
    pthread_mutex_destroy(&d->lock);
    amb__free(d);
}

static const amb__remote_ops dist_ops = {
    .send = op_send,
    .send_wait = op_send_wait,
    .link = op_link,
    .unlink = op_unlink,
    .unlink_ack = op_unlink_ack,
    .exit = op_exit,
    .monitor = op_monitor,
    .demonitor = op_demonitor,
    .down = op_down,
    .demonitor_held = op_demonitor_held,
    .gone = op_gone,
    .free = op_free,
};

amb__dist *amb__dist_of(amb_rt *rt)
{
    const amb__remote *r = amb__remote_get(rt);
    return r != NULL && r->ops == &dist_ops ? (amb__dist *)(uintptr_t)r->ctx : NULL;
}

/* The running node of self's runtime, or NULL. */
static amb__dist *running(amb_proc *self)
{
    amb__dist *d = self != NULL ? amb__dist_of(amb_proc_rt(self)) : NULL;
    if (d == NULL)
        return NULL;
    pthread_mutex_lock(&d->lock);
    bool up = d->state == AMB__DIST_RUNNING;
    pthread_mutex_unlock(&d->lock);
    return up ? d : NULL;
}

/* ===========================================================================
 * nodeup / nodedown subscribers
 * ======================================================================== */

void amb__dist_notify(amb_proc *self, amb__dist *d, amb_term node, bool up, bool hidden,
                      amb_term reason)
{
    pthread_mutex_lock(&d->lock);
    size_t n = d->n_subs;
    amb__dist_sub *subs = n ? amb__malloc(n * sizeof *subs) : NULL;
    if (subs != NULL)
        memcpy(subs, d->subs, n * sizeof *subs);
    pthread_mutex_unlock(&d->lock);
    if (n != 0 && subs == NULL)
        amb__panic("out of memory telling monitor_nodes subscribers");
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    amb_term tag = up ? amb_atom("nodeup") : AMB_ATOM_NODEDOWN;
    amb_term type =
        AMB_TUPLE(h, amb_atom("node_type"), amb_atom(hidden ? "hidden" : "visible"));
    amb_term info =
        up ? AMB_LIST(h, type)
           : AMB_LIST(h, type,
                      AMB_TUPLE(h, amb_atom("nodedown_reason"),
                                reason != AMB_NONE ? reason : AMB_ATOM_UNDEFINED));
    amb_term plain = AMB_TUPLE(h, tag, node), full = AMB_TUPLE(h, tag, node, info);
    for (size_t i = 0; i < n; i++) {
        if (hidden && !(subs[i].flags & AMB_MONITOR_NODES_ALL))
            continue;
        amb_send(self, subs[i].pid,
                 (subs[i].flags & AMB_MONITOR_NODES_INFO) ? full : plain);
    }
    amb_heap_rewind(h, m);
    amb__free(subs);
}

/* ===========================================================================
 * Starting and stopping
 * ======================================================================== */

/* The EPMD port: the option, else $ERL_EPMD_PORT, else 4369. */
static uint16_t epmd_port(const amb_node_opts *o)
{
    if (o->epmd_port != 0)
        return o->epmd_port;
    const char *env = getenv("ERL_EPMD_PORT");
    if (env != NULL) {
        char *end;
        long p = strtol(env, &end, 10);
        if (*end == '\0' && p > 0 && p < 65536)
            return (uint16_t)p;
    }
    return 4369;
}

int amb__dist_start(amb_proc *self, const char *name, const amb_node_opts *opts,
                    const amb__dist_transport *t, void *tctx)
{
    amb_node_opts none = {0};
    const amb_node_opts *o = opts != NULL ? opts : &none;
    if (self == NULL || name == NULL || t == NULL ||
        (o->ticktime_ms != 0 &&
         (o->ticktime_ms < 1000 || o->ticktime_ms > AMB_TIMEOUT_MAX)) ||
        (o->setuptime_ms != 0 &&
         (o->setuptime_ms < 0 || o->setuptime_ms > AMB_TIMEOUT_MAX)) ||
        (o->listen_host != NULL && strlen(o->listen_host) >= 64))
        return AMB_EBADARG;
    amb_rt *rt = amb_proc_rt(self);
    if (amb__remote_get(rt) != NULL)
        return AMB_ESTATE;
    amb__dist *d = amb__calloc(1, sizeof *d);
    if (d == NULL)
        return AMB_ENOMEM;
    int rc = amb__nodename_make(name, o->long_names, d->name_text, sizeof d->name_text);
    if (rc == 0 && o->cookie != NULL) {
        size_t n = strlen(o->cookie);
        if (n == 0 || n > sizeof d->cookie)
            rc = AMB_EBADARG;
        else
            memcpy(d->cookie, o->cookie, d->cookie_len = n);
    } else if (rc == 0) {
        char why[256];
        rc = amb__cookie_read(d->cookie, sizeof d->cookie, &d->cookie_len, why,
                              sizeof why);
        if (rc != 0)
            amb_log(self, AMB_LOG_ERROR, "distribution: %s", why);
    }
    if (rc != 0) {
        amb__free(d);
        return rc;
    }
    const char *at = strchr(d->name_text, '@');
    memcpy(d->alive, d->name_text, (size_t)(at - d->name_text));
    strcpy(d->host, at + 1);
    d->name = amb_atom(d->name_text);
    d->rt = rt;
    d->remote = (amb__remote){.ops = &dist_ops, .ctx = d};
    d->long_names = o->long_names;
    d->visible = o->visible;
    d->ticktime_ms = o->ticktime_ms != 0 ? o->ticktime_ms : 60000;
    d->setuptime_ms = o->setuptime_ms != 0 ? o->setuptime_ms : 7000;
    d->send_budget = o->send_budget != 0 ? o->send_budget : AMB_NODE_SEND_BUDGET;
    d->flags = AMB__DFLAGS_NODE | (o->visible ? AMB__DFLAG_PUBLISHED : 0);
    d->transport = t;
    d->tctx = tctx;
    d->port = o->port;
    d->epmd_port = epmd_port(o);
    d->no_embedded_epmd = o->no_embedded_epmd;
    if (o->listen_host != NULL)
        strcpy(d->listen_host, o->listen_host);
    d->state = AMB__DIST_STARTING;
    pthread_mutex_init(&d->lock, NULL);
    if (d->name == AMB_NONE) {
        rc = AMB_ENOMEM;
        goto fail;
    }
    /* net_kernel first: the transport's processes link to it. The name
     * net_kernel may be taken by a program's own process: then no node. */
    rc = amb__rpc_new(d);
    if (rc == 0)
        rc = amb__net_kernel_start(self, d, &d->net_kernel);
    if (rc == AMB_EEXIST)
        rc = AMB_ESTATE;
    if (rc != 0)
        goto fail;
    rc = t->start(d, self, d->net_kernel, &d->creation);
    if (rc == 0)
        rc = amb__remote_set_node(rt, d->name, d->creation);
    if (rc == 0)
        rc = amb__remote_install(rt, &d->remote);
    if (rc != 0) {
        t->stop(d, self);
        amb_gen_server_stop(self, d->net_kernel, AMB_ATOM_SHUTDOWN, AMB_INFINITY);
        goto fail;
    }
    pthread_mutex_lock(&d->lock);
    d->state = AMB__DIST_RUNNING;
    pthread_mutex_unlock(&d->lock);
    /* rex answers rpc's calls once the node runs (a node without it still
     * runs: erpc and spawn requests need no rex). */
    if (amb__rpc_start_rex(self, d) != 0)
        amb_log(self, AMB_LOG_WARNING, "distribution: rex did not start");
    return 0;
fail:
    pthread_mutex_destroy(&d->lock);
    amb__rpc_free(d->rpc);
    amb__free(d);
    return rc;
}

int amb_node_start(amb_proc *self, const char *name, const amb_node_opts *opts)
{
    if (opts != NULL && opts->tls_certfile != NULL)
        return amb__tls_transport_node_start(self, name, opts);
    if (opts != NULL && (opts->tls_keyfile != NULL || opts->tls_cacertfile != NULL))
        return AMB_EBADARG;
    return amb__dist_start(self, name, opts, &amb__tcp_transport, NULL);
}

int amb_node_stop(amb_proc *self)
{
    amb__dist *d = running(self);
    if (d == NULL)
        return self == NULL ? AMB_EBADARG : AMB_ESTATE;
    pthread_mutex_lock(&d->lock);
    d->state = AMB__DIST_STOPPING;
    pthread_mutex_unlock(&d->lock);
    /* Every connection goes down once its writer has sent what was queued
     * (the node's last messages are not lost; a peer that does not read
     * gets the set-up time), its relations ending with noconnection; then
     * the processes: net_kernel's end takes its linked readers, listener
     * and EPMD registration with it. */
    for (;;) {
        amb__conn *c = NULL;
        pthread_mutex_lock(&d->lock);
        for (size_t i = 0; i < d->conns_cap && c == NULL; i++)
            c = d->conns[i];
        if (c != NULL)
            c->refs++;
        pthread_mutex_unlock(&d->lock);
        if (c == NULL)
            break;
        amb__conn_flush(self, c, d->setuptime_ms);
        amb__conn_down(self, c, amb_atom("disconnect"));
        pthread_mutex_lock(&d->lock);
        amb__conn_unref(c);
        pthread_mutex_unlock(&d->lock);
    }
    d->transport->stop(d, self);
    amb_gen_server_stop(self, d->net_kernel, AMB_ATOM_SHUTDOWN, AMB_INFINITY);
    pthread_mutex_lock(&d->lock);
    d->state = AMB__DIST_STOPPED;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* ===========================================================================
 * The public calls
 * ======================================================================== */

amb_term amb_node(amb_proc *self)
{
    amb_term node;
    if (self == NULL || amb_pid_get(amb_self(self), &node, NULL, NULL, NULL) != 0)
        return AMB_NONE;
    return node;
}

bool amb_is_alive(amb_proc *self)
{
    return running(self) != NULL;
}

int amb_nodes(amb_proc *self, unsigned which, amb_term *out)
{
    if (self == NULL || out == NULL || (which & ~(AMB_NODES_CONNECTED | AMB_NODES_THIS)))
        return AMB_EBADARG;
    if (which == 0)
        which = AMB_NODES_VISIBLE;
    amb_heap *h = amb_proc_heap(self);
    amb_term l = AMB_NIL;
    amb__dist *d = running(self);
    if (d != NULL) {
        pthread_mutex_lock(&d->lock);
        for (size_t i = 0; i < d->conns_cap; i++) {
            amb__conn *c = d->conns[i];
            if (c == NULL || c->state != AMB__CONN_UP)
                continue;
            if ((c->hidden && (which & AMB_NODES_HIDDEN)) ||
                (!c->hidden && (which & AMB_NODES_VISIBLE)))
                l = amb_cons(h, c->node, l);
        }
        pthread_mutex_unlock(&d->lock);
    }
    if ((which & AMB_NODES_THIS) && (d != NULL || which == AMB_NODES_THIS))
        l = amb_cons(h, amb_node(self), l);
    if (l == AMB_NONE)
        return AMB_ENOMEM;
    *out = l;
    return 0;
}

int amb_monitor_node(amb_proc *self, amb_term node, bool flag)
{
    if (self == NULL || !amb_is_atom(node))
        return AMB_EBADARG;
    amb__dist *d = running(self);
    if (d == NULL)
        return AMB_ENOTSUP;
    if (node == d->name)
        return 0;
    amb_pid me = amb_self(self);
    pthread_mutex_lock(&d->lock);
    amb__conn *c = amb__conn_get(d, node, flag);
    int rc = 0;
    if (!flag) {
        /* One subscription less (the first of ours found). */
        for (size_t i = 0; c != NULL && i < c->n_node_mons; i++) {
            if (c->node_mons[i] == me) {
                c->node_mons[i] = c->node_mons[--c->n_node_mons];
                break;
            }
        }
    } else if (c != NULL) {
        if (c->n_node_mons == c->cap_node_mons) {
            size_t cap = c->cap_node_mons ? c->cap_node_mons * 2 : 4;
            amb_pid *v = amb__realloc(c->node_mons, cap * sizeof *v);
            if (v == NULL)
                rc = AMB_ENOMEM;
            else {
                c->node_mons = v;
                c->cap_node_mons = cap;
            }
        }
        if (rc == 0)
            c->node_mons[c->n_node_mons++] = me;
    }
    pthread_mutex_unlock(&d->lock);
    if (flag && c == NULL && rc == 0) {
        /* No connection can be made (out of memory for the entry): down
         * at once, as for a node that cannot be reached. */
        rc = amb_send(self, me, AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_NODEDOWN, node));
    }
    return rc;
}

int amb_monitor_nodes(amb_proc *self, bool flag, unsigned flags)
{
    if (self == NULL || (flags & ~(AMB_MONITOR_NODES_ALL | AMB_MONITOR_NODES_INFO)))
        return AMB_EBADARG;
    amb__dist *d = running(self);
    if (d == NULL)
        return AMB_ENOTSUP;
    amb_pid me = amb_self(self);
    int rc = 0;
    pthread_mutex_lock(&d->lock);
    if (flag) {
        if (d->n_subs == d->cap_subs) {
            size_t cap = d->cap_subs ? d->cap_subs * 2 : 4;
            amb__dist_sub *v = amb__realloc(d->subs, cap * sizeof *v);
            if (v == NULL)
                rc = AMB_ENOMEM;
            else {
                d->subs = v;
                d->cap_subs = cap;
            }
        }
        if (rc == 0)
            d->subs[d->n_subs++] = (amb__dist_sub){me, flags};
    } else {
        for (size_t i = 0; i < d->n_subs; i++) {
            if (d->subs[i].pid == me && d->subs[i].flags == flags) {
                memmove(&d->subs[i], &d->subs[i + 1],
                        (d->n_subs - i - 1) * sizeof *d->subs);
                d->n_subs--;
                break;
            }
        }
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static bool is_down_of(void *ctx, amb_term msg)
{
    return amb_is_record(msg, AMB_ATOM_DOWN, 5) &&
           amb_equal(amb_tuple_elem(msg, 1), *(amb_term *)ctx);
}

int amb_disconnect_node(amb_proc *self, amb_term node)
{
    if (self == NULL || !amb_is_atom(node))
        return AMB_EBADARG;
    amb__dist *d = running(self);
    if (d == NULL)
        return AMB_ENOTSUP;
    pthread_mutex_lock(&d->lock);
    amb__conn *c = amb__conn_get(d, node, false);
    amb_pid reader = c != NULL && c->state == AMB__CONN_UP ? c->reader : AMB_NONE;
    pthread_mutex_unlock(&d->lock);
    if (reader == AMB_NONE)
        return AMB_ENOTCONN;
    /* Synchronous, as erlang:disconnect_node: when this returns the node is
     * gone from nodes() and every relation over it has its NODEDOWN. */
    amb_term ref;
    amb_recv_mark mark = amb_receive_mark(self);
    int rc = amb_monitor(self, reader, &ref);
    if (rc != 0)
        return rc;
    amb_send(self, reader, amb_atom("$dist_disconnect"));
    amb_term m;
    rc = amb_receive_if_after(self, mark, is_down_of, &ref, AMB_INFINITY, &m);
    return rc;
}

int amb_node_ping(amb_proc *self, amb_term node)
{
    if (self == NULL || !amb_is_atom(node))
        return AMB_EBADARG;
    amb__dist *d = running(self);
    if (d == NULL)
        return AMB_ENOTSUP;
    if (node == d->name)
        return 0;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    amb_term reply = AMB_NONE;
    int rc = amb_gen_server_call(self, AMB_TUPLE(h, amb_atom("net_kernel"), node),
                                 AMB_TUPLE(h, amb_atom("is_auth"), d->name),
                                 2 * d->setuptime_ms, &reply);
    bool pong = rc == 0 && reply == amb_atom("yes");
    amb_heap_rewind(h, m);
    return pong ? 0 : AMB_ENOTCONN;
}

int64_t amb_node_ticktime(amb_proc *self)
{
    amb__dist *d = running(self);
    return d != NULL ? d->ticktime_ms : 0;
}

/*
 * remote.c - the process layer's side of distribution (remote.h): the dist
 * layer's ops installed once, the runtime's distributed identity, the
 * signals a connection process pushes into local processes, and the
 * NODEDOWN signal that ends the relations of a lost connection.
 *
 * Invariants:
 *   - Every signal from another node is the cell a local sender would have
 *     made (fail.h), with the foreign pid (and a foreign reference, a
 *     reason) copied into the cell's heap and its connection in a reserved
 *     word; so the local rules apply unchanged once it is drained, and a
 *     LINK or MONITOR cell becomes the receiver's end of the relation as
 *     it is (nothing is copied or allocated when it is kept).
 *   - A signal whose target is not alive is answered as for a local sender
 *     (link.c, monitor.c discard paths), which reach the dist layer again
 *     through its ops: a connection process must call these functions
 *     holding none of its own locks.
 *   - NODEDOWN carries the node and the connection; a process ends only
 *     relations of that connection (a newer connection's stay), each once:
 *     NODEDOWN takes the ends of that connection out of the index and acts
 *     on them at its place in the mailbox (link.c, monitor.c), so a signal
 *     of the far end that comes later finds no end and does nothing. The
 *     ends are the cells the signals are made of: ending them needs no
 *     memory. The NODEDOWN cell itself is made ahead too: the dist layer
 *     makes one when it first records a process as having a relation over
 *     a connection (amb__remote_nodedown_new), and sends it when the
 *     connection goes down.
 */
#include "process/fail.h"

int amb__remote_install(amb_rt *rt, const amb__remote *r)
{
    if (rt == NULL || r == NULL || r->ops == NULL)
        return AMB_EBADARG;
    const amb__remote *none = NULL;
    /* release: the ops table and its context are complete before a reader
     * (amb__remote_get, acquire) can see the pointer. */
    if (!atomic_compare_exchange_strong_explicit(
            &rt->remote, &none, r, memory_order_release, memory_order_relaxed))
        return AMB_ESTATE;
    return 0;
}

int amb__remote_set_node(amb_rt *rt, amb_term name, uint32_t creation)
{
    if (rt == NULL || !amb_is_atom(name))
        return AMB_EBADARG;
    return amb__node_rename(rt->node_slot, name, creation);
}

/* 0 when `to` is an own pid and `from` a foreign one (either may be
 * AMB_NONE where allowed), else AMB_EBADARG. */
static int check(amb_proc *self, amb_pid to, amb_pid from)
{
    if (self == NULL || !amb__rt_own_pid(self->rt, to))
        return AMB_EBADARG;
    if (from != AMB_NONE &&
        (amb_type_of(from) != AMB_T_PID || amb__rt_own_pid(self->rt, from)))
        return AMB_EBADARG;
    return 0;
}

/* Pushes m into `to`'s mailbox, or frees it when `to` is not alive. */
static void deliver(amb_proc *self, amb_pid to, amb__msg *m)
{
    amb_proc *q = amb__ptab_lookup(self->rt, to);
    if (q != NULL)
        amb__mailbox_deliver(self->rt, self->task.sched, q, m);
    else
        amb__msg_free(self->task.sched, m);
}

int amb__remote_link(amb_proc *self, amb_pid from, amb_pid to, uint32_t conn)
{
    int rc = check(self, to, from);
    if (rc != 0)
        return rc;
    amb__msg *m = amb__link_cell(self->task.sched, AMB__MSG_LINK, from, conn);
    if (m == NULL)
        return AMB_ENOMEM;
    m->words[1] = to;
    amb_proc *q = amb__ptab_lookup(self->rt, to);
    if (q != NULL)
        amb__mailbox_deliver(self->rt, self->task.sched, q, m);
    else
        amb__link_discard(self->rt, self->task.sched, m); /* exit noproc back */
    return 0;
}

/* UNLINK and UNLINK_ACK: from, id, and the connection (amb__link_cell). */
static int unlink_signal(amb_proc *self, enum amb__msg_kind kind, amb_pid from,
                         amb_pid to, uint64_t id, uint32_t conn)
{
    int rc = check(self, to, from);
    if (rc != 0 || id == 0)
        return rc != 0 ? rc : AMB_EBADARG;
    amb__msg *m = amb__link_cell(self->task.sched, kind, from, conn);
    if (m == NULL)
        return AMB_ENOMEM;
    m->words[1] = id;
    deliver(self, to, m);
    return 0;
}

int amb__remote_unlink(amb_proc *self, amb_pid from, amb_pid to, uint64_t id,
                       uint32_t conn)
{
    return unlink_signal(self, AMB__MSG_UNLINK, from, to, id, conn);
}

int amb__remote_unlink_ack(amb_proc *self, amb_pid from, amb_pid to, uint64_t id)
{
    return unlink_signal(self, AMB__MSG_UNLINK_ACK, from, to, id, 0);
}

int amb__remote_exit(amb_proc *self, amb_pid from, amb_pid to, amb_term reason,
                     bool linked)
{
    int rc = check(self, to, from);
    if (rc != 0 || reason == AMB_NONE)
        return rc != 0 ? rc : AMB_EBADARG;
    /* The cell an own sender's would be (exit.c), with the foreign pid in
     * its heap beside the reason. */
    amb__sched *s = self->task.sched;
    amb__msg *m = amb__msg_new_reserved(s, AMB__MSG_EXIT, AMB__LINK_WORDS,
                                        amb__fail_words(from) + amb__fail_words(reason));
    amb_term f = m != NULL ? amb__fail_keep(m, from) : AMB_NONE;
    amb_term r = f != AMB_NONE ? amb__fail_keep(m, reason) : AMB_NONE;
    if (r == AMB_NONE) {
        amb__msg_free(s, m);
        return AMB_ENOMEM;
    }
    m->term = r;
    amb__exit_post(self->rt, s, f, to, linked ? AMB__EXIT_LINKED : 0, m);
    return 0;
}

int amb__remote_monitor(amb_proc *self, amb_pid watcher, amb_pid to, amb_term name,
                        amb_term ref, uint32_t conn)
{
    if (self == NULL || amb_type_of(ref) != AMB_T_REF ||
        (name != AMB_NONE && !amb_is_atom(name)))
        return AMB_EBADARG;
    /* A name nobody has: `to` is AMB_NONE, and the DOWN noproc goes back
     * at once, naming the name. */
    int rc = to == AMB_NONE && name != AMB_NONE ? check(self, self->pid, watcher)
                                                : check(self, to, watcher);
    if (rc != 0)
        return rc;
    amb__msg *m = amb__monitor_cell(self->task.sched, watcher, to, name, ref, conn);
    if (m == NULL)
        return AMB_ENOMEM;
    amb_proc *q = to != AMB_NONE ? amb__ptab_lookup(self->rt, to) : NULL;
    if (q != NULL)
        amb__mailbox_deliver(self->rt, self->task.sched, q, m);
    else
        amb__monitor_discard(self->rt, self->task.sched, m); /* DOWN noproc back */
    return 0;
}

int amb__remote_demonitor(amb_proc *self, amb_pid watcher, amb_pid to, amb_term ref)
{
    int rc = check(self, to, watcher);
    if (rc != 0 || amb_type_of(ref) != AMB_T_REF)
        return rc != 0 ? rc : AMB_EBADARG;
    /* The DEMONITOR of a foreign watcher finds the target's end by the
     * reference (monitor.c). */
    amb__msg *m = amb__monitor_demonitor_cell(self->task.sched, watcher, ref);
    if (m == NULL)
        return AMB_ENOMEM;
    deliver(self, to, m);
    return 0;
}

int amb__remote_down(amb_proc *self, amb_pid to, amb_term ref, amb_term object,
                     amb_term reason)
{
    int rc = check(self, to, AMB_NONE);
    if (rc != 0 || object == AMB_NONE || reason == AMB_NONE)
        return rc != 0 ? rc : AMB_EBADARG;
    uint64_t key = amb__monitor_key(self->rt, ref);
    if (key == 0)
        return 0; /* not a monitor of ours: no such monitor, dropped */
    amb__msg *m = amb__monitor_down_cell(
        self->task.sched, key,
        6 + amb__fail_words(ref) + amb__fail_words(object) + amb__fail_words(reason));
    if (m == NULL)
        return AMB_ENOMEM;
    amb_heap *h = amb__msg_heap(m);
    amb_term r, o, why;
    if (amb_term_copy(h, ref, &r) != 0 || amb_term_copy(h, object, &o) != 0 ||
        amb_term_copy(h, reason, &why) != 0 ||
        (m->term = AMB_TUPLE(h, AMB_ATOM_DOWN, r, AMB_ATOM_PROCESS, o, why)) ==
            AMB_NONE) {
        amb__msg_free(self->task.sched, m);
        return AMB_ENOMEM;
    }
    deliver(self, to, m);
    return 0;
}

amb__msg *amb__remote_nodedown_new(void)
{
    /* Made outside any scheduler's pools (a single allocation, msg.c): it
     * may be freed on any thread, after the schedulers are gone too. */
    return amb__msg_new_signal(NULL, AMB__MSG_NODEDOWN, 2);
}

void amb__remote_nodedown_drop(amb__msg *m)
{
    amb__msg_free(NULL, m);
}

void amb__remote_nodedown_send(amb_rt *rt, amb__sched *s, amb_pid to, amb_term node,
                               uint32_t conn, amb__msg *m)
{
    m->words[0] = node;
    m->words[1] = conn;
    /* Flagged as an exit signal is: a running process ends its relations
     * at its next runtime call, before it could make new ones. */
    amb__exit_deliver(rt, s, to, m);
}

int amb__remote_nodedown(amb_proc *self, amb_pid to, amb_term node, uint32_t conn)
{
    int rc = check(self, to, AMB_NONE);
    if (rc != 0 || !amb_is_atom(node) || conn == 0)
        return rc != 0 ? rc : AMB_EBADARG;
    amb__msg *m = amb__remote_nodedown_new();
    if (m == NULL)
        return AMB_ENOMEM;
    amb__remote_nodedown_send(self->rt, self->task.sched, to, node, conn, m);
    return 0;
}

void amb__remote_nodedown_signal(amb_proc *p, amb__msg *m)
{
    amb_term node = m->words[0];
    uint32_t conn = (uint32_t)m->words[1];
    amb__msg_free(p->task.sched, m);
    if (p->links_mons.len == 0)
        return;
    /* The monitors first: a link exit may end p, and its teardown then
     * sends what is left in the index, as for any end. */
    amb__monitor_nodedown(p, node, conn);
    amb__link_nodedown(p, node, conn);
}

int amb__remote_post(amb_rt *rt, amb__sched *s, amb_pid to, amb_term msg)
{
    if (rt == NULL || msg == AMB_NONE || !amb__rt_own_pid(rt, to))
        return AMB_EBADARG;
    return amb__mailbox_send(rt, s, AMB_NONE, to, msg);
}

void amb__remote_exit_quiet(amb_proc *self, amb_term reason)
{
    amb__proc_die(self, reason, false, NULL);
}

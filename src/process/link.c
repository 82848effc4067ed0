/*
 * link.c - links (DESIGN §4, docs/design/failure.md): amb_link, amb_unlink,
 * amb_spawn_link, and the LINK / UNLINK / UNLINK_ACK signals (fail.h).
 *
 * Invariants:
 *   - Links follow Erlang's link protocol (OTP 23.3+, the distribution
 *     protocol's "Link Protocol"): an entry is active (unlink_id 0) or
 *     waiting for the ack of an unlink (unlink_id != 0, counts as not
 *     linked). A LINK received creates an entry only where there is none; an
 *     UNLINK_ID received removes an active entry only; an UNLINK_ID_ACK
 *     removes an inactive entry with the same id. So two processes linking
 *     and unlinking each other concurrently always end up agreeing.
 *   - A link exit signal (AMB__EXIT_LINKED) acts only if the receiver's
 *     entry for the sender is active, and removes the entry either way
 *     (exit.c): so once amb_unlink returned the old link has no effect, and
 *     each end acts on a link once.
 *   - A link to a process of another node is the same protocol: its
 *     signals go out through the dist layer's ops and come in as the same
 *     cells with the foreign pid in the cell's heap (remote.h); the entry
 *     keeps a copy of that pid and the connection, and a lost connection
 *     ends it with noconnection (remote.c, NODEDOWN).
 */
#include "process/fail.h"

/* Adds a link to pid (own or foreign, over conn) to p's table: the entry,
 * or NULL when out of memory. */
static amb__fail_entry *add_link(amb_proc *p, struct amb__fail *f, amb_pid pid,
                                 uint32_t conn)
{
    if (amb__rt_own_pid(p->rt, pid))
        return amb__fail_put(&f->links, pid, pid);
    bool hashed;
    uint64_t key = amb__fail_pid_key(pid, &hashed);
    amb_term node;
    if (amb_pid_get(pid, &node, NULL, NULL, NULL) != 0)
        return NULL;
    p->flags |= AMB__PF_REMOTE;
    return amb__fail_put_remote(&f->links, key, hashed, pid, AMB_NONE, node, conn);
}

void amb__link_signal(amb_proc *p, amb__msg *m)
{
    /* words[0] is the sending process, its pid in the cell's heap when it
     * is foreign (remote.c); words[2] of LINK and UNLINK its connection. */
    amb_pid from = m->words[0];
    switch (m->kind) {
    case AMB__MSG_LINK: {
        /* Only where there is no entry: an inactive one (our unlink not yet
         * acknowledged) stays inactive, and the sender will get our
         * UNLINK_ID after its LINK, so both end up unlinked. */
        struct amb__fail *f = amb__fail_of(p);
        if (f == NULL)
            amb__panic("out of memory making a link");
        if (amb__fail_find_pid(&f->links, from) == NULL &&
            add_link(p, f, from, (uint32_t)m->words[2]) == NULL)
            amb__panic("out of memory making a link");
        break;
    }
    case AMB__MSG_UNLINK: {
        amb__fail_entry *x = p->fail ? amb__fail_find_pid(&p->fail->links, from) : NULL;
        if (x != NULL && x->unlink_id == 0)
            amb__fail_del_entry(&p->fail->links, x, NULL);
        /* The ack goes out now, before any other signal to `from`. */
        if (!amb__rt_own_pid(p->rt, from)) {
            const amb__remote *r = amb__remote_get(p->rt);
            r->ops->unlink_ack(r->ctx, p->task.sched, p->pid, from, m->words[1],
                               (uint32_t)m->words[2]);
            break;
        }
        amb_proc *q = amb__ptab_lookup(p->rt, from);
        if (q != NULL) {
            amb__msg *a = amb__msg_new_signal(p->task.sched, AMB__MSG_UNLINK_ACK, 2);
            if (a == NULL)
                amb__panic("out of memory acknowledging an unlink");
            a->words[0] = p->pid;
            a->words[1] = m->words[1];
            amb__mailbox_deliver(p->rt, p->task.sched, q, a);
        }
        break;
    }
    case AMB__MSG_UNLINK_ACK: {
        amb__fail_entry *x = p->fail ? amb__fail_find_pid(&p->fail->links, from) : NULL;
        if (x != NULL && x->unlink_id != 0 && x->unlink_id == m->words[1])
            amb__fail_del_entry(&p->fail->links, x, NULL);
        break;
    }
    default:
        amb__panic("not a link signal: %u", m->kind);
    }
    amb__msg_free(p->task.sched, m);
}

void amb__link_discard(amb_rt *rt, amb__sched *s, amb__msg *m)
{
    /* The target ended before it saw the link: noproc to the linker, as a
     * link exit signal (the linker has the target in its links). A foreign
     * linker's pid lives in the cell: the exit goes before the cell. */
    amb_pid from = m->words[0], to = m->words[1];
    amb__exit_send(rt, s, to, from, AMB_ATOM_NOPROC, AMB__EXIT_LINKED,
                   (uint32_t)m->words[2]);
    amb__msg_free(s, m);
}

void amb__link_teardown(amb__sched *s, amb_proc *p)
{
    const amb__fail_table *t = &p->fail->links;
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].key != 0 && t->e[i].unlink_id == 0)
            amb__exit_send(p->rt, s, p->pid, t->e[i].pid, p->exit_reason,
                           AMB__EXIT_LINKED, t->e[i].conn);
}

/* True when entry e is a relation of connection conn to node. */
static bool of_conn(const amb__fail_entry *e, amb_term node, uint32_t conn)
{
    return e->key != 0 && e->remote != NULL && e->conn == conn && e->remote->node == node;
}

void amb__link_nodedown(amb_proc *p, amb_term node, uint32_t conn)
{
    amb__fail_table *t = &p->fail->links;
    /* First the exit signals of the active links (the table is not changed
     * while it is walked: each exit removes its entry when it is handled,
     * later in this drain, as the far end's own exit signal would)... */
    for (size_t i = 0; i < t->cap; i++) {
        if (!of_conn(&t->e[i], node, conn) || t->e[i].unlink_id != 0)
            continue;
        amb__msg *m = amb__exit_cell(p->task.sched, t->e[i].pid, AMB_ATOM_NOCONNECTION,
                                     AMB__EXIT_LINKED);
        if (m == NULL)
            amb__panic("out of memory ending a link to a lost node");
        amb__exit_post(p->rt, p->task.sched, p->pid, m);
    }
    /* ...then the unlinks under way, which no ack will end. A deletion
     * shifts a later entry into slot i: look at i again. */
    for (size_t i = 0; i < t->cap; i++)
        while (of_conn(&t->e[i], node, conn) && t->e[i].unlink_id != 0)
            amb__fail_del_entry(t, &t->e[i], NULL);
}

/* Active links only: an entry waiting for an unlink's ack is not a link. */
size_t amb__link_count(const amb_proc *p)
{
    size_t n = 0;
    const amb__fail_table *t = p->fail ? &p->fail->links : NULL;
    for (size_t i = 0; t != NULL && i < t->cap; i++)
        n += t->e[i].key != 0 && t->e[i].unlink_id == 0;
    return n;
}

amb_term amb__link_list(const amb_proc *p, amb_heap *h)
{
    amb_term l = AMB_NIL;
    const amb__fail_table *t = p->fail ? &p->fail->links : NULL;
    for (size_t i = 0; t != NULL && i < t->cap; i++) {
        if (t->e[i].key == 0 || t->e[i].unlink_id != 0)
            continue;
        /* A foreign pid is the entry's: the list gets a copy. */
        amb_term pid;
        if (amb_term_copy(h, t->e[i].pid, &pid) != 0)
            return AMB_NONE;
        l = amb_cons(h, pid, l);
    }
    return l;
}

/* Both blocks are set up before the child is published, so nobody can see
 * one without the other. */
int amb__link_spawn(amb_proc *parent, amb_proc *child)
{
    struct amb__fail *pf = amb__fail_of(parent), *cf = amb__fail_of(child);
    if (pf == NULL || cf == NULL)
        return AMB_ENOMEM;
    if (amb__fail_put(&cf->links, parent->pid, parent->pid) == NULL)
        return AMB_ENOMEM;
    if (amb__fail_put(&pf->links, child->pid, child->pid) == NULL)
        return AMB_ENOMEM;
    return 0;
}

void amb__link_spawn_undo(amb_proc *parent, amb_proc *child)
{
    if (parent->fail != NULL)
        amb__fail_del(&parent->fail->links, child->pid, NULL);
}

/* amb_link to a foreign pid: the entry first (what can fail, fails before
 * anything shows), then LINK through the dist layer. */
static int link_remote(amb_proc *self, struct amb__fail *f, amb_pid pid)
{
    const amb__remote *r = amb__remote_get(self->rt);
    amb__fail_entry *x = amb__fail_find_pid(&f->links, pid);
    uint32_t conn;
    if (x != NULL) {
        /* An unlink under way: active again, over the connection now. */
        int rc = r->ops->link(r->ctx, self, pid, &conn);
        if (rc != 0)
            return rc;
        x = amb__fail_find_pid(&f->links, pid);
        x->unlink_id = 0;
        x->conn = conn;
        return 0;
    }
    if ((x = add_link(self, f, pid, 0)) == NULL)
        return AMB_ENOMEM;
    int rc = r->ops->link(r->ctx, self, pid, &conn);
    x = amb__fail_find_pid(&f->links, pid);
    if (rc != 0)
        amb__fail_del_entry(&f->links, x, NULL);
    else
        x->conn = conn;
    return rc;
}

int amb_link(amb_proc *self, amb_pid pid)
{
    if (self == NULL)
        return AMB_EBADARG;
    int rc = amb__fail_check_pid(self->rt, pid);
    if (rc != 0)
        return rc;
    if (pid == self->pid)
        return 0;
    amb__proc_reduce(self);
    struct amb__fail *f = amb__fail_of(self);
    if (f == NULL)
        return AMB_ENOMEM;
    amb__fail_entry *x = amb__fail_find_pid(&f->links, pid);
    if (x != NULL && x->unlink_id == 0)
        return 0; /* already linked: no signal */
    if (!amb__rt_own_pid(self->rt, pid))
        return link_remote(self, f, pid);
    amb__sched *s = self->task.sched;
    amb_proc *q = amb__ptab_lookup(self->rt, pid);
    if (q == NULL) {
        if (!(self->flags & AMB__PF_TRAP_EXIT))
            return AMB_ENOPROC;
        /* A trapping caller gets {'EXIT', Pid, noproc} as a message. */
        amb__mailbox_deliver(self->rt, s, self,
                             amb__exit_trapped(s, pid, AMB_ATOM_NOPROC));
        return 0;
    }
    amb__msg *m = amb__msg_new_signal(s, AMB__MSG_LINK, 3);
    if (m == NULL || amb__fail_put(&f->links, pid, pid) == NULL) {
        amb__msg_free(s, m);
        return AMB_ENOMEM;
    }
    m->words[0] = self->pid;
    m->words[1] = pid;
    m->words[2] = 0;
    amb__mailbox_deliver(self->rt, s, q, m);
    return 0;
}

int amb_unlink(amb_proc *self, amb_pid pid)
{
    if (self == NULL)
        return AMB_EBADARG;
    int rc = amb__fail_check_pid(self->rt, pid);
    if (rc != 0)
        return rc;
    amb__proc_reduce(self);
    amb__fail_entry *x = self->fail && pid != self->pid
                             ? amb__fail_find_pid(&self->fail->links, pid)
                             : NULL;
    if (x == NULL || x->unlink_id != 0)
        return 0; /* not linked (or an unlink already under way) */
    /* The entry stays, inactive, until the other end acknowledges (or its
     * exit signal arrives, if it has ended): link exits are ignored from
     * now on. */
    if (!amb__rt_own_pid(self->rt, pid)) {
        x->unlink_id = ++self->fail->unlink_seq;
        const amb__remote *r = amb__remote_get(self->rt);
        r->ops->unlink(r->ctx, self, pid, x->unlink_id, x->conn);
        return 0;
    }
    amb_proc *q = amb__ptab_lookup(self->rt, pid);
    amb__msg *m = NULL;
    if (q != NULL &&
        (m = amb__msg_new_signal(self->task.sched, AMB__MSG_UNLINK, 3)) == NULL)
        return AMB_ENOMEM;
    x->unlink_id = ++self->fail->unlink_seq;
    if (m != NULL) {
        m->words[0] = self->pid;
        m->words[1] = x->unlink_id;
        m->words[2] = 0;
        amb__mailbox_deliver(self->rt, self->task.sched, q, m);
    }
    return 0;
}

int amb_spawn_link(amb_proc *self, amb_fn *fn, void *arg, amb_pid *out)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    amb_spawn_opts o = {.name = AMB_NONE, .link = true};
    return amb_spawn_opt(self, fn, arg, &o, out, NULL);
}

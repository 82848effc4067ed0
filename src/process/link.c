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
 */
#include "process/fail.h"

void amb__link_signal(amb_proc *p, amb__msg *m)
{
    switch (m->kind) {
    case AMB__MSG_LINK: {
        /* Only where there is no entry: an inactive one (our unlink not yet
         * acknowledged) stays inactive, and the sender will get our
         * UNLINK_ID after its LINK, so both end up unlinked. */
        struct amb__fail *f = amb__fail_of(p);
        if (f == NULL)
            amb__panic("out of memory making a link");
        if (amb__fail_find(&f->links, m->words[0]) == NULL &&
            amb__fail_put(&f->links, m->words[0], m->words[0]) == NULL)
            amb__panic("out of memory making a link");
        break;
    }
    case AMB__MSG_UNLINK: {
        amb_pid from = m->words[0];
        amb__fail_entry *x = p->fail ? amb__fail_find(&p->fail->links, from) : NULL;
        if (x != NULL && x->unlink_id == 0)
            amb__fail_del(&p->fail->links, from, NULL);
        /* The ack goes out now, before any other signal to `from`. */
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
        amb__fail_entry *x =
            p->fail ? amb__fail_find(&p->fail->links, m->words[0]) : NULL;
        if (x != NULL && x->unlink_id != 0 && x->unlink_id == m->words[1])
            amb__fail_del(&p->fail->links, m->words[0], NULL);
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
     * link exit signal (the linker has the target in its links). */
    amb_pid from = m->words[0], to = m->words[1];
    amb__msg_free(s, m);
    amb__exit_send(rt, s, to, from, AMB_ATOM_NOPROC, AMB__EXIT_LINKED);
}

void amb__link_teardown(amb__sched *s, amb_proc *p)
{
    const amb__fail_table *t = &p->fail->links;
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].key != 0 && t->e[i].unlink_id == 0)
            amb__exit_send(p->rt, s, p->pid, t->e[i].pid, p->exit_reason,
                           AMB__EXIT_LINKED);
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
    for (size_t i = 0; t != NULL && i < t->cap; i++)
        if (t->e[i].key != 0 && t->e[i].unlink_id == 0)
            l = amb_cons(h, t->e[i].pid, l);
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
    amb__fail_entry *x = amb__fail_find(&f->links, pid);
    if (x != NULL && x->unlink_id == 0)
        return 0; /* already linked: no signal */
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
    amb__msg *m = amb__msg_new_signal(s, AMB__MSG_LINK, 2);
    if (m == NULL || amb__fail_put(&f->links, pid, pid) == NULL) {
        amb__msg_free(s, m);
        return AMB_ENOMEM;
    }
    m->words[0] = self->pid;
    m->words[1] = pid;
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
    amb__fail_entry *x =
        self->fail && pid != self->pid ? amb__fail_find(&self->fail->links, pid) : NULL;
    if (x == NULL || x->unlink_id != 0)
        return 0; /* not linked (or an unlink already under way) */
    /* The entry stays, inactive, until the other end acknowledges (or its
     * exit signal arrives, if it has ended): link exits are ignored from
     * now on. */
    amb_proc *q = amb__ptab_lookup(self->rt, pid);
    amb__msg *m = NULL;
    if (q != NULL &&
        (m = amb__msg_new_signal(self->task.sched, AMB__MSG_UNLINK, 2)) == NULL)
        return AMB_ENOMEM;
    x->unlink_id = ++self->fail->unlink_seq;
    if (m != NULL) {
        m->words[0] = self->pid;
        m->words[1] = x->unlink_id;
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

/*
 * link.c - links (DESIGN §4, docs/design/failure.md): amb_link, amb_unlink,
 * amb_spawn_link, and the LINK / UNLINK / UNLINK_ACK signals (fail.h).
 *
 * Invariants:
 *   - Links follow Erlang's link protocol (OTP 23.3+, the distribution
 *     protocol's "Link Protocol"): an end is active (unlink id 0) or
 *     waiting for the ack of an unlink (id != 0, counts as not linked). A
 *     LINK received creates an end only where there is none; an UNLINK_ID
 *     received removes an active end only; an UNLINK_ID_ACK removes an
 *     inactive end with the same id. So two processes linking and
 *     unlinking each other concurrently always end up agreeing.
 *   - A link end is a cell (fail.h): words[0] the other pid (also its key),
 *     words[1] the unlink id, AMB__LINK_WORDS reserved, room for a small
 *     reason behind. The linker allocates both ends: its own, and the LINK
 *     cell, which becomes the other end where it arrives (or, at a dead
 *     process, the exit signal noproc back). So neither receiving a link
 *     nor ending needs memory.
 *   - A link exit signal (AMB__EXIT_LINKED) acts only if the receiver's end
 *     for the sender is active, and removes the end either way (exit.c):
 *     so once amb_unlink returned the old link has no effect, and each end
 *     acts on a link once.
 */
#include "process/fail.h"

/* Words a link end keeps behind its reserved ones for a reason copied in
 * place (class 1 of msg.c: a 10-word cell). */
#define REASON_ROOM 4

/* A fresh link end of its owner for `other` (not yet in any index). */
static amb__msg *new_end(amb__sched *s, amb_pid other)
{
    amb__msg *m = amb__msg_new_reserved(s, AMB__MSG_LINK, AMB__LINK_WORDS, REASON_ROOM);
    if (m != NULL) {
        m->words[0] = other;
        m->words[1] = 0;
        m->seq = other;
    }
    return m;
}

/* Records e, a fresh active end of p. */
static void add_end(amb_proc *p, amb__msg *e)
{
    amb__fail_add(p, e);
    p->links_mons.nlinks++;
}

void amb__link_signal(amb_proc *p, amb__msg *m)
{
    amb__sched *s = p->task.sched;
    switch (m->kind) {
    case AMB__MSG_LINK:
        /* Only where there is no end: an inactive one (our unlink not yet
         * acknowledged) stays inactive, and the sender will get our
         * UNLINK_ID after its LINK, so both end up unlinked. Otherwise the
         * cell is our end. */
        if (amb__fail_find(p, m->words[0]) != NULL) {
            amb__msg_free(s, m);
        } else {
            m->words[1] = 0;
            m->seq = m->words[0];
            add_end(p, m);
        }
        return;
    case AMB__MSG_UNLINK: {
        amb_pid from = m->words[0];
        amb__msg *x = amb__fail_find(p, from);
        if (x != NULL && x->words[1] == 0) {
            amb__fail_take(p, from);
            p->links_mons.nlinks--;
            amb__msg_free(s, x);
        }
        /* The ack goes out now, before any other signal to `from`: the
         * UNLINK cell itself. */
        amb_proc *q = amb__ptab_lookup(p->rt, from);
        if (q == NULL) {
            amb__msg_free(s, m);
            return;
        }
        m->kind = AMB__MSG_UNLINK_ACK;
        m->words[0] = p->pid;
        amb__mailbox_deliver(p->rt, s, q, m);
        return;
    }
    case AMB__MSG_UNLINK_ACK: {
        amb__msg *x = amb__fail_find(p, m->words[0]);
        if (x != NULL && x->words[1] != 0 && x->words[1] == m->words[1])
            amb__msg_free(s, amb__fail_take(p, m->words[0]));
        amb__msg_free(s, m);
        return;
    }
    default:
        amb__panic("not a link signal: %u", m->kind);
    }
}

void amb__link_discard(amb_rt *rt, amb__sched *s, amb__msg *m)
{
    /* The target ended before it saw the link: noproc to the linker, as a
     * link exit signal (the linker has the target in its links), in the
     * LINK cell itself. */
    amb_pid from = m->words[0], to = m->words[1];
    m->term = AMB_ATOM_NOPROC; /* its heap holds nothing: a LINK has no term */
    amb__exit_post(rt, s, to, from, AMB__EXIT_LINKED, m);
}

void amb__link_end(amb__sched *s, amb_proc *p, amb__msg *e)
{
    if (e->words[1] != 0) { /* an unlink under way: no link */
        amb__msg_free(s, e);
        return;
    }
    amb_pid to = e->words[0];
    amb__fail_reason(p->rt, e, p->exit_reason);
    amb__exit_post(p->rt, s, p->pid, to, AMB__EXIT_LINKED, e);
}

/* amb__link_list's walk: ctx is {heap, list so far}. */
struct list_walk {
    amb_heap *h;
    amb_term l;
};

static void list_active(void *ctx, const amb__msg *e)
{
    struct list_walk *w = ctx;
    if (e->kind == AMB__MSG_LINK && e->words[1] == 0)
        w->l = amb_cons(w->h, e->words[0], w->l);
}

amb_term amb__link_list(const amb_proc *p, amb_heap *h)
{
    struct list_walk w = {h, AMB_NIL};
    amb__fail_each(p, list_active, &w);
    return w.l;
}

/* Both ends are set up before the child is published, so nobody can see
 * one without the other. */
int amb__link_spawn(amb_proc *parent, amb_proc *child)
{
    amb__sched *s = parent->task.sched;
    amb__msg *pe = new_end(s, child->pid), *ce = new_end(s, parent->pid);
    if (pe == NULL || ce == NULL) {
        amb__msg_free(s, pe);
        amb__msg_free(s, ce);
        return AMB_ENOMEM;
    }
    add_end(child, ce);
    add_end(parent, pe);
    return 0;
}

void amb__link_spawn_undo(amb_proc *parent, amb_proc *child)
{
    amb__msg *e = amb__fail_take(parent, child->pid);
    if (e != NULL) {
        parent->links_mons.nlinks--;
        amb__msg_free(parent->task.sched, e);
    }
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
    amb__msg *x = amb__fail_find(self, pid);
    if (x != NULL && x->words[1] == 0)
        return 0; /* already linked: no signal */
    amb__sched *s = self->task.sched;
    amb_proc *q = amb__ptab_lookup(self->rt, pid);
    if (q == NULL) {
        if (!(self->flags & AMB__PF_TRAP_EXIT))
            return AMB_ENOPROC;
        /* A trapping caller gets {'EXIT', Pid, noproc} as a message. */
        amb__msg *m = amb__msg_new_reserved(s, AMB__MSG_EXIT, AMB__LINK_WORDS, 0);
        if (m == NULL)
            return AMB_ENOMEM;
        m->words[0] = pid;
        m->term = AMB_ATOM_NOPROC;
        amb__mailbox_deliver(self->rt, s, self, amb__exit_trapped(m));
        return 0;
    }
    /* Our end (unless an inactive one is there to take up again), and the
     * other, which travels as the LINK. */
    amb__msg *mine = x != NULL ? x : new_end(s, pid);
    amb__msg *m = mine != NULL ? new_end(s, self->pid) : NULL;
    if (m == NULL) {
        if (mine != x)
            amb__msg_free(s, mine);
        return AMB_ENOMEM;
    }
    if (x != NULL) {
        x->words[1] = 0; /* active again: an ack still to come is stale */
        self->links_mons.nlinks++;
    } else {
        add_end(self, mine);
    }
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
    amb__msg *x = pid != self->pid ? amb__fail_find(self, pid) : NULL;
    if (x == NULL || x->words[1] != 0)
        return 0; /* not linked (or an unlink already under way) */
    /* The end stays, inactive, until the other end acknowledges (or its
     * exit signal arrives, if it has ended): link exits are ignored from
     * now on. */
    amb__sched *s = self->task.sched;
    amb_proc *q = amb__ptab_lookup(self->rt, pid);
    amb__msg *m = NULL;
    if (q != NULL && (m = amb__msg_new_signal(s, AMB__MSG_UNLINK, 2)) == NULL)
        return AMB_ENOMEM;
    /* An id unique on the node, never 0 (a reference key). */
    uint32_t w[3];
    amb__rt_ref_words(s, w);
    x->words[1] = amb__rt_ref_key(w);
    self->links_mons.nlinks--;
    if (m != NULL) {
        m->words[0] = self->pid;
        m->words[1] = x->words[1];
        amb__mailbox_deliver(self->rt, s, q, m);
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

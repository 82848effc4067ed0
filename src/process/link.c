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
 *   - A link to a process of another node is the same protocol (remote.h):
 *     our end is a cell like a local one, with the foreign pid copied into
 *     its heap and the connection in AMB__LINK_CONN; its signals leave
 *     through the dist layer's ops and come in as the same cells
 *     (amb__link_cell). A lost connection turns each active end of it into
 *     the exit signal noconnection from the far end (amb__link_nodedown).
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

amb__msg *amb__link_cell(amb__sched *s, enum amb__msg_kind kind, amb_pid from,
                         uint32_t conn)
{
    amb__msg *m =
        amb__msg_new_reserved(s, kind, AMB__LINK_WORDS + 1, amb__fail_words(from));
    if (m == NULL)
        return NULL;
    if ((m->words[0] = amb__fail_keep(m, from)) == AMB_NONE) {
        amb__msg_free(s, m);
        return NULL;
    }
    m->words[1] = 0;
    m->words[AMB__LINK_CONN] = conn;
    m->seq = amb__fail_link_key(from);
    return m;
}

/* True when link end (or link signal) e is of a foreign pid. */
static bool is_far(amb_rt *rt, const amb__msg *e)
{
    return !amb__rt_own_pid(rt, e->words[0]);
}

amb__msg *amb__link_find(amb_proc *p, amb_pid pid)
{
    uint64_t key = amb__fail_link_key(pid);
    return amb_is_local_pid(pid) ? amb__fail_find(p, key)
                                 : amb__fail_find_term(p, key, 0, pid);
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
         * cell is our end (a foreign linker's: made by amb__link_cell, its
         * key and connection in). */
        if (amb__link_find(p, m->words[0]) != NULL) {
            amb__msg_free(s, m);
        } else {
            m->words[1] = 0;
            if (is_far(p->rt, m))
                p->flags |= AMB__PF_REMOTE;
            else
                m->seq = m->words[0];
            add_end(p, m);
        }
        return;
    case AMB__MSG_UNLINK: {
        amb_pid from = m->words[0];
        amb__msg *x = amb__link_find(p, from);
        if (x != NULL && x->words[1] == 0) {
            amb__fail_remove(p, x);
            p->links_mons.nlinks--;
            amb__msg_free(s, x);
        }
        /* The ack goes out now, before any other signal to `from`: the
         * UNLINK cell itself, or the dist layer's UNLINK_ID_ACK. */
        if (is_far(p->rt, m)) {
            const amb__remote *r = amb__remote_get(p->rt);
            r->ops->unlink_ack(r->ctx, s, p->pid, from, m->words[1],
                               (uint32_t)m->words[AMB__LINK_CONN]);
            amb__msg_free(s, m);
            return;
        }
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
        amb__msg *x = amb__link_find(p, m->words[0]);
        if (x != NULL && x->words[1] != 0 && x->words[1] == m->words[1]) {
            amb__fail_remove(p, x);
            amb__msg_free(s, x);
        }
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
     * LINK cell itself; to a foreign linker through the dist layer. */
    amb_pid from = m->words[0], to = m->words[1];
    if (is_far(rt, m)) {
        amb__exit_remote(rt, s, to, from, AMB_ATOM_NOPROC, true,
                         (uint32_t)m->words[AMB__LINK_CONN]);
        amb__msg_free(s, m);
        return;
    }
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
    if (is_far(p->rt, e)) {
        amb__exit_remote(p->rt, s, p->pid, to, p->exit_reason, true,
                         (uint32_t)e->words[AMB__LINK_CONN]);
        amb__msg_free(s, e);
        return;
    }
    amb__fail_reason(p->rt, e, p->exit_reason);
    amb__exit_post(p->rt, s, p->pid, to, AMB__EXIT_LINKED, e);
}

/* amb__link_nodedown's sweep: ctx is {p, node, conn}. */
struct lost {
    amb_proc *p;
    amb_term node;
    uint32_t conn;
};

static bool link_stays(void *ctx, const amb__msg *e)
{
    const struct lost *l = ctx;
    amb_term node;
    return e->kind != AMB__MSG_LINK || !is_far(l->p->rt, e) ||
           e->words[AMB__LINK_CONN] != l->conn ||
           amb_pid_get(e->words[0], &node, NULL, NULL, NULL) != 0 || node != l->node;
}

/* Link end e of the lost connection, out of the index: the exit signal
 * noconnection from its far end, in e itself, acting now as the far end's
 * own would (exit.c; an end waiting for an unlink's ack, which will never
 * come, just goes). */
static void link_lost(void *ctx, amb__msg *e)
{
    amb_proc *p = ((struct lost *)ctx)->p;
    if (e->words[1] != 0) {
        amb__msg_free(p->task.sched, e);
        return;
    }
    p->links_mons.nlinks--;
    e->kind = AMB__MSG_EXIT;
    e->words[1] = AMB__EXIT_LINKED;
    e->term = AMB_ATOM_NOCONNECTION;
    amb__msg *m = amb__exit_act(p, e);
    if (m != NULL)
        amb__mailbox_append(p, m); /* at the NODEDOWN's place */
}

void amb__link_nodedown(amb_proc *p, amb_term node, uint32_t conn)
{
    struct lost l = {p, node, conn};
    amb__fail_sweep(p, link_stays, link_lost, &l);
}

/* amb__link_list's walk: ctx is {heap, list so far (AMB_NONE: out of
 * memory)}. */
struct list_walk {
    amb_heap *h;
    amb_term l;
};

static void list_active(void *ctx, const amb__msg *e)
{
    struct list_walk *w = ctx;
    if (e->kind != AMB__MSG_LINK || e->words[1] != 0 || w->l == AMB_NONE)
        return;
    /* A foreign pid is the end's: the list gets a copy. */
    amb_term pid;
    w->l = amb_term_copy(w->h, e->words[0], &pid) == 0 ? amb_cons(w->h, pid, w->l)
                                                       : AMB_NONE;
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

/* Takes up inactive end x (an unlink under way) or records fresh end e of
 * self, active. */
static void activate(amb_proc *self, amb__msg *x, amb__msg *e)
{
    if (x != NULL) {
        x->words[1] = 0; /* active again: an ack still to come is stale */
        self->links_mons.nlinks++;
    } else {
        add_end(self, e);
    }
}

/* amb_link to a foreign pid: our end (unless an inactive one is there to
 * take up again, over the connection now), then LINK through the dist
 * layer; what can fail fails before anything shows. */
static int link_remote(amb_proc *self, amb__msg *x, amb_pid pid)
{
    amb__sched *s = self->task.sched;
    amb__msg *e = x != NULL ? x : amb__link_cell(s, AMB__MSG_LINK, pid, 0);
    if (e == NULL)
        return AMB_ENOMEM;
    const amb__remote *r = amb__remote_get(self->rt);
    uint32_t conn;
    int rc = r->ops->link(r->ctx, self, pid, &conn);
    if (rc != 0) {
        if (e != x)
            amb__msg_free(s, e);
        return rc;
    }
    e->words[AMB__LINK_CONN] = conn;
    activate(self, x, e);
    self->flags |= AMB__PF_REMOTE;
    return 0;
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
    amb__msg *x = amb__link_find(self, pid);
    if (x != NULL && x->words[1] == 0)
        return 0; /* already linked: no signal */
    if (!amb__rt_own_pid(self->rt, pid))
        return link_remote(self, x, pid);
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
    activate(self, x, mine);
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
    amb__msg *x = pid != self->pid ? amb__link_find(self, pid) : NULL;
    if (x == NULL || x->words[1] != 0)
        return 0; /* not linked (or an unlink already under way) */
    /* The end stays, inactive, until the other end acknowledges (or its
     * exit signal arrives, if it has ended, or its connection is lost):
     * link exits are ignored from now on. */
    amb__sched *s = self->task.sched;
    bool far = is_far(self->rt, x);
    amb_proc *q = far ? NULL : amb__ptab_lookup(self->rt, pid);
    amb__msg *m = NULL;
    if (q != NULL && (m = amb__msg_new_signal(s, AMB__MSG_UNLINK, 2)) == NULL)
        return AMB_ENOMEM;
    /* An id unique on the node, never 0 (a reference key). */
    uint32_t w[3];
    amb__rt_ref_words(s, w);
    x->words[1] = amb__rt_ref_key(w);
    self->links_mons.nlinks--;
    if (far) {
        const amb__remote *r = amb__remote_get(self->rt);
        r->ops->unlink(r->ctx, self, pid, x->words[1],
                       (uint32_t)x->words[AMB__LINK_CONN]);
    } else if (m != NULL) {
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

/*
 * exit.c - exit signals (DESIGN §4, docs/design/failure.md): amb_exit,
 * amb_trap_exit, amb_assert_fail, and the EXIT signal (fail.h). An EXIT
 * cell has AMB__LINK_WORDS reserved: from, flags, and the four words of the
 * {'EXIT', From, Reason} a trapping receiver turns it into in place.
 *
 * Invariants:
 *   - What an EXIT does follows DESIGN §4's table: `kill` sent by amb_exit
 *     is untrappable and becomes `killed`; `normal` from another process is
 *     ignored unless trapped; exit(self, normal) ends a non-trapping
 *     process; any other reason ends a non-trapping process and is a
 *     message {'EXIT', From, Reason} for a trapping one.
 *   - A link exit (AMB__EXIT_LINKED) acts only while the receiver's link to
 *     the sender is active, and removes the entry either way (link.c).
 *   - A sender of an EXIT sets the target's sig_pending after its push, so a
 *     running target notices it at its next runtime call (amb__proc_reduce).
 *   - An exit signal to a process of another node goes out through the dist
 *     layer (remote.h); one from there arrives as the same EXIT cell, with
 *     the foreign pid in the cell's heap (remote.c).
 */
#include "process/fail.h"

void amb__exit_post(amb_rt *rt, amb__sched *s, amb_pid from, amb_pid to, unsigned flags,
                    amb__msg *m)
{
    m->kind = AMB__MSG_EXIT;
    m->words[0] = from;
    m->words[1] = flags;
    amb__exit_deliver(rt, s, to, m);
}

void amb__exit_remote(amb_rt *rt, amb__sched *s, amb_pid from, amb_pid to,
                      amb_term reason, bool linked, uint32_t conn)
{
    const amb__remote *r = amb__remote_get(rt);
    r->ops->exit(r->ctx, s, from, to, reason, linked, conn);
}

void amb__exit_deliver(amb_rt *rt, amb__sched *s, amb_pid to, amb__msg *m)
{
    amb_proc *q = amb__ptab_lookup(rt, to);
    if (q == NULL) {
        amb__msg_free(s, m);
        return;
    }
    amb__mailbox_deliver(rt, s, q, m);
    /* release: after our push; the target's acquire exchange in
     * amb__proc_signals then finds the cell when it drains. The block stays
     * valid until we pass a quiescent point (QSBR), so a target that has
     * ended meanwhile only gets a stale flag in freed-later memory. */
    atomic_store_explicit(&q->sig_pending, true, memory_order_release);
}

amb__msg *amb__exit_trapped(amb__msg *m)
{
    /* {'EXIT', From, Reason} in the four reserved words after from and
     * flags: no memory needed. */
    amb_heap h;
    amb__heap_init_fixed(&h, &m->words[2], AMB__LINK_WORDS - 2);
    m->term = AMB_TUPLE(&h, AMB_ATOM_EXIT, m->words[0], m->term);
    AMB__CHECK(h.blocks == NULL && m->term != AMB_NONE);
    m->kind = AMB__MSG_TERM;
    return m;
}

amb__msg *amb__exit_signal(amb_proc *p, amb__msg *m)
{
    if (m->words[1] & AMB__EXIT_LINKED) {
        /* A link exit acts only while the link is active (unlink wins); the
         * entry goes either way (the sender has ended). */
        amb__msg *x = amb__link_find(p, m->words[0]);
        bool active = x != NULL && x->words[1] == 0;
        if (x != NULL) {
            amb__fail_remove(p, x);
            amb__msg_free(p->task.sched, x);
        }
        if (!active) {
            amb__msg_free(p->task.sched, m);
            return NULL;
        }
        p->links_mons.nlinks--;
    }
    return amb__exit_act(p, m);
}

amb__msg *amb__exit_act(amb_proc *p, amb__msg *m)
{
    amb_pid from = m->words[0];
    unsigned flags = (unsigned)m->words[1];
    amb_term reason = m->term;
    if (!(flags & AMB__EXIT_LINKED) && reason == AMB_ATOM_KILL) {
        /* exit(Pid, kill): untrappable, and seen by links as killed. */
        amb__proc_die(p, AMB_ATOM_KILLED, false, m);
    }
    if (p->flags & AMB__PF_TRAP_EXIT)
        return amb__exit_trapped(m);
    if (reason == AMB_ATOM_NORMAL) {
        /* Ignored, except exit(self(), normal) sent by the process itself. */
        if (!(flags & AMB__EXIT_LINKED) && from == p->pid)
            amb__proc_die(p, AMB_ATOM_NORMAL, false, m);
        amb__msg_free(p->task.sched, m);
        return NULL;
    }
    amb__proc_die(p, reason, false, m);
}

int amb_exit(amb_proc *self, amb_pid pid, amb_term reason)
{
    if (self == NULL || reason == AMB_NONE)
        return AMB_EBADARG;
    int rc = amb__fail_check_pid(self->rt, pid);
    if (rc != 0)
        return rc;
    amb__sched *s = self->task.sched;
    if (!amb__rt_own_pid(self->rt, pid)) {
        /* exit/2 to another node: EXIT2, over the node's connection now. */
        amb__exit_remote(self->rt, s, self->pid, pid, reason, false, 0);
        amb__proc_reduce(self);
        return 0;
    }
    /* The reason is copied now, with room for the trapped message: a
     * receiver needs no memory. */
    amb__msg *m = amb__msg_new_term_after(s, reason, AMB__LINK_WORDS);
    if (m == NULL)
        return AMB_ENOMEM;
    amb__exit_post(self->rt, s, self->pid, pid, 0, m);
    if (pid == self->pid)
        amb__proc_signals(self); /* a signal to oneself acts at once */
    else
        amb__proc_reduce(self);
    return 0;
}

bool amb_trap_exit(amb_proc *self, bool on)
{
    if (self == NULL)
        return false;
    bool was = (self->flags & AMB__PF_TRAP_EXIT) != 0;
    if (on)
        self->flags |= AMB__PF_TRAP_EXIT;
    else
        self->flags &= ~(uint32_t)AMB__PF_TRAP_EXIT;
    return was;
}

void amb_assert_fail(amb_proc *self, const char *expr, const char *file, int line)
{
    if (self == NULL)
        amb__panic("AMB_ASSERT(%s) failed at %s:%d outside a process", expr, file, line);
    /* Built on the process's heap, which lives until the process ends;
     * amb__proc_die copies the reason to the exit heap. */
    amb_heap *h = amb_proc_heap(self);
    amb_term reason = AMB_ATOM_ERROR;
    if (h != NULL) {
        amb_term t = AMB_TUPLE(
            h, amb_atom("assert"),
            AMB_LIST(
                h, AMB_TUPLE(h, amb_atom("file"), amb_binary(h, file, strlen(file))),
                AMB_TUPLE(h, amb_atom("line"), amb_int(h, line)),
                AMB_TUPLE(h, amb_atom("expression"), amb_binary(h, expr, strlen(expr)))));
        if (t != AMB_NONE)
            reason = t;
    }
    amb__proc_die(self, reason, true, NULL);
}

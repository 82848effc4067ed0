/*
 * exit.c - exit signals (DESIGN §4, docs/design/failure.md): amb_exit,
 * amb_trap_exit, amb_on_exit / amb_on_exit_cancel, amb_assert_fail, and the
 * EXIT signal (fail.h).
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

void amb__exit_post(amb_rt *rt, amb__sched *s, amb_pid to, amb__msg *m)
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

amb__msg *amb__exit_cell(amb__sched *s, amb_pid from, amb_term reason, unsigned flags)
{
    amb__msg *m;
    amb_term f = from, r;
    if (amb_is_local_pid(from)) {
        if ((m = amb__msg_new_term_after(s, reason, 2)) == NULL)
            return NULL;
    } else {
        /* A foreign sender's pid travels in the cell's heap with the
         * reason. */
        if ((m = amb__msg_new_signal_terms(s, AMB__MSG_EXIT, 2, from, reason, &f, &r)) ==
            NULL)
            return NULL;
        m->term = r;
    }
    m->kind = AMB__MSG_EXIT;
    m->words[0] = f;
    m->words[1] = flags;
    return m;
}

void amb__exit_send(amb_rt *rt, amb__sched *s, amb_pid from, amb_pid to, amb_term reason,
                    unsigned flags, uint32_t conn)
{
    if (!amb__rt_own_pid(rt, to)) {
        const amb__remote *r = amb__remote_get(rt);
        r->ops->exit(r->ctx, s, from, to, reason, (flags & AMB__EXIT_LINKED) != 0, conn);
        return;
    }
    amb__msg *m = amb__exit_cell(s, from, reason, flags);
    if (m == NULL)
        amb__panic("out of memory sending an exit signal");
    amb__exit_post(rt, s, to, m);
}

/* Words a copy of t takes on a heap (0 for an immediate). */
static size_t words_of(amb_term t)
{
    return (!amb_is_cons(t) && !amb__is_boxed(t)) ? 0
                                                  : amb_term_size(t) / sizeof(uint64_t);
}

amb__msg *amb__exit_trapped(amb__sched *s, amb_pid from, amb_term reason)
{
    size_t rw = words_of(reason), fw = words_of(from);
    amb__msg *m = amb__msg_alloc_heap(s, 0, 4 + rw + fw);
    if (m == NULL)
        amb__panic("out of memory delivering an exit signal");
    amb_heap *h = amb__msg_heap(m);
    /* A foreign pid lives in the signal's cell: the message gets a copy. */
    amb_term r = reason, f = from;
    if ((rw != 0 && amb_term_copy(h, reason, &r) != 0) ||
        (fw != 0 && amb_term_copy(h, from, &f) != 0))
        amb__panic("out of memory delivering an exit signal");
    m->term = AMB_TUPLE(h, AMB_ATOM_EXIT, f, r);
    if (m->term == AMB_NONE)
        amb__panic("out of memory delivering an exit signal");
    return m;
}

amb__msg *amb__exit_signal(amb_proc *p, amb__msg *m)
{
    amb_pid from = m->words[0];
    unsigned flags = (unsigned)m->words[1];
    amb_term reason = m->term;
    if (flags & AMB__EXIT_LINKED) {
        /* A link exit acts only while the link is active (unlink wins); the
         * entry goes either way (the sender has ended). */
        amb__fail_entry *x = p->fail ? amb__fail_find_pid(&p->fail->links, from) : NULL;
        bool active = x != NULL && x->unlink_id == 0;
        if (x != NULL)
            amb__fail_del_entry(&p->fail->links, x, NULL);
        if (!active) {
            amb__msg_free(p->task.sched, m);
            return NULL;
        }
    } else if (reason == AMB_ATOM_KILL) {
        /* exit(Pid, kill): untrappable, and seen by links as killed. */
        amb__proc_die(p, AMB_ATOM_KILLED, false, m);
    }
    if (p->flags & AMB__PF_TRAP_EXIT) {
        amb__msg *t = amb__exit_trapped(p->task.sched, from, reason);
        amb__msg_free(p->task.sched, m);
        return t;
    }
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
    if (!amb__rt_own_pid(self->rt, pid)) {
        /* exit/2 to another node: EXIT2, over the node's connection now. */
        amb__exit_send(self->rt, self->task.sched, self->pid, pid, reason, 0, 0);
        amb__proc_reduce(self);
        return 0;
    }
    amb__msg *m = amb__exit_cell(self->task.sched, self->pid, reason, 0);
    if (m == NULL)
        return AMB_ENOMEM;
    amb__exit_post(self->rt, self->task.sched, pid, m);
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

int amb_on_exit(amb_proc *self, amb_cleanup_fn *fn, void *ctx)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    struct amb__fail *f = amb__fail_of(self);
    if (f == NULL)
        return AMB_ENOMEM;
    if (f->ncl == f->capcl) {
        size_t cap = f->capcl ? f->capcl * 2 : 4;
        amb__fail_cleanup *cl = amb__realloc(f->cl, cap * sizeof *cl);
        if (cl == NULL)
            return AMB_ENOMEM;
        f->cl = cl;
        f->capcl = cap;
    }
    f->cl[f->ncl++] = (amb__fail_cleanup){fn, ctx};
    return 0;
}

int amb_on_exit_cancel(amb_proc *self, amb_cleanup_fn *fn, void *ctx)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    struct amb__fail *f = self->fail;
    for (size_t i = f ? f->ncl : 0; i-- > 0;) {
        if (f->cl[i].fn == fn && f->cl[i].ctx == ctx) {
            memmove(&f->cl[i], &f->cl[i + 1], (f->ncl - i - 1) * sizeof *f->cl);
            f->ncl--;
            return 0;
        }
    }
    return AMB_ENOTFOUND;
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

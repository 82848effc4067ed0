/*
 * blocking_call.c - amb_blocking_call: runs a C function that may block on
 * a thread of the runtime's blocking pool (src/runtime/blocking.h) while
 * only the calling process waits (Erlang's dirty I/O schedulers).
 *
 * A call is one message cell (msg.c) of kind WAKE whose buffer holds the
 * job and the caller's pid, as ptimer.c keeps a timer in its cell. The
 * caller:
 *   1. allocates the cell from its scheduler's pool and starts a wait
 *      (amb__mailbox_wait_begin gives the wait's sequence number);
 *   2. posts the job to the pool;
 *   3. parks in amb__mailbox_wait_wake: messages that arrive meanwhile stay
 *      queued in order, and only a WAKE with this wait's number ends it.
 * The pool thread that ran the job hands it to amb__blocking_call_done,
 * which delivers the cell itself to the caller, looking the caller up
 * inside amb__qsbr_enter/leave (src/runtime/qsbr.h), so the block it
 * pushes into cannot be freed under it. A caller that died meanwhile is
 * not found and the cell is freed: the result is discarded.
 */
#include "process/rt.h"
#include "runtime/blocking.h"
#include "runtime/qsbr.h"

typedef struct call {
    amb__blocking_job job; /* first: the job is the cell's words[0] */
    amb_pid pid;           /* the caller */
} call;

#define CALL_WORDS ((sizeof(call) + 7) / 8)

static inline amb__msg *cell_of(amb__blocking_job *j)
{
    return (amb__msg *)(void *)((char *)j - offsetof(amb__msg, words));
}

int amb_blocking_call(amb_proc *self, amb_blocking_fn *fn, void *arg, intptr_t *result)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    if (!amb__proc_may_wait(self))
        return AMB_ESTATE;
    amb__sched *s = self->task.sched;
    amb__msg *m = amb__msg_alloc(s, CALL_WORDS);
    if (m == NULL)
        return AMB_ENOMEM;
    m->kind = AMB__MSG_WAKE;
    call *c = (call *)(void *)m->words;
    c->job.fn = fn;
    c->job.arg = arg;
    c->pid = self->pid;
    m->wait_seq = amb__mailbox_wait_begin(self);
    /* AMB_ESTATE: not inside a runtime that has run (no pool yet). */
    int rc = amb__blocking_post(&self->rt->exec, &c->job);
    if (rc != 0) {
        amb__msg_free(s, m);
        return rc;
    }
    amb__counter_add(&self->reductions, 1);
    amb__mailbox_wait_wake(self);
    if (result != NULL)
        *result = self->wake_result;
    return 0;
}

void amb__blocking_call_done(amb__exec *x, amb__blocking_job *job, bool discard)
{
    amb__msg *m = cell_of(job);
    m->term = (amb_term)job->result;
    if (discard) {
        amb__msg_free(NULL, m);
        return;
    }
    amb_rt *rt = amb__rt_of(x);
    unsigned q = amb__qsbr_enter(x);
    amb_proc *p = amb__ptab_lookup(rt, ((call *)(void *)job)->pid);
    if (p != NULL)
        amb__mailbox_deliver(rt, NULL, p, m);
    else
        amb__msg_free(NULL, m);
    amb__qsbr_leave(x, q);
}

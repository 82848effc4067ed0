/*
 * info.c - process_info (amb_process_info): what a process reports about
 * itself, and the request signal that asks another process for it.
 *
 * As BEAM does since OTP 21, a request for another process is an
 * INFO_REQ cell in its mailbox, answered by the process itself when it
 * drains (in order with the messages sent to it before), so the queue
 * length and status are exact. The requester waits for the INFO_REPLY as
 * it waits for a blocking call (amb__mailbox_wait_begin / wait_wake). A
 * request that reaches a process that has ended is answered "no such
 * process" (status 0) by whoever frees it (amb__mailbox_discard). The
 * request cell has room for the answer and comes back as it, so answering
 * never needs memory.
 */
#include "process/fail.h"

/* Fills *out with p's state; p is the calling process or is handling a
 * request for it, so everything is exact. */
static void fill_info(amb_proc *p, amb_proc_info *out, amb_proc_status status)
{
    memset(out, 0, sizeof *out);
    out->status = status;
    out->registered_name = AMB_NONE;
    /* relaxed: under the registry lock, which orders it with its writers. */
    pthread_mutex_lock(&p->rt->names_lock);
    out->registered_name = atomic_load_explicit(&p->name, memory_order_relaxed);
    pthread_mutex_unlock(&p->rt->names_lock);
    /* relaxed: written only by p itself (amb__counter_add), which is the
     * calling thread here (p is the caller, or is answering in its drain). */
    out->message_queue_len = atomic_load_explicit(&p->pq_len, memory_order_relaxed);
    out->reductions = atomic_load_explicit(&p->reductions, memory_order_relaxed);
    out->stack_size = p->task.stack ? p->task.stack->size : 0;
    out->heap_size = p->heap ? amb_heap_size(p->heap) : 0;
    out->memory = sizeof *p + out->stack_size + out->heap_size +
                  (p->handler ? p->handler->state_size : 0);
    out->current_function = p->handler ? (const void *)p->handler : (const void *)p->fn;
    out->trap_exit = (p->flags & AMB__PF_TRAP_EXIT) != 0;
    out->links = p->links_mons.nlinks;
    out->monitors = p->links_mons.nheld;
}

#define INFO_WORDS ((sizeof(amb_proc_info) + 7) / 8)

/* Turns req into the INFO_REPLY to the requester it names (status 0 means
 * the target is gone) and sends it: the request was made with room for the
 * answer, so answering needs no memory. */
static void info_reply(amb_rt *rt, amb__sched *s, amb__msg *req, amb_proc *target)
{
    amb_pid requester = req->term;
    amb__msg *m = req;
    m->kind = AMB__MSG_INFO_REPLY;
    m->term = AMB_NONE;
    amb_proc_info info = {0};
    if (target != NULL) {
        /* It is handling the request while draining: a process inside a
         * receive (or a handler between messages) is waiting. */
        bool waiting = target->in_receive || (target->flags & AMB__PF_HANDLER);
        fill_info(target, &info, waiting ? AMB_STATUS_WAITING : AMB_STATUS_RUNNABLE);
    }
    memcpy(m->words, &info, sizeof info);
    amb_proc *r = amb__ptab_lookup(rt, requester);
    if (r != NULL)
        amb__mailbox_deliver(rt, s, r, m);
    else
        amb__msg_free(s, m);
}

void amb__info_answer(amb_proc *p, amb__msg *req)
{
    info_reply(p->rt, p->task.sched, req, p);
}

void amb__info_discard(amb_rt *rt, amb__sched *s, amb__msg *req)
{
    info_reply(rt, s, req, NULL);
}

int amb_process_info(amb_proc *self, amb_pid pid, amb_proc_info *out)
{
    if (self == NULL || out == NULL)
        return AMB_EBADARG;
    /* Not a pid (AMB_NONE among others) is misuse, as in Erlang; a pid of
     * another node is what it is for links and monitors. */
    int rc = amb__fail_check_pid(self->rt, pid);
    if (rc != 0)
        return rc;
    if (pid == self->pid) {
        amb_message_queue_len(self); /* drain: count what has arrived */
        fill_info(self, out, AMB_STATUS_RUNNING);
        return 0;
    }
    amb_proc *p = amb__ptab_lookup(self->rt, pid);
    if (p == NULL)
        return AMB_ENOPROC;
    /* As BEAM does since OTP 21: ask the process itself, which answers in
     * order with the messages sent to it before, so the answer is exact. */
    /* With room for the answer, which comes back in this very cell. */
    amb__msg *req = amb__msg_alloc(self->task.sched, INFO_WORDS);
    if (req == NULL)
        return AMB_ENOMEM;
    amb_proc_info info;
    req->kind = AMB__MSG_INFO_REQ;
    req->term = self->pid;
    req->wait_seq = amb__mailbox_wait_begin(self);
    self->info_dest = &info;
    amb__mailbox_deliver(self->rt, self->task.sched, p, req);
    amb__mailbox_wait_wake(self);
    self->info_dest = NULL;
    if (info.status == 0)
        return AMB_ENOPROC;
    *out = info;
    return 0;
}

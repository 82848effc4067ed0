/*
 * mailbox.c - sending, and receiving with selective receive, timeouts and
 * the save marker.
 *
 * A process's messages are in two places:
 *
 *   mbox (amb__mpscq)      private queue (pq_head ... pq_tail)
 *   any thread pushes  -->  the process drains it here, oldest first, and
 *                           gives each cell an arrival number (seq)
 *
 * A receive scans the private queue for the first cell that matches, then
 * drains whatever has arrived and scans the new cells, then parks. Cells it
 * passes over stay where they are, so unmatched messages keep their order.
 * Cells that are signals (a timeout, a finished blocking call, links,
 * monitors, exit signals: fail.h) are handled while draining, in order with
 * the messages; only what a signal turns into a message (a trapped exit, a
 * DOWN) enters the private queue, at the signal's place.
 *
 * The save marker: amb_receive_mark remembers the private queue's tail and
 * the arrival counter. pq_mark always points at the last cell that arrived
 * at or before the mark (or is NULL for "before the head"): when that cell
 * is removed, pq_mark moves to its predecessor, which arrived earlier still.
 * So a receive after the mark starts right behind pq_mark, in O(1).
 *
 * Borrows: a received message is "borrowed" until the next receive of its
 * family; its cell is freed then, or kept until the next collection by a
 * process with term state (pheap.c). There are two families, each with its
 * slot: amb_receive, amb_receive_if and amb_receive_match (p->borrowed), and
 * amb_receive_if_after (p->borrowed_after), the receive of every library
 * call that waits for an answer (gen_server calls, starts and stops, and so
 * supervisor and application calls). So such a call, made between a
 * receive and the use of its message, leaves that message alone (issue 13,
 * item 7); amb_sleep takes no message and ends no borrow.
 *
 * Everything here runs in the process itself, except amb__mailbox_deliver
 * (any thread) and amb__mailbox_drop_all and amb__mailbox_discard (the
 * scheduler, for a dead process).
 */
#include <sched.h>
#include <stdarg.h>

#include "process/fail.h"
#include "process/pio.h"
#include "runtime/qsbr.h"

static inline amb__msg *cell_of(amb__mpscq_node *n)
{
    return (amb__msg *)(void *)n;
}

/* The private queue reuses the cells' mailbox link, an atomic, for a list
 * that only the process touches: relaxed loads and stores are enough there
 * (the cells left the MPSC queue, and no producer writes them again). */
static inline amb__msg *pq_next(amb__msg *m)
{
    return cell_of(atomic_load_explicit(&m->node.next, memory_order_relaxed));
}

static inline void pq_set_next(amb__msg *m, amb__msg *next)
{
    atomic_store_explicit(&m->node.next, &next->node, memory_order_relaxed);
}

void amb__mailbox_deliver(amb_rt *rt, amb__sched *s, amb_proc *p, amb__msg *m)
{
    unsigned r = amb__mpscq_push(&p->task.inbox, &m->node);
    if (amb__likely(r == 0))
        return;
    if (r == AMB__MPSCQ_PARKED)
        amb__sched_ready(&rt->exec, s, &p->task);
    else /* p has ended: we answer what we pushed (and what followed) */
        amb__mailbox_close(rt, s, p);
}

/* Handles a signal cell. Returns the cell to put in the private queue: m
 * itself for an ordinary message, a message a signal turned into (a trapped
 * exit, a DOWN), or NULL when the signal was consumed. An exit signal may
 * end the process here (exit.c): the cells after it are dropped at
 * teardown. */
static amb__msg *handle_signal(amb_proc *p, amb__msg *m)
{
    if (amb__likely(m->kind == AMB__MSG_TERM))
        return m;
    switch (m->kind) {
    case AMB__MSG_TERM:
        return m;
    case AMB__MSG_ALIAS:
        return amb__alias_accept(p, m);
    case AMB__MSG_TIMEOUT:
        /* The timer cell back: the current wait times out only if its
         * deadline is reached (ptimer.c). */
        if (amb__ptimer_came_back(p->task.sched, p, m))
            p->wait_timed_out = true;
        return NULL;
    case AMB__MSG_WAKE:
        if (m->wait_seq == p->wait_seq) {
            p->wake_result = (intptr_t)m->term;
            p->wake_done = true;
        }
        amb__msg_free(p->task.sched, m);
        return NULL;
    case AMB__MSG_INFO_REQ:
        amb__info_answer(p, m);
        return NULL;
    case AMB__MSG_INFO_REPLY:
        amb__info_reply_taken(p, m);
        return NULL;
    case AMB__MSG_LINK:
    case AMB__MSG_UNLINK:
    case AMB__MSG_UNLINK_ACK:
        amb__link_signal(p, m);
        return NULL;
    case AMB__MSG_EXIT:
        return amb__exit_signal(p, m);
    case AMB__MSG_MONITOR:
    case AMB__MSG_DEMONITOR:
    case AMB__MSG_DOWN:
        return amb__monitor_signal(p, m);
    case AMB__MSG_NODEDOWN:
        amb__remote_nodedown_signal(p, m);
        return NULL;
    case AMB__MSG_IO:
    case AMB__MSG_RES_EVENT:
    case AMB__MSG_RES_GIVE:
        /* An I/O event may append messages to the private queue itself
         * (amb__pio_deliver_self), in order at this cell's place. */
        amb__pio_cell(p, m);
        return NULL;
    }
    amb__panic("unknown signal kind %u", m->kind);
}

/* Appends m to the private queue as its newest message. */
static void append(amb_proc *p, amb__msg *m)
{
    m->seq = ++p->pq_seq;
    /* relaxed: the private queue's link (see pq_next). */
    atomic_store_explicit(&m->node.next, NULL, memory_order_relaxed);
    if (p->pq_tail != NULL)
        pq_set_next(p->pq_tail, m);
    else
        p->pq_head = m;
    p->pq_tail = m;
    amb__size_add(&p->pq_len, 1);
}

void amb__mailbox_append(amb_proc *p, amb__msg *m)
{
    append(p, m);
}

/* Moves every visible cell from the mailbox to the private queue. Returns
 * the first cell added, or NULL. */
static amb__msg *drain(amb_proc *p)
{
    amb__msg *old_tail = p->pq_tail;
    amb__mpscq_node *n;
    while ((n = amb__mpscq_pop(&p->task.inbox)) != NULL) {
        amb__msg *m = handle_signal(p, cell_of(n));
        if (m != NULL)
            append(p, m);
    }
    if (amb__unlikely(p->io != NULL))
        amb__pio_drained(p);
    /* What arrived begins behind the old tail (a signal may have appended
     * messages too: an I/O event's). */
    return old_tail != NULL ? pq_next(old_tail) : p->pq_head;
}

/* Unlinks m, whose predecessor is prev (NULL when m is the head). */
static void unlink_cell(amb_proc *p, amb__msg *prev, amb__msg *m)
{
    amb__msg *next = pq_next(m);
    if (prev != NULL) /* relaxed: the private queue's link (see pq_next) */
        atomic_store_explicit(&prev->node.next, next ? &next->node : NULL,
                              memory_order_relaxed);
    else
        p->pq_head = next;
    if (p->pq_tail == m)
        p->pq_tail = prev;
    if (p->pq_mark == m)
        p->pq_mark = prev;
    amb__size_add(&p->pq_len, -1);
}

/* A received message whose borrow ended: freed, or, in a process with term
 * state, kept until the next collection (its state may refer to it). */
static void end_borrow(amb_proc *p, amb__msg *m)
{
    if (p->flags & AMB__PF_KEEP)
        amb__pheap_keep(p, m);
    else
        amb__msg_free(p->task.sched, m);
}

/* Ends the borrow of the message in *slot (one of p's borrow slots, see
 * "Borrows" above). */
static void release(amb_proc *p, amb__msg **slot)
{
    if (*slot != NULL) {
        end_borrow(p, *slot);
        *slot = NULL;
    }
}

void amb__mailbox_release_borrowed(amb_proc *p)
{
    release(p, &p->handling);
    /* A handler's callbacks seldom receive: one test for both slots. */
    if (amb__unlikely(((uintptr_t)p->borrowed | (uintptr_t)p->borrowed_after) != 0)) {
        release(p, &p->borrowed);
        release(p, &p->borrowed_after);
    }
}

typedef struct matcher {
    amb_match_fn *fn; /* NULL: anything matches */
    void *ctx;
    const int *abort_rc; /* when it becomes non-zero, the receive stops with it */
} matcher;

/* Runs the match function, with nested waits refused meanwhile
 * (amb__proc_may_wait). */
static bool matches(amb_proc *p, matcher mt, amb_term msg)
{
    p->in_match = true;
    bool hit = mt.fn(mt.ctx, msg);
    p->in_match = false;
    return hit;
}

/* The receive of every kind: the first cell after `after` (a seq; 0 for the
 * whole queue) for which m matches; it ends the borrow of *slot and the cell
 * it takes is borrowed there next. */
static int receive_body(amb_proc *p, uint64_t after, bool use_mark, matcher mt,
                        amb__msg **slot, int64_t timeout_ms, amb_term *out)
{
    release(p, slot);
    amb__proc_reduce(p);
    p->wait_seq++;
    p->wait_timed_out = false;
    bool armed = false;

    /* Where to start: behind the mark in O(1), or from the head. */
    amb__msg *prev = NULL, *m = p->pq_head;
    if (use_mark && p->pq_mark_seq == after) {
        prev = p->pq_mark;
        m = prev ? pq_next(prev) : p->pq_head;
    }
    for (;;) {
        size_t passed = 0; /* cells this pass went by: charged as reductions */
        for (; m != NULL; prev = m, m = pq_next(m), passed++) {
            if (m->seq <= after)
                continue;
            if (mt.fn == NULL || matches(p, mt, m->term)) {
                amb__proc_charge(p, passed);
                if (mt.abort_rc != NULL && *mt.abort_rc != 0) {
                    if (armed)
                        amb__ptimer_wait_end(p);
                    return *mt.abort_rc; /* nothing was taken */
                }
                unlink_cell(p, prev, m);
                if (armed)
                    amb__ptimer_wait_end(p);
                *slot = m;
                if (out != NULL)
                    *out = m->term;
                return 0;
            }
        }
        /* Scanned everything: look at what arrived since. */
        amb__proc_charge(p, passed);
        amb__msg *fresh = drain(p);
        if (fresh != NULL) {
            m = fresh;
            /* prev stays the cell before fresh: the old tail (or NULL). */
            continue;
        }
        if (p->wait_timed_out || timeout_ms == 0)
            return AMB_ETIMEDOUT;
        if (!armed && timeout_ms > 0) {
            int rc = amb__ptimer_wait(p->task.sched, p, (uint64_t)timeout_ms);
            if (rc != 0)
                return rc;
            armed = true;
        }
        amb__sched_switch_out(&p->task, AMB__TASK_PARK);
    }
}

/* While it runs the process is "waiting" as process_info reports it. */
static int receive(amb_proc *p, uint64_t after, bool use_mark, matcher mt,
                   amb__msg **slot, int64_t timeout_ms, amb_term *out)
{
    if (!amb__proc_may_wait(p))
        return AMB_ESTATE;
    p->in_receive = true;
    int rc = receive_body(p, after, use_mark, mt, slot, timeout_ms, out);
    p->in_receive = false;
    return rc;
}

/* The oldest cell of the mailbox when the private queue is empty: popped
 * straight from the MPSC queue, signals handled on the way. A signal that
 * appended messages itself (an I/O event) puts them first. */
static amb__msg *pop_direct(amb_proc *p)
{
    if (amb__unlikely(p->io != NULL))
        amb__pio_drained(p);
    amb__mpscq_node *n;
    while ((n = amb__mpscq_pop(&p->task.inbox)) != NULL) {
        amb__msg *m = handle_signal(p, cell_of(n));
        if (amb__unlikely(p->pq_head != NULL)) {
            if (m != NULL)
                append(p, m);
            m = p->pq_head;
            unlink_cell(p, NULL, m);
            return m;
        }
        if (m != NULL) {
            m->seq = ++p->pq_seq;
            return m;
        }
    }
    return NULL;
}

/* The plain receive takes the oldest message, so it needs no scan: the
 * private queue's head if there is one (it is older than anything in the
 * mailbox), else the mailbox's head, without moving it to the private queue
 * first. This is the path of every ping-pong, ring and call reply. */
int amb_receive(amb_proc *self, int64_t timeout_ms, amb_term *out)
{
    if (self == NULL || !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    amb_proc *p = self;
    if (!amb__proc_may_wait(p))
        return AMB_ESTATE;
    release(p, &p->borrowed);
    amb__proc_reduce(p);
    p->wait_seq++;
    p->wait_timed_out = false;
    p->in_receive = true;
    bool armed = false;
    int rc = 0;
    for (;;) {
        amb__msg *m = p->pq_head;
        if (m != NULL)
            unlink_cell(p, NULL, m);
        else
            m = pop_direct(p);
        if (m != NULL) {
            if (armed)
                amb__ptimer_wait_end(p);
            p->borrowed = m;
            if (out != NULL)
                *out = m->term;
            break;
        }
        if (p->wait_timed_out || timeout_ms == 0) {
            rc = AMB_ETIMEDOUT;
            break;
        }
        if (!armed && timeout_ms > 0) {
            if ((rc = amb__ptimer_wait(p->task.sched, p, (uint64_t)timeout_ms)) != 0)
                break;
            armed = true;
        }
        amb__sched_switch_out(&p->task, AMB__TASK_PARK);
    }
    p->in_receive = false;
    return rc;
}

int amb_receive_if(amb_proc *self, amb_match_fn *match, void *ctx, int64_t timeout_ms,
                   amb_term *out)
{
    if (self == NULL || match == NULL || !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    return receive(self, 0, false, (matcher){match, ctx, NULL}, &self->borrowed,
                   timeout_ms, out);
}

amb_recv_mark amb_receive_mark(amb_proc *self)
{
    amb_recv_mark mark = {0};
    if (self == NULL)
        return mark;
    /* Everything that has arrived counts as before the mark. */
    drain(self);
    self->pq_mark = self->pq_tail;
    self->pq_mark_seq = self->pq_seq;
    mark.seq = self->pq_seq;
    return mark;
}

int amb_receive_if_after(amb_proc *self, amb_recv_mark mark, amb_match_fn *match,
                         void *ctx, int64_t timeout_ms, amb_term *out)
{
    if (self == NULL || match == NULL || !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    return receive(self, mark.seq, true, (matcher){match, ctx, NULL},
                   &self->borrowed_after, timeout_ms, out);
}

/* Pattern matching for amb_receive_match: a trial match binds nothing (the
 * pattern is checked with a scratch copy of the arguments' va_list), the
 * final one binds. */
typedef struct pattern {
    const char *fmt;
    va_list *ap;
    int error; /* AMB_EFORMAT etc. from a bad pattern */
} pattern;

static bool pattern_matches(void *ctx, amb_term msg)
{
    pattern *pt = ctx;
    if (pt->error != 0)
        return true; /* stop scanning: the pattern itself is bad */
    va_list ap;
    va_copy(ap, *pt->ap);
    int rc = amb_vmatch(msg, NULL, pt->fmt, ap);
    va_end(ap);
    if (rc == 0)
        return true;
    if (rc != AMB_ENOMATCH)
        pt->error = rc;
    return pt->error != 0;
}

int amb_receive_match(amb_proc *self, int64_t timeout_ms, amb_term *out, const char *fmt,
                      ...)
{
    if (self == NULL || fmt == NULL || !amb__timeout_ok(timeout_ms, true))
        return AMB_EBADARG;
    va_list ap;
    va_start(ap, fmt);
    /* A bad pattern is an error at once, even with nothing to match: the
     * matcher reads the whole format whatever the term. */
    va_list check;
    va_copy(check, ap);
    int frc = amb_vmatch(AMB_NIL, NULL, fmt, check);
    va_end(check);
    if (frc != 0 && frc != AMB_ENOMATCH) {
        va_end(ap);
        return frc;
    }
    pattern pt = {fmt, &ap, 0};
    amb_term msg;
    int rc = receive(self, 0, false, (matcher){pattern_matches, &pt, &pt.error},
                     &self->borrowed, timeout_ms, &msg);
    if (rc == 0) {
        va_list bind;
        va_copy(bind, ap);
        rc = amb_vmatch(msg, NULL, fmt, bind);
        va_end(bind);
        if (rc == 0 && out != NULL)
            *out = msg;
    }
    va_end(ap);
    return rc;
}

void amb__mailbox_drain(amb_proc *p)
{
    drain(p);
}

/* A wait for the timer alone: the mailbox drains (signals are handled, an
 * exit signal may end p) but nothing is scanned or taken, so sleeping costs
 * nothing per queued message and ends no borrow. */
int amb__mailbox_sleep(amb_proc *p, int64_t ms)
{
    if (!amb__proc_may_wait(p))
        return AMB_ESTATE;
    amb__proc_reduce(p);
    p->wait_seq++;
    p->wait_timed_out = false;
    if (ms == 0)
        return 0;
    if (ms > 0) {
        int rc = amb__ptimer_wait(p->task.sched, p, (uint64_t)ms);
        if (rc != 0)
            return rc;
    }
    p->in_receive = true;
    for (;;) {
        drain(p);
        if (p->wait_timed_out)
            break;
        amb__sched_switch_out(&p->task, AMB__TASK_PARK);
    }
    p->in_receive = false;
    return 0;
}

uint32_t amb__mailbox_wait_begin(amb_proc *p)
{
    p->wake_done = false;
    return ++p->wait_seq;
}

void amb__mailbox_wait_wake(amb_proc *p)
{
    for (;;) {
        drain(p);
        if (p->wake_done)
            return;
        amb__sched_switch_out(&p->task, AMB__TASK_PARK);
    }
}

/* A handler's message is kept apart from `borrowed`: a receive nested in
 * handle() frees its own previous message, never the one handle() was
 * given, which is borrowed until handle() returns. */
bool amb__mailbox_take(amb_proc *p, amb_term *out)
{
    amb__mailbox_release_borrowed(p);
    /* relaxed: see amb__proc_reduce; an exit signal acts before the next
     * message is handled. */
    if (atomic_load_explicit(&p->sig_pending, memory_order_relaxed))
        amb__proc_signals(p);
    amb__msg *m = p->pq_head;
    if (m != NULL)
        unlink_cell(p, NULL, m);
    else
        m = pop_direct(p);
    if (m == NULL)
        return false;
    p->handling = m;
    *out = m->term;
    return true;
}

void amb__mailbox_remove_if(amb_proc *p, amb_match_fn *match, void *ctx)
{
    drain(p);
    size_t passed = 0;
    amb__msg *prev = NULL, *m = p->pq_head;
    for (; m != NULL; passed++) {
        amb__msg *next = pq_next(m);
        if (match(ctx, m->term)) {
            unlink_cell(p, prev, m);
            amb__msg_free(p->task.sched, m);
        } else {
            prev = m;
        }
        m = next;
    }
    amb__proc_charge(p, passed);
}

void amb__mailbox_move_if(amb_proc *p, amb_match_fn *match, void *ctx, amb_proc *to)
{
    drain(p);
    size_t passed = 0;
    amb__msg *prev = NULL, *m = p->pq_head;
    for (; m != NULL; passed++) {
        amb__msg *next = pq_next(m);
        if (match(ctx, m->term)) {
            unlink_cell(p, prev, m);
            amb__mailbox_deliver(p->rt, p->task.sched, to, m);
        } else {
            prev = m;
        }
        m = next;
    }
    amb__proc_charge(p, passed);
}

size_t amb_message_queue_len(amb_proc *self)
{
    if (self == NULL)
        return 0;
    drain(self);
    /* relaxed: the caller is the counter's only writer. */
    return atomic_load_explicit(&self->pq_len, memory_order_relaxed);
}

static void free_chain(amb__sched *s, amb__msg *m)
{
    while (m != NULL) {
        amb__msg *next = pq_next(m);
        amb__msg_free(s, m);
        m = next;
    }
}

/* Discards every cell that has arrived in a dead process's mailbox. */
static void discard_arrived(amb_rt *rt, amb__sched *s, amb_proc *p)
{
    amb__mpscq_node *n;
    while ((n = amb__mpscq_pop(&p->task.inbox)) != NULL)
        amb__mailbox_discard(rt, s, cell_of(n));
}

void amb__mailbox_close(amb_rt *rt, amb__sched *s, amb_proc *p)
{
    for (;;) {
        discard_arrived(rt, s, p);
        if (amb__mpscq_close(&p->task.inbox))
            return;
        /* A push is under way (between its exchange and its link, a window
         * of two instructions unless its thread was preempted there): let
         * it finish, then pop its cell. */
        sched_yield();
    }
}

/* Frees a borrow slot's message at teardown (on s, not p's scheduler). */
static inline void drop_slot(amb__sched *s, amb__msg **slot)
{
    if (*slot != NULL) { /* most processes end borrowing nothing */
        amb__msg_free(s, *slot);
        *slot = NULL;
    }
}

void amb__mailbox_drop_all(amb__sched *s, amb_proc *p)
{
    drop_slot(s, &p->borrowed);
    drop_slot(s, &p->borrowed_after);
    drop_slot(s, &p->handling);
    free_chain(s, p->pq_head);
    p->pq_head = p->pq_tail = p->pq_mark = NULL;
    /* relaxed: the process is dead; process_info finds it gone. */
    atomic_store_explicit(&p->pq_len, 0, memory_order_relaxed);
    discard_arrived(p->rt, s, p);
}

void amb__mailbox_discard(amb_rt *rt, amb__sched *s, amb__msg *m)
{
    switch (m->kind) {
    case AMB__MSG_INFO_REQ:
        amb__info_discard(rt, s, m);
        return;
    case AMB__MSG_LINK:
        amb__link_discard(rt, s, m);
        return;
    case AMB__MSG_MONITOR:
        amb__monitor_discard(rt, s, m);
        return;
    case AMB__MSG_IO:
    case AMB__MSG_RES_EVENT:
    case AMB__MSG_RES_GIVE:
        amb__pio_cell_dropped(s, m);
        return;
    default:
        amb__msg_free(s, m);
    }
}

/* ---------------------------------------------------------------------------
 * Sending
 * ------------------------------------------------------------------------ */

/* Sends a copy of msg from `from` (AMB_NONE: from outside the runtime) to
 * every destination form of Erlang's `!`, from scheduler s (NULL: from
 * outside the runtime). */
static int send_to(amb_rt *rt, amb__sched *s, amb_pid from, amb_term to, amb_term msg)
{
    amb_term target = to;
    /* The common case, a pid of this runtime, needs no resolving; the next
     * one, a reply to an alias, is tried before the general resolution
     * (amb__alias_send says AMB_EBADARG for anything but an alias). */
    if (!amb__rt_own_pid(rt, to)) {
        int rc = amb__is_boxed(to) ? amb__alias_send(rt, s, to, msg) : AMB_EBADARG;
        if (rc != AMB_EBADARG)
            return rc;
        rc = amb__names_resolve(rt, to, &target);
        /* An unregistered name: `Name ! Msg` raises badarg; `{Name, node()}
         * ! Msg` drops the message (OTP). */
        if (rc == AMB_ENOTFOUND)
            return amb_is_atom(to) ? AMB_EBADARG : 0;
        if (rc != 0)
            return rc;
        if (!amb__rt_own_pid(rt, target)) {
            if (amb__alias_is(rt, target))
                return amb__alias_send(rt, s, target, msg);
            /* Another node's pid, alias or {Name, Node}. */
            const amb__remote *r = amb__remote_get(rt);
            return r->ops->send(r->ctx, s, from, target, msg);
        }
    }
    amb_proc *p = amb__ptab_lookup(rt, target);
    if (p == NULL)
        return 0; /* a dead pid: dropped, as in Erlang */
    amb__msg *m = amb__msg_new_term(s, msg);
    if (m == NULL)
        return AMB_ENOMEM;
    amb__mailbox_deliver(rt, s, p, m);
    return 0;
}

int amb_send(amb_proc *self, amb_term to, amb_term msg)
{
    if (self == NULL || msg == AMB_NONE)
        return AMB_EBADARG;
    int rc = send_to(self->rt, self->task.sched, self->pid, to, msg);
    if (rc == AMB__REMOTE_OVER_BUDGET) {
        /* Queued to another node over this sender's budget: the sender
         * (and only it) waits for its queue to drain (remote.h). */
        const amb__remote *r = amb__remote_get(self->rt);
        rc = r->ops->send_wait(r->ctx, self, to);
    }
    if (rc == 0)
        amb__proc_reduce(self);
    return rc;
}

int amb__mailbox_send(amb_rt *rt, amb__sched *s, amb_pid from, amb_term to, amb_term msg)
{
    int rc = send_to(rt, s, from, to, msg);
    return rc == AMB__REMOTE_OVER_BUDGET ? 0 : rc;
}

int amb_rt_send(amb_rt *rt, amb_term to, amb_term msg)
{
    if (rt == NULL || msg == AMB_NONE)
        return AMB_EBADARG;
    unsigned q = amb__qsbr_enter(&rt->exec);
    int rc = send_to(rt, NULL, AMB_NONE, to, msg);
    amb__qsbr_leave(&rt->exec, q);
    return rc == AMB__REMOTE_OVER_BUDGET ? 0 : rc;
}

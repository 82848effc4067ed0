/*
 * ptimer.c - the timers of processes, on the runtime's timers
 * (src/runtime/timer.h): receive timeouts, amb_send_after,
 * amb_cancel_timer / amb_read_timer, amb_sleep, amb_now_ms.
 *
 * A process timer is a message cell (msg.c) whose first words hold struct
 * ptimer: the runtime's timer, then what to do when it fires. One
 * allocation per timer, and the cell is what gets delivered:
 *   - A receive timeout fires by pushing its own cell into the process's
 *     mailbox as a TIMEOUT signal, so waking a parked process goes through
 *     the one protocol of mpscq.h, and a timeout that loses the race with a
 *     message is simply recognised as stale by the process (its wait
 *     number) and freed.
 *   - send_after copies the message, when the timer is armed, into the
 *     cell behind the timer; firing turns the cell into an ordinary message
 *     and delivers it. Its reference is the runtime timer's reference.
 *
 * Invariant: a timer cell belongs to the runtime from amb__timer_arm until
 * amb__ptimer_fire gets it back (or a cancel on the owner's scheduler
 * does), and to the process layer before and after.
 */
#include "process/rt.h"
#include "runtime/timer.h"

typedef struct ptimer {
    amb__timer t;       /* first: the runtime's timer is the cell's words[0] */
    amb_pid target;     /* the waiting process, or send_after's pid */
    amb_term dest_name; /* send_after to a name: looked up when it fires */
    bool is_send;       /* send_after (else a receive timeout) */
} ptimer;

#define PTIMER_WORDS ((sizeof(ptimer) + 7) / 8)

static inline ptimer *ptimer_of(amb__msg *m)
{
    return (ptimer *)(void *)m->words;
}

static inline amb__msg *cell_of(amb__timer *t)
{
    return (amb__msg *)(void *)((char *)t - offsetof(amb__msg, words));
}

int64_t amb_now_ms(void)
{
    return (int64_t)amb__clock_ms();
}

int amb__ptimer_wait(amb__sched *s, amb_proc *p, uint64_t ms)
{
    amb__msg *m = amb__msg_alloc(s, PTIMER_WORDS);
    if (m == NULL)
        return AMB_ENOMEM;
    m->kind = AMB__MSG_TIMEOUT;
    m->wait_seq = p->wait_seq;
    ptimer *pt = ptimer_of(m);
    pt->target = p->pid;
    pt->dest_name = AMB_NONE;
    pt->is_send = false;
    amb__timer_arm(s, &pt->t, ms);
    p->wait_timer = m;
    return 0;
}

void amb__ptimer_wait_cancel(amb__sched *s, amb_proc *p)
{
    amb__msg *m = p->wait_timer;
    if (m == NULL)
        return;
    p->wait_timer = NULL;
    /* Off our own wheel before it fired: ours to free. Otherwise it fired
     * and sits in the mailbox (stale, freed there), or the owner frees it
     * when its deadline comes. */
    if (amb__timer_cancel(s, &ptimer_of(m)->t))
        amb__msg_free(s, m);
}

void amb__ptimer_fire(amb__sched *s, amb__timer *tm, bool live)
{
    ptimer *pt = (ptimer *)(void *)tm;
    amb__msg *m = cell_of(tm);
    amb_rt *rt = amb__rt_of(s->exec);
    amb_proc *p = NULL;
    if (live)
        p = pt->dest_name != AMB_NONE ? amb__names_lookup(rt, pt->dest_name)
                                      : amb__ptab_lookup(rt, pt->target);
    if (p == NULL) {
        amb__msg_free(s, m);
        return;
    }
    /* A receive timeout is delivered as the TIMEOUT signal it is; a
     * send_after cell becomes the message it carries. */
    if (pt->is_send)
        m->kind = AMB__MSG_TERM;
    amb__mailbox_deliver(rt, s, p, m);
}

int amb_send_after(amb_proc *self, amb_term dest, amb_term msg, int64_t delay_ms,
                   amb_tref *tref)
{
    if (self == NULL || msg == AMB_NONE || !amb__timeout_ok(delay_ms, false) ||
        (!amb_is_atom(dest) && !amb_is_local_pid(dest)))
        return AMB_EBADARG;
    if (amb_is_local_pid(dest) && amb__lpid_slot(dest) != self->rt->node_slot)
        return AMB_ENOTSUP;
    amb__sched *s = self->task.sched;
    amb__msg *m = amb__msg_new_term_after(s, msg, PTIMER_WORDS);
    if (m == NULL)
        return AMB_ENOMEM;
    m->kind = AMB__MSG_TIMEOUT; /* until it fires: then an ordinary message */
    ptimer *pt = ptimer_of(m);
    pt->target = amb_is_atom(dest) ? AMB_NONE : dest;
    pt->dest_name = amb_is_atom(dest) ? dest : AMB_NONE;
    pt->is_send = true;
    if (tref == NULL) {
        amb__timer_arm(s, &pt->t, (uint64_t)delay_ms);
    } else if (amb__timer_arm_ref(s, &pt->t, (uint64_t)delay_ms, tref) != 0) {
        amb__msg_free(s, m);
        return AMB_ENOMEM;
    }
    amb__proc_reduce(self);
    return 0;
}

/* A timer aimed at a pid dies with that process, as in Erlang: it reads as
 * gone (it is freed when its deadline comes). Called under the owner's
 * reference lock, on a scheduler thread (so the lookup is safe). */
static bool target_gone(void *ctx, amb__timer *tm)
{
    const ptimer *pt = (const ptimer *)(void *)tm;
    return pt->dest_name == AMB_NONE && amb__ptab_lookup(ctx, pt->target) == NULL;
}

static int with_tref(amb_proc *self, amb_tref tref, bool cancel, int64_t *left_ms)
{
    if (self == NULL)
        return AMB_EBADARG;
    amb__sched *s = self->task.sched;
    amb__timer *freed;
    int rc = amb__timer_find(s, tref, cancel, target_gone, self->rt, left_ms, &freed);
    if (freed != NULL)
        amb__msg_free(s, cell_of(freed));
    return rc;
}

int amb_cancel_timer(amb_proc *self, amb_tref tref, int64_t *left_ms)
{
    return with_tref(self, tref, true, left_ms);
}

int amb_read_timer(amb_proc *self, amb_tref tref, int64_t *left_ms)
{
    return with_tref(self, tref, false, left_ms);
}

int amb_sleep(amb_proc *self, int64_t ms)
{
    if (self == NULL || !amb__timeout_ok(ms, true))
        return AMB_EBADARG;
    return amb__mailbox_sleep(self, ms);
}

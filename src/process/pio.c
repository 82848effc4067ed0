/*
 * pio.c - the process layer's I/O contract (pio.h; docs/design/sockets.md
 * §7): waits on poll descriptors, owned resources and their events, turns,
 * and the cleanup of a call in progress when its process ends.
 *
 * The I/O cell's life (one per process, in its I/O state):
 *
 *        arm (a wait)          fire (poller) / evict
 *   home -------------> armed ----------------------> pushed --> drained: home
 *     ^                   | disarm (timeout, exit)
 *     +-------------------+
 *   home --enqueue for a turn--> queued --grant--> pushed --> drained: home
 *
 * A pushed cell may reach the mailbox after its process stopped waiting for
 * it (a timeout lost the race with the fire, a grant raced with a timeout):
 * `out` stays true and the next wait takes the cell home first. A process
 * that ends leaves the cell wherever it is: the teardown and the dead
 * mailbox's reclamation skip it, and the state it lives in is freed with
 * the block, after QSBR's grace period, when no pusher can still hold it.
 */
#include "process/pio.h"
#include "runtime/clock.h"

/* The state a cell header is embedded in. */
#define CONTAINER(ptr, type, field) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, field)))

static void io_init(amb__pio *io, amb_proc *p)
{
    io->cell.kind = AMB__MSG_IO;
    io->w.task = &p->task;
    io->w.node = &io->cell.node;
}

amb__pio *amb__pio_of(amb_proc *p)
{
    if (amb__likely(p->io != NULL))
        return p->io;
    amb__pio *io = amb__calloc(1, sizeof *io);
    if (io == NULL)
        return NULL;
    io_init(io, p);
    p->io = io;
    return io;
}

uint64_t amb__pio_deadline(amb_proc *p, int64_t timeout_ms)
{
    if (timeout_ms == AMB_INFINITY)
        return UINT64_MAX;
    return amb__clock_ms(&p->rt->exec.clock) + (uint64_t)timeout_ms;
}

/* Takes the I/O cell home when it is on its way (a fire or a grant the
 * last wait did not wait for): it arrives soon, its push wakes p. */
static void take_home(amb_proc *p, amb__pio *io)
{
    while (io->out) {
        amb__mailbox_drain(p);
        if (!io->out)
            break;
        amb__sched_switch_out(&p->task, AMB__TASK_PARK);
    }
}

/* Parks p until its cell comes home or the deadline passes (true: it came
 * home). The caller made the cell go out. */
static bool park_for_cell(amb_proc *p, amb__pio *io, uint64_t deadline)
{
    bool timed = deadline != UINT64_MAX;
    p->wait_seq++;
    p->wait_timed_out = false;
    if (timed) {
        amb__sched *s = p->task.sched;
        uint64_t now = amb__clock_ms(&s->exec->clock);
        if (deadline <= now || amb__ptimer_wait(s, p, deadline - now) != 0)
            p->wait_timed_out = true; /* a timer that cannot be made: poll */
    }
    p->in_receive = true;
    for (;;) {
        amb__mailbox_drain(p);
        if (!io->out || p->wait_timed_out)
            break;
        amb__sched_switch_out(&p->task, AMB__TASK_PARK);
    }
    p->in_receive = false;
    if (timed)
        amb__ptimer_wait_end(p);
    return !io->out;
}

int amb__pio_wait(amb_proc *p, amb__poll_desc *pd, uint32_t gen, int dir,
                  uint64_t deadline)
{
    if (!amb__proc_may_wait(p))
        return AMB_ESTATE;
    amb__pio *io = amb__pio_of(p);
    if (io == NULL)
        return AMB_ENOMEM;
    /* A reduction per wait: a process that waits in a loop yields now and
     * then, and notices exit signals. */
    amb__proc_reduce(p);
    take_home(p, io);
    int rc = amb__poll_arm(pd, gen, dir, &io->w);
    if (rc == AMB_EAGAIN)
        return 0; /* an edge came since the reset: retry the syscall */
    if (rc != 0)
        return rc;
    io->out = true;
    io->pd = pd;
    io->dir = dir;
    if (park_for_cell(p, io, deadline)) {
        io->pd = NULL;
        return 0;
    }
    /* Timed out: take the waiter back, or leave its fire in flight (the
     * next wait takes the cell home). */
    if (amb__poll_disarm(pd, dir, &io->w))
        io->out = false;
    io->pd = NULL;
    return AMB_ETIMEDOUT;
}

/* ---------------------------------------------------------------------------
 * Owned resources and their events
 * ------------------------------------------------------------------------ */

static void link_owned(amb__pio *io, amb__pio_res *r)
{
    r->prev = NULL;
    r->next = io->owned;
    if (io->owned != NULL)
        io->owned->prev = r;
    io->owned = r;
    r->owned = true;
}

int amb__pio_own(amb_proc *p, amb__pio_res *r)
{
    amb__pio *io = amb__pio_of(p);
    if (io == NULL)
        return AMB_ENOMEM;
    r->event.kind = AMB__MSG_RES_EVENT;
    r->give.kind = AMB__MSG_RES_GIVE;
    link_owned(io, r);
    return 0;
}

void amb__pio_disown(amb_proc *p, amb__pio_res *r)
{
    if (!r->owned)
        return;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        p->io->owned = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    r->owned = false;
}

int amb__pio_give(amb_proc *p, amb__pio_res *r, amb_pid to)
{
    if (to == p->pid)
        return 0;
    amb_proc *q = amb__ptab_lookup(p->rt, to);
    if (q == NULL)
        return AMB_ENOPROC;
    /* The receiver may have no I/O state, and only it may make one (its
     * field): the giver makes it, so that a failure is the giver's to
     * report. The receiver frees it when it has one already. */
    amb__pio *spare = amb__calloc(1, sizeof *spare);
    if (spare == NULL)
        return AMB_ENOMEM;
    amb__pio_disown(p, r);
    r->spare = spare;
    amb__mailbox_deliver(p->rt, p->task.sched, q, &r->give);
    return 0;
}

bool amb__pio_kick(amb_rt *rt, amb__sched *s, amb__pio_res *r, amb_pid owner)
{
    amb_proc *q = amb__ptab_lookup(rt, owner);
    if (q == NULL)
        return false;
    amb__mailbox_deliver(rt, s, q, &r->event);
    return true;
}

void amb__pio_deliver_self(amb_proc *p, amb__msg *m)
{
    amb__mailbox_append(p, m);
}

void amb__pio_requeue(amb_proc *p, amb__pio_res *r)
{
    amb__pio *io = p->io; /* an owner has one */
    r->requeue_next = NULL;
    if (io->requeue_last != NULL)
        io->requeue_last->requeue_next = r;
    else
        io->requeue = r;
    io->requeue_last = r;
}

void amb__pio_drained(amb_proc *p)
{
    amb__pio *io = p->io;
    while (io->requeue != NULL) {
        amb__pio_res *r = io->requeue;
        io->requeue = r->requeue_next;
        if (io->requeue == NULL)
            io->requeue_last = NULL;
        r->requeue_next = NULL;
        /* Into its own mailbox: p runs, so the push never finds it parked. */
        amb__mailbox_deliver(p->rt, p->task.sched, p, &r->event);
    }
}

uint8_t *amb__pio_scratch(amb__sched *s)
{
    amb__rt_sched *rs = amb__rt_sched_of(s);
    if (amb__unlikely(rs->io_scratch == NULL))
        rs->io_scratch = amb__malloc(AMB__PIO_SCRATCH);
    return rs->io_scratch;
}

void amb__pio_cell(amb_proc *p, amb__msg *m)
{
    switch (m->kind) {
    case AMB__MSG_IO:
        CONTAINER(m, amb__pio, cell)->out = false;
        return;
    case AMB__MSG_RES_EVENT: {
        amb__pio_res *r = CONTAINER(m, amb__pio_res, event);
        r->ops->event(p, r);
        return;
    }
    case AMB__MSG_RES_GIVE: {
        amb__pio_res *r = CONTAINER(m, amb__pio_res, give);
        amb__pio *spare = r->spare;
        r->spare = NULL;
        if (p->io == NULL) {
            io_init(spare, p);
            p->io = spare;
        } else {
            amb__free(spare);
        }
        link_owned(p->io, r);
        r->ops->given(p, r);
        return;
    }
    default:
        amb__panic("not an I/O cell: kind %u", m->kind);
    }
}

void amb__pio_cell_dropped(amb__sched *s, amb__msg *m)
{
    switch (m->kind) {
    case AMB__MSG_IO:
        return; /* freed with its process's block */
    case AMB__MSG_RES_EVENT: {
        amb__pio_res *r = CONTAINER(m, amb__pio_res, event);
        r->ops->event_dropped(s, r);
        return;
    }
    case AMB__MSG_RES_GIVE: {
        amb__pio_res *r = CONTAINER(m, amb__pio_res, give);
        amb__free(r->spare);
        r->spare = NULL;
        r->ops->release(s, r);
        return;
    }
    default:
        amb__panic("not an I/O cell: kind %u", m->kind);
    }
}

/* ---------------------------------------------------------------------------
 * Turns
 * ------------------------------------------------------------------------ */

void amb__pio_turn_init(amb__pio_turn *t)
{
    atomic_init(&t->lock.held, 0);
    t->held = false;
    t->first = t->last = NULL;
}

bool amb__pio_turn_try(amb__pio_turn *t)
{
    amb__spin_lock(&t->lock);
    bool took = !t->held;
    t->held = true;
    amb__spin_unlock(&t->lock);
    return took;
}

/* Takes io out of t's queue (under t's lock). */
static void dequeue(amb__pio_turn *t, amb__pio *io)
{
    amb__pio *prev = NULL;
    for (amb__pio *w = t->first; w != NULL; prev = w, w = w->turn_next) {
        if (w != io)
            continue;
        if (prev != NULL)
            prev->turn_next = w->turn_next;
        else
            t->first = w->turn_next;
        if (t->last == w)
            t->last = prev;
        w->turn_next = NULL;
        return;
    }
}

int amb__pio_turn_acquire(amb_proc *p, amb__pio_turn *t, uint64_t deadline)
{
    if (amb__pio_turn_try(t))
        return 0;
    if (!amb__proc_may_wait(p))
        return AMB_ESTATE;
    amb__pio *io = amb__pio_of(p);
    if (io == NULL)
        return AMB_ENOMEM;
    take_home(p, io);
    amb__spin_lock(&t->lock);
    if (!t->held) { /* given back meanwhile */
        t->held = true;
        amb__spin_unlock(&t->lock);
        return 0;
    }
    io->granted = false;
    io->turn_next = NULL;
    io->turn_wait = t;
    if (t->last != NULL)
        t->last->turn_next = io;
    else
        t->first = io;
    t->last = io;
    io->out = true; /* the grant pushes the cell */
    amb__spin_unlock(&t->lock);
    int rc = 0;
    if (!park_for_cell(p, io, deadline)) {
        amb__spin_lock(&t->lock);
        if (!io->granted) {
            dequeue(t, io);
            io->out = false; /* never pushed */
            rc = AMB_ETIMEDOUT;
        }
        /* else: given just as the deadline passed: ours, and its cell is
         * on its way (taken home by the next wait) */
        amb__spin_unlock(&t->lock);
    }
    io->turn_wait = NULL;
    return rc;
}

void amb__pio_turn_release(amb__sched *s, amb__pio_turn *t)
{
    amb__spin_lock(&t->lock);
    amb__pio *w = t->first;
    if (w == NULL) {
        t->held = false;
        amb__spin_unlock(&t->lock);
        return;
    }
    t->first = w->turn_next;
    if (t->first == NULL)
        t->last = NULL;
    w->turn_next = NULL;
    w->granted = true; /* the turn passes to w; `held` stays true */
    /* w's process is alive (a dying one leaves the queue under this lock)
     * until its block is reclaimed, after we pass a quiescent point. */
    amb_proc *p = amb__proc_of(w->w.task);
    amb__spin_unlock(&t->lock);
    amb__mailbox_deliver(p->rt, s, p, &w->cell);
}

/* ---------------------------------------------------------------------------
 * The end of a process
 * ------------------------------------------------------------------------ */

void amb__pio_exit(amb_proc *p)
{
    amb__pio *io = p->io;
    if (io == NULL)
        return;
    /* The waiter first: the call's cleanup gives back the turn, and the next
     * holder arms on the same slot. */
    if (io->pd != NULL) {
        if (amb__poll_disarm(io->pd, io->dir, &io->w))
            io->out = false;
        io->pd = NULL;
    }
    amb__pio_turn *t = io->turn_wait;
    if (t != NULL) {
        io->turn_wait = NULL;
        amb__spin_lock(&t->lock);
        bool granted = io->granted;
        if (!granted)
            dequeue(t, io);
        amb__spin_unlock(&t->lock);
        if (granted) /* ours already: pass it on */
            amb__pio_turn_release(p->task.sched, t);
    }
    if (io->cleanup != NULL) {
        void (*fn)(amb_proc *, void *) = io->cleanup;
        void *ctx = io->ctx;
        amb__pio_call_end(io);
        fn(p, ctx);
    }
}

void amb__pio_teardown(amb__sched *s, amb_proc *p)
{
    amb__pio *io = p->io;
    if (io == NULL)
        return;
    amb__pio_exit(p);
    /* Event cells waiting for the end of a drain that will not come. */
    while (io->requeue != NULL) {
        amb__pio_res *r = io->requeue;
        io->requeue = r->requeue_next;
        r->requeue_next = NULL;
        r->ops->event_dropped(s, r);
    }
    io->requeue_last = NULL;
    while (io->owned != NULL) {
        amb__pio_res *r = io->owned;
        amb__pio_disown(p, r);
        r->ops->release(s, r);
    }
}

void amb__pio_free(amb_proc *p)
{
    amb__free(p->io);
    p->io = NULL;
}

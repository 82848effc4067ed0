/*
 * info.c - process_info: what a process reports about itself, as counts
 * (amb_process_info) or as OTP's items (amb_process_info_items: links,
 * monitors, messages ... as terms), and the request signal that asks
 * another process for it.
 *
 * As BEAM does since OTP 21, a request for another process is an INFO_REQ
 * cell in its mailbox, answered by the process itself when it drains (in
 * order with the messages sent to it before), so the queue length, the
 * lists and the status are exact. The requester waits for the INFO_REPLY as
 * it waits for a blocking call (amb__mailbox_wait_begin / wait_wake). A
 * request that reaches a process that has ended is answered "no such
 * process" (status 0) by whoever frees it (amb__mailbox_discard). The
 * request cell has room for the counts and comes back as the reply, so
 * answering never needs memory.
 *
 * Items travel as terms: the request carries the item list (validated by
 * the requester), the target builds its answer on a scratch heap and
 * copies it into a reply cell of its own; the requester copies it onto its
 * own heap. When that takes memory there is not, the request comes back as
 * the reply all the same, without the answer, and the requester reports
 * AMB_ENOMEM.
 *
 * Memory counts what the process holds, as OTP's process_info(P, memory):
 * its block, stack, heap and state, its links, monitors and aliases, and
 * its mailbox, every message cell in the private queue and the messages it
 * borrows (8M queued messages were 2.5 GiB that were not counted: issue 13,
 * item 15). The cells still in the MPSC queue have not arrived yet, for this
 * answer: they came after the request.
 */
#include "process/fail.h"

/* A requester's wait (proc.h, info_wait): where the answer goes. */
struct amb__info_wait {
    amb_proc_info info;
    amb__msg *cell; /* the reply cell when it carries items (else NULL) */
    bool want_cell;
};

/* The bytes of the messages p holds: its private queue and borrows. */
static size_t mailbox_bytes(const amb_proc *p)
{
    size_t bytes = 0;
    const amb__msg *held[] = {p->borrowed, p->borrowed_after, p->handling};
    for (size_t i = 0; i < AMB_COUNTOF(held); i++)
        if (held[i] != NULL)
            bytes += amb__msg_bytes(held[i]);
    /* relaxed: the private queue's link, which only p touches (mailbox.c). */
    for (const amb__msg *m = p->pq_head; m != NULL;
         m = (const amb__msg *)(const void *)atomic_load_explicit(&m->node.next,
                                                                  memory_order_relaxed))
        bytes += amb__msg_bytes(m);
    return bytes;
}

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
    /* A term-state process's kept messages are heap until its next
     * collection (pheap.c), as BEAM counts heap fragments. */
    out->heap_size =
        (p->heap ? amb__heap_held(p->heap) : 0) + (p->pheap ? p->pheap->kept_bytes : 0);
    out->memory = sizeof *p + out->stack_size + out->heap_size +
                  (p->handler ? p->handler->state_size : 0) + mailbox_bytes(p) +
                  amb__fail_bytes(p) + amb__alias_bytes(p);
    out->current_function = p->handler ? (const void *)p->handler : (const void *)p->fn;
    out->trap_exit = (p->flags & AMB__PF_TRAP_EXIT) != 0;
    out->links = amb__link_count(p);
    out->monitors = amb__monitor_count(p);
}

/* ---------------------------------------------------------------------------
 * Items (OTP's process_info/2)
 * ------------------------------------------------------------------------ */

/* The items served, by their OTP names. */
enum item {
    I_LINKS,
    I_MONITORS,
    I_MONITORED_BY,
    I_MESSAGES,
    I_MESSAGE_QUEUE_LEN,
    I_MEMORY,
    I_REGISTERED_NAME,
    I_STATUS,
    I_REDUCTIONS,
    I_TRAP_EXIT,
    I_COUNT
};

static const char *const item_names[I_COUNT] = {
    "links",  "monitors",        "monitored_by", "messages",   "message_queue_len",
    "memory", "registered_name", "status",       "reductions", "trap_exit",
};

/* The item an atom names, or I_COUNT. */
static enum item item_of(amb_term atom)
{
    for (int i = 0; i < I_COUNT; i++)
        if (atom == amb_atom(item_names[i]))
            return (enum item)i;
    return I_COUNT;
}

/* True for an item atom or a proper list of them. */
static bool items_ok(amb_term items)
{
    if (amb_is_atom(items))
        return item_of(items) != I_COUNT;
    amb_term l = items;
    for (; amb_is_cons(l); l = amb_list_tail(l))
        if (!amb_is_atom(amb_list_head(l)) || item_of(amb_list_head(l)) == I_COUNT)
            return false;
    return amb_is_nil(l);
}

/* Copies of the messages in p's private queue, oldest first, on h. */
static amb_term message_list(const amb_proc *p, amb_heap *h, size_t n)
{
    amb_term *v = n > 0 ? amb__malloc(n * sizeof *v) : NULL;
    if (n > 0 && v == NULL)
        return AMB_NONE;
    size_t i = 0;
    /* relaxed: the private queue's link (mailbox.c). */
    for (const amb__msg *m = p->pq_head; m != NULL && i < n;
         m = (const amb__msg *)(const void *)atomic_load_explicit(&m->node.next,
                                                                  memory_order_relaxed))
        v[i++] = m->term;
    amb_term l = AMB_NIL;
    while (i-- > 0 && l != AMB_NONE) {
        amb_term c;
        l = amb_term_copy(h, v[i], &c) == 0 ? amb_cons(h, c, l) : AMB_NONE;
    }
    amb__free(v);
    return l;
}

static const char *status_name(amb_proc_status s)
{
    switch (s) {
    case AMB_STATUS_RUNNABLE:
        return "runnable";
    case AMB_STATUS_RUNNING:
        return "running";
    case AMB_STATUS_WAITING:
        return "waiting";
    default:
        return "exiting";
    }
}

/* {Item, Value} for p (described by pi), on h. */
static amb_term item_term(amb_proc *p, const amb_proc_info *pi, amb_heap *h,
                          amb_term atom)
{
    amb_term v = AMB_NONE;
    switch (item_of(atom)) {
    case I_LINKS:
        v = amb__link_list(p, h);
        break;
    case I_MONITORS:
        v = amb__monitor_list(p, h, true);
        break;
    case I_MONITORED_BY:
        v = amb__monitor_list(p, h, false);
        break;
    case I_MESSAGES:
        v = message_list(p, h, pi->message_queue_len);
        break;
    case I_MESSAGE_QUEUE_LEN:
        v = amb_uint(h, pi->message_queue_len);
        break;
    case I_MEMORY:
        v = amb_uint(h, pi->memory);
        break;
    case I_REGISTERED_NAME: /* OTP answers [] for a process without a name */
        v = pi->registered_name != AMB_NONE ? pi->registered_name : AMB_NIL;
        break;
    case I_STATUS:
        v = amb_atom(status_name(pi->status));
        break;
    case I_REDUCTIONS:
        v = amb_uint(h, pi->reductions);
        break;
    case I_TRAP_EXIT:
        v = pi->trap_exit ? AMB_ATOM_TRUE : AMB_ATOM_FALSE;
        break;
    case I_COUNT:
        break;
    }
    return AMB_TUPLE(h, atom, v);
}

/* The answer to items for p: {Item, Value} for an atom, [{Item, Value}] in
 * the list's order for a list; on h, AMB_NONE when out of memory. */
static amb_term items_term(amb_proc *p, const amb_proc_info *pi, amb_heap *h,
                           amb_term items)
{
    if (amb_is_atom(items))
        return item_term(p, pi, h, items);
    size_t n = 0;
    for (amb_term l = items; amb_is_cons(l); l = amb_list_tail(l))
        n++;
    amb_term *v = n > 0 ? amb__malloc(n * sizeof *v) : NULL;
    if (n > 0 && v == NULL)
        return AMB_NONE;
    size_t i = 0;
    for (amb_term l = items; amb_is_cons(l); l = amb_list_tail(l))
        v[i++] = amb_list_head(l);
    amb_term out = AMB_NIL;
    while (i-- > 0)
        out = amb_cons(h, item_term(p, pi, h, v[i]), out);
    amb__free(v);
    return out;
}

/* ---------------------------------------------------------------------------
 * The request and its answer
 * ------------------------------------------------------------------------ */

#define INFO_WORDS ((sizeof(amb_proc_info) + 7) / 8)

/* The reply cell to request req: when req asks for items (its term) and
 * target is alive, a new cell with their answer (built on a scratch heap,
 * copied into the cell), and req is freed; else, or when that takes memory
 * there is not, req itself, made with room for the counts, without an
 * answer (the requester reports AMB_ENOMEM when it asked for one). The
 * caller writes the counts into words. Needs no memory. */
static amb__msg *reply_cell(amb__sched *s, amb_proc *target, const amb_proc_info *info,
                            amb__msg *req)
{
    amb__msg *m = NULL;
    amb_heap *tmp = NULL;
    if (target != NULL && req->term != AMB_NONE && amb_heap_new(&tmp) == 0) {
        amb_term answer = items_term(target, info, tmp, req->term);
        if (answer != AMB_NONE)
            m = amb__msg_new_term_after(s, answer, INFO_WORDS);
        amb_heap_free(tmp);
    }
    if (m == NULL) {
        req->term = AMB_NONE;
        return req;
    }
    m->wait_seq = req->wait_seq;
    amb__msg_free(s, req);
    return m;
}

/* Sends the INFO_REPLY to the requester recorded in req (status 0 means the
 * target is gone), in req itself or in a cell that replaces it. */
static void info_reply(amb_rt *rt, amb__sched *s, amb__msg *req, amb_proc *target)
{
    amb_pid requester = req->words[0];
    amb_proc_info info = {0};
    if (target != NULL) {
        /* It is handling the request while draining: a process inside a
         * receive (or a handler between messages) is waiting. */
        bool waiting = target->in_receive || (target->flags & AMB__PF_HANDLER);
        fill_info(target, &info, waiting ? AMB_STATUS_WAITING : AMB_STATUS_RUNNABLE);
    }
    amb__msg *m = reply_cell(s, target, &info, req);
    memcpy(m->words, &info, sizeof info);
    m->kind = AMB__MSG_INFO_REPLY;
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

void amb__info_reply_taken(amb_proc *p, amb__msg *m)
{
    struct amb__info_wait *w = p->info_wait;
    if (m->wait_seq == p->wait_seq && w != NULL) {
        memcpy(&w->info, m->words, sizeof w->info);
        p->wake_done = true;
        if (w->want_cell) {
            w->cell = m; /* the requester copies the items out, then frees it */
            return;
        }
    }
    amb__msg_free(p->task.sched, m);
}

/* Asks pid (another process) for its info and, when items is not AMB_NONE,
 * for those items (w->cell then holds the reply). 0, AMB_ENOPROC,
 * AMB_ENOMEM, AMB_ESTATE (from a match function). */
static int ask(amb_proc *self, amb_pid pid, amb_term items, struct amb__info_wait *w)
{
    if (!amb__proc_may_wait(self))
        return AMB_ESTATE; /* the answer is waited for */
    amb_proc *p = amb__ptab_lookup(self->rt, pid);
    if (p == NULL)
        return AMB_ENOPROC;
    /* As BEAM does since OTP 21: ask the process itself, which answers in
     * order with the messages sent to it before, so the answer is exact.
     * With room for the counts, which come back in this very cell. */
    amb__sched *s = self->task.sched;
    amb__msg *req = items != AMB_NONE ? amb__msg_new_term_after(s, items, INFO_WORDS)
                                      : amb__msg_alloc(s, INFO_WORDS);
    if (req == NULL)
        return AMB_ENOMEM;
    req->kind = AMB__MSG_INFO_REQ;
    req->words[0] = self->pid;
    if (items == AMB_NONE)
        req->term = AMB_NONE;
    req->wait_seq = amb__mailbox_wait_begin(self);
    w->cell = NULL;
    w->want_cell = items != AMB_NONE;
    self->info_wait = w;
    amb__mailbox_deliver(self->rt, s, p, req);
    amb__mailbox_wait_wake(self);
    self->info_wait = NULL;
    if (w->info.status == 0) {
        amb__msg_free(s, w->cell);
        return AMB_ENOPROC;
    }
    return 0;
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
    struct amb__info_wait w;
    rc = ask(self, pid, AMB_NONE, &w);
    if (rc == 0)
        *out = w.info;
    return rc;
}

int amb_process_info_items(amb_proc *self, amb_pid pid, amb_term items, amb_term *out)
{
    if (self == NULL || out == NULL || !items_ok(items))
        return AMB_EBADARG;
    int rc = amb__fail_check_pid(self->rt, pid);
    if (rc != 0)
        return rc;
    amb_heap *h = amb_proc_heap(self);
    if (h == NULL)
        return AMB_ENOMEM;
    amb_term answer = AMB_NONE;
    if (pid == self->pid) {
        amb_proc_info info;
        amb_message_queue_len(self); /* drain: count what has arrived */
        fill_info(self, &info, AMB_STATUS_RUNNING);
        answer = items_term(self, &info, h, items);
    } else {
        struct amb__info_wait w;
        if ((rc = ask(self, pid, items, &w)) != 0)
            return rc;
        if (w.cell == NULL || w.cell->term == AMB_NONE ||
            amb_term_copy(h, w.cell->term, &answer) != 0)
            answer = AMB_NONE;
        amb__msg_free(self->task.sched, w.cell);
    }
    if (answer == AMB_NONE)
        return AMB_ENOMEM;
    *out = answer;
    return 0;
}

/*
 * socket.c - the socket table, references and closing, ownership like an
 * Erlang port, options, and the calls that work on every kind of socket
 * (amb_inet_*): close, controlling_process, peername/sockname, setopts,
 * getopts; and amb_tcp_shutdown (socket.h explains the state word and who
 * touches what; docs/design/sockets.md §4).
 *
 * The event cell (pio.h, a resource's RES_EVENT cell) has one holder at a
 * time: home (cell_home, under the lock), armed as the active waiter on
 * the read slot, or pushed toward the owner. While it is not home it
 * holds a reference, so the slot outlives wherever the cell is. Going out
 * takes the reference (and clears cell_home under the lock); coming home
 * (the owner's drain, a dead mailbox, a successful disarm) sets cell_home
 * and drops it.
 *
 * Invariants:
 *   - A slot's memory is never freed before the runtime (chunks are only
 *     added), so a lookup with a stale term reads a state word.
 *   - Only the last reference closes the fd, after amb__poll_close: no
 *     syscall runs on an fd number after its close.
 *   - The owner's list holds one reference; the owner drops it (disown)
 *     in its own context: at close by the owner, at the owner's end, or in
 *     its drain when its event cell tells it the socket was closed by
 *     someone else.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/oserr.h"
#include "io/socket.h"

#define CHUNK   256u
#define CHUNKS  ((1u << AMB__SOCK_INDEX_BITS) / CHUNK)
#define NO_SLOT UINT32_MAX

#define BUFFER_DEFAULT ((size_t)16 << 10)
#define BUFFER_MAX     ((size_t)1 << 20)
#define ACTIVE_MAX     32767

typedef struct sock_table {
    pthread_mutex_t lock;
    uint32_t nfresh;    /* slots [0, nfresh) have been used */
    uint32_t free_head; /* free list through next_free */
    _Atomic(amb__sock *) chunks[CHUNKS];
} sock_table;

static const amb__pio_res_ops sock_ops;

/* ---------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------ */

static void table_free(amb_rt *rt)
{
    /* relaxed: the runtime is being freed; nothing else runs. */
    sock_table *t = atomic_load_explicit(&rt->io, memory_order_relaxed);
    if (t == NULL)
        return;
    for (uint32_t c = 0; c < CHUNKS; c++) {
        amb__sock *chunk = atomic_load_explicit(&t->chunks[c], memory_order_relaxed);
        if (chunk == NULL)
            break; /* chunks are filled in order */
        for (uint32_t i = 0; i < CHUNK; i++) {
            /* Every owner ended and released its sockets; a socket left
             * open here would be a leak of the layer, not of the user. */
            amb__sock *k = &chunk[i];
            uint64_t st = atomic_load_explicit(&k->state, memory_order_relaxed);
            if ((st & AMB__SOCK_REFS_MASK) != 0)
                amb__panic(
                    "socket %u still open at runtime teardown (refs %llu%s, cell %s, "
                    "%s, owner %llx%s%s)",
                    k->index, (unsigned long long)(st & AMB__SOCK_REFS_MASK),
                    (st & AMB__SOCK_CLOSING) ? ", closing" : "",
                    k->cell_home ? "home" : "out",
                    k->kind == AMB__SOCK_LISTEN ? "listening" : "stream",
                    (unsigned long long)atomic_load_explicit(&k->owner,
                                                             memory_order_relaxed),
                    k->res.owned ? ", in its owner's list" : "",
                    k->res.spare != NULL ? ", a give on its way" : "");
        }
        amb__free_aligned(chunk);
    }
    pthread_mutex_destroy(&t->lock);
    amb__free(t);
    atomic_store_explicit(&rt->io, NULL, memory_order_relaxed);
}

static sock_table *table_of(amb_rt *rt)
{
    /* acquire: pairs with the release CAS that installed it. */
    sock_table *t = atomic_load_explicit(&rt->io, memory_order_acquire);
    if (amb__likely(t != NULL))
        return t;
    sock_table *fresh = amb__calloc(1, sizeof *fresh);
    if (fresh == NULL)
        return NULL;
    pthread_mutex_init(&fresh->lock, NULL);
    fresh->free_head = NO_SLOT;
    void *none = NULL;
    /* acq_rel: release publishes the table; acquire (on failure) sees the
     * winner's. io_free is set before the install becomes visible to the
     * runtime's teardown, which runs after every process (so after us). */
    rt->io_free = table_free;
    if (!atomic_compare_exchange_strong_explicit(
            &rt->io, &none, fresh, memory_order_acq_rel, memory_order_acquire)) {
        pthread_mutex_destroy(&fresh->lock);
        amb__free(fresh);
        return none;
    }
    return fresh;
}

static amb__sock *slot_at(sock_table *t, uint32_t index)
{
    if (index >= CHUNKS * CHUNK)
        return NULL;
    /* acquire: pairs with the release that published the chunk. */
    amb__sock *c = atomic_load_explicit(&t->chunks[index / CHUNK], memory_order_acquire);
    return c != NULL ? &c[index % CHUNK] : NULL;
}

/* A free slot (refs 0), under no lock on return. AMB_ENOMEM, AMB_ESYSLIMIT. */
static int slot_take(sock_table *t, amb__sock **out)
{
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    if (t->free_head != NO_SLOT) {
        amb__sock *k = slot_at(t, t->free_head);
        t->free_head = k->next_free;
        *out = k;
        goto done;
    }
    if (t->nfresh == CHUNKS * CHUNK) {
        rc = AMB_ESYSLIMIT;
        goto done;
    }
    uint32_t idx = t->nfresh, ci = idx / CHUNK;
    /* relaxed: writers of chunk pointers hold this lock. */
    amb__sock *c = atomic_load_explicit(&t->chunks[ci], memory_order_relaxed);
    if (c == NULL) {
        c = amb__malloc_aligned(CHUNK * sizeof *c, 64);
        if (c == NULL) {
            rc = AMB_ENOMEM;
            goto done;
        }
        memset(c, 0, CHUNK * sizeof *c);
        for (uint32_t i = 0; i < CHUNK; i++)
            c[i].index = ci * CHUNK + i;
        /* release: zeroed slots with their indices before the pointer. */
        atomic_store_explicit(&t->chunks[ci], c, memory_order_release);
    }
    t->nfresh++;
    *out = &c[idx % CHUNK];
done:
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static void slot_give(sock_table *t, amb__sock *k)
{
    pthread_mutex_lock(&t->lock);
    k->next_free = t->free_head;
    t->free_head = k->index;
    pthread_mutex_unlock(&t->lock);
}

static uint32_t serial_of(uint64_t st)
{
    return (uint32_t)(st >> AMB__SOCK_SERIAL_AT);
}

amb_socket amb__socket_term(const amb__sock *k)
{
    /* relaxed: the serial does not change while anyone holds a reference. */
    uint64_t st = atomic_load_explicit(&k->state, memory_order_relaxed);
    uint64_t id = (uint64_t)serial_of(st) << AMB__SOCK_INDEX_BITS | k->index;
    return amb__lport_make(k->rt->node_slot, id);
}

int amb__socket_get_kind(amb_proc *self, amb_socket s, unsigned kind, amb__sock **out)
{
    amb__sock *k = amb__socket_get(self->rt, s);
    if (k == NULL)
        return AMB_ECLOSED;
    if (k->kind != kind) {
        int rc = kind == AMB__SOCK_STREAM && k->kind == AMB__SOCK_LISTEN ? AMB_ENOTCONN
                                                                         : AMB_EBADARG;
        amb__socket_put(self->task.sched, k);
        return rc;
    }
    *out = k;
    return 0;
}

amb__sock *amb__socket_get(amb_rt *rt, amb_socket s)
{
    if (!amb_is_local_port(s) || amb__lport_slot(s) != rt->node_slot)
        return NULL;
    /* acquire: pairs with table_of's release CAS: the table is complete. */
    sock_table *t = atomic_load_explicit(&rt->io, memory_order_acquire);
    if (t == NULL)
        return NULL;
    uint64_t id = amb__lport_id(s);
    amb__sock *k = slot_at(t, (uint32_t)(id & ((1u << AMB__SOCK_INDEX_BITS) - 1)));
    if (k == NULL)
        return NULL;
    uint32_t serial = (uint32_t)(id >> AMB__SOCK_INDEX_BITS);
    /* acquire: pairs with the release that published the slot's fields
     * (amb__socket_new), so a reference taken here sees them. */
    uint64_t st = atomic_load_explicit(&k->state, memory_order_acquire);
    for (;;) {
        if (serial_of(st) != serial || (st & AMB__SOCK_CLOSING) ||
            (st & AMB__SOCK_REFS_MASK) == 0)
            return NULL;
        if (atomic_compare_exchange_weak_explicit(
                &k->state, &st, st + 1, memory_order_acquire, memory_order_acquire))
            return k;
    }
}

void amb__socket_ref(amb__sock *k)
{
    /* relaxed: the caller holds a reference already (like a refcount's
     * increment: nothing to publish). */
    atomic_fetch_add_explicit(&k->state, 1, memory_order_relaxed);
}

bool amb__socket_closing(const amb__sock *k)
{
    /* acquire: a caller that sees CLOSING sees what the closer did. */
    return (atomic_load_explicit(&k->state, memory_order_acquire) & AMB__SOCK_CLOSING) !=
           0;
}

void amb__socket_deliver(amb_rt *rt, amb__sched *s, amb__poll_list *fired)
{
    if (fired->n == 0)
        return;
    if (s != NULL) {
        amb__sched_deliver(&rt->exec, s, fired);
        return;
    }
    /* The runtime's teardown: nothing runs; the cells only go home. */
    amb__poll_waiter *w;
    while ((w = amb__poll_list_pop(fired)) != NULL) {
        amb__task *t = w->task; /* w is the task's again once pushed */
        if (amb__mpscq_push(&t->inbox, w->node) == AMB__MPSCQ_CLOSED)
            rt->exec.ops.inbox_closed(NULL, t);
    }
}

/* The last reference: the poller forgets the fd, then it is closed, and
 * the slot goes back to the free list with a new serial. */
static void final_close(amb__sched *s, amb__sock *k)
{
    amb_rt *rt = k->rt;
    amb__poll *p = amb__exec_poller(&rt->exec);
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    if (p != NULL && k->pd != NULL)
        amb__poll_close(p, k->pd, k->gen, &fired);
    amb__socket_deliver(rt, s, &fired); /* nobody: every call has ended */
    if (k->pend != NULL && k->pend_off < k->pend_len) {
        /* A killed sender's rest: one attempt, then it is dropped. */
        ssize_t r = send(k->fd, k->pend + k->pend_off, k->pend_len - k->pend_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)r;
    }
    amb__free(k->pend);
    k->pend = NULL;
    k->pend_len = k->pend_off = 0;
    if (k->tls != NULL) {
        amb__tls_free(k->tls);
        k->tls = NULL;
    }
    if (k->tls_ctx != NULL) {
        amb_tls_ctx_free(k->tls_ctx);
        k->tls_ctx = NULL;
    }
    close(k->fd);
    k->fd = -1;
    if (k->unlink_path != NULL) {
        unlink(k->unlink_path);
        amb__free(k->unlink_path);
        k->unlink_path = NULL;
    }
    amb__packet_destroy(&k->rx);
    /* relaxed: nobody holds the slot (refs 0, no lookup can succeed);
     * the next user publishes it with a release. */
    uint64_t st = atomic_load_explicit(&k->state, memory_order_relaxed);
    uint32_t serial = (serial_of(st) + 1) & AMB__SOCK_SERIAL_MAX;
    atomic_store_explicit(&k->state, (uint64_t)serial << AMB__SOCK_SERIAL_AT,
                          memory_order_relaxed);
    /* acquire: as in amb__socket_get (this socket came from that table). */
    slot_give(atomic_load_explicit(&rt->io, memory_order_acquire), k);
}

void amb__socket_put(amb__sched *s, amb__sock *k)
{
    /* acq_rel: release our uses of the socket; the last one acquires every
     * other holder's before it closes. */
    uint64_t st = atomic_fetch_sub_explicit(&k->state, 1, memory_order_acq_rel);
    if ((st & AMB__SOCK_REFS_MASK) == 1)
        final_close(s, k);
}

/* ---------------------------------------------------------------------------
 * Making one
 * ------------------------------------------------------------------------ */

int amb__socket_opts(const amb_sock_opts *o, amb__sock_opts *out)
{
    amb_sock_opts d = {0};
    if (o == NULL)
        o = &d;
    if (!(o->active == 0 || o->active == AMB_ACTIVE_ONCE ||
          o->active == AMB_ACTIVE_TRUE || (o->active > 0 && o->active <= ACTIVE_MAX)))
        return AMB_EBADARG;
    if (o->buffer > BUFFER_MAX || o->packet_size > AMB__PACKET_MAX_LIMIT)
        return AMB_EBADARG;
    amb__sock_opts r = {0};
    r.active = o->active;
    switch (o->packet) {
    case AMB_PACKET_RAW:
    case AMB_PACKET_1:
    case AMB_PACKET_2:
    case AMB_PACKET_4:
    case AMB_PACKET_LINE:
        r.packet.mode = (amb__packet_mode)o->packet;
        break;
    default:
        return AMB_EBADARG;
    }
    r.packet.max = o->packet_size;
    r.packet.delim = (uint8_t)o->line_delimiter;
    r.buffer = o->buffer != 0 ? o->buffer : BUFFER_DEFAULT;
    r.nodelay = o->nodelay;
    r.keepalive = o->keepalive;
    *out = r;
    return 0;
}

static int set_int(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof v) == 0 ? 0 : amb__oserr_code(errno);
}

int amb__socket_sysopts(int fd, int family, const amb_sock_opts *o, bool listening)
{
    amb_sock_opts d = {0};
    if (o == NULL)
        o = &d;
    int rc = 0;
    bool inet = family == AMB__ADDR_INET || family == AMB__ADDR_INET6;
    if (rc == 0 && inet && o->nodelay)
        rc = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (rc == 0 && inet && o->keepalive)
        rc = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (rc == 0 && o->recbuf != 0)
        rc = set_int(fd, SOL_SOCKET, SO_RCVBUF,
                     o->recbuf > INT32_MAX ? INT32_MAX : (int)o->recbuf);
    if (rc == 0 && o->sndbuf != 0)
        rc = set_int(fd, SOL_SOCKET, SO_SNDBUF,
                     o->sndbuf > INT32_MAX ? INT32_MAX : (int)o->sndbuf);
    if (rc == 0 && listening && inet && o->reuseport)
        rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    return rc;
}

int amb__socket_new(amb_proc *p, int fd, int kind, int family, const amb__sock_opts *o,
                    amb__sock **out)
{
    amb_rt *rt = p->rt;
    sock_table *t = table_of(rt);
    amb__poll *poll = NULL;
    int rc = t == NULL ? AMB_ENOMEM : amb__exec_poll_open(&rt->exec, &poll);
    amb__sock *k = NULL;
    if (rc == 0)
        rc = slot_take(t, &k);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    /* The slot is ours alone (refs 0: no lookup succeeds); its serial
     * stays. */
    uint64_t st = atomic_load_explicit(&k->state, memory_order_relaxed);
    k->rt = rt;
    k->fd = fd;
    k->kind = (uint8_t)kind;
    k->tag = kind == AMB__SOCK_DGRAM ? AMB__TAG_UDP : AMB__TAG_TCP;
    k->family = (uint8_t)family;
    k->opts = *o;
    k->packet_changed = false;
    k->cell_home = true;
    k->kick_pending = false;
    k->moving = false;
    k->tls = NULL;
    k->tls_ctx = NULL;
    k->rd_eof = false;
    k->rd_err = 0;
    k->pend = NULL;
    k->pend_len = k->pend_off = 0;
    k->unlink_path = NULL;
    atomic_init(&k->lock.held, 0);
    amb__pio_turn_init(&k->turn[0]);
    amb__pio_turn_init(&k->turn[1]);
    memset(&k->res, 0, sizeof k->res);
    k->res.ops = &sock_ops;
    /* relaxed: published with the slot by the release store of its state
     * below. */
    atomic_store_explicit(&k->owner, p->pid, memory_order_relaxed);
    k->aw.task = &p->task;
    k->aw.node = &k->res.event.node;
    k->aw.next = NULL;
    rc = amb__packet_init(&k->rx, &o->packet);
    if (rc == 0)
        rc = amb__poll_open(poll, fd, &k->pd, &k->gen);
    if (rc == 0) {
        rc = amb__pio_own(p, &k->res);
        if (rc != 0) {
            amb__poll_list none;
            amb__poll_list_init(&none);
            amb__poll_close(poll, k->pd, k->gen, &none);
        }
    }
    if (rc != 0) {
        k->pd = NULL;
        close(fd);
        slot_give(t, k);
        return rc;
    }
    /* release: the fields above before a lookup can take a reference.
     * Two references: the table's and the owner list's. */
    atomic_store_explicit(&k->state, (st & ~AMB__SOCK_REFS_MASK) | 2,
                          memory_order_release);
    *out = k;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Closing
 * ------------------------------------------------------------------------ */

bool amb__socket_cell_take(amb__sock *k, bool only_active)
{
    amb__spin_lock(&k->lock);
    bool home = k->cell_home && !k->moving && (!only_active || k->opts.active != 0);
    if (home)
        k->cell_home = false;
    amb__spin_unlock(&k->lock);
    if (home)
        amb__socket_ref(k);
    return home;
}

void amb__socket_cell_home(amb__sched *s, amb__sock *k)
{
    amb__spin_lock(&k->lock);
    k->cell_home = true;
    amb__spin_unlock(&k->lock);
    amb__socket_put(s, k);
}

void amb__socket_cell_push(amb__sched *s, amb__sock *k)
{
    /* acquire: pairs with controlling_process's release of a new owner.
     * The cell cannot be taken while a socket moves (`moving`, cleared
     * under the lock after the give cell is pushed), so a push to the
     * owner read here lands behind the give cell in its mailbox. */
    amb_pid owner = atomic_load_explicit(&k->owner, memory_order_acquire);
    if (!amb__pio_kick(k->rt, s, &k->res, owner))
        amb__socket_cell_home(s, k);
}

/* CLOSING, evict, the owner told (notify: a push of the event cell, so
 * that it disowns), the table's reference dropped. Idempotent. */
static void close_sock(amb__sched *s, amb__sock *k, bool notify)
{
    uint64_t st = atomic_load_explicit(&k->state, memory_order_relaxed);
    do {
        if (st & AMB__SOCK_CLOSING)
            return;
        /* acq_rel: release what the closer did to every waiter that sees
         * CLOSING; acquire for the refs we then drop. */
    } while (!atomic_compare_exchange_weak_explicit(
        &k->state, &st, st | AMB__SOCK_CLOSING, memory_order_acq_rel,
        memory_order_relaxed));
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    amb__poll_evict(k->pd, &fired); /* every parked caller, the armed event cell */
    amb__socket_deliver(k->rt, s, &fired);
    if (notify && amb__socket_cell_take(k, false))
        amb__socket_cell_push(s, k);
    amb__socket_put(s, k); /* the table's */
}

void amb__socket_close(amb_proc *self, amb__sock *k)
{
    amb__sched *s = self->task.sched;
    /* acquire: as in amb__socket_cell_push; only self writes it when it is
     * self, so the answer cannot change under us then. */
    bool own = atomic_load_explicit(&k->owner, memory_order_acquire) == self->pid;
    if (own && k->res.owned) {
        /* The owner closes: it disowns itself at once. */
        amb__pio_disown(self, &k->res);
        amb__socket_put(s, k);
    }
    close_sock(s, k, !own);
}

/* ---------------------------------------------------------------------------
 * The resource's ops (pio.h)
 * ------------------------------------------------------------------------ */

static amb__sock *sock_of(amb__pio_res *r)
{
    return (amb__sock *)(void *)r; /* the resource comes first */
}

static void op_event(amb_proc *p, amb__pio_res *r)
{
    amb__active_event(p, sock_of(r));
}

static void op_event_dropped(amb__sched *s, amb__pio_res *r)
{
    amb__socket_cell_home(s, sock_of(r));
}

static void op_release(amb__sched *s, amb__pio_res *r)
{
    amb__sock *k = sock_of(r);
    /* The owner ended (disowned by its teardown): no owner to tell. */
    close_sock(s, k, false);
    amb__socket_put(s, k); /* the owner list's */
}

static void op_given(amb_proc *p, amb__pio_res *r)
{
    amb__sock *k = sock_of(r);
    if (amb__socket_closing(k)) {
        /* Closed on its way: nobody tells this owner again. */
        amb__pio_disown(p, r);
        amb__socket_put(p->task.sched, k);
    }
}

static const amb__pio_res_ops sock_ops = {
    .event = op_event,
    .event_dropped = op_event_dropped,
    .release = op_release,
    .given = op_given,
};

/* ---------------------------------------------------------------------------
 * Calls
 * ------------------------------------------------------------------------ */

/* A process that ends inside a call (pio.h, "a call in progress"). */
static void call_cleanup(amb_proc *p, void *ctx)
{
    amb__sock_call *c = ctx;
    amb__sock *k = c->k;
    size_t total = c->hlen + c->len;
    if (c->turn == AMB__SOCK_WRITE && c->done > 0 && c->done < total) {
        /* Killed mid-message: the rest goes out before any other sender's
         * bytes, or the socket is closed; never a cut message followed by
         * someone else's (sockets.md §4.3). */
        size_t rest = total - c->done;
        uint8_t *copy = amb__malloc(rest);
        if (copy != NULL) {
            size_t off = 0;
            if (c->done < c->hlen) {
                memcpy(copy, c->hdr + c->done, c->hlen - c->done);
                off = c->hlen - c->done;
            }
            size_t dstart = c->done > c->hlen ? c->done - c->hlen : 0;
            memcpy(copy + off, c->data + dstart, c->len - dstart);
            amb__free(k->pend);
            k->pend = copy;
            k->pend_len = rest;
            k->pend_off = 0;
        } else {
            close_sock(p->task.sched, k, true);
        }
    }
    amb__socket_call_end(p, c);
    amb__socket_put(p->task.sched, k); /* the call's reference */
}

int amb__socket_call_begin(amb_proc *p, amb__sock *k, int dir, uint64_t deadline,
                           amb__sock_call *c)
{
    memset(c, 0, sizeof *c);
    c->k = k;
    c->turn = -1;
    if (!amb__proc_may_wait(p))
        return AMB_ESTATE; /* from a receive's match function */
    c->io = amb__pio_of(p);
    if (c->io == NULL)
        return AMB_ENOMEM;
    amb__pio_call_begin(c->io, call_cleanup, c);
    if (dir >= 0) {
        int rc = amb__pio_turn_acquire(p, &k->turn[dir], deadline);
        if (rc != 0) {
            amb__pio_call_end(c->io);
            return rc;
        }
        c->turn = dir;
        if (amb__socket_closing(k)) {
            amb__socket_call_end(p, c);
            return AMB_ECLOSED;
        }
    }
    return 0;
}

void amb__socket_call_end(amb_proc *p, amb__sock_call *c)
{
    amb__sched *s = p->task.sched;
    amb__pio_call_end(c->io);
    if (c->both)
        amb__pio_turn_release(s, &c->k->turn[AMB__SOCK_WRITE]);
    c->both = false;
    if (c->turn == AMB__SOCK_READ)
        amb__socket_read_release(s, c->k);
    else if (c->turn == AMB__SOCK_WRITE)
        amb__pio_turn_release(s, &c->k->turn[AMB__SOCK_WRITE]);
    c->turn = -1;
}

int amb__socket_wait(amb_proc *p, amb__sock *k, int dir, uint64_t deadline)
{
    for (;;) {
        if (amb__socket_closing(k))
            return AMB_ECLOSED;
        int rc = amb__pio_wait(p, k->pd, k->gen, dir, deadline);
        if (rc == 0 && amb__socket_closing(k))
            return AMB_ECLOSED;
        if (rc != AMB_ESTATE)
            return rc;
        /* The slot holds another waiter: on the read side, the event
         * cell of active mode left armed by an owner that has just gone
         * passive: take it back (or let its fire land) and arm ours. */
        if (dir == AMB__SOCK_READ) {
            if (amb__poll_disarm(k->pd, AMB__SOCK_READ, &k->aw))
                amb__socket_cell_home(p->task.sched, k);
            continue;
        }
        /* The write slot holds a sender's waiter while a TLS read needs to
         * write (a key update: rare): look again in a millisecond. */
        rc = amb__mailbox_sleep(p, 1);
        if (rc != 0)
            return rc;
        if (deadline != UINT64_MAX && amb__clock_ms(&p->rt->exec.clock) >= deadline)
            return AMB_ETIMEDOUT;
        return 0;
    }
}

void amb__socket_rx_sync(amb__sock *k)
{
    amb__spin_lock(&k->lock);
    k->rd_buffer = k->opts.buffer;
    if (k->packet_changed) {
        amb__packet_set(&k->rx, &k->opts.packet); /* checked by setopts */
        k->packet_changed = false;
    }
    amb__spin_unlock(&k->lock);
}

void amb__socket_read_release(amb__sched *s, amb__sock *k)
{
    amb__socket_rx_sync(k);
    if (amb__packet_buffered(&k->rx) == 0)
        amb__packet_trim(&k->rx); /* an idle socket holds no buffer */
    amb__pio_turn_release(s, &k->turn[AMB__SOCK_READ]);
    amb__spin_lock(&k->lock);
    bool kick = k->kick_pending;
    k->kick_pending = false;
    amb__spin_unlock(&k->lock);
    if (kick)
        amb__active_kick(s, k);
}

/* ---------------------------------------------------------------------------
 * Every kind (amb_inet_*)
 * ------------------------------------------------------------------------ */

int amb_inet_close(amb_proc *self, amb_socket s)
{
    if (self == NULL)
        return AMB_EBADARG;
    amb__sock *k = amb__socket_get(self->rt, s);
    if (k == NULL)
        return 0; /* closing a closed socket is fine (gen_tcp:close) */
    amb__socket_close(self, k);
    amb__socket_put(self->task.sched, k);
    return 0;
}

/* The active-mode messages of one socket: {Tag, S, ...} (sockets.md
 * §3.3). */
typedef struct sock_msgs {
    amb_socket s;
    amb_term tags[11];
} sock_msgs;

static void sock_msgs_init(sock_msgs *m, amb_socket s)
{
    static const char *const names[] = {
        "tcp", "tcp_closed", "tcp_error",   "tcp_passive",
        "ssl", "ssl_closed", "ssl_error",   "ssl_passive",
        "udp", "udp_error",  "udp_passive",
    };
    m->s = s;
    for (size_t i = 0; i < AMB_COUNTOF(names); i++)
        m->tags[i] = amb_atom(names[i]);
}

static bool is_sock_msg(void *ctx, amb_term msg)
{
    const sock_msgs *m = ctx;
    size_t n = amb_tuple_arity(msg);
    if (n < 2 || n > 5 || amb_tuple_elem(msg, 1) != m->s)
        return false;
    amb_term tag = amb_tuple_elem(msg, 0);
    for (size_t i = 0; i < AMB_COUNTOF(m->tags); i++)
        if (tag == m->tags[i])
            return true;
    return false;
}

/* A process that ends while controlling_process waits for the event cell
 * (its drain handles an exit signal): the socket is not moving any more,
 * and the wait's reference goes (else the socket outlives every holder). */
static void move_cleanup(amb_proc *p, void *ctx)
{
    amb__sock *k = ctx;
    amb__spin_lock(&k->lock);
    k->moving = false;
    amb__spin_unlock(&k->lock);
    amb__socket_put(p->task.sched, k);
}

int amb_inet_controlling_process(amb_proc *self, amb_socket s, amb_pid pid)
{
    if (self == NULL)
        return AMB_EBADARG;
    amb__sock *k = amb__socket_get(self->rt, s);
    if (k == NULL)
        return AMB_ECLOSED;
    amb__sched *sch = self->task.sched;
    int rc = 0;
    /* acquire: as in amb__socket_close. */
    if (atomic_load_explicit(&k->owner, memory_order_acquire) != self->pid) {
        rc = AMB_ENOTOWNER;
        goto out;
    }
    if (pid == self->pid)
        goto out;
    if (!amb__proc_may_wait(self)) {
        rc = AMB_ESTATE;
        goto out;
    }
    if (amb__ptab_lookup(self->rt, pid) == NULL) {
        rc = AMB_ENOPROC;
        goto out;
    }
    /* The event cell comes home and stays there while the socket moves:
     * taken back from the poller, or, when it fired, handled first (our
     * own event, which sees `moving` and only comes home). */
    amb__pio *io = amb__pio_of(self);
    if (io == NULL) {
        rc = AMB_ENOMEM;
        goto out;
    }
    amb__spin_lock(&k->lock);
    k->moving = true;
    bool home = k->cell_home;
    amb__spin_unlock(&k->lock);
    if (!home && amb__poll_disarm(k->pd, AMB__SOCK_READ, &k->aw)) {
        amb__socket_cell_home(sch, k);
        home = true;
    }
    /* The drain below may end self (an exit signal): the cleanup then
     * undoes `moving` and drops our reference (pio.h, a call in
     * progress). */
    amb__pio_call_begin(io, move_cleanup, k);
    while (!home) {
        amb__mailbox_drain(self);
        amb__spin_lock(&k->lock);
        home = k->cell_home;
        amb__spin_unlock(&k->lock);
        if (!home)
            amb__sched_switch_out(&self->task, AMB__TASK_PARK);
        sch = self->task.sched;
    }
    amb__pio_call_end(io);
    /* Ownership: the new owner's list gets it by a give cell. (Looked up
     * again: the wait above was a quiescent point.) */
    amb_proc *q = amb__ptab_lookup(self->rt, pid);
    /* release: the new owner, before the give cell that tells it, is what
     * any pusher of the event cell reads (amb__socket_cell_push). */
    atomic_store_explicit(&k->owner, pid, memory_order_release);
    rc = q == NULL ? AMB_ENOPROC : amb__pio_give(self, &k->res, pid);
    if (rc != 0) {
        /* release: as above (nothing was given). */
        atomic_store_explicit(&k->owner, self->pid, memory_order_release);
        amb__spin_lock(&k->lock);
        k->moving = false;
        amb__spin_unlock(&k->lock);
        goto out;
    }
    /* The socket's messages already here follow it, in order, ahead of
     * anything it delivers from now on (sent after them, below). */
    sock_msgs msgs;
    sock_msgs_init(&msgs, s);
    amb__mailbox_move_if(self, is_sock_msg, &msgs, q);
    amb__spin_lock(&k->lock);
    k->moving = false;
    amb__spin_unlock(&k->lock);
    amb__active_kick(sch, k);
out:
    amb__socket_put(self->task.sched, k);
    return rc;
}

static int name_of(amb_proc *self, amb_socket s, bool peer, amb_addr *out)
{
    if (self == NULL || out == NULL)
        return AMB_EBADARG;
    amb__sock *k = amb__socket_get(self->rt, s);
    if (k == NULL)
        return AMB_ECLOSED;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int r = peer ? getpeername(k->fd, (struct sockaddr *)&ss, &len)
                 : getsockname(k->fd, (struct sockaddr *)&ss, &len);
    int rc = r == 0 ? 0 : amb__oserr_code(errno);
    amb__addr a;
    if (rc == 0)
        rc = amb__addr_from_sockaddr((struct sockaddr *)&ss, len, &a);
    if (rc == 0)
        memcpy(out, &a, sizeof *out);
    amb__socket_put(self->task.sched, k);
    return rc;
}

int amb_inet_peername(amb_proc *self, amb_socket s, amb_addr *out)
{
    return name_of(self, s, true, out);
}

int amb_inet_sockname(amb_proc *self, amb_socket s, amb_addr *out)
{
    return name_of(self, s, false, out);
}

#define SOCKOPT_ALL                                                    \
    (AMB_SOCKOPT_ACTIVE | AMB_SOCKOPT_PACKET | AMB_SOCKOPT_NODELAY |   \
     AMB_SOCKOPT_KEEPALIVE | AMB_SOCKOPT_RECBUF | AMB_SOCKOPT_SNDBUF | \
     AMB_SOCKOPT_BUFFER)

int amb_inet_setopts(amb_proc *self, amb_socket s, const amb_sock_opts *opts,
                     unsigned which)
{
    if (self == NULL || opts == NULL || (which & ~SOCKOPT_ALL) != 0)
        return AMB_EBADARG;
    /* Only the fields named are looked at. */
    amb__sock_opts r;
    amb_sock_opts checked = {0};
    if (which & AMB_SOCKOPT_ACTIVE)
        checked.active = opts->active;
    if (which & AMB_SOCKOPT_PACKET) {
        checked.packet = opts->packet;
        checked.packet_size = opts->packet_size;
        checked.line_delimiter = opts->line_delimiter;
    }
    if (which & AMB_SOCKOPT_BUFFER)
        checked.buffer = opts->buffer;
    int rc = amb__socket_opts(&checked, &r);
    if (rc != 0)
        return rc;
    if (which & AMB_SOCKOPT_PACKET) {
        amb__packet probe;
        if (amb__packet_init(&probe, &r.packet) != 0)
            return AMB_EBADARG;
        amb__packet_destroy(&probe);
    }
    amb__sock *k = amb__socket_get(self->rt, s);
    if (k == NULL)
        return AMB_ECLOSED;
    bool inet = k->family == AMB__ADDR_INET || k->family == AMB__ADDR_INET6;
    if (((which & (AMB_SOCKOPT_NODELAY | AMB_SOCKOPT_KEEPALIVE)) && !inet) ||
        ((which & AMB_SOCKOPT_PACKET) && k->kind == AMB__SOCK_DGRAM)) {
        rc = AMB_EBADARG;
        goto out;
    }
    /* The kernel's options first: a failure there changes nothing else. */
    if ((which & AMB_SOCKOPT_NODELAY) && rc == 0)
        rc = set_int(k->fd, IPPROTO_TCP, TCP_NODELAY, opts->nodelay);
    if ((which & AMB_SOCKOPT_KEEPALIVE) && rc == 0)
        rc = set_int(k->fd, SOL_SOCKET, SO_KEEPALIVE, opts->keepalive);
    if ((which & AMB_SOCKOPT_RECBUF) && rc == 0 && opts->recbuf != 0)
        rc = set_int(k->fd, SOL_SOCKET, SO_RCVBUF,
                     opts->recbuf > INT32_MAX ? INT32_MAX : (int)opts->recbuf);
    if ((which & AMB_SOCKOPT_SNDBUF) && rc == 0 && opts->sndbuf != 0)
        rc = set_int(k->fd, SOL_SOCKET, SO_SNDBUF,
                     opts->sndbuf > INT32_MAX ? INT32_MAX : (int)opts->sndbuf);
    if (rc != 0)
        goto out;
    bool kick = false;
    amb__spin_lock(&k->lock);
    if (which & AMB_SOCKOPT_ACTIVE) {
        int32_t a = opts->active, cur = k->opts.active;
        if (a > 0 && cur > 0) {
            if (cur + a > ACTIVE_MAX)
                rc = AMB_EBADARG;
            else
                a = cur + a;
        }
        if (rc == 0)
            k->opts.active = a;
        kick = rc == 0 && a != 0;
    }
    if (rc == 0 && (which & AMB_SOCKOPT_PACKET)) {
        k->opts.packet = r.packet;
        k->packet_changed = true;
    }
    if (rc == 0 && (which & AMB_SOCKOPT_NODELAY))
        k->opts.nodelay = opts->nodelay;
    if (rc == 0 && (which & AMB_SOCKOPT_KEEPALIVE))
        k->opts.keepalive = opts->keepalive;
    if (rc == 0 && (which & AMB_SOCKOPT_BUFFER))
        k->opts.buffer = r.buffer;
    amb__spin_unlock(&k->lock);
    /* New framing now if no reader holds the read side (else the holder
     * applies it at its next step). */
    if (rc == 0 && (which & AMB_SOCKOPT_PACKET) &&
        amb__pio_turn_try(&k->turn[AMB__SOCK_READ]))
        amb__socket_read_release(self->task.sched, k);
    if (kick)
        amb__active_kick(self->task.sched, k);
out:
    amb__socket_put(self->task.sched, k);
    return rc;
}

static size_t get_size(int fd, int name)
{
    int v = 0;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_SOCKET, name, &v, &len) == 0 && v > 0 ? (size_t)v : 0;
}

int amb_inet_getopts(amb_proc *self, amb_socket s, amb_sock_opts *out)
{
    if (self == NULL || out == NULL)
        return AMB_EBADARG;
    amb__sock *k = amb__socket_get(self->rt, s);
    if (k == NULL)
        return AMB_ECLOSED;
    amb_sock_opts o = {0};
    amb__spin_lock(&k->lock);
    o.active = k->opts.active;
    o.packet = (unsigned)k->opts.packet.mode;
    o.packet_size =
        k->opts.packet.max != 0 ? k->opts.packet.max : AMB__PACKET_MAX_DEFAULT;
    o.line_delimiter = k->opts.packet.delim != 0 ? (char)k->opts.packet.delim : '\n';
    o.nodelay = k->opts.nodelay;
    o.keepalive = k->opts.keepalive;
    o.buffer = k->opts.buffer;
    amb__spin_unlock(&k->lock);
    o.recbuf = get_size(k->fd, SO_RCVBUF);
    o.sndbuf = get_size(k->fd, SO_SNDBUF);
    o.family = k->family == AMB__ADDR_INET6  ? AMB_ADDR_INET6
               : k->family == AMB__ADDR_INET ? AMB_ADDR_INET
                                             : AMB_ADDR_UNIX;
    amb__socket_put(self->task.sched, k);
    *out = o;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Reasons
 * ------------------------------------------------------------------------ */

amb_term amb__socket_reason(int code)
{
    switch (code) {
    case AMB_ECONNRESET:
        return amb_atom("econnreset");
    case AMB_ECLOSED:
        return amb_atom("closed");
    case AMB_EMSGSIZE:
        return amb_atom("emsgsize");
    case AMB_ETIMEDOUT:
        return amb_atom("etimedout");
    case AMB_ECONNREFUSED:
        return amb_atom("econnrefused");
    case AMB_EHOSTUNREACH:
        return amb_atom("ehostunreach");
    case AMB_ENETUNREACH:
        return amb_atom("enetunreach");
    case AMB_ENOTCONN:
        return amb_atom("enotconn");
    case AMB_EACCES:
        return amb_atom("eacces");
    case AMB_ENOMEM:
        return amb_atom("enomem");
    case AMB_ECERT:
        return amb_atom("bad_certificate");
    case AMB_ETLS:
        return amb_atom("tls_alert");
    default:
        return amb_atom("eio");
    }
}

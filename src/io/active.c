/*
 * active.c - active mode ({active, true | once | N}), run in the owner
 * (docs/design/sockets.md §5.4): the socket's event cell arrives in the
 * owner's mailbox (its waiter fired on the read slot, or someone kicked
 * it), and the owner's drain runs amb__active_event, which reads, frames,
 * appends {tcp, S, Data} (ssl, udp) messages to the owner's private queue
 * in arrival order, counts {active, N} down, and re-arms the waiter.
 *
 * Rules:
 *   - One event reads at most EVENT_PACKETS packets or EVENT_BYTES bytes;
 *     with more there, the cell goes back into the owner's own mailbox
 *     behind what arrived meanwhile (amb__pio_requeue), so a busy socket
 *     cannot keep the owner's other messages waiting.
 *   - The read side is the read turn's: the event only tries it; a passive
 *     reader holding it (a setopts raced with a recv) kicks the cell again
 *     when it lets go (kick_pending).
 *   - The end of the stream delivers what is left (raw, line), then
 *     {tcp_closed, S}; an error {tcp_error, S, Reason}, then {tcp_closed,
 *     S}; either way the socket is then closed (gen_tcp's exit_on_close).
 *   - Raw data is read into the scheduler's scratch area and copied once
 *     into the message; framed data is read into the framer's buffer,
 *     which is given back when the socket goes idle (no buffer per idle
 *     connection).
 *   - An event for a socket closed meanwhile only lets the owner drop its
 *     reference; one that reaches a former owner (the socket moved while
 *     the cell was on its way) is passed on to the owner.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "io/oserr.h"
#include "io/socket.h"

#define EVENT_PACKETS 16
#define EVENT_BYTES   ((size_t)64 << 10)

/* What became of the event cell when an event ends. */
enum outcome {
    CELL_HOME,    /* back home: its reference dropped */
    CELL_ARMED,   /* armed on the read slot: it keeps its reference */
    CELL_REQUEUE, /* back into the owner's mailbox after this drain */
};

static amb_term tag_atom(const amb__sock *k, const char *suffix)
{
    static const char *const base[] = {"tcp", "ssl", "udp"};
    char name[24];
    size_t n = strlen(base[k->tag]);
    memcpy(name, base[k->tag], n);
    strcpy(name + n, suffix);
    return amb_atom(name);
}

/* Appends a message built in a fresh cell: {Tag, S} (data NULL and no
 * reason), {Tag, S, Reason}, or {Tag, S, Data} / {udp, S, IP, Port, Data}.
 * false when out of memory (nothing appended). */
static bool deliver(amb_proc *p, amb__sock *k, amb_term tag, const uint8_t *data,
                    size_t n, amb_term reason, const amb__addr *from)
{
    /* The tuple, UDP's IP tuple, and the binary: on the heap up to
     * AMB_HEAP_BINARY_MAX bytes, else shared (its box only). Sized exactly,
     * so that a 64-byte {tcp, S, Data} takes the 28-word cell class. */
    size_t words =
        (from != NULL ? 6 + 9 : 4) +
        (data != NULL ? AMB__BINARY_WORDS + (n <= AMB_HEAP_BINARY_MAX ? (n + 7) / 8 : 0)
                      : 0);
    amb__msg *m = amb__msg_alloc_heap(p->task.sched, 0, words);
    if (m == NULL)
        return false;
    amb_heap *h = amb__msg_heap(m);
    amb_term s = amb__socket_term(k);
    amb_term t;
    if (from != NULL) {
        amb_addr a;
        memcpy(&a, from, sizeof a);
        amb_term ip = from->family == AMB__ADDR_UNIX ? AMB_NIL : amb_addr_to_term(h, &a);
        t = AMB_TUPLE(h, tag, s, ip, amb_int(h, from->port), amb_binary(h, data, n));
    } else if (data != NULL) {
        t = AMB_TUPLE(h, tag, s, amb_binary(h, data, n));
    } else if (reason != AMB_NONE) {
        t = AMB_TUPLE(h, tag, s, reason);
    } else {
        t = AMB_TUPLE(h, tag, s);
    }
    if (t == AMB_NONE) {
        amb__msg_free(p->task.sched, m);
        return false;
    }
    m->term = t;
    amb__pio_deliver_self(p, m);
    return true;
}

/* After a data message: {active, N} counts down (passive and {Tag_passive,
 * S} at 0), once turns passive. Returns whether the socket is still
 * active. */
static bool count_down(amb_proc *p, amb__sock *k)
{
    amb__spin_lock(&k->lock);
    int32_t a = k->opts.active;
    bool passive_msg = false;
    if (a == AMB_ACTIVE_ONCE) {
        a = 0;
    } else if (a > 0) {
        a--;
        passive_msg = a == 0;
    }
    k->opts.active = a;
    amb__spin_unlock(&k->lock);
    if (passive_msg)
        deliver(p, k, tag_atom(k, "_passive"), NULL, 0, AMB_NONE, NULL);
    return a != 0;
}

static bool is_active(amb__sock *k)
{
    amb__spin_lock(&k->lock);
    bool a = k->opts.active != 0 && !k->moving;
    amb__spin_unlock(&k->lock);
    return a;
}

/* The stream ended (code AMB_ECLOSED) or failed: the rest, the error,
 * closed, and the socket is closed. */
static void end_stream(amb_proc *p, amb__sock *k, int code)
{
    const uint8_t *d;
    size_t n;
    if (code == AMB_ECLOSED) {
        int rc = amb__packet_finish(&k->rx, &d, &n);
        if (rc == 0)
            deliver(p, k, tag_atom(k, ""), d, n, AMB_NONE, NULL);
        else if (rc != AMB_EAGAIN && rc != AMB_ECLOSED)
            code = rc;
    }
    if (code != AMB_ECLOSED)
        deliver(p, k, tag_atom(k, "_error"), NULL, 0, amb__socket_reason(code), NULL);
    deliver(p, k, tag_atom(k, "_closed"), NULL, 0, AMB_NONE, NULL);
    amb__socket_close(p, k);
}

/* Arms the waiter (the cell, held by us) on the read slot for p. */
static int arm(amb_proc *p, amb__sock *k)
{
    amb__spin_lock(&k->lock);
    k->aw.task = &p->task;
    amb__spin_unlock(&k->lock);
    return amb__poll_arm(k->pd, k->gen, AMB__SOCK_READ, &k->aw);
}

/* A stream socket's event (the read turn held). */
static enum outcome read_stream(amb_proc *p, amb__sock *k)
{
    size_t packets = 0, bytes = 0;
    bool short_read = false;
    amb__socket_rx_sync(k);
    amb_term data_tag = tag_atom(k, "");
    for (;;) {
        /* Whole packets already buffered first. */
        for (;;) {
            if (!is_active(k))
                return CELL_HOME;
            const uint8_t *d;
            size_t n;
            amb__packet_pos pos = amb__packet_tell(&k->rx);
            int rc = amb__packet_next(&k->rx, &d, &n);
            if (rc == AMB_EAGAIN)
                break;
            if (rc != 0) {
                end_stream(p, k, rc); /* emsgsize: the framing is lost */
                return CELL_HOME;
            }
            if (!deliver(p, k, data_tag, d, n, AMB_NONE, NULL)) {
                amb__packet_seek(&k->rx, pos);
                return CELL_REQUEUE; /* no memory now: try again later */
            }
            packets++;
            bytes += n;
            if (!count_down(p, k))
                return CELL_HOME;
        }
        if (k->rd_eof || k->rd_err != 0) {
            end_stream(p, k, k->rd_err != 0 ? k->rd_err : AMB_ECLOSED);
            return CELL_HOME;
        }
        if (packets >= EVENT_PACKETS || bytes >= EVENT_BYTES)
            return CELL_REQUEUE;
        if (!short_read || (k->tls != NULL && amb__tls_pending(k->tls))) {
            amb__poll_reset(k->pd, AMB__SOCK_READ);
            size_t want = k->rd_buffer;
            uint8_t *at;
            size_t room;
            bool raw_direct =
                k->rx.mode == AMB__PACKET_RAW && amb__packet_buffered(&k->rx) == 0;
            if (raw_direct) {
                at = amb__pio_scratch(p->task.sched);
                room = want < AMB__PIO_SCRATCH ? want : AMB__PIO_SCRATCH;
                if (at == NULL)
                    return CELL_REQUEUE;
            } else if (amb__packet_space(&k->rx, want, &at, &room) != 0) {
                return CELL_REQUEUE;
            }
            int dir = AMB__SOCK_READ;
            ssize_t r = amb__tcp_read_some(k, at, room, &dir);
            if (r > 0) {
                short_read = k->tls == NULL && (size_t)r < room && !amb__poll_hup(k->pd);
                if (!raw_direct) {
                    amb__packet_commit(&k->rx, (size_t)r);
                    continue;
                }
                if (!deliver(p, k, data_tag, at, (size_t)r, AMB_NONE, NULL)) {
                    size_t used;
                    if (amb__packet_feed(&k->rx, at, (size_t)r, &used) != 0) {
                        end_stream(p, k, AMB_ENOMEM);
                        return CELL_HOME;
                    }
                    return CELL_REQUEUE;
                }
                packets++;
                bytes += (size_t)r;
                if (!count_down(p, k))
                    return CELL_HOME;
                continue;
            }
            if (r == 0) {
                k->rd_eof = true;
                continue;
            }
            if (r != AMB_EAGAIN) {
                k->rd_err = (int)r;
                continue;
            }
            if (dir != AMB__SOCK_READ)
                return CELL_REQUEUE; /* TLS wants to write first: rare, retried */
        }
        /* Nothing more for now (EAGAIN, or a short read, which says so
         * without another syscall: poll.h). */
        short_read = false;
        int rc = arm(p, k);
        if (rc == 0)
            return CELL_ARMED;
        if (rc != AMB_EAGAIN)
            return CELL_HOME; /* closing */
    }
}

/* A datagram socket's event (the read turn held): one message per
 * datagram. */
static enum outcome read_dgram(amb_proc *p, amb__sock *k)
{
    size_t packets = 0;
    amb_term data_tag = tag_atom(k, "");
    uint8_t *buf = amb__pio_scratch(p->task.sched);
    if (buf == NULL)
        return CELL_REQUEUE;
    for (;;) {
        if (!is_active(k))
            return CELL_HOME;
        if (packets >= EVENT_PACKETS)
            return CELL_REQUEUE;
        amb__poll_reset(k->pd, AMB__SOCK_READ);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        ssize_t r = recvfrom(k->fd, buf, AMB__PIO_SCRATCH, MSG_DONTWAIT,
                             (struct sockaddr *)&ss, &sl);
        if (r >= 0) {
            amb__addr from;
            memset(&from, 0, sizeof from);
            if (amb__addr_from_sockaddr((struct sockaddr *)&ss, sl, &from) != 0)
                from.family = AMB__ADDR_INET;
            if (!deliver(p, k, data_tag, buf, (size_t)r, AMB_NONE, &from))
                return CELL_REQUEUE; /* that datagram is lost: no memory */
            packets++;
            if (!count_down(p, k))
                return CELL_HOME;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            /* An ICMP error of an earlier send: reported, the socket
             * stays (gen_udp's way). */
            deliver(p, k, tag_atom(k, "_error"), NULL, 0,
                    amb_atom(amb__oserr_name(errno)), NULL);
            continue;
        }
        int rc = arm(p, k);
        if (rc == 0)
            return CELL_ARMED;
        if (rc != AMB_EAGAIN)
            return CELL_HOME;
    }
}

void amb__active_event(amb_proc *p, amb__sock *k)
{
    amb__sched *s = p->task.sched;
    /* acquire: as in amb__socket_cell_push (socket.c). */
    amb_pid owner = atomic_load_explicit(&k->owner, memory_order_acquire);
    if (amb__socket_closing(k)) {
        /* Closed by someone else: the owner drops its reference. */
        if (owner == p->pid && k->res.owned) {
            amb__pio_disown(p, &k->res);
            amb__socket_put(s, k);
        }
        amb__socket_cell_home(s, k);
        return;
    }
    if (owner != p->pid) {
        /* It moved while the cell was on its way: to the owner. */
        amb__socket_cell_push(s, k);
        return;
    }
    if (!is_active(k)) {
        amb__socket_cell_home(s, k);
        return;
    }
    if (!amb__pio_turn_try(&k->turn[AMB__SOCK_READ])) {
        /* A passive reader holds the read side: it kicks us when it lets
         * go. */
        amb__spin_lock(&k->lock);
        k->kick_pending = true;
        k->cell_home = true;
        amb__spin_unlock(&k->lock);
        amb__socket_put(s, k);
        return;
    }
    enum outcome o = k->kind == AMB__SOCK_DGRAM ? read_dgram(p, k) : read_stream(p, k);
    s = p->task.sched;
    if (o == CELL_REQUEUE)
        amb__pio_requeue(p, &k->res);
    amb__socket_read_release(s, k);
    if (o == CELL_HOME)
        amb__socket_cell_home(s, k);
}

void amb__active_kick(amb__sched *s, amb__sock *k)
{
    if (amb__socket_cell_take(k, true))
        amb__socket_cell_push(s, k);
}

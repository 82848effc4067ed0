/*
 * socket.h - what the files of the socket layer share (docs/design/
 * sockets.md §4-§5): the socket object and its table (socket.c), the
 * passive calls (tcp.c, udp.c), active mode (active.c), name resolution
 * (resolve.c) and TLS contexts (tlsctx.c). The public API is
 * include/ambitious/socket.h.
 *
 * A socket is a slot of a per-runtime table, named by a port term
 * #Port<0.N> whose id is (serial << 24 | index): an immediate word (term.h),
 * so a lookup is an index and a compare, and a stale term never names a
 * newer socket (the serial is bumped when a slot is freed).
 *
 * The state word of a slot (Go's fdMutex, reduced):
 *
 *     [ serial:25 | CLOSING:1 | refs:38 ]
 *
 * refs counts who holds the socket: the table (from open to close), its
 * owner's list (amb__pio_res, from own to disown), its event cell while
 * it is out (armed or pushed), and every call in progress (a lookup takes
 * one for the call's whole duration, parked time included). A lookup
 * succeeds only while the serial matches, CLOSING is clear and refs is not
 * zero, with one CAS. Close sets CLOSING (new lookups fail), evicts the
 * descriptor (every parked caller wakes, finds CLOSING and fails) and
 * drops the table's reference; the last reference closes the fd, after
 * the poller has forgotten it, so no syscall ever runs on an fd number the
 * kernel has given to someone else. The slot is then free: serial bumped,
 * on the free list. Slots are type-stable (chunks are never freed before
 * the runtime), so a stale pointer reads a state word, never freed memory.
 *
 * Who touches what:
 *   - the read side (rx framer, eof, the read slot's waiter) belongs to the
 *     holder of the read turn: a passive reader, an acceptor, or the owner's
 *     active-mode event (which only tries the turn); the write side
 *     (pending output) to the holder of the write turn;
 *   - options, the event cell's home flag and the TLS object are under the
 *     socket's lock (a spin lock: no section waits or calls out);
 *   - the owner field is written by the owner (controlling_process) and
 *     read by anyone (an atomic).
 */
#ifndef AMB_IO_SOCKET_H
#define AMB_IO_SOCKET_H

#include <sys/socket.h>

#include "ambitious/socket.h"
#include "io/addr.h"
#include "io/packet.h"
#include "io/tls.h"
#include "process/pio.h"

enum amb__sock_kind {
    AMB__SOCK_STREAM = 1, /* a connected TCP or Unix stream socket */
    AMB__SOCK_LISTEN,     /* a listening one */
    AMB__SOCK_DGRAM,      /* UDP */
};

/* The tags of active-mode messages (sockets.md §3.3). */
enum amb__sock_tag {
    AMB__TAG_TCP = 0,
    AMB__TAG_SSL,
    AMB__TAG_UDP,
};

#define AMB__SOCK_READ  AMB__POLL_READ
#define AMB__SOCK_WRITE AMB__POLL_WRITE

/* The state word's fields. */
#define AMB__SOCK_REFS_MASK  ((UINT64_C(1) << 38) - 1)
#define AMB__SOCK_CLOSING    (UINT64_C(1) << 38)
#define AMB__SOCK_SERIAL_AT  39
#define AMB__SOCK_SERIAL_MAX ((UINT32_C(1) << 25) - 1)
#define AMB__SOCK_INDEX_BITS 24

/* A socket's options as the layer keeps them (the public struct's fields
 * that persist, resolved to effective values). */
typedef struct amb__sock_opts {
    int32_t active; /* 0 passive, AMB_ACTIVE_ONCE, AMB_ACTIVE_TRUE, or N */
    amb__packet_opts packet;
    size_t buffer; /* bytes per read */
    bool nodelay, keepalive;
} amb__sock_opts;

typedef struct amb__sock {
    amb__pio_res res; /* first: owned like a port (pio.h) */
    _Atomic uint64_t state;
    amb_rt *rt;
    uint32_t index;
    uint32_t next_free; /* the table's free list (its lock) */
    int fd;
    uint8_t kind;   /* enum amb__sock_kind */
    uint8_t tag;    /* enum amb__sock_tag */
    uint8_t family; /* amb__addr_family */
    amb__poll_desc *pd;
    uint32_t gen;
    _Atomic amb_pid owner;

    amb__spin lock;
    amb__sock_opts opts;         /* lock */
    bool packet_changed;         /* lock: opts.packet is newer than rx's */
    bool cell_home;              /* lock: the event cell is home (pio.h) */
    bool kick_pending;           /* lock: active data waits for the read turn */
    bool moving;                 /* lock: controlling_process holds the cell */
    amb__tls *tls;               /* lock around every step */
    struct amb_tls_ctx *tls_ctx; /* a listener's, for what it accepts */

    /* The read side: the read turn's holder. */
    amb__pio_turn turn[2];
    amb__packet rx;
    size_t rd_buffer; /* opts.buffer as of the last amb__socket_rx_sync */
    bool rd_eof;
    int rd_err;
    /* Active mode: the waiter whose node is the event cell. */
    amb__poll_waiter aw;
    /* The write side: the write turn's holder. A sender killed mid-message
     * leaves the rest here; the next sender writes it first. */
    uint8_t *pend;
    size_t pend_len, pend_off;
    /* A Unix listener's path, unlinked at close. */
    char *unlink_path;
} amb__sock;

/* ---- the table and references (socket.c) ----------------------------------- */

/* The socket s names in rt, with a reference taken, or NULL (AMB_ECLOSED to
 * the caller): a stale, closed or foreign term. */
amb__sock *amb__socket_get(amb_rt *rt, amb_socket s);
/* The same for a call that needs a socket of `kind` (enum amb__sock_kind):
 * 0 and *out referenced; AMB_ECLOSED (no such socket), AMB_ENOTCONN (a
 * listener where a connection is needed, as gen_tcp says), AMB_EBADARG
 * (another kind). */
int amb__socket_get_kind(amb_proc *self, amb_socket s, unsigned kind, amb__sock **out);
/* Another reference, for a holder of one. */
void amb__socket_ref(amb__sock *k);
/* Drops a reference; the last one closes (on scheduler s; NULL at runtime
 * teardown). */
void amb__socket_put(amb__sched *s, amb__sock *k);
/* The port term of k. */
amb_socket amb__socket_term(const amb__sock *k);

/* A socket around fd (non-blocking; taken over, closed on failure), of
 * kind and family, registered with the poller, owned by p (its owner
 * list), with options o: *out holds the table's and the owner's
 * references. AMB_ENOMEM, AMB_ESYSLIMIT. In p. */
int amb__socket_new(amb_proc *p, int fd, int kind, int family, const amb__sock_opts *o,
                    amb__sock **out);
/* Close (amb_inet_close's work, by the process self, which holds a
 * reference): CLOSING, evict, the owner told, the table's reference
 * dropped. Idempotent. */
void amb__socket_close(amb_proc *self, amb__sock *k);
/* Applies the socket options that are kernel options (nodelay, keepalive,
 * buffer sizes, reuseport, v6only) from the public struct. */
int amb__socket_sysopts(int fd, int family, const amb_sock_opts *o, bool listening);
/* Resolves the public options into *out (defaults filled in). AMB_EBADARG. */
int amb__socket_opts(const amb_sock_opts *o, amb__sock_opts *out);

/* ---- calls (socket.c) ---------------------------------------------------------- */

/* A call's frame: its socket, the turn it holds (-1: none), and what the
 * send cleanup needs. Lives on the caller's stack; registered with
 * amb__pio_call_begin so that a process that ends inside the call gives
 * everything back (socket.c, call_cleanup). */
typedef struct amb__sock_call {
    amb__sock *k;
    amb__pio *io;
    int turn;  /* the turn held (-1: none) */
    bool both; /* the write turn too (a STARTTLS holds both) */
    /* a send: the bytes of the message not yet written */
    const uint8_t *hdr;
    size_t hlen;
    const uint8_t *data;
    size_t len;
    size_t done; /* bytes of hdr then data written */
} amb__sock_call;

/* Begins a call on k (already referenced) by p: its I/O state, then the
 * turn of dir (-1: none) within deadline. 0, AMB_ENOMEM, AMB_ETIMEDOUT,
 * AMB_ECLOSED (closed while waiting for the turn). */
int amb__socket_call_begin(amb_proc *p, amb__sock *k, int dir, uint64_t deadline,
                           amb__sock_call *c);
/* Ends it: turn given back, the reference dropped. */
void amb__socket_call_end(amb_proc *p, amb__sock_call *c);
/* Waits for dir of k (after EAGAIN), within deadline: 0 retry, or
 * AMB_ETIMEDOUT, AMB_ECLOSED. */
int amb__socket_wait(amb_proc *p, amb__sock *k, int dir, uint64_t deadline);
/* Whether k is closing (a reference held). */
bool amb__socket_closing(const amb__sock *k);
/* The read turn's holder takes the options it reads by (new packet
 * options, the read size) under the lock. */
void amb__socket_rx_sync(amb__sock *k);
/* Gives the read turn back, kicking active mode that waited for it. */
void amb__socket_read_release(amb__sched *s, amb__sock *k);
/* The event cell (socket.c's comment): taken from home for a push (only
 * when the socket is active, with only_active; never while it moves) with
 * a reference, false when it is not home; pushed to the owner (home again
 * when there is none); home again, its reference dropped. */
bool amb__socket_cell_take(amb__sock *k, bool only_active);
void amb__socket_cell_push(amb__sched *s, amb__sock *k);
void amb__socket_cell_home(amb__sched *s, amb__sock *k);
/* Delivers the waiters a close or an evict fired, on s. */
void amb__socket_deliver(amb_rt *rt, amb__sched *s, amb__poll_list *fired);

/* ---- active mode (active.c) ------------------------------------------------------ */

/* The owner's drain met k's event cell (pio.h ops->event). */
void amb__active_event(amb_proc *p, amb__sock *k);
/* Pushes k's event cell to its owner if it is home and k is active (a
 * setopts, a passive reader's release, a controlling_process). On s. */
void amb__active_kick(amb__sched *s, amb__sock *k);

/* ---- streams (tcp.c) ------------------------------------------------------------ */

/* The TLS handshake of k (connected; k->tls set) within deadline, in p. */
int amb__tcp_handshake(amb_proc *p, amb__sock *k, uint64_t deadline);
/* Reads into buf (raw; TLS or not) without waiting: bytes, 0 at the end
 * of the stream, or a negative AMB_E* (AMB_EAGAIN: nothing there; for TLS
 * *want says which direction to wait for). */
ssize_t amb__tcp_read_some(amb__sock *k, void *buf, size_t cap, int *want);

/* ---- names (resolve.c) ---------------------------------------------------------- */

/* host:port as addresses (a literal, "unix:PATH", or a name resolved on the
 * blocking pool, family-filtered: AMB_ADDR_INET, _INET6 or 0), up to cap.
 * 0 (*n >= 1), AMB_ENOHOST, AMB_EAGAIN, AMB_ESYNTAX, AMB_ERANGE,
 * AMB_EADDRNOTAVAIL, AMB_ENOMEM. In p. */
int amb__resolve_host(amb_proc *p, const char *host, uint16_t port, unsigned family,
                      bool passive, amb__addr *addrs, size_t cap, size_t *n);

/* ---- TLS contexts (tlsctx.c) ---------------------------------------------------- */

/* The engine's context of a public one, and references on the public one. */
amb__tls_ctx *amb__tlsctx_engine(struct amb_tls_ctx *c);
void amb__tlsctx_ref(struct amb_tls_ctx *c);
/* Whether c is a server's. */
bool amb__tlsctx_server(const struct amb_tls_ctx *c);

/* ---- errors ---------------------------------------------------------------------- */

/* Erlang's reason atom for an AMB_E* code of a socket call (econnreset,
 * closed, emsgsize, etimedout, ...). */
amb_term amb__socket_reason(int code);

#endif /* AMB_IO_SOCKET_H */

/*
 * poll.h - the runtime's I/O poller: which descriptors are ready, and which
 * waiting task each readiness wakes. The contract between the executor
 * (scheduler loop, watchdog) and the layers that do I/O (src/io); it knows
 * no process, no socket and no message (docs/design/sockets.md, "The
 * poller"). One backend per OS implements it, like src/arch/ctx.h:
 * poll_epoll.c (Linux) now; a kqueue one would be poll_kqueue.c.
 *
 * The model is Go's netpoller. Each registered fd has a descriptor
 * (amb__poll_desc) with two slots, one per direction (read, write). A slot
 * holds NIL, READY (an edge arrived that nobody has consumed), CLOSED, or
 * the waiter armed on it. The fd is registered once, edge-triggered, for
 * both directions; nothing is re-armed in the kernel per operation.
 *
 * The I/O protocol of a task (src/io does this; the slot makes it race-free):
 *
 *     loop:
 *       amb__poll_reset(pd, dir)          consume an old READY edge
 *       n = read/write/accept(fd, ...)    non-blocking
 *       if it made progress: done (a short read may stop here: see below)
 *       if errno is not EAGAIN: fail
 *       switch amb__poll_arm(pd, gen, dir, &w):
 *         AMB_EAGAIN:  an edge came meanwhile: goto loop
 *         AMB_ECLOSED: the descriptor was evicted (closing): fail
 *         0:           park until w's node arrives in the task's inbox
 *                      (or a timeout / exit signal: then amb__poll_disarm,
 *                      and if that says "already fired", the node is on its
 *                      way and must be taken before w is armed again)
 *       goto loop
 *
 * A wake-up means "try again", never "the data is there": a stale edge (a
 * fd reused while an event for its old incarnation was being handled) can
 * wake a waiter for nothing, and the retry absorbs it.
 *
 * Closing is two steps, as Go's fdMutex and pollDesc do it, so that no
 * syscall can run on an fd number the kernel has already given to someone
 * else: the I/O layer holds a reference on its socket across every
 * operation (parked ones included); close marks the socket closing and
 * calls amb__poll_evict, which wakes every waiter (each finds the socket
 * closing, fails, and drops its reference); the last reference calls
 * amb__poll_close and only then close(fd). So reset/arm never run
 * concurrently with amb__poll_close of the same descriptor; the generation
 * checks catch a caller that breaks this, they do not replace it.
 *
 * Invariants:
 *   - A waiter is in at most one slot. amb__poll_arm returning 0 promises
 *     exactly one fire of w (from amb__poll_wait, amb__poll_evict or
 *     amb__poll_close),
 *     unless amb__poll_disarm removes it first (and returns true). A fired
 *     waiter is handed out once, in an amb__poll_list; it is the caller's
 *     again only after its node was delivered and taken.
 *   - Events carry (index, generation) of their descriptor; an event whose
 *     generation is not the descriptor's current one is dropped. close
 *     bumps the generation before it clears the slots and before the
 *     descriptor can be reused, so no event of the old fd reaches a new
 *     one through the table (one racing with the close itself may cause a
 *     spurious wake-up, see above).
 *   - Descriptors are type-stable: their memory is never freed while the
 *     poller exists (chunks of the table are only added), so a stale
 *     pointer reads a generation, never freed memory.
 *   - Reset before the syscall, arm after EAGAIN: if the syscall missed
 *     data, the data arrived after it, so its edge reaches the slot after
 *     the reset (every slot change is an atomic RMW, the reset a seq_cst
 *     one; the kernel's socket lock orders the syscall against the
 *     arrival). Hence a short read (fewer bytes than asked) may stop
 *     without reading again to see EAGAIN: any later arrival brings a new
 *     edge. Linux raises an edge for every arrival (not only the first
 *     into an empty queue), which is what edge-triggered readiness is
 *     here. Not so for the end of the stream or an error that arrived
 *     *before* the syscall: a read returns the data queued ahead of a FIN
 *     and says nothing of the FIN, whose edge the reset consumed. So the
 *     poller keeps a sticky `hup` per descriptor (set before the slot is
 *     marked, from EPOLLRDHUP, EPOLLHUP or EPOLLERR), and a short read
 *     may stop only while amb__poll_hup is false.
 *   - The poller allocates nothing per event: waiters are embedded in
 *     their owners, fired ones are linked through their `next` field.
 *
 * Who calls what (docs/design/sockets.md, "Who polls when"):
 *   - I/O layers: open, reset, arm, disarm, evict, close (any thread; close
 *     by the last reference only, as above).
 *   - The scheduler loop: amb__poll_wait (non-blocking every N ticks and
 *     before stealing; blocking, with the next timer's deadline, by the one
 *     idle scheduler that won amb__poll_claim), then delivers the list:
 *
 *         for each waiter w in fired:
 *             r = amb__mpscq_push(<w->task's inbox>, w->node)
 *             PARKED: make w->task runnable  (the push found it parked)
 *             CLOSED: ops->inbox_closed      (the task has ended: its
 *                                             layer takes the node back)
 *
 *     w must not be touched after its push: it belongs to the task again.
 *   - Anyone who makes work for a blocked poller (a task made runnable while
 *     every other scheduler sleeps, a timer earlier than its deadline,
 *     stop): amb__poll_break when amb__poll_blocked says one is blocked.
 *   - The watchdog: amb__poll_wait(…, 0, …) when amb__poll_last_ms is more
 *     than ~10 ms old and nobody is blocked in the poller.
 * Several threads may call amb__poll_wait at once (epoll hands each event
 * to one of them); the claim only keeps more than one from blocking.
 */
#ifndef AMB_RUNTIME_POLL_H
#define AMB_RUNTIME_POLL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/mpscq.h"

/* The executor's unit of work (src/runtime/task.h after the layering):
 * opaque here. */
struct amb__task;

/* A task waiting for one direction of one descriptor. Embedded in whatever
 * the I/O layer keeps per wait (a process block, a socket), so firing it
 * allocates nothing. The poller reads task and node and writes next; the
 * owner sets task and node before arming and leaves them alone while armed
 * or fired. */
typedef struct amb__poll_waiter {
    struct amb__task *task;        /* woken ... */
    amb__mpscq_node *node;         /* ... by pushing this into its inbox */
    struct amb__poll_waiter *next; /* link in an amb__poll_list once fired */
} amb__poll_waiter;

/* Fired waiters, oldest first: intrusive, so it costs nothing to build. */
typedef struct amb__poll_list {
    amb__poll_waiter *head, *tail;
    size_t n;
} amb__poll_list;

static inline void amb__poll_list_init(amb__poll_list *l)
{
    l->head = l->tail = NULL;
    l->n = 0;
}

/* Takes the oldest waiter off l, or NULL. */
static inline amb__poll_waiter *amb__poll_list_pop(amb__poll_list *l)
{
    amb__poll_waiter *w = l->head;
    if (w != NULL) {
        l->head = w->next;
        if (l->head == NULL)
            l->tail = NULL;
        l->n--;
        w->next = NULL;
    }
    return w;
}

enum amb__poll_dir {
    AMB__POLL_READ = 0,  /* readable, peer closed (RDHUP, HUP), error */
    AMB__POLL_WRITE = 1, /* writable, hung up, error */
};

/* amb__poll_inject's dirs: bits 1u << AMB__POLL_READ, 1u << AMB__POLL_WRITE,
 * and this one: the end of the stream or an error (sets hup). */
#define AMB__POLL_HUP (1u << 2)

/* Slot values; anything else is an amb__poll_waiter * (8-byte aligned). */
#define AMB__POLL_NIL    ((uintptr_t)0)
#define AMB__POLL_READY  ((uintptr_t)1)
#define AMB__POLL_CLOSED ((uintptr_t)2)

/* One registered fd. 64 bytes and 64-aligned, so the slots of two
 * connections served on two cores never share a cache line. */
typedef struct amb__poll_desc {
    _Alignas(64) _Atomic(uintptr_t) slot[2]; /* by enum amb__poll_dir */
    _Atomic(uint32_t) gen;                   /* bumped by close */
    _Atomic(uint32_t) hup; /* the peer closed or an error came (sticky) */
    int fd;                /* while open */
    uint32_t idx;          /* place in the table */
    uint32_t next_free;    /* free list (table lock) */
} amb__poll_desc;

/* Descriptors per chunk and chunks at most: 16M descriptors. */
#define AMB__POLL_CHUNK  1024u
#define AMB__POLL_CHUNKS 16384u

typedef struct amb__poll {
    int epfd;
    int evfd; /* eventfd in the epoll set: amb__poll_break writes it */
    /* A break is pending (written, not yet read back): later breaks skip
     * the write (Go's netpollWakeSig). */
    _Atomic(bool) break_pending;
    /* One thread blocks in amb__poll_wait at a time: the claim. */
    _Atomic(bool) blocked;
    /* Monotonic ms of the last completed amb__poll_wait. */
    _Atomic(uint64_t) last_ms;
    /* Descriptors open now. */
    _Atomic(size_t) nopen;
    /* The events of the claim holder's amb__poll_block, kept for its
     * amb__poll_dispatch (only the claim holder touches them). */
    void *held;
    int nheld;

    /* The table: chunk pointers are published once (release) and never
     * change; the rest is under lock. */
    _Atomic(amb__poll_desc *) *chunks; /* AMB__POLL_CHUNKS of them */
    pthread_mutex_t lock;
    uint32_t nfresh;    /* indices [0, nfresh) have been used */
    uint32_t free_head; /* free list through next_free; UINT32_MAX: empty */
} amb__poll;

/* Creates the epoll set and its eventfd. AMB_ESYSLIMIT (out of fds),
 * AMB_ENOMEM, AMB_EIO. On failure nothing is left open. */
int amb__poll_init(amb__poll *p);

/* Closes the epoll set and the eventfd and frees the table. Nobody may be
 * in amb__poll_wait; descriptors still open are forgotten (their fds are
 * their owners' to close). */
void amb__poll_destroy(amb__poll *p);

/* Registers fd (non-blocking, not yet registered) for both directions,
 * edge-triggered; *pd and *gen name it from now on. A fresh descriptor's
 * slots are NIL: the first edges (a new socket is writable at once) make
 * them READY at the next poll. AMB_ENOMEM, AMB_ESYSLIMIT (the table or the
 * kernel's watch limit is full), AMB_ENOTSUP (fd cannot be polled: a
 * regular file), AMB_EBADARG (bad fd). On failure nothing was registered. */
int amb__poll_open(amb__poll *p, int fd, amb__poll_desc **pd, uint32_t *gen);

/* Marks both slots of pd CLOSED and appends the waiters armed there to
 * *fired (the caller delivers them like amb__poll_wait's: each retries,
 * finds its socket closing and fails). From now on arm says AMB_ECLOSED and
 * events change nothing; the fd stays registered. Idempotent; any thread. */
void amb__poll_evict(amb__poll_desc *pd, amb__poll_list *fired);

/* The last step of a close, by the holder of the last reference (no reset
 * or arm can be running on pd): evicts (waiters to *fired, normally none
 * by now), unregisters the fd (before its owner closes it: an fd still
 * open elsewhere, after dup or fork, would otherwise keep reporting), bumps
 * the generation and puts the descriptor on the free list. gen must be the
 * one open gave; a stale gen does nothing (closed already). */
void amb__poll_close(amb__poll *p, amb__poll_desc *pd, uint32_t gen,
                     amb__poll_list *fired);

/* True once the descriptor has seen the end of the stream or an error
 * (sticky until close): a short read must read again (above). Any thread. */
static inline bool amb__poll_hup(const amb__poll_desc *pd)
{
    /* seq_cst: the other side of the poller's fence after it sets hup
     * (poll_epoll.c, amb__poll_inject): a caller that looks after its
     * reset sees a hup that came before the edge the reset consumed. */
    return atomic_load_explicit(&pd->hup, memory_order_seq_cst) != 0;
}

/* Consumes a READY edge of dir before the syscall that will look for data
 * or room (the protocol above). Any thread; never fails. */
void amb__poll_reset(amb__poll_desc *pd, int dir);

/* Arms w on dir of pd (gen from open) after the syscall said EAGAIN.
 *   0              armed: exactly one fire of w follows, unless
 *                  amb__poll_disarm takes it back;
 *   AMB_EAGAIN     an edge arrived since the reset: consumed, not armed:
 *                  retry the syscall;
 *   AMB_ECLOSED    pd was closed (gen is stale): not armed;
 *   AMB_ESTATE     another waiter is armed on that direction (the I/O
 *                  layer serialises waiters per direction: a bug).
 * w->task and w->node must be set; w must not be armed or fired already. */
int amb__poll_arm(amb__poll_desc *pd, uint32_t gen, int dir, amb__poll_waiter *w);

/* Takes w back from dir of pd (a timeout or an exit signal ended the wait
 * first). true: w was still armed and now is not: no fire will come. false:
 * w has fired (or is firing): its node is being, or has been, delivered. */
bool amb__poll_disarm(amb__poll_desc *pd, int dir, amb__poll_waiter *w);

/* Waits for events up to timeout_ms (0: look and return; AMB_INFINITY-like
 * -1: until one comes or amb__poll_break), appends the waiters they fire to
 * *fired, marks the other slots READY, and records the time in last_ms.
 * Returns the number of waiters appended (0 after a timeout or a break),
 * AMB_EIO if epoll_wait fails for a reason other than a signal. Any thread;
 * the caller delivers *fired (above). */
int amb__poll_wait(amb__poll *p, int64_t timeout_ms, amb__poll_list *fired);

/* amb__poll_wait in two halves, for the claim holder (a scheduler that
 * blocks): amb__poll_block waits for events up to timeout_ms and keeps
 * them in p without touching any descriptor or waiter (0, or AMB_EIO);
 * amb__poll_dispatch then does with them what amb__poll_wait does (fires
 * waiters into *fired, marks slots READY, drops stale events, records
 * last_ms) and returns the number of waiters fired. A scheduler is offline
 * for QSBR while it blocks and comes back online between the two, before
 * any waiter is touched: a waiter's memory (in a process block) is only
 * guaranteed while its reader is online (sched.c, "The poller"). Only the
 * holder of the claim calls them. */
int amb__poll_block(amb__poll *p, int64_t timeout_ms);
int amb__poll_dispatch(amb__poll *p, amb__poll_list *fired);

/* Makes a thread blocked in amb__poll_wait or amb__poll_block return soon
 * (at once if one is blocked, at its next wait otherwise). Any thread; cheap when a break
 * is already pending (one atomic load). */
void amb__poll_break(amb__poll *p);

/* The claim on blocking: true for the one caller that may now block in
 * amb__poll_wait (until it calls amb__poll_unclaim), false when another
 * holds it. */
bool amb__poll_claim(amb__poll *p);
void amb__poll_unclaim(amb__poll *p);
/* True while some thread holds the claim (is, or is about to be, blocked
 * in the poller): a waker then breaks it rather than a futex. */
bool amb__poll_blocked(amb__poll *p);

/* Readiness by hand: does what an event for token (amb__poll_token) with
 * the directions in dirs (bits 1u << AMB__POLL_READ, 1u << AMB__POLL_WRITE)
 * does when amb__poll_wait reads it: fires the waiters (appended to *fired)
 * or marks the slots READY, and with AMB__POLL_HUP (the peer closed, or an
 * error) sets the descriptor's hup first; drops it when the generation is
 * stale. Returns
 * the number of waiters fired. For tests, and for the deterministic
 * testing mode of runtime-anchors §4 (readiness from a seeded schedule). */
uint64_t amb__poll_token(const amb__poll_desc *pd, uint32_t gen);
size_t amb__poll_inject(amb__poll *p, uint64_t token, unsigned dirs,
                        amb__poll_list *fired);

/* The monotonic time (ms) of the last completed amb__poll_wait, 0 if none. */
uint64_t amb__poll_last_ms(amb__poll *p);

/* Descriptors open now: with none, an idle scheduler has no reason to
 * block in the poller rather than on its futex. */
size_t amb__poll_nopen(amb__poll *p);

#endif /* AMB_RUNTIME_POLL_H */

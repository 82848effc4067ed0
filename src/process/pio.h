/*
 * pio.h - the process layer's I/O contract (docs/design/sockets.md §7):
 * what an I/O layer (src/io) needs from processes and the public process
 * API does not offer. pio.c implements it; the socket layer is its user.
 *
 *   1. Waiting on a poll descriptor (amb__pio_wait): the process arms its
 *      own waiter (poll.h) on one direction of a descriptor and parks until
 *      the waiter fires, its deadline passes or an exit signal ends it. The
 *      waiter's node is the process's I/O cell, a message-cell header of
 *      kind AMB__MSG_IO embedded in its I/O state (struct amb__pio): firing
 *      it pushes the cell into the mailbox, which wakes the process exactly
 *      as a message does, and the drain takes it home. No allocation per
 *      wait.
 *   2. Owned resources (amb__pio_res): a resource (a socket) is attached to
 *      its owner process, released at the owner's end whatever the reason
 *      (a return, a crash, a kill, the runtime freed), and given to another
 *      process by a cell embedded in the resource (kind AMB__MSG_RES_GIVE),
 *      which the receiver's drain takes in, or which a dead receiver's
 *      mailbox reclamation releases: nothing leaks.
 *   3. Resource events: a resource's own cell (kind AMB__MSG_RES_EVENT),
 *      pushed by the poller (its waiter fired) or by the I/O layer, runs
 *      ops->event in its owner's drain, in order with the owner's messages;
 *      the callback may append messages to the owner's private queue
 *      (amb__pio_deliver_self). Active mode is built on it.
 *   4. Turns (amb__pio_turn): a FIFO mutex of processes per socket
 *      direction. The uncontended acquire is a spin-lock round (one
 *      exchange, one store); a contended one queues the process and parks
 *      it; a release hands the turn to the oldest waiter by pushing its I/O
 *      cell.
 *   5. A call in progress (amb__pio_call_begin/end): a cleanup that runs if
 *      the process ends while inside the call, on its own stack (so data it
 *      was sending is still readable), after its waiter is disarmed: it
 *      gives back the call's turn and references.
 *
 * Invariants:
 *   - A process's I/O cell is home (its `out` false) or out: armed on a
 *     poll slot, or pushed (or being pushed) into its mailbox by a fire or
 *     a turn grant. A wait arms it only when home; a wait that ended by its
 *     timeout with the fire already in flight leaves it out, and the next
 *     wait first takes it home (the in-flight-fire rule of poll.h).
 *   - The I/O state (struct amb__pio) is made on first use and freed only
 *     when the process block is reclaimed (QSBR): a fire or a grant in
 *     flight may push its cell into the mailbox of a process that has just
 *     ended, and the block and its cell must stay valid until the pusher
 *     has passed a quiescent point. The drain, the teardown and the dead
 *     mailbox's reclamation recognise the kind and never free the cell.
 *   - Resource and I/O cells never enter the private queue.
 *   - Everything here runs in the process itself, except amb__pio_give's
 *     push and amb__pio_kick (any process), the teardown and reclamation
 *     (its scheduler), and amb__pio_turn_release's hand-over.
 */
#ifndef AMB_PROCESS_PIO_H
#define AMB_PROCESS_PIO_H

#include "process/rt.h"
#include "runtime/poll.h"
#include "runtime/spin.h"

typedef struct amb__pio_res amb__pio_res;

/* What a resource does at each event of its life. Every op gets the
 * resource; none may wait. */
typedef struct amb__pio_res_ops {
    /* The event cell came home to the owner p, which runs this in its drain
     * (in order with its messages). It may append messages to p's private
     * queue (amb__pio_deliver_self) and push the cell out again. */
    void (*event)(amb_proc *p, amb__pio_res *r);
    /* The event cell came home from the mailbox of a process that had
     * ended, or of one discarded with its runtime: nobody handles it. On
     * scheduler s (NULL at runtime teardown). */
    void (*event_dropped)(amb__sched *s, amb__pio_res *r);
    /* The resource is nobody's now: its owner ended, or a give reached a
     * process that had ended. On scheduler s (NULL at runtime teardown). */
    void (*release)(amb__sched *s, amb__pio_res *r);
    /* A give reached the new owner p, in its drain (p owns r from here). */
    void (*given)(amb_proc *p, amb__pio_res *r);
} amb__pio_res_ops;

/* A resource, embedded first... anywhere in the I/O layer's object: the
 * cells are headers only (no words), never freed as cells. */
struct amb__pio_res {
    const amb__pio_res_ops *ops;
    /* The owner's list of owned resources (the owner only touches it). */
    amb__pio_res *prev, *next;
    bool owned; /* in an owner's list (the owner's field) */
    /* The give in flight: the receiver's I/O state if it has none yet
     * (made by the giver, who can report that it could not). */
    struct amb__pio *spare;
    amb__pio_res *requeue_next; /* amb__pio_requeue's list */
    amb__msg event;             /* kind AMB__MSG_RES_EVENT */
    amb__msg give;              /* kind AMB__MSG_RES_GIVE */
};

/* A turn: the FIFO mutex of one direction of one socket. */
typedef struct amb__pio_turn {
    amb__spin lock;
    bool held;                     /* under lock */
    struct amb__pio *first, *last; /* waiting processes, oldest first */
} amb__pio_turn;

/* A process's I/O state (made on first use, freed at reclamation). */
typedef struct amb__pio {
    amb__msg cell; /* kind AMB__MSG_IO: the node of w, and of turn grants */
    amb__poll_waiter w;
    bool out;                             /* the cell is armed or on its way (above) */
    int dir;                              /* where w is armed while out by a wait ... */
    amb__poll_desc *pd;                   /* ... (NULL when it is not armed) */
    amb__pio_res *owned;                  /* owned resources, newest first */
    amb__pio_res *requeue, *requeue_last; /* events to push after this drain */
    /* The call in progress (amb__pio_call_begin). */
    void (*cleanup)(amb_proc *p, void *ctx);
    void *ctx;
    /* A turn being waited for: the queue's link, the turn, and the grant
     * (set under the turn's lock by the releasing process). */
    struct amb__pio *turn_next;
    amb__pio_turn *turn_wait;
    bool granted;
} amb__pio;

/* The I/O state of p, made on first use (in p). NULL when out of memory. */
amb__pio *amb__pio_of(amb_proc *p);

/* ---- 1. waiting on a descriptor ------------------------------------------ */

/* A deadline in the exec clock's ms for a timeout of the receive's shape
 * (0 polls, AMB_INFINITY: UINT64_MAX), taken at the call's start. */
uint64_t amb__pio_deadline(amb_proc *p, int64_t timeout_ms);

/* Parks p until dir of pd (generation gen) is ready, after the syscall
 * said EAGAIN (poll.h's protocol). 0: retry the syscall (the waiter fired,
 * or an edge came before it was armed); AMB_ETIMEDOUT (the deadline passed;
 * a deadline already past returns at once); AMB_ECLOSED (the descriptor was
 * evicted: the socket is closing); AMB_ESTATE (another waiter holds that
 * direction: a bug of the caller's turns), AMB_ENOMEM. An exit signal ends p
 * inside (never returns then). In p. */
int amb__pio_wait(amb_proc *p, amb__poll_desc *pd, uint32_t gen, int dir,
                  uint64_t deadline);

/* ---- 2. owned resources ---------------------------------------------------- */

/* Makes p the owner of r (r's cells home, r owned by nobody). 0, or
 * AMB_ENOMEM (p's I/O state could not be made; nothing changed). In p. */
int amb__pio_own(amb_proc *p, amb__pio_res *r);
/* Takes r off p's list (r stays whatever it is; p no longer releases it).
 * In p, its owner. */
void amb__pio_disown(amb_proc *p, amb__pio_res *r);
/* Gives r, owned by p, to the process `to`: r leaves p's list and its give
 * cell goes to `to`, whose drain takes it in (ops->given), or whose end
 * releases it (ops->release). 0; AMB_ENOPROC when `to` is no live process
 * of p's runtime (r stays p's); AMB_ENOMEM (nothing changed). In p. */
int amb__pio_give(amb_proc *p, amb__pio_res *r, amb_pid to);

/* ---- 3. resource events ------------------------------------------------------ */

/* Pushes r's event cell (home, its holder the caller) into the mailbox of
 * `owner`. false when no such process lives (the cell stays home: the
 * owner's end releases r). From a process on a scheduler (s its own). */
bool amb__pio_kick(amb_rt *rt, amb__sched *s, amb__pio_res *r, amb_pid owner);
/* Appends m to p's private queue as the next message, in p's drain (an
 * event callback). */
void amb__pio_deliver_self(amb_proc *p, amb__msg *m);
/* From r's event callback in p: r's event cell goes back into p's own
 * mailbox once this drain is over, behind what arrived meanwhile, so that
 * one busy resource cannot keep p's other messages waiting. */
void amb__pio_requeue(amb_proc *p, amb__pio_res *r);
/* The drain is over (mailbox.c): pushes the requeued event cells. */
void amb__pio_drained(amb_proc *p);

/* A scheduler's scratch area of AMB__PIO_SCRATCH bytes for a read that
 * is copied out before the reader can be switched out (made on first use,
 * freed with the scheduler). NULL when out of memory. */
#define AMB__PIO_SCRATCH ((size_t)64 << 10)
uint8_t *amb__pio_scratch(amb__sched *s);

/* ---- 4. turns ------------------------------------------------------------- */

void amb__pio_turn_init(amb__pio_turn *t);
/* Takes turn t for p, waiting in order behind the processes that asked
 * before. 0; AMB_ETIMEDOUT (the deadline passed first; not taken);
 * AMB_ENOMEM. An exit signal ends p inside: it then leaves the queue (or
 * passes on the turn it was just given). In p. */
int amb__pio_turn_acquire(amb_proc *p, amb__pio_turn *t, uint64_t deadline);
/* Takes t only if nobody holds it. In p or an event callback. */
bool amb__pio_turn_try(amb__pio_turn *t);
/* Gives t back: to the oldest waiter, woken, or to nobody. s: the caller's
 * scheduler (any thread for a process's teardown: s its scheduler). */
void amb__pio_turn_release(amb__sched *s, amb__pio_turn *t);

/* ---- 5. a call in progress ---------------------------------------------------- */

/* cleanup(p, ctx) runs if p ends before amb__pio_call_end: in p's context,
 * on its stack (ctx may point into the caller's frame), after p's waiter is
 * disarmed; or at runtime teardown, for a process that never ended. One
 * call at a time; needs p's I/O state (amb__pio_of). */
static inline void amb__pio_call_begin(amb__pio *io, void (*cleanup)(amb_proc *, void *),
                                       void *ctx)
{
    io->cleanup = cleanup;
    io->ctx = ctx;
}
static inline void amb__pio_call_end(amb__pio *io)
{
    io->cleanup = NULL;
    io->ctx = NULL;
}

/* ---- the process layer's side ------------------------------------------------- */

/* The drain met a cell of kind IO, RES_EVENT or RES_GIVE (mailbox.c). */
void amb__pio_cell(amb_proc *p, amb__msg *m);
/* A cell of those kinds in the mailbox of a process that ended (or is
 * discarded): taken home without handling (mailbox.c). */
void amb__pio_cell_dropped(amb__sched *s, amb__msg *m);
/* p is ending, in its own context (amb__proc_die): disarms its waiter and
 * runs the cleanup of the call it was in. */
void amb__pio_exit(amb_proc *p);
/* p's teardown on s (after amb__pio_exit when it died in context): disarm,
 * the call's cleanup if it did not run, then every owned resource is
 * released. */
void amb__pio_teardown(amb__sched *s, amb_proc *p);
/* p's block is reclaimed (or discarded): frees its I/O state. */
void amb__pio_free(amb_proc *p);

#endif /* AMB_PROCESS_PIO_H */

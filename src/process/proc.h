/*
 * proc.h - the process block, message cells and the process table: what
 * the files of src/process/ share about a process (rt.h has the runtime
 * object, fail.h the failure semantics).
 *
 * A process block:
 *
 *   +------------------------------+  64-byte aligned
 *   | task (src/runtime/task.h):   |
 *   |   inbox = the mailbox, an    |  producers push here (any thread)
 *   |   amb__mpscq (2 lines)       |
 *   |   sched, ctx, stack, budget  |  the scheduler running it
 *   +------------------------------+
 *   | pid, rt, private queue       |  owned by the process itself
 *   |   (selective receive), heap, |
 *   |   body, links, ...           |
 *   +------------------------------+
 *
 * The task comes first, so a task the runtime hands back (ops, run
 * queues) is the process with a cast (amb__proc_of).
 *
 * Who touches what:
 *   - the mailbox: any thread pushes; only the process (or the scheduler
 *     acting for it while it is switched out) pops or parks it.
 *   - Everything else belongs to the process while it runs and to the
 *     scheduler that switched it out while it does not. The mailbox's PARKED
 *     bit hands a parked process to exactly one waker (mpscq.h), and a
 *     runnable process sits in exactly one run queue, so at most one thread
 *     owns a process at any time.
 *   - The table entry of a live process points to its block. Blocks are
 *     freed only after a grace period (src/runtime/qsbr.h), so a sender that
 *     read the table entry before the process ended still pushes into valid
 *     memory; what it pushes is freed with the block.
 *
 * Messages and signals travel as message cells (amb__msg) through the
 * mailbox, in the order they were sent. A cell of kind MSG owns a copy of the
 * term in a fixed heap over its own buffer. Other kinds (a receive timeout,
 * later exit signals, links, monitors) carry their data in the cell.
 */
#ifndef AMB_PROCESS_PROC_H
#define AMB_PROCESS_PROC_H

#include "ambitious/process.h"
#include "runtime/sched.h"
#include "runtime/task.h"
#include "term_internal.h"

enum amb__msg_kind {
    AMB__MSG_TERM = 1,   /* an ordinary message */
    AMB__MSG_TIMEOUT,    /* a receive timeout fired (timer cell, see ptimer.c) */
    AMB__MSG_WAKE,       /* a blocking call finished: wakes the waiter */
    AMB__MSG_INFO_REQ,   /* process_info asked of this process (words[0]: the
                            requester; term: the items asked, or AMB_NONE; room
                            for the answer, which comes back in this cell) */
    AMB__MSG_INFO_REPLY, /* the answer (words: amb_proc_info; term: the items'
                            answer, or AMB_NONE) */
    /* Failure signals (fail.h; docs/design/failure.md). Kept in a
     * process's index, a LINK cell is a link end, a MONITOR cell the
     * target's end of a monitor, a DEMONITOR cell the watcher's end. */
    AMB__MSG_LINK,       /* words: from, to; as a link end: other, unlink id */
    AMB__MSG_UNLINK,     /* UNLINK_ID; words: from, id */
    AMB__MSG_UNLINK_ACK, /* UNLINK_ID_ACK; words: from, id */
    AMB__MSG_EXIT,       /* words: from, flags; term: the reason */
    AMB__MSG_MONITOR,    /* words: watcher, target, ref key, name, alias kind
                            (monitor.c) */
    AMB__MSG_DEMONITOR,  /* words: watcher, ref key, target, name, alias kind,
                            node, conn */
    AMB__MSG_DOWN,       /* words as MONITOR; term: the {'DOWN', ...} message */
    AMB__MSG_ALIAS,      /* a message sent to an alias; words[0]: its key */
    AMB__MSG_NODEDOWN,   /* a connection to another node is gone (remote.h);
                            words: node, conn */
    /* The I/O contract (pio.h): cell headers embedded in an I/O state or a
     * resource, never freed as cells. */
    AMB__MSG_IO,        /* the process's own I/O cell: a waiter fired, a turn */
    AMB__MSG_RES_EVENT, /* a resource's event, run in its owner's drain */
    AMB__MSG_RES_GIVE,  /* a resource given to the receiver */
};

/* A message cell: a 32-byte header and its words (msg.c). A small term
 * (immediates, and tuples of them and of references, a few levels deep:
 * every ping, pong, call and reply) is copied into the words as they are,
 * with no heap; any other term gets a heap (struct amb_heap, 40 bytes)
 * inside the words, at heap_at - 1, whose storage follows it. words[0 ..
 * reserve) are the creator's own (a timer, a signal's fields), before
 * either. So a {ping, Pid} message is one 64-byte line. */
typedef struct amb__msg {
    amb__mpscq_node node;   /* mailbox link, then private-queue link */
    uint8_t kind : 5;       /* enum amb__msg_kind */
    uint8_t size_class : 3; /* the pool it returns to (msg.c) */
    uint8_t heap_at;        /* 0: no heap; else its word index + 1 */
    uint16_t slab_index;    /* msg.c */
    uint32_t wait_seq;      /* TIMEOUT/WAKE: the wait it ends */
    uint64_t seq;           /* arrival order, given when moved to the private queue */
    amb_term term;          /* TERM: the message; WAKE: the result */
    uint64_t words[];
} amb__msg;

_Static_assert(sizeof(amb__msg) == 32, "a message cell's header is half a line");

/* The heap of a cell made with one (amb__msg_alloc_heap, or a term that is
 * not small). */
static inline amb_heap *amb__msg_heap(amb__msg *m)
{
    return (amb_heap *)(void *)(m->words + m->heap_at - 1);
}

/* A process's links and monitors (fail.h): entry cells by key, chained
 * through their mailbox link; in the block, so that recording one never
 * needs memory. */
struct amb__fail_index {
    amb__msg **buckets; /* NULL: the one chain `one` */
    amb__msg *one;
    uint32_t len;    /* entries */
    uint8_t shift;   /* 64 - log2(buckets) */
    uint32_t nlinks; /* active links */
    uint32_t nheld;  /* monitors this process holds */
};

enum amb__proc_flags {
    AMB__PF_HANDLER = 1u << 0,   /* a handler process */
    AMB__PF_INIT_DONE = 1u << 1, /* handler: init ran */
    AMB__PF_TRAP_EXIT = 1u << 2,
    AMB__PF_KEEP = 1u << 3,   /* term state: received cells are kept until the
                                 next collection (pheap.c) */
    AMB__PF_MAIN = 1u << 4,   /* amb_main's process: an abnormal end halts the
                                 runtime (rt.c) */
    AMB__PF_REMOTE = 1u << 5, /* has had a relation with another node: the dist
                                 layer is told when it ends (remote.h) */
};

struct amb_proc {
    amb__task task; /* first: the runtime's part (task.h); its inbox is the mailbox */

    amb_pid pid; /* its index in the table is also task.id (the watchdog's) */
    amb_rt *rt;
    uint32_t flags;      /* AMB__PF_* */
    uint16_t slab_index; /* where the block sits in its slab (proc.c) */
    /* The current wait (mailbox.c): */
    bool wait_timed_out; /* it ended by its timeout */
    bool wake_done;      /* the WAKE of the current wait arrived */
    bool in_receive;     /* waiting in a receive (process_info status) */
    bool in_match;       /* inside a receive's match function: no wait may
                            start (amb__proc_may_wait) */
    /* Set (release) by a sender of an exit signal after its push, so that a
     * process that runs without receiving notices it at its next runtime
     * call; cleared by the process when it drains (exit.c). */
    _Atomic bool sig_pending;
    _Atomic bool dead; /* set by teardown before it drops the name */
    uint32_t wait_seq; /* bumped by every wait; stale wake-ups carry an old one */
    /* Counters other processes may read (process_info): written only by the
     * process itself, with relaxed stores, read with relaxed loads. */
    _Atomic uint64_t reductions;

    /* The private queue: cells moved out of the mailbox, oldest first. A
     * selective receive scans it; cells it skips stay, in order. */
    amb__msg *pq_head, *pq_tail;
    amb__msg *pq_mark; /* last cell at or before the mark, NULL: the head */
    uint64_t pq_mark_seq;
    uint64_t pq_seq;       /* arrival counter */
    _Atomic size_t pq_len; /* see `reductions` */
    /* Borrowed messages (mailbox.c, "Borrows"): the one amb_receive,
     * amb_receive_if or amb_receive_match returned last, freed at the next
     * of them; the one amb_receive_if_after (the receive of library calls
     * that wait for an answer) returned last, freed at its next. */
    amb__msg *borrowed;
    amb__msg *borrowed_after;
    amb__msg *handling; /* a handler's current message: freed when handle returns */

    struct amb__msg *wait_timer; /* its receive-timeout cell while out, or NULL */
    /* What the current wait is for. A process is in one wait at a time,
     * and a WAKE or INFO_REPLY is taken only when its wait_seq is the
     * current wait's (each wait bumps wait_seq), so one word serves both:
     * the result of a blocking call, or where an INFO_REPLY goes (info.c;
     * NULL outside a process_info wait). */
    union {
        intptr_t wake_result;
        struct amb__info_wait *info_wait;
    };

    /* The body. */
    amb_fn *fn;
    void *arg;
    const amb_handler *handler;
    void *state;

    amb_heap *heap; /* created on first use */
    /* Registered name, or AMB_NONE: written under the registry lock; read
     * without it only by teardown (names.c explains the handshake). */
    _Atomic amb_term name;
    amb_term exit_reason;
    amb_heap *exit_heap; /* holds exit_reason when it is not an immediate */
    /* Links and monitors, and the on_exit handlers (made on first use):
     * fail.h; owned by the process (and by its scheduler at teardown). */
    struct amb__fail_index links_mons;
    struct amb__fail *fail;
    /* Active aliases (alias.c), made on first use; owned by the process. */
    struct amb__aliases *aliases;
    /* Term state (pheap.c): AMB__PF_KEEP processes only, so out of the
     * block every process pays for (an idle handler is 512 bytes at most). */
    struct amb__pheap *pheap;
    /* I/O (pio.h): its waiter and cell, owned resources, the call in
     * progress; made on first use, freed when the block is reclaimed. */
    struct amb__pio *io;
};

/* A term-state process's collection bookkeeping (pheap.c): the received
 * cells kept since the last collection (linked through node.next, as the
 * private queue), their bytes, and the heap's live bytes after that
 * collection. Made at spawn, freed at the end. */
struct amb__pheap {
    amb__msg *kept;
    size_t kept_bytes;
    size_t live_bytes;
    /* I/O (pio.h): its waiter and cell, owned resources, the call in
     * progress; made on first use, freed when the block is reclaimed. */
    struct amb__pio *io;
};

/* The process whose task t is. */
static inline amb_proc *amb__proc_of(amb__task *t)
{
    _Static_assert(offsetof(amb_proc, task) == 0, "the task comes first");
    return (amb_proc *)(void *)t;
}

/* A timeout the process layer accepts (process.h, "Times"): 0 ..=
 * AMB_TIMEOUT_MAX, and AMB_INFINITY when infinity_ok. */
static inline bool amb__timeout_ok(int64_t ms, bool infinity_ok)
{
    return (ms >= 0 && ms <= AMB_TIMEOUT_MAX) || (infinity_ok && ms == AMB_INFINITY);
}

/* A counter only its owner writes: a relaxed load and store, no RMW. */
static inline void amb__counter_add(_Atomic uint64_t *c, int64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)d,
                          memory_order_relaxed);
}
static inline void amb__size_add(_Atomic size_t *c, ptrdiff_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (size_t)d,
                          memory_order_relaxed);
}

/* ---------------------------------------------------------------------------
 * Process table (ptab.c): pid index -> block, with generation-checked pids.
 * ------------------------------------------------------------------------ */
/* Indices a scheduler takes from, and gives back to, the queue at once (at
 * most: fewer for a small table, so that batches held by schedulers never
 * make up a large part of it). */
#define AMB__PTAB_BATCH 64

typedef struct amb__ptab {
    _Atomic(amb_proc *) *slots; /* index -> live block or NULL */
    uint32_t *serials;          /* index -> serial of its current/last process */
    size_t size;
    unsigned batch; /* indices per batch, 1 ..= AMB__PTAB_BATCH */
    /* The queue of free indices, oldest first: the never-used ones
     * [fresh, size), then the freed ones in `freed` (a ring of `size`
     * entries, from freed_head), all under the lock. */
    void *lock;           /* pthread_mutex_t, opaque here */
    _Atomic size_t fresh; /* read without the lock only when nothing runs */
    uint32_t *freed;
    size_t freed_head, freed_len;
} amb__ptab;

/* A table of size indices for a runtime of nsched schedulers. */
int amb__ptab_init(amb__ptab *t, size_t size, unsigned nsched);
void amb__ptab_term(amb__ptab *t);
/* The live block of pid, or NULL. Safe on a scheduler thread (QSBR) or by an
 * external thread inside amb__qsbr_enter/leave. */
amb_proc *amb__ptab_lookup(amb_rt *rt, amb_pid pid);

/* ---------------------------------------------------------------------------
 * Message cells (msg.c)
 * ------------------------------------------------------------------------ */
/* A cell with nwords words of its own (no heap), from the scheduler's
 * pools (s may be NULL outside a scheduler: plain allocation). */
amb__msg *amb__msg_alloc(amb__sched *s, size_t nwords);
/* A cell with reserve words of its own, then a heap (amb__msg_heap) with
 * room for nwords of terms (it grows beyond them, like any heap). */
amb__msg *amb__msg_alloc_heap(amb__sched *s, size_t reserve, size_t nwords);
/* Returns a cell (and what its heap holds) to the pools of s (may be NULL). */
void amb__msg_free(amb__sched *s, amb__msg *m);
/* The bytes m takes (its cell and any blocks its heap grew): process_info's
 * memory. */
size_t amb__msg_bytes(const amb__msg *m);
/* A TERM cell holding a copy of t. NULL on ENOMEM. */
amb__msg *amb__msg_new_term(amb__sched *s, amb_term t);
/* The same with reserve words at the start of the cell's words for the
 * caller (a timer keeps its state there: ptimer.c). */
amb__msg *amb__msg_new_term_after(amb__sched *s, amb_term t, size_t reserve);

/* A cell with no term storage beyond n words, of a signal kind. NULL on
 * ENOMEM. */
amb__msg *amb__msg_new_signal(amb__sched *s, enum amb__msg_kind kind, size_t n);
/* A cell of `kind` whose first `reserve` words are the caller's, its term
 * storage (heap) behind them, with room for `extra` words before the heap
 * takes blocks of its own. NULL on ENOMEM. */
amb__msg *amb__msg_new_reserved(amb__sched *s, enum amb__msg_kind kind, size_t reserve,
                                size_t extra);
/* The message-cell pools of s, given back to their slabs: trim (the
 * depots too) when s goes to sleep, free at teardown. */
void amb__msg_pools_trim(amb__sched *s);
void amb__msg_pools_free(amb__sched *s);
/* The runtime's depots of message cells, with each scheduler's pools wired
 * to them; freed after every pool was drained. */
int amb__msg_depots_init(amb_rt *rt);
void amb__msg_depots_free(amb_rt *rt);

/* The memory m's term may occupy, as ranges into out[0 .. cap): what a
 * collection of a process that kept m empties. Returns how many there are
 * (more than cap: only cap were written). One range, the cell's words up to
 * the end of its term, unless its heap spilled into blocks (a signal's
 * reason larger than the room kept for it): then the cell's words and each
 * block. */
size_t amb__msg_ranges(const amb__msg *m, amb__range *out, size_t cap);

/* ---------------------------------------------------------------------------
 * Term state (pheap.c): a handler whose state begins with terms
 * (amb_handler.state_terms) keeps every message it received until the next
 * collection, which copies what those terms reach to a fresh heap.
 * ------------------------------------------------------------------------ */
/* Takes m (received, borrowed until now) into p's kept cells. */
void amb__pheap_keep(amb_proc *p, amb__msg *m);
/* After a callback of a term-state handler: keeps what it received and,
 * when the heap and kept cells have grown to AMB__PHEAP_GROWTH times the
 * live size of the last collection, collects with the state's terms as
 * roots. A collection that runs out of memory half way ends p with
 * {error, 'AMB_ENOMEM'}; one that cannot start is tried again later. */
void amb__pheap_after(amb_proc *p);
/* Frees p's kept cells (after a collection). */
void amb__pheap_drop(amb__sched *s, amb_proc *p);
/* Frees p's kept cells and its bookkeeping (p is ending or was never
 * published; nothing when p has no term state). */
void amb__pheap_free(amb__sched *s, amb_proc *p);

/* ---------------------------------------------------------------------------
 * Delivery and waiting (mailbox.c)
 * ------------------------------------------------------------------------ */
/* Pushes m into p's mailbox and, when that wakes p, makes it runnable
 * (on s, or through the inject queue when s is NULL). */
void amb__mailbox_deliver(amb_rt *rt, amb__sched *s, amb_proc *p, amb__msg *m);
/* Sends a copy of msg from `from` (AMB_NONE: no process) to any
 * destination form of amb_send, on scheduler s (NULL: outside the runtime,
 * inside amb__qsbr_enter/leave). The results of amb_send. */
int amb__mailbox_send(amb_rt *rt, amb__sched *s, amb_pid from, amb_term to, amb_term msg);
/* Moves what has arrived into the private queue, handling signals on the
 * way (which may end p). */
void amb__mailbox_drain(amb_proc *p);
/* Appends m to p's private queue as its newest message (an I/O event's
 * messages, pio.h). */
void amb__mailbox_append(amb_proc *p, amb__msg *m);
/* Frees every cell of a dead process's mailbox and private queue. */
void amb__mailbox_drop_all(amb__sched *s, amb_proc *p);
/* Closes the mailbox of p, which has ended, for good: discards what is in
 * it (amb__mailbox_discard), and from then on the first sender that pushes
 * into it does the same itself (amb__mailbox_deliver), at once. Called by
 * p's teardown, and by a sender whose push found the mailbox closed. */
void amb__mailbox_close(amb_rt *rt, amb__sched *s, amb_proc *p);
/* Frees a cell that will never be received; a request in it is answered
 * (a process_info request gets "no such process", a LINK an exit signal
 * noproc, a MONITOR a DOWN noproc). */
void amb__mailbox_discard(amb_rt *rt, amb__sched *s, amb__msg *m);
/* Handler processes: takes the oldest message without waiting. False when
 * there is none. The term is borrowed until the next take. */
bool amb__mailbox_take(amb_proc *p, amb_term *out);
/* Drains the mailbox, then moves every message of the private queue for
 * which match is true, in order, into the mailbox of `to` (the cells
 * themselves: a socket's messages given with the socket, pio.h). */
void amb__mailbox_move_if(amb_proc *p, amb_match_fn *match, void *ctx, amb_proc *to);
/* Drains the mailbox, then removes and frees every message of the private
 * queue for which match is true (amb_demonitor's flush). Leaves the borrowed
 * message alone. */
void amb__mailbox_remove_if(amb_proc *p, amb_match_fn *match, void *ctx);
/* Frees every message the process borrows (a handler's, between messages;
 * a process that ends). */
void amb__mailbox_release_borrowed(amb_proc *p);
/* amb_sleep: parks p for ms (AMB_INFINITY: for ever) while its mailbox
 * drains, taking no message and ending no borrow. 0, AMB_ENOMEM, AMB_ESTATE
 * (from a match function). */
int amb__mailbox_sleep(amb_proc *p, int64_t ms);
/* Starts a wait that only a WAKE cell with the returned wait_seq ends
 * (a blocking call): bumps p->wait_seq and clears wake_done. */
uint32_t amb__mailbox_wait_begin(amb_proc *p);
/* Parks until that WAKE arrives (messages arriving meanwhile stay queued, in
 * order); then p->wake_result holds the value the WAKE carried. */
void amb__mailbox_wait_wake(amb_proc *p);

/* ---------------------------------------------------------------------------
 * The life of a process (proc.c)
 * ------------------------------------------------------------------------ */
/* Drains p's mailbox when an exit signal is pending. */
void amb__proc_signals(amb_proc *p);
/* Yields: first handles the signals that have arrived (a running process
 * answers process_info, links and monitors at its next yield, as a BEAM
 * process does when it is scheduled out; exit signals act even sooner, see
 * amb__proc_reduce), then goes to the back of the run queue. */
void amb__proc_yield(amb_proc *p);
/* Ends p, whose stack is nearly used up, with reason stack_overflow (from
 * a runtime call, on the margin kept for it: docs/design/stacks.md). */
_Noreturn void amb__proc_stack_overflow(amb_proc *p);
/* Whether p may start a wait that takes messages or parks on a wait
 * number (a receive, amb_sleep, a blocking call, process_info of another
 * process, a demonitor that flushes): not from inside a receive's match
 * function. That receive holds its place in the private queue, its wait
 * number and its timer, and a nested wait would take cells from under it,
 * end its borrow, or orphan its timer (issue 13, item 2). Yields, sends,
 * links, monitors and drains only append, so they stay allowed. */
static inline bool amb__proc_may_wait(const amb_proc *p)
{
    return !p->in_match;
}
/* Charges n reductions for work done in one go (the cells a selective scan
 * passed over: BEAM charges a reduction for each message a receive skips),
 * without yielding there: the next reduction yields if the budget is gone.
 * So a long scan counts in process_info and shortens the time slice. */
static inline void amb__proc_charge(amb_proc *p, size_t n)
{
    amb__counter_add(&p->reductions, (int64_t)n);
    p->task.budget = p->task.budget > 0 && (size_t)p->task.budget > n
                         ? (int16_t)(p->task.budget - (int16_t)n)
                         : 0;
}
/* Spends one reduction; yields when the budget is gone. Ends the process
 * (stack_overflow) when its stack is nearly used up, and handles pending
 * exit signals first: every send and receive passes here, so a running
 * process notices an exit signal, and a recursion that calls the runtime
 * is stopped, at its next runtime call. */
static inline void amb__proc_reduce(amb_proc *p)
{
    if (amb__unlikely(amb__task_stack_low(&p->task, amb__ctx_sp())))
        amb__proc_stack_overflow(p);
    /* relaxed: a hint only; amb__proc_signals re-reads it with acquire. */
    if (amb__unlikely(atomic_load_explicit(&p->sig_pending, memory_order_relaxed)))
        amb__proc_signals(p);
    amb__counter_add(&p->reductions, 1);
    if (amb__unlikely(--p->task.budget <= 0))
        amb__proc_yield(p);
}
/* The executor's ops (task.h) for processes: a fresh context's body (a
 * stackful process's function, or a handler's activation), the teardown
 * of an ended process, the reclamation of its block, and the release of
 * every process still alive when the runtime is freed. */
void amb__proc_entry(amb__task *t);
void amb__proc_teardown(amb__sched *s, amb__task *t);
/* The executor's op for a process that could have no stack to run on: it
 * ends with {error, 'AMB_ENOMEM'} (a crash report says so). */
void amb__proc_start_failed(amb__sched *s, amb__task *t);
/* The executor's op for a push into an ended process's closed mailbox. */
void amb__proc_inbox_closed(amb__sched *s, amb__task *t);
void amb__proc_reclaim(amb__sched *s, amb__task *t);
void amb__proc_discard_all(amb__exec *x);
/* The process-block pool of s: given back to its slabs (trim: the depot
 * too, when s goes to sleep; free: at teardown). */
void amb__proc_pool_trim(amb__sched *s);
void amb__proc_pool_free(amb__sched *s);
int amb__proc_depot_init(amb_rt *rt);
void amb__proc_depot_free(amb_rt *rt);
/* Spawns amb_main's process (from outside the runtime, before it runs):
 * when it ends with a reason other than normal, the runtime halts with
 * AMB_EMAINEXIT (rt.c). */
int amb__proc_spawn_main(amb_rt *rt, amb_fn *fn, void *arg);
/* Ends p with reason (copied) from p's own context; then frees cell (may be
 * NULL: the signal that held the reason). report: log a crash report when
 * the reason is abnormal (p ended itself). */
_Noreturn void amb__proc_die(amb_proc *p, amb_term reason, bool report, amb__msg *cell);

/* ---------------------------------------------------------------------------
 * process_info (info.c)
 * ------------------------------------------------------------------------ */
/* Answers a process_info request in p, which is draining its mailbox. */
void amb__info_answer(amb_proc *p, amb__msg *req);
/* Answers a request that reached a dead process: "no such process". */
void amb__info_discard(amb_rt *rt, amb__sched *s, amb__msg *req);
/* Takes an INFO_REPLY in, while p drains: when it answers p's current wait,
 * it ends the wait (the cell is kept when it carries items), else it is
 * freed. */
void amb__info_reply_taken(amb_proc *p, amb__msg *m);

/* ---------------------------------------------------------------------------
 * Failure: links, monitors, exit signals (fail.h has the rest)
 * ------------------------------------------------------------------------ */
/* Teardown: on_exit handlers, then exit signals to links, DOWN to monitors,
 * demonitors to monitored processes; frees the tables (fail.c). */
void amb__fail_teardown(amb__sched *s, amb_proc *p);
/* Runs the on_exit handlers and frees the tables of a process that never
 * ended (runtime teardown). */
void amb__fail_free(amb_proc *p);

/* ---------------------------------------------------------------------------
 * Timers of processes (ptimer.c): receive timeouts, send_after, sleep
 * ------------------------------------------------------------------------ */
/* A timed wait of ms begins for p, on s: its timer cell is armed (or, out
 * already, told the new deadline: ptimer.c explains the lazy timers). 0,
 * AMB_ENOMEM. */
int amb__ptimer_wait(amb__sched *s, amb_proc *p, uint64_t ms);
/* p's timed wait ended before its timeout (a message came): the timer cell
 * stays out, told there is no wait. */
void amb__ptimer_wait_end(amb_proc *p);
/* p drains its timer cell m (a TIMEOUT signal), on s: true when p's timed
 * wait has reached its deadline (the wait times out). m is p's again, or
 * freed, or out again for a wait that goes on. */
bool amb__ptimer_came_back(amb__sched *s, amb_proc *p, amb__msg *m);
/* Takes p's timer cell back for good, from any scheduler s (teardown). */
void amb__ptimer_wait_cancel(amb__sched *s, amb_proc *p);
/* The executor's op for a timer's end (task.h): delivers what it carries
 * when live, else frees it. */
void amb__ptimer_fire(amb__sched *s, amb__timer *tm, bool live);

/* The executor's op for a finished blocking job (blocking_call.c):
 * delivers the result to the caller, or frees the job. */
void amb__blocking_call_done(amb__exec *x, amb__blocking_job *job, bool discard);

/* ---------------------------------------------------------------------------
 * Logger (logger.c)
 * ------------------------------------------------------------------------ */
/* Crash report for p ending with reason; last is the last message it
 * received or AMB_NONE. */
void amb__logger_crash(amb_proc *p, amb_term reason, amb_term last);
/* The executor's op for the watchdog (task.h): one line on stderr naming
 * the process (id is its table index) that ran ms milliseconds on
 * scheduler `sched` without yielding. */
void amb__logger_stuck(amb__exec *x, unsigned sched, uint32_t id, uint64_t ms);

/* Aliases (alias.c). Keys with this bit belong to alias monitors: the
 * rest is the monitor's key (monitor.c). */
#define AMB__ALIAS_MONITOR_BIT (UINT64_C(1) << 63)
/* True when t is an alias of rt. */
bool amb__alias_is(amb_rt *rt, amb_term t);
/* Decodes an alias of rt into its key and owner; false for any other term. */
bool amb__alias_decode(amb_rt *rt, amb_term ref, uint64_t *key, amb_pid *owner);
/* The alias term of key owned by owner, on h (AMB_NONE: no memory). */
amb_term amb__alias_term(amb_rt *rt, amb_heap *h, uint64_t key, amb_pid owner);
/* Makes key an active alias of p (reply: inactive after one message), its
 * term in *ref on p's heap. 0, or AMB_ENOMEM and nothing changed. */
int amb__alias_add(amb_proc *p, uint64_t key, bool reply, amb_term *ref);
/* Deactivates p's alias key; false when it was not active. */
bool amb__alias_drop(amb_proc *p, uint64_t key);
/* Sends msg (copied) to the owner of alias; 0 also when the owner is gone. */
int amb__alias_send(amb_rt *rt, amb__sched *s, amb_term alias, amb_term msg);
/* The drain's decision on an ALIAS cell: the cell as an ordinary message
 * when its alias is active (a reply alias goes inactive), else NULL (freed). */
amb__msg *amb__alias_accept(amb_proc *p, amb__msg *m);
/* The bytes p's alias set takes (process_info's memory). */
size_t amb__alias_bytes(const amb_proc *p);
/* Frees the alias set (teardown). */
void amb__alias_free(amb_proc *p);

/* Process table indices (ptab.c). s may be NULL (outside a scheduler). */
int amb__ptab_alloc(amb_rt *rt, amb__sched *s, uint32_t *index, uint32_t *serial);
void amb__ptab_free(amb_rt *rt, amb__sched *s, uint32_t index);
/* Puts the indices s holds back into the queue (teardown of s). */
void amb__ptab_flush_cache(amb_rt *rt, amb__sched *s);

/* Registered names (names.c). */
int amb__names_init(amb_rt *rt);
void amb__names_term(amb_rt *rt);
/* Removes p's name, if it has one (teardown). */
void amb__names_drop(amb_rt *rt, amb_proc *p);
int amb__names_register(amb_rt *rt, amb_term name, amb_proc *p);
amb_proc *amb__names_lookup(amb_rt *rt, amb_term name);
/* The one resolution of a destination (amb_dest_resolve, amb_send,
 * amb_rt_send; gen_server's server references through amb_dest_resolve):
 * a pid of rt or an alias of rt as it is; an atom, or {Name, Node} with rt's
 * node name, to the pid registered under it. AMB_ENOTFOUND (no such name),
 * AMB_ENOTSUP (another node), AMB_EBADARG (anything else). From a scheduler
 * thread, or an external thread inside amb__qsbr_enter/leave. */
int amb__names_resolve(amb_rt *rt, amb_term dest, amb_term *target);

#endif /* AMB_PROCESS_PROC_H */

/*
 * sup_internal.h - what the supervisor (sup.c), the dynamic supervisor
 * (dynsup.c) and the client calls (api.c) share: the child record and its
 * life (child.c), the set of children with its indexes (children.c,
 * index.c), the restart-intensity window (restarts.c) and the call protocol
 * (proto.c).
 *
 * Built on the public API only (#include <ambitious.h>): both supervisors are
 * gen_servers, and every child operation is an ordinary process call made
 * from inside the supervisor process.
 *
 * Invariants of an amb__child:
 *   - id lives on idheap (owned by the record) or is an immediate (idheap
 *     NULL); amb__child_free releases it. Nothing of a child lives on the
 *     supervisor's process heap, so a restart storm leaves that heap as it
 *     was.
 *   - pid is a live-or-dead child pid while the child is considered running,
 *     AMB_NONE otherwise. restarting implies pid == AMB_NONE.
 *   - shutdown_ms is resolved: > 0, AMB_SHUTDOWN_BRUTAL_KILL or AMB_INFINITY
 *     (never AMB_SHUTDOWN_DEFAULT).
 *   - uid is unique within its supervisor for the supervisor's life (0 marks
 *     a free record): retry messages name a child by (slot, uid), so a retry
 *     aimed at a child that was deleted or replaced meanwhile finds nothing
 *     and is dropped.
 */
#ifndef AMB_SUP_INTERNAL_H
#define AMB_SUP_INTERNAL_H

#include <ambitious.h>

typedef struct amb__child {
    amb_term id;
    amb_heap *idheap;
    uint64_t idhash; /* amb_hash(id), when its set indexes ids */
    amb_child_start_fn *start;
    void *arg;
    int64_t shutdown_ms;
    uint8_t restart; /* amb_restart */
    uint8_t type;    /* amb_child_type */
    bool restarting;
    amb_pid pid;
    amb_pid last_pid; /* the pid it last ran as, for reports (or NONE) */
    uint64_t uid;
    size_t slot;                    /* its place in its set, fixed */
    struct amb__child *prev, *next; /* start order; a free record: next free */
} amb__child;

/* ---- child.c ------------------------------------------------------------ */

/* 0 when spec is well formed (start set; restart, shutdown and type in
 * range), else AMB_EBADARG. The id is not looked at. */
int amb__child_check(const amb_child_spec *spec);
/* Fills c from spec: copies the id (with_id; else `undefined`) onto a heap
 * c owns, resolves the default shutdown. Not running. 0 or AMB_ENOMEM (c is
 * then left empty: amb__child_free is a no-op on it). */
int amb__child_init(amb__child *c, const amb_child_spec *spec, bool with_id,
                    uint64_t uid);
/* Releases what c owns. Idempotent. */
void amb__child_free(amb__child *c);
/* Calls the child's start function in the supervisor process. 0 (c->pid
 * set), AMB_EIGNORE (c->pid stays AMB_NONE), or a negative code with
 * *reason (on self's heap) saying why: what the start function gave, else
 * {error, 'AMB_E...'}. */
int amb__child_start(amb_proc *self, amb__child *c, amb_term *reason);
/* Stops the running children among the n records from first on (following
 * next) by their shutdown rules, all at once: each is monitored and
 * unlinked, told to stop (an EXIT of it already in the mailbox means it is
 * gone and needs no telling), then each DOWN is awaited until its own
 * deadline, after which it is killed and awaited again. Returns when every
 * one has ended; their pids become AMB_NONE. One child at a time is
 * n == 1. O(n log n), plus the messages that wait in the mailbox. Use
 * amb__children_stop, which also drops the pids from the set's index. */
void amb__child_stop(amb_proc *self, amb__child *first, size_t n);
/* Whether a child of that restart type that ended with reason is restarted
 * (permanent always; transient unless normal, shutdown or {shutdown, _};
 * temporary never). */
bool amb__child_should_restart(int restart, amb_term reason);
/* Logs a supervisor report (OTP's supervisor_report) at error level:
 * context (child_terminated, start_error, shutdown, ...) and reason. */
void amb__child_report(amb_proc *self, const char *context, const amb__child *c,
                       amb_term reason);

/* ---- restarts.c -------------------------------------------------------- */

/* Restarts within the last period_ms, as (millisecond, count) runs in a
 * ring: at most min(intensity + 1, period_ms + 1) runs, so the memory is
 * bounded whatever the restart rate. */
typedef struct amb__restarts {
    struct amb__restart_run {
        int64_t ms;
        uint64_t count;
    } * runs;
    size_t cap, head, len;
    uint64_t total;
    int intensity;
    int64_t period_ms;
} amb__restarts;

/* The intensity and period a supervisor or dynamic supervisor runs with,
 * from the user's fields (supervisor.h): 0 means OTP's default (3 restarts,
 * 5000 ms), AMB_NO_RESTARTS an intensity of 0. 0, or AMB_EBADARG for an
 * intensity below AMB_NO_RESTARTS or a period out of 0 ..= AMB_TIMEOUT_MAX
 * (nothing stored). */
int amb__restarts_resolve(int intensity, int64_t period_ms, int *intensity_out,
                          int64_t *period_out);
void amb__restarts_init(amb__restarts *r, int intensity, int64_t period_ms);
/* Records one restart now: 0 with *exceeded true when that makes more than
 * `intensity` within the period (the supervisor must give up with
 * shutdown); AMB_ENOMEM when it cannot be recorded (the supervisor gives up
 * with {error, 'AMB_ENOMEM'} rather than loop uncounted). */
int amb__restarts_add(amb__restarts *r, int64_t now_ms, bool *exceeded);
void amb__restarts_free(amb__restarts *r);

/* ---- index.c: a hash index of items (child records, specs) ------------- */

typedef struct amb__index {
    struct amb__index_slot {
        uint64_t hash;
        const void *item; /* NULL: empty */
    } * slots;
    size_t cap, len; /* cap: 0 or a power of two; len <= cap / 2 */
    unsigned shift;  /* 64 - log2(cap) */
} amb__index;

/* Whether item has key (NULL: the hash is the key itself, as for a pid). */
typedef bool amb__index_eq(const void *item, amb_term key);

/* Makes room for n entries in all, so that the puts up to n never allocate:
 * 0 or AMB_ENOMEM (the index is unchanged). */
int amb__index_reserve(amb__index *x, size_t n);
/* Adds (hash, item); room must have been reserved. */
void amb__index_put(amb__index *x, uint64_t hash, const void *item);
/* The item with that hash for which eq(item, key) holds, or NULL. O(1)
 * expected. */
const void *amb__index_get(const amb__index *x, uint64_t hash, amb__index_eq *eq,
                           amb_term key);
/* Removes the entry (hash, item), if there is one. Never allocates. */
void amb__index_del(amb__index *x, uint64_t hash, const void *item);
void amb__index_free(amb__index *x);

/* ---- children.c: the children of one supervisor ------------------------- */

/* Records live in chunks that never move, so a record's address and slot
 * stay the same for its life; free records are reused. The live ones are
 * linked in start order (head the oldest), indexed by pid while running
 * and, in a static supervisor, by id. */
typedef struct amb__children {
    amb__child **chunks;
    size_t nchunks, chunkcap;
    amb__child *free;
    amb__child *head, *tail;
    size_t n; /* live records */
    amb__index ids, pids;
    bool with_ids; /* ids copied and indexed (static); else `undefined` */
    uint64_t next_uid;
} amb__children;

void amb__children_init(amb__children *s, bool with_ids);
/* Frees every record and the set's memory (the children are not stopped). */
void amb__children_free(amb__children *s);
/* Adds a child from spec (its id not present in s) as the newest, not
 * running: 0 and *out, or AMB_ENOMEM (nothing added). Room for its pid in
 * the pid index is reserved here, so starting it never runs out of memory
 * for the index. O(1) amortised. */
int amb__children_add(amb__children *s, const amb_child_spec *spec, amb__child **out);
/* Forgets a child that is not running. O(1). */
void amb__children_remove(amb__children *s, amb__child *c);
/* Lookups, NULL when there is none. O(1) expected. */
amb__child *amb__children_by_id(const amb__children *s, amb_term id);
amb__child *amb__children_by_pid(const amb__children *s, amb_pid pid);
amb__child *amb__children_by_uid(const amb__children *s, uint64_t slot, uint64_t uid);
/* amb__child_start, and the pid indexed on success. */
int amb__children_start(amb_proc *self, amb__children *s, amb__child *c,
                        amb_term *reason);
/* amb__child_stop of n records from first on, their pids unindexed. */
void amb__children_stop(amb_proc *self, amb__children *s, amb__child *first, size_t n);
/* The running child c has ended (its EXIT came): pid unindexed, NONE. */
void amb__children_exited(amb__children *s, amb__child *c);

/* ---- proto.c: the management calls ----------------------------------- */

/* Requests are {'$amb_sup', Op, Arg}; replies {Rc, Value} with Rc an
 * AMB_E* code (0 for success). */
typedef enum amb__sup_op {
    AMB__OP_START_CHILD = 1,
    AMB__OP_TERMINATE_CHILD,
    AMB__OP_RESTART_CHILD,
    AMB__OP_DELETE_CHILD,
    AMB__OP_WHICH_CHILDREN,
    AMB__OP_COUNT_CHILDREN,
    AMB__OP_DYN_START_CHILD,
    AMB__OP_DYN_TERMINATE_CHILD,
} amb__sup_op;

/* The Op of a request (0 when req is not one) and its Arg. */
int amb__proto_req_parse(amb_term req, amb_term *arg);
/* A child spec as a term (function and arg as addresses: the spec's
 * functions live in this OS process), and back. */
amb_term amb__proto_spec_pack(amb_heap *h, const amb_child_spec *spec);
int amb__proto_spec_unpack(amb_term t, amb_child_spec *out);
/* The reply {Rc, Value}. */
amb_gen_ret amb__proto_reply(amb_proc *self, int rc, amb_term value);
/* which_children (newest first, as OTP) and count_children (with
 * check_alive, a running child counts as active only while it is alive, as
 * OTP's supervisor; the dynamic supervisor counts its records, as Elixir's),
 * the replies of both supervisors. O(n). */
amb_gen_ret amb__proto_reply_which(amb_proc *self, const amb__children *s);
amb_gen_ret amb__proto_reply_count(amb_proc *self, const amb__children *s,
                                   bool check_alive);
/* True for {'EXIT', From, Reason} (and sets both). */
bool amb__proto_is_exit(amb_term msg, amb_pid *from, amb_term *reason);
/* A retry message {'$amb_sup_retry', Slot, Uid} for c to self, and its
 * parse. */
int amb__proto_send_retry(amb_proc *self, const amb__child *c);
bool amb__proto_is_retry(amb_term msg, uint64_t *slot, uint64_t *uid);

#endif /* AMB_SUP_INTERNAL_H */

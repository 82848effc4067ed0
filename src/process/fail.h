/*
 * fail.h - failure semantics (DESIGN §4, docs/design/failure.md), shared by
 * the four files that implement them:
 *
 *   fail.c     a process's failure state (the tables below), made on first
 *              use, its teardown and the on_exit handlers run at the end
 *   link.c     links: amb_link, amb_unlink, amb_spawn_link, LINK / UNLINK /
 *              UNLINK_ACK signals
 *   monitor.c  monitors: amb_monitor, amb_demonitor, amb_spawn_monitor,
 *              MONITOR / DEMONITOR / DOWN signals
 *   exit.c     exit signals: amb_exit, amb_trap_exit, amb_on_exit,
 *              amb_assert_fail, EXIT signals
 *
 * Every change to a process's links and monitors is made by the process
 * itself: when it calls the API, or when it handles a signal cell while
 * draining its mailbox (in order with its messages), or by its scheduler at
 * teardown. So the tables need no lock. The signals are message cells
 * (proc.h, enum amb__msg_kind):
 *
 *   LINK {from, to}        the receiver adds `from` to its links
 *   UNLINK {from, id}      Erlang's UNLINK_ID: the receiver removes an
 *                          active link to `from` and always answers with
 *   UNLINK_ACK {from, id}  UNLINK_ID_ACK, before any other signal
 *   EXIT {from, flags}     term: the reason; flags: AMB__EXIT_LINKED when it
 *                          comes from a link (the end of a linked process)
 *   MONITOR {watcher, target, key, ref,   the receiver records the watcher
 *            name, alias kind}
 *   DEMONITOR {watcher, key}              the receiver forgets it
 *   DOWN {key}             term: {'DOWN', Ref, process, Pid, Reason}
 *
 * A LINK or MONITOR that reaches a dead process is answered by whoever frees
 * it (amb__link_discard, amb__monitor_discard): an exit signal noproc, a
 * DOWN noproc. So a link or monitor racing with the target's end is never
 * lost.
 */
#ifndef AMB_PROCESS_FAIL_H
#define AMB_PROCESS_FAIL_H

#include "process/remote.h"

/* ---------------------------------------------------------------------------
 * The failure state (fail.c): open addressing with linear probing over
 * 64-bit keys (never 0), deletion by backward shift (no tombstones).
 *   links: key = the linked pid's word when it is an immediate (an own pid,
 *          or a pid of another runtime of this OS process); for a boxed
 *          (foreign) pid a hash of it (amb__fail_pid_key), the entry
 *          "hashed".
 *   mons:  key = monitor key << 1 (a monitor this process holds, pid = the
 *          target) or (key << 1) | 1 (a monitor of this process, pid = the
 *          watcher). A monitor key is the reference's counter and
 *          scheduler id: (n << 10) | id, unique while n < 2^53. A monitor of
 *          this process by a foreign watcher has no key of ours: its key is
 *          (hash of the watcher's reference << 1) | 1, the entry hashed.
 * A hashed key may repeat (two foreign pids with one hash): lookups of
 * hashed entries compare the term too (amb__fail_find_term), and lookups
 * by an exact key skip hashed entries, so the two never meet.
 *
 * A relation with another node (remote.h) keeps its far end in a
 * amb__fail_remote the entry owns: the foreign pid (and a foreign
 * watcher's reference) copied out of the cell that brought it, the node,
 * and the connection it was made over.
 * ------------------------------------------------------------------------ */

typedef struct amb__fail_remote {
    amb_term pid;  /* the foreign pid; AMB_NONE for a monitor of a name */
    amb_term ref;  /* a foreign watcher's reference; else AMB_NONE */
    amb_term node; /* the other node */
    amb_heap heap; /* fixed, over words: holds copies of pid and ref */
    uint64_t words[];
} amb__fail_remote;

typedef struct amb__fail_entry {
    uint64_t key;
    amb_pid pid; /* links: the linked pid; mons: the other end (AMB_NONE for
                    a monitor of a name nobody had); a foreign pid lives in
                    `remote` */
    union {
        uint64_t unlink_id; /* links: 0 active, else the unacknowledged unlink */
        amb_term name;      /* mons: the name monitored (an atom), or AMB_NONE
                               for a monitor of a pid */
    };
    uint32_t ref[3];          /* mons: the reference's words (amb__rt_ref_words) */
    uint8_t alias;            /* mons: the amb_monitor_alias of an alias monitor, whose
                                 reference is the watcher's alias (monitor.c) */
    bool hashed;              /* the key is a hash (see above) */
    uint32_t conn;            /* a foreign relation: its connection (remote.h), else 0 */
    amb__fail_remote *remote; /* a foreign relation's far end, owned; else NULL */
} amb__fail_entry;

typedef struct amb__fail_table {
    amb__fail_entry *e;
    size_t cap; /* 0 or a power of two */
    size_t len;
} amb__fail_table;

typedef struct amb__fail_cleanup {
    amb_cleanup_fn *fn;
    void *ctx;
} amb__fail_cleanup;

struct amb__fail {
    amb__fail_table links;
    amb__fail_table mons;
    size_t held;           /* monitors this process holds (process_info) */
    uint64_t unlink_seq;   /* ids of this process's UNLINK_IDs */
    amb__fail_cleanup *cl; /* on_exit handlers, run newest first */
    size_t ncl, capcl;
};

/* p's failure state, made on first use; NULL when out of memory. */
static inline struct amb__fail *amb__fail_of(amb_proc *p)
{
    if (amb__unlikely(p->fail == NULL))
        p->fail = amb__calloc(1, sizeof *p->fail);
    return p->fail;
}
/* The entry of the exact key (not a hashed one), or NULL. */
amb__fail_entry *amb__fail_find(const amb__fail_table *t, uint64_t key);
/* The hashed entry of key whose term is t (the foreign pid, or for a
 * foreign watcher's monitor its reference), or NULL. */
amb__fail_entry *amb__fail_find_term(const amb__fail_table *t, uint64_t key,
                                     amb_term term);
/* The key of pid in a links table, and whether it is hashed. */
uint64_t amb__fail_pid_key(amb_pid pid, bool *hashed);
/* The link entry of pid (any pid, own or foreign), or NULL. */
amb__fail_entry *amb__fail_find_pid(const amb__fail_table *t, amb_pid pid);
/* The key (before the monitor shift) of a foreign watcher's reference. */
uint64_t amb__fail_ref_key(amb_term ref);
/* Adds (or overwrites) the exact key for pid, the rest zero (a link:
 * active; a monitor: of a pid, no alias): the entry, for the caller to
 * fill in, or NULL when out of memory (nothing changed then). */
amb__fail_entry *amb__fail_put(amb__fail_table *t, uint64_t key, amb_pid pid);
/* Adds an entry for a foreign relation over conn with node: key (hashed or
 * not), a copy of pid (may be AMB_NONE: a monitor of a name) and of ref (a
 * foreign watcher's reference, else AMB_NONE) in a fresh amb__fail_remote,
 * the rest zero. The caller has made sure no entry for the same far end
 * exists. The entry, or NULL when out of memory (nothing changed then). */
amb__fail_entry *amb__fail_put_remote(amb__fail_table *t, uint64_t key, bool hashed,
                                      amb_pid pid, amb_term ref, amb_term node,
                                      uint32_t conn);
/* The bytes p's failure state takes (process_info's memory). */
size_t amb__fail_bytes(const amb_proc *p);
/* Removes the exact key; false when it was not there. *out (may be NULL)
 * gets the entry and, with it, its remote part (amb__fail_release it);
 * without out the remote part is freed. */
bool amb__fail_del(amb__fail_table *t, uint64_t key, amb__fail_entry *out);
/* The same for an entry found by any lookup. */
void amb__fail_del_entry(amb__fail_table *t, amb__fail_entry *x, amb__fail_entry *out);
/* Frees the remote part of an entry amb__fail_del gave out. */
void amb__fail_release(amb__fail_entry *e);
/* 0 for a pid of rt, or a foreign pid when a node runs (remote.h);
 * AMB_ENOTSUP for a foreign pid without one; AMB_EBADARG for a term that is
 * not a pid. */
static inline int amb__fail_check_pid(amb_rt *rt, amb_pid pid)
{
    if (amb__rt_own_pid(rt, pid))
        return 0;
    if (amb_type_of(pid) != AMB_T_PID)
        return AMB_EBADARG;
    return amb__remote_get(rt) != NULL ? 0 : AMB_ENOTSUP;
}

/* ---------------------------------------------------------------------------
 * Links (link.c)
 * ------------------------------------------------------------------------ */
/* Handles a LINK, UNLINK or UNLINK_ACK cell while p drains; frees it. */
void amb__link_signal(amb_proc *p, amb__msg *m);
/* A LINK that reached a dead process: an exit signal noproc to the linker. */
void amb__link_discard(amb_rt *rt, amb__sched *s, amb__msg *m);
/* Teardown: an exit signal with p's reason to every active link. */
void amb__link_teardown(amb__sched *s, amb_proc *p);
/* Spawn: links child and parent before the child is published; undone by
 * amb__link_spawn_undo when the spawn fails later. */
int amb__link_spawn(amb_proc *parent, amb_proc *child);
void amb__link_spawn_undo(amb_proc *parent, amb_proc *child);
/* NODEDOWN (remote.c): every active link of p made over conn to node gets
 * an exit signal noconnection from its far end (pushed into p's own
 * mailbox, handled as any link exit); an unlink under way just ends. */
void amb__link_nodedown(amb_proc *p, amb_term node, uint32_t conn);
/* Active links of p (process_info), and the list of their pids on h
 * (AMB_NONE when out of memory). */
size_t amb__link_count(const amb_proc *p);
amb_term amb__link_list(const amb_proc *p, amb_heap *h);

/* ---------------------------------------------------------------------------
 * Monitors (monitor.c)
 * ------------------------------------------------------------------------ */
/* Handles a MONITOR, DEMONITOR or DOWN cell while p drains. Returns the
 * cell as an ordinary message (an active DOWN), or NULL (consumed, freed). */
amb__msg *amb__monitor_signal(amb_proc *p, amb__msg *m);
/* A MONITOR that reached a dead process: a DOWN noproc to the watcher. */
void amb__monitor_discard(amb_rt *rt, amb__sched *s, amb__msg *m);
/* Teardown: DOWN with p's reason to its watchers, DEMONITOR to the
 * processes p monitors. */
void amb__monitor_teardown(amb__sched *s, amb_proc *p);
/* Spawn: a monitor of child by parent before the child is published; *ref
 * gets the monitor's reference. Undone by amb__monitor_spawn_undo. */
int amb__monitor_spawn(amb_proc *parent, amb_proc *child, amb_term *ref);
void amb__monitor_spawn_undo(amb_proc *parent, amb_proc *child);
/* The key of a reference or alias this runtime's monitors made, 0 for any
 * other term. */
uint64_t amb__monitor_key(amb_rt *rt, amb_term ref);
/* A MONITOR cell from the foreign watcher with its reference ref, for
 * target (own; name the atom it was monitored by, or AMB_NONE), over conn.
 * NULL on ENOMEM. */
amb__msg *amb__monitor_cell(amb__sched *s, amb_pid watcher, amb_pid target, amb_term name,
                            amb_term ref, uint32_t conn);
/* NODEDOWN (remote.c): every monitor p holds of a process of node, made
 * over conn, gets a DOWN noconnection (pushed into p's own mailbox);
 * monitors of p by watchers there just end. */
void amb__monitor_nodedown(amb_proc *p, amb_term node, uint32_t conn);
/* Monitors p holds (process_info). */
size_t amb__monitor_count(const amb_proc *p);
/* On h (AMB_NONE when out of memory): with held, the monitors p holds as
 * process_info(P, monitors) lists them ([{process, Pid | {Name, Node}}]);
 * else the pids that monitor p (monitored_by). */
amb_term amb__monitor_list(const amb_proc *p, amb_heap *h, bool held);
/* Removes the monitor p holds with key, if active, and tells its target
 * (a reply through the alias of a {alias, reply_demonitor} monitor). */
void amb__monitor_drop(amb_proc *p, uint64_t key);

/* ---------------------------------------------------------------------------
 * Exit signals (exit.c)
 * ------------------------------------------------------------------------ */
#define AMB__EXIT_LINKED 1u /* EXIT flag: sent because a linked process ended */

/* Handles an EXIT cell while p drains (DESIGN §4's table). Returns the
 * message a trapping process gets, or NULL (consumed, freed). May end p
 * (never returns then). */
amb__msg *amb__exit_signal(amb_proc *p, amb__msg *m);
/* Sends an exit signal from `from` to `to` (dropped when `to` is dead) and
 * flags it so that a running target notices at its next runtime call; a
 * foreign `to` gets it through the dist layer (a link exit over conn, the
 * link's connection). Panics when out of memory (a signal that must not be
 * lost). */
void amb__exit_send(amb_rt *rt, amb__sched *s, amb_pid from, amb_pid to, amb_term reason,
                    unsigned flags, uint32_t conn);
/* Delivers a signal cell that must act soon (an exit signal, a NODEDOWN)
 * to the own process `to`, or frees it when `to` is not alive; then flags
 * the target so that a running one notices at its next runtime call. */
void amb__exit_post(amb_rt *rt, amb__sched *s, amb_pid to, amb__msg *m);
/* An EXIT cell from `from` (own or foreign: then copied into the cell)
 * with reason and flags. NULL on ENOMEM. */
amb__msg *amb__exit_cell(amb__sched *s, amb_pid from, amb_term reason, unsigned flags);
/* The message {'EXIT', From, Reason} a trapping process gets. Panics when
 * out of memory. */
amb__msg *amb__exit_trapped(amb__sched *s, amb_pid from, amb_term reason);

#endif /* AMB_PROCESS_FAIL_H */

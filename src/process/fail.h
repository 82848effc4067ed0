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
 *   MONITOR {watcher, target, key, ref}   the receiver records the watcher
 *   DEMONITOR {watcher, key}              the receiver forgets it
 *   DOWN {key}             term: {'DOWN', Ref, process, Pid, Reason}
 *
 * A LINK or MONITOR that reaches a dead process is answered by whoever frees
 * it (amb__link_discard, amb__monitor_discard): the target's teardown, or
 * the sender itself once the target's mailbox is closed (mailbox.c): an
 * exit signal noproc, a DOWN noproc, at once. So a link or monitor racing
 * with the target's end is never lost nor late.
 */
#ifndef AMB_PROCESS_FAIL_H
#define AMB_PROCESS_FAIL_H

#include "process/rt.h"

/* ---------------------------------------------------------------------------
 * The failure state (fail.c): open addressing with linear probing over
 * 64-bit keys (never 0), deletion by backward shift (no tombstones).
 *   links: key = the linked pid.
 *   mons:  key = monitor key << 1 (a monitor this process holds, pid = the
 *          target) or (key << 1) | 1 (a monitor of this process, pid = the
 *          watcher). A monitor key is the reference's counter and
 *          scheduler id: (n << 10) | id, unique while n < 2^53.
 * ------------------------------------------------------------------------ */

typedef struct amb__fail_entry {
    uint64_t key;
    amb_pid pid;
    uint64_t unlink_id; /* links: 0 active, else the unacknowledged unlink */
    uint32_t ref[3];    /* mons: the reference's words */
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
/* The entry of key, or NULL. */
amb__fail_entry *amb__fail_find(const amb__fail_table *t, uint64_t key);
/* Adds (or overwrites) key, active (unlink_id 0). AMB_ENOMEM, and then
 * nothing changed. */
int amb__fail_put(amb__fail_table *t, uint64_t key, amb_pid pid, const uint32_t *ref);
/* Removes key; false when it was not there. *out (may be NULL) gets it. */
bool amb__fail_del(amb__fail_table *t, uint64_t key, amb__fail_entry *out);
/* 0 for a pid of rt; AMB_ENOTSUP for another node's pid; else AMB_EBADARG. */
static inline int amb__fail_check_pid(amb_rt *rt, amb_pid pid)
{
    if (amb_is_local_pid(pid))
        return amb__lpid_slot(pid) == rt->node_slot ? 0 : AMB_ENOTSUP;
    return amb_type_of(pid) == AMB_T_PID ? AMB_ENOTSUP : AMB_EBADARG;
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
/* Active links of p (process_info). */
size_t amb__link_count(const amb_proc *p);

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
/* Monitors p holds (process_info). */
size_t amb__monitor_count(const amb_proc *p);
/* amb_monitor after its lookup: q is pid's block as the lookup found it
 * (NULL: not alive), which the caller keeps valid (QSBR). Split out so
 * that a test can make a monitor reach a block that ended after its
 * lookup. */
int amb__monitor_make(amb_proc *self, amb_pid pid, amb_proc *q, amb_term *ref);

/* ---------------------------------------------------------------------------
 * Exit signals (exit.c)
 * ------------------------------------------------------------------------ */
#define AMB__EXIT_LINKED 1u /* EXIT flag: sent because a linked process ended */

/* Handles an EXIT cell while p drains (DESIGN §4's table). Returns the
 * message a trapping process gets, or NULL (consumed, freed). May end p
 * (never returns then). */
amb__msg *amb__exit_signal(amb_proc *p, amb__msg *m);
/* Sends an exit signal from `from` to `to` (dropped when `to` is dead) and
 * flags it so that a running target notices at its next runtime call.
 * Panics when out of memory (a signal that must not be lost). */
void amb__exit_send(amb_rt *rt, amb__sched *s, amb_pid from, amb_pid to, amb_term reason,
                    unsigned flags);
/* The message {'EXIT', From, Reason} a trapping process gets. Panics when
 * out of memory. */
amb__msg *amb__exit_trapped(amb__sched *s, amb_pid from, amb_term reason);

#endif /* AMB_PROCESS_FAIL_H */

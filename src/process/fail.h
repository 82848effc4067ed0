/*
 * fail.h - failure semantics (DESIGN §4, docs/design/failure.md), shared by
 * the four files that implement them:
 *
 *   fail.c     a process's links and monitors (the index below), its
 *              on_exit handlers, and what happens to all of them when it
 *              ends
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
 * teardown. So nothing here takes a lock. The signals are message cells
 * (proc.h, enum amb__msg_kind):
 *
 *   LINK {from, to}        the receiver adds `from` to its links
 *   UNLINK {from, id}      Erlang's UNLINK_ID: the receiver removes an
 *                          active link to `from` and always answers with
 *   UNLINK_ACK {from, id}  UNLINK_ID_ACK, before any other signal
 *   EXIT {from, flags}     term: the reason; flags: AMB__EXIT_LINKED when it
 *                          comes from a link (the end of a linked process)
 *   MONITOR {watcher, target, key,        the receiver records the watcher
 *            name, alias kind}
 *   DEMONITOR {watcher, key, target,      the receiver forgets it
 *              name, alias kind}
 *   DOWN {as MONITOR}                     term: {'DOWN', Ref, process,
 *                                         Object, Reason}
 *
 * A monitor's name is the atom it was made with (amb_monitor of Name or
 * {Name, Node}), or AMB_NONE for a monitor of a pid: a DOWN's Object is
 * {Name, Node} for the one, the target's pid for the other. Its alias kind
 * is the amb_monitor_alias it was made with: for any but
 * AMB_MONITOR_NO_ALIAS the monitor's reference is an alias of the watcher
 * (monitor.c, alias.c).
 *
 * Nothing a link or a monitor needs later is allocated later (issue 13: a
 * target that could not record a link, and a process that could not send
 * its DOWN or exit signals, panicked). Each end of a link or monitor is a
 * cell, allocated when the link or monitor is made (where running out of
 * memory is an ordinary AMB_ENOMEM), and kept in its owner's index as the
 * signal it becomes:
 *   - a link end is the EXIT its owner sends when it ends (class-1 cell
 *     with room for the reason and for the {'EXIT', From, Reason} tuple a
 *     trapping receiver turns it into, in place);
 *   - the target's end of a monitor is the MONITOR cell itself, which it
 *     turns into the DOWN in place (a class-2 cell: the tuple and the
 *     reference are built in its reserved words);
 *   - the watcher's end is the DEMONITOR it sends at amb_demonitor or when
 *     it ends.
 * A LINK or UNLINK or process_info request is likewise answered in its own
 * cell (a LINK that reaches a dead process becomes its EXIT noproc, an
 * UNLINK the UNLINK_ACK). The one thing left that may need memory when a
 * process ends is a copy of a boxed reason that does not fit the cell: when
 * even that fails, the signal carries {error, 'AMB_ENOMEM'} instead (a
 * runtime-lifetime term), so it is never lost.
 *
 * A LINK or MONITOR that reaches a dead process is answered by whoever
 * discards it (amb__link_discard, amb__monitor_discard): the target's
 * teardown, or the sender itself once the target's mailbox is closed
 * (mailbox.c): an exit signal noproc, a DOWN noproc, at once. So a link or
 * monitor racing with the target's end is never lost nor late.
 *
 * A relation with a process of another node (remote.h) is the same: each
 * end here is a cell in the index, allocated when the relation is made,
 * that keeps the foreign pid (and a foreign watcher's reference) copied
 * into its heap and the connection the relation was made over in a
 * reserved word. What it sends leaves through the dist layer's ops
 * (ops->exit, ->demonitor, ->down) instead of a mailbox, and the cell is
 * freed then. A lost connection (NODEDOWN) ends the relations of that
 * connection with the cells themselves: a link end becomes the exit
 * signal noconnection from the far end, a monitor held the DOWN
 * noconnection (its room reserved when the monitor was made), a monitor
 * by a watcher there is freed. So neither NODEDOWN nor teardown needs
 * memory for a remote relation either.
 */
#ifndef AMB_PROCESS_FAIL_H
#define AMB_PROCESS_FAIL_H

#include "process/remote.h"

/* ---------------------------------------------------------------------------
 * The index of a process's links and monitors (fail.c; struct
 * amb__fail_index in proc.h): entry cells by a 64-bit key kept in the
 * cell's seq field, chained through its mailbox link. Keys:
 *   a link:                the other pid when it is an immediate (a local
 *                          pid's low nibble is 1110: an own pid, or one of
 *                          another runtime of this OS process)
 *   a link to a boxed      (hash of the pid << 4) | AMB__FAIL_LINK_FAR
 *   (foreign) pid:
 *   a monitor held:        (monitor key << 4) | AMB__FAIL_HELD
 *   a monitor of us:       (monitor key << 4) | AMB__FAIL_TARGET
 *   a monitor of us by a   (hash of its reference << 4) | AMB__FAIL_FAR
 *   foreign watcher:
 * A monitor key is amb__rt_ref_key of the monitor's reference, (n << 10) |
 * scheduler id with n the scheduler's reference counter: unique on the
 * node. The rule that keeps every exact key distinct: a monitor key stays
 * below 2^60 (n below 2^50: 35 years of a million references a second on
 * one scheduler), so the shift by 4 loses nothing, and the bit 63 that
 * marks an alias monitor's alias key (AMB__ALIAS_MONITOR_BIT, alias.c) is
 * free in every key the counters make, a plain alias's too. A hashed key
 * (its own low nibble) may repeat: two foreign pids, or references, with
 * one hash. Its entries are found by the term too (amb__fail_find_term),
 * and nothing looks one up by its key alone. The index never fails: its
 * bucket array grows when there is memory, and chains grow longer when
 * there is not.
 * ------------------------------------------------------------------------ */

#define AMB__FAIL_HELD     2u
#define AMB__FAIL_TARGET   3u
#define AMB__FAIL_FAR      4u /* a monitor of us by a foreign watcher */
#define AMB__FAIL_LINK_FAR 8u /* a link to a boxed (foreign) pid */

static inline uint64_t amb__fail_mon_key(uint64_t monitor_key, unsigned side)
{
    return (monitor_key << 4) | side;
}

/* A hashed key of term t with low nibble side (see above). */
static inline uint64_t amb__fail_hash_key(amb_term t, unsigned side)
{
    return (amb_hash(t) << 4) | side;
}

/* The key of a link to pid, any pid (own or foreign). */
static inline uint64_t amb__fail_link_key(amb_pid pid)
{
    return amb_is_local_pid(pid) ? pid : amb__fail_hash_key(pid, AMB__FAIL_LINK_FAR);
}

/* Adds entry e (its seq is the key; for an exact key no entry of that key
 * may be there). */
void amb__fail_add(amb_proc *p, amb__msg *e);
/* The entry of the exact key, or NULL. */
amb__msg *amb__fail_find(amb_proc *p, uint64_t key);
/* The entry of key whose words[w] equals term t (a hashed key), or NULL. */
amb__msg *amb__fail_find_term(amb_proc *p, uint64_t key, size_t w, amb_term t);
/* Removes and returns the entry of the exact key, or NULL. */
amb__msg *amb__fail_take(amb_proc *p, uint64_t key);
/* Removes entry e, which is in p's index. */
void amb__fail_remove(amb_proc *p, amb__msg *e);
/* Removes every entry of p's index for which keep(ctx, e) is false, in no
 * order, handing each to fn(ctx, e) once it is out of the index (fn may
 * end the process: the entries not yet looked at stay in the index). */
void amb__fail_sweep(amb_proc *p, bool (*keep)(void *ctx, const amb__msg *e),
                     void (*fn)(void *ctx, amb__msg *e), void *ctx);
/* Calls fn(ctx, e) for every entry e of p's index, in no order; fn must
 * not change the index. */
void amb__fail_each(const amb_proc *p, void (*fn)(void *ctx, const amb__msg *e),
                    void *ctx);
/* The bytes p's failure state takes (process_info's memory): its entry
 * cells, the index's bucket array and the on_exit handlers. */
size_t amb__fail_bytes(const amb_proc *p);

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

/* Words a copy of t takes on a heap (0 for an immediate). */
static inline size_t amb__fail_words(amb_term t)
{
    return (!amb_is_cons(t) && !amb__is_boxed(t)) ? 0
                                                  : amb_term_size(t) / sizeof(uint64_t);
}

/* A copy of t in m's heap (t itself for an immediate): the heap was sized
 * for it when m was made, so the copy fails only when a heap sized short
 * spills and there is no memory: AMB_NONE then. */
amb_term amb__fail_keep(amb__msg *m, amb_term t);

/* Puts the reason of a signal into cell m: an immediate as it is, a boxed
 * one copied into m's heap (its words past the reserved ones, then blocks
 * of its own); {error, 'AMB_ENOMEM'} when even that copy cannot be made. */
void amb__fail_reason(amb_rt *rt, amb__msg *m, amb_term reason);

/* ---------------------------------------------------------------------------
 * Links (link.c)
 * ------------------------------------------------------------------------ */
/* Reserved words of a link end / EXIT cell: from (or the other pid), flags
 * (or the unlink id), and the four words of {'EXIT', From, Reason}. A link
 * end (or LINK, UNLINK) of a foreign pid has one more, its connection
 * (AMB__LINK_CONN), and the pid in its heap. */
#define AMB__LINK_WORDS 6
#define AMB__LINK_CONN  AMB__LINK_WORDS

/* Handles a LINK, UNLINK or UNLINK_ACK cell while p drains. */
void amb__link_signal(amb_proc *p, amb__msg *m);
/* A LINK that reached a dead process: it becomes an exit signal noproc to
 * the linker. */
void amb__link_discard(amb_rt *rt, amb__sched *s, amb__msg *m);
/* Teardown: entry e, a link end of p, becomes p's exit signal to the other
 * end (active), or is freed (an unlink under way). */
void amb__link_end(amb__sched *s, amb_proc *p, amb__msg *e);
/* Spawn: links child and parent before the child is published; undone by
 * amb__link_spawn_undo when the spawn fails later. AMB_ENOMEM. */
int amb__link_spawn(amb_proc *parent, amb_proc *child);
void amb__link_spawn_undo(amb_proc *parent, amb_proc *child);
/* Active links of p (process_info). */
static inline size_t amb__link_count(const amb_proc *p)
{
    return p->links_mons.nlinks;
}
/* The list of the pids p has active links to, on h (AMB_NONE when out of
 * memory). */
amb_term amb__link_list(const amb_proc *p, amb_heap *h);
/* The link end of p for pid (own or foreign), or NULL. */
amb__msg *amb__link_find(amb_proc *p, amb_pid pid);
/* A LINK, UNLINK or UNLINK_ACK cell from the foreign pid `from` (copied
 * into its heap) over conn, words[1] set to `to` / the id by the caller;
 * NULL on ENOMEM (remote.c). */
amb__msg *amb__link_cell(amb__sched *s, enum amb__msg_kind kind, amb_pid from,
                         uint32_t conn);
/* NODEDOWN: every active link of p made over conn to node becomes an exit signal
 * noconnection from its far end, acting at once (in its own cell); an
 * unlink under way just ends. May end p. */
void amb__link_nodedown(amb_proc *p, amb_term node, uint32_t conn);

/* ---------------------------------------------------------------------------
 * Monitors (monitor.c)
 * ------------------------------------------------------------------------ */
/* Handles a MONITOR, DEMONITOR or DOWN cell while p drains. Returns the
 * cell as an ordinary message (an active DOWN), or NULL (consumed). */
amb__msg *amb__monitor_signal(amb_proc *p, amb__msg *m);
/* A MONITOR that reached a dead process: it becomes a DOWN noproc to the
 * watcher. */
void amb__monitor_discard(amb_rt *rt, amb__sched *s, amb__msg *m);
/* Teardown: entry e, a monitor end of p, becomes p's DOWN to the watcher
 * (p was the target) or its DEMONITOR to the target (p held it). */
void amb__monitor_end(amb__sched *s, amb_proc *p, amb__msg *e);
/* Spawn: a monitor of child by parent before the child is published; *ref
 * gets the monitor's reference. Undone (the parent's end; the child's goes
 * with the child) by amb__monitor_spawn_undo with that reference (AMB_NONE:
 * nothing to undo). AMB_ENOMEM. */
int amb__monitor_spawn(amb_proc *parent, amb_proc *child, amb_term *ref);
void amb__monitor_spawn_undo(amb_proc *parent, amb_term ref);
/* amb_monitor_opt after its lookup: a monitor of pid (AMB_NONE: a name
 * nobody has), made through name (an atom, or AMB_NONE for a monitor of a
 * pid), with alias kind `alias`; q is pid's block as the lookup found it
 * (NULL: not alive), which the caller keeps valid (QSBR). Split out so that
 * a test can make a monitor reach a block that ended after its lookup. 0 or
 * AMB_ENOMEM (nothing made). */
int amb__monitor_make(amb_proc *self, amb_pid pid, amb_proc *q, amb_term name,
                      amb_monitor_alias alias, amb_term *ref);
/* Monitors p holds (process_info). */
static inline size_t amb__monitor_count(const amb_proc *p)
{
    return p->links_mons.nheld;
}
/* On h (AMB_NONE when out of memory): with held, the monitors p holds as
 * process_info(P, monitors) lists them ([{process, Pid | {Name, Node}}]);
 * else the pids that monitor p (monitored_by). */
amb_term amb__monitor_list(const amb_proc *p, amb_heap *h, bool held);
/* Removes the monitor p holds with monitor key `key`, if active, and tells
 * its target (a reply through the alias of a {alias, reply_demonitor}
 * monitor): needs no memory, the watcher's end is the DEMONITOR. */
void amb__monitor_drop(amb_proc *p, uint64_t key);
/* The key of a reference or alias this runtime's monitors made, 0 for any
 * other term. */
uint64_t amb__monitor_key(amb_rt *rt, amb_term ref);
/* A MONITOR cell from the foreign watcher with its reference ref (both
 * copied into the cell), of target (own; AMB_NONE for a name nobody has;
 * name the atom it was monitored by, or AMB_NONE), over conn: the
 * target's end of the monitor. NULL on ENOMEM (remote.c). */
amb__msg *amb__monitor_cell(amb__sched *s, amb_pid watcher, amb_pid target, amb_term name,
                            amb_term ref, uint32_t conn);
/* A DEMONITOR cell from the foreign watcher for its reference ref (copied
 * into the cell). NULL on ENOMEM (remote.c). */
amb__msg *amb__monitor_demonitor_cell(amb__sched *s, amb_pid watcher, amb_term ref);
/* A DOWN cell for the monitor p holds with monitor key `key`: term the
 * message (built by the caller in the cell's heap of `room` words). NULL
 * on ENOMEM (remote.c). */
amb__msg *amb__monitor_down_cell(amb__sched *s, uint64_t key, size_t room);
/* NODEDOWN: every monitor p holds made over conn to node becomes its DOWN
 * noconnection (in its own cell, at this place of the queue); the
 * monitors of p by watchers there end. */
void amb__monitor_nodedown(amb_proc *p, amb_term node, uint32_t conn);

/* ---------------------------------------------------------------------------
 * Exit signals (exit.c)
 * ------------------------------------------------------------------------ */
#define AMB__EXIT_LINKED 1u /* EXIT flag: sent because a linked process ended */

/* Handles an EXIT cell while p drains (DESIGN §4's table). Returns the
 * message a trapping process gets (the cell itself, turned into
 * {'EXIT', From, Reason}), or NULL (consumed, freed). May end p (never
 * returns then). */
amb__msg *amb__exit_signal(amb_proc *p, amb__msg *m);
/* What an exit signal m does once it acts (a link exit whose link was
 * active: its end already out of the index); as amb__exit_signal. */
amb__msg *amb__exit_act(amb_proc *p, amb__msg *m);
/* Makes m (AMB__LINK_WORDS reserved, its reason already in) the exit
 * signal from `from` with flags, delivers it to `to` (freed when `to` is
 * dead) and flags `to` so that a running target notices it at its next
 * runtime call. Never fails. `from` may be foreign (then m's heap holds
 * it); `to` is own. */
void amb__exit_post(amb_rt *rt, amb__sched *s, amb_pid from, amb_pid to, unsigned flags,
                    amb__msg *m);
/* Delivers signal cell m (an exit signal, a NODEDOWN) to the own pid `to`
 * (freed when `to` is dead) and flags `to` as amb__exit_post does. */
void amb__exit_deliver(amb_rt *rt, amb__sched *s, amb_pid to, amb__msg *m);
/* An exit signal from `from` (own) to the foreign pid `to` through the
 * dist layer: a link exit over conn (linked), or exit/2 (conn 0). */
void amb__exit_remote(amb_rt *rt, amb__sched *s, amb_pid from, amb_pid to,
                      amb_term reason, bool linked, uint32_t conn);
/* Turns an EXIT cell into the message {'EXIT', From, Reason} a trapping
 * process gets, in place (its reserved words hold the tuple). */
amb__msg *amb__exit_trapped(amb__msg *m);

#endif /* AMB_PROCESS_FAIL_H */

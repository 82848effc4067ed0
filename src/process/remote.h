/*
 * remote.h - the process layer's contract with the distribution layer
 * (src/dist, docs/design/layers.md): how a signal to another node leaves
 * this runtime, and how a signal from another node reaches a process here.
 * The process layer never includes src/dist; the dist layer installs an
 * ops table here when a node starts (amb__remote_install), and calls the
 * amb__remote_* functions below for what arrives.
 *
 * Words:
 *   - An own pid is a pid of this runtime. A foreign pid is any other:
 *     a box (a pid of another OS process), or an immediate of another
 *     runtime of this OS process (another local node, reached through
 *     distribution like any other). Remote references (aliases of another
 *     node) and {Name, Node} with another node's name are foreign too.
 *   - A connection number (conn) names one connection to one node,
 *     unique in the runtime and never 0: the dist layer hands one out
 *     with every relation it carries (a link, a monitor). A relation
 *     belongs to the connection it was made over, and ends with it.
 *
 * Out (process layer -> dist layer): every route of the public API that
 * meets a foreign destination (send, link, unlink, monitor, demonitor,
 * exit, alias send) calls one op; so do the failure paths of a process
 * that holds foreign relations (its end, a link or monitor reaching it
 * after it ended). Without a node (no ops installed) a foreign destination
 * is AMB_ENOTSUP, as before distribution existed.
 *
 * In (dist layer -> process layer): a connection process turns each
 * control message into a signal cell pushed into the local process's
 * mailbox with the functions below, so the signals of one remote process
 * reach a local one in the order they crossed the wire; the cells carry the
 * foreign pid in their heap and the connection in a reserved word, and a
 * LINK or MONITOR cell becomes the process's end of the relation as it is
 * (fail.h).
 *
 * A lost connection: the dist layer sends NODEDOWN (node, conn) to every
 * local process that had a relation over it (it remembers them: the
 * `link`/`monitor` ops and amb__remote_link/_monitor tell it who, and it
 * makes each one's NODEDOWN cell then, amb__remote_nodedown_new); the
 * process ends each of its relations of that connection exactly once, as
 * if the remote end had sent it: links with an exit signal noconnection,
 * monitors it holds with a DOWN noconnection, monitors of it silently.
 * Relations of a newer connection to the same node stay.
 *
 * Ordering: signals from one local process to one remote process leave in
 * the order the process made them (each op is called in program order, and
 * the dist layer queues per connection in call order); the teardown's ops
 * follow every op of the process's life.
 */
#ifndef AMB_PROCESS_REMOTE_H
#define AMB_PROCESS_REMOTE_H

#include "process/rt.h"

/*
 * The dist layer's ops. ctx is the pointer given to amb__remote_install.
 * `self` ops run in the process making the call; `s` ops run on a
 * scheduler thread, in a process draining its mailbox or in the teardown
 * of one that ended (then `from`/`target` is the ended process), or with
 * s NULL outside the runtime (amb_rt_send). No op may wait or suspend,
 * but send_wait, which amb_send calls in the sender's own code.
 * Terms are borrowed for the call (an op copies what it keeps).
 */
/* What ops->send returns for a message queued while its sender's queue
 * to that node is over its budget: amb_send then calls ops->send_wait;
 * every other route takes it as 0 (queued). */
#define AMB__REMOTE_OVER_BUDGET 1

typedef struct amb__remote_ops {
    /* A message from `from` (an own pid, or AMB_NONE from outside the
     * runtime) to a foreign pid, a foreign alias or {Name, Node} of
     * another node. 0 (queued, or dropped as Erlang drops a message to an
     * unreachable node), AMB_ENOMEM. */
    int (*send)(void *ctx, amb__sched *s, amb_pid from, amb_term to, amb_term msg);
    /* send said AMB__REMOTE_OVER_BUDGET to amb_send in self: self waits
     * here until its queue toward `to`'s node drains below the budget (or
     * the connection is gone). The only op that waits: it runs in self's
     * own code, never while a mailbox drains. 0. */
    int (*send_wait)(void *ctx, amb_proc *self, amb_term to);
    /* self links to the foreign pid `to`: LINK, and *conn the connection it
     * travels over. 0, AMB_ENOMEM. */
    int (*link)(void *ctx, amb_proc *self, amb_pid to, uint32_t *conn);
    /* self removes that link: UNLINK_ID with id, over conn. */
    void (*unlink)(void *ctx, amb_proc *self, amb_pid to, uint64_t id, uint32_t conn);
    /* The answer to an UNLINK_ID that `from` (own) received from `to`. */
    void (*unlink_ack)(void *ctx, amb__sched *s, amb_pid from, amb_pid to, uint64_t id,
                       uint32_t conn);
    /* An exit signal from `from` (own) to the foreign `to`: linked, the end
     * of a link made over conn (EXIT); else exit/2 (EXIT2, conn 0: the
     * node's connection now). */
    void (*exit)(void *ctx, amb__sched *s, amb_pid from, amb_pid to, amb_term reason,
                 bool linked, uint32_t conn);
    /* self monitors target, a foreign pid or a name (atom) on node, with
     * ref (self's reference or alias): MONITOR_P, and *conn. 0,
     * AMB_ENOMEM. */
    int (*monitor)(void *ctx, amb_proc *self, amb_term target, amb_term node,
                   amb_term ref, uint32_t *conn);
    /* `watcher` (own) drops its monitor ref of target (as for monitor):
     * DEMONITOR_P over conn. */
    void (*demonitor)(void *ctx, amb__sched *s, amb_pid watcher, amb_term target,
                      amb_term node, amb_term ref, uint32_t conn);
    /* The monitored process `from` ended (or was not there): target is its
     * own pid, or the name the watcher monitored; the foreign watcher gets
     * its DOWN (MONITOR_P_EXIT with ref and reason) over conn, after every
     * signal `from` sent it before (so the DOWN of a monitor by name knows
     * its sender too). */
    void (*down)(void *ctx, amb__sched *s, amb_pid from, amb_term target, amb_pid watcher,
                 amb_term ref, amb_term reason, uint32_t conn);
    /* amb_demonitor in self found no monitor ref in self's tables: a
     * monitor the dist layer holds for self instead (a spawn request's,
     * whose reference the request made) is removed, DEMONITOR_P sent when
     * the peer has it; true when there was one. May yield (self's own
     * code) while a DOWN of it is being delivered, so that a flush after it
     * finds that DOWN. NULL: there are none. */
    bool (*demonitor_held)(void *ctx, amb_proc *self, amb_term ref);
    /* A process that held foreign relations ended (after the ops its
     * teardown called): the dist layer forgets it. */
    void (*gone)(void *ctx, amb__sched *s, amb_pid pid);
    /* amb_rt_free, after every process is gone: free ctx. */
    void (*free)(void *ctx);
} amb__remote_ops;

/* What amb__remote_install stores (the dist layer's memory, valid until
 * ops->free). */
typedef struct amb__remote {
    const amb__remote_ops *ops;
    void *ctx;
} amb__remote;

/* Installs the dist layer: from now on foreign destinations go to
 * r->ops. Once per runtime (AMB_ESTATE the second time); r stays the
 * dist layer's until r->ops->free(r->ctx) at amb_rt_free. Any thread. */
int amb__remote_install(amb_rt *rt, const amb__remote *r);

/* The installed dist layer, or NULL. */
static inline const amb__remote *amb__remote_get(amb_rt *rt)
{
    /* acquire: pairs with the release of amb__remote_install, so the ops
     * table and its ctx are complete when seen. */
    return atomic_load_explicit(&rt->remote, memory_order_acquire);
}

/* Gives the runtime its distributed identity (net_kernel:start): its pids
 * and new references carry name and creation from now on; references made
 * before stay its own (amb__rt_is_own_node). Once (AMB_ESTATE). Any
 * thread. AMB_EEXIST when another local runtime has that identity. */
int amb__remote_set_node(amb_rt *rt, amb_term name, uint32_t creation);

/* ---- in: signals from another node, pushed by a connection process ------
 *
 * `self` is the connection process calling. A target that is not alive
 * is handled as for a local sender (a LINK answered with an exit noproc
 * through ops->exit, a MONITOR with a DOWN noproc through ops->down, the
 * rest dropped). 0, AMB_EBADARG (`to` not an own pid, `from` not foreign),
 * AMB_ENOMEM (nothing sent).
 */
/* LINK from the foreign `from` to `to`, over conn. */
int amb__remote_link(amb_proc *self, amb_pid from, amb_pid to, uint32_t conn);
/* UNLINK_ID id from `from` to `to`, over conn (`to` answers it). */
int amb__remote_unlink(amb_proc *self, amb_pid from, amb_pid to, uint64_t id,
                       uint32_t conn);
/* UNLINK_ID_ACK id from `from` to `to`. */
int amb__remote_unlink_ack(amb_proc *self, amb_pid from, amb_pid to, uint64_t id);
/* An exit signal from `from`: linked (EXIT: the end of a link) or not
 * (EXIT2: exit/2). */
int amb__remote_exit(amb_proc *self, amb_pid from, amb_pid to, amb_term reason,
                     bool linked);
/* MONITOR_P from the foreign watcher, with its reference ref, of `to`
 * (already resolved: the process registered under name now, when name is
 * an atom; else AMB_NONE), over conn. */
int amb__remote_monitor(amb_proc *self, amb_pid watcher, amb_pid to, amb_term name,
                        amb_term ref, uint32_t conn);
/* DEMONITOR_P of ref from the foreign watcher to `to`. */
int amb__remote_demonitor(amb_proc *self, amb_pid watcher, amb_pid to, amb_term ref);
/* MONITOR_P_EXIT for the monitor ref (a reference or alias of this node)
 * held by `to`: the DOWN {'DOWN', Ref, process, Object, Reason}, Object
 * being the pid, or {Name, Node} for a monitor of a name (the caller
 * builds it). Dropped when ref is not this runtime's. */
int amb__remote_down(amb_proc *self, amb_pid to, amb_term ref, amb_term object,
                     amb_term reason);
/* The connection conn to node is gone: `to` ends its relations of conn
 * (noconnection). Makes the NODEDOWN cell now (AMB_ENOMEM); the dist
 * layer makes it ahead instead, with the three below. */
int amb__remote_nodedown(amb_proc *self, amb_pid to, amb_term node, uint32_t conn);
/* A NODEDOWN cell made ahead, when a process first has a relation over a
 * connection, so that losing the connection needs no memory: NULL on
 * ENOMEM. Any thread (a single allocation, not a pool's). */
amb__msg *amb__remote_nodedown_new(void);
/* Sends cell m (from amb__remote_nodedown_new, now the callee's) as the
 * NODEDOWN of conn to node to the own pid `to` (freed when `to` is not
 * alive), from scheduler s (an op's, or the calling process's). Never
 * fails. */
void amb__remote_nodedown_send(amb_rt *rt, amb__sched *s, amb_pid to, amb_term node,
                               uint32_t conn, amb__msg *m);
/* Frees a cell from amb__remote_nodedown_new that is not sent (its
 * process ended first). Any thread. */
void amb__remote_nodedown_drop(amb__msg *m);

/* Sends a copy of msg to the own pid `to` from an op's context: s the op's
 * scheduler (NULL: outside the runtime, inside amb_rt_send's protection).
 * Dropped when `to` is not alive. 0, AMB_EBADARG (`to` not an own pid),
 * AMB_ENOMEM. The dist layer wakes its processes with it. */
int amb__remote_post(amb_rt *rt, amb__sched *s, amb_pid to, amb_term msg);

/* The scheduler running the calling process (for the `s` of the functions
 * that take one: a cell from its pools, a wake-up on it). */
static inline amb__sched *amb__remote_sched(amb_proc *self)
{
    return self->task.sched;
}

/* Ends the calling process with reason and no crash report: a dist-layer
 * process whose exit reason is its answer (a runner of erpc's
 * execute_call ends with {Ref, return, V}), as exit/1 of a plain BEAM
 * process logs nothing. Never returns. */
_Noreturn void amb__remote_exit_quiet(amb_proc *self, amb_term reason);

/* ---- the process layer's own use ----------------------------------------- */

/* Handles a NODEDOWN cell while p drains (remote.c); frees it. */
void amb__remote_nodedown_signal(amb_proc *p, amb__msg *m);

#endif /* AMB_PROCESS_REMOTE_H */

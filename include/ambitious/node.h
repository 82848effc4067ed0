/*
 * ambitious/node.h - distribution: a runtime becomes a node of an Erlang
 * cluster (net_kernel:start), talks Erlang's own distribution protocol to
 * other C nodes and to BEAM nodes, and its processes use remote pids,
 * references and {Name, Node} exactly like local ones (process.h: send,
 * link, unlink, monitor, demonitor, exit, aliases; gen_server.h: call,
 * cast, multi_call).
 *
 * Rules for the whole layer:
 *   - A runtime runs at most one node, started once (amb_node_start) and
 *     kept until amb_node_stop or the runtime's end. Starting it renames
 *     the runtime: every pid of it, made before or after, carries the
 *     node's name and creation from then on (references made before keep
 *     the old name and stay this runtime's). A stopped node does not start
 *     again in that runtime (AMB_ESTATE).
 *   - While a node runs, its processes (the net_kernel server, the
 *     listener, the EPMD registration, each connection) keep the runtime
 *     running: amb_rt_run returns after amb_node_stop (or amb_rt_stop,
 *     amb_rt_halt), as an Erlang node runs until it halts.
 *   - Connections are made on first use (a send, link or monitor to a node
 *     not connected yet), as Erlang's are; a message to a node that cannot
 *     be reached is dropped, a link or monitor across a connection that is
 *     lost or never came up ends with noconnection, exactly once.
 *   - Signals between two processes keep their order across the wire.
 *   - Names follow erl: "alive@host"; short names (-sname, the default)
 *     have a host without dots, long names (-name) a fully qualified one;
 *     a name without "@host" gets this machine's host name. Node names are
 *     atoms.
 *   - The cookie is the argument's, else the contents of $HOME/.erlang.cookie
 *     as erl reads it (made with 20 random letters and mode 0400 when
 *     missing; refused when it is not a regular file or others may read
 *     it). A peer with another cookie is refused and the refusal logged.
 *   - Port mapping: the system's epmd when one answers on the EPMD port
 *     ($ERL_EPMD_PORT, else 4369), otherwise an EPMD-compatible registry
 *     this node serves itself on that port, so a cluster of C nodes needs
 *     nothing installed (erl nodes use it too).
 *   - Calls take self (the calling process) first, as in process.h.
 *   - Times are int64_t ms (process.h "Times").
 */
#ifndef AMBITIOUS_NODE_H
#define AMBITIOUS_NODE_H

#include "process.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of amb_node_start: inputs only, zero is the default in every
 * field (api-conventions §5). */
typedef struct amb_node_opts {
    const char *cookie;      /* the cookie (copied); NULL: $HOME/.erlang.cookie */
    bool long_names;         /* -name: a fully qualified host; default -sname */
    bool visible;            /* a published node, in Erlang's nodes(); default
                                hidden (nodes(hidden)), as C nodes of libei are:
                                a visible node is sent global's and rex's traffic,
                                which it answers only in part */
    int64_t ticktime_ms;     /* net_ticktime: a peer silent this long is down,
                                and a tick goes out after a quarter of it without
                                traffic; default 60000, at least 1000 */
    int64_t setuptime_ms;    /* net_setuptime: a connection's set-up (EPMD,
                                TCP, handshake) gives up after it; default 7000 */
    uint16_t port;           /* the distribution listen port; 0: any */
    const char *listen_host; /* the listen address ("127.0.0.1", "::"); NULL:
                                every interface, as erl */
    uint16_t epmd_port;      /* 0: $ERL_EPMD_PORT, else 4369 */
    bool no_embedded_epmd;   /* when no epmd answers, fail (AMB_ECONNREFUSED)
                                instead of serving the registry here */
    size_t send_budget;      /* bytes one process may have queued to one node
                                before its amb_send to that node waits (only
                                that process: the others go on); 0:
                                AMB_NODE_SEND_BUDGET */
} amb_node_opts;

/* The default send budget: BEAM's dist_buf_busy_limit (+zdbbl), but per
 * sending process instead of per connection. */
#define AMB_NODE_SEND_BUDGET ((size_t)1 << 20)

/*
 * Starts distribution: this runtime becomes node `name` ("alive@host", or
 * "alive" for this machine's host name), registered with EPMD (the node's
 * creation comes from it), listening for other nodes, its net_kernel
 * answering Erlang's net_adm:ping. opts may be NULL (all defaults; copied).
 * Inside a process; it waits for the listen socket and EPMD (a few socket
 * round trips). Errors (nothing started):
 *   AMB_EBADARG    a name erl refuses (alive part not [0-9A-Za-z_-]+, a
 *                  short name with a dotted host, an empty part), a bad
 *                  option, NULL self
 *   AMB_ESTATE     a node runs here already, or ran here before
 *   AMB_EEXIST     EPMD has that alive name registered already
 *   AMB_EACCES     the cookie file may be read by others, or is no regular
 *                  file, or cannot be read or made
 *   AMB_EFORMAT    the cookie file is empty or holds bad characters
 *   AMB_ECONNREFUSED  no epmd answers and no_embedded_epmd was asked
 *   AMB_EADDRINUSE the listen port is taken
 *   AMB_ENOHOST    no host name (a name without a host on a machine
 *                  without one, or a long name with no domain)
 *   AMB_ENOMEM, and the socket errors of socket.h
 */
AMB_API int amb_node_start(amb_proc *self, const char *name, const amb_node_opts *opts);

/* Stops distribution: every connection is closed (each link and monitor
 * across them ends with noconnection), the node leaves EPMD, its processes
 * end. What an up connection had queued is sent first (for at most the
 * set-up time); what waits on a connection still being set up is dropped,
 * as erl drops it. The runtime keeps its node name (pids stay what they were). 0,
 * AMB_ESTATE (no node runs), AMB_EBADARG. Inside a process; it waits until
 * the node's processes have ended. */
AMB_API int amb_node_stop(amb_proc *self);

/* This node's name (erlang:node/0): the atom, nonode@nohost when no node
 * ever ran here. AMB_NONE for NULL. */
AMB_API amb_term amb_node(amb_proc *self);

/* True while a node runs here (erlang:is_alive/0). */
AMB_API bool amb_is_alive(amb_proc *self);

/* Which nodes amb_nodes lists (erlang:nodes/1). */
#define AMB_NODES_VISIBLE   (1u << 0) /* connected visible nodes: nodes() */
#define AMB_NODES_HIDDEN    (1u << 1) /* connected hidden nodes */
#define AMB_NODES_THIS      (1u << 2) /* this node */
#define AMB_NODES_CONNECTED (AMB_NODES_VISIBLE | AMB_NODES_HIDDEN)

/* The list of node atoms of the kinds in `which` (0 is AMB_NODES_VISIBLE,
 * as nodes/0) into *out, on the caller's heap (owned by it). 0,
 * AMB_EBADARG (unknown bits, NULL out), AMB_ENOMEM. */
AMB_API int amb_nodes(amb_proc *self, unsigned which, amb_term *out);

/* erlang:monitor_node/2: with flag true, the caller gets {nodedown, Node}
 * when the connection to node is lost (at once when it cannot be made; it
 * is made if need be); each true call asks for one more message, and each
 * false call removes one. 0, AMB_EBADARG (node not an atom), AMB_ENOTSUP
 * (no node runs here), AMB_ENOMEM. A monitor of this node itself never
 * fires. */
AMB_API int amb_monitor_node(amb_proc *self, amb_term node, bool flag);

/* Flags of amb_monitor_nodes (net_kernel:monitor_nodes/2 options). */
#define AMB_MONITOR_NODES_ALL (1u << 0) /* {node_type, all}: hidden nodes too */
#define AMB_MONITOR_NODES_INFO                     \
    (1u << 1) /* nodedown_reason and node_type:    \
                 {nodeup, Node, [{node_type, T}]}, \
                 {nodedown, Node, [{node_type, T}, \
                 {nodedown_reason, R}]} */

/* net_kernel:monitor_nodes/2: with flag true the caller gets {nodeup, Node}
 * and {nodedown, Node} (the INFO forms with AMB_MONITOR_NODES_INFO) for
 * every connection to a visible node (every node with
 * AMB_MONITOR_NODES_ALL) that comes up or goes down from now on; false
 * removes a subscription made with the same flags. Reasons: connection_closed,
 * net_tick_timeout, disconnect, connection_setup_failed, and the others
 * OTP gives. 0, AMB_EBADARG, AMB_ENOTSUP (no node runs), AMB_ENOMEM. */
AMB_API int amb_monitor_nodes(amb_proc *self, bool flag, unsigned flags);

/* erlang:disconnect_node/1: closes the connection to node (its links and
 * monitors end with noconnection, monitor_node subscribers get nodedown;
 * the node is connected again on next use). 0 when it was connected,
 * AMB_ENOTCONN when it was not, AMB_EBADARG, AMB_ENOTSUP (no node runs). */
AMB_API int amb_disconnect_node(amb_proc *self, amb_term node);

/* net_adm:ping/1: connects to node and asks its net_kernel whether this
 * node is welcome (is_auth). 0 for pong; AMB_ENOTCONN for pang (cannot
 * connect, refused, no answer within the set-up time); AMB_EBADARG,
 * AMB_ENOTSUP (no node runs). Waits. */
AMB_API int amb_node_ping(amb_proc *self, amb_term node);

/* net_kernel:get_net_ticktime/0 in milliseconds; 0 when no node runs. */
AMB_API int64_t amb_node_ticktime(amb_proc *self);

#ifdef __cplusplus
}
#endif
#endif /* AMBITIOUS_NODE_H */

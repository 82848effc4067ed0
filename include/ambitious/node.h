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
 *   - TLS (opts.tls_certfile): the node speaks erl's inet_tls_dist
 *     (erl -proto_dist inet_tls): TLS (1.2 or later) from a connection's
 *     first byte, the handshake and frames inside it; EPMD as for TCP.
 *     Every peer must be TLS too (a plain node is refused, both ways).
 *     Verification is always on, both ways: a peer's certificate must chain
 *     to tls_cacertfile; connecting, the certificate must also name the
 *     host part of the peer's node name (a DNS or IP subjectAltName), as
 *     erl's ssl client checks it with verify_peer; accepting, a client
 *     certificate is required but its names are not checked (erl's server
 *     side with verify_peer and fail_if_no_peer_cert). A refused peer is
 *     logged; the node goes on.
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
    /* TLS distribution, as erl's -proto_dist inet_tls with these keys of
     * its -ssl_dist_optfile (files read at start; see "TLS" above): */
    const char *tls_certfile;   /* PEM: this node's certificate chain, leaf
                                   first; set, every connection is TLS; NULL:
                                   plain TCP (the other two must be NULL) */
    const char *tls_keyfile;    /* PEM: its unencrypted key; NULL: in certfile */
    const char *tls_cacertfile; /* PEM: the CAs a peer's certificate must chain
                                   to; NULL: the system's */
    size_t send_budget;         /* bytes one process may have queued to one node
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
 *   AMB_ENOTFOUND, AMB_EACCES  a TLS file is missing or cannot be read
 *   AMB_EBADARG    also: a TLS file that is not PEM, a key that is not the
 *                  certificate's, tls_keyfile or tls_cacertfile without
 *                  tls_certfile
 *   AMB_ENOMEM, and the socket errors of socket.h (AMB_ETLS)
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

/* ---------------------------------------------------------------------------
 * rpc and remote spawn (docs/distribution.md "Calling functions on other
 * nodes"). Erlang calls a function by module and name; a C node has no
 * modules, so it registers C functions under a module and a function name,
 * and those are what other nodes call (rpc:call, erpc:call, spawn/4,
 * spawn_link/4, spawn_monitor/4, spawn_request/5 from erl; the calls below
 * from C). A registered function takes any number of arguments: it gets
 * them as one list.
 * ------------------------------------------------------------------------ */

/* How a registered function ended, as erpc tells the four apart: returned
 * a value, or raised one of Erlang's three exception classes. */
typedef enum amb_rpc_class {
    AMB_RPC_RETURN = 0, /* returned *value */
    AMB_RPC_THROW,      /* throw(*value) */
    AMB_RPC_EXIT,       /* exit(*value) */
    AMB_RPC_ERROR,      /* error(*value) */
} amb_rpc_class;

/* A function other nodes may call. It runs in a process of its own
 * (spawned for the call, as erpc's execute_call runs in one), so it may
 * receive, call servers and wait; ctx is the pointer given at
 * registration; args is the list of arguments, borrowed until it returns.
 * It stores its value (or the exception's reason) in *value, on the
 * process's heap (amb_proc_heap(self)), and says which it is. A process
 * that ends instead (amb_exit_self, an exit signal) is an exit by signal
 * to the caller, as on BEAM. */
typedef amb_rpc_class amb_rpc_fn(amb_proc *self, void *ctx, amb_term args,
                                 amb_term *value);

/* Registers fn (with ctx, both borrowed until amb_rpc_unregister or the
 * node's end) as module:function on this node, replacing an earlier one of
 * that name. From then on, an rpc:call(ThisNode, module, function, Args)
 * or erpc:call, and a spawn of module:function, from any node, runs it.
 * An unregistered name raises undef on the caller, as BEAM does for a
 * function that does not exist. 0, AMB_EBADARG (NULL or empty names, NULL
 * fn), AMB_ENOTSUP (no node runs here), AMB_ENOMEM. */
AMB_API int amb_rpc_register(amb_proc *self, const char *module, const char *function,
                             amb_rpc_fn *fn, void *ctx);
/* Removes module:function: 0, AMB_ENOTFOUND (not registered), AMB_EBADARG,
 * AMB_ENOTSUP. Calls already running go on. */
AMB_API int amb_rpc_unregister(amb_proc *self, const char *module, const char *function);

/* Which message answers a spawn request (spawn_request/5's {reply, _}). */
typedef enum amb_spawn_reply {
    AMB_SPAWN_REPLY_YES = 0,      /* the reply, success or error (default) */
    AMB_SPAWN_REPLY_ERROR_ONLY,   /* only an error */
    AMB_SPAWN_REPLY_SUCCESS_ONLY, /* only a success */
    AMB_SPAWN_REPLY_NO,           /* none */
} amb_spawn_reply;

/* Options of amb_spawn_request (inputs only; zero is the default). */
typedef struct amb_spawn_request_opts {
    bool link;             /* link the caller and the new process */
    bool monitor;          /* the caller gets {'DOWN', ReqId, process, Pid,
                              Reason} when the new process ends */
    amb_term reply_tag;    /* the reply's first element; AMB_NONE: spawn_reply */
    amb_spawn_reply reply; /* which replies come */
} amb_spawn_request_opts;

/* erlang:spawn_request(Node, Module, Function, Args, Options): asks node
 * (an atom: a BEAM node, a C node that registered module:function, or this
 * node, where the process starts at once) to
 * start a process running module:function(Args...) (args a proper list,
 * copied), and returns at once with the request's reference in *req_id (on
 * the caller's heap). The answer comes as a message: {Tag, ReqId, ok, Pid}
 * or {Tag, ReqId, error, Reason} (Tag spawn_reply unless opts->reply_tag),
 * with Reason noconnection (the node cannot be reached or went down first),
 * notsup (it does not run remote spawn), badopt, system_limit, as OTP
 * gives. With link, the caller is linked to Pid from the reply on (an exit
 * signal noconnection when the connection goes); with monitor, the DOWN
 * (noconnection when the connection goes) follows the reply; amb_demonitor
 * with *req_id removes it, before or after the reply, as
 * erlang:demonitor(ReqId) does. opts may be NULL.
 * 0, AMB_EBADARG (node not an atom, a bad name, args not a proper list, a
 * bad reply mode, NULL req_id), AMB_ENOTSUP (no node runs here),
 * AMB_ENOMEM. */
AMB_API int amb_spawn_request(amb_proc *self, amb_term node, const char *module,
                              const char *function, amb_term args,
                              const amb_spawn_request_opts *opts, amb_term *req_id);

/* erpc:call(Node, Module, Function, Args, Timeout): runs module:function
 * with args (a proper list, copied) on node (a BEAM node, a C node, or
 * this one, run here) and waits at most
 * timeout_ms (AMB_INFINITY: no limit). Results, all on the caller's heap:
 *   0            *result is the function's value
 *   AMB_EEXIT    the function raised: *result is {Class, Reason} as erpc
 *                raises it: {throw, Value}, {exit, {exception, Reason}},
 *                {exit, {signal, Reason}} (its process was killed),
 *                {error, {exception, Reason, Stack}} (undef for a function
 *                that is not there)
 *   AMB_ETIMEDOUT  no answer in time; *result {error, {erpc, timeout}}.
 *                The call is abandoned: an answer after that never reaches
 *                the caller's mailbox
 *   AMB_ENOTCONN the node cannot be reached or went down; *result {error,
 *                {erpc, noconnection}}
 *   AMB_ENOTSUP  the node does not run remote spawn; *result {error,
 *                {erpc, notsup}}
 *   AMB_ESYSLIMIT  the node could not make the process; *result {error,
 *                {erpc, system_limit}}
 *   AMB_EBADARG  bad arguments (nothing sent; *result untouched)
 *   AMB_ENOTSUP  also when no node runs here (*result untouched),
 *   AMB_ENOMEM.
 * result may be NULL. Inside a process; waits. */
AMB_API int amb_erpc_call(amb_proc *self, amb_term node, const char *module,
                          const char *function, amb_term args, int64_t timeout_ms,
                          amb_term *result);

#ifdef __cplusplus
}
#endif
#endif /* AMBITIOUS_NODE_H */

/*
 * dist.h - what the files of the node layer share (docs/design/distribution.md
 * "The node"): the node of a runtime (dist.c), its connections (conn.c), the
 * net_kernel server (net_kernel.c), the cookie (cookie.c), node names
 * (nodename.c), and the transport that carries a connection's bytes.
 *
 * The picture, for one runtime:
 *
 *   processes --ops (remote.h)--> amb__dist (the node: a lock, the table of
 *       ^                             connections by node name, options)
 *       |                                  |
 *       |  amb__remote_* signals           | per peer: amb__conn
 *       |                                  v
 *   reader (handler, owns the socket) <--bytes-- peer      writer --bytes--> peer
 *     handshake, frames, control               (drains the conn's out queue)
 *     messages -> local signals, ticks
 *
 *   net_kernel (gen_server, registered): is_auth, starts connections asked
 *   for by the ops, links to every reader and cleans up after one that ended.
 *
 * Invariants:
 *   - The node's lock guards the table, every amb__conn's state, its queues
 *     and sets, the subscriber lists, the rpc registry and the spawn
 *     requests in flight. It is never held across a call
 *     that waits, nor across a call into the process layer that can come
 *     back into an op (amb__remote_* functions, sends): those run after
 *     unlock, on what was taken under it.
 *   - A connection is in the table from its creation (PENDING) until it goes
 *     DOWN, which happens once (amb__conn_down), under the lock: the table
 *     maps a node to at most one live connection, and an op that finds none
 *     makes a new one. So a relation registered with a connection (its
 *     `interested` set) either is in the snapshot its DOWN takes, or was made
 *     over a newer connection.
 *   - Signals a local process sends to one node are queued in the order it
 *     made them: under the lock, into the pending list while PENDING, into
 *     that process's own queue on the connection once UP (every signal of a
 *     process, message, link, exit, monitor or DOWN, goes to its queue: a
 *     DOWN by name too, by the pid the DOWN op names); the writer sends the
 *     pending list before the first queued signal, and each queue in order,
 *     so a later signal never passes an earlier one. Queues of different
 *     processes interleave (round robin, a chunk of each in turn: whole
 *     frames, or one fragment of a large message).
 *   - Memory of a connection: freed when it is DOWN and its reader and
 *     writer have both let go (a reference count under the lock).
 */
#ifndef AMB_DIST_DIST_H
#define AMB_DIST_DIST_H

#include <pthread.h>
#include <stdatomic.h>

#include "ambitious/gen_server.h"
#include "ambitious/logger.h"
#include "ambitious/node.h"
#include "ambitious/socket.h"
#include "control.h"
#include "dist_flags.h"
#include "frame.h"
#include "handshake.h"
#include "process/remote.h"

/* ---------------------------------------------------------------------------
 * The transport: how a connection's bytes travel. The node uses TCP through
 * socket.h (tcp_transport.c), or TLS over it (tls_transport.c: erl's
 * inet_tls); tests of the node's protocol logic may carry the bytes
 * between two runtimes of one OS process instead. A socket is a term (a
 * port for TCP). Its owner, the reader, gets what arrives as messages:
 * {tcp, Sock, Data} (Data a binary), {tcp_closed, Sock}, {tcp_error, Sock,
 * Reason}, {tcp_passive, Sock}, or the same with ssl tags (socket.h's TLS
 * sockets).
 * ------------------------------------------------------------------------ */
struct amb__dist;

typedef struct amb__dist_transport {
    /* Starts the node's transport: listens, registers `alive` with EPMD (or
     * what stands for it), *creation gets the node's creation. Runs in
     * amb_node_start's caller. Whatever it starts lives in processes linked
     * to net_kernel, whose pid it gets. 0 or an error of amb_node_start. */
    int (*start)(struct amb__dist *d, amb_proc *self, amb_pid net_kernel,
                 uint32_t *creation);
    /* Connects to node (an atom) within timeout_ms; the calling process (a
     * reader) becomes the socket's owner, in active mode. *sock on
     * success. */
    int (*connect)(struct amb__dist *d, amb_proc *self, amb_term node, int64_t timeout_ms,
                   amb_term *sock);
    /* Makes the calling process the owner of an accepted socket handed to
     * it, in active mode (and again, to re-arm, after a passive message). */
    int (*adopt)(struct amb__dist *d, amb_proc *self, amb_term sock);
    /* Sends all of data[0..len) on sock (any process; waits only itself). */
    int (*send)(struct amb__dist *d, amb_proc *self, amb_term sock, const uint8_t *data,
                size_t len);
    /* Closes sock (its owner). */
    void (*close)(struct amb__dist *d, amb_proc *self, amb_term sock);
    /* The node stops: unregisters from EPMD, stops listening. */
    void (*stop)(struct amb__dist *d, amb_proc *self);
    /* May be NULL (then a new acceptor reader takes the socket): what the
     * listener (amb__tcp_transport_start's) does with a socket it accepted
     * and owns; it must give the socket away or close it, and not wait
     * long (the next connection waits for it). */
    void (*accepted)(struct amb__dist *d, amb_proc *self, amb_term sock);
    /* May be NULL: frees the node's tctx when the node is freed (any
     * thread; the node's processes have all ended). */
    void (*free)(void *tctx);
    /* Bytes of each handshake packet's length: 0 or 2 (inet_tcp), 4
     * (inet_tls: the socket is {packet, 4} from the first byte). */
    unsigned hs_len_size;
} amb__dist_transport;

/* ---------------------------------------------------------------------------
 * Connections (conn.c)
 * ------------------------------------------------------------------------ */
typedef enum amb__conn_state {
    AMB__CONN_PENDING, /* set-up under way: signals wait in the pending list */
    AMB__CONN_UP,      /* handshake done: signals go out through the writer
                          (into the pending list until it sent that) */
    AMB__CONN_DOWN,    /* gone (not in the table any more) */
} amb__conn_state;

/* A pid set: open addressing over pid words (own pids: immediates). Each
 * pid has the NODEDOWN cell it gets if the connection goes down, made when
 * the pid joins (remote.h, amb__remote_nodedown_new), so that ending a
 * connection needs no memory. */
typedef struct amb__pidset {
    amb_pid *v;
    amb__msg **cells; /* cells[i]: v[i]'s NODEDOWN */
    size_t cap, len;  /* cap 0 or a power of two */
} amb__pidset;

/* One chunk of bytes waiting for the writer: whole frames (several small
 * ones, or one frame, or one fragment of a large message). */
typedef struct amb__conn_chunk {
    struct amb__conn_chunk *next;
    size_t len, cap;
    uint8_t data[];
} amb__conn_chunk;

/* The send queue of one local sender on one connection (conn.c): its
 * frames in the order it made them; in the connection's ring while it has
 * any, so the writer serves senders round robin, a chunk at a time. */
typedef struct amb__conn_sender {
    amb_pid pid; /* the sender (net_kernel's for signals of no process) */
    amb__conn_chunk *head, *tail;
    size_t bytes;                  /* queued */
    struct amb__conn_sender *ring; /* next in the ring */
    bool in_ring;
    bool waiting; /* suspended in amb_send until bytes < the budget */
} amb__conn_sender;

/* One signal queued before the connection was up: the control message with
 * its terms on the item's own heap. */
typedef struct amb__conn_item {
    struct amb__conn_item *next;
    amb_pid sender; /* whose queue it would have gone to (fragment ids) */
    amb_heap *heap;
    amb__dist_ctl ctl;
} amb__conn_item;

typedef struct amb__conn {
    struct amb__dist *d;
    amb_term node; /* the peer's name */
    uint32_t id;   /* the connection's number (remote.h), never 0 */
    amb__conn_state state;
    int refs;       /* the table's, the reader's, the writer's */
    bool hidden;    /* the peer is hidden (no PUBLISHED flag) */
    bool initiated; /* we connected (else: accepted) */
    uint64_t flags; /* negotiated (UP) */
    uint32_t peer_creation;
    amb_pid reader; /* the owner of the socket, or AMB_NONE */
    amb_pid writer; /* AMB_NONE until the reader made it */
    amb_term sock;  /* the socket (UP), a copy on sock_heap (over sock_words)
                       that the writer may use after its reader ended */
    uint64_t sock_words[8];
    amb_heap sock_heap;
    /* Signals before UP, oldest first. */
    amb__conn_item *pending, *pending_tail;
    /* Bytes for the writer: one queue per local sender (a table by pid,
     * open addressing), those with bytes in a ring served round robin;
     * out_bytes their sum; writer_idle: the writer waits for a wake. */
    amb__conn_sender **senders;
    size_t senders_cap, senders_len;
    amb__conn_sender *ring, *ring_tail;
    size_t out_bytes;
    bool writer_idle;
    bool flushed; /* UP, and the writer has sent the pending list */
    /* The writer's reference (conn.c, writer_init): claimed by the writer
     * when it runs, or abandoned (taken back) by the reader that ended
     * before it ran. */
    bool writer_claimed, writer_abandoned;
    /* Local processes that had a relation over this connection (NODEDOWN
     * goes to each), and monitor_node subscribers (one {nodedown, Node}
     * per entry: a pid repeats for each call). */
    amb__pidset interested;
    amb_pid *node_mons;
    size_t n_node_mons, cap_node_mons;
    /* Clocks (ms, amb_now_ms): the last byte received (the reader's own)
     * and sent (the writer's; relaxed: a tick decision tolerates a stale
     * value by a tick interval). */
    int64_t last_recv;
    _Atomic int64_t last_send;
    amb_term down_reason; /* an atom: why it went down */
    /* The most fragment sequences from the peer unfinished at once (the
     * reader's; written under the lock when it grows). */
    size_t peak_sequences;
    /* Messages from the peer whose header listed atom-cache references
     * (the reader's count; relaxed: a statistic, ordering nothing). */
    _Atomic size_t cached_messages;
} amb__conn;

/* The connection to node, or a new PENDING one when create is true and
 * there is none (asking net_kernel to set it up); NULL when none (or the
 * node stops). Under the node's lock (the caller holds it). */
amb__conn *amb__conn_get(struct amb__dist *d, amb_term node, bool create);
/* Queues control message c (terms borrowed) on the connection to node,
 * making it on first use; with interest, registers pid as having a
 * relation over it and gives its number in *conn. The message is dropped
 * when the node is down or stops (0). AMB_ENOMEM. Any context (no
 * process needed): s may be NULL. */
int amb__conn_queue(struct amb__dist *d, amb__sched *s, amb_term node,
                    const amb__dist_ctl *c, amb_pid interest, uint32_t *conn);
/* The node's connection conn is `node`'s current one: queue c on it (a
 * signal of a relation made over conn: dropped when that connection is
 * gone). */
void amb__conn_queue_on(struct amb__dist *d, amb__sched *s, amb_term node, uint32_t conn,
                        const amb__dist_ctl *c);
/* As amb__conn_queue_on, in the queue of `sender` (for a signal whose
 * control message does not name its sending process: a DOWN by name). */
void amb__conn_queue_as(struct amb__dist *d, amb__sched *s, amb_term node, uint32_t conn,
                        const amb__dist_ctl *c, amb_pid sender);
/* A message (c: SEND, SEND_SENDER, REG_SEND, ALIAS_SEND) as amb__conn_queue
 * queues it; AMB__REMOTE_OVER_BUDGET when its sender's queue is over the
 * node's send budget after it (queued all the same: the sender then waits
 * in amb__conn_send_wait). 0, AMB_ENOMEM. */
int amb__conn_send(struct amb__dist *d, amb__sched *s, amb_term node,
                   const amb__dist_ctl *c);
/* self waits until its queue to node is below the send budget, or the
 * connection is gone (a selective receive of the writer's resume
 * message). 0. */
int amb__conn_send_wait(struct amb__dist *d, amb_proc *self, amb_term node);

/* What the queues of the connection to a node hold (tests, the observer). */
typedef struct amb__conn_stats {
    size_t out_bytes;       /* queued, every sender */
    size_t senders;         /* senders with bytes queued or waiting */
    size_t waiting;         /* senders suspended over the budget */
    size_t peak_sequences;  /* most fragmented messages received interleaved */
    size_t cached_messages; /* messages received with atom-cache references */
} amb__conn_stats;
/* The stats of node's connection, and (pid not AMB_NONE) *pid_bytes the
 * bytes pid has queued on it. AMB_ENOTFOUND (no connection). */
int amb__conn_stats_of(struct amb__dist *d, amb_term node, amb_pid pid,
                       amb__conn_stats *out, size_t *pid_bytes);
/* Takes c down for reason (once; later calls do nothing): out of the table,
 * NODEDOWN to every interested process, {nodedown, Node} to monitor_node
 * subscribers, nodedown to monitor_nodes subscribers, the queues freed. In
 * a process (self), without the lock. */
void amb__conn_down(amb_proc *self, amb__conn *c, amb_term reason);
/* Waits (at most timeout_ms) until c's writer has sent everything queued
 * before the call: a node that stops says its last words first. */
void amb__conn_flush(amb_proc *self, amb__conn *c, int64_t timeout_ms);
/* net_kernel: the reader `reader` ended; its connection (if it still owns
 * one) goes down with reason. */
void amb__conn_reap(amb_proc *self, struct amb__dist *d, amb_pid reader, amb_term reason);
/* Drops one reference (under the lock); frees c at the last. */
void amb__conn_unref(amb__conn *c);
/* Removes pid from every connection's interested set (the `gone` op). */
void amb__conn_forget(struct amb__dist *d, amb_pid pid);

/* The reader of a connection: a handler process. Initiator: connects to
 * node; acceptor: takes over sock. Spawned by net_kernel, linked to it. */
int amb__conn_start_reader(amb_proc *self, struct amb__dist *d, amb_term node,
                           amb_term sock, amb_pid *out);

/* Pid sets. Add: 0 (also when pid is in), AMB_ENOMEM (the set or the
 * cell). Del: whether pid was in; its cell is freed. Free: the cells left
 * are freed. */
int amb__pidset_add(amb__pidset *s, amb_pid pid);
bool amb__pidset_del(amb__pidset *s, amb_pid pid);
void amb__pidset_free(amb__pidset *s);

/* ---------------------------------------------------------------------------
 * The node (dist.c)
 * ------------------------------------------------------------------------ */
typedef struct amb__dist_sub {
    amb_pid pid;
    unsigned flags; /* AMB_MONITOR_NODES_* */
} amb__dist_sub;

typedef enum amb__dist_state {
    AMB__DIST_STARTING,
    AMB__DIST_RUNNING,
    AMB__DIST_STOPPING,
    AMB__DIST_STOPPED,
} amb__dist_state;

typedef struct amb__dist {
    amb__remote remote; /* first: installed in the runtime (remote.h) */
    amb_rt *rt;
    pthread_mutex_t lock;
    amb__dist_state state;
    /* Who we are. */
    amb_term name; /* alive@host */
    char name_text[AMB__NODE_NAME_MAX + 1];
    char alive[AMB__NODE_NAME_MAX + 1]; /* the part before '@' */
    char host[AMB__NODE_NAME_MAX + 1];  /* the part after it */
    uint32_t creation;
    uint8_t cookie[AMB__HS_COOKIE_MAX];
    size_t cookie_len;
    bool long_names, visible;
    int64_t ticktime_ms, setuptime_ms;
    size_t send_budget; /* bytes a sender may queue on a connection before
                           its amb_send waits (amb_node_opts) */
    uint64_t flags;     /* offered in handshakes */
    /* Transport and its options. */
    const amb__dist_transport *transport;
    void *tctx;
    uint16_t port, epmd_port;
    bool no_embedded_epmd;
    char listen_host[64];
    /* Processes. */
    amb_pid net_kernel;
    /* Connections by node (open addressing over node atoms). */
    amb__conn **conns;
    size_t conns_cap, conns_len;
    uint32_t next_conn;
    /* The embedded EPMD registry, when this node serves one
     * (epmd_server.c); freed with the node. */
    struct amb__epmd_server *epmd;
    /* net_kernel:monitor_nodes subscribers. */
    amb__dist_sub *subs;
    size_t n_subs, cap_subs;
    /* rpc (rpc.c: the registry, rex) and our spawn requests in flight
     * (spawn.c), both under the lock. */
    struct amb__rpc *rpc;
    struct amb__spawn_req *spawns;
} amb__dist;

/* The node of the runtime self lives in, or NULL (none started). */
amb__dist *amb__dist_of(amb_rt *rt);
/* Starts the node of self's runtime with transport t (amb_node_start's
 * body; tests give their own transport). */
int amb__dist_start(amb_proc *self, const char *name, const amb_node_opts *opts,
                    const amb__dist_transport *t, void *tctx);
/* The node of the pid, reference or {Name, Node} term t, or AMB_NONE. */
amb_term amb__dist_node_of(amb_term t);
/* Sends {nodeup, ...} / {nodedown, ...} to the monitor_nodes subscribers
 * (after unlock: the subscribers are copied under it). */
void amb__dist_notify(amb_proc *self, amb__dist *d, amb_term node, bool up, bool hidden,
                      amb_term reason);

/* ---------------------------------------------------------------------------
 * TCP, TLS and EPMD (tcp_transport.c, tls_transport.c, epmd_client.c,
 * epmd_server.c)
 * ------------------------------------------------------------------------ */
/* The transport of amb_node_start: TCP through socket.h, EPMD (the system's
 * or the embedded one) for names. */
extern const amb__dist_transport amb__tcp_transport;
/* The parts of it the TLS transport shares. start: listens (each accepted
 * socket going to the transport's `accepted`) and registers with EPMD.
 * dial: EPMD's port of node, then amb_tcp_connect with o (the caller's TLS
 * context in it; nodelay is set here), then active mode. */
int amb__tcp_transport_start(amb__dist *d, amb_proc *self, amb_pid nk,
                             uint32_t *creation);
int amb__tcp_transport_dial(amb__dist *d, amb_proc *self, amb_term node,
                            int64_t timeout_ms, amb_sock_opts *o, amb_term *sock);
int amb__tcp_transport_adopt(amb__dist *d, amb_proc *self, amb_term sock);
int amb__tcp_transport_send(amb__dist *d, amb_proc *self, amb_term sock,
                            const uint8_t *data, size_t len);
void amb__tcp_transport_close(amb__dist *d, amb_proc *self, amb_term sock);
void amb__tcp_transport_stop(amb__dist *d, amb_proc *self);
/* Starts a node whose connections are TLS (opts->tls_certfile set): builds
 * the node's client and server contexts, then amb__dist_start with the TLS
 * transport. amb_node_start's errors, and amb_tls_ctx_new's for the files. */
int amb__tls_transport_node_start(amb_proc *self, const char *name,
                                  const amb_node_opts *opts);

/* Registers `alive` (listening on port; hidden or not) with the EPMD on
 * 127.0.0.1:epmd_port: *conn gets the registration's connection (owned by
 * the caller; closing it unregisters), *creation the node's creation.
 * AMB_EEXIST (the name is taken), AMB_ECONNREFUSED (no EPMD), the socket
 * errors, AMB_ETIMEDOUT. */
int amb__epmd_client_register(amb_proc *self, uint16_t epmd_port, const char *alive,
                              uint16_t port, bool hidden, int64_t timeout_ms,
                              amb_term *conn, uint32_t *creation);
/* The distribution port of `alive` on host's EPMD. AMB_ENOTFOUND (not
 * registered), the socket errors, AMB_ETIMEDOUT. */
int amb__epmd_client_port(amb_proc *self, const char *host, uint16_t epmd_port,
                          const char *alive, int64_t timeout_ms, uint16_t *port);
/* Serves the EPMD registry on port from this node (a listening process
 * linked to net_kernel). AMB_EADDRINUSE when something else listens there. */
int amb__epmd_server_start(amb_proc *self, struct amb__dist *d, uint16_t port);
/* Frees the registry (with the node). */
void amb__epmd_server_free(struct amb__epmd_server *srv);

/* ---------------------------------------------------------------------------
 * net_kernel (net_kernel.c)
 * ------------------------------------------------------------------------ */
/* Starts the node's net_kernel server, registered as net_kernel, trapping
 * exits. */
int amb__net_kernel_start(amb_proc *self, amb__dist *d, amb_pid *out);

/* ---------------------------------------------------------------------------
 * rpc (rpc.c) and remote spawn (spawn.c)
 * ------------------------------------------------------------------------ */
/* Makes d->rpc (the registry); freed by amb__rpc_free with the node. */
int amb__rpc_new(amb__dist *d);
void amb__rpc_free(struct amb__rpc *r);
/* Starts the registered rex server (linked to net_kernel). */
int amb__rpc_start_rex(amb_proc *self, amb__dist *d);
/* rex's pid (AMB_NONE when the program holds the name). */
amb_pid amb__rpc_rex(amb__dist *d);
/* The function registered as module:function: true and *fn, *ctx. */
bool amb__rpc_lookup(amb__dist *d, amb_term module, amb_term function, amb_rpc_fn **fn,
                     void **ctx);
/* The body of a process that runs a registered function (arg: the node):
 * its first message {'$amb_rpc', Kind, M, F, Args, Extra} says what and
 * for whom (rpc.c). */
void amb__rpc_runner(amb_proc *self, void *arg);
/* The reader's handling of SPAWN_REQUEST and SPAWN_REPLY from c's peer. */
void amb__spawn_request_in(amb_proc *self, amb__conn *c, const amb__dist_ctl *ctl);
void amb__spawn_reply_in(amb_proc *self, amb__conn *c, const amb__dist_ctl *ctl);
/* A MONITOR_P_EXIT for the monitor of one of our spawn requests: true when
 * it was one (its DOWN delivered), false for any other monitor. */
bool amb__spawn_down_in(amb_proc *self, amb__conn *c, const amb__dist_ctl *ctl);
/* Connection conn went down: its spawn requests end with noconnection. */
void amb__spawn_conn_down(amb_proc *self, amb__dist *d, uint32_t conn);
/* Drops the caller's request req_id (erpc's timeout): true when it was
 * still in flight, false when its answer was delivered already. */
bool amb__spawn_abandon(amb_proc *self, amb_term req_id);
/* amb_demonitor(ref) in self for the monitor of its spawn request ref:
 * removed (DEMONITOR_P to the peer once it has the monitor; before the
 * reply, the reply's monitor is dropped when it comes); true when there
 * was one. Waits (yielding) while the reader delivers its DOWN. */
bool amb__spawn_demonitor(amb_proc *self, amb_term ref);
/* The SPAWN_REQUEST req_id, queued while its connection was being set up,
 * goes to a peer that turned out not to offer SPAWN: it is not sent, and
 * its entry ends with the error reply notsup (as a request over an UP
 * connection to such a peer). */
void amb__spawn_unsupported(amb_proc *self, amb__dist *d, amb_term req_id);
/* Frees every entry (the node's end). */
void amb__spawn_free_all(amb__dist *d);
/* Registers pid as having a relation over c (NODEDOWN goes to it). */
void amb__conn_interested(amb__conn *c, amb_pid pid);

/* ---------------------------------------------------------------------------
 * Cookies (cookie.c) and node names (nodename.c)
 * ------------------------------------------------------------------------ */
/* Reads the cookie as erl does: $HOME/.erlang.cookie, made when missing.
 * buf gets the cookie's bytes, *len their count. AMB_EACCES (not a regular
 * file, others may access it, cannot be read or made; no $HOME), AMB_EFORMAT
 * (empty, bad characters), AMB_EBUFSIZE (longer than cap). why (may be NULL)
 * gets a line for the log. */
int amb__cookie_read(uint8_t *buf, size_t cap, size_t *len, char *why, size_t why_cap);
/* Checks the bytes of a cookie file's contents as erl's auth does: printable
 * ASCII (space included), then only trailing newlines, returns and spaces.
 * *len gets the cookie's length. AMB_EFORMAT. */
int amb__cookie_check(const uint8_t *data, size_t n, size_t *len);

/* Makes the full node name from `name` as net_kernel does: alive@host kept
 * (short names: no dot in host), or alive + this machine's host name (short:
 * up to the first dot; long: with its domain). out gets it NUL-terminated.
 * AMB_EBADARG (an alive part not [0-9A-Za-z_-]+, a dotted host with short
 * names, a host with characters erl refuses, too long), AMB_ENOHOST (no host
 * name to add). */
int amb__nodename_make(const char *name, bool long_names, char *out, size_t cap);

#endif /* AMB_DIST_DIST_H */

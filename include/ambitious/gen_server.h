/*
 * ambitious/gen_server.h - OTP's gen_server: a process that holds a state
 * and serves synchronous calls, asynchronous casts and plain messages
 * through a table of callbacks with OTP's names.
 *
 * A server is a handler process (process.h): while it waits for a message it
 * holds no stack. Callbacks run one at a time in the server process and may
 * use every process call (send, receive, call other servers, ...).
 *
 * Results. Every callback except terminate returns an amb_gen_ret built with
 * the constructors below, the way an Erlang callback returns a tuple:
 *
 *   OTP                               here
 *   {ok, S} / {noreply, S}            amb_gen_ok() / amb_gen_noreply()
 *   {reply, R, S}                     amb_gen_reply(R)
 *   {stop, Reason, S}                 amb_gen_stop(Reason)
 *   {stop, Reason, R, S}              amb_gen_stop_reply(Reason, R)
 *   ignore (init)                     amb_gen_ignore()
 *   ..., Timeout}                     amb_gen_timeout(ret, ms): when no
 *                                     message comes within ms, handle_info
 *                                     gets the atom `timeout` (ms out of
 *                                     range: a bad result, below)
 *   ..., hibernate}                   amb_gen_hibernate(ret)
 *   ..., {continue, C}}               amb_gen_continue(ret, C)
 *
 * A result a callback may not return (a reply from a cast, ignore from
 * anything but init, a timeout out of range) stops the server, before any
 * of it is acted on, with OTP's reason {bad_return_value, Value}: Value is
 * the result written as the Erlang callback would have returned it, without
 * the state ({reply, R}, {noreply, -2}, {ok, -5} from init; {action, N} or
 * {next, N} for a field no constructor makes). From init it fails the start
 * (AMB_EINIT with that reason).
 *
 * The state S is not returned: it is the memory `state` points to, changed
 * in place. Two kinds:
 *
 *   - A term (.state_term = true), as in OTP: `state` points to one
 *     amb_term slot; init sets it, every callback reads it and stores the
 *     new state there, built on the process heap with anything the callback
 *     got (the request, parts of it, a reply of a call it made), with no
 *     copying by hand:
 *         amb_term *map = state;
 *         *map = amb_map_put(amb_proc_heap(self), *map, key, value);
 *     The runtime keeps what the state reaches alive and reclaims the rest
 *     by itself (process.h, "Term state": the heap compacted to the live
 *     state when it has grown to 7/4 of its size). Terms a callback leaves anywhere
 *     else (a static variable, C memory) are invalid after it returns. The
 *     slot holds `undefined` until init sets it; a callback that leaves
 *     AMB_NONE there (a build that ran out of memory: builders give
 *     AMB_NONE and pass it on) stops the server with {error, 'AMB_ENOMEM'}
 *     before its result is used. state_size must be 0.
 *   - C memory (state_term false): with state_size > 0 the runtime
 *     allocates that many zeroed bytes with the process and `state` points
 *     to them; with state_size == 0, `state` is the arg pointer given to
 *     start (a state the caller owns).
 *
 * Terms and heaps. The terms a callback gets (request, msg, from, cont) are
 * borrowed until it returns (with a term state: until the next collection,
 * and kept by it when the state refers to them). With a C state, terms a
 * callback builds on the process heap (amb_proc_heap(self)) live until it
 * returns and its result has been used (the reply sent, the continue term
 * handed on); then gen_server drops them, so a server that runs for years
 * does not grow. Terms built in init stay for the server's life. A term
 * kept in a C state across callbacks belongs on a heap the state owns
 * (amb_heap_new, freed in terminate or with amb_on_exit so that a killed
 * server frees it too). Never amb_heap_reset the process heap of a server:
 * it would drop the terms init built (and the term state).
 *
 * Server references (`server` below) are terms, as in Erlang:
 *   - a pid;
 *   - an atom: the locally registered name;
 *   - {via, Module, Name}: Name resolved by the via module registered as the
 *     atom Module (amb_via_register; a registry implements it);
 *   - {Name, Node}: Name registered on Node: this node's, or another's when
 *     this runtime runs a node (ambitious/node.h; without one another node
 *     is AMB_ENOTSUP). A server of another node may be an Erlang one: calls
 *     use OTP's protocol (monitor, alias, [alias | Alias] tags).
 * Every form but via resolves as a send does (amb_dest_resolve, process.h);
 * an alias is a destination but no server reference (AMB_EBADARG), and a
 * name nobody has is AMB_ENOPROC.
 *
 * Exit reasons. A server ends with the reason it stopped with (a stop
 * result, amb_gen_stop, an exit signal); links and monitors see exactly that
 * reason, and a reason other than normal, shutdown or {shutdown, _} logs a
 * crash report. terminate(reason) runs before the end on a stop result, on
 * amb_gen_stop, and on an exit signal from the parent (the process that
 * started it with link) when the server traps exits. A server that does not
 * trap exits is ended by an exit signal directly, without terminate (OTP).
 * A callback that ends the process itself (amb_exit_self, a failed
 * AMB_ASSERT) skips terminate: C has no exception for gen_server to catch.
 *
 * Defaults for NULL callbacks (OTP's):
 *   init            ok, state left zeroed (a term state: undefined);
 *   handle_call     replies {error, {bad_call, Request}} and logs a warning
 *                   (the caller does not crash, the server goes on);
 *   handle_cast     logs a warning, goes on;
 *   handle_info     logs a notice ("unexpected message"), goes on;
 *   handle_continue a continue result without it stops the server with
 *                   {undef, handle_continue} (a bug in the program, as OTP);
 *   terminate       nothing.
 * hibernate is accepted and means noreply: an idle server already holds no
 * stack and no per-message heap, which is what hibernate buys in OTP.
 * There are no code_change or format_status: C has no hot code loading.
 */
#ifndef AMBITIOUS_GEN_SERVER_H
#define AMBITIOUS_GEN_SERVER_H

#include "process.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Callback results
 * ------------------------------------------------------------------------ */

typedef enum amb_gen_action {
    AMB_GEN_NOREPLY = 0, /* init: ok; handle_*: noreply */
    AMB_GEN_REPLY,       /* handle_call only */
    AMB_GEN_STOP,        /* stop with reason (and reply, if set) */
    AMB_GEN_IGNORE,      /* init only */
} amb_gen_action;

typedef enum amb_gen_next {
    AMB_GEN_NEXT_NONE = 0,
    AMB_GEN_NEXT_TIMEOUT,   /* timeout_ms */
    AMB_GEN_NEXT_HIBERNATE, /* same as NONE here (see above) */
    AMB_GEN_NEXT_CONTINUE,  /* cont */
} amb_gen_next;

/* Build it with the constructors below rather than by hand. */
typedef struct amb_gen_ret {
    uint8_t action;     /* amb_gen_action */
    uint8_t next;       /* amb_gen_next */
    int error;          /* STOP with reason AMB_NONE: the AMB_E* code that
                           makes the reason {error, 'AMB_E...'} (amb_gen_fail);
                           0 otherwise */
    int64_t timeout_ms; /* NEXT_TIMEOUT: 0 ..= AMB_TIMEOUT_MAX (0: at once
                           unless a message waits), or AMB_INFINITY: none */
    amb_term reply;     /* REPLY, STOP: the reply (STOP: AMB_NONE for none) */
    amb_term reason;    /* STOP: the exit reason */
    amb_term cont;      /* NEXT_CONTINUE: handed to handle_continue */
} amb_gen_ret;

static inline amb_gen_ret amb_gen_ok(void)
{
    amb_gen_ret r;
    r.action = AMB_GEN_NOREPLY;
    r.next = AMB_GEN_NEXT_NONE;
    r.error = 0;
    r.timeout_ms = 0;
    r.reply = r.reason = r.cont = AMB_NONE;
    return r;
}
static inline amb_gen_ret amb_gen_noreply(void)
{
    return amb_gen_ok();
}
static inline amb_gen_ret amb_gen_reply(amb_term reply)
{
    amb_gen_ret r = amb_gen_ok();
    r.action = AMB_GEN_REPLY;
    r.reply = reply;
    return r;
}
static inline amb_gen_ret amb_gen_stop(amb_term reason)
{
    amb_gen_ret r = amb_gen_ok();
    r.action = AMB_GEN_STOP;
    r.reason = reason;
    return r;
}
static inline amb_gen_ret amb_gen_stop_reply(amb_term reason, amb_term reply)
{
    amb_gen_ret r = amb_gen_stop(reason);
    r.reply = reply;
    return r;
}
static inline amb_gen_ret amb_gen_ignore(void)
{
    amb_gen_ret r = amb_gen_ok();
    r.action = AMB_GEN_IGNORE;
    return r;
}
static inline amb_gen_ret amb_gen_timeout(amb_gen_ret r, int64_t timeout_ms)
{
    r.next = AMB_GEN_NEXT_TIMEOUT;
    r.timeout_ms = timeout_ms;
    return r;
}
static inline amb_gen_ret amb_gen_hibernate(amb_gen_ret r)
{
    r.next = AMB_GEN_NEXT_HIBERNATE;
    return r;
}
static inline amb_gen_ret amb_gen_continue(amb_gen_ret r, amb_term cont)
{
    r.next = AMB_GEN_NEXT_CONTINUE;
    r.cont = cont;
    return r;
}
/* Stop with reason {error, 'AMB_E...'} for a failed library call: the
 * idiom `if (rc != 0) return amb_gen_fail(rc);`. A code that is not negative
 * stands for AMB_EBADARG. */
static inline amb_gen_ret amb_gen_fail(int code)
{
    amb_gen_ret r = amb_gen_stop(AMB_NONE);
    r.error = code < 0 ? code : AMB_EBADARG;
    return r;
}

/* ---------------------------------------------------------------------------
 * The callback table (make it static const: it is borrowed for the server's
 * life). Every term a callback gets is borrowed until it returns.
 * ------------------------------------------------------------------------ */

typedef struct amb_gen_server {
    const char *name; /* for reports (OTP's module name); may be NULL */
    size_t state_size;
    bool state_term; /* the state is a term (above); state_size is then 0 */
    amb_gen_ret (*init)(amb_proc *self, void *state, void *arg);
    /* from identifies the caller for amb_gen_server_reply (copy it to reply later). */
    amb_gen_ret (*handle_call)(amb_proc *self, void *state, amb_term request,
                               amb_term from);
    amb_gen_ret (*handle_cast)(amb_proc *self, void *state, amb_term msg);
    amb_gen_ret (*handle_info)(amb_proc *self, void *state, amb_term msg);
    amb_gen_ret (*handle_continue)(amb_proc *self, void *state, amb_term cont);
    void (*terminate)(amb_proc *self, void *state, amb_term reason);
} amb_gen_server;

/* ---------------------------------------------------------------------------
 * Starting
 * ------------------------------------------------------------------------ */

/* Options of amb_gen_server_start (inputs only). Zero means default. */
typedef struct amb_gen_opts {
    amb_term name;      /* AMB_NONE (0): unnamed; an atom: a local name;
                           {via, Module, Name}: through a via module */
    bool link;          /* link the caller and the server (start_link) */
    int64_t timeout_ms; /* init must finish within this (0 or AMB_INFINITY:
                           no limit); else the server is killed and
                           AMB_ETIMEDOUT returned */
    amb_term arg_term;  /* AMB_NONE: init gets `arg` as it is. Else a term
                           handed over by value (copied): init gets arg
                           pointing to an amb_term holding a copy on the
                           server's heap (for the server's life; `arg` is
                           unused). For data that must not depend on the
                           caller's memory: a starter may die while init
                           runs. */
} amb_gen_opts;

/*
 * Starts a server: spawns it, runs cb->init(arg) in it and returns when init
 * has finished. *out (may be NULL) gets the pid. opts may be NULL (copied:
 * only read during the call). *reason (may be NULL) gets why a start
 * failed with AMB_EINIT, on the caller's heap.
 *   0             init returned ok (with timeout or continue: they apply now)
 *   AMB_EIGNORE   init returned ignore; the server ended with reason normal
 *   AMB_EINIT     init returned stop(Reason) (*reason = Reason; amb_gen_fail:
 *                 {error, 'AMB_E...'}), a result init may not return
 *                 ({bad_return_value, Value}, above; a timeout out of
 *                 range too), or the server ended during init
 *                 without init returning (amb_exit_self, a failed
 *                 AMB_ASSERT, an exit signal that ended it; *reason = its
 *                 exit reason); it ended with that reason
 *   AMB_EEXIST    the name is taken: already_started; *out gets the holder
 *                 (this call's server ended with reason normal)
 *   AMB_ETIMEDOUT init did not finish within opts->timeout_ms (killed)
 *   AMB_ENOMEM    memory ran out: in this call, in the new server before
 *                 its init ran, or in init (amb_gen_fail(AMB_ENOMEM)); the
 *                 server ended with *reason = {error, 'AMB_ENOMEM'}
 *   AMB_ESTATE    called from a match function (as amb_gen_server_call;
 *                 nothing was spawned)
 *   AMB_EBADARG   NULL self/cb, a bad name (also {via, M, _} with M not a
 *                 registered via module), a timeout out of range, a term
 *                 state with a state_size; AMB_ESYSLIMIT.
 * A failed start leaves no exit signal (OTP 26's rule, for start_link as for
 * start): when this returns an error the server is gone, and with link it
 * unlinked from the caller before it ended (ignore, stop, a bad result, a
 * taken name) or the caller unlinked it before killing it (a timeout). So a
 * caller that traps exits finds no {'EXIT', Pid, _} and one that does not
 * is not taken down by a failed start. The one exception is a server that
 * ends during init without init returning: it cannot unlink first, and a
 * linked caller gets its exit signal as from any linked process (ended by
 * it unless it traps exits or the reason is normal). OTP 25 sent
 * {'EXIT', Pid, normal} for ignore and {'EXIT', Pid, Reason} for stop, a
 * crash in init and a bad return value (a start_link caller that did not
 * trap exits died of a failed start); none for already_started or a timeout.
 * `arg` is passed to init as it is (and is the state when state_size == 0):
 * what it points to must stay valid while init runs, also if the caller is
 * killed meanwhile (static data, or memory the server takes over; or pass
 * a term by value with opts->arg_term).
 */
AMB_API int amb_gen_server_start(amb_proc *self, const amb_gen_server *cb, void *arg,
                                 const amb_gen_opts *opts, amb_pid *out,
                                 amb_term *reason);
/* amb_gen_server_start with link and no name (the same results; a failed
 * start leaves no exit signal, as above). */
AMB_API int amb_gen_server_start_link(amb_proc *self, const amb_gen_server *cb, void *arg,
                                      amb_pid *out, amb_term *reason);

/* ---------------------------------------------------------------------------
 * Talking to a server
 * ------------------------------------------------------------------------ */

/*
 * Sends request to server and waits for the reply (gen_server:call). The
 * caller monitors the server for the duration of the call and the request
 * travels with an alias (process.h), so:
 *   0             *reply is the reply, borrowed until the caller's next
 *                 call (or any library call that waits, or its own
 *                 amb_receive_if_after: process.h, "Borrowing";
 *                 amb_term_copy to keep it). The call itself leaves the
 *                 message of the caller's last amb_receive alone.
 *   AMB_ENOPROC   no such server (unknown name, dead pid)
 *   AMB_EEXIT     the server ended before replying; *reply is its exit reason
 *                 (borrowed likewise)
 *   AMB_ETIMEDOUT no reply within timeout_ms; a reply that comes later is
 *                 dropped, it never lands in the caller's mailbox
 *   AMB_EDEADLK   the caller is the server (calling_self)
 *   AMB_ESTATE    called from a receive's match function, where nothing
 *                 may wait (process.h, amb_receive_if); nothing was sent
 *   AMB_EBADARG, AMB_ENOMEM, AMB_ENOTSUP (another node, and no node runs
 *                 here).
 * A server of another node that cannot be reached is AMB_EEXIT with
 * *reply noconnection (its monitor's DOWN). The caller's other messages
 * stay in its mailbox, in order. The caller's
 * heap is left as it was. reply may be NULL.
 */
AMB_API int amb_gen_server_call(amb_proc *self, amb_term server, amb_term request,
                                int64_t timeout_ms, amb_term *reply);

/* Sends msg (copied) to server without waiting (gen_server:cast). 0 also
 * when there is no such server, as in OTP. AMB_EBADARG for a bad reference
 * or AMB_NONE, AMB_ENOMEM, AMB_ENOTSUP for another node when no node runs
 * here. */
AMB_API int amb_gen_server_cast(amb_proc *self, amb_term server, amb_term msg);

/* Replies (reply copied) to the call from (the `from` a handle_call got, or
 * a copy of it), from any process (gen_server:reply). 0 also when the
 * caller is gone or gave up waiting (the reply is then dropped).
 * AMB_EBADARG for a term that is not a from or an AMB_NONE reply,
 * AMB_ENOMEM. */
AMB_API int amb_gen_server_reply(amb_proc *self, amb_term from, amb_term reply);

/* Stops server with reason (copied) and waits until it has ended (terminate
 * ran): gen_server:stop/3.
 *   0             it ended with reason
 *   AMB_EEXIT     it ended with another reason (terminate crashed, or an exit
 *                 signal came first)
 *   AMB_ENOPROC   no such server
 *   AMB_ETIMEDOUT it did not end within timeout_ms (it is left running)
 *   AMB_EDEADLK   the caller is the server
 *   AMB_ESTATE    called from a match function (as amb_gen_server_call)
 *   AMB_EBADARG   a bad reference, AMB_NONE reason, a timeout out of range;
 *                 AMB_ENOMEM, AMB_ENOTSUP (another node, and no node
 *                 runs here). */
AMB_API int amb_gen_server_stop(amb_proc *self, amb_term server, amb_term reason,
                                int64_t timeout_ms);

/* The pid a server reference names now, in *out: 0, AMB_ENOPROC (no such
 * process, or not alive), AMB_EBADARG (a bad reference, NULL out),
 * AMB_ENOTSUP (a server of another node: only a call can tell). */
AMB_API int amb_gen_server_whereis(amb_proc *self, amb_term server, amb_pid *out);

/*
 * Calls the server registered as name on each node of nodes (a list of node
 * atoms; AMB_NONE: this node and every connected node) and collects the
 * replies (gen_server:multi_call). *replies gets [{Node, Reply}] and
 * *bad_nodes (may be NULL) [Node] for nodes where no server answered in
 * time, both on the caller's heap (each Reply a copy). Each node is called
 * in turn with timeout_ms; without a node running here every other node
 * is a bad node. AMB_EBADARG (name not an
 * atom, nodes not a list of atoms, NULL replies, a timeout out of range),
 * AMB_ENOMEM.
 */
AMB_API int amb_gen_server_multi_call(amb_proc *self, amb_term nodes, amb_term name,
                                      amb_term request, int64_t timeout_ms,
                                      amb_term *replies, amb_term *bad_nodes);
/* Casts msg (copied) to the server registered as name on each node
 * (gen_server:abcast). Never fails for a missing server: AMB_EBADARG (name
 * not an atom, nodes not a list of atoms), AMB_ENOMEM. */
AMB_API int amb_gen_server_abcast(amb_proc *self, amb_term nodes, amb_term name,
                                  amb_term msg);

/* ---------------------------------------------------------------------------
 * Via modules: name registration by another module ({via, Module, Name})
 * ------------------------------------------------------------------------ */

/* A via module registers names for processes. A server unregisters its via
 * name when it stops by a stop result or amb_gen_server_stop; a server that
 * is killed or ends itself cannot, so the module must drop the names of
 * processes that end (monitor them, as Elixir's Registry does). */
typedef struct amb_via {
    /* 0, or AMB_EEXIST when name is taken. Called in the process that is
     * to hold the name (pid is its own pid). */
    int (*register_name)(amb_proc *self, void *ctx, amb_term name, amb_pid pid);
    /* 0 or AMB_ENOTFOUND. */
    int (*unregister_name)(amb_proc *self, void *ctx, amb_term name);
    /* 0 and *out, or AMB_ENOTFOUND. */
    int (*whereis_name)(amb_proc *self, void *ctx, amb_term name, amb_pid *out);
    void *ctx; /* passed to each callback as it is; valid until unregistered */
} amb_via;

/* Makes via (copied) the via module called module (an atom) for this OS
 * process, like loading an Erlang module. AMB_EEXIST when the atom names one
 * already, AMB_EBADARG, AMB_ESYSLIMIT (at most 64 via modules). */
AMB_API int amb_via_register(amb_term module, const amb_via *via);
/* Forgets the via module called module: 0, AMB_ENOTFOUND when there is
 * none, AMB_EBADARG when module is not an atom. */
AMB_API int amb_via_unregister(amb_term module);

#ifdef __cplusplus
}
#endif
#endif /* AMBITIOUS_GEN_SERVER_H */

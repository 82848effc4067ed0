/*
 * ambitious/process.h - the runtime and its processes: spawn, send, receive
 * (selective, with timeouts), timers, registered names, process_info, and a
 * pool for blocking C calls.
 *
 * The model is Erlang's. A runtime (amb_rt) runs many processes on a few
 * scheduler threads (one per CPU by default). Processes share nothing: a
 * send copies the message term into the receiver's mailbox (large binaries
 * are shared by reference count). Messages between one pair of processes
 * arrive in the order they were sent.
 *
 * Two kinds of process:
 *   - Stackful (amb_spawn): the body is an ordinary C function that may
 *     block in amb_receive anywhere, at any depth. It owns a stack (64 KiB
 *     of address space by default; only touched pages cost memory).
 *   - Handler (amb_spawn_handler): the body is a function called once per
 *     message. While it waits for a message it holds no stack at all, so a
 *     million idle handler processes cost a few hundred bytes each. A
 *     handler that blocks inside a runtime call (a nested receive, a call)
 *     keeps a stack until that call returns. Behaviours (gen_server & co.)
 *     are built on handlers.
 *
 * Calls made inside a process take that process (`amb_proc *self`) first.
 * `self` is valid only inside the process it names, and must not be kept in
 * thread-local storage: a process may resume on another scheduler thread
 * after any call that can suspend it (receive, send, yield, ...).
 *
 * Pids (amb_pid) are terms: a pid of this runtime is an immediate word that
 * may be copied, stored, compared with == and put in messages freely; it
 * never dangles. Sending to a dead pid is not an error (the message is
 * dropped), as in Erlang.
 *
 * Rules for the whole layer:
 *   - Calls that take `self` are made inside that process; calls that take
 *     `rt` from any thread, unless their comment says otherwise. A NULL
 *     self or rt is AMB_EBADARG (or the neutral value for calls that
 *     cannot fail).
 *   - Terms handed in (messages, exit reasons) are copied when they must
 *     outlive the call; names are atoms, which live forever. Terms handed
 *     back are built on the caller's heap (amb_proc_heap), owned by it, or
 *     borrowed where the comment says until when.
 *   - `arg` pointers (a body's, a start function's) are passed as they are:
 *     the caller keeps them valid for as long as the process uses them.
 *   - Times are int64_t milliseconds (below).
 *
 * Stacks and overflow. A process's stack (a stackful body, or a handler's
 * callbacks) is fixed in size: `stack_size` of the runtime or of the spawn,
 * a little less than that in usable bytes (a page and 64 bytes go to the
 * guard and the canary). Running out of it never goes unnoticed and never
 * silently corrupts another process, in every build type:
 *   - A runtime call (send, receive, link, monitor, exit, timers; every
 *     call that may yield) made with less than 8 KiB of stack left ends the
 *     process with reason `stack_overflow`, as amb_exit_self would (links,
 *     monitors and a crash report see it); the 8 KiB are the room ending
 *     takes, a log handler included. So a recursion that calls the runtime
 *     stops there, and nothing else is hurt.
 *   - Code that goes deeper without a runtime call runs into a guard page
 *     below its stack: every stack has one where the kernel has guard
 *     regions (Linux 6.13 and later), else the first 4096 of each size do.
 *     The fault ends the OS process, after the line "ambitious: stack
 *     overflow: ..." on stderr when the program has no SIGSEGV handler of
 *     its own. A frame larger than the guard page can step over it unless
 *     the code is built with -fstack-clash-protection (GCC, Clang).
 *   - A stack without a guard page has a 64-byte canary below it, checked
 *     each time the process switches out: a broken one stops the OS
 *     process with a message naming the overflow, before any other process
 *     runs on corrupted memory.
 * docs/design/stacks.md has the layout and what each check costs.
 */
#ifndef AMBITIOUS_PROCESS_H
#define AMBITIOUS_PROCESS_H

#include "term.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct amb_rt amb_rt;
typedef struct amb_proc amb_proc;
typedef amb_term amb_pid;

/* Times. Every timeout, delay, period and shutdown time of the library is an
 * int64_t count of milliseconds, relative to now, in 0 ..= AMB_TIMEOUT_MAX
 * (2^32 - 1, OTP's limit, about 49.7 days); 0 polls (does not wait). Where
 * waiting forever makes sense, AMB_INFINITY (-1) does that. Any other value
 * is AMB_EBADARG. */
#define AMB_INFINITY    ((int64_t)-1)
#define AMB_TIMEOUT_MAX ((int64_t)UINT32_MAX)

/* ---------------------------------------------------------------------------
 * Runtimes
 * ------------------------------------------------------------------------ */

/* Zero in a field means its default. */
typedef struct amb_config {
    unsigned schedulers;       /* scheduler threads; default: the AMB_SCHEDULERS
                                  environment variable, else one per CPU */
    size_t stack_size;         /* stackful processes' stacks; default 64 KiB */
    size_t max_processes;      /* process table size; default 4M (2^22), at most
                                  2^28 */
    unsigned blocking_threads; /* threads of the blocking-call pool; default 4 */
    int64_t watchdog_ms;       /* report a process that runs this long without
                                  yielding: 1 ..= AMB_TIMEOUT_MAX, default
                                  2000; AMB_INFINITY turns reports off */
    const char *node_name;     /* the node's name; default "nonode@nohost";
                                  Name@Host as erl takes it: Name of ASCII
                                  letters, digits, '_' and '-', Host of
                                  printable ASCII without spaces, neither
                                  empty. A node started later
                                  (ambitious/node.h) renames the runtime:
                                  its pids take the node's name and
                                  creation */
    int64_t spin_us;           /* the longest an idle scheduler looks for work
                                  (and, with sockets open, polls) before it
                                  sleeps; the spin adapts below it: 0 default
                                  (200), 1 ..= 100000, or AMB_SPIN_OFF */
} amb_config;

/* amb_config.spin_us: idle schedulers sleep at once (the least CPU when
 * idle, a wake-up's latency on every message that finds them asleep). */
#define AMB_SPIN_OFF ((int64_t)-2)

/* Creates a runtime (no threads run until amb_rt_run) in *out, owned: free
 * with amb_rt_free. cfg may be NULL for all defaults; it is copied (the node
 * name too). AMB_EBADARG for a NULL out or a value out of range (a node
 * name that is not Name@Host), AMB_ENOMEM, AMB_ESYSLIMIT (too many runtimes
 * in this OS process: 1023 over its lifetime; or the atom table is full and
 * the node name is a new atom). Any thread. */
AMB_API int amb_rt_new(const amb_config *cfg, amb_rt **out);

/* Runs the runtime's schedulers on this thread and (schedulers - 1) more,
 * until every process has ended or amb_rt_stop or amb_rt_halt was called.
 * May be called again afterwards to run processes spawned since. Returns
 * 0 when every process ended or amb_rt_stop stopped it, and the code of
 * the first amb_rt_halt of the run when one halted it: AMB_EAPPEXIT when a
 * permanent application (or a transient one, abnormally) ended
 * (application.h), AMB_EMAINEXIT when amb_main's process ended abnormally,
 * or a code of the program's own. AMB_ESTATE when it is already running,
 * AMB_EBADARG for NULL, AMB_EAGAIN (no thread could be made). From a
 * thread outside any process. */
AMB_API int amb_rt_run(amb_rt *rt);

/* Asks a running runtime to stop: amb_rt_run returns soon after, leaving
 * the remaining processes suspended (amb_rt_free ends them). Any thread,
 * also from inside a process. Idempotent. AMB_EBADARG for NULL. */
AMB_API int amb_rt_stop(amb_rt *rt);

/* erlang:halt/1 for a runtime: stops a running runtime as amb_rt_stop does,
 * and makes this run's amb_rt_run return code (a negative AMB_E* code: why
 * the program failed); when several halt one run, the first code counts. A
 * halt while the runtime does not run is forgotten by the next run. Any
 * thread, also from inside a process. AMB_EBADARG for NULL or a code that
 * is not negative. */
AMB_API int amb_rt_halt(amb_rt *rt, int code);

/* Ends every remaining process (without running any more of its code),
 * frees all memory and joins the threads; rt is invalid afterwards. rt must
 * not be running (call after amb_rt_run returned), from a thread outside any
 * process. NULL is a no-op. */
AMB_API void amb_rt_free(amb_rt *rt);

/* A process body. arg is the pointer given to spawn, passed as it is (the
 * spawner keeps it valid while the body uses it). */
typedef void amb_fn(amb_proc *self, void *arg);

/* Spawns a stackful process running fn(self, arg) from outside the runtime
 * (before or during amb_rt_run, from any thread). *out (may be NULL) gets
 * its pid. AMB_EBADARG (NULL rt or fn), AMB_ESYSLIMIT (the process table is
 * full), AMB_ENOMEM. */
AMB_API int amb_rt_spawn(amb_rt *rt, amb_fn *fn, void *arg, amb_pid *out);

/* Sends msg (copied) to `to` from outside the runtime, from any thread. `to`
 * takes every form amb_send takes, with the same results. */
AMB_API int amb_rt_send(amb_rt *rt, amb_term to, amb_term msg);

/*
 * The convenience for main(): creates a runtime with cfg (may be NULL;
 * copied), spawns fn(arg) as the main process, runs until every process
 * has ended, frees the runtime. Returns 0 or the first error of those
 * steps, and tells a failed run from a good one:
 *   AMB_EMAINEXIT  the main process ended with a reason other than normal
 *                  (amb_exit_self, a failed AMB_ASSERT, an exit signal):
 *                  the runtime halts at once, whatever else runs, and the
 *                  other processes are ended by amb_rt_free (an escript
 *                  whose main raises exits with status 127);
 *   AMB_EAPPEXIT   a permanent application ended (application.h; erl
 *                  exits with status 1);
 *   any code the program gave amb_rt_halt.
 * A main process that returns (reason normal) leaves the others running
 * until they end, as `erl -s` leaves the node running (an escript halts
 * when main returns). `return amb_main(...);` from C's main therefore exits
 * with a non-zero status exactly when the run failed (the low byte of the
 * code). From a thread outside any process.
 */
AMB_API int amb_main(const amb_config *cfg, amb_fn *fn, void *arg);

/* ---------------------------------------------------------------------------
 * Spawning
 * ------------------------------------------------------------------------ */

/* Spawns a stackful process running fn(self, arg). *out (may be NULL) gets
 * its pid. AMB_EBADARG (NULL self or fn), AMB_ESYSLIMIT when the process
 * table is full, AMB_ENOMEM. The process takes its stack when it first
 * runs (a process waiting to run holds none: a burst of a million spawns
 * costs stacks only for those running at once); when none can be had (the
 * address space is used up), it ends there with reason
 * {error, 'AMB_ENOMEM'} and a crash report, seen by its links and monitors
 * like any other end. A handler process, which takes a stack for each
 * activation, ends the same way. */
AMB_API int amb_spawn(amb_proc *self, amb_fn *fn, void *arg, amb_pid *out);

/*
 * A handler process: its body is handle(), called once for each message.
 * The runtime allocates state_size bytes (zeroed, 16-byte aligned) with the
 * process. init (may be NULL) runs in the new process before its first
 * message. A callback ends the process with amb_exit_self; returning 0 goes
 * on with the next message (a negative AMB_E* code ends the process, see
 * amb_exit_self). The table is borrowed for the process's life (make it
 * static const); state belongs to the process and dies with it.
 *
 * Term state. With state_terms = n > 0 the state begins with n amb_term
 * slots (AMB_NONE at first; state_size counts them and may be 0 for "just
 * the terms") that the runtime keeps alive, as BEAM keeps a process's
 * heap: callbacks build on the process heap (amb_proc_heap) and store
 * the new terms in the slots; a message the process received (the one
 * handle got, a reply a nested call returned) is not freed when its borrow
 * ends but kept with the heap, so a slot may hold parts of it. Between
 * callbacks, once the heap and the kept messages have grown to 7/4 of the
 * size of the live data, the runtime compacts the heap in place to what the
 * slots reach (shared parts once; the parts of kept messages copied in) and
 * frees the rest: memory stays within a constant factor of the live data
 * (under 3x at its peak) at amortised O(1) cost per term built. So every
 * term a callback leaves outside the slots (in C memory, a static
 * variable, a heap mark) is invalid after its return (it may now be another
 * term; in sanitizer builds, freed memory); a term of another heap stored
 * in a slot is referred to, not copied (it must outlive the process, as any
 * constructor's input). A collection that finds no memory for its side
 * tables waits for the next callback; one that runs out half way ends the
 * process with {error, 'AMB_ENOMEM'}.
 */
typedef struct amb_handler {
    size_t state_size;
    int (*init)(amb_proc *self, void *state, void *arg);
    /* msg is borrowed until handle returns (amb_term_copy to keep it; with
     * term state, store it or a part of it in a slot). */
    int (*handle)(amb_proc *self, void *state, amb_term msg);
    size_t state_terms; /* 0 ..= AMB_STATE_TERMS_MAX term slots first */
} amb_handler;
#define AMB_STATE_TERMS_MAX 64

/* Spawns a handler process; arg goes to init as it is. A handler with no
 * init does not run at all until its first message arrives. *out (may be
 * NULL) gets the pid. AMB_EBADARG (NULL self or handler, no handle,
 * state_terms above AMB_STATE_TERMS_MAX), AMB_ESYSLIMIT, AMB_ENOMEM. */
AMB_API int amb_spawn_handler(amb_proc *self, const amb_handler *handler, void *arg,
                              amb_pid *out);

/* Options for amb_spawn_opt (inputs only). Zero means default. */
typedef struct amb_spawn_opts {
    const amb_handler *handler; /* a handler process instead of fn (borrowed
                                   for the process's life) */
    size_t stack_size;          /* stackful: a stack of this size (rounded up
                                   to a size class), default the runtime's */
    amb_term name;              /* register under this atom (AMB_NONE: none);
                                   AMB_EEXIST when the name is taken, and
                                   then nothing is spawned */
    size_t min_heap_size;       /* bytes to reserve for the process's heap
                                   (AMB_ENOMEM when they cannot be had) */
    bool link;                  /* link the caller and the child atomically
                                   (amb_spawn_link) */
    bool monitor;               /* the caller monitors the child atomically
                                   (amb_spawn_monitor) */
} amb_spawn_opts;

/* Spawns fn(arg), or opts->handler, with the options (opts may be NULL: all
 * defaults; copied, only read during the call). *out (may be NULL) gets the
 * pid; with opts->monitor, *monitor_ref (may be NULL) gets the monitor's
 * reference, on the caller's heap. AMB_EBADARG (no body, a bad name or
 * stack size), AMB_EEXIST (the name is taken), AMB_ESYSLIMIT, AMB_ENOMEM;
 * on an error nothing is spawned. */
AMB_API int amb_spawn_opt(amb_proc *self, amb_fn *fn, void *arg,
                          const amb_spawn_opts *opts, amb_pid *out,
                          amb_term *monitor_ref);

/* ---------------------------------------------------------------------------
 * The calling process
 * ------------------------------------------------------------------------ */

/* The pid of the calling process (AMB_NONE for NULL). Never fails. */
AMB_API amb_pid amb_self(amb_proc *self);
/* The runtime the process lives in, borrowed: valid until amb_rt_free (NULL
 * for NULL). */
AMB_API amb_rt *amb_proc_rt(amb_proc *self);
/* The process's own heap, borrowed (the process owns it): terms built here
 * live until the process ends or calls amb_heap_reset on it (never reset it
 * while holding terms you need). The arena for amb_pack and the
 * constructors. NULL for NULL, or when it cannot be made (out of memory).
 * The pointer stays valid for the process's life (a term-state collection
 * moves the terms, not the heap).
 *
 * A process that loops keeps its heap bounded one way: a mark taken before
 * the loop, rewound at the top of every round, which drops what the last
 * round built. (A loop that must keep terms from round to round is a
 * server: write it as a handler or gen_server with term state, which the
 * runtime collects; immediates, pids among them, may stay in C variables.)
 *
 *     amb_heap *h = amb_proc_heap(self);
 *     amb_heap_mark top = amb_heap_save(h);
 *     for (;;) {
 *         amb_heap_rewind(h, top);
 *         amb_receive(self, AMB_INFINITY, &msg);   (borrowed until the next one)
 *         amb_send(self, to, amb_pack(h, "{reply, ~w}", msg));
 *     }
 *
 * Handler callbacks need none of this: a gen_server rewinds after each
 * message, and a term-state process is collected. In AddressSanitizer
 * builds the words a rewind drops are poisoned, so reading a term of an
 * earlier round is a report. */
AMB_API amb_heap *amb_proc_heap(amb_proc *self);
/* Lets other processes run; the caller continues later. 0, or AMB_EBADARG
 * for NULL. */
AMB_API int amb_yield(amb_proc *self);
/* True when pid names a live process of this runtime; false for anything
 * else. */
AMB_API bool amb_is_process_alive(amb_proc *self, amb_pid pid);

/* Ends the calling process at once, from any depth, with reason (any term;
 * copied). Never returns. Returning from a process's body is reason
 * `normal`. A handler callback that returns a negative AMB_E* code ends the
 * process with reason {error, 'AMB_E...'}. Links and monitors get the
 * reason; a reason other than normal, shutdown or {shutdown, _} also logs a
 * crash report (ambitious/logger.h). */
AMB_NORETURN AMB_API void amb_exit_self(amb_proc *self, amb_term reason);

/* ---------------------------------------------------------------------------
 * Failure: links, monitors, exit signals (Erlang's rules exactly; see
 * docs/semantics.md for each rule with an example)
 *
 * When a process ends, every linked process gets an exit signal with its
 * reason (`killed` when it was killed) and every monitor a message
 * {'DOWN', Ref, process, Pid, Reason}, exactly once. An exit signal with
 * reason R reaching a process that does not trap exits: `normal` is ignored
 * (unless the process sent it to itself), `kill` (only from amb_exit) ends it
 * with `killed`, anything else ends it with R. A process that traps exits
 * gets {'EXIT', From, R} as a message instead, except for `kill`. Signals
 * between two processes arrive in the order they were sent, messages too.
 *
 * A process notices an exit signal at its next runtime call (send, receive,
 * yield, ...): a suspended one at once. A process stuck in a C loop that
 * never calls the runtime cannot be stopped (the runtime is cooperative).
 * ------------------------------------------------------------------------ */

/* Links the caller and pid (idempotent; pid == self is a no-op). When pid is
 * not alive: AMB_ENOPROC for a caller that does not trap exits, and for one
 * that does, 0 and a message {'EXIT', Pid, noproc}. AMB_EBADARG for a term
 * that is not a pid, AMB_ENOTSUP for a pid of another node when this
 * runtime runs no node (ambitious/node.h). A link to a process of another
 * node is the same link (the far end may be an Erlang process); when the
 * connection to that node is lost the caller gets an exit signal
 * noconnection, as from a process that ended with it. */
AMB_API int amb_link(amb_proc *self, amb_pid pid);
/* Removes the link, if any. Once it returns, the link has no more effect on
 * the caller (an exit signal already on its way because of it is dropped).
 * 0 also when there was no link; AMB_ENOMEM (and the link stays);
 * AMB_EBADARG and AMB_ENOTSUP as amb_link. */
AMB_API int amb_unlink(amb_proc *self, amb_pid pid);
/* Spawns fn(arg) linked to the caller; no window where the child could end
 * unlinked. *out and the errors as amb_spawn. */
AMB_API int amb_spawn_link(amb_proc *self, amb_fn *fn, void *arg, amb_pid *out);
/* Spawns fn(arg) monitored by the caller (atomically). *ref (may be NULL)
 * gets the monitor's reference, on the caller's heap. *out and the errors
 * as amb_spawn. */
AMB_API int amb_spawn_monitor(amb_proc *self, amb_fn *fn, void *arg, amb_pid *out,
                              amb_term *ref);
/* Monitors target (erlang:monitor(process, Target)): when the process ends
 * (or at once when it is not alive: reason noproc) the caller gets
 * {'DOWN', Ref, process, Object, Reason}. target is
 *   - a pid: Object is the pid;
 *   - a registered name, an atom or {Name, Node} with this node's name: the
 *     process registered under Name now is monitored (a later change of the
 *     name does not move the monitor), and Object is {Name, Node} (OTP's);
 *     a name nobody has gives the DOWN noproc at once, with {Name, Node}.
 * Each call makes a new monitor, so several monitors of one process each
 * get their DOWN. *ref (may be NULL) gets the reference, on the caller's
 * heap. A process of another node is monitored the same way (a name there
 * by {Name, Node}); a lost connection is its DOWN with reason
 * noconnection. AMB_EBADARG for any other term, AMB_ENOTSUP for a pid or
 * {Name, Node} of another node when no node runs here (ambitious/node.h),
 * AMB_ENOMEM. */
AMB_API int amb_monitor(amb_proc *self, amb_term target, amb_term *ref);
/* What an alias monitor's reference is besides a monitor (OTP's
 * monitor(process, Target, [{alias, UnaliasOpt}])): also an alias of the
 * caller (amb_alias below), so one term names the monitor and routes
 * messages, and a message sent through it after the alias went is dropped,
 * wherever it was then. A call's reply travels so: once the DOWN is taken,
 * a reply sent later never lands in the caller's mailbox. */
typedef enum amb_monitor_alias {
    AMB_MONITOR_NO_ALIAS = 0,          /* a plain monitor */
    AMB_MONITOR_ALIAS_EXPLICIT,        /* explicit_unalias: the alias lives
                                          until amb_unalias */
    AMB_MONITOR_ALIAS_DEMONITOR,       /* demonitor: the alias goes with the
                                          monitor (its DOWN taken in, or
                                          amb_demonitor), or at amb_unalias */
    AMB_MONITOR_ALIAS_REPLY_DEMONITOR, /* reply_demonitor: as demonitor, and
                                          the first message taken in through
                                          the alias removes both the alias
                                          and the monitor */
} amb_monitor_alias;
/* Options of amb_monitor_opt (inputs only). Zero means default. */
typedef struct amb_monitor_opts {
    amb_monitor_alias alias; /* default: no alias */
} amb_monitor_opts;
/* amb_monitor with options (opts may be NULL: a plain monitor; copied, only
 * read during the call). The errors of amb_monitor, and AMB_EBADARG for an
 * unknown alias kind. */
AMB_API int amb_monitor_opt(amb_proc *self, amb_term target, const amb_monitor_opts *opts,
                            amb_term *ref);
/* Flags of amb_demonitor. AMB_DEMONITOR_FLUSH: also remove a DOWN of this
 * monitor already in the mailbox. */
#define AMB_DEMONITOR_FLUSH 1u
/* Removes the monitor ref: no DOWN for it reaches the caller afterwards
 * (with AMB_DEMONITOR_FLUSH none is left in the mailbox either). The alias
 * of an alias monitor made with AMB_MONITOR_ALIAS_DEMONITOR or _REPLY_
 * DEMONITOR goes with it. 0 when the
 * monitor was active, AMB_ENOTFOUND when it was not (already fired or
 * removed: erlang:demonitor(Ref, [info]) returning false), AMB_EBADARG for a
 * term that is not a reference or unknown flags, AMB_ESTATE for a flush from
 * a match function (amb_receive_if: nothing is done). */
AMB_API int amb_demonitor(amb_proc *self, amb_term ref, unsigned flags);
/* Sends an exit signal with reason (any term, copied) to pid, with the rules
 * above. pid may be the caller: exit(self(), normal) ends a process that does
 * not trap exits, and amb_exit(self, self_pid, kill) never returns. A dead
 * pid is not an error. AMB_EBADARG (not a pid, AMB_NONE reason),
 * AMB_ENOTSUP (another node, and no node runs here), AMB_ENOMEM. */
AMB_API int amb_exit(amb_proc *self, amb_pid pid, amb_term reason);
/* Sets the process flag trap_exit; returns its previous value (false for a
 * NULL self). Never fails. */
AMB_API bool amb_trap_exit(amb_proc *self, bool on);
/* Registers fn(ctx) to run when the process ends, however it ends (also when
 * it is killed): last registered runs first. It runs on a scheduler thread
 * after the process ended: it must not use the process, only release what
 * ctx holds (ctx is passed as it is, and consumed by that call).
 * AMB_EBADARG (NULL self or fn), AMB_ENOMEM (fn will not run). */
typedef void amb_cleanup_fn(void *ctx);
AMB_API int amb_on_exit(amb_proc *self, amb_cleanup_fn *fn, void *ctx);
/* Removes the most recent registration of (fn, ctx) without running it (ctx
 * is the caller's again): AMB_ENOTFOUND when there is none, AMB_EBADARG. */
AMB_API int amb_on_exit_cancel(amb_proc *self, amb_cleanup_fn *fn, void *ctx);

/* Ends the process with reason {assert, [{file, File}, {line, Line},
 * {expression, Expr}]} (strings as binaries, copied) unless cond holds:
 * Erlang's ?assert. Links and monitors see that reason; a crash report is
 * logged. */
#define AMB_ASSERT(self, cond)                                  \
    do {                                                        \
        if (!(cond))                                            \
            amb_assert_fail((self), #cond, __FILE__, __LINE__); \
    } while (0)
AMB_NORETURN AMB_API void amb_assert_fail(amb_proc *self, const char *expr,
                                          const char *file, int line);

/* ---------------------------------------------------------------------------
 * Messages
 *
 * Borrowing. A message a receive returns is borrowed: valid until the
 * process's next receive of the same family, which frees it (amb_term_copy
 * keeps a copy). There are two families: amb_receive, amb_receive_if and
 * amb_receive_match; and amb_receive_if_after, the receive of request/reply
 * exchanges and of every library call that waits for an answer (gen_server
 * calls, starts and stops, supervisor and application calls). So such a
 * call, or amb_sleep (which takes no message at all), between a receive and
 * the use of its message leaves that message alone. A handler's message is
 * borrowed until handle returns, whatever it receives meanwhile.
 * ------------------------------------------------------------------------ */

/* Sends a copy of msg to `to`, which takes every destination form of
 * Erlang's `To ! Msg`:
 *   - a pid: a dead pid is not an error (the message is dropped), as in
 *     Erlang;
 *   - an alias (amb_alias below): the message goes to its owner, or nowhere
 *     when the alias is no longer active;
 *   - an atom: the process registered under it; AMB_EBADARG when no process
 *     has that name, as `Name ! Msg` raises badarg;
 *   - {Name, Node}: with this node's name, the process registered as Name,
 *     and when there is none the message is dropped (0, OTP's rule);
 *   - a pid, an alias or {Name, Node} of another node, when this runtime
 *     runs a node (ambitious/node.h): the message goes there, connecting
 *     first if need be, and is dropped when the node cannot be reached
 *     (Erlang's rule); without a node: AMB_ENOTSUP. When the caller has
 *     more than its send budget queued to that node (node.h,
 *     amb_node_opts.send_budget), amb_send waits until its queue is back
 *     within it or the connection is gone (only the caller waits).
 * AMB_EBADARG for any other term, AMB_NONE included, AMB_ENOMEM.
 * May yield when the sender's reduction budget is spent (so that a sending
 * loop cannot starve the others). */
AMB_API int amb_send(amb_proc *self, amb_term to, amb_term msg);

/* Receives the oldest message into *out (may be NULL: the message is taken
 * all the same), borrowed until the next amb_receive, amb_receive_if or
 * amb_receive_match (see "Borrowing" above). AMB_ETIMEDOUT when
 * timeout_ms passes first (0 polls, AMB_INFINITY waits forever),
 * AMB_EBADARG (NULL self, a timeout out of range), AMB_ESTATE (called from
 * a match function, see amb_receive_if), AMB_ENOMEM (a finite timeout needs
 * a timer and none could be had; nothing was taken). */
AMB_API int amb_receive(amb_proc *self, int64_t timeout_ms, amb_term *out);

/* Selective receive by predicate: the oldest message for which match(ctx,
 * msg) is true; messages that do not match stay, in order. match runs in the
 * caller, msg borrowed for its call; ctx is passed as it is. *out (may be
 * NULL) and the errors as amb_receive, and AMB_EBADARG for a NULL match.
 *
 * A match function must not wait: the receive that runs it holds its place
 * in the mailbox. Inside one, every call that would wait for messages
 * returns AMB_ESTATE and does nothing: a receive of any kind, amb_sleep,
 * amb_blocking_call, amb_process_info of another process, amb_demonitor with
 * AMB_DEMONITOR_FLUSH, and the library calls that wait for an answer
 * (gen_server and supervisor calls, starts and stops). Sending, linking,
 * monitoring and amb_yield are allowed. */
typedef bool amb_match_fn(void *ctx, amb_term msg);
AMB_API int amb_receive_if(amb_proc *self, amb_match_fn *match, void *ctx,
                           int64_t timeout_ms, amb_term *out);

/* Selective receive by pattern: the oldest message that matches fmt (the
 * language of amb_match, term.h); the bindings are stored as amb_match
 * does (terms and strings borrowed as *out is). *out (may be NULL) gets the
 * whole message. The errors of amb_receive, and of amb_match for a bad
 * pattern (AMB_EFORMAT, AMB_EBADARG: then nothing is taken). */
AMB_API int amb_receive_match(amb_proc *self, int64_t timeout_ms, amb_term *out,
                              const char *fmt, ...);

/*
 * The save marker (BEAM's receive-ref optimisation): amb_receive_mark
 * records the end of the mailbox now; a receive passed the mark skips every
 * message that arrived before it. A process that makes a fresh reference,
 * marks, sends a request tagged with it and waits for the reply finds the
 * reply in O(1) whatever else waits in its mailbox.
 */
typedef struct amb_recv_mark {
    uint64_t seq;
} amb_recv_mark;
/* The mark of the mailbox's end now (a zero mark for NULL). Never fails. */
AMB_API amb_recv_mark amb_receive_mark(amb_proc *self);
/* amb_receive_if over the messages that arrived after mark only. Its message
 * is borrowed until the next amb_receive_if_after (of this process, or of a
 * library call it makes that waits: "Borrowing" above), so a request/reply
 * exchange leaves the message of the caller's last amb_receive alone. */
AMB_API int amb_receive_if_after(amb_proc *self, amb_recv_mark mark, amb_match_fn *match,
                                 void *ctx, int64_t timeout_ms, amb_term *out);

/*
 * Aliases (erlang:alias/1 and unalias/1). An alias is a reference that
 * routes messages to the process that made it for as long as it is active:
 * amb_send(alias, msg) delivers msg to the owner; after the owner removes the
 * alias, messages sent to it are dropped, including those already on their
 * way. A message is checked when the owner takes it into its private queue,
 * which any receive, amb_yield, amb_message_queue_len or amb_receive_mark
 * does; messages taken in before the removal stay in the mailbox.
 * A gen_server call sends its request with an alias, so that a reply coming
 * after the call timed out never lands in the caller's mailbox.
 */
/* Flag of amb_alias: the alias goes inactive once one message sent through
 * it has been received (OTP's alias([reply])). */
#define AMB_ALIAS_REPLY 1u
/* A new active alias of the caller in *out, on its heap: 0, AMB_ENOMEM,
 * AMB_EBADARG (unknown flags, NULL out). */
AMB_API int amb_alias(amb_proc *self, unsigned flags, amb_term *out);
/* Removes the caller's alias: 0 when it was active, AMB_ENOTFOUND when it
 * was not (removed, used up, or another process's), AMB_EBADARG for a term
 * that is not an alias. */
AMB_API int amb_unalias(amb_proc *self, amb_term alias);

/* A new reference, unique in this runtime (and, with the node name and
 * creation, across nodes), on the process's heap; AMB_NONE when out of
 * memory or for NULL. */
AMB_API amb_term amb_make_ref(amb_proc *self);

/* Number of messages waiting in the caller's mailbox (0 for NULL). */
AMB_API size_t amb_message_queue_len(amb_proc *self);

/* ---------------------------------------------------------------------------
 * Timers (erlang:send_after/3, cancel_timer/1, read_timer/1)
 * ------------------------------------------------------------------------ */

/* A timer's reference: a value, valid in the runtime that made it. */
typedef uint64_t amb_tref;

/* Sends msg (copied now) to dest after delay_ms milliseconds (0 ..=
 * AMB_TIMEOUT_MAX; the delay is the last input, as every time argument).
 * dest is a pid or a registered name (looked up when the timer fires).
 * *tref (may be NULL) identifies the timer. AMB_EBADARG (a delay out of
 * range, AMB_INFINITY included; a dest that is neither), AMB_ENOTSUP (a pid
 * of another node), AMB_ENOMEM. */
AMB_API int amb_send_after(amb_proc *self, amb_term dest, amb_term msg, int64_t delay_ms,
                           amb_tref *tref);
/* Cancels a timer: 0 and the milliseconds that were left (left_ms may be
 * NULL), or AMB_ENOTFOUND when it already fired or was cancelled, or was
 * aimed at a pid whose process has ended (such a timer dies with its target,
 * as in Erlang): erlang:cancel_timer's false. AMB_EBADARG for a reference
 * no timer of this runtime can have. Any process may cancel any timer. */
AMB_API int amb_cancel_timer(amb_proc *self, amb_tref tref, int64_t *left_ms);
/* Milliseconds left (left_ms may be NULL), or AMB_ENOTFOUND, AMB_EBADARG, as
 * amb_cancel_timer; the timer stays armed. */
AMB_API int amb_read_timer(amb_proc *self, amb_tref tref, int64_t *left_ms);
/* Suspends the caller for ms milliseconds (messages wait; AMB_INFINITY: for
 * ever, as timer:sleep(infinity)). It takes no message, so the caller's
 * borrowed messages stay valid. AMB_EBADARG for a time out of range,
 * AMB_ESTATE from a match function (amb_receive_if). */
AMB_API int amb_sleep(amb_proc *self, int64_t ms);
/* Milliseconds on the runtime's monotonic clock (a point, not a timeout:
 * subtract two of them). Never fails. */
AMB_API int64_t amb_now_ms(void);

/* ---------------------------------------------------------------------------
 * Registered names
 * ------------------------------------------------------------------------ */

/* Registers pid under name (an atom other than undefined). AMB_EEXIST when
 * the name is taken or the process already has a name, AMB_ENOPROC when pid
 * is not alive, AMB_EBADARG for a bad name or a term that is not a pid. The
 * name goes away when the process ends. */
AMB_API int amb_register(amb_proc *self, amb_term name, amb_pid pid);
/* Removes the name: 0, AMB_ENOTFOUND when it is not registered, AMB_EBADARG
 * when it is not an atom. */
AMB_API int amb_unregister(amb_proc *self, amb_term name);
/* The pid registered as name in *out: 0, AMB_ENOTFOUND, AMB_EBADARG (not an
 * atom, NULL out). */
AMB_API int amb_whereis(amb_proc *self, amb_term name, amb_pid *out);
/* Where a send to dest would go now, the one resolution amb_send and
 * gen_server's server references share: a pid of this runtime or an alias
 * as it is (alive or not); an atom, or {Name, Node} with this node's name,
 * the pid registered under Name. AMB_ENOTFOUND when no process has the
 * name; a pid, alias or {Name, Node} of another node as it is when a node
 * runs here (ambitious/node.h), else AMB_ENOTSUP; AMB_EBADARG for any
 * other term or a NULL out. */
AMB_API int amb_dest_resolve(amb_proc *self, amb_term dest, amb_term *out);
/* A list of the registered names, on the caller's heap; AMB_NONE when out of
 * memory or for NULL. */
AMB_API amb_term amb_registered(amb_proc *self);

/* ---------------------------------------------------------------------------
 * process_info
 * ------------------------------------------------------------------------ */

typedef enum amb_proc_status {
    AMB_STATUS_RUNNABLE = 1,
    AMB_STATUS_RUNNING,
    AMB_STATUS_WAITING,
    AMB_STATUS_EXITING,
} amb_proc_status;

typedef struct amb_proc_info {
    amb_proc_status status;
    size_t message_queue_len;
    size_t links;
    size_t monitors;
    amb_term registered_name; /* an atom, or AMB_NONE */
    uint64_t reductions;
    size_t stack_size;            /* stack reserved; a handler process answers
                                     in an activation, so it shows the stack
                                     of that activation (it holds none while
                                     idle) */
    size_t heap_size;             /* bytes of the process's heap (with
                                     term state: and of the messages kept
                                     until the next collection) */
    size_t memory;                /* all bytes the process holds, as OTP's
                                     process_info(P, memory): its block,
                                     stack, heap, state, links, monitors,
                                     aliases, and its messages (those queued
                                     and those it borrows) */
    const void *current_function; /* the body function or handler table */
    bool trap_exit;
} amb_proc_info;

/* process_info comes in two forms. amb_process_info fills a struct of counts
 * (no heap, no term: for monitoring code that polls). amb_process_info_items
 * is OTP's process_info/2: the items asked, as terms on the caller's heap,
 * lists included (links, monitors, messages). Both are answered by the
 * process itself, in order with what was sent to it before (BEAM's way
 * since OTP 21), so counts and lists are exact at that point.
 *
 * A snapshot of pid's state, copied into the caller's *out (the process
 * answers it itself, as BEAM's does, so the counts are exact);
 * current_function is the address of code, never to be freed. AMB_ENOPROC
 * when pid is a pid of this runtime that is not alive, AMB_EBADARG (NULL
 * out, or a term that is not a pid, AMB_NONE among them), AMB_ENOTSUP (a
 * pid of another node), AMB_ENOMEM, AMB_ESTATE (another process's, asked
 * from a match function: amb_receive_if). */
AMB_API int amb_process_info(amb_proc *self, amb_pid pid, amb_proc_info *out);

/*
 * process_info(Pid, Item) and process_info(Pid, [Item]): items is an item
 * atom, and *out gets {Item, Value}; or a list of them, and *out gets
 * [{Item, Value}] in the same order. On the caller's heap (owned by it);
 * messages are copies. The items, with OTP's names and values:
 *   links              [Pid]: the processes linked to pid
 *   monitors           [{process, Pid} | {process, {Name, Node}}]: the
 *                      monitors pid holds (by name for a monitor of a name)
 *   monitored_by       [Pid]: the processes monitoring pid
 *   messages           [Msg]: copies of its queued messages, oldest first
 *   message_queue_len  an integer
 *   memory             bytes, as amb_proc_info.memory
 *   registered_name    an atom, or [] when pid has no name (OTP's)
 *   status             waiting | running | runnable | exiting
 *   reductions         an integer
 *   trap_exit          true | false
 * Lists other than messages are in no particular order (OTP's neither).
 * AMB_ENOPROC when pid is not alive (OTP's undefined), AMB_EBADARG (not a
 * pid, an unknown item, items neither an item nor a proper list of them,
 * NULL out), AMB_ENOTSUP (a pid of another node), AMB_ENOMEM, AMB_ESTATE
 * (another process's, asked from a match function: amb_receive_if).
 */
AMB_API int amb_process_info_items(amb_proc *self, amb_pid pid, amb_term items,
                                   amb_term *out);

/* ---------------------------------------------------------------------------
 * Blocking calls (Erlang's dirty schedulers)
 * ------------------------------------------------------------------------ */

/* Runs fn(arg) on a thread of the runtime's blocking pool while only the
 * calling process waits; the scheduler goes on running other processes.
 * Returns fn's result through *result (may be NULL). If the process is
 * killed meanwhile, fn still finishes and its result is discarded: arg is
 * passed as it is and must stay valid until fn returns (do not point it
 * into the process's heap). fn runs even when the runtime is freed before
 * a pool thread took it (amb_rt_free waits for it), so fn may free what
 * arg holds. AMB_EBADARG (NULL self or fn), AMB_ESTATE (the
 * runtime is not running, or called from a match function: amb_receive_if),
 * AMB_ENOMEM. */
typedef intptr_t amb_blocking_fn(void *arg);
AMB_API int amb_blocking_call(amb_proc *self, amb_blocking_fn *fn, void *arg,
                              intptr_t *result);

#ifdef __cplusplus
}
#endif
#endif /* AMBITIOUS_PROCESS_H */

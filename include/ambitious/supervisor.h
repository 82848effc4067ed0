/*
 * ambitious/supervisor.h - OTP's supervisor and Elixir's DynamicSupervisor:
 * processes that start children, watch them and restart them by rule.
 *
 * Both are gen_servers (gen_server.h): amb_gen_server_stop stops one, and it ends
 * with the reason it stopped with. A supervisor traps exits and links to
 * each child. An exit signal from its parent (the process that started it
 * with amb_sup_start_link) is an orderly shutdown: children are stopped in
 * reverse start order, each by its shutdown rule, then the supervisor ends
 * with the parent's reason. An EXIT from a child drives the restart. Any
 * other EXIT (from a process linked some other way) is ignored, never taken
 * for the parent's.
 *
 * Restart intensity. When more than `intensity` restarts happen within
 * `period_ms`, the supervisor stops all its children (reverse start order)
 * and ends with reason `shutdown`; its own supervisor then sees the EXIT and
 * applies its rules (escalation). A restart it cannot count (out of
 * memory) ends it the same way with reason {error, 'AMB_ENOMEM'}, rather
 * than restart uncounted. In both kinds of supervisor a zero
 * intensity or period means OTP's default (3 restarts within 5000 ms);
 * AMB_NO_RESTARTS is an intensity of zero restarts (the first restart
 * gives up).
 *
 * Stopping a child: brutal_kill sends exit(kill); a timeout sends
 * exit(shutdown), waits up to the timeout for the child to end, then sends
 * exit(kill); infinity sends exit(shutdown) and waits. The supervisor waits
 * for each child's EXIT, so a child that has been told to stop is gone when
 * the operation returns.
 *
 * The management calls are gen_server calls to the supervisor (infinite
 * timeout, as OTP's): AMB_ENOPROC when it does not exist, AMB_EEXIT when it
 * ends meanwhile, AMB_ENOTSUP for a call of the other kind of supervisor
 * (a dynamic supervisor's call to a static one, or the reverse), AMB_ESTATE
 * from a receive's match function (process.h, amb_receive_if). Results
 * built on the caller's heap.
 *
 * Cost. A supervisor keeps its children indexed by id and by pid (as OTP
 * keeps them in a map): starting, restarting, terminating or deleting one
 * child, and handling its EXIT, cost the same whatever the number of
 * children; which_children, count_children and a shutdown are linear (a
 * dynamic supervisor's shutdown O(n log n)). docs/design/supervision.md
 * tells how, with measurements.
 */
#ifndef AMBITIOUS_SUPERVISOR_H
#define AMBITIOUS_SUPERVISOR_H

#include "gen_server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Child specifications
 * ------------------------------------------------------------------------ */

typedef enum amb_restart {
    AMB_PERMANENT = 0, /* always restarted */
    AMB_TRANSIENT,     /* restarted when it ends abnormally (not normal,
                          shutdown or {shutdown, _}) */
    AMB_TEMPORARY,     /* never restarted; its spec is removed when it ends */
} amb_restart;

typedef enum amb_child_type {
    AMB_WORKER = 0,
    AMB_SUPERVISOR,
} amb_child_type;

/* Shutdown rules besides a time in milliseconds (1 ..= AMB_TIMEOUT_MAX):
 * the default (zero: 5000 for a worker, infinity for a supervisor), brutal
 * kill, and infinity. */
#define AMB_SHUTDOWN_DEFAULT     ((int64_t)0)
#define AMB_SHUTDOWN_BRUTAL_KILL ((int64_t)-2)
#define AMB_SHUTDOWN_INFINITY    AMB_INFINITY

/*
 * A child's start function, called in the supervisor process with the
 * spec's arg: starts the child linked to the calling process (the
 * supervisor) and returns its pid in *out. Returns 0, AMB_EIGNORE (nothing
 * started: the child is kept as a spec without a process, as OTP's
 * `ignore`), or a negative code; then *reason (AMB_NONE on entry; a term on
 * the caller's heap) may be set to say why (otherwise the supervisor uses
 * {error, 'AMB_E...'}). A start that fails should leave nothing linked to
 * the supervisor, as amb_gen_server_start_link and amb_sup_start_link do
 * (gen_server.h): the supervisor is the starter of its children.
 */
typedef int amb_child_start_fn(amb_proc *self, void *arg, amb_pid *out, amb_term *reason);

typedef struct amb_child_spec {
    amb_term id; /* any term, unique among a supervisor's children
                    (copied); ignored by a dynamic supervisor */
    amb_child_start_fn *start;
    void *arg; /* passed to start as it is; must stay valid while the
                  supervisor may (re)start the child */
    amb_restart restart;
    int64_t shutdown_ms; /* 1 ..= AMB_TIMEOUT_MAX, or AMB_SHUTDOWN_* */
    amb_child_type type;
} amb_child_spec;

/* The start function for a gen_server child: arg points to an
 * amb_gen_child (borrowed: it must stay valid while the supervisor may
 * start the child). Starts the server with link and opts.name = name;
 * *reason gets init's reason on AMB_EINIT, {already_started, Pid} on
 * AMB_EEXIST. */
typedef struct amb_gen_child {
    const amb_gen_server *cb;
    void *arg;
    amb_term name; /* AMB_NONE or a name as amb_gen_opts.name */
} amb_gen_child;
AMB_API int amb_gen_child_start(amb_proc *self, void *arg, amb_pid *out,
                                amb_term *reason);

/* ---------------------------------------------------------------------------
 * Supervisor
 * ------------------------------------------------------------------------ */

typedef enum amb_sup_strategy {
    AMB_ONE_FOR_ONE = 0, /* restart the child that ended */
    AMB_ONE_FOR_ALL,     /* stop all others (reverse order), restart all */
    AMB_REST_FOR_ONE,    /* stop those started after it (reverse), restart
                            it and them in order */
} amb_sup_strategy;

/* An intensity of zero restarts (0 in an intensity field is the default). */
#define AMB_NO_RESTARTS (-1)

/* Zero in every field is OTP's default: one_for_one, 3 restarts in 5000 ms. */
typedef struct amb_sup_flags {
    amb_sup_strategy strategy;
    int intensity;     /* max restarts: > 0, 0 (default 3) or AMB_NO_RESTARTS */
    int64_t period_ms; /* ... within this many ms: 1 ..= AMB_TIMEOUT_MAX, or
                          0 (default 5000) */
} amb_sup_flags;

typedef struct amb_sup_spec {
    amb_sup_flags flags;
    const amb_child_spec *children; /* copied (each id too); started in this
                                       order */
    size_t nchildren;
} amb_sup_spec;

/*
 * Starts a supervisor linked to the caller, which starts the children in
 * order before this returns; *out (may be NULL) gets its pid. spec and opts
 * (may be NULL) are copied. When a child fails to start, the children
 * already started are stopped (reverse order) and this returns AMB_EINIT
 * with *reason (may be NULL; on the caller's heap) =
 * {shutdown, {failed_to_start_child, Id, Reason}} (a supervisor child that
 * failed nests its own: {shutdown, {failed_to_start_child, Sub,
 * {shutdown, {failed_to_start_child, Id, Reason}}}}). opts->name and
 * opts->timeout_ms as in amb_gen_server_start; opts->link is implied.
 * AMB_EBADARG for a bad spec (NULL start, duplicate ids, a bad strategy,
 * restart, shutdown or type value, an intensity or period out of range);
 * the other errors of amb_gen_server_start (AMB_EEXIST with the holder in
 * *out for a taken name). A failed start leaves no exit signal, for every
 * result (gen_server.h, OTP 26's rule): the supervisor unlinks from the
 * caller before it ends, and a child that failed to start left none at the
 * supervisor. OTP 25 sent the caller {'EXIT', Sup, {shutdown, ...}}.
 */
AMB_API int amb_sup_start_link(amb_proc *self, const amb_sup_spec *spec,
                               const amb_gen_opts *opts, amb_pid *out, amb_term *reason);

/* Adds spec (copied) and starts its child (supervisor:start_child/2): 0 and
 * *out (may be NULL);
 * AMB_EEXIST (already_started: a running child has that id; *out gets it);
 * AMB_EPRESENT (a stopped child has that id); AMB_EIGNORE (start returned
 * ignore: the spec is kept, except a temporary child's, as OTP keeps no
 * spec of a temporary child that does not run); AMB_EINIT (the start
 * failed; nothing kept): *reason (may be NULL; on the caller's heap) gets
 * why, the reason the child's start function gave (or {error, 'AMB_E...'}
 * for its code), as every start function of the library ends in (..., out,
 * reason); AMB_ENOMEM (also when the child's start ran out of memory:
 * *reason {error, 'AMB_ENOMEM'}; nothing kept); AMB_EBADARG for a bad spec. OTP answers {error, {Reason, Child}}
 * here, Child being its internal record of the spec: the C caller holds
 * the spec already, so *reason is Reason alone. The caller is not linked to
 * the child, and a failed start leaves no exit signal at the supervisor
 * either (the child's start function runs there: gen_server.h's rule); OTP
 * 25's supervisor got the child's EXIT and ignored it. Also for
 * amb_sup_restart_child and amb_dynsup_start_child. */
AMB_API int amb_sup_start_child(amb_proc *self, amb_term sup, const amb_child_spec *spec,
                                amb_pid *out, amb_term *reason);
/* Stops the child with that id by its shutdown rule; the spec stays (a
 * temporary child's spec is removed). 0 also when it was not running;
 * AMB_ENOTFOUND. */
AMB_API int amb_sup_terminate_child(amb_proc *self, amb_term sup, amb_term id);
/* Starts again a child whose spec is kept but which is not running: 0 and
 * *out (may be NULL); AMB_ERUNNING, AMB_ERESTARTING, AMB_ENOTFOUND,
 * AMB_EIGNORE, AMB_EINIT with *reason (may be NULL; on the caller's heap:
 * OTP's {error, Reason}), AMB_ENOMEM (as amb_sup_start_child; no exit signal left, as amb_sup_start_child's).
 * Not counted toward the intensity (OTP). */
AMB_API int amb_sup_restart_child(amb_proc *self, amb_term sup, amb_term id, amb_pid *out,
                                  amb_term *reason);
/* Removes the spec of a child that is not running: 0; AMB_ERUNNING,
 * AMB_ERESTARTING, AMB_ENOTFOUND. */
AMB_API int amb_sup_delete_child(amb_proc *self, amb_term sup, amb_term id);

/* *out = [{Id, Child, Type, Modules}], the newest child first (reverse start
 * order, as supervisor:which_children: a child added with start_child comes
 * first, a restarted or stopped child keeps its place), on the caller's
 * heap: Child is the pid, `restarting` or `undefined`; Type `worker` or
 * `supervisor`; Modules is [] (C has no modules). Also for a dynamic
 * supervisor, in the same order (Id is `undefined` there; OTP's
 * simple_one_for_one lists its map in no order to rely on). O(children). */
AMB_API int amb_sup_which_children(amb_proc *self, amb_term sup, amb_term *out);

typedef struct amb_sup_counts {
    size_t specs;       /* child specs (dynamic: children) */
    size_t active;      /* children running now: static, those alive (OTP
                           asks is_process_alive, so a child whose EXIT the
                           supervisor has not handled yet is not active);
                           dynamic, those not restarting (Elixir's) */
    size_t supervisors; /* specs of type supervisor, running or not */
    size_t workers;     /* specs of type worker, running or not */
} amb_sup_counts;
/* supervisor:count_children into the caller's *out. Also for a dynamic
 * supervisor. O(children). */
AMB_API int amb_sup_count_children(amb_proc *self, amb_term sup, amb_sup_counts *out);

/* ---------------------------------------------------------------------------
 * Dynamic supervisor (Elixir's DynamicSupervisor)
 *
 * Starts with no children; amb_dynsup_start_child asks the supervisor
 * process to start one (the child is linked to the supervisor, never to
 * the caller). Children are identified by pid. Restart rules and intensity
 * as above (strategy is one_for_one). At shutdown all children are told to
 * stop at once and the supervisor waits for each by its shutdown rule.
 * ------------------------------------------------------------------------ */

/* Zero in every field means its default. */
typedef struct amb_dynsup_opts {
    int intensity;       /* as amb_sup_flags.intensity: default 3,
                            AMB_NO_RESTARTS for none */
    int64_t period_ms;   /* as amb_sup_flags.period_ms: default 5000 */
    size_t max_children; /* 0: no limit */
} amb_dynsup_opts;

/* Starts a dynamic supervisor linked to the caller; *out (may be NULL) gets
 * its pid. opts and gopts may be NULL (both copied; gopts: name and
 * timeout_ms, link is implied); *reason (may be NULL) as in
 * amb_sup_start_link. AMB_EBADARG for an intensity or period out of range;
 * the errors of amb_gen_server_start (AMB_EEXIST with the holder in *out
 * for a taken name), each leaving no exit signal at the caller (OTP 26's
 * rule, gen_server.h). */
AMB_API int amb_dynsup_start_link(amb_proc *self, const amb_dynsup_opts *opts,
                                  const amb_gen_opts *gopts, amb_pid *out,
                                  amb_term *reason);
/* Starts a child from spec (copied; spec->id is ignored). 0 and *out (may be
 * NULL); AMB_EIGNORE (nothing kept); AMB_EINIT with *reason (may be NULL;
 * on the caller's heap: Elixir's {:error, reason}); AMB_ENOMEM (as
 * amb_sup_start_child); AMB_ESYSLIMIT when
 * max_children run already; AMB_EBADARG for a bad spec. A failed start
 * leaves no exit signal, as amb_sup_start_child's. */
AMB_API int amb_dynsup_start_child(amb_proc *self, amb_term sup,
                                   const amb_child_spec *spec, amb_pid *out,
                                   amb_term *reason);
/* Stops the child by its shutdown rule and forgets it: 0 or AMB_ENOTFOUND
 * (also for a child being restarted: it has no pid); AMB_EBADARG when child
 * is not a pid. */
AMB_API int amb_dynsup_terminate_child(amb_proc *self, amb_term sup, amb_pid child);

#ifdef __cplusplus
}
#endif
#endif /* AMBITIOUS_SUPERVISOR_H */

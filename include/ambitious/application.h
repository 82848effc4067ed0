/*
 * ambitious/application.h - OTP applications: named units of a program that
 * start a supervision tree, depend on other applications and carry an
 * environment of key/term pairs.
 *
 * Each runtime has one application controller, a gen_server registered as
 * `application_controller`, started by the first call below that needs it.
 * It keeps what is loaded and what runs. An application is described by an
 * amb_app (static const: the controller keeps the pointer). Starting it
 * starts its dependencies first (each at most once, in dependency order);
 * a dependency cycle is AMB_EINIT with the cycle named. Its start function
 * runs in the application's master process and returns the top supervisor,
 * which the master links to. Stopping stops the top supervisor (shutdown,
 * infinity) and then calls the stop callback; dependencies stay (OTP).
 *
 * When an application's top supervisor ends by itself with reason R, the
 * restart type decides, as in OTP:
 *   permanent  every other application is stopped and the runtime halts
 *              (amb_rt_halt with AMB_EAPPEXIT, which amb_rt_run and
 *              amb_main then return: erl's "Kernel pid terminated", exit
 *              status 1): the program cannot go on without it;
 *   transient  the same when R is anything but normal (a top supervisor
 *              that gives up ends with shutdown: that is a failure for an
 *              application, as in OTP), else it is only reported;
 *   temporary  only reported (a notice).
 * Names are application names as C strings (atoms inside), read during the
 * call only. Every call below is made from a process (it calls the
 * controller); besides its own errors each may return AMB_EBADARG (a NULL
 * self or name) and AMB_ENOMEM.
 *
 * Start and stop run one at a time, in the order asked; meanwhile the
 * controller answers every other call, so a start function (or the init of
 * a process in its tree) may read its environment. A start or stop
 * callback that itself calls amb_app_start, amb_app_stop or
 * amb_app_shutdown gets AMB_EDEADLK (it would wait for its own end). A
 * process deeper in a starting tree (a worker's init) that does so waits
 * for the start, which waits for that init: a deadlock the controller
 * cannot see (OTP starts different applications concurrently; here they are
 * serialised). Name such applications in `deps` instead.
 * The controller runs until amb_app_shutdown (or the runtime stops).
 * docs/design/applications.md has the details.
 */
#ifndef AMBITIOUS_APPLICATION_H
#define AMBITIOUS_APPLICATION_H

#include "supervisor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct amb_app {
    const char *name;        /* unique; an atom's worth of UTF-8 */
    const char *description; /* may be NULL */
    const char *vsn;         /* may be NULL */
    const char *const *deps; /* names started before this one, NULL-ended;
                                may be NULL */
    /* Default environment in Erlang term syntax: a list of {Key, Value}
     * (e.g. "[{port, 8080}, {mode, fast}]"); may be NULL. */
    const char *env;
    /* Starts the application's top supervisor, linked to the caller (the
     * application master), e.g. with amb_sup_start_link. 0 and *top, or a
     * negative code: the start then fails with AMB_EINIT and Reason is
     * *reason when start set it (AMB_NONE on entry; a term on the caller's
     * heap, e.g. the reason of amb_sup_start_link), else {error,
     * 'AMB_E...'}; a start that ends the master: its exit reason. */
    int (*start)(amb_proc *self, void *arg, amb_pid *top, amb_term *reason);
    /* Called after the tree has stopped (may be NULL), in the master: on
     * amb_app_stop, and also when the tree ended by itself (as OTP). */
    void (*stop)(amb_proc *self, void *arg);
    void *arg;
} amb_app;

typedef enum amb_app_type {
    AMB_APP_TEMPORARY = 0,
    AMB_APP_TRANSIENT,
    AMB_APP_PERMANENT,
} amb_app_type;

/* Makes app known to the runtime (application:load). app is borrowed for
 * the runtime's life (static const: the controller keeps the pointer and
 * the strings it points to). AMB_EEXIST when an application of that name is
 * loaded already, AMB_EBADARG (NULL name or start, env that is not a list
 * of {Atom, Term}: AMB_ESYNTAX for bad text). */
AMB_API int amb_app_load(amb_proc *self, const amb_app *app);

/*
 * Reads a configuration file in sys.config form: one term
 * [{App, [{Key, Value}, ...]}, ...] ending with a dot. Its values override
 * the defaults of the applications named (loaded now or later), as a
 * config file given to erl does (the values are copied; path is read during
 * the call only). AMB_EIO (cannot read), AMB_ESYNTAX, AMB_ETYPE (not of that
 * shape).
 */
AMB_API int amb_app_load_config(amb_proc *self, const char *path);

/* Starts the application and, first, each dependency not yet running
 * (with the same type, as application:ensure_all_started).
 *   0            started (0 also when it was running already)
 *   AMB_ENOTFOUND an application (it or a dependency) is not loaded
 *   AMB_EINIT    a start function failed, or the dependencies form a cycle;
 *                *reason (may be NULL; caller's heap) says which:
 *                {cycle, [A, B, A]} or {App, Reason}. Applications this
 *                call started are stopped again.
 * No start leaves an exit signal at the caller: it is linked to nothing it
 * starts (the application master, started by the controller, is), as in
 * OTP 25 and 26; and a top supervisor whose start fails leaves none at the
 * master either (supervisor.h). */
AMB_API int amb_app_start(amb_proc *self, const char *name, amb_app_type type,
                          amb_term *reason);
/* Stops a running application: 0, AMB_ENOTFOUND when it is not running
 * (its type does not matter: a stop asked for is no failure). */
AMB_API int amb_app_stop(amb_proc *self, const char *name);

/* Stops every running application in reverse start order, then ends the
 * application controller (init:stop() without stopping the runtime), so a
 * program under amb_main can end: the runtime runs until every process has
 * ended, and the controller is a process. A later amb_app_* call starts a
 * fresh controller with nothing loaded. 0 also when no controller runs. */
AMB_API int amb_app_shutdown(amb_proc *self);

/* *out = [{Name, Description, Vsn}] of the running applications, most recently
 * started first (application:which_applications), on the caller's heap;
 * Name an atom, the others strings (charlists) as OTP. */
AMB_API int amb_app_which_applications(amb_proc *self, amb_term *out);

/* The value of key (an atom) in the application's environment, copied into
 * *out on the caller's heap: 0, AMB_ENOTFOUND (no such key or application),
 * AMB_EBADARG (key not an atom, NULL out). */
AMB_API int amb_app_get_env(amb_proc *self, const char *app, amb_term key, amb_term *out);
/* Sets key to value (copied) in the application's environment: 0,
 * AMB_ENOTFOUND (the application is not loaded), AMB_EBADARG (key not an
 * atom). The environment keeps one copy per key however often it is set. */
AMB_API int amb_app_set_env(amb_proc *self, const char *app, amb_term key,
                            amb_term value);

#ifdef __cplusplus
}
#endif
#endif /* AMBITIOUS_APPLICATION_H */

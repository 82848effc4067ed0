/*
 * application/app.h - private contracts between the files of the
 * application behaviour (docs/design/applications.md):
 *
 *   deps.c        the start order of an application and its dependencies
 *                 (a pure function over a lookup callback: unit-tested);
 *   config.c      environment and sys.config terms: parse, validate, merge;
 *   env.c         one application's environment on a heap of its own;
 *   master.c      the application master process;
 *   controller.c  the application_controller gen_server: the table of
 *                 applications, environments, quick requests (ctl.h);
 *   jobs.c        its queue of starts and stops, the masters' reports;
 *   api.c         the public amb_app_* calls (requests to the controller).
 *
 * Everything here uses only the public API (ambitious.h).
 */
#ifndef AMB_APPLICATION_APP_H
#define AMB_APPLICATION_APP_H

#include <ambitious.h>

/* The controller's registered name and the tag of the messages between the
 * controller and the masters. */
#define AMB__APP_CTL_NAME "application_controller"
#define AMB__APP_TAG      "$amb_app"

/* ---------------------------------------------------------------------------
 * deps.c
 * ------------------------------------------------------------------------ */

typedef struct amb__deps_src {
    /* The dependencies of the application called name (NULL-ended; *deps
     * may be set to NULL for none): 0, or AMB_ENOTFOUND when no application
     * of that name is known. */
    int (*deps_of)(void *ctx, const char *name, const char *const **deps);
    void *ctx;
} amb__deps_src;

typedef struct amb__deps_result {
    const char **order; /* 0: every application to start, dependencies
                           first and root last, each once */
    size_t norder;
    const char **cycle; /* AMB_EINIT: [A, B, ..., A], the cycle found */
    size_t ncycle;
    const char *missing; /* AMB_ENOTFOUND: the unknown application */
} amb__deps_result;

/* Orders root and its dependencies for starting (a depth-first topological
 * order, dependencies in the order they are listed). 0, AMB_EINIT (a cycle:
 * out->cycle), AMB_ENOTFOUND (out->missing), AMB_ENOMEM, AMB_EBADARG. The
 * names are borrowed from src. The arrays are owned: free them with
 * amb__deps_result_free, whatever the result. */
int amb__deps_order(const amb__deps_src *src, const char *root, amb__deps_result *out);
void amb__deps_result_free(amb__deps_result *r);

/* ---------------------------------------------------------------------------
 * config.c (names: amb__config_*)
 * ------------------------------------------------------------------------ */

/* True when t is a proper list of {Atom, Term}: an environment. */
bool amb__config_is_env(amb_term t);
/* True when t is [{App, Env}] with App an atom and Env an environment. */
bool amb__config_is_config(amb_term t);
/* The value of key in env: 0 and *value (borrowed from env's heap), or
 * AMB_ENOTFOUND. */
int amb__config_lookup(amb_term env, amb_term key, amb_term *value);
/* A new environment on heap: base with every key of over set to over's
 * value (keys of base keep their order; new keys follow). Both inputs must
 * be environments. AMB_ENOMEM. */
int amb__config_env_merge(amb_heap *heap, amb_term base, amb_term over, amb_term *out);
/* A new config on heap: base with over's entries merged in, application by
 * application (amb__config_env_merge). AMB_ENOMEM. */
int amb__config_merge(amb_heap *heap, amb_term base, amb_term over, amb_term *out);
/* Parses a sys.config text onto heap and checks its shape: 0, AMB_ESYNTAX,
 * AMB_ETYPE, AMB_EDEPTH, AMB_ESYSLIMIT, AMB_ENOMEM. */
int amb__config_parse(amb_heap *heap, const char *text, size_t len, amb_term *out);
/* Reads the whole file at path into a new buffer (free with amb_free),
 * NUL-terminated: 0, AMB_EIO, AMB_ENOMEM, AMB_ESYSLIMIT (over 64 MiB). */
int amb__config_read_file(const char *path, char **text, size_t *len);

/* ---------------------------------------------------------------------------
 * env.c: one application's environment. The list lives alone on its heap,
 * so replacing it (set_env, a config) builds the new list on a fresh heap
 * and frees the old one: memory stays proportional to the environment,
 * however often it changes.
 * ------------------------------------------------------------------------ */

typedef struct amb__env {
    amb_heap *heap; /* owned; NULL while the environment is [] */
    amb_term list;  /* an environment on heap, or [] */
} amb__env;

/* Parses text (an amb_app.env, may be NULL: []) into env, then applies
 * over (an environment or AMB_NONE). AMB_ESYNTAX (bad text), AMB_EBADARG
 * (not a list of {atom, term}), AMB_ENOMEM. On error env is left empty. */
int amb__env_init(amb__env *env, const char *text, amb_term over);
/* Replaces env by env merged with over (an environment). AMB_ENOMEM (env
 * unchanged). */
int amb__env_apply(amb__env *env, amb_term over);
/* The value of key, borrowed until the next change: 0 or AMB_ENOTFOUND. */
int amb__env_get(const amb__env *env, amb_term key, amb_term *value);
void amb__env_free(amb__env *env);

/* ---------------------------------------------------------------------------
 * master.c
 * ------------------------------------------------------------------------ */

/* The body of an application master: arg is the const amb_app. It runs
 * app->start, reports to the controller (messages tagged AMB__APP_TAG:
 * {Tag, started, Master, Top}, {Tag, failed, Master, Reason},
 * {Tag, exited, Master, Reason}, {Tag, stopped, Master}), and stops the
 * tree on {Tag, stop}. */
void amb__master_main(amb_proc *self, void *arg);

/* ---------------------------------------------------------------------------
 * controller.c
 * ------------------------------------------------------------------------ */

/* The controller's callback table (registered as AMB__APP_CTL_NAME). */
extern const amb_gen_server amb__controller;

#endif /* AMB_APPLICATION_APP_H */

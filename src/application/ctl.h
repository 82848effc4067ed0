/*
 * application/ctl.h - the application controller's state, shared by
 * controller.c (the gen_server: table, environments, quick requests) and
 * jobs.c (the queue of starts and stops, and the masters' reports).
 * Both run only in the controller process: nothing here is shared between
 * threads.
 *
 * Invariants (docs/design/applications.md):
 *   - an entry is STARTING or STOPPING only while the head job waits for it
 *     (job->waiting), so two jobs never act on one application at once;
 *   - entry->master means something exactly while the status is not
 *     LOADED; a master's last report (or its DOWN, when it was killed
 *     first) returns the entry to LOADED, and anything later from that pid
 *     finds no entry and is ignored (pids are never reused);
 *   - every term kept across callbacks lives on a heap the controller owns
 *     (an environment's, the config's, a job's); the process heap is
 *     scratch that gen_server drops after each callback.
 */
#ifndef AMB_APPLICATION_CTL_H
#define AMB_APPLICATION_CTL_H

#include "application/app.h"

#define NONE_IDX SIZE_MAX

typedef enum app_status {
    APP_LOADED = 0,
    APP_STARTING,
    APP_RUNNING,
    APP_STOPPING,
} app_status;

typedef struct entry {
    const amb_app *app;
    amb_term name; /* atom */
    amb__env env;
    app_status status;
    amb_app_type type;
    amb_pid master; /* AMB_NONE while LOADED */
    bool self_exit; /* STOPPING because its tree ended by itself: the master
                       runs the stop callback, then reports `exited` */
    uint64_t seq;   /* start order, for which_applications and HALT */
} entry;

typedef enum job_kind { JOB_START, JOB_STOP, JOB_HALT } job_kind;

typedef struct job {
    struct job *next;
    job_kind kind;
    amb_heap *heap; /* from and reason */
    amb_term from;  /* the caller to answer; AMB_NONE for HALT */
    amb_term name;  /* START, STOP: the application asked for */
    amb_app_type type;
    bool begun, rolling_back;
    bool end_controller; /* HALT asked by amb_app_shutdown: end the
                            controller, not the runtime */
    size_t *plan;        /* entry indices: to start, or to stop, in order */
    size_t nplan, pos;
    size_t *started; /* START: what this job started, in order */
    size_t nstarted;
    size_t waiting; /* the entry whose master we wait for, or NONE_IDX */
    int rc;
    amb_term reason; /* AMB_EINIT: on heap */
} job;

typedef struct ctl {
    entry *apps;
    size_t napps, cap;
    amb_heap *config_heap;
    amb_term config; /* [{App, Env}] from amb_app_load_config */
    job *jobs;       /* the queue; the head runs */
    uint64_t seq;
    bool halting; /* a permanent application ended: starts are refused */
    bool ending;  /* amb_app_shutdown is done: the controller ends */
} ctl;

static inline size_t find_app(const ctl *c, amb_term name)
{
    for (size_t i = 0; i < c->napps; i++)
        if (c->apps[i].name == name)
            return i;
    return NONE_IDX;
}

static inline size_t find_master(const ctl *c, amb_pid m)
{
    for (size_t i = 0; i < c->napps; i++)
        if (c->apps[i].status != APP_LOADED && c->apps[i].master == m)
            return i;
    return NONE_IDX;
}

/* ---------------------------------------------------------------------------
 * jobs.c
 * ------------------------------------------------------------------------ */

/* Queues a start, stop or shutdown (JOB_HALT) asked by caller (its pid)
 * with from (copied), and runs the queue. 0: the job will answer from;
 * else the code to answer now (AMB_EDEADLK, AMB_ENOMEM). */
int amb__jobs_queue(amb_proc *self, ctl *c, job_kind kind, amb_term from, amb_pid caller,
                    amb_term name, amb_app_type type);
/* Handles a message that is a master's report or a DOWN, and runs the
 * queue. Other messages are ignored. */
void amb__jobs_info(amb_proc *self, ctl *c, amb_term msg);
/* True when amb_app_shutdown has finished and the controller must end now;
 * the jobs queued behind it have then been answered AMB_ECLOSED. */
bool amb__jobs_ending(amb_proc *self, ctl *c);
/* Frees every queued job (the controller is gone). */
void amb__jobs_free(ctl *c);
/* The running applications' indices, oldest first (a new array: free with
 * amb_free), or NULL when out of memory. */
size_t *amb__jobs_running(const ctl *c, size_t *n);

#endif /* AMB_APPLICATION_CTL_H */

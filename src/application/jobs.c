/*
 * jobs.c - the controller's queue of starts and stops, and what it does
 * with the masters' reports.
 *
 * Starting and stopping take time (a start function may take seconds and
 * may itself ask the controller for its environment), so they are jobs:
 * the caller's `from` is kept, the controller goes on serving other calls,
 * and the reply is sent when the job is done (amb_gen_server_reply). The
 * controller never waits for another process.
 *
 * Jobs run one at a time, in arrival order (the head of the queue):
 *   START  order the application and its dependencies (deps.c), then start
 *          each one not running: spawn its master, wait for its report.
 *          On a failure, stop again (reverse order) what this job started
 *          ("rollback"), then reply AMB_EINIT with {App, Reason}.
 *   STOP   tell the master to stop, wait for its report.
 *   HALT   stop every running application, most recent first; then, for
 *          amb_app_shutdown, answer and end the controller, or, when a
 *          permanent (or abnormally ended transient) application's tree
 *          ended, amb_rt_stop. The latter goes right behind the running
 *          job, and starts asked for afterwards fail with AMB_ECLOSED.
 * ctl.h states the invariants.
 */
#include <string.h>

#include "application/ctl.h"

/* For an application only `normal` is a normal end (OTP's application
 * docs: a transient application that ends with any other reason stops the
 * node). A top supervisor that gives up ends with `shutdown`, and that is
 * exactly the failure a transient application must not survive. */
static bool reason_is_normal(amb_term r)
{
    return r == AMB_ATOM_NORMAL;
}

static int deps_of(void *ctx, const char *name, const char *const **deps)
{
    const ctl *c = ctx;
    for (size_t i = 0; i < c->napps; i++) {
        if (strcmp(c->apps[i].app->name, name) == 0) {
            *deps = c->apps[i].app->deps;
            return 0;
        }
    }
    return AMB_ENOTFOUND;
}

static void job_free(job *j)
{
    amb_heap_free(j->heap);
    amb_free(j->plan);
    amb_free(j->started);
    amb_free(j);
}

/* The running applications' indices, oldest first (ascending seq). An
 * insertion sort: applications number in the tens. */
size_t *amb__jobs_running(const ctl *c, size_t *n)
{
    size_t *ix = amb_malloc((c->napps ? c->napps : 1) * sizeof *ix);
    *n = 0;
    if (ix == NULL)
        return NULL;
    for (size_t i = 0; i < c->napps; i++) {
        if (c->apps[i].status != APP_RUNNING)
            continue;
        size_t k = (*n)++;
        for (; k > 0 && c->apps[ix[k - 1]].seq > c->apps[i].seq; k--)
            ix[k] = ix[k - 1];
        ix[k] = i;
    }
    return ix;
}

static void job_fail(job *j, int rc, amb_term reason)
{
    if (j->rc != 0)
        return; /* the first failure is the one reported */
    j->rc = rc;
    if (reason != AMB_NONE && amb_term_copy(j->heap, reason, &j->reason) != 0)
        j->reason = AMB_ATOM_UNDEFINED;
}

/* Reverses the START job's direction: stop what it started, newest first. */
static void begin_rollback(job *j)
{
    j->rolling_back = true;
    for (size_t k = 0; k < j->nstarted; k++)
        j->plan[k] = j->started[j->nstarted - 1 - k];
    j->nplan = j->nstarted;
    j->pos = 0;
}

static int begin_start(amb_proc *self, ctl *c, job *j)
{
    if (c->halting)
        return AMB_ECLOSED;
    const char *root = amb_atom_name(j->name, NULL);
    amb__deps_src src = {deps_of, c};
    amb__deps_result r;
    int rc = amb__deps_order(&src, root, &r);
    if (rc == AMB_EINIT) {
        amb_heap *h = amb_proc_heap(self);
        amb_term list = AMB_NIL;
        for (size_t k = r.ncycle; k-- > 0;)
            list = amb_cons(h, amb_atom(r.cycle[k]), list);
        job_fail(j, rc, AMB_TUPLE(h, amb_atom("cycle"), list));
    }
    if (rc == 0) {
        /* plan is also the rollback list later: nstarted <= norder. */
        j->plan = amb_malloc(r.norder * sizeof *j->plan);
        j->started = amb_malloc(r.norder * sizeof *j->started);
        if (j->plan == NULL || j->started == NULL)
            rc = AMB_ENOMEM;
        for (size_t k = 0; rc == 0 && k < r.norder; k++)
            j->plan[k] = find_app(c, amb_atom(r.order[k]));
        j->nplan = r.norder;
    }
    amb__deps_result_free(&r);
    return rc;
}

static int begin_stop(ctl *c, job *j)
{
    size_t i = find_app(c, j->name);
    if (i == NONE_IDX || c->apps[i].status != APP_RUNNING)
        return AMB_ENOTFOUND;
    if ((j->plan = amb_malloc(sizeof *j->plan)) == NULL)
        return AMB_ENOMEM;
    j->plan[0] = i;
    j->nplan = 1;
    return 0;
}

static int begin_halt(ctl *c, job *j)
{
    size_t n = 0;
    size_t *ix = amb__jobs_running(c, &n);
    if (ix == NULL)
        return AMB_ENOMEM;
    for (size_t k = 0; k < n / 2; k++) { /* newest first */
        size_t t = ix[k];
        ix[k] = ix[n - 1 - k];
        ix[n - 1 - k] = t;
    }
    j->plan = ix;
    j->nplan = n;
    return 0;
}

static int spawn_master(amb_proc *self, entry *e)
{
    amb_spawn_opts o = {0};
    o.monitor = true; /* a master killed from outside is seen as a DOWN */
    return amb_spawn_opt(self, amb__master_main, (void *)e->app, &o, &e->master, NULL);
}

/* Moves the head job on until it must wait or is done: true when done. */
static bool job_advance(amb_proc *self, ctl *c, job *j)
{
    if (!j->begun) {
        j->begun = true;
        int rc = j->kind == JOB_START  ? begin_start(self, c, j)
                 : j->kind == JOB_STOP ? begin_stop(c, j)
                                       : begin_halt(c, j);
        if (rc != 0) {
            job_fail(j, rc, AMB_NONE);
            return true;
        }
    }
    if (j->kind == JOB_START && !j->rolling_back) {
        for (; j->pos < j->nplan; j->pos++) {
            size_t i = j->plan[j->pos];
            entry *e = &c->apps[i];
            if (e->status == APP_RUNNING)
                continue;
            int rc = spawn_master(self, e);
            if (rc == 0) {
                e->status = APP_STARTING;
                e->type = j->type;
                j->waiting = i;
                return false;
            }
            amb_heap *h = amb_proc_heap(self);
            job_fail(j, AMB_EINIT,
                     AMB_TUPLE(h, e->name,
                               AMB_TUPLE(h, AMB_ATOM_ERROR, amb_atom(amb_err_name(rc)))));
            begin_rollback(j);
            break;
        }
        if (!j->rolling_back)
            return true;
    }
    /* Stopping: STOP, HALT and a START's rollback. */
    for (; j->pos < j->nplan; j->pos++) {
        size_t i = j->plan[j->pos];
        entry *e = &c->apps[i];
        if (e->status != APP_RUNNING)
            continue; /* its tree ended meanwhile */
        amb_heap *h = amb_proc_heap(self);
        amb_send(self, e->master, AMB_TUPLE(h, amb_atom(AMB__APP_TAG), AMB_ATOM_STOP));
        e->status = APP_STOPPING;
        j->waiting = i;
        return false;
    }
    return true;
}

static void job_finish(amb_proc *self, ctl *c, job *j)
{
    if (j->kind == JOB_HALT && j->end_controller) {
        c->ending = true;
    } else if (j->kind == JOB_HALT) {
        amb_log(self, AMB_LOG_NOTICE,
                "application_controller: all applications "
                "stopped; stopping the runtime");
        amb_rt_stop(amb_proc_rt(self));
        return;
    }
    if (j->from == AMB_NONE)
        return;
    amb_heap *h = amb_proc_heap(self);
    amb_term rc = amb_int(NULL, j->rc);
    amb_term reply = j->rc == AMB_EINIT ? AMB_TUPLE(h, rc, j->reason) : rc;
    amb_gen_server_reply(self, j->from, reply != AMB_NONE ? reply : rc);
}

static void jobs_run(amb_proc *self, ctl *c)
{
    while (!c->ending && c->jobs != NULL && c->jobs->waiting == NONE_IDX) {
        job *j = c->jobs;
        if (!job_advance(self, c, j))
            return;
        c->jobs = j->next;
        job_finish(self, c, j);
        job_free(j);
    }
}

/* Once amb_app_shutdown is done, the jobs queued behind it are answered
 * AMB_ECLOSED (a fresh controller would not know their applications
 * either) and the controller ends. */
bool amb__jobs_ending(amb_proc *self, ctl *c)
{
    if (!c->ending)
        return false;
    while (c->jobs != NULL) {
        job *j = c->jobs;
        c->jobs = j->next;
        j->kind = JOB_STOP; /* answered like one */
        j->rc = AMB_ECLOSED;
        job_finish(self, c, j);
        job_free(j);
    }
    return true;
}

static job *job_new(amb_proc *self, job_kind kind, amb_term from, amb_term name,
                    amb_app_type type)
{
    (void)self;
    job *j = amb_malloc(sizeof *j);
    if (j == NULL)
        return NULL;
    *j = (job){.kind = kind,
               .from = AMB_NONE,
               .name = name,
               .type = type,
               .waiting = NONE_IDX,
               .reason = AMB_NONE};
    if (amb_heap_new(&j->heap) != 0 ||
        (from != AMB_NONE && amb_term_copy(j->heap, from, &j->from) != 0)) {
        job_free(j);
        return NULL;
    }
    return j;
}

static void enqueue(ctl *c, job *j)
{
    job **p = &c->jobs;
    while (*p != NULL)
        p = &(*p)->next;
    *p = j;
}

/* HALT goes right behind the job that is running (which cannot be
 * interrupted while it waits for a master), ahead of anything queued. */
static void enqueue_halt(amb_proc *self, ctl *c)
{
    if (c->halting)
        return;
    c->halting = true;
    job *j = job_new(self, JOB_HALT, AMB_NONE, AMB_NONE, AMB_APP_TEMPORARY);
    if (j == NULL) {
        /* Out of memory while the program must stop: stop without the
         * orderly shutdown rather than not at all. */
        amb_rt_stop(amb_proc_rt(self));
        return;
    }
    if (c->jobs != NULL && c->jobs->begun) {
        j->next = c->jobs->next;
        c->jobs->next = j;
    } else {
        j->next = c->jobs;
        c->jobs = j;
    }
}

/* ---------------------------------------------------------------------------
 * Reports from masters
 * ------------------------------------------------------------------------ */

static const char *type_name(amb_app_type t)
{
    return t == AMB_APP_PERMANENT   ? "permanent"
           : t == AMB_APP_TRANSIENT ? "transient"
                                    : "temporary";
}

/* A running application's tree ended by itself: OTP's rules. */
static void judge_exit(amb_proc *self, ctl *c, entry *e, amb_term reason)
{
    bool normal = reason_is_normal(reason);
    bool halt = e->type == AMB_APP_PERMANENT || (e->type == AMB_APP_TRANSIENT && !normal);
    char text[256];
    /* The pretty style, for a human; a cut text is fine here. */
    amb_print_ex(reason, AMB_PRINT_PRETTY, text, sizeof text, NULL);
    amb_log(self, halt ? AMB_LOG_ERROR : AMB_LOG_NOTICE,
            "application: %s exited: %s, type: %s%s", amb_atom_name(e->name, NULL), text,
            type_name(e->type), halt ? "; stopping the runtime" : "");
    if (halt)
        enqueue_halt(self, c);
}

static void on_started(ctl *c, size_t i)
{
    entry *e = &c->apps[i];
    if (e->status != APP_STARTING)
        return;
    e->status = APP_RUNNING;
    e->seq = ++c->seq;
    job *j = c->jobs;
    if (j != NULL && j->waiting == i) {
        j->waiting = NONE_IDX;
        j->started[j->nstarted++] = i;
        j->pos++;
    }
}

/* The master of entry i has ended (or is about to: its last report). */
static void on_ended(amb_proc *self, ctl *c, size_t i, amb_term reason)
{
    entry *e = &c->apps[i];
    app_status was = e->status;
    e->status = APP_LOADED;
    e->master = AMB_NONE;
    job *j = c->jobs;
    bool awaited = j != NULL && j->waiting == i;
    if (awaited)
        j->waiting = NONE_IDX;
    if (was == APP_STARTING && awaited) {
        amb_heap *h = amb_proc_heap(self);
        job_fail(j, AMB_EINIT, AMB_TUPLE(h, e->name, reason));
        begin_rollback(j);
    } else if (was == APP_STOPPING && awaited) {
        j->pos++;
    } else if (was == APP_RUNNING || (was == APP_STOPPING && e->self_exit && !awaited)) {
        judge_exit(self, c, e, reason);
    }
    e->self_exit = false;
}

static void handle_report(amb_proc *self, ctl *c, amb_term msg)
{
    amb_term kind = amb_tuple_elem(msg, 1);
    size_t i = find_master(c, amb_tuple_elem(msg, 2));
    if (i == NONE_IDX)
        return;
    size_t arity = amb_tuple_arity(msg);
    amb_term extra = arity == 4 ? amb_tuple_elem(msg, 3) : AMB_NONE;
    if (kind == amb_atom("started") && arity == 4) {
        on_started(c, i);
    } else if (kind == amb_atom("exiting")) {
        /* The tree ended by itself; the master runs the stop callback now:
         * a call from it is a deadlock (AMB_EDEADLK), as during a start. */
        if (c->apps[i].status == APP_RUNNING) {
            c->apps[i].status = APP_STOPPING;
            c->apps[i].self_exit = true;
        }
    } else if ((kind == amb_atom("failed") || kind == amb_atom("exited")) && arity == 4) {
        on_ended(self, c, i, extra);
    } else if (kind == amb_atom("stopped")) {
        on_ended(self, c, i, AMB_ATOM_SHUTDOWN);
    }
}

/* ---------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------ */

/* A master that is running a start or stop callback is what the running
 * job waits for: a job of its own could only run after that one, so it
 * would wait forever. */
int amb__jobs_queue(amb_proc *self, ctl *c, job_kind kind, amb_term from, amb_pid caller,
                    amb_term name, amb_app_type type)
{
    size_t m = find_master(c, caller);
    if (m != NONE_IDX && c->apps[m].status != APP_RUNNING)
        return AMB_EDEADLK;
    job *j = job_new(self, kind, from, name, type);
    if (j == NULL)
        return AMB_ENOMEM;
    j->end_controller = kind == JOB_HALT;
    enqueue(c, j);
    jobs_run(self, c);
    return 0;
}

void amb__jobs_info(amb_proc *self, ctl *c, amb_term msg)
{
    size_t n = amb_tuple_arity(msg);
    if (n >= 3 && amb_tuple_elem(msg, 0) == amb_atom(AMB__APP_TAG)) {
        handle_report(self, c, msg);
    } else if (n == 5 && amb_tuple_elem(msg, 0) == AMB_ATOM_DOWN) {
        /* A master ended without its last report: killed, or it crashed. */
        size_t i = find_master(c, amb_tuple_elem(msg, 3));
        if (i != NONE_IDX)
            on_ended(self, c, i, amb_tuple_elem(msg, 4));
    }
    jobs_run(self, c);
}

void amb__jobs_free(ctl *c)
{
    while (c->jobs != NULL) {
        job *j = c->jobs;
        c->jobs = j->next;
        job_free(j);
    }
}

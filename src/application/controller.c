/*
 * controller.c - the application controller: one gen_server per runtime,
 * registered as application_controller (OTP's application_controller).
 *
 * It holds the table of loaded applications (each with its environment,
 * env.c), the configuration read by amb_app_load_config for applications
 * not loaded yet, and the queue of jobs (jobs.c). Everything quick (load,
 * config, env, which) is answered here at once; start, stop and shutdown
 * become jobs, answered when done. ctl.h states the invariants.
 *
 * The struct ctl is malloc'd and freed by an amb_on_exit handler, so a
 * runtime freed with the controller still running leaks nothing.
 */
#include "application/ctl.h"

static void ctl_free(void *arg)
{
    ctl *c = arg;
    for (size_t i = 0; i < c->napps; i++)
        amb__env_free(&c->apps[i].env);
    amb_free(c->apps);
    amb_heap_free(c->config_heap);
    amb__jobs_free(c);
    amb_free(c);
}

/* ---------------------------------------------------------------------------
 * Quick requests
 * ------------------------------------------------------------------------ */

static int do_load(ctl *c, amb_term ptr)
{
    uint64_t p = 0;
    if (amb_uint_get(ptr, &p) != 0 || p == 0)
        return AMB_EBADARG;
    const amb_app *app = (const amb_app *)(uintptr_t)p;
    amb_term name = amb_atom(app->name);
    if (name == AMB_NONE)
        return AMB_EBADARG;
    if (find_app(c, name) != NONE_IDX)
        return AMB_EEXIST;
    if (c->napps == c->cap) {
        size_t n = c->cap ? c->cap * 2 : 8;
        entry *a = amb_realloc(c->apps, n * sizeof *a);
        if (a == NULL)
            return AMB_ENOMEM;
        c->apps = a;
        c->cap = n;
    }
    /* Configuration read before the load overrides the defaults now. */
    amb_term over = AMB_NONE;
    amb__config_lookup(c->config, name, &over);
    entry e = {.app = app, .name = name, .status = APP_LOADED, .master = AMB_NONE};
    int rc = amb__env_init(&e.env, app->env, over);
    if (rc != 0)
        return rc;
    c->apps[c->napps++] = e;
    return 0;
}

/* Remembers cfg for applications loaded later and applies it to those
 * loaded now. AMB_ENOMEM may leave it applied to some of them. */
static int do_load_config(ctl *c, amb_term cfg)
{
    if (!amb__config_is_config(cfg))
        return AMB_ETYPE;
    amb_heap *h = NULL;
    int rc = amb_heap_new(&h);
    amb_term merged = AMB_NIL;
    if (rc == 0)
        rc = amb__config_merge(h, c->config, cfg, &merged);
    if (rc != 0) {
        amb_heap_free(h);
        return rc;
    }
    amb_heap_free(c->config_heap);
    c->config_heap = h;
    c->config = merged;
    for (amb_term l = cfg; rc == 0 && amb_is_cons(l); l = amb_list_tail(l)) {
        amb_term kv = amb_list_head(l);
        size_t i = find_app(c, amb_tuple_elem(kv, 0));
        if (i != NONE_IDX)
            rc = amb__env_apply(&c->apps[i].env, amb_tuple_elem(kv, 1));
    }
    return rc;
}

static amb_term do_get_env(amb_proc *self, ctl *c, amb_term name, amb_term key)
{
    size_t i = find_app(c, name);
    amb_term v = AMB_NONE;
    if (i == NONE_IDX || amb__env_get(&c->apps[i].env, key, &v) != 0)
        return amb_int(NULL, AMB_ENOTFOUND);
    /* v is on the environment's heap; the reply is copied when sent,
     * before anything can change the environment. */
    return AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_OK, v);
}

static int do_set_env(amb_proc *self, ctl *c, amb_term name, amb_term key, amb_term v)
{
    size_t i = find_app(c, name);
    if (i == NONE_IDX)
        return AMB_ENOTFOUND;
    amb_heap *h = amb_proc_heap(self);
    amb_term over = AMB_LIST(h, AMB_TUPLE(h, key, v));
    if (over == AMB_NONE)
        return AMB_ENOMEM;
    return amb__env_apply(&c->apps[i].env, over);
}

static amb_term do_which(amb_proc *self, ctl *c)
{
    amb_heap *h = amb_proc_heap(self);
    size_t n = 0;
    size_t *ix = amb__jobs_running(c, &n);
    if (ix == NULL)
        return amb_int(NULL, AMB_ENOMEM);
    amb_term list = AMB_NIL;
    for (size_t k = 0; k < n; k++) { /* oldest first: the newest ends up first */
        const amb_app *a = c->apps[ix[k]].app;
        amb_term t = AMB_TUPLE(h, c->apps[ix[k]].name,
                               amb_string(h, a->description ? a->description : ""),
                               amb_string(h, a->vsn ? a->vsn : ""));
        list = amb_cons(h, t, list);
    }
    amb_free(ix);
    return list != AMB_NONE ? list : amb_int(NULL, AMB_ENOMEM);
}

/* ---------------------------------------------------------------------------
 * gen_server callbacks
 * ------------------------------------------------------------------------ */

static amb_gen_ret ctl_init(amb_proc *self, void *state, void *arg)
{
    (void)arg;
    ctl *c = amb_malloc(sizeof *c);
    if (c == NULL)
        return amb_gen_fail(AMB_ENOMEM);
    *c = (ctl){.config = AMB_NIL};
    int rc = amb_on_exit(self, ctl_free, c);
    if (rc != 0) {
        amb_free(c);
        return amb_gen_fail(rc);
    }
    *(ctl **)state = c;
    return amb_gen_ok();
}

static amb_gen_ret reply_rc(int rc)
{
    return amb_gen_reply(amb_int(NULL, rc));
}

/* noreply, or stop once amb_app_shutdown is done. */
static amb_gen_ret after_jobs(amb_proc *self, ctl *c)
{
    return amb__jobs_ending(self, c) ? amb_gen_stop(AMB_ATOM_NORMAL) : amb_gen_noreply();
}

static amb_gen_ret queue_job(amb_proc *self, ctl *c, job_kind kind, amb_term from,
                             amb_pid caller, amb_term name, amb_app_type type)
{
    int rc = amb__jobs_queue(self, c, kind, from, caller, name, type);
    return rc != 0 ? reply_rc(rc) : after_jobs(self, c);
}

static amb_gen_ret ctl_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    ctl *c = *(ctl **)state;
    amb_term tag = amb_is_tuple(req) ? amb_tuple_elem(req, 0) : req;
    size_t n = amb_tuple_arity(req);
    int64_t type = 0;
    if (tag == amb_atom("which"))
        return amb_gen_reply(do_which(self, c));
    if (tag == amb_atom("load") && n == 2)
        return reply_rc(do_load(c, amb_tuple_elem(req, 1)));
    if (tag == amb_atom("load_config") && n == 2)
        return reply_rc(do_load_config(c, amb_tuple_elem(req, 1)));
    if (tag == amb_atom("get_env") && n == 3)
        return amb_gen_reply(
            do_get_env(self, c, amb_tuple_elem(req, 1), amb_tuple_elem(req, 2)));
    if (tag == amb_atom("set_env") && n == 4)
        return reply_rc(do_set_env(self, c, amb_tuple_elem(req, 1),
                                   amb_tuple_elem(req, 2), amb_tuple_elem(req, 3)));
    /* Jobs: the caller's pid comes last. */
    amb_pid caller = n >= 2 ? amb_tuple_elem(req, n - 1) : AMB_NONE;
    if (tag == amb_atom("start") && n == 4 &&
        amb_int_get(amb_tuple_elem(req, 2), &type) == 0)
        return queue_job(self, c, JOB_START, from, caller, amb_tuple_elem(req, 1),
                         (amb_app_type)type);
    if (tag == amb_atom("stop") && n == 3)
        return queue_job(self, c, JOB_STOP, from, caller, amb_tuple_elem(req, 1), 0);
    if (tag == amb_atom("shutdown") && n == 2)
        return queue_job(self, c, JOB_HALT, from, caller, AMB_NONE, 0);
    return reply_rc(AMB_EBADARG);
}

static amb_gen_ret ctl_info(amb_proc *self, void *state, amb_term msg)
{
    ctl *c = *(ctl **)state;
    amb__jobs_info(self, c, msg);
    return after_jobs(self, c);
}

const amb_gen_server amb__controller = {
    .name = AMB__APP_CTL_NAME,
    .state_size = sizeof(ctl *),
    .init = ctl_init,
    .handle_call = ctl_call,
    .handle_info = ctl_info,
};

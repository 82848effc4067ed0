/*
 * dynsup.c - Elixir's DynamicSupervisor as a gen_server: no children at
 * start; amb_dynsup_start_child asks this process to start one (so the
 * child is linked to the supervisor, never to the caller); children are
 * named by pid; one_for_one restarts within an intensity; at shutdown every
 * child is told to stop at once and each is awaited by its own rule.
 *
 * Messages as sup.c's ({'EXIT', Parent | Child | Other, R}, retries, the
 * management calls of proto.c).
 *
 * Invariants:
 *   - kids holds every child, running or restarting, in start order (a
 *     restarted child keeps its place), indexed by pid while running
 *     (children.c): an EXIT or a terminate_child finds its child in O(1).
 *   - kids.n <= max_children whenever max_children > 0.
 *   - State in malloc'd memory freed by an on_exit handler (see sup.c).
 */
#include <string.h>

#include "sup_internal.h"

typedef struct dynsup {
    amb_pid parent;
    amb__children kids;
    size_t max_children;
    amb__restarts restarts;
} dynsup;

/* The start argument travels by value (amb_gen_opts.arg_term), as
 * {Parent, Intensity, PeriodMs, MaxChildren}: the caller may be killed
 * while init runs. */

static void dynsup_free(void *ctx)
{
    dynsup *d = ctx;
    amb__children_free(&d->kids);
    amb__restarts_free(&d->restarts);
    amb_free(d);
}

/* Starts c again (not running). A failure marks it restarting and asks
 * for a retry; ignore forgets it (a dynamic child without a process has no
 * name to be found by). */
static void start_again(amb_proc *self, dynsup *d, amb__child *c)
{
    amb_term why = AMB_NONE;
    int rc = amb__children_start(self, &d->kids, c, &why);
    if (rc == 0)
        return;
    if (rc == AMB_EIGNORE) {
        amb__children_remove(&d->kids, c);
        return;
    }
    amb__child_report(self, "start_error", c, why);
    c->restarting = true;
    amb__proto_send_retry(self, c);
}

/* Stops every child at once, then forgets them all. */
static void stop_all(amb_proc *self, dynsup *d)
{
    amb__children_stop(self, &d->kids, d->kids.head, d->kids.n);
    while (d->kids.head != NULL)
        amb__children_remove(&d->kids, d->kids.head);
}

/* As sup.c's restart: beyond the intensity it ends with shutdown, and with
 * {error, 'AMB_ENOMEM'} when the restart cannot be counted. */
static amb_gen_ret restart(amb_proc *self, dynsup *d, amb__child *c)
{
    bool exceeded = false;
    int rc = amb__restarts_add(&d->restarts, amb_now_ms(), &exceeded);
    if (rc != 0) {
        stop_all(self, d);
        return amb_gen_fail(rc);
    }
    if (exceeded) {
        amb__child_report(self, "reached_max_restart_intensity", c, AMB_ATOM_SHUTDOWN);
        stop_all(self, d);
        return amb_gen_stop(AMB_ATOM_SHUTDOWN);
    }
    start_again(self, d, c);
    return amb_gen_noreply();
}

static amb_gen_ret child_exited(amb_proc *self, dynsup *d, amb__child *c, amb_term reason)
{
    amb__children_exited(&d->kids, c);
    bool abnormal = amb__child_should_restart(AMB_TRANSIENT, reason);
    if (c->restart == AMB_PERMANENT || abnormal)
        amb__child_report(self, "child_terminated", c, reason);
    if (!amb__child_should_restart(c->restart, reason)) {
        amb__children_remove(&d->kids, c);
        return amb_gen_noreply();
    }
    return restart(self, d, c);
}

/* ------------------------------------------------------------------------
 * gen_server callbacks
 * --------------------------------------------------------------------- */

static amb_gen_ret dynsup_init(amb_proc *self, void *state, void *arg)
{
    amb_term a = *(const amb_term *)arg;
    int64_t intensity, period;
    uint64_t max_children;
    if (amb_tuple_arity(a) != 4 || amb_int_get(amb_tuple_elem(a, 1), &intensity) != 0 ||
        amb_int_get(amb_tuple_elem(a, 2), &period) != 0 ||
        amb_uint_get(amb_tuple_elem(a, 3), &max_children) != 0)
        return amb_gen_fail(AMB_EBADARG);
    dynsup *d = amb_malloc(sizeof *d);
    if (d == NULL)
        return amb_gen_fail(AMB_ENOMEM);
    memset(d, 0, sizeof *d);
    amb__children_init(&d->kids, false);
    if (amb_on_exit(self, dynsup_free, d) != 0) {
        amb_free(d);
        return amb_gen_fail(AMB_ENOMEM);
    }
    *(dynsup **)state = d;
    d->parent = amb_tuple_elem(a, 0);
    d->max_children = (size_t)max_children;
    amb__restarts_init(&d->restarts, (int)intensity, period);
    amb_trap_exit(self, true);
    return amb_gen_ok();
}

static amb_gen_ret call_start_child(amb_proc *self, dynsup *d, amb_term arg)
{
    amb_child_spec spec;
    if (amb__proto_spec_unpack(arg, &spec) != 0)
        return amb__proto_reply(self, AMB_EBADARG, AMB_ATOM_UNDEFINED);
    if (d->max_children > 0 && d->kids.n >= d->max_children)
        return amb__proto_reply(self, AMB_ESYSLIMIT, AMB_ATOM_UNDEFINED);
    amb__child *c;
    if (amb__children_add(&d->kids, &spec, &c) != 0)
        return amb__proto_reply(self, AMB_ENOMEM, AMB_ATOM_UNDEFINED);
    amb_term why = AMB_NONE;
    int rc = amb__children_start(self, &d->kids, c, &why);
    if (rc == 0)
        return amb__proto_reply(self, 0, c->pid);
    amb__children_remove(&d->kids, c);
    if (rc == AMB_EIGNORE)
        return amb__proto_reply(self, rc, AMB_ATOM_UNDEFINED);
    return amb__proto_reply(self, AMB_EINIT, why);
}

static amb_gen_ret call_terminate_child(amb_proc *self, dynsup *d, amb_term pid)
{
    amb__child *c = amb__children_by_pid(&d->kids, pid);
    if (c == NULL)
        return amb__proto_reply(self, AMB_ENOTFOUND, AMB_ATOM_UNDEFINED);
    amb__children_stop(self, &d->kids, c, 1);
    amb__children_remove(&d->kids, c);
    return amb__proto_reply(self, 0, AMB_ATOM_UNDEFINED);
}

static amb_gen_ret dynsup_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    dynsup *d = *(dynsup **)state;
    amb_term arg = AMB_NONE;
    switch (amb__proto_req_parse(req, &arg)) {
    case AMB__OP_DYN_START_CHILD:
        return call_start_child(self, d, arg);
    case AMB__OP_DYN_TERMINATE_CHILD:
        return call_terminate_child(self, d, arg);
    case AMB__OP_WHICH_CHILDREN:
        return amb__proto_reply_which(self, &d->kids);
    case AMB__OP_COUNT_CHILDREN:
        return amb__proto_reply_count(self, &d->kids, false);
    default:
        return amb__proto_reply(self, AMB_ENOTSUP, AMB_ATOM_UNDEFINED);
    }
}

static amb_gen_ret dynsup_info(amb_proc *self, void *state, amb_term msg)
{
    dynsup *d = *(dynsup **)state;
    amb_pid from;
    amb_term reason;
    uint64_t slot, uid;
    if (amb__proto_is_exit(msg, &from, &reason)) {
        if (from == d->parent)
            return amb_gen_stop(reason);
        amb__child *c = amb__children_by_pid(&d->kids, from);
        if (c != NULL)
            return child_exited(self, d, c, reason);
        return amb_gen_noreply();
    }
    if (amb__proto_is_retry(msg, &slot, &uid)) {
        amb__child *c = amb__children_by_uid(&d->kids, slot, uid);
        if (c != NULL && c->restarting)
            return restart(self, d, c);
        return amb_gen_noreply();
    }
    amb_log(self, AMB_LOG_NOTICE, "dynamic supervisor: unexpected message ignored");
    return amb_gen_noreply();
}

static void dynsup_terminate(amb_proc *self, void *state, amb_term reason)
{
    dynsup *d = *(dynsup **)state;
    if (d != NULL)
        stop_all(self, d);
}

static const amb_gen_server dynsup_cb = {
    .name = "dynamic_supervisor",
    .state_size = sizeof(dynsup *),
    .init = dynsup_init,
    .handle_call = dynsup_call,
    .handle_info = dynsup_info,
    .terminate = dynsup_terminate,
};

int amb_dynsup_start_link(amb_proc *self, const amb_dynsup_opts *opts,
                          const amb_gen_opts *gopts, amb_pid *out, amb_term *reason)
{
    amb_dynsup_opts none = {0};
    const amb_dynsup_opts *d = opts != NULL ? opts : &none;
    int intensity;
    int64_t period_ms;
    if (self == NULL ||
        amb__restarts_resolve(d->intensity, d->period_ms, &intensity, &period_ms) != 0)
        return AMB_EBADARG;
    size_t max_children = d->max_children;
    amb_gen_opts o = {0};
    if (gopts != NULL)
        o = *gopts;
    o.link = true;
    /* All immediates but a huge max_children: a scratch heap of its own
     * (the caller's heap may get an error reason on top). */
    amb_heap *h;
    int rc = amb_heap_new(&h);
    if (rc != 0)
        return rc;
    o.arg_term = AMB_TUPLE(h, amb_self(self), AMB_SMALL(intensity), AMB_SMALL(period_ms),
                           amb_uint(h, max_children));
    rc = o.arg_term == AMB_NONE
             ? AMB_ENOMEM
             : amb_gen_server_start(self, &dynsup_cb, NULL, &o, out, reason);
    amb_heap_free(h);
    return rc;
}

/*
 * sup.c - OTP's supervisor as a gen_server: static children started in
 * order, restarted by strategy (one_for_one, one_for_all, rest_for_one)
 * within a restart intensity, stopped in reverse order.
 *
 * The process traps exits. Its children are linked to it (their start
 * functions link them to the calling process, which is this one). Messages:
 *   {'EXIT', Parent, R}  the parent (the caller of amb_sup_start_link) ends
 *                        or tells it to: stop with R; terminate stops the
 *                        children (gen_server may catch this one itself
 *                        and call terminate: same result).
 *   {'EXIT', Child, R}   a child ended: restart by its type and strategy.
 *   {'EXIT', Other, _}   ignored (a link made some other way).
 *   {'$amb_sup_retry', Slot, Uid}  a restart whose start failed, tried
 *                        again (counts toward intensity, as OTP's
 *                        try_again_restart).
 * and the management calls of proto.c.
 *
 * Invariants:
 *   - kids holds the children in start order (children.c), indexed by id
 *     and, while running, by pid: a message about one child costs the same
 *     whatever the number of children. Stopping goes from the newest back.
 *   - The state lives in malloc'd memory (struct sup), freed by an on_exit
 *     handler, so that a supervisor ended by kill frees it too. Nothing
 *     outlives a callback on the process heap except what init built.
 *   - Child records own their ids (child.c); deleting a child frees it.
 */
#include <string.h>

#include "sup_internal.h"

typedef struct sup {
    amb_pid parent;
    amb_sup_strategy strategy;
    amb__children kids;
    amb__restarts restarts;
} sup;

/* The start argument travels by value (amb_gen_opts.arg_term), as
 * {Parent, Strategy, Intensity, PeriodMs, [ChildSpec]} (proto.c packs the
 * specs): the caller may be killed while the supervisor's init runs. */

static void sup_free(void *ctx)
{
    sup *s = ctx;
    amb__children_free(&s->kids);
    amb__restarts_free(&s->restarts);
    amb_free(s);
}

static void stop_one(amb_proc *self, sup *s, amb__child *c)
{
    amb__children_stop(self, &s->kids, c, 1);
}

/* Stops every running child, one at a time from the newest back. */
static void stop_all(amb_proc *self, sup *s)
{
    for (amb__child *c = s->kids.tail; c != NULL; c = c->prev)
        stop_one(self, s, c);
}

/* ------------------------------------------------------------------------
 * Restarts
 * --------------------------------------------------------------------- */

/* The first child of the group a restart of c involves, by strategy: the
 * group runs from it to c (one_for_one) or to the newest. */
static amb__child *group_first(const sup *s, amb__child *c)
{
    return s->strategy == AMB_ONE_FOR_ALL ? s->kids.head : c;
}

static amb__child *group_last(const sup *s, amb__child *c)
{
    return s->strategy == AMB_ONE_FOR_ONE ? c : s->kids.tail;
}

/* Restarts the group of child c (not running): stops the others of the
 * group from the newest back (temporary ones are removed, as OTP's
 * terminate_children), then starts the group in order. A start that fails
 * marks its child restarting and asks for a retry; the children after it
 * stay stopped until that retry restarts the group again. */
static void restart_group(amb_proc *self, sup *s, amb__child *c)
{
    amb__child *first = group_first(s, c);
    for (amb__child *x = group_last(s, c), *prev; x != NULL; x = prev) {
        prev = x == first ? NULL : x->prev;
        stop_one(self, s, x);
        if (x->restart == AMB_TEMPORARY && x != c)
            amb__children_remove(&s->kids, x);
    }
    amb__child *last = group_last(s, c);
    for (amb__child *x = group_first(s, c); x != NULL; x = x == last ? NULL : x->next) {
        amb_term why;
        if (x->pid != AMB_NONE)
            continue;
        int rc = amb__children_start(self, &s->kids, x, &why);
        if (rc == 0 || rc == AMB_EIGNORE)
            continue;
        amb__child_report(self, "start_error", x, why);
        x->restarting = true;
        amb__proto_send_retry(self, x);
        break;
    }
}

/* One restart of c: counted against the intensity first; beyond it the
 * supervisor stops everything and ends with shutdown (escalation), and
 * when the restart cannot be counted, with {error, 'AMB_ENOMEM'}. */
static amb_gen_ret restart(amb_proc *self, sup *s, amb__child *c)
{
    bool exceeded = false;
    int rc = amb__restarts_add(&s->restarts, amb_now_ms(), &exceeded);
    if (rc != 0) {
        stop_all(self, s);
        return amb_gen_fail(rc);
    }
    if (exceeded) {
        amb__child_report(self, "reached_max_restart_intensity", c, AMB_ATOM_SHUTDOWN);
        stop_all(self, s);
        return amb_gen_stop(AMB_ATOM_SHUTDOWN);
    }
    restart_group(self, s, c);
    return amb_gen_noreply();
}

static bool is_abnormal(amb_term reason)
{
    return amb__child_should_restart(AMB_TRANSIENT, reason);
}

static amb_gen_ret child_exited(amb_proc *self, sup *s, amb__child *c, amb_term reason)
{
    amb__children_exited(&s->kids, c);
    if (c->restart == AMB_PERMANENT || is_abnormal(reason))
        amb__child_report(self, "child_terminated", c, reason);
    if (!amb__child_should_restart(c->restart, reason)) {
        if (c->restart == AMB_TEMPORARY)
            amb__children_remove(&s->kids, c);
        return amb_gen_noreply();
    }
    return restart(self, s, c);
}

/* ------------------------------------------------------------------------
 * gen_server callbacks
 * --------------------------------------------------------------------- */

/* Adds and starts a child from spec (init and start_child): 0 with *out,
 * AMB_EIGNORE (kept without a process, except a temporary child: OTP keeps
 * no spec of a temporary child that does not run), AMB_ENOMEM or the
 * start's error with *why (nothing kept). With failed_id (init), a failed
 * start is reported and *failed_id gets a copy of the id on the process
 * heap, for the error reason that outlives the record. */
static int add_child(amb_proc *self, sup *s, const amb_child_spec *spec, amb_term *why,
                     amb_term *failed_id, amb__child **out)
{
    amb__child *c;
    if (amb__children_add(&s->kids, spec, &c) != 0)
        return AMB_ENOMEM;
    int rc = amb__children_start(self, &s->kids, c, why);
    if (rc == 0 || (rc == AMB_EIGNORE && c->restart != AMB_TEMPORARY)) {
        *out = c;
        return rc;
    }
    if (rc != AMB_EIGNORE && failed_id != NULL) {
        amb__child_report(self, "start_error", c, *why);
        if (amb_term_copy(amb_proc_heap(self), c->id, failed_id) != 0)
            *failed_id = AMB_ATOM_UNDEFINED;
    }
    amb__children_remove(&s->kids, c);
    return rc;
}

static amb_gen_ret sup_init(amb_proc *self, void *state, void *arg)
{
    amb_term a = *(const amb_term *)arg;
    int64_t strategy, intensity, period;
    if (amb_tuple_arity(a) != 5 || amb_int_get(amb_tuple_elem(a, 1), &strategy) != 0 ||
        amb_int_get(amb_tuple_elem(a, 2), &intensity) != 0 ||
        amb_int_get(amb_tuple_elem(a, 3), &period) != 0)
        return amb_gen_fail(AMB_EBADARG);
    sup *s = amb_malloc(sizeof *s);
    if (s == NULL)
        return amb_gen_fail(AMB_ENOMEM);
    memset(s, 0, sizeof *s);
    amb__children_init(&s->kids, true);
    if (amb_on_exit(self, sup_free, s) != 0) {
        amb_free(s);
        return amb_gen_fail(AMB_ENOMEM);
    }
    *(sup **)state = s;
    s->parent = amb_tuple_elem(a, 0);
    s->strategy = (amb_sup_strategy)strategy;
    amb__restarts_init(&s->restarts, (int)intensity, period);
    amb_trap_exit(self, true);
    amb_heap *h = amb_proc_heap(self);
    for (amb_term l = amb_tuple_elem(a, 4); amb_is_cons(l); l = amb_list_tail(l)) {
        amb_child_spec spec;
        if (amb__proto_spec_unpack(amb_list_head(l), &spec) != 0)
            return amb_gen_fail(AMB_EBADARG); /* checked by the starter */
        amb_term why = AMB_NONE, id = AMB_NONE;
        amb__child *c;
        int rc = add_child(self, s, &spec, &why, &id, &c);
        if (rc == 0 || rc == AMB_EIGNORE)
            continue;
        stop_all(self, s);
        if (rc == AMB_ENOMEM)
            return amb_gen_fail(AMB_ENOMEM);
        amb_term failed = AMB_TUPLE(h, amb_atom("failed_to_start_child"), id, why);
        return amb_gen_stop(AMB_TUPLE(h, AMB_ATOM_SHUTDOWN, failed));
    }
    return amb_gen_ok();
}

static amb_gen_ret call_start_child(amb_proc *self, sup *s, amb_term arg)
{
    amb_child_spec spec;
    if (amb__proto_spec_unpack(arg, &spec) != 0)
        return amb__proto_reply(self, AMB_EBADARG, AMB_ATOM_UNDEFINED);
    amb__child *c = amb__children_by_id(&s->kids, spec.id);
    if (c != NULL && c->pid != AMB_NONE)
        return amb__proto_reply(self, AMB_EEXIST, c->pid);
    if (c != NULL)
        return amb__proto_reply(self, AMB_EPRESENT, AMB_ATOM_UNDEFINED);
    amb_term why = AMB_NONE;
    int rc = add_child(self, s, &spec, &why, NULL, &c);
    if (rc == 0)
        return amb__proto_reply(self, 0, c->pid);
    if (rc == AMB_EIGNORE || rc == AMB_ENOMEM)
        return amb__proto_reply(self, rc, AMB_ATOM_UNDEFINED);
    return amb__proto_reply(self, AMB_EINIT, why);
}

static amb_gen_ret call_by_id(amb_proc *self, sup *s, int op, amb_term id)
{
    amb__child *c = amb__children_by_id(&s->kids, id);
    if (c == NULL)
        return amb__proto_reply(self, AMB_ENOTFOUND, AMB_ATOM_UNDEFINED);
    if (op == AMB__OP_TERMINATE_CHILD) {
        stop_one(self, s, c);
        c->restarting = false; /* a pending retry finds it stopped: dropped */
        if (c->restart == AMB_TEMPORARY)
            amb__children_remove(&s->kids, c);
        return amb__proto_reply(self, 0, AMB_ATOM_UNDEFINED);
    }
    if (c->pid != AMB_NONE)
        return amb__proto_reply(self, AMB_ERUNNING, AMB_ATOM_UNDEFINED);
    if (c->restarting)
        return amb__proto_reply(self, AMB_ERESTARTING, AMB_ATOM_UNDEFINED);
    if (op == AMB__OP_DELETE_CHILD) {
        amb__children_remove(&s->kids, c);
        return amb__proto_reply(self, 0, AMB_ATOM_UNDEFINED);
    }
    amb_term why = AMB_NONE;
    int rc = amb__children_start(self, &s->kids, c, &why);
    if (rc == 0)
        return amb__proto_reply(self, 0, c->pid);
    if (rc == AMB_EIGNORE)
        return amb__proto_reply(self, rc, AMB_ATOM_UNDEFINED);
    return amb__proto_reply(self, AMB_EINIT, why);
}

static amb_gen_ret sup_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    sup *s = *(sup **)state;
    amb_term arg = AMB_NONE;
    int op = amb__proto_req_parse(req, &arg);
    switch (op) {
    case AMB__OP_START_CHILD:
        return call_start_child(self, s, arg);
    case AMB__OP_TERMINATE_CHILD:
    case AMB__OP_RESTART_CHILD:
    case AMB__OP_DELETE_CHILD:
        return call_by_id(self, s, op, arg);
    case AMB__OP_WHICH_CHILDREN:
        return amb__proto_reply_which(self, &s->kids);
    case AMB__OP_COUNT_CHILDREN:
        return amb__proto_reply_count(self, &s->kids, true);
    default:
        return amb__proto_reply(self, AMB_ENOTSUP, AMB_ATOM_UNDEFINED);
    }
}

static amb_gen_ret sup_info(amb_proc *self, void *state, amb_term msg)
{
    sup *s = *(sup **)state;
    amb_pid from;
    amb_term reason;
    uint64_t slot, uid;
    if (amb__proto_is_exit(msg, &from, &reason)) {
        if (from == s->parent)
            return amb_gen_stop(reason);
        amb__child *c = amb__children_by_pid(&s->kids, from);
        if (c != NULL)
            return child_exited(self, s, c, reason);
        return amb_gen_noreply(); /* an EXIT from some other link: ignored */
    }
    if (amb__proto_is_retry(msg, &slot, &uid)) {
        amb__child *c = amb__children_by_uid(&s->kids, slot, uid);
        if (c != NULL && c->restarting)
            return restart(self, s, c);
        return amb_gen_noreply();
    }
    amb_log(self, AMB_LOG_NOTICE, "supervisor: unexpected message ignored");
    return amb_gen_noreply();
}

static void sup_terminate(amb_proc *self, void *state, amb_term reason)
{
    sup *s = *(sup **)state;
    if (s != NULL)
        stop_all(self, s);
}

static const amb_gen_server sup_cb = {
    .name = "supervisor",
    .state_size = sizeof(sup *),
    .init = sup_init,
    .handle_call = sup_call,
    .handle_info = sup_info,
    .terminate = sup_terminate,
};

/* ------------------------------------------------------------------------
 * Starting
 * --------------------------------------------------------------------- */

static bool spec_has_id(const void *item, amb_term id)
{
    return amb_equal(((const amb_child_spec *)item)->id, id);
}

/* 0 for a good spec, AMB_EBADARG (a duplicate id too: found through an
 * index, so a spec of many children is checked in linear time), or
 * AMB_ENOMEM. */
static int check_spec(const amb_sup_spec *spec)
{
    const amb_sup_flags *f = &spec->flags;
    if (f->strategy != AMB_ONE_FOR_ONE && f->strategy != AMB_ONE_FOR_ALL &&
        f->strategy != AMB_REST_FOR_ONE)
        return AMB_EBADARG;
    if (spec->children == NULL && spec->nchildren > 0)
        return AMB_EBADARG;
    amb__index ids = {0};
    int rc = amb__index_reserve(&ids, spec->nchildren);
    for (size_t i = 0; rc == 0 && i < spec->nchildren; i++) {
        const amb_child_spec *c = &spec->children[i];
        uint64_t hash = amb_hash(c->id);
        if (amb__child_check(c) != 0 || c->id == AMB_NONE ||
            amb__index_get(&ids, hash, spec_has_id, c->id) != NULL)
            rc = AMB_EBADARG;
        else
            amb__index_put(&ids, hash, c);
    }
    amb__index_free(&ids);
    return rc;
}

int amb_sup_start_link(amb_proc *self, const amb_sup_spec *spec, const amb_gen_opts *opts,
                       amb_pid *out, amb_term *reason)
{
    int intensity;
    int64_t period_ms;
    if (self == NULL || spec == NULL ||
        amb__restarts_resolve(spec->flags.intensity, spec->flags.period_ms, &intensity,
                              &period_ms) != 0)
        return AMB_EBADARG;
    int rc = check_spec(spec);
    if (rc != 0)
        return rc;
    /* The argument term is built on a heap of its own: the caller's heap
     * gets the error reason of a failed start on top, so it cannot be
     * rewound here. */
    amb_heap *h;
    rc = amb_heap_new(&h);
    if (rc != 0)
        return rc;
    amb_term children = AMB_NIL;
    for (size_t i = spec->nchildren; i-- > 0;)
        children = amb_cons(h, amb__proto_spec_pack(h, &spec->children[i]), children);
    amb_gen_opts o = {0};
    if (opts != NULL)
        o = *opts;
    o.link = true;
    o.arg_term = AMB_TUPLE(h, amb_self(self), AMB_SMALL(spec->flags.strategy),
                           AMB_SMALL(intensity), AMB_SMALL(period_ms), children);
    rc = o.arg_term == AMB_NONE
             ? AMB_ENOMEM
             : amb_gen_server_start(self, &sup_cb, NULL, &o, out, reason);
    amb_heap_free(h);
    return rc;
}

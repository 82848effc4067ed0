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
 *   {'$amb_sup_retry', Uid}  a restart whose start failed, tried again
 *                        (counts toward intensity, as OTP's
 *                        try_again_restart).
 * and the management calls of proto.c.
 *
 * Invariants:
 *   - cs[0..n) is in start order; stopping goes from n-1 down.
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
    amb__child *cs;
    size_t n, cap;
    amb__restarts restarts;
    uint64_t next_uid;
} sup;

/* The start argument travels by value (amb_gen_opts.arg_term), as
 * {Parent, Strategy, Intensity, PeriodMs, [ChildSpec]} (proto.c packs the
 * specs): the caller may be killed while the supervisor's init runs. */

static void sup_free(void *ctx)
{
    sup *s = ctx;
    for (size_t i = 0; i < s->n; i++)
        amb__child_free(&s->cs[i]);
    amb_free(s->cs);
    amb__restarts_free(&s->restarts);
    amb_free(s);
}

static int reserve(sup *s, size_t want)
{
    if (want <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : 4;
    while (cap < want)
        cap *= 2;
    amb__child *cs = amb_realloc(s->cs, cap * sizeof *cs);
    if (cs == NULL)
        return AMB_ENOMEM;
    s->cs = cs;
    s->cap = cap;
    return 0;
}

static void remove_at(sup *s, size_t i)
{
    amb__child_free(&s->cs[i]);
    memmove(&s->cs[i], &s->cs[i + 1], (s->n - i - 1) * sizeof *s->cs);
    s->n--;
}

static size_t find_id(const sup *s, amb_term id)
{
    for (size_t i = 0; i < s->n; i++)
        if (amb_equal(s->cs[i].id, id))
            return i;
    return SIZE_MAX;
}

static size_t find_pid(const sup *s, amb_pid pid)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->cs[i].pid == pid)
            return i;
    return SIZE_MAX;
}

static size_t find_uid(const sup *s, uint64_t uid)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->cs[i].uid == uid)
            return i;
    return SIZE_MAX;
}

static void stop_one(amb_proc *self, amb__child *c)
{
    amb__child_stop(self, &c, 1);
}

/* Stops the running children among cs[lo..hi), last first. */
static void stop_range(amb_proc *self, sup *s, size_t lo, size_t hi)
{
    for (size_t i = hi; i-- > lo;)
        stop_one(self, &s->cs[i]);
}

/* ------------------------------------------------------------------------
 * Restarts
 * --------------------------------------------------------------------- */

/* The children a restart of cs[i] involves, by strategy. */
static void group_of(const sup *s, size_t i, size_t *lo, size_t *hi)
{
    *lo = s->strategy == AMB_ONE_FOR_ALL ? 0 : i;
    *hi = s->strategy == AMB_ONE_FOR_ONE ? i + 1 : s->n;
}

/* Restarts the group of the child named uid (not running): stops the
 * others of the group in reverse (temporary ones are removed, as OTP's
 * terminate_children), then starts the group in order. A start that fails
 * marks its child restarting and asks for a retry; the children after it
 * stay stopped until that retry restarts the group again. */
static void restart_group(amb_proc *self, sup *s, uint64_t uid)
{
    size_t lo, hi, i = find_uid(s, uid);
    group_of(s, i, &lo, &hi);
    for (size_t j = hi; j-- > lo;) {
        amb__child *c = &s->cs[j];
        stop_one(self, c);
        if (c->restart == AMB_TEMPORARY && c->uid != uid)
            remove_at(s, j);
    }
    group_of(s, find_uid(s, uid), &lo, &hi);
    for (size_t j = lo; j < hi; j++) {
        amb__child *c = &s->cs[j];
        amb_term why;
        if (c->pid != AMB_NONE)
            continue;
        int rc = amb__child_start(self, c, &why);
        if (rc == 0 || rc == AMB_EIGNORE)
            continue;
        amb__child_report(self, "start_error", c, why);
        c->restarting = true;
        amb__proto_send_retry(self, c->uid);
        break;
    }
}

/* One restart of cs[i]: counted against the intensity first; beyond it the
 * supervisor stops everything and ends with shutdown (escalation), and
 * when the restart cannot be counted, with {error, 'AMB_ENOMEM'}. */
static amb_gen_ret restart(amb_proc *self, sup *s, size_t i)
{
    bool exceeded = false;
    int rc = amb__restarts_add(&s->restarts, amb_now_ms(), &exceeded);
    if (rc != 0) {
        stop_range(self, s, 0, s->n);
        return amb_gen_fail(rc);
    }
    if (exceeded) {
        amb__child_report(self, "reached_max_restart_intensity", &s->cs[i],
                          AMB_ATOM_SHUTDOWN);
        stop_range(self, s, 0, s->n);
        return amb_gen_stop(AMB_ATOM_SHUTDOWN);
    }
    restart_group(self, s, s->cs[i].uid);
    return amb_gen_noreply();
}

static bool is_abnormal(amb_term reason)
{
    return amb__child_should_restart(AMB_TRANSIENT, reason);
}

static amb_gen_ret child_exited(amb_proc *self, sup *s, size_t i, amb_term reason)
{
    amb__child *c = &s->cs[i];
    c->pid = AMB_NONE;
    if (c->restart == AMB_PERMANENT || is_abnormal(reason))
        amb__child_report(self, "child_terminated", c, reason);
    if (!amb__child_should_restart(c->restart, reason)) {
        if (c->restart == AMB_TEMPORARY)
            remove_at(s, i);
        return amb_gen_noreply();
    }
    return restart(self, s, i);
}

/* ------------------------------------------------------------------------
 * gen_server callbacks
 * --------------------------------------------------------------------- */

/* Adds and starts cs[n] from spec (init and start_child): 0, AMB_EIGNORE
 * (kept without a process, except a temporary child: OTP keeps no spec of
 * a temporary child that does not run), AMB_ENOMEM or the start's error
 * with *why (nothing kept). With failed_id (init), a failed start is
 * reported and *failed_id gets a copy of the id on the process heap, for
 * the error reason that outlives the record. */
static int add_child(amb_proc *self, sup *s, const amb_child_spec *spec, amb_term *why,
                     amb_term *failed_id)
{
    if (reserve(s, s->n + 1) != 0)
        return AMB_ENOMEM;
    amb__child *c = &s->cs[s->n];
    if (amb__child_init(c, spec, true, s->next_uid++) != 0)
        return AMB_ENOMEM;
    int rc = amb__child_start(self, c, why);
    if (rc == 0 || (rc == AMB_EIGNORE && c->restart != AMB_TEMPORARY)) {
        s->n++;
        return rc;
    }
    if (rc != AMB_EIGNORE && failed_id != NULL) {
        amb__child_report(self, "start_error", c, *why);
        if (amb_term_copy(amb_proc_heap(self), c->id, failed_id) != 0)
            *failed_id = AMB_ATOM_UNDEFINED;
    }
    amb__child_free(c);
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
        int rc = add_child(self, s, &spec, &why, &id);
        if (rc == 0 || rc == AMB_EIGNORE)
            continue;
        stop_range(self, s, 0, s->n);
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
    size_t i = find_id(s, spec.id);
    if (i != SIZE_MAX && s->cs[i].pid != AMB_NONE)
        return amb__proto_reply(self, AMB_EEXIST, s->cs[i].pid);
    if (i != SIZE_MAX)
        return amb__proto_reply(self, AMB_EPRESENT, AMB_ATOM_UNDEFINED);
    amb_term why = AMB_NONE;
    int rc = add_child(self, s, &spec, &why, NULL);
    if (rc == 0)
        return amb__proto_reply(self, 0, s->cs[s->n - 1].pid);
    if (rc == AMB_EIGNORE || rc == AMB_ENOMEM)
        return amb__proto_reply(self, rc, AMB_ATOM_UNDEFINED);
    return amb__proto_reply(self, AMB_EINIT, why);
}

static amb_gen_ret call_by_id(amb_proc *self, sup *s, int op, amb_term id)
{
    size_t i = find_id(s, id);
    if (i == SIZE_MAX)
        return amb__proto_reply(self, AMB_ENOTFOUND, AMB_ATOM_UNDEFINED);
    amb__child *c = &s->cs[i];
    if (op == AMB__OP_TERMINATE_CHILD) {
        stop_one(self, c);
        c->restarting = false; /* a pending retry finds it stopped: dropped */
        if (c->restart == AMB_TEMPORARY)
            remove_at(s, i);
        return amb__proto_reply(self, 0, AMB_ATOM_UNDEFINED);
    }
    if (c->pid != AMB_NONE)
        return amb__proto_reply(self, AMB_ERUNNING, AMB_ATOM_UNDEFINED);
    if (c->restarting)
        return amb__proto_reply(self, AMB_ERESTARTING, AMB_ATOM_UNDEFINED);
    if (op == AMB__OP_DELETE_CHILD) {
        remove_at(s, i);
        return amb__proto_reply(self, 0, AMB_ATOM_UNDEFINED);
    }
    amb_term why = AMB_NONE;
    int rc = amb__child_start(self, c, &why);
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
        return amb__proto_reply_which(self, s->cs, s->n);
    case AMB__OP_COUNT_CHILDREN:
        return amb__proto_reply_count(self, s->cs, s->n);
    default:
        return amb__proto_reply(self, AMB_ENOTSUP, AMB_ATOM_UNDEFINED);
    }
}

static amb_gen_ret sup_info(amb_proc *self, void *state, amb_term msg)
{
    sup *s = *(sup **)state;
    amb_pid from;
    amb_term reason;
    uint64_t uid;
    if (amb__proto_is_exit(msg, &from, &reason)) {
        if (from == s->parent)
            return amb_gen_stop(reason);
        size_t i = find_pid(s, from);
        if (i != SIZE_MAX)
            return child_exited(self, s, i, reason);
        return amb_gen_noreply(); /* an EXIT from some other link: ignored */
    }
    if (amb__proto_is_retry(msg, &uid)) {
        size_t i = find_uid(s, uid);
        if (i != SIZE_MAX && s->cs[i].restarting)
            return restart(self, s, i);
        return amb_gen_noreply();
    }
    amb_log(self, AMB_LOG_NOTICE, "supervisor: unexpected message ignored");
    return amb_gen_noreply();
}

static void sup_terminate(amb_proc *self, void *state, amb_term reason)
{
    sup *s = *(sup **)state;
    if (s != NULL)
        stop_range(self, s, 0, s->n);
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

static int check_spec(const amb_sup_spec *spec)
{
    const amb_sup_flags *f = &spec->flags;
    if (f->strategy != AMB_ONE_FOR_ONE && f->strategy != AMB_ONE_FOR_ALL &&
        f->strategy != AMB_REST_FOR_ONE)
        return AMB_EBADARG;
    if (spec->children == NULL && spec->nchildren > 0)
        return AMB_EBADARG;
    for (size_t i = 0; i < spec->nchildren; i++) {
        const amb_child_spec *c = &spec->children[i];
        if (amb__child_check(c) != 0 || c->id == AMB_NONE)
            return AMB_EBADARG;
        for (size_t j = 0; j < i; j++)
            if (amb_equal(spec->children[j].id, c->id))
                return AMB_EBADARG;
    }
    return 0;
}

int amb_sup_start_link(amb_proc *self, const amb_sup_spec *spec, const amb_gen_opts *opts,
                       amb_pid *out, amb_term *reason)
{
    int intensity;
    int64_t period_ms;
    if (self == NULL || spec == NULL || check_spec(spec) != 0 ||
        amb__restarts_resolve(spec->flags.intensity, spec->flags.period_ms, &intensity,
                              &period_ms) != 0)
        return AMB_EBADARG;
    /* The argument term is built on a heap of its own: the caller's heap
     * gets the error reason of a failed start on top, so it cannot be
     * rewound here. */
    amb_heap *h;
    int rc = amb_heap_new(&h);
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

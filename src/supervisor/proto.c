/*
 * proto.c - the terms both supervisors and their clients exchange.
 *
 *   request  {'$amb_sup', Op, Arg}   Op: an amb__sup_op as an integer
 *   reply    {Rc, Value}             Rc: 0 or an AMB_E* code
 *   spec     {Id, Start, Arg, Restart, Shutdown, Type}: Start and Arg are
 *            addresses (the start function and its argument live in this
 *            OS process); the rest are integers, the id a term.
 *   retry    {'$amb_sup_retry', Slot, Uid} a supervisor sends itself to
 *            try a failed restart again (OTP's try_again_restart); the
 *            child's slot finds its record, the uid proves it the same.
 *
 * A spec travels by value inside the request, never as a pointer to the
 * caller's memory: a caller killed while it waits for the reply must not
 * leave the supervisor reading a freed stack or heap.
 */
#include <string.h>

#include "sup_internal.h"

static amb_term tag_req(void)
{
    return amb_atom("$amb_sup");
}

static amb_term tag_retry(void)
{
    return amb_atom("$amb_sup_retry");
}

int amb__proto_req_parse(amb_term req, amb_term *arg)
{
    if (!amb_is_record(req, tag_req(), 3))
        return 0;
    amb_term op = amb_tuple_elem(req, 1);
    if (!amb_is_small(op))
        return 0;
    *arg = amb_tuple_elem(req, 2);
    return (int)amb_small_value(op);
}

amb_term amb__proto_spec_pack(amb_heap *h, const amb_child_spec *spec)
{
    return AMB_TUPLE(h, spec->id, amb_uint(h, (uint64_t)(uintptr_t)spec->start),
                     amb_uint(h, (uint64_t)(uintptr_t)spec->arg),
                     AMB_SMALL(spec->restart), AMB_SMALL(spec->shutdown_ms),
                     AMB_SMALL(spec->type));
}

int amb__proto_spec_unpack(amb_term t, amb_child_spec *out)
{
    uint64_t start, arg;
    int64_t restart, shutdown, type;
    if (!amb_is_tuple(t) || amb_tuple_arity(t) != 6 ||
        amb_uint_get(amb_tuple_elem(t, 1), &start) != 0 ||
        amb_uint_get(amb_tuple_elem(t, 2), &arg) != 0 ||
        amb_int_get(amb_tuple_elem(t, 3), &restart) != 0 ||
        amb_int_get(amb_tuple_elem(t, 4), &shutdown) != 0 ||
        amb_int_get(amb_tuple_elem(t, 5), &type) != 0)
        return AMB_EBADARG;
    memset(out, 0, sizeof *out);
    out->id = amb_tuple_elem(t, 0);
    out->start = (amb_child_start_fn *)(uintptr_t)start;
    out->arg = (void *)(uintptr_t)arg;
    out->restart = (amb_restart)restart;
    out->shutdown_ms = shutdown;
    out->type = (amb_child_type)type;
    return amb__child_check(out);
}

amb_gen_ret amb__proto_reply(amb_proc *self, int rc, amb_term value)
{
    amb_heap *h = amb_proc_heap(self);
    return amb_gen_reply(AMB_TUPLE(h, amb_int(h, rc), value));
}

amb_gen_ret amb__proto_reply_which(amb_proc *self, const amb__children *s)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term list = AMB_NIL;
    amb_term sup = amb_atom("supervisor"), worker = amb_atom("worker");
    amb_term restarting = amb_atom("restarting");
    /* Consing from the oldest on leaves the newest first (OTP's order). */
    for (const amb__child *c = s->head; c != NULL; c = c->next) {
        amb_term child = c->pid != AMB_NONE ? c->pid
                         : c->restarting    ? restarting
                                            : AMB_ATOM_UNDEFINED;
        amb_term e =
            AMB_TUPLE(h, c->id, child, c->type == AMB_SUPERVISOR ? sup : worker, AMB_NIL);
        list = amb_cons(h, e, list);
    }
    if (list == AMB_NONE)
        return amb__proto_reply(self, AMB_ENOMEM, AMB_ATOM_UNDEFINED);
    return amb__proto_reply(self, 0, list);
}

amb_gen_ret amb__proto_reply_count(amb_proc *self, const amb__children *s,
                                   bool check_alive)
{
    size_t active = 0, sups = 0;
    for (const amb__child *c = s->head; c != NULL; c = c->next) {
        active +=
            c->pid != AMB_NONE && (!check_alive || amb_is_process_alive(self, c->pid));
        sups += c->type == AMB_SUPERVISOR;
    }
    amb_heap *h = amb_proc_heap(self);
    amb_term t = AMB_TUPLE(h, amb_uint(h, s->n), amb_uint(h, active), amb_uint(h, sups),
                           amb_uint(h, s->n - sups));
    return amb__proto_reply(self, 0, t);
}

bool amb__proto_is_exit(amb_term msg, amb_pid *from, amb_term *reason)
{
    if (!amb_is_record(msg, AMB_ATOM_EXIT, 3))
        return false;
    *from = amb_tuple_elem(msg, 1);
    *reason = amb_tuple_elem(msg, 2);
    return true;
}

int amb__proto_send_retry(amb_proc *self, const amb__child *c)
{
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    int rc =
        amb_send(self, amb_self(self),
                 AMB_TUPLE(h, tag_retry(), amb_uint(h, c->slot), amb_uint(h, c->uid)));
    amb_heap_rewind(h, m);
    return rc;
}

bool amb__proto_is_retry(amb_term msg, uint64_t *slot, uint64_t *uid)
{
    return amb_is_record(msg, tag_retry(), 3) &&
           amb_uint_get(amb_tuple_elem(msg, 1), slot) == 0 &&
           amb_uint_get(amb_tuple_elem(msg, 2), uid) == 0;
}

/*
 * api.c - the management calls, on the caller's side: each builds a
 * request (proto.c) on the caller's heap, makes an infinite gen_server
 * call to the supervisor, and unpacks the reply {Rc, Value}.
 *
 * Invariant: the caller's heap is left as it was, except for the results
 * documented as "on the caller's heap" (which_children), built after the
 * request was dropped.
 */
#include "sup_internal.h"

/* Makes the call {'$amb_sup', op, arg}: the call's error, or the reply's
 * Rc with *value (borrowed like a gen_server reply). The request is built
 * by the caller after mark and dropped here. A child's start that failed
 * for want of memory (AMB_EINIT with {error, 'AMB_ENOMEM'}: child.c) is
 * AMB_ENOMEM, with that reason, as a gen_server start's. */
static int sup_call(amb_proc *self, amb_heap_mark mark, amb_term sup, int op,
                    amb_term arg, amb_term *value)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term req = AMB_TUPLE(h, amb_atom("$amb_sup"), AMB_SMALL(op), arg);
    amb_term reply = AMB_NONE;
    int rc = req == AMB_NONE ? AMB_ENOMEM
                             : amb_gen_server_call(self, sup, req, AMB_INFINITY, &reply);
    amb_heap_rewind(h, mark);
    if (rc != 0)
        return rc;
    int64_t code;
    if (!amb_is_tuple(reply) || amb_tuple_arity(reply) != 2 ||
        amb_int_get(amb_tuple_elem(reply, 0), &code) != 0)
        return AMB_EBADARG; /* not a supervisor */
    *value = amb_tuple_elem(reply, 1);
    if (code == AMB_EINIT && amb_tuple_arity(*value) == 2 &&
        amb_tuple_elem(*value, 0) == AMB_ATOM_ERROR &&
        amb_tuple_elem(*value, 1) == amb_atom(amb_err_name(AMB_ENOMEM)))
        return AMB_ENOMEM;
    return (int)code;
}

/* What a start's reply says, for the caller: *out (may be NULL) the pid on
 * 0, or the running child on AMB_EEXIST; *reason (may be NULL) on
 * AMB_EINIT and AMB_ENOMEM why the start failed, copied onto the caller's heap (value is
 * borrowed from the reply; `error` when the copy finds no memory, as
 * gen_server's starts do). */
static int start_result(amb_proc *self, int rc, amb_term value, amb_pid *out,
                        amb_term *reason)
{
    if ((rc == 0 || rc == AMB_EEXIST) && out != NULL)
        *out = value;
    if ((rc == AMB_EINIT || rc == AMB_ENOMEM) && reason != NULL &&
        amb_term_copy(amb_proc_heap(self), value, reason) != 0)
        *reason = AMB_ATOM_ERROR;
    return rc;
}

static int start_child(amb_proc *self, amb_term sup, const amb_child_spec *spec, int op,
                       amb_pid *out, amb_term *reason)
{
    if (self == NULL || amb__child_check(spec) != 0 || spec->id == AMB_NONE)
        return AMB_EBADARG;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark mark = amb_heap_save(h);
    amb_term value = AMB_NONE;
    int rc = sup_call(self, mark, sup, op, amb__proto_spec_pack(h, spec), &value);
    return start_result(self, rc, value, out, reason);
}

int amb_sup_start_child(amb_proc *self, amb_term sup, const amb_child_spec *spec,
                        amb_pid *out, amb_term *reason)
{
    return start_child(self, sup, spec, AMB__OP_START_CHILD, out, reason);
}

int amb_dynsup_start_child(amb_proc *self, amb_term sup, const amb_child_spec *spec,
                           amb_pid *out, amb_term *reason)
{
    if (spec == NULL)
        return AMB_EBADARG;
    amb_child_spec s = *spec;
    s.id = AMB_ATOM_UNDEFINED; /* ignored by a dynamic supervisor */
    return start_child(self, sup, &s, AMB__OP_DYN_START_CHILD, out, reason);
}

/* A call whose argument is one term and whose value is a pid or nothing. */
static int call_with(amb_proc *self, amb_term sup, int op, amb_term arg, amb_pid *out)
{
    if (self == NULL || arg == AMB_NONE)
        return AMB_EBADARG;
    amb_heap_mark mark = amb_heap_save(amb_proc_heap(self));
    amb_term value = AMB_NONE;
    int rc = sup_call(self, mark, sup, op, arg, &value);
    if (rc == 0 && out != NULL)
        *out = value;
    return rc;
}

int amb_sup_terminate_child(amb_proc *self, amb_term sup, amb_term id)
{
    return call_with(self, sup, AMB__OP_TERMINATE_CHILD, id, NULL);
}

int amb_sup_restart_child(amb_proc *self, amb_term sup, amb_term id, amb_pid *out,
                          amb_term *reason)
{
    if (self == NULL || id == AMB_NONE)
        return AMB_EBADARG;
    amb_heap_mark mark = amb_heap_save(amb_proc_heap(self));
    amb_term value = AMB_NONE;
    int rc = sup_call(self, mark, sup, AMB__OP_RESTART_CHILD, id, &value);
    return start_result(self, rc, value, out, reason);
}

int amb_sup_delete_child(amb_proc *self, amb_term sup, amb_term id)
{
    return call_with(self, sup, AMB__OP_DELETE_CHILD, id, NULL);
}

int amb_dynsup_terminate_child(amb_proc *self, amb_term sup, amb_pid child)
{
    if (amb_type_of(child) != AMB_T_PID)
        return AMB_EBADARG;
    return call_with(self, sup, AMB__OP_DYN_TERMINATE_CHILD, child, NULL);
}

int amb_sup_which_children(amb_proc *self, amb_term sup, amb_term *out)
{
    if (self == NULL || out == NULL)
        return AMB_EBADARG;
    amb_term value = AMB_NONE;
    int rc = call_with(self, sup, AMB__OP_WHICH_CHILDREN, AMB_NIL, &value);
    if (rc != 0)
        return rc;
    return amb_term_copy(amb_proc_heap(self), value, out);
}

int amb_sup_count_children(amb_proc *self, amb_term sup, amb_sup_counts *out)
{
    if (self == NULL || out == NULL)
        return AMB_EBADARG;
    amb_term v = AMB_NONE;
    int rc = call_with(self, sup, AMB__OP_COUNT_CHILDREN, AMB_NIL, &v);
    if (rc != 0)
        return rc;
    uint64_t n[4];
    for (size_t i = 0; i < 4; i++)
        if (amb_tuple_arity(v) != 4 || amb_uint_get(amb_tuple_elem(v, i), &n[i]) != 0)
            return AMB_EBADARG;
    out->specs = (size_t)n[0];
    out->active = (size_t)n[1];
    out->supervisors = (size_t)n[2];
    out->workers = (size_t)n[3];
    return 0;
}

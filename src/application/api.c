/*
 * api.c - the public amb_app_* calls: each validates its arguments, makes
 * sure the runtime's controller exists, and makes one gen_server call to
 * it (controller.c says what it answers).
 *
 * The controller is started by the first call that needs it. Two processes
 * may race to start it: the loser's start fails with AMB_EEXIST and names
 * the winner, which both then use. It runs until the runtime stops.
 *
 * Replies are a small integer (an AMB_E* code, 0 for success) or, for the
 * calls that return a term, that term ({ok, Value}, {AMB_EINIT, Reason},
 * a list). Requests are built on the caller's heap and dropped after the
 * call (amb_heap_save/rewind); results the caller gets are copied onto its
 * heap after that, from the reply, which lives in the reply message.
 */
#include <string.h>

#include "application/app.h"

static int controller(amb_proc *self, amb_pid *out)
{
    amb_term name = amb_atom(AMB__APP_CTL_NAME);
    if (name == AMB_NONE)
        return AMB_ENOMEM;
    if (amb_whereis(self, name, out) == 0)
        return 0;
    amb_gen_opts o = {0};
    o.name = name;
    int rc = amb_gen_server_start(self, &amb__controller, NULL, &o, out, NULL);
    return rc == AMB_EEXIST ? 0 : rc; /* *out is the holder then */
}

/* Calls the controller with the request fmt builds; *reply borrowed until
 * the caller's next receive. The request is dropped from the heap.
 *
 * A controller ended by amb_app_shutdown does not process what waits in
 * its mailbox: such a call fails with AMB_EEXIT (or AMB_ENOPROC when the
 * name went first) without having done anything, so it is made again, to
 * a fresh controller, as the header promises. */
static int call(amb_proc *self, amb_term *reply, const char *fmt, ...)
{
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark mark = amb_heap_save(h);
    amb_term req = AMB_NONE;
    va_list ap;
    va_start(ap, fmt);
    int rc = amb_vpack(h, &req, NULL, fmt, ap);
    va_end(ap);
    for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
        amb_pid ctl = AMB_NONE;
        rc = controller(self, &ctl);
        if (rc == 0)
            rc = amb_gen_server_call(self, ctl, req, AMB_INFINITY, reply);
        if (rc != AMB_EEXIT && rc != AMB_ENOPROC)
            break;
        rc = 0;
    }
    amb_heap_rewind(h, mark);
    return rc;
}

/* The code in a reply that is a small integer, or `otherwise`. */
static int code_of(amb_term reply, int otherwise)
{
    int64_t v = 0;
    if (amb_is_small(reply) && amb_int_get(reply, &v) == 0)
        return (int)v;
    return otherwise;
}

/* An application name that names no atom names no loaded application:
 * looking it up does not create atoms for names nobody loaded. */
static int app_atom(const char *name, amb_term *out)
{
    if (name == NULL)
        return AMB_EBADARG;
    return amb_atom_existing(name, strlen(name), out);
}

int amb_app_load(amb_proc *self, const amb_app *app)
{
    if (self == NULL || app == NULL || app->name == NULL || app->start == NULL ||
        amb_atom(app->name) == AMB_NONE)
        return AMB_EBADARG;
    amb_term reply = AMB_NONE;
    int rc = call(self, &reply, "{load, ~u}", (uint64_t)(uintptr_t)app);
    return rc != 0 ? rc : code_of(reply, AMB_EBADARG);
}

int amb_app_load_config(amb_proc *self, const char *path)
{
    if (self == NULL || path == NULL)
        return AMB_EBADARG;
    char *text = NULL;
    size_t len = 0;
    int rc = amb__config_read_file(path, &text, &len);
    if (rc != 0)
        return rc;
    /* Parsed on a heap of its own: a big file must not stay on the
     * caller's heap. */
    amb_heap *h = NULL;
    amb_term cfg = AMB_NONE;
    rc = amb_heap_new(&h);
    if (rc == 0)
        rc = amb__config_parse(h, text, len, &cfg);
    amb_free(text);
    amb_term reply = AMB_NONE;
    if (rc == 0)
        rc = call(self, &reply, "{load_config, ~w}", cfg);
    amb_heap_free(h);
    return rc != 0 ? rc : code_of(reply, AMB_EBADARG);
}

int amb_app_start(amb_proc *self, const char *name, amb_app_type type, amb_term *reason)
{
    amb_term app = AMB_NONE;
    if (self == NULL || (type != AMB_APP_TEMPORARY && type != AMB_APP_TRANSIENT &&
                         type != AMB_APP_PERMANENT))
        return AMB_EBADARG;
    int rc = app_atom(name, &app);
    if (rc != 0)
        return rc;
    amb_term reply = AMB_NONE;
    rc = call(self, &reply, "{start, ~w, ~i, ~p}", app, (int)type, amb_self(self));
    if (rc != 0)
        return rc;
    if (amb_is_tuple(reply) && amb_tuple_arity(reply) == 2) {
        rc = code_of(amb_tuple_elem(reply, 0), AMB_EINIT);
        if (reason != NULL &&
            amb_term_copy(amb_proc_heap(self), amb_tuple_elem(reply, 1), reason) != 0)
            *reason = AMB_ATOM_UNDEFINED;
        return rc;
    }
    return code_of(reply, AMB_EBADARG);
}

int amb_app_stop(amb_proc *self, const char *name)
{
    amb_term app = AMB_NONE;
    if (self == NULL)
        return AMB_EBADARG;
    int rc = app_atom(name, &app);
    if (rc != 0)
        return rc;
    amb_term reply = AMB_NONE;
    rc = call(self, &reply, "{stop, ~w, ~p}", app, amb_self(self));
    return rc != 0 ? rc : code_of(reply, AMB_EBADARG);
}

int amb_app_which_applications(amb_proc *self, amb_term *out)
{
    if (self == NULL || out == NULL)
        return AMB_EBADARG;
    amb_term reply = AMB_NONE;
    int rc = call(self, &reply, "which");
    if (rc != 0)
        return rc;
    if (!amb_is_list(reply))
        return code_of(reply, AMB_EBADARG);
    return amb_term_copy(amb_proc_heap(self), reply, out);
}

int amb_app_get_env(amb_proc *self, const char *app, amb_term key, amb_term *out)
{
    amb_term name = AMB_NONE;
    if (self == NULL || out == NULL || !amb_is_atom(key))
        return AMB_EBADARG;
    int rc = app_atom(app, &name);
    if (rc != 0)
        return rc;
    amb_term reply = AMB_NONE;
    rc = call(self, &reply, "{get_env, ~w, ~w}", name, key);
    if (rc != 0)
        return rc;
    if (!amb_is_record(reply, AMB_ATOM_OK, 2))
        return code_of(reply, AMB_EBADARG);
    return amb_term_copy(amb_proc_heap(self), amb_tuple_elem(reply, 1), out);
}

int amb_app_set_env(amb_proc *self, const char *app, amb_term key, amb_term value)
{
    amb_term name = AMB_NONE;
    if (self == NULL || !amb_is_atom(key) || value == AMB_NONE)
        return AMB_EBADARG;
    int rc = app_atom(app, &name);
    if (rc != 0)
        return rc;
    amb_term reply = AMB_NONE;
    rc = call(self, &reply, "{set_env, ~w, ~w, ~w}", name, key, value);
    return rc != 0 ? rc : code_of(reply, AMB_EBADARG);
}

/* {'DOWN', Ref, process, _, _} for the reference ctx points to. */
static bool is_down_of(void *ctx, amb_term msg)
{
    return amb_is_record(msg, AMB_ATOM_DOWN, 5) &&
           amb_equal(amb_tuple_elem(msg, 1), *(const amb_term *)ctx);
}

int amb_app_shutdown(amb_proc *self)
{
    if (self == NULL)
        return AMB_EBADARG;
    amb_pid ctl = AMB_NONE;
    if (amb_whereis(self, amb_atom(AMB__APP_CTL_NAME), &ctl) != 0)
        return 0; /* no controller: nothing runs */
    amb_term reply = AMB_NONE;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark mark = amb_heap_save(h);
    amb_term ref = AMB_NONE;
    /* Monitor it: the call returns when the applications are stopped, the
     * DOWN when the controller has ended, so that a later call cannot
     * still find the old one by its name. The wait for the DOWN is a
     * receive after a mark, as every library wait is (process.h), so the
     * caller's last received message stays borrowed. */
    amb_recv_mark rmark = amb_receive_mark(self);
    int rc = amb_monitor(self, ctl, &ref);
    if (rc == 0) {
        amb_term req = AMB_TUPLE(h, amb_atom("shutdown"), amb_self(self));
        rc = req == AMB_NONE ? AMB_ENOMEM
                             : amb_gen_server_call(self, ctl, req, AMB_INFINITY, &reply);
        if (rc == 0)
            rc = code_of(reply, AMB_EBADARG);
        if (rc == AMB_EEXIT || rc == AMB_ENOPROC || rc == AMB_ECLOSED)
            rc = 0; /* another shutdown ended it first */
        if (rc == 0)
            amb_receive_if_after(self, rmark, is_down_of, &ref, AMB_INFINITY, NULL);
        else
            amb_demonitor(self, ref, AMB_DEMONITOR_FLUSH);
    }
    amb_heap_rewind(h, mark);
    return rc;
}

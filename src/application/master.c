/*
 * master.c - the application master: one stackful process per started
 * application, between the controller and the application's tree (OTP's
 * application_master).
 *
 * It runs app->start (which links the top supervisor to it), traps exits,
 * and then waits for one of two things:
 *   - {'EXIT', Top, R}: the tree ended by itself. The stop callback runs
 *     (as OTP's master calls Mod:stop/1 then too) and the controller gets
 *     {Tag, exited, Master, R}, which the restart type judges.
 *   - {Tag, stop} from the controller: exit(Top, shutdown), wait for the
 *     top's EXIT as long as it takes (OTP's shutdown infinity for a
 *     supervisor), run the stop callback, report {Tag, stopped, Master}.
 * It ends with reason normal in every case once its heap exists, so its
 * end is never taken for a failure by anything linked to it (without a
 * heap it ends at once with {error, 'AMB_ENOMEM'}, linked to nothing yet). Each report is
 * the master's last message, and the controller also monitors it: a master killed from
 * outside shows up as a DOWN instead (and its tree, whose parent it is,
 * shuts down on the exit signal).
 *
 * Memory: the loop rewinds its heap before each receive, so a master that
 * ignores a flood of stray messages does not grow.
 */
#include "application/app.h"

static void report(amb_proc *self, amb_pid ctl, const char *what, amb_term extra)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term tag = amb_atom(AMB__APP_TAG), kind = amb_atom(what);
    amb_term msg = extra == AMB_NONE ? AMB_TUPLE(h, tag, kind, amb_self(self))
                                     : AMB_TUPLE(h, tag, kind, amb_self(self), extra);
    /* A report that cannot be built or sent still ends the master, and the
     * controller's monitor turns that end into a DOWN it understands. */
    if (msg != AMB_NONE)
        amb_send(self, ctl, msg);
}

static void call_stop(amb_proc *self, const amb_app *app)
{
    if (app->stop != NULL)
        app->stop(self, app->arg);
}

/* Stops the tree: exit(top, shutdown), waited for through a monitor, not
 * the link (a top that unlinked itself must not hang amb_app_stop). */
static void stop_tree(amb_proc *self, amb_pid top)
{
    amb_term mref;
    if (amb_monitor(self, top, &mref) == 0) {
        amb_exit(self, top, AMB_ATOM_SHUTDOWN);
        amb_receive_match(self, AMB_INFINITY, NULL, "{'DOWN', ~v, _, _, _}", mref);
    } else {
        amb_exit(self, top, AMB_ATOM_KILL);
    }
}

/* True for the controller's {Tag, stop}: compared in place, since building
 * the term to compare with could fail for want of memory. */
static bool is_stop(amb_term msg)
{
    return amb_tuple_arity(msg) == 2 &&
           amb_tuple_elem(msg, 0) == amb_atom(AMB__APP_TAG) &&
           amb_tuple_elem(msg, 1) == AMB_ATOM_STOP;
}

void amb__master_main(amb_proc *self, void *arg)
{
    const amb_app *app = arg;
    amb_heap *h = amb_proc_heap(self);
    if (h == NULL) {
        /* Out of memory before anything started: the controller's monitor
         * turns this end into a failed start with this reason (or error,
         * when even that cannot be built). */
        amb_term why = AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_ERROR,
                                 amb_atom(amb_err_name(AMB_ENOMEM)));
        amb_exit_self(self, why != AMB_NONE ? why : AMB_ATOM_ERROR);
    }
    amb_pid ctl = AMB_NONE;
    if (amb_whereis(self, amb_atom(AMB__APP_CTL_NAME), &ctl) != 0)
        return; /* no controller: nobody waits for this application */
    amb_trap_exit(self, true);

    amb_pid top = AMB_NONE;
    amb_term why = AMB_NONE;
    int rc = app->start(self, app->arg, &top, &why);
    if (rc == 0 && amb_type_of(top) != AMB_T_PID)
        rc = AMB_EBADARG;
    /* start linked the top already; linking again is a no-op then, and
     * makes a start that forgot the link still safe. A top that is dead
     * already gives {'EXIT', Top, noproc} (we trap exits). */
    if (rc == 0)
        rc = amb_link(self, top);
    if (rc != 0) {
        if (why == AMB_NONE)
            why = AMB_TUPLE(h, AMB_ATOM_ERROR, amb_atom(amb_err_name(rc)));
        report(self, ctl, "failed", why);
        return;
    }
    report(self, ctl, "started", top);

    amb_term ctl_ref = AMB_NONE;
    amb_monitor(self, ctl, &ctl_ref); /* out of memory: no watch, as before */
    amb_heap_mark mark = amb_heap_save(h);
    for (;;) {
        amb_heap_rewind(h, mark);
        amb_term msg = AMB_NONE;
        if (amb_receive(self, AMB_INFINITY, &msg) != 0)
            continue;
        if (amb_is_record(msg, AMB_ATOM_EXIT, 3) && amb_tuple_elem(msg, 1) == top) {
            /* msg is borrowed until the next receive, which the stop
             * callback may do: keep the reason on our heap. */
            amb_term reason = AMB_ATOM_UNDEFINED;
            amb_term_copy(h, amb_tuple_elem(msg, 2), &reason);
            report(self, ctl, "exiting", AMB_NONE);
            call_stop(self, app);
            report(self, ctl, "exited", reason);
            return;
        }
        if (is_stop(msg)) {
            stop_tree(self, top);
            call_stop(self, app);
            report(self, ctl, "stopped", AMB_NONE);
            return;
        }
        if (amb_is_record(msg, AMB_ATOM_DOWN, 5) &&
            amb_equal(amb_tuple_elem(msg, 1), ctl_ref)) {
            /* The controller is gone (killed): no tree outlives it, or a
             * fresh controller would start a second copy (OTP links the
             * masters to the controller for the same reason). */
            stop_tree(self, top);
            call_stop(self, app);
            return;
        }
        /* Anything else (an EXIT from a process the start function linked
         * some other way, a stray message) is not ours to act on. */
    }
}

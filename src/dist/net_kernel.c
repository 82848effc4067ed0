/*
 * net_kernel.c - the node's net_kernel: a gen_server registered as
 * net_kernel, as on an Erlang node (lib/kernel net_kernel.erl, read, not
 * copied). It answers what Erlang asks of it (is_auth, which makes
 * net_adm:ping work), starts the initiator of a connection the ops asked
 * for (an op cannot spawn), starts the acceptor of a socket handed to it,
 * and, linked to every reader with exits trapped, takes a connection down
 * when its reader ended without doing so itself (a kill).
 *
 * Invariants: the server owns no connection; it acts on the table under
 * the node's lock and calls amb__conn_down outside it, like any reader.
 * Unknown calls are not answered (OTP's net_kernel neither: the caller's
 * own timeout or monitor ends the wait).
 */
#include "dist.h"

typedef struct nk {
    amb__dist *d;
} nk;

static amb_gen_ret nk_init(amb_proc *self, void *state, void *arg)
{
    nk *k = state;
    k->d = arg;
    amb_trap_exit(self, true);
    return amb_gen_ok();
}

static amb_gen_ret nk_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)self, (void)state, (void)from;
    /* net_adm:ping: the caller got through, so it is welcome (OTP: "if the
     * message comes through, the other node IS authorized"). */
    if (amb_tuple_arity(req) == 2 && amb_tuple_elem(req, 0) == amb_atom("is_auth"))
        return amb_gen_reply(amb_atom("yes"));
    return amb_gen_noreply();
}

/* The reason a connection went down with when its reader ended with
 * `reason`: the R of {shutdown, R}, connection_closed for anything else. */
static amb_term down_reason(amb_term reason)
{
    if (amb_tuple_arity(reason) == 2 && amb_tuple_elem(reason, 0) == AMB_ATOM_SHUTDOWN &&
        amb_is_atom(amb_tuple_elem(reason, 1)))
        return amb_tuple_elem(reason, 1);
    return amb_atom("connection_closed");
}

static amb_gen_ret nk_info(amb_proc *self, void *state, amb_term msg)
{
    amb__dist *d = ((nk *)state)->d;
    amb_term node, sock, pid, reason;
    if (amb_match(msg, "{connect,~w}", &node) == 0 && amb_is_atom(node)) {
        pthread_mutex_lock(&d->lock);
        amb__conn *c = amb__conn_get(d, node, false);
        bool start = c != NULL && c->state == AMB__CONN_PENDING && c->reader == AMB_NONE;
        pthread_mutex_unlock(&d->lock);
        if (start && amb__conn_start_reader(self, d, node, AMB_NONE, NULL) != 0)
            amb_log(self, AMB_LOG_ERROR, "distribution: cannot start a connection to %s",
                    amb_atom_name(node, NULL));
        return amb_gen_noreply();
    }
    if (amb_match(msg, "{accept,~w}", &sock) == 0) {
        amb__conn_start_reader(self, d, AMB_NONE, sock, NULL);
        return amb_gen_noreply();
    }
    if (amb_match(msg, "{'EXIT',~p,~w}", &pid, &reason) == 0) {
        amb__conn_reap(self, d, pid, down_reason(reason));
        return amb_gen_noreply();
    }
    return amb_gen_noreply();
}

static const amb_gen_server nk_server = {
    .name = "net_kernel",
    .state_size = sizeof(nk),
    .init = nk_init,
    .handle_call = nk_call,
    .handle_info = nk_info,
};

int amb__net_kernel_start(amb_proc *self, amb__dist *d, amb_pid *out)
{
    amb_gen_opts o = {.name = amb_atom("net_kernel")};
    return amb_gen_server_start(self, &nk_server, d, &o, out, NULL);
}

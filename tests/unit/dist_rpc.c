/*
 * tests/unit/dist_rpc.c - rpc and remote spawn between C nodes in one OS
 * process (src/dist/rpc.c, spawn.c), over the fake transport of
 * tests/dist_test.h.
 *
 * What is proved, node a calling functions node b registered:
 *   - amb_erpc_call: the value; error, throw and exit raised by the
 *     function as erpc raises them; undef for a name b did not register;
 *     a timeout, after which the late answer never reaches the caller;
 *     a call of this node's own function;
 *   - amb_spawn_request with link and monitor: the reply, then the new
 *     process's end as a (trapped) EXIT and as the DOWN, both with its
 *     real reason; the reply tag; to a node nobody runs: the error reply
 *     noconnection;
 *   - then the same checks the other way, b calling a;
 *   - a peer whose handshake has no SPAWN: notsup for both calls.
 */
#include "amb_test_rt.h"
#include "dist_test.h"

#define A_NODE "a@fakehost"
#define B_NODE "b@fakehost"

/* test:add(Xs...): the sum. */
static amb_rpc_class t_add(amb_proc *self, void *ctx, amb_term args, amb_term *value)
{
    (void)ctx;
    int64_t sum = 0, x;
    for (amb_term l = args; amb_is_cons(l); l = amb_list_tail(l))
        if (amb_int_get(amb_list_head(l), &x) == 0)
            sum += x;
    *value = amb_int(amb_proc_heap(self), sum);
    return AMB_RPC_RETURN;
}

/* test:raise(Class, Reason). */
static amb_rpc_class t_raise(amb_proc *self, void *ctx, amb_term args, amb_term *value)
{
    (void)self, (void)ctx;
    amb_term cls;
    if (amb_match(args, "[~w,~w]", &cls, value) != 0)
        return AMB_RPC_ERROR;
    return cls == amb_atom("throw")  ? AMB_RPC_THROW
           : cls == amb_atom("exit") ? AMB_RPC_EXIT
                                     : AMB_RPC_ERROR;
}

/* test:wait(Pid): {ready, self()} to Pid, then ends as {die, R} says; with
 * {reply, Pid}, it sends Pid done first and returns late. */
static amb_rpc_class t_wait(amb_proc *self, void *ctx, amb_term args, amb_term *value)
{
    (void)ctx;
    amb_heap *h = amb_proc_heap(self);
    amb_pid to;
    if (amb_match(args, "[~p]", &to) == 0)
        amb_send(self, to, AMB_TUPLE(h, amb_atom("ready"), amb_self(self)));
    amb_term m, r;
    amb_pid p;
    if (amb_receive(self, AMB_INFINITY, &m) != 0)
        return AMB_RPC_ERROR;
    if (amb_match(m, "{reply,~p}", &p) == 0) {
        amb_send(self, p, amb_atom("done"));
        *value = amb_atom("late");
        return AMB_RPC_RETURN;
    }
    if (amb_match(m, "{die,~w}", &r) != 0)
        return AMB_RPC_ERROR;
    *value = r;
    return AMB_RPC_EXIT;
}

static void register_all(amb_proc *self)
{
    CHECK_OK(self, amb_rpc_register(self, "test", "add", t_add, NULL));
    CHECK_OK(self, amb_rpc_register(self, "test", "raise", t_raise, NULL));
    CHECK_OK(self, amb_rpc_register(self, "test", "wait", t_wait, NULL));
}

/* amb_erpc_call of test:F(args) on the peer: the code, *result. */
static int call_peer(amb_proc *self, const char *peer, const char *f, amb_term args,
                     int64_t ms, amb_term *result)
{
    return amb_erpc_call(self, amb_atom(peer), "test", f, args, ms, result);
}

/* Everything one node checks against the other, peer (node `me` calls its
 * own function too). Leaves the caller's mailbox empty. */
static void exercise(amb_proc *self, const char *peer, const char *me)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term r, m;

    /* Values and exceptions. */
    CHECK_OK(self, call_peer(self, peer, "add", AMB_LIST(h, AMB_SMALL(1), AMB_SMALL(2)),
                             AMB_TEST_WAIT_MS, &r));
    CHECK_TERM(self, r, "3");
    CHECK_RC(self, AMB_EEXIT,
             call_peer(self, peer, "raise",
                       AMB_LIST(h, amb_atom("error"), amb_atom("boom")), AMB_TEST_WAIT_MS,
                       &r));
    CHECK_TERM(self, r, "{error,{exception,boom,[{test,raise,2,[]}]}}");
    CHECK_RC(self, AMB_EEXIT,
             call_peer(self, peer, "raise",
                       AMB_LIST(h, amb_atom("throw"), amb_atom("ball")), AMB_TEST_WAIT_MS,
                       &r));
    CHECK_TERM(self, r, "{throw,ball}");
    CHECK_RC(self, AMB_EEXIT,
             call_peer(self, peer, "raise",
                       AMB_LIST(h, amb_atom("exit"), amb_atom("bye")), AMB_TEST_WAIT_MS,
                       &r));
    CHECK_TERM(self, r, "{exit,{exception,bye}}");
    CHECK_RC(
        self, AMB_EEXIT,
        call_peer(self, peer, "nope", AMB_LIST(h, AMB_SMALL(1)), AMB_TEST_WAIT_MS, &r));
    CHECK_TERM(self, r, "{error,{exception,undef,[{test,nope,[1],[]}]}}");
    /* This node's own function, run here. */
    CHECK_OK(self, amb_erpc_call(self, amb_atom(me), "test", "add",
                                 AMB_LIST(h, AMB_SMALL(2), AMB_SMALL(2)),
                                 AMB_TEST_WAIT_MS, &r));
    CHECK_TERM(self, r, "4");

    /* A timeout: the function waits until told; once it has answered
     * (done seen, and a later call over the same connection returned),
     * nothing of the abandoned call is in the mailbox. */
    CHECK_RC(self, AMB_ETIMEDOUT,
             call_peer(self, peer, "wait", AMB_LIST(h, amb_self(self)), 50, &r));
    CHECK_TERM(self, r, "{error,{erpc,timeout}}");
    amb_pid waiter;
    WAIT_MSG(self, &m, "{ready,~p}", &waiter);
    CHECK_OK(self, amb_term_copy(h, waiter, &waiter));
    CHECK_OK(self,
             amb_send(self, waiter, AMB_TUPLE(h, amb_atom("reply"), amb_self(self))));
    WAIT_MSG(self, &m, "done");
    CHECK_OK(self, call_peer(self, peer, "add", AMB_NIL, AMB_TEST_WAIT_MS, &r));
    CHECK_TERM(self, r, "0");
    CHECK_EQ(self, amb_message_queue_len(self), 0);

    /* spawn_request with link and monitor: the reply, then EXIT and DOWN
     * with the real reason. */
    amb_trap_exit(self, true);
    amb_spawn_request_opts so = {
        .link = true, .monitor = true, .reply_tag = amb_atom("tag")};
    amb_term req;
    CHECK_OK(self, amb_spawn_request(self, amb_atom(peer), "test", "wait",
                                     AMB_LIST(h, amb_self(self)), &so, &req));
    amb_term rq;
    amb_pid child;
    WAIT_MSG(self, &m, "{tag,~w,ok,~p}", &rq, &child);
    CHECK(self, amb_equal(rq, req));
    CHECK_OK(self, amb_term_copy(h, child, &child));
    WAIT_MSG(self, &m, "{ready,_}");
    CHECK_OK(self, amb_send(self, child, AMB_TUPLE(h, amb_atom("die"), amb_atom("bye"))));
    amb_pid who;
    WAIT_MSG(self, &m, "{'EXIT',~p,bye}", &who);
    CHECK(self, amb_equal(who, child));
    WAIT_MSG(self, &m, "{'DOWN',~w,process,~p,bye}", &rq, &who);
    CHECK(self, amb_equal(rq, req) && amb_equal(who, child));

    /* amb_demonitor of a spawn request's monitor, after the reply and
     * before it: 0, and the new process's end brings its EXIT but no
     * DOWN (the round trip after it leaves the mailbox empty). */
    for (int before = 0; before < 2; before++) {
        CHECK_OK(self, amb_spawn_request(self, amb_atom(peer), "test", "wait",
                                         AMB_LIST(h, amb_self(self)), &so, &req));
        if (before)
            CHECK_OK(self, amb_demonitor(self, req, AMB_DEMONITOR_FLUSH));
        WAIT_MSG(self, &m, "{tag,~w,ok,~p}", &rq, &child);
        CHECK(self, amb_equal(rq, req));
        CHECK_OK(self, amb_term_copy(h, child, &child));
        WAIT_MSG(self, &m, "{ready,_}");
        if (!before)
            CHECK_OK(self, amb_demonitor(self, req, AMB_DEMONITOR_FLUSH));
        CHECK_RC(self, AMB_ENOTFOUND, amb_demonitor(self, req, 0)); /* gone */
        CHECK_OK(self,
                 amb_send(self, child, AMB_TUPLE(h, amb_atom("die"), amb_atom("bye"))));
        WAIT_MSG(self, &m, "{'EXIT',~p,bye}", &who);
        CHECK(self, amb_equal(who, child));
        CHECK_OK(self, call_peer(self, peer, "add", AMB_NIL, AMB_TEST_WAIT_MS, &r));
        CHECK_EQ(self, amb_message_queue_len(self), 0);
    }
    amb_trap_exit(self, false);

    /* A node nobody runs: the error reply. */
    CHECK_OK(self, amb_spawn_request(self, amb_atom("nobody@fakehost"), "test", "add",
                                     AMB_NIL, NULL, &req));
    WAIT_MSG(self, &m, "{spawn_reply,~w,error,noconnection}", &rq);
    CHECK(self, amb_equal(rq, req));

    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

/* Node b: registers, lets a go first, then runs the same checks against a. */
static void node_b(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, start_fake_node(self, B_NODE, NULL));
    CHECK_OK(self, amb_register(self, amb_atom("main_b"), amb_self(self)));
    register_all(self);
    CHECK_RC(self, AMB_ENOTFOUND, amb_rpc_unregister(self, "test", "none"));
    atomic_store(nodes_flag(0), 1);
    amb_term m = RECV_WITHIN(self, 60000);
    CHECK(self, m == amb_atom("your_turn"));
    exercise(self, A_NODE, B_NODE);
    atomic_store(nodes_flag(1), 1);
    m = RECV_WITHIN(self, 60000);
    CHECK(self, m == AMB_ATOM_STOP);
    CHECK_OK(self, amb_node_stop(self));
}

static void node_a(amb_proc *self, void *arg)
{
    (void)arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1);
    CHECK_OK(self, start_fake_node(self, A_NODE, NULL));
    register_all(self);
    exercise(self, B_NODE, A_NODE);
    amb_heap *h = amb_proc_heap(self);
    amb_term main_b = AMB_TUPLE(h, amb_atom("main_b"), amb_atom(B_NODE));
    CHECK_OK(self, amb_send(self, main_b, amb_atom("your_turn")));
    WAIT_UNTIL(self, atomic_load(nodes_flag(1)) == 1);
    CHECK_OK(self, amb_send(self, main_b, AMB_ATOM_STOP));
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_rpc_erpc_and_spawn_request_between_two_c_nodes)
{
    amb_fn *bodies[] = {node_a, node_b};
    void *args[] = {NULL, NULL};
    run_nodes(2, 1, bodies, args);
    run_nodes(2, 2, bodies, args);
}

/* ---------------------------------------------------------------------------
 * A peer that does not run remote spawn (no SPAWN in its handshake, as a
 * libei node): notsup, as OTP answers.
 * ------------------------------------------------------------------------ */

#define OLD_NODE "old@fakehost"

static void old_node(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, start_fake_node(self, OLD_NODE, NULL));
    amb__dist *d = amb__dist_of(amb_proc_rt(self));
    pthread_mutex_lock(&d->lock);
    d->flags &= ~AMB__DFLAG_SPAWN;
    pthread_mutex_unlock(&d->lock);
    CHECK_OK(self, amb_register(self, amb_atom("main_old"), amb_self(self)));
    atomic_store(nodes_flag(0), 1);
    amb_term m = RECV_WITHIN(self, 60000);
    CHECK(self, m == AMB_ATOM_STOP);
    CHECK_OK(self, amb_node_stop(self));
}

static void notsup_a(amb_proc *self, void *arg)
{
    (void)arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1);
    CHECK_OK(self, start_fake_node(self, A_NODE, NULL));
    amb_heap *h = amb_proc_heap(self);
    amb_term old = amb_atom(OLD_NODE), req, rq, m, r;
    /* No connection yet: the request waits for the handshake, which tells
     * that the peer has no SPAWN; then the same answer. */
    CHECK_OK(self, amb_spawn_request(self, old, "test", "add", AMB_NIL, NULL, &req));
    WAIT_MSG(self, &m, "{spawn_reply,~w,error,notsup}", &rq);
    CHECK(self, amb_equal(rq, req));
    CHECK_OK(self, amb_node_ping(self, old)); /* the connection is up */
    CHECK_OK(self, amb_spawn_request(self, old, "test", "add", AMB_NIL, NULL, &req));
    WAIT_MSG(self, &m, "{spawn_reply,~w,error,notsup}", &rq);
    CHECK(self, amb_equal(rq, req));
    CHECK_RC(self, AMB_ENOTSUP,
             amb_erpc_call(self, old, "test", "add", AMB_NIL, AMB_TEST_WAIT_MS, &r));
    CHECK_TERM(self, r, "{error,{erpc,notsup}}");
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    CHECK_OK(self,
             amb_send(self, AMB_TUPLE(h, amb_atom("main_old"), old), AMB_ATOM_STOP));
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_rpc_a_peer_without_remote_spawn_gives_notsup)
{
    amb_fn *bodies[] = {notsup_a, old_node};
    void *args[] = {NULL, NULL};
    run_nodes(2, 1, bodies, args);
    run_nodes(2, 2, bodies, args);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(dist_rpc_erpc_and_spawn_request_between_two_c_nodes),
              AMB_TEST_ENTRY(dist_rpc_a_peer_without_remote_spawn_gives_notsup))

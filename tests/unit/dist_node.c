/*
 * tests/unit/dist_node.c - the node layer (src/dist: dist.c, conn.c,
 * net_kernel.c) between C nodes in one OS process, over the fake transport
 * of tests/dist_test.h (the bytes of each connection travel as messages
 * between the runtimes): the handshake, frames, control messages, queues
 * and connection races run for real, without sockets or EPMD.
 *
 * What is proved, between node a and node b:
 *   - connect on first use; a registered name and a pid of the other node
 *     reached (REG_SEND, SEND_SENDER), the pid of the other node carried in
 *     messages and used back; nodes(hidden) lists the peer; ping;
 *   - links both ways with real reasons, a trapped EXIT naming the remote
 *     pid; unlink; monitors by pid and by {Name, Node} with their DOWN
 *     (naming {Name, Node}), noproc for a name nobody has; demonitor;
 *   - gen_server:call to a C server of the other node by {Name, Node} and
 *     by its pid; multi_call over this node, the other and a node nobody
 *     runs (the reply of the one that has the server, the others bad);
 *   - disconnect_node: every link and monitor across ends with
 *     noconnection exactly once, monitor_node and monitor_nodes report the
 *     nodedown, the next send connects again;
 *   - messages from one process to another arrive in the order sent, also
 *     those queued before the connection was up;
 *   - a node that cannot be reached: sends dropped, a monitor's DOWN and a
 *     link's EXIT are noconnection, monitor_node's nodedown comes, ping is
 *     pang;
 *   - a peer speaks only for its own processes: a LINK and an EXIT2 it
 *     sends in the name of a third node's pid are dropped (no exit signal,
 *     no link that its nodedown would end), its own EXIT2 arrives;
 *   - fair per-sender queues: a process that sends a message far above its
 *     budget waits in its send (the only one), while another process's
 *     sends on the same connection return at once; once the bytes flow,
 *     the other's small messages arrive before the large one is through
 *     (its fragments interleave with them), and the large one arrives
 *     whole; its sender goes on.
 */
#include "amb_test_rt.h"
#include "ambitious/gen_server.h"
#include "dist_test.h"

#define B_NODE "b@fakehost"

/* ---------------------------------------------------------------------------
 * Node b: an echo process, a victim, a gen_server; waits for stop.
 * ------------------------------------------------------------------------ */

static amb_gen_ret calc_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)state, (void)from;
    int a, b;
    if (amb_match(req, "{add,~i,~i}", &a, &b) == 0)
        return amb_gen_reply(amb_int(amb_proc_heap(self), a + b));
    if (req == amb_atom("whoami"))
        return amb_gen_reply(amb_self(self));
    return amb_gen_reply(amb_atom("what"));
}
static const amb_gen_server calc = {.handle_call = calc_call};

static void node_b(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, start_fake_node(self, B_NODE, NULL));
    CHECK_OK(self, amb_register(self, amb_atom("main_b"), amb_self(self)));
    amb_pid e;
    CHECK_OK(self, amb_spawn(self, dist_test_echo, NULL, &e));
    CHECK_OK(self, amb_register(self, amb_atom("echo"), e));
    amb_gen_opts o = {.name = amb_atom("calc")};
    CHECK_OK(self, amb_gen_server_start(self, &calc, NULL, &o, NULL, NULL));
    atomic_store(nodes_flag(0), 1);
    /* Serve victims on request: {victim, Name} spawns an echo registered as
     * Name; stop ends the node. */
    for (;;) {
        amb_term m = RECV_WITHIN(self, 60000), name;
        if (m == AMB_ATOM_STOP)
            break;
        if (amb_match(m, "{victim,~w}", &name) == 0) {
            amb_pid v;
            CHECK_OK(self, amb_spawn(self, dist_test_echo, NULL, &v));
            CHECK_OK(self, amb_register(self, name, v));
            atomic_fetch_add(nodes_flag(1), 1);
        }
    }
    CHECK_OK(self, amb_node_stop(self));
    /* The echo processes stay registered: end them. */
    amb_pid p;
    amb_term names[] = {amb_atom("echo"), amb_atom("v1"), amb_atom("v2")};
    for (size_t i = 0; i < 3; i++)
        if (amb_whereis(self, names[i], &p) == 0)
            amb_exit(self, p, AMB_ATOM_KILL);
    amb_gen_server_stop(self, amb_atom("calc"), AMB_ATOM_NORMAL, AMB_INFINITY);
}

/* Asks node b for a victim registered as name, waits for it. */
static void victim_on_b(amb_proc *self, const char *name)
{
    int before = atomic_load(nodes_flag(1));
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self, amb_send(self, AMB_TUPLE(h, amb_atom("main_b"), amb_atom(B_NODE)),
                            AMB_TUPLE(h, amb_atom("victim"), amb_atom(name))));
    WAIT_UNTIL(self, atomic_load(nodes_flag(1)) > before);
}

/* {echo, Pid, Msg} from the echo reached by `to`: returns Pid. */
static amb_pid echo_pid(amb_proc *self, amb_term to)
{
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self, amb_send(self, to, AMB_TUPLE(h, amb_self(self), amb_atom("who"))));
    amb_term m, pid;
    WAIT_MSG(self, &m, "{echo,~p,who}", &pid);
    amb_term copy;
    CHECK_OK(self, amb_term_copy(h, pid, &copy));
    return copy;
}

static void stop_b(amb_proc *self)
{
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self, amb_send(self, AMB_TUPLE(h, amb_atom("main_b"), amb_atom(B_NODE)),
                            AMB_ATOM_STOP));
}

/* ---------------------------------------------------------------------------
 * Signals across
 * ------------------------------------------------------------------------ */

static void signals_a(amb_proc *self, void *arg)
{
    (void)arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1);
    CHECK_OK(self, start_fake_node(self, "a@fakehost", NULL));
    amb_heap *h = amb_proc_heap(self);
    amb_term b = amb_atom(B_NODE);
    CHECK(self, amb_node(self) == amb_atom("a@fakehost"));

    /* A registered name there, and the pid it answers with. */
    amb_pid e = echo_pid(self, AMB_TUPLE(h, amb_atom("echo"), b));
    amb_term node;
    CHECK_OK(self, amb_pid_get(e, &node, NULL, NULL, NULL));
    CHECK(self, node == b);
    CHECK(self, echo_pid(self, e) == e || amb_equal(echo_pid(self, e), e));
    amb_term nodes;
    CHECK_OK(self, amb_nodes(self, AMB_NODES_HIDDEN, &nodes));
    CHECK_TERM(self, nodes, "['b@fakehost']");
    CHECK_OK(self, amb_nodes(self, 0, &nodes));
    CHECK(self, nodes == AMB_NIL);
    CHECK_OK(self, amb_node_ping(self, b));

    /* Order: a burst of sends arrives in order. */
    for (int i = 0; i < 200; i++)
        CHECK_OK(self, amb_send(self, e, AMB_TUPLE(h, amb_self(self), amb_int(h, i))));
    for (int i = 0; i < 200; i++) {
        amb_term m;
        WAIT_MSG(self, &m, "{echo,_,_}");
        CHECK_EQ(self, amb_small_value(amb_tuple_elem(m, 2)), i);
    }

    /* Links both ways with real reasons. */
    amb_trap_exit(self, true);
    victim_on_b(self, "v1");
    amb_pid v1 = echo_pid(self, AMB_TUPLE(h, amb_atom("v1"), b));
    CHECK_OK(self, amb_link(self, v1));
    CHECK_OK(self, amb_send(self, v1, amb_pack(h, "{die,{shutdown,because}}")));
    amb_term m;
    WAIT_MSG(self, &m, "{'EXIT',~v,{shutdown,because}}", v1);

    /* Monitors by pid and by name; DOWN names {Name, Node}; noproc. */
    victim_on_b(self, "v2");
    amb_pid v2 = echo_pid(self, AMB_TUPLE(h, amb_atom("v2"), b));
    amb_term r1, r2, r3, r4;
    amb_term by_name = AMB_TUPLE(h, amb_atom("v2"), b);
    CHECK_OK(self, amb_monitor(self, v2, &r1));
    CHECK_OK(self, amb_monitor(self, by_name, &r2));
    CHECK_OK(self, amb_monitor(self, v2, &r3));
    CHECK_OK(self, amb_demonitor(self, r3, AMB_DEMONITOR_FLUSH));
    CHECK_OK(self, amb_monitor(self, AMB_TUPLE(h, amb_atom("nosuch"), b), &r4));
    CHECK(self,
          wait_down(self, r4, AMB_TUPLE(h, amb_atom("nosuch"), b)) == AMB_ATOM_NOPROC);
    CHECK_OK(self, amb_send(self, v2, amb_pack(h, "{die,boom}")));
    CHECK(self, wait_down(self, r1, v2) == amb_atom("boom"));
    CHECK(self, wait_down(self, r2, by_name) == amb_atom("boom"));
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, NULL));

    /* gen_server:call by {Name, Node}. */
    amb_term reply;
    CHECK_OK(self,
             amb_gen_server_call(self, AMB_TUPLE(h, amb_atom("calc"), b),
                                 amb_pack(h, "{add,2,3}"), AMB_TEST_WAIT_MS, &reply));
    CHECK_TERM(self, reply, "5");
    CHECK_RC(self, AMB_ENOPROC,
             amb_gen_server_call(self, AMB_TUPLE(h, amb_atom("nocalc"), b), AMB_ATOM_OK,
                                 AMB_TEST_WAIT_MS, &reply));
    /* By the server's pid there; multi_call over this node (no calc here),
     * b and a node nobody runs. */
    amb_term calc_pid;
    CHECK_OK(self, amb_gen_server_call(self, AMB_TUPLE(h, amb_atom("calc"), b),
                                       amb_atom("whoami"), AMB_TEST_WAIT_MS, &calc_pid));
    CHECK_OK(self, amb_term_copy(h, calc_pid, &calc_pid));
    CHECK_OK(self, amb_gen_server_call(self, calc_pid, amb_pack(h, "{add,1,1}"),
                                       AMB_TEST_WAIT_MS, &reply));
    CHECK_TERM(self, reply, "2");
    amb_term replies, bad;
    CHECK_OK(self, amb_gen_server_multi_call(
                       self, amb_pack(h, "['a@fakehost','b@fakehost','nosuch@fakehost']"),
                       amb_atom("calc"), amb_pack(h, "{add,4,5}"), AMB_TEST_WAIT_MS,
                       &replies, &bad));
    CHECK_TERM(self, replies, "[{'b@fakehost',9}]");
    CHECK_TERM(self, bad, "['nosuch@fakehost','a@fakehost']");

    amb_trap_exit(self, false);
    stop_b(self);
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_node_signals_cross_between_two_c_nodes)
{
    amb_fn *bodies[] = {signals_a, node_b};
    void *args[] = {NULL, NULL};
    run_nodes(2, 1, bodies, args);
    run_nodes(2, 2, bodies, args);
}

/* ---------------------------------------------------------------------------
 * A lost connection: noconnection exactly once, nodedown, reconnect
 * ------------------------------------------------------------------------ */

/* Everything that arrives within a short quiet wait is counted by kind. */
typedef struct seen {
    int exits, downs, nodedowns, nodedowns_info, others;
} seen;

static void drain_seen(amb_proc *self, seen *s)
{
    amb_term m;
    while (amb_receive(self, 200, &m) == 0) {
        if (amb_is_record(m, AMB_ATOM_EXIT, 3) &&
            amb_tuple_elem(m, 2) == AMB_ATOM_NOCONNECTION)
            s->exits++;
        else if (amb_is_record(m, AMB_ATOM_DOWN, 5) &&
                 amb_tuple_elem(m, 4) == AMB_ATOM_NOCONNECTION)
            s->downs++;
        else if (amb_match(m, "{nodedown,'b@fakehost'}") == 0)
            s->nodedowns++;
        else if (amb_match(m, "{nodedown,'b@fakehost',[{node_type,hidden},"
                              "{nodedown_reason,disconnect}]}") == 0)
            s->nodedowns_info++;
        else
            s->others++;
    }
}

static void lost_a(amb_proc *self, void *arg)
{
    (void)arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1);
    CHECK_OK(self, start_fake_node(self, "a@fakehost", NULL));
    amb_heap *h = amb_proc_heap(self);
    amb_term b = amb_atom(B_NODE);
    CHECK_OK(self, amb_monitor_nodes(self, true,
                                     AMB_MONITOR_NODES_ALL | AMB_MONITOR_NODES_INFO));
    CHECK_OK(self, amb_node_ping(self, b));
    WAIT_MSG(self, NULL, "{nodeup,'b@fakehost',[{node_type,hidden}]}");
    amb_trap_exit(self, true);
    victim_on_b(self, "v1");
    victim_on_b(self, "v2");
    amb_pid v1 = echo_pid(self, AMB_TUPLE(h, amb_atom("v1"), b));
    amb_pid v2 = echo_pid(self, AMB_TUPLE(h, amb_atom("v2"), b));
    CHECK_OK(self, amb_link(self, v1));
    CHECK_OK(self, amb_monitor(self, v2, NULL));
    CHECK_OK(self, amb_monitor(self, AMB_TUPLE(h, amb_atom("v2"), b), NULL));
    CHECK_OK(self, amb_monitor_node(self, b, true));
    CHECK_OK(self, amb_monitor_node(self, b, true));
    CHECK_OK(self, amb_monitor_node(self, b, true));
    CHECK_OK(self, amb_monitor_node(self, b, false));
    /* A round trip: everything above has reached b. */
    CHECK(self, amb_equal(echo_pid(self, v2), v2));

    CHECK_OK(self, amb_disconnect_node(self, b));
    amb_term nodes;
    CHECK_OK(self, amb_nodes(self, AMB_NODES_CONNECTED, &nodes));
    CHECK(self, nodes == AMB_NIL);
    seen s = {0};
    drain_seen(self, &s);
    CHECK_EQ(self, s.exits, 1);
    CHECK_EQ(self, s.downs, 2);
    CHECK_EQ(self, s.nodedowns, 2);
    CHECK_EQ(self, s.nodedowns_info, 1);
    CHECK_EQ(self, s.others, 0);
    CHECK_RC(self, AMB_ENOTCONN, amb_disconnect_node(self, b));

    /* The next use connects again; v1 died of the lost link, v2 lives. */
    CHECK(self, amb_equal(echo_pid(self, v2), v2));
    WAIT_MSG(self, NULL, "{nodeup,'b@fakehost',_}");
    amb_term r;
    CHECK_OK(self, amb_monitor(self, v1, &r));
    CHECK(self, wait_down(self, r, v1) == AMB_ATOM_NOPROC);
    amb_trap_exit(self, false);
    CHECK_OK(self, amb_monitor_nodes(self, false,
                                     AMB_MONITOR_NODES_ALL | AMB_MONITOR_NODES_INFO));
    stop_b(self);
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_node_a_lost_connection_ends_each_relation_once_and_reconnects)
{
    amb_fn *bodies[] = {lost_a, node_b};
    void *args[] = {NULL, NULL};
    run_nodes(2, 1, bodies, args);
    run_nodes(2, 2, bodies, args);
}

/* ---------------------------------------------------------------------------
 * A node that cannot be reached
 * ------------------------------------------------------------------------ */

static void unreachable_a(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, start_fake_node(self, "a@fakehost", NULL));
    amb_heap *h = amb_proc_heap(self);
    amb_term nobody = amb_atom("nobody@fakehost");
    amb_term name = AMB_TUPLE(h, amb_atom("x"), nobody);
    amb_pid pid = amb_pid_term(h, nobody, 40, 0, 1);
    CHECK_OK(self, amb_send(self, name, AMB_ATOM_OK));
    CHECK_OK(self, amb_send(self, pid, AMB_ATOM_OK));
    amb_term r1, r2;
    CHECK_OK(self, amb_monitor(self, name, &r1));
    CHECK_OK(self, amb_monitor(self, pid, &r2));
    CHECK(self, wait_down(self, r1, name) == AMB_ATOM_NOCONNECTION);
    CHECK(self, wait_down(self, r2, pid) == AMB_ATOM_NOCONNECTION);
    amb_trap_exit(self, true);
    CHECK_OK(self, amb_link(self, pid));
    amb_term m;
    WAIT_MSG(self, &m, "{'EXIT',~v,noconnection}", pid);
    amb_trap_exit(self, false);
    CHECK_OK(self, amb_monitor_node(self, nobody, true));
    WAIT_MSG(self, &m, "{nodedown,'nobody@fakehost'}");
    CHECK_RC(self, AMB_ENOTCONN, amb_node_ping(self, nobody));
    amb_term reply;
    CHECK_RC(self, AMB_EEXIT,
             amb_gen_server_call(self, name, AMB_ATOM_OK, AMB_TEST_WAIT_MS, &reply));
    CHECK(self, reply == AMB_ATOM_NOCONNECTION);
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, NULL));
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_node_an_unreachable_node_gives_noconnection)
{
    run_both(unreachable_a, NULL);
}

/* ---------------------------------------------------------------------------
 * Ticks: a peer that goes silent is dropped after the tick time
 * ------------------------------------------------------------------------ */

static void tick_b(amb_proc *self, void *arg)
{
    (void)arg;
    amb_node_opts o = {.ticktime_ms = 1000};
    CHECK_OK(self, start_fake_node(self, B_NODE, &o));
    atomic_store(nodes_flag(0), 1);
    /* Up for as long as a has not seen the timeout; then done. */
    WAIT_UNTIL(self, atomic_load(nodes_flag(2)) == 1);
    CHECK_OK(self, amb_node_stop(self));
}

static void tick_a(amb_proc *self, void *arg)
{
    (void)arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1);
    amb_node_opts o = {.ticktime_ms = 1000};
    CHECK_OK(self, start_fake_node(self, "a@fakehost", &o));
    amb_term b = amb_atom(B_NODE);
    CHECK_OK(self, amb_monitor_nodes(self, true,
                                     AMB_MONITOR_NODES_ALL | AMB_MONITOR_NODES_INFO));
    CHECK_OK(self, amb_node_ping(self, b));
    WAIT_MSG(self, NULL, "{nodeup,'b@fakehost',_}");
    /* Quiet but ticking: still up after more than a tick time. */
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 1600, NULL));
    fake_mute(b, true);
    int64_t t0 = amb_now_ms();
    WAIT_MSG(self, NULL,
             "{nodedown,'b@fakehost',[{node_type,hidden},{nodedown_reason,net_tick_"
             "timeout}]}");
    int64_t took = amb_now_ms() - t0;
    CHECK(self, took >= 500);
    fake_mute(b, false);
    atomic_store(nodes_flag(2), 1);
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_node_a_silent_peer_is_dropped_after_the_tick_time)
{
    amb_fn *bodies[] = {tick_a, tick_b};
    void *args[] = {NULL, NULL};
    run_nodes(2, 2, bodies, args);
}

/* ---------------------------------------------------------------------------
 * Simultaneous connect, and order across the set-up
 * ------------------------------------------------------------------------ */

#define ROUNDS 20
#define BURST  300

/* Receives BURST numbered messages from `from_node`'s sender, in order. */
static void sink(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, amb_register(self, amb_atom("sink"), amb_self(self)));
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BURST; i++) {
            amb_term m = RECV_WITHIN(self, 60000);
            int round, n;
            CHECK_OK(self, amb_match(m, "{~i,~i}", &round, &n));
            CHECK_EQ(self, round, r);
            CHECK_EQ(self, n, i);
        }
        atomic_fetch_add(nodes_flag(5), 1);
    }
}

typedef struct both_arg {
    const char *me, *peer;
    int id;
} both_arg;

static void both(amb_proc *self, void *arg)
{
    both_arg *a = arg;
    CHECK_OK(self, start_fake_node(self, a->me, NULL));
    amb_pid s;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, sink, NULL, &s, &ref));
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    amb_term peer = amb_atom(a->peer);
    atomic_fetch_add(nodes_flag(0), 1);
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 2);
    for (int r = 0; r < ROUNDS; r++) {
        /* Both go at once: each side's first send connects. */
        atomic_fetch_add(nodes_flag(1), 1);
        WAIT_UNTIL(self, atomic_load(nodes_flag(1)) >= 2 * (r + 1));
        amb_term to = AMB_TUPLE(h, amb_atom("sink"), peer);
        for (int i = 0; i < BURST; i++)
            CHECK_OK(self, amb_send(self, to, AMB_TUPLE(h, AMB_SMALL(r), AMB_SMALL(i))));
        /* Both sinks have their round: one connection each way. */
        WAIT_UNTIL(self, atomic_load(nodes_flag(5)) >= 2 * (r + 1));
        amb_term nodes;
        CHECK_OK(self, amb_nodes(self, AMB_NODES_CONNECTED, &nodes));
        CHECK(self, amb_is_cons(nodes) && amb_list_head(nodes) == peer &&
                        amb_list_tail(nodes) == AMB_NIL);
        atomic_fetch_add(nodes_flag(2), 1);
        WAIT_UNTIL(self, atomic_load(nodes_flag(2)) >= 2 * (r + 1));
        /* One side drops the connection between rounds. */
        if (a->id == r % 2)
            amb_disconnect_node(self, peer);
        WAIT_UNTIL(self,
                   amb_nodes(self, AMB_NODES_CONNECTED, &nodes) == 0 && nodes == AMB_NIL);
        atomic_fetch_add(nodes_flag(3), 1);
        WAIT_UNTIL(self, atomic_load(nodes_flag(3)) >= 2 * (r + 1));
        amb_heap_rewind(h, top);
    }
    CHECK(self, wait_down(self, ref, s) == AMB_ATOM_NORMAL);
    atomic_fetch_add(nodes_flag(4), 1);
    WAIT_UNTIL(self, atomic_load(nodes_flag(4)) == 2);
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_node_simultaneous_connects_settle_on_one_connection_in_order)
{
    both_arg a = {"a@fakehost", B_NODE, 0}, b = {B_NODE, "a@fakehost", 1};
    amb_fn *bodies[] = {both, both};
    void *args[] = {&a, &b};
    run_nodes(2, 1, bodies, args);
    run_nodes(2, 2, bodies, args);
}

/* ---------------------------------------------------------------------------
 * A peer forging signals in a third node's name
 * ------------------------------------------------------------------------ */

/* Node b: on {forge, Pid} queues, on its connection to a, a LINK and an
 * EXIT2 from a pid of c@fakehost to Pid, then an EXIT2 of its own
 * (genuine); flag 2 ends the node. */
static void forger_b(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, start_fake_node(self, B_NODE, NULL));
    CHECK_OK(self, amb_register(self, amb_atom("main_b"), amb_self(self)));
    atomic_store(nodes_flag(0), 1);
    amb_heap *h = amb_proc_heap(self);
    amb_term m = RECV_WITHIN(self, 60000), to;
    CHECK_OK(self, amb_match(m, "{forge,~p}", &to));
    amb__dist *d = NULL;
    pthread_mutex_lock(&fake.lock);
    for (int i = 0; i < FAKE_NODES; i++)
        if (fake.nodes[i].name == amb_atom(B_NODE))
            d = fake.nodes[i].d;
    pthread_mutex_unlock(&fake.lock);
    CHECK(self, d != NULL);
    amb_term third = amb_pid_term(h, amb_atom("c@fakehost"), 7, 0, 1);
    amb_term a = amb_atom("a@fakehost");
    amb__dist_ctl link = {.op = AMB__DOP_LINK, .from = third, .to = to};
    CHECK_OK(self, amb__conn_queue(d, NULL, a, &link, AMB_NONE, NULL));
    amb__dist_ctl exit2 = {
        .op = AMB__DOP_EXIT2, .from = third, .to = to, .reason = amb_atom("forged")};
    CHECK_OK(self, amb__conn_queue(d, NULL, a, &exit2, AMB_NONE, NULL));
    CHECK_OK(self, amb_exit(self, to, amb_atom("genuine")));
    WAIT_UNTIL(self, atomic_load(nodes_flag(2)) == 1);
    CHECK_OK(self, amb_node_stop(self));
}

static void forged_a(amb_proc *self, void *arg)
{
    (void)arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1);
    CHECK_OK(self, start_fake_node(self, "a@fakehost", NULL));
    amb_heap *h = amb_proc_heap(self);
    amb_term b = amb_atom(B_NODE);
    amb_trap_exit(self, true);
    CHECK_OK(self, amb_send(self, AMB_TUPLE(h, amb_atom("main_b"), b),
                            AMB_TUPLE(h, amb_atom("forge"), amb_self(self))));
    /* The connection keeps order: once b's own EXIT2 is here, the forged
     * signals sent before it were handled, and left nothing. */
    amb_term m, from, node;
    WAIT_MSG(self, &m, "{'EXIT',~p,genuine}", &from);
    CHECK_OK(self, amb_pid_get(from, &node, NULL, NULL, NULL));
    CHECK(self, node == b);
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, NULL));
    /* No link to the third node's pid came over b's connection: its end
     * brings only the nodedown (relations end before it is sent). */
    CHECK_OK(self, amb_monitor_node(self, b, true));
    CHECK_OK(self, amb_disconnect_node(self, b));
    WAIT_MSG(self, &m, "~w", &from);
    CHECK_TERM(self, m, "{nodedown,'b@fakehost'}");
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, NULL));
    amb_trap_exit(self, false);
    atomic_store(nodes_flag(2), 1);
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_node_a_peer_speaks_only_for_its_own_processes)
{
    amb_fn *bodies[] = {forged_a, forger_b};
    void *args[] = {NULL, NULL};
    run_nodes(2, 1, bodies, args);
    run_nodes(2, 2, bodies, args);
}

/* ---------------------------------------------------------------------------
 * Fair per-sender queues
 * ------------------------------------------------------------------------ */

#define BULK_BYTES  ((size_t)4 << 20)
#define SMALL_COUNT 10
#define BUDGET      ((size_t)256 << 10)

/* On b: {From, bulk, Bin} -> From ! {got, bulk, Size, Intact}; {From,
 * small, I} -> From ! {got, small, I}; stop ends it. One process, so the
 * order of its answers is the order messages arrived in. */
static void recorder(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    for (;;) {
        amb_heap_rewind(h, top);
        amb_term m = RECV_WITHIN(self, 60000), from, body;
        int i;
        if (m == AMB_ATOM_STOP)
            return;
        if (amb_match(m, "{~p,bulk,~w}", &from, &body) == 0) {
            const uint8_t *p;
            size_t n;
            CHECK_OK(self, amb_binary_get(body, &p, &n));
            bool intact = true;
            for (size_t k = 0; k < n && intact; k += 4093)
                intact = p[k] == (uint8_t)(k * 7);
            CHECK_OK(self, amb_send(self, from,
                                    AMB_TUPLE(h, amb_atom("got"), amb_atom("bulk"),
                                              amb_uint(h, n), amb_bool(intact))));
        } else if (amb_match(m, "{~p,small,~i}", &from, &i) == 0) {
            CHECK_OK(self, amb_send(self, from,
                                    AMB_TUPLE(h, amb_atom("got"), amb_atom("small"),
                                              AMB_SMALL(i))));
        }
    }
}

static void fair_b(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, start_fake_node(self, B_NODE, NULL));
    amb_pid r;
    CHECK_OK(self, amb_spawn(self, recorder, NULL, &r));
    CHECK_OK(self, amb_register(self, amb_atom("rec"), r));
    CHECK_OK(self, amb_register(self, amb_atom("main_b"), amb_self(self)));
    atomic_store(nodes_flag(0), 1);
    amb_term m;
    WAIT_MSG(self, &m, "stop");
    CHECK_OK(self, amb_send(self, r, AMB_ATOM_STOP));
    CHECK_OK(self, amb_node_stop(self));
}

/* On a: sends one BULK_BYTES message to rec, then tells main. */
static void bulk_sender(amb_proc *self, void *arg)
{
    amb_pid main = (amb_pid)(uintptr_t)arg;
    amb_heap *h = amb_proc_heap(self);
    uint8_t *bytes;
    amb_term bin = amb_binary_alloc(h, BULK_BYTES, &bytes);
    CHECK(self, bin != AMB_NONE);
    for (size_t k = 0; k < BULK_BYTES; k++)
        bytes[k] = (uint8_t)(k * 7);
    amb_term rec = AMB_TUPLE(h, amb_atom("rec"), amb_atom(B_NODE));
    CHECK_OK(self, amb_send(self, rec, AMB_TUPLE(h, main, amb_atom("bulk"), bin)));
    CHECK_OK(self, amb_send(self, main, amb_atom("bulk_sent")));
}

/* On a: SMALL_COUNT small messages to rec, then tells main. */
static void small_sender(amb_proc *self, void *arg)
{
    amb_pid main = (amb_pid)(uintptr_t)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_term rec = AMB_TUPLE(h, amb_atom("rec"), amb_atom(B_NODE));
    for (int i = 1; i <= SMALL_COUNT; i++)
        CHECK_OK(self, amb_send(self, rec,
                                AMB_TUPLE(h, main, amb_atom("small"), AMB_SMALL(i))));
    CHECK_OK(self, amb_send(self, main, amb_atom("small_sent")));
}

static bool is_atom_msg(void *ctx, amb_term msg)
{
    return msg == *(amb_term *)ctx;
}

/* An answer of rec. */
static bool is_got(void *ctx, amb_term msg)
{
    (void)ctx;
    return amb_type_of(msg) == AMB_T_TUPLE && amb_tuple_arity(msg) >= 1 &&
           amb_tuple_elem(msg, 0) == amb_atom("got");
}

static void fair_a(amb_proc *self, void *arg)
{
    (void)arg;
    WAIT_UNTIL(self, atomic_load(nodes_flag(0)) == 1);
    amb_node_opts o = {.send_budget = BUDGET};
    CHECK_OK(self, start_fake_node(self, "a@fakehost", &o));
    amb__dist *d = amb__dist_of(amb_proc_rt(self));
    amb_term b = amb_atom(B_NODE);
    CHECK_OK(self, amb_node_ping(self, b));
    /* b stops reading: the bulk sender fills its queue and waits. */
    fake_hold(amb_atom("a@fakehost"), true);
    void *me = (void *)(uintptr_t)amb_self(self);
    amb_pid bulk, small;
    CHECK_OK(self, amb_spawn(self, bulk_sender, me, &bulk));
    amb__conn_stats st;
    size_t bulk_bytes = 0;
    WAIT_UNTIL(self, amb__conn_stats_of(d, b, bulk, &st, &bulk_bytes) == 0 &&
                         st.waiting == 1 && bulk_bytes > BUDGET);
    /* Another sender on the same connection is not held back. */
    CHECK_OK(self, amb_spawn(self, small_sender, me, &small));
    amb_term m;
    WAIT_MSG(self, &m, "small_sent");
    amb_term sent = amb_atom("bulk_sent");
    CHECK(self, amb_receive_if(self, is_atom_msg, &sent, 0, &m) == AMB_ETIMEDOUT);
    CHECK_OK(self, amb__conn_stats_of(d, b, bulk, &st, &bulk_bytes));
    CHECK(self, st.waiting == 1 && bulk_bytes > BUDGET);
    /* The bytes flow: the small messages pass the large one's fragments. */
    fake_hold(amb_atom("a@fakehost"), false);
    /* rec's answers in the order its messages arrived (any {got, ...}). */
    int i;
    for (int k = 1; k <= SMALL_COUNT; k++) {
        CHECK_OK(self, amb_receive_if(self, is_got, NULL, AMB_TEST_WAIT_MS, &m));
        CHECK(self, amb_match(m, "{got,small,~i}", &i) == 0 && i == k);
    }
    uint64_t size;
    amb_term intact;
    CHECK_OK(self, amb_receive_if(self, is_got, NULL, AMB_TEST_WAIT_MS, &m));
    CHECK_OK(self, amb_match(m, "{got,bulk,~u,~w}", &size, &intact));
    CHECK(self, size == BULK_BYTES && intact == AMB_ATOM_TRUE);
    WAIT_MSG(self, &m, "bulk_sent");
    WAIT_UNTIL(self,
               amb__conn_stats_of(d, b, AMB_NONE, &st, NULL) == 0 && st.waiting == 0);
    CHECK_OK(self, amb_send(self, AMB_TUPLE(amb_proc_heap(self), amb_atom("main_b"), b),
                            AMB_ATOM_STOP));
    CHECK_OK(self, amb_node_stop(self));
}

AMB_TEST(dist_node_a_sender_over_budget_waits_alone_and_fragments_interleave)
{
    amb_fn *bodies[] = {fair_a, fair_b};
    void *args[] = {NULL, NULL};
    run_nodes(2, 1, bodies, args);
    run_nodes(2, 2, bodies, args);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(dist_node_signals_cross_between_two_c_nodes),
    AMB_TEST_ENTRY(dist_node_a_lost_connection_ends_each_relation_once_and_reconnects),
    AMB_TEST_ENTRY(dist_node_an_unreachable_node_gives_noconnection),
    AMB_TEST_ENTRY(dist_node_a_silent_peer_is_dropped_after_the_tick_time),
    AMB_TEST_ENTRY(dist_node_simultaneous_connects_settle_on_one_connection_in_order),
    AMB_TEST_ENTRY(dist_node_a_peer_speaks_only_for_its_own_processes),
    AMB_TEST_ENTRY(dist_node_a_sender_over_budget_waits_alone_and_fragments_interleave))

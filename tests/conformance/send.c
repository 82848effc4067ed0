/*
 * tests/conformance/send.c - Erlang's `To ! Msg` (include/ambitious/process.h,
 * amb_send): every destination form, each with the outcome OTP gives.
 *
 *   To                             OTP 25                   here
 *   a live pid                     delivered                0, delivered
 *   a dead pid                     dropped                  0
 *   an active alias                delivered to its owner   0, delivered
 *   an alias no longer active      dropped                  0
 *   a registered atom              delivered                0, delivered
 *   an unregistered atom           badarg                   AMB_EBADARG
 *   {Name, node()}, registered     delivered                0, delivered
 *   {Name, node()}, unregistered   dropped                  0
 *   {Name, OtherNode}, other pid   sent over distribution   AMB_ENOTSUP
 *   any other term                 badarg                   AMB_EBADARG
 *
 * amb_rt_send (from outside the runtime) takes the same forms, and
 * gen_server's server references resolve through the same function
 * (amb_dest_resolve) for every form they share with a send; one table
 * checks each form through a send, a call, a cast and a monitor
 * (docs/semantics.md).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "amb_test_rt.h"

#define NODE "send_test@localhost"

/* Runs fn in a runtime named NODE, on one scheduler and on two;
 * keeps_memory as amb_test_cfg says. */
static void run_named_ex(amb_fn *fn, void *arg, bool keeps_memory)
{
    for (unsigned n = 1; n <= 2; n++) {
        amb_test_cfg cfg = {.rt = config_of(n), .keeps_memory = keeps_memory};
        cfg.rt.node_name = NODE;
        amb_test_run(&cfg, fn, arg);
    }
}

static void run_named(amb_fn *fn, void *arg)
{
    run_named_ex(fn, arg, false);
}

/* Forwards every message to its parent as {got, Msg} until `stop`. */
static void forwarder(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    for (;;) {
        amb_term m = RECV(self);
        if (m == AMB_ATOM_STOP)
            return;
        CHECK_OK(self, amb_send(self, parent,
                                AMB_TUPLE(amb_proc_heap(self), amb_atom("got"), m)));
    }
}

static amb_pid spawn_forwarder(amb_proc *self)
{
    amb_pid p;
    CHECK_OK(self, amb_spawn(self, forwarder, (void *)(uintptr_t)amb_self(self), &p));
    return p;
}

/* The message the forwarder got, or AMB_NONE when none comes within ms. */
static amb_term got(amb_proc *self, int64_t ms)
{
    amb_term m;
    if (amb_receive_match(self, ms, &m, "{got, _}") != 0)
        return AMB_NONE;
    return amb_tuple_elem(m, 1);
}

static amb_term node_tuple(amb_proc *self, const char *name, const char *node)
{
    return AMB_TUPLE(amb_proc_heap(self), amb_atom(name), amb_atom(node));
}

/* ===========================================================================
 * Pids and aliases
 * ======================================================================== */

static void pid_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid p = spawn_forwarder(self);
    CHECK_OK(self, amb_send(self, p, mk_int(1)));
    CHECK(self, got(self, DEADLINE_MS) == mk_int(1));
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, p, &ref));
    CHECK_OK(self, amb_send(self, p, AMB_ATOM_STOP));
    CHECK_OK(self,
             amb_receive_match(self, DEADLINE_MS, NULL, "{'DOWN', ~v, _, _, _}", ref));
    /* A dead pid: dropped, no error. */
    CHECK_OK(self, amb_send(self, p, mk_int(2)));
    CHECK(self, got(self, 20) == AMB_NONE);
}

AMB_TEST(send_to_a_pid_delivers_and_to_a_dead_pid_drops)
{
    run_named(pid_main, NULL);
}

static void alias_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term alias;
    CHECK_OK(self, amb_alias(self, 0, &alias));
    CHECK_OK(self, amb_send(self, alias, mk_int(1)));
    CHECK(self, RECV(self) == mk_int(1));
    CHECK_OK(self, amb_unalias(self, alias));
    CHECK_OK(self, amb_send(self, alias, mk_int(2)));
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 20, &(amb_term){0}));
}

AMB_TEST(send_to_an_alias_reaches_its_owner_until_it_is_removed)
{
    run_named(alias_main, NULL);
}

/* ===========================================================================
 * Names
 * ======================================================================== */

static void name_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid p = spawn_forwarder(self);
    CHECK_OK(self, amb_register(self, amb_atom("send_fwd"), p));
    CHECK_OK(self, amb_send(self, amb_atom("send_fwd"), mk_int(1)));
    CHECK(self, got(self, DEADLINE_MS) == mk_int(1));
    /* Name ! Msg with no such name raises badarg. */
    CHECK_RC(self, AMB_EBADARG, amb_send(self, amb_atom("send_nobody"), mk_int(2)));
    CHECK_OK(self, amb_unregister(self, amb_atom("send_fwd")));
    CHECK_RC(self, AMB_EBADARG, amb_send(self, amb_atom("send_fwd"), mk_int(3)));
    CHECK(self, got(self, 20) == AMB_NONE);
    CHECK_OK(self, amb_send(self, p, AMB_ATOM_STOP));
}

AMB_TEST(send_to_a_registered_name_delivers_and_to_an_unregistered_one_is_ebadarg)
{
    run_named(name_main, NULL);
}

static void name_node_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid p = spawn_forwarder(self);
    CHECK_OK(self, amb_register(self, amb_atom("send_fwd"), p));
    CHECK_OK(self, amb_send(self, node_tuple(self, "send_fwd", NODE), mk_int(1)));
    CHECK(self, got(self, DEADLINE_MS) == mk_int(1));
    /* {Name, node()} ! Msg with no such name: dropped, no error (OTP). */
    CHECK_OK(self, amb_send(self, node_tuple(self, "send_nobody", NODE), mk_int(2)));
    CHECK(self, got(self, 20) == AMB_NONE);
    CHECK_OK(self, amb_send(self, p, AMB_ATOM_STOP));
}

AMB_TEST(send_to_name_and_this_node_delivers_and_drops_when_unregistered)
{
    run_named(name_node_main, NULL);
}

/* ===========================================================================
 * Other nodes, other terms
 * ======================================================================== */

static void other_main(amb_proc *self, void *arg)
{
    amb_rt *other_rt = arg;
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self, amb_register(self, amb_atom("send_me"), amb_self(self)));
    /* Another node: {Name, Node}, a pid of another runtime (another node in
     * this OS process), a pid decoded from another node. */
    CHECK_RC(self, AMB_ENOTSUP,
             amb_send(self, node_tuple(self, "send_me", "elsewhere@host"), mk_int(1)));
    amb_pid foreign;
    CHECK_OK(self, amb_rt_spawn(other_rt, forwarder, NULL, &foreign));
    CHECK_RC(self, AMB_ENOTSUP, amb_send(self, foreign, mk_int(2)));
    amb_term remote = amb_pid_term(h, amb_atom("elsewhere@host"), 1, 0, 1);
    CHECK_RC(self, AMB_ENOTSUP, amb_send(self, remote, mk_int(3)));
    /* Terms that are no destination. */
    amb_term bad[] = {AMB_NONE,
                      mk_int(42),
                      AMB_NIL,
                      amb_make_ref(self), /* a reference that is no alias */
                      amb_binary(h, "send_me", 7),
                      AMB_TUPLE(h, amb_atom("send_me")),
                      AMB_TUPLE(h, amb_atom("send_me"), amb_atom(NODE), AMB_NIL),
                      AMB_TUPLE(h, mk_int(1), amb_atom(NODE)),
                      AMB_TUPLE(h, amb_atom("send_me"), mk_int(1))};
    for (size_t i = 0; i < AMB_COUNTOF(bad); i++) {
        CHECK_RC(self, AMB_EBADARG, amb_send(self, bad[i], mk_int(4)));
        amb_term out = AMB_ATOM_OK;
        CHECK_RC(self, AMB_EBADARG, amb_dest_resolve(self, bad[i], &out));
        CHECK(self, out == AMB_ATOM_OK);
    }
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 20, &(amb_term){0}));
}

AMB_TEST(send_to_another_node_is_enotsup_and_to_any_other_term_ebadarg)
{
    amb_config cfg = config_of(1);
    cfg.node_name = "send_other@localhost";
    amb_rt *other = NULL;
    assert_ok(amb_rt_new(&cfg, &other));
    /* The forwarder spawned into `other` lives until `other` is freed. */
    run_named_ex(other_main, other, true);
    amb_rt_free(other); /* ends the forwarder that never ran */
}

/* ===========================================================================
 * From outside the runtime, and gen_server's references
 * ======================================================================== */

typedef struct outside {
    amb_rt *rt;
    _Atomic amb_term pid, alias;
    atomic_int phase; /* 1: the process is ready; 2: the test thread sent */
} outside;

static void outside_main(amb_proc *self, void *arg)
{
    outside *o = arg;
    amb_term alias;
    CHECK_OK(self, amb_alias(self, 0, &alias));
    CHECK_OK(self, amb_register(self, amb_atom("send_outside"), amb_self(self)));
    atomic_store(&o->alias, alias);
    atomic_store(&o->pid, amb_self(self));
    atomic_store(&o->phase, 1);
    /* pid, name, {Name, Node} and alias: four messages, in that order. */
    for (int i = 1; i <= 4; i++)
        CHECK(self, RECV(self) == mk_int(i));
    WAIT_UNTIL(self, atomic_load(&o->phase) == 2);
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 20, &(amb_term){0}));
}

static void *outside_sender(void *arg)
{
    outside *o = arg;
    while (atomic_load(&o->phase) != 1)
        sched_yield();
    amb_heap *h;
    if (amb_heap_new(&h) != 0)
        return NULL;
    amb_term pid = atomic_load(&o->pid), alias = atomic_load(&o->alias);
    int rcs[] = {
        amb_rt_send(o->rt, pid, mk_int(1)),
        amb_rt_send(o->rt, amb_atom("send_outside"), mk_int(2)),
        amb_rt_send(o->rt, AMB_TUPLE(h, amb_atom("send_outside"), amb_atom(NODE)),
                    mk_int(3)),
        amb_rt_send(o->rt, alias, mk_int(4)),
        /* The same rules as amb_send. */
        amb_rt_send(o->rt, amb_atom("send_nobody"), mk_int(5)) == AMB_EBADARG ? 0 : -1,
        amb_rt_send(o->rt, AMB_TUPLE(h, amb_atom("send_nobody"), amb_atom(NODE)),
                    mk_int(6)),
        amb_rt_send(o->rt, AMB_TUPLE(h, amb_atom("x"), amb_atom("elsewhere@host")),
                    mk_int(7)) == AMB_ENOTSUP
            ? 0
            : -1,
        amb_rt_send(o->rt, mk_int(1), mk_int(8)) == AMB_EBADARG ? 0 : -1,
    };
    for (size_t i = 0; i < AMB_COUNTOF(rcs); i++)
        if (rcs[i] != 0)
            fprintf(stderr, "amb_rt_send case %zu: %d\n", i, rcs[i]);
    amb_heap_free(h);
    bool ok = true;
    for (size_t i = 0; i < AMB_COUNTOF(rcs); i++)
        ok = ok && rcs[i] == 0;
    atomic_store(&o->phase, ok ? 2 : 3);
    return NULL;
}

AMB_TEST(rt_send_from_outside_takes_the_same_forms)
{
    amb_config cfg = config_of(2);
    cfg.node_name = NODE;
    outside o = {0};
    reset_failure();
    assert_ok(amb_rt_new(&cfg, &o.rt));
    assert_ok(amb_rt_spawn(o.rt, outside_main, &o, NULL));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, outside_sender, &o), 0);
    int rc = amb_rt_run(o.rt);
    pthread_join(t, NULL);
    amb_rt_free(o.rt);
    assert_ok(rc);
    assert_int_equal(atomic_load(&o.phase), 2);
    assert_no_process_failure();
}

static const amb_gen_server idle_server = {.name = "idle"};

static void references_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid srv;
    amb_gen_opts o = {.name = amb_atom("send_srv")};
    CHECK_OK(self, amb_gen_server_start(self, &idle_server, NULL, &o, &srv, NULL));
    /* The forms a send and a server reference share resolve alike. */
    amb_term forms[] = {srv, amb_atom("send_srv"), node_tuple(self, "send_srv", NODE)};
    for (size_t i = 0; i < AMB_COUNTOF(forms); i++) {
        amb_pid a = AMB_NONE, b = AMB_NONE;
        CHECK_OK(self, amb_dest_resolve(self, forms[i], &a));
        CHECK_OK(self, amb_gen_server_whereis(self, forms[i], &b));
        CHECK(self, a == srv && b == srv);
    }
    /* A name nobody has: not found for both (gen_server says noproc). */
    amb_term nobody[] = {amb_atom("send_nobody"), node_tuple(self, "send_nobody", NODE)};
    for (size_t i = 0; i < AMB_COUNTOF(nobody); i++) {
        amb_pid a = AMB_NONE;
        CHECK_RC(self, AMB_ENOTFOUND, amb_dest_resolve(self, nobody[i], &a));
        CHECK_RC(self, AMB_ENOPROC, amb_gen_server_whereis(self, nobody[i], &a));
        CHECK_RC(self, AMB_ENOPROC,
                 amb_gen_server_call(self, nobody[i], AMB_ATOM_OK, DEADLINE_MS, NULL));
        CHECK(self, a == AMB_NONE);
    }
    /* Another node: not supported by either. */
    amb_term far = node_tuple(self, "send_srv", "elsewhere@host");
    amb_pid a = AMB_NONE;
    CHECK_RC(self, AMB_ENOTSUP, amb_dest_resolve(self, far, &a));
    CHECK_RC(self, AMB_ENOTSUP, amb_gen_server_whereis(self, far, &a));
    /* An alias is a destination, not a server reference. */
    amb_term alias;
    CHECK_OK(self, amb_alias(self, 0, &alias));
    CHECK_OK(self, amb_dest_resolve(self, alias, &a));
    CHECK(self, a == alias);
    CHECK_RC(self, AMB_EBADARG, amb_gen_server_whereis(self, alias, &a));
    CHECK_RC(self, AMB_EBADARG, amb_dest_resolve(self, srv, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_dest_resolve(NULL, srv, &a));
    CHECK_OK(self, amb_gen_server_stop(self, srv, AMB_ATOM_NORMAL, DEADLINE_MS));
}

AMB_TEST(dest_resolve_and_gen_server_references_share_one_resolution)
{
    run_named(references_main, NULL);
}

/* docs/semantics.md's table of one destination through four calls: a send,
 * a gen_server call and cast, and a monitor (issue 13, item 12: gen_server's
 * references and amb_send agree; item 11: monitors take names). */
static int refs_via_register(amb_proc *self, void *ctx, amb_term name, amb_pid pid)
{
    (void)self, (void)ctx, (void)name, (void)pid;
    return AMB_EEXIST;
}

static int refs_via_unregister(amb_proc *self, void *ctx, amb_term name)
{
    (void)self, (void)ctx, (void)name;
    return AMB_ENOTFOUND;
}

/* Knows one name, `x`: the pid ctx points to. */
static int refs_via_whereis(amb_proc *self, void *ctx, amb_term name, amb_pid *out)
{
    (void)self;
    if (name != amb_atom("x"))
        return AMB_ENOTFOUND;
    *out = *(const amb_pid *)ctx;
    return 0;
}

enum { LIVE = 1, DOWN_NOPROC = 2 }; /* what a monitor gives, besides an error */

typedef struct refs_row {
    const char *what;
    amb_term dest;
    int send, call, cast, monitor; /* results; monitor: LIVE, DOWN_NOPROC or an error */
} refs_row;

static void refs_table_main(amb_proc *self, void *arg)
{
    (void)arg;
    static amb_pid srv;
    amb_gen_opts o = {.name = amb_atom("send_srv")};
    CHECK_OK(self, amb_gen_server_start(self, &idle_server, NULL, &o, &srv, NULL));
    amb_via via = {refs_via_register, refs_via_unregister, refs_via_whereis, &srv};
    CHECK_OK(self, amb_via_register(amb_atom("refs_via"), &via));
    amb_pid dead;
    CHECK_OK(self, amb_spawn(self, forwarder, (void *)(uintptr_t)amb_self(self), &dead));
    amb_term ref;
    CHECK_OK(self, amb_monitor(self, dead, &ref));
    CHECK_OK(self, amb_send(self, dead, AMB_ATOM_STOP));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{'DOWN',~r,_,_,_}", ref));
    amb_term alias;
    CHECK_OK(self, amb_alias(self, 0, &alias));
    amb_heap *h = amb_proc_heap(self);
    const refs_row rows[] = {
        {"a live pid", srv, 0, 0, 0, LIVE},
        {"a dead pid", dead, 0, AMB_ENOPROC, 0, DOWN_NOPROC},
        {"Name", amb_atom("send_srv"), 0, 0, 0, LIVE},
        {"Name, nobody", amb_atom("send_nobody"), AMB_EBADARG, AMB_ENOPROC, 0,
         DOWN_NOPROC},
        {"{Name, node()}", node_tuple(self, "send_srv", NODE), 0, 0, 0, LIVE},
        {"{Name, node()}, nobody", node_tuple(self, "send_nobody", NODE), 0, AMB_ENOPROC,
         0, DOWN_NOPROC},
        {"{Name, Node}", node_tuple(self, "send_srv", "elsewhere@host"), AMB_ENOTSUP,
         AMB_ENOTSUP, AMB_ENOTSUP, AMB_ENOTSUP},
        {"an alias", alias, 0, AMB_EBADARG, AMB_EBADARG, AMB_EBADARG},
        {"{via, M, N}",
         AMB_TUPLE(h, amb_atom("via"), amb_atom("refs_via"), amb_atom("x")), AMB_EBADARG,
         0, 0, AMB_EBADARG},
        {"{1, 2}", AMB_TUPLE(h, mk_int(1), mk_int(2)), AMB_EBADARG, AMB_EBADARG,
         AMB_EBADARG, AMB_EBADARG},
        {"42", mk_int(42), AMB_EBADARG, AMB_EBADARG, AMB_EBADARG, AMB_EBADARG},
    };
    for (size_t i = 0; i < AMB_COUNTOF(rows); i++) {
        const refs_row *r = &rows[i];
        amb_term reply;
        int got[4] = {
            amb_send(self, r->dest, amb_atom("hello")),
            amb_gen_server_call(self, r->dest, amb_atom("hello"), DEADLINE_MS, &reply),
            amb_gen_server_cast(self, r->dest, amb_atom("hello")),
            amb_monitor(self, r->dest, &ref),
        };
        int want[4] = {r->send, r->call, r->cast, r->monitor > 0 ? 0 : r->monitor};
        for (int k = 0; k < 4; k++)
            if (got[k] != want[k])
                proc_fail(self, __FILE__, __LINE__,
                          "%s: call %d returned %s, expected %s", r->what, k,
                          amb_err_name(got[k]), amb_err_name(want[k]));
        if (r->monitor == DOWN_NOPROC)
            CHECK_OK(self, amb_receive_match(self, 0, NULL,
                                             "{'DOWN',~r,process,_,noproc}", ref));
        if (r->monitor == LIVE)
            CHECK_OK(self, amb_demonitor(self, ref, AMB_DEMONITOR_FLUSH));
        if (amb_type_of(r->dest) == AMB_T_REF) /* our alias: the send came here */
            CHECK(self, RECV(self) == amb_atom("hello"));
        CHECK_EQ(self, amb_message_queue_len(self), 0);
    }
    CHECK_OK(self, amb_gen_server_stop(self, srv, AMB_ATOM_NORMAL, DEADLINE_MS));
    CHECK_OK(self, amb_via_unregister(amb_atom("refs_via")));
}

AMB_TEST(gen_server_references_resolve_as_sends_do)
{
    run_named(refs_table_main, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(send_to_a_pid_delivers_and_to_a_dead_pid_drops),
    AMB_TEST_ENTRY(send_to_an_alias_reaches_its_owner_until_it_is_removed),
    AMB_TEST_ENTRY(
        send_to_a_registered_name_delivers_and_to_an_unregistered_one_is_ebadarg),
    AMB_TEST_ENTRY(send_to_name_and_this_node_delivers_and_drops_when_unregistered),
    AMB_TEST_ENTRY(send_to_another_node_is_enotsup_and_to_any_other_term_ebadarg),
    AMB_TEST_ENTRY(rt_send_from_outside_takes_the_same_forms),
    AMB_TEST_ENTRY(dest_resolve_and_gen_server_references_share_one_resolution),
    AMB_TEST_ENTRY(gen_server_references_resolve_as_sends_do))

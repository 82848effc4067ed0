/*
 * tests/behaviour/gen_server_names.c - server references and names
 * (include/ambitious/gen_server.h, "Server references", "Via modules"):
 * local names, {via, Module, Name} through a via module registered by the
 * test (a small table), {Name, Node} on the local node (another node is
 * AMB_ENOTSUP), multi_call and abcast on the local node.
 *
 * The harness and the test server (tsrv) are in gs_test.h; the way the
 * tests run is described in gen_server.c.
 */
#include "amb_test_rt.h"

#include "gs_test.h"

/* ===========================================================================
 * A via module: a table of {Name, Pid} behind a mutex (servers register
 * from their own processes, on any scheduler).
 * ======================================================================== */

#define VIA_MAX 16

static pthread_mutex_t via_lock = PTHREAD_MUTEX_INITIALIZER;
static amb_heap *via_heap; /* the names, copied; made and freed by each run */
static struct {
    amb_term name;
    amb_pid pid;
} via_tab[VIA_MAX];
static int via_n;
static atomic_int via_registers, via_unregisters;

static int via_find(amb_term name)
{
    for (int i = 0; i < via_n; i++)
        if (amb_equal(via_tab[i].name, name))
            return i;
    return -1;
}

static void via_remove(int i)
{
    via_tab[i] = via_tab[--via_n];
}

static int via_register_name(amb_proc *self, void *ctx, amb_term name, amb_pid pid)
{
    CHECK(self, ctx == &via_tab);
    CHECK(self, pid == amb_self(self)); /* called in the process to hold it */
    atomic_fetch_add(&via_registers, 1);
    pthread_mutex_lock(&via_lock);
    int i = via_find(name), rc = 0;
    if (i >= 0 && amb_is_process_alive(self, via_tab[i].pid)) {
        rc = AMB_EEXIST;
    } else {
        if (i >= 0)
            via_remove(i);
        amb_term copy;
        if (via_n == VIA_MAX || amb_term_copy(via_heap, name, &copy) != 0) {
            rc = AMB_ENOMEM;
        } else {
            via_tab[via_n].name = copy;
            via_tab[via_n++].pid = pid;
        }
    }
    pthread_mutex_unlock(&via_lock);
    return rc;
}

static int via_unregister_name(amb_proc *self, void *ctx, amb_term name)
{
    (void)self;
    (void)ctx;
    atomic_fetch_add(&via_unregisters, 1);
    pthread_mutex_lock(&via_lock);
    int i = via_find(name);
    if (i >= 0)
        via_remove(i);
    pthread_mutex_unlock(&via_lock);
    return i >= 0 ? 0 : AMB_ENOTFOUND;
}

static int via_whereis_name(amb_proc *self, void *ctx, amb_term name, amb_pid *out)
{
    (void)ctx;
    pthread_mutex_lock(&via_lock);
    int i = via_find(name);
    amb_pid pid = i >= 0 ? via_tab[i].pid : AMB_NONE;
    pthread_mutex_unlock(&via_lock);
    if (pid == AMB_NONE || !amb_is_process_alive(self, pid))
        return AMB_ENOTFOUND;
    *out = pid;
    return 0;
}

static void via_setup(void)
{
    via_n = 0;
    atomic_store(&via_registers, 0);
    atomic_store(&via_unregisters, 0);
    amb_via v = {via_register_name, via_unregister_name, via_whereis_name, &via_tab};
    assert_ok(amb_via_register(amb_atom("gst_via"), &v));
}

static void via_teardown(void)
{
    assert_ok(amb_via_unregister(amb_atom("gst_via")));
}

/* ===========================================================================
 * Local names
 * ======================================================================== */

static void local_name_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_term name = amb_atom("gst_local");
    amb_gen_opts o = {.name = name};
    amb_pid srv = tsrv_start(self, &a, &o);
    amb_pid where = AMB_NONE;
    CHECK_OK(self, amb_whereis(self, name, &where));
    CHECK(self, where == srv);
    CHECK_OK(self, amb_gen_server_whereis(self, name, &where));
    CHECK(self, where == srv);
    CHECK_OK(self, amb_gen_server_whereis(self, srv, &where));
    CHECK(self, where == srv);
    CHECK_EQ(self, int_of(CALL(self, name, P(self, "{add,2}"))), 2);
    CHECK_OK(self, amb_gen_server_cast(self, name, P(self, "{add,3}")));
    CHECK_EQ(self, int_of(CALL(self, name, amb_atom("get"))), 5);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, srv, &pi));
    CHECK(self, pi.registered_name == name);
    tsrv_stop(self, name);
    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, name, &where));
    CHECK_RC(self, AMB_ENOPROC,
             amb_gen_server_call(self, name, amb_atom("get"), DEADLINE_MS, NULL));
}

AMB_TEST(gen_server_local_name)
{
    run_both(local_name_body, NULL);
}

/* ===========================================================================
 * via
 * ======================================================================== */

static void via_body(amb_proc *self, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&via_lock); /* a fresh table for each run */
    via_n = 0;
    CHECK_OK(self, amb_heap_new(&via_heap));
    pthread_mutex_unlock(&via_lock);
    atomic_store(&via_registers, 0);
    atomic_store(&via_unregisters, 0);
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_term ref = P(self, "{via,gst_via,{my,server,<<\"name\">>}}");
    amb_gen_opts o = {.name = ref};
    amb_pid srv = tsrv_start(self, &a, &o);
    CHECK_EQ(self, atomic_load(&via_registers), 1);
    amb_pid where = AMB_NONE;
    CHECK_OK(self, amb_gen_server_whereis(self, ref, &where));
    CHECK(self, where == srv);
    /* The same name built anew (another term, equal) finds it. */
    amb_term again = P(self, "{via,gst_via,{my,server,<<\"name\">>}}");
    CHECK_EQ(self, int_of(CALL(self, again, P(self, "{add,4}"))), 4);
    CHECK_OK(self, amb_gen_server_cast(self, again, P(self, "{add,1}")));
    CHECK_EQ(self, int_of(CALL(self, ref, amb_atom("get"))), 5);
    /* Taken: AMB_EEXIST with the holder, and the second init never ran. */
    tsrv_arg b;
    tsrv_arg_init(&b, self, INIT_OK);
    amb_pid holder = AMB_NONE;
    CHECK_RC(self, AMB_EEXIST,
             amb_gen_server_start(self, &tsrv_cb, &b, &o, &holder, NULL));
    CHECK(self, holder == srv);
    CHECK_EQ(self, int_of(CALL(self, ref, amb_atom("get"))), 5);
    /* An unknown name of the module, and an unknown module. */
    CHECK_RC(self, AMB_ENOPROC,
             amb_gen_server_call(self, P(self, "{via,gst_via,nobody}"), amb_atom("get"),
                                 DEADLINE_MS, NULL));
    CHECK_RC(self, AMB_ENOPROC,
             amb_gen_server_whereis(self, P(self, "{via,gst_via,nobody}"), &where));
    int rc = amb_gen_server_call(self, P(self, "{via,gst_no_module,x}"), amb_atom("get"),
                                 DEADLINE_MS, NULL);
    CHECK(self, rc == AMB_ENOPROC || rc == AMB_EBADARG);
    /* The holder's name survived the failed start (nothing unregistered). */
    CHECK_EQ(self, atomic_load(&via_unregisters), 0);
    CHECK_OK(self, amb_gen_server_stop(self, ref, AMB_ATOM_NORMAL, DEADLINE_MS));
    CHECK(self, !amb_is_process_alive(self, srv));
    /* A server that stops unregisters its via name. */
    CHECK_EQ(self, atomic_load(&via_unregisters), 1);
    pthread_mutex_lock(&via_lock);
    int left = via_find(ref == AMB_NONE ? AMB_NONE : amb_tuple_elem(ref, 2));
    pthread_mutex_unlock(&via_lock);
    CHECK_EQ(self, left, -1);
    CHECK_RC(self, AMB_ENOPROC,
             amb_gen_server_call(self, ref, amb_atom("get"), DEADLINE_MS, NULL));

    /* A failed init gives the name back (OTP unregisters it): a new server
     * takes it at once. */
    tsrv_arg c;
    tsrv_arg_init(&c, self, INIT_STOP);
    c.reason = "no_thanks";
    CHECK_RC(self, AMB_EINIT, amb_gen_server_start(self, &tsrv_cb, &c, &o, NULL, NULL));
    CHECK_EQ(self, atomic_load(&via_unregisters), 2);
    srv = tsrv_start(self, &a, &o);
    CHECK_OK(self, amb_gen_server_whereis(self, ref, &where));
    CHECK(self, where == srv);
    tsrv_stop(self, ref);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    /* The table is empty again; its heap lives as long as the run. */
    pthread_mutex_lock(&via_lock);
    amb_heap_free(via_heap);
    via_heap = NULL;
    pthread_mutex_unlock(&via_lock);
}

AMB_TEST(gen_server_via_name)
{
    via_setup();
    run_both(via_body, NULL);
    via_teardown();
}

AMB_TEST(gen_server_via_register_and_unregister)
{
    amb_via v = {via_register_name, via_unregister_name, via_whereis_name, &via_tab};
    amb_term m = amb_atom("gst_via_reg");
    assert_ok(amb_via_register(m, &v));
    assert_rc(AMB_EEXIST, amb_via_register(m, &v));
    assert_ok(amb_via_unregister(m));
    assert_rc(AMB_ENOTFOUND, amb_via_unregister(m));
    assert_ok(amb_via_register(m, &v)); /* again, after unregister */
    assert_ok(amb_via_unregister(m));
    assert_rc(AMB_EBADARG, amb_via_register(AMB_SMALL(1), &v));
    assert_rc(AMB_EBADARG, amb_via_register(AMB_NONE, &v));
    assert_rc(AMB_EBADARG, amb_via_register(m, NULL));
    amb_via missing = v;
    missing.whereis_name = NULL;
    assert_rc(AMB_EBADARG, amb_via_register(m, &missing));
    assert_rc(AMB_ENOTFOUND, amb_via_unregister(amb_atom("gst_via_never")));
    /* At most 64 modules. */
    char name[32];
    int made = 0, rc = 0;
    for (; made < 100; made++) {
        snprintf(name, sizeof name, "gst_via_%d", made);
        rc = amb_via_register(amb_atom(name), &v);
        if (rc != 0)
            break;
    }
    assert_rc(AMB_ESYSLIMIT, rc);
    assert_true(made <= 64);
    for (int i = 0; i < made; i++) {
        snprintf(name, sizeof name, "gst_via_%d", i);
        assert_ok(amb_via_unregister(amb_atom(name)));
    }
    assert_ok(amb_via_register(m, &v)); /* room again */
    assert_ok(amb_via_unregister(m));
}

/* ===========================================================================
 * {Name, Node}
 * ======================================================================== */

static void name_node_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_gen_opts o = {.name = amb_atom("gst_nn")};
    amb_pid srv = tsrv_start(self, &a, &o);
    amb_term local = P(self, "{gst_nn,'nonode@nohost'}");
    CHECK_EQ(self, int_of(CALL(self, local, P(self, "{add,7}"))), 7);
    CHECK_OK(self, amb_gen_server_cast(self, local, P(self, "{add,1}")));
    CHECK_EQ(self, int_of(CALL(self, local, amb_atom("get"))), 8);
    amb_pid where;
    CHECK_OK(self, amb_gen_server_whereis(self, local, &where));
    CHECK(self, where == srv);
    CHECK_RC(self, AMB_ENOPROC,
             amb_gen_server_call(self, P(self, "{gst_nobody,'nonode@nohost'}"),
                                 amb_atom("get"), DEADLINE_MS, NULL));
    /* Another node: not until distribution exists. */
    amb_term remote = P(self, "{gst_nn,'other@host'}");
    CHECK_RC(self, AMB_ENOTSUP,
             amb_gen_server_call(self, remote, amb_atom("get"), DEADLINE_MS, NULL));
    tsrv_stop(self, local);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_name_at_the_local_node)
{
    run_both(name_node_body, NULL);
}

/* ===========================================================================
 * multi_call / abcast
 * ======================================================================== */

static void multi_body(amb_proc *self, void *arg)
{
    (void)arg;
    tsrv_arg a;
    tsrv_arg_init(&a, self, INIT_OK);
    amb_term name = amb_atom("gst_multi");
    amb_gen_opts o = {.name = name};
    amb_pid srv = tsrv_start(self, &a, &o);
    amb_term replies = AMB_NONE, bad = AMB_NONE;
    /* Every node (this one). */
    CHECK_OK(self, amb_gen_server_multi_call(self, AMB_NONE, name, P(self, "{add,2}"),
                                             DEADLINE_MS, &replies, &bad));
    CHECK_TERM(self, replies, "[{'nonode@nohost',2}]");
    CHECK_TERM(self, bad, "[]");
    /* A list of nodes with another one in it: that one is bad. */
    CHECK_OK(self, amb_gen_server_multi_call(
                       self, P(self, "['nonode@nohost','other@host']"), name,
                       amb_atom("get"), DEADLINE_MS, &replies, &bad));
    CHECK_TERM(self, replies, "[{'nonode@nohost',2}]");
    CHECK_TERM(self, bad, "['other@host']");
    /* bad_nodes may be NULL. */
    CHECK_OK(self, amb_gen_server_multi_call(self, AMB_NONE, name, amb_atom("get"),
                                             DEADLINE_MS, &replies, NULL));
    CHECK_TERM(self, replies, "[{'nonode@nohost',2}]");
    /* No server of that name: this node is bad. */
    CHECK_OK(self,
             amb_gen_server_multi_call(self, AMB_NONE, amb_atom("gst_nobody"),
                                       amb_atom("get"), DEADLINE_MS, &replies, &bad));
    CHECK_TERM(self, replies, "[]");
    CHECK_TERM(self, bad, "['nonode@nohost']");
    /* abcast: a cast to the name on every node. */
    CHECK_OK(self, amb_gen_server_abcast(self, AMB_NONE, name, P(self, "{add,10}")));
    CHECK_OK(self, amb_gen_server_abcast(self, P(self, "['nonode@nohost','other@host']"),
                                         name, P(self, "{add,100}")));
    CHECK_OK(self, amb_gen_server_abcast(self, AMB_NONE, amb_atom("gst_nobody"),
                                         amb_atom("x")));
    CHECK_EQ(self, int_of(CALL(self, srv, amb_atom("get"))), 112);
    /* A server that does not answer in time is a bad node, and its late
     * answer never reaches the caller. */
    CHECK_OK(self, amb_gen_server_multi_call(self, AMB_NONE, name, amb_atom("hold"), 50,
                                             &replies, &bad));
    CHECK_TERM(self, replies, "[]");
    CHECK_TERM(self, bad, "['nonode@nohost']");
    gs_wait_event(self, "holding", srv);
    CHECK_OK(self, amb_gen_server_cast(self, srv, amb_atom("release")));
    gs_wait_event(self, "replied", srv);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    tsrv_stop(self, srv);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(gen_server_multi_call_and_abcast_on_the_local_node)
{
    run_both(multi_body, NULL);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(gen_server_local_name), AMB_TEST_ENTRY(gen_server_via_name),
              AMB_TEST_ENTRY(gen_server_via_register_and_unregister),
              AMB_TEST_ENTRY(gen_server_name_at_the_local_node),
              AMB_TEST_ENTRY(gen_server_multi_call_and_abcast_on_the_local_node))

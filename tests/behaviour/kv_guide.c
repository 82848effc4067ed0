/*
 * tests/behaviour/kv_guide.c - the KV application of Elixir's "Mix and OTP"
 * guide (KV.Bucket, KV.Registry, KV.Supervisor) ported to C the way a user
 * would write it, with the guide's tests.
 *
 * The port keeps every state as a term (.state_term): the bucket's map, the
 * registry's {Names, Refs} of maps. It has no heap, copy or compaction code:
 * callbacks store maps built from the parts of requests, a pid a start
 * returned and a monitor's reference as they are, and the runtime keeps what
 * each state reaches alive. Buckets are temporary children of a dynamic
 * supervisor (KV.BucketSupervisor); the registry monitors them and forgets
 * the dead ones. KV.Supervisor is one_for_all over both.
 *
 * The guide's tests (bucket_test.exs, registry_test.exs): a bucket stores
 * values by key and is a temporary worker; the registry spawns buckets,
 * removes a bucket that stops normally or crashes, and a bucket can crash at
 * any time. Added: many buckets come and go and the registry's heap stays
 * bounded; the whole tree is started and stopped by KV.Supervisor.
 *
 * Line counts (examples/README.md), without blank and comment lines: the
 * port below, from "KV.Bucket" to "KV.Supervisor" inclusive (with the
 * client functions, as the Elixir modules have them), is 118 lines of C;
 * the guide's three modules (Agent bucket, GenServer registry with
 * monitors, Supervisor) are 76 lines of Elixir without their @doc text.
 */
#include "amb_test.h"
#include "amb_test_rt.h"

#include "ambitious/supervisor.h"
#include "gs_test.h"

/* ===========================================================================
 * KV.Bucket
 * ======================================================================== */

static amb_gen_ret bucket_init(amb_proc *self, void *state, void *arg)
{
    (void)arg;
    *(amb_term *)state = amb_map(amb_proc_heap(self), 0, NULL, NULL);
    return amb_gen_ok();
}

static amb_gen_ret bucket_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    amb_term *map = state, k, v, nil = amb_atom("nil");
    amb_heap *h = amb_proc_heap(self);
    if (amb_match(req, "{get,~w}", &k) == 0)
        return amb_gen_reply(amb_map_get(*map, k, &v) == 0 ? v : nil);
    if (amb_match(req, "{put,~w,~w}", &k, &v) == 0) {
        *map = amb_map_put(h, *map, k, v);
        return amb_gen_reply(AMB_ATOM_OK);
    }
    if (amb_match(req, "{delete,~w}", &k) == 0) {
        int rc = amb_map_take(h, *map, k, &v, map);
        return rc == 0               ? amb_gen_reply(v)
               : rc == AMB_ENOTFOUND ? amb_gen_reply(nil)
                                     : amb_gen_fail(rc);
    }
    return amb_gen_reply(nil);
}

static const amb_gen_server kv_bucket = {.name = "KV.Bucket",
                                         .state_term = true,
                                         .init = bucket_init,
                                         .handle_call = bucket_call};
static const amb_gen_child bucket_child = {&kv_bucket, NULL, AMB_NONE};
static const amb_child_spec bucket_spec = {
    .start = amb_gen_child_start, .arg = (void *)&bucket_child, .restart = AMB_TEMPORARY};

static amb_term bucket_get(amb_proc *self, amb_pid bucket, amb_term key)
{
    amb_term reply = AMB_NONE;
    amb_term req = AMB_TUPLE(amb_proc_heap(self), amb_atom("get"), key);
    return amb_gen_server_call(self, bucket, req, 5000, &reply) == 0 ? reply : AMB_NONE;
}

static int bucket_put(amb_proc *self, amb_pid bucket, amb_term key, amb_term value)
{
    amb_term req = AMB_TUPLE(amb_proc_heap(self), amb_atom("put"), key, value);
    return amb_gen_server_call(self, bucket, req, 5000, NULL);
}

/* ===========================================================================
 * KV.Registry: state {Names, Refs}
 * ======================================================================== */

static amb_gen_ret registry_init(amb_proc *self, void *state, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    *(amb_term *)state =
        AMB_TUPLE(h, amb_map(h, 0, NULL, NULL), amb_map(h, 0, NULL, NULL));
    return amb_gen_ok();
}

static amb_gen_ret registry_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    amb_term names = amb_tuple_elem(*(amb_term *)state, 0), name, pid;
    if (amb_match(req, "{lookup,~w}", &name) == 0 && amb_map_get(names, name, &pid) == 0)
        return amb_gen_reply(AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_OK, pid));
    return amb_gen_reply(AMB_ATOM_ERROR);
}

static amb_gen_ret registry_cast(amb_proc *self, void *state, amb_term msg)
{
    amb_term *st = state, names = amb_tuple_elem(*st, 0), refs = amb_tuple_elem(*st, 1);
    amb_term name, pid, ref;
    amb_heap *h = amb_proc_heap(self);
    if (amb_match(msg, "{create,~w}", &name) != 0 || amb_map_get(names, name, &pid) == 0)
        return amb_gen_noreply();
    int rc = amb_dynsup_start_child(self, amb_atom("KV.BucketSupervisor"), &bucket_spec,
                                    &pid, NULL);
    if (rc == 0)
        rc = amb_monitor(self, pid, &ref);
    if (rc != 0)
        return amb_gen_fail(rc);
    *st = AMB_TUPLE(h, amb_map_put(h, names, name, pid), amb_map_put(h, refs, ref, name));
    return amb_gen_noreply();
}

static amb_gen_ret registry_info(amb_proc *self, void *state, amb_term msg)
{
    amb_term *st = state, names = amb_tuple_elem(*st, 0), refs = amb_tuple_elem(*st, 1);
    amb_term ref, name;
    amb_heap *h = amb_proc_heap(self);
    if (amb_match(msg, "{'DOWN',~w,process,_,_}", &ref) == 0 &&
        amb_map_take(h, refs, ref, &name, &refs) == 0)
        *st = AMB_TUPLE(h, amb_map_remove(h, names, name), refs);
    return amb_gen_noreply();
}

static const amb_gen_server kv_registry = {.name = "KV.Registry",
                                           .state_term = true,
                                           .init = registry_init,
                                           .handle_call = registry_call,
                                           .handle_cast = registry_cast,
                                           .handle_info = registry_info};

static amb_term registry_lookup(amb_proc *self, amb_term registry, amb_term name)
{
    amb_term reply = AMB_NONE;
    amb_term req = AMB_TUPLE(amb_proc_heap(self), amb_atom("lookup"), name);
    return amb_gen_server_call(self, registry, req, 5000, &reply) == 0 ? reply : AMB_NONE;
}

static int registry_create(amb_proc *self, amb_term registry, amb_term name)
{
    amb_term msg = AMB_TUPLE(amb_proc_heap(self), amb_atom("create"), name);
    return amb_gen_server_cast(self, registry, msg);
}

/* ===========================================================================
 * KV.Supervisor: one_for_all over KV.BucketSupervisor and KV.Registry
 * ======================================================================== */

static int bucket_sup_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    (void)arg;
    amb_gen_opts o = {.name = amb_atom("KV.BucketSupervisor")};
    return amb_dynsup_start_link(self, NULL, &o, out, reason);
}

static amb_gen_child registry_child = {&kv_registry, NULL, AMB_NONE};

static int kv_supervisor_start(amb_proc *self, amb_pid *out)
{
    registry_child.name = amb_atom("KV.Registry");
    amb_child_spec children[] = {
        {.id = amb_atom("KV.BucketSupervisor"),
         .start = bucket_sup_start,
         .type = AMB_SUPERVISOR},
        {.id = amb_atom("KV.Registry"),
         .start = amb_gen_child_start,
         .arg = &registry_child},
    };
    amb_sup_spec spec = {{.strategy = AMB_ONE_FOR_ALL}, children, AMB_COUNTOF(children)};
    return amb_sup_start_link(self, &spec, NULL, out, NULL);
}

/* ===========================================================================
 * The guide's tests
 * ======================================================================== */

#define REGISTRY amb_atom("KV.Registry")

static amb_term S(amb_proc *self, const char *text) /* an Elixir string */
{
    return amb_pack(amb_proc_heap(self), "~S", text);
}

/* The bucket `name` (created through the registry), after the cast took. */
static amb_pid created(amb_proc *self, const char *name)
{
    CHECK_OK(self, registry_create(self, REGISTRY, S(self, name)));
    amb_pid bucket = AMB_NONE;
    CHECK_OK(self, amb_match(registry_lookup(self, REGISTRY, S(self, name)), "{ok,~p}",
                             &bucket));
    return bucket;
}

/* Waits until the registry has forgotten `name` (its DOWN and the caller's
 * lookup come from two processes: no order between them). */
static void forgotten(amb_proc *self, const char *name)
{
    WAIT_UNTIL(self, registry_lookup(self, REGISTRY, S(self, name)) == AMB_ATOM_ERROR);
}

static amb_pid start_tree(amb_proc *self)
{
    amb_trap_exit(self, true);
    amb_pid sup = AMB_NONE;
    CHECK_OK(self, kv_supervisor_start(self, &sup));
    return sup;
}

static void stop_tree(amb_proc *self, amb_pid sup)
{
    CHECK_OK(self, amb_gen_server_stop(self, sup, AMB_ATOM_NORMAL, DEADLINE_MS));
}

static void bucket_stores_values_by_key_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid sup = start_tree(self);
    amb_pid bucket = created(self, "shopping");
    CHECK_TEXT(self, bucket_get(self, bucket, S(self, "milk")), "nil");
    CHECK_OK(self, bucket_put(self, bucket, S(self, "milk"), amb_int(NULL, 3)));
    CHECK_TEXT(self, bucket_get(self, bucket, S(self, "milk")), "3");
    amb_term del = AMB_NONE;
    CHECK_OK(self, amb_gen_server_call(
                       self, bucket, amb_pack(amb_proc_heap(self), "{delete,~S}", "milk"),
                       5000, &del));
    CHECK_TEXT(self, del, "3");
    CHECK_TEXT(self, bucket_get(self, bucket, S(self, "milk")), "nil");
    stop_tree(self, sup);
}

AMB_TEST(bucket_stores_values_by_key)
{
    run_both(bucket_stores_values_by_key_body, NULL);
}

static void buckets_are_temporary_workers_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid sup = start_tree(self);
    amb_pid bucket = created(self, "shopping");
    amb_sup_counts counts;
    CHECK_OK(self,
             amb_sup_count_children(self, amb_atom("KV.BucketSupervisor"), &counts));
    CHECK_EQ(self, counts.active, 1);
    CHECK_OK(self, amb_gen_server_stop(self, bucket, AMB_ATOM_SHUTDOWN, DEADLINE_MS));
    forgotten(self, "shopping");
    /* Not restarted: the supervisor drops the spec once it has handled the
     * bucket's EXIT, which comes from the bucket while this count's request
     * comes from us (no order between the two: wait for it). */
    WAIT_UNTIL(self, amb_sup_count_children(self, amb_atom("KV.BucketSupervisor"),
                                            &counts) == 0 &&
                         counts.specs == 0);
    CHECK_EQ(self, counts.active, 0);
    stop_tree(self, sup);
}

AMB_TEST(buckets_are_temporary_workers)
{
    run_both(buckets_are_temporary_workers_body, NULL);
}

static void registry_spawns_buckets_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid sup = start_tree(self);
    CHECK_TEXT(self, registry_lookup(self, REGISTRY, S(self, "shopping")), "error");
    amb_pid bucket = created(self, "shopping");
    CHECK_OK(self, bucket_put(self, bucket, S(self, "milk"), amb_int(NULL, 1)));
    CHECK_TEXT(self, bucket_get(self, bucket, S(self, "milk")), "1");
    stop_tree(self, sup);
}

AMB_TEST(registry_spawns_buckets)
{
    run_both(registry_spawns_buckets_body, NULL);
}

static void registry_removes_buckets_on_exit_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid sup = start_tree(self);
    amb_pid bucket = created(self, "shopping");
    CHECK_OK(self, amb_gen_server_stop(self, bucket, AMB_ATOM_NORMAL, DEADLINE_MS));
    forgotten(self, "shopping");
    stop_tree(self, sup);
}

AMB_TEST(registry_removes_buckets_on_exit)
{
    run_both(registry_removes_buckets_on_exit_body, NULL);
}

static void registry_removes_bucket_on_crash_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid sup = start_tree(self);
    amb_pid bucket = created(self, "shopping");
    /* Stop the bucket with a non-normal reason (the guide's
     * Agent.stop(bucket, :shutdown)). */
    CHECK_OK(self, amb_exit(self, bucket, AMB_ATOM_SHUTDOWN));
    forgotten(self, "shopping");
    stop_tree(self, sup);
}

AMB_TEST(registry_removes_bucket_on_crash)
{
    run_both(registry_removes_bucket_on_crash_body, NULL);
}

static void bucket_can_crash_at_any_time_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid sup = start_tree(self);
    amb_pid bucket = created(self, "shopping");
    CHECK_OK(self, bucket_put(self, bucket, S(self, "milk"), amb_int(NULL, 3)));
    amb_term mref;
    CHECK_OK(self, amb_monitor(self, bucket, &mref));
    CHECK_OK(self, amb_exit(self, bucket, AMB_ATOM_SHUTDOWN));
    wait_down(self, mref, bucket);
    /* The guide's catch_exit(KV.Bucket.put(bucket, "milk", 3)). */
    CHECK_RC(self, AMB_ENOPROC,
             bucket_put(self, bucket, S(self, "milk"), amb_int(NULL, 3)));
    stop_tree(self, sup);
}

AMB_TEST(bucket_can_crash_at_any_time)
{
    run_both(bucket_can_crash_at_any_time_body, NULL);
}

/* ===========================================================================
 * Beyond the guide: many buckets come and go; the registry stays bounded
 * ======================================================================== */

static void many_buckets_come_and_go_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid sup = start_tree(self);
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    size_t peak = 0;
    int rounds = 40 / SLOW;
    for (int round = 0; round < rounds; round++) {
        amb_pid buckets[50];
        for (int i = 0; i < 50; i++) {
            amb_heap_rewind(h, top);
            char name[32];
            snprintf(name, sizeof name, "bucket-%d-%d", round, i);
            buckets[i] = created(self, name);
            CHECK_OK(self, bucket_put(self, buckets[i], S(self, name), amb_int(NULL, i)));
        }
        for (int i = 0; i < 50; i++)
            CHECK_OK(self, amb_exit(self, buckets[i],
                                    i % 2 ? AMB_ATOM_SHUTDOWN : AMB_ATOM_KILL));
        amb_heap_rewind(h, top);
        char last[32];
        snprintf(last, sizeof last, "bucket-%d-49", round);
        forgotten(self, last);
        amb_pid registry;
        CHECK_OK(self, amb_whereis(self, REGISTRY, &registry));
        amb_proc_info info;
        CHECK_OK(self, amb_process_info(self, registry, &info));
        if (info.heap_size > peak)
            peak = info.heap_size;
    }
    /* 2000 buckets went through the registry's maps; it holds none now. */
    CHECK(self, peak < (size_t)256 << 10);
    stop_tree(self, sup);
}

AMB_TEST(many_buckets_come_and_go_and_the_registry_stays_bounded)
{
    run_both(many_buckets_come_and_go_body, NULL);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(bucket_stores_values_by_key),
              AMB_TEST_ENTRY(buckets_are_temporary_workers),
              AMB_TEST_ENTRY(registry_spawns_buckets),
              AMB_TEST_ENTRY(registry_removes_buckets_on_exit),
              AMB_TEST_ENTRY(registry_removes_bucket_on_crash),
              AMB_TEST_ENTRY(bucket_can_crash_at_any_time),
              AMB_TEST_ENTRY(many_buckets_come_and_go_and_the_registry_stays_bounded))

/*
 * tests/behaviour/gen_server_term_state.c - state kept as a term
 * (include/ambitious/gen_server.h, `.state_term`; process.h, "Term state"):
 * the runtime keeps what the state reaches alive and reclaims the rest.
 *
 * What is proved:
 *   - a key-value server whose state is a map built straight from the
 *     requests (keys and values are parts of borrowed requests, never
 *     copied by hand) answers every get correctly after 50,000 updates of
 *     500 keys, and its heap (process_info, kept messages included) stays
 *     within a constant factor of its live state the whole time;
 *   - a state may keep the reply of a call the callback made (borrowed from
 *     a nested receive) across collections;
 *   - a plain handler with term state (amb_handler.state_terms) keeps parts
 *     of the messages it received, bounded the same way;
 *   - a {via, ...} name (a term on the server's heap) survives collections:
 *     the server is still found by it and unregisters it when it stops;
 *   - the state is `undefined` until init sets it; a callback (or init)
 *     that leaves AMB_NONE (a failed build) stops the server with
 *     {error, 'AMB_ENOMEM'}; a term state with a state_size is AMB_EBADARG;
 *   - a collection that runs out of memory half way ends the server with
 *     {error, 'AMB_ENOMEM'}, and a killed term-state server leaks nothing
 *     (ASan's leak check in the sanitizer build).
 *
 * The harness is gs_test.h's (one and two schedulers).
 */
#include "amb_test.h"
#include "amb_test_rt.h"

#include "gs_test.h"

/* The heap of a term-state process stays within this many times its live
 * state, plus this much for a small state (the collection's floor and the
 * growth of heap blocks). */
#define BOUND_FACTOR 5
#define BOUND_SLACK  ((size_t)256 << 10)

/* ===========================================================================
 * kv: a key-value server with a map state
 * ======================================================================== */

static amb_gen_ret kv_init(amb_proc *self, void *state, void *arg)
{
    (void)arg;
    *(amb_term *)state = amb_map(amb_proc_heap(self), 0, NULL, NULL);
    return amb_gen_ok();
}

static amb_gen_ret kv_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    amb_term *map = state, k, v;
    amb_heap *h = amb_proc_heap(self);
    if (amb_match(req, "{put,~w,~w}", &k, &v) == 0) {
        *map = amb_map_put(h, *map, k, v); /* parts of the request, as they are */
        return amb_gen_reply(AMB_ATOM_OK);
    }
    if (amb_match(req, "{get,~w}", &k) == 0)
        return amb_gen_reply(amb_map_get(*map, k, &v) == 0 ? AMB_TUPLE(h, AMB_ATOM_OK, v)
                                                           : AMB_ATOM_ERROR);
    if (req == amb_atom("sizes")) {
        amb_proc_info info;
        if (amb_process_info(self, amb_self(self), &info) != 0)
            return amb_gen_fail(AMB_ENOMEM);
        return amb_gen_reply(amb_pack(h, "{~u,~u}", (uint64_t)amb_term_size(*map),
                                      (uint64_t)info.heap_size));
    }
    if (req == amb_atom("lose_state")) {
        *map = AMB_NONE; /* as a build that ran out of memory leaves it */
        return amb_gen_reply(AMB_ATOM_OK);
    }
    return amb_gen_reply(amb_atom("unknown"));
}

static const amb_gen_server kv = {
    .name = "kv",
    .state_term = true,
    .init = kv_init,
    .handle_call = kv_call,
};

/* Fails unless the server's heap is within the bound of its live state. */
static void check_bounded(amb_proc *self, amb_pid pid)
{
    uint64_t live = 0, heap = 0;
    CHECK_OK(self,
             amb_match(CALL(self, pid, amb_atom("sizes")), "{~u,~u}", &live, &heap));
    if (heap > BOUND_FACTOR * live + BOUND_SLACK)
        proc_fail(self, __FILE__, __LINE__, "heap %llu bytes for a state of %llu",
                  (unsigned long long)heap, (unsigned long long)live);
}

#define KV_KEYS    500
#define KV_UPDATES 50000

static void kv_many_updates(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    CHECK_OK(self, amb_gen_server_start(self, &kv, NULL, NULL, &pid, NULL));
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    for (int i = 0; i < KV_UPDATES / SLOW; i++) {
        amb_heap_rewind(h, top); /* the client's own loop scope */
        amb_term req =
            amb_pack(h, "{put,{key,~i},{value,~i,~S}}", i % KV_KEYS, i, "text");
        CHECK_TEXT(self, CALL(self, pid, req), "ok");
        if (i % 5000 == 0)
            check_bounded(self, pid);
    }
    amb_heap_rewind(h, top);
    check_bounded(self, pid);
    int last = KV_UPDATES / SLOW - 1;
    for (int k = 0; k < KV_KEYS; k++) {
        amb_heap_rewind(h, top);
        int i =
            last - ((last - k) % KV_KEYS + KV_KEYS) % KV_KEYS; /* last i with i%N==k */
        char want[96];
        snprintf(want, sizeof want, "{ok,{value,%d,<<116,101,120,116>>}}", i);
        CHECK_TEXT(self, CALL(self, pid, amb_pack(h, "{get,{key,~i}}", k)), want);
    }
    CHECK_OK(self, amb_gen_server_stop(self, pid, AMB_ATOM_NORMAL, DEADLINE_MS));
}

AMB_TEST(a_map_state_built_from_requests_answers_right_and_stays_bounded)
{
    run_both(kv_many_updates, NULL);
}

/* ===========================================================================
 * A state that keeps the replies of calls
 * ======================================================================== */

static amb_gen_ret echo_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)state;
    (void)from;
    return amb_gen_reply(amb_pack(amb_proc_heap(self), "{echoed,~w}", req));
}

static const amb_gen_server echo = {.name = "echo", .handle_call = echo_call};

/* State: {EchoPid, [Reply | ...]} keeping the last 50 replies. */
static amb_gen_ret keeper_init(amb_proc *self, void *state, void *arg)
{
    amb_pid echo_pid = *(amb_term *)arg;
    *(amb_term *)state = AMB_TUPLE(amb_proc_heap(self), echo_pid, AMB_NIL);
    return amb_gen_ok();
}

static amb_gen_ret keeper_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    amb_term *st = state, reply;
    amb_heap *h = amb_proc_heap(self);
    amb_pid echo_pid = amb_tuple_elem(*st, 0);
    amb_term list = amb_tuple_elem(*st, 1);
    if (amb_tuple_arity(req) == 2 && amb_tuple_elem(req, 0) == amb_atom("ask")) {
        int rc = amb_gen_server_call(self, echo_pid, amb_tuple_elem(req, 1), DEADLINE_MS,
                                     &reply);
        if (rc != 0)
            return amb_gen_fail(rc);
        /* The reply is kept as it is (borrowed from the nested receive),
         * the list cut to 50 by rebuilding its head. */
        amb_term items[50];
        size_t n = 0;
        items[n++] = reply;
        for (amb_term t = list; amb_is_cons(t) && n < 50; t = amb_list_tail(t))
            items[n++] = amb_list_head(t);
        *st = AMB_TUPLE(h, echo_pid, amb_list(h, n, items));
        return amb_gen_reply(AMB_ATOM_OK);
    }
    return amb_gen_reply(list);
}

static const amb_gen_server keeper = {
    .name = "keeper",
    .state_term = true,
    .init = keeper_init,
    .handle_call = keeper_call,
};

static void keeps_replies(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid echo_pid, keeper_pid;
    CHECK_OK(self, amb_gen_server_start(self, &echo, NULL, NULL, &echo_pid, NULL));
    amb_gen_opts o = {.arg_term = echo_pid};
    CHECK_OK(self, amb_gen_server_start(self, &keeper, NULL, &o, &keeper_pid, NULL));
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    int n = 20000 / SLOW;
    for (int i = 0; i < n; i++) {
        amb_heap_rewind(h, top);
        CALL(self, keeper_pid, amb_pack(h, "{ask,{n,~i,~s}}", i, "padding to grow"));
    }
    amb_term list = CALL(self, keeper_pid, amb_atom("list"));
    size_t len = 0;
    CHECK_OK(self, amb_list_length(list, &len));
    CHECK_EQ(self, len, 50);
    int expect = n - 1;
    for (amb_term t = list; amb_is_cons(t); t = amb_list_tail(t), expect--) {
        int64_t got = -1;
        CHECK_OK(self, amb_match(amb_list_head(t), "{echoed,{n,~l,_}}", &got));
        CHECK_EQ(self, got, expect);
    }
    CHECK_OK(self, amb_gen_server_stop(self, keeper_pid, AMB_ATOM_NORMAL, DEADLINE_MS));
    CHECK_OK(self, amb_gen_server_stop(self, echo_pid, AMB_ATOM_NORMAL, DEADLINE_MS));
}

AMB_TEST(a_state_keeps_replies_of_nested_calls_across_collections)
{
    run_both(keeps_replies, NULL);
}

/* ===========================================================================
 * A plain handler with term state
 * ======================================================================== */

/* Slot 0: the last 20 messages' second elements; slot 1: a count. A
 * message {report, Pid} sends {report, Slot0, Slot1} to Pid. */
static int recorder_handle(amb_proc *self, void *state, amb_term msg)
{
    amb_term *slots = state;
    amb_heap *h = amb_proc_heap(self);
    amb_pid to;
    if (amb_match(msg, "{report,~p}", &to) == 0)
        return amb_send(self, to, AMB_TUPLE(h, amb_atom("report"), slots[0], slots[1]));
    if (slots[1] == AMB_NONE) {
        slots[0] = AMB_NIL;
        slots[1] = amb_int(NULL, 0);
    }
    amb_term items[20];
    size_t n = 0;
    items[n++] = amb_tuple_elem(msg, 1);
    for (amb_term t = slots[0]; amb_is_cons(t) && n < 20; t = amb_list_tail(t))
        items[n++] = amb_list_head(t);
    slots[0] = amb_list(h, n, items);
    slots[1] = amb_int(h, amb_small_value(slots[1]) + 1);
    return slots[0] != AMB_NONE ? 0 : AMB_ENOMEM;
}

static const amb_handler recorder = {.state_terms = 2, .handle = recorder_handle};

static void handler_keeps_parts(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    CHECK_OK(self, amb_spawn_handler(self, &recorder, NULL, &pid));
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    int n = 100000 / SLOW;
    for (int i = 0; i < n; i++) {
        amb_heap_rewind(h, top);
        CHECK_OK(self,
                 amb_send(self, pid, amb_pack(h, "{msg,{item,~i,~S}}", i, "bytes")));
        if (i % 1000 == 0) {
            /* Wait for it to catch up (the mailbox would hold the rest). */
            CHECK_OK(self,
                     amb_send(self, pid, amb_pack(h, "{report,~p}", amb_self(self))));
            CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{report,_,_}"));
            amb_proc_info info;
            CHECK_OK(self, amb_process_info(self, pid, &info));
            CHECK(self, info.heap_size < BOUND_SLACK);
        }
    }
    CHECK_OK(self, amb_send(self, pid, amb_pack(h, "{report,~p}", amb_self(self))));
    amb_term items, count;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{report,~w,~w}", &items,
                                     &count));
    CHECK_EQ(self, int_of(count), n);
    size_t len = 0;
    CHECK_OK(self, amb_list_length(items, &len));
    CHECK_EQ(self, len, 20);
    int64_t got = -1;
    CHECK_OK(self, amb_match(amb_list_head(items), "{item,~l,<<\"bytes\">>}", &got));
    CHECK_EQ(self, got, n - 1);
    CHECK_OK(self, amb_exit(self, pid, AMB_ATOM_KILL));
}

AMB_TEST(a_handler_with_term_state_keeps_parts_of_messages_bounded)
{
    run_both(handler_keeps_parts, NULL);
}

/* ===========================================================================
 * Names, defaults and failures
 * ======================================================================== */

static amb_gen_ret init_loses(amb_proc *self, void *state, void *arg)
{
    (void)self;
    (void)arg;
    *(amb_term *)state = AMB_NONE;
    return amb_gen_ok();
}

static const amb_gen_server loses_in_init = {.state_term = true, .init = init_loses};
static const amb_gen_server sized = {.state_term = true, .state_size = 8};

static amb_gen_ret state_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)self;
    (void)req;
    (void)from;
    return amb_gen_reply(*(amb_term *)state);
}

static const amb_gen_server shows_state = {.state_term = true, .handle_call = state_call};

static void defaults_and_failures(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    amb_term reason = AMB_NONE;
    CHECK_OK(self, amb_gen_server_start(self, &shows_state, NULL, NULL, &pid, NULL));
    CHECK_TEXT(self, CALL(self, pid, amb_atom("state")), "undefined");
    CHECK_OK(self, amb_gen_server_stop(self, pid, AMB_ATOM_NORMAL, DEADLINE_MS));

    CHECK_RC(self, AMB_ENOMEM,
             amb_gen_server_start(self, &loses_in_init, NULL, NULL, &pid, &reason));
    CHECK_TEXT(self, reason, "{error,'AMB_ENOMEM'}");
    CHECK_RC(self, AMB_EBADARG,
             amb_gen_server_start(self, &sized, NULL, NULL, &pid, NULL));

    CHECK_OK(self, amb_gen_server_start(self, &kv, NULL, NULL, &pid, NULL));
    amb_term mref;
    CHECK_OK(self, amb_monitor(self, pid, &mref));
    amb_term why = AMB_NONE;
    CHECK_RC(self, AMB_EEXIT,
             amb_gen_server_call(self, pid, amb_atom("lose_state"), DEADLINE_MS, &why));
    CHECK_TEXT(self, why, "{error,'AMB_ENOMEM'}");
    CHECK_TEXT(self, wait_down(self, mref, pid), "{error,'AMB_ENOMEM'}");
    /* Crash reports of the two servers that stopped with an error. */
    WAIT_UNTIL(self, amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS) >= 2);
}

AMB_TEST(the_state_starts_undefined_and_a_lost_state_stops_with_enomem)
{
    run_both(defaults_and_failures, NULL);
}

/* A via module of one name: the name term is copied to a heap of its own. */
static pthread_mutex_t via_lock = PTHREAD_MUTEX_INITIALIZER;
static amb_heap *via_heap;
static amb_term via_name = AMB_NONE;
static amb_pid via_pid = AMB_NONE;
static atomic_int via_unregisters;

static int via_register_name(amb_proc *self, void *ctx, amb_term name, amb_pid pid)
{
    (void)self;
    (void)ctx;
    pthread_mutex_lock(&via_lock);
    int rc = via_name != AMB_NONE ? AMB_EEXIST : amb_term_copy(via_heap, name, &via_name);
    if (rc == 0)
        via_pid = pid;
    pthread_mutex_unlock(&via_lock);
    return rc;
}

static int via_unregister_name(amb_proc *self, void *ctx, amb_term name)
{
    (void)self;
    (void)ctx;
    pthread_mutex_lock(&via_lock);
    bool found = via_name != AMB_NONE && amb_equal(via_name, name);
    if (found)
        via_name = AMB_NONE;
    pthread_mutex_unlock(&via_lock);
    atomic_fetch_add(&via_unregisters, found);
    return found ? 0 : AMB_ENOTFOUND;
}

static int via_whereis_name(amb_proc *self, void *ctx, amb_term name, amb_pid *out)
{
    (void)self;
    (void)ctx;
    pthread_mutex_lock(&via_lock);
    bool found = via_name != AMB_NONE && amb_equal(via_name, name);
    if (found)
        *out = via_pid;
    pthread_mutex_unlock(&via_lock);
    return found ? 0 : AMB_ENOTFOUND;
}

static void via_name_survives(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_term name = amb_pack(h, "{via,gsts_via,{bucket,~S,[1,2,3]}}", "a long name");
    amb_gen_opts o = {.name = name};
    CHECK_OK(self, amb_gen_server_start(self, &kv, NULL, &o, NULL, NULL));
    amb_heap_mark top = amb_heap_save(h);
    for (int i = 0; i < 20000 / SLOW; i++) {
        amb_heap_rewind(h, top);
        CALL(self, name, amb_pack(h, "{put,~i,{filler,~s}}", i % 300, "grow the heap"));
    }
    CHECK_TEXT(self, CALL(self, name, amb_pack(h, "{get,~i}", 7)),
               "{ok,{filler,[103,114,111,119,32,116,104,101,32,104,101,97,112]}}");
    CHECK_OK(self, amb_gen_server_stop(self, name, AMB_ATOM_NORMAL, DEADLINE_MS));
    CHECK_EQ(self, atomic_load(&via_unregisters), 1);
}

AMB_TEST(a_via_name_survives_collections_and_is_unregistered_at_stop)
{
    assert_ok(amb_heap_new(&via_heap));
    amb_via v = {via_register_name, via_unregister_name, via_whereis_name, NULL};
    assert_ok(amb_via_register(amb_atom("gsts_via"), &v));
    /* The via module's heap, freed below, outlives the runs. */
    for (unsigned n = 1; n <= 2; n++) {
        atomic_store(&via_unregisters, 0);
        amb_test_cfg cfg = {.rt = config_of(n), .keeps_memory = true};
        amb_test_run(&cfg, via_name_survives, NULL);
    }
    assert_ok(amb_via_unregister(amb_atom("gsts_via")));
    amb_heap_free(via_heap);
}

/* ===========================================================================
 * Out of memory in a collection; killing
 * ======================================================================== */

/* A call {bloat, [1, 2, 3]} builds garbage past the collection's trigger,
 * keeps the request (a term of its message cell, copied in first: the walk
 * takes a tuple's parts in order) and a list of 100 tuples (whose walk
 * needs more than the 32 slots a walker's stack holds inline) in the state,
 * and arms the allocator: the collection after it allocates its table of
 * kept cells (0), its spaces (1), its segments (2), the block for the
 * cells' terms (3), its side tables (4), then grows its stack of slots (5)
 * while it walks, after it has moved the request out of its cell. */
static uint64_t bloat_fail_at;

static amb_gen_ret bloat_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    amb_heap *h = amb_proc_heap(self);
    amb_term list = AMB_NIL;
    if (amb_is_tuple(req)) {
        for (int i = 0; i < 10000; i++)
            (void)AMB_TUPLE(h, amb_int(h, i), amb_atom("garbage"), amb_int(h, i));
        for (int i = 0; i < 100; i++)
            list = amb_cons(h, AMB_TUPLE(h, amb_int(h, i), amb_atom("kept")), list);
        amb_test_alloc_fail(bloat_fail_at, AMB_TEST_FAIL_ONCE);
    }
    *(amb_term *)state = AMB_TUPLE(h, amb_atom("kept"), req, list);
    return amb_gen_reply(AMB_ATOM_OK);
}

static const amb_gen_server bloater = {.state_term = true, .handle_call = bloat_call};

static void collection_runs_out(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    amb_term mref;
    CHECK_OK(self, amb_gen_server_start(self, &bloater, NULL, NULL, &pid, NULL));
    CHECK_OK(self, amb_monitor(self, pid, &mref));
    CHECK_TEXT(self, CALL(self, pid, amb_pack(amb_proc_heap(self), "{bloat,[1,2,3]}")),
               "ok");
    CHECK_TEXT(self, wait_down(self, mref, pid), "{error,'AMB_ENOMEM'}");
}

AMB_TEST(a_collection_out_of_memory_half_way_ends_the_server_with_enomem)
{
    (void)amb_atom("AMB_ENOMEM"); /* interned before memory is short */
    bloat_fail_at = 5;            /* the stack of slots: cells half moved */
    run_in(1, collection_runs_out, NULL);
    assert_int_equal(amb_test_log_count(AMB_TEST_LOG_CRASH_REPORTS), 1);
}

/* A collection that finds no memory before it starts changes nothing: the
 * server answers from its state, and the next collection runs. */
static amb_gen_ret probe_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    if (req == amb_atom("state"))
        return amb_gen_reply(*(amb_term *)state);
    return bloat_call(self, state, req, from);
}

static const amb_gen_server prober = {.state_term = true, .handle_call = probe_call};

static void collection_waits(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    CHECK_OK(self, amb_gen_server_start(self, &prober, NULL, NULL, &pid, NULL));
    amb_proc_info before, after;
    CHECK_TEXT(self, CALL(self, pid, amb_pack(amb_proc_heap(self), "{bloat,[1,2,3]}")),
               "ok");
    CHECK_OK(self, amb_process_info(self, pid, &before));
    CHECK_TEXT(self, CALL(self, pid, amb_atom("state")),
               "{kept,{bloat,[1,2,3]},[{99,kept},{98,kept},{97,kept},{96,kept},{95,kept},"
               "{94,kept},"
               "{93,kept},{92,kept},{91,kept},{90,kept},{89,kept},{88,kept},{87,kept},"
               "{86,kept},{85,kept},{84,kept},{83,kept},{82,kept},{81,kept},{80,kept},"
               "{79,kept},{78,kept},{77,kept},{76,kept},{75,kept},{74,kept},{73,kept},"
               "{72,kept},{71,kept},{70,kept},{69,kept},{68,kept},{67,kept},{66,kept},"
               "{65,kept},{64,kept},{63,kept},{62,kept},{61,kept},{60,kept},{59,kept},"
               "{58,kept},{57,kept},{56,kept},{55,kept},{54,kept},{53,kept},{52,kept},"
               "{51,kept},{50,kept},{49,kept},{48,kept},{47,kept},{46,kept},{45,kept},"
               "{44,kept},{43,kept},{42,kept},{41,kept},{40,kept},{39,kept},{38,kept},"
               "{37,kept},{36,kept},{35,kept},{34,kept},{33,kept},{32,kept},{31,kept},"
               "{30,kept},{29,kept},{28,kept},{27,kept},{26,kept},{25,kept},{24,kept},"
               "{23,kept},{22,kept},{21,kept},{20,kept},{19,kept},{18,kept},{17,kept},"
               "{16,kept},{15,kept},{14,kept},{13,kept},{12,kept},{11,kept},{10,kept},"
               "{9,kept},{8,kept},{7,kept},{6,kept},{5,kept},{4,kept},{3,kept},{2,kept},"
               "{1,kept},{0,kept}]}");
    /* That call's collection ran (one more call: it has returned): the
     * 10,000 garbage tuples are gone. */
    CHECK(self, CALL(self, pid, amb_atom("state")) != AMB_NONE);
    CHECK_OK(self, amb_process_info(self, pid, &after));
    CHECK(self, after.heap_size < before.heap_size / 2);
    CHECK_OK(self, amb_gen_server_stop(self, pid, AMB_ATOM_NORMAL, DEADLINE_MS));
}

AMB_TEST(a_collection_without_memory_for_its_tables_changes_nothing_and_runs_later)
{
    bloat_fail_at = 4; /* the side tables: nothing changed yet */
    run_in(1, collection_waits, NULL);
}

static void killed_leaks_nothing(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    amb_term mref;
    CHECK_OK(self, amb_gen_server_start(self, &kv, NULL, NULL, &pid, NULL));
    amb_heap *h = amb_proc_heap(self);
    for (int i = 0; i < 3000; i++)
        CALL(self, pid, amb_pack(h, "{put,~i,{v,~i,~s}}", i, i, "some text"));
    CHECK_OK(self, amb_monitor(self, pid, &mref));
    CHECK_OK(self, amb_exit(self, pid, AMB_ATOM_KILL));
    CHECK_TEXT(self, wait_down(self, mref, pid), "killed");
}

AMB_TEST(a_killed_term_state_server_leaks_nothing)
{
    run_both(killed_leaks_nothing, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(a_map_state_built_from_requests_answers_right_and_stays_bounded),
    AMB_TEST_ENTRY(a_state_keeps_replies_of_nested_calls_across_collections),
    AMB_TEST_ENTRY(a_handler_with_term_state_keeps_parts_of_messages_bounded),
    AMB_TEST_ENTRY(the_state_starts_undefined_and_a_lost_state_stops_with_enomem),
    AMB_TEST_ENTRY(a_via_name_survives_collections_and_is_unregistered_at_stop),
    AMB_TEST_ENTRY(a_collection_out_of_memory_half_way_ends_the_server_with_enomem),
    AMB_TEST_ENTRY(
        a_collection_without_memory_for_its_tables_changes_nothing_and_runs_later),
    AMB_TEST_ENTRY(a_killed_term_state_server_leaks_nothing))

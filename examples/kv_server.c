/*
 * kv_server.c - a key-value store as a gen_server (examples/README.md walks
 * through it): the OTP callbacks in C, start/call/cast/stop, and the heap
 * rule for terms kept in a server's state.
 *
 * The server, registered as `kv`, keeps a map #{Key => Value} of any terms.
 *   call {put, K, V}   -> ok              call {get, K} -> {ok, V} | error
 *   call {delete, K}   -> ok | error      call stats    -> {Keys, StateHeapBytes}
 *   cast {put, K, V}   (no answer)
 *
 * The heap rule. What a callback builds on the process heap is dropped when
 * the callback returns, and the request it got is borrowed: so the map, which
 * must live across callbacks, sits on a heap the state owns (state->heap).
 * Keys and values are copied onto it before they go into the map. Each put
 * builds a new map and leaves the old one behind as garbage on that heap, so
 * every COMPACT_EVERY updates the live map is copied to a fresh heap and the
 * old heap freed: the state stays the size of its live data.
 *
 * The main process runs the store through its paces, checks each answer and
 * prints what it does. Exit status 0 when every check held.
 */
#include <ambitious.h>
#include <stdio.h>
#include <string.h>

#define COMPACT_EVERY 256

typedef struct kv_state {
    amb_heap *heap; /* owns map (and the garbage of old maps) */
    amb_term map;
    unsigned updates; /* since the last compaction */
} kv_state;

/* Frees the state's heap however the server ends (also when it is killed,
 * when terminate does not run). Registered with the heap as ctx. */
static void free_heap(void *heap)
{
    amb_heap_free(heap);
}

static amb_gen_ret kv_init(amb_proc *self, void *state, void *arg)
{
    (void)arg;
    kv_state *s = state; /* state_size bytes, zeroed, owned by the server */
    int rc = amb_heap_new(&s->heap);
    if (rc == 0)
        rc = amb_on_exit(self, free_heap, s->heap);
    if (rc != 0)
        return amb_gen_fail(rc); /* start returns AMB_EINIT */
    s->map = amb_map(s->heap, 0, NULL, NULL);
    return s->map != AMB_NONE ? amb_gen_ok() : amb_gen_fail(AMB_ENOMEM);
}

/* Moves the live map to a fresh heap and frees the old one (with its
 * garbage). The exit hook follows the heap. */
static int compact(amb_proc *self, kv_state *s)
{
    amb_heap *fresh;
    amb_term map;
    int rc = amb_heap_new(&fresh);
    if (rc != 0)
        return rc;
    if ((rc = amb_term_copy(fresh, s->map, &map)) != 0 ||
        (rc = amb_on_exit(self, free_heap, fresh)) != 0) {
        amb_heap_free(fresh);
        return rc;
    }
    amb_on_exit_cancel(self, free_heap, s->heap);
    amb_heap_free(s->heap);
    s->heap = fresh;
    s->map = map;
    s->updates = 0;
    return 0;
}

/* map with key set to value, both copied onto the state's heap first: they
 * are parts of a borrowed request. */
static int put(amb_proc *self, kv_state *s, amb_term key, amb_term value)
{
    amb_term k, v;
    int rc = amb_term_copy(s->heap, key, &k);
    if (rc == 0)
        rc = amb_term_copy(s->heap, value, &v);
    if (rc != 0)
        return rc;
    amb_term map = amb_map_put(s->heap, s->map, k, v);
    if (map == AMB_NONE)
        return AMB_ENOMEM;
    s->map = map;
    return ++s->updates >= COMPACT_EVERY ? compact(self, s) : 0;
}

/* The map without key. */
static int remove_key(amb_proc *self, kv_state *s, amb_term key)
{
    amb_term map = amb_map_remove(s->heap, s->map, key);
    if (map == AMB_NONE)
        return AMB_ENOMEM;
    s->map = map;
    return ++s->updates >= COMPACT_EVERY ? compact(self, s) : 0;
}

static amb_gen_ret kv_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from; /* we always reply at once */
    kv_state *s = state;
    amb_heap *h = amb_proc_heap(self); /* replies: dropped after they are sent */
    amb_term k, v;
    int rc;
    if (amb_match(req, "{put,~w,~w}", &k, &v) == 0) {
        rc = put(self, s, k, v);
        return rc == 0 ? amb_gen_reply(AMB_ATOM_OK) : amb_gen_fail(rc);
    }
    if (amb_match(req, "{get,~w}", &k) == 0) {
        if (amb_map_get(s->map, k, &v) != 0)
            return amb_gen_reply(AMB_ATOM_ERROR);
        return amb_gen_reply(AMB_TUPLE(h, AMB_ATOM_OK, v)); /* v is copied by the send */
    }
    if (amb_match(req, "{delete,~w}", &k) == 0) {
        if (amb_map_get(s->map, k, &v) != 0)
            return amb_gen_reply(AMB_ATOM_ERROR);
        rc = remove_key(self, s, k);
        return rc == 0 ? amb_gen_reply(AMB_ATOM_OK) : amb_gen_fail(rc);
    }
    if (req == amb_atom("stats"))
        return amb_gen_reply(amb_pack(h, "{~u,~u}", (uint64_t)amb_map_size(s->map),
                                      (uint64_t)amb_heap_size(s->heap)));
    return amb_gen_reply(amb_pack(h, "{error,{unknown_request,~w}}", req));
}

static amb_gen_ret kv_cast(amb_proc *self, void *state, amb_term msg)
{
    amb_term k, v;
    if (amb_match(msg, "{put,~w,~w}", &k, &v) == 0) {
        int rc = put(self, state, k, v);
        if (rc != 0)
            return amb_gen_fail(rc);
    }
    return amb_gen_noreply();
}

static void kv_terminate(amb_proc *self, void *state, amb_term reason)
{
    (void)self;
    kv_state *s = state;
    printf("kv: terminate(");
    amb_fprint(reason, stdout);
    printf(") with %zu keys\n", amb_map_size(s->map));
    /* The heap is freed by the exit hook registered in init. */
}

static const amb_gen_server kv = {
    .name = "kv",
    .state_size = sizeof(kv_state),
    .init = kv_init,
    .handle_call = kv_call,
    .handle_cast = kv_cast,
    /* handle_info NULL: a stray message is logged and dropped (OTP) */
    .terminate = kv_terminate,
};

/* ===========================================================================
 * The client: main_process
 * ======================================================================== */

static int failures;

#define EXPECT(cond)                                                   \
    do {                                                               \
        if (!(cond)) {                                                 \
            printf("FAILED: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            failures++;                                                \
        }                                                              \
    } while (0)

/* call kv with the request written in Erlang syntax; prints both. */
static amb_term ask(amb_proc *self, const char *request)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term req, reply = AMB_NONE;
    if (amb_parse(h, request, strlen(request), &req, NULL) != 0)
        return AMB_NONE;
    int rc = amb_gen_server_call(self, amb_atom("kv"), req, 5000, &reply);
    printf("  call %-36s -> ", request);
    if (rc == 0)
        amb_fprint(reply, stdout); /* reply is borrowed until the next call */
    else
        printf("%s", amb_err_name(rc));
    printf("\n");
    return rc == 0 ? reply : AMB_NONE;
}

static bool is(amb_term t, const char *text)
{
    char buf[256];
    return t != AMB_NONE && amb_print(t, buf, sizeof buf, NULL) == 0 &&
           strcmp(buf, text) == 0;
}

static void main_process(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_gen_opts opts = {.name = amb_atom("kv"), .link = true};
    amb_pid pid;
    int rc = amb_gen_server_start(self, &kv, NULL, &opts, &pid, NULL);
    printf("started kv: %s\n", amb_err_name(rc));
    if (rc != 0) {
        failures++;
        return;
    }

    printf("puts and gets (any terms as keys and values):\n");
    EXPECT(is(ask(self, "{put, apple, 3}"), "ok"));
    EXPECT(is(ask(self, "{put, {fruit, pear}, [1,2,3]}"), "ok"));
    EXPECT(is(ask(self, "{put, <<\"name\">>, \"kv\"}"), "ok"));
    EXPECT(is(ask(self, "{get, apple}"), "{ok,3}"));
    EXPECT(is(ask(self, "{get, {fruit, pear}}"), "{ok,[1,2,3]}"));
    EXPECT(is(ask(self, "{get, banana}"), "error"));
    EXPECT(is(ask(self, "{delete, apple}"), "ok"));
    EXPECT(is(ask(self, "{get, apple}"), "error"));

    printf("a cast does not wait; a call after it sees its effect:\n");
    amb_gen_server_cast(self, amb_atom("kv"), amb_pack(h, "{put, ~a, ~i}", "cherry", 7));
    EXPECT(is(ask(self, "{get, cherry}"), "{ok,7}"));

    printf("10000 updates of 100 keys; compaction keeps the state small:\n");
    amb_heap_mark mark = amb_heap_save(h); /* the requests are scratch */
    for (int i = 0; i < 10000; i++) {
        amb_term req = amb_pack(h, "{put, {key, ~i}, {value, ~i}}", i % 100, i);
        if (amb_gen_server_call(self, pid, req, 5000, NULL) != 0)
            failures++;
        amb_heap_rewind(h, mark);
    }
    amb_term stats = ask(self, "stats");
    uint64_t keys = 0, bytes = 0;
    EXPECT(amb_match(stats, "{~u,~u}", &keys, &bytes) == 0 &&
           keys == 103);        /* 100 + pear, name, cherry */
    EXPECT(bytes < 256 * 1024); /* 10000 uncompacted maps would be megabytes */
    EXPECT(is(ask(self, "{get, {key, 42}}"), "{ok,{value,9942}}"));

    printf("an unknown request is answered, not fatal:\n");
    EXPECT(is(ask(self, "what"), "{error,{unknown_request,what}}"));

    rc = amb_gen_server_stop(self, amb_atom("kv"), AMB_ATOM_NORMAL, 5000);
    printf("stopped kv: %s\n", amb_err_name(rc));
    EXPECT(rc == 0);
    EXPECT(amb_gen_server_call(self, amb_atom("kv"), amb_atom("stats"), 100, NULL) ==
           AMB_ENOPROC);
}

int main(void)
{
    int rc = amb_main(NULL, main_process, NULL);
    if (rc != 0 || failures != 0) {
        printf("kv_server: %d check(s) failed (%s)\n", failures, amb_err_name(rc));
        return 1;
    }
    printf("kv_server: all checks passed\n");
    return 0;
}

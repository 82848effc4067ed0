/*
 * kv_server.c - a key-value store as a gen_server, the C twin of Elixir's
 * KV.Bucket (examples/README.md walks through it): the OTP callbacks in C,
 * a state kept as a term, start/call/cast/stop.
 *
 * The server, registered as `kv`, keeps a map #{Key => Value} of any terms:
 *   call {get, K}      -> V | nil          call {put, K, V} -> ok
 *   call {delete, K}   -> V | nil          cast {put, K, V}
 *
 * The state is a term (.state_term): callbacks read the map and store the
 * new one, built from the parts of the request as they are. The runtime
 * keeps what the state reaches and reclaims the old maps by itself, so the
 * server has no heap, copy or compaction code.
 *
 * The main process runs the store through its paces, checks each answer and
 * prints what it does. Exit status 0 when every check held.
 */
#include <ambitious.h>
#include <stdio.h>
#include <string.h>

/* ===========================================================================
 * The server
 * ======================================================================== */

static amb_gen_ret kv_init(amb_proc *self, void *state, void *arg)
{
    (void)arg;
    *(amb_term *)state = amb_map(amb_proc_heap(self), 0, NULL, NULL); /* %{} */
    return amb_gen_ok();
}

static amb_gen_ret kv_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)from;
    amb_term *map = state, k, v, nil = amb_atom("nil");
    amb_heap *h = amb_proc_heap(self);
    if (amb_match(req, "{get,~w}", &k) == 0) /* Map.get(map, k) */
        return amb_gen_reply(amb_map_get(*map, k, &v) == 0 ? v : nil);
    if (amb_match(req, "{put,~w,~w}", &k, &v) == 0) { /* Map.put(map, k, v) */
        *map = amb_map_put(h, *map, k, v);
        return amb_gen_reply(AMB_ATOM_OK);
    }
    if (amb_match(req, "{delete,~w}", &k) == 0) { /* Map.pop(map, k) */
        int rc = amb_map_take(h, *map, k, &v, map);
        return rc == 0               ? amb_gen_reply(v)
               : rc == AMB_ENOTFOUND ? amb_gen_reply(nil)
                                     : amb_gen_fail(rc);
    }
    return amb_gen_reply(amb_pack(h, "{error,{unknown_request,~w}}", req));
}

static amb_gen_ret kv_cast(amb_proc *self, void *state, amb_term msg)
{
    amb_term *map = state, k, v;
    if (amb_match(msg, "{put,~w,~w}", &k, &v) == 0)
        *map = amb_map_put(amb_proc_heap(self), *map, k, v);
    return amb_gen_noreply();
}

static const amb_gen_server kv = {
    .name = "kv",
    .state_term = true, /* state points to an amb_term the runtime keeps alive */
    .init = kv_init,
    .handle_call = kv_call,
    .handle_cast = kv_cast,
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

/* Calls kv with the request written in Erlang syntax and prints both. The
 * request is scratch on this process's heap and the reply is borrowed until
 * the next call: both go at the next ask's rewind. */
static amb_term ask(amb_proc *self, const char *request)
{
    amb_heap *h = amb_proc_heap(self);
    amb_term req, reply = AMB_NONE;
    if (amb_parse(h, request, strlen(request), &req, NULL) != 0)
        return AMB_NONE;
    int rc = amb_gen_server_call(self, amb_atom("kv"), req, 5000, &reply);
    printf("  call %-36s -> ", request);
    if (rc == 0)
        amb_fprint_ex(reply, AMB_PRINT_PRETTY, stdout);
    else
        printf("%s", amb_err_name(rc));
    printf("\n");
    return rc == 0 ? reply : AMB_NONE;
}

static bool is(amb_term t, const char *text)
{
    char buf[256];
    return t != AMB_NONE &&
           amb_print_ex(t, AMB_PRINT_PRETTY, buf, sizeof buf, NULL) == 0 &&
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
    /* Everything this process builds below is scratch: each step rewinds
     * its heap to here (the one way to keep a looping process bounded). */
    amb_heap_mark top = amb_heap_save(h);

    printf("puts and gets (any terms as keys and values):\n");
    EXPECT(is(ask(self, "{put, apple, 3}"), "ok"));
    EXPECT(is(ask(self, "{put, {fruit, pear}, [1,2,3]}"), "ok"));
    EXPECT(is(ask(self, "{put, <<\"name\">>, <<\"kv\">>}"), "ok"));
    EXPECT(is(ask(self, "{get, apple}"), "3"));
    EXPECT(is(ask(self, "{get, {fruit, pear}}"), "[1,2,3]"));
    EXPECT(is(ask(self, "{get, <<\"name\">>}"), "<<\"kv\">>"));
    EXPECT(is(ask(self, "{get, banana}"), "nil"));
    EXPECT(is(ask(self, "{delete, apple}"), "3"));
    EXPECT(is(ask(self, "{get, apple}"), "nil"));
    EXPECT(is(ask(self, "{delete, apple}"), "nil"));
    amb_heap_rewind(h, top);

    printf("a cast does not wait; a call after it sees its effect:\n");
    amb_gen_server_cast(self, amb_atom("kv"), amb_pack(h, "{put, ~a, ~i}", "cherry", 7));
    EXPECT(is(ask(self, "{get, cherry}"), "7"));
    amb_heap_rewind(h, top);

    printf("100000 updates of 100 keys; the runtime keeps the server small:\n");
    for (int i = 0; i < 100000; i++) {
        amb_heap_rewind(h, top);
        amb_term req =
            amb_pack(h, "{put, {key, ~i}, {value, ~i, ~S}}", i % 100, i, "text");
        if (amb_gen_server_call(self, pid, req, 5000, NULL) != 0)
            failures++;
    }
    amb_heap_rewind(h, top);
    amb_proc_info info;
    EXPECT(amb_process_info(self, pid, &info) == 0);
    printf("  the server's heap: %zu bytes\n", info.heap_size);
    EXPECT(info.heap_size < 256 * 1024); /* 100000 maps would be ~100 MB */
    EXPECT(is(ask(self, "{get, {key, 42}}"), "{value,99942,<<\"text\">>}"));
    amb_heap_rewind(h, top);

    printf("an unknown request is answered, not fatal:\n");
    EXPECT(is(ask(self, "what"), "{error,{unknown_request,what}}"));
    amb_heap_rewind(h, top);

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

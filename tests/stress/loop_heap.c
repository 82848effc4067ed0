/*
 * tests/stress/loop_heap.c - a stackful process that loops receiving,
 * building and sending keeps its heap bounded the one documented way
 * (process.h, amb_proc_heap; docs/guide.md, "Term lifetimes"): a mark taken
 * before the loop, rewound at the top of every round.
 *
 * What is proved: ten million rounds (each builds a tuple and a list, sends
 * them to itself, receives and checks them) leave the process heap within
 * a few small blocks, checked every million rounds through amb_heap_size
 * and process_info; the same loop without the rewind grows past that bound
 * within ten thousand rounds (so the bound is one the loop could break);
 * a loop of calls to a gen_server, the other common loop, stays bounded the
 * same way.
 */
#include "amb_test.h"
#include "amb_test_rt.h"

/* Ten million rounds where the build is optimised; a tenth of that in the
 * sanitizer builds (unoptimised, ~10 us a round), which run the same code
 * for its memory errors, not for its scale. */
#if defined(__SANITIZE_ADDRESS__) || defined(AMB_TSAN) || !defined(__OPTIMIZE__)
#define ROUNDS 1000000
#define CALLS  (100000 / SLOW) /* a TSan fiber per server activation */
#else
#define ROUNDS 10000000
#define CALLS  1000000
#endif
/* A rewound heap keeps its first blocks (64 + 128 ... words) and at most
 * one spare: a few KiB. */
#define BOUND ((size_t)8 << 10)

typedef struct loop_arg {
    bool rewind;
    int rounds;
    size_t max_heap; /* the largest heap seen at a check */
} loop_arg;

static void check_heap(amb_proc *self, loop_arg *a)
{
    size_t size = amb_heap_size(amb_proc_heap(self));
    amb_proc_info info;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &info));
    CHECK_EQ(self, info.heap_size, size);
    if (size > a->max_heap)
        a->max_heap = size;
}

static void loop_body(amb_proc *self, void *arg)
{
    loop_arg *a = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    for (int i = 0; i < a->rounds; i++) {
        if (a->rewind)
            amb_heap_rewind(h, top);
        amb_term msg = amb_pack(h, "{round, ~i, [~i, ~i, ~s]}", i, i + 1, i + 2, "x");
        CHECK_OK(self, amb_send(self, amb_self(self), msg));
        amb_term got;
        int n = -1, first = -1;
        CHECK_OK(self, amb_receive(self, DEADLINE_MS, &got));
        CHECK_OK(self, amb_match(got, "{round, ~i, [~i | _]}", &n, &first));
        CHECK(self, n == i && first == i + 1);
        if (i % 1000000 == 0 || i == a->rounds - 1)
            check_heap(self, a);
    }
}

AMB_TEST(ten_million_rounds_with_a_rewind_keep_the_heap_bounded)
{
    loop_arg a = {.rewind = true, .rounds = ROUNDS};
    run_in(1, loop_body, &a);
    if (a.max_heap > BOUND)
        fail_msg("heap reached %zu bytes (bound %zu)", a.max_heap, BOUND);
}

AMB_TEST(the_same_loop_without_the_rewind_grows_past_the_bound)
{
    loop_arg a = {.rewind = false, .rounds = 10000};
    run_in(1, loop_body, &a);
    if (a.max_heap <= BOUND)
        fail_msg("heap %zu bytes: the bound would not catch a loop that grows",
                 a.max_heap);
}

/* A loop of calls: each round builds a request, calls, reads the reply. */
static amb_gen_ret double_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)state;
    (void)from;
    int64_t n = 0;
    amb_int_get(amb_tuple_elem(req, 1), &n);
    return amb_gen_reply(AMB_TUPLE(amb_proc_heap(self), amb_atom("doubled"),
                                   amb_int(amb_proc_heap(self), 2 * n)));
}

static const amb_gen_server doubler = {.name = "doubler", .handle_call = double_call};

static void call_loop_body(amb_proc *self, void *arg)
{
    loop_arg *a = arg;
    amb_pid server;
    CHECK_OK(self, amb_gen_server_start(self, &doubler, NULL, NULL, &server, NULL));
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    for (int i = 0; i < a->rounds; i++) {
        amb_heap_rewind(h, top);
        amb_term reply;
        CHECK_OK(self, amb_gen_server_call(self, server, amb_pack(h, "{double, ~i}", i),
                                           DEADLINE_MS, &reply));
        int64_t v = -1;
        CHECK_OK(self, amb_match(reply, "{doubled, ~l}", &v));
        CHECK_EQ(self, v, 2 * (int64_t)i);
        if (i % 100000 == 0 || i == a->rounds - 1)
            check_heap(self, a);
    }
    CHECK_OK(self, amb_gen_server_stop(self, server, AMB_ATOM_NORMAL, DEADLINE_MS));
}

AMB_TEST(a_million_calls_in_a_loop_keep_the_caller_bounded)
{
    loop_arg a = {.rewind = true, .rounds = CALLS};
    run_in(2, call_loop_body, &a);
    if (a.max_heap > BOUND)
        fail_msg("heap reached %zu bytes (bound %zu)", a.max_heap, BOUND);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(ten_million_rounds_with_a_rewind_keep_the_heap_bounded),
              AMB_TEST_ENTRY(the_same_loop_without_the_rewind_grows_past_the_bound),
              AMB_TEST_ENTRY(a_million_calls_in_a_loop_keep_the_caller_bounded))

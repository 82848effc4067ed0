/*
 * tests/unit/borrow.c - borrow checking in AddressSanitizer builds
 * (docs/design/term-state.md, "Borrow checks"): every documented borrow
 * rule, broken on purpose, is an ASan report rather than silent wrong data.
 *
 * Each test runs the offending program in a child OS process (forked before
 * any runtime thread exists) with its stderr in a file, and checks that the
 * child died of an ASan report naming the expected kind: use-after-poison
 * for memory the library poisoned when the scope ended (a message cell back
 * in its pool, the words a heap rewind dropped), heap-use-after-free for
 * blocks it freed (an old heap after a term-state collection). The rules:
 *   1. a received message is borrowed until the next receive;
 *   2. a callback's request or message is borrowed until it returns (a C
 *      state that keeps it reads a dead message in the next callback);
 *   3. a call's reply is borrowed until the caller's next receive or call;
 *   4. terms a callback of a C-state server builds live until its result
 *      has been used (kept in the C state, they are gone next time);
 *   5. a loop's round: what a round built is gone after the rewind;
 *   6. a term-state process's terms live in its state: one kept elsewhere
 *      is gone after the next collection.
 * Only in the ASan build (make asan); skipped elsewhere. The child's
 * scenario also checks that, without ASan's report, it would have run on:
 * a child that exits normally fails the test.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amb_test.h"
#include "internal.h"

static volatile uint64_t sink; /* what the offending reads go to */

/* Reads the words of a boxed or list term the way a user's read would. */
static void read_term(amb_term t)
{
    if (amb_is_cons(t))
        sink += amb_list_head(t);
    else
        sink += amb_tuple_arity(t) + amb_tuple_elem(t, 0);
}

/* Runs body(arg) as the first process of a runtime in a child OS process
 * with stderr in a file; returns what the child wrote there (static). */
static const char *run_child(amb_fn *body, void *arg, int *status)
{
    static char text[65536];
    char path[64];
    int fd = amb_test_tmpfile("amb_borrow_", path, sizeof path);
    assert_true(fd >= 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60); /* a child that hangs fails, it does not block ctest */
        dup2(fd, STDERR_FILENO);
        amb_config cfg = {.schedulers = 1};
        amb_rt *rt;
        if (amb_rt_new(&cfg, &rt) != 0 || amb_rt_spawn(rt, body, arg, NULL) != 0)
            _exit(3);
        amb_rt_run(rt);
        _exit(0); /* no report: the test fails */
    }
    assert_int_equal(waitpid(pid, status, 0), pid);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return text;
}

static void expect_report(amb_fn *body, void *arg, const char *kind)
{
    if (!AMB__ASAN)
        skip(); /* the checks exist in the ASan build only */
    int status = 0;
    const char *err = run_child(body, arg, &status);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        fail_msg("the child ran on without a report; its stderr:\n%s", err);
    if (strstr(err, "ERROR: AddressSanitizer") == NULL || strstr(err, kind) == NULL)
        fail_msg("no ASan %s report; the child's stderr:\n%s", kind, err);
}

/* 1. A received message after the next receive. */
static void rule1_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_send(self, amb_self(self), amb_pack(h, "{first, [1, 2, 3]}"));
    amb_send(self, amb_self(self), amb_pack(h, "{second, [4]}"));
    amb_term first, second;
    amb_receive(self, 1000, &first);
    amb_receive(self, 1000, &second); /* first's borrow ends here */
    read_term(amb_tuple_elem(first, 1));
}

AMB_TEST(a_message_read_after_the_next_receive_is_reported)
{
    expect_report(rule1_body, NULL, "use-after-poison");
}

/* 2. A C-state server keeps the message a callback got. */
typedef struct keeps {
    amb_term kept;
} keeps;

static amb_gen_ret keeps_cast(amb_proc *self, void *state, amb_term msg)
{
    (void)self;
    keeps *k = state;
    if (k->kept != AMB_NONE)
        read_term(k->kept); /* the last callback's message */
    k->kept = msg;
    return amb_gen_noreply();
}

static const amb_gen_server keeps_msg = {.state_size = sizeof(keeps),
                                         .handle_cast = keeps_cast};

static void rule2_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    amb_gen_server_start(self, &keeps_msg, NULL, NULL, &pid, NULL);
    amb_gen_server_cast(self, pid, amb_pack(amb_proc_heap(self), "{one, [1, 2]}"));
    amb_gen_server_cast(self, pid, amb_pack(amb_proc_heap(self), "{two, [3]}"));
    amb_sleep(self, 5000);
}

AMB_TEST(a_request_kept_past_its_callback_is_reported)
{
    expect_report(rule2_body, NULL, "use-after-poison");
}

/* 3. A call's reply after the next call. */
static amb_gen_ret pair_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)state;
    (void)from;
    return amb_gen_reply(AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_OK,
                                   AMB_LIST(amb_proc_heap(self), req, req)));
}

static const amb_gen_server pairs = {.handle_call = pair_call};

static void rule3_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    amb_term r1, r2;
    amb_gen_server_start(self, &pairs, NULL, NULL, &pid, NULL);
    amb_gen_server_call(self, pid, amb_atom("a"), 1000, &r1);
    amb_gen_server_call(self, pid, amb_atom("b"), 1000, &r2); /* r1's borrow ends */
    read_term(amb_tuple_elem(r1, 1));
}

AMB_TEST(a_reply_read_after_the_next_call_is_reported)
{
    expect_report(rule3_body, NULL, "use-after-poison");
}

/* 4. A C-state server keeps a term it built in a callback. */
static amb_gen_ret builds_cast(amb_proc *self, void *state, amb_term msg)
{
    (void)msg;
    keeps *k = state;
    if (k->kept != AMB_NONE)
        read_term(k->kept); /* built by the last callback */
    k->kept = amb_pack(amb_proc_heap(self), "{built, [1, 2, 3]}");
    return amb_gen_noreply();
}

static const amb_gen_server keeps_built = {.state_size = sizeof(keeps),
                                           .handle_cast = builds_cast};

static void rule4_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    amb_gen_server_start(self, &keeps_built, NULL, NULL, &pid, NULL);
    amb_gen_server_cast(self, pid, amb_atom("one"));
    amb_gen_server_cast(self, pid, amb_atom("two"));
    amb_sleep(self, 5000);
}

AMB_TEST(a_term_built_in_a_callback_kept_in_a_c_state_is_reported)
{
    expect_report(rule4_body, NULL, "use-after-poison");
}

/* 5. A loop reads what an earlier round built. */
static void rule5_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    amb_term last = AMB_NONE;
    for (int i = 0; i < 3; i++) {
        amb_heap_rewind(h, top);
        if (last != AMB_NONE)
            read_term(last); /* the last round's */
        last = amb_pack(h, "{round, ~i, [~i]}", i, i);
    }
}

AMB_TEST(a_term_of_an_earlier_round_read_after_the_rewind_is_reported)
{
    expect_report(rule5_body, NULL, "use-after-poison");
}

/* 6. A term-state server keeps a term outside its state. */
static amb_term outside; /* the mistake: a term kept in C memory */

static amb_gen_ret grows_cast(amb_proc *self, void *state, amb_term msg)
{
    (void)msg;
    amb_heap *h = amb_proc_heap(self);
    if (outside == AMB_NONE)
        outside = amb_pack(h, "{outside, [1, 2, 3]}");
    else
        read_term(outside);
    for (int i = 0; i < 100; i++) /* garbage: collections come soon */
        *(amb_term *)state = amb_pack(h, "{state, ~i, [~i, ~i]}", i, i, i);
    return amb_gen_noreply();
}

static const amb_gen_server grows = {.state_term = true, .handle_cast = grows_cast};

static void rule6_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid;
    amb_gen_server_start(self, &grows, NULL, NULL, &pid, NULL);
    for (int i = 0; i < 1000; i++)
        amb_gen_server_cast(self, pid, amb_atom("grow"));
    amb_sleep(self, 5000);
}

AMB_TEST(a_term_kept_outside_a_term_state_read_after_a_collection_is_reported)
{
    expect_report(rule6_body, NULL, "heap-use-after-free");
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(a_message_read_after_the_next_receive_is_reported),
    AMB_TEST_ENTRY(a_request_kept_past_its_callback_is_reported),
    AMB_TEST_ENTRY(a_reply_read_after_the_next_call_is_reported),
    AMB_TEST_ENTRY(a_term_built_in_a_callback_kept_in_a_c_state_is_reported),
    AMB_TEST_ENTRY(a_term_of_an_earlier_round_read_after_the_rewind_is_reported),
    AMB_TEST_ENTRY(a_term_kept_outside_a_term_state_read_after_a_collection_is_reported))

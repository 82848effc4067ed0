/*
 * tests/unit/headers_cxx.cc - the public headers as a C++17 program uses them
 * (docs/design/api-conventions.md §7).
 *
 * Built with -std=c++17 -Wall -Wextra -Wpedantic -Werror and nothing else,
 * together with one generated translation unit per public header that
 * includes that header alone (tests/CMakeLists.txt), so each header compiles
 * on its own and all compile together through ambitious.h. This file then
 * links against the C library (every declaration has C linkage through
 * extern "C") and runs what the headers define inline: the immediate-term
 * checks, AMB_TUPLE and AMB_LIST (braced lists in C++), the gen_server
 * result constructors, and an AMB_NORETURN function ending a process.
 *
 * Its C11 twin is tests/unit/headers_pedantic.c. Both print what failed and
 * exit non-zero; no test framework, so that nothing but the headers meets
 * the strict flags.
 */
/* As a user compiles it: no feature macros (this test directory defines
 * _GNU_SOURCE for the others). */
#undef _GNU_SOURCE
#include <ambitious.h>

#include <cstdio>
#include <cstring>

static int failures;

#define EXPECT(cond)                                                                \
    do {                                                                            \
        if (!(cond)) {                                                              \
            std::fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                             \
        }                                                                           \
    } while (0)

static bool prints_as(amb_term t, const char *text)
{
    char buf[128];
    return amb_print(t, buf, sizeof buf, nullptr) == 0 && std::strcmp(buf, text) == 0;
}

static void terms()
{
    amb_heap *h = nullptr;
    EXPECT(amb_heap_new(&h) == 0);
    amb_term t = AMB_TUPLE(h, amb_atom("ok"), amb_int(h, 42),
                           AMB_LIST(h, AMB_SMALL(1), AMB_SMALL(2), AMB_ATOM_TRUE));
    EXPECT(prints_as(t, "{ok,42,[1,2,true]}"));
    EXPECT(amb_is_tuple(t) && amb_tuple_arity(t) == 3);
    EXPECT(amb_is_small(amb_tuple_elem(t, 1)) &&
           amb_small_value(amb_tuple_elem(t, 1)) == 42);
    EXPECT(amb_is_atom(amb_tuple_elem(t, 0)) && amb_bool(false) == AMB_ATOM_FALSE);
    int64_t v = 0;
    EXPECT(amb_int_get(amb_int(h, -7), &v) == 0 && v == -7);
    const uint8_t *data = nullptr;
    size_t size = 0;
    EXPECT(amb_binary_get(amb_binary(h, "abc", 3), &data, &size) == 0 && size == 3);
    EXPECT(AMB_TUPLE(h, AMB_NONE) == AMB_NONE); /* failure passes on */
    EXPECT(std::strcmp(amb_err_name(AMB_EBADARG), "AMB_EBADARG") == 0);
    amb_heap_free(h);
}

static void gen_results()
{
    amb_gen_ret r = amb_gen_timeout(amb_gen_reply(AMB_ATOM_OK), AMB_TIMEOUT_MAX);
    EXPECT(r.action == AMB_GEN_REPLY && r.reply == AMB_ATOM_OK);
    EXPECT(r.next == AMB_GEN_NEXT_TIMEOUT && r.timeout_ms == AMB_TIMEOUT_MAX);
    amb_gen_ret f = amb_gen_fail(AMB_ENOPROC);
    EXPECT(f.action == AMB_GEN_STOP && f.error == AMB_ENOPROC && f.reason == AMB_NONE);
    EXPECT(amb_gen_continue(amb_gen_ok(), AMB_NIL).cont == AMB_NIL);
    EXPECT(amb_gen_ignore().action == AMB_GEN_IGNORE);
}

/* A process that ends itself through the AMB_NORETURN function; its parent
 * sees the reason, the logger a crash report. */
static void quitter(amb_proc *self, void *arg)
{
    (void)arg;
    amb_exit_self(self, amb_atom("from_cxx"));
}

/* The handler of the runtime's log (ctx first, as every callback): counts
 * crash reports and keeps them off stderr. */
static void count_reports(void *ctx, const amb_log_event *ev)
{
    if (ev->crash_report)
        (*static_cast<int *>(ctx))++;
}

static int reports;

static void parent(amb_proc *self, void *arg)
{
    amb_term *seen = static_cast<amb_term *>(arg);
    amb_pid pid;
    amb_term ref, msg;
    if (amb_logger_set_handler(amb_proc_rt(self), count_reports, &reports) != 0 ||
        amb_spawn_monitor(self, quitter, nullptr, &pid, &ref) != 0)
        return;
    if (amb_receive_match(self, 10000, &msg, "{'DOWN', ~v, process, _, _}", ref) == 0)
        *seen = amb_tuple_elem(msg, 4); /* an atom: it outlives the message */
}

static void runtime()
{
    amb_config cfg = {};
    cfg.schedulers = 1;
    amb_term seen = AMB_NONE;
    EXPECT(amb_main(&cfg, parent, &seen) == 0);
    EXPECT(seen == amb_atom("from_cxx"));
    EXPECT(reports == 1); /* one scheduler: read after amb_main joined it */
}

int main()
{
    terms();
    gen_results();
    runtime();
    if (failures != 0)
        std::fprintf(stderr, "%d failure(s)\n", failures);
    return failures == 0 ? 0 : 1;
}

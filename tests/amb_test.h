/*
 * amb_test.h - the test harness: cmocka underneath (docs/design/testing.md
 * says why), plus what every test file of ambitious needs. Tests that run
 * processes include tests/amb_test_rt.h, which builds on this one.
 *
 *   AMB_TEST(name) { ... }          defines a test
 *   AMB_TEST_PENDING(name, "label", "why") { ... }  one registered, not run
 *   AMB_TEST_MAIN(AMB_TEST_ENTRY(t1), ...)  the file's main(): runs every test, the one
 *                                   named by argv[1], or lists them (--list)
 *   assert_ok(expr)                 expr must return 0; prints the AMB_E* name
 *   assert_rc(AMB_EX, expr)         expr must return that code
 *   assert_term_text(t, "text")     t must print as exactly that text
 *   amb_test_same_term_text(a, b)   two Erlang texts of equal terms
 *   amb_test_deadline_ms(ms)        a monotonic deadline for wait loops
 *   amb_test_tmpfile(prefix, ...)   a fresh temporary file
 *   amb_test_rss_kib()              this OS process's resident set
 *
 * The test allocator. Every test binary runs the library on one allocator
 * of this file, installed before main (a constructor), so that:
 *   - live blocks and bytes are counted (amb_test_alloc_now): a test, or the
 *     runner of amb_test_rt.h when a runtime ends, proves nothing leaked by
 *     comparing two counts;
 *   - failures can be injected: amb_test_alloc_fail(n, count) makes
 *     allocations n .. n+count-1, counted from the call (0 is the next one),
 *     return NULL; count AMB_TEST_FAIL_ONCE is one allocation,
 *     AMB_TEST_FAIL_FOREVER every one from n on. malloc and realloc are
 *     allocations; free is not.
 *   - amb_test_oom_loop(body, ctx, mode) is the fault-injection loop
 *     (SQLite's faultsim, Jansson's test_chaos): it runs body with
 *     allocation n failing for n = 0, 1, 2, ... until a run in which no
 *     allocation failed; each run must return 0 or AMB_ENOMEM and leave the
 *     live blocks where they were before it.
 * AMB_TEST_ALLOC_TRACE=1 in the environment prints a backtrace where each
 * failure is injected. A test never installs an allocator of its own
 * (memory is freed through the allocator that gave it, and this one was
 * there first).
 *
 * CMake (tests/CMakeLists.txt) reads the AMB_TEST(name) lines of each file
 * and makes one CTest entry per test, so `ctest -R name` and per-test
 * timeouts work and each test runs in its own OS process.
 *
 * Tests assert on observations (a message, a counter) with a deadline, never
 * after a sleep.
 */
#ifndef AMB_TEST_H
#define AMB_TEST_H

#include <execinfo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <cmocka.h>

#include "ambitious.h"

#define AMB_TEST(name) static void name(void **amb_test_state_unused_)

/* A test that fails today for a reason being fixed elsewhere: registered
 * with CTest under the label label but DISABLED, so it never runs by
 * default (`ctest -N -L label` lists it; the binary runs it when named).
 * why, a string, says what fails. tests/CMakeLists.txt reads
 * `AMB_TEST_PENDING(name, "label"`. */
#define AMB_TEST_PENDING(name, label, why) AMB_TEST(name)

#define assert_ok(expr)                                                   \
    do {                                                                  \
        int amb_rc_ = (expr);                                             \
        if (amb_rc_ != 0)                                                 \
            fail_msg("%s returned %s (%s)", #expr, amb_err_name(amb_rc_), \
                     amb_strerror(amb_rc_));                              \
    } while (0)

#define assert_rc(expected, expr)                                                 \
    do {                                                                          \
        int amb_rc_ = (expr);                                                     \
        if (amb_rc_ != (expected))                                                \
            fail_msg("%s returned %s, expected %s", #expr, amb_err_name(amb_rc_), \
                     amb_err_name(expected));                                     \
    } while (0)

/* The size of the text buffers below: terms the tests compare are small. */
#define AMB_TEST_TEXT_MAX 4096

/* Prints t as Erlang text into buf (cap bytes, NUL-terminated): 0, or the
 * code of amb_print (the text is then "<unprintable>"). AMB_NONE prints as
 * "AMB_NONE", so a failed build reads as one. */
__attribute__((unused)) static int amb_test_text(amb_term t, char *buf, size_t cap)
{
    if (t == AMB_NONE) {
        snprintf(buf, cap, "AMB_NONE");
        return 0;
    }
    int rc = amb_print(t, buf, cap, NULL);
    if (rc != 0)
        snprintf(buf, cap, "<unprintable>");
    return rc;
}

/* True when the two Erlang texts parse to equal terms ("{a, <<\"x\">>}" and
 * "{a,<<120>>}" do). */
__attribute__((unused)) static bool amb_test_same_term_text(const char *a, const char *b)
{
    amb_heap *h = NULL;
    amb_term x = AMB_NONE, y = AMB_NONE;
    bool same = amb_heap_new(&h) == 0 && amb_parse(h, a, strlen(a), &x, NULL) == 0 &&
                amb_parse(h, b, strlen(b), &y, NULL) == 0 && amb_equal(x, y);
    amb_heap_free(h);
    return same;
}

/* Fails unless the term printed as Erlang text equals want. */
#define assert_term_text(t, want)                                              \
    do {                                                                       \
        char amb_txt_[AMB_TEST_TEXT_MAX];                                      \
        int amb_prc_ = amb_test_text((t), amb_txt_, sizeof amb_txt_);          \
        if (amb_prc_ != 0)                                                     \
            fail_msg("amb_print(%s) returned %s", #t, amb_err_name(amb_prc_)); \
        if (strcmp(amb_txt_, (want)) != 0)                                     \
            fail_msg("%s printed as %s, expected %s", #t, amb_txt_, (want));   \
    } while (0)

static inline uint64_t amb_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline uint64_t amb_test_deadline_ms(uint64_t ms)
{
    return amb_test_now_ms() + ms;
}

/* Creates a fresh temporary file /tmp/<prefix><6 random chars> (mkstemp):
 * its path in path[cap], its descriptor returned (-1 on failure). */
static inline int amb_test_tmpfile(const char *prefix, char *path, size_t cap)
{
    int n = snprintf(path, cap, "/tmp/%s", prefix);
    if (n < 0 || (size_t)n + 7 > cap)
        return -1;
    memset(path + n, 'X', 6); /* mkstemp's template: six of them */
    path[n + 6] = '\0';
    return mkstemp(path);
}

/* The resident set of this OS process in KiB (/proc/self/status), or -1. */
__attribute__((unused)) static long amb_test_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* ===========================================================================
 * The test allocator
 *
 * Each block carries a header of AMB_TEST_ALLOC_HDR bytes holding its size,
 * so free and realloc know what they give back. 16 keeps the C library's
 * alignment (max_align_t); the library asks amb__malloc_aligned for more
 * where it needs more.
 *
 * Invariants: live_blocks and live_bytes are what the library holds now;
 * every allocation takes the next index from `calls`; an allocation fails
 * exactly when its index i satisfies fail_at <= i < fail_at + fail_count.
 * ======================================================================== */

#define AMB_TEST_ALLOC_HDR    16
#define AMB_TEST_FAIL_ONCE    ((uint64_t)1)
#define AMB_TEST_FAIL_FOREVER UINT64_MAX
#define AMB_TEST_NO_FAILURE   UINT64_MAX /* fail_at when nothing is armed */
/* The atom table's chunks (src/core/atom.c): never freed, by design. */
#define AMB_TEST_ATOM_CHUNK ((size_t)64 << 10)

static struct {
    /* relaxed: each allocation needs a unique index, nothing more; the
     * test reads the count in the thread that made the allocations or
     * after joining the threads that did. */
    atomic_uint_fast64_t calls;
    /* release store (arm) / acquire load (allocate): fail_count is stored
     * before fail_at is, so an allocation that sees the new fail_at sees its
     * count. Disarming stores AMB_TEST_NO_FAILURE first. */
    atomic_uint_fast64_t fail_at;
    atomic_uint_fast64_t fail_count;
    /* relaxed: statistics read after a join (amb_rt_run / amb_rt_free
     * joined every scheduler thread) or in the allocating thread. */
    atomic_uint_fast64_t failed;
    atomic_int_fast64_t live_blocks;
    atomic_int_fast64_t live_bytes;
    atomic_int_fast64_t live_chunks; /* live blocks of AMB_TEST_ATOM_CHUNK bytes */
    atomic_int_fast64_t live_maps;   /* pages taken with map (the runtime's slabs) */
} amb_test_alloc_ = {.fail_at = AMB_TEST_NO_FAILURE};

/* A count of the allocator at one moment (amb_test_alloc_now). */
typedef struct amb_test_alloc_count {
    uint64_t calls;  /* allocations asked for since the start */
    uint64_t failed; /* failures injected since the start */
    int64_t live_blocks;
    int64_t live_bytes;
    int64_t live_chunks; /* of those, atom table chunks */
    int64_t live_maps;   /* maps (slabs), apart from the blocks */
    size_t atoms;        /* amb_atom_count() */
} amb_test_alloc_count;

/* True when this allocation is to fail. */
static bool amb_test_alloc_fails_(void)
{
    uint64_t i =
        atomic_fetch_add_explicit(&amb_test_alloc_.calls, 1, memory_order_relaxed);
    uint64_t at = atomic_load_explicit(&amb_test_alloc_.fail_at, memory_order_acquire);
    if (at == AMB_TEST_NO_FAILURE || i < at)
        return false;
    uint64_t n = atomic_load_explicit(&amb_test_alloc_.fail_count, memory_order_relaxed);
    if (i - at >= n)
        return false;
    atomic_fetch_add_explicit(&amb_test_alloc_.failed, 1, memory_order_relaxed);
    if (getenv("AMB_TEST_ALLOC_TRACE") != NULL) {
        /* Where the failure was injected (addr2line -f -e <test> <address>). */
        void *frames[32];
        fprintf(stderr, "amb_test: allocation %llu fails here:\n", (unsigned long long)i);
        backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
    }
    return true;
}

static void amb_test_alloc_account_(size_t size, int sign)
{
    atomic_fetch_add_explicit(&amb_test_alloc_.live_blocks, sign, memory_order_relaxed);
    atomic_fetch_add_explicit(&amb_test_alloc_.live_bytes, sign * (int64_t)size,
                              memory_order_relaxed);
    if (size == AMB_TEST_ATOM_CHUNK)
        atomic_fetch_add_explicit(&amb_test_alloc_.live_chunks, sign,
                                  memory_order_relaxed);
}

static void *amb_test_malloc_(void *ud, size_t size)
{
    (void)ud;
    if (amb_test_alloc_fails_() || size > SIZE_MAX - AMB_TEST_ALLOC_HDR)
        return NULL;
    char *raw = malloc(size + AMB_TEST_ALLOC_HDR);
    if (raw == NULL)
        return NULL;
    memcpy(raw, &size, sizeof size);
    amb_test_alloc_account_(size, 1);
    return raw + AMB_TEST_ALLOC_HDR;
}

/* calloc, so the large tables the library zeroes (process table, atom table)
 * stay untouched fresh pages, as with the C library's allocator. */
static void *amb_test_calloc_(void *ud, size_t n, size_t size)
{
    (void)ud;
    if (amb_test_alloc_fails_() ||
        (size != 0 && n > (SIZE_MAX - AMB_TEST_ALLOC_HDR) / size))
        return NULL;
    char *raw = calloc(1, n * size + AMB_TEST_ALLOC_HDR);
    if (raw == NULL)
        return NULL;
    size_t total = n * size;
    memcpy(raw, &total, sizeof total);
    amb_test_alloc_account_(total, 1);
    return raw + AMB_TEST_ALLOC_HDR;
}

static void amb_test_free_(void *ud, void *ptr)
{
    (void)ud;
    if (ptr == NULL)
        return;
    char *raw = (char *)ptr - AMB_TEST_ALLOC_HDR;
    size_t size;
    memcpy(&size, raw, sizeof size);
    amb_test_alloc_account_(size, -1);
    free(raw);
}

static void *amb_test_realloc_(void *ud, void *ptr, size_t size)
{
    if (ptr == NULL)
        return amb_test_malloc_(ud, size);
    if (amb_test_alloc_fails_() || size > SIZE_MAX - AMB_TEST_ALLOC_HDR)
        return NULL; /* the old block stays as it was, as realloc's does */
    char *raw = (char *)ptr - AMB_TEST_ALLOC_HDR;
    size_t old;
    memcpy(&old, raw, sizeof old);
    char *moved = realloc(raw, size + AMB_TEST_ALLOC_HDR);
    if (moved == NULL)
        return NULL;
    memcpy(moved, &size, sizeof size);
    amb_test_alloc_account_(old, -1);
    amb_test_alloc_account_(size, 1);
    return moved + AMB_TEST_ALLOC_HDR;
}

/* Pages (the runtime's slabs): failed like any allocation, counted apart
 * from the blocks (live_maps): a slab comes and goes with the pools' churn,
 * which a test that measures live bytes does not want to see; the leak
 * check counts them. */
static void *amb_test_map_(void *ud, size_t size)
{
    (void)ud;
    if (amb_test_alloc_fails_())
        return NULL;
    void *p =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    atomic_fetch_add_explicit(&amb_test_alloc_.live_maps, 1, memory_order_relaxed);
    return p;
}

static void amb_test_unmap_(void *ud, void *ptr, size_t size)
{
    (void)ud;
    atomic_fetch_sub_explicit(&amb_test_alloc_.live_maps, 1, memory_order_relaxed);
    munmap(ptr, size);
}

/* Installed before main: before the library allocates anything. */
__attribute__((constructor)) static void amb_test_alloc_install_(void)
{
    static const amb_allocator a = {
        amb_test_malloc_, amb_test_realloc_, amb_test_free_, NULL,
        amb_test_calloc_, amb_test_map_,     amb_test_unmap_};
    if (amb_set_allocator(&a) != 0)
        abort();
    /* The atom table, made at the first atom, lives as long as the OS
     * process: made now, it is in every count a test compares. */
    if (amb_atom("ok") == AMB_NONE)
        abort();
}

/* The allocator's count now. */
__attribute__((unused)) static amb_test_alloc_count amb_test_alloc_now(void)
{
    amb_test_alloc_count c;
    c.calls = atomic_load_explicit(&amb_test_alloc_.calls, memory_order_relaxed);
    c.failed = atomic_load_explicit(&amb_test_alloc_.failed, memory_order_relaxed);
    c.live_blocks =
        atomic_load_explicit(&amb_test_alloc_.live_blocks, memory_order_relaxed);
    c.live_bytes =
        atomic_load_explicit(&amb_test_alloc_.live_bytes, memory_order_relaxed);
    c.live_chunks =
        atomic_load_explicit(&amb_test_alloc_.live_chunks, memory_order_relaxed);
    c.live_maps = atomic_load_explicit(&amb_test_alloc_.live_maps, memory_order_relaxed);
    c.atoms = amb_atom_count();
    return c;
}

/* Makes allocations n .. n+count-1 fail, counted from this call (n = 0: the
 * next allocation). count: AMB_TEST_FAIL_ONCE, AMB_TEST_FAIL_FOREVER, or any
 * number. Replaces what was armed before. */
__attribute__((unused)) static void amb_test_alloc_fail(uint64_t n, uint64_t count)
{
    atomic_store_explicit(&amb_test_alloc_.fail_at, AMB_TEST_NO_FAILURE,
                          memory_order_release);
    atomic_store_explicit(&amb_test_alloc_.fail_count, count, memory_order_relaxed);
    uint64_t now = atomic_load_explicit(&amb_test_alloc_.calls, memory_order_relaxed);
    atomic_store_explicit(&amb_test_alloc_.fail_at, now + n, memory_order_release);
}

/* No allocation fails from now on. */
__attribute__((unused)) static void amb_test_alloc_disarm(void)
{
    atomic_store_explicit(&amb_test_alloc_.fail_at, AMB_TEST_NO_FAILURE,
                          memory_order_release);
}

/* What leaked between two counts, as text in buf (empty: nothing). Blocks
 * still live are a leak, except chunks of the atom table taken while atoms
 * were made (the table lives as long as the OS process). */
__attribute__((unused)) static const char *
amb_test_alloc_leak(const amb_test_alloc_count *before, const amb_test_alloc_count *after,
                    char *buf, size_t cap)
{
    int64_t chunks = after->live_chunks - before->live_chunks;
    int64_t blocks = after->live_blocks - before->live_blocks;
    int64_t bytes = after->live_bytes - before->live_bytes;
    int64_t maps = after->live_maps - before->live_maps;
    if (chunks > 0 && after->atoms > before->atoms) {
        blocks -= chunks;
        bytes -= chunks * (int64_t)AMB_TEST_ATOM_CHUNK;
    }
    buf[0] = '\0';
    if (blocks != 0 || bytes != 0)
        snprintf(buf, cap, "%lld blocks (%lld bytes) %s", (long long)blocks,
                 (long long)bytes, blocks >= 0 && bytes >= 0 ? "leaked" : "freed twice?");
    else if (maps != 0)
        snprintf(buf, cap, "%lld slabs %s", (long long)maps,
                 maps > 0 ? "still mapped (cells or blocks leaked)" : "unmapped twice?");
    return buf;
}

/* ===========================================================================
 * The fault-injection loop
 * ======================================================================== */

typedef enum amb_test_oom_mode {
    AMB_TEST_OOM_ONCE, /* allocation n fails, the ones after it succeed */
    AMB_TEST_OOM_FROM, /* allocation n and every one after it fail */
} amb_test_oom_mode;

/* What a loop did: runs (one per n), the runs with a failure injected, and
 * how many allocations the last run (no failure) made. */
typedef struct amb_test_oom_stats {
    long runs;
    long failed_runs;
    uint64_t allocations;
} amb_test_oom_stats;

/* A loop gives up (and fails) when n reaches this. */
#define AMB_TEST_OOM_MAX_N 1000000L

/* The count for a run with allocation n failing in mode. */
__attribute__((unused)) static uint64_t amb_test_oom_count_(amb_test_oom_mode mode)
{
    return mode == AMB_TEST_OOM_ONCE ? AMB_TEST_FAIL_ONCE : AMB_TEST_FAIL_FOREVER;
}

/* A body run by amb_test_oom_loop, on the test's thread (cmocka asserts are
 * fine in it): does its work, frees what it made, returns 0 or an AMB_E*
 * code. */
typedef int amb_test_oom_fn(void *ctx);

/*
 * Runs body(ctx) with allocation n failing (mode), for n = 0, 1, 2, ... and
 * returns when a run made no allocation fail (that run must return 0). Each
 * run must return 0 or AMB_ENOMEM and leave the allocator's live blocks as
 * they were before it (amb_test_alloc_leak). Fails the test otherwise, with
 * n in the message.
 */
__attribute__((unused)) static amb_test_oom_stats
amb_test_oom_loop(amb_test_oom_fn *body, void *ctx, amb_test_oom_mode mode)
{
    amb_test_oom_stats st = {0, 0, 0};
    for (long n = 0; n < AMB_TEST_OOM_MAX_N; n++) {
        amb_test_alloc_count before = amb_test_alloc_now();
        amb_test_alloc_fail((uint64_t)n, amb_test_oom_count_(mode));
        int rc = body(ctx);
        amb_test_alloc_disarm();
        amb_test_alloc_count after = amb_test_alloc_now();
        bool injected = after.failed > before.failed;
        char leak[128];
        st.runs++;
        st.failed_runs += injected;
        if (rc != 0 && rc != AMB_ENOMEM)
            fail_msg("allocation %ld failing: the body returned %s", n, amb_err_name(rc));
        if (amb_test_alloc_leak(&before, &after, leak, sizeof leak)[0] != '\0')
            fail_msg("allocation %ld failing (body returned %s): %s", n, amb_err_name(rc),
                     leak);
        if (!injected) {
            if (rc != 0)
                fail_msg("no allocation failed, yet the body returned %s",
                         amb_err_name(rc));
            st.allocations = after.calls - before.calls;
            return st;
        }
    }
    fail_msg("the body still made an allocation fail at n = %ld", AMB_TEST_OOM_MAX_N);
    return st;
}

/* ===========================================================================
 * main
 * ======================================================================== */

static inline int amb_test_main(int argc, char **argv, const char *group,
                                const struct CMUnitTest *tests, size_t n)
{
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (argc > 1) {
        size_t found = 0;
        for (size_t i = 0; i < n; i++)
            found += strcmp(tests[i].name, argv[1]) == 0;
        if (found != 1) {
            fprintf(stderr, "%s: no test named %s\n", group, argv[1]);
            return 2;
        }
        cmocka_set_test_filter(argv[1]);
    }
    return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}

/* AMB_TEST_MAIN(AMB_TEST_ENTRY(a), AMB_TEST_ENTRY(b), ...) */
#define AMB_TEST_ENTRY(name) cmocka_unit_test(name)
#define AMB_TEST_MAIN(...)                                              \
    int main(int argc, char **argv)                                     \
    {                                                                   \
        static const struct CMUnitTest amb_tests_[] = {__VA_ARGS__};    \
        return amb_test_main(argc, argv, __FILE__, amb_tests_,          \
                             sizeof amb_tests_ / sizeof amb_tests_[0]); \
    }

#endif /* AMB_TEST_H */

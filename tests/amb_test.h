/*
 * amb_test.h - the test harness: cmocka underneath (docs/design/testing.md
 * says why), plus what every test file of ambitious needs:
 *
 *   AMB_TEST(name) { ... }          defines a test
 *   AMB_TEST_MAIN(AMB_TEST_ENTRY(t1), ...)  the file's main(): runs every test, the one
 *                                   named by argv[1], or lists them (--list)
 *   assert_ok(expr)                 expr must return 0; prints the AMB_E* name
 *   assert_rc(AMB_EX, expr)         expr must return that code
 *   amb_test_deadline_ms(ms)        a monotonic deadline for wait loops
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

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ambitious.h"

#define AMB_TEST(name) static void name(void **amb_test_state_unused_)

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

/* Fails unless the term printed as Erlang text equals want. */
#define assert_term_text(t, want)                                              \
    do {                                                                       \
        char amb_txt_[4096];                                                   \
        size_t amb_len_ = 0;                                                   \
        int amb_prc_ = amb_print((t), amb_txt_, sizeof amb_txt_, &amb_len_);   \
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

/*
 * rt_test.h - the harness of the runtime tests (tests/unit/process.c,
 * receive.c, timers.c, names.c, tests/stress/processes.c and the
 * conformance suite). Include after amb_test.h.
 *
 * Each test creates its own runtime with an explicit configuration, usually
 * once with one scheduler and once with two, spawns a first process and runs
 * the runtime until every process has ended. Processes never call cmocka
 * (its asserts longjmp to the test thread's stack): they record observations
 * in a struct passed as arg, and a failed CHECK inside a process records the
 * first failure, stops the runtime and ends the process. The test thread
 * asserts after amb_rt_run returned. Every wait has a deadline (a receive
 * timeout of DEADLINE_MS, or a polling loop that yields and gives up after
 * DEADLINE_MS); nothing sleeps.
 */
#ifndef AMB_RT_TEST_H
#define AMB_RT_TEST_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "amb_test.h"

#ifndef DEADLINE_MS /* a test file may give itself more time */
#define DEADLINE_MS 5000
#endif

/* ThreadSanitizer runs the runtime 5-15x slower: the bulk tests do less
 * work under it (the interleavings they look for stay the same). */
#ifdef AMB_TSAN
#define SLOW 4
#else
#define SLOW 1
#endif

/* The first failure seen inside a process. Written once (the exchange
 * decides who writes), read by the test thread after amb_rt_run returned,
 * which joined every scheduler thread. */
static atomic_int g_failed;
static char g_fail_text[512];

__attribute__((format(printf, 4, 5))) static _Noreturn void
proc_fail(amb_proc *self, const char *file, int line, const char *fmt, ...)
{
    /* seq_cst: one winner writes the text; the join that follows orders it
     * before the test thread's read. */
    if (atomic_exchange(&g_failed, 1) == 0) {
        int n = snprintf(g_fail_text, sizeof g_fail_text, "%s:%d: ", file, line);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_fail_text + n, sizeof g_fail_text - (size_t)n, fmt, ap);
        va_end(ap);
    }
    amb_rt_stop(amb_proc_rt(self));
    amb_exit_self(self, AMB_ATOM_ERROR);
}

#define CHECK(self, cond)                                       \
    do {                                                        \
        if (!(cond))                                            \
            proc_fail((self), __FILE__, __LINE__, "%s", #cond); \
    } while (0)
#define CHECK_RC(self, want, expr)                                                      \
    do {                                                                                \
        int rc_ = (expr);                                                               \
        if (rc_ != (want))                                                              \
            proc_fail((self), __FILE__, __LINE__, "%s returned %s, expected %s", #expr, \
                      amb_err_name(rc_), amb_err_name(want));                           \
    } while (0)
#define CHECK_OK(self, expr) CHECK_RC(self, 0, expr)
#define CHECK_EQ(self, a, b)                                                             \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ != b_)                                                                    \
            proc_fail((self), __FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, \
                      a_, #b, b_);                                                       \
    } while (0)

/* Polls cond, yielding in between, for at most DEADLINE_MS. */
#define WAIT_UNTIL(self, cond)                                                    \
    do {                                                                          \
        int64_t until_ = amb_now_ms() + DEADLINE_MS;                              \
        while (!(cond)) {                                                         \
            if (amb_now_ms() > until_)                                            \
                proc_fail((self), __FILE__, __LINE__, "timed out waiting for %s", \
                          #cond);                                                 \
            amb_yield(self);                                                      \
        }                                                                         \
    } while (0)

/* The oldest message, or a failure after DEADLINE_MS (or ms). */
#define RECV(self)            RECV_WITHIN(self, DEADLINE_MS)
#define RECV_WITHIN(self, ms) recv_at((self), (ms), __FILE__, __LINE__)
__attribute__((unused)) static amb_term recv_at(amb_proc *self, int ms, const char *file,
                                                int line)
{
    amb_term t = AMB_NONE;
    int rc = amb_receive(self, ms, &t);
    if (rc != 0)
        proc_fail(self, file, line, "amb_receive returned %s", amb_err_name(rc));
    return t;
}

/* The value of a small-integer message (or of element i of a tuple). */
__attribute__((unused)) static int64_t int_of(amb_term t)
{
    int64_t v = INT64_MIN;
    if (amb_int_get(t, &v) != 0)
        return INT64_MIN;
    return v;
}

__attribute__((unused)) static amb_term mk_int(int64_t v)
{
    return amb_int(NULL, v);
}

/* A pointer carried in a message (user-space addresses are small integers). */
__attribute__((unused)) static amb_term mk_ptr(const void *p)
{
    return amb_int(NULL, (int64_t)(uintptr_t)p);
}

__attribute__((unused)) static void *ptr_of(amb_term t)
{
    return (void *)(uintptr_t)int_of(t);
}

/* pid's status, or a negative AMB_E* code. */
__attribute__((unused)) static int status_of(amb_proc *self, amb_pid pid)
{
    amb_proc_info pi;
    int rc = amb_process_info(self, pid, &pi);
    return rc != 0 ? rc : (int)pi.status;
}

__attribute__((unused)) static void reset_failure(void)
{
    atomic_store(&g_failed, 0);
    g_fail_text[0] = '\0';
}

__attribute__((unused)) static void assert_no_process_failure(void)
{
    if (atomic_load(&g_failed))
        fail_msg("inside a process: %s", g_fail_text);
}

__attribute__((unused)) static amb_config config_of(unsigned nsched)
{
    amb_config cfg = {0};
    cfg.schedulers = nsched;
    cfg.max_processes = (size_t)1 << 16;
    return cfg;
}

/* Runs fn(arg) as the first process of a fresh runtime of nsched schedulers
 * until every process has ended, then frees the runtime. */
__attribute__((unused)) static void run_in(unsigned nsched, amb_fn *fn, void *arg)
{
    amb_config cfg = config_of(nsched);
    amb_rt *rt = NULL;
    reset_failure();
    assert_ok(amb_rt_new(&cfg, &rt));
    assert_ok(amb_rt_spawn(rt, fn, arg, NULL));
    int rc = amb_rt_run(rt);
    amb_rt_free(rt);
    assert_ok(rc);
    assert_no_process_failure();
}

/* The resident set of this OS process in KiB (/proc/self/status), or -1. */
__attribute__((unused)) static long rss_kib(void)
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

#endif /* AMB_RT_TEST_H */

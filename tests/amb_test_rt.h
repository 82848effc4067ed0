/*
 * amb_test_rt.h - the harness of every test that runs processes (the unit
 * tests of the process layer, conformance/, behaviour/, stress/). It builds
 * on tests/amb_test.h (its allocator above all); include it instead of
 * that one. A file may define DEADLINE_MS (default 5000) and
 * AMB_TEST_MAX_PROCESSES (default 65536) before it.
 *
 * Running a test body. run_in(n, fn, arg) runs fn(arg) as the first
 * process of a fresh runtime of n schedulers until every process has ended;
 * run_both(fn, arg) does it with one scheduler (every interleaving is a
 * switch) and then with two (parallel); amb_test_run(&cfg, fn, arg) takes a
 * configuration. The run fails the test, with a message that says which,
 * when:
 *   - a CHECK failed inside a process (the first failure is kept);
 *   - the runtime did not end within the deadline (a process was left
 *     running: a watchdog thread stops the runtime);
 *   - the first process did not reach its end (an exit signal ended it),
 *     unless cfg.may_not_finish;
 *   - the runtime's memory did not all come back when it was freed: the
 *     test allocator's live blocks must be what they were before amb_rt_new
 *     (atom table chunks aside: atoms live as long as the OS process),
 *     unless cfg.keeps_memory.
 * Every run has a logger handler that keeps the output quiet and counts
 * events (amb_test_log_count, amb_test_log_last_*).
 *
 * Inside a process. Processes never call cmocka (its asserts longjmp to the
 * test thread's stack): CHECK, CHECK_OK, CHECK_RC, CHECK_EQ, CHECK_TEXT (t
 * prints as exactly that text), CHECK_TERM (t equals the term that text
 * writes) record the first failure (file, line, what), stop the runtime and
 * end the process; the test thread reports it once amb_rt_run returned.
 *
 * Waiting, always with a deadline (AMB_TEST_WAIT_MS: DEADLINE_MS, longer
 * under TSan), never with a sleep:
 *   RECV(self)                       the oldest message
 *   WAIT_MSG(self, &msg, fmt, ...)   a message matching an amb_match pattern
 *   wait_down(self, ref, pid)        the DOWN of a monitor; returns its reason
 *   wait_exit(self, pid)             the EXIT of a linked process (trapping)
 *   WAIT_COUNT(self, counter, n)     an atomic counter reaching n
 *   WAIT_UNTIL(self, cond)           any predicate (yields between tries)
 *
 * Allocation failure in a runtime. amb_test_oom_loop_rt runs an operation
 * (op) with allocation n failing for n = 0, 1, 2, ... until it runs with no
 * failure: every allocation point fails once. Each time op must return 0 or
 * AMB_ENOMEM; afterwards the runtime must still work (op again, with no
 * failure, returns 0, and a fresh process answers a message), every process
 * must end, and when the runtime is freed nothing may be left (the run's
 * leak check). AMB_TEST_OOM_RT(op, ctx) is the one-line form.
 */
#ifndef AMB_TEST_RT_H
#define AMB_TEST_RT_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "amb_test.h"
#include "ambitious/logger.h"

#ifndef DEADLINE_MS /* a test file may give itself more time */
#define DEADLINE_MS 5000
#endif

#ifndef AMB_TEST_MAX_PROCESSES
#define AMB_TEST_MAX_PROCESSES ((size_t)1 << 16)
#endif

/* ThreadSanitizer runs the runtime 5-15x slower: the bulk tests do less
 * work under it (the interleavings they look for stay the same). */
#ifdef AMB_TSAN
#define SLOW 4
#else
#define SLOW 1
#endif

/* How long the waits below wait: DEADLINE_MS, times SLOW under
 * ThreadSanitizer (a wait is an upper bound that only a broken runtime
 * should reach, and TSan stretches every bulk phase). */
#define AMB_TEST_WAIT_MS ((int64_t)DEADLINE_MS * SLOW)

/* A runtime that has not ended this long after it started fails its test:
 * long enough for the bulk tests on a loaded machine (their work is
 * divided by SLOW, not their time), short enough that the message comes
 * before CTest's timeout (tests/CMakeLists.txt: 120 s for unit tests, which
 * run twice at most) in plain and ASan builds. */
#define AMB_TEST_RUN_DEADLINE_MS (20 * AMB_TEST_WAIT_MS)

/* ===========================================================================
 * Failures inside processes
 * ======================================================================== */

/* The first failure seen inside a process. Written once (the exchange
 * decides who writes), read by the test thread after amb_rt_run returned,
 * which joined every scheduler thread. */
static atomic_int g_failed;
static char g_fail_text[1024];

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

/* Fails unless t prints (amb_print) as exactly the text want. */
#define CHECK_TEXT(self, t, want) \
    check_text_at((self), (t), #t, (want), __FILE__, __LINE__)

__attribute__((unused)) static void check_text_at(amb_proc *self, amb_term t,
                                                  const char *expr, const char *want,
                                                  const char *file, int line)
{
    char buf[AMB_TEST_TEXT_MAX];
    if (amb_test_text(t, buf, sizeof buf) != 0)
        proc_fail(self, file, line, "%s cannot be printed (expected %s)", expr, want);
    if (strcmp(buf, want) != 0)
        proc_fail(self, file, line, "%s is %s, expected %s", expr, buf, want);
}

/* Fails unless t equals the term written as Erlang text in want (as
 * amb_equal: spacing and the way a binary or an atom is written do not
 * matter). */
#define CHECK_TERM(self, t, want) \
    check_term_at((self), (t), #t, (want), __FILE__, __LINE__)

__attribute__((unused)) static void check_term_at(amb_proc *self, amb_term t,
                                                  const char *expr, const char *want,
                                                  const char *file, int line)
{
    char buf[AMB_TEST_TEXT_MAX];
    if (t == AMB_NONE || amb_test_text(t, buf, sizeof buf) != 0)
        proc_fail(self, file, line, "%s is %s, expected %s", expr,
                  t == AMB_NONE ? "AMB_NONE" : "unprintable", want);
    if (!amb_test_same_term_text(buf, want))
        proc_fail(self, file, line, "%s is %s, expected %s", expr, buf, want);
}

__attribute__((unused)) static void reset_failure(void)
{
    atomic_store(&g_failed, 0);
    g_fail_text[0] = '\0';
}

/* Fails the test with the first failure inside a process, if there was one. */
__attribute__((unused)) static void assert_no_process_failure(void)
{
    if (atomic_load(&g_failed))
        fail_msg("inside a process: %s", g_fail_text);
}

/* ===========================================================================
 * Waiting with a deadline
 *
 * A receive with a timeout needs a timer cell, and in an allocation-failure
 * test that may be the allocation that fails (AMB_ENOMEM, nothing taken):
 * the waits below then wait again without a timeout, still bounded by the
 * runner's watchdog (amb_test_run's deadline).
 * ======================================================================== */

/* Polls cond, yielding in between, for at most AMB_TEST_WAIT_MS. */
#define WAIT_UNTIL(self, cond)                                                    \
    do {                                                                          \
        int64_t until_ = amb_now_ms() + AMB_TEST_WAIT_MS;                         \
        while (!(cond)) {                                                         \
            if (amb_now_ms() > until_)                                            \
                proc_fail((self), __FILE__, __LINE__, "timed out waiting for %s", \
                          #cond);                                                 \
            amb_yield(self);                                                      \
        }                                                                         \
    } while (0)

/* Waits until the atomic counter *c is at least n (yielding in between). */
#define WAIT_COUNT(self, c, n)                                                       \
    do {                                                                             \
        int64_t until_ = amb_now_ms() + AMB_TEST_WAIT_MS;                            \
        while ((long long)atomic_load(c) < (long long)(n)) {                         \
            if (amb_now_ms() > until_)                                               \
                proc_fail((self), __FILE__, __LINE__,                                \
                          "timed out waiting for %s to reach %lld (it is %lld)", #c, \
                          (long long)(n), (long long)atomic_load(c));                \
            amb_yield(self);                                                         \
        }                                                                            \
    } while (0)

/* Takes the first message that matches the amb_match pattern (a format and
 * its arguments, as amb_receive_match), within AMB_TEST_WAIT_MS; *out (may be
 * NULL) gets it. */
#define WAIT_MSG(self, out, ...)                                                   \
    do {                                                                           \
        int rc_ = amb_receive_match((self), AMB_TEST_WAIT_MS, (out), __VA_ARGS__); \
        if (rc_ == AMB_ENOMEM) /* no timer: see above */                           \
            rc_ = amb_receive_match((self), AMB_INFINITY, (out), __VA_ARGS__);     \
        if (rc_ != 0)                                                              \
            proc_fail((self), __FILE__, __LINE__, "no message matching (%s): %s",  \
                      #__VA_ARGS__, amb_err_name(rc_));                            \
    } while (0)

/* The oldest message, or a failure after AMB_TEST_WAIT_MS (or ms). */
#define RECV(self)            RECV_WITHIN(self, AMB_TEST_WAIT_MS)
#define RECV_WITHIN(self, ms) recv_at((self), (ms), __FILE__, __LINE__)
__attribute__((unused)) static amb_term recv_at(amb_proc *self, int64_t ms,
                                                const char *file, int line)
{
    amb_term t = AMB_NONE;
    int rc = amb_receive(self, ms, &t);
    if (rc == AMB_ENOMEM && ms != AMB_INFINITY) /* no timer: see above */
        rc = amb_receive(self, AMB_INFINITY, &t);
    if (rc != 0)
        proc_fail(self, file, line, "amb_receive returned %s", amb_err_name(rc));
    return t;
}

/* Waits for {'DOWN', ref, process, pid, Reason} (pid AMB_NONE: any);
 * returns Reason. */
#define wait_down(self, ref, pid) wait_down_at((self), (ref), (pid), __FILE__, __LINE__)
__attribute__((unused)) static amb_term
wait_down_at(amb_proc *self, amb_term ref, amb_pid pid, const char *file, int line)
{
    amb_term reason = AMB_NONE;
    int rc = AMB_ENOMEM;
    for (int64_t ms = AMB_TEST_WAIT_MS; rc == AMB_ENOMEM && ms != 0;
         ms = ms == AMB_INFINITY ? 0 : AMB_INFINITY) /* no timer: see above */
        rc = pid == AMB_NONE
                 ? amb_receive_match(self, ms, NULL, "{'DOWN',~r,process,_,~w}", ref,
                                     &reason)
                 : amb_receive_match(self, ms, NULL, "{'DOWN',~r,process,~v,~w}", ref,
                                     pid, &reason);
    if (rc != 0)
        proc_fail(self, file, line, "no DOWN for that monitor: %s", amb_err_name(rc));
    return reason;
}

/* Waits for {'EXIT', pid, Reason} (the caller traps exits); returns Reason. */
#define wait_exit(self, pid) wait_exit_at((self), (pid), __FILE__, __LINE__)
__attribute__((unused)) static amb_term wait_exit_at(amb_proc *self, amb_pid pid,
                                                     const char *file, int line)
{
    amb_term reason = AMB_NONE;
    int rc =
        amb_receive_match(self, AMB_TEST_WAIT_MS, NULL, "{'EXIT',~v,~w}", pid, &reason);
    if (rc == AMB_ENOMEM) /* no timer: see above */
        rc = amb_receive_match(self, AMB_INFINITY, NULL, "{'EXIT',~v,~w}", pid, &reason);
    if (rc != 0)
        proc_fail(self, file, line, "no EXIT from that process: %s", amb_err_name(rc));
    return reason;
}

/* ===========================================================================
 * Small helpers
 * ======================================================================== */

/* The value of a small-integer message. */
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

/* The configuration of the tests' runtimes: nsched schedulers, a process
 * table of AMB_TEST_MAX_PROCESSES. */
__attribute__((unused)) static amb_config config_of(unsigned nsched)
{
    amb_config cfg = {0};
    cfg.schedulers = nsched;
    cfg.max_processes = AMB_TEST_MAX_PROCESSES;
    return cfg;
}

/* ===========================================================================
 * The logger handler of every run
 * ======================================================================== */

typedef enum amb_test_log_kind {
    AMB_TEST_LOG_ALL,           /* every event */
    AMB_TEST_LOG_CRASH_REPORTS, /* crash reports */
    AMB_TEST_LOG_OTHERS,        /* every event but crash reports */
} amb_test_log_kind;

static struct {
    /* relaxed would do for the counters (each is read after the event that
     * counted it was observed some other way); seq_cst keeps them simple. */
    atomic_int count[3];                 /* by amb_test_log_kind */
    atomic_int level[AMB_LOG_DEBUG + 1]; /* events other than crash reports */
    pthread_mutex_t lock;                /* the texts below */
    char last_report[4096];
    amb_pid last_report_pid;
    char last_event[512];
    amb_log_level last_event_level;
} amb_test_log_ = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void amb_test_log_handler(void *ctx, const amb_log_event *ev)
{
    (void)ctx;
    pthread_mutex_lock(&amb_test_log_.lock);
    if (ev->crash_report) {
        snprintf(amb_test_log_.last_report, sizeof amb_test_log_.last_report, "%s",
                 ev->text);
        amb_test_log_.last_report_pid = ev->pid;
    } else {
        snprintf(amb_test_log_.last_event, sizeof amb_test_log_.last_event, "%s",
                 ev->text);
        amb_test_log_.last_event_level = ev->level;
    }
    pthread_mutex_unlock(&amb_test_log_.lock);
    /* Counted after the text is written: a test that sees the count sees
     * the text. */
    if (ev->crash_report) {
        atomic_fetch_add(&amb_test_log_.count[AMB_TEST_LOG_CRASH_REPORTS], 1);
    } else {
        if ((int)ev->level >= 0 && ev->level <= AMB_LOG_DEBUG)
            atomic_fetch_add(&amb_test_log_.level[ev->level], 1);
        atomic_fetch_add(&amb_test_log_.count[AMB_TEST_LOG_OTHERS], 1);
    }
    atomic_fetch_add(&amb_test_log_.count[AMB_TEST_LOG_ALL], 1);
}

static void amb_test_log_reset_(void)
{
    pthread_mutex_lock(&amb_test_log_.lock);
    amb_test_log_.last_report[0] = amb_test_log_.last_event[0] = '\0';
    amb_test_log_.last_report_pid = AMB_NONE;
    pthread_mutex_unlock(&amb_test_log_.lock);
    for (int i = 0; i < 3; i++)
        atomic_store(&amb_test_log_.count[i], 0);
    for (int i = 0; i <= AMB_LOG_DEBUG; i++)
        atomic_store(&amb_test_log_.level[i], 0);
}

/* Events of that kind logged since the run began. */
__attribute__((unused)) static int amb_test_log_count(amb_test_log_kind kind)
{
    return atomic_load(&amb_test_log_.count[kind]);
}

/* Events other than crash reports logged at that level since the run began. */
__attribute__((unused)) static int amb_test_log_level_count(amb_log_level level)
{
    return atomic_load(&amb_test_log_.level[level]);
}

/* The text of the last crash report (empty: none) into buf; its pid into
 * *pid (may be NULL). */
__attribute__((unused)) static const char *amb_test_log_last_report(char *buf, size_t cap,
                                                                    amb_pid *pid)
{
    pthread_mutex_lock(&amb_test_log_.lock);
    if (snprintf(buf, cap, "%s", amb_test_log_.last_report) < 0) /* truncates */
        buf[0] = '\0';
    if (pid != NULL)
        *pid = amb_test_log_.last_report_pid;
    pthread_mutex_unlock(&amb_test_log_.lock);
    return buf;
}

/* The text of the last event that was no crash report (empty: none) into
 * buf; its level into *level (may be NULL). */
__attribute__((unused)) static const char *amb_test_log_last_event(char *buf, size_t cap,
                                                                   amb_log_level *level)
{
    pthread_mutex_lock(&amb_test_log_.lock);
    if (snprintf(buf, cap, "%s", amb_test_log_.last_event) < 0) /* truncates */
        buf[0] = '\0';
    if (level != NULL)
        *level = amb_test_log_.last_event_level;
    pthread_mutex_unlock(&amb_test_log_.lock);
    return buf;
}

/* ===========================================================================
 * The runner
 * ======================================================================== */

typedef struct amb_test_cfg {
    amb_config rt;       /* zero schedulers: 1; zero max_processes:
                            AMB_TEST_MAX_PROCESSES; the rest as amb_config */
    int64_t deadline_ms; /* 0: AMB_TEST_RUN_DEADLINE_MS */
    bool may_not_finish; /* fn need not reach its end: the runtime is
                            stopped under it, it ends itself on purpose, or
                            the test looks at the first process's own spawn
                            function (fn is then spawned as it is) */
    bool keeps_memory;   /* no leak check: memory made during the run
                            outlives it on purpose (the test frees it) */
    int run_rc;          /* what amb_rt_run must return: 0, or the code
                            of a halt the scenario makes (amb_rt_halt;
                            AMB_EAPPEXIT: a permanent application ended) */
} amb_test_cfg;

/* One run: the first process's wrapper and the watchdog's state. */
typedef struct amb_test_run_ {
    amb_fn *fn;
    void *arg;
    atomic_int finished; /* the body returned (seq_cst; read after the join) */
    amb_rt *rt;
    int64_t deadline_ms;
    pthread_mutex_t lock; /* over, hung */
    pthread_cond_t cond;
    bool over; /* amb_rt_run returned */
    bool hung; /* the watchdog stopped the runtime */
} amb_test_run_;

static void amb_test_first_(amb_proc *self, void *arg)
{
    amb_test_run_ *r = arg;
    r->fn(self, r->arg);
    atomic_store(&r->finished, 1);
}

static void *amb_test_watchdog_(void *arg)
{
    amb_test_run_ *r = arg;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += r->deadline_ms / 1000;
    until.tv_nsec += (r->deadline_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (!r->over) {
        if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT) {
            r->hung = true;
            amb_rt_stop(r->rt);
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Runs fn(arg) as in amb_test_run; returns true, or false with why the run
 * failed in why (then the test has not failed yet: the caller decides). */
__attribute__((unused)) static bool amb_test_run_ex(const amb_test_cfg *cfg, amb_fn *fn,
                                                    void *arg, char *why, size_t cap)
{
    amb_config rc_cfg = cfg->rt;
    if (rc_cfg.schedulers == 0)
        rc_cfg.schedulers = 1;
    if (rc_cfg.max_processes == 0)
        rc_cfg.max_processes = AMB_TEST_MAX_PROCESSES;
    amb_test_run_ r = {.fn = fn, .arg = arg, .finished = 0};
    r.deadline_ms = cfg->deadline_ms > 0 ? cfg->deadline_ms : AMB_TEST_RUN_DEADLINE_MS;
    pthread_mutex_init(&r.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r.cond, &ca);
    pthread_condattr_destroy(&ca);
    reset_failure();
    amb_test_log_reset_();
    why[0] = '\0';
    amb_test_alloc_count before = amb_test_alloc_now();
    int rc = amb_rt_new(&rc_cfg, &r.rt);
    if (rc != 0) {
        snprintf(why, cap, "amb_rt_new returned %s", amb_err_name(rc));
        return false;
    }
    amb_logger_set_handler(r.rt, amb_test_log_handler, NULL);
    rc = cfg->may_not_finish ? amb_rt_spawn(r.rt, fn, arg, NULL)
                             : amb_rt_spawn(r.rt, amb_test_first_, &r, NULL);
    pthread_t wd;
    bool watched = rc == 0 && pthread_create(&wd, NULL, amb_test_watchdog_, &r) == 0;
    int run_rc = 0;
    if (rc == 0)
        run_rc = amb_rt_run(r.rt);
    if (watched) {
        pthread_mutex_lock(&r.lock);
        r.over = true;
        pthread_cond_signal(&r.cond);
        pthread_mutex_unlock(&r.lock);
        pthread_join(wd, NULL);
    }
    amb_rt_free(r.rt);
    pthread_cond_destroy(&r.cond);
    pthread_mutex_destroy(&r.lock);
    amb_test_alloc_count after = amb_test_alloc_now();
    unsigned n = rc_cfg.schedulers;
    char leak[128], report[256];
    amb_test_log_last_report(report, sizeof report, NULL);
    if (rc != 0)
        snprintf(why, cap, "%u scheduler(s): amb_rt_spawn returned %s", n,
                 amb_err_name(rc));
    else if (run_rc != cfg->run_rc)
        snprintf(why, cap, "%u scheduler(s): amb_rt_run returned %s, not %s", n,
                 amb_err_name(run_rc), amb_err_name(cfg->run_rc));
    else if (atomic_load(&g_failed))
        snprintf(why, cap, "%u scheduler(s): inside a process: %s", n, g_fail_text);
    else if (r.hung)
        snprintf(why, cap,
                 "%u scheduler(s): the runtime did not end within %lld ms (a process was "
                 "left running)",
                 n, (long long)r.deadline_ms);
    else if (!watched)
        snprintf(why, cap, "%u scheduler(s): no watchdog thread", n);
    else if (!cfg->may_not_finish && !atomic_load(&r.finished))
        snprintf(why, cap,
                 "%u scheduler(s): the test process did not reach its end (killed by an "
                 "exit signal?); last crash report: %s",
                 n, report);
    else if (!cfg->keeps_memory &&
             amb_test_alloc_leak(&before, &after, leak, sizeof leak)[0] != '\0')
        snprintf(why, cap, "%u scheduler(s): once the runtime was freed: %s", n, leak);
    return why[0] == '\0';
}

/* Runs fn(arg) as the first process of a fresh runtime configured by cfg
 * until every process has ended, then frees the runtime; fails the test as
 * the header says. */
__attribute__((unused)) static void amb_test_run(const amb_test_cfg *cfg, amb_fn *fn,
                                                 void *arg)
{
    char why[1536];
    if (!amb_test_run_ex(cfg, fn, arg, why, sizeof why))
        fail_msg("%s", why);
}

/* amb_test_run with nsched schedulers and the defaults. */
__attribute__((unused)) static void run_in(unsigned nsched, amb_fn *fn, void *arg)
{
    amb_test_cfg cfg = {.rt = config_of(nsched)};
    amb_test_run(&cfg, fn, arg);
}

/* Once with one scheduler (every interleaving is a switch), once with two. */
__attribute__((unused)) static void run_both(amb_fn *fn, void *arg)
{
    run_in(1, fn, arg);
    run_in(2, fn, arg);
}

/* ===========================================================================
 * Allocation failure in a runtime
 * ======================================================================== */

/* The runtime works: a fresh process answers a message and ends normally. */
static void amb_test_echo_(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid from = AMB_NONE;
    WAIT_MSG(self, NULL, "{ping,~p}", &from);
    CHECK_OK(self, amb_send(self, from, amb_atom("pong")));
}

__attribute__((unused)) static void amb_test_check_usable(amb_proc *self)
{
    amb_pid pid = AMB_NONE;
    amb_term ref = AMB_NONE;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    CHECK_OK(self, amb_spawn_monitor(self, amb_test_echo_, NULL, &pid, &ref));
    CHECK_OK(self, amb_send(self, pid, amb_pack(h, "{ping,~p}", amb_self(self))));
    WAIT_MSG(self, NULL, "pong");
    CHECK(self, wait_down(self, ref, pid) == AMB_ATOM_NORMAL);
    amb_heap_rewind(h, m);
}

/* An operation tested under allocation failure. op is called with failures
 * armed; setup before and cleanup after it with none (each may be NULL).
 * op does the calls tested and returns the first error (0 when all
 * succeeded), mapping a documented form of out-of-memory to AMB_ENOMEM
 * (amb_test_is_enomem_reason); cleanup undoes what op left (stops what it
 * started, waits for it to end, takes the EXITs it expects), given op's
 * result: the caller's mailbox must then be empty. */
typedef struct amb_test_oom_rt {
    int (*op)(amb_proc *self, void *ctx);
    void (*setup)(amb_proc *self, void *ctx);
    void (*cleanup)(amb_proc *self, void *ctx, int rc);
    void *ctx;
    amb_test_oom_mode mode; /* default AMB_TEST_OOM_ONCE */
    unsigned schedulers;    /* 0: 1 (the allocations then come in one order) */
} amb_test_oom_rt;

/* True when reason is {error, 'AMB_ENOMEM'}: the reason a behaviour gives
 * for an out-of-memory inside a process it started (amb_gen_fail). */
__attribute__((unused)) static bool amb_test_is_enomem_reason(amb_term reason)
{
    return amb_match(reason, "{error,'AMB_ENOMEM'}") == 0;
}

typedef struct amb_test_oom_run_ {
    const amb_test_oom_rt *c;
    long n;               /* the allocation that fails, counted from op's call */
    bool injected;        /* it did fail */
    uint64_t allocations; /* op's allocations when none failed */
} amb_test_oom_run_;

/* The first process of one run: setup, op with allocation n failing,
 * cleanup; then, when something failed, the proof that the runtime still
 * works. */
static void amb_test_oom_body_(amb_proc *self, void *arg)
{
    amb_test_oom_run_ *r = arg;
    const amb_test_oom_rt *c = r->c;
    long n = r->n;
    if (c->setup != NULL)
        c->setup(self, c->ctx);
    amb_test_alloc_count before = amb_test_alloc_now();
    amb_test_alloc_fail((uint64_t)n, amb_test_oom_count_(c->mode));
    int rc = c->op(self, c->ctx);
    amb_test_alloc_disarm();
    amb_test_alloc_count after = amb_test_alloc_now();
    r->injected = after.failed > before.failed;
    r->allocations = after.calls - before.calls;
    if (rc != 0 && rc != AMB_ENOMEM)
        proc_fail(self, __FILE__, __LINE__, "allocation %ld failing: op returned %s", n,
                  amb_err_name(rc));
    if (c->cleanup != NULL)
        c->cleanup(self, c->ctx, rc);
    if (amb_message_queue_len(self) != 0)
        proc_fail(self, __FILE__, __LINE__,
                  "allocation %ld failing: op and cleanup left %zu message(s) in the "
                  "caller's mailbox",
                  n, amb_message_queue_len(self));
    if (!r->injected) {
        if (rc != 0)
            proc_fail(self, __FILE__, __LINE__,
                      "no allocation failed (n = %ld), yet op returned %s", n,
                      amb_err_name(rc));
        return;
    }
    /* Still usable: the same operation works, and so does a process. */
    if (c->setup != NULL)
        c->setup(self, c->ctx);
    rc = c->op(self, c->ctx);
    if (rc != 0)
        proc_fail(self, __FILE__, __LINE__,
                  "after allocation %ld failed, op with no failure returned %s", n,
                  amb_err_name(rc));
    if (c->cleanup != NULL)
        c->cleanup(self, c->ctx, rc);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    amb_test_check_usable(self);
}

/* One run, in a fresh runtime, with allocation n failing; fails the test
 * (naming n) when the run fails. */
static void amb_test_oom_run_one_(const amb_test_oom_rt *c, long n, amb_test_oom_run_ *r)
{
    amb_test_cfg cfg = {.rt = config_of(c->schedulers > 0 ? c->schedulers : 1),
                        .deadline_ms = 4 * AMB_TEST_WAIT_MS};
    char why[1536];
    *r = (amb_test_oom_run_){.c = c, .n = n};
    if (!amb_test_run_ex(&cfg, amb_test_oom_body_, r, why, sizeof why))
        fail_msg("allocation %ld failing: %s", n, why);
}

/*
 * Runs c->op with allocation n failing for n = 0, 1, 2, ... (c->mode) until
 * op runs with no failure, as the header says; fails the test otherwise.
 * Each n has a runtime of its own, so each sees the same allocations (a
 * warm runtime allocates less: its pools are full). A process may create
 * 1023 runtimes in its life, so an op may have about a thousand allocation
 * points; split a bigger one.
 */
__attribute__((unused)) static amb_test_oom_stats
amb_test_oom_loop_rt(const amb_test_oom_rt *c)
{
    amb_test_oom_stats st = {0, 0, 0};
    amb_test_oom_run_ r;
    /* A first run with no failure (n beyond any op): op works, and what is
     * made once per OS process (atoms) exists before failures begin. */
    amb_test_oom_run_one_(c, AMB_TEST_OOM_MAX_N, &r);
    for (long n = 0; n < AMB_TEST_OOM_MAX_N; n++) {
        amb_test_oom_run_one_(c, n, &r);
        st.runs++;
        if (!r.injected) {
            st.allocations = r.allocations;
            return st;
        }
        st.failed_runs++;
    }
    fail_msg("op still made an allocation fail at n = %ld", AMB_TEST_OOM_MAX_N);
    return st;
}

/* The one-line form: op(self, ctx) with no setup or cleanup. */
#define AMB_TEST_OOM_RT(op_, ctx_) \
    amb_test_oom_loop_rt(&(amb_test_oom_rt){.op = (op_), .ctx = (ctx_)})

#endif /* AMB_TEST_RT_H */

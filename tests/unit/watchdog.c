/*
 * tests/unit/watchdog.c - the watchdog: a process that runs too long
 * without yielding is reported once on stderr, the queue of the scheduler
 * it holds is taken over by the others (also when they were asleep), and
 * an idle runtime costs (almost) no CPU.
 *
 * stderr is redirected to a temporary file while the runtime runs, and the
 * test reads the report lines from it (and copies them to the real stderr
 * afterwards, so that a failure shows what was printed). Processes record
 * observations; cmocka's asserts run on the test's thread after amb_rt_run.
 */
#include <limits.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

#include "amb_test.h"
#include "process/rt.h"

#define DEADLINE_MS 20000

/* ------------------------------------------------------------------------
 * Capturing stderr
 * ---------------------------------------------------------------------- */

static struct {
    FILE *file;
    int saved;
    char text[16384];
} cap;

static void capture_begin(void)
{
    fflush(stderr);
    cap.file = tmpfile();
    assert_non_null(cap.file);
    cap.saved = dup(2);
    assert_true(cap.saved >= 0);
    assert_true(dup2(fileno(cap.file), 2) >= 0);
}

static const char *capture_end(void)
{
    fflush(stderr);
    assert_true(dup2(cap.saved, 2) >= 0);
    close(cap.saved);
    rewind(cap.file);
    size_t n = fread(cap.text, 1, sizeof cap.text - 1, cap.file);
    cap.text[n] = '\0';
    fclose(cap.file);
    if (n > 0)
        fprintf(stderr, "captured stderr:\n%s", cap.text);
    return cap.text;
}

/* Counts the report lines about pid; *ms and *sched get the last one's. */
static int count_reports(const char *text, amb_pid pid, unsigned *sched, unsigned *ms)
{
    char who[128], needle[160];
    size_t len;
    assert_ok(amb_print_ex(pid, AMB_PRINT_PRETTY, who, sizeof who, &len));
    snprintf(needle, sizeof needle, " has run process %s for ", who);
    int n = 0;
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t llen = end ? (size_t)(end - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(llen < 511 ? llen : 511), line);
        char *hit = strstr(buf, needle);
        if (hit != NULL && strstr(buf, "ambitious: watchdog: scheduler ") == buf) {
            n++;
            if (sscanf(buf, "ambitious: watchdog: scheduler %u", sched) != 1)
                *sched = UINT_MAX;
            if (sscanf(hit + strlen(needle), "%u ms without yielding", ms) != 1)
                *ms = 0;
        }
        line += llen + (end != NULL);
    }
    return n;
}

static amb_rt *new_rt(unsigned schedulers, int64_t watchdog_ms)
{
    amb_config cfg = {.schedulers = schedulers, .watchdog_ms = watchdog_ms};
    amb_rt *rt = NULL;
    assert_ok(amb_rt_new(&cfg, &rt));
    return rt;
}

/* ------------------------------------------------------------------------
 * A spinner holds its scheduler; the 50 processes queued behind it run on
 * the other one meanwhile, and the spinner is reported once.
 * ---------------------------------------------------------------------- */

#define QUEUED 50

static struct {
    atomic_bool flags[QUEUED];
    atomic_uint ran_on[QUEUED];
    amb_pid spinner;
    unsigned spinner_sched;
    int set_before_end; /* flags the spinner saw set when it finished */
    uint64_t spun_ms;
    int spawned;
} spin;

static void set_flag(amb_proc *self, void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    atomic_store(&spin.ran_on[i], self->task.sched->id);
    atomic_store(&spin.flags[i], true);
}

static int flags_set(void)
{
    int n = 0;
    for (int i = 0; i < QUEUED; i++)
        n += atomic_load(&spin.flags[i]);
    return n;
}

static void spinner(amb_proc *self, void *arg)
{
    uint64_t min_ms = (uint64_t)(uintptr_t)arg;
    spin.spinner = amb_self(self);
    spin.spinner_sched = self->task.sched->id;
    for (int i = 0; i < QUEUED; i++)
        if (amb_spawn(self, set_flag, (void *)(uintptr_t)i, NULL) == 0)
            spin.spawned++;
    /* A C loop that never yields: at least min_ms, and until every queued
     * process has run (elsewhere), or the deadline. */
    uint64_t start = amb_test_now_ms();
    for (;;) {
        uint64_t now = amb_test_now_ms();
        if ((now - start >= min_ms && flags_set() == QUEUED) || now - start > DEADLINE_MS)
            break;
    }
    spin.set_before_end = flags_set();
    spin.spun_ms = amb_test_now_ms() - start;
}

AMB_TEST(watchdog_stuck_scheduler_queue_taken_over)
{
    memset(&spin, 0, sizeof spin);
    amb_rt *rt = new_rt(2, 100);
    assert_ok(amb_rt_spawn(rt, spinner, (void *)(uintptr_t)300, NULL));
    capture_begin();
    int rc = amb_rt_run(rt);
    const char *text = capture_end();
    amb_rt_free(rt);
    assert_ok(rc);

    assert_int_equal(spin.spawned, QUEUED);
    assert_int_equal(spin.set_before_end, QUEUED);
    assert_true(spin.spun_ms >= 300 && spin.spun_ms < DEADLINE_MS);
    for (int i = 0; i < QUEUED; i++)
        assert_int_not_equal(atomic_load(&spin.ran_on[i]), spin.spinner_sched);
    unsigned sched = UINT_MAX, ms = 0;
    assert_int_equal(count_reports(text, spin.spinner, &sched, &ms), 1);
    assert_int_equal(sched, spin.spinner_sched);
    assert_in_range(ms, 100, spin.spun_ms);
}

/* ------------------------------------------------------------------------
 * The other scheduler is asleep when work lands in the stuck scheduler's
 * run-next slot (which wakes nobody): only the watchdog can wake it. With
 * reports off the rescue still works, and nothing is printed.
 * ---------------------------------------------------------------------- */

static struct {
    atomic_bool flag;
    atomic_uint ran_on;
    amb_pid spinner;
    unsigned spinner_sched;
    int saw_sleeper, flag_before_end;
} lone;

static void lone_flag(amb_proc *self, void *arg)
{
    (void)arg;
    atomic_store(&lone.ran_on, self->task.sched->id);
    atomic_store(&lone.flag, true);
}

static void lone_spinner(amb_proc *self, void *arg)
{
    (void)arg;
    amb_rt *rt = amb_proc_rt(self);
    lone.spinner = amb_self(self);
    lone.spinner_sched = self->task.sched->id;
    uint64_t deadline = amb_test_deadline_ms(DEADLINE_MS);
    /* Without yielding: wait until the other scheduler sleeps. */
    while (atomic_load(&rt->exec.nsleeping) != 1 && amb_test_now_ms() < deadline)
        ;
    lone.saw_sleeper = atomic_load(&rt->exec.nsleeping) == 1;
    if (amb_spawn(self, lone_flag, NULL, NULL) != 0)
        return;
    while (!atomic_load(&lone.flag) && amb_test_now_ms() < deadline)
        ;
    lone.flag_before_end = atomic_load(&lone.flag);
}

AMB_TEST(watchdog_wakes_sleeper_for_stuck_run_next)
{
    memset(&lone, 0, sizeof lone);
    amb_rt *rt = new_rt(2, AMB_INFINITY);
    assert_ok(amb_rt_spawn(rt, lone_spinner, NULL, NULL));
    capture_begin();
    int rc = amb_rt_run(rt);
    const char *text = capture_end();
    amb_rt_free(rt);
    assert_ok(rc);
    assert_true(lone.saw_sleeper);
    assert_true(lone.flag_before_end);
    assert_int_not_equal(atomic_load(&lone.ran_on), lone.spinner_sched);
    unsigned sched, ms;
    assert_int_equal(count_reports(text, lone.spinner, &sched, &ms), 0);
}

/* ------------------------------------------------------------------------
 * A process that runs long but yields often is not reported.
 * ---------------------------------------------------------------------- */

static amb_pid yielder_pid;

static void yielder(amb_proc *self, void *arg)
{
    (void)arg;
    yielder_pid = amb_self(self);
    uint64_t start = amb_test_now_ms();
    while (amb_test_now_ms() - start < 1000) {
        uint64_t slice = amb_test_now_ms();
        while (amb_test_now_ms() == slice)
            ;
        amb_yield(self);
    }
}

AMB_TEST(watchdog_quiet_for_yielding_process)
{
    amb_rt *rt = new_rt(1, 300);
    assert_ok(amb_rt_spawn(rt, yielder, NULL, NULL));
    capture_begin();
    int rc = amb_rt_run(rt);
    const char *text = capture_end();
    amb_rt_free(rt);
    assert_ok(rc);
    unsigned sched, ms;
    assert_int_equal(count_reports(text, yielder_pid, &sched, &ms), 0);
}

/* ------------------------------------------------------------------------
 * An idle runtime (its watchdog, idle schedulers, an idle pool thread)
 * uses almost no CPU.
 * ---------------------------------------------------------------------- */

static struct {
    int64_t cpu_us;
    int rc_call, rc_wait;
} idle;

static intptr_t nothing(void *arg)
{
    return (intptr_t)arg;
}

static int64_t cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
           ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static void idler(amb_proc *self, void *arg)
{
    (void)arg;
    idle.rc_call = amb_blocking_call(self, nothing, NULL, NULL);
    int64_t before = cpu_us();
    amb_term m;
    idle.rc_wait = amb_receive(self, 1000, &m);
    idle.cpu_us = cpu_us() - before;
}

AMB_TEST(watchdog_idle_runtime_uses_no_cpu)
{
    memset(&idle, 0, sizeof idle);
    /* The shortest period the watchdog uses while idle is watchdog_ms / 2:
     * 50 ms here, 20 looks a second. */
    amb_rt *rt = new_rt(2, 100);
    assert_ok(amb_rt_spawn(rt, idler, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    amb_rt_free(rt);
    assert_ok(idle.rc_call);
    assert_int_equal(idle.rc_wait, AMB_ETIMEDOUT);
    print_message("idle runtime: %lld us of CPU in 1 s\n", (long long)idle.cpu_us);
    assert_true(idle.cpu_us < 10000);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(watchdog_stuck_scheduler_queue_taken_over),
              AMB_TEST_ENTRY(watchdog_wakes_sleeper_for_stuck_run_next),
              AMB_TEST_ENTRY(watchdog_quiet_for_yielding_process),
              AMB_TEST_ENTRY(watchdog_idle_runtime_uses_no_cpu))

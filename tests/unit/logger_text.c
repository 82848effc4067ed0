/*
 * tests/unit/logger_text.c - the text of crash reports (logger.h,
 * src/process/logger.c): every term in a report is printed for a human in
 * the pretty style (docs/design/print.md), so a failed AMB_ASSERT shows its
 * file and expression as <<"...">> strings, a charlist shows as "...", and
 * the pid is in the one notation humans see, <N.ID.SERIAL>, the same text
 * amb_print_ex(pid, AMB_PRINT_PRETTY) gives (not #Pid<...>). The watchdog's
 * report uses that notation too (tests/unit/watchdog.c).
 */
#include <pthread.h>

#include "amb_test.h"
#include "ambitious/logger.h"
#include "rt_test.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_report[4096];
static amb_pid g_report_pid;
static int g_assert_line;

static void capture(void *ctx, const amb_log_event *ev)
{
    (void)ctx;
    if (!ev->crash_report)
        return;
    pthread_mutex_lock(&g_lock);
    snprintf(g_report, sizeof g_report, "%s", ev->text);
    g_report_pid = ev->pid;
    pthread_mutex_unlock(&g_lock);
}

static void asserter(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term m;
    CHECK_OK(self, amb_receive(self, DEADLINE_MS, &m)); /* the last message */
    g_assert_line = __LINE__ + 1;
    AMB_ASSERT(self, 1 + 1 == 3);
}

typedef struct report_case {
    amb_pid pid;
} report_case;

static void root(amb_proc *self, void *arg)
{
    report_case *rc = arg;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, asserter, NULL, &rc->pid, &ref));
    CHECK_OK(self,
             amb_send(self, rc->pid,
                      amb_pack(amb_proc_heap(self), "{last, ~s, ~S}", "words", "bin")));
    CHECK_OK(self,
             amb_receive_match(self, DEADLINE_MS, NULL, "{'DOWN', ~r, _, _, _}", ref));
}

AMB_TEST(a_crash_report_prints_terms_for_humans)
{
    amb_config cfg = config_of(1);
    amb_rt *rt;
    report_case rc = {0};
    g_report[0] = '\0';
    assert_ok(amb_rt_new(&cfg, &rt));
    assert_ok(amb_logger_set_handler(rt, capture, NULL));
    assert_ok(amb_rt_spawn(rt, root, &rc, NULL));
    assert_ok(amb_rt_run(rt));
    amb_rt_free(rt);
    assert_no_process_failure();

    char pid[64], want[512];
    assert_ok(amb_print_ex(rc.pid, AMB_PRINT_PRETTY, pid, sizeof pid, NULL));
    assert_true(g_report_pid == rc.pid);
    assert_true(pid[0] == '<'); /* <N.ID.SERIAL>, not #Pid<...> */
    snprintf(want, sizeof want, "    pid: %s\n", pid);
    if (strstr(g_report, want) == NULL)
        fail_msg("no \"%s\" in the report:\n%s", want, g_report);
    snprintf(want, sizeof want,
             "{assert,[{file,<<\"%s\">>},{line,%d},{expression,<<\"1 + 1 == 3\">>}]}",
             __FILE__, g_assert_line);
    if (strstr(g_report, want) == NULL)
        fail_msg("no \"%s\" in the report:\n%s", want, g_report);
    if (strstr(g_report, "last message: {last,\"words\",<<\"bin\">>}") == NULL)
        fail_msg("the last message is not printed for humans:\n%s", g_report);
    if (strstr(g_report, "#Pid<") != NULL || strstr(g_report, "<<47,") != NULL)
        fail_msg("a machine form in the report:\n%s", g_report);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(a_crash_report_prints_terms_for_humans))

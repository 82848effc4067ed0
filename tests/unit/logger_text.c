/*
 * tests/unit/logger_text.c - the text of crash reports (logger.h,
 * src/process/logger.c): every term in a report is printed for a human in
 * the pretty style (docs/design/print.md), so a failed AMB_ASSERT shows its
 * file and expression as <<"...">> strings, a charlist shows as "...", and
 * the pid is in the one notation humans see, <N.ID.SERIAL>, the same text
 * amb_print_ex(pid, AMB_PRINT_PRETTY) gives (not #Pid<...>). The watchdog's
 * report uses that notation too (tests/unit/watchdog.c).
 */
#include "amb_test.h"
#include "amb_test_rt.h"
#include "ambitious/logger.h"

static int g_assert_line;

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
    report_case rc = {0};
    run_in(1, root, &rc);
    char report[sizeof amb_test_log_.last_report];
    amb_pid report_pid;
    amb_test_log_last_report(report, sizeof report, &report_pid);

    char pid[64], want[512];
    assert_ok(amb_print_ex(rc.pid, AMB_PRINT_PRETTY, pid, sizeof pid, NULL));
    assert_true(report_pid == rc.pid);
    assert_true(pid[0] == '<'); /* <N.ID.SERIAL>, not #Pid<...> */
    snprintf(want, sizeof want, "    pid: %s\n", pid);
    if (strstr(report, want) == NULL)
        fail_msg("no \"%s\" in the report:\n%s", want, report);
    snprintf(want, sizeof want,
             "{assert,[{file,<<\"%s\">>},{line,%d},{expression,<<\"1 + 1 == 3\">>}]}",
             __FILE__, g_assert_line);
    if (strstr(report, want) == NULL)
        fail_msg("no \"%s\" in the report:\n%s", want, report);
    if (strstr(report, "last message: {last,\"words\",<<\"bin\">>}") == NULL)
        fail_msg("the last message is not printed for humans:\n%s", report);
    if (strstr(report, "#Pid<") != NULL || strstr(report, "<<47,") != NULL)
        fail_msg("a machine form in the report:\n%s", report);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(a_crash_report_prints_terms_for_humans))

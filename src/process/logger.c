/*
 * logger.c - the process layer's logger (include/ambitious/logger.h): a level, one
 * handler per runtime (default: stderr) and crash reports. Every term in a
 * report is printed in the pretty style, for humans (print.md).
 *
 * Invariants: rt->log_fn and rt->log_ctx change only while rt->log_busy is
 * held, and every event reads them under it, so a handler and its context
 * are always seen as a pair; the handler itself runs outside the flag. The
 * default handler writes each event with one fputs, so the lines of two
 * events from two schedulers do not interleave.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "process/rt.h"
#include "runtime/qsbr.h"

static void lock(amb_rt *rt)
{
    bool expected = false;
    /* acquire: the fields written under the flag by the last holder are
     * visible to us. */
    while (!atomic_compare_exchange_weak_explicit(
        &rt->log_busy, &expected, true, memory_order_acquire, memory_order_relaxed))
        expected = false;
}

static void unlock(amb_rt *rt)
{
    /* release: publishes what we wrote under the flag. */
    atomic_store_explicit(&rt->log_busy, false, memory_order_release);
}

static amb_log_level level_of(amb_rt *rt)
{
    /* relaxed: a level change takes effect "soon"; nothing else hangs on it. */
    int l = atomic_load_explicit(&rt->log_level, memory_order_relaxed);
    return l == 0 ? AMB_LOG_NOTICE : (amb_log_level)(l - 1);
}

int amb_logger_set_handler(amb_rt *rt, amb_log_handler *fn, void *ctx)
{
    if (rt == NULL)
        return AMB_EBADARG;
    lock(rt);
    rt->log_fn = fn;
    rt->log_ctx = ctx;
    unlock(rt);
    return 0;
}

int amb_logger_set_level(amb_rt *rt, amb_log_level level)
{
    if (rt == NULL || (int)level < AMB_LOG_EMERGENCY || level > AMB_LOG_DEBUG)
        return AMB_EBADARG;
    /* relaxed: see level_of. */
    atomic_store_explicit(&rt->log_level, (int)level + 1, memory_order_relaxed);
    return 0;
}

static void emit(amb_rt *rt, const amb_log_event *ev)
{
    lock(rt);
    amb_log_handler *fn = rt->log_fn;
    void *ctx = rt->log_ctx;
    unlock(rt);
    if (fn != NULL) {
        fn(ctx, ev);
        return;
    }
    fputs(ev->text, stderr);
}

int amb_log(amb_proc *self, amb_log_level level, const char *fmt, ...)
{
    if (self == NULL || fmt == NULL || (int)level < AMB_LOG_EMERGENCY ||
        level > AMB_LOG_DEBUG)
        return AMB_EBADARG;
    if (level > level_of(self->rt))
        return 0;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return AMB_EBADARG;
    }
    char *text = amb__malloc((size_t)n + 2);
    if (text == NULL) {
        va_end(ap2);
        return AMB_ENOMEM;
    }
    vsnprintf(text, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    /* One event is one line at least. */
    if (n == 0 || text[n - 1] != '\n') {
        text[n] = '\n';
        text[n + 1] = '\0';
    }
    amb_log_event ev = {.level = level,
                        .text = text,
                        .pid = self->pid,
                        .name = AMB_NONE,
                        .reason = AMB_NONE,
                        .last_message = AMB_NONE};
    emit(self->rt, &ev);
    amb__free(text);
    return 0;
}

/* Prints t for a human (the pretty style: strings as "...", text binaries
 * as <<"...">>, pids as <N.ID.SERIAL>, the one notation of every text a
 * human reads: docs/design/print.md) into a new string, or NULL when that
 * fails (out of memory). */
static char *text_of(amb_term t)
{
    char *s = NULL;
    if (amb_print_alloc_ex(t, AMB_PRINT_PRETTY, &s, NULL) != 0)
        return NULL;
    return s;
}

/* OTP's crash report, reduced to what a C process has. */
#define CRASH_FMT               \
    "=CRASH REPORT====\n"       \
    "  crasher:\n"              \
    "    pid: %s\n"             \
    "    registered_name: %s\n" \
    "    exit reason: %s\n"     \
    "    last message: %s\n"

void amb__logger_crash(amb_proc *p, amb_term reason, amb_term last)
{
    amb_rt *rt = p->rt;
    if (AMB_LOG_ERROR > level_of(rt))
        return;
    /* relaxed: p is ending in its own context; only p's own registration
     * and unregistration write its name, and neither can run now. */
    amb_term name = atomic_load_explicit(&p->name, memory_order_relaxed);
    char *pid_s = text_of(p->pid);
    char *name_s = name != AMB_NONE ? text_of(name) : NULL;
    char *reason_s = text_of(reason);
    char *last_s = last != AMB_NONE ? text_of(last) : NULL;
    const char *a = pid_s ? pid_s : "?", *b = name_s ? name_s : "[]",
               *c = reason_s ? reason_s : "?", *d = last_s ? last_s : "none";
    int n = snprintf(NULL, 0, CRASH_FMT, a, b, c, d);
    char *text = n >= 0 ? amb__malloc((size_t)n + 1) : NULL;
    if (text != NULL) {
        snprintf(text, (size_t)n + 1, CRASH_FMT, a, b, c, d);
        amb_log_event ev = {.level = AMB_LOG_ERROR,
                            .text = text,
                            .pid = p->pid,
                            .crash_report = true,
                            .name = name,
                            .reason = reason,
                            .last_message = last};
        emit(rt, &ev);
        amb__free(text);
    }
    amb_free(pid_s);
    amb_free(name_s);
    amb_free(reason_s);
    amb_free(last_s);
}

void amb__logger_stuck(amb__exec *x, unsigned sched, uint32_t id, uint64_t ms)
{
    /* The watchdog's own thread: the table is read inside the QSBR
     * bracket of an outside thread. A process that ended meanwhile is
     * reported by its index alone. */
    amb_rt *rt = amb__rt_of(x);
    amb_pid pid = AMB_NONE;
    unsigned q = amb__qsbr_enter(x);
    if (id < rt->ptab.size) {
        /* acquire: pairs with the release store that published the block. */
        amb_proc *p = atomic_load_explicit(&rt->ptab.slots[id], memory_order_acquire);
        if (p != NULL)
            pid = p->pid;
    }
    amb__qsbr_leave(x, q);
    char who[160];
    size_t len = 0;
    if (pid == AMB_NONE ||
        amb_print_ex(pid, AMB_PRINT_PRETTY, who, sizeof who, &len) != 0)
        snprintf(who, sizeof who, "at index %" PRIu32, id);
    char line[256];
    int n = snprintf(line, sizeof line,
                     "ambitious: watchdog: scheduler %u has run process %s for %" PRIu64
                     " ms without yielding\n",
                     sched, who, ms);
    if (n > 0)
        fwrite(line, 1, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, stderr);
}

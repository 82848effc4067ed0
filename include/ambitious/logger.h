/*
 * ambitious/logger.h - a small logger in the style of Erlang's: levels
 * (syslog's, as OTP's logger), one pluggable handler per runtime (default:
 * stderr), and crash reports.
 *
 * A crash report is logged at level error for every process that ends
 * itself (amb_exit_self, AMB_ASSERT, a handler callback's error) with a
 * reason other than normal, shutdown or {shutdown, _}: the report OTP's
 * proc_lib writes. It names the pid, the registered name, the reason and the
 * last message the process received, each printed for a human (the pretty
 * style of amb_print_ex: strings as "...", text binaries as <<"...">>, pids
 * as <N.ID.SERIAL>, the one notation of every text a human reads). A process ended by an
 * exit signal from another process writes no report (the sender, or the linked
 * supervisor, knows why), as in OTP.
 */
#ifndef AMBITIOUS_LOGGER_H
#define AMBITIOUS_LOGGER_H

#include "process.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum amb_log_level {
    AMB_LOG_EMERGENCY = 0,
    AMB_LOG_ALERT,
    AMB_LOG_CRITICAL,
    AMB_LOG_ERROR,
    AMB_LOG_WARNING,
    AMB_LOG_NOTICE, /* the default level: this and more severe are logged */
    AMB_LOG_INFO,
    AMB_LOG_DEBUG,
} amb_log_level;

/* One event. Everything in it is borrowed for the handler's call only. */
typedef struct amb_log_event {
    amb_log_level level;
    const char *text;      /* the whole event as text, NUL-terminated */
    amb_pid pid;           /* the process it is about (AMB_NONE: none) */
    bool crash_report;     /* the fields below are set */
    amb_term name;         /* registered name, or AMB_NONE */
    amb_term reason;       /* the exit reason */
    amb_term last_message; /* the last message received, or AMB_NONE */
} amb_log_event;

/* A handler: ctx as registered, then the event (borrowed for the call). */
typedef void amb_log_handler(void *ctx, const amb_log_event *event);

/* Sets rt's handler (NULL: the default, which writes text to stderr) and the
 * ctx it gets (passed as it is: the caller keeps it valid until another
 * handler is set or rt is freed). The handler may be called from any
 * scheduler thread, concurrently: it must be thread-safe. Any thread; takes
 * effect for events logged afterwards. AMB_EBADARG for a NULL rt. */
AMB_API int amb_logger_set_handler(amb_rt *rt, amb_log_handler *fn, void *ctx);
/* Events less severe than level are dropped (default AMB_LOG_NOTICE). Any
 * thread. AMB_EBADARG for a NULL rt or a level out of range. */
AMB_API int amb_logger_set_level(amb_rt *rt, amb_log_level level);
/* Logs a printf-style message from the calling process (its pid is in the
 * event; the text is formatted into memory of the logger's own). 0 also when
 * the level filters it out; AMB_EBADARG (NULL self or fmt, a level out of
 * range, a format vsnprintf refuses), AMB_ENOMEM. */
AMB_API int amb_log(amb_proc *self, amb_log_level level, const char *fmt, ...)
    AMB_PRINTF_FORMAT(3, 4);

#ifdef __cplusplus
}
#endif
#endif /* AMBITIOUS_LOGGER_H */

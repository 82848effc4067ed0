/*
 * watchdog.h - the runtime's watchdog thread (watchdog.c): reports a
 * process that runs too long without yielding, and wakes sleeping
 * schedulers to take over the run queue of a scheduler stuck in one.
 */
#ifndef AMB_RUNTIME_WATCHDOG_H
#define AMB_RUNTIME_WATCHDOG_H

#include <stdint.h>

#include "ambitious/process.h"

/* Starts the watchdog thread of rt (amb_rt_run, before the schedulers).
 * 0, AMB_ENOMEM or AMB_EAGAIN (no thread could be started). */
int amb__watchdog_start(amb_rt *rt);
/* Stops and joins it (amb_rt_run, after the schedulers). No-op when none. */
void amb__watchdog_stop(amb_rt *rt);

/* The report of one process that ran `ms` milliseconds on scheduler
 * `sched` without yielding: one line on stderr. The one place to change
 * when a logger exists. */
void amb__watchdog_report(unsigned sched, amb_pid pid, uint64_t ms);

#endif /* AMB_RUNTIME_WATCHDOG_H */

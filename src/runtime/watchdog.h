/*
 * watchdog.h - the executor's watchdog thread (watchdog.c): reports a task
 * that runs too long without switching out (ops->report_stuck), and wakes
 * sleeping schedulers to take over the queues and the expired timers of a
 * scheduler stuck in one (it fires and runs nothing itself).
 */
#ifndef AMB_RUNTIME_WATCHDOG_H
#define AMB_RUNTIME_WATCHDOG_H

#include "runtime/task.h"

/* Starts the watchdog thread of x (amb__exec_run, before the schedulers).
 * 0, AMB_ENOMEM or AMB_EAGAIN (no thread could be started). */
int amb__watchdog_start(amb__exec *x);
/* A scheduler woke from its sleep (after its seq_cst fence): wakes the
 * watchdog if it sleeps because every scheduler slept. Cheap otherwise
 * (one load). */
void amb__watchdog_kick(amb__exec *x);
/* Stops and joins it (amb__exec_run, after the schedulers). No-op when none. */
void amb__watchdog_stop(amb__exec *x);

#endif /* AMB_RUNTIME_WATCHDOG_H */

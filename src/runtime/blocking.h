/*
 * blocking.h - the runtime's side of the blocking-call pool (blocking.c;
 * the public call is amb_blocking_call in ambitious/process.h).
 *
 * Life cycle: amb_rt_run prepares the pool (memory only, no thread) before
 * its first run; threads start on demand, one when a call finds none free,
 * up to cfg.blocking_threads; amb_rt_free stops them, waiting for the calls
 * still running, and discards the calls still queued. The pool outlives
 * amb_rt_run so that a process stopped while it waits for a call gets its
 * result when the runtime runs again.
 */
#ifndef AMB_RUNTIME_BLOCKING_H
#define AMB_RUNTIME_BLOCKING_H

#include <stdbool.h>

typedef struct amb_rt amb_rt;

/* Creates the pool's state (no threads) unless it exists. 0 or AMB_ENOMEM.
 * Called by amb_rt_run before any scheduler runs. */
int amb__blocking_prepare(amb_rt *rt);
/* Stops the pool: waits for the calls in progress to return, discards
 * their results and the calls still queued, joins the threads and frees
 * the state. The runtime must not be running. No-op without a pool. */
void amb__blocking_stop(amb_rt *rt);

/* For tests: the number of pool threads started so far. */
unsigned amb__blocking_nthreads(amb_rt *rt);
/* For tests: true once amb__blocking_stop has begun (a blocking function
 * may poll it to finish promptly when the runtime is being freed). */
bool amb__blocking_stopping(amb_rt *rt);

#endif /* AMB_RUNTIME_BLOCKING_H */

/*
 * blocking.h - the blocking-call pool (Erlang's dirty I/O schedulers): runs
 * C functions that may block on threads of their own, so that only the
 * task that asked waits (blocking.c). The process layer's amb_blocking_call
 * (src/process/blocking_call.c) is built on it.
 *
 * A job is embedded by its user (the process layer keeps one in a message
 * cell). The pool runs job->fn(job->arg) on one of its threads, stores the
 * result in job->result and hands the job to ops->blocking_done on that
 * thread (task.h).
 *
 * Life cycle: amb__exec_run prepares the pool (memory only, no thread)
 * before its first run; threads start on demand, one when a job finds none
 * free, up to the configured count; amb__blocking_stop (executor teardown)
 * lets the threads run the queue empty (every posted fn runs), waits for
 * them, and each job finished meanwhile goes to ops->blocking_done with
 * discard set. The pool outlives
 * amb__exec_run so that a task stopped while it waits for a job gets its
 * result when the executor runs again.
 */
#ifndef AMB_RUNTIME_BLOCKING_H
#define AMB_RUNTIME_BLOCKING_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/task.h"

struct amb__blocking_job {
    amb__blocking_job *next;   /* the pool's queue link */
    intptr_t (*fn)(void *arg); /* runs on a pool thread; may block */
    void *arg;
    intptr_t result; /* fn's result, set before ops->blocking_done */
};

/* Creates the pool's state (no threads) unless it exists. 0 or AMB_ENOMEM.
 * Called by amb__exec_run before any scheduler runs. */
int amb__blocking_prepare(amb__exec *x);
/* Queues job (owned by the pool until ops->blocking_done), starting a
 * thread when every started one is busy. 0; AMB_ESTATE when the pool was
 * never prepared (the executor never ran); AMB_EAGAIN when the pool has no
 * thread and cannot start one (job is not queued then). */
int amb__blocking_post(amb__exec *x, amb__blocking_job *job);
/* Stops the pool: the threads finish the jobs in progress and run those
 * still queued, handing each to ops->blocking_done (discard); joins them
 * and frees the state. No scheduler may run. No-op without a pool. */
void amb__blocking_stop(amb__exec *x);

/* For tests: the number of pool threads started so far. */
unsigned amb__blocking_nthreads(amb__exec *x);
/* For tests: true once amb__blocking_stop has begun (a blocking function
 * may poll it to finish promptly when the runtime is being freed). */
bool amb__blocking_stopping(amb__exec *x);

#endif /* AMB_RUNTIME_BLOCKING_H */

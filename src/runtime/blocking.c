/*
 * blocking.c - the blocking-call pool (blocking.h): threads that run jobs
 * which may block, so that only the task that asked waits.
 *
 * A job is posted to the pool's queue (mutex + condition variable),
 * starting a thread when no started one is free. A pool thread takes the
 * oldest job, runs fn(arg), stores the result in the job and hands it to
 * ops->blocking_done (the process layer delivers it to its caller, see
 * src/process/blocking_call.c).
 *
 * Invariants:
 *   - Under `lock`: queued == length of the queue; free == started threads
 *     that are not running a job (they will look at the queue before they
 *     wait, so a queued job never waits while a free thread sleeps).
 *   - A thread counts itself free again before it hands the job over, so a
 *     task that makes calls one after another reuses one thread.
 *   - Threads only ever start (up to the configured count) until
 *     amb__blocking_stop, which runs when no scheduler does.
 *   - Idle threads sleep on the condition variable without a timeout: an
 *     idle pool uses no CPU.
 *   - Every queued job runs: a stopping pool's threads empty the queue
 *     before they end, and a job is only ever queued with a thread started.
 */
#include <pthread.h>

#include "runtime/blocking.h"
#include "runtime/exec.h"

typedef struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work;            /* signalled when a job is queued or on stop */
    amb__blocking_job *head, *tail; /* queued jobs, oldest first */
    unsigned queued;
    unsigned free;     /* started threads not running a job */
    unsigned nthreads; /* started threads */
    unsigned max;      /* the configured count */
    bool stopping;
    pthread_t *threads; /* max of them, nthreads started */
} pool;

int amb__blocking_prepare(amb__exec *x)
{
    if (x->blocking != NULL)
        return 0;
    pool *pl = amb__calloc(1, sizeof *pl);
    if (pl == NULL)
        return AMB_ENOMEM;
    pl->max = x->blocking_threads;
    pl->threads = amb__calloc(pl->max, sizeof *pl->threads);
    if (pl->threads == NULL) {
        amb__free(pl);
        return AMB_ENOMEM;
    }
    pthread_mutex_init(&pl->lock, NULL);
    pthread_cond_init(&pl->work, NULL);
    /* Published to the schedulers by their pthread_create (amb__exec_run
     * prepares the pool before it starts them). */
    x->blocking = pl;
    return 0;
}

static void *worker(void *arg)
{
    amb__exec *x = arg;
    pool *pl = x->blocking;
    pthread_setname_np(pthread_self(), "amb-blocking");
    pthread_mutex_lock(&pl->lock);
    for (;;) {
        while (pl->head == NULL && !pl->stopping)
            pthread_cond_wait(&pl->work, &pl->lock);
        /* Stopping: the jobs still queued run first (fn always finishes:
         * its users free what they gave it there). */
        if (pl->head == NULL)
            break;
        amb__blocking_job *j = pl->head;
        pl->head = j->next;
        if (pl->head == NULL)
            pl->tail = NULL;
        pl->queued--;
        pl->free--;
        pthread_mutex_unlock(&pl->lock);

        j->result = j->fn(j->arg);

        pthread_mutex_lock(&pl->lock);
        pl->free++;
        bool discard = pl->stopping;
        pthread_mutex_unlock(&pl->lock);
        /* Outside the lock: delivery may take the inject lock and wake a
         * scheduler (a system call). */
        x->ops.blocking_done(x, j, discard);
        pthread_mutex_lock(&pl->lock);
    }
    pthread_mutex_unlock(&pl->lock);
    return NULL;
}

int amb__blocking_post(amb__exec *x, amb__blocking_job *j)
{
    pool *pl = x->blocking;
    if (pl == NULL)
        return AMB_ESTATE;
    int rc = 0;
    j->next = NULL;
    pthread_mutex_lock(&pl->lock);
    if (pl->tail != NULL)
        pl->tail->next = j;
    else
        pl->head = j;
    pl->tail = j;
    pl->queued++;
    if (pl->queued > pl->free && pl->nthreads < pl->max) {
        if (pthread_create(&pl->threads[pl->nthreads], NULL, worker, x) == 0) {
            pl->nthreads++;
            pl->free++;
        } else if (pl->nthreads == 0) {
            /* No thread has ever started, so nothing else is queued. */
            pl->head = pl->tail = NULL;
            pl->queued = 0;
            rc = AMB_EAGAIN;
        }
        /* Otherwise a started thread will take the job when it is free. */
    }
    if (rc == 0)
        pthread_cond_signal(&pl->work);
    pthread_mutex_unlock(&pl->lock);
    return rc;
}

void amb__blocking_stop(amb__exec *x)
{
    pool *pl = x->blocking;
    if (pl == NULL)
        return;
    pthread_mutex_lock(&pl->lock);
    pl->stopping = true;
    pthread_cond_broadcast(&pl->work);
    unsigned n = pl->nthreads; /* no scheduler runs: no job starts more */
    pthread_mutex_unlock(&pl->lock);
    /* Waits for the jobs in progress and the ones still queued, which the
     * threads run before they end: fn cannot be interrupted, and it always
     * runs (amb_blocking_call's callers may hand it what it must free). */
    for (unsigned i = 0; i < n; i++)
        pthread_join(pl->threads[i], NULL);
    /* A queued job implies a started thread (amb__blocking_post): none is
     * left here. */
    pthread_cond_destroy(&pl->work);
    pthread_mutex_destroy(&pl->lock);
    amb__free(pl->threads);
    amb__free(pl);
    x->blocking = NULL;
}

unsigned amb__blocking_nthreads(amb__exec *x)
{
    pool *pl = x->blocking;
    if (pl == NULL)
        return 0;
    pthread_mutex_lock(&pl->lock);
    unsigned n = pl->nthreads;
    pthread_mutex_unlock(&pl->lock);
    return n;
}

bool amb__blocking_stopping(amb__exec *x)
{
    pool *pl = x->blocking;
    if (pl == NULL)
        return false;
    pthread_mutex_lock(&pl->lock);
    bool stopping = pl->stopping;
    pthread_mutex_unlock(&pl->lock);
    return stopping;
}

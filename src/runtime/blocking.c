/*
 * blocking.c - the blocking-call pool (Erlang's dirty I/O schedulers):
 * amb_blocking_call runs a C function that may block on a thread of its own
 * while only the calling process waits.
 *
 * A call is one message cell (msg.c) of kind WAKE whose buffer holds the
 * job (function, argument, caller's pid), as timer.c keeps a timer in its
 * cell. The caller:
 *   1. allocates the cell from its scheduler's pool and starts a wait
 *      (amb__mailbox_wait_begin gives the wait's sequence number);
 *   2. appends the cell to the pool's queue (mutex + condition variable),
 *      starting a thread when no started one is free;
 *   3. parks in amb__mailbox_wait_wake: messages that arrive meanwhile stay
 *      queued in order, and only a WAKE with this wait's number ends it.
 * A pool thread takes the oldest cell, runs fn(arg), stores the result in
 * the cell and delivers the cell itself to the caller, looking the caller
 * up inside amb__rt_ext_enter/leave (sched.h, "QSBR"), so the block it
 * pushes into cannot be freed under it. A caller that died meanwhile is not
 * found and the cell is freed: the result is discarded.
 *
 * Invariants:
 *   - Under `lock`: queued == length of the queue; free == started threads
 *     that are not running a call (they will look at the queue before they
 *     wait, so a queued call never waits while a free thread sleeps).
 *   - A thread counts itself free again before it delivers the result, so
 *     a process that makes calls one after another reuses one thread.
 *   - Threads only ever start (up to cfg.blocking_threads) until
 *     amb__blocking_stop, which runs when no scheduler does.
 *   - Idle threads sleep on the condition variable without a timeout: an
 *     idle pool uses no CPU.
 */
#include <pthread.h>

#include "runtime/blocking.h"
#include "runtime/sched.h"

/* A call waiting in the queue or running, in its cell's words. */
typedef struct job {
    amb__msg *next; /* queue link */
    amb_blocking_fn *fn;
    void *arg;
    amb_pid pid; /* the caller */
} job;

#define JOB_WORDS ((sizeof(job) + 7) / 8)

typedef struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work;   /* signalled when a call is queued or on stop */
    amb__msg *head, *tail; /* queued calls, oldest first */
    unsigned queued;
    unsigned free;     /* started threads not running a call */
    unsigned nthreads; /* started threads */
    unsigned max;      /* cfg.blocking_threads */
    bool stopping;
    pthread_t *threads; /* max of them, nthreads started */
} pool;

static inline job *job_of(amb__msg *m)
{
    return (job *)(void *)m->words;
}

int amb__blocking_prepare(amb_rt *rt)
{
    if (rt->blocking != NULL)
        return 0;
    pool *pl = amb__calloc(1, sizeof *pl);
    if (pl == NULL)
        return AMB_ENOMEM;
    pl->max = rt->cfg.blocking_threads;
    pl->threads = amb__calloc(pl->max, sizeof *pl->threads);
    if (pl->threads == NULL) {
        amb__free(pl);
        return AMB_ENOMEM;
    }
    pthread_mutex_init(&pl->lock, NULL);
    pthread_cond_init(&pl->work, NULL);
    /* Published to the schedulers by their pthread_create (amb_rt_run
     * prepares the pool before it starts them). */
    rt->blocking = pl;
    return 0;
}

/* Hands a finished call's result to its caller, or discards it. */
static void finish(amb_rt *rt, amb__msg *m, intptr_t result, bool discard)
{
    m->term = (amb_term)result;
    if (discard) {
        amb__msg_free(NULL, m);
        return;
    }
    amb__rt_ext_enter(rt);
    amb_proc *p = amb__ptab_lookup(rt, job_of(m)->pid);
    if (p != NULL)
        amb__mailbox_deliver(rt, NULL, p, m);
    else
        amb__msg_free(NULL, m);
    amb__rt_ext_leave(rt);
}

static void *worker(void *arg)
{
    amb_rt *rt = arg;
    pool *pl = rt->blocking;
    pthread_setname_np(pthread_self(), "amb-blocking");
    pthread_mutex_lock(&pl->lock);
    for (;;) {
        while (pl->head == NULL && !pl->stopping)
            pthread_cond_wait(&pl->work, &pl->lock);
        if (pl->stopping)
            break;
        amb__msg *m = pl->head;
        job *j = job_of(m);
        pl->head = j->next;
        if (pl->head == NULL)
            pl->tail = NULL;
        pl->queued--;
        pl->free--;
        pthread_mutex_unlock(&pl->lock);

        intptr_t result = j->fn(j->arg);

        pthread_mutex_lock(&pl->lock);
        pl->free++;
        bool discard = pl->stopping;
        pthread_mutex_unlock(&pl->lock);
        /* Outside the lock: delivery may take the inject lock and wake a
         * scheduler (a system call). */
        finish(rt, m, result, discard);
        pthread_mutex_lock(&pl->lock);
    }
    pthread_mutex_unlock(&pl->lock);
    return NULL;
}

/* Queues m, starting a thread when every started one is busy. AMB_EAGAIN
 * (and m is not queued) when the pool has no thread and cannot start one. */
static int post(amb_rt *rt, pool *pl, amb__msg *m)
{
    int rc = 0;
    job_of(m)->next = NULL;
    pthread_mutex_lock(&pl->lock);
    if (pl->tail != NULL)
        job_of(pl->tail)->next = m;
    else
        pl->head = m;
    pl->tail = m;
    pl->queued++;
    if (pl->queued > pl->free && pl->nthreads < pl->max) {
        if (pthread_create(&pl->threads[pl->nthreads], NULL, worker, rt) == 0) {
            pl->nthreads++;
            pl->free++;
        } else if (pl->nthreads == 0) {
            /* No thread has ever started, so nothing else is queued. */
            pl->head = pl->tail = NULL;
            pl->queued = 0;
            rc = AMB_EAGAIN;
        }
        /* Otherwise a started thread will take the call when it is free. */
    }
    if (rc == 0)
        pthread_cond_signal(&pl->work);
    pthread_mutex_unlock(&pl->lock);
    return rc;
}

int amb_blocking_call(amb_proc *self, amb_blocking_fn *fn, void *arg, intptr_t *result)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    pool *pl = self->rt->blocking;
    if (pl == NULL)
        return AMB_ESTATE; /* not inside a running runtime */
    amb__msg *m = amb__msg_alloc(self->sched, JOB_WORDS);
    if (m == NULL)
        return AMB_ENOMEM;
    m->kind = AMB__MSG_WAKE;
    job *j = job_of(m);
    j->fn = fn;
    j->arg = arg;
    j->pid = self->pid;
    m->wait_seq = amb__mailbox_wait_begin(self);
    int rc = post(self->rt, pl, m);
    if (rc != 0) {
        amb__msg_free(self->sched, m);
        return rc;
    }
    amb__counter_add(&self->reductions, 1);
    amb__mailbox_wait_wake(self);
    if (result != NULL)
        *result = self->wake_result;
    return 0;
}

void amb__blocking_stop(amb_rt *rt)
{
    pool *pl = rt->blocking;
    if (pl == NULL)
        return;
    pthread_mutex_lock(&pl->lock);
    pl->stopping = true;
    pthread_cond_broadcast(&pl->work);
    unsigned n = pl->nthreads; /* no scheduler runs: no call starts more */
    pthread_mutex_unlock(&pl->lock);
    /* Waits for calls in progress: fn cannot be interrupted. */
    for (unsigned i = 0; i < n; i++)
        pthread_join(pl->threads[i], NULL);
    /* The calls never started: their callers are about to be discarded. */
    for (amb__msg *m = pl->head, *next; m != NULL; m = next) {
        next = job_of(m)->next;
        amb__msg_free(NULL, m);
    }
    pthread_cond_destroy(&pl->work);
    pthread_mutex_destroy(&pl->lock);
    amb__free(pl->threads);
    amb__free(pl);
    rt->blocking = NULL;
}

unsigned amb__blocking_nthreads(amb_rt *rt)
{
    pool *pl = rt->blocking;
    if (pl == NULL)
        return 0;
    pthread_mutex_lock(&pl->lock);
    unsigned n = pl->nthreads;
    pthread_mutex_unlock(&pl->lock);
    return n;
}

bool amb__blocking_stopping(amb_rt *rt)
{
    pool *pl = rt->blocking;
    if (pl == NULL)
        return false;
    pthread_mutex_lock(&pl->lock);
    bool stopping = pl->stopping;
    pthread_mutex_unlock(&pl->lock);
    return stopping;
}

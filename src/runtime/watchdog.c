/*
 * watchdog.c - one thread per running executor that looks at what each
 * scheduler is running, with two duties:
 *
 *   1. Report: a task that has run for watchdog_ms or more without
 *      switching out is reported once for that run (ops->report_stuck, by
 *      the task's id). UINT64_MAX turns reports off.
 *   2. Rescue: a scheduler stuck in one task for over STUCK_MS cannot
 *      run what is queued behind it. Other schedulers steal its ring, and
 *      its run-next slot too once it is stuck (sched.c, steal()), but only
 *      while they are awake, and nobody wakes a sleeper for work that is
 *      already queued. So the watchdog wakes one sleeping scheduler for
 *      each stuck scheduler that has work queued. This duty stays on when
 *      reports are off.
 *
 * What it reads: each scheduler's run_started_ms (when the current run
 * began, 0 while idle), current_id and run queue, all atomics that the
 * scheduler publishes for thieves and for us. It touches no task, so it
 * needs no QSBR protection. The reads are relaxed and the pair
 * (run_started_ms, current_id) is not read atomically: a run is
 * recognised by that pair, read between two reads of run_started_ms that
 * agree, which is good enough for a diagnostic and for a wake-up that is
 * harmless when it is spurious.
 *
 * The age of a run: run_started_ms comes from the scheduler's cached
 * clock, which can be older than the run (sched.c refreshes it every few
 * runs). So the watchdog also bounds the start from below by its own
 * previous look: a run it did not see then started after it. The age it
 * uses is from the later of the two, so a short run never looks long.
 *
 * Its period: while some scheduler is in a run, every RESCUE_MS (a stuck
 * scheduler's queue is rescued soon, and report times are accurate to that);
 * while all are idle, every watchdog_ms / 2, at most IDLE_MAX_MS. It sleeps
 * on a condition variable between looks, so an idle runtime costs a few
 * wake-ups a second.
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "runtime/clock.h"
#include "runtime/exec.h"
#include "runtime/watchdog.h"

#define STUCK_MS    10   /* as steal() in sched.c: a run this old is stuck */
#define RESCUE_MS   10   /* the period while some scheduler runs */
#define IDLE_MAX_MS 1000 /* the longest period while all are idle */

/* What the watchdog knows of one scheduler's current run. */
typedef struct run_seen {
    uint32_t id;      /* the task's id */
    uint64_t started; /* its run_started_ms; 0: idle at the last look */
    uint64_t since;   /* lower bound of its start (see above) */
    bool reported;
} run_seen;

typedef struct watchdog {
    amb__exec *x;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled by stop */
    bool stop;           /* under lock */
    uint64_t limit_ms;   /* watchdog_ms, UINT64_MAX: no reports */
    uint64_t idle_ms;    /* the period while idle */
    uint64_t last_look;
    run_seen runs[]; /* one per scheduler */
} watchdog;

/* One look at every scheduler. Returns true when some scheduler is in a
 * run (the next look comes sooner). */
static bool look(watchdog *w)
{
    amb__exec *x = w->x;
    uint64_t now = amb__clock_ms();
    bool busy = false;
    unsigned rescues = 0;
    for (unsigned i = 0; i < x->nsched; i++) {
        amb__sched *s = amb__exec_sched(x, i);
        run_seen *r = &w->runs[i];
        /* relaxed: a snapshot for a diagnostic (see the file comment). */
        uint64_t started = atomic_load_explicit(&s->run_started_ms, memory_order_relaxed);
        uint32_t id = atomic_load_explicit(&s->current_id, memory_order_relaxed);
        uint64_t again = atomic_load_explicit(&s->run_started_ms, memory_order_relaxed);
        if (started == 0 || again != started) {
            /* Idle, or a new run began while we read: look next time. */
            r->started = 0;
            busy |= started != 0;
            continue;
        }
        busy = true;
        if (r->id != id || r->started != started) {
            r->id = id;
            r->started = started;
            r->since = started > w->last_look ? started : w->last_look;
            r->reported = false;
        }
        uint64_t age = now > r->since ? now - r->since : 0;
        if (!r->reported && age >= w->limit_ms) {
            r->reported = true;
            x->ops.report_stuck(x, i, id, age);
        }
        if (x->nsched > 1 && now > started + STUCK_MS && !amb__runq_empty(&s->q))
            rescues++;
    }
    w->last_look = now;
    /* One sleeper per stuck scheduler with work: wake_one does nothing
     * when a scheduler already spins (it will steal) or none sleeps. */
    for (unsigned k = 0; k < rescues; k++)
        amb__sched_wake_one(x);
    return busy;
}

static void *watch(void *arg)
{
    watchdog *w = arg;
    pthread_setname_np(pthread_self(), "amb-watchdog");
    uint64_t period = w->idle_ms;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + period * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        /* A spurious wake-up only brings the next look forward. */
        pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        if (w->stop)
            break;
        pthread_mutex_unlock(&w->lock);
        period = look(w) ? (w->idle_ms < RESCUE_MS ? w->idle_ms : RESCUE_MS) : w->idle_ms;
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int amb__watchdog_start(amb__exec *x)
{
    watchdog *w = amb__calloc(1, sizeof *w + x->nsched * sizeof(run_seen));
    if (w == NULL)
        return AMB_ENOMEM;
    w->x = x;
    w->limit_ms = x->watchdog_ms;
    w->idle_ms = x->watchdog_ms / 2 > IDLE_MAX_MS ? IDLE_MAX_MS : x->watchdog_ms / 2;
    if (w->idle_ms == 0)
        w->idle_ms = 1;
    w->last_look = amb__clock_ms();
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);

    /* The thread runs no user code: keep signals for the application's
     * own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, watch, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        amb__free(w);
        return AMB_EAGAIN;
    }
    x->watchdog = w;
    return 0;
}

void amb__watchdog_stop(amb__exec *x)
{
    watchdog *w = x->watchdog;
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    amb__free(w);
    x->watchdog = NULL;
}

/*
 * watchdog.c - one thread per running executor that looks at what each
 * scheduler is doing (Go's sysmon), with two duties:
 *
 *   1. Report: a task that has run for watchdog_ms or more without
 *      switching out is reported once for that run (ops->report_stuck, by
 *      the task's id). UINT64_MAX turns reports off.
 *   2. Rescue: a scheduler inside one long run cannot run what waits
 *      behind it (its ring, its run-next slot) nor fire its expired
 *      timers. Awake schedulers take these over by themselves (sched.c:
 *      stealing, run-next after a few microseconds without a switch, other
 *      schedulers' timers), but a sleeping one is woken by nobody for work
 *      that is already queued. So the watchdog wakes one sleeper for each
 *      scheduler it finds in the same run as at its previous look with
 *      work queued or a timer due. This duty stays on when reports are off.
 *
 *   3. Poll: when descriptors are open and nobody has polled for POLL_MS
 *      and nobody is blocked in the poller (every scheduler busy, or stuck
 *      in a long run), it polls without blocking and makes the woken tasks
 *      runnable through the inject queue (Go's sysmon rule,
 *      docs/design/sockets.md §5.3), inside amb__qsbr_enter/leave since it
 *      pushes into task inboxes.
 *
 * What it reads: each scheduler's switch count and running task's id
 * (runq.h: odd while a task runs, bumped at every switch), its queues and
 * its timer_next, all atomics that the scheduler publishes for thieves and
 * for us. It touches no task, so it needs no QSBR protection. A run is
 * recognised by its switch count: the same odd value at two looks means
 * one run lasted from before the first look to after the second. Its age
 * is counted from the first look that saw it, so a short run never looks
 * long (a report may come up to one period late).
 *
 * Its period (Go's sysmon, adapted): PERIOD_MIN after a look that found a
 * scheduler in a run with work queued behind it or timers due (a rescue
 * may be needed at the next look, and a woken process on an otherwise
 * idle machine should run within a millisecond); otherwise it doubles up
 * to PERIOD_MAX (and at most watchdog_ms / 2, for reports) while any
 * scheduler is awake; and the next look comes no later than the earliest
 * timer of a scheduler in a run. When every scheduler sleeps at a look made
 * with the period at its cap, it sleeps too, without a timeout, until a
 * scheduler that wakes kicks it (amb__watchdog_kick): an idle runtime costs
 * no wake-up at all, and one that sleeps between short bursts kicks it
 * once per backed-off period, not at every burst.
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "runtime/clock.h"
#include "runtime/exec.h"
#include "runtime/qsbr.h"
#include "runtime/watchdog.h"

#define PERIOD_MIN_US 250   /* after a look that found waiting work */
#define PERIOD_MAX_US 10000 /* the longest while any scheduler is awake */
#define POLL_MS       10    /* poll when nobody has for this long */

/* What the watchdog knows of one scheduler's current run. */
typedef struct run_seen {
    uint64_t seq;   /* the switch count at the last look (odd: a run) */
    uint64_t since; /* ms: the first look that saw this run */
    bool reported;
} run_seen;

typedef struct watchdog {
    amb__exec *x;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled by stop and by kicks */
    bool stop;           /* under lock */
    bool kicked;         /* under lock */
    /* Asleep without a timeout (every scheduler was asleep): a scheduler
     * that wakes must kick. Written under lock, read by kickers without
     * it (their Dekker pair is in sleep_deep). */
    _Atomic bool deep;
    uint64_t limit_ms; /* watchdog_ms, UINT64_MAX: no reports */
    uint64_t period_us;
    run_seen runs[]; /* one per scheduler */
} watchdog;

/* One look at every scheduler. Returns true when some scheduler is in a
 * run with work waiting behind it (the next look comes soon). *soonest
 * gets the earliest deadline of the timers of schedulers in a run (the
 * next look comes no later, so that a stuck scheduler's timer is handed to
 * a sleeper on time), UINT64_MAX if none. */
static bool look(watchdog *w, uint64_t *soonest)
{
    amb__exec *x = w->x;
    uint64_t now = amb__clock_ms(&x->clock);
    bool waiting = false;
    *soonest = UINT64_MAX;
    unsigned rescues = 0;
    for (unsigned i = 0; i < x->nsched; i++) {
        amb__sched *s = amb__exec_sched(x, i);
        run_seen *r = &w->runs[i];
        uint64_t seq = amb__runq_seq(&s->q);
        if ((seq & 1) == 0) {
            r->seq = seq; /* in its loop: no run */
            continue;
        }
        /* relaxed: a snapshot for a diagnostic (see the file comment). */
        uint32_t id = atomic_load_explicit(&s->q.task_id, memory_order_relaxed);
        /* relaxed: a lower bound written under the wheel's lock; a wake-up
         * for nothing is harmless. */
        uint64_t next = atomic_load_explicit(&s->timer_next, memory_order_relaxed);
        bool work = !amb__runq_empty(&s->q) || next <= now;
        waiting |= work;
        if (next > now && next < *soonest)
            *soonest = next;
        if (r->seq != seq) {
            r->seq = seq;
            r->since = now;
            r->reported = false;
            continue;
        }
        uint64_t age = now - r->since;
        if (!r->reported && age >= w->limit_ms) {
            r->reported = true;
            x->ops.report_stuck(x, i, id, age);
        }
        if (x->nsched > 1 && work)
            rescues++;
    }
    /* One sleeper per stuck scheduler with work: wake_one does nothing
     * when a scheduler already spins (it will steal) or none sleeps. */
    for (unsigned k = 0; k < rescues; k++)
        amb__sched_wake_one(x, NULL);
    return waiting;
}

/* The third duty: a poll when nobody has polled for POLL_MS. */
static void poll_if_forgotten(amb__exec *x)
{
    amb__poll *p = amb__exec_poller(x);
    if (p == NULL || amb__poll_nopen(p) == 0 || amb__poll_blocked(p))
        return;
    uint64_t now = amb__clock_mono_ns() / 1000000u; /* the poller's clock */
    if (now - amb__poll_last_ms(p) < POLL_MS)
        return;
    amb__poll_list fired;
    amb__poll_list_init(&fired);
    unsigned token = amb__qsbr_enter(x);
    if (amb__poll_wait(p, 0, &fired) > 0)
        amb__sched_deliver(x, NULL, &fired);
    amb__qsbr_leave(x, token);
}

/* Whether every scheduler sleeps. */
static bool all_asleep(amb__exec *x)
{
    /* relaxed: after the caller's seq_cst fence (sleep_deep). */
    return atomic_load_explicit(&x->nsleeping, memory_order_relaxed) == x->nsched;
}

/* Sleeps (w->lock held) until stop or a kick, if every scheduler sleeps.
 * Returns false at once when one is awake. */
static bool sleep_deep(watchdog *w)
{
    /* seq_cst store, then a seq_cst fence before reading nsleeping: the
     * Dekker pair of a waking scheduler, which decrements nsleeping
     * (seq_cst), fences, then reads `deep` (amb__watchdog_kick). Either we
     * see it awake, or it sees us deep and kicks (it takes the lock, so
     * its signal comes after our wait began). */
    atomic_store_explicit(&w->deep, true, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    bool slept = false;
    while (!w->stop && !w->kicked && all_asleep(w->x)) {
        pthread_cond_wait(&w->cond, &w->lock);
        slept = true;
    }
    /* relaxed: under the lock, which kickers take before they signal. */
    atomic_store_explicit(&w->deep, false, memory_order_relaxed);
    w->kicked = false;
    return slept;
}

static void *watch(void *arg)
{
    watchdog *w = arg;
    pthread_setname_np(pthread_self(), "amb-watchdog");
    uint64_t cap_us = w->limit_ms == UINT64_MAX ? PERIOD_MAX_US : w->limit_ms * 500;
    if (cap_us > PERIOD_MAX_US)
        cap_us = PERIOD_MAX_US;
    if (cap_us < PERIOD_MIN_US)
        cap_us = PERIOD_MIN_US;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        /* Deep sleep only once the period has backed off to its cap: a
         * runtime whose schedulers sleep between short bursts (a socket's
         * round trips) would otherwise kick the watchdog awake at every
         * burst, a thread wake-up per request (measured: the 1-connection
         * echo's server CPU per request fell from ~72 to ~32 us with the
         * spin off, from ~28 to ~21 us with it on). Backed off, it looks every
         * PERIOD_MAX_US at most until everything has slept through one whole period. */
        if (w->period_us >= cap_us && sleep_deep(w)) {
            w->period_us = PERIOD_MIN_US;
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + w->period_us * 1000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        /* A spurious wake-up only brings the next look forward. */
        pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        if (w->stop)
            break;
        pthread_mutex_unlock(&w->lock);
        uint64_t soonest;
        bool waiting = look(w, &soonest);
        poll_if_forgotten(w->x);
        uint64_t now = amb__clock_ms(&w->x->clock);
        pthread_mutex_lock(&w->lock);
        w->period_us = waiting ? PERIOD_MIN_US : w->period_us * 2;
        if (w->period_us > cap_us)
            w->period_us = cap_us;
        /* One tick past the deadline: it is due then (the wheel's time is
         * in whole milliseconds). */
        if (soonest != UINT64_MAX && (soonest + 1 - now) * 1000u < w->period_us)
            w->period_us = (soonest + 1 - now) * 1000u;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

void amb__watchdog_kick(amb__exec *x)
{
    watchdog *w = x->watchdog;
    /* relaxed: after the caller's seq_cst fence (see sleep_deep). */
    if (w == NULL || !atomic_load_explicit(&w->deep, memory_order_relaxed))
        return;
    pthread_mutex_lock(&w->lock);
    w->kicked = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int amb__watchdog_start(amb__exec *x)
{
    watchdog *w = amb__calloc(1, sizeof *w + x->nsched * sizeof(run_seen));
    if (w == NULL)
        return AMB_ENOMEM;
    w->x = x;
    w->limit_ms = x->watchdog_ms;
    w->period_us = PERIOD_MIN_US;
    atomic_init(&w->deep, false);
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

/*
 * clock.h - the runtime's clock: the one interface every time the runtime
 * reads goes through (deadlines, the timer check at every switch, the
 * idle schedulers' patience, the watchdog), so that a deterministic test
 * mode can make time virtual without touching the loop (runtime.md, "The
 * loop as a step").
 *
 * Two readings:
 *   - amb__clock_ns / amb__clock_ms: the monotonic clock, exact (a vDSO
 *     call, ~24 ns on the test VM). Deadlines are computed from it, so a
 *     timer never fires before its time.
 *   - amb__clock_coarse_ms: the same clock as the kernel last ticked it
 *     (~5 ns, resolution one kernel tick: 4 ms here). Never ahead of the
 *     exact one, so comparing a deadline against it can only be late,
 *     never early: what the check at every switch uses (sched.c).
 *
 * A virtual clock (virt != NULL) answers both readings with *virt, a
 * nanosecond count that whoever drives the schedulers advances.
 *
 * Invariant: coarse <= exact; both never go back.
 */
#ifndef AMB_RUNTIME_CLOCK_H
#define AMB_RUNTIME_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "internal.h"

typedef struct amb__clock {
    /* NULL: the system's monotonic clock. Else virtual time in ns. */
    const _Atomic uint64_t *virt;
} amb__clock;

/* The system's monotonic clock in ns, for code that runs without an
 * executor (amb_now_ms, the poller's stamp). */
static inline uint64_t amb__clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t amb__clock_ns(const amb__clock *c)
{
    if (amb__unlikely(c->virt != NULL))
        /* relaxed: the driver of a virtual clock runs the schedulers
         * itself; the value orders nothing. */
        return atomic_load_explicit(c->virt, memory_order_relaxed);
    return amb__clock_mono_ns();
}

/* Milliseconds: the unit of every deadline (wheel.h, timer.h). */
static inline uint64_t amb__clock_ms(const amb__clock *c)
{
    return amb__clock_ns(c) / 1000000u;
}

/* Milliseconds as of the kernel's last tick: cheap, possibly late by a
 * tick or more, never ahead of amb__clock_ms. */
static inline uint64_t amb__clock_coarse_ms(const amb__clock *c)
{
    if (amb__unlikely(c->virt != NULL))
        return amb__clock_ms(c);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif /* AMB_RUNTIME_CLOCK_H */

/*
 * micro_clock.h - the clocks of the micro benchmarks: wall time, and the
 * calling thread's CPU time (single-threaded cases are timed with it, so
 * that time spent descheduled on a shared machine does not count).
 */
#ifndef AMB_MICRO_CLOCK_H
#define AMB_MICRO_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* AMB_MICRO_CLOCK_H */

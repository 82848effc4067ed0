/*
 * clock.h - the runtime's clock: milliseconds on the monotonic clock, the
 * unit of every deadline in the runtime (wheel.h, timer.h, the watchdog).
 */
#ifndef AMB_RUNTIME_CLOCK_H
#define AMB_RUNTIME_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock (a vDSO call, no system call). */
static inline uint64_t amb__clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif /* AMB_RUNTIME_CLOCK_H */

/*
 * bench/micro_wheel.c - micro benchmark of the timing wheel
 * (src/runtime/wheel.h).
 *
 *   micro_wheel [N [MAXDELAY_MS [random|mod]]]
 *
 * N timers (default 1,000,000) with delays of 1..MAXDELAY_MS (default 100)
 * ms: drawn at random (default), or `mod`: 1 + k mod MAXDELAY for timer k,
 * exactly as the peer `timers` benchmark arms them. The pattern decides
 * how scattered in memory the entries of one slot are: random is the
 * harder case (every step of a slot walk is a cache miss). Each case
 * prints one `RESULT bench=... impl=c pattern=... ...` line:
 *   wheel.arm       ns per arm into a wheel (entries and deadlines prepared
 *                   and touched beforehand)
 *   wheel.cancel    ns per cancel of a pending entry, in random order
 *   wheel.fire      ns per fired entry, advancing 1 ms at a time through
 *                   the whole delay (cascades included)
 *   wheel.realtime  the real thing on one thread: arm N against the
 *                   monotonic clock, then sleep until next_deadline and
 *                   advance, until all fired: total ms from the first arm
 *                   to the last firing, the longest delay, and the worst
 *                   lateness of a firing against its deadline
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "micro_clock.h"
#include "runtime/wheel.h"

struct tmr {
    amb__wheel_entry e;
    uint64_t payload;
};

static uint64_t now_ms(void)
{
    return now_ns() / 1000000u;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void *must_alloc(size_t n, size_t size)
{
    void *p = amb__calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memset(p, 0, n * size); /* first touch outside the timings */
    return p;
}

struct counter {
    uint64_t fired;
    uint64_t worst_late_ms;
    bool realtime;
};

static void count_fire(void *ctx, amb__wheel_entry *e)
{
    struct counter *c = ctx;
    if (c->realtime) {
        uint64_t t = now_ms();
        uint64_t d = amb__wheel_deadline(e);
        if (t > d && t - d > c->worst_late_ms)
            c->worst_late_ms = t - d;
    }
    c->fired++;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000u;
    uint64_t maxdelay = argc > 2 ? strtoull(argv[2], NULL, 10) : 100u;
    const char *pattern = argc > 3 ? argv[3] : "random";
    bool mod = strcmp(pattern, "mod") == 0;
    static amb__wheel w;
    uint64_t seed = 1;

    if (n == 0 || n > UINT32_MAX || maxdelay == 0 ||
        (!mod && strcmp(pattern, "random") != 0)) {
        fprintf(stderr, "usage: %s [N > 0 [MAXDELAY_MS > 0 [random|mod]]]\n", argv[0]);
        return 2;
    }
    struct tmr *t = must_alloc(n, sizeof *t);
    uint64_t *delay = must_alloc(n, sizeof *delay);
    uint32_t *order = must_alloc(n, sizeof *order);
    for (uint64_t i = 0; i < n; i++) {
        delay[i] = 1 + (mod ? i : rng_next(&seed)) % maxdelay;
        order[i] = (uint32_t)i;
    }
    for (uint64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        uint64_t j = rng_next(&seed) % (i + 1);
        uint32_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }

    /* arm */
    uint64_t start = 1000000; /* a time with no special alignment */
    amb__wheel_init(&w, start + 13);
    uint64_t t0 = cpu_ns();
    for (uint64_t i = 0; i < n; i++)
        amb__wheel_arm(&w, &t[i].e, start + 13 + delay[i]);
    uint64_t dt = cpu_ns() - t0;
    printf("RESULT bench=wheel.arm impl=c pattern=%s n=%llu ns_per_arm=%.2f\n", pattern,
           (unsigned long long)n, (double)dt / (double)n);

    /* cancel, in random order */
    t0 = cpu_ns();
    uint64_t cancelled = 0;
    for (uint64_t i = 0; i < n; i++)
        cancelled += amb__wheel_cancel(&w, &t[order[i]].e);
    dt = cpu_ns() - t0;
    printf("RESULT bench=wheel.cancel impl=c pattern=%s n=%llu ns_per_cancel=%.2f\n",
           pattern, (unsigned long long)cancelled, (double)dt / (double)n);

    /* fire: re-arm (not timed), then advance one tick at a time */
    struct counter c = {0};
    amb__wheel_init(&w, start + 13);
    for (uint64_t i = 0; i < n; i++)
        amb__wheel_arm(&w, &t[i].e, start + 13 + delay[i]);
    t0 = cpu_ns();
    for (uint64_t ms = start + 14; amb__wheel_count(&w) > 0; ms++)
        amb__wheel_advance(&w, ms, count_fire, &c);
    dt = cpu_ns() - t0;
    printf("RESULT bench=wheel.fire impl=c pattern=%s n=%llu ns_per_fire=%.2f\n", pattern,
           (unsigned long long)c.fired, (double)dt / (double)c.fired);

    /* realtime: against the clock, sleeping while nothing is due */
    c = (struct counter){.realtime = true};
    uint64_t begin = now_ns();
    amb__wheel_init(&w, now_ms());
    for (uint64_t i = 0; i < n; i++)
        amb__wheel_arm(&w, &t[i].e, now_ms() + delay[i]);
    uint64_t armed = now_ns();
    uint64_t wakeups = 0;
    while (amb__wheel_count(&w) > 0) {
        uint64_t next = amb__wheel_next_deadline(&w);
        uint64_t ms = now_ms();
        if (next > ms) {
            struct timespec ts = {.tv_sec = (time_t)(next / 1000),
                                  .tv_nsec = (long)(next % 1000) * 1000000L};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
        amb__wheel_advance(&w, now_ms(), count_fire, &c);
        wakeups++;
    }
    uint64_t end = now_ns();
    printf("RESULT bench=wheel.realtime impl=c pattern=%s n=%llu maxdelay_ms=%llu "
           "arm_ns=%.2f total_ms=%.2f worst_late_ms=%llu wakeups=%llu\n",
           pattern, (unsigned long long)c.fired, (unsigned long long)maxdelay,
           (double)(armed - begin) / (double)n, (double)(end - begin) / 1e6,
           (unsigned long long)c.worst_late_ms, (unsigned long long)wakeups);

    amb__free(order);
    amb__free(delay);
    amb__free(t);
    return 0;
}

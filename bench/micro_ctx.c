/*
 * bench/micro_ctx.c - micro benchmark of the context switch (src/arch/ctx.h)
 * and the stack allocator (src/runtime/stack.h).
 *
 *   micro_ctx [SWITCHES]
 *
 * Cases, each printed as one `RESULT bench=... impl=c ...` line:
 *   ctx.switch           two contexts on one thread switching back and
 *                        forth, SWITCHES switches (default 10,000,000)
 *                        in 5 runs: ns per switch = round trip / 2, the
 *                        median run and the best
 *   ctx.switch_checked   the same, plus amb__stack_check each time the
 *                        "scheduler" side gets control back (what the
 *                        scheduler pays per switch pair)
 *   ctx.switch_ucontext  the portable ucontext reference, SWITCHES / 10
 *                        switches: ns per switch
 *   stack.alloc_free     amb__stack_alloc + amb__stack_free on a warm
 *                        per-thread cache: ns per pair
 *   ctx.lifecycle        stack alloc, make, first switch in, exit, destroy,
 *                        stack free: ns per context (a process that does
 *                        nothing, minus the process table)
 * The build's sanitizers, if any, are in force: measure a Release build.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "arch/ctx.h"
#include "runtime/stack.h"

#define AMB_CTX_UCONTEXT_EMBED 1
#include "arch/ctx_ucontext.c"

/* The switch cases run REPS times over SWITCHES / REPS switches and report
 * the median and the best run: on a shared machine the best is the
 * switch's own cost, the median what a neighbour's load leaves of it. */
#define REPS 5

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct pong {
    amb__ctx *main;
    amb__ctx_jump_fn *jump;
    volatile int stop;
};

static void pong_body(amb__ctx *self, void *arg)
{
    struct pong *p = arg;
    while (!p->stop)
        amb__ctx_switch_with(self, p->main, p->jump);
    amb__ctx_exit_with(self, p->main, p->jump);
}

/* Returns ns per switch over n switches (n/2 round trips). */
static double run_switches(amb__stack_cache *cache, amb__ctx_jump_fn *jump,
                           amb__ctx_frame_fn *frame, uint64_t n, int check)
{
    amb__ctx main_ctx = {0}, c;
    amb__stack *s;
    struct pong p = {.main = &main_ctx, .jump = jump};
    uint64_t rounds = n / 2;

    if (amb__stack_alloc(cache, &s) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    amb__ctx_make_with(&c, s->lo, s->size, pong_body, &p, frame);
    for (uint64_t i = 0; i < rounds / 100 + 1; i++) /* warm up */
        amb__ctx_switch_with(&main_ctx, &c, jump);
    double t0 = now_ns();
    if (check) {
        for (uint64_t i = 0; i < rounds; i++) {
            amb__ctx_switch_with(&main_ctx, &c, jump);
            amb__stack_check(s);
        }
    } else {
        for (uint64_t i = 0; i < rounds; i++)
            amb__ctx_switch_with(&main_ctx, &c, jump);
    }
    double t1 = now_ns();
    p.stop = 1;
    amb__ctx_switch_with(&main_ctx, &c, jump);
    amb__ctx_destroy(&c);
    amb__stack_free(cache, s);
    return (t1 - t0) / (double)(rounds * 2);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void noop_body(amb__ctx *self, void *arg)
{
    amb__ctx_exit(self, arg);
}

int main(int argc, char **argv)
{
    uint64_t n = 10000000;
    amb__stack_pool *pool;
    amb__stack_cache cache;

    if (argc > 1) {
        n = strtoull(argv[1], NULL, 10);
        if (n < 100) {
            fprintf(stderr, "usage: %s [SWITCHES >= 100]\n", argv[0]);
            return 2;
        }
    }
    if (amb__stack_pool_new(NULL, &pool) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    amb__stack_cache_init(&cache, pool);

    for (int check = 0; check <= 1; check++) {
        double runs[REPS];
        for (int r = 0; r < REPS; r++)
            runs[r] =
                run_switches(&cache, amb__ctx_jump, amb__ctx_frame, n / REPS, check);
        qsort(runs, REPS, sizeof runs[0], cmp_double);
        printf("RESULT bench=%s impl=c switches=%llu ns_per_switch=%.2f best=%.2f\n",
               check ? "ctx.switch_checked" : "ctx.switch", (unsigned long long)n,
               runs[REPS / 2], runs[0]);
    }
    double ns =
        run_switches(&cache, amb__ctx_ucontext_jump, amb__ctx_ucontext_frame, n / 10, 0);
    printf("RESULT bench=ctx.switch_ucontext impl=c switches=%llu ns_per_switch=%.2f\n",
           (unsigned long long)(n / 10), ns);

    uint64_t pairs = n / 2;
    amb__stack *s = NULL;
    double t0 = now_ns();
    for (uint64_t i = 0; i < pairs; i++) {
        if (amb__stack_alloc(&cache, &s) != 0)
            return 1;
        amb__stack_free(&cache, s);
    }
    double t1 = now_ns();
    printf("RESULT bench=stack.alloc_free impl=c pairs=%llu ns_per_pair=%.2f\n",
           (unsigned long long)pairs, (t1 - t0) / (double)pairs);

    uint64_t lives = n / 20;
    amb__ctx main_ctx = {0}, c;
    t0 = now_ns();
    for (uint64_t i = 0; i < lives; i++) {
        if (amb__stack_alloc(&cache, &s) != 0)
            return 1;
        amb__ctx_make(&c, s->lo, s->size, noop_body, &main_ctx);
        amb__ctx_switch(&main_ctx, &c);
        amb__ctx_destroy(&c);
        amb__stack_free(&cache, s);
    }
    t1 = now_ns();
    printf("RESULT bench=ctx.lifecycle impl=c contexts=%llu ns_per_context=%.2f\n",
           (unsigned long long)lives, (t1 - t0) / (double)lives);

    amb__stack_cache_term(&cache);
    amb__stack_pool_free(pool);
    return 0;
}

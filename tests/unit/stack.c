/*
 * tests/unit/stack.c - the stack allocator (src/runtime/stack.h).
 *
 * What is proved: stacks have the documented layout and are disjoint and
 * writable end to end; bad configurations are refused; the per-thread
 * cache reuses the last freed stack with no syscall; stacks given to the
 * shared pool really go back to the OS (RSS drops, their memory reads as
 * zero again, except the top page of the warm ones); a million stacks,
 * one touched page each, cost a handful of mappings, and RSS returns near
 * the baseline after they are freed; a real overflow (a runaway recursion
 * on a context) is caught by the canary on an unguarded stack and by the
 * guard page on a guarded one; amb__stack_check panics on a broken canary;
 * guard pages stop at the configured budget; four threads sharing one pool
 * through their own caches never get the same stack at once; freeing a
 * pool with a stack still out panics.
 *
 * Numbers (RSS, mappings) are printed for docs/design/stacks.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amb_test.h"
#include "arch/ctx.h"
#include "runtime/stack.h"

#if AMB__CTX_TSAN
#define SCALE_DOWN 4
#else
#define SCALE_DOWN 1
#endif

/* ---- /proc readers ---- */

/* This OS process's resident set in KiB; /proc must be readable. */
static long rss_checked(void)
{
    long kib = amb_test_rss_kib();
    assert_true(kib > 0);
    return kib;
}

static long map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;

    assert_non_null(f);
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Mappings that overlap [lo, hi). */
static long maps_within(uintptr_t lo, uintptr_t hi)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    long n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx", &start, &end) == 2 && start < hi && end > lo)
            n++;
    }
    fclose(f);
    return n;
}

/* Stack memory is written through these, not seen by the sanitizers:
 * their shadow of a million stacks would be the RSS we measure. */
__attribute__((noinline, no_sanitize("address", "thread"))) static void poke(char *p,
                                                                             uint64_t v)
{
    *(volatile uint64_t *)(void *)p = v;
}

__attribute__((noinline, no_sanitize("address", "thread"))) static uint64_t peek(char *p)
{
    return *(volatile uint64_t *)(void *)p;
}

__attribute__((noinline, no_sanitize("address", "thread"))) static void
fill(char *p, size_t n, unsigned char byte)
{
    for (size_t i = 0; i < n; i += 8)
        *(volatile uint64_t *)(void *)(p + i) = 0x0101010101010101u * byte;
}

static char *top_word(amb__stack *s)
{
    return s->lo + s->size - 64;
}

/* ---- layout and configuration ---- */

AMB_TEST(stack_layout_and_disjoint)
{
    amb__stack_pool *pool;
    amb__stack_cache c;
    amb__stack *s[100];
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    assert_ok(amb__stack_pool_new(NULL, &pool));
    amb__stack_cache_init(&c, pool);
    for (int i = 0; i < 100; i++) {
        assert_ok(amb__stack_alloc(&c, &s[i]));
        assert_int_equal(s[i]->size, 64 * 1024 - page - AMB__STACK_CANARY);
        assert_int_equal((uintptr_t)s[i]->lo % page, AMB__STACK_CANARY);
        assert_int_equal(((uintptr_t)s[i]->lo + s[i]->size) % page, 0);
        assert_true(amb__stack_intact(s[i]));
        fill(s[i]->lo, s[i]->size, (unsigned char)(i + 1));
    }
    /* Every stack still holds its own bytes: none overlaps another, and
     * writing all of one never reached a neighbour's canary. */
    for (int i = 0; i < 100; i++) {
        assert_true(amb__stack_intact(s[i]));
        assert_true(peek(s[i]->lo) == 0x0101010101010101u * (unsigned char)(i + 1));
        assert_true(peek(top_word(s[i])) == 0x0101010101010101u * (unsigned char)(i + 1));
    }
    for (int i = 0; i < 100; i++)
        amb__stack_free(&c, s[i]);
    amb__stack_cache_term(&c);
    amb__stack_stats st;
    amb__stack_pool_stats(pool, &st);
    assert_true(st.carved >= 100); /* carved in batches */
    assert_int_equal(st.shared_warm + st.shared_cold, st.carved);
    assert_int_equal(st.regions, 1);
    amb__stack_pool_free(pool);
}

AMB_TEST(stack_config_validation)
{
    amb__stack_pool *pool = NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    assert_rc(AMB_EBADARG, amb__stack_pool_new(NULL, NULL));
    assert_rc(AMB_EBADARG,
              amb__stack_pool_new(&(amb__stack_config){.stack_size = (size_t)512 << 20},
                                  &pool));
    assert_rc(AMB_EBADARG,
              amb__stack_pool_new(&(amb__stack_config){.stack_size = 2 * page}, &pool));
    assert_rc(AMB_EBADARG,
              amb__stack_pool_new(&(amb__stack_config){.cache_max = 1}, &pool));
    assert_null(pool); /* a call that fails did nothing */

    /* An odd size is rounded up to whole pages. */
    assert_ok(
        amb__stack_pool_new(&(amb__stack_config){.stack_size = 5 * page - 100}, &pool));
    amb__stack_cache c;
    amb__stack *s = NULL;
    amb__stack_cache_init(&c, pool);
    assert_ok(amb__stack_alloc(&c, &s));
    assert_int_equal(s->size, 5 * page - page - AMB__STACK_CANARY);
    amb__stack_free(&c, s);
    amb__stack_cache_term(&c);
    amb__stack_pool_free(pool);
}

AMB_TEST(stack_cache_reuses_without_syscalls)
{
    amb__stack_pool *pool;
    amb__stack_cache c;
    amb__stack *a = NULL, *b = NULL;
    amb__stack_stats before, after;

    assert_ok(amb__stack_pool_new(NULL, &pool));
    amb__stack_cache_init(&c, pool);
    assert_ok(amb__stack_alloc(&c, &a));
    poke(top_word(a), 77);
    amb__stack_pool_stats(pool, &before);
    for (int i = 0; i < 100000; i++) {
        amb__stack_free(&c, a);
        assert_ok(amb__stack_alloc(&c, &b));
        assert_ptr_equal(a, b); /* LIFO: the hottest stack comes back */
    }
    amb__stack_pool_stats(pool, &after);
    assert_int_equal(after.madvise_calls, before.madvise_calls);
    assert_int_equal(after.carved, before.carved);
    assert_true(peek(top_word(a)) == 77); /* a cached stack keeps its memory */
    amb__stack_free(&c, a);
    amb__stack_cache_term(&c);
    amb__stack_pool_free(pool);
}

/* ---- memory goes back to the OS ---- */

AMB_TEST(stack_shared_pool_releases_memory)
{
    enum { N = 1024, WARM = 16 };
    amb__stack_pool *pool;
    amb__stack_cache c;
    amb__stack *s[N];
    amb__stack_stats st;

    assert_ok(amb__stack_pool_new(&(amb__stack_config){.cache_max = 8, .warm_max = WARM},
                                  &pool));
    amb__stack_cache_init(&c, pool);
    long base = rss_checked();
    for (int i = 0; i < N; i++) {
        assert_ok(amb__stack_alloc(&c, &s[i]));
        fill(s[i]->lo, s[i]->size, 0xAB);
    }
    long full = rss_checked();
    long used = full - base;
    assert_true(used >= (long)N * 60 * 9 / 10); /* about 60 KiB each */

    for (int i = 0; i < N; i++)
        amb__stack_free(&c, s[i]);
    amb__stack_cache_term(&c);
    long after = rss_checked();
    amb__stack_pool_stats(pool, &st);
    assert_int_equal(st.shared_warm, WARM);
    assert_int_equal(st.shared_cold, N - WARM);
    print_message("shared pool: %d stacks filled: +%ld KiB RSS; after free: +%ld KiB\n",
                  N, used, after - base);
    /* What stays: the warm stacks' top pages, and noise. */
    assert_true(after - base <= used / 10);

    /* Reused, they read as zero: all of a cold stack, all but the top page
     * of a warm one. */
    int top_kept = 0;
    for (int i = 0; i < N; i++) {
        assert_ok(amb__stack_alloc(&c, &s[i]));
        assert_true(peek(s[i]->lo) == 0);
        assert_true(peek(s[i]->lo + s[i]->size / 2) == 0);
        top_kept += peek(top_word(s[i])) != 0;
    }
    assert_int_equal(top_kept, WARM);
    for (int i = 0; i < N; i++)
        amb__stack_free(&c, s[i]);
    amb__stack_cache_term(&c);
    amb__stack_pool_free(pool);
}

AMB_TEST(stack_million_stacks_few_maps_rss_returns)
{
    const size_t n = 1000000;
    amb__stack_pool *pool;
    amb__stack_cache c;
    amb__stack_stats st;
    amb__stack **s = calloc(n, sizeof *s);
    assert_non_null(s);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    long base_rss = rss_checked();
    long base_maps = map_count();
    assert_ok(amb__stack_pool_new(NULL, &pool));
    amb__stack_cache_init(&c, pool);

    /* Each stack gets what a process blocked in receive has: its top page
     * written. */
    for (size_t i = 0; i < n; i++) {
        assert_ok(amb__stack_alloc(&c, &s[i]));
        poke(top_word(s[i]), i + 1);
    }
    long peak_rss = rss_checked();
    long peak_maps = map_count();
    amb__stack_pool_stats(pool, &st);

    for (size_t i = 0; i < n; i++) {
        if (peek(top_word(s[i])) != i + 1)
            fail_msg("stack %zu lost its word", i);
        amb__stack_free(&c, s[i]);
    }
    amb__stack_cache_term(&c);
    long freed_rss = rss_checked();
    long freed_maps = map_count();
    amb__stack_stats st2;
    amb__stack_pool_stats(pool, &st2);
    amb__stack_pool_free(pool);
    free(s);
    long final_rss = rss_checked();

    print_message("%zu stacks: %zu regions, %zu guard regions, %zu mprotect guards; maps "
                  "%ld -> %ld (peak) -> %ld; "
                  "RSS +%ld MiB at peak, +%ld MiB after free (%zu madvise calls), "
                  "+%ld MiB after pool_free\n",
                  n, st.regions, st.guard_regions, st.guarded, base_maps, peak_maps,
                  freed_maps, (peak_rss - base_rss) / 1024, (freed_rss - base_rss) / 1024,
                  st2.madvise_calls, (final_rss - base_rss) / 1024);

    /* Bookkeeping: a descriptor per stack and this test's pointer array;
     * TSan shadows every byte of them with four more. */
    long meta_kib = (long)(n * (sizeof(amb__stack) + sizeof(void *)) / 1024) *
                    (AMB__CTX_TSAN ? 5 : 1);
    assert_int_equal(st.carved, n);
    /* Every stack has a guard page where the kernel has guard regions (no
     * mapping each), else the first 4096 have an mprotect one. */
    assert_true(st.guard_regions == n || (st.guard_regions == 0 && st.guarded == 4096));
    /* Every stack really cost a page ... */
    assert_true(peak_rss - base_rss >= (long)(n * page / 1024) * 9 / 10);
    /* ... and only a page: no huge page ever backed a region. */
    assert_true(peak_rss - base_rss <= (long)(n * page / 1024) + meta_kib + 64 * 1024);
    /* A mapping per region (TSan adds a few of its own), two per guard
     * page: far below 65530. */
    assert_true(peak_maps - base_maps <= (long)(4 * st.regions + 2 * st.guarded + 64));
    assert_true(peak_maps < 20000);
    /* After the free: the bookkeeping, warm_max top pages and a cache. */
    assert_true(freed_rss - base_rss <= meta_kib + 32 * 1024);
    /* After pool_free: nothing, give or take malloc's and (under ASan) its
     * quarantine's hold on the freed descriptors. */
    assert_true(final_rss - base_rss <= (AMB__CTX_ASAN ? 64 : 16) * 1024);
}

/* ---- overflow detection ---- */

/* Recurses until its frame is below limit (forever when limit is NULL).
 * Each level writes at least a return address every 16 bytes, as any deep
 * recursion does, so no 64-byte canary can be stepped over. The empty asm
 * after the call keeps the compiler from turning the recursion into a
 * loop. */
__attribute__((noinline, noclone)) static int runaway(char *limit)
{
    char *fp = __builtin_frame_address(0);
    if (limit != NULL && fp < limit)
        return 0;
    int r = runaway(limit);
    __asm__ volatile("" ::: "memory");
    return r + 1;
}

struct dig {
    amb__ctx *main;
    char *limit;
    int depth;
};

static void dig_body(amb__ctx *self, void *arg)
{
    struct dig *d = arg;
    d->depth = runaway(d->limit);
    amb__ctx_exit(self, d->main);
}

AMB_TEST(stack_canary_catches_real_overflow)
{
    amb__stack_pool *pool;
    amb__stack_cache c;
    amb__stack *s = NULL;
    amb__ctx main_ctx = {0}, ctx;

    assert_ok(amb__stack_pool_new(
        &(amb__stack_config){.stack_size = 32 * 1024, .max_guards = AMB__STACK_NO_GUARDS},
        &pool));
    amb__stack_cache_init(&c, pool);
    assert_ok(amb__stack_alloc(&c, &s));
    assert_false(s->flags & AMB__STACK_GUARDED);

    /* Within bounds: 1 KiB above the canary. The check passes. */
    struct dig d = {.main = &main_ctx, .limit = s->lo + 1024};
    amb__ctx_make(&ctx, s->lo, s->size, dig_body, &d);
    amb__ctx_switch(&main_ctx, &ctx);
    amb__ctx_destroy(&ctx);
    assert_true(d.depth > 100);
    assert_true(amb__stack_intact(s));

    /* Through the canary, 1 KiB into the red zone below it (this slot's
     * own page, so nothing else is hurt). The check catches it. */
    d = (struct dig){.main = &main_ctx, .limit = s->lo - AMB__STACK_CANARY - 1024};
    amb__ctx_make(&ctx, s->lo, s->size, dig_body, &d);
    amb__ctx_switch(&main_ctx, &ctx);
    amb__ctx_destroy(&ctx);
    assert_false(amb__stack_intact(s));

    /* amb__stack_check (what the scheduler calls) panics on it. */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(3);
        amb__stack_check(s);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);

    /* The test repairs the canary by hand, or free would panic too. */
    fill(s->lo - AMB__STACK_CANARY, AMB__STACK_CANARY, 0);
    assert_true(amb__stack_intact(s));
    amb__stack_free(&c, s);
    amb__stack_cache_term(&c);
    amb__stack_pool_free(pool);
}

AMB_TEST(stack_guard_page_stops_runaway_recursion)
{
    amb__stack_pool *pool;
    amb__stack_cache c;
    amb__stack *s = NULL;

    assert_ok(amb__stack_pool_new(NULL, &pool));
    amb__stack_cache_init(&c, pool);
    assert_ok(amb__stack_alloc(&c, &s));
    assert_true(s->flags & AMB__STACK_GUARDED);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        amb__ctx main_ctx = {0}, ctx;
        struct dig d = {.main = &main_ctx, .limit = NULL};
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(3);
        amb__ctx_make(&ctx, s->lo, s->size, dig_body, &d);
        amb__ctx_switch(&main_ctx, &ctx);
        _exit(0); /* the recursion has no end: never reached */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* Killed by SIGSEGV, or, under a sanitizer, its SEGV report's exit. */
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (WIFSIGNALED(status) && !(AMB__CTX_ASAN || AMB__CTX_TSAN))
        assert_int_equal(WTERMSIG(status), SIGSEGV);

    amb__stack_free(&c, s);
    amb__stack_cache_term(&c);
    amb__stack_pool_free(pool);
}

AMB_TEST(stack_guards_stop_at_budget)
{
    enum { GUARDS = 8, N = 64 };
    amb__stack_pool *pool;
    amb__stack_cache c;
    amb__stack *s[N];
    amb__stack_stats st;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    /* The mprotect guards, as where the kernel has no guard regions. */
    assert_ok(amb__stack_pool_new(
        &(amb__stack_config){.max_guards = GUARDS, .no_guard_regions = true}, &pool));
    amb__stack_cache_init(&c, pool);
    int guarded = 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < N; i++) {
        assert_ok(amb__stack_alloc(&c, &s[i]));
        guarded += (s[i]->flags & AMB__STACK_GUARDED) != 0;
        uintptr_t base = (uintptr_t)s[i]->lo - AMB__STACK_CANARY - page;
        lo = base < lo ? base : lo;
        hi =
            (uintptr_t)s[i]->lo + s[i]->size > hi ? (uintptr_t)s[i]->lo + s[i]->size : hi;
    }
    amb__stack_pool_stats(pool, &st);
    assert_int_equal(st.guarded, GUARDS);
    assert_int_equal(guarded, GUARDS);
    /* Over the stacks' span, each guard is a mapping of its own and splits
     * what is around it: between GUARDS and 2 * GUARDS + 1 mappings. */
    long maps = maps_within(lo, hi);
    assert_true(maps >= GUARDS);
    assert_true(maps <= 2 * GUARDS + 1);
    for (int i = 0; i < N; i++)
        amb__stack_free(&c, s[i]);
    amb__stack_cache_term(&c);
    amb__stack_pool_free(pool);
    /* Unmapped with the pool. */
    assert_int_equal(maps_within(lo, hi), 0);
}

/* ---- threads ---- */

#define NTHREADS 4
#define BAG      64

struct shared {
    amb__stack_pool *pool;
    pthread_mutex_t mu;
    amb__stack *bag[BAG]; /* stacks in transit between threads */
    int nbag;
    long ops;
};

struct worker {
    struct shared *sh;
    int id;
    long bad;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    amb__stack_cache c;
    amb__stack *mine[8];

    amb__stack_cache_init(&c, sh->pool);
    for (long op = 0; op < sh->ops; op++) {
        /* Take a few, stamp both ends with a token only we know. */
        uint64_t token = ((uint64_t)w->id << 48) | (uint64_t)op << 8;
        for (int i = 0; i < 8; i++) {
            if (amb__stack_alloc(&c, &mine[i]) != 0)
                w->bad++;
            poke(mine[i]->lo, token + (uint64_t)i);
            poke(top_word(mine[i]), token + (uint64_t)i);
        }
        /* Nobody else wrote them meanwhile. */
        for (int i = 0; i < 8; i++)
            if (peek(mine[i]->lo) != token + (uint64_t)i ||
                peek(top_word(mine[i])) != token + (uint64_t)i)
                w->bad++;
        /* Half go back to our cache, half to another thread's. */
        for (int i = 0; i < 4; i++)
            amb__stack_free(&c, mine[i]);
        pthread_mutex_lock(&sh->mu);
        amb__stack *theirs[4];
        int got = 0;
        for (int i = 4; i < 8; i++) {
            if (sh->nbag == BAG)
                theirs[got++] = sh->bag[--sh->nbag];
            sh->bag[sh->nbag++] = mine[i];
        }
        pthread_mutex_unlock(&sh->mu);
        for (int i = 0; i < got; i++)
            amb__stack_free(&c, theirs[i]);
    }
    amb__stack_cache_term(&c);
    return NULL;
}

AMB_TEST(stack_threads_share_one_pool)
{
    struct shared sh = {.ops = 5000 / SCALE_DOWN};
    struct worker w[NTHREADS];
    pthread_t t[NTHREADS];
    amb__stack_stats st;

    /* A small cache and few warm places: most frees go through the shared
     * pool and madvise. */
    assert_ok(amb__stack_pool_new(&(amb__stack_config){.cache_max = 4, .warm_max = 8},
                                  &sh.pool));
    pthread_mutex_init(&sh.mu, NULL);
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){.sh = &sh, .id = i + 1};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].bad, 0);
    }
    /* Whatever is left in transit goes back through one more cache. */
    amb__stack_cache c;
    amb__stack_cache_init(&c, sh.pool);
    while (sh.nbag > 0)
        amb__stack_free(&c, sh.bag[--sh.nbag]);
    amb__stack_cache_term(&c);
    amb__stack_pool_stats(sh.pool, &st);
    assert_int_equal(st.shared_warm + st.shared_cold, st.carved);
    assert_true(st.madvise_calls > 0);
    pthread_mutex_destroy(&sh.mu);
    amb__stack_pool_free(sh.pool);
}

AMB_TEST(stack_pool_free_with_stack_out_panics)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        amb__stack_pool *pool;
        amb__stack_cache c;
        amb__stack *s = NULL;
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(3);
        if (amb__stack_pool_new(NULL, &pool) != 0)
            _exit(4);
        amb__stack_cache_init(&c, pool);
        if (amb__stack_alloc(&c, &s) != 0)
            _exit(5);
        amb__stack_cache_term(&c);
        amb__stack_pool_free(pool); /* s is still out */
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(stack_layout_and_disjoint),
              AMB_TEST_ENTRY(stack_config_validation),
              AMB_TEST_ENTRY(stack_cache_reuses_without_syscalls),
              AMB_TEST_ENTRY(stack_shared_pool_releases_memory),
              AMB_TEST_ENTRY(stack_million_stacks_few_maps_rss_returns),
              AMB_TEST_ENTRY(stack_canary_catches_real_overflow),
              AMB_TEST_ENTRY(stack_guard_page_stops_runaway_recursion),
              AMB_TEST_ENTRY(stack_guards_stop_at_budget),
              AMB_TEST_ENTRY(stack_threads_share_one_pool),
              AMB_TEST_ENTRY(stack_pool_free_with_stack_out_panics))

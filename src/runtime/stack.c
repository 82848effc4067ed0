/*
 * stack.c - the stack allocator declared in stack.h: regions, carving,
 * guard pages, the shared pool and the per-thread caches' slow paths.
 *
 * Invariants:
 *   - Every slot of every region is in exactly one of: not yet carved
 *     (region->carved <= its index), allocated (flags without FREE), in a
 *     cache (FREE, linked from that cache), or in the shared pool (FREE,
 *     linked from pool->warm or pool->cold). pool_free checks that all
 *     carved stacks are back in the shared pool.
 *   - A stack in pool->cold has no page resident (MADV_DONTNEED over its
 *     canary page and usable range); one in pool->warm may have only its
 *     top page resident. A stack's canary is zero whenever it is free.
 *   - The guard page of a slot is decided when the slot is carved and never
 *     changes until the region is unmapped: a guard region where the kernel
 *     has them, else an mprotect guard while the budgets last;
 *     pool->guarded counts the mprotect ones and is returned to the
 *     process-wide budget by pool_free.
 *   - Under pool->lock: warm, cold, nwarm, ncold, warm_reserved, regions,
 *     carved, guarded, guard_regions, madvise_calls. Immutable after
 *     pool_new: page, slot, usable, region_slots, max_guards,
 *     use_guard_regions, cache_max, warm_max. Caches are their owners'
 *     alone.
 *
 * madvise runs outside the lock (it is a syscall with a TLB shootdown, and
 * other schedulers should not wait for it). The lock is taken twice per
 * flush: once to reserve room on the warm list, once to publish the batch.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/ctx.h"
#include "runtime/stack.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; older headers lack it */
#endif

#define DEFAULT_STACK_SIZE  ((size_t)64 * 1024)
#define DEFAULT_REGION_SIZE ((size_t)1 << 30)
#define DEFAULT_MAX_GUARDS  ((size_t)4096)
#define DEFAULT_CACHE_MAX   ((size_t)64)
#define DEFAULT_WARM_MAX    ((size_t)256)
#define MAX_STACK_SIZE      ((size_t)256 << 20)
#define MIN_REGION_SLOTS    ((size_t)16)
/* Stacks handled per madvise pass (the flush sorts them on the stack). */
#define FLUSH_CHUNK 512

struct region {
    char *base;
    size_t carved;     /* slots [0, carved) have descriptors in use */
    amb__stack *descs; /* one per slot */
};

struct amb__stack_pool {
    pthread_mutex_t lock;
    /* Immutable after amb__stack_pool_new. */
    size_t page;         /* the OS page size */
    size_t slot;         /* bytes per slot: guard page + canary + usable */
    size_t usable;       /* bytes per stack, from lo */
    size_t region_slots; /* slots per region */
    size_t max_guards;
    bool use_guard_regions;
    size_t cache_max;
    size_t warm_max;
    /* Under lock. */
    amb__stack *warm, *cold;
    size_t nwarm, ncold;
    size_t warm_reserved; /* warm places promised to flushes in progress */
    struct region *regions;
    size_t nregions, cap_regions;
    size_t carved, guarded, guard_regions, madvise_calls;
};

/* Guard pages left for the whole OS process: vm.max_map_count is per
 * process, so this is the one piece of global state here. It is only a
 * counter: relaxed order is enough everywhere, because no other memory is
 * published through it (each guard is then made by the thread that took
 * it, under its own pool's lock). */
static _Atomic size_t guard_budget = AMB__STACK_GUARD_BUDGET;

/* Whether the kernel has guard regions: unknown until the first try, then
 * known for good. relaxed: each thread that tries learns the same answer;
 * nothing else is published through it. */
static _Atomic int guard_regions_known; /* 0 unknown, 1 yes, -1 no */

/* Makes the page at base a guard region. False where the kernel has none
 * (remembered), or when it could not make this one (no memory for page
 * tables: the caller falls back to the mprotect guard). */
static bool guard_region(char *base, size_t page)
{
    if (atomic_load_explicit(&guard_regions_known, memory_order_relaxed) < 0)
        return false;
    if (madvise(base, page, MADV_GUARD_INSTALL) == 0) {
        atomic_store_explicit(&guard_regions_known, 1, memory_order_relaxed);
        return true;
    }
    if (errno == EINVAL || errno == ENOSYS)
        atomic_store_explicit(&guard_regions_known, -1, memory_order_relaxed);
    return false;
}

static bool take_guard(void)
{
    /* Relaxed: see guard_budget. A failed CAS reloads and retries. */
    size_t left = atomic_load_explicit(&guard_budget, memory_order_relaxed);
    while (left > 0) {
        if (atomic_compare_exchange_weak_explicit(&guard_budget, &left, left - 1,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

static void give_back_guards(size_t n)
{
    /* Relaxed: see guard_budget. */
    atomic_fetch_add_explicit(&guard_budget, n, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------
 * Guard faults: a clear message instead of a bare SIGSEGV
 *
 * A process that runs into its stack's guard page faults there. Where the
 * program has no SIGSEGV handler of its own (and no sanitizer, which has
 * its own report), making a pool installs one that runs on the alternate
 * signal stack of a scheduler thread (amb__stack_altstack_on): if the
 * faulting address is a guard page of one of our regions, it writes one
 * line naming the overflow to stderr; in any case it restores the default
 * action and returns, so the fault repeats and ends the OS process as it
 * would have. The regions are found through a fixed table written under
 * the pools' locks and read by the handler with acquire loads (nothing in
 * it may lock or allocate).
 * ------------------------------------------------------------------------ */

#define FAULT_REGIONS 1024 /* regions the handler knows (1 TiB of stacks) */

static struct {
    _Atomic uintptr_t base; /* 0: a free entry */
    size_t bytes, slot, page;
} fault_regions[FAULT_REGIONS];

/* Under the pool's lock: the handler learns about a new region. A region
 * beyond the table's room still works; its guard faults go unexplained. */
static void fault_region_add(const amb__stack_pool *p, char *base, size_t bytes)
{
    for (size_t i = 0; i < FAULT_REGIONS; i++) {
        uintptr_t none = 0;
        if (atomic_load_explicit(&fault_regions[i].base, memory_order_relaxed) != 0)
            continue;
        fault_regions[i].bytes = bytes;
        fault_regions[i].slot = p->slot;
        fault_regions[i].page = p->page;
        /* release: the entry's other fields are visible to a handler that
         * sees the base (its acquire load). The CAS keeps two pools from
         * taking one entry. */
        if (atomic_compare_exchange_strong_explicit(&fault_regions[i].base, &none,
                                                    (uintptr_t)base, memory_order_release,
                                                    memory_order_relaxed))
            return;
    }
}

static void fault_region_remove(char *base)
{
    for (size_t i = 0; i < FAULT_REGIONS; i++) {
        uintptr_t b = (uintptr_t)base;
        /* relaxed: the region is about to be unmapped, no fault can be in
         * it any more; the entry only becomes free for reuse. */
        if (atomic_compare_exchange_strong_explicit(&fault_regions[i].base, &b, 0,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed))
            return;
    }
}

/* True when addr is the guard page (or red zone) of a slot we carved. */
static bool is_guard(uintptr_t addr)
{
    for (size_t i = 0; i < FAULT_REGIONS; i++) {
        /* acquire: pairs with fault_region_add's release. */
        uintptr_t base =
            atomic_load_explicit(&fault_regions[i].base, memory_order_acquire);
        if (base != 0 && addr >= base && addr - base < fault_regions[i].bytes)
            return (addr - base) % fault_regions[i].slot < fault_regions[i].page;
    }
    return false;
}

static void put(char **out, const char *s)
{
    while (*s != '\0')
        *(*out)++ = *s++;
}

static void on_fault(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (is_guard(addr)) {
        char line[200], *o = line;
        put(&o, "ambitious: stack overflow: a process ran into the guard page below "
                "its stack at 0x");
        for (int shift = 60; shift >= 0; shift -= 4)
            *o++ = "0123456789abcdef"[(addr >> shift) & 15];
        put(&o, " (raise the stack size, or recurse less)\n");
        (void)!write(2, line, (size_t)(o - line));
    }
    /* The fault repeats with the default action: the OS process ends as it
     * would have without us. */
    signal(sig, SIG_DFL);
}

static void install_fault_handler(void)
{
    if (AMB__CTX_ASAN || AMB__CTX_TSAN)
        return; /* their own handlers report the overflow */
    struct sigaction old;
    if (sigaction(SIGSEGV, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
        old.sa_handler != SIG_DFL)
        return; /* the program handles SIGSEGV itself */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
}

void amb__stack_altstack_on(amb__stack_altstack *a)
{
    stack_t cur;
    a->mem = NULL;
    if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
        return; /* the thread has one already: it serves */
    long min = sysconf(_SC_SIGSTKSZ);
    size_t size = min > 65536 ? (size_t)min : 65536;
    void *mem =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return; /* then a guard fault ends the OS process unexplained */
    stack_t ss = {.ss_sp = mem, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, size);
        return;
    }
    a->mem = mem;
    a->size = size;
}

void amb__stack_altstack_off(amb__stack_altstack *a)
{
    if (a->mem == NULL)
        return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(a->mem, a->size);
    a->mem = NULL;
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* The first byte of s's slot (its guard page). */
static char *slot_base(const amb__stack_pool *p, const amb__stack *s)
{
    return s->lo - AMB__STACK_CANARY - p->page;
}

int amb__stack_pool_new(const amb__stack_config *cfg, amb__stack_pool **out)
{
    amb__stack_config c = cfg ? *cfg : (amb__stack_config){0};
    long ps = sysconf(_SC_PAGESIZE);
    size_t page = ps > 0 ? (size_t)ps : 4096;

    if (out == NULL)
        return AMB__MISUSE();
    /* With 16 KiB pages the default is still 4 pages; with 64 KiB pages
     * (some arm64 kernels) it grows to the 4-page minimum. */
    if (c.stack_size == 0)
        c.stack_size = DEFAULT_STACK_SIZE > 4 * page ? DEFAULT_STACK_SIZE : 4 * page;
    if (c.region_size == 0)
        c.region_size = DEFAULT_REGION_SIZE;
    bool no_guards = c.max_guards == AMB__STACK_NO_GUARDS;
    if (c.max_guards == 0)
        c.max_guards = DEFAULT_MAX_GUARDS;
    else if (no_guards)
        c.max_guards = 0;
    if (c.cache_max == 0)
        c.cache_max = DEFAULT_CACHE_MAX;
    if (c.warm_max == 0)
        c.warm_max = DEFAULT_WARM_MAX;
    else if (c.warm_max == SIZE_MAX)
        c.warm_max = 0;
    if (c.stack_size > MAX_STACK_SIZE || c.cache_max < 2 ||
        c.region_size > ((size_t)1 << 46))
        return AMB__MISUSE();
    c.stack_size = round_up(c.stack_size, page);
    if (c.stack_size < 4 * page)
        return AMB__MISUSE();
    if (c.region_size < MIN_REGION_SLOTS * c.stack_size)
        c.region_size = MIN_REGION_SLOTS * c.stack_size;
    c.region_size = round_up(c.region_size, c.stack_size);

    amb__stack_pool *p = amb__calloc(1, sizeof *p);
    if (p == NULL)
        return AMB_ENOMEM;
    install_fault_handler(); /* no-op when ours or another one is there */
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        amb__free(p);
        return AMB_ENOMEM;
    }
    p->page = page;
    p->slot = c.stack_size;
    p->usable = c.stack_size - page - AMB__STACK_CANARY;
    p->region_slots = c.region_size / c.stack_size;
    p->max_guards = c.max_guards;
    p->use_guard_regions = !no_guards && !c.no_guard_regions;
    p->cache_max = c.cache_max;
    p->warm_max = c.warm_max;
    *out = p;
    return 0;
}

void amb__stack_pool_free(amb__stack_pool *p)
{
    if (p == NULL)
        return;
    /* A stack not back in the pool is in use or in a live cache: unmapping
     * it would pull the memory from under a process. */
    if (p->nwarm + p->ncold != p->carved)
        amb__panic("stack pool freed with %zu of %zu stacks still out",
                   p->carved - p->nwarm - p->ncold, p->carved);
    for (size_t i = 0; i < p->nregions; i++) {
        fault_region_remove(p->regions[i].base);
        munmap(p->regions[i].base, p->region_slots * p->slot);
        amb__free(p->regions[i].descs);
    }
    give_back_guards(p->guarded);
    amb__free(p->regions);
    pthread_mutex_destroy(&p->lock);
    amb__free(p);
}

void amb__stack_pool_stats(amb__stack_pool *p, amb__stack_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = (amb__stack_stats){
        .regions = p->nregions,
        .reserved = p->nregions * p->region_slots * p->slot,
        .stack_size = p->usable,
        .carved = p->carved,
        .guarded = p->guarded,
        .guard_regions = p->guard_regions,
        .shared_warm = p->nwarm,
        .shared_cold = p->ncold,
        .madvise_calls = p->madvise_calls,
    };
    pthread_mutex_unlock(&p->lock);
}

/* Under lock. Reserves one more region. */
static int add_region(amb__stack_pool *p)
{
    size_t bytes = p->region_slots * p->slot;

    if (p->nregions == p->cap_regions) {
        size_t cap = p->cap_regions ? p->cap_regions * 2 : 8;
        struct region *r = amb__realloc(p->regions, cap * sizeof *r);
        if (r == NULL)
            return AMB_ENOMEM;
        p->regions = r;
        p->cap_regions = cap;
    }
    amb__stack *descs = amb__calloc(p->region_slots, sizeof *descs);
    if (descs == NULL)
        return AMB_ENOMEM;
    /* MAP_NORESERVE: address space only; pages are counted when touched.
     * MAP_STACK says what it is for (newer kernels then also avoid huge
     * pages), MADV_NOHUGEPAGE says it for older ones. */
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) {
        amb__free(descs);
        return AMB_ENOMEM;
    }
    (void)madvise(m, bytes, MADV_NOHUGEPAGE); /* fails only without THP */
    fault_region_add(p, m, bytes);
    p->regions[p->nregions++] = (struct region){.base = m, .carved = 0, .descs = descs};
    return 0;
}

/* Under lock. A descriptor for a never-used slot, or NULL when no region
 * can be reserved. */
static amb__stack *carve(amb__stack_pool *p)
{
    struct region *r = p->nregions ? &p->regions[p->nregions - 1] : NULL;

    if (r == NULL || r->carved == p->region_slots) {
        if (add_region(p) != 0)
            return NULL;
        r = &p->regions[p->nregions - 1];
    }
    size_t i = r->carved++;
    char *base = r->base + i * p->slot;
    amb__stack *s = &r->descs[i];
    s->next = NULL;
    s->lo = base + p->page + AMB__STACK_CANARY;
    s->size = (uint32_t)p->usable;
    s->flags = 0;
    /* A guard region costs no mapping. An mprotect guard splits the
     * region's mapping; when the process has no maps left (ENOMEM) the slot
     * simply goes without. */
    if (p->use_guard_regions && guard_region(base, p->page)) {
        s->flags |= AMB__STACK_GUARDED;
        p->guard_regions++;
    } else if (p->guarded < p->max_guards && take_guard()) {
        if (mprotect(base, p->page, PROT_NONE) == 0) {
            s->flags |= AMB__STACK_GUARDED;
            p->guarded++;
        } else {
            give_back_guards(1);
        }
    }
    p->carved++;
    return s;
}

int amb__stack_refill(amb__stack_cache *c)
{
    amb__stack_pool *p = c->pool;
    size_t want = c->max / 4 ? c->max / 4 : 1;
    amb__stack *head = NULL, **tail = &head;
    size_t n = 0;

    /* The batch is linked in the order taken, so fresh stacks are handed
     * out in address order: neighbours then tend to be freed together and
     * their madvise calls merge. */
    pthread_mutex_lock(&p->lock);
    while (n < want && (p->warm != NULL || p->cold != NULL)) {
        amb__stack *s;
        if (p->warm != NULL) {
            s = p->warm;
            p->warm = s->next;
            p->nwarm--;
        } else {
            s = p->cold;
            p->cold = s->next;
            p->ncold--;
        }
        *tail = s;
        tail = &s->next;
        n++;
    }
    while (n < want) {
        amb__stack *s = carve(p);
        if (s == NULL)
            break;
        s->flags |= AMB__STACK_FREE;
        *tail = s;
        tail = &s->next;
        n++;
    }
    pthread_mutex_unlock(&p->lock);
    if (n == 0)
        return AMB_ENOMEM;
    /* The cache is empty on the alloc path, but keep whatever is there. */
    *tail = c->head;
    c->head = head;
    c->count += n;
    return 0;
}

static void dontneed(char *from, char *to, size_t *calls)
{
    /* Failure (EINVAL under mlockall, say) only leaves memory resident:
     * the stack is still correct to reuse, so it is not an error. */
    (void)madvise(from, (size_t)(to - from), MADV_DONTNEED);
    (*calls)++;
}

/* Returns n stacks (linked through next, all FREE) to the shared pool,
 * releasing their memory first. No lock held on entry. */
static int by_address(const void *a, const void *b)
{
    const char *x = (*(amb__stack *const *)a)->lo, *y = (*(amb__stack *const *)b)->lo;
    return (x > y) - (x < y);
}

/* Chunks are large (FLUSH_CHUNK) so that neighbours merge into one
 * MADV_DONTNEED: each call is a TLB shootdown on every CPU, which showed as
 * a third of the time of a million processes exiting. */
static void give_to_pool(amb__stack_pool *p, amb__stack *list, size_t n)
{
    while (list != NULL) {
        amb__stack *chunk[FLUSH_CHUNK];
        size_t k = 0;
        while (list != NULL && k < FLUSH_CHUNK) {
            chunk[k++] = list;
            list = list->next;
        }
        n -= k;

        pthread_mutex_lock(&p->lock);
        size_t room = p->warm_max > p->nwarm + p->warm_reserved
                          ? p->warm_max - p->nwarm - p->warm_reserved
                          : 0;
        size_t w = room < k ? room : k;
        p->warm_reserved += w;
        pthread_mutex_unlock(&p->lock);

        size_t calls = 0;
        /* The first w keep their top page: everything from the canary page
         * up to it goes (a stack smaller than two pages has nothing to
         * give). */
        for (size_t i = 0; i < w; i++) {
            char *from = chunk[i]->lo - AMB__STACK_CANARY;
            char *to = slot_base(p, chunk[i]) + p->slot - p->page;
            if (to > from)
                dontneed(from, to, &calls);
        }
        /* The rest go cold: everything but the guard page. Sorted by
         * address, neighbours merge into one call (a guard page in the
         * middle of a run is harmless to MADV_DONTNEED). */
        amb__stack **cold = chunk + w;
        size_t nc = k - w;
        qsort(cold, nc, sizeof *cold, by_address);
        for (size_t i = 0; i < nc;) {
            size_t j = i + 1;
            while (j < nc && cold[j]->lo == cold[j - 1]->lo + p->slot)
                j++;
            dontneed(cold[i]->lo - AMB__STACK_CANARY, slot_base(p, cold[j - 1]) + p->slot,
                     &calls);
            i = j;
        }

        pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < w; i++) {
            chunk[i]->next = p->warm;
            p->warm = chunk[i];
        }
        for (size_t i = 0; i < nc; i++) {
            cold[i]->next = p->cold;
            p->cold = cold[i];
        }
        p->warm_reserved -= w;
        p->nwarm += w;
        p->ncold += nc;
        p->madvise_calls += calls;
        pthread_mutex_unlock(&p->lock);
    }
    AMB__CHECK(n == 0);
}

void amb__stack_flush(amb__stack_cache *c)
{
    /* Keep the most recently freed half (their pages are the warmest in
     * the CPU caches and the TLB), give away the older rest. */
    size_t keep = c->max / 2;
    amb__stack *s = c->head;
    for (size_t i = 1; i < keep; i++)
        s = s->next;
    amb__stack *rest = keep ? s->next : c->head;
    size_t n = c->count - keep;
    if (keep)
        s->next = NULL;
    else
        c->head = NULL;
    c->count = keep;
    give_to_pool(c->pool, rest, n);
}

void amb__stack_cache_init(amb__stack_cache *c, amb__stack_pool *pool)
{
    *c = (amb__stack_cache){
        .head = NULL, .count = 0, .max = pool->cache_max, .pool = pool};
}

void amb__stack_cache_term(amb__stack_cache *c)
{
    amb__stack *list = c->head;
    size_t n = c->count;

    c->head = NULL;
    c->count = 0;
    give_to_pool(c->pool, list, n);
}

_Noreturn void amb__stack_overflowed(const amb__stack *s)
{
    amb__panic("stack overflow: the canary below the stack [%p, %p) was overwritten "
               "(raise the stack size, or recurse less)",
               (void *)s->lo, (void *)(s->lo + s->size));
}

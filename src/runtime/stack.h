/*
 * stack.h - stacks for stackful processes: carved from large reserved
 * regions, cached per scheduler, shared through one pool, checked for
 * overflow at every switch (DESIGN §2 "Stacks"; docs/design/stacks.md has
 * the numbers and the trade-offs).
 *
 * One stack is one slot of a region; every slot of a pool has the same size
 * (a pool is one size class: a runtime that wants several sizes makes
 * several pools):
 *
 *   base                base+page      lo                        lo+size
 *   |  guard page       | canary (64 B)| usable stack, grows down <--- |
 *   |  PROT_NONE, or an |  must stay   |  (the process's frames; only  |
 *   |  unused red zone  |  all zero    |   touched pages cost RSS)     |
 *
 *   - Regions are single mmap(MAP_NORESERVE) reservations of 1 GiB (by
 *     default), so a million stacks cost 64 mappings, not a million
 *     (vm.max_map_count is 65530), and no memory until touched.
 *     MADV_NOHUGEPAGE keeps a touched page from becoming a 2 MiB huge page
 *     shared by 32 stacks.
 *   - Every stack gets a guard page where the kernel has guard regions
 *     (madvise(MADV_GUARD_INSTALL), Linux 6.13): page-table entries that
 *     fault on access, in the region's one mapping, so they cost no
 *     mapping and survive MADV_DONTNEED. Elsewhere the guard page is
 *     mprotect(PROT_NONE) only for the first max_guards stacks a pool
 *     carves, under a process-wide budget: each such guard splits a mapping
 *     in three. Other stacks have an ordinary, never-touched red zone
 *     there instead, which soaks up a small overflow before it reaches the
 *     neighbour below.
 *   - The canary is the 64 bytes just below lo. Nobody writes them, so they
 *     read as zero, and cost nothing: they sit on a page that is never
 *     touched unless the stack is nearly full, and a read maps the kernel's
 *     shared zero page. A non-zero byte there means the process overflowed
 *     (its frames, return addresses first, crossed lo). The scheduler calls
 *     amb__stack_check() each time a task on an unguarded stack switches
 *     back to it, in every build (docs/design/stacks.md, "Overflow").
 *   - Descriptors (struct amb__stack, 24 bytes) live outside the stacks, in
 *     one array per region, so a free stack keeps no page resident.
 *
 * Who owns what:
 *   - An amb__stack_cache belongs to one scheduler thread at a time and is
 *     never locked; it is passed explicitly (no thread-local lookups, since
 *     a process that frees its stack may have migrated). A stack may be
 *     freed into any cache, not only the one that gave it out.
 *   - The pool's shared free lists, its regions and its counters are under
 *     its mutex. Slow paths take it once per batch of stacks.
 *   - A stack given out by amb__stack_alloc belongs to the caller until
 *     amb__stack_free; its descriptor fields are read-only to the caller.
 *
 * Memory: a cache keeps at most cache_max stacks as they are (hot, with
 * whatever pages their last process touched). Beyond that it gives the
 * older half to the shared pool, which first returns their memory to the
 * OS with madvise(MADV_DONTNEED): all but the top page for the first
 * warm_max stacks in the pool (a process that needs only one page then
 * starts without a page fault), everything for the rest. So after a
 * million processes exit, RSS is back to the baseline plus the caches,
 * warm_max pages and the descriptors.
 */
#ifndef AMB_RUNTIME_STACK_H
#define AMB_RUNTIME_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Bytes of canary just below a stack's lo. */
#define AMB__STACK_CANARY 64

/* amb__stack_config.max_guards: no guard pages at all. */
#define AMB__STACK_NO_GUARDS SIZE_MAX

/* Guard pages for the whole OS process, all pools together: 8192 guards
 * split mappings into about 16k more, a quarter of vm.max_map_count's
 * default 65530, leaving the rest to malloc, libraries and thread stacks. */
#define AMB__STACK_GUARD_BUDGET 8192

typedef struct amb__stack amb__stack;
struct amb__stack {
    amb__stack *next; /* free-list link; meaningful only while free */
    char *lo;         /* lowest usable byte; the canary is just below */
    uint32_t size;    /* usable bytes: the stack is [lo, lo+size) */
    uint32_t flags;   /* AMB__STACK_* below; owned by the pool */
};

#define AMB__STACK_GUARDED 1u /* the page below the canary faults on access */
#define AMB__STACK_FREE    2u /* in a cache or the shared pool */

typedef struct amb__stack_pool amb__stack_pool;

/* Zero in any field means its default. */
typedef struct amb__stack_config {
    size_t stack_size;     /* address space per stack, guard page included:
                              0 = 64 KiB (4 pages if more); rounded up to whole
                              pages; at least 4 pages, at most 256 MiB */
    size_t region_size;    /* bytes per reservation: 0 = 1 GiB; rounded up to
                              whole stacks; at least 16 stacks */
    size_t max_guards;     /* stacks of this pool that get an mprotect guard
                              page (where guard regions are not to be had),
                              while the process-wide budget lasts: 0 = 4096;
                              AMB__STACK_NO_GUARDS = no guard of any kind */
    bool no_guard_regions; /* never use guard regions (tests of the
                              mprotect fallback) */
    size_t cache_max;      /* stacks a per-thread cache keeps: 0 = 64; >= 2 */
    size_t warm_max;       /* stacks the shared pool keeps with their top page
                              resident: 0 = 256; SIZE_MAX = none */
} amb__stack_config;

/* What a pool holds now (tests and benchmarks read it). */
typedef struct amb__stack_stats {
    size_t regions;       /* reservations made */
    size_t reserved;      /* bytes of address space reserved */
    size_t stack_size;    /* usable bytes per stack */
    size_t carved;        /* stacks ever carved (descriptors in use) */
    size_t guarded;       /* carved stacks with an mprotect guard page */
    size_t guard_regions; /* carved stacks with a guard region */
    size_t shared_warm;   /* free in the shared pool, top page resident */
    size_t shared_cold;   /* free in the shared pool, nothing resident */
    size_t madvise_calls; /* MADV_DONTNEED calls made so far */
} amb__stack_stats;

/* A scheduler's private cache. Fields are the cache's own; read none. */
typedef struct amb__stack_cache {
    amb__stack *head;
    size_t count;
    size_t max;
    amb__stack_pool *pool;
} amb__stack_cache;

/* An alternate signal stack for a thread that runs tasks: a fault on a
 * guard page is reported from it (stack.c), since the task's own stack has
 * no room left. on gives the calling thread one unless it has one; off
 * takes back what on gave. Never fail (without one, a guard fault ends the
 * OS process unexplained). */
typedef struct amb__stack_altstack {
    void *mem;
    size_t size;
} amb__stack_altstack;
void amb__stack_altstack_on(amb__stack_altstack *a);
void amb__stack_altstack_off(amb__stack_altstack *a);

/* Makes a pool (cfg may be NULL: all defaults). Reserves nothing yet.
 * Returns 0, AMB_EBADARG for a size out of range, or AMB_ENOMEM. */
int amb__stack_pool_new(const amb__stack_config *cfg, amb__stack_pool **out);

/* Unmaps every region and frees the pool. Every stack must have been
 * freed and every cache terminated (panics otherwise: a stack still in use
 * would be unmapped under a process). NULL is a no-op. */
void amb__stack_pool_free(amb__stack_pool *pool);

/* Any thread, locks the pool briefly. */
void amb__stack_pool_stats(amb__stack_pool *pool, amb__stack_stats *out);

/* Makes c an empty cache over pool. */
void amb__stack_cache_init(amb__stack_cache *c, amb__stack_pool *pool);

/* Gives every stack in c back to the shared pool (memory released as
 * described above). c is empty afterwards and may be used again. */
void amb__stack_cache_term(amb__stack_cache *c);

/* Slow paths of the two inline functions below (stack.c). */
int amb__stack_refill(amb__stack_cache *c);
void amb__stack_flush(amb__stack_cache *c);
_Noreturn void amb__stack_overflowed(const amb__stack *s);

/* Takes a stack: from the cache (a few instructions), else a batch from
 * the shared pool, else newly carved ones. Its canary is intact; its
 * contents are whatever the last user left, or zero. Returns 0 and sets
 * *out, or AMB_ENOMEM when no region can be reserved (nothing changed). */
static inline int amb__stack_alloc(amb__stack_cache *c, amb__stack **out)
{
    amb__stack *s = c->head;

    if (amb__unlikely(s == NULL)) {
        int rc = amb__stack_refill(c);
        if (rc != 0)
            return rc;
        s = c->head;
    }
    c->head = s->next;
    c->count--;
    s->next = NULL;
    s->flags &= ~AMB__STACK_FREE;
    *out = s;
    return 0;
}

/* True when s's canary is intact (all zero). Not seen by TSan: it is a
 * probe, not a data access (only an overflow ever writes there), and TSan
 * would record each read in its shadow memory, a page of RSS per stack
 * that madvise never gives back. */
__attribute__((no_sanitize("thread"))) static inline bool
amb__stack_intact(const amb__stack *s)
{
    const uint64_t *w = (const uint64_t *)(const void *)(s->lo - AMB__STACK_CANARY);
    return (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) == 0;
}

/* Panics, naming the stack, when s's canary is not intact. The scheduler
 * calls it each time a task on an unguarded s switches back to it (the
 * task can only have overflowed while it ran). It cannot be recovered
 * from: the frames that crossed the canary may have written into the stack
 * below. */
static inline void amb__stack_check(const amb__stack *s)
{
    if (amb__unlikely(!amb__stack_intact(s)))
        amb__stack_overflowed(s);
}

/* Returns s to the cache c (any cache of s's pool, on the thread that owns
 * c). s must be allocated and no context may run on it any more (destroy
 * the context first). Panics if s's canary is broken or s is already free. */
static inline void amb__stack_free(amb__stack_cache *c, amb__stack *s)
{
#ifndef NDEBUG
    /* Debug builds only: reading a never-touched canary page costs a page
     * fault per fresh stack (release builds rely on the guard pages). */
    amb__stack_check(s);
#endif
    AMB__CHECK(!(s->flags & AMB__STACK_FREE));
    s->flags |= AMB__STACK_FREE;
    s->next = c->head;
    c->head = s;
    if (amb__unlikely(++c->count > c->max))
        amb__stack_flush(c);
}

#endif /* AMB_RUNTIME_STACK_H */

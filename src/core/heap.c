/*
 * heap.c - term heaps: bump-pointer arenas of word-aligned blocks.
 *
 *   heap -> [current block: used ... | free ]  -> older blocks -> ...
 *            ^top                     ^end
 *
 * Invariants:
 *   - Terms are never freed one by one; reset/free drop them all.
 *   - Every BINARY box on the heap that holds a reference on a shared refbin
 *     is on `offheap` exactly once; reset/free release each reference once.
 *   - Block sizes double up to BLOCK_MAX_WORDS, so n words of terms cost
 *     O(log n) allocations; a request larger than a quarter of a block gets
 *     a block of its own, so one big term does not waste the current block
 *     (a spare block four times the request or more becomes the current
 *     block instead: behind it, the request alone would hold it all).
 *     Blocks of 64 KiB and more are mappings of their own (freed, they go
 *     back to the OS at once); a heap past BIG_HEAP bytes gets blocks of a
 *     huge page each (2 MiB, aligned to one, MADV_HUGEPAGE: measured, a get
 *     in a map of a million keys took 0.7x the time, the TLB missing less),
 *     so its memory is rounded to 2 MiB (a quarter of it at most).
 *   - reset keeps the current block (the largest) and frees the rest, so a
 *     process that resets per message reaches a steady state with no
 *     allocation at all.
 *   - Spare blocks (emptied by a collection, amb__heap_spare) hold no term;
 *     a new block is taken from them, first fit, before one is made, and
 *     amb_heap_collect copies the live terms into them (collect.c). They
 *     count in amb__heap_held (memory the heap holds), not in
 *     amb_heap_size or amb__heap_used (what its terms take).
 *   - In ASan builds the words a reset or rewind drops, when they stay in a
 *     kept block, are poisoned until allocated again (internal.h): a term
 *     read after its scope ended is a report, not old data. Freed blocks
 *     are ASan's own to watch.
 */
#include <sys/mman.h>

#include "term_internal.h"

typedef struct amb__heap_block block;

/* A block of at least MAP_MIN bytes is a mapping of its own (amb__map), as
 * a slab is, not malloc'd: freed, it goes back to the OS at once. From the
 * C library's heap, the blocks a collection freed stayed resident (its
 * mmap threshold rises to the size of a freed block, and the arenas of the
 * scheduler threads keep what they were given back), so a term-state
 * process's memory was whatever its worst moment had been. */
#ifndef MAP_MIN
#define MAP_MIN ((size_t)64 << 10)
#endif

void amb__heap_block_free(block *b)
{
    if (b->mapped != 0) {
        /* ASan's shadow outlives the mapping: the next one at this address
         * (a slab, a stack) must not start poisoned. */
        AMB__UNPOISON(b->base, b->mapped);
        amb__unmap(b->base, b->mapped);
    } else
        amb__free(b);
}

#define BLOCK_MIN_WORDS 64
#define BLOCK_MAX_WORDS ((size_t)1 << 16)
/* A heap past BIG_HEAP bytes gets blocks of a huge page each (2 MiB,
 * aligned, MADV_HUGEPAGE): a big map's random reads then miss the TLB far
 * less (a get at a million keys walks 25 MB). */
#ifndef BIG_HEAP
#define BIG_HEAP ((size_t)8 << 20)
#endif
#define HUGE       ((size_t)2 << 20)
#define HUGE_WORDS ((HUGE - sizeof(block)) / sizeof(uint64_t))
/* The unit a mapped block is rounded up to (the OS rounds to its own page
 * size, a multiple of it). */
#define PAGE ((size_t)4096)

int amb_heap_new(amb_heap **out)
{
    if (out == NULL)
        return AMB__MISUSE();
    amb_heap *h = amb__calloc(1, sizeof *h);
    if (h == NULL)
        return AMB_ENOMEM;
    *out = h;
    return 0;
}

static void release_offheap(amb_heap *h)
{
    for (amb__binary *b = h->offheap; b != NULL; b = b->next)
        amb__refbin_release(b->refc);
    h->offheap = NULL;
}

static void free_chain(block *b)
{
    for (block *next; b != NULL; b = next) {
        next = b->next;
        amb__heap_block_free(b);
    }
}

void amb__heap_release(amb_heap *heap)
{
    release_offheap(heap);
    free_chain(heap->blocks);
    free_chain(heap->spare);
    heap->blocks = heap->spare = NULL;
    heap->top = heap->end = NULL;
    heap->bytes = heap->spare_bytes = 0;
}

void amb__heap_spare(amb_heap *heap, block *b)
{
    AMB__POISON(b->words, b->nwords * sizeof(uint64_t)); /* no term in it */
    b->next = heap->spare;
    heap->spare = b;
    heap->spare_bytes += amb__heap_block_bytes(b);
}

/* A spare block of at least nwords words, its first nwords unpoisoned, or
 * NULL. */
static block *take_spare(amb_heap *h, size_t nwords)
{
    for (block **pp = &h->spare; *pp != NULL; pp = &(*pp)->next) {
        block *b = *pp;
        if (b->nwords >= nwords) {
            *pp = b->next;
            h->spare_bytes -= amb__heap_block_bytes(b);
            AMB__UNPOISON(b->words, nwords * sizeof(uint64_t));
            return b;
        }
    }
    return NULL;
}

void amb_heap_free(amb_heap *heap)
{
    if (heap == NULL)
        return;
    amb__heap_release(heap);
    amb__free(heap);
}

void amb_heap_reset(amb_heap *heap)
{
    if (heap == NULL)
        return;
    release_offheap(heap);
    if (heap->blocks == NULL)
        return; /* a fixed heap: its buffer is the caller's */
    block *keep = heap->blocks;
    free_chain(keep->next);
    free_chain(heap->spare);
    heap->spare = NULL;
    heap->spare_bytes = 0;
    keep->next = NULL;
    heap->blocks = keep;
    heap->top = keep->words;
    heap->end = keep->words + keep->nwords;
    heap->bytes = sizeof(block) + keep->nwords * sizeof(uint64_t);
    AMB__POISON(keep->words, keep->nwords * sizeof(uint64_t));
}

size_t amb_heap_size(const amb_heap *heap)
{
    return heap ? heap->bytes : 0;
}

size_t amb__heap_held(const amb_heap *heap)
{
    return heap->bytes + heap->spare_bytes;
}

size_t amb__heap_used(const amb_heap *heap)
{
    if (heap->blocks == NULL)
        return 0;
    return heap->bytes - (size_t)(heap->end - heap->top) * sizeof(uint64_t);
}

size_t amb__heap_ranges(const amb_heap *heap, amb__range *out, size_t cap)
{
    size_t n = 0;
    for (const block *b = heap->blocks; b != NULL; b = b->next, n++)
        if (n < cap)
            out[n] = (amb__range){b->words, b->words + b->nwords};
    return n;
}

void amb__heap_move(amb_heap *dst, amb_heap *src)
{
    amb__heap_release(dst);
    *dst = *src;
    *src = (amb_heap){0};
}

amb_heap_mark amb_heap_save(const amb_heap *heap)
{
    amb_heap_mark m = {0};
    if (heap == NULL)
        return m;
    m.block_ = heap->blocks;
    m.next_ = heap->blocks ? heap->blocks->next : NULL;
    m.top_ = heap->top;
    m.end_ = heap->end;
    m.offheap_ = heap->offheap;
    m.bytes_ = heap->bytes;
    return m;
}

/* Blocks newer than a mark are the ones in front of the marked block and,
 * behind it, the big-request blocks inserted there since (alloc_slow puts
 * those right behind the current block). One of them, if it is not larger
 * than the smallest block (REWIND_KEEP_WORDS), is kept as the new current block: a scope
 * that is rewound once per message then allocates nothing in the steady state. */
#define REWIND_KEEP_WORDS BLOCK_MIN_WORDS
void amb_heap_rewind(amb_heap *heap, amb_heap_mark mark)
{
    if (heap == NULL)
        return;
    while (heap->offheap != NULL && heap->offheap != mark.offheap_) {
        amb__binary *b = heap->offheap;
        heap->offheap = b->next;
        amb__refbin_release(b->refc);
    }
    block *keep = mark.block_, *spare = NULL;
    for (block *b = heap->blocks, *next; b != NULL && b != keep; b = next) {
        next = b->next;
        if (spare == NULL && b->nwords <= REWIND_KEEP_WORDS)
            spare = b;
        else
            amb__heap_block_free(b);
    }
    if (keep != NULL) {
        for (block *b = keep->next, *next; b != NULL && b != mark.next_; b = next) {
            next = b->next;
            if (spare == NULL && b->nwords <= REWIND_KEEP_WORDS)
                spare = b;
            else
                amb__heap_block_free(b);
        }
        keep->next = mark.next_;
    }
    heap->blocks = keep;
    heap->top = mark.top_;
    heap->end = mark.end_;
    heap->bytes = mark.bytes_;
    if (heap->top != NULL)
        AMB__POISON(heap->top, (size_t)(heap->end - heap->top) * sizeof(uint64_t));
    if (spare != NULL) {
        /* The rest of the marked block is left unused: terms older than the
         * mark may sit right before mark.top_, and the spare is larger. */
        spare->next = keep;
        heap->blocks = spare;
        heap->top = spare->words;
        heap->end = spare->words + spare->nwords;
        heap->bytes += sizeof(block) + spare->nwords * sizeof(uint64_t);
        AMB__POISON(spare->words, spare->nwords * sizeof(uint64_t));
    }
}

block *amb__heap_block_new(size_t want)
{
    if (want > (SIZE_MAX - sizeof(block) - PAGE) / sizeof(uint64_t))
        return NULL;
    size_t bytes = sizeof(block) + want * sizeof(uint64_t), mapped = 0;
    block *b;
    void *base = NULL;
    if (bytes >= HUGE) {
        /* Whole huge pages, aligned to one: the mapping has a huge page
         * more, whose unused head and tail are never touched. */
        size_t size = (bytes + HUGE - 1) & ~(HUGE - 1);
        mapped = size + HUGE;
        base = amb__map(mapped);
        b = base ? (block *)(((uintptr_t)base + HUGE - 1) & ~(uintptr_t)(HUGE - 1))
                 : NULL;
        if (b != NULL)
            (void)madvise(b, size, MADV_HUGEPAGE);
        want = (size - sizeof(block)) / sizeof(uint64_t);
    } else if (bytes >= MAP_MIN) {
        /* Whole pages: the words up to the page's end are the block's too. */
        mapped = (bytes + PAGE - 1) & ~(PAGE - 1);
        base = b = amb__map(mapped);
        want = (mapped - sizeof(block)) / sizeof(uint64_t);
    } else {
        b = amb__malloc(bytes);
    }
    if (b != NULL) {
        b->nwords = want;
        b->mapped = mapped;
        b->base = base;
    }
    return b;
}

void amb__heap_block_trim(block *b, size_t keep)
{
    if (b->mapped == 0)
        return; /* malloc'd: a block of its own size, kept whole */
    /* Up to the end of the page that holds the last kept word: the pages
     * written are resident, whole, and their words are as good as the
     * heap's next ones. For a block of huge pages that is the huge page
     * when what is kept is a big heap's (a quarter of it at most, as the
     * heap's rounding to huge blocks), the small page otherwise, so that a
     * small heap's size stays its terms'. */
    size_t unit = b->mapped > HUGE && keep * sizeof(uint64_t) >= BIG_HEAP ? HUGE : PAGE;
    uintptr_t end = (uintptr_t)(b->words + keep);
    end = (end + unit - 1) & ~(uintptr_t)(unit - 1);
    size_t words = (size_t)((uint64_t *)end - b->words);
    if (words < b->nwords)
        b->nwords = words;
}

static uint64_t *alloc_slow(amb_heap *h, size_t nwords)
{
    size_t last = h->blocks ? h->blocks->nwords : 0;
    size_t grow = last ? last * 2 : BLOCK_MIN_WORDS;
    size_t max = h->bytes >= BIG_HEAP ? HUGE_WORDS : BLOCK_MAX_WORDS;
    if (grow > max)
        grow = max;
    block *b = take_spare(h, nwords);
    if (h->blocks != NULL && nwords > grow / 4 && (b == NULL || b->nwords < 4 * nwords)) {
        /* A big request gets its own block behind the current one (a spare
         * four times its size or more becomes the current block instead:
         * the request would leave most of it unused). */
        if (b == NULL)
            b = amb__heap_block_new(nwords);
        if (b == NULL)
            return NULL;
        b->next = h->blocks->next;
        h->blocks->next = b;
        h->bytes += amb__heap_block_bytes(b);
        return b->words;
    }
    if (grow < nwords)
        grow = nwords;
    if (b == NULL)
        b = amb__heap_block_new(grow);
    if (b == NULL)
        return NULL;
    b->next = h->blocks;
    h->blocks = b;
    h->bytes += amb__heap_block_bytes(b);
    h->top = b->words + nwords;
    h->end = b->words + b->nwords;
    return b->words;
}

uint64_t *amb__heap_alloc_slow(amb_heap *heap, size_t nwords)
{
    if ((size_t)(heap->end - heap->top) >= nwords) {
        uint64_t *p = heap->top;
        heap->top += nwords;
        AMB__UNPOISON(p, nwords * sizeof(uint64_t));
        return p;
    }
    return alloc_slow(heap, nwords);
}

void amb__heap_track_binary(amb_heap *heap, amb__binary *bin)
{
    bin->next = heap->offheap;
    heap->offheap = bin;
}

/*
 * alloc.c - the one allocator hook every allocation of the library goes
 * through (libuv's uv_replace_allocator, SQLite's sqlite3_mem_methods).
 *
 * Invariant: memory is freed through the allocator that gave it. Swapping
 * allocators while memory is held is the caller's contract to avoid (core.h).
 * The hook is read on every allocation without a lock: it is set before the
 * library is used, so a plain read after that happens-before is enough.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

static void *libc_malloc(void *ud, size_t size)
{
    (void)ud;
    return malloc(size);
}
static void *libc_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    return realloc(ptr, size);
}
static void libc_free(void *ud, void *ptr)
{
    (void)ud;
    free(ptr);
}

static void *libc_calloc(void *ud, size_t n, size_t size)
{
    (void)ud;
    return calloc(n, size);
}

static void *os_map(void *ud, size_t size)
{
    (void)ud;
    void *p =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void os_unmap(void *ud, void *ptr, size_t size)
{
    (void)ud;
    munmap(ptr, size);
}

static amb_allocator allocator = {libc_malloc, libc_realloc, libc_free, NULL,
                                  libc_calloc, os_map,       os_unmap};

int amb_set_allocator(const amb_allocator *a)
{
    if (a == NULL) {
        allocator = (amb_allocator){libc_malloc, libc_realloc, libc_free, NULL,
                                    libc_calloc, os_map,       os_unmap};
        return 0;
    }
    if (a->malloc == NULL || a->realloc == NULL || a->free == NULL ||
        (a->map == NULL) != (a->unmap == NULL))
        return AMB__MISUSE();
    allocator = *a;
    if (allocator.map == NULL) {
        allocator.map = os_map;
        allocator.unmap = os_unmap;
    }
    return 0;
}

void *amb__map(size_t size)
{
    return allocator.map(allocator.ud, size);
}

void amb__unmap(void *ptr, size_t size)
{
    allocator.unmap(allocator.ud, ptr, size);
}

void *amb__malloc(size_t size)
{
    return allocator.malloc(allocator.ud, size ? size : 1);
}

void *amb__calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    /* An allocator's calloc (the C library's maps fresh zero pages for the
     * large, mostly untouched tables: process table, atom table) instead of
     * writing them; without one, malloc + memset. */
    if (allocator.calloc != NULL)
        return allocator.calloc(allocator.ud, n ? n : 1, size ? size : 1);
    void *p = amb__malloc(n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void *amb__realloc(void *ptr, size_t size)
{
    return allocator.realloc(allocator.ud, ptr, size ? size : 1);
}

void amb__free(void *ptr)
{
    if (ptr != NULL)
        allocator.free(allocator.ud, ptr);
}

void *amb_malloc(size_t size)
{
    return amb__malloc(size);
}
void *amb_realloc(void *ptr, size_t size)
{
    return amb__realloc(ptr, size);
}
void amb_free(void *ptr)
{
    amb__free(ptr);
}

/* Over-allocates by align bytes and keeps the distance to the real start in
 * the byte just before the aligned pointer (align is at most 128, so one byte
 * suffices). */
void *amb__malloc_aligned(size_t size, size_t align)
{
    if (align < 2 || align > 128 || (align & (align - 1)) != 0 || size > SIZE_MAX - align)
        return NULL;
    uint8_t *raw = amb__malloc(size + align);
    if (raw == NULL)
        return NULL;
    size_t shift = align - ((uintptr_t)raw & (align - 1));
    uint8_t *p = raw + shift; /* shift is in [1, align] */
    p[-1] = (uint8_t)(shift - 1);
    return p;
}

void amb__free_aligned(void *ptr)
{
    if (ptr == NULL)
        return;
    uint8_t *p = ptr;
    amb__free(p - p[-1] - 1);
}

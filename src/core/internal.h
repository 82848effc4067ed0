/*
 * internal.h - what every file of the library shares and no user sees:
 * allocation through the installed hook, panics for broken invariants, and
 * branch hints. Everything here is amb__-prefixed and hidden from the shared
 * library's symbol table (-fvisibility=hidden).
 */
#ifndef AMB_CORE_INTERNAL_H
#define AMB_CORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ambitious/core.h"

#define amb__likely(x)   __builtin_expect(!!(x), 1)
#define amb__unlikely(x) __builtin_expect(!!(x), 0)

/* Allocation through the installed allocator (alloc.c). amb__malloc returns
 * NULL when out of memory; amb__free accepts NULL. amb__calloc checks n*size
 * for overflow. */
void *amb__malloc(size_t size);
void *amb__calloc(size_t n, size_t size);
void *amb__realloc(void *ptr, size_t size);
void amb__free(void *ptr);
/* size bytes of zeroed, page-aligned pages from the allocator's map (the
 * OS's mmap by default), or NULL; given back whole with amb__unmap. */
void *amb__map(size_t size);
void amb__unmap(void *ptr, size_t size);
/* Memory aligned to align (a power of two, 2..128); free with
 * amb__free_aligned. */
void *amb__malloc_aligned(size_t size, size_t align);
void amb__free_aligned(void *ptr);

/* A broken runtime invariant: prints file, line and message, then aborts
 * (contract.c). */
_Noreturn void amb__contract_panic_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define amb__panic(...) amb__contract_panic_at(__FILE__, __LINE__, __VA_ARGS__)

/* Checked in every build: an invariant whose failure would corrupt memory. */
#define AMB__CHECK(cond)                               \
    do {                                               \
        if (amb__unlikely(!(cond)))                    \
            amb__panic("invariant failed: %s", #cond); \
    } while (0)

/* Borrow checking in AddressSanitizer builds (docs/design/terms.md,
 * "Lifetimes"): memory that held terms whose scope ended (a rewound or reset
 * heap region, a message cell back in its pool) is poisoned, so a read of a
 * borrowed term after its scope is an ASan report (use-after-poison) instead
 * of silent wrong data; the memory is unpoisoned when it is handed out
 * again. Both vanish in other builds. ASan tracks 8-byte granules: every
 * region given here is word-aligned. */
#if defined(__SANITIZE_ADDRESS__)
#define AMB__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AMB__ASAN 1
#endif
#endif
#ifdef AMB__ASAN
#include <sanitizer/asan_interface.h>
#define AMB__POISON(p, bytes)   ASAN_POISON_MEMORY_REGION((p), (bytes))
#define AMB__UNPOISON(p, bytes) ASAN_UNPOISON_MEMORY_REGION((p), (bytes))
#else
#define AMB__ASAN               0
#define AMB__POISON(p, bytes)   ((void)(p), (void)(bytes))
#define AMB__UNPOISON(p, bytes) ((void)(p), (void)(bytes))
#endif

/* Misuse of the public API: AMB_EBADARG in release builds, and an assert in
 * debug builds so the mistake is found where it is made. */
#ifdef NDEBUG
#define AMB__MISUSE() (AMB_EBADARG)
#else
#define AMB__MISUSE() (amb__contract_misuse_at(__FILE__, __LINE__), AMB_EBADARG)
#endif
/* Reports misuse at file:line (contract.c): a panic when the environment
 * sets AMB_ABORT_ON_MISUSE=1, nothing otherwise. */
void amb__contract_misuse_at(const char *file, int line);

#endif /* AMB_CORE_INTERNAL_H */

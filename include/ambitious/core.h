/*
 * ambitious/core.h - what every layer stands on: export macro, error codes,
 * the allocator hook and the library version.
 *
 * Contract for the whole library (DESIGN §7):
 *   - Functions return 0 or a negative AMB_E* code; results travel through
 *     out-parameters. A call that fails did nothing: out-parameters are left
 *     untouched and no state changed, unless the function says otherwise.
 *   - A call that takes a callback and fails never calls it.
 *   - Misuse (NULL where a pointer is required, a value outside the documented
 *     range) is AMB_EBADARG, never a crash.
 *   - Every allocation goes through the allocator installed with
 *     amb_set_allocator(); running out of memory is the ordinary error
 *     AMB_ENOMEM and leaves everything as it was.
 */
#ifndef AMBITIOUS_CORE_H
#define AMBITIOUS_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the public API are exported; everything else is hidden. */
#if defined(AMB_STATIC_DEFINE)
#define AMB_API
#elif defined(__GNUC__) || defined(__clang__)
#define AMB_API __attribute__((visibility("default")))
#else
#define AMB_API
#endif

/* printf-style checking of a function's format (argument fmt) and its
 * arguments (from first on), where the compiler offers it. */
#if defined(__GNUC__) || defined(__clang__)
#define AMB_PRINTF_FORMAT(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#define AMB_PRINTF_FORMAT(fmt, first)
#endif

/* A function that never returns: C11's _Noreturn, C++'s [[noreturn]]. It
 * comes first in a declaration: AMB_NORETURN AMB_API void f(void); */
#ifdef __cplusplus
#define AMB_NORETURN [[noreturn]]
#else
#define AMB_NORETURN _Noreturn
#endif

#define AMB_VERSION_MAJOR  0
#define AMB_VERSION_MINOR  1
#define AMB_VERSION_PATCH  0
#define AMB_VERSION_STRING "0.1.0"

/* Returns AMB_VERSION_STRING of the library actually linked. Never fails. */
AMB_API const char *amb_version(void);

/*
 * Error codes: one table for the whole library, like errno. The numbers are
 * part of the ABI: never renumber, only append (a new layer adds its codes
 * at the end, under its own heading). The messages say what happened in
 * words any layer can use. X(NAME, value, message)
 */
#define AMB_ERRORS(X)                                                                 \
    /* Every layer: resources, arguments, states. */                                  \
    X(NOMEM, -1, "out of memory; nothing was changed")                                \
    X(BADARG, -2, "argument breaks the documented contract")                          \
    X(SYSLIMIT, -7, "a bounded table or size limit is full")                          \
    X(NOTSUP, -16, "operation not supported")                                         \
    X(STATE, -17, "object is not in a state that allows this call")                   \
    X(IO, -18, "operating system I/O error")                                          \
    X(AGAIN, -19, "resource temporarily unavailable; try again")                      \
    X(CLOSED, -20, "object is closed or shutting down")                               \
    /* Terms, text and the external format (term.h, etf.h). */                        \
    X(TYPE, -5, "term is not of the expected type")                                   \
    X(RANGE, -6, "value does not fit the requested type")                             \
    X(SYNTAX, -8, "text is not valid Erlang term syntax")                             \
    X(DECODE, -9, "bytes are not a valid external term")                              \
    X(FORMAT, -10, "bad format string")                                               \
    X(NOMATCH, -11, "term does not match the pattern")                                \
    X(EXIST, -12, "name or key already taken")                                        \
    X(NOTFOUND, -13, "name or key not found")                                         \
    X(BUFSIZE, -14, "buffer too small")                                               \
    X(DEPTH, -15, "term nested deeper than the limit")                                \
    /* Processes (process.h). */                                                      \
    X(NOPROC, -3, "no such process")                                                  \
    X(TIMEDOUT, -4, "deadline passed")                                                \
    X(APPEXIT, -40, "a needed application ended; runtime halted")                     \
    X(MAINEXIT, -41, "main process ended abnormally; runtime halted")                 \
    /* Behaviours: starting, calling (gen_server.h and those on it). */               \
    X(EXIT, -21, "the process ended before answering")                                \
    X(IGNORE, -22, "start declined; nothing was started")                             \
    X(INIT, -23, "start failed")                                                      \
    X(DEADLK, -24, "the caller would wait for itself")                                \
    /* Supervision (supervisor.h): the state of what a call names. */                 \
    X(RUNNING, -25, "it is running")                                                  \
    X(RESTARTING, -26, "it is being restarted")                                       \
    X(PRESENT, -27, "it exists but is not running")                                   \
    /* Sockets and TLS (docs/design/sockets.md). */                                   \
    X(CONNREFUSED, -28, "connection refused by the other end")                        \
    X(CONNRESET, -29, "connection reset by the other end")                            \
    X(ADDRINUSE, -30, "address already in use")                                       \
    X(ADDRNOTAVAIL, -31, "address not available on this host")                        \
    X(HOSTUNREACH, -32, "no route to the host")                                       \
    X(NETUNREACH, -33, "network unreachable")                                         \
    X(NOHOST, -34, "host name not found")                                             \
    X(NOTCONN, -35, "not connected")                                                  \
    X(MSGSIZE, -36, "message larger than the limit")                                  \
    X(ACCES, -37, "permission denied")                                                \
    X(TLS, -38, "secure channel failed (handshake or protocol error)")                \
    X(CERT, -39, "certificate not accepted (untrusted, expired or for another name)") \
    X(NOTOWNER, -42, "only the owner may do this")

enum {
    AMB_OK = 0,
#define AMB__ERR_ENUM(name, value, msg) AMB_E##name = value,
    AMB_ERRORS(AMB__ERR_ENUM)
#undef AMB__ERR_ENUM
};

/* A one-line English description of code ("unknown error" for an unknown
 * code). The string is static. Never fails. */
AMB_API const char *amb_strerror(int code);

/* The symbolic name of code ("AMB_ENOMEM", "AMB_OK", or "AMB_E?" when unknown).
 * The string is static. Never fails. */
AMB_API const char *amb_err_name(int code);

/*
 * Allocator hook. All memory the library takes comes from here. malloc,
 * realloc and calloc may return NULL (the library then reports AMB_ENOMEM);
 * free takes NULL. ud is passed back unchanged. calloc (zeroed memory for n
 * objects of size bytes; NULL when n * size overflows) is optional: when it
 * is NULL the library calls malloc and zeroes the block itself. Give one
 * that maps fresh zero pages (as the C library's calloc does) to keep the
 * large, mostly untouched tables (the process table, the atom table) from
 * being written out at start.
 *
 * map and unmap (optional, both or neither; NULL: the OS's mmap and munmap)
 * give the runtime whole pages: size bytes (a multiple of the page size),
 * page-aligned and zeroed, or NULL when out of memory; unmap takes back
 * exactly what one map gave. The runtime takes the slabs its message cells
 * and process blocks are carved from this way (tens of KiB each, given back
 * as soon as they are empty, so that memory returns to the OS after a
 * burst), and so sees running out of them as AMB_ENOMEM. Process stacks are
 * reserved from the OS directly (docs/design/stacks.md).
 */
typedef struct amb_allocator {
    void *(*malloc)(void *ud, size_t size);
    void *(*realloc)(void *ud, void *ptr, size_t size);
    void (*free)(void *ud, void *ptr);
    void *ud;
    void *(*calloc)(void *ud, size_t n, size_t size); /* optional (NULL) */
    void *(*map)(void *ud, size_t size);              /* optional (NULL) */
    void (*unmap)(void *ud, void *ptr, size_t size);  /* optional (NULL) */
} amb_allocator;

/* Installs *a (copied) as the allocator, or the C library's when a is NULL.
 * Call it before any other function of the library, or when no memory from
 * the previous allocator is still held: memory is always returned to the
 * allocator that gave it. Returns AMB_EBADARG when malloc, realloc or free
 * is NULL, or only one of map and unmap is given. */
AMB_API int amb_set_allocator(const amb_allocator *a);

/* The library's allocator, for memory that the library hands to the caller
 * (documented per function as "free with amb_free"). amb_malloc returns NULL
 * when out of memory; amb_free accepts NULL. */
AMB_API void *amb_malloc(size_t size);
AMB_API void *amb_realloc(void *ptr, size_t size);
AMB_API void amb_free(void *ptr);

#define AMB_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

#ifdef __cplusplus
}
#endif
#endif /* AMBITIOUS_CORE_H */

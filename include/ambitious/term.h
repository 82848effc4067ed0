/*
 * ambitious/term.h - Erlang terms in C: the message model and, through
 * ambitious/etf.h, the wire format to BEAM nodes.
 *
 * A term is one 64-bit word (amb_term). Small integers, atoms and [] are
 * immediate; everything else is a pointer into a term heap (amb_heap). Terms
 * are immutable once built: "changing" a map or tuple builds a new one.
 *
 * Ownership (DESIGN §3), in one sentence each:
 *   - A term lives on the heap it was built on and dies with amb_heap_reset()
 *     or amb_heap_free() of that heap. User code never frees a single term.
 *   - Immediates (small integers, atoms, []) belong to no heap and live
 *     forever.
 *   - amb_term_copy() moves a term to another heap; large binaries are then
 *     shared by reference count, never copied, and stay valid while any heap
 *     that refers to them lives.
 *   - Strings returned by accessors (atom names, binary bytes) are borrowed:
 *     atom names live as long as the OS process, binary bytes as long as the
 *     term's heap.
 *   - Constructors copy the C values, strings and arrays they are given
 *     onto the heap (the caller's stay the caller's). The terms they are
 *     given are referenced, not copied: those must live at least as long as
 *     the result (build on one heap, or amb_term_copy first).
 *   - A term a function gives back through *out lives on the heap it was
 *     given (heap or dst), or is a part of its argument and lives on that
 *     term's heap (accessors and extractors).
 *
 * Errors: constructors that return amb_term return AMB_NONE on failure (out
 * of memory, a bad argument, a full atom table) and accept AMB_NONE as an
 * argument, passing the failure on, so a nested build needs one check at the
 * end (as Jansson's json_array_append_new accepts NULL). Functions that
 * return int follow core.h: 0 or a negative AMB_E* code.
 *
 * Thread safety: a heap belongs to one thread at a time. Terms on a heap may
 * be read from any thread once published with the usual happens-before. The
 * atom table is shared by the whole OS process and safe from any thread.
 */
#ifndef AMBITIOUS_TERM_H
#define AMBITIOUS_TERM_H

#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t amb_term;
typedef struct amb_heap amb_heap;

/* ---------------------------------------------------------------------------
 * Immediate encoding (public so that the hot checks inline):
 *   ...xxx1  small integer, value = word >> 1 (arithmetic), 63 bits signed
 *   ...x000  boxed: pointer to a header word on a heap (0 itself is AMB_NONE)
 *   ...x010  list cell: pointer | 2 to two words [head, tail]
 *   ...x100  atom: index << 3 | 4
 *   ...x110  other immediates: [] is 6 (...00110); a pid of a node that
 *            lives in this OS process (a runtime) is ...1110 (see
 *            amb_pid_term) and a port (a socket) of one is ...10110 (see
 *            amb_port_term): such pids and ports are plain values, like
 *            small integers
 * ------------------------------------------------------------------------ */

#define AMB_NONE ((amb_term)0) /* "no term": the failure value of builders */
#define AMB_NIL  ((amb_term)6) /* []: the empty list */

#define AMB_SMALL_MIN (-((int64_t)1 << 62))
#define AMB_SMALL_MAX (((int64_t)1 << 62) - 1)

/* A small integer known at compile time to be in [AMB_SMALL_MIN, AMB_SMALL_MAX]. */
#define AMB_SMALL(v)     ((amb_term)(((uint64_t)(int64_t)(v) << 1) | 1u))
#define AMB__ATOM(index) ((amb_term)(((uint64_t)(index) << 3) | 4u))

static inline bool amb_is_small(amb_term t)
{
    return (t & 1u) != 0;
}
static inline bool amb_is_atom(amb_term t)
{
    return (t & 7u) == 4u;
}
static inline bool amb_is_nil(amb_term t)
{
    return t == AMB_NIL;
}
static inline bool amb_is_cons(amb_term t)
{
    return (t & 7u) == 2u;
}
/* True for [] and list cells (proper or not). */
static inline bool amb_is_list(amb_term t)
{
    return t == AMB_NIL || (t & 7u) == 2u;
}
/* The value of a small integer. Only meaningful when amb_is_small(t). */
static inline int64_t amb_small_value(amb_term t)
{
    /* An arithmetic right shift: well defined because we shift the unsigned
     * word and restore the sign by hand. */
    uint64_t u = t >> 1;
    return (t >> 63) ? (int64_t)(u | ((uint64_t)1 << 63)) : (int64_t)u;
}

/*
 * Predefined atoms: their terms are compile-time constants, so the runtime
 * and user code compare against them with ==. X(c_name, "text")
 */
#define AMB_PREDEFINED_ATOMS(X)           \
    X(FALSE, "false")                     \
    X(TRUE, "true")                       \
    X(OK, "ok")                           \
    X(ERROR, "error")                     \
    X(UNDEFINED, "undefined")             \
    X(NORMAL, "normal")                   \
    X(KILL, "kill")                       \
    X(KILLED, "killed")                   \
    X(SHUTDOWN, "shutdown")               \
    X(NOPROC, "noproc")                   \
    X(NOCONNECTION, "noconnection")       \
    X(EXIT, "EXIT")                       \
    X(DOWN, "DOWN")                       \
    X(PROCESS, "process")                 \
    X(PORT, "port")                       \
    X(TIMEOUT, "timeout")                 \
    X(INFINITY, "infinity")               \
    X(BADARG, "badarg")                   \
    X(BADARITH, "badarith")               \
    X(BADMATCH, "badmatch")               \
    X(CALL, "call")                       \
    X(CAST, "cast")                       \
    X(GEN_CALL, "$gen_call")              \
    X(GEN_CAST, "$gen_cast")              \
    X(NONODE_NOHOST, "nonode@nohost")     \
    X(NODEDOWN, "nodedown")               \
    X(IGNORE, "ignore")                   \
    X(STOP, "stop")                       \
    X(REPLY, "reply")                     \
    X(NOREPLY, "noreply")                 \
    X(HIBERNATE, "hibernate")             \
    X(CONTINUE, "continue")               \
    X(ALREADY_STARTED, "already_started") \
    X(TRAP_EXIT, "trap_exit")

enum amb__atom_index {
#define AMB__ATOM_INDEX(name, text) AMB__ATOM_INDEX_##name,
    AMB_PREDEFINED_ATOMS(AMB__ATOM_INDEX)
#undef AMB__ATOM_INDEX
        AMB__ATOM_PREDEFINED_COUNT
};

#define AMB_ATOM_FALSE           AMB__ATOM(AMB__ATOM_INDEX_FALSE)
#define AMB_ATOM_TRUE            AMB__ATOM(AMB__ATOM_INDEX_TRUE)
#define AMB_ATOM_OK              AMB__ATOM(AMB__ATOM_INDEX_OK)
#define AMB_ATOM_ERROR           AMB__ATOM(AMB__ATOM_INDEX_ERROR)
#define AMB_ATOM_UNDEFINED       AMB__ATOM(AMB__ATOM_INDEX_UNDEFINED)
#define AMB_ATOM_NORMAL          AMB__ATOM(AMB__ATOM_INDEX_NORMAL)
#define AMB_ATOM_KILL            AMB__ATOM(AMB__ATOM_INDEX_KILL)
#define AMB_ATOM_KILLED          AMB__ATOM(AMB__ATOM_INDEX_KILLED)
#define AMB_ATOM_SHUTDOWN        AMB__ATOM(AMB__ATOM_INDEX_SHUTDOWN)
#define AMB_ATOM_NOPROC          AMB__ATOM(AMB__ATOM_INDEX_NOPROC)
#define AMB_ATOM_NOCONNECTION    AMB__ATOM(AMB__ATOM_INDEX_NOCONNECTION)
#define AMB_ATOM_EXIT            AMB__ATOM(AMB__ATOM_INDEX_EXIT)
#define AMB_ATOM_DOWN            AMB__ATOM(AMB__ATOM_INDEX_DOWN)
#define AMB_ATOM_PROCESS         AMB__ATOM(AMB__ATOM_INDEX_PROCESS)
#define AMB_ATOM_PORT            AMB__ATOM(AMB__ATOM_INDEX_PORT)
#define AMB_ATOM_TIMEOUT         AMB__ATOM(AMB__ATOM_INDEX_TIMEOUT)
#define AMB_ATOM_INFINITY        AMB__ATOM(AMB__ATOM_INDEX_INFINITY)
#define AMB_ATOM_BADARG          AMB__ATOM(AMB__ATOM_INDEX_BADARG)
#define AMB_ATOM_BADARITH        AMB__ATOM(AMB__ATOM_INDEX_BADARITH)
#define AMB_ATOM_BADMATCH        AMB__ATOM(AMB__ATOM_INDEX_BADMATCH)
#define AMB_ATOM_CALL            AMB__ATOM(AMB__ATOM_INDEX_CALL)
#define AMB_ATOM_CAST            AMB__ATOM(AMB__ATOM_INDEX_CAST)
#define AMB_ATOM_GEN_CALL        AMB__ATOM(AMB__ATOM_INDEX_GEN_CALL)
#define AMB_ATOM_GEN_CAST        AMB__ATOM(AMB__ATOM_INDEX_GEN_CAST)
#define AMB_ATOM_NONODE_NOHOST   AMB__ATOM(AMB__ATOM_INDEX_NONODE_NOHOST)
#define AMB_ATOM_NODEDOWN        AMB__ATOM(AMB__ATOM_INDEX_NODEDOWN)
#define AMB_ATOM_IGNORE          AMB__ATOM(AMB__ATOM_INDEX_IGNORE)
#define AMB_ATOM_STOP            AMB__ATOM(AMB__ATOM_INDEX_STOP)
#define AMB_ATOM_REPLY           AMB__ATOM(AMB__ATOM_INDEX_REPLY)
#define AMB_ATOM_NOREPLY         AMB__ATOM(AMB__ATOM_INDEX_NOREPLY)
#define AMB_ATOM_HIBERNATE       AMB__ATOM(AMB__ATOM_INDEX_HIBERNATE)
#define AMB_ATOM_CONTINUE        AMB__ATOM(AMB__ATOM_INDEX_CONTINUE)
#define AMB_ATOM_ALREADY_STARTED AMB__ATOM(AMB__ATOM_INDEX_ALREADY_STARTED)
#define AMB_ATOM_TRAP_EXIT       AMB__ATOM(AMB__ATOM_INDEX_TRAP_EXIT)

/* ---------------------------------------------------------------------------
 * Types, listed in Erlang's term order:
 * number < atom < reference < fun < port < pid < tuple < map < [] < list < bitstring
 * ------------------------------------------------------------------------ */
typedef enum amb_type {
    AMB_T_NONE = 0, /* AMB_NONE or a corrupt word */
    AMB_T_INTEGER,  /* small or big */
    AMB_T_FLOAT,
    AMB_T_ATOM,
    AMB_T_REF,
    AMB_T_FUN, /* a closure (opaque) or an export fun mod:fun/arity */
    AMB_T_PORT,
    AMB_T_PID,
    AMB_T_TUPLE,
    AMB_T_MAP,
    AMB_T_NIL,
    AMB_T_LIST,      /* a list cell; the list may be improper */
    AMB_T_BITSTRING, /* binaries are bitstrings whose size is whole bytes */
} amb_type;

/* The type of t. Never fails; AMB_T_NONE for AMB_NONE. */
AMB_API amb_type amb_type_of(amb_term t);
/* "integer", "float", "atom", ...: a static string ("none" for an unknown
 * type). Never fails. */
AMB_API const char *amb_type_name(amb_type type);

/* ---------------------------------------------------------------------------
 * Heaps (arenas). A process has one; a test or a tool makes its own.
 * ------------------------------------------------------------------------ */

/* Creates an empty heap. Owned: free with amb_heap_free().
 * AMB_EBADARG if out is NULL, AMB_ENOMEM. */
AMB_API int amb_heap_new(amb_heap **out);
/* Frees the heap and every term on it; drops its references to shared
 * binaries. NULL is a no-op. */
AMB_API void amb_heap_free(amb_heap *heap);
/* Drops every term on the heap (they become invalid) but keeps one block of
 * memory for reuse, so a process that resets per message allocates nothing
 * in the steady state. NULL is a no-op. */
AMB_API void amb_heap_reset(amb_heap *heap);
/* Bytes of memory the heap's terms take up: its blocks, with the free end
 * of the current one (not shared binaries, nor the spare blocks
 * amb_heap_collect keeps); 0 for NULL. */
AMB_API size_t amb_heap_size(const amb_heap *heap);

/* A point in a heap's history, for dropping what was built after it: a
 * scope of scratch terms on a heap that also holds terms to keep. */
typedef struct amb_heap_mark {
    void *block_, *next_, *top_, *end_, *offheap_;
    size_t bytes_;
} amb_heap_mark;
/* The heap's current point. Never fails (for a NULL heap: the mark of an
 * empty heap). */
AMB_API amb_heap_mark amb_heap_save(const amb_heap *heap);
/* Drops every term built on heap since mark was taken (they become invalid;
 * older terms stay) and frees the memory they took, except one block of the
 * smallest size (512 bytes) kept for reuse, so a scope rewound once per
 * message allocates nothing in the steady state. The mark must be of
 * this heap, and neither amb_heap_reset nor a rewind to an older mark may
 * have happened since. NULL is a no-op. */
AMB_API void amb_heap_rewind(amb_heap *heap, amb_heap_mark mark);

/* Collects heap: keeps what roots[0..n) reach (each shared part once, a
 * map's versions sharing structure as they did) and frees every other term
 * of the heap (for a heap the caller owns: a loop that keeps a map across
 * iterations calls it when amb_heap_size has grown to a few times what it
 * was after the last one). The live terms are copied into the blocks the
 * heap emptied at its last collection, and what those cannot hold into a
 * block taken beforehand (only the pages written take memory), so memory
 * peaks at the heap's size plus the live terms' for a moment; the blocks
 * it empties stay the heap's, up to the size it had, for its next
 * allocations and its next collection, so a loop in a steady state maps
 * no new pages (amb_heap_size does not count them; amb_heap_reset and
 * amb_heap_free give them back). Without memory for that block it
 * compacts in place instead (a twentieth of the heap more), as the
 * runtime does for a term-state process (process.h "Term state"). The
 * roots are updated: every other term of the heap, and every mark of it,
 * is invalid afterwards. Terms of other heaps are referred to as they are.
 * O(live terms + blocks). 0; AMB_ENOMEM (nothing changed); AMB_EBADARG for
 * a NULL heap, or NULL roots with n > 0. */
AMB_API int amb_heap_collect(amb_heap *heap, amb_term *roots, size_t n);

/* Copies t and everything it refers to onto dst (immediates are returned as
 * they are; shared binaries gain a reference, their bytes are not copied).
 * The copy is independent of t's heap. AMB_EBADARG for a NULL argument or
 * AMB_NONE, AMB_ENOMEM (nothing is left allocated that matters: dst may hold
 * unreachable partial cells until its next reset). */
AMB_API int amb_term_copy(amb_heap *dst, amb_term t, amb_term *out);
/* Bytes that amb_term_copy(t) would take on a fresh heap (for sizing); 0 for
 * an immediate. Never fails. */
AMB_API size_t amb_term_size(amb_term t);

/* ---------------------------------------------------------------------------
 * Atoms. Interned in one table per OS process; never freed. The table is
 * bounded (AMB_ATOM_LIMIT_DEFAULT atoms unless changed before first use) and
 * a full table is AMB_ESYSLIMIT, never unbounded growth. Names are UTF-8 of
 * at most 255 characters (Erlang's limit), and at most 1020 bytes.
 * ------------------------------------------------------------------------ */
#define AMB_ATOM_LIMIT_DEFAULT (1u << 20)
#define AMB_ATOM_MAX_CHARS     255
#define AMB_ATOM_MAX_BYTES     1020

/* Interns the UTF-8 name[0..len) and stores the atom in *out.
 * AMB_EBADARG: NULL name with len > 0, NULL out, invalid UTF-8, or too long;
 * AMB_ESYSLIMIT: the table is full; AMB_ENOMEM. */
AMB_API int amb_atom_new(const char *name, size_t len, amb_term *out);
/* Looks a name up without creating it: 0 and *out, AMB_ENOTFOUND when no
 * such atom exists (how untrusted input avoids filling the table),
 * AMB_EBADARG as amb_atom_new. */
AMB_API int amb_atom_existing(const char *name, size_t len, amb_term *out);
/* amb_atom_new for a NUL-terminated name; AMB_NONE on any failure. */
AMB_API amb_term amb_atom(const char *name);
/* The UTF-8 name of atom a (NUL-terminated; borrowed for the life of the OS
 * process) and its length in bytes when len is not NULL. NULL when a is not
 * an atom. */
AMB_API const char *amb_atom_name(amb_term a, size_t *len);
/* Number of atoms interned so far, and the table's limit. Never fail. */
AMB_API size_t amb_atom_count(void);
AMB_API size_t amb_atom_limit(void);
/* Sets the table's limit before the first atom is made (the predefined atoms
 * are made on first use of any atom function). AMB_ESTATE once the table
 * exists, AMB_EBADARG below 1024 or above 16M. */
AMB_API int amb_atom_set_limit(size_t limit);

/* true / false as atoms. */
static inline amb_term amb_bool(bool b)
{
    return b ? AMB_ATOM_TRUE : AMB_ATOM_FALSE;
}

/* ---------------------------------------------------------------------------
 * Numbers. Integers have arbitrary precision up to AMB_BIG_MAX_BYTES of
 * magnitude; every integer has exactly one representation (values that fit
 * AMB_SMALL_MIN..AMB_SMALL_MAX are always small), so equal integers are
 * equal words or equal big numbers.
 * ------------------------------------------------------------------------ */
#define AMB_BIG_MAX_BYTES 65536

/* Integer terms from C integers; big when needed. AMB_NONE on ENOMEM or a
 * NULL heap with a value that needs one. */
AMB_API amb_term amb_int(amb_heap *heap, int64_t v);
AMB_API amb_term amb_uint(amb_heap *heap, uint64_t v);
/* An integer in *out, on heap, from a sign and the little-endian magnitude
 * bytes mag[0..len) (ETF's bignum layout; copied). AMB_ESYSLIMIT above
 * AMB_BIG_MAX_BYTES, AMB_EBADARG (NULL out, NULL mag with len > 0),
 * AMB_ENOMEM. */
AMB_API int amb_int_from_bytes(amb_heap *heap, bool negative, const uint8_t *mag,
                               size_t len, amb_term *out);
/* Parses the decimal integer s[0..len) (optional '-' or '+'; digits; no
 * other bytes) into *out, on heap. AMB_ESYNTAX, AMB_ESYSLIMIT, AMB_ENOMEM,
 * AMB_EBADARG (NULL out, NULL s with len > 0). */
AMB_API int amb_int_from_string(amb_heap *heap, const char *s, size_t len, amb_term *out);

static inline bool amb_is_integer(amb_term t)
{
    return amb_is_small(t) || amb_type_of(t) == AMB_T_INTEGER;
}
/* The value of an integer term. AMB_ETYPE when t is not an integer,
 * AMB_ERANGE when it does not fit, AMB_EBADARG when out is NULL. */
AMB_API int amb_int_get(amb_term t, int64_t *out);
AMB_API int amb_uint_get(amb_term t, uint64_t *out);
/* Sign and magnitude of any integer (the inverse of amb_int_from_bytes):
 * *negative, and the magnitude as little-endian bytes in *mag, borrowed from
 * the term's heap for a big integer or from the caller's *scratch for a
 * small one (valid while both live); *len is the count of bytes, without
 * high zero bytes (0 means zero). AMB_ETYPE when t is not an integer,
 * AMB_EBADARG for a NULL pointer. */
AMB_API int amb_int_to_bytes(amb_term t, uint64_t *scratch, bool *negative,
                             const uint8_t **mag, size_t *len);

/* A float term. Erlang floats are finite: AMB_NONE for NaN or infinity. */
AMB_API amb_term amb_float(amb_heap *heap, double v);
/* The value of a float term: AMB_ETYPE unless t is a float, AMB_EBADARG
 * when out is NULL. */
AMB_API int amb_float_get(amb_term t, double *out);
/* Any number as a double (big integers rounded). AMB_ETYPE, AMB_ERANGE (a
 * big integer beyond the range of double), AMB_EBADARG when out is NULL. */
AMB_API int amb_number_get(amb_term t, double *out);

/* ---------------------------------------------------------------------------
 * Tuples
 * ------------------------------------------------------------------------ */
/* A tuple of arity elements taken from the array elems (the array is
 * copied; elems may be NULL when arity is 0). AMB_NONE when an element is
 * AMB_NONE, on ENOMEM, or above AMB_TUPLE_MAX_ARITY. */
#define AMB_TUPLE_MAX_ARITY ((size_t)1 << 24)
AMB_API amb_term amb_tuple(amb_heap *heap, size_t arity, const amb_term *elems);
/* Variadic form: AMB_TUPLE(heap, a, b, c) (an array on the caller's stack,
 * copied; in C++ a braced list, as C++ has no compound literals). */
#ifdef __cplusplus
#define AMB_TUPLE(heap, ...) amb__tuple_of((heap), {__VA_ARGS__})
#else
#define AMB_TUPLE(heap, ...)                                                \
    amb_tuple((heap), sizeof((amb_term[]){__VA_ARGS__}) / sizeof(amb_term), \
              (amb_term[]){__VA_ARGS__})
#endif
static inline bool amb_is_tuple(amb_term t)
{
    return amb_type_of(t) == AMB_T_TUPLE;
}
/* Arity of a tuple; 0 when t is not a tuple (check amb_is_tuple). */
AMB_API size_t amb_tuple_arity(amb_term t);
/* Element i (0-based), or AMB_NONE when t is not a tuple or i is out of
 * range. The element lives on t's heap. */
AMB_API amb_term amb_tuple_elem(amb_term t, size_t i);
/* True when t is a tuple of the given arity whose first element is tag. */
AMB_API bool amb_is_record(amb_term t, amb_term tag, size_t arity);

/* ---------------------------------------------------------------------------
 * Lists and strings
 * ------------------------------------------------------------------------ */
/* [head | tail]. tail may be any term (improper lists). */
AMB_API amb_term amb_cons(amb_heap *heap, amb_term head, amb_term tail);
/* The head / tail of a list cell (living on its heap); AMB_NONE for anything
 * else, [] included. */
AMB_API amb_term amb_list_head(amb_term t);
AMB_API amb_term amb_list_tail(amb_term t);
/* A proper list of the n elements of the array elems (copied; NULL allowed
 * when n is 0). AMB_NONE as amb_tuple. */
AMB_API amb_term amb_list(amb_heap *heap, size_t n, const amb_term *elems);
/* Variadic form: AMB_LIST(heap, a, b, c) (as AMB_TUPLE). */
#ifdef __cplusplus
#define AMB_LIST(heap, ...) amb__list_of((heap), {__VA_ARGS__})
#else
#define AMB_LIST(heap, ...)                                                \
    amb_list((heap), sizeof((amb_term[]){__VA_ARGS__}) / sizeof(amb_term), \
             (amb_term[]){__VA_ARGS__})
#endif
/* Length of a proper list in *len. AMB_ETYPE when t is not a list or is
 * improper, AMB_EBADARG when len is NULL. */
AMB_API int amb_list_length(amb_term t, size_t *len);
/* A string as Erlang makes "..." : a list of Unicode code points decoded from
 * the UTF-8 (NUL-terminated, or utf8[0..len); read during the call only).
 * AMB_NONE for invalid UTF-8 or on ENOMEM. */
AMB_API amb_term amb_string(amb_heap *heap, const char *utf8);
AMB_API amb_term amb_string_n(amb_heap *heap, const char *utf8, size_t len);
/* Writes the UTF-8 of a list of code points into the caller's buf (always
 * NUL-terminated when cap > 0; buf may be NULL when cap is 0) and its length
 * in *len. AMB_ETYPE when t is not a proper list of valid code points,
 * AMB_EBUFSIZE when cap is too small (*len then holds the size needed,
 * without the NUL), AMB_EBADARG when len is NULL. */
AMB_API int amb_string_get(amb_term t, char *buf, size_t cap, size_t *len);

/* ---------------------------------------------------------------------------
 * Binaries and bitstrings. Up to AMB_HEAP_BINARY_MAX bytes live on the heap;
 * larger ones are shared and reference counted, so copies and sends do not
 * copy their bytes. Sub-binaries share the bytes of their parent.
 * ------------------------------------------------------------------------ */
#define AMB_HEAP_BINARY_MAX 64
/* A binary holding a copy of data[0..size) (data may be NULL when size is 0). */
AMB_API amb_term amb_binary(amb_heap *heap, const void *data, size_t size);
/* A binary of size bytes for the caller to fill through *data (borrowed:
 * valid while the heap lives) before the term is used anywhere else;
 * AMB_NONE (and *data untouched) on failure. */
AMB_API amb_term amb_binary_alloc(amb_heap *heap, size_t size, uint8_t **data);
/* A bitstring of nbits bits copied from data (bits are taken from the high
 * end of each byte, as Erlang stores them; unused low bits of the last byte
 * are cleared in the copy). */
AMB_API amb_term amb_bitstring(amb_heap *heap, const void *data, size_t nbits);
/* The bytes [offset, offset+size) of binary t, without copying them: the
 * result (on heap) shares t's bytes (a large binary's by reference count, so
 * t's heap may go; a small one's are copied). AMB_NONE when t is not a
 * binary or the range is out of bounds. */
AMB_API amb_term amb_sub_binary(amb_heap *heap, amb_term t, size_t offset, size_t size);
static inline bool amb_is_bitstring(amb_term t)
{
    return amb_type_of(t) == AMB_T_BITSTRING;
}
/* True for bitstrings of whole bytes. Never fails. */
AMB_API bool amb_is_binary(amb_term t);
/* The bytes of a binary (borrowed: valid while t's heap lives) and their
 * count. AMB_ETYPE when t is not a binary, also for a bitstring whose size
 * is not whole bytes (amb_bitstring_get reads those). Either out pointer may
 * be NULL (the call then only checks the type). */
AMB_API int amb_binary_get(amb_term t, const uint8_t **data, size_t *size);
/* The bytes of a bitstring (borrowed, as above), its size in whole bytes and
 * its count of bits in a last partial byte (0..7; 0 for a binary). AMB_ETYPE
 * when t is not a bitstring. Any out pointer may be NULL. */
AMB_API int amb_bitstring_get(amb_term t, const uint8_t **data, size_t *size,
                              unsigned *tail_bits);

/* ---------------------------------------------------------------------------
 * Maps: immutable, keys unique by exact equality (1 and 1.0 are two keys).
 *
 * As in BEAM, a map of up to 32 pairs is a sorted array and a larger one a
 * persistent hash trie: get, put, update, remove and take are O(log n),
 * and a map made from another shares every part it did not change with it
 * (a put on a map of 100,000 pairs builds about 100 words). A result lives
 * on the heap given to the call and may share words with the argument
 * maps, which must live at least as long (build on one heap, or
 * amb_term_copy); it is the argument itself when nothing changed.
 *
 * Iteration order (amb_map_next, amb_map_keys, amb_map_values, printing,
 * ETF): up to 32 pairs, keys ascending in exact term order (OTP's order for
 * such maps); above, an order fixed by the keys' amb_hash, the same for the
 * same pairs in every run and on every machine (docs/design/terms.md).
 * ------------------------------------------------------------------------ */
/* A map of the n pairs keys[i] => values[i] (maps:from_list; the arrays are
 * copied). A key given twice keeps its last value. AMB_NONE on ENOMEM or
 * AMB_NONE inputs. */
AMB_API amb_term amb_map(amb_heap *heap, size_t n, const amb_term *keys,
                         const amb_term *values);
/* maps:put: m with key set to value. AMB_NONE when m is not a map, on
 * ENOMEM or AMB_NONE inputs. */
AMB_API amb_term amb_map_put(amb_heap *heap, amb_term m, amb_term key, amb_term value);
/* maps:update: m with the value of a key it holds replaced, in *out.
 * AMB_ENOTFOUND when m has no such key, AMB_ETYPE when m is not a map,
 * AMB_EBADARG (NULL heap or out, AMB_NONE key or value), AMB_ENOMEM. */
AMB_API int amb_map_update(amb_heap *heap, amb_term m, amb_term key, amb_term value,
                           amb_term *out);
/* maps:remove: m without key (m itself when it has no such key). AMB_NONE
 * when m is not a map, on ENOMEM or an AMB_NONE key. */
AMB_API amb_term amb_map_remove(amb_heap *heap, amb_term m, amb_term key);
/* maps:take: the value of key in *value (living on m's heap) and m without
 * it in *rest. AMB_ENOTFOUND when m has no such key (nothing stored),
 * AMB_ETYPE, AMB_EBADARG (NULL heap, value or rest, AMB_NONE key),
 * AMB_ENOMEM. */
AMB_API int amb_map_take(amb_heap *heap, amb_term m, amb_term key, amb_term *value,
                         amb_term *rest);
/* maps:merge: the pairs of both maps; where both hold a key, m2's value
 * wins. O(smaller × log larger). AMB_NONE when either is not a map, on
 * ENOMEM. */
AMB_API amb_term amb_map_merge(amb_heap *heap, amb_term m1, amb_term m2);
/* maps:keys and maps:values: a list of m's keys, or of its values, in
 * iteration order (the i-th value belongs to the i-th key). AMB_NONE when m
 * is not a map, on ENOMEM. */
AMB_API amb_term amb_map_keys(amb_heap *heap, amb_term m);
AMB_API amb_term amb_map_values(amb_heap *heap, amb_term m);
static inline bool amb_is_map(amb_term t)
{
    return amb_type_of(t) == AMB_T_MAP;
}
/* The number of pairs; 0 when m is not a map. */
AMB_API size_t amb_map_size(amb_term m);
/* maps:find: the value for key (living on m's heap). AMB_ETYPE when m is not
 * a map, AMB_ENOTFOUND, AMB_EBADARG when value is NULL or key is AMB_NONE. */
AMB_API int amb_map_get(amb_term m, amb_term key, amb_term *value);

/* A position in a walk over a map's pairs (maps:iterator/maps:next, and
 * the way to fold over a map). A plain value: copy it to remember a
 * position. It reads the map in place, so the map's heap must live while
 * it is used. The fields are private. */
typedef struct amb_map_iter {
    amb_term node_[16];
    size_t pos_[16];
    size_t depth_;
} amb_map_iter;
/* Starts *it at the first pair of m. AMB_ETYPE when m is not a map,
 * AMB_EBADARG when it is NULL. */
AMB_API int amb_map_iterator(amb_term m, amb_map_iter *it);
/* The next pair in iteration order into *key and *value (either may be
 * NULL; both live on the map's heap): true, or false when every pair has
 * been given (then *key and *value are untouched). O(1) amortised. Never
 * fails.
 *
 *     amb_map_iter it;
 *     amb_term k, v;
 *     amb_map_iterator(m, &it);
 *     while (amb_map_next(&it, &k, &v))
 *         sum += amb_small_value(v);
 */
AMB_API bool amb_map_next(amb_map_iter *it, amb_term *key, amb_term *value);

/* ---------------------------------------------------------------------------
 * Map edits: many puts and removes that make one new map (Clojure's
 * transients; BEAM's maps:from_list works this way inside). A put on a
 * map copies the path to the changed pair (about 150 words at a million
 * pairs), because the map before it may still be used. An edit hands out
 * no map until it ends, so the nodes it made itself are changed in place:
 * a put or remove in an edit copies a node only the first time it changes
 * it, and only nodes the edit did not make (the starting map's, which stay
 * as they were: the starting map is never changed).
 *
 *     amb_map_edit e;
 *     amb_map_edit_init(&e, heap, m);             // m is not changed
 *     for (...)
 *         if ((rc = amb_map_edit_put(&e, k, v)) != 0)
 *             break;                              // AMB_ENOMEM: e is as before
 *     rc = amb_map_edit_end(&e, &m2);             // m2: m with the puts
 *
 * An amb_map_edit is a plain struct the caller owns (on the stack, say);
 * its fields are private. Its pairs live on `heap`, and what it was given
 * (the starting map, keys, values) must outlive the result, as for any
 * constructor. Only one thread uses an edit. The edit's nodes are words of
 * the heap like any term: an edit must end before the heap is rewound or
 * reset below where it began, and before a term-state collection (in a
 * callback, end it before returning). An edit that is never ended leaves
 * garbage on its heap and nothing else.
 * ------------------------------------------------------------------------ */
typedef struct amb_map_edit {
    amb_heap *heap_;
    amb_term map_;
    bool own_;
} amb_map_edit;
/* Starts an edit of map m on heap (no allocation). AMB_EBADARG when e or
 * heap is NULL, AMB_ETYPE when m is not a map. */
AMB_API int amb_map_edit_init(amb_map_edit *e, amb_heap *heap, amb_term m);
/* maps:put inside the edit. 0; AMB_ENOMEM (the edit's pairs are as they
 * were, and it stays usable); AMB_EBADARG for an edit not started (or
 * ended) and AMB_NONE inputs. */
AMB_API int amb_map_edit_put(amb_map_edit *e, amb_term key, amb_term value);
/* maps:take inside the edit: removes key, its value into *value (may be
 * NULL; the term it was put with). 0, AMB_ENOTFOUND (nothing changed),
 * AMB_ENOMEM (likewise), AMB_EBADARG as for amb_map_edit_put. */
AMB_API int amb_map_edit_remove(amb_map_edit *e, amb_term key, amb_term *value);
/* The value of key in the edit's pairs now. 0, AMB_ENOTFOUND, AMB_EBADARG
 * (also when value is NULL). */
AMB_API int amb_map_edit_get(const amb_map_edit *e, amb_term key, amb_term *value);
/* The edit's pair count now (0 for an edit not started). */
AMB_API size_t amb_map_edit_size(const amb_map_edit *e);
/* Ends the edit: *out is the map of its pairs, on the edit's heap, an
 * ordinary immutable map from now on, which may share nodes with the
 * starting map. The edit is then closed (amb_map_edit_init starts it
 * again). AMB_ENOMEM (only when removes left 32 pairs or fewer, which
 * take a flat box of their own): the edit stays open and the call may be
 * repeated. AMB_EBADARG when the edit is not open or out is NULL. */
AMB_API int amb_map_edit_end(amb_map_edit *e, amb_term *out);

/* ---------------------------------------------------------------------------
 * Pids, references, ports, funs: node-qualified values that round-trip to
 * BEAM exactly.
 *
 * A pid of a local node (a runtime in this OS process, see process.h) is an
 * immediate word: copying, sending and comparing it costs nothing and it never
 * dangles. Every way of making a pid (this constructor, amb_parse, the ETF
 * decoder) gives the immediate form when the node and creation are a local
 * node's and the numbers fit, so equal pids are equal words or equal boxes.
 * Ports of local nodes (sockets) are immediates in the same way.
 * ------------------------------------------------------------------------ */
static inline bool amb_is_local_pid(amb_term t)
{
    return (t & 15u) == 14u;
}
/* A port of a local node (a socket of a runtime, socket.h): an immediate
 * word, as a local pid is. */
static inline bool amb_is_local_port(amb_term t)
{
    return (t & 31u) == 22u;
}
/* A pid term (node is an atom). heap may be NULL when the pid is a local
 * node's (immediate). AMB_NONE for a bad node or on ENOMEM. */
AMB_API amb_term amb_pid_term(amb_heap *heap, amb_term node, uint32_t id, uint32_t serial,
                              uint32_t creation);
/* The parts of a pid; any out pointer may be NULL. AMB_ETYPE for a term
 * that is not a pid. */
AMB_API int amb_pid_get(amb_term t, amb_term *node, uint32_t *id, uint32_t *serial,
                        uint32_t *creation);
/* A reference with 1 to AMB_REF_MAX_WORDS id words (copied from words).
 * AMB_NONE for a bad node or count, or on ENOMEM. */
#define AMB_REF_MAX_WORDS 5
AMB_API amb_term amb_ref_term(amb_heap *heap, amb_term node, uint32_t creation,
                              const uint32_t *words, size_t nwords);
/* The parts of a reference: its id words into the caller's words[0..cap)
 * (words may be NULL when cap is 0), their count in *nwords, the node and
 * creation; node, creation and nwords may be NULL. AMB_ETYPE for a term that
 * is not a reference, AMB_EBUFSIZE when cap is below the count (*nwords
 * then holds the count, nothing else is stored). */
AMB_API int amb_ref_get(amb_term t, uint32_t *words, size_t cap, amb_term *node,
                        uint32_t *creation, size_t *nwords);
/* A port term: the immediate word when node and creation are a local
 * node's and id fits 49 bits (heap may then be NULL), else a box on heap.
 * AMB_NONE for a bad node or on ENOMEM. */
AMB_API amb_term amb_port_term(amb_heap *heap, amb_term node, uint64_t id,
                               uint32_t creation);
/* The parts of a port; any out pointer may be NULL. AMB_ETYPE otherwise. */
AMB_API int amb_port_get(amb_term t, amb_term *node, uint64_t *id, uint32_t *creation);
/* fun Module:Function/Arity (module and function atoms). AMB_NONE for
 * non-atoms or on ENOMEM. */
AMB_API amb_term amb_export_term(amb_heap *heap, amb_term module, amb_term function,
                                 uint8_t arity);
/* For an export fun: its parts (any out pointer may be NULL); AMB_ETYPE for
 * closures and non-funs. */
AMB_API int amb_export_get(amb_term t, amb_term *module, amb_term *function,
                           uint8_t *arity);
/* Closures are opaque: they keep the exact NEW_FUN_EXT body they arrived in
 * (the bytes after the tag, starting with Size; ext[0..len) is copied) and
 * are re-encoded as-is. AMB_NONE for an empty body or on ENOMEM. */
AMB_API amb_term amb_closure_term(amb_heap *heap, const uint8_t *ext, size_t len);
/* A closure's NEW_FUN_EXT body, borrowed from its heap; either out pointer
 * may be NULL. AMB_ETYPE for anything but a closure. */
AMB_API int amb_closure_get(amb_term t, const uint8_t **ext, size_t *len);

/* ---------------------------------------------------------------------------
 * Comparison and hashing
 * ------------------------------------------------------------------------ */
/* Erlang's term order: <0, 0, >0 like strcmp. Numbers compare by value, so
 * amb_compare(1, 1.0) == 0 (Erlang's ==). Terms of different types compare
 * by the order of amb_type. Never fails (AMB_NONE sorts first). */
AMB_API int amb_compare(amb_term a, amb_term b);
/* Erlang's =:= (exact: 1 and 1.0 differ). Never fails. */
AMB_API bool amb_equal(amb_term a, amb_term b);
/* Exact order: like amb_compare, but every integer sorts before every float
 * (OTP's map key order: #{2 => a, 1.5 => b} lists 2 first). Returns 0 only
 * when amb_equal. Never fails. */
AMB_API int amb_compare_exact(amb_term a, amb_term b);
/* A hash of t, consistent with amb_equal, the same in every run, on every
 * machine and in every OS process (atoms hash by name, not by index). Never
 * fails. */
AMB_API uint64_t amb_hash(amb_term t);

/* ---------------------------------------------------------------------------
 * Text: Erlang term syntax
 * ------------------------------------------------------------------------ */
/* Prints t as io:format("~w") does (docs/design/print.md lists the forms
 * Erlang cannot print back: pids, refs, ports and closures use #Pid<...>,
 * #Ref<...>, #Port<...> and #Fun<...> forms that amb_parse reads).
 * Writes at most cap bytes including a NUL into the caller's buf (may be
 * NULL when cap is 0), and the full length without the NUL into *len (may
 * be NULL). Returns AMB_EBUFSIZE when the text was cut, AMB_EBADARG for
 * AMB_NONE or a NULL buf with cap > 0. amb_print(t, ...) is
 * amb_print_ex(t, 0, ...). */
AMB_API int amb_print(amb_term t, char *buf, size_t cap, size_t *len);
/* The same into a new NUL-terminated string in *out (owned: free with
 * amb_free); *len (may be NULL) gets its length. AMB_ENOMEM, AMB_EBADARG
 * (AMB_NONE, out NULL). */
AMB_API int amb_print_alloc(amb_term t, char **out, size_t *len);
/* The same to a stdio stream (the subject first, as in amb_print; the
 * stream is the caller's). AMB_EIO when the stream fails. */
AMB_API int amb_fprint(amb_term t, FILE *f);

/* Print styles (unsigned bits for the _ex functions):
 *   AMB_PRINT_PRETTY  what humans read: io_lib:format("~tp") with no line
 *                     breaks (an unlimited line length) and OTP's unicode
 *                     printable range (erl +pc unicode). Printable lists
 *                     print as "...", binaries of printable text as
 *                     <<"...">> or <<"..."/utf8>>, atoms keep their
 *                     characters, and pids, references, ports and closures
 *                     print as Erlang shows them: <0.85.0>, #Ref<0.3.2.1>,
 *                     #Port<0.5>, #Fun<mod.1.2> (the first number is the
 *                     node's number in this OS process, 0 for its first
 *                     runtime; a node elsewhere shows its name). Not meant
 *                     to be parsed back: amb_parse reads ~w's text.
 * Every human-facing text (log events, crash reports, examples) uses
 * AMB_PRINT_PRETTY, so a pid looks the same everywhere a human reads it. */
#define AMB_PRINT_PRETTY (1u << 0)
/* amb_print, amb_print_alloc and amb_fprint with flags (0 is ~w); unknown
 * flags are AMB_EBADARG, otherwise the contracts above. */
AMB_API int amb_print_ex(amb_term t, unsigned flags, char *buf, size_t cap, size_t *len);
AMB_API int amb_print_alloc_ex(amb_term t, unsigned flags, char **out, size_t *len);
AMB_API int amb_fprint_ex(amb_term t, unsigned flags, FILE *f);

/* Parses one term in Erlang syntax from text[0..len): atoms (bare and
 * 'quoted'), integers (with base#digits and $c forms), floats, "strings"
 * (lists), <<...>> binaries, tuples, lists ([a|b] too), #{k => v} maps,
 * fun M:F/A and the #Pid/#Ref/#Port/#Fun forms of amb_print. Whitespace and
 * % comments are skipped; one final '.' is allowed. text is read during the
 * call only; *out lives on heap. On error *err_pos (may be NULL) is the byte
 * offset of the problem and the result is AMB_ESYNTAX, AMB_EDEPTH (nesting
 * beyond AMB_PARSE_MAX_DEPTH), AMB_ESYSLIMIT (atom table full, integer too
 * large), AMB_ENOMEM, or AMB_EBADARG (NULL heap or out, NULL text with
 * len > 0). */
#define AMB_PARSE_MAX_DEPTH 10000
AMB_API int amb_parse(amb_heap *heap, const char *text, size_t len, amb_term *out,
                      size_t *err_pos);

/* ---------------------------------------------------------------------------
 * Format strings: build and match terms the way ei_x_format does.
 *
 * A format is Erlang term syntax in which ~x directives stand for C values:
 *
 *   directive  amb_pack takes               amb_match stores through
 *   ~a         const char *  -> atom        const char **  (atom name)
 *   ~i         int                          int *
 *   ~l         int64_t                      int64_t *
 *   ~u         uint64_t                     uint64_t *
 *   ~f         double        -> float       double *  (float only)
 *   ~s         const char *  -> string      char *buf, size_t cap (UTF-8, NUL)
 *   ~S         const char *  -> binary      char *buf, size_t cap (bytes, NUL)
 *   ~b         const void *, size_t         const uint8_t **, size_t *  (binary)
 *   ~w / ~t    amb_term (inserted)          amb_term *  (binds any term)
 *   ~p         amb_term, a pid              amb_term *  (pid only)
 *   ~r         amb_term, a ref              - takes amb_term: must be =:= to it
 *   ~v         amb_term                     - takes amb_term: must be =:= to it
 *   _          (pack: not allowed)          matches anything
 *
 * Strings: ~s is an Erlang string (a list of code points: "abc" in Erlang),
 * ~S an Elixir string (a binary: <<"abc">>, "abc" in Elixir; its bytes are
 * copied as they are, UTF-8 by convention), ~b any binary by pointer and
 * length. A C string becomes either with ~s or ~S; a binary comes back as a
 * C string with ~S (a binary holding a NUL byte does not match, as no C
 * string can hold it) or in place with ~b.
 *
 * Literals follow amb_parse. A format with more than AMB_FORMAT_MAX_DIRECTIVES
 * directives is an error. amb_pack copies the C values (strings, bytes) onto
 * the heap and references the terms it inserts (as a constructor does). In
 * amb_match, nothing is stored unless the whole term matches; what it
 * stores is borrowed from t's heap (terms, binary bytes), static (atom
 * names), or copied into the caller's buffer (~s, ~S).
 * ------------------------------------------------------------------------ */
#define AMB_FORMAT_MAX_DIRECTIVES 64

/* Where a bad format string went wrong. */
typedef struct amb_format_error {
    size_t position; /* byte offset in the format */
    char text[80];   /* what is wrong, NUL-terminated */
} amb_format_error;

/* Builds a term on heap from fmt. Returns AMB_NONE on any error (use
 * amb_pack_ex for the reason). */
AMB_API amb_term amb_pack(amb_heap *heap, const char *fmt, ...);
/* As amb_pack, with the result in *out and the error code returned: AMB_EFORMAT
 * (details in *err, may be NULL), AMB_EBADARG (a C value that cannot become
 * the term, e.g. invalid UTF-8; a NULL heap, out or fmt), AMB_ESYSLIMIT,
 * AMB_ENOMEM. amb_vpack takes the arguments as a va_list. */
AMB_API int amb_pack_ex(amb_heap *heap, amb_term *out, amb_format_error *err,
                        const char *fmt, ...);
AMB_API int amb_vpack(amb_heap *heap, amb_term *out, amb_format_error *err,
                      const char *fmt, va_list ap);

/* Matches t against fmt: 0 when it matches (and stores the bound values),
 * AMB_ENOMATCH when it does not (nothing stored), AMB_EFORMAT for a bad
 * format (details in *err with amb_match_ex, err may be NULL), AMB_EBADARG
 * (a NULL pointer for a directive), AMB_EBUFSIZE when a ~s or ~S buffer is
 * too small for the text and its NUL (nothing stored). amb_vmatch takes the
 * arguments as a va_list. */
AMB_API int amb_match(amb_term t, const char *fmt, ...);
AMB_API int amb_match_ex(amb_term t, amb_format_error *err, const char *fmt, ...);
AMB_API int amb_vmatch(amb_term t, amb_format_error *err, const char *fmt, va_list ap);

#ifdef __cplusplus
} /* extern "C" */

#include <initializer_list>

/* What AMB_TUPLE and AMB_LIST expand to in C++. */
inline amb_term amb__tuple_of(amb_heap *heap, std::initializer_list<amb_term> elems)
{
    return amb_tuple(heap, elems.size(), elems.begin());
}
inline amb_term amb__list_of(amb_heap *heap, std::initializer_list<amb_term> elems)
{
    return amb_list(heap, elems.size(), elems.begin());
}
#endif
#endif /* AMBITIOUS_TERM_H */

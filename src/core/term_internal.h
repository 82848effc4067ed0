/*
 * term_internal.h - the memory layout of boxed terms, shared by the files of
 * src/core/ (term.c, binary.c, map.c and bignum.c build them; compare.c,
 * hash.c, copy.c, print.c and etf_*.c read them).
 *
 * A boxed term is a pointer (low 3 bits 000) to a header word:
 *
 *     header = (payload << 8) | kind
 *
 *   kind       payload                words after the header
 *   ---------  ---------------------  ------------------------------------------
 *   TUPLE      arity                  arity element terms
 *   BIG        ndigits<<1 | negative  ndigits uint64 limbs, least significant
 *                                     first, top limb non-zero; the value never
 *                                     fits a small integer (normalized)
 *   FLOAT      0                      one double (finite)
 *   BINARY     tail_bits (0..7)       struct amb__binary minus its header
 *   MAP        npairs                 npairs keys (ascending amb_compare_exact,
 *                                     unique), then npairs values
 *   PID        0                      node atom, id, serial, creation (uint64 each)
 *   REF        nwords                 node atom, creation, then nwords uint64
 *                                     each holding one 32-bit id word
 *   PORT       0                      node atom, id, creation
 *   EXPORT     arity                  module atom, function atom
 *   CLOSURE    0                      struct amb__closure minus its header
 *
 * A list cell is two words [head, tail] at (term & ~7).
 *
 * Invariants:
 *   - Terms on a heap are immutable once the builder returns them.
 *   - A BINARY box either points into its own heap (refc == NULL) or holds
 *     one reference on refc, recorded in its heap's off-heap list so that
 *     amb_heap_reset/free drop it exactly once.
 *   - Every walker over term structure (copy, compare, hash, print, encode)
 *     must not recurse on the C stack without bound: they iterate over list
 *     tails and use an explicit stack (or a depth-bounded recursion of at
 *     most AMB__MAX_C_RECURSION) for nesting.
 */
#ifndef AMB_CORE_TERM_INTERNAL_H
#define AMB_CORE_TERM_INTERNAL_H

#include <stdatomic.h>
#include <string.h>

#include "ambitious/term.h"
#include "internal.h"

enum amb__kind {
    AMB__K_TUPLE = 1,
    AMB__K_BIG,
    AMB__K_FLOAT,
    AMB__K_BINARY,
    AMB__K_MAP,
    AMB__K_PID,
    AMB__K_REF,
    AMB__K_PORT,
    AMB__K_EXPORT,
    AMB__K_CLOSURE,
};

#define AMB__HDR(kind, payload) (((uint64_t)(payload) << 8) | (uint64_t)(kind))
#define AMB__HDR_KIND(h)        ((unsigned)((h)&0xffu))
#define AMB__HDR_PAYLOAD(h)     ((h) >> 8)

static inline bool amb__is_boxed(amb_term t)
{
    return t != 0 && (t & 7u) == 0;
}
static inline uint64_t *amb__box(amb_term t)
{
    return (uint64_t *)(uintptr_t)t;
}
static inline amb_term amb__make_box(const uint64_t *p)
{
    return (amb_term)(uintptr_t)p;
}
static inline unsigned amb__box_kind(amb_term t)
{
    return AMB__HDR_KIND(amb__box(t)[0]);
}
static inline amb_term *amb__cons_cell(amb_term t)
{
    return (amb_term *)(uintptr_t)(t & ~(amb_term)7);
}
static inline amb_term amb__make_cons(const amb_term *cell)
{
    return (amb_term)(uintptr_t)cell | 2u;
}
static inline uint32_t amb__atom_index(amb_term a)
{
    return (uint32_t)(a >> 3);
}

/* Shared, reference-counted bytes of a large binary. */
typedef struct amb__refbin {
    /* Relaxed increments suffice (a reference is only ever copied from one
     * already held); the decrement is acq_rel so the last owner sees every
     * write made by the others before it frees. */
    atomic_size_t refs;
    size_t size;
    uint8_t data[];
} amb__refbin;

/* The BINARY box. `data` points either just past this struct on the same
 * heap, or into refc->data. */
typedef struct amb__binary {
    uint64_t header; /* AMB__HDR(AMB__K_BINARY, tail_bits) */
    size_t size;     /* whole bytes, plus 1 when tail_bits != 0 */
    const uint8_t *data;
    amb__refbin *refc;        /* NULL for heap binaries */
    struct amb__binary *next; /* the heap's off-heap list (refc != NULL only) */
} amb__binary;
#define AMB__BINARY_WORDS (sizeof(amb__binary) / sizeof(uint64_t))

/* The CLOSURE box: the NEW_FUN_EXT body, kept verbatim. */
typedef struct amb__closure {
    uint64_t header; /* AMB__HDR(AMB__K_CLOSURE, 0) */
    size_t len;
    uint8_t ext[]; /* len bytes, padded to a word */
} amb__closure;

static inline double amb__float_value(amb_term t)
{
    double d;
    memcpy(&d, &amb__box(t)[1], sizeof d);
    return d;
}

/* Big integers. */
static inline size_t amb__big_ndigits(amb_term t)
{
    return (size_t)(AMB__HDR_PAYLOAD(amb__box(t)[0]) >> 1);
}
static inline bool amb__big_negative(amb_term t)
{
    return (AMB__HDR_PAYLOAD(amb__box(t)[0]) & 1u) != 0;
}
static inline const uint64_t *amb__big_digits(amb_term t)
{
    return &amb__box(t)[1];
}

/* Maps. */
static inline size_t amb__map_size(amb_term t)
{
    return (size_t)AMB__HDR_PAYLOAD(amb__box(t)[0]);
}
static inline amb_term *amb__map_keys(amb_term t)
{
    return (amb_term *)&amb__box(t)[1];
}
static inline amb_term *amb__map_values(amb_term t)
{
    return (amb_term *)&amb__box(t)[1 + amb__map_size(t)];
}

/* ---------------------------------------------------------------------------
 * Local nodes and their immediate pids (node.c)
 *
 *   local pid word: [ slot:10 | serial:22 | index:28 | 1110 ]
 *                    63    54   53    32   31      4   3  0
 *
 * A local node is a runtime of this OS process: its name atom and creation
 * are registered in a slot (1..AMB__NODE_SLOTS-1; slot 0 is never used, so no
 * pid word has zero high bits). Slots are never reused within an OS process,
 * so an old pid can never name a process of a newer runtime.
 * ------------------------------------------------------------------------ */
#define AMB__NODE_SLOTS       1024u
#define AMB__LPID_INDEX_BITS  28
#define AMB__LPID_SERIAL_BITS 22
#define AMB__LPID_INDEX_MAX   ((1u << AMB__LPID_INDEX_BITS) - 1)
#define AMB__LPID_SERIAL_MAX  ((1u << AMB__LPID_SERIAL_BITS) - 1)

static inline amb_term amb__lpid_make(unsigned slot, uint32_t index, uint32_t serial)
{
    return ((uint64_t)slot << 54) | ((uint64_t)serial << 32) | ((uint64_t)index << 4) |
           14u;
}
static inline unsigned amb__lpid_slot(amb_term t)
{
    return (unsigned)(t >> 54);
}
static inline uint32_t amb__lpid_index(amb_term t)
{
    return (uint32_t)(t >> 4) & AMB__LPID_INDEX_MAX;
}
static inline uint32_t amb__lpid_serial(amb_term t)
{
    return (uint32_t)(t >> 32) & AMB__LPID_SERIAL_MAX;
}

/* Registers a local node; *slot gets its slot. AMB_EEXIST when that name and
 * creation are registered already, AMB_ESYSLIMIT when all slots were used. */
int amb__node_register(amb_term name, uint32_t creation, unsigned *slot);
/* The slot of a registered local node, or 0 when (name, creation) is not one. */
unsigned amb__node_find(amb_term name, uint32_t creation);
/* The name and creation of a slot. False for a slot never registered. */
bool amb__node_get(unsigned slot, amb_term *name, uint32_t *creation);

/* ---------------------------------------------------------------------------
 * Heap internals (heap.c)
 * ------------------------------------------------------------------------ */

/* The heap, visible so that a message cell can embed one over its own
 * buffer (a "fixed" heap: no blocks of its own until the buffer is full). */
struct amb__heap_block;
struct amb_heap {
    struct amb__heap_block *blocks; /* current block first; NULL for a fixed heap */
    uint64_t *top, *end;
    size_t bytes; /* sum of block sizes */
    amb__binary *offheap;
};

/* Makes *heap a heap that allocates from words[0..nwords) first (then from
 * blocks of its own, like any heap). Inline: every message cell does it. */
static inline void amb__heap_init_fixed(amb_heap *heap, uint64_t *words, size_t nwords)
{
    heap->blocks = NULL;
    heap->top = words;
    heap->end = words + nwords;
    heap->bytes = 0;
    heap->offheap = NULL;
}
/* Drops what the heap holds (binary references, blocks) but not the struct. */
void amb__heap_release(amb_heap *heap);

/* nwords uninitialised words, 8-byte aligned, on heap. NULL when out of
 * memory. The bump is inline; a new block comes from heap.c. */
uint64_t *amb__heap_alloc_slow(amb_heap *heap, size_t nwords);
static inline uint64_t *amb__heap_alloc(amb_heap *heap, size_t nwords)
{
    if (__builtin_expect((size_t)(heap->end - heap->top) >= nwords, 1)) {
        uint64_t *p = heap->top;
        heap->top += nwords;
        return p;
    }
    return amb__heap_alloc_slow(heap, nwords);
}
/* Records a binary box that holds a reference on a refbin. */
void amb__heap_track_binary(amb_heap *heap, amb__binary *bin);

/* A new refbin of size bytes with one reference; NULL on ENOMEM (refbin.c). */
amb__refbin *amb__refbin_new(size_t size);
void amb__refbin_retain(amb__refbin *rb);
void amb__refbin_release(amb__refbin *rb);

/* Builds a BINARY box on heap viewing bytes [data, data+size) of rb (which
 * gains a reference) or, when rb is NULL, copying them onto the heap.
 * AMB_NONE on ENOMEM. */
amb_term amb__binary_make(amb_heap *heap, amb__refbin *rb, const uint8_t *data,
                          size_t size, unsigned tail_bits);

/* ---------------------------------------------------------------------------
 * Big integers (bignum.c). Digits are little-endian uint64 limbs.
 * ------------------------------------------------------------------------ */

/* Builds the canonical integer term for sign + limbs (strips high zero limbs
 * and returns a small integer when the value fits). AMB_NONE on ENOMEM.
 * AMB_ESYSLIMIT-size inputs are the caller's to reject. */
amb_term amb__bignum_make(amb_heap *heap, bool negative, const uint64_t *limbs, size_t n);
/* Compares two integers (small or big) by value: -1, 0, 1. */
int amb__bignum_compare(amb_term a, amb_term b);
/* Writes the decimal text of integer t into a new buffer (free with
 * amb__free). */
int amb__bignum_to_decimal(amb_term t, char **out, size_t *len);
/* The nearest double to integer t (may be +-HUGE_VAL for huge values). */
double amb__bignum_to_double(amb_term t);
/* Compares integer a with the finite double d by exact value: -1, 0, 1. */
int amb__bignum_compare_double(amb_term a, double d);

/* Limb arithmetic on magnitudes the caller owns: limbs[0..*n), least
 * significant first, with no high zero limbs (zero is n == 0), in an array
 * of cap limbs. An operation that returns bool returns false, leaving the
 * magnitude unspecified, when the result would need more than cap limbs. */
/* limbs = limbs * mul + add. */
bool amb__bignum_mul_add(uint64_t *limbs, size_t *n, size_t cap, uint64_t mul,
                         uint64_t add);
/* limbs /= div (div > 0); returns the remainder. */
uint64_t amb__bignum_div_small(uint64_t *limbs, size_t *n, uint64_t div);
/* limbs <<= bits. */
bool amb__bignum_shl(uint64_t *limbs, size_t *n, size_t cap, unsigned bits);
/* Compares two magnitudes: -1, 0, 1. */
int amb__bignum_cmp(const uint64_t *a, size_t na, const uint64_t *b, size_t nb);
/* out = a + b (out may be a or b). */
bool amb__bignum_add(uint64_t *out, size_t *nout, size_t cap, const uint64_t *a,
                     size_t na, const uint64_t *b, size_t nb);
/* a -= q * b; requires a >= q * b. */
void amb__bignum_sub_mul(uint64_t *a, size_t *na, const uint64_t *b, size_t nb,
                         uint64_t q);

/* ---------------------------------------------------------------------------
 * Float text (print_float.c)
 * ------------------------------------------------------------------------ */
/* The longest text amb__print_float_format writes ("-2.2250738585072014e-308"
 * is 24 bytes). */
#define AMB__PRINT_FLOAT_MAX 32
/* Writes finite v as OTP's float_to_list(V, [short]) does (the shortest
 * digits that read back to v) into out; returns the length (no NUL). Never
 * fails. */
size_t amb__print_float_format(double v, char *out);

/* ---------------------------------------------------------------------------
 * Atoms (atom.c)
 * ------------------------------------------------------------------------ */
/* The stable 64-bit hash of an atom's name (computed once at intern time). */
uint64_t amb__atom_hash(amb_term a);
/* True when the atom's name is all Latin-1 (for ATOM_EXT encoding). */
bool amb__atom_is_latin1(amb_term a);

/* A stable 64-bit hash of bytes, the same on every machine (hash.c). */
uint64_t amb__hash_bytes(const void *data, size_t len, uint64_t seed);

/* UTF-8 helpers (utf8.c). */
/* Decodes one code point from s[0..len) into *cp; returns its length in
 * bytes, or 0 for invalid UTF-8 (overlong, surrogate, > U+10FFFF, truncated). */
size_t amb__utf8_decode(const uint8_t *s, size_t len, uint32_t *cp);
/* Encodes cp (must be valid) into out (4 bytes room); returns its length. */
size_t amb__utf8_encode(uint32_t cp, uint8_t *out);
/* True when s[0..len) is valid UTF-8; *nchars gets the code point count. */
bool amb__utf8_valid(const uint8_t *s, size_t len, size_t *nchars);

/* ---------------------------------------------------------------------------
 * A growable byte buffer for printers and encoders (buf.c).
 * ------------------------------------------------------------------------ */
typedef struct amb__buf {
    uint8_t *data;
    size_t len, cap;
    int err; /* sticky: first failure (AMB_ENOMEM); appends become no-ops */
} amb__buf;

void amb__buf_init(amb__buf *b);
void amb__buf_free(amb__buf *b);
void amb__buf_append(amb__buf *b, const void *data, size_t len);
void amb__buf_putc(amb__buf *b, uint8_t c);
void amb__buf_printf(amb__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------------
 * An explicit stack of words for non-recursive walkers (wstack.c).
 * ------------------------------------------------------------------------ */
typedef struct amb__wstack {
    uint64_t *items;
    size_t len, cap;
    uint64_t inline_items[32];
} amb__wstack;

void amb__wstack_init(amb__wstack *s);
void amb__wstack_free(amb__wstack *s);
/* 0 or AMB_ENOMEM. */
int amb__wstack_push(amb__wstack *s, uint64_t v);
static inline bool amb__wstack_empty(const amb__wstack *s)
{
    return s->len == 0;
}
static inline uint64_t amb__wstack_pop(amb__wstack *s)
{
    return s->items[--s->len];
}

#endif /* AMB_CORE_TERM_INTERNAL_H */

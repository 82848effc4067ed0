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
 *   MAP        npairs (0..32)         npairs keys (ascending amb_compare_exact,
 *                                     unique), then npairs values: a flat map
 *   HAMT       size (33..)            the root HNODE of a hash trie (map.c)
 *   HNODE      datamap (32 bits)      SMALL(nodemap), then 2 words (key, value)
 *                                     per datamap bit, then one HNODE or
 *                                     HCOLL box per nodemap bit, both in
 *                                     bit order (never a term on its own)
 *   HCOLL      npairs (2..)           npairs (key, value) of one full hash,
 *                                     keys ascending amb_compare_exact
 *   PID        0                      node atom, id, serial, creation (uint64 each)
 *   REF        nwords                 node atom, creation, then nwords uint64
 *                                     each holding one 32-bit id word
 *   PORT       0                      node atom, id, creation
 *   EXPORT     arity                  module atom, function atom
 *   CLOSURE    0                      struct amb__closure minus its header
 *   FORWARD    new address >> 3       (never a live term: a box a collection
 *                                     moved, collect.c)
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
 *     tails and use an explicit stack for nesting (copy.c's fast path
 *     recurses at most SMALL_DEPTH levels, hamt.c's builder at most
 *     AMB__HAMT_LEVELS + 1; ordering two large maps recurses once per large
 *     map used as a key of a large map, see compare.c).
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
    AMB__K_HAMT,  /* a map above AMB__MAP_FLAT_MAX pairs: the root of its trie */
    AMB__K_HNODE, /* a node inside a trie */
    AMB__K_HCOLL, /* the pairs whose keys have one full 64-bit hash */
    /* Never a live term: the header of a box that a collection has moved
     * (collect.c); its payload is the new address >> 3. */
    AMB__K_FORWARD = 0xff,
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

/* ---------------------------------------------------------------------------
 * Maps (map.c, hamt.c). A map is canonical for its pairs: flat (MAP) with
 * keys in exact order up to AMB__MAP_FLAT_MAX pairs, a hash trie (HAMT)
 * above, and the trie's shape is a function of its keys (every key sits at
 * the shallowest level where no other key shares its hash digits; a node
 * holds at least two pairs in total). So =:= maps have the same words, and
 * =:= can compare them node by node.
 * ------------------------------------------------------------------------ */
#define AMB__MAP_FLAT_MAX 32
#define AMB__HAMT_BITS    5 /* hash bits per trie level: 32 slots a node */
/* Levels of HNODEs before the 64 hash bits run out (the last has 4 bits);
 * below them, a HCOLL. */
#define AMB__HAMT_LEVELS ((64 + AMB__HAMT_BITS - 1) / AMB__HAMT_BITS)

static inline bool amb__is_map_box(amb_term t)
{
    return amb__is_boxed(t) &&
           (amb__box_kind(t) == AMB__K_MAP || amb__box_kind(t) == AMB__K_HAMT);
}
/* The pair count of a flat or trie map. */
static inline size_t amb__map_size(amb_term t)
{
    return (size_t)AMB__HDR_PAYLOAD(amb__box(t)[0]);
}
/* A flat map's keys and values. */
static inline amb_term *amb__map_keys(amb_term t)
{
    return (amb_term *)&amb__box(t)[1];
}
static inline amb_term *amb__map_values(amb_term t)
{
    return (amb_term *)&amb__box(t)[1 + amb__map_size(t)];
}
/* The bits set in x. The popcnt instruction when the target has it; else
 * the bit-parallel sum (a libgcc call would cost more than the rest of a
 * trie step). */
static inline unsigned amb__hamt_popcount(uint32_t x)
{
#ifdef __POPCNT__
    return (unsigned)__builtin_popcount(x);
#else
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return (x * 0x01010101u) >> 24;
#endif
}
static inline uint32_t amb__hnode_datamap(const uint64_t *node)
{
    return (uint32_t)AMB__HDR_PAYLOAD(node[0]);
}
static inline uint32_t amb__hnode_nodemap(const uint64_t *node)
{
    return (uint32_t)(node[1] >> 1); /* a SMALL term */
}

/* The words a container box holds as sub-terms, box[*first .. *first + n):
 * tuple elements, a flat map's keys and values, a trie's nodes, keys and
 * values (an HNODE's nodemap word is a small integer, harmless to every
 * walker); 0 for a box with no sub-terms. What copy, size and hash walk. */
static inline size_t amb__box_children(const uint64_t *box, size_t *first)
{
    uint64_t payload = AMB__HDR_PAYLOAD(box[0]);
    *first = 1;
    switch (AMB__HDR_KIND(box[0])) {
    case AMB__K_TUPLE:
        return (size_t)payload;
    case AMB__K_MAP:
    case AMB__K_HCOLL:
        return 2 * (size_t)payload;
    case AMB__K_HAMT:
        return 1;
    case AMB__K_HNODE:
        return 1 + 2 * (size_t)amb__hamt_popcount((uint32_t)payload) +
               (size_t)amb__hamt_popcount(amb__hnode_nodemap(box));
    default:
        return 0;
    }
}

/* One step of a walk over the pairs of a map node (a flat map, a trie
 * root, an HNODE or an HCOLL) in iteration order, from *pos (0 at the
 * start), which the call advances: a key (then its value is next), a
 * value, a child node to walk before the rest of this one, or the end. The
 * walkers (iterator, printer, encoder) keep one position per open node. */
enum amb__map_step { AMB__MAP_END, AMB__MAP_KEY, AMB__MAP_VALUE, AMB__MAP_CHILD };
enum amb__map_step amb__map_node_next(amb_term node, size_t *pos, amb_term *out);

/* The map whose pairs are keys[i] => values[i], made canonical: a key
 * given twice keeps its last value (dups_fail: AMB_EEXIST instead). 0,
 * AMB_EEXIST, AMB_ENOMEM (map.c). */
int amb__map_from_arrays(amb_heap *heap, size_t n, const amb_term *keys,
                         const amb_term *values, bool dups_fail, amb_term *out);
/* A flat map box of m's pairs in exact key order, whatever m's size (for
 * comparing trie maps in term order); AMB_NONE on ENOMEM (map.c). */
amb_term amb__map_sorted(amb_heap *heap, amb_term m);
/* The flat map of trie m's pairs but the one of key `skip` (AMB_NONE: all),
 * which must be at most AMB__MAP_FLAT_MAX: 0 or AMB_ENOMEM (map.c). */
int amb__map_flatten(amb_heap *heap, amb_term m, amb_term skip, amb_term *out);

/* The hash trie (hamt.c). h is amb_hash(key) throughout. */
/* The value of key in trie map m: true and *value, or false. */
bool amb__hamt_get(amb_term m, amb_term key, uint64_t h, amb_term *value);
/* How amb__hamt_put treats a key already in the map, or one missing. */
enum amb__hamt_mode {
    AMB__HAMT_PUT,    /* insert or replace */
    AMB__HAMT_UPDATE, /* replace; a missing key is AMB_ENOTFOUND */
    AMB__HAMT_INSERT, /* insert; a present key leaves the map as it is */
};
/* m with key => value, in *out (m itself when nothing changes). 0,
 * AMB_ENOTFOUND (UPDATE), AMB_ENOMEM. */
int amb__hamt_put(amb_heap *heap, amb_term m, amb_term key, amb_term value, uint64_t h,
                  enum amb__hamt_mode mode, amb_term *out);
/* m without key in *out (m itself when key is missing, a flat map when
 * AMB__MAP_FLAT_MAX pairs are left); *value (may be NULL) gets the value
 * removed. 0, AMB_ENOTFOUND, AMB_ENOMEM. */
int amb__hamt_remove(amb_heap *heap, amb_term m, amb_term key, uint64_t h,
                     amb_term *value, amb_term *out);
/* Edits of a trie (amb_map_edit, map.c; hamt.c's top comment has the
 * rules). root is the edit's own HAMT box, made by amb__hamt_edit_begin
 * from a trie map m (NULL on ENOMEM); put and remove change the nodes the
 * edit owns in place and copy the others the first time they change.
 * put: 0 or AMB_ENOMEM; remove: 0, AMB_ENOTFOUND or AMB_ENOMEM, *value (may
 * be NULL) the value removed; a failed call leaves the pairs as they were.
 * No size makes the trie flat inside an edit. seal clears the edit's marks:
 * the box is then an ordinary trie map (of any size, possibly 32 pairs or
 * fewer: map.c makes those flat). */
uint64_t *amb__hamt_edit_begin(amb_heap *heap, amb_term m);
int amb__hamt_edit_put(amb_heap *heap, uint64_t *root, amb_term key, amb_term value,
                       uint64_t h);
int amb__hamt_edit_remove(amb_heap *heap, uint64_t *root, amb_term key, uint64_t h,
                          amb_term *value);
void amb__hamt_edit_seal(uint64_t *root);
/* A trie map of the n > AMB__MAP_FLAT_MAX pairs items[], which the call
 * sorts; duplicates as amb__map_from_arrays. */
typedef struct amb__hamt_item {
    uint64_t hash;
    amb_term key, value;
    size_t pos; /* the pair's place in the input: the last duplicate wins */
} amb__hamt_item;
int amb__hamt_build(amb_heap *heap, amb__hamt_item *items, size_t n, bool dups_fail,
                    amb_term *out);

/* ---------------------------------------------------------------------------
 * Local nodes and their immediate pids (node.c)
 *
 *   local pid word: [ slot:10 | serial:22 | index:28 | 1110 ]
 *                    63    54   53    32   31      4   3  0
 *
 * A local node is a runtime of this OS process: its name atom and creation
 * are registered in a slot (1..AMB__NODE_SLOTS-1; slot 0 is never used, so no
 * pid word has zero high bits). Slots are never reused within an OS process,
 * so an old pid can never name a process of a newer runtime. A slot's
 * identity changes once when its runtime starts distribution (node.c).
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

/*   local port word: [ slot:10 | id:49 | 10110 ]
 *                     63   54   53   5   4   0
 * A port of a local node (a socket of a runtime: its table index and a
 * serial, src/io/socket.c) is an immediate too, like a pid: a value with no
 * heap, compared as a word. */
#define AMB__LPORT_ID_BITS 49
#define AMB__LPORT_ID_MAX  ((UINT64_C(1) << AMB__LPORT_ID_BITS) - 1)

static inline amb_term amb__lport_make(unsigned slot, uint64_t id)
{
    return ((uint64_t)slot << 54) | (id << 5) | 22u;
}
static inline unsigned amb__lport_slot(amb_term t)
{
    return (unsigned)(t >> 54);
}
static inline uint64_t amb__lport_id(amb_term t)
{
    return (t >> 5) & AMB__LPORT_ID_MAX;
}

/* Registers a local node; *slot gets its slot. AMB_EEXIST when that name and
 * creation are registered already, AMB_ESYSLIMIT when all slots were used. */
int amb__node_register(amb_term name, uint32_t creation, unsigned *slot);
/* Gives slot its distributed identity (once: AMB_ESTATE the second time):
 * its pids are seen under name and creation from now on, and the first
 * identity still finds the slot. AMB_EEXIST when another slot has it. */
int amb__node_rename(unsigned slot, amb_term name, uint32_t creation);
/* The slot of a registered local node under its first or its current
 * identity, or 0 when (name, creation) is neither of any slot. */
unsigned amb__node_find(amb_term name, uint32_t creation);
/* The current name and creation of a slot. False for a slot never
 * registered. */
bool amb__node_get(unsigned slot, amb_term *name, uint32_t *creation);

/* ---------------------------------------------------------------------------
 * Heap internals (heap.c)
 * ------------------------------------------------------------------------ */

/* A heap's block: its words follow the header (heap.c makes and frees
 * them; collect.c compacts them in place). */
typedef struct amb__heap_block {
    struct amb__heap_block *next;
    size_t nwords;
    size_t mapped; /* bytes of its own mapping (amb__map), 0 when malloc'd */
    void *base;    /* where that mapping starts (the block may be aligned in it) */
    uint64_t words[];
} amb__heap_block;
/* A block of at least nwords words (more when its mapping's last page has
 * room); NULL on ENOMEM. */
amb__heap_block *amb__heap_block_new(size_t nwords);
void amb__heap_block_free(amb__heap_block *b);
/* Shortens b, a block of its own mapping, to its first keep words and the
 * rest of the page that holds the last of them (the huge page when b is
 * made of them and the words kept are a big heap's), so that the words
 * past it, whose pages were never written, are never handed out; a
 * malloc'd block stays as it is. */
void amb__heap_block_trim(amb__heap_block *b, size_t keep);
/* Keeps b (holding no term) as a spare block of heap, for its next
 * allocations. */
void amb__heap_spare(amb_heap *heap, amb__heap_block *b);
/* Bytes of memory the heap holds: amb_heap_size and its spare blocks. */
size_t amb__heap_held(const amb_heap *heap);
/* Bytes a block takes, header included. */
static inline size_t amb__heap_block_bytes(const amb__heap_block *b)
{
    return sizeof *b + b->nwords * sizeof(uint64_t);
}

/* The heap, visible so that a message cell can embed one over its own
 * buffer (a "fixed" heap: no blocks of its own until the buffer is full). */
struct amb_heap {
    struct amb__heap_block *blocks; /* current block first; NULL for a fixed heap */
    uint64_t *top, *end;
    size_t bytes; /* sum of block sizes */
    amb__binary *offheap;
    /* Empty blocks a collection kept for the heap's next allocations
     * (amb__heap_spare), taken before a new block is made. */
    struct amb__heap_block *spare;
    size_t spare_bytes;
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
    heap->spare = NULL;
    heap->spare_bytes = 0;
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
        /* A rewound or reset region is poisoned (ASan builds): handed out
         * again, it is live memory. */
        AMB__UNPOISON(p, nwords * sizeof(uint64_t));
        return p;
    }
    return amb__heap_alloc_slow(heap, nwords);
}
/* Bytes of the heap's blocks that hold terms (amb_heap_size less the free
 * tail of the current block): what a collection's trigger compares. */
size_t amb__heap_used(const amb_heap *heap);

/* A range of words [lo, hi): a part of the memory a collection empties. */
typedef struct amb__range {
    const uint64_t *lo, *hi;
} amb__range;
/* Writes the ranges of heap's blocks into out[0..cap) and returns how many
 * there are (all of them, also when that is more than cap). A fixed heap's
 * buffer is not among them (its owner knows it). */
size_t amb__heap_ranges(const amb_heap *heap, amb__range *out, size_t cap);
/* Moves the contents of src into dst (dst's own are dropped first); src is
 * left an empty heap. The struct dst stays where it is, so pointers to it
 * (amb_proc_heap) stay valid. */
void amb__heap_move(amb_heap *dst, amb_heap *src);
/* Words the box at p occupies, header included (copy.c). */
size_t amb__copy_box_words(const uint64_t *p);

/* The collection of a process heap (collect.c): copies what roots[0..n)
 * reach inside the from-space (the words of ranges[0..nranges), which the
 * call sorts) onto `to`, each sub-term once however many times it is
 * referred to (a moved box or cell is left as a forwarding word), and
 * stores the new terms in the roots. Terms outside the from-space (another
 * heap's, immediates) are referred to as they are, not copied: they must
 * outlive the result, as any constructor's inputs. Shared binaries gain a
 * reference on `to`. 0, or AMB_ENOMEM: the from-space is then half moved,
 * its words may only be freed, and the roots are unspecified. */
int amb__collect_roots(amb_heap *to, amb__range *ranges, size_t nranges, amb_term *roots,
                       size_t nroots);

/* The collection of a term-state process heap in place (collect.c): what
 * roots[0..nroots) reach is kept, each sub-term once, and the rest of the
 * heap's words are freed: the live terms slide down within the heap's own
 * blocks (sanitizer builds: to a fresh block, so that a term kept from
 * before is a use after free), blocks left empty are freed, and the heap
 * goes on allocating after the last one, the blocks it emptied kept as
 * spares up to spare[0] / spare[1] of the live size ({SIZE_MAX, 1}: all)
 * and freed beyond. What the roots reach inside the
 * words of ranges[0..nranges) (the kept message cells) is copied into the
 * heap first, as amb__collect_roots copies. The roots get the new terms.
 * No to-space: the heap's memory at its peak is its size plus side tables
 * of about a twentieth of it (and a block for what the cells held).
 * 0; AMB_ENOMEM with *ruined false: nothing changed (no memory for the
 * side tables, or for the walk's stack before a cell's term was moved);
 * AMB_ENOMEM with *ruined true: the cells are half moved and the roots
 * unspecified (the owner can only free everything). */
int amb__collect_compact(amb_heap *heap, amb__range *ranges, size_t nranges,
                         amb_term *roots, size_t nroots, const size_t spare[2],
                         bool *ruined);

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

/* ---------------------------------------------------------------------------
 * Hashing (hash.c)
 * ------------------------------------------------------------------------ */
/* A stable 64-bit hash of bytes, the same on every machine. */
uint64_t amb__hash_bytes(const void *data, size_t len, uint64_t seed);

/* The mixing step every hash goes through, inline for amb__hash_key: h
 * combined with v through the splitmix64 finalizer. */
#define AMB__HASH_SEED 0x9e3779b97f4a7c15ull
static inline uint64_t amb__hash_feed(uint64_t h, uint64_t v)
{
    uint64_t x = h ^ (v + AMB__HASH_SEED + (h << 6) + (h >> 2));
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}
/* amb_hash(t), with the small integer (the commonest map key) inline: the
 * same value amb_hash gives, which hash.c computes with these steps. */
static inline uint64_t amb__hash_key(amb_term t)
{
    if (amb_is_small(t))
        return amb__hash_feed(amb__hash_feed(AMB__HASH_SEED, AMB_T_INTEGER),
                              (uint64_t)amb_small_value(t));
    return amb_hash(t);
}

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

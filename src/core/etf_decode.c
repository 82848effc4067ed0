/*
 * etf_decode.c - binary_to_term: the External Term Format to terms.
 *
 * Reads every tag OTP 25 and 26 write, the legacy forms (Latin-1 atoms,
 * PID_EXT, PORT_EXT, NEW_PORT_EXT, REFERENCE_EXT, NEW_REFERENCE_EXT,
 * FLOAT_EXT) and compressed terms (tag 80, top level only; the inflating
 * is etf_compress.c's). What OTP 25's
 * binary_to_term rejects, we reject (docs/design/etf.md lists each rule and
 * the few places where we are stricter).
 *
 * Safety on untrusted bytes, the reason for this file's shape:
 *   - Every read is preceded by a check of the bytes left (NEED).
 *   - A container's count is checked against the bytes left before anything
 *     is allocated: each element takes at least one input byte, so the heap
 *     grows by at most a constant factor of the input (and of the
 *     decompressed size, itself capped by max_decompressed).
 *   - No recursion: unfinished containers sit on an explicit frame stack of
 *     at most max_depth frames. Every slot a frame fills lives on the heap
 *     (or is the caller's result), so growing the frame stack moves nothing
 *     that is pointed to.
 *   - A failure leaves only unreachable cells on the heap (its large
 *     binaries stay tracked and are released with the heap).
 *
 * Canonical results: integers that fit a small integer are small, maps are
 * in their canonical form (flat and sorted up to 32 pairs, a trie above;
 * duplicate keys are AMB_EDECODE, as in OTP), floats are finite, atoms are
 * valid UTF-8 of at most 255 characters.
 */
#include <math.h>

#include "etf_internal.h"
#include "scan.h"
#include "term_internal.h"

/* ---------------------------------------------------------------------------
 * The decoder state and its frame stack
 * ------------------------------------------------------------------------ */

enum frame_kind {
    D_TUPLE, /* slot: next element; left: elements left */
    D_LIST,  /* slot: head of the next cell; left: heads left, then the tail */
    D_MAP,   /* slot: a flat box of the pairs; left: next index in 0..total (key,
                value, ...); dst: where the map goes */
    D_FUN,   /* slot: 5 heap words for the sub-terms; left: next sub-term */
};

typedef struct dframe {
    amb_term *slot;
    amb_term *dst;        /* D_FUN, D_MAP: where the term goes */
    const uint8_t *start; /* D_FUN: the body's Size field */
    size_t left, total;   /* D_MAP: 2 * pairs; D_FUN: 4 + NumFree */
    unsigned kind;
} dframe;

/* The atoms met so far in this input, by their bytes: messages repeat a
 * few atoms (record tags, node names), and a hit skips the atom table's
 * hashing, UTF-8 check and probe, which otherwise dominate decoding. */
#define ATOM_CACHE 16
typedef struct atom_slot {
    const uint8_t *name; /* the encoded name, inside the input */
    uint32_t key;        /* length << 1 | Latin-1; UINT32_MAX when empty */
    amb_term atom;
} atom_slot;

typedef struct dec {
    amb_heap *heap;
    const uint8_t *p, *end;
    bool existing_only;
    amb__etf_atom_budget *budget; /* NULL: make any atom */
    const amb_term *refs;         /* ATOM_CACHE_REF's atoms (distribution) */
    size_t nrefs;                 /* 0: ATOM_CACHE_REF is refused */
    size_t max_depth;
    dframe *frames;
    size_t nframes, cap;
    dframe inline_frames[16];
    atom_slot atoms[ATOM_CACHE];
} dec;

static void dec_init(dec *d, amb_heap *heap, const uint8_t *p, const uint8_t *end,
                     bool existing_only, amb__etf_atom_budget *budget, size_t max_depth)
{
    d->heap = heap;
    d->p = p;
    d->end = end;
    d->existing_only = existing_only;
    d->budget = budget;
    d->refs = NULL;
    d->nrefs = 0;
    d->max_depth = max_depth;
    d->frames = d->inline_frames;
    d->nframes = 0;
    d->cap = AMB_COUNTOF(d->inline_frames);
    for (size_t i = 0; i < ATOM_CACHE; i++)
        d->atoms[i].key = UINT32_MAX;
}

static void dec_free(dec *d)
{
    if (d->frames != d->inline_frames)
        amb__free(d->frames);
}

static dframe *push(dec *d, int *rc)
{
    if (amb__unlikely(d->nframes >= d->max_depth)) {
        *rc = AMB_EDEPTH;
        return NULL;
    }
    if (amb__unlikely(d->nframes == d->cap)) {
        size_t cap = d->cap * 2;
        dframe *f = amb__malloc(cap * sizeof *f);
        if (f == NULL) {
            *rc = AMB_ENOMEM;
            return NULL;
        }
        memcpy(f, d->frames, d->nframes * sizeof *f);
        dec_free(d);
        d->frames = f;
        d->cap = cap;
    }
    return &d->frames[d->nframes++];
}

#define LEFT() ((size_t)(d->end - d->p))
#define NEED(n)                                  \
    do {                                         \
        if (amb__unlikely(LEFT() < (size_t)(n))) \
            return AMB_EDECODE;                  \
    } while (0)

/* ---------------------------------------------------------------------------
 * Leaves
 * ------------------------------------------------------------------------ */

/* The body of an atom whose tag has been read. Latin-1 forms are converted
 * to UTF-8 (each byte >= 0x80 becomes two bytes). */
static int atom_body(dec *d, unsigned tag, amb_term *out)
{
    if (tag == AMB__ETF_ATOM_CACHE_REF) {
        /* An index into the atoms of the message's distribution header. */
        NEED(1);
        size_t i = *d->p++;
        if (i >= d->nrefs)
            return AMB_EDECODE;
        *out = d->refs[i];
        return 0;
    }
    size_t len;
    if (tag == AMB__ETF_SMALL_ATOM || tag == AMB__ETF_SMALL_ATOM_UTF8) {
        NEED(1);
        len = *d->p++;
    } else {
        NEED(2);
        len = amb__etf_get16(d->p);
        d->p += 2;
    }
    NEED(len);
    const uint8_t *s = d->p;
    d->p += len;
    bool latin1 = tag == AMB__ETF_ATOM || tag == AMB__ETF_SMALL_ATOM;
    uint32_t key = (uint32_t)len << 1 | latin1; /* len < 2^16 */
    atom_slot *slot = &d->atoms[(len + (len ? s[0] + 3u * s[len - 1] : 0)) % ATOM_CACHE];
    if (slot->key == key && memcmp(slot->name, s, len) == 0) {
        *out = slot->atom;
        return 0;
    }
    char utf8[2 * AMB_ATOM_MAX_CHARS];
    const char *name = (const char *)s;
    if (latin1) {
        if (len > AMB_ATOM_MAX_CHARS)
            return AMB_EDECODE;
        size_t n = 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < 0x80u) {
                utf8[n++] = (char)s[i];
            } else {
                utf8[n++] = (char)(0xc0u | (s[i] >> 6));
                utf8[n++] = (char)(0x80u | (s[i] & 0x3fu));
            }
        }
        name = utf8;
        len = n;
    } else if (len > AMB_ATOM_MAX_BYTES) {
        return AMB_EDECODE;
    }
    /* The atom table checks UTF-8 and the 255-character limit itself and
     * says AMB_EBADARG, which for bytes off the wire means a bad encoding. */
    int rc;
    if (d->existing_only) {
        rc = amb_atom_existing(name, len, out);
    } else if (d->budget != NULL) {
        rc = amb_atom_existing(name, len, out);
        if (rc == AMB_ENOTFOUND) {
            /* Another thread may make the same atom meanwhile; the budget
             * then pays for an atom that was not new, which errs safe. */
            size_t limit = amb_atom_limit();
            if (d->budget->left == 0 || d->budget->reserve >= limit ||
                amb_atom_count() >= limit - d->budget->reserve)
                return AMB_ESYSLIMIT;
            rc = amb_atom_new(name, len, out);
            if (rc == 0)
                d->budget->left--;
        }
    } else {
        rc = amb_atom_new(name, len, out);
    }
    if (rc == 0)
        *slot = (atom_slot){.name = s, .key = key, .atom = *out};
    return rc == AMB_EBADARG ? AMB_EDECODE : rc;
}

/* An atom where the format demands one (the node of a pid, a module...). */
static int read_atom(dec *d, amb_term *out)
{
    NEED(1);
    unsigned tag = *d->p++;
    switch (tag) {
    case AMB__ETF_ATOM:
    case AMB__ETF_SMALL_ATOM:
    case AMB__ETF_ATOM_UTF8:
    case AMB__ETF_SMALL_ATOM_UTF8:
    case AMB__ETF_ATOM_CACHE_REF:
        return atom_body(d, tag, out);
    default:
        return AMB_EDECODE;
    }
}

/* A big number's magnitude of n bytes at d->p: canonical, so values that fit
 * are small, and high zero bytes (which OTP accepts) are dropped. */
static int big_body(dec *d, size_t n, bool negative, amb_term *out)
{
    NEED(n);
    const uint8_t *m = d->p;
    d->p += n;
    while (n > 0 && m[n - 1] == 0)
        n--;
    if (n <= 8) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v |= (uint64_t)m[i] << (8 * i);
        if (!negative && v <= (uint64_t)AMB_SMALL_MAX) {
            *out = AMB_SMALL((int64_t)v);
            return 0;
        }
        if (negative && v <= (uint64_t)1 << 62) {
            *out = AMB_SMALL(-(int64_t)v);
            return 0;
        }
    }
    if (n > AMB_BIG_MAX_BYTES)
        return AMB_ESYSLIMIT;
    size_t nd = (n + 7) / 8;
    uint64_t *box = amb__heap_alloc(d->heap, 1 + nd);
    if (box == NULL)
        return AMB_ENOMEM;
    box[0] = AMB__HDR(AMB__K_BIG, (uint64_t)nd << 1 | negative);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    box[nd] = 0;
    memcpy(box + 1, m, n);
#else
    memset(box + 1, 0, nd * 8);
    for (size_t i = 0; i < n; i++)
        box[1 + i / 8] |= (uint64_t)m[i] << (8 * (i % 8));
#endif
    *out = amb__make_box(box);
    return 0;
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* FLOAT_EXT: 31 bytes holding a NUL-terminated "%.20e" string. Accepts what
 * OTP's reader accepts: [+-]digits(.|,)digits[(e|E)[+-]digits], nothing
 * else before the NUL, and a finite value. */
static int float_string(dec *d, amb_term *out)
{
    NEED(31);
    const uint8_t *s = d->p;
    d->p += 31;
    const uint8_t *nul = memchr(s, 0, 31);
    if (nul == NULL)
        return AMB_EDECODE;
    size_t n = (size_t)(nul - s), i = 0, from;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    for (from = i; i < n && is_digit(s[i]); i++)
        ;
    if (i == from || i == n || (s[i] != '.' && s[i] != ','))
        return AMB_EDECODE;
    for (from = ++i; i < n && is_digit(s[i]); i++)
        ;
    if (i == from)
        return AMB_EDECODE;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (from = i; i < n && is_digit(s[i]); i++)
            ;
        if (i == from)
            return AMB_EDECODE;
    }
    if (i != n)
        return AMB_EDECODE;
    char text[32];
    for (i = 0; i < n; i++)
        text[i] = s[i] == ',' ? '.' : (char)s[i];
    text[n] = '\0';
    /* FLOAT_EXT always uses '.': a program that called setlocale must not
     * change what we read. */
    double v;
    if (amb__scan_number_strtod(text, &v) != 0)
        return AMB_ENOMEM;
    if (!isfinite(v))
        return AMB_EDECODE;
    if ((*out = amb_float(d->heap, v)) == AMB_NONE)
        return AMB_ENOMEM;
    return 0;
}

/* Pids, ports and references: the node atom, then fixed-width fields. The
 * legacy forms keep OTP's limits on their narrow fields. */
static int identifier(dec *d, unsigned tag, amb_term *out)
{
    uint32_t words[AMB_REF_MAX_WORDS];
    size_t nwords = 0;
    if (tag == AMB__ETF_NEWER_REFERENCE || tag == AMB__ETF_NEW_REFERENCE) {
        NEED(2);
        nwords = amb__etf_get16(d->p);
        d->p += 2;
        /* OTP 25 takes 0 words in NEWER_REFERENCE; a reference here has at
         * least one (term.h), so we refuse it. */
        if (nwords == 0 || nwords > AMB_REF_MAX_WORDS)
            return AMB_EDECODE;
    }
    amb_term node;
    int rc = read_atom(d, &node);
    if (rc != 0)
        return rc;
    amb_term t;
    switch (tag) {
    case AMB__ETF_NEW_PID:
        NEED(12);
        t = amb_pid_term(d->heap, node, amb__etf_get32(d->p), amb__etf_get32(d->p + 4),
                         amb__etf_get32(d->p + 8));
        d->p += 12;
        break;
    case AMB__ETF_PID: {
        NEED(9);
        uint32_t id = amb__etf_get32(d->p), serial = amb__etf_get32(d->p + 4);
        uint8_t creation = d->p[8];
        d->p += 9;
        if (id > 0x7fffu || serial > 0x1fffu || creation > 3)
            return AMB_EDECODE;
        t = amb_pid_term(d->heap, node, id, serial, creation);
        break;
    }
    case AMB__ETF_V4_PORT:
        NEED(12);
        t = amb_port_term(d->heap, node, amb__etf_get64(d->p), amb__etf_get32(d->p + 8));
        d->p += 12;
        break;
    case AMB__ETF_NEW_PORT:
        NEED(8);
        t = amb_port_term(d->heap, node, amb__etf_get32(d->p), amb__etf_get32(d->p + 4));
        d->p += 8;
        break;
    case AMB__ETF_PORT: {
        NEED(5);
        uint32_t id = amb__etf_get32(d->p);
        uint8_t creation = d->p[4];
        d->p += 5;
        if (creation > 3)
            return AMB_EDECODE;
        t = amb_port_term(d->heap, node, id, creation);
        break;
    }
    case AMB__ETF_REFERENCE: {
        NEED(5);
        words[0] = amb__etf_get32(d->p);
        uint8_t creation = d->p[4];
        d->p += 5;
        if (words[0] > 0x3ffffu || creation > 3)
            return AMB_EDECODE;
        t = amb_ref_term(d->heap, node, creation, words, 1);
        break;
    }
    default: { /* NEWER_REFERENCE, NEW_REFERENCE */
        bool newer = tag == AMB__ETF_NEWER_REFERENCE;
        size_t cw = newer ? 4 : 1;
        NEED(cw + 4 * nwords);
        uint32_t creation = newer ? amb__etf_get32(d->p) : d->p[0];
        if (!newer && creation > 3)
            return AMB_EDECODE;
        for (size_t i = 0; i < nwords; i++)
            words[i] = amb__etf_get32(d->p + cw + 4 * i);
        d->p += cw + 4 * nwords;
        t = amb_ref_term(d->heap, node, creation, words, nwords);
        break;
    }
    }
    if (t == AMB_NONE)
        return AMB_ENOMEM;
    *out = t;
    return 0;
}

/* EXPORT_EXT: Module, Function, Arity; OTP takes the arity as any integer
 * encoding of 0..255 (SMALL_INTEGER or INTEGER). */
static int export_fun(dec *d, amb_term *out)
{
    amb_term m, f;
    int rc;
    if ((rc = read_atom(d, &m)) != 0 || (rc = read_atom(d, &f)) != 0)
        return rc;
    NEED(2);
    uint32_t arity;
    if (d->p[0] == AMB__ETF_SMALL_INTEGER) {
        arity = d->p[1];
        d->p += 2;
    } else if (d->p[0] == AMB__ETF_INTEGER) {
        NEED(5);
        arity = amb__etf_get32(d->p + 1);
        d->p += 5;
        if (arity > 255)
            return AMB_EDECODE;
    } else {
        return AMB_EDECODE;
    }
    if ((*out = amb_export_term(d->heap, m, f, (uint8_t)arity)) == AMB_NONE)
        return AMB_ENOMEM;
    return 0;
}

static int binary_body(dec *d, unsigned tag, amb_term *out)
{
    NEED(tag == AMB__ETF_BINARY ? 4 : 5);
    size_t len = amb__etf_get32(d->p);
    unsigned bits = tag == AMB__ETF_BINARY ? 8 : d->p[4];
    d->p += tag == AMB__ETF_BINARY ? 4 : 5;
    /* OTP: Bits is 1..8 for a non-empty bitstring, 0 for an empty one. */
    if (tag == AMB__ETF_BIT_BINARY && (bits > 8 || (bits == 0) != (len == 0)))
        return AMB_EDECODE;
    NEED(len);
    amb_term t;
    if (bits == 8 || len == 0)
        t = amb_binary(d->heap, d->p, len); /* heap copy or refbin by size */
    else
        t = amb_bitstring(d->heap, d->p, (len - 1) * 8 + bits); /* clears unused bits */
    if (t == AMB_NONE)
        return AMB_ENOMEM;
    d->p += len;
    *out = t;
    return 0;
}

/* ---------------------------------------------------------------------------
 * One term: a leaf in full, or a container's header and a frame for the
 * children that follow.
 * ------------------------------------------------------------------------ */

static int decode_one(dec *d, amb_term *dst)
{
    int rc = 0;
    dframe *f;
again:
    NEED(1);
    unsigned tag = *d->p++;
    switch (tag) {
    case AMB__ETF_SMALL_INTEGER:
        NEED(1);
        *dst = AMB_SMALL(*d->p++);
        return 0;
    case AMB__ETF_INTEGER:
        NEED(4);
        *dst = AMB_SMALL((int32_t)amb__etf_get32(d->p));
        d->p += 4;
        return 0;
    case AMB__ETF_SMALL_BIG: {
        NEED(2);
        size_t n = d->p[0];
        bool negative = d->p[1] != 0; /* OTP reads any non-zero sign as minus */
        d->p += 2;
        return big_body(d, n, negative, dst);
    }
    case AMB__ETF_LARGE_BIG: {
        NEED(5);
        size_t n = amb__etf_get32(d->p);
        bool negative = d->p[4] != 0;
        d->p += 5;
        return big_body(d, n, negative, dst);
    }
    case AMB__ETF_NEW_FLOAT: {
        NEED(8);
        uint64_t bits = amb__etf_get64(d->p);
        d->p += 8;
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v))
            return AMB_EDECODE;
        return (*dst = amb_float(d->heap, v)) == AMB_NONE ? AMB_ENOMEM : 0;
    }
    case AMB__ETF_FLOAT:
        return float_string(d, dst);
    case AMB__ETF_ATOM:
    case AMB__ETF_SMALL_ATOM:
    case AMB__ETF_ATOM_UTF8:
    case AMB__ETF_SMALL_ATOM_UTF8:
    case AMB__ETF_ATOM_CACHE_REF:
        return atom_body(d, tag, dst);
    case AMB__ETF_NIL:
        *dst = AMB_NIL;
        return 0;
    case AMB__ETF_SMALL_TUPLE:
    case AMB__ETF_LARGE_TUPLE: {
        size_t arity;
        if (tag == AMB__ETF_SMALL_TUPLE) {
            NEED(1);
            arity = *d->p++;
        } else {
            NEED(4);
            arity = amb__etf_get32(d->p);
            d->p += 4;
        }
        if (arity > LEFT())
            return AMB_EDECODE;
        if (arity > AMB_TUPLE_MAX_ARITY)
            return AMB_ESYSLIMIT;
        uint64_t *box = amb__heap_alloc(d->heap, 1 + arity);
        if (box == NULL)
            return AMB_ENOMEM;
        box[0] = AMB__HDR(AMB__K_TUPLE, arity);
        /* The result is stored before the push: a push may move the frame
         * stack, never the heap slot dst points to. */
        *dst = amb__make_box(box);
        if (arity == 0)
            return 0;
        if ((f = push(d, &rc)) == NULL)
            return rc;
        *f = (dframe){.kind = D_TUPLE, .slot = (amb_term *)(box + 1), .left = arity};
        return 0;
    }
    case AMB__ETF_STRING: {
        NEED(2);
        size_t n = amb__etf_get16(d->p);
        d->p += 2;
        NEED(n);
        if (n == 0) {
            *dst = AMB_NIL;
            return 0;
        }
        amb_term *cells = (amb_term *)amb__heap_alloc(d->heap, 2 * n);
        if (cells == NULL)
            return AMB_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            cells[2 * i] = AMB_SMALL(d->p[i]);
            cells[2 * i + 1] = i + 1 < n ? amb__make_cons(&cells[2 * i + 2]) : AMB_NIL;
        }
        d->p += n;
        *dst = amb__make_cons(cells);
        return 0;
    }
    case AMB__ETF_LIST: {
        NEED(4);
        size_t n = amb__etf_get32(d->p);
        d->p += 4;
        if (n == 0)
            goto again;  /* OTP: a list of no cells is just its tail */
        if (n >= LEFT()) /* n elements and a tail, one byte each at least */
            return AMB_EDECODE;
        amb_term *cells = (amb_term *)amb__heap_alloc(d->heap, 2 * n);
        if (cells == NULL)
            return AMB_ENOMEM;
        for (size_t i = 0; i + 1 < n; i++)
            cells[2 * i + 1] = amb__make_cons(&cells[2 * i + 2]);
        *dst = amb__make_cons(cells);
        if ((f = push(d, &rc)) == NULL)
            return rc;
        *f = (dframe){.kind = D_LIST, .slot = cells, .left = n};
        return 0;
    }
    case AMB__ETF_BINARY:
    case AMB__ETF_BIT_BINARY:
        return binary_body(d, tag, dst);
    case AMB__ETF_MAP: {
        NEED(4);
        size_t n = amb__etf_get32(d->p);
        d->p += 4;
        if (n > LEFT() / 2)
            return AMB_EDECODE;
        uint64_t *box = amb__heap_alloc(d->heap, 1 + 2 * n);
        if (box == NULL)
            return AMB_ENOMEM;
        box[0] = AMB__HDR(AMB__K_MAP, n);
        *dst = amb__make_box(box);
        if (n == 0)
            return 0;
        if ((f = push(d, &rc)) == NULL)
            return rc;
        *f = (dframe){.kind = D_MAP, .slot = (amb_term *)box, .dst = dst, .total = 2 * n};
        return 0;
    }
    case AMB__ETF_NEW_PID:
    case AMB__ETF_PID:
    case AMB__ETF_V4_PORT:
    case AMB__ETF_NEW_PORT:
    case AMB__ETF_PORT:
    case AMB__ETF_NEWER_REFERENCE:
    case AMB__ETF_NEW_REFERENCE:
    case AMB__ETF_REFERENCE:
        return identifier(d, tag, dst);
    case AMB__ETF_EXPORT:
        return export_fun(d, dst);
    case AMB__ETF_NEW_FUN: {
        /* The body is kept verbatim, but it is parsed all the same (its
         * terms may be anything, and we must know where it ends and refuse
         * what OTP refuses), through a frame whose sub-terms land in five
         * scratch words: Module, OldIndex, OldUniq, Pid, and one for the
         * free variables in turn. */
        const uint8_t *start = d->p;
        NEED(AMB__ETF_FUN_FIXED);
        size_t size = amb__etf_get32(start);
        size_t nfree = amb__etf_get32(start + 25);
        if (size < AMB__ETF_FUN_FIXED + 4 || size > LEFT())
            return AMB_EDECODE;
        d->p += AMB__ETF_FUN_FIXED;
        if (nfree > LEFT() - 4)
            return AMB_EDECODE;
        /* Under a distribution header's atom cache the body may hold
         * ATOM_CACHE_REFs, which mean nothing outside this message: every
         * sub-term is kept, and fun_finish writes the body again. */
        amb_term *slots =
            (amb_term *)amb__heap_alloc(d->heap, d->nrefs > 0 ? 4 + nfree : 5);
        if (slots == NULL)
            return AMB_ENOMEM;
        *dst = AMB_NIL; /* replaced by the closure when the body is done */
        if ((f = push(d, &rc)) == NULL)
            return rc;
        *f = (dframe){
            .kind = D_FUN, .slot = slots, .dst = dst, .start = start, .total = 4 + nfree};
        return 0;
    }
    default:
        /* Includes tag 80 below the top level, FUN_EXT and LOCAL_EXT. */
        return AMB_EDECODE;
    }
}

/* ---------------------------------------------------------------------------
 * Finishing containers
 * ------------------------------------------------------------------------ */

static void swap_pair(amb_term *k, amb_term *v, size_t i, size_t j)
{
    amb_term t = k[i];
    k[i] = k[j];
    k[j] = t;
    t = v[i];
    v[i] = v[j];
    v[j] = t;
}

static void sift_down(amb_term *k, amb_term *v, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && amb_compare_exact(k[child], k[child + 1]) < 0)
            child++;
        if (amb_compare_exact(k[root], k[child]) >= 0)
            return;
        swap_pair(k, v, root, child);
        root = child;
    }
}

/* Sorts keys and values together, in place, without allocating. */
static void heap_sort(amb_term *k, amb_term *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(k, v, i, n);
    for (size_t end = n; end-- > 1;) {
        swap_pair(k, v, 0, end);
        sift_down(k, v, 0, end);
    }
}

/* Puts a decoded map in canonical form and refuses duplicate keys. The
 * pairs were decoded into a flat box. Up to 32 pairs that box is the map,
 * sorted in place: small maps arrive sorted (OTP's flatmap order differs
 * from ours only in how integers and floats interleave), so the common case
 * is one linear check. A larger map becomes a trie built from the box's
 * pairs (the box is left unused on the heap: at most a constant factor of
 * the input). */
static int map_finish(dec *d, const dframe *f)
{
    amb_term *box = f->slot;
    size_t n = (size_t)AMB__HDR_PAYLOAD(box[0]);
    amb_term *k = box + 1, *v = box + 1 + n;
    if (n > AMB__MAP_FLAT_MAX) {
        int rc = amb__map_from_arrays(d->heap, n, k, v, true, f->dst);
        return rc == AMB_EEXIST ? AMB_EDECODE : rc;
    }
    for (size_t i = 1; i < n; i++) {
        int c = amb_compare_exact(k[i - 1], k[i]);
        if (c == 0)
            return AMB_EDECODE;
        if (c > 0) {
            heap_sort(k, v, n);
            for (size_t j = 1; j < n; j++)
                if (amb_compare_exact(k[j - 1], k[j]) == 0)
                    return AMB_EDECODE;
            return 0;
        }
    }
    return 0;
}

/* The closure of NEW_FUN body f decoded under an atom cache: its fixed
 * fields as they came, its sub-terms (every one kept in f->slot) encoded
 * again with atoms in full, so the closure can be sent anywhere. AMB_NONE
 * when out of memory. */
static amb_term fun_rewrite(dec *d, const dframe *f)
{
    size_t n = AMB__ETF_FUN_FIXED, len;
    for (size_t i = 0; i < f->total; i++) {
        if (amb_etf_size(f->slot[i], AMB_ETF_NO_VERSION, &len) != 0)
            return AMB_NONE;
        n += len;
    }
    uint8_t *body = amb__malloc(n);
    if (body == NULL)
        return AMB_NONE;
    memcpy(body, f->start, AMB__ETF_FUN_FIXED);
    amb__etf_put32(body, (uint32_t)n);
    size_t at = AMB__ETF_FUN_FIXED;
    for (size_t i = 0; i < f->total; i++) {
        AMB__CHECK(
            amb_etf_encode(f->slot[i], AMB_ETF_NO_VERSION, body + at, n - at, &len) == 0);
        at += len;
    }
    amb_term c = amb_closure_term(d->heap, body, n);
    amb__free(body);
    return c;
}

static int fun_finish(dec *d, const dframe *f)
{
    size_t size = amb__etf_get32(f->start);
    if ((size_t)(d->p - f->start) != size)
        return AMB_EDECODE;
    const amb_term *s = f->slot;
    if (!amb_is_atom(s[0]) || !amb_is_integer(s[1]) || !amb_is_integer(s[2]) ||
        amb_type_of(s[3]) != AMB_T_PID)
        return AMB_EDECODE;
    amb_term c =
        d->nrefs > 0 ? fun_rewrite(d, f) : amb_closure_term(d->heap, f->start, size);
    if (c == AMB_NONE)
        return AMB_ENOMEM;
    *f->dst = c;
    return 0;
}

/* Finds the slot for the next term: 1 and *dst set, 0 when the whole term is
 * done, or an error from finishing a container. */
static int next_slot(dec *d, amb_term **dst)
{
    while (d->nframes > 0) {
        dframe *f = &d->frames[d->nframes - 1];
        int rc;
        switch (f->kind) {
        case D_TUPLE:
            if (f->left > 0) {
                f->left--;
                *dst = f->slot++;
                return 1;
            }
            break;
        case D_LIST:
            if (f->left > 0) {
                f->left--;
                *dst = f->slot;
                f->slot += 2;
                return 1;
            }
            /* The tail is the last cell's second word. The frame goes first,
             * so a chain of LIST_EXT tails stays at one depth, as the list
             * [a, b | T] is one level however it was split. */
            *dst = f->slot - 1;
            d->nframes--;
            return 1;
        case D_MAP:
            if (f->left < f->total) {
                size_t j = f->left++, n = f->total / 2;
                *dst = f->slot + 1 + (j & 1 ? n : 0) + j / 2;
                return 1;
            }
            if ((rc = map_finish(d, f)) != 0)
                return rc;
            break;
        default: /* D_FUN */
            if (f->left < f->total) {
                *dst = f->slot + (d->nrefs > 0 || f->left < 4 ? f->left : 4);
                f->left++;
                return 1;
            }
            if ((rc = fun_finish(d, f)) != 0)
                return rc;
            break;
        }
        d->nframes--;
    }
    return 0;
}

static int decode_term(dec *d, amb_term *out)
{
    amb_term result = AMB_NONE;
    amb_term *dst = &result;
    for (;;) {
        int rc = decode_one(d, dst);
        if (rc == 0)
            rc = next_slot(d, &dst);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
    }
    *out = result;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Compressed terms
 * ------------------------------------------------------------------------ */

static int decode_compressed(amb_heap *heap, const uint8_t *p, const uint8_t *end,
                             const amb_etf_decode_opts *o, amb__etf_atom_budget *budget,
                             size_t max_decompressed, size_t max_depth, amb_term *out,
                             const uint8_t **stop)
{
    if ((size_t)(end - p) < 5)
        return AMB_EDECODE;
    size_t size = amb__etf_get32(p + 1);
    p += 5;
    if (size == 0)
        return AMB_EDECODE;
    if (size > max_decompressed)
        return AMB_ESYSLIMIT;
    uint8_t *raw;
    size_t consumed;
    int rc = amb__etf_compress_inflate(p, (size_t)(end - p), size, &raw, &consumed);
    if (rc != 0)
        return rc;
    dec d;
    dec_init(&d, heap, raw, raw + size, o && o->existing_atoms_only, budget, max_depth);
    amb_term t;
    rc = decode_term(&d, &t);
    /* Stricter than OTP, which ignores bytes after the term inside the
     * compressed data: the size field must be the term's size. */
    if (rc == 0 && d.p != d.end)
        rc = AMB_EDECODE;
    dec_free(&d);
    amb__free(raw); /* everything decoded was copied onto the heap */
    if (rc != 0)
        return rc;
    *out = t;
    *stop = p + consumed;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Public entry points
 * ------------------------------------------------------------------------ */

int amb_etf_decode(amb_heap *heap, const uint8_t *buf, size_t len,
                   const amb_etf_decode_opts *opts, amb_term *out, size_t *used)
{
    return amb__etf_decode_budget(heap, buf, len, opts, NULL, out, used);
}

int amb__etf_decode_budget(amb_heap *heap, const uint8_t *buf, size_t len,
                           const amb_etf_decode_opts *opts, amb__etf_atom_budget *budget,
                           amb_term *out, size_t *used)
{
    return amb__etf_decode_refs(heap, buf, len, opts, budget, NULL, 0, out, used);
}

int amb__etf_decode_refs(amb_heap *heap, const uint8_t *buf, size_t len,
                         const amb_etf_decode_opts *opts, amb__etf_atom_budget *budget,
                         const amb_term *refs, size_t nrefs, amb_term *out, size_t *used)
{
    const unsigned known = AMB_ETF_COMPRESSED | AMB_ETF_NO_VERSION | AMB_ETF_LATIN1_ATOMS;
    if (heap == NULL || out == NULL || (buf == NULL && len > 0) ||
        (opts != NULL && (opts->flags & ~known) != 0))
        return AMB__MISUSE();
    size_t max_depth = opts && opts->max_depth ? opts->max_depth : AMB_ETF_MAX_DEPTH;
    size_t max_z = opts && opts->max_decompressed ? opts->max_decompressed
                                                  : AMB_ETF_MAX_DECOMPRESSED;
    const uint8_t *p = buf, *end = buf + len;
    if (!(opts && (opts->flags & AMB_ETF_NO_VERSION))) {
        if (len == 0 || *p != AMB_ETF_VERSION)
            return AMB_EDECODE;
        p++;
    }
    amb_term t;
    const uint8_t *stop;
    int rc;
    if (p < end && *p == AMB__ETF_COMPRESSED) {
        rc = decode_compressed(heap, p, end, opts, budget, max_z, max_depth, &t, &stop);
    } else {
        dec d;
        dec_init(&d, heap, p, end, opts && opts->existing_atoms_only, budget, max_depth);
        d.refs = refs;
        d.nrefs = refs != NULL ? nrefs : 0;
        rc = decode_term(&d, &t);
        stop = d.p;
        dec_free(&d);
    }
    if (rc != 0)
        return rc;
    *out = t;
    if (used != NULL)
        *used = (size_t)(stop - buf);
    return 0;
}

int amb_binary_to_term(amb_heap *heap, amb_term bin, amb_term *out)
{
    if (heap == NULL || out == NULL || bin == AMB_NONE)
        return AMB__MISUSE();
    const uint8_t *data;
    size_t size;
    if (amb_binary_get(bin, &data, &size) != 0)
        return AMB_ETYPE;
    amb_term t;
    size_t used;
    int rc = amb_etf_decode(heap, data, size, NULL, &t, &used);
    if (rc != 0)
        return rc;
    /* Stricter than OTP 25, which ignores trailing bytes: binary_to_term/1
     * here decodes the whole binary or nothing (etf.h). */
    if (used != size)
        return AMB_EDECODE;
    *out = t;
    return 0;
}

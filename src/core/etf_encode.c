/*
 * etf_encode.c - term_to_binary: terms to the External Term Format.
 *
 * The encoding is the one OTP picks, so that our bytes equal erl's for the
 * same term wherever OTP's choice is deterministic (docs/design/etf.md):
 *   - integers: SMALL_INTEGER for 0..255, INTEGER for other int32 values,
 *     SMALL_BIG up to 255 magnitude bytes, LARGE_BIG beyond;
 *   - floats: NEW_FLOAT; atoms: SMALL_ATOM_UTF8 / ATOM_UTF8 (OTP 26), or
 *     ATOM_EXT for Latin-1 atoms with AMB_ETF_LATIN1_ATOMS (OTP 25);
 *   - proper lists of 1..65535 integers in 0..255: STRING_EXT;
 *   - pids NEW_PID, ports NEW_PORT (V4_PORT when the id needs over 28 bits),
 *     references NEWER_REFERENCE, closures their NEW_FUN body verbatim;
 *   - AMB_ETF_COMPRESSED: tag 80 unless it makes the result longer (the
 *     deflating is etf_compress.c's).
 * Maps are written in their iteration order: up to 32 pairs ascending in
 * exact key order, as OTP writes them; above, our trie's order, where OTP
 * writes its own hash order: both decode to the same map.
 *
 * One walker serves two passes: counting bytes (amb_etf_size) and writing
 * them with a bounds check per item (amb_etf_encode). It is written once and
 * inlined into both, so each pass is a straight loop with no mode tests.
 *
 * Invariants: no recursion on the C stack (an explicit frame stack holds the
 * unfinished tuples, lists and maps); the writer never writes past `end`;
 * a failed call leaves the caller's buffer with unspecified contents but
 * allocates nothing that outlives it.
 */
#include "etf_internal.h"
#include "term_internal.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* The longest list STRING_EXT can hold (a 16-bit length). */
#define STRING_MAX 65535u
/* The largest port id OTP 25 writes as NEW_PORT_EXT. */
#define PORT_NEW_MAX 0x0fffffffu

enum frame_kind {
    F_ARRAY, /* a = next element pointer, n = elements left */
    F_LIST,  /* a = the current list cell */
    F_ONE,   /* a = one last term (an improper or proper list's tail) */
    F_MAP,   /* a = a map node, n = its position (amb__map_node_next) */
};

typedef struct frame {
    uint64_t a;
    size_t n;
    unsigned kind;
} frame;

typedef struct enc {
    uint8_t *p, *end; /* write pass: the cursor and the end of the buffer */
    size_t size;      /* size pass: bytes counted so far */
    unsigned flags;
    frame *frames;
    size_t nframes, cap;
    frame inline_frames[32];
} enc;

static void enc_init(enc *e, unsigned flags)
{
    e->p = e->end = NULL;
    e->size = 0;
    e->flags = flags;
    e->frames = e->inline_frames;
    e->nframes = 0;
    e->cap = AMB_COUNTOF(e->inline_frames);
}

static void enc_free(enc *e)
{
    if (e->frames != e->inline_frames)
        amb__free(e->frames);
}

static int push(enc *e, unsigned kind, uint64_t a, size_t n)
{
    if (amb__unlikely(e->nframes == e->cap)) {
        size_t cap = e->cap * 2;
        frame *f = amb__malloc(cap * sizeof *f);
        if (f == NULL)
            return AMB_ENOMEM;
        memcpy(f, e->frames, e->nframes * sizeof *f);
        enc_free(e);
        e->frames = f;
        e->cap = cap;
    }
    e->frames[e->nframes++] = (frame){.a = a, .n = n, .kind = kind};
    return 0;
}

/* Count n bytes (size pass) or make sure n bytes fit (write pass). The
 * caller then writes them under `if (W)` and advances e->p. */
#define RESERVE(n)                                           \
    do {                                                     \
        size_t n_ = (n);                                     \
        if (W) {                                             \
            if (amb__unlikely((size_t)(e->end - e->p) < n_)) \
                return AMB_EBUFSIZE;                         \
        } else {                                             \
            if (amb__unlikely(e->size > SIZE_MAX - n_))      \
                return AMB_ESYSLIMIT;                        \
            e->size += n_;                                   \
        }                                                    \
    } while (0)

/* Bytes needed for the magnitude v (0 for 0). */
static inline size_t mag_bytes(uint64_t v)
{
    return v == 0 ? 0 : 8 - (size_t)__builtin_clzll(v) / 8;
}

static ALWAYS_INLINE int put_atom(enc *e, amb_term a, const bool W)
{
    size_t len;
    const char *name = amb_atom_name(a, &len);
    if (amb__unlikely(name == NULL))
        return AMB_EBADARG;
    if ((e->flags & AMB_ETF_LATIN1_ATOMS) && amb__atom_is_latin1(a)) {
        /* ATOM_EXT carries Latin-1: one byte per character, so the two-byte
         * UTF-8 sequences (lead 0xC2/0xC3) shrink to one byte each. OTP 25
         * always uses the 16-bit length form here, even for short atoms. */
        size_t chars = 0;
        for (size_t i = 0; i < len; i++)
            chars += ((uint8_t)name[i] & 0xc0u) != 0x80u;
        RESERVE(3 + chars);
        if (W) {
            uint8_t *p = e->p;
            p[0] = AMB__ETF_ATOM;
            amb__etf_put16(p + 1, (uint16_t)chars);
            p += 3;
            for (size_t i = 0; i < len; i++) {
                uint8_t c = (uint8_t)name[i];
                if (c < 0x80u)
                    *p++ = c;
                else if ((c & 0xc0u) == 0xc0u)
                    *p = (uint8_t)((c & 0x1fu) << 6);
                else
                    *p++ |= (uint8_t)(c & 0x3fu);
            }
            e->p = p;
        }
        return 0;
    }
    if (len <= 255) {
        RESERVE(2 + len);
        if (W) {
            e->p[0] = AMB__ETF_SMALL_ATOM_UTF8;
            e->p[1] = (uint8_t)len;
            memcpy(e->p + 2, name, len);
            e->p += 2 + len;
        }
    } else {
        RESERVE(3 + len);
        if (W) {
            e->p[0] = AMB__ETF_ATOM_UTF8;
            amb__etf_put16(e->p + 1, (uint16_t)len);
            memcpy(e->p + 3, name, len);
            e->p += 3 + len;
        }
    }
    return 0;
}

/* A big number's header: SMALL_BIG up to 255 magnitude bytes (as OTP). */
static ALWAYS_INLINE int put_big_header(enc *e, size_t nbytes, bool negative,
                                        const bool W)
{
    if (nbytes <= 255) {
        RESERVE(3 + nbytes);
        if (W) {
            e->p[0] = AMB__ETF_SMALL_BIG;
            e->p[1] = (uint8_t)nbytes;
            e->p[2] = negative;
            e->p += 3;
        }
    } else {
        if (nbytes > UINT32_MAX)
            return AMB_ESYSLIMIT;
        RESERVE(6 + nbytes);
        if (W) {
            e->p[0] = AMB__ETF_LARGE_BIG;
            amb__etf_put32(e->p + 1, (uint32_t)nbytes);
            e->p[5] = negative;
            e->p += 6;
        }
    }
    return 0;
}

static ALWAYS_INLINE int put_small(enc *e, int64_t v, const bool W)
{
    if (v >= 0 && v <= 255) {
        RESERVE(2);
        if (W) {
            e->p[0] = AMB__ETF_SMALL_INTEGER;
            e->p[1] = (uint8_t)v;
            e->p += 2;
        }
        return 0;
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
        RESERVE(5);
        if (W) {
            e->p[0] = AMB__ETF_INTEGER;
            amb__etf_put32(e->p + 1, (uint32_t)(int32_t)v);
            e->p += 5;
        }
        return 0;
    }
    /* Small integers have 63 bits, so the magnitude fits a uint64 even for
     * AMB_SMALL_MIN. */
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = mag_bytes(mag);
    int rc = put_big_header(e, n, v < 0, W);
    if (rc != 0)
        return rc;
    if (W) {
        for (size_t i = 0; i < n; i++)
            e->p[i] = (uint8_t)(mag >> (8 * i));
        e->p += n;
    }
    return 0;
}

static ALWAYS_INLINE int put_big(enc *e, amb_term t, const bool W)
{
    size_t nd = amb__big_ndigits(t);
    const uint64_t *d = amb__big_digits(t);
    size_t nbytes = (nd - 1) * 8 + mag_bytes(d[nd - 1]);
    int rc = put_big_header(e, nbytes, amb__big_negative(t), W);
    if (rc != 0)
        return rc;
    if (W) {
        /* ETF's magnitude is little-endian bytes: the limbs' own layout on a
         * little-endian machine. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(e->p, d, nbytes);
#else
        for (size_t i = 0; i < nbytes; i++)
            e->p[i] = (uint8_t)(d[i / 8] >> (8 * (i % 8)));
#endif
        e->p += nbytes;
    }
    return 0;
}

static ALWAYS_INLINE int put_pid(enc *e, amb_term node, uint32_t id, uint32_t serial,
                                 uint32_t creation, const bool W)
{
    RESERVE(1);
    if (W)
        *e->p++ = AMB__ETF_NEW_PID;
    int rc = put_atom(e, node, W);
    if (rc != 0)
        return rc;
    RESERVE(12);
    if (W) {
        amb__etf_put32(e->p, id);
        amb__etf_put32(e->p + 4, serial);
        amb__etf_put32(e->p + 8, creation);
        e->p += 12;
    }
    return 0;
}

/* Writes the list starting at cell t: STRING_EXT when OTP would, else the
 * LIST_EXT header and a frame that yields the elements and the tail. */
static ALWAYS_INLINE int put_list(enc *e, amb_term t, const bool W)
{
    size_t n = 0;
    bool bytes = true;
    amb_term c = t;
    while (amb_is_cons(c)) {
        const amb_term *cell = amb__cons_cell(c);
        if (bytes) {
            amb_term h = cell[0];
            bytes =
                amb_is_small(h) && (uint64_t)amb_small_value(h) <= 255 && n < STRING_MAX;
        } else if (!W) {
            break; /* the size pass needs no count for LIST_EXT */
        }
        n++;
        c = cell[1];
    }
    if (bytes && c == AMB_NIL) {
        RESERVE(3 + n);
        if (W) {
            uint8_t *p = e->p;
            p[0] = AMB__ETF_STRING;
            amb__etf_put16(p + 1, (uint16_t)n);
            p += 3;
            for (c = t; amb_is_cons(c); c = amb__cons_cell(c)[1])
                *p++ = (uint8_t)amb_small_value(amb__cons_cell(c)[0]);
            e->p = p;
        }
        return 0;
    }
    if (W && n > UINT32_MAX)
        return AMB_ESYSLIMIT;
    RESERVE(5);
    if (W) {
        e->p[0] = AMB__ETF_LIST;
        amb__etf_put32(e->p + 1, (uint32_t)n);
        e->p += 5;
    }
    return push(e, F_LIST, t, 0);
}

static ALWAYS_INLINE int put_binary(enc *e, amb_term t, const bool W)
{
    const amb__binary *b = (const amb__binary *)(const void *)amb__box(t);
    unsigned tail = (unsigned)AMB__HDR_PAYLOAD(b->header);
    size_t size = b->size;
    if (size > UINT32_MAX)
        return AMB_ESYSLIMIT;
    if (tail == 0) {
        RESERVE(5 + size);
        if (W) {
            e->p[0] = AMB__ETF_BINARY;
            amb__etf_put32(e->p + 1, (uint32_t)size);
            if (size > 0)
                memcpy(e->p + 5, b->data, size);
            e->p += 5 + size;
        }
        return 0;
    }
    RESERVE(6 + size);
    if (W) {
        e->p[0] = AMB__ETF_BIT_BINARY;
        amb__etf_put32(e->p + 1, (uint32_t)size);
        e->p[5] = (uint8_t)tail;
        memcpy(e->p + 6, b->data, size);
        /* The unused low bits of the last byte are zero on the wire, as OTP
         * writes them, whatever the source bytes hold there. */
        e->p[5 + size] &= (uint8_t)(0xffu << (8 - tail));
        e->p += 6 + size;
    }
    return 0;
}

/* A port: NEW_PORT while the id fits the 28 bits of OTP's old port
 * numbers, V4_PORT beyond, exactly as OTP 25 chooses (NEW_PORT could carry
 * 32 bits, but OTP never uses it for ids of 2^28 and up). */
static int put_port(enc *e, amb_term node, uint64_t id, uint32_t creation, const bool W)
{
    bool v4 = id > PORT_NEW_MAX;
    RESERVE(1);
    if (W)
        *e->p++ = v4 ? AMB__ETF_V4_PORT : AMB__ETF_NEW_PORT;
    int rc = put_atom(e, node, W);
    if (rc != 0)
        return rc;
    RESERVE(v4 ? 12 : 8);
    if (W) {
        if (v4) {
            amb__etf_put64(e->p, id);
            e->p += 8;
        } else {
            amb__etf_put32(e->p, (uint32_t)id);
            e->p += 4;
        }
        amb__etf_put32(e->p, creation);
        e->p += 4;
    }
    return 0;
}

/* Encodes the part of t that is not a child term: the whole of an immediate
 * or a leaf, or the header of a container (whose children a new frame
 * yields). */
static ALWAYS_INLINE int put_term(enc *e, amb_term t, const bool W)
{
    if (amb_is_small(t))
        return put_small(e, amb_small_value(t), W);
    if (amb_is_atom(t))
        return put_atom(e, t, W);
    if (t == AMB_NIL) {
        RESERVE(1);
        if (W)
            *e->p++ = AMB__ETF_NIL;
        return 0;
    }
    if (amb_is_cons(t))
        return put_list(e, t, W);
    if (amb_is_local_port(t)) {
        /* A socket of a runtime of this OS process: node and creation from
         * the node registry, as for a local pid. */
        amb_term node;
        uint64_t id;
        uint32_t creation;
        if (amb_port_get(t, &node, &id, &creation) != 0)
            return AMB_EBADARG;
        return put_port(e, node, id, creation, W);
    }
    if (amb_is_local_pid(t)) {
        /* A pid of a node in this OS process: an immediate word whose node
         * and creation come from the node registry. */
        amb_term node;
        uint32_t id, serial, creation;
        if (amb_pid_get(t, &node, &id, &serial, &creation) != 0)
            return AMB_EBADARG;
        return put_pid(e, node, id, serial, creation, W);
    }
    if (amb__unlikely(!amb__is_boxed(t)))
        return AMB_EBADARG;
    const uint64_t *box = amb__box(t);
    int rc;
    switch (AMB__HDR_KIND(box[0])) {
    case AMB__K_TUPLE: {
        size_t arity = (size_t)AMB__HDR_PAYLOAD(box[0]);
        if (arity <= 255) {
            RESERVE(2);
            if (W) {
                e->p[0] = AMB__ETF_SMALL_TUPLE;
                e->p[1] = (uint8_t)arity;
                e->p += 2;
            }
        } else {
            if (arity > UINT32_MAX)
                return AMB_ESYSLIMIT;
            RESERVE(5);
            if (W) {
                e->p[0] = AMB__ETF_LARGE_TUPLE;
                amb__etf_put32(e->p + 1, (uint32_t)arity);
                e->p += 5;
            }
        }
        return arity ? push(e, F_ARRAY, (uint64_t)(uintptr_t)(box + 1), arity) : 0;
    }
    case AMB__K_BIG:
        return put_big(e, t, W);
    case AMB__K_FLOAT: {
        RESERVE(9);
        if (W) {
            uint64_t bits;
            memcpy(&bits, &box[1], sizeof bits);
            e->p[0] = AMB__ETF_NEW_FLOAT;
            amb__etf_put64(e->p + 1, bits);
            e->p += 9;
        }
        return 0;
    }
    case AMB__K_BINARY:
        return put_binary(e, t, W);
    case AMB__K_MAP:
    case AMB__K_HAMT: {
        size_t n = amb__map_size(t);
        if (n > UINT32_MAX)
            return AMB_ESYSLIMIT;
        RESERVE(5);
        if (W) {
            e->p[0] = AMB__ETF_MAP;
            amb__etf_put32(e->p + 1, (uint32_t)n);
            e->p += 5;
        }
        return n ? push(e, F_MAP, t, 0) : 0;
    }
    case AMB__K_PID:
        /* [hdr, node, id, serial, creation] */
        return put_pid(e, box[1], (uint32_t)box[2], (uint32_t)box[3], (uint32_t)box[4],
                       W);
    case AMB__K_PORT:
        /* [hdr, node, id, creation] */
        return put_port(e, box[1], box[2], (uint32_t)box[3], W);
    case AMB__K_REF: {
        /* [hdr(nwords), node, creation, words...] */
        size_t nwords = (size_t)AMB__HDR_PAYLOAD(box[0]);
        if (nwords > UINT16_MAX)
            return AMB_EBADARG;
        RESERVE(3);
        if (W) {
            e->p[0] = AMB__ETF_NEWER_REFERENCE;
            amb__etf_put16(e->p + 1, (uint16_t)nwords);
            e->p += 3;
        }
        if ((rc = put_atom(e, box[1], W)) != 0)
            return rc;
        RESERVE(4 + 4 * nwords);
        if (W) {
            amb__etf_put32(e->p, (uint32_t)box[2]);
            for (size_t i = 0; i < nwords; i++)
                amb__etf_put32(e->p + 4 + 4 * i, (uint32_t)box[3 + i]);
            e->p += 4 + 4 * nwords;
        }
        return 0;
    }
    case AMB__K_EXPORT:
        /* [hdr(arity), module, function] */
        RESERVE(1);
        if (W)
            *e->p++ = AMB__ETF_EXPORT;
        if ((rc = put_atom(e, box[1], W)) != 0 || (rc = put_atom(e, box[2], W)) != 0)
            return rc;
        RESERVE(2);
        if (W) {
            e->p[0] = AMB__ETF_SMALL_INTEGER;
            e->p[1] = (uint8_t)AMB__HDR_PAYLOAD(box[0]);
            e->p += 2;
        }
        return 0;
    case AMB__K_CLOSURE: {
        const amb__closure *c = (const amb__closure *)(const void *)box;
        RESERVE(1 + c->len);
        if (W) {
            e->p[0] = AMB__ETF_NEW_FUN;
            memcpy(e->p + 1, c->ext, c->len);
            e->p += 1 + c->len;
        }
        return 0;
    }
    default:
        return AMB_EBADARG;
    }
}

/* Depth-first over t: put_term for the term, then its children in order,
 * taken from the frame stack. A frame is popped before its last child is
 * written, so a list's tail or a tuple's last element reuses its slot; a
 * map's frames go when their node is done (a trie map has one frame per
 * level of the path being walked, pushed as the walk descends). */
static ALWAYS_INLINE int walk(enc *e, amb_term t, const bool W)
{
    e->nframes = 0;
    for (;;) {
        int rc = put_term(e, t, W);
        if (rc != 0)
            return rc;
    next:
        if (e->nframes == 0)
            return 0;
        frame *f = &e->frames[e->nframes - 1];
        switch (f->kind) {
        case F_ARRAY: {
            const amb_term *p = (const amb_term *)(uintptr_t)f->a;
            t = *p;
            f->a = (uint64_t)(uintptr_t)(p + 1);
            if (--f->n == 0)
                e->nframes--;
            break;
        }
        case F_LIST: {
            const amb_term *cell = amb__cons_cell(f->a);
            t = cell[0];
            if (amb_is_cons(cell[1])) {
                f->a = cell[1];
            } else {
                f->kind = F_ONE;
                f->a = cell[1];
            }
            break;
        }
        case F_ONE:
            t = f->a;
            e->nframes--;
            break;
        default: /* F_MAP */
            switch (amb__map_node_next(f->a, &f->n, &t)) {
            case AMB__MAP_END:
                e->nframes--;
                goto next;
            case AMB__MAP_CHILD:
                if ((rc = push(e, F_MAP, t, 0)) != 0)
                    return rc;
                goto next;
            default:
                break;
            }
            break;
        }
    }
}

static int size_pass(enc *e, amb_term t)
{
    return walk(e, t, false);
}

static int write_pass(enc *e, amb_term t)
{
    return walk(e, t, true);
}

/* The size of the body (no version byte) of t. */
static int body_size(amb_term t, unsigned flags, size_t *size)
{
    enc e;
    enc_init(&e, flags);
    int rc = size_pass(&e, t);
    enc_free(&e);
    if (rc == 0)
        *size = e.size;
    return rc;
}

/* Writes the body of t into buf[0..cap). */
static int body_write(amb_term t, unsigned flags, uint8_t *buf, size_t cap, size_t *len)
{
    enc e;
    enc_init(&e, flags);
    e.p = buf;
    e.end = buf + cap;
    int rc = write_pass(&e, t);
    enc_free(&e);
    if (rc == 0)
        *len = (size_t)(e.p - buf);
    return rc;
}

static bool flags_ok(unsigned flags)
{
    return (flags & ~(AMB_ETF_COMPRESSED | AMB_ETF_NO_VERSION | AMB_ETF_LATIN1_ATOMS)) ==
           0;
}

int amb_etf_size(amb_term t, unsigned flags, size_t *size)
{
    if (size == NULL || t == AMB_NONE || !flags_ok(flags) || (flags & AMB_ETF_COMPRESSED))
        return AMB__MISUSE();
    size_t n;
    int rc = body_size(t, flags, &n);
    if (rc != 0)
        return rc;
    if (!(flags & AMB_ETF_NO_VERSION)) {
        if (n == SIZE_MAX)
            return AMB_ESYSLIMIT;
        n++;
    }
    *size = n;
    return 0;
}

/*
 * Compression. The body (tag onwards) is encoded into a scratch buffer,
 * deflated, and used only when 80, size and the zlib stream together are
 * no longer than the plain body, as OTP does. The 32-bit size field means a
 * body of 4 GiB or more is always sent plain.
 */
typedef struct packed {
    uint8_t *body; /* the plain body */
    size_t body_len;
    uint8_t *z; /* the zlib stream, or NULL when compression does not pay */
    size_t z_len;
} packed;

static void packed_free(packed *pk)
{
    amb__free(pk->body);
    amb__free(pk->z);
}

static int pack(amb_term t, unsigned flags, packed *pk)
{
    *pk = (packed){0};
    size_t n;
    int rc = body_size(t, flags, &n);
    if (rc != 0)
        return rc;
    pk->body = amb__malloc(n ? n : 1);
    if (pk->body == NULL)
        return AMB_ENOMEM;
    if ((rc = body_write(t, flags, pk->body, n, &pk->body_len)) != 0) {
        packed_free(pk);
        return rc;
    }
    if (n > UINT32_MAX || n <= 5)
        return 0;
    /* OTP compresses when 80, the size and the stream take no more room
     * than the plain body (a tie goes to compression), so a stream longer
     * than n - 5 is of no use. */
    if ((rc = amb__etf_compress_deflate(pk->body, n, n - 5, &pk->z, &pk->z_len)) != 0)
        packed_free(pk);
    return rc;
}

/* The final length of a packed encoding with flags. */
static size_t packed_len(const packed *pk, unsigned flags)
{
    size_t v = (flags & AMB_ETF_NO_VERSION) ? 0 : 1;
    return v + (pk->z ? 5 + pk->z_len : pk->body_len);
}

static void packed_copy(const packed *pk, unsigned flags, uint8_t *out)
{
    if (!(flags & AMB_ETF_NO_VERSION))
        *out++ = AMB_ETF_VERSION;
    if (pk->z) {
        out[0] = AMB__ETF_COMPRESSED;
        amb__etf_put32(out + 1, (uint32_t)pk->body_len);
        memcpy(out + 5, pk->z, pk->z_len);
    } else {
        memcpy(out, pk->body, pk->body_len);
    }
}

int amb_etf_encode(amb_term t, unsigned flags, uint8_t *buf, size_t cap, size_t *len)
{
    if (len == NULL || t == AMB_NONE || !flags_ok(flags) || (buf == NULL && cap > 0))
        return AMB__MISUSE();
    if (flags & AMB_ETF_COMPRESSED) {
        packed pk;
        int rc = pack(t, flags, &pk);
        if (rc != 0)
            return rc;
        size_t n = packed_len(&pk, flags);
        if (n > cap) {
            packed_free(&pk);
            return AMB_EBUFSIZE;
        }
        packed_copy(&pk, flags, buf);
        packed_free(&pk);
        *len = n;
        return 0;
    }
    size_t v = (flags & AMB_ETF_NO_VERSION) ? 0 : 1;
    if (cap < v)
        return AMB_EBUFSIZE;
    if (v)
        buf[0] = AMB_ETF_VERSION;
    size_t n;
    int rc = body_write(t, flags, buf + v, cap - v, &n);
    if (rc != 0)
        return rc;
    *len = n + v;
    return 0;
}

int amb_etf_encode_alloc(amb_term t, unsigned flags, uint8_t **out, size_t *len)
{
    if (out == NULL || len == NULL || t == AMB_NONE || !flags_ok(flags))
        return AMB__MISUSE();
    size_t n;
    uint8_t *buf;
    if (flags & AMB_ETF_COMPRESSED) {
        packed pk;
        int rc = pack(t, flags, &pk);
        if (rc != 0)
            return rc;
        n = packed_len(&pk, flags);
        buf = amb_malloc(n);
        if (buf == NULL) {
            packed_free(&pk);
            return AMB_ENOMEM;
        }
        packed_copy(&pk, flags, buf);
        packed_free(&pk);
    } else {
        int rc = amb_etf_size(t, flags, &n);
        if (rc != 0)
            return rc;
        buf = amb_malloc(n);
        if (buf == NULL)
            return AMB_ENOMEM;
        size_t written;
        if ((rc = amb_etf_encode(t, flags, buf, n, &written)) != 0) {
            amb_free(buf);
            return rc;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

int amb_term_to_binary(amb_heap *heap, amb_term t, unsigned flags, amb_term *out)
{
    if (heap == NULL || out == NULL || t == AMB_NONE || !flags_ok(flags))
        return AMB__MISUSE();
    if (flags & AMB_ETF_COMPRESSED) {
        uint8_t *buf;
        size_t n;
        int rc = amb_etf_encode_alloc(t, flags, &buf, &n);
        if (rc != 0)
            return rc;
        amb_term bin = amb_binary(heap, buf, n);
        amb_free(buf);
        if (bin == AMB_NONE)
            return AMB_ENOMEM;
        *out = bin;
        return 0;
    }
    /* Plain encodings are written straight into the binary's storage. */
    size_t n, written;
    int rc = amb_etf_size(t, flags, &n);
    if (rc != 0)
        return rc;
    uint8_t *data;
    amb_term bin = amb_binary_alloc(heap, n, &data);
    if (bin == AMB_NONE)
        return AMB_ENOMEM;
    if ((rc = amb_etf_encode(t, flags, data, n, &written)) != 0)
        return rc;
    *out = bin;
    return 0;
}

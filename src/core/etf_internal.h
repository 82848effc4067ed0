/*
 * etf_internal.h - what the encoder (etf_encode.c) and the decoder
 * (etf_decode.c) of the External Term Format share: the tag bytes, the
 * big-endian readers and writers, and compression (etf_compress.c).
 *
 * The tag numbers are OTP's (erts/doc "External Term Format"); every one
 * that OTP 25 or 26 can produce is listed, with a note where we only read
 * it (legacy forms) or never accept it (ATOM_CACHE_REF and LOCAL_EXT belong
 * to the distribution layer and to OTP 26's node-local encoding).
 *
 * Invariants: the readers never look past the pointer they are given plus
 * the width they read; callers check the room first.
 */
#ifndef AMB_CORE_ETF_INTERNAL_H
#define AMB_CORE_ETF_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "ambitious/etf.h"

enum amb__etf_tag {
    AMB__ETF_NEW_FLOAT = 70,       /* 8-byte IEEE 754 double, big-endian */
    AMB__ETF_BIT_BINARY = 77,      /* Len:32, Bits:8 (1..8), Len bytes */
    AMB__ETF_COMPRESSED = 80,      /* UncompressedSize:32, zlib stream */
    AMB__ETF_ATOM_CACHE_REF = 82,  /* Index:8 into the distribution header's
                                      atoms (amb__etf_decode_refs); else
                                      rejected */
    AMB__ETF_NEW_PID = 88,         /* Node, ID:32, Serial:32, Creation:32 */
    AMB__ETF_NEW_PORT = 89,        /* Node, ID:32, Creation:32 */
    AMB__ETF_NEWER_REFERENCE = 90, /* Len:16, Node, Creation:32, Len x ID:32 */
    AMB__ETF_SMALL_INTEGER = 97,   /* uint8 */
    AMB__ETF_INTEGER = 98,         /* int32, big-endian */
    AMB__ETF_FLOAT = 99,           /* legacy: 31-byte "%.20e" string */
    AMB__ETF_ATOM = 100,           /* Len:16, Latin-1 bytes */
    AMB__ETF_REFERENCE = 101,      /* legacy: Node, ID:32, Creation:8 */
    AMB__ETF_PORT = 102,           /* legacy: Node, ID:32, Creation:8 */
    AMB__ETF_PID = 103,            /* legacy: Node, ID:32, Serial:32, Creation:8 */
    AMB__ETF_SMALL_TUPLE = 104,    /* Arity:8, elements */
    AMB__ETF_LARGE_TUPLE = 105,    /* Arity:32, elements */
    AMB__ETF_NIL = 106,
    AMB__ETF_STRING = 107,          /* Len:16, bytes (a list of small integers) */
    AMB__ETF_LIST = 108,            /* Len:32, elements, tail */
    AMB__ETF_BINARY = 109,          /* Len:32, bytes */
    AMB__ETF_SMALL_BIG = 110,       /* n:8, Sign:8, n bytes little-endian */
    AMB__ETF_LARGE_BIG = 111,       /* n:32, Sign:8, n bytes little-endian */
    AMB__ETF_NEW_FUN = 112,         /* Size:32 (of the whole body), then the body */
    AMB__ETF_EXPORT = 113,          /* Module, Function, Arity (an integer term) */
    AMB__ETF_NEW_REFERENCE = 114,   /* legacy: Len:16, Node, Creation:8, IDs */
    AMB__ETF_SMALL_ATOM = 115,      /* Len:8, Latin-1 bytes */
    AMB__ETF_MAP = 116,             /* Arity:32, Arity key/value pairs */
    AMB__ETF_FUN = 117,             /* pre-R10 funs: rejected, as OTP 23+ does */
    AMB__ETF_ATOM_UTF8 = 118,       /* Len:16, UTF-8 bytes */
    AMB__ETF_SMALL_ATOM_UTF8 = 119, /* Len:8, UTF-8 bytes */
    AMB__ETF_V4_PORT = 120,         /* Node, ID:64, Creation:32 */
    AMB__ETF_LOCAL = 121,           /* OTP 26 node-local: rejected */
};

/* The fixed part of a NEW_FUN_EXT body: Size:32, Arity:8, Uniq:16 bytes,
 * Index:32, NumFree:32. Module, OldIndex, OldUniq, Pid and the free
 * variables follow as terms. */
#define AMB__ETF_FUN_FIXED 29

static inline uint16_t amb__etf_get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}
static inline uint32_t amb__etf_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t amb__etf_get64(const uint8_t *p)
{
    return (uint64_t)amb__etf_get32(p) << 32 | amb__etf_get32(p + 4);
}
static inline void amb__etf_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void amb__etf_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void amb__etf_put64(uint8_t *p, uint64_t v)
{
    amb__etf_put32(p, (uint32_t)(v >> 32));
    amb__etf_put32(p + 4, (uint32_t)v);
}

/* An allowance of new atoms for input from a peer that may name atoms this
 * node has never seen (distribution: DESIGN §3, docs/design/distribution.md).
 * Known atoms are always found; an unknown one is made only while `left` is
 * above zero (each one made takes one) and the table has more than
 * `reserve` free slots, so a peer can neither grow the table without bound
 * nor take the room local code needs. Otherwise the decode fails with
 * AMB_ESYSLIMIT. */
typedef struct amb__etf_atom_budget {
    size_t left;    /* atoms this budget may still add to the table */
    size_t reserve; /* slots of amb_atom_limit() the budget never takes */
} amb__etf_atom_budget;

/* amb_etf_decode with an atom budget (budget may be NULL: amb_etf_decode's
 * rules). The budget is updated even when the decode fails: atoms made
 * before the failure stay made. opts->existing_atoms_only still wins. */
int amb__etf_decode_budget(amb_heap *heap, const uint8_t *buf, size_t len,
                           const amb_etf_decode_opts *opts, amb__etf_atom_budget *budget,
                           amb_term *out, size_t *used);
/* amb__etf_decode_budget for a term of a distribution message whose header
 * listed atoms: ATOM_CACHE_REF Index (an atom wherever one may stand) is
 * refs[Index]; an Index >= nrefs (or refs NULL) is AMB_EDECODE. refs are
 * borrowed for the call. A compressed term is self-contained: no refs. */
int amb__etf_decode_refs(amb_heap *heap, const uint8_t *buf, size_t len,
                         const amb_etf_decode_opts *opts, amb__etf_atom_budget *budget,
                         const amb_term *refs, size_t nrefs, amb_term *out, size_t *used);

/* Deflates in[0..n) (n < 4 GiB) into a new buffer in *out (owned: free with
 * amb__free) of *out_len bytes, when the stream fits room bytes; otherwise
 * *out is NULL (compression does not pay). 0 or AMB_ENOMEM
 * (etf_compress.c). */
int amb__etf_compress_deflate(const uint8_t *in, size_t n, size_t room, uint8_t **out,
                              size_t *out_len);
/* Inflates the zlib stream at in[0..in_len) into exactly size bytes, in a
 * new buffer in *out (owned: free with amb__free), and tells in *consumed how
 * many input bytes the stream took. AMB_EDECODE for a corrupt or truncated
 * stream or one of another size, AMB_ENOMEM (etf_compress.c). */
int amb__etf_compress_inflate(const uint8_t *in, size_t in_len, size_t size,
                              uint8_t **out, size_t *consumed);

#endif /* AMB_CORE_ETF_INTERNAL_H */

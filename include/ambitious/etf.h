/*
 * ambitious/etf.h - Erlang's External Term Format (term_to_binary and
 * binary_to_term), the wire format of distribution and the way to persist
 * terms.
 *
 * Encoding writes what OTP 26 writes by default (UTF-8 atoms, NEW_FLOAT,
 * NEW_PID, V4_PORT when needed, NEWER_REFERENCE, MAP), which every OTP from
 * 23 on reads. Decoding reads every tag OTP 25+ produces and the legacy
 * forms (Latin-1 atoms, PID, NEW_PORT/PORT, NEW_REFERENCE, FLOAT_EXT strings)
 * and compressed terms (tag 80).
 *
 * Decoding untrusted bytes never crashes, reads out of bounds, recurses
 * without limit, or allocates more than a bounded multiple of its input (and
 * of opts->max_decompressed for compressed terms); a bad input is
 * AMB_EDECODE with nothing left on the heap that matters.
 */
#ifndef AMBITIOUS_ETF_H
#define AMBITIOUS_ETF_H

#include "term.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMB_ETF_VERSION 131

/* Encoding flags (unsigned bits):
 *   AMB_ETF_COMPRESSED    zlib-compress the body (tag 80)
 *   AMB_ETF_NO_VERSION    omit the leading 131 (distribution bodies)
 *   AMB_ETF_LATIN1_ATOMS  ATOM_EXT/SMALL_ATOM_EXT for Latin-1 atoms, as OTP
 *                         25's default minor_version 1 does */
#define AMB_ETF_COMPRESSED   (1u << 0)
#define AMB_ETF_NO_VERSION   (1u << 1)
#define AMB_ETF_LATIN1_ATOMS (1u << 2)

/* Exact size in bytes of the encoding of t with flags, in *size
 * (AMB_ETF_COMPRESSED is not allowed here: compressed size is known only
 * after compressing). AMB_EBADARG (AMB_NONE, unknown flags, NULL size),
 * AMB_EDEPTH. */
AMB_API int amb_etf_size(amb_term t, unsigned flags, size_t *size);

/* Encodes t into the caller's buf[0..cap); *len gets the bytes written (the
 * result: len may not be NULL). AMB_EBUFSIZE when cap is too small (nothing
 * useful is in buf then), AMB_EBADARG (AMB_NONE, unknown flags, NULL len,
 * NULL buf with cap > 0), AMB_EDEPTH, AMB_ENOMEM (compression). */
AMB_API int amb_etf_encode(amb_term t, unsigned flags, uint8_t *buf, size_t cap,
                           size_t *len);

/* Encodes t into a new buffer in *out (owned: free with amb_free) of *len
 * bytes. The errors of amb_etf_encode but AMB_EBUFSIZE. */
AMB_API int amb_etf_encode_alloc(amb_term t, unsigned flags, uint8_t **out, size_t *len);

/* term_to_binary/2: the encoding of t as a binary term in *out, on heap.
 * The errors of amb_etf_encode_alloc. */
AMB_API int amb_term_to_binary(amb_heap *heap, amb_term t, unsigned flags, amb_term *out);

/* Decoding limits (inputs only). Zero in a field means its default. */
typedef struct amb_etf_decode_opts {
    unsigned flags;           /* AMB_ETF_NO_VERSION: input has no leading 131 */
    bool existing_atoms_only; /* binary_to_term(B, [safe]): unknown atoms fail */
    size_t max_depth;         /* nesting limit; default AMB_ETF_MAX_DEPTH */
    size_t max_decompressed;  /* limit for tag 80; default AMB_ETF_MAX_DECOMPRESSED */
} amb_etf_decode_opts;

#define AMB_ETF_MAX_DEPTH        10000
#define AMB_ETF_MAX_DECOMPRESSED ((size_t)64 << 20)

/* Decodes one term from buf[0..len) onto heap. *used (may be NULL) gets the
 * bytes consumed, so terms can be read back to back; the whole input need
 * not be consumed. buf is read during the call only (nothing on the heap
 * points into it); *out lives on heap. opts may be NULL for the defaults.
 * AMB_EDECODE (malformed, truncated, unknown tag, non-canonical where OTP
 * rejects it, duplicate map keys), AMB_EDEPTH, AMB_ESYSLIMIT (atom table
 * full, integer or decompressed size beyond its limit), AMB_ENOTFOUND (an
 * unknown atom with existing_atoms_only), AMB_ENOMEM, AMB_EBADARG (NULL heap
 * or out, NULL buf with len > 0, unknown flags). */
AMB_API int amb_etf_decode(amb_heap *heap, const uint8_t *buf, size_t len,
                           const amb_etf_decode_opts *opts, amb_term *out, size_t *used);

/* binary_to_term/1: decodes the whole of the binary term bin into *out, on
 * heap; trailing bytes are AMB_EDECODE. AMB_ETYPE when bin is not a binary;
 * the errors of amb_etf_decode. */
AMB_API int amb_binary_to_term(amb_heap *heap, amb_term bin, amb_term *out);

#ifdef __cplusplus
}
#endif
#endif /* AMBITIOUS_ETF_H */

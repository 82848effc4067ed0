/*
 * fuzz_etf_decode.c - libFuzzer target for the External Term Format decoder.
 *
 * Any input may fail to decode, but only with one of the documented codes.
 * An input that decodes must survive the round trip: encoding the term (in
 * each encoding mode) and decoding the bytes again gives an equal term, and
 * amb_etf_size agrees with the bytes written. Any other outcome abort()s, so
 * the fuzzer (and the corpus replay under CTest) reports it.
 *
 * Limits are small (depth 64, 1 MiB decompressed) so that the fuzzer spends
 * its time on structure, not on inflating large inputs.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ambitious.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_etf_decode: %s\n", what);
        abort();
    }
}

static bool expected_failure(int rc)
{
    return rc == AMB_EDECODE || rc == AMB_EDEPTH || rc == AMB_ESYSLIMIT ||
           rc == AMB_ENOTFOUND || rc == AMB_ENOMEM;
}

/* Encodes t with flags, decodes it back, and checks the two agree. */
static void round_trip(amb_heap *heap, amb_term t, unsigned flags, size_t max_depth)
{
    uint8_t *bytes;
    size_t len;
    int rc = amb_etf_encode_alloc(t, flags, &bytes, &len);
    if (rc == AMB_ENOMEM)
        return;
    check(rc == 0, "a decoded term does not encode");
    if (!(flags & AMB_ETF_COMPRESSED)) {
        size_t size;
        check(amb_etf_size(t, flags, &size) == 0 && size == len,
              "amb_etf_size disagrees with the encoding");
    }
    /* Latin-1 atoms may grow by up to 2x as UTF-8, so the second decode gets
     * room beyond the first one's 1 MiB. */
    amb_etf_decode_opts opts = {.flags = flags & AMB_ETF_NO_VERSION,
                                .max_depth = max_depth,
                                .max_decompressed = (size_t)4 << 20};
    amb_term back;
    size_t used = 0;
    rc = amb_etf_decode(heap, bytes, len, &opts, &back, &used);
    amb_free(bytes);
    if (rc == AMB_ENOMEM)
        return;
    check(rc == 0, "our own encoding does not decode");
    check(used == len, "our own encoding is not consumed exactly");
    check(amb_equal(t, back), "decode(encode(t)) differs from t");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    amb_heap *heap;
    if (amb_heap_new(&heap) != 0)
        return 0;
    const size_t max_depth = 64;
    amb_etf_decode_opts opts = {.max_depth = max_depth,
                                .max_decompressed = (size_t)1 << 20};
    amb_term t;
    size_t used = 0;
    int rc = amb_etf_decode(heap, data, size, &opts, &t, &used);
    if (rc != 0) {
        check(expected_failure(rc), "decode failed with an undocumented code");
    } else {
        check(used >= 2 && used <= size, "used is out of range");
        check(amb_type_of(t) != AMB_T_NONE, "decoded a corrupt term");
        round_trip(heap, t, 0, max_depth);
        round_trip(heap, t, AMB_ETF_LATIN1_ATOMS, max_depth);
        round_trip(heap, t, AMB_ETF_COMPRESSED, max_depth);
        round_trip(heap, t, AMB_ETF_NO_VERSION, max_depth);
        /* binary_to_term agrees when the input is exactly one term. */
        amb_term bin = amb_binary(heap, data, used), again;
        if (bin != AMB_NONE && amb_binary_to_term(heap, bin, &again) == 0)
            check(amb_equal(t, again), "binary_to_term differs from amb_etf_decode");
    }
    amb_heap_free(heap);
    return 0;
}

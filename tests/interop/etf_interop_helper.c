/*
 * etf_interop_helper.c - the C side of etf_roundtrip.sh: one run handles a
 * whole batch of records written by etf_roundtrip.escript, so the test
 * starts one OS process for thousands of terms.
 *
 * Input records:   kind:8, len:32, ETF bytes            (big-endian lengths)
 * Output records:  rc:32, len:32, bytes   the decoded term re-encoded
 *                  len:32, text           amb_print of the decoded term
 *                  rc:32, len:32, bytes   amb_parse(text) re-encoded
 *                  len:32, text           amb_print_ex(AMB_PRINT_PRETTY)
 * kind selects the encoding flags, mirroring the erl options the input was
 * made with: 0 {minor_version,2}; 1 default (OTP 25: Latin-1 atoms);
 * 2 and 3 the same compressed; 4 {minor_version,0} (re-encoded as 1).
 * rc fields are 0 or an AMB_E* code (negative, two's complement).
 *
 * The node the terms come from ('nonode@nohost', creation 0, as an erl
 * without distribution) is registered as a local node first, so its pids
 * are local pids here and print as <0.ID.SERIAL>, as erl prints them.
 *
 * Exit status 0 when the batch was processed (mismatches are the Erlang
 * side's to judge), 1 on I/O errors or malformed records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ambitious.h"
#include "term_internal.h"

static int put32(FILE *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    return fwrite(b, 1, 4, f) == 4 ? 0 : -1;
}

static int put_blob(FILE *f, const void *data, size_t len)
{
    if (put32(f, (uint32_t)len) != 0)
        return -1;
    return len == 0 || fwrite(data, 1, len, f) == len ? 0 : -1;
}

/* The encoding flags of request kind: 0, or -1 for an unknown kind. */
static int flags_of(unsigned kind, unsigned *out)
{
    static const unsigned flags[] = {0, AMB_ETF_LATIN1_ATOMS, AMB_ETF_COMPRESSED,
                                     AMB_ETF_COMPRESSED | AMB_ETF_LATIN1_ATOMS,
                                     AMB_ETF_LATIN1_ATOMS};
    if (kind >= 5)
        return -1;
    *out = flags[kind];
    return 0;
}

/* Encodes t and writes rc, len, bytes. */
static int put_encoding(FILE *out, int rc, amb_term t, unsigned flags)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = amb_etf_encode_alloc(t, flags, &bytes, &len);
    int w = put32(out, (uint32_t)rc) | put_blob(out, bytes, rc == 0 ? len : 0);
    amb_free(bytes);
    return w;
}

static int process(amb_heap *h, unsigned kind, const uint8_t *in, size_t len, FILE *out)
{
    unsigned flags;
    if (flags_of(kind, &flags) != 0)
        return -1;
    amb_term t = AMB_NONE, parsed = AMB_NONE;
    size_t used = 0;
    int rc = amb_etf_decode(h, in, len, NULL, &t, &used);
    if (rc == 0 && used != len)
        rc = AMB_EDECODE;
    if (put_encoding(out, rc, t, flags) != 0)
        return -1;
    char *text = NULL;
    size_t tlen = 0;
    int prc = rc;
    if (prc == 0)
        prc = amb_print_alloc(t, &text, &tlen);
    if (put_blob(out, text, prc == 0 ? tlen : 0) != 0) {
        amb_free(text);
        return -1;
    }
    if (prc == 0) {
        size_t pos = 0;
        prc = amb_parse(h, text, tlen, &parsed, &pos);
    }
    amb_free(text);
    if (put_encoding(out, prc, parsed, flags) != 0)
        return -1;
    text = NULL;
    tlen = 0;
    int qrc = rc == 0 ? amb_print_alloc_ex(t, AMB_PRINT_PRETTY, &text, &tlen) : rc;
    int w = put_blob(out, text, qrc == 0 ? tlen : 0);
    amb_free(text);
    return w;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        perror("etf_interop_helper");
        return 1;
    }
    amb_heap *h;
    unsigned slot;
    if (amb_heap_new(&h) != 0 ||
        amb__node_register(AMB_ATOM_NONODE_NOHOST, 0, &slot) != 0)
        return 1;
    uint8_t head[5];
    size_t cap = 1 << 16, records = 0;
    uint8_t *buf = malloc(cap);
    int status = 0;
    while (buf != NULL && fread(head, 1, 5, in) == 5) {
        size_t len = (size_t)head[1] << 24 | (size_t)head[2] << 16 |
                     (size_t)head[3] << 8 | head[4];
        if (len > cap) {
            free(buf);
            cap = len;
            if ((buf = malloc(cap)) == NULL)
                break;
        }
        if (fread(buf, 1, len, in) != len || process(h, head[0], buf, len, out) != 0) {
            fprintf(stderr, "etf_interop_helper: bad record %zu\n", records);
            status = 1;
            break;
        }
        amb_heap_reset(h);
        records++;
    }
    if (buf == NULL || ferror(in) || fclose(out) != 0)
        status = 1;
    free(buf);
    fclose(in);
    amb_heap_free(h);
    return status;
}

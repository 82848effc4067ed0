/*
 * etf_compress.c - the zlib side of compressed terms (tag 80): deflating an
 * encoded body for amb_etf_encode and inflating one for amb_etf_decode.
 *
 * Invariants:
 *   - zlib takes its memory from the installed allocator (amb__malloc), like
 *     the rest of the library.
 *   - Inflating never produces more than the size the input claims, and its
 *     buffer grows with the output actually produced, so a short input that
 *     claims a large size costs little and a stream that inflates to more
 *     than it claimed (a bomb) stops at the claim.
 */
#include <zlib.h>

#include "etf_internal.h"
#include "internal.h"

static void *zalloc(void *opaque, unsigned items, unsigned size)
{
    (void)opaque;
    /* Both factors are 32-bit, so the product fits 64 bits. */
    return amb__malloc((size_t)items * size);
}

static void zfree(void *opaque, void *ptr)
{
    (void)opaque;
    amb__free(ptr);
}

int amb__etf_compress_deflate(const uint8_t *in, size_t n, size_t room, uint8_t **out,
                              size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (room == 0)
        return 0;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = zalloc;
    zs.zfree = zfree;
    if (deflateInit(&zs, Z_DEFAULT_COMPRESSION) != Z_OK)
        return AMB_ENOMEM;
    /* The output buffer stops at room: a longer stream makes deflate report
     * Z_OK or Z_BUF_ERROR instead of Z_STREAM_END, and the caller sends the
     * body plain. */
    uint8_t *z = amb__malloc(room);
    if (z == NULL) {
        deflateEnd(&zs);
        return AMB_ENOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = z;
    zs.avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
    int zrc = deflate(&zs, Z_FINISH);
    size_t len = zs.total_out;
    deflateEnd(&zs);
    if (zrc == Z_STREAM_END) {
        *out = z;
        *out_len = len;
        return 0;
    }
    amb__free(z);
    if (zrc == Z_OK || zrc == Z_BUF_ERROR)
        return 0;
    return AMB_ENOMEM; /* deflate fails only when zalloc does */
}

/* Inflates the zlib stream at in[0..in_len) into exactly size bytes (a new
 * buffer in *out) and tells how many input bytes the stream took. The buffer
 * grows with the output actually produced, so a short input that claims a
 * large size costs little; it never grows beyond size, so a stream that
 * inflates to more than it claimed (a bomb) stops there. */
int amb__etf_compress_inflate(const uint8_t *in, size_t in_len, size_t size,
                              uint8_t **out, size_t *consumed)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = zalloc;
    zs.zfree = zfree;
    if (inflateInit(&zs) != Z_OK)
        return AMB_ENOMEM;
    size_t cap = in_len < size / 8 ? in_len * 8 : size;
    if (cap < 4096)
        cap = size < 4096 ? size : 4096;
    uint8_t *buf = amb__malloc(cap);
    int rc = buf ? 0 : AMB_ENOMEM;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)(in_len > UINT32_MAX ? UINT32_MAX : in_len);
    while (rc == 0) {
        if (zs.total_out == cap) {
            if (cap == size) {
                rc = AMB_EDECODE; /* more data than the size field claims */
                break;
            }
            size_t bigger = cap > size / 2 ? size : cap * 2;
            uint8_t *nb = amb__realloc(buf, bigger);
            if (nb == NULL) {
                rc = AMB_ENOMEM;
                break;
            }
            buf = nb;
            cap = bigger;
        }
        size_t room = cap - zs.total_out;
        zs.next_out = buf + zs.total_out;
        zs.avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
        int zrc = inflate(&zs, Z_NO_FLUSH);
        if (zrc == Z_STREAM_END)
            break;
        if (zrc == Z_MEM_ERROR)
            rc = AMB_ENOMEM;
        else if (zrc != Z_OK && !(zrc == Z_BUF_ERROR && zs.avail_out == 0))
            rc = AMB_EDECODE; /* corrupt, needs a dictionary, or truncated */
    }
    if (rc == 0 && zs.total_out != size)
        rc = AMB_EDECODE;
    size_t used = zs.total_in;
    inflateEnd(&zs);
    if (rc != 0) {
        amb__free(buf);
        return rc;
    }
    *out = buf;
    *consumed = used;
    return 0;
}

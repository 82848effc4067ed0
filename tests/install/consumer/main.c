/* A user program built against the installed library: builds, encodes and
 * decodes a term, and exits 0 only when the round trip is exact. */
#include <ambitious.h>
#include <stdio.h>

int main(void)
{
    amb_heap *h;
    if (amb_heap_new(&h) != 0)
        return 1;
    amb_term t = amb_pack(h, "{hello,~i,[~s]}", 42, "world");
    uint8_t *bytes;
    size_t len;
    amb_term back;
    int ok = t != AMB_NONE && amb_etf_encode_alloc(t, 0, &bytes, &len) == 0 &&
             amb_etf_decode(h, bytes, len, NULL, &back, NULL) == 0 && amb_equal(t, back);
    if (ok) {
        amb_fprint(back, stdout);
        printf("\n");
        amb_free(bytes);
    }
    amb_heap_free(h);
    return ok ? 0 : 1;
}

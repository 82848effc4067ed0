/*
 * dist_control_helper.c - the C side of dist_control.sh: one run decodes a
 * whole batch of control messages that erl encoded and encodes each back,
 * so erl can compare the bytes.
 *
 * Input records:   CtlLen:32 Ctl MsgLen:32 Msg   (erl's term_to_binary of the
 *                  control tuple and of the term after it, each with 131;
 *                  MsgLen 0 when the op has none)
 * Output records:  Rc:32 (0 or the AMB_E* code of the decode, two's
 *                  complement), then, when Rc is 0:
 *                  Len:32 Bytes   our encoding with 131s (pass-through form)
 *                  Len:32 Bytes   our encoding without (distribution-header
 *                                 form), after decoding erl's bytes with the
 *                                 131s taken out
 *                  Len:32 Text    the op's name
 * Exit status 0 when the batch was processed (the judging is erl's), 1 on
 * I/O errors or malformed records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ambitious.h"
#include "dist/control.h"

static int put32(FILE *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    return fwrite(b, 1, 4, f) == 4 ? 0 : -1;
}

static int get32(FILE *f, uint32_t *v)
{
    uint8_t b[4];
    if (fread(b, 1, 4, f) != 4)
        return -1;
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return 0;
}

static uint8_t *get_blob(FILE *f, uint32_t *len)
{
    if (get32(f, len) != 0)
        return NULL;
    uint8_t *p = malloc(*len ? *len : 1);
    if (p != NULL && *len > 0 && fread(p, 1, *len, f) != *len) {
        free(p);
        return NULL;
    }
    return p;
}

static int put_wire(FILE *out, const amb__dist_wire *w)
{
    if (put32(out, (uint32_t)(w->ctl_len + w->msg_len)) != 0 ||
        fwrite(w->ctl, 1, w->ctl_len, out) != w->ctl_len ||
        (w->msg_len > 0 && fwrite(w->msg, 1, w->msg_len, out) != w->msg_len))
        return -1;
    return 0;
}

/* One record: decode, encode both ways, write the result. */
static int one(FILE *out, amb_heap *heap, const uint8_t *ctl, uint32_t clen,
               const uint8_t *msg, uint32_t mlen)
{
    size_t n = (size_t)clen + mlen;
    uint8_t *body = malloc(n ? n : 1), *bare = malloc(n ? n : 1);
    if (body == NULL || bare == NULL)
        return -1;
    memcpy(body, ctl, clen);
    if (mlen > 0)
        memcpy(body + clen, msg, mlen);
    /* The same terms without their 131s. */
    size_t bn = 0;
    if (clen > 0) {
        memcpy(bare, ctl + 1, clen - 1);
        bn = clen - 1;
    }
    if (mlen > 0) {
        memcpy(bare + bn, msg + 1, mlen - 1);
        bn += mlen - 1;
    }
    amb__dist_ctl c, h;
    int rc = amb__control_decode(heap, body, n, true, NULL, &c);
    if (rc == 0)
        rc = amb__control_decode(heap, bare, bn, false, NULL, &h);
    int err = put32(out, (uint32_t)rc);
    if (err == 0 && rc == 0) {
        amb__dist_wire wv, wh;
        if (amb__control_encode(&c, true, &wv) != 0 ||
            amb__control_encode(&h, false, &wh) != 0) {
            err = -1;
        } else {
            const char *name = amb__control_name(c.op);
            err = put_wire(out, &wv) || put_wire(out, &wh) ||
                  put32(out, (uint32_t)strlen(name)) ||
                  fwrite(name, 1, strlen(name), out) != strlen(name);
            amb__control_wire_free(&wv);
            amb__control_wire_free(&wh);
        }
    }
    free(body);
    free(bare);
    return err ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        perror("dist_control_helper");
        return 1;
    }
    amb_heap *heap;
    if (amb_heap_new(&heap) != 0)
        return 1;
    int status = 0;
    for (;;) {
        uint32_t clen, mlen;
        int c = fgetc(in);
        if (c == EOF)
            break;
        ungetc(c, in);
        uint8_t *ctl = get_blob(in, &clen), *msg = ctl ? get_blob(in, &mlen) : NULL;
        if (ctl == NULL || msg == NULL || one(out, heap, ctl, clen, msg, mlen) != 0) {
            fprintf(stderr, "dist_control_helper: bad record or I/O error\n");
            status = 1;
            free(ctl);
            free(msg);
            break;
        }
        free(ctl);
        free(msg);
        amb_heap_reset(heap);
    }
    amb_heap_free(heap);
    if (fclose(out) != 0)
        status = 1;
    fclose(in);
    return status;
}

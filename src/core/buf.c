/*
 * buf.c - a growable byte buffer with a sticky error, for the printers and
 * encoders of terms.
 *
 * Invariant: after the first allocation failure an amb__buf keeps err set
 * and ignores further appends, so a writer checks once at the end.
 */
#include <stdarg.h>
#include <stdio.h>

#include "term_internal.h"

void amb__buf_init(amb__buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}

void amb__buf_free(amb__buf *b)
{
    amb__free(b->data);
    amb__buf_init(b);
}

static bool reserve(amb__buf *b, size_t extra)
{
    if (b->err)
        return false;
    if (extra <= b->cap - b->len)
        return true;
    size_t want = b->len + extra;
    if (want < b->len) {
        b->err = AMB_ENOMEM;
        return false;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap = cap * 2 > cap ? cap * 2 : want;
    uint8_t *p = amb__realloc(b->data, cap);
    if (p == NULL) {
        b->err = AMB_ENOMEM;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void amb__buf_append(amb__buf *b, const void *data, size_t len)
{
    if (len == 0 || !reserve(b, len))
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void amb__buf_putc(amb__buf *b, uint8_t c)
{
    if (!reserve(b, 1))
        return;
    b->data[b->len++] = c;
}

void amb__buf_printf(amb__buf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (!b->err)
            b->err = AMB_EBADARG;
        return;
    }
    if ((size_t)n < sizeof small) {
        amb__buf_append(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

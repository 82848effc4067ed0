/*
 * packet.c - the {packet, raw | 1 | 2 | 4 | line} receive buffer
 * (packet.h has the modes, the invariants and who owns what).
 *
 * The buffer is one allocation: unread bytes at buf[start..end). Room is
 * made at the end; when the end is too close to the capacity, the unread
 * bytes move to the front first, and only then does the buffer grow
 * (doubling, never past its bound), so a connection that keeps receiving
 * small packets keeps reusing one small buffer.
 */
#include <string.h>

#include "internal.h"
#include "io/packet.h"

/* The smallest buffer worth allocating. */
#define MIN_CAP 64

static size_t header_len(uint8_t mode)
{
    return mode == AMB__PACKET_1 || mode == AMB__PACKET_2 || mode == AMB__PACKET_4 ? mode
                                                                                   : 0;
}

/* The options checked and resolved to their effective values. */
static int resolve(const amb__packet_opts *o, uint8_t *mode, size_t *max, uint8_t *delim)
{
    amb__packet_opts d = {0};
    if (o == NULL)
        o = &d;
    switch (o->mode) {
    case AMB__PACKET_RAW:
    case AMB__PACKET_1:
    case AMB__PACKET_2:
    case AMB__PACKET_4:
    case AMB__PACKET_LINE:
        break;
    default:
        return AMB_EBADARG;
    }
    if (o->max > AMB__PACKET_MAX_LIMIT)
        return AMB_EBADARG;
    size_t m = o->max != 0 ? o->max : AMB__PACKET_MAX_DEFAULT;
    if (o->mode == AMB__PACKET_1 && m > 0xff)
        m = 0xff; /* the widest length one byte can say */
    if (o->mode == AMB__PACKET_2 && m > 0xffff)
        m = 0xffff;
    *mode = (uint8_t)o->mode;
    *max = m;
    *delim = o->delim != 0 ? o->delim : '\n';
    return 0;
}

int amb__packet_init(amb__packet *p, const amb__packet_opts *o)
{
    uint8_t mode, delim;
    size_t max;
    int rc = resolve(o, &mode, &max, &delim);
    if (rc != 0)
        return rc;
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->max = max;
    p->delim = delim;
    return 0;
}

void amb__packet_destroy(amb__packet *p)
{
    amb__free(p->buf);
    p->buf = NULL;
    p->start = p->end = p->cap = 0;
}

int amb__packet_set(amb__packet *p, const amb__packet_opts *o)
{
    uint8_t mode, delim;
    size_t max;
    int rc = resolve(o, &mode, &max, &delim);
    if (rc != 0)
        return rc;
    p->mode = mode;
    p->max = max;
    p->delim = delim;
    p->scanned = 0; /* the delimiter may have changed: look again */
    p->error = 0;
    return 0;
}

int amb__packet_space(amb__packet *p, size_t want, uint8_t **at, size_t *room)
{
    if (want == 0)
        return AMB_EBADARG;
    size_t have = p->end - p->start;
    if (have == 0)
        p->start = p->end = 0; /* borrowed packets end here (packet.h) */
    size_t limit = header_len(p->mode) + p->max;
    if (want > limit)
        limit = want;
    if (have >= limit) {
        *at = p->buf + p->end;
        *room = 0; /* a whole packet, or the error, is waiting */
        return 0;
    }
    size_t n = want < limit - have ? want : limit - have;
    if (p->cap - p->end < n && p->start > 0) {
        memmove(p->buf, p->buf + p->start, have);
        p->start = 0;
        p->end = have;
    }
    if (p->cap - p->end < n) {
        size_t cap = p->cap * 2;
        if (cap < have + n)
            cap = have + n;
        if (cap < MIN_CAP)
            cap = MIN_CAP;
        if (cap > limit)
            cap = limit; /* the bound of packet.h; have + n <= limit still fits */
        uint8_t *nb = amb__realloc(p->buf, cap);
        if (nb == NULL)
            return AMB_ENOMEM;
        p->buf = nb;
        p->cap = cap;
    }
    *at = p->buf + p->end;
    *room = n;
    return 0;
}

void amb__packet_commit(amb__packet *p, size_t n)
{
    AMB__CHECK(n <= p->cap - p->end);
    p->end += n;
}

int amb__packet_feed(amb__packet *p, const uint8_t *data, size_t len, size_t *used)
{
    if (len == 0) {
        *used = 0;
        return 0;
    }
    uint8_t *at;
    size_t room;
    int rc = amb__packet_space(p, len, &at, &room);
    if (rc != 0)
        return rc;
    memcpy(at, data, room);
    amb__packet_commit(p, room);
    *used = room;
    return 0;
}

/* Hands out n bytes at start + skip, then moves past them. */
static int take_bytes(amb__packet *p, size_t skip, size_t n, const uint8_t **data,
                      size_t *len)
{
    *data = p->buf + p->start + skip;
    *len = n;
    p->start += skip + n;
    p->scanned = 0;
    return 0;
}

int amb__packet_next(amb__packet *p, const uint8_t **data, size_t *len)
{
    if (p->error != 0)
        return p->error;
    size_t have = p->end - p->start;
    if (have == 0)
        return AMB_EAGAIN; /* (and buf may be NULL: no pointer arithmetic on it) */
    const uint8_t *s = p->buf + p->start;
    switch (p->mode) {
    case AMB__PACKET_RAW:
        return take_bytes(p, 0, have, data, len);
    case AMB__PACKET_LINE: {
        size_t lim = have < p->max ? have : p->max;
        if (p->scanned < lim) {
            const uint8_t *q = memchr(s + p->scanned, p->delim, lim - p->scanned);
            if (q != NULL)
                return take_bytes(p, 0, (size_t)(q - s) + 1, data, len);
            p->scanned = lim;
        }
        if (have >= p->max) {
            p->error = AMB_EMSGSIZE; /* max bytes and no delimiter among them */
            return p->error;
        }
        return AMB_EAGAIN;
    }
    default: {
        size_t hdr = header_len(p->mode);
        if (have < hdr)
            return AMB_EAGAIN;
        uint64_t n = 0;
        for (size_t i = 0; i < hdr; i++)
            n = n << 8 | s[i];
        if (n > p->max) {
            p->error = AMB_EMSGSIZE; /* refused from the header, nothing buffered */
            return p->error;
        }
        if (have - hdr < n)
            return AMB_EAGAIN;
        return take_bytes(p, hdr, (size_t)n, data, len);
    }
    }
}

int amb__packet_take(amb__packet *p, size_t n, const uint8_t **data, size_t *len)
{
    if (p->mode != AMB__PACKET_RAW)
        return AMB_EBADARG;
    if (n == 0)
        return amb__packet_next(p, data, len);
    if (n > p->max)
        return AMB_EMSGSIZE;
    if (p->end - p->start < n)
        return AMB_EAGAIN;
    return take_bytes(p, 0, n, data, len);
}

int amb__packet_finish(amb__packet *p, const uint8_t **data, size_t *len)
{
    int rc = amb__packet_next(p, data, len);
    if (rc != AMB_EAGAIN)
        return rc; /* a whole packet first, or the sticky error */
    size_t have = p->end - p->start;
    if (have == 0)
        return AMB_EAGAIN;
    if (p->mode == AMB__PACKET_RAW || p->mode == AMB__PACKET_LINE)
        return take_bytes(p, 0, have, data, len); /* the unterminated rest */
    p->start = p->end; /* a length-prefixed packet cut short is worth nothing */
    return AMB_ECLOSED;
}

void amb__packet_trim(amb__packet *p)
{
    size_t have = p->end - p->start;
    if (have == 0) {
        amb__packet_destroy(p);
        p->scanned = 0;
        return;
    }
    if (p->start > 0) {
        memmove(p->buf, p->buf + p->start, have);
        p->start = 0;
        p->end = have;
    }
    if (p->cap > have) {
        uint8_t *nb = amb__realloc(p->buf, have);
        if (nb != NULL) {
            p->buf = nb;
            p->cap = have;
        }
    }
}

int amb__packet_header(amb__packet_mode mode, size_t len, uint8_t hdr[4], size_t *hlen)
{
    uint64_t widest;
    switch (mode) {
    case AMB__PACKET_RAW:
    case AMB__PACKET_LINE:
        *hlen = 0;
        return 0;
    case AMB__PACKET_1:
        widest = 0xff;
        break;
    case AMB__PACKET_2:
        widest = 0xffff;
        break;
    case AMB__PACKET_4:
        widest = 0xffffffffu;
        break;
    default:
        return AMB_EBADARG;
    }
    if ((uint64_t)len > widest)
        return AMB_EMSGSIZE;
    size_t n = (size_t)mode;
    for (size_t i = 0; i < n; i++)
        hdr[i] = (uint8_t)((uint64_t)len >> (8 * (n - 1 - i)));
    *hlen = n;
    return 0;
}

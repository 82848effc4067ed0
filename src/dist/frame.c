/*
 * frame.c - framing of a distribution connection after the handshake: the
 * frame reader, the header parser, reassembly of fragmented messages and
 * the frame writers (frame.h has the wire forms and the rules).
 *
 * Reader: one buffer per connection holding buf[start..len) unread. A
 * frame handed out stays where it is until the next feed/space call, which
 * first moves the unread bytes to the front. The buffer grows to hold the
 * frame being read (never beyond 4 + max_frame plus the caller's read
 * size), so a peer that announces a huge frame costs nothing until it
 * sends the bytes, and one above max_frame is refused from its length.
 *
 * Reassembly: a small array of sequences (at most max_sequences, found by a
 * linear scan: a scan of a few hundred ids costs less than copying one
 * fragment) each with its own growing buffer. Buffer capacity, not length,
 * is what counts against max_pending, so the bound holds for what is
 * really allocated.
 */
#include <string.h>

#include "dist_flags.h"
#include "etf_internal.h"
#include "frame.h"
#include "internal.h"

typedef struct amb__frame_seq {
    uint64_t seq_id;
    uint64_t next_id; /* the FragmentId expected next */
    uint8_t *buf;
    size_t len, cap;
} amb__frame_seq;

amb__frame_mode amb__frame_mode_of(uint64_t flags)
{
    return (flags & (AMB__DFLAG_DIST_HDR_ATOM_CACHE | AMB__DFLAG_FRAGMENTS))
               ? AMB__FRAME_MODE_HEADER
               : AMB__FRAME_MODE_PASS_THROUGH;
}

/* ---------------------------------------------------------------------------
 * Reader
 * ------------------------------------------------------------------------ */

void amb__frame_reader_init(amb__frame_reader *r, size_t max_frame)
{
    memset(r, 0, sizeof *r);
    r->max_frame = max_frame ? max_frame : AMB__FRAME_MAX_DEFAULT;
}

void amb__frame_reader_destroy(amb__frame_reader *r)
{
    if (r == NULL)
        return;
    amb__free(r->buf);
    memset(r, 0, sizeof *r);
}

int amb__frame_reader_space(amb__frame_reader *r, size_t want, uint8_t **p, size_t *room)
{
    if (r == NULL || p == NULL || room == NULL)
        return AMB__MISUSE();
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    if (want == 0)
        want = 1;
    if (r->cap - r->len < want) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap - r->len < want) {
            if (cap > SIZE_MAX / 2)
                return AMB_ENOMEM;
            cap *= 2;
        }
        uint8_t *nb = amb__realloc(r->buf, cap);
        if (nb == NULL)
            return AMB_ENOMEM;
        r->buf = nb;
        r->cap = cap;
    }
    *p = r->buf + r->len;
    *room = r->cap - r->len;
    return 0;
}

void amb__frame_reader_commit(amb__frame_reader *r, size_t n)
{
    AMB__CHECK(r != NULL && n <= r->cap - r->len);
    r->len += n;
}

int amb__frame_reader_feed(amb__frame_reader *r, const uint8_t *data, size_t len)
{
    if (r == NULL || (data == NULL && len > 0))
        return AMB__MISUSE();
    if (len == 0)
        return 0;
    uint8_t *p;
    size_t room;
    int rc = amb__frame_reader_space(r, len, &p, &room);
    if (rc != 0)
        return rc;
    memcpy(p, data, len);
    amb__frame_reader_commit(r, len);
    return 0;
}

int amb__frame_reader_next(amb__frame_reader *r, const uint8_t **data, size_t *len)
{
    if (r == NULL || data == NULL || len == NULL)
        return AMB__MISUSE();
    size_t avail = r->len - r->start;
    if (avail < 4)
        return AMB_EAGAIN;
    size_t n = amb__etf_get32(r->buf + r->start);
    if (n > r->max_frame)
        return AMB_ESYSLIMIT;
    if (avail - 4 < n)
        return AMB_EAGAIN;
    *data = r->buf + r->start + 4;
    *len = n;
    r->start += 4 + n;
    return 0;
}

/* ---------------------------------------------------------------------------
 * One frame
 * ------------------------------------------------------------------------ */

/* The flag half-byte i of an atom-cache section (sec[0] refs, then the
 * flags: even i in the low half of byte 1 + i / 2, odd i in the high). */
static unsigned half_byte(const uint8_t *sec, size_t i)
{
    return (sec[1 + i / 2] >> ((i & 1) * 4)) & 0xFu;
}

/* Walks the atom-cache section at sec[0..avail) (erl_ext_dist,
 * "Distribution Header"): NumberOfAtomCacheRefs, its flags (a half byte
 * per reference: NewCacheEntryFlag, SegmentIndex; then LongAtoms), the
 * references (InternalSegmentIndex, and for a new entry Length:8 or :16
 * and the atom's text). *n gets the count, *used the section's bytes;
 * refs (may be NULL) each reference. AMB_EDECODE: truncated, or an atom
 * text above AMB__FRAME_ATOM_TEXT_MAX bytes. */
static int atom_refs_walk(const uint8_t *sec, size_t avail, amb__frame_atom_ref *refs,
                          size_t *n, size_t *used)
{
    if (avail < 1)
        return AMB_EDECODE;
    size_t count = sec[0], p = 1;
    if (count > 0) {
        size_t flag_bytes = count / 2 + 1;
        if (avail < 1 + flag_bytes)
            return AMB_EDECODE;
        bool long_atoms = (half_byte(sec, count) & 1u) != 0;
        p += flag_bytes;
        for (size_t i = 0; i < count; i++) {
            unsigned fl = half_byte(sec, i);
            if (avail - p < 1)
                return AMB_EDECODE;
            amb__frame_atom_ref r = {.index = (uint16_t)((fl & 7u) * 256u + sec[p++]),
                                     .is_new = (fl & 8u) != 0};
            if (r.is_new) {
                size_t lb = long_atoms ? 2 : 1;
                if (avail - p < lb)
                    return AMB_EDECODE;
                r.text_len = long_atoms ? ((size_t)sec[p] << 8 | sec[p + 1]) : sec[p];
                p += lb;
                if (r.text_len > AMB__FRAME_ATOM_TEXT_MAX || avail - p < r.text_len)
                    return AMB_EDECODE;
                r.text = sec + p;
                p += r.text_len;
            }
            if (refs != NULL)
                refs[i] = r;
        }
    }
    *n = count;
    *used = p;
    return 0;
}

int amb__frame_parse(amb__frame_mode mode, const uint8_t *data, size_t len,
                     amb__frame *out)
{
    if (out == NULL || (data == NULL && len > 0))
        return AMB__MISUSE();
    amb__frame f = {.kind = AMB__FRAME_TICK};
    if (len == 0) {
        *out = f;
        return 0;
    }
    if (mode == AMB__FRAME_MODE_PASS_THROUGH) {
        /* 112, then the control tuple with its own 131 (checked by the term
         * decoder, which wants it). */
        if (data[0] != AMB__FRAME_PASS_THROUGH)
            return AMB_EDECODE;
        f.kind = AMB__FRAME_MESSAGE;
        f.body = data + 1;
        f.body_len = len - 1;
        *out = f;
        return 0;
    }
    if (len < 2 || data[0] != AMB_ETF_VERSION)
        return AMB_EDECODE;
    size_t head;
    switch (data[1]) {
    case AMB__DIST_HEADER:
        f.kind = AMB__FRAME_MESSAGE;
        head = 3;
        break;
    case AMB__DIST_FRAG_HEADER:
        f.kind = AMB__FRAME_FRAGMENT;
        f.first = true;
        head = 19;
        break;
    case AMB__DIST_FRAG_CONT:
        f.kind = AMB__FRAME_FRAGMENT;
        head = 18;
        break;
    default:
        return AMB_EDECODE;
    }
    if (len < head)
        return AMB_EDECODE;
    if (f.kind == AMB__FRAME_FRAGMENT) {
        f.seq_id = amb__etf_get64(data + 2);
        f.frag_id = amb__etf_get64(data + 10);
        if (f.frag_id == 0)
            return AMB_EDECODE;
    }
    /* The atom-cache section (not in a continuation): from
     * NumberOfAtomCacheRefs to its last reference, checked here, read by
     * amb__frame_atom_refs. */
    if (data[1] != AMB__DIST_FRAG_CONT) {
        size_t n, used;
        int rc = atom_refs_walk(data + head - 1, len - (head - 1), NULL, &n, &used);
        if (rc != 0)
            return rc;
        f.cache = data + head - 1;
        f.cache_len = used;
        head += used - 1;
    }
    f.body = data + head;
    f.body_len = len - head;
    *out = f;
    return 0;
}

int amb__frame_atom_refs(const uint8_t *sec, size_t len, amb__frame_atom_ref *refs,
                         size_t *n)
{
    if (n == NULL || refs == NULL || (sec == NULL && len > 0))
        return AMB__MISUSE();
    if (len == 0) {
        *n = 0;
        return 0;
    }
    size_t used;
    return atom_refs_walk(sec, len, refs, n, &used);
}

int amb__frame_atom_resolve(uint64_t *cache, const uint8_t *sec, size_t len,
                            amb__frame_atom_make *make, void *ctx, uint64_t *out,
                            size_t *n)
{
    if (cache == NULL || make == NULL || out == NULL)
        return AMB__MISUSE();
    amb__frame_atom_ref refs[AMB__FRAME_ATOM_REFS_MAX];
    int rc = amb__frame_atom_refs(sec, len, refs, n);
    for (size_t i = 0; rc == 0 && i < *n; i++) {
        uint64_t *slot = &cache[refs[i].index];
        if (refs[i].is_new)
            rc = make(ctx, refs[i].text, refs[i].text_len, slot);
        else if (*slot == 0)
            rc = AMB_EDECODE;
        out[i] = *slot;
    }
    return rc;
}

/* ---------------------------------------------------------------------------
 * Reassembly
 * ------------------------------------------------------------------------ */

void amb__frame_defrag_init(amb__frame_defrag *d, const amb__frame_limits *limits)
{
    memset(d, 0, sizeof *d);
    if (limits != NULL)
        d->lim = *limits;
    if (d->lim.max_frame == 0)
        d->lim.max_frame = AMB__FRAME_MAX_DEFAULT;
    if (d->lim.max_message == 0)
        d->lim.max_message = AMB__FRAME_MESSAGE_DEFAULT;
    if (d->lim.max_pending == 0)
        d->lim.max_pending = AMB__FRAME_PENDING_DEFAULT;
    if (d->lim.max_sequences == 0)
        d->lim.max_sequences = AMB__FRAME_SEQUENCES_DEFAULT;
}

void amb__frame_defrag_destroy(amb__frame_defrag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nseqs; i++)
        amb__free(d->seqs[i].buf);
    amb__free(d->seqs);
    amb__frame_limits lim = d->lim;
    memset(d, 0, sizeof *d);
    d->lim = lim;
}

size_t amb__frame_defrag_count(const amb__frame_defrag *d)
{
    return d ? d->nseqs : 0;
}

size_t amb__frame_defrag_pending(const amb__frame_defrag *d)
{
    return d ? d->pending : 0;
}

static amb__frame_seq *find(amb__frame_defrag *d, uint64_t seq_id)
{
    for (size_t i = 0; i < d->nseqs; i++)
        if (d->seqs[i].seq_id == seq_id)
            return &d->seqs[i];
    return NULL;
}

/* Appends body to s, growing its buffer within the limits. */
static int append(amb__frame_defrag *d, amb__frame_seq *s, const uint8_t *body,
                  size_t len)
{
    if (len > d->lim.max_message - s->len)
        return AMB_ESYSLIMIT;
    /* A sequence always has a buffer, so a finished message is never NULL
     * even when every fragment was empty. */
    if (s->buf == NULL || s->cap - s->len < len) {
        size_t cap = s->cap ? s->cap : 4096;
        if (cap > d->lim.max_message)
            cap = d->lim.max_message;
        while (cap - s->len < len)
            cap = cap > d->lim.max_message / 2 ? d->lim.max_message : cap * 2;
        if (cap - s->cap > d->lim.max_pending - d->pending)
            return AMB_ESYSLIMIT;
        uint8_t *nb = amb__realloc(s->buf, cap);
        if (nb == NULL)
            return AMB_ENOMEM;
        d->pending += cap - s->cap;
        s->buf = nb;
        s->cap = cap;
    }
    if (len > 0)
        memcpy(s->buf + s->len, body, len);
    s->len += len;
    return 0;
}

static void drop(amb__frame_defrag *d, amb__frame_seq *s)
{
    d->pending -= s->cap;
    *s = d->seqs[--d->nseqs];
}

/* Hands the finished message of s to the caller and forgets s. */
static void deliver(amb__frame_defrag *d, amb__frame_seq *s, uint8_t **msg,
                    size_t *msg_len)
{
    *msg = s->buf;
    *msg_len = s->len;
    s->buf = NULL; /* the caller owns it now */
    drop(d, s);
}

int amb__frame_defrag_add(amb__frame_defrag *d, const amb__frame *f, uint8_t **msg,
                          size_t *msg_len)
{
    if (d == NULL || f == NULL || msg == NULL || msg_len == NULL ||
        f->kind != AMB__FRAME_FRAGMENT || (f->body == NULL && f->body_len > 0))
        return AMB__MISUSE();
    *msg = NULL;
    *msg_len = 0;
    if (f->frag_id == 0)
        return AMB_EDECODE;
    amb__frame_seq *s = find(d, f->seq_id);
    if (f->first) {
        if (s != NULL)
            return AMB_EDECODE; /* a second start while one is in flight */
        if (f->body_len > d->lim.max_message)
            return AMB_ESYSLIMIT;
        if (f->frag_id == 1) { /* a message in a single fragment */
            uint8_t *copy = amb__malloc(f->body_len ? f->body_len : 1);
            if (copy == NULL)
                return AMB_ENOMEM;
            if (f->body_len > 0)
                memcpy(copy, f->body, f->body_len);
            *msg = copy;
            *msg_len = f->body_len;
            return 0;
        }
        if (d->nseqs >= d->lim.max_sequences)
            return AMB_ESYSLIMIT;
        if (d->nseqs == d->cap) {
            size_t cap = d->cap ? d->cap * 2 : 4;
            if (cap > d->lim.max_sequences)
                cap = d->lim.max_sequences;
            amb__frame_seq *ns = amb__realloc(d->seqs, cap * sizeof *ns);
            if (ns == NULL)
                return AMB_ENOMEM;
            d->seqs = ns;
            d->cap = cap;
        }
        amb__frame_seq fresh = {.seq_id = f->seq_id, .next_id = f->frag_id - 1};
        int rc = append(d, &fresh, f->body, f->body_len);
        if (rc != 0) {
            amb__free(fresh.buf);
            d->pending -= fresh.cap;
            return rc;
        }
        d->seqs[d->nseqs++] = fresh;
        return 0;
    }
    if (s == NULL || f->frag_id != s->next_id)
        return AMB_EDECODE;
    int rc = append(d, s, f->body, f->body_len);
    if (rc != 0)
        return rc;
    s->next_id--;
    if (f->frag_id == 1)
        deliver(d, s, msg, msg_len);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Send
 * ------------------------------------------------------------------------ */

int amb__frame_encode_tick(uint8_t *buf, size_t cap, size_t *len)
{
    if (len == NULL || (buf == NULL && cap > 0))
        return AMB__MISUSE();
    if (cap < 4)
        return AMB_EBUFSIZE;
    memset(buf, 0, 4);
    *len = 4;
    return 0;
}

/* The header that starts a whole message's data in mode. */
static size_t message_head(amb__frame_mode mode, uint8_t *p)
{
    if (mode == AMB__FRAME_MODE_PASS_THROUGH) {
        p[0] = AMB__FRAME_PASS_THROUGH;
        return 1;
    }
    p[0] = AMB_ETF_VERSION;
    p[1] = AMB__DIST_HEADER;
    p[2] = 0; /* no atom-cache references */
    return 3;
}

int amb__frame_size(amb__frame_mode mode, size_t ctl_len, size_t msg_len, size_t *size)
{
    if (size == NULL)
        return AMB__MISUSE();
    size_t head = mode == AMB__FRAME_MODE_PASS_THROUGH ? 1 : 3;
    if (ctl_len > UINT32_MAX || msg_len > UINT32_MAX - head - ctl_len)
        return AMB_ESYSLIMIT;
    *size = 4 + head + ctl_len + msg_len;
    return 0;
}

int amb__frame_encode(amb__frame_mode mode, const uint8_t *ctl, size_t ctl_len,
                      const uint8_t *msg, size_t msg_len, uint8_t *buf, size_t cap,
                      size_t *len)
{
    if (len == NULL || (ctl == NULL && ctl_len > 0) || (msg == NULL && msg_len > 0) ||
        (buf == NULL && cap > 0) || ctl_len == 0)
        return AMB__MISUSE();
    size_t size;
    int rc = amb__frame_size(mode, ctl_len, msg_len, &size);
    if (rc != 0)
        return rc;
    if (cap < size)
        return AMB_EBUFSIZE;
    amb__etf_put32(buf, (uint32_t)(size - 4));
    size_t n = 4 + message_head(mode, buf + 4);
    memcpy(buf + n, ctl, ctl_len);
    if (msg_len > 0)
        memcpy(buf + n + ctl_len, msg, msg_len);
    *len = size;
    return 0;
}

int amb__frame_frag_init(amb__frame_frag *it, uint64_t seq_id, const uint8_t *ctl,
                         size_t ctl_len, const uint8_t *msg, size_t msg_len,
                         size_t max_frame)
{
    if (it == NULL || ctl == NULL || ctl_len == 0 || (msg == NULL && msg_len > 0) ||
        max_frame > UINT32_MAX)
        return AMB__MISUSE();
    /* The whole message in one normal frame when it fits. */
    uint64_t count;
    if (3 + ctl_len <= max_frame && msg_len <= max_frame - 3 - ctl_len) {
        count = 1;
    } else {
        /* A start holds the header, the control and at least one byte. */
        if (max_frame < 19 + ctl_len + 1 || max_frame <= 18)
            return AMB__MISUSE();
        size_t first = max_frame - 19 - ctl_len, cont = max_frame - 18;
        size_t rest = msg_len - first; /* > 0, or the message would fit */
        count = 1 + (rest + cont - 1) / cont;
    }
    *it = (amb__frame_frag){.ctl = ctl,
                            .ctl_len = ctl_len,
                            .msg = msg,
                            .msg_len = msg_len,
                            .seq_id = seq_id,
                            .count = count,
                            .next_id = count,
                            .max_frame = max_frame};
    return 0;
}

uint64_t amb__frame_frag_count(const amb__frame_frag *it)
{
    return it ? it->count : 0;
}

bool amb__frame_frag_done(const amb__frame_frag *it)
{
    return it == NULL || it->next_id == 0;
}

int amb__frame_frag_next(amb__frame_frag *it, uint8_t *buf, size_t cap, size_t *len)
{
    if (it == NULL || len == NULL || (buf == NULL && cap > 0))
        return AMB__MISUSE();
    if (it->next_id == 0)
        return AMB_ESTATE;
    if (it->count == 1) {
        int rc = amb__frame_encode(AMB__FRAME_MODE_HEADER, it->ctl, it->ctl_len, it->msg,
                                   it->msg_len, buf, cap, len);
        if (rc == 0)
            it->next_id = 0;
        return rc;
    }
    bool first = it->next_id == it->count;
    size_t head = first ? 19 : 18;
    size_t ctl = first ? it->ctl_len : 0;
    size_t part = it->max_frame - head - ctl;
    if (part > it->msg_len - it->msg_off)
        part = it->msg_len - it->msg_off;
    size_t data = head + ctl + part;
    if (cap < 4 + data)
        return AMB_EBUFSIZE;
    uint8_t *p = buf;
    amb__etf_put32(p, (uint32_t)data);
    p[4] = AMB_ETF_VERSION;
    p[5] = first ? AMB__DIST_FRAG_HEADER : AMB__DIST_FRAG_CONT;
    amb__etf_put64(p + 6, it->seq_id);
    amb__etf_put64(p + 14, it->next_id);
    p += 22;
    if (first) {
        *p++ = 0; /* no atom-cache references */
        memcpy(p, it->ctl, it->ctl_len);
        p += it->ctl_len;
    }
    if (part > 0)
        memcpy(p, it->msg + it->msg_off, part);
    it->msg_off += part;
    it->next_id--;
    *len = 4 + data;
    return 0;
}

/*
 * scan_bits.c - the bit syntax of Erlang term syntax: validating a
 * <<Seg, ...>> token for the tokenizer (scan.c), and walking the bits of a
 * validated one (amb__scan_bits) for the builder and the matcher.
 *
 * A segment is an integer (decimal, Base#Digits or $c, optionally signed)
 * with an optional :Size of 0..64 bits and /integer or /utf8, or a run of
 * adjacent strings with an optional /utf8 (docs/design/syntax.md).
 *
 * Invariant: one segment reader (seg_next) serves validation and the
 * walker, so the two cannot disagree about what the text means; the walker
 * re-reads only validated tokens and never fails.
 */
#include <string.h>

#include "scan.h"

enum { SEG_END, SEG_INT, SEG_STR };

typedef struct seg {
    int kind;
    uint64_t value;   /* SEG_INT: two's complement value, or UTF-8 bytes */
    unsigned size;    /* SEG_INT: bits (0..64) */
    size_t str_start; /* SEG_STR: the string run */
    size_t str_end;
    bool utf8;    /* SEG_STR: /utf8 */
    size_t chars; /* SEG_STR: characters */
    size_t bits;  /* SEG_STR: total bits */
} seg;

/* Reads an optional /Type suffix; *utf8 is set for /utf8. */
static int seg_type(amb__scan *s, bool *utf8)
{
    size_t pos = amb__scan_skip_ws(s->text, s->len, s->pos);
    *utf8 = false;
    if (pos >= s->len || s->text[pos] != '/')
        return 0;
    pos = amb__scan_skip_ws(s->text, s->len, pos + 1);
    size_t end = pos;
    while (end < s->len && amb__scan_is_name_char((uint8_t)s->text[end]))
        end++;
    if (end - pos == 4 && memcmp(s->text + pos, "utf8", 4) == 0)
        *utf8 = true;
    else if (!(end - pos == 7 && memcmp(s->text + pos, "integer", 7) == 0))
        return amb__scan_fail(s, pos, "binary segment type must be integer or utf8");
    s->pos = end;
    return 0;
}

/* Reads the next segment; *first tells whether a ',' must come before it. */
static int seg_next(amb__scan *s, bool *first, seg *g)
{
    size_t pos = amb__scan_skip_ws(s->text, s->len, s->pos);
    if (amb__scan_at(s, pos, ">>")) {
        s->pos = pos + 2;
        g->kind = SEG_END;
        return 0;
    }
    if (!*first) {
        if (pos >= s->len || s->text[pos] != ',')
            return amb__scan_fail(s, pos, "expected ',' or '>>'");
        pos = amb__scan_skip_ws(s->text, s->len, pos + 1);
        if (amb__scan_at(s, pos, ">>"))
            return amb__scan_fail(s, pos, "expected a binary segment");
    }
    *first = false;
    s->pos = pos;
    if (pos < s->len && s->text[pos] == '"') {
        amb__tok str;
        g->kind = SEG_STR;
        g->str_start = pos;
        g->chars = 0;
        do {
            int rc = amb__scan_quoted(s, &str, '"');
            if (rc < 0)
                return rc;
            g->str_end = str.end;
            s->pos = amb__scan_skip_ws(s->text, s->len, s->pos);
        } while (s->pos < s->len && s->text[s->pos] == '"');
        int rc = seg_type(s, &g->utf8);
        if (rc < 0)
            return rc;
        amb__scan_chars c;
        uint32_t cp;
        g->bits = 0;
        amb__scan_chars_init(&c, s->text, g->str_start, g->str_end);
        while (amb__scan_chars_next(&c, &cp)) {
            uint8_t enc[4];
            g->bits += 8 * (g->utf8 ? amb__utf8_encode(cp, enc) : 1);
            g->chars++;
        }
        return 0;
    }
    bool neg = false;
    if (pos < s->len && (s->text[pos] == '-' || s->text[pos] == '+')) {
        neg = s->text[pos] == '-';
        s->pos = amb__scan_skip_ws(s->text, s->len, pos + 1);
    }
    amb__tok num;
    int rc;
    if (s->pos < s->len && amb__scan_is_digit(s->text[s->pos]))
        rc = amb__scan_number_read(s, &num);
    else if (s->pos < s->len && s->text[s->pos] == '$')
        rc = amb__scan_number_char(s, &num);
    else
        return amb__scan_fail(s, s->pos, "expected a binary segment");
    if (rc < 0)
        return rc;
    if (num.kind == AMB__TK_FLOAT)
        return amb__scan_fail(s, num.start, "float segments are not supported");
    if (num.flags & AMB__TF_BIG)
        return amb__scan_fail(s, num.start, "binary segment value too large");
    uint64_t v = neg ? (uint64_t)0 - num.v.u : num.v.u;
    unsigned size = 8;
    pos = amb__scan_skip_ws(s->text, s->len, s->pos);
    bool sized = false;
    if (pos < s->len && s->text[pos] == ':') {
        pos = amb__scan_skip_ws(s->text, s->len, pos + 1);
        size = 0;
        size_t d = pos;
        while (pos < s->len && amb__scan_is_digit(s->text[pos]) && size <= 64)
            size = size * 10 + (unsigned)(s->text[pos++] - '0');
        if (pos == d || size > 64)
            return amb__scan_fail(s, d, "segment size must be 0..64");
        s->pos = pos;
        sized = true;
    }
    bool utf8;
    if ((rc = seg_type(s, &utf8)) < 0)
        return rc;
    if (utf8) {
        if (sized)
            return amb__scan_fail(s, num.start, "a utf8 segment has no size");
        if (neg || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            return amb__scan_fail(s, num.start, "not a Unicode code point");
        uint8_t enc[4];
        size_t k = amb__utf8_encode((uint32_t)v, enc);
        v = 0;
        for (size_t i = 0; i < k; i++)
            v = v << 8 | enc[i];
        size = (unsigned)(8 * k);
    }
    g->kind = SEG_INT;
    g->value = size < 64 ? v & (((uint64_t)1 << size) - 1) : v;
    g->size = size;
    return 0;
}

/* Validates <<...>> at s->pos; *bits gets its size in bits. */
int amb__scan_bits_read(amb__scan *s, amb__tok *tok)
{
    size_t start = s->pos;
    bool first = true;
    uint64_t bits = 0;
    seg g;
    s->pos += 2;
    for (;;) {
        int rc = seg_next(s, &first, &g);
        if (rc < 0)
            return rc;
        if (g.kind == SEG_END)
            break;
        bits += g.kind == SEG_INT ? g.size : g.bits;
    }
    tok->kind = AMB__TK_BINARY;
    tok->flags = 0;
    tok->start = start;
    tok->end = s->pos;
    tok->v.u = bits;
    return 0;
}

void amb__scan_bits_init(amb__scan_bits *b, const char *text, size_t len,
                         const amb__tok *tok)
{
    amb__scan_init(&b->sc, text, len, false);
    /* Past "<<", or past "#Fun<<<" for a closure. */
    b->sc.pos = tok->start + (tok->kind == AMB__TK_CLOSURE ? 7 : 2);
    b->in_str = false;
    b->utf8 = false;
    b->str_next = 0;
    b->first = true;
}

bool amb__scan_bits_next(amb__scan_bits *b, uint64_t *value, unsigned *nbits)
{
    for (;;) {
        if (b->in_str) {
            uint32_t cp;
            if (amb__scan_chars_next(&b->str, &cp)) {
                if (!b->utf8) {
                    /* Erlang keeps the low 8 bits of each character. */
                    *value = cp & 0xffu;
                    *nbits = 8;
                    return true;
                }
                uint8_t enc[4];
                size_t k = amb__utf8_encode(cp, enc);
                uint64_t v = 0;
                for (size_t i = 0; i < k; i++)
                    v = v << 8 | enc[i];
                *value = v;
                *nbits = (unsigned)(8 * k);
                return true;
            }
            b->in_str = false;
            b->sc.pos = b->str_next;
        }
        seg g;
        int rc = seg_next(&b->sc, &b->first, &g);
        AMB__CHECK(rc == 0);
        if (g.kind == SEG_END)
            return false;
        if (g.kind == SEG_STR) {
            amb__scan_chars_init(&b->str, b->sc.text, g.str_start, g.str_end);
            b->utf8 = g.utf8;
            b->in_str = true;
            b->str_next = b->sc.pos;
            continue;
        }
        if (g.size == 0)
            continue;
        *value = g.value;
        *nbits = g.size;
        return true;
    }
}

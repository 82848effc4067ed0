/*
 * scan.c - the tokenizer of Erlang term syntax (see scan.h for the contract
 * and docs/design/syntax.md for the grammar).
 *
 * Invariants:
 *   - No read ever reaches text[len]: every access is guarded by a position
 *     check, because the text is a (pointer, length) pair, not a C string.
 *   - A token is fully validated when it is scanned; the walkers at the end
 *     of this file (amb__scan_chars, amb__scan_bits, amb__scan_parts_of) re-read only
 *     validated tokens, so they never fail and never need error paths. They
 *     call the same static readers as the validator, so the two cannot
 *     disagree about what the text means.
 *   - Scanning allocates nothing, except a temporary copy of a float literal
 *     longer than FLOAT_INLINE bytes (for strtod_l, which needs a C string).
 */
#include <locale.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"
#include "term_internal.h"

#define FLOAT_INLINE 64

/* ---------------------------------------------------------------------------
 * Character classes
 * ------------------------------------------------------------------------ */

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* The value of c as a digit in bases up to 36, or 99. */
static unsigned digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'z')
        return (unsigned)(c - 'a' + 10);
    if (c >= 'A' && c <= 'Z')
        return (unsigned)(c - 'A' + 10);
    return 99;
}

/* Erlang's character classes for names, which cover ASCII and Latin-1 only
 * (erl_scan): other Unicode letters cannot start or continue a bare atom. */
static bool is_lower(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 0xdf && c <= 0xff && c != 0xf7);
}
static bool is_upper(uint32_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 0xc0 && c <= 0xde && c != 0xd7);
}
static bool is_name_char(uint32_t c)
{
    return is_lower(c) || is_upper(c) || is_digit((int)c) || c == '_' || c == '@';
}

/* is_name_char for ASCII, as a table: the inner loop of every bare atom. */
#define R6(b)  [b] = 1, [b + 1] = 1, [b + 2] = 1, [b + 3] = 1, [b + 4] = 1, [b + 5] = 1
#define R10(b) R6(b), [b + 6] = 1, [b + 7] = 1, [b + 8] = 1, [b + 9] = 1
static const uint8_t ascii_name[128] = {
    R10('0'), R10('A'), R10('K'),  R6('U'),   R10('a'),
    R10('k'), R6('u'),  ['_'] = 1, ['@'] = 1,
};
#undef R10
#undef R6

/* The code point at text[pos] (ASCII fast path); its length, or 0 at the end
 * or on invalid UTF-8. */
static size_t peek_cp(const char *text, size_t len, size_t pos, uint32_t *cp)
{
    if (pos >= len)
        return 0;
    uint8_t c = (uint8_t)text[pos];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    return amb__utf8_decode((const uint8_t *)text + pos, len - pos, cp);
}

static inline size_t skip_ws(const char *text, size_t len, size_t pos)
{
    /* Most tokens follow another directly: decide that with one compare. */
    if (pos < len && (uint8_t)text[pos] > ' ' && text[pos] != '%')
        return pos;
    while (pos < len) {
        char c = text[pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
            pos++;
        } else if (c == '%') {
            while (pos < len && text[pos] != '\n')
                pos++;
        } else {
            break;
        }
    }
    return pos;
}

static int fail(amb__scan *s, size_t pos, const char *msg)
{
    s->err = AMB_ESYNTAX;
    s->err_pos = pos;
    s->err_msg = msg;
    return AMB_ESYNTAX;
}

void amb__scan_init(amb__scan *s, const char *text, size_t len, bool format)
{
    s->text = text;
    s->len = len;
    s->pos = 0;
    s->format = format;
    s->err = 0;
    s->err_pos = 0;
    s->err_msg = NULL;
}

/* ---------------------------------------------------------------------------
 * Quoted text: one reader for atoms, strings and $c, escapes included.
 * ------------------------------------------------------------------------ */

/* Reads the escape sequence whose backslash is at *pos; on success *pos is
 * just past it. Erlang's escapes: \b \d \e \f \n \r \s \t \v, octal \NNN
 * (1-3 digits), \xHH (exactly two hex digits), \x{H...}, \^c (c band 31),
 * and a backslash before any other character stands for that character. */
static int read_escape(amb__scan *s, size_t *pos, uint32_t *cp)
{
    const char *t = s->text;
    size_t len = s->len, at = *pos, i = at + 1;
    if (i >= len)
        return fail(s, at, "unterminated escape sequence");
    char c = t[i];
    uint32_t v;
    switch (c) {
    case 'b':
        v = 8;
        break;
    case 'd':
        v = 127;
        break;
    case 'e':
        v = 27;
        break;
    case 'f':
        v = 12;
        break;
    case 'n':
        v = 10;
        break;
    case 'r':
        v = 13;
        break;
    case 's':
        v = 32;
        break;
    case 't':
        v = 9;
        break;
    case 'v':
        v = 11;
        break;
    case 'x':
        i++;
        if (i < len && t[i] == '{') {
            i++;
            size_t first = i;
            v = 0;
            while (i < len && digit_value(t[i]) < 16) {
                v = v * 16 + digit_value(t[i]);
                if (v > 0x10ffff)
                    return fail(s, at, "escape beyond U+10FFFF");
                i++;
            }
            if (i == first || i >= len || t[i] != '}')
                return fail(s, at, "bad \\x{...} escape");
            i++;
        } else {
            if (i + 1 >= len || digit_value(t[i]) >= 16 || digit_value(t[i + 1]) >= 16)
                return fail(s, at, "\\x needs two hex digits or {...}");
            v = digit_value(t[i]) * 16 + digit_value(t[i + 1]);
            i += 2;
        }
        if (v >= 0xd800 && v <= 0xdfff)
            return fail(s, at, "escape names a surrogate code point");
        *cp = v;
        *pos = i;
        return 0;
    case '^': {
        uint32_t x;
        size_t n = peek_cp(t, len, i + 1, &x);
        if (n == 0)
            return fail(s, at, "bad \\^ escape");
        *cp = x & 31;
        *pos = i + 1 + n;
        return 0;
    }
    default:
        if (c >= '0' && c <= '7') {
            v = 0;
            size_t k = 0;
            while (k < 3 && i < len && t[i] >= '0' && t[i] <= '7') {
                v = v * 8 + (uint32_t)(t[i] - '0');
                i++;
                k++;
            }
            *cp = v;
            *pos = i;
            return 0;
        }
        /* Any other character stands for itself (Erlang: "\z" is "z"). */
        size_t n = peek_cp(t, len, i, &v);
        if (n == 0)
            return fail(s, i, "invalid UTF-8");
        *cp = v;
        *pos = i + n;
        return 0;
    }
    *cp = v;
    *pos = i + 1;
    return 0;
}

/* Reads one character of quoted text at *pos. Returns 1 with *cp, 0 at the
 * closing quote (then *pos is past it), or AMB_ESYNTAX. open is the position
 * of the opening quote, for the "unterminated" message. */
static int quoted_char(amb__scan *s, size_t *pos, char quote, size_t open, uint32_t *cp)
{
    size_t i = *pos;
    if (i >= s->len)
        return fail(s, open, quote == '"' ? "unterminated string" : "unterminated atom");
    uint8_t c = (uint8_t)s->text[i];
    if (c == (uint8_t)quote) {
        *pos = i + 1;
        return 0;
    }
    if (c == '\\') {
        int rc = read_escape(s, pos, cp);
        return rc < 0 ? rc : 1;
    }
    if (c < 0x80) {
        *cp = c;
        *pos = i + 1;
        return 1;
    }
    size_t n = amb__utf8_decode((const uint8_t *)s->text + i, s->len - i, cp);
    if (n == 0)
        return fail(s, i, "invalid UTF-8");
    *pos = i + n;
    return 1;
}

/* Scans a quoted atom or string starting at the quote at s->pos. */
static int scan_quoted(amb__scan *s, amb__tok *tok, char quote)
{
    size_t open = s->pos, pos = open + 1, chars = 0;
    uint32_t cp;
    int rc;
    tok->flags = 0;
    while ((rc = quoted_char(s, &pos, quote, open, &cp)) == 1)
        chars++;
    if (rc < 0)
        return rc;
    /* A backslash anywhere in the span means the bytes are not the name. */
    if (memchr(s->text + open + 1, '\\', pos - open - 2) != NULL)
        tok->flags |= AMB__TF_ESCAPES;
    if (quote == '\'') {
        if (chars > AMB_ATOM_MAX_CHARS)
            return fail(s, open, "atom longer than 255 characters");
        tok->kind = AMB__TK_ATOM;
        tok->flags |= AMB__TF_QUOTED;
    } else {
        tok->kind = AMB__TK_STRING;
    }
    tok->start = open;
    tok->end = pos;
    s->pos = pos;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Names: bare atoms, the keyword fun, variables (rejected), the wildcard _
 * ------------------------------------------------------------------------ */

/* Erlang's reserved words (erl_scan:reserved_word/1 in OTP 25): a bare one
 * is not an atom (write 'end'). Grouped by length, each group the words of
 * exactly that many letters end to end, so that the check, made for every
 * bare atom, is a few byte compares. */
static bool is_reserved(const char *name, size_t len)
{
    static const struct {
        const char *words;
        size_t count;
    } by_len[8] = {
        [2] = {"ifofor", 3},
        [3] = {"andborbslbsrdivendfunletnotremtryxor", 12},
        [4] = {"bandbnotbxorcasecondwhen", 6},
        [5] = {"afterbegincatch", 3},
        [6] = {"orelse", 1},
        [7] = {"andalsoreceive", 2},
    };
    if (len < 2 || len > 7)
        return false;
    const char *w = by_len[len].words;
    for (size_t i = 0; i < by_len[len].count; i++, w += len)
        if (w[0] == name[0] && memcmp(w, name, len) == 0)
            return true;
    return false;
}

/* Scans a name whose first character (at s->pos) is a letter or _. */
static int scan_name(amb__scan *s, amb__tok *tok, uint32_t first)
{
    size_t start = s->pos, pos = start, chars = 0;
    const char *t = s->text;
    for (;;) {
        /* ASCII first: names in formats are almost always plain ASCII. */
        while (pos < s->len && (uint8_t)t[pos] < 0x80 && ascii_name[(uint8_t)t[pos]]) {
            pos++;
            chars++;
        }
        uint32_t cp;
        size_t n =
            pos < s->len && (uint8_t)t[pos] >= 0x80 ? peek_cp(t, s->len, pos, &cp) : 0;
        if (n == 0 || !is_name_char(cp))
            break;
        pos += n;
        chars++;
    }
    tok->start = start;
    tok->end = pos;
    tok->flags = 0;
    if (!is_lower(first)) {
        if (s->format && pos == start + 1 && first == '_') {
            tok->kind = AMB__TK_WILDCARD;
            s->pos = pos;
            return 0;
        }
        return fail(s, start, "a variable is not a term");
    }
    if (chars > AMB_ATOM_MAX_CHARS)
        return fail(s, start, "atom longer than 255 characters");
    if (pos - start == 3 && memcmp(s->text + start, "fun", 3) == 0) {
        tok->kind = AMB__TK_FUN;
    } else if (is_reserved(s->text + start, pos - start)) {
        return fail(s, start, "reserved word: quote it to make an atom");
    } else {
        tok->kind = AMB__TK_ATOM;
    }
    s->pos = pos;
    return 0;
}

/* An atom, bare or quoted, at s->pos (for the node of #Pid<...> forms). */
static int scan_atom(amb__scan *s, amb__tok *tok)
{
    uint32_t cp;
    if (s->pos < s->len && s->text[s->pos] == '\'')
        return scan_quoted(s, tok, '\'');
    if (peek_cp(s->text, s->len, s->pos, &cp) > 0 && is_lower(cp)) {
        int rc = scan_name(s, tok, cp);
        if (rc == 0 && tok->kind != AMB__TK_ATOM)
            return fail(s, tok->start, "expected an atom");
        return rc;
    }
    return fail(s, s->pos, "expected an atom");
}

/* ---------------------------------------------------------------------------
 * Numbers
 * ------------------------------------------------------------------------ */

/* Digits of base at s->pos, with single underscores between digits (1_000);
 * returns how many digits (not underscores) were read, and accumulates the
 * magnitude into *mag, setting *big on overflow. */
static size_t scan_digits(amb__scan *s, unsigned base, uint64_t *mag, bool *big)
{
    const char *t = s->text;
    size_t pos = s->pos, count = 0;
    while (pos < s->len) {
        unsigned d = digit_value(t[pos]);
        if (d >= base) {
            /* An underscore counts only between two digits. */
            if (t[pos] == '_' && count > 0 && pos + 1 < s->len &&
                digit_value(t[pos + 1]) < base) {
                pos++;
                continue;
            }
            break;
        }
        if (*mag > (UINT64_MAX - d) / base)
            *big = true;
        else
            *mag = *mag * base + d;
        pos++;
        count++;
    }
    s->pos = pos;
    return count;
}

static _Atomic(locale_t) c_locale;

/* The "C" locale for strtod_l, made once: strtod would follow the caller's
 * LC_NUMERIC and read "1,5" instead of "1.5" in some locales. */
static locale_t get_c_locale(void)
{
    /* Acquire pairs with the release of the compare-exchange below: a thread
     * that sees the pointer also sees the locale object it points to. */
    locale_t l = atomic_load_explicit(&c_locale, memory_order_acquire);
    if (l != (locale_t)0)
        return l;
    locale_t fresh = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (fresh == (locale_t)0)
        return (locale_t)0;
    locale_t expected = (locale_t)0;
    /* acq_rel: release publishes our object; on failure, acquire makes the
     * winner's object visible before we use it. */
    if (!atomic_compare_exchange_strong_explicit(
            &c_locale, &expected, fresh, memory_order_acq_rel, memory_order_acquire)) {
        freelocale(fresh);
        return expected;
    }
    return fresh;
}

/* Converts the float literal text[start, end) (underscores dropped). */
static int to_double(amb__scan *s, size_t start, size_t end, double *out)
{
    char inline_buf[FLOAT_INLINE];
    size_t n = end - start;
    char *buf = n < sizeof inline_buf ? inline_buf : amb__malloc(n + 1);
    locale_t loc = get_c_locale();
    if (buf == NULL || loc == (locale_t)0) {
        if (buf != inline_buf)
            amb__free(buf);
        s->err = AMB_ENOMEM;
        s->err_pos = start;
        s->err_msg = "out of memory";
        return AMB_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = start; i < end; i++)
        if (s->text[i] != '_')
            buf[k++] = s->text[i];
    buf[k] = '\0';
    double d = strtod_l(buf, NULL, loc);
    if (buf != inline_buf)
        amb__free(buf);
    /* Overflow is an error, as in Erlang; underflow quietly gives a denormal
     * or zero (Erlang reads 1.0e-400 as 0.0). */
    if (!(d <= 1.7976931348623157e308))
        return fail(s, start, "float out of range");
    *out = d;
    return 0;
}

/* A number at s->pos (a digit): decimal or Base#Digits integer, or float. */
static int scan_number(amb__scan *s, amb__tok *tok)
{
    size_t start = s->pos;
    uint64_t mag = 0;
    bool big = false;
    scan_digits(s, 10, &mag, &big);
    const char *t = s->text;
    tok->start = start;
    tok->flags = 0;
    tok->base = 10;
    tok->digits = start;
    if (s->pos < s->len && t[s->pos] == '#') {
        if (big || mag < 2 || mag > 36 || memchr(t + start, '_', s->pos - start) != NULL)
            return fail(s, start, "integer base must be 2..36");
        tok->base = (uint8_t)mag;
        s->pos++;
        tok->digits = s->pos;
        mag = 0;
        if (scan_digits(s, tok->base, &mag, &big) == 0)
            return fail(s, start, "missing digits after base#");
    } else if (s->pos + 1 < s->len && t[s->pos] == '.' && is_digit(t[s->pos + 1])) {
        s->pos++;
        uint64_t ignored = 0;
        bool ignored_big = false;
        scan_digits(s, 10, &ignored, &ignored_big);
        if (s->pos < s->len && (t[s->pos] == 'e' || t[s->pos] == 'E')) {
            s->pos++;
            if (s->pos < s->len && (t[s->pos] == '+' || t[s->pos] == '-'))
                s->pos++;
            if (scan_digits(s, 10, &ignored, &ignored_big) == 0)
                return fail(s, start, "float exponent needs digits");
        }
        tok->kind = AMB__TK_FLOAT;
        tok->end = s->pos;
        return to_double(s, start, s->pos, &tok->v.d);
    }
    tok->kind = AMB__TK_INT;
    tok->end = s->pos;
    tok->v.u = mag;
    if (big)
        tok->flags |= AMB__TF_BIG;
    return 0;
}

/* $c: a character literal, s->pos at the $. */
static int scan_char(amb__scan *s, amb__tok *tok)
{
    size_t start = s->pos, pos = start + 1;
    uint32_t cp;
    if (pos >= s->len)
        return fail(s, start, "$ needs a character");
    if (s->text[pos] == '\\') {
        int rc = read_escape(s, &pos, &cp);
        if (rc < 0)
            return rc;
    } else {
        size_t n = peek_cp(s->text, s->len, pos, &cp);
        if (n == 0)
            return fail(s, pos, "invalid UTF-8");
        pos += n;
    }
    tok->kind = AMB__TK_CHAR;
    tok->flags = 0;
    tok->start = start;
    tok->end = pos;
    tok->v.u = cp;
    s->pos = pos;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Binaries: <<Seg, Seg, ...>>. One segment reader serves validation and the
 * amb__scan_bits walker.
 * ------------------------------------------------------------------------ */

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

static bool at(const amb__scan *s, size_t pos, const char *lit)
{
    size_t n = strlen(lit);
    return pos + n <= s->len && memcmp(s->text + pos, lit, n) == 0;
}

/* Reads an optional /Type suffix; *utf8 is set for /utf8. */
static int seg_type(amb__scan *s, bool *utf8)
{
    size_t pos = skip_ws(s->text, s->len, s->pos);
    *utf8 = false;
    if (pos >= s->len || s->text[pos] != '/')
        return 0;
    pos = skip_ws(s->text, s->len, pos + 1);
    size_t end = pos;
    while (end < s->len && is_name_char((uint8_t)s->text[end]))
        end++;
    if (end - pos == 4 && memcmp(s->text + pos, "utf8", 4) == 0)
        *utf8 = true;
    else if (!(end - pos == 7 && memcmp(s->text + pos, "integer", 7) == 0))
        return fail(s, pos, "binary segment type must be integer or utf8");
    s->pos = end;
    return 0;
}

/* Reads the next segment; *first tells whether a ',' must come before it. */
static int seg_next(amb__scan *s, bool *first, seg *g)
{
    size_t pos = skip_ws(s->text, s->len, s->pos);
    if (at(s, pos, ">>")) {
        s->pos = pos + 2;
        g->kind = SEG_END;
        return 0;
    }
    if (!*first) {
        if (pos >= s->len || s->text[pos] != ',')
            return fail(s, pos, "expected ',' or '>>'");
        pos = skip_ws(s->text, s->len, pos + 1);
        if (at(s, pos, ">>"))
            return fail(s, pos, "expected a binary segment");
    }
    *first = false;
    s->pos = pos;
    if (pos < s->len && s->text[pos] == '"') {
        amb__tok str;
        g->kind = SEG_STR;
        g->str_start = pos;
        g->chars = 0;
        do {
            int rc = scan_quoted(s, &str, '"');
            if (rc < 0)
                return rc;
            g->str_end = str.end;
            s->pos = skip_ws(s->text, s->len, s->pos);
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
        s->pos = skip_ws(s->text, s->len, pos + 1);
    }
    amb__tok num;
    int rc;
    if (s->pos < s->len && is_digit(s->text[s->pos]))
        rc = scan_number(s, &num);
    else if (s->pos < s->len && s->text[s->pos] == '$')
        rc = scan_char(s, &num);
    else
        return fail(s, s->pos, "expected a binary segment");
    if (rc < 0)
        return rc;
    if (num.kind == AMB__TK_FLOAT)
        return fail(s, num.start, "float segments are not supported");
    if (num.flags & AMB__TF_BIG)
        return fail(s, num.start, "binary segment value too large");
    uint64_t v = neg ? (uint64_t)0 - num.v.u : num.v.u;
    unsigned size = 8;
    pos = skip_ws(s->text, s->len, s->pos);
    bool sized = false;
    if (pos < s->len && s->text[pos] == ':') {
        pos = skip_ws(s->text, s->len, pos + 1);
        size = 0;
        size_t d = pos;
        while (pos < s->len && is_digit(s->text[pos]) && size <= 64)
            size = size * 10 + (unsigned)(s->text[pos++] - '0');
        if (pos == d || size > 64)
            return fail(s, d, "segment size must be 0..64");
        s->pos = pos;
        sized = true;
    }
    bool utf8;
    if ((rc = seg_type(s, &utf8)) < 0)
        return rc;
    if (utf8) {
        if (sized)
            return fail(s, num.start, "a utf8 segment has no size");
        if (neg || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            return fail(s, num.start, "not a Unicode code point");
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
static int scan_binary(amb__scan *s, amb__tok *tok)
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

/* ---------------------------------------------------------------------------
 * #Pid<...>, #Ref<...>, #Port<...>, #Fun<...>: amb_print's forms for terms
 * Erlang has no syntax for. No whitespace inside.
 * ------------------------------------------------------------------------ */

/* Reads the form whose '<' is at s->pos into *f; used by the validator and
 * by amb__scan_form. */
static int form_body(amb__scan *s, uint8_t kind, size_t start, amb__scan_parts *f)
{
    s->pos++;
    int rc = scan_atom(s, &f->node);
    if (rc < 0)
        return rc;
    f->n = 0;
    while (s->pos < s->len && s->text[s->pos] == '.') {
        s->pos++;
        size_t d = s->pos;
        uint64_t v = 0;
        while (s->pos < s->len && is_digit(s->text[s->pos])) {
            unsigned digit = (unsigned)(s->text[s->pos] - '0');
            if (v > (UINT64_MAX - digit) / 10)
                return fail(s, d, "number too large");
            v = v * 10 + digit;
            s->pos++;
        }
        if (s->pos == d)
            return fail(s, d, "expected a number");
        if (f->n == AMB_COUNTOF(f->num))
            return fail(s, d, "too many numbers");
        /* Every number is 32 bits except a port's id. */
        if (v > UINT32_MAX && !(kind == AMB__TK_PORT && f->n == 0))
            return fail(s, d, "number does not fit 32 bits");
        f->num[f->n++] = v;
    }
    size_t want_min = kind == AMB__TK_PID ? 3 : kind == AMB__TK_PORT ? 2 : 2;
    size_t want_max = kind == AMB__TK_PID ? 3 : kind == AMB__TK_PORT ? 2 : 6;
    if (f->n < want_min || f->n > want_max)
        return fail(s, start, "wrong count of numbers in #Pid/#Ref/#Port");
    if (s->pos >= s->len || s->text[s->pos] != '>')
        return fail(s, s->pos, "expected '>'");
    s->pos++;
    return 0;
}

static int scan_hash(amb__scan *s, amb__tok *tok)
{
    size_t start = s->pos;
    tok->start = start;
    tok->flags = 0;
    static const struct {
        const char *prefix;
        uint8_t kind;
    } forms[] = {
        {"#Pid<", AMB__TK_PID}, {"#Ref<", AMB__TK_REF}, {"#Port<", AMB__TK_PORT}};
    for (size_t i = 0; i < AMB_COUNTOF(forms); i++) {
        if (at(s, start, forms[i].prefix)) {
            amb__scan_parts f;
            s->pos = start + strlen(forms[i].prefix) - 1;
            int rc = form_body(s, forms[i].kind, start, &f);
            if (rc < 0)
                return rc;
            tok->kind = forms[i].kind;
            tok->end = s->pos;
            return 0;
        }
    }
    if (at(s, start, "#Fun<<<")) {
        amb__tok bin;
        s->pos = start + 5;
        int rc = scan_binary(s, &bin);
        if (rc < 0)
            return rc;
        if (bin.v.u == 0 || bin.v.u % 8 != 0)
            return fail(s, start, "#Fun<...> needs a non-empty binary of whole bytes");
        if (s->pos >= s->len || s->text[s->pos] != '>')
            return fail(s, s->pos, "expected '>'");
        s->pos++;
        tok->kind = AMB__TK_CLOSURE;
        tok->end = s->pos;
        tok->v.u = bin.v.u / 8;
        return 0;
    }
    /* Erlang allows space between # and { (it scans them as two tokens). */
    size_t pos = skip_ws(s->text, s->len, start + 1);
    if (pos < s->len && s->text[pos] == '{') {
        tok->kind = AMB__TK_MAP;
        tok->end = pos + 1;
        s->pos = pos + 1;
        return 0;
    }
    return fail(s, start, "expected #{, #Pid<, #Ref<, #Port< or #Fun<");
}

/* ---------------------------------------------------------------------------
 * The tokenizer
 * ------------------------------------------------------------------------ */

static bool is_directive(char c)
{
    switch (c) {
    case 'a':
    case 'i':
    case 'l':
    case 'u':
    case 'f':
    case 's':
    case 'b':
    case 'w':
    case 't':
    case 'p':
    case 'r':
    case 'v':
        return true;
    default:
        return false;
    }
}

static int punct(amb__scan *s, amb__tok *tok, uint8_t kind, size_t n)
{
    tok->kind = kind;
    tok->flags = 0;
    tok->start = s->pos;
    tok->end = s->pos + n;
    s->pos += n;
    return 0;
}

/* Everything but the common tokens: kept out of line so that the hot path
 * of amb__scan_next stays small (few registers to save, a small frame). */
static __attribute__((noinline)) int scan_other(amb__scan *s, amb__tok *tok)
{
    const char *t = s->text;
    size_t pos = s->pos;
    char c = t[pos];
    switch (c) {
    case '|':
        if (pos + 1 < s->len && t[pos + 1] == '|')
            return fail(s, pos, "unexpected '||'");
        return punct(s, tok, AMB__TK_BAR, 1);
    case '=':
        if (pos + 1 < s->len && t[pos + 1] == '>')
            return punct(s, tok, AMB__TK_ASSOC, 2);
        return fail(s, pos, "unexpected '='");
    case ':':
        if (pos + 1 < s->len && t[pos + 1] == '=') {
            if (s->format)
                return punct(s, tok, AMB__TK_EXACT, 2);
            return fail(s, pos, "unexpected ':='");
        }
        return punct(s, tok, AMB__TK_COLON, 1);
    case '<':
        if (pos + 1 < s->len && t[pos + 1] == '<')
            return scan_binary(s, tok);
        return fail(s, pos, "unexpected '<'");
    case '#':
        return scan_hash(s, tok);
    case '\'':
        return scan_quoted(s, tok, '\'');
    case '"':
        return scan_quoted(s, tok, '"');
    case '$':
        return scan_char(s, tok);
    case '~':
        if (!s->format)
            return fail(s, pos, "unexpected '~'");
        return fail(s, pos, "unknown directive (~a ~i ~l ~u ~f ~s ~b ~w ~t ~p ~r ~v)");
    default:
        break;
    }
    if (is_digit(c))
        return scan_number(s, tok);
    uint32_t cp;
    size_t n = peek_cp(t, s->len, pos, &cp);
    if (n == 0)
        return fail(s, pos, "invalid UTF-8");
    if (is_lower(cp) || is_upper(cp) || cp == '_')
        return scan_name(s, tok, cp);
    return fail(s, pos, "unexpected character");
}

/* The tokens that are one character whatever follows. */
static const uint8_t single[128] = {
    ['{'] = AMB__TK_LBRACE,   ['}'] = AMB__TK_RBRACE, ['['] = AMB__TK_LBRACKET,
    [']'] = AMB__TK_RBRACKET, [','] = AMB__TK_COMMA,  ['/'] = AMB__TK_SLASH,
    ['-'] = AMB__TK_MINUS,    ['+'] = AMB__TK_PLUS,   ['.'] = AMB__TK_DOT,
};

int amb__scan_next(amb__scan *s, amb__tok *tok)
{
    const char *t = s->text;
    size_t len = s->len, pos = skip_ws(t, len, s->pos);
    s->pos = pos;
    /* Fields that only some kinds set are zero in the others, so that a
     * token is fully defined whatever its kind (the format cache copies it). */
    tok->base = 0;
    tok->digits = 0;
    tok->v.u = 0;
    if (pos >= len) {
        tok->kind = AMB__TK_EOF;
        tok->flags = 0;
        tok->start = tok->end = len;
        return 0;
    }
    uint8_t c = (uint8_t)t[pos];
    if (c < 0x80 && single[c] != 0)
        return punct(s, tok, single[c], 1);
    if (c >= 'a' && c <= 'z')
        return scan_name(s, tok, c);
    if (c == '~' && s->format && pos + 1 < len && is_directive(t[pos + 1])) {
        tok->v.u = (uint8_t)t[pos + 1];
        return punct(s, tok, AMB__TK_DIRECTIVE, 2);
    }
    return scan_other(s, tok);
}

/* ---------------------------------------------------------------------------
 * Walkers over validated tokens
 * ------------------------------------------------------------------------ */

void amb__scan_chars_init(amb__scan_chars *c, const char *text, size_t start, size_t end)
{
    c->text = text;
    c->end = end;
    if (text[start] == '\'' || text[start] == '"') {
        c->quote = text[start];
        c->pos = start + 1;
    } else {
        c->quote = 0;
        c->pos = start;
    }
}

bool amb__scan_chars_next(amb__scan_chars *c, uint32_t *cp)
{
    if (c->pos >= c->end)
        return false;
    if (c->quote == 0) {
        size_t n = peek_cp(c->text, c->end, c->pos, cp);
        AMB__CHECK(n > 0);
        c->pos += n;
        return true;
    }
    /* A scanner over the span alone: it was validated, so it cannot fail. */
    amb__scan s;
    amb__scan_init(&s, c->text, c->end, false);
    for (;;) {
        size_t pos = c->pos;
        int rc = quoted_char(&s, &pos, c->quote, c->pos, cp);
        AMB__CHECK(rc >= 0);
        c->pos = pos;
        if (rc == 1)
            return true;
        /* The closing quote of one string of a run: continue with the next
         * string, past the whitespace and comments between them. */
        pos = skip_ws(c->text, c->end, pos);
        if (pos >= c->end) {
            c->pos = c->end;
            return false;
        }
        AMB__CHECK(c->text[pos] == c->quote);
        c->pos = pos + 1;
    }
}

const char *amb__scan_atom_name(const char *text, const amb__tok *tok, char *buf,
                                size_t *len)
{
    if (!(tok->flags & AMB__TF_ESCAPES)) {
        size_t q = (tok->flags & AMB__TF_QUOTED) ? 1 : 0;
        *len = tok->end - tok->start - 2 * q;
        return text + tok->start + q;
    }
    amb__scan_chars c;
    uint32_t cp;
    size_t n = 0;
    amb__scan_chars_init(&c, text, tok->start, tok->end);
    while (amb__scan_chars_next(&c, &cp)) {
        /* At most 255 characters of at most 4 bytes: within the buffer. */
        AMB__CHECK(n + 4 <= AMB_ATOM_MAX_BYTES);
        n += amb__utf8_encode(cp, (uint8_t *)buf + n);
    }
    *len = n;
    return buf;
}

/* limbs[0..*n) = limbs * mul + add; false when it would need more than cap
 * limbs. */
static bool mul_add(uint64_t *limbs, size_t *n, size_t cap, uint64_t mul, uint64_t add)
{
    unsigned __int128 carry = add;
    for (size_t i = 0; i < *n; i++) {
        carry += (unsigned __int128)limbs[i] * mul;
        limbs[i] = (uint64_t)carry;
        carry >>= 64;
    }
    if (carry != 0) {
        if (*n == cap)
            return false;
        limbs[(*n)++] = (uint64_t)carry;
    }
    return true;
}

int amb__scan_int_limbs(const char *text, const amb__tok *tok, size_t max_limbs,
                        uint64_t **out, size_t *out_n)
{
    unsigned base = tok->base;
    /* Skip leading zeros (and underscores among them) so they cost nothing. */
    size_t pos = tok->digits;
    while (pos < tok->end && (text[pos] == '0' || text[pos] == '_'))
        pos++;
    size_t ndigits = 0;
    for (size_t i = pos; i < tok->end; i++)
        ndigits += text[i] != '_';
    /* Each digit adds at most 6 bits (base 36 < 2^6): a bound on the limbs. */
    unsigned bits_per_digit = 1;
    while ((1u << bits_per_digit) < base)
        bits_per_digit++;
    size_t need = ndigits / 64 * bits_per_digit + bits_per_digit + 1;
    /* A value with d significant digits is at least base^(d-1) >= 2^(d-1). */
    if (ndigits > 0 && (ndigits - 1) / 64 >= max_limbs)
        return AMB_ESYSLIMIT;
    size_t cap = need < max_limbs ? need : max_limbs;
    if (cap == 0)
        cap = 1;
    uint64_t *limbs = amb__malloc(cap * sizeof *limbs);
    if (limbs == NULL)
        return AMB_ENOMEM;
    /* Digits in chunks of k, where base^k still fits a limb. */
    unsigned k = 0;
    uint64_t scale_max = 1;
    while (scale_max <= UINT64_MAX / base) {
        scale_max *= base;
        k++;
    }
    size_t n = 0;
    uint64_t chunk = 0, scale = 1;
    unsigned taken = 0;
    for (size_t i = pos; i < tok->end; i++) {
        if (text[i] == '_')
            continue;
        chunk = chunk * base + digit_value(text[i]);
        scale *= base;
        if (++taken == k) {
            if (!mul_add(limbs, &n, cap, scale, chunk))
                goto too_big;
            chunk = 0;
            scale = 1;
            taken = 0;
        }
    }
    if (taken > 0 && !mul_add(limbs, &n, cap, scale, chunk))
        goto too_big;
    *out = limbs;
    *out_n = n;
    return 0;
too_big:
    amb__free(limbs);
    return AMB_ESYSLIMIT;
}

void amb__scan_parts_of(const char *text, size_t len, const amb__tok *tok,
                        amb__scan_parts *f)
{
    amb__scan s;
    amb__scan_init(&s, text, len, false);
    size_t lt = tok->start;
    while (text[lt] != '<')
        lt++;
    s.pos = lt;
    int rc = form_body(&s, tok->kind, tok->start, f);
    AMB__CHECK(rc == 0);
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

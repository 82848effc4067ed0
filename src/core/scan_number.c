/*
 * scan_number.c - the numbers of Erlang term syntax, for the tokenizer
 * (scan.c): integers in base 10 or Base#Digits with 1_000 underscores,
 * floats, $c character literals, and the limbs of an integer beyond 64 bits.
 *
 * Invariants:
 *   - A number token is validated when it is scanned (digits, base, range);
 *     amb__scan_number_limbs re-reads only validated INT tokens.
 *   - Float text is converted by strtod_l in the "C" locale, whatever the
 *     program's LC_NUMERIC; it allocates only a copy of a literal longer
 *     than FLOAT_INLINE bytes.
 */
#include <locale.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"

#define FLOAT_INLINE 64

/* Digits of base at s->pos, with single underscores between digits (1_000);
 * returns how many digits (not underscores) were read, and accumulates the
 * magnitude into *mag, setting *big on overflow. */
static size_t scan_digits(amb__scan *s, unsigned base, uint64_t *mag, bool *big)
{
    const char *t = s->text;
    size_t pos = s->pos, count = 0;
    while (pos < s->len) {
        unsigned d = amb__scan_digit_value(t[pos]);
        if (d >= base) {
            /* An underscore counts only between two digits. */
            if (t[pos] == '_' && count > 0 && pos + 1 < s->len &&
                amb__scan_digit_value(t[pos + 1]) < base) {
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

int amb__scan_number_strtod(const char *text, double *out)
{
    locale_t loc = get_c_locale();
    if (loc == (locale_t)0)
        return AMB_ENOMEM;
    *out = strtod_l(text, NULL, loc);
    return 0;
}

/* Converts the float literal text[start, end) (underscores dropped). */
static int to_double(amb__scan *s, size_t start, size_t end, double *out)
{
    char inline_buf[FLOAT_INLINE];
    size_t n = end - start;
    char *buf = n < sizeof inline_buf ? inline_buf : amb__malloc(n + 1);
    int rc = AMB_ENOMEM;
    double d = 0;
    if (buf != NULL) {
        size_t k = 0;
        for (size_t i = start; i < end; i++)
            if (s->text[i] != '_')
                buf[k++] = s->text[i];
        buf[k] = '\0';
        rc = amb__scan_number_strtod(buf, &d);
    }
    if (buf != inline_buf)
        amb__free(buf);
    if (rc != 0) {
        s->err = rc;
        s->err_pos = start;
        s->err_msg = "out of memory";
        return rc;
    }
    /* Overflow is an error, as in Erlang; underflow quietly gives a denormal
     * or zero (Erlang reads 1.0e-400 as 0.0). */
    if (!(d <= 1.7976931348623157e308))
        return amb__scan_fail(s, start, "float out of range");
    *out = d;
    return 0;
}

/* A number at s->pos (a digit): decimal or Base#Digits integer, or float. */
int amb__scan_number_read(amb__scan *s, amb__tok *tok)
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
            return amb__scan_fail(s, start, "integer base must be 2..36");
        tok->base = (uint8_t)mag;
        s->pos++;
        tok->digits = s->pos;
        mag = 0;
        if (scan_digits(s, tok->base, &mag, &big) == 0)
            return amb__scan_fail(s, start, "missing digits after base#");
    } else if (s->pos + 1 < s->len && t[s->pos] == '.' &&
               amb__scan_is_digit(t[s->pos + 1])) {
        s->pos++;
        uint64_t ignored = 0;
        bool ignored_big = false;
        scan_digits(s, 10, &ignored, &ignored_big);
        if (s->pos < s->len && (t[s->pos] == 'e' || t[s->pos] == 'E')) {
            s->pos++;
            if (s->pos < s->len && (t[s->pos] == '+' || t[s->pos] == '-'))
                s->pos++;
            if (scan_digits(s, 10, &ignored, &ignored_big) == 0)
                return amb__scan_fail(s, start, "float exponent needs digits");
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
int amb__scan_number_char(amb__scan *s, amb__tok *tok)
{
    size_t start = s->pos, pos = start + 1;
    uint32_t cp;
    if (pos >= s->len)
        return amb__scan_fail(s, start, "$ needs a character");
    if (s->text[pos] == '\\') {
        int rc = amb__scan_escape(s, &pos, &cp);
        if (rc < 0)
            return rc;
    } else {
        size_t n = amb__scan_peek_cp(s->text, s->len, pos, &cp);
        if (n == 0)
            return amb__scan_fail(s, pos, "invalid UTF-8");
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

int amb__scan_number_limbs(const char *text, const amb__tok *tok, size_t max_limbs,
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
        chunk = chunk * base + amb__scan_digit_value(text[i]);
        scale *= base;
        if (++taken == k) {
            if (!amb__bignum_mul_add(limbs, &n, cap, scale, chunk))
                goto too_big;
            chunk = 0;
            scale = 1;
            taken = 0;
        }
    }
    if (taken > 0 && !amb__bignum_mul_add(limbs, &n, cap, scale, chunk))
        goto too_big;
    *out = limbs;
    *out_n = n;
    return 0;
too_big:
    amb__free(limbs);
    return AMB_ESYSLIMIT;
}

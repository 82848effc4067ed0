/*
 * bignum.c - the arbitrary-precision integers Erlang terms carry: building
 * them canonically, comparing them with each other and with floats, and
 * converting to and from decimal text.
 *
 * Only what terms need is here (no arithmetic): magnitudes are arrays of
 * uint64 limbs, least significant first, of at most AMB_BIG_MAX_BYTES bytes.
 * That bound keeps the quadratic decimal conversions well under a second.
 *
 * Invariant: amb__big_make is the only way a BIG box is made, so every
 * integer term is canonical (small when it fits, no high zero limbs).
 */
#include <math.h>

#include "term_internal.h"

#define MAX_LIMBS        (AMB_BIG_MAX_BYTES / 8)
#define DEC_CHUNK        10000000000000000000ull /* 10^19, the largest power of 10 in a limb */
#define DEC_CHUNK_DIGITS 19

amb_term amb__big_make(amb_heap *heap, bool negative, const uint64_t *limbs, size_t n)
{
    while (n > 0 && limbs[n - 1] == 0)
        n--;
    if (n == 0)
        return AMB_SMALL(0);
    if (n == 1) {
        uint64_t m = limbs[0];
        if (!negative && m <= (uint64_t)AMB_SMALL_MAX)
            return AMB_SMALL((int64_t)m);
        if (negative && m <= (uint64_t)AMB_SMALL_MAX + 1)
            return AMB_SMALL(-(int64_t)(m - 1) - 1);
    }
    if (heap == NULL || n > MAX_LIMBS)
        return AMB_NONE;
    uint64_t *p = amb__heap_alloc(heap, 1 + n);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_BIG, ((uint64_t)n << 1) | (negative ? 1u : 0u));
    memcpy(&p[1], limbs, n * sizeof(uint64_t));
    return amb__make_box(p);
}

int amb_int_from_bytes(amb_heap *heap, bool negative, const uint8_t *mag, size_t len,
                       amb_term *out)
{
    if (out == NULL || (mag == NULL && len > 0))
        return AMB__MISUSE();
    while (len > 0 && mag[len - 1] == 0)
        len--;
    if (len > AMB_BIG_MAX_BYTES)
        return AMB_ESYSLIMIT;
    size_t n = (len + 7) / 8;
    uint64_t small[2];
    uint64_t *limbs = n <= 2 ? small : amb__malloc(n * sizeof *limbs);
    if (limbs == NULL)
        return AMB_ENOMEM;
    memset(limbs, 0, n * sizeof *limbs);
    for (size_t i = 0; i < len; i++)
        limbs[i / 8] |= (uint64_t)mag[i] << (8 * (i % 8));
    amb_term t = amb__big_make(heap, negative, limbs, n);
    if (limbs != small)
        amb__free(limbs);
    if (t == AMB_NONE)
        return heap == NULL ? AMB_EBADARG : AMB_ENOMEM;
    *out = t;
    return 0;
}

/* limbs[0..*n) = limbs * mul + add, growing *n by at most one limb. */
static void mul_add(uint64_t *limbs, size_t *n, uint64_t mul, uint64_t add)
{
    unsigned __int128 carry = add;
    for (size_t i = 0; i < *n; i++) {
        carry += (unsigned __int128)limbs[i] * mul;
        limbs[i] = (uint64_t)carry;
        carry >>= 64;
    }
    if (carry != 0)
        limbs[(*n)++] = (uint64_t)carry;
}

/* limbs[0..*n) /= div; returns the remainder and drops high zero limbs. */
static uint64_t div_small(uint64_t *limbs, size_t *n, uint64_t div)
{
    unsigned __int128 rem = 0;
    for (size_t i = *n; i-- > 0;) {
        rem = (rem << 64) | limbs[i];
        limbs[i] = (uint64_t)(rem / div);
        rem %= div;
    }
    while (*n > 0 && limbs[*n - 1] == 0)
        (*n)--;
    return (uint64_t)rem;
}

int amb_int_from_string(amb_heap *heap, const char *s, size_t len, amb_term *out)
{
    if (out == NULL || (s == NULL && len > 0))
        return AMB__MISUSE();
    size_t i = 0;
    bool negative = false;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        negative = s[i++] == '-';
    if (i == len)
        return AMB_ESYNTAX;
    for (size_t j = i; j < len; j++)
        if (s[j] < '0' || s[j] > '9')
            return AMB_ESYNTAX;
    while (i + 1 < len && s[i] == '0')
        i++;
    size_t digits = len - i;
    /* 8 * AMB_BIG_MAX_BYTES bits hold at most this many decimal digits. */
    if (digits > (size_t)((double)AMB_BIG_MAX_BYTES * 8 * 0.30103) + 1)
        return AMB_ESYSLIMIT;
    size_t cap = digits / DEC_CHUNK_DIGITS + 2;
    uint64_t small[4];
    uint64_t *limbs = cap <= 4 ? small : amb__malloc(cap * sizeof *limbs);
    if (limbs == NULL)
        return AMB_ENOMEM;
    size_t n = 0;
    size_t first =
        digits % DEC_CHUNK_DIGITS ? digits % DEC_CHUNK_DIGITS : DEC_CHUNK_DIGITS;
    for (size_t pos = i, take = first; pos < len; pos += take, take = DEC_CHUNK_DIGITS) {
        uint64_t chunk = 0, scale = 1;
        for (size_t k = 0; k < take; k++) {
            chunk = chunk * 10 + (uint64_t)(s[pos + k] - '0');
            scale *= 10;
        }
        mul_add(limbs, &n, scale, chunk);
    }
    int rc = 0;
    if (n > MAX_LIMBS) {
        rc = AMB_ESYSLIMIT;
    } else {
        amb_term t = amb__big_make(heap, negative, limbs, n);
        if (t == AMB_NONE)
            rc = heap == NULL ? AMB_EBADARG : AMB_ENOMEM;
        else
            *out = t;
    }
    if (limbs != small)
        amb__free(limbs);
    return rc;
}

/* Sign and limbs of any integer; small values go through *scratch. */
static bool int_limbs(amb_term t, const uint64_t **limbs, size_t *n, uint64_t *scratch)
{
    if (amb_is_small(t)) {
        int64_t v = amb_small_value(t);
        *scratch = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        *limbs = scratch;
        *n = *scratch != 0;
        return v < 0;
    }
    *limbs = amb__big_digits(t);
    *n = amb__big_ndigits(t);
    return amb__big_negative(t);
}

static int mag_compare(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    if (na != nb)
        return na < nb ? -1 : 1;
    for (size_t i = na; i-- > 0;)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

int amb__int_compare(amb_term a, amb_term b)
{
    if (amb_is_small(a) && amb_is_small(b)) {
        int64_t x = amb_small_value(a), y = amb_small_value(b);
        return (x > y) - (x < y);
    }
    uint64_t sa, sb;
    const uint64_t *la, *lb;
    size_t na, nb;
    bool nega = int_limbs(a, &la, &na, &sa), negb = int_limbs(b, &lb, &nb, &sb);
    if (nega != negb)
        return nega ? -1 : 1;
    int c = mag_compare(la, na, lb, nb);
    return nega ? -c : c;
}

int amb__int_compare_double(amb_term a, double d)
{
    uint64_t scratch;
    const uint64_t *limbs;
    size_t n;
    bool neg = int_limbs(a, &limbs, &n, &scratch);
    bool dneg = d < 0;
    if (n == 0 || d == 0) {
        /* One side is zero: the signs decide. */
        int si = n == 0 ? 0 : (neg ? -1 : 1);
        int sd = d == 0 ? 0 : (dneg ? -1 : 1);
        return (si > sd) - (si < sd);
    }
    if (neg != dneg)
        return neg ? -1 : 1;
    /* Same sign, both non-zero: compare magnitudes |a| and |d|. */
    double ad = fabs(d);
    double fl = floor(ad);
    int c;
    if (fl < 18446744073709551616.0 && n == 1) {
        uint64_t di = (uint64_t)fl;
        if (limbs[0] != di)
            c = limbs[0] < di ? -1 : 1;
        else
            c = ad > fl ? -1 : 0;
    } else if (fl < 18446744073709551616.0) {
        c = 1; /* n >= 2 limbs: |a| >= 2^64 > |d| */
    } else {
        /* |d| >= 2^64 is an integer: write it as limbs and compare exactly. */
        int e;
        double m = frexp(ad, &e); /* ad = m * 2^e, 0.5 <= m < 1 */
        uint64_t mant = (uint64_t)ldexp(m, 53);
        int shift = e - 53; /* >= 11 here */
        uint64_t dl[18] = {0};
        size_t word = (size_t)shift / 64, bit = (size_t)shift % 64;
        dl[word] = mant << bit;
        if (bit != 0)
            dl[word + 1] = mant >> (64 - bit);
        size_t dn = word + 2;
        while (dn > 0 && dl[dn - 1] == 0)
            dn--;
        c = mag_compare(limbs, n, dl, dn);
    }
    return neg ? -c : c;
}

double amb__int_to_double(amb_term t)
{
    uint64_t scratch;
    const uint64_t *limbs;
    size_t n;
    bool neg = int_limbs(t, &limbs, &n, &scratch);
    if (amb_is_small(t))
        return (double)amb_small_value(t);
    /* The top three limbs hold far more than 53 significant bits; the rest
     * can only affect the last bit's rounding. */
    long double v = 0;
    size_t from = n > 3 ? n - 3 : 0;
    for (size_t i = n; i-- > from;)
        v = v * 18446744073709551616.0L + (long double)limbs[i];
    double d = (double)ldexpl(v, (int)(64 * from));
    return neg ? -d : d;
}

int amb__int_to_decimal(amb_term t, char **out, size_t *len)
{
    uint64_t scratch;
    const uint64_t *limbs;
    size_t n;
    bool neg = int_limbs(t, &limbs, &n, &scratch);
    /* Each limb is at most 20 digits (19.3). */
    size_t cap = n * 20 + 3;
    char *text = amb__malloc(cap);
    uint64_t *work = amb__malloc((n ? n : 1) * sizeof *work);
    if (text == NULL || work == NULL) {
        amb__free(text);
        amb__free(work);
        return AMB_ENOMEM;
    }
    memcpy(work, limbs, n * sizeof *work);
    size_t pos = cap; /* digits are written backwards from the end */
    text[--pos] = '\0';
    if (n == 0)
        text[--pos] = '0';
    while (n > 0) {
        uint64_t chunk = div_small(work, &n, DEC_CHUNK);
        for (int k = 0; k < DEC_CHUNK_DIGITS && (n > 0 || chunk != 0); k++) {
            text[--pos] = (char)('0' + chunk % 10);
            chunk /= 10;
        }
    }
    if (neg)
        text[--pos] = '-';
    size_t l = cap - 1 - pos;
    memmove(text, text + pos, l + 1);
    amb__free(work);
    *out = text;
    *len = l;
    return 0;
}

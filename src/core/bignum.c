/*
 * bignum.c - the arbitrary-precision integers Erlang terms carry: building
 * them canonically, comparing them with each other and with floats,
 * converting to and from decimal text, and the few limb operations those
 * need, which the float printer (print_float.c) and the integer scanner
 * (scan_number.c) use too, so the library has one multi-precision
 * arithmetic.
 *
 * Magnitudes are arrays of uint64 limbs, least significant first. Terms hold
 * at most AMB_BIG_MAX_BYTES bytes of them; that bound keeps the quadratic
 * decimal conversions well under a second. The limb operations work on
 * arrays the caller owns and sizes (no allocation), and say when a result
 * would not fit.
 *
 * Invariant: amb__bignum_make is the only way a BIG box is made, so every
 * integer term is canonical (small when it fits, no high zero limbs).
 */
#include <math.h>

#include "term_internal.h"

#define MAX_LIMBS        (AMB_BIG_MAX_BYTES / 8)
#define DEC_CHUNK        10000000000000000000ull /* 10^19, the largest power of 10 in a limb */
#define DEC_CHUNK_DIGITS 19

/* ---------------------------------------------------------------------------
 * Limb arithmetic on magnitudes the caller owns
 * ------------------------------------------------------------------------ */

bool amb__bignum_mul_add(uint64_t *limbs, size_t *n, size_t cap, uint64_t mul,
                         uint64_t add)
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

uint64_t amb__bignum_div_small(uint64_t *limbs, size_t *n, uint64_t div)
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

bool amb__bignum_shl(uint64_t *limbs, size_t *n, size_t cap, unsigned bits)
{
    if (*n == 0)
        return true;
    size_t words = bits / 64;
    unsigned rest = bits % 64;
    uint64_t top = rest ? limbs[*n - 1] >> (64 - rest) : 0;
    if (*n + words + (top != 0) > cap)
        return false;
    for (size_t i = *n; i-- > 0;) {
        uint64_t lo = (rest && i > 0) ? limbs[i - 1] >> (64 - rest) : 0;
        limbs[i + words] = (rest ? limbs[i] << rest : limbs[i]) | lo;
    }
    memset(limbs, 0, words * sizeof *limbs);
    *n += words;
    if (top != 0)
        limbs[(*n)++] = top;
    return true;
}

int amb__bignum_cmp(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    if (na != nb)
        return na < nb ? -1 : 1;
    for (size_t i = na; i-- > 0;)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

bool amb__bignum_add(uint64_t *out, size_t *nout, size_t cap, const uint64_t *a,
                     size_t na, const uint64_t *b, size_t nb)
{
    size_t n = na > nb ? na : nb;
    unsigned carry = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = i < na ? a[i] : 0, y = i < nb ? b[i] : 0;
        uint64_t sum = x + y;
        unsigned c1 = sum < x;
        uint64_t sum2 = sum + carry;
        carry = c1 | (sum2 < sum);
        out[i] = sum2;
    }
    if (carry != 0) {
        if (n == cap)
            return false;
        out[n++] = 1;
    }
    *nout = n;
    return true;
}

void amb__bignum_sub_mul(uint64_t *a, size_t *na, const uint64_t *b, size_t nb,
                         uint64_t q)
{
    uint64_t carry = 0, borrow = 0;
    for (size_t i = 0; i < *na; i++) {
        unsigned __int128 p = (i < nb ? (unsigned __int128)b[i] * q : 0) + carry;
        carry = (uint64_t)(p >> 64);
        uint64_t sub = (uint64_t)p, x = a[i];
        uint64_t d = x - sub;
        uint64_t b1 = x < sub;
        a[i] = d - borrow;
        borrow = b1 | (d < borrow);
    }
    while (*na > 0 && a[*na - 1] == 0)
        (*na)--;
}

/* ---------------------------------------------------------------------------
 * Integer terms
 * ------------------------------------------------------------------------ */

amb_term amb__bignum_make(amb_heap *heap, bool negative, const uint64_t *limbs, size_t n)
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
    amb_term t = amb__bignum_make(heap, negative, limbs, n);
    if (limbs != small)
        amb__free(limbs);
    if (t == AMB_NONE)
        return heap == NULL ? AMB_EBADARG : AMB_ENOMEM;
    *out = t;
    return 0;
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
        AMB__CHECK(amb__bignum_mul_add(limbs, &n, cap, scale, chunk));
    }
    int rc = 0;
    if (n > MAX_LIMBS) {
        rc = AMB_ESYSLIMIT;
    } else {
        amb_term t = amb__bignum_make(heap, negative, limbs, n);
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

int amb__bignum_compare(amb_term a, amb_term b)
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
    int c = amb__bignum_cmp(la, na, lb, nb);
    return nega ? -c : c;
}

int amb__bignum_compare_double(amb_term a, double d)
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
        c = amb__bignum_cmp(limbs, n, dl, dn);
    }
    return neg ? -c : c;
}

double amb__bignum_to_double(amb_term t)
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

int amb__bignum_to_decimal(amb_term t, char **out, size_t *len)
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
        uint64_t chunk = amb__bignum_div_small(work, &n, DEC_CHUNK);
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

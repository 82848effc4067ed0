/*
 * print_float.c - floats as Erlang prints them: the shortest decimal that
 * reads back to the same double (exact big-number arithmetic, no libc
 * formatting), laid out with OTP's rule for choosing 1.0e3 or 100.0.
 *
 * The digits come from the free-format algorithm of Steele & White as
 * refined by Burger & Dybvig ("Printing Floating-Point Numbers Quickly and
 * Accurately", 1996), done with exact integers: v = r/s, and the half-gaps
 * to the neighbouring doubles are m-/s and m+/s. Digits are generated until
 * the prefix lies inside the rounding interval; the last digit is the one
 * nearer to v (ties to even). Bounds are inclusive when the mantissa is
 * even, because round-to-nearest-even reading maps those boundaries back to
 * v. This is the same result Ryu (which OTP uses) gives: the shortest digit
 * string in the interval and, among those, the nearest to v.
 *
 * Invariants:
 *   - The multi-precision numbers are fixed arrays on the C stack, operated
 *     on by bignum.c's limb arithmetic (one arithmetic in the library); every
 *     operation checks the room it needs, and the bound below is never
 *     reached by a finite double.
 *   - No allocation and no libm: formatting a float cannot fail.
 */
#include <string.h>

#include "term_internal.h"

/* 2^1131 bounds every number the algorithm makes (subnormals scaled by
 * 10^324 and 2^1075), 2^1198 with digits_big's normalising shift (at most
 * 63 bits) and the factor 10 of a step; 20 limbs of 64 bits (2^1280) leave
 * room to spare, and every operation checks its limb count anyway. */
#define FBIG_LIMBS 20

typedef struct fbig {
    size_t n; /* used limbs; the top one is non-zero (0 for zero) */
    uint64_t d[FBIG_LIMBS];
} fbig;

static void fbig_set(fbig *a, uint64_t v)
{
    a->n = v != 0;
    a->d[0] = v;
}

static void fbig_mul_small(fbig *a, uint64_t m)
{
    bool fits = amb__bignum_mul_add(a->d, &a->n, FBIG_LIMBS, m, 0);
    AMB__CHECK(fits);
}

static void fbig_mul_pow10(fbig *a, unsigned k)
{
    uint64_t p = 1;
    for (; k > 0; k--) {
        if (p > UINT64_MAX / 10) {
            fbig_mul_small(a, p);
            p = 1;
        }
        p *= 10;
    }
    if (p > 1)
        fbig_mul_small(a, p);
}

static void fbig_shl(fbig *a, unsigned bits)
{
    bool fits = amb__bignum_shl(a->d, &a->n, FBIG_LIMBS, bits);
    AMB__CHECK(fits);
}

static int fbig_cmp(const fbig *a, const fbig *b)
{
    return amb__bignum_cmp(a->d, a->n, b->d, b->n);
}

static void fbig_add(fbig *out, const fbig *a, const fbig *b)
{
    bool fits = amb__bignum_add(out->d, &out->n, FBIG_LIMBS, a->d, a->n, b->d, b->n);
    AMB__CHECK(fits);
}

/* a -= q * b; requires a >= q * b. */
static void fbig_sub_mul(fbig *a, const fbig *b, uint64_t q)
{
    amb__bignum_sub_mul(a->d, &a->n, b->d, b->n, q);
}

/* The digit loop. Each step multiplies the remainder r and both half-gaps
 * by 10 and takes the next digit d = r / s; it stops as soon as the digits
 * so far, ending in d or d + 1, lie within the half-gaps of v, choosing the
 * one nearer to v (ties to even). A digit never reaches 10: the previous
 * step did not stop, so r + m+ < s held before the multiplication. */
static int last_digit(unsigned d, bool low_ok, bool high_ok, int twice_r_vs_s)
{
    if (low_ok && high_ok) {
        if (twice_r_vs_s > 0 || (twice_r_vs_s == 0 && (d & 1) != 0))
            d++;
    } else if (high_ok) {
        d++;
    }
    return (int)d;
}

/* mminus is NULL when the half-gaps are equal (all but powers of two), which
 * saves a third of the work. */
static int digits_big(fbig *r, fbig *s, fbig *mplus, fbig *mminus, bool inclusive,
                      uint8_t digits[20])
{
    /* Scale everything so that the top limb of s has its high bit set: then
     * the top limbs give each digit to within two from below, and at most
     * two subtractions correct it (Knuth's algorithm D, one digit at a
     * time). */
    unsigned sh = (unsigned)__builtin_clzll(s->d[s->n - 1]);
    fbig_shl(r, sh);
    fbig_shl(s, sh);
    fbig_shl(mplus, sh);
    if (mminus != NULL)
        fbig_shl(mminus, sh);
    const fbig *mlow = mminus != NULL ? mminus : mplus;
    unsigned __int128 top = (unsigned __int128)s->d[s->n - 1] + 1;

    int n = 0;
    for (;;) {
        fbig_mul_small(r, 10);
        fbig_mul_small(mplus, 10);
        if (mminus != NULL)
            fbig_mul_small(mminus, 10);
        unsigned d = 0;
        if (r->n >= s->n) {
            /* r < 10s, so r has at most one limb more than s, and the
             * estimate never exceeds the true digit. */
            unsigned __int128 rtop = r->d[s->n - 1];
            if (r->n > s->n)
                rtop |= (unsigned __int128)r->d[s->n] << 64;
            d = (unsigned)(rtop / top);
            if (d > 0)
                fbig_sub_mul(r, s, d);
        }
        while (fbig_cmp(r, s) >= 0) {
            fbig_sub_mul(r, s, 1);
            d++;
        }
        fbig high;
        fbig_add(&high, r, mplus);
        int lo = fbig_cmp(r, mlow);
        int hi = fbig_cmp(&high, s);
        bool low_ok = lo < 0 || (lo == 0 && inclusive);
        bool high_ok = hi > 0 || (hi == 0 && inclusive);
        AMB__CHECK(d <= 9 && n < 20);
        if (!low_ok && !high_ok) {
            digits[n++] = (uint8_t)d;
            continue;
        }
        int half = 0;
        if (low_ok && high_ok) {
            fbig twice = *r;
            fbig_mul_small(&twice, 2);
            half = fbig_cmp(&twice, s);
        }
        d = (unsigned)last_digit(d, low_ok, high_ok, half);
        AMB__CHECK(d <= 9);
        digits[n++] = (uint8_t)d;
        return n;
    }
}

/* The same loop in machine words, valid when s < 2^59: r < s and, since
 * the previous step did not stop, m- <= m+ <= s before each step, so 10s
 * and r + 10m+ stay below 2^64. */
static int digits_u64(uint64_t r, uint64_t s, uint64_t mplus, uint64_t mminus,
                      bool inclusive, uint8_t digits[20])
{
    int n = 0;
    for (;;) {
        r *= 10;
        mplus *= 10;
        mminus *= 10;
        unsigned d = (unsigned)(r / s);
        r %= s;
        bool low_ok = r < mminus || (r == mminus && inclusive);
        bool high_ok = r + mplus > s || (r + mplus == s && inclusive);
        AMB__CHECK(d <= 9 && n < 20);
        if (!low_ok && !high_ok) {
            digits[n++] = (uint8_t)d;
            continue;
        }
        int half = 2 * r > s ? 1 : 2 * r == s ? 0 : -1;
        d = (unsigned)last_digit(d, low_ok, high_ok, half);
        AMB__CHECK(d <= 9);
        digits[n++] = (uint8_t)d;
        return n;
    }
}

static bool fbig_to_u64(const fbig *a, uint64_t *v)
{
    if (a->n > 1)
        return false;
    *v = a->n == 0 ? 0 : a->d[0];
    return true;
}

/* The shortest digits of finite v > 0 into digits[] (as values 0..9, no
 * trailing zeros); returns their count n, and *point such that
 * v ~ 0.d1 d2 ... dn * 10^point. */
static int shortest_digits(double v, uint8_t digits[20], int *point)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint64_t frac = bits & (((uint64_t)1 << 52) - 1);
    int bexp = (int)((bits >> 52) & 0x7ff);
    uint64_t f = bexp == 0 ? frac : frac | ((uint64_t)1 << 52);
    int e = (bexp == 0 ? 1 : bexp) - 1075; /* v = f * 2^e */
    bool inclusive = (f & 1) == 0;
    /* At a power of two the double below is nearer than the one above, so
     * the lower half-gap is half the upper one. The smallest normal is not
     * such a case: the subnormals below it have the same spacing. */
    bool unequal = frac == 0 && bexp > 1;

    fbig r, s, mplus, mminus;
    fbig_set(&r, f);
    fbig_set(&mminus, 1);
    if (e >= 0) {
        fbig_shl(&r, (unsigned)e + (unequal ? 2 : 1));
        fbig_set(&s, unequal ? 4 : 2);
        fbig_shl(&mminus, (unsigned)e);
    } else {
        fbig_shl(&r, unequal ? 2 : 1);
        fbig_set(&s, 1);
        fbig_shl(&s, (unsigned)(-e) + (unequal ? 2 : 1));
    }
    mplus = mminus;
    if (unequal)
        fbig_shl(&mplus, 1);

    /* k starts at or one below the least k with v + m+ < 10^k: log10(v) lies
     * in [L, L + log10(2)) with L = (e + bitlength(f) - 1) * log10(2), so
     * ceil(L) is such a start. 78913 / 2^18 is log10(2) closely enough that
     * (j * 78913) >> 18 == floor(j * log10(2)) for 0 <= j <= 1650 (Ryu's
     * log10Pow2), and L is never an integer except at 0. Integer arithmetic
     * keeps the library free of libm. */
    int bitlen = 64 - __builtin_clzll(f);
    int j = e + bitlen - 1;
    int k = j > 0 ? (int)(((uint32_t)j * 78913u) >> 18) + 1
                  : -(int)(((uint32_t)-j * 78913u) >> 18);
    if (k >= 0) {
        fbig_mul_pow10(&s, (unsigned)k);
    } else {
        fbig_mul_pow10(&r, (unsigned)-k);
        fbig_mul_pow10(&mplus, (unsigned)-k);
        if (unequal)
            fbig_mul_pow10(&mminus, (unsigned)-k);
    }
    fbig high;
    for (;;) {
        fbig_add(&high, &r, &mplus);
        int c = fbig_cmp(&high, &s);
        if (c < 0 || (c == 0 && !inclusive))
            break;
        fbig_mul_small(&s, 10);
        k++;
    }

    /* From about 0.05 to 1e17 everything fits a machine word from here on
     * (see digits_u64); elsewhere the digits come from the big numbers. */
    uint64_t rw, sw, pw, mw;
    int n;
    if (fbig_to_u64(&s, &sw) && sw < ((uint64_t)1 << 59) && fbig_to_u64(&r, &rw) &&
        fbig_to_u64(&mplus, &pw) && fbig_to_u64(unequal ? &mminus : &mplus, &mw)) {
        n = digits_u64(rw, sw, pw, mw, inclusive, digits);
    } else {
        n = digits_big(&r, &s, &mplus, unequal ? &mminus : NULL, inclusive, digits);
    }
    while (n > 1 && digits[n - 1] == 0)
        n--;
    *point = k;
    return n;
}

static size_t decimal_length(unsigned v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Formats v as OTP 25's float_to_list(V, [short]) does into out (at least
 * AMB__PRINT_FLOAT_MAX bytes); returns the length. Of the two layouts, 12300.0
 * and 1.23e4, OTP picks the shorter one, the plain one on a tie, and always the
 * scientific one from 2^53 up, where plain digits would suggest integer
 * precision a double does not have. */
size_t amb__print_float_format(double v, char *out)
{
    size_t pos = 0;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (bits >> 63)
        out[pos++] = '-';
    bits &= ~((uint64_t)1 << 63);
    memcpy(&v, &bits, sizeof v); /* |v| */
    if (v == 0) {
        memcpy(out + pos, "0.0", 3);
        return pos + 3;
    }
    uint8_t dg[20];
    int point;
    int n = shortest_digits(v, dg, &point);
    int exp10 = point - 1; /* v = d1.d2...dn * 10^exp10 */

    size_t plain_len;
    if (point >= n)
        plain_len = (size_t)point + 2; /* digits, zeros, ".0" */
    else if (point > 0)
        plain_len = (size_t)n + 1; /* a dot among the digits */
    else
        plain_len = (size_t)(2 - point + n); /* "0.", zeros, digits */
    size_t sci_len = (size_t)n + 1 + (n == 1) + 1 + (exp10 < 0) +
                     decimal_length((unsigned)(exp10 < 0 ? -exp10 : exp10));
    bool plain = plain_len <= sci_len && v < 9007199254740992.0;

    if (plain) {
        if (point >= n) {
            for (int i = 0; i < n; i++)
                out[pos++] = (char)('0' + dg[i]);
            for (int i = n; i < point; i++)
                out[pos++] = '0';
            out[pos++] = '.';
            out[pos++] = '0';
        } else if (point > 0) {
            for (int i = 0; i < n; i++) {
                if (i == point)
                    out[pos++] = '.';
                out[pos++] = (char)('0' + dg[i]);
            }
        } else {
            out[pos++] = '0';
            out[pos++] = '.';
            for (int i = point; i < 0; i++)
                out[pos++] = '0';
            for (int i = 0; i < n; i++)
                out[pos++] = (char)('0' + dg[i]);
        }
        return pos;
    }
    out[pos++] = (char)('0' + dg[0]);
    out[pos++] = '.';
    if (n == 1)
        out[pos++] = '0';
    for (int i = 1; i < n; i++)
        out[pos++] = (char)('0' + dg[i]);
    out[pos++] = 'e';
    if (exp10 < 0)
        out[pos++] = '-';
    unsigned x = (unsigned)(exp10 < 0 ? -exp10 : exp10);
    size_t w = decimal_length(x);
    for (size_t i = w; i-- > 0; x /= 10)
        out[pos + i] = (char)('0' + x % 10);
    return pos + w;
}

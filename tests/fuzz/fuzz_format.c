/*
 * fuzz_format.c - amb_match and amb_pack with arbitrary format strings.
 *
 * Input: FORMAT, a NUL byte, then the text of a term (parsed with
 * amb_parse; without a NUL, or when the text does not parse, a fixed term is
 * used). A random format could name any directive, and varargs cannot be
 * checked, so the harness makes every argument it passes safe for every
 * directive it lets through:
 *   - amb_match: formats that mention ~s, ~S, ~v or ~r anywhere (the four
 *     that take a non-pointer: a size or a term) are skipped. Every other
 *     directive stores through pointers, and each of the 2 * 64 + 2
 *     arguments points at its own zeroed, aligned scratch slot large enough
 *     for any of them (~b takes two).
 *   - amb_pack: only formats whose directives are all ~w ~t ~v ~p ~r, which
 *     all take an amb_term; each argument is a valid term.
 * Properties checked: the documented error codes only; a format error has
 * its position inside the format and a NUL-terminated text, and the same
 * format gives the same error against a different term (errors do not
 * depend on the term); a packed term prints and parses back equal.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ambitious.h"

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef union slot {
    amb_term t;
    const char *s;
    const uint8_t *p;
    int64_t i;
    uint64_t u;
    double d;
    size_t n;
    char bytes[16];
} slot;

#define NSLOTS (2 * AMB_FORMAT_MAX_DIRECTIVES + 2)

/* A..P expand a list of 130 arguments built from one expression. */
#define ARG10(f, b)                                                                 \
    f(b + 0), f(b + 1), f(b + 2), f(b + 3), f(b + 4), f(b + 5), f(b + 6), f(b + 7), \
        f(b + 8), f(b + 9)
#define ARGS130(f)                                                                     \
    ARG10(f, 0), ARG10(f, 10), ARG10(f, 20), ARG10(f, 30), ARG10(f, 40), ARG10(f, 50), \
        ARG10(f, 60), ARG10(f, 70), ARG10(f, 80), ARG10(f, 90), ARG10(f, 100),         \
        ARG10(f, 110), ARG10(f, 120)
#define ARG64_10(v) v, v, v, v, v, v, v, v, v, v
#define ARGS64(v)                                                                       \
    ARG64_10(v), ARG64_10(v), ARG64_10(v), ARG64_10(v), ARG64_10(v), ARG64_10(v), v, v, \
        v, v

static slot slots[NSLOTS];
#define SLOT(i) (void *)&slots[i]

/* True when some '~' in fmt is followed by a character in bad, or (for
 * only != NULL) by a character not in only. */
static bool mentions(const char *fmt, const char *bad, const char *only)
{
    for (const char *p = strchr(fmt, '~'); p != NULL; p = strchr(p + 1, '~')) {
        if (p[1] == '\0')
            continue;
        if (bad != NULL && strchr(bad, p[1]) != NULL)
            return true;
        if (only != NULL && strchr(only, p[1]) == NULL)
            return true;
    }
    return false;
}

static int match(amb_term t, amb_format_error *err, const char *fmt)
{
    memset(slots, 0, sizeof slots);
    return amb_match_ex(t, err, fmt, ARGS130(SLOT));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t flen = nul != NULL ? (size_t)(nul - data) : size;
    char *fmt = malloc(flen + 1);
    amb_heap *h;
    if (fmt == NULL)
        return 0;
    if (amb_heap_new(&h) != 0) {
        free(fmt);
        return 0;
    }
    memcpy(fmt, data, flen);
    fmt[flen] = '\0';
    amb_term t = AMB_NONE;
    if (nul == NULL ||
        amb_parse(h, (const char *)nul + 1, size - flen - 1, &t, NULL) != 0) {
        const char *dflt = "{ok, [1, 2.5, \"s\" | x], #{a => <<1,2>>, {k} => [y]}, "
                           "#Pid<'n@h'.1.2.3>, 123456789012345678901234567890}";
        if (amb_parse(h, dflt, strlen(dflt), &t, NULL) != 0)
            abort();
    }

    if (!mentions(fmt, "sSvr", NULL)) {
        amb_format_error err, err2;
        memset(&err, 0xff, sizeof err);
        int rc = match(t, &err, fmt);
        CHECK(rc == 0 || rc == AMB_ENOMATCH || rc == AMB_EFORMAT || rc == AMB_ENOMEM ||
              rc == AMB_EBUFSIZE);
        if (rc == AMB_EFORMAT) {
            CHECK(err.position <= flen);
            CHECK(memchr(err.text, '\0', sizeof err.text) != NULL);
            /* The same error against a term that matches nothing of it. */
            memset(&err2, 0, sizeof err2);
            CHECK(match(amb_float(h, 0.125), &err2, fmt) == AMB_EFORMAT);
            CHECK(err2.position == err.position && strcmp(err.text, err2.text) == 0);
        }
    }

    if (!mentions(fmt, NULL, "wtvpr")) {
        amb_term out = AMB_NONE;
        amb_format_error err;
        int rc = amb_pack_ex(h, &out, &err, fmt, ARGS64(t));
        CHECK(rc == 0 || rc == AMB_EFORMAT || rc == AMB_EBADARG || rc == AMB_ESYSLIMIT ||
              rc == AMB_ENOMEM);
        if (rc == 0) {
            char *text = NULL;
            size_t len;
            if (amb_print_alloc(out, &text, &len) == 0) {
                amb_term back = AMB_NONE;
                CHECK(amb_parse(h, text, len, &back, NULL) == 0);
                CHECK(amb_equal(back, out));
                amb_free(text);
            }
        } else if (rc == AMB_EFORMAT) {
            CHECK(err.position <= flen);
        }
    }
    amb_heap_free(h);
    free(fmt);
    return 0;
}

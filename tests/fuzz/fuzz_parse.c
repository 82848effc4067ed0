/*
 * fuzz_parse.c - amb_parse on arbitrary bytes. The input is the text; each
 * run uses a fresh heap and frees it, so leaks and stale pointers show.
 *
 * Beyond "never crashes, hangs or leaks", it checks properties that hold
 * for every input:
 *   - a failure is one of the documented codes, with err_pos inside the text;
 *   - a success round-trips: amb_print's text parses back to an equal term
 *     that prints the same, and the term matches that text used as an
 *     amb_match pattern and equals it used as an amb_pack format (neither
 *     contains a directive, so no argument is ever read);
 *   - the pretty printer (AMB_PRINT_PRETTY) writes valid UTF-8 without NUL
 *     bytes, the same text into a buffer, a new string and a stream, and a
 *     buffer too small holds a prefix of it cut at a character boundary.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ambitious.h"

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80         ? 1
                   : (c >> 5) == 6  ? 2
                   : (c >> 4) == 14 ? 3
                   : (c >> 3) == 30 ? 4
                                    : 0;
        if (k == 0 || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] & 0xc0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

static void check_pretty(amb_term t)
{
    char *text = NULL;
    size_t len = 0;
    if (amb_print_alloc_ex(t, AMB_PRINT_PRETTY, &text, &len) != 0)
        return;
    CHECK(valid_utf8(text, len) && strlen(text) == len);
    char small[64];
    size_t full = 0;
    int rc = amb_print_ex(t, AMB_PRINT_PRETTY, small, sizeof small, &full);
    CHECK(full == len && (rc == 0 || rc == AMB_EBUFSIZE));
    size_t cut = strlen(small);
    CHECK(cut <= len && memcmp(small, text, cut) == 0 && valid_utf8(small, cut));
    CHECK(rc == AMB_EBUFSIZE ? cut + 4 >= sizeof small - 1 : cut == len);
    FILE *f = tmpfile();
    if (f != NULL) {
        CHECK(amb_fprint_ex(t, AMB_PRINT_PRETTY, f) == 0 && fflush(f) == 0);
        CHECK((size_t)ftell(f) == len);
        fclose(f);
    }
    amb_free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    amb_heap *h;
    if (amb_heap_new(&h) != 0)
        return 0;
    amb_term t = AMB_NONE;
    size_t pos = SIZE_MAX;
    int rc = amb_parse(h, (const char *)data, size, &t, &pos);
    if (rc != 0) {
        CHECK(rc == AMB_ESYNTAX || rc == AMB_EDEPTH || rc == AMB_ESYSLIMIT ||
              rc == AMB_ENOMEM);
        CHECK(pos <= size);
        CHECK(t == AMB_NONE);
        amb_heap_free(h);
        return 0;
    }
    char *text = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    if (amb_print_alloc(t, &text, &len) == 0) {
        amb_term back = AMB_NONE;
        CHECK(amb_parse(h, text, len, &back, NULL) == 0);
        CHECK(amb_equal(back, t));
        CHECK(amb_print_alloc(back, &again, &len2) == 0);
        CHECK(len == len2 && memcmp(text, again, len) == 0);
        /* The printed text never holds a NUL byte (it is escaped in quotes),
         * so it is a valid C string for the format functions. */
        CHECK(strlen(text) == len);
        CHECK(amb_match(t, text) == 0);
        amb_term packed = AMB_NONE;
        CHECK(amb_pack_ex(h, &packed, NULL, text) == 0);
        CHECK(amb_equal(packed, t));
        amb_free(text);
        amb_free(again);
    }
    check_pretty(t);
    amb_heap_free(h);
    return 0;
}

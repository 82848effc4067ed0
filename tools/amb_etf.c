/*
 * amb_etf.c - the amb-etf tool: External Term Format bytes to Erlang term
 * text and back, from stdin to stdout.
 *
 *   amb-etf decode   ETF bytes (starting with 131) -> the term as ~w text
 *   amb-etf encode   Erlang term text -> ETF bytes
 *
 * Exit status 0 on success, 1 for bad input (one line on stderr naming the
 * AMB_E* code, and the byte offset for syntax errors), 2 for bad usage.
 * It uses only the public API, as a user program would.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ambitious.h"

static const char usage[] =
    "usage: amb-etf decode [--no-version] [--max-depth N] < term.etf\n"
    "       amb-etf encode [--compressed] [--latin1-atoms] [--no-version] < term.txt\n"
    "\n"
    "decode  reads External Term Format bytes (with the leading 131 unless\n"
    "        --no-version) on stdin and prints the term in Erlang syntax, as\n"
    "        io:format(\"~w~n\") would, on stdout. Trailing bytes are an error.\n"
    "encode  reads one term in Erlang syntax on stdin (a final '.' is allowed)\n"
    "        and writes its External Term Format encoding on stdout.\n"
    "\n"
    "  --compressed     zlib-compress (tag 80) unless that makes the result longer\n"
    "  --latin1-atoms   ATOM_EXT for Latin-1 atoms, as OTP 25 writes by default\n"
    "  --no-version     no leading 131 byte (distribution message bodies)\n"
    "  --max-depth N    refuse terms nested deeper than N (default 10000)\n"
    "  -h, --help       this text\n"
    "\n"
    "Exit status: 0 on success, 1 for bad input (one line on stderr), 2 for bad usage.\n";

/* Reads all of f into a new buffer (NUL-terminated for the parser). */
static int read_all(FILE *f, char **out, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return AMB_ENOMEM;
    for (;;) {
        if (cap - n < 2) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                return AMB_ENOMEM;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return AMB_EIO;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "amb-etf: %s: %s: %s\n", what, amb_err_name(rc), amb_strerror(rc));
    return 1;
}

static int run_decode(amb_heap *heap, unsigned flags, size_t max_depth)
{
    char *buf;
    size_t len;
    int rc = read_all(stdin, &buf, &len);
    if (rc != 0)
        return fail("reading stdin", rc);
    amb_etf_decode_opts opts = {.flags = flags, .max_depth = max_depth};
    amb_term t;
    size_t used = 0;
    rc = amb_etf_decode(heap, (const uint8_t *)buf, len, &opts, &t, &used);
    free(buf);
    if (rc != 0)
        return fail("decode", rc);
    if (used != len) {
        fprintf(stderr, "amb-etf: decode: %s: %zu trailing byte(s) after the term\n",
                amb_err_name(AMB_EDECODE), len - used);
        return 1;
    }
    if ((rc = amb_fprint(t, stdout)) != 0 || fputc('\n', stdout) == EOF ||
        fflush(stdout) != 0)
        return fail("writing stdout", rc ? rc : AMB_EIO);
    return 0;
}

static int run_encode(amb_heap *heap, unsigned flags)
{
    char *text;
    size_t len;
    int rc = read_all(stdin, &text, &len);
    if (rc != 0)
        return fail("reading stdin", rc);
    amb_term t;
    size_t pos = 0;
    rc = amb_parse(heap, text, len, &t, &pos);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "amb-etf: encode: %s at byte %zu: %s\n", amb_err_name(rc), pos,
                amb_strerror(rc));
        return 1;
    }
    uint8_t *bytes;
    size_t n;
    if ((rc = amb_etf_encode_alloc(t, flags, &bytes, &n)) != 0)
        return fail("encode", rc);
    size_t wrote = fwrite(bytes, 1, n, stdout);
    amb_free(bytes);
    if (wrote != n || fflush(stdout) != 0)
        return fail("writing stdout", AMB_EIO);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = NULL;
    unsigned flags = 0;
    size_t max_depth = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--compressed") == 0) {
            flags |= AMB_ETF_COMPRESSED;
        } else if (strcmp(a, "--latin1-atoms") == 0) {
            flags |= AMB_ETF_LATIN1_ATOMS;
        } else if (strcmp(a, "--no-version") == 0) {
            flags |= AMB_ETF_NO_VERSION;
        } else if (strcmp(a, "--max-depth") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || v == 0 || argv[i][0] == '-') {
                fprintf(stderr, "amb-etf: bad --max-depth: %s\n", argv[i]);
                return 2;
            }
            max_depth = (size_t)v;
        } else if (cmd == NULL &&
                   (strcmp(a, "decode") == 0 || strcmp(a, "encode") == 0)) {
            cmd = a;
        } else {
            fprintf(stderr, "amb-etf: unexpected argument: %s\n%s", a, usage);
            return 2;
        }
    }
    if (cmd == NULL) {
        fputs(usage, stderr);
        return 2;
    }
    if (cmd[0] == 'd' && (flags & (AMB_ETF_COMPRESSED | AMB_ETF_LATIN1_ATOMS))) {
        fprintf(stderr, "amb-etf: --compressed and --latin1-atoms are for encode\n");
        return 2;
    }
    amb_heap *heap;
    int rc = amb_heap_new(&heap);
    if (rc != 0)
        return fail("heap", rc);
    int status = cmd[0] == 'd' ? run_decode(heap, flags & AMB_ETF_NO_VERSION, max_depth)
                               : run_encode(heap, flags);
    amb_heap_free(heap);
    return status;
}

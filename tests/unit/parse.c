/*
 * parse.c - amb_parse, Erlang term syntax read into terms: every syntax
 * form (atoms and their escapes, integers of every base and size, $c,
 * floats, strings, binaries, tuples, lists, maps, funs and amb_print's
 * #Pid/#Ref/#Port/#Fun forms), error codes and byte positions, the nesting
 * limit without C recursion, round trips through amb_print, failure
 * atomicity, allocation failures, and agreement with the real erl_parse of
 * an installed erl.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "amb_test.h"
#include "term_test.h"

/* Parses text, which must succeed. */
static amb_term parse_ok(const char *text)
{
    amb_term t = AMB_NONE;
    size_t pos = 12345;
    int rc = amb_parse(H, text, strlen(text), &t, &pos);
    if (rc != 0)
        fail_msg("amb_parse(%s) returned %s at %zu", text, amb_err_name(rc), pos);
    assert_int_equal(pos, 12345); /* untouched on success */
    return t;
}

#define assert_parses_to(text, want)                                \
    do {                                                            \
        amb_term got_ = parse_ok(text);                             \
        amb_term want_ = (want);                                    \
        assert_true(want_ != AMB_NONE);                             \
        if (!amb_equal(got_, want_)) {                              \
            char g_[512], w_[512];                                  \
            amb_print(got_, g_, sizeof g_, NULL);                   \
            amb_print(want_, w_, sizeof w_, NULL);                  \
            fail_msg("%s parsed as %s, expected %s", text, g_, w_); \
        }                                                           \
    } while (0)

/* Parses text, which must fail with code at byte pos. */
static void parse_fails(const char *text, size_t len, int code, size_t pos)
{
    amb_term t = (amb_term)777;
    size_t at = 999999;
    int rc = amb_parse(H, text, len, &t, &at);
    if (rc != code)
        fail_msg("amb_parse(%s) returned %s, expected %s", text, amb_err_name(rc),
                 amb_err_name(code));
    if (at != pos)
        fail_msg("amb_parse(%s): error at %zu, expected %zu", text, at, pos);
    assert_int_equal(t, 777); /* a failed call stores nothing */
}

#define assert_syntax_error(text, pos) \
    parse_fails((text), strlen(text), AMB_ESYNTAX, (pos))

/* ---------------------------------------------------------------------------
 * Atoms
 * ------------------------------------------------------------------------ */

AMB_TEST(parse_atoms)
{
    assert_parses_to("a", A("a"));
    assert_parses_to("hello_World@host9", A("hello_World@host9"));
    assert_parses_to("nonode@nohost", AMB_ATOM_NONODE_NOHOST);
    assert_parses_to("'hello world'", A("hello world"));
    assert_parses_to("''", A(""));
    assert_parses_to("'Caps'", A("Caps"));
    assert_parses_to("'$gen_call'", AMB_ATOM_GEN_CALL);
    /* Latin-1 letters may be bare, as in Erlang: ärger, ßa. */
    assert_parses_to("\xc3\xa4rger", A("\xc3\xa4rger"));
    assert_parses_to("\xc3\x9f\x61", A("\xc3\x9f\x61"));
    /* Any Unicode inside quotes, raw UTF-8 or escaped. */
    assert_parses_to("'\xe6\x97\xa5\xe6\x9c\xac'", A("\xe6\x97\xa5\xe6\x9c\xac"));
    assert_parses_to("'\\x{65E5}\\x{672c}'", A("\xe6\x97\xa5\xe6\x9c\xac"));
    assert_parses_to("'\xf0\x9f\x98\x80'", A("\xf0\x9f\x98\x80"));
    /* Escapes: named, octal, hex, control, and any other character. */
    assert_parses_to("'a\\'b'", A("a'b"));
    assert_parses_to("'a\\\\b'", A("a\\b"));
    assert_parses_to("'\\b\\d\\e\\f\\n\\r\\s\\t\\v'", A("\b\x7f\x1b\f\n\r \t\v"));
    amb_term nul = AMB_NONE;
    assert_ok(amb_atom_new("A0\0", 3, &nul));
    assert_parses_to("'\\101\\60\\0'", nul);
    assert_parses_to("'\\x41\\x{42}\\z'", A("ABz"));
    assert_parses_to("'\\^a\\^Z'", A("\x01\x1a"));
    assert_parses_to("'a\\\nb'", A("a\nb"));
    /* Bare atoms are not followed by '.' parts (that is the end dot). */
    assert_syntax_error("a.b", 2);
}

AMB_TEST(parse_atom_length_limit)
{
    char text[2048];
    /* 255 characters: fine, bare or quoted, even 4 bytes each. */
    memset(text, 'a', 255);
    text[255] = '\0';
    amb_term t = parse_ok(text);
    size_t len;
    assert_non_null(amb_atom_name(t, &len));
    assert_int_equal(len, 255);
    text[255] = 'a';
    text[256] = '\0';
    assert_syntax_error(text, 0);
    size_t n = 0;
    text[n++] = '\'';
    for (int i = 0; i < 255; i++) {
        memcpy(text + n, "\xf0\x9f\x98\x80", 4);
        n += 4;
    }
    text[n++] = '\'';
    text[n] = '\0';
    t = parse_ok(text);
    assert_non_null(amb_atom_name(t, &len));
    assert_int_equal(len, 1020);
    /* 256 characters, some of them escapes: too long. */
    n = 0;
    text[n++] = ' ';
    text[n++] = '\'';
    for (int i = 0; i < 256; i++) {
        memcpy(text + n, "\\n", 2);
        n += 2;
    }
    text[n++] = '\'';
    text[n] = '\0';
    assert_syntax_error(text, 1);
}

AMB_TEST(parse_reserved_words_need_quotes)
{
    static const char *const words[] = {
        "after", "and",  "andalso", "band",    "begin", "bnot", "bor",  "bsl", "bsr",
        "bxor",  "case", "catch",   "cond",    "div",   "end",  "if",   "let", "not",
        "of",    "or",   "orelse",  "receive", "rem",   "try",  "when", "xor"};
    char text[32];
    for (size_t i = 0; i < AMB_COUNTOF(words); i++) {
        snprintf(text, sizeof text, "{%s}", words[i]);
        assert_syntax_error(text, 1);
        snprintf(text, sizeof text, "'%s'", words[i]);
        assert_parses_to(text, A(words[i]));
    }
    /* fun alone is the start of fun M:F/A; maybe and else are atoms in OTP 25. */
    assert_syntax_error("fun", 3);
    assert_parses_to("'fun'", A("fun"));
    assert_parses_to("[maybe,else,ends,iff]",
                     L(A("maybe"), A("else"), A("ends"), A("iff")));
}

/* ---------------------------------------------------------------------------
 * Numbers
 * ------------------------------------------------------------------------ */

static amb_term int_text(const char *decimal)
{
    amb_term t = AMB_NONE;
    assert_ok(amb_int_from_string(H, decimal, strlen(decimal), &t));
    return t;
}

AMB_TEST(parse_integers)
{
    assert_parses_to("0", I(0));
    assert_parses_to("42", I(42));
    assert_parses_to("-42", I(-42));
    assert_parses_to("+42", I(42));
    assert_parses_to("- 42", I(-42));
    assert_parses_to("-0", I(0));
    assert_parses_to("007", I(7));
    assert_parses_to("1_000_000", I(1000000));
    assert_parses_to("4611686018427387903", I(AMB_SMALL_MAX));
    assert_parses_to("4611686018427387904", I(AMB_SMALL_MAX + 1));
    assert_parses_to("-4611686018427387904", I(AMB_SMALL_MIN));
    assert_parses_to("-4611686018427387905", I(AMB_SMALL_MIN - 1));
    assert_parses_to("9223372036854775807", I(INT64_MAX));
    assert_parses_to("-9223372036854775808", I(INT64_MIN));
    assert_parses_to("18446744073709551615", amb_uint(H, UINT64_MAX));
    assert_parses_to("-18446744073709551615", int_text("-18446744073709551615"));
    assert_parses_to("18446744073709551616", int_text("18446744073709551616"));
    /* Base#Digits, bases 2 to 36, either case, with underscores. */
    assert_parses_to("2#101", I(5));
    assert_parses_to("16#ff", I(255));
    assert_parses_to("16#FF_FF", I(65535));
    assert_parses_to("-16#10", I(-16));
    assert_parses_to("36#zZ", I(1295));
    assert_parses_to("8#777", I(511));
    assert_parses_to("16#FFFFFFFFFFFFFFFFFF", int_text("4722366482869645213695"));
    assert_parses_to(
        "-2#1_0000000000000000000000000000000000000000000000000000000000000000",
        int_text("-18446744073709551616"));
    /* Not integers: */
    assert_syntax_error("1_", 1);   /* the _ is a variable */
    assert_syntax_error("1__0", 1); /* one underscore between digits */
    assert_syntax_error("37#1", 0);
    assert_syntax_error("1#1", 0);
    assert_syntax_error("16#", 0);
    assert_syntax_error("2#102", 4); /* 2#10, then 2 */
    assert_syntax_error("1e10", 1);  /* Erlang has no exponent without a dot */
    assert_syntax_error("--1", 1);
    assert_syntax_error("-a", 1);
    assert_syntax_error("-", 1);
}

AMB_TEST(parse_big_integers)
{
    /* 2^1000 - 1 in hex (250 F) and decimal agree. */
    char text[400];
    strcpy(text, "16#");
    memset(text + 3, 'F', 250);
    text[253] = '\0';
    amb_term hex = parse_ok(text);
    uint8_t mag[125];
    memset(mag, 0xff, sizeof mag);
    amb_term want = AMB_NONE;
    assert_ok(amb_int_from_bytes(H, false, mag, sizeof mag, &want));
    assert_true(amb_equal(hex, want));
    const char *dec = "-123456789012345678901234567890123456789012345678901234567890";
    assert_parses_to(dec, int_text(dec));
    assert_parses_to("-000000000000000000000000000000000000000000000000000000000001",
                     I(-1));

    /* The largest magnitude allowed is AMB_BIG_MAX_BYTES bytes: 2^524288 - 1
     * parses, 2^524288 does not. */
    size_t digits = AMB_BIG_MAX_BYTES * 2;
    char *big = malloc(200000);
    assert_non_null(big);
    memcpy(big, "16#", 3);
    memset(big + 3, 'f', digits);
    amb_term t = AMB_NONE;
    assert_ok(amb_parse(H, big, 3 + digits, &t, NULL));
    bool neg;
    const uint8_t *bytes;
    size_t len;
    uint64_t scratch;
    assert_ok(amb_int_to_bytes(t, &scratch, &neg, &bytes, &len));
    assert_false(neg);
    assert_int_equal(len, AMB_BIG_MAX_BYTES);
    big[3] = '1';
    memset(big + 4, '0', digits);
    size_t pos = 0;
    assert_rc(AMB_ESYSLIMIT, amb_parse(H, big, 4 + digits, &t, &pos));
    assert_int_equal(pos, 0);
    /* The same bound in decimal, and as the text of amb_print. */
    char *text_max = NULL;
    assert_ok(amb_print_alloc(want, &text_max, NULL));
    amb_free(text_max);
    memset(big, '9', 157827);
    assert_rc(AMB_ESYSLIMIT, amb_parse(H, big, 157827, &t, NULL));
    /* A huge count of leading zeros costs nothing and is not too large. */
    memset(big, '0', digits);
    big[digits] = '7';
    assert_ok(amb_parse(H, big, digits + 1, &t, NULL));
    assert_true(amb_equal(t, I(7)));
    free(big);
}

AMB_TEST(parse_char_literals)
{
    assert_parses_to("$a", I('a'));
    assert_parses_to("$ ", I(' '));
    assert_parses_to("$\n", I('\n'));
    assert_parses_to("$\\n", I('\n'));
    assert_parses_to("$\\s", I(' '));
    assert_parses_to("$\\\\", I('\\'));
    assert_parses_to("$\\'", I('\''));
    assert_parses_to("$'", I('\''));
    assert_parses_to("$\"", I('"'));
    assert_parses_to("$\\777", I(511));
    assert_parses_to("$\\x{10FFFF}", I(0x10ffff));
    assert_parses_to("$\\^?", I(31));
    assert_parses_to("$\xc3\xa9", I(0xe9));
    assert_parses_to("$\xf0\x9f\x98\x80", I(0x1f600));
    assert_parses_to("-$a", I(-97));
    assert_parses_to("[$a,$b]", S("ab"));
    assert_syntax_error("$", 0);
    assert_syntax_error("$\\x{110000}", 1);
    assert_syntax_error("$\\x{D800}", 1);
    assert_syntax_error("$\xff", 1);
}

AMB_TEST(parse_floats)
{
    assert_parses_to("1.5", F(1.5));
    assert_parses_to("-1.5", F(-1.5));
    assert_parses_to("1.0e10", F(1e10));
    assert_parses_to("1.0E10", F(1e10));
    assert_parses_to("1.5e-3", F(1.5e-3));
    assert_parses_to("1.5e+3", F(1.5e3));
    assert_parses_to("1_0.2_5e0_1", F(102.5));
    assert_parses_to("0.1", F(0.1));
    assert_parses_to("1.7976931348623157e308", F(1.7976931348623157e308));
    assert_parses_to("4.9406564584124654e-324", F(4.9406564584124654e-324));
    assert_parses_to("1.0e-400", F(0.0)); /* underflow is zero, as in Erlang */
    amb_term z = parse_ok("-0.0");
    double d;
    assert_ok(amb_float_get(z, &d));
    assert_true(d == 0.0 && signbit(d));
    /* An integer is not a float and the other way round. */
    assert_false(amb_equal(parse_ok("1.0"), I(1)));
    assert_syntax_error("1.7976931348623159e308", 0);
    assert_syntax_error("1.5e", 0);
    assert_syntax_error("1.5e+", 0);
    assert_syntax_error(".5", 0);
    assert_syntax_error("1.e5", 2);   /* 1, then the end dot, then e5 */
    assert_syntax_error("16#1.5", 5); /* 16#1, the end dot, then 5 */
    /* "1." is the integer 1 and the end dot. */
    assert_parses_to("1.", I(1));
}

AMB_TEST(parse_floats_ignore_the_locale)
{
    /* strtod reads "1,5" in a German locale; amb_parse must not care. */
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    const char *set = NULL;
    for (size_t i = 0; i < AMB_COUNTOF(names) && set == NULL; i++)
        set = setlocale(LC_NUMERIC, names[i]);
    assert_parses_to("2.5", F(2.5));
    assert_parses_to("-1.25e2", F(-125.0));
    setlocale(LC_NUMERIC, "C");
    if (set == NULL)
        skip(); /* no such locale installed: the plain check above still ran */
}

/* ---------------------------------------------------------------------------
 * Strings, binaries, containers
 * ------------------------------------------------------------------------ */

AMB_TEST(parse_strings)
{
    assert_parses_to("\"\"", AMB_NIL);
    assert_parses_to("\"abc\"", S("abc"));
    assert_parses_to("\"a\" \"b\"", S("ab"));
    assert_parses_to("\"a\"\"b\"", S("ab"));
    assert_parses_to("\"a\" % comment\n \"b\" \"\" \"c\"", S("abc"));
    assert_parses_to("[\"a\" \"b\", \"c\"]", L(S("ab"), S("c")));
    assert_parses_to("\"h\xc3\xa9llo \xe4\xb8\xad \xf0\x9f\x98\x80\"",
                     S("h\xc3\xa9llo \xe4\xb8\xad \xf0\x9f\x98\x80"));
    assert_parses_to("\"\\x{1f600}\\x41\\101\\n\\\"\\^a\"",
                     L(I(0x1f600), I('A'), I('A'), I('\n'), I('"'), I(1)));
    assert_parses_to("\"\\777\\1234\"", L(I(511), I(0123), I('4')));
    assert_parses_to("\"\\x{0}\"", L(I(0)));
    assert_parses_to("\"'\"", L(I('\'')));
    assert_syntax_error("\"abc", 0);
    assert_syntax_error("[1, \"ab\\\"]", 4);
    assert_syntax_error("\"\\x4\"", 1);
    assert_syntax_error("\"\\x{}\"", 1);
    assert_syntax_error("\"\\x{D800}\"", 1);
    assert_syntax_error("\"\\x{110000}\"", 1);
    assert_syntax_error("\"ab\xc3\"", 3);       /* truncated UTF-8 */
    assert_syntax_error("\"\xed\xa0\x80\"", 1); /* an encoded surrogate */
    assert_syntax_error("-\"a\"", 1);
}

AMB_TEST(parse_binaries)
{
    assert_parses_to("<<>>", BIN());
    assert_parses_to("<< >>", BIN());
    assert_parses_to("<<1,2,3>>", BIN(1, 2, 3));
    assert_parses_to("<< 1 , 2 >>", BIN(1, 2));
    assert_parses_to("<<\"abc\">>", BIN('a', 'b', 'c'));
    assert_parses_to("<<\"ab\" \"c\", 0>>", BIN('a', 'b', 'c', 0));
    assert_parses_to("<<1,2:3>>", BITS(11, 1, 2 << 5));
    assert_parses_to("<<5:3>>", BITS(3, 5 << 5));
    assert_parses_to("<<1:3,2:5>>", BIN(34));
    assert_parses_to("<<-1:4>>", BITS(4, 0xf0));
    assert_parses_to("<<256,-1>>", BIN(0, 255)); /* truncated as in Erlang */
    assert_parses_to("<<1:0>>", BIN());
    assert_parses_to("<<1:64>>", BIN(0, 0, 0, 0, 0, 0, 0, 1));
    assert_parses_to("<<$a, $\\n>>", BIN('a', '\n'));
    assert_parses_to("<<\"\xe2\x82\xac\">>", BIN(0xac)); /* 8 bits per character */
    assert_parses_to("<<\"\xe2\x82\xac\"/utf8>>", BIN(0xe2, 0x82, 0xac));
    assert_parses_to("<<1024/utf8, 65/utf8>>", BIN(0xd0, 0x80, 'A'));
    assert_parses_to("<<7/integer>>", BIN(7));
    uint8_t big[100];
    char text[512];
    size_t n = (size_t)snprintf(text, sizeof text, "<<");
    for (int i = 0; i < 100; i++) {
        big[i] = (uint8_t)(i * 7);
        n += (size_t)snprintf(text + n, sizeof text - n, i ? ",%d" : "%d", big[i]);
    }
    snprintf(text + n, sizeof text - n, ">>");
    assert_parses_to(text, amb_binary(H, big, sizeof big));
    assert_syntax_error("<<1,>>", 4);
    assert_syntax_error("<<,>>", 2);
    assert_syntax_error("<<1:65>>", 4);
    assert_syntax_error("<<1.5>>", 2);
    assert_syntax_error("<<a>>", 2);
    assert_syntax_error("<<1/float>>", 4);
    assert_syntax_error("<<1:8/utf8>>", 2);
    assert_syntax_error("<<\"a\":8>>", 5);
    assert_syntax_error("<<1 2>>", 4);
    assert_syntax_error("<<1", 3);
    assert_syntax_error("< <1>>", 0);
    assert_syntax_error("<<18446744073709551616>>", 2);
}

AMB_TEST(parse_tuples_lists_maps)
{
    assert_parses_to("{}", amb_tuple(H, 0, NULL));
    assert_parses_to("{a}", T(A("a")));
    assert_parses_to("{a, {b, c}, []}", T(A("a"), T(A("b"), A("c")), AMB_NIL));
    assert_parses_to("[]", AMB_NIL);
    assert_parses_to("[ ]", AMB_NIL);
    assert_parses_to("[1,2,3]", L(I(1), I(2), I(3)));
    assert_parses_to("[1|2]", CONS(I(1), I(2)));
    assert_parses_to("[1,2|[3]]", L(I(1), I(2), I(3)));
    assert_parses_to("[a|[]]", L(A("a")));
    assert_parses_to("[[]|[]]", L(AMB_NIL));
    amb_term keys[2] = {A("a"), A("b")}, values[2] = {I(3), I(2)};
    assert_parses_to("#{a => 1, b => 2, a => 3}", amb_map(H, 2, keys, values));
    assert_parses_to("#{}", amb_map(H, 0, NULL, NULL));
    assert_parses_to("# {}", amb_map(H, 0, NULL, NULL));
    amb_term k2[2] = {T(A("x")), amb_map(H, 0, NULL, NULL)}, v2[2] = {I(1), L(I(2))};
    assert_parses_to("#{{x} => 1, #{} => [2]}", amb_map(H, 2, k2, v2));
    /* 1 and 1.0 are different keys. */
    amb_term m = parse_ok("#{1 => a, 1.0 => b}");
    assert_int_equal(amb_map_size(m), 2);
    assert_syntax_error("{a,}", 3);
    assert_syntax_error("{,}", 1);
    assert_syntax_error("{a b}", 3);
    assert_syntax_error("{a]", 2);
    assert_syntax_error("[a|b|c]", 4);
    assert_syntax_error("[|a]", 1);
    assert_syntax_error("[a|]", 3);
    assert_syntax_error("[a|b,c]", 4);
    assert_syntax_error("#{a}", 3);
    assert_syntax_error("#{a => }", 7);
    assert_syntax_error("#{a => b, }", 10);
    assert_syntax_error("#{a := b}", 4); /* := only in formats */
    assert_syntax_error("#{a => b | c}", 9);
    assert_syntax_error("#a{}", 0);
}

AMB_TEST(parse_funs_pids_refs_ports)
{
    assert_parses_to("fun lists:map/2", amb_export_term(H, A("lists"), A("map"), 2));
    assert_parses_to("fun 'M' : 'f g' / 255", amb_export_term(H, A("M"), A("f g"), 255));
    assert_parses_to("fun erlang:'+'/2", amb_export_term(H, A("erlang"), A("+"), 2));
    assert_syntax_error("fun m:f/256", 8);
    assert_syntax_error("fun m/1", 5);
    assert_syntax_error("fun M:f/1", 4);

    amb_term node = A("a@b");
    assert_parses_to("#Pid<'a@b'.1.2.3>", amb_pid_term(H, node, 1, 2, 3));
    assert_parses_to("#Pid<a@b.4294967295.0.7>", amb_pid_term(H, node, UINT32_MAX, 0, 7));
    uint32_t w[5] = {10, 20, 30, 40, 50};
    assert_parses_to("#Ref<'a@b'.9.10>", amb_ref_term(H, node, 9, w, 1));
    assert_parses_to("#Ref<'a@b'.9.10.20.30>", amb_ref_term(H, node, 9, w, 3));
    assert_parses_to("#Ref<'a@b'.9.10.20.30.40.50>", amb_ref_term(H, node, 9, w, 5));
    assert_parses_to("#Port<'a@b'.18446744073709551615.3>",
                     amb_port_term(H, node, UINT64_MAX, 3));
    assert_parses_to("#Pid<'\\x{263A}'.1.2.3>",
                     amb_pid_term(H, A("\xe2\x98\xba"), 1, 2, 3));
    const uint8_t ext[] = {0, 0, 0, 9, 1, 2, 3, 4, 5};
    assert_parses_to("#Fun<<<0,0,0,9,1,2,3,4,5>>>", amb_closure_term(H, ext, sizeof ext));
    assert_parses_to("{#Fun<<<1>>>}", T(amb_closure_term(H, ext + 4, 1)));

    assert_syntax_error("#Pid<'a'.1.2>", 0);
    assert_syntax_error("#Pid<'a'.1.2.3.4>", 0);
    assert_syntax_error("#Pid<'a'.1.2.4294967296>", 13);
    assert_syntax_error("#Pid<'a'.1.2.3", 14);
    assert_syntax_error("#Pid< 'a'.1.2.3>", 5);
    assert_syntax_error("#Ref<'a'.1>", 0);
    assert_syntax_error("#Ref<'a'.1.1.2.3.4.5.6>", 21);
    assert_syntax_error("#Port<'a'.1>", 0);
    assert_syntax_error("#Port<'a'.18446744073709551616.1>", 10);
    assert_syntax_error("#Port<A.1.2>", 6);
    assert_syntax_error("#Fun<<<>>>", 0);
    assert_syntax_error("#Fun<<<1:4>>>", 0);
    assert_syntax_error("#Fun<<<1>>", 10);
    assert_syntax_error("#Pidx", 0);
}

AMB_TEST(parse_whitespace_comments_and_end_dot)
{
    assert_parses_to(" \t\r\n\v\f{ a ,\n b } ", T(A("a"), A("b")));
    assert_parses_to("% leading comment\n{a, % inside\n b} % trailing",
                     T(A("a"), A("b")));
    assert_parses_to("{a}.", T(A("a")));
    assert_parses_to("{a} .\n", T(A("a")));
    assert_parses_to("{a}.% done", T(A("a")));
    assert_parses_to("[1,2].", L(I(1), I(2)));
    assert_syntax_error("{a}..", 4);
    assert_syntax_error("{a}. b", 5);
    assert_syntax_error("{a} {b}", 4);
    assert_syntax_error("a b", 2);
    assert_syntax_error("", 0);
    assert_syntax_error("   % only a comment", 19);
    assert_syntax_error(".", 0);
}

/* ---------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

AMB_TEST(parse_error_positions)
{
    static const struct {
        const char *text;
        size_t pos;
    } cases[] = {
        {"{a, b", 5}, /* unclosed: reported at the end */
        {"[1, 2", 5},
        {"#{a => 1", 8},
        {"{a, b]", 5},
        {"{a, b}}", 6},
        {"]", 0},
        {"{a, B}", 4},          /* a variable */
        {"{a, _}", 4},          /* _ only in formats */
        {"{a, ~w}", 4},         /* directives only in formats */
        {"'abc", 0},            /* unterminated: at the opening quote */
        {"{x, 'a\\x{zz}'}", 6}, /* a bad escape: at its backslash */
        {"{1, 2 3}", 6},
        {"[a, @]", 4},
        {"{a,\xff}", 3}, /* not UTF-8 */
        {"<<1:3", 5},
        {"{a} % c\n x", 9},
        {"a=b", 1},
        {"a:b", 1},
        {"<a>", 0},
        {"a || b", 2},
    };
    for (size_t i = 0; i < AMB_COUNTOF(cases); i++)
        assert_syntax_error(cases[i].text, cases[i].pos);
    /* The length is respected: text past len is never read. */
    parse_fails("{a}", 2, AMB_ESYNTAX, 2); /* only "{a" is given */
    amb_term t;
    assert_ok(amb_parse(H, "{a} garbage", 3, &t, NULL));
    assert_ok(amb_parse(H, "abc\0def", 3, &t, NULL));
    assert_true(t == A("abc"));
    parse_fails("ab\0c", 4, AMB_ESYNTAX, 2); /* a NUL byte is not a character */
}

/* Nesting of n lists: "[[[...]]]". */
static char *nested(size_t n, char open, char close)
{
    char *s = malloc(2 * n + 1);
    assert_non_null(s);
    memset(s, open, n);
    memset(s + n, close, n);
    s[2 * n] = '\0';
    return s;
}

typedef struct depth_job {
    int rc_ok, rc_over;
    size_t pos_over;
    size_t depth_seen;
} depth_job;

static void *depth_body(void *arg)
{
    depth_job *job = arg;
    amb_heap *h;
    if (amb_heap_new(&h) != 0)
        return NULL;
    char *ok = nested(AMB_PARSE_MAX_DEPTH, '[', ']');
    char *over = nested(AMB_PARSE_MAX_DEPTH + 1, '{', '}');
    amb_term t = AMB_NONE;
    job->rc_ok = amb_parse(h, ok, strlen(ok), &t, NULL);
    for (size_t d = 0; job->rc_ok == 0 && amb_is_cons(t); d++, t = amb_list_head(t))
        job->depth_seen = d + 1;
    job->rc_over = amb_parse(h, over, strlen(over), &t, &job->pos_over);
    free(ok);
    free(over);
    amb_heap_free(h);
    return NULL;
}

AMB_TEST(parse_depth_limit_without_c_recursion)
{
    /* Run on a 64 KiB thread stack: a parser recursing per level would need
     * far more for 10,000 levels, so passing here shows it does not. */
    pthread_attr_t attr;
    pthread_t th;
    depth_job job = {0};
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 64 * 1024), 0);
    assert_int_equal(pthread_create(&th, &attr, depth_body, &job), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&attr);
    assert_rc(0, job.rc_ok);
    assert_int_equal(job.depth_seen, AMB_PARSE_MAX_DEPTH - 1); /* the innermost is [] */
    assert_rc(AMB_EDEPTH, job.rc_over);
    assert_int_equal(job.pos_over,
                     AMB_PARSE_MAX_DEPTH); /* the opening bracket too many */
    /* Maps and a mix, and a long flat list (no depth at all). */
    char *m = malloc(5 * (AMB_PARSE_MAX_DEPTH + 1) + 8);
    assert_non_null(m);
    size_t n = 0;
    for (int i = 0; i <= AMB_PARSE_MAX_DEPTH; i++) {
        memcpy(m + n, "#{1=>", 5);
        n += 5;
    }
    amb_term t;
    size_t pos;
    assert_rc(AMB_EDEPTH, amb_parse(H, m, n, &t, &pos));
    assert_int_equal(pos, 5 * AMB_PARSE_MAX_DEPTH);
    free(m);
    size_t count = 200000;
    char *flat = malloc(2 * count + 2);
    assert_non_null(flat);
    flat[0] = '[';
    for (size_t i = 0; i < count; i++) {
        flat[1 + 2 * i] = '1';
        flat[2 + 2 * i] = i + 1 < count ? ',' : ']';
    }
    assert_ok(amb_parse(H, flat, 2 * count + 1, &t, NULL));
    size_t len;
    assert_ok(amb_list_length(t, &len));
    assert_int_equal(len, count);
    free(flat);
}

AMB_TEST(parse_bad_arguments)
{
    amb_term t = (amb_term)777;
    size_t pos = 5;
    assert_rc(AMB_EBADARG, amb_parse(NULL, "a", 1, &t, &pos));
    assert_rc(AMB_EBADARG, amb_parse(H, NULL, 1, &t, &pos));
    assert_rc(AMB_EBADARG, amb_parse(H, "a", 1, NULL, &pos));
    assert_int_equal(t, 777);
    assert_int_equal(pos, 5);
    /* NULL text of length 0 is the empty text: a syntax error at 0. */
    assert_rc(AMB_ESYNTAX, amb_parse(H, NULL, 0, &t, &pos));
    assert_int_equal(pos, 0);
    /* err_pos may be NULL. */
    assert_rc(AMB_ESYNTAX, amb_parse(H, "{", 1, &t, NULL));
    assert_int_equal(t, 777);
}

/* ---------------------------------------------------------------------------
 * Allocation failures: allocation N and every one after it fail, for every N
 * ------------------------------------------------------------------------ */

AMB_TEST(parse_allocation_failures_are_clean)
{
    /* A term that needs heap blocks, a big integer's limbs, a long float
     * copy, a binary buffer, closure bytes and a deep parser stack. */
    char text[4096];
    size_t n =
        (size_t)snprintf(text, sizeof text,
                         "{[1,2|3], #{a => \"str\"}, 123456789012345678901234567890, "
                         "1.00000000000000000000000000000000000000000000000000000000"
                         "0000000000000000000000e0, <<1,2,3:4>>, #Fun<<<1,2,3>>>, ");
    for (int i = 0; i < 100; i++)
        text[n++] = '[';
    for (int i = 0; i < 100; i++)
        text[n++] = ']';
    text[n++] = '}';
    text[n] = '\0';
    amb_heap *h;
    assert_ok(amb_heap_new(&h));
    amb_term want = AMB_NONE;
    assert_ok(amb_parse(h, text, n, &want, NULL));
    bool succeeded = false;
    for (long budget = 0; budget < 1000 && !succeeded; budget++) {
        amb_heap *fresh;
        assert_ok(amb_heap_new(&fresh));
        amb_test_alloc_fail((uint64_t)budget, AMB_TEST_FAIL_FOREVER);
        amb_term t = (amb_term)777;
        size_t pos = 0;
        int rc = amb_parse(fresh, text, n, &t, &pos);
        amb_test_alloc_disarm();
        if (rc == 0) {
            assert_true(amb_equal(t, want));
            succeeded = true;
        } else {
            assert_rc(AMB_ENOMEM, rc);
            assert_int_equal(t, 777);
        }
        amb_heap_free(fresh);
    }
    assert_true(succeeded);
    amb_heap_free(h);
}

/* ---------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------ */

/* print -> parse -> equal, and printing the result gives the same text. */
static void round_trip(amb_term t)
{
    char *text = NULL, *again = NULL;
    size_t len, len2;
    assert_true(t != AMB_NONE);
    assert_ok(amb_print_alloc(t, &text, &len));
    amb_term back = AMB_NONE;
    size_t pos = 0;
    int rc = amb_parse(H, text, len, &back, &pos);
    if (rc != 0)
        fail_msg("%s did not parse back: %s at %zu", text, amb_err_name(rc), pos);
    if (!amb_equal(back, t))
        fail_msg("%s parsed back as a different term", text);
    assert_ok(amb_print_alloc(back, &again, &len2));
    assert_string_equal(text, again);
    amb_free(text);
    amb_free(again);
}

AMB_TEST(parse_round_trips_through_print)
{
    uint32_t w[5] = {1, 2, 3, 4, 0xffffffffu};
    const uint8_t ext[] = {0, 0, 0, 30, 1, 2, 255};
    amb_term nul = AMB_NONE;
    assert_ok(amb_atom_new("a\0b", 3, &nul));
    amb_term terms[] = {
        I(0),
        I(-1),
        I(AMB_SMALL_MAX),
        I(AMB_SMALL_MIN),
        I(INT64_MIN),
        amb_uint(H, UINT64_MAX),
        int_text("-98765432109876543210987654321098765432109876543210"),
        F(0.0),
        F(-0.0),
        F(1.5),
        F(0.1),
        F(1e300),
        F(-2.5e-300),
        F(5e-324),
        F(100.0),
        F(1e15),
        F(123456.789),
        A("a"),
        A(""),
        A("A"),
        A("_"),
        A("end"),
        A("fun"),
        A("a b"),
        A("a'b\\c\"d"),
        A("\n\t\x1b\x7f\x01"),
        nul,
        A("\xc3\xa4rger"),
        A("\xe6\x97\xa5"),
        A("\xf0\x9f\x98\x80"),
        A("nonode@nohost"),
        A("a.b"),
        A("1"),
        AMB_NIL,
        S("abc"),
        S("h\xc3\xa9\xe4\xb8\xad"),
        L(I(1), F(2.0), A("x")),
        CONS(I(1), I(2)),
        CONS(A("a"), CONS(A("b"), AMB_NIL)),
        L(AMB_NIL, AMB_NIL),
        amb_tuple(H, 0, NULL),
        T(A("ok"), T(I(1), T(I(2)))),
        BIN(),
        BIN(1, 2, 3),
        BIN('a', 'b'),
        BITS(3, 0xa0),
        BITS(13, 0xff, 0xf8),
        amb_map(H, 0, NULL, NULL),
        amb_export_term(H, A("lists"), A("map"), 2),
        amb_export_term(H, A("M"), A("a b"), 0),
        amb_export_term(H, A("m"), A("\x1b\x7f"), 1),
        amb_pid_term(H, AMB_ATOM_NONODE_NOHOST, 85, 0, 0),
        amb_pid_term(H, A("n\xc3\xb6\xe6\x97\xa5@h"), UINT32_MAX, 1, 2),
        amb_ref_term(H, A("a@b"), 7, w, 1),
        amb_ref_term(H, A("a@b"), 7, w, 5),
        amb_port_term(H, A("a@b"), UINT64_MAX, 1),
        amb_closure_term(H, ext, sizeof ext),
    };
    for (size_t i = 0; i < AMB_COUNTOF(terms); i++)
        round_trip(terms[i]);
    amb_term keys[4] = {A("a"), I(1), F(1.0), T(A("k"))};
    amb_term values[4] = {AMB_NIL, S("v"), BIN(9), amb_map(H, 0, NULL, NULL)};
    round_trip(amb_map(H, 4, keys, values));
    round_trip(T(amb_map(H, 4, keys, values), L(terms[20], terms[40], terms[50])));
    /* Every byte value as a one-character atom and string element. */
    for (uint32_t c = 0; c < 0x800; c++) {
        uint8_t utf8[4];
        size_t k = c < 0x80 ? 1 : 2;
        if (k == 1)
            utf8[0] = (uint8_t)c;
        else
            utf8[0] = (uint8_t)(0xc0 | (c >> 6)), utf8[1] = (uint8_t)(0x80 | (c & 0x3f));
        amb_term a = AMB_NONE;
        assert_ok(amb_atom_new((const char *)utf8, k, &a));
        round_trip(a);
        round_trip(L(I(c)));
    }
    /* A deep term round-trips too. */
    amb_term deep = AMB_NIL;
    for (int i = 0; i < 5000; i++)
        deep = i % 2 ? T(deep) : L(deep, I(i));
    round_trip(deep);
}

AMB_TEST(parse_then_print_then_parse)
{
    static const char *const texts[] = {
        "{ok, [1, 2.5, \"x\"], #{k => [a|b]}}",
        "[{a,1},{b,2}]",
        "<<\"hello\", 0, 255, 1:1>>",
        "#{ #{} => [], {} => <<>>, -1 => 1.0e-10 }",
        "{'EXIT', #Pid<'a@b'.1.2.3>, {badarg, [fun erlang:'+'/2]}}",
        "[16#FF, 2#1010, 36#ZZ, $a, $\\n, -0.0, 1_000]",
        "'\\x{1F600}\\e\\d'",
        "\"\\x{10FFFF}\\0\"",
    };
    for (size_t i = 0; i < AMB_COUNTOF(texts); i++)
        round_trip(parse_ok(texts[i]));
}

/* ---------------------------------------------------------------------------
 * Against the real thing: erl_scan + erl_parse:parse_term of an installed erl
 * ------------------------------------------------------------------------ */

static bool erl_installed(void)
{
    return system("command -v erl >/dev/null 2>&1") == 0;
}

static void hex_of(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        *out++ = hex[(uint8_t)s[i] >> 4];
        *out++ = hex[(uint8_t)s[i] & 15];
    }
    *out = '\0';
}

AMB_TEST(parse_agrees_with_erl)
{
    if (!erl_installed()) {
        skip();
        return;
    }
    /* Each text is read by both; both must fail, or both must give the same
     * term (compared through ~w). Texts get a final " ." for erl. */
    static const char *const texts[] = {
        "a",
        "'A b'",
        "nonode@nohost",
        "\xc3\xa4rger",
        "'\xe6\x97\xa5'",
        "'\\x{263a}'",
        "'\\^a\\^?\\z\\777'",
        "'a\\\nb'",
        "and",
        "'and'",
        "fun",
        "maybe",
        "0",
        "-5",
        "+5",
        "- 5",
        "007",
        "1_000",
        "1__0",
        "1_",
        "16#ff_FF",
        "36#zZ",
        "37#1",
        "1#0",
        "2#102",
        "16#",
        "-16#10",
        "123456789012345678901234567890",
        "-99999999999999999999999999999999999999",
        "$a",
        "$\\n",
        "$\\^?",
        "$\\x{10FFFF}",
        "$\\x{110000}",
        "$\\x{D800}",
        "-$a",
        "$ ",
        "$\xc3\xa9",
        "1.5",
        "-1.5",
        "1.0e10",
        "1.5E-3",
        "1.5e+3",
        "1_0.5_0e1_0",
        "1.0e400",
        "1.0e-400",
        "1.5e",
        "1e10",
        ".5",
        "1.e5",
        "-0.0",
        "0.1",
        "4.9e-324",
        "\"\"",
        "\"abc\"",
        "\"a\" \"b\"",
        "\"\\x{1f600}\\x41\\101\\1234\\8\"",
        "\"\\x4\"",
        "\"\\x{}\"",
        "\"\\x{D800}\"",
        "\"\\e\\d\\s\\b\\v\\f\"",
        "\"\\\"'\"",
        "<<>>",
        "<< >>",
        "<<1,2,3>>",
        "<<\"abc\">>",
        "<<1:3,2:5>>",
        "<<-1:4>>",
        "<<256,-1>>",
        "<<1,2:3>>",
        "<<\"\xe2\x82\xac\">>",
        "<<\"\xe2\x82\xac\"/utf8>>",
        "<<1024/utf8>>",
        "<<$a>>",
        "<<1:0>>",
        "<<1,>>",
        "<<\"a\" \"b\">>",
        "<<7/integer>>",
        "{}",
        "{a}",
        "{a,{b,[]}}",
        "{a,}",
        "[]",
        "[1,2|3]",
        "[a|b|c]",
        "[|a]",
        "[a|]",
        "#{}",
        "# {}",
        "#{a => 1, a => 2}",
        "#{a}",
        "#{a => b, }",
        "#{{1} => #{}}",
        "fun m:f/1",
        "fun 'M':'f g'/0",
        "fun m:f/256",
        "{1, 2 3}",
        "A",
        "_",
        "_x",
        "% comment\n{a, % x\n b}",
        "{a} b",
        "a.b",
        "[\"a\" \"b\", $c]",
    };
    size_t n = AMB_COUNTOF(texts);
    char path[64];
    int fd = amb_test_tmpfile("amb_parse_erl_", path, sizeof path);
    assert_true(fd >= 0);
    FILE *src = fdopen(fd, "w");
    assert_non_null(src);
    char hex[1024];
    for (size_t i = 0; i < n; i++) {
        hex_of(texts[i], strlen(texts[i]), hex);
        fprintf(src, "%s\n", hex);
    }
    fclose(src);
    char cmd[1400];
    snprintf(
        cmd, sizeof cmd,
        "erl -noshell -eval '"
        "{ok, B} = file:read_file(\"%s\"),"
        "[begin"
        "  T = unicode:characters_to_list(<<(binary:decode_hex(L))/binary, \" .\">>),"
        "  R = case erl_scan:string(T) of"
        "    {ok, Ts, _} -> case erl_parse:parse_term(Ts) of"
        "      {ok, V} -> binary:encode_hex(unicode:characters_to_binary("
        "                   io_lib:format(\"~w\", [V])));"
        "      _ -> <<\"error\">> end;"
        "    _ -> <<\"error\">> end,"
        "  io:format(\"~s~n\", [R])"
        " end || L <- binary:split(B, <<\"\\n\">>, [global, trim])],"
        "halt().'",
        path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[8192], ours[4096], ours_hex[8192];
    size_t i = 0, mismatches = 0;
    while (fgets(line, sizeof line, p) != NULL && i < n) {
        line[strcspn(line, "\n")] = '\0';
        amb_term t;
        int rc = amb_parse(H, texts[i], strlen(texts[i]), &t, NULL);
        if (rc == 0) {
            size_t len;
            assert_ok(amb_print(t, ours, sizeof ours, &len));
            hex_of(ours, len, ours_hex);
        } else {
            strcpy(ours_hex, "error");
        }
        if (strcmp(line, ours_hex) != 0) {
            fprintf(stderr, "%s: erl says %s, we say %s (%s)\n", texts[i], line, ours_hex,
                    rc == 0 ? ours : amb_err_name(rc));
            mismatches++;
        }
        i++;
    }
    pclose(p);
    unlink(path);
    if (i != n)
        fail_msg("erl answered %zu of %zu texts", i, n);
    if (mismatches != 0)
        fail_msg("%zu of %zu texts read differently from erl", mismatches, n);
}

AMB_TEST_MAIN(HEAP_TEST(parse_atoms), HEAP_TEST(parse_atom_length_limit),
              HEAP_TEST(parse_reserved_words_need_quotes), HEAP_TEST(parse_integers),
              HEAP_TEST(parse_big_integers), HEAP_TEST(parse_char_literals),
              HEAP_TEST(parse_floats), HEAP_TEST(parse_floats_ignore_the_locale),
              HEAP_TEST(parse_strings), HEAP_TEST(parse_binaries),
              HEAP_TEST(parse_tuples_lists_maps), HEAP_TEST(parse_funs_pids_refs_ports),
              HEAP_TEST(parse_whitespace_comments_and_end_dot),
              HEAP_TEST(parse_error_positions),
              HEAP_TEST(parse_depth_limit_without_c_recursion),
              HEAP_TEST(parse_bad_arguments),
              HEAP_TEST(parse_allocation_failures_are_clean),
              HEAP_TEST(parse_round_trips_through_print),
              HEAP_TEST(parse_then_print_then_parse), HEAP_TEST(parse_agrees_with_erl))

/*
 * print.c - the term printer (amb_print, amb_print_alloc, amb_fprint) and
 * amb_type_name: every type, atom quoting, the shortest round-tripping
 * float text, deep nesting without C recursion, the snprintf-like buffer
 * contract, allocation failures, stream failures, bad arguments, and a
 * comparison with the real io_lib:format("~w") of an installed erl.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <unistd.h>

#include "amb_test.h"
#include "term_test.h"
#include "term_internal.h"

static amb_term atom_n(const char *name, size_t len)
{
    amb_term a = AMB_NONE;
    assert_ok(amb_atom_new(name, len, &a));
    return a;
}

static amb_term int_text(const char *decimal)
{
    amb_term t = AMB_NONE;
    assert_ok(amb_int_from_string(H, decimal, strlen(decimal), &t));
    return t;
}

/* A map from alternating keys and values. */
static amb_term map_of(size_t npairs, ...)
{
    amb_term keys[32], values[32];
    assert_true(npairs <= 32);
    va_list ap;
    va_start(ap, npairs);
    for (size_t i = 0; i < npairs; i++) {
        keys[i] = va_arg(ap, amb_term);
        values[i] = va_arg(ap, amb_term);
    }
    va_end(ap);
    return amb_map(H, npairs, keys, values);
}

/* The text of t from amb_print_alloc, checked against amb_print. */
static char *text_of(amb_term t)
{
    char *s = NULL;
    size_t len = 0;
    assert_ok(amb_print_alloc(t, &s, &len));
    assert_int_equal(strlen(s), len);
    return s;
}

static void expect_text(amb_term t, const char *want)
{
    assert_true(t != AMB_NONE);
    assert_term_text(t, want);
    char *s = text_of(t);
    assert_string_equal(s, want);
    amb_free(s);
}

/* ---------------------------------------------------------------------------
 * Every type
 * ------------------------------------------------------------------------ */

AMB_TEST(print_integers)
{
    expect_text(I(0), "0");
    expect_text(I(-1), "-1");
    expect_text(I(42), "42");
    expect_text(I(AMB_SMALL_MAX), "4611686018427387903");
    expect_text(I(AMB_SMALL_MIN), "-4611686018427387904");
    expect_text(I(AMB_SMALL_MAX + 1), "4611686018427387904");
    expect_text(I(AMB_SMALL_MIN - 1), "-4611686018427387905");
    expect_text(I(INT64_MAX), "9223372036854775807");
    expect_text(I(INT64_MIN), "-9223372036854775808");
    expect_text(amb_uint(H, UINT64_MAX), "18446744073709551615");
    const char *big = "-123456789012345678901234567890123456789012345678901234567890";
    expect_text(int_text(big), big);
    /* 2^1000 from its little-endian magnitude. */
    uint8_t mag[126] = {0};
    mag[125] = 1;
    amb_term p = AMB_NONE;
    assert_ok(amb_int_from_bytes(H, false, mag, sizeof mag, &p));
    char *s = text_of(p);
    assert_int_equal(strlen(s), 302);
    assert_memory_equal(
        s, "10715086071862673209484250490600018105614048117055336074437503883703", 68);
    assert_string_equal(s + 292, "5668069376");
    amb_free(s);
}

AMB_TEST(print_floats)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {1.0, "1.0"},
        {0.1, "0.1"},
        {-1.5, "-1.5"},
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {10.0, "10.0"},
        {100.0, "100.0"},
        {1000.0, "1.0e3"},
        {12340.0, "12340.0"},
        {123400.0, "1.234e5"},
        {1234.0, "1234.0"},
        {0.001, "0.001"},
        {0.0001, "0.0001"},
        {0.00012, "1.2e-4"},
        {1.0e-5, "1.0e-5"},
        {0.001234, "0.001234"},
        {1234567.0, "1234567.0"},
        {1.0e9, "1.0e9"},
        {1.0e10, "1.0e10"},
        {1234567890.0, "1234567890.0"},
        {12345678900.0, "12345678900.0"},
        {123456789000.0, "1.23456789e11"},
        {123456789012.0, "123456789012.0"},
        {9007199254740991.0, "9007199254740991.0"},
        {9007199254740992.0, "9.007199254740992e15"},
        {-9007199254740992.0, "-9.007199254740992e15"},
        {123456789012345680.0, "1.2345678901234568e17"},
        {1.0e23, "1.0e23"},
        {3.141592653589793, "3.141592653589793"},
        {2.0e-10, "2.0e-10"},
        {5e-324, "5.0e-324"},
        {-5e-324, "-5.0e-324"},
        {DBL_MIN, "2.2250738585072014e-308"},
        {DBL_MAX, "1.7976931348623157e308"},
        {1.5e300, "1.5e300"},
        {0.3, "0.3"},
        {1.0 / 3.0, "0.3333333333333333"},
        {2.0 / 3.0, "0.6666666666666666"},
        {100.5, "100.5"},
    };
    for (size_t i = 0; i < AMB_COUNTOF(cases); i++)
        expect_text(F(cases[i].v), cases[i].text);
}

AMB_TEST(print_atoms_quoted_exactly_when_erlang_quotes_them)
{
    static const struct {
        const char *name, *text;
    } cases[] = {
        {"a", "a"},
        {"ok", "ok"},
        {"aZ9_@x", "aZ9_@x"},
        {"a@b", "a@b"},
        {"nonode@nohost", "nonode@nohost"},
        {"A", "'A'"},
        {"_a", "'_a'"},
        {"1a", "'1a'"},
        {"", "''"},
        {"a b", "'a b'"},
        {"a.b", "'a.b'"},
        {"a-b", "'a-b'"},
        {"$gen_call", "'$gen_call'"},
        {"EXIT", "'EXIT'"},
        /* The reserved words of OTP 25; maybe and else need a feature. */
        {"and", "'and'"},
        {"end", "'end'"},
        {"fun", "'fun'"},
        {"receive", "'receive'"},
        {"after", "'after'"},
        {"orelse", "'orelse'"},
        {"andalso", "'andalso'"},
        {"cond", "'cond'"},
        {"let", "'let'"},
        {"catch", "'catch'"},
        {"bnot", "'bnot'"},
        {"xor", "'xor'"},
        {"of", "'of'"},
        {"if", "'if'"},
        {"maybe", "maybe"},
        {"else", "else"},
        {"spec", "spec"},
        {"ends", "ends"},
        /* Latin-1 letters count as letters; other characters do not. */
        {"\xc3\x9f\x61", "\xc3\x9f\x61"},       /* ßa (0x61 is 'a') */
        {"a\xc3\x96", "a\xc3\x96"},             /* aÖ */
        {"\xc3\xb6l", "\xc3\xb6l"},             /* öl */
        {"a\xc3\xb7", "'a\xc3\xb7'"},           /* 'a÷' */
        {"a\xc3\x97", "'a\xc3\x97'"},           /* 'a×' */
        {"\xc3\x84rger", "'\xc3\x84rger'"},     /* 'Ärger' */
        {"\xe4\xb8\xad", "'\\x{4E2D}'"},        /* '中' */
        {"a\xf0\x9f\x98\x80", "'a\\x{1F600}'"}, /* U+1F600 */
        {"a\xc2\xa0", "'a\xc2\xa0'"},           /* no-break space */
        {"a\xc2\xad", "'a\xc2\xad'"},           /* soft hyphen */
        {"a\xc2\x85", "'a\\205'"},              /* C1 control: octal */
        {"a\xc4\x80", "'a\\x{100}'"},           /* first beyond Latin-1 */
        /* Escapes inside quotes, as io_lib writes them. */
        {"a'b", "'a\\'b'"},
        {"a\\b", "'a\\\\b'"},
        {"a\"b", "'a\"b'"},
        {"a\nb", "'a\\nb'"},
        {"\t\v\f\r\b", "'\\t\\v\\f\\r\\b'"},
        {"\x1b", "'\\e'"},
        {"\x7f", "'\\d'"},
        {"\x01\x07\x1f", "'\\001\\007\\037'"},
    };
    for (size_t i = 0; i < AMB_COUNTOF(cases); i++)
        expect_text(A(cases[i].name), cases[i].text);
    /* NUL inside a name. */
    expect_text(atom_n("a\0b", 3), "'a\\000b'");
}

AMB_TEST(print_lists_and_strings)
{
    expect_text(AMB_NIL, "[]");
    expect_text(L(I(1), I(2), I(3)), "[1,2,3]");
    expect_text(CONS(I(1), I(2)), "[1|2]");
    expect_text(CONS(A("a"), CONS(A("b"), A("c"))), "[a,b|c]");
    expect_text(L(AMB_NIL), "[[]]");
    expect_text(CONS(AMB_NIL, AMB_NIL), "[[]]");
    expect_text(CONS(L(I(1)), T0()), "[[1]|{}]");
    /* Strings are lists of integers under ~w. */
    expect_text(S("abc"), "[97,98,99]");
    expect_text(S(""), "[]");
    expect_text(S("\xc3\xa4\xe4\xb8\xad"), "[228,20013]");
    /* [1,[2,[3|4]]|5] */
    expect_text(CONS(I(1), CONS(CONS(I(2), L(CONS(I(3), I(4)))), I(5))),
                "[1,[2,[3|4]]|5]");
    expect_text(CONS(CONS(I(1), I(2)), I(3)), "[[1|2]|3]");
}

AMB_TEST(print_tuples)
{
    expect_text(T0(), "{}");
    expect_text(T(A("a")), "{a}");
    expect_text(T(T0()), "{{}}");
    expect_text(T(A("ok"), I(1)), "{ok,1}");
    expect_text(T(I(1), T(I(2), T(I(3)))), "{1,{2,{3}}}");
    expect_text(T(AMB_NIL, map_of(0), BIN()), "{[],#{},<<>>}");
    expect_text(T(A("EXIT"), A("normal")), "{'EXIT',normal}");
}

AMB_TEST(print_binaries_and_bitstrings)
{
    expect_text(BIN(), "<<>>");
    expect_text(BIN(1, 2, 3), "<<1,2,3>>");
    expect_text(BIN('a', 'b', 'c'), "<<97,98,99>>");
    expect_text(BIN(0, 255), "<<0,255>>");
    expect_text(BITS(11, 1, 2 << 5), "<<1,2:3>>");
    expect_text(BITS(3, 5 << 5), "<<5:3>>");
    expect_text(BITS(9, 255, 0x80), "<<255,1:1>>");
    expect_text(BITS(7, 1 << 1), "<<1:7>>");
    expect_text(BITS(1, 0), "<<0:1>>");
    /* Bits below the size are ignored, as the constructor clears them. */
    expect_text(BITS(3, 0xff), "<<7:3>>");

    /* A shared (reference-counted) binary and a sub-binary of it. */
    uint8_t bytes[100];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i + 1);
    amb_term big = amb_binary(H, bytes, sizeof bytes);
    char *s = text_of(big);
    assert_memory_equal(s, "<<1,2,3,4,", 10);
    assert_string_equal(s + strlen(s) - 9, ",99,100>>");
    amb_free(s);
    expect_text(amb_sub_binary(H, big, 97, 3), "<<98,99,100>>");
    expect_text(amb_sub_binary(H, big, 5, 0), "<<>>");
}

AMB_TEST(print_maps_in_key_order)
{
    expect_text(map_of(0), "#{}");
    expect_text(map_of(2, A("a"), I(1), A("b"), I(2)), "#{a => 1,b => 2}");
    expect_text(map_of(2, A("b"), I(1), A("a"), I(2)), "#{a => 2,b => 1}");
    expect_text(map_of(1, map_of(1, A("a"), I(1)), map_of(0)), "#{#{a => 1} => #{}}");
    expect_text(map_of(3, AMB_NIL, A("q"), T0(), A("z"), A("a"), I(1)),
                "#{a => 1,{} => z,[] => q}");
    expect_text(map_of(2, BIN('x'), I(1), BIN('a'), I(2)), "#{<<97>> => 2,<<120>> => 1}");
    expect_text(map_of(1, A("k"), map_of(1, A("k"), map_of(0))), "#{k => #{k => #{}}}");
    /* Whatever the size, pairs print in the map's own order. */
    amb_term keys[100], values[100];
    for (int i = 0; i < 100; i++) {
        keys[i] = I(99 - i);
        values[i] = A(i % 2 ? "odd" : "even");
    }
    amb_term m = amb_map(H, 100, keys, values);
    char *s = text_of(m);
    amb__buf want;
    amb__buf_init(&want);
    amb__buf_append(&want, "#{", 2);
    amb_map_iter it;
    amb_term k, v;
    assert_ok(amb_map_iterator(m, &it));
    for (size_t i = 0; amb_map_next(&it, &k, &v); i++) {
        int64_t kv;
        assert_ok(amb_int_get(k, &kv));
        amb__buf_printf(&want, "%s%lld => %s", i ? "," : "", (long long)kv,
                        amb_atom_name(v, NULL));
    }
    amb__buf_append(&want, "}", 2);
    assert_int_equal(want.err, 0);
    assert_string_equal(s, (const char *)want.data);
    amb__buf_free(&want);
    amb_free(s);
}

AMB_TEST(print_funs_pids_refs_ports)
{
    expect_text(FUN("lists", "map", 2), "fun lists:map/2");
    expect_text(FUN("m", "f", 0), "fun m:f/0");
    expect_text(FUN("m", "f", 255), "fun m:f/255");
    expect_text(FUN("Mod", "f g", 1), "fun 'Mod':'f g'/1");
    /* The emulator's rule (erlang:fun_to_list/1, which ~w uses for funs):
     * '@' needs quotes, ESC is \033, DEL and non-Latin-1 stay as they are. */
    expect_text(FUN("a@b", "c", 1), "fun 'a@b':c/1");
    expect_text(FUN("erlang", "+", 2), "fun erlang:'+'/2");
    expect_text(FUN("m", "\x1b", 0), "fun m:'\\033'/0");
    expect_text(FUN("m", "a\x7f", 0), "fun m:'a\x7f'/0");
    expect_text(FUN("m", "\xc3\x9f", 0), "fun m:\xc3\x9f/0");
    expect_text(FUN("m", "\xe4\xb8\xad", 0), "fun m:'\xe4\xb8\xad'/0");
    expect_text(FUN("m", "a\xc2\x80", 0), "fun m:'a\\200'/0");
    /* Ours, not erl's: reserved words are quoted so the text reads back
     * (erl prints fun and:end/1, which no parser accepts). */
    expect_text(FUN("and", "end", 1), "fun 'and':'end'/1");

    expect_text(amb_pid_term(H, AMB_ATOM_NONODE_NOHOST, 85, 0, 0),
                "#Pid<'nonode@nohost'.85.0.0>");
    expect_text(amb_pid_term(H, A("a b@c"), 4294967295u, 8191, 4294967295u),
                "#Pid<'a b@c'.4294967295.8191.4294967295>");
    expect_text(amb_pid_term(H, A("it's@h"), 1, 2, 3), "#Pid<'it\\'s@h'.1.2.3>");
    const uint32_t w[5] = {1, 2, 3, 4294967295u, 0};
    expect_text(amb_ref_term(H, A("n@h"), 7, w, 3), "#Ref<'n@h'.7.1.2.3>");
    expect_text(amb_ref_term(H, A("n@h"), 0, w, 1), "#Ref<'n@h'.0.1>");
    expect_text(amb_ref_term(H, A("n@h"), 9, w, 5), "#Ref<'n@h'.9.1.2.3.4294967295.0>");
    expect_text(amb_port_term(H, A("n@h"), (uint64_t)1 << 40, 2),
                "#Port<'n@h'.1099511627776.2>");
    const uint8_t ext[] = {0, 0, 0, 7, 1, 255};
    expect_text(amb_closure_term(H, ext, sizeof ext), "#Fun<<<0,0,0,7,1,255>>>");
    expect_text(amb_closure_term(H, ext + 5, 1), "#Fun<<<255>>>");
    /* The same forms nested in containers. */
    expect_text(L(amb_pid_term(H, A("n@h"), 1, 0, 0), FUN("m", "f", 1)),
                "[#Pid<'n@h'.1.0.0>,fun m:f/1]");
}

/* ---------------------------------------------------------------------------
 * The pretty style (AMB_PRINT_PRETTY): erl's ~tp on one line
 * ------------------------------------------------------------------------ */

/* The pretty text of t, the same from all three entry points. */
static void expect_pretty(amb_term t, const char *want)
{
    assert_true(t != AMB_NONE);
    char buf[4096], *s = NULL;
    size_t len = 0, len2 = 0;
    assert_ok(amb_print_ex(t, AMB_PRINT_PRETTY, buf, sizeof buf, &len));
    assert_string_equal(buf, want);
    assert_ok(amb_print_alloc_ex(t, AMB_PRINT_PRETTY, &s, &len2));
    assert_string_equal(s, want);
    assert_int_equal(len, len2);
    amb_free(s);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_ok(amb_fprint_ex(t, AMB_PRINT_PRETTY, f));
    assert_int_equal(ftell(f), (long)len);
    fclose(f);
}

AMB_TEST(pretty_strings_and_binaries)
{
    /* Printable lists are strings, with io_lib's escapes. */
    expect_pretty(S("abc"), "\"abc\"");
    expect_pretty(S("a\"b\\c'd"), "\"a\\\"b\\\\c'd\"");
    expect_pretty(S("t\tn\nr\rv\vb\bf\fe\x1b"), "\"t\\tn\\nr\\rv\\vb\\bf\\fe\\e\"");
    expect_pretty(S("h\xc3\xa9llo \xce\xbb \xf0\x9f\x98\x80"),
                  "\"h\xc3\xa9llo \xce\xbb \xf0\x9f\x98\x80\"");
    expect_pretty(L(S("ab"), S("cd")), "[\"ab\",\"cd\"]");
    expect_pretty(T(S("x"), L(A("a"), S("b"))), "{\"x\",[a,\"b\"]}");
    /* Not printable: control characters, DEL, C1, surrogates' neighbours
     * beyond the range, improper lists; [] stays []. */
    expect_pretty(L(I(7)), "[7]");
    expect_pretty(L(I(0)), "[0]");
    expect_pretty(L(I(127)), "[127]");
    expect_pretty(L(I(159)), "[159]");
    expect_pretty(L(I(160)), "\"\xc2\xa0\"");
    expect_pretty(L(I(0xfffe)), "[65534]");
    expect_pretty(L(I(0xfffd)), "\"\xef\xbf\xbd\"");
    expect_pretty(L(I(0x10ffff)), "\"\xf4\x8f\xbf\xbf\"");
    expect_pretty(L(I(-1)), "[-1]");
    expect_pretty(CONS(I('a'), A("b")), "[97|b]");
    expect_pretty(CONS(I('a'), BIN('b')), "[97|<<\"b\">>]");
    expect_pretty(AMB_NIL, "[]");
    expect_pretty(L(AMB_NIL), "[[]]");
    expect_pretty(L(I('a'), F(1.0)), "[97,1.0]");
    /* Binaries: ASCII as <<"...">>, other UTF-8 with /utf8, other printable
     * Latin-1 bytes as their characters, anything else as bytes. */
    expect_pretty(BIN('a', 'b', 'c'), "<<\"abc\">>");
    expect_pretty(BIN('a', '"', '\\', '\n'), "<<\"a\\\"\\\\\\n\">>");
    expect_pretty(BIN(0xce, 0xbb), "<<\"\xce\xbb\"/utf8>>");
    expect_pretty(BIN(0xc3, 0xa9), "<<\"\xc3\xa9\"/utf8>>");
    expect_pretty(BIN(0xe9), "<<\"\xc3\xa9\">>");
    expect_pretty(BIN(0xa0, 0xff), "<<\"\xc2\xa0\xc3\xbf\">>");
    expect_pretty(BIN('x', 200), "<<\"x\xc3\x88\">>"); /* not UTF-8: Latin-1 */
    expect_pretty(BIN('a', 'b', 1), "<<97,98,1>>");
    expect_pretty(BIN('a', 0), "<<97,0>>");
    expect_pretty(BIN(0xce, 0xbb, 0x01), "<<206,187,1>>");
    expect_pretty(BIN(), "<<>>");
    expect_pretty(BITS(9, 'a', 0x80), "<<97,1:1>>");
    /* Atoms keep their characters (~w escapes them). */
    expect_pretty(A("\xe6\x97\xa5\xe6\x9c\xac"), "'\xe6\x97\xa5\xe6\x9c\xac'");
    expect_text(A("\xe6\x97\xa5\xe6\x9c\xac"), "'\\x{65E5}\\x{672C}'");
    expect_pretty(A("caf\xc3\xa9"), "caf\xc3\xa9");
    expect_pretty(A("a\nb"), "'a\\nb'");
    expect_pretty(A("hello world"), "'hello world'");
    /* Everything else is ~w's text. */
    expect_pretty(T(I(-5), F(0.1), map_of(2, A("k"), S("v"), I(1), BIN('b'))),
                  "{-5,0.1,#{1 => <<\"b\">>,k => \"v\"}}");
}

AMB_TEST(pretty_pids_refs_ports_and_funs_as_erlang_shows_them)
{
    /* A node of this OS process shows its number here, counted from 0: the
     * first runtime of a program is node 0, as in Erlang's shell. */
    unsigned slot;
    assert_ok(amb__node_register(A("pretty@local"), 3, &slot));
    char want[128];
    amb_term pid = amb_pid_term(NULL, A("pretty@local"), 85, 2, 3);
    snprintf(want, sizeof want, "<%u.85.2>", slot - 1);
    expect_pretty(pid, want);
    const uint32_t w[3] = {218499, 3168272385u, 50720718};
    snprintf(want, sizeof want, "#Ref<%u.50720718.3168272385.218499>", slot - 1);
    expect_pretty(amb_ref_term(H, A("pretty@local"), 3, w, 3), want);
    snprintf(want, sizeof want, "#Port<%u.5>", slot - 1);
    expect_pretty(amb_port_term(H, A("pretty@local"), 5, 3), want);
    /* A node elsewhere shows its name. */
    expect_pretty(amb_pid_term(H, A("b@host"), 9, 0, 1), "<b@host.9.0>");
    expect_pretty(amb_pid_term(H, A("n1@127.0.0.1"), 9, 0, 1), "<'n1@127.0.0.1'.9.0>");
    expect_pretty(amb_port_term(H, A("b@host"), 7, 1), "#Port<b@host.7>");
    /* ~w keeps the exact form that amb_parse reads back. */
    expect_text(amb_pid_term(H, A("b@host"), 9, 0, 1), "#Pid<'b@host'.9.0.1>");
    /* A closure: #Fun<Module.OldIndex.OldUniq>, from erl's bytes for
     * fun() -> ok end typed in a shell; a body that cannot be read keeps
     * the ~w form. */
    static const uint8_t fun_etf[] = {
        131, 112, 0,   0,   0,   143, 0,   6,   83,  97,  170, 70,  21,  144, 209,
        189, 241, 235, 98,  209, 166, 235, 8,   0,   0,   0,   43,  0,   0,   0,
        1,   100, 0,   8,   101, 114, 108, 95,  101, 118, 97,  108, 97,  43,  98,
        0,   50,  155, 13,  88,  100, 0,   13,  110, 111, 110, 111, 100, 101, 64,
        110, 111, 104, 111, 115, 116, 0,   0,   0,   9,   0,   0,   0,   0,   0,
        0,   0,   0,   104, 6,   97,  1,   106, 100, 0,   4,   110, 111, 110, 101,
        100, 0,   4,   110, 111, 110, 101, 116, 0,   0,   0,   0,   108, 0,   0,
        0,   1,   104, 5,   100, 0,   6,   99,  108, 97,  117, 115, 101, 97,  1,
        106, 106, 108, 0,   0,   0,   1,   104, 3,   100, 0,   4,   97,  116, 111,
        109, 97,  1,   100, 0,   2,   111, 107, 106, 106};
    amb_term fun;
    assert_ok(amb_etf_decode(H, fun_etf, sizeof fun_etf, NULL, &fun, NULL));
    expect_pretty(fun, "#Fun<erl_eval.43.3316493>");
    const uint8_t ext[] = {0, 0, 0, 7, 1, 255};
    expect_pretty(amb_closure_term(H, ext, sizeof ext), "#Fun<<<0,0,0,7,1,255>>>");
    expect_pretty(FUN("lists", "map", 2), "fun lists:map/2");
    snprintf(want, sizeof want, "[<%u.85.2>,\"x\"]", slot - 1);
    expect_pretty(L(pid, S("x")), want);
}

AMB_TEST(pretty_large_maps_and_bad_flags)
{
    /* Large maps print in their iteration order, strings inside. */
    amb_term keys[40], values[40];
    for (int i = 0; i < 40; i++) {
        keys[i] = I(i);
        values[i] = S("v");
    }
    amb_term m = amb_map(H, 40, keys, values);
    char *s;
    size_t len;
    assert_ok(amb_print_alloc_ex(m, AMB_PRINT_PRETTY, &s, &len));
    amb_map_iter it;
    amb_term k;
    assert_ok(amb_map_iterator(m, &it));
    amb__buf want;
    amb__buf_init(&want);
    amb__buf_append(&want, "#{", 2);
    for (size_t i = 0; amb_map_next(&it, &k, NULL); i++)
        amb__buf_printf(&want, "%s%lld => \"v\"", i ? "," : "",
                        (long long)amb_small_value(k));
    amb__buf_append(&want, "}", 2);
    assert_string_equal(s, (const char *)want.data);
    amb__buf_free(&want);
    amb_free(s);
    /* Unknown flags are misuse. */
    char buf[8];
    assert_rc(AMB_EBADARG, amb_print_ex(I(1), 1u << 5, buf, sizeof buf, &len));
    assert_rc(AMB_EBADARG, amb_print_alloc_ex(I(1), 1u << 5, &s, &len));
    assert_rc(AMB_EBADARG, amb_fprint_ex(I(1), 1u << 5, stdout));
}

AMB_TEST(print_mixed_terms)
{
    expect_text(
        T(A("ok"), L(I(1), F(2.5), S("x")), map_of(1, A("k"), CONS(A("a"), A("b")))),
        "{ok,[1,2.5,[120]],#{k => [a|b]}}");
    expect_text(T(AMB_ATOM_GEN_CALL, T(A("x"), A("y")), A("req")),
                "{'$gen_call',{x,y},req}");
    expect_text(L(T(A("a"), I(1)), T(A("b"), I(2))), "[{a,1},{b,2}]");
}

AMB_TEST(type_names)
{
    static const struct {
        amb_type type;
        const char *name;
    } cases[] = {
        {AMB_T_NONE, "none"},
        {AMB_T_INTEGER, "integer"},
        {AMB_T_FLOAT, "float"},
        {AMB_T_ATOM, "atom"},
        {AMB_T_REF, "reference"},
        {AMB_T_FUN, "fun"},
        {AMB_T_PORT, "port"},
        {AMB_T_PID, "pid"},
        {AMB_T_TUPLE, "tuple"},
        {AMB_T_MAP, "map"},
        {AMB_T_NIL, "nil"},
        {AMB_T_LIST, "list"},
        {AMB_T_BITSTRING, "bitstring"},
    };
    for (size_t i = 0; i < AMB_COUNTOF(cases); i++)
        assert_string_equal(amb_type_name(cases[i].type), cases[i].name);
    assert_non_null(amb_type_name((amb_type)1000));
    assert_non_null(amb_type_name((amb_type)-1));
    assert_string_equal(amb_type_name(amb_type_of(F(1.0))), "float");
    assert_string_equal(amb_type_name(amb_type_of(BIN(1))), "bitstring");
}

/* ---------------------------------------------------------------------------
 * Floats: round trip over many doubles
 * ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    /* xorshift64*: fixed seed, so a failure names a reproducible double. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717u;
}

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* 2^e for -1074 <= e <= 1023, without libm. */
static double power_of_two(int e)
{
    if (e < -1022)
        return bits_to_double((uint64_t)1 << (e + 1074));
    return bits_to_double((uint64_t)(e + 1023) << 52);
}

static bool reads_back(const char *text, double want)
{
    char *end;
    double got = strtod(text, &end);
    return *end == '\0' && double_to_bits(got) == double_to_bits(want);
}

/* Checks one printed float: exact round trip, Erlang float syntax, no
 * shorter digit string reads back, and OTP's choice of layout. */
static void check_float_text(double v, const char *text)
{
    if (!reads_back(text, v))
        fail_msg("%a printed as %s, which reads back as %a", v, text, strtod(text, NULL));

    /* Syntax: -?D+.D+(e-?D+)? and take the digits apart. */
    const char *p = text;
    bool neg = *p == '-';
    p += neg;
    char digits[32];
    size_t nd = 0, int_digits = 0;
    int exp10 = 0;
    while (*p >= '0' && *p <= '9' && nd < 30)
        digits[nd++] = *p++, int_digits++;
    if (int_digits == 0 || *p != '.')
        fail_msg("%s is not an Erlang float", text);
    p++;
    const char *frac = p;
    while (*p >= '0' && *p <= '9' && nd < 30)
        digits[nd++] = *p++;
    size_t frac_digits = (size_t)(p - frac);
    if (frac_digits == 0 || (frac_digits > 1 && p[-1] == '0'))
        fail_msg("%s has a bad fraction", text);
    bool sci = *p == 'e';
    if (sci) {
        p++;
        bool eneg = *p == '-';
        p += eneg;
        if (*p < '0' || *p > '9' || (*p == '0' && p[1] != '\0'))
            fail_msg("%s has a bad exponent", text);
        exp10 = atoi(p);
        exp10 = eneg ? -exp10 : exp10;
        while (*p >= '0' && *p <= '9')
            p++;
        if (int_digits != 1 || digits[0] == '0')
            fail_msg("%s is not normalized", text);
    }
    if (*p != '\0')
        fail_msg("%s has trailing bytes", text);
    if (v == 0)
        return;

    /* Significant digits M and exponent X with |v| ~ M * 10^X. */
    digits[nd] = '\0';
    size_t lead = 0;
    while (lead < nd - 1 && digits[lead] == '0')
        lead++;
    size_t end = nd;
    while (end > lead + 1 && digits[end - 1] == '0')
        end--;
    int x = exp10 - (int)(nd - int_digits) + (int)(nd - end);
    int n = (int)(end - lead);
    unsigned long long m = strtoull(digits + lead, NULL, 10);
    for (size_t i = end; i < nd; i++)
        m /= 10;

    /* Shortest: neither (n-1)-digit neighbour of M*10^X reads back. Any
     * shorter string that did would make one of them read back too. */
    if (n > 1) {
        char cand[64];
        for (int up = 0; up <= 1; up++) {
            snprintf(cand, sizeof cand, "%s%llue%d", neg ? "-" : "",
                     m / 10 + (unsigned)up, x + 1);
            if (reads_back(cand, v))
                fail_msg("%s is not the shortest: %s reads back too", text, cand);
        }
    }

    /* Layout: plain unless the scientific form is shorter or |v| >= 2^53. */
    int point = x + n; /* |v| = 0.M * 10^point */
    size_t plain_len = point >= n  ? (size_t)point + 2
                       : point > 0 ? (size_t)n + 1
                                   : (size_t)(2 - point + n);
    char e[16];
    size_t sci_len =
        (size_t)n + 1 + (n == 1) + (size_t)snprintf(e, sizeof e, "e%d", point - 1);
    bool want_sci = plain_len > sci_len || fabs(v) >= 9007199254740992.0;
    if (sci != want_sci)
        fail_msg("%s: expected the %s layout", text, want_sci ? "scientific" : "plain");
}

static void check_float(double v)
{
    amb_term t = F(v);
    assert_true(t != AMB_NONE);
    char text[64];
    size_t len = 0;
    assert_ok(amb_print(t, text, sizeof text, &len));
    assert_int_equal(strlen(text), len);
    check_float_text(v, text);
    amb_heap_reset(H);
}

AMB_TEST(float_round_trip_random_doubles)
{
    size_t checked = 0;
    /* Every power of two, with both neighbours: the uneven-gap cases. */
    for (int e = -1074; e <= 1023; e++) {
        uint64_t p = double_to_bits(power_of_two(e));
        check_float(bits_to_double(p));
        check_float(-bits_to_double(p - 1));
        if (e < 1023)
            check_float(bits_to_double(p + 1));
        checked += 3;
    }
    const double special[] = {0.0,    -0.0,   DBL_MIN, DBL_MAX, -DBL_MAX,
                              5e-324, 1e-323, 1e23,    1e22,    9007199254740993.0,
                              0.1,    1e15,   1e16,    1e17,    123456789012345678.0,
                              2.5,    0.5e-4, 1e-4,    1e-5,    999999999999999.9};
    for (size_t i = 0; i < AMB_COUNTOF(special); i++, checked++)
        check_float(special[i]);
    /* Random bit patterns: every exponent and mantissa is as likely. */
    for (int i = 0; i < 80000; i++) {
        uint64_t b = rng();
        if (((b >> 52) & 0x7ff) == 0x7ff)
            continue; /* infinities and NaNs are not Erlang floats */
        check_float(bits_to_double(b));
        checked++;
    }
    /* Subnormals. */
    for (int i = 0; i < 10000; i++, checked++)
        check_float(bits_to_double((rng() & 0x800fffffffffffffu) | 1));
    /* Short decimals, the floats people write, at every scale. */
    for (int i = 0; i < 20000; i++, checked++) {
        char src[48];
        snprintf(src, sizeof src, "%llue%d", (unsigned long long)(rng() % 100000000),
                 (int)(rng() % 640) - 330);
        double v = strtod(src, NULL);
        if (!isfinite(v))
            v = 1.0;
        check_float(i % 2 ? -v : v);
    }
    assert_true(checked >= 100000);
}

/* ---------------------------------------------------------------------------
 * Depth: no C recursion
 * ------------------------------------------------------------------------ */

enum { DEEP = 100000 };

static void expect_nested(amb_term t, const char *open, const char *middle,
                          const char *close)
{
    size_t lo = strlen(open), lm = strlen(middle), lc = strlen(close);
    size_t want = DEEP * (lo + lc) + lm;
    char *s = text_of(t);
    assert_int_equal(strlen(s), want);
    for (size_t i = 0; i < DEEP; i++) {
        if (memcmp(s + i * lo, open, lo) != 0 ||
            memcmp(s + DEEP * lo + lm + i * lc, close, lc) != 0)
            fail_msg("nesting broken at level %zu", i);
    }
    assert_memory_equal(s + DEEP * lo, middle, lm);
    /* The fixed-buffer and stream printers walk the same way. */
    size_t len = 0;
    char small[16];
    assert_rc(AMB_EBUFSIZE, amb_print(t, small, sizeof small, &len));
    assert_int_equal(len, want);
    assert_memory_equal(small, s, sizeof small - 1);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_ok(amb_fprint(t, f));
    assert_int_equal(ftell(f), (long)want);
    rewind(f);
    char *back = malloc(want + 1);
    assert_non_null(back);
    assert_int_equal(fread(back, 1, want + 1, f), want);
    assert_memory_equal(back, s, want);
    free(back);
    fclose(f);
    amb_free(s);
}

AMB_TEST(print_deep_nesting)
{
    amb_term t = T(A("x"));
    for (int i = 1; i < DEEP; i++)
        t = T(t);
    expect_nested(t, "{", "x", "}");

    t = L(A("x"));
    for (int i = 1; i < DEEP; i++)
        t = L(t);
    expect_nested(t, "[", "x", "]");

    /* Nested in map values, in the tail of improper lists (each level
     * leaves a ']' pending). */
    amb_term t2 = A("x");
    for (int i = 0; i < DEEP; i++)
        t2 = map_of(1, A("k"), t2);
    expect_nested(t2, "#{k => ", "x", "}");
    amb_term t3 = A("x");
    for (int i = 0; i < DEEP; i++)
        t3 = CONS(I(1), T(t3));
    expect_nested(t3, "[1|{", "x", "}]");
}

AMB_TEST(print_long_list)
{
    amb_term t = AMB_NIL;
    for (int i = 0; i < 1000000; i++)
        t = CONS(I(7), t);
    char *s = text_of(t);
    assert_int_equal(strlen(s), 2 * 1000000 + 1);
    assert_memory_equal(s, "[7,7,", 5);
    assert_string_equal(s + 2 * 1000000 - 4, ",7,7]");
    amb_free(s);
    /* The same list ending in a non-list tail. */
    t = AMB_TUPLE(H, A("x"));
    for (int i = 0; i < 1000000; i++)
        t = CONS(I(7), t);
    s = text_of(t);
    assert_int_equal(strlen(s), 2 * 1000000 + 5);
    assert_string_equal(s + 2 * 1000000 - 4, ",7,7|{x}]");
    amb_free(s);
}

/* ---------------------------------------------------------------------------
 * The buffer contract, allocation failures, streams, bad arguments
 * ------------------------------------------------------------------------ */

static bool valid_utf8(const char *s)
{
    size_t n = strlen(s);
    return amb__utf8_valid((const uint8_t *)s, n, NULL);
}

AMB_TEST(buffer_too_small)
{
    /* Multi-byte characters in atoms (quoted with raw Latin-1 letters) so
     * that some cuts fall inside a UTF-8 sequence. */
    amb_term t = T(A("\xc3\x84rger"), L(I(123456), F(0.1)), A("\xc3\x9f\xc3\xbc\xc3\x9f"),
                   BIN(1, 2));
    const char *full = "{'\xc3\x84rger',[123456,0.1],\xc3\x9f\xc3\xbc\xc3\x9f,<<1,2>>}";
    size_t full_len = strlen(full);
    size_t len = 0;

    assert_rc(AMB_EBUFSIZE, amb_print(t, NULL, 0, &len));
    assert_int_equal(len, full_len);
    assert_rc(AMB_EBUFSIZE, amb_print(t, NULL, 0, NULL));

    char buf[128];
    for (size_t cap = 1; cap <= full_len + 2; cap++) {
        memset(buf, 0x5a, sizeof buf);
        len = 0;
        int rc = amb_print(t, buf, cap, &len);
        assert_int_equal(len, full_len);
        if (cap > full_len) {
            assert_int_equal(rc, 0);
            assert_string_equal(buf, full);
        } else {
            assert_rc(AMB_EBUFSIZE, rc);
            size_t got = strlen(buf);
            assert_true(got <= cap - 1);
            assert_true(got + 3 >= cap - 1); /* backs off at most 3 bytes */
            assert_memory_equal(buf, full, got);
            assert_true(valid_utf8(buf));
        }
        for (size_t i = cap; i < sizeof buf; i++)
            if (buf[i] != 0x5a)
                fail_msg("cap %zu: byte %zu written", cap, i);
    }
}

AMB_TEST(allocation_failures_are_clean)
{
    /* Deep enough to grow the walker's stack, with a big integer (its
     * decimal text is allocated) and enough text to grow the buffer. */
    amb_term t = int_text("123456789012345678901234567890");
    for (int i = 0; i < 200; i++)
        t = T(t, A("padding_padding"));
    char *want = text_of(t);
    size_t want_len = strlen(want);
    char *fixed = malloc(want_len + 1);
    assert_non_null(fixed);

    long failures = 0;
    for (long budget = 0;; budget++) {
        amb_test_alloc_fail((uint64_t)budget, AMB_TEST_FAIL_FOREVER);
        char *s = NULL;
        size_t len = 0;
        int rc = amb_print_alloc(t, &s, &len);
        if (rc == AMB_ENOMEM) {
            assert_null(s);
            failures++;
            continue;
        }
        assert_ok(rc);
        amb_test_alloc_disarm();
        assert_string_equal(s, want);
        assert_int_equal(len, want_len);
        amb_free(s);
        break;
    }
    assert_true(failures >= 3);

    /* The fixed-buffer printer allocates only for its stack and big
     * integers; a failure leaves an empty string. */
    failures = 0;
    for (long budget = 0;; budget++) {
        amb_test_alloc_fail((uint64_t)budget, AMB_TEST_FAIL_FOREVER);
        size_t len = 12345;
        int rc = amb_print(t, fixed, want_len + 1, &len);
        if (rc == AMB_ENOMEM) {
            assert_string_equal(fixed, "");
            assert_int_equal(len, 12345);
            failures++;
            continue;
        }
        assert_ok(rc);
        amb_test_alloc_disarm();
        assert_string_equal(fixed, want);
        break;
    }
    assert_true(failures >= 1);
    amb_test_alloc_disarm();
    free(fixed);
    amb_free(want);
}

AMB_TEST(fprint_writes_and_reports_stream_errors)
{
    amb_term t = T(A("ok"), L(I(1), F(-0.0)), A("A"));
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_ok(amb_fprint(t, f));
    assert_ok(amb_fprint(I(5), f));
    rewind(f);
    char back[64] = {0};
    assert_int_equal(fread(back, 1, sizeof back - 1, f), strlen("{ok,[1,-0.0],'A'}5"));
    assert_string_equal(back, "{ok,[1,-0.0],'A'}5");
    fclose(f);

    /* A stream opened for reading cannot be written. */
    FILE *ro = fopen("/dev/null", "r");
    assert_non_null(ro);
    assert_rc(AMB_EIO, amb_fprint(t, ro));
    fclose(ro);

    /* A full device fails the write; unbuffered, fwrite sees it at once. */
    FILE *full = fopen("/dev/full", "w");
    if (full != NULL) {
        setvbuf(full, NULL, _IONBF, 0);
        assert_rc(AMB_EIO, amb_fprint(t, full));
        /* Output larger than the staging buffer fails the same way. */
        amb_term big = AMB_NIL;
        for (int i = 0; i < 5000; i++)
            big = CONS(I(i), big);
        assert_rc(AMB_EIO, amb_fprint(big, full));
        fclose(full);
    }
}

AMB_TEST(bad_arguments)
{
    char buf[16] = "untouched";
    size_t len = 777;
    assert_rc(AMB_EBADARG, amb_print(I(1), NULL, 10, &len));
    assert_rc(AMB_EBADARG, amb_print(AMB_NONE, buf, sizeof buf, &len));
    assert_int_equal(len, 777);
    assert_string_equal(buf, "untouched");
    char *s = (char *)buf;
    assert_rc(AMB_EBADARG, amb_print_alloc(I(1), NULL, &len));
    assert_rc(AMB_EBADARG, amb_print_alloc(AMB_NONE, &s, &len));
    assert_ptr_equal(s, buf);
    assert_int_equal(len, 777);
    assert_rc(AMB_EBADARG, amb_fprint(I(1), NULL));
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_rc(AMB_EBADARG, amb_fprint(AMB_NONE, f));
    assert_int_equal(ftell(f), 0);
    fclose(f);
    /* A word that is no term, inside a term: refused, nothing printed. */
    amb_term corrupt = T(I(1), (amb_term)14);
    assert_true(corrupt != AMB_NONE);
    assert_rc(AMB_EBADARG, amb_print(corrupt, buf, sizeof buf, &len));
    assert_string_equal(buf, "");
    assert_int_equal(len, 777);
    assert_rc(AMB_EBADARG, amb_print_alloc(corrupt, &s, NULL));
    /* len may be NULL; cap 0 with a NULL buffer measures. */
    assert_ok(amb_print(I(12), buf, sizeof buf, NULL));
    assert_string_equal(buf, "12");
    assert_ok(amb_print_alloc(A("x"), &s, NULL));
    assert_string_equal(s, "x");
    amb_free(s);
}

/* ---------------------------------------------------------------------------
 * Against the real thing: io_lib:format("~w") of an installed erl
 * ------------------------------------------------------------------------ */

typedef struct erl_case {
    const char *erl; /* an Erlang expression */
    amb_term term;   /* the same term built in C */
} erl_case;

static bool erl_installed(void)
{
    return system("command -v erl >/dev/null 2>&1") == 0;
}

static void hex_of(const char *s, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        *out++ = hex[(uint8_t)*s >> 4];
        *out++ = hex[(uint8_t)*s & 15];
    }
    *out = '\0';
}

/* Evaluates every expression in one erl run and compares the hex of the
 * UTF-8 of io_lib:format("~w", [Value]) with amb_print's text. */
static void compare_with_erl(const erl_case *cases, size_t n)
{
    char path[64];
    int fd = amb_test_tmpfile("amb_print_erl_", path, sizeof path);
    assert_true(fd >= 0);
    FILE *src = fdopen(fd, "w");
    assert_non_null(src);
    for (size_t i = 0; i < n; i++)
        fprintf(src, "%s.\n", cases[i].erl);
    fclose(src);

    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "erl -noshell -eval '"
             "{ok, B} = file:read_file(\"%s\"),"
             "[begin"
             "  {ok, Ts, _} = erl_scan:string(unicode:characters_to_list(L)),"
             "  {ok, Es} = erl_parse:parse_exprs(Ts),"
             "  {value, V, _} = erl_eval:exprs(Es, []),"
             "  S = lists:flatten(io_lib:format(\"~w\", [V])),"
             "  io:format(\"~s~n\", [binary:encode_hex(unicode:characters_to_binary(S))])"
             " end || L <- binary:split(B, <<\"\\n\">>, [global, trim])],"
             "halt().'",
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[8192], ours[4096], ours_hex[8192];
    size_t i = 0, mismatches = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (i >= n) {
            fprintf(stderr, "erl said more: %s\n", line);
            mismatches++;
            continue;
        }
        size_t len;
        assert_true(cases[i].term != AMB_NONE);
        assert_ok(amb_print(cases[i].term, ours, sizeof ours, &len));
        hex_of(ours, ours_hex);
        if (strcmp(line, ours_hex) != 0) {
            fprintf(stderr, "%s: erl printed hex %s, we printed %s (hex %s)\n",
                    cases[i].erl, line, ours, ours_hex);
            mismatches++;
        }
        i++;
    }
    int status = pclose(p);
    unlink(path);
    if (i != n)
        fail_msg("erl printed %zu of %zu terms (exit status %d); the next one was %s", i,
                 n, status, i < n ? cases[i].erl : "-");
    if (mismatches != 0)
        fail_msg("%zu of %zu terms differ from erl", mismatches, n);
}

AMB_TEST(terms_match_erl)
{
    if (!erl_installed()) {
        skip();
        return;
    }
    uint8_t mag[126] = {0};
    mag[125] = 1;
    amb_term two_1000 = AMB_NONE;
    assert_ok(amb_int_from_bytes(H, false, mag, sizeof mag, &two_1000));
    uint8_t seq[100];
    for (size_t i = 0; i < sizeof seq; i++)
        seq[i] = (uint8_t)(i + 1);
    amb_term squares_k[20], squares_v[20];
    for (int i = 0; i < 20; i++) {
        squares_k[i] = I(i + 1);
        squares_v[i] = I((i + 1) * (i + 1));
    }

    const erl_case cases[] = {
        /* integers */
        {"0", I(0)},
        {"-1", I(-1)},
        {"4611686018427387903", I(AMB_SMALL_MAX)},
        {"4611686018427387904", I(AMB_SMALL_MAX + 1)},
        {"-4611686018427387905", I(AMB_SMALL_MIN - 1)},
        {"18446744073709551616", int_text("18446744073709551616")},
        {"-123456789012345678901234567890", int_text("-123456789012345678901234567890")},
        {"1 bsl 1000", two_1000},
        /* floats */
        {"1.0", F(1.0)},
        {"0.1", F(0.1)},
        {"-0.0", F(-0.0)},
        {"0.0", F(0.0)},
        {"100.0", F(100.0)},
        {"1000.0", F(1000.0)},
        {"0.0001", F(0.0001)},
        {"0.00012", F(0.00012)},
        {"1.0e-5", F(1e-5)},
        {"5.0e-324", F(5e-324)},
        {"1.7976931348623157e308", F(DBL_MAX)},
        {"2.2250738585072014e-308", F(DBL_MIN)},
        {"9007199254740991.0", F(9007199254740991.0)},
        {"9007199254740992.0", F(9007199254740992.0)},
        {"123456789012345680.0", F(123456789012345680.0)},
        {"1.0e23", F(1e23)},
        {"-3.14159", F(-3.14159)},
        {"12345678.9", F(12345678.9)},
        {"12345678900.0", F(12345678900.0)},
        {"1.0e15", F(1e15)},
        {"2.5e-7", F(2.5e-7)},
        {"1/3", F(1.0 / 3.0)},
        /* atoms */
        {"a", A("a")},
        {"'A'", A("A")},
        {"'_a'", A("_a")},
        {"'a b'", A("a b")},
        {"'and'", A("and")},
        {"'end'", A("end")},
        {"'fun'", A("fun")},
        {"'receive'", A("receive")},
        {"'catch'", A("catch")},
        {"'orelse'", A("orelse")},
        {"'cond'", A("cond")},
        {"'let'", A("let")},
        {"maybe", A("maybe")},
        {"else", A("else")},
        {"''", A("")},
        {"a@b", A("a@b")},
        {"'a.b'", A("a.b")},
        {"'1a'", A("1a")},
        {"aZ9_@", A("aZ9_@")},
        {"'\xc3\x9f\x61'", A("\xc3\x9f\x61")},
        {"'a\xc3\x96'", A("a\xc3\x96")},
        {"'a\xc3\xb7'", A("a\xc3\xb7")},
        {"'a\xc3\x97'", A("a\xc3\x97")},
        {"'\xc3\x84rger'", A("\xc3\x84rger")},
        {"'\xc3\xbf'", A("\xc3\xbf")},
        {"'\xc3\xa0\xc3\x80'", A("\xc3\xa0\xc3\x80")},
        {"'\xe4\xb8\xad\xe6\x96\x87'", A("\xe4\xb8\xad\xe6\x96\x87")},
        {"'a\\x{1F600}'", A("a\xf0\x9f\x98\x80")},
        {"'a\\x{100}'", A("a\xc4\x80")},
        {"'a\\nb'", A("a\nb")},
        {"'a\\'b'", A("a'b")},
        {"'a\\\\b'", A("a\\b")},
        {"'a\"b'", A("a\"b")},
        {"'\\e\\d\\b\\t\\v\\f\\r'", A("\x1b\x7f\b\t\v\f\r")},
        {"'\\000\\001\\037'", atom_n("\0\x01\x1f", 3)},
        {"'\\200\\237\\240\\255'", A("\xc2\x80\xc2\x9f\xc2\xa0\xc2\xad")},
        {"'$gen_call'", AMB_ATOM_GEN_CALL},
        /* lists */
        {"[]", AMB_NIL},
        {"[1,2,3]", L(I(1), I(2), I(3))},
        {"[1|2]", CONS(I(1), I(2))},
        {"[a,b|c]", CONS(A("a"), CONS(A("b"), A("c")))},
        {"[[]]", L(AMB_NIL)},
        {"\"abc\"", S("abc")},
        {"\"\"", S("")},
        {"\"\xc3\xa4\xe4\xb8\xad\"", S("\xc3\xa4\xe4\xb8\xad")},
        {"[1,[2,[3|4]]|5]", CONS(I(1), CONS(CONS(I(2), L(CONS(I(3), I(4)))), I(5)))},
        {"[[1|2]|3]", CONS(CONS(I(1), I(2)), I(3))},
        {"[{}|{}]", CONS(T0(), T0())},
        /* tuples */
        {"{}", T0()},
        {"{a}", T(A("a"))},
        {"{{}}", T(T0())},
        {"{1,{2,{3}}}", T(I(1), T(I(2), T(I(3))))},
        {"{[],#{},<<>>}", T(AMB_NIL, map_of(0), BIN())},
        /* binaries */
        {"<<>>", BIN()},
        {"<<1,2,3>>", BIN(1, 2, 3)},
        {"<<\"abc\">>", BIN('a', 'b', 'c')},
        {"<<1,2:3>>", BITS(11, 1, 2 << 5)},
        {"<<5:3>>", BITS(3, 5 << 5)},
        {"<<255,1:1>>", BITS(9, 255, 0x80)},
        {"<<1:7>>", BITS(7, 2)},
        {"<<0:1>>", BITS(1, 0)},
        {"list_to_binary(lists:seq(1, 100))", amb_binary(H, seq, sizeof seq)},
        /* maps (small maps print in term order) */
        {"#{}", map_of(0)},
        {"#{a => 1, b => 2}", map_of(2, A("a"), I(1), A("b"), I(2))},
        {"#{b => 1, a => 2}", map_of(2, A("b"), I(1), A("a"), I(2))},
        {"#{#{a => 1} => #{}}", map_of(1, map_of(1, A("a"), I(1)), map_of(0))},
        {"#{[] => q, {} => z, a => 1}",
         map_of(3, AMB_NIL, A("q"), T0(), A("z"), A("a"), I(1))},
        {"#{1 => x, a => y, \"s\" => <<>>}",
         map_of(3, I(1), A("x"), A("a"), A("y"), S("s"), BIN())},
        {"#{<<\"x\">> => 1, <<\"a\">> => 2}", map_of(2, BIN('x'), I(1), BIN('a'), I(2))},
        {"#{-1 => a, 1 => b, a => c}",
         map_of(3, I(-1), A("a"), I(1), A("b"), A("a"), A("c"))},
        {"#{{1,2} => a, {0,0,0} => b, [a] => c}",
         map_of(3, T(I(1), I(2)), A("a"), T(I(0), I(0), I(0)), A("b"), L(A("a")),
                A("c"))},
        {"#{<<1:3>> => a, <<1>> => b, <<>> => c, <<0,1>> => d}",
         map_of(4, BITS(3, 1 << 5), A("a"), BIN(1), A("b"), BIN(), A("c"), BIN(0, 1),
                A("d"))},
        {"#{1.5 => a, 2.5 => b}", map_of(2, F(1.5), A("a"), F(2.5), A("b"))},
        {"maps:from_list([{I, I * I} || I <- lists:seq(1, 20)])",
         amb_map(H, 20, squares_k, squares_v)},
        /* export funs (printed by erlang:fun_to_list/1) */
        {"fun lists:map/2", FUN("lists", "map", 2)},
        {"fun 'Mod':'f g'/0", FUN("Mod", "f g", 0)},
        {"fun 'a@b':c/1", FUN("a@b", "c", 1)},
        {"fun erlang:'+'/2", FUN("erlang", "+", 2)},
        {"fun m:'_x'/0", FUN("m", "_x", 0)},
        {"fun m:'\\e'/0", FUN("m", "\x1b", 0)},
        {"fun m:'a\\d'/0", FUN("m", "a\x7f", 0)},
        {"fun m:'a\\nb'/255", FUN("m", "a\nb", 255)},
        {"fun m:'a\\'b'/1", FUN("m", "a'b", 1)},
        /* mixed */
        {"{ok, [1, 2.5, \"x\"], #{k => [a|b]}}",
         T(A("ok"), L(I(1), F(2.5), S("x")), map_of(1, A("k"), CONS(A("a"), A("b"))))},
        {"[{a,1},{b,2}]", L(T(A("a"), I(1)), T(A("b"), I(2)))},
        {"{'EXIT', normal}", T(AMB_ATOM_EXIT, AMB_ATOM_NORMAL)},
        {"{'$gen_call', {x, y}, req}", T(AMB_ATOM_GEN_CALL, T(A("x"), A("y")), A("req"))},
    };
    assert_true(AMB_COUNTOF(cases) >= 100);
    compare_with_erl(cases, AMB_COUNTOF(cases));
}

AMB_TEST(floats_match_erl)
{
    if (!erl_installed()) {
        skip();
        return;
    }
    /* Every power of two (the uneven gaps) and random bit patterns. */
    enum { NPOW = 2098, NRAND = 3000 };
    static erl_case cases[NPOW + NRAND];
    static char exprs[NPOW + NRAND][64];
    for (int i = 0; i < NPOW + NRAND; i++) {
        uint64_t b;
        if (i < NPOW) {
            b = double_to_bits(power_of_two(i - 1074));
        } else {
            do
                b = rng();
            while (((b >> 52) & 0x7ff) == 0x7ff);
        }
        snprintf(exprs[i], sizeof exprs[i], "begin <<F/float>> = <<%llu:64>>, F end",
                 (unsigned long long)b);
        cases[i].erl = exprs[i];
        cases[i].term = F(bits_to_double(b));
    }
    compare_with_erl(cases, AMB_COUNTOF(cases));
}

AMB_TEST_MAIN(HEAP_TEST(print_integers), HEAP_TEST(print_floats),
              HEAP_TEST(print_atoms_quoted_exactly_when_erlang_quotes_them),
              HEAP_TEST(print_lists_and_strings), HEAP_TEST(print_tuples),
              HEAP_TEST(print_binaries_and_bitstrings),
              HEAP_TEST(print_maps_in_key_order), HEAP_TEST(print_funs_pids_refs_ports),
              HEAP_TEST(print_mixed_terms), HEAP_TEST(type_names),
              HEAP_TEST(pretty_strings_and_binaries),
              HEAP_TEST(pretty_pids_refs_ports_and_funs_as_erlang_shows_them),
              HEAP_TEST(pretty_large_maps_and_bad_flags),
              HEAP_TEST(float_round_trip_random_doubles), HEAP_TEST(print_deep_nesting),
              HEAP_TEST(print_long_list), HEAP_TEST(buffer_too_small),
              HEAP_TEST(allocation_failures_are_clean),
              HEAP_TEST(fprint_writes_and_reports_stream_errors),
              HEAP_TEST(bad_arguments), HEAP_TEST(terms_match_erl),
              HEAP_TEST(floats_match_erl))

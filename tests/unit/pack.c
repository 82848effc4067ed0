/*
 * pack.c - format strings: amb_pack / amb_pack_ex / amb_vpack build terms
 * and amb_match / amb_match_ex / amb_vmatch match them, per the directive
 * table of term.h. Every directive both ways, literals of every kind in
 * patterns, map patterns, nothing bound on failure, ~s buffers, bad format
 * strings (whatever the term), bad C values, big integers, deep nesting on
 * a small stack, and that matching a reply allocates nothing.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>

#include "amb_test.h"
#include "term_test.h"
#include "scan.h"

static amb_term parse(const char *text)
{
    amb_term t = AMB_NONE;
    assert_ok(amb_parse(H, text, strlen(text), &t, NULL));
    return t;
}

static amb_term a_pid(void)
{
    return amb_pid_term(H, A("n@h"), 1, 2, 3);
}

static amb_term a_ref(uint32_t w)
{
    uint32_t words[3] = {w, 2, 3};
    return amb_ref_term(H, A("n@h"), 1, words, 3);
}

/* ---------------------------------------------------------------------------
 * amb_pack
 * ------------------------------------------------------------------------ */

AMB_TEST(pack_literals_are_amb_parse)
{
    static const char *const texts[] = {
        "ok",
        "'hello world'",
        "42",
        "-7",
        "123456789012345678901234567890",
        "16#ff",
        "$a",
        "1.5",
        "-0.0",
        "\"str\" \"ing\"",
        "<<1,2,3:4>>",
        "<<\"abc\">>",
        "{}",
        "{a,{b,c}}",
        "[]",
        "[1,2|3]",
        "#{a => 1, a => 2}",
        "fun m:f/2",
        "#Pid<'n@h'.1.2.3>",
        "#Ref<'n@h'.1.2.3.4>",
        "#Port<'n@h'.5.6>",
        "#Fun<<<1,2>>>",
        "{a}.",
        "% comment\n[x]",
    };
    for (size_t i = 0; i < AMB_COUNTOF(texts); i++) {
        amb_term t = amb_pack(H, texts[i]);
        assert_true(t != AMB_NONE);
        if (!amb_equal(t, parse(texts[i])))
            fail_msg("amb_pack(%s) differs from amb_parse", texts[i]);
    }
}

AMB_TEST(pack_every_directive)
{
    const uint8_t bytes[] = {1, 2, 3};
    amb_term pid = a_pid(), ref = a_ref(1), any = T(A("x"), I(1));
    amb_term t = AMB_NONE;
    amb_format_error err = {0};
    assert_ok(amb_pack_ex(H, &t, &err, "{~a, ~i, ~l, ~u, ~f, ~s, ~b, ~w, ~t, ~p, ~r, ~v}",
                          "atom", -5, (int64_t)1 << 62, UINT64_MAX, 2.5, "h\xc3\xa9",
                          bytes, sizeof bytes, any, AMB_NIL, pid, ref, A("v")));
    amb_term want =
        T(A("atom"), I(-5), I((int64_t)1 << 62), amb_uint(H, UINT64_MAX), F(2.5),
          S("h\xc3\xa9"), BIN(1, 2, 3), any, AMB_NIL, pid, ref, A("v"));
    assert_true(amb_equal(t, want));
    assert_term_text(t, "{atom,-5,4611686018427387904,18446744073709551615,2.5,[104,233],"
                        "<<1,2,3>>,{x,1},[],#Pid<'n@h'.1.2.3>,#Ref<'n@h'.1.1.2.3>,v}");
    /* Directives in every position: lists, tails, maps (keys and values). */
    t = amb_pack(H, "[~i, ~i | ~w]", 1, 2, L(I(3)));
    assert_true(amb_equal(t, L(I(1), I(2), I(3))));
    t = amb_pack(H, "#{~a => ~i, k => ~s}", "key", 7, "");
    assert_true(amb_equal(t, parse("#{key => 7, k => []}")));
    t = amb_pack(H, "~w", A("alone"));
    assert_true(t == A("alone"));
    /* Empty and odd C values. */
    t = amb_pack(H, "{~s, ~b, ~a, ~f}", "", NULL, (size_t)0, "", -0.0);
    assert_true(amb_equal(t, T(AMB_NIL, BIN(), A(""), F(-0.0))));
}

AMB_TEST(pack_integer_ranges)
{
    amb_term t = amb_pack(H, "{~i, ~i, ~l, ~l, ~u, ~u}", INT_MIN, INT_MAX, INT64_MIN,
                          INT64_MAX, (uint64_t)0, UINT64_MAX);
    assert_term_text(t,
                     "{-2147483648,2147483647,-9223372036854775808,9223372036854775807,0,"
                     "18446744073709551615}");
    t = amb_pack(H, "{~l, ~l}", (int64_t)AMB_SMALL_MAX, (int64_t)AMB_SMALL_MAX + 1);
    assert_true(amb_is_small(amb_tuple_elem(t, 0)));
    assert_false(amb_is_small(amb_tuple_elem(t, 1)));
    /* Literal integers of any size, next to directives. */
    t = amb_pack(H, "{-123456789012345678901234567890, ~i, 16#FFFFFFFFFFFFFFFFFFFF}", 1);
    assert_term_text(t, "{-123456789012345678901234567890,1,1208925819614629174706175}");
}

static void pack_fails(int code, const char *fmt, size_t pos, const char *text_part, ...)
{
    va_list ap;
    amb_term t = (amb_term)777;
    amb_format_error err = {.position = 999};
    va_start(ap, text_part);
    int rc = amb_vpack(H, &t, &err, fmt, ap);
    va_end(ap);
    if (rc != code)
        fail_msg("amb_vpack(%s) returned %s, expected %s", fmt, amb_err_name(rc),
                 amb_err_name(code));
    assert_int_equal(t, 777);
    if (err.position != pos)
        fail_msg("amb_vpack(%s): error at %zu (%s), expected %zu", fmt, err.position,
                 err.text, pos);
    if (text_part != NULL && strstr(err.text, text_part) == NULL)
        fail_msg("amb_vpack(%s): error text \"%s\" lacks \"%s\"", fmt, err.text,
                 text_part);
    assert_true(strlen(err.text) < sizeof err.text);
}

AMB_TEST(pack_bad_formats)
{
    pack_fails(AMB_EFORMAT, "{ok, _}", 5, "'_'");
    pack_fails(AMB_EFORMAT, "{ok, ~q}", 5, "unknown directive");
    pack_fails(AMB_EFORMAT, "~", 0, "unknown directive");
    pack_fails(AMB_EFORMAT, "{ok, ~%}", 5, "unknown directive");
    pack_fails(AMB_EFORMAT, "{ok, ~i", 7, "unclosed", 1);
    pack_fails(AMB_EFORMAT, "{ok}}", 4, "after the term");
    pack_fails(AMB_EFORMAT, "[ok}", 3, NULL);
    pack_fails(AMB_EFORMAT, "", 0, "end of input");
    pack_fails(AMB_EFORMAT, "{a b}", 3, NULL);
    pack_fails(AMB_EFORMAT, "{A}", 1, "variable");
    pack_fails(AMB_EFORMAT, "\"abc", 0, "unterminated");
    pack_fails(AMB_EFORMAT, "#{a := ~i, b}", 12, "'=>'", 1);
    pack_fails(AMB_EFORMAT, "~i ~i", 3, NULL, 1, 2);
    pack_fails(AMB_EFORMAT, "\x01", 0, NULL);
    /* 64 directives are fine, 65 are not. */
    char fmt[512];
    size_t n = 0;
    fmt[n++] = '{';
    for (int i = 0; i < 65; i++) {
        memcpy(fmt + n, i ? ",~i" : "~i", i ? 3 : 2);
        n += i ? 3 : 2;
    }
    fmt[n++] = '}';
    fmt[n] = '\0';
    pack_fails(AMB_EFORMAT, fmt, n - 3, "more than", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
               12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
               31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,
               50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64);
    memcpy(fmt + n - 4, "}", 2); /* drop the 65th */
    amb_term t = amb_pack(H, fmt, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                          16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                          32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
                          48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63);
    assert_int_equal(amb_tuple_arity(t), 64);
    assert_true(amb_tuple_elem(t, 63) == I(63));
    /* Nesting beyond AMB_PARSE_MAX_DEPTH is a bad format too. */
    char *deep = malloc(AMB_PARSE_MAX_DEPTH + 2);
    assert_non_null(deep);
    memset(deep, '[', AMB_PARSE_MAX_DEPTH + 1);
    deep[AMB_PARSE_MAX_DEPTH + 1] = '\0';
    pack_fails(AMB_EFORMAT, deep, AMB_PARSE_MAX_DEPTH, "deeper");
    free(deep);
    /* amb_pack says AMB_NONE for all of these. */
    assert_true(amb_pack(H, "{ok, _}") == AMB_NONE);
    assert_true(amb_pack(H, "{ok") == AMB_NONE);
    /* err may be NULL. */
    assert_rc(AMB_EFORMAT, amb_pack_ex(H, &t, NULL, "{"));
}

AMB_TEST(pack_bad_values)
{
    pack_fails(AMB_EBADARG, "{x, ~a}", 4, "~a", (const char *)NULL);
    pack_fails(AMB_EBADARG, "{x, ~a}", 4, "~a", "\xff");
    char long_name[300];
    memset(long_name, 'a', 256);
    long_name[256] = '\0';
    pack_fails(AMB_EBADARG, "~a", 0, "~a", long_name);
    pack_fails(AMB_EBADARG, "[~s]", 1, "UTF-8", "ab\xc3");
    pack_fails(AMB_EBADARG, "[~s]", 1, "NULL", (const char *)NULL);
    pack_fails(AMB_EBADARG, "~f", 0, "NaN", NAN);
    pack_fails(AMB_EBADARG, "~f", 0, "NaN", INFINITY);
    pack_fails(AMB_EBADARG, "~b", 0, "NULL", (const void *)NULL, (size_t)3);
    pack_fails(AMB_EBADARG, "{~p}", 1, "pid", a_ref(1));
    pack_fails(AMB_EBADARG, "{~r}", 1, "reference", a_pid());
    /* AMB_NONE from an earlier failed build is passed on, not packed. */
    pack_fails(AMB_EBADARG, "{ok, ~w}", 5, "AMB_NONE", AMB_NONE);
    pack_fails(AMB_EBADARG, "{ok, ~v}", 5, "AMB_NONE", AMB_NONE);
    assert_true(amb_pack(H, "{ok, ~w}", AMB_NONE) == AMB_NONE);
    /* Arguments. */
    amb_term t = (amb_term)777;
    assert_rc(AMB_EBADARG, amb_pack_ex(NULL, &t, NULL, "ok"));
    assert_rc(AMB_EBADARG, amb_pack_ex(H, NULL, NULL, "ok"));
    assert_rc(AMB_EBADARG, amb_pack_ex(H, &t, NULL, NULL));
    assert_int_equal(t, 777);
    assert_true(amb_pack(NULL, "ok") == AMB_NONE);
}

/* ---------------------------------------------------------------------------
 * amb_match: literals
 * ------------------------------------------------------------------------ */

static void matches(amb_term t, const char *fmt)
{
    amb_format_error err = {0};
    int rc = amb_match_ex(t, &err, fmt);
    if (rc != 0) {
        char text[512];
        amb_print(t, text, sizeof text, NULL);
        fail_msg("%s does not match %s: %s (%s)", text, fmt, amb_err_name(rc), err.text);
    }
}

static void no_match(amb_term t, const char *fmt)
{
    int rc = amb_match(t, fmt);
    if (rc != AMB_ENOMATCH) {
        char text[512];
        amb_print(t, text, sizeof text, NULL);
        fail_msg("%s against %s: %s, expected AMB_ENOMATCH", text, fmt, amb_err_name(rc));
    }
}

AMB_TEST(match_literals)
{
    matches(A("ok"), "ok");
    matches(A("ok"), "'ok'");
    matches(A("a b"), "'a b'");
    matches(A("a'b\n"), "'a\\'b\\n'");
    matches(A("\xe6\x97\xa5"), "'\\x{65e5}'");
    no_match(A("ok"), "'ok '");
    no_match(A("ok"), "ko");
    no_match(A("ok"), "'o'");
    no_match(A("o"), "'o\\x{6b}'");
    no_match(S("ok"), "ok");
    no_match(A("ok"), "never_made_atom_x1y2z3"); /* matching makes no atom */
    assert_rc(AMB_ENOTFOUND,
              amb_atom_existing("never_made_atom_x1y2z3", 22, &(amb_term){0}));

    matches(I(0), "0");
    matches(I(0), "-0");
    matches(I(-5), "-5");
    matches(I(255), "16#ff");
    matches(I('a'), "$a");
    matches(I(-97), "-$a");
    matches(I(AMB_SMALL_MAX + 1), "4611686018427387904");
    matches(I(INT64_MIN), "-9223372036854775808");
    matches(amb_uint(H, UINT64_MAX), "18446744073709551615");
    no_match(amb_uint(H, UINT64_MAX), "-18446744073709551615");
    no_match(I(5), "-5");
    no_match(I(5), "6");
    no_match(I(1), "1.0"); /* an integer pattern does not match a float ... */
    no_match(F(1.0), "1"); /* ... nor the other way */
    no_match(A("a"), "1");

    matches(F(1.5), "1.5");
    matches(F(-1.5), "-1.5");
    matches(F(0.1), "0.1");
    matches(F(1e300), "1.0e300");
    matches(F(-0.0), "0.0"); /* =:= of OTP 25: -0.0 =:= 0.0 */
    no_match(F(0.1 + 0.2), "0.3");
    no_match(F(1.5), "1.25");

    matches(AMB_NIL, "\"\"");
    matches(AMB_NIL, "[]");
    matches(S("abc"), "\"abc\"");
    matches(S("abc"), "\"a\" \"bc\"");
    matches(S("abc"), "[$a, $b, $c]");
    matches(S("h\xc3\xa9\xe4\xb8\xad"), "\"h\xc3\xa9\\x{4e2d}\"");
    no_match(S("abc"), "\"ab\"");
    no_match(S("ab"), "\"abc\"");
    no_match(CONS(I('a'), I('b')), "\"ab\"");

    matches(BIN(), "<<>>");
    matches(BIN(1, 2, 3), "<<1,2,3>>");
    matches(BIN('a', 'b'), "<<\"ab\">>");
    matches(BIN(34), "<<1:3, 2:5>>");
    matches(amb_bitstring(H, (const uint8_t[]){1, 0x40}, 11), "<<1,2:3>>");
    no_match(amb_bitstring(H, (const uint8_t[]){1, 0x40}, 11), "<<1,2:4>>");
    no_match(BIN(1, 2, 3), "<<1,2>>");
    no_match(BIN(1, 2), "<<1,2,3>>");
    no_match(BIN(1, 2), "[1,2]");

    matches(a_pid(), "#Pid<'n@h'.1.2.3>");
    matches(a_pid(), "#Pid<n@h.1.2.3>");
    no_match(a_pid(), "#Pid<'n@h'.1.2.4>");
    no_match(a_pid(), "#Pid<'m@h'.1.2.3>");
    matches(a_ref(1), "#Ref<'n@h'.1.1.2.3>");
    no_match(a_ref(1), "#Ref<'n@h'.1.1.2>");
    no_match(a_pid(), "#Ref<'n@h'.1.2.3>");
    matches(amb_port_term(H, A("n@h"), 5, 6), "#Port<'n@h'.5.6>");
    no_match(amb_port_term(H, A("n@h"), 5, 6), "#Port<'n@h'.5.7>");
    matches(amb_export_term(H, A("m"), A("f"), 2), "fun m:f/2");
    no_match(amb_export_term(H, A("m"), A("f"), 2), "fun m:f/3");
    no_match(amb_export_term(H, A("m"), A("f"), 2), "fun m:g/2");
    const uint8_t ext[] = {0, 0, 0, 7, 1, 2, 3};
    matches(amb_closure_term(H, ext, sizeof ext), "#Fun<<<0,0,0,7,1,2,3>>>");
    no_match(amb_closure_term(H, ext, sizeof ext), "#Fun<<<0,0,0,7,1,2>>>");
}

AMB_TEST(match_big_integer_literals)
{
    const char *dec = "123456789012345678901234567890123456789012345678901234567890";
    amb_term big = parse(dec);
    matches(big, dec);
    matches(big,
            "123_456_789_012_345_678_901_234_567_890_123_456_789_012_345_678_901_234_"
            "567_890");
    no_match(big, "-123456789012345678901234567890123456789012345678901234567890");
    no_match(big, "123456789012345678901234567890123456789012345678901234567891");
    no_match(big, "12345678901234567890123456789012345678901234567890123456789");
    no_match(I(1), dec);
    no_match(F(1e59), dec);
    amb_term neg = parse("-16#10000000000000000");
    matches(neg, "-18446744073709551616");
    no_match(neg, "18446744073709551616");
    /* A literal larger than any integer term matches nothing. */
    size_t digits = AMB_BIG_MAX_BYTES * 2 + 1;
    char *huge = malloc(digits + 8);
    assert_non_null(huge);
    memcpy(huge, "16#1", 4);
    memset(huge + 4, '0', digits - 1);
    huge[3 + digits] = '\0';
    no_match(big, huge);
    free(huge);
}

AMB_TEST(match_tuples_and_lists)
{
    amb_term t = T(A("a"), T(A("b"), AMB_NIL), L(I(1), I(2)));
    matches(t, "{a, {b, []}, [1, 2]}");
    matches(t, "{_, _, _}");
    matches(t, "{a, {b, _}, [1 | _]}");
    matches(t, "{a, {b, _}, [1, 2 | []]}");
    matches(t, "{a, {b, _}, [_, _]}");
    no_match(t, "{a, {b, []}}");
    no_match(t, "{a, {b, []}, [1, 2], x}");
    no_match(t, "{a, {b, []}, [1]}");
    no_match(t, "{a, {b, []}, [1, 2, 3]}");
    no_match(t, "{a, {b, []}, [1, 2 | [3]]}");
    no_match(t, "{a, {b, []}, [_, _, _ | _]}");
    no_match(t, "[a, {b, []}, [1, 2]]");
    no_match(t, "{}");
    matches(amb_tuple(H, 0, NULL), "{}");
    no_match(AMB_NIL, "{}");
    no_match(AMB_NIL, "[_]");
    no_match(AMB_NIL, "[_|_]");
    matches(CONS(I(1), I(2)), "[1|2]");
    no_match(CONS(I(1), I(2)), "[1]");
    no_match(CONS(I(1), I(2)), "[_, _]");
    matches(CONS(I(1), I(2)), "[_|_]");
    no_match(A("x"), "[]");
    no_match(A("x"), "[_|_]");
    no_match(I(1), "{_}");
    matches(I(1), "_");
}

AMB_TEST(match_maps_like_erlang_map_patterns)
{
    amb_term m =
        parse("#{a => 1, b => {x}, 1 => one, 1.0 => float, \"s\" => str, "
              "{k, 2} => tuple, <<1>> => bin, -5 => neg, 99999999999999999999 => "
              "big, #{} => empty}");
    /* A map pattern lists some keys; other keys may be there too. */
    matches(m, "#{}");
    matches(m, "#{a => 1}");
    matches(m, "#{b => {_}, a => _}");
    matches(m, "#{a := 1}");
    matches(m, "#{1 => one, 1.0 => float}");
    matches(m, "#{\"s\" => str}");
    matches(m, "#{{k, 2} => tuple, <<1>> => bin, -5 => neg}");
    matches(m, "#{99999999999999999999 => big, #{} => empty}");
    matches(m, "#{a => 1, a => _}");
    no_match(m, "#{a => 2}");
    no_match(m, "#{c => 1}");
    no_match(m, "#{no_such_atom_q9z8 => 1}");
    no_match(m, "#{2 => one}");
    no_match(m, "#{{k, 3} => tuple}");
    no_match(m, "#{99999999999999999998 => big}");
    no_match(A("a"), "#{}");
    no_match(amb_tuple(H, 0, NULL), "#{}");
    /* ~v and ~r as keys. */
    amb_term v = AMB_NONE;
    assert_ok(amb_match(m, "#{~v => ~w}", A("b"), &v));
    assert_true(amb_equal(v, T(A("x"))));
    assert_ok(amb_match(m, "#{{k, ~v} => ~w}", I(2), &v));
    assert_true(v == A("tuple"));
    assert_rc(AMB_ENOMATCH, amb_match(m, "#{~v => _}", A("zz")));
    amb_term ref = a_ref(5);
    amb_term rm = amb_pack(H, "#{~r => ok}", ref);
    assert_ok(amb_match(rm, "#{~r => ok}", ref));
    /* Keys cannot bind or be _, as in Erlang. */
    amb_format_error err;
    assert_rc(AMB_EFORMAT, amb_match_ex(m, &err, "#{_ => 1}"));
    assert_int_equal(err.position, 2);
    assert_rc(AMB_EFORMAT, amb_match_ex(m, &err, "#{~w => 1}", &v));
    assert_int_equal(err.position, 2);
    assert_rc(AMB_EFORMAT, amb_match_ex(m, &err, "#{{k, ~i} => tuple}", &(int){0}));
    assert_int_equal(err.position, 6);
    assert_rc(AMB_EFORMAT, amb_match_ex(m, &err, "#{[_] => 1}"));
    assert_int_equal(err.position, 3);
}

/* ---------------------------------------------------------------------------
 * amb_match: directives
 * ------------------------------------------------------------------------ */

AMB_TEST(match_every_directive)
{
    const uint8_t bytes[] = {7, 8, 9};
    amb_term pid = a_pid(), ref = a_ref(1), any = T(A("x"), L(I(1)));
    amb_term t = amb_pack(H, "{reply, ~r, {~a, ~i, ~l, ~u, ~f, ~s, ~b, ~w, ~t, ~p, ~v}}",
                          ref, "atom", -5, INT64_MIN, UINT64_MAX, 2.5, "h\xc3\xa9!",
                          bytes, sizeof bytes, any, AMB_NIL, pid, A("v"));
    assert_true(t != AMB_NONE);
    const char *a = NULL;
    int i = 0;
    int64_t l = 0;
    uint64_t u = 0;
    double f = 0;
    char s[8] = "";
    const uint8_t *b = NULL;
    size_t blen = 0;
    amb_term w = AMB_NONE, tt = AMB_NONE, p = AMB_NONE;
    amb_format_error err = {0};
    assert_ok(amb_match_ex(
        t, &err, "{reply, ~r, {~a, ~i, ~l, ~u, ~f, ~s, ~b, ~w, ~t, ~p, ~v}}", ref, &a, &i,
        &l, &u, &f, s, sizeof s, &b, &blen, &w, &tt, &p, A("v")));
    assert_string_equal(a, "atom");
    assert_int_equal(i, -5);
    assert_true(l == INT64_MIN);
    assert_true(u == UINT64_MAX);
    assert_true(f == 2.5);
    assert_string_equal(s, "h\xc3\xa9!");
    assert_int_equal(blen, 3);
    assert_memory_equal(b, bytes, 3);
    assert_true(amb_equal(w, any));
    assert_true(tt == AMB_NIL);
    assert_true(amb_equal(p, pid));
    /* ~r and ~v compare with =:=. */
    assert_rc(AMB_ENOMATCH, amb_match(t, "{reply, ~r, _}", a_ref(2)));
    assert_rc(AMB_ENOMATCH, amb_match(I(1), "~v", F(1.0)));
    assert_ok(amb_match(F(1.0), "~v", F(1.0)));
    assert_ok(amb_match(T(I(1)), "~v", T(I(1))));
}

AMB_TEST(match_directive_types)
{
    int i = 42;
    int64_t l = 42;
    uint64_t u = 42;
    double f = 42;
    const char *a = "untouched";
    amb_term w = (amb_term)777;
    const uint8_t *b = NULL;
    size_t blen = 0;
    char s[16] = "untouched";
    /* Each directive refuses what does not fit its C type. */
    assert_rc(AMB_ENOMATCH, amb_match(I((int64_t)INT_MAX + 1), "~i", &i));
    assert_rc(AMB_ENOMATCH, amb_match(I((int64_t)INT_MIN - 1), "~i", &i));
    assert_rc(AMB_ENOMATCH, amb_match(F(1.0), "~i", &i));
    assert_rc(AMB_ENOMATCH, amb_match(parse("9223372036854775808"), "~l", &l));
    assert_rc(AMB_ENOMATCH, amb_match(I(-1), "~u", &u));
    assert_rc(AMB_ENOMATCH, amb_match(parse("18446744073709551616"), "~u", &u));
    assert_rc(AMB_ENOMATCH, amb_match(I(1), "~f", &f));
    assert_rc(AMB_ENOMATCH, amb_match(S("a"), "~a", &a));
    assert_rc(AMB_ENOMATCH, amb_match(A("a"), "~s", s, sizeof s));
    assert_rc(AMB_ENOMATCH, amb_match(L(I(-1)), "~s", s, sizeof s));
    assert_rc(AMB_ENOMATCH, amb_match(L(I(0xd800)), "~s", s, sizeof s));
    assert_rc(AMB_ENOMATCH, amb_match(CONS(I('a'), I('b')), "~s", s, sizeof s));
    assert_rc(AMB_ENOMATCH, amb_match(amb_bitstring(H, "a", 3), "~b", &b, &blen));
    assert_rc(AMB_ENOMATCH, amb_match(S("a"), "~b", &b, &blen));
    assert_rc(AMB_ENOMATCH, amb_match(a_ref(1), "~p", &w));
    assert_int_equal(i, 42);
    assert_true(l == 42 && u == 42 && f == 42);
    assert_string_equal(a, "untouched");
    assert_string_equal(s, "untouched");
    assert_int_equal(w, 777);
    assert_null(b);
    /* Edges that fit. */
    assert_ok(amb_match(I(INT_MIN), "~i", &i));
    assert_int_equal(i, INT_MIN);
    assert_ok(amb_match(I(INT_MAX), "~i", &i));
    assert_int_equal(i, INT_MAX);
    assert_ok(amb_match(parse("9223372036854775807"), "~l", &l));
    assert_true(l == INT64_MAX);
    assert_ok(amb_match(I(0), "~u", &u));
    assert_true(u == 0);
    assert_ok(amb_match(AMB_NIL, "~s", s, sizeof s));
    assert_string_equal(s, "");
    assert_ok(amb_match(BIN(), "~b", &b, &blen));
    assert_int_equal(blen, 0);
    assert_ok(amb_match(amb_binary(H, "x", 1), "~b", &b, &blen));
    assert_int_equal(blen, 1);
    assert_int_equal(b[0], 'x');
    assert_ok(amb_match(A(""), "~a", &a));
    assert_string_equal(a, "");
}

AMB_TEST(elixir_strings_are_binaries_both_ways)
{
    /* ~S packs a C string as a binary (an Elixir string), ~s as a list; a
     * key made with ~S matches what an Elixir node sends as "key". */
    amb_term t = amb_pack(H, "{~S, ~s, ~S}", "h\xc3\xa9llo", "h\xc3\xa9llo", "");
    assert_non_null((void *)(uintptr_t)t);
    assert_true(amb_equal(amb_tuple_elem(t, 0), amb_binary(H, "h\xc3\xa9llo", 6)));
    assert_true(amb_equal(amb_tuple_elem(t, 1), S("h\xc3\xa9llo")));
    assert_true(amb_equal(amb_tuple_elem(t, 2), BIN()));
    amb_term wire = parse("#{<<\"key\">> => 1}");
    int v = 0;
    assert_ok(amb_match(wire, "#{~v := ~i}", amb_pack(H, "~S", "key"), &v));
    assert_int_equal(v, 1);
    assert_rc(AMB_ENOMATCH, amb_match(wire, "#{~v := ~i}", amb_pack(H, "~s", "key"), &v));
    /* Any bytes go: ~S does not check UTF-8 (a binary is bytes). */
    t = amb_pack(H, "~S", "\xff\xfe");
    assert_true(amb_equal(t, BIN(0xff, 0xfe)));
    /* Back to C: ~S into a buffer with a NUL, ~b in place. */
    char buf[8] = "keep";
    const uint8_t *p = NULL;
    size_t n = 0;
    t = T(amb_binary(H, "h\xc3\xa9llo", 6), amb_binary(H, "ab", 2));
    assert_ok(amb_match(t, "{~S, ~b}", buf, sizeof buf, &p, &n));
    assert_string_equal(buf, "h\xc3\xa9llo");
    assert_int_equal(n, 2);
    assert_memory_equal(p, "ab", 2);
    assert_ok(amb_match(BIN(), "~S", buf, sizeof buf));
    assert_string_equal(buf, "");
    /* The text and its NUL must fit, or nothing is stored. */
    strcpy(buf, "keep");
    assert_rc(AMB_EBUFSIZE, amb_match(amb_binary(H, "1234567", 7), "~S", buf, (size_t)7));
    assert_string_equal(buf, "keep");
    assert_ok(amb_match(amb_binary(H, "1234567", 7), "~S", buf, (size_t)8));
    assert_string_equal(buf, "1234567");
    /* Not a binary, a bitstring, or bytes a C string cannot hold: no match. */
    strcpy(buf, "keep");
    assert_rc(AMB_ENOMATCH, amb_match(S("abc"), "~S", buf, sizeof buf));
    assert_rc(AMB_ENOMATCH, amb_match(BITS(9, 0xff, 0x80), "~S", buf, sizeof buf));
    assert_rc(AMB_ENOMATCH, amb_match(BIN('a', 0, 'b'), "~S", buf, sizeof buf));
    assert_rc(AMB_ENOMATCH, amb_match(BIN('a'), "~s", buf, sizeof buf));
    assert_string_equal(buf, "keep");
    /* Misuse: NULL pointers. */
    assert_rc(AMB_EBADARG, amb_pack_ex(H, &t, NULL, "~S", (const char *)NULL));
    assert_rc(AMB_EBADARG, amb_match(BIN('a'), "~S", (char *)NULL, (size_t)4));
}

AMB_TEST(match_binds_nothing_on_failure)
{
    amb_term t = parse("{ok, 1, \"abc\", <<1>>, x, [a]}");
    int i = -1;
    char s[8] = "keep";
    const uint8_t *b = NULL;
    size_t blen = 99;
    const char *a = "keep";
    amb_term w = (amb_term)777;
    /* Everything binds up to the last element, which does not match. */
    assert_rc(AMB_ENOMATCH,
              amb_match(t, "{ok, ~i, ~s, ~b, ~a, [b]}", &i, s, sizeof s, &b, &blen, &a));
    assert_rc(AMB_ENOMATCH, amb_match(t, "{ok, ~i, ~s, ~b, ~a, ~w, extra}", &i, s,
                                      sizeof s, &b, &blen, &a, &w));
    assert_rc(AMB_ENOMATCH, amb_match(t, "{~w, 2, _, _, _, _}", &w));
    assert_int_equal(i, -1);
    assert_string_equal(s, "keep");
    assert_null(b);
    assert_int_equal(blen, 99);
    assert_string_equal(a, "keep");
    assert_int_equal(w, 777);
    /* And all of it binds when the whole term matches. */
    assert_ok(
        amb_match(t, "{ok, ~i, ~s, ~b, ~a, ~w}", &i, s, sizeof s, &b, &blen, &a, &w));
    assert_int_equal(i, 1);
    assert_string_equal(s, "abc");
    assert_int_equal(blen, 1);
    assert_string_equal(a, "x");
    assert_true(amb_equal(w, L(A("a"))));
}

AMB_TEST(match_string_buffer_sizes)
{
    amb_term t = T(S("h\xc3\xa9llo"), I(5)); /* 6 bytes of UTF-8 */
    char s[7] = "keep";
    int i = -1;
    /* Too small by one (no room for the NUL): nothing is stored at all. */
    assert_rc(AMB_EBUFSIZE, amb_match(t, "{~s, ~i}", s, (size_t)6, &i));
    assert_string_equal(s, "keep");
    assert_int_equal(i, -1);
    /* A mismatch elsewhere is reported as such, not as a small buffer. */
    assert_rc(AMB_ENOMATCH, amb_match(t, "{~s, 6}", s, (size_t)2));
    assert_ok(amb_match(t, "{~s, ~i}", s, sizeof s, &i));
    assert_string_equal(s, "h\xc3\xa9llo");
    assert_int_equal(i, 5);
    assert_rc(AMB_EBUFSIZE, amb_match(AMB_NIL, "~s", s, (size_t)0));
}

static void match_fails_format(amb_term t, const char *fmt, size_t pos, const char *part)
{
    amb_format_error err = {.position = 999};
    int rc = amb_match_ex(t, &err, fmt);
    if (rc != AMB_EFORMAT)
        fail_msg("amb_match_ex(%s) returned %s", fmt, amb_err_name(rc));
    if (err.position != pos)
        fail_msg("amb_match_ex(%s): error at %zu (%s), expected %zu", fmt, err.position,
                 err.text, pos);
    if (part != NULL && strstr(err.text, part) == NULL)
        fail_msg("amb_match_ex(%s): error text \"%s\" lacks \"%s\"", fmt, err.text, part);
}

AMB_TEST(match_bad_formats_whatever_the_term)
{
    /* The same bad formats fail the same way whether or not the term would
     * match the part before the error. */
    amb_term terms[] = {A("ok"), T(A("ok"), I(1)), I(5), AMB_NIL, parse("#{a => 1}")};
    for (size_t k = 0; k < AMB_COUNTOF(terms); k++) {
        amb_term t = terms[k];
        match_fails_format(t, "{ok, ~q}", 5, "unknown directive");
        match_fails_format(t, "{ok, 1", 6, "unclosed");
        match_fails_format(t, "{ok, 1}}", 7, "after the term");
        match_fails_format(t, "[ok}", 3, NULL);
        match_fails_format(t, "", 0, NULL);
        match_fails_format(t, "{ok, X}", 5, "variable");
        match_fails_format(t, "#{_ => 1}", 2, "map key");
        match_fails_format(t, "#{a => 1, ~i => 2}", 10, "map key");
        match_fails_format(t, "{a, b, \"unterminated}", 7, "unterminated");
        match_fails_format(t, "{ok, 1} trailing", 8, NULL);
    }
    /* More than AMB_FORMAT_MAX_DIRECTIVES directives: found before any
     * argument is taken for the 65th, even on a term that cannot match. */
    char fmt[512];
    size_t n = 0;
    fmt[n++] = '[';
    for (int i = 0; i < 65; i++) {
        memcpy(fmt + n, i ? ",~v" : "~v", i ? 3 : 2);
        n += i ? 3 : 2;
    }
    fmt[n++] = ']';
    fmt[n] = '\0';
    match_fails_format(A("x"), fmt, n - 3, "more than");
}

AMB_TEST(match_bad_arguments)
{
    amb_term t = T(A("a"), I(1));
    assert_rc(AMB_EBADARG, amb_match(AMB_NONE, "_"));
    assert_rc(AMB_EBADARG, amb_match(t, NULL));
    assert_rc(AMB_EBADARG, amb_match(t, "{~w, _}", (amb_term *)NULL));
    assert_rc(AMB_EBADARG, amb_match(t, "{~a, ~i}", &(const char *){NULL}, (int *)NULL));
    assert_rc(AMB_EBADARG, amb_match(t, "{~s, _}", (char *)NULL, (size_t)4));
    assert_rc(AMB_EBADARG,
              amb_match(t, "{~b, _}", &(const uint8_t *){NULL}, (size_t *)NULL));
    assert_rc(AMB_EBADARG, amb_match(t, "{~v, _}", AMB_NONE));
    amb_format_error err;
    assert_rc(AMB_EBADARG, amb_match_ex(t, &err, "{a, ~i}", (int *)NULL));
    assert_int_equal(err.position, 4);
}

AMB_TEST(match_unicode)
{
    amb_term t =
        amb_pack(H, "{~a, ~s}", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80 ok");
    matches(t, "{'\xe6\x97\xa5\xe6\x9c\xac', \"\xf0\x9f\x98\x80 ok\"}");
    matches(t, "{'\\x{65E5}\\x{672C}', \"\\x{1F600} ok\"}");
    no_match(t, "{'\\x{65E5}', _}");
    const char *a = NULL;
    char s[16];
    assert_ok(amb_match(t, "{~a, ~s}", &a, s, sizeof s));
    assert_string_equal(a, "\xe6\x97\xa5\xe6\x9c\xac");
    assert_string_equal(s, "\xf0\x9f\x98\x80 ok");
}

/* Nesting: a 10,000-deep pattern against a 10,000-deep term, and a
 * pattern deeper than the term, all on a 64 KiB stack. */
typedef struct deep_job {
    amb_heap *heap;
    int rc_match, rc_deeper, rc_pack;
    amb_term bound;
} deep_job;

static void *deep_body(void *arg)
{
    deep_job *job = arg;
    size_t d = AMB_PARSE_MAX_DEPTH;
    char *fmt = malloc(2 * d + 8);
    if (fmt == NULL)
        return NULL;
    amb_term t = A("core");
    for (size_t i = 0; i < d; i++)
        t = amb_tuple(job->heap, 1, &t);
    memset(fmt, '{', d);
    memcpy(fmt + d, "~w", 2);
    memset(fmt + d + 2, '}', d);
    fmt[2 * d + 2] = '\0';
    job->rc_match = amb_match(t, fmt, &job->bound);
    amb_term packed = AMB_NONE;
    job->rc_pack = amb_pack_ex(job->heap, &packed, NULL, fmt, A("core"));
    if (job->rc_pack == 0 && !amb_equal(packed, t))
        job->rc_pack = -1000;
    job->rc_deeper = amb_match(amb_tuple_elem(t, 0), fmt, &job->bound);
    free(fmt);
    return NULL;
}

AMB_TEST(match_and_pack_deep_nesting_on_a_small_stack)
{
    pthread_attr_t attr;
    pthread_t th;
    deep_job job = {.heap = H};
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 64 * 1024), 0);
    assert_int_equal(pthread_create(&th, &attr, deep_body, &job), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&attr);
    assert_rc(0, job.rc_match);
    assert_true(job.bound == A("core"));
    assert_rc(0, job.rc_pack);
    assert_rc(AMB_ENOMATCH, job.rc_deeper);
}

/* ---------------------------------------------------------------------------
 * Allocation: matching a reply allocates nothing; pack only the terms
 * ------------------------------------------------------------------------ */

AMB_TEST(match_reply_allocates_nothing)
{
    amb_term ref = a_ref(7), value = T(A("ok"), S("value"));
    amb_term reply = amb_pack(H, "{reply, ~r, ~w}", ref, value);
    amb_term other = amb_pack(H, "{reply, ~r, ~w}", a_ref(8), value);
    amb_term big = parse("{1.5, \"str\", <<1,2,3>>, 123456789, #{a => {b}}, [x|y]}");
    amb_heap *warm;
    assert_ok(amb_heap_new(&warm));
    /* Warm the heap so that packing fits in its first block. */
    assert_true(amb_pack(warm, "{reply, ~r, ~w}", ref, value) != AMB_NONE);
    amb_heap_reset(warm);
    uint64_t calls0 = amb_test_alloc_now().calls;
    amb_term out = AMB_NONE;
    int rc1 = amb_match(reply, "{reply, ~r, ~w}", ref, &out);
    int rc2 = amb_match(other, "{reply, ~r, ~w}", ref, &out);
    int rc3 =
        amb_match(big, "{1.5, \"str\", <<1,2,3>>, 123456789, #{a => {b}}, [x|~w]}", &out);
    uint64_t match_allocs = amb_test_alloc_now().calls - calls0;
    amb_term packed = amb_pack(warm, "{reply, ~r, ~w}", ref, value);
    uint64_t pack_allocs = amb_test_alloc_now().calls - calls0 - match_allocs;
    assert_rc(0, rc1);
    assert_rc(AMB_ENOMATCH, rc2);
    assert_rc(0, rc3);
    assert_true(out == A("y"));
    assert_int_equal(match_allocs, 0);
    assert_true(amb_equal(packed, reply));
    assert_int_equal(pack_allocs, 0);
    amb_heap_free(warm);
}

/* Allocation failures in pack and match: allocation N and every one after
 * it fail, for N = 0, 1, 2, ...; each call ends in success or a clean
 * AMB_ENOMEM. */
AMB_TEST(pack_and_match_allocation_failures_are_clean)
{
    const char *fmt =
        "{~a, [~i, 123456789012345678901234567890 | ~w], #{{k, [1]} => ~s}, "
        "<<1,2,3>>, 1.5}";
    amb_term want = amb_pack(H, fmt, "x", 1, AMB_NIL, "str");
    assert_true(want != AMB_NONE);
    bool packed = false, matched = false;
    for (long n = 0; n < 200 && !(packed && matched); n++) {
        amb_heap *h;
        assert_ok(amb_heap_new(&h));
        amb_test_alloc_fail((uint64_t)n, AMB_TEST_FAIL_FOREVER);
        amb_term t = (amb_term)777;
        int rc = amb_pack_ex(h, &t, NULL, fmt, "x", 1, AMB_NIL, "str");
        amb_test_alloc_fail((uint64_t)n, AMB_TEST_FAIL_FOREVER);
        int i = 0;
        char s[8] = "";
        amb_term w = AMB_NONE;
        const char *a = NULL;
        int mrc = amb_match(want,
                            "{~a, [~i, 123456789012345678901234567890 | ~w], "
                            "#{{k, [1]} => ~s}, <<1,2,3>>, 1.5}",
                            &a, &i, &w, s, sizeof s);
        amb_test_alloc_disarm();
        if (rc == 0) {
            assert_true(amb_equal(t, want));
            packed = true;
        } else {
            assert_rc(AMB_ENOMEM, rc);
            assert_int_equal(t, 777);
        }
        if (mrc == 0) {
            assert_string_equal(s, "str");
            assert_int_equal(i, 1);
            matched = true;
        } else {
            assert_rc(AMB_ENOMEM, mrc);
            assert_int_equal(i, 0);
            assert_string_equal(s, "");
        }
        amb_heap_free(h);
    }
    assert_true(packed && matched);
}

/* ---------------------------------------------------------------------------
 * The per-thread format cache (parse.c): replayed events are the live ones
 * ------------------------------------------------------------------------ */

static bool same_event(const amb__parse_ev *a, const amb__parse_ev *b)
{
    if (a->kind != b->kind || a->pos != b->pos)
        return false;
    switch (a->kind) {
    case AMB__EV_CLOSE:
        return a->container == b->container && a->count == b->count && a->tail == b->tail;
    case AMB__EV_EOF:
        return true;
    default:
        return a->slot == b->slot && a->in_key == b->in_key && a->neg == b->neg &&
               (a->kind != AMB__EV_OPEN || a->container == b->container) &&
               (a->kind == AMB__EV_OPEN || a->kind == AMB__EV_WILDCARD ||
                (a->tok.kind == b->tok.kind && a->tok.flags == b->tok.flags &&
                 a->tok.start == b->tok.start && a->tok.end == b->tok.end &&
                 a->tok.v.u == b->tok.v.u &&
                 (a->tok.kind != AMB__TK_INT ||
                  (a->tok.base == b->tok.base && a->tok.digits == b->tok.digits))));
    }
}

AMB_TEST(format_cache_replays_the_live_events)
{
    static const char *const fmts[] = {
        "{reply,~r,~w}",
        "{'$gen_call', {~p, ~r}, ~w}",
        "[~i, -2, 3.5 | ~w]",
        "#{a => ~w, {k, [1]} := _, \"s\" => <<1,2:3>>}",
        "{-16#ff, 123456789012345678901234567890, $x}",
        "[[[[[[[~w]]]]]]]",
        "{#Pid<'n@h'.1.2.3>, 'q\\n'}.",
        "_",
        "[]",
    };
    for (size_t i = 0; i < AMB_COUNTOF(fmts); i++) {
        amb__parse_ev live[64];
        size_t depth[64], count[64], n = 0;
        amb__parser p;
        amb__parse_init(&p, fmts[i], strlen(fmts[i]), true);
        do {
            assert_ok(amb__parse_next(&p, &live[n]));
            depth[n] = p.depth;
            count[n] = p.frames[p.depth - 1].count;
        } while (live[n++].kind != AMB__EV_EOF && n < AMB_COUNTOF(live));
        amb__parse_free(&p);
        /* The first run records, the next ones replay. */
        for (int run = 0; run < 3; run++) {
            amb__parse_init_format(&p, fmts[i]);
            for (size_t k = 0; k < n; k++) {
                amb__parse_ev ev;
                assert_ok(amb__parse_next(&p, &ev));
                if (!same_event(&ev, &live[k]))
                    fail_msg("%s, run %d: event %zu differs", fmts[i], run, k);
                /* The frames the consumers read are kept the same way. */
                assert_int_equal(p.depth, depth[k]);
                assert_int_equal(p.frames[p.depth - 1].count, count[k]);
            }
            /* EOF repeats. */
            amb__parse_ev ev;
            assert_ok(amb__parse_next(&p, &ev));
            assert_int_equal(ev.kind, AMB__EV_EOF);
            assert_int_equal(p.depth, 1);
            amb__parse_free(&p);
        }
    }
}

AMB_TEST(format_cache_follows_the_text_not_the_address)
{
    char fmt[128];
    int i = 0;
    amb_term t = parse("{reply, 1, x}");
    strcpy(fmt, "{reply, ~i, x}");
    for (int k = 0; k < 3; k++)
        assert_ok(amb_match(t, fmt, &i));
    /* The same buffer with other text: never the old events. */
    strcpy(fmt, "{reply, ~i, y}");
    for (int k = 0; k < 3; k++)
        assert_rc(AMB_ENOMATCH, amb_match(t, fmt, &i));
    strcpy(fmt, "{reply, ~i, x}}");
    for (int k = 0; k < 3; k++)
        assert_rc(AMB_EFORMAT, amb_match(t, fmt, &i));
    strcpy(fmt, "{reply, ~i, x");
    for (int k = 0; k < 3; k++)
        assert_rc(AMB_EFORMAT, amb_match(t, fmt, &i));
    strcpy(fmt, "{reply, ~i, x} ");
    for (int k = 0; k < 3; k++)
        assert_ok(amb_match(t, fmt, &i));
    strcpy(fmt, "{reply, ~i, ~a}");
    for (int k = 0; k < 3; k++) {
        amb_term packed = amb_pack(H, fmt, 7, "z");
        assert_true(amb_equal(packed, parse("{reply, 7, z}")));
    }
    /* Many formats at once (evicting each other), long ones and deep ones
     * (never cached): each still right on every use. */
    char many[40][128];
    for (int k = 0; k < 40; k++) {
        if (k % 10 == 9)
            snprintf(
                many[k], sizeof many[k],
                "{~i, %d, a_long_atom_to_make_this_format_longer_than_the_cache_text}",
                k);
        else if (k % 10 == 8)
            snprintf(many[k], sizeof many[k], "{~i, [[[[[[[[[[%d]]]]]]]]]]}", k);
        else
            snprintf(many[k], sizeof many[k], "{~i, %d}", k);
    }
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 40; k++) {
            amb_term v = amb_pack(H, many[k], k);
            assert_true(v != AMB_NONE);
            int got = -1;
            assert_ok(amb_match(v, many[k], &got));
            assert_int_equal(got, k);
            assert_rc(AMB_ENOMATCH, amb_match(v, many[(k + 1) % 40], &got));
        }
    }
}

typedef struct cache_job {
    int id;
    int failures;
} cache_job;

static void *cache_body(void *arg)
{
    cache_job *job = arg;
    amb_heap *h;
    if (amb_heap_new(&h) != 0) {
        job->failures++;
        return NULL;
    }
    for (int k = 0; k < 2000; k++) {
        amb_term t = amb_pack(h, "{reply, ~i, ~i}", job->id, k);
        int a = -1, b = -1;
        if (t == AMB_NONE || amb_match(t, "{reply, ~i, ~i}", &a, &b) != 0 ||
            a != job->id || b != k)
            job->failures++;
        if (amb_match(t, "{noreply, ~i, ~i}", &a, &b) != AMB_ENOMATCH)
            job->failures++;
        amb_heap_reset(h);
    }
    amb_heap_free(h);
    return NULL;
}

AMB_TEST(format_cache_is_per_thread)
{
    pthread_t th[4];
    cache_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (cache_job){.id = i};
        assert_int_equal(pthread_create(&th[i], NULL, cache_body, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].failures, 0);
    }
}

AMB_TEST_MAIN(HEAP_TEST(pack_literals_are_amb_parse), HEAP_TEST(pack_every_directive),
              HEAP_TEST(pack_integer_ranges), HEAP_TEST(pack_bad_formats),
              HEAP_TEST(pack_bad_values), HEAP_TEST(match_literals),
              HEAP_TEST(match_big_integer_literals), HEAP_TEST(match_tuples_and_lists),
              HEAP_TEST(match_maps_like_erlang_map_patterns),
              HEAP_TEST(match_every_directive), HEAP_TEST(match_directive_types),
              HEAP_TEST(match_binds_nothing_on_failure),
              HEAP_TEST(match_string_buffer_sizes),
              HEAP_TEST(elixir_strings_are_binaries_both_ways),
              HEAP_TEST(match_bad_formats_whatever_the_term),
              HEAP_TEST(match_bad_arguments), HEAP_TEST(match_unicode),
              HEAP_TEST(match_and_pack_deep_nesting_on_a_small_stack),
              HEAP_TEST(match_reply_allocates_nothing),
              HEAP_TEST(pack_and_match_allocation_failures_are_clean),
              HEAP_TEST(format_cache_replays_the_live_events),
              HEAP_TEST(format_cache_follows_the_text_not_the_address),
              HEAP_TEST(format_cache_is_per_thread))

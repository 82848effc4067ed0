/*
 * compare.c - Erlang's term order, exact order, =:= and the stable hash.
 */
#include "amb_test.h"
#include "term_internal.h"

static amb_heap *h;

static int setup(void)
{
    return amb_heap_new(&h);
}

static amb_term big(const char *text)
{
    amb_term t;
    assert_ok(amb_int_from_string(h, text, strlen(text), &t));
    return t;
}

static amb_term flt(double d)
{
    return amb_float(h, d);
}

static void assert_order(amb_term a, amb_term b)
{
    if (amb_compare(a, b) >= 0 || amb_compare(b, a) <= 0) {
        char x[256], y[256];
        amb_print(a, x, sizeof x, NULL);
        amb_print(b, y, sizeof y, NULL);
        fail_msg("expected %s < %s", x, y);
    }
}

AMB_TEST(types_follow_erlang_order)
{
    assert_int_equal(setup(), 0);
    uint32_t w[] = {1};
    amb_term in_order[] = {
        AMB_SMALL(5),
        amb_atom("a"),
        amb_ref_term(h, AMB_ATOM_NONODE_NOHOST, 0, w, 1),
        amb_export_term(h, amb_atom("m"), amb_atom("f"), 0),
        amb_port_term(h, AMB_ATOM_NONODE_NOHOST, 1, 0),
        amb_pid_term(h, AMB_ATOM_NONODE_NOHOST, 1, 0, 0),
        AMB_TUPLE(h, AMB_SMALL(1)),
        amb_map(h, 0, NULL, NULL),
        AMB_NIL,
        AMB_LIST(h, AMB_SMALL(1)),
        amb_binary(h, "", 0),
    };
    for (size_t i = 0; i + 1 < AMB_COUNTOF(in_order); i++)
        for (size_t j = i + 1; j < AMB_COUNTOF(in_order); j++)
            assert_true(amb_compare(in_order[i], in_order[j]) < 0 &&
                        amb_compare(in_order[j], in_order[i]) > 0);
    amb_heap_free(h);
}

AMB_TEST(numbers_compare_by_value)
{
    assert_int_equal(setup(), 0);
    assert_int_equal(amb_compare(AMB_SMALL(1), flt(1.0)), 0);
    assert_false(amb_equal(AMB_SMALL(1), flt(1.0)));
    assert_true(amb_compare_exact(AMB_SMALL(1), flt(1.0)) < 0);
    assert_true(amb_compare_exact(flt(1.0), AMB_SMALL(1)) > 0);
    /* Exact order puts every integer before every float (map key order). */
    assert_true(amb_compare_exact(AMB_SMALL(2), flt(1.5)) < 0);
    assert_true(amb_compare_exact(big("100000000000000000000"), flt(0.5)) < 0);
    assert_order(AMB_SMALL(1), flt(1.5));
    assert_order(flt(0.5), AMB_SMALL(1));
    assert_order(AMB_SMALL(-2), flt(-1.5));
    assert_order(big("-100000000000000000000"), AMB_SMALL(0));
    assert_order(AMB_SMALL(AMB_SMALL_MAX), big("4611686018427387904"));
    assert_order(big("4611686018427387904"), big("4611686018427387905"));
    assert_order(big("-4611686018427387906"), big("-4611686018427387905"));
    assert_order(big("18446744073709551616"), flt(1e20));
    assert_order(flt(1e19), big("18446744073709551616"));
    /* 2^64 as a float and as an integer are equal in value. */
    assert_int_equal(
        amb_compare(big("18446744073709551616"), flt(18446744073709551616.0)), 0);
    assert_int_equal(amb_compare(flt(1e300), big("1"
                                                 "000000000000000000000000000000")) > 0,
                     1);
    /* 2^53 + 1 is not representable: the integer is above the float 2^53. */
    assert_order(flt(9007199254740992.0), AMB_SMALL(9007199254740993));
    assert_order(AMB_SMALL(-9007199254740993), flt(-9007199254740992.0));
    assert_int_equal(amb_compare(flt(-0.0), flt(0.0)), 0);
    assert_true(amb_equal(flt(-0.0), flt(0.0)));
    assert_int_equal(amb_compare(flt(0.0), AMB_SMALL(0)), 0);
    assert_order(flt(-0.5), AMB_SMALL(0));
    amb_heap_free(h);
}

AMB_TEST(compound_terms_compare_structurally)
{
    assert_int_equal(setup(), 0);
    /* Tuples: arity first. */
    assert_order(AMB_TUPLE(h, AMB_SMALL(9), AMB_SMALL(9)),
                 AMB_TUPLE(h, AMB_SMALL(1), AMB_SMALL(1), AMB_SMALL(1)));
    assert_order(AMB_TUPLE(h, AMB_SMALL(1), AMB_SMALL(2)),
                 AMB_TUPLE(h, AMB_SMALL(1), AMB_SMALL(3)));
    /* Lists: element by element, a prefix first, improper tails compared. */
    assert_order(AMB_LIST(h, AMB_SMALL(1)), AMB_LIST(h, AMB_SMALL(1), AMB_SMALL(0)));
    assert_order(AMB_LIST(h, AMB_SMALL(1), AMB_SMALL(2)), AMB_LIST(h, AMB_SMALL(2)));
    assert_order(amb_cons(h, AMB_SMALL(1), AMB_SMALL(2)),
                 amb_cons(h, AMB_SMALL(1), AMB_NIL));
    /* Maps: size, then keys, then values. */
    amb_term k1[] = {amb_atom("a")}, v1[] = {AMB_SMALL(9)};
    amb_term k2[] = {amb_atom("b")}, v2[] = {AMB_SMALL(0)};
    amb_term k3[] = {amb_atom("a"), amb_atom("b")}, v3[] = {AMB_SMALL(0), AMB_SMALL(0)};
    assert_order(amb_map(h, 1, k1, v1), amb_map(h, 1, k2, v2));
    assert_order(amb_map(h, 1, k2, v2), amb_map(h, 2, k3, v3));
    amb_term k4[] = {amb_atom("a")}, v4[] = {AMB_SMALL(10)};
    assert_order(amb_map(h, 1, k1, v1), amb_map(h, 1, k4, v4));
    /* Map keys: 1 < 1.0 exactly, so #{1 => x} < #{1.0 => x}. */
    amb_term ki[] = {AMB_SMALL(1)}, kf[] = {flt(1.0)}, vx[] = {AMB_ATOM_OK};
    assert_true(amb_compare(amb_map(h, 1, ki, vx), amb_map(h, 1, kf, vx)) < 0);
    /* Atoms by text; binaries and bitstrings bit by bit. */
    assert_order(amb_atom("abc"), amb_atom("abd"));
    assert_order(amb_atom("ab"), amb_atom("abc"));
    assert_order(amb_binary(h, "ab", 2), amb_binary(h, "abc", 3));
    assert_order(amb_binary(h, "ab", 2), amb_binary(h, "b", 1));
    uint8_t bits[] = {0x80};
    assert_order(amb_binary(h, "", 0), amb_bitstring(h, bits, 1));
    assert_order(amb_bitstring(h, bits, 1), amb_binary(h, "\x80", 1));
    assert_order(amb_binary(h, "\x7f", 1), amb_bitstring(h, bits, 1));
    /* Pids as OTP orders them: serial, number, node, creation. */
    assert_order(amb_pid_term(h, amb_atom("b@h"), 9, 1, 1),
                 amb_pid_term(h, amb_atom("a@h"), 1, 2, 1));
    assert_order(amb_pid_term(h, amb_atom("b@h"), 1, 1, 1),
                 amb_pid_term(h, amb_atom("a@h"), 2, 1, 1));
    assert_order(amb_pid_term(h, amb_atom("a@h"), 1, 1, 9),
                 amb_pid_term(h, amb_atom("b@h"), 1, 1, 1));
    amb_heap_free(h);
}

AMB_TEST(equal_terms_hash_equal_and_hash_is_stable)
{
    assert_int_equal(setup(), 0);
    amb_term a = AMB_TUPLE(h, amb_atom("x"),
                           AMB_LIST(h, flt(-0.0),
                                    big("1"
                                        "0000000000000000000000")),
                           amb_binary(h, "bytes", 5));
    amb_heap *other;
    assert_ok(amb_heap_new(&other));
    amb_term b;
    assert_ok(amb_term_copy(other, a, &b));
    assert_true(amb_equal(a, b));
    assert_true(amb_hash(a) == amb_hash(b));
    assert_true(amb_hash(flt(0.0)) == amb_hash(flt(-0.0)));
    assert_true(amb_hash(AMB_SMALL(1)) != amb_hash(flt(1.0)));
    assert_true(amb_hash(AMB_TUPLE(h, AMB_SMALL(1), AMB_SMALL(2))) !=
                amb_hash(AMB_TUPLE(h, AMB_SMALL(2), AMB_SMALL(1))));
    assert_true(amb_hash(AMB_LIST(h, AMB_SMALL(1))) !=
                amb_hash(AMB_TUPLE(h, AMB_SMALL(1))));
    /* Stable across runs and machines: these values are fixed forever. */
    uint64_t h_ok = amb_hash(AMB_ATOM_OK);
    uint64_t h_int = amb_hash(AMB_SMALL(42));
    assert_true(h_ok == amb_hash(amb_atom("ok")));
    assert_true(h_ok != h_int);
    printf("hash(ok)=%016llx hash(42)=%016llx\n", (unsigned long long)h_ok,
           (unsigned long long)h_int);
    assert_true(h_ok == UINT64_C(0x10cf4904e0da1633));
    assert_true(h_int == UINT64_C(0x1a4f782667ea0b15));
    amb_heap_free(other);
    amb_heap_free(h);
}

AMB_TEST(deep_terms_compare_without_recursion)
{
    assert_int_equal(setup(), 0);
    amb_term a = AMB_NIL, b = AMB_NIL;
    for (int i = 0; i < 300000; i++) {
        a = AMB_TUPLE(h, a);
        b = AMB_TUPLE(h, b);
    }
    assert_int_equal(amb_compare(a, b), 0);
    assert_true(amb_equal(a, b));
    assert_true(amb_hash(a) == amb_hash(b));
    amb_term c = AMB_TUPLE(h, a), d = AMB_TUPLE(h, AMB_TUPLE(h, AMB_SMALL(1)));
    assert_true(amb_compare(c, d) > 0); /* [] > 1 at the bottom... of d */
    amb_heap_free(h);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(types_follow_erlang_order),
              AMB_TEST_ENTRY(numbers_compare_by_value),
              AMB_TEST_ENTRY(compound_terms_compare_structurally),
              AMB_TEST_ENTRY(equal_terms_hash_equal_and_hash_is_stable),
              AMB_TEST_ENTRY(deep_terms_compare_without_recursion))

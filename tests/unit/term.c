/*
 * term.c - constructors and accessors of every term type, heaps, copy, and
 * the canonical-form invariants (term.h, term_internal.h).
 */
#include <math.h>

#include "amb_test.h"
#include "term_internal.h"

static amb_heap *heap_new(void)
{
    amb_heap *h = NULL;
    assert_ok(amb_heap_new(&h));
    return h;
}

AMB_TEST(small_integers_are_immediate_and_canonical)
{
    amb_heap *h = heap_new();
    assert_true(amb_is_small(amb_int(h, 0)));
    assert_true(amb_is_small(amb_int(h, AMB_SMALL_MAX)));
    assert_true(amb_is_small(amb_int(h, AMB_SMALL_MIN)));
    assert_false(amb_is_small(amb_int(h, AMB_SMALL_MAX + 1)));
    assert_false(amb_is_small(amb_int(h, AMB_SMALL_MIN - 1)));
    int64_t values[] = {0,
                        1,
                        -1,
                        42,
                        AMB_SMALL_MAX,
                        AMB_SMALL_MIN,
                        AMB_SMALL_MAX + 1,
                        AMB_SMALL_MIN - 1,
                        INT64_MAX,
                        INT64_MIN};
    for (size_t i = 0; i < AMB_COUNTOF(values); i++) {
        amb_term t = amb_int(h, values[i]);
        int64_t back;
        assert_ok(amb_int_get(t, &back));
        assert_int_equal(back, values[i]);
        assert_true(amb_is_integer(t));
        assert_int_equal(amb_type_of(t), AMB_T_INTEGER);
    }
    uint64_t u;
    assert_ok(amb_uint_get(amb_uint(h, UINT64_MAX), &u));
    assert_true(u == UINT64_MAX);
    int64_t i64;
    assert_rc(AMB_ERANGE, amb_int_get(amb_uint(h, UINT64_MAX), &i64));
    assert_rc(AMB_ERANGE, amb_uint_get(amb_int(h, -1), &u));
    assert_rc(AMB_ETYPE, amb_int_get(AMB_ATOM_OK, &i64));
    assert_rc(AMB_EBADARG, amb_int_get(AMB_SMALL(1), NULL));
    /* A value that fits small is small however it was made. */
    uint8_t bytes[16] = {5};
    amb_term t;
    assert_ok(amb_int_from_bytes(h, false, bytes, sizeof bytes, &t));
    assert_true(t == AMB_SMALL(5));
    assert_true(amb_int(NULL, 7) == AMB_SMALL(7));
    assert_true(amb_int(NULL, INT64_MAX) == AMB_NONE);
    amb_heap_free(h);
}

AMB_TEST(big_integers_round_trip_through_decimal)
{
    amb_heap *h = heap_new();
    const char *texts[] = {"4611686018427387904",  /* 2^62: the first positive big */
                           "-4611686018427387905", /* one below the smallest small */
                           "-4611686018427387904", /* the smallest small */
                           "18446744073709551616", /* 2^64 */
                           "-340282366920938463463374607431768211456",
                           "123456789012345678901234567890123456789012345678901234567890",
                           "0",
                           "-0",
                           "+17"};
    const char *want[] = {"4611686018427387904",
                          "-4611686018427387905",
                          "-4611686018427387904",
                          "18446744073709551616",
                          "-340282366920938463463374607431768211456",
                          "123456789012345678901234567890123456789012345678901234567890",
                          "0",
                          "0",
                          "17"};
    for (size_t i = 0; i < AMB_COUNTOF(texts); i++) {
        amb_term t;
        assert_ok(amb_int_from_string(h, texts[i], strlen(texts[i]), &t));
        char *s;
        size_t len;
        assert_ok(amb__bignum_to_decimal(t, &s, &len));
        assert_string_equal(s, want[i]);
        assert_int_equal(len, strlen(want[i]));
        amb__free(s);
    }
    amb_term t;
    assert_true(amb_int_from_string(h, "-4611686018427387904", 20, &t) == 0 &&
                amb_is_small(t));
    assert_rc(AMB_ESYNTAX, amb_int_from_string(h, "12a", 3, &t));
    assert_rc(AMB_ESYNTAX, amb_int_from_string(h, "-", 1, &t));
    assert_rc(AMB_ESYNTAX, amb_int_from_string(h, "", 0, &t));
    amb_heap_free(h);
}

AMB_TEST(big_integers_are_bounded)
{
    amb_heap *h = heap_new();
    size_t n = AMB_BIG_MAX_BYTES + 1;
    uint8_t *mag = calloc(n, 1);
    assert_non_null(mag);
    mag[n - 1] = 1;
    amb_term t;
    assert_rc(AMB_ESYSLIMIT, amb_int_from_bytes(h, false, mag, n, &t));
    mag[n - 2] = 0xff;
    assert_ok(amb_int_from_bytes(h, true, mag, n - 1, &t));
    assert_int_equal(amb__big_ndigits(t), AMB_BIG_MAX_BYTES / 8);
    free(mag);
    size_t digits = 200000;
    char *text = malloc(digits);
    memset(text, '9', digits);
    assert_rc(AMB_ESYSLIMIT, amb_int_from_string(h, text, digits, &t));
    free(text);
    amb_heap_free(h);
}

AMB_TEST(int_bytes_expose_sign_and_magnitude)
{
    amb_heap *h = heap_new();
    bool neg;
    const uint8_t *mag;
    size_t len;
    uint64_t scratch;
    assert_ok(amb_int_to_bytes(amb_int(h, -258), &scratch, &neg, &mag, &len));
    assert_true(neg);
    assert_int_equal(len, 2);
    assert_int_equal(mag[0], 2);
    assert_int_equal(mag[1], 1);
    assert_ok(amb_int_to_bytes(AMB_SMALL(0), &scratch, &neg, &mag, &len));
    assert_int_equal(len, 0);
    amb_term big;
    assert_ok(amb_int_from_string(h, "18446744073709551616", 20, &big));
    assert_ok(amb_int_to_bytes(big, &scratch, &neg, &mag, &len));
    assert_false(neg);
    assert_int_equal(len, 9);
    assert_int_equal(mag[8], 1);
    amb_heap_free(h);
}

AMB_TEST(floats_are_finite_boxes)
{
    amb_heap *h = heap_new();
    amb_term f = amb_float(h, 3.5);
    double d;
    assert_ok(amb_float_get(f, &d));
    assert_true(d == 3.5);
    assert_int_equal(amb_type_of(f), AMB_T_FLOAT);
    assert_true(amb_float(h, NAN) == AMB_NONE);
    assert_true(amb_float(h, INFINITY) == AMB_NONE);
    assert_true(amb_float(NULL, 1.0) == AMB_NONE);
    assert_rc(AMB_ETYPE, amb_float_get(AMB_SMALL(1), &d));
    assert_ok(amb_number_get(AMB_SMALL(-3), &d));
    assert_true(d == -3.0);
    amb_term big;
    assert_ok(amb_int_from_string(h, "100000000000000000000", 21, &big));
    assert_ok(amb_number_get(big, &d));
    assert_true(d == 1e20);
    amb_heap_free(h);
}

AMB_TEST(tuples_and_records)
{
    amb_heap *h = heap_new();
    amb_term t = AMB_TUPLE(h, AMB_ATOM_OK, AMB_SMALL(1), AMB_NIL);
    assert_true(amb_is_tuple(t));
    assert_int_equal(amb_tuple_arity(t), 3);
    assert_true(amb_tuple_elem(t, 0) == AMB_ATOM_OK);
    assert_true(amb_tuple_elem(t, 2) == AMB_NIL);
    assert_true(amb_tuple_elem(t, 3) == AMB_NONE);
    assert_true(amb_is_record(t, AMB_ATOM_OK, 3));
    assert_false(amb_is_record(t, AMB_ATOM_OK, 2));
    assert_false(amb_is_record(AMB_NIL, AMB_ATOM_OK, 1));
    amb_term empty = amb_tuple(h, 0, NULL);
    assert_true(amb_is_tuple(empty));
    assert_int_equal(amb_tuple_arity(empty), 0);
    /* An AMB_NONE element passes the failure on. */
    assert_true(AMB_TUPLE(h, AMB_ATOM_OK, AMB_NONE) == AMB_NONE);
    assert_true(amb_tuple(h, 2, NULL) == AMB_NONE);
    assert_int_equal(amb_tuple_arity(AMB_SMALL(1)), 0);
    amb_heap_free(h);
}

AMB_TEST(lists_proper_improper_and_strings)
{
    amb_heap *h = heap_new();
    amb_term l = AMB_LIST(h, AMB_SMALL(1), AMB_SMALL(2), AMB_SMALL(3));
    size_t len;
    assert_ok(amb_list_length(l, &len));
    assert_int_equal(len, 3);
    assert_true(amb_list_head(l) == AMB_SMALL(1));
    assert_true(amb_list_head(amb_list_tail(amb_list_tail(l))) == AMB_SMALL(3));
    assert_true(amb_list_tail(amb_list_tail(amb_list_tail(l))) == AMB_NIL);
    amb_term improper = amb_cons(h, AMB_ATOM_OK, AMB_ATOM_ERROR);
    assert_rc(AMB_ETYPE, amb_list_length(improper, &len));
    assert_true(amb_is_list(improper));
    assert_int_equal(amb_type_of(improper), AMB_T_LIST);
    assert_ok(amb_list_length(AMB_NIL, &len));
    assert_int_equal(len, 0);
    assert_true(amb_list(h, 0, NULL) == AMB_NIL);

    amb_term s = amb_string(h, "h\xc3\xa9\xe2\x82\xac!"); /* hé€! */
    assert_ok(amb_list_length(s, &len));
    assert_int_equal(len, 4);
    assert_true(amb_list_head(amb_list_tail(s)) == AMB_SMALL(0xe9));
    assert_true(amb_list_head(amb_list_tail(amb_list_tail(s))) == AMB_SMALL(0x20ac));
    char buf[16];
    assert_ok(amb_string_get(s, buf, sizeof buf, &len));
    assert_string_equal(buf, "h\xc3\xa9\xe2\x82\xac!");
    assert_int_equal(len, 7);
    assert_rc(AMB_EBUFSIZE, amb_string_get(s, buf, 4, &len));
    assert_int_equal(len, 7);
    assert_int_equal(strlen(buf), 3);
    assert_true(amb_string(h, "\xff") == AMB_NONE);
    assert_true(amb_string(h, "") == AMB_NIL);
    assert_rc(AMB_ETYPE, amb_string_get(AMB_LIST(h, AMB_ATOM_OK), buf, sizeof buf, &len));
    assert_rc(AMB_ETYPE, amb_string_get(AMB_LIST(h, AMB_SMALL(0xd800)), buf, 16, &len));
    amb_heap_free(h);
}

AMB_TEST(binaries_heap_shared_and_sub)
{
    amb_heap *h = heap_new();
    amb_term small = amb_binary(h, "abc", 3);
    const uint8_t *data;
    size_t size;
    unsigned bits;
    assert_ok(amb_bitstring_get(small, &data, &size, &bits));
    assert_int_equal(size, 3);
    assert_int_equal(bits, 0);
    assert_memory_equal(data, "abc", 3);
    assert_true(amb_is_binary(small));
    assert_null(((amb__binary *)(void *)amb__box(small))->refc);

    uint8_t big[1000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)i;
    amb_term shared = amb_binary(h, big, sizeof big);
    amb__refbin *rb = ((amb__binary *)(void *)amb__box(shared))->refc;
    assert_non_null(rb);
    assert_int_equal(atomic_load(&rb->refs), 1);
    amb_term sub = amb_sub_binary(h, shared, 10, 500);
    assert_int_equal(atomic_load(&rb->refs), 2);
    assert_ok(amb_binary_get(sub, &data, &size));
    assert_int_equal(size, 500);
    assert_int_equal(data[0], 10);
    assert_true(data == rb->data + 10); /* no copy */
    assert_true(amb_sub_binary(h, shared, 999, 2) == AMB_NONE);
    assert_true(amb_sub_binary(h, AMB_ATOM_OK, 0, 0) == AMB_NONE);

    /* A copy on another heap shares the bytes and survives the first heap. */
    amb_heap *other = heap_new();
    amb_term copy;
    assert_ok(amb_term_copy(other, sub, &copy));
    assert_int_equal(atomic_load(&rb->refs), 3);
    amb_heap_free(h);
    assert_int_equal(atomic_load(&rb->refs), 1);
    assert_ok(amb_binary_get(copy, &data, &size));
    assert_int_equal(data[499], (uint8_t)509);
    amb_heap_free(other);

    uint8_t *w;
    h = heap_new();
    amb_term filled = amb_binary_alloc(h, 200, &w);
    memset(w, 7, 200);
    assert_ok(amb_binary_get(filled, &data, &size));
    assert_int_equal(data[199], 7);
    amb_heap_free(h);
}

AMB_TEST(bitstrings_keep_their_bit_count)
{
    amb_heap *h = heap_new();
    uint8_t bytes[] = {0xab, 0xff};
    amb_term b = amb_bitstring(h, bytes, 11);
    const uint8_t *data;
    size_t size;
    unsigned bits;
    assert_ok(amb_bitstring_get(b, &data, &size, &bits));
    assert_int_equal(size, 1);
    assert_int_equal(bits, 3);
    assert_int_equal(data[1], 0xe0); /* unused low bits cleared */
    assert_false(amb_is_binary(b));
    assert_true(amb_is_bitstring(b));
    assert_true(amb_sub_binary(h, b, 0, 1) == AMB_NONE);
    /* amb_binary_get takes whole bytes only; its outputs stay untouched. */
    size = 99;
    assert_rc(AMB_ETYPE, amb_binary_get(b, &data, &size));
    assert_int_equal(size, 99);
    assert_rc(AMB_ETYPE, amb_binary_get(AMB_ATOM_OK, NULL, NULL));
    amb_term whole = amb_bitstring(h, bytes, 16);
    assert_true(amb_is_binary(whole));
    assert_ok(amb_binary_get(whole, NULL, &size));
    assert_int_equal(size, 2);
    amb_heap_free(h);
}

AMB_TEST(maps_sort_keys_and_last_duplicate_wins)
{
    amb_heap *h = heap_new();
    amb_term f1 = amb_float(h, 1.0);
    amb_term keys[] = {amb_atom("b"), AMB_SMALL(1), f1, amb_atom("a"), amb_atom("b")};
    amb_term vals[] = {AMB_SMALL(10), AMB_SMALL(20), AMB_SMALL(30), AMB_SMALL(40),
                       AMB_SMALL(50)};
    amb_term m = amb_map(h, 5, keys, vals);
    assert_true(amb_is_map(m));
    assert_int_equal(amb_map_size(m), 4); /* 1 and 1.0 are two keys; b once */
    amb_term v;
    assert_ok(amb_map_get(m, amb_atom("b"), &v));
    assert_true(v == AMB_SMALL(50));
    assert_ok(amb_map_get(m, AMB_SMALL(1), &v));
    assert_true(v == AMB_SMALL(20));
    assert_ok(amb_map_get(m, f1, &v));
    assert_true(v == AMB_SMALL(30));
    assert_rc(AMB_ENOTFOUND, amb_map_get(m, amb_atom("zz"), &v));
    assert_rc(AMB_ETYPE, amb_map_get(AMB_NIL, AMB_SMALL(1), &v));
    /* Iteration order: 1 < 1.0 < a < b. */
    amb_term k, want[] = {AMB_SMALL(1), f1, amb_atom("a"), amb_atom("b")};
    amb_map_iter it;
    assert_ok(amb_map_iterator(m, &it));
    for (size_t i = 0; i < 4; i++) {
        assert_true(amb_map_next(&it, &k, &v));
        assert_true(k == want[i]);
    }
    assert_false(amb_map_next(&it, &k, &v));

    amb_term m2 = amb_map_put(h, m, amb_atom("c"), AMB_SMALL(60));
    assert_int_equal(amb_map_size(m2), 5);
    assert_int_equal(amb_map_size(m), 4); /* immutable */
    amb_term m3 = amb_map_put(h, m2, amb_atom("a"), AMB_SMALL(0));
    assert_int_equal(amb_map_size(m3), 5);
    assert_ok(amb_map_get(m3, amb_atom("a"), &v));
    assert_true(v == AMB_SMALL(0));
    assert_ok(amb_map_get(m3, amb_atom("c"), &v));
    assert_true(v == AMB_SMALL(60));
    assert_true(amb_map(h, 0, NULL, NULL) != AMB_NONE);
    /* Many keys take the heap-allocated path. */
    amb_term many_k[100], many_v[100];
    for (int i = 0; i < 100; i++) {
        many_k[i] = AMB_SMALL(99 - i);
        many_v[i] = AMB_SMALL(i);
    }
    amb_term big = amb_map(h, 100, many_k, many_v);
    assert_int_equal(amb_map_size(big), 100);
    assert_ok(amb_map_get(big, AMB_SMALL(0), &v));
    assert_true(v == AMB_SMALL(99));
    amb_heap_free(h);
}

AMB_TEST(pids_refs_ports_funs_round_trip_their_parts)
{
    amb_heap *h = heap_new();
    amb_term node = amb_atom("a@b");
    amb_term pid = amb_pid_term(h, node, 85, 3, 7);
    amb_term n;
    uint32_t id, serial, creation;
    assert_ok(amb_pid_get(pid, &n, &id, &serial, &creation));
    assert_true(n == node);
    assert_int_equal(id, 85);
    assert_int_equal(serial, 3);
    assert_int_equal(creation, 7);
    assert_int_equal(amb_type_of(pid), AMB_T_PID);
    assert_true(amb_pid_term(h, AMB_SMALL(1), 1, 1, 1) == AMB_NONE);

    uint32_t words[3] = {1, 2, 3}, back[5];
    size_t nw = 0;
    amb_term ref = amb_ref_term(h, node, 9, words, 3);
    assert_ok(amb_ref_get(ref, back, 5, &n, &creation, &nw));
    assert_int_equal(nw, 3);
    assert_int_equal(back[2], 3);
    nw = 0;
    assert_rc(AMB_EBUFSIZE, amb_ref_get(ref, back, 2, NULL, NULL, &nw));
    assert_int_equal(nw, 3); /* the count needed */
    assert_rc(AMB_EBUFSIZE, amb_ref_get(ref, NULL, 0, NULL, NULL, &nw));
    assert_rc(AMB_EBADARG, amb_ref_get(ref, NULL, 3, NULL, NULL, &nw));
    assert_true(amb_ref_term(h, node, 0, words, 0) == AMB_NONE);
    assert_true(amb_ref_term(h, node, 0, back, 6) == AMB_NONE);

    uint64_t pid64;
    amb_term port = amb_port_term(h, node, UINT64_C(1) << 40, 2);
    assert_ok(amb_port_get(port, &n, &pid64, &creation));
    assert_true(pid64 == UINT64_C(1) << 40);
    assert_int_equal(amb_type_of(port), AMB_T_PORT);

    amb_term fun = amb_export_term(h, amb_atom("erlang"), amb_atom("abs"), 1);
    amb_term mod, fn;
    uint8_t arity;
    assert_ok(amb_export_get(fun, &mod, &fn, &arity));
    assert_int_equal(arity, 1);
    assert_string_equal(amb_atom_name(fn, NULL), "abs");
    assert_int_equal(amb_type_of(fun), AMB_T_FUN);

    uint8_t ext[] = {0, 0, 0, 20, 1, 2, 3};
    amb_term clo = amb_closure_term(h, ext, sizeof ext);
    const uint8_t *e;
    size_t elen;
    assert_ok(amb_closure_get(clo, &e, &elen));
    assert_int_equal(elen, sizeof ext);
    assert_memory_equal(e, ext, sizeof ext);
    assert_rc(AMB_ETYPE, amb_export_get(clo, &mod, &fn, &arity));
    amb_heap_free(h);
}

AMB_TEST(local_node_pids_are_immediate_values)
{
    amb_heap *h = heap_new();
    amb_term node = amb_atom("local@test");
    unsigned slot;
    assert_ok(amb__node_register(node, 5, &slot));
    assert_rc(AMB_EEXIST, amb__node_register(node, 5, &slot));
    amb_term pid = amb_pid_term(NULL, node, 42, 7, 5);
    assert_true(amb_is_local_pid(pid));
    assert_int_equal(amb_type_of(pid), AMB_T_PID);
    amb_term n;
    uint32_t id, serial, creation;
    assert_ok(amb_pid_get(pid, &n, &id, &serial, &creation));
    assert_true(n == node);
    assert_int_equal(id, 42);
    assert_int_equal(serial, 7);
    assert_int_equal(creation, 5);
    /* The same node with another creation, or numbers too large, are boxes. */
    amb_term other = amb_pid_term(h, node, 42, 7, 6);
    assert_false(amb_is_local_pid(other));
    assert_true(amb_pid_term(NULL, node, 42, 7, 6) == AMB_NONE);
    amb_term wide = amb_pid_term(h, node, 1u << 30, 7, 5);
    assert_false(amb_is_local_pid(wide));
    /* Equal pids are equal words; order and hash see the parts. */
    assert_true(amb_pid_term(h, node, 42, 7, 5) == pid);
    assert_true(amb_compare(pid, other) < 0);
    assert_true(amb_compare(amb_pid_term(NULL, node, 41, 8, 5), pid) >
                0); /* serial first */
    assert_false(amb_equal(pid, other));
    assert_true(amb_hash(pid) != amb_hash(other));
    amb_term copy;
    assert_ok(amb_term_copy(h, pid, &copy));
    assert_true(copy == pid);
    amb_heap_free(h);
}

AMB_TEST(local_node_ports_are_immediate_values)
{
    amb_heap *h = heap_new();
    amb_term node = amb_atom("localport@test");
    unsigned slot;
    assert_ok(amb__node_register(node, 3, &slot));
    amb_term port = amb_port_term(NULL, node, 42, 3);
    assert_true(amb_is_local_port(port));
    assert_false(amb_is_local_pid(port));
    assert_false(amb_is_nil(port));
    assert_int_equal(amb_type_of(port), AMB_T_PORT);
    amb_term n;
    uint64_t id;
    uint32_t creation;
    assert_ok(amb_port_get(port, &n, &id, &creation));
    assert_true(n == node);
    assert_int_equal(id, 42);
    assert_int_equal(creation, 3);
    /* The widest id still fits; one more bit, or another creation, is a box. */
    amb_term widest = amb_port_term(NULL, node, (UINT64_C(1) << 49) - 1, 3);
    assert_true(amb_is_local_port(widest));
    assert_ok(amb_port_get(widest, NULL, &id, NULL));
    assert_true(id == (UINT64_C(1) << 49) - 1);
    amb_term wide = amb_port_term(h, node, UINT64_C(1) << 49, 3);
    assert_false(amb_is_local_port(wide));
    assert_int_equal(amb_type_of(wide), AMB_T_PORT);
    amb_term other = amb_port_term(h, node, 42, 4);
    assert_false(amb_is_local_port(other));
    assert_true(amb_port_term(NULL, node, 42, 4) == AMB_NONE);
    /* Equal ports are equal words; order (node, creation, id) and hash see
     * the parts; ports sort between funs and pids. */
    assert_true(amb_port_term(h, node, 42, 3) == port);
    assert_true(amb_compare(port, other) < 0);
    assert_true(amb_compare(port, amb_port_term(NULL, node, 43, 3)) < 0);
    assert_true(amb_compare(port, amb_pid_term(h, node, 1, 0, 3)) < 0);
    assert_true(amb_compare(amb_export_term(h, node, node, 0), port) < 0);
    assert_false(amb_equal(port, other));
    assert_true(amb_hash(port) != amb_hash(other));
    assert_true(amb_hash(port) == amb_hash(amb_port_term(NULL, node, 42, 3)));
    amb_term copy;
    assert_ok(amb_term_copy(h, port, &copy));
    assert_true(copy == port);
    /* Printed like any port, read back as the same word. */
    char text[128];
    assert_ok(amb_print(port, text, sizeof text, NULL));
    assert_string_equal(text, "#Port<'localport@test'.42.3>");
    amb_term back;
    assert_ok(amb_parse(h, text, strlen(text), &back, NULL));
    assert_true(back == port);
    amb_heap_free(h);
}

AMB_TEST(copy_is_deep_and_independent)
{
    amb_heap *a = heap_new(), *b = heap_new();
    uint8_t blob[300] = {1};
    amb_term big;
    assert_ok(amb_int_from_string(a, "99999999999999999999999", 23, &big));
    amb_term keys[] = {amb_atom("k")};
    amb_term vals[] = {amb_string(a, "v")};
    amb_term t =
        AMB_TUPLE(a, AMB_ATOM_OK, big, amb_float(a, 2.5),
                  AMB_LIST(a, amb_binary(a, "xy", 2), amb_binary(a, blob, 300)),
                  amb_map(a, 1, keys, vals), amb_cons(a, AMB_SMALL(1), AMB_SMALL(2)),
                  amb_pid_term(a, AMB_ATOM_NONODE_NOHOST, 1, 2, 3));
    assert_true(t != AMB_NONE);
    amb_term c;
    assert_ok(amb_term_copy(b, t, &c));
    assert_true(amb_equal(t, c));
    size_t sz = amb_term_size(t);
    assert_true(sz > 0);
    amb_heap_free(a); /* the copy must not depend on a */
    assert_int_equal(amb_tuple_arity(c), 7);
    amb_term v;
    assert_ok(amb_map_get(amb_tuple_elem(c, 4), amb_atom("k"), &v));
    assert_true(amb_list_head(v) == AMB_SMALL('v'));
    /* Immediates copy to themselves without allocating. */
    amb_term imm;
    assert_ok(amb_term_copy(b, AMB_ATOM_OK, &imm));
    assert_true(imm == AMB_ATOM_OK);
    assert_rc(AMB_EBADARG, amb_term_copy(b, AMB_NONE, &imm));
    assert_rc(AMB_EBADARG, amb_term_copy(NULL, AMB_ATOM_OK, &imm));
    amb_heap_free(b);
}

AMB_TEST(copy_of_deep_and_long_terms_uses_no_recursion)
{
    amb_heap *a = heap_new(), *b = heap_new();
    amb_term t = AMB_NIL;
    for (int i = 0; i < 200000; i++)
        t = AMB_TUPLE(a, t);
    amb_term l = AMB_NIL;
    for (int i = 0; i < 200000; i++)
        l = amb_cons(a, AMB_SMALL(i), l);
    amb_term both = AMB_TUPLE(a, t, l);
    amb_term c;
    assert_ok(amb_term_copy(b, both, &c));
    assert_true(amb_equal(both, c));
    assert_int_equal(amb_compare(both, c), 0);
    assert_true(amb_hash(both) == amb_hash(c));
    amb_heap_free(a);
    amb_heap_free(b);
}

AMB_TEST(heap_reset_keeps_one_block_and_releases_binaries)
{
    amb_heap *h = heap_new();
    assert_int_equal(amb_heap_size(h), 0);
    uint8_t blob[500] = {0};
    amb_term shared = amb_binary(h, blob, sizeof blob);
    amb__refbin *rb = ((amb__binary *)(void *)amb__box(shared))->refc;
    amb_heap *keeper = heap_new();
    amb_term kept;
    assert_ok(amb_term_copy(keeper, shared, &kept));
    assert_int_equal(atomic_load(&rb->refs), 2);
    for (int i = 0; i < 10000; i++)
        assert_true(AMB_TUPLE(h, AMB_SMALL(i), AMB_SMALL(i)) != AMB_NONE);
    size_t grown = amb_heap_size(h);
    assert_true(grown > 10000 * 24);
    amb_heap_reset(h);
    assert_int_equal(atomic_load(&rb->refs), 1);
    assert_true(amb_heap_size(h) > 0);
    assert_true(amb_heap_size(h) < grown);
    /* The steady state: the same work after a reset grows nothing more. */
    size_t after_reset = amb_heap_size(h);
    for (int i = 0; i < 100; i++)
        assert_true(AMB_TUPLE(h, AMB_SMALL(i)) != AMB_NONE);
    assert_int_equal(amb_heap_size(h), after_reset);
    amb_heap_reset(NULL);
    amb_heap_free(NULL);
    amb_heap_free(h);
    amb_heap_free(keeper);
    assert_rc(AMB_EBADARG, amb_heap_new(NULL));
}

/* Allocation N and every one after it fail, for N = 0, 1, 2, ... until the
 * whole build and copy succeeds; each step fails cleanly before. */
AMB_TEST(out_of_memory_is_an_error_at_every_allocation)
{
    /* Atoms first, so the table exists before allocation can fail. */
    amb_term key = amb_atom("oom_key");
    assert_true(key != AMB_NONE);
    bool succeeded = false;
    for (long n = 0; n < 200 && !succeeded; n++) {
        amb_test_alloc_fail((uint64_t)n, AMB_TEST_FAIL_FOREVER);
        amb_heap *h = NULL;
        if (amb_heap_new(&h) != 0)
            continue;
        uint8_t blob[100] = {0};
        amb_term ks[20], vs[20];
        for (int i = 0; i < 20; i++) {
            ks[i] = AMB_SMALL(i);
            vs[i] = amb_binary(h, blob, sizeof blob);
        }
        amb_term t = AMB_TUPLE(h, amb_map(h, 20, ks, vs), amb_float(h, 1.5), key);
        amb_heap *other = NULL;
        amb_term copy;
        if (t != AMB_NONE && amb_heap_new(&other) == 0 &&
            amb_term_copy(other, t, &copy) == 0) {
            assert_true(amb_equal(t, copy));
            succeeded = true;
        }
        amb_heap_free(other);
        amb_heap_free(h);
    }
    amb_test_alloc_disarm();
    assert_true(succeeded);
    amb_allocator bad = {.realloc = amb_test_realloc_, .free = amb_test_free_};
    assert_rc(AMB_EBADARG, amb_set_allocator(&bad));
}

AMB_TEST(errors_have_names_and_text)
{
    assert_string_equal(amb_err_name(AMB_ENOMEM), "AMB_ENOMEM");
    assert_string_equal(amb_err_name(0), "AMB_OK");
    assert_string_equal(amb_err_name(-9999), "AMB_E?");
    assert_string_equal(amb_strerror(-9999), "unknown error");
    assert_true(strlen(amb_strerror(AMB_EDECODE)) > 5);
#define CHECK_ERR(name, value, msg)       \
    assert_int_equal(AMB_E##name, value); \
    assert_string_equal(amb_strerror(value), msg);
    AMB_ERRORS(CHECK_ERR)
#undef CHECK_ERR
    /* The table is grouped by layer, not by value: the values still run
     * from -1 to -n, each once. */
    int seen[64] = {0};
    size_t n = 0;
#define COUNT_ERR(name, value, msg)             \
    assert_true(-(value) > 0 && -(value) < 64); \
    seen[-(value)]++;                           \
    n++;
    AMB_ERRORS(COUNT_ERR)
#undef COUNT_ERR
    for (size_t i = 1; i <= n; i++)
        assert_int_equal(seen[i], 1);
    assert_string_equal(amb_version(), AMB_VERSION_STRING);
    assert_string_equal(amb_type_name(AMB_T_BITSTRING), "bitstring");
    assert_string_equal(amb_type_name((amb_type)99), "none");
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(small_integers_are_immediate_and_canonical),
              AMB_TEST_ENTRY(big_integers_round_trip_through_decimal),
              AMB_TEST_ENTRY(big_integers_are_bounded),
              AMB_TEST_ENTRY(int_bytes_expose_sign_and_magnitude),
              AMB_TEST_ENTRY(floats_are_finite_boxes), AMB_TEST_ENTRY(tuples_and_records),
              AMB_TEST_ENTRY(lists_proper_improper_and_strings),
              AMB_TEST_ENTRY(binaries_heap_shared_and_sub),
              AMB_TEST_ENTRY(bitstrings_keep_their_bit_count),
              AMB_TEST_ENTRY(maps_sort_keys_and_last_duplicate_wins),
              AMB_TEST_ENTRY(pids_refs_ports_funs_round_trip_their_parts),
              AMB_TEST_ENTRY(local_node_pids_are_immediate_values),
              AMB_TEST_ENTRY(local_node_ports_are_immediate_values),
              AMB_TEST_ENTRY(copy_is_deep_and_independent),
              AMB_TEST_ENTRY(copy_of_deep_and_long_terms_uses_no_recursion),
              AMB_TEST_ENTRY(heap_reset_keeps_one_block_and_releases_binaries),
              AMB_TEST_ENTRY(out_of_memory_is_an_error_at_every_allocation),
              AMB_TEST_ENTRY(errors_have_names_and_text))

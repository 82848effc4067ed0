/*
 * term_test.h - what the term tests share (print, parse, pack): a heap
 * fixture and a small vocabulary for building terms in C. Include after
 * amb_test.h (whose allocator injects failures: amb_test_alloc_fail).
 */
#ifndef AMB_TERM_TEST_H
#define AMB_TERM_TEST_H

#include "amb_test.h"

/* The heap of the current test, made and freed by the cmocka fixture. */
static amb_heap *H;

__attribute__((unused)) static int heap_setup(void **state)
{
    (void)state;
    return amb_heap_new(&H) == 0 ? 0 : -1;
}

__attribute__((unused)) static int heap_teardown(void **state)
{
    (void)state;
    amb_heap_free(H);
    H = NULL;
    return 0;
}

/* A test entry that runs with the heap fixture: AMB_TEST_MAIN(HEAP_TEST(a), ...). */
#define HEAP_TEST(name) cmocka_unit_test_setup_teardown(name, heap_setup, heap_teardown)

#define A(name)    amb_atom(name)
#define I(v)       amb_int(H, (v))
#define F(v)       amb_float(H, (v))
#define T(...)     AMB_TUPLE(H, __VA_ARGS__)
#define T0()       amb_tuple(H, 0, NULL)
#define L(...)     AMB_LIST(H, __VA_ARGS__)
#define CONS(h, t) amb_cons(H, (h), (t))
#define S(utf8)    amb_string(H, (utf8))
#define BIN(...) \
    amb_binary(H, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))
#define BITS(nbits, ...) amb_bitstring(H, (const uint8_t[]){__VA_ARGS__}, (nbits))
#define FUN(m, f, arity) amb_export_term(H, A(m), A(f), (arity))

#endif /* AMB_TERM_TEST_H */

/*
 * tests/unit/heap_mark.c - heap marks (include/ambitious/term.h,
 * amb_heap_save / amb_heap_rewind): a scope of scratch terms on a heap that
 * also holds terms to keep.
 *
 * What is proved: a rewind drops what was built after the mark and gives
 * its memory back (amb_heap_size returns to the marked size, plus at most
 * the one smallest block the rewind keeps for reuse) while older terms stay
 * intact; this holds when the scratch work grew the heap by
 * new blocks, when it made terms bigger than a quarter of a block (they get
 * blocks of their own, linked behind the current block, also around an
 * older big term that must survive), for nested marks, and in a loop of a
 * hundred thousand scopes that does not grow; shared binaries (larger than
 * AMB_HEAP_BINARY_MAX) referred to only after the mark lose exactly those
 * references; a NULL heap is a no-op; a heap past 8 MiB takes blocks of a
 * huge page each, aligned to one. Under ASan a block freed twice or lost
 * shows up as an error or a leak.
 *
 * The heap of each test is H (tests/term_test.h's fixture).
 */
#include <stdatomic.h>

#include "amb_test.h"
#include "term_internal.h"
#include "term_test.h"

/* A tuple {0, 1, ..., n-1} (n words and more: big when n is large). */
static amb_term seq_tuple(size_t n)
{
    amb_term *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = amb_int(NULL, (int64_t)i);
    amb_term t = amb_tuple(H, n, v);
    free(v);
    assert_true(t != AMB_NONE);
    return t;
}

static void assert_seq_tuple(amb_term t, size_t n)
{
    assert_true(amb_is_tuple(t));
    assert_int_equal(amb_tuple_arity(t), n);
    for (size_t i = 0; i < n; i += 1 + n / 64)
        assert_true(amb_tuple_elem(t, i) == amb_int(NULL, (int64_t)i));
    assert_true(amb_tuple_elem(t, n - 1) == amb_int(NULL, (int64_t)(n - 1)));
}

/* Builds small terms until the heap has taken at least `bytes` more. */
static void grow_by(size_t bytes)
{
    size_t start = amb_heap_size(H);
    while (amb_heap_size(H) < start + bytes)
        assert_true(T(I(1), A("scratch"), L(I(2), I(3))) != AMB_NONE);
}

/* A rewind keeps at most one block of the smallest size (512 bytes of
 * words) for reuse (term.h); its header comes on top. */
#define SPARE_BYTES (512 + 64)

/* The heap is back at the size it had at the mark (size `before`). */
#define assert_rewound(before)                                                         \
    do {                                                                               \
        size_t now_ = amb_heap_size(H), before_ = (before);                            \
        if (now_ < before_ || now_ > before_ + SPARE_BYTES)                            \
            fail_msg("heap size %zu after the rewind, expected %zu (+ a spare)", now_, \
                     before_);                                                         \
    } while (0)

static amb__refbin *refbin_of(amb_term bin)
{
    return ((amb__binary *)(void *)amb__box(bin))->refc;
}

static amb_term shared_binary(size_t size, uint8_t fill)
{
    uint8_t *data = malloc(size);
    assert_non_null(data);
    memset(data, fill, size);
    amb_term b = amb_binary(H, data, size);
    free(data);
    assert_true(b != AMB_NONE);
    assert_non_null(refbin_of(b)); /* really shared, not a heap binary */
    return b;
}

AMB_TEST(rewind_drops_what_came_after_the_mark_and_keeps_the_rest)
{
    amb_term keep = T(A("keep"), S("text"), BIN(1, 2, 3), F(1.5));
    assert_true(keep != AMB_NONE);
    size_t before = amb_heap_size(H);
    amb_heap_mark m = amb_heap_save(H);
    amb_term scratch = T(A("scratch"), I(42));
    assert_true(scratch != AMB_NONE);
    amb_heap_rewind(H, m);
    assert_rewound(before);
    assert_term_text(keep, "{keep,[116,101,120,116],<<1,2,3>>,1.5}");
    /* The heap goes on: new terms are built where the scratch was. */
    amb_term next = T(A("next"), L(I(1), I(2)));
    assert_term_text(next, "{next,[1,2]}");
    assert_term_text(keep, "{keep,[116,101,120,116],<<1,2,3>>,1.5}");
}

AMB_TEST(rewind_frees_blocks_the_scratch_work_added)
{
    amb_term keep = T(A("keep"), I(7));
    size_t before = amb_heap_size(H);
    amb_heap_mark m = amb_heap_save(H);
    grow_by(1u << 20); /* many blocks, doubling up to the largest size */
    assert_true(amb_heap_size(H) >= before + (1u << 20));
    amb_heap_rewind(H, m);
    assert_rewound(before);
    assert_term_text(keep, "{keep,7}");
}

AMB_TEST(rewind_to_a_mark_of_an_empty_heap_empties_it)
{
    amb_heap_mark m = amb_heap_save(H);
    assert_int_equal(amb_heap_size(H), 0);
    grow_by(100000);
    amb_heap_rewind(H, m);
    assert_rewound(0);
    /* Still a working heap. */
    assert_term_text(T(A("again"), I(1)), "{again,1}");
}

AMB_TEST(rewind_frees_a_big_term_in_a_block_of_its_own)
{
    /* The heap has a first small block; a term larger than a quarter of the
     * next block size gets a block of its own behind it. */
    amb_term keep = T(A("keep"), I(1));
    size_t before = amb_heap_size(H);
    amb_heap_mark m = amb_heap_save(H);
    amb_term big = seq_tuple(5000);
    assert_true(amb_heap_size(H) >= before + 5000 * sizeof(amb_term));
    assert_seq_tuple(big, 5000);
    amb_heap_rewind(H, m);
    assert_rewound(before);
    assert_term_text(keep, "{keep,1}");
    /* Small terms go on without new blocks (the marked block's rest or the
     * spare takes them). */
    size_t rewound = amb_heap_size(H);
    assert_term_text(T(A("later"), I(2)), "{later,2}");
    assert_int_equal(amb_heap_size(H), rewound);
}

AMB_TEST(rewind_keeps_an_older_big_term_behind_the_current_block)
{
    /* A big term before the mark sits in its own block right behind the
     * current one; big terms made after the mark are linked in front of
     * it. Rewind must free those and keep it. */
    amb_term keep_small = T(A("keep"), I(1));
    amb_term keep_big = seq_tuple(3000);
    size_t before = amb_heap_size(H);
    amb_heap_mark m = amb_heap_save(H);
    amb_term b1 = seq_tuple(4000);  /* behind the same current block */
    grow_by(50000);                 /* a new current block (or several) */
    amb_term b2 = seq_tuple(70000); /* behind the new current block */
    grow_by(600000);
    amb_term b3 = seq_tuple(20000);
    assert_seq_tuple(b1, 4000);
    assert_seq_tuple(b2, 70000);
    assert_seq_tuple(b3, 20000);
    amb_heap_rewind(H, m);
    assert_rewound(before);
    assert_seq_tuple(keep_big, 3000);
    assert_term_text(keep_small, "{keep,1}");
    /* And again from the same point: the mark is still good (no reset and
     * no older rewind happened since). */
    amb_term b4 = seq_tuple(9000);
    grow_by(10000);
    assert_seq_tuple(b4, 9000);
    amb_heap_rewind(H, m);
    assert_rewound(before);
    assert_seq_tuple(keep_big, 3000);
}

AMB_TEST(rewind_with_nested_marks)
{
    amb_term a = T(A("a"), I(1));
    size_t s1 = amb_heap_size(H);
    amb_heap_mark m1 = amb_heap_save(H);
    amb_term b = seq_tuple(10000);
    grow_by(20000);
    size_t s2 = amb_heap_size(H);
    amb_heap_mark m2 = amb_heap_save(H);
    amb_term c = seq_tuple(30000);
    grow_by(300000);
    assert_seq_tuple(c, 30000);
    amb_heap_rewind(H, m2); /* inner scope */
    assert_rewound(s2);
    assert_seq_tuple(b, 10000);
    amb_term d = seq_tuple(2000); /* built in the outer scope after the inner one */
    assert_seq_tuple(d, 2000);
    amb_heap_rewind(H, m1); /* outer scope */
    assert_rewound(s1);
    assert_term_text(a, "{a,1}");
}

AMB_TEST(rewind_in_a_loop_does_not_grow)
{
    amb_term state = T(A("state"), I(0));
    size_t before = amb_heap_size(H), steady = 0;
    for (int i = 0; i < 100000; i++) {
        amb_heap_mark m = amb_heap_save(H);
        amb_term t = T(A("msg"), I(i), L(I(i), I(i + 1)), S("some text here"));
        assert_true(t != AMB_NONE);
        if (i % 1000 == 0)
            (void)seq_tuple(1000 + (size_t)i / 100); /* a big one now and then */
        amb_heap_rewind(H, m);
        assert_rewound(before);
        /* From the second scope on, the size is the same every time: the
         * steady state allocates nothing. */
        if (i == 1)
            steady = amb_heap_size(H);
        if (i > 1 && amb_heap_size(H) != steady)
            fail_msg("iteration %d: heap size %zu, steady state %zu", i, amb_heap_size(H),
                     steady);
    }
    assert_term_text(state, "{state,0}");
}

AMB_TEST(rewind_drops_references_on_shared_binaries_made_after_the_mark)
{
    amb_term kept = shared_binary(1000, 0xab);
    amb__refbin *rk = refbin_of(kept);
    assert_int_equal(atomic_load(&rk->refs), 1);
    /* Another heap holds a reference too, so we can watch a binary made
     * after the mark outlive the rewind. */
    amb_heap *other = NULL;
    assert_ok(amb_heap_new(&other));

    size_t before = amb_heap_size(H);
    amb_heap_mark m = amb_heap_save(H);
    /* References to the kept binary taken after the mark: a copy, two sub
     * binaries (one of them > 64 bytes, one small), a copy in a tuple. */
    amb_term copy;
    assert_ok(amb_term_copy(H, kept, &copy));
    amb_term sub_big = amb_sub_binary(H, kept, 10, 500);
    amb_term sub_small = amb_sub_binary(H, kept, 0, 3);
    assert_true(sub_big != AMB_NONE && sub_small != AMB_NONE);
    amb_term in_tuple;
    assert_ok(amb_term_copy(H, T(A("wrap"), kept, sub_big), &in_tuple));
    size_t during = atomic_load(&rk->refs);
    assert_true(during >= 4); /* at least copy, sub_big, and the tuple's two */

    /* A binary made after the mark, shared with the other heap. */
    amb_term fresh = shared_binary(4096, 0x5a);
    amb__refbin *rf = refbin_of(fresh);
    amb_term fresh_other;
    assert_ok(amb_term_copy(other, fresh, &fresh_other));
    assert_int_equal(atomic_load(&rf->refs), 2);
    /* And a big term next to them, for a block of its own. */
    (void)seq_tuple(20000);

    amb_heap_rewind(H, m);
    assert_rewound(before);
    assert_int_equal(atomic_load(&rk->refs), 1);
    assert_int_equal(atomic_load(&rf->refs), 1); /* only the other heap's */
    const uint8_t *data;
    size_t size;
    assert_ok(amb_binary_get(kept, &data, &size));
    assert_int_equal(size, 1000);
    assert_int_equal(data[999], 0xab);
    assert_ok(amb_binary_get(fresh_other, &data, &size));
    assert_int_equal(size, 4096);
    assert_int_equal(data[4095], 0x5a);

    /* A binary from before the mark, one after, and rewind again. */
    amb_heap_mark m2 = amb_heap_save(H);
    amb_term again;
    assert_ok(amb_term_copy(H, fresh_other, &again));
    assert_int_equal(atomic_load(&rf->refs), 2);
    amb_heap_rewind(H, m2);
    assert_int_equal(atomic_load(&rf->refs), 1);
    amb_heap_free(other); /* the last reference: ASan sees it freed */
    assert_int_equal(atomic_load(&rk->refs), 1);
}

AMB_TEST(rewind_then_reset_and_free_release_each_reference_once)
{
    amb_term kept = shared_binary(200, 1);
    amb__refbin *rk = refbin_of(kept);
    amb_heap *other = NULL;
    assert_ok(amb_heap_new(&other));
    amb_term held;
    assert_ok(amb_term_copy(other, kept, &held)); /* keeps rk alive */
    assert_int_equal(atomic_load(&rk->refs), 2);
    amb_heap_mark m = amb_heap_save(H);
    for (int i = 0; i < 10; i++) {
        amb_term c;
        assert_ok(amb_term_copy(H, kept, &c));
    }
    assert_int_equal(atomic_load(&rk->refs), 12);
    amb_heap_rewind(H, m);
    assert_int_equal(atomic_load(&rk->refs), 2);
    /* The reference made before the mark is released once by reset. */
    amb_heap_reset(H);
    assert_int_equal(atomic_load(&rk->refs), 1);
    const uint8_t *data;
    size_t size;
    assert_ok(amb_binary_get(held, &data, &size));
    assert_int_equal(size, 200);
    amb_heap_free(other);
}

AMB_TEST(save_and_rewind_of_null_are_no_ops)
{
    amb_heap_mark m = amb_heap_save(NULL);
    amb_heap_rewind(NULL, m);
    amb_heap_rewind(NULL, amb_heap_save(H));
    amb_term t = T(A("fine"));
    assert_term_text(t, "{fine}");
}

/* Heap blocks by size: a big heap's are huge pages (heap.c). */
AMB_TEST(a_heap_past_8_mib_takes_blocks_of_a_huge_page_each)
{
    amb_heap_mark m = amb_heap_save(H);
    amb_term list = AMB_NIL;
    while (amb_heap_size(H) < ((size_t)24 << 20))
        list = CONS(I(1), list); /* 16 bytes a cell */
    amb__range r[256];
    size_t n = amb__heap_ranges(H, r, AMB_COUNTOF(r)), huge = 0;
    assert_true(n <= AMB_COUNTOF(r));
    for (size_t i = 0; i < n; i++) {
        size_t words = (size_t)(r[i].hi - r[i].lo);
        uintptr_t start = (uintptr_t)r[i].lo - sizeof(amb__heap_block);
        assert_true(words <= ((size_t)2 << 20) / 8); /* at most a huge page */
        if (words * 8 + sizeof(amb__heap_block) == ((size_t)2 << 20)) {
            assert_int_equal(start % ((size_t)2 << 20), 0); /* aligned to one */
            huge++;
        }
    }
    assert_true(huge >= 6); /* the 16 MiB past the first 8 */
    /* The list reads back, and a rewind gives the huge blocks back. */
    size_t cells = 0;
    for (amb_term t = list; amb_is_cons(t); t = amb_list_tail(t))
        cells++;
    assert_true(cells > 1000000);
    amb_heap_rewind(H, m);
    assert_true(amb_heap_size(H) <= 4096);
}

AMB_TEST_MAIN(HEAP_TEST(rewind_drops_what_came_after_the_mark_and_keeps_the_rest),
              HEAP_TEST(rewind_frees_blocks_the_scratch_work_added),
              HEAP_TEST(rewind_to_a_mark_of_an_empty_heap_empties_it),
              HEAP_TEST(rewind_frees_a_big_term_in_a_block_of_its_own),
              HEAP_TEST(rewind_keeps_an_older_big_term_behind_the_current_block),
              HEAP_TEST(rewind_with_nested_marks),
              HEAP_TEST(rewind_in_a_loop_does_not_grow),
              HEAP_TEST(rewind_drops_references_on_shared_binaries_made_after_the_mark),
              HEAP_TEST(rewind_then_reset_and_free_release_each_reference_once),
              HEAP_TEST(save_and_rewind_of_null_are_no_ops),
              HEAP_TEST(a_heap_past_8_mib_takes_blocks_of_a_huge_page_each))

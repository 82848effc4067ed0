/*
 * tests/unit/collect.c - the collection of a heap (src/core/collect.c): the
 * copy (amb__collect_roots) and the compaction in place
 * (amb__collect_compact, what keeps a term state alive: process.h, "Term
 * state").
 *
 * What is proved, for both forms (each test runs twice, `_compacting` the
 * second time): what the roots reach equals (=:=) the original for every
 * kind of term (lists, tuples, flat and trie maps, floats, big integers,
 * pids, refs, heap and shared binaries, funs); a sub-term referred to twice
 * (inside one root, or from two roots) stays one term and both references
 * point to it, so a chain of map versions that share structure costs the
 * words of the last version, not of every version; garbage goes (the heap
 * holds no more than the live data); a term outside the heap is referred
 * to as it is and its words are not touched; a shared binary keeps exactly
 * one reference; a list of a million cells and a tuple nested a hundred
 * thousand deep are walked without recursion; and with the allocator
 * failing at every allocation in turn, the call returns AMB_ENOMEM or
 * succeeds, and nothing leaks (ASan's leak check). The compaction also:
 * copies in what the roots reach in the words of message cells (the
 * from-space it is given), releases the references of the shared binaries
 * that died, frees the blocks it emptied, and when it runs out of memory
 * before it starts leaves every term as it was.
 */
#include "amb_test.h"
#include "term_internal.h"
#include "term_test.h"

/* Compactions here keep no spare blocks (their tests look at what is
 * freed); amb_heap_collect's are tested on their own. */
static const size_t NONE_SPARE[2] = {0, 1};

/* Which form the test runs. */
static enum { COPYING, COMPACTING, BY_ITS_OWNER } form;

/* Collects the roots of H and returns the heap that holds them now:
 * copying, a fresh heap (H is freed and replaced by an empty heap, as a
 * process's old heap would be); compacting and by its owner
 * (amb_heap_collect, which copies into memory the heap holds), H itself.
 * Free it with done(). */
static amb_heap *collect(amb_term *roots, size_t n)
{
    if (form == BY_ITS_OWNER) {
        assert_ok(amb_heap_collect(H, roots, n));
        return H;
    }
    if (form == COMPACTING) {
        bool ruined = true;
        assert_ok(amb__collect_compact(H, NULL, 0, roots, n, NONE_SPARE, &ruined));
        assert_false(ruined);
        return H;
    }
    amb__range ranges[256];
    size_t nr = amb__heap_ranges(H, ranges, AMB_COUNTOF(ranges));
    assert_true(nr <= AMB_COUNTOF(ranges));
    amb_heap *to;
    assert_ok(amb_heap_new(&to));
    assert_ok(amb__collect_roots(to, ranges, nr, roots, n));
    amb_heap_free(H);
    assert_ok(amb_heap_new(&H));
    return to;
}

/* Frees what collect() returned (H stays for the fixture). */
static void done(amb_heap *to)
{
    if (to != H)
        amb_heap_free(to);
}

/* A copy of t on a heap of its own, for comparing after the collection. */
static amb_term reference(amb_heap **ref, amb_term t)
{
    amb_term out;
    assert_ok(amb_heap_new(ref));
    assert_ok(amb_term_copy(*ref, t, &out));
    return out;
}

static amb_term shared_binary(size_t size, uint8_t fill)
{
    uint8_t *data = malloc(size);
    assert_non_null(data);
    memset(data, fill, size);
    amb_term b = amb_binary(H, data, size);
    free(data);
    assert_true(b != AMB_NONE);
    return b;
}

static size_t refs_of(amb_term bin)
{
    amb__refbin *rb = ((amb__binary *)(void *)amb__box(bin))->refc;
    assert_non_null(rb);
    return atomic_load(&rb->refs);
}

static void every_kind_of_term_survives_equal_body(void);
AMB_TEST(every_kind_of_term_survives_equal)
{
    form = COPYING;
    every_kind_of_term_survives_equal_body();
}
AMB_TEST(every_kind_of_term_survives_equal_compacting)
{
    form = COMPACTING;
    every_kind_of_term_survives_equal_body();
}
AMB_TEST(every_kind_of_term_survives_equal_by_its_owner)
{
    form = BY_ITS_OWNER;
    every_kind_of_term_survives_equal_body();
}
static void every_kind_of_term_survives_equal_body(void)
{
    uint32_t words[3] = {1, 2, 3};
    amb_term big = amb_uint(H, UINT64_MAX);
    amb_term ref = amb_ref_term(H, A("nonode@nohost"), 0, words, 3);
    amb_term keys[40], values[40];
    for (int i = 0; i < 40; i++) {
        keys[i] = I(i);
        values[i] = T(I(i), S("v"));
    }
    amb_term trie = amb_map(H, 40, keys, values);
    amb_term flat = amb_map(H, 3, keys, values);
    amb_term t = T(L(I(1), F(2.5), big, A("atom")), ref, trie, flat, BIN(1, 2, 3),
                   shared_binary(200, 7), FUN("m", "f", 2), BITS(3, 0xa0),
                   amb_pid_term(H, A("other@host"), 7, 8, 9), CONS(I(1), I(2)), T0(),
                   amb_int(H, -((int64_t)1 << 62) - 5));
    assert_true(t != AMB_NONE);
    /* Garbage around it: built and dropped. */
    for (int i = 0; i < 1000; i++)
        assert_true(T(I(i), S("garbage")) != AMB_NONE);
    amb_heap *rh;
    amb_term want = reference(&rh, t);
    amb_term root = t;
    amb_heap *to = collect(&root, 1);
    assert_true(amb_equal(root, want));
    assert_true(amb_heap_size(to) <= amb_term_size(want) + 4096);
    done(to);
    amb_heap_free(rh);
}

static void a_shared_sub_term_is_copied_once_body(void);
AMB_TEST(a_shared_sub_term_is_copied_once)
{
    form = COPYING;
    a_shared_sub_term_is_copied_once_body();
}
AMB_TEST(a_shared_sub_term_is_copied_once_compacting)
{
    form = COMPACTING;
    a_shared_sub_term_is_copied_once_body();
}
AMB_TEST(a_shared_sub_term_is_copied_once_by_its_owner)
{
    form = BY_ITS_OWNER;
    a_shared_sub_term_is_copied_once_body();
}
static void a_shared_sub_term_is_copied_once_body(void)
{
    amb_term x = L(I(1), I(2), I(3), S("shared"));
    amb_term roots[2] = {T(x, x, T(x)), x};
    amb_heap *to = collect(roots, 2);
    amb_term a = amb_tuple_elem(roots[0], 0), b = amb_tuple_elem(roots[0], 1),
             c = amb_tuple_elem(amb_tuple_elem(roots[0], 2), 0);
    assert_true(a == b && b == c && c == roots[1]);
    done(to);
}

static void map_versions_that_share_structure_cost_the_last_version_only_body(void);
AMB_TEST(map_versions_that_share_structure_cost_the_last_version_only)
{
    form = COPYING;
    map_versions_that_share_structure_cost_the_last_version_only_body();
}
AMB_TEST(map_versions_that_share_structure_cost_the_last_version_only_compacting)
{
    form = COMPACTING;
    map_versions_that_share_structure_cost_the_last_version_only_body();
}
AMB_TEST(map_versions_that_share_structure_cost_the_last_version_only_by_its_owner)
{
    form = BY_ITS_OWNER;
    map_versions_that_share_structure_cost_the_last_version_only_body();
}
static void map_versions_that_share_structure_cost_the_last_version_only_body(void)
{
    amb_term m = amb_map(H, 0, NULL, NULL);
    for (int i = 0; i < 5000; i++) {
        m = amb_map_put(H, m, I(i), T(I(i), A("value")));
        assert_true(m != AMB_NONE);
    }
    size_t before = amb_heap_size(H), live = amb_term_size(m);
    assert_true(before > 10 * live); /* 5000 versions of garbage */
    amb_heap *rh;
    amb_term want = reference(&rh, m);
    amb_heap *to = collect(&m, 1);
    assert_true(amb_equal(m, want));
    assert_int_equal(amb_map_size(m), 5000);
    /* Every word kept is live: the heap in use is the map plus the blocks'
     * headers and, at the end of each full block, the words the next term
     * did not fit (at most a trie node, 66 words). */
    size_t blocks = amb__heap_ranges(to, NULL, 0);
    assert_true(amb__heap_used(to) >= live);
    assert_true(amb__heap_used(to) <= live + 1024 + blocks * 66 * 8);
    assert_true(amb_heap_size(to) < before / 4);
    done(to);
    amb_heap_free(rh);
}

static void a_term_outside_the_from_space_is_referred_to_not_copied_body(void);
AMB_TEST(a_term_outside_the_from_space_is_referred_to_not_copied)
{
    form = COPYING;
    a_term_outside_the_from_space_is_referred_to_not_copied_body();
}
AMB_TEST(a_term_outside_the_from_space_is_referred_to_not_copied_compacting)
{
    form = COMPACTING;
    a_term_outside_the_from_space_is_referred_to_not_copied_body();
}
AMB_TEST(a_term_outside_the_from_space_is_referred_to_not_copied_by_its_owner)
{
    form = BY_ITS_OWNER;
    a_term_outside_the_from_space_is_referred_to_not_copied_body();
}
static void a_term_outside_the_from_space_is_referred_to_not_copied_body(void)
{
    amb_heap *other;
    assert_ok(amb_heap_new(&other));
    amb_term foreign = AMB_TUPLE(other, amb_atom("kept"), amb_int(other, 1));
    uint64_t words[3];
    memcpy(words, amb__box(foreign), sizeof words);
    amb_term root = T(foreign, L(foreign));
    amb_heap *to = collect(&root, 1);
    assert_true(amb_tuple_elem(root, 0) == foreign);
    assert_true(amb_list_head(amb_tuple_elem(root, 1)) == foreign);
    assert_memory_equal(words, amb__box(foreign), sizeof words);
    done(to);
    amb_heap_free(other);
}

static void a_shared_binary_keeps_one_reference_after_the_old_heap_goes_body(void);
AMB_TEST(a_shared_binary_keeps_one_reference_after_the_old_heap_goes)
{
    form = COPYING;
    a_shared_binary_keeps_one_reference_after_the_old_heap_goes_body();
}
AMB_TEST(a_shared_binary_keeps_one_reference_after_the_old_heap_goes_compacting)
{
    form = COMPACTING;
    a_shared_binary_keeps_one_reference_after_the_old_heap_goes_body();
}
AMB_TEST(a_shared_binary_keeps_one_reference_after_the_old_heap_goes_by_its_owner)
{
    form = BY_ITS_OWNER;
    a_shared_binary_keeps_one_reference_after_the_old_heap_goes_body();
}
static void a_shared_binary_keeps_one_reference_after_the_old_heap_goes_body(void)
{
    amb_term bin = shared_binary(1000, 3);
    amb_term root = T(bin, bin);
    assert_int_equal(refs_of(bin), 1);
    amb_heap *to = collect(&root, 1); /* frees H: its reference goes */
    amb_term moved = amb_tuple_elem(root, 0);
    assert_true(moved == amb_tuple_elem(root, 1));
    assert_int_equal(refs_of(moved), 1);
    const uint8_t *data;
    size_t size;
    assert_ok(amb_binary_get(moved, &data, &size));
    assert_int_equal(size, 1000);
    assert_int_equal(data[999], 3);
    done(to);
}

static void a_million_cells_and_a_deep_nest_copy_without_recursion_body(void);
AMB_TEST(a_million_cells_and_a_deep_nest_copy_without_recursion)
{
    form = COPYING;
    a_million_cells_and_a_deep_nest_copy_without_recursion_body();
}
AMB_TEST(a_million_cells_and_a_deep_nest_copy_without_recursion_compacting)
{
    form = COMPACTING;
    a_million_cells_and_a_deep_nest_copy_without_recursion_body();
}
AMB_TEST(a_million_cells_and_a_deep_nest_copy_without_recursion_by_its_owner)
{
    form = BY_ITS_OWNER;
    a_million_cells_and_a_deep_nest_copy_without_recursion_body();
}
static void a_million_cells_and_a_deep_nest_copy_without_recursion_body(void)
{
    amb_term list = AMB_NIL;
    for (int i = 0; i < 1000000; i++)
        list = CONS(I(i), list);
    amb_term nest = A("bottom");
    for (int i = 0; i < 100000; i++)
        nest = T(nest, I(i));
    assert_true(list != AMB_NONE && nest != AMB_NONE);
    amb_term roots[2] = {list, nest};
    amb_heap *to = collect(roots, 2);
    size_t n = 0;
    for (amb_term t = roots[0]; amb_is_cons(t); t = amb_list_tail(t))
        assert_true(amb_list_head(t) == I(999999 - (int64_t)n++));
    assert_int_equal(n, 1000000);
    size_t depth = 0;
    for (amb_term t = roots[1]; amb_is_tuple(t); t = amb_tuple_elem(t, 0))
        depth++;
    assert_int_equal(depth, 100000);
    done(to);
}

/* One run of the allocation-failure test: builds a from-space (a collection
 * overwrites it with forwarding words, so every run needs its own), collects
 * it, checks the copy. Any allocation may fail: the run returns AMB_ENOMEM
 * then, having freed what it made. */
static int build_and_collect(void *arg)
{
    (void)arg;
    amb_heap *from = NULL, *to = NULL;
    int rc = amb_heap_new(&from);
    if (rc == 0)
        rc = amb_heap_new(&to);
    amb_term root = AMB_NONE;
    if (rc == 0) {
        amb_term keys[64], values[64];
        for (int i = 0; i < 64; i++) {
            keys[i] = amb_int(from, i);
            values[i] = AMB_LIST(from, amb_int(from, i), amb_string(from, "x"));
        }
        root = AMB_TUPLE(from, amb_map(from, 64, keys, values), values[3]);
        rc = root == AMB_NONE ? AMB_ENOMEM : 0;
    }
    if (rc == 0) {
        amb__range ranges[64];
        size_t nr = amb__heap_ranges(from, ranges, AMB_COUNTOF(ranges));
        rc = amb__collect_roots(to, ranges, nr, &root, 1);
    }
    if (rc == 0) {
        int head = -1;
        assert_ok(amb_match(amb_tuple_elem(root, 1), "[~i, _]", &head));
        assert_int_equal(head, 3);
        assert_int_equal(amb_map_size(amb_tuple_elem(root, 0)), 64);
    }
    amb_heap_free(to);
    amb_heap_free(from);
    return rc;
}

/* ---------------------------------------------------------------------------
 * The compaction only
 * ------------------------------------------------------------------------ */

AMB_TEST(compacting_copies_in_what_cells_hold_and_frees_the_blocks_it_emptied)
{
    /* A "cell" (another heap, given as the from-space) holds a term the
     * state refers to; H holds the rest and a lot of garbage. */
    amb_heap *cell, *rh;
    assert_ok(amb_heap_new(&cell));
    amb_term msg = AMB_TUPLE(cell, amb_atom("put"), amb_string(cell, "from the cell"),
                             amb_binary(cell, (const uint8_t *)"bytes", 5));
    amb_term state = T(I(1), L(S("own"), amb_tuple_elem(msg, 1)), msg);
    for (int i = 0; i < 100000; i++)
        assert_true(T(I(i), S("garbage")) != AMB_NONE);
    amb_term want = reference(&rh, state);
    size_t before = amb_heap_size(H), blocks_before = amb__heap_ranges(H, NULL, 0);
    amb__range ranges[16];
    size_t nr = amb__heap_ranges(cell, ranges, AMB_COUNTOF(ranges));
    bool ruined = true;
    assert_ok(amb__collect_compact(H, ranges, nr, &state, 1, NONE_SPARE, &ruined));
    assert_false(ruined);
    amb_heap_free(cell); /* the cell goes, as a kept message cell does */
    assert_true(amb_equal(state, want));
    /* The message's parts are in H now, shared as they were. */
    amb_term moved = amb_tuple_elem(state, 2);
    assert_true(amb_tuple_elem(moved, 1) ==
                amb_list_head(amb_list_tail(amb_tuple_elem(state, 1))));
    amb__range after[256];
    size_t na = amb__heap_ranges(H, after, AMB_COUNTOF(after));
    bool inside = false;
    for (size_t i = 0; i < na; i++)
        inside |= (uintptr_t)amb__box(moved) - (uintptr_t)after[i].lo <
                  (uintptr_t)after[i].hi - (uintptr_t)after[i].lo;
    assert_true(inside);
    assert_true(na < blocks_before);
    assert_true(amb_heap_size(H) < before / 8);
    /* The heap goes on: new terms after the live ones. */
    amb_term more = T(state, S("after"));
    assert_true(amb_equal(amb_tuple_elem(more, 0), want));
    amb_heap_free(rh);
}

AMB_TEST(compacting_releases_the_binaries_that_died)
{
    amb_term live = shared_binary(300, 1), dead = shared_binary(300, 2);
    amb__refbin *rb = ((amb__binary *)(void *)amb__box(dead))->refc;
    amb__refbin_retain(rb); /* ours, to watch the count */
    amb_term state = T(live, L(live));
    for (int i = 0; i < 10000; i++)
        assert_true(T(I(i), shared_binary(100, 3)) != AMB_NONE); /* dead too */
    bool ruined;
    assert_ok(amb__collect_compact(H, NULL, 0, &state, 1, NONE_SPARE, &ruined));
    assert_int_equal(atomic_load(&rb->refs), 1); /* the heap's went */
    amb__refbin_release(rb);
    amb_term moved = amb_tuple_elem(state, 0);
    assert_true(moved == amb_list_head(amb_tuple_elem(state, 1)));
    assert_int_equal(refs_of(moved), 1);
    const uint8_t *data;
    size_t size;
    assert_ok(amb_binary_get(moved, &data, &size));
    assert_true(size == 300 && data[0] == 1 && data[299] == 1);
    /* A heap binary (bytes inside its box) moves with its bytes. */
    amb_term small = BIN(9, 8, 7);
    state = T(small, state);
    for (int i = 0; i < 10000; i++)
        assert_true(T(I(i)) != AMB_NONE);
    assert_ok(amb__collect_compact(H, NULL, 0, &state, 1, NONE_SPARE, &ruined));
    assert_term_text(amb_tuple_elem(state, 0), "<<9,8,7>>");
}

/* One run of the compaction with allocations failing: a failure before it
 * starts leaves every term as it was (checked against a copy); one half
 * way is reported (ruined: the heap and the cell can only be freed). */
static int build_and_compact(void *arg)
{
    (void)arg;
    amb_heap *h = NULL, *cell = NULL, *rh = NULL;
    int rc = amb_heap_new(&h);
    if (rc == 0)
        rc = amb_heap_new(&cell);
    if (rc == 0)
        rc = amb_heap_new(&rh);
    amb_term root = AMB_NONE, want = AMB_NONE;
    if (rc == 0) {
        amb_term keys[64], values[64], list = AMB_NIL;
        for (int i = 0; i < 64; i++) {
            keys[i] = amb_int(h, i);
            values[i] = AMB_LIST(h, amb_int(h, i), amb_string(h, "x"));
            list = amb_cons(h, AMB_TUPLE(h, amb_int(h, i)), list); /* a deep stack */
            (void)AMB_TUPLE(h, amb_int(h, i), amb_atom("garbage"));
        }
        amb_term msg = AMB_TUPLE(cell, amb_atom("msg"), amb_string(cell, "in a cell"));
        root = AMB_TUPLE(h, amb_map(h, 64, keys, values), values[3], list, msg);
        rc = root == AMB_NONE ? AMB_ENOMEM : amb_term_copy(rh, root, &want);
    }
    if (rc == 0) {
        amb__range ranges[16];
        size_t nr = amb__heap_ranges(cell, ranges, AMB_COUNTOF(ranges));
        bool ruined = false;
        rc = amb__collect_compact(h, ranges, nr, &root, 1, NONE_SPARE, &ruined);
        if (rc == 0 || !ruined) {
            amb_test_alloc_disarm(); /* the check may allocate */
            assert_true(amb_equal(root, want));
        }
    }
    amb_heap_free(rh);
    amb_heap_free(cell);
    amb_heap_free(h);
    return rc;
}

AMB_TEST(compacting_without_memory_changes_nothing_or_says_it_is_ruined)
{
    amb_test_oom_stats st = amb_test_oom_loop(build_and_compact, NULL, AMB_TEST_OOM_ONCE);
    assert_true(st.failed_runs > 0);
}

/* ---------------------------------------------------------------------------
 * amb_heap_collect (the public form)
 * ------------------------------------------------------------------------ */

AMB_TEST(a_heap_collected_by_its_owner_keeps_its_roots_and_the_memory_it_emptied)
{
    /* A loop's state: a map put 20,000 times (its versions garbage). */
    amb_term m = amb_map(H, 0, NULL, NULL), rest = S("kept too");
    for (int i = 0; i < 20000; i++)
        m = amb_map_put(H, m, I(i % 5000), T(I(i), A("v")));
    amb_heap *rh;
    amb_term want = reference(&rh, m);
    amb_term roots[2] = {m, rest};
    size_t size = amb_heap_size(H);
    assert_ok(amb_heap_collect(H, roots, 2));
    assert_true(amb_equal(roots[0], want));
    assert_term_text(roots[1], "[107,101,112,116,32,116,111,111]"); /* "kept too" */
    assert_true(amb__heap_used(H) < size / 8);
    assert_true(amb_heap_size(H) < size / 4);
    /* What it emptied stays the heap's: growing back takes no new block
     * (sanitizer builds free every old block instead, so that a term kept
     * from before is a use-after-free report). */
    if (!AMB__ASAN) {
        assert_true(amb__heap_held(H) >= size - 4096);
        amb_test_alloc_count before = amb_test_alloc_now();
        int puts = 0;
        while (amb__heap_used(H) + (64 << 10) < size) {
            roots[0] = amb_map_put(H, roots[0], I(puts % 5000), T(I(puts), A("w")));
            puts++;
        }
        assert_true(puts > 1000);
        assert_true(amb_test_alloc_now().calls == before.calls);
    }
    assert_rc(AMB_EBADARG, amb_heap_collect(NULL, roots, 2));
    assert_rc(AMB_EBADARG, amb_heap_collect(H, NULL, 1));
    assert_ok(amb_heap_collect(H, NULL, 0)); /* no roots: everything goes */
    assert_true(amb__heap_used(H) < 64);     /* a block header */
    amb_heap_free(rh);
}

/* The largest spare block of H, in words (0 when it has none). */
static size_t largest_spare(void)
{
    size_t most = 0;
    for (const amb__heap_block *b = H->spare; b != NULL; b = b->next)
        most = b->nwords > most ? b->nwords : most;
    return most;
}

AMB_TEST(a_term_larger_than_every_spare_block_is_copied_whole)
{
    /* Spares of a small heap's sizes, then a tuple larger than any of
     * them: the copy holds a block for what the spares cannot. */
    amb_term roots[2] = {T(I(1), S("small")), AMB_NONE};
    for (int i = 0; i < 2000; i++)
        assert_true(T(I(i), S("garbage")) != AMB_NONE);
    assert_ok(amb_heap_collect(H, roots, 1));
    if (!AMB__ASAN) /* sanitizer builds free the old blocks instead */
        assert_true(largest_spare() > 0);
    size_t n = 2 * largest_spare() + 100000;
    amb_term *elems = malloc(n * sizeof *elems);
    assert_non_null(elems);
    for (size_t i = 0; i < n; i++)
        elems[i] = I((int64_t)i);
    roots[1] = amb_tuple(H, n, elems);
    free(elems);
    assert_true(roots[1] != AMB_NONE);
    for (int i = 0; i < 2000; i++)
        assert_true(T(I(i), S("garbage")) != AMB_NONE);
    assert_ok(amb_heap_collect(H, roots, 2));
    assert_int_equal(amb_tuple_arity(roots[1]), n);
    for (size_t i = 0; i < n; i++)
        assert_true(amb_tuple_elem(roots[1], i) == I((int64_t)i));
    assert_term_text(amb_tuple_elem(roots[0], 1), "[115,109,97,108,108]"); /* "small" */
    /* The heap is what is live: the tuple, the small term, a block's
     * header or two. */
    assert_true(amb__heap_used(H) <= (n + 1) * 8 + 1024);
}

AMB_TEST(a_spare_block_far_larger_than_a_request_becomes_the_current_block)
{
    /* After a collection that kept a few words, the current block is as
     * small as they are and the spares are large: a request of 41 words
     * is "big" for the current block, and a spare taken for it must not
     * stand behind it holding only those words, or every such request
     * takes a whole spare and the heap's size is its spares'. (Sanitizer
     * builds keep no spares.) */
    if (AMB__ASAN)
        skip();
    amb_term keep = T(I(1));
    for (int i = 0; i < 100000; i++)
        assert_true(T(I(i), S("garbage")) != AMB_NONE);
    assert_ok(amb_heap_collect(H, &keep, 1));
    size_t block = largest_spare() * 8, before = amb_heap_size(H);
    amb_term elems[40];
    for (int i = 0; i < 40; i++)
        elems[i] = I(i);
    for (int i = 0; i < 1000; i++)
        assert_true(amb_tuple(H, 40, elems) != AMB_NONE);
    assert_true(amb_heap_size(H) - before <= 1000 * 41 * 8 + 2 * (block + 64));
    assert_int_equal(amb_tuple_elem(keep, 0), I(1));
}

AMB_TEST(a_loop_that_collects_its_heap_holds_memory_bounded_by_the_live_map)
{
    /* A loop's map of 5,000 keys, updated 200,000 times, collected when
     * the heap in use reaches 4 times what the last collection left:
     * what the heap holds (its blocks and its spares) stays within 5 times
     * the live map (4 of growth and one of copy) and a few blocks. */
    amb_term m = amb_map(H, 0, NULL, NULL);
    size_t live = 64 << 10, most_live = 0, most_held = 0;
    int collections = 0;
    for (int i = 0; i < 200000; i++) {
        m = amb_map_put(H, m, I(i % 5000), I(i));
        assert_true(m != AMB_NONE);
        size_t held = amb__heap_held(H);
        most_held = held > most_held ? held : most_held;
        if (amb__heap_used(H) < 4 * live)
            continue;
        assert_ok(amb_heap_collect(H, &m, 1));
        collections++;
        live = amb__heap_used(H) > (64u << 10) ? amb__heap_used(H) : 64u << 10;
        most_live = amb__heap_used(H) > most_live ? amb__heap_used(H) : most_live;
    }
    assert_true(collections > 10);
    assert_int_equal(amb_map_size(m), 5000);
    amb_term v;
    assert_ok(amb_map_get(m, I(4999), &v));
    assert_true(v == I(199999));
    if (!AMB__ASAN) /* sanitizer builds free the old blocks instead */
        assert_true(most_held <= 5 * (most_live > (64u << 10) ? most_live : 64u << 10) +
                                     4 * (512u << 10));
}

/* amb_heap_collect with allocation n failing: AMB_ENOMEM leaves every term
 * as it was. */
static int collect_under_failures(void *arg)
{
    (void)arg;
    amb_heap *h = NULL, *rh = NULL;
    int rc = amb_heap_new(&h);
    if (rc == 0)
        rc = amb_heap_new(&rh);
    amb_term root = AMB_NONE, want = AMB_NONE;
    if (rc == 0) {
        amb_term list = AMB_NIL;
        for (int i = 0; i < 100; i++) {
            list = amb_cons(h, AMB_TUPLE(h, amb_int(h, i)), list); /* a deep stack */
            (void)AMB_TUPLE(h, amb_int(h, i), amb_atom("garbage"));
        }
        root = AMB_TUPLE(h, list, amb_string(h, "x"));
        rc = root == AMB_NONE ? AMB_ENOMEM : amb_term_copy(rh, root, &want);
    }
    if (rc == 0) {
        amb_term before = root;
        rc = amb_heap_collect(h, &root, 1);
        amb_test_alloc_disarm(); /* the check may allocate */
        assert_true(rc == 0 || root == before);
        assert_true(amb_equal(root, want));
    }
    amb_heap_free(rh);
    amb_heap_free(h);
    return rc;
}

AMB_TEST(a_heap_collect_without_memory_changes_nothing)
{
    amb_test_oom_stats st =
        amb_test_oom_loop(collect_under_failures, NULL, AMB_TEST_OOM_ONCE);
    assert_true(st.failed_runs > 0);
}

AMB_TEST(running_out_of_memory_is_an_error_and_leaks_nothing)
{
    amb_test_oom_stats st = amb_test_oom_loop(build_and_collect, NULL, AMB_TEST_OOM_ONCE);
    assert_true(st.failed_runs > 0);
}

AMB_TEST_MAIN(
    HEAP_TEST(every_kind_of_term_survives_equal),
    HEAP_TEST(every_kind_of_term_survives_equal_compacting),
    HEAP_TEST(every_kind_of_term_survives_equal_by_its_owner),
    HEAP_TEST(a_shared_sub_term_is_copied_once),
    HEAP_TEST(a_shared_sub_term_is_copied_once_compacting),
    HEAP_TEST(a_shared_sub_term_is_copied_once_by_its_owner),
    HEAP_TEST(map_versions_that_share_structure_cost_the_last_version_only),
    HEAP_TEST(map_versions_that_share_structure_cost_the_last_version_only_compacting),
    HEAP_TEST(map_versions_that_share_structure_cost_the_last_version_only_by_its_owner),
    HEAP_TEST(a_term_outside_the_from_space_is_referred_to_not_copied),
    HEAP_TEST(a_term_outside_the_from_space_is_referred_to_not_copied_compacting),
    HEAP_TEST(a_term_outside_the_from_space_is_referred_to_not_copied_by_its_owner),
    HEAP_TEST(a_shared_binary_keeps_one_reference_after_the_old_heap_goes),
    HEAP_TEST(a_shared_binary_keeps_one_reference_after_the_old_heap_goes_compacting),
    HEAP_TEST(a_shared_binary_keeps_one_reference_after_the_old_heap_goes_by_its_owner),
    HEAP_TEST(a_million_cells_and_a_deep_nest_copy_without_recursion),
    HEAP_TEST(a_million_cells_and_a_deep_nest_copy_without_recursion_compacting),
    HEAP_TEST(a_million_cells_and_a_deep_nest_copy_without_recursion_by_its_owner),
    HEAP_TEST(compacting_copies_in_what_cells_hold_and_frees_the_blocks_it_emptied),
    HEAP_TEST(compacting_releases_the_binaries_that_died),
    HEAP_TEST(compacting_without_memory_changes_nothing_or_says_it_is_ruined),
    HEAP_TEST(a_heap_collected_by_its_owner_keeps_its_roots_and_the_memory_it_emptied),
    HEAP_TEST(a_term_larger_than_every_spare_block_is_copied_whole),
    HEAP_TEST(a_spare_block_far_larger_than_a_request_becomes_the_current_block),
    HEAP_TEST(a_loop_that_collects_its_heap_holds_memory_bounded_by_the_live_map),
    HEAP_TEST(a_heap_collect_without_memory_changes_nothing),
    HEAP_TEST(running_out_of_memory_is_an_error_and_leaks_nothing))

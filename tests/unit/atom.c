/*
 * atom.c - the atom table: interning, predefined atoms, validation, the
 * bound, and lock-free lookups from many threads.
 */
#include <pthread.h>

#include "ambitious/process.h"
#include "amb_test.h"
#include "term_internal.h"

AMB_TEST(atoms_are_interned_once)
{
    amb_term a, b;
    assert_ok(amb_atom_new("hello", 5, &a));
    assert_ok(amb_atom_new("hello", 5, &b));
    assert_true(a == b);
    assert_true(amb_is_atom(a));
    assert_int_equal(amb_type_of(a), AMB_T_ATOM);
    size_t len;
    assert_string_equal(amb_atom_name(a, &len), "hello");
    assert_int_equal(len, 5);
    assert_true(amb_atom("hello") == a);
    assert_true(amb_atom("hellO") != a);
    assert_ok(amb_atom_new("", 0, &a));
    assert_string_equal(amb_atom_name(a, NULL), "");
    assert_null(amb_atom_name(AMB_SMALL(1), NULL));
}

AMB_TEST(predefined_atoms_have_fixed_terms)
{
    assert_true(amb_atom("ok") == AMB_ATOM_OK);
    assert_true(amb_atom("EXIT") == AMB_ATOM_EXIT);
    assert_true(amb_atom("$gen_call") == AMB_ATOM_GEN_CALL);
    assert_true(amb_atom("nonode@nohost") == AMB_ATOM_NONODE_NOHOST);
    assert_string_equal(amb_atom_name(AMB_ATOM_KILLED, NULL), "killed");
    assert_true(amb_bool(true) == AMB_ATOM_TRUE);
    assert_true(amb_atom_count() >= AMB__ATOM_PREDEFINED_COUNT);
}

AMB_TEST(atom_names_are_validated)
{
    amb_term a;
    assert_rc(AMB_EBADARG, amb_atom_new("\xc3", 1, &a));         /* truncated */
    assert_rc(AMB_EBADARG, amb_atom_new("\xed\xa0\x80", 3, &a)); /* surrogate */
    assert_rc(AMB_EBADARG, amb_atom_new("\xc0\x80", 2, &a));     /* overlong */
    assert_rc(AMB_EBADARG, amb_atom_new(NULL, 1, &a));
    assert_rc(AMB_EBADARG, amb_atom_new("x", 1, NULL));
    char name[1100];
    memset(name, 'x', sizeof name);
    assert_ok(amb_atom_new(name, 255, &a));
    assert_rc(AMB_EBADARG, amb_atom_new(name, 256, &a));
    /* 255 characters of 4 bytes each is the longest in bytes. */
    for (int i = 0; i < 255; i++)
        memcpy(name + 4 * i, "\xf0\x9f\x98\x80", 4);
    assert_ok(amb_atom_new(name, 1020, &a));
    assert_true(amb_atom(NULL) == AMB_NONE);
    assert_true(amb_atom("\xff") == AMB_NONE);
}

AMB_TEST(existing_lookup_never_creates)
{
    amb_term a;
    size_t before = amb_atom_count();
    assert_rc(AMB_ENOTFOUND, amb_atom_existing("never_made_atom_xyz", 19, &a));
    assert_int_equal(amb_atom_count(), before);
    assert_ok(amb_atom_existing("ok", 2, &a));
    assert_true(a == AMB_ATOM_OK);
}

AMB_TEST(unicode_atoms_and_latin1_flag)
{
    amb_term a = amb_atom("caf\xc3\xa9");
    amb_term b = amb_atom("\xe6\x97\xa5\xe6\x9c\xac");
    assert_true(a != AMB_NONE && b != AMB_NONE);
    assert_true(amb__atom_is_latin1(a));
    assert_false(amb__atom_is_latin1(b));
    assert_true(amb__atom_is_latin1(AMB_ATOM_OK));
}

AMB_TEST(limit_is_fixed_once_the_table_exists)
{
    (void)amb_atom("x");
    assert_rc(AMB_ESTATE, amb_atom_set_limit(4096));
    assert_rc(AMB_EBADARG, amb_atom_set_limit(10));
    assert_int_equal(amb_atom_limit(), AMB_ATOM_LIMIT_DEFAULT);
}

AMB_TEST(a_full_table_is_an_error_not_growth)
{
    /* The limit can only be set before the table exists: CTest runs this
     * test in a fresh process; inside a whole-file run it is skipped. */
    if (amb_atom_set_limit(1024) == AMB_ESTATE)
        skip();
    size_t made = 0;
    int rc = 0;
    char name[32];
    for (int i = 0; i < 5000; i++) {
        amb_term a;
        snprintf(name, sizeof name, "fill_%d", i);
        rc = amb_atom_new(name, strlen(name), &a);
        if (rc != 0)
            break;
        made++;
    }
    assert_rc(AMB_ESYSLIMIT, rc);
    assert_int_equal(amb_atom_count(), 1024);
    assert_true(made < 1024);
    /* Existing atoms still resolve; the table still works. */
    amb_term a;
    assert_ok(amb_atom_new("fill_0", 6, &a));
    assert_rc(AMB_ESYSLIMIT, amb_atom_new("one_more", 8, &a));
}

/* Issue 13: amb_rt_new made its node name with amb_atom, so a full table
 * read as a bad argument. It is the table's limit, as for any new atom; a
 * name that exists is fine. */
AMB_TEST(rt_new_with_a_new_node_name_on_a_full_table_is_esyslimit)
{
    /* The harness made the table already (amb_test.h): fill it at its
     * limit, whatever that is. */
    amb_rt *rt = NULL;
    assert_ok(amb_rt_new(&(amb_config){.schedulers = 1, .node_name = "a@b"}, &rt));
    amb_rt_free(rt);
    char name[32];
    amb_term a;
    int rc = 0;
    for (int i = 0; rc == 0; i++) {
        snprintf(name, sizeof name, "filler%d", i);
        rc = amb_atom_new(name, strlen(name), &a);
    }
    assert_rc(AMB_ESYSLIMIT, rc);
    rt = NULL;
    assert_rc(AMB_ESYSLIMIT, amb_rt_new(&(amb_config){.schedulers = 1,
                                                      .node_name = "fresh_node@nowhere"},
                                        &rt));
    assert_null(rt);
    assert_ok(amb_rt_new(&(amb_config){.schedulers = 1, .node_name = "a@b"}, &rt));
    amb_rt_free(rt);
}

#define THREADS    4
#define PER_THREAD 20000
static amb_term seen[THREADS][PER_THREAD];

static void *intern_many(void *arg)
{
    int t = (int)(intptr_t)arg;
    char name[32];
    for (int i = 0; i < PER_THREAD; i++) {
        /* Every thread interns the same names, racing on each. */
        int k = (i * 7 + t * 13) % PER_THREAD;
        snprintf(name, sizeof name, "race_%d", k);
        seen[t][k] = amb_atom(name);
    }
    return NULL;
}

AMB_TEST(concurrent_interning_agrees)
{
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, intern_many, (void *)(intptr_t)t),
                         0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    for (int k = 0; k < PER_THREAD; k++) {
        assert_true(seen[0][k] != AMB_NONE);
        for (int t = 1; t < THREADS; t++)
            assert_true(seen[t][k] == seen[0][k]);
        char name[32];
        snprintf(name, sizeof name, "race_%d", k);
        assert_string_equal(amb_atom_name(seen[0][k], NULL), name);
    }
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(atoms_are_interned_once),
              AMB_TEST_ENTRY(predefined_atoms_have_fixed_terms),
              AMB_TEST_ENTRY(atom_names_are_validated),
              AMB_TEST_ENTRY(existing_lookup_never_creates),
              AMB_TEST_ENTRY(unicode_atoms_and_latin1_flag),
              AMB_TEST_ENTRY(limit_is_fixed_once_the_table_exists),
              AMB_TEST_ENTRY(a_full_table_is_an_error_not_growth),
              AMB_TEST_ENTRY(rt_new_with_a_new_node_name_on_a_full_table_is_esyslimit),
              AMB_TEST_ENTRY(concurrent_interning_agrees))

/*
 * Unit tests of the slab allocator (src/runtime/slab.[ch]): objects carved
 * from mapped slabs, per-thread pools, the depot through which freed
 * objects flow from one pool to another, partly free slabs filled again
 * before a new slab is mapped, and empty slabs kept a few, the rest (and
 * all of them at a trim) unmapped, so memory returns after a burst.
 *
 * Whether a slab is mapped is observed with mincore(2), which fails with
 * ENOMEM on an unmapped page. Threads other than the test's own record
 * failures in a counter the test asserts on (cmocka's asserts jump to the
 * test thread's stack).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amb_test.h"
#include "runtime/slab.h"

/* Small slabs and pools, so that a test walks every path quickly. */
static const amb__slab_class cls = {.size = 64, .per_slab = 16, .pool_max = 4};

/* The slab of an object: its header sits index objects before it. */
static void *slab_of(void *obj, uint16_t index)
{
    return (char *)obj - (size_t)index * cls.size - AMB__SLAB_HEADER;
}

static bool mapped(void *slab)
{
    unsigned char vec;
    if (mincore(slab, 1, &vec) == 0)
        return true;
    assert_int_equal(errno, ENOMEM);
    return false;
}

static amb__slab_depot *new_depot(unsigned max_batches)
{
    static amb__slab_depot depots[8];
    static unsigned used;
    assert_true(used < 8);
    amb__slab_depot *d = &depots[used++];
    assert_ok(amb__slab_depot_init(d, max_batches));
    return d;
}

AMB_TEST(slab_alloc_carves_distinct_objects_and_free_reuses_them)
{
    amb__slab_depot *d = new_depot(1);
    amb__slab_pool pool = {.depot = d};
    void *obj[16];
    uint16_t idx[16];
    for (unsigned i = 0; i < 16; i++) {
        obj[i] = amb__slab_alloc(&pool, &cls, &idx[i]);
        assert_non_null(obj[i]);
        assert_int_equal((uintptr_t)obj[i] % 16, 0);
        memset(obj[i], 0xa5, cls.size); /* the whole object is ours */
    }
    /* One slab: object i at index i, cls.size apart, object 0 first. */
    void *slab = slab_of(obj[0], idx[0]);
    for (unsigned i = 0; i < 16; i++) {
        assert_int_equal(idx[i], i);
        assert_ptr_equal(slab_of(obj[i], idx[i]), slab);
    }
    /* A freed object is the next one handed out (the pool is a stack). */
    amb__slab_free(&pool, &cls, obj[5], idx[5]);
    uint16_t again;
    assert_ptr_equal(amb__slab_alloc(&pool, &cls, &again), obj[5]);
    assert_int_equal(again, 5);
    for (unsigned i = 0; i < 16; i++)
        amb__slab_free(&pool, &cls, obj[i], idx[i]);
    amb__slab_pool_drain(&pool, &cls);
    assert_true(mapped(slab)); /* empty, kept by the depot for reuse */
    amb__slab_depot_drain(d, &cls);
    assert_false(mapped(slab));
    amb__slab_depot_free(d, &cls);
}

AMB_TEST(slab_empty_slabs_are_kept_a_few_then_unmapped)
{
    amb__slab_depot *d = new_depot(1);
    amb__slab_pool pool = {.depot = d};
    enum { SLABS = AMB__SLAB_EMPTY_KEEP + 3 };
    static void *obj[SLABS * 16];
    static uint16_t idx[SLABS * 16];
    for (unsigned i = 0; i < SLABS * 16; i++)
        obj[i] = amb__slab_alloc(&pool, &cls, &idx[i]);
    assert_int_equal(pool.count, 0);
    size_t before = amb__slab_mapped();
    /* Straight back to the slabs (no pool): each stays mapped while it has
     * objects out; the first AMB__SLAB_EMPTY_KEEP that empty are kept, the
     * others are unmapped at once. */
    for (unsigned sl = 0; sl < SLABS; sl++) {
        void *slab = slab_of(obj[sl * 16], idx[sl * 16]);
        for (unsigned i = 0; i < 15; i++) {
            amb__slab_free(NULL, &cls, obj[sl * 16 + i], idx[sl * 16 + i]);
            assert_true(mapped(slab));
        }
        amb__slab_free(NULL, &cls, obj[sl * 16 + 15], idx[sl * 16 + 15]);
        assert_true(mapped(slab) == (sl < AMB__SLAB_EMPTY_KEEP));
    }
    assert_int_equal(amb__slab_mapped(), before - 3);
    /* Trimming unmaps the kept ones. */
    amb__slab_depot_drain(d, &cls);
    assert_int_equal(amb__slab_mapped(), before - SLABS);
    for (unsigned sl = 0; sl < SLABS; sl++)
        assert_false(mapped(slab_of(obj[sl * 16], idx[sl * 16])));
    amb__slab_depot_free(d, &cls);
}

/* Issue 12: an object given back to its slab could not be used again until
 * the whole slab was back, so one survivor pinned 64 KiB and new objects
 * came from new slabs. Now a pool that runs dry takes the objects of a
 * partly free slab before it maps a new one. */
AMB_TEST(slab_partly_free_slabs_are_filled_before_a_new_slab_is_mapped)
{
    amb__slab_depot *d = new_depot(1);
    amb__slab_pool pool = {.depot = d};
    enum { SLABS = 8 };
    static void *obj[SLABS * 16];
    static uint16_t idx[SLABS * 16];
    for (unsigned i = 0; i < SLABS * 16; i++)
        obj[i] = amb__slab_alloc(&pool, &cls, &idx[i]);
    size_t full = amb__slab_mapped();
    /* Every slab keeps one survivor; the rest go back to their slabs. */
    for (unsigned i = 0; i < SLABS * 16; i++)
        if (i % 16 != 7)
            amb__slab_free(NULL, &cls, obj[i], idx[i]);
    assert_int_equal(amb__slab_mapped(), full);
    /* A second wave as large as the freed part maps nothing new, and every
     * object comes from one of the old slabs. */
    for (unsigned i = 0; i < SLABS * 15; i++) {
        uint16_t k;
        void *o = amb__slab_alloc(&pool, &cls, &k);
        assert_non_null(o);
        bool old = false;
        for (unsigned sl = 0; sl < SLABS; sl++)
            old |= slab_of(o, k) == slab_of(obj[sl * 16], idx[sl * 16]);
        assert_true(old);
        *(uint64_t *)o = i; /* ours */
    }
    assert_int_equal(amb__slab_mapped(), full);
    amb__slab_depot_free(d, &cls); /* the objects still out keep their slabs */
}

AMB_TEST(slab_pooled_objects_keep_their_slab_mapped)
{
    amb__slab_depot *d = new_depot(1);
    amb__slab_pool pool = {.depot = d};
    uint16_t idx;
    void *obj = amb__slab_alloc(&pool, &cls, &idx);
    void *slab = slab_of(obj, idx);
    /* The slab was carved into the pool whole: 15 objects wait there, so
     * the pool is over pool_max and obj goes to the depot's batch. */
    assert_int_equal(pool.count, 15);
    amb__slab_free(&pool, &cls, obj, idx);
    assert_true(mapped(slab));
    amb__slab_pool_drain(&pool, &cls);
    assert_int_equal(pool.count, 0);
    assert_null(pool.free);
    assert_true(mapped(slab)); /* two objects wait in the depot's batch */
    amb__slab_depot_drain(d, &cls);
    assert_false(mapped(slab));
    amb__slab_depot_free(d, &cls);
}

AMB_TEST(slab_full_pool_sends_half_to_the_depot_for_another_pool)
{
    amb__slab_depot depot;
    assert_ok(amb__slab_depot_init(&depot, 1));
    amb__slab_pool a = {.depot = &depot}, b = {.depot = &depot};
    void *obj[16];
    uint16_t idx[16];
    for (unsigned i = 0; i < 16; i++)
        obj[i] = amb__slab_alloc(&a, &cls, &idx[i]);
    void *slab = slab_of(obj[0], idx[0]);
    /* a keeps pool_max; the next free moves half of them to the depot as
     * one batch; once the depot is full, objects go back to the slab. */
    for (unsigned i = 0; i < 4; i++)
        amb__slab_free(&a, &cls, obj[i], idx[i]);
    assert_int_equal(a.count, 4);
    amb__slab_free(&a, &cls, obj[4], idx[4]);
    assert_int_equal(a.count, 3);
    assert_int_equal(atomic_load(&depot.count), 1);
    for (unsigned i = 5; i < 16; i++)
        amb__slab_free(&a, &cls, obj[i], idx[i]);
    assert_true(mapped(slab));
    /* An empty pool refills from the depot before it carves a new slab:
     * b gets objects a freed. */
    uint16_t bi;
    void *got = amb__slab_alloc(&b, &cls, &bi);
    assert_ptr_equal(slab_of(got, bi), slab);
    assert_int_equal(atomic_load(&depot.count), 0);
    amb__slab_free(&b, &cls, got, bi);
    amb__slab_pool_drain(&a, &cls);
    assert_true(mapped(slab)); /* b's objects are still out */
    amb__slab_pool_drain(&b, &cls);
    amb__slab_depot_free(&depot, &cls);
    assert_false(mapped(slab));
}

/* ------------------------------------------------------------------------
 * Threads allocate from their own pools and free into a shared depot (and
 * their slabs) at once: no object is handed out twice, and once every pool
 * and the depot are drained, every slab is unmapped.
 * ---------------------------------------------------------------------- */

#define THREADS 3
#define HELD    40
#define ITERS   3000

static amb__slab_depot race_depot;
static atomic_int race_bad;

typedef struct worker {
    amb__slab_pool pool;
    void *slabs[ITERS]; /* a slab this thread saw, per iteration */
} worker;

static void *churn(void *arg)
{
    worker *w = arg;
    void *obj[HELD];
    uint16_t idx[HELD];
    for (unsigned it = 0; it < ITERS; it++) {
        unsigned n = 1 + it % HELD;
        for (unsigned i = 0; i < n; i++) {
            obj[i] = amb__slab_alloc(&w->pool, &cls, &idx[i]);
            if (obj[i] == NULL) {
                atomic_fetch_add(&race_bad, 1);
                return NULL;
            }
            /* Ours alone until freed: a word no other holder may change. */
            *(uintptr_t *)obj[i] = (uintptr_t)&obj[i];
        }
        w->slabs[it] = slab_of(obj[0], idx[0]);
        for (unsigned i = 0; i < n; i++) {
            if (*(uintptr_t *)obj[i] != (uintptr_t)&obj[i])
                atomic_fetch_add(&race_bad, 1);
            /* Every third object skips the pool: straight to its slab. */
            amb__slab_free(i % 3 == 0 ? NULL : &w->pool, &cls, obj[i], idx[i]);
        }
    }
    return NULL;
}

AMB_TEST(slab_threads_share_slabs_and_every_slab_goes_back)
{
    assert_ok(amb__slab_depot_init(&race_depot, 2));
    static worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].pool = (amb__slab_pool){.depot = &race_depot};
        assert_int_equal(pthread_create(&th[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&race_bad), 0);
    for (int i = 0; i < THREADS; i++)
        amb__slab_pool_drain(&w[i].pool, &cls);
    amb__slab_depot_free(&race_depot, &cls);
    /* No other thread maps anything now: a slab still mapped would be one
     * whose count never reached zero. */
    for (int i = 0; i < THREADS; i++)
        for (unsigned it = 0; it < ITERS; it += 97)
            assert_false(mapped(w[i].slabs[it]));
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(slab_alloc_carves_distinct_objects_and_free_reuses_them),
    AMB_TEST_ENTRY(slab_empty_slabs_are_kept_a_few_then_unmapped),
    AMB_TEST_ENTRY(slab_partly_free_slabs_are_filled_before_a_new_slab_is_mapped),
    AMB_TEST_ENTRY(slab_pooled_objects_keep_their_slab_mapped),
    AMB_TEST_ENTRY(slab_full_pool_sends_half_to_the_depot_for_another_pool),
    AMB_TEST_ENTRY(slab_threads_share_slabs_and_every_slab_goes_back))

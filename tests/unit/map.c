/*
 * map.c - maps at every size: flat up to 32 pairs, a hash trie above
 * (docs/design/terms.md "Maps"). Every operation at sizes 0, 1, 31, 32, 33,
 * 1000 and 100,000; a model-checked random walk of operations against a
 * plain list of pairs; structure sharing (a put on a 100k map allocates a
 * path, not a map); the trie's canonical shape after removals; collision
 * nodes (built white-box with chosen hashes); copy, hash, order and ETF;
 * edits (amb_map_edit): model-checked, never changing the maps they start
 * from, little garbage, every allocation failing in turn.
 */
#include "term_internal.h"
#include "term_test.h"

static const size_t sizes[] = {0, 1, 31, 32, 33, 1000, 100000};

/* A deterministic generator (xorshift64*). */
static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* Key i of a family of distinct keys of every type: small and big
 * integers, floats (1.0 is another key than 1), atoms, binaries (on the
 * heap and shared), tuples, lists, pids and maps. */
static amb_term key_of(amb_heap *h, size_t i)
{
    char name[48];
    switch (i % 9) {
    case 0:
    case 1:
    case 2:
        return amb_int(h, (int64_t)i);
    case 3:
        return amb_float(h, (double)i);
    case 4:
        snprintf(name, sizeof name, "key_%zu", i);
        return amb_atom(name);
    case 5: {
        /* Every 10th a binary of more than AMB_HEAP_BINARY_MAX bytes. */
        uint8_t bytes[100];
        memset(bytes, (int)(i & 0xff), sizeof bytes);
        memcpy(bytes, &i, sizeof i);
        return amb_binary(h, bytes, i % 10 == 5 ? sizeof bytes : sizeof i);
    }
    case 6: {
        /* Beyond 64 bits: a big integer. */
        uint8_t mag[12] = {0};
        memcpy(mag, &i, sizeof i);
        mag[11] = 1;
        amb_term t;
        return amb_int_from_bytes(h, i % 2 == 0, mag, sizeof mag, &t) == 0 ? t : AMB_NONE;
    }
    case 7:
        return AMB_TUPLE(h, amb_atom("k"), amb_int(h, (int64_t)i),
                         amb_string(h, i % 2 ? "odd" : "even"));
    default:
        return amb_pid_term(h, amb_atom("n@h"), (uint32_t)i, 1, 2);
    }
}

static amb_term value_of(amb_heap *h, size_t i)
{
    return i % 4 == 0 ? amb_int(h, (int64_t)i * 7) : AMB_TUPLE(h, amb_int(h, (int64_t)i));
}

/* A map of keys 0..n-1, built by puts in a scrambled order. */
static amb_term map_by_puts(amb_heap *h, size_t n)
{
    amb_term m = amb_map(h, 0, NULL, NULL);
    size_t step = 7919; /* a prime: i * step mod n visits every i */
    for (size_t j = 0; j < n; j++) {
        size_t i = n % step == 0 ? j : (j * step) % n;
        m = amb_map_put(h, m, key_of(h, i), value_of(h, i));
        assert_true(m != AMB_NONE);
    }
    return m;
}

/* The same pairs in one amb_map call. */
static amb_term map_at_once(amb_heap *h, size_t n)
{
    amb_term *kv = malloc((2 * n + 1) * sizeof *kv);
    assert_non_null(kv);
    for (size_t i = 0; i < n; i++) {
        kv[i] = key_of(h, i);
        kv[n + i] = value_of(h, i);
    }
    amb_term m = amb_map(h, n, kv, kv + n);
    free(kv);
    return m;
}

static bool is_flat(amb_term m)
{
    return amb__box_kind(m) == AMB__K_MAP;
}

/* Checks m holds exactly the pairs of keys 0..n-1 with value_of. */
static void check_contents(amb_heap *h, amb_term m, size_t n)
{
    assert_true(amb_is_map(m));
    assert_int_equal(amb_map_size(m), n);
    assert_true(is_flat(m) == (n <= 32));
    for (size_t i = 0; i < n; i++) {
        amb_term v;
        assert_ok(amb_map_get(m, key_of(h, i), &v));
        assert_true(amb_equal(v, value_of(h, i)));
    }
    amb_term v;
    assert_rc(AMB_ENOTFOUND, amb_map_get(m, key_of(h, n), &v));
    assert_rc(AMB_ENOTFOUND, amb_map_get(m, amb_atom("not_a_key"), &v));
}

/* Iterates m: every pair once, sizes agree, and the order is the same on a
 * second walk, in amb_map_keys/amb_map_values, and (up to 32 pairs)
 * ascending in exact order. */
static void check_iteration(amb_heap *h, amb_term m)
{
    size_t n = amb_map_size(m), count = 0;
    amb_map_iter it, again;
    amb_term k, v, prev = AMB_NONE;
    amb_term keys = amb_map_keys(h, m), values = amb_map_values(h, m);
    assert_true(keys != AMB_NONE && values != AMB_NONE);
    assert_ok(amb_map_iterator(m, &it));
    assert_ok(amb_map_iterator(m, &again));
    while (amb_map_next(&it, &k, &v)) {
        amb_term k2, v2, found;
        assert_true(amb_map_next(&again, &k2, &v2));
        assert_true(k == k2 && v == v2);
        assert_true(amb_list_head(keys) == k);
        assert_true(amb_list_head(values) == v);
        keys = amb_list_tail(keys);
        values = amb_list_tail(values);
        assert_ok(amb_map_get(m, k, &found));
        assert_true(found == v);
        if (n <= 32 && prev != AMB_NONE)
            assert_true(amb_compare_exact(prev, k) < 0);
        prev = k;
        count++;
    }
    assert_false(amb_map_next(&it, &k, &v)); /* stays at the end */
    assert_int_equal(count, n);
    assert_true(keys == AMB_NIL && values == AMB_NIL);
}

AMB_TEST(maps_of_every_size_hold_what_was_put)
{
    for (size_t s = 0; s < AMB_COUNTOF(sizes); s++) {
        size_t n = sizes[s];
        amb_term a = map_by_puts(H, n), b = map_at_once(H, n);
        check_contents(H, a, n);
        check_contents(H, b, n);
        check_iteration(H, a);
        /* One canonical form: equal whatever the order of building. */
        assert_true(amb_equal(a, b));
        assert_int_equal(amb_compare(a, b), 0);
        assert_int_equal(amb_compare_exact(a, b), 0);
        assert_true(amb_hash(a) == amb_hash(b));
        amb_heap_reset(H);
    }
}

AMB_TEST(update_remove_and_take_at_every_size)
{
    for (size_t s = 0; s < AMB_COUNTOF(sizes); s++) {
        size_t n = sizes[s];
        amb_term m = map_at_once(H, n), out, v, rest;
        /* A missing key: update and take fail, remove gives the map back. */
        amb_term missing = key_of(H, n + 5);
        assert_rc(AMB_ENOTFOUND, amb_map_update(H, m, missing, AMB_NIL, &out));
        assert_rc(AMB_ENOTFOUND, amb_map_take(H, m, missing, &v, &rest));
        assert_true(amb_map_remove(H, m, missing) == m);
        /* The same value: nothing changes, nothing is built. */
        if (n > 0) {
            amb_term v0;
            assert_ok(amb_map_get(m, key_of(H, 0), &v0));
            assert_true(amb_map_put(H, m, key_of(H, 0), v0) == m);
        }
        /* Update every 3rd key, then check all, then take every 5th. */
        amb_term u = m;
        for (size_t i = 0; i < n; i += 3)
            assert_ok(amb_map_update(H, u, key_of(H, i), amb_atom("updated"), &u));
        assert_int_equal(amb_map_size(u), n);
        for (size_t i = 0; i < n; i++) {
            assert_ok(amb_map_get(u, key_of(H, i), &v));
            assert_true(i % 3 == 0 ? v == amb_atom("updated")
                                   : amb_equal(v, value_of(H, i)));
        }
        check_contents(H, m, n); /* the original is unchanged */
        size_t left = n;
        amb_term t = u;
        for (size_t i = 0; i < n; i += 5) {
            assert_ok(amb_map_take(H, t, key_of(H, i), &v, &rest));
            assert_true(i % 3 == 0 ? v == amb_atom("updated")
                                   : amb_equal(v, value_of(H, i)));
            t = rest;
            left--;
            assert_int_equal(amb_map_size(t), left);
            assert_true(is_flat(t) == (left <= 32));
        }
        check_iteration(H, t);
        /* Remove everything, in another order: the map shrinks to flat and
         * to empty, and equals a map built from what is left at each size
         * the test looks at. */
        amb_term r = m;
        for (size_t j = 0; j < n; j++) {
            size_t i = n - 1 - j;
            r = amb_map_remove(H, r, key_of(H, i));
            assert_true(r != AMB_NONE);
            assert_int_equal(amb_map_size(r), i);
            if (i == 33 || i == 32 || i == 31 || i == 1 || i == 0 || i % 4099 == 0)
                assert_true(amb_equal(r, map_at_once(H, i)));
        }
        assert_int_equal(amb_map_size(r), 0);
        amb_heap_reset(H);
    }
}

AMB_TEST(merge_takes_the_second_maps_values_at_every_size)
{
    for (size_t s = 0; s < AMB_COUNTOF(sizes); s++) {
        for (size_t t = 0; t < AMB_COUNTOF(sizes); t++) {
            size_t n1 = sizes[s], n2 = sizes[t];
            if (n1 > 1000 && n2 > 1000)
                continue; /* both large: covered by 100000 x 1000 */
            /* m1: keys 0..n1-1; m2: keys n1/2 .. n1/2+n2-1 with other values. */
            amb_term m1 = map_at_once(H, n1), m2 = amb_map(H, 0, NULL, NULL);
            size_t from = n1 / 2;
            amb_term *kv = malloc((2 * n2 + 1) * sizeof *kv);
            assert_non_null(kv);
            for (size_t i = 0; i < n2; i++) {
                kv[i] = key_of(H, from + i);
                kv[n2 + i] = amb_atom("second");
            }
            m2 = amb_map(H, n2, kv, kv + n2);
            free(kv);
            amb_term m = amb_map_merge(H, m1, m2);
            size_t total = (from + n2 > n1 ? from + n2 : n1);
            assert_int_equal(amb_map_size(m), total);
            for (size_t i = 0; i < total; i++) {
                amb_term v;
                assert_ok(amb_map_get(m, key_of(H, i), &v));
                if (i >= from && i < from + n2)
                    assert_true(v == amb_atom("second"));
                else
                    assert_true(amb_equal(v, value_of(H, i)));
            }
            assert_true(amb_equal(amb_map_merge(H, m1, amb_map(H, 0, NULL, NULL)), m1));
            assert_true(amb_equal(amb_map_merge(H, amb_map(H, 0, NULL, NULL), m2), m2));
            amb_heap_reset(H);
        }
    }
}

AMB_TEST(map_functions_refuse_what_is_not_a_map)
{
    amb_term m = map_at_once(H, 40), out = AMB_NIL, v = AMB_NIL, rest = AMB_NIL;
    amb_map_iter it;
    assert_true(amb_map_put(H, AMB_NIL, I(1), I(2)) == AMB_NONE);
    assert_true(amb_map_remove(H, I(3), I(1)) == AMB_NONE);
    assert_true(amb_map_merge(H, m, AMB_NIL) == AMB_NONE);
    assert_true(amb_map_keys(H, T(I(1))) == AMB_NONE);
    assert_true(amb_map_values(H, A("x")) == AMB_NONE);
    assert_rc(AMB_ETYPE, amb_map_update(H, AMB_NIL, I(1), I(2), &out));
    assert_rc(AMB_ETYPE, amb_map_take(H, AMB_NIL, I(1), &v, &rest));
    assert_rc(AMB_ETYPE, amb_map_iterator(AMB_NIL, &it));
    assert_rc(AMB_EBADARG, amb_map_update(H, m, AMB_NONE, I(2), &out));
    assert_rc(AMB_EBADARG, amb_map_update(H, m, I(1), I(2), NULL));
    assert_rc(AMB_EBADARG, amb_map_take(H, m, I(1), NULL, &rest));
    assert_rc(AMB_EBADARG, amb_map_iterator(m, NULL));
    assert_true(amb_map_put(H, m, AMB_NONE, I(1)) == AMB_NONE);
    assert_true(amb_map_put(NULL, m, I(1), I(1)) == AMB_NONE);
    assert_true(out == AMB_NIL && v == AMB_NIL && rest == AMB_NIL); /* untouched */
    assert_int_equal(amb_map_size(AMB_NIL), 0);
}

/* ---------------------------------------------------------------------------
 * A random walk against a model: a plain array of pairs.
 * ------------------------------------------------------------------------ */

typedef struct model {
    amb_term *k, *v;
    size_t n, cap;
} model;

static size_t model_find(const model *md, amb_term key)
{
    for (size_t i = 0; i < md->n; i++)
        if (amb_equal(md->k[i], key))
            return i;
    return SIZE_MAX;
}

static void model_put(model *md, amb_term key, amb_term value)
{
    size_t i = model_find(md, key);
    if (i != SIZE_MAX) {
        md->v[i] = value;
        return;
    }
    if (md->n == md->cap) {
        md->cap = md->cap ? 2 * md->cap : 64;
        md->k = realloc(md->k, md->cap * sizeof *md->k);
        md->v = realloc(md->v, md->cap * sizeof *md->v);
        assert_true(md->k != NULL && md->v != NULL);
    }
    md->k[md->n] = key;
    md->v[md->n++] = value;
}

static void model_remove(model *md, size_t i)
{
    md->k[i] = md->k[md->n - 1];
    md->v[i] = md->v[--md->n];
}

static void check_model(amb_heap *h, amb_term m, const model *md)
{
    assert_int_equal(amb_map_size(m), md->n);
    assert_true(is_flat(m) == (md->n <= 32));
    for (size_t i = 0; i < md->n; i++) {
        amb_term v;
        assert_ok(amb_map_get(m, md->k[i], &v));
        assert_true(v == md->v[i]);
    }
    /* The canonical form: built at once from the model's pairs, equal. */
    amb_term again = amb_map(h, md->n, md->k, md->v);
    assert_true(amb_equal(m, again));
    assert_true(amb_hash(m) == amb_hash(again));
    check_iteration(h, m);
}

AMB_TEST(random_operations_agree_with_a_model)
{
    /* Keys from a pool of 600 (so puts hit present keys and removes hit
     * missing ones); sizes wander over 0..~500, across 32 many times. */
    rng_state = 0x9e3779b97f4a7c15ull;
    model md = {0};
    amb_term pool[600];
    for (size_t i = 0; i < AMB_COUNTOF(pool); i++)
        pool[i] = key_of(H, i * 13);
    amb_term m = amb_map(H, 0, NULL, NULL);
    for (int step = 0; step < 40000; step++) {
        uint64_t r = rng();
        amb_term key = pool[r % AMB_COUNTOF(pool)];
        amb_term value = amb_int(H, (int64_t)(r >> 40));
        size_t at = model_find(&md, key);
        /* Grow while small, shrink while large, so sizes cross 32 often. */
        unsigned op = (unsigned)((r >> 20) % 10);
        bool grow = md.n < 60 || (md.n < 500 && (step / 2000) % 2 == 0);
        amb_term out, v, rest;
        if (op < (grow ? 6u : 3u)) {
            m = amb_map_put(H, m, key, value);
            model_put(&md, key, value);
        } else if (op < 7) {
            m = amb_map_remove(H, m, key);
            if (at != SIZE_MAX)
                model_remove(&md, at);
        } else if (op < 8) {
            int rc = amb_map_update(H, m, key, value, &out);
            assert_rc(at == SIZE_MAX ? AMB_ENOTFOUND : 0, rc);
            if (rc == 0) {
                m = out;
                md.v[at] = value;
            }
        } else if (op < 9) {
            int rc = amb_map_take(H, m, key, &v, &rest);
            assert_rc(at == SIZE_MAX ? AMB_ENOTFOUND : 0, rc);
            if (rc == 0) {
                assert_true(v == md.v[at]);
                m = rest;
                model_remove(&md, at);
            }
        } else {
            int rc = amb_map_get(m, key, &v);
            assert_rc(at == SIZE_MAX ? AMB_ENOTFOUND : 0, rc);
            if (rc == 0)
                assert_true(v == md.v[at]);
        }
        assert_true(m != AMB_NONE);
        assert_int_equal(amb_map_size(m), md.n);
        if (step % 997 == 0 || (md.n >= 31 && md.n <= 34 && step % 7 == 0))
            check_model(H, m, &md);
    }
    check_model(H, m, &md);
    free(md.k);
    free(md.v);
}

/* ---------------------------------------------------------------------------
 * Structure sharing and canonical shape
 * ------------------------------------------------------------------------ */

AMB_TEST(a_put_on_a_large_map_allocates_a_path_not_a_map)
{
    amb_term m = map_at_once(H, 100000);
    size_t whole = amb_term_size(m);
    assert_true(whole > 1000000); /* the map itself: over a megabyte */
    /* Each new version on a heap of its own: the heap holds its path (four
     * to six nodes of at most 34 words, and the heap's first block), and
     * shares everything else with m. */
    const size_t bound = 4096;
    for (size_t i = 0; i < 200; i++) {
        amb_heap *a, *b, *c, *d;
        assert_ok(amb_heap_new(&a));
        assert_ok(amb_heap_new(&b));
        assert_ok(amb_heap_new(&c));
        assert_ok(amb_heap_new(&d));
        amb_term added = amb_map_put(a, m, key_of(H, 100000 + i), I(1));
        amb_term replaced = amb_map_put(b, m, key_of(H, i * 31), I(2));
        amb_term removed = amb_map_remove(c, m, key_of(H, i * 37));
        amb_term updated;
        assert_ok(amb_map_update(d, m, key_of(H, i * 41), I(3), &updated));
        assert_int_equal(amb_map_size(added), 100001);
        assert_int_equal(amb_map_size(replaced), 100000);
        assert_int_equal(amb_map_size(removed), 99999);
        assert_int_equal(amb_map_size(updated), 100000);
        assert_true(amb_heap_size(a) <= bound && amb_heap_size(b) <= bound);
        assert_true(amb_heap_size(c) <= bound && amb_heap_size(d) <= bound);
        amb_heap_free(a);
        amb_heap_free(b);
        amb_heap_free(c);
        amb_heap_free(d);
    }
}

/* Walks a trie and checks its shape is canonical: no node but the root
 * holds fewer than two pairs in all, no HCOLL holds fewer than two, and an
 * HCOLL's keys are in exact order. Returns the pairs below node. */
static size_t check_shape(amb_term node, unsigned level)
{
    const uint64_t *p = amb__box(node);
    if (AMB__HDR_KIND(p[0]) == AMB__K_HCOLL) {
        size_t n = (size_t)AMB__HDR_PAYLOAD(p[0]);
        assert_int_equal(level, AMB__HAMT_LEVELS);
        assert_true(n >= 2);
        for (size_t i = 1; i < n; i++)
            assert_true(amb_compare_exact(p[1 + 2 * (i - 1)], p[1 + 2 * i]) < 0);
        return n;
    }
    assert_int_equal(AMB__HDR_KIND(p[0]), AMB__K_HNODE);
    assert_true(level < AMB__HAMT_LEVELS);
    /* No edit's marks are left: a header is its kind and datamap only, a
     * child word a plain box. */
    assert_true(p[0] >> 40 == 0);
    uint32_t dmap = amb__hnode_datamap(p), nmap = amb__hnode_nodemap(p);
    assert_true((dmap & nmap) == 0);
    size_t nd = amb__hamt_popcount(dmap), nn = amb__hamt_popcount(nmap), pairs = nd;
    for (size_t i = 0; i < nn; i++) {
        assert_true(amb__is_boxed(p[2 + 2 * nd + i]) && p[2 + 2 * nd + i] >> 63 == 0);
        pairs += check_shape(p[2 + 2 * nd + i], level + 1);
    }
    if (level > 0)
        assert_true(pairs >= 2); /* a chain node too leads to two at least */
    return pairs;
}

AMB_TEST(tries_keep_their_canonical_shape_through_removals)
{
    amb_term m = map_at_once(H, 5000);
    assert_int_equal(check_shape(amb__box(m)[1], 0), 5000);
    rng_state = 42;
    size_t n = 5000;
    while (n > 33) {
        amb_term r = amb_map_remove(H, m, key_of(H, rng() % 5000));
        if (r != m)
            n--;
        m = r;
        if (n % 97 == 0)
            assert_int_equal(check_shape(amb__box(m)[1], 0), n);
    }
    assert_int_equal(check_shape(amb__box(m)[1], 0), n);
}

/* ---------------------------------------------------------------------------
 * Collision nodes, white-box: keys given one chosen hash (no real keys
 * collide in 64 bits), through the trie's own functions, which take the
 * hash as an argument. Only operations that never rehash a key are used.
 * ------------------------------------------------------------------------ */

AMB_TEST(keys_with_one_full_hash_share_a_collision_node)
{
    /* 100 keys with hashes 0..99 (unique within two levels), and three with
     * the hash COLL, whose level-0 digit (31) and level-1 digit (30) no
     * other key uses below slot 31. */
    const uint64_t COLL = 0xfedcba9876543000ull | (30u << 5) | 31u;
    amb__hamt_item items[103];
    for (size_t i = 0; i < 100; i++)
        items[i] = (amb__hamt_item){i, I((int64_t)i), I((int64_t)i * 2), i};
    items[100] = (amb__hamt_item){COLL, A("c2"), I(-2), 100};
    items[101] = (amb__hamt_item){COLL, A("c0"), I(-0), 101};
    items[102] = (amb__hamt_item){COLL, A("c1"), I(-1), 102};
    amb_term m;
    assert_ok(amb__hamt_build(H, items, 103, false, &m));
    assert_int_equal(amb_map_size(m), 103);
    assert_int_equal(check_shape(amb__box(m)[1], 0), 103);
    amb_term v;
    assert_true(amb__hamt_get(m, A("c1"), COLL, &v) && v == I(-1));
    assert_false(amb__hamt_get(m, A("c9"), COLL, &v));
    /* Iteration: the three collide at the end of slot 31, in exact order. */
    amb_map_iter it;
    amb_term k, last[3] = {AMB_NONE, AMB_NONE, AMB_NONE};
    assert_ok(amb_map_iterator(m, &it));
    while (amb_map_next(&it, &k, &v)) {
        last[0] = last[1];
        last[1] = last[2];
        last[2] = k;
    }
    assert_true(last[0] == A("c0") && last[1] == A("c1") && last[2] == A("c2"));
    /* Put into the collision node: a new key, a new value, the same value. */
    amb_term m2;
    assert_ok(amb__hamt_put(H, m, A("c05"), I(5), COLL, AMB__HAMT_PUT, &m2));
    assert_int_equal(amb_map_size(m2), 104);
    assert_int_equal(check_shape(amb__box(m2)[1], 0), 104);
    assert_ok(amb__hamt_put(H, m2, A("c05"), I(6), COLL, AMB__HAMT_UPDATE, &m2));
    assert_true(amb__hamt_get(m2, A("c05"), COLL, &v) && v == I(6));
    amb_term same;
    assert_ok(amb__hamt_put(H, m2, A("c0"), I(99), COLL, AMB__HAMT_INSERT, &same));
    assert_true(same == m2);
    assert_rc(AMB_ENOTFOUND,
              amb__hamt_put(H, m2, A("c7"), I(6), COLL, AMB__HAMT_UPDATE, &same));
    /* Remove down to one: the last key climbs out of the collision node and
     * the chain above it to the first level that holds anything else. */
    amb_term r = m2;
    const char *names[] = {"c05", "c2", "c0"};
    for (size_t i = 0; i < 3; i++) {
        assert_ok(amb__hamt_remove(H, r, A(names[i]), COLL, &v, &r));
        assert_int_equal(check_shape(amb__box(r)[1], 0), 103 - i);
    }
    assert_true(amb__hamt_get(r, A("c1"), COLL, &v) && v == I(-1));
    const uint64_t *root = amb__box(amb__box(r)[1]);
    /* Slot 31 of the root now leads to a level-1 node holding c1 inline
     * beside the keys 31, 63... whose level-1 digits are 0..3. */
    uint32_t nmap = amb__hnode_nodemap(root);
    assert_true(nmap & (1u << 31));
    const uint64_t *l1 =
        amb__box(root[2 + 2 * amb__hamt_popcount(amb__hnode_datamap(root)) +
                      amb__hamt_popcount(nmap & ((1u << 31) - 1))]);
    assert_true(amb__hnode_datamap(l1) & (1u << 30));
    assert_rc(AMB_ENOTFOUND, amb__hamt_remove(H, r, A("c0"), COLL, &v, &r));
    /* Equality and copies walk the collision node like any other. */
    amb_term c1, c2;
    amb_heap *other;
    assert_ok(amb_heap_new(&other));
    assert_ok(amb_term_copy(other, m2, &c1));
    assert_ok(amb_term_copy(other, m2, &c2));
    assert_true(amb_equal(c1, m2) && amb_equal(c1, c2));
    assert_false(amb_equal(m, m2));
    assert_int_equal(amb_term_size(c1), amb_term_size(m2));
    amb_heap_free(other);
    /* Duplicates among colliding keys: the last wins, or the build fails. */
    amb__hamt_item dup[40];
    for (size_t i = 0; i < 40; i++)
        dup[i] = (amb__hamt_item){i < 38 ? i : COLL, I(i < 38 ? (int64_t)i : 7777),
                                  I((int64_t)i), i};
    assert_ok(amb__hamt_build(H, dup, 40, false, &m));
    assert_int_equal(amb_map_size(m), 39);
    for (size_t i = 0; i < 40; i++)
        dup[i] = (amb__hamt_item){i < 38 ? i : COLL, I(i < 38 ? (int64_t)i : 7777),
                                  I((int64_t)i), i};
    assert_rc(AMB_EEXIST, amb__hamt_build(H, dup, 40, true, &m));
}

/* ---------------------------------------------------------------------------
 * Edits
 * ------------------------------------------------------------------------ */

/* A trie map's shape, marks included (check_shape), and its pair count. */
static void check_trie(amb_term m, size_t n)
{
    if (is_flat(m))
        return;
    assert_true(amb__box(m)[1] >> 63 == 0);
    assert_int_equal(check_shape(amb__box(m)[1], 0), n);
}

AMB_TEST(edits_agree_with_a_model_and_leave_their_start_as_it_was)
{
    /* Rounds of edits on one map; each ends at a size that wanders over
     * 0..~2500 (deep tries, and across 32 both ways inside one edit). The
     * map each round starts from is compared after the edit with a copy
     * made before it: an edit never writes a node it did not make. */
    rng_state = 0x2545f4914f6cdd1dull;
    enum { POOL = 3000 };
    amb_term *pool = malloc(POOL * sizeof *pool);
    assert_non_null(pool);
    for (size_t i = 0; i < POOL; i++)
        pool[i] = key_of(H, i * 7);
    amb_heap *other;
    assert_ok(amb_heap_new(&other));
    model md = {0};
    amb_term m = amb_map(H, 0, NULL, NULL);
    for (int round = 0; round < 40; round++) {
        amb_term start = m, snapshot;
        assert_ok(amb_term_copy(other, m, &snapshot));
        amb_map_edit e;
        assert_ok(amb_map_edit_init(&e, H, m));
        bool grow = (round / 4) % 2 == 0;
        int ops = (int)(rng() % 3000);
        for (int i = 0; i < ops; i++) {
            uint64_t r = rng();
            size_t limit = grow ? POOL : 40 + (size_t)round * 10;
            amb_term key = pool[r % (limit < POOL ? limit : POOL)];
            amb_term value = amb_int(H, (int64_t)(r >> 40)), v;
            size_t at = model_find(&md, key);
            unsigned op = (unsigned)((r >> 20) % 10);
            if (op < (grow ? 6u : 2u)) {
                assert_ok(amb_map_edit_put(&e, key, value));
                model_put(&md, key, value);
            } else if (op < 8) {
                int rc = amb_map_edit_remove(&e, key, &v);
                assert_rc(at == SIZE_MAX ? AMB_ENOTFOUND : 0, rc);
                if (rc == 0) {
                    assert_true(v == md.v[at]);
                    model_remove(&md, at);
                }
            } else {
                int rc = amb_map_edit_get(&e, key, &v);
                assert_rc(at == SIZE_MAX ? AMB_ENOTFOUND : 0, rc);
                if (rc == 0)
                    assert_true(v == md.v[at]);
            }
            assert_int_equal(amb_map_edit_size(&e), md.n);
        }
        assert_ok(amb_map_edit_end(&e, &m));
        assert_true(amb_equal(start, snapshot));
        check_model(H, m, &md);
        check_trie(m, md.n);
        amb_heap_reset(other);
    }
    amb_heap_free(other);
    free(pool);
    free(md.k);
    free(md.v);
}

AMB_TEST(an_edit_shares_what_it_does_not_change_and_changes_no_other_map)
{
    /* m0 and m1 (a put on m0) share all but a path; an edit of m1 leaves
     * both as they were, and the edit's own result shares m1's untouched
     * nodes. */
    amb_term m0 = map_at_once(H, 20000);
    amb_term m1 = amb_map_put(H, m0, key_of(H, 20000), I(-1));
    amb_heap *other, *a;
    assert_ok(amb_heap_new(&other));
    assert_ok(amb_heap_new(&a));
    amb_term s0, s1, out;
    assert_ok(amb_term_copy(other, m0, &s0));
    assert_ok(amb_term_copy(other, m1, &s1));
    /* One change: the edit, on a heap of its own, holds a path. */
    amb_map_edit e;
    assert_ok(amb_map_edit_init(&e, a, m1));
    assert_ok(amb_map_edit_put(&e, key_of(H, 3), I(-3)));
    assert_ok(amb_map_edit_end(&e, &out));
    assert_true(amb_heap_size(a) <= 8192);
    assert_int_equal(amb_map_size(out), 20001);
    /* Many changes, on H. */
    assert_ok(amb_map_edit_init(&e, H, m1));
    for (size_t i = 0; i < 20001; i += 3)
        assert_ok(amb_map_edit_remove(&e, key_of(H, i), NULL));
    for (size_t i = 0; i < 20001; i += 5)
        assert_ok(amb_map_edit_put(&e, key_of(H, i), I((int64_t)i)));
    assert_ok(amb_map_edit_end(&e, &out));
    assert_true(amb_equal(m0, s0) && amb_equal(m1, s1));
    check_trie(m0, 20000);
    check_trie(m1, 20001);
    check_trie(out, amb_map_size(out));
    for (size_t i = 0; i <= 20000; i++) {
        amb_term v, want = i % 5 == 0   ? I((int64_t)i)
                           : i == 20000 ? I(-1)
                                        : value_of(H, i);
        if (i % 3 == 0 && i % 5 != 0) {
            assert_rc(AMB_ENOTFOUND, amb_map_get(out, key_of(H, i), &v));
        } else {
            assert_ok(amb_map_get(out, key_of(H, i), &v));
            assert_true(amb_equal(v, want));
        }
    }
    amb_heap_free(a);
    amb_heap_free(other);
}

AMB_TEST(an_edit_builds_a_large_map_with_little_garbage)
{
    /* 100,000 puts: the edit's heap holds the map plus what its nodes
     * outgrew and their spare room (under 3x the map); the same puts one
     * map after another hold every path they copied (over 10x). */
    amb_heap *he, *hp;
    assert_ok(amb_heap_new(&he));
    assert_ok(amb_heap_new(&hp));
    amb_map_edit e;
    amb_term m, p = amb_map(hp, 0, NULL, NULL);
    assert_ok(amb_map_edit_init(&e, he, amb_map(he, 0, NULL, NULL)));
    for (int64_t i = 0; i < 100000; i++) {
        assert_ok(amb_map_edit_put(&e, AMB_SMALL(i), AMB_SMALL(-i)));
        p = amb_map_put(hp, p, AMB_SMALL(i), AMB_SMALL(-i));
    }
    assert_ok(amb_map_edit_end(&e, &m));
    assert_true(amb_equal(m, p));
    size_t size = amb_term_size(m);
    assert_true(amb_heap_size(he) < 3 * size);
    assert_true(amb_heap_size(hp) > 10 * size);
    check_trie(m, 100000);
    amb_heap_free(he);
    amb_heap_free(hp);
}

AMB_TEST(an_edit_crosses_between_flat_and_trie_and_ends_canonical)
{
    amb_map_edit e;
    amb_term m, v;
    assert_ok(amb_map_edit_init(&e, H, amb_map(H, 0, NULL, NULL)));
    for (size_t i = 0; i < 40; i++)
        assert_ok(amb_map_edit_put(&e, key_of(H, i), value_of(H, i)));
    for (size_t i = 0; i < 20; i++)
        assert_ok(amb_map_edit_remove(&e, key_of(H, 2 * i), NULL));
    assert_int_equal(amb_map_edit_size(&e), 20);
    assert_ok(amb_map_edit_end(&e, &m));
    assert_true(is_flat(m));
    assert_int_equal(amb_map_size(m), 20);
    for (size_t i = 0; i < 40; i++)
        assert_rc(i % 2 ? 0 : AMB_ENOTFOUND, amb_map_get(m, key_of(H, i), &v));
    /* A trie edited down to nothing ends as the empty (flat) map. */
    assert_ok(amb_map_edit_init(&e, H, map_at_once(H, 100)));
    for (size_t i = 0; i < 100; i++)
        assert_ok(amb_map_edit_remove(&e, key_of(H, i), NULL));
    assert_ok(amb_map_edit_end(&e, &m));
    assert_true(amb_equal(m, amb_map(H, 0, NULL, NULL)));
    check_iteration(H, m);
}

AMB_TEST(edit_calls_refuse_misuse)
{
    amb_map_edit e;
    amb_term m = map_at_once(H, 50), out, v;
    assert_rc(AMB_EBADARG, amb_map_edit_init(NULL, H, m));
    assert_rc(AMB_EBADARG, amb_map_edit_init(&e, NULL, m));
    assert_rc(AMB_ETYPE, amb_map_edit_init(&e, H, A("not_a_map")));
    assert_ok(amb_map_edit_init(&e, H, m));
    assert_rc(AMB_EBADARG, amb_map_edit_put(&e, AMB_NONE, I(1)));
    assert_rc(AMB_EBADARG, amb_map_edit_put(&e, I(1), AMB_NONE));
    assert_rc(AMB_EBADARG, amb_map_edit_remove(&e, AMB_NONE, NULL));
    assert_rc(AMB_EBADARG, amb_map_edit_get(&e, I(1), NULL));
    assert_rc(AMB_EBADARG, amb_map_edit_end(&e, NULL));
    assert_ok(amb_map_edit_end(&e, &out));
    assert_true(out == m); /* nothing changed: the map itself */
    /* An ended edit is closed. */
    assert_rc(AMB_EBADARG, amb_map_edit_put(&e, I(1), I(2)));
    assert_rc(AMB_EBADARG, amb_map_edit_remove(&e, I(1), NULL));
    assert_rc(AMB_EBADARG, amb_map_edit_get(&e, I(1), &v));
    assert_rc(AMB_EBADARG, amb_map_edit_end(&e, &out));
    assert_int_equal(amb_map_edit_size(&e), 0);
    assert_int_equal(amb_map_edit_size(NULL), 0);
}

AMB_TEST(edits_of_keys_with_one_full_hash)
{
    /* The collision node inside an edit, white-box with chosen hashes
     * (as keys_with_one_full_hash_share_a_collision_node does). */
    const uint64_t COLL = 0xfedcba9876543000ull | (30u << 5) | 31u;
    amb__hamt_item items[102];
    for (size_t i = 0; i < 100; i++)
        items[i] = (amb__hamt_item){i, I((int64_t)i), I((int64_t)i * 2), i};
    /* Two colliding keys from the start (a put beside a lone key rehashes
     * it, which chosen hashes cannot survive). */
    items[100] = (amb__hamt_item){COLL, A("c2"), I(0), 100};
    items[101] = (amb__hamt_item){COLL, A("c0"), I(-1), 101};
    amb_term m, v, snapshot;
    assert_ok(amb__hamt_build(H, items, 102, false, &m));
    assert_ok(amb_term_copy(H, m, &snapshot));
    uint64_t *root = amb__hamt_edit_begin(H, m);
    assert_non_null(root);
    amb_term edited = amb__make_box(root);
    const char *names[] = {"c2", "c0", "c1", "c05"};
    for (size_t i = 2; i < 4; i++)
        assert_ok(amb__hamt_edit_put(H, root, A(names[i]), I(-(int64_t)i), COLL));
    assert_ok(amb__hamt_edit_put(H, root, A("c0"), I(7), COLL)); /* a new value */
    assert_int_equal(amb_map_size(edited), 104);
    assert_true(amb__hamt_get(edited, A("c0"), COLL, &v) && v == I(7));
    assert_rc(AMB_ENOTFOUND, amb__hamt_edit_remove(H, root, A("c9"), COLL, &v));
    for (size_t i = 0; i < 3; i++) {
        assert_ok(amb__hamt_edit_remove(H, root, A(names[i]), COLL, &v));
        assert_int_equal(amb_map_size(edited), 103 - i);
    }
    assert_true(amb__hamt_get(edited, A("c05"), COLL, &v) && v == I(-3));
    amb__hamt_edit_seal(root);
    check_trie(edited, 101);
    assert_true(amb_equal(m, snapshot));
    /* The last colliding key climbed out to the level-1 node of slot 31. */
    const uint64_t *r = amb__box(root[1]);
    uint32_t nmap = amb__hnode_nodemap(r);
    const uint64_t *l1 = amb__box(r[2 + 2 * amb__hamt_popcount(amb__hnode_datamap(r)) +
                                    amb__hamt_popcount(nmap & ((1u << 31) - 1))]);
    assert_true(amb__hnode_datamap(l1) & (1u << 30));
}

/* Takes all but k free words of h's current block (writing nothing), so
 * that what comes next starts a new block at its (k + 1)th word or so. */
static void leave_words(amb_heap *h, size_t k)
{
    size_t left = (size_t)(h->end - h->top);
    if (left > k)
        (void)amb__heap_alloc(h, left - k);
}

/* Edits with allocation n failing: a failed operation leaves the pairs as
 * they were (every key checked) and the same operation then succeeds. A
 * heap allocates only when a block fills up, so before each operation all
 * but a few words of the block are taken: each operation allocates a
 * block, at a step that changes from one operation to the next (a node of
 * the path copied, a node grown, a subtree, a collision node...). */
static int edit_under_failures(void *ctx)
{
    (void)ctx;
    amb_heap *h;
    int rc = amb_heap_new(&h);
    if (rc != 0)
        return rc;
    amb_term keys[300], values[300], m;
    for (int64_t i = 0; i < 300; i++) {
        keys[i] = AMB_SMALL(i);
        values[i] = AMB_SMALL(i);
    }
    m = amb_map(h, 200, keys, values); /* keys 0..199 */
    amb_map_edit e;
    if (m == AMB_NONE || (rc = amb_map_edit_init(&e, h, m)) != 0) {
        amb_heap_free(h);
        return m == AMB_NONE ? AMB_ENOMEM : rc;
    }
    /* want[i]: key i's value in the edit now (AMB_NONE: absent). */
    amb_term want[300];
    for (int64_t i = 0; i < 300; i++)
        want[i] = i < 200 ? AMB_SMALL(i) : AMB_NONE;
    for (int64_t step = 0; step < 900; step++) {
        int64_t k = (step * 7) % 300;
        bool put = step < 300 || step % 3 == 0;
        leave_words(h, (size_t)(step * 13) % 24);
        for (;;) {
            rc = put ? amb_map_edit_put(&e, AMB_SMALL(k), AMB_SMALL(-step))
                     : amb_map_edit_remove(&e, AMB_SMALL(k), NULL);
            if (rc != AMB_ENOMEM)
                break;
            size_t n = 0;
            for (int64_t i = 0; i < 300; i++) {
                amb_term v;
                int g = amb_map_edit_get(&e, AMB_SMALL(i), &v);
                assert_rc(want[i] == AMB_NONE ? AMB_ENOTFOUND : 0, g);
                if (g == 0)
                    assert_true(v == want[i]);
                n += want[i] != AMB_NONE;
            }
            assert_int_equal(amb_map_edit_size(&e), n);
        }
        assert_rc(put || want[k] != AMB_NONE ? 0 : AMB_ENOTFOUND, rc);
        want[k] = put ? AMB_SMALL(-step) : AMB_NONE;
        if (step % 100 == 99) {
            /* A new edit of the result: its nodes are copied again. */
            while ((rc = amb_map_edit_end(&e, &m)) == AMB_ENOMEM)
                continue;
            assert_ok(rc);
            assert_ok(amb_map_edit_init(&e, h, m));
        }
    }
    amb_term out;
    while ((rc = amb_map_edit_end(&e, &out)) == AMB_ENOMEM)
        continue;
    assert_ok(rc);
    size_t n = 0;
    for (int64_t i = 0; i < 300; i++) {
        amb_term v;
        assert_rc(want[i] == AMB_NONE ? AMB_ENOTFOUND : 0,
                  amb_map_get(out, AMB_SMALL(i), &v));
        n += want[i] != AMB_NONE;
    }
    assert_int_equal(amb_map_size(out), n);
    check_trie(out, n);
    amb_heap_free(h);
    return 0;
}

AMB_TEST(edits_survive_every_allocation_failing_in_turn)
{
    amb_test_oom_stats st =
        amb_test_oom_loop(edit_under_failures, NULL, AMB_TEST_OOM_ONCE);
    assert_true(st.failed_runs > 100);
}

/* ---------------------------------------------------------------------------
 * Order, copies, ETF, text
 * ------------------------------------------------------------------------ */

AMB_TEST(large_maps_order_as_erlang_orders_maps)
{
    /* Same size: keys compared in order (exactly), then values (==). */
    amb_term k40[40], k40b[40], v40[40], v40f[40], v40y[40];
    for (int i = 0; i < 40; i++) {
        k40[i] = I(i + 1);
        k40b[i] = I(i == 39 ? 41 : i + 1);
        v40[i] = I(i);
        v40f[i] = F((double)i);
        v40y[i] = i == 6 ? I(1000) : I(i);
    }
    amb_term a = amb_map(H, 40, k40, v40), b = amb_map(H, 40, k40b, v40);
    amb_term y = amb_map(H, 40, k40, v40y), f = amb_map(H, 40, k40, v40f);
    assert_true(amb_compare(a, b) < 0 && amb_compare(b, a) > 0);
    assert_true(amb_compare(a, y) < 0 && amb_compare(y, a) > 0);
    /* Values compare with ==: 6 == 6.0, so these maps are == but not =:=. */
    assert_int_equal(amb_compare(a, f), 0);
    assert_false(amb_equal(a, f));
    assert_true(amb_compare_exact(a, f) < 0); /* exactly, integers first */
    /* Keys compare exactly even under ==: 1 < 1.0. */
    amb_term kf[40];
    for (int i = 0; i < 40; i++)
        kf[i] = i == 0 ? F(1.0) : I(i + 1);
    assert_true(amb_compare(a, amb_map(H, 40, kf, v40)) < 0);
    /* Sizes first: a large map is greater than any smaller one. */
    assert_true(amb_compare(map_at_once(H, 32), a) < 0);
    assert_true(amb_compare(a, map_at_once(H, 41)) < 0);
    /* A large map as a key of a large map. */
    amb_term nested_k[33], nested_v[33];
    for (int i = 0; i < 33; i++) {
        nested_k[i] = i == 0 ? a : I(i);
        nested_v[i] = i == 0 ? b : A("x");
    }
    amb_term n1 = amb_map(H, 33, nested_k, nested_v);
    nested_k[0] = b;
    amb_term n2 = amb_map(H, 33, nested_k, nested_v);
    assert_true(amb_compare(n1, n2) < 0);
    amb_term got;
    assert_ok(amb_map_get(n1, a, &got));
    assert_true(amb_equal(got, b));
}

AMB_TEST(large_maps_copy_encode_and_print_at_every_size)
{
    amb_heap *other;
    assert_ok(amb_heap_new(&other));
    for (size_t s = 0; s < AMB_COUNTOF(sizes); s++) {
        size_t n = sizes[s];
        amb_term m = map_at_once(H, n), c, back;
        /* A copy is independent of the original's heap and has its shape. */
        assert_ok(amb_term_copy(other, m, &c));
        assert_int_equal(amb_term_size(c), amb_term_size(m));
        assert_true(amb_equal(c, m) && amb_hash(c) == amb_hash(m));
        /* ETF both ways. */
        uint8_t *bytes;
        size_t len, used;
        assert_ok(amb_etf_encode_alloc(m, 0, &bytes, &len));
        assert_ok(amb_etf_decode(other, bytes, len, NULL, &back, &used));
        assert_int_equal(used, len);
        assert_true(amb_equal(back, m));
        amb_free(bytes);
        assert_ok(amb_etf_encode_alloc(m, AMB_ETF_COMPRESSED, &bytes, &len));
        assert_ok(amb_etf_decode(other, bytes, len, NULL, &back, &used));
        assert_true(amb_equal(back, m));
        amb_free(bytes);
        /* Text both ways (pids print in their #Pid form). */
        char *text;
        assert_ok(amb_print_alloc(m, &text, &len));
        assert_ok(amb_parse(other, text, len, &back, NULL));
        assert_true(amb_equal(back, m));
        amb_free(text);
        amb_heap_reset(H);
        amb_heap_reset(other);
    }
    amb_heap_free(other);
}

AMB_TEST(format_strings_build_and_match_large_maps)
{
    /* #{...} patterns look keys up, whatever the map's size. */
    amb_term m = map_at_once(H, 1000), v = AMB_NONE, k17 = key_of(H, 17);
    amb_term with = amb_map_put(H, m, A("tag"), A("ok"));
    assert_ok(amb_match(with, "#{tag := ok, ~v := ~w}", k17, &v));
    assert_true(amb_equal(v, value_of(H, 17)));
    assert_rc(AMB_ENOMATCH, amb_match(m, "#{tag := ok}"));
    /* amb_pack of a map with many literal pairs makes the trie. */
    amb_term packed =
        amb_pack(H,
                 "#{1 => a, 2 => b, 3 => c, 4 => d, 5 => e, 6 => f, 7 => g, "
                 "8 => h, 9 => i, 10 => j, 11 => k, 12 => l, 13 => m, "
                 "14 => n, 15 => o, 16 => p, 17 => q, 18 => r, 19 => s, "
                 "20 => t, 21 => u, 22 => v, 23 => w, 24 => x, 25 => y, "
                 "26 => z, 27 => aa, 28 => ab, 29 => ac, 30 => ad, "
                 "31 => ae, 32 => af, 33 => ag, ~i => ~w}",
                 34, with);
    assert_int_equal(amb_map_size(packed), 34);
    assert_false(is_flat(packed));
    assert_ok(amb_match(packed, "#{33 := ag, 34 := ~w}", &v));
    assert_true(v == with);
}

AMB_TEST_MAIN(HEAP_TEST(maps_of_every_size_hold_what_was_put),
              HEAP_TEST(update_remove_and_take_at_every_size),
              HEAP_TEST(merge_takes_the_second_maps_values_at_every_size),
              HEAP_TEST(map_functions_refuse_what_is_not_a_map),
              HEAP_TEST(random_operations_agree_with_a_model),
              HEAP_TEST(a_put_on_a_large_map_allocates_a_path_not_a_map),
              HEAP_TEST(tries_keep_their_canonical_shape_through_removals),
              HEAP_TEST(keys_with_one_full_hash_share_a_collision_node),
              HEAP_TEST(edits_agree_with_a_model_and_leave_their_start_as_it_was),
              HEAP_TEST(an_edit_shares_what_it_does_not_change_and_changes_no_other_map),
              HEAP_TEST(an_edit_builds_a_large_map_with_little_garbage),
              HEAP_TEST(an_edit_crosses_between_flat_and_trie_and_ends_canonical),
              HEAP_TEST(edit_calls_refuse_misuse),
              HEAP_TEST(edits_of_keys_with_one_full_hash),
              HEAP_TEST(edits_survive_every_allocation_failing_in_turn),
              HEAP_TEST(large_maps_order_as_erlang_orders_maps),
              HEAP_TEST(large_maps_copy_encode_and_print_at_every_size),
              HEAP_TEST(format_strings_build_and_match_large_maps))

/*
 * tests/unit/wheel.c - the hierarchical timing wheel (src/runtime/wheel.h).
 *
 * What is proved: every entry fires while the wheel's time equals its
 * deadline (or, armed in the past, the wheel's time at arming), in
 * deadline order and arm order among equals, exactly once, and never when
 * cancelled; against a sorted reference model over 100k random arm /
 * re-arm / cancel / advance operations spanning every level, the overflow
 * list and its 2^36 ms boundary; at the boundaries of every level; with
 * deadlines of days and years; with callbacks that re-arm and cancel; and
 * for a million entries. next_deadline is checked to be exact without
 * cancellations (every advance to it fires something) and a lower bound
 * with them.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "amb_test.h"
#include "internal.h"
#include "runtime/wheel.h"

#define LEVEL_SPAN(l) ((uint64_t)1 << (AMB__WHEEL_BITS * (l)))
#define TOP_SPAN      ((uint64_t)1 << (AMB__WHEEL_BITS * AMB__WHEEL_LEVELS))

/* A test timer: the entry first, so an entry pointer is a timer pointer. */
struct tmr {
    amb__wheel_entry e;
    uint32_t id;
    uint64_t fired_at; /* the wheel's time when it fired */
    uint32_t fired;    /* times fired */
};

static struct tmr *tmr_of(amb__wheel_entry *e)
{
    return (struct tmr *)e;
}

/* splitmix64: a small deterministic generator, so failures replay. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return n == 0 ? 0 : rng_next(s) % n;
}

/* The firing log the callbacks append to. */
struct log {
    amb__wheel *w;
    uint32_t *ids;
    size_t n, cap;
    size_t early; /* fired while the wheel's time was before the deadline */
};

static void log_fire(void *ctx, amb__wheel_entry *e)
{
    struct log *lg = ctx;
    struct tmr *t = tmr_of(e);

    assert_false(amb__wheel_pending(e));
    t->fired_at = amb__wheel_now(lg->w);
    t->fired++;
    if (t->fired_at < amb__wheel_deadline(e))
        lg->early++;
    if (lg->n < lg->cap)
        lg->ids[lg->n] = t->id;
    lg->n++;
}

static void log_init(struct log *lg, amb__wheel *w, size_t cap)
{
    lg->w = w;
    lg->cap = cap;
    lg->n = 0;
    lg->early = 0;
    lg->ids = cap ? amb__calloc(cap, sizeof *lg->ids) : NULL;
    if (cap)
        assert_non_null(lg->ids);
}

static void log_free(struct log *lg)
{
    amb__free(lg->ids);
}

/* ---- basics ---- */

AMB_TEST(wheel_fires_on_its_tick)
{
    static amb__wheel w;
    struct tmr t[4] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}};
    struct log lg;

    amb__wheel_init(&w, 1000);
    log_init(&lg, &w, 16);
    assert_int_equal(amb__wheel_next_deadline(&w), UINT64_MAX);

    amb__wheel_arm(&w, &t[0].e, 1005);
    amb__wheel_arm(&w, &t[1].e, 1001);
    amb__wheel_arm(&w, &t[2].e, 1100); /* level 1 */
    amb__wheel_arm(&w, &t[3].e, 1005);
    assert_int_equal(amb__wheel_count(&w), 4);
    assert_int_equal(amb__wheel_next_deadline(&w), 1001);
    assert_int_equal(amb__wheel_remaining(&t[2].e, 1000), 100);
    assert_int_equal(amb__wheel_remaining(&t[2].e, 1200), 0);

    assert_int_equal(amb__wheel_advance(&w, 1000, log_fire, &lg), 0);
    assert_int_equal(amb__wheel_advance(&w, 1004, log_fire, &lg), 1);
    assert_int_equal(t[1].fired_at, 1001);
    assert_int_equal(amb__wheel_next_deadline(&w), 1005);
    assert_int_equal(amb__wheel_advance(&w, 1099, log_fire, &lg), 2);
    /* Equal deadlines fire in arm order. */
    assert_int_equal(lg.ids[1], 0);
    assert_int_equal(lg.ids[2], 3);
    assert_int_equal(amb__wheel_next_deadline(&w), 1100);
    assert_int_equal(amb__wheel_advance(&w, 5000, log_fire, &lg), 1);
    assert_int_equal(t[2].fired_at, 1100);
    assert_int_equal(amb__wheel_now(&w), 5000);
    assert_int_equal(amb__wheel_count(&w), 0);
    assert_int_equal(lg.early, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(t[i].fired, 1);
    log_free(&lg);
}

AMB_TEST(wheel_cancel_and_rearm)
{
    static amb__wheel w;
    struct tmr a = {.id = 1}, b = {.id = 2};
    struct log lg;

    amb__wheel_init(&w, 0);
    log_init(&lg, &w, 8);

    /* A zero-filled entry is idle; cancelling it is a no-op. So is an
     * entry made idle by amb__wheel_entry_init. */
    amb__wheel_entry_init(&b.e);
    assert_false(amb__wheel_pending(&b.e));
    assert_false(amb__wheel_pending(&a.e));
    assert_false(amb__wheel_cancel(&w, &a.e));

    amb__wheel_arm(&w, &a.e, 50);
    amb__wheel_arm(&w, &b.e, 5000);
    assert_true(amb__wheel_cancel(&w, &a.e));
    assert_false(amb__wheel_cancel(&w, &a.e));
    assert_int_equal(amb__wheel_count(&w), 1);
    assert_int_equal(amb__wheel_next_deadline(&w), 5000);

    /* Re-arming a pending entry moves it; the count does not change. */
    amb__wheel_arm(&w, &b.e, 70);
    assert_int_equal(amb__wheel_count(&w), 1);
    assert_int_equal(amb__wheel_next_deadline(&w), 70);
    assert_int_equal(amb__wheel_advance(&w, 10000, log_fire, &lg), 1);
    assert_int_equal(b.fired_at, 70);
    assert_int_equal(a.fired, 0);

    /* A fired entry is idle and can be armed again. */
    assert_false(amb__wheel_cancel(&w, &b.e));
    amb__wheel_arm(&w, &b.e, 10001);
    assert_int_equal(amb__wheel_advance(&w, 10001, log_fire, &lg), 1);
    assert_int_equal(b.fired, 2);
    log_free(&lg);
}

AMB_TEST(wheel_past_deadlines_fire_at_next_advance)
{
    static amb__wheel w;
    struct tmr t[3] = {{.id = 0}, {.id = 1}, {.id = 2}};
    struct log lg;

    amb__wheel_init(&w, 500);
    log_init(&lg, &w, 8);
    amb__wheel_arm(&w, &t[0].e, 400);
    amb__wheel_arm(&w, &t[1].e, 500); /* exactly now counts as past */
    amb__wheel_arm(&w, &t[2].e, 0);
    assert_int_equal(amb__wheel_next_deadline(&w), 500);

    /* An advance that does not move time still fires them, in arm order,
     * with the wheel's time at arming as their firing time. */
    assert_int_equal(amb__wheel_advance(&w, 500, log_fire, &lg), 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(lg.ids[i], i);
        assert_int_equal(t[i].fired_at, 500);
    }

    /* Time never goes back: an earlier now is the wheel's now. */
    amb__wheel_arm(&w, &t[0].e, 501);
    assert_int_equal(amb__wheel_advance(&w, 100, log_fire, &lg), 0);
    assert_int_equal(amb__wheel_now(&w), 500);
    assert_int_equal(amb__wheel_advance(&w, 501, log_fire, &lg), 1);
    log_free(&lg);
}

/* ---- level boundaries ---- */

/* Arms one entry at `now + delta` and checks it fires neither one tick
 * early nor late, whether the wheel is driven in one jump or through
 * next_deadline. */
static void check_one(uint64_t now, uint64_t delta)
{
    static amb__wheel w;
    struct tmr t = {.id = 7};
    struct log lg;
    uint64_t d = now + delta;

    amb__wheel_init(&w, now);
    log_init(&lg, &w, 2);
    amb__wheel_arm(&w, &t.e, d);
    assert_int_equal(amb__wheel_next_deadline(&w), d);
    assert_int_equal(amb__wheel_advance(&w, d - 1, log_fire, &lg), 0);
    assert_true(amb__wheel_pending(&t.e));
    /* Cascading on the way must not change what next_deadline says. */
    assert_int_equal(amb__wheel_next_deadline(&w), d);
    assert_int_equal(amb__wheel_advance(&w, d, log_fire, &lg), 1);
    assert_int_equal(t.fired_at, d);

    /* Same entry, one big jump well past the deadline. */
    amb__wheel_init(&w, now);
    amb__wheel_arm(&w, &t.e, d);
    assert_int_equal(amb__wheel_advance(&w, d + 3 * TOP_SPAN, log_fire, &lg), 1);
    assert_int_equal(t.fired_at, d);
    assert_int_equal(lg.early, 0);
    log_free(&lg);
}

AMB_TEST(wheel_cascades_at_every_level_boundary)
{
    /* Start times: aligned to every level, and one tick either side of an
     * alignment, since the placement depends on now's digits. */
    uint64_t starts[] = {0,
                         1,
                         63,
                         64,
                         65,
                         4095,
                         4096,
                         LEVEL_SPAN(3) - 1,
                         LEVEL_SPAN(4) + 17,
                         LEVEL_SPAN(5) * 3 - 1,
                         TOP_SPAN - 1,
                         TOP_SPAN,
                         TOP_SPAN * 5 - 64,
                         (uint64_t)1 << 50};
    size_t checked = 0;

    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        uint64_t now = starts[i];
        for (unsigned l = 0; l <= AMB__WHEEL_LEVELS; l++) {
            uint64_t span = LEVEL_SPAN(l);
            /* Deltas around this level's span, and around the distance to
             * now's next alignment at this level. */
            uint64_t to_align = span - (now & (span - 1));
            uint64_t deltas[] = {span - 1,    span,         span + 1,
                                 to_align,    to_align + 1, to_align + span - 1,
                                 2 * span + 3};
            for (size_t k = 0; k < sizeof deltas / sizeof deltas[0]; k++) {
                if (deltas[k] == 0)
                    continue;
                check_one(now, deltas[k]);
                checked++;
            }
        }
    }
    assert_true(checked > 500);
}

AMB_TEST(wheel_long_deadlines)
{
    static amb__wheel w;
    static struct tmr t[6];
    struct log lg;
    const uint64_t day = 86400000u;
    uint64_t now = 1700000000000u; /* a wall-clock-sized ms value */
    /* In deadline order; TOP_SPAN is about 795 days. */
    uint64_t deltas[6] = {3 * day,      30 * day,  400 * day,
                          TOP_SPAN + 5, 800 * day, 3650 * day};

    amb__wheel_init(&w, now);
    log_init(&lg, &w, 8);
    for (uint32_t i = 0; i < 6; i++) {
        t[i].id = i;
        amb__wheel_arm(&w, &t[i].e, now + deltas[i]);
    }
    assert_int_equal(amb__wheel_remaining(&t[5].e, now), 3650 * day);

    /* Drive the wheel by its own next_deadline, as an idle scheduler would;
     * there are no cancellations, so each wake-up fires one entry. */
    for (uint32_t i = 0; i < 6; i++) {
        uint64_t next = amb__wheel_next_deadline(&w);
        assert_int_equal(next, now + deltas[i]);
        assert_int_equal(amb__wheel_advance(&w, next, log_fire, &lg), 1);
        assert_int_equal(t[i].fired_at, now + deltas[i]);
    }
    assert_int_equal(amb__wheel_next_deadline(&w), UINT64_MAX);

    /* A deadline at the very end of time stays pending and harmless. */
    amb__wheel_arm(&w, &t[0].e, UINT64_MAX);
    assert_int_equal(amb__wheel_advance(&w, now + 20000 * day, log_fire, &lg), 0);
    assert_int_equal(amb__wheel_next_deadline(&w), UINT64_MAX);
    assert_true(amb__wheel_cancel(&w, &t[0].e));
    log_free(&lg);
}

/* Deadlines anywhere up to the end of time: the overflow list jumps to the
 * block of its earliest entry instead of visiting every 2^36 ms boundary
 * (2^28 of them up to UINT64_MAX, each re-placing the whole list: before,
 * this advance did not end). Each fires on its own tick, in order. */
AMB_TEST(wheel_overflow_reaches_any_deadline)
{
    static amb__wheel w;
    static struct tmr t[1000];
    struct log lg;
    uint64_t seed = 13;
    uint64_t now = 5;

    amb__wheel_init(&w, now);
    log_init(&lg, &w, 1000);
    for (uint32_t i = 0; i < 1000; i++) {
        /* Spread over the whole range, some sharing a 2^36 block, the last
         * one on the last tick an advance can reach. */
        uint64_t d = i == 999 ? UINT64_MAX - 1
                              : TOP_SPAN + rng_below(&seed, UINT64_MAX / 1000) * (i + 1);
        t[i].id = i;
        amb__wheel_arm(&w, &t[i].e, d);
    }
    /* Driven by next_deadline, as an idle scheduler would be. */
    uint64_t last = 0;
    size_t fired = 0;
    while (amb__wheel_count(&w) != 0) {
        uint64_t next = amb__wheel_next_deadline(&w);
        assert_true(next >= last);
        fired += amb__wheel_advance(&w, next, log_fire, &lg);
        last = next;
    }
    assert_int_equal(fired, 1000);
    assert_int_equal(lg.early, 0);
    for (uint32_t i = 0; i < 1000; i++) {
        assert_int_equal(t[i].fired, 1);
        assert_int_equal(t[i].fired_at, amb__wheel_deadline(&t[i].e));
    }
    /* And in one flush from the start, as amb__timer_term does. */
    amb__wheel_init(&w, now);
    for (uint32_t i = 0; i < 1000; i++)
        amb__wheel_arm(&w, &t[i].e, amb__wheel_deadline(&t[i].e));
    assert_int_equal(amb__wheel_advance(&w, UINT64_MAX - 1, log_fire, &lg), 1000);
    assert_int_equal(amb__wheel_count(&w), 0);
    log_free(&lg);
}

/* ---- arrival numbers in a level-0 slot ---- */

AMB_TEST(wheel_equal_deadlines_keep_arm_order_through_cancels)
{
    enum { N = 64 };
    static amb__wheel w;
    static struct tmr t[N];
    struct log lg;
    uint64_t seed = 5;

    /* A low renumbering limit (white-box) so the slot is renumbered many
     * times while ~20 entries stay in it and others come and go. */
    for (int limit_case = 0; limit_case < 2; limit_case++) {
        amb__wheel_init(&w, 0);
        if (limit_case == 1)
            w.pos_limit = 40;
        log_init(&lg, &w, N);
        bool armed[N] = {false};
        uint64_t order[N]; /* arm sequence of each live entry */
        uint64_t seq = 0;

        /* Everything at deadline 40 (level 0) or 200 (level 1, cascaded
         * into level 0 later), armed, re-armed and cancelled at random. */
        for (int op = 0; op < 2000; op++) {
            uint32_t i = (uint32_t)rng_below(&seed, N);
            t[i].id = i;
            if (rng_below(&seed, 3) == 0) {
                assert_int_equal(amb__wheel_cancel(&w, &t[i].e), armed[i]);
                armed[i] = false;
            } else {
                amb__wheel_arm(&w, &t[i].e, (i & 1) ? 40 : 200);
                armed[i] = true;
                order[i] = seq++;
            }
        }
        size_t live = amb__wheel_count(&w);
        assert_int_equal(amb__wheel_advance(&w, 1000, log_fire, &lg), live);

        /* Within each deadline, firing order is arm order. */
        uint64_t last[2] = {0, 0};
        bool seen[2] = {false, false};
        for (size_t k = 0; k < lg.n; k++) {
            uint32_t id = lg.ids[k];
            int g = (int)(id & 1);
            assert_true(armed[id]);
            if (seen[g])
                assert_true(order[id] > last[g]);
            last[g] = order[id];
            seen[g] = true;
            assert_int_equal(t[id].fired_at, (id & 1) ? 40 : 200);
        }
        log_free(&lg);
    }
}

/* ---- callbacks that touch the wheel ---- */

struct reentry {
    amb__wheel *w;
    struct tmr *periodic;
    struct tmr *victim;
    struct tmr *late;
    int periodic_fired;
    bool victim_cancelled;
    bool late_armed;
    int other_fired;
};

static void reentrant_fire(void *ctx, amb__wheel_entry *e)
{
    struct reentry *r = ctx;
    struct tmr *t = tmr_of(e);
    uint64_t now = amb__wheel_now(r->w);

    t->fired_at = now;
    t->fired++;
    if (t == r->periodic) {
        /* Re-arm from the callback, every 10 ms. */
        r->periodic_fired++;
        if (r->periodic_fired < 100)
            amb__wheel_arm(r->w, e, now + 10);
        if (now == 490) {
            /* Armed after the periodic entry's re-arm to the same tick, so
             * it will fire after it. */
            amb__wheel_arm(r->w, &r->victim->e, 500);
        }
        if (now == 500) {
            /* The victim shares this tick and has not fired yet: cancel. */
            r->victim_cancelled = amb__wheel_cancel(r->w, &r->victim->e);
            /* Armed "now" from a callback: waits for the next advance. */
            amb__wheel_arm(r->w, &r->late->e, now);
            r->late_armed = true;
        }
        return;
    }
    r->other_fired++;
}

AMB_TEST(wheel_callbacks_may_rearm_and_cancel)
{
    static amb__wheel w;
    struct tmr periodic = {.id = 1}, victim = {.id = 2}, late = {.id = 3};
    struct reentry r = {.w = &w, .periodic = &periodic, .victim = &victim, .late = &late};

    amb__wheel_init(&w, 0);
    amb__wheel_arm(&w, &periodic.e, 10);

    /* One advance runs the whole chain of re-arms that fall inside it. */
    size_t n = amb__wheel_advance(&w, 1000, reentrant_fire, &r);
    assert_int_equal(r.periodic_fired, 100);
    assert_int_equal(periodic.fired_at, 1000);
    assert_true(r.victim_cancelled);
    assert_int_equal(victim.fired, 0);
    assert_true(r.late_armed);
    assert_int_equal(late.fired, 0);
    assert_int_equal(n, 100);

    assert_int_equal(amb__wheel_next_deadline(&w), 1000);
    assert_int_equal(amb__wheel_advance(&w, 1000, reentrant_fire, &r), 1);
    assert_int_equal(late.fired, 1);
    assert_int_equal(late.fired_at, 1000);
    assert_int_equal(amb__wheel_count(&w), 0);
}

/* ---- next_deadline ---- */

AMB_TEST(wheel_next_deadline_is_exact_without_cancels)
{
    enum { N = 2000 };
    static amb__wheel w;
    static struct tmr t[N];
    struct log lg;
    uint64_t seed = 42, now = TOP_SPAN - 100000, min = UINT64_MAX;

    amb__wheel_init(&w, now);
    log_init(&lg, &w, 0);
    for (uint32_t i = 0; i < N; i++) {
        /* Spread over every level: a random number of random bits. */
        uint64_t bits = 1 + rng_below(&seed, 40);
        uint64_t d = now + 1 + rng_below(&seed, (uint64_t)1 << bits);
        t[i].id = i;
        amb__wheel_arm(&w, &t[i].e, d);
        if (d < min)
            min = d;
    }
    assert_int_equal(amb__wheel_next_deadline(&w), min);

    /* Each advance to next_deadline must fire something, at that time. */
    size_t wakeups = 0, fired = 0;
    for (;;) {
        uint64_t next = amb__wheel_next_deadline(&w);
        if (next == UINT64_MAX)
            break;
        size_t k = amb__wheel_advance(&w, next, log_fire, &lg);
        assert_true(k > 0);
        fired += k;
        wakeups++;
    }
    assert_int_equal(fired, N);
    assert_int_equal(lg.early, 0);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(t[i].fired_at, amb__wheel_deadline(&t[i].e));
    assert_true(wakeups <= N);
    log_free(&lg);
}

AMB_TEST(wheel_next_deadline_is_a_lower_bound_with_cancels)
{
    enum { N = 2000 };
    static amb__wheel w;
    static struct tmr t[N];
    struct log lg;
    uint64_t seed = 7, now = 123456;

    amb__wheel_init(&w, now);
    log_init(&lg, &w, 0);
    for (uint32_t i = 0; i < N; i++) {
        uint64_t bits = 1 + rng_below(&seed, 30);
        t[i].id = i;
        amb__wheel_arm(&w, &t[i].e, now + 1 + rng_below(&seed, (uint64_t)1 << bits));
    }
    for (int round = 0; amb__wheel_count(&w) > 0; round++) {
        /* Cancel a few, including the earliest now and then. */
        for (int k = 0; k < 3; k++)
            amb__wheel_cancel(&w, &t[rng_below(&seed, N)].e);
        uint64_t min = UINT64_MAX;
        for (uint32_t i = 0; i < N; i++)
            if (amb__wheel_pending(&t[i].e) && amb__wheel_deadline(&t[i].e) < min)
                min = amb__wheel_deadline(&t[i].e);
        uint64_t next = amb__wheel_next_deadline(&w);
        assert_true(next <= min);
        assert_true(next >= amb__wheel_now(&w));
        /* Advancing to just before it fires nothing. */
        if (next > amb__wheel_now(&w))
            assert_int_equal(amb__wheel_advance(&w, next - 1, log_fire, &lg), 0);
        amb__wheel_advance(&w, next, log_fire, &lg);
        assert_true(round < 4 * N);
    }
    assert_int_equal(lg.early, 0);
    assert_int_equal(amb__wheel_next_deadline(&w), UINT64_MAX);
    log_free(&lg);
}

/* ---- against a reference model ---- */

/* The model: per timer, whether it is pending, and its key: the time at
 * which it must fire (the deadline, or the wheel's time at arming when the
 * deadline was already past), plus the arm sequence number that orders
 * equal keys. An advance to t must fire exactly the pending timers with
 * key <= t, sorted by (key, seq). */
struct model {
    bool pending;
    uint64_t key;
    uint64_t seq;
};

static struct model *sort_base;

static int by_key_seq(const void *a, const void *b)
{
    const struct model *x = &sort_base[*(const uint32_t *)a];
    const struct model *y = &sort_base[*(const uint32_t *)b];
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static uint64_t random_deadline(uint64_t *seed, uint64_t now)
{
    switch (rng_below(seed, 10)) {
    case 0: /* the past, or exactly now */
        return now - rng_below(seed, now < 100 ? now + 1 : 100);
    case 1: /* on a level boundary of now, give or take one */
    {
        unsigned l = 1 + (unsigned)rng_below(seed, AMB__WHEEL_LEVELS);
        uint64_t span = LEVEL_SPAN(l);
        uint64_t base = (now | (span - 1)) + 1;
        return base + rng_below(seed, 3) - 1 + span * rng_below(seed, 2);
    }
    case 2: /* far: every level and the overflow list */
        return now + 1 + rng_below(seed, (uint64_t)1 << (1 + rng_below(seed, 40)));
    case 3:
    case 4:
        return now + 1 + rng_below(seed, 5000);
    default:
        return now + 1 + rng_below(seed, 200);
    }
}

static uint64_t random_step(uint64_t *seed)
{
    switch (rng_below(seed, 20)) {
    case 0:
        return 0;
    case 1: /* a long sleep, sometimes across the overflow boundary */
        return rng_below(seed, (uint64_t)1 << (1 + rng_below(seed, 38)));
    case 2:
    case 3:
        return rng_below(seed, 10000);
    default:
        return rng_below(seed, 100);
    }
}

static void run_model(uint64_t seed0, uint64_t start, uint32_t ops)
{
    /* Few enough timers that a good share is pending at any time. */
    enum { N = 256 };
    uint64_t seed = seed0;
    static amb__wheel w;
    static struct tmr t[N];
    static struct model m[N];
    static uint32_t expect[N];
    struct log lg;
    uint64_t seq = 0;
    size_t total_fired = 0, total_cancelled = 0;

    memset(t, 0, sizeof t);
    memset(m, 0, sizeof m);
    amb__wheel_init(&w, start);
    log_init(&lg, &w, N);
    for (uint32_t i = 0; i < N; i++)
        t[i].id = i;

    for (uint32_t op = 0; op < ops; op++) {
        uint32_t i = (uint32_t)rng_below(&seed, N);
        uint64_t now = amb__wheel_now(&w);
        uint64_t r = rng_below(&seed, 100);

        /* Cancels aim at pending timers most of the time. */
        for (int tries = 0; r >= 50 && r < 70 && !m[i].pending && tries < 8; tries++)
            i = (uint32_t)rng_below(&seed, N);

        if (r < 50) { /* arm, or re-arm if pending */
            uint64_t d = random_deadline(&seed, now);
            amb__wheel_arm(&w, &t[i].e, d);
            m[i] =
                (struct model){.pending = true, .key = d > now ? d : now, .seq = seq++};
        } else if (r < 70) {
            bool was = amb__wheel_cancel(&w, &t[i].e);
            if (was != m[i].pending)
                fail_msg("op %u: cancel of %u returned %d, model says %d", op, i, was,
                         m[i].pending);
            total_cancelled += was;
            m[i].pending = false;
        } else {
            uint64_t to = now + random_step(&seed);
            if (rng_below(&seed, 50) == 0)
                to = now - rng_below(&seed, 10); /* time going back is ignored */
            uint64_t eff = to > now ? to : now;

            size_t ne = 0;
            for (uint32_t k = 0; k < N; k++)
                if (m[k].pending && m[k].key <= eff)
                    expect[ne++] = k;
            sort_base = m;
            qsort(expect, ne, sizeof expect[0], by_key_seq);

            lg.n = 0;
            size_t got = amb__wheel_advance(&w, to, log_fire, &lg);
            if (got != ne || lg.n != ne)
                fail_msg("op %u: advance %llu -> %llu fired %zu, model says %zu", op,
                         (unsigned long long)now, (unsigned long long)to, got, ne);
            for (size_t k = 0; k < ne; k++) {
                uint32_t id = expect[k];
                if (lg.ids[k] != id)
                    fail_msg("op %u: firing #%zu was %u, model says %u", op, k, lg.ids[k],
                             id);
                if (t[id].fired_at != m[id].key)
                    fail_msg("op %u: %u fired at %llu, key %llu", op, id,
                             (unsigned long long)t[id].fired_at,
                             (unsigned long long)m[id].key);
                m[id].pending = false;
            }
            total_fired += ne;
            assert_int_equal(amb__wheel_now(&w), eff);
        }

        /* After every operation: counts, pending flags, next_deadline. */
        size_t pending = 0;
        uint64_t min = UINT64_MAX;
        for (uint32_t k = 0; k < N; k++) {
            if (amb__wheel_pending(&t[k].e) != m[k].pending)
                fail_msg("op %u: %u pending=%d, model says %d", op, k,
                         amb__wheel_pending(&t[k].e), m[k].pending);
            if (m[k].pending) {
                pending++;
                if (m[k].key < min)
                    min = m[k].key;
            }
        }
        assert_int_equal(amb__wheel_count(&w), pending);
        uint64_t next = amb__wheel_next_deadline(&w);
        if (next > min || (pending > 0 && next < amb__wheel_now(&w)))
            fail_msg("op %u: next_deadline %llu, earliest %llu, now %llu", op,
                     (unsigned long long)next, (unsigned long long)min,
                     (unsigned long long)amb__wheel_now(&w));
    }
    print_message("seed %llu: %zu fired, %zu cancelled\n", (unsigned long long)seed0,
                  total_fired, total_cancelled);
    assert_int_equal(lg.early, 0);
    assert_true(total_fired > ops / 20);
    assert_true(total_cancelled > ops / 20);
    log_free(&lg);
}

AMB_TEST(wheel_matches_reference_model)
{
    /* 100k operations from three starting times: zero, just below the
     * first overflow boundary (2^36 ms) so long sleeps cross it, and a
     * wall-clock-sized value. */
    run_model(1, 0, 34000);
    run_model(2, TOP_SPAN - 3000, 33000);
    run_model(3, 1700000000000u, 33000);
}

/* ---- a million ---- */

struct million {
    amb__wheel *w;
    uint64_t prev_advance; /* the time of the advance before this one */
    uint64_t this_advance;
    size_t fired, too_early, too_late, twice;
    uint8_t *seen;
    struct tmr *base;
};

static void million_fire(void *ctx, amb__wheel_entry *e)
{
    struct million *m = ctx;
    struct tmr *t = tmr_of(e);
    uint64_t d = amb__wheel_deadline(e);

    /* No earlier than its deadline, and in the first advance that passes
     * it (so at most one tick after that advance's time). */
    if (d > m->this_advance || amb__wheel_now(m->w) != d)
        m->too_early++;
    if (d <= m->prev_advance)
        m->too_late++;
    if (m->seen[t - m->base]++)
        m->twice++;
    m->fired++;
}

AMB_TEST(wheel_million_entries_all_fire_on_time)
{
    enum { N = 1000000 };
    static amb__wheel w;
    struct tmr *t = amb__calloc(N, sizeof *t);
    uint8_t *seen = amb__calloc(N, 1);
    uint64_t seed = 99, start = 5000000;
    struct million m = {.w = &w, .seen = seen, .base = t};

    assert_non_null(t);
    assert_non_null(seen);
    amb__wheel_init(&w, start);
    for (uint32_t i = 0; i < N; i++)
        amb__wheel_arm(&w, &t[i].e, start + 1 + rng_below(&seed, 100));
    assert_int_equal(amb__wheel_count(&w), N);

    m.prev_advance = start;
    uint64_t now = start;
    while (amb__wheel_count(&w) > 0) {
        now += 1 + rng_below(&seed, 7);
        m.this_advance = now;
        amb__wheel_advance(&w, now, million_fire, &m);
        m.prev_advance = now;
        assert_true(now < start + 200);
    }
    assert_int_equal(m.fired, N);
    assert_int_equal(m.too_early, 0);
    assert_int_equal(m.too_late, 0);
    assert_int_equal(m.twice, 0);
    amb__free(seen);
    amb__free(t);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(wheel_fires_on_its_tick),
              AMB_TEST_ENTRY(wheel_cancel_and_rearm),
              AMB_TEST_ENTRY(wheel_past_deadlines_fire_at_next_advance),
              AMB_TEST_ENTRY(wheel_cascades_at_every_level_boundary),
              AMB_TEST_ENTRY(wheel_long_deadlines),
              AMB_TEST_ENTRY(wheel_overflow_reaches_any_deadline),
              AMB_TEST_ENTRY(wheel_equal_deadlines_keep_arm_order_through_cancels),
              AMB_TEST_ENTRY(wheel_callbacks_may_rearm_and_cancel),
              AMB_TEST_ENTRY(wheel_next_deadline_is_exact_without_cancels),
              AMB_TEST_ENTRY(wheel_next_deadline_is_a_lower_bound_with_cancels),
              AMB_TEST_ENTRY(wheel_matches_reference_model),
              AMB_TEST_ENTRY(wheel_million_entries_all_fire_on_time))

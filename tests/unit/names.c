/*
 * tests/unit/names.c - registered names (include/ambitious/process.h,
 * "Registered names"): amb_register, amb_unregister, amb_whereis,
 * amb_registered, amb_send to a name and amb_spawn_opt's name.
 *
 * What is proved: a name maps to its process until it is unregistered or
 * the process ends, and then it can be registered again; a taken name and a
 * process that already has a name are AMB_EEXIST; a dead pid is
 * AMB_ENOPROC; bad names and non-pids are AMB_EBADARG; spawning under a
 * taken name spawns nothing; sends by name arrive in order; ten thousand
 * names come and go; and a registration racing with the process's exit
 * never leaves a name behind for a dead process.
 *
 * The harness below is explained in tests/unit/process.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "amb_test_rt.h"

/* A process that waits for 'stop' (or DEADLINE_MS). */
static void waits_for_stop(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term t = RECV_WITHIN(self, 60000);
    CHECK(self, t == AMB_ATOM_STOP);
}

static void returns_at_once(amb_proc *self, void *arg)
{
    (void)self;
    if (arg != NULL)
        atomic_fetch_add((atomic_int *)arg, 1);
}

/* The number of elements of a proper list, or -1. */
static long list_len(amb_term l)
{
    size_t n;
    return amb_list_length(l, &n) == 0 ? (long)n : -1;
}

/* How many names are registered. Resets the caller's heap (the list
 * lands there): only for loops that hold no other terms. */
static long registered_count(amb_proc *self)
{
    long n = list_len(amb_registered(self));
    amb_heap_reset(amb_proc_heap(self));
    return n;
}

static bool list_has(amb_term l, amb_term x)
{
    for (; amb_is_cons(l); l = amb_list_tail(l))
        if (amb_list_head(l) == x)
            return true;
    return false;
}

static void basics_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self), other, found = AMB_NONE;
    amb_term a = amb_atom("names_a"), b = amb_atom("names_b");
    CHECK_OK(self, amb_spawn(self, waits_for_stop, NULL, &other));

    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, a, &found));
    CHECK(self, list_len(amb_registered(self)) == 0);
    CHECK_OK(self, amb_register(self, a, me));
    CHECK_OK(self, amb_register(self, b, other));
    CHECK_OK(self, amb_whereis(self, a, &found));
    CHECK(self, found == me);
    CHECK_OK(self, amb_whereis(self, b, &found));
    CHECK(self, found == other);
    amb_term reg = amb_registered(self);
    CHECK_EQ(self, list_len(reg), 2);
    CHECK(self, list_has(reg, a) && list_has(reg, b));

    /* Taken name; a process with a name already. */
    CHECK_RC(self, AMB_EEXIST, amb_register(self, a, other));
    CHECK_RC(self, AMB_EEXIST, amb_register(self, amb_atom("names_c"), me));
    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, amb_atom("names_c"), &found));

    /* Messages by name. */
    CHECK_OK(self, amb_send(self, a, mk_int(1)));
    CHECK_OK(self, amb_send(self, a, mk_int(2)));
    CHECK_EQ(self, int_of(RECV(self)), 1);
    CHECK_EQ(self, int_of(RECV(self)), 2);

    /* Unregister: the name is free, the process may take another. */
    CHECK_OK(self, amb_unregister(self, a));
    CHECK_RC(self, AMB_ENOTFOUND, amb_unregister(self, a));
    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, a, &found));
    CHECK_RC(self, AMB_EBADARG, amb_send(self, a, mk_int(3)));
    CHECK_OK(self, amb_register(self, amb_atom("names_c"), me));
    /* Unregistering another process's name frees that process too. */
    CHECK_OK(self, amb_unregister(self, b));
    CHECK_OK(self, amb_register(self, a, other));
    CHECK_OK(self, amb_whereis(self, a, &found));
    CHECK(self, found == other);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, other, &pi));
    CHECK(self, pi.registered_name == a);
    reg = amb_registered(self);
    CHECK_EQ(self, list_len(reg), 2);
    CHECK(self, list_has(reg, a) && list_has(reg, amb_atom("names_c")));
    CHECK_OK(self, amb_send(self, other, AMB_ATOM_STOP));
}

AMB_TEST(register_whereis_unregister_and_registered)
{
    run_in(1, basics_main, NULL);
    run_in(2, basics_main, NULL);
}

static void bad_names_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self), found;
    amb_heap *h = amb_proc_heap(self);
    CHECK_RC(self, AMB_EBADARG, amb_register(self, AMB_ATOM_UNDEFINED, me));
    CHECK_RC(self, AMB_EBADARG, amb_register(self, mk_int(1), me));
    CHECK_RC(self, AMB_EBADARG, amb_register(self, amb_string(h, "name"), me));
    CHECK_RC(self, AMB_EBADARG, amb_register(self, AMB_NONE, me));
    CHECK_RC(self, AMB_EBADARG, amb_unregister(self, mk_int(1)));
    CHECK_RC(self, AMB_EBADARG, amb_whereis(self, mk_int(1), &found));
    CHECK_RC(self, AMB_EBADARG, amb_send(self, mk_int(1), AMB_ATOM_OK));
    CHECK_RC(self, AMB_EBADARG, amb_send(self, amb_atom("names_nobody"), AMB_ATOM_OK));
    CHECK_RC(self, AMB_ENOTFOUND, amb_unregister(self, amb_atom("names_nobody")));
    CHECK(self, list_len(amb_registered(self)) == 0);
    /* The failed calls registered nothing: the process may still take one. */
    CHECK_OK(self, amb_register(self, amb_atom("names_ok"), me));
}

AMB_TEST(bad_names_are_ebadarg_and_unknown_names_enotfound)
{
    run_in(1, bad_names_main, NULL);
}

static void non_pid_main(amb_proc *self, void *arg)
{
    (void)arg;
    /* Erlang: register(name, 42) is badarg, not noproc. */
    CHECK_RC(self, AMB_EBADARG, amb_register(self, amb_atom("names_np"), mk_int(42)));
    CHECK_RC(self, AMB_EBADARG, amb_register(self, amb_atom("names_np"), AMB_ATOM_OK));
}

AMB_TEST(register_of_a_term_that_is_not_a_pid_is_ebadarg)
{
    run_in(1, non_pid_main, NULL);
}

static void dead_pid_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid p, found;
    CHECK_OK(self, amb_spawn(self, returns_at_once, NULL, &p));
    WAIT_UNTIL(self, !amb_is_process_alive(self, p));
    CHECK_RC(self, AMB_ENOPROC, amb_register(self, amb_atom("names_dead"), p));
    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, amb_atom("names_dead"), &found));
}

AMB_TEST(register_of_a_dead_pid_is_enoproc)
{
    run_in(1, dead_pid_main, NULL);
    run_in(2, dead_pid_main, NULL);
}

static void goes_away_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term name = amb_atom("names_goes_away");
    amb_pid found;
    for (int i = 0; i < 100; i++) {
        amb_pid p;
        CHECK_OK(self, amb_spawn(self, waits_for_stop, NULL, &p));
        /* Re-registered each round: the name was freed when p ended. */
        CHECK_OK(self, amb_register(self, name, p));
        CHECK_OK(self, amb_whereis(self, name, &found));
        CHECK(self, found == p);
        CHECK_OK(self, amb_send(self, name, AMB_ATOM_STOP));
        WAIT_UNTIL(self, !amb_is_process_alive(self, p));
        CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, name, &found));
        CHECK_RC(self, AMB_EBADARG, amb_send(self, name, AMB_ATOM_OK));
        CHECK(self, !list_has(amb_registered(self), name));
    }
}

AMB_TEST(the_name_goes_away_when_its_process_ends)
{
    run_in(1, goes_away_main, NULL);
    run_in(2, goes_away_main, NULL);
}

static int die_on_anything(amb_proc *self, void *state, amb_term msg)
{
    (void)state;
    (void)msg;
    amb_exit_self(self, AMB_ATOM_NORMAL);
}

static const amb_handler dies = {0, NULL, die_on_anything};

static void spawn_name_main(amb_proc *self, void *arg)
{
    atomic_int *ran = arg;
    amb_term name = amb_atom("names_spawned");
    amb_pid p = AMB_NONE, q = AMB_NONE, found;
    amb_spawn_opts opts = {.name = name};
    CHECK_OK(self, amb_spawn_opt(self, waits_for_stop, NULL, &opts, &p, NULL));
    CHECK_OK(self, amb_whereis(self, name, &found));
    CHECK(self, found == p);
    /* The name is taken: nothing is spawned, nothing runs. */
    CHECK_RC(self, AMB_EEXIST,
             amb_spawn_opt(self, returns_at_once, ran, &opts, &q, NULL));
    CHECK(self, q == AMB_NONE);
    amb_spawn_opts hopts = {.handler = &dies, .name = name};
    CHECK_RC(self, AMB_EEXIST, amb_spawn_opt(self, NULL, NULL, &hopts, &q, NULL));
    CHECK_OK(self, amb_send(self, name, AMB_ATOM_STOP));
    WAIT_UNTIL(self, !amb_is_process_alive(self, p));
    /* Now a handler takes it, and loses it when it ends. */
    CHECK_OK(self, amb_spawn_opt(self, NULL, NULL, &hopts, &q, NULL));
    CHECK_OK(self, amb_whereis(self, name, &found));
    CHECK(self, found == q);
    CHECK_OK(self, amb_send(self, name, AMB_ATOM_OK));
    WAIT_UNTIL(self, !amb_is_process_alive(self, q));
    CHECK_RC(self, AMB_ENOTFOUND, amb_whereis(self, name, &found));
}

AMB_TEST(spawn_opt_name_registers_and_a_taken_name_spawns_nothing)
{
    for (unsigned n = 1; n <= 2; n++) {
        atomic_int ran = 0;
        run_in(n, spawn_name_main, &ran);
        assert_int_equal(atomic_load(&ran), 0);
    }
}

#define NAMED_SENDERS 3
#define NAMED_MSGS    (20000 / SLOW)

static void named_sender(amb_proc *self, void *arg)
{
    (void)arg;
    int64_t k = int_of(RECV(self));
    for (int64_t i = 0; i < NAMED_MSGS; i++)
        CHECK_OK(self, amb_send(self, amb_atom("names_sink"), mk_int(k << 32 | i)));
}

static void named_order_main(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, amb_register(self, amb_atom("names_sink"), amb_self(self)));
    for (int k = 0; k < NAMED_SENDERS; k++) {
        amb_pid s;
        CHECK_OK(self, amb_spawn(self, named_sender, NULL, &s));
        CHECK_OK(self, amb_send(self, s, mk_int(k)));
    }
    int64_t next[NAMED_SENDERS] = {0};
    for (int64_t n = 0; n < (int64_t)NAMED_SENDERS * NAMED_MSGS; n++) {
        int64_t v = int_of(RECV(self));
        int64_t k = v >> 32;
        CHECK(self, k >= 0 && k < NAMED_SENDERS);
        CHECK_EQ(self, v & 0xffffffff, next[k]);
        next[k]++;
    }
}

AMB_TEST(send_to_a_name_delivers_in_per_sender_order)
{
    run_in(1, named_order_main, NULL);
    run_in(2, named_order_main, NULL);
}

#define MANY_NAMES 10000

static void many_names_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid *pids = calloc(MANY_NAMES / 100, sizeof *pids);
    CHECK(self, pids != NULL);
    /* 100 processes, 100 rounds: names churn through the table. */
    for (int i = 0; i < MANY_NAMES / 100; i++)
        CHECK_OK(self, amb_spawn(self, waits_for_stop, NULL, &pids[i]));
    char buf[32];
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < MANY_NAMES / 100; i++) {
            snprintf(buf, sizeof buf, "names_many_%d", round * 100 + i);
            CHECK_OK(self, amb_register(self, amb_atom(buf), pids[i]));
        }
        CHECK_EQ(self, list_len(amb_registered(self)), MANY_NAMES / 100);
        for (int i = 0; i < MANY_NAMES / 100; i++) {
            snprintf(buf, sizeof buf, "names_many_%d", round * 100 + i);
            amb_pid found;
            CHECK_OK(self, amb_whereis(self, amb_atom(buf), &found));
            CHECK(self, found == pids[i]);
            CHECK_OK(self, amb_unregister(self, amb_atom(buf)));
        }
        amb_heap_reset(amb_proc_heap(self));
    }
    /* And all at once. */
    amb_pid *all = calloc(MANY_NAMES, sizeof *all);
    CHECK(self, all != NULL);
    for (int i = 0; i < MANY_NAMES; i++) {
        snprintf(buf, sizeof buf, "names_all_%d", i);
        CHECK_OK(self,
                 amb_spawn_opt(self, waits_for_stop, NULL,
                               &(amb_spawn_opts){.name = amb_atom(buf)}, &all[i], NULL));
    }
    CHECK_EQ(self, list_len(amb_registered(self)), MANY_NAMES);
    for (int i = 0; i < MANY_NAMES; i++) {
        snprintf(buf, sizeof buf, "names_all_%d", i);
        CHECK_OK(self, amb_send(self, amb_atom(buf), AMB_ATOM_STOP));
    }
    for (int i = 0; i < MANY_NAMES / 100; i++)
        CHECK_OK(self, amb_send(self, pids[i], AMB_ATOM_STOP));
    for (int i = 0; i < MANY_NAMES; i++)
        WAIT_UNTIL(self, !amb_is_process_alive(self, all[i]));
    for (int i = 0; i < MANY_NAMES / 100; i++)
        WAIT_UNTIL(self, !amb_is_process_alive(self, pids[i]));
    /* Every name went with its process. */
    CHECK_EQ(self, registered_count(self), 0);
    free(all);
    free(pids);
}

AMB_TEST(ten_thousand_names_come_and_go)
{
    run_in(2, many_names_main, NULL);
}

/* ---- a registration racing with the process's exit ---- */

#define RACE_CHILDREN (200000 / SLOW)

typedef struct race_obs {
    int rounds;
    int dangling; /* a name left for a dead process */
    long attempts;
} race_obs;

static void race_child(amb_proc *self, void *arg)
{
    /* Live a little (a few yields), then end. */
    intptr_t n = (intptr_t)arg;
    for (intptr_t i = 0; i < n; i++)
        amb_yield(self);
}

/* {child, From, C}: registers C under one name over and over until C is
 * gone, then reports whether the name outlived C. */
static void race_registrar(amb_proc *self, void *arg)
{
    race_obs *o = arg;
    amb_term name = amb_atom("names_race");
    for (;;) {
        amb_term t = RECV(self);
        if (t == AMB_ATOM_STOP)
            return;
        amb_pid from = amb_tuple_elem(t, 1), c = amb_tuple_elem(t, 2);
        int64_t until = amb_now_ms() + DEADLINE_MS;
        for (long k = 0;; k++) {
            int rc = amb_register(self, name, c);
            o->attempts++;
            if (rc == AMB_ENOPROC)
                break;
            CHECK(self, rc == 0 || rc == AMB_EEXIST);
            if (k % 32 == 31) {
                CHECK(self, amb_now_ms() < until);
                amb_yield(self);
            }
        }
        amb_pid found;
        if (amb_whereis(self, name, &found) == 0) {
            o->dangling++;
            amb_unregister(self, name);
        }
        CHECK_OK(self, amb_send(self, from, AMB_ATOM_OK));
    }
}

static void race_main(amb_proc *self, void *arg)
{
    race_obs *o = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid r;
    CHECK_OK(self, amb_spawn(self, race_registrar, o, &r));
    for (intptr_t i = 0; i < RACE_CHILDREN; i++) {
        amb_pid c;
        CHECK_OK(self, amb_spawn(self, race_child, (void *)(i % 7), &c));
        CHECK_OK(self,
                 amb_send(self, r, AMB_TUPLE(h, amb_atom("child"), amb_self(self), c)));
        CHECK(self, RECV(self) == AMB_ATOM_OK);
        amb_heap_reset(h);
        o->rounds++;
    }
    CHECK_OK(self, amb_send(self, r, AMB_ATOM_STOP));
}

AMB_TEST(register_racing_with_exit_never_leaves_a_name_for_a_dead_process)
{
    race_obs o = {0};
    run_in(2, race_main, &o);
    print_message("%d rounds, %ld register attempts, %d dangling names\n", o.rounds,
                  o.attempts, o.dangling);
    assert_int_equal(o.rounds, RACE_CHILDREN);
    assert_int_equal(o.dangling, 0);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(register_whereis_unregister_and_registered),
    AMB_TEST_ENTRY(bad_names_are_ebadarg_and_unknown_names_enotfound),
    AMB_TEST_ENTRY(register_of_a_term_that_is_not_a_pid_is_ebadarg),
    AMB_TEST_ENTRY(register_of_a_dead_pid_is_enoproc),
    AMB_TEST_ENTRY(the_name_goes_away_when_its_process_ends),
    AMB_TEST_ENTRY(spawn_opt_name_registers_and_a_taken_name_spawns_nothing),
    AMB_TEST_ENTRY(send_to_a_name_delivers_in_per_sender_order),
    AMB_TEST_ENTRY(ten_thousand_names_come_and_go),
    AMB_TEST_ENTRY(register_racing_with_exit_never_leaves_a_name_for_a_dead_process))

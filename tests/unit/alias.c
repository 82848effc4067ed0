/*
 * tests/unit/alias.c - process aliases (include/ambitious/process.h,
 * "Aliases"): amb_alias, amb_unalias and amb_send to an alias.
 *
 * What is proved: an active alias delivers to its owner, from the owner and
 * from other processes, in send order; after amb_unalias a message sent to
 * it is dropped, also one that was sent before the unalias but not yet
 * taken from the mailbox, while one taken already stays; an AMB_ALIAS_REPLY
 * alias goes inactive once one message through it was received; unalias of
 * an alias that is not active (removed, used up, another process's, of a
 * dead process) is AMB_ENOTFOUND; a term that is not an alias is
 * AMB_EBADARG; a send to the alias of a dead process is dropped, not an
 * error; the keys of aliases are unique on the node.
 *
 * The harness is tests/amb_test_rt.h: each test runs a first process once
 * with one scheduler and once with two (run_both).
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "amb_test_rt.h"

/* Nothing is (or arrives) in the caller's mailbox now. */
static void check_empty(amb_proc *self)
{
    amb_term t;
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, &t));
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

/* ---------------------------------------------------------------------------
 * A helper that sends to an alias on request: {send, Alias, N} sends the
 * integers 1..N to Alias, then counts them in `sent`; 'stop' ends it.
 * ------------------------------------------------------------------------ */

typedef struct sender_arg {
    atomic_int sent;
} sender_arg;

static void sender(amb_proc *self, void *arg)
{
    sender_arg *a = arg;
    for (;;) {
        amb_term m = RECV(self);
        if (m == AMB_ATOM_STOP)
            return;
        amb_term alias;
        int n;
        CHECK_OK(self, amb_match(m, "{send,~w,~i}", &alias, &n));
        for (int i = 1; i <= n; i++)
            CHECK_OK(self, amb_send(self, alias, mk_int(i)));
        /* release: the test thread of the owner reads it after its own
         * acquire load, and the messages were delivered before. */
        atomic_fetch_add_explicit(&a->sent, n, memory_order_release);
    }
}

static amb_pid start_sender(amb_proc *self, sender_arg *a)
{
    amb_pid pid;
    atomic_store(&a->sent, 0);
    CHECK_OK(self, amb_spawn(self, sender, a, &pid));
    return pid;
}

/* ---------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void active_alias_delivers_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term alias;
    CHECK_OK(self, amb_alias(self, 0, &alias));
    CHECK(self, amb_type_of(alias) == AMB_T_REF);
    /* From the owner itself. */
    CHECK_OK(self, amb_send(self, alias, amb_atom("one")));
    CHECK(self, RECV(self) == amb_atom("one"));
    /* From another process, many, in order, and the alias stays active
     * (no AMB_ALIAS_REPLY). */
    sender_arg a;
    amb_pid s = start_sender(self, &a);
    CHECK_OK(self, amb_send(self, s,
                            amb_pack(amb_proc_heap(self), "{send,~w,~i}", alias, 100)));
    for (int i = 1; i <= 100; i++)
        CHECK_EQ(self, int_of(RECV(self)), i);
    /* A second alias of the same process is independent of the first. */
    amb_term other;
    CHECK_OK(self, amb_alias(self, 0, &other));
    CHECK(self, !amb_equal(alias, other));
    CHECK_OK(self, amb_send(self, other, amb_atom("two")));
    CHECK(self, RECV(self) == amb_atom("two"));
    CHECK_OK(self, amb_unalias(self, alias));
    CHECK_OK(self, amb_send(self, other, amb_atom("three")));
    CHECK(self, RECV(self) == amb_atom("three"));
    CHECK_OK(self, amb_unalias(self, other));
    CHECK_OK(self, amb_send(self, s, AMB_ATOM_STOP));
    check_empty(self);
}

AMB_TEST(alias_active_delivers_from_owner_and_others_in_order)
{
    run_both(active_alias_delivers_body, NULL);
}

static void unalias_drops_in_flight_body(amb_proc *self, void *arg)
{
    amb_term alias;
    /* Sent by the owner, then unaliased before any receive: dropped. A
     * plain message sent after it still arrives. */
    CHECK_OK(self, amb_alias(self, 0, &alias));
    CHECK_OK(self, amb_send(self, alias, amb_atom("lost")));
    CHECK_OK(self, amb_send(self, amb_self(self), amb_atom("plain")));
    CHECK_OK(self, amb_unalias(self, alias));
    CHECK(self, RECV(self) == amb_atom("plain"));
    check_empty(self);

    /* Sent by another process, known to be delivered (the sender counted
     * it) but not yet taken into the owner's mailbox: dropped. The owner
     * must make no runtime call between the delivery and the unalias (a
     * yield or a receive would take the message in, while the alias is
     * still active, and then it stays). On one scheduler one yield does it:
     * the yield looks at the mailbox before the sender runs, and the sender
     * sends its one message and counts it in a single run. On two, the
     * owner spins on the counter while the sender runs on the other
     * scheduler; if the sender happens not to run meanwhile, that round
     * proves nothing and is skipped. */
    CHECK_OK(self, amb_alias(self, 0, &alias));
    sender_arg a;
    amb_pid s = start_sender(self, &a);
    CHECK_OK(self,
             amb_send(self, s, amb_pack(amb_proc_heap(self), "{send,~w,~i}", alias, 1)));
    bool quiet = true; /* no runtime call of the owner saw the message */
    if (arg == NULL) {
        amb_yield(self);
        quiet = atomic_load_explicit(&a.sent, memory_order_acquire) == 1;
    } else {
        int64_t until = amb_now_ms() + 200;
        while (atomic_load_explicit(&a.sent, memory_order_acquire) != 1 &&
               amb_now_ms() < until)
            ;
        quiet = atomic_load_explicit(&a.sent, memory_order_acquire) == 1;
    }
    CHECK_OK(self, amb_unalias(self, alias));
    if (quiet) {
        check_empty(self);
    } else {
        WAIT_UNTIL(self, atomic_load_explicit(&a.sent, memory_order_acquire) == 1);
        amb_term t;
        (void)amb_receive(self, 0, &t); /* either way is right now */
    }

    /* After unalias, a new send is dropped too (and is not an error). */
    CHECK_OK(self, amb_send(self, alias, amb_atom("late")));
    check_empty(self);
    CHECK_OK(self, amb_send(self, s, AMB_ATOM_STOP));
}

AMB_TEST(alias_unalias_drops_messages_not_yet_received)
{
    /* arg: NULL on one scheduler, non-NULL on two (see the body). */
    run_in(1, unalias_drops_in_flight_body, NULL);
    run_in(2, unalias_drops_in_flight_body, (void *)1);
}

static void received_before_unalias_stay_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term alias;
    CHECK_OK(self, amb_alias(self, 0, &alias));
    CHECK_OK(self, amb_send(self, alias, amb_atom("kept")));
    /* amb_message_queue_len takes the message into the mailbox (it is
     * counted), so it was received before the removal. */
    CHECK_EQ(self, amb_message_queue_len(self), 1);
    CHECK_OK(self, amb_unalias(self, alias));
    CHECK(self, RECV(self) == amb_atom("kept"));
    check_empty(self);
}

AMB_TEST(alias_messages_in_the_mailbox_before_unalias_stay)
{
    run_both(received_before_unalias_stay_body, NULL);
}

static void reply_alias_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term alias;
    CHECK_OK(self, amb_alias(self, AMB_ALIAS_REPLY, &alias));
    /* Active until one message is received through it. */
    CHECK_OK(self, amb_send(self, alias, amb_atom("first")));
    CHECK_OK(self, amb_send(self, alias, amb_atom("second")));
    CHECK_OK(self, amb_send(self, amb_self(self), amb_atom("marker")));
    CHECK(self, RECV(self) == amb_atom("first"));
    CHECK(self, RECV(self) == amb_atom("marker")); /* "second" was dropped */
    check_empty(self);
    CHECK_RC(self, AMB_ENOTFOUND, amb_unalias(self, alias));

    /* From another process: 10 sent, exactly one arrives. */
    CHECK_OK(self, amb_alias(self, AMB_ALIAS_REPLY, &alias));
    sender_arg a;
    amb_pid s = start_sender(self, &a);
    CHECK_OK(self,
             amb_send(self, s, amb_pack(amb_proc_heap(self), "{send,~w,~i}", alias, 10)));
    CHECK_EQ(self, int_of(RECV(self)), 1);
    WAIT_UNTIL(self, atomic_load_explicit(&a.sent, memory_order_acquire) == 10);
    check_empty(self);
    CHECK_RC(self, AMB_ENOTFOUND, amb_unalias(self, alias));

    /* Unaliased before any message: still removable exactly once. */
    CHECK_OK(self, amb_alias(self, AMB_ALIAS_REPLY, &alias));
    CHECK_OK(self, amb_unalias(self, alias));
    CHECK_RC(self, AMB_ENOTFOUND, amb_unalias(self, alias));
    CHECK_OK(self, amb_send(self, s, AMB_ATOM_STOP));
}

AMB_TEST(alias_reply_goes_inactive_after_one_message)
{
    run_both(reply_alias_body, NULL);
}

/* Makes an alias, sends it to the parent, waits for 'check' and then tells
 * the parent whether its alias is still active by reading its mailbox. */
static void alias_owner(amb_proc *self, void *arg)
{
    amb_pid parent = *(amb_pid *)arg;
    amb_term alias;
    CHECK_OK(self, amb_alias(self, 0, &alias));
    CHECK_OK(self,
             amb_send(self, parent, amb_pack(amb_proc_heap(self), "{alias,~w}", alias)));
    CHECK(self, RECV(self) == amb_atom("probe")); /* sent through the alias */
    CHECK_OK(self, amb_send(self, parent, amb_atom("still_active")));
    CHECK(self, RECV(self) == AMB_ATOM_STOP);
}

static void unalias_not_active_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self);
    amb_pid owner;
    amb_term ref;
    CHECK_OK(self, amb_spawn_monitor(self, alias_owner, &me, &owner, &ref));
    amb_term foreign;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{alias,~w}", &foreign));
    CHECK_OK(self, amb_term_copy(amb_proc_heap(self), foreign, &foreign));
    /* Another process's alias: not ours to remove, and it stays active. */
    CHECK_RC(self, AMB_ENOTFOUND, amb_unalias(self, foreign));
    CHECK_OK(self, amb_send(self, foreign, amb_atom("probe")));
    CHECK(self, RECV(self) == amb_atom("still_active"));
    CHECK_OK(self, amb_send(self, owner, AMB_ATOM_STOP));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL,
                                     "{'DOWN',~r,process,~v,normal}", ref, owner));
    /* The alias of a dead process: sending is not an error (dropped), and
     * it is not ours either. */
    CHECK_OK(self, amb_send(self, foreign, amb_atom("to_the_dead")));
    CHECK_RC(self, AMB_ENOTFOUND, amb_unalias(self, foreign));

    /* Our own alias, removed twice. */
    amb_term alias;
    CHECK_OK(self, amb_alias(self, 0, &alias));
    CHECK_OK(self, amb_unalias(self, alias));
    CHECK_RC(self, AMB_ENOTFOUND, amb_unalias(self, alias));
    check_empty(self);
}

AMB_TEST(alias_unalias_of_foreign_or_removed_alias_is_notfound)
{
    run_both(unalias_not_active_body, NULL);
}

static void not_an_alias_body(amb_proc *self, void *arg)
{
    (void)arg;
    /* A plain reference, a pid, atoms, integers, AMB_NONE: no alias. */
    amb_term ref = amb_make_ref(self);
    CHECK(self, ref != AMB_NONE);
    CHECK_RC(self, AMB_EBADARG, amb_unalias(self, ref));
    CHECK_RC(self, AMB_EBADARG, amb_unalias(self, amb_self(self)));
    CHECK_RC(self, AMB_EBADARG, amb_unalias(self, AMB_ATOM_OK));
    CHECK_RC(self, AMB_EBADARG, amb_unalias(self, mk_int(5)));
    CHECK_RC(self, AMB_EBADARG, amb_unalias(self, AMB_NONE));
    /* A reference that is not an alias is no destination either. */
    CHECK_RC(self, AMB_EBADARG, amb_send(self, ref, AMB_ATOM_OK));
    /* amb_alias: unknown flags and NULL out. */
    amb_term alias = AMB_NONE;
    CHECK_RC(self, AMB_EBADARG, amb_alias(self, 2u, &alias));
    CHECK(self, alias == AMB_NONE); /* a failed call did nothing */
    CHECK_RC(self, AMB_EBADARG, amb_alias(self, AMB_ALIAS_REPLY | 4u, &alias));
    CHECK_RC(self, AMB_EBADARG, amb_alias(self, 0, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_alias(NULL, 0, &alias));
    CHECK_RC(self, AMB_EBADARG, amb_unalias(NULL, ref));
    check_empty(self);
}

AMB_TEST(alias_non_alias_terms_are_badarg)
{
    run_both(not_an_alias_body, NULL);
}

/* Many aliases of one process: each routes to it until removed, in any
 * order of removal (the table is not a stack). */
#define MANY 1000
static void many_aliases_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term v[MANY];
    for (int i = 0; i < MANY; i++)
        CHECK_OK(self, amb_alias(self, 0, &v[i]));
    /* Remove the even ones, then send to every alias: only the odd arrive. */
    for (int i = 0; i < MANY; i += 2)
        CHECK_OK(self, amb_unalias(self, v[i]));
    for (int i = 0; i < MANY; i++)
        CHECK_OK(self, amb_send(self, v[i], mk_int(i)));
    for (int i = 1; i < MANY; i += 2)
        CHECK_EQ(self, int_of(RECV(self)), i);
    check_empty(self);
    for (int i = 1; i < MANY; i += 2)
        CHECK_OK(self, amb_unalias(self, v[i]));
    for (int i = 0; i < MANY; i++)
        CHECK_RC(self, AMB_ENOTFOUND, amb_unalias(self, v[i]));
}

AMB_TEST(alias_many_aliases_route_until_each_is_removed)
{
    run_both(many_aliases_body, NULL);
}

/* Issue 13: alias keys were a counter per process starting at 1, so the
 * first alias of every process had the same key, and an old alias routed
 * to whichever process came to hold its owner's pid. Keys are now unique
 * on the node: the aliases of many processes, made on both schedulers,
 * never share their key words (the first two of the reference's four). */
#define KEYED 200
static void alias_to_parent(amb_proc *self, void *arg)
{
    amb_pid parent = *(amb_pid *)arg;
    amb_term a;
    CHECK_OK(self, amb_alias(self, 0, &a));
    CHECK_OK(self, amb_send(self, parent, a));
}

static uint64_t key_of(amb_proc *self, amb_term alias)
{
    uint32_t w[AMB_REF_MAX_WORDS];
    size_t n = 0;
    CHECK_OK(self, amb_ref_get(alias, w, AMB_REF_MAX_WORDS, NULL, NULL, &n));
    CHECK_EQ(self, n, 4);
    return (uint64_t)w[0] | (uint64_t)w[1] << 32;
}

static void unique_keys_body(amb_proc *self, void *arg)
{
    (void)arg;
    static amb_pid me;
    me = amb_self(self);
    uint64_t keys[KEYED + 1];
    amb_term mine;
    CHECK_OK(self, amb_alias(self, 0, &mine));
    keys[0] = key_of(self, mine);
    for (int i = 0; i < KEYED; i++)
        CHECK_OK(self, amb_spawn(self, alias_to_parent, &me, NULL));
    for (int i = 1; i <= KEYED; i++)
        keys[i] = key_of(self, RECV(self));
    for (int i = 0; i <= KEYED; i++) {
        CHECK(self, keys[i] != 0);
        for (int j = i + 1; j <= KEYED; j++)
            CHECK(self, keys[i] != keys[j]);
    }
}

AMB_TEST(alias_keys_are_unique_on_the_node)
{
    run_both(unique_keys_body, NULL);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(alias_active_delivers_from_owner_and_others_in_order),
              AMB_TEST_ENTRY(alias_unalias_drops_messages_not_yet_received),
              AMB_TEST_ENTRY(alias_messages_in_the_mailbox_before_unalias_stay),
              AMB_TEST_ENTRY(alias_reply_goes_inactive_after_one_message),
              AMB_TEST_ENTRY(alias_unalias_of_foreign_or_removed_alias_is_notfound),
              AMB_TEST_ENTRY(alias_non_alias_terms_are_badarg),
              AMB_TEST_ENTRY(alias_many_aliases_route_until_each_is_removed),
              AMB_TEST_ENTRY(alias_keys_are_unique_on_the_node))

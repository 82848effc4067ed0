/*
 * tests/unit/receive.c - receiving (include/ambitious/process.h, "Messages"):
 * FIFO order per sender under concurrency, selective receive by predicate
 * and by pattern, the save marker, and receive timeouts.
 *
 * What is proved: four senders x 100k messages to one receiver on two
 * schedulers arrive each in its sender's order, none lost or duplicated;
 * amb_receive_if / amb_receive_match take the first matching message, leave
 * the others in order, and find messages that arrive while they wait; a bad
 * pattern is AMB_EFORMAT and takes nothing; a receive after a mark skips
 * every older message in O(1) (counted with the predicate) and leaves them
 * in order, and the mark survives the removal of the message it points at;
 * timeout 0 polls, a finite timeout lasts at least as long as asked, a
 * message that comes first wins, and stale timeouts of earlier receives
 * never end a later one; AMB_INFINITY waits for the message; a match
 * function that tries to wait is refused (AMB_ESTATE) and the receive that
 * runs it loses nothing; amb_sleep and a receive after a mark leave the
 * message of the last plain receive borrowed.
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

/* ===========================================================================
 * Order
 * ======================================================================== */

static void oldest_first_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self);
    for (int i = 0; i < 100; i++)
        CHECK_OK(self,
                 amb_send(self, me, AMB_TUPLE(h, mk_int(i), amb_string(h, "payload"))));
    amb_heap_reset(h); /* the mailbox holds copies */
    for (int i = 0; i < 100; i++) {
        amb_term t = RECV(self);
        CHECK_EQ(self, int_of(amb_tuple_elem(t, 0)), i);
        char buf[16];
        size_t len = 0;
        CHECK_OK(self, amb_string_get(amb_tuple_elem(t, 1), buf, sizeof buf, &len));
        CHECK(self, strcmp(buf, "payload") == 0);
    }
    amb_term t;
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, &t));
}

AMB_TEST(receive_takes_the_oldest_message_first)
{
    run_in(1, oldest_first_main, NULL);
    run_in(2, oldest_first_main, NULL);
}

#define FIFO_SENDERS 4
#define FIFO_MSGS    (100000 / SLOW)

typedef struct fifo_obs {
    amb_pid receiver;
    int64_t got[FIFO_SENDERS];
    int64_t total;
    int64_t out_of_order;
} fifo_obs;

static void fifo_sender(amb_proc *self, void *arg)
{
    fifo_obs *o = arg;
    int64_t k = int_of(RECV(self));
    for (int64_t i = 0; i < FIFO_MSGS; i++)
        CHECK_OK(self, amb_send(self, o->receiver, mk_int(k << 32 | i)));
}

static void fifo_receiver(amb_proc *self, void *arg)
{
    fifo_obs *o = arg;
    o->receiver = amb_self(self);
    for (int k = 0; k < FIFO_SENDERS; k++) {
        amb_pid s;
        CHECK_OK(self, amb_spawn(self, fifo_sender, o, &s));
        CHECK_OK(self, amb_send(self, s, mk_int(k)));
    }
    for (int64_t n = 0; n < (int64_t)FIFO_SENDERS * FIFO_MSGS; n++) {
        int64_t v = int_of(RECV(self));
        int64_t k = v >> 32, i = v & 0xffffffff;
        CHECK(self, k >= 0 && k < FIFO_SENDERS);
        /* Each sender's sequence in order: no loss, no duplicate. */
        if (i != o->got[k])
            o->out_of_order++;
        o->got[k] = i + 1;
        o->total++;
    }
    amb_term t;
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, &t));
}

AMB_TEST(fifo_per_sender_4_senders_100k_each_on_2_schedulers)
{
    for (unsigned n = 2; n >= 1; n--) {
        fifo_obs *o = calloc(1, sizeof *o);
        assert_non_null(o);
        run_in(n, fifo_receiver, o);
        assert_int_equal(o->total, (int64_t)FIFO_SENDERS * FIFO_MSGS);
        assert_int_equal(o->out_of_order, 0);
        for (int k = 0; k < FIFO_SENDERS; k++)
            assert_int_equal(o->got[k], FIFO_MSGS);
        free(o);
    }
}

/* ===========================================================================
 * Selective receive
 * ======================================================================== */

static bool match_even(void *ctx, amb_term msg)
{
    (void)ctx;
    return amb_is_small(msg) && int_of(msg) % 2 == 0;
}

static bool match_above(void *ctx, amb_term msg)
{
    return amb_is_small(msg) && int_of(msg) > *(int64_t *)ctx;
}

static bool match_atom(void *ctx, amb_term msg)
{
    return msg == *(amb_term *)ctx;
}

static void select_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self);
    for (int i = 1; i <= 10; i++)
        CHECK_OK(self, amb_send(self, me, mk_int(i)));
    amb_term t;
    CHECK_OK(self, amb_receive_if(self, match_even, NULL, 0, &t));
    CHECK_EQ(self, int_of(t), 2);
    int64_t five = 5;
    CHECK_OK(self, amb_receive_if(self, match_above, &five, 0, &t));
    CHECK_EQ(self, int_of(t), 6);
    int64_t ten = 10;
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive_if(self, match_above, &ten, 0, &t));
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive_if(self, match_above, &ten, 20, &t));
    CHECK_EQ(self, amb_message_queue_len(self), 8);
    /* The unmatched ones, in their order. */
    static const int rest[] = {1, 3, 4, 5, 7, 8, 9, 10};
    for (int i = 0; i < 8; i++)
        CHECK_EQ(self, int_of(RECV(self)), rest[i]);
}

AMB_TEST(receive_if_takes_the_first_match_and_keeps_the_rest_in_order)
{
    run_in(1, select_main, NULL);
    run_in(2, select_main, NULL);
}

typedef struct late_obs {
    amb_pid receiver;
    atomic_int sent_noise;
} late_obs;

static void late_sender(amb_proc *self, void *arg)
{
    late_obs *o = arg;
    /* Noise in small batches, letting the receiver look at each batch and
     * park again, then the message it waits for, then more noise. */
    for (int i = 0; i < 100; i++) {
        CHECK_OK(self, amb_send(self, o->receiver, mk_int(i)));
        atomic_fetch_add(&o->sent_noise, 1);
        if (i % 10 == 9)
            CHECK_OK(self, amb_sleep(self, 1));
    }
    CHECK_OK(self, amb_send(self, o->receiver, amb_atom("wanted")));
    CHECK_OK(self, amb_send(self, o->receiver, mk_int(100)));
}

static void late_main(amb_proc *self, void *arg)
{
    late_obs *o = arg;
    o->receiver = amb_self(self);
    CHECK_OK(self, amb_spawn(self, late_sender, o, NULL));
    amb_term want = amb_atom("wanted"), t;
    CHECK_OK(self, amb_receive_if(self, match_atom, &want, DEADLINE_MS, &t));
    CHECK(self, t == want);
    CHECK_EQ(self, atomic_load(&o->sent_noise), 100);
    for (int i = 0; i <= 100; i++)
        CHECK_EQ(self, int_of(RECV(self)), i);
}

AMB_TEST(receive_if_finds_a_message_that_arrives_while_waiting)
{
    for (unsigned n = 1; n <= 2; n++) {
        late_obs o = {0};
        run_in(n, late_main, &o);
    }
}

static void match_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self);
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, amb_atom("a"), mk_int(1))));
    CHECK_OK(
        self,
        amb_send(self, me, AMB_TUPLE(h, amb_atom("b"), mk_int(2), amb_string(h, "two"))));
    CHECK_OK(self,
             amb_send(self, me,
                      AMB_TUPLE(h, amb_atom("b"), mk_int(3), amb_string(h, "three"))));
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, amb_atom("c"), me)));
    int i = 0;
    char buf[16] = "";
    amb_term whole = AMB_NONE;
    CHECK_OK(self,
             amb_receive_match(self, 0, &whole, "{b, ~i, ~s}", &i, buf, sizeof buf));
    CHECK_EQ(self, i, 2);
    CHECK(self, strcmp(buf, "two") == 0);
    CHECK(self, amb_is_record(whole, amb_atom("b"), 3));
    /* A pattern with a ~v that must equal a given term, *out NULL. */
    amb_pid p = AMB_NONE;
    CHECK_OK(self, amb_receive_match(self, 0, NULL, "{c, ~p}", &p));
    CHECK(self, p == me);
    /* Nothing matches: nothing bound, nothing taken. */
    i = -1;
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive_match(self, 0, NULL, "{b, ~i, 7}", &i));
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive_match(self, 30, NULL, "{z, ~i}", &i));
    CHECK_EQ(self, i, -1);
    CHECK_EQ(self, amb_message_queue_len(self), 2);
    amb_term t = RECV(self);
    CHECK(self, amb_is_record(t, amb_atom("a"), 2));
    t = RECV(self);
    CHECK(self, amb_is_record(t, amb_atom("b"), 3));
    CHECK_EQ(self, int_of(amb_tuple_elem(t, 1)), 3);
}

AMB_TEST(receive_match_binds_the_first_match_and_keeps_the_rest_in_order)
{
    run_in(1, match_main, NULL);
    run_in(2, match_main, NULL);
}

static void match_late_sender(amb_proc *self, void *arg)
{
    amb_pid to = *(amb_pid *)arg;
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self, amb_sleep(self, 5));
    CHECK_OK(self, amb_send(self, to, AMB_TUPLE(h, amb_atom("noise"), mk_int(0))));
    CHECK_OK(self, amb_sleep(self, 5));
    CHECK_OK(self, amb_send(self, to, AMB_TUPLE(h, amb_atom("reply"), mk_int(77))));
}

static void match_late_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self);
    CHECK_OK(self, amb_spawn(self, match_late_sender, &me, NULL));
    int64_t v = 0;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{reply, ~l}", &v));
    CHECK_EQ(self, v, 77);
    amb_term t = RECV(self);
    CHECK(self, amb_is_record(t, amb_atom("noise"), 2));
}

AMB_TEST(receive_match_finds_a_message_that_arrives_while_waiting)
{
    run_in(1, match_late_main, NULL);
    run_in(2, match_late_main, NULL);
}

static void bad_format_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self);
    CHECK_OK(self, amb_send(self, me, amb_atom("x")));
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, AMB_ATOM_OK, mk_int(1))));
    int i = -1;
    amb_term out = AMB_NONE;
    CHECK_RC(self, AMB_EFORMAT, amb_receive_match(self, 0, &out, "{ok, ~i", &i));
    CHECK_RC(self, AMB_EFORMAT, amb_receive_match(self, 100, &out, "{ok, ~q}", &i));
    CHECK_RC(self, AMB_EFORMAT,
             amb_receive_match(self, AMB_INFINITY, &out, "{ok, ~i}}", &i));
    CHECK_EQ(self, i, -1);
    CHECK(self, out == AMB_NONE);
    /* Nothing was consumed, and the order is intact. */
    CHECK_EQ(self, amb_message_queue_len(self), 2);
    CHECK(self, RECV(self) == amb_atom("x"));
    CHECK(self, amb_is_record(RECV(self), AMB_ATOM_OK, 2));
}

AMB_TEST(receive_match_bad_format_is_eformat_and_consumes_nothing)
{
    run_in(1, bad_format_main, NULL);
    run_in(2, bad_format_main, NULL);
}

static void bad_format_empty_main(amb_proc *self, void *arg)
{
    (void)arg;
    int i = -1;
    /* A bad pattern is a bad argument, whatever the mailbox holds: it must
     * not wait (here 200 ms) and report a timeout instead. */
    int64_t t0 = amb_now_ms();
    CHECK_RC(self, AMB_EFORMAT, amb_receive_match(self, 200, NULL, "{ok, ~i", &i));
    CHECK(self, amb_now_ms() - t0 < 200);
}

AMB_TEST(receive_match_bad_format_on_an_empty_mailbox_is_eformat)
{
    run_in(1, bad_format_empty_main, NULL);
}

/* ===========================================================================
 * The save marker
 * ======================================================================== */

#define MARK_OLD 10000

/* Counts its calls: proves how many messages a receive looked at. */
typedef struct counting_match {
    amb_term tag;
    long calls;
} counting_match;

static bool match_tag(void *ctx, amb_term msg)
{
    counting_match *c = ctx;
    c->calls++;
    return amb_is_tuple(msg) && amb_tuple_arity(msg) == 2 &&
           amb_tuple_elem(msg, 0) == c->tag;
}

static void mark_server(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    for (;;) {
        amb_term t = RECV(self);
        if (t == AMB_ATOM_STOP)
            return;
        amb_pid from = amb_tuple_elem(t, 1);
        if (amb_is_record(t, amb_atom("fill"), 3)) {
            /* Old messages that the reply's predicate would match. */
            int64_t n = int_of(amb_tuple_elem(t, 2));
            for (int64_t i = 0; i < n; i++) {
                CHECK_OK(self,
                         amb_send(self, from, AMB_TUPLE(h, AMB_ATOM_REPLY, mk_int(i))));
                amb_heap_reset(h);
            }
            CHECK_OK(self, amb_send(self, from, amb_atom("filled")));
        } else {
            amb_term ref = amb_tuple_elem(t, 2);
            CHECK_OK(self, amb_send(self, from, AMB_TUPLE(h, AMB_ATOM_REPLY, ref)));
        }
        amb_heap_reset(h);
    }
}

typedef struct mark_obs {
    long calls;
} mark_obs;

static void mark_main(amb_proc *self, void *arg)
{
    mark_obs *o = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self), srv;
    CHECK_OK(self, amb_spawn(self, mark_server, NULL, &srv));
    CHECK_OK(self,
             amb_send(self, srv, AMB_TUPLE(h, amb_atom("fill"), me, mk_int(MARK_OLD))));
    amb_term filled = amb_atom("filled"), t;
    CHECK_OK(self, amb_receive_if(self, match_atom, &filled, 60000, &t));
    CHECK_EQ(self, amb_message_queue_len(self), MARK_OLD);

    /* The call pattern: a fresh ref, mark, request, wait for the reply. */
    amb_term ref = amb_make_ref(self);
    amb_recv_mark mark = amb_receive_mark(self);
    CHECK_OK(self, amb_send(self, srv, AMB_TUPLE(h, amb_atom("req"), me, ref)));
    counting_match cm = {AMB_ATOM_REPLY, 0};
    CHECK_OK(self, amb_receive_if_after(self, mark, match_tag, &cm, DEADLINE_MS, &t));
    /* Found the new reply, not one of the 10,000 older {reply, _}. */
    CHECK(self, amb_equal(amb_tuple_elem(t, 1), ref));
    o->calls = cm.calls;
    CHECK_OK(self, amb_send(self, srv, AMB_ATOM_STOP));

    /* The old messages are all still there, in order. */
    CHECK_EQ(self, amb_message_queue_len(self), MARK_OLD);
    for (int64_t i = 0; i < MARK_OLD; i++) {
        t = RECV(self);
        CHECK(self, amb_is_record(t, AMB_ATOM_REPLY, 2));
        CHECK_EQ(self, int_of(amb_tuple_elem(t, 1)), i);
    }
}

AMB_TEST(mark_skips_10000_older_messages_in_o1_and_keeps_them_in_order)
{
    for (unsigned n = 1; n <= 2; n++) {
        mark_obs o = {0};
        run_in(n, mark_main, &o);
        /* O(1): the receive looked at the reply alone, none of the 10,000. */
        assert_int_equal(o.calls, 1);
    }
}

static void mark_unseen_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self);
    /* Sent (so arrived) before the mark, never looked at before it. */
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, AMB_ATOM_REPLY, amb_atom("old"))));
    amb_recv_mark mark = amb_receive_mark(self);
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, AMB_ATOM_REPLY, amb_atom("new"))));
    counting_match cm = {AMB_ATOM_REPLY, 0};
    amb_term t;
    CHECK_OK(self, amb_receive_if_after(self, mark, match_tag, &cm, 0, &t));
    CHECK(self, amb_tuple_elem(t, 1) == amb_atom("new"));
    t = RECV(self);
    CHECK(self, amb_tuple_elem(t, 1) == amb_atom("old"));
}

AMB_TEST(mark_skips_messages_that_arrived_before_it_but_were_not_looked_at)
{
    run_in(1, mark_unseen_main, NULL);
    run_in(2, mark_unseen_main, NULL);
}

static void mark_removed_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self);
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        CHECK_OK(self,
                 amb_send(self, me, AMB_TUPLE(h, AMB_ATOM_REPLY, amb_atom(names[i]))));
    CHECK_EQ(self, amb_message_queue_len(self), 3); /* all looked at */
    amb_recv_mark mark = amb_receive_mark(self);

    /* Intermediate receives take the newest old message (the one the mark
     * stands on), then the one before it. */
    amb_term c = AMB_TUPLE(h, AMB_ATOM_REPLY, amb_atom("c")), t;
    CHECK_OK(self, amb_receive_match(self, 0, NULL, "~v", c));
    CHECK_OK(self, amb_receive_match(self, 0, NULL, "{reply, b}"));
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, AMB_ATOM_REPLY, amb_atom("d"))));
    counting_match cm = {AMB_ATOM_REPLY, 0};
    CHECK_OK(self, amb_receive_if_after(self, mark, match_tag, &cm, 0, &t));
    CHECK(self, amb_tuple_elem(t, 1) == amb_atom("d"));
    CHECK_EQ(self, cm.calls, 1);
    /* Nothing newer than the mark is left: a poll times out, 'a' stays. */
    CHECK_RC(self, AMB_ETIMEDOUT,
             amb_receive_if_after(self, mark, match_tag, &cm, 0, &t));
    t = RECV(self);
    CHECK(self, amb_tuple_elem(t, 1) == amb_atom("a"));

    /* A mark on an empty mailbox, whose only old message is removed. */
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, AMB_ATOM_REPLY, amb_atom("e"))));
    CHECK_EQ(self, amb_message_queue_len(self), 1);
    mark = amb_receive_mark(self);
    t = RECV(self);
    CHECK(self, amb_tuple_elem(t, 1) == amb_atom("e"));
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, AMB_ATOM_REPLY, amb_atom("f"))));
    CHECK_OK(self, amb_receive_if_after(self, mark, match_tag, &cm, 0, &t));
    CHECK(self, amb_tuple_elem(t, 1) == amb_atom("f"));
}

AMB_TEST(mark_survives_removal_of_the_marked_message)
{
    run_in(1, mark_removed_main, NULL);
    run_in(2, mark_removed_main, NULL);
}

static void two_marks_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self);
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, AMB_ATOM_REPLY, mk_int(0))));
    CHECK_EQ(self, amb_message_queue_len(self), 1);
    amb_recv_mark m1 = amb_receive_mark(self);
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, AMB_ATOM_REPLY, mk_int(1))));
    CHECK_EQ(self, amb_message_queue_len(self), 2);
    amb_recv_mark m2 = amb_receive_mark(self);
    CHECK_OK(self, amb_send(self, me, AMB_TUPLE(h, AMB_ATOM_REPLY, mk_int(2))));
    counting_match cm = {AMB_ATOM_REPLY, 0};
    amb_term t;
    /* The older mark still means "after its own point". */
    CHECK_OK(self, amb_receive_if_after(self, m1, match_tag, &cm, 0, &t));
    CHECK_EQ(self, int_of(amb_tuple_elem(t, 1)), 1);
    CHECK_OK(self, amb_receive_if_after(self, m2, match_tag, &cm, 0, &t));
    CHECK_EQ(self, int_of(amb_tuple_elem(t, 1)), 2);
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive_if_after(self, m1, match_tag, &cm, 0, &t));
    CHECK_EQ(self, int_of(amb_tuple_elem(RECV(self), 1)), 0);
}

AMB_TEST(an_older_mark_still_skips_only_what_came_before_it)
{
    run_in(1, two_marks_main, NULL);
    run_in(2, two_marks_main, NULL);
}

/* ===========================================================================
 * Timeouts
 * ======================================================================== */

static void poll_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term t;
    int64_t t0 = amb_now_ms();
    for (int i = 0; i < 1000; i++)
        CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, &t));
    /* 1000 polls do not wait (generous: a poll is microseconds). */
    CHECK(self, amb_now_ms() - t0 < 2000);
    CHECK_OK(self, amb_send(self, amb_self(self), AMB_ATOM_OK));
    CHECK_OK(self, amb_receive(self, 0, &t));
    CHECK(self, t == AMB_ATOM_OK);
}

AMB_TEST(timeout_zero_polls)
{
    run_in(1, poll_main, NULL);
    run_in(2, poll_main, NULL);
}

static void lower_bound_main(amb_proc *self, void *arg)
{
    (void)arg;
    static const int ms[] = {1, 2, 5, 10, 25, 50, 100};
    amb_term t;
    for (int r = 0; r < 3; r++) {
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
            int64_t t0 = amb_now_ms();
            CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, ms[i], &t));
            int64_t waited = amb_now_ms() - t0;
            if (waited < ms[i])
                proc_fail(self, __FILE__, __LINE__, "timeout %d ms ended after %lld ms",
                          ms[i], (long long)waited);
            CHECK(self, waited < ms[i] + 5000);
        }
    }
}

AMB_TEST(finite_timeout_waits_at_least_as_long_as_asked)
{
    run_in(1, lower_bound_main, NULL);
    run_in(2, lower_bound_main, NULL);
}

#define RACE_ROUNDS (200 / SLOW)

typedef struct race_obs {
    int won;  /* the message came first */
    int late; /* a legitimate timeout (the machine was slow), then the message */
} race_obs;

/* {ping, From, I}: sleeps about 1 ms, answers {pong, I}.
 * {later, From, Ms}: sleeps Ms, answers 'later'. */
static void race_echo(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    for (;;) {
        amb_term t = RECV_WITHIN(self, 60000);
        if (t == AMB_ATOM_STOP)
            return;
        /* t is borrowed until the next receive, and amb_sleep is one:
         * take what is needed first. */
        amb_pid from = amb_tuple_elem(t, 1);
        int64_t n = int_of(amb_tuple_elem(t, 2));
        if (amb_is_record(t, amb_atom("later"), 3)) {
            CHECK_OK(self, amb_sleep(self, (uint64_t)n));
            CHECK_OK(self, amb_send(self, from, amb_atom("later")));
        } else {
            CHECK_OK(self, amb_sleep(self, 1));
            CHECK_OK(self,
                     amb_send(self, from, AMB_TUPLE(h, amb_atom("pong"), mk_int(n))));
        }
        amb_heap_reset(h);
    }
}

static void race_main(amb_proc *self, void *arg)
{
    race_obs *o = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self), echo;
    CHECK_OK(self, amb_spawn(self, race_echo, NULL, &echo));
    for (int64_t i = 0; i < RACE_ROUNDS; i++) {
        CHECK_OK(self,
                 amb_send(self, echo, AMB_TUPLE(h, amb_atom("ping"), me, mk_int(i))));
        amb_heap_reset(h);
        int64_t t0 = amb_now_ms();
        int64_t j = -1;
        int rc = amb_receive_match(self, 50, NULL, "{pong, ~l}", &j);
        if (rc == 0) {
            CHECK_EQ(self, j, i);
            o->won++;
        } else {
            /* Only a real timeout may end it: never before 50 ms. */
            CHECK_RC(self, AMB_ETIMEDOUT, rc);
            CHECK(self, amb_now_ms() - t0 >= 50);
            CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{pong, ~l}", &j));
            CHECK_EQ(self, j, i);
            o->late++;
        }
        /* Nothing else is in the mailbox: a stale timeout is no message. */
        CHECK_EQ(self, amb_message_queue_len(self), 0);
    }
    /* The stale timeouts of those receives fire now, while these wait. */
    amb_term t;
    for (int r = 0; r < 3; r++) {
        int64_t t0 = amb_now_ms();
        CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 30, &t));
        CHECK(self, amb_now_ms() - t0 >= 30);
    }
    int64_t t0 = amb_now_ms();
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 200, &t));
    CHECK(self, amb_now_ms() - t0 >= 200);
    /* An infinite wait ends with the message, not with a stale timeout. */
    CHECK_OK(self,
             amb_send(self, echo, AMB_TUPLE(h, amb_atom("later"), me, mk_int(100))));
    t0 = amb_now_ms();
    CHECK_OK(self, amb_receive(self, AMB_INFINITY, &t));
    CHECK(self, t == amb_atom("later"));
    CHECK(self, amb_now_ms() - t0 >= 100);
    CHECK_OK(self, amb_send(self, echo, AMB_ATOM_STOP));
}

AMB_TEST(message_before_timeout_wins_and_stale_timeouts_never_show_later)
{
    for (unsigned n = 1; n <= 2; n++) {
        race_obs o = {0};
        run_in(n, race_main, &o);
        assert_int_equal(o.won + o.late, RACE_ROUNDS);
        assert_true(o.won > 0);
        print_message("%u scheduler(s): %d of %d messages beat the 50 ms timeout\n", n,
                      o.won, RACE_ROUNDS);
    }
}

static void stale_many_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self);
    amb_term t;
    /* Many short receives that time out, alternated with receives that
     * get a message at once: no timeout may spill into the next wait. */
    for (int i = 0; i < 200 / SLOW; i++) {
        CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 1, &t));
        CHECK_OK(self, amb_send(self, me, mk_int(i)));
        CHECK_OK(self, amb_receive(self, 1000, &t));
        CHECK_EQ(self, int_of(t), i);
        CHECK_OK(self, amb_send_after(self, me, mk_int(-i), 3, NULL));
        CHECK_OK(self, amb_receive(self, 1000, &t));
        CHECK_EQ(self, int_of(t), -i);
    }
}

AMB_TEST(a_timed_out_receive_leaves_nothing_for_the_next_one)
{
    run_in(1, stale_many_main, NULL);
    run_in(2, stale_many_main, NULL);
}

static void infinity_sender(amb_proc *self, void *arg)
{
    amb_pid to = *(amb_pid *)arg;
    CHECK_OK(self, amb_sleep(self, 100));
    CHECK_OK(self, amb_send(self, to, amb_atom("finally")));
}

static void infinity_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self);
    CHECK_OK(self, amb_spawn(self, infinity_sender, &me, NULL));
    int64_t t0 = amb_now_ms();
    amb_term t;
    CHECK_OK(self, amb_receive(self, AMB_INFINITY, &t));
    CHECK(self, t == amb_atom("finally"));
    CHECK(self, amb_now_ms() - t0 >= 100);
}

AMB_TEST(infinity_waits_until_the_message_arrives)
{
    run_in(1, infinity_main, NULL);
    run_in(2, infinity_main, NULL);
}

/* ===========================================================================
 * A match function that tries to wait (issue 13, item 2)
 * ======================================================================== */

/* A predicate that calls amb_receive took cells from under the receive that
 * ran it: messages were lost, the queue length wrapped to SIZE_MAX and the
 * runtime crashed when freed. Every wait is refused there (AMB_ESTATE) and
 * does nothing; sending, yielding and a process_info of oneself still work,
 * and the outer receive ends as if the predicate had done nothing. */
enum {
    NW_RECEIVE,
    NW_RECEIVE_IF,
    NW_RECEIVE_MATCH,
    NW_RECEIVE_AFTER,
    NW_SLEEP,
    NW_FLUSH,
    NW_INFO_OTHER,
    NW_BLOCKING,
    NW_SEND,
    NW_YIELD,
    NW_INFO_SELF,
    NW_N
};

typedef struct nested_obs {
    amb_proc *self;
    amb_pid other;
    amb_term ref;
    int rc[NW_N];
    int calls;
} nested_obs;

static bool any_msg(void *ctx, amb_term msg)
{
    (void)ctx;
    (void)msg;
    return true;
}

static intptr_t nested_job(void *arg)
{
    (void)arg;
    return 1;
}

static bool nested_pred(void *ctx, amb_term msg)
{
    nested_obs *o = ctx;
    amb_proc *self = o->self;
    if (o->calls++ == 0) {
        amb_term x = AMB_NONE;
        amb_proc_info pi;
        o->rc[NW_RECEIVE] = amb_receive(self, 0, &x);
        o->rc[NW_RECEIVE_IF] = amb_receive_if(self, any_msg, NULL, 0, &x);
        o->rc[NW_RECEIVE_MATCH] = amb_receive_match(self, 0, &x, "_");
        o->rc[NW_RECEIVE_AFTER] =
            amb_receive_if_after(self, amb_receive_mark(self), any_msg, NULL, 0, &x);
        o->rc[NW_SLEEP] = amb_sleep(self, 1);
        o->rc[NW_FLUSH] = amb_demonitor(self, o->ref, AMB_DEMONITOR_FLUSH);
        o->rc[NW_INFO_OTHER] = amb_process_info(self, o->other, &pi);
        o->rc[NW_BLOCKING] = amb_blocking_call(self, nested_job, NULL, NULL);
        o->rc[NW_SEND] = amb_send(self, amb_self(self), mk_int(99));
        o->rc[NW_YIELD] = amb_yield(self);
        o->rc[NW_INFO_SELF] = amb_process_info(self, amb_self(self), &pi);
    }
    return int_of(msg) == 3;
}

static void nested_other(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK(self, RECV(self) == AMB_ATOM_STOP);
}

static void nested_main(amb_proc *self, void *arg)
{
    (void)arg;
    nested_obs o = {.self = self};
    CHECK_OK(self, amb_spawn(self, nested_other, NULL, &o.other));
    CHECK_OK(self, amb_monitor(self, o.other, &o.ref));
    for (int i = 1; i <= 5; i++)
        CHECK_OK(self, amb_send(self, amb_self(self), mk_int(i)));
    amb_term m;
    CHECK_OK(self, amb_receive_if(self, nested_pred, &o, DEADLINE_MS, &m));
    CHECK_EQ(self, int_of(m), 3);
    for (int i = NW_RECEIVE; i <= NW_BLOCKING; i++)
        CHECK_RC(self, AMB_ESTATE, o.rc[i]);
    CHECK_OK(self, o.rc[NW_SEND]);
    CHECK_OK(self, o.rc[NW_YIELD]);
    CHECK_OK(self, o.rc[NW_INFO_SELF]);
    /* Nothing was taken, lost or counted twice: 1, 2, 4, 5, then 99. */
    CHECK_EQ(self, amb_message_queue_len(self), 5);
    static const int64_t rest[] = {1, 2, 4, 5, 99};
    for (size_t i = 0; i < AMB_COUNTOF(rest); i++)
        CHECK_EQ(self, int_of(RECV(self)), rest[i]);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    /* The refused flush left the monitor alone, and the refused waits
     * left no timer or wake-up behind to end a later wait early. */
    CHECK_OK(self, amb_demonitor(self, o.ref, AMB_DEMONITOR_FLUSH));
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 20, &m));
    intptr_t r = 0;
    CHECK_OK(self, amb_blocking_call(self, nested_job, NULL, &r));
    CHECK_EQ(self, r, 1);
    CHECK_OK(self, amb_send(self, o.other, AMB_ATOM_STOP));
}

AMB_TEST(a_match_function_cannot_wait_and_the_receive_stays_whole)
{
    run_in(1, nested_main, NULL);
    run_in(2, nested_main, NULL);
}

/* ===========================================================================
 * Borrows (issue 13, item 7)
 * ======================================================================== */

/* amb_sleep was a receive in disguise: it freed the message the caller had
 * just received, and the next message sent reused its cell, so the term the
 * caller still held read as another one. Sleeping takes nothing and ends no
 * borrow; the same for a receive after a mark (the receive of every library
 * call that waits), which has a borrow of its own. */
static void borrow_sender(amb_proc *self, void *arg)
{
    amb_pid to = (amb_pid)(uintptr_t)arg;
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self, amb_send(self, to, amb_pack(h, "{second,~i,~i,~i}", 7, 8, 9)));
    CHECK_OK(self, amb_send(self, to, amb_pack(h, "{third,~i,~i,~i}", 4, 5, 6)));
}

static bool is_third(void *ctx, amb_term msg)
{
    (void)ctx;
    return amb_is_record(msg, amb_atom("third"), 4);
}

static void borrow_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self);
    CHECK_OK(self, amb_send(self, me, amb_pack(h, "{first,~i,~i,~i}", 1, 2, 3)));
    amb_term m;
    CHECK_OK(self, amb_receive(self, 0, &m));
    amb_recv_mark mark = amb_receive_mark(self);
    CHECK_OK(self, amb_spawn(self, borrow_sender, (void *)(uintptr_t)me, NULL));
    /* The sender runs (and allocates its cells) while we sleep. */
    CHECK_OK(self, amb_sleep(self, 20));
    char buf[64];
    CHECK_OK(self, amb_print(m, buf, sizeof buf, NULL));
    CHECK(self, strcmp(buf, "{first,1,2,3}") == 0);
    /* A receive after a mark takes its message into its own borrow. */
    amb_term third;
    CHECK_OK(self, amb_receive_if_after(self, mark, is_third, NULL, DEADLINE_MS, &third));
    CHECK_OK(self, amb_print(m, buf, sizeof buf, NULL));
    CHECK(self, strcmp(buf, "{first,1,2,3}") == 0);
    /* The next plain receive ends the first borrow only. */
    amb_term second = RECV(self);
    CHECK_OK(self, amb_print(second, buf, sizeof buf, NULL));
    CHECK(self, strcmp(buf, "{second,7,8,9}") == 0);
    CHECK_OK(self, amb_print(third, buf, sizeof buf, NULL));
    CHECK(self, strcmp(buf, "{third,4,5,6}") == 0);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(sleep_and_a_receive_after_a_mark_leave_the_last_message_borrowed)
{
    run_in(1, borrow_main, NULL);
    run_in(2, borrow_main, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(receive_takes_the_oldest_message_first),
    AMB_TEST_ENTRY(fifo_per_sender_4_senders_100k_each_on_2_schedulers),
    AMB_TEST_ENTRY(receive_if_takes_the_first_match_and_keeps_the_rest_in_order),
    AMB_TEST_ENTRY(receive_if_finds_a_message_that_arrives_while_waiting),
    AMB_TEST_ENTRY(receive_match_binds_the_first_match_and_keeps_the_rest_in_order),
    AMB_TEST_ENTRY(receive_match_finds_a_message_that_arrives_while_waiting),
    AMB_TEST_ENTRY(receive_match_bad_format_is_eformat_and_consumes_nothing),
    AMB_TEST_ENTRY(receive_match_bad_format_on_an_empty_mailbox_is_eformat),
    AMB_TEST_ENTRY(mark_skips_10000_older_messages_in_o1_and_keeps_them_in_order),
    AMB_TEST_ENTRY(mark_skips_messages_that_arrived_before_it_but_were_not_looked_at),
    AMB_TEST_ENTRY(mark_survives_removal_of_the_marked_message),
    AMB_TEST_ENTRY(an_older_mark_still_skips_only_what_came_before_it),
    AMB_TEST_ENTRY(timeout_zero_polls),
    AMB_TEST_ENTRY(finite_timeout_waits_at_least_as_long_as_asked),
    AMB_TEST_ENTRY(message_before_timeout_wins_and_stale_timeouts_never_show_later),
    AMB_TEST_ENTRY(a_timed_out_receive_leaves_nothing_for_the_next_one),
    AMB_TEST_ENTRY(infinity_waits_until_the_message_arrives),
    AMB_TEST_ENTRY(a_match_function_cannot_wait_and_the_receive_stays_whole),
    AMB_TEST_ENTRY(sleep_and_a_receive_after_a_mark_leave_the_last_message_borrowed))

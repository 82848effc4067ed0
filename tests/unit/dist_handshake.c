/*
 * dist_handshake.c - the version-6 handshake state machine
 * (src/dist/handshake.h): two machines talking to each other through every
 * path (ok, ok_simultaneous, named, alive true/false, nok, not_allowed,
 * good and bad cookie), input split at every byte, and hand-made packets
 * for what a bad peer sends (truncated, oversized, wrong version, bad
 * names, missing mandatory flags, unknown statuses, wrong lengths), and
 * the same machine with the 4-byte packet lengths of TLS distribution.
 *
 * The digest vectors are erl's own: erlang:md5(["secret" |
 * integer_to_list(C)]) on an OTP 25 node, the expression dist_util uses.
 */
#include "amb_test.h"
#include "dist/dist_flags.h"
#include "dist/handshake.h"

static const uint8_t cookie[] = "secret";
#define COOKIE_LEN (sizeof cookie - 1)

static amb__hs_config config(const char *name, const char *peer)
{
    amb__hs_config c = {.name = name,
                        .name_len = strlen(name),
                        .cookie = cookie,
                        .cookie_len = COOKIE_LEN,
                        .creation = 0x01020304};
    if (peer != NULL) {
        c.peer_name = peer;
        c.peer_name_len = strlen(peer);
    }
    return c;
}

/* Moves all output of from into to (byte by byte when split). Returns the
 * bytes moved. */
static size_t move(amb__handshake *from, amb__handshake *to, bool split)
{
    size_t len, moved = 0;
    const uint8_t *out = amb__handshake_output(from, &len);
    if (len == 0 || amb__handshake_state(to) != AMB__HS_RUNNING)
        return 0;
    uint8_t copy[sizeof from->out];
    memcpy(copy, out, len);
    size_t step = split ? 1 : len;
    for (size_t off = 0; off < len && amb__handshake_state(to) == AMB__HS_RUNNING;
         off += step) {
        size_t n = len - off < step ? len - off : step, took;
        assert_ok(amb__handshake_feed(to, copy + off, n, &took));
        moved += took;
        if (took < n)
            break;
    }
    amb__handshake_output_done(from, moved);
    return moved;
}

/* Pumps bytes both ways until neither side moves. */
static void pump(amb__handshake *a, amb__handshake *b, bool split)
{
    while (move(a, b, split) + move(b, a, split) > 0)
        ;
}

static void start(amb__handshake *a, amb__handshake *b, const char *peer_of_a)
{
    amb__hs_config ca = config("a@host", peer_of_a), cb = config("b@host", NULL);
    cb.creation = 0x0a0b0c0d;
    assert_ok(amb__handshake_init(a, AMB__HS_INITIATOR, &ca));
    assert_ok(amb__handshake_init(b, AMB__HS_ACCEPTOR, &cb));
}

/* Feeds one packet (body with its length) to hs. */
static void feed_packet(amb__handshake *hs, const void *body, size_t len)
{
    uint8_t buf[4096];
    buf[0] = (uint8_t)(len >> 8);
    buf[1] = (uint8_t)len;
    memcpy(buf + 2, body, len);
    size_t took;
    assert_ok(amb__handshake_feed(hs, buf, len + 2, &took));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* An 'N' name packet (initiator's) into buf; returns its body length. */
static size_t name_packet(uint8_t *buf, uint64_t flags, const char *name)
{
    size_t n = strlen(name);
    buf[0] = 'N';
    put64(buf + 1, flags);
    memset(buf + 9, 0, 4);
    buf[9 + 3] = 7; /* creation 7 */
    buf[13] = (uint8_t)(n >> 8);
    buf[14] = (uint8_t)n;
    memcpy(buf + 15, name, n);
    return 15 + n;
}

AMB_TEST(digest_is_erls)
{
    static const uint8_t d12345[] = {212, 4,   125, 62,  86, 230, 214, 214,
                                     63,  125, 22,  184, 92, 210, 250, 136};
    static const uint8_t dmax[] = {93,  253, 24,  30, 105, 170, 88, 124,
                                   200, 18,  235, 51, 62,  101, 54, 182};
    uint8_t d[AMB__HS_DIGEST_SIZE];
    assert_ok(amb__handshake_digest(cookie, COOKIE_LEN, 12345, d));
    assert_memory_equal(d, d12345, sizeof d);
    assert_ok(amb__handshake_digest(cookie, COOKIE_LEN, UINT32_MAX, d));
    assert_memory_equal(d, dmax, sizeof d);
}

AMB_TEST(good_cookie_goes_up_on_both_sides)
{
    for (int split = 0; split <= 1; split++) {
        amb__handshake a, b;
        start(&a, &b, "b@host");
        /* The initiator's first packet, byte for byte. */
        size_t len;
        const uint8_t *out = amb__handshake_output(&a, &len);
        assert_int_equal(len, 2 + 15 + 6);
        uint8_t want[2 + 15 + 6] = {0, 21, 'N'};
        put64(want + 3, AMB__DFLAGS_DEFAULT);
        memcpy(want + 11, (uint8_t[]){1, 2, 3, 4, 0, 6}, 6);
        memcpy(want + 17, "a@host", 6);
        assert_memory_equal(out, want, len);

        move(&a, &b, split);
        assert_int_equal(amb__handshake_state(&b), AMB__HS_NEED_STATUS);
        const amb__hs_result *rb = amb__handshake_result(&b);
        assert_string_equal(rb->peer_name, "a@host");
        assert_int_equal(rb->peer_creation, 0x01020304);
        assert_true(rb->peer_flags == AMB__DFLAGS_DEFAULT);
        assert_rc(AMB_ESTATE, amb__handshake_feed(&b, (const uint8_t *)"x", 1, &len));
        assert_ok(amb__handshake_set_status(&b, AMB__HS_STATUS_OK, NULL, 0, 0));
        pump(&a, &b, split);
        assert_int_equal(amb__handshake_state(&a), AMB__HS_UP);
        assert_int_equal(amb__handshake_state(&b), AMB__HS_UP);
        const amb__hs_result *ra = amb__handshake_result(&a);
        assert_string_equal(ra->peer_name, "b@host");
        assert_int_equal(ra->peer_creation, 0x0a0b0c0d);
        assert_int_equal(ra->status, AMB__HS_STATUS_OK);
        assert_true(ra->flags == AMB__DFLAGS_DEFAULT);
        assert_true(rb->flags == ra->flags);
        assert_int_equal(ra->failure, AMB__HS_FAIL_NONE);
        assert_false(rb->replaced_alive);
        /* Nothing is left to send, and the machines take no more input. */
        amb__handshake_output(&a, &len);
        assert_int_equal(len, 0);
        assert_rc(AMB_ESTATE, amb__handshake_feed(&a, (const uint8_t *)"x", 1, &len));
        amb__handshake_eof(&a);
        assert_int_equal(amb__handshake_state(&a), AMB__HS_UP);
    }
}

/* The values docs/design/distribution.md's flag table states. */
AMB_TEST(offered_flags_are_the_documented_values)
{
    assert_true(AMB__DFLAGS_DEFAULT == UINT64_C(0xd07df5fbc));
    assert_true(AMB__DFLAGS_NODE == UINT64_C(0xd07df7fbc));
    /* What an OTP 25 node offers, intersected: our whole node offer. */
    assert_true((AMB__DFLAGS_NODE & UINT64_C(0xd07df7fbd)) == AMB__DFLAGS_NODE);
}

AMB_TEST(negotiated_flags_are_the_intersection)
{
    amb__handshake a, b;
    amb__hs_config ca = config("a@host", NULL), cb = config("b@host", NULL);
    ca.flags = AMB__DFLAGS_MANDATORY | AMB__DFLAG_PUBLISHED | AMB__DFLAG_FRAGMENTS;
    cb.flags = AMB__DFLAGS_MANDATORY | AMB__DFLAG_PUBLISHED | AMB__DFLAG_ALIAS;
    assert_ok(amb__handshake_init(&a, AMB__HS_INITIATOR, &ca));
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    move(&a, &b, false);
    assert_ok(amb__handshake_set_status(&b, AMB__HS_STATUS_OK_SIMULTANEOUS, NULL, 0, 0));
    pump(&a, &b, false);
    assert_int_equal(amb__handshake_state(&a), AMB__HS_UP);
    assert_int_equal(amb__handshake_result(&a)->status, AMB__HS_STATUS_OK_SIMULTANEOUS);
    uint64_t both = AMB__DFLAGS_MANDATORY | AMB__DFLAG_PUBLISHED;
    assert_true(amb__handshake_result(&a)->flags == both);
    assert_true(amb__handshake_result(&b)->flags == both);
}

AMB_TEST(bad_cookie_fails_the_acceptor_and_closes_the_initiator)
{
    amb__handshake a, b;
    amb__hs_config ca = config("a@host", NULL), cb = config("b@host", NULL);
    ca.cookie = (const uint8_t *)"wrong";
    ca.cookie_len = 5;
    assert_ok(amb__handshake_init(&a, AMB__HS_INITIATOR, &ca));
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    move(&a, &b, false);
    assert_ok(amb__handshake_set_status(&b, AMB__HS_STATUS_OK, NULL, 0, 0));
    pump(&a, &b, false);
    assert_int_equal(amb__handshake_state(&b), AMB__HS_FAILED);
    assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_COOKIE);
    size_t len;
    amb__handshake_output(&b, &len);
    assert_int_equal(len, 0); /* OTP closes without a word */
    assert_int_equal(amb__handshake_state(&a), AMB__HS_RUNNING);
    amb__handshake_eof(&a);
    assert_int_equal(amb__handshake_state(&a), AMB__HS_FAILED);
    assert_int_equal(amb__handshake_result(&a)->failure, AMB__HS_FAIL_CLOSED);
}

AMB_TEST(bad_ack_digest_fails_the_initiator)
{
    amb__handshake a, b;
    amb__hs_config ca = config("a@host", NULL), cb = config("b@host", NULL);
    assert_ok(amb__handshake_init(&a, AMB__HS_INITIATOR, &ca));
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    move(&a, &b, false);
    assert_ok(amb__handshake_set_status(&b, AMB__HS_STATUS_OK, NULL, 0, 0));
    move(&b, &a, false);
    move(&a, &b, false); /* the reply: b is UP and has its ack queued */
    assert_int_equal(amb__handshake_state(&b), AMB__HS_UP);
    size_t len;
    const uint8_t *out = amb__handshake_output(&b, &len);
    assert_int_equal(len, 2 + 17);
    uint8_t ack[2 + 17];
    memcpy(ack, out, len);
    ack[5] ^= 1;
    assert_ok(amb__handshake_feed(&a, ack, sizeof ack, &len));
    assert_int_equal(amb__handshake_state(&a), AMB__HS_FAILED);
    assert_int_equal(amb__handshake_result(&a)->failure, AMB__HS_FAIL_COOKIE);
}

AMB_TEST(name_in_use_alive_then_true_goes_on)
{
    amb__handshake a, b;
    start(&a, &b, NULL);
    move(&a, &b, false);
    assert_ok(amb__handshake_set_status(&b, AMB__HS_STATUS_ALIVE, NULL, 0, 0));
    move(&b, &a, false);
    assert_int_equal(amb__handshake_state(&a), AMB__HS_NEED_ALIVE);
    assert_int_equal(amb__handshake_result(&a)->status, AMB__HS_STATUS_ALIVE);
    assert_rc(AMB_ESTATE, amb__handshake_set_status(&a, AMB__HS_STATUS_OK, NULL, 0, 0));
    assert_ok(amb__handshake_answer_alive(&a, true));
    assert_rc(AMB_ESTATE, amb__handshake_answer_alive(&a, true));
    pump(&a, &b, false);
    assert_int_equal(amb__handshake_state(&a), AMB__HS_UP);
    assert_int_equal(amb__handshake_state(&b), AMB__HS_UP);
    assert_true(amb__handshake_result(&b)->replaced_alive);
}

AMB_TEST(name_in_use_alive_then_false_refuses)
{
    amb__handshake a, b;
    start(&a, &b, NULL);
    move(&a, &b, false);
    assert_ok(amb__handshake_set_status(&b, AMB__HS_STATUS_ALIVE, NULL, 0, 0));
    move(&b, &a, false);
    assert_ok(amb__handshake_answer_alive(&a, false));
    assert_int_equal(amb__handshake_state(&a), AMB__HS_FAILED);
    assert_int_equal(amb__handshake_result(&a)->failure, AMB__HS_FAIL_REFUSED);
    size_t len;
    const uint8_t *out = amb__handshake_output(&a, &len);
    assert_int_equal(len, 2 + 6);
    assert_memory_equal(out, "\0\6sfalse", 8);
    move(&a, &b, false);
    assert_int_equal(amb__handshake_state(&b), AMB__HS_FAILED);
    assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_REFUSED);
}

AMB_TEST(nok_and_not_allowed_refuse)
{
    static const amb__hs_status st[] = {AMB__HS_STATUS_NOK, AMB__HS_STATUS_NOT_ALLOWED};
    static const char *const text[] = {"\0\4snok", "\0\14snot_allowed"};
    static const size_t tlen[] = {6, 14};
    for (size_t i = 0; i < 2; i++) {
        amb__handshake a, b;
        start(&a, &b, NULL);
        move(&a, &b, false);
        assert_ok(amb__handshake_set_status(&b, st[i], NULL, 0, 0));
        assert_int_equal(amb__handshake_state(&b), AMB__HS_FAILED);
        assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_REFUSED);
        size_t len;
        const uint8_t *out = amb__handshake_output(&b, &len);
        assert_int_equal(len, tlen[i]);
        assert_memory_equal(out, text[i], len);
        move(&b, &a, false);
        assert_int_equal(amb__handshake_state(&a), AMB__HS_FAILED);
        assert_int_equal(amb__handshake_result(&a)->failure, AMB__HS_FAIL_REFUSED);
        assert_int_equal(amb__handshake_result(&a)->status, st[i]);
    }
}

AMB_TEST(named_gives_the_initiator_its_name)
{
    amb__handshake a, b;
    amb__hs_config ca = config("host", NULL), cb = config("b@host", NULL);
    ca.flags = AMB__DFLAGS_DEFAULT | AMB__DFLAG_NAME_ME;
    assert_ok(amb__handshake_init(&a, AMB__HS_INITIATOR, &ca));
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    move(&a, &b, false);
    assert_int_equal(amb__handshake_state(&b), AMB__HS_NEED_STATUS);
    assert_string_equal(amb__handshake_result(&b)->peer_name, "host");
    /* Such a peer goes on only with named:, and only at its own host. */
    assert_rc(AMB_EBADARG, amb__handshake_set_status(&b, AMB__HS_STATUS_OK, NULL, 0, 0));
    assert_rc(AMB_EBADARG,
              amb__handshake_set_status(&b, AMB__HS_STATUS_NAMED, "x@other", 7, 42));
    assert_rc(AMB_EBADARG,
              amb__handshake_set_status(&b, AMB__HS_STATUS_NAMED, "x", 1, 42));
    assert_ok(amb__handshake_set_status(&b, AMB__HS_STATUS_NAMED, "dyn1@host", 9, 42));
    pump(&a, &b, false);
    assert_int_equal(amb__handshake_state(&a), AMB__HS_UP);
    assert_int_equal(amb__handshake_state(&b), AMB__HS_UP);
    assert_string_equal(amb__handshake_result(&a)->name, "dyn1@host");
    assert_int_equal(amb__handshake_result(&a)->creation, 42);
    assert_string_equal(amb__handshake_result(&b)->peer_name, "dyn1@host");
    assert_int_equal(amb__handshake_result(&b)->peer_creation, 42);
}

AMB_TEST(named_status_is_refused_when_not_asked_for)
{
    amb__handshake a, b;
    start(&a, &b, NULL);
    move(&a, &b, false);
    assert_rc(AMB_EBADARG,
              amb__handshake_set_status(&b, AMB__HS_STATUS_NAMED, "x@host", 6, 1));
    /* ... and an initiator that gets one anyway fails. */
    uint8_t body[32] = "snamed:";
    body[7] = 0;
    body[8] = 6;
    memcpy(body + 9, "x@host", 6);
    memset(body + 15, 0, 4);
    feed_packet(&a, body, 19);
    assert_int_equal(amb__handshake_state(&a), AMB__HS_FAILED);
    assert_int_equal(amb__handshake_result(&a)->failure, AMB__HS_FAIL_MALFORMED);
}

AMB_TEST(missing_mandatory_flags_are_not_allowed)
{
    amb__handshake b;
    amb__hs_config cb = config("b@host", NULL);
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    uint8_t body[64];
    size_t n = name_packet(body, AMB__DFLAGS_MANDATORY & ~AMB__DFLAG_V4_NC, "a@host");
    feed_packet(&b, body, n);
    assert_int_equal(amb__handshake_state(&b), AMB__HS_FAILED);
    const amb__hs_result *r = amb__handshake_result(&b);
    assert_int_equal(r->failure, AMB__HS_FAIL_FLAGS);
    assert_true(r->missing == AMB__DFLAG_V4_NC);
    assert_int_equal(r->status, AMB__HS_STATUS_NOT_ALLOWED);
    size_t len;
    const uint8_t *out = amb__handshake_output(&b, &len);
    assert_int_equal(len, 14);
    assert_memory_equal(out, "\0\14snot_allowed", 14);

    /* config.required adds to the mandatory set. */
    cb.required = AMB__DFLAG_DIST_MONITOR_NAME;
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    n = name_packet(body, AMB__DFLAGS_MANDATORY, "a@host");
    feed_packet(&b, body, n);
    assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_FLAGS);
    assert_true(amb__handshake_result(&b)->missing == AMB__DFLAG_DIST_MONITOR_NAME);
}

AMB_TEST(mandatory_25_digest_stands_for_its_flags)
{
    amb__handshake b;
    amb__hs_config cb = config("b@host", NULL);
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    uint8_t body[64];
    uint64_t flags =
        AMB__DFLAG_MANDATORY_25_DIGEST | AMB__DFLAG_UNLINK_ID | AMB__DFLAG_V4_NC;
    size_t n = name_packet(body, flags, "a@host");
    feed_packet(&b, body, n);
    assert_int_equal(amb__handshake_state(&b), AMB__HS_NEED_STATUS);
    assert_true(amb__handshake_result(&b)->peer_flags ==
                (flags | AMB__DFLAGS_MANDATORY_25));
}

AMB_TEST(initiator_checks_the_challenge)
{
    /* The acceptor lacks a mandatory flag; then it is not the node called;
     * then its name is no node name. */
    static const struct {
        uint64_t flags;
        const char *name;
        amb__hs_failure want;
    } cases[] = {
        {AMB__DFLAGS_MANDATORY & ~AMB__DFLAG_UNLINK_ID, "b@host", AMB__HS_FAIL_FLAGS},
        {AMB__DFLAGS_MANDATORY, "c@host", AMB__HS_FAIL_NAME_MISMATCH},
        {AMB__DFLAGS_MANDATORY, "bhost", AMB__HS_FAIL_BAD_NAME},
    };
    for (size_t i = 0; i < AMB_COUNTOF(cases); i++) {
        amb__handshake a;
        amb__hs_config ca = config("a@host", "b@host");
        assert_ok(amb__handshake_init(&a, AMB__HS_INITIATOR, &ca));
        feed_packet(&a, "sok", 3);
        uint8_t body[64] = {'N'};
        size_t nl = strlen(cases[i].name);
        put64(body + 1, cases[i].flags);
        memset(body + 9, 0, 8);
        body[17] = 0;
        body[18] = (uint8_t)nl;
        memcpy(body + 19, cases[i].name, nl);
        feed_packet(&a, body, 19 + nl);
        assert_int_equal(amb__handshake_state(&a), AMB__HS_FAILED);
        assert_int_equal(amb__handshake_result(&a)->failure, cases[i].want);
    }
}

AMB_TEST(bad_names_are_refused)
{
    static const char *const bad[] = {"nohost", "a@b@c", "@h", "a@", "a\xffz@h"};
    for (size_t i = 0; i < AMB_COUNTOF(bad); i++) {
        amb__handshake b;
        amb__hs_config cb = config("b@host", NULL);
        assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
        uint8_t body[64];
        size_t n = name_packet(body, AMB__DFLAGS_DEFAULT, bad[i]);
        feed_packet(&b, body, n);
        assert_int_equal(amb__handshake_state(&b), AMB__HS_FAILED);
        assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_BAD_NAME);
    }
    /* A name whose length runs past the packet. */
    amb__handshake b;
    amb__hs_config cb = config("b@host", NULL);
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    uint8_t body[64];
    size_t n = name_packet(body, AMB__DFLAGS_DEFAULT, "a@host");
    feed_packet(&b, body, n - 1);
    assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_MALFORMED);
    /* The config is checked too. */
    amb__hs_config c = config("nohost", NULL);
    assert_rc(AMB_EBADARG, amb__handshake_init(&b, AMB__HS_ACCEPTOR, &c));
    c = config("a@h", NULL);
    c.cookie_len = 0;
    assert_rc(AMB_EBADARG, amb__handshake_init(&b, AMB__HS_ACCEPTOR, &c));
    c = config("a@h", NULL);
    c.flags = AMB__DFLAG_PUBLISHED;
    assert_rc(AMB_EBADARG, amb__handshake_init(&b, AMB__HS_ACCEPTOR, &c));
    c = config("host", NULL);
    c.flags = AMB__DFLAGS_DEFAULT | AMB__DFLAG_NAME_ME;
    assert_rc(AMB_EBADARG, amb__handshake_init(&b, AMB__HS_ACCEPTOR, &c));
}

AMB_TEST(wrong_version_is_refused)
{
    amb__handshake b;
    amb__hs_config cb = config("b@host", NULL);
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    /* OTP 22's 'n' Version:16 Flags:32 Name. */
    static const uint8_t old[] = {'n', 0, 5, 0, 0x0d, 0x7f, 0xfd, 'a', '@', 'h'};
    feed_packet(&b, old, sizeof old);
    assert_int_equal(amb__handshake_state(&b), AMB__HS_FAILED);
    assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_VERSION);
}

AMB_TEST(oversized_and_empty_packets_are_refused)
{
    amb__handshake b;
    amb__hs_config cb = config("b@host", NULL);
    size_t took;
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    static const uint8_t huge[] = {0xff, 0xff, 'N', 0, 0};
    assert_ok(amb__handshake_feed(&b, huge, sizeof huge, &took));
    assert_int_equal(took, 2); /* refused from its length, body not read */
    assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_OVERSIZED);
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    static const uint8_t empty[] = {0, 0};
    assert_ok(amb__handshake_feed(&b, empty, sizeof empty, &took));
    assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_MALFORMED);
    /* The largest packet allowed is read whole (and is no name message). */
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    static uint8_t max[2 + AMB__HS_PACKET_MAX];
    max[0] = AMB__HS_PACKET_MAX >> 8;
    max[1] = AMB__HS_PACKET_MAX & 0xff;
    max[2] = 'x';
    assert_ok(amb__handshake_feed(&b, max, sizeof max, &took));
    assert_int_equal(took, sizeof max);
    assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_MALFORMED);
}

/* TLS distribution (inet_tls_dist) frames the handshake with 4-byte
 * lengths: the same exchange, every packet [Len:32][Body], split at every
 * byte too; an oversized length is refused from its 4 bytes. */
AMB_TEST(four_byte_lengths_as_inet_tls_sends_them)
{
    for (int split = 0; split <= 1; split++) {
        amb__handshake a, b;
        amb__hs_config ca = config("a@host", "b@host"), cb = config("b@host", NULL);
        ca.len_size = cb.len_size = 4;
        assert_ok(amb__handshake_init(&a, AMB__HS_INITIATOR, &ca));
        assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
        size_t len;
        const uint8_t *out = amb__handshake_output(&a, &len);
        assert_int_equal(len, 4 + 15 + 6);
        uint8_t head[] = {0, 0, 0, 21, 'N'};
        assert_memory_equal(out, head, sizeof head);
        move(&a, &b, split);
        assert_int_equal(amb__handshake_state(&b), AMB__HS_NEED_STATUS);
        assert_ok(amb__handshake_set_status(&b, AMB__HS_STATUS_OK, NULL, 0, 0));
        out = amb__handshake_output(&b, &len);
        uint8_t status[] = {0, 0, 0, 3, 's', 'o', 'k'};
        assert_true(len > sizeof status);
        assert_memory_equal(out, status, sizeof status);
        pump(&a, &b, split);
        assert_int_equal(amb__handshake_state(&a), AMB__HS_UP);
        assert_int_equal(amb__handshake_state(&b), AMB__HS_UP);
    }
    amb__handshake b;
    amb__hs_config cb = config("b@host", NULL);
    cb.len_size = 4;
    size_t took;
    assert_ok(amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
    static const uint8_t huge[] = {0, 1, 0, 0, 'N', 0};
    assert_ok(amb__handshake_feed(&b, huge, sizeof huge, &took));
    assert_int_equal(took, 4);
    assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_OVERSIZED);
    cb.len_size = 3;
    assert_rc(AMB_EBADARG, amb__handshake_init(&b, AMB__HS_ACCEPTOR, &cb));
}

AMB_TEST(truncated_handshake_fails_on_eof)
{
    amb__handshake a, b;
    start(&a, &b, NULL);
    size_t len, took;
    const uint8_t *out = amb__handshake_output(&a, &len);
    assert_ok(amb__handshake_feed(&b, out, len - 1, &took));
    assert_int_equal(took, len - 1);
    assert_int_equal(amb__handshake_state(&b), AMB__HS_RUNNING);
    amb__handshake_eof(&b);
    assert_int_equal(amb__handshake_state(&b), AMB__HS_FAILED);
    assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_CLOSED);
}

AMB_TEST(unknown_statuses_and_wrong_lengths_are_malformed)
{
    static const char *const statuses[] = {"sOK", "sokay", "x", "s", "sok\n", "snamed"};
    for (size_t i = 0; i < AMB_COUNTOF(statuses); i++) {
        amb__handshake a;
        amb__hs_config ca = config("a@host", NULL);
        assert_ok(amb__handshake_init(&a, AMB__HS_INITIATOR, &ca));
        feed_packet(&a, statuses[i], strlen(statuses[i]));
        assert_int_equal(amb__handshake_state(&a), AMB__HS_FAILED);
        assert_int_equal(amb__handshake_result(&a)->failure, AMB__HS_FAIL_MALFORMED);
    }
    /* A challenge reply one byte short, then one byte long. */
    for (int extra = -1; extra <= 1; extra += 2) {
        amb__handshake a, b;
        start(&a, &b, NULL);
        move(&a, &b, false);
        assert_ok(amb__handshake_set_status(&b, AMB__HS_STATUS_OK, NULL, 0, 0));
        move(&b, &a, false);
        size_t len;
        const uint8_t *out = amb__handshake_output(&a, &len);
        assert_int_equal(len, 2 + 21);
        uint8_t reply[32] = {0};
        memcpy(reply, out + 2, 21);
        feed_packet(&b, reply, (size_t)(21 + extra));
        assert_int_equal(amb__handshake_state(&b), AMB__HS_FAILED);
        assert_int_equal(amb__handshake_result(&b)->failure, AMB__HS_FAIL_MALFORMED);
    }
}

AMB_TEST(bytes_after_the_last_packet_are_left_for_frames)
{
    amb__handshake a, b;
    start(&a, &b, NULL);
    move(&a, &b, false);
    assert_ok(amb__handshake_set_status(&b, AMB__HS_STATUS_OK, NULL, 0, 0));
    move(&b, &a, false);
    move(&a, &b, false);
    size_t len, took;
    const uint8_t *out = amb__handshake_output(&b, &len);
    uint8_t stream[64];
    memcpy(stream, out, len);
    memset(stream + len, 0, 4); /* a tick right behind the ack */
    assert_ok(amb__handshake_feed(&a, stream, len + 4, &took));
    assert_int_equal(took, len);
    assert_int_equal(amb__handshake_state(&a), AMB__HS_UP);
}

AMB_TEST(names_of_statuses_and_failures)
{
    assert_string_equal(amb__handshake_status_name(AMB__HS_STATUS_OK_SIMULTANEOUS),
                        "ok_simultaneous");
    assert_string_equal(amb__handshake_status_name((amb__hs_status)99), "?");
    assert_string_equal(amb__handshake_failure_name(AMB__HS_FAIL_COOKIE), "cookie");
    assert_true(amb__handshake_name_valid("a@b", 3, false));
    assert_false(amb__handshake_name_valid("a@b", 3, true));
    assert_true(amb__handshake_name_valid("b", 1, true));
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(digest_is_erls),
              AMB_TEST_ENTRY(good_cookie_goes_up_on_both_sides),
              AMB_TEST_ENTRY(offered_flags_are_the_documented_values),
              AMB_TEST_ENTRY(negotiated_flags_are_the_intersection),
              AMB_TEST_ENTRY(bad_cookie_fails_the_acceptor_and_closes_the_initiator),
              AMB_TEST_ENTRY(bad_ack_digest_fails_the_initiator),
              AMB_TEST_ENTRY(name_in_use_alive_then_true_goes_on),
              AMB_TEST_ENTRY(name_in_use_alive_then_false_refuses),
              AMB_TEST_ENTRY(nok_and_not_allowed_refuse),
              AMB_TEST_ENTRY(named_gives_the_initiator_its_name),
              AMB_TEST_ENTRY(named_status_is_refused_when_not_asked_for),
              AMB_TEST_ENTRY(missing_mandatory_flags_are_not_allowed),
              AMB_TEST_ENTRY(mandatory_25_digest_stands_for_its_flags),
              AMB_TEST_ENTRY(initiator_checks_the_challenge),
              AMB_TEST_ENTRY(bad_names_are_refused),
              AMB_TEST_ENTRY(wrong_version_is_refused),
              AMB_TEST_ENTRY(oversized_and_empty_packets_are_refused),
              AMB_TEST_ENTRY(four_byte_lengths_as_inet_tls_sends_them),
              AMB_TEST_ENTRY(truncated_handshake_fails_on_eof),
              AMB_TEST_ENTRY(unknown_statuses_and_wrong_lengths_are_malformed),
              AMB_TEST_ENTRY(bytes_after_the_last_packet_are_left_for_frames),
              AMB_TEST_ENTRY(names_of_statuses_and_failures))

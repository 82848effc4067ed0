/*
 * io_packet.c - the {packet, raw | 1 | 2 | 4 | line} receive buffer
 * (src/io/packet.h): packets cut right at every chunk size, empty packets,
 * limits refused from the header or after max bytes with the buffer still
 * within its bound (the "1 GiB line" case), the sticky error and setopts
 * clearing it, a mode change mid-stream, the end of a stream in each mode,
 * trimming to nothing, the send-side header, and out-of-memory leaving the
 * buffer as it was.
 */
#include "amb_test.h"
#include "io/packet.h"

static amb__packet make(amb__packet_mode mode, size_t max)
{
    amb__packet p;
    amb__packet_opts o = {.mode = mode, .max = max};
    assert_ok(amb__packet_init(&p, &o));
    return p;
}

static void feed_all(amb__packet *p, const void *data, size_t len)
{
    size_t used = 0;
    assert_ok(amb__packet_feed(p, data, len, &used));
    assert_int_equal(used, len);
}

static void expect_packet(amb__packet *p, const char *want, size_t want_len)
{
    const uint8_t *d;
    size_t n;
    assert_ok(amb__packet_next(p, &d, &n));
    assert_int_equal(n, want_len);
    assert_memory_equal(d, want, want_len);
}

/* Feeds stream in chunks of chunk bytes, collecting packets into out (each
 * followed by '|'); returns the text collected. */
static size_t frame_in_chunks(amb__packet_mode mode, const uint8_t *stream, size_t len,
                              size_t chunk, char *out, size_t cap)
{
    amb__packet p = make(mode, 0);
    size_t w = 0;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        feed_all(&p, stream + off, n);
        const uint8_t *d;
        size_t dl;
        int rc;
        while ((rc = amb__packet_next(&p, &d, &dl)) == 0) {
            assert_true(w + dl + 1 <= cap);
            memcpy(out + w, d, dl);
            w += dl;
            out[w++] = '|';
        }
        assert_rc(AMB_EAGAIN, rc);
    }
    assert_int_equal(amb__packet_buffered(&p), 0);
    amb__packet_destroy(&p);
    return w;
}

AMB_TEST(length_prefixed_packets_are_cut_right_at_every_chunk_size)
{
    static const uint8_t s1[] = {3, 'a', 'b', 'c', 0, 1, 'x', 2, 'y', 'z'};
    static const uint8_t s2[] = {0, 3, 'a', 'b', 'c', 0, 0, 0, 1, 'x', 0, 2, 'y', 'z'};
    static const uint8_t s4[] = {0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0,   0,
                                 0, 0, 0, 1, 'x', 0,   0,   0, 2, 'y', 'z'};
    static const char want[] = "abc||x|yz|"; /* the empty packet is kept */
    char out[64];
    for (size_t chunk = 1; chunk <= sizeof s4; chunk++) {
        size_t n = frame_in_chunks(AMB__PACKET_1, s1, sizeof s1, chunk, out, sizeof out);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(out, want, n);
        n = frame_in_chunks(AMB__PACKET_2, s2, sizeof s2, chunk, out, sizeof out);
        assert_memory_equal(out, want, n);
        n = frame_in_chunks(AMB__PACKET_4, s4, sizeof s4, chunk, out, sizeof out);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(out, want, n);
    }
}

AMB_TEST(lines_are_cut_after_their_delimiter)
{
    static const char s[] = "GET /\r\nHost: x\r\n\r\nno-newline";
    char out[64];
    for (size_t chunk = 1; chunk < sizeof s; chunk++) {
        size_t n = frame_in_chunks(AMB__PACKET_LINE, (const uint8_t *)s,
                                   sizeof s - 1 - 10, chunk, out, sizeof out);
        static const char want[] = "GET /\r\n|Host: x\r\n|\r\n|";
        assert_int_equal(n, strlen(want));
        assert_memory_equal(out, want, n);
    }
    /* another delimiter (Erlang's line_delimiter) */
    amb__packet p;
    amb__packet_opts o = {.mode = AMB__PACKET_LINE, .delim = ';'};
    assert_ok(amb__packet_init(&p, &o));
    feed_all(&p, "a;bc;\nd", 7);
    expect_packet(&p, "a;", 2);
    expect_packet(&p, "bc;", 3);
    const uint8_t *d;
    size_t n;
    assert_rc(AMB_EAGAIN, amb__packet_next(&p, &d, &n));
    amb__packet_destroy(&p);
}

AMB_TEST(a_header_above_max_is_refused_before_its_bytes_are_buffered)
{
    amb__packet p = make(AMB__PACKET_4, 100);
    const uint8_t big[] = {0x40, 0, 0, 0}; /* announces 1 GiB */
    feed_all(&p, big, sizeof big);
    const uint8_t *d;
    size_t n;
    assert_rc(AMB_EMSGSIZE, amb__packet_next(&p, &d, &n));
    assert_true(p.cap <= 4 + 100); /* never more than header + max */
    assert_rc(AMB_EMSGSIZE, amb__packet_next(&p, &d, &n)); /* sticky */
    assert_rc(AMB_EMSGSIZE, amb__packet_finish(&p, &d, &n));
    amb__packet_destroy(&p);

    /* exactly max is fine, max + 1 is not */
    p = make(AMB__PACKET_2, 5);
    uint8_t ok[] = {0, 5, 1, 2, 3, 4, 5, 0, 6};
    feed_all(&p, ok, sizeof ok);
    assert_ok(amb__packet_next(&p, &d, &n));
    assert_int_equal(n, 5);
    assert_rc(AMB_EMSGSIZE, amb__packet_next(&p, &d, &n));
    amb__packet_destroy(&p);

    /* {packet, 1} cannot say more than 255, whatever max says */
    amb__packet_opts o = {.mode = AMB__PACKET_1, .max = 100000};
    assert_ok(amb__packet_init(&p, &o));
    assert_int_equal(p.max, 255);
    amb__packet_destroy(&p);
}

AMB_TEST(a_huge_line_is_an_error_after_max_bytes_not_a_huge_buffer)
{
    /* The "1 GiB line": a peer streams a line with no end. The buffer stops
     * at max bytes and the error comes when they are all there. */
    const size_t max = 64 * 1024, want = 4096;
    amb__packet p = make(AMB__PACKET_LINE, max);
    uint8_t chunk[4096];
    memset(chunk, 'a', sizeof chunk);
    size_t fed = 0;
    int rc = AMB_EAGAIN;
    while (rc == AMB_EAGAIN && fed < 64 * max) {
        uint8_t *at;
        size_t room;
        assert_ok(amb__packet_space(&p, want, &at, &room));
        if (room == 0)
            break;
        memcpy(at, chunk, room);
        amb__packet_commit(&p, room);
        fed += room;
        assert_true(p.cap <= max); /* the bound: max(header + max, want) */
        const uint8_t *d;
        size_t n;
        rc = amb__packet_next(&p, &d, &n);
        if (rc == AMB_EAGAIN) /* the next scan starts after these bytes: each once */
            assert_int_equal(p.scanned, amb__packet_buffered(&p));
    }
    assert_rc(AMB_EMSGSIZE, rc);
    assert_int_equal(fed, max);
    amb__packet_destroy(&p);

    /* a line of exactly max bytes, delimiter included, is fine */
    p = make(AMB__PACKET_LINE, 8);
    feed_all(&p, "1234567\n89", 10);
    expect_packet(&p, "1234567\n", 8);
    amb__packet_destroy(&p);

    /* the default limit bounds a line too */
    p = make(AMB__PACKET_LINE, 0);
    assert_int_equal(p.max, AMB__PACKET_MAX_DEFAULT);
    amb__packet_destroy(&p);
}

AMB_TEST(raw_mode_gives_what_arrived_or_exactly_n_bytes)
{
    amb__packet p = make(AMB__PACKET_RAW, 16);
    const uint8_t *d;
    size_t n;
    assert_rc(AMB_EAGAIN, amb__packet_next(&p, &d, &n));
    feed_all(&p, "hello", 5);
    assert_rc(AMB_EAGAIN, amb__packet_take(&p, 6, &d, &n));
    assert_ok(amb__packet_take(&p, 2, &d, &n));
    assert_int_equal(n, 2);
    assert_memory_equal(d, "he", 2);
    feed_all(&p, " world", 6);
    assert_ok(amb__packet_take(&p, 0, &d, &n)); /* 0: whatever is there */
    assert_int_equal(n, 9);
    assert_memory_equal(d, "llo world", 9);
    assert_rc(AMB_EMSGSIZE, amb__packet_take(&p, 17, &d, &n));
    amb__packet_destroy(&p);

    p = make(AMB__PACKET_LINE, 0);
    assert_rc(AMB_EBADARG, amb__packet_take(&p, 1, &d, &n)); /* einval in Erlang */
    amb__packet_destroy(&p);
}

AMB_TEST(space_is_zero_only_when_a_whole_packet_waits)
{
    amb__packet p = make(AMB__PACKET_1, 4);
    uint8_t *at;
    size_t room;
    assert_rc(AMB_EBADARG, amb__packet_space(&p, 0, &at, &room));
    feed_all(&p,
             "\x04"
             "abcd",
             5);
    assert_ok(amb__packet_space(&p, 5, &at, &room));
    assert_int_equal(room, 0); /* 5 = header + max bytes: a whole packet waits */
    expect_packet(&p, "abcd", 4);
    assert_ok(amb__packet_space(&p, 5, &at, &room));
    assert_int_equal(room, 5);
    /* a feed larger than the bound takes what fits */
    amb__packet_destroy(&p);
    p = make(AMB__PACKET_1, 2);
    size_t used;
    assert_ok(amb__packet_feed(&p, (const uint8_t *)"\x02xy\x01z", 5, &used));
    assert_int_equal(used, 5); /* want (5) is the bound here */
    expect_packet(&p, "xy", 2);
    expect_packet(&p, "z", 1);
    amb__packet_destroy(&p);
}

AMB_TEST(setopts_changes_the_mode_mid_stream_and_clears_the_error)
{
    /* an HTTP-like stream: a header line, then a 4-byte body read raw */
    amb__packet p = make(AMB__PACKET_LINE, 0);
    feed_all(&p, "LEN 4\nbodyrest", 14);
    expect_packet(&p, "LEN 4\n", 6);
    amb__packet_opts raw = {.mode = AMB__PACKET_RAW};
    assert_ok(amb__packet_set(&p, &raw));
    const uint8_t *d;
    size_t n;
    assert_ok(amb__packet_take(&p, 4, &d, &n));
    assert_memory_equal(d, "body", 4);
    amb__packet_destroy(&p);

    /* after EMSGSIZE, raw mode reads the bytes that broke the limit */
    p = make(AMB__PACKET_LINE, 4);
    feed_all(&p, "toolong", 7);
    assert_rc(AMB_EMSGSIZE, amb__packet_next(&p, &d, &n));
    assert_ok(amb__packet_set(&p, &raw));
    assert_ok(amb__packet_next(&p, &d, &n));
    assert_int_equal(n, 7);
    amb__packet_opts bad = {.mode = (amb__packet_mode)3};
    assert_rc(AMB_EBADARG, amb__packet_set(&p, &bad));
    assert_int_equal(p.mode, AMB__PACKET_RAW); /* unchanged */
    bad.mode = AMB__PACKET_RAW;
    bad.max = AMB__PACKET_MAX_LIMIT + 1;
    assert_rc(AMB_EBADARG, amb__packet_set(&p, &bad));
    amb__packet_destroy(&p);
}

AMB_TEST(the_end_of_a_stream_in_each_mode)
{
    const uint8_t *d;
    size_t n;
    amb__packet p = make(AMB__PACKET_LINE, 0);
    feed_all(&p, "one\ntwo", 7);
    assert_ok(amb__packet_finish(&p, &d, &n)); /* whole packets first */
    assert_memory_equal(d, "one\n", 4);
    assert_ok(amb__packet_finish(&p, &d, &n)); /* then the unterminated rest */
    assert_int_equal(n, 3);
    assert_memory_equal(d, "two", 3);
    assert_rc(AMB_EAGAIN, amb__packet_finish(&p, &d, &n)); /* then a clean end */
    amb__packet_destroy(&p);

    p = make(AMB__PACKET_4, 0);
    feed_all(&p,
             "\0\0\0\x05"
             "abc",
             7);
    assert_rc(AMB_ECLOSED, amb__packet_finish(&p, &d, &n)); /* cut short: dropped */
    assert_int_equal(amb__packet_buffered(&p), 0);
    assert_rc(AMB_EAGAIN, amb__packet_finish(&p, &d, &n));
    amb__packet_destroy(&p);

    p = make(AMB__PACKET_RAW, 0);
    assert_rc(AMB_EAGAIN, amb__packet_finish(&p, &d, &n));
    feed_all(&p, "xy", 2);
    assert_ok(amb__packet_finish(&p, &d, &n));
    assert_int_equal(n, 2);
    amb__packet_destroy(&p);
}

AMB_TEST(trim_gives_an_idle_buffer_back)
{
    amb__packet p = make(AMB__PACKET_2, 0);
    feed_all(&p,
             "\0\x03"
             "abc\0\x02"
             "d",
             8);
    expect_packet(&p, "abc", 3);
    amb__packet_trim(&p);
    assert_int_equal(p.cap, 3); /* shrunk to the partial packet */
    feed_all(&p, "e", 1);
    expect_packet(&p, "de", 2);
    amb__packet_trim(&p);
    assert_null(p.buf); /* nothing buffered: nothing held */
    assert_int_equal(p.cap, 0);
    feed_all(&p, "\0\x01z", 3); /* and it works again from nothing */
    expect_packet(&p, "z", 1);
    amb__packet_destroy(&p);
}

AMB_TEST(send_headers_round_trip_through_the_receive_side)
{
    static const amb__packet_mode modes[] = {AMB__PACKET_1, AMB__PACKET_2, AMB__PACKET_4};
    static const size_t lens[] = {0, 1, 200, 255};
    for (size_t m = 0; m < AMB_COUNTOF(modes); m++) {
        amb__packet p = make(modes[m], 0);
        for (size_t i = 0; i < AMB_COUNTOF(lens); i++) {
            uint8_t hdr[4], body[255];
            size_t hl;
            memset(body, (int)i + 1, sizeof body);
            assert_ok(amb__packet_header(modes[m], lens[i], hdr, &hl));
            assert_int_equal(hl, (size_t)modes[m]);
            feed_all(&p, hdr, hl);
            feed_all(&p, body, lens[i]);
            expect_packet(&p, (const char *)body, lens[i]);
        }
        amb__packet_destroy(&p);
    }
    uint8_t hdr[4];
    size_t hl = 99;
    assert_rc(AMB_EMSGSIZE, amb__packet_header(AMB__PACKET_1, 256, hdr, &hl));
    assert_rc(AMB_EMSGSIZE, amb__packet_header(AMB__PACKET_2, 65536, hdr, &hl));
    assert_ok(amb__packet_header(AMB__PACKET_4, 0x01020304, hdr, &hl));
    assert_int_equal(hdr[0], 1);
    assert_int_equal(hdr[3], 4);
    assert_ok(amb__packet_header(AMB__PACKET_LINE, 1000, hdr, &hl));
    assert_int_equal(hl, 0);
    assert_rc(AMB_EBADARG, amb__packet_header((amb__packet_mode)7, 1, hdr, &hl));
}

AMB_TEST(out_of_memory_leaves_the_buffer_as_it_was)
{
    amb__packet p = make(AMB__PACKET_LINE, 0);
    feed_all(&p, "ab", 2);
    amb_test_alloc_fail(0, AMB_TEST_FAIL_FOREVER);
    size_t used = 7;
    uint8_t big[1024];
    memset(big, 'x', sizeof big);
    assert_rc(AMB_ENOMEM, amb__packet_feed(&p, big, sizeof big, &used));
    assert_int_equal(used, 7);
    assert_int_equal(amb__packet_buffered(&p), 2);
    amb_test_alloc_disarm();
    feed_all(&p, "\n", 1);
    expect_packet(&p, "ab\n", 3);
    amb__packet_destroy(&p);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(length_prefixed_packets_are_cut_right_at_every_chunk_size),
              AMB_TEST_ENTRY(lines_are_cut_after_their_delimiter),
              AMB_TEST_ENTRY(a_header_above_max_is_refused_before_its_bytes_are_buffered),
              AMB_TEST_ENTRY(a_huge_line_is_an_error_after_max_bytes_not_a_huge_buffer),
              AMB_TEST_ENTRY(raw_mode_gives_what_arrived_or_exactly_n_bytes),
              AMB_TEST_ENTRY(space_is_zero_only_when_a_whole_packet_waits),
              AMB_TEST_ENTRY(setopts_changes_the_mode_mid_stream_and_clears_the_error),
              AMB_TEST_ENTRY(the_end_of_a_stream_in_each_mode),
              AMB_TEST_ENTRY(trim_gives_an_idle_buffer_back),
              AMB_TEST_ENTRY(send_headers_round_trip_through_the_receive_side),
              AMB_TEST_ENTRY(out_of_memory_leaves_the_buffer_as_it_was))

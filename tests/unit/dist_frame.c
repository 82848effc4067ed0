/*
 * dist_frame.c - framing after the handshake (src/dist/frame.h): the
 * stream reader fed in every chunk size, ticks, both header forms, what a
 * header may not hold, reassembly of fragmented messages (in order,
 * interleaved, single-fragment) and every way a sequence goes wrong or over
 * a limit, and the send side: whole frames and fragmentation, checked by
 * feeding what it writes back through the receive side.
 *
 * The fragment vectors follow erl_ext_dist "Distribution header for
 * fragmented messages" (131 69 SequenceId:64 FragmentId:64 refs=0, then
 * 131 70 SequenceId:64 FragmentId:64), with the refs byte at 0 as OTP writes
 * it on a connection without the atom cache.
 */
#include "amb_test.h"
#include "dist/control.h"
#include "dist/dist_flags.h"
#include "dist/frame.h"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

/* A fragment frame's data (no length): start or continuation. */
static size_t frag(uint8_t *p, bool first, uint64_t seq, uint64_t id, const void *body,
                   size_t len)
{
    p[0] = 131;
    p[1] = first ? 69 : 70;
    put64(p + 2, seq);
    put64(p + 10, id);
    size_t n = 18;
    if (first)
        p[n++] = 0;
    memcpy(p + n, body, len);
    return n + len;
}

static amb__frame parse_ok(amb__frame_mode mode, const uint8_t *data, size_t len)
{
    amb__frame f;
    assert_ok(amb__frame_parse(mode, data, len, &f));
    return f;
}

AMB_TEST(mode_follows_the_negotiated_flags)
{
    assert_int_equal(amb__frame_mode_of(AMB__DFLAGS_MANDATORY),
                     AMB__FRAME_MODE_PASS_THROUGH);
    assert_int_equal(amb__frame_mode_of(AMB__DFLAGS_MANDATORY | AMB__DFLAG_FRAGMENTS),
                     AMB__FRAME_MODE_HEADER);
    assert_int_equal(amb__frame_mode_of(AMB__DFLAG_DIST_HDR_ATOM_CACHE),
                     AMB__FRAME_MODE_HEADER);
    assert_int_equal(amb__frame_mode_of(AMB__DFLAGS_DEFAULT), AMB__FRAME_MODE_HEADER);
}

AMB_TEST(reader_cuts_frames_at_any_chunk_size)
{
    /* tick, a 3-byte frame, tick, a 300-byte frame */
    uint8_t stream[4 + 7 + 4 + 304];
    size_t n = 0;
    memset(stream, 0, sizeof stream);
    n += 4;
    put32(stream + n, 3);
    memcpy(stream + n + 4, "abc", 3);
    n += 7;
    n += 4;
    put32(stream + n, 300);
    for (int i = 0; i < 300; i++)
        stream[n + 4 + i] = (uint8_t)i;
    n += 304;
    for (size_t chunk = 1; chunk <= n; chunk++) {
        amb__frame_reader r;
        amb__frame_reader_init(&r, 0);
        size_t lens[4], got = 0;
        for (size_t off = 0; off < n; off += chunk) {
            size_t k = n - off < chunk ? n - off : chunk;
            assert_ok(amb__frame_reader_feed(&r, stream + off, k));
            const uint8_t *data;
            size_t len;
            int rc;
            while ((rc = amb__frame_reader_next(&r, &data, &len)) == 0) {
                assert_true(got < 4);
                lens[got] = len;
                if (len == 3)
                    assert_memory_equal(data, "abc", 3);
                if (len == 300)
                    assert_int_equal(data[299], 299 & 0xff);
                got++;
            }
            assert_rc(AMB_EAGAIN, rc);
        }
        assert_int_equal(got, 4);
        assert_int_equal(lens[0], 0);
        assert_int_equal(lens[1], 3);
        assert_int_equal(lens[2], 0);
        assert_int_equal(lens[3], 300);
        amb__frame_reader_destroy(&r);
    }
}

AMB_TEST(reader_refuses_a_frame_above_the_limit_from_its_length)
{
    amb__frame_reader r;
    amb__frame_reader_init(&r, 100);
    uint8_t head[4];
    put32(head, 101);
    assert_ok(amb__frame_reader_feed(&r, head, 4));
    const uint8_t *data;
    size_t len;
    assert_rc(AMB_ESYSLIMIT, amb__frame_reader_next(&r, &data, &len));
    amb__frame_reader_destroy(&r);
    /* 2^32 - 1 announced with the default limit: refused as well, and
     * nothing was allocated for it beyond the first read. */
    amb__frame_reader_init(&r, 0);
    put32(head, UINT32_MAX);
    assert_ok(amb__frame_reader_feed(&r, head, 4));
    assert_rc(AMB_ESYSLIMIT, amb__frame_reader_next(&r, &data, &len));
    assert_true(r.cap <= 4096);
    amb__frame_reader_destroy(&r);
    /* Exactly at the limit is fine; reading straight into the buffer. */
    amb__frame_reader_init(&r, 100);
    uint8_t *p;
    size_t room;
    assert_ok(amb__frame_reader_space(&r, 104, &p, &room));
    assert_true(room >= 104);
    put32(p, 100);
    memset(p + 4, 7, 100);
    amb__frame_reader_commit(&r, 104);
    assert_ok(amb__frame_reader_next(&r, &data, &len));
    assert_int_equal(len, 100);
    assert_rc(AMB_EAGAIN, amb__frame_reader_next(&r, &data, &len));
    amb__frame_reader_destroy(&r);
}

AMB_TEST(parse_reads_both_header_forms)
{
    amb__frame f = parse_ok(AMB__FRAME_MODE_PASS_THROUGH, NULL, 0);
    assert_int_equal(f.kind, AMB__FRAME_TICK);
    f = parse_ok(AMB__FRAME_MODE_HEADER, NULL, 0);
    assert_int_equal(f.kind, AMB__FRAME_TICK);

    static const uint8_t pt[] = {112, 131, 104, 1, 97, 5};
    f = parse_ok(AMB__FRAME_MODE_PASS_THROUGH, pt, sizeof pt);
    assert_int_equal(f.kind, AMB__FRAME_MESSAGE);
    assert_ptr_equal(f.body, pt + 1);
    assert_int_equal(f.body_len, 5);

    static const uint8_t hdr[] = {131, 68, 0, 104, 1, 97, 5};
    f = parse_ok(AMB__FRAME_MODE_HEADER, hdr, sizeof hdr);
    assert_int_equal(f.kind, AMB__FRAME_MESSAGE);
    assert_ptr_equal(f.body, hdr + 3);
    assert_int_equal(f.body_len, 4);

    uint8_t buf[64];
    size_t n = frag(buf, true, 0x0102030405060708, 3, "xy", 2);
    f = parse_ok(AMB__FRAME_MODE_HEADER, buf, n);
    assert_int_equal(f.kind, AMB__FRAME_FRAGMENT);
    assert_true(f.first);
    assert_true(f.seq_id == 0x0102030405060708);
    assert_true(f.frag_id == 3);
    assert_int_equal(f.body_len, 2);
    n = frag(buf, false, 9, 2, "z", 1);
    f = parse_ok(AMB__FRAME_MODE_HEADER, buf, n);
    assert_false(f.first);
    assert_true(f.seq_id == 9 && f.frag_id == 2);
    assert_int_equal(f.body_len, 1);
    assert_int_equal(f.body[0], 'z');
}

AMB_TEST(parse_refuses_what_the_mode_does_not_allow)
{
    amb__frame f;
    static const uint8_t pt[] = {112, 131, 106};
    static const uint8_t hdr[] = {131, 68, 0, 106};
    static const uint8_t other[] = {131, 71, 0};
    static const uint8_t bare[] = {104, 0};
    assert_rc(AMB_EDECODE, amb__frame_parse(AMB__FRAME_MODE_HEADER, pt, sizeof pt, &f));
    assert_rc(AMB_EDECODE,
              amb__frame_parse(AMB__FRAME_MODE_PASS_THROUGH, hdr, sizeof hdr, &f));
    assert_rc(AMB_EDECODE,
              amb__frame_parse(AMB__FRAME_MODE_HEADER, other, sizeof other, &f));
    assert_rc(AMB_EDECODE,
              amb__frame_parse(AMB__FRAME_MODE_HEADER, bare, sizeof bare, &f));
    assert_rc(AMB_EDECODE, amb__frame_parse(AMB__FRAME_MODE_PASS_THROUGH, bare, 2, &f));
    uint8_t buf[64];
    size_t n = frag(buf, true, 1, 2, "ab", 2);
    assert_rc(AMB_EDECODE, amb__frame_parse(AMB__FRAME_MODE_PASS_THROUGH, buf, n, &f));
    for (size_t k = 1; k < 19; k++) /* truncated fragment headers */
        assert_rc(AMB_EDECODE, amb__frame_parse(AMB__FRAME_MODE_HEADER, buf, k, &f));
    assert_rc(AMB_EDECODE, amb__frame_parse(AMB__FRAME_MODE_HEADER, hdr, 2, &f));
    buf[18] = 3; /* a start announcing 3 atom-cache refs it does not hold */
    assert_rc(AMB_EDECODE, amb__frame_parse(AMB__FRAME_MODE_HEADER, buf, n, &f));
    n = frag(buf, false, 1, 0, "ab", 2); /* FragmentId 0 */
    assert_rc(AMB_EDECODE, amb__frame_parse(AMB__FRAME_MODE_HEADER, buf, n, &f));
}

/* A fun decoded under an atom cache is written again with its atoms in
 * full: its body kept verbatim would carry ATOM_CACHE_REFs that mean
 * nothing in the next message (erl refused such a fun echoed back as a
 * corrupted external term). */
static bool holds(const uint8_t *p, size_t n, const char *text)
{
    size_t k = strlen(text);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, text, k) == 0)
            return true;
    return false;
}

AMB_TEST(a_fun_under_the_atom_cache_is_sent_with_atoms_in_full)
{
    uint8_t fun[] = {
        112, 0,   0,  0,   0, /* NEW_FUN_EXT, Size set below */
        0,                    /* Arity */
        1,   2,   3,  4,   5,  6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* Uniq */
        0,   0,   0,  1,                                               /* Index */
        0,   0,   0,  1,                                               /* NumFree */
        82,  0,               /* Module: cache ref 0 */
        97,  1,               /* OldIndex */
        98,  0,   0,  0,   5, /* OldUniq */
        88,  119, 1,  'n', 0,  0, 0, 9, 0, 0,  0,  0,  0,  0,  0,  1, /* Pid */
        104, 2,   82, 1,   82, 0, /* free variable {ref 1, ref 0} */
    };
    amb__etf_put32(fun + 1, (uint32_t)(sizeof fun - 1));
    amb_heap *h;
    assert_rc(0, amb_heap_new(&h));
    amb_term atoms[2] = {amb_atom("a_module"), amb_atom("a_free_atom")}, t, again;
    amb_etf_decode_opts o = {.flags = AMB_ETF_NO_VERSION};
    assert_rc(0, amb__etf_decode_refs(h, fun, sizeof fun, &o, NULL, atoms, 2, &t, NULL));
    assert_int_equal(amb_type_of(t), AMB_T_FUN);
    uint8_t out[256];
    size_t len;
    assert_rc(0, amb_etf_encode(t, 0, out, sizeof out, &len));
    /* No cache to decode with: a reference left in it would be refused. */
    assert_rc(0, amb_etf_decode(h, out, len, NULL, &again, NULL));
    assert_true(amb_equal(t, again));
    assert_true(holds(out, len, "a_module"));
    assert_true(holds(out, len, "a_free_atom"));
    /* The same bytes without a cache keep the body verbatim (and refuse). */
    assert_rc(AMB_EDECODE,
              amb__etf_decode_budget(h, fun, sizeof fun, &o, NULL, &t, NULL));
    amb_heap_free(h);
}

/* The atom-cache section (DIST_HDR_ATOM_CACHE): erl_ext_dist's layout, a
 * new entry with a short and with a long length, an old one, truncation at
 * every byte, a text above the limit; the term decoder resolves
 * ATOM_CACHE_REF through the header's atoms. */
AMB_TEST(atom_cache_section_is_read)
{
    amb__frame f;
    amb__frame_atom_ref r[AMB__FRAME_ATOM_REFS_MAX];
    size_t n;
    /* One new entry (segment 0, index 0, "a"), no body. */
    static const uint8_t one[] = {131, 68, 1, 0x08, 0, 1, 'a'};
    assert_rc(0, amb__frame_parse(AMB__FRAME_MODE_HEADER, one, sizeof one, &f));
    assert_int_equal(f.cache_len, 5);
    assert_int_equal(f.body_len, 0);
    assert_rc(0, amb__frame_atom_refs(f.cache, f.cache_len, r, &n));
    assert_int_equal(n, 1);
    assert_true(r[0].is_new && r[0].index == 0 && r[0].text_len == 1 &&
                r[0].text[0] == 'a');
    /* Two refs with long atoms: new "abc" at 1 * 256 + 5, old 2 * 256 + 7;
     * then a body {ref 0, ref 1}. */
    static const uint8_t two[] = {131, 68,  2, 0x29, 0x01, 5,  0, 3,  'a',
                                  'b', 'c', 7, 104,  2,    82, 0, 82, 1};
    assert_rc(0, amb__frame_parse(AMB__FRAME_MODE_HEADER, two, sizeof two, &f));
    assert_int_equal(f.body_len, 6);
    assert_rc(0, amb__frame_atom_refs(f.cache, f.cache_len, r, &n));
    assert_int_equal(n, 2);
    assert_true(r[0].is_new && r[0].index == 261 && r[0].text_len == 3 &&
                memcmp(r[0].text, "abc", 3) == 0);
    assert_true(!r[1].is_new && r[1].index == 519);
    amb_heap *h;
    assert_rc(0, amb_heap_new(&h));
    amb_term atoms[2] = {amb_atom("abc"), amb_atom("old_one")}, t;
    amb_etf_decode_opts o = {.flags = AMB_ETF_NO_VERSION};
    assert_rc(0,
              amb__etf_decode_refs(h, f.body, f.body_len, &o, NULL, atoms, 2, &t, NULL));
    assert_true(amb_tuple_elem(t, 0) == atoms[0] && amb_tuple_elem(t, 1) == atoms[1]);
    assert_rc(AMB_EDECODE,
              amb__etf_decode_refs(h, f.body, f.body_len, &o, NULL, atoms, 1, &t, NULL));
    assert_rc(AMB_EDECODE,
              amb__etf_decode_budget(h, f.body, f.body_len, &o, NULL, &t, NULL));
    amb_heap_free(h);
    /* Truncated anywhere inside the section. */
    for (size_t k = 2; k < 12; k++)
        assert_rc(AMB_EDECODE, amb__frame_parse(AMB__FRAME_MODE_HEADER, two, k, &f));
    /* A text longer than an atom can be. */
    uint8_t big[8 + 1021] = {131, 68, 1, 0x18, 0, (1021 >> 8), 1021 & 0xff};
    big[3] = 0x18; /* ref 0 new (8), LongAtoms (1 << 4) */
    memset(big + 7, 'x', 1021);
    assert_rc(AMB_EDECODE, amb__frame_parse(AMB__FRAME_MODE_HEADER, big, 7 + 1021, &f));
    big[5] = 1020 >> 8;
    big[6] = 1020 & 0xff;
    assert_rc(0, amb__frame_parse(AMB__FRAME_MODE_HEADER, big, 7 + 1020, &f));
}

/* Adds a fragment built from its parts; returns the rc and the message. */
static int add(amb__frame_defrag *d, bool first, uint64_t seq, uint64_t id,
               const char *body, uint8_t **msg, size_t *len)
{
    uint8_t buf[256];
    size_t n = frag(buf, first, seq, id, body, strlen(body));
    amb__frame f = parse_ok(AMB__FRAME_MODE_HEADER, buf, n);
    return amb__frame_defrag_add(d, &f, msg, len);
}

AMB_TEST(reassembly_of_interleaved_sequences)
{
    amb__frame_defrag d;
    amb__frame_defrag_init(&d, NULL);
    uint8_t *msg;
    size_t len;
    assert_ok(add(&d, true, 1, 3, "A1", &msg, &len));
    assert_null(msg);
    assert_ok(add(&d, true, 2, 2, "B1", &msg, &len));
    assert_int_equal(amb__frame_defrag_count(&d), 2);
    assert_true(amb__frame_defrag_pending(&d) > 0);
    assert_ok(add(&d, false, 1, 2, "A2", &msg, &len));
    assert_null(msg);
    /* A message in one fragment passes straight through. */
    assert_ok(add(&d, true, 3, 1, "C", &msg, &len));
    assert_non_null(msg);
    assert_int_equal(len, 1);
    amb_free(msg);
    assert_ok(add(&d, false, 2, 1, "B2", &msg, &len));
    assert_non_null(msg);
    assert_int_equal(len, 4);
    assert_memory_equal(msg, "B1B2", 4);
    amb_free(msg);
    assert_ok(add(&d, false, 1, 1, "A3", &msg, &len));
    assert_memory_equal(msg, "A1A2A3", 6);
    amb_free(msg);
    assert_int_equal(amb__frame_defrag_count(&d), 0);
    assert_int_equal(amb__frame_defrag_pending(&d), 0);
    /* Empty fragments still make a (empty) message. */
    assert_ok(add(&d, true, 4, 2, "", &msg, &len));
    assert_ok(add(&d, false, 4, 1, "", &msg, &len));
    assert_non_null(msg);
    assert_int_equal(len, 0);
    amb_free(msg);
    /* The same sequence id may start again once finished. */
    assert_ok(add(&d, true, 1, 2, "again", &msg, &len));
    amb__frame_defrag_destroy(&d); /* frees the unfinished one */
}

AMB_TEST(inconsistent_sequences_are_errors)
{
    amb__frame_defrag d;
    uint8_t *msg;
    size_t len;
    amb__frame_defrag_init(&d, NULL);
    assert_ok(add(&d, true, 1, 3, "a", &msg, &len));
    assert_rc(AMB_EDECODE, add(&d, true, 1, 3, "a", &msg, &len));  /* start twice */
    assert_rc(AMB_EDECODE, add(&d, false, 2, 2, "a", &msg, &len)); /* unknown */
    assert_rc(AMB_EDECODE, add(&d, false, 1, 1, "a", &msg, &len)); /* skips 2 */
    assert_rc(AMB_EDECODE, add(&d, false, 1, 3, "a", &msg, &len)); /* repeats 3 */
    assert_ok(add(&d, false, 1, 2, "b", &msg, &len));
    assert_null(msg);
    amb__frame_defrag_destroy(&d);
}

AMB_TEST(reassembly_limits_hold)
{
    amb__frame_defrag d;
    uint8_t *msg;
    size_t len;
    amb__frame_limits lim = {.max_sequences = 2, .max_message = 10, .max_pending = 20};
    amb__frame_defrag_init(&d, &lim);
    assert_ok(add(&d, true, 1, 5, "0123456789", &msg, &len));
    assert_rc(AMB_ESYSLIMIT, add(&d, false, 1, 4, "x", &msg, &len)); /* 11 bytes */
    assert_ok(add(&d, true, 2, 5, "0123456789", &msg, &len));
    assert_rc(AMB_ESYSLIMIT, add(&d, true, 3, 5, "x", &msg, &len)); /* a third */
    assert_true(amb__frame_defrag_pending(&d) <= 20);
    amb__frame_defrag_destroy(&d);
    /* max_pending counts every buffer together. */
    lim = (amb__frame_limits){.max_sequences = 10, .max_message = 8, .max_pending = 20};
    amb__frame_defrag_init(&d, &lim);
    assert_ok(add(&d, true, 1, 5, "01234567", &msg, &len));
    assert_ok(add(&d, true, 2, 5, "01234567", &msg, &len));
    assert_rc(AMB_ESYSLIMIT, add(&d, true, 3, 5, "01234567", &msg, &len));
    assert_rc(AMB_ESYSLIMIT, add(&d, true, 4, 1, "012345678", &msg, &len));
    amb__frame_defrag_destroy(&d);
}

AMB_TEST(whole_frames_encode_in_both_modes)
{
    static const uint8_t ctl[] = {104, 1, 97, 5};
    uint8_t buf[64];
    size_t len, size;
    assert_ok(amb__frame_encode(AMB__FRAME_MODE_HEADER, ctl, sizeof ctl, NULL, 0, buf,
                                sizeof buf, &len));
    assert_ok(amb__frame_size(AMB__FRAME_MODE_HEADER, sizeof ctl, 0, &size));
    assert_int_equal(len, size);
    assert_memory_equal(buf, "\0\0\0\7\x83\x44\0\x68\1\x61\5", 11);
    static const uint8_t vctl[] = {131, 104, 1, 97, 5}, vmsg[] = {131, 106};
    assert_ok(amb__frame_encode(AMB__FRAME_MODE_PASS_THROUGH, vctl, sizeof vctl, vmsg,
                                sizeof vmsg, buf, sizeof buf, &len));
    assert_memory_equal(buf, "\0\0\0\10\x70\x83\x68\1\x61\5\x83\x6a", 12);
    assert_rc(AMB_EBUFSIZE,
              amb__frame_encode(AMB__FRAME_MODE_PASS_THROUGH, vctl, sizeof vctl, vmsg,
                                sizeof vmsg, buf, 11, &len));
    assert_ok(amb__frame_encode_tick(buf, 4, &len));
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "\0\0\0\0", 4);
    assert_rc(AMB_ESYSLIMIT,
              amb__frame_size(AMB__FRAME_MODE_HEADER, 10, (size_t)UINT32_MAX, &size));
}

/* Sends ctl + msg through the fragmenter at max_frame, reads every frame
 * back through reader, parser and reassembly, and checks the message. */
static void frag_round_trip(const uint8_t *ctl, size_t ctl_len, const uint8_t *msg,
                            size_t msg_len, size_t max_frame, uint64_t want_count)
{
    amb__frame_frag it;
    assert_ok(amb__frame_frag_init(&it, 77, ctl, ctl_len, msg, msg_len, max_frame));
    assert_true(amb__frame_frag_count(&it) == want_count);
    amb__frame_reader r;
    amb__frame_reader_init(&r, max_frame);
    amb__frame_defrag d;
    amb__frame_defrag_init(&d, NULL);
    uint8_t *buf = malloc(max_frame + 4);
    uint8_t *got = NULL;
    size_t got_len = 0, frames = 0;
    while (!amb__frame_frag_done(&it)) {
        size_t len;
        assert_rc(AMB_EBUFSIZE, amb__frame_frag_next(&it, buf, 3, &len));
        assert_ok(amb__frame_frag_next(&it, buf, max_frame + 4, &len));
        assert_true(len <= max_frame + 4);
        frames++;
        assert_ok(amb__frame_reader_feed(&r, buf, len));
        const uint8_t *data;
        size_t dlen;
        assert_ok(amb__frame_reader_next(&r, &data, &dlen));
        amb__frame f = parse_ok(AMB__FRAME_MODE_HEADER, data, dlen);
        if (want_count == 1) {
            assert_int_equal(f.kind, AMB__FRAME_MESSAGE);
            got = malloc(f.body_len);
            memcpy(got, f.body, f.body_len);
            got_len = f.body_len;
        } else {
            assert_int_equal(f.kind, AMB__FRAME_FRAGMENT);
            assert_true(f.seq_id == 77);
            assert_null(got);
            uint8_t *m;
            size_t mlen;
            assert_ok(amb__frame_defrag_add(&d, &f, &m, &mlen));
            if (m != NULL) {
                got = malloc(mlen);
                memcpy(got, m, mlen);
                got_len = mlen;
                amb_free(m);
            }
        }
    }
    size_t len;
    assert_rc(AMB_ESTATE, amb__frame_frag_next(&it, buf, max_frame + 4, &len));
    assert_int_equal(frames, want_count);
    assert_non_null(got);
    assert_int_equal(got_len, ctl_len + msg_len);
    assert_memory_equal(got, ctl, ctl_len);
    if (msg_len > 0)
        assert_memory_equal(got + ctl_len, msg, msg_len);
    free(got);
    free(buf);
    amb__frame_defrag_destroy(&d);
    amb__frame_reader_destroy(&r);
}

AMB_TEST(fragmentation_round_trips)
{
    uint8_t ctl[20], msg[1000];
    for (size_t i = 0; i < sizeof ctl; i++)
        ctl[i] = (uint8_t)(0xc0 + i);
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7);
    /* Fits one frame: a normal header. */
    frag_round_trip(ctl, 20, msg, 1000, 3 + 20 + 1000, 1);
    /* One byte over: a start with 19+20 bytes of header and control, then
     * continuations of max - 18 message bytes. */
    frag_round_trip(ctl, 20, msg, 1000, 3 + 20 + 999, 2);
    frag_round_trip(ctl, 20, msg, 1000, 19 + 20 + 1, 1 + (999 + 21) / 22);
    frag_round_trip(ctl, 20, msg, 1000, 128, 1 + (1000 - 89 + 109) / 110);
    frag_round_trip(ctl, 20, NULL, 0, 64, 1);
    amb__frame_frag it;
    assert_rc(AMB_EBADARG, amb__frame_frag_init(&it, 1, ctl, 20, msg, 1000, 19 + 20));
    assert_rc(AMB_EBADARG, amb__frame_frag_init(&it, 1, ctl, 0, msg, 10, 100));
}

AMB_TEST(control_messages_through_frames_end_to_end)
{
    amb_heap *heap;
    assert_ok(amb_heap_new(&heap));
    amb__dist_ctl c = {.op = AMB__DOP_REG_SEND,
                       .from = amb_pid_term(heap, amb_atom("a@h"), 5, 0, 1),
                       .to = amb_atom("echo")};
    uint8_t *big = malloc(200000);
    for (size_t i = 0; i < 200000; i++)
        big[i] = (uint8_t)i;
    c.message = AMB_TUPLE(heap, amb_atom("data"), amb_binary(heap, big, 200000));
    for (int m = 0; m <= 1; m++) {
        amb__frame_mode mode = m ? AMB__FRAME_MODE_HEADER : AMB__FRAME_MODE_PASS_THROUGH;
        bool versioned = mode == AMB__FRAME_MODE_PASS_THROUGH;
        amb__dist_wire w;
        assert_ok(amb__control_encode(&c, versioned, &w));
        amb__frame_reader r;
        amb__frame_reader_init(&r, 0);
        amb__frame_defrag d;
        amb__frame_defrag_init(&d, NULL);
        uint8_t *out = malloc(300000);
        size_t len, total = 0;
        if (versioned) {
            assert_ok(amb__frame_encode(mode, w.ctl, w.ctl_len, w.msg, w.msg_len, out,
                                        300000, &len));
            total = len;
        } else {
            amb__frame_frag it;
            assert_ok(
                amb__frame_frag_init(&it, 1, w.ctl, w.ctl_len, w.msg, w.msg_len, 65536));
            assert_true(amb__frame_frag_count(&it) == 4);
            while (!amb__frame_frag_done(&it)) {
                assert_ok(amb__frame_frag_next(&it, out + total, 300000 - total, &len));
                total += len;
            }
        }
        assert_ok(amb__frame_reader_feed(&r, out, total));
        const uint8_t *data;
        size_t dlen;
        bool done = false;
        while (amb__frame_reader_next(&r, &data, &dlen) == 0) {
            amb__frame f = parse_ok(mode, data, dlen);
            const uint8_t *body = f.body;
            size_t blen = f.body_len;
            uint8_t *owned = NULL;
            if (f.kind == AMB__FRAME_FRAGMENT) {
                assert_ok(amb__frame_defrag_add(&d, &f, &owned, &blen));
                if (owned == NULL)
                    continue;
                body = owned;
            }
            amb__dist_ctl back;
            assert_ok(amb__control_decode(heap, body, blen, versioned, NULL, &back));
            assert_int_equal(back.op, AMB__DOP_REG_SEND);
            assert_true(amb_equal(back.message, c.message));
            amb_free(owned);
            done = true;
        }
        assert_true(done);
        free(out);
        amb__control_wire_free(&w);
        amb__frame_defrag_destroy(&d);
        amb__frame_reader_destroy(&r);
    }
    free(big);
    amb_heap_free(heap);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(mode_follows_the_negotiated_flags),
              AMB_TEST_ENTRY(reader_cuts_frames_at_any_chunk_size),
              AMB_TEST_ENTRY(reader_refuses_a_frame_above_the_limit_from_its_length),
              AMB_TEST_ENTRY(parse_reads_both_header_forms),
              AMB_TEST_ENTRY(parse_refuses_what_the_mode_does_not_allow),
              AMB_TEST_ENTRY(a_fun_under_the_atom_cache_is_sent_with_atoms_in_full),
              AMB_TEST_ENTRY(atom_cache_section_is_read),
              AMB_TEST_ENTRY(reassembly_of_interleaved_sequences),
              AMB_TEST_ENTRY(inconsistent_sequences_are_errors),
              AMB_TEST_ENTRY(reassembly_limits_hold),
              AMB_TEST_ENTRY(whole_frames_encode_in_both_modes),
              AMB_TEST_ENTRY(fragmentation_round_trips),
              AMB_TEST_ENTRY(control_messages_through_frames_end_to_end))

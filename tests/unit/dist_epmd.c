/*
 * dist_epmd.c - the EPMD protocol (src/dist/epmd_proto.h): every request and
 * answer both ways with the bytes epmd and erl put on the wire, the
 * client's decoders on every prefix of an answer (AMB_EAGAIN until whole),
 * the server's decoder on every prefix of a request, and every refusal
 * (bad names, oversized lengths, unknown codes, short fields).
 *
 * The ALIVE2_REQ vector is what erl (OTP 25) sends for -sname foo on port
 * 40000 (erl_epmd.erl: type 77, protocol 0, versions 6..6, empty extra); the
 * answers are epmd_srv.c's layouts.
 */
#include "amb_test.h"
#include "dist/epmd_proto.h"

/* clang-format off */
static const uint8_t alive2_foo[] = {0,16, 120, 0x9c,0x40, 77, 0, 0,6, 0,6, 0,3,'f','o','o', 0,0};
static const uint8_t alive2_x_resp[] = {118, 0, 0x12,0x34,0x56,0x78};
static const uint8_t alive2_resp[] = {121, 1, 0,99};
static const uint8_t port2_req_foo[] = {0,4, 122, 'f','o','o'};
static const uint8_t port2_resp_foo[] = {119, 0, 0x9c,0x40, 72, 0, 0,6, 0,5, 0,3,'f','o','o', 0,2,'x','y'};
static const uint8_t port2_resp_none[] = {119, 1};
static const uint8_t names_req[] = {0,1, 110};
/* clang-format on */

static amb__epmd_node node_foo(void)
{
    amb__epmd_node n = {.port = 40000,
                        .type = AMB__EPMD_TYPE_NORMAL,
                        .protocol = AMB__EPMD_PROTO_TCP,
                        .high_vsn = 6,
                        .low_vsn = 6,
                        .name_len = 3};
    memcpy(n.name, "foo", 4);
    return n;
}

AMB_TEST(alive2_req_is_erls_bytes)
{
    amb__epmd_node n = node_foo();
    uint8_t buf[64];
    size_t len;
    assert_ok(amb__epmd_alive2_req_encode(&n, buf, sizeof buf, &len));
    assert_int_equal(len, sizeof alive2_foo);
    assert_memory_equal(buf, alive2_foo, len);
    for (size_t cap = 0; cap < len; cap++)
        assert_rc(AMB_EBUFSIZE, amb__epmd_alive2_req_encode(&n, buf, cap, &len));
}

AMB_TEST(alive2_req_refuses_bad_names)
{
    uint8_t buf[4096];
    size_t len;
    amb__epmd_node n = node_foo();
    n.name_len = 0;
    assert_rc(AMB_EBADARG, amb__epmd_alive2_req_encode(&n, buf, sizeof buf, &len));
    n = node_foo();
    n.name[1] = '\0'; /* a NUL inside */
    assert_rc(AMB_EBADARG, amb__epmd_alive2_req_encode(&n, buf, sizeof buf, &len));
    n = node_foo();
    n.name[0] = (char)0xff; /* not UTF-8 */
    assert_rc(AMB_EBADARG, amb__epmd_alive2_req_encode(&n, buf, sizeof buf, &len));
    n = node_foo();
    memset(n.name, 'a', 256); /* 256 characters */
    n.name_len = 256;
    assert_rc(AMB_EBADARG, amb__epmd_alive2_req_encode(&n, buf, sizeof buf, &len));
    n.name_len = 255;
    assert_ok(amb__epmd_alive2_req_encode(&n, buf, sizeof buf, &len));
    n = node_foo();
    n.extra_len = AMB__EPMD_EXTRA_MAX + 1;
    assert_rc(AMB_EBADARG, amb__epmd_alive2_req_encode(&n, buf, sizeof buf, &len));
}

AMB_TEST(alive2_answers_both_forms)
{
    uint8_t result;
    uint32_t creation;
    size_t used;
    assert_ok(amb__epmd_alive2_resp_decode(alive2_x_resp, sizeof alive2_x_resp, &used,
                                           &result, &creation));
    assert_int_equal(used, 6);
    assert_int_equal(result, 0);
    assert_int_equal(creation, 0x12345678u);
    assert_ok(amb__epmd_alive2_resp_decode(alive2_resp, sizeof alive2_resp, &used,
                                           &result, &creation));
    assert_int_equal(used, 4);
    assert_int_equal(result, 1);
    assert_int_equal(creation, 99);
    for (size_t n = 0; n < sizeof alive2_x_resp; n++)
        assert_rc(AMB_EAGAIN, amb__epmd_alive2_resp_decode(alive2_x_resp, n, &used,
                                                           &result, &creation));
    const uint8_t junk[] = {119, 0, 0, 0, 0, 0};
    assert_rc(AMB_EDECODE,
              amb__epmd_alive2_resp_decode(junk, sizeof junk, &used, &result, &creation));
    /* The server side writes the form the node's version asks for. */
    uint8_t buf[8];
    size_t len;
    assert_ok(amb__epmd_alive2_resp_encode(0, 0x12345678u, 6, buf, sizeof buf, &len));
    assert_int_equal(len, sizeof alive2_x_resp);
    assert_memory_equal(buf, alive2_x_resp, len);
    assert_ok(amb__epmd_alive2_resp_encode(1, 99, 5, buf, sizeof buf, &len));
    assert_int_equal(len, sizeof alive2_resp);
    assert_memory_equal(buf, alive2_resp, len);
    assert_rc(AMB_EBUFSIZE, amb__epmd_alive2_resp_encode(0, 1, 6, buf, 5, &len));
}

AMB_TEST(port_please2_round_trip)
{
    uint8_t buf[64];
    size_t len;
    assert_ok(amb__epmd_port2_req_encode("foo", 3, buf, sizeof buf, &len));
    assert_int_equal(len, sizeof port2_req_foo);
    assert_memory_equal(buf, port2_req_foo, len);
    assert_rc(AMB_EBADARG, amb__epmd_port2_req_encode("", 0, buf, sizeof buf, &len));

    amb__epmd_node n;
    uint8_t result = 9;
    size_t used;
    assert_ok(amb__epmd_port2_resp_decode(port2_resp_foo, sizeof port2_resp_foo, &used,
                                          &result, &n));
    assert_int_equal(result, 0);
    assert_int_equal(used, sizeof port2_resp_foo);
    assert_int_equal(n.port, 40000);
    assert_int_equal(n.type, AMB__EPMD_TYPE_HIDDEN);
    assert_int_equal(n.high_vsn, 6);
    assert_int_equal(n.low_vsn, 5);
    assert_string_equal(n.name, "foo");
    assert_int_equal(n.extra_len, 2);
    assert_memory_equal(n.extra, "xy", 2);
    for (size_t k = 0; k < sizeof port2_resp_foo; k++)
        assert_rc(AMB_EAGAIN,
                  amb__epmd_port2_resp_decode(port2_resp_foo, k, &used, &result, &n));
    assert_ok(amb__epmd_port2_resp_decode(port2_resp_none, sizeof port2_resp_none, &used,
                                          &result, &n));
    assert_int_equal(result, 1);
    assert_int_equal(used, 2);

    /* The server writes the same bytes back. */
    assert_ok(amb__epmd_port2_resp_encode(&n, buf, sizeof buf, &len));
    assert_int_equal(len, sizeof port2_resp_foo);
    assert_memory_equal(buf, port2_resp_foo, len);
    assert_ok(amb__epmd_port2_resp_encode(NULL, buf, sizeof buf, &len));
    assert_int_equal(len, 2);
    assert_memory_equal(buf, port2_resp_none, 2);
}

AMB_TEST(port2_answer_with_a_bad_name_is_refused)
{
    uint8_t bad[sizeof port2_resp_foo];
    memcpy(bad, port2_resp_foo, sizeof bad);
    bad[12] = 0; /* NUL inside the name */
    amb__epmd_node n;
    uint8_t result;
    size_t used;
    assert_rc(AMB_EDECODE,
              amb__epmd_port2_resp_decode(bad, sizeof bad, &used, &result, &n));
    uint8_t huge[] = {119, 0, 0, 1, 77, 0, 0, 6, 0, 6, 0xff, 0xff};
    assert_rc(AMB_ESYSLIMIT,
              amb__epmd_port2_resp_decode(huge, sizeof huge, &used, &result, &n));
    const uint8_t wrong[] = {118, 0};
    assert_rc(AMB_EDECODE, amb__epmd_port2_resp_decode(wrong, 2, &used, &result, &n));
    assert_rc(AMB_EDECODE, amb__epmd_port2_resp_decode(wrong, 1, &used, &result, &n));
}

AMB_TEST(names_round_trip)
{
    uint8_t buf[4096];
    size_t len, n;
    assert_ok(amb__epmd_names_req_encode(buf, sizeof buf, &len));
    assert_int_equal(len, sizeof names_req);
    assert_memory_equal(buf, names_req, len);

    /* The answer as epmd writes it: the port, then one line per node. */
    assert_ok(amb__epmd_names_resp_port_encode(4369, buf, sizeof buf, &len));
    assert_ok(
        amb__epmd_names_line_encode("foo", 3, 40000, buf + len, sizeof buf - len, &n));
    len += n;
    assert_ok(amb__epmd_names_line_encode("b at port x", 11, 7, buf + len,
                                          sizeof buf - len, &n));
    len += n;
    assert_memory_equal(buf + 4, "name foo at port 40000\nname b at port x at port 7\n",
                        len - 4);
    uint32_t port;
    assert_ok(amb__epmd_names_resp_port(buf, len, &port));
    assert_int_equal(port, 4369);
    assert_rc(AMB_EAGAIN, amb__epmd_names_resp_port(buf, 3, &port));
    size_t pos = 0;
    amb__epmd_name e;
    const uint8_t *text = buf + 4;
    size_t tlen = len - 4;
    assert_ok(amb__epmd_names_next(text, tlen, &pos, &e));
    assert_string_equal(e.name, "foo");
    assert_int_equal(e.port, 40000);
    assert_ok(amb__epmd_names_next(text, tlen, &pos, &e));
    assert_string_equal(e.name, "b at port x"); /* the last " at port " ends it */
    assert_int_equal(e.port, 7);
    assert_rc(AMB_ENOTFOUND, amb__epmd_names_next(text, tlen, &pos, &e));
    pos = 0;
    assert_rc(AMB_EAGAIN, amb__epmd_names_next(text, 10, &pos, &e));
    assert_int_equal(pos, 0);
}

AMB_TEST(names_lines_that_are_not_epmds_are_refused)
{
    static const char *bad[] = {
        "nome foo at port 1\n",      "name foo at port\n", "name foo at port 65536\n",
        "name foo at port 1x\n",     "name  at port 1\n",  "name foo\n",
        "name foo at port 123456\n",
    };
    amb__epmd_name e;
    for (size_t i = 0; i < AMB_COUNTOF(bad); i++) {
        size_t pos = 0;
        assert_rc(AMB_EDECODE, amb__epmd_names_next((const uint8_t *)bad[i],
                                                    strlen(bad[i]), &pos, &e));
    }
    /* A line longer than any epmd writes, without its newline yet. */
    static uint8_t longline[AMB__EPMD_NAMES_LINE_MAX + 10];
    memset(longline, 'a', sizeof longline);
    size_t pos = 0;
    assert_rc(AMB_ESYSLIMIT, amb__epmd_names_next(longline, sizeof longline, &pos, &e));
}

AMB_TEST(server_decodes_every_request)
{
    amb__epmd_request req;
    size_t used;
    assert_ok(amb__epmd_request_decode(alive2_foo, sizeof alive2_foo, &used, &req));
    assert_int_equal(used, sizeof alive2_foo);
    assert_int_equal(req.code, AMB__EPMD_ALIVE2_REQ);
    assert_int_equal(req.node.port, 40000);
    assert_int_equal(req.node.type, AMB__EPMD_TYPE_NORMAL);
    assert_string_equal(req.node.name, "foo");
    assert_int_equal(req.node.extra_len, 0);
    for (size_t n = 0; n < sizeof alive2_foo; n++)
        assert_rc(AMB_EAGAIN, amb__epmd_request_decode(alive2_foo, n, &used, &req));

    assert_ok(amb__epmd_request_decode(port2_req_foo, sizeof port2_req_foo, &used, &req));
    assert_int_equal(req.code, AMB__EPMD_PORT_PLEASE2_REQ);
    assert_string_equal(req.node.name, "foo");
    const uint8_t with_nul[] = {0, 5, 122, 'f', 'o', 'o', 0};
    assert_ok(amb__epmd_request_decode(with_nul, sizeof with_nul, &used, &req));
    assert_string_equal(req.node.name, "foo");
    assert_int_equal(req.node.name_len, 3);

    assert_ok(amb__epmd_request_decode(names_req, sizeof names_req, &used, &req));
    assert_int_equal(req.code, AMB__EPMD_NAMES_REQ);
    const uint8_t kill[] = {0, 1, 107};
    assert_ok(amb__epmd_request_decode(kill, sizeof kill, &used, &req));
    assert_int_equal(req.code, AMB__EPMD_KILL_REQ);

    /* Two requests back to back: one at a time. */
    uint8_t two[sizeof names_req + sizeof port2_req_foo];
    memcpy(two, names_req, sizeof names_req);
    memcpy(two + sizeof names_req, port2_req_foo, sizeof port2_req_foo);
    assert_ok(amb__epmd_request_decode(two, sizeof two, &used, &req));
    assert_int_equal(used, sizeof names_req);
    assert_ok(amb__epmd_request_decode(two + used, sizeof two - used, &used, &req));
    assert_int_equal(req.code, AMB__EPMD_PORT_PLEASE2_REQ);
}

AMB_TEST(server_refuses_bad_requests)
{
    amb__epmd_request req;
    size_t used;
    const uint8_t empty[] = {0, 0};
    assert_rc(AMB_EDECODE, amb__epmd_request_decode(empty, sizeof empty, &used, &req));
    const uint8_t unknown[] = {0, 1, 99};
    assert_rc(AMB_EDECODE,
              amb__epmd_request_decode(unknown, sizeof unknown, &used, &req));
    const uint8_t huge[] = {0xff, 0xff, 120};
    assert_rc(AMB_ESYSLIMIT, amb__epmd_request_decode(huge, sizeof huge, &used, &req));
    /* ALIVE2_REQ whose name runs past the request. */
    uint8_t shortname[sizeof alive2_foo];
    memcpy(shortname, alive2_foo, sizeof shortname);
    shortname[12] = 40;
    assert_rc(AMB_EDECODE,
              amb__epmd_request_decode(shortname, sizeof shortname, &used, &req));
    /* ... and an empty name, a NUL in it, invalid UTF-8. */
    const uint8_t noname[] = {0, 13, 120, 0, 1, 77, 0, 0, 6, 0, 6, 0, 0, 0, 0};
    assert_rc(AMB_EDECODE, amb__epmd_request_decode(noname, sizeof noname, &used, &req));
    uint8_t nul[sizeof alive2_foo];
    memcpy(nul, alive2_foo, sizeof nul);
    nul[14] = 0;
    assert_rc(AMB_EDECODE, amb__epmd_request_decode(nul, sizeof nul, &used, &req));
    nul[14] = 0xc0;
    assert_rc(AMB_EDECODE, amb__epmd_request_decode(nul, sizeof nul, &used, &req));
    const uint8_t port_empty[] = {0, 2, 122, 0};
    assert_rc(AMB_EDECODE,
              amb__epmd_request_decode(port_empty, sizeof port_empty, &used, &req));
    /* Trailing bytes inside a request are ignored, as epmd ignores them. */
    uint8_t trailing[sizeof alive2_foo + 3];
    memcpy(trailing, alive2_foo, sizeof alive2_foo);
    trailing[1] += 3;
    memset(trailing + sizeof alive2_foo, 'z', 3);
    assert_ok(amb__epmd_request_decode(trailing, sizeof trailing, &used, &req));
    assert_int_equal(used, sizeof trailing);
    assert_string_equal(req.node.name, "foo");
}

AMB_TEST(alive2_request_round_trips_through_the_server)
{
    amb__epmd_node n = node_foo();
    n.type = AMB__EPMD_TYPE_HIDDEN;
    n.extra_len = AMB__EPMD_EXTRA_MAX;
    memset(n.extra, 0xab, n.extra_len);
    memcpy(n.name, "\xce\xbb\xce\xbb", 4); /* two lambdas: UTF-8 names are fine */
    n.name_len = 4;
    n.name[4] = '\0';
    uint8_t buf[AMB__EPMD_REQUEST_MAX + 2];
    size_t len, used;
    assert_ok(amb__epmd_alive2_req_encode(&n, buf, sizeof buf, &len));
    amb__epmd_request req;
    assert_ok(amb__epmd_request_decode(buf, len, &used, &req));
    assert_int_equal(used, len);
    assert_int_equal(req.node.type, AMB__EPMD_TYPE_HIDDEN);
    assert_int_equal(req.node.name_len, 4);
    assert_memory_equal(req.node.name, n.name, 5);
    assert_int_equal(req.node.extra_len, AMB__EPMD_EXTRA_MAX);
    assert_memory_equal(req.node.extra, n.extra, AMB__EPMD_EXTRA_MAX);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(alive2_req_is_erls_bytes),
              AMB_TEST_ENTRY(alive2_req_refuses_bad_names),
              AMB_TEST_ENTRY(alive2_answers_both_forms),
              AMB_TEST_ENTRY(port_please2_round_trip),
              AMB_TEST_ENTRY(port2_answer_with_a_bad_name_is_refused),
              AMB_TEST_ENTRY(names_round_trip),
              AMB_TEST_ENTRY(names_lines_that_are_not_epmds_are_refused),
              AMB_TEST_ENTRY(server_decodes_every_request),
              AMB_TEST_ENTRY(server_refuses_bad_requests),
              AMB_TEST_ENTRY(alive2_request_round_trips_through_the_server))

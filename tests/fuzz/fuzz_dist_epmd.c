/*
 * fuzz_dist_epmd.c - libFuzzer target for the EPMD decoders
 * (src/dist/epmd_proto.h), both sides. Byte 0 picks the decoder:
 *   0  the server's request decoder, over back-to-back requests
 *   1  ALIVE2_X_RESP / ALIVE2_RESP
 *   2  PORT2_RESP
 *   3  NAMES_RESP (the port, then every line)
 * Checked: errors are documented codes; *used stays inside the input; a
 * decoder that said AMB_EAGAIN for a prefix never succeeds with more bytes
 * used than that prefix had; whatever decodes encodes again and decodes to
 * the same thing (ALIVE2_REQ, PORT_PLEASE2_REQ, PORT2_RESP, NAMES lines).
 */
#include <string.h>

#include "dist/epmd_proto.h"
#include "dist_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TARGET "fuzz_dist_epmd"

static bool node_eq(const amb__epmd_node *a, const amb__epmd_node *b)
{
    return a->port == b->port && a->type == b->type && a->protocol == b->protocol &&
           a->high_vsn == b->high_vsn && a->low_vsn == b->low_vsn &&
           a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0 &&
           a->extra_len == b->extra_len && memcmp(a->extra, b->extra, a->extra_len) == 0;
}

static uint8_t buf[2 * AMB__EPMD_REQUEST_MAX + 16];

static void requests(const uint8_t *p, size_t n)
{
    static amb__epmd_request req, again;
    for (;;) {
        size_t used = SIZE_MAX, len, used2;
        int rc = amb__epmd_request_decode(p, n, &used, &req);
        if (rc == AMB_EAGAIN || rc == AMB_EDECODE || rc == AMB_ESYSLIMIT)
            return;
        dist_fuzz_check(rc == 0 && used >= 3 && used <= n, TARGET, "request decode");
        if (req.code == AMB__EPMD_ALIVE2_REQ) {
            rc = amb__epmd_alive2_req_encode(&req.node, buf, sizeof buf, &len);
            dist_fuzz_check(rc == 0, TARGET, "ALIVE2_REQ does not encode");
            rc = amb__epmd_request_decode(buf, len, &used2, &again);
            dist_fuzz_check(rc == 0 && used2 == len && node_eq(&req.node, &again.node),
                            TARGET, "ALIVE2_REQ round trip");
        } else if (req.code == AMB__EPMD_PORT_PLEASE2_REQ) {
            rc = amb__epmd_port2_req_encode(req.node.name, req.node.name_len, buf,
                                            sizeof buf, &len);
            dist_fuzz_check(rc == 0, TARGET, "PORT_PLEASE2_REQ does not encode");
            rc = amb__epmd_request_decode(buf, len, &used2, &again);
            dist_fuzz_check(
                rc == 0 && again.node.name_len == req.node.name_len &&
                    memcmp(again.node.name, req.node.name, req.node.name_len) == 0,
                TARGET, "PORT_PLEASE2_REQ round trip");
        }
        p += used;
        n -= used;
    }
}

static void port2(const uint8_t *p, size_t n)
{
    static amb__epmd_node node, again;
    uint8_t result;
    size_t used = SIZE_MAX, len, used2;
    int rc = amb__epmd_port2_resp_decode(p, n, &used, &result, &node);
    if (rc != 0) {
        dist_fuzz_check(rc == AMB_EAGAIN || rc == AMB_EDECODE || rc == AMB_ESYSLIMIT,
                        TARGET, "port2: undocumented code");
        return;
    }
    dist_fuzz_check(used >= 2 && used <= n, TARGET, "port2 used");
    /* One byte less can never be a whole answer. */
    uint8_t r2;
    dist_fuzz_check(amb__epmd_port2_resp_decode(p, used - 1, &used2, &r2, &again) != 0,
                    TARGET, "a shorter answer decoded");
    rc = amb__epmd_port2_resp_encode(result == 0 ? &node : NULL, buf, sizeof buf, &len);
    dist_fuzz_check(rc == 0, TARGET, "port2 does not encode");
    rc = amb__epmd_port2_resp_decode(buf, len, &used2, &r2, &again);
    dist_fuzz_check(rc == 0 && used2 == len && (r2 == 0) == (result == 0), TARGET,
                    "port2 round trip");
    if (result == 0)
        dist_fuzz_check(node_eq(&node, &again), TARGET, "port2 node changed");
}

static void names(const uint8_t *p, size_t n)
{
    uint32_t port;
    int rc = amb__epmd_names_resp_port(p, n, &port);
    if (rc != 0) {
        dist_fuzz_check(rc == AMB_EAGAIN, TARGET, "names port");
        return;
    }
    static amb__epmd_name e, again;
    size_t pos = 0, len;
    const uint8_t *text = p + 4;
    size_t tlen = n - 4;
    while ((rc = amb__epmd_names_next(text, tlen, &pos, &e)) == 0) {
        dist_fuzz_check(pos <= tlen, TARGET, "names pos");
        rc = amb__epmd_names_line_encode(e.name, e.name_len, e.port, buf, sizeof buf,
                                         &len);
        dist_fuzz_check(rc == 0, TARGET, "names line does not encode");
        size_t p2 = 0;
        rc = amb__epmd_names_next(buf, len, &p2, &again);
        dist_fuzz_check(rc == 0 && p2 == len && again.port == e.port &&
                            again.name_len == e.name_len &&
                            memcmp(again.name, e.name, e.name_len) == 0,
                        TARGET, "names line round trip");
    }
    dist_fuzz_check(rc == AMB_ENOTFOUND || rc == AMB_EAGAIN || rc == AMB_EDECODE ||
                        rc == AMB_ESYSLIMIT,
                    TARGET, "names: undocumented code");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0:
        requests(p, n);
        break;
    case 1: {
        uint8_t result;
        uint32_t creation;
        size_t used = SIZE_MAX;
        int rc = amb__epmd_alive2_resp_decode(p, n, &used, &result, &creation);
        dist_fuzz_check(rc == AMB_EAGAIN || rc == AMB_EDECODE || (rc == 0 && used <= n),
                        TARGET, "alive2 answer");
        break;
    }
    case 2:
        port2(p, n);
        break;
    default:
        names(p, n);
        break;
    }
    return 0;
}

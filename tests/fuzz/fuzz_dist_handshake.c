/*
 * fuzz_dist_handshake.c - libFuzzer target for the handshake state machine
 * (src/dist/handshake.h), both roles. The fuzzer plays the peer with a
 * small script, so it can get past the cookie check (a digest it could
 * never guess) and reach every state:
 *
 *   byte 0   bit 0: our role (0 initiator, 1 acceptor); bit 1: we ask
 *            NAME_ME (initiator only); bit 2: the peer's name is
 *            expected; bit 3: 4-byte packet lengths (TLS distribution)
 *   then records [op:1][len:1][len bytes]:
 *     op % 6 == 0  feed the bytes as they are (any split)
 *     op % 6 == 1  feed a whole 'r' packet: the record's first 4 bytes as the
 *                  challenge, and the right digest of our challenge
 *     op % 6 == 2  feed a whole 'a' packet with the right digest
 *     op % 6 == 3  answer a question: a status (byte 0 % 7, with the record's
 *                  rest as the name for named:) or the alive answer (bit 0)
 *     op % 6 == 4  the peer closes (eof)
 *     op % 6 == 5  drop op/4 bytes of output (the peer read them)
 *
 * Checked on every input: calls return documented codes; consumed never
 * exceeds what was fed; no input is taken outside RUNNING; the output
 * stays within its buffer; UP means the negotiated flags are ours & the
 * peer's and hold every mandatory flag; FAILED has a reason; the cookie is
 * gone once the machine ends.
 */
#include <string.h>

#include "dist/dist_flags.h"
#include "dist/handshake.h"
#include "dist_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TARGET "fuzz_dist_handshake"

static const uint8_t cookie[] = "fuzzcookie";

static void feed(amb__handshake *hs, const uint8_t *p, size_t n)
{
    bool running = amb__handshake_state(hs) == AMB__HS_RUNNING;
    size_t took = SIZE_MAX;
    int rc = amb__handshake_feed(hs, p, n, &took);
    if (!running) {
        dist_fuzz_check(rc == AMB_ESTATE && took == 0, TARGET,
                        "input taken while not running");
        return;
    }
    dist_fuzz_check(rc == 0 && took <= n, TARGET, "feed went wrong");
    dist_fuzz_check(took == n || amb__handshake_state(hs) != AMB__HS_RUNNING, TARGET,
                    "input left over while still running");
}

/* A whole packet with its length field (2 or 4 bytes, as the machine's). */
static void packet(amb__handshake *hs, const uint8_t *body, size_t len)
{
    uint8_t buf[64] = {0};
    size_t ls = hs->len_size;
    buf[ls - 1] = (uint8_t)len;
    memcpy(buf + ls, body, len);
    feed(hs, buf, len + ls);
}

static void check_state(const amb__handshake *hs)
{
    size_t out;
    amb__handshake_output(hs, &out);
    dist_fuzz_check(out <= sizeof hs->out, TARGET, "output beyond its buffer");
    const amb__hs_result *r = amb__handshake_result(hs);
    switch (amb__handshake_state(hs)) {
    case AMB__HS_UP:
        dist_fuzz_check(r->failure == AMB__HS_FAIL_NONE, TARGET, "UP with a failure");
        dist_fuzz_check(r->flags == (hs->flags & r->peer_flags), TARGET,
                        "flags not ours & peer's");
        dist_fuzz_check((r->flags & AMB__DFLAGS_MANDATORY) == AMB__DFLAGS_MANDATORY,
                        TARGET, "UP without the mandatory flags");
        dist_fuzz_check(amb__handshake_name_valid(r->peer_name, r->peer_name_len, false),
                        TARGET, "UP with an invalid peer name");
        /* fallthrough */
    case AMB__HS_FAILED:
        dist_fuzz_check(amb__handshake_state(hs) == AMB__HS_UP ||
                            r->failure != AMB__HS_FAIL_NONE,
                        TARGET, "FAILED without a reason");
        dist_fuzz_check(hs->cookie_len == 0, TARGET, "cookie kept after the end");
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    amb__hs_role role = data[0] & 1 ? AMB__HS_ACCEPTOR : AMB__HS_INITIATOR;
    bool name_me = role == AMB__HS_INITIATOR && (data[0] & 2);
    amb__hs_config cfg = {.name = name_me ? "host" : "us@host",
                          .name_len = name_me ? 4 : 7,
                          .cookie = cookie,
                          .cookie_len = sizeof cookie - 1,
                          .flags =
                              AMB__DFLAGS_DEFAULT | (name_me ? AMB__DFLAG_NAME_ME : 0),
                          .creation = 5,
                          .peer_name = data[0] & 4 ? "peer@host" : NULL,
                          .peer_name_len = 9,
                          .len_size = data[0] & 8 ? 4 : 2};
    amb__handshake *hs = malloc(sizeof *hs);
    dist_fuzz_check(hs != NULL, TARGET, "out of memory");
    dist_fuzz_check(amb__handshake_init(hs, role, &cfg) == 0, TARGET, "init failed");
    size_t i = 1;
    while (i + 2 <= size) {
        uint8_t op = data[i], len = data[i + 1];
        const uint8_t *arg = data + i + 2;
        if (len > size - i - 2)
            len = (uint8_t)(size - i - 2);
        i += 2u + len;
        switch (op % 6) {
        case 0:
            feed(hs, arg, len);
            break;
        case 1: { /* 'r' ChallengeA Digest(our challenge) */
            uint8_t body[21] = {'r'};
            memcpy(body + 1, arg, len < 4 ? len : 4);
            amb__handshake_digest(cookie, sizeof cookie - 1, hs->challenge, body + 5);
            packet(hs, body, sizeof body);
            break;
        }
        case 2: { /* 'a' Digest(our challenge) */
            uint8_t body[17] = {'a'};
            amb__handshake_digest(cookie, sizeof cookie - 1, hs->challenge, body + 1);
            packet(hs, body, sizeof body);
            break;
        }
        case 3: {
            amb__hs_state st = amb__handshake_state(hs);
            int rc;
            if (st == AMB__HS_NEED_ALIVE ||
                (st != AMB__HS_NEED_STATUS && len > 0 && (arg[0] & 0x80))) {
                rc = amb__handshake_answer_alive(hs, len > 0 && (arg[0] & 1));
                dist_fuzz_check(rc == (st == AMB__HS_NEED_ALIVE ? 0 : AMB_ESTATE), TARGET,
                                "answer_alive code");
            } else {
                amb__hs_status status =
                    len > 0 ? (amb__hs_status)(arg[0] % 7) : AMB__HS_STATUS_OK;
                const char *name = len > 1 ? (const char *)arg + 1 : NULL;
                rc = amb__handshake_set_status(hs, status, name, len > 1 ? len - 1u : 0,
                                               9);
                dist_fuzz_check(rc == 0 || rc == AMB_EBADARG || rc == AMB_ESTATE, TARGET,
                                "set_status code");
                dist_fuzz_check(rc != AMB_ESTATE || st != AMB__HS_NEED_STATUS, TARGET,
                                "set_status refused its state");
            }
            break;
        }
        case 4:
            amb__handshake_eof(hs);
            break;
        case 5:
            amb__handshake_output_done(hs, op / 4u);
            break;
        }
        check_state(hs);
    }
    free(hs);
    return 0;
}

/*
 * fuzz_dist_control.c - libFuzzer target for the control-message decoder
 * (src/dist/control.h). The first byte picks the form (bit 0: terms with
 * 131, as in pass-through frames); the rest is a message body.
 *
 * Any input may fail, but only with a documented code. An input that
 * decodes must survive the round trip: encoding the message in both forms
 * and decoding each again gives the same fields, and encoding that again
 * gives the same bytes (the encoder is canonical). Any other outcome
 * abort()s, so the fuzzer and the corpus replay under CTest report it.
 */
#include <string.h>

#include "dist_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TARGET "fuzz_dist_control"

static void round_trip(amb_heap *heap, const amb__dist_ctl *c, bool versioned)
{
    amb__dist_wire w;
    int rc = amb__control_encode(c, versioned, &w);
    if (rc == AMB_ENOMEM)
        return;
    dist_fuzz_check(rc == 0, TARGET, "a decoded message does not encode");
    size_t len = w.ctl_len + w.msg_len;
    uint8_t *body = malloc(len ? len : 1);
    dist_fuzz_check(body != NULL, TARGET, "out of memory");
    memcpy(body, w.ctl, w.ctl_len);
    if (w.msg_len > 0)
        memcpy(body + w.ctl_len, w.msg, w.msg_len);
    amb__control_wire_free(&w);
    amb__etf_atom_budget budget;
    amb__control_limits lim = dist_fuzz_limits(&budget);
    amb__dist_ctl back;
    rc = amb__control_decode(heap, body, len, versioned, &lim, &back);
    if (rc != AMB_ENOMEM) {
        dist_fuzz_check(rc == 0, TARGET, "our own encoding does not decode");
        dist_fuzz_check(dist_fuzz_ctl_eq(c, &back), TARGET, "decode(encode(c)) differs");
        amb__dist_wire again;
        rc = amb__control_encode(&back, versioned, &again);
        if (rc == 0) {
            dist_fuzz_check(
                again.ctl_len + again.msg_len == len &&
                    memcmp(again.ctl, body, again.ctl_len) == 0 &&
                    (again.msg_len == 0 ||
                     memcmp(again.msg, body + again.ctl_len, again.msg_len) == 0),
                TARGET, "encoding is not canonical");
            amb__control_wire_free(&again);
        }
    }
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool versioned = data[0] & 1;
    amb_heap *heap;
    if (amb_heap_new(&heap) != 0)
        return 0;
    amb__etf_atom_budget budget;
    amb__control_limits lim = dist_fuzz_limits(&budget);
    amb__dist_ctl c;
    memset(&c, 0xa5, sizeof c);
    amb__dist_ctl untouched = c;
    int rc = amb__control_decode(heap, data + 1, size - 1, versioned, &lim, &c);
    if (rc != 0) {
        dist_fuzz_check(dist_fuzz_decode_failure(rc), TARGET, "undocumented error code");
        dist_fuzz_check(memcmp(&c, &untouched, sizeof c) == 0, TARGET,
                        "a failed decode wrote its output");
    } else {
        dist_fuzz_check(amb__control_known(c.op), TARGET, "decoded an unknown op");
        dist_fuzz_check(amb__control_has_payload(c.op) ==
                            (c.message != AMB_NONE ||
                             (c.reason != AMB_NONE &&
                              strncmp(amb__control_name(c.op), "PAYLOAD_", 8) == 0)),
                        TARGET, "payload does not match the op");
        round_trip(heap, &c, true);
        round_trip(heap, &c, false);
    }
    amb_heap_free(heap);
    return 0;
}

/*
 * fuzz_dist_frame.c - libFuzzer target for the receive side of a
 * distribution connection after the handshake (src/dist/frame.h): the
 * stream reader, the header parser, the atom cache (a header's references
 * resolved through the connection's cache, a fragmented message's kept to
 * its end), fragment reassembly and the control decoder, chained as the
 * connection layer chains them.
 *
 * Input: byte 0 picks the mode (bit 0: distribution header, else
 * pass-through) and the read size (1 + byte0 >> 1 bytes per feed); the rest
 * is the byte stream. The first error ends the run, as it would close the
 * connection. Checked on every input:
 *   - errors are documented codes; the limits hold after every frame
 *     (unfinished sequences, bytes pending); every header reference
 *     resolves to an atom;
 *   - a message that decodes survives the trip back: encoded, framed (and,
 *     in header mode, cut into small fragments), read, reassembled and
 *     decoded again, it is the same message.
 */
#include <string.h>

#include "dist/frame.h"
#include "dist_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TARGET "fuzz_dist_frame"

static const amb__frame_limits limits = {.max_frame = 1 << 16,
                                         .max_message = 1 << 18,
                                         .max_pending = 1 << 19,
                                         .max_sequences = 8};

/* Sends c through the send side and the receive side again. */
static void send_back(amb_heap *heap, amb__frame_mode mode, const amb__dist_ctl *c)
{
    bool versioned = mode == AMB__FRAME_MODE_PASS_THROUGH;
    amb__dist_wire w;
    if (amb__control_encode(c, versioned, &w) != 0)
        return; /* out of memory */
    size_t cap = 2 * (w.ctl_len + w.msg_len) + 4096, total = 0, len;
    uint8_t *out = malloc(cap);
    dist_fuzz_check(out != NULL, TARGET, "out of memory");
    if (versioned) {
        dist_fuzz_check(amb__frame_encode(mode, w.ctl, w.ctl_len, w.msg, w.msg_len, out,
                                          cap, &total) == 0,
                        TARGET, "frame_encode failed");
    } else {
        amb__frame_frag it;
        size_t max = w.ctl_len + 19 + 64 + (w.msg_len % 997);
        dist_fuzz_check(
            amb__frame_frag_init(&it, 42, w.ctl, w.ctl_len, w.msg, w.msg_len, max) == 0,
            TARGET, "frag_init failed");
        while (!amb__frame_frag_done(&it)) {
            dist_fuzz_check(cap - total >= max + 4, TARGET,
                            "fragments outgrew the buffer");
            dist_fuzz_check(amb__frame_frag_next(&it, out + total, cap - total, &len) ==
                                0,
                            TARGET, "frag_next failed");
            total += len;
        }
    }
    amb__frame_reader r;
    amb__frame_reader_init(&r, 0);
    amb__frame_defrag d;
    amb__frame_defrag_init(&d, NULL);
    bool seen = false;
    if (amb__frame_reader_feed(&r, out, total) == 0) {
        const uint8_t *fd;
        size_t flen;
        while (amb__frame_reader_next(&r, &fd, &flen) == 0) {
            amb__frame f;
            dist_fuzz_check(amb__frame_parse(mode, fd, flen, &f) == 0, TARGET,
                            "our frame does not parse");
            uint8_t *owned = NULL;
            const uint8_t *body = f.body;
            size_t blen = f.body_len;
            if (f.kind == AMB__FRAME_FRAGMENT) {
                int rc = amb__frame_defrag_add(&d, &f, &owned, &blen);
                if (rc == AMB_ENOMEM)
                    break;
                dist_fuzz_check(rc == 0, TARGET, "our fragments do not reassemble");
                if (owned == NULL)
                    continue;
                body = owned;
            }
            amb__etf_atom_budget budget;
            amb__control_limits lim = dist_fuzz_limits(&budget);
            amb__dist_ctl back;
            int rc = amb__control_decode(heap, body, blen, versioned, &lim, &back);
            amb_free(owned);
            if (rc == AMB_ENOMEM)
                break;
            dist_fuzz_check(rc == 0, TARGET, "our message does not decode");
            dist_fuzz_check(dist_fuzz_ctl_eq(c, &back), TARGET, "the message changed");
            dist_fuzz_check(!seen, TARGET, "one message became two");
            seen = true;
        }
        dist_fuzz_check(seen, TARGET, "the message got lost");
    }
    amb__frame_defrag_destroy(&d);
    amb__frame_reader_destroy(&r);
    free(out);
    amb__control_wire_free(&w);
}

/* The atom cache of the run's connection and the header atoms of its
 * unfinished fragmented messages (at most limits.max_sequences). */
typedef struct conn_atoms {
    uint64_t cache[AMB__FRAME_ATOM_CACHE_SIZE];
    amb__etf_atom_budget budget;
    struct {
        uint64_t seq;
        size_t n;
        amb_term atoms[AMB__FRAME_ATOM_REFS_MAX];
    } seqs[8];
    size_t nseqs;
} conn_atoms;

/* amb__frame_atom_make as the reader's: an existing atom, or a new one
 * within the budget. */
static int make_atom(void *ctx, const uint8_t *text, size_t len, uint64_t *atom)
{
    amb__etf_atom_budget *b = ctx;
    int rc = amb_atom_existing((const char *)text, len, atom);
    if (rc != AMB_ENOTFOUND)
        return rc;
    if (b->left == 0 || amb_atom_count() >= amb_atom_limit() - b->reserve)
        return AMB_ESYSLIMIT;
    b->left--;
    return amb_atom_new((const char *)text, len, atom);
}

/* One message body off the wire, with its header atoms. Returns false when
 * the connection ends. */
static bool deliver(amb_heap *heap, amb__frame_mode mode, const uint8_t *body, size_t len,
                    const amb_term *atoms, size_t natoms)
{
    amb__etf_atom_budget budget;
    amb__control_limits lim = dist_fuzz_limits(&budget);
    lim.atom_refs = atoms;
    lim.n_atom_refs = natoms;
    amb__dist_ctl c;
    amb_heap_mark mark = amb_heap_save(heap);
    int rc = amb__control_decode(heap, body, len, mode == AMB__FRAME_MODE_PASS_THROUGH,
                                 &lim, &c);
    if (rc != 0) {
        dist_fuzz_check(dist_fuzz_decode_failure(rc), TARGET, "undocumented error code");
        return false;
    }
    send_back(heap, mode, &c);
    amb_heap_rewind(heap, mark);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    amb__frame_mode mode =
        data[0] & 1 ? AMB__FRAME_MODE_HEADER : AMB__FRAME_MODE_PASS_THROUGH;
    size_t chunk = 1 + (data[0] >> 1);
    data++;
    size--;
    amb_heap *heap;
    if (amb_heap_new(&heap) != 0)
        return 0;
    amb__frame_reader r;
    amb__frame_reader_init(&r, limits.max_frame);
    amb__frame_defrag d;
    amb__frame_defrag_init(&d, &limits);
    conn_atoms *ca = calloc(1, sizeof *ca);
    if (ca == NULL) {
        amb__frame_defrag_destroy(&d);
        amb__frame_reader_destroy(&r);
        amb_heap_free(heap);
        return 0;
    }
    (void)dist_fuzz_limits(&ca->budget);
    bool open = true;
    for (size_t off = 0; open && off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (amb__frame_reader_feed(&r, data + off, n) != 0)
            break;
        const uint8_t *fd;
        size_t flen;
        int rc = AMB_EAGAIN;
        while (open && (rc = amb__frame_reader_next(&r, &fd, &flen)) == 0) {
            dist_fuzz_check(flen <= limits.max_frame, TARGET, "frame above max_frame");
            amb__frame f;
            rc = amb__frame_parse(mode, fd, flen, &f);
            if (rc != 0) {
                dist_fuzz_check(rc == AMB_EDECODE, TARGET, "parse: undocumented code");
                open = false;
                break;
            }
            if (f.kind == AMB__FRAME_TICK)
                continue;
            dist_fuzz_check(f.body >= fd && f.body + f.body_len == fd + flen, TARGET,
                            "body outside its frame");
            amb_term atoms[AMB__FRAME_ATOM_REFS_MAX];
            size_t natoms = 0;
            if (f.cache_len > 1) {
                rc = amb__frame_atom_resolve(ca->cache, f.cache, f.cache_len, make_atom,
                                             &ca->budget, atoms, &natoms);
                if (rc != 0) {
                    dist_fuzz_check(rc == AMB_EDECODE || rc == AMB_ESYSLIMIT ||
                                        rc == AMB_EBADARG || rc == AMB_ENOMEM,
                                    TARGET, "atom cache: undocumented code");
                    open = false;
                    break;
                }
                for (size_t i = 0; i < natoms; i++)
                    dist_fuzz_check(amb_is_atom(atoms[i]), TARGET,
                                    "a header reference is not an atom");
            }
            if (f.kind == AMB__FRAME_MESSAGE) {
                open = deliver(heap, mode, f.body, f.body_len, atoms, natoms);
                continue;
            }
            uint8_t *msg;
            size_t mlen;
            rc = amb__frame_defrag_add(&d, &f, &msg, &mlen);
            dist_fuzz_check(amb__frame_defrag_count(&d) <= limits.max_sequences &&
                                amb__frame_defrag_pending(&d) <= limits.max_pending,
                            TARGET, "a reassembly limit was passed");
            if (rc != 0) {
                dist_fuzz_check(rc == AMB_EDECODE || rc == AMB_ESYSLIMIT ||
                                    rc == AMB_ENOMEM,
                                TARGET, "defrag: undocumented code");
                open = false;
                break;
            }
            if (msg != NULL) {
                dist_fuzz_check(mlen <= limits.max_message, TARGET,
                                "message above the limit");
                if (!f.first) {
                    natoms = 0;
                    for (size_t i = 0; i < ca->nseqs; i++) {
                        if (ca->seqs[i].seq != f.seq_id)
                            continue;
                        natoms = ca->seqs[i].n;
                        memcpy(atoms, ca->seqs[i].atoms, natoms * sizeof *atoms);
                        ca->seqs[i] = ca->seqs[--ca->nseqs];
                        break;
                    }
                }
                open = deliver(heap, mode, msg, mlen, atoms, natoms);
                amb_free(msg);
            } else if (f.first && natoms > 0) {
                dist_fuzz_check(ca->nseqs < 8, TARGET, "more sequences than the limit");
                ca->seqs[ca->nseqs].seq = f.seq_id;
                ca->seqs[ca->nseqs].n = natoms;
                memcpy(ca->seqs[ca->nseqs].atoms, atoms, natoms * sizeof *atoms);
                ca->nseqs++;
            }
        }
        if (open && rc != AMB_EAGAIN) {
            dist_fuzz_check(rc == AMB_ESYSLIMIT, TARGET, "reader: undocumented code");
            open = false;
        }
    }
    free(ca);
    amb__frame_defrag_destroy(&d);
    amb__frame_reader_destroy(&r);
    amb_heap_free(heap);
    return 0;
}

/*
 * fuzz_packet.c - libFuzzer target for the {packet, ...} receive buffer
 * (src/io/packet.h), checked against a reference model of the stream.
 *
 * Input: byte 0 picks the mode (low 3 bits, modulo 5) and the feed size (1
 * + the high 5 bits); byte 1 the limit (max = 1 + byte 1, small so that
 * limits are hit); byte 2 an optional mode change mid-stream (after
 * byte2 & 15 packets, to mode byte2 >> 4, when byte 2 is not 0); byte 3 the
 * read size asked for (1 + byte 3) and, in raw mode, the exact count taken
 * (1 + byte3 % 16); the rest is the byte stream, read through
 * space/commit as the socket layer reads, then ended with finish.
 *
 * Checked on every input:
 *   - every packet is the next bytes of the stream (after its length
 *     header, which says its length), no longer than max; a line ends with
 *     its delimiter and holds no other; so nothing is lost, duplicated or
 *     reordered: bytes taken + bytes buffered = bytes read, always;
 *   - the buffer never exceeds max(header + max, read size) of the options
 *     in force when it grew;
 *   - the only error is AMB_EMSGSIZE (and AMB_ECLOSED at the end for a cut
 *     length-prefixed packet), and it is sticky.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TARGET "fuzz_packet"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "%s: %s\n", TARGET, what);
        abort();
    }
}

static const amb__packet_mode modes[] = {AMB__PACKET_RAW, AMB__PACKET_1, AMB__PACKET_2,
                                         AMB__PACKET_4, AMB__PACKET_LINE};

typedef struct model {
    const uint8_t *stream;
    size_t fed;      /* bytes read into the buffer */
    size_t consumed; /* bytes accounted for by packets (and their headers) */
    size_t want;
    size_t bound; /* the largest buffer bound in force so far */
} model;

static size_t hdr_len(uint8_t mode)
{
    return mode == AMB__PACKET_LINE ? 0 : mode;
}

/* One packet taken out of p: is it what the stream says comes next? */
static void account(model *m, const amb__packet *p, const uint8_t *d, size_t n, bool last)
{
    size_t hdr = hdr_len(p->mode);
    check(m->consumed + hdr + n <= m->fed, "a packet beyond the bytes read");
    const uint8_t *s = m->stream + m->consumed;
    uint64_t len = 0;
    for (size_t i = 0; i < hdr; i++)
        len = len << 8 | s[i];
    check(hdr == 0 || len == n, "a packet of another length than its header says");
    check(memcmp(s + hdr, d, n) == 0, "a packet that is not the next bytes");
    if (p->mode == AMB__PACKET_LINE) {
        check(n <= p->max, "a line above max");
        check(n > 0, "an empty line");
        if (!last)
            check(d[n - 1] == p->delim, "a line without its delimiter");
        check(memchr(d, p->delim, n - 1) == NULL, "a delimiter inside a line");
    } else if (p->mode != AMB__PACKET_RAW) {
        check(n <= p->max, "a packet above max");
    }
    m->consumed += hdr + n;
}

static void invariants(model *m, const amb__packet *p)
{
    size_t limit = hdr_len(p->mode) + p->max;
    if (m->want > limit)
        limit = m->want;
    if (limit > m->bound)
        m->bound = limit; /* a mode change keeps a buffer made for the old bound */
    check(p->cap <= m->bound, "the buffer outgrew its bound");
    check(m->consumed + amb__packet_buffered(p) == m->fed, "bytes lost or made up");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    amb__packet_opts o = {.mode = modes[(data[0] & 7) % 5], .max = 1u + data[1]};
    size_t chunk = 1 + (data[0] >> 3);
    unsigned switch_after = data[2] != 0 ? (data[2] & 15u) : ~0u;
    amb__packet_mode switch_to = modes[(data[2] >> 4) % 5];
    size_t take_n = 1 + data[3] % 16;
    model m = {.stream = data + 4, .want = 1 + data[3]};
    size = size - 4;

    amb__packet p;
    check(amb__packet_init(&p, &o) == 0, "init refused good options");
    unsigned packets = 0;
    int rc = 0;
    while (rc == 0 || rc == AMB_EAGAIN) {
        const uint8_t *d;
        size_t n;
        bool taking = p.mode == AMB__PACKET_RAW && take_n <= p.max;
        if (taking)
            rc = amb__packet_take(&p, take_n, &d, &n);
        else
            rc = amb__packet_next(&p, &d, &n);
        if (rc == 0) {
            check(!taking || n == take_n, "take gave another count");
            account(&m, &p, d, n, false);
            invariants(&m, &p);
            if (++packets == switch_after) {
                amb__packet_opts s = o;
                s.mode = switch_to;
                check(amb__packet_set(&p, &s) == 0, "set refused good options");
            }
            continue;
        }
        if (rc != AMB_EAGAIN)
            break;
        if (m.fed == size)
            break; /* the stream is over */
        uint8_t *at;
        size_t room;
        check(amb__packet_space(&p, m.want, &at, &room) == 0, "space failed");
        check(room <= m.want, "more room than asked for");
        check(room > 0, "no room, yet no whole packet to take");
        size_t k = size - m.fed;
        if (k > chunk)
            k = chunk;
        if (k > room)
            k = room;
        memcpy(at, m.stream + m.fed, k);
        amb__packet_commit(&p, k);
        m.fed += k;
        invariants(&m, &p);
        rc = AMB_EAGAIN;
    }
    if (rc == AMB_EMSGSIZE) {
        const uint8_t *d;
        size_t n;
        check(amb__packet_next(&p, &d, &n) == AMB_EMSGSIZE, "the error is not sticky");
    } else {
        check(rc == AMB_EAGAIN, "an undocumented error");
        const uint8_t *d;
        size_t n;
        while ((rc = amb__packet_finish(&p, &d, &n)) == 0) {
            account(&m, &p, d, n, true);
            invariants(&m, &p);
        }
        if (rc == AMB_ECLOSED) {
            check(p.mode != AMB__PACKET_RAW && p.mode != AMB__PACKET_LINE,
                  "a cut packet in a mode that has none");
            m.consumed = m.fed; /* dropped */
        } else {
            check(rc == AMB_EAGAIN || rc == AMB_EMSGSIZE, "finish: undocumented error");
        }
        if (rc == AMB_EAGAIN)
            check(m.consumed == m.fed, "finish left bytes behind");
    }
    amb__packet_trim(&p);
    check(amb__packet_buffered(&p) == 0 ? p.buf == NULL
                                        : p.cap == amb__packet_buffered(&p),
          "trim kept more than it needs");
    amb__packet_destroy(&p);
    return 0;
}

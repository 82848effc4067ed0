/*
 * packet.h - gen_tcp's {packet, raw | 1 | 2 | 4 | line} framing as a pure,
 * incremental receive buffer: bytes in (read straight into it, or copied),
 * whole packets out. No sockets and no processes: the socket layer reads
 * into the space this gives and takes packets out; the fuzzer and the unit
 * tests drive it the same way.
 *
 * Modes (Erlang's inet option `packet`):
 *   RAW    no framing: whatever has arrived is one "packet"; a caller may
 *          also ask for exactly n bytes (gen_tcp:recv(S, N));
 *   1/2/4  a big-endian length header of that many bytes, then that many
 *          bytes of payload; the header is removed on receive and written
 *          by amb__packet_header on send; a length of 0 is an empty packet;
 *   LINE   up to and including the delimiter byte ('\n' by default,
 *          Erlang's line_delimiter).
 *
 * Invariants:
 *   - A packet is never longer than `max` (the payload for 1/2/4, the line
 *     with its delimiter for LINE, the bytes asked for in RAW): a length
 *     header above it, or `max` bytes without a delimiter, is
 *     AMB_EMSGSIZE at once, before more bytes are buffered. So a peer that
 *     sends a 1 GiB line costs at most `max` bytes of memory, never OOM.
 *   - The buffer never grows beyond max(header + max, want) bytes, want
 *     being the largest read the caller asked room for (a set that lowers
 *     the bound keeps the larger buffer until trim). When it is full, a
 *     whole packet, or the error, waits (taken before reading more).
 *   - Once a limit is broken the error is sticky: every later call that
 *     takes packets returns it, because the stream has lost its framing.
 *     amb__packet_set (a new mode, as setopts does) clears it: the bytes
 *     are still there for a caller that wants to read them another way.
 *   - Each byte is examined once while looking for a delimiter (the scan
 *     resumes where the previous one stopped), so a long line arriving in
 *     small pieces costs linear time, not quadratic.
 *   - An empty buffer can be given back (amb__packet_trim): an idle
 *     connection holds no buffer at all.
 *
 * Ownership: the buffer belongs to the amb__packet (amb__packet_destroy
 * frees it); a packet returned by next/take/finish is borrowed from it
 * until the next space, feed, trim, set or destroy call on it (taking
 * further packets does not move earlier ones). Not thread-safe: one owner
 * at a time (the socket layer serialises readers).
 */
#ifndef AMB_IO_PACKET_H
#define AMB_IO_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum amb__packet_mode {
    AMB__PACKET_RAW = 0,
    AMB__PACKET_1 = 1,
    AMB__PACKET_2 = 2,
    AMB__PACKET_4 = 4,
    AMB__PACKET_LINE = 5,
} amb__packet_mode;

/* The largest packet when the options say 0: large enough for any line or
 * message of a text protocol, small enough that 10,000 peers sending
 * oversized packets at once cannot exhaust memory. */
#define AMB__PACKET_MAX_DEFAULT ((size_t)1 << 20)
/* The largest `max` anyone may ask for (AMB_EBADARG above it). */
#define AMB__PACKET_MAX_LIMIT ((size_t)1 << 30)

/* Options; zero means the default in every field. */
typedef struct amb__packet_opts {
    amb__packet_mode mode; /* default RAW */
    size_t max;            /* largest packet; default AMB__PACKET_MAX_DEFAULT;
                              for 1 and 2 it is at most 255 and 65535 anyway */
    uint8_t delim;         /* LINE: the delimiter, default '\n' */
} amb__packet_opts;

typedef struct amb__packet {
    uint8_t *buf;
    size_t start, end, cap; /* unread bytes are buf[start..end) */
    size_t scanned;         /* LINE: bytes after start known to hold no delimiter */
    size_t max;             /* effective limit (the header's width included) */
    int error;              /* sticky AMB_EMSGSIZE, or 0 */
    uint8_t mode;
    uint8_t delim;
} amb__packet;

/* Starts an empty buffer with the options o (may be NULL: all defaults).
 * Allocates nothing yet. AMB_EBADARG for an unknown mode or a max above
 * AMB__PACKET_MAX_LIMIT (p is then untouched). */
int amb__packet_init(amb__packet *p, const amb__packet_opts *o);

/* Frees the buffer; p may be initialised again. */
void amb__packet_destroy(amb__packet *p);

/* Changes mode, limit and delimiter (setopts), keeping the buffered bytes:
 * they are framed by the new options from now on, and a sticky error is
 * cleared. AMB_EBADARG as for init (nothing changed then). */
int amb__packet_set(amb__packet *p, const amb__packet_opts *o);

/* Room for up to want (> 0) more bytes at *at, *room bytes long (1 <= *room
 * <= want), borrowed until the next call on p: read into it, then commit
 * what was read. *room is 0 only when the buffer is at its bound, and then
 * a whole packet is buffered: take it first. AMB_ENOMEM (nothing changed),
 * AMB_EBADARG for want 0. */
int amb__packet_space(amb__packet *p, size_t want, uint8_t **at, size_t *room);

/* The caller wrote n (<= the room given) bytes at the space given. */
void amb__packet_commit(amb__packet *p, size_t n);

/* Copies as much of data[0..len) as fits now (space + commit); *used gets
 * how much (less than len only when a whole packet must be taken first).
 * AMB_ENOMEM (nothing copied). */
int amb__packet_feed(amb__packet *p, const uint8_t *data, size_t len, size_t *used);

/* The next whole packet: *data (borrowed, see above), *len. In RAW mode,
 * everything buffered. AMB_EAGAIN when no whole packet is buffered yet;
 * AMB_EMSGSIZE (sticky) when the next packet is longer than max. */
int amb__packet_next(amb__packet *p, const uint8_t **data, size_t *len);

/* RAW mode: exactly n bytes (gen_tcp:recv(S, N)); n = 0 is next(). AMB_EAGAIN
 * while fewer are buffered, AMB_EMSGSIZE for n above max (nothing taken),
 * AMB_EBADARG in a framed mode (as recv with a length is einval there). */
int amb__packet_take(amb__packet *p, size_t n, const uint8_t **data, size_t *len);

/* The stream ended (the peer closed). RAW and LINE: the bytes left (a last
 * line without its delimiter) as one last packet, 0. AMB_EAGAIN when
 * nothing is left (a clean end). 1/2/4: AMB_ECLOSED when an unfinished
 * packet is dropped, else AMB_EAGAIN. A sticky error is returned as is. */
int amb__packet_finish(amb__packet *p, const uint8_t **data, size_t *len);

/* A place in the buffer before a take, to go back to if the packet taken
 * cannot be handed on (a caller's buffer too small, no memory for a
 * message): valid until the next space, feed, trim, set or destroy. */
typedef struct amb__packet_pos {
    size_t start, scanned;
} amb__packet_pos;

static inline amb__packet_pos amb__packet_tell(const amb__packet *p)
{
    amb__packet_pos pos = {p->start, p->scanned};
    return pos;
}

static inline void amb__packet_seek(amb__packet *p, amb__packet_pos pos)
{
    p->start = pos.start;
    p->scanned = pos.scanned;
}

/* Bytes buffered and not yet taken. */
static inline size_t amb__packet_buffered(const amb__packet *p)
{
    return p->end - p->start;
}

/* Gives the buffer back when nothing is buffered (an idle connection holds
 * none); otherwise moves what is left to the front and shrinks the buffer
 * to fit it. Never fails (a failed shrink keeps the larger buffer). */
void amb__packet_trim(amb__packet *p);

/* Send side: the header to write before a packet of len bytes in mode
 * (its big-endian length; none for RAW and LINE): hdr[0..*hlen). AMB_EMSGSIZE
 * when len does not fit the header (above 255, 65535 or 2^32 - 1),
 * AMB_EBADARG for an unknown mode. */
int amb__packet_header(amb__packet_mode mode, size_t len, uint8_t hdr[4], size_t *hlen);

#endif /* AMB_IO_PACKET_H */

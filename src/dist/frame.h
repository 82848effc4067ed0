/*
 * frame.h - the byte stream of a distribution connection after the
 * handshake: 4-byte-length frames, ticks, the pass-through and distribution
 * headers, and fragmented messages, in both directions. No sockets: the
 * connection layer feeds what it reads and writes what is produced.
 *
 * The stream is [Len:32][Data:Len] frames; Len = 0 is a tick. Data is one of
 * (erl_dist_protocol "Protocol between connected nodes", erl_ext_dist
 * "Distribution header"; erts/emulator/beam/external.c erts_prepare_dist_ext):
 *
 *   pass-through   112 131 Control 131 [Message]
 *   normal header  131 68 NumberOfAtomCacheRefs=0 Control [Message]
 *   fragment start 131 69 SequenceId:64 FragmentId:64 NumberOfAtomCacheRefs=0
 *                  Control [part of Message]
 *   fragment cont  131 70 SequenceId:64 FragmentId:64 [more of Message]
 *
 * Which form a connection uses follows from the negotiated flags, as in
 * erts: with DIST_HDR_ATOM_CACHE or FRAGMENTS every frame carries a
 * distribution header and its terms have no 131; with neither, every frame
 * is pass-through. With DIST_HDR_ATOM_CACHE the peer's headers carry
 * atom-cache references (amb__frame_atom_refs); we send none (0 refs, which
 * OTP accepts); the decision is in docs/design/distribution.md.
 *
 * Fragments: FragmentId counts down from the number of fragments to 1 (the
 * last); the start carries the whole control tuple. Several sequences may be
 * in flight at once (one per sending process), interleaved with each other
 * and with whole messages.
 *
 * Invariants of the receive side (all per connection; a violation is an
 * error, after which the caller closes that connection and nothing else):
 *   - A frame above limits.max_frame is refused from its length field,
 *     before its bytes are buffered (AMB_ESYSLIMIT).
 *   - At most limits.max_sequences unfinished sequences; each holds at most
 *     limits.max_message bytes; together they hold at most
 *     limits.max_pending bytes of buffer (AMB_ESYSLIMIT).
 *   - A start for a sequence already in flight, a continuation for none, a
 *     FragmentId that is not the previous one minus 1, or a FragmentId of 0
 *     is AMB_EDECODE.
 *
 * Ownership: the reader's frames and a parsed frame's body are borrowed
 * from the reader's buffer until its next feed, space or destroy call; a
 * reassembled message is owned by the caller (amb__free). Encoders write
 * the caller's buffers. Nothing is shared between connections.
 */
#ifndef AMB_DIST_FRAME_H
#define AMB_DIST_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AMB__FRAME_PASS_THROUGH 112
#define AMB__DIST_HEADER        68
#define AMB__DIST_FRAG_HEADER   69
#define AMB__DIST_FRAG_CONT     70

/* Bytes of the longest frame start: length, 131 69, two ids, the ref count. */
#define AMB__FRAME_HEAD_MAX (4 + 2 + 8 + 8 + 1)

#define AMB__FRAME_MAX_DEFAULT       ((size_t)256 << 20)
#define AMB__FRAME_MESSAGE_DEFAULT   ((size_t)256 << 20)
#define AMB__FRAME_PENDING_DEFAULT   ((size_t)512 << 20)
#define AMB__FRAME_SEQUENCES_DEFAULT 256

typedef enum amb__frame_mode {
    AMB__FRAME_MODE_PASS_THROUGH, /* 112, then versioned terms */
    AMB__FRAME_MODE_HEADER,       /* 131 68/69/70, then terms without 131 */
} amb__frame_mode;

/* Receive limits of one connection. Zero means the default in every field. */
typedef struct amb__frame_limits {
    size_t max_frame;     /* bytes of one frame after its length */
    size_t max_message;   /* bytes of one reassembled message */
    size_t max_pending;   /* buffer bytes of all unfinished sequences */
    size_t max_sequences; /* unfinished sequences */
} amb__frame_limits;

/* The form of a connection whose negotiated flags are flags. */
amb__frame_mode amb__frame_mode_of(uint64_t flags);

/* ---- receive: bytes to frames ------------------------------------------ */

/* Cuts the byte stream into frames. Fields are private. */
typedef struct amb__frame_reader {
    uint8_t *buf;
    size_t start, len, cap; /* unread bytes are buf[start..len) */
    size_t max_frame;
} amb__frame_reader;

/* Starts an empty reader (allocates nothing yet). max_frame 0 is
 * AMB__FRAME_MAX_DEFAULT. */
void amb__frame_reader_init(amb__frame_reader *r, size_t max_frame);
/* Frees the reader's buffer. */
void amb__frame_reader_destroy(amb__frame_reader *r);
/* Room for at least want more bytes at *p (borrowed until the next call
 * on r): read the socket into it, then commit. AMB_ENOMEM. */
int amb__frame_reader_space(amb__frame_reader *r, size_t want, uint8_t **p, size_t *room);
/* The caller wrote n bytes at the space given. */
void amb__frame_reader_commit(amb__frame_reader *r, size_t n);
/* Copies data[0..len) in (space + commit). AMB_ENOMEM. */
int amb__frame_reader_feed(amb__frame_reader *r, const uint8_t *data, size_t len);
/* The next whole frame: *data, *len (0 for a tick), borrowed until the next
 * feed, space or destroy. AMB_EAGAIN when no whole frame is buffered,
 * AMB_ESYSLIMIT when the next frame's length is above max_frame. */
int amb__frame_reader_next(amb__frame_reader *r, const uint8_t **data, size_t *len);

/* ---- receive: one frame ------------------------------------------------ */

typedef enum amb__frame_kind {
    AMB__FRAME_TICK,     /* an empty frame */
    AMB__FRAME_MESSAGE,  /* a whole message: control tuple and its term */
    AMB__FRAME_FRAGMENT, /* part of a fragmented message */
} amb__frame_kind;

typedef struct amb__frame {
    amb__frame_kind kind;
    bool first;           /* FRAGMENT: the start (131 69), which holds the control */
    const uint8_t *cache; /* MESSAGE and a start in header mode: the atom-cache
                             section (NumberOfAtomCacheRefs on), checked */
    size_t cache_len;
    uint64_t seq_id;     /* FRAGMENT */
    uint64_t frag_id;    /* FRAGMENT: counts down to 1, the last */
    const uint8_t *body; /* MESSAGE and FRAGMENT: after the header (borrowed) */
    size_t body_len;
} amb__frame;

/* Reads the header of one frame's data[0..len) for a connection in mode.
 * AMB_EDECODE: a first byte the mode does not allow, a truncated header or
 * atom-cache section, a fragment in pass-through mode, a FragmentId 0. */
int amb__frame_parse(amb__frame_mode mode, const uint8_t *data, size_t len,
                     amb__frame *out);

/* ---- receive: the atom cache (DIST_HDR_ATOM_CACHE) ---------------------- */

/* Most bytes of an atom's text in a header (255 characters of UTF-8). */
#define AMB__FRAME_ATOM_TEXT_MAX 1020
/* Entries of a connection's atom cache (8 segments of 256), and most
 * references of one message. */
#define AMB__FRAME_ATOM_CACHE_SIZE 2048
#define AMB__FRAME_ATOM_REFS_MAX   255

/* One reference of a header: the cache entry it names, and for a new
 * entry the atom's text (borrowed from the frame). */
typedef struct amb__frame_atom_ref {
    uint16_t index; /* 0..AMB__FRAME_ATOM_CACHE_SIZE - 1 */
    bool is_new;
    const uint8_t *text;
    size_t text_len;
} amb__frame_atom_ref;

/* The references of an atom-cache section (a parsed frame's cache,
 * cache_len; len 0: none) into refs[0..AMB__FRAME_ATOM_REFS_MAX), *n of
 * them. The caller keeps the cache: a new entry replaces entry `index`
 * with its atom, a reference that is not new reads it (an empty entry is
 * the caller's protocol error); the term decoder's ATOM_CACHE_REF i is the
 * atom of reference i. AMB_EDECODE as amb__frame_parse. */
int amb__frame_atom_refs(const uint8_t *sec, size_t len, amb__frame_atom_ref *refs,
                         size_t *n);

/* Makes the atom of a new cache entry's text (the caller's rules: an
 * existing atom, or a new one within its budget); 0 or an error. */
typedef int amb__frame_atom_make(void *ctx, const uint8_t *text, size_t len,
                                 uint64_t *atom);
/* The atoms of section sec[0..len) (a parsed frame's cache) into
 * out[0..*n), with cache (AMB__FRAME_ATOM_CACHE_SIZE words, 0 = empty:
 * the connection's, updated with the new entries that make gives).
 * AMB_EDECODE (a bad section, a reference to an empty entry), or make's
 * error; the cache may then hold some of the new entries. */
int amb__frame_atom_resolve(uint64_t *cache, const uint8_t *sec, size_t len,
                            amb__frame_atom_make *make, void *ctx, uint64_t *out,
                            size_t *n);

/* ---- receive: reassembly ----------------------------------------------- */

/* The unfinished fragmented messages of one connection. Fields private. */
typedef struct amb__frame_defrag {
    struct amb__frame_seq *seqs;
    size_t nseqs, cap;
    size_t pending; /* buffer bytes held by seqs */
    amb__frame_limits lim;
} amb__frame_defrag;

/* Starts an empty table with limits (NULL: defaults). Allocates nothing. */
void amb__frame_defrag_init(amb__frame_defrag *d, const amb__frame_limits *limits);
/* Drops every unfinished message (the connection is gone). */
void amb__frame_defrag_destroy(amb__frame_defrag *d);
/* Adds a FRAGMENT frame. When it completes its message, *msg gets the whole
 * body (control tuple and term, owned: amb__free) and *msg_len its size;
 * otherwise *msg is NULL. AMB_EDECODE (an inconsistent sequence),
 * AMB_ESYSLIMIT (a limit), AMB_ENOMEM; after any of them close the
 * connection (the table stays safe to destroy). */
int amb__frame_defrag_add(amb__frame_defrag *d, const amb__frame *f, uint8_t **msg,
                          size_t *msg_len);
/* Unfinished sequences and the buffer bytes they hold. */
size_t amb__frame_defrag_count(const amb__frame_defrag *d);
size_t amb__frame_defrag_pending(const amb__frame_defrag *d);

/* ---- send -------------------------------------------------------------- */

/* Writes a tick (4 zero bytes). AMB_EBUFSIZE. */
int amb__frame_encode_tick(uint8_t *buf, size_t cap, size_t *len);
/* Bytes of a whole frame (with its length) holding ctl and msg as
 * amb__control_encode gave them for mode (versioned for pass-through).
 * AMB_ESYSLIMIT above 2^32 - 1 bytes of data. */
int amb__frame_size(amb__frame_mode mode, size_t ctl_len, size_t msg_len, size_t *size);
/* Writes that frame into buf[0..cap). AMB_EBUFSIZE, AMB_ESYSLIMIT. */
int amb__frame_encode(amb__frame_mode mode, const uint8_t *ctl, size_t ctl_len,
                      const uint8_t *msg, size_t msg_len, uint8_t *buf, size_t cap,
                      size_t *len);

/* Splits one message into frames of at most max_frame data bytes each (a
 * distribution-header connection that negotiated FRAGMENTS). A message
 * that fits one frame goes out as one normal-header frame. The iterator
 * borrows ctl and msg (unversioned) until it is done. Fields private. */
typedef struct amb__frame_frag {
    const uint8_t *ctl, *msg;
    size_t ctl_len, msg_len, msg_off;
    uint64_t seq_id, count, next_id; /* next_id: FragmentId of the next frame */
    size_t max_frame;
} amb__frame_frag;

/* Starts splitting. AMB_EBADARG when the first frame cannot hold the
 * header, the whole control tuple and one byte of the message. */
int amb__frame_frag_init(amb__frame_frag *it, uint64_t seq_id, const uint8_t *ctl,
                         size_t ctl_len, const uint8_t *msg, size_t msg_len,
                         size_t max_frame);
/* Frames the message takes (1 when it is not fragmented). */
uint64_t amb__frame_frag_count(const amb__frame_frag *it);
/* True once every frame was written. */
bool amb__frame_frag_done(const amb__frame_frag *it);
/* Writes the next whole frame (with its length) into buf[0..cap); a buffer
 * of max_frame + 4 bytes always suffices. AMB_EBUFSIZE (nothing written),
 * AMB_ESTATE when done. */
int amb__frame_frag_next(amb__frame_frag *it, uint8_t *buf, size_t cap, size_t *len);

#endif /* AMB_DIST_FRAME_H */

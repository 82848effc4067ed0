/*
 * handshake.h - the distribution handshake (version 6, OTP 23+) as a pure
 * state machine: bytes in, bytes out, a result. No sockets, no timers, no
 * processes: the connection layer reads the socket into
 * amb__handshake_feed, writes amb__handshake_output to the socket, answers
 * the two questions the machine asks (acceptor: which status; initiator:
 * is the old connection gone), and enforces the set-up timeout itself.
 *
 * The exchange (A = initiator, B = acceptor; every packet is [Len:16][Body],
 * or [Len:32][Body] when the config asks for 4-byte lengths, as TLS
 * distribution (inet_tls_dist) sends the handshake: its socket is
 * {packet, 4} from the first byte):
 *
 *      A                                         B
 *      'N' Flags:64 Creation:32 Nlen:16 Name -->          NEED_STATUS
 *                                           <-- 's' Status
 *      (Status "alive": NEED_ALIVE, then
 *       's' "true" | "false"             -->)
 *                                           <-- 'N' Flags:64 Challenge:32
 *                                               Creation:32 Nlen:16 Name
 *      'r' ChallengeA:32 Digest(ChallengeB) -->
 *                                           <-- 'a' Digest(ChallengeA)
 *      UP                                         UP
 *
 * Digest(C) = MD5(Cookie ++ decimal(C)), cookie first (the OTP 25 manual
 * has the order backwards; dist_util.erl and the wire agree with us).
 *
 * States (amb__handshake_state):
 *
 *   initiator: RUNNING --'s' ok/ok_simultaneous/named:--> RUNNING
 *                      --'s' alive--> NEED_ALIVE --answer--> RUNNING | FAILED
 *                      --'s' nok/not_allowed--> FAILED
 *              RUNNING --'N' challenge (flags, name checked)--> RUNNING
 *              RUNNING --'a' digest right--> UP   (wrong: FAILED cookie)
 *   acceptor:  RUNNING --'N' name (name, flags checked)--> NEED_STATUS
 *              NEED_STATUS --ok/ok_simultaneous/named--> RUNNING
 *                          --alive--> RUNNING --'s' true--> RUNNING
 *                                             --'s' false--> FAILED
 *                          --nok/not_allowed--> FAILED
 *              RUNNING --'r' digest right--> UP   (wrong: FAILED cookie)
 *   any:       a malformed, oversized or unexpected packet, or
 *              amb__handshake_eof before UP --> FAILED
 *
 * Invariants:
 *   - Version 6 only: an old 'n' name message (version 5) is FAILED with
 *     AMB__HS_FAIL_VERSION; the 'c' complement is never sent or accepted.
 *   - The machine consumes input only up to the end of the packet that
 *     ends it (UP or FAILED), so bytes that follow belong to the frame
 *     stream: amb__handshake_feed reports how many it took.
 *   - A packet longer than AMB__HS_PACKET_MAX is refused before it is
 *     buffered; nothing here allocates (the struct holds its buffers), so a
 *     peer can make a handshake cost at most sizeof(amb__handshake).
 *   - Challenges come from OpenSSL's CSPRNG (RAND_bytes); digests are
 *     compared in constant time (CRYPTO_memcmp).
 *   - A peer must offer AMB__DFLAGS_MANDATORY plus config->required (after
 *     expanding MANDATORY_25_DIGEST). An acceptor tells a peer that lacks
 *     them `not_allowed` before failing; an initiator just fails. The
 *     negotiated flags are ours & the peer's.
 *   - Node names are checked as OTP checks them (name@host with both parts
 *     non-empty, or a bare host when the peer asks NAME_ME) plus what an
 *     atom needs: valid UTF-8, at most 255 characters and
 *     AMB__NODE_NAME_MAX bytes, no NUL. No atom is made here: names stay
 *     bytes in the result, and the caller decides.
 *
 * Ownership: the caller allocates amb__handshake (any storage; it holds no
 * pointers to free) and owns the config's strings only until
 * amb__handshake_init returns (they are copied). Output and result are
 * borrowed from the struct until the next call on it.
 */
#ifndef AMB_DIST_HANDSHAKE_H
#define AMB_DIST_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AMB__NODE_NAME_MAX  1020 /* bytes; 255 characters */
#define AMB__HS_COOKIE_MAX  1020 /* bytes */
#define AMB__HS_PACKET_MAX  2048 /* body bytes of one handshake packet */
#define AMB__HS_DIGEST_SIZE 16

typedef enum amb__hs_role {
    AMB__HS_INITIATOR,
    AMB__HS_ACCEPTOR,
} amb__hs_role;

typedef enum amb__hs_state {
    AMB__HS_RUNNING,     /* feed input and send output */
    AMB__HS_NEED_STATUS, /* acceptor: call amb__handshake_set_status */
    AMB__HS_NEED_ALIVE,  /* initiator: call amb__handshake_answer_alive */
    AMB__HS_UP,          /* done: send the output left, then frames */
    AMB__HS_FAILED,      /* done: send the output left (a status), then close */
} amb__hs_state;

/* The statuses of the 's' message. */
typedef enum amb__hs_status {
    AMB__HS_STATUS_NONE,
    AMB__HS_STATUS_OK,              /* go on */
    AMB__HS_STATUS_OK_SIMULTANEOUS, /* go on; our own attempt to the peer yields */
    AMB__HS_STATUS_NOK,             /* simultaneous connect and the acceptor's wins */
    AMB__HS_STATUS_NOT_ALLOWED,     /* refused (policy, or missing flags) */
    AMB__HS_STATUS_ALIVE,           /* a connection to this name is up already */
    AMB__HS_STATUS_NAMED,           /* go on under the name the acceptor chose */
} amb__hs_status;

typedef enum amb__hs_failure {
    AMB__HS_FAIL_NONE,
    AMB__HS_FAIL_MALFORMED,     /* a packet of the wrong type or shape */
    AMB__HS_FAIL_OVERSIZED,     /* a packet longer than AMB__HS_PACKET_MAX */
    AMB__HS_FAIL_VERSION,       /* an old (version 5) 'n' name message */
    AMB__HS_FAIL_BAD_NAME,      /* a node name OTP would not accept */
    AMB__HS_FAIL_NAME_MISMATCH, /* initiator: the acceptor is not the node called */
    AMB__HS_FAIL_FLAGS,         /* mandatory flags missing (result.missing) */
    AMB__HS_FAIL_COOKIE,        /* a wrong digest: the cookies differ */
    AMB__HS_FAIL_REFUSED,       /* a status ended it (result.status), or alive/false */
    AMB__HS_FAIL_CLOSED,        /* the peer closed the connection before UP */
    AMB__HS_FAIL_CRYPTO,        /* OpenSSL could not give random bytes or MD5 */
} amb__hs_failure;

/* What the caller configures. Zero means the default in every field. */
typedef struct amb__hs_config {
    const char *name; /* ours, "alive@host"; a bare host with NAME_ME in flags */
    size_t name_len;
    const uint8_t *cookie; /* the bytes erl digests: atom_to_list(Cookie) */
    size_t cookie_len;
    uint64_t flags; /* offered; 0 is AMB__DFLAGS_DEFAULT; must hold the mandatory set */
    uint64_t required;     /* flags the peer must offer beyond AMB__DFLAGS_MANDATORY */
    uint32_t creation;     /* ours (from EPMD's ALIVE2 answer) */
    const char *peer_name; /* initiator: the node called, checked against the
                              acceptor's challenge; NULL accepts any */
    size_t peer_name_len;
    unsigned len_size; /* bytes of each packet's length: 2 (0 is 2, erl's
                          inet_tcp) or 4 (inet_tls) */
} amb__hs_config;

typedef struct amb__hs_result {
    amb__hs_failure failure;
    amb__hs_status status; /* the status sent (acceptor) or received (initiator) */
    uint64_t peer_flags;   /* as the peer offered them, MANDATORY_25_DIGEST expanded */
    uint64_t flags;        /* negotiated: ours & the peer's (valid when UP) */
    uint64_t missing;      /* AMB__HS_FAIL_FLAGS: mandatory flags the peer lacks */
    uint32_t peer_creation;
    uint32_t creation;   /* ours: the config's, or the one a named: status gave */
    bool replaced_alive; /* acceptor: alive was answered true; the old connection to
                            this node must be gone before the last output is sent */
    size_t peer_name_len;
    char peer_name[AMB__NODE_NAME_MAX + 1]; /* NUL-terminated */
    size_t name_len;
    char name[AMB__NODE_NAME_MAX + 1]; /* ours (as assigned by named:) */
} amb__hs_result;

/* The machine. Fields are private; the struct is public so that a caller
 * can hold it inline. */
typedef struct amb__handshake {
    amb__hs_role role;
    amb__hs_state state;
    int step;          /* the packet expected next (handshake.c) */
    unsigned len_size; /* 2 or 4: bytes of each packet's length */
    uint64_t flags, required;
    uint32_t challenge; /* the one we sent */
    size_t cookie_len;
    uint8_t cookie[AMB__HS_COOKIE_MAX];
    size_t in_len; /* bytes buffered of the current packet, length included */
    uint8_t in[4 + AMB__HS_PACKET_MAX];
    size_t out_len;
    uint8_t out[2 * (4 + 64 + AMB__NODE_NAME_MAX)];
    size_t expect_len; /* initiator: the expected peer name, 0 = any */
    char expect[AMB__NODE_NAME_MAX];
    amb__hs_result result;
} amb__handshake;

/* Starts a handshake in *hs for role. An initiator has its 'N' name packet
 * in the output at once. cfg's strings are copied. AMB_EBADARG: NULL hs or
 * cfg, a length size other than 0, 2 and 4, a name that is not a valid
 * node name (bare host when flags hold NAME_ME, which only an initiator
 * may ask), a cookie of 0 or more than
 * AMB__HS_COOKIE_MAX bytes, offered flags without the mandatory set. */
int amb__handshake_init(amb__handshake *hs, amb__hs_role role, const amb__hs_config *cfg);

/* Feeds bytes received from the peer. *consumed (may not be NULL) gets how
 * many were taken: all of them, unless a packet ended the RUNNING state
 * (bytes after it are the caller's). Check amb__handshake_state and the
 * output afterwards. AMB_ESTATE when the state is not RUNNING (nothing is
 * taken), AMB_EBADARG. A bad packet is not an error of the call: the state
 * becomes FAILED and the result says why. */
int amb__handshake_feed(amb__handshake *hs, const uint8_t *in, size_t len,
                        size_t *consumed);

/* The bytes to send to the peer (borrowed until the next call on hs). Send
 * them and report how many went with amb__handshake_output_done. */
const uint8_t *amb__handshake_output(const amb__handshake *hs, size_t *len);
/* Drops the first n output bytes (sent). n above the output is clamped. */
void amb__handshake_output_done(amb__handshake *hs, size_t n);

/* Acceptor in NEED_STATUS: answers the peer. OK, OK_SIMULTANEOUS go on
 * (with the challenge in the output); NAMED too, giving the peer the name
 * name[0..name_len) and creation (only for a peer that asked NAME_ME, and
 * then the only way on); ALIVE asks the peer whether its old connection is
 * gone; NOK and NOT_ALLOWED end it (FAILED, refused). AMB_ESTATE outside
 * NEED_STATUS, AMB_EBADARG for a status that does not fit (see above) or an
 * invalid name. */
int amb__handshake_set_status(amb__handshake *hs, amb__hs_status status, const char *name,
                              size_t name_len, uint32_t creation);

/* Initiator in NEED_ALIVE: true when this node has no other connection to
 * the peer (the acceptor's is stale: go on), false to give up (FAILED).
 * AMB_ESTATE outside NEED_ALIVE. */
int amb__handshake_answer_alive(amb__handshake *hs, bool go_on);

/* The peer closed the connection: FAILED (closed) unless already UP or
 * FAILED. */
void amb__handshake_eof(amb__handshake *hs);

/* The state, and the result (borrowed from hs; complete once UP or FAILED,
 * and the peer's name, flags and creation are there from NEED_STATUS on). */
amb__hs_state amb__handshake_state(const amb__handshake *hs);
const amb__hs_result *amb__handshake_result(const amb__handshake *hs);

/* Writes MD5(cookie ++ decimal(challenge)) into digest. AMB_ENOTSUP when
 * OpenSSL gives no MD5 (a FIPS-only build). */
int amb__handshake_digest(const uint8_t *cookie, size_t cookie_len, uint32_t challenge,
                          uint8_t digest[AMB__HS_DIGEST_SIZE]);

/* True when name[0..len) is a node name OTP accepts: "alive@host" with both
 * parts non-empty (exactly one '@'), or with bare_host a host without '@';
 * valid UTF-8, at most 255 characters and AMB__NODE_NAME_MAX bytes, no NUL. */
bool amb__handshake_name_valid(const char *name, size_t len, bool bare_host);

/* "ok", "not_allowed", ...: the status as it travels (static string). */
const char *amb__handshake_status_name(amb__hs_status status);
/* "malformed", "cookie", ...: a word for logs (static string). */
const char *amb__handshake_failure_name(amb__hs_failure failure);

#endif /* AMB_DIST_HANDSHAKE_H */

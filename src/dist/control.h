/*
 * control.h - the control messages of the distribution protocol as typed C
 * values: decoding a message body (the control tuple and the term that may
 * follow it) into an amb__dist_ctl on a heap, and encoding one back into the
 * bytes frame.c wraps.
 *
 * Every control message OTP 25 and 26 send is here (erl_dist_protocol
 * "Protocol between connected nodes", erts/emulator/beam/dist.h), with the
 * field order of the wire:
 *
 *   op  name                    tuple after the op            then
 *    1  LINK                    From, To
 *    2  SEND                    Unused, To                    Message
 *    3  EXIT                    From, To, Reason
 *    4  UNLINK (old protocol)   From, To
 *    5  NODE_LINK               -
 *    6  REG_SEND                From, Unused, ToName          Message
 *    7  GROUP_LEADER            From, To
 *    8  EXIT2                   From, To, Reason
 *   12  SEND_TT                 Unused, To, Token             Message
 *   13  EXIT_TT                 From, To, Token, Reason
 *   16  REG_SEND_TT             From, Unused, ToName, Token   Message
 *   18  EXIT2_TT                From, To, Token, Reason
 *   19  MONITOR_P               From, ToProc, Ref
 *   20  DEMONITOR_P             From, ToProc, Ref
 *   21  MONITOR_P_EXIT          FromProc, To, Ref, Reason
 *   22  SEND_SENDER             From, To                      Message
 *   23  SEND_SENDER_TT          From, To, Token               Message
 *   24  PAYLOAD_EXIT            From, To                      Reason
 *   25  PAYLOAD_EXIT_TT         From, To, Token               Reason
 *   26  PAYLOAD_EXIT2           From, To                      Reason
 *   27  PAYLOAD_EXIT2_TT        From, To, Token               Reason
 *   28  PAYLOAD_MONITOR_P_EXIT  FromProc, To, Ref             Reason
 *   29  SPAWN_REQUEST           ReqId, From, GroupLeader, {M,F,A}, Opts   Args
 *   30  SPAWN_REQUEST_TT        ReqId, From, GroupLeader, {M,F,A}, Opts, Token   Args
 *   31  SPAWN_REPLY             ReqId, To, Flags, Result
 *   32  SPAWN_REPLY_TT          ReqId, To, Flags, Result, Token
 *   33  ALIAS_SEND              From, Alias                   Message
 *   34  ALIAS_SEND_TT           From, Alias, Token            Message
 *   35  UNLINK_ID               Id, From, To
 *   36  UNLINK_ID_ACK           Id, From, To
 *
 * Types checked on decode (and on encode): From, To, GroupLeader are pids;
 * ToName is an atom; ToProc (MONITOR_P, DEMONITOR_P) and FromProc
 * (MONITOR_P_EXIT) are a pid or a registered name (atom); Ref, ReqId and
 * Alias are references; Id is an integer in 1..2^64-1; Flags a non-negative
 * integer below 2^64; {M,F,A} two atoms and an arity 0..255; Opts and Args
 * proper lists, Args of length A; Result a pid or an atom; Unused, Token,
 * Reason and Message any term.
 *
 * Untrusted input (the peer may be hostile):
 *   - Atoms are made only within the caller's budget (amb__etf_atom_budget,
 *     one per connection), so a peer cannot fill the atom table.
 *   - Nesting is bounded by max_depth; the heap grows by at most a constant
 *     factor of the body (the ETF decoder's guarantee) and the body itself
 *     is bounded by frame.c's limits.
 *   - A body must be exactly the control tuple and, for the ops that take
 *     one, the term after it: anything else is AMB_EDECODE.
 *
 * Ownership: decoded terms live on the caller's heap and die with it; the
 * body is only read during the call. Encoded bytes are owned by the caller
 * (amb__control_wire_free).
 */
#ifndef AMB_DIST_CONTROL_H
#define AMB_DIST_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ambitious/term.h"
#include "etf_internal.h"

enum amb__dop {
    AMB__DOP_LINK = 1,
    AMB__DOP_SEND = 2,
    AMB__DOP_EXIT = 3,
    AMB__DOP_UNLINK = 4,
    AMB__DOP_NODE_LINK = 5,
    AMB__DOP_REG_SEND = 6,
    AMB__DOP_GROUP_LEADER = 7,
    AMB__DOP_EXIT2 = 8,
    AMB__DOP_SEND_TT = 12,
    AMB__DOP_EXIT_TT = 13,
    AMB__DOP_REG_SEND_TT = 16,
    AMB__DOP_EXIT2_TT = 18,
    AMB__DOP_MONITOR_P = 19,
    AMB__DOP_DEMONITOR_P = 20,
    AMB__DOP_MONITOR_P_EXIT = 21,
    AMB__DOP_SEND_SENDER = 22,
    AMB__DOP_SEND_SENDER_TT = 23,
    AMB__DOP_PAYLOAD_EXIT = 24,
    AMB__DOP_PAYLOAD_EXIT_TT = 25,
    AMB__DOP_PAYLOAD_EXIT2 = 26,
    AMB__DOP_PAYLOAD_EXIT2_TT = 27,
    AMB__DOP_PAYLOAD_MONITOR_P_EXIT = 28,
    AMB__DOP_SPAWN_REQUEST = 29,
    AMB__DOP_SPAWN_REQUEST_TT = 30,
    AMB__DOP_SPAWN_REPLY = 31,
    AMB__DOP_SPAWN_REPLY_TT = 32,
    AMB__DOP_ALIAS_SEND = 33,
    AMB__DOP_ALIAS_SEND_TT = 34,
    AMB__DOP_UNLINK_ID = 35,
    AMB__DOP_UNLINK_ID_ACK = 36,
    AMB__DOP_MAX = 36
};

/* One control message. A field that its op does not carry is AMB_NONE (or
 * 0). The same struct goes out: fill op and the op's fields (a zeroed
 * struct has every term field AMB_NONE). */
typedef struct amb__dist_ctl {
    int op;                    /* an amb__dop, as it travels */
    amb_term from;             /* From / FromProc */
    amb_term to;               /* To / ToName / ToProc / Alias */
    amb_term ref;              /* Ref (monitors), ReqId (spawn) */
    amb_term reason;           /* EXIT*, MONITOR_P_EXIT: from the tuple or, for the
                                  PAYLOAD_ ops, the term after it */
    amb_term token;            /* *_TT: the trace token */
    amb_term unused;           /* SEND, SEND_TT, REG_SEND, REG_SEND_TT: as received; on
                                  encode AMB_NONE writes '' as OTP does */
    amb_term message;          /* the message of the send ops; SPAWN_REQUEST: Args */
    uint64_t id;               /* UNLINK_ID, UNLINK_ID_ACK */
    amb_term group_leader;     /* SPAWN_REQUEST */
    amb_term module, function; /* SPAWN_REQUEST's {M, F, A} */
    unsigned arity;
    amb_term opts;        /* SPAWN_REQUEST */
    uint64_t spawn_flags; /* SPAWN_REPLY: 1 link, 2 monitor */
    amb_term result;      /* SPAWN_REPLY: the new pid or an error atom */
} amb__dist_ctl;

/* The atom policy of a connection (docs/design/distribution.md "Atoms"):
 * a peer may add at most AMB__DIST_ATOMS_PER_CONNECTION atoms to the table
 * over the life of its connection, and no peer may take the last quarter of
 * the table, which stays for local code. The connection layer keeps one
 * budget per connection and passes it in amb__control_limits.atoms. */
#define AMB__DIST_ATOMS_PER_CONNECTION 65536

/* A fresh budget for a new connection. Never fails. */
static inline amb__etf_atom_budget amb__control_atom_budget(void)
{
    return (amb__etf_atom_budget){.left = AMB__DIST_ATOMS_PER_CONNECTION,
                                  .reserve = amb_atom_limit() / 4};
}

/* Decoding limits. */
typedef struct amb__control_limits {
    amb__etf_atom_budget *atoms; /* the connection's budget; NULL makes any atom
                                    (only for trusted bytes: tests, tools) */
    size_t max_depth;            /* nesting limit per term; 0 = AMB_ETF_MAX_DEPTH */
    size_t max_decompressed;     /* for a compressed term; 0 = AMB_ETF_MAX_DECOMPRESSED */
    const amb_term *atom_refs;   /* the message's header atoms (ATOM_CACHE_REF),
                                    or NULL */
    size_t n_atom_refs;
} amb__control_limits;

/* The control tuple and the term after it as bytes, ready for frame.c:
 * each term starts with 131 when versioned (pass-through frames), not
 * otherwise (frames with a distribution header). One allocation: free with
 * amb__control_wire_free. msg is NULL (msg_len 0) for ops without one. */
typedef struct amb__dist_wire {
    uint8_t *ctl;
    size_t ctl_len;
    uint8_t *msg;
    size_t msg_len;
} amb__dist_wire;

/* True when op is one of the ops above. */
bool amb__control_known(int op);
/* True when op is followed by a term (message, reason or args). */
bool amb__control_has_payload(int op);
/* "LINK", "REG_SEND", ...; "?" for an unknown op (static string). */
const char *amb__control_name(int op);

/* Decodes body[0..len) (versioned: every term starts with 131) into *out,
 * terms on heap. limits may be NULL (no budget: trusted input only).
 * AMB_EDECODE (malformed bytes, an unknown op, a field of the wrong type,
 * bytes left over or missing), AMB_EDEPTH, AMB_ESYSLIMIT (the atom budget or
 * a size limit), AMB_ENOMEM. On failure *out is untouched (the heap may hold
 * unreachable terms until it is reset). */
int amb__control_decode(amb_heap *heap, const uint8_t *body, size_t len, bool versioned,
                        const amb__control_limits *limits, amb__dist_ctl *out);

/* Encodes *c into *out (owned; amb__control_wire_free). The bytes equal
 * erl's term_to_binary(Tuple, [{minor_version, 2}]) of the control tuple and
 * of the term after it (without the 131 unless versioned), which is what an
 * OTP node writes on a connection. AMB_EBADARG when a field does not fit
 * its op (the types above), AMB_ENOMEM. */
int amb__control_encode(const amb__dist_ctl *c, bool versioned, amb__dist_wire *out);
/* Frees what amb__control_encode gave; NULL and a zeroed wire are no-ops. */
void amb__control_wire_free(amb__dist_wire *w);

#endif /* AMB_DIST_CONTROL_H */

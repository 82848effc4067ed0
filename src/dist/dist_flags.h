/*
 * dist_flags.h - the distribution capability flags of Erlang's handshake
 * (the 64-bit Flags field of the 'N' messages) and the sets this library
 * offers and requires.
 *
 * Values are OTP's (lib/kernel/include/dist.hrl), checked on the wire against
 * OTP 25 (shared/reference/erlang-distribution.md §2). Two documentation bugs
 * met there: MANDATORY_25_DIGEST is bit 26 (0x4000000), not bit 36 as the
 * OTP 25 HTML says; and the digest is MD5(cookie ++ challenge), cookie first.
 *
 * Invariants:
 *   - AMB__DFLAGS_MANDATORY is what a peer must offer (after expanding
 *     MANDATORY_25_DIGEST into AMB__DFLAGS_MANDATORY_25); a peer without
 *     one of them is refused with `not_allowed` (acceptor) or dropped
 *     (initiator), as dist_util:check_dflags does.
 *   - AMB__DFLAGS_DEFAULT is what the protocol layer offers; it contains
 *     every mandatory flag, never DIST_HDR_ATOM_CACHE (its receive side is
 *     the node's: conn.c keeps the cache; AMB__DFLAGS_NODE adds it), never
 *     PUBLISHED (nodes are hidden unless the caller adds it), never NAME_ME
 *     (a request, not a capability).
 *   - The negotiated set of a connection is ours & the peer's, as both OTP
 *     sides compute it (dist_util:adjust_flags).
 */
#ifndef AMB_DIST_FLAGS_H
#define AMB_DIST_FLAGS_H

#include <stdint.h>

#define AMB__DFLAG_PUBLISHED           UINT64_C(0x1)
#define AMB__DFLAG_ATOM_CACHE          UINT64_C(0x2) /* obsolete */
#define AMB__DFLAG_EXTENDED_REFERENCES UINT64_C(0x4)
#define AMB__DFLAG_DIST_MONITOR        UINT64_C(0x8)
#define AMB__DFLAG_FUN_TAGS            UINT64_C(0x10)
#define AMB__DFLAG_DIST_MONITOR_NAME   UINT64_C(0x20)
#define AMB__DFLAG_HIDDEN_ATOM_CACHE   UINT64_C(0x40) /* obsolete */
#define AMB__DFLAG_NEW_FUN_TAGS        UINT64_C(0x80)
#define AMB__DFLAG_EXTENDED_PIDS_PORTS UINT64_C(0x100)
#define AMB__DFLAG_EXPORT_PTR_TAG      UINT64_C(0x200)
#define AMB__DFLAG_BIT_BINARIES        UINT64_C(0x400)
#define AMB__DFLAG_NEW_FLOATS          UINT64_C(0x800)
#define AMB__DFLAG_UNICODE_IO          UINT64_C(0x1000)
#define AMB__DFLAG_DIST_HDR_ATOM_CACHE UINT64_C(0x2000)
#define AMB__DFLAG_SMALL_ATOM_TAGS     UINT64_C(0x4000)
#define AMB__DFLAG_UTF8_ATOMS          UINT64_C(0x10000)
#define AMB__DFLAG_MAP_TAG             UINT64_C(0x20000)
#define AMB__DFLAG_BIG_CREATION        UINT64_C(0x40000)
#define AMB__DFLAG_SEND_SENDER         UINT64_C(0x80000)
#define AMB__DFLAG_BIG_SEQTRACE_LABELS UINT64_C(0x100000)
#define AMB__DFLAG_EXIT_PAYLOAD        UINT64_C(0x400000)
#define AMB__DFLAG_FRAGMENTS           UINT64_C(0x800000)
#define AMB__DFLAG_HANDSHAKE_23        UINT64_C(0x1000000)
#define AMB__DFLAG_UNLINK_ID           UINT64_C(0x2000000)
#define AMB__DFLAG_MANDATORY_25_DIGEST UINT64_C(0x4000000)
#define AMB__DFLAG_SPAWN               (UINT64_C(1) << 32)
#define AMB__DFLAG_NAME_ME             (UINT64_C(1) << 33)
#define AMB__DFLAG_V4_NC               (UINT64_C(1) << 34)
#define AMB__DFLAG_ALIAS               (UINT64_C(1) << 35)

/* What OTP 25 makes mandatory, and what the single MANDATORY_25_DIGEST bit
 * stands for (dist.hrl ?MANDATORY_DFLAGS_25). */
#define AMB__DFLAGS_MANDATORY_25                                                      \
    (AMB__DFLAG_EXTENDED_REFERENCES | AMB__DFLAG_FUN_TAGS | AMB__DFLAG_NEW_FUN_TAGS | \
     AMB__DFLAG_EXTENDED_PIDS_PORTS | AMB__DFLAG_EXPORT_PTR_TAG |                     \
     AMB__DFLAG_BIT_BINARIES | AMB__DFLAG_NEW_FLOATS | AMB__DFLAG_UTF8_ATOMS |        \
     AMB__DFLAG_MAP_TAG | AMB__DFLAG_BIG_CREATION | AMB__DFLAG_HANDSHAKE_23)

/* What we require: OTP 25's set plus the two flags OTP 26 adds (the new link
 * protocol and version-4 pids, ports and references). Our ETF encoder writes
 * NEW_PID, V4_PORT above 2^28 and 5-word references, and we speak only the
 * UNLINK_ID link protocol, so a peer without them could not read us. Every
 * OTP from 24 on and libei 5.3 offer all of them. */
#define AMB__DFLAGS_MANDATORY \
    (AMB__DFLAGS_MANDATORY_25 | AMB__DFLAG_UNLINK_ID | AMB__DFLAG_V4_NC)

/* What we offer by default: the mandatory set (and its digest bit, which
 * OTP 27 will require), remote monitors by pid and by name (ERTS sends no
 * MONITOR_P without both), the OTP 21-24 signal forms (SEND_SENDER,
 * PAYLOAD_*, ALIAS_SEND), fragments (we reassemble them), and the harmless
 * optional bits OTP itself offers, and SPAWN (spawn.c answers a peer's
 * SPAWN_REQUEST: erpc and rpc:call of OTP 23+ need it). */
#define AMB__DFLAGS_DEFAULT                                                              \
    (AMB__DFLAGS_MANDATORY | AMB__DFLAG_MANDATORY_25_DIGEST | AMB__DFLAG_DIST_MONITOR |  \
     AMB__DFLAG_DIST_MONITOR_NAME | AMB__DFLAG_UNICODE_IO | AMB__DFLAG_SMALL_ATOM_TAGS | \
     AMB__DFLAG_SEND_SENDER | AMB__DFLAG_BIG_SEQTRACE_LABELS | AMB__DFLAG_EXIT_PAYLOAD | \
     AMB__DFLAG_FRAGMENTS | AMB__DFLAG_ALIAS | AMB__DFLAG_SPAWN)

/* What a node offers (dist.c): the default and the atom cache, whose
 * references conn.c's reader resolves (we send none). */
#define AMB__DFLAGS_NODE (AMB__DFLAGS_DEFAULT | AMB__DFLAG_DIST_HDR_ATOM_CACHE)

/* A peer's flags with MANDATORY_25_DIGEST expanded into the bits it stands
 * for (dist_util:expand_mandatory_25_flag). */
static inline uint64_t amb__dflags_expand(uint64_t flags)
{
    return (flags & AMB__DFLAG_MANDATORY_25_DIGEST) ? flags | AMB__DFLAGS_MANDATORY_25
                                                    : flags;
}

#endif /* AMB_DIST_FLAGS_H */

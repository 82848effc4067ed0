/*
 * oserr.h - what the operating system says, in the library's words: errno
 * and getaddrinfo codes to AMB_E* codes, and errno to the POSIX names that
 * Erlang uses as error reasons ({tcp_error, S, econnreset}).
 *
 * Invariants:
 *   - Every errno maps to exactly one AMB_E* code; the mapping keeps the
 *     distinctions a caller acts on (refused vs reset vs unreachable vs
 *     address in use) and folds only what no caller can tell apart (EAGAIN
 *     and EWOULDBLOCK, EMFILE and ENFILE). docs/design/sockets.md has the
 *     table and says why each fold is there.
 *   - An errno with no entry is AMB_EIO, never 0 and never a crash.
 *   - The names are static strings, lowercase errno names exactly as
 *     inet:format_error/1 knows them ("econnreset"), "unknown" otherwise.
 * Pure functions of their arguments: any thread, no allocation.
 */
#ifndef AMB_IO_OSERR_H
#define AMB_IO_OSERR_H

/* The AMB_E* code for errno value err (err > 0; 0 or a negative value is
 * AMB_EBADARG, a caller's bug). */
int amb__oserr_code(int err);

/* The AMB_E* code for a getaddrinfo/getnameinfo result eai (EAI_*, not 0);
 * for EAI_SYSTEM, err is the errno it left and decides. */
int amb__oserr_gai(int eai, int err);

/* Erlang's reason atom text for errno value err: "econnreset", "epipe",
 * ...; "unknown" for a value with no name. Static, never NULL. */
const char *amb__oserr_name(int err);

#endif /* AMB_IO_OSERR_H */

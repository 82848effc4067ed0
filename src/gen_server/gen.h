/*
 * gen.h - what the files of src/gen_server share: the protocol atoms, the
 * server's bookkeeping block and name resolution.
 *
 * The protocol (the shapes are OTP's, so a BEAM node reads them later):
 *   call    {'$gen_call', {CallerPid, Alias}, Request}; reply {Alias, Reply}
 *           sent to the alias, which is the caller's monitor of the server
 *           (an alias monitor, AMB_MONITOR_ALIAS_REPLY_DEMONITOR)
 *   cast    {'$gen_cast', Msg}
 *   stop    {'$gen_stop', Reason}: terminate(Reason), then end with Reason
 *   start   {'$gen_start', Alias, Cb, Arg, Name, {} | {ArgTerm}, Link}: the
 *           first message a new server gets from its starter (server.c)
 *   ack     {Alias, ok | ignore | {error, Reason} | {already_started, Pid}}
 *           from a starting server to the starter's alias
 *   timeout {'$gen_timeout', Seq}, sent by the server to itself; only the
 *           latest Seq counts, so a timer that fired late is ignored
 *
 * Only the public API (ambitious.h) is used here (DESIGN §1).
 */
#ifndef AMB_GEN_SERVER_GEN_H
#define AMB_GEN_SERVER_GEN_H

#include <ambitious.h>

/* Atoms made once per OS process. */
typedef struct amb__gen_atoms {
    amb_term gen_start, gen_stop, gen_timeout, bad_call, via, undef, handle_continue,
        unexpected_call, unexpected_cast;
} amb__gen_atoms;
const amb__gen_atoms *amb__gen_atoms_get(void);

/* Resolves a server reference (gen_server.h) to a pid: 0, AMB_ENOPROC,
 * AMB_EBADARG, AMB_ENOTSUP (a remote node). */
int amb__gen_resolve(amb_proc *self, amb_term server, amb_pid *out);

/* Registers the calling process under name (an atom or {via, M, N}):
 * 0, AMB_EEXIST (*holder gets the holder when known, else AMB_NONE),
 * AMB_EBADARG. unregister undoes it (best effort). */
int amb__gen_register(amb_proc *self, amb_term name, amb_pid *holder);
void amb__gen_unregister(amb_proc *self, amb_term name);
/* True when name is a valid server name for registration (an atom other
 * than undefined, or {via, M, N} with M a registered via module). */
bool amb__gen_name_ok(amb_term name);

/* The handler table for a server with user state of state_size bytes:
 * the smallest size class that holds it (server.c). */
const amb_handler *amb__gen_handler_for(size_t state_size);

/* Sends {alias, term} to an alias or pid from the calling process, building
 * the tuple on a scratch scope of its heap. */
int amb__gen_send_tagged(amb_proc *self, amb_term to, amb_term tag, amb_term value);

#endif /* AMB_GEN_SERVER_GEN_H */

/*
 * names.c - server references and names for gen_server: {via, Module, Name}
 * through the via modules registered with amb_via_register, and every other
 * form (pids, local names, {Name, Node}) through amb_dest_resolve, the
 * resolution amb_send uses; and the protocol atoms.
 *
 * Invariants:
 *   - The via table is process-wide (a via module is code, like an Erlang
 *     module) and guarded by one mutex; entries are copied in, so a caller's
 *     amb_via may go away after registering. Lookups copy the entry out
 *     under the lock and call it without the lock held.
 */
#include <pthread.h>
#include <string.h>

#include "gen.h"

#define VIA_MAX 64

static pthread_once_t atoms_once = PTHREAD_ONCE_INIT;
static amb__gen_atoms atoms;

static void atoms_init(void)
{
    atoms.gen_start = amb_atom("$gen_start");
    atoms.gen_stop = amb_atom("$gen_stop");
    atoms.gen_timeout = amb_atom("$gen_timeout");
    atoms.bad_call = amb_atom("bad_call");
    atoms.via = amb_atom("via");
    atoms.undef = amb_atom("undef");
    atoms.handle_continue = amb_atom("handle_continue");
    atoms.unexpected_call = amb_atom("unexpected_call");
    atoms.unexpected_cast = amb_atom("unexpected_cast");
}

const amb__gen_atoms *amb__gen_atoms_get(void)
{
    pthread_once(&atoms_once, atoms_init);
    return &atoms;
}

static pthread_mutex_t via_lock = PTHREAD_MUTEX_INITIALIZER;
static struct via_entry {
    amb_term module;
    amb_via via;
} via_table[VIA_MAX];
static size_t via_count;

static struct via_entry *via_find_locked(amb_term module)
{
    for (size_t i = 0; i < via_count; i++)
        if (via_table[i].module == module)
            return &via_table[i];
    return NULL;
}

int amb_via_register(amb_term module, const amb_via *via)
{
    if (!amb_is_atom(module) || via == NULL || via->register_name == NULL ||
        via->unregister_name == NULL || via->whereis_name == NULL)
        return AMB_EBADARG;
    int rc = 0;
    pthread_mutex_lock(&via_lock);
    if (via_find_locked(module) != NULL)
        rc = AMB_EEXIST;
    else if (via_count == VIA_MAX)
        rc = AMB_ESYSLIMIT;
    else
        via_table[via_count++] = (struct via_entry){module, *via};
    pthread_mutex_unlock(&via_lock);
    return rc;
}

int amb_via_unregister(amb_term module)
{
    if (!amb_is_atom(module))
        return AMB_EBADARG;
    int rc = AMB_ENOTFOUND;
    pthread_mutex_lock(&via_lock);
    struct via_entry *e = via_find_locked(module);
    if (e != NULL) {
        *e = via_table[--via_count];
        rc = 0;
    }
    pthread_mutex_unlock(&via_lock);
    return rc;
}

/* Copies out the via module called module: 0 or AMB_EBADARG (unknown). */
static int via_get(amb_term module, amb_via *out)
{
    pthread_mutex_lock(&via_lock);
    struct via_entry *e = via_find_locked(module);
    if (e != NULL)
        *out = e->via;
    pthread_mutex_unlock(&via_lock);
    return e != NULL ? 0 : AMB_EBADARG;
}

static bool is_via(amb_term t)
{
    return amb_tuple_arity(t) == 3 && amb_tuple_elem(t, 0) == amb__gen_atoms_get()->via &&
           amb_is_atom(amb_tuple_elem(t, 1));
}

bool amb__gen_name_ok(amb_term name)
{
    amb_via via;
    return (amb_is_atom(name) && name != AMB_ATOM_UNDEFINED) ||
           (is_via(name) && via_get(amb_tuple_elem(name, 1), &via) == 0);
}

int amb__gen_resolve(amb_proc *self, amb_term server, amb_pid *out)
{
    int rc;
    if (is_via(server)) {
        amb_via via;
        rc = via_get(amb_tuple_elem(server, 1), &via);
        if (rc == 0)
            rc = via.whereis_name(self, via.ctx, amb_tuple_elem(server, 2), out);
    } else if (amb_type_of(server) == AMB_T_REF) {
        rc = AMB_EBADARG; /* an alias is a destination, not a server */
    } else {
        /* A pid, a name or {Name, Node}: what a send resolves (liveness is
         * the caller's business: a call learns it from its monitor,
         * whereis asks amb_is_process_alive). */
        rc = amb_dest_resolve(self, server, out);
    }
    return rc == AMB_ENOTFOUND ? AMB_ENOPROC : rc;
}

int amb__gen_register(amb_proc *self, amb_term name, amb_pid *holder)
{
    *holder = AMB_NONE;
    amb_pid me = amb_self(self);
    if (amb_is_atom(name)) {
        int rc = amb_register(self, name, me);
        if (rc == AMB_EEXIST && amb_whereis(self, name, holder) != 0)
            *holder = AMB_NONE;
        return rc;
    }
    amb_via via;
    int rc = via_get(amb_tuple_elem(name, 1), &via);
    if (rc != 0)
        return rc;
    amb_term n = amb_tuple_elem(name, 2);
    rc = via.register_name(self, via.ctx, n, me);
    if (rc == AMB_EEXIST && via.whereis_name(self, via.ctx, n, holder) != 0)
        *holder = AMB_NONE;
    return rc;
}

void amb__gen_unregister(amb_proc *self, amb_term name)
{
    if (amb_is_atom(name)) {
        amb_unregister(self, name);
        return;
    }
    amb_via via;
    if (via_get(amb_tuple_elem(name, 1), &via) == 0)
        via.unregister_name(self, via.ctx, amb_tuple_elem(name, 2));
}

int amb_gen_server_whereis(amb_proc *self, amb_term server, amb_pid *out)
{
    if (self == NULL || out == NULL)
        return AMB_EBADARG;
    amb_pid pid;
    int rc = amb__gen_resolve(self, server, &pid);
    amb_term node, mine;
    /* A server of another node: only a call could tell whether it lives. */
    if (rc == 0 &&
        (amb_tuple_arity(pid) == 2 ||
         (amb_pid_get(pid, &node, NULL, NULL, NULL) == 0 &&
          amb_pid_get(amb_self(self), &mine, NULL, NULL, NULL) == 0 && node != mine)))
        rc = AMB_ENOTSUP;
    if (rc == 0 && !amb_is_process_alive(self, pid))
        rc = AMB_ENOPROC;
    if (rc == 0)
        *out = pid;
    return rc;
}

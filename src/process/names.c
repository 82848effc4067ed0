/*
 * names.c - registered names: atom -> process, one table per runtime.
 *
 * An open-addressing hash table under rt->names_lock (registrations are rare;
 * lookups from sends by name take the lock briefly). A process's own `name`
 * field mirrors its entry, so teardown finds it in O(1).
 *
 * Invariants: an entry exists exactly while its process is alive and
 * registered; a process has at most one name; both change only under the
 * lock. Lookups return a block pointer that QSBR keeps valid for the caller
 * (a scheduler thread, or an external thread inside ext_enter/leave).
 *
 * A registration can race with the end of its process (another process
 * registers it). Teardown must not take the lock for every process that has
 * no name, so the two sides use a Dekker handshake with seq_cst on both:
 * register stores the name, then reads `dead`; teardown stores `dead`, then
 * reads the name. At least one of them sees the other: a register that sees
 * `dead` undoes itself (AMB_ENOPROC), and a teardown that sees a name drops
 * it under the lock. Both undo and drop check the entry, so doing both is
 * harmless.
 */
#include "process/remote.h"

typedef struct entry {
    amb_term name; /* 0: empty; TOMB: deleted */
    amb_proc *proc;
} entry;

typedef struct table {
    entry *e;
    size_t cap, used, tombs;
} table;

#define TOMB ((amb_term)1) /* never an atom (atoms end in 100) */

int amb__names_init(amb_rt *rt)
{
    table *t = amb__calloc(1, sizeof *t);
    if (t == NULL)
        return AMB_ENOMEM;
    pthread_mutex_init(&rt->names_lock, NULL);
    rt->names = t;
    return 0;
}

void amb__names_term(amb_rt *rt)
{
    table *t = rt->names;
    if (t == NULL)
        return;
    amb__free(t->e);
    amb__free(t);
    rt->names = NULL;
    pthread_mutex_destroy(&rt->names_lock);
}

static size_t slot_of(amb_term name, size_t cap)
{
    return (size_t)(amb__atom_index(name) * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
}

static entry *find(table *t, amb_term name)
{
    if (t->cap == 0)
        return NULL;
    for (size_t i = slot_of(name, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->e[i].name == name)
            return &t->e[i];
        if (t->e[i].name == 0)
            return NULL;
    }
}

/* Keeps the load (entries and tombstones) at most 3/4; doubles only when
 * live entries need it, else rehashes at the same size to drop tombstones. */
static bool grow(table *t)
{
    if ((t->used + t->tombs + 1) * 4 <= t->cap * 3)
        return true;
    size_t cap = t->cap ? t->cap : 64;
    if ((t->used + 1) * 2 > cap)
        cap *= 2;
    entry *e = amb__calloc(cap, sizeof *e);
    if (e == NULL)
        return false;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->e[i].name == 0 || t->e[i].name == TOMB)
            continue;
        size_t j = slot_of(t->e[i].name, cap);
        while (e[j].name != 0)
            j = (j + 1) & (cap - 1);
        e[j] = t->e[i];
    }
    amb__free(t->e);
    t->e = e;
    t->cap = cap;
    t->tombs = 0;
    return true;
}

static void remove_entry(table *t, entry *e)
{
    /* relaxed: under the registry lock, like every write of a name. */
    atomic_store_explicit(&e->proc->name, AMB_NONE, memory_order_relaxed);
    e->name = TOMB;
    e->proc = NULL;
    t->used--;
    t->tombs++;
}

int amb__names_register(amb_rt *rt, amb_term name, amb_proc *p)
{
    table *t = rt->names;
    int rc = 0;
    pthread_mutex_lock(&rt->names_lock);
    /* relaxed: under the registry lock, which orders it with every write. */
    if (find(t, name) != NULL ||
        atomic_load_explicit(&p->name, memory_order_relaxed) != AMB_NONE) {
        rc = AMB_EEXIST;
    } else if (!grow(t)) {
        rc = AMB_ENOMEM;
    } else {
        size_t i = slot_of(name, t->cap);
        while (t->e[i].name != 0 && t->e[i].name != TOMB)
            i = (i + 1) & (t->cap - 1);
        if (t->e[i].name == TOMB)
            t->tombs--;
        t->e[i] = (entry){name, p};
        t->used++;
        /* seq_cst store then load: the register side of the handshake. */
        atomic_store_explicit(&p->name, name, memory_order_seq_cst);
        if (atomic_load_explicit(&p->dead, memory_order_seq_cst)) {
            remove_entry(t, &t->e[i]);
            rc = AMB_ENOPROC;
        }
    }
    pthread_mutex_unlock(&rt->names_lock);
    return rc;
}

void amb__names_drop(amb_rt *rt, amb_proc *p)
{
    /* seq_cst store then load: the teardown side of the handshake. */
    atomic_store_explicit(&p->dead, true, memory_order_seq_cst);
    if (atomic_load_explicit(&p->name, memory_order_seq_cst) == AMB_NONE)
        return;
    pthread_mutex_lock(&rt->names_lock);
    /* relaxed (load and store): under the registry lock. */
    amb_term name = atomic_load_explicit(&p->name, memory_order_relaxed);
    if (name != AMB_NONE) {
        entry *e = find(rt->names, name);
        if (e != NULL && e->proc == p)
            remove_entry(rt->names, e);
        atomic_store_explicit(&p->name, AMB_NONE, memory_order_relaxed);
    }
    pthread_mutex_unlock(&rt->names_lock);
}

amb_proc *amb__names_lookup(amb_rt *rt, amb_term name)
{
    pthread_mutex_lock(&rt->names_lock);
    entry *e = find(rt->names, name);
    amb_proc *p = e ? e->proc : NULL;
    pthread_mutex_unlock(&rt->names_lock);
    return p;
}

/* A foreign destination (remote.h) resolves to itself while a node runs
 * (the dist layer finds its node); without one it is AMB_ENOTSUP. */
static int foreign(amb_rt *rt, amb_term dest, amb_term *target)
{
    if (amb__remote_get(rt) == NULL)
        return AMB_ENOTSUP;
    *target = dest;
    return 0;
}

int amb__names_resolve(amb_rt *rt, amb_term dest, amb_term *target)
{
    if (amb_is_local_pid(dest)) {
        if (amb__lpid_slot(dest) != rt->node_slot)
            return foreign(rt, dest, target); /* another runtime: another node */
        *target = dest;
        return 0;
    }
    switch (amb_type_of(dest)) {
    case AMB_T_PID:
        return foreign(rt, dest, target); /* a pid of another node */
    case AMB_T_REF: {
        if (amb__alias_is(rt, dest)) {
            *target = dest;
            return 0;
        }
        /* Another node's reference may be an alias there; one of ours that
         * is no alias is no destination. */
        amb_term node;
        uint32_t creation, w[AMB_REF_MAX_WORDS];
        if (amb_ref_get(dest, w, AMB_REF_MAX_WORDS, &node, &creation, NULL) != 0 ||
            amb__rt_is_own_node(rt, node, creation))
            return AMB_EBADARG;
        return foreign(rt, dest, target);
    }
    case AMB_T_ATOM: {
        amb_proc *p = amb__names_lookup(rt, dest);
        if (p == NULL)
            return AMB_ENOTFOUND;
        *target = p->pid;
        return 0;
    }
    case AMB_T_TUPLE: {
        amb_term name = amb_tuple_elem(dest, 0), node = amb_tuple_elem(dest, 1);
        if (amb_tuple_arity(dest) != 2 || !amb_is_atom(name) || !amb_is_atom(node))
            return AMB_EBADARG;
        if (node != amb__rt_node(rt))
            return foreign(rt, dest, target);
        return amb__names_resolve(rt, name, target);
    }
    default:
        return AMB_EBADARG;
    }
}

int amb_dest_resolve(amb_proc *self, amb_term dest, amb_term *out)
{
    if (self == NULL || out == NULL)
        return AMB_EBADARG;
    return amb__names_resolve(self->rt, dest, out);
}

int amb_register(amb_proc *self, amb_term name, amb_pid pid)
{
    if (self == NULL || !amb_is_atom(name) || name == AMB_ATOM_UNDEFINED ||
        amb_type_of(pid) != AMB_T_PID)
        return AMB_EBADARG;
    amb_proc *p = amb__ptab_lookup(self->rt, pid);
    if (p == NULL)
        return AMB_ENOPROC;
    return amb__names_register(self->rt, name, p);
}

int amb_unregister(amb_proc *self, amb_term name)
{
    if (self == NULL || !amb_is_atom(name))
        return AMB_EBADARG;
    int rc = AMB_ENOTFOUND;
    pthread_mutex_lock(&self->rt->names_lock);
    entry *e = find(self->rt->names, name);
    if (e != NULL) {
        remove_entry(self->rt->names, e);
        rc = 0;
    }
    pthread_mutex_unlock(&self->rt->names_lock);
    return rc;
}

int amb_whereis(amb_proc *self, amb_term name, amb_pid *out)
{
    if (self == NULL || !amb_is_atom(name) || out == NULL)
        return AMB_EBADARG;
    amb_proc *p = amb__names_lookup(self->rt, name);
    if (p == NULL)
        return AMB_ENOTFOUND;
    *out = p->pid;
    return 0;
}

amb_term amb_registered(amb_proc *self)
{
    if (self == NULL)
        return AMB_NONE;
    amb_heap *h = amb_proc_heap(self);
    if (h == NULL)
        return AMB_NONE;
    amb_term list = AMB_NIL;
    pthread_mutex_lock(&self->rt->names_lock);
    table *t = self->rt->names;
    for (size_t i = 0; i < t->cap && list != AMB_NONE; i++)
        if (t->e[i].name != 0 && t->e[i].name != TOMB)
            list = amb_cons(h, t->e[i].name, list);
    pthread_mutex_unlock(&self->rt->names_lock);
    return list;
}

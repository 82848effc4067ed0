/*
 * alias.c - process aliases (erlang:alias/1, unalias/1): references that
 * route messages to the process that made them while they are active.
 *
 * Invariants:
 *   - An alias is a reference of this node (under its name now or its
 *     first one: rt.h, amb__rt_is_own_node) with 4 id words: a 64-bit key
 *     and the owner's table index and serial. So a sender routes it with a
 *     table lookup alone, and a reference of any other length is no alias.
 *     The key comes from the reference counter of the scheduler that made
 *     it, with the scheduler's id (as a monitor's key: (n << 10) | id), so
 *     it is never 0 and unique on the node: an old alias never routes to
 *     a process that came to hold the same pid after the pid space cycled
 *     (with a counter per process starting at 1, it did; issue 13).
 *   - The set of active keys belongs to the owner alone (no lock): it is
 *     read and changed only by the owner, in its own calls and drains.
 *   - A message sent to an alias travels as an ALIAS cell whose first
 *     reserved word is the key. The owner's drain turns it into an ordinary
 *     message if the key is active then, and frees it otherwise; so a message
 *     sent after unalias, or a second one through a reply alias, is never
 *     seen, wherever it was when the alias went away.
 *   - Keys with AMB__ALIAS_MONITOR_BIT are the aliases of alias monitors
 *     (monitor.c): the rest of the key is the monitor's key. Both kinds
 *     of key come from the same counters (amb__rt_ref_key), which stay
 *     below 2^60 (fail.h, "Keys"), so amb_alias's own keys never have the
 *     bit and an alias monitor's never equals another alias's. A reply
 *     alias of a monitor ({alias, reply_demonitor}) removes its monitor
 *     too when its message is taken in.
 */
#include "process/fail.h"

#define ALIAS_WORDS 4

struct amb__aliases {
    size_t n, cap;
    struct alias_entry {
        uint64_t key;
        bool reply; /* AMB_ALIAS_REPLY: inactive after one message */
    } * v;
};

static struct amb__aliases *aliases_of(amb_proc *p)
{
    if (p->aliases == NULL)
        p->aliases = amb__calloc(1, sizeof *p->aliases);
    return p->aliases;
}

static struct alias_entry *find(struct amb__aliases *a, uint64_t key)
{
    if (a == NULL)
        return NULL;
    /* Newest first: a call's alias is the last one made. */
    for (size_t i = a->n; i-- > 0;)
        if (a->v[i].key == key)
            return &a->v[i];
    return NULL;
}

static void remove_entry(struct amb__aliases *a, struct alias_entry *e)
{
    *e = a->v[--a->n];
}

bool amb__alias_decode(amb_rt *rt, amb_term ref, uint64_t *key, amb_pid *owner)
{
    /* The box is read in place (term_internal.h: header, node, creation,
     * id words): this runs on every reply. */
    if (!amb__is_boxed(ref))
        return false;
    const uint64_t *p = amb__box(ref);
    if (p[0] != AMB__HDR(AMB__K_REF, ALIAS_WORDS) ||
        !amb__rt_is_own_node(rt, p[1], (uint32_t)p[2]))
        return false;
    uint32_t w[ALIAS_WORDS] = {(uint32_t)p[3], (uint32_t)p[4], (uint32_t)p[5],
                               (uint32_t)p[6]};
    *key = (uint64_t)w[0] | (uint64_t)w[1] << 32;
    if (*key == 0 || w[2] > AMB__LPID_INDEX_MAX || w[3] > AMB__LPID_SERIAL_MAX)
        return false;
    *owner = amb__lpid_make(rt->node_slot, w[2], w[3]);
    return true;
}

amb_term amb__alias_term(amb_rt *rt, amb_heap *h, uint64_t key, amb_pid owner)
{
    uint32_t w[ALIAS_WORDS] = {(uint32_t)key, (uint32_t)(key >> 32),
                               amb__lpid_index(owner), amb__lpid_serial(owner)};
    amb_term node;
    uint32_t creation;
    amb__rt_identity(rt, &node, &creation);
    return amb_ref_term(h, node, creation, w, ALIAS_WORDS);
}

int amb__alias_add(amb_proc *p, uint64_t key, bool reply, amb_term *ref)
{
    amb_heap *h = amb_proc_heap(p);
    struct amb__aliases *a = aliases_of(p);
    if (h == NULL || a == NULL)
        return AMB_ENOMEM;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4;
        void *v = amb__realloc(a->v, cap * sizeof *a->v);
        if (v == NULL)
            return AMB_ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    amb_term r = amb__alias_term(p->rt, h, key, p->pid);
    if (r == AMB_NONE)
        return AMB_ENOMEM;
    a->v[a->n++] = (struct alias_entry){key, reply};
    *ref = r;
    return 0;
}

bool amb__alias_drop(amb_proc *p, uint64_t key)
{
    struct alias_entry *e = find(p->aliases, key);
    if (e != NULL)
        remove_entry(p->aliases, e);
    return e != NULL;
}

int amb_alias(amb_proc *self, unsigned flags, amb_term *out)
{
    if (self == NULL || out == NULL || (flags & ~AMB_ALIAS_REPLY) != 0)
        return AMB_EBADARG;
    uint32_t w[3];
    amb__rt_ref_words(self->task.sched, w);
    return amb__alias_add(self, amb__rt_ref_key(w), (flags & AMB_ALIAS_REPLY) != 0, out);
}

int amb_unalias(amb_proc *self, amb_term alias)
{
    uint64_t key;
    amb_pid owner;
    if (self == NULL || !amb__alias_decode(self->rt, alias, &key, &owner))
        return AMB_EBADARG;
    struct alias_entry *e = owner == self->pid ? find(self->aliases, key) : NULL;
    if (e == NULL)
        return AMB_ENOTFOUND;
    remove_entry(self->aliases, e);
    return 0;
}

bool amb__alias_is(amb_rt *rt, amb_term t)
{
    uint64_t key;
    amb_pid owner;
    return amb__alias_decode(rt, t, &key, &owner);
}

int amb__alias_send(amb_rt *rt, amb__sched *s, amb_term alias, amb_term msg)
{
    uint64_t key;
    amb_pid owner;
    if (!amb__alias_decode(rt, alias, &key, &owner))
        return AMB_EBADARG;
    amb_proc *p = amb__ptab_lookup(rt, owner);
    if (p == NULL)
        return 0; /* the owner is gone: dropped, as any send to the dead */
    amb__msg *m = amb__msg_new_term_after(s, msg, 1);
    if (m == NULL)
        return AMB_ENOMEM;
    m->kind = AMB__MSG_ALIAS;
    m->words[0] = key;
    amb__mailbox_deliver(rt, s, p, m);
    return 0;
}

amb__msg *amb__alias_accept(amb_proc *p, amb__msg *m)
{
    struct alias_entry *e = find(p->aliases, m->words[0]);
    if (e == NULL) {
        amb__msg_free(p->task.sched, m);
        return NULL;
    }
    if (e->reply) {
        uint64_t key = e->key;
        remove_entry(p->aliases, e);
        /* {alias, reply_demonitor}: the reply ends the monitor too. */
        if (key & AMB__ALIAS_MONITOR_BIT)
            amb__monitor_drop(p, key & ~AMB__ALIAS_MONITOR_BIT);
    }
    m->kind = AMB__MSG_TERM;
    return m;
}

size_t amb__alias_bytes(const amb_proc *p)
{
    const struct amb__aliases *a = p->aliases;
    return a ? sizeof *a + a->cap * sizeof *a->v : 0;
}

void amb__alias_free(amb_proc *p)
{
    if (p->aliases != NULL) {
        amb__free(p->aliases->v);
        amb__free(p->aliases);
        p->aliases = NULL;
    }
}

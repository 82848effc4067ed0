/*
 * alias.c - process aliases (erlang:alias/1, unalias/1): references that
 * route messages to the process that made them while they are active.
 *
 * Invariants:
 *   - An alias is a reference of this node with 4 id words: a 64-bit key
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
 */
#include "process/rt.h"

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

/* Decodes an alias of rt: its key and owner pid. False for any other term. */
static bool decode(amb_rt *rt, amb_term ref, uint64_t *key, amb_pid *owner)
{
    /* The box is read in place (term_internal.h: header, node, creation,
     * id words): this runs on every reply. */
    if (!amb__is_boxed(ref))
        return false;
    const uint64_t *p = amb__box(ref);
    if (p[0] != AMB__HDR(AMB__K_REF, ALIAS_WORDS) || p[1] != rt->node_name ||
        (uint32_t)p[2] != rt->creation)
        return false;
    uint32_t w[ALIAS_WORDS] = {(uint32_t)p[3], (uint32_t)p[4], (uint32_t)p[5],
                               (uint32_t)p[6]};
    *key = (uint64_t)w[0] | (uint64_t)w[1] << 32;
    if (*key == 0 || w[2] > AMB__LPID_INDEX_MAX || w[3] > AMB__LPID_SERIAL_MAX)
        return false;
    *owner = amb__lpid_make(rt->node_slot, w[2], w[3]);
    return true;
}

int amb_alias(amb_proc *self, unsigned flags, amb_term *out)
{
    if (self == NULL || out == NULL || (flags & ~AMB_ALIAS_REPLY) != 0)
        return AMB_EBADARG;
    amb_heap *h = amb_proc_heap(self);
    struct amb__aliases *a = aliases_of(self);
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
    uint32_t r[3];
    amb__rt_ref_words(self->task.sched, r);
    uint64_t key = amb__rt_ref_key(r);
    uint32_t w[ALIAS_WORDS] = {(uint32_t)key, (uint32_t)(key >> 32),
                               amb__lpid_index(self->pid), amb__lpid_serial(self->pid)};
    amb_term ref =
        amb_ref_term(h, self->rt->node_name, self->rt->creation, w, ALIAS_WORDS);
    if (ref == AMB_NONE)
        return AMB_ENOMEM;
    a->v[a->n++] = (struct alias_entry){key, (flags & AMB_ALIAS_REPLY) != 0};
    *out = ref;
    return 0;
}

int amb_unalias(amb_proc *self, amb_term alias)
{
    uint64_t key;
    amb_pid owner;
    if (self == NULL || !decode(self->rt, alias, &key, &owner))
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
    return decode(rt, t, &key, &owner);
}

int amb__alias_send(amb_rt *rt, amb__sched *s, amb_term alias, amb_term msg)
{
    uint64_t key;
    amb_pid owner;
    if (!decode(rt, alias, &key, &owner))
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
    if (e->reply)
        remove_entry(p->aliases, e);
    m->kind = AMB__MSG_TERM;
    return m;
}

void amb__alias_free(amb_proc *p)
{
    if (p->aliases != NULL) {
        amb__free(p->aliases->v);
        amb__free(p->aliases);
        p->aliases = NULL;
    }
}

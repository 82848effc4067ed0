/*
 * monitor.c - monitors (DESIGN §4, docs/design/failure.md): amb_monitor,
 * amb_monitor_opt, amb_demonitor, amb_spawn_monitor, and the MONITOR /
 * DEMONITOR / DOWN signals (fail.h).
 *
 * Invariants:
 *   - A monitor is recorded at both ends: the watcher's table holds it under
 *     key << 1 (and counts it in `held`), the target's under (key << 1) | 1.
 *     The key is made from the monitor's reference, so amb_demonitor finds
 *     the entry from the reference alone.
 *   - A DOWN becomes a message only if its monitor is still in the watcher's
 *     table (it is removed then): after amb_demonitor no DOWN of that
 *     monitor reaches the mailbox, and the table never keeps fired monitors.
 *   - A monitor of a pid that is not alive, or of a name nobody has, gives
 *     an immediate DOWN noproc, through the same path as any DOWN.
 *   - A monitor of a registered name (Name or {Name, Node}) watches the
 *     process that has the name when the monitor is made, and records the
 *     name at both ends: its DOWN names the process {Name, Node}, as OTP's.
 *   - A monitor across nodes is the same protocol (remote.h): a monitor of
 *     a process of another node keeps its far end (pid or name, node,
 *     connection) in the watcher's entry and sends MONITOR_P / DEMONITOR_P
 *     through the dist layer; its DOWN comes back as a DOWN cell. A foreign
 *     watcher's MONITOR arrives as the same cell with its pid and
 *     reference in the cell's heap; the target's entry keeps copies, keyed
 *     by a hash of the reference, and its DOWN leaves as MONITOR_P_EXIT
 *     naming the target as it was monitored (its pid, or the name).
 *   - An alias monitor's reference is an alias of the watcher (alias.c)
 *     whose key is the monitor's key with AMB__ALIAS_MONITOR_BIT: one term
 *     names the monitor and routes messages to the watcher, as OTP's
 *     monitor(process, P, [{alias, _}]). With `demonitor` the alias goes
 *     when the monitor goes (its DOWN taken in, or amb_demonitor); with
 *     `reply_demonitor` also when a message through it is taken in, which
 *     ends the monitor (alias.c calls amb__monitor_drop). So a reply that
 *     comes after the DOWN is never seen: the gen_server call's guarantee.
 */
#include "process/fail.h"

/* Words a reference (3 or 4 id words) takes on a heap, with room to spare. */
#define REF_WORDS 8

static uint64_t key_of_words(const uint32_t *w)
{
    uint64_t n = (uint64_t)w[0] | ((uint64_t)w[1] << 32);
    return (n << 10) | (w[2] & 1023u);
}

uint64_t amb__monitor_key(amb_rt *rt, amb_term ref)
{
    amb_term node;
    uint32_t creation, w[AMB_REF_MAX_WORDS];
    size_t n;
    if (amb_ref_get(ref, w, AMB_REF_MAX_WORDS, &node, &creation, &n) != 0 ||
        !amb__rt_is_own_node(rt, node, creation))
        return 0;
    if (n == 3)
        return key_of_words(w);
    uint64_t akey;
    amb_pid owner;
    if (amb__alias_decode(rt, ref, &akey, &owner) && (akey & AMB__ALIAS_MONITOR_BIT))
        return akey & ~AMB__ALIAS_MONITOR_BIT;
    return 0;
}

/* The reference of monitor e (either end's entry: the key, the words and
 * the alias kind are the same) whose watcher is `watcher`, on h. */
static amb_term ref_term(amb_rt *rt, amb_heap *h, const amb__fail_entry *e,
                         amb_pid watcher)
{
    uint64_t key = e->key >> 1;
    return e->alias != AMB_MONITOR_NO_ALIAS
               ? amb__alias_term(rt, h, key | AMB__ALIAS_MONITOR_BIT, watcher)
               : amb__rt_ref_term(rt, h, e->ref);
}

/* Words a copy of t takes on a heap (0 for an immediate). */
static size_t words_of(amb_term t)
{
    return (!amb_is_cons(t) && !amb__is_boxed(t)) ? 0
                                                  : amb_term_size(t) / sizeof(uint64_t);
}

/* The object a DOWN of monitor e names: the target's pid, or {Name, Node}
 * for a monitor of a name (on another node: the entry's node). */
static amb_term down_object(amb_rt *rt, amb_heap *h, const amb__fail_entry *e,
                            amb_pid target)
{
    if (e->name == AMB_NONE)
        return target;
    return AMB_TUPLE(h, e->name, e->remote != NULL ? e->remote->node : amb__rt_node(rt));
}

/* A DOWN cell for monitor e of watcher: {'DOWN', Ref, process, Object,
 * Reason}, Object being the target's pid, or {Name, Node} for a monitor of
 * a name. Panics when out of memory (a DOWN must not be lost). */
static amb__msg *down_cell(amb_rt *rt, amb__sched *s, const amb__fail_entry *e,
                           amb_pid watcher, amb_pid target, amb_term reason)
{
    size_t rw = words_of(reason), tw = words_of(target);
    amb__msg *m = amb__msg_alloc_heap(s, 1, REF_WORDS + 6 + 3 + rw + tw);
    if (m == NULL)
        amb__panic("out of memory sending a DOWN");
    amb_heap *h = amb__msg_heap(m);
    m->kind = AMB__MSG_DOWN;
    m->words[0] = e->key >> 1;
    /* A foreign target's pid is the entry's: the message gets copies. */
    amb_term r = reason, t = target;
    if ((rw != 0 && amb_term_copy(h, reason, &r) != 0) ||
        (tw != 0 && amb_term_copy(h, target, &t) != 0))
        amb__panic("out of memory sending a DOWN");
    amb_term msg = AMB_TUPLE(h, AMB_ATOM_DOWN, ref_term(rt, h, e, watcher),
                             AMB_ATOM_PROCESS, down_object(rt, h, e, t), r);
    if (msg == AMB_NONE)
        amb__panic("out of memory sending a DOWN");
    m->term = msg;
    return m;
}

/* The DOWN of monitor e (a monitor of `target`, own) to its watcher: a DOWN
 * cell, or through the dist layer to a foreign watcher (MONITOR_P_EXIT,
 * naming the target as it was monitored). */
static void send_down(amb_rt *rt, amb__sched *s, const amb__fail_entry *e,
                      amb_pid watcher, amb_pid target, amb_term reason)
{
    if (!amb__rt_own_pid(rt, watcher)) {
        const amb__remote *r = amb__remote_get(rt);
        r->ops->down(r->ctx, s, target, e->name != AMB_NONE ? e->name : target, watcher,
                     e->remote->ref, reason, e->conn);
        return;
    }
    amb__msg *m = down_cell(rt, s, e, watcher, target, reason);
    amb_proc *q = amb__ptab_lookup(rt, watcher);
    if (q != NULL)
        amb__mailbox_deliver(rt, s, q, m);
    else
        amb__msg_free(s, m);
}

/* Tells the target of monitor e (held by `watcher`) that the watcher
 * dropped it (when the target is alive and there is memory for the cell:
 * otherwise the target keeps a stale entry until it ends, and its DOWN is
 * then dropped by the watcher, which no longer has the monitor); a target
 * on another node through the dist layer (DEMONITOR_P). */
static void send_demonitor(amb_rt *rt, amb__sched *s, const amb__fail_entry *e,
                           amb_pid watcher)
{
    if (e->remote != NULL) {
        uint64_t words[REF_WORDS + 1];
        amb_heap h;
        amb__heap_init_fixed(&h, words, REF_WORDS + 1);
        amb_term ref = ref_term(rt, &h, e, watcher);
        const amb__remote *r = amb__remote_get(rt);
        if (ref != AMB_NONE)
            r->ops->demonitor(r->ctx, s, watcher, e->name != AMB_NONE ? e->name : e->pid,
                              e->remote->node, ref, e->conn);
        amb__heap_release(&h);
        return;
    }
    amb_proc *q = amb__ptab_lookup(rt, e->pid);
    amb__msg *m = q ? amb__msg_new_signal(s, AMB__MSG_DEMONITOR, 2) : NULL;
    if (m != NULL) {
        m->words[0] = watcher;
        m->words[1] = e->key >> 1;
        amb__mailbox_deliver(rt, s, q, m);
    }
}

/* The watcher's side of a monitor ends (it fired, or was removed): its
 * alias goes too, unless the alias was made to be removed explicitly. */
static void forget_alias(amb_proc *p, const amb__fail_entry *e)
{
    if (e->alias == AMB_MONITOR_ALIAS_DEMONITOR ||
        e->alias == AMB_MONITOR_ALIAS_REPLY_DEMONITOR)
        amb__alias_drop(p, (e->key >> 1) | AMB__ALIAS_MONITOR_BIT);
}

/* The MONITOR cell's words: watcher, target, key, ref words 0-1, ref word 2,
 * name, alias kind, connection, and a foreign watcher's reference (in the
 * cell's heap with the watcher's pid; AMB_NONE for an own watcher). */
#define MONITOR_WORDS 9

/* The target's entry a MONITOR cell from an own watcher describes (not in
 * any table). */
static amb__fail_entry entry_of_cell(const amb__msg *m)
{
    amb__fail_entry e;
    memset(&e, 0, sizeof e);
    e.key = (m->words[2] << 1) | 1;
    e.pid = m->words[0];
    e.name = m->words[5];
    e.ref[0] = (uint32_t)m->words[3];
    e.ref[1] = (uint32_t)(m->words[3] >> 32);
    e.ref[2] = (uint32_t)m->words[4];
    e.alias = (uint8_t)m->words[6];
    e.conn = (uint32_t)m->words[7];
    return e;
}

amb__msg *amb__monitor_cell(amb__sched *s, amb_pid watcher, amb_pid target, amb_term name,
                            amb_term ref, uint32_t conn)
{
    amb_term w, r;
    amb__msg *m = amb__msg_new_signal_terms(s, AMB__MSG_MONITOR, MONITOR_WORDS, watcher,
                                            ref, &w, &r);
    if (m == NULL)
        return NULL;
    memset(m->words, 0, MONITOR_WORDS * sizeof(uint64_t));
    m->words[0] = w;
    m->words[1] = target;
    m->words[2] = amb__fail_ref_key(ref);
    m->words[5] = name;
    m->words[7] = conn;
    m->words[8] = r;
    return m;
}

/* A MONITOR from a foreign watcher: its entry keeps copies of the watcher's
 * pid and reference. */
static void monitored_remotely(amb_proc *p, amb__msg *m)
{
    struct amb__fail *f = amb__fail_of(p);
    amb_pid watcher = m->words[0];
    amb_term ref = m->words[8], node;
    if (f == NULL || amb_pid_get(watcher, &node, NULL, NULL, NULL) != 0)
        amb__panic("out of memory making a monitor");
    amb__fail_entry *x = amb__fail_put_remote(&f->mons, (m->words[2] << 1) | 1, true,
                                              watcher, ref, node, (uint32_t)m->words[7]);
    if (x == NULL)
        amb__panic("out of memory making a monitor");
    x->name = m->words[5];
    p->flags |= AMB__PF_REMOTE;
}

amb__msg *amb__monitor_signal(amb_proc *p, amb__msg *m)
{
    switch (m->kind) {
    case AMB__MSG_MONITOR: {
        if (m->words[8] != AMB_NONE) {
            monitored_remotely(p, m);
            break;
        }
        amb__fail_entry e = entry_of_cell(m);
        struct amb__fail *f = amb__fail_of(p);
        amb__fail_entry *x = f ? amb__fail_put(&f->mons, e.key, e.pid) : NULL;
        if (x == NULL)
            amb__panic("out of memory making a monitor");
        *x = e;
        break;
    }
    case AMB__MSG_DEMONITOR:
        /* words: watcher, key; from a foreign watcher also its reference
         * (amb__remote_demonitor), whose hash the key is. */
        if (p->fail == NULL)
            break;
        if (amb__rt_own_pid(p->rt, m->words[0])) {
            amb__fail_del(&p->fail->mons, (m->words[1] << 1) | 1, NULL);
        } else {
            amb__fail_entry *x =
                amb__fail_find_term(&p->fail->mons, (m->words[1] << 1) | 1, m->words[2]);
            if (x != NULL)
                amb__fail_del_entry(&p->fail->mons, x, NULL);
        }
        break;
    case AMB__MSG_DOWN: {
        /* A message only while the monitor is active (demonitor wins). */
        amb__fail_entry e;
        if (p->fail != NULL && amb__fail_del(&p->fail->mons, m->words[0] << 1, &e)) {
            p->fail->held--;
            forget_alias(p, &e);
            amb__fail_release(&e);
            m->kind = AMB__MSG_TERM;
            return m;
        }
        break;
    }
    default:
        amb__panic("not a monitor signal: %u", m->kind);
    }
    amb__msg_free(p->task.sched, m);
    return NULL;
}

void amb__monitor_discard(amb_rt *rt, amb__sched *s, amb__msg *m)
{
    /* The target ended before it saw the monitor: DOWN noproc. A foreign
     * watcher's pid and reference live in the cell: the DOWN goes first. */
    amb__fail_entry e = entry_of_cell(m);
    amb_pid target = m->words[1];
    amb__fail_remote far = {.ref = m->words[8]};
    if (m->words[8] != AMB_NONE)
        e.remote = &far;
    send_down(rt, s, &e, e.pid, target, AMB_ATOM_NOPROC);
    amb__msg_free(s, m);
}

void amb__monitor_teardown(amb__sched *s, amb_proc *p)
{
    const amb__fail_table *t = &p->fail->mons;
    for (size_t i = 0; i < t->cap; i++) {
        const amb__fail_entry *e = &t->e[i];
        if (e->key == 0)
            continue;
        if (e->key & 1)
            send_down(p->rt, s, e, e->pid, p->pid, p->exit_reason);
        else /* a monitor this process held: the target forgets it */
            send_demonitor(p->rt, s, e, p->pid);
    }
}

void amb__monitor_nodedown(amb_proc *p, amb_term node, uint32_t conn)
{
    amb__fail_table *t = &p->fail->mons;
    /* Monitors p holds: a DOWN noconnection each, handled later in this
     * drain as the far end's own DOWN would be (the table is not changed
     * while it is walked)... */
    for (size_t i = 0; i < t->cap; i++) {
        const amb__fail_entry *e = &t->e[i];
        if (e->key == 0 || (e->key & 1) || e->remote == NULL || e->conn != conn ||
            e->remote->node != node)
            continue;
        amb__mailbox_deliver(
            p->rt, p->task.sched, p,
            down_cell(p->rt, p->task.sched, e, p->pid, e->pid, AMB_ATOM_NOCONNECTION));
    }
    /* ...then the monitors of p by watchers there end. A deletion shifts a
     * later entry into slot i: look at i again. */
    for (size_t i = 0; i < t->cap; i++) {
        amb__fail_entry *e = &t->e[i];
        while (e->key != 0 && (e->key & 1) && e->remote != NULL && e->conn == conn &&
               e->remote->node == node)
            amb__fail_del_entry(t, e, NULL);
    }
}

size_t amb__monitor_count(const amb_proc *p)
{
    return p->fail ? p->fail->held : 0;
}

amb_term amb__monitor_list(const amb_proc *p, amb_heap *h, bool held)
{
    amb_term l = AMB_NIL;
    const amb__fail_table *t = p->fail ? &p->fail->mons : NULL;
    for (size_t i = 0; t != NULL && i < t->cap; i++) {
        const amb__fail_entry *e = &t->e[i];
        if (e->key == 0 || (e->key & 1) == held)
            continue;
        /* A foreign pid is the entry's: the list gets a copy. */
        amb_term item = e->pid;
        if (amb__is_boxed(item) && amb_term_copy(h, e->pid, &item) != 0)
            return AMB_NONE;
        if (held) /* {process, Pid} or {process, {Name, Node}}, as OTP's */
            item = AMB_TUPLE(h, AMB_ATOM_PROCESS, down_object(p->rt, h, e, item));
        l = amb_cons(h, item, l);
    }
    return l;
}

void amb__monitor_drop(amb_proc *p, uint64_t key)
{
    amb__fail_entry e;
    if (p->fail != NULL && amb__fail_del(&p->fail->mons, key << 1, &e)) {
        p->fail->held--;
        send_demonitor(p->rt, p->task.sched, &e, p->pid);
        amb__fail_release(&e);
    }
}

/* Both blocks are set up before the child is published, so nobody can see
 * one without the other. */
int amb__monitor_spawn(amb_proc *parent, amb_proc *child, amb_term *ref)
{
    struct amb__fail *pf = amb__fail_of(parent), *cf = amb__fail_of(child);
    amb_heap *h = amb_proc_heap(parent);
    if (pf == NULL || cf == NULL || h == NULL)
        return AMB_ENOMEM;
    uint32_t w[3];
    amb__rt_ref_words(parent->task.sched, w);
    amb_term r = amb__rt_ref_term(parent->rt, h, w);
    if (r == AMB_NONE)
        return AMB_ENOMEM;
    uint64_t key = key_of_words(w);
    amb__fail_entry *ce = amb__fail_put(&cf->mons, (key << 1) | 1, parent->pid);
    if (ce == NULL)
        return AMB_ENOMEM;
    memcpy(ce->ref, w, sizeof ce->ref);
    amb__fail_entry *pe = amb__fail_put(&pf->mons, key << 1, child->pid);
    if (pe == NULL)
        return AMB_ENOMEM;
    memcpy(pe->ref, w, sizeof pe->ref);
    pf->held++;
    if (ref != NULL)
        *ref = r;
    return 0;
}

void amb__monitor_spawn_undo(amb_proc *parent, amb_proc *child)
{
    struct amb__fail *pf = parent->fail;
    for (size_t i = 0; pf != NULL && i < pf->mons.cap; i++) {
        if (pf->mons.e[i].key != 0 && !(pf->mons.e[i].key & 1) &&
            pf->mons.e[i].pid == child->pid) {
            amb__fail_del(&pf->mons, pf->mons.e[i].key, NULL);
            pf->held--;
            break;
        }
    }
}

int amb_spawn_monitor(amb_proc *self, amb_fn *fn, void *arg, amb_pid *out, amb_term *ref)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    amb_spawn_opts o = {.name = AMB_NONE, .monitor = true};
    return amb_spawn_opt(self, fn, arg, &o, out, ref);
}

/* What a monitor of target watches: a pid (*name AMB_NONE), or the process
 * registered under a name, an atom or {Name, Node} with this node's name
 * (*name the atom, *pid its holder now or AMB_NONE). *node is AMB_NONE for
 * those, and the other node for a foreign pid or {Name, Node} of another
 * node (then *pid is the pid or AMB_NONE). AMB_EBADARG for anything else,
 * AMB_ENOTSUP for another node when no node runs. */
static int monitor_target(amb_rt *rt, amb_term target, amb_pid *pid, amb_term *name,
                          amb_term *node)
{
    *node = AMB_NONE;
    if (amb_type_of(target) == AMB_T_PID) {
        *pid = target;
        *name = AMB_NONE;
        int rc = amb__fail_check_pid(rt, target);
        if (rc == 0 && !amb__rt_own_pid(rt, target) &&
            amb_pid_get(target, node, NULL, NULL, NULL) != 0)
            rc = AMB_EBADARG;
        return rc;
    }
    amb_term n = target;
    if (amb_tuple_arity(target) == 2) {
        n = amb_tuple_elem(target, 0);
        amb_term at = amb_tuple_elem(target, 1);
        if (!amb_is_atom(n) || !amb_is_atom(at))
            return AMB_EBADARG;
        if (at != amb__rt_node(rt)) {
            if (amb__remote_get(rt) == NULL)
                return AMB_ENOTSUP;
            *pid = AMB_NONE;
            *name = n;
            *node = at;
            return 0;
        }
    } else if (!amb_is_atom(target)) {
        return AMB_EBADARG;
    }
    amb_proc *q = amb__names_lookup(rt, n);
    *pid = q != NULL ? q->pid : AMB_NONE;
    *name = n;
    return 0;
}

/* The reference of a new monitor with key, of kind alias: an alias of self
 * (made active here) or a plain reference on self's heap. 0, AMB_ENOMEM. */
static int new_ref(amb_proc *self, const uint32_t w[3], uint64_t key,
                   amb_monitor_alias alias, amb_term *r)
{
    if (alias != AMB_MONITOR_NO_ALIAS)
        return amb__alias_add(self, key | AMB__ALIAS_MONITOR_BIT,
                              alias == AMB_MONITOR_ALIAS_REPLY_DEMONITOR, r);
    *r = amb__rt_ref_term(self->rt, amb_proc_heap(self), w);
    return *r == AMB_NONE ? AMB_ENOMEM : 0;
}

/* amb_monitor_opt of a process of another node (a foreign pid, or a name
 * on node): the entry and the reference first, then MONITOR_P through the
 * dist layer; its DOWN comes back as a DOWN cell (remote.c). */
static int monitor_remote(amb_proc *self, struct amb__fail *f, amb__fail_entry *e,
                          amb_term node, amb_term *ref)
{
    uint64_t key = e->key >> 1;
    amb_term r;
    int rc = new_ref(self, e->ref, key, e->alias, &r);
    if (rc != 0)
        return rc;
    amb__fail_entry *x =
        amb__fail_put_remote(&f->mons, e->key, false, e->pid, AMB_NONE, node, 0);
    if (x == NULL) {
        if (e->alias != AMB_MONITOR_NO_ALIAS)
            amb__alias_drop(self, key | AMB__ALIAS_MONITOR_BIT);
        return AMB_ENOMEM;
    }
    x->name = e->name;
    memcpy(x->ref, e->ref, sizeof x->ref);
    x->alias = e->alias;
    f->held++;
    self->flags |= AMB__PF_REMOTE;
    const amb__remote *rem = amb__remote_get(self->rt);
    uint32_t conn;
    rc = rem->ops->monitor(rem->ctx, self, e->name != AMB_NONE ? e->name : e->pid, node,
                           r, &conn);
    if (rc != 0) {
        amb__fail_del(&f->mons, e->key, NULL);
        f->held--;
        if (e->alias != AMB_MONITOR_NO_ALIAS)
            amb__alias_drop(self, key | AMB__ALIAS_MONITOR_BIT);
        return rc;
    }
    amb__fail_find(&f->mons, e->key)->conn = conn;
    if (ref != NULL)
        *ref = r;
    return 0;
}

int amb_monitor_opt(amb_proc *self, amb_term target, const amb_monitor_opts *opts,
                    amb_term *ref)
{
    amb_monitor_alias alias = opts != NULL ? opts->alias : AMB_MONITOR_NO_ALIAS;
    if (self == NULL || (unsigned)alias > AMB_MONITOR_ALIAS_REPLY_DEMONITOR)
        return AMB_EBADARG;
    amb_pid pid;
    amb_term name, node;
    int rc = monitor_target(self->rt, target, &pid, &name, &node);
    if (rc != 0)
        return rc;
    amb__proc_reduce(self);
    struct amb__fail *f = amb__fail_of(self);
    amb_heap *h = amb_proc_heap(self);
    if (f == NULL || h == NULL)
        return AMB_ENOMEM;
    amb__sched *s = self->task.sched;
    amb__fail_entry e;
    memset(&e, 0, sizeof e);
    amb__rt_ref_words(s, e.ref);
    uint64_t key = key_of_words(e.ref);
    e.key = key << 1;
    e.pid = pid;
    e.name = name;
    e.alias = (uint8_t)alias;
    if (node != AMB_NONE)
        return monitor_remote(self, f, &e, node, ref);
    /* Everything that can fail comes before anything shows: the cell, the
     * reference (an alias monitor's is an alias, made active here), the
     * table entry. */
    amb_proc *q = amb__ptab_lookup(self->rt, pid);
    amb__msg *m = q ? amb__msg_new_signal(s, AMB__MSG_MONITOR, MONITOR_WORDS) : NULL;
    amb_term r = AMB_NONE;
    if (q != NULL && m == NULL)
        return AMB_ENOMEM;
    rc = new_ref(self, e.ref, key, alias, &r);
    amb__fail_entry *x = rc == 0 ? amb__fail_put(&f->mons, e.key, pid) : NULL;
    if (x == NULL) {
        if (rc == 0 && alias != AMB_MONITOR_NO_ALIAS)
            amb__alias_drop(self, key | AMB__ALIAS_MONITOR_BIT);
        amb__msg_free(s, m);
        return AMB_ENOMEM;
    }
    *x = e;
    f->held++;
    if (ref != NULL)
        *ref = r;
    if (q == NULL) {
        /* Not alive, or nobody has the name: an immediate DOWN noproc,
         * through the same path as any DOWN (it removes the monitor when it
         * is drained). */
        amb__mailbox_deliver(self->rt, s, self,
                             down_cell(self->rt, s, &e, self->pid, pid, AMB_ATOM_NOPROC));
        return 0;
    }
    memset(m->words, 0, MONITOR_WORDS * sizeof(uint64_t));
    m->words[0] = self->pid;
    m->words[1] = pid;
    m->words[2] = key;
    m->words[3] = (uint64_t)e.ref[0] | ((uint64_t)e.ref[1] << 32);
    m->words[4] = e.ref[2];
    m->words[5] = name;
    m->words[6] = (uint64_t)alias;
    m->words[8] = AMB_NONE;
    amb__mailbox_deliver(self->rt, s, q, m);
    return 0;
}

int amb_monitor(amb_proc *self, amb_term target, amb_term *ref)
{
    return amb_monitor_opt(self, target, NULL, ref);
}

/* {'DOWN', Ref, _, _, _} for ref. */
static bool is_down_of(void *ctx, amb_term msg)
{
    return amb_is_record(msg, AMB_ATOM_DOWN, 5) &&
           amb_equal(amb_tuple_elem(msg, 1), *(amb_term *)ctx);
}

int amb_demonitor(amb_proc *self, amb_term ref, unsigned flags)
{
    if (self == NULL || amb_type_of(ref) != AMB_T_REF || (flags & ~AMB_DEMONITOR_FLUSH))
        return AMB_EBADARG;
    if ((flags & AMB_DEMONITOR_FLUSH) && !amb__proc_may_wait(self))
        return AMB_ESTATE; /* a flush takes messages: not in a match function */
    uint64_t key = amb__monitor_key(self->rt, ref);
    amb__fail_entry e;
    bool active =
        key != 0 && self->fail != NULL && amb__fail_del(&self->fail->mons, key << 1, &e);
    if (active) {
        self->fail->held--;
        forget_alias(self, &e);
        send_demonitor(self->rt, self->task.sched, &e, self->pid);
        amb__fail_release(&e);
    }
    if ((flags & AMB_DEMONITOR_FLUSH) && !active) {
        /* A DOWN becomes a message only when its monitor is active, and
         * removes it then: so an active monitor has no DOWN in the private
         * queue, and one still in the mailbox is dropped when drained (the
         * monitor is gone). Only a monitor that has fired can have its DOWN
         * in the private queue; that one is looked for here. So the flush
         * after a gen_server call's reply costs nothing, however long the
         * caller's queue (issue 13, item 8). */
        amb_term r = ref;
        amb__mailbox_remove_if(self, is_down_of, &r);
    }
    return active ? 0 : AMB_ENOTFOUND;
}

/*
 * monitor.c - monitors (DESIGN §4, docs/design/failure.md): amb_monitor,
 * amb_monitor_opt, amb_demonitor, amb_spawn_monitor, and the MONITOR /
 * DEMONITOR / DOWN signals (fail.h).
 *
 * Invariants:
 *   - A monitor has an end in each process's index (fail.h), both
 *     allocated by the watcher when it makes the monitor:
 *       the watcher's end, key (monitor key << 4) | HELD, counted in nheld:
 *         a DEMONITOR cell {watcher, key, target, name, alias kind}, sent
 *         as it is by amb_demonitor or when the watcher ends;
 *       the target's end, key (monitor key << 4) | TARGET: the MONITOR cell
 *         {watcher, target, key, ref, name, alias kind}, a class-2 cell
 *         whose reserved words also hold the DOWN tuple, its object
 *         ({Name, Node} for a monitor of a name) and the reference it names,
 *         so that it turns into the DOWN in place when the target ends (or
 *         at once, when the target is found dead).
 *     The monitor key comes from the reference (amb__rt_ref_key), so
 *     amb_demonitor finds the end from the reference alone.
 *   - A DOWN becomes a message only if the watcher's end is still there (it
 *     is removed then): after amb_demonitor no DOWN of that monitor reaches
 *     the mailbox, and the index never keeps fired monitors.
 *   - A monitor of a pid that is not alive, or of a name nobody has, gives
 *     an immediate DOWN noproc, through the same path as any DOWN.
 *   - A monitor of a registered name (Name or {Name, Node}) watches the
 *     process that has the name when the monitor is made, and records the
 *     name at both ends: its DOWN names the process {Name, Node}, as OTP's.
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

/* The MONITOR / DOWN cell: reserved words, then the reason's room. */
enum {
    W_WATCHER,
    W_TARGET, /* AMB_NONE: a name nobody had */
    W_KEY,
    W_REF01, /* the reference's words 0 and 1 */
    W_REF2,
    W_NAME,                  /* the name monitored, or AMB_NONE */
    W_ALIAS,                 /* the amb_monitor_alias */
    W_TUPLE,                 /* {'DOWN', Ref, process, Object, Reason}: 6 words */
    W_OBJECT = W_TUPLE + 6,  /* {Name, Node}: 3 words */
    W_REFBOX = W_OBJECT + 3, /* the reference's box: 3 + 3 words, or an
                                alias's 3 + 4 */
    MON_WORDS = W_REFBOX + 7 /* 23 */
};
#define MON_REASON_ROOM 9 /* a class-2 cell (msg.c): 32 words */

/* The watcher's end / DEMONITOR cell. */
enum { H_WATCHER, H_KEY, H_TARGET, H_NAME, H_ALIAS, HELD_WORDS };

static void ref_words_of(const amb__msg *m, uint32_t w[3])
{
    w[0] = (uint32_t)m->words[W_REF01];
    w[1] = (uint32_t)(m->words[W_REF01] >> 32);
    w[2] = (uint32_t)m->words[W_REF2];
}

/* The key of a reference made by this runtime's monitors (a plain one, or
 * an alias monitor's alias); 0 otherwise. */
static uint64_t key_of_ref(amb_rt *rt, amb_term ref)
{
    amb_term node;
    uint32_t creation, w[AMB_REF_MAX_WORDS];
    size_t n;
    if (amb_ref_get(ref, w, AMB_REF_MAX_WORDS, &node, &creation, &n) != 0 ||
        node != rt->node_name || creation != rt->creation)
        return 0;
    if (n == 3)
        return amb__rt_ref_key(w);
    uint64_t akey;
    amb_pid owner;
    if (amb__alias_decode(rt, ref, &akey, &owner) && (akey & AMB__ALIAS_MONITOR_BIT))
        return akey & ~AMB__ALIAS_MONITOR_BIT;
    return 0;
}

/* Turns MONITOR cell m into the DOWN {'DOWN', Ref, process, Object,
 * Reason}, in place (the tuple, its object and the reference in its
 * reserved words, the reason behind them), and delivers it to the watcher
 * (freed when the watcher is dead). Ref is the watcher's alias for an
 * alias monitor; Object is {Name, Node} for a monitor of a name, else the
 * target's pid. Needs no memory unless a boxed reason does not fit. */
static void send_down(amb_rt *rt, amb__sched *s, amb__msg *m, amb_term reason)
{
    m->kind = AMB__MSG_DOWN;
    amb__fail_reason(rt, m, reason); /* into its heap, empty until now */
    amb_heap h;
    amb__heap_init_fixed(&h, &m->words[W_REFBOX], MON_WORDS - W_REFBOX);
    amb_term ref;
    if (m->words[W_ALIAS] != AMB_MONITOR_NO_ALIAS) {
        ref = amb__alias_term(rt, &h, m->words[W_KEY] | AMB__ALIAS_MONITOR_BIT,
                              m->words[W_WATCHER]);
    } else {
        uint32_t w[3];
        ref_words_of(m, w);
        ref = amb__rt_ref_term(rt, &h, w);
    }
    AMB__CHECK(h.blocks == NULL && ref != AMB_NONE);
    amb_term object = m->words[W_TARGET];
    if (m->words[W_NAME] != AMB_NONE) {
        amb__heap_init_fixed(&h, &m->words[W_OBJECT], W_REFBOX - W_OBJECT);
        object = AMB_TUPLE(&h, m->words[W_NAME], rt->node_name);
        AMB__CHECK(h.blocks == NULL && object != AMB_NONE);
    }
    amb__heap_init_fixed(&h, &m->words[W_TUPLE], W_OBJECT - W_TUPLE);
    m->term = AMB_TUPLE(&h, AMB_ATOM_DOWN, ref, AMB_ATOM_PROCESS, object, m->term);
    AMB__CHECK(h.blocks == NULL && m->term != AMB_NONE);
    amb_proc *q = amb__ptab_lookup(rt, m->words[W_WATCHER]);
    if (q != NULL)
        amb__mailbox_deliver(rt, s, q, m);
    else
        amb__msg_free(s, m);
}

/* Sends the watcher's end e as the DEMONITOR it is, to its target (freed
 * when the target is dead, or was never found: it has no end of this
 * monitor). */
static void send_demonitor(amb_rt *rt, amb__sched *s, amb__msg *e)
{
    amb_proc *q = amb__ptab_lookup(rt, e->words[H_TARGET]);
    if (q != NULL)
        amb__mailbox_deliver(rt, s, q, e);
    else
        amb__msg_free(s, e);
}

/* The watcher's end e leaves p's index (its monitor fired, or was
 * removed): its alias goes too, unless the alias was made to be removed
 * explicitly. */
static void forget(amb_proc *p, const amb__msg *e)
{
    p->links_mons.nheld--;
    if (e->words[H_ALIAS] == AMB_MONITOR_ALIAS_DEMONITOR ||
        e->words[H_ALIAS] == AMB_MONITOR_ALIAS_REPLY_DEMONITOR)
        amb__alias_drop(p, e->words[H_KEY] | AMB__ALIAS_MONITOR_BIT);
}

/* Takes the watcher's end of monitor key out of p's index, or NULL. */
static amb__msg *take_held(amb_proc *p, uint64_t key)
{
    amb__msg *e =
        key != 0 ? amb__fail_take(p, amb__fail_mon_key(key, AMB__FAIL_HELD)) : NULL;
    if (e != NULL)
        forget(p, e);
    return e;
}

amb__msg *amb__monitor_signal(amb_proc *p, amb__msg *m)
{
    amb__sched *s = p->task.sched;
    switch (m->kind) {
    case AMB__MSG_MONITOR:
        /* The cell is our end of the monitor. */
        m->seq = amb__fail_mon_key(m->words[W_KEY], AMB__FAIL_TARGET);
        amb__fail_add(p, m);
        return NULL;
    case AMB__MSG_DEMONITOR:
        amb__msg_free(
            s, amb__fail_take(p, amb__fail_mon_key(m->words[H_KEY], AMB__FAIL_TARGET)));
        break;
    case AMB__MSG_DOWN: {
        /* A message only while the monitor is active (demonitor wins). */
        amb__msg *e = take_held(p, m->words[W_KEY]);
        if (e != NULL) {
            amb__msg_free(s, e);
            m->kind = AMB__MSG_TERM;
            return m;
        }
        break;
    }
    default:
        amb__panic("not a monitor signal: %u", m->kind);
    }
    amb__msg_free(s, m);
    return NULL;
}

void amb__monitor_discard(amb_rt *rt, amb__sched *s, amb__msg *m)
{
    send_down(rt, s, m, AMB_ATOM_NOPROC);
}

void amb__monitor_end(amb__sched *s, amb_proc *p, amb__msg *e)
{
    if (e->kind == AMB__MSG_MONITOR)
        send_down(p->rt, s, e, p->exit_reason);
    else /* a monitor p held: its target forgets it */
        send_demonitor(p->rt, s, e);
}

/* amb__monitor_list's walk: ctx is {p, heap, held?, list so far}. */
struct list_walk {
    const amb_proc *p;
    amb_heap *h;
    bool held;
    amb_term l;
};

static void list_one(void *ctx, const amb__msg *e)
{
    struct list_walk *w = ctx;
    amb_term item;
    if (w->held && e->kind == AMB__MSG_DEMONITOR) {
        /* {process, Pid} or {process, {Name, Node}}, as OTP's */
        amb_term name = e->words[H_NAME];
        item = AMB_TUPLE(w->h, AMB_ATOM_PROCESS,
                         name != AMB_NONE ? AMB_TUPLE(w->h, name, w->p->rt->node_name)
                                          : e->words[H_TARGET]);
    } else if (!w->held && e->kind == AMB__MSG_MONITOR) {
        item = e->words[W_WATCHER]; /* monitored_by */
    } else {
        return;
    }
    w->l = amb_cons(w->h, item, w->l);
}

amb_term amb__monitor_list(const amb_proc *p, amb_heap *h, bool held)
{
    struct list_walk w = {p, h, held, AMB_NIL};
    amb__fail_each(p, list_one, &w);
    return w.l;
}

void amb__monitor_drop(amb_proc *p, uint64_t key)
{
    amb__msg *e = take_held(p, key);
    if (e != NULL)
        send_demonitor(p->rt, p->task.sched, e);
}

/* A new monitor of target (AMB_NONE: a name nobody has) through name
 * (AMB_NONE: a pid) by watcher, with alias kind `alias`: both ends, and the
 * reference on the watcher's heap (an alias monitor's alias made active).
 * AMB_ENOMEM (nothing made). */
static int make_ends(amb_proc *watcher, amb_pid target, amb_term name,
                     amb_monitor_alias alias, amb__msg **held, amb__msg **mon,
                     amb_term *ref)
{
    amb__sched *s = watcher->task.sched;
    amb_heap *h = amb_proc_heap(watcher);
    amb__msg *e = amb__msg_new_reserved(s, AMB__MSG_DEMONITOR, HELD_WORDS, 0);
    amb__msg *m =
        e != NULL ? amb__msg_new_reserved(s, AMB__MSG_MONITOR, MON_WORDS, MON_REASON_ROOM)
                  : NULL;
    uint32_t w[3];
    amb__rt_ref_words(s, w);
    uint64_t key = amb__rt_ref_key(w);
    amb_term r = AMB_NONE;
    int rc = m != NULL && h != NULL ? 0 : AMB_ENOMEM;
    if (rc == 0 && alias != AMB_MONITOR_NO_ALIAS)
        rc = amb__alias_add(watcher, key | AMB__ALIAS_MONITOR_BIT,
                            alias == AMB_MONITOR_ALIAS_REPLY_DEMONITOR, &r);
    else if (rc == 0 && (r = amb__rt_ref_term(watcher->rt, h, w)) == AMB_NONE)
        rc = AMB_ENOMEM;
    if (rc != 0) {
        amb__msg_free(s, e);
        amb__msg_free(s, m);
        return rc;
    }
    e->words[H_WATCHER] = watcher->pid;
    e->words[H_KEY] = key;
    e->words[H_TARGET] = target;
    e->words[H_NAME] = name;
    e->words[H_ALIAS] = (uint64_t)alias;
    e->seq = amb__fail_mon_key(key, AMB__FAIL_HELD);
    m->words[W_WATCHER] = watcher->pid;
    m->words[W_TARGET] = target;
    m->words[W_KEY] = key;
    m->words[W_REF01] = (uint64_t)w[0] | ((uint64_t)w[1] << 32);
    m->words[W_REF2] = w[2];
    m->words[W_NAME] = name;
    m->words[W_ALIAS] = (uint64_t)alias;
    *held = e;
    *mon = m;
    *ref = r;
    return 0;
}

/* Both ends are set up before the child is published, so nobody can see
 * one without the other. */
int amb__monitor_spawn(amb_proc *parent, amb_proc *child, amb_term *ref)
{
    amb__msg *e, *m;
    amb_term r;
    int rc = make_ends(parent, child->pid, AMB_NONE, AMB_MONITOR_NO_ALIAS, &e, &m, &r);
    if (rc != 0)
        return rc;
    m->seq = amb__fail_mon_key(m->words[W_KEY], AMB__FAIL_TARGET);
    amb__fail_add(child, m);
    amb__fail_add(parent, e);
    parent->links_mons.nheld++;
    if (ref != NULL)
        *ref = r;
    return 0;
}

void amb__monitor_spawn_undo(amb_proc *parent, amb_term ref)
{
    amb__msg *e = ref != AMB_NONE ? take_held(parent, key_of_ref(parent->rt, ref)) : NULL;
    amb__msg_free(parent->task.sched, e);
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
 * (*name the atom, *pid its holder now or AMB_NONE). AMB_EBADARG for
 * anything else, AMB_ENOTSUP for another node. */
static int monitor_target(amb_rt *rt, amb_term target, amb_pid *pid, amb_term *name)
{
    if (amb_type_of(target) == AMB_T_PID) {
        *pid = target;
        *name = AMB_NONE;
        return amb__fail_check_pid(rt, target);
    }
    amb_term n = target;
    if (amb_tuple_arity(target) == 2) {
        n = amb_tuple_elem(target, 0);
        amb_term node = amb_tuple_elem(target, 1);
        if (!amb_is_atom(n) || !amb_is_atom(node))
            return AMB_EBADARG;
        if (node != rt->node_name)
            return AMB_ENOTSUP; /* until distribution exists */
    } else if (!amb_is_atom(target)) {
        return AMB_EBADARG;
    }
    amb_proc *q = amb__names_lookup(rt, n);
    *pid = q != NULL ? q->pid : AMB_NONE;
    *name = n;
    return 0;
}

int amb_monitor_opt(amb_proc *self, amb_term target, const amb_monitor_opts *opts,
                    amb_term *ref)
{
    amb_monitor_alias alias = opts != NULL ? opts->alias : AMB_MONITOR_NO_ALIAS;
    if (self == NULL || (unsigned)alias > AMB_MONITOR_ALIAS_REPLY_DEMONITOR)
        return AMB_EBADARG;
    amb_pid pid;
    amb_term name;
    int rc = monitor_target(self->rt, target, &pid, &name);
    if (rc != 0)
        return rc;
    amb__proc_reduce(self);
    return amb__monitor_make(self, pid, amb__ptab_lookup(self->rt, pid), name, alias,
                             ref);
}

int amb_monitor(amb_proc *self, amb_term target, amb_term *ref)
{
    return amb_monitor_opt(self, target, NULL, ref);
}

int amb__monitor_make(amb_proc *self, amb_pid pid, amb_proc *q, amb_term name,
                      amb_monitor_alias alias, amb_term *ref)
{
    amb__msg *e, *m;
    amb_term r;
    int rc = make_ends(self, pid, name, alias, &e, &m, &r);
    if (rc != 0)
        return rc;
    amb__fail_add(self, e);
    self->links_mons.nheld++;
    if (ref != NULL)
        *ref = r;
    if (q == NULL) {
        /* Not alive, or nobody has the name: an immediate DOWN noproc,
         * through the same path as any DOWN (it removes the monitor when it
         * is drained). */
        send_down(self->rt, self->task.sched, m, AMB_ATOM_NOPROC);
        return 0;
    }
    amb__mailbox_deliver(self->rt, self->task.sched, q, m);
    return 0;
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
    amb__msg *e = take_held(self, key_of_ref(self->rt, ref));
    if (e != NULL)
        send_demonitor(self->rt, self->task.sched, e);
    if ((flags & AMB_DEMONITOR_FLUSH) && e == NULL) {
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
    return e != NULL ? 0 : AMB_ENOTFOUND;
}

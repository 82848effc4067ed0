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
 *         {watcher, target, key, name, alias kind}, a cell
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
 *   - A monitor across nodes is the same protocol (remote.h), its ends
 *     cells in the same index:
 *       a monitor we hold of a process of another node (a foreign pid, or
 *         {Name, Node}) is the watcher's end alone, with the node and the
 *         connection in H_NODE / H_CONN, the foreign pid in its heap, and
 *         room there for its DOWN: MONITOR_P and DEMONITOR_P leave through
 *         the dist layer's ops; the far end's DOWN comes in as a DOWN cell
 *         (amb__monitor_down_cell), and a lost connection turns the end
 *         itself into the DOWN noconnection (amb__monitor_nodedown);
 *       a monitor of us by a watcher there is the MONITOR cell it came in
 *         (amb__monitor_cell: the watcher's pid and reference in its heap,
 *         the connection in F_CONN), keyed by a hash of the reference; its
 *         DOWN leaves as MONITOR_P_EXIT naming the target as it was
 *         monitored (the pid, or the name), and a lost connection frees it.
 */
#include "process/fail.h"

/* The MONITOR / DOWN cell: reserved words, then the reason's room. */
enum {
    W_WATCHER,
    W_TARGET, /* AMB_NONE: a name nobody had */
    W_KEY,
    W_NAME,                  /* the name monitored, or AMB_NONE */
    W_ALIAS,                 /* the amb_monitor_alias */
    W_TUPLE,                 /* {'DOWN', Ref, process, Object, Reason}: 6 words */
    W_OBJECT = W_TUPLE + 6,  /* {Name, Node}: 3 words */
    W_REFBOX = W_OBJECT + 3, /* the reference's box: 3 + 3 words, or an
                                alias's 3 + 4 */
    MON_WORDS = W_REFBOX + 7 /* 21 */
};
#define MON_REASON_ROOM 9
/* Words a DOWN built in a heap takes beside its reason and its object's
 * pid: the tuple, {Name, Node}, the reference. */
#define DOWN_ROOM (MON_WORDS - W_TUPLE)

/* A foreign watcher's MONITOR (amb__monitor_cell), the target's end: the
 * words up to W_ALIAS as above (W_KEY unused: the index key is the
 * reference's hash), then the connection and the reference; the watcher's
 * pid and the reference live in the cell's heap. */
enum { F_CONN = W_TUPLE, F_REF, FAR_WORDS };

/* The watcher's end / DEMONITOR cell. The end of a monitor of a process of
 * another node has two words more, the node and the connection (so a
 * local end stays the smaller cell). A foreign watcher's DEMONITOR
 * (amb__monitor_demonitor_cell) has its reference in H_FREF. */
enum {
    H_WATCHER,
    H_KEY,
    H_TARGET,
    H_NAME,
    H_ALIAS,
    HELD_WORDS,
    H_NODE = HELD_WORDS,
    H_CONN,
    HELD_FAR_WORDS
};
#define H_FREF H_TARGET

/* True for a watcher's end of a monitor of a process of another node. */
static bool held_far(const amb__msg *e)
{
    return e->heap_at == HELD_FAR_WORDS + 1; /* its reserved words (msg.c) */
}

/* True for a monitor cell whose watcher is a process of another node. */
static bool far_watcher(amb_rt *rt, const amb__msg *m)
{
    return !amb__rt_own_pid(rt, m->words[W_WATCHER]);
}

/* The reference of the monitor with key and alias kind held by watcher,
 * on h: the watcher's alias for an alias monitor, else the plain
 * reference (its words are the key's: rt.h, amb__rt_ref_key). */
static amb_term ref_of(amb_rt *rt, amb_heap *h, uint64_t key, uint64_t alias,
                       amb_pid watcher)
{
    if (alias != AMB_MONITOR_NO_ALIAS)
        return amb__alias_term(rt, h, key | AMB__ALIAS_MONITOR_BIT, watcher);
    uint32_t w[3] = {(uint32_t)(key >> 10), (uint32_t)(key >> 42),
                     (uint32_t)(key & 1023u)};
    return amb__rt_ref_term(rt, h, w);
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
    if (far_watcher(rt, m)) {
        /* MONITOR_P_EXIT, naming the target as it was monitored. */
        const amb__remote *r = amb__remote_get(rt);
        r->ops->down(r->ctx, s, m->words[W_TARGET],
                     m->words[W_NAME] != AMB_NONE ? m->words[W_NAME] : m->words[W_TARGET],
                     m->words[W_WATCHER], m->words[F_REF], reason,
                     (uint32_t)m->words[F_CONN]);
        amb__msg_free(s, m);
        return;
    }
    m->kind = AMB__MSG_DOWN;
    amb__fail_reason(rt, m, reason); /* into its heap, empty until now */
    amb_heap h;
    amb__heap_init_fixed(&h, &m->words[W_REFBOX], MON_WORDS - W_REFBOX);
    amb_term ref =
        ref_of(rt, &h, m->words[W_KEY], m->words[W_ALIAS], m->words[W_WATCHER]);
    AMB__CHECK(h.blocks == NULL && ref != AMB_NONE);
    amb_term object = m->words[W_TARGET];
    if (m->words[W_NAME] != AMB_NONE) {
        amb__heap_init_fixed(&h, &m->words[W_OBJECT], W_REFBOX - W_OBJECT);
        object = AMB_TUPLE(&h, m->words[W_NAME], amb__rt_node(rt));
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
 * monitor); to a target on another node as DEMONITOR_P through the dist
 * layer, with the reference built on the stack. */
static void send_demonitor(amb_rt *rt, amb__sched *s, amb__msg *e)
{
    if (held_far(e)) {
        uint64_t words[DOWN_ROOM];
        amb_heap h;
        amb__heap_init_fixed(&h, words, DOWN_ROOM);
        amb_term ref =
            ref_of(rt, &h, e->words[H_KEY], e->words[H_ALIAS], e->words[H_WATCHER]);
        AMB__CHECK(h.blocks == NULL && ref != AMB_NONE);
        const amb__remote *r = amb__remote_get(rt);
        r->ops->demonitor(r->ctx, s, e->words[H_WATCHER],
                          e->words[H_NAME] != AMB_NONE ? e->words[H_NAME]
                                                       : e->words[H_TARGET],
                          e->words[H_NODE], ref, (uint32_t)e->words[H_CONN]);
        amb__msg_free(s, e);
        return;
    }
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
        /* The cell is our end of the monitor (a foreign watcher's: made by
         * amb__monitor_cell, its key in). */
        if (far_watcher(p->rt, m))
            p->flags |= AMB__PF_REMOTE;
        else
            m->seq = amb__fail_mon_key(m->words[W_KEY], AMB__FAIL_TARGET);
        amb__fail_add(p, m);
        return NULL;
    case AMB__MSG_DEMONITOR: {
        amb__msg *e;
        if (far_watcher(p->rt, m)) {
            e = amb__fail_find_term(p, m->words[H_KEY], F_REF, m->words[H_FREF]);
            if (e != NULL)
                amb__fail_remove(p, e);
        } else {
            e = amb__fail_take(p, amb__fail_mon_key(m->words[H_KEY], AMB__FAIL_TARGET));
        }
        amb__msg_free(s, e);
        break;
    }
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

/* The object a DOWN of held end e names: its target's pid (copied on h:
 * a foreign one is the end's), or {Name, Node} for a monitor of a name.
 * AMB_NONE when out of memory. */
static amb_term held_object(amb_rt *rt, amb_heap *h, const amb__msg *e)
{
    amb_term name = e->words[H_NAME];
    if (name != AMB_NONE)
        return AMB_TUPLE(h, name, held_far(e) ? e->words[H_NODE] : amb__rt_node(rt));
    amb_term pid;
    return amb_term_copy(h, e->words[H_TARGET], &pid) == 0 ? pid : AMB_NONE;
}

static void list_one(void *ctx, const amb__msg *e)
{
    struct list_walk *w = ctx;
    amb_term item;
    if (w->l == AMB_NONE)
        return; /* out of memory already */
    if (w->held && e->kind == AMB__MSG_DEMONITOR) {
        /* {process, Pid} or {process, {Name, Node}}, as OTP's */
        item = held_object(w->p->rt, w->h, e);
        if (item != AMB_NONE)
            item = AMB_TUPLE(w->h, AMB_ATOM_PROCESS, item);
    } else if (!w->held && e->kind == AMB__MSG_MONITOR) {
        /* monitored_by: the watcher (a foreign one is the cell's: a copy) */
        if (amb_term_copy(w->h, e->words[W_WATCHER], &item) != 0)
            item = AMB_NONE;
    } else {
        return;
    }
    w->l = item != AMB_NONE ? amb_cons(w->h, item, w->l) : AMB_NONE;
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
 * With node (not AMB_NONE) the target is a process of that node: the
 * watcher's end alone (*mon not touched), with target copied into its heap
 * and room for its DOWN. AMB_ENOMEM (nothing made). */
static int make_ends(amb_proc *watcher, amb_pid target, amb_term name, amb_term node,
                     amb_monitor_alias alias, amb__msg **held, amb__msg **mon,
                     amb_term *ref)
{
    amb__sched *s = watcher->task.sched;
    amb_heap *h = amb_proc_heap(watcher);
    bool far = node != AMB_NONE;
    amb__msg *e = far ? amb__msg_new_reserved(s, AMB__MSG_DEMONITOR, HELD_FAR_WORDS,
                                              amb__fail_words(target) + DOWN_ROOM)
                      : amb__msg_new_reserved(s, AMB__MSG_DEMONITOR, HELD_WORDS, 0);
    amb__msg *m = NULL;
    bool made = e != NULL && h != NULL;
    if (made && far && target != AMB_NONE) /* the pid's copy: the end's */
        made = (target = amb__fail_keep(e, target)) != AMB_NONE;
    else if (made && !far)
        made = (m = amb__msg_new_reserved(s, AMB__MSG_MONITOR, MON_WORDS,
                                          MON_REASON_ROOM)) != NULL;
    uint32_t w[3];
    amb__rt_ref_words(s, w);
    uint64_t key = amb__rt_ref_key(w);
    amb_term r = AMB_NONE;
    int rc = made ? 0 : AMB_ENOMEM;
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
    *held = e;
    *ref = r;
    if (far) {
        e->words[H_NODE] = node;
        e->words[H_CONN] = 0;
        return 0;
    }
    m->words[W_WATCHER] = watcher->pid;
    m->words[W_TARGET] = target;
    m->words[W_KEY] = key;
    m->words[W_NAME] = name;
    m->words[W_ALIAS] = (uint64_t)alias;
    *mon = m;
    return 0;
}

/* Both ends are set up before the child is published, so nobody can see
 * one without the other. */
int amb__monitor_spawn(amb_proc *parent, amb_proc *child, amb_term *ref)
{
    amb__msg *e, *m;
    amb_term r;
    int rc = make_ends(parent, child->pid, AMB_NONE, AMB_NONE, AMB_MONITOR_NO_ALIAS, &e,
                       &m, &r);
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
    amb__msg *e =
        ref != AMB_NONE ? take_held(parent, amb__monitor_key(parent->rt, ref)) : NULL;
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

/* amb_monitor_opt of a process of another node (a foreign pid, or a name
 * on node): the watcher's end and the reference first, then MONITOR_P
 * through the dist layer; what can fail fails before anything shows. */
static int monitor_remote(amb_proc *self, amb_pid pid, amb_term name, amb_term node,
                          amb_monitor_alias alias, amb_term *ref)
{
    amb__msg *e;
    amb_term r;
    int rc = make_ends(self, pid, name, node, alias, &e, NULL, &r);
    if (rc != 0)
        return rc;
    const amb__remote *rem = amb__remote_get(self->rt);
    uint32_t conn;
    rc = rem->ops->monitor(rem->ctx, self, name != AMB_NONE ? name : pid, node, r, &conn);
    if (rc != 0) {
        if (alias != AMB_MONITOR_NO_ALIAS)
            amb__alias_drop(self, e->words[H_KEY] | AMB__ALIAS_MONITOR_BIT);
        amb__msg_free(self->task.sched, e);
        return rc;
    }
    e->words[H_CONN] = conn;
    amb__fail_add(self, e);
    self->links_mons.nheld++;
    self->flags |= AMB__PF_REMOTE;
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
    if (node != AMB_NONE)
        return monitor_remote(self, pid, name, node, alias, ref);
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
    int rc = make_ends(self, pid, name, AMB_NONE, alias, &e, &m, &r);
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

/* ---------------------------------------------------------------------------
 * Monitors across nodes: the cells the dist layer's signals come in as
 * (remote.c), and NODEDOWN
 * ------------------------------------------------------------------------ */

amb__msg *amb__monitor_cell(amb__sched *s, amb_pid watcher, amb_pid target, amb_term name,
                            amb_term ref, uint32_t conn)
{
    amb__msg *m = amb__msg_new_reserved(s, AMB__MSG_MONITOR, FAR_WORDS,
                                        amb__fail_words(watcher) + amb__fail_words(ref));
    if (m == NULL)
        return NULL;
    m->words[W_WATCHER] = amb__fail_keep(m, watcher);
    m->words[F_REF] = amb__fail_keep(m, ref);
    if (m->words[W_WATCHER] == AMB_NONE || m->words[F_REF] == AMB_NONE) {
        amb__msg_free(s, m);
        return NULL;
    }
    m->words[W_TARGET] = target;
    m->words[W_KEY] = 0;
    m->words[W_NAME] = name;
    m->words[W_ALIAS] = AMB_MONITOR_NO_ALIAS;
    m->words[F_CONN] = conn;
    m->seq = amb__fail_hash_key(ref, AMB__FAIL_FAR);
    return m;
}

amb__msg *amb__monitor_demonitor_cell(amb__sched *s, amb_pid watcher, amb_term ref)
{
    amb__msg *m = amb__msg_new_reserved(s, AMB__MSG_DEMONITOR, HELD_WORDS,
                                        amb__fail_words(watcher) + amb__fail_words(ref));
    if (m == NULL)
        return NULL;
    m->words[H_WATCHER] = amb__fail_keep(m, watcher);
    m->words[H_FREF] = amb__fail_keep(m, ref);
    if (m->words[H_WATCHER] == AMB_NONE || m->words[H_FREF] == AMB_NONE) {
        amb__msg_free(s, m);
        return NULL;
    }
    m->words[H_KEY] = amb__fail_hash_key(ref, AMB__FAIL_FAR);
    return m;
}

amb__msg *amb__monitor_down_cell(amb__sched *s, uint64_t key, size_t room)
{
    amb__msg *m = amb__msg_new_reserved(s, AMB__MSG_DOWN, W_KEY + 1, room);
    if (m != NULL) {
        m->words[W_WATCHER] = m->words[W_TARGET] = AMB_NONE;
        m->words[W_KEY] = key;
    }
    return m;
}

/* amb__monitor_nodedown's sweep: ctx is {p, node, conn}. */
struct lost {
    amb_proc *p;
    amb_term node;
    uint32_t conn;
};

static bool mon_stays(void *ctx, const amb__msg *e)
{
    const struct lost *l = ctx;
    amb_term node;
    if (e->kind == AMB__MSG_DEMONITOR) /* held: of a process there? */
        return !held_far(e) || e->words[H_NODE] != l->node || e->words[H_CONN] != l->conn;
    if (e->kind == AMB__MSG_MONITOR) /* of us: by a watcher there? */
        return !far_watcher(l->p->rt, e) || e->words[F_CONN] != l->conn ||
               amb_pid_get(e->words[W_WATCHER], &node, NULL, NULL, NULL) != 0 ||
               node != l->node;
    return true;
}

/* Monitor end e of the lost connection, out of the index: a monitor held
 * becomes its DOWN noconnection, built in the room its end kept, and
 * enters the private queue at the NODEDOWN's place (as the far end's DOWN
 * would, which now never comes); a monitor by a watcher there just goes. */
static void mon_lost(void *ctx, amb__msg *e)
{
    amb_proc *p = ((struct lost *)ctx)->p;
    if (e->kind == AMB__MSG_MONITOR) {
        amb__msg_free(p->task.sched, e);
        return;
    }
    forget(p, e);
    amb_heap *h = amb__msg_heap(e);
    amb_term ref = ref_of(p->rt, h, e->words[H_KEY], e->words[H_ALIAS], p->pid);
    amb_term object = e->words[H_NAME] != AMB_NONE
                          ? AMB_TUPLE(h, e->words[H_NAME], e->words[H_NODE])
                          : e->words[H_TARGET];
    e->term =
        AMB_TUPLE(h, AMB_ATOM_DOWN, ref, AMB_ATOM_PROCESS, object, AMB_ATOM_NOCONNECTION);
    AMB__CHECK(h->blocks == NULL && ref != AMB_NONE && e->term != AMB_NONE);
    e->kind = AMB__MSG_TERM;
    amb__mailbox_append(p, e);
}

void amb__monitor_nodedown(amb_proc *p, amb_term node, uint32_t conn)
{
    struct lost l = {p, node, conn};
    amb__fail_sweep(p, mon_stays, mon_lost, &l);
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
    amb__msg *e = take_held(self, amb__monitor_key(self->rt, ref));
    if (e != NULL)
        send_demonitor(self->rt, self->task.sched, e);
    bool held_elsewhere = false;
    if (e == NULL) {
        /* A spawn request's monitor is the dist layer's (remote.h). */
        const amb__remote *r = amb__remote_get(self->rt);
        held_elsewhere = r != NULL && r->ops->demonitor_held != NULL &&
                         r->ops->demonitor_held(r->ctx, self, ref);
    }
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
    return e != NULL || held_elsewhere ? 0 : AMB_ENOTFOUND;
}

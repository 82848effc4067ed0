/*
 * monitor.c - monitors (DESIGN §4, docs/design/failure.md): amb_monitor,
 * amb_demonitor, amb_spawn_monitor, and the MONITOR / DEMONITOR / DOWN
 * signals (fail.h).
 *
 * Invariants:
 *   - A monitor has an end in each process's index (fail.h), both
 *     allocated by the watcher when it makes the monitor:
 *       the watcher's end, key (monitor key << 4) | HELD, counted in nheld:
 *         a DEMONITOR cell {watcher, key, target}, sent as it is by
 *         amb_demonitor or when the watcher ends;
 *       the target's end, key (monitor key << 4) | TARGET: the MONITOR cell
 *         {watcher, target, key, ref}, a class-2 cell whose reserved words
 *         also hold the DOWN tuple and the reference it names, so that it
 *         turns into the DOWN in place when the target ends (or at once,
 *         when the target is found dead).
 *     The monitor key comes from the reference (amb__rt_ref_key), so
 *     amb_demonitor finds the end from the reference alone.
 *   - A DOWN becomes a message only if the watcher's end is still there (it
 *     is removed then): after amb_demonitor no DOWN of that monitor reaches
 *     the mailbox, and the index never keeps fired monitors.
 *   - A monitor of a pid that is not alive gives an immediate DOWN noproc,
 *     through the same path as any DOWN.
 */
#include "process/fail.h"

/* The MONITOR / DOWN cell: reserved words, then the reason's room. */
enum {
    W_WATCHER,
    W_TARGET,
    W_KEY,
    W_REF01, /* the reference's words 0 and 1 */
    W_REF2,
    W_TUPLE,                 /* {'DOWN', Ref, process, Pid, Reason}: 6 words */
    W_REFBOX = W_TUPLE + 6,  /* the reference's box: 3 + 3 words */
    MON_WORDS = W_REFBOX + 6 /* 17 */
};
#define MON_REASON_ROOM 15 /* a class-2 cell (msg.c): 32 words */

/* The watcher's end / DEMONITOR cell: watcher, key, target. */
#define HELD_WORDS 3

static void ref_words_of(const amb__msg *m, uint32_t w[3])
{
    w[0] = (uint32_t)m->words[W_REF01];
    w[1] = (uint32_t)(m->words[W_REF01] >> 32);
    w[2] = (uint32_t)m->words[W_REF2];
}

/* The key of a reference made by this runtime's monitors; 0 otherwise. */
static uint64_t key_of_ref(amb_rt *rt, amb_term ref)
{
    amb_term node;
    uint32_t creation, w[AMB_REF_MAX_WORDS];
    size_t n;
    if (amb_ref_get(ref, w, AMB_REF_MAX_WORDS, &node, &creation, &n) != 0 || n != 3 ||
        node != rt->node_name || creation != rt->creation)
        return 0;
    return amb__rt_ref_key(w);
}

/* Turns MONITOR cell m into the DOWN {'DOWN', Ref, process, Target,
 * Reason}, in place (the tuple and the reference in its reserved words, the
 * reason behind them), and delivers it to the watcher (freed when the
 * watcher is dead). Needs no memory unless a boxed reason does not fit. */
static void send_down(amb_rt *rt, amb__sched *s, amb__msg *m, amb_term reason)
{
    m->kind = AMB__MSG_DOWN;
    m->heap.top = m->words + MON_WORDS;
    amb__fail_reason(rt, m, reason);
    uint32_t w[3];
    ref_words_of(m, w);
    amb_heap h;
    amb__heap_init_fixed(&h, &m->words[W_REFBOX], MON_WORDS - W_REFBOX);
    amb_term ref = amb__rt_ref_term(rt, &h, w);
    amb__heap_init_fixed(&h, &m->words[W_TUPLE], W_REFBOX - W_TUPLE);
    m->term =
        AMB_TUPLE(&h, AMB_ATOM_DOWN, ref, AMB_ATOM_PROCESS, m->words[W_TARGET], m->term);
    AMB__CHECK(h.blocks == NULL && ref != AMB_NONE && m->term != AMB_NONE);
    amb_proc *q = amb__ptab_lookup(rt, m->words[W_WATCHER]);
    if (q != NULL)
        amb__mailbox_deliver(rt, s, q, m);
    else
        amb__msg_free(s, m);
}

/* Sends the watcher's end e as the DEMONITOR it is, to its target (freed
 * when the target is dead: it has no end of this monitor any more). */
static void send_demonitor(amb_rt *rt, amb__sched *s, amb__msg *e)
{
    amb_proc *q = amb__ptab_lookup(rt, e->words[2]);
    if (q != NULL)
        amb__mailbox_deliver(rt, s, q, e);
    else
        amb__msg_free(s, e);
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
            s, amb__fail_take(p, amb__fail_mon_key(m->words[1], AMB__FAIL_TARGET)));
        break;
    case AMB__MSG_DOWN: {
        /* A message only while the monitor is active (demonitor wins). */
        amb__msg *e =
            amb__fail_take(p, amb__fail_mon_key(m->words[W_KEY], AMB__FAIL_HELD));
        if (e != NULL) {
            p->links_mons.nheld--;
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

/* A new monitor of target by watcher on scheduler s: both ends, and the
 * reference on the watcher's heap h. AMB_ENOMEM (nothing made). */
static int make_ends(amb__sched *s, amb_rt *rt, amb_heap *h, amb_pid watcher,
                     amb_pid target, amb__msg **held, amb__msg **mon, amb_term *ref)
{
    amb__msg *e = amb__msg_new_reserved(s, AMB__MSG_DEMONITOR, HELD_WORDS, 0);
    amb__msg *m =
        e != NULL ? amb__msg_new_reserved(s, AMB__MSG_MONITOR, MON_WORDS, MON_REASON_ROOM)
                  : NULL;
    uint32_t w[3];
    amb__rt_ref_words(s, w);
    amb_term r = m != NULL && h != NULL ? amb__rt_ref_term(rt, h, w) : AMB_NONE;
    if (r == AMB_NONE) {
        amb__msg_free(s, e);
        amb__msg_free(s, m);
        return AMB_ENOMEM;
    }
    uint64_t key = amb__rt_ref_key(w);
    e->words[0] = watcher;
    e->words[1] = key;
    e->words[2] = target;
    e->seq = amb__fail_mon_key(key, AMB__FAIL_HELD);
    m->words[W_WATCHER] = watcher;
    m->words[W_TARGET] = target;
    m->words[W_KEY] = key;
    m->words[W_REF01] = (uint64_t)w[0] | ((uint64_t)w[1] << 32);
    m->words[W_REF2] = w[2];
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
    int rc = make_ends(parent->task.sched, parent->rt, amb_proc_heap(parent), parent->pid,
                       child->pid, &e, &m, &r);
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
    uint64_t key = ref != AMB_NONE ? key_of_ref(parent->rt, ref) : 0;
    amb__msg *e =
        key != 0 ? amb__fail_take(parent, amb__fail_mon_key(key, AMB__FAIL_HELD)) : NULL;
    if (e != NULL) {
        parent->links_mons.nheld--;
        amb__msg_free(parent->task.sched, e);
    }
}

int amb_spawn_monitor(amb_proc *self, amb_fn *fn, void *arg, amb_pid *out, amb_term *ref)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    amb_spawn_opts o = {.name = AMB_NONE, .monitor = true};
    return amb_spawn_opt(self, fn, arg, &o, out, ref);
}

int amb_monitor(amb_proc *self, amb_pid pid, amb_term *ref)
{
    if (self == NULL)
        return AMB_EBADARG;
    int rc = amb__fail_check_pid(self->rt, pid);
    if (rc != 0)
        return rc;
    amb__proc_reduce(self);
    return amb__monitor_make(self, pid, amb__ptab_lookup(self->rt, pid), ref);
}

int amb__monitor_make(amb_proc *self, amb_pid pid, amb_proc *q, amb_term *ref)
{
    amb__sched *s = self->task.sched;
    amb__msg *e, *m;
    amb_term r;
    int rc = make_ends(s, self->rt, amb_proc_heap(self), self->pid, pid, &e, &m, &r);
    if (rc != 0)
        return rc;
    amb__fail_add(self, e);
    self->links_mons.nheld++;
    if (ref != NULL)
        *ref = r;
    if (q == NULL) {
        /* Not alive: an immediate DOWN noproc, through the same path as any
         * DOWN (it removes the monitor when it is drained). */
        send_down(self->rt, s, m, AMB_ATOM_NOPROC);
        return 0;
    }
    amb__mailbox_deliver(self->rt, s, q, m);
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
    uint64_t key = key_of_ref(self->rt, ref);
    amb__msg *e =
        key != 0 ? amb__fail_take(self, amb__fail_mon_key(key, AMB__FAIL_HELD)) : NULL;
    if (e != NULL) {
        self->links_mons.nheld--;
        send_demonitor(self->rt, self->task.sched, e);
    }
    if (flags & AMB_DEMONITOR_FLUSH) {
        /* A DOWN still in the mailbox is dropped when drained (the monitor
         * is gone); one already in the private queue is removed here. */
        amb_term r = ref;
        amb__mailbox_remove_if(self, is_down_of, &r);
    }
    return e != NULL ? 0 : AMB_ENOTFOUND;
}

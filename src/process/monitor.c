/*
 * monitor.c - monitors (DESIGN §4, docs/design/failure.md): amb_monitor,
 * amb_demonitor, amb_spawn_monitor, and the MONITOR / DEMONITOR / DOWN
 * signals (fail.h).
 *
 * Invariants:
 *   - A monitor is recorded at both ends: the watcher's table holds it under
 *     key << 1 (and counts it in `held`), the target's under (key << 1) | 1.
 *     The key is made from the monitor's reference, so amb_demonitor finds
 *     the entry from the reference alone.
 *   - A DOWN becomes a message only if its monitor is still in the watcher's
 *     table (it is removed then): after amb_demonitor no DOWN of that
 *     monitor reaches the mailbox, and the table never keeps fired monitors.
 *   - A monitor of a pid that is not alive gives an immediate DOWN noproc,
 *     through the same path as any DOWN.
 */
#include "process/fail.h"

/* Words a reference takes on a heap, with room to spare. */
#define REF_WORDS 8

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

/* A DOWN cell: {'DOWN', Ref, process, Pid, Reason}. Panics when out of
 * memory (a DOWN must not be lost). */
static amb__msg *down_cell(amb_rt *rt, amb__sched *s, const uint32_t *ref, amb_pid pid,
                           amb_term reason)
{
    size_t rw = (!amb_is_cons(reason) && !amb__is_boxed(reason))
                    ? 0
                    : amb_term_size(reason) / sizeof(uint64_t);
    amb__msg *m = amb__msg_alloc(s, 1 + REF_WORDS + 6 + rw);
    if (m == NULL)
        amb__panic("out of memory sending a DOWN");
    m->heap.top += 1;
    m->kind = AMB__MSG_DOWN;
    m->words[0] = amb__rt_ref_key(ref);
    amb_term r = reason;
    if (rw != 0 && amb_term_copy(&m->heap, reason, &r) != 0)
        amb__panic("out of memory sending a DOWN");
    amb_term t = AMB_TUPLE(&m->heap, AMB_ATOM_DOWN, amb__rt_ref_term(rt, &m->heap, ref),
                           AMB_ATOM_PROCESS, pid, r);
    if (t == AMB_NONE)
        amb__panic("out of memory sending a DOWN");
    m->term = t;
    return m;
}

static void send_down(amb_rt *rt, amb__sched *s, amb_pid to, const uint32_t *ref,
                      amb_pid pid, amb_term reason)
{
    amb__msg *m = down_cell(rt, s, ref, pid, reason);
    amb_proc *q = amb__ptab_lookup(rt, to);
    if (q != NULL)
        amb__mailbox_deliver(rt, s, q, m);
    else
        amb__msg_free(s, m);
}

/* Tells the target of a monitor that `watcher` dropped it (when the target
 * is alive and there is memory for the cell: otherwise the target keeps a
 * stale entry until it ends, and its DOWN is then dropped by the watcher,
 * which no longer has the monitor). */
static void send_demonitor(amb_rt *rt, amb__sched *s, amb_pid target, amb_pid watcher,
                           uint64_t key)
{
    amb_proc *q = amb__ptab_lookup(rt, target);
    amb__msg *m = q ? amb__msg_new_signal(s, AMB__MSG_DEMONITOR, 2) : NULL;
    if (m != NULL) {
        m->words[0] = watcher;
        m->words[1] = key;
        amb__mailbox_deliver(rt, s, q, m);
    }
}

amb__msg *amb__monitor_signal(amb_proc *p, amb__msg *m)
{
    switch (m->kind) {
    case AMB__MSG_MONITOR: {
        uint32_t ref[3] = {(uint32_t)m->words[3], (uint32_t)(m->words[3] >> 32),
                           (uint32_t)m->words[4]};
        struct amb__fail *f = amb__fail_of(p);
        if (f == NULL ||
            amb__fail_put(&f->mons, (m->words[2] << 1) | 1, m->words[0], ref) != 0)
            amb__panic("out of memory making a monitor");
        break;
    }
    case AMB__MSG_DEMONITOR:
        if (p->fail != NULL)
            amb__fail_del(&p->fail->mons, (m->words[1] << 1) | 1, NULL);
        break;
    case AMB__MSG_DOWN:
        /* A message only while the monitor is active (demonitor wins). */
        if (p->fail != NULL && amb__fail_del(&p->fail->mons, m->words[0] << 1, NULL)) {
            p->fail->held--;
            m->kind = AMB__MSG_TERM;
            return m;
        }
        break;
    default:
        amb__panic("not a monitor signal: %u", m->kind);
    }
    amb__msg_free(p->task.sched, m);
    return NULL;
}

void amb__monitor_discard(amb_rt *rt, amb__sched *s, amb__msg *m)
{
    uint32_t ref[3] = {(uint32_t)m->words[3], (uint32_t)(m->words[3] >> 32),
                       (uint32_t)m->words[4]};
    amb_pid watcher = m->words[0], target = m->words[1];
    amb__msg_free(s, m);
    send_down(rt, s, watcher, ref, target, AMB_ATOM_NOPROC);
}

void amb__monitor_teardown(amb__sched *s, amb_proc *p)
{
    const amb__fail_table *t = &p->fail->mons;
    for (size_t i = 0; i < t->cap; i++) {
        const amb__fail_entry *e = &t->e[i];
        if (e->key == 0)
            continue;
        if (e->key & 1)
            send_down(p->rt, s, e->pid, e->ref, p->pid, p->exit_reason);
        else /* a monitor this process held: the target forgets it */
            send_demonitor(p->rt, s, e->pid, p->pid, e->key >> 1);
    }
}

size_t amb__monitor_count(const amb_proc *p)
{
    return p->fail ? p->fail->held : 0;
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
    uint64_t key = amb__rt_ref_key(w);
    if (amb__fail_put(&cf->mons, (key << 1) | 1, parent->pid, w) != 0)
        return AMB_ENOMEM;
    if (amb__fail_put(&pf->mons, key << 1, child->pid, w) != 0)
        return AMB_ENOMEM;
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
    struct amb__fail *f = amb__fail_of(self);
    amb_heap *h = amb_proc_heap(self);
    if (f == NULL || h == NULL)
        return AMB_ENOMEM;
    amb__sched *s = self->task.sched;
    uint32_t w[3];
    amb__rt_ref_words(s, w);
    amb_term r = amb__rt_ref_term(self->rt, h, w);
    if (r == AMB_NONE)
        return AMB_ENOMEM;
    uint64_t key = amb__rt_ref_key(w);
    amb__msg *m = q ? amb__msg_new_signal(s, AMB__MSG_MONITOR, 5) : NULL;
    if ((q != NULL && m == NULL) || amb__fail_put(&f->mons, key << 1, pid, w) != 0) {
        amb__msg_free(s, m);
        return AMB_ENOMEM;
    }
    f->held++;
    if (ref != NULL)
        *ref = r;
    if (q == NULL) {
        /* Not alive: an immediate DOWN noproc, through the same path as any
         * DOWN (it removes the monitor when it is drained). */
        amb__mailbox_deliver(self->rt, s, self,
                             down_cell(self->rt, s, w, pid, AMB_ATOM_NOPROC));
        return 0;
    }
    m->words[0] = self->pid;
    m->words[1] = pid;
    m->words[2] = key;
    m->words[3] = (uint64_t)w[0] | ((uint64_t)w[1] << 32);
    m->words[4] = w[2];
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
    amb__fail_entry e;
    bool active =
        key != 0 && self->fail != NULL && amb__fail_del(&self->fail->mons, key << 1, &e);
    if (active) {
        self->fail->held--;
        send_demonitor(self->rt, self->task.sched, e.pid, self->pid, key);
    }
    if (flags & AMB_DEMONITOR_FLUSH) {
        /* A DOWN still in the mailbox is dropped when drained (the monitor
         * is gone); one already in the private queue is removed here. */
        amb_term r = ref;
        amb__mailbox_remove_if(self, is_down_of, &r);
    }
    return active ? 0 : AMB_ENOTFOUND;
}

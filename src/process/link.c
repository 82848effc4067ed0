/*
 * link.c - failure semantics (DESIGN §4, docs/design/failure.md): links,
 * monitors, exit signals, trap_exit and on_exit handlers.
 *
 * Every change to a process's links and monitors is made by the process
 * itself: when it calls the API, or when it handles a signal cell while
 * draining its mailbox (in order with its messages), or by its scheduler at
 * teardown. So the tables need no lock. The signals are message cells:
 *
 *   LINK {from, to}        the receiver adds `from` to its links
 *   UNLINK {from, id}      Erlang's UNLINK_ID: the receiver removes an
 *                          active link to `from` and always answers with
 *   UNLINK_ACK {from, id}  UNLINK_ID_ACK, before any other signal
 *   EXIT {from, flags}     term: the reason; flags: LINKED when it comes
 *                          from a link (the end of a linked process)
 *   MONITOR {watcher, target, key, ref}   the receiver records the watcher
 *   DEMONITOR {watcher, key}              the receiver forgets it
 *   DOWN {key}             term: {'DOWN', Ref, process, Pid, Reason}
 *
 * Invariants:
 *   - Links follow Erlang's link protocol (OTP 23.3+, the distribution
 *     protocol's "Link Protocol"): an entry is active (unlink_id 0) or
 *     waiting for the ack of an unlink (unlink_id != 0, counts as not
 *     linked). A LINK received creates an entry only where there is none; an
 *     UNLINK_ID received removes an active entry only; an UNLINK_ID_ACK
 *     removes an inactive entry with the same id. So two processes linking
 *     and unlinking each other concurrently always end up agreeing.
 *   - A link exit signal (LINKED) acts only if the receiver's entry for the
 *     sender is active, and removes the entry either way: so once
 *     amb_unlink returned the old link has no effect, and each end acts on a
 *     link once.
 *   - A DOWN becomes a message only if its monitor is still in the watcher's
 *     table (it is removed then): after amb_demonitor no DOWN of that
 *     monitor reaches the mailbox, and the table never keeps fired monitors.
 *   - A LINK or MONITOR that reaches a dead process is answered by whoever
 *     frees it (amb__fail_discard): an exit signal noproc, a DOWN noproc. So
 *     a link or monitor racing with the target's end is never lost.
 *   - A sender of an EXIT sets the target's sig_pending after its push, so a
 *     running target notices it at its next runtime call (amb__proc_reduce).
 */
#include "runtime/sched.h"

#define LINKED 1u /* EXIT flag: sent because a linked process ended */

/* ---------------------------------------------------------------------------
 * Tables: open addressing with linear probing over 64-bit keys (never 0),
 * deletion by backward shift (no tombstones).
 *   links: key = the linked pid.
 *   mons:  key = monitor key << 1 (a monitor this process holds, pid = the
 *          target) or (key << 1) | 1 (a monitor of this process, pid = the
 *          watcher). A monitor key is the reference's counter and
 *          scheduler id: (n << 10) | id, unique while n < 2^53.
 * ------------------------------------------------------------------------ */

typedef struct entry {
    uint64_t key;
    amb_pid pid;
    uint64_t unlink_id; /* links: 0 active, else the unacknowledged unlink */
    uint32_t ref[3];    /* mons: the reference's words */
} entry;

typedef struct table {
    entry *e;
    size_t cap; /* 0 or a power of two */
    size_t len;
} table;

typedef struct cleanup {
    amb_cleanup_fn *fn;
    void *ctx;
} cleanup;

struct amb__fail {
    table links;
    table mons;
    size_t held;         /* monitors this process holds (process_info) */
    uint64_t unlink_seq; /* ids of this process's UNLINK_IDs */
    cleanup *cl;
    size_t ncl, capcl;
};

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static entry *tab_find(const table *t, uint64_t key)
{
    if (t->cap == 0)
        return NULL;
    for (size_t i = slot_of(key, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->e[i].key == key)
            return &t->e[i];
        if (t->e[i].key == 0)
            return NULL;
    }
}

static int tab_grow(table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 8;
    entry *e = amb__calloc(cap, sizeof *e);
    if (e == NULL)
        return AMB_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->e[i].key == 0)
            continue;
        size_t j = slot_of(t->e[i].key, cap);
        while (e[j].key != 0)
            j = (j + 1) & (cap - 1);
        e[j] = t->e[i];
    }
    amb__free(t->e);
    t->e = e;
    t->cap = cap;
    return 0;
}

/* Adds (or overwrites) key, active (unlink_id 0). AMB_ENOMEM, and then
 * nothing changed. */
static int tab_put(table *t, uint64_t key, amb_pid pid, const uint32_t *ref)
{
    entry *x = tab_find(t, key);
    if (x == NULL) {
        if ((t->len + 1) * 4 > t->cap * 3 && tab_grow(t) != 0)
            return AMB_ENOMEM;
        size_t i = slot_of(key, t->cap);
        while (t->e[i].key != 0)
            i = (i + 1) & (t->cap - 1);
        x = &t->e[i];
        t->len++;
    }
    x->key = key;
    x->pid = pid;
    x->unlink_id = 0;
    if (ref != NULL)
        memcpy(x->ref, ref, sizeof x->ref);
    return 0;
}

/* Removes key; false when it was not there. *out (may be NULL) gets it. */
static bool tab_del(table *t, uint64_t key, entry *out)
{
    entry *x = tab_find(t, key);
    if (x == NULL)
        return false;
    if (out != NULL)
        *out = *x;
    size_t mask = t->cap - 1;
    size_t i = (size_t)(x - t->e);
    /* Backward shift: move later entries of the probe run into the hole
     * when their home slot does not lie (cyclically) after the hole. */
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (t->e[j].key == 0)
            break;
        size_t home = slot_of(t->e[j].key, t->cap);
        bool stays = (j > i) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        t->e[i] = t->e[j];
        i = j;
    }
    t->e[i].key = 0;
    t->len--;
    return true;
}

static struct amb__fail *fail_of(amb_proc *p)
{
    if (p->fail == NULL)
        p->fail = amb__calloc(1, sizeof *p->fail);
    return p->fail;
}

/* Active links only: an entry waiting for an unlink's ack is not a link. */
size_t amb__fail_links(const amb_proc *p)
{
    size_t n = 0;
    const table *t = p->fail ? &p->fail->links : NULL;
    for (size_t i = 0; t != NULL && i < t->cap; i++)
        n += t->e[i].key != 0 && t->e[i].unlink_id == 0;
    return n;
}

size_t amb__fail_monitors(const amb_proc *p)
{
    return p->fail ? p->fail->held : 0;
}

/* ---------------------------------------------------------------------------
 * Monitor references
 * ------------------------------------------------------------------------ */

static uint64_t key_of_words(const uint32_t *w)
{
    uint64_t n = (uint64_t)w[0] | ((uint64_t)w[1] << 32);
    return (n << 10) | (w[2] & 1023u);
}

/* A fresh reference (as amb_make_ref) and its words. */
static void new_ref_words(amb_proc *self, uint32_t *w)
{
    uint64_t n = ++self->sched->ref_counter;
    w[0] = (uint32_t)n;
    w[1] = (uint32_t)(n >> 32);
    w[2] = self->sched->id;
}

static amb_term ref_term(amb_rt *rt, amb_heap *h, const uint32_t *w)
{
    return amb_ref_term(h, rt->node_name, rt->creation, w, 3);
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
    return key_of_words(w);
}

/* ---------------------------------------------------------------------------
 * Building and sending signal cells
 * ------------------------------------------------------------------------ */

/* Words a reference takes on a heap, with room to spare. */
#define REF_WORDS 8

/* Delivers an exit signal cell to the process `to` (if alive), then flags
 * it so that it notices at its next runtime call. */
static void post_exit(amb_rt *rt, amb__sched *s, amb_pid to, amb__msg *m)
{
    amb_proc *q = amb__ptab_lookup(rt, to);
    if (q == NULL) {
        amb__msg_free(s, m);
        return;
    }
    amb__deliver(rt, s, q, m);
    /* release: after our push; the target's acquire exchange in
     * amb__proc_signals then finds the cell when it drains. The block stays
     * valid until we pass a quiescent point (QSBR), so a target that has
     * ended meanwhile only gets a stale flag in freed-later memory. */
    atomic_store_explicit(&q->sig_pending, true, memory_order_release);
}

static amb__msg *exit_cell(amb__sched *s, amb_pid from, amb_term reason, unsigned flags)
{
    amb__msg *m = amb__msg_new_term_after(s, reason, 2);
    if (m == NULL)
        return NULL;
    m->kind = AMB__MSG_EXIT;
    m->words[0] = from;
    m->words[1] = flags;
    return m;
}

static void send_exit(amb_rt *rt, amb__sched *s, amb_pid from, amb_pid to,
                      amb_term reason, unsigned flags)
{
    amb__msg *m = exit_cell(s, from, reason, flags);
    if (m == NULL)
        amb__panic("out of memory sending an exit signal");
    post_exit(rt, s, to, m);
}

/* A DOWN cell: {'DOWN', Ref, process, Pid, Reason}. */
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
    m->words[0] = key_of_words(ref);
    amb_term r = reason;
    if (rw != 0 && amb_term_copy(&m->heap, reason, &r) != 0)
        amb__panic("out of memory sending a DOWN");
    amb_term t = AMB_TUPLE(&m->heap, AMB_ATOM_DOWN, ref_term(rt, &m->heap, ref),
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
        amb__deliver(rt, s, q, m);
    else
        amb__msg_free(s, m);
}

/* A plain signal cell with n words. */
static amb__msg *signal_cell(amb__sched *s, enum amb__msg_kind kind, size_t n)
{
    amb__msg *m = amb__msg_alloc(s, n);
    if (m != NULL)
        m->kind = (uint8_t)kind;
    return m;
}

/* ---------------------------------------------------------------------------
 * Handling signals (in the receiving process, while it drains)
 * ------------------------------------------------------------------------ */

/* The message {'EXIT', From, Reason} a trapping process gets. */
static amb__msg *trapped_exit(amb__sched *s, amb_pid from, amb_term reason)
{
    size_t rw = (!amb_is_cons(reason) && !amb__is_boxed(reason))
                    ? 0
                    : amb_term_size(reason) / sizeof(uint64_t);
    amb__msg *m = amb__msg_alloc(s, 4 + rw);
    if (m == NULL)
        amb__panic("out of memory delivering an exit signal");
    amb_term r = reason;
    if (rw != 0 && amb_term_copy(&m->heap, reason, &r) != 0)
        amb__panic("out of memory delivering an exit signal");
    m->term = AMB_TUPLE(&m->heap, AMB_ATOM_EXIT, from, r);
    if (m->term == AMB_NONE)
        amb__panic("out of memory delivering an exit signal");
    return m;
}

static amb__msg *handle_exit(amb_proc *p, amb__msg *m)
{
    amb_pid from = m->words[0];
    unsigned flags = (unsigned)m->words[1];
    amb_term reason = m->term;
    if (flags & LINKED) {
        /* A link exit acts only while the link is active (unlink wins); the
         * entry goes either way (the sender has ended). */
        entry *x = p->fail ? tab_find(&p->fail->links, from) : NULL;
        bool active = x != NULL && x->unlink_id == 0;
        if (x != NULL)
            tab_del(&p->fail->links, from, NULL);
        if (!active) {
            amb__msg_free(p->sched, m);
            return NULL;
        }
    } else if (reason == AMB_ATOM_KILL) {
        /* exit(Pid, kill): untrappable, and seen by links as killed. */
        amb__proc_die(p, AMB_ATOM_KILLED, false, m);
    }
    if (p->flags & AMB__PF_TRAP_EXIT) {
        amb__msg *t = trapped_exit(p->sched, from, reason);
        amb__msg_free(p->sched, m);
        return t;
    }
    if (reason == AMB_ATOM_NORMAL) {
        /* Ignored, except exit(self(), normal) sent by the process itself. */
        if (!(flags & LINKED) && from == p->pid)
            amb__proc_die(p, AMB_ATOM_NORMAL, false, m);
        amb__msg_free(p->sched, m);
        return NULL;
    }
    amb__proc_die(p, reason, false, m);
}

amb__msg *amb__fail_signal(amb_proc *p, amb__msg *m)
{
    struct amb__fail *f;
    switch (m->kind) {
    case AMB__MSG_LINK:
        /* Only where there is no entry: an inactive one (our unlink not yet
         * acknowledged) stays inactive, and the sender will get our
         * UNLINK_ID after its LINK, so both end up unlinked. */
        f = fail_of(p);
        if (f == NULL)
            amb__panic("out of memory making a link");
        if (tab_find(&f->links, m->words[0]) == NULL &&
            tab_put(&f->links, m->words[0], m->words[0], NULL) != 0)
            amb__panic("out of memory making a link");
        break;
    case AMB__MSG_UNLINK: {
        amb_pid from = m->words[0];
        entry *x = p->fail ? tab_find(&p->fail->links, from) : NULL;
        if (x != NULL && x->unlink_id == 0)
            tab_del(&p->fail->links, from, NULL);
        /* The ack goes out now, before any other signal to `from`. */
        amb_proc *q = amb__ptab_lookup(p->rt, from);
        if (q != NULL) {
            amb__msg *a = signal_cell(p->sched, AMB__MSG_UNLINK_ACK, 2);
            if (a == NULL)
                amb__panic("out of memory acknowledging an unlink");
            a->words[0] = p->pid;
            a->words[1] = m->words[1];
            amb__deliver(p->rt, p->sched, q, a);
        }
        break;
    }
    case AMB__MSG_UNLINK_ACK: {
        entry *x = p->fail ? tab_find(&p->fail->links, m->words[0]) : NULL;
        if (x != NULL && x->unlink_id != 0 && x->unlink_id == m->words[1])
            tab_del(&p->fail->links, m->words[0], NULL);
        break;
    }
    case AMB__MSG_EXIT:
        return handle_exit(p, m);
    case AMB__MSG_MONITOR: {
        uint32_t ref[3] = {(uint32_t)m->words[3], (uint32_t)(m->words[3] >> 32),
                           (uint32_t)m->words[4]};
        f = fail_of(p);
        if (f == NULL || tab_put(&f->mons, (m->words[2] << 1) | 1, m->words[0], ref) != 0)
            amb__panic("out of memory making a monitor");
        break;
    }
    case AMB__MSG_DEMONITOR:
        if (p->fail != NULL)
            tab_del(&p->fail->mons, (m->words[1] << 1) | 1, NULL);
        break;
    case AMB__MSG_DOWN:
        /* A message only while the monitor is active (demonitor wins). */
        if (p->fail != NULL && tab_del(&p->fail->mons, m->words[0] << 1, NULL)) {
            p->fail->held--;
            m->kind = AMB__MSG_TERM;
            return m;
        }
        break;
    default:
        amb__panic("unknown signal kind %u", m->kind);
    }
    amb__msg_free(p->sched, m);
    return NULL;
}

void amb__fail_discard(amb_rt *rt, amb__sched *s, amb__msg *m)
{
    if (m->kind == AMB__MSG_LINK) {
        /* The target ended before it saw the link: noproc to the linker,
         * as a link exit signal (the linker has the target in its links). */
        amb_pid from = m->words[0], to = m->words[1];
        amb__msg_free(s, m);
        send_exit(rt, s, to, from, AMB_ATOM_NOPROC, LINKED);
        return;
    }
    if (m->kind == AMB__MSG_MONITOR) {
        uint32_t ref[3] = {(uint32_t)m->words[3], (uint32_t)(m->words[3] >> 32),
                           (uint32_t)m->words[4]};
        amb_pid watcher = m->words[0], target = m->words[1];
        amb__msg_free(s, m);
        send_down(rt, s, watcher, ref, target, AMB_ATOM_NOPROC);
        return;
    }
    amb__msg_free(s, m);
}

/* ---------------------------------------------------------------------------
 * Teardown
 * ------------------------------------------------------------------------ */

static void run_cleanups(struct amb__fail *f)
{
    while (f->ncl > 0) {
        cleanup c = f->cl[--f->ncl];
        c.fn(c.ctx);
    }
}

static void free_tables(amb_proc *p)
{
    struct amb__fail *f = p->fail;
    if (f == NULL)
        return;
    amb__free(f->links.e);
    amb__free(f->mons.e);
    amb__free(f->cl);
    amb__free(f);
    p->fail = NULL;
}

void amb__fail_teardown(amb__sched *s, amb_proc *p)
{
    struct amb__fail *f = p->fail;
    if (f == NULL)
        return;
    amb_rt *rt = p->rt;
    /* Resources first: whoever learns of the end (a supervisor restarting
     * the process) finds them released. */
    run_cleanups(f);
    amb_term reason = p->exit_reason;
    for (size_t i = 0; i < f->links.cap; i++)
        if (f->links.e[i].key != 0 && f->links.e[i].unlink_id == 0)
            send_exit(rt, s, p->pid, f->links.e[i].pid, reason, LINKED);
    for (size_t i = 0; i < f->mons.cap; i++) {
        entry *e = &f->mons.e[i];
        if (e->key == 0)
            continue;
        if (e->key & 1) {
            send_down(rt, s, e->pid, e->ref, p->pid, reason);
        } else {
            /* A monitor this process held: the target forgets it. */
            amb_proc *q = amb__ptab_lookup(rt, e->pid);
            amb__msg *m = q ? signal_cell(s, AMB__MSG_DEMONITOR, 2) : NULL;
            if (m != NULL) {
                m->words[0] = p->pid;
                m->words[1] = e->key >> 1;
                amb__deliver(rt, s, q, m);
            }
        }
    }
    free_tables(p);
}

void amb__fail_free(amb_proc *p)
{
    if (p->fail != NULL)
        run_cleanups(p->fail);
    free_tables(p);
}

/* ---------------------------------------------------------------------------
 * Spawn with link or monitor: both blocks are set up before the child is
 * published, so nobody can see one without the other.
 * ------------------------------------------------------------------------ */

int amb__fail_spawn_link(amb_proc *parent, amb_proc *child)
{
    struct amb__fail *pf = fail_of(parent), *cf = fail_of(child);
    if (pf == NULL || cf == NULL)
        return AMB_ENOMEM;
    if (tab_put(&cf->links, parent->pid, parent->pid, NULL) != 0)
        return AMB_ENOMEM;
    if (tab_put(&pf->links, child->pid, child->pid, NULL) != 0)
        return AMB_ENOMEM;
    return 0;
}

int amb__fail_spawn_monitor(amb_proc *parent, amb_proc *child, amb_term *ref)
{
    struct amb__fail *pf = fail_of(parent), *cf = fail_of(child);
    amb_heap *h = amb_proc_heap(parent);
    if (pf == NULL || cf == NULL || h == NULL)
        return AMB_ENOMEM;
    uint32_t w[3];
    new_ref_words(parent, w);
    amb_term r = ref_term(parent->rt, h, w);
    if (r == AMB_NONE)
        return AMB_ENOMEM;
    uint64_t key = key_of_words(w);
    if (tab_put(&cf->mons, (key << 1) | 1, parent->pid, w) != 0)
        return AMB_ENOMEM;
    if (tab_put(&pf->mons, key << 1, child->pid, w) != 0)
        return AMB_ENOMEM;
    pf->held++;
    if (ref != NULL)
        *ref = r;
    return 0;
}

void amb__fail_spawn_undo(amb_proc *parent, amb_proc *child)
{
    struct amb__fail *pf = parent->fail;
    if (pf == NULL)
        return;
    tab_del(&pf->links, child->pid, NULL);
    for (size_t i = 0; i < pf->mons.cap; i++) {
        if (pf->mons.e[i].key != 0 && !(pf->mons.e[i].key & 1) &&
            pf->mons.e[i].pid == child->pid) {
            tab_del(&pf->mons, pf->mons.e[i].key, NULL);
            pf->held--;
            break;
        }
    }
}

/* ---------------------------------------------------------------------------
 * The API
 * ------------------------------------------------------------------------ */

/* 0 for a pid of this runtime, else AMB_EBADARG / AMB_ENOTSUP. */
static int check_pid(amb_rt *rt, amb_pid pid)
{
    if (amb_is_local_pid(pid))
        return amb__lpid_slot(pid) == rt->node_slot ? 0 : AMB_ENOTSUP;
    return amb_type_of(pid) == AMB_T_PID ? AMB_ENOTSUP : AMB_EBADARG;
}

/* Puts a message the process sends itself (a signal answered at once). */
static void deliver_self(amb_proc *self, amb__msg *m)
{
    amb__deliver(self->rt, self->sched, self, m);
}

int amb_link(amb_proc *self, amb_pid pid)
{
    if (self == NULL)
        return AMB_EBADARG;
    int rc = check_pid(self->rt, pid);
    if (rc != 0)
        return rc;
    if (pid == self->pid)
        return 0;
    amb__proc_reduce(self);
    struct amb__fail *f = fail_of(self);
    if (f == NULL)
        return AMB_ENOMEM;
    entry *x = tab_find(&f->links, pid);
    if (x != NULL && x->unlink_id == 0)
        return 0; /* already linked: no signal */
    amb_proc *q = amb__ptab_lookup(self->rt, pid);
    if (q == NULL) {
        if (!(self->flags & AMB__PF_TRAP_EXIT))
            return AMB_ENOPROC;
        /* A trapping caller gets {'EXIT', Pid, noproc} as a message. */
        deliver_self(self, trapped_exit(self->sched, pid, AMB_ATOM_NOPROC));
        return 0;
    }
    amb__msg *m = signal_cell(self->sched, AMB__MSG_LINK, 2);
    if (m == NULL || tab_put(&f->links, pid, pid, NULL) != 0) {
        amb__msg_free(self->sched, m);
        return AMB_ENOMEM;
    }
    m->words[0] = self->pid;
    m->words[1] = pid;
    amb__deliver(self->rt, self->sched, q, m);
    return 0;
}

int amb_unlink(amb_proc *self, amb_pid pid)
{
    if (self == NULL)
        return AMB_EBADARG;
    int rc = check_pid(self->rt, pid);
    if (rc != 0)
        return rc;
    amb__proc_reduce(self);
    entry *x = self->fail && pid != self->pid ? tab_find(&self->fail->links, pid) : NULL;
    if (x == NULL || x->unlink_id != 0)
        return 0; /* not linked (or an unlink already under way) */
    /* The entry stays, inactive, until the other end acknowledges (or its
     * exit signal arrives, if it has ended): link exits are ignored from
     * now on. */
    amb_proc *q = amb__ptab_lookup(self->rt, pid);
    amb__msg *m = NULL;
    if (q != NULL && (m = signal_cell(self->sched, AMB__MSG_UNLINK, 2)) == NULL)
        return AMB_ENOMEM;
    x->unlink_id = ++self->fail->unlink_seq;
    if (m != NULL) {
        m->words[0] = self->pid;
        m->words[1] = x->unlink_id;
        amb__deliver(self->rt, self->sched, q, m);
    }
    return 0;
}

int amb_spawn_link(amb_proc *self, amb_fn *fn, void *arg, amb_pid *out)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    amb_spawn_opts o = {.name = AMB_NONE, .link = true};
    return amb_spawn_opt(self, fn, arg, &o, out, NULL);
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
    int rc = check_pid(self->rt, pid);
    if (rc != 0)
        return rc;
    amb__proc_reduce(self);
    struct amb__fail *f = fail_of(self);
    amb_heap *h = amb_proc_heap(self);
    if (f == NULL || h == NULL)
        return AMB_ENOMEM;
    uint32_t w[3];
    new_ref_words(self, w);
    amb_term r = ref_term(self->rt, h, w);
    if (r == AMB_NONE)
        return AMB_ENOMEM;
    uint64_t key = key_of_words(w);
    amb_proc *q = amb__ptab_lookup(self->rt, pid);
    amb__msg *m = q ? signal_cell(self->sched, AMB__MSG_MONITOR, 5) : NULL;
    if ((q != NULL && m == NULL) || tab_put(&f->mons, key << 1, pid, w) != 0) {
        amb__msg_free(self->sched, m);
        return AMB_ENOMEM;
    }
    f->held++;
    if (ref != NULL)
        *ref = r;
    if (q == NULL) {
        /* Not alive: an immediate DOWN noproc, through the same path as any
         * DOWN (it removes the monitor when it is drained). */
        deliver_self(self, down_cell(self->rt, self->sched, w, pid, AMB_ATOM_NOPROC));
        return 0;
    }
    m->words[0] = self->pid;
    m->words[1] = pid;
    m->words[2] = key;
    m->words[3] = (uint64_t)w[0] | ((uint64_t)w[1] << 32);
    m->words[4] = w[2];
    amb__deliver(self->rt, self->sched, q, m);
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
    entry e;
    bool active =
        key != 0 && self->fail != NULL && tab_del(&self->fail->mons, key << 1, &e);
    if (active) {
        self->fail->held--;
        amb_proc *q = amb__ptab_lookup(self->rt, e.pid);
        amb__msg *m = q ? signal_cell(self->sched, AMB__MSG_DEMONITOR, 2) : NULL;
        if (m != NULL) {
            m->words[0] = self->pid;
            m->words[1] = key;
            amb__deliver(self->rt, self->sched, q, m);
        }
        /* Without memory for the cell the target keeps a stale entry until
         * it ends; its DOWN is then dropped here (the monitor is gone). */
    }
    if (flags & AMB_DEMONITOR_FLUSH) {
        /* A DOWN still in the mailbox is dropped when drained (the monitor
         * is gone); one already in the private queue is removed here. */
        amb_term r = ref;
        amb__mailbox_remove_if(self, is_down_of, &r);
    }
    return active ? 0 : AMB_ENOTFOUND;
}

int amb_exit(amb_proc *self, amb_pid pid, amb_term reason)
{
    if (self == NULL || reason == AMB_NONE)
        return AMB_EBADARG;
    int rc = check_pid(self->rt, pid);
    if (rc != 0)
        return rc;
    amb__msg *m = exit_cell(self->sched, self->pid, reason, 0);
    if (m == NULL)
        return AMB_ENOMEM;
    post_exit(self->rt, self->sched, pid, m);
    if (pid == self->pid)
        amb__proc_signals(self); /* a signal to oneself acts at once */
    else
        amb__proc_reduce(self);
    return 0;
}

bool amb_trap_exit(amb_proc *self, bool on)
{
    if (self == NULL)
        return false;
    bool was = (self->flags & AMB__PF_TRAP_EXIT) != 0;
    if (on)
        self->flags |= AMB__PF_TRAP_EXIT;
    else
        self->flags &= ~(uint32_t)AMB__PF_TRAP_EXIT;
    return was;
}

int amb_on_exit(amb_proc *self, amb_cleanup_fn *fn, void *ctx)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    struct amb__fail *f = fail_of(self);
    if (f == NULL)
        return AMB_ENOMEM;
    if (f->ncl == f->capcl) {
        size_t cap = f->capcl ? f->capcl * 2 : 4;
        cleanup *cl = amb__realloc(f->cl, cap * sizeof *cl);
        if (cl == NULL)
            return AMB_ENOMEM;
        f->cl = cl;
        f->capcl = cap;
    }
    f->cl[f->ncl++] = (cleanup){fn, ctx};
    return 0;
}

int amb_on_exit_cancel(amb_proc *self, amb_cleanup_fn *fn, void *ctx)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    struct amb__fail *f = self->fail;
    for (size_t i = f ? f->ncl : 0; i-- > 0;) {
        if (f->cl[i].fn == fn && f->cl[i].ctx == ctx) {
            memmove(&f->cl[i], &f->cl[i + 1], (f->ncl - i - 1) * sizeof *f->cl);
            f->ncl--;
            return 0;
        }
    }
    return AMB_ENOTFOUND;
}

void amb_assert_fail(amb_proc *self, const char *expr, const char *file, int line)
{
    if (self == NULL)
        amb__panic("AMB_ASSERT(%s) failed at %s:%d outside a process", expr, file, line);
    /* Built on the process's heap, which lives until the process ends;
     * amb__proc_die copies the reason to the exit heap. */
    amb_heap *h = amb_proc_heap(self);
    amb_term reason = AMB_ATOM_ERROR;
    if (h != NULL) {
        amb_term t = AMB_TUPLE(
            h, amb_atom("assert"),
            AMB_LIST(
                h, AMB_TUPLE(h, amb_atom("file"), amb_binary(h, file, strlen(file))),
                AMB_TUPLE(h, amb_atom("line"), amb_int(h, line)),
                AMB_TUPLE(h, amb_atom("expression"), amb_binary(h, expr, strlen(expr)))));
        if (t != AMB_NONE)
            reason = t;
    }
    amb__proc_die(self, reason, true, NULL);
}

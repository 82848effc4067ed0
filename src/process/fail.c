/*
 * fail.c - a process's links and monitors (the index of their entry cells,
 * fail.h), its on_exit handlers, and what happens to all of them when it
 * ends.
 *
 * Invariants:
 *   - The index and the handlers belong to the process (and to its
 *     scheduler at teardown), so nothing here takes a lock.
 *   - The index holds at most one entry per exact key (a hashed key may
 *     repeat, its entries told apart by their terms: fail.h); its chains
 *     are linked through the cells' mailbox link (relaxed: the cells left
 *     every queue, only this process touches them, as in the private
 *     queue).
 *   - Recording an entry never fails: the bucket array doubles when there
 *     is memory (load at most 2), and chains grow when there is not.
 *   - At teardown the on_exit handlers run first, then every entry is sent
 *     as the signal it is (fail.h): whoever learns of the end (a supervisor
 *     restarting the process) finds the process's resources released. A
 *     process that ever had a relation with another node (AMB__PF_REMOTE)
 *     then tells the dist layer it is gone, after the ops its entries
 *     called (remote.h).
 */
#include "process/fail.h"

/* The on_exit handlers, newest last; made on first amb_on_exit. */
typedef struct amb__fail_cleanup {
    amb_cleanup_fn *fn;
    void *ctx;
} amb__fail_cleanup;

struct amb__fail {
    amb__fail_cleanup *cl;
    size_t ncl, capcl;
};

#define MIN_BUCKETS_SHIFT 4 /* the first array: 16 buckets */

static inline amb__msg *chain_next(amb__msg *m)
{
    /* relaxed: a private list of the process (see above). */
    return (amb__msg *)(void *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
}

static inline void chain_set(amb__msg *m, amb__msg *next)
{
    atomic_store_explicit(&m->node.next, next != NULL ? &next->node : NULL,
                          memory_order_relaxed);
}

static size_t bucket_of(const struct amb__fail_index *x, uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)(key >> x->shift);
}

/* The chains of x: its buckets, or the one inline chain. */
static size_t nchains(const struct amb__fail_index *x)
{
    return x->buckets != NULL ? (size_t)1 << (64 - x->shift) : 1;
}

static amb__msg **chain_of(struct amb__fail_index *x, uint64_t key)
{
    return x->buckets != NULL ? &x->buckets[bucket_of(x, key)] : &x->one;
}

/* Doubles the bucket array (or makes the first one) when there is memory;
 * the chains simply stay longer when there is not. */
static void grow(struct amb__fail_index *x)
{
    unsigned shift = x->buckets != NULL ? x->shift - 1u : 64u - MIN_BUCKETS_SHIFT;
    size_t n = (size_t)1 << (64 - shift);
    amb__msg **b = amb__calloc(n, sizeof *b);
    if (b == NULL)
        return;
    size_t old = nchains(x);
    amb__msg **from = x->buckets != NULL ? x->buckets : &x->one;
    struct amb__fail_index nx = {.buckets = b, .shift = (uint8_t)shift};
    for (size_t i = 0; i < old; i++)
        for (amb__msg *m = from[i], *next; m != NULL; m = next) {
            next = chain_next(m);
            amb__msg **c = &b[bucket_of(&nx, m->seq)];
            chain_set(m, *c);
            *c = m;
        }
    amb__free(x->buckets);
    x->buckets = b;
    x->one = NULL;
    x->shift = (uint8_t)shift;
}

void amb__fail_add(amb_proc *p, amb__msg *e)
{
    struct amb__fail_index *x = &p->links_mons;
    size_t nb = nchains(x);
    if (x->len >= 2 * nb && (x->buckets != NULL || x->len >= 8))
        grow(x);
    amb__msg **c = chain_of(x, e->seq);
    chain_set(e, *c);
    *c = e;
    x->len++;
}

amb__msg *amb__fail_find(amb_proc *p, uint64_t key)
{
    for (amb__msg *m = *chain_of(&p->links_mons, key); m != NULL; m = chain_next(m))
        if (m->seq == key)
            return m;
    return NULL;
}

amb__msg *amb__fail_find_term(amb_proc *p, uint64_t key, size_t w, amb_term t)
{
    for (amb__msg *m = *chain_of(&p->links_mons, key); m != NULL; m = chain_next(m))
        if (m->seq == key && amb_equal(m->words[w], t))
            return m;
    return NULL;
}

/* Unlinks e (or the first entry of key when e is NULL) from its chain:
 * the entry, or NULL. */
static amb__msg *unchain(struct amb__fail_index *x, uint64_t key, const amb__msg *e)
{
    amb__msg **head = chain_of(x, key);
    for (amb__msg *prev = NULL, *m = *head; m != NULL; prev = m, m = chain_next(m)) {
        if (e != NULL ? m != e : m->seq != key)
            continue;
        if (prev != NULL)
            chain_set(prev, chain_next(m));
        else
            *head = chain_next(m);
        x->len--;
        return m;
    }
    return NULL;
}

amb__msg *amb__fail_take(amb_proc *p, uint64_t key)
{
    return unchain(&p->links_mons, key, NULL);
}

void amb__fail_remove(amb_proc *p, amb__msg *e)
{
    AMB__CHECK(unchain(&p->links_mons, e->seq, e) == e);
}

void amb__fail_sweep(amb_proc *p, bool (*keep)(void *ctx, const amb__msg *e),
                     void (*fn)(void *ctx, amb__msg *e), void *ctx)
{
    struct amb__fail_index *x = &p->links_mons;
    /* The array cannot change under the walk: fn adds no entry (only an add
     * grows it), and an fn that ends the process does not come back. */
    for (size_t i = 0, nb = nchains(x); i < nb; i++) {
        amb__msg **link = x->buckets != NULL ? &x->buckets[i] : &x->one;
        for (amb__msg *prev = NULL, *m = *link, *next; m != NULL; m = next) {
            next = chain_next(m);
            if (keep(ctx, m)) {
                prev = m;
                continue;
            }
            if (prev != NULL)
                chain_set(prev, next);
            else
                *link = next;
            x->len--;
            fn(ctx, m);
        }
    }
}

void amb__fail_each(const amb_proc *p, void (*fn)(void *ctx, const amb__msg *e),
                    void *ctx)
{
    const struct amb__fail_index *x = &p->links_mons;
    for (size_t i = 0, nb = nchains(x); i < nb; i++)
        for (amb__msg *m = x->buckets != NULL ? x->buckets[i] : x->one; m != NULL;
             m = chain_next(m))
            fn(ctx, m);
}

static void add_bytes(void *ctx, const amb__msg *e)
{
    *(size_t *)ctx += amb__msg_bytes(e);
}

size_t amb__fail_bytes(const amb_proc *p)
{
    const struct amb__fail_index *x = &p->links_mons;
    size_t bytes = x->buckets != NULL ? nchains(x) * sizeof *x->buckets : 0;
    amb__fail_each(p, add_bytes, &bytes);
    const struct amb__fail *f = p->fail;
    if (f != NULL)
        bytes += sizeof *f + f->capcl * sizeof *f->cl;
    return bytes;
}

amb_term amb__fail_keep(amb__msg *m, amb_term t)
{
    AMB__CHECK(m->heap_at != 0); /* made by amb__msg_new_reserved */
    amb_term c = t;
    if ((amb_is_cons(t) || amb__is_boxed(t)) &&
        amb_term_copy(amb__msg_heap(m), t, &c) != 0)
        return AMB_NONE;
    return c;
}

void amb__fail_reason(amb_rt *rt, amb__msg *m, amb_term reason)
{
    amb_term r = amb__fail_keep(m, reason);
    m->term = r != AMB_NONE ? r : rt->reason_enomem; /* lives as long as the runtime */
}

/* ---------------------------------------------------------------------------
 * The end of a process
 * ------------------------------------------------------------------------ */

static void run_cleanups(amb_proc *p)
{
    struct amb__fail *f = p->fail;
    while (f != NULL && f->ncl > 0) {
        amb__fail_cleanup c = f->cl[--f->ncl];
        c.fn(c.ctx);
    }
}

static void free_cleanups(amb_proc *p)
{
    if (p->fail != NULL) {
        amb__free(p->fail->cl);
        amb__free(p->fail);
        p->fail = NULL;
    }
}

/* Takes every entry out of p's index, one chain at a time, handing each to
 * fn (which frees or sends it). */
static void empty_index(amb__sched *s, amb_proc *p,
                        void (*fn)(amb__sched *s, amb_proc *p, amb__msg *e))
{
    struct amb__fail_index *x = &p->links_mons;
    size_t nb = nchains(x);
    amb__msg **b = x->buckets != NULL ? x->buckets : &x->one;
    for (size_t i = 0; i < nb; i++)
        while (b[i] != NULL) {
            amb__msg *e = b[i];
            b[i] = chain_next(e);
            x->len--;
            fn(s, p, e);
        }
    amb__free(x->buckets);
    *x = (struct amb__fail_index){0};
}

/* Teardown: an entry becomes the signal it is (or, for a relation with
 * another node, leaves through the dist layer's ops). */
static void send_entry(amb__sched *s, amb_proc *p, amb__msg *e)
{
    if (e->kind == AMB__MSG_LINK)
        amb__link_end(s, p, e);
    else
        amb__monitor_end(s, p, e);
}

static void free_entry(amb__sched *s, amb_proc *p, amb__msg *e)
{
    (void)p;
    amb__msg_free(s, e);
}

void amb__fail_teardown(amb__sched *s, amb_proc *p)
{
    /* Most processes end with no handler, link or monitor (and never had
     * a bucket array). */
    if (p->fail == NULL && p->links_mons.len == 0 && p->links_mons.buckets == NULL &&
        !(p->flags & AMB__PF_REMOTE))
        return;
    run_cleanups(p);
    free_cleanups(p);
    empty_index(s, p, send_entry);
    if (p->flags & AMB__PF_REMOTE) {
        /* After the signals of its end: the dist layer forgets it. */
        const amb__remote *r = amb__remote_get(p->rt);
        r->ops->gone(r->ctx, s, p->pid);
    }
}

void amb__fail_free(amb_proc *p)
{
    run_cleanups(p);
    free_cleanups(p);
    empty_index(p->task.sched, p, free_entry);
}

/* ---------------------------------------------------------------------------
 * on_exit handlers
 * ------------------------------------------------------------------------ */

int amb_on_exit(amb_proc *self, amb_cleanup_fn *fn, void *ctx)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    if (self->fail == NULL && (self->fail = amb__calloc(1, sizeof *self->fail)) == NULL)
        return AMB_ENOMEM;
    struct amb__fail *f = self->fail;
    if (f->ncl == f->capcl) {
        size_t cap = f->capcl ? f->capcl * 2 : 4;
        amb__fail_cleanup *cl = amb__realloc(f->cl, cap * sizeof *cl);
        if (cl == NULL)
            return AMB_ENOMEM;
        f->cl = cl;
        f->capcl = cap;
    }
    f->cl[f->ncl++] = (amb__fail_cleanup){fn, ctx};
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

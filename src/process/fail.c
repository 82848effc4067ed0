/*
 * fail.c - a process's failure state (fail.h): the tables of its links and
 * monitors, its on_exit handlers, and what happens to all of them when it
 * ends.
 *
 * Invariants:
 *   - p->fail is made on first use and belongs to p (and to its scheduler
 *     at teardown), so nothing here takes a lock.
 *   - At teardown the on_exit handlers run first, then links and monitors
 *     are told: whoever learns of the end (a supervisor restarting the
 *     process) finds the process's resources released.
 */
#include "process/fail.h"

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

amb__fail_entry *amb__fail_find(const amb__fail_table *t, uint64_t key)
{
    if (t->cap == 0)
        return NULL;
    for (size_t i = slot_of(key, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->e[i].key == key && !t->e[i].hashed)
            return &t->e[i];
        if (t->e[i].key == 0)
            return NULL;
    }
}

/* The term a hashed entry's key was made from. */
static amb_term hashed_term(const amb__fail_entry *e)
{
    return e->remote->ref != AMB_NONE ? e->remote->ref : e->remote->pid;
}

amb__fail_entry *amb__fail_find_term(const amb__fail_table *t, uint64_t key,
                                     amb_term term)
{
    if (t->cap == 0)
        return NULL;
    for (size_t i = slot_of(key, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->e[i].key == key && t->e[i].hashed &&
            amb_equal(hashed_term(&t->e[i]), term))
            return &t->e[i];
        if (t->e[i].key == 0)
            return NULL;
    }
}

/* A hash key: never 0, and its low four bits 1000 are no immediate pid's
 * (...1110), so it never equals an exact link key. Bit 62 keeps it apart
 * from the monitor keys this runtime makes ((n << 10) | id, n < 2^52). */
static uint64_t hash_key(amb_term t)
{
    return (amb_hash(t) & ~UINT64_C(0xF) & ~(UINT64_C(1) << 63)) | (UINT64_C(1) << 62) |
           0x8u;
}

uint64_t amb__fail_pid_key(amb_pid pid, bool *hashed)
{
    *hashed = !amb_is_local_pid(pid);
    return *hashed ? hash_key(pid) : pid;
}

amb__fail_entry *amb__fail_find_pid(const amb__fail_table *t, amb_pid pid)
{
    bool hashed;
    uint64_t key = amb__fail_pid_key(pid, &hashed);
    return hashed ? amb__fail_find_term(t, key, pid) : amb__fail_find(t, key);
}

uint64_t amb__fail_ref_key(amb_term ref)
{
    /* Shifted left once by the monitor table: the top bit goes. */
    return hash_key(ref) & ~(UINT64_C(1) << 63);
}

static int grow(amb__fail_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 8;
    amb__fail_entry *e = amb__calloc(cap, sizeof *e);
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

/* A free slot for key (the table grown first when needed), counted; NULL
 * when out of memory. */
static amb__fail_entry *new_slot(amb__fail_table *t, uint64_t key)
{
    if ((t->len + 1) * 4 > t->cap * 3 && grow(t) != 0)
        return NULL;
    size_t i = slot_of(key, t->cap);
    while (t->e[i].key != 0)
        i = (i + 1) & (t->cap - 1);
    t->len++;
    return &t->e[i];
}

amb__fail_entry *amb__fail_put(amb__fail_table *t, uint64_t key, amb_pid pid)
{
    amb__fail_entry *x = amb__fail_find(t, key);
    if (x != NULL)
        amb__fail_release(x);
    else if ((x = new_slot(t, key)) == NULL)
        return NULL;
    memset(x, 0, sizeof *x);
    x->key = key;
    x->pid = pid;
    return x;
}

/* Words a copy of t takes on a fresh heap. */
static size_t words_of(amb_term t)
{
    return t == AMB_NONE ? 0 : amb_term_size(t) / sizeof(uint64_t);
}

amb__fail_entry *amb__fail_put_remote(amb__fail_table *t, uint64_t key, bool hashed,
                                      amb_pid pid, amb_term ref, amb_term node,
                                      uint32_t conn)
{
    size_t n = words_of(pid) + words_of(ref);
    amb__fail_remote *r = amb__malloc(sizeof *r + n * sizeof(uint64_t));
    if (r == NULL)
        return NULL;
    amb__heap_init_fixed(&r->heap, r->words, n);
    r->pid = r->ref = AMB_NONE;
    r->node = node;
    /* Sized exactly: the copies fit the words (a pid or a reference holds
     * no binary that could need a block). */
    if ((pid != AMB_NONE && amb_term_copy(&r->heap, pid, &r->pid) != 0) ||
        (ref != AMB_NONE && amb_term_copy(&r->heap, ref, &r->ref) != 0)) {
        amb__heap_release(&r->heap);
        amb__free(r);
        return NULL;
    }
    amb__fail_entry *x = hashed ? NULL : amb__fail_find(t, key);
    if (x != NULL)
        amb__fail_release(x);
    else if ((x = new_slot(t, key)) == NULL) {
        amb__heap_release(&r->heap);
        amb__free(r);
        return NULL;
    }
    memset(x, 0, sizeof *x);
    x->key = key;
    x->hashed = hashed;
    x->pid = r->pid;
    x->conn = conn;
    x->remote = r;
    return x;
}

void amb__fail_release(amb__fail_entry *e)
{
    if (e->remote != NULL) {
        amb__heap_release(&e->remote->heap);
        amb__free(e->remote);
        e->remote = NULL;
    }
}

bool amb__fail_del(amb__fail_table *t, uint64_t key, amb__fail_entry *out)
{
    amb__fail_entry *x = amb__fail_find(t, key);
    if (x == NULL)
        return false;
    amb__fail_del_entry(t, x, out);
    return true;
}

void amb__fail_del_entry(amb__fail_table *t, amb__fail_entry *x, amb__fail_entry *out)
{
    if (out != NULL)
        *out = *x;
    else
        amb__fail_release(x);
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
    t->e[i].remote = NULL;
    t->len--;
}

/* The bytes of the remote parts of t's entries. */
static size_t remote_bytes(const amb__fail_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].key != 0 && t->e[i].remote != NULL)
            n +=
                sizeof *t->e[i].remote + (size_t)((const char *)t->e[i].remote->heap.end -
                                                  (const char *)t->e[i].remote->words);
    return n;
}

size_t amb__fail_bytes(const amb_proc *p)
{
    const struct amb__fail *f = p->fail;
    if (f == NULL)
        return 0;
    return sizeof *f + (f->links.cap + f->mons.cap) * sizeof(amb__fail_entry) +
           f->capcl * sizeof *f->cl + remote_bytes(&f->links) + remote_bytes(&f->mons);
}

/* ---------------------------------------------------------------------------
 * The end of a process
 * ------------------------------------------------------------------------ */

static void run_cleanups(struct amb__fail *f)
{
    while (f->ncl > 0) {
        amb__fail_cleanup c = f->cl[--f->ncl];
        c.fn(c.ctx);
    }
}

/* Frees t's remote parts. */
static void release_all(amb__fail_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].key != 0)
            amb__fail_release(&t->e[i]);
}

static void free_tables(amb_proc *p)
{
    struct amb__fail *f = p->fail;
    if (f == NULL)
        return;
    release_all(&f->links);
    release_all(&f->mons);
    amb__free(f->links.e);
    amb__free(f->mons.e);
    amb__free(f->cl);
    amb__free(f);
    p->fail = NULL;
}

void amb__fail_teardown(amb__sched *s, amb_proc *p)
{
    if (p->fail == NULL)
        return;
    run_cleanups(p->fail);
    amb__link_teardown(s, p);
    amb__monitor_teardown(s, p);
    free_tables(p);
    if (p->flags & AMB__PF_REMOTE) {
        /* After the signals of its end: the dist layer forgets it. */
        const amb__remote *r = amb__remote_get(p->rt);
        r->ops->gone(r->ctx, s, p->pid);
    }
}

void amb__fail_free(amb_proc *p)
{
    if (p->fail != NULL)
        run_cleanups(p->fail);
    free_tables(p);
}

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
        if (t->e[i].key == key)
            return &t->e[i];
        if (t->e[i].key == 0)
            return NULL;
    }
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

amb__fail_entry *amb__fail_put(amb__fail_table *t, uint64_t key, amb_pid pid)
{
    amb__fail_entry *x = amb__fail_find(t, key);
    if (x == NULL) {
        if ((t->len + 1) * 4 > t->cap * 3 && grow(t) != 0)
            return NULL;
        size_t i = slot_of(key, t->cap);
        while (t->e[i].key != 0)
            i = (i + 1) & (t->cap - 1);
        x = &t->e[i];
        t->len++;
    }
    memset(x, 0, sizeof *x);
    x->key = key;
    x->pid = pid;
    return x;
}

bool amb__fail_del(amb__fail_table *t, uint64_t key, amb__fail_entry *out)
{
    amb__fail_entry *x = amb__fail_find(t, key);
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

size_t amb__fail_bytes(const amb_proc *p)
{
    const struct amb__fail *f = p->fail;
    if (f == NULL)
        return 0;
    return sizeof *f + (f->links.cap + f->mons.cap) * sizeof(amb__fail_entry) +
           f->capcl * sizeof *f->cl;
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
    if (p->fail == NULL)
        return;
    run_cleanups(p->fail);
    amb__link_teardown(s, p);
    amb__monitor_teardown(s, p);
    free_tables(p);
}

void amb__fail_free(amb_proc *p)
{
    if (p->fail != NULL)
        run_cleanups(p->fail);
    free_tables(p);
}

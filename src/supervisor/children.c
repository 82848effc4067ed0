/*
 * children.c - the children of one supervisor (static or dynamic): where
 * the records live, the start order, and the indexes that make every
 * per-child operation independent of how many children there are.
 *
 *   chunks  records in blocks of CHUNK that never move: a record keeps its
 *           address and slot for its life (pointers into the set stay valid
 *           across adds), and freed records are reused, so a supervisor
 *           that adds and deletes children forever uses bounded memory.
 *   list    the live records, doubly linked in start order (head the
 *           oldest): the order of starting and restarting a group, stopping
 *           in reverse, and which_children (newest first).
 *   ids     id -> record (amb_hash, amb_equal), static supervisors only.
 *   pids    pid -> record, exactly the running children.
 *
 * Costs: add, remove, each lookup, start and exited are O(1) (expected, for
 * the hash lookups; amortised, for growth); stopping n children at once is
 * O(n log n) (child.c); which_children and count_children are O(n).
 *
 * Invariants:
 *   - A record is live (uid != 0, on the list) or free (uid == 0, on the
 *     free list). n counts the live ones.
 *   - A live record is in pids exactly while its pid is not AMB_NONE, and
 *     pids has room for every live record: indexing a started child never
 *     allocates (amb__children_add reserved it).
 *   - With ids, every live record is in ids under its idhash.
 */
#include <stdint.h>
#include <string.h>

#include "sup_internal.h"

#define CHUNK 64

static bool same_id(const void *item, amb_term id)
{
    return amb_equal(((const amb__child *)item)->id, id);
}

void amb__children_init(amb__children *s, bool with_ids)
{
    memset(s, 0, sizeof *s);
    s->with_ids = with_ids;
    s->next_uid = 1;
}

void amb__children_free(amb__children *s)
{
    for (amb__child *c = s->head; c != NULL; c = c->next)
        amb__child_free(c);
    for (size_t i = 0; i < s->nchunks; i++)
        amb_free(s->chunks[i]);
    amb_free(s->chunks);
    amb__index_free(&s->ids);
    amb__index_free(&s->pids);
    amb__children_init(s, s->with_ids);
}

/* One more chunk of free records: 0 or AMB_ENOMEM. */
static int grow(amb__children *s)
{
    if (s->nchunks == s->chunkcap) { /* the chunk table doubles */
        size_t cap = s->chunkcap ? s->chunkcap * 2 : 4;
        amb__child **chunks = amb_realloc(s->chunks, cap * sizeof *chunks);
        if (chunks == NULL)
            return AMB_ENOMEM;
        s->chunks = chunks;
        s->chunkcap = cap;
    }
    amb__child *chunk = amb_malloc(CHUNK * sizeof *chunk);
    if (chunk == NULL)
        return AMB_ENOMEM;
    memset(chunk, 0, CHUNK * sizeof *chunk);
    for (size_t i = CHUNK; i-- > 0;) {
        chunk[i].slot = s->nchunks * CHUNK + i;
        chunk[i].next = s->free;
        s->free = &chunk[i];
    }
    s->chunks[s->nchunks++] = chunk;
    return 0;
}

int amb__children_add(amb__children *s, const amb_child_spec *spec, amb__child **out)
{
    if ((s->free == NULL && grow(s) != 0) ||
        amb__index_reserve(&s->pids, s->n + 1) != 0 ||
        (s->with_ids && amb__index_reserve(&s->ids, s->n + 1) != 0))
        return AMB_ENOMEM;
    amb__child *c = s->free;
    s->free = c->next;
    if (amb__child_init(c, spec, s->with_ids, s->next_uid) != 0) {
        c->next = s->free;
        s->free = c;
        return AMB_ENOMEM;
    }
    s->next_uid++;
    if (s->with_ids) {
        c->idhash = amb_hash(c->id);
        amb__index_put(&s->ids, c->idhash, c);
    }
    c->prev = s->tail;
    c->next = NULL;
    if (s->tail != NULL)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    s->n++;
    *out = c;
    return 0;
}

void amb__children_remove(amb__children *s, amb__child *c)
{
    if (s->with_ids)
        amb__index_del(&s->ids, c->idhash, c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        s->tail = c->prev;
    amb__child_free(c);
    c->uid = 0;
    c->prev = NULL;
    c->next = s->free;
    s->free = c;
    s->n--;
}

amb__child *amb__children_by_id(const amb__children *s, amb_term id)
{
    if (!s->with_ids)
        return NULL;
    /* The index holds the set's own records, which are not const. */
    return (amb__child *)(uintptr_t)amb__index_get(&s->ids, amb_hash(id), same_id, id);
}

static bool same_pid(const void *item, amb_term pid)
{
    return amb_equal(((const amb__child *)item)->pid, pid);
}

amb__child *amb__children_by_pid(const amb__children *s, amb_pid pid)
{
    return (amb__child *)(uintptr_t)amb__index_get(&s->pids, amb__child_pid_key(pid),
                                                   same_pid, pid);
}

amb__child *amb__children_by_uid(const amb__children *s, uint64_t slot, uint64_t uid)
{
    if (uid == 0 || slot >= (uint64_t)s->nchunks * CHUNK)
        return NULL;
    amb__child *c = &s->chunks[slot / CHUNK][slot % CHUNK];
    return c->uid == uid ? c : NULL;
}

int amb__children_start(amb_proc *self, amb__children *s, amb__child *c, amb_term *reason)
{
    int rc = amb__child_start(self, c, reason);
    if (rc == 0)
        amb__index_put(&s->pids, amb__child_pid_key(c->pid), c);
    return rc;
}

void amb__children_stop(amb_proc *self, amb__children *s, amb__child *first, size_t n)
{
    amb__child *c = first;
    for (size_t i = 0; i < n; i++, c = c->next)
        if (c->pid != AMB_NONE)
            amb__index_del(&s->pids, amb__child_pid_key(c->pid), c);
    amb__child_stop(self, first, n);
}

void amb__children_exited(amb__children *s, amb__child *c)
{
    amb__index_del(&s->pids, amb__child_pid_key(c->pid), c);
    c->pid = AMB_NONE;
}

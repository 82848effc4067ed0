/*
 * pheap.c - term state: the process heap of a handler whose state begins
 * with terms (amb_handler.state_terms, process.h), kept alive by the
 * runtime and reclaimed by compacting it in place.
 *
 *   process heap:  [ state v1 | garbage | reply | state v2 | ... ]
 *   kept cells:    msg 7 -> msg 8 -> ...    (received since the last collection)
 *                          |
 *           after a callback, when heap + kept >= GROWTH x live:
 *                          v
 *   process heap:  [ what the state's terms reach, shared parts once ][ free ]
 *                  (the parts of kept cells they reach copied in; blocks
 *                   left empty and the kept cells freed)
 *
 * Like BEAM's heap fragments, a message a term-state process received is
 * not freed when its borrow ends (the callback's return, the next receive):
 * the new state may hold parts of it, so it joins the kept cells and counts
 * as heap until the next collection copies the parts still reachable. No
 * user copies a request by hand.
 *
 * Invariants:
 *   - Collections run only between callbacks (amb__pheap_after, called by
 *     the handler's activation after init and after each handle), when no C
 *     local holds a term: the roots are exactly the state's term slots.
 *   - The trigger: heap bytes in use plus kept bytes >= GROWTH (7/4) x
 *     max(live, AMB__PHEAP_MIN_LIVE), where live is the heap in use right
 *     after the last collection. Each collection handles at most the heap
 *     and happens after at least (GROWTH - 1) x live bytes of new
 *     allocation, so its cost is amortised O(1) per byte allocated.
 *   - Memory: the collection compacts the heap within its own blocks
 *     (collect.c; no to-space), so the process holds at most GROWTH x live
 *     plus one callback's allocation, and a twentieth of its heap more for
 *     the side tables while it collects (sanitizer builds compact into a
 *     fresh block instead: twice that, for use-after-free reports).
 *   - The heap struct stays where it is: amb_proc_heap's pointer is valid
 *     across collections; terms and heap marks are not.
 *   - A collection that cannot start (no memory for its side tables)
 *     changes nothing and is tried after the next callback. One that runs
 *     out of memory half way (the stack of its walk) has overwritten kept
 *     cells with forwarding words, so the process ends at once with
 *     {error, 'AMB_ENOMEM'} (BEAM aborts the whole node when a collection
 *     finds no memory).
 */
#include "process/rt.h"

/* Collect when the heap has grown to GROWTH (NUM / DEN) times the live
 * size (at least MIN_LIVE bytes, so that a tiny state is not collected
 * after every message). 7/4 keeps a process's peak memory, runtime
 * included, under 3x its live data (docs/design/term-state.md: 2 took it
 * to 2.9x, 7/4 to 2.6x, at 10% more time per call). */
#ifndef AMB__PHEAP_GROWTH_NUM
#define AMB__PHEAP_GROWTH_NUM 7
#define AMB__PHEAP_GROWTH_DEN 4
#endif
#define AMB__PHEAP_MIN_LIVE ((size_t)8 << 10)

/* GROWTH x max(bytes, MIN_LIVE). */
static size_t grown(size_t bytes)
{
    if (bytes < AMB__PHEAP_MIN_LIVE)
        bytes = AMB__PHEAP_MIN_LIVE;
    return bytes / AMB__PHEAP_GROWTH_DEN * AMB__PHEAP_GROWTH_NUM;
}

/* The private-queue link, which kept cells reuse (relaxed, as mailbox.c's
 * pq_next: only the process touches a received cell). */
static inline amb__msg *kept_next(const amb__msg *m)
{
    return (amb__msg *)(void *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
}

void amb__pheap_keep(amb_proc *p, amb__msg *m)
{
    /* relaxed: see kept_next. */
    atomic_store_explicit(&m->node.next, p->pheap->kept ? &p->pheap->kept->node : NULL,
                          memory_order_relaxed);
    p->pheap->kept = m;
    p->pheap->kept_bytes += amb__msg_bytes(m);
}

void amb__pheap_drop(amb__sched *s, amb_proc *p)
{
    for (amb__msg *m = p->pheap->kept, *next; m != NULL; m = next) {
        next = kept_next(m);
        amb__msg_free(s, m);
    }
    p->pheap->kept = NULL;
    p->pheap->kept_bytes = 0;
}

void amb__pheap_free(amb__sched *s, amb_proc *p)
{
    if (p->pheap == NULL)
        return;
    amb__pheap_drop(s, p);
    amb__free(p->pheap);
    p->pheap = NULL;
}

/* Ends p after a collection that ran out of memory half way. */
_Noreturn static void die_enomem(amb_proc *p)
{
    uint64_t words[3];
    amb_heap tmp;
    amb__heap_init_fixed(&tmp, words, AMB_COUNTOF(words));
    amb_term atom = amb_atom(amb_err_name(AMB_ENOMEM));
    amb_term reason = atom != AMB_NONE ? AMB_TUPLE(&tmp, AMB_ATOM_ERROR, atom) : AMB_NONE;
    amb__proc_die(p, reason != AMB_NONE ? reason : AMB_ATOM_ERROR, true, NULL);
}

/* Compacts the heap to what roots[0..n) reach, the parts of kept cells
 * they reach copied into it, and frees the kept cells. 0; AMB_ENOMEM before
 * anything changed. Ends p when memory runs out half way. */
static int collect(amb_proc *p, amb_term *roots, size_t n)
{
    amb_heap *heap = amb_proc_heap(p);
    if (heap == NULL)
        return AMB_ENOMEM;
    size_t nranges = 0;
    for (const amb__msg *m = p->pheap->kept; m != NULL; m = kept_next(m))
        nranges += amb__msg_ranges(m, NULL, 0);
    amb__range *ranges = amb__malloc((nranges ? nranges : 1) * sizeof *ranges);
    if (ranges == NULL)
        return AMB_ENOMEM;
    size_t i = 0;
    for (const amb__msg *m = p->pheap->kept; m != NULL; m = kept_next(m))
        i += amb__msg_ranges(m, ranges + i, nranges - i);
    /* The blocks it empties, up to what the heap grows by before the next
     * collection ((GROWTH - 1) x live), stay: the next cycle maps no new
     * pages, and the peak stays GROWTH x live. */
    static const size_t spare[2] = {AMB__PHEAP_GROWTH_NUM - AMB__PHEAP_GROWTH_DEN,
                                    AMB__PHEAP_GROWTH_DEN};
    bool ruined;
    int rc = amb__collect_compact(heap, ranges, nranges, roots, n, spare, &ruined);
    amb__free(ranges);
    if (rc != 0 && ruined)
        die_enomem(p);
    if (rc != 0)
        return rc;
    amb__pheap_drop(p->task.sched, p);
    p->pheap->live_bytes = amb__heap_used(heap);
    return 0;
}

void amb__pheap_after(amb_proc *p)
{
    /* The message handled (and one a nested receive returned last) may be
     * part of the new state: kept, not freed. */
    amb__mailbox_release_borrowed(p);
    size_t used = (p->heap ? amb__heap_used(p->heap) : 0) + p->pheap->kept_bytes;
    if (used < grown(p->pheap->live_bytes))
        return;
    (void)collect(p, (amb_term *)p->state, p->handler->state_terms);
}

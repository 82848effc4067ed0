/*
 * pheap.c - term state: the process heap of a handler whose state begins
 * with terms (amb_handler.state_terms, process.h), kept alive by the
 * runtime and reclaimed by copying.
 *
 *   process heap:  [ state v1 | garbage | reply | state v2 | ... ]
 *   kept cells:    msg 7 -> msg 8 -> ...    (received since the last copy)
 *                          |
 *           after a callback, when heap + kept >= GROWTH x live:
 *                          v
 *   fresh heap:    [ what the state's terms reach, shared parts once ]
 *   the old blocks and the kept cells are freed whole
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
 *   - The trigger: heap bytes in use plus kept bytes >= AMB__PHEAP_GROWTH x
 *     max(live, AMB__PHEAP_MIN_LIVE), where live is the heap in use right
 *     after the last collection. Each collection copies at most the live
 *     data and happens after at least (GROWTH - 1) x live bytes of new
 *     allocation, so its cost is amortised O(1) per byte allocated, and the
 *     memory held stays within GROWTH x live plus one callback's allocation
 *     (GROWTH + 1 times, for the moment of the copy).
 *   - The heap struct stays where it is (amb__heap_move): amb_proc_heap's
 *     pointer is valid across collections; terms and heap marks are not.
 *   - A collection that cannot start (no memory for its table of ranges)
 *     changes nothing and is tried after the next callback. One that runs
 *     out of memory half way has overwritten the old heap with forwarding
 *     words, so the process ends at once with {error, 'AMB_ENOMEM'} (BEAM
 *     aborts the whole node when a collection finds no memory).
 */
#include "process/rt.h"

/* Collect when the heap has grown to GROWTH times the live size (at least
 * MIN_LIVE bytes, so that a tiny state is not copied after every message). */
#define AMB__PHEAP_GROWTH   2
#define AMB__PHEAP_MIN_LIVE ((size_t)8 << 10)

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

/* Copies what roots[0..n) reach to a fresh heap and frees the old one and
 * the kept cells. 0; AMB_ENOMEM before anything changed. Ends p when memory
 * runs out half way. */
static int collect(amb_proc *p, amb_term *roots, size_t n)
{
    amb_heap *heap = amb_proc_heap(p);
    if (heap == NULL)
        return AMB_ENOMEM;
    size_t nblocks = amb__heap_ranges(heap, NULL, 0), nranges = nblocks;
    for (const amb__msg *m = p->pheap->kept; m != NULL; m = kept_next(m))
        nranges += amb__msg_ranges(m, NULL, 0);
    amb__range *ranges = amb__malloc((nranges ? nranges : 1) * sizeof *ranges);
    if (ranges == NULL)
        return AMB_ENOMEM;
    amb__heap_ranges(heap, ranges, nblocks);
    size_t i = nblocks;
    for (const amb__msg *m = p->pheap->kept; m != NULL; m = kept_next(m))
        i += amb__msg_ranges(m, ranges + i, nranges - i);
    amb_heap fresh = {0};
    int rc = amb__collect_roots(&fresh, ranges, nranges, roots, n);
    amb__free(ranges);
    if (rc != 0) {
        amb__heap_release(&fresh);
        die_enomem(p);
    }
    amb__heap_move(heap, &fresh);
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
    size_t live = p->pheap->live_bytes > AMB__PHEAP_MIN_LIVE ? p->pheap->live_bytes
                                                             : AMB__PHEAP_MIN_LIVE;
    if (used / AMB__PHEAP_GROWTH < live)
        return;
    (void)collect(p, (amb_term *)p->state, p->handler->state_terms);
}

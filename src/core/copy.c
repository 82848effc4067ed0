/*
 * copy.c - deep copy of a term onto another heap (what a send does), and the
 * size such a copy takes.
 *
 * The copy walks with an explicit stack of tasks (source term, destination
 * slot): no C recursion, whatever the depth. A list pushes its tail task
 * before its head task, so the stack does not grow with list length.
 * Shared binaries are not copied: the copy's box takes a new reference.
 * Sub-terms shared inside the source are copied once per occurrence, as BEAM
 * does when it sends a message. A trie map is copied node by node (its
 * nodes are boxes whose sub-terms amb__box_children lists), so the copy has
 * the same canonical shape.
 */
#include "term_internal.h"

/* True for terms that occupy heap words (boxes and list cells). */
static inline bool is_compound(amb_term t)
{
    return amb_is_cons(t) || amb__is_boxed(t);
}

/* Words a box occupies (header included). */
static size_t box_words(amb_term t)
{
    const uint64_t *p = amb__box(t);
    uint64_t payload = AMB__HDR_PAYLOAD(p[0]);
    switch (amb__box_kind(t)) {
    case AMB__K_TUPLE:
        return 1 + (size_t)payload;
    case AMB__K_BIG:
        return 1 + (size_t)(payload >> 1);
    case AMB__K_FLOAT:
        return 2;
    case AMB__K_BINARY: {
        const amb__binary *b = (const amb__binary *)(const void *)p;
        return AMB__BINARY_WORDS + (b->refc ? 0 : (b->size + 7) / 8);
    }
    case AMB__K_MAP:
    case AMB__K_HCOLL:
        return 1 + 2 * (size_t)payload;
    case AMB__K_HAMT:
        return 2;
    case AMB__K_HNODE: {
        size_t first;
        return 1 + amb__box_children(p, &first);
    }
    case AMB__K_PID:
        return 5;
    case AMB__K_REF:
        return 3 + (size_t)payload;
    case AMB__K_PORT:
        return 4;
    case AMB__K_EXPORT:
        return 3;
    case AMB__K_CLOSURE:
        return 2 + (((const amb__closure *)(const void *)p)->len + 7) / 8;
    default:
        amb__panic("corrupt term header %llx", (unsigned long long)p[0]);
    }
}

/* The term's children live in box[*first .. *first + n). */
static size_t box_children(amb_term t, size_t *first)
{
    return amb__box_children(amb__box(t), first);
}

/* ---------------------------------------------------------------------------
 * Small terms (nearly every message: {tag, Pid, 42}, {Ref, Reply}) take a
 * fast path: C recursion bounded by SMALL_DEPTH, no explicit stack. Deeper
 * terms report "too deep" and take the general walk below.
 * ------------------------------------------------------------------------ */
#define SMALL_DEPTH 8
#define TOO_DEEP    SIZE_MAX

static size_t size_small(amb_term t, int depth)
{
    size_t words = 0;
    for (;;) {
        if (amb_is_cons(t)) {
            const amb_term *cell = amb__cons_cell(t);
            words += 2;
            if (is_compound(cell[0])) {
                if (depth >= SMALL_DEPTH)
                    return TOO_DEEP;
                size_t w = size_small(cell[0], depth + 1);
                if (w == TOO_DEEP)
                    return TOO_DEEP;
                words += w;
            }
            t = cell[1]; /* the tail iterates: long lists cost no depth */
            continue;
        }
        if (!amb__is_boxed(t))
            return words;
        words += box_words(t);
        size_t first, n = box_children(t, &first);
        for (size_t i = 0; i < n; i++) {
            amb_term c = amb__box(t)[first + i];
            if (!is_compound(c))
                continue;
            if (depth >= SMALL_DEPTH)
                return TOO_DEEP;
            size_t w = size_small(c, depth + 1);
            if (w == TOO_DEEP)
                return TOO_DEEP;
            words += w;
        }
        return words;
    }
}

/* Copies t onto dst; 0, AMB_ENOMEM, or 1 for "too deep" (what was copied so
 * far is left on dst unused, which an arena allows). */
static int copy_small(amb_heap *dst, amb_term t, int depth, amb_term *out)
{
    amb_term *slot = out;
    for (;;) {
        if (amb_is_cons(t)) {
            const amb_term *src = amb__cons_cell(t);
            amb_term *cell = (amb_term *)amb__heap_alloc(dst, 2);
            if (cell == NULL)
                return AMB_ENOMEM;
            cell[0] = src[0];
            if (is_compound(src[0])) {
                if (depth >= SMALL_DEPTH)
                    return 1;
                int rc = copy_small(dst, src[0], depth + 1, &cell[0]);
                if (rc != 0)
                    return rc;
            }
            cell[1] = src[1];
            *slot = amb__make_cons(cell);
            slot = &cell[1];
            t = src[1];
            continue;
        }
        if (!amb__is_boxed(t)) {
            *slot = t;
            return 0;
        }
        if (amb__box_kind(t) == AMB__K_BINARY) {
            const amb__binary *b = (const amb__binary *)(const void *)amb__box(t);
            *slot = amb__binary_make(dst, b->refc, b->data, b->size,
                                     (unsigned)AMB__HDR_PAYLOAD(b->header));
            return *slot == AMB_NONE ? AMB_ENOMEM : 0;
        }
        size_t words = box_words(t);
        uint64_t *p = amb__heap_alloc(dst, words);
        if (p == NULL)
            return AMB_ENOMEM;
        memcpy(p, amb__box(t), words * sizeof(uint64_t));
        *slot = amb__make_box(p);
        size_t first, n = box_children(t, &first);
        for (size_t i = 0; i < n; i++) {
            if (!is_compound(p[first + i]))
                continue;
            if (depth >= SMALL_DEPTH)
                return 1;
            int rc = copy_small(dst, p[first + i], depth + 1, (amb_term *)&p[first + i]);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
}

size_t amb_term_size(amb_term t)
{
    size_t small = is_compound(t) ? size_small(t, 0) : 0;
    if (small != TOO_DEEP)
        return small * sizeof(uint64_t);
    amb__wstack st;
    amb__wstack_init(&st);
    size_t words = 0;
    for (;;) {
        if (amb_is_cons(t)) {
            words += 2;
            const amb_term *cell = amb__cons_cell(t);
            if ((is_compound(cell[1]) && amb__wstack_push(&st, cell[1])) ||
                (is_compound(cell[0]) && amb__wstack_push(&st, cell[0])))
                amb__panic("out of memory sizing a term");
        } else if (amb__is_boxed(t)) {
            words += box_words(t);
            size_t first, n = box_children(t, &first);
            for (size_t i = 0; i < n; i++) {
                amb_term c = amb__box(t)[first + i];
                if (is_compound(c) && amb__wstack_push(&st, c))
                    amb__panic("out of memory sizing a term");
            }
        }
        if (amb__wstack_empty(&st))
            break;
        t = amb__wstack_pop(&st);
    }
    amb__wstack_free(&st);
    return words * sizeof(uint64_t);
}

int amb_term_copy(amb_heap *dst, amb_term t, amb_term *out)
{
    if (dst == NULL || out == NULL || t == AMB_NONE)
        return AMB__MISUSE();
    if (!amb_is_cons(t) && !amb__is_boxed(t)) {
        *out = t;
        return 0;
    }
    amb_term fast;
    int frc = copy_small(dst, t, 0, &fast);
    if (frc <= 0) {
        if (frc == 0)
            *out = fast;
        return frc;
    }
    amb__wstack st;
    amb__wstack_init(&st);
    amb_term result = AMB_NONE;
    amb_term *slot = &result;
    int rc = 0;
    for (;;) {
        if (amb_is_cons(t)) {
            amb_term *cell = (amb_term *)amb__heap_alloc(dst, 2);
            if (cell == NULL) {
                rc = AMB_ENOMEM;
                break;
            }
            const amb_term *src = amb__cons_cell(t);
            cell[0] = src[0];
            cell[1] = src[1];
            *slot = amb__make_cons(cell);
            /* Immediates were copied with the cell; only compound parts
             * become tasks (the tail first, so the stack stays shallow). */
            if ((is_compound(src[1]) &&
                 (amb__wstack_push(&st, src[1]) ||
                  amb__wstack_push(&st, (uint64_t)(uintptr_t)&cell[1]))) ||
                (is_compound(src[0]) &&
                 (amb__wstack_push(&st, src[0]) ||
                  amb__wstack_push(&st, (uint64_t)(uintptr_t)&cell[0])))) {
                rc = AMB_ENOMEM;
                break;
            }
        } else if (amb__is_boxed(t)) {
            if (amb__box_kind(t) == AMB__K_BINARY) {
                const amb__binary *b = (const amb__binary *)(const void *)amb__box(t);
                *slot = amb__binary_make(dst, b->refc, b->data, b->size,
                                         (unsigned)AMB__HDR_PAYLOAD(b->header));
                if (*slot == AMB_NONE) {
                    rc = AMB_ENOMEM;
                    break;
                }
            } else {
                size_t words = box_words(t);
                uint64_t *p = amb__heap_alloc(dst, words);
                if (p == NULL) {
                    rc = AMB_ENOMEM;
                    break;
                }
                memcpy(p, amb__box(t), words * sizeof(uint64_t));
                *slot = amb__make_box(p);
                size_t first, n = box_children(t, &first);
                for (size_t i = n; i-- > 0;) {
                    if (!is_compound(p[first + i]))
                        continue;
                    if (amb__wstack_push(&st, p[first + i]) ||
                        amb__wstack_push(&st, (uint64_t)(uintptr_t)&p[first + i])) {
                        rc = AMB_ENOMEM;
                        break;
                    }
                }
                if (rc != 0)
                    break;
            }
        } else {
            *slot = t;
        }
        if (amb__wstack_empty(&st))
            break;
        slot = (amb_term *)(uintptr_t)amb__wstack_pop(&st);
        t = amb__wstack_pop(&st);
    }
    amb__wstack_free(&st);
    if (rc == 0)
        *out = result;
    return rc;
}

/*
 * wstack.c - a growable stack of words: the explicit stacks that replace C
 * recursion over term depth in every walker (compare, hash, copy, print,
 * parse).
 *
 * Invariant: the first AMB_COUNTOF(inline_items) words live inside the
 * struct, so a walker over a shallow term allocates nothing; deeper terms
 * move the stack to the allocator, doubling, and amb__wstack_free returns it.
 */
#include "term_internal.h"

void amb__wstack_init(amb__wstack *s)
{
    s->items = s->inline_items;
    s->len = 0;
    s->cap = AMB_COUNTOF(s->inline_items);
}

void amb__wstack_free(amb__wstack *s)
{
    if (s->items != s->inline_items)
        amb__free(s->items);
    amb__wstack_init(s);
}

int amb__wstack_push(amb__wstack *s, uint64_t v)
{
    if (amb__unlikely(s->len == s->cap)) {
        size_t cap = s->cap * 2;
        uint64_t *p;
        if (s->items == s->inline_items) {
            p = amb__malloc(cap * sizeof *p);
            if (p != NULL)
                memcpy(p, s->items, s->len * sizeof *p);
        } else {
            p = amb__realloc(s->items, cap * sizeof *p);
        }
        if (p == NULL)
            return AMB_ENOMEM;
        s->items = p;
        s->cap = cap;
    }
    s->items[s->len++] = v;
    return 0;
}

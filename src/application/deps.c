/*
 * deps.c - the order in which an application and its dependencies start.
 *
 * A depth-first search from the root with the usual three colours: a node
 * is "open" while its dependencies are being visited and "done" once they
 * all are, and a node is appended to the order when it is done, so every
 * dependency precedes its dependents and each application appears once
 * (a diamond A <- B, A <- C, B,C <- D starts A once). Meeting an open node
 * again is a cycle: the open nodes from that one to the top of the search
 * stack, plus that node again, name it ([A, B, A]).
 *
 * The search is iterative (an explicit stack of frames), so a long chain of
 * dependencies cannot overflow a process's small stack. Nodes are kept in
 * a flat array searched linearly: applications number in the tens, and a
 * start is rare. Pure: no process, no terms, only the lookup callback.
 */
#include <string.h>

#include "application/app.h"

enum { OPEN = 1, DONE = 2 };

typedef struct node {
    const char *name;
    const char *const *deps; /* NULL-ended, or NULL */
    int colour;
} node;

typedef struct frame {
    size_t node;     /* index into nodes */
    size_t next_dep; /* index into nodes[node].deps */
} frame;

typedef struct search {
    node *nodes;
    size_t nnodes, nodes_cap;
    frame *stack; /* never deeper than nnodes: a node is pushed once */
    size_t depth, stack_cap;
} search;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *q = amb_realloc(*p, n * elem);
    if (q == NULL)
        return AMB_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static size_t find(const search *s, const char *name)
{
    for (size_t i = 0; i < s->nnodes; i++)
        if (strcmp(s->nodes[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

/* Adds name as an open node and pushes its frame. */
static int open_node(search *s, const amb__deps_src *src, const char *name,
                     amb__deps_result *out)
{
    const char *const *deps = NULL;
    int rc = src->deps_of(src->ctx, name, &deps);
    if (rc == AMB_ENOTFOUND) {
        out->missing = name;
        return rc;
    }
    if (rc != 0)
        return rc;
    if (grow((void **)&s->nodes, &s->nodes_cap, s->nnodes + 1, sizeof *s->nodes) != 0 ||
        grow((void **)&s->stack, &s->stack_cap, s->depth + 1, sizeof *s->stack) != 0)
        return AMB_ENOMEM;
    s->nodes[s->nnodes] = (node){name, deps, OPEN};
    s->stack[s->depth++] = (frame){s->nnodes, 0};
    s->nnodes++;
    return 0;
}

/* The cycle through nodes[at]: the stack from its frame to the top, then
 * nodes[at] again. */
static int name_cycle(const search *s, size_t at, amb__deps_result *out)
{
    size_t from = 0;
    while (s->stack[from].node != at)
        from++;
    size_t n = s->depth - from + 1;
    out->cycle = amb_malloc(n * sizeof *out->cycle);
    if (out->cycle == NULL)
        return AMB_ENOMEM;
    for (size_t i = from; i < s->depth; i++)
        out->cycle[i - from] = s->nodes[s->stack[i].node].name;
    out->cycle[n - 1] = s->nodes[at].name;
    out->ncycle = n;
    return AMB_EINIT;
}

static int run(search *s, const amb__deps_src *src, const char *root,
               amb__deps_result *out)
{
    int rc = open_node(s, src, root, out);
    if (rc != 0)
        return rc;
    while (s->depth > 0) {
        frame *f = &s->stack[s->depth - 1];
        node *n = &s->nodes[f->node];
        const char *dep = n->deps != NULL ? n->deps[f->next_dep] : NULL;
        if (dep == NULL) {
            n->colour = DONE;
            out->order[out->norder++] = n->name;
            s->depth--;
            continue;
        }
        f->next_dep++;
        size_t i = find(s, dep);
        if (i == SIZE_MAX) {
            rc = open_node(s, src, dep, out);
            if (rc != 0)
                return rc;
            /* open_node may have moved the arrays: f and n are stale now. */
            size_t need = s->nnodes;
            void *o = amb_realloc(out->order, need * sizeof *out->order);
            if (o == NULL)
                return AMB_ENOMEM;
            out->order = o;
        } else if (s->nodes[i].colour == OPEN) {
            return name_cycle(s, i, out);
        }
    }
    return 0;
}

int amb__deps_order(const amb__deps_src *src, const char *root, amb__deps_result *out)
{
    if (src == NULL || src->deps_of == NULL || root == NULL || out == NULL)
        return AMB_EBADARG;
    *out = (amb__deps_result){0};
    out->order = amb_malloc(sizeof *out->order);
    if (out->order == NULL)
        return AMB_ENOMEM;
    search s = {0};
    int rc = run(&s, src, root, out);
    amb_free(s.nodes);
    amb_free(s.stack);
    if (rc != 0)
        out->norder = 0;
    return rc;
}

void amb__deps_result_free(amb__deps_result *r)
{
    if (r == NULL)
        return;
    amb_free(r->order);
    amb_free(r->cycle);
    *r = (amb__deps_result){0};
}

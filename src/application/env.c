/*
 * env.c - one application's environment, alone on a heap of its own.
 *
 * Invariant: env->list is [] (and env->heap may be NULL) or an environment
 * built on env->heap, and nothing else lives on that heap. A change builds
 * the merged list on a fresh heap and frees the old heap, so an
 * application whose environment is set a million times holds what one copy
 * takes (heaps are arenas: editing in place would leave every old value
 * behind). A change that fails leaves the environment as it was.
 */
#include <string.h>

#include "application/app.h"

/* Makes base merged with over the new contents of env. */
static int replace(amb__env *env, amb_term base, amb_term over)
{
    amb_heap *h = NULL;
    int rc = amb_heap_new(&h);
    if (rc != 0)
        return rc;
    amb_term list = AMB_NIL;
    rc = amb__config_env_merge(h, base, over, &list);
    if (rc != 0) {
        amb_heap_free(h);
        return rc;
    }
    amb_heap_free(env->heap);
    env->heap = h;
    env->list = list;
    return 0;
}

int amb__env_init(amb__env *env, const char *text, amb_term over)
{
    *env = (amb__env){NULL, AMB_NIL};
    amb_heap *scratch = NULL;
    int rc = amb_heap_new(&scratch);
    if (rc != 0)
        return rc;
    amb_term base = AMB_NIL;
    if (text != NULL) {
        rc = amb_parse(scratch, text, strlen(text), &base, NULL);
        /* A failed parse is bad text (ESYNTAX, EDEPTH, ESYSLIMIT as
         * amb_parse says) unless memory ran out. */
        if (rc == 0 && !amb__config_is_env(base))
            rc = AMB_EBADARG;
    }
    if (rc == 0)
        rc = replace(env, base, over != AMB_NONE ? over : AMB_NIL);
    amb_heap_free(scratch);
    return rc;
}

int amb__env_apply(amb__env *env, amb_term over)
{
    return replace(env, env->list, over);
}

int amb__env_get(const amb__env *env, amb_term key, amb_term *value)
{
    return amb__config_lookup(env->list, key, value);
}

void amb__env_free(amb__env *env)
{
    amb_heap_free(env->heap);
    *env = (amb__env){NULL, AMB_NIL};
}

/*
 * config.c - environments and sys.config terms: reading, checking and
 * merging them. Pure term functions (no process): an environment is a
 * proper list of {Atom, Term}; a config is [{App, Env}] with App an atom.
 *
 * Merging never edits a term (terms are immutable): it builds a new list on
 * the heap it is given, which is how env.c keeps each environment alone on
 * a heap it can replace.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "application/app.h"

#define MAX_FILE ((size_t)64 << 20)

static bool is_pair(amb_term t, bool (*second_ok)(amb_term))
{
    return amb_is_tuple(t) && amb_tuple_arity(t) == 2 &&
           amb_is_atom(amb_tuple_elem(t, 0)) &&
           (second_ok == NULL || second_ok(amb_tuple_elem(t, 1)));
}

/* A proper list whose every element is a pair as above. */
static bool is_pair_list(amb_term t, bool (*second_ok)(amb_term))
{
    for (; amb_is_cons(t); t = amb_list_tail(t))
        if (!is_pair(amb_list_head(t), second_ok))
            return false;
    return amb_is_nil(t);
}

bool amb__config_is_env(amb_term t)
{
    return is_pair_list(t, NULL);
}

bool amb__config_is_config(amb_term t)
{
    return is_pair_list(t, amb__config_is_env);
}

int amb__config_lookup(amb_term env, amb_term key, amb_term *value)
{
    for (; amb_is_cons(env); env = amb_list_tail(env)) {
        amb_term kv = amb_list_head(env);
        if (amb_tuple_elem(kv, 0) == key) {
            *value = amb_tuple_elem(kv, 1);
            return 0;
        }
    }
    return AMB_ENOTFOUND;
}

/* The list of elements of t, in order, into a new array (free with
 * amb_free); *n gets the count. */
static int to_array(amb_term t, amb_term **out, size_t *n)
{
    size_t len = 0;
    int rc = amb_list_length(t, &len);
    if (rc != 0)
        return rc;
    amb_term *a = amb_malloc((len ? len : 1) * sizeof *a);
    if (a == NULL)
        return AMB_ENOMEM;
    for (size_t i = 0; i < len; i++, t = amb_list_tail(t))
        a[i] = amb_list_head(t);
    *out = a;
    *n = len;
    return 0;
}

/* The list of {Key, Value} pairs: base's keys in order, a key of over
 * replacing base's value (with merge_value, when given, combining the two
 * values), keys only in over appended in over's order. The elements of
 * the result are copied onto heap. */
static int merge_pairs(amb_heap *heap, amb_term base, amb_term over,
                       int (*merge_value)(amb_heap *, amb_term, amb_term, amb_term *),
                       amb_term *out)
{
    amb_term *b = NULL, *o = NULL;
    size_t nb = 0, no = 0;
    int rc = to_array(base, &b, &nb);
    if (rc == 0)
        rc = to_array(over, &o, &no);
    amb_term *res = NULL;
    if (rc == 0 && (res = amb_malloc((nb + no + 1) * sizeof *res)) == NULL)
        rc = AMB_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < nb; i++) {
        amb_term key = amb_tuple_elem(b[i], 0), v = amb_tuple_elem(b[i], 1);
        bool on_heap = false; /* v was built on heap by merge_value */
        for (size_t j = 0; rc == 0 && j < no; j++) {
            if (o[j] != AMB_NONE && amb_tuple_elem(o[j], 0) == key) {
                amb_term ov = amb_tuple_elem(o[j], 1);
                if (merge_value != NULL) {
                    rc = merge_value(heap, v, ov, &ov);
                    on_heap = true;
                }
                v = ov;
                o[j] = AMB_NONE; /* used: not appended below */
            }
        }
        if (rc == 0 && !on_heap)
            rc = amb_term_copy(heap, v, &v);
        if (rc == 0 && (res[n++] = AMB_TUPLE(heap, key, v)) == AMB_NONE)
            rc = AMB_ENOMEM;
    }
    for (size_t j = 0; rc == 0 && j < no; j++) {
        if (o[j] == AMB_NONE)
            continue;
        /* A key given twice in over: its last value wins (as above). */
        bool later = false;
        for (size_t k = j + 1; k < no && !later; k++)
            later =
                o[k] != AMB_NONE && amb_tuple_elem(o[k], 0) == amb_tuple_elem(o[j], 0);
        if (!later)
            rc = amb_term_copy(heap, o[j], &res[n++]);
    }
    if (rc == 0) {
        amb_term list = amb_list(heap, n, res);
        if (list == AMB_NONE)
            rc = AMB_ENOMEM;
        else
            *out = list;
    }
    amb_free(b);
    amb_free(o);
    amb_free(res);
    return rc;
}

int amb__config_env_merge(amb_heap *heap, amb_term base, amb_term over, amb_term *out)
{
    return merge_pairs(heap, base, over, NULL, out);
}

int amb__config_merge(amb_heap *heap, amb_term base, amb_term over, amb_term *out)
{
    return merge_pairs(heap, base, over, amb__config_env_merge, out);
}

/* amb_parse's errors pass through; a term of the wrong shape is AMB_ETYPE. */
int amb__config_parse(amb_heap *heap, const char *text, size_t len, amb_term *out)
{
    amb_term t = AMB_NONE;
    int rc = amb_parse(heap, text, len, &t, NULL);
    if (rc != 0)
        return rc;
    if (!amb__config_is_config(t))
        return AMB_ETYPE;
    *out = t;
    return 0;
}

int amb__config_read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno == ENOMEM ? AMB_ENOMEM : AMB_EIO;
    size_t cap = 4096, n = 0;
    char *buf = amb_malloc(cap);
    int rc = buf == NULL ? AMB_ENOMEM : 0;
    while (rc == 0) {
        if (n + 1 == cap) {
            if (cap >= MAX_FILE) {
                rc = AMB_ESYSLIMIT;
                break;
            }
            char *nb = amb_realloc(buf, cap * 2);
            if (nb == NULL) {
                rc = AMB_ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = AMB_EIO;
            break;
        }
    }
    fclose(f);
    if (rc != 0) {
        amb_free(buf);
        return rc;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/*
 * term.c - building terms and reading them back: the constructors and
 * accessors of term.h for every type except the ones with files of their own
 * (big integers: bignum.c, binaries: binary.c, maps: map.c, copy: copy.c,
 * order and hash: compare.c/hash.c).
 *
 * Invariants kept here (layouts in term_internal.h):
 *   - Integers are canonical: a value that fits a small integer is never big.
 *   - Floats are finite.
 *   - Builders return AMB_NONE on failure and accept AMB_NONE inputs,
 *     returning AMB_NONE without building anything.
 */
#include <math.h>

#include "term_internal.h"

amb_type amb_type_of(amb_term t)
{
    switch (t & 7u) {
    case 1:
    case 3:
    case 5:
    case 7:
        return AMB_T_INTEGER;
    case 2:
        return AMB_T_LIST;
    case 4:
        return AMB_T_ATOM;
    case 6:
        if (t == AMB_NIL)
            return AMB_T_NIL;
        if (amb_is_local_pid(t))
            return AMB_T_PID;
        return amb_is_local_port(t) ? AMB_T_PORT : AMB_T_NONE;
    default:
        break;
    }
    if (t == AMB_NONE)
        return AMB_T_NONE;
    switch (amb__box_kind(t)) {
    case AMB__K_TUPLE:
        return AMB_T_TUPLE;
    case AMB__K_BIG:
        return AMB_T_INTEGER;
    case AMB__K_FLOAT:
        return AMB_T_FLOAT;
    case AMB__K_BINARY:
        return AMB_T_BITSTRING;
    case AMB__K_MAP:
    case AMB__K_HAMT:
        return AMB_T_MAP;
    case AMB__K_PID:
        return AMB_T_PID;
    case AMB__K_REF:
        return AMB_T_REF;
    case AMB__K_PORT:
        return AMB_T_PORT;
    case AMB__K_EXPORT:
    case AMB__K_CLOSURE:
        return AMB_T_FUN;
    default:
        return AMB_T_NONE;
    }
}

const char *amb_type_name(amb_type type)
{
    static const char *const names[] = {
        [AMB_T_NONE] = "none",
        [AMB_T_INTEGER] = "integer",
        [AMB_T_FLOAT] = "float",
        [AMB_T_ATOM] = "atom",
        [AMB_T_REF] = "reference",
        [AMB_T_FUN] = "fun",
        [AMB_T_PORT] = "port",
        [AMB_T_PID] = "pid",
        [AMB_T_TUPLE] = "tuple",
        [AMB_T_MAP] = "map",
        [AMB_T_NIL] = "nil",
        [AMB_T_LIST] = "list",
        [AMB_T_BITSTRING] = "bitstring",
    };
    if ((unsigned)type >= AMB_COUNTOF(names))
        return "none";
    return names[type];
}

/* ---------------------------------------------------------------------------
 * Integers and floats
 * ------------------------------------------------------------------------ */

amb_term amb_int(amb_heap *heap, int64_t v)
{
    if (v >= AMB_SMALL_MIN && v <= AMB_SMALL_MAX)
        return AMB_SMALL(v);
    if (heap == NULL)
        return AMB_NONE;
    /* The magnitude of INT64_MIN does not fit int64_t: negate as unsigned. */
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    return amb__bignum_make(heap, v < 0, &mag, 1);
}

amb_term amb_uint(amb_heap *heap, uint64_t v)
{
    if (v <= (uint64_t)AMB_SMALL_MAX)
        return AMB_SMALL((int64_t)v);
    if (heap == NULL)
        return AMB_NONE;
    return amb__bignum_make(heap, false, &v, 1);
}

int amb_int_get(amb_term t, int64_t *out)
{
    if (out == NULL)
        return AMB__MISUSE();
    if (amb_is_small(t)) {
        *out = amb_small_value(t);
        return 0;
    }
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_BIG)
        return AMB_ETYPE;
    if (amb__big_ndigits(t) != 1)
        return AMB_ERANGE;
    uint64_t mag = amb__big_digits(t)[0];
    if (amb__big_negative(t)) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return AMB_ERANGE;
        *out = (int64_t)(0 - mag);
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return AMB_ERANGE;
        *out = (int64_t)mag;
    }
    return 0;
}

int amb_uint_get(amb_term t, uint64_t *out)
{
    if (out == NULL)
        return AMB__MISUSE();
    if (amb_is_small(t)) {
        int64_t v = amb_small_value(t);
        if (v < 0)
            return AMB_ERANGE;
        *out = (uint64_t)v;
        return 0;
    }
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_BIG)
        return AMB_ETYPE;
    if (amb__big_negative(t) || amb__big_ndigits(t) != 1)
        return AMB_ERANGE;
    *out = amb__big_digits(t)[0];
    return 0;
}

int amb_int_to_bytes(amb_term t, uint64_t *scratch, bool *negative, const uint8_t **mag,
                     size_t *len)
{
    if (negative == NULL || mag == NULL || len == NULL || scratch == NULL)
        return AMB__MISUSE();
    const uint8_t *bytes;
    size_t n;
    bool neg;
    if (amb_is_small(t)) {
        int64_t v = amb_small_value(t);
        neg = v < 0;
        uint64_t m = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        for (size_t i = 0; i < 8; i++)
            ((uint8_t *)scratch)[i] = (uint8_t)(m >> (8 * i));
        bytes = (const uint8_t *)scratch;
        n = 8;
    } else if (amb__is_boxed(t) && amb__box_kind(t) == AMB__K_BIG) {
        neg = amb__big_negative(t);
        n = amb__big_ndigits(t) * 8;
        /* Limbs are stored in host order; ETF wants little-endian bytes. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "big-endian hosts need a byte-order conversion here"
#endif
        bytes = (const uint8_t *)amb__big_digits(t);
    } else {
        return AMB_ETYPE;
    }
    while (n > 0 && bytes[n - 1] == 0)
        n--;
    *negative = neg;
    *mag = bytes;
    *len = n;
    return 0;
}

amb_term amb_float(amb_heap *heap, double v)
{
    if (heap == NULL || !isfinite(v))
        return AMB_NONE;
    uint64_t *p = amb__heap_alloc(heap, 2);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_FLOAT, 0);
    memcpy(&p[1], &v, sizeof v);
    return amb__make_box(p);
}

int amb_float_get(amb_term t, double *out)
{
    if (out == NULL)
        return AMB__MISUSE();
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_FLOAT)
        return AMB_ETYPE;
    *out = amb__float_value(t);
    return 0;
}

int amb_number_get(amb_term t, double *out)
{
    if (out == NULL)
        return AMB__MISUSE();
    if (amb_is_small(t)) {
        *out = (double)amb_small_value(t);
        return 0;
    }
    if (amb__is_boxed(t) && amb__box_kind(t) == AMB__K_FLOAT) {
        *out = amb__float_value(t);
        return 0;
    }
    if (amb__is_boxed(t) && amb__box_kind(t) == AMB__K_BIG) {
        double d = amb__bignum_to_double(t);
        if (!isfinite(d))
            return AMB_ERANGE;
        *out = d;
        return 0;
    }
    return AMB_ETYPE;
}

/* ---------------------------------------------------------------------------
 * Tuples
 * ------------------------------------------------------------------------ */

amb_term amb_tuple(amb_heap *heap, size_t arity, const amb_term *elems)
{
    if (heap == NULL || arity > AMB_TUPLE_MAX_ARITY || (arity > 0 && elems == NULL))
        return AMB_NONE;
    for (size_t i = 0; i < arity; i++)
        if (elems[i] == AMB_NONE)
            return AMB_NONE;
    uint64_t *p = amb__heap_alloc(heap, 1 + arity);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_TUPLE, arity);
    if (arity > 0)
        memcpy(&p[1], elems, arity * sizeof(amb_term));
    return amb__make_box(p);
}

size_t amb_tuple_arity(amb_term t)
{
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_TUPLE)
        return 0;
    return (size_t)AMB__HDR_PAYLOAD(amb__box(t)[0]);
}

amb_term amb_tuple_elem(amb_term t, size_t i)
{
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_TUPLE)
        return AMB_NONE;
    if (i >= AMB__HDR_PAYLOAD(amb__box(t)[0]))
        return AMB_NONE;
    return amb__box(t)[1 + i];
}

bool amb_is_record(amb_term t, amb_term tag, size_t arity)
{
    return arity > 0 && amb_tuple_arity(t) == arity && amb__box(t)[1] == tag;
}

/* ---------------------------------------------------------------------------
 * Lists and strings
 * ------------------------------------------------------------------------ */

amb_term amb_cons(amb_heap *heap, amb_term head, amb_term tail)
{
    if (heap == NULL || head == AMB_NONE || tail == AMB_NONE)
        return AMB_NONE;
    amb_term *cell = (amb_term *)amb__heap_alloc(heap, 2);
    if (cell == NULL)
        return AMB_NONE;
    cell[0] = head;
    cell[1] = tail;
    return amb__make_cons(cell);
}

amb_term amb_list_head(amb_term t)
{
    return amb_is_cons(t) ? amb__cons_cell(t)[0] : AMB_NONE;
}

amb_term amb_list_tail(amb_term t)
{
    return amb_is_cons(t) ? amb__cons_cell(t)[1] : AMB_NONE;
}

amb_term amb_list(amb_heap *heap, size_t n, const amb_term *elems)
{
    if (heap == NULL || (n > 0 && elems == NULL) || n > SIZE_MAX / 2)
        return AMB_NONE;
    if (n == 0)
        return AMB_NIL;
    for (size_t i = 0; i < n; i++)
        if (elems[i] == AMB_NONE)
            return AMB_NONE;
    /* One allocation for all cells, laid out in order. */
    amb_term *cells = (amb_term *)amb__heap_alloc(heap, 2 * n);
    if (cells == NULL)
        return AMB_NONE;
    for (size_t i = 0; i < n; i++) {
        cells[2 * i] = elems[i];
        cells[2 * i + 1] = i + 1 < n ? amb__make_cons(&cells[2 * (i + 1)]) : AMB_NIL;
    }
    return amb__make_cons(cells);
}

int amb_list_length(amb_term t, size_t *len)
{
    if (len == NULL)
        return AMB__MISUSE();
    size_t n = 0;
    while (amb_is_cons(t)) {
        n++;
        t = amb__cons_cell(t)[1];
    }
    if (t != AMB_NIL)
        return AMB_ETYPE;
    *len = n;
    return 0;
}

amb_term amb_string_n(amb_heap *heap, const char *utf8, size_t len)
{
    size_t chars;
    if (heap == NULL || (utf8 == NULL && len > 0) ||
        !amb__utf8_valid((const uint8_t *)utf8, len, &chars))
        return AMB_NONE;
    if (chars == 0)
        return AMB_NIL;
    amb_term *cells = (amb_term *)amb__heap_alloc(heap, 2 * chars);
    if (cells == NULL)
        return AMB_NONE;
    const uint8_t *s = (const uint8_t *)utf8;
    for (size_t i = 0, pos = 0; i < chars; i++) {
        uint32_t cp = s[pos];
        pos += cp < 0x80 ? 1 : amb__utf8_decode(s + pos, len - pos, &cp);
        cells[2 * i] = AMB_SMALL(cp);
        cells[2 * i + 1] = i + 1 < chars ? amb__make_cons(&cells[2 * (i + 1)]) : AMB_NIL;
    }
    return amb__make_cons(cells);
}

amb_term amb_string(amb_heap *heap, const char *utf8)
{
    if (utf8 == NULL)
        return AMB_NONE;
    return amb_string_n(heap, utf8, strlen(utf8));
}

int amb_string_get(amb_term t, char *buf, size_t cap, size_t *len)
{
    if (len == NULL || (buf == NULL && cap > 0))
        return AMB__MISUSE();
    size_t n = 0;
    amb_term l = t;
    while (amb_is_cons(l)) {
        amb_term c = amb__cons_cell(l)[0];
        if (!amb_is_small(c))
            return AMB_ETYPE;
        int64_t cp = amb_small_value(c);
        if (cp < 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return AMB_ETYPE;
        uint8_t enc[4];
        size_t k = amb__utf8_encode((uint32_t)cp, enc);
        if (n + k < cap)
            memcpy(buf + n, enc, k);
        n += k;
        l = amb__cons_cell(l)[1];
    }
    if (l != AMB_NIL)
        return AMB_ETYPE;
    *len = n;
    if (cap > 0)
        buf[n < cap ? n : cap - 1] = '\0';
    return n < cap ? 0 : AMB_EBUFSIZE;
}

/* ---------------------------------------------------------------------------
 * Pids, references, ports, funs
 * ------------------------------------------------------------------------ */

amb_term amb_pid_term(amb_heap *heap, amb_term node, uint32_t id, uint32_t serial,
                      uint32_t creation)
{
    if (!amb_is_atom(node))
        return AMB_NONE;
    /* A local node's pid is canonically the immediate word. */
    if (id <= AMB__LPID_INDEX_MAX && serial <= AMB__LPID_SERIAL_MAX) {
        unsigned slot = amb__node_find(node, creation);
        if (slot != 0)
            return amb__lpid_make(slot, id, serial);
    }
    if (heap == NULL)
        return AMB_NONE;
    uint64_t *p = amb__heap_alloc(heap, 5);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_PID, 0);
    p[1] = node;
    p[2] = id;
    p[3] = serial;
    p[4] = creation;
    return amb__make_box(p);
}

int amb_pid_get(amb_term t, amb_term *node, uint32_t *id, uint32_t *serial,
                uint32_t *creation)
{
    if (amb_is_local_pid(t)) {
        amb_term name;
        uint32_t cr;
        if (!amb__node_get(amb__lpid_slot(t), &name, &cr))
            return AMB_ETYPE;
        if (node != NULL)
            *node = name;
        if (id != NULL)
            *id = amb__lpid_index(t);
        if (serial != NULL)
            *serial = amb__lpid_serial(t);
        if (creation != NULL)
            *creation = cr;
        return 0;
    }
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_PID)
        return AMB_ETYPE;
    const uint64_t *p = amb__box(t);
    if (node != NULL)
        *node = p[1];
    if (id != NULL)
        *id = (uint32_t)p[2];
    if (serial != NULL)
        *serial = (uint32_t)p[3];
    if (creation != NULL)
        *creation = (uint32_t)p[4];
    return 0;
}

amb_term amb_ref_term(amb_heap *heap, amb_term node, uint32_t creation,
                      const uint32_t *words, size_t nwords)
{
    if (heap == NULL || !amb_is_atom(node) || words == NULL || nwords == 0 ||
        nwords > AMB_REF_MAX_WORDS)
        return AMB_NONE;
    uint64_t *p = amb__heap_alloc(heap, 3 + nwords);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_REF, nwords);
    p[1] = node;
    p[2] = creation;
    for (size_t i = 0; i < nwords; i++)
        p[3 + i] = words[i];
    return amb__make_box(p);
}

int amb_ref_get(amb_term t, uint32_t *words, size_t cap, amb_term *node,
                uint32_t *creation, size_t *nwords)
{
    if (words == NULL && cap > 0)
        return AMB__MISUSE();
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_REF)
        return AMB_ETYPE;
    const uint64_t *p = amb__box(t);
    size_t n = (size_t)AMB__HDR_PAYLOAD(p[0]);
    if (nwords != NULL)
        *nwords = n;
    if (cap < n)
        return AMB_EBUFSIZE;
    for (size_t i = 0; i < n; i++)
        words[i] = (uint32_t)p[3 + i];
    if (node != NULL)
        *node = p[1];
    if (creation != NULL)
        *creation = (uint32_t)p[2];
    return 0;
}

amb_term amb_port_term(amb_heap *heap, amb_term node, uint64_t id, uint32_t creation)
{
    if (!amb_is_atom(node))
        return AMB_NONE;
    /* A local node's port is canonically the immediate word. */
    if (id <= AMB__LPORT_ID_MAX) {
        unsigned slot = amb__node_find(node, creation);
        if (slot != 0)
            return amb__lport_make(slot, id);
    }
    if (heap == NULL)
        return AMB_NONE;
    uint64_t *p = amb__heap_alloc(heap, 4);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_PORT, 0);
    p[1] = node;
    p[2] = id;
    p[3] = creation;
    return amb__make_box(p);
}

int amb_port_get(amb_term t, amb_term *node, uint64_t *id, uint32_t *creation)
{
    if (amb_is_local_port(t)) {
        amb_term name;
        uint32_t cr;
        if (!amb__node_get(amb__lport_slot(t), &name, &cr))
            return AMB_ETYPE;
        if (node != NULL)
            *node = name;
        if (id != NULL)
            *id = amb__lport_id(t);
        if (creation != NULL)
            *creation = cr;
        return 0;
    }
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_PORT)
        return AMB_ETYPE;
    const uint64_t *p = amb__box(t);
    if (node != NULL)
        *node = p[1];
    if (id != NULL)
        *id = p[2];
    if (creation != NULL)
        *creation = (uint32_t)p[3];
    return 0;
}

amb_term amb_export_term(amb_heap *heap, amb_term module, amb_term function,
                         uint8_t arity)
{
    if (heap == NULL || !amb_is_atom(module) || !amb_is_atom(function))
        return AMB_NONE;
    uint64_t *p = amb__heap_alloc(heap, 3);
    if (p == NULL)
        return AMB_NONE;
    p[0] = AMB__HDR(AMB__K_EXPORT, arity);
    p[1] = module;
    p[2] = function;
    return amb__make_box(p);
}

int amb_export_get(amb_term t, amb_term *module, amb_term *function, uint8_t *arity)
{
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_EXPORT)
        return AMB_ETYPE;
    const uint64_t *p = amb__box(t);
    if (module != NULL)
        *module = p[1];
    if (function != NULL)
        *function = p[2];
    if (arity != NULL)
        *arity = (uint8_t)AMB__HDR_PAYLOAD(p[0]);
    return 0;
}

amb_term amb_closure_term(amb_heap *heap, const uint8_t *ext, size_t len)
{
    if (heap == NULL || ext == NULL || len == 0 || len > ((size_t)1 << 32))
        return AMB_NONE;
    uint64_t *p = amb__heap_alloc(heap, 2 + (len + 7) / 8);
    if (p == NULL)
        return AMB_NONE;
    amb__closure *c = (amb__closure *)(void *)p;
    c->header = AMB__HDR(AMB__K_CLOSURE, 0);
    c->len = len;
    memcpy(c->ext, ext, len);
    return amb__make_box(p);
}

int amb_closure_get(amb_term t, const uint8_t **ext, size_t *len)
{
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_CLOSURE)
        return AMB_ETYPE;
    const amb__closure *c = (const amb__closure *)(const void *)amb__box(t);
    if (ext != NULL)
        *ext = c->ext;
    if (len != NULL)
        *len = c->len;
    return 0;
}

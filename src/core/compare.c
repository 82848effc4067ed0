/*
 * compare.c - Erlang's term order (amb_compare), exact order (map keys) and
 * exact equality (=:=).
 *
 *   number < atom < reference < fun < port < pid < tuple < map < [] < list
 *   < bitstring
 *
 * Within a type: numbers by value (an integer and a float compare by exact
 * mathematical value, which is what Erlang's conversion rules amount to);
 * atoms by their text; tuples by arity, then elements; maps by size, then
 * keys in order, then values in key order; lists element by element;
 * bitstrings bit by bit, a prefix first; pids, ports and refs by node name,
 * then their numbers. -0.0 and 0.0 are equal, as in OTP 25. In exact order
 * (and for map keys everywhere) every integer sorts before every float.
 *
 * Invariant: no C recursion on term depth. Pairs still to compare wait on an
 * explicit stack whose depth is the terms' nesting depth (not their size), so
 * comparing ordinary terms allocates nothing; a list's tail waits while its
 * head is compared, so the stack does not grow with list length. The one
 * exception is ordering two maps of more than 32 pairs (see compare).
 */
#include "term_internal.h"

/* The rank of each type in term order (amb_type is declared in it); all
 * numbers share one rank. */
static int rank(amb_term t)
{
    amb_type type = amb_type_of(t);
    return type == AMB_T_FLOAT ? (int)AMB_T_INTEGER : (int)type;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int cmp_atoms(amb_term a, amb_term b)
{
    if (a == b)
        return 0;
    size_t la, lb;
    const char *na = amb_atom_name(a, &la), *nb = amb_atom_name(b, &lb);
    if (na == NULL || nb == NULL)
        return cmp_u64(a, b);
    int c = memcmp(na, nb, la < lb ? la : lb);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return cmp_u64(la, lb);
}

static int cmp_bits(amb_term a, amb_term b)
{
    const amb__binary *x = (const amb__binary *)(const void *)amb__box(a);
    const amb__binary *y = (const amb__binary *)(const void *)amb__box(b);
    unsigned tx = (unsigned)AMB__HDR_PAYLOAD(x->header);
    unsigned ty = (unsigned)AMB__HDR_PAYLOAD(y->header);
    size_t bits_x = (tx ? x->size - 1 : x->size) * 8 + tx;
    size_t bits_y = (ty ? y->size - 1 : y->size) * 8 + ty;
    size_t common = bits_x < bits_y ? bits_x : bits_y;
    size_t whole = common / 8;
    int c = whole ? memcmp(x->data, y->data, whole) : 0;
    if (c != 0)
        return c < 0 ? -1 : 1;
    unsigned rest = (unsigned)(common % 8);
    if (rest != 0) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rest));
        int bx = x->data[whole] & mask, by = y->data[whole] & mask;
        if (bx != by)
            return bx < by ? -1 : 1;
    }
    return cmp_u64(bits_x, bits_y);
}

/* The module name inside a NEW_FUN_EXT body (Size:4 Arity:1 Uniq:16
 * Index:4 NumFree:4 Module ...), or an empty name if it cannot be read. */
static void closure_module(const amb__closure *c, const uint8_t **name, size_t *len)
{
    const uint8_t *p = c->ext + 29, *end = c->ext + c->len;
    *name = p;
    *len = 0;
    if (p >= end)
        return;
    size_t n = 0, hdr = 0;
    switch (p[0]) {
    case 118: /* ATOM_UTF8_EXT */
    case 100: /* ATOM_EXT */
        hdr = 3;
        n = end - p >= 3 ? ((size_t)p[1] << 8 | p[2]) : 0;
        break;
    case 119: /* SMALL_ATOM_UTF8_EXT */
    case 115: /* SMALL_ATOM_EXT */
        hdr = 2;
        n = end - p >= 2 ? p[1] : 0;
        break;
    default:
        return;
    }
    if ((size_t)(end - p) < hdr + n)
        return;
    *name = p + hdr;
    *len = n;
}

static int cmp_bytes(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return cmp_u64(la, lb);
}

/* Closures as OTP orders them: module, index, uniq, then the rest (the free
 * variables), which we compare as bytes. */
static int cmp_closures(amb_term a, amb_term b)
{
    const amb__closure *x = (const amb__closure *)(const void *)amb__box(a);
    const amb__closure *y = (const amb__closure *)(const void *)amb__box(b);
    if (x->len < 29 || y->len < 29)
        return cmp_bytes(x->ext, x->len, y->ext, y->len);
    const uint8_t *mx, *my;
    size_t lx, ly;
    closure_module(x, &mx, &lx);
    closure_module(y, &my, &ly);
    int c = cmp_bytes(mx, lx, my, ly);
    if (c == 0)
        c = cmp_bytes(x->ext + 21, 4, y->ext + 21, 4); /* index, big-endian */
    if (c == 0)
        c = cmp_bytes(x->ext + 5, 16, y->ext + 5, 16); /* uniq */
    return c ? c : cmp_bytes(x->ext, x->len, y->ext, y->len);
}

/* Numbers: by value. In exact order (map keys) every integer sorts before
 * every float, whatever their values: OTP's map key order. */
static int cmp_numbers(amb_term a, amb_term b, bool exact)
{
    bool fa = !amb_is_small(a) && amb__box_kind(a) == AMB__K_FLOAT;
    bool fb = !amb_is_small(b) && amb__box_kind(b) == AMB__K_FLOAT;
    if (!fa && !fb)
        return amb__bignum_compare(a, b);
    if (fa && fb) {
        double x = amb__float_value(a), y = amb__float_value(b);
        return (x > y) - (x < y);
    }
    if (exact)
        return fa ? 1 : -1;
    if (fb)
        return amb__bignum_compare_double(a, amb__float_value(b));
    return -amb__bignum_compare_double(b, amb__float_value(a));
}

/* Compares everything about a and b except their sub-terms (same type and,
 * for tuples and maps, same size are checked here; elements by the caller). */
static int cmp_shallow(amb_term a, amb_term b, bool exact)
{
    int ra = rank(a), rb = rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch ((amb_type)ra) {
    case AMB_T_NONE:
        /* Nodes inside two trie maps, met only by =:= (see compare): their
         * headers hold their kind and shape. */
        return amb__is_boxed(a) && amb__is_boxed(b)
                   ? cmp_u64(amb__box(a)[0], amb__box(b)[0])
                   : 0;
    case AMB_T_NIL:
    case AMB_T_LIST:
        return 0;
    case AMB_T_INTEGER:
    case AMB_T_FLOAT:
        return cmp_numbers(a, b, exact);
    case AMB_T_ATOM:
        return cmp_atoms(a, b);
    case AMB_T_BITSTRING:
        return cmp_bits(a, b);
    case AMB_T_TUPLE:
    case AMB_T_MAP: {
        /* Same header payload: the same arity, or the same map size. */
        uint64_t n = AMB__HDR_PAYLOAD(amb__box(a)[0]),
                 m = AMB__HDR_PAYLOAD(amb__box(b)[0]);
        return cmp_u64(n, m);
    }
    case AMB_T_PID: {
        /* OTP's order: serial, number, then node, then creation. Local pids
         * are immediates and remote ones boxes: compare their parts. */
        amb_term na = AMB_NONE, nb = AMB_NONE;
        uint32_t ia = 0, ib = 0, sa = 0, sb = 0, ca = 0, cb = 0;
        amb_pid_get(a, &na, &ia, &sa, &ca);
        amb_pid_get(b, &nb, &ib, &sb, &cb);
        int c = cmp_u64(sa, sb);
        if (c == 0)
            c = cmp_u64(ia, ib);
        if (c == 0)
            c = cmp_atoms(na, nb);
        return c ? c : cmp_u64(ca, cb);
    }
    case AMB_T_PORT: {
        /* Node, then creation, then id; local ports are immediates and
         * remote ones boxes: compare their parts. */
        amb_term na = AMB_NONE, nb = AMB_NONE;
        uint64_t ia = 0, ib = 0;
        uint32_t ca = 0, cb = 0;
        amb_port_get(a, &na, &ia, &ca);
        amb_port_get(b, &nb, &ib, &cb);
        int c = cmp_atoms(na, nb);
        if (c == 0)
            c = cmp_u64(ca, cb);
        return c ? c : cmp_u64(ia, ib);
    }
    case AMB_T_REF: {
        /* Node, creation, then the id words from the most significant. */
        const uint64_t *pa = amb__box(a), *pb = amb__box(b);
        int c = cmp_atoms(pa[1], pb[1]);
        if (c == 0)
            c = cmp_u64(pa[2], pb[2]);
        if (c != 0)
            return c;
        size_t n = (size_t)AMB__HDR_PAYLOAD(pa[0]), m = (size_t)AMB__HDR_PAYLOAD(pb[0]);
        if (n != m)
            return n < m ? -1 : 1;
        for (size_t i = n; i-- > 0;)
            if ((c = cmp_u64(pa[3 + i], pb[3 + i])) != 0)
                return c;
        return 0;
    }
    case AMB_T_FUN: {
        unsigned ka = amb__box_kind(a), kb = amb__box_kind(b);
        if (ka != kb)
            return ka == AMB__K_CLOSURE ? -1 : 1; /* closures first, as OTP */
        if (ka == AMB__K_EXPORT) {
            const uint64_t *pa = amb__box(a), *pb = amb__box(b);
            int c = cmp_atoms(pa[1], pb[1]);
            if (c == 0)
                c = cmp_atoms(pa[2], pb[2]);
            return c ? c : cmp_u64(AMB__HDR_PAYLOAD(pa[0]), AMB__HDR_PAYLOAD(pb[0]));
        }
        return cmp_closures(a, b);
    }
    }
    return 0;
}

/* A pending comparison on the explicit stack: three words (a, b, next). For
 * a pair of containers, next holds the index of the next child to compare
 * (the children of both are box[1..n] as amb__box_children lists them, a
 * flat map's keys before its values, which is Erlang's order: all keys,
 * then the values). For a list tail waiting while its head is compared,
 * next has TAIL set and (a, b) are compared as they are. EXACT records that
 * the pair sits inside a map key, where Erlang compares exactly (1 < 1.0)
 * even under ==. The stack's depth is the nesting depth of the terms, not
 * their size.
 *
 * Trie maps: =:= (eq_only) walks two tries node by node, which is right
 * because a trie's shape is a function of its keys. Ordering needs the keys
 * in term order, so two trie maps of one size are first replaced by flat
 * copies of their pairs sorted by key, on a scratch heap freed at the end
 * (sorting compares keys: the one recursion here, one level per trie map
 * that is a key of a trie map). */
#define TAIL     ((uint64_t)1 << 62)
#define EXACT    ((uint64_t)1 << 63)
#define INDEX(w) ((w) & ~(TAIL | EXACT))

static size_t nchildren(amb_term t)
{
    size_t first;
    return amb__box_children(amb__box(t), &first);
}

static int compare(amb_term a, amb_term b, bool exact, bool eq_only)
{
    amb__wstack st;
    amb__wstack_init(&st);
    amb_heap *scratch = NULL;
    int c = 0;
    bool ex = exact; /* exactness of the current pair */
    for (;;) {
        if (a != b) {
            if ((c = cmp_shallow(a, b, ex)) != 0)
                break;
            uint64_t flag = ex ? EXACT : 0;
            if (amb_is_cons(a)) {
                const amb_term *ca = amb__cons_cell(a), *cb = amb__cons_cell(b);
                if (amb__wstack_push(&st, ca[1]) || amb__wstack_push(&st, cb[1]) ||
                    amb__wstack_push(&st, TAIL | flag))
                    amb__panic("out of memory comparing terms nested very deep");
                a = ca[0];
                b = cb[0];
                continue;
            }
            if (amb__is_boxed(a) && !eq_only && amb__box_kind(a) == AMB__K_HAMT) {
                if (scratch == NULL && amb_heap_new(&scratch) != 0)
                    amb__panic("out of memory comparing two large maps");
                a = amb__map_sorted(scratch, a);
                b = amb__map_sorted(scratch, b);
                if (a == AMB_NONE || b == AMB_NONE)
                    amb__panic("out of memory comparing two large maps");
            }
            if (amb__is_boxed(a) && nchildren(a) > 0) {
                if (amb__wstack_push(&st, a) || amb__wstack_push(&st, b) ||
                    amb__wstack_push(&st, 1 | flag))
                    amb__panic("out of memory comparing terms nested very deep");
                ex = ex || amb__box_kind(a) == AMB__K_MAP; /* child 0 is a key */
                a = amb__box(a)[1];
                b = amb__box(b)[1];
                continue;
            }
        }
        /* This pair is equal: find the next one. */
        bool found = false;
        while (!found && !amb__wstack_empty(&st)) {
            uint64_t *top = &st.items[st.len - 3];
            size_t i = (size_t)INDEX(top[2]);
            ex = (top[2] & EXACT) != 0;
            if (top[2] & TAIL) {
                a = top[0];
                b = top[1];
                st.len -= 3;
                found = true;
            } else if (i < nchildren(top[0])) {
                a = amb__box(top[0])[1 + i];
                b = amb__box(top[1])[1 + i];
                if (amb__box_kind(top[0]) == AMB__K_MAP && i < amb__map_size(top[0]))
                    ex = true;
                top[2]++;
                found = true;
            } else {
                st.len -= 3;
            }
        }
        if (!found)
            break;
    }
    amb__wstack_free(&st);
    amb_heap_free(scratch);
    return c;
}

int amb_compare(amb_term a, amb_term b)
{
    return compare(a, b, false, false);
}

int amb_compare_exact(amb_term a, amb_term b)
{
    return compare(a, b, true, false);
}

bool amb_equal(amb_term a, amb_term b)
{
    if (a == b)
        return true;
    /* Different immediates, or an immediate and a box, are never =:=
     * (integers are canonical, so a small and a big are never equal). */
    if (!amb__is_boxed(a) && !amb_is_cons(a))
        return false;
    if (!amb__is_boxed(b) && !amb_is_cons(b))
        return false;
    if (amb__is_boxed(a) && amb__is_boxed(b)) {
        /* References (a call's alias, a monitor's ref) are compared on every
         * selective receive of a reply: their boxes are plain words, equal
         * exactly when the words are. */
        const uint64_t *pa = amb__box(a), *pb = amb__box(b);
        if (AMB__HDR_KIND(pa[0]) == AMB__K_REF)
            return pa[0] == pb[0] &&
                   memcmp(pa + 1, pb + 1, (2 + AMB__HDR_PAYLOAD(pa[0])) * sizeof *pa) ==
                       0;
    }
    return compare(a, b, true, true) == 0;
}

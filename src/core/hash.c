/*
 * hash.c - a stable hash of terms, consistent with amb_equal (=:=), and the
 * byte hash it is built on.
 *
 * Stable means: the same in every run and OS process and on every machine
 * (so it may be stored or sent): atoms hash by their name, never by their
 * index in this process's table; bytes are read as little-endian words.
 *
 * The term hash feeds a pre-order walk of the term (a type tag and size for
 * each node, then its contents) through one mixing function. The walk uses
 * an explicit stack, never C recursion. It is also the hash that places
 * keys in a trie map (hamt.c), so it must stay stable: a change reorders
 * every large map.
 */
#include <math.h>

#include "term_internal.h"

#define K1   AMB__HASH_SEED
#define feed amb__hash_feed

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint64_t amb__hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = feed(seed, len);
    size_t i = 0;
    for (; i + 8 <= len; i += 8)
        h = feed(h, load_le64(p + i));
    if (i < len) {
        uint64_t tail = 0;
        for (size_t k = len; k-- > i;)
            tail = (tail << 8) | p[k];
        h = feed(h, tail);
    }
    return h;
}

/* Hash of one node without its children (the walk in amb_hash feeds them). */
static uint64_t hash_node(uint64_t h, amb_term t)
{
    amb_type type = amb_type_of(t);
    h = feed(h, (uint64_t)type);
    switch (type) {
    case AMB_T_NONE:
        /* A node inside a trie map: its header (kind and datamap) is part
         * of the map's canonical shape. */
        return amb__is_boxed(t) ? feed(h, amb__box(t)[0]) : h;
    case AMB_T_NIL:
        return h;
    case AMB_T_INTEGER:
        if (amb_is_small(t))
            return feed(h, (uint64_t)amb_small_value(t));
        h = feed(h, amb__big_negative(t));
        return amb__hash_bytes(amb__big_digits(t), amb__big_ndigits(t) * 8, h);
    case AMB_T_FLOAT: {
        double d = amb__float_value(t);
        if (d == 0)
            d = 0.0; /* -0.0 =:= 0.0 in OTP 25 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return feed(h, bits);
    }
    case AMB_T_ATOM:
        return feed(h, amb__atom_hash(t));
    case AMB_T_BITSTRING: {
        const uint8_t *data;
        size_t size;
        unsigned tail;
        amb_bitstring_get(t, &data, &size, &tail);
        h = feed(h, tail);
        return amb__hash_bytes(data, size + (tail != 0), h);
    }
    case AMB_T_LIST:
        return h;
    case AMB_T_TUPLE:
    case AMB_T_MAP:
        return feed(h, AMB__HDR_PAYLOAD(amb__box(t)[0]));
    case AMB_T_PID: {
        amb_term node = AMB_NONE;
        uint32_t id = 0, serial = 0, creation = 0;
        amb_pid_get(t, &node, &id, &serial, &creation);
        h = feed(h, amb__atom_hash(node));
        h = feed(h, id);
        h = feed(h, serial);
        return feed(h, creation);
    }
    case AMB_T_PORT: {
        amb_term node = AMB_NONE;
        uint64_t id = 0;
        uint32_t creation = 0;
        amb_port_get(t, &node, &id, &creation);
        h = feed(h, amb__atom_hash(node));
        h = feed(h, id);
        return feed(h, creation);
    }
    case AMB_T_REF: {
        const uint64_t *p = amb__box(t);
        size_t words = 1 + (size_t)AMB__HDR_PAYLOAD(p[0]);
        h = feed(h, amb__atom_hash(p[1]));
        for (size_t i = 0; i < words; i++)
            h = feed(h, p[2 + i]);
        return h;
    }
    case AMB_T_FUN:
        if (amb__box_kind(t) == AMB__K_EXPORT) {
            const uint64_t *p = amb__box(t);
            h = feed(h, amb__atom_hash(p[1]));
            h = feed(h, amb__atom_hash(p[2]));
            return feed(h, AMB__HDR_PAYLOAD(p[0]));
        } else {
            const amb__closure *c = (const amb__closure *)(const void *)amb__box(t);
            return amb__hash_bytes(c->ext, c->len, h);
        }
    }
    return h;
}

/* The walk keeps frames of two words on its stack: (container, next child
 * index) for a box whose sub-terms amb__box_children lists (tuples, maps
 * and the nodes of a trie map, whose shape is canonical, so equal maps
 * hash alike), or (tail, TAIL) for a list tail waiting while its head is
 * hashed. Its depth is the nesting depth. */
#define TAIL UINT64_MAX

static size_t children(amb_term t)
{
    size_t first;
    return amb__is_boxed(t) ? amb__box_children(amb__box(t), &first) : 0;
}

uint64_t amb_hash(amb_term t)
{
    /* A leaf (most map keys) needs no walk and no stack. */
    if (!amb_is_cons(t) && children(t) == 0)
        return hash_node(K1, t);
    amb__wstack st;
    amb__wstack_init(&st);
    uint64_t h = K1;
    for (;;) {
        h = hash_node(h, t);
        bool descend = false;
        if (amb_is_cons(t)) {
            if (amb__wstack_push(&st, amb__cons_cell(t)[1]) ||
                amb__wstack_push(&st, TAIL))
                amb__panic("out of memory hashing a term nested very deep");
            t = amb__cons_cell(t)[0];
            continue;
        }
        if (children(t) > 0) {
            if (amb__wstack_push(&st, t) || amb__wstack_push(&st, 1))
                amb__panic("out of memory hashing a term nested very deep");
            t = amb__box(t)[1];
            continue;
        }
        while (!descend && !amb__wstack_empty(&st)) {
            uint64_t *top = &st.items[st.len - 2];
            if (top[1] == TAIL) {
                t = top[0];
                st.len -= 2;
                descend = true;
                continue;
            }
            amb_term parent = top[0];
            if (top[1] < children(parent)) {
                t = amb__box(parent)[1 + top[1]];
                top[1]++;
                descend = true;
            } else {
                st.len -= 2;
            }
        }
        if (!descend)
            break;
    }
    amb__wstack_free(&st);
    return h;
}

/*
 * print_pretty.c - the parts of the pretty style (AMB_PRINT_PRETTY, Erlang's
 * ~tp) that differ from ~w: printable lists as "...", printable binaries as
 * <<"...">> or <<"..."/utf8>>, and pids, references, ports and closures in
 * the forms Erlang shows to humans (<0.85.0>). print.c walks the term and
 * calls these for the leaves; docs/design/print.md has the rules.
 *
 * Invariants:
 *   - "Printable" is OTP's rule for ~tp with io:printable_range() unicode
 *     (erl +pc unicode): code points 32..126, 160..0xD7FF, 0xE000..0xFFFD,
 *     0x10000..0x10FFFF, and \n \r \t \v \b \f \e. The interop test checks
 *     our text against erl's for a corpus of terms.
 *   - The output is valid UTF-8 (Latin-1 bytes of a binary are written as
 *     the characters they stand for).
 *   - A pid of a node in this OS process prints with the node's number here,
 *     counted from 0 (a program with one runtime sees <0.ID.SERIAL>, as in
 *     Erlang's shell); a pid of any other node with the node's name.
 */
#include "print.h"

static bool printable(uint32_t c)
{
    switch (c) {
    case '\n':
    case '\r':
    case '\t':
    case '\v':
    case '\b':
    case '\f':
    case 27:
        return true;
    default:
        return (c >= 32 && c <= 126) || (c >= 0xa0 && c < 0xd800) ||
               (c > 0xdfff && c < 0xfffe) || (c > 0xffff && c <= 0x10ffff);
    }
}

static bool printable_latin1(uint8_t c)
{
    return printable(c) && (c < 0x80 || c >= 0xa0);
}

/* One character inside "...", with io_lib:write_string's escapes. */
static void emit_char(amb__print_sink *o, uint32_t c)
{
    static const char names[] = {
        ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't', ['\v'] = 'v', ['\b'] = 'b',
        ['\f'] = 'f', [27] = 'e',   ['"'] = '"',  ['\\'] = '\\'};
    if (c < sizeof names && names[c] != 0) {
        char e[2] = {'\\', names[c]};
        amb__print_emit(o, e, 2);
        return;
    }
    uint8_t utf8[4];
    amb__print_emit(o, utf8, amb__utf8_encode(c, utf8));
}

bool amb__print_pretty_is_string(amb_term t)
{
    if (!amb_is_cons(t))
        return false;
    for (; amb_is_cons(t); t = amb__cons_cell(t)[1]) {
        amb_term c = amb__cons_cell(t)[0];
        if (!amb_is_small(c) || amb_small_value(c) < 0 || amb_small_value(c) > 0x10ffff ||
            !printable((uint32_t)amb_small_value(c)))
            return false;
    }
    return t == AMB_NIL;
}

void amb__print_pretty_string(amb__print_sink *o, amb_term t)
{
    amb__print_emit(o, "\"", 1);
    for (; amb_is_cons(t); t = amb__cons_cell(t)[1])
        emit_char(o, (uint32_t)amb_small_value(amb__cons_cell(t)[0]));
    amb__print_emit(o, "\"", 1);
}

bool amb__print_pretty_binary(amb__print_sink *o, amb_term t)
{
    const uint8_t *data;
    size_t size, chars;
    unsigned tail;
    if (amb_bitstring_get(t, &data, &size, &tail) != 0 || tail != 0 || size == 0)
        return false;
    bool utf8 = amb__utf8_valid(data, size, &chars);
    /* Valid UTF-8 is read as characters (all must be printable); anything
     * else as Latin-1 bytes (all must be printable), as io_lib_pretty's
     * printable_bin does. */
    for (size_t i = 0; i < size;) {
        uint32_t c = data[i];
        size_t k = utf8 && c >= 0x80 ? amb__utf8_decode(data + i, size - i, &c) : 1;
        if (utf8 ? !printable(c) : !printable_latin1(data[i]))
            return false;
        i += k;
    }
    amb__print_emit(o, "<<\"", 3);
    for (size_t i = 0; i < size;) {
        uint32_t c = data[i];
        size_t k = utf8 && c >= 0x80 ? amb__utf8_decode(data + i, size - i, &c) : 1;
        emit_char(o, c);
        i += k;
    }
    /* Pure ASCII needs no /utf8; other UTF-8 does, to tell it from Latin-1. */
    if (utf8 && chars != size)
        amb__print_emit(o, "\"/utf8>>", 8);
    else
        amb__print_emit(o, "\">>", 3);
    return true;
}

/* The node part of a human form: its number in this OS process, or its
 * name. slot is the node's slot when known (a local pid's word), else 0. */
static void emit_node(amb__print_sink *o, unsigned slot, amb_term node, uint32_t creation)
{
    if (slot == 0)
        slot = amb__node_find(node, creation);
    if (slot != 0)
        amb__print_u64(o, slot - 1);
    else
        amb__print_atom(o, node, AMB__PRINT_ATOM_T);
}

/* The atom at p (an ETF atom of any of the four kinds) as a term; false
 * when it cannot be read or the atom does not exist. */
static bool ext_atom(const uint8_t **pp, const uint8_t *end, amb_term *out)
{
    const uint8_t *p = *pp;
    if (end - p < 2)
        return false;
    unsigned tag = p[0];
    bool small = tag == 115 || tag == 119, latin1 = tag == 100 || tag == 115;
    if (!small && tag != 100 && tag != 118)
        return false;
    size_t hdr = small ? 2 : 3;
    if ((size_t)(end - p) < hdr)
        return false;
    size_t n = small ? p[1] : ((size_t)p[1] << 8 | p[2]);
    if ((size_t)(end - p) < hdr + n || n > AMB_ATOM_MAX_BYTES)
        return false;
    const uint8_t *s = p + hdr;
    int rc;
    if (latin1) {
        char buf[2 * AMB_ATOM_MAX_BYTES];
        size_t len = 0;
        for (size_t i = 0; i < n; i++)
            len += amb__utf8_encode(s[i], (uint8_t *)buf + len);
        rc = amb_atom_existing(buf, len, out);
    } else {
        rc = amb_atom_existing((const char *)s, n, out);
    }
    *pp = s + n;
    return rc == 0;
}

/* An ETF integer of up to 64 bits at p. */
static bool ext_uint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    if (end - p >= 2 && p[0] == 97) {
        *out = p[1];
        *pp = p + 2;
        return true;
    }
    if (end - p >= 5 && p[0] == 98) {
        int32_t v = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
                              (uint32_t)p[3] << 8 | p[4]);
        if (v < 0)
            return false;
        *out = (uint64_t)v;
        *pp = p + 5;
        return true;
    }
    if (end - p >= 3 && p[0] == 110 && p[1] <= 8 && p[2] == 0 &&
        (size_t)(end - p) >= 3 + (size_t)p[1]) {
        uint64_t v = 0;
        for (size_t i = p[1]; i-- > 0;)
            v = v << 8 | p[3 + i];
        *out = v;
        *pp = p + 3 + p[1];
        return true;
    }
    return false;
}

/* #Fun<Module.OldIndex.OldUniq>, from the NEW_FUN_EXT body (after its 29
 * fixed bytes: Module, OldIndex, OldUniq). False when they cannot be read. */
static bool emit_closure(amb__print_sink *o, amb_term t)
{
    const uint8_t *ext;
    size_t len;
    amb_term mod;
    uint64_t index, uniq;
    if (amb_closure_get(t, &ext, &len) != 0 || len < 29)
        return false;
    const uint8_t *p = ext + 29, *end = ext + len;
    if (!ext_atom(&p, end, &mod) || !ext_uint(&p, end, &index) ||
        !ext_uint(&p, end, &uniq))
        return false;
    amb__print_emit(o, "#Fun<", 5);
    amb__print_atom(o, mod, AMB__PRINT_ATOM_FUN);
    amb__print_emit(o, ".", 1);
    amb__print_u64(o, index);
    amb__print_emit(o, ".", 1);
    amb__print_u64(o, uniq);
    amb__print_emit(o, ">", 1);
    return true;
}

bool amb__print_pretty_id(amb__print_sink *o, amb_term t)
{
    amb_term node;
    uint32_t a, b, creation;
    uint64_t id;
    uint32_t words[AMB_REF_MAX_WORDS];
    size_t nwords;
    switch (amb_type_of(t)) {
    case AMB_T_PID:
        if (amb_pid_get(t, &node, &a, &b, &creation) != 0)
            return false;
        amb__print_emit(o, "<", 1);
        emit_node(o, amb_is_local_pid(t) ? amb__lpid_slot(t) : 0, node, creation);
        amb__print_emit(o, ".", 1);
        amb__print_u64(o, a);
        amb__print_emit(o, ".", 1);
        amb__print_u64(o, b);
        amb__print_emit(o, ">", 1);
        return true;
    case AMB_T_REF:
        /* Erlang shows the id words from the most significant. */
        if (amb_ref_get(t, words, AMB_COUNTOF(words), &node, &creation, &nwords) != 0)
            return false;
        amb__print_emit(o, "#Ref<", 5);
        emit_node(o, 0, node, creation);
        for (size_t i = nwords; i-- > 0;) {
            amb__print_emit(o, ".", 1);
            amb__print_u64(o, words[i]);
        }
        amb__print_emit(o, ">", 1);
        return true;
    case AMB_T_PORT:
        if (amb_port_get(t, &node, &id, &creation) != 0)
            return false;
        amb__print_emit(o, "#Port<", 6);
        emit_node(o, 0, node, creation);
        amb__print_emit(o, ".", 1);
        amb__print_u64(o, id);
        amb__print_emit(o, ">", 1);
        return true;
    case AMB_T_FUN:
        return emit_closure(o, t);
    default:
        return false;
    }
}

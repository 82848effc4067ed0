/*
 * print.c - terms as Erlang text: amb_print, amb_print_alloc and amb_fprint
 * print exactly what OTP 25's io_lib:format("~w", [T]) prints for every
 * term Erlang can read back, and documented #Pid/#Ref/#Port/#Fun forms for
 * the rest (docs/design/print.md has the rules and where they come from).
 *
 * Invariants:
 *   - No C recursion on term depth: one loop walks the term, iterating along
 *     list tails and keeping the unfinished containers on an explicit word
 *     stack (amb__wstack), so a term nested 100,000 deep prints with a few
 *     words of heap per level.
 *   - Every byte goes through one sink (struct sink) that either fills the
 *     caller's fixed buffer and keeps counting past its end (snprintf-like),
 *     appends to an amb__buf, or stages bytes for a FILE *. The printer
 *     itself never knows which.
 *   - The output is valid UTF-8. A fixed buffer that is too small is cut at a
 *     code point boundary, never inside a multi-byte sequence.
 *   - Floats print as the shortest decimal that reads back to the same
 *     double, laid out as OTP lays it out (print_float.c).
 */
#include <stdio.h>
#include <string.h>

#include "term_internal.h"

/* ---------------------------------------------------------------------------
 * The output sink
 * ------------------------------------------------------------------------ */

enum out_mode { OUT_FIXED, OUT_BUF, OUT_FILE };

typedef struct sink {
    enum out_mode mode;
    int err;    /* first failure: AMB_ENOMEM, AMB_EIO or AMB_EBADARG */
    size_t len; /* bytes produced so far, stored or not */
    /* OUT_FIXED: the caller's buffer; the first cap - 1 bytes are stored. */
    char *fixed;
    size_t cap;
    uint8_t first_dropped; /* stream byte at index cap - 1, to cut on a boundary */
    /* OUT_BUF */
    amb__buf *buf;
    /* OUT_FILE: bytes are staged so that stdio sees few, large writes. */
    FILE *file;
    size_t staged;
    uint8_t stage[1024];
} sink;

static void flush_file(sink *o)
{
    if (o->staged > 0 && o->err == 0 &&
        fwrite(o->stage, 1, o->staged, o->file) != o->staged)
        o->err = AMB_EIO;
    o->staged = 0;
}

static void emit(sink *o, const void *data, size_t n)
{
    const uint8_t *p = data;
    switch (o->mode) {
    case OUT_FIXED:
        if (o->cap > 0 && o->len < o->cap - 1) {
            size_t room = o->cap - 1 - o->len;
            size_t k = n < room ? n : room;
            memcpy(o->fixed + o->len, p, k);
            if (k < n)
                o->first_dropped = p[k];
        } else if (o->cap > 0 && o->len == o->cap - 1 && n > 0) {
            o->first_dropped = p[0];
        }
        break;
    case OUT_BUF:
        amb__buf_append(o->buf, p, n);
        if (o->buf->err != 0 && o->err == 0)
            o->err = o->buf->err;
        break;
    case OUT_FILE:
        if (o->err != 0)
            break;
        if (n > sizeof o->stage - o->staged) {
            flush_file(o);
            if (n >= sizeof o->stage) {
                if (o->err == 0 && fwrite(p, 1, n, o->file) != n)
                    o->err = AMB_EIO;
                break;
            }
        }
        memcpy(o->stage + o->staged, p, n);
        o->staged += n;
        break;
    }
    o->len += n;
}

static void emit_str(sink *o, const char *s)
{
    emit(o, s, strlen(s));
}

static void emit_char(sink *o, char c)
{
    emit(o, &c, 1);
}

static void emit_u64(sink *o, uint64_t v)
{
    char tmp[24];
    size_t pos = sizeof tmp;
    do {
        tmp[--pos] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    emit(o, tmp + pos, sizeof tmp - pos);
}

static void emit_i64(sink *o, int64_t v)
{
    if (v < 0) {
        emit_char(o, '-');
        /* Negate as unsigned: the magnitude of INT64_MIN does not fit int64_t. */
        emit_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        emit_u64(o, (uint64_t)v);
    }
}

/* ---------------------------------------------------------------------------
 * Atoms
 *
 * Two quoting rules exist in OTP 25 and ~w uses both: io_lib's (write_atom)
 * for atoms, and the emulator's own (erl_printf_term.c) for the module and
 * function of an export fun, which ~w prints through erlang:fun_to_list/1.
 * ------------------------------------------------------------------------ */

enum atom_style {
    ATOM_IOLIB,  /* io_lib:write_atom/1: quote only when needed */
    ATOM_QUOTED, /* always quoted, io_lib's escapes: node names in #Pid<...> */
    ATOM_ERTS,   /* erts' fun_to_list rule, plus reserved words (see the doc) */
};

/* Erlang's reserved words (erl_scan:reserved_word/1 in OTP 25; 'maybe' and
 * 'else' are reserved only with the maybe_expr feature, which is off). */
static bool is_reserved(const char *s, size_t n)
{
    static const char *const words[] = {
        "after", "and",  "andalso", "band",   "begin",   "bnot", "bor", "bsl",  "bsr",
        "bxor",  "case", "catch",   "cond",   "div",     "end",  "fun", "if",   "let",
        "not",   "of",   "or",      "orelse", "receive", "rem",  "try", "when", "xor",
    };
    if (n < 2 || n > 7)
        return false;
    for (size_t i = 0; i < AMB_COUNTOF(words); i++)
        if (strlen(words[i]) == n && memcmp(words[i], s, n) == 0)
            return true;
    return false;
}

/* Latin-1 lowercase letters as both printers see them: a-z and U+00DF..U+00FF
 * except the division sign. */
static bool latin1_lower(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 0xdf && c <= 0xff && c != 0xf7);
}

static bool latin1_upper(uint32_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 0xc0 && c <= 0xde && c != 0xd7);
}

static bool needs_quotes(const uint8_t *s, size_t n, enum atom_style style)
{
    if (style == ATOM_QUOTED || n == 0 || is_reserved((const char *)s, n))
        return true;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = amb__utf8_decode(s + i, n - i, &c);
        if (k == 0)
            return true; /* cannot happen: atom names are valid UTF-8 */
        bool ok;
        if (i == 0)
            ok = latin1_lower(c);
        else
            ok = latin1_lower(c) || latin1_upper(c) || (c >= '0' && c <= '9') ||
                 c == '_' || (c == '@' && style == ATOM_IOLIB);
        if (!ok)
            return true;
        i += k;
    }
    return false;
}

static void emit_octal_escape(sink *o, uint32_t c)
{
    char e[4] = {'\\', (char)('0' + ((c >> 6) & 7)), (char)('0' + ((c >> 3) & 7)),
                 (char)('0' + (c & 7))};
    emit(o, e, sizeof e);
}

/* One code point inside single quotes. io_lib escapes control characters
 * with C-like names, DEL as \d, C1 controls in octal, and everything beyond
 * Latin-1 as \x{H}; the emulator's printer has fewer names (ESC is \033),
 * prints DEL as it is, and leaves non-Latin-1 characters alone. */
static void emit_quoted_char(sink *o, uint32_t c, const uint8_t *utf8, size_t k,
                             enum atom_style style)
{
    const char *name = NULL;
    switch (c) {
    case '\'':
        name = "\\'";
        break;
    case '\\':
        name = "\\\\";
        break;
    case '\b':
        name = "\\b";
        break;
    case '\t':
        name = "\\t";
        break;
    case '\n':
        name = "\\n";
        break;
    case '\v':
        name = "\\v";
        break;
    case '\f':
        name = "\\f";
        break;
    case '\r':
        name = "\\r";
        break;
    case 27:
        name = style == ATOM_ERTS ? NULL : "\\e";
        break;
    case 127:
        name = style == ATOM_ERTS ? NULL : "\\d";
        break;
    default:
        break;
    }
    if (name != NULL) {
        emit_str(o, name);
    } else if (c < 32 || (c >= 128 && c < 160)) {
        emit_octal_escape(o, c);
    } else if (c > 255 && style != ATOM_ERTS) {
        char tmp[16];
        int m = snprintf(tmp, sizeof tmp, "\\x{%X}", (unsigned)c);
        emit(o, tmp, (size_t)m);
    } else {
        emit(o, utf8, k);
    }
}

static void emit_atom(sink *o, amb_term a, enum atom_style style)
{
    size_t n;
    const uint8_t *s = (const uint8_t *)amb_atom_name(a, &n);
    if (s == NULL) {
        o->err = o->err ? o->err : AMB_EBADARG;
        return;
    }
    if (!needs_quotes(s, n, style)) {
        emit(o, s, n);
        return;
    }
    emit_char(o, '\'');
    size_t plain = 0; /* start of a run of bytes that need no escape */
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = amb__utf8_decode(s + i, n - i, &c);
        if (k == 0) {
            k = 1, c = 0xfffd; /* cannot happen: atom names are valid UTF-8 */
        }
        bool simple = c >= 32 && c < 127 && c != '\'' && c != '\\';
        bool latin = c >= 160 && (c <= 255 || style == ATOM_ERTS);
        if (!simple && !latin) {
            emit(o, s + plain, i - plain);
            emit_quoted_char(o, c, s + i, k, style);
            plain = i + k;
        }
        i += k;
    }
    emit(o, s + plain, n - plain);
    emit_char(o, '\'');
}

/* ---------------------------------------------------------------------------
 * Leaves: terms with no subterms to walk
 * ------------------------------------------------------------------------ */

static void emit_bytes_list(sink *o, const uint8_t *p, size_t n, bool more)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            emit_char(o, ',');
        emit_u64(o, p[i]);
    }
    if (n > 0 && more)
        emit_char(o, ',');
}

static void emit_bitstring(sink *o, amb_term t)
{
    const uint8_t *data;
    size_t size;
    unsigned tail;
    if (amb_bitstring_get(t, &data, &size, &tail) != 0) {
        o->err = o->err ? o->err : AMB_EBADARG;
        return;
    }
    emit_str(o, "<<");
    emit_bytes_list(o, data, size, tail != 0);
    if (tail != 0) {
        /* The tail's bits sit at the high end of its byte. */
        emit_u64(o, (uint64_t)(data[size] >> (8 - tail)));
        emit_char(o, ':');
        emit_u64(o, tail);
    }
    emit_str(o, ">>");
}

static void emit_integer(sink *o, amb_term t)
{
    if (amb_is_small(t)) {
        emit_i64(o, amb_small_value(t));
        return;
    }
    char *text;
    size_t n;
    int rc = amb__bignum_to_decimal(t, &text, &n);
    if (rc != 0) {
        o->err = o->err ? o->err : rc;
        return;
    }
    emit(o, text, n);
    amb__free(text);
}

static void emit_float(sink *o, amb_term t)
{
    char text[AMB__PRINT_FLOAT_MAX];
    emit(o, text, amb__print_float_format(amb__float_value(t), text));
}

static void emit_fun(sink *o, amb_term t)
{
    amb_term mod, fun;
    uint8_t arity;
    const uint8_t *ext;
    size_t len;
    if (amb_export_get(t, &mod, &fun, &arity) == 0) {
        emit_str(o, "fun ");
        emit_atom(o, mod, ATOM_ERTS);
        emit_char(o, ':');
        emit_atom(o, fun, ATOM_ERTS);
        emit_char(o, '/');
        emit_u64(o, arity);
    } else if (amb_closure_get(t, &ext, &len) == 0) {
        emit_str(o, "#Fun<<<");
        emit_bytes_list(o, ext, len, false);
        emit_str(o, ">>>");
    } else {
        o->err = o->err ? o->err : AMB_EBADARG;
    }
}

static void emit_pid_ref_port(sink *o, amb_term t, amb_type type)
{
    amb_term node;
    uint32_t a, b, creation;
    uint64_t id;
    uint32_t words[AMB_REF_MAX_WORDS];
    size_t nwords = 0;
    int rc;
    switch (type) {
    case AMB_T_PID:
        if ((rc = amb_pid_get(t, &node, &a, &b, &creation)) != 0)
            break;
        emit_str(o, "#Pid<");
        emit_atom(o, node, ATOM_QUOTED);
        emit_char(o, '.');
        emit_u64(o, a);
        emit_char(o, '.');
        emit_u64(o, b);
        emit_char(o, '.');
        emit_u64(o, creation);
        emit_char(o, '>');
        return;
    case AMB_T_REF:
        if ((rc = amb_ref_get(t, words, AMB_COUNTOF(words), &node, &creation, &nwords)) !=
            0)
            break;
        emit_str(o, "#Ref<");
        emit_atom(o, node, ATOM_QUOTED);
        emit_char(o, '.');
        emit_u64(o, creation);
        for (size_t i = 0; i < nwords; i++) {
            emit_char(o, '.');
            emit_u64(o, words[i]);
        }
        emit_char(o, '>');
        return;
    default:
        if ((rc = amb_port_get(t, &node, &id, &creation)) != 0)
            break;
        emit_str(o, "#Port<");
        emit_atom(o, node, ATOM_QUOTED);
        emit_char(o, '.');
        emit_u64(o, id);
        emit_char(o, '.');
        emit_u64(o, creation);
        emit_char(o, '>');
        return;
    }
    o->err = o->err ? o->err : AMB_EBADARG;
}

/* ---------------------------------------------------------------------------
 * The walk
 *
 * An unfinished container is a frame on the word stack, its tag on top:
 *
 *   FR_TUPLE  [next element pointer, elements left, FR_TUPLE]
 *   FR_LIST   [rest of the list, FR_LIST]
 *   FR_MAP    [map, step, FR_MAP]   step 2i: key i is next; 2i+1: value i
 *   FR_CHAR   [character, FR_CHAR]  the ']' after an improper tail
 *
 * Frames are updated in place, so each container costs one push.
 * ------------------------------------------------------------------------ */

enum { FR_TUPLE = 1, FR_LIST, FR_MAP, FR_CHAR };

static int push2(amb__wstack *st, uint64_t a, uint64_t tag)
{
    if (amb__wstack_push(st, a) != 0 || amb__wstack_push(st, tag) != 0)
        return AMB_ENOMEM;
    return 0;
}

static int push3(amb__wstack *st, uint64_t a, uint64_t b, uint64_t tag)
{
    if (amb__wstack_push(st, a) != 0 || push2(st, b, tag) != 0)
        return AMB_ENOMEM;
    return 0;
}

/* Prints t into o; returns 0 or the first error (also left in o->err). */
static int walk(sink *o, amb_term t)
{
    amb__wstack st;
    amb__wstack_init(&st);
    int rc = 0;

    for (;;) {
        /* Print t, or open it and push the frame that finishes it. */
        amb_type type = amb_type_of(t);
        switch (type) {
        case AMB_T_INTEGER:
            emit_integer(o, t);
            break;
        case AMB_T_FLOAT:
            emit_float(o, t);
            break;
        case AMB_T_ATOM:
            emit_atom(o, t, ATOM_IOLIB);
            break;
        case AMB_T_NIL:
            emit_str(o, "[]");
            break;
        case AMB_T_BITSTRING:
            emit_bitstring(o, t);
            break;
        case AMB_T_FUN:
            emit_fun(o, t);
            break;
        case AMB_T_PID:
        case AMB_T_REF:
        case AMB_T_PORT:
            emit_pid_ref_port(o, t, type);
            break;
        case AMB_T_TUPLE: {
            size_t arity = (size_t)AMB__HDR_PAYLOAD(amb__box(t)[0]);
            const amb_term *el = (const amb_term *)&amb__box(t)[1];
            if (arity == 0) {
                emit_str(o, "{}");
                break;
            }
            emit_char(o, '{');
            if (arity == 1)
                rc = push2(&st, '}', FR_CHAR);
            else
                rc = push3(&st, (uint64_t)(uintptr_t)(el + 1), arity - 1, FR_TUPLE);
            if (rc != 0)
                goto done;
            t = el[0];
            continue;
        }
        case AMB_T_LIST: {
            const amb_term *cell = amb__cons_cell(t);
            emit_char(o, '[');
            if ((rc = push2(&st, cell[1], FR_LIST)) != 0)
                goto done;
            t = cell[0];
            continue;
        }
        case AMB_T_MAP:
            if (amb__map_size(t) == 0) {
                emit_str(o, "#{}");
                break;
            }
            emit_str(o, "#{");
            if ((rc = push3(&st, t, 1, FR_MAP)) != 0)
                goto done;
            t = amb__map_keys(t)[0];
            continue;
        default:
            rc = AMB_EBADARG; /* AMB_NONE or a corrupt word inside a term */
            goto done;
        }
        if (o->err != 0) {
            rc = o->err;
            goto done;
        }

        /* Find the next term to print by finishing frames. */
        for (;;) {
            if (amb__wstack_empty(&st))
                goto done;
            uint64_t *top = &st.items[st.len - 1];
            uint64_t tag = top[0];
            if (tag == FR_TUPLE) {
                const amb_term *next = (const amb_term *)(uintptr_t)top[-2];
                if (top[-1] == 0) {
                    emit_char(o, '}');
                    st.len -= 3;
                    continue;
                }
                emit_char(o, ',');
                top[-2] = (uint64_t)(uintptr_t)(next + 1);
                top[-1]--;
                t = *next;
                break;
            }
            if (tag == FR_LIST) {
                amb_term rest = top[-1];
                if (rest == AMB_NIL) {
                    emit_char(o, ']');
                    st.len -= 2;
                    continue;
                }
                if (amb_is_cons(rest)) {
                    const amb_term *cell = amb__cons_cell(rest);
                    emit_char(o, ',');
                    top[-1] = cell[1];
                    t = cell[0];
                    break;
                }
                emit_char(o, '|');
                top[-1] = ']';
                top[0] = FR_CHAR;
                t = rest;
                break;
            }
            if (tag == FR_MAP) {
                amb_term m = top[-2];
                uint64_t step = top[-1];
                size_t i = (size_t)(step / 2);
                if (step % 2 == 1) {
                    emit_str(o, " => ");
                    t = amb__map_values(m)[i];
                } else if (i == amb__map_size(m)) {
                    emit_char(o, '}');
                    st.len -= 3;
                    continue;
                } else {
                    emit_char(o, ',');
                    t = amb__map_keys(m)[i];
                }
                top[-1] = step + 1;
                break;
            }
            emit_char(o, (char)top[-1]); /* FR_CHAR */
            st.len -= 2;
        }
    }
done:
    amb__wstack_free(&st);
    if (rc != 0 && o->err == 0)
        o->err = rc;
    return o->err;
}

/* ---------------------------------------------------------------------------
 * The public entry points
 * ------------------------------------------------------------------------ */

int amb_print(amb_term t, char *buf, size_t cap, size_t *len)
{
    if ((buf == NULL && cap > 0) || t == AMB_NONE)
        return AMB__MISUSE();
    sink o = {.mode = OUT_FIXED, .fixed = buf, .cap = cap};
    int rc = walk(&o, t);
    if (rc != 0) {
        if (cap > 0)
            buf[0] = '\0';
        return rc;
    }
    if (len != NULL)
        *len = o.len;
    if (cap == 0)
        return o.len == 0 ? 0 : AMB_EBUFSIZE;
    if (o.len < cap) {
        buf[o.len] = '\0';
        return 0;
    }
    /* Cut at a code point boundary: if the first byte left out continues a
     * multi-byte character, that character's first bytes go too. */
    size_t cut = cap - 1;
    if ((o.first_dropped & 0xc0) == 0x80) {
        while (cut > 0 && ((uint8_t)buf[cut - 1] & 0xc0) == 0x80)
            cut--;
        if (cut > 0)
            cut--; /* the lead byte */
    }
    buf[cut] = '\0';
    return AMB_EBUFSIZE;
}

int amb_print_alloc(amb_term t, char **out_text, size_t *len)
{
    if (out_text == NULL || t == AMB_NONE)
        return AMB__MISUSE();
    amb__buf b;
    amb__buf_init(&b);
    sink o = {.mode = OUT_BUF, .buf = &b};
    int rc = walk(&o, t);
    if (rc == 0) {
        amb__buf_putc(&b, '\0');
        rc = b.err;
    }
    if (rc != 0) {
        amb__buf_free(&b);
        return rc;
    }
    /* Give back the doubling slack; keeping the larger block is harmless if
     * the allocator cannot shrink it. */
    char *text = amb__realloc(b.data, b.len);
    *out_text = text != NULL ? text : (char *)b.data;
    if (len != NULL)
        *len = b.len - 1;
    return 0;
}

int amb_fprint(amb_term t, FILE *f)
{
    if (f == NULL || t == AMB_NONE)
        return AMB__MISUSE();
    sink o = {.mode = OUT_FILE, .file = f};
    int rc = walk(&o, t);
    flush_file(&o);
    return rc != 0 ? rc : o.err;
}

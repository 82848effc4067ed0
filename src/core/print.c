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
#include <string.h>

#include "ambitious/term.h"
#include "print.h"

typedef amb__print_sink sink;

/* ---------------------------------------------------------------------------
 * The output sink
 * ------------------------------------------------------------------------ */

static void flush_file(sink *o)
{
    if (o->staged > 0 && o->err == 0 &&
        fwrite(o->stage, 1, o->staged, o->file) != o->staged)
        o->err = AMB_EIO;
    o->staged = 0;
}

void amb__print_emit(sink *o, const void *data, size_t n)
{
    const uint8_t *p = data;
    switch (o->mode) {
    case AMB__PRINT_FIXED:
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
    case AMB__PRINT_BUF:
        amb__buf_append(o->buf, p, n);
        if (o->buf->err != 0 && o->err == 0)
            o->err = o->buf->err;
        break;
    case AMB__PRINT_FILE:
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
    amb__print_emit(o, s, strlen(s));
}

static void emit_char(sink *o, char c)
{
    amb__print_emit(o, &c, 1);
}

void amb__print_u64(sink *o, uint64_t v)
{
    char tmp[24];
    size_t pos = sizeof tmp;
    do {
        tmp[--pos] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    amb__print_emit(o, tmp + pos, sizeof tmp - pos);
}

void amb__print_fail(sink *o, int rc)
{
    if (o->err == 0)
        o->err = rc;
}

static void emit_i64(sink *o, int64_t v)
{
    if (v < 0) {
        emit_char(o, '-');
        /* Negate as unsigned: the magnitude of INT64_MIN does not fit int64_t. */
        amb__print_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        amb__print_u64(o, (uint64_t)v);
    }
}

/* ---------------------------------------------------------------------------
 * Atoms
 *
 * Two quoting rules exist in OTP 25 and ~w uses both: io_lib's (write_atom)
 * for atoms, and the emulator's own (erl_printf_term.c) for the module and
 * function of an export fun, which ~w prints through erlang:fun_to_list/1.
 * ~tp uses io_lib's with the characters beyond Latin-1 as they are.
 * ------------------------------------------------------------------------ */

#define ATOM_IOLIB   AMB__PRINT_ATOM_W
#define ATOM_UNICODE AMB__PRINT_ATOM_T
#define ATOM_QUOTED  AMB__PRINT_ATOM_QUOTED
#define ATOM_ERTS    AMB__PRINT_ATOM_FUN
typedef enum amb__print_atom_style atom_style;

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

static bool needs_quotes(const uint8_t *s, size_t n, atom_style style)
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
                 c == '_' || (c == '@' && style != ATOM_ERTS);
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
    amb__print_emit(o, e, sizeof e);
}

/* One code point inside single quotes. io_lib escapes control characters
 * with C-like names, DEL as \d, C1 controls in octal, and everything beyond
 * Latin-1 as \x{H}; the emulator's printer has fewer names (ESC is \033),
 * prints DEL as it is, and leaves non-Latin-1 characters alone. */
static void emit_quoted_char(sink *o, uint32_t c, const uint8_t *utf8, size_t k,
                             atom_style style)
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
    } else if (c > 255 && (style == ATOM_IOLIB || style == ATOM_QUOTED)) {
        char tmp[16];
        int m = snprintf(tmp, sizeof tmp, "\\x{%X}", (unsigned)c);
        amb__print_emit(o, tmp, (size_t)m);
    } else {
        amb__print_emit(o, utf8, k);
    }
}

void amb__print_atom(sink *o, amb_term a, atom_style style)
{
    size_t n;
    const uint8_t *s = (const uint8_t *)amb_atom_name(a, &n);
    if (s == NULL) {
        amb__print_fail(o, AMB_EBADARG);
        return;
    }
    if (!needs_quotes(s, n, style)) {
        amb__print_emit(o, s, n);
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
        bool latin =
            c >= 160 && (c <= 255 || style == ATOM_ERTS || style == ATOM_UNICODE);
        if (!simple && !latin) {
            amb__print_emit(o, s + plain, i - plain);
            emit_quoted_char(o, c, s + i, k, style);
            plain = i + k;
        }
        i += k;
    }
    amb__print_emit(o, s + plain, n - plain);
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
        amb__print_u64(o, p[i]);
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
        amb__print_fail(o, AMB_EBADARG);
        return;
    }
    emit_str(o, "<<");
    emit_bytes_list(o, data, size, tail != 0);
    if (tail != 0) {
        /* The tail's bits sit at the high end of its byte. */
        amb__print_u64(o, (uint64_t)(data[size] >> (8 - tail)));
        emit_char(o, ':');
        amb__print_u64(o, tail);
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
        amb__print_fail(o, rc);
        return;
    }
    amb__print_emit(o, text, n);
    amb__free(text);
}

static void emit_float(sink *o, amb_term t)
{
    char text[AMB__PRINT_FLOAT_MAX];
    amb__print_emit(o, text, amb__print_float_format(amb__float_value(t), text));
}

static void emit_fun(sink *o, amb_term t)
{
    amb_term mod, fun;
    uint8_t arity;
    const uint8_t *ext;
    size_t len;
    if (amb_export_get(t, &mod, &fun, &arity) == 0) {
        emit_str(o, "fun ");
        amb__print_atom(o, mod, ATOM_ERTS);
        emit_char(o, ':');
        amb__print_atom(o, fun, ATOM_ERTS);
        emit_char(o, '/');
        amb__print_u64(o, arity);
    } else if (amb_closure_get(t, &ext, &len) == 0) {
        emit_str(o, "#Fun<<<");
        emit_bytes_list(o, ext, len, false);
        emit_str(o, ">>>");
    } else {
        amb__print_fail(o, AMB_EBADARG);
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
        amb__print_atom(o, node, ATOM_QUOTED);
        emit_char(o, '.');
        amb__print_u64(o, a);
        emit_char(o, '.');
        amb__print_u64(o, b);
        emit_char(o, '.');
        amb__print_u64(o, creation);
        emit_char(o, '>');
        return;
    case AMB_T_REF:
        if ((rc = amb_ref_get(t, words, AMB_COUNTOF(words), &node, &creation, &nwords)) !=
            0)
            break;
        emit_str(o, "#Ref<");
        amb__print_atom(o, node, ATOM_QUOTED);
        emit_char(o, '.');
        amb__print_u64(o, creation);
        for (size_t i = 0; i < nwords; i++) {
            emit_char(o, '.');
            amb__print_u64(o, words[i]);
        }
        emit_char(o, '>');
        return;
    default:
        if ((rc = amb_port_get(t, &node, &id, &creation)) != 0)
            break;
        emit_str(o, "#Port<");
        amb__print_atom(o, node, ATOM_QUOTED);
        emit_char(o, '.');
        amb__print_u64(o, id);
        emit_char(o, '.');
        amb__print_u64(o, creation);
        emit_char(o, '>');
        return;
    }
    amb__print_fail(o, AMB_EBADARG);
}

/* ---------------------------------------------------------------------------
 * The walk
 *
 * An unfinished container is a frame on the word stack, its tag on top:
 *
 *   FR_TUPLE  [next element pointer, elements left, FR_TUPLE]
 *   FR_LIST   [rest of the list, FR_LIST]
 *   FR_MAP    [map node, position, FR_MAP]  one per open node of a map
 *             (amb__map_node_next); a trie map has one per level open
 *   FR_CHAR   [character, FR_CHAR]  the '}' of a map or 1-tuple, the ']'
 *             after an improper tail
 *
 * Frames are updated in place, so each container costs one push (a trie
 * map one per level of the path to the pair being printed).
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
    bool pretty = (o->flags & AMB_PRINT_PRETTY) != 0;
    /* True from a map's "#{" until its first key is written: the one key
     * with no ',' before it. A map in a key or value of another opens and
     * finishes while the outer map's first key is already out, so one flag
     * serves every level. */
    bool first_key = false;

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
            amb__print_atom(o, t, pretty ? ATOM_UNICODE : ATOM_IOLIB);
            break;
        case AMB_T_NIL:
            emit_str(o, "[]");
            break;
        case AMB_T_BITSTRING:
            if (!pretty || !amb__print_pretty_binary(o, t))
                emit_bitstring(o, t);
            break;
        case AMB_T_FUN:
            if (!pretty || amb__box_kind(t) != AMB__K_CLOSURE ||
                !amb__print_pretty_id(o, t))
                emit_fun(o, t);
            break;
        case AMB_T_PID:
        case AMB_T_REF:
        case AMB_T_PORT:
            if (!pretty || !amb__print_pretty_id(o, t))
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
            if (pretty && amb__print_pretty_is_string(t)) {
                amb__print_pretty_string(o, t);
                break;
            }
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
            first_key = true;
            if ((rc = push2(&st, '}', FR_CHAR)) != 0 ||
                (rc = push3(&st, t, 0, FR_MAP)) != 0)
                goto done;
            break;
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
                size_t pos = (size_t)top[-1];
                enum amb__map_step step = amb__map_node_next(top[-2], &pos, &t);
                top[-1] = pos;
                if (step == AMB__MAP_END) {
                    st.len -= 3;
                    continue;
                }
                if (step == AMB__MAP_CHILD) {
                    if ((rc = push3(&st, t, 0, FR_MAP)) != 0)
                        goto done;
                    continue;
                }
                if (step == AMB__MAP_VALUE) {
                    emit_str(o, " => ");
                } else if (first_key) {
                    first_key = false;
                } else {
                    emit_char(o, ',');
                }
                break;
            }
            emit_char(o, (char)top[-1]); /* FR_CHAR */
            st.len -= 2;
        }
    }
done:
    amb__wstack_free(&st);
    if (rc != 0)
        amb__print_fail(o, rc);
    return o->err;
}

/* ---------------------------------------------------------------------------
 * The public entry points
 * ------------------------------------------------------------------------ */

static bool flags_ok(unsigned flags)
{
    return (flags & ~AMB_PRINT_PRETTY) == 0;
}

int amb_print_ex(amb_term t, unsigned flags, char *buf, size_t cap, size_t *len)
{
    if ((buf == NULL && cap > 0) || t == AMB_NONE || !flags_ok(flags))
        return AMB__MISUSE();
    sink o = {.mode = AMB__PRINT_FIXED, .flags = flags, .fixed = buf, .cap = cap};
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

int amb_print_alloc_ex(amb_term t, unsigned flags, char **out_text, size_t *len)
{
    if (out_text == NULL || t == AMB_NONE || !flags_ok(flags))
        return AMB__MISUSE();
    amb__buf b;
    amb__buf_init(&b);
    sink o = {.mode = AMB__PRINT_BUF, .flags = flags, .buf = &b};
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

int amb_fprint_ex(amb_term t, unsigned flags, FILE *f)
{
    if (f == NULL || t == AMB_NONE || !flags_ok(flags))
        return AMB__MISUSE();
    sink o = {.mode = AMB__PRINT_FILE, .flags = flags, .file = f};
    int rc = walk(&o, t);
    flush_file(&o);
    return rc != 0 ? rc : o.err;
}

int amb_print(amb_term t, char *buf, size_t cap, size_t *len)
{
    return amb_print_ex(t, 0, buf, cap, len);
}

int amb_print_alloc(amb_term t, char **out_text, size_t *len)
{
    return amb_print_alloc_ex(t, 0, out_text, len);
}

int amb_fprint(amb_term t, FILE *f)
{
    return amb_fprint_ex(t, 0, f);
}

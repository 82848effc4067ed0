/*
 * pack.c - format strings: amb_pack builds a term from Erlang term syntax
 * with ~x directives standing for C values; amb_match matches a term
 * against the same syntax used as a pattern and stores what the directives
 * bind. Both run the one grammar of parse.c (docs/design/syntax.md):
 *
 *   - amb_pack is amb__parse_build with a hook that turns each directive
 *     into a term from the va_list.
 *   - amb_match walks the parser's events and the term side by side. Each
 *     open container of the pattern keeps the term it is matching in its
 *     parser frame (user[0]: the tuple or map; user[1]: the list cursor, or
 *     the value found for the current map key). Literals are compared with
 *     the term where they stand in the text, so matching builds nothing and
 *     allocates nothing, except for two rare literals: an integer beyond 64
 *     bits (converted to limbs) and a compound map key (built on a scratch
 *     heap, then looked up).
 *
 * Invariants:
 *   - amb_match stores nothing unless the whole term matches: bindings are
 *     collected in an array of AMB_FORMAT_MAX_DIRECTIVES entries and written
 *     through the caller's pointers only at the end.
 *   - A format error is found whatever the term: after the first mismatch
 *     the matcher keeps reading the format to its end (checking it, taking
 *     no more arguments), so a bad format is AMB_EFORMAT every time, not
 *     only when a matching term happens to arrive.
 *   - Arguments are taken from the va_list strictly in directive order,
 *     and only while the match can still succeed.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "scan.h"
#include "term_internal.h"

static void set_error(amb_format_error *err, const amb__parser *p)
{
    if (err == NULL)
        return;
    err->position = p->sc.err_pos;
    const char *msg = p->sc.err_msg != NULL ? p->sc.err_msg : amb_strerror(p->sc.err);
    size_t n = strlen(msg);
    if (n >= sizeof err->text)
        n = sizeof err->text - 1;
    memcpy(err->text, msg, n);
    err->text[n] = '\0';
}

/* The public code for the parser's error: bad syntax and nesting beyond
 * the limit are faults of the format. */
static int format_code(int rc)
{
    return rc == AMB_ESYNTAX || rc == AMB_EDEPTH ? AMB_EFORMAT : rc;
}

/* ---------------------------------------------------------------------------
 * amb_pack
 * ------------------------------------------------------------------------ */

typedef struct pack_ctx {
    amb_heap *heap;
    va_list ap;
} pack_ctx;

static int bad_value(amb__parser *p, const amb__parse_ev *ev, const char *msg)
{
    return amb__parse_fail(p, AMB_EBADARG, ev->pos, msg);
}

static int pack_hook(void *ud, amb__parser *p, const amb__parse_ev *ev, amb_term *out)
{
    pack_ctx *c = ud;
    amb_term t = AMB_NONE;
    if (ev->kind == AMB__EV_WILDCARD)
        return amb__parse_fail(p, AMB_EFORMAT, ev->pos, "'_' is not allowed in amb_pack");
    switch ((char)ev->tok.v.u) {
    case 'a': {
        const char *s = va_arg(c->ap, const char *);
        if (s == NULL)
            return amb__parse_fail(p, AMB__MISUSE(), ev->pos, "~a: NULL name");
        int rc = amb_atom_new(s, strlen(s), out);
        if (rc == AMB_EBADARG)
            return bad_value(p, ev, "~a: not valid UTF-8 or longer than 255 characters");
        if (rc < 0)
            return amb__parse_fail(p, rc, ev->pos, "~a: cannot make the atom");
        return 0;
    }
    case 'i':
        t = amb_int(c->heap, va_arg(c->ap, int));
        break;
    case 'l':
        t = amb_int(c->heap, va_arg(c->ap, int64_t));
        break;
    case 'u':
        t = amb_uint(c->heap, va_arg(c->ap, uint64_t));
        break;
    case 'f': {
        double d = va_arg(c->ap, double);
        if (!isfinite(d))
            return bad_value(p, ev, "~f: NaN and infinities are not Erlang floats");
        t = amb_float(c->heap, d);
        break;
    }
    case 's': {
        const char *s = va_arg(c->ap, const char *);
        if (s == NULL)
            return amb__parse_fail(p, AMB__MISUSE(), ev->pos, "~s: NULL string");
        size_t len = strlen(s);
        if (!amb__utf8_valid((const uint8_t *)s, len, NULL))
            return bad_value(p, ev, "~s: not valid UTF-8");
        t = amb_string_n(c->heap, s, len);
        break;
    }
    case 'S': {
        const char *s = va_arg(c->ap, const char *);
        if (s == NULL)
            return amb__parse_fail(p, AMB__MISUSE(), ev->pos, "~S: NULL string");
        t = amb_binary(c->heap, s, strlen(s));
        break;
    }
    case 'b': {
        const void *data = va_arg(c->ap, const void *);
        size_t size = va_arg(c->ap, size_t);
        if (data == NULL && size > 0)
            return amb__parse_fail(p, AMB__MISUSE(), ev->pos, "~b: NULL data");
        t = amb_binary(c->heap, data, size);
        break;
    }
    default: { /* w t p r v: a term */
        amb_term v = va_arg(c->ap, amb_term);
        char d = (char)ev->tok.v.u;
        if (v == AMB_NONE)
            return bad_value(p, ev,
                             "AMB_NONE given for a term (an earlier build failed)");
        if (d == 'p' && amb_type_of(v) != AMB_T_PID)
            return bad_value(p, ev, "~p: not a pid");
        if (d == 'r' && amb_type_of(v) != AMB_T_REF)
            return bad_value(p, ev, "~r: not a reference");
        *out = v;
        return 0;
    }
    }
    if (t == AMB_NONE)
        return amb__parse_fail(p, AMB_ENOMEM, ev->pos, "out of memory");
    *out = t;
    return 0;
}

int amb_vpack(amb_heap *heap, amb_term *out, amb_format_error *err, const char *fmt,
              va_list ap)
{
    if (heap == NULL || out == NULL || fmt == NULL)
        return AMB__MISUSE();
    pack_ctx c = {.heap = heap};
    amb__parser p;
    amb__parse_ev ev;
    amb_term t;
    va_copy(c.ap, ap);
    amb__parse_init_format(&p, fmt);
    int rc = amb__parse_build(&p, heap, NULL, pack_hook, &c, &t);
    if (rc == 0)
        rc = amb__parse_next(&p, &ev);
    va_end(c.ap);
    if (rc == 0)
        *out = t;
    else
        set_error(err, &p);
    amb__parse_free(&p);
    return format_code(rc);
}

int amb_pack_ex(amb_heap *heap, amb_term *out, amb_format_error *err, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = amb_vpack(heap, out, err, fmt, ap);
    va_end(ap);
    return rc;
}

amb_term amb_pack(amb_heap *heap, const char *fmt, ...)
{
    va_list ap;
    amb_term t;
    va_start(ap, fmt);
    int rc = amb_vpack(heap, &t, NULL, fmt, ap);
    va_end(ap);
    return rc == 0 ? t : AMB_NONE;
}

/* ---------------------------------------------------------------------------
 * Literal patterns: compare a leaf of the format with a term, in place.
 * ------------------------------------------------------------------------ */

/* True when atom a is named by the ATOM token tok. */
static bool atom_is(const char *text, const amb__tok *tok, amb_term a)
{
    size_t n;
    const char *name = amb_atom_name(a, &n);
    if (name == NULL)
        return false;
    if (!(tok->flags & AMB__TF_ESCAPES)) {
        size_t q = (tok->flags & AMB__TF_QUOTED) ? 1 : 0;
        return tok->end - tok->start - 2 * q == n &&
               memcmp(text + tok->start + q, name, n) == 0;
    }
    /* Decode and compare as we go: no buffer needed. */
    amb__scan_chars c;
    uint32_t cp;
    size_t at = 0;
    amb__scan_chars_init(&c, text, tok->start, tok->end);
    while (amb__scan_chars_next(&c, &cp)) {
        uint8_t enc[4];
        size_t k = amb__utf8_encode(cp, enc);
        if (at + k > n || memcmp(name + at, enc, k) != 0)
            return false;
        at += k;
    }
    return at == n;
}

/* The result of comparing a literal: a match, no match, or an error (only
 * AMB_ENOMEM, from the limbs of a huge integer literal). */
enum { LIT_NO = 0, LIT_YES = 1 };

static int int_matches(const char *text, const amb__parse_ev *ev, amb_term t)
{
    const amb__tok *tok = &ev->tok;
    if (tok->kind == AMB__TK_CHAR || !(tok->flags & AMB__TF_BIG)) {
        uint64_t mag = tok->v.u;
        bool neg = ev->neg && mag != 0; /* -0 is 0 */
        if (amb_is_small(t)) {
            int64_t v = amb_small_value(t);
            uint64_t vm = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
            return (v < 0) == neg && vm == mag;
        }
        return amb__is_boxed(t) && amb__box_kind(t) == AMB__K_BIG &&
               amb__big_ndigits(t) == 1 && amb__big_negative(t) == neg &&
               amb__big_digits(t)[0] == mag;
    }
    /* Beyond 64 bits: only a big integer can be equal. */
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_BIG ||
        amb__big_negative(t) != ev->neg)
        return LIT_NO;
    uint64_t *limbs;
    size_t n;
    int rc = amb__scan_number_limbs(text, tok, AMB_BIG_MAX_BYTES / 8, &limbs, &n);
    if (rc == AMB_ESYSLIMIT)
        return LIT_NO; /* larger than any integer term */
    if (rc < 0)
        return rc;
    bool eq = n == amb__big_ndigits(t) && memcmp(limbs, amb__big_digits(t), n * 8) == 0;
    amb__free(limbs);
    return eq;
}

static bool string_matches(const char *text, const amb__tok *tok, amb_term t)
{
    amb__scan_chars c;
    uint32_t cp;
    amb__scan_chars_init(&c, text, tok->start, tok->end);
    while (amb__scan_chars_next(&c, &cp)) {
        if (!amb_is_cons(t) || amb__cons_cell(t)[0] != AMB_SMALL(cp))
            return false;
        t = amb__cons_cell(t)[1];
    }
    return t == AMB_NIL;
}

/* The n bits at bit offset at of data, MSB first, as the low bits. */
static uint64_t get_bits(const uint8_t *data, size_t at, unsigned n)
{
    if (at % 8 == 0 && n == 8)
        return data[at / 8];
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++, at++)
        v = v << 1 | ((data[at / 8] >> (7 - at % 8)) & 1u);
    return v;
}

/* True when the bits of a BINARY or CLOSURE token equal data's nbits bits. */
static bool bits_match(const amb__parser *p, const amb__tok *tok, const uint8_t *data,
                       size_t nbits)
{
    amb__scan_bits it;
    uint64_t v;
    unsigned n;
    size_t at = 0;
    amb__scan_bits_init(&it, p->sc.text, p->sc.len, tok);
    while (amb__scan_bits_next(&it, &v, &n)) {
        if (at + n > nbits || get_bits(data, at, n) != v)
            return false;
        at += n;
    }
    return at == nbits;
}

static bool form_matches(const amb__parser *p, const amb__tok *tok, amb_term t)
{
    amb__scan_parts f;
    amb_term node;
    uint64_t num[6];
    size_t n;
    if (tok->kind == AMB__TK_PID) {
        uint32_t id, serial, creation;
        if (amb_pid_get(t, &node, &id, &serial, &creation) != 0)
            return false;
        num[0] = id, num[1] = serial, num[2] = creation, n = 3;
    } else if (tok->kind == AMB__TK_PORT) {
        uint64_t id;
        uint32_t creation;
        if (amb_port_get(t, &node, &id, &creation) != 0)
            return false;
        num[0] = id, num[1] = creation, n = 2;
    } else {
        uint32_t creation, words[AMB_REF_MAX_WORDS];
        size_t nwords;
        if (amb_ref_get(t, words, AMB_REF_MAX_WORDS, &node, &creation, &nwords) != 0)
            return false;
        num[0] = creation;
        for (size_t i = 0; i < nwords; i++)
            num[1 + i] = words[i];
        n = 1 + nwords;
    }
    amb__scan_parts_of(p->sc.text, p->sc.len, tok, &f);
    return f.n == n && memcmp(f.num, num, n * sizeof num[0]) == 0 &&
           atom_is(p->sc.text, &f.node, node);
}

/* LIT_YES, LIT_NO or AMB_ENOMEM. */
static int leaf_matches(const amb__parser *p, const amb__parse_ev *ev, amb_term t)
{
    const amb__tok *tok = &ev->tok;
    const char *text = p->sc.text;
    switch (tok->kind) {
    case AMB__TK_ATOM:
        return amb_is_atom(t) && atom_is(text, tok, t);
    case AMB__TK_INT:
    case AMB__TK_CHAR:
        return int_matches(text, ev, t);
    case AMB__TK_FLOAT:
        /* Exact equality, as in an Erlang pattern: 1.0 does not match 1, and
         * -0.0 matches 0.0 as amb_equal (OTP 25) says. */
        return amb__is_boxed(t) && amb__box_kind(t) == AMB__K_FLOAT &&
               amb__float_value(t) == (ev->neg ? -tok->v.d : tok->v.d);
    case AMB__TK_STRING:
        return string_matches(text, tok, t);
    case AMB__TK_BINARY: {
        const uint8_t *data;
        size_t size;
        unsigned tail;
        if (amb_bitstring_get(t, &data, &size, &tail) != 0)
            return false;
        return bits_match(p, tok, data, size * 8 + tail);
    }
    case AMB__TK_CLOSURE: {
        const uint8_t *ext;
        size_t len;
        if (amb_closure_get(t, &ext, &len) != 0)
            return false;
        return bits_match(p, tok, ext, len * 8);
    }
    default:
        return form_matches(p, tok, t);
    }
}

static bool export_matches(const amb__parser *p, const amb__parse_ev *ev, amb_term t)
{
    amb_term m, f;
    uint8_t arity;
    return amb_export_get(t, &m, &f, &arity) == 0 && arity == ev->arity &&
           atom_is(p->sc.text, &ev->tok, m) && atom_is(p->sc.text, &ev->tok2, f);
}

/* ---------------------------------------------------------------------------
 * amb_match
 * ------------------------------------------------------------------------ */

typedef struct binding {
    amb_term t;
    void *dst;
    union {
        void *dst2; /* ~b: size_t * */
        size_t cap; /* ~s, ~S */
    } x;
    char dir;
} binding;

typedef struct matcher {
    amb__parser p;
    va_list ap;
    bool failed;  /* the term does not match; the format is still read */
    bool bufsize; /* a ~s buffer is too small (reported only on a match) */
    size_t nb;
    amb_heap *scratch; /* for compound map keys; made when needed */
    binding b[AMB_FORMAT_MAX_DIRECTIVES];
} matcher;

/* A NULL where the directive needs a pointer: misuse (asserted in debug
 * builds with AMB_ABORT_ON_MISUSE=1), AMB_EBADARG. */
static int misuse_at(matcher *m, const amb__parse_ev *ev, const char *msg)
{
    return amb__parse_fail(&m->p, AMB__MISUSE(), ev->pos, msg);
}

/* Takes a ~v / ~r argument. */
static int take_term(matcher *m, const amb__parse_ev *ev, amb_term *v)
{
    *v = va_arg(m->ap, amb_term);
    if (*v == AMB_NONE)
        return misuse_at(m, ev, "AMB_NONE given for a term");
    return 0;
}

static bool is_key_directive(const amb__parse_ev *ev)
{
    char d = (char)ev->tok.v.u;
    return ev->kind == AMB__EV_DIRECTIVE && (d == 'v' || d == 'r');
}

static int bad_key(matcher *m, const amb__parse_ev *ev)
{
    return amb__parse_fail(&m->p, AMB_EFORMAT, ev->pos,
                           "a map key in a pattern must be a literal, ~v or ~r");
}

/* The hook that builds compound map keys: only ~v and ~r may appear. */
static int key_hook(void *ud, amb__parser *p, const amb__parse_ev *ev, amb_term *out)
{
    matcher *m = ud;
    if (!is_key_directive(ev))
        return bad_key(m, ev);
    return take_term(m, ev, out);
}

/* A directive where term t stands (t is meaningless once m->failed). */
static int directive(matcher *m, const amb__parse_ev *ev, amb_term t)
{
    char d = (char)ev->tok.v.u;
    if (ev->in_key && d != 'v' && d != 'r')
        return bad_key(m, ev);
    if (m->failed)
        return 0;
    binding *b = &m->b[m->nb];
    bool ok;
    b->t = t;
    b->dir = d;
    switch (d) {
    case 'r':
    case 'v': {
        amb_term v;
        int rc = take_term(m, ev, &v);
        if (rc < 0)
            return rc;
        m->failed = !amb_equal(t, v);
        return 0; /* binds nothing */
    }
    case 's': {
        b->dst = va_arg(m->ap, char *);
        b->x.cap = va_arg(m->ap, size_t);
        if (b->dst == NULL)
            return misuse_at(m, ev, "~s: NULL buffer");
        size_t len;
        int rc = amb_string_get(t, NULL, 0, &len);
        ok = rc == 0 || rc == AMB_EBUFSIZE;
        if (ok && len >= b->x.cap)
            m->bufsize = true;
        break;
    }
    case 'S': {
        b->dst = va_arg(m->ap, char *);
        b->x.cap = va_arg(m->ap, size_t);
        if (b->dst == NULL)
            return misuse_at(m, ev, "~S: NULL buffer");
        /* A C string cannot hold a NUL byte: such a binary does not match. */
        const uint8_t *data;
        size_t size;
        ok = amb_binary_get(t, &data, &size) == 0 && memchr(data, 0, size) == NULL;
        if (ok && size >= b->x.cap)
            m->bufsize = true;
        break;
    }
    case 'b':
        b->dst = va_arg(m->ap, const uint8_t **);
        b->x.dst2 = va_arg(m->ap, size_t *);
        if (b->dst == NULL || b->x.dst2 == NULL)
            return misuse_at(m, ev, "~b: NULL pointer");
        ok = amb_is_binary(t);
        break;
    default:
        b->dst = va_arg(m->ap, void *);
        if (b->dst == NULL)
            return misuse_at(m, ev, "NULL pointer for a directive");
        switch (d) {
        case 'a':
            ok = amb_is_atom(t);
            break;
        case 'i': {
            int64_t v;
            ok = amb_int_get(t, &v) == 0 && v >= INT_MIN && v <= INT_MAX;
            break;
        }
        case 'l': {
            int64_t v;
            ok = amb_int_get(t, &v) == 0;
            break;
        }
        case 'u': {
            uint64_t v;
            ok = amb_uint_get(t, &v) == 0;
            break;
        }
        case 'f':
            ok = amb_type_of(t) == AMB_T_FLOAT;
            break;
        case 'p':
            ok = amb_type_of(t) == AMB_T_PID;
            break;
        default: /* w t */
            ok = true;
            break;
        }
        break;
    }
    if (ok)
        m->nb++;
    else
        m->failed = true;
    return 0;
}

/* Finds the map key that starts with event ev in the map of frame f and
 * leaves its value in f->user[1]; consumes the whole key from the parser. */
static int map_key(matcher *m, const amb__parse_ev *ev, amb__parse_frame *f)
{
    amb_term key = AMB_NONE, map = f->user[0];
    int rc;
    if (ev->kind == AMB__EV_LEAF && ev->tok.kind == AMB__TK_ATOM) {
        /* An atom that does not exist cannot be a key of any map. */
        char buf[AMB_ATOM_MAX_BYTES];
        size_t len;
        const char *name = amb__scan_atom_name(m->p.sc.text, &ev->tok, buf, &len);
        if (amb_atom_existing(name, len, &key) != 0) {
            m->failed = true;
            return 0;
        }
    } else if (ev->kind == AMB__EV_LEAF && ev->tok.kind == AMB__TK_CHAR) {
        key = AMB_SMALL(ev->neg ? -(int64_t)ev->tok.v.u : (int64_t)ev->tok.v.u);
    } else if (ev->kind == AMB__EV_LEAF && ev->tok.kind == AMB__TK_INT &&
               !(ev->tok.flags & AMB__TF_BIG) && ev->tok.v.u <= (uint64_t)AMB_SMALL_MAX) {
        key = AMB_SMALL(ev->neg ? -(int64_t)ev->tok.v.u : (int64_t)ev->tok.v.u);
    } else if (ev->kind == AMB__EV_DIRECTIVE || ev->kind == AMB__EV_WILDCARD) {
        if (!is_key_directive(ev))
            return bad_key(m, ev);
        if ((rc = take_term(m, ev, &key)) < 0)
            return rc;
    } else {
        /* Anything else is built, then looked up: rare, and the only place
         * amb_match allocates for a literal. */
        if (m->scratch == NULL && amb_heap_new(&m->scratch) != 0)
            return amb__parse_fail(&m->p, AMB_ENOMEM, ev->pos, "out of memory");
        rc = amb__parse_build(&m->p, m->scratch, ev, key_hook, m, &key);
        if (rc == AMB_ESYSLIMIT) {
            /* An integer too large for any term, or a full atom table: no
             * map can hold this key. The rest of the key was not read, so
             * the format cannot be checked further: report no match. */
            m->p.sc.err = 0;
            m->failed = true;
            return AMB_ENOMATCH;
        }
        if (rc < 0)
            return rc;
    }
    if (amb_map_get(map, key, &f->user[1]) != 0)
        m->failed = true;
    return 0;
}

/* The term that a value at ev's slot must match, from its parent frame f;
 * false when there is none (a tuple too short, a list too short). */
static bool slot_term(const amb__parse_ev *ev, amb__parse_frame *f, amb_term root,
                      amb_term *t)
{
    switch (ev->slot) {
    case AMB__SLOT_TOP:
        *t = root;
        return true;
    case AMB__SLOT_ELEM:
        if (f->container == AMB__C_TUPLE) {
            size_t i = f->count - 1;
            if (i >= AMB__HDR_PAYLOAD(amb__box(f->user[0])[0]))
                return false;
            *t = amb__box(f->user[0])[1 + i];
            return true;
        }
        if (!amb_is_cons(f->user[1]))
            return false;
        *t = amb__cons_cell(f->user[1])[0];
        f->user[1] = amb__cons_cell(f->user[1])[1];
        return true;
    default: /* TAIL: the rest of the list; VALUE: the value found for the key */
        *t = f->user[1];
        return true;
    }
}

static bool open_matches(const amb__parse_ev *ev, amb_term t, amb__parse_frame *f)
{
    switch (ev->container) {
    case AMB__C_TUPLE:
        f->user[0] = t;
        return amb_is_tuple(t);
    case AMB__C_LIST:
        f->user[1] = t;
        return amb_is_list(t);
    default:
        f->user[0] = t;
        return amb_is_map(t);
    }
}

/* What the frame just closed says about the term: a tuple's arity must be
 * what the pattern listed, a list without a '|' tail must end there. Maps
 * match as Erlang map patterns do: the listed keys, and any others. */
static bool close_matches(const amb__parse_ev *ev, const amb__parse_frame *f)
{
    if (ev->container == AMB__C_TUPLE)
        return AMB__HDR_PAYLOAD(amb__box(f->user[0])[0]) == ev->count;
    if (ev->container == AMB__C_LIST)
        return ev->tail || f->user[1] == AMB_NIL;
    return true;
}

static int match_events(matcher *m, amb_term root)
{
    amb__parser *p = &m->p;
    amb__parse_ev ev;
    int rc;
    for (;;) {
        if ((rc = amb__parse_next(p, &ev)) < 0)
            return rc;
        if (ev.kind == AMB__EV_EOF)
            return 0;
        if (ev.kind == AMB__EV_CLOSE) {
            /* The closed frame's data is still in place above the top. */
            if (!m->failed && !close_matches(&ev, &p->frames[p->depth]))
                m->failed = true;
            continue;
        }
        amb__parse_frame *parent = &p->frames[p->depth - 1 - (ev.kind == AMB__EV_OPEN)];
        if (ev.slot == AMB__SLOT_KEY && !m->failed) {
            if ((rc = map_key(m, &ev, parent)) < 0)
                return rc;
            continue;
        }
        amb_term t = AMB_NONE;
        if (!m->failed && !ev.in_key && !slot_term(&ev, parent, root, &t))
            m->failed = true;
        switch (ev.kind) {
        case AMB__EV_OPEN:
            if (!m->failed && !ev.in_key &&
                !open_matches(&ev, t, &p->frames[p->depth - 1]))
                m->failed = true;
            break;
        case AMB__EV_LEAF:
            if (!m->failed && !ev.in_key) {
                if ((rc = leaf_matches(p, &ev, t)) < 0)
                    return amb__parse_fail(p, rc, ev.pos, "out of memory");
                m->failed = rc == LIT_NO;
            }
            break;
        case AMB__EV_EXPORT:
            if (!m->failed && !ev.in_key && !export_matches(p, &ev, t))
                m->failed = true;
            break;
        case AMB__EV_DIRECTIVE:
            if ((rc = directive(m, &ev, t)) < 0)
                return rc;
            break;
        default: /* _ matches anything, but cannot be a map key */
            if (ev.in_key)
                return bad_key(m, &ev);
            break;
        }
    }
}

/* Writes every binding through the caller's pointers. */
static void commit(matcher *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        binding *b = &m->b[i];
        int64_t i64;
        uint64_t u64;
        size_t len;
        switch (b->dir) {
        case 'a':
            *(const char **)b->dst = amb_atom_name(b->t, NULL);
            break;
        case 'i':
            (void)amb_int_get(b->t, &i64);
            *(int *)b->dst = (int)i64;
            break;
        case 'l':
            (void)amb_int_get(b->t, &i64);
            *(int64_t *)b->dst = i64;
            break;
        case 'u':
            (void)amb_uint_get(b->t, &u64);
            *(uint64_t *)b->dst = u64;
            break;
        case 'f':
            (void)amb_float_get(b->t, (double *)b->dst);
            break;
        case 's':
            (void)amb_string_get(b->t, b->dst, b->x.cap, &len);
            break;
        case 'S': {
            const uint8_t *data;
            size_t size;
            (void)amb_binary_get(b->t, &data, &size);
            memcpy(b->dst, data, size);
            ((char *)b->dst)[size] = '\0';
            break;
        }
        case 'b':
            (void)amb_binary_get(b->t, (const uint8_t **)b->dst, (size_t *)b->x.dst2);
            break;
        default: /* w t p */
            *(amb_term *)b->dst = b->t;
            break;
        }
    }
}

int amb_vmatch(amb_term t, amb_format_error *err, const char *fmt, va_list ap)
{
    if (t == AMB_NONE || fmt == NULL)
        return AMB__MISUSE();
    matcher m;
    m.failed = false;
    m.bufsize = false;
    m.nb = 0;
    m.scratch = NULL;
    va_copy(m.ap, ap);
    amb__parse_init_format(&m.p, fmt);
    int rc = match_events(&m, t);
    va_end(m.ap);
    if (rc == AMB_ENOMATCH) {
        /* map_key gave up reading the format (see there). */
    } else if (rc < 0) {
        set_error(err, &m.p);
        rc = format_code(rc);
    } else if (m.failed) {
        rc = AMB_ENOMATCH;
    } else if (m.bufsize) {
        rc = AMB_EBUFSIZE;
    } else {
        commit(&m);
    }
    amb_heap_free(m.scratch);
    amb__parse_free(&m.p);
    return rc;
}

int amb_match_ex(amb_term t, amb_format_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = amb_vmatch(t, err, fmt, ap);
    va_end(ap);
    return rc;
}

int amb_match(amb_term t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = amb_vmatch(t, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

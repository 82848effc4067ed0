/*
 * parse.c - the grammar of Erlang term syntax, written once: a pull parser
 * (amb__parse_next) that turns the tokens of scan.c into events, a builder
 * (amb__parse_build) that makes terms from the events, and amb_parse on top.
 * pack.c uses the same parser for format strings: the builder with a hook
 * for ~x directives (amb_pack), and its own walker for amb_match.
 *
 *   value  := leaf | '-' number | '+' number | 'fun' atom ':' atom '/' int
 *           | '{' [value {',' value}] '}'
 *           | '[' [value {',' value} ['|' value]] ']'
 *           | '#{' [value '=>' value {',' value '=>' value}] '}'
 *           | directive | '_'                      (format mode only)
 *   term   := value ['.']
 *
 * Invariants:
 *   - No recursion: open containers are frames on p->frames, an array that
 *     starts inline (no allocation for shallow terms) and grows on the heap
 *     up to AMB_PARSE_MAX_DEPTH + 1 frames. The builder keeps finished
 *     values on an explicit amb__wstack. So the C stack use is constant
 *     whatever the nesting, which matters on small process stacks.
 *   - Errors are sticky: after the first one every call returns it, with
 *     the position and message of the first.
 *   - Memory is bounded by the input: at most one frame per open bracket,
 *     one stack word per value, and terms no larger than a small multiple of
 *     the text (binary segments are at most 64 bits each).
 */
#include <string.h>

#include "scan.h"
#include "term_internal.h"

enum state {
    ST_FIRST,   /* just opened: a value or the closing bracket */
    ST_VALUE,   /* a value is required */
    ST_AFTER,   /* after a value: ',' or the closing bracket ('|' in lists) */
    ST_ARROW,   /* after a map key: '=>' */
    ST_TAIL,    /* after '|': the tail value */
    ST_TAILEND, /* after the tail: ']' */
    ST_END,     /* top level, after the term: '.' or the end */
    ST_DONE,    /* top level, after the '.': the end */
};

/* ---------------------------------------------------------------------------
 * The format cache
 *
 * Formats are mostly string literals used again and again (a gen_server
 * call matches every reply with "{reply,~r,~w}"), and for short ones
 * scanning and parsing is most of the cost of amb_match. So each thread
 * keeps the event streams of its last few short formats, and a parser
 * over the same format replays them instead of scanning.
 *
 *   - The key is the format's address, but a hit also needs the same
 *     length and bytes (compared with the copy kept in the slot), so a
 *     buffer reused for another format is never mistaken for the old one.
 *     The spans in cached tokens are offsets, valid in any copy of the text.
 *   - Only complete, error-free parses are recorded: a bad format is parsed
 *     live every time and reports its error the same way every time.
 *   - Formats longer than CACHE_TEXT bytes, with more than CACHE_EVENTS
 *     events, nesting as deep as the parser's inline frames, or with a
 *     fun M:F/A (two tokens per event) are never cached. So a replay never
 *     allocates and never fails.
 *   - The cache is thread-local storage of fixed size (no allocation, so
 *     nothing to free and no interaction with the allocator hook), used only
 *     inside one call: a process that migrates between threads between
 *     calls does not care which thread's cache it meets. A slot in use (by
 *     a call nested in another on the same thread, from an allocator hook
 *     say) is left alone.
 * ------------------------------------------------------------------------ */

#define CACHE_TEXT   80
#define CACHE_EVENTS 20
#define CACHE_SLOTS  4

/* An event, compactly (all positions are below CACHE_TEXT). */
typedef struct cached_ev {
    uint8_t kind, slot, container, arity;
    bool neg, in_key, tail;
    uint8_t tok_kind, tok_flags, tok_base;
    uint16_t count, pos, start, end, digits;
    uint64_t v;
} cached_ev;

typedef struct amb__parse_cached {
    const char *key; /* the format's address; NULL: the slot is empty */
    bool busy;       /* a parser is replaying or recording it */
    size_t len;
    size_t nev;
    char text[CACHE_TEXT];
    cached_ev ev[CACHE_EVENTS];
} amb__parse_cached;

static _Thread_local amb__parse_cached cache[CACHE_SLOTS];

int amb__parse_fail(amb__parser *p, int code, size_t pos, const char *msg)
{
    if (p->sc.err == 0) {
        p->sc.err = code;
        p->sc.err_pos = pos;
        p->sc.err_msg = msg;
    }
    return p->sc.err;
}

void amb__parse_init(amb__parser *p, const char *text, size_t len, bool format)
{
    amb__scan_init(&p->sc, text, len, format);
    p->have_la = false;
    p->ndirectives = 0;
    p->replay = p->record = NULL;
    p->next_cached = 0;
    p->frames = p->inline_frames;
    p->cap = AMB__PARSE_INLINE_FRAMES;
    p->depth = 1;
    p->frames[0] = (amb__parse_frame){.container = AMB__C_TOP, .state = ST_VALUE};
}

void amb__parse_free(amb__parser *p)
{
    /* A replay, or a recording cut short (the consumer stopped early),
     * gives its cache slot back. */
    if (p->replay != NULL)
        p->replay->busy = false;
    if (p->record != NULL)
        p->record->busy = false;
    p->replay = p->record = NULL;
    if (p->frames != p->inline_frames)
        amb__free(p->frames);
    p->frames = p->inline_frames;
}

static int read_tok(amb__parser *p, amb__tok *tok)
{
    if (p->have_la) {
        *tok = p->la;
        p->have_la = false;
        return 0;
    }
    return amb__scan_next(&p->sc, tok);
}

static int peek_tok(amb__parser *p, const amb__tok **tok)
{
    if (!p->have_la) {
        int rc = amb__scan_next(&p->sc, &p->la);
        if (rc < 0)
            return rc;
        p->have_la = true;
    }
    *tok = &p->la;
    return 0;
}

static int push_frame(amb__parser *p, uint8_t container, bool in_key, size_t pos)
{
    if (p->depth > AMB_PARSE_MAX_DEPTH)
        return amb__parse_fail(p, AMB_EDEPTH, pos,
                               "nested deeper than AMB_PARSE_MAX_DEPTH");
    if (p->depth == p->cap) {
        size_t cap = p->cap * 4;
        if (cap > AMB_PARSE_MAX_DEPTH + 1)
            cap = AMB_PARSE_MAX_DEPTH + 1;
        amb__parse_frame *f;
        if (p->frames == p->inline_frames) {
            f = amb__malloc(cap * sizeof *f);
            if (f != NULL)
                memcpy(f, p->frames, p->depth * sizeof *f);
        } else {
            f = amb__realloc(p->frames, cap * sizeof *f);
        }
        if (f == NULL)
            return amb__parse_fail(p, AMB_ENOMEM, pos, "out of memory");
        p->frames = f;
        p->cap = cap;
    }
    p->frames[p->depth++] =
        (amb__parse_frame){.container = container, .state = ST_FIRST, .in_key = in_key};
    return 0;
}

static uint8_t closer(uint8_t container)
{
    return container == AMB__C_LIST ? AMB__TK_RBRACKET : AMB__TK_RBRACE;
}

static int close_frame(amb__parser *p, amb__parse_ev *ev, const amb__tok *tok, bool tail)
{
    amb__parse_frame *f = &p->frames[--p->depth];
    ev->kind = AMB__EV_CLOSE;
    ev->container = f->container;
    ev->tail = tail;
    ev->count = f->container == AMB__C_MAP ? f->count / 2 : f->count;
    ev->pos = tok->start;
    return 0;
}

/* The message for a token that cannot follow a value in frame f. */
static const char *after_msg(const amb__parse_frame *f, const amb__tok *tok)
{
    bool eof = tok->kind == AMB__TK_EOF;
    switch (f->container) {
    case AMB__C_TUPLE:
        return eof ? "unclosed '{': expected ',' or '}'" : "expected ',' or '}'";
    case AMB__C_LIST:
        return eof ? "unclosed '[': expected ',', '|' or ']'"
                   : "expected ',', '|' or ']'";
    default:
        return eof ? "unclosed '#{': expected ',' or '}'" : "expected ',' or '}'";
    }
}

/* fun M:F/A, the keyword already read: M goes to ev->tok, F to ev->tok2. */
static int read_export(amb__parser *p, amb__parse_ev *ev)
{
    amb__tok t;
    int rc;
    if ((rc = read_tok(p, &ev->tok)) < 0)
        return rc;
    if (ev->tok.kind != AMB__TK_ATOM)
        return amb__parse_fail(p, AMB_ESYNTAX, ev->tok.start,
                               "fun needs Module:Function/Arity");
    if ((rc = read_tok(p, &t)) < 0)
        return rc;
    if (t.kind != AMB__TK_COLON)
        return amb__parse_fail(p, AMB_ESYNTAX, t.start, "expected ':'");
    if ((rc = read_tok(p, &ev->tok2)) < 0)
        return rc;
    if (ev->tok2.kind != AMB__TK_ATOM)
        return amb__parse_fail(p, AMB_ESYNTAX, ev->tok2.start,
                               "fun needs Module:Function/Arity");
    if ((rc = read_tok(p, &t)) < 0)
        return rc;
    if (t.kind != AMB__TK_SLASH)
        return amb__parse_fail(p, AMB_ESYNTAX, t.start, "expected '/'");
    if ((rc = read_tok(p, &t)) < 0)
        return rc;
    if (t.kind != AMB__TK_INT || (t.flags & AMB__TF_BIG) || t.v.u > 255)
        return amb__parse_fail(p, AMB_ESYNTAX, t.start, "fun arity must be 0..255");
    ev->arity = (uint8_t)t.v.u;
    ev->kind = AMB__EV_EXPORT;
    return 0;
}

/* The value that starts with the token in ev->tok, at the given slot of the
 * top frame. Tokens are scanned straight into the event rather than copied
 * there: copying a token just written field by field costs a store-forwarding
 * stall per token, which was a third of the time of a short format. */
static int read_value(amb__parser *p, uint8_t slot, amb__parse_ev *ev)
{
    const amb__parse_frame *f = &p->frames[p->depth - 1];
    amb__tok *tok = &ev->tok;
    int rc;
    ev->slot = slot;
    ev->in_key = f->in_key || slot == AMB__SLOT_KEY;
    ev->neg = false;
    ev->pos = tok->start;
    switch (tok->kind) {
    case AMB__TK_ATOM:
    case AMB__TK_INT:
    case AMB__TK_CHAR:
    case AMB__TK_FLOAT:
    case AMB__TK_BINARY:
    case AMB__TK_PID:
    case AMB__TK_REF:
    case AMB__TK_PORT:
    case AMB__TK_CLOSURE:
        ev->kind = AMB__EV_LEAF;
        return 0;
    case AMB__TK_STRING: {
        /* "a" "b" is "ab", as in Erlang: the leaf spans the whole run. */
        const amb__tok *next;
        ev->kind = AMB__EV_LEAF;
        while ((rc = peek_tok(p, &next)) == 0 && next->kind == AMB__TK_STRING) {
            tok->end = next->end;
            tok->flags |= next->flags;
            p->have_la = false;
        }
        return rc;
    }
    case AMB__TK_MINUS:
    case AMB__TK_PLUS:
        ev->neg = tok->kind == AMB__TK_MINUS;
        if ((rc = read_tok(p, tok)) < 0)
            return rc;
        if (tok->kind != AMB__TK_INT && tok->kind != AMB__TK_FLOAT &&
            tok->kind != AMB__TK_CHAR)
            return amb__parse_fail(p, AMB_ESYNTAX, tok->start, "expected a number");
        ev->kind = AMB__EV_LEAF;
        return 0;
    case AMB__TK_FUN:
        return read_export(p, ev);
    case AMB__TK_DIRECTIVE:
        if (++p->ndirectives > AMB_FORMAT_MAX_DIRECTIVES)
            return amb__parse_fail(p, AMB_ESYNTAX, tok->start,
                                   "more than AMB_FORMAT_MAX_DIRECTIVES directives");
        ev->kind = AMB__EV_DIRECTIVE;
        return 0;
    case AMB__TK_WILDCARD:
        ev->kind = AMB__EV_WILDCARD;
        return 0;
    case AMB__TK_LBRACE:
    case AMB__TK_LBRACKET:
    case AMB__TK_MAP: {
        uint8_t c = tok->kind == AMB__TK_LBRACE     ? AMB__C_TUPLE
                    : tok->kind == AMB__TK_LBRACKET ? AMB__C_LIST
                                                    : AMB__C_MAP;
        if ((rc = push_frame(p, c, ev->in_key, tok->start)) < 0)
            return rc;
        ev->kind = AMB__EV_OPEN;
        ev->container = c;
        return 0;
    }
    case AMB__TK_EOF:
        return amb__parse_fail(p, AMB_ESYNTAX, tok->start, "unexpected end of input");
    default:
        return amb__parse_fail(p, AMB_ESYNTAX, tok->start, "expected a term");
    }
}

static int parse_live(amb__parser *p, amb__parse_ev *ev)
{
    amb__tok *tok = &ev->tok;
    int rc;
    /* Every field is defined for every kind (the format cache copies them
     * all), the ones a kind does not use being zero. */
    ev->slot = 0;
    ev->container = 0;
    ev->arity = 0;
    ev->neg = ev->in_key = ev->tail = false;
    ev->count = 0;
    for (;;) {
        amb__parse_frame *f = &p->frames[p->depth - 1];
        if ((rc = read_tok(p, tok)) < 0)
            return rc;
        switch (f->state) {
        case ST_FIRST:
            /* An empty container, or its first value. */
            if (tok->kind == closer(f->container))
                return close_frame(p, ev, tok, false);
            /* fall through */
        case ST_VALUE: {
            uint8_t slot;
            if (f->container == AMB__C_TOP) {
                slot = AMB__SLOT_TOP;
                f->state = ST_END;
            } else if (f->container == AMB__C_MAP) {
                slot = f->count % 2 == 0 ? AMB__SLOT_KEY : AMB__SLOT_VALUE;
                f->state = slot == AMB__SLOT_KEY ? ST_ARROW : ST_AFTER;
            } else {
                slot = AMB__SLOT_ELEM;
                f->state = ST_AFTER;
            }
            f->count++;
            return read_value(p, slot, ev);
        }
        case ST_AFTER:
            if (tok->kind == AMB__TK_COMMA) {
                f->state = ST_VALUE;
                continue;
            }
            if (tok->kind == AMB__TK_BAR && f->container == AMB__C_LIST) {
                f->state = ST_TAIL;
                continue;
            }
            if (tok->kind == closer(f->container))
                return close_frame(p, ev, tok, false);
            return amb__parse_fail(p, AMB_ESYNTAX, tok->start, after_msg(f, tok));
        case ST_ARROW:
            if (tok->kind == AMB__TK_ASSOC || tok->kind == AMB__TK_EXACT) {
                f->state = ST_VALUE;
                continue;
            }
            return amb__parse_fail(p, AMB_ESYNTAX, tok->start, "expected '=>'");
        case ST_TAIL:
            f->state = ST_TAILEND;
            return read_value(p, AMB__SLOT_TAIL, ev);
        case ST_TAILEND:
            if (tok->kind == AMB__TK_RBRACKET)
                return close_frame(p, ev, tok, true);
            return amb__parse_fail(p, AMB_ESYNTAX, tok->start,
                                   "expected ']' after the tail");
        case ST_END:
            if (tok->kind == AMB__TK_DOT) {
                f->state = ST_DONE;
                continue;
            }
            /* fall through */
        default:
            if (tok->kind != AMB__TK_EOF)
                return amb__parse_fail(p, AMB_ESYNTAX, tok->start,
                                       "unexpected text after the term");
            ev->kind = AMB__EV_EOF;
            ev->pos = tok->start;
            return 0;
        }
    }
}

void amb__parse_init_format(amb__parser *p, const char *fmt)
{
    size_t len = strlen(fmt);
    amb__parse_init(p, fmt, len, true);
    if (len >= CACHE_TEXT)
        return;
    amb__parse_cached *c = &cache[((uintptr_t)fmt >> 3) % CACHE_SLOTS];
    /* A call nested in another on this thread (from an allocator hook, say)
     * leaves a slot in use alone and parses live. */
    if (c->busy)
        return;
    if (c->key == fmt && c->len == len && memcmp(c->text, fmt, len) == 0) {
        c->busy = true;
        p->replay = c;
        return;
    }
    /* Record into the slot; it holds nothing valid until the end. */
    c->key = NULL;
    c->len = len;
    c->nev = 0;
    memcpy(c->text, fmt, len);
    c->busy = true;
    p->record = c;
}

static void record(amb__parser *p, const amb__parse_ev *ev)
{
    amb__parse_cached *c = p->record;
    if (c->nev == CACHE_EVENTS || ev->kind == AMB__EV_EXPORT ||
        (ev->kind == AMB__EV_OPEN && p->depth >= AMB__PARSE_INLINE_FRAMES)) {
        p->record->busy = false;
        p->record = NULL; /* not cacheable: the slot stays empty */
        return;
    }
    c->ev[c->nev++] = (cached_ev){
        .kind = ev->kind,
        .slot = ev->slot,
        .container = ev->container,
        .arity = ev->arity,
        .neg = ev->neg,
        .in_key = ev->in_key,
        .tail = ev->tail,
        .tok_kind = ev->tok.kind,
        .tok_flags = ev->tok.flags,
        .tok_base = ev->tok.base,
        .count = (uint16_t)ev->count,
        .pos = (uint16_t)ev->pos,
        .start = (uint16_t)ev->tok.start,
        .end = (uint16_t)ev->tok.end,
        .digits = (uint16_t)ev->tok.digits,
        .v = ev->tok.v.u,
    };
    if (ev->kind == AMB__EV_EOF) {
        c->key = p->sc.text; /* complete: valid from now on */
        c->busy = false;
        p->record = NULL;
    }
}

/* The next recorded event, with the frames kept exactly as the live
 * parser keeps them (the consumers read counts and their user words). */
static int replay(amb__parser *p, amb__parse_ev *ev)
{
    const cached_ev *c = &p->replay->ev[p->next_cached];
    /* EOF is the last event and repeats, as it does live. */
    if (c->kind != AMB__EV_EOF)
        p->next_cached++;
    ev->kind = c->kind;
    ev->slot = c->slot;
    ev->container = c->container;
    ev->arity = c->arity;
    ev->neg = c->neg;
    ev->in_key = c->in_key;
    ev->tail = c->tail;
    ev->count = c->count;
    ev->pos = c->pos;
    ev->tok.kind = c->tok_kind;
    ev->tok.flags = c->tok_flags;
    ev->tok.base = c->tok_base;
    ev->tok.start = c->start;
    ev->tok.end = c->end;
    ev->tok.digits = c->digits;
    ev->tok.v.u = c->v;
    switch (c->kind) {
    case AMB__EV_CLOSE:
        p->depth--;
        break;
    case AMB__EV_EOF:
        break;
    case AMB__EV_DIRECTIVE:
        p->ndirectives++;
        /* fall through */
    default:
        /* A value: it counts in its parent, except a list's tail. */
        if (c->slot != AMB__SLOT_TAIL)
            p->frames[p->depth - 1].count++;
        if (c->kind == AMB__EV_OPEN)
            p->frames[p->depth++] = (amb__parse_frame){
                .container = c->container, .state = ST_FIRST, .in_key = c->in_key};
        break;
    }
    return 0;
}

int amb__parse_next(amb__parser *p, amb__parse_ev *ev)
{
    if (p->sc.err != 0)
        return p->sc.err;
    if (p->replay != NULL)
        return replay(p, ev);
    int rc = parse_live(p, ev);
    if (p->record != NULL) {
        if (rc == 0) {
            record(p, ev);
        } else {
            p->record->busy = false;
            p->record = NULL;
        }
    }
    return rc;
}

/* ---------------------------------------------------------------------------
 * The builder
 * ------------------------------------------------------------------------ */

static int nomem(amb__parser *p, size_t pos)
{
    return amb__parse_fail(p, AMB_ENOMEM, pos, "out of memory");
}

/* An atom from its name; a full atom table is AMB_ESYSLIMIT. */
static int make_atom(amb__parser *p, const amb__tok *tok, amb_term *out)
{
    char buf[AMB_ATOM_MAX_BYTES];
    size_t len;
    const char *name = amb__scan_atom_name(p->sc.text, tok, buf, &len);
    int rc = amb_atom_new(name, len, out);
    if (rc == AMB_ESYSLIMIT)
        return amb__parse_fail(p, rc, tok->start, "atom table full");
    if (rc == AMB_ENOMEM)
        return nomem(p, tok->start);
    if (rc < 0)
        return amb__parse_fail(p, AMB_ESYNTAX, tok->start, "not a valid atom");
    return 0;
}

/* Writes the n low bits of v at bit offset *at of out (zeroed), MSB first. */
static void put_bits(uint8_t *out, size_t *at, uint64_t v, unsigned n)
{
    if (*at % 8 == 0 && n == 8) {
        out[*at / 8] = (uint8_t)v;
        *at += 8;
        return;
    }
    for (unsigned i = n; i-- > 0; (*at)++)
        if ((v >> i) & 1u)
            out[*at / 8] |= (uint8_t)(0x80u >> (*at % 8));
}

/* The bits of a BINARY or CLOSURE token into a new zeroed buffer of
 * (bits + 7) / 8 bytes (free with amb__free). */
static uint8_t *collect_bits(amb__parser *p, const amb__tok *tok, size_t nbytes)
{
    uint8_t *buf = amb__calloc(nbytes ? nbytes : 1, 1);
    if (buf == NULL)
        return NULL;
    amb__scan_bits it;
    uint64_t v;
    unsigned n;
    size_t at = 0;
    amb__scan_bits_init(&it, p->sc.text, p->sc.len, tok);
    while (amb__scan_bits_next(&it, &v, &n))
        put_bits(buf, &at, v, n);
    return buf;
}

static int build_int(amb__parser *p, amb_heap *heap, const amb__parse_ev *ev,
                     amb_term *out)
{
    const amb__tok *tok = &ev->tok;
    amb_term t;
    if (tok->kind == AMB__TK_CHAR || !(tok->flags & AMB__TF_BIG)) {
        uint64_t mag = tok->v.u;
        t = amb__bignum_make(heap, ev->neg, &mag, 1);
    } else {
        uint64_t *limbs;
        size_t n;
        int rc =
            amb__scan_number_limbs(p->sc.text, tok, AMB_BIG_MAX_BYTES / 8, &limbs, &n);
        if (rc == AMB_ESYSLIMIT)
            return amb__parse_fail(p, rc, tok->start,
                                   "integer larger than AMB_BIG_MAX_BYTES");
        if (rc < 0)
            return nomem(p, tok->start);
        t = amb__bignum_make(heap, ev->neg, limbs, n);
        amb__free(limbs);
    }
    if (t == AMB_NONE)
        return nomem(p, tok->start);
    *out = t;
    return 0;
}

static int build_string(amb__parser *p, amb_heap *heap, const amb__tok *tok,
                        amb_term *out)
{
    amb__scan_chars c;
    uint32_t cp;
    size_t n = 0;
    amb__scan_chars_init(&c, p->sc.text, tok->start, tok->end);
    while (amb__scan_chars_next(&c, &cp))
        n++;
    if (n == 0) {
        *out = AMB_NIL;
        return 0;
    }
    /* One allocation for all cells, laid out in order (as amb_list does). */
    amb_term *cells = (amb_term *)amb__heap_alloc(heap, 2 * n);
    if (cells == NULL)
        return nomem(p, tok->start);
    amb__scan_chars_init(&c, p->sc.text, tok->start, tok->end);
    for (size_t i = 0; amb__scan_chars_next(&c, &cp); i++) {
        cells[2 * i] = AMB_SMALL(cp);
        cells[2 * i + 1] = i + 1 < n ? amb__make_cons(&cells[2 * (i + 1)]) : AMB_NIL;
    }
    *out = amb__make_cons(cells);
    return 0;
}

static int build_binary(amb__parser *p, amb_heap *heap, const amb__tok *tok,
                        amb_term *out)
{
    size_t bits = (size_t)tok->v.u, nbytes = (bits + 7) / 8;
    uint8_t *buf = collect_bits(p, tok, nbytes);
    if (buf == NULL)
        return nomem(p, tok->start);
    amb_term t =
        bits % 8 == 0 ? amb_binary(heap, buf, nbytes) : amb_bitstring(heap, buf, bits);
    amb__free(buf);
    if (t == AMB_NONE)
        return nomem(p, tok->start);
    *out = t;
    return 0;
}

static int build_form(amb__parser *p, amb_heap *heap, const amb__tok *tok, amb_term *out)
{
    amb__scan_parts f;
    amb_term node, t;
    amb__scan_parts_of(p->sc.text, p->sc.len, tok, &f);
    int rc = make_atom(p, &f.node, &node);
    if (rc < 0)
        return rc;
    if (tok->kind == AMB__TK_PID) {
        t = amb_pid_term(heap, node, (uint32_t)f.num[0], (uint32_t)f.num[1],
                         (uint32_t)f.num[2]);
    } else if (tok->kind == AMB__TK_PORT) {
        t = amb_port_term(heap, node, f.num[0], (uint32_t)f.num[1]);
    } else {
        uint32_t words[AMB_REF_MAX_WORDS];
        for (size_t i = 1; i < f.n; i++)
            words[i - 1] = (uint32_t)f.num[i];
        t = amb_ref_term(heap, node, (uint32_t)f.num[0], words, f.n - 1);
    }
    if (t == AMB_NONE)
        return nomem(p, tok->start);
    *out = t;
    return 0;
}

static int build_leaf(amb__parser *p, amb_heap *heap, const amb__parse_ev *ev,
                      amb_term *out)
{
    const amb__tok *tok = &ev->tok;
    switch (tok->kind) {
    case AMB__TK_ATOM:
        return make_atom(p, tok, out);
    case AMB__TK_INT:
    case AMB__TK_CHAR:
        return build_int(p, heap, ev, out);
    case AMB__TK_FLOAT: {
        amb_term t = amb_float(heap, ev->neg ? -tok->v.d : tok->v.d);
        if (t == AMB_NONE)
            return nomem(p, tok->start);
        *out = t;
        return 0;
    }
    case AMB__TK_STRING:
        return build_string(p, heap, tok, out);
    case AMB__TK_BINARY:
        return build_binary(p, heap, tok, out);
    case AMB__TK_CLOSURE: {
        size_t len = (size_t)tok->v.u;
        uint8_t *buf = collect_bits(p, tok, len);
        if (buf == NULL)
            return nomem(p, tok->start);
        amb_term t = amb_closure_term(heap, buf, len);
        amb__free(buf);
        if (t == AMB_NONE)
            return nomem(p, tok->start);
        *out = t;
        return 0;
    }
    default:
        return build_form(p, heap, tok, out);
    }
}

static int build_export(amb__parser *p, amb_heap *heap, const amb__parse_ev *ev,
                        amb_term *out)
{
    amb_term m, f;
    int rc;
    if ((rc = make_atom(p, &ev->tok, &m)) < 0 || (rc = make_atom(p, &ev->tok2, &f)) < 0)
        return rc;
    amb_term t = amb_export_term(heap, m, f, ev->arity);
    if (t == AMB_NONE)
        return nomem(p, ev->pos);
    *out = t;
    return 0;
}

/* Pops the top n + tail values of the stack and makes their list. */
static int build_list(amb__parser *p, amb_heap *heap, amb__wstack *st,
                      const amb__parse_ev *ev, amb_term *out)
{
    size_t n = ev->count;
    amb_term tail = ev->tail ? (amb_term)amb__wstack_pop(st) : AMB_NIL;
    if (n == 0) {
        *out = tail; /* [] (a tail needs an element before it) */
        return 0;
    }
    amb_term *cells = (amb_term *)amb__heap_alloc(heap, 2 * n);
    if (cells == NULL)
        return nomem(p, ev->pos);
    const uint64_t *elems = &st->items[st->len - n];
    for (size_t i = 0; i < n; i++) {
        cells[2 * i] = elems[i];
        cells[2 * i + 1] = i + 1 < n ? amb__make_cons(&cells[2 * (i + 1)]) : tail;
    }
    st->len -= n;
    *out = amb__make_cons(cells);
    return 0;
}

/* Pops the top 2n values (key, value, key, value...) and makes their map.
 * amb_map wants keys and values in two arrays: they are copied above the
 * pairs first. A key given twice keeps its last value, as in Erlang. */
static int build_map(amb__parser *p, amb_heap *heap, amb__wstack *st,
                     const amb__parse_ev *ev, amb_term *out)
{
    size_t n = ev->count, base = st->len - 2 * n;
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++)
            if (amb__wstack_push(st, st->items[base + 2 * i + pass]) < 0)
                return nomem(p, ev->pos);
    amb_term m = amb_map(heap, n, &st->items[base + 2 * n], &st->items[base + 3 * n]);
    if (m == AMB_NONE)
        return nomem(p, ev->pos);
    st->len = base;
    *out = m;
    return 0;
}

static int build_tuple(amb__parser *p, amb_heap *heap, amb__wstack *st,
                       const amb__parse_ev *ev, amb_term *out)
{
    if (ev->count > AMB_TUPLE_MAX_ARITY)
        return amb__parse_fail(p, AMB_ESYSLIMIT, ev->pos,
                               "tuple larger than AMB_TUPLE_MAX_ARITY");
    amb_term t =
        amb_tuple(heap, ev->count, (const amb_term *)&st->items[st->len - ev->count]);
    if (t == AMB_NONE)
        return nomem(p, ev->pos);
    st->len -= ev->count;
    *out = t;
    return 0;
}

int amb__parse_build(amb__parser *p, amb_heap *heap, const amb__parse_ev *first,
                     amb__parse_hook *hook, void *ud, amb_term *out)
{
    amb__wstack st;
    amb__parse_ev ev;
    amb_term t;
    int rc = 0;
    /* The value is complete when the parser is back at this depth. */
    size_t base = p->depth;
    if (first != NULL && first->kind == AMB__EV_OPEN)
        base--;
    amb__wstack_init(&st);
    for (;;) {
        if (first != NULL) {
            ev = *first;
            first = NULL;
        } else if ((rc = amb__parse_next(p, &ev)) < 0) {
            break;
        }
        switch (ev.kind) {
        case AMB__EV_LEAF:
            rc = build_leaf(p, heap, &ev, &t);
            break;
        case AMB__EV_EXPORT:
            rc = build_export(p, heap, &ev, &t);
            break;
        case AMB__EV_DIRECTIVE:
        case AMB__EV_WILDCARD:
            AMB__CHECK(hook != NULL);
            rc = hook(ud, p, &ev, &t);
            break;
        case AMB__EV_OPEN:
            continue;
        case AMB__EV_CLOSE:
            if (ev.container == AMB__C_TUPLE)
                rc = build_tuple(p, heap, &st, &ev, &t);
            else if (ev.container == AMB__C_LIST)
                rc = build_list(p, heap, &st, &ev, &t);
            else
                rc = build_map(p, heap, &st, &ev, &t);
            break;
        default:
            /* EOF cannot come before the value is complete. */
            rc = amb__parse_fail(p, AMB_ESYNTAX, ev.pos, "unexpected end of input");
            break;
        }
        if (rc < 0)
            break;
        if (p->depth == base)
            goto done;
        if ((rc = amb__wstack_push(&st, t)) < 0) {
            rc = nomem(p, ev.pos);
            break;
        }
    }
    amb__wstack_free(&st);
    return rc;
done:
    amb__wstack_free(&st);
    *out = t;
    return 0;
}

int amb_parse(amb_heap *heap, const char *text, size_t len, amb_term *out,
              size_t *err_pos)
{
    if (heap == NULL || out == NULL || (text == NULL && len > 0))
        return AMB__MISUSE();
    amb__parser p;
    amb__parse_ev ev;
    amb_term t;
    amb__parse_init(&p, text != NULL ? text : "", len, false);
    int rc = amb__parse_build(&p, heap, NULL, NULL, NULL, &t);
    if (rc == 0)
        rc = amb__parse_next(&p, &ev);
    if (rc == 0) {
        AMB__CHECK(ev.kind == AMB__EV_EOF);
        *out = t;
    } else if (err_pos != NULL) {
        *err_pos = p.sc.err_pos;
    }
    amb__parse_free(&p);
    return rc;
}

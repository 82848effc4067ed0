/*
 * scan.h - the tokenizer of Erlang term syntax, shared by amb_parse (parse.c)
 * and the format strings of amb_pack / amb_match (pack.c). See
 * docs/design/syntax.md for the grammar and every decision behind it.
 *
 * The tokenizer is three files: scan.c (tokens, quoted text, names, the
 * #Pid/#Ref/#Port forms, the walkers of validated tokens), scan_number.c
 * (numbers and $c) and scan_bits.c (<<...>> and its bits). What they share
 * is declared in the section "Inside the tokenizer" below.
 *
 * The scanner turns text[0..len) into tokens one at a time, never reading
 * past len (the text need not be NUL-terminated). It validates each token
 * completely when it scans it: a quoted atom or string has only valid
 * escapes and valid UTF-8, a number is in range, a <<...>> binary or a
 * #Pid<...> form is well formed. Code that later walks a token's text
 * (amb__scan_chars, amb__scan_bits, amb__scan_parts_of,
 * amb__scan_number_limbs) may therefore
 * assume validity: it is given back only tokens this scanner produced.
 *
 * A token is a span of the text plus a few decoded values, so scanning
 * allocates nothing (except a temporary copy of an unusually long float
 * literal) and the text must outlive the tokens.
 *
 * Format mode (format = true) adds three tokens: ~x directives, the
 * wildcard _ and := (for map patterns). In term mode they are syntax
 * errors.
 */
#ifndef AMB_CORE_SCAN_H
#define AMB_CORE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ambitious/term.h"
#include "term_internal.h"

enum amb__tk {
    AMB__TK_EOF = 0,
    AMB__TK_ATOM,      /* bare or 'quoted' (flags) */
    AMB__TK_INT,       /* decimal or Base#Digits; v.u = magnitude unless BIG */
    AMB__TK_CHAR,      /* $c; v.u = code point */
    AMB__TK_FLOAT,     /* v.d, always finite and non-negative */
    AMB__TK_STRING,    /* one "..." (the parser joins adjacent ones) */
    AMB__TK_BINARY,    /* a whole <<...>>; v.u = its size in bits */
    AMB__TK_PID,       /* #Pid<'node'.ID.SERIAL.CREATION> */
    AMB__TK_REF,       /* #Ref<'node'.CREATION.W0...> */
    AMB__TK_PORT,      /* #Port<'node'.ID.CREATION> */
    AMB__TK_CLOSURE,   /* #Fun<<<bytes>>>; v.u = byte count */
    AMB__TK_FUN,       /* the keyword fun */
    AMB__TK_DIRECTIVE, /* ~x (format mode); v.u = the letter */
    AMB__TK_WILDCARD,  /* _ (format mode) */
    AMB__TK_LBRACE,    /* { */
    AMB__TK_RBRACE,    /* } */
    AMB__TK_LBRACKET,  /* [ */
    AMB__TK_RBRACKET,  /* ] */
    AMB__TK_MAP,       /* #{ (whitespace allowed between, as in Erlang) */
    AMB__TK_BAR,       /* | */
    AMB__TK_COMMA,     /* , */
    AMB__TK_ASSOC,     /* => */
    AMB__TK_EXACT,     /* := (format mode) */
    AMB__TK_COLON,     /* : */
    AMB__TK_SLASH,     /* / */
    AMB__TK_MINUS,     /* - */
    AMB__TK_PLUS,      /* + */
    AMB__TK_DOT,       /* . (the optional end of the term) */
};

enum {
    AMB__TF_QUOTED = 1 << 0,  /* ATOM: written 'like this' */
    AMB__TF_ESCAPES = 1 << 1, /* ATOM, STRING: contains a backslash escape */
    AMB__TF_BIG = 1 << 2,     /* INT: beyond uint64: amb__scan_number_limbs */
};

typedef struct amb__tok {
    uint8_t kind;  /* enum amb__tk */
    uint8_t flags; /* AMB__TF_* */
    uint8_t base;  /* INT: 2..36 */
    size_t start;  /* [start, end): the token's bytes in the text */
    size_t end;
    size_t digits; /* INT: offset of the first digit (after Base#) */
    union {
        uint64_t u;
        double d;
    } v;
} amb__tok;

typedef struct amb__scan {
    const char *text;
    size_t pos;
    /* The first error: its code, byte offset and a static English message. */
    int err;
    bool format;
    /* len is kept away from pos on purpose: with the two adjacent, gcc loads
     * them with one 16-byte load that cannot be forwarded from the 8-byte
     * store of pos made by the previous token, a stall that doubled the
     * cost of scanning a short format. */
    size_t len;
    size_t err_pos;
    const char *err_msg;
} amb__scan;

void amb__scan_init(amb__scan *s, const char *text, size_t len, bool format);
/* Scans the next token into *tok (AMB__TK_EOF at the end). Returns 0, or
 * AMB_ESYNTAX / AMB_ENOMEM with s->err_pos and s->err_msg set. */
int amb__scan_next(amb__scan *s, amb__tok *tok);

/* The characters (code points) of a validated quoted atom, a string, or a
 * run of adjacent strings "a" "b" (the span from the first string's opening
 * quote to the last one's closing quote), or of a bare atom. */
typedef struct amb__scan_chars {
    const char *text;
    size_t pos, end;
    char quote; /* '\'' or '"'; 0 for a bare atom */
} amb__scan_chars;

void amb__scan_chars_init(amb__scan_chars *c, const char *text, size_t start, size_t end);
/* The next code point; false at the end. */
bool amb__scan_chars_next(amb__scan_chars *c, uint32_t *cp);

/* The bytes of an atom's name: the raw text when it has no escapes (returns
 * a pointer into the text), else decoded into buf (AMB_ATOM_MAX_BYTES
 * bytes). *len gets the length. */
const char *amb__scan_atom_name(const char *text, const amb__tok *tok, char *buf,
                                size_t *len);

/* The value of a validated INT token as little-endian uint64 limbs in a new
 * array (free with amb__free): 0, AMB_ESYSLIMIT when the magnitude needs
 * more than max_limbs limbs, AMB_ENOMEM. Leading zero limbs are stripped. */
int amb__scan_number_limbs(const char *text, const amb__tok *tok, size_t max_limbs,
                           uint64_t **limbs, size_t *n);

/* The parts of a #Pid / #Ref / #Port form. */
typedef struct amb__scan_parts {
    amb__tok node;   /* the node atom */
    uint64_t num[6]; /* the numbers after it, in order */
    size_t n;
} amb__scan_parts;

/* Re-reads the parts of a validated PID, REF or PORT token. */
void amb__scan_parts_of(const char *text, size_t len, const amb__tok *tok,
                        amb__scan_parts *f);

/* The bits of a validated <<...>> token (BINARY, or the binary inside a
 * CLOSURE token) as chunks of at most 64 bits, in order. */
typedef struct amb__scan_bits {
    amb__scan sc;        /* positioned at the next segment */
    amb__scan_chars str; /* the string run being emitted, if any */
    bool in_str;
    bool first;      /* no segment read yet */
    bool utf8;       /* the string run has /utf8 */
    size_t str_next; /* where scanning resumes after the string run */
} amb__scan_bits;

void amb__scan_bits_init(amb__scan_bits *b, const char *text, size_t len,
                         const amb__tok *tok);
/* The next chunk: its low *nbits bits (1..64), most significant first;
 * false at the end. */
bool amb__scan_bits_next(amb__scan_bits *b, uint64_t *value, unsigned *nbits);

/* ---------------------------------------------------------------------------
 * Inside the tokenizer: what scan.c, scan_number.c and scan_bits.c share.
 * ------------------------------------------------------------------------ */

static inline bool amb__scan_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* The value of c as a digit in bases up to 36, or 99. */
static inline unsigned amb__scan_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'z')
        return (unsigned)(c - 'a' + 10);
    if (c >= 'A' && c <= 'Z')
        return (unsigned)(c - 'A' + 10);
    return 99;
}

/* Erlang's character classes for names, which cover ASCII and Latin-1 only
 * (erl_scan): other Unicode letters cannot start or continue a bare atom. */
static inline bool amb__scan_is_lower(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 0xdf && c <= 0xff && c != 0xf7);
}
static inline bool amb__scan_is_upper(uint32_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 0xc0 && c <= 0xde && c != 0xd7);
}
static inline bool amb__scan_is_name_char(uint32_t c)
{
    return amb__scan_is_lower(c) || amb__scan_is_upper(c) || amb__scan_is_digit((int)c) ||
           c == '_' || c == '@';
}

/* The code point at text[pos] (ASCII fast path); its length, or 0 at the end
 * or on invalid UTF-8. */
static inline size_t amb__scan_peek_cp(const char *text, size_t len, size_t pos,
                                       uint32_t *cp)
{
    if (pos >= len)
        return 0;
    uint8_t c = (uint8_t)text[pos];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    return amb__utf8_decode((const uint8_t *)text + pos, len - pos, cp);
}

/* The position of the first byte at or after pos that is neither
 * whitespace nor inside a % comment. */
static inline size_t amb__scan_skip_ws(const char *text, size_t len, size_t pos)
{
    /* Most tokens follow another directly: decide that with one compare. */
    if (pos < len && (uint8_t)text[pos] > ' ' && text[pos] != '%')
        return pos;
    while (pos < len) {
        char c = text[pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
            pos++;
        } else if (c == '%') {
            while (pos < len && text[pos] != '\n')
                pos++;
        } else {
            break;
        }
    }
    return pos;
}

/* True when the text at pos starts with lit. */
static inline bool amb__scan_at(const amb__scan *s, size_t pos, const char *lit)
{
    size_t n = strlen(lit);
    return pos + n <= s->len && memcmp(s->text + pos, lit, n) == 0;
}

/* Records a syntax error at pos with a static message; returns AMB_ESYNTAX
 * (scan.c). */
int amb__scan_fail(amb__scan *s, size_t pos, const char *msg);
/* Reads the escape sequence whose backslash is at *pos into *cp; *pos is
 * then just past it. 0 or AMB_ESYNTAX (scan.c). */
int amb__scan_escape(amb__scan *s, size_t *pos, uint32_t *cp);
/* Scans a quoted atom (quote '\'') or string ('"') starting at the quote at
 * s->pos. 0 or AMB_ESYNTAX (scan.c). */
int amb__scan_quoted(amb__scan *s, amb__tok *tok, char quote);
/* Scans a number at s->pos (a digit): an INT or FLOAT token. 0,
 * AMB_ESYNTAX, AMB_ENOMEM (scan_number.c). */
int amb__scan_number_read(amb__scan *s, amb__tok *tok);
/* Scans a $c character literal, s->pos at the $: a CHAR token. 0 or
 * AMB_ESYNTAX (scan_number.c). */
int amb__scan_number_char(amb__scan *s, amb__tok *tok);
/* strtod of the NUL-terminated text in the "C" locale, whatever the
 * program's LC_NUMERIC (which would read "1,5" for 1.5 in some locales):
 * 0 with *out, or AMB_ENOMEM when the locale object cannot be made
 * (scan_number.c; the ETF decoder's FLOAT_EXT uses it too). */
int amb__scan_number_strtod(const char *text, double *out);
/* Validates <<...>> at s->pos: a BINARY token whose v.u is its size in bits.
 * 0 or AMB_ESYNTAX (scan_bits.c). */
int amb__scan_bits_read(amb__scan *s, amb__tok *tok);

/* ===========================================================================
 * The grammar (parse.c). Declared here because pack.c drives the same
 * grammar: parse.c builds terms from it, pack.c packs and matches with it.
 *
 * amb__parser is a pull parser: each amb__parse_next returns one event, in
 * document order, and keeps the open containers on an explicit stack of
 * frames (never the C stack), at most AMB_PARSE_MAX_DEPTH of them. A value
 * is either one event (a leaf, a directive, _) or an OPEN ... CLOSE
 * bracket of events. The grammar is checked here and only here.
 * ========================================================================= */

enum amb__parse_evk {
    AMB__EV_LEAF,      /* tok: ATOM INT CHAR FLOAT STRING (a run) BINARY PID REF
                          PORT CLOSURE; neg for numbers after '-' */
    AMB__EV_EXPORT,    /* fun M:F/A: tok = M, tok2 = F, arity */
    AMB__EV_DIRECTIVE, /* tok.v.u = the letter */
    AMB__EV_WILDCARD,  /* _ */
    AMB__EV_OPEN,      /* container: its frame is now on top */
    AMB__EV_CLOSE,     /* container, count, tail: its frame is gone */
    AMB__EV_EOF,       /* the term and the optional '.' are complete */
};

/* Where a value sits in its parent. */
enum amb__parse_slot {
    AMB__SLOT_TOP,
    AMB__SLOT_ELEM,  /* tuple or list element */
    AMB__SLOT_TAIL,  /* the tail after '|' */
    AMB__SLOT_KEY,   /* map key */
    AMB__SLOT_VALUE, /* map value */
};

enum amb__parse_container { AMB__C_TOP, AMB__C_TUPLE, AMB__C_LIST, AMB__C_MAP };

typedef struct amb__parse_ev {
    uint8_t kind;      /* enum amb__parse_evk */
    uint8_t slot;      /* value events (all but CLOSE and EOF) */
    uint8_t container; /* OPEN, CLOSE */
    bool neg;          /* LEAF: a number preceded by '-' */
    bool in_key;       /* value events: the value is a map key or inside one */
    bool tail;         /* CLOSE of a list: it had a '|' tail */
    uint8_t arity;     /* EXPORT */
    size_t count;      /* CLOSE: elements (tail not counted), or map pairs */
    size_t pos;        /* byte offset of the event's first token */
    amb__tok tok;
    amb__tok tok2;
} amb__parse_ev;

typedef struct amb__parse_frame {
    uint8_t container;
    uint8_t state;
    bool in_key;
    size_t count;     /* values read (maps: keys and values) */
    uint64_t user[2]; /* free for the consumer (pack.c's matcher) */
} amb__parse_frame;

#define AMB__PARSE_INLINE_FRAMES 8

struct amb__parse_cached;

typedef struct amb__parser {
    amb__scan sc; /* sc.err, err_pos, err_msg: the first error (sticky) */
    amb__tok la;  /* one token of lookahead */
    bool have_la;
    size_t ndirectives;
    /* The format cache (parse.c): events replayed from, or recorded into, a
     * slot of this thread's cache. */
    struct amb__parse_cached *replay, *record;
    size_t next_cached;
    amb__parse_frame *frames; /* frames[0] is the top level */
    size_t depth;             /* frames in use */
    size_t cap;
    amb__parse_frame inline_frames[AMB__PARSE_INLINE_FRAMES];
} amb__parser;

/* Starts a parser over text[0..len); format enables ~x and _. Never fails. */
void amb__parse_init(amb__parser *p, const char *text, size_t len, bool format);
/* Starts a parser over the format string fmt (NUL-terminated), replaying
 * its events from this thread's cache of recently used short formats when
 * it is there, and recording them otherwise. The events and errors are
 * exactly those of amb__parse_init(p, fmt, strlen(fmt), true). */
void amb__parse_init_format(amb__parser *p, const char *fmt);
void amb__parse_free(amb__parser *p);
/* The next event: 0, or the (sticky) error: AMB_ESYNTAX, AMB_EDEPTH,
 * AMB_ENOMEM, with p->sc.err_pos and p->sc.err_msg. */
int amb__parse_next(amb__parser *p, amb__parse_ev *ev);
/* Records an error found by a consumer (first one wins) and returns code. */
int amb__parse_fail(amb__parser *p, int code, size_t pos, const char *msg);

/* Builds the terms of directives and wildcards for amb__parse_build. It
 * returns 0 with *out, or an error recorded with amb__parse_fail. */
typedef int amb__parse_hook(void *ud, amb__parser *p, const amb__parse_ev *ev,
                            amb_term *out);

/* Builds the next whole value on heap. When first is not NULL it is the
 * value's first event, already taken from p. hook may be NULL when p is not
 * in format mode. Returns 0 with *out, or an error recorded in p. */
int amb__parse_build(amb__parser *p, amb_heap *heap, const amb__parse_ev *first,
                     amb__parse_hook *hook, void *ud, amb_term *out);

#endif /* AMB_CORE_SCAN_H */

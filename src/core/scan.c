/*
 * scan.c - the tokenizer of Erlang term syntax (see scan.h for the contract
 * and docs/design/syntax.md for the grammar): tokens, quoted text, names,
 * the #Pid/#Ref/#Port/#Fun forms, and the walkers of validated tokens.
 * Numbers are scan_number.c's, <<...>> scan_bits.c's.
 *
 * Invariants:
 *   - No read ever reaches text[len]: every access is guarded by a position
 *     check, because the text is a (pointer, length) pair, not a C string.
 *   - A token is fully validated when it is scanned; the walkers at the end
 *     of this file (amb__scan_chars, amb__scan_parts_of) re-read only
 *     validated tokens, so they never fail and never need error paths. They
 *     call the same readers as the validator, so the two cannot disagree
 *     about what the text means.
 *   - Scanning allocates nothing, except a temporary copy of a long float
 *     literal (scan_number.c).
 */
#include <string.h>

#include "scan.h"

/* ---------------------------------------------------------------------------
 * Errors and names
 * ------------------------------------------------------------------------ */

/* amb__scan_is_name_char for ASCII, as a table: the inner loop of every
 * bare atom. */
#define R6(b)  [b] = 1, [b + 1] = 1, [b + 2] = 1, [b + 3] = 1, [b + 4] = 1, [b + 5] = 1
#define R10(b) R6(b), [b + 6] = 1, [b + 7] = 1, [b + 8] = 1, [b + 9] = 1
static const uint8_t ascii_name[128] = {
    R10('0'), R10('A'), R10('K'),  R6('U'),   R10('a'),
    R10('k'), R6('u'),  ['_'] = 1, ['@'] = 1,
};
#undef R10
#undef R6

int amb__scan_fail(amb__scan *s, size_t pos, const char *msg)
{
    s->err = AMB_ESYNTAX;
    s->err_pos = pos;
    s->err_msg = msg;
    return AMB_ESYNTAX;
}

void amb__scan_init(amb__scan *s, const char *text, size_t len, bool format)
{
    s->text = text;
    s->len = len;
    s->pos = 0;
    s->format = format;
    s->err = 0;
    s->err_pos = 0;
    s->err_msg = NULL;
}

/* ---------------------------------------------------------------------------
 * Quoted text: one reader for atoms, strings and $c, escapes included.
 * ------------------------------------------------------------------------ */

/* Reads the escape sequence whose backslash is at *pos; on success *pos is
 * just past it. Erlang's escapes: \b \d \e \f \n \r \s \t \v, octal \NNN
 * (1-3 digits), \xHH (exactly two hex digits), \x{H...}, \^c (c band 31),
 * and a backslash before any other character stands for that character. */
int amb__scan_escape(amb__scan *s, size_t *pos, uint32_t *cp)
{
    const char *t = s->text;
    size_t len = s->len, at = *pos, i = at + 1;
    if (i >= len)
        return amb__scan_fail(s, at, "unterminated escape sequence");
    char c = t[i];
    uint32_t v;
    switch (c) {
    case 'b':
        v = 8;
        break;
    case 'd':
        v = 127;
        break;
    case 'e':
        v = 27;
        break;
    case 'f':
        v = 12;
        break;
    case 'n':
        v = 10;
        break;
    case 'r':
        v = 13;
        break;
    case 's':
        v = 32;
        break;
    case 't':
        v = 9;
        break;
    case 'v':
        v = 11;
        break;
    case 'x':
        i++;
        if (i < len && t[i] == '{') {
            i++;
            size_t first = i;
            v = 0;
            while (i < len && amb__scan_digit_value(t[i]) < 16) {
                v = v * 16 + amb__scan_digit_value(t[i]);
                if (v > 0x10ffff)
                    return amb__scan_fail(s, at, "escape beyond U+10FFFF");
                i++;
            }
            if (i == first || i >= len || t[i] != '}')
                return amb__scan_fail(s, at, "bad \\x{...} escape");
            i++;
        } else {
            if (i + 1 >= len || amb__scan_digit_value(t[i]) >= 16 ||
                amb__scan_digit_value(t[i + 1]) >= 16)
                return amb__scan_fail(s, at, "\\x needs two hex digits or {...}");
            v = amb__scan_digit_value(t[i]) * 16 + amb__scan_digit_value(t[i + 1]);
            i += 2;
        }
        if (v >= 0xd800 && v <= 0xdfff)
            return amb__scan_fail(s, at, "escape names a surrogate code point");
        *cp = v;
        *pos = i;
        return 0;
    case '^': {
        uint32_t x;
        size_t n = amb__scan_peek_cp(t, len, i + 1, &x);
        if (n == 0)
            return amb__scan_fail(s, at, "bad \\^ escape");
        *cp = x & 31;
        *pos = i + 1 + n;
        return 0;
    }
    default:
        if (c >= '0' && c <= '7') {
            v = 0;
            size_t k = 0;
            while (k < 3 && i < len && t[i] >= '0' && t[i] <= '7') {
                v = v * 8 + (uint32_t)(t[i] - '0');
                i++;
                k++;
            }
            *cp = v;
            *pos = i;
            return 0;
        }
        /* Any other character stands for itself (Erlang: "\z" is "z"). */
        size_t n = amb__scan_peek_cp(t, len, i, &v);
        if (n == 0)
            return amb__scan_fail(s, i, "invalid UTF-8");
        *cp = v;
        *pos = i + n;
        return 0;
    }
    *cp = v;
    *pos = i + 1;
    return 0;
}

/* Reads one character of quoted text at *pos. Returns 1 with *cp, 0 at the
 * closing quote (then *pos is past it), or AMB_ESYNTAX. open is the position
 * of the opening quote, for the "unterminated" message. */
static int quoted_char(amb__scan *s, size_t *pos, char quote, size_t open, uint32_t *cp)
{
    size_t i = *pos;
    if (i >= s->len)
        return amb__scan_fail(s, open,
                              quote == '"' ? "unterminated string" : "unterminated atom");
    uint8_t c = (uint8_t)s->text[i];
    if (c == (uint8_t)quote) {
        *pos = i + 1;
        return 0;
    }
    if (c == '\\') {
        int rc = amb__scan_escape(s, pos, cp);
        return rc < 0 ? rc : 1;
    }
    if (c < 0x80) {
        *cp = c;
        *pos = i + 1;
        return 1;
    }
    size_t n = amb__utf8_decode((const uint8_t *)s->text + i, s->len - i, cp);
    if (n == 0)
        return amb__scan_fail(s, i, "invalid UTF-8");
    *pos = i + n;
    return 1;
}

/* Scans a quoted atom or string starting at the quote at s->pos. */
int amb__scan_quoted(amb__scan *s, amb__tok *tok, char quote)
{
    size_t open = s->pos, pos = open + 1, chars = 0;
    uint32_t cp;
    int rc;
    tok->flags = 0;
    while ((rc = quoted_char(s, &pos, quote, open, &cp)) == 1)
        chars++;
    if (rc < 0)
        return rc;
    /* A backslash anywhere in the span means the bytes are not the name. */
    if (memchr(s->text + open + 1, '\\', pos - open - 2) != NULL)
        tok->flags |= AMB__TF_ESCAPES;
    if (quote == '\'') {
        if (chars > AMB_ATOM_MAX_CHARS)
            return amb__scan_fail(s, open, "atom longer than 255 characters");
        tok->kind = AMB__TK_ATOM;
        tok->flags |= AMB__TF_QUOTED;
    } else {
        tok->kind = AMB__TK_STRING;
    }
    tok->start = open;
    tok->end = pos;
    s->pos = pos;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Names: bare atoms, the keyword fun, variables (rejected), the wildcard _
 * ------------------------------------------------------------------------ */

/* Erlang's reserved words (erl_scan:reserved_word/1 in OTP 25): a bare one
 * is not an atom (write 'end'). Grouped by length, each group the words of
 * exactly that many letters end to end, so that the check, made for every
 * bare atom, is a few byte compares. */
static bool is_reserved(const char *name, size_t len)
{
    static const struct {
        const char *words;
        size_t count;
    } by_len[8] = {
        [2] = {"ifofor", 3},
        [3] = {"andborbslbsrdivendfunletnotremtryxor", 12},
        [4] = {"bandbnotbxorcasecondwhen", 6},
        [5] = {"afterbegincatch", 3},
        [6] = {"orelse", 1},
        [7] = {"andalsoreceive", 2},
    };
    if (len < 2 || len > 7)
        return false;
    const char *w = by_len[len].words;
    for (size_t i = 0; i < by_len[len].count; i++, w += len)
        if (w[0] == name[0] && memcmp(w, name, len) == 0)
            return true;
    return false;
}

/* Scans a name whose first character (at s->pos) is a letter or _. */
static int scan_name(amb__scan *s, amb__tok *tok, uint32_t first)
{
    size_t start = s->pos, pos = start, chars = 0;
    const char *t = s->text;
    for (;;) {
        /* ASCII first: names in formats are almost always plain ASCII. */
        while (pos < s->len && (uint8_t)t[pos] < 0x80 && ascii_name[(uint8_t)t[pos]]) {
            pos++;
            chars++;
        }
        uint32_t cp;
        size_t n = pos < s->len && (uint8_t)t[pos] >= 0x80
                       ? amb__scan_peek_cp(t, s->len, pos, &cp)
                       : 0;
        if (n == 0 || !amb__scan_is_name_char(cp))
            break;
        pos += n;
        chars++;
    }
    tok->start = start;
    tok->end = pos;
    tok->flags = 0;
    if (!amb__scan_is_lower(first)) {
        if (s->format && pos == start + 1 && first == '_') {
            tok->kind = AMB__TK_WILDCARD;
            s->pos = pos;
            return 0;
        }
        return amb__scan_fail(s, start, "a variable is not a term");
    }
    if (chars > AMB_ATOM_MAX_CHARS)
        return amb__scan_fail(s, start, "atom longer than 255 characters");
    if (pos - start == 3 && memcmp(s->text + start, "fun", 3) == 0) {
        tok->kind = AMB__TK_FUN;
    } else if (is_reserved(s->text + start, pos - start)) {
        return amb__scan_fail(s, start, "reserved word: quote it to make an atom");
    } else {
        tok->kind = AMB__TK_ATOM;
    }
    s->pos = pos;
    return 0;
}

/* An atom, bare or quoted, at s->pos (for the node of #Pid<...> forms). */
static int scan_atom(amb__scan *s, amb__tok *tok)
{
    uint32_t cp;
    if (s->pos < s->len && s->text[s->pos] == '\'')
        return amb__scan_quoted(s, tok, '\'');
    if (amb__scan_peek_cp(s->text, s->len, s->pos, &cp) > 0 && amb__scan_is_lower(cp)) {
        int rc = scan_name(s, tok, cp);
        if (rc == 0 && tok->kind != AMB__TK_ATOM)
            return amb__scan_fail(s, tok->start, "expected an atom");
        return rc;
    }
    return amb__scan_fail(s, s->pos, "expected an atom");
}

/* ---------------------------------------------------------------------------
 * #Pid<...>, #Ref<...>, #Port<...>, #Fun<...>: amb_print's forms for terms
 * Erlang has no syntax for. No whitespace inside.
 * ------------------------------------------------------------------------ */

/* Reads the form whose '<' is at s->pos into *f; used by the validator and
 * by amb__scan_form. */
static int form_body(amb__scan *s, uint8_t kind, size_t start, amb__scan_parts *f)
{
    s->pos++;
    int rc = scan_atom(s, &f->node);
    if (rc < 0)
        return rc;
    f->n = 0;
    while (s->pos < s->len && s->text[s->pos] == '.') {
        s->pos++;
        size_t d = s->pos;
        uint64_t v = 0;
        while (s->pos < s->len && amb__scan_is_digit(s->text[s->pos])) {
            unsigned digit = (unsigned)(s->text[s->pos] - '0');
            if (v > (UINT64_MAX - digit) / 10)
                return amb__scan_fail(s, d, "number too large");
            v = v * 10 + digit;
            s->pos++;
        }
        if (s->pos == d)
            return amb__scan_fail(s, d, "expected a number");
        if (f->n == AMB_COUNTOF(f->num))
            return amb__scan_fail(s, d, "too many numbers");
        /* Every number is 32 bits except a port's id. */
        if (v > UINT32_MAX && !(kind == AMB__TK_PORT && f->n == 0))
            return amb__scan_fail(s, d, "number does not fit 32 bits");
        f->num[f->n++] = v;
    }
    size_t want_min = kind == AMB__TK_PID ? 3 : kind == AMB__TK_PORT ? 2 : 2;
    size_t want_max = kind == AMB__TK_PID ? 3 : kind == AMB__TK_PORT ? 2 : 6;
    if (f->n < want_min || f->n > want_max)
        return amb__scan_fail(s, start, "wrong count of numbers in #Pid/#Ref/#Port");
    if (s->pos >= s->len || s->text[s->pos] != '>')
        return amb__scan_fail(s, s->pos, "expected '>'");
    s->pos++;
    return 0;
}

static int scan_hash(amb__scan *s, amb__tok *tok)
{
    size_t start = s->pos;
    tok->start = start;
    tok->flags = 0;
    static const struct {
        const char *prefix;
        uint8_t kind;
    } forms[] = {
        {"#Pid<", AMB__TK_PID}, {"#Ref<", AMB__TK_REF}, {"#Port<", AMB__TK_PORT}};
    for (size_t i = 0; i < AMB_COUNTOF(forms); i++) {
        if (amb__scan_at(s, start, forms[i].prefix)) {
            amb__scan_parts f;
            s->pos = start + strlen(forms[i].prefix) - 1;
            int rc = form_body(s, forms[i].kind, start, &f);
            if (rc < 0)
                return rc;
            tok->kind = forms[i].kind;
            tok->end = s->pos;
            return 0;
        }
    }
    if (amb__scan_at(s, start, "#Fun<<<")) {
        amb__tok bin;
        s->pos = start + 5;
        int rc = amb__scan_bits_read(s, &bin);
        if (rc < 0)
            return rc;
        if (bin.v.u == 0 || bin.v.u % 8 != 0)
            return amb__scan_fail(s, start,
                                  "#Fun<...> needs a non-empty binary of whole bytes");
        if (s->pos >= s->len || s->text[s->pos] != '>')
            return amb__scan_fail(s, s->pos, "expected '>'");
        s->pos++;
        tok->kind = AMB__TK_CLOSURE;
        tok->end = s->pos;
        tok->v.u = bin.v.u / 8;
        return 0;
    }
    /* Erlang allows space between # and { (it scans them as two tokens). */
    size_t pos = amb__scan_skip_ws(s->text, s->len, start + 1);
    if (pos < s->len && s->text[pos] == '{') {
        tok->kind = AMB__TK_MAP;
        tok->end = pos + 1;
        s->pos = pos + 1;
        return 0;
    }
    return amb__scan_fail(s, start, "expected #{, #Pid<, #Ref<, #Port< or #Fun<");
}

/* ---------------------------------------------------------------------------
 * The tokenizer
 * ------------------------------------------------------------------------ */

static bool is_directive(char c)
{
    switch (c) {
    case 'a':
    case 'i':
    case 'l':
    case 'u':
    case 'f':
    case 's':
    case 'S':
    case 'b':
    case 'w':
    case 't':
    case 'p':
    case 'r':
    case 'v':
        return true;
    default:
        return false;
    }
}

static int punct(amb__scan *s, amb__tok *tok, uint8_t kind, size_t n)
{
    tok->kind = kind;
    tok->flags = 0;
    tok->start = s->pos;
    tok->end = s->pos + n;
    s->pos += n;
    return 0;
}

/* Everything but the common tokens: kept out of line so that the hot path
 * of amb__scan_next stays small (few registers to save, a small frame). */
static __attribute__((noinline)) int scan_other(amb__scan *s, amb__tok *tok)
{
    const char *t = s->text;
    size_t pos = s->pos;
    char c = t[pos];
    switch (c) {
    case '|':
        if (pos + 1 < s->len && t[pos + 1] == '|')
            return amb__scan_fail(s, pos, "unexpected '||'");
        return punct(s, tok, AMB__TK_BAR, 1);
    case '=':
        if (pos + 1 < s->len && t[pos + 1] == '>')
            return punct(s, tok, AMB__TK_ASSOC, 2);
        return amb__scan_fail(s, pos, "unexpected '='");
    case ':':
        if (pos + 1 < s->len && t[pos + 1] == '=') {
            if (s->format)
                return punct(s, tok, AMB__TK_EXACT, 2);
            return amb__scan_fail(s, pos, "unexpected ':='");
        }
        return punct(s, tok, AMB__TK_COLON, 1);
    case '<':
        if (pos + 1 < s->len && t[pos + 1] == '<')
            return amb__scan_bits_read(s, tok);
        return amb__scan_fail(s, pos, "unexpected '<'");
    case '#':
        return scan_hash(s, tok);
    case '\'':
        return amb__scan_quoted(s, tok, '\'');
    case '"':
        return amb__scan_quoted(s, tok, '"');
    case '$':
        return amb__scan_number_char(s, tok);
    case '~':
        if (!s->format)
            return amb__scan_fail(s, pos, "unexpected '~'");
        return amb__scan_fail(
            s, pos, "unknown directive (~a ~i ~l ~u ~f ~s ~S ~b ~w ~t ~p ~r ~v)");
    default:
        break;
    }
    if (amb__scan_is_digit(c))
        return amb__scan_number_read(s, tok);
    uint32_t cp;
    size_t n = amb__scan_peek_cp(t, s->len, pos, &cp);
    if (n == 0)
        return amb__scan_fail(s, pos, "invalid UTF-8");
    if (amb__scan_is_lower(cp) || amb__scan_is_upper(cp) || cp == '_')
        return scan_name(s, tok, cp);
    return amb__scan_fail(s, pos, "unexpected character");
}

/* The tokens that are one character whatever follows. */
static const uint8_t single[128] = {
    ['{'] = AMB__TK_LBRACE,   ['}'] = AMB__TK_RBRACE, ['['] = AMB__TK_LBRACKET,
    [']'] = AMB__TK_RBRACKET, [','] = AMB__TK_COMMA,  ['/'] = AMB__TK_SLASH,
    ['-'] = AMB__TK_MINUS,    ['+'] = AMB__TK_PLUS,   ['.'] = AMB__TK_DOT,
};

int amb__scan_next(amb__scan *s, amb__tok *tok)
{
    const char *t = s->text;
    size_t len = s->len, pos = amb__scan_skip_ws(t, len, s->pos);
    s->pos = pos;
    /* Fields that only some kinds set are zero in the others, so that a
     * token is fully defined whatever its kind (the format cache copies it). */
    tok->base = 0;
    tok->digits = 0;
    tok->v.u = 0;
    if (pos >= len) {
        tok->kind = AMB__TK_EOF;
        tok->flags = 0;
        tok->start = tok->end = len;
        return 0;
    }
    uint8_t c = (uint8_t)t[pos];
    if (c < 0x80 && single[c] != 0)
        return punct(s, tok, single[c], 1);
    if (c >= 'a' && c <= 'z')
        return scan_name(s, tok, c);
    if (c == '~' && s->format && pos + 1 < len && is_directive(t[pos + 1])) {
        tok->v.u = (uint8_t)t[pos + 1];
        return punct(s, tok, AMB__TK_DIRECTIVE, 2);
    }
    return scan_other(s, tok);
}

/* ---------------------------------------------------------------------------
 * Walkers over validated tokens
 * ------------------------------------------------------------------------ */

void amb__scan_chars_init(amb__scan_chars *c, const char *text, size_t start, size_t end)
{
    c->text = text;
    c->end = end;
    if (text[start] == '\'' || text[start] == '"') {
        c->quote = text[start];
        c->pos = start + 1;
    } else {
        c->quote = 0;
        c->pos = start;
    }
}

bool amb__scan_chars_next(amb__scan_chars *c, uint32_t *cp)
{
    if (c->pos >= c->end)
        return false;
    if (c->quote == 0) {
        size_t n = amb__scan_peek_cp(c->text, c->end, c->pos, cp);
        AMB__CHECK(n > 0);
        c->pos += n;
        return true;
    }
    /* A scanner over the span alone: it was validated, so it cannot fail. */
    amb__scan s;
    amb__scan_init(&s, c->text, c->end, false);
    for (;;) {
        size_t pos = c->pos;
        int rc = quoted_char(&s, &pos, c->quote, c->pos, cp);
        AMB__CHECK(rc >= 0);
        c->pos = pos;
        if (rc == 1)
            return true;
        /* The closing quote of one string of a run: continue with the next
         * string, past the whitespace and comments between them. */
        pos = amb__scan_skip_ws(c->text, c->end, pos);
        if (pos >= c->end) {
            c->pos = c->end;
            return false;
        }
        AMB__CHECK(c->text[pos] == c->quote);
        c->pos = pos + 1;
    }
}

const char *amb__scan_atom_name(const char *text, const amb__tok *tok, char *buf,
                                size_t *len)
{
    if (!(tok->flags & AMB__TF_ESCAPES)) {
        size_t q = (tok->flags & AMB__TF_QUOTED) ? 1 : 0;
        *len = tok->end - tok->start - 2 * q;
        return text + tok->start + q;
    }
    amb__scan_chars c;
    uint32_t cp;
    size_t n = 0;
    amb__scan_chars_init(&c, text, tok->start, tok->end);
    while (amb__scan_chars_next(&c, &cp)) {
        /* At most 255 characters of at most 4 bytes: within the buffer. */
        AMB__CHECK(n + 4 <= AMB_ATOM_MAX_BYTES);
        n += amb__utf8_encode(cp, (uint8_t *)buf + n);
    }
    *len = n;
    return buf;
}

void amb__scan_parts_of(const char *text, size_t len, const amb__tok *tok,
                        amb__scan_parts *f)
{
    amb__scan s;
    amb__scan_init(&s, text, len, false);
    size_t lt = tok->start;
    while (text[lt] != '<')
        lt++;
    s.pos = lt;
    int rc = form_body(&s, tok->kind, tok->start, f);
    AMB__CHECK(rc == 0);
}

/*
 * handshake.c - the version-6 distribution handshake as a state machine
 * (handshake.h has the exchange, the states and the rules).
 *
 * Shape: amb__handshake_feed cuts the input into packets ([Len:16][Body],
 * or [Len:32][Body] with len_size 4; buffered in hs->in until whole) and hands each to
 * the step the machine waits for (hs->step). Each step checks the packet's shape, updates
 * the result, appends its answer to hs->out and moves on, or fails. A failure records its
 * reason in hs->result and leaves any final status in the output; nothing after a failure
 * touches the input again.
 *
 * Invariants:
 *   - hs->in holds only the packet in progress: its length field is read
 *     (and refused above AMB__HS_PACKET_MAX) before any body byte is kept.
 *   - hs->out never overflows: its size covers the largest sequence of
 *     packets the machine can queue before the caller drains any (the name
 *     packet, a status, a challenge, a reply; AMB__CHECK guards it).
 *   - The cookie lives only in hs->cookie and is wiped when the machine
 *     ends (UP or FAILED) and by nothing else.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "dist_flags.h"
#include "etf_internal.h"
#include "handshake.h"
#include "internal.h"
#include "term_internal.h"

/* The packet the machine waits for. */
enum step {
    S_NAME,         /* acceptor: 'N' name */
    S_ALIVE_ANSWER, /* acceptor: 's' true/false after our alive */
    S_REPLY,        /* acceptor: 'r' challenge reply */
    S_STATUS,       /* initiator: 's' status */
    S_CHALLENGE,    /* initiator: 'N' challenge */
    S_ACK,          /* initiator: 'a' challenge ack */
    S_DONE,
};

static const char *const status_names[] = {
    [AMB__HS_STATUS_NONE] = "",
    [AMB__HS_STATUS_OK] = "ok",
    [AMB__HS_STATUS_OK_SIMULTANEOUS] = "ok_simultaneous",
    [AMB__HS_STATUS_NOK] = "nok",
    [AMB__HS_STATUS_NOT_ALLOWED] = "not_allowed",
    [AMB__HS_STATUS_ALIVE] = "alive",
    [AMB__HS_STATUS_NAMED] = "named:",
};

const char *amb__handshake_status_name(amb__hs_status status)
{
    return (unsigned)status < AMB_COUNTOF(status_names) ? status_names[status] : "?";
}

const char *amb__handshake_failure_name(amb__hs_failure failure)
{
    static const char *const names[] = {
        [AMB__HS_FAIL_NONE] = "none",
        [AMB__HS_FAIL_MALFORMED] = "malformed",
        [AMB__HS_FAIL_OVERSIZED] = "oversized",
        [AMB__HS_FAIL_VERSION] = "version",
        [AMB__HS_FAIL_BAD_NAME] = "bad_name",
        [AMB__HS_FAIL_NAME_MISMATCH] = "name_mismatch",
        [AMB__HS_FAIL_FLAGS] = "flags",
        [AMB__HS_FAIL_COOKIE] = "cookie",
        [AMB__HS_FAIL_REFUSED] = "refused",
        [AMB__HS_FAIL_CLOSED] = "closed",
        [AMB__HS_FAIL_CRYPTO] = "crypto",
    };
    return (unsigned)failure < AMB_COUNTOF(names) ? names[failure] : "?";
}

bool amb__handshake_name_valid(const char *name, size_t len, bool bare_host)
{
    size_t nchars;
    if (name == NULL || len == 0 || len > AMB__NODE_NAME_MAX ||
        memchr(name, 0, len) != NULL)
        return false;
    if (!amb__utf8_valid((const uint8_t *)name, len, &nchars) || nchars > 255)
        return false;
    const char *at = memchr(name, '@', len);
    if (bare_host)
        return at == NULL;
    /* Exactly one '@', with something on both sides (dist_util:is_name_ok). */
    return at != NULL && at != name && at != name + len - 1 &&
           memchr(at + 1, '@', (size_t)(name + len - at - 1)) == NULL;
}

int amb__handshake_digest(const uint8_t *cookie, size_t cookie_len, uint32_t challenge,
                          uint8_t digest[AMB__HS_DIGEST_SIZE])
{
    if ((cookie == NULL && cookie_len > 0) || cookie_len > AMB__HS_COOKIE_MAX ||
        digest == NULL)
        return AMB__MISUSE();
    /* integer_to_list(Challenge): unsigned decimal, no leading zeros. */
    uint8_t text[AMB__HS_COOKIE_MAX + 10];
    char digits[10];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + challenge % 10);
        challenge /= 10;
    } while (challenge > 0);
    if (cookie_len > 0)
        memcpy(text, cookie, cookie_len);
    for (size_t i = 0; i < nd; i++)
        text[cookie_len + i] = (uint8_t)digits[nd - 1 - i];
    unsigned int n = 0;
    int ok = EVP_Digest(text, cookie_len + nd, digest, &n, EVP_md5(), NULL);
    OPENSSL_cleanse(text, sizeof text);
    return ok == 1 && n == AMB__HS_DIGEST_SIZE ? 0 : AMB_ENOTSUP;
}

/* ---------------------------------------------------------------------------
 * Output and endings
 * ------------------------------------------------------------------------ */

/* The length field of a packet: 2 or 4 bytes (hs->len_size). */
static size_t get_len(const amb__handshake *hs, const uint8_t *p)
{
    return hs->len_size == 4 ? amb__etf_get32(p) : amb__etf_get16(p);
}

/* Appends one packet (its length, then body) to the output. */
static void emit(amb__handshake *hs, const uint8_t *body, size_t len)
{
    size_t ls = hs->len_size;
    AMB__CHECK(len <= UINT16_MAX && hs->out_len + ls + len <= sizeof hs->out);
    if (ls == 4)
        amb__etf_put32(hs->out + hs->out_len, (uint32_t)len);
    else
        amb__etf_put16(hs->out + hs->out_len, (uint16_t)len);
    memcpy(hs->out + hs->out_len + ls, body, len);
    hs->out_len += ls + len;
}

static void emit_status(amb__handshake *hs, const char *text)
{
    uint8_t body[32];
    size_t n = strlen(text);
    body[0] = 's';
    memcpy(body + 1, text, n);
    emit(hs, body, 1 + n);
}

static void finish(amb__handshake *hs, amb__hs_state state, amb__hs_failure why)
{
    hs->state = state;
    hs->step = S_DONE;
    hs->result.failure = why;
    OPENSSL_cleanse(hs->cookie, sizeof hs->cookie);
    hs->cookie_len = 0;
}

static void fail(amb__handshake *hs, amb__hs_failure why)
{
    finish(hs, AMB__HS_FAILED, why);
}

/* A fresh challenge from the CSPRNG. */
static bool new_challenge(amb__handshake *hs)
{
    uint8_t r[4];
    if (RAND_bytes(r, sizeof r) != 1)
        return false;
    hs->challenge = amb__etf_get32(r);
    return true;
}

/* Appends our 'N' packet: the initiator's name packet (Creation, no
 * challenge) or the acceptor's challenge packet (Challenge, Creation). */
static void emit_n(amb__handshake *hs, bool with_challenge)
{
    uint8_t body[1 + 8 + 4 + 4 + 2 + AMB__NODE_NAME_MAX];
    uint8_t *p = body;
    *p++ = 'N';
    amb__etf_put64(p, hs->flags);
    p += 8;
    if (with_challenge) {
        amb__etf_put32(p, hs->challenge);
        p += 4;
    }
    amb__etf_put32(p, hs->result.creation);
    p += 4;
    amb__etf_put16(p, (uint16_t)hs->result.name_len);
    p += 2;
    memcpy(p, hs->result.name, hs->result.name_len);
    p += hs->result.name_len;
    emit(hs, body, (size_t)(p - body));
}

/* The mandatory flags flags lacks (0 when none). */
static uint64_t missing_flags(const amb__handshake *hs, uint64_t peer)
{
    uint64_t need = AMB__DFLAGS_MANDATORY | hs->required;
    return need & ~peer;
}

static void set_name(char *dst, size_t *dst_len, const void *src, size_t len)
{
    memcpy(dst, src, len);
    dst[len] = '\0';
    *dst_len = len;
}

/* ---------------------------------------------------------------------------
 * Steps: each takes one whole packet body
 * ------------------------------------------------------------------------ */

/* Acceptor: 'N' Flags:64 Creation:32 Nlen:16 Name [ignored]. */
static void on_name(amb__handshake *hs, const uint8_t *b, size_t len)
{
    if (len >= 1 && b[0] == 'n') {
        fail(hs, AMB__HS_FAIL_VERSION);
        return;
    }
    if (len < 15 || b[0] != 'N') {
        fail(hs, AMB__HS_FAIL_MALFORMED);
        return;
    }
    uint64_t flags = amb__dflags_expand(amb__etf_get64(b + 1));
    size_t nlen = amb__etf_get16(b + 13);
    if (15 + nlen > len) {
        fail(hs, AMB__HS_FAIL_MALFORMED);
        return;
    }
    bool dynamic = (flags & AMB__DFLAG_NAME_ME) != 0;
    if (!amb__handshake_name_valid((const char *)b + 15, nlen, dynamic)) {
        fail(hs, AMB__HS_FAIL_BAD_NAME);
        return;
    }
    amb__hs_result *r = &hs->result;
    r->peer_flags = flags;
    r->peer_creation = amb__etf_get32(b + 9);
    set_name(r->peer_name, &r->peer_name_len, b + 15, nlen);
    if ((r->missing = missing_flags(hs, flags)) != 0) {
        r->status = AMB__HS_STATUS_NOT_ALLOWED;
        emit_status(hs, "not_allowed");
        fail(hs, AMB__HS_FAIL_FLAGS);
        return;
    }
    hs->state = AMB__HS_NEED_STATUS;
}

/* Acceptor: the challenge, once the status lets the peer go on. */
static void send_challenge(amb__handshake *hs)
{
    if (!new_challenge(hs)) {
        fail(hs, AMB__HS_FAIL_CRYPTO);
        return;
    }
    emit_n(hs, true);
    hs->step = S_REPLY;
}

/* Acceptor: 's' "true" | "false", the initiator's answer to alive. */
static void on_alive_answer(amb__handshake *hs, const uint8_t *b, size_t len)
{
    if (len == 5 && memcmp(b, "strue", 5) == 0) {
        hs->result.replaced_alive = true;
        send_challenge(hs);
    } else if (len == 6 && memcmp(b, "sfalse", 6) == 0) {
        fail(hs, AMB__HS_FAIL_REFUSED);
    } else {
        fail(hs, AMB__HS_FAIL_MALFORMED);
    }
}

/* Checks a received digest against the one for our challenge. */
static void check_digest(amb__handshake *hs, const uint8_t *digest)
{
    uint8_t want[AMB__HS_DIGEST_SIZE];
    if (amb__handshake_digest(hs->cookie, hs->cookie_len, hs->challenge, want) != 0) {
        fail(hs, AMB__HS_FAIL_CRYPTO);
        return;
    }
    bool ok = CRYPTO_memcmp(want, digest, sizeof want) == 0;
    OPENSSL_cleanse(want, sizeof want);
    if (!ok)
        fail(hs, AMB__HS_FAIL_COOKIE);
}

/* Acceptor: 'r' ChallengeA:32 Digest:16, exactly (dist_util demands 16
 * digest bytes); answer 'a' Digest(ChallengeA). */
static void on_reply(amb__handshake *hs, const uint8_t *b, size_t len)
{
    if (len != 21 || b[0] != 'r') {
        fail(hs, AMB__HS_FAIL_MALFORMED);
        return;
    }
    check_digest(hs, b + 5);
    if (hs->state == AMB__HS_FAILED)
        return;
    uint8_t ack[1 + AMB__HS_DIGEST_SIZE];
    ack[0] = 'a';
    if (amb__handshake_digest(hs->cookie, hs->cookie_len, amb__etf_get32(b + 1),
                              ack + 1) != 0) {
        fail(hs, AMB__HS_FAIL_CRYPTO);
        return;
    }
    emit(hs, ack, sizeof ack);
    OPENSSL_cleanse(ack, sizeof ack);
    hs->result.flags = hs->flags & hs->result.peer_flags;
    finish(hs, AMB__HS_UP, AMB__HS_FAIL_NONE);
}

/* Initiator: 's' Status. */
static void on_status(amb__handshake *hs, const uint8_t *b, size_t len)
{
    amb__hs_result *r = &hs->result;
    bool asked_name = (hs->flags & AMB__DFLAG_NAME_ME) != 0;
    if (len < 1 || b[0] != 's') {
        fail(hs, AMB__HS_FAIL_MALFORMED);
        return;
    }
    const char *text = (const char *)b + 1;
    size_t n = len - 1;
#define IS(word) (n == sizeof word - 1 && memcmp(text, word, n) == 0)
    if (n >= 6 && memcmp(text, "named:", 6) == 0) {
        /* 'named:' Nlen:16 Name Creation:32 [ignored]: our name, which must be
         * some alive part at the host we sent. */
        r->status = AMB__HS_STATUS_NAMED;
        size_t nlen = n >= 8 ? amb__etf_get16(b + 7) : SIZE_MAX;
        if (!asked_name || nlen == SIZE_MAX || 9 + nlen + 4 > len) {
            fail(hs, AMB__HS_FAIL_MALFORMED);
            return;
        }
        const char *name = (const char *)b + 9;
        const char *at = memchr(name, '@', nlen);
        if (!amb__handshake_name_valid(name, nlen, false) || at == NULL ||
            (size_t)(name + nlen - at - 1) != r->name_len ||
            memcmp(at + 1, r->name, r->name_len) != 0) {
            fail(hs, AMB__HS_FAIL_BAD_NAME);
            return;
        }
        set_name(r->name, &r->name_len, name, nlen);
        r->creation = amb__etf_get32(b + 9 + nlen);
        hs->step = S_CHALLENGE;
    } else if (IS("ok") || IS("ok_simultaneous")) {
        r->status = IS("ok") ? AMB__HS_STATUS_OK : AMB__HS_STATUS_OK_SIMULTANEOUS;
        if (asked_name) /* a dynamic name needs named: (dist_util) */
            fail(hs, AMB__HS_FAIL_MALFORMED);
        else
            hs->step = S_CHALLENGE;
    } else if (IS("alive")) {
        r->status = AMB__HS_STATUS_ALIVE;
        if (asked_name)
            fail(hs, AMB__HS_FAIL_MALFORMED);
        else
            hs->state = AMB__HS_NEED_ALIVE;
    } else if (IS("nok") || IS("not_allowed")) {
        r->status = IS("nok") ? AMB__HS_STATUS_NOK : AMB__HS_STATUS_NOT_ALLOWED;
        fail(hs, AMB__HS_FAIL_REFUSED);
    } else {
        fail(hs, AMB__HS_FAIL_MALFORMED);
    }
#undef IS
}

/* Initiator: 'N' Flags:64 Challenge:32 Creation:32 Nlen:16 Name [ignored];
 * answer 'r' ChallengeA Digest(ChallengeB). */
static void on_challenge(amb__handshake *hs, const uint8_t *b, size_t len)
{
    amb__hs_result *r = &hs->result;
    if (len < 19 || b[0] != 'N') {
        fail(hs, AMB__HS_FAIL_MALFORMED);
        return;
    }
    size_t nlen = amb__etf_get16(b + 17);
    if (19 + nlen > len) {
        fail(hs, AMB__HS_FAIL_MALFORMED);
        return;
    }
    const char *name = (const char *)b + 19;
    if (!amb__handshake_name_valid(name, nlen, false)) {
        fail(hs, AMB__HS_FAIL_BAD_NAME);
        return;
    }
    set_name(r->peer_name, &r->peer_name_len, name, nlen);
    r->peer_flags = amb__dflags_expand(amb__etf_get64(b + 1));
    r->peer_creation = amb__etf_get32(b + 13);
    if (hs->expect_len > 0 &&
        (nlen != hs->expect_len || memcmp(name, hs->expect, nlen) != 0)) {
        fail(hs, AMB__HS_FAIL_NAME_MISMATCH);
        return;
    }
    if ((r->missing = missing_flags(hs, r->peer_flags)) != 0) {
        fail(hs, AMB__HS_FAIL_FLAGS);
        return;
    }
    uint8_t reply[1 + 4 + AMB__HS_DIGEST_SIZE];
    reply[0] = 'r';
    if (!new_challenge(hs) ||
        amb__handshake_digest(hs->cookie, hs->cookie_len, amb__etf_get32(b + 9),
                              reply + 5) != 0) {
        fail(hs, AMB__HS_FAIL_CRYPTO);
        return;
    }
    amb__etf_put32(reply + 1, hs->challenge);
    emit(hs, reply, sizeof reply);
    OPENSSL_cleanse(reply, sizeof reply);
    hs->step = S_ACK;
}

/* Initiator: 'a' Digest:16, exactly. */
static void on_ack(amb__handshake *hs, const uint8_t *b, size_t len)
{
    if (len != 17 || b[0] != 'a') {
        fail(hs, AMB__HS_FAIL_MALFORMED);
        return;
    }
    check_digest(hs, b + 1);
    if (hs->state == AMB__HS_FAILED)
        return;
    hs->result.flags = hs->flags & hs->result.peer_flags;
    finish(hs, AMB__HS_UP, AMB__HS_FAIL_NONE);
}

static void on_packet(amb__handshake *hs, const uint8_t *b, size_t len)
{
    switch (hs->step) {
    case S_NAME:
        on_name(hs, b, len);
        break;
    case S_ALIVE_ANSWER:
        on_alive_answer(hs, b, len);
        break;
    case S_REPLY:
        on_reply(hs, b, len);
        break;
    case S_STATUS:
        on_status(hs, b, len);
        break;
    case S_CHALLENGE:
        on_challenge(hs, b, len);
        break;
    case S_ACK:
        on_ack(hs, b, len);
        break;
    default:
        amb__panic("handshake: packet in step %d", hs->step);
    }
}

/* ---------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------ */

int amb__handshake_init(amb__handshake *hs, amb__hs_role role, const amb__hs_config *cfg)
{
    if (hs == NULL || cfg == NULL ||
        (role != AMB__HS_INITIATOR && role != AMB__HS_ACCEPTOR))
        return AMB__MISUSE();
    uint64_t flags = cfg->flags ? cfg->flags : AMB__DFLAGS_DEFAULT;
    bool name_me = (flags & AMB__DFLAG_NAME_ME) != 0;
    if ((flags & AMB__DFLAGS_MANDATORY) != AMB__DFLAGS_MANDATORY ||
        (name_me && role != AMB__HS_INITIATOR) ||
        !amb__handshake_name_valid(cfg->name, cfg->name_len, name_me) ||
        cfg->cookie == NULL || cfg->cookie_len == 0 ||
        cfg->cookie_len > AMB__HS_COOKIE_MAX ||
        (cfg->len_size != 0 && cfg->len_size != 2 && cfg->len_size != 4) ||
        (cfg->peer_name != NULL &&
         !amb__handshake_name_valid(cfg->peer_name, cfg->peer_name_len, false)))
        return AMB__MISUSE();
    memset(hs, 0, offsetof(amb__handshake, in));
    memset(&hs->result, 0, sizeof hs->result);
    hs->out_len = 0;
    hs->role = role;
    hs->state = AMB__HS_RUNNING;
    hs->len_size = cfg->len_size == 4 ? 4 : 2;
    hs->flags = flags;
    hs->required = cfg->required;
    hs->cookie_len = cfg->cookie_len;
    memcpy(hs->cookie, cfg->cookie, cfg->cookie_len);
    hs->expect_len = cfg->peer_name ? cfg->peer_name_len : 0;
    if (hs->expect_len > 0)
        memcpy(hs->expect, cfg->peer_name, hs->expect_len);
    set_name(hs->result.name, &hs->result.name_len, cfg->name, cfg->name_len);
    hs->result.creation = cfg->creation;
    if (role == AMB__HS_INITIATOR) {
        emit_n(hs, false);
        hs->step = S_STATUS;
    } else {
        hs->step = S_NAME;
    }
    return 0;
}

int amb__handshake_feed(amb__handshake *hs, const uint8_t *in, size_t len,
                        size_t *consumed)
{
    if (hs == NULL || consumed == NULL || (in == NULL && len > 0))
        return AMB__MISUSE();
    *consumed = 0;
    if (hs->state != AMB__HS_RUNNING)
        return AMB_ESTATE;
    size_t took = 0;
    size_t ls = hs->len_size;
    while (took < len && hs->state == AMB__HS_RUNNING) {
        /* The length field first, then exactly the body it announces. */
        size_t want = ls;
        if (hs->in_len >= ls)
            want = ls + get_len(hs, hs->in);
        size_t n = want - hs->in_len;
        if (n > len - took)
            n = len - took;
        memcpy(hs->in + hs->in_len, in + took, n);
        hs->in_len += n;
        took += n;
        if (hs->in_len == ls) {
            size_t body = get_len(hs, hs->in);
            if (body > AMB__HS_PACKET_MAX) {
                fail(hs, AMB__HS_FAIL_OVERSIZED);
                break;
            }
            if (body == 0) {
                fail(hs, AMB__HS_FAIL_MALFORMED);
                break;
            }
            continue;
        }
        if (hs->in_len > ls && hs->in_len == ls + get_len(hs, hs->in)) {
            size_t body = hs->in_len - ls;
            hs->in_len = 0;
            on_packet(hs, hs->in + ls, body);
        }
    }
    *consumed = took;
    return 0;
}

const uint8_t *amb__handshake_output(const amb__handshake *hs, size_t *len)
{
    if (hs == NULL) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = hs->out_len;
    return hs->out;
}

void amb__handshake_output_done(amb__handshake *hs, size_t n)
{
    if (hs == NULL)
        return;
    if (n > hs->out_len)
        n = hs->out_len;
    memmove(hs->out, hs->out + n, hs->out_len - n);
    hs->out_len -= n;
}

int amb__handshake_set_status(amb__handshake *hs, amb__hs_status status, const char *name,
                              size_t name_len, uint32_t creation)
{
    if (hs == NULL)
        return AMB__MISUSE();
    if (hs->state != AMB__HS_NEED_STATUS)
        return AMB_ESTATE;
    amb__hs_result *r = &hs->result;
    bool dynamic = (r->peer_flags & AMB__DFLAG_NAME_ME) != 0;
    switch (status) {
    case AMB__HS_STATUS_OK:
    case AMB__HS_STATUS_OK_SIMULTANEOUS:
    case AMB__HS_STATUS_ALIVE:
        if (dynamic) /* such a peer only goes on with named: */
            return AMB__MISUSE();
        break;
    case AMB__HS_STATUS_NAMED: {
        /* The name must be alive@<the host the peer sent>. */
        const char *at = name ? memchr(name, '@', name_len) : NULL;
        if (!dynamic || !amb__handshake_name_valid(name, name_len, false) ||
            (size_t)(name + name_len - at - 1) != r->peer_name_len ||
            memcmp(at + 1, r->peer_name, r->peer_name_len) != 0)
            return AMB__MISUSE();
        break;
    }
    case AMB__HS_STATUS_NOK:
    case AMB__HS_STATUS_NOT_ALLOWED:
        break;
    default:
        return AMB__MISUSE();
    }
    r->status = status;
    hs->state = AMB__HS_RUNNING;
    if (status == AMB__HS_STATUS_NAMED) {
        uint8_t body[1 + 6 + 2 + AMB__NODE_NAME_MAX + 4];
        memcpy(body, "snamed:", 7);
        amb__etf_put16(body + 7, (uint16_t)name_len);
        memcpy(body + 9, name, name_len);
        amb__etf_put32(body + 9 + name_len, creation);
        emit(hs, body, 9 + name_len + 4);
        set_name(r->peer_name, &r->peer_name_len, name, name_len);
        r->peer_creation = creation;
    } else {
        emit_status(hs, amb__handshake_status_name(status));
    }
    switch (status) {
    case AMB__HS_STATUS_NOK:
    case AMB__HS_STATUS_NOT_ALLOWED:
        fail(hs, AMB__HS_FAIL_REFUSED);
        break;
    case AMB__HS_STATUS_ALIVE:
        hs->step = S_ALIVE_ANSWER;
        break;
    default:
        send_challenge(hs);
        break;
    }
    return 0;
}

int amb__handshake_answer_alive(amb__handshake *hs, bool go_on)
{
    if (hs == NULL)
        return AMB__MISUSE();
    if (hs->state != AMB__HS_NEED_ALIVE)
        return AMB_ESTATE;
    hs->state = AMB__HS_RUNNING;
    emit_status(hs, go_on ? "true" : "false");
    if (go_on)
        hs->step = S_CHALLENGE;
    else
        fail(hs, AMB__HS_FAIL_REFUSED);
    return 0;
}

void amb__handshake_eof(amb__handshake *hs)
{
    if (hs != NULL && hs->state != AMB__HS_UP && hs->state != AMB__HS_FAILED)
        fail(hs, AMB__HS_FAIL_CLOSED);
}

amb__hs_state amb__handshake_state(const amb__handshake *hs)
{
    return hs ? hs->state : AMB__HS_FAILED;
}

const amb__hs_result *amb__handshake_result(const amb__handshake *hs)
{
    return hs ? &hs->result : NULL;
}

/*
 * control.c - control messages between amb__dist_ctl and bytes (control.h
 * has the table of messages and the rules).
 *
 * One table drives both directions: for every op, the kind and the struct
 * slot of each tuple element after the op, and what follows the tuple. The
 * decoder checks each element against its kind as it stores it; the encoder
 * checks the struct against the same kinds before writing a byte, so what
 * we send is what we would accept.
 *
 * The encoder writes the control tuple itself (SMALL_TUPLE, the op as
 * SMALL_INTEGER, then each field with amb_etf_encode), and integers the way
 * OTP does, so no scratch heap is needed and the bytes equal erl's.
 */
#include <string.h>

#include "control.h"
#include "internal.h"
#include "term_internal.h"

/* What an element must be. */
enum kind {
    K_NONE,
    K_ANY,         /* Unused, Token, Reason */
    K_PID,         /* From, To, GroupLeader */
    K_ATOM,        /* ToName */
    K_PID_OR_ATOM, /* ToProc, FromProc, Result */
    K_REF,         /* Ref, ReqId, Alias */
    K_ID,          /* an integer 1..2^64-1 */
    K_UINT,        /* an integer 0..2^64-1 */
    K_MFA,         /* {Module, Function, Arity} */
    K_LIST,        /* a proper list */
};

/* Where an element goes in amb__dist_ctl. */
enum slot {
    F_FROM,
    F_TO,
    F_REF,
    F_REASON,
    F_TOKEN,
    F_UNUSED,
    F_ID,
    F_GL,
    F_MFA,
    F_OPTS,
    F_SFLAGS,
    F_RESULT,
};

/* What follows the tuple. */
enum payload { P_NONE, P_MESSAGE, P_REASON, P_ARGS };

#define MAX_FIELDS 6

typedef struct field {
    uint8_t kind, slot;
} field;

typedef struct op_desc {
    const char *name;
    uint8_t nfields; /* elements after the op */
    uint8_t payload;
    field f[MAX_FIELDS];
} op_desc;

#define FROM_PID      \
    {                 \
        K_PID, F_FROM \
    }
#define TO_PID      \
    {               \
        K_PID, F_TO \
    }
#define TOKEN          \
    {                  \
        K_ANY, F_TOKEN \
    }
#define REASON          \
    {                   \
        K_ANY, F_REASON \
    }
#define UNUSED          \
    {                   \
        K_ANY, F_UNUSED \
    }
#define MON_REF      \
    {                \
        K_REF, F_REF \
    }
#define UNLINK_ID  \
    {              \
        K_ID, F_ID \
    }

static const op_desc ops[AMB__DOP_MAX + 1] = {
    [AMB__DOP_LINK] = {"LINK", 2, P_NONE, {FROM_PID, TO_PID}},
    [AMB__DOP_SEND] = {"SEND", 2, P_MESSAGE, {UNUSED, TO_PID}},
    [AMB__DOP_EXIT] = {"EXIT", 3, P_NONE, {FROM_PID, TO_PID, REASON}},
    [AMB__DOP_UNLINK] = {"UNLINK", 2, P_NONE, {FROM_PID, TO_PID}},
    [AMB__DOP_NODE_LINK] = {"NODE_LINK", 0, P_NONE, {{0, 0}}},
    [AMB__DOP_REG_SEND] = {"REG_SEND", 3, P_MESSAGE, {FROM_PID, UNUSED, {K_ATOM, F_TO}}},
    [AMB__DOP_GROUP_LEADER] = {"GROUP_LEADER", 2, P_NONE, {FROM_PID, TO_PID}},
    [AMB__DOP_EXIT2] = {"EXIT2", 3, P_NONE, {FROM_PID, TO_PID, REASON}},
    [AMB__DOP_SEND_TT] = {"SEND_TT", 3, P_MESSAGE, {UNUSED, TO_PID, TOKEN}},
    [AMB__DOP_EXIT_TT] = {"EXIT_TT", 4, P_NONE, {FROM_PID, TO_PID, TOKEN, REASON}},
    [AMB__DOP_REG_SEND_TT] = {"REG_SEND_TT",
                              4,
                              P_MESSAGE,
                              {FROM_PID, UNUSED, {K_ATOM, F_TO}, TOKEN}},
    [AMB__DOP_EXIT2_TT] = {"EXIT2_TT", 4, P_NONE, {FROM_PID, TO_PID, TOKEN, REASON}},
    [AMB__DOP_MONITOR_P] = {"MONITOR_P",
                            3,
                            P_NONE,
                            {FROM_PID, {K_PID_OR_ATOM, F_TO}, MON_REF}},
    [AMB__DOP_DEMONITOR_P] = {"DEMONITOR_P",
                              3,
                              P_NONE,
                              {FROM_PID, {K_PID_OR_ATOM, F_TO}, MON_REF}},
    [AMB__DOP_MONITOR_P_EXIT] = {"MONITOR_P_EXIT",
                                 4,
                                 P_NONE,
                                 {{K_PID_OR_ATOM, F_FROM}, TO_PID, MON_REF, REASON}},
    [AMB__DOP_SEND_SENDER] = {"SEND_SENDER", 2, P_MESSAGE, {FROM_PID, TO_PID}},
    [AMB__DOP_SEND_SENDER_TT] = {"SEND_SENDER_TT",
                                 3,
                                 P_MESSAGE,
                                 {FROM_PID, TO_PID, TOKEN}},
    [AMB__DOP_PAYLOAD_EXIT] = {"PAYLOAD_EXIT", 2, P_REASON, {FROM_PID, TO_PID}},
    [AMB__DOP_PAYLOAD_EXIT_TT] = {"PAYLOAD_EXIT_TT",
                                  3,
                                  P_REASON,
                                  {FROM_PID, TO_PID, TOKEN}},
    [AMB__DOP_PAYLOAD_EXIT2] = {"PAYLOAD_EXIT2", 2, P_REASON, {FROM_PID, TO_PID}},
    [AMB__DOP_PAYLOAD_EXIT2_TT] = {"PAYLOAD_EXIT2_TT",
                                   3,
                                   P_REASON,
                                   {FROM_PID, TO_PID, TOKEN}},
    [AMB__DOP_PAYLOAD_MONITOR_P_EXIT] = {"PAYLOAD_MONITOR_P_EXIT",
                                         3,
                                         P_REASON,
                                         {{K_PID_OR_ATOM, F_FROM}, TO_PID, MON_REF}},
    [AMB__DOP_SPAWN_REQUEST] =
        {"SPAWN_REQUEST",
         5,
         P_ARGS,
         {MON_REF, FROM_PID, {K_PID, F_GL}, {K_MFA, F_MFA}, {K_LIST, F_OPTS}}},
    [AMB__DOP_SPAWN_REQUEST_TT] =
        {"SPAWN_REQUEST_TT",
         6,
         P_ARGS,
         {MON_REF, FROM_PID, {K_PID, F_GL}, {K_MFA, F_MFA}, {K_LIST, F_OPTS}, TOKEN}},
    [AMB__DOP_SPAWN_REPLY] =
        {"SPAWN_REPLY",
         4,
         P_NONE,
         {MON_REF, TO_PID, {K_UINT, F_SFLAGS}, {K_PID_OR_ATOM, F_RESULT}}},
    [AMB__DOP_SPAWN_REPLY_TT] =
        {"SPAWN_REPLY_TT",
         5,
         P_NONE,
         {MON_REF, TO_PID, {K_UINT, F_SFLAGS}, {K_PID_OR_ATOM, F_RESULT}, TOKEN}},
    [AMB__DOP_ALIAS_SEND] = {"ALIAS_SEND", 2, P_MESSAGE, {FROM_PID, {K_REF, F_TO}}},
    [AMB__DOP_ALIAS_SEND_TT] = {"ALIAS_SEND_TT",
                                3,
                                P_MESSAGE,
                                {FROM_PID, {K_REF, F_TO}, TOKEN}},
    [AMB__DOP_UNLINK_ID] = {"UNLINK_ID", 3, P_NONE, {UNLINK_ID, FROM_PID, TO_PID}},
    [AMB__DOP_UNLINK_ID_ACK] = {"UNLINK_ID_ACK",
                                3,
                                P_NONE,
                                {UNLINK_ID, FROM_PID, TO_PID}},
};

static const op_desc *desc_of(int op)
{
    if (op <= 0 || op > AMB__DOP_MAX || ops[op].name == NULL)
        return NULL;
    return &ops[op];
}

bool amb__control_known(int op)
{
    return desc_of(op) != NULL;
}

bool amb__control_has_payload(int op)
{
    const op_desc *d = desc_of(op);
    return d != NULL && d->payload != P_NONE;
}

const char *amb__control_name(int op)
{
    const op_desc *d = desc_of(op);
    return d ? d->name : "?";
}

/* ---------------------------------------------------------------------------
 * Kinds
 * ------------------------------------------------------------------------ */

static bool is_pid(amb_term t)
{
    return amb_type_of(t) == AMB_T_PID;
}

static bool is_ref(amb_term t)
{
    return amb_type_of(t) == AMB_T_REF;
}

static bool proper_list(amb_term t, size_t *n)
{
    return amb_list_length(t, n) == 0;
}

/* An integer term's value in 0..2^64-1. */
static bool uint_value(amb_term t, uint64_t *v)
{
    return amb_is_integer(t) && amb_uint_get(t, v) == 0;
}

/* {Module, Function, Arity} with two atoms and an arity 0..255. */
static bool mfa_parts(amb_term t, amb_term *m, amb_term *f, unsigned *a)
{
    uint64_t arity;
    if (!amb_is_tuple(t) || amb_tuple_arity(t) != 3)
        return false;
    amb_term mt = amb_tuple_elem(t, 0), ft = amb_tuple_elem(t, 1);
    if (!amb_is_atom(mt) || !amb_is_atom(ft) ||
        !uint_value(amb_tuple_elem(t, 2), &arity) || arity > 255)
        return false;
    *m = mt;
    *f = ft;
    *a = (unsigned)arity;
    return true;
}

static amb_term *term_slot(amb__dist_ctl *c, unsigned slot)
{
    switch (slot) {
    case F_FROM:
        return &c->from;
    case F_TO:
        return &c->to;
    case F_REF:
        return &c->ref;
    case F_REASON:
        return &c->reason;
    case F_TOKEN:
        return &c->token;
    case F_UNUSED:
        return &c->unused;
    case F_GL:
        return &c->group_leader;
    case F_OPTS:
        return &c->opts;
    case F_RESULT:
        return &c->result;
    default:
        return NULL;
    }
}

/* Checks t against kind and stores it in its slot of *c. */
static bool store(amb__dist_ctl *c, const field *f, amb_term t)
{
    uint64_t v;
    size_t n;
    switch (f->kind) {
    case K_ANY:
        break;
    case K_PID:
        if (!is_pid(t))
            return false;
        break;
    case K_ATOM:
        if (!amb_is_atom(t))
            return false;
        break;
    case K_PID_OR_ATOM:
        if (!is_pid(t) && !amb_is_atom(t))
            return false;
        break;
    case K_REF:
        if (!is_ref(t))
            return false;
        break;
    case K_ID:
        if (!uint_value(t, &v) || v == 0)
            return false;
        c->id = v;
        return true;
    case K_UINT:
        if (!uint_value(t, &v))
            return false;
        c->spawn_flags = v;
        return true;
    case K_MFA:
        return mfa_parts(t, &c->module, &c->function, &c->arity);
    case K_LIST:
        if (!proper_list(t, &n))
            return false;
        break;
    default:
        return false;
    }
    *term_slot(c, f->slot) = t;
    return true;
}

/* ---------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------ */

static int decode_term(amb_heap *heap, const uint8_t *p, size_t len, bool versioned,
                       const amb__control_limits *lim, amb_term *out, size_t *used)
{
    amb_etf_decode_opts opts = {
        .flags = versioned ? 0 : AMB_ETF_NO_VERSION,
        .max_depth = lim ? lim->max_depth : 0,
        .max_decompressed = lim ? lim->max_decompressed : 0,
    };
    return amb__etf_decode_refs(heap, p, len, &opts, lim ? lim->atoms : NULL,
                                lim ? lim->atom_refs : NULL, lim ? lim->n_atom_refs : 0,
                                out, used);
}

int amb__control_decode(amb_heap *heap, const uint8_t *body, size_t len, bool versioned,
                        const amb__control_limits *limits, amb__dist_ctl *out)
{
    if (heap == NULL || out == NULL || (body == NULL && len > 0))
        return AMB__MISUSE();
    amb_term tuple;
    size_t used;
    int rc = decode_term(heap, body, len, versioned, limits, &tuple, &used);
    if (rc != 0)
        return rc;
    int64_t op;
    size_t arity = amb_tuple_arity(tuple);
    if (!amb_is_tuple(tuple) || arity == 0 || !amb_is_small(amb_tuple_elem(tuple, 0)))
        return AMB_EDECODE;
    op = amb_small_value(amb_tuple_elem(tuple, 0));
    const op_desc *d = op > 0 && op <= AMB__DOP_MAX ? desc_of((int)op) : NULL;
    if (d == NULL || arity != 1u + d->nfields)
        return AMB_EDECODE;
    amb__dist_ctl c = {.op = (int)op};
    for (size_t i = 0; i < d->nfields; i++)
        if (!store(&c, &d->f[i], amb_tuple_elem(tuple, 1 + i)))
            return AMB_EDECODE;
    if (d->payload != P_NONE) {
        size_t more;
        amb_term t;
        rc = decode_term(heap, body + used, len - used, versioned, limits, &t, &more);
        if (rc != 0)
            return rc;
        used += more;
        if (d->payload == P_REASON) {
            c.reason = t;
        } else {
            size_t n;
            if (d->payload == P_ARGS && (!proper_list(t, &n) || n != c.arity))
                return AMB_EDECODE;
            c.message = t;
        }
    }
    if (used != len)
        return AMB_EDECODE;
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------ */

/* An unsigned integer the way OTP writes it: SMALL_INTEGER below 256,
 * INTEGER below 2^31, else SMALL_BIG with the fewest bytes. Returns the size
 * and writes it when p is not NULL. */
static size_t put_uint(uint8_t *p, uint64_t v)
{
    if (v < 256) {
        if (p) {
            p[0] = AMB__ETF_SMALL_INTEGER;
            p[1] = (uint8_t)v;
        }
        return 2;
    }
    if (v <= INT32_MAX) {
        if (p) {
            p[0] = AMB__ETF_INTEGER;
            amb__etf_put32(p + 1, (uint32_t)v);
        }
        return 5;
    }
    size_t n = 0;
    for (uint64_t x = v; x != 0; x >>= 8)
        n++;
    if (p) {
        p[0] = AMB__ETF_SMALL_BIG;
        p[1] = (uint8_t)n;
        p[2] = 0;
        for (size_t i = 0; i < n; i++)
            p[3 + i] = (uint8_t)(v >> (8 * i));
    }
    return 3 + n;
}

/* The empty atom '' (SMALL_ATOM_UTF8 of length 0), OTP's Unused value. */
static const uint8_t empty_atom[] = {AMB__ETF_SMALL_ATOM_UTF8, 0};

/* True when c's value for element f fits the element's kind (an Unused
 * left AMB_NONE fits: it is written as ''). */
static bool field_ok(const amb__dist_ctl *c, const field *f)
{
    amb__dist_ctl copy = *c;
    amb_term t;
    switch (f->kind) {
    case K_ID:
        return c->id != 0;
    case K_UINT:
        return true;
    case K_MFA:
        return amb_is_atom(c->module) && amb_is_atom(c->function) && c->arity <= 255;
    case K_ANY:
        t = *term_slot(&copy, f->slot);
        return t != AMB_NONE || f->slot == F_UNUSED;
    default:
        t = *term_slot(&copy, f->slot);
        return store(&copy, f, t);
    }
}

/* Bytes of element f of c, written at p when p is not NULL. */
static int put_field(const amb__dist_ctl *c, const field *f, uint8_t *p, size_t cap,
                     size_t *len)
{
    amb__dist_ctl copy = *c;
    switch (f->kind) {
    case K_ID:
        *len = put_uint(p, c->id);
        return 0;
    case K_UINT:
        *len = put_uint(p, c->spawn_flags);
        return 0;
    case K_MFA: {
        size_t n = 2, m;
        amb_term parts[2] = {c->module, c->function};
        if (p) {
            p[0] = AMB__ETF_SMALL_TUPLE;
            p[1] = 3;
        }
        for (int i = 0; i < 2; i++) {
            int rc = p ? amb_etf_encode(parts[i], AMB_ETF_NO_VERSION, p + n, cap - n, &m)
                       : amb_etf_size(parts[i], AMB_ETF_NO_VERSION, &m);
            if (rc != 0)
                return rc;
            n += m;
        }
        n += put_uint(p ? p + n : NULL, c->arity);
        *len = n;
        return 0;
    }
    default: {
        amb_term t = *term_slot(&copy, f->slot);
        if (t == AMB_NONE) { /* Unused */
            if (p)
                memcpy(p, empty_atom, sizeof empty_atom);
            *len = sizeof empty_atom;
            return 0;
        }
        return p ? amb_etf_encode(t, AMB_ETF_NO_VERSION, p, cap, len)
                 : amb_etf_size(t, AMB_ETF_NO_VERSION, len);
    }
    }
}

/* The control tuple's bytes (without 131), written at p when not NULL. */
static int put_tuple(const amb__dist_ctl *c, const op_desc *d, uint8_t *p, size_t cap,
                     size_t *len)
{
    size_t n = 4;
    if (p) {
        p[0] = AMB__ETF_SMALL_TUPLE;
        p[1] = (uint8_t)(1 + d->nfields);
        p[2] = AMB__ETF_SMALL_INTEGER;
        p[3] = (uint8_t)c->op;
    }
    for (size_t i = 0; i < d->nfields; i++) {
        size_t m;
        int rc = put_field(c, &d->f[i], p ? p + n : NULL, p ? cap - n : 0, &m);
        if (rc != 0)
            return rc;
        n += m;
    }
    *len = n;
    return 0;
}

static amb_term payload_term(const amb__dist_ctl *c, const op_desc *d)
{
    return d->payload == P_REASON ? c->reason : c->message;
}

int amb__control_encode(const amb__dist_ctl *c, bool versioned, amb__dist_wire *out)
{
    if (c == NULL || out == NULL)
        return AMB__MISUSE();
    const op_desc *d = desc_of(c->op);
    if (d == NULL)
        return AMB__MISUSE();
    for (size_t i = 0; i < d->nfields; i++)
        if (!field_ok(c, &d->f[i]))
            return AMB__MISUSE();
    amb_term payload = AMB_NONE;
    if (d->payload != P_NONE) {
        payload = payload_term(c, d);
        size_t n;
        if (payload == AMB_NONE ||
            (d->payload == P_ARGS && (!proper_list(payload, &n) || n != c->arity)))
            return AMB__MISUSE();
    }
    size_t v = versioned ? 1 : 0, ctl_len, msg_len = 0;
    int rc = put_tuple(c, d, NULL, 0, &ctl_len);
    if (rc == 0 && payload != AMB_NONE)
        rc = amb_etf_size(payload, AMB_ETF_NO_VERSION, &msg_len);
    if (rc != 0)
        return rc;
    size_t total = v + ctl_len + (payload != AMB_NONE ? v + msg_len : 0);
    uint8_t *buf = amb__malloc(total);
    if (buf == NULL)
        return AMB_ENOMEM;
    uint8_t *p = buf;
    if (v)
        *p++ = AMB_ETF_VERSION;
    size_t n;
    rc = put_tuple(c, d, p, ctl_len, &n);
    AMB__CHECK(rc != 0 || n == ctl_len);
    p += ctl_len;
    if (rc == 0 && payload != AMB_NONE) {
        if (v)
            *p++ = AMB_ETF_VERSION;
        rc = amb_etf_encode(payload, AMB_ETF_NO_VERSION, p, msg_len, &n);
        AMB__CHECK(rc != 0 || n == msg_len);
    }
    if (rc != 0) {
        amb__free(buf);
        return rc;
    }
    out->ctl = buf;
    out->ctl_len = v + ctl_len;
    out->msg = payload != AMB_NONE ? buf + v + ctl_len : NULL;
    out->msg_len = payload != AMB_NONE ? v + msg_len : 0;
    return 0;
}

void amb__control_wire_free(amb__dist_wire *w)
{
    if (w == NULL)
        return;
    amb__free(w->ctl);
    w->ctl = w->msg = NULL;
    w->ctl_len = w->msg_len = 0;
}

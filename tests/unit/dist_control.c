/*
 * dist_control.c - control messages (src/dist/control.h): erl's bytes for
 * control tuples decode to the right fields and encode back to the same
 * bytes; every op round-trips in both term forms (with and without 131);
 * every type rule and shape rule refuses what it must; the atom budget
 * holds; truncation at every offset is an error, never a crash; allocation
 * failures are clean.
 *
 * The e_* vectors are term_to_binary(T, [{minor_version, 2}]) on an OTP 25
 * node, the form an OTP node writes on a connection; the pids are
 * <<131,88,119,3,"a@h",Id:32,0:32,1:32>> and the ref
 * <<131,90,0,3,119,3,"a@h",1:32,1:32,2:32,3:32>>.
 */
#include <unistd.h>

#include "amb_test.h"
#include "dist/control.h"

/* clang-format off */
static const uint8_t e_link[] = {131,104,3,97,1,88,119,3,97,64,104,0,0,0,1,0,0,0,0,0,0,0,1,88,119,3,97,64,104,0,0,0,2,0,0,0,0,0,0,0,1};
static const uint8_t e_send[] = {131,104,3,97,2,119,0,88,119,3,97,64,104,0,0,0,2,0,0,0,0,0,0,0,1};
static const uint8_t e_reg_send[] = {131,104,4,97,6,88,119,3,97,64,104,0,0,0,1,0,0,0,0,0,0,0,1,119,0,119,10,110,101,116,95,107,101,114,110,101,108};
static const uint8_t e_monitor_p[] = {131,104,4,97,19,88,119,3,97,64,104,0,0,0,1,0,0,0,0,0,0,0,1,119,3,102,111,111,90,0,3,119,3,97,64,104,0,0,0,1,0,0,0,1,0,0,0,2,0,0,0,3};
static const uint8_t e_monitor_p_exit[] = {131,104,5,97,21,119,3,102,111,111,88,119,3,97,64,104,0,0,0,1,0,0,0,0,0,0,0,1,90,0,3,119,3,97,64,104,0,0,0,1,0,0,0,1,0,0,0,2,0,0,0,3,119,6,110,111,112,114,111,99};
static const uint8_t e_unlink_id[] = {131,104,4,97,35,110,8,0,240,222,188,154,120,86,52,18,88,119,3,97,64,104,0,0,0,1,0,0,0,0,0,0,0,1,88,119,3,97,64,104,0,0,0,2,0,0,0,0,0,0,0,1};
static const uint8_t e_unlink_id_small[] = {131,104,4,97,35,97,7,88,119,3,97,64,104,0,0,0,1,0,0,0,0,0,0,0,1,88,119,3,97,64,104,0,0,0,2,0,0,0,0,0,0,0,1};
static const uint8_t e_unlink_id_mid[] = {131,104,4,97,35,98,0,1,134,160,88,119,3,97,64,104,0,0,0,1,0,0,0,0,0,0,0,1,88,119,3,97,64,104,0,0,0,2,0,0,0,0,0,0,0,1};
static const uint8_t e_spawn_request[] = {131,104,6,97,29,90,0,3,119,3,97,64,104,0,0,0,1,0,0,0,1,0,0,0,2,0,0,0,3,88,119,3,97,64,104,0,0,0,1,0,0,0,0,0,0,0,1,88,119,3,97,64,104,0,0,0,2,0,0,0,0,0,0,0,1,104,3,119,1,109,119,1,102,97,2,108,0,0,0,2,119,4,108,105,110,107,119,7,109,111,110,105,116,111,114,106};
static const uint8_t e_spawn_reply[] = {131,104,5,97,31,90,0,3,119,3,97,64,104,0,0,0,1,0,0,0,1,0,0,0,2,0,0,0,3,88,119,3,97,64,104,0,0,0,1,0,0,0,0,0,0,0,1,97,3,88,119,3,97,64,104,0,0,0,2,0,0,0,0,0,0,0,1};
static const uint8_t e_msg[] = {131,104,5,119,5,104,101,108,108,111,88,119,3,97,64,104,0,0,0,1,0,0,0,0,0,0,0,1,109,0,0,0,1,120,107,0,3,1,2,3,116,0,0,0,1,119,1,97,97,1};
static const uint8_t e_args[] = {131,108,0,0,0,2,119,1,97,97,1,106};
/* clang-format on */

static amb_heap *heap;

static amb_term pid(uint32_t id)
{
    return amb_pid_term(heap, amb_atom("a@h"), id, 0, 1);
}

static amb_term ref(void)
{
    static const uint32_t w[] = {1, 2, 3};
    return amb_ref_term(heap, amb_atom("a@h"), 1, w, 3);
}

static void setup(void)
{
    assert_ok(amb_heap_new(&heap));
}

static void teardown(void)
{
    amb_heap_free(heap);
    heap = NULL;
}

/* body = ctl ++ msg (each with its 131). */
static size_t join(uint8_t *body, const uint8_t *ctl, size_t clen, const uint8_t *msg,
                   size_t mlen)
{
    memcpy(body, ctl, clen);
    if (mlen > 0)
        memcpy(body + clen, msg, mlen);
    return clen + mlen;
}

/* Decodes body, encodes the result back (versioned) and checks the bytes
 * are the same. */
static void same_bytes_back(const uint8_t *body, size_t len, amb__dist_ctl *c)
{
    assert_ok(amb__control_decode(heap, body, len, true, NULL, c));
    amb__dist_wire w;
    assert_ok(amb__control_encode(c, true, &w));
    assert_int_equal(w.ctl_len + w.msg_len, len);
    assert_memory_equal(w.ctl, body, w.ctl_len);
    if (w.msg_len > 0)
        assert_memory_equal(w.msg, body + w.ctl_len, w.msg_len);
    amb__control_wire_free(&w);
    /* And without the 131s (a distribution-header connection). */
    uint8_t bare[512];
    size_t n = 0;
    assert_ok(amb__control_encode(c, false, &w));
    memcpy(bare, w.ctl, w.ctl_len);
    n = w.ctl_len;
    if (w.msg_len > 0) {
        memcpy(bare + n, w.msg, w.msg_len);
        n += w.msg_len;
    }
    amb__control_wire_free(&w);
    amb__dist_ctl again;
    assert_ok(amb__control_decode(heap, bare, n, false, NULL, &again));
    assert_int_equal(again.op, c->op);
    assert_true(amb_equal(again.message ? again.message : AMB_NIL,
                          c->message ? c->message : AMB_NIL));
}

AMB_TEST(erls_control_tuples_decode_and_encode_back)
{
    setup();
    uint8_t body[512];
    amb__dist_ctl c;

    same_bytes_back(e_link, sizeof e_link, &c);
    assert_int_equal(c.op, AMB__DOP_LINK);
    assert_true(amb_equal(c.from, pid(1)) && amb_equal(c.to, pid(2)));

    size_t n = join(body, e_send, sizeof e_send, e_msg, sizeof e_msg);
    same_bytes_back(body, n, &c);
    assert_int_equal(c.op, AMB__DOP_SEND);
    assert_true(c.unused == amb_atom(""));
    assert_true(amb_equal(c.to, pid(2)));
    assert_true(amb_is_tuple(c.message) && amb_tuple_arity(c.message) == 5);

    n = join(body, e_reg_send, sizeof e_reg_send, e_msg, sizeof e_msg);
    same_bytes_back(body, n, &c);
    assert_int_equal(c.op, AMB__DOP_REG_SEND);
    assert_true(c.to == amb_atom("net_kernel"));

    same_bytes_back(e_monitor_p, sizeof e_monitor_p, &c);
    assert_true(c.to == amb_atom("foo") && amb_equal(c.ref, ref()));

    same_bytes_back(e_monitor_p_exit, sizeof e_monitor_p_exit, &c);
    assert_true(c.from == amb_atom("foo") && c.reason == AMB_ATOM_NOPROC);

    same_bytes_back(e_unlink_id, sizeof e_unlink_id, &c);
    assert_true(c.id == UINT64_C(0x123456789abcdef0));
    same_bytes_back(e_unlink_id_small, sizeof e_unlink_id_small, &c);
    assert_true(c.id == 7);
    same_bytes_back(e_unlink_id_mid, sizeof e_unlink_id_mid, &c);
    assert_true(c.id == 100000);

    n = join(body, e_spawn_request, sizeof e_spawn_request, e_args, sizeof e_args);
    same_bytes_back(body, n, &c);
    assert_true(c.module == amb_atom("m") && c.function == amb_atom("f"));
    assert_int_equal(c.arity, 2);
    assert_true(amb_equal(c.group_leader, pid(2)));
    size_t len;
    assert_ok(amb_list_length(c.opts, &len));
    assert_int_equal(len, 2);

    same_bytes_back(e_spawn_reply, sizeof e_spawn_reply, &c);
    assert_true(c.spawn_flags == 3 && amb_equal(c.result, pid(2)));
    teardown();
}

/* One filled-in message per op. */
static amb__dist_ctl sample(int op)
{
    amb__dist_ctl c = {.op = op};
    amb_term token = amb_pack(heap, "{0, trace, 1, ~w, 0}", pid(3));
    amb_term msg = amb_pack(heap, "{hello, [1, 2.5, <<\"bin\">>], #{k => v}}");
    amb_term reason = amb_pack(heap, "{shutdown, {some, reason}}");
    switch (op) {
    case AMB__DOP_LINK:
    case AMB__DOP_UNLINK:
    case AMB__DOP_GROUP_LEADER:
        c.from = pid(1);
        c.to = pid(2);
        break;
    case AMB__DOP_SEND:
    case AMB__DOP_SEND_TT:
        c.to = pid(2);
        c.message = msg;
        break;
    case AMB__DOP_EXIT:
    case AMB__DOP_EXIT2:
    case AMB__DOP_EXIT_TT:
    case AMB__DOP_EXIT2_TT:
    case AMB__DOP_PAYLOAD_EXIT:
    case AMB__DOP_PAYLOAD_EXIT_TT:
    case AMB__DOP_PAYLOAD_EXIT2:
    case AMB__DOP_PAYLOAD_EXIT2_TT:
        c.from = pid(1);
        c.to = pid(2);
        c.reason = reason;
        break;
    case AMB__DOP_NODE_LINK:
        break;
    case AMB__DOP_REG_SEND:
    case AMB__DOP_REG_SEND_TT:
        c.from = pid(1);
        c.to = amb_atom("some_name");
        c.message = msg;
        break;
    case AMB__DOP_MONITOR_P:
    case AMB__DOP_DEMONITOR_P:
        c.from = pid(1);
        c.to = op == AMB__DOP_MONITOR_P ? amb_atom("name") : pid(2);
        c.ref = ref();
        break;
    case AMB__DOP_MONITOR_P_EXIT:
    case AMB__DOP_PAYLOAD_MONITOR_P_EXIT:
        c.from = amb_atom("name");
        c.to = pid(1);
        c.ref = ref();
        c.reason = reason;
        break;
    case AMB__DOP_SEND_SENDER:
    case AMB__DOP_SEND_SENDER_TT:
        c.from = pid(1);
        c.to = pid(2);
        c.message = msg;
        break;
    case AMB__DOP_SPAWN_REQUEST:
    case AMB__DOP_SPAWN_REQUEST_TT:
        c.ref = ref();
        c.from = pid(1);
        c.group_leader = pid(2);
        c.module = amb_atom("lists");
        c.function = amb_atom("seq");
        c.arity = 2;
        c.opts = amb_pack(heap, "[link, {priority, high}]");
        c.message = amb_pack(heap, "[1, 10]");
        break;
    case AMB__DOP_SPAWN_REPLY:
    case AMB__DOP_SPAWN_REPLY_TT:
        c.ref = ref();
        c.to = pid(1);
        c.spawn_flags = 3;
        c.result = op == AMB__DOP_SPAWN_REPLY ? pid(9) : amb_atom("badarg");
        break;
    case AMB__DOP_ALIAS_SEND:
    case AMB__DOP_ALIAS_SEND_TT:
        c.from = pid(1);
        c.to = ref();
        c.message = msg;
        break;
    case AMB__DOP_UNLINK_ID:
    case AMB__DOP_UNLINK_ID_ACK:
        c.id = op == AMB__DOP_UNLINK_ID ? UINT64_MAX : 1;
        c.from = pid(1);
        c.to = pid(2);
        break;
    }
    if (strstr(amb__control_name(op), "_TT") != NULL)
        c.token = token;
    return c;
}

static void assert_same(const amb__dist_ctl *a, const amb__dist_ctl *b)
{
    assert_int_equal(a->op, b->op);
    const amb_term *ta[] = {&a->from,     &a->to,      &a->ref,          &a->reason,
                            &a->token,    &a->message, &a->group_leader, &a->module,
                            &a->function, &a->opts,    &a->result};
    const amb_term *tb[] = {&b->from,     &b->to,      &b->ref,          &b->reason,
                            &b->token,    &b->message, &b->group_leader, &b->module,
                            &b->function, &b->opts,    &b->result};
    for (size_t i = 0; i < AMB_COUNTOF(ta); i++) {
        if (*ta[i] == AMB_NONE || *tb[i] == AMB_NONE)
            assert_true(*ta[i] == *tb[i]);
        else
            assert_true(amb_equal(*ta[i], *tb[i]));
    }
    assert_true(a->id == b->id && a->spawn_flags == b->spawn_flags &&
                a->arity == b->arity);
}

AMB_TEST(every_op_round_trips_in_both_forms)
{
    setup();
    size_t ops = 0;
    for (int op = 0; op <= AMB__DOP_MAX + 2; op++) {
        if (!amb__control_known(op)) {
            amb__dist_ctl c = {.op = op};
            amb__dist_wire w;
            assert_rc(AMB_EBADARG, amb__control_encode(&c, true, &w));
            continue;
        }
        ops++;
        amb__dist_ctl c = sample(op);
        for (int versioned = 0; versioned <= 1; versioned++) {
            amb__dist_wire w;
            assert_ok(amb__control_encode(&c, versioned, &w));
            assert_int_equal(w.msg != NULL, amb__control_has_payload(op));
            uint8_t body[1024];
            size_t n = join(body, w.ctl, w.ctl_len, w.msg, w.msg_len);
            amb__dist_ctl back;
            assert_ok(amb__control_decode(heap, body, n, versioned, NULL, &back));
            if (c.unused == AMB_NONE && back.unused != AMB_NONE) {
                assert_true(back.unused == amb_atom(""));
                back.unused = AMB_NONE;
            }
            assert_same(&c, &back);
            /* Every shorter body fails cleanly; ASan watches the reads. */
            for (size_t k = 0; k < n; k++) {
                uint8_t *cut = malloc(k ? k : 1);
                memcpy(cut, body, k);
                amb__dist_ctl junk;
                int rc = amb__control_decode(heap, cut, k, versioned, NULL, &junk);
                free(cut);
                if (rc == 0)
                    fail_msg("op %d cut at %zu of %zu decoded", op, k, n);
            }
            amb__control_wire_free(&w);
        }
    }
    assert_int_equal(ops, 30);
    assert_string_equal(amb__control_name(AMB__DOP_PAYLOAD_MONITOR_P_EXIT),
                        "PAYLOAD_MONITOR_P_EXIT");
    assert_string_equal(amb__control_name(9), "?");
    teardown();
}

/* Decodes the text of a control tuple (and of a payload when given) as
 * versioned bytes. */
static int decode_text(const char *ctl, const char *payload, amb__dist_ctl *out)
{
    amb_term t = amb_pack(heap, ctl);
    assert_true(t != AMB_NONE);
    uint8_t body[1024];
    size_t n;
    assert_ok(amb_etf_encode(t, 0, body, sizeof body, &n));
    if (payload != NULL) {
        size_t m;
        assert_ok(
            amb_etf_encode(amb_pack(heap, payload), 0, body + n, sizeof body - n, &m));
        n += m;
    }
    return amb__control_decode(heap, body, n, true, NULL, out);
}

AMB_TEST(fields_of_the_wrong_type_are_refused)
{
    setup();
    amb__dist_ctl c;
    amb_term p = pid(1), r = ref();
    char ptxt[64], rtxt[96];
    assert_ok(amb_print(p, ptxt, sizeof ptxt, NULL));
    assert_ok(amb_print(r, rtxt, sizeof rtxt, NULL));
    char buf[512];
#define CASE(want, payload, ...)                            \
    do {                                                    \
        snprintf(buf, sizeof buf, __VA_ARGS__);             \
        int rc_ = decode_text(buf, payload, &c);            \
        if (rc_ != (want))                                  \
            fail_msg("%s gave %s", buf, amb_err_name(rc_)); \
    } while (0)
    CASE(0, NULL, "{1, %s, %s}", ptxt, ptxt);
    CASE(AMB_EDECODE, NULL, "{1, a, %s}", ptxt); /* From not a pid */
    CASE(AMB_EDECODE, NULL, "{1, %s}", ptxt);    /* arity */
    CASE(AMB_EDECODE, NULL, "{1, %s, %s, x}", ptxt, ptxt);
    CASE(AMB_EDECODE, NULL, "{9, %s, %s}", ptxt, ptxt); /* unknown op */
    CASE(AMB_EDECODE, NULL, "{37, %s, %s}", ptxt, ptxt);
    CASE(AMB_EDECODE, NULL, "{0}");
    CASE(AMB_EDECODE, NULL, "{-1}");
    CASE(AMB_EDECODE, NULL, "{link, %s, %s}", ptxt, ptxt);
    CASE(AMB_EDECODE, NULL, "[1, %s, %s]", ptxt, ptxt);
    CASE(AMB_EDECODE, NULL, "{}");
    CASE(0, NULL, "{5}");
    CASE(AMB_EDECODE, "x", "{5}");                            /* a payload too many */
    CASE(AMB_EDECODE, NULL, "{6, %s, '', name}", ptxt);       /* payload missing */
    CASE(AMB_EDECODE, "x", "{6, %s, '', \"name\"}", ptxt);    /* ToName not an atom */
    CASE(0, "x", "{6, %s, {any, thing}, name}", ptxt);        /* Unused is anything */
    CASE(AMB_EDECODE, NULL, "{19, %s, 1, %s}", ptxt, rtxt);   /* ToProc */
    CASE(AMB_EDECODE, NULL, "{19, %s, foo, make_ref}", ptxt); /* Ref */
    CASE(0, NULL, "{21, %s, %s, %s, r}", ptxt, ptxt, rtxt);   /* FromProc a pid */
    CASE(AMB_EDECODE, NULL, "{21, \"n\", %s, %s, r}", ptxt, rtxt);
    CASE(AMB_EDECODE, NULL, "{35, 0, %s, %s}", ptxt, ptxt); /* Id 0 */
    CASE(AMB_EDECODE, NULL, "{35, -1, %s, %s}", ptxt, ptxt);
    CASE(AMB_EDECODE, NULL, "{35, 18446744073709551616, %s, %s}", ptxt, ptxt);
    CASE(0, NULL, "{35, 18446744073709551615, %s, %s}", ptxt, ptxt);
    CASE(AMB_EDECODE, NULL, "{35, 1.0, %s, %s}", ptxt, ptxt);
    CASE(AMB_EDECODE, "[a]", "{29, %s, %s, %s, {m, f, 2}, []}", rtxt, ptxt, ptxt);
    CASE(0, "[a, b]", "{29, %s, %s, %s, {m, f, 2}, []}", rtxt, ptxt, ptxt);
    CASE(AMB_EDECODE, "[a | b]", "{29, %s, %s, %s, {m, f, 1}, []}", rtxt, ptxt, ptxt);
    CASE(AMB_EDECODE, "[]", "{29, %s, %s, %s, {m, f, 0}, [a | b]}", rtxt, ptxt, ptxt);
    CASE(AMB_EDECODE, "[]", "{29, %s, %s, %s, {m, f, 256}, []}", rtxt, ptxt, ptxt);
    CASE(AMB_EDECODE, "[]", "{29, %s, %s, %s, {m, \"f\", 0}, []}", rtxt, ptxt, ptxt);
    CASE(AMB_EDECODE, "[]", "{29, %s, %s, %s, {m, f}, []}", rtxt, ptxt, ptxt);
    CASE(AMB_EDECODE, NULL, "{31, %s, %s, -1, ok}", rtxt, ptxt);
    CASE(AMB_EDECODE, NULL, "{31, %s, %s, 0, \"err\"}", rtxt, ptxt);
    CASE(AMB_EDECODE, "m", "{33, %s, %s}", ptxt, ptxt); /* Alias a ref */
    CASE(0, "m", "{33, %s, %s}", ptxt, rtxt);
#undef CASE
    teardown();
}

AMB_TEST(bytes_after_the_message_are_refused)
{
    setup();
    uint8_t body[600];
    size_t n = join(body, e_link, sizeof e_link, e_args, sizeof e_args);
    amb__dist_ctl c;
    assert_rc(AMB_EDECODE, amb__control_decode(heap, body, n, true, NULL, &c));
    n = join(body, e_send, sizeof e_send, e_msg, sizeof e_msg);
    body[n++] = 0;
    assert_rc(AMB_EDECODE, amb__control_decode(heap, body, n, true, NULL, &c));
    /* A versioned body read as unversioned, and the other way round. */
    assert_rc(AMB_EDECODE,
              amb__control_decode(heap, e_link, sizeof e_link, false, NULL, &c));
    assert_rc(AMB_EDECODE,
              amb__control_decode(heap, e_link + 1, sizeof e_link - 1, true, NULL, &c));
    assert_rc(AMB_EDECODE, amb__control_decode(heap, NULL, 0, true, NULL, &c));
    teardown();
}

AMB_TEST(encode_refuses_fields_that_do_not_fit)
{
    setup();
    amb__dist_wire w;
    amb__dist_ctl c = sample(AMB__DOP_LINK);
    c.from = amb_atom("x");
    assert_rc(AMB_EBADARG, amb__control_encode(&c, true, &w));
    c = sample(AMB__DOP_SEND);
    c.message = AMB_NONE;
    assert_rc(AMB_EBADARG, amb__control_encode(&c, true, &w));
    c = sample(AMB__DOP_EXIT);
    c.reason = AMB_NONE;
    assert_rc(AMB_EBADARG, amb__control_encode(&c, true, &w));
    c = sample(AMB__DOP_UNLINK_ID);
    c.id = 0;
    assert_rc(AMB_EBADARG, amb__control_encode(&c, true, &w));
    c = sample(AMB__DOP_SPAWN_REQUEST);
    c.arity = 3;
    assert_rc(AMB_EBADARG, amb__control_encode(&c, true, &w));
    c = sample(AMB__DOP_SPAWN_REQUEST);
    c.opts = amb_atom("link");
    assert_rc(AMB_EBADARG, amb__control_encode(&c, true, &w));
    c = sample(AMB__DOP_MONITOR_P);
    c.ref = pid(1);
    assert_rc(AMB_EBADARG, amb__control_encode(&c, true, &w));
    c = sample(AMB__DOP_SEND_TT);
    c.token = AMB_NONE;
    assert_rc(AMB_EBADARG, amb__control_encode(&c, true, &w));
    teardown();
}

AMB_TEST(atom_budget_bounds_new_atoms)
{
    setup();
    /* Two atoms nobody has made yet: the name and one in the message. */
    char n1[64], n2[64], text[256];
    snprintf(n1, sizeof n1, "budget_name_%d", (int)getpid());
    snprintf(n2, sizeof n2, "budget_msg_%d", (int)getpid());
    amb_term probe;
    assert_rc(AMB_ENOTFOUND, amb_atom_existing(n1, strlen(n1), &probe));
    /* The bytes, built without making the atoms: a REG_SEND from erl with
     * the name 'net_kernel' swapped for n1 and a message atom n2. */
    uint8_t body[512];
    size_t n = 0;
    memcpy(body, e_reg_send, 23); /* the tuple up to its Unused '' */
    n = 23;
    body[n++] = 119;
    body[n++] = 0;
    body[n++] = 119;
    body[n++] = (uint8_t)strlen(n1);
    memcpy(body + n, n1, strlen(n1));
    n += strlen(n1);
    body[n++] = 131;
    body[n++] = 119;
    body[n++] = (uint8_t)strlen(n2);
    memcpy(body + n, n2, strlen(n2));
    n += strlen(n2);
    /* The node and the Unused atoms exist; only n1 and n2 are new. */
    assert_true(amb_atom("a@h") != AMB_NONE && amb_atom("") != AMB_NONE);
    size_t before = amb_atom_count();
    amb__etf_atom_budget budget = {.left = 1};
    amb__control_limits lim = {.atoms = &budget};
    amb__dist_ctl c;
    assert_rc(AMB_ESYSLIMIT, amb__control_decode(heap, body, n, true, &lim, &c));
    assert_int_equal(amb_atom_count(), before + 1); /* the first one was made */
    assert_int_equal(budget.left, 0);
    /* Known atoms cost nothing: with the name made, one more is enough. */
    budget.left = 1;
    assert_ok(amb__control_decode(heap, body, n, true, &lim, &c));
    assert_int_equal(budget.left, 0);
    assert_int_equal(amb_atom_count(), before + 2);
    assert_ok(amb__control_decode(heap, body, n, true, &lim, &c));
    snprintf(text, sizeof text, "%s", amb_atom_name(c.message, NULL));
    assert_string_equal(text, n2);
    /* The reserve: a budget never takes the table's last free slots. */
    char n3[64];
    snprintf(n3, sizeof n3, "budget_reserve_%d", (int)getpid());
    n -= strlen(n2);
    body[n - 1] = (uint8_t)strlen(n3);
    memcpy(body + n, n3, strlen(n3));
    n += strlen(n3);
    budget = (amb__etf_atom_budget){.left = 100, .reserve = amb_atom_limit()};
    assert_rc(AMB_ESYSLIMIT, amb__control_decode(heap, body, n, true, &lim, &c));
    budget.reserve = amb_atom_limit() - amb_atom_count();
    assert_rc(AMB_ESYSLIMIT, amb__control_decode(heap, body, n, true, &lim, &c));
    budget.reserve = amb_atom_limit() - amb_atom_count() - 1;
    assert_ok(amb__control_decode(heap, body, n, true, &lim, &c));
    teardown();
}

AMB_TEST(connection_budget_keeps_a_quarter_of_the_table)
{
    amb__etf_atom_budget b = amb__control_atom_budget();
    assert_int_equal(b.left, AMB__DIST_ATOMS_PER_CONNECTION);
    assert_int_equal(b.reserve, amb_atom_limit() / 4);
}

AMB_TEST(depth_is_bounded)
{
    setup();
    /* SEND whose message nests 100 tuples deep. */
    uint8_t body[1024];
    size_t n = join(body, e_send, sizeof e_send, NULL, 0);
    body[n++] = 131;
    for (int i = 0; i < 100; i++) {
        body[n++] = 104;
        body[n++] = 1;
    }
    body[n++] = 106;
    amb__control_limits lim = {.max_depth = 50};
    amb__dist_ctl c;
    assert_rc(AMB_EDEPTH, amb__control_decode(heap, body, n, true, &lim, &c));
    lim.max_depth = 101;
    assert_ok(amb__control_decode(heap, body, n, true, &lim, &c));
    teardown();
}

/* One decode and encode of body, on a heap of its own: what
 * allocation_failures_are_clean runs with each allocation failing in turn. */
struct oom_case {
    const uint8_t *body;
    size_t n;
};

static int decode_encode(void *ctx)
{
    const struct oom_case *oc = ctx;
    amb_heap *h;
    int rc = amb_heap_new(&h);
    if (rc != 0)
        return rc;
    amb__dist_ctl back;
    rc = amb__control_decode(h, oc->body, oc->n, true, NULL, &back);
    if (rc == 0) {
        amb__dist_wire w;
        rc = amb__control_encode(&back, true, &w);
        if (rc == 0)
            amb__control_wire_free(&w);
    }
    amb_heap_free(h);
    return rc;
}

AMB_TEST(allocation_failures_are_clean)
{
    setup();
    amb__dist_ctl c = sample(AMB__DOP_SPAWN_REQUEST_TT);
    amb__dist_wire w;
    assert_ok(amb__control_encode(&c, true, &w));
    uint8_t body[1024];
    size_t n = join(body, w.ctl, w.ctl_len, w.msg, w.msg_len);
    amb__control_wire_free(&w);
    teardown();
    struct oom_case oc = {body, n};
    /* Every allocation of a decode and an encode fails once, in turn: each
     * run returns 0 or AMB_ENOMEM and leaks nothing. */
    amb_test_oom_stats st = amb_test_oom_loop(decode_encode, &oc, AMB_TEST_OOM_ONCE);
    assert_true(st.failed_runs > 0);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(erls_control_tuples_decode_and_encode_back),
              AMB_TEST_ENTRY(every_op_round_trips_in_both_forms),
              AMB_TEST_ENTRY(fields_of_the_wrong_type_are_refused),
              AMB_TEST_ENTRY(bytes_after_the_message_are_refused),
              AMB_TEST_ENTRY(encode_refuses_fields_that_do_not_fit),
              AMB_TEST_ENTRY(atom_budget_bounds_new_atoms),
              AMB_TEST_ENTRY(connection_budget_keeps_a_quarter_of_the_table),
              AMB_TEST_ENTRY(depth_is_bounded),
              AMB_TEST_ENTRY(allocation_failures_are_clean))

/*
 * epmd_proto.c - encoders and decoders of the EPMD protocol (epmd_proto.h has
 * the wire layout and the rules).
 *
 * Every decoder checks the bytes left before each read and copies names and
 * extras into the caller's fixed arrays, so nothing here reads past its input
 * or allocates. Every encoder computes its size first and writes nothing
 * when the buffer is too small.
 */
#include <string.h>

#include "epmd_proto.h"
#include "etf_internal.h"
#include "internal.h"
#include "term_internal.h"

bool amb__epmd_name_valid(const char *name, size_t len)
{
    size_t nchars;
    if (name == NULL || len == 0 || len > AMB__EPMD_NAME_MAX)
        return false;
    if (memchr(name, 0, len) != NULL)
        return false;
    return amb__utf8_valid((const uint8_t *)name, len, &nchars) && nchars <= 255;
}

/* The node fields shared by ALIVE2_REQ and PORT2_RESP after their first
 * bytes: PortNo NodeType Protocol High Low Nlen Name Elen Extra. */
static size_t node_size(const amb__epmd_node *n)
{
    return 10 + n->name_len + 2 + n->extra_len;
}

static bool node_valid(const amb__epmd_node *n)
{
    return amb__epmd_name_valid(n->name, n->name_len) &&
           n->extra_len <= AMB__EPMD_EXTRA_MAX;
}

static uint8_t *put_node(uint8_t *p, const amb__epmd_node *n)
{
    amb__etf_put16(p, n->port);
    p[2] = n->type;
    p[3] = n->protocol;
    amb__etf_put16(p + 4, n->high_vsn);
    amb__etf_put16(p + 6, n->low_vsn);
    amb__etf_put16(p + 8, (uint16_t)n->name_len);
    memcpy(p + 10, n->name, n->name_len);
    p += 10 + n->name_len;
    amb__etf_put16(p, (uint16_t)n->extra_len);
    if (n->extra_len > 0)
        memcpy(p + 2, n->extra, n->extra_len);
    return p + 2 + n->extra_len;
}

/* Reads the node fields from p[0..len) into *n; *used gets their size.
 * AMB_EAGAIN when they are not all there yet. */
static int get_node(const uint8_t *p, size_t len, amb__epmd_node *n, size_t *used)
{
    if (len < 10)
        return AMB_EAGAIN;
    size_t nlen = amb__etf_get16(p + 8);
    if (nlen > AMB__EPMD_NAME_MAX)
        return AMB_ESYSLIMIT;
    if (len < 10 + nlen + 2)
        return AMB_EAGAIN;
    size_t elen = amb__etf_get16(p + 10 + nlen);
    if (elen > AMB__EPMD_EXTRA_MAX)
        return AMB_ESYSLIMIT;
    if (len < 12 + nlen + elen)
        return AMB_EAGAIN;
    if (!amb__epmd_name_valid((const char *)p + 10, nlen))
        return AMB_EDECODE;
    n->port = amb__etf_get16(p);
    n->type = p[2];
    n->protocol = p[3];
    n->high_vsn = amb__etf_get16(p + 4);
    n->low_vsn = amb__etf_get16(p + 6);
    n->name_len = nlen;
    memcpy(n->name, p + 10, nlen);
    n->name[nlen] = '\0';
    n->extra_len = elen;
    if (elen > 0)
        memcpy(n->extra, p + 12 + nlen, elen);
    *used = 12 + nlen + elen;
    return 0;
}

/* ---- client side ------------------------------------------------------- */

int amb__epmd_alive2_req_encode(const amb__epmd_node *node, uint8_t *buf, size_t cap,
                                size_t *len)
{
    if (node == NULL || len == NULL || (buf == NULL && cap > 0) || !node_valid(node))
        return AMB__MISUSE();
    size_t body = 1 + node_size(node);
    if (cap < 2 + body)
        return AMB_EBUFSIZE;
    amb__etf_put16(buf, (uint16_t)body);
    buf[2] = AMB__EPMD_ALIVE2_REQ;
    put_node(buf + 3, node);
    *len = 2 + body;
    return 0;
}

int amb__epmd_alive2_resp_decode(const uint8_t *buf, size_t len, size_t *used,
                                 uint8_t *result, uint32_t *creation)
{
    if ((buf == NULL && len > 0) || used == NULL || result == NULL || creation == NULL)
        return AMB__MISUSE();
    if (len < 1)
        return AMB_EAGAIN;
    size_t need;
    if (buf[0] == AMB__EPMD_ALIVE2_X_RESP)
        need = 6;
    else if (buf[0] == AMB__EPMD_ALIVE2_RESP)
        need = 4;
    else
        return AMB_EDECODE;
    if (len < need)
        return AMB_EAGAIN;
    *result = buf[1];
    *creation = need == 6 ? amb__etf_get32(buf + 2) : amb__etf_get16(buf + 2);
    *used = need;
    return 0;
}

int amb__epmd_port2_req_encode(const char *name, size_t name_len, uint8_t *buf,
                               size_t cap, size_t *len)
{
    if (len == NULL || (buf == NULL && cap > 0) || !amb__epmd_name_valid(name, name_len))
        return AMB__MISUSE();
    if (cap < 3 + name_len)
        return AMB_EBUFSIZE;
    amb__etf_put16(buf, (uint16_t)(1 + name_len));
    buf[2] = AMB__EPMD_PORT_PLEASE2_REQ;
    memcpy(buf + 3, name, name_len);
    *len = 3 + name_len;
    return 0;
}

int amb__epmd_port2_resp_decode(const uint8_t *buf, size_t len, size_t *used,
                                uint8_t *result, amb__epmd_node *node)
{
    if ((buf == NULL && len > 0) || used == NULL || result == NULL || node == NULL)
        return AMB__MISUSE();
    if (len < 2)
        return len == 1 && buf[0] != AMB__EPMD_PORT2_RESP ? AMB_EDECODE : AMB_EAGAIN;
    if (buf[0] != AMB__EPMD_PORT2_RESP)
        return AMB_EDECODE;
    if (buf[1] != 0) {
        *result = buf[1];
        *used = 2;
        return 0;
    }
    size_t n;
    int rc = get_node(buf + 2, len - 2, node, &n);
    if (rc != 0)
        return rc;
    *result = 0;
    *used = 2 + n;
    return 0;
}

int amb__epmd_names_req_encode(uint8_t *buf, size_t cap, size_t *len)
{
    if (len == NULL || (buf == NULL && cap > 0))
        return AMB__MISUSE();
    if (cap < 3)
        return AMB_EBUFSIZE;
    amb__etf_put16(buf, 1);
    buf[2] = AMB__EPMD_NAMES_REQ;
    *len = 3;
    return 0;
}

int amb__epmd_names_resp_port(const uint8_t *buf, size_t len, uint32_t *epmd_port)
{
    if ((buf == NULL && len > 0) || epmd_port == NULL)
        return AMB__MISUSE();
    if (len < 4)
        return AMB_EAGAIN;
    *epmd_port = amb__etf_get32(buf);
    return 0;
}

int amb__epmd_names_next(const uint8_t *text, size_t len, size_t *pos,
                         amb__epmd_name *out)
{
    static const char head[] = "name ", mid[] = " at port ";
    if ((text == NULL && len > 0) || pos == NULL || out == NULL || *pos > len)
        return AMB__MISUSE();
    const uint8_t *p = text + *pos;
    size_t left = len - *pos;
    if (left == 0)
        return AMB_ENOTFOUND;
    size_t scan = left < AMB__EPMD_NAMES_LINE_MAX ? left : AMB__EPMD_NAMES_LINE_MAX;
    const uint8_t *nl = memchr(p, '\n', scan);
    if (nl == NULL)
        return left < AMB__EPMD_NAMES_LINE_MAX ? AMB_EAGAIN : AMB_ESYSLIMIT;
    size_t line = (size_t)(nl - p);
    if (line < sizeof head - 1 || memcmp(p, head, sizeof head - 1) != 0)
        return AMB_EDECODE;
    /* The name may itself hold " at port ", so the last occurrence ends it. */
    const uint8_t *m = NULL;
    for (const uint8_t *q = p + sizeof head - 1; q + sizeof mid - 1 <= nl; q++)
        if (memcmp(q, mid, sizeof mid - 1) == 0)
            m = q;
    if (m == NULL)
        return AMB_EDECODE;
    const uint8_t *name = p + sizeof head - 1, *digits = m + sizeof mid - 1;
    size_t name_len = (size_t)(m - name), ndigits = (size_t)(nl - digits);
    if (!amb__epmd_name_valid((const char *)name, name_len) || ndigits == 0 ||
        ndigits > 5)
        return AMB_EDECODE;
    uint32_t port = 0;
    for (size_t i = 0; i < ndigits; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return AMB_EDECODE;
        port = port * 10 + (uint32_t)(digits[i] - '0');
    }
    if (port > 65535)
        return AMB_EDECODE;
    memcpy(out->name, name, name_len);
    out->name[name_len] = '\0';
    out->name_len = name_len;
    out->port = (uint16_t)port;
    *pos += line + 1;
    return 0;
}

/* ---- server side ------------------------------------------------------- */

int amb__epmd_request_decode(const uint8_t *buf, size_t len, size_t *used,
                             amb__epmd_request *req)
{
    if ((buf == NULL && len > 0) || used == NULL || req == NULL)
        return AMB__MISUSE();
    if (len < 2)
        return AMB_EAGAIN;
    size_t n = amb__etf_get16(buf);
    if (n == 0)
        return AMB_EDECODE;
    if (n > AMB__EPMD_REQUEST_MAX)
        return AMB_ESYSLIMIT;
    if (len < 2 + n)
        return AMB_EAGAIN;
    const uint8_t *p = buf + 2;
    switch (p[0]) {
    case AMB__EPMD_ALIVE2_REQ: {
        /* The fields must all lie inside the request: a short request is
         * malformed here, not incomplete. */
        size_t took;
        int rc = get_node(p + 1, n - 1, &req->node, &took);
        if (rc != 0)
            return rc == AMB_EAGAIN ? AMB_EDECODE : rc;
        break;
    }
    case AMB__EPMD_PORT_PLEASE2_REQ: {
        size_t nlen = n - 1;
        if (nlen > 0 && p[nlen] == 0) /* epmd skips one trailing NUL */
            nlen--;
        if (!amb__epmd_name_valid((const char *)p + 1, nlen))
            return AMB_EDECODE;
        memset(&req->node, 0, offsetof(amb__epmd_node, name));
        memcpy(req->node.name, p + 1, nlen);
        req->node.name[nlen] = '\0';
        req->node.name_len = nlen;
        req->node.extra_len = 0;
        break;
    }
    case AMB__EPMD_NAMES_REQ:
    case AMB__EPMD_DUMP_REQ:
    case AMB__EPMD_KILL_REQ:
    case AMB__EPMD_STOP_REQ:
        break;
    default:
        return AMB_EDECODE;
    }
    req->code = p[0];
    *used = 2 + n;
    return 0;
}

int amb__epmd_alive2_resp_encode(uint8_t result, uint32_t creation, uint16_t high_vsn,
                                 uint8_t *buf, size_t cap, size_t *len)
{
    if (len == NULL || (buf == NULL && cap > 0))
        return AMB__MISUSE();
    bool x = high_vsn >= 6;
    size_t need = x ? 6 : 4;
    if (cap < need)
        return AMB_EBUFSIZE;
    buf[0] = x ? AMB__EPMD_ALIVE2_X_RESP : AMB__EPMD_ALIVE2_RESP;
    buf[1] = result;
    if (x)
        amb__etf_put32(buf + 2, creation);
    else
        amb__etf_put16(buf + 2, (uint16_t)creation);
    *len = need;
    return 0;
}

int amb__epmd_port2_resp_encode(const amb__epmd_node *node, uint8_t *buf, size_t cap,
                                size_t *len)
{
    if (len == NULL || (buf == NULL && cap > 0) || (node != NULL && !node_valid(node)))
        return AMB__MISUSE();
    size_t need = node ? 2 + node_size(node) : 2;
    if (cap < need)
        return AMB_EBUFSIZE;
    buf[0] = AMB__EPMD_PORT2_RESP;
    buf[1] = node ? 0 : 1;
    if (node)
        put_node(buf + 2, node);
    *len = need;
    return 0;
}

int amb__epmd_names_resp_port_encode(uint32_t epmd_port, uint8_t *buf, size_t cap,
                                     size_t *len)
{
    if (len == NULL || (buf == NULL && cap > 0))
        return AMB__MISUSE();
    if (cap < 4)
        return AMB_EBUFSIZE;
    amb__etf_put32(buf, epmd_port);
    *len = 4;
    return 0;
}

int amb__epmd_names_line_encode(const char *name, size_t name_len, uint16_t port,
                                uint8_t *buf, size_t cap, size_t *len)
{
    if (len == NULL || (buf == NULL && cap > 0) || !amb__epmd_name_valid(name, name_len))
        return AMB__MISUSE();
    char digits[8];
    size_t nd = 0;
    unsigned v = port;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    static const char head[] = "name ", mid[] = " at port ";
    size_t need = sizeof head - 1 + name_len + sizeof mid - 1 + nd + 1;
    if (cap < need)
        return AMB_EBUFSIZE;
    uint8_t *p = buf;
    memcpy(p, head, sizeof head - 1);
    p += sizeof head - 1;
    memcpy(p, name, name_len);
    p += name_len;
    memcpy(p, mid, sizeof mid - 1);
    p += sizeof mid - 1;
    while (nd > 0)
        *p++ = (uint8_t)digits[--nd];
    *p++ = '\n';
    *len = (size_t)(p - buf);
    return 0;
}

/*
 * epmd_client.c - a node talking to EPMD over the socket layer (epmd_proto.h
 * has the bytes): register (ALIVE2, whose connection stays open for as
 * long as the node is registered) and look a node up (PORT_PLEASE2, one
 * connection per question, closed by EPMD after the answer).
 *
 * Invariants: each call blocks only its process (socket.h); every wait has
 * the caller's deadline; an answer is read until it is whole
 * (amb__epmd_*_decode say AMB_EAGAIN before) and never beyond its buffer;
 * nothing is allocated across a wait (the caller may be killed there: its
 * stack and its sockets go with it, malloc'd memory would not).
 */
#include <string.h>

#include "ambitious/socket.h"
#include "dist.h"
#include "epmd_proto.h"

/* Reads from s (passive) until decode takes a whole answer from buf, or
 * the deadline passes. */
typedef int decode_fn(const uint8_t *buf, size_t len, void *ctx);

static int read_answer(amb_proc *self, amb_socket s, int64_t deadline, uint8_t *buf,
                       size_t cap, decode_fn *decode, void *ctx)
{
    size_t len = 0;
    for (;;) {
        int rc = len > 0 ? decode(buf, len, ctx) : AMB_EAGAIN;
        if (rc != AMB_EAGAIN)
            return rc;
        int64_t left = deadline - amb_now_ms();
        if (left <= 0)
            return AMB_ETIMEDOUT;
        if (len == cap)
            return AMB_EDECODE;
        size_t n;
        rc = amb_tcp_recv(self, s, 0, left, buf + len, cap - len, &n);
        if (rc != 0)
            return rc;
        len += n;
    }
}

typedef struct alive_answer {
    uint8_t result;
    uint32_t creation;
} alive_answer;

static int decode_alive(const uint8_t *buf, size_t len, void *ctx)
{
    alive_answer *a = ctx;
    size_t used;
    return amb__epmd_alive2_resp_decode(buf, len, &used, &a->result, &a->creation);
}

int amb__epmd_client_register(amb_proc *self, uint16_t epmd_port, const char *alive,
                              uint16_t port, bool hidden, int64_t timeout_ms,
                              amb_socket *conn, uint32_t *creation)
{
    amb__epmd_node node = {.port = port,
                           .type = hidden ? AMB__EPMD_TYPE_HIDDEN : AMB__EPMD_TYPE_NORMAL,
                           .protocol = AMB__EPMD_PROTO_TCP,
                           .high_vsn = AMB__EPMD_VERSION,
                           .low_vsn = AMB__EPMD_VERSION};
    node.name_len = strlen(alive);
    if (node.name_len >= sizeof node.name)
        return AMB_EBADARG;
    memcpy(node.name, alive, node.name_len + 1);
    uint8_t req[AMB__EPMD_REQUEST_MAX + 2];
    size_t n;
    int rc = amb__epmd_alive2_req_encode(&node, req, sizeof req, &n);
    if (rc != 0)
        return rc;
    int64_t deadline = amb_now_ms() + timeout_ms;
    amb_socket s;
    amb_sock_opts o = {.nodelay = true};
    rc = amb_tcp_connect(self, "127.0.0.1", epmd_port, &o, timeout_ms, &s);
    if (rc != 0)
        return rc;
    alive_answer a = {0};
    uint8_t buf[16];
    rc = amb_tcp_send(self, s, req, n, timeout_ms, NULL);
    if (rc == 0)
        rc = read_answer(self, s, deadline, buf, sizeof buf, decode_alive, &a);
    if (rc == 0 && a.result != 0)
        rc = AMB_EEXIST; /* epmd refuses a name it has (result 1) */
    if (rc != 0) {
        amb_inet_close(self, s);
        return rc;
    }
    *conn = s;
    *creation = a.creation;
    return 0;
}

typedef struct port_answer {
    uint8_t result;
    amb__epmd_node node;
} port_answer;

static int decode_port(const uint8_t *buf, size_t len, void *ctx)
{
    port_answer *a = ctx;
    size_t used;
    return amb__epmd_port2_resp_decode(buf, len, &used, &a->result, &a->node);
}

int amb__epmd_client_port(amb_proc *self, const char *host, uint16_t epmd_port,
                          const char *alive, int64_t timeout_ms, uint16_t *port)
{
    uint8_t req[AMB__EPMD_REQUEST_MAX + 2];
    size_t n;
    int rc = amb__epmd_port2_req_encode(alive, strlen(alive), req, sizeof req, &n);
    if (rc != 0)
        return rc;
    int64_t deadline = amb_now_ms() + timeout_ms;
    amb_socket s;
    amb_sock_opts o = {.nodelay = true};
    rc = amb_tcp_connect(self, host, epmd_port, &o, timeout_ms, &s);
    if (rc != 0)
        return rc;
    /* On the stack (about 4 KiB): a process killed while it waits here
     * leaves nothing allocated behind (its socket goes with it). */
    port_answer a;
    uint8_t buf[AMB__EPMD_REQUEST_MAX + 16];
    rc = amb_tcp_send(self, s, req, n, timeout_ms, NULL);
    if (rc == 0)
        rc = read_answer(self, s, deadline, buf, sizeof buf, decode_port, &a);
    if (rc == 0 && a.result != 0)
        rc = AMB_ENOTFOUND;
    if (rc == 0)
        *port = a.node.port;
    amb_inet_close(self, s);
    return rc;
}

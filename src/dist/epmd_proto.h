/*
 * epmd_proto.h - the EPMD protocol as bytes: the requests a node sends to
 * its port mapper and the answers it gets, for both sides (a node talking to
 * the system's epmd, and the embedded EPMD-compatible registry answering
 * nodes). No sockets here: every function reads or writes a caller's buffer.
 *
 * The wire (erts/doc erl_dist_protocol, erts/epmd/src/epmd_srv.c):
 *
 *   request        [Len:16][Req:Len]         Len >= 1
 *   ALIVE2_REQ     120 PortNo:16 NodeType:8 Protocol:8 High:16 Low:16
 *                  Nlen:16 Name Elen:16 Extra
 *   ALIVE2_X_RESP  118 Result:8 Creation:32    (to a node whose High >= 6)
 *   ALIVE2_RESP    121 Result:8 Creation:16    (to older nodes)
 *   PORT_PLEASE2   122 Name                    (one trailing NUL tolerated)
 *   PORT2_RESP     119 Result:8 [PortNo:16 NodeType:8 Protocol:8 High:16 Low:16
 *                  Nlen:16 Name Elen:16 Extra] (the bracket only when Result=0)
 *   NAMES_REQ      110
 *   NAMES_RESP     EPMDPort:32 then lines "name <Name> at port <Port>\n"
 *                  until the server closes the socket
 *
 * Answers carry no length prefix: they are self-delimiting (NAMES_RESP ends
 * with the connection), so the decoders of answers take what has arrived so
 * far and say AMB_EAGAIN until it is a whole answer.
 *
 * Invariants, the same as epmd's own checks:
 *   - A node name is 1..255 characters of valid UTF-8, at most
 *     AMB__EPMD_NAME_MAX bytes, and holds no NUL byte. It is the alive part
 *     only ("foo", not "foo@host"): EPMD knows nothing of hosts.
 *   - Extra is at most AMB__EPMD_EXTRA_MAX bytes of anything.
 *   - A request is at most AMB__EPMD_REQUEST_MAX bytes after its length.
 *     Bytes after the fields of a request are ignored, as epmd ignores them.
 *   - Decoders never read past len and never allocate; names and extras are
 *     copied into the fixed arrays of amb__epmd_node (NUL-terminated names).
 *
 * Ownership: every buffer and struct belongs to the caller; no function keeps
 * a pointer to one after it returns, and none allocates.
 *
 * Errors: AMB_EAGAIN (need more bytes; nothing consumed), AMB_EDECODE
 * (malformed), AMB_ESYSLIMIT (a length above its limit), AMB_EBUFSIZE (the
 * caller's buffer is too small), AMB_EBADARG (an encoder given a name or
 * extra that breaks the invariants above, or NULL pointers).
 */
#ifndef AMB_DIST_EPMD_PROTO_H
#define AMB_DIST_EPMD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AMB__EPMD_PORT 4369

enum amb__epmd_code {
    AMB__EPMD_NAMES_REQ = 110,
    AMB__EPMD_DUMP_REQ = 100,
    AMB__EPMD_KILL_REQ = 107,
    AMB__EPMD_STOP_REQ = 115,
    AMB__EPMD_ALIVE2_X_RESP = 118,
    AMB__EPMD_PORT2_RESP = 119,
    AMB__EPMD_ALIVE2_REQ = 120,
    AMB__EPMD_ALIVE2_RESP = 121,
    AMB__EPMD_PORT_PLEASE2_REQ = 122,
};

#define AMB__EPMD_TYPE_HIDDEN 72 /* 'H' */
#define AMB__EPMD_TYPE_NORMAL 77 /* 'M' */
#define AMB__EPMD_PROTO_TCP   0  /* TCP/IPv4 (and what every node sends) */
#define AMB__EPMD_VERSION     6  /* the only handshake version we speak */
#define AMB__EPMD_NAME_MAX    1020
#define AMB__EPMD_EXTRA_MAX   1020
#define AMB__EPMD_REQUEST_MAX (13 + AMB__EPMD_NAME_MAX + AMB__EPMD_EXTRA_MAX)
#define AMB__EPMD_NAMES_LINE_MAX \
    (sizeof "name " + AMB__EPMD_NAME_MAX + sizeof " at port 65535\n")

/* A registered node as ALIVE2_REQ and PORT2_RESP carry it. */
typedef struct amb__epmd_node {
    uint16_t port;     /* the node's distribution listen port */
    uint8_t type;      /* AMB__EPMD_TYPE_HIDDEN or _NORMAL (other values pass) */
    uint8_t protocol;  /* AMB__EPMD_PROTO_TCP */
    uint16_t high_vsn; /* highest handshake version: 6 */
    uint16_t low_vsn;  /* lowest: 6 */
    size_t name_len;
    char name[AMB__EPMD_NAME_MAX + 1]; /* NUL-terminated */
    size_t extra_len;
    uint8_t extra[AMB__EPMD_EXTRA_MAX];
} amb__epmd_node;

/* A request as the server decodes it. */
typedef struct amb__epmd_request {
    uint8_t code;        /* an amb__epmd_code *_REQ value */
    amb__epmd_node node; /* ALIVE2_REQ: the node; PORT_PLEASE2_REQ: name only */
} amb__epmd_request;

/* One line of a NAMES_RESP. */
typedef struct amb__epmd_name {
    size_t name_len;
    char name[AMB__EPMD_NAME_MAX + 1]; /* NUL-terminated */
    uint16_t port;
} amb__epmd_name;

/* True when name[0..len) is a valid node name for EPMD (see the invariants). */
bool amb__epmd_name_valid(const char *name, size_t len);

/* ---- client side: a node talking to EPMD ------------------------------ */

/* Writes ALIVE2_REQ for *node (with its 2-byte length) into buf[0..cap).
 * *node is read only. AMB_EBADARG for an invalid name or extra,
 * AMB_EBUFSIZE. */
int amb__epmd_alive2_req_encode(const amb__epmd_node *node, uint8_t *buf, size_t cap,
                                size_t *len);
/* Reads ALIVE2_X_RESP or ALIVE2_RESP from buf[0..len): *result (0 = registered,
 * anything else = refused, e.g. the name is taken) and *creation (16 bits
 * widened for ALIVE2_RESP); *used gets the bytes taken. AMB_EAGAIN,
 * AMB_EDECODE (another code). */
int amb__epmd_alive2_resp_decode(const uint8_t *buf, size_t len, size_t *used,
                                 uint8_t *result, uint32_t *creation);

/* Writes PORT_PLEASE2_REQ for the alive name[0..name_len). AMB_EBADARG,
 * AMB_EBUFSIZE. */
int amb__epmd_port2_req_encode(const char *name, size_t name_len, uint8_t *buf,
                               size_t cap, size_t *len);
/* Reads PORT2_RESP: *result 0 fills *node, anything else means "no such
 * node" and leaves *node alone. AMB_EAGAIN, AMB_EDECODE (another code, an
 * invalid name, lengths that do not fit), AMB_ESYSLIMIT. */
int amb__epmd_port2_resp_decode(const uint8_t *buf, size_t len, size_t *used,
                                uint8_t *result, amb__epmd_node *node);

/* Writes NAMES_REQ. AMB_EBUFSIZE. */
int amb__epmd_names_req_encode(uint8_t *buf, size_t cap, size_t *len);
/* Reads the 4-byte EPMD port that starts NAMES_RESP; the lines follow at
 * buf + 4. AMB_EAGAIN. */
int amb__epmd_names_resp_port(const uint8_t *buf, size_t len, uint32_t *epmd_port);
/* Reads the line at text[*pos..len) into *out and moves *pos past it.
 * AMB_ENOTFOUND at the end of the text, AMB_EAGAIN for a last line without
 * its newline (the text is incomplete), AMB_EDECODE for a line not of the
 * form "name <Name> at port <Port>\n" (or an invalid name, a port above
 * 65535), AMB_ESYSLIMIT for a line longer than AMB__EPMD_NAMES_LINE_MAX. */
int amb__epmd_names_next(const uint8_t *text, size_t len, size_t *pos,
                         amb__epmd_name *out);

/* ---- server side: the embedded registry answering nodes ---------------- */

/* Reads one request (with its 2-byte length) from buf[0..len) into *req and
 * *used. Every code above decodes: ALIVE2_REQ and PORT_PLEASE2_REQ with
 * their fields checked, NAMES_REQ, and DUMP/KILL/STOP_REQ as bare codes (a
 * server may refuse them). AMB_EAGAIN, AMB_ESYSLIMIT (a length above
 * AMB__EPMD_REQUEST_MAX: close the connection), AMB_EDECODE (an empty or
 * unknown request, fields that do not fit, an invalid name or extra). */
int amb__epmd_request_decode(const uint8_t *buf, size_t len, size_t *used,
                             amb__epmd_request *req);

/* Writes the answer to an ALIVE2_REQ from a node whose highest version is
 * high_vsn: ALIVE2_X_RESP with a 32-bit creation when high_vsn >= 6,
 * else ALIVE2_RESP with its low 16 bits, as epmd does. AMB_EBUFSIZE. */
int amb__epmd_alive2_resp_encode(uint8_t result, uint32_t creation, uint16_t high_vsn,
                                 uint8_t *buf, size_t cap, size_t *len);
/* Writes PORT2_RESP: the node when node is not NULL (Result 0), else the
 * two-byte "not found" answer (Result 1). AMB_EBADARG for an invalid node,
 * AMB_EBUFSIZE. */
int amb__epmd_port2_resp_encode(const amb__epmd_node *node, uint8_t *buf, size_t cap,
                                size_t *len);
/* Writes the 4-byte start of NAMES_RESP. AMB_EBUFSIZE. */
int amb__epmd_names_resp_port_encode(uint32_t epmd_port, uint8_t *buf, size_t cap,
                                     size_t *len);
/* Writes one NAMES_RESP line. AMB_EBADARG for an invalid name,
 * AMB_EBUFSIZE. */
int amb__epmd_names_line_encode(const char *name, size_t name_len, uint16_t port,
                                uint8_t *buf, size_t cap, size_t *len);

#endif /* AMB_DIST_EPMD_PROTO_H */

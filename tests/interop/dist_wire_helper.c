/*
 * dist_wire_helper.c - a small C node and a small EPMD built only from the
 * pure protocol layer of src/dist (EPMD protocol, handshake, frames,
 * control messages) plus plain blocking POSIX sockets, so that
 * dist_wire.sh and dist_epmd.sh can check that layer against a real erl and
 * a real epmd. The sockets here are test code: the library's connection
 * layer is not built yet.
 *
 *   dist_wire_helper node CAPTURE COOKIE ALIVE HOST ERL_NODE
 *       Registers ALIVE@HOST with the epmd at $ERL_EPMD_PORT (hidden), then:
 *       1. connects to ERL_NODE with a wrong cookie (must fail),
 *       2. connects with COOKIE, says {hello, Self, out} to ERL_NODE's
 *          registered `peer`, serves the connection until `done`,
 *       3. accepts a connection with a wrong cookie (must fail),
 *       4. accepts one with COOKIE (offering no FRAGMENTS, so its frames are
 *          pass-through), says {hello, Self, in}, serves until done.
 *       Every step prints one line on stdout (dist_wire.escript reads them).
 *       What it serves: ticks, net_kernel's is_auth (so net_adm:ping says
 *       pong), LINK, UNLINK_ID (acknowledged), MONITOR_P (names other than
 *       net_kernel get DOWN noproc), and messages to Self: {echo, From, X}
 *       sends X back, {big, From, Bin} sends {big_back, Bin} back
 *       (fragmented), second_connect makes a second connection under our
 *       name (erl answers alive, we say false), {crash, Reason} ends every link and
 * monitor with Reason, done ends the connection. Received frames, message bodies,
 *       handshake packets and EPMD answers are written to CAPTURE as fuzz
 *       seeds.
 *   dist_wire_helper epmd PORT
 *       Serves the EPMD protocol on 127.0.0.1:PORT until killed: ALIVE2
 *       registrations held while their connection lives, PORT_PLEASE2,
 *       NAMES. Prints READY, then one line per registration change.
 *
 * Deadlines everywhere (poll), so a stuck peer ends the run with a FAIL
 * line instead of a hang; dist_wire.sh also runs it under `timeout`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ambitious.h"
#include "dist/control.h"
#include "dist/dist_flags.h"
#include "dist/epmd_proto.h"
#include "dist/frame.h"
#include "dist/handshake.h"

static const char *capture_dir;
static int capture_seq;
/* What the node says when an acceptor answers alive. */
static bool say_alive = true;
/* For a second connection attempt while one is up: where and who. */
static uint16_t erl_port;
static const char *the_cookie, *the_name;
static uint32_t the_creation;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

_Noreturn static void die(const char *what)
{
    say("FAIL %s (%s)", what, strerror(errno));
    exit(1);
}

/* Writes a capture file: prefix byte (when >= 0), then the bytes. */
static void capture(const char *kind, int prefix, const uint8_t *p, size_t n)
{
    if (capture_dir == NULL || n > 200000 || capture_seq >= 400)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/live_%03d", capture_dir, kind, capture_seq++);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    if (prefix >= 0)
        fputc(prefix, f);
    fwrite(p, 1, n, f);
    fclose(f);
}

/* ---------------------------------------------------------------------------
 * Sockets with deadlines
 * ------------------------------------------------------------------------ */

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Waits for fd to be readable until deadline: 1 readable, 0 timed out. */
static int wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            die("poll");
    }
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("send");
        p += w;
        n -= (size_t)w;
    }
}

/* Reads what is there (at least one byte) into buf: bytes read, 0 at EOF,
 * -1 when the deadline passed. */
static ssize_t read_some(int fd, uint8_t *buf, size_t cap, int64_t deadline)
{
    if (!wait_readable(fd, deadline))
        return -1;
    ssize_t r;
    do
        r = recv(fd, buf, cap, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return 0; /* a reset is an end like EOF */
    return r;
}

/* Reads until the whole answer decodes; returns its size. */
typedef int answer_fn(const uint8_t *buf, size_t len, void *out);

static size_t read_answer(int fd, uint8_t *buf, size_t cap, answer_fn *fn, void *out)
{
    size_t len = 0;
    int64_t deadline = now_ms() + 10000;
    for (;;) {
        int rc = fn(buf, len, out);
        if (rc == 0)
            return len;
        if (rc != AMB_EAGAIN) {
            say("FAIL epmd answer: %s", amb_err_name(rc));
            exit(1);
        }
        ssize_t r = read_some(fd, buf + len, cap - len, deadline);
        if (r <= 0)
            die("epmd answer cut short");
        len += (size_t)r;
    }
}

/* ---------------------------------------------------------------------------
 * EPMD client
 * ------------------------------------------------------------------------ */

static uint16_t epmd_port(void)
{
    const char *e = getenv("ERL_EPMD_PORT");
    return e ? (uint16_t)atoi(e) : AMB__EPMD_PORT;
}

typedef struct alive_answer {
    uint8_t result;
    uint32_t creation;
} alive_answer;

static int alive_fn(const uint8_t *buf, size_t len, void *out)
{
    alive_answer *a = out;
    size_t used;
    return amb__epmd_alive2_resp_decode(buf, len, &used, &a->result, &a->creation);
}

typedef struct port_answer {
    uint8_t result;
    amb__epmd_node node;
} port_answer;

static int port_fn(const uint8_t *buf, size_t len, void *out)
{
    port_answer *a = out;
    size_t used;
    return amb__epmd_port2_resp_decode(buf, len, &used, &a->result, &a->node);
}

/* Registers alive on listen_port; returns the socket to keep open. */
static int epmd_register(const char *alive, uint16_t listen_port, uint32_t *creation)
{
    amb__epmd_node n = {.port = listen_port,
                        .type = AMB__EPMD_TYPE_HIDDEN,
                        .protocol = AMB__EPMD_PROTO_TCP,
                        .high_vsn = 6,
                        .low_vsn = 6,
                        .name_len = strlen(alive)};
    memcpy(n.name, alive, n.name_len + 1);
    uint8_t buf[2048];
    size_t len;
    if (amb__epmd_alive2_req_encode(&n, buf, sizeof buf, &len) != 0)
        die("alive2 encode");
    int fd = tcp_connect(epmd_port());
    write_all(fd, buf, len);
    alive_answer a;
    len = read_answer(fd, buf, sizeof buf, alive_fn, &a);
    capture("dist_epmd", 1, buf, len);
    if (a.result != 0) {
        say("FAIL epmd refused %s: result %u", alive, a.result);
        exit(1);
    }
    *creation = a.creation;
    return fd;
}

static uint16_t epmd_lookup(const char *alive)
{
    uint8_t buf[4096];
    size_t len;
    if (amb__epmd_port2_req_encode(alive, strlen(alive), buf, sizeof buf, &len) != 0)
        die("port2 encode");
    int fd = tcp_connect(epmd_port());
    write_all(fd, buf, len);
    port_answer a;
    len = read_answer(fd, buf, sizeof buf, port_fn, &a);
    capture("dist_epmd", 2, buf, len);
    close(fd);
    if (a.result != 0) {
        say("FAIL epmd does not know %s", alive);
        exit(1);
    }
    return a.node.port;
}

/* NAMES_REQ: true when both names are listed. */
static bool epmd_names_has(const char *a, const char *b)
{
    uint8_t req[8], buf[65536];
    size_t len = 0;
    if (amb__epmd_names_req_encode(req, sizeof req, &len) != 0)
        die("names encode");
    int fd = tcp_connect(epmd_port());
    write_all(fd, req, len);
    len = 0;
    int64_t deadline = now_ms() + 10000;
    ssize_t r;
    while (len < sizeof buf &&
           (r = read_some(fd, buf + len, sizeof buf - len, deadline)) > 0)
        len += (size_t)r;
    close(fd);
    capture("dist_epmd", 3, buf, len);
    uint32_t port;
    if (amb__epmd_names_resp_port(buf, len, &port) != 0)
        return false;
    bool has_a = false, has_b = false;
    size_t pos = 0;
    amb__epmd_name e;
    while (amb__epmd_names_next(buf + 4, len - 4, &pos, &e) == 0) {
        has_a |= strcmp(e.name, a) == 0;
        has_b |= strcmp(e.name, b) == 0;
    }
    return has_a && has_b && port == epmd_port();
}

/* ---------------------------------------------------------------------------
 * The handshake on a socket
 * ------------------------------------------------------------------------ */

typedef struct conn {
    int fd;
    const char *tag;
    amb__frame_mode mode;
    uint64_t flags;
    amb__frame_reader rd;
    amb__frame_defrag df;
    amb__etf_atom_budget budget;
    amb_heap *heap;
    amb_term self, node;
    amb_term links[64];
    size_t nlinks;
    struct {
        amb_term pid, ref;
    } mons[64];
    size_t nmons;
    size_t frag_frames; /* fragments of the message being reassembled */
    uint64_t next_seq;
} conn;

/* Runs hs on fd to its end; bytes after it go to the frame reader. Writes
 * the received packets as a dist_handshake seed. */
static amb__hs_state run_handshake(int fd, amb__handshake *hs, amb__frame_reader *rd)
{
    uint8_t seed[4096], in[4096];
    size_t seed_len = 1;
    seed[0] = hs->role == AMB__HS_ACCEPTOR ? 1 : 0;
    int64_t deadline = now_ms() + 10000;
    for (;;) {
        size_t out_len;
        const uint8_t *out = amb__handshake_output(hs, &out_len);
        if (out_len > 0) {
            write_all(fd, out, out_len);
            amb__handshake_output_done(hs, out_len);
        }
        amb__hs_state st = amb__handshake_state(hs);
        if (st == AMB__HS_NEED_STATUS) {
            amb__handshake_set_status(hs, AMB__HS_STATUS_OK, NULL, 0, 0);
            if (seed_len + 3 <= sizeof seed) {
                memcpy(seed + seed_len, "\3\1\1", 3);
                seed_len += 3;
            }
            continue;
        }
        if (st == AMB__HS_NEED_ALIVE) {
            say("ALIVE_ASKED answering %s", say_alive ? "true" : "false");
            amb__handshake_answer_alive(hs, say_alive);
            continue;
        }
        if (st == AMB__HS_UP || st == AMB__HS_FAILED)
            break;
        ssize_t r = read_some(fd, in, sizeof in, deadline);
        if (r < 0) {
            say("FAIL handshake timed out");
            exit(1);
        }
        if (r == 0) {
            amb__handshake_eof(hs);
            continue;
        }
        size_t took;
        if (amb__handshake_feed(hs, in, (size_t)r, &took) != 0)
            die("handshake feed");
        /* The seed: the bytes as raw records of at most 255 bytes. */
        for (size_t off = 0; off < took; off += 255) {
            size_t k = took - off < 255 ? took - off : 255;
            if (seed_len + 2 + k <= sizeof seed) {
                seed[seed_len++] = 0;
                seed[seed_len++] = (uint8_t)k;
                memcpy(seed + seed_len, in + off, k);
                seed_len += k;
            }
        }
        if (took < (size_t)r &&
            amb__frame_reader_feed(rd, in + took, (size_t)r - took) != 0)
            die("frame reader");
    }
    capture("dist_handshake", -1, seed, seed_len);
    return amb__handshake_state(hs);
}

/* ---------------------------------------------------------------------------
 * Frames out
 * ------------------------------------------------------------------------ */

static void send_ctl(conn *c, const amb__dist_ctl *ctl)
{
    amb__dist_wire w;
    int rc = amb__control_encode(ctl, c->mode == AMB__FRAME_MODE_PASS_THROUGH, &w);
    if (rc != 0) {
        say("FAIL encode %s: %s", amb__control_name(ctl->op), amb_err_name(rc));
        exit(1);
    }
    size_t len;
    if (c->mode == AMB__FRAME_MODE_PASS_THROUGH || !(c->flags & AMB__DFLAG_FRAGMENTS)) {
        size_t size;
        if (amb__frame_size(c->mode, w.ctl_len, w.msg_len, &size) != 0)
            die("frame size");
        uint8_t *buf = malloc(size);
        if (buf == NULL || amb__frame_encode(c->mode, w.ctl, w.ctl_len, w.msg, w.msg_len,
                                             buf, size, &len))
            die("frame encode");
        write_all(c->fd, buf, len);
        free(buf);
    } else {
        /* Fragments of 64 KiB, as a large message from OTP comes. */
        enum { MAX = 65536 };
        amb__frame_frag it;
        if (amb__frame_frag_init(&it, ++c->next_seq, w.ctl, w.ctl_len, w.msg, w.msg_len,
                                 MAX) != 0)
            die("frag init");
        static uint8_t buf[MAX + 4];
        while (!amb__frame_frag_done(&it)) {
            if (amb__frame_frag_next(&it, buf, sizeof buf, &len) != 0)
                die("frag next");
            write_all(c->fd, buf, len);
        }
        if (amb__frame_frag_count(&it) > 1)
            say("SENT_FRAGMENTS %s %llu", c->tag,
                (unsigned long long)amb__frame_frag_count(&it));
    }
    amb__control_wire_free(&w);
}

static void send_msg(conn *c, amb_term to, amb_term msg)
{
    amb__dist_ctl ctl = {.op = (c->flags & AMB__DFLAG_SEND_SENDER) ? AMB__DOP_SEND_SENDER
                                                                   : AMB__DOP_SEND,
                         .from = c->self,
                         .to = to,
                         .message = msg};
    if (ctl.op == AMB__DOP_SEND)
        ctl.from = AMB_NONE;
    send_ctl(c, &ctl);
}

static bool payload_exits(const conn *c)
{
    return (c->flags & AMB__DFLAG_EXIT_PAYLOAD) != 0;
}

/* ---------------------------------------------------------------------------
 * Frames in
 * ------------------------------------------------------------------------ */

static void text(amb_term t, char *buf, size_t cap)
{
    size_t len;
    if (amb_print(t, buf, cap, &len) == AMB_EBUFSIZE && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

/* Handles one message to our process. Returns false on `done`. */
static bool to_self(conn *c, amb_term m)
{
    amb_term from, x;
    char buf[256];
    if (m == amb_atom("done"))
        return false;
    if (amb_match(m, "{echo, ~p, ~w}", &from, &x) == 0) {
        send_msg(c, from, x);
        say("ECHO %s", c->tag);
    } else if (amb_match(m, "{big, ~p, ~w}", &from, &x) == 0) {
        size_t size = 0;
        amb_binary_get(x, NULL, &size);
        say("BIG %s %zu", c->tag, size);
        send_msg(c, from, AMB_TUPLE(c->heap, amb_atom("big_back"), x));
    } else if (m == amb_atom("second_connect")) {
        /* A second connection under our name while this one is up: erl
         * answers alive, and we say false (this one is not stale). */
        amb__hs_config cfg = {.name = the_name,
                              .name_len = strlen(the_name),
                              .cookie = (const uint8_t *)the_cookie,
                              .cookie_len = strlen(the_cookie),
                              .creation = the_creation};
        amb__handshake *hs = malloc(sizeof *hs);
        amb__frame_reader rd;
        amb__frame_reader_init(&rd, 0);
        if (hs == NULL || amb__handshake_init(hs, AMB__HS_INITIATOR, &cfg) != 0)
            die("second handshake");
        int fd = tcp_connect(erl_port);
        say_alive = false;
        amb__hs_state st = run_handshake(fd, hs, &rd);
        say_alive = true;
        const amb__hs_result *r = amb__handshake_result(hs);
        say("SECOND %s %s %s", st == AMB__HS_UP ? "up" : "failed",
            amb__handshake_failure_name(r->failure),
            amb__handshake_status_name(r->status));
        close(fd);
        amb__frame_reader_destroy(&rd);
        free(hs);
    } else if (amb_match(m, "{crash, ~w}", &x) == 0) {
        for (size_t i = 0; i < c->nlinks; i++) {
            amb__dist_ctl e = {.op = payload_exits(c) ? AMB__DOP_PAYLOAD_EXIT
                                                      : AMB__DOP_EXIT,
                               .from = c->self,
                               .to = c->links[i],
                               .reason = x};
            send_ctl(c, &e);
        }
        for (size_t i = 0; i < c->nmons; i++) {
            amb__dist_ctl e = {.op = payload_exits(c) ? AMB__DOP_PAYLOAD_MONITOR_P_EXIT
                                                      : AMB__DOP_MONITOR_P_EXIT,
                               .from = c->self,
                               .to = c->mons[i].pid,
                               .ref = c->mons[i].ref,
                               .reason = x};
            send_ctl(c, &e);
        }
        text(x, buf, sizeof buf);
        say("CRASHED %s %zu links %zu monitors %s", c->tag, c->nlinks, c->nmons, buf);
        c->nlinks = c->nmons = 0;
    } else {
        text(m, buf, sizeof buf);
        say("UNKNOWN %s %s", c->tag, buf);
    }
    return true;
}

/* Handles one decoded control message. Returns false on `done`. */
static bool handle(conn *c, const amb__dist_ctl *m)
{
    char buf[256] = "";
    amb_term t = m->message ? m->message : m->reason;
    if (t != AMB_NONE)
        text(t, buf, sizeof buf);
    say("MSG %s %s %s", c->tag, amb__control_name(m->op), buf);
    switch (m->op) {
    case AMB__DOP_LINK:
        if (c->nlinks < 64)
            c->links[c->nlinks++] = m->from;
        break;
    case AMB__DOP_UNLINK_ID: {
        for (size_t i = 0; i < c->nlinks; i++)
            if (amb_equal(c->links[i], m->from))
                c->links[i--] = c->links[--c->nlinks];
        amb__dist_ctl ack = {
            .op = AMB__DOP_UNLINK_ID_ACK, .id = m->id, .from = m->to, .to = m->from};
        send_ctl(c, &ack);
        break;
    }
    case AMB__DOP_MONITOR_P:
        if (amb_is_atom(m->to) && m->to != amb_atom("net_kernel")) {
            amb__dist_ctl down = {.op = payload_exits(c) ? AMB__DOP_PAYLOAD_MONITOR_P_EXIT
                                                         : AMB__DOP_MONITOR_P_EXIT,
                                  .from = m->to, /* the name, so the DOWN names it */
                                  .to = m->from,
                                  .ref = m->ref,
                                  .reason = AMB_ATOM_NOPROC};
            send_ctl(c, &down);
        } else if (amb_equal(m->to, c->self) && c->nmons < 64) {
            c->mons[c->nmons].pid = m->from;
            c->mons[c->nmons++].ref = m->ref;
        }
        break;
    case AMB__DOP_DEMONITOR_P:
        for (size_t i = 0; i < c->nmons; i++)
            if (amb_equal(c->mons[i].ref, m->ref))
                c->mons[i--] = c->mons[--c->nmons];
        break;
    case AMB__DOP_REG_SEND: {
        amb_term from, tag;
        if (m->to == amb_atom("net_kernel") &&
            amb_match(m->message, "{'$gen_call', {~p, ~w}, {is_auth, _}}", &from, &tag) ==
                0)
            send_msg(c, from, AMB_TUPLE(c->heap, tag, amb_atom("yes")));
        break;
    }
    case AMB__DOP_SEND:
    case AMB__DOP_SEND_SENDER:
    case AMB__DOP_ALIAS_SEND:
        if (amb_equal(m->to, c->self))
            return to_self(c, m->message);
        break;
    default:
        break;
    }
    return true;
}

/* Serves the connection until done, EOF or the deadline. Returns true on
 * done. */
static bool serve(conn *c)
{
    int64_t deadline = now_ms() + 60000;
    for (;;) {
        const uint8_t *data;
        size_t len;
        int rc;
        while ((rc = amb__frame_reader_next(&c->rd, &data, &len)) == 0) {
            capture("dist_frame", c->mode == AMB__FRAME_MODE_HEADER ? 1 : 0, data - 4,
                    len + 4);
            amb__frame f;
            if ((rc = amb__frame_parse(c->mode, data, len, &f)) != 0) {
                say("FAIL %s frame: %s", c->tag, amb_err_name(rc));
                return false;
            }
            if (f.kind == AMB__FRAME_TICK) {
                uint8_t tick[4];
                amb__frame_encode_tick(tick, sizeof tick, &len);
                write_all(c->fd, tick, len);
                continue;
            }
            uint8_t *owned = NULL;
            const uint8_t *body = f.body;
            size_t blen = f.body_len;
            if (f.kind == AMB__FRAME_FRAGMENT) {
                c->frag_frames++;
                if ((rc = amb__frame_defrag_add(&c->df, &f, &owned, &blen)) != 0) {
                    say("FAIL %s reassembly: %s", c->tag, amb_err_name(rc));
                    return false;
                }
                if (owned == NULL)
                    continue;
                say("REASSEMBLED %s %zu", c->tag, c->frag_frames);
                c->frag_frames = 0;
                body = owned;
            }
            capture("dist_control", c->mode == AMB__FRAME_MODE_PASS_THROUGH, body, blen);
            amb__control_limits lim = {.atoms = &c->budget};
            amb__dist_ctl m;
            rc = amb__control_decode(c->heap, body, blen,
                                     c->mode == AMB__FRAME_MODE_PASS_THROUGH, &lim, &m);
            bool go_on = rc == 0 && handle(c, &m);
            amb_free(owned);
            if (rc != 0) {
                say("FAIL %s decode: %s", c->tag, amb_err_name(rc));
                return false;
            }
            if (!go_on)
                return true;
        }
        if (rc != AMB_EAGAIN) {
            say("FAIL %s reader: %s", c->tag, amb_err_name(rc));
            return false;
        }
        uint8_t *p;
        size_t room;
        if (amb__frame_reader_space(&c->rd, 65536, &p, &room) != 0)
            die("reader space");
        ssize_t r = read_some(c->fd, p, room, deadline);
        if (r <= 0) {
            say("FAIL %s %s", c->tag, r < 0 ? "timed out" : "closed by the peer");
            return false;
        }
        amb__frame_reader_commit(&c->rd, (size_t)r);
    }
}

/* One connection: handshake, hello, serve. */
static bool session(int fd, amb__hs_role role, const char *cookie, const char *name,
                    const char *peer, uint32_t creation, const char *tag)
{
    amb__hs_config cfg = {.name = name,
                          .name_len = strlen(name),
                          .cookie = (const uint8_t *)cookie,
                          .cookie_len = strlen(cookie),
                          .creation = creation,
                          .peer_name = peer,
                          .peer_name_len = peer ? strlen(peer) : 0};
    /* The accepted connection offers no FRAGMENTS: pass-through frames. */
    if (strcmp(tag, "in") == 0)
        cfg.flags = AMB__DFLAGS_DEFAULT & ~AMB__DFLAG_FRAGMENTS;
    amb__handshake *hs = malloc(sizeof *hs);
    conn c = {.fd = fd, .tag = tag};
    amb__frame_reader_init(&c.rd, 0);
    amb__frame_defrag_init(&c.df, NULL);
    if (hs == NULL || amb__handshake_init(hs, role, &cfg) != 0)
        die("handshake init");
    amb__hs_state st = run_handshake(fd, hs, &c.rd);
    const amb__hs_result *r = amb__handshake_result(hs);
    if (st != AMB__HS_UP) {
        say("HANDSHAKE_FAILED %s %s %s", tag, amb__handshake_failure_name(r->failure),
            amb__handshake_status_name(r->status));
        free(hs);
        amb__frame_defrag_destroy(&c.df);
        amb__frame_reader_destroy(&c.rd);
        close(fd);
        return false;
    }
    c.flags = r->flags;
    c.mode = amb__frame_mode_of(r->flags);
    say("UP %s %s mode=%s flags=0x%llx peer_flags=0x%llx", tag, r->peer_name,
        c.mode == AMB__FRAME_MODE_HEADER ? "header" : "pass_through",
        (unsigned long long)r->flags, (unsigned long long)r->peer_flags);
    c.budget = (amb__etf_atom_budget){.left = 4096};
    if (amb_heap_new(&c.heap) != 0)
        die("heap");
    c.node = amb_atom(name);
    c.self = amb_pid_term(c.heap, c.node, 1, 0, creation);
    free(hs);
    send_ctl(&c, &(amb__dist_ctl){.op = AMB__DOP_REG_SEND,
                                  .from = c.self,
                                  .to = amb_atom("peer"),
                                  .message = AMB_TUPLE(c.heap, amb_atom("hello"), c.self,
                                                       amb_atom(tag))});
    bool ok = serve(&c);
    say("%s %s", ok ? "DONE" : "ENDED", tag);
    amb__frame_defrag_destroy(&c.df);
    amb__frame_reader_destroy(&c.rd);
    amb_heap_free(c.heap);
    close(fd);
    return ok;
}

static int node_main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s node CAPTURE COOKIE ALIVE HOST ERL_NODE\n", argv[0]);
        return 2;
    }
    capture_dir = strcmp(argv[2], "-") ? argv[2] : NULL;
    const char *cookie = argv[3], *alive = argv[4], *host = argv[5], *erl = argv[6];
    char name[512], erl_alive[256];
    snprintf(name, sizeof name, "%s@%s", alive, host);
    const char *at = strchr(erl, '@');
    if (at == NULL || (size_t)(at - erl) >= sizeof erl_alive)
        return 2;
    memcpy(erl_alive, erl, (size_t)(at - erl));
    erl_alive[at - erl] = '\0';

    /* Our listen socket first: EPMD gets its port. Any address, since erl
     * connects to what the host name resolves to. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(lfd, 4) != 0 || getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
        die("listen");
    uint32_t creation;
    int efd = epmd_register(alive, ntohs(a.sin_port), &creation);
    say("REGISTERED %s creation=%u", name, creation);
    say(epmd_names_has(alive, erl_alive) ? "NAMES ok" : "NAMES missing");
    erl_port = epmd_lookup(erl_alive);
    say("PORT %s %u", erl_alive, erl_port);
    the_cookie = cookie;
    the_name = name;
    the_creation = creation;

    /* 1. A wrong cookie: erl closes after our challenge reply. */
    char wrong[256];
    snprintf(wrong, sizeof wrong, "%s_not", cookie);
    session(tcp_connect(erl_port), AMB__HS_INITIATOR, wrong, name, erl, creation, "out");
    /* 2. The right one. */
    if (!session(tcp_connect(erl_port), AMB__HS_INITIATOR, cookie, name, erl, creation,
                 "out"))
        return 1;
    /* 3. and 4. erl calls us: first with a wrong cookie, then right. */
    say("LISTENING");
    for (int i = 0; i < 2; i++) {
        if (!wait_readable(lfd, now_ms() + 30000)) {
            say("FAIL nobody connected");
            return 1;
        }
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            die("accept");
        bool ok = session(fd, AMB__HS_ACCEPTOR, cookie, name, NULL, creation, "in");
        if (i == 1 && !ok)
            return 1;
    }
    close(efd);
    close(lfd);
    return 0;
}

/* ---------------------------------------------------------------------------
 * EPMD server mode
 * ------------------------------------------------------------------------ */

#define MAX_CLIENTS 64

typedef struct client {
    int fd;
    size_t len;
    uint8_t buf[AMB__EPMD_REQUEST_MAX + 2];
    bool registered;
    amb__epmd_node node;
} client;

static client clients[MAX_CLIENTS];

static void drop_client(client *cl)
{
    if (cl->registered)
        say("UNREGISTERED %s", cl->node.name);
    close(cl->fd);
    cl->fd = -1;
    cl->registered = false;
    cl->len = 0;
}

/* Handles the requests buffered for cl. Returns false to close it. */
static bool serve_requests(client *cl, uint16_t port, uint32_t *creation)
{
    for (;;) {
        amb__epmd_request req;
        size_t used, len;
        int rc = amb__epmd_request_decode(cl->buf, cl->len, &used, &req);
        if (rc == AMB_EAGAIN)
            return true;
        if (rc != 0 || cl->registered) /* a registered socket says nothing more */
            return false;
        memmove(cl->buf, cl->buf + used, cl->len - used);
        cl->len -= used;
        uint8_t out[AMB__EPMD_NAMES_LINE_MAX + 8];
        switch (req.code) {
        case AMB__EPMD_ALIVE2_REQ: {
            bool taken = false;
            for (size_t i = 0; i < MAX_CLIENTS; i++)
                taken |= clients[i].fd >= 0 && clients[i].registered &&
                         strcmp(clients[i].node.name, req.node.name) == 0;
            uint32_t cr = taken ? 99 : ++*creation;
            amb__epmd_alive2_resp_encode(taken ? 1 : 0, cr, req.node.high_vsn, out,
                                         sizeof out, &len);
            write_all(cl->fd, out, len);
            if (taken) {
                say("REFUSED %s", req.node.name);
                return false;
            }
            cl->registered = true;
            cl->node = req.node;
            say("REGISTERED %s %u", req.node.name, req.node.port);
            return true;
        }
        case AMB__EPMD_PORT_PLEASE2_REQ: {
            const amb__epmd_node *found = NULL;
            for (size_t i = 0; i < MAX_CLIENTS; i++)
                if (clients[i].fd >= 0 && clients[i].registered &&
                    strcmp(clients[i].node.name, req.node.name) == 0)
                    found = &clients[i].node;
            static uint8_t big[2 + 12 + AMB__EPMD_NAME_MAX + AMB__EPMD_EXTRA_MAX];
            amb__epmd_port2_resp_encode(found, big, sizeof big, &len);
            write_all(cl->fd, big, len);
            say("PORT_PLEASE2 %s %s", req.node.name, found ? "found" : "none");
            return false;
        }
        case AMB__EPMD_NAMES_REQ:
            amb__epmd_names_resp_port_encode(port, out, sizeof out, &len);
            write_all(cl->fd, out, len);
            for (size_t i = 0; i < MAX_CLIENTS; i++)
                if (clients[i].fd >= 0 && clients[i].registered) {
                    amb__epmd_names_line_encode(
                        clients[i].node.name, clients[i].node.name_len,
                        clients[i].node.port, out, sizeof out, &len);
                    write_all(cl->fd, out, len);
                }
            say("NAMES");
            return false;
        default:
            return false; /* DUMP, KILL, STOP: not served */
        }
    }
}

static int epmd_main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s epmd PORT\n", argv[0]);
        return 2;
    }
    uint16_t port = (uint16_t)atoi(argv[2]);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(lfd, 16) != 0)
        die("epmd listen");
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        clients[i].fd = -1;
    uint32_t creation = (uint32_t)time(NULL);
    say("READY %u", port);
    int64_t idle_until = now_ms() + 120000;
    while (now_ms() < idle_until) {
        struct pollfd p[MAX_CLIENTS + 1];
        size_t n = 0, idx[MAX_CLIENTS + 1];
        p[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
        idx[n++] = MAX_CLIENTS;
        for (size_t i = 0; i < MAX_CLIENTS; i++)
            if (clients[i].fd >= 0) {
                p[n] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN};
                idx[n++] = i;
            }
        if (poll(p, n, 1000) < 0 && errno != EINTR)
            die("poll");
        for (size_t k = 0; k < n; k++) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (idx[k] == MAX_CLIENTS) {
                int fd = accept(lfd, NULL, NULL);
                size_t i = 0;
                while (i < MAX_CLIENTS && clients[i].fd >= 0)
                    i++;
                if (fd >= 0 && i < MAX_CLIENTS) {
                    clients[i].fd = fd;
                    clients[i].len = 0;
                    clients[i].registered = false;
                } else if (fd >= 0) {
                    close(fd);
                }
                continue;
            }
            client *cl = &clients[idx[k]];
            ssize_t r = recv(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len, 0);
            if (r <= 0 || (cl->len += (size_t)r, !serve_requests(cl, port, &creation)))
                drop_client(cl);
            idle_until = now_ms() + 120000;
        }
    }
    say("IDLE");
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "node") == 0)
        return node_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "epmd") == 0)
        return epmd_main(argc, argv);
    fprintf(stderr, "usage: %s node ... | epmd PORT\n", argv[0]);
    return 2;
}

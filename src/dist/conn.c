/*
 * conn.c - a node's connections (dist.h): the table of them by node name,
 * the queues through which local processes' signals leave, the reader and
 * the writer processes of each, and what happens when one goes down.
 *
 * The life of a connection:
 *
 *   an op finds no connection to N: PENDING entry in the table, net_kernel
 *   asked to start an initiator reader; signals wait in `pending`
 *      |
 *   reader: transport connect, handshake (set-up timeout), or an acceptor
 *   reader made by the listener settles the handshake with the table
 *   (simultaneous connect: the greater name wins, OTP's rule; a connection
 *   that is up already: `alive`)
 *      |
 *   UP: the reader spawns the writer (linked), which sends the pending
 *   signals, then everything queued after them, a chunk of each local
 *   sender's queue in turn (large messages as 64 KiB fragments); a sender
 *   over its budget waits in amb_send until the writer resumes it; the
 *   reader turns frames into local signals (atom-cache references through
 *   the peer's cache) and watches the ticks
 *      |
 *   DOWN (amb__conn_down, once): out of the table, NODEDOWN to each local
 *   process that had a relation over it, nodedown messages, queues freed.
 *   The reader calls it before it ends; net_kernel (linked to every reader)
 *   calls it for a reader that ended without doing so (killed).
 *
 * Invariants (besides dist.h's):
 *   - Only the reader that owns an entry (c->reader) or net_kernel acting
 *     for a dead owner takes it down, so a reader that lost its entry to a
 *     simultaneous connect cannot take down the winner's.
 *   - The writer is the only consumer of the senders' queues, and sets
 *     writer_idle (under the lock) only when it found them all empty; a
 *     producer that finds it idle clears it and wakes it: no lost wake-up,
 *     one wake per idle period.
 *   - A sender's queue is FIFO and in the ring while it holds bytes; it is
 *     freed once empty and not waiting. A waiting sender gets exactly one
 *     resume: from the writer when its bytes are back within the budget,
 *     or from the connection's end.
 *   - Bytes from the peer are bounded by frame.h's limits, atoms by the
 *     connection's budget (control.h); a violation closes this connection
 *     only.
 */
#include <string.h>

#include "dist.h"

/* ===========================================================================
 * Pid sets
 * ======================================================================== */

static size_t pid_slot(amb_pid pid, size_t cap)
{
    uint64_t k = pid;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k & (cap - 1);
}

static int pidset_grow(amb__pidset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 16;
    amb_pid *v = amb__calloc(cap, sizeof *v);
    amb__msg **cells = v != NULL ? amb__calloc(cap, sizeof *cells) : NULL;
    if (cells == NULL) {
        amb__free(v);
        return AMB_ENOMEM;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (s->v[i] == 0)
            continue;
        size_t j = pid_slot(s->v[i], cap);
        while (v[j] != 0)
            j = (j + 1) & (cap - 1);
        v[j] = s->v[i];
        cells[j] = s->cells[i];
    }
    amb__free(s->v);
    amb__free(s->cells);
    s->v = v;
    s->cells = cells;
    s->cap = cap;
    return 0;
}

int amb__pidset_add(amb__pidset *s, amb_pid pid)
{
    for (size_t i = s->cap ? pid_slot(pid, s->cap) : 0; s->cap != 0;
         i = (i + 1) & (s->cap - 1)) {
        if (s->v[i] == pid)
            return 0;
        if (s->v[i] == 0)
            break;
    }
    amb__msg *cell = amb__remote_nodedown_new();
    if (cell == NULL || ((s->len + 1) * 4 > s->cap * 3 && pidset_grow(s) != 0)) {
        amb__remote_nodedown_drop(cell);
        return AMB_ENOMEM;
    }
    size_t i = pid_slot(pid, s->cap);
    while (s->v[i] != 0)
        i = (i + 1) & (s->cap - 1);
    s->v[i] = pid;
    s->cells[i] = cell;
    s->len++;
    return 0;
}

bool amb__pidset_del(amb__pidset *s, amb_pid pid)
{
    if (s->cap == 0)
        return false;
    size_t mask = s->cap - 1, i = pid_slot(pid, s->cap);
    while (s->v[i] != pid) {
        if (s->v[i] == 0)
            return false;
        i = (i + 1) & mask;
    }
    amb__remote_nodedown_drop(s->cells[i]);
    /* Backward shift (linear probing without tombstones). */
    for (size_t j = (i + 1) & mask; s->v[j] != 0; j = (j + 1) & mask) {
        size_t home = pid_slot(s->v[j], s->cap);
        bool stays = (j > i) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        s->v[i] = s->v[j];
        s->cells[i] = s->cells[j];
        i = j;
    }
    s->v[i] = 0;
    s->cells[i] = NULL;
    s->len--;
    return true;
}

void amb__pidset_free(amb__pidset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        amb__remote_nodedown_drop(s->cells[i]); /* NULL where sent or empty */
    amb__free(s->v);
    amb__free(s->cells);
    s->v = NULL;
    s->cells = NULL;
    s->cap = s->len = 0;
}

/* ===========================================================================
 * The table: node atom -> connection (open addressing, under the lock)
 * ======================================================================== */

static size_t node_slot(amb_term node, size_t cap)
{
    return pid_slot(node, cap);
}

static amb__conn **table_find(amb__dist *d, amb_term node)
{
    if (d->conns_cap == 0)
        return NULL;
    for (size_t i = node_slot(node, d->conns_cap);; i = (i + 1) & (d->conns_cap - 1)) {
        if (d->conns[i] == NULL)
            return NULL;
        if (d->conns[i]->node == node)
            return &d->conns[i];
    }
}

static int table_put(amb__dist *d, amb__conn *c)
{
    if ((d->conns_len + 1) * 2 > d->conns_cap) {
        size_t cap = d->conns_cap ? d->conns_cap * 2 : 16;
        amb__conn **v = amb__calloc(cap, sizeof *v);
        if (v == NULL)
            return AMB_ENOMEM;
        for (size_t i = 0; i < d->conns_cap; i++) {
            if (d->conns[i] == NULL)
                continue;
            size_t j = node_slot(d->conns[i]->node, cap);
            while (v[j] != NULL)
                j = (j + 1) & (cap - 1);
            v[j] = d->conns[i];
        }
        amb__free(d->conns);
        d->conns = v;
        d->conns_cap = cap;
    }
    size_t i = node_slot(c->node, d->conns_cap);
    while (d->conns[i] != NULL)
        i = (i + 1) & (d->conns_cap - 1);
    d->conns[i] = c;
    d->conns_len++;
    return 0;
}

static void table_del(amb__dist *d, amb__conn *c)
{
    amb__conn **e = table_find(d, c->node);
    if (e == NULL || *e != c)
        return;
    size_t mask = d->conns_cap - 1, i = (size_t)(e - d->conns);
    for (size_t j = (i + 1) & mask; d->conns[j] != NULL; j = (j + 1) & mask) {
        size_t home = node_slot(d->conns[j]->node, d->conns_cap);
        bool stays = (j > i) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        d->conns[i] = d->conns[j];
        i = j;
    }
    d->conns[i] = NULL;
    d->conns_len--;
}

/* ===========================================================================
 * Entries
 * ======================================================================== */

/* A new PENDING entry for node in the table (the table's reference), or NULL
 * when out of memory. Under the lock. */
static amb__conn *conn_new(amb__dist *d, amb_term node)
{
    amb__conn *c = amb__calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->d = d;
    c->node = node;
    if (++d->next_conn == 0)
        d->next_conn = 1;
    c->id = d->next_conn;
    c->state = AMB__CONN_PENDING;
    c->refs = 1;
    c->reader = c->writer = AMB_NONE;
    c->sock = AMB_NONE;
    c->down_reason = AMB_NONE;
    c->last_recv = amb_now_ms();
    atomic_init(&c->last_send, c->last_recv);
    if (table_put(d, c) != 0) {
        amb__free(c);
        return NULL;
    }
    return c;
}

static void items_free(amb__conn_item *it)
{
    while (it != NULL) {
        amb__conn_item *next = it->next;
        amb_heap_free(it->heap);
        amb__free(it);
        it = next;
    }
}

static void chunks_free(amb__conn_chunk *ch)
{
    while (ch != NULL) {
        amb__conn_chunk *next = ch->next;
        amb__free(ch);
        ch = next;
    }
}

static void senders_free(amb__conn *c, amb_pid **waiting, size_t *n);

void amb__conn_unref(amb__conn *c)
{
    if (--c->refs > 0)
        return;
    items_free(c->pending);
    senders_free(c, NULL, NULL);
    amb__pidset_free(&c->interested);
    amb__free(c->node_mons);
    amb__heap_release(&c->sock_heap);
    amb__free(c);
}

amb__conn *amb__conn_get(amb__dist *d, amb_term node, bool create)
{
    amb__conn **e = table_find(d, node);
    if (e != NULL)
        return *e;
    if (!create || d->state != AMB__DIST_RUNNING || node == d->name)
        return NULL;
    amb__conn *c = conn_new(d, node);
    if (c == NULL)
        return NULL;
    /* net_kernel starts the initiator (an op cannot spawn). A lost post
     * (out of memory) leaves the entry PENDING until a set-up timeout of
     * a later attempt... so take it down at once instead. */
    amb_term req = AMB_NONE;
    uint64_t words[4];
    amb_heap h;
    amb__heap_init_fixed(&h, words, 4);
    req = AMB_TUPLE(&h, amb_atom("connect"), node);
    if (req == AMB_NONE || amb__remote_post(d->rt, NULL, d->net_kernel, req) != 0) {
        table_del(d, c);
        amb__conn_unref(c);
        return NULL;
    }
    return c;
}

/* ===========================================================================
 * Queues: signals leave in the order they were made
 * ======================================================================== */

/* A copy of control message c on a fresh heap, for the pending list. */
static amb__conn_item *item_new(const amb__dist_ctl *c)
{
    amb__conn_item *it = amb__calloc(1, sizeof *it);
    if (it == NULL || amb_heap_new(&it->heap) != 0) {
        amb__free(it);
        return NULL;
    }
    it->ctl = *c;
    amb_term *terms[] = {&it->ctl.from,    &it->ctl.to,           &it->ctl.ref,
                         &it->ctl.reason,  &it->ctl.token,        &it->ctl.unused,
                         &it->ctl.message, &it->ctl.group_leader, &it->ctl.opts,
                         &it->ctl.result};
    for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++) {
        if (*terms[i] != AMB_NONE && amb_term_copy(it->heap, *terms[i], terms[i]) != 0) {
            items_free(it);
            return NULL;
        }
    }
    return it;
}

/* The control message as this connection's flags want it: SEND_SENDER
 * only where negotiated, the PAYLOAD forms of exits and DOWNs where
 * EXIT_PAYLOAD is (OTP never sends the old forms then). */
static amb__dist_ctl adapt(const amb__dist_ctl *c, uint64_t flags)
{
    amb__dist_ctl a = *c;
    bool payload = (flags & AMB__DFLAG_EXIT_PAYLOAD) != 0;
    switch (c->op) {
    case AMB__DOP_SEND_SENDER:
        if (!(flags & AMB__DFLAG_SEND_SENDER)) {
            a.op = AMB__DOP_SEND;
            a.from = AMB_NONE;
        }
        break;
    case AMB__DOP_EXIT:
        if (payload)
            a.op = AMB__DOP_PAYLOAD_EXIT;
        break;
    case AMB__DOP_EXIT2:
        if (payload)
            a.op = AMB__DOP_PAYLOAD_EXIT2;
        break;
    case AMB__DOP_MONITOR_P_EXIT:
        if (payload)
            a.op = AMB__DOP_PAYLOAD_MONITOR_P_EXIT;
        break;
    default:
        break;
    }
    return a;
}

/* A list of chunks: the frames of one signal, or a sender's queue. */
typedef struct chunk_list {
    amb__conn_chunk *head, *tail;
    size_t bytes;
} chunk_list;

static void list_push(chunk_list *l, amb__conn_chunk *ch)
{
    ch->next = NULL;
    if (l->tail != NULL)
        l->tail->next = ch;
    else
        l->head = ch;
    l->tail = ch;
    l->bytes += ch->len;
}

/* Data bytes of one fragment: ERTS's ERTS_DIST_FRAGMENT_SIZE. A small
 * message waits behind at most one fragment of each other sender (and
 * the kernel's small send buffer): ~50 us of loopback at 1.3 GB/s. */
#define FRAG_DATA ((size_t)64 << 10)

/* Encodes c for a connection with flags into *out: one frame in one chunk
 * of its own, or, for a message whose frame would exceed FRAG_DATA to a
 * peer that takes fragments, one chunk per fragment of sequence seq. 0;
 * AMB_ENOMEM, or an error when c cannot be encoded (a term the wire cannot
 * carry: dropped); nothing in *out then. */
static int frames_of(const amb__dist_ctl *c, uint64_t flags, uint64_t seq,
                     chunk_list *out)
{
    amb__dist_ctl a = adapt(c, flags);
    amb__frame_mode mode = amb__frame_mode_of(flags);
    amb__dist_wire w;
    *out = (chunk_list){0};
    int rc = amb__control_encode(&a, mode == AMB__FRAME_MODE_PASS_THROUGH, &w);
    if (rc != 0)
        return rc;
    bool frag = mode == AMB__FRAME_MODE_HEADER && (flags & AMB__DFLAG_FRAGMENTS) &&
                w.ctl_len + w.msg_len > FRAG_DATA;
    size_t max_frame = FRAG_DATA;
    /* A control tuple above a fragment (a huge name or reason) gets a
     * first fragment large enough for it. */
    if (frag && w.ctl_len + 20 > max_frame)
        max_frame = w.ctl_len + FRAG_DATA;
    amb__frame_frag it;
    if (frag && (rc = amb__frame_frag_init(&it, seq, w.ctl, w.ctl_len, w.msg, w.msg_len,
                                           max_frame)) == 0) {
        while (rc == 0 && !amb__frame_frag_done(&it)) {
            amb__conn_chunk *ch = amb__malloc(sizeof *ch + max_frame + 4);
            if (ch == NULL) {
                rc = AMB_ENOMEM;
                break;
            }
            ch->cap = max_frame + 4;
            if ((rc = amb__frame_frag_next(&it, ch->data, ch->cap, &ch->len)) != 0) {
                amb__free(ch);
                break;
            }
            ch->cap = ch->len; /* a fragment shares its chunk with nothing */
            list_push(out, ch);
        }
    } else if (!frag) {
        size_t size;
        amb__conn_chunk *ch = NULL;
        if ((rc = amb__frame_size(mode, w.ctl_len, w.msg_len, &size)) == 0 &&
            (ch = amb__malloc(sizeof *ch + size)) == NULL)
            rc = AMB_ENOMEM;
        if (rc == 0) {
            ch->cap = size;
            rc = amb__frame_encode(mode, w.ctl, w.ctl_len, w.msg, w.msg_len, ch->data,
                                   size, &ch->len);
            if (rc == 0)
                list_push(out, ch);
            else
                amb__free(ch);
        }
    }
    amb__control_wire_free(&w);
    if (rc != 0) {
        chunks_free(out->head);
        *out = (chunk_list){0};
    }
    return rc;
}

/* Small frames share chunks of this size, so a burst of small messages is
 * one write. */
#define CHUNK_SHARED 65536
#define CHUNK_FIRST  4096
/* A frame this small is copied into its sender's shared chunk. */
#define FRAME_SMALL 4096

/* ---- the senders' table (pid -> queue), under the lock ------------------ */

static amb__conn_sender **sender_slot(amb__conn *c, amb_pid pid)
{
    if (c->senders_cap == 0)
        return NULL;
    for (size_t i = pid_slot(pid, c->senders_cap);; i = (i + 1) & (c->senders_cap - 1)) {
        if (c->senders[i] == NULL || c->senders[i]->pid == pid)
            return &c->senders[i];
    }
}

/* pid's queue on c, made when it has none. NULL when out of memory. */
static amb__conn_sender *sender_get(amb__conn *c, amb_pid pid)
{
    amb__conn_sender **e = sender_slot(c, pid);
    if (e != NULL && *e != NULL)
        return *e;
    if ((c->senders_len + 1) * 2 > c->senders_cap) {
        size_t cap = c->senders_cap ? c->senders_cap * 2 : 16;
        amb__conn_sender **v = amb__calloc(cap, sizeof *v);
        if (v == NULL)
            return NULL;
        for (size_t i = 0; i < c->senders_cap; i++) {
            if (c->senders[i] == NULL)
                continue;
            size_t j = pid_slot(c->senders[i]->pid, cap);
            while (v[j] != NULL)
                j = (j + 1) & (cap - 1);
            v[j] = c->senders[i];
        }
        amb__free(c->senders);
        c->senders = v;
        c->senders_cap = cap;
        e = sender_slot(c, pid);
    }
    amb__conn_sender *q = amb__calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->pid = pid;
    *e = q;
    c->senders_len++;
    return q;
}

/* Removes q (empty, not waiting, out of the ring) from c and frees it. */
static void sender_del(amb__conn *c, amb__conn_sender *q)
{
    size_t mask = c->senders_cap - 1;
    size_t i = (size_t)(sender_slot(c, q->pid) - c->senders);
    /* Backward shift, as the node table's. */
    for (size_t j = (i + 1) & mask; c->senders[j] != NULL; j = (j + 1) & mask) {
        size_t home = pid_slot(c->senders[j]->pid, c->senders_cap);
        bool stays = (j > i) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        c->senders[i] = c->senders[j];
        i = j;
    }
    c->senders[i] = NULL;
    c->senders_len--;
    amb__free(q);
}

/* Frees every queue of c; the pids of senders waiting in their sends go to
 * *waiting (an array the caller frees), their count to *n. */
static void senders_free(amb__conn *c, amb_pid **waiting, size_t *n)
{
    amb_pid *w = waiting != NULL && c->senders_len > 0
                     ? amb__calloc(c->senders_len, sizeof *w)
                     : NULL;
    size_t k = 0;
    for (size_t i = 0; i < c->senders_cap; i++) {
        amb__conn_sender *q = c->senders[i];
        if (q == NULL)
            continue;
        if (q->waiting && w != NULL)
            w[k++] = q->pid;
        chunks_free(q->head);
        amb__free(q);
    }
    amb__free(c->senders);
    c->senders = NULL;
    c->senders_cap = c->senders_len = 0;
    c->ring = c->ring_tail = NULL;
    c->out_bytes = 0;
    if (waiting != NULL) {
        *waiting = w;
        *n = k;
    }
}

/* Appends the frames in l (consumed) to pid's queue on c. True when the
 * writer must be woken; *over: the sender is over the budget now. When
 * out of memory the frames are dropped (as a send to an unreachable node
 * is) and false is returned. Under the lock. */
static bool append(amb__conn *c, amb_pid pid, chunk_list *l, bool *over)
{
    amb__conn_sender *q = sender_get(c, pid);
    if (q == NULL) {
        chunks_free(l->head);
        return false;
    }
    amb__conn_chunk *ch = l->head, *t = q->tail;
    if (ch == l->tail && ch->len <= FRAME_SMALL) {
        if (t != NULL && t->cap - t->len >= ch->len) {
            memcpy(t->data + t->len, ch->data, ch->len);
            t->len += ch->len;
            amb__free(ch);
            l->head = l->tail = NULL;
        } else {
            /* A fresh shared chunk takes this frame and those after it: a
             * small one when the queue was empty (a call's few frames), a
             * large one behind others (a burst). */
            size_t cap = q->head == NULL ? CHUNK_FIRST : CHUNK_SHARED;
            amb__conn_chunk *n = amb__malloc(sizeof *n + cap);
            if (n != NULL) {
                n->next = NULL;
                n->cap = cap;
                n->len = ch->len;
                memcpy(n->data, ch->data, ch->len);
                amb__free(ch);
                l->head = l->tail = n;
            }
        }
    }
    if (l->head != NULL) {
        if (q->tail != NULL)
            q->tail->next = l->head;
        else
            q->head = l->head;
        q->tail = l->tail;
    }
    q->bytes += l->bytes;
    c->out_bytes += l->bytes;
    if (!q->in_ring && q->head != NULL) {
        q->in_ring = true;
        q->ring = NULL;
        if (c->ring_tail != NULL)
            c->ring_tail->ring = q;
        else
            c->ring = q;
        c->ring_tail = q;
    }
    *over = q->bytes > c->d->send_budget;
    bool wake = c->writer_idle;
    c->writer_idle = false;
    return wake;
}

/* The writer takes the first chunk of the next sender in the ring (NULL:
 * nothing queued); that sender goes to the ring's end if it has more.
 * *resume gets the sender's pid when it waited and is below the budget now
 * (AMB_NONE otherwise). Under the lock. */
static amb__conn_chunk *take(amb__conn *c, amb_pid *resume)
{
    *resume = AMB_NONE;
    amb__conn_sender *q = c->ring;
    if (q == NULL)
        return NULL;
    c->ring = q->ring;
    if (c->ring == NULL)
        c->ring_tail = NULL;
    amb__conn_chunk *ch = q->head;
    q->head = ch->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->bytes -= ch->len;
    c->out_bytes -= ch->len;
    if (q->waiting && q->bytes <= c->d->send_budget) {
        q->waiting = false;
        *resume = q->pid;
    }
    if (q->head != NULL) {
        q->ring = NULL;
        if (c->ring_tail != NULL)
            c->ring_tail->ring = q;
        else
            c->ring = q;
        c->ring_tail = q;
    } else {
        q->in_ring = false;
        if (!q->waiting)
            sender_del(c, q);
    }
    return ch;
}

/* Wakes c's writer (after unlock). */
static void wake(amb__dist *d, amb__sched *s, amb_pid writer)
{
    amb__remote_post(d->rt, s, writer, amb_atom("wake"));
}

/* The message that ends a sender's wait on connection id. */
static amb_term resume_msg(amb_heap *h, uint32_t id)
{
    return AMB_TUPLE(h, amb_atom("$dist_resume"), AMB_SMALL(id));
}

/* Tells a sender waiting in amb__conn_send_wait that it may go on. */
static void resume(amb__dist *d, amb__sched *s, amb_pid pid, uint32_t id)
{
    uint64_t words[4];
    amb_heap h;
    amb__heap_init_fixed(&h, words, 4);
    amb__remote_post(d->rt, s, pid, resume_msg(&h, id));
}

/* The queue a signal goes to: its sending process's (the control
 * message's `from`), or net_kernel's for a signal of no process. */
static amb_pid sender_of(const amb__dist *d, const amb__dist_ctl *c)
{
    return amb_type_of(c->from) == AMB_T_PID ? c->from : d->net_kernel;
}

/* Queues c from `sender` on conn (PENDING: a copy in the pending list;
 * UP: encoded into the sender's queue). Called with the lock held;
 * returns with it released. *over (may be NULL): the sender is over the
 * budget now. */
static int queue_locked(amb__dist *d, amb__sched *s, amb__conn *conn,
                        const amb__dist_ctl *c, amb_pid sender, bool *over)
{
    if (conn->state == AMB__CONN_PENDING ||
        (conn->state == AMB__CONN_UP && !conn->flushed)) {
        amb__conn_item *it = item_new(c);
        if (it == NULL) {
            pthread_mutex_unlock(&d->lock);
            return AMB_ENOMEM;
        }
        it->sender = sender;
        if (conn->pending_tail != NULL)
            conn->pending_tail->next = it;
        else
            conn->pending = it;
        conn->pending_tail = it;
        pthread_mutex_unlock(&d->lock);
        return 0;
    }
    if (conn->state != AMB__CONN_UP) {
        pthread_mutex_unlock(&d->lock);
        return 0;
    }
    uint64_t flags = conn->flags;
    conn->refs++;
    pthread_mutex_unlock(&d->lock);
    /* Encoded without the lock: senders to one node encode in parallel; a
     * sender's next signal waits for this one, so its order holds. The
     * sequence id of its fragments is the sender's pid (one sequence per
     * sender at a time: its queue is FIFO), as ERTS uses. */
    chunk_list l;
    int rc = frames_of(c, flags, (uint64_t)sender, &l);
    pthread_mutex_lock(&d->lock);
    bool w = false, ov = false;
    amb_pid writer = conn->writer;
    if (rc == 0 && conn->state == AMB__CONN_UP)
        w = append(conn, sender, &l, &ov);
    else
        chunks_free(l.head);
    amb__conn_unref(conn);
    pthread_mutex_unlock(&d->lock);
    if (w)
        wake(d, s, writer);
    if (over != NULL)
        *over = ov;
    return 0;
}

/* amb__conn_queue's body; *over as queue_locked's. */
static int queue(amb__dist *d, amb__sched *s, amb_term node, const amb__dist_ctl *c,
                 amb_pid interest, uint32_t *conn_id, bool *over)
{
    pthread_mutex_lock(&d->lock);
    amb__conn *conn = amb__conn_get(d, node, true);
    if (conn == NULL) {
        bool running = d->state == AMB__DIST_RUNNING;
        pthread_mutex_unlock(&d->lock);
        /* No connection can be made: a message is dropped; a relation has
         * no connection to end with (the caller reports it). */
        return interest != AMB_NONE ? (running ? AMB_ENOMEM : AMB_ENOTSUP) : 0;
    }
    if (interest != AMB_NONE) {
        if (amb__pidset_add(&conn->interested, interest) != 0) {
            pthread_mutex_unlock(&d->lock);
            return AMB_ENOMEM;
        }
        *conn_id = conn->id;
    }
    return queue_locked(d, s, conn, c, sender_of(d, c), over);
}

int amb__conn_queue(amb__dist *d, amb__sched *s, amb_term node, const amb__dist_ctl *c,
                    amb_pid interest, uint32_t *conn_id)
{
    return queue(d, s, node, c, interest, conn_id, NULL);
}

int amb__conn_send(amb__dist *d, amb__sched *s, amb_term node, const amb__dist_ctl *c)
{
    bool over = false;
    int rc = queue(d, s, node, c, AMB_NONE, NULL, &over);
    return rc == 0 && over ? AMB__REMOTE_OVER_BUDGET : rc;
}

void amb__conn_queue_as(amb__dist *d, amb__sched *s, amb_term node, uint32_t conn_id,
                        const amb__dist_ctl *c, amb_pid sender)
{
    pthread_mutex_lock(&d->lock);
    amb__conn *conn = amb__conn_get(d, node, false);
    if (conn == NULL || (conn_id != 0 && conn->id != conn_id)) {
        /* The relation's connection is gone: its far end has been told by
         * its own node (noconnection), so the signal has nobody to reach. */
        pthread_mutex_unlock(&d->lock);
        return;
    }
    queue_locked(d, s, conn, c, sender, NULL);
}

void amb__conn_queue_on(amb__dist *d, amb__sched *s, amb_term node, uint32_t conn_id,
                        const amb__dist_ctl *c)
{
    amb__conn_queue_as(d, s, node, conn_id, c, sender_of(d, c));
}

static bool is_resume(void *ctx, amb_term msg)
{
    return amb_is_record(msg, amb_atom("$dist_resume"), 2) &&
           amb_tuple_elem(msg, 1) == AMB_SMALL(*(uint32_t *)ctx);
}

int amb__conn_send_wait(amb__dist *d, amb_proc *self, amb_term node)
{
    amb_recv_mark mark = amb_receive_mark(self);
    pthread_mutex_lock(&d->lock);
    amb__conn *conn = amb__conn_get(d, node, false);
    amb__conn_sender **e = conn != NULL ? sender_slot(conn, amb_self(self)) : NULL;
    amb__conn_sender *q = e != NULL ? *e : NULL;
    bool wait = q != NULL && q->bytes > d->send_budget;
    uint32_t id = conn != NULL ? conn->id : 0;
    if (wait)
        q->waiting = true;
    pthread_mutex_unlock(&d->lock);
    if (!wait)
        return 0;
    /* The writer (below the budget) or the connection's end (down_as)
     * sends the resume, exactly once per wait. */
    amb_term m;
    amb_receive_if_after(self, mark, is_resume, &id, AMB_INFINITY, &m);
    return 0;
}

int amb__conn_stats_of(amb__dist *d, amb_term node, amb_pid pid, amb__conn_stats *out,
                       size_t *pid_bytes)
{
    pthread_mutex_lock(&d->lock);
    amb__conn *c = amb__conn_get(d, node, false);
    if (c == NULL) {
        pthread_mutex_unlock(&d->lock);
        return AMB_ENOTFOUND;
    }
    *out = (amb__conn_stats){.out_bytes = c->out_bytes,
                             .senders = c->senders_len,
                             .peak_sequences = c->peak_sequences,
                             /* relaxed: a statistic (dist.h). */
                             .cached_messages = atomic_load_explicit(
                                 &c->cached_messages, memory_order_relaxed)};
    for (size_t i = 0; i < c->senders_cap; i++)
        if (c->senders[i] != NULL && c->senders[i]->waiting)
            out->waiting++;
    if (pid_bytes != NULL) {
        amb__conn_sender **e = pid != AMB_NONE ? sender_slot(c, pid) : NULL;
        *pid_bytes = e != NULL && *e != NULL ? (*e)->bytes : 0;
    }
    pthread_mutex_unlock(&d->lock);
    return 0;
}

void amb__conn_forget(amb__dist *d, amb_pid pid)
{
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->conns_cap; i++)
        if (d->conns[i] != NULL)
            amb__pidset_del(&d->conns[i]->interested, pid);
    pthread_mutex_unlock(&d->lock);
}

/* ===========================================================================
 * Down
 * ======================================================================== */

/* Takes c down if `owner` owns it (AMB_NONE: whoever does). */
static void down_as(amb_proc *self, amb__conn *c, amb_term reason, amb_pid owner)
{
    amb__dist *d = c->d;
    pthread_mutex_lock(&d->lock);
    if (c->state == AMB__CONN_DOWN || (owner != AMB_NONE && c->reader != owner)) {
        pthread_mutex_unlock(&d->lock);
        return;
    }
    bool was_up = c->writer != AMB_NONE;
    c->state = AMB__CONN_DOWN;
    c->down_reason = reason;
    table_del(d, c);
    amb__pidset set = c->interested;
    c->interested = (amb__pidset){0};
    amb_pid *mons = c->node_mons;
    size_t nmons = c->n_node_mons;
    c->node_mons = NULL;
    c->n_node_mons = c->cap_node_mons = 0;
    amb__conn_item *items = c->pending;
    c->pending = c->pending_tail = NULL;
    amb_pid *waiting;
    size_t nwaiting;
    senders_free(c, &waiting, &nwaiting);
    bool hidden = c->hidden;
    amb_term node = c->node;
    uint32_t id = c->id;
    pthread_mutex_unlock(&d->lock);

    /* Outside the lock: these reach the process layer, each in the cell
     * made when its process joined the set (no memory needed now). */
    for (size_t i = 0; i < set.cap; i++)
        if (set.v[i] != 0) {
            amb__remote_nodedown_send(amb_proc_rt(self), self->task.sched, set.v[i], node,
                                      id, set.cells[i]);
            set.cells[i] = NULL;
        }
    amb__spawn_conn_down(self, d, id);
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    for (size_t i = 0; i < nmons; i++)
        amb_send(self, mons[i], AMB_TUPLE(h, AMB_ATOM_NODEDOWN, node));
    amb_heap_rewind(h, m);
    if (was_up)
        amb__dist_notify(self, d, node, false, hidden, reason);
    amb__pidset_free(&set);
    amb__free(mons);
    items_free(items);
    /* Senders waiting over the budget go on: their bytes went with the
     * connection, as a message to an unreachable node goes. */
    for (size_t i = 0; i < nwaiting; i++)
        resume(d, amb__remote_sched(self), waiting[i], id);
    amb__free(waiting);
    pthread_mutex_lock(&d->lock);
    amb__conn_unref(c); /* the table's reference */
    pthread_mutex_unlock(&d->lock);
}

void amb__conn_down(amb_proc *self, amb__conn *c, amb_term reason)
{
    down_as(self, c, reason, AMB_NONE);
}

static bool is_flushed(void *ctx, amb_term msg)
{
    return msg == amb_atom("$dist_flushed") ||
           (amb_is_record(msg, AMB_ATOM_DOWN, 5) &&
            amb_equal(amb_tuple_elem(msg, 1), *(amb_term *)ctx));
}

void amb__conn_flush(amb_proc *self, amb__conn *c, int64_t timeout_ms)
{
    pthread_mutex_lock(&c->d->lock);
    amb_pid w = c->state == AMB__CONN_UP ? c->writer : AMB_NONE;
    pthread_mutex_unlock(&c->d->lock);
    if (w == AMB_NONE)
        return;
    amb_recv_mark mark = amb_receive_mark(self);
    amb_term ref;
    if (amb_monitor(self, w, &ref) != 0)
        return;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    amb_send(self, w, AMB_TUPLE(h, amb_atom("$dist_flush"), amb_self(self)));
    amb_heap_rewind(h, m);
    amb_receive_if_after(self, mark, is_flushed, &ref, timeout_ms, NULL);
    amb_demonitor(self, ref, AMB_DEMONITOR_FLUSH);
}

void amb__conn_reap(amb_proc *self, amb__dist *d, amb_pid reader, amb_term reason)
{
    amb__conn *c = NULL;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->conns_cap && c == NULL; i++)
        if (d->conns[i] != NULL && d->conns[i]->reader == reader)
            c = d->conns[i];
    if (c != NULL)
        c->refs++;
    pthread_mutex_unlock(&d->lock);
    if (c == NULL)
        return;
    down_as(self, c, reason, reader);
    pthread_mutex_lock(&d->lock);
    amb__conn_unref(c);
    pthread_mutex_unlock(&d->lock);
}

/* ===========================================================================
 * The writer: a handler that empties the out queue onto the socket
 * ======================================================================== */

typedef struct writer {
    amb__conn *c; /* a reference, taken in init */
} writer;

static void writer_release(void *ctx)
{
    amb__conn *c = ctx;
    amb__dist *d = c->d; /* c may be freed by the unref */
    pthread_mutex_lock(&d->lock);
    amb__conn_unref(c);
    pthread_mutex_unlock(&d->lock);
}

/* The writer's reference to its connection was counted by the reader
 * before the spawn; the writer claims it here, unless the reader ended
 * first and took it back (writer_abandoned): so a writer killed before it
 * ever ran leaks nothing, and one that runs holds c until it ends. */
static int writer_init(amb_proc *self, void *state, void *arg)
{
    writer *w = state;
    amb__conn *c = arg;
    pthread_mutex_lock(&c->d->lock);
    bool abandoned = c->writer_abandoned;
    c->writer_claimed = !abandoned;
    pthread_mutex_unlock(&c->d->lock);
    if (abandoned)
        amb_exit_self(self, AMB_ATOM_NORMAL);
    if (amb_on_exit(self, writer_release, c) != 0)
        amb__panic("out of memory starting a distribution writer");
    w->c = c;
    return 0;
}

/* Sends bytes; a failed send ends the writer (its reader sees the socket
 * close and takes the connection down). */
static void send_bytes(amb_proc *self, amb__conn *c, const uint8_t *p, size_t n)
{
    amb__dist *d = c->d;
    int rc = d->transport->send(d, self, c->sock, p, n);
    if (rc != 0)
        amb_exit_self(self, AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_SHUTDOWN,
                                      amb_atom("send_failed")));
    /* relaxed: read by the reader's tick (dist.h: a stale value only
     * delays a tick). */
    atomic_store_explicit(&c->last_send, amb_now_ms(), memory_order_relaxed);
}

/* Sends the signals queued before the connection was up, then makes it
 * UP (dist.h: no later signal passes them). */
static void writer_flush_pending(amb_proc *self, amb__conn *c)
{
    amb__dist *d = c->d;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        amb__conn_item *items = c->pending;
        c->pending = c->pending_tail = NULL;
        if (items == NULL) {
            c->flushed = true;
            pthread_mutex_unlock(&d->lock);
            return;
        }
        uint64_t flags = c->flags;
        pthread_mutex_unlock(&d->lock);
        for (amb__conn_item *it = items; it != NULL; it = it->next) {
            chunk_list l;
            if ((it->ctl.op == AMB__DOP_SPAWN_REQUEST ||
                 it->ctl.op == AMB__DOP_SPAWN_REQUEST_TT) &&
                !(flags & AMB__DFLAG_SPAWN)) {
                /* Queued before the peer's flags were known: not sent. */
                amb__spawn_unsupported(self, d, it->ctl.ref);
                continue;
            }
            if (frames_of(&it->ctl, flags, (uint64_t)it->sender, &l) != 0)
                continue;
            for (amb__conn_chunk *ch = l.head; ch != NULL; ch = ch->next)
                send_bytes(self, c, ch->data, ch->len);
            chunks_free(l.head);
        }
        items_free(items);
    }
}

/* Empties the senders' queues, a chunk of each in turn (so a small
 * message waits behind at most one fragment of every other sender); idle
 * once they are empty. A sender below the budget again is resumed before
 * its chunk is written, so it refills its queue while the socket works. */
static void writer_drain(amb_proc *self, amb__conn *c)
{
    amb__dist *d = c->d;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        amb_pid r;
        amb__conn_chunk *ch = take(c, &r);
        if (ch == NULL)
            c->writer_idle = true;
        uint32_t id = c->id;
        pthread_mutex_unlock(&d->lock);
        if (r != AMB_NONE)
            resume(d, amb__remote_sched(self), r, id);
        if (ch == NULL)
            return;
        send_bytes(self, c, ch->data, ch->len);
        amb__free(ch);
    }
}

static int writer_handle(amb_proc *self, void *state, amb_term msg)
{
    writer *w = state;
    if (msg == amb_atom("go")) {
        writer_flush_pending(self, w->c);
        writer_drain(self, w->c);
    } else if (msg == amb_atom("wake")) {
        writer_drain(self, w->c);
    } else {
        /* {'$dist_flush', Pid}: everything queued before the request is in
         * the out queue: send it, then say so. */
        amb_term from;
        if (amb_match(msg, "{'$dist_flush',~p}", &from) == 0) {
            writer_drain(self, w->c);
            amb_send(self, from, amb_atom("$dist_flushed"));
        }
    }
    return 0;
}

static const amb_handler writer_handler = {
    .state_size = sizeof(writer),
    .init = writer_init,
    .handle = writer_handle,
};

/* ===========================================================================
 * The reader: a handler that owns the socket
 * ======================================================================== */

/* What a reader holds beyond its state (freed by an on_exit handler, so a
 * killed reader leaks nothing). */
typedef struct reader_res {
    amb__dist *d;
    amb__conn *c; /* a reference, once the reader owns an entry */
    amb__handshake *hs;
    amb__frame_reader fr;
    amb__frame_defrag df;
    amb_heap *sock_heap; /* holds sock when it is not an immediate */
    amb_term sock;
    bool spawned_writer; /* this reader counted the writer's reference */
    /* The peer's atom cache (DIST_HDR_ATOM_CACHE): AMB__FRAME_ATOM_CACHE_SIZE
     * atoms, made on the first reference; and the atoms of each unfinished
     * fragmented message whose start listed some, by sequence. */
    amb_term *atom_cache;
    struct seq_atoms *seq_atoms;
    size_t n_seq_atoms, cap_seq_atoms;
} reader_res;

/* The header atoms of one unfinished fragmented message. */
typedef struct seq_atoms {
    uint64_t seq_id;
    size_t n;
    amb_term atoms[AMB__FRAME_ATOM_REFS_MAX];
} seq_atoms;

typedef struct reader {
    reader_res *r;
    bool started, up, initiator;
    bool yielded; /* told `nok`: waits for the winner to take over */
    amb__frame_mode mode;
    amb__etf_atom_budget atoms;
    amb_term node;  /* the peer, once known */
    amb_tref timer; /* the set-up deadline, then the tick */
} reader;

static void reader_release(void *ctx)
{
    reader_res *r = ctx;
    if (r->c != NULL) {
        pthread_mutex_lock(&r->d->lock);
        if (r->spawned_writer && !r->c->writer_claimed && !r->c->writer_abandoned) {
            /* The writer never ran: its reference comes back here. */
            r->c->writer_abandoned = true;
            amb__conn_unref(r->c);
        }
        amb__conn_unref(r->c);
        pthread_mutex_unlock(&r->d->lock);
    }
    amb__free(r->hs);
    amb__free(r->atom_cache);
    amb__free(r->seq_atoms);
    amb__frame_reader_destroy(&r->fr);
    amb__frame_defrag_destroy(&r->df);
    amb_heap_free(r->sock_heap);
    amb__free(r);
}

/* The reader ends: the connection goes down with reason (unless another
 * reader owns it now), then the reader, with {shutdown, Reason} (no crash
 * report; the linked writer goes with it). */
_Noreturn static void reader_end(amb_proc *self, reader *rd, const char *why)
{
    amb_term reason = amb_atom(why);
    reader_res *r = rd->r;
    if (r->c != NULL)
        down_as(self, r->c, reason, amb_self(self));
    if (r->sock != AMB_NONE)
        r->d->transport->close(r->d, self, r->sock);
    amb_exit_self(self, AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_SHUTDOWN, reason));
}

static void arm(amb_proc *self, reader *rd, int64_t ms);

/* Sends the handshake's output. */
static void hs_flush(amb_proc *self, reader *rd)
{
    reader_res *r = rd->r;
    size_t n;
    const uint8_t *p = amb__handshake_output(r->hs, &n);
    if (n == 0)
        return;
    if (r->d->transport->send(r->d, self, r->sock, p, n) != 0)
        reader_end(self, rd, "connection_closed");
    amb__handshake_output_done(r->hs, n);
}

/* The atom of a peer's name (checked by the handshake), made only when it
 * exists already or within the connection's budget. */
static int peer_atom(reader *rd, const char *name, size_t len, amb_term *out)
{
    int rc = amb_atom_existing(name, len, out);
    if (rc != AMB_ENOTFOUND)
        return rc;
    size_t limit = amb_atom_limit();
    if (rd->atoms.left == 0 || amb_atom_count() >= limit - rd->atoms.reserve)
        return AMB_ESYSLIMIT;
    rd->atoms.left--;
    return amb_atom_new(name, len, out);
}

/* Acceptor: the status for a peer that sent its name (OTP's
 * accept_pending), settled with the table under the lock: no entry, a new
 * PENDING one owned by this reader (so a local send to the peer meanwhile
 * waits in it instead of starting a second connection); a PENDING one, the
 * greater name wins: ours, `nok` (our attempt goes on), theirs, this reader
 * takes the entry over and its old owner is stopped; an UP one, `alive`. */
static amb__hs_status accept_status(amb_proc *self, reader *rd, amb_pid *stop)
{
    reader_res *r = rd->r;
    amb__dist *d = r->d;
    const amb__hs_result *res = amb__handshake_result(r->hs);
    amb_term node;
    *stop = AMB_NONE;
    /* The peer's name becomes an atom before it proved the cookie, as in
     * ERTS; within the connection's budget (one per connection). */
    if (peer_atom(rd, res->peer_name, res->peer_name_len, &node) != 0)
        return AMB__HS_STATUS_NOT_ALLOWED;
    amb__hs_status st;
    pthread_mutex_lock(&d->lock);
    amb__conn *c = amb__conn_get(d, node, false);
    if (d->state != AMB__DIST_RUNNING || node == d->name) {
        st = AMB__HS_STATUS_NOT_ALLOWED;
    } else if (c == NULL) {
        c = conn_new(d, node);
        st = c != NULL ? AMB__HS_STATUS_OK : AMB__HS_STATUS_NOT_ALLOWED;
    } else if (c->state == AMB__CONN_PENDING) {
        if (amb_compare(d->name, node) > 0) {
            st = AMB__HS_STATUS_NOK;
            c = NULL;
        } else {
            /* Simultaneous connect, and the peer's attempt wins: ours
             * becomes this acceptor (with the signals waiting in it); its
             * old owner is stopped. */
            *stop = c->reader;
            st = AMB__HS_STATUS_OK_SIMULTANEOUS;
        }
    } else {
        st = AMB__HS_STATUS_ALIVE; /* go_up replaces it if the peer says so */
        c = NULL;
    }
    if (c != NULL) {
        c->reader = amb_self(self);
        c->initiated = false;
        c->refs++;
        r->c = c;
    }
    rd->node = node;
    pthread_mutex_unlock(&d->lock);
    return st;
}

/* The handshake is done: the entry is ours (accept_status or start gave
 * it; after `alive`, a new one once the stale connection is down), the
 * writer starts, the stream continues with frames. */
static void go_up(amb_proc *self, reader *rd)
{
    reader_res *r = rd->r;
    amb__dist *d = r->d;
    const amb__hs_result *res = amb__handshake_result(r->hs);
    amb_term node = rd->node;
    amb_pid stop = AMB_NONE;
    amb__conn *stale = NULL;
    if (r->c == NULL) {
        /* The peer answered `alive` with true: our connection to it is
         * stale (it restarted); that one goes down first (OTP's
         * up_pending), then this one takes its place. */
        pthread_mutex_lock(&d->lock);
        stale = amb__conn_get(d, node, false);
        if (stale != NULL) {
            stale->refs++;
            stop = stale->reader;
        }
        pthread_mutex_unlock(&d->lock);
        if (stale != NULL) {
            down_as(self, stale, amb_atom("connection_closed"), AMB_NONE);
            pthread_mutex_lock(&d->lock);
            amb__conn_unref(stale);
            pthread_mutex_unlock(&d->lock);
            if (stop != AMB_NONE)
                amb_exit(self, stop, AMB_ATOM_KILL);
        }
        pthread_mutex_lock(&d->lock);
        amb__conn *c = amb__conn_get(d, node, false) == NULL ? conn_new(d, node) : NULL;
        if (c != NULL) {
            c->reader = amb_self(self);
            c->refs++;
            r->c = c;
        }
        pthread_mutex_unlock(&d->lock);
        if (c == NULL)
            reader_end(self, rd, "connection_setup_failed");
    }
    /* The final 'a' goes now, after any stale connection was taken down
     * (handshake.h: replaced_alive). */
    hs_flush(self, rd);
    amb__conn *c = r->c;
    bool hidden = !(res->peer_flags & AMB__DFLAG_PUBLISHED) || !d->visible;
    pthread_mutex_lock(&d->lock);
    bool ours = c->reader == amb_self(self) && c->state == AMB__CONN_PENDING;
    /* UP from now on (another attempt from the peer hears `alive`); signals
     * keep going to the pending list until the writer has sent it
     * (writer_flush_pending), so none passes an earlier one. */
    if (ours)
        c->state = AMB__CONN_UP;
    c->flags = res->flags;
    c->peer_creation = res->peer_creation;
    c->hidden = hidden;
    c->initiated = rd->initiator;
    amb__heap_init_fixed(&c->sock_heap, c->sock_words,
                         sizeof c->sock_words / sizeof c->sock_words[0]);
    int rc = ours ? amb_term_copy(&c->sock_heap, r->sock, &c->sock) : AMB_ESTATE;
    if (rc == 0)
        c->refs++; /* the writer's (writer_init) */
    pthread_mutex_unlock(&d->lock);
    if (rc != 0)
        reader_end(self, rd, "connection_setup_failed");
    amb_pid w;
    amb_spawn_opts so = {.handler = &writer_handler, .link = true, .name = AMB_NONE};
    if (amb_spawn_opt(self, NULL, c, &so, &w, NULL) != 0) {
        pthread_mutex_lock(&d->lock);
        amb__conn_unref(c);
        pthread_mutex_unlock(&d->lock);
        reader_end(self, rd, "system_limit");
    }
    pthread_mutex_lock(&d->lock);
    c->writer = w;
    r->spawned_writer = true;
    pthread_mutex_unlock(&d->lock);
    rd->up = true;
    rd->mode = amb__frame_mode_of(res->flags);
    amb__free(r->hs);
    r->hs = NULL;
    /* The set-up deadline gives way to the tick. */
    amb_cancel_timer(self, rd->timer, NULL);
    arm(self, rd, d->ticktime_ms / 4);
    amb_send(self, w, amb_atom("go"));
    amb__dist_notify(self, d, node, true, hidden, AMB_NONE);
}

/* ---- control messages to local signals -------------------------------- */

void amb__conn_interested(amb__conn *c, amb_pid pid)
{
    pthread_mutex_lock(&c->d->lock);
    int rc = amb__pidset_add(&c->interested, pid);
    pthread_mutex_unlock(&c->d->lock);
    if (rc != 0)
        amb__panic("out of memory recording a relation across nodes");
}

/* Registers `pid` as having a relation over the reader's connection. */
static void interested(reader *rd, amb_pid pid)
{
    amb__conn_interested(rd->r->c, pid);
}

/* True when pid is a pid of this runtime. */
static bool own(amb_proc *self, amb_term pid)
{
    amb_term node, mine;
    uint32_t cr, mycr;
    return amb_type_of(pid) == AMB_T_PID &&
           amb_pid_get(pid, &node, NULL, NULL, &cr) == 0 &&
           amb_pid_get(amb_self(self), &mine, NULL, NULL, &mycr) == 0 && node == mine &&
           cr == mycr && amb_is_local_pid(pid);
}

/* The pid a MONITOR_P / DEMONITOR_P names: a pid, or the holder of a name
 * (AMB_NONE when nobody has it). */
static amb_pid target_of(amb_proc *self, amb_term to)
{
    amb_pid pid;
    if (!amb_is_atom(to))
        return own(self, to) ? to : AMB_NONE;
    return amb_whereis(self, to, &pid) == 0 ? pid : AMB_NONE;
}

/* True for a signal whose sender is a process of the peer (or, where the
 * op allows it, a name there): a relation a peer made in a third node's
 * name would be registered with the wrong connection. */
static bool from_peer(const reader *rd, const amb__dist_ctl *c)
{
    switch (c->op) {
    case AMB__DOP_LINK:
    case AMB__DOP_UNLINK_ID:
    case AMB__DOP_UNLINK_ID_ACK:
    case AMB__DOP_EXIT:
    case AMB__DOP_EXIT_TT:
    case AMB__DOP_PAYLOAD_EXIT:
    case AMB__DOP_PAYLOAD_EXIT_TT:
    case AMB__DOP_EXIT2:
    case AMB__DOP_EXIT2_TT:
    case AMB__DOP_PAYLOAD_EXIT2:
    case AMB__DOP_PAYLOAD_EXIT2_TT:
    case AMB__DOP_MONITOR_P:
    case AMB__DOP_DEMONITOR_P:
    case AMB__DOP_SPAWN_REQUEST:
    case AMB__DOP_SPAWN_REQUEST_TT:
        return amb__dist_node_of(c->from) == rd->node;
    case AMB__DOP_MONITOR_P_EXIT:
    case AMB__DOP_PAYLOAD_MONITOR_P_EXIT:
        return amb_is_atom(c->from) || amb__dist_node_of(c->from) == rd->node;
    default:
        return true;
    }
}

static void dispatch(amb_proc *self, reader *rd, const amb__dist_ctl *c)
{
    uint32_t id = rd->r->c->id;
    if (!from_peer(rd, c))
        return; /* dropped, as a send to nobody */
    switch (c->op) {
    case AMB__DOP_SEND:
    case AMB__DOP_SEND_TT:
    case AMB__DOP_SEND_SENDER:
    case AMB__DOP_SEND_SENDER_TT:
        if (own(self, c->to))
            amb_send(self, c->to, c->message);
        break;
    case AMB__DOP_REG_SEND:
    case AMB__DOP_REG_SEND_TT: {
        /* {Name, node()} ! Msg: dropped when nobody has the name. */
        amb_pid pid;
        if (amb_whereis(self, c->to, &pid) == 0)
            amb_send(self, pid, c->message);
        break;
    }
    case AMB__DOP_ALIAS_SEND:
    case AMB__DOP_ALIAS_SEND_TT: {
        /* Only an alias of this node: a reference of another would make us
         * forward the peer's message to a third node (ERTS drops it too). */
        amb_term node, mine;
        uint32_t cr, mycr, w[AMB_REF_MAX_WORDS];
        if (amb_ref_get(c->to, w, AMB_REF_MAX_WORDS, &node, &cr, NULL) == 0 &&
            amb_pid_get(amb_self(self), &mine, NULL, NULL, &mycr) == 0 && node == mine &&
            cr == mycr)
            amb_send(self, c->to, c->message);
        break;
    }
    case AMB__DOP_LINK:
        if (own(self, c->to)) {
            interested(rd, c->to);
            amb__remote_link(self, c->from, c->to, id);
        }
        break;
    case AMB__DOP_UNLINK_ID:
        if (own(self, c->to))
            amb__remote_unlink(self, c->from, c->to, c->id, id);
        break;
    case AMB__DOP_UNLINK_ID_ACK:
        if (own(self, c->to))
            amb__remote_unlink_ack(self, c->from, c->to, c->id);
        break;
    case AMB__DOP_EXIT:
    case AMB__DOP_EXIT_TT:
    case AMB__DOP_PAYLOAD_EXIT:
    case AMB__DOP_PAYLOAD_EXIT_TT:
        if (own(self, c->to))
            amb__remote_exit(self, c->from, c->to, c->reason, true);
        break;
    case AMB__DOP_EXIT2:
    case AMB__DOP_EXIT2_TT:
    case AMB__DOP_PAYLOAD_EXIT2:
    case AMB__DOP_PAYLOAD_EXIT2_TT:
        if (own(self, c->to))
            amb__remote_exit(self, c->from, c->to, c->reason, false);
        break;
    case AMB__DOP_MONITOR_P: {
        amb_pid to = target_of(self, c->to);
        if (to != AMB_NONE)
            interested(rd, to);
        /* A name nobody has, or a dead pid: DOWN noproc at once, naming
         * what was asked for. */
        amb__remote_monitor(self, c->from, to, amb_is_atom(c->to) ? c->to : AMB_NONE,
                            c->ref, id);
        if (to == AMB_NONE && !amb_is_atom(c->to)) {
            amb__dist_ctl e = {.op = AMB__DOP_MONITOR_P_EXIT,
                               .from = c->to,
                               .to = c->from,
                               .ref = c->ref,
                               .reason = AMB_ATOM_NOPROC};
            amb__conn_queue_on(rd->r->d, NULL, rd->node, id, &e);
        }
        break;
    }
    case AMB__DOP_DEMONITOR_P: {
        amb_pid to = target_of(self, c->to);
        if (to != AMB_NONE)
            amb__remote_demonitor(self, c->from, to, c->ref);
        break;
    }
    case AMB__DOP_MONITOR_P_EXIT:
    case AMB__DOP_PAYLOAD_MONITOR_P_EXIT: {
        if (!own(self, c->to) || amb__spawn_down_in(self, rd->r->c, c))
            break;
        /* A monitor by name gets {Name, Node} as its object (OTP). */
        amb_term object = amb_is_atom(c->from)
                              ? AMB_TUPLE(amb_proc_heap(self), c->from, rd->node)
                              : c->from;
        amb__remote_down(self, c->to, c->ref, object, c->reason);
        break;
    }
    case AMB__DOP_SPAWN_REQUEST:
    case AMB__DOP_SPAWN_REQUEST_TT:
        amb__spawn_request_in(self, rd->r->c, c);
        break;
    case AMB__DOP_SPAWN_REPLY:
    case AMB__DOP_SPAWN_REPLY_TT:
        if (own(self, c->to))
            amb__spawn_reply_in(self, rd->r->c, c);
        break;
    default:
        /* GROUP_LEADER, NODE_LINK, the old UNLINK: not offered
         * (dist_flags.h), ignored as ERTS ignores what it does not use. */
        break;
    }
}

/* Decodes and dispatches one whole message body; atoms[0..n) are its
 * header's atom-cache references. */
static void handle_body(amb_proc *self, reader *rd, const uint8_t *body, size_t len,
                        const amb_term *atoms, size_t n)
{
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    amb__control_limits lim = {.atoms = &rd->atoms, .atom_refs = atoms, .n_atom_refs = n};
    amb__dist_ctl c;
    int rc = amb__control_decode(h, body, len, rd->mode == AMB__FRAME_MODE_PASS_THROUGH,
                                 &lim, &c);
    if (rc != 0) {
        amb_log(self, AMB_LOG_ERROR,
                "distribution: bad message from %s: %s; disconnecting",
                amb_atom_name(rd->node, NULL), amb_err_name(rc));
        reader_end(self, rd, rc == AMB_ESYSLIMIT ? "system_limit" : "protocol_error");
    }
    dispatch(self, rd, &c);
    amb_heap_rewind(h, m);
}

/* Queues a tick (an empty frame) for the writer. */
static void send_tick(amb_proc *self, reader *rd)
{
    amb__conn *c = rd->r->c;
    amb__dist *d = rd->r->d;
    amb__conn_chunk *ch = amb__malloc(sizeof *ch + 4);
    if (ch == NULL)
        return; /* the next interval tries again */
    ch->next = NULL;
    ch->cap = 4;
    amb__frame_encode_tick(ch->data, 4, &ch->len);
    chunk_list l = {.head = ch, .tail = ch, .bytes = ch->len};
    pthread_mutex_lock(&d->lock);
    bool w = false, over;
    if (c->state == AMB__CONN_UP)
        w = append(c, d->net_kernel, &l, &over);
    else
        amb__free(ch);
    amb_pid wpid = c->writer;
    pthread_mutex_unlock(&d->lock);
    if (w)
        wake(d, amb__remote_sched(self), wpid);
}

/* amb__frame_atom_make for the reader: peer_atom's rules. */
static int make_atom(void *ctx, const uint8_t *text, size_t len, uint64_t *atom)
{
    return peer_atom(ctx, (const char *)text, len, atom);
}

/* The atoms of frame f's atom-cache section into out[0..*n) through the
 * peer's cache (made on first use). A bad section, a reference to an empty
 * entry or an atom over the budget ends the reader. */
static void header_atoms(amb_proc *self, reader *rd, const amb__frame *f, amb_term *out,
                         size_t *n)
{
    reader_res *r = rd->r;
    *n = 0;
    if (f->cache_len <= 1)
        return;
    if (r->atom_cache == NULL && (r->atom_cache = amb__calloc(AMB__FRAME_ATOM_CACHE_SIZE,
                                                              sizeof(amb_term))) == NULL)
        reader_end(self, rd, "system_limit");
    int rc = amb__frame_atom_resolve(r->atom_cache, f->cache, f->cache_len, make_atom, rd,
                                     out, n);
    if (rc != 0) {
        amb_log(self, AMB_LOG_ERROR,
                "distribution: bad atom-cache header from %s: %s; disconnecting",
                amb_atom_name(rd->node, NULL), amb_err_name(rc));
        reader_end(self, rd, rc == AMB_ESYSLIMIT ? "system_limit" : "protocol_error");
    }
    /* relaxed: a statistic (dist.h). */
    atomic_fetch_add_explicit(&r->c->cached_messages, 1, memory_order_relaxed);
}

/* Keeps the header atoms of a fragmented message started by f until its
 * last fragment. */
static void seq_atoms_keep(amb_proc *self, reader *rd, uint64_t seq_id,
                           const amb_term *atoms, size_t n)
{
    reader_res *r = rd->r;
    if (r->n_seq_atoms == r->cap_seq_atoms) {
        size_t cap = r->cap_seq_atoms ? r->cap_seq_atoms * 2 : 4;
        seq_atoms *v = amb__realloc(r->seq_atoms, cap * sizeof *v);
        if (v == NULL)
            reader_end(self, rd, "system_limit");
        r->seq_atoms = v;
        r->cap_seq_atoms = cap;
    }
    seq_atoms *e = &r->seq_atoms[r->n_seq_atoms++];
    e->seq_id = seq_id;
    e->n = n;
    memcpy(e->atoms, atoms, n * sizeof *atoms);
}

/* Takes the header atoms kept for sequence seq_id into out (none: *n 0). */
static void seq_atoms_take(reader *rd, uint64_t seq_id, amb_term *out, size_t *n)
{
    reader_res *r = rd->r;
    *n = 0;
    for (size_t i = 0; i < r->n_seq_atoms; i++) {
        if (r->seq_atoms[i].seq_id != seq_id)
            continue;
        *n = r->seq_atoms[i].n;
        memcpy(out, r->seq_atoms[i].atoms, *n * sizeof *out);
        r->seq_atoms[i] = r->seq_atoms[--r->n_seq_atoms];
        return;
    }
}

/* Handles every whole frame buffered. */
static void frames(amb_proc *self, reader *rd)
{
    reader_res *r = rd->r;
    for (;;) {
        const uint8_t *data;
        size_t len;
        int rc = amb__frame_reader_next(&r->fr, &data, &len);
        if (rc == AMB_EAGAIN)
            return;
        if (rc != 0)
            reader_end(self, rd, "system_limit");
        if (len == 0) {
            /* A tick, answered with one (as libei does) so that a peer
             * whose tick time is shorter than ours hears from us in time;
             * but only after a quiet half second, so that two nodes that
             * both answer do not bounce ticks for ever. */
            int64_t quiet =
                rd->r->d->ticktime_ms / 4 < 500 ? rd->r->d->ticktime_ms / 4 : 500;
            /* relaxed: see writer's send_bytes. */
            if (amb_now_ms() -
                    atomic_load_explicit(&rd->r->c->last_send, memory_order_relaxed) >=
                quiet)
                send_tick(self, rd);
            continue;
        }
        amb__frame f;
        if (amb__frame_parse(rd->mode, data, len, &f) != 0)
            reader_end(self, rd, "protocol_error");
        amb_term atoms[AMB__FRAME_ATOM_REFS_MAX];
        size_t natoms;
        header_atoms(self, rd, &f, atoms, &natoms);
        if (f.kind == AMB__FRAME_MESSAGE) {
            handle_body(self, rd, f.body, f.body_len, atoms, natoms);
            continue;
        }
        uint8_t *msg;
        size_t msg_len;
        rc = amb__frame_defrag_add(&r->df, &f, &msg, &msg_len);
        if (rc != 0)
            reader_end(self, rd, rc == AMB_EDECODE ? "protocol_error" : "system_limit");
        size_t n = amb__frame_defrag_count(&r->df) + (msg != NULL);
        if (n > r->c->peak_sequences) {
            /* Only this reader writes it: its own read needs no lock. */
            pthread_mutex_lock(&r->d->lock);
            r->c->peak_sequences = n;
            pthread_mutex_unlock(&r->d->lock);
        }
        if (msg != NULL) {
            /* A one-fragment sequence completes at its start. */
            if (!f.first)
                seq_atoms_take(rd, f.seq_id, atoms, &natoms);
            handle_body(self, rd, msg, msg_len, atoms, natoms);
            amb__free(msg);
        } else if (f.first && natoms > 0) {
            seq_atoms_keep(self, rd, f.seq_id, atoms, natoms);
        }
    }
}

/* Bytes from the peer. */
static void input(amb_proc *self, reader *rd, const uint8_t *p, size_t n)
{
    reader_res *r = rd->r;
    if (r->c != NULL)
        r->c->last_recv = amb_now_ms();
    while (!rd->up && n > 0) {
        size_t used;
        if (amb__handshake_feed(r->hs, p, n, &used) != 0)
            reader_end(self, rd, "connection_setup_failed");
        p += used;
        n -= used;
        for (;;) {
            amb__hs_state st = amb__handshake_state(r->hs);
            if (st == AMB__HS_NEED_STATUS) {
                amb_pid stop;
                amb__hs_status s = accept_status(self, rd, &stop);
                amb__handshake_set_status(r->hs, s, NULL, 0, 0);
                hs_flush(self, rd);
                if (stop != AMB_NONE)
                    amb_exit(self, stop, AMB_ATOM_KILL);
                continue;
            }
            if (st == AMB__HS_NEED_ALIVE) {
                /* Our own attempt is the only connection we have to it. */
                amb__handshake_answer_alive(r->hs, true);
                hs_flush(self, rd);
                continue;
            }
            break;
        }
        amb__hs_state st = amb__handshake_state(r->hs);
        if (st == AMB__HS_FAILED && rd->initiator &&
            amb__handshake_result(r->hs)->status == AMB__HS_STATUS_NOK) {
            /* Simultaneous connect, and the peer's attempt wins: it is
             * taking our entry over on our side (accept_status) and stops
             * us then, signals and all kept. Until then we wait, without
             * the socket (OTP's dist_util waits to be killed); the set-up
             * deadline ends a wait nobody ends. */
            r->d->transport->close(r->d, self, r->sock);
            r->sock = AMB_NONE;
            rd->yielded = true;
            return;
        }
        if (st == AMB__HS_FAILED) {
            const amb__hs_result *res = amb__handshake_result(r->hs);
            hs_flush(self, rd);
            if (res->failure == AMB__HS_FAIL_COOKIE)
                amb_log(self, AMB_LOG_ERROR,
                        "distribution: connection %s node %s refused: invalid challenge "
                        "reply (the cookies differ)",
                        rd->initiator ? "to" : "from", res->peer_name);
            else if (res->failure != AMB__HS_FAIL_REFUSED)
                amb_log(self, AMB_LOG_WARNING,
                        "distribution: handshake %s node %s failed: %s",
                        rd->initiator ? "to" : "from", res->peer_name,
                        amb__handshake_failure_name(res->failure));
            reader_end(self, rd, "connection_setup_failed");
        }
        if (st == AMB__HS_UP) {
            go_up(self, rd);
            break;
        }
        hs_flush(self, rd);
    }
    if (rd->up && n > 0) {
        if (amb__frame_reader_feed(&r->fr, p, n) != 0)
            reader_end(self, rd, "system_limit");
        frames(self, rd);
    }
}

/* The handshake's configuration for this node. */
static amb__hs_config hs_config(amb__dist *d, const char *peer, size_t peer_len)
{
    return (amb__hs_config){
        .name = d->name_text,
        .name_len = strlen(d->name_text),
        .cookie = d->cookie,
        .cookie_len = d->cookie_len,
        .flags = d->flags,
        .creation = d->creation,
        .peer_name = peer,
        .peer_name_len = peer_len,
        .len_size = d->transport->hs_len_size,
    };
}

/* Arms the reader's timer: the set-up deadline before UP, then a tick every
 * quarter of the tick time. */
static void arm(amb_proc *self, reader *rd, int64_t ms)
{
    if (amb_send_after(self, amb_self(self), amb_atom("$dist_timer"), ms, &rd->timer) !=
        0)
        reader_end(self, rd, "system_limit");
}

/* The first message: {start, DistPtr, Node, Sock}: an initiator (Node an
 * atom, Sock none) connects; an acceptor (Node none) takes Sock. */
static void start(amb_proc *self, reader *rd, amb_term msg)
{
    uint64_t dptr;
    amb_term node, sock;
    if (amb_match(msg, "{'$dist_start',~u,~w,~w}", &dptr, &node, &sock) != 0)
        amb_exit_self(self, AMB_ATOM_NORMAL);
    reader_res *r = amb__calloc(1, sizeof *r);
    if (r == NULL || amb_on_exit(self, reader_release, r) != 0) {
        amb__free(r);
        amb_exit_self(self, AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_SHUTDOWN,
                                      amb_atom("system_limit")));
    }
    rd->r = r;
    r->d = (amb__dist *)(uintptr_t)dptr;
    r->sock = AMB_NONE;
    amb__frame_reader_init(&r->fr, 0);
    amb__frame_defrag_init(&r->df, NULL);
    rd->atoms = amb__control_atom_budget();
    rd->started = true;
    amb__dist *d = r->d;
    amb_link(self, d->net_kernel);
    r->hs = amb__malloc(sizeof *r->hs);
    if (r->hs == NULL)
        reader_end(self, rd, "system_limit");
    rd->initiator = amb_is_atom(node) && node != AMB_ATOM_UNDEFINED;
    if (rd->initiator) {
        rd->node = node;
        pthread_mutex_lock(&d->lock);
        amb__conn *c = amb__conn_get(d, node, false);
        bool mine = c != NULL && c->state == AMB__CONN_PENDING && c->reader == AMB_NONE;
        if (mine) {
            c->reader = amb_self(self);
            c->initiated = true;
            c->refs++;
            r->c = c;
        }
        pthread_mutex_unlock(&d->lock);
        if (!mine)
            amb_exit_self(self, AMB_ATOM_NORMAL); /* set up by someone else */
        arm(self, rd, d->setuptime_ms);
        amb_term s;
        if (d->transport->connect(d, self, node, d->setuptime_ms, &s) != 0)
            reader_end(self, rd, "connection_setup_failed");
        if (amb_heap_new(&r->sock_heap) != 0 ||
            amb_term_copy(r->sock_heap, s, &r->sock) != 0)
            reader_end(self, rd, "system_limit");
        size_t nl;
        const char *nt = amb_atom_name(node, &nl);
        amb__hs_config cfg = hs_config(d, nt, nl);
        if (amb__handshake_init(r->hs, AMB__HS_INITIATOR, &cfg) != 0)
            reader_end(self, rd, "connection_setup_failed");
        hs_flush(self, rd);
    } else {
        if (amb_heap_new(&r->sock_heap) != 0 ||
            amb_term_copy(r->sock_heap, sock, &r->sock) != 0)
            reader_end(self, rd, "system_limit");
        arm(self, rd, d->setuptime_ms);
        if (d->transport->adopt(d, self, r->sock) != 0)
            reader_end(self, rd, "connection_setup_failed");
        amb__hs_config cfg = hs_config(d, NULL, 0);
        if (amb__handshake_init(r->hs, AMB__HS_ACCEPTOR, &cfg) != 0)
            reader_end(self, rd, "connection_setup_failed");
    }
}

/* The timer: before UP the set-up deadline; after, a tick: the peer is
 * down after ticktime without a byte, and a tick goes out after a quarter
 * of it without one sent. */
static void timer(amb_proc *self, reader *rd)
{
    if (!rd->up)
        reader_end(self, rd, "connection_setup_failed");
    amb__conn *c = rd->r->c;
    amb__dist *d = rd->r->d;
    int64_t now = amb_now_ms(), quarter = d->ticktime_ms / 4;
    if (now - c->last_recv >= d->ticktime_ms) {
        amb_log(self, AMB_LOG_WARNING,
                "distribution: node %s not responding; disconnecting",
                amb_atom_name(rd->node, NULL));
        reader_end(self, rd, "net_tick_timeout");
    }
    /* relaxed: see writer's send_bytes. */
    if (now - atomic_load_explicit(&c->last_send, memory_order_relaxed) >= quarter)
        send_tick(self, rd);
    arm(self, rd, quarter);
}

/* What a message from the socket layer says: TCP and TLS sockets differ
 * only in their tags (socket.h: tcp or ssl). */
enum { SOCK_NONE, SOCK_DATA, SOCK_CLOSED, SOCK_PASSIVE };
static int sock_event(amb_term msg, amb_term *sock, amb_term *data)
{
    size_t arity = amb_is_tuple(msg) ? amb_tuple_arity(msg) : 0;
    if (arity < 2 || arity > 3)
        return SOCK_NONE;
    amb_term tag = amb_tuple_elem(msg, 0);
    *sock = amb_tuple_elem(msg, 1);
    *data = arity == 3 ? amb_tuple_elem(msg, 2) : AMB_NONE;
    static const char *const tags[][4] = {
        {"tcp", "tcp_closed", "tcp_error", "tcp_passive"},
        {"ssl", "ssl_closed", "ssl_error", "ssl_passive"},
    };
    for (size_t i = 0; i < 2; i++) {
        if (arity == 3 && tag == amb_atom(tags[i][0]))
            return SOCK_DATA;
        if ((arity == 2 && tag == amb_atom(tags[i][1])) ||
            (arity == 3 && tag == amb_atom(tags[i][2])))
            return SOCK_CLOSED;
        if (arity == 2 && tag == amb_atom(tags[i][3]))
            return SOCK_PASSIVE;
    }
    return SOCK_NONE;
}

static int reader_handle(amb_proc *self, void *state, amb_term msg)
{
    reader *rd = state;
    if (!rd->started) {
        start(self, rd, msg);
        return 0;
    }
    amb_term sock, data;
    if (rd->yielded && msg != amb_atom("$dist_timer"))
        return 0;
    switch (sock_event(msg, &sock, &data)) {
    case SOCK_DATA:
        if (amb_equal(sock, rd->r->sock)) {
            const uint8_t *p;
            size_t n;
            if (amb_binary_get(data, &p, &n) == 0)
                input(self, rd, p, n);
        }
        return 0;
    case SOCK_CLOSED:
        if (amb_equal(sock, rd->r->sock)) {
            if (!rd->up && rd->r->hs != NULL)
                amb__handshake_eof(rd->r->hs);
            reader_end(self, rd,
                       rd->up ? "connection_closed" : "connection_setup_failed");
        }
        return 0;
    case SOCK_PASSIVE:
        /* {active, N} ran out: N more (the socket layer's flow control). */
        if (amb_equal(sock, rd->r->sock) &&
            rd->r->d->transport->adopt(rd->r->d, self, sock) != 0)
            reader_end(self, rd, "connection_closed");
        return 0;
    default:
        break;
    }
    if (msg == amb_atom("$dist_timer")) {
        timer(self, rd);
        return 0;
    }
    if (msg == amb_atom("$dist_disconnect"))
        reader_end(self, rd, "disconnect");
    return 0;
}

static const amb_handler reader_handler = {
    .state_size = sizeof(reader),
    .handle = reader_handle,
};

int amb__conn_start_reader(amb_proc *self, amb__dist *d, amb_term node, amb_term sock,
                           amb_pid *out)
{
    amb_pid pid;
    int rc = amb_spawn_handler(self, &reader_handler, NULL, &pid);
    if (rc != 0)
        return rc;
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark m = amb_heap_save(h);
    amb_term msg = AMB_TUPLE(h, amb_atom("$dist_start"), amb_uint(h, (uintptr_t)d),
                             node != AMB_NONE ? node : AMB_ATOM_UNDEFINED,
                             sock != AMB_NONE ? sock : AMB_ATOM_UNDEFINED);
    rc = msg == AMB_NONE ? AMB_ENOMEM : amb_send(self, pid, msg);
    amb_heap_rewind(h, m);
    if (rc != 0) {
        amb_exit(self, pid, AMB_ATOM_KILL);
        return rc;
    }
    if (out != NULL)
        *out = pid;
    return 0;
}

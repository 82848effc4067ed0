/*
 * poll_epoll.c - the poller of poll.h on Linux epoll.
 *
 * One epoll set per runtime. Every fd is added once with
 * EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, its epoll_data holding the
 * token (generation << 32 | table index) of its descriptor; an eventfd,
 * level-triggered, with the token BREAK_TOKEN, lets any thread wake a
 * poller blocked in epoll_wait.
 *
 * The descriptor table: chunks of AMB__POLL_CHUNK descriptors, allocated
 * when the table first reaches them and never freed before
 * amb__poll_destroy (type-stable memory: an event or a late caller holding
 * a stale index reads a generation, not freed memory). A free list under
 * the lock recycles indices, newest first.
 *
 * Slot transitions (poll.h), and who makes them:
 *   NIL   -> waiter   arm (owner)          waiter -> NIL     disarm (owner)
 *   NIL   -> READY    an event (poller)    waiter -> READY   an event: fires
 *   READY -> NIL      reset, arm (owner)   any    -> CLOSED  evict
 *   CLOSED -> NIL     open, on reuse (no one else can hold the new generation)
 * Every transition is a compare-and-swap or an exchange, so the slot's
 * modification order is the order in which they happened, and each waiter
 * leaves a slot exactly once (by the fire that saw it, by evict, or by
 * disarm), which is what "exactly one fire" rests on.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "runtime/poll.h"

#define BREAK_TOKEN UINT64_MAX
#define NO_INDEX    UINT32_MAX
#define MAX_EVENTS  128 /* per epoll_wait: Go takes 128 too */

#define DIR_READ  (1u << AMB__POLL_READ)
#define DIR_WRITE (1u << AMB__POLL_WRITE)

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool is_waiter(uintptr_t v)
{
    return v > AMB__POLL_CLOSED;
}

static void list_append(amb__poll_list *l, amb__poll_waiter *w)
{
    w->next = NULL;
    if (l->tail != NULL)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    l->n++;
}

/* The descriptor at idx, or NULL when the table never reached it. */
static amb__poll_desc *desc_at(amb__poll *p, uint32_t idx)
{
    if (idx >= AMB__POLL_CHUNK * AMB__POLL_CHUNKS)
        return NULL;
    /* acquire: pairs with the release that published the chunk, so its
     * initialised descriptors are visible. */
    amb__poll_desc *c =
        atomic_load_explicit(&p->chunks[idx / AMB__POLL_CHUNK], memory_order_acquire);
    return c != NULL ? &c[idx % AMB__POLL_CHUNK] : NULL;
}

int amb__poll_init(amb__poll *p)
{
    memset(p, 0, sizeof *p);
    p->free_head = NO_INDEX;
    p->epfd = p->evfd = -1;
    p->chunks = amb__calloc(AMB__POLL_CHUNKS, sizeof *p->chunks);
    p->held = amb__malloc(MAX_EVENTS * sizeof(struct epoll_event));
    if (p->chunks == NULL || p->held == NULL) {
        amb__free(p->chunks);
        amb__free(p->held);
        p->chunks = NULL;
        p->held = NULL;
        return AMB_ENOMEM;
    }
    int rc = AMB_EIO;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd >= 0)
        p->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->epfd < 0 || p->evfd < 0) {
        rc = errno == EMFILE || errno == ENFILE ? AMB_ESYSLIMIT
             : errno == ENOMEM                  ? AMB_ENOMEM
                                                : AMB_EIO;
        goto fail;
    }
    /* Level-triggered: a break written and not yet read back keeps every
     * later epoll_wait returning at once until a poller reads it. */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = BREAK_TOKEN};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->evfd, &ev) != 0) {
        rc = errno == ENOMEM ? AMB_ENOMEM : AMB_EIO;
        goto fail;
    }
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        rc = AMB_ENOMEM;
        goto fail;
    }
    return 0;
fail:
    if (p->evfd >= 0)
        close(p->evfd);
    if (p->epfd >= 0)
        close(p->epfd);
    amb__free(p->chunks);
    amb__free(p->held);
    p->chunks = NULL;
    p->held = NULL;
    return rc;
}

void amb__poll_destroy(amb__poll *p)
{
    if (p->chunks == NULL)
        return;
    close(p->evfd);
    close(p->epfd);
    for (uint32_t i = 0; i < AMB__POLL_CHUNKS; i++) {
        /* relaxed: nobody polls any more (contract), this thread published
         * or saw every chunk through the lock. */
        amb__poll_desc *c = atomic_load_explicit(&p->chunks[i], memory_order_relaxed);
        if (c == NULL)
            break; /* chunks are filled in order */
        amb__free_aligned(c);
    }
    amb__free(p->chunks);
    amb__free(p->held);
    p->chunks = NULL;
    p->held = NULL;
    pthread_mutex_destroy(&p->lock);
}

/* A free index and its descriptor, under the lock. */
static int take_desc(amb__poll *p, amb__poll_desc **out)
{
    if (p->free_head != NO_INDEX) {
        amb__poll_desc *pd = desc_at(p, p->free_head);
        p->free_head = pd->next_free;
        *out = pd;
        return 0;
    }
    if (p->nfresh == AMB__POLL_CHUNK * AMB__POLL_CHUNKS)
        return AMB_ESYSLIMIT;
    uint32_t idx = p->nfresh;
    uint32_t ci = idx / AMB__POLL_CHUNK;
    /* relaxed: only writers, under this lock, store chunk pointers. */
    amb__poll_desc *c = atomic_load_explicit(&p->chunks[ci], memory_order_relaxed);
    if (c == NULL) {
        c = amb__malloc_aligned(AMB__POLL_CHUNK * sizeof *c, 64);
        if (c == NULL)
            return AMB_ENOMEM;
        memset(c, 0, AMB__POLL_CHUNK * sizeof *c);
        for (uint32_t i = 0; i < AMB__POLL_CHUNK; i++)
            c[i].idx = ci * AMB__POLL_CHUNK + i;
        /* release: the zeroed descriptors and their indices before the
         * pointer, for desc_at's acquire in pollers that take no lock. */
        atomic_store_explicit(&p->chunks[ci], c, memory_order_release);
    }
    p->nfresh++;
    *out = &c[idx % AMB__POLL_CHUNK];
    return 0;
}

static void give_desc(amb__poll *p, amb__poll_desc *pd)
{
    pthread_mutex_lock(&p->lock);
    pd->next_free = p->free_head;
    p->free_head = pd->idx;
    pthread_mutex_unlock(&p->lock);
}

uint64_t amb__poll_token(const amb__poll_desc *pd, uint32_t gen)
{
    return (uint64_t)gen << 32 | pd->idx;
}

int amb__poll_open(amb__poll *p, int fd, amb__poll_desc **out, uint32_t *gen)
{
    if (fd < 0 || out == NULL || gen == NULL)
        return AMB_EBADARG;
    amb__poll_desc *pd;
    pthread_mutex_lock(&p->lock);
    int rc = take_desc(p, &pd);
    pthread_mutex_unlock(&p->lock);
    if (rc != 0)
        return rc;
    /* relaxed stores: the descriptor is ours alone (only a caller holding
     * the new generation may touch it, and nobody has it yet); the
     * epoll_ctl below, a syscall that takes the epoll lock, comes before
     * any event that could make a poller read these slots. A stale
     * arm that still finds NIL here is caught by its generation check. */
    atomic_store_explicit(&pd->slot[AMB__POLL_READ], AMB__POLL_NIL, memory_order_relaxed);
    atomic_store_explicit(&pd->slot[AMB__POLL_WRITE], AMB__POLL_NIL,
                          memory_order_relaxed);
    atomic_store_explicit(&pd->hup, 0, memory_order_relaxed);
    pd->fd = fd;
    /* relaxed: this thread bumped it last (close) or it is 0; the value is
     * only compared. */
    uint32_t g = atomic_load_explicit(&pd->gen, memory_order_relaxed);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = amb__poll_token(pd, g)};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        give_desc(p, pd);
        return e == ENOMEM   ? AMB_ENOMEM
               : e == ENOSPC ? AMB_ESYSLIMIT /* fs.epoll.max_user_watches */
               : e == EPERM  ? AMB_ENOTSUP   /* a regular file or directory */
                             : AMB_EBADARG;   /* EBADF, EEXIST, EINVAL: the caller's fd */
    }
    /* relaxed: a statistic read as a hint. */
    atomic_fetch_add_explicit(&p->nopen, 1, memory_order_relaxed);
    *out = pd;
    *gen = g;
    return 0;
}

void amb__poll_evict(amb__poll_desc *pd, amb__poll_list *fired)
{
    for (int dir = 0; dir < 2; dir++) {
        /* acq_rel: acquire the waiter's fields published by arm's release;
         * release is not needed by anyone but costs nothing on an RMW. */
        uintptr_t old = atomic_exchange_explicit(&pd->slot[dir], AMB__POLL_CLOSED,
                                                 memory_order_acq_rel);
        if (is_waiter(old))
            list_append(fired, (amb__poll_waiter *)old);
    }
}

void amb__poll_close(amb__poll *p, amb__poll_desc *pd, uint32_t gen,
                     amb__poll_list *fired)
{
    uint32_t g = gen;
    /* release: the eviction below and everything the closer did happen
     * before any reader that sees the new generation (arm's acquire
     * check). The CAS makes a second close of the same generation a no-op. */
    if (!atomic_compare_exchange_strong_explicit(
            &pd->gen, &g, gen + 1, memory_order_acq_rel, memory_order_relaxed))
        return;
    amb__poll_evict(pd, fired);
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, pd->fd, NULL); /* fails only for a closed fd */
    pd->fd = -1;
    atomic_fetch_sub_explicit(&p->nopen, 1, memory_order_relaxed); /* a hint */
    give_desc(p, pd);
}

void amb__poll_reset(amb__poll_desc *pd, int dir)
{
    /* A load first: a reset that finds no edge writes nothing (the common
     * case on a busy connection is READY, on an idle one NIL). seq_cst on
     * the CAS: the slot must read NIL before the syscall that follows
     * looks at the socket (poll.h, "Reset before the syscall"); the
     * kernel's socket lock already orders the two, the seq_cst makes it
     * hold without relying on that. */
    uintptr_t v = AMB__POLL_READY;
    if (atomic_load_explicit(&pd->slot[dir], memory_order_relaxed) == AMB__POLL_READY)
        atomic_compare_exchange_strong_explicit(&pd->slot[dir], &v, AMB__POLL_NIL,
                                                memory_order_seq_cst,
                                                memory_order_relaxed);
}

int amb__poll_arm(amb__poll_desc *pd, uint32_t gen, int dir, amb__poll_waiter *w)
{
    /* acquire: pairs with close's release, so a stale generation is seen
     * as stale once the close is visible. */
    if (atomic_load_explicit(&pd->gen, memory_order_acquire) != gen)
        return AMB_ECLOSED;
    uintptr_t old = AMB__POLL_NIL;
    for (;;) {
        /* release on success: w->task, w->node before w, for the poller's
         * acquire; acquire on failure: the value decides what we do. */
        if (atomic_compare_exchange_strong_explicit(&pd->slot[dir], &old, (uintptr_t)w,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire))
            return 0;
        if (old == AMB__POLL_CLOSED)
            return AMB_ECLOSED;
        if (is_waiter(old))
            return AMB_ESTATE;
        /* READY: consume the edge, and the caller retries its syscall.
         * seq_cst for the reason given in amb__poll_reset. */
        if (atomic_compare_exchange_strong_explicit(&pd->slot[dir], &old, AMB__POLL_NIL,
                                                    memory_order_seq_cst,
                                                    memory_order_acquire))
            return AMB_EAGAIN;
        /* it changed under us (evicted, or READY again): look again */
    }
}

bool amb__poll_disarm(amb__poll_desc *pd, int dir, amb__poll_waiter *w)
{
    uintptr_t old = (uintptr_t)w;
    /* relaxed: on success the poller never saw w, so there is nothing to
     * synchronise with; on failure w's fire is delivered through the
     * task's inbox, whose own orders cover it. */
    return atomic_compare_exchange_strong_explicit(
        &pd->slot[dir], &old, AMB__POLL_NIL, memory_order_relaxed, memory_order_relaxed);
}

/* An edge on one direction: fire the waiter, or leave READY. */
static size_t fire(amb__poll_desc *pd, int dir, amb__poll_list *fired)
{
    /* acquire: a waiter read here must come with its fields (arm's
     * release). A slot already READY or CLOSED needs no write: the edge
     * it would record is recorded, or nobody wants it. */
    uintptr_t old = atomic_load_explicit(&pd->slot[dir], memory_order_acquire);
    for (;;) {
        if (old == AMB__POLL_READY || old == AMB__POLL_CLOSED)
            return 0;
        /* acq_rel: acquire as above; release orders nothing the owner
         * reads, but an RMW has it for free. */
        if (atomic_compare_exchange_weak_explicit(&pd->slot[dir], &old, AMB__POLL_READY,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    if (!is_waiter(old))
        return 0;
    list_append(fired, (amb__poll_waiter *)old);
    return 1;
}

size_t amb__poll_inject(amb__poll *p, uint64_t token, unsigned dirs,
                        amb__poll_list *fired)
{
    amb__poll_desc *pd = desc_at(p, (uint32_t)token);
    /* acquire: pairs with close's release: a generation already bumped
     * means the slots may belong to a new incarnation; drop the event. A
     * close that lands just after this check makes at most a spurious
     * wake-up (poll.h). */
    if (pd == NULL ||
        atomic_load_explicit(&pd->gen, memory_order_acquire) != (uint32_t)(token >> 32))
        return 0;
    size_t n = 0;
    if ((dirs & AMB__POLL_HUP) &&
        atomic_load_explicit(&pd->hup, memory_order_relaxed) == 0) {
        /* relaxed store, then a seq_cst fence before the slots are looked
         * at: a reader whose reset (a seq_cst RMW) consumed an edge that
         * fire() below finds already there and so does not rewrite, then
         * reads hup with seq_cst after its syscall, comes after the fence
         * in the total order and sees it (C11's fence rule); a reader
         * whose reset came later finds a READY or gets fired. */
        atomic_store_explicit(&pd->hup, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
    }
    if (dirs & DIR_READ)
        n += fire(pd, AMB__POLL_READ, fired);
    if (dirs & DIR_WRITE)
        n += fire(pd, AMB__POLL_WRITE, fired);
    return n;
}

/* epoll_wait into ev[0..MAX_EVENTS): the count, AMB_EIO. */
static int wait_events(amb__poll *p, int64_t timeout_ms, struct epoll_event *ev)
{
    int to = timeout_ms < 0 ? -1 : timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms;
    int n = epoll_wait(p->epfd, ev, MAX_EVENTS, to);
    if (n < 0) {
        if (errno != EINTR)
            return AMB_EIO;
        n = 0;
    }
    return n;
}

/* What amb__poll_wait does with the n events it read. */
static int dispatch(amb__poll *p, const struct epoll_event *ev, int n,
                    amb__poll_list *fired)
{
    size_t before = fired->n;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u64 == BREAK_TOKEN) {
            uint64_t v;
            ssize_t r = read(p->evfd, &v, sizeof v); /* clears it; EAGAIN if raced */
            (void)r;
            /* release: a breaker that then sees false and writes again
             * comes after our read, so its write is not lost in it. */
            atomic_store_explicit(&p->break_pending, false, memory_order_release);
            continue;
        }
        uint32_t e = ev[i].events;
        unsigned dirs = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            dirs |= DIR_READ;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            dirs |= DIR_WRITE;
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            dirs |= AMB__POLL_HUP;
        amb__poll_inject(p, ev[i].data.u64, dirs, fired);
    }
    /* relaxed: a time stamp for the watchdog's "nobody polled lately". */
    atomic_store_explicit(&p->last_ms, mono_ms(), memory_order_relaxed);
    return (int)(fired->n - before);
}

int amb__poll_wait(amb__poll *p, int64_t timeout_ms, amb__poll_list *fired)
{
    struct epoll_event ev[MAX_EVENTS];
    int n = wait_events(p, timeout_ms, ev);
    return n < 0 ? n : dispatch(p, ev, n, fired);
}

int amb__poll_block(amb__poll *p, int64_t timeout_ms)
{
    int n = wait_events(p, timeout_ms, p->held);
    p->nheld = n < 0 ? 0 : n;
    return n < 0 ? n : 0;
}

int amb__poll_dispatch(amb__poll *p, amb__poll_list *fired)
{
    int n = p->nheld;
    p->nheld = 0;
    return dispatch(p, p->held, n, fired);
}

void amb__poll_break(amb__poll *p)
{
    /* A relaxed look first: a pending break makes this free. The exchange
     * is acq_rel so that of two breakers exactly one writes, and the write
     * comes after the poller's read that cleared the previous break. */
    if (atomic_load_explicit(&p->break_pending, memory_order_relaxed))
        return;
    if (atomic_exchange_explicit(&p->break_pending, true, memory_order_acq_rel))
        return;
    uint64_t one = 1;
    ssize_t r = write(p->evfd, &one, sizeof one); /* EAGAIN only at 2^64 - 2 */
    (void)r;
}

bool amb__poll_claim(amb__poll *p)
{
    bool f = false;
    /* seq_cst: one side of the Dekker pair described at amb__poll_blocked
     * (it also acquires what the previous holder did before unclaiming). */
    return atomic_compare_exchange_strong_explicit(
        &p->blocked, &f, true, memory_order_seq_cst, memory_order_relaxed);
}

void amb__poll_unclaim(amb__poll *p)
{
    /* release: pairs with the next claimer's acquire. */
    atomic_store_explicit(&p->blocked, false, memory_order_release);
}

bool amb__poll_blocked(amb__poll *p)
{
    /* seq_cst: a waker that makes work and then looks here, against a
     * poller that claims and then looks for work, is a Dekker pair: with
     * seq_cst on both sides one of them sees the other (sched.c's sleep
     * protocol relies on the same). The scheduler's own look for work
     * after claiming must be seq_cst too. */
    return atomic_load_explicit(&p->blocked, memory_order_seq_cst);
}

uint64_t amb__poll_last_ms(amb__poll *p)
{
    return atomic_load_explicit(&p->last_ms, memory_order_relaxed); /* a hint */
}

size_t amb__poll_nopen(amb__poll *p)
{
    return atomic_load_explicit(&p->nopen, memory_order_relaxed); /* a hint */
}

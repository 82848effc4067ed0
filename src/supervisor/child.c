/*
 * child.c - one child's life as both supervisors see it: checking and
 * copying its spec, starting it, stopping it by its shutdown rule, the
 * restart rule, supervisor reports, and amb_gen_child_start.
 *
 * Stopping follows OTP's supervisor:shutdown/2, for n children at once
 * (the dynamic supervisor's shutdown; the static supervisor passes one at a
 * time, in reverse start order), in four passes over the set:
 *   1. monitor each child, then unlink it. From then on its end is seen as
 *      exactly one DOWN, also when the child unlinked itself earlier.
 *   2. an {'EXIT', Child, _} already in the mailbox means that child has
 *      ended already (its DOWN will come): consume it, do not signal it.
 *   3. send the others exit(kill) (brutal_kill) or exit(shutdown), with a
 *      deadline of their timeout (none for infinity and kill) counted from
 *      when the last signal went out.
 *   4. wait for the DOWNs; at a deadline, exit(kill) the late ones and wait
 *      for them without deadline (kill cannot be ignored).
 * Costs, for n children: the set is sorted by pid once (a DOWN finds its
 * entry by binary search) and the deadlines once (the next deadline is a
 * cursor that only moves forward), so a stop is O(n log n); each receive
 * of pass 4 starts behind a mark taken before the first monitor, so older
 * messages are never scanned again; pass 2 scans the mailbox once per EXIT
 * it finds (a child that ended by itself just before), plus once.
 * Invariant: when amb__child_stop returns, every child it was given has
 * ended, no DOWN or EXIT of theirs is left in the mailbox, and their pids
 * are AMB_NONE.
 */
#include <stdlib.h>
#include <string.h>

#include "sup_internal.h"

int amb__child_check(const amb_child_spec *spec)
{
    if (spec == NULL || spec->start == NULL)
        return AMB_EBADARG;
    if (spec->restart != AMB_PERMANENT && spec->restart != AMB_TRANSIENT &&
        spec->restart != AMB_TEMPORARY)
        return AMB_EBADARG;
    if (spec->type != AMB_WORKER && spec->type != AMB_SUPERVISOR)
        return AMB_EBADARG;
    if ((spec->shutdown_ms < 0 && spec->shutdown_ms != AMB_SHUTDOWN_BRUTAL_KILL &&
         spec->shutdown_ms != AMB_SHUTDOWN_INFINITY) ||
        spec->shutdown_ms > AMB_TIMEOUT_MAX)
        return AMB_EBADARG;
    return 0;
}

int amb__child_init(amb__child *c, const amb_child_spec *spec, bool with_id, uint64_t uid)
{
    size_t slot = c->slot; /* the set's: kept */
    memset(c, 0, sizeof *c);
    c->slot = slot;
    c->id = AMB_ATOM_UNDEFINED;
    if (with_id && amb_term_size(spec->id) == 0) {
        c->id = spec->id; /* an immediate: nothing to own */
    } else if (with_id) {
        /* Each boxed id on a heap of its own: deleting a child frees its id,
         * so adding and deleting children forever uses bounded memory. */
        if (amb_heap_new(&c->idheap) != 0)
            return AMB_ENOMEM;
        if (amb_term_copy(c->idheap, spec->id, &c->id) != 0) {
            amb_heap_free(c->idheap);
            c->idheap = NULL;
            c->id = AMB_ATOM_UNDEFINED;
            return AMB_ENOMEM;
        }
    }
    c->start = spec->start;
    c->arg = spec->arg;
    c->restart = (uint8_t)spec->restart;
    c->type = (uint8_t)spec->type;
    c->shutdown_ms = spec->shutdown_ms;
    if (c->shutdown_ms == AMB_SHUTDOWN_DEFAULT)
        c->shutdown_ms = spec->type == AMB_SUPERVISOR ? AMB_INFINITY : 5000;
    c->pid = AMB_NONE;
    c->uid = uid;
    return 0;
}

void amb__child_free(amb__child *c)
{
    amb_heap_free(c->idheap);
    c->idheap = NULL;
    c->id = AMB_ATOM_UNDEFINED;
}

static amb_term error_reason(amb_proc *self, int rc)
{
    amb_heap *h = amb_proc_heap(self);
    return AMB_TUPLE(h, AMB_ATOM_ERROR, amb_atom(amb_err_name(rc)));
}

int amb__child_start(amb_proc *self, amb__child *c, amb_term *reason)
{
    amb_pid pid = AMB_NONE;
    amb_term why = AMB_NONE;
    int rc = c->start(self, c->arg, &pid, &why);
    c->restarting = false;
    if (rc == 0 && amb_type_of(pid) != AMB_T_PID)
        rc = AMB_EBADARG; /* a start function that lied about its pid */
    if (rc == 0) {
        c->pid = c->last_pid = pid;
        return 0;
    }
    c->pid = AMB_NONE;
    if (rc == AMB_EIGNORE)
        return rc;
    /* Any other result is a failed start, whatever the code (an AMB_ENOMEM
     * of the child's start is its failure, not the supervisor's): the
     * reason says why. */
    *reason = why != AMB_NONE ? why : error_reason(self, rc < 0 ? rc : AMB_EINIT);
    return AMB_EINIT;
}

bool amb__child_should_restart(int restart, amb_term reason)
{
    if (restart == AMB_PERMANENT)
        return true;
    if (restart == AMB_TEMPORARY)
        return false;
    if (reason == AMB_ATOM_NORMAL || reason == AMB_ATOM_SHUTDOWN)
        return false;
    return !amb_is_record(reason, AMB_ATOM_SHUTDOWN, 2);
}

void amb__child_report(amb_proc *self, const char *context, const amb__child *c,
                       amb_term reason)
{
    /* The pretty style: what a human reads (docs/design/print.md). */
    char id[128] = "", why[256] = "";
    if (amb_print_ex(c->id, AMB_PRINT_PRETTY, id, sizeof id, NULL) != 0 && id[0] == '\0')
        strcpy(id, "?");
    if (amb_print_ex(reason, AMB_PRINT_PRETTY, why, sizeof why, NULL) != 0 &&
        why[0] == '\0')
        strcpy(why, "?");
    char pid[64] = "undefined";
    if (c->last_pid != AMB_NONE &&
        amb_print_ex(c->last_pid, AMB_PRINT_PRETTY, pid, sizeof pid, NULL) != 0)
        strcpy(pid, "?");
    amb_log(self, AMB_LOG_ERROR, "supervisor report: %s, child %s, pid %s, reason %s",
            context, id, pid, why);
}

/* ------------------------------------------------------------------------
 * Stopping
 * --------------------------------------------------------------------- */

typedef struct stopping {
    amb__child *c;
    amb_pid pid;
    amb_term ref; /* the monitor, on self's heap */
    bool gone;    /* its EXIT was here already: not signalled */
    bool done;    /* its DOWN came (or it was awaited otherwise) */
} stopping;

/* A deadline to meet: entry i of the set must be gone at `at`. */
typedef struct deadline {
    uint64_t at;
    size_t i;
} deadline;

typedef struct stop_set {
    stopping *s; /* ordered by pid: a DOWN or EXIT finds its entry by binary search */
    size_t n;
    deadline *order; /* the entries with a deadline, earliest first */
    size_t ndl;
} stop_set;

static int cmp_pid(const void *a, const void *b)
{
    amb_pid x = ((const stopping *)a)->pid, y = ((const stopping *)b)->pid;
    return x < y ? -1 : x > y;
}

static int cmp_deadline(const void *a, const void *b)
{
    uint64_t x = ((const deadline *)a)->at, y = ((const deadline *)b)->at;
    return x < y ? -1 : x > y;
}

/* The entry of pid, or NULL. */
static stopping *find(const stop_set *set, amb_pid pid)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        stopping *e = &set->s[mid];
        if (e->pid == pid)
            return e;
        if (e->pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The entry whose monitor a DOWN message belongs to, or NULL. */
static stopping *find_down(const stop_set *set, amb_term msg)
{
    if (!amb_is_record(msg, AMB_ATOM_DOWN, 5))
        return NULL;
    stopping *e = find(set, amb_tuple_elem(msg, 3));
    return e != NULL && !e->done && amb_equal(e->ref, amb_tuple_elem(msg, 1)) ? e : NULL;
}

static bool is_our_down(void *ctx, amb_term msg)
{
    return find_down(ctx, msg) != NULL;
}

/* An {'EXIT', Child, _} of a child of the set not yet seen gone. */
static bool is_our_exit(void *ctx, amb_term msg)
{
    if (!amb_is_record(msg, AMB_ATOM_EXIT, 3))
        return false;
    stopping *e = find(ctx, amb_tuple_elem(msg, 1));
    return e != NULL && !e->done && !e->gone;
}

/* Pass 1: monitor, then unlink. */
static void watch(amb_proc *self, stopping *e)
{
    if (amb_monitor(self, e->pid, &e->ref) != 0) {
        /* Out of memory for the monitor: fall back to the link. Kill it
         * and wait for its EXIT as a DOWN would be waited for. */
        e->ref = AMB_NONE;
        amb_exit(self, e->pid, AMB_ATOM_KILL);
        amb_receive_match(self, AMB_INFINITY, NULL, "{'EXIT', ~v, _}", e->pid);
        e->done = true;
        return;
    }
    amb_unlink(self, e->pid);
}

/* Pass 2: the EXITs of children that ended by themselves already. */
static void sweep_exits(amb_proc *self, stop_set *set)
{
    amb_term msg;
    while (amb_receive_if(self, is_our_exit, set, 0, &msg) == 0)
        find(set, amb_tuple_elem(msg, 1))->gone = true;
}

/* Pass 3: tells e's child to stop by its rule; true when a deadline
 * applies (its timeout). */
static bool signal_stop(amb_proc *self, stopping *e)
{
    int64_t ms = e->c->shutdown_ms;
    if (ms == AMB_SHUTDOWN_BRUTAL_KILL) {
        amb_exit(self, e->pid, AMB_ATOM_KILL);
        return false;
    }
    amb_exit(self, e->pid, AMB_ATOM_SHUTDOWN);
    return ms != AMB_INFINITY;
}

/* Pass 4: waits for every DOWN of the set. The DOWNs come after mark
 * (taken before the first monitor), so each wait looks only at messages
 * that arrived since, however many calls wait in the mailbox. A child
 * killed at its deadline is awaited without one (kill cannot be ignored). */
static void await_downs(amb_proc *self, amb_recv_mark mark, stop_set *set, size_t left)
{
    size_t next = 0; /* order[next..]: deadlines not yet reached */
    while (left > 0) {
        while (next < set->ndl && set->s[set->order[next].i].done)
            next++;
        uint64_t now = (uint64_t)amb_now_ms();
        int64_t timeout = AMB_INFINITY;
        if (next < set->ndl) {
            uint64_t at = set->order[next].at;
            timeout = at <= now ? 0 : (int64_t)(at - now);
        }
        amb_term msg;
        if (amb_receive_if_after(self, mark, is_our_down, set, timeout, &msg) == 0) {
            find_down(set, msg)->done = true;
            left--;
            continue;
        }
        now = (uint64_t)amb_now_ms();
        for (; next < set->ndl && set->order[next].at <= now; next++) {
            stopping *e = &set->s[set->order[next].i];
            if (!e->done)
                amb_exit(self, e->pid, AMB_ATOM_KILL);
        }
    }
}

void amb__child_stop(amb_proc *self, amb__child *first, size_t n)
{
    stopping one;
    deadline one_dl;
    stop_set set = {&one, 0, &one_dl, 0};
    amb__child *c = first;
    size_t running = 0;
    for (size_t i = 0; i < n; i++, c = c->next)
        running += c->pid != AMB_NONE;
    if (running == 0)
        return;
    if (running > 1) {
        set.s = amb_malloc(running * (sizeof *set.s + sizeof *set.order));
        if (set.s == NULL) {
            /* No memory for the set: stop them one at a time, which needs
             * none (same result, only slower for many slow children). */
            for (size_t i = 0; i < n; i++, first = first->next)
                amb__child_stop(self, first, 1);
            return;
        }
        set.order = (deadline *)(void *)(set.s + running);
    }
    c = first;
    for (size_t i = 0; i < n; i++, c = c->next)
        if (c->pid != AMB_NONE)
            set.s[set.n++] = (stopping){c, c->pid, AMB_NONE, false, false};
    qsort(set.s, set.n, sizeof *set.s, cmp_pid);
    amb_recv_mark mark = amb_receive_mark(self);
    for (size_t i = 0; i < set.n; i++)
        watch(self, &set.s[i]);
    sweep_exits(self, &set);
    size_t left = 0;
    for (size_t i = 0; i < set.n; i++) {
        stopping *e = &set.s[i];
        if (e->done)
            continue;
        left++;
        if (!e->gone && signal_stop(self, e))
            set.order[set.ndl++] = (deadline){(uint64_t)e->c->shutdown_ms, i};
    }
    /* Each timeout counts from when every signal has gone out, so a child
     * signalled late in a large set still gets all of its time. */
    uint64_t now = (uint64_t)amb_now_ms();
    for (size_t i = 0; i < set.ndl; i++)
        set.order[i].at += now;
    qsort(set.order, set.ndl, sizeof *set.order, cmp_deadline);
    await_downs(self, mark, &set, left);
    for (size_t i = 0; i < set.n; i++)
        set.s[i].c->pid = AMB_NONE;
    if (set.s != &one)
        amb_free(set.s);
}

/* ------------------------------------------------------------------------
 * gen_server children
 * --------------------------------------------------------------------- */

int amb_gen_child_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    if (self == NULL || arg == NULL || out == NULL)
        return AMB_EBADARG;
    const amb_gen_child *g = arg;
    amb_term why = AMB_NONE;
    amb_gen_opts o = {0};
    o.name = g->name;
    o.link = true;
    amb_pid pid = AMB_NONE;
    int rc = amb_gen_server_start(self, g->cb, g->arg, &o, &pid, &why);
    if (rc == 0) {
        *out = pid;
        return 0;
    }
    if (reason != NULL) {
        if (rc == AMB_EINIT && why != AMB_NONE)
            *reason = why;
        else if (rc == AMB_EEXIST && pid != AMB_NONE) /* OTP's {already_started, Pid} */
            *reason = AMB_TUPLE(amb_proc_heap(self), AMB_ATOM_ALREADY_STARTED, pid);
    }
    return rc;
}

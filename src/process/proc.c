/*
 * proc.c - the life of a process: spawn, the body of its contexts (a
 * stackful function or a handler's activations), the calling process's
 * accessors, yielding, exit, teardown and reclamation of its block,
 * references. The functions the executor calls (amb__proc_entry,
 * _teardown, _reclaim, _discard_all) are in its ops table (rt.c).
 *
 * Life cycle of a block:
 *   alloc (pool or allocator) -> spawn publishes it in the process table ->
 *   runs -> ends (its scheduler tears it down: table slot cleared, name,
 *   messages, heap and timers released, mailbox closed: a racing sender
 *   that pushes afterwards answers its own cell) -> retired by the
 *   executor (QSBR limbo) -> reclaimed after the grace period -> back to
 *   the scheduler's pool.
 */
#include <stdlib.h>

#include "process/fail.h"
#include "process/pio.h"
#include "process/rt.h"

#define HANDLER_BATCH 64 /* messages a handler takes per activation */

/* Process blocks come from slabs: no per-block malloc header or alignment
 * slack, which keeps an idle handler process under 512 bytes. */
static const amb__slab_class block_class = {sizeof(amb_proc), 65536 / sizeof(amb_proc),
                                            1024};

static amb_proc *block_alloc(amb__sched *s)
{
    amb_proc *p;
    uint16_t index = 0;
    if (s != NULL)
        p = amb__slab_alloc(&amb__rt_sched_of(s)->procs, &block_class, &index);
    else
        p = amb__malloc_aligned(sizeof *p, 64);
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof *p);
    p->slab_index = s != NULL ? index : UINT16_MAX;
    return p;
}

static void block_free(amb__sched *s, amb_proc *p)
{
    if (p->slab_index == UINT16_MAX)
        amb__free_aligned(p);
    else
        amb__slab_free(s ? &amb__rt_sched_of(s)->procs : NULL, &block_class, p,
                       p->slab_index);
}

void amb__proc_pool_free(amb__sched *s)
{
    amb__slab_pool_drain(&amb__rt_sched_of(s)->procs, &block_class);
}

void amb__proc_pool_trim(amb__sched *s)
{
    amb__slab_pool_drain(&amb__rt_sched_of(s)->procs, &block_class);
    amb__slab_depot_drain(&amb__rt_of(s->exec)->proc_depot, &block_class);
}

int amb__proc_depot_init(amb_rt *rt)
{
    int rc = amb__slab_depot_init(&rt->proc_depot, 16);
    for (unsigned i = 0; rc == 0 && i < rt->exec.nsched; i++)
        amb__rt_sched_of(amb__exec_sched(&rt->exec, i))->procs.depot = &rt->proc_depot;
    return rc;
}

void amb__proc_depot_free(amb_rt *rt)
{
    amb__slab_depot_free(&rt->proc_depot, &block_class);
}

/* Spawns into rt from scheduler s (NULL: from outside), by parent (NULL:
 * from outside; then links and monitors are not allowed). *monitor_ref (may
 * be NULL) gets the monitor's reference when o->monitor. */
static int spawn(amb_rt *rt, amb__sched *s, amb_proc *parent, amb_fn *fn, void *arg,
                 const amb_spawn_opts *o, amb_pid *out, amb_term *monitor_ref)
{
    const amb_handler *h = o ? o->handler : NULL;
    if ((h == NULL && fn == NULL) || (h != NULL && h->handle == NULL) ||
        (h != NULL && h->state_terms > AMB_STATE_TERMS_MAX))
        return AMB_EBADARG;
    if (o != NULL && parent == NULL && (o->link || o->monitor))
        return AMB_EBADARG;
    if (o != NULL && o->name != AMB_NONE &&
        (!amb_is_atom(o->name) || o->name == AMB_ATOM_UNDEFINED))
        return AMB_EBADARG;
    amb_proc *p = block_alloc(s);
    if (p == NULL)
        return AMB_ENOMEM;
    uint32_t index, serial;
    int rc = amb__ptab_alloc(rt, s, &index, &serial);
    if (rc != 0) {
        block_free(s, p);
        return rc;
    }
    p->pid = amb__lpid_make(rt->node_slot, index, serial);
    p->task.id = index;
    p->rt = rt;
    atomic_init(&p->name, AMB_NONE);
    p->exit_reason = AMB_NONE;
    p->fn = fn;
    p->arg = arg;
    if (h != NULL) {
        p->handler = h;
        p->flags |= AMB__PF_HANDLER;
        /* The state's terms come first and count in its size. */
        size_t bytes = h->state_size;
        if (h->state_terms > 0) {
            p->flags |= AMB__PF_KEEP;
            if (bytes < h->state_terms * sizeof(amb_term))
                bytes = h->state_terms * sizeof(amb_term);
            p->pheap = amb__calloc(1, sizeof *p->pheap);
        }
        if (bytes > 0 && (p->state = amb__malloc_aligned(bytes, 16)) != NULL)
            memset(p->state, 0, bytes); /* terms: AMB_NONE */
        if ((bytes > 0 && p->state == NULL) ||
            ((p->flags & AMB__PF_KEEP) && p->pheap == NULL)) {
            amb__free(p->pheap);
            amb__free_aligned(p->state);
            amb__ptab_free(rt, s, index);
            block_free(s, p);
            return AMB_ENOMEM;
        }
        if (h->init == NULL)
            p->flags |= AMB__PF_INIT_DONE;
    }
    if (o != NULL && o->stack_size > 0 && h == NULL) {
        int cls = amb__exec_stack_class(&rt->exec, o->stack_size);
        if (cls < 0) {
            amb__ptab_free(rt, s, index);
            block_free(s, p);
            return AMB_EBADARG;
        }
        p->task.stack_class = (uint8_t)cls;
    }
    if (o != NULL && o->min_heap_size > 0) {
        /* Reserve the heap now: one block of the asked size (a reset keeps
         * the largest block). A size that cannot be had is an error, not a
         * silent smaller heap. */
        amb_heap *heap = amb_proc_heap(p);
        uint64_t *w = heap ? amb__heap_alloc(heap, o->min_heap_size / 8 + 1) : NULL;
        if (w != NULL)
            amb_heap_reset(heap);
        else
            rc = AMB_ENOMEM;
    }
    /* Links and monitors are set up in both blocks before the child is
     * published (spawn_link / spawn_monitor are atomic). */
    if (rc == 0 && o != NULL && o->link)
        rc = amb__link_spawn(parent, p);
    amb_term mref = AMB_NONE;
    if (rc == 0 && o != NULL && o->monitor)
        rc = amb__monitor_spawn(parent, p, &mref);
    if (rc == 0 && o != NULL && o->name != AMB_NONE)
        rc = amb__names_register(rt, o->name, p);
    if (rc != 0) {
        if (parent != NULL) {
            amb__link_spawn_undo(parent, p);
            amb__monitor_spawn_undo(parent, mref);
        }
        amb__fail_free(p);
        amb_heap_free(p->heap);
        amb__free_aligned(p->state);
        amb__pheap_free(s, p);
        amb__sched_release(s, &p->task);
        amb__ptab_free(rt, s, index);
        block_free(s, p);
        return rc;
    }
    /* A handler with nothing to initialise waits parked for its first
     * message; anything else starts runnable. */
    bool idle = (p->flags & AMB__PF_HANDLER) && (p->flags & AMB__PF_INIT_DONE);
    amb__mpscq_init(&p->task.inbox, idle);
    amb__exec_task_begin(&rt->exec, s);
    /* release: the block is complete before a lookup can find it. */
    atomic_store_explicit(&rt->ptab.slots[index], p, memory_order_release);
    if (out != NULL)
        *out = p->pid;
    if (monitor_ref != NULL && mref != AMB_NONE)
        *monitor_ref = mref;
    if (!idle)
        amb__sched_ready(&rt->exec, s, &p->task);
    return 0;
}

int amb_spawn_opt(amb_proc *self, amb_fn *fn, void *arg, const amb_spawn_opts *opts,
                  amb_pid *out, amb_term *monitor_ref)
{
    if (self == NULL)
        return AMB_EBADARG;
    return spawn(self->rt, self->task.sched, self, fn, arg, opts, out, monitor_ref);
}

int amb_spawn(amb_proc *self, amb_fn *fn, void *arg, amb_pid *out)
{
    if (self == NULL || fn == NULL)
        return AMB_EBADARG;
    return spawn(self->rt, self->task.sched, self, fn, arg, NULL, out, NULL);
}

int amb_spawn_handler(amb_proc *self, const amb_handler *handler, void *arg, amb_pid *out)
{
    if (self == NULL || handler == NULL)
        return AMB_EBADARG;
    amb_spawn_opts o = {.handler = handler, .name = AMB_NONE};
    return spawn(self->rt, self->task.sched, self, NULL, arg, &o, out, NULL);
}

int amb_rt_spawn(amb_rt *rt, amb_fn *fn, void *arg, amb_pid *out)
{
    if (rt == NULL || fn == NULL)
        return AMB_EBADARG;
    return spawn(rt, NULL, NULL, fn, arg, NULL, out, NULL);
}

int amb__proc_spawn_main(amb_rt *rt, amb_fn *fn, void *arg)
{
    amb_pid pid;
    int rc = spawn(rt, NULL, NULL, fn, arg, NULL, &pid, NULL);
    if (rc != 0)
        return rc;
    /* The runtime does not run yet: the block is ours to mark (relaxed:
     * amb_rt_run's thread creation orders it before any scheduler). */
    amb_proc *p =
        atomic_load_explicit(&rt->ptab.slots[amb__lpid_index(pid)], memory_order_relaxed);
    p->flags |= AMB__PF_MAIN;
    return 0;
}

amb_pid amb_self(amb_proc *self)
{
    return self ? self->pid : AMB_NONE;
}

amb_rt *amb_proc_rt(amb_proc *self)
{
    return self ? self->rt : NULL;
}

amb_heap *amb_proc_heap(amb_proc *self)
{
    if (self == NULL)
        return NULL;
    if (self->heap == NULL && amb_heap_new(&self->heap) != 0)
        return NULL;
    return self->heap;
}

void amb__proc_signals(amb_proc *p)
{
    /* acquire: pairs with the sender's release store after its push, so the
     * exit signal is visible to the drain below. */
    if (atomic_exchange_explicit(&p->sig_pending, false, memory_order_acquire))
        amb__mailbox_drain(p);
}

void amb__proc_yield(amb_proc *p)
{
    /* acquire: as in amb__proc_signals; the drain handles everything. */
    (void)atomic_exchange_explicit(&p->sig_pending, false, memory_order_acquire);
    amb__mailbox_drain(p);
    amb__sched_switch_out(&p->task, AMB__TASK_YIELD);
}

int amb_yield(amb_proc *self)
{
    if (self == NULL)
        return AMB_EBADARG;
    amb__counter_add(&self->reductions, 1);
    amb__proc_yield(self);
    return 0;
}

bool amb_is_process_alive(amb_proc *self, amb_pid pid)
{
    return self != NULL && amb__ptab_lookup(self->rt, pid) != NULL;
}

/* Keeps reason on the process's exit heap (it must outlive the heap). */
static void set_reason(amb_proc *p, amb_term reason)
{
    if (!amb_is_cons(reason) && !amb__is_boxed(reason)) {
        p->exit_reason = reason;
        return;
    }
    if (p->exit_heap == NULL && amb_heap_new(&p->exit_heap) != 0) {
        p->exit_reason = AMB_ATOM_ERROR; /* out of memory: keep something */
        return;
    }
    if (amb_term_copy(p->exit_heap, reason, &p->exit_reason) != 0)
        p->exit_reason = AMB_ATOM_ERROR;
}

/* OTP's rule for crash reports: every reason but normal, shutdown and
 * {shutdown, _}. */
static bool abnormal(amb_term reason)
{
    if (reason == AMB_ATOM_NORMAL || reason == AMB_ATOM_SHUTDOWN)
        return false;
    return !(amb_tuple_arity(reason) == 2 &&
             amb_tuple_elem(reason, 0) == AMB_ATOM_SHUTDOWN);
}

void amb__proc_die(amb_proc *p, amb_term reason, bool report, amb__msg *cell)
{
    /* A socket call it was in ends first, on this stack (pio.h). */
    amb__pio_exit(p);
    set_reason(p, reason);
    amb__msg_free(p->task.sched, cell);
    if (report && abnormal(p->exit_reason)) {
        /* The last message received: a nested receive's, else the one a
         * handler is handling. */
        amb_term last = p->borrowed   ? p->borrowed->term
                        : p->handling ? p->handling->term
                                      : AMB_NONE;
        amb__logger_crash(p, p->exit_reason, last);
    }
    amb__mailbox_release_borrowed(p);
    amb__sched_exit(&p->task, AMB__TASK_EXIT);
}

void amb__proc_stack_overflow(amb_proc *p)
{
    amb__proc_die(p, p->rt->atom_stack_overflow, true, NULL);
}

void amb_exit_self(amb_proc *self, amb_term reason)
{
    if (self == NULL)
        amb__panic("amb_exit_self outside a process");
    amb__proc_die(self, reason == AMB_NONE ? AMB_ATOM_NORMAL : reason, true, NULL);
}

/* Ends p with reason {error, 'AMB_E...'} for a callback's error code. */
_Noreturn static void exit_error(amb_proc *p, int rc)
{
    amb_heap *h;
    amb_term reason = AMB_ATOM_ERROR;
    if (amb_heap_new(&h) == 0) {
        amb_term t = AMB_TUPLE(h, AMB_ATOM_ERROR, amb_atom(amb_err_name(rc)));
        if (t != AMB_NONE)
            reason = t;
        set_reason(p, reason);
        amb_heap_free(h);
    } else {
        set_reason(p, reason);
    }
    amb__proc_die(p, p->exit_reason, true, NULL);
}

/* ---------------------------------------------------------------------------
 * The body of a context (the executor's ops->entry)
 * ------------------------------------------------------------------------ */

/* A handler activation ends: its borrowed message goes, then its context
 * (and stack) with req (IDLE or REQUEUE). */
_Noreturn static void activation_end(amb_proc *p, enum amb__task_req req)
{
    amb__mailbox_release_borrowed(p);
    amb__sched_exit(&p->task, req);
}

/* A stackful process: its function, then a normal end. */
_Noreturn static void stackful_body(amb_proc *p)
{
    p->fn(p, p->arg);
    p->exit_reason = AMB_ATOM_NORMAL;
    amb__sched_exit(&p->task, AMB__TASK_EXIT);
}

/* A handler activation: init once, then one handle() per message until the
 * mailbox is empty or the batch is spent. The activation then ends and its
 * stack goes back to the pool. */
_Noreturn static void handler_body(amb_proc *p)
{
    const amb_handler *h = p->handler;
    if (!(p->flags & AMB__PF_INIT_DONE)) {
        p->flags |= AMB__PF_INIT_DONE;
        if (h->init != NULL) {
            int rc = h->init(p, p->state, p->arg);
            if (rc < 0)
                exit_error(p, rc);
            if (p->flags & AMB__PF_KEEP)
                amb__pheap_after(p);
        }
    }
    for (int n = 0; n < HANDLER_BATCH && p->task.budget > 0; n++) {
        amb_term msg;
        if (!amb__mailbox_take(p, &msg))
            activation_end(p, AMB__TASK_IDLE);
        amb__counter_add(&p->reductions, 1);
        p->task.budget--;
        int rc = h->handle(p, p->state, msg);
        if (rc < 0)
            exit_error(p, rc);
        if (p->flags & AMB__PF_KEEP)
            amb__pheap_after(p);
    }
    activation_end(p, AMB__TASK_REQUEUE);
}

void amb__proc_entry(amb__task *t)
{
    amb_proc *p = amb__proc_of(t);
    /* An exit signal that arrived before this run acts before the body
     * starts. relaxed: see amb__proc_reduce. */
    if (atomic_load_explicit(&p->sig_pending, memory_order_relaxed))
        amb__proc_signals(p);
    if (p->flags & AMB__PF_HANDLER)
        handler_body(p);
    stackful_body(p);
}

/* ---------------------------------------------------------------------------
 * The end of a process (the executor's ops->teardown, ->reclaim, ->discard)
 * ------------------------------------------------------------------------ */

void amb__proc_teardown(amb__sched *s, amb__task *t)
{
    amb_proc *p = amb__proc_of(t);
    amb_rt *rt = p->rt;
    amb__ptimer_wait_cancel(s, p);
    /* Name and table slot go first: whoever gets the EXIT or DOWN below
     * finds the process dead (amb_is_process_alive false, whereis undefined), as in
     * Erlang. */
    amb__names_drop(rt, p);
    uint32_t index = amb__lpid_index(p->pid);
    /* release: pairs with lookups' acquire; from now on none finds p. */
    atomic_store_explicit(&rt->ptab.slots[index], NULL, memory_order_release);
    amb__ptab_free(rt, s, index);
    /* Owned sockets are closed (their cells may land in the mailbox). */
    amb__pio_teardown(s, p);
    /* Pending cells: a LINK or MONITOR among them is answered (noproc).
     * Then the mailbox is closed: a sender that found the block before the
     * slot was cleared and pushes from now on answers its own cell at once
     * (a MONITOR gets its DOWN noproc now, not when the block is reclaimed,
     * which could take seconds on busy schedulers: issue 12). */
    amb__mailbox_drop_all(s, p);
    amb__pheap_free(s, p);
    amb__mailbox_close(rt, s, p);
    /* on_exit handlers, exit signals to links, DOWN to monitors. */
    amb__fail_teardown(s, p);
    amb__alias_free(p);
    amb_heap_free(p->heap);
    p->heap = NULL;
    /* amb_main's process ending with any reason but normal halts the
     * runtime (rt.c has the rule), as an escript's main that raises. */
    if ((p->flags & AMB__PF_MAIN) && p->exit_reason != AMB_ATOM_NORMAL)
        amb_rt_halt(rt, AMB_EMAINEXIT);
    amb_heap_free(p->exit_heap);
    p->exit_heap = NULL;
    amb__free_aligned(p->state);
    p->state = NULL;
    /* The executor retires the block now (QSBR) and stops when this was
     * the last process. */
}

void amb__proc_start_failed(amb__sched *s, amb__task *t)
{
    amb_proc *p = amb__proc_of(t);
    (void)s;
    p->exit_reason = p->rt->reason_enomem; /* lives as long as the runtime */
    amb__logger_crash(p, p->exit_reason, AMB_NONE);
}

void amb__proc_inbox_closed(amb__sched *s, amb__task *t)
{
    amb_proc *p = amb__proc_of(t);
    amb__mailbox_close(p->rt, s, p);
}

void amb__proc_reclaim(amb__sched *s, amb__task *t)
{
    amb_proc *p = amb__proc_of(t);
    /* Its mailbox was closed at teardown, and every sender that pushed
     * since answered its own cell before it passed a quiescent point: it is
     * empty. */
    AMB__CHECK(amb__mpscq_pop(&p->task.inbox) == NULL);
    amb__pio_free(p);
    block_free(s, p);
}

/* Frees a process that never ended (amb_rt_free after a stop). */
static void discard(amb__sched *s, amb_proc *p)
{
    amb__pio_exit(p); /* while its stack is there */
    amb__sched_release(s, &p->task);
    amb__ptimer_wait_cancel(s, p);
    p->wait_timer = NULL;
    amb__pio_teardown(s, p);
    amb__mailbox_drop_all(s, p);
    amb__pio_free(p);
    amb__pheap_free(s, p);
    amb__fail_free(p); /* runs its on_exit handlers: nothing leaks */
    amb__alias_free(p);
    amb_heap_free(p->heap);
    amb_heap_free(p->exit_heap);
    amb__free_aligned(p->state);
    block_free(s, p);
}

void amb__proc_discard_all(amb__exec *x)
{
    amb_rt *rt = amb__rt_of(x);
    amb__sched *s0 = amb__exec_sched(x, 0);
    /* relaxed: nothing runs; the table is ours alone now. */
    size_t fresh = atomic_load_explicit(&rt->ptab.fresh, memory_order_relaxed);
    for (size_t i = 0; i < rt->ptab.size && i < fresh; i++) {
        amb_proc *p = atomic_load_explicit(&rt->ptab.slots[i], memory_order_relaxed);
        if (p != NULL) {
            atomic_store_explicit(&rt->ptab.slots[i], NULL, memory_order_relaxed);
            discard(s0, p);
        }
    }
}

amb_term amb_make_ref(amb_proc *self)
{
    if (self == NULL)
        return AMB_NONE;
    amb_heap *h = amb_proc_heap(self);
    if (h == NULL)
        return AMB_NONE;
    uint32_t w[3];
    amb__rt_ref_words(self->task.sched, w);
    return amb__rt_ref_term(self->rt, h, w);
}

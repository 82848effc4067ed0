/*
 * Unit tests of the process table (src/process/ptab.c): index allocation
 * (fresh, then reused round-robin through one queue, in per-scheduler
 * batches), serials as generations, lookup of current and stale pids, the
 * table's limit, and allocation from several threads at once.
 *
 * The table is used as spawn and teardown use it, on a runtime that is
 * made but not run: amb__ptab_alloc / amb__ptab_free with a scheduler's
 * batches (or none), and a block published in a slot with a release store.
 * The blocks here are bare amb_proc structs; the table reads only their pid.
 * Threads and processes record failures for the test thread to assert on
 * (cmocka's asserts jump to the test thread's stack).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "amb_test.h"
#include "process/rt.h"

static amb_rt *new_rt(size_t max_processes, unsigned schedulers)
{
    amb_config cfg = {.schedulers = schedulers, .max_processes = max_processes};
    amb_rt *rt = NULL;
    assert_ok(amb_rt_new(&cfg, &rt));
    return rt;
}

static amb__sched *sched(amb_rt *rt, unsigned i)
{
    return amb__exec_sched(&rt->exec, i);
}

/* Publishes a block for (index, serial) as spawn does. */
static amb_proc *publish(amb_rt *rt, uint32_t index, uint32_t serial)
{
    amb_proc *p = aligned_alloc(64, sizeof *p);
    assert_non_null(p);
    memset(p, 0, sizeof *p);
    p->pid = amb__lpid_make(rt->node_slot, index, serial);
    atomic_store_explicit(&rt->ptab.slots[index], p, memory_order_release);
    return p;
}

/* Clears the slot and frees the index, as teardown does. */
static void unpublish(amb_rt *rt, amb__sched *s, amb_proc *p)
{
    uint32_t index = amb__lpid_index(p->pid);
    atomic_store_explicit(&rt->ptab.slots[index], NULL, memory_order_release);
    amb__ptab_free(rt, s, index);
    free(p);
}

/* Takes indices until `want` comes out; returns how many were taken (the
 * others are freed again at once, as a spawn/exit loop does). */
static unsigned cycle_to(amb_rt *rt, amb__sched *s, uint32_t want, uint32_t *serial)
{
    for (unsigned n = 1;; n++) {
        uint32_t i;
        assert_ok(amb__ptab_alloc(rt, s, &i, serial));
        if (i == want)
            return n;
        amb__ptab_free(rt, s, i);
        assert_true(n < 100000);
    }
}

AMB_TEST(ptab_indices_are_fresh_then_reused_with_the_next_serial)
{
    amb_rt *rt = new_rt(64, 1);
    amb__sched *s = sched(rt, 0);
    uint32_t idx[3], ser[3];
    for (uint32_t i = 0; i < 3; i++) {
        assert_ok(amb__ptab_alloc(rt, s, &idx[i], &ser[i]));
        assert_int_equal(idx[i], i);
        assert_int_equal(ser[i], 0);
    }
    /* A freed index waits for its turn (every never-used one first), then
     * comes back one serial on; through the scheduler's batches or, without
     * a scheduler (outside the runtime), straight through the queue. */
    amb__ptab_free(rt, s, idx[1]);
    uint32_t serial;
    assert_true(cycle_to(rt, s, 1, &serial) > 60);
    assert_int_equal(serial, 1);
    amb__ptab_flush_cache(rt, s); /* what s holds goes back to the queue */
    amb__ptab_free(rt, NULL, idx[2]);
    assert_true(cycle_to(rt, NULL, 2, &serial) > 1);
    assert_int_equal(serial, 1);
    assert_int_equal(atomic_load(&rt->ptab.fresh), 64);
    amb_rt_free(rt);
}

/* Issue 13: a spawn/exit loop reused one index last-in-first-out, so a pid
 * came back after 2^22 spawns. Now every index is used in turn: an index
 * returns only after about the whole table, and the (index, serial) pairs
 * of a loop much longer than the table never repeat. */
AMB_TEST(ptab_indices_are_reused_round_robin_over_the_whole_table)
{
    for (unsigned nsched = 1; nsched <= 2; nsched++) {
        amb_rt *rt = new_rt(1024, nsched);
        amb__sched *s = sched(rt, 0);
        static uint64_t last_use[1024];
        static uint8_t seen[1024][16];
        memset(seen, 0, sizeof seen);
        uint64_t min_gap = UINT64_MAX;
        for (uint64_t n = 1; n <= 1024 * 16; n++) {
            uint32_t i, serial;
            assert_ok(amb__ptab_alloc(rt, s, &i, &serial));
            if (last_use[i] != 0 && n - last_use[i] < min_gap)
                min_gap = n - last_use[i];
            last_use[i] = n;
            assert_true(serial < 16);
            assert_int_equal(seen[i][serial], 0);
            seen[i][serial] = 1;
            amb__ptab_free(rt, s, i);
        }
        /* Only the scheduler's batch is out of the queue's order. */
        print_message("%u scheduler(s): an index came back after %llu spawns at the "
                      "earliest (table 1024, batch %u)\n",
                      nsched, (unsigned long long)min_gap, rt->ptab.batch);
        assert_true(min_gap >= 1024 - 2 * rt->ptab.batch);
        memset(last_use, 0, sizeof last_use);
        amb_rt_free(rt);
    }
}

AMB_TEST(ptab_lookup_finds_only_the_current_pid)
{
    amb_rt *rt = new_rt(64, 1);
    amb__sched *s = sched(rt, 0);
    uint32_t index, serial;
    assert_ok(amb__ptab_alloc(rt, s, &index, &serial));
    amb_proc *p = publish(rt, index, serial);
    amb_pid pid = p->pid;
    assert_ptr_equal(amb__ptab_lookup(rt, pid), p);
    /* The same index with another serial, another node, an index past the
     * table, a term that is no pid: nobody. */
    assert_null(amb__ptab_lookup(rt, amb__lpid_make(rt->node_slot, index, serial + 1)));
    assert_null(amb__ptab_lookup(rt, amb__lpid_make(rt->node_slot + 1, index, serial)));
    assert_null(amb__ptab_lookup(rt, amb__lpid_make(rt->node_slot, 64, 0)));
    assert_null(amb__ptab_lookup(rt, AMB_ATOM_OK));
    /* The process ends; its pid is stale from the moment its slot clears. */
    unpublish(rt, s, p);
    assert_null(amb__ptab_lookup(rt, pid));
    /* A new process at the same index: the stale pid still finds nobody. */
    uint32_t serial2;
    cycle_to(rt, s, index, &serial2);
    assert_int_not_equal(serial2, serial);
    amb_proc *q = publish(rt, index, serial2);
    assert_null(amb__ptab_lookup(rt, pid));
    assert_ptr_equal(amb__ptab_lookup(rt, q->pid), q);
    unpublish(rt, s, q);
    amb_rt_free(rt);
}

AMB_TEST(ptab_serial_wraps_within_its_bits)
{
    amb_rt *rt = new_rt(64, 1);
    amb__sched *s = sched(rt, 0);
    uint32_t index, serial;
    assert_ok(amb__ptab_alloc(rt, s, &index, &serial));
    /* As if the index had been reused 2^22 - 1 times already. */
    rt->ptab.serials[index] = AMB__LPID_SERIAL_MAX;
    amb__ptab_free(rt, s, index);
    cycle_to(rt, s, index, &serial);
    assert_int_equal(serial, 0);
    amb_proc *p = publish(rt, index, serial);
    assert_int_equal(amb__lpid_serial(p->pid), 0);
    assert_int_equal(amb__lpid_index(p->pid), index);
    assert_ptr_equal(amb__ptab_lookup(rt, p->pid), p);
    unpublish(rt, s, p);
    amb_rt_free(rt);
}

AMB_TEST(ptab_freed_batches_serve_the_other_scheduler)
{
    amb_rt *rt = new_rt(1024, 2);
    uint32_t idx[300], serial;
    for (uint32_t i = 0; i < 300; i++)
        assert_ok(amb__ptab_alloc(rt, sched(rt, 0), &idx[i], &serial));
    /* Scheduler 1 takes every index left. */
    uint32_t got;
    while (amb__ptab_alloc(rt, sched(rt, 1), &got, &serial) == 0)
        ;
    for (uint32_t i = 0; i < 300; i++)
        amb__ptab_free(rt, sched(rt, 0), idx[i]);
    /* Scheduler 0 keeps less than a batch of freed indices; the batches it
     * gave up serve scheduler 1, in the order they were freed. */
    assert_true(rt->ptab.freed_len >= 300 - rt->ptab.batch);
    assert_ok(amb__ptab_alloc(rt, sched(rt, 1), &got, &serial));
    assert_int_equal(got, idx[0]);
    assert_int_equal(serial, 1);
    amb_rt_free(rt); /* gives the batches back (sched_term) */
}

AMB_TEST(ptab_full_table_is_esyslimit_until_an_index_is_freed)
{
    amb_rt *rt = new_rt(16, 1);
    amb__sched *s = sched(rt, 0);
    uint32_t index, serial;
    for (uint32_t i = 0; i < 16; i++)
        assert_ok(amb__ptab_alloc(rt, s, &index, &serial));
    assert_rc(AMB_ESYSLIMIT, amb__ptab_alloc(rt, s, &index, &serial));
    assert_rc(AMB_ESYSLIMIT, amb__ptab_alloc(rt, NULL, &index, &serial));
    assert_int_equal(atomic_load(&rt->ptab.fresh), 16);
    amb__ptab_free(rt, NULL, 7);
    assert_ok(amb__ptab_alloc(rt, s, &index, &serial));
    assert_int_equal(index, 7);
    amb_rt_free(rt);
}

/* ------------------------------------------------------------------------
 * Threads allocate and free at once, each as a scheduler of its own or as
 * an outside thread: an index is never held twice.
 * ---------------------------------------------------------------------- */

#define THREADS 3
#define HOLD    100
#define ROUNDS  300
#define SIZE    1024

static struct {
    amb_rt *rt;
    atomic_uchar held[SIZE];
    atomic_int doubles;
    atomic_int failed; /* an allocation failed */
} race;

static void *churn(void *arg)
{
    amb__sched *s = arg; /* NULL: an outside thread */
    uint32_t idx[HOLD], serial;
    for (int r = 0; r < ROUNDS; r++) {
        unsigned n = 1 + (unsigned)r % HOLD;
        for (unsigned i = 0; i < n; i++) {
            if (amb__ptab_alloc(race.rt, s, &idx[i], &serial) != 0) {
                atomic_fetch_add(&race.failed, 1);
                n = i; /* free what this round holds, then stop */
                r = ROUNDS;
                break;
            }
            unsigned char no = 0;
            if (!atomic_compare_exchange_strong(&race.held[idx[i]], &no, 1))
                atomic_fetch_add(&race.doubles, 1);
        }
        for (unsigned i = 0; i < n; i++) {
            atomic_store(&race.held[idx[i]], 0);
            amb__ptab_free(race.rt, s, idx[i]);
        }
    }
    return NULL;
}

AMB_TEST(ptab_threads_never_hold_one_index_twice)
{
    race.rt = new_rt(SIZE, THREADS - 1);
    atomic_store(&race.doubles, 0);
    atomic_store(&race.failed, 0);
    pthread_t th[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        amb__sched *s = i + 1 < THREADS ? sched(race.rt, i) : NULL;
        assert_int_equal(pthread_create(&th[i], NULL, churn, s), 0);
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&race.doubles), 0);
    assert_int_equal(atomic_load(&race.failed), 0);
    amb_rt_free(race.rt);
}

/* ------------------------------------------------------------------------
 * Through the process API: a stale pid whose index a new process holds is
 * dead for every call, and a message sent to it goes nowhere.
 * ---------------------------------------------------------------------- */

static struct {
    amb_pid old, new_pid;
    bool same_index, old_alive, new_alive;
    int send_rc;
    amb_term first; /* what the new process received first */
    int rc;
} stale;

static void echo_first(amb_proc *self, void *arg)
{
    amb_pid parent = *(amb_pid *)arg;
    amb_term msg;
    if (amb_receive(self, 5000, &msg) == 0)
        amb_send(self, parent, msg);
}

static void short_lived(amb_proc *self, void *arg)
{
    (void)self;
    (void)arg;
}

static void stale_body(amb_proc *self, void *arg)
{
    (void)arg;
    static amb_pid me;
    me = amb_self(self);
    amb_term ref, msg;
    if ((stale.rc = amb_spawn_monitor(self, short_lived, NULL, &stale.old, &ref)) != 0)
        return;
    if ((stale.rc = amb_receive(self, 5000, &msg)) != 0) /* its DOWN */
        return;
    /* New processes until one gets the old index (the table of 64 is used
     * round-robin); the others echo one message and end. */
    for (int n = 0; n < 1000; n++) {
        amb_pid pid;
        if ((stale.rc = amb_spawn(self, echo_first, &me, &pid)) != 0)
            return;
        if (amb__lpid_index(pid) == amb__lpid_index(stale.old)) {
            stale.new_pid = pid;
            break;
        }
        amb_send(self, pid, amb_atom("skip"));
        if ((stale.rc = amb_receive(self, 5000, &msg)) != 0)
            return;
    }
    stale.same_index = amb__lpid_index(stale.old) == amb__lpid_index(stale.new_pid);
    stale.old_alive = amb_is_process_alive(self, stale.old);
    stale.new_alive = amb_is_process_alive(self, stale.new_pid);
    stale.send_rc = amb_send(self, stale.old, amb_atom("stale"));
    amb_send(self, stale.new_pid, amb_atom("go"));
    if ((stale.rc = amb_receive(self, 5000, &msg)) == 0)
        stale.first = msg;
}

AMB_TEST(ptab_stale_pid_of_a_reused_index_is_dead)
{
    memset(&stale, 0, sizeof stale);
    amb_rt *rt = new_rt(64, 1);
    assert_ok(amb_rt_spawn(rt, stale_body, NULL, NULL));
    assert_ok(amb_rt_run(rt));
    assert_ok(stale.rc);
    assert_true(stale.same_index);
    assert_true(stale.old != stale.new_pid);
    assert_false(stale.old_alive);
    assert_true(stale.new_alive);
    assert_ok(stale.send_rc); /* a send to a dead pid is dropped, as in Erlang */
    assert_true(stale.first == amb_atom("go"));
    amb_rt_free(rt);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(ptab_indices_are_fresh_then_reused_with_the_next_serial),
              AMB_TEST_ENTRY(ptab_indices_are_reused_round_robin_over_the_whole_table),
              AMB_TEST_ENTRY(ptab_lookup_finds_only_the_current_pid),
              AMB_TEST_ENTRY(ptab_serial_wraps_within_its_bits),
              AMB_TEST_ENTRY(ptab_freed_batches_serve_the_other_scheduler),
              AMB_TEST_ENTRY(ptab_full_table_is_esyslimit_until_an_index_is_freed),
              AMB_TEST_ENTRY(ptab_threads_never_hold_one_index_twice),
              AMB_TEST_ENTRY(ptab_stale_pid_of_a_reused_index_is_dead))

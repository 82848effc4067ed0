/*
 * tests/unit/process.c - runtimes and processes (include/ambitious/process.h):
 * spawn, self, is_alive, yield, amb_main, spawning and sending from outside
 * the runtime and from other OS threads, several runtimes at once, send
 * semantics and argument checks, handler processes, process_info,
 * message_queue_len, references, and amb_rt_stop / amb_rt_free.
 *
 * How these tests work: each creates its own runtime with an explicit
 * configuration, usually once with one scheduler and once with two, spawns
 * a first process and runs the runtime until every process has ended. The
 * processes never call cmocka (its asserts longjmp to the test thread's
 * stack): they record observations in a struct passed as arg, and a failed
 * CHECK inside a process records the first failure, stops the runtime and
 * ends the process. The test thread asserts after amb_rt_run returned.
 * Every wait has a deadline (a receive timeout of DEADLINE_MS, or a polling
 * loop that yields and gives up after DEADLINE_MS); nothing sleeps.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "amb_test_rt.h"

/* ===========================================================================
 * Spawn, self, is_alive, yield
 * ======================================================================== */

typedef struct spawn_obs {
    amb_rt *rt;
    amb_pid parent;
    amb_pid child_seen_self; /* what the child saw as amb_self */
    atomic_int child_ran;
    atomic_int done;
} spawn_obs;

static void spawn_child(amb_proc *self, void *arg)
{
    spawn_obs *o = arg;
    o->child_seen_self = amb_self(self);
    atomic_fetch_add(&o->child_ran, 1);
    CHECK_OK(self, amb_send(self, o->parent, amb_self(self)));
    amb_term t = RECV(self); /* wait for 'stop' */
    CHECK(self, t == AMB_ATOM_STOP);
}

static void spawn_parent(amb_proc *self, void *arg)
{
    spawn_obs *o = arg;
    o->parent = amb_self(self);
    CHECK(self, amb_is_local_pid(o->parent));
    CHECK(self, amb_type_of(o->parent) == AMB_T_PID);
    CHECK(self, amb_proc_rt(self) == o->rt);
    CHECK(self, amb_is_process_alive(self, o->parent));
    CHECK(self, amb_proc_heap(self) != NULL);
    CHECK(self, amb_proc_heap(self) == amb_proc_heap(self));

    amb_pid child = AMB_NONE;
    CHECK_OK(self, amb_spawn(self, spawn_child, o, &child));
    CHECK(self, amb_is_local_pid(child));
    CHECK(self, child != o->parent);
    amb_term said = RECV(self);
    CHECK(self, said == child);
    CHECK(self, o->child_seen_self == child);
    CHECK(self, amb_is_process_alive(self, child));
    CHECK_OK(self, amb_send(self, child, AMB_ATOM_STOP));
    WAIT_UNTIL(self, !amb_is_process_alive(self, child));

    /* A NULL out is allowed. */
    CHECK_OK(self, amb_spawn(self, spawn_child, o, NULL));
    amb_term second = RECV(self);
    CHECK(self, second != child);
    CHECK(self, amb_is_process_alive(self, second));
    CHECK_OK(self, amb_send(self, second, AMB_ATOM_STOP));
    atomic_store(&o->done, 1);
}

AMB_TEST(spawn_gives_a_live_pid_that_self_names)
{
    for (unsigned n = 1; n <= 2; n++) {
        spawn_obs o = {0};
        amb_config cfg = config_of(n);
        reset_failure();
        assert_ok(amb_rt_new(&cfg, &o.rt));
        assert_ok(amb_rt_spawn(o.rt, spawn_parent, &o, NULL));
        assert_ok(amb_rt_run(o.rt));
        amb_rt_free(o.rt);
        assert_no_process_failure();
        assert_int_equal(atomic_load(&o.child_ran), 2);
        assert_int_equal(atomic_load(&o.done), 1);
    }
}

typedef struct yield_obs {
    atomic_int other_ran;
    int yields_needed;
} yield_obs;

static void yield_other(amb_proc *self, void *arg)
{
    (void)self;
    yield_obs *o = arg;
    atomic_store(&o->other_ran, 1);
}

static void yield_main(amb_proc *self, void *arg)
{
    yield_obs *o = arg;
    CHECK_OK(self, amb_spawn(self, yield_other, o, NULL));
    /* With one scheduler the other process runs only if we let it; with
     * two it may run on the other one, as late as that one gets to it
     * (this one may meanwhile yield to itself any number of times). */
    int n = 0;
    int64_t until = amb_now_ms() + DEADLINE_MS;
    while (!atomic_load(&o->other_ran) && amb_now_ms() < until) {
        CHECK_OK(self, amb_yield(self));
        n++;
    }
    o->yields_needed = n;
    CHECK(self, atomic_load(&o->other_ran));
}

AMB_TEST(yield_lets_another_process_run)
{
    yield_obs o = {0};
    run_in(1, yield_main, &o);
    assert_int_equal(atomic_load(&o.other_ran), 1);
    /* One scheduler, one other runnable process: one yield is enough. */
    assert_int_equal(o.yields_needed, 1);
    yield_obs o2 = {0};
    run_in(2, yield_main, &o2);
    assert_int_equal(atomic_load(&o2.other_ran), 1);
}

/* Returning from the body ends the process (reason normal). */
static void returns_at_once(amb_proc *self, void *arg)
{
    (void)self;
    atomic_fetch_add((atomic_int *)arg, 1);
}

typedef struct exit_obs {
    atomic_int after_exit; /* must stay 0 */
    atomic_int before_exit;
} exit_obs;

static void exit_deep(amb_proc *self, exit_obs *o, int depth)
{
    if (depth > 0) {
        exit_deep(self, o, depth - 1);
        atomic_fetch_add(&o->after_exit, 1);
        return;
    }
    atomic_fetch_add(&o->before_exit, 1);
    amb_heap *h = amb_proc_heap(self);
    if (h != NULL) /* always: a path that returns keeps gcc's recursion check quiet */
        amb_exit_self(self, AMB_TUPLE(h, AMB_ATOM_SHUTDOWN, amb_string(h, "reason")));
}

static void exit_body(amb_proc *self, void *arg)
{
    exit_deep(self, arg, 20);
}

static void exit_main(amb_proc *self, void *arg)
{
    exit_obs *o = arg;
    amb_pid pid;
    CHECK_OK(self, amb_spawn(self, exit_body, o, &pid));
    WAIT_UNTIL(self, !amb_is_process_alive(self, pid));
    CHECK_EQ(self, atomic_load(&o->before_exit), 1);
}

AMB_TEST(exit_self_ends_the_process_from_any_depth)
{
    for (unsigned n = 1; n <= 2; n++) {
        exit_obs o = {0};
        run_in(n, exit_main, &o);
        assert_int_equal(atomic_load(&o.before_exit), 1);
        assert_int_equal(atomic_load(&o.after_exit), 0);
    }
}

/* ===========================================================================
 * amb_main, spawning and sending from outside
 * ======================================================================== */

static void main_spawns_ten(amb_proc *self, void *arg)
{
    for (int i = 0; i < 10; i++)
        CHECK_OK(self, amb_spawn(self, returns_at_once, arg, NULL));
}

AMB_TEST(amb_main_returns_after_every_process_ended)
{
    for (unsigned n = 1; n <= 2; n++) {
        atomic_int count = 0;
        amb_config cfg = config_of(n);
        reset_failure();
        assert_ok(amb_main(&cfg, main_spawns_ten, &count));
        assert_no_process_failure();
        /* amb_main returned only after all ten children ran and ended. */
        assert_int_equal(atomic_load(&count), 10);
    }
    atomic_int count = 0;
    reset_failure();
    assert_ok(amb_main(NULL, main_spawns_ten, &count)); /* all defaults */
    assert_int_equal(atomic_load(&count), 10);
    assert_rc(AMB_EBADARG, amb_main(NULL, NULL, NULL));
    amb_config bad = {.schedulers = 100000};
    assert_rc(AMB_EBADARG, amb_main(&bad, main_spawns_ten, &count));
}

typedef struct outside_obs {
    amb_rt *rt;
    amb_pid receiver;
    sem_t started;       /* the receiver runs: the runtime is running */
    int thread_send_rc;  /* first failing amb_rt_send, or 0 */
    int thread_spawn_rc; /* amb_rt_spawn during the run */
    int thread_run_rc;   /* amb_rt_run while running: AMB_ESTATE */
    int thread_sem_rc;
    int64_t got[1000];
    int ngot;
    bool got_from_spawned;
    bool got_boxed;
} outside_obs;

#define OUTSIDE_MSGS 1000

static void outside_spawned(amb_proc *self, void *arg)
{
    outside_obs *o = arg;
    CHECK_OK(self, amb_send(self, o->receiver, amb_atom("from_spawned")));
}

static void outside_receiver(amb_proc *self, void *arg)
{
    outside_obs *o = arg;
    CHECK(self, amb_self(self) == o->receiver);
    sem_post(&o->started);
    /* OUTSIDE_MSGS integers, one boxed term and the spawned process's atom,
     * in whatever interleaving; the integers in order. */
    for (int i = 0; i < OUTSIDE_MSGS + 2; i++) {
        amb_term t = RECV(self);
        if (amb_is_small(t)) {
            CHECK(self, o->ngot < OUTSIDE_MSGS);
            o->got[o->ngot++] = int_of(t);
        } else if (t == amb_atom("from_spawned")) {
            o->got_from_spawned = true;
        } else {
            char buf[64];
            CHECK_OK(self, amb_match(t, "{boxed, ~s}", buf, sizeof buf));
            CHECK(self, strcmp(buf, "copied from outside") == 0);
            o->got_boxed = true;
        }
    }
}

static void *outside_thread(void *arg)
{
    outside_obs *o = arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += DEADLINE_MS / 1000;
    o->thread_sem_rc = sem_timedwait(&o->started, &ts);
    if (o->thread_sem_rc != 0)
        return NULL;
    o->thread_run_rc = amb_rt_run(o->rt);
    for (int i = 0; i < OUTSIDE_MSGS && o->thread_send_rc == 0; i++) {
        o->thread_send_rc = amb_rt_send(o->rt, o->receiver, mk_int(i));
        if (i == OUTSIDE_MSGS / 2) {
            /* A boxed term, built on a heap the thread owns and frees:
             * the receiver must get its own copy. */
            amb_heap *h;
            if (amb_heap_new(&h) == 0) {
                amb_term t =
                    AMB_TUPLE(h, amb_atom("boxed"), amb_string(h, "copied from outside"));
                o->thread_send_rc = amb_rt_send(o->rt, o->receiver, t);
                amb_heap_free(h);
            }
            o->thread_spawn_rc = amb_rt_spawn(o->rt, outside_spawned, o, NULL);
        }
    }
    return NULL;
}

AMB_TEST(rt_spawn_and_rt_send_work_from_another_thread_while_running)
{
    for (unsigned n = 1; n <= 2; n++) {
        outside_obs *o = calloc(1, sizeof *o);
        assert_non_null(o);
        amb_config cfg = config_of(n);
        reset_failure();
        assert_ok(amb_rt_new(&cfg, &o->rt));
        sem_init(&o->started, 0, 0);
        assert_ok(amb_rt_spawn(o->rt, outside_receiver, o, &o->receiver));
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, outside_thread, o), 0);
        int rc = amb_rt_run(o->rt);
        pthread_join(th, NULL);
        amb_rt_free(o->rt);
        sem_destroy(&o->started);
        assert_ok(rc);
        assert_no_process_failure();
        assert_int_equal(o->thread_sem_rc, 0);
        assert_rc(AMB_ESTATE, o->thread_run_rc);
        assert_ok(o->thread_send_rc);
        assert_ok(o->thread_spawn_rc);
        assert_int_equal(o->ngot, OUTSIDE_MSGS);
        for (int i = 0; i < OUTSIDE_MSGS; i++)
            assert_int_equal(o->got[i], i);
        assert_true(o->got_from_spawned);
        assert_true(o->got_boxed);
        free(o);
    }
}

typedef struct rerun_obs {
    atomic_int first, second;
} rerun_obs;

static void rerun_first(amb_proc *self, void *arg)
{
    (void)self;
    atomic_fetch_add(&((rerun_obs *)arg)->first, 1);
}

static void rerun_second(amb_proc *self, void *arg)
{
    (void)self;
    atomic_fetch_add(&((rerun_obs *)arg)->second, 1);
}

static void run_from_inside(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_RC(self, AMB_ESTATE, amb_rt_run(amb_proc_rt(self)));
}

AMB_TEST(rt_run_again_runs_processes_spawned_since)
{
    for (unsigned n = 1; n <= 2; n++) {
        rerun_obs o = {0};
        amb_config cfg = config_of(n);
        amb_rt *rt;
        reset_failure();
        assert_ok(amb_rt_new(&cfg, &rt));
        /* Nothing to run: returns at once. */
        assert_ok(amb_rt_run(rt));
        assert_ok(amb_rt_spawn(rt, rerun_first, &o, NULL));
        assert_ok(amb_rt_run(rt));
        assert_int_equal(atomic_load(&o.first), 1);
        assert_int_equal(atomic_load(&o.second), 0);
        assert_ok(amb_rt_spawn(rt, rerun_second, &o, NULL));
        assert_ok(amb_rt_spawn(rt, run_from_inside, &o, NULL));
        assert_ok(amb_rt_run(rt));
        amb_rt_free(rt);
        assert_no_process_failure();
        assert_int_equal(atomic_load(&o.first), 1);
        assert_int_equal(atomic_load(&o.second), 1);
    }
}

/* ---- several runtimes at once ---- */

#define NRUNTIMES 4

typedef struct multi_rt {
    pthread_barrier_t *all_running;
    unsigned nsched;
    amb_pid first_pid;
    int64_t pingpongs;
    int rc; /* amb_rt_new / spawn / run, first failure */
} multi_rt;

static void multi_echo(amb_proc *self, void *arg)
{
    (void)arg;
    for (;;) {
        amb_term t = RECV(self);
        if (t == AMB_ATOM_STOP)
            return;
        amb_pid from = amb_tuple_elem(t, 0);
        CHECK_OK(self, amb_send(self, from, amb_tuple_elem(t, 1)));
        amb_heap_reset(amb_proc_heap(self));
    }
}

static void multi_main(amb_proc *self, void *arg)
{
    multi_rt *m = arg;
    m->first_pid = amb_self(self);
    amb_pid echo;
    CHECK_OK(self, amb_spawn(self, multi_echo, NULL, &echo));
    /* Every runtime is running its processes at this point, at once. */
    pthread_barrier_wait(m->all_running);
    amb_heap *h = amb_proc_heap(self);
    for (int64_t i = 0; i < 2000; i++) {
        CHECK_OK(self, amb_send(self, echo, AMB_TUPLE(h, amb_self(self), mk_int(i))));
        CHECK_EQ(self, int_of(RECV(self)), i);
        m->pingpongs++;
        amb_heap_reset(h);
    }
    CHECK_OK(self, amb_send(self, echo, AMB_ATOM_STOP));
}

static void *multi_thread(void *arg)
{
    multi_rt *m = arg;
    amb_config cfg = config_of(m->nsched);
    amb_rt *rt;
    m->rc = amb_rt_new(&cfg, &rt);
    if (m->rc != 0) {
        pthread_barrier_wait(m->all_running);
        return NULL;
    }
    m->rc = amb_rt_spawn(rt, multi_main, m, NULL);
    if (m->rc == 0)
        m->rc = amb_rt_run(rt);
    else
        pthread_barrier_wait(m->all_running);
    amb_rt_free(rt);
    return NULL;
}

AMB_TEST(several_runtimes_run_at_once_with_distinct_pids)
{
    for (unsigned n = 1; n <= 2; n++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, NRUNTIMES);
        multi_rt m[NRUNTIMES];
        pthread_t th[NRUNTIMES];
        reset_failure();
        for (int i = 0; i < NRUNTIMES; i++) {
            m[i] = (multi_rt){.all_running = &bar, .nsched = n};
            assert_int_equal(pthread_create(&th[i], NULL, multi_thread, &m[i]), 0);
        }
        for (int i = 0; i < NRUNTIMES; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        assert_no_process_failure();
        for (int i = 0; i < NRUNTIMES; i++) {
            assert_ok(m[i].rc);
            assert_int_equal(m[i].pingpongs, 2000);
            assert_true(amb_is_local_pid(m[i].first_pid));
            for (int j = 0; j < i; j++)
                assert_true(m[i].first_pid != m[j].first_pid);
        }
    }
}

/* ===========================================================================
 * Send semantics and bad arguments
 * ======================================================================== */

typedef struct dead_obs {
    amb_pid dead;
} dead_obs;

static void dead_main(amb_proc *self, void *arg)
{
    dead_obs *o = arg;
    atomic_int ran = 0;
    amb_pid pid;
    CHECK_OK(self, amb_spawn(self, returns_at_once, &ran, &pid));
    WAIT_UNTIL(self, !amb_is_process_alive(self, pid));
    /* A dead pid is not an error; the message is dropped. */
    CHECK_OK(self, amb_send(self, pid, AMB_ATOM_OK));
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self,
             amb_send(self, pid, AMB_TUPLE(h, AMB_ATOM_OK, amb_string(h, "boxed"))));
    CHECK(self, !amb_is_process_alive(self, pid));
    amb_proc_info pi;
    CHECK_RC(self, AMB_ENOPROC, amb_process_info(self, pid, &pi));
    /* A new process does not get the dead one's pid, nor its messages. */
    amb_pid again;
    CHECK_OK(self, amb_spawn(self, returns_at_once, &ran, &again));
    CHECK(self, again != pid);
    o->dead = pid;
}

AMB_TEST(send_to_a_dead_pid_is_not_an_error)
{
    for (unsigned n = 1; n <= 2; n++) {
        dead_obs o = {0};
        amb_config cfg = config_of(n);
        amb_rt *rt;
        reset_failure();
        assert_ok(amb_rt_new(&cfg, &rt));
        assert_ok(amb_rt_spawn(rt, dead_main, &o, NULL));
        assert_ok(amb_rt_run(rt));
        assert_no_process_failure();
        /* From outside too, after the run. */
        assert_ok(amb_rt_send(rt, o.dead, AMB_ATOM_OK));
        amb_rt_free(rt);
    }
}

typedef struct foreign_obs {
    amb_pid foreign; /* a pid of another runtime, alive */
    amb_rt *other;
    amb_rt *mine;
} foreign_obs;

static void foreign_never_runs(amb_proc *self, void *arg)
{
    (void)self;
    (void)arg;
}

static void foreign_main(amb_proc *self, void *arg)
{
    foreign_obs *o = arg;
    CHECK_RC(self, AMB_ENOTSUP, amb_send(self, o->foreign, AMB_ATOM_OK));
    CHECK_RC(self, AMB_ENOTSUP, amb_send_after(self, o->foreign, AMB_ATOM_OK, 10, NULL));
    CHECK(self, !amb_is_process_alive(self, o->foreign));
    CHECK_RC(self, AMB_ENOTSUP, amb_rt_send(o->mine, o->foreign, AMB_ATOM_OK));
}

AMB_TEST(send_to_a_pid_of_another_runtime_is_enotsup)
{
    for (unsigned n = 1; n <= 2; n++) {
        foreign_obs o = {0};
        amb_config cfg = config_of(n);
        reset_failure();
        assert_ok(amb_rt_new(&cfg, &o.other));
        assert_ok(amb_rt_spawn(o.other, foreign_never_runs, NULL, &o.foreign));
        assert_ok(amb_rt_new(&cfg, &o.mine));
        assert_ok(amb_rt_spawn(o.mine, foreign_main, &o, NULL));
        assert_ok(amb_rt_run(o.mine));
        assert_no_process_failure();
        assert_rc(AMB_ENOTSUP, amb_rt_send(o.mine, o.foreign, AMB_ATOM_OK));
        /* The other runtime never ran: freeing it discards its process. */
        amb_rt_free(o.mine);
        amb_rt_free(o.other);
    }
}

static int h_ok(amb_proc *self, void *state, amb_term msg)
{
    (void)self;
    (void)state;
    (void)msg;
    return 0;
}

static bool match_any(void *ctx, amb_term msg)
{
    (void)ctx;
    (void)msg;
    return true;
}

static void bad_args_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self);
    amb_term out = AMB_NONE;
    amb_pid pid = AMB_NONE;

    /* Put two messages in the mailbox: no failing call may take one. */
    CHECK_OK(self, amb_send(self, me, mk_int(1)));
    CHECK_OK(self, amb_send(self, me, mk_int(2)));

    CHECK_RC(self, AMB_EBADARG, amb_spawn(NULL, returns_at_once, NULL, &pid));
    CHECK_RC(self, AMB_EBADARG, amb_spawn(self, NULL, NULL, &pid));
    CHECK_RC(self, AMB_EBADARG, amb_spawn_handler(self, NULL, NULL, &pid));
    CHECK_RC(self, AMB_EBADARG,
             amb_spawn_handler(
                 NULL, &(amb_handler){.state_size = 0, .init = NULL, .handle = h_ok},
                 NULL, &pid));
    static const amb_handler no_handle = {.state_size = 16, .init = NULL, .handle = NULL};
    CHECK_RC(self, AMB_EBADARG, amb_spawn_handler(self, &no_handle, NULL, &pid));
    CHECK_RC(self, AMB_EBADARG, amb_spawn_opt(self, NULL, NULL, NULL, &pid, NULL));
    CHECK_RC(self, AMB_EBADARG,
             amb_spawn_opt(self, returns_at_once, NULL,
                           &(amb_spawn_opts){.name = mk_int(3)}, &pid, NULL));
    CHECK_RC(self, AMB_EBADARG,
             amb_spawn_opt(self, returns_at_once, NULL,
                           &(amb_spawn_opts){.name = AMB_ATOM_UNDEFINED}, &pid, NULL));
    CHECK(self, pid == AMB_NONE); /* no failing spawn wrote *out */

    CHECK_RC(self, AMB_EBADARG, amb_send(NULL, me, AMB_ATOM_OK));
    CHECK_RC(self, AMB_EBADARG, amb_send(self, me, AMB_NONE));
    CHECK_RC(self, AMB_EBADARG, amb_send(self, mk_int(42), AMB_ATOM_OK));
    CHECK_RC(self, AMB_EBADARG, amb_send(self, AMB_ATOM_OK, AMB_ATOM_OK));
    CHECK_RC(self, AMB_EBADARG, amb_send(self, AMB_NONE, AMB_ATOM_OK));
    CHECK_RC(self, AMB_EBADARG, amb_send(self, mk_int(1), AMB_ATOM_OK));
    CHECK_RC(self, AMB_EBADARG, amb_send(NULL, AMB_ATOM_OK, AMB_ATOM_OK));
    CHECK_RC(self, AMB_EBADARG, amb_rt_send(NULL, me, AMB_ATOM_OK));
    CHECK_RC(self, AMB_EBADARG, amb_rt_send(amb_proc_rt(self), me, AMB_NONE));
    CHECK_RC(self, AMB_EBADARG, amb_rt_send(amb_proc_rt(self), mk_int(7), AMB_ATOM_OK));

    CHECK_RC(self, AMB_EBADARG, amb_receive(NULL, 0, &out));
    CHECK_RC(self, AMB_EBADARG, amb_receive(NULL, 0, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_receive(self, -2, &out));
    CHECK_RC(self, AMB_EBADARG, amb_receive_if(self, NULL, NULL, 0, &out));
    CHECK_RC(self, AMB_EBADARG, amb_receive_match(self, 0, &out, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_receive_match(self, -5, &out, "_"));
    amb_recv_mark mark = amb_receive_mark(self);
    CHECK_RC(self, AMB_EBADARG, amb_receive_if_after(self, mark, NULL, NULL, 0, &out));
    /* Timeouts: 0 ..= AMB_TIMEOUT_MAX or AMB_INFINITY, nothing else. */
    static const int64_t bad_timeouts[] = {-2, INT64_MIN, AMB_TIMEOUT_MAX + 1, INT64_MAX};
    for (size_t i = 0; i < AMB_COUNTOF(bad_timeouts); i++) {
        int64_t t = bad_timeouts[i];
        CHECK_RC(self, AMB_EBADARG, amb_receive(self, t, &out));
        CHECK_RC(self, AMB_EBADARG, amb_receive_if(self, match_any, NULL, t, &out));
        CHECK_RC(self, AMB_EBADARG,
                 amb_receive_if_after(self, mark, match_any, NULL, t, &out));
        CHECK_RC(self, AMB_EBADARG, amb_receive_match(self, t, &out, "_"));
    }
    CHECK_EQ(self, amb_message_queue_len(self), 2); /* nothing was taken */
    CHECK(self, amb_receive_mark(NULL).seq == 0);

    CHECK_RC(self, AMB_EBADARG, amb_send_after(NULL, me, AMB_ATOM_OK, 1, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_send_after(self, mk_int(5), AMB_ATOM_OK, 1, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_send_after(self, me, AMB_NONE, 1, NULL));
    int64_t left;
    CHECK_RC(self, AMB_EBADARG, amb_cancel_timer(NULL, 1, &left));
    CHECK_RC(self, AMB_EBADARG, amb_cancel_timer(self, 0, &left));
    CHECK_RC(self, AMB_EBADARG, amb_read_timer(self, 0, &left));
    CHECK_RC(self, AMB_EBADARG, amb_read_timer(self, (uint64_t)200 << 56, &left));
    CHECK_RC(self, AMB_EBADARG, amb_sleep(NULL, 1));

    CHECK_RC(self, AMB_EBADARG, amb_register(NULL, amb_atom("x"), me));
    CHECK_RC(self, AMB_EBADARG, amb_register(self, mk_int(1), me));
    CHECK_RC(self, AMB_EBADARG, amb_register(self, AMB_ATOM_UNDEFINED, me));
    CHECK_RC(self, AMB_EBADARG, amb_unregister(self, mk_int(1)));
    CHECK_RC(self, AMB_EBADARG, amb_whereis(self, amb_atom("x"), NULL));
    CHECK_RC(self, AMB_EBADARG, amb_whereis(self, AMB_NIL, &pid));
    CHECK(self, amb_registered(NULL) == AMB_NONE);

    amb_proc_info pi;
    CHECK_RC(self, AMB_EBADARG, amb_process_info(self, me, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_process_info(NULL, me, &pi));
    /* Not a pid is misuse, not "no such process" (issue 13). */
    CHECK_RC(self, AMB_EBADARG, amb_process_info(self, AMB_NONE, &pi));
    CHECK_RC(self, AMB_EBADARG, amb_process_info(self, AMB_ATOM_OK, &pi));

    CHECK_RC(self, AMB_EBADARG, amb_yield(NULL));
    CHECK(self, !amb_is_process_alive(NULL, me));
    CHECK(self, amb_self(NULL) == AMB_NONE);
    CHECK(self, amb_proc_rt(NULL) == NULL);
    CHECK(self, amb_proc_heap(NULL) == NULL);
    CHECK(self, amb_make_ref(NULL) == AMB_NONE);
    CHECK_EQ(self, amb_message_queue_len(NULL), 0);
    CHECK_RC(self, AMB_EBADARG, amb_rt_stop(NULL));
    CHECK_RC(self, AMB_EBADARG, amb_rt_spawn(NULL, returns_at_once, NULL, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_rt_spawn(amb_proc_rt(self), NULL, NULL, NULL));

    /* Nothing was consumed by any of the failing calls. */
    CHECK_EQ(self, amb_message_queue_len(self), 2);
    CHECK_EQ(self, int_of(RECV(self)), 1);
    /* A receive that does not want the message takes it all the same. */
    CHECK_OK(self, amb_receive(self, 0, NULL));
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(bad_arguments_are_ebadarg_and_change_nothing)
{
    run_in(1, bad_args_main, NULL);

    amb_rt *rt = NULL;
    assert_rc(AMB_EBADARG, amb_rt_new(NULL, NULL));
    assert_rc(AMB_EBADARG, amb_rt_new(&(amb_config){.schedulers = 1025}, &rt));
    assert_rc(AMB_EBADARG,
              amb_rt_new(&(amb_config){.max_processes = ((size_t)1 << 28) + 1}, &rt));
    assert_rc(AMB_EBADARG, amb_rt_new(&(amb_config){.stack_size = 1024}, &rt));
    assert_rc(AMB_EBADARG, amb_rt_new(&(amb_config){.max_processes = 3}, &rt));
    assert_rc(AMB_EBADARG, amb_rt_new(&(amb_config){.blocking_threads = 100000}, &rt));
    assert_rc(AMB_EBADARG, amb_rt_new(&(amb_config){.watchdog_ms = -2}, &rt));
    assert_rc(AMB_EBADARG,
              amb_rt_new(&(amb_config){.watchdog_ms = AMB_TIMEOUT_MAX + 1}, &rt));
    /* Node names as erl takes them: Name@Host (issue 13). */
    static const char *bad_names[] = {"",           "@",      "a@",        "@b",
                                      "no_at_sign", "a b@c",  "a@b c",     "a\tb@c",
                                      "a.b@c",      "a@b\nc", "\xc3\xa9@h"};
    for (size_t i = 0; i < AMB_COUNTOF(bad_names); i++)
        assert_rc(AMB_EBADARG, amb_rt_new(&(amb_config){.node_name = bad_names[i]}, &rt));
    assert_null(rt);
    assert_rc(AMB_EBADARG, amb_rt_run(NULL));
    assert_rc(AMB_EBADARG, amb_rt_stop(NULL));
    amb_rt_free(NULL); /* a no-op */
}

AMB_TEST(rt_new_takes_erl_node_names)
{
    static const char *good[] = {"a@b", "node-1_x@host.example.com", "N@127.0.0.1",
                                 "x@h-y_z:1"};
    for (size_t i = 0; i < AMB_COUNTOF(good); i++) {
        amb_rt *rt = NULL;
        assert_rc(0,
                  amb_rt_new(&(amb_config){.schedulers = 1, .node_name = good[i]}, &rt));
        amb_rt_free(rt);
    }
}

/* ===========================================================================
 * The process table's limit
 * ======================================================================== */

typedef struct limit_obs {
    int spawned;
    int after_exit_rc;
} limit_obs;

static void limit_child(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term t = RECV(self);
    CHECK(self, t == AMB_ATOM_STOP);
}

static void limit_main(amb_proc *self, void *arg)
{
    limit_obs *o = arg;
    amb_pid kids[64];
    int n = 0, rc = 0;
    while (n < 64 && (rc = amb_spawn(self, limit_child, NULL, &kids[n])) == 0)
        n++;
    CHECK_RC(self, AMB_ESYSLIMIT, rc);
    o->spawned = n;
    for (int i = 0; i < n; i++)
        CHECK_OK(self, amb_send(self, kids[i], AMB_ATOM_STOP));
    for (int i = 0; i < n; i++)
        WAIT_UNTIL(self, !amb_is_process_alive(self, kids[i]));
    /* Freed entries are used again. */
    amb_pid again;
    o->after_exit_rc = amb_spawn(self, limit_child, NULL, &again);
    if (o->after_exit_rc == 0)
        CHECK_OK(self, amb_send(self, again, AMB_ATOM_STOP));
}

AMB_TEST(full_process_table_is_esyslimit_and_frees_on_exit)
{
    for (unsigned n = 1; n <= 2; n++) {
        limit_obs o = {0};
        amb_config cfg = config_of(n);
        cfg.max_processes = 16;
        amb_rt *rt;
        reset_failure();
        assert_ok(amb_rt_new(&cfg, &rt));
        assert_ok(amb_rt_spawn(rt, limit_main, &o, NULL));
        assert_ok(amb_rt_run(rt));
        amb_rt_free(rt);
        assert_no_process_failure();
        assert_int_equal(o.spawned, 15); /* 16 entries, the main process holds one */
        assert_ok(o.after_exit_rc);
    }
}

/* Issue 13: table indices were reused last-in-first-out, so a spawn/exit
 * loop gave every child the same index and a pid came back (naming a
 * stranger) after 2^22 spawns. Now the indices go round the whole table:
 * an index returns only after about the table's size of other spawns, so a
 * pid returns only after 2^22 times that. */
#define PID_TABLE 1024
#define PID_LOOP  (4 * PID_TABLE)

typedef struct pid_obs {
    uint32_t id[PID_LOOP], serial[PID_LOOP];
    int n;
} pid_obs;

static void ends_at_once(amb_proc *self, void *arg)
{
    (void)self, (void)arg;
}

static void pid_loop_main(amb_proc *self, void *arg)
{
    pid_obs *o = arg;
    for (int i = 0; i < PID_LOOP; i++) {
        amb_pid pid;
        amb_term ref;
        CHECK_OK(self, amb_spawn_monitor(self, ends_at_once, NULL, &pid, &ref));
        CHECK_OK(self, amb_pid_get(pid, NULL, &o->id[i], &o->serial[i], NULL));
        CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL,
                                         "{'DOWN',~v,process,~v,_}", ref, pid));
        o->n++;
    }
}

AMB_TEST(spawn_exit_loop_goes_round_the_whole_table_before_a_pid_index_returns)
{
    static pid_obs o;
    for (unsigned n = 1; n <= 2; n++) {
        memset(&o, 0, sizeof o);
        amb_config cfg = config_of(n);
        cfg.max_processes = PID_TABLE;
        amb_rt *rt;
        reset_failure();
        assert_ok(amb_rt_new(&cfg, &rt));
        assert_ok(amb_rt_spawn(rt, pid_loop_main, &o, NULL));
        assert_ok(amb_rt_run(rt));
        amb_rt_free(rt);
        assert_no_process_failure();
        assert_int_equal(o.n, PID_LOOP);
        /* The closest two uses of one index: only the batches a scheduler
         * takes from and gives to the queue (64 at most) change the order. */
        int min_gap = PID_LOOP;
        for (int i = 0; i < PID_LOOP; i++)
            for (int j = i + 1; j < PID_LOOP && j - i < min_gap; j++)
                if (o.id[j] == o.id[i]) {
                    assert_int_not_equal(o.serial[j], o.serial[i]);
                    min_gap = j - i;
                    break;
                }
        print_message("%u scheduler(s): an index came back after %d spawns at the "
                      "earliest (table %d)\n",
                      n, min_gap, PID_TABLE);
        assert_true(min_gap >= PID_TABLE - 2 * 64 - 2);
    }
}

/* ===========================================================================
 * Handler processes
 * ======================================================================== */

typedef struct counter_state {
    uint8_t zero_check[64]; /* must be zero when init runs */
    void *arg;
    int64_t count;
    int inits;
} counter_state;

typedef struct handler_obs {
    atomic_int inits;
    atomic_int handled;
    atomic_int state_was_zeroed;
    atomic_int state_aligned;
    void *arg_seen;
} handler_obs;

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static int counter_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    handler_obs *o = arg;
    atomic_fetch_add(&o->inits, 1);
    if (all_zero(state, sizeof(counter_state)))
        atomic_fetch_add(&o->state_was_zeroed, 1);
    if ((uintptr_t)state % 16 == 0)
        atomic_fetch_add(&o->state_aligned, 1);
    counter_state *st = state;
    st->arg = arg;
    st->inits++;
    o->arg_seen = arg;
    return 0;
}

/* msg = {From, N}: replies {Self, Count, N}; 'die' exits; {error, Code}
 * returns Code. */
static int counter_handle(amb_proc *self, void *state, amb_term msg)
{
    counter_state *st = state;
    if (msg == amb_atom("die"))
        amb_exit_self(self, amb_atom("died"));
    if (amb_is_record(msg, AMB_ATOM_ERROR, 2))
        return (int)int_of(amb_tuple_elem(msg, 1));
    st->count++;
    if (st->arg != NULL)
        atomic_fetch_add(&((handler_obs *)st->arg)->handled, 1);
    amb_heap *h = amb_proc_heap(self);
    amb_term reply =
        AMB_TUPLE(h, amb_self(self), mk_int(st->count), amb_tuple_elem(msg, 1));
    int rc = amb_send(self, amb_tuple_elem(msg, 0), reply);
    amb_heap_reset(h);
    return rc;
}

static const amb_handler counter_with_init = {
    .state_size = sizeof(counter_state), .init = counter_init, .handle = counter_handle};
static const amb_handler counter_no_init = {
    .state_size = sizeof(counter_state), .init = NULL, .handle = counter_handle};

static void handler_main(amb_proc *self, void *arg)
{
    handler_obs *o = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid hp;
    CHECK_OK(self, amb_spawn_handler(self, &counter_with_init, o, &hp));
    CHECK(self, amb_is_process_alive(self, hp));
    for (int64_t i = 1; i <= 100; i++) {
        CHECK_OK(self,
                 amb_send(self, hp, AMB_TUPLE(h, amb_self(self), mk_int(1000 + i))));
        amb_term r = RECV(self);
        CHECK(self, amb_tuple_elem(r, 0) == hp);
        /* The state persists between messages: the count goes on. */
        CHECK_EQ(self, int_of(amb_tuple_elem(r, 1)), i);
        CHECK_EQ(self, int_of(amb_tuple_elem(r, 2)), 1000 + i);
        amb_heap_reset(h);
    }
    CHECK_EQ(self, atomic_load(&o->inits), 1);

    /* Without init: it does not run at all before its first message. */
    amb_pid lazy;
    CHECK_OK(self, amb_spawn_handler(self, &counter_no_init, o, &lazy));
    for (int i = 0; i < 10; i++)
        amb_yield(self);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, lazy, &pi));
    CHECK_EQ(self, pi.status, AMB_STATUS_WAITING);
    CHECK(self, pi.current_function == &counter_no_init);
    int before = atomic_load(&o->handled);
    CHECK_OK(self, amb_send(self, lazy, AMB_TUPLE(h, amb_self(self), mk_int(7))));
    amb_term r = RECV(self);
    CHECK(self, amb_tuple_elem(r, 0) == lazy);
    CHECK_EQ(self, int_of(amb_tuple_elem(r, 1)), 1);
    /* Its state had no init: arg is NULL there (zeroed), so it did not count. */
    CHECK_EQ(self, atomic_load(&o->handled), before);
    CHECK_EQ(self, atomic_load(&o->inits), 1);

    /* amb_exit_self in handle ends it; later messages are not handled. */
    CHECK_OK(self, amb_send(self, hp, amb_atom("die")));
    CHECK_OK(self, amb_send(self, hp, AMB_TUPLE(h, amb_self(self), mk_int(1))));
    WAIT_UNTIL(self, !amb_is_process_alive(self, hp));
    /* A negative return ends it too. */
    CHECK_OK(self,
             amb_send(self, lazy, AMB_TUPLE(h, AMB_ATOM_ERROR, mk_int(AMB_EBADARG))));
    WAIT_UNTIL(self, !amb_is_process_alive(self, lazy));
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, &r));
}

AMB_TEST(handler_state_is_zeroed_aligned_and_persistent)
{
    for (unsigned n = 1; n <= 2; n++) {
        handler_obs o = {0};
        run_in(n, handler_main, &o);
        assert_int_equal(atomic_load(&o.inits), 1);
        assert_int_equal(atomic_load(&o.state_was_zeroed), 1);
        assert_int_equal(atomic_load(&o.state_aligned), 1);
        assert_ptr_equal(o.arg_seen, &o);
        assert_int_equal(atomic_load(&o.handled), 100);
    }
}

static int failing_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    (void)state;
    atomic_fetch_add((atomic_int *)arg, 1);
    return AMB_ENOMEM;
}

static const amb_handler init_fails = {
    .state_size = 0, .init = failing_init, .handle = h_ok};

static void init_fails_main(amb_proc *self, void *arg)
{
    amb_pid hp;
    CHECK_OK(self, amb_spawn_handler(self, &init_fails, arg, &hp));
    WAIT_UNTIL(self, !amb_is_process_alive(self, hp));
    /* Messages to it now are dropped, not an error. */
    CHECK_OK(self, amb_send(self, hp, AMB_ATOM_OK));
}

AMB_TEST(handler_init_error_ends_the_process)
{
    for (unsigned n = 1; n <= 2; n++) {
        atomic_int inits = 0;
        run_in(n, init_fails_main, &inits);
        assert_int_equal(atomic_load(&inits), 1);
    }
}

/* ---- 100k messages to one handler, per-sender order ---- */

#define ORDER_SENDERS 2
#define ORDER_MSGS    50000

typedef struct order_state {
    struct order_obs *o;
    int64_t next[ORDER_SENDERS];
    int64_t total;
    int done;
    bool in_order;
} order_state;

typedef struct order_obs {
    amb_pid handler;
    amb_pid main;
    int64_t total;
    bool in_order;
} order_obs;

static int order_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    order_state *st = state;
    st->o = arg;
    st->in_order = true;
    return 0;
}

/* Messages are integers sender << 32 | seq, then 'done' from each sender. */
static int order_handle(amb_proc *self, void *state, amb_term msg)
{
    order_state *st = state;
    if (msg == AMB_ATOM_STOP)
        amb_exit_self(self, AMB_ATOM_NORMAL);
    if (msg == amb_atom("done")) {
        if (++st->done == ORDER_SENDERS) {
            amb_heap *h = amb_proc_heap(self);
            amb_term r = AMB_TUPLE(h, mk_int(st->total), amb_bool(st->in_order));
            return amb_send(self, st->o->main, r);
        }
        return 0;
    }
    int64_t v = int_of(msg);
    int64_t k = v >> 32, seq = v & 0xffffffff;
    if (k < 0 || k >= ORDER_SENDERS || seq != st->next[k])
        st->in_order = false;
    else
        st->next[k]++;
    st->total++;
    return 0;
}

static const amb_handler order_handler = {
    .state_size = sizeof(order_state), .init = order_init, .handle = order_handle};

static void order_sender(amb_proc *self, void *arg)
{
    order_obs *o = arg;
    amb_term k = RECV(self);
    for (int64_t i = 0; i < ORDER_MSGS; i++)
        CHECK_OK(self, amb_send(self, o->handler, mk_int(int_of(k) << 32 | i)));
    CHECK_OK(self, amb_send(self, o->handler, amb_atom("done")));
}

static void order_main(amb_proc *self, void *arg)
{
    order_obs *o = arg;
    o->main = amb_self(self);
    CHECK_OK(self, amb_spawn_handler(self, &order_handler, o, &o->handler));
    for (int k = 0; k < ORDER_SENDERS; k++) {
        amb_pid s;
        CHECK_OK(self, amb_spawn(self, order_sender, o, &s));
        CHECK_OK(self, amb_send(self, s, mk_int(k)));
    }
    amb_term r;
    CHECK_OK(self, amb_receive(self, 60000, &r));
    o->total = int_of(amb_tuple_elem(r, 0));
    o->in_order = amb_tuple_elem(r, 1) == AMB_ATOM_TRUE;
    /* A handler ends only by exit: stop it. */
    CHECK_OK(self, amb_send(self, o->handler, AMB_ATOM_STOP));
}

AMB_TEST(handler_takes_100k_messages_in_per_sender_order)
{
    for (unsigned n = 1; n <= 2; n++) {
        order_obs o = {0};
        amb_config cfg = config_of(n);
        amb_rt *rt;
        reset_failure();
        assert_ok(amb_rt_new(&cfg, &rt));
        assert_ok(amb_rt_spawn(rt, order_main, &o, NULL));
        assert_ok(amb_rt_run(rt));
        amb_rt_free(rt);
        assert_no_process_failure();
        assert_int_equal(o.total, (int64_t)ORDER_SENDERS * ORDER_MSGS);
        assert_true(o.in_order);
    }
}

/* ---- a handler that blocks in a nested receive inside handle() ---- */

typedef struct nested_obs {
    atomic_int junk_seen;
} nested_obs;

typedef struct nested_state {
    nested_obs *o;
} nested_state;

static int nested_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    ((nested_state *)state)->o = arg;
    return 0;
}

static bool is_one_to_six(amb_term t)
{
    if (!amb_is_tuple(t) || amb_tuple_arity(t) != 6)
        return false;
    for (size_t i = 0; i < 6; i++)
        if (int_of(amb_tuple_elem(t, i)) != (int64_t)i + 1)
            return false;
    return true;
}

/* {req, From, Helper, {1,2,3,4,5,6}}: asks Helper and blocks for its
 * answer, then checks that its stack and its message survived the wait,
 * and replies {done, Answer, MsgIntact, StackIntact, HadStack} to From.
 * {junk, 0, 0, {9,...}} is counted and ignored; 'die' ends the process. */
static int nested_handle(amb_proc *self, void *state, amb_term msg)
{
    nested_state *st = state;
    amb_heap *h = amb_proc_heap(self);
    if (msg == amb_atom("die"))
        amb_exit_self(self, AMB_ATOM_NORMAL);
    if (amb_is_record(msg, amb_atom("junk"), 4)) {
        atomic_fetch_add(&st->o->junk_seen, 1);
        return 0;
    }
    amb_pid from = amb_tuple_elem(msg, 1), helper = amb_tuple_elem(msg, 2);
    volatile uint64_t locals[64];
    for (unsigned i = 0; i < 64; i++)
        locals[i] = i * 0x9e3779b97f4a7c15ull;

    CHECK_OK(self, amb_send(self, helper, AMB_TUPLE(h, amb_atom("ask"), amb_self(self))));
    int64_t answer = 0;
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "{answer, ~l}", &answer));

    bool stack_ok = true;
    for (unsigned i = 0; i < 64; i++)
        stack_ok = stack_ok && locals[i] == i * 0x9e3779b97f4a7c15ull;
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    /* A message of the same shape as msg: if msg's storage had been
     * released by the nested receive, this copy would take it over. */
    amb_term junk = AMB_TUPLE(
        h, amb_atom("junk"), mk_int(0), mk_int(0),
        AMB_TUPLE(h, mk_int(9), mk_int(9), mk_int(9), mk_int(9), mk_int(9), mk_int(9)));
    CHECK_OK(self, amb_send(self, amb_self(self), junk));
    /* msg is borrowed until handle returns: still intact here. */
    bool msg_ok = amb_is_record(msg, amb_atom("req"), 4) &&
                  amb_tuple_elem(msg, 1) == from && is_one_to_six(amb_tuple_elem(msg, 3));
    amb_term r = AMB_TUPLE(h, amb_atom("done"), mk_int(answer), amb_bool(msg_ok),
                           amb_bool(stack_ok), amb_bool(pi.stack_size > 0));
    CHECK_OK(self, amb_send(self, from, r));
    amb_heap_reset(h);
    return 0;
}

static const amb_handler nested_handler = {
    .state_size = sizeof(nested_state), .init = nested_init, .handle = nested_handle};

static void nested_helper(amb_proc *self, void *arg)
{
    (void)arg;
    int64_t n = 0;
    for (;;) {
        amb_term t = RECV(self);
        if (t == AMB_ATOM_STOP)
            return;
        amb_heap *h = amb_proc_heap(self);
        CHECK_OK(self, amb_send(self, amb_tuple_elem(t, 1),
                                AMB_TUPLE(h, amb_atom("answer"), mk_int(42 + n++))));
        amb_heap_reset(h);
    }
}

typedef struct nested_main_obs {
    nested_obs no;
    int rounds;
    int msg_intact;
    int stack_intact;
    int had_stack;
} nested_main_obs;

static void nested_main(amb_proc *self, void *arg)
{
    nested_main_obs *o = arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid hp, helper;
    CHECK_OK(self, amb_spawn_handler(self, &nested_handler, &o->no, &hp));
    CHECK_OK(self, amb_spawn(self, nested_helper, NULL, &helper));
    for (int i = 0; i < 20; i++) {
        amb_term req = AMB_TUPLE(h, amb_atom("req"), amb_self(self), helper,
                                 AMB_TUPLE(h, mk_int(1), mk_int(2), mk_int(3), mk_int(4),
                                           mk_int(5), mk_int(6)));
        CHECK_OK(self, amb_send(self, hp, req));
        amb_term r = RECV(self);
        CHECK(self, amb_is_record(r, amb_atom("done"), 5));
        CHECK_EQ(self, int_of(amb_tuple_elem(r, 1)), 42 + i);
        o->msg_intact += amb_tuple_elem(r, 2) == AMB_ATOM_TRUE;
        o->stack_intact += amb_tuple_elem(r, 3) == AMB_ATOM_TRUE;
        o->had_stack += amb_tuple_elem(r, 4) == AMB_ATOM_TRUE;
        o->rounds++;
        amb_heap_reset(h);
    }
    WAIT_UNTIL(self, atomic_load(&o->no.junk_seen) == 20);
    CHECK_OK(self, amb_send(self, helper, AMB_ATOM_STOP));
    CHECK_OK(self, amb_send(self, hp, amb_atom("die")));
}

AMB_TEST(handler_nested_receive_keeps_its_stack_and_its_message)
{
    for (unsigned n = 1; n <= 2; n++) {
        nested_main_obs o = {0};
        run_in(n, nested_main, &o);
        assert_int_equal(o.rounds, 20);
        assert_int_equal(o.stack_intact, 20);
        assert_int_equal(o.had_stack, 20);
        /* handle()'s msg is borrowed until handle returns (process.h), so a
         * nested receive must not release it. */
        assert_int_equal(o.msg_intact, 20);
    }
}

/* ===========================================================================
 * process_info and message_queue_len
 * ======================================================================== */

static void info_self_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self);
    CHECK_OK(self, amb_register(self, amb_atom("info_self"), me));
    for (int i = 0; i < 3; i++)
        CHECK_OK(self, amb_send(self, me, mk_int(i)));
    amb_heap *h = amb_proc_heap(self);
    CHECK(self, amb_string(h, "some heap data to make the heap non-empty") != AMB_NONE);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, me, &pi));
    CHECK_EQ(self, pi.status, AMB_STATUS_RUNNING);
    CHECK_EQ(self, pi.message_queue_len, 3);
    CHECK(self, pi.registered_name == amb_atom("info_self"));
    CHECK(self, pi.current_function == (const void *)info_self_main);
    CHECK(self, pi.stack_size >= 16384);
    CHECK(self, pi.heap_size > 0);
    CHECK(self, pi.memory >= pi.stack_size + pi.heap_size);
    CHECK(self, pi.reductions > 0);
    CHECK_EQ(self, pi.links, 0);
    CHECK_EQ(self, pi.monitors, 0);
    CHECK(self, !pi.trap_exit);
    CHECK_OK(self, amb_unregister(self, amb_atom("info_self")));
    CHECK_OK(self, amb_process_info(self, me, &pi));
    CHECK(self, pi.registered_name == AMB_NONE);
}

AMB_TEST(process_info_of_self)
{
    /* Spawned as it is: its process_info names info_self_main. */
    for (unsigned n = 1; n <= 2; n++) {
        amb_test_cfg cfg = {.rt = config_of(n), .may_not_finish = true};
        amb_test_run(&cfg, info_self_main, NULL);
    }
}

static bool match_stop(void *ctx, amb_term msg)
{
    (void)ctx;
    return msg == AMB_ATOM_STOP;
}

static void info_waiter(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, amb_register(self, amb_atom("info_waiter"), amb_self(self)));
    amb_term t;
    CHECK_OK(self, amb_receive_if(self, match_stop, NULL, 60000, &t));
}

static void info_other_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid w;
    CHECK_OK(self, amb_spawn(self, info_waiter, NULL, &w));
    amb_pid found = AMB_NONE;
    WAIT_UNTIL(self, amb_whereis(self, amb_atom("info_waiter"), &found) == 0);
    CHECK(self, found == w);
    for (int i = 0; i < 3; i++)
        CHECK_OK(self, amb_send(self, w, amb_atom("x")));
    amb_proc_info pi = {0};
    WAIT_UNTIL(self, amb_process_info(self, w, &pi) == 0 &&
                         pi.status == AMB_STATUS_WAITING && pi.message_queue_len == 3);
    CHECK(self, pi.registered_name == amb_atom("info_waiter"));
    CHECK(self, pi.current_function == (const void *)info_waiter);
    CHECK(self, pi.reductions > 0);
    CHECK_OK(self, amb_send(self, w, AMB_ATOM_STOP));
    WAIT_UNTIL(self, !amb_is_process_alive(self, w));
    CHECK_RC(self, AMB_ENOPROC, amb_process_info(self, w, &pi));
}

AMB_TEST(process_info_of_a_process_blocked_in_receive)
{
    run_in(1, info_other_main, NULL);
    run_in(2, info_other_main, NULL);
}

typedef struct info_stack_obs {
    size_t stack_size;
    size_t memory;
} info_stack_obs;

static void info_stack_main(amb_proc *self, void *arg)
{
    info_stack_obs *o = arg;
    amb_pid w;
    CHECK_OK(self, amb_spawn(self, info_waiter, NULL, &w));
    amb_proc_info pi = {0};
    WAIT_UNTIL(self,
               amb_process_info(self, w, &pi) == 0 && pi.status == AMB_STATUS_WAITING);
    o->stack_size = pi.stack_size;
    o->memory = pi.memory;
    CHECK_OK(self, amb_send(self, w, AMB_ATOM_STOP));
}

AMB_TEST(process_info_of_another_stackful_process_reports_its_stack)
{
    /* process.h: stack_size is the stack reserved, 0 only for an idle
     * handler; a stackful process blocked in receive holds its stack. */
    info_stack_obs o = {0};
    run_in(1, info_stack_main, &o);
    assert_true(o.stack_size >= 16384);
    assert_true(o.memory >= o.stack_size);
}

typedef struct busy_obs {
    atomic_int started;
    atomic_int release;
    int received;
    uint64_t info_ms; /* how long amb_process_info took */
    int status;
    size_t queue_len;
} busy_obs;

#define BUSY_MAX_MS 3000

static void busy_body(amb_proc *self, void *arg)
{
    busy_obs *o = arg;
    atomic_store(&o->started, 1);
    /* Runs without looking at its mailbox until released (or, so that a
     * process_info that waits for it cannot hang the test, for at most
     * BUSY_MAX_MS). */
    int64_t until = amb_now_ms() + BUSY_MAX_MS;
    while (!atomic_load(&o->release) && amb_now_ms() < until)
        amb_yield(self);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(self, int_of(RECV(self)), i);
    o->received = 5;
}

static void busy_main(amb_proc *self, void *arg)
{
    busy_obs *o = arg;
    amb_pid b;
    CHECK_OK(self, amb_spawn(self, busy_body, o, &b));
    WAIT_UNTIL(self, atomic_load(&o->started));
    for (int i = 0; i < 5; i++)
        CHECK_OK(self, amb_send(self, b, mk_int(i)));
    amb_proc_info pi;
    int64_t t0 = amb_now_ms();
    CHECK_OK(self, amb_process_info(self, b, &pi));
    o->info_ms = amb_now_ms() - t0;
    o->status = (int)pi.status;
    o->queue_len = pi.message_queue_len;
    atomic_store(&o->release, 1);
}

AMB_TEST(process_info_counts_messages_the_process_has_not_looked_at)
{
    for (unsigned n = 1; n <= 2; n++) {
        busy_obs o = {0};
        run_in(n, busy_main, &o);
        assert_int_equal(o.received, 5);
        /* Erlang: messages a process has not yet looked at are in its
         * queue; process_info after five sends from this process reports
         * all five. */
        assert_int_equal(o.queue_len, 5);
    }
}

AMB_TEST(process_info_of_a_busy_process_does_not_wait_for_its_next_receive)
{
    /* A snapshot (process.h): asking about a process that is computing
     * (here: yielding in a loop, never receiving) answers promptly, as
     * BEAM's process_info does (signals are handled whenever the target
     * is scheduled, not only in receive). */
    for (unsigned n = 1; n <= 2; n++) {
        busy_obs o = {0};
        run_in(n, busy_main, &o);
        print_message("%u scheduler(s): process_info of a busy process took %llu ms\n", n,
                      (unsigned long long)o.info_ms);
        assert_true(o.info_ms < BUSY_MAX_MS / 2);
        assert_true(o.status == AMB_STATUS_RUNNABLE || o.status == AMB_STATUS_RUNNING);
    }
}

static bool match_int_3(void *ctx, amb_term msg)
{
    (void)ctx;
    return int_of(msg) == 3;
}

static void qlen_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid me = amb_self(self);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
    for (int i = 1; i <= 5; i++)
        CHECK_OK(self, amb_send(self, me, mk_int(i)));
    CHECK_EQ(self, amb_message_queue_len(self), 5);
    CHECK_EQ(self, int_of(RECV(self)), 1);
    CHECK_EQ(self, amb_message_queue_len(self), 4);
    amb_term t;
    CHECK_OK(self, amb_receive_if(self, match_int_3, NULL, 0, &t));
    CHECK_EQ(self, amb_message_queue_len(self), 3);
    CHECK_EQ(self, int_of(RECV(self)), 2);
    CHECK_EQ(self, int_of(RECV(self)), 4);
    CHECK_EQ(self, int_of(RECV(self)), 5);
    CHECK_EQ(self, amb_message_queue_len(self), 0);
}

AMB_TEST(message_queue_len_counts_waiting_messages)
{
    run_in(1, qlen_main, NULL);
    run_in(2, qlen_main, NULL);
}

/* process_info's memory counts the mailbox (issue 13, item 15): 8M queued
 * messages were 2.5 GiB reported as 61 KB. N messages of 12 words each add
 * at least N * 96 bytes, for another process (answered by it) and for
 * oneself. */
#define FLOOD_N (20000 / SLOW)

static amb_term flood_msg(amb_heap *h, int i)
{
    return AMB_TUPLE(h, amb_atom("flood"), mk_int(i),
                     AMB_TUPLE(h, mk_int(1), mk_int(2), mk_int(3), mk_int(4), mk_int(5),
                               mk_int(6), mk_int(7), mk_int(8)));
}

static void info_memory_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid w;
    CHECK_OK(self, amb_spawn(self, info_waiter, NULL, &w));
    amb_proc_info before, after;
    WAIT_UNTIL(self, amb_process_info(self, w, &before) == 0 &&
                         before.status == AMB_STATUS_WAITING);
    amb_heap_mark mk = amb_heap_save(h);
    for (int i = 0; i < FLOOD_N; i++)
        CHECK_OK(self, amb_send(self, w, flood_msg(h, i)));
    amb_heap_rewind(h, mk);
    CHECK_OK(self, amb_process_info(self, w, &after));
    CHECK_EQ(self, after.message_queue_len, FLOOD_N);
    CHECK(self, after.memory >= before.memory + (size_t)FLOOD_N * 96);
    /* The same for oneself. */
    CHECK_OK(self, amb_process_info(self, amb_self(self), &before));
    for (int i = 0; i < FLOOD_N; i++)
        CHECK_OK(self, amb_send(self, amb_self(self), flood_msg(h, i)));
    amb_heap_rewind(h, mk);
    CHECK_OK(self, amb_process_info(self, amb_self(self), &after));
    CHECK(self, after.memory >= before.memory + (size_t)FLOOD_N * 96);
    /* Taken, they are no longer counted. */
    for (int i = 0; i < FLOOD_N; i++)
        RECV(self);
    amb_term m; /* a receive, even one that times out, ends the last borrow */
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, &m));
    CHECK_OK(self, amb_process_info(self, amb_self(self), &after));
    CHECK(self, after.memory < before.memory + 1024);
    CHECK_OK(self, amb_send(self, w, AMB_ATOM_STOP));
}

AMB_TEST(process_info_memory_counts_the_messages_a_process_holds)
{
    run_in(1, info_memory_main, NULL);
    run_in(2, info_memory_main, NULL);
}

/* OTP's process_info/2 items, as terms: links, monitors (by pid and by
 * name), monitored_by and messages as lists, and the rest; an atom gives
 * {Item, Value}, a list [{Item, Value}] in order (recorded on OTP 25). */
static bool text_is(amb_term t, const char *want)
{
    char buf[1024];
    return amb_print(t, buf, sizeof buf, NULL) == 0 && strcmp(buf, want) == 0;
}

static bool has_member(amb_term list, amb_term x)
{
    for (amb_term l = list; amb_is_cons(l); l = amb_list_tail(l))
        if (amb_equal(amb_list_head(l), x))
            return true;
    return false;
}

static size_t length_of(amb_term list)
{
    size_t n = 0;
    for (amb_term l = list; amb_is_cons(l); l = amb_list_tail(l))
        n++;
    return n;
}

static void items_watcher(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    CHECK_OK(self, amb_monitor(self, amb_atom("info_waiter"), NULL));
    CHECK_OK(self, amb_send(self, parent, amb_atom("watching")));
    CHECK(self, RECV(self) == AMB_ATOM_STOP);
}

static void info_items_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self), w, m;
    CHECK_OK(self, amb_spawn(self, info_waiter, NULL, &w));
    amb_pid found = AMB_NONE;
    WAIT_UNTIL(self, amb_whereis(self, amb_atom("info_waiter"), &found) == 0);
    CHECK_OK(self, amb_link(self, w));
    amb_term r1, r2;
    CHECK_OK(self, amb_monitor(self, w, &r1));
    CHECK_OK(self, amb_monitor(self, amb_atom("info_waiter"), &r2));
    CHECK_OK(self, amb_spawn(self, items_watcher, (void *)(uintptr_t)me, &m));
    CHECK(self, RECV(self) == amb_atom("watching"));
    CHECK_OK(self, amb_send(self, w, amb_atom("a")));
    CHECK_OK(self, amb_send(self, w, AMB_TUPLE(h, amb_atom("b"), mk_int(1))));
    amb_term items, out;
    static const char list[] = "[messages,message_queue_len,links,registered_name,status,"
                               "trap_exit,monitored_by,monitors]";
    CHECK_OK(self, amb_parse(h, list, strlen(list), &items, NULL));
    CHECK_OK(self, amb_process_info_items(self, w, items, &out));
    CHECK_EQ(self, length_of(out), 8);
    amb_term v[8];
    size_t i = 0;
    for (amb_term l = out; amb_is_cons(l); l = amb_list_tail(l), i++) {
        CHECK(self, amb_tuple_arity(amb_list_head(l)) == 2);
        CHECK(self, amb_tuple_elem(amb_list_head(l), 0) == amb_list_head(items));
        items = amb_list_tail(items);
        v[i] = amb_tuple_elem(amb_list_head(l), 1);
    }
    CHECK(self, text_is(v[0], "[a,{b,1}]"));
    CHECK(self, text_is(v[1], "2"));
    CHECK(self, length_of(v[2]) == 1 && has_member(v[2], me));
    CHECK(self, v[3] == amb_atom("info_waiter"));
    CHECK(self, v[4] == amb_atom("waiting"));
    CHECK(self, v[5] == AMB_ATOM_FALSE);
    CHECK(self, length_of(v[6]) == 3 && has_member(v[6], me) && has_member(v[6], m));
    CHECK(self, v[7] == AMB_NIL);
    /* The monitors this process holds: one by pid, one by name. */
    CHECK_OK(self, amb_process_info_items(self, me, amb_atom("monitors"), &out));
    CHECK(self, amb_tuple_elem(out, 0) == amb_atom("monitors"));
    amb_term mons = amb_tuple_elem(out, 1);
    CHECK_EQ(self, length_of(mons), 2);
    CHECK(self, has_member(mons, AMB_TUPLE(h, AMB_ATOM_PROCESS, w)));
    amb_term by_name;
    static const char name_text[] = "{process,{info_waiter,nonode@nohost}}";
    CHECK_OK(self, amb_parse(h, name_text, strlen(name_text), &by_name, NULL));
    CHECK(self, has_member(mons, by_name));
    /* A single item, of oneself: {Item, Value}; no name is []. */
    CHECK_OK(self, amb_send(self, me, amb_atom("mine")));
    CHECK_OK(self, amb_process_info_items(self, me, amb_atom("messages"), &out));
    CHECK(self, text_is(out, "{messages,[mine]}"));
    CHECK_OK(self, amb_process_info_items(self, me, amb_atom("registered_name"), &out));
    CHECK(self, text_is(out, "{registered_name,[]}"));
    CHECK_OK(self, amb_process_info_items(self, me, AMB_NIL, &out));
    CHECK(self, out == AMB_NIL);
    CHECK(self, RECV(self) == amb_atom("mine"));
    /* Arguments, as OTP's badarg; a dead process is noproc (OTP: undefined). */
    amb_term bad[] = {amb_atom("nonsense"), mk_int(42), AMB_NONE,
                      amb_cons(h, amb_atom("links"), amb_atom("x")),
                      amb_cons(h, amb_atom("links"), amb_cons(h, mk_int(1), AMB_NIL))};
    for (size_t k = 0; k < AMB_COUNTOF(bad); k++)
        CHECK_RC(self, AMB_EBADARG, amb_process_info_items(self, w, bad[k], &out));
    CHECK_RC(self, AMB_EBADARG,
             amb_process_info_items(self, amb_atom("x"), amb_atom("links"), &out));
    CHECK_RC(self, AMB_EBADARG, amb_process_info_items(self, w, amb_atom("links"), NULL));
    CHECK_OK(self, amb_demonitor(self, r1, AMB_DEMONITOR_FLUSH));
    CHECK_OK(self, amb_demonitor(self, r2, AMB_DEMONITOR_FLUSH));
    CHECK_OK(self, amb_unlink(self, w));
    CHECK_OK(self, amb_send(self, w, AMB_ATOM_STOP));
    CHECK_OK(self, amb_send(self, m, AMB_ATOM_STOP));
    WAIT_UNTIL(self, !amb_is_process_alive(self, w));
    CHECK_RC(self, AMB_ENOPROC, amb_process_info_items(self, w, amb_atom("links"), &out));
}

AMB_TEST(process_info_items_give_links_monitors_and_messages_as_lists)
{
    run_in(1, info_items_main, NULL);
    run_in(2, info_items_main, NULL);
}

/* ===========================================================================
 * References
 * ======================================================================== */

#define REF_PROCS 4
#define REF_EACH  25000

typedef struct ref_obs {
    amb_heap *heaps[REF_PROCS];
    amb_term refs[REF_PROCS * REF_EACH];
    atomic_int next_proc;
} ref_obs;

static void ref_maker(amb_proc *self, void *arg)
{
    ref_obs *o = arg;
    int k = atomic_fetch_add(&o->next_proc, 1);
    CHECK_OK(self, amb_heap_new(&o->heaps[k]));
    for (int i = 0; i < REF_EACH; i++) {
        amb_term r = amb_make_ref(self);
        CHECK(self, amb_type_of(r) == AMB_T_REF);
        CHECK_OK(self, amb_term_copy(o->heaps[k], r, &o->refs[k * REF_EACH + i]));
        if (i % 1000 == 999) {
            amb_heap_reset(amb_proc_heap(self));
            amb_yield(self); /* let the others interleave, across schedulers */
        }
    }
}

static void ref_main(amb_proc *self, void *arg)
{
    for (int k = 0; k < REF_PROCS; k++)
        CHECK_OK(self, amb_spawn(self, ref_maker, arg, NULL));
}

static int cmp_terms(const void *a, const void *b)
{
    return amb_compare(*(const amb_term *)a, *(const amb_term *)b);
}

AMB_TEST(make_ref_gives_100k_distinct_references)
{
    for (unsigned n = 1; n <= 2; n++) {
        ref_obs *o = calloc(1, sizeof *o);
        assert_non_null(o);
        /* The references outlive the run on heaps the test frees. */
        amb_test_cfg cfg = {.rt = config_of(n), .keeps_memory = true};
        amb_test_run(&cfg, ref_main, o);
        assert_int_equal(atomic_load(&o->next_proc), REF_PROCS);
        size_t total = (size_t)REF_PROCS * REF_EACH;
        qsort(o->refs, total, sizeof(amb_term), cmp_terms);
        for (size_t i = 1; i < total; i++)
            if (amb_compare(o->refs[i - 1], o->refs[i]) == 0)
                fail_msg("references %zu and %zu are equal", i - 1, i);
        for (int k = 0; k < REF_PROCS; k++)
            amb_heap_free(o->heaps[k]);
        free(o);
    }
}

/* ===========================================================================
 * amb_rt_stop and amb_rt_free
 * ======================================================================== */

#define STOP_BLOCKED  50
#define STOP_HANDLERS 50

typedef struct stop_obs {
    amb_rt *rt;
    atomic_int started;
    atomic_int resumed; /* must stay 0: nobody runs after the stop */
    atomic_int spinner_runs;
} stop_obs;

static void stop_blocked(amb_proc *self, void *arg)
{
    stop_obs *o = arg;
    amb_heap *h = amb_proc_heap(self);
    /* Hold things the free must release: heap terms, a big binary, queued
     * messages, and (for some) a receive timeout or a timer. */
    uint8_t *bytes;
    amb_term big = amb_binary_alloc(h, 4096, &bytes);
    CHECK(self, big != AMB_NONE);
    memset(bytes, 7, 4096);
    CHECK_OK(self, amb_send(self, amb_self(self), AMB_TUPLE(h, big, big)));
    CHECK_OK(self, amb_send_after(self, amb_self(self), big, 3600 * 1000, NULL));
    atomic_fetch_add(&o->started, 1);
    amb_term t;
    int rc = amb_receive_if(self, match_stop, NULL, 3600 * 1000, &t);
    (void)rc;
    atomic_fetch_add(&o->resumed, 1);
}

static int stop_handler_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    memset(state, 1, 64);
    atomic_fetch_add(&((stop_obs *)arg)->started, 1);
    return 0;
}

static const amb_handler stop_handler = {
    .state_size = 64, .init = stop_handler_init, .handle = h_ok};

static void stop_spinner(amb_proc *self, void *arg)
{
    stop_obs *o = arg;
    atomic_fetch_add(&o->started, 1);
    for (;;) {
        atomic_fetch_add(&o->spinner_runs, 1);
        amb_yield(self);
    }
}

static void stop_main(amb_proc *self, void *arg)
{
    stop_obs *o = arg;
    for (int i = 0; i < STOP_BLOCKED; i++) {
        amb_spawn_opts opts = {.name = AMB_NONE};
        if (i == 0)
            opts.name = amb_atom("stop_named");
        CHECK_OK(self, amb_spawn_opt(self, stop_blocked, o, &opts, NULL, NULL));
    }
    for (int i = 0; i < STOP_HANDLERS; i++) {
        amb_pid hp;
        CHECK_OK(self, amb_spawn_handler(self, &stop_handler, o, &hp));
        CHECK_OK(self,
                 amb_send(self, hp, amb_string(amb_proc_heap(self), "never handled?")));
    }
    CHECK_OK(self, amb_spawn(self, stop_spinner, o, NULL));
    WAIT_UNTIL(self, atomic_load(&o->started) == STOP_BLOCKED + STOP_HANDLERS + 1);
    CHECK_OK(self, amb_rt_stop(amb_proc_rt(self)));
    CHECK_OK(self, amb_rt_stop(amb_proc_rt(self))); /* idempotent */
    /* Block too: the free ends this process as well. */
    amb_term t;
    amb_receive_if(self, match_stop, NULL, AMB_INFINITY, &t);
    atomic_fetch_add(&o->resumed, 1);
}

AMB_TEST(rt_stop_from_inside_returns_and_rt_free_ends_the_rest)
{
    for (unsigned n = 1; n <= 2; n++) {
        stop_obs o = {0};
        amb_config cfg = config_of(n);
        reset_failure();
        assert_ok(amb_rt_new(&cfg, &o.rt));
        assert_ok(amb_rt_spawn(o.rt, stop_main, &o, NULL));
        assert_ok(amb_rt_run(o.rt));
        assert_no_process_failure();
        assert_int_equal(atomic_load(&o.started), STOP_BLOCKED + STOP_HANDLERS + 1);
        int spins = atomic_load(&o.spinner_runs);
        /* Everything left is freed, without running (ASan: no leak). */
        amb_rt_free(o.rt);
        assert_int_equal(atomic_load(&o.resumed), 0);
        assert_int_equal(atomic_load(&o.spinner_runs), spins);
    }
}

typedef struct resume_obs {
    amb_pid waiter;
    atomic_int got;
} resume_obs;

static void resume_waiter(amb_proc *self, void *arg)
{
    resume_obs *o = arg;
    amb_term t = RECV(self);
    CHECK(self, t == amb_atom("go"));
    atomic_store(&o->got, 1);
}

static void resume_main(amb_proc *self, void *arg)
{
    resume_obs *o = arg;
    CHECK_OK(self, amb_spawn(self, resume_waiter, o, &o->waiter));
    WAIT_UNTIL(self, status_of(self, o->waiter) == AMB_STATUS_WAITING);
    CHECK_OK(self, amb_rt_stop(amb_proc_rt(self)));
}

AMB_TEST(rt_run_after_stop_resumes_the_suspended_processes)
{
    for (unsigned n = 1; n <= 2; n++) {
        resume_obs o = {0};
        amb_config cfg = config_of(n);
        amb_rt *rt;
        reset_failure();
        assert_ok(amb_rt_new(&cfg, &rt));
        assert_ok(amb_rt_spawn(rt, resume_main, &o, NULL));
        assert_ok(amb_rt_run(rt));
        assert_no_process_failure();
        assert_int_equal(atomic_load(&o.got), 0);
        assert_ok(amb_rt_send(rt, o.waiter, amb_atom("go")));
        assert_ok(amb_rt_run(rt)); /* returns when the waiter has ended */
        amb_rt_free(rt);
        assert_no_process_failure();
        assert_int_equal(atomic_load(&o.got), 1);
    }
}

/* ===========================================================================
 * amb_spawn_opt
 * ======================================================================== */

typedef struct opt_obs {
    size_t stack_size;
    size_t heap_size;
    int handled;
    atomic_int nulls;
} opt_obs;

static void opt_big_stack(amb_proc *self, void *arg)
{
    opt_obs *o = arg;
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, amb_self(self), &pi));
    o->stack_size = pi.stack_size;
    o->heap_size = pi.heap_size;
}

static void opt_main(amb_proc *self, void *arg)
{
    opt_obs *o = arg;
    amb_spawn_opts opts = {.stack_size = (size_t)1 << 20, .min_heap_size = 100000};
    amb_pid pid;
    CHECK_OK(self, amb_spawn_opt(self, opt_big_stack, o, &opts, &pid, NULL));
    WAIT_UNTIL(self, !amb_is_process_alive(self, pid));

    /* opts.handler makes a handler process; arg goes to its init. */
    handler_obs ho = {0};
    amb_spawn_opts hopts = {.handler = &counter_with_init};
    CHECK_OK(self, amb_spawn_opt(self, NULL, &ho, &hopts, &pid, NULL));
    amb_heap *h = amb_proc_heap(self);
    CHECK_OK(self, amb_send(self, pid, AMB_TUPLE(h, amb_self(self), mk_int(5))));
    amb_term r = RECV(self);
    CHECK_EQ(self, int_of(amb_tuple_elem(r, 1)), 1);
    CHECK_EQ(self, atomic_load(&ho.inits), 1);
    CHECK_EQ(self, atomic_load(&ho.handled), 1);
    o->handled = 1;
    CHECK_OK(self, amb_send(self, pid, amb_atom("die")));
    /* NULL opts: an ordinary stackful process. */
    CHECK_OK(self, amb_spawn_opt(self, returns_at_once, &o->nulls, NULL, NULL, NULL));
}

AMB_TEST(spawn_opt_makes_handlers_and_reserves_the_heap)
{
    opt_obs o = {0};
    run_in(2, opt_main, &o);
    assert_int_equal(o.handled, 1);
    assert_true(o.heap_size >= 100000);
}

/* Issue 13: a min_heap_size that cannot be reserved was ignored (the spawn
 * succeeded with a small heap). It is AMB_ENOMEM, and nothing is spawned.
 * 256 GiB: more than this machine has, so malloc refuses it (not under the
 * sanitizers, whose allocators abort on such a request instead). */
static void huge_heap_main(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid pid = AMB_NONE;
    CHECK_RC(self, AMB_ENOMEM,
             amb_spawn_opt(self, ends_at_once, NULL,
                           &(amb_spawn_opts){.min_heap_size = (size_t)1 << 38}, &pid,
                           NULL));
    CHECK(self, pid == AMB_NONE);
}

AMB_TEST(spawn_opt_min_heap_size_that_cannot_be_had_is_enomem)
{
#ifdef AMB_SANITIZER
    skip();
#endif
    run_in(1, huge_heap_main, NULL);
}

AMB_TEST(spawn_opt_stack_size_gives_a_bigger_stack)
{
    /* process.h: opts.stack_size gives a stackful process a stack of that
     * size (rounded up to a size class). */
    opt_obs o = {0};
    run_in(1, opt_main, &o);
    assert_true(o.stack_size >= ((size_t)1 << 20));
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(spawn_gives_a_live_pid_that_self_names),
    AMB_TEST_ENTRY(yield_lets_another_process_run),
    AMB_TEST_ENTRY(exit_self_ends_the_process_from_any_depth),
    AMB_TEST_ENTRY(amb_main_returns_after_every_process_ended),
    AMB_TEST_ENTRY(rt_spawn_and_rt_send_work_from_another_thread_while_running),
    AMB_TEST_ENTRY(rt_run_again_runs_processes_spawned_since),
    AMB_TEST_ENTRY(several_runtimes_run_at_once_with_distinct_pids),
    AMB_TEST_ENTRY(send_to_a_dead_pid_is_not_an_error),
    AMB_TEST_ENTRY(send_to_a_pid_of_another_runtime_is_enotsup),
    AMB_TEST_ENTRY(bad_arguments_are_ebadarg_and_change_nothing),
    AMB_TEST_ENTRY(rt_new_takes_erl_node_names),
    AMB_TEST_ENTRY(full_process_table_is_esyslimit_and_frees_on_exit),
    AMB_TEST_ENTRY(spawn_exit_loop_goes_round_the_whole_table_before_a_pid_index_returns),
    AMB_TEST_ENTRY(handler_state_is_zeroed_aligned_and_persistent),
    AMB_TEST_ENTRY(handler_init_error_ends_the_process),
    AMB_TEST_ENTRY(handler_takes_100k_messages_in_per_sender_order),
    AMB_TEST_ENTRY(handler_nested_receive_keeps_its_stack_and_its_message),
    AMB_TEST_ENTRY(process_info_of_self),
    AMB_TEST_ENTRY(process_info_of_a_process_blocked_in_receive),
    AMB_TEST_ENTRY(process_info_of_another_stackful_process_reports_its_stack),
    AMB_TEST_ENTRY(process_info_counts_messages_the_process_has_not_looked_at),
    AMB_TEST_ENTRY(process_info_of_a_busy_process_does_not_wait_for_its_next_receive),
    AMB_TEST_ENTRY(message_queue_len_counts_waiting_messages),
    AMB_TEST_ENTRY(process_info_memory_counts_the_messages_a_process_holds),
    AMB_TEST_ENTRY(process_info_items_give_links_monitors_and_messages_as_lists),
    AMB_TEST_ENTRY(make_ref_gives_100k_distinct_references),
    AMB_TEST_ENTRY(rt_stop_from_inside_returns_and_rt_free_ends_the_rest),
    AMB_TEST_ENTRY(rt_run_after_stop_resumes_the_suspended_processes),
    AMB_TEST_ENTRY(spawn_opt_makes_handlers_and_reserves_the_heap),
    AMB_TEST_ENTRY(spawn_opt_min_heap_size_that_cannot_be_had_is_enomem),
    AMB_TEST_ENTRY(spawn_opt_stack_size_gives_a_bigger_stack))

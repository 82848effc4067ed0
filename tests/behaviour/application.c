/*
 * tests/behaviour/application.c - OTP applications (application.h,
 * docs/design/applications.md): load, start with dependencies (order,
 * diamonds, cycles, missing ones), rollback of a failed start, stop,
 * which_applications, the environment (defaults, config files, set_env,
 * memory that stays bounded) and the restart types (temporary, transient,
 * permanent: the runtime stops). Plus the pure dependency ordering of
 * src/application/deps.c.
 *
 * How these tests work (tests/amb_test_rt.h): each scenario runs a first
 * process in a fresh runtime, with one scheduler and with two, until every
 * process has ended. Processes never call cmocka: CHECK records the first
 * failure and stops the runtime. A scenario ends with finish():
 * amb_app_shutdown stops the applications and ends the controller, so the
 * runtime must then end by itself (the runner's watchdog stops it and fails
 * the test otherwise). Every wait has a deadline; nothing sleeps.
 *
 * The test applications share one start function, t_start: it records
 * "start:<name>" in a global event log, then does what the app's tinfo
 * says (start a gen_server as the top, fail, crash, or start a real
 * supervisor tree). t_stop records "stop:<name>". The log shows the order
 * in which applications start and stop.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define DEADLINE_MS 10000
#include "amb_test_rt.h"

#include "application/app.h"

/* ===========================================================================
 * The event log, the scenario's end, the runner
 * ======================================================================== */

static pthread_mutex_t g_ev_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_events[2048];
static atomic_int g_done; /* the scenario reached finish() */

static void event(const char *what, const char *name)
{
    pthread_mutex_lock(&g_ev_lock);
    size_t n = strlen(g_events);
    snprintf(g_events + n, sizeof g_events - n, "%s%s:%s", n ? "," : "", what, name);
    pthread_mutex_unlock(&g_ev_lock);
}

/* The event log, copied into buf. */
static const char *events(char *buf, size_t cap)
{
    pthread_mutex_lock(&g_ev_lock);
    snprintf(buf, cap, "%s", g_events);
    pthread_mutex_unlock(&g_ev_lock);
    return buf;
}

#define CHECK_EVENTS(self, want)                                                 \
    do {                                                                         \
        char ev_[2048];                                                          \
        events(ev_, sizeof ev_);                                                 \
        if (strcmp(ev_, (want)) != 0)                                            \
            proc_fail((self), __FILE__, __LINE__, "events %s, expected %s", ev_, \
                      (want));                                                   \
    } while (0)

/* The names of the running applications, most recent first: "c,b,a". */
static const char *which_names(amb_proc *self, char *buf, size_t cap)
{
    amb_term l = AMB_NONE;
    CHECK_OK(self, amb_app_which_applications(self, &l));
    buf[0] = '\0';
    for (; amb_is_cons(l); l = amb_list_tail(l)) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s%s", n ? "," : "",
                 amb_atom_name(amb_tuple_elem(amb_list_head(l), 0), NULL));
    }
    return buf;
}

#define CHECK_WHICH(self, want)                                                   \
    do {                                                                          \
        char wb_[512];                                                            \
        which_names((self), wb_, sizeof wb_);                                     \
        if (strcmp(wb_, (want)) != 0)                                             \
            proc_fail((self), __FILE__, __LINE__, "running %s, expected %s", wb_, \
                      (want));                                                    \
    } while (0)

/* The scenario got to its end: stop every application and end the
 * controller (amb_app_shutdown), so that every process ends and amb_rt_run
 * returns by itself. */
static void finish(amb_proc *self)
{
    CHECK_OK(self, amb_app_shutdown(self));
    amb_pid ctl = AMB_NONE;
    CHECK_RC(self, AMB_ENOTFOUND,
             amb_whereis(self, amb_atom("application_controller"), &ctl));
    atomic_store(&g_done, 1);
}

/* Runs fn in a fresh runtime of nsched schedulers (amb_test_run: it must
 * end by itself, and fn must reach its end); want_done false: the scenario
 * stops the runtime before it ends (a permanent application's end). */
static void run_n(unsigned nsched, amb_fn *fn, void *arg, bool want_done)
{
    atomic_store(&g_done, 0);
    g_events[0] = '\0';
    amb_test_cfg cfg = {.rt = config_of(nsched), .may_not_finish = !want_done};
    amb_test_run(&cfg, fn, arg);
}

static void run(amb_fn *fn, void *arg)
{
    run_n(1, fn, arg, true);
    run_n(2, fn, arg, true);
}

/* ===========================================================================
 * Test applications
 * ======================================================================== */

enum mode {
    M_SERVER = 0, /* the top is a plain gen_server */
    M_FAIL,       /* start returns AMB_EINIT */
    M_CRASH,      /* start ends the master with reason crashed_in_start */
    M_SUP,        /* the top is a real supervisor with one worker */
    M_NESTED,     /* start first tries to start and stop a (a deadlock) */
};

typedef struct tinfo {
    const char *name;
    _Atomic int mode;
    _Atomic amb_pid top;      /* set by t_start */
    _Atomic amb_pid master;   /* the process t_start ran in */
    _Atomic bool give_reason; /* M_FAIL: set *reason */
    _Atomic bool stop_calls;  /* t_stop calls amb_app_stop */
} tinfo;

static const amb_gen_server top_cb = {.name = "test_top"};

/* The worker of M_SUP trees: reads its application's env in init (the
 * controller must answer while it waits for the start to finish). */
static amb_gen_ret worker_init(amb_proc *self, void *state, void *arg)
{
    (void)state;
    const char *app = arg;
    amb_term v = AMB_NONE;
    if (amb_app_get_env(self, app, amb_atom("greeting"), &v) == 0 && amb_is_atom(v))
        event("env", amb_atom_name(v, NULL));
    return amb_gen_ok();
}
static const amb_gen_server worker_cb = {.name = "test_worker", .init = worker_init};

static int start_sup(amb_proc *self, tinfo *ti, amb_pid *top)
{
    static amb_gen_child child; /* must outlive the spec's use */
    child = (amb_gen_child){&worker_cb, (void *)ti->name, amb_atom("sup_worker")};
    amb_child_spec spec = {0};
    spec.id = amb_atom("worker");
    spec.start = amb_gen_child_start;
    spec.arg = &child;
    spec.restart = AMB_PERMANENT;
    spec.shutdown_ms = 1000;
    spec.type = AMB_WORKER;
    amb_sup_spec sup = {{AMB_ONE_FOR_ONE, 0, 0}, &spec, 1}; /* OTP's defaults */
    return amb_sup_start_link(self, &sup, NULL, top, NULL);
}

static int t_start(amb_proc *self, void *arg, amb_pid *top, amb_term *reason)
{
    tinfo *ti = arg;
    event("start", ti->name);
    atomic_store(&ti->master, amb_self(self));
    int rc;
    switch (atomic_load(&ti->mode)) {
    case M_FAIL:
        if (atomic_load(&ti->give_reason))
            *reason = amb_pack(amb_proc_heap(self), "{no_db, ~a}", ti->name);
        return AMB_EINIT;
    case M_CRASH:
        amb_exit_self(self, amb_atom("crashed_in_start"));
    case M_SUP:
        rc = start_sup(self, ti, top);
        break;
    case M_NESTED:
        event("nested", amb_err_name(amb_app_start(self, "a", AMB_APP_TEMPORARY, NULL)));
        event("nested", amb_err_name(amb_app_stop(self, "a")));
        event("nested", amb_err_name(amb_app_shutdown(self)));
        rc = amb_gen_server_start_link(self, &top_cb, NULL, top, NULL);
        break;
    default:
        rc = amb_gen_server_start_link(self, &top_cb, NULL, top, NULL);
        break;
    }
    if (rc == 0)
        atomic_store(&ti->top, *top);
    return rc;
}

static void t_stop(amb_proc *self, void *arg)
{
    tinfo *ti = arg;
    event("stop", ti->name);
    if (atomic_load(&ti->stop_calls)) /* a stop callback asking to stop */
        event("stopcall", amb_err_name(amb_app_stop(self, ti->name)));
}

#define DEPS(...) ((const char *const[]){__VA_ARGS__, NULL})

#define TAPP(var, nm, deps_, env_)                                              \
    static tinfo var##_info = {nm, M_SERVER, AMB_NONE, AMB_NONE, false, false}; \
    static const amb_app var = {.name = nm,                                     \
                                .description = "the " nm " application",        \
                                .vsn = "1.0",                                   \
                                .deps = deps_,                                  \
                                .env = env_,                                    \
                                .start = t_start,                               \
                                .stop = t_stop,                                 \
                                .arg = &var##_info}

TAPP(app_a, "a", NULL, NULL);
TAPP(app_b, "b", DEPS("a"), NULL);
TAPP(app_c, "c", DEPS("b"), NULL);
TAPP(app_d, "d", DEPS("b", "c2"), NULL); /* diamond: b and c2 both need a */
TAPP(app_c2, "c2", DEPS("a"), NULL);
TAPP(app_x, "x", DEPS("y"), NULL); /* cycle x -> y -> z -> y */
TAPP(app_y, "y", DEPS("z"), NULL);
TAPP(app_z, "z", DEPS("y"), NULL);
TAPP(app_m, "m", DEPS("a", "no_such_app"), NULL);
TAPP(app_f, "f", DEPS("a", "b"), NULL); /* its start fails */
TAPP(app_t, "t", NULL, NULL);           /* restart-type tests */
TAPP(app_e, "e", NULL, "[{port, 8080}, {mode, fast}, {list, [1, 2, 3]}]");
TAPP(app_s, "s", NULL, "[{greeting, hello}]"); /* a supervisor tree */

static void load_all(amb_proc *self, const amb_app *const *apps)
{
    for (; *apps != NULL; apps++)
        CHECK_OK(self, amb_app_load(self, *apps));
}
#define LOAD(self, ...) load_all((self), (const amb_app *const[]){__VA_ARGS__, NULL})

static void set_mode(tinfo *ti, enum mode m)
{
    atomic_store(&ti->mode, m);
}

/* ===========================================================================
 * deps.c: the pure ordering
 * ======================================================================== */

typedef struct graph {
    const char *names[16];
    const char *const *deps[16];
    int lookups;
} graph;

static int graph_deps(void *ctx, const char *name, const char *const **deps)
{
    graph *g = ctx;
    g->lookups++;
    for (int i = 0; i < 16 && g->names[i] != NULL; i++) {
        if (strcmp(g->names[i], name) == 0) {
            *deps = g->deps[i];
            return 0;
        }
    }
    return AMB_ENOTFOUND;
}

static void joined(const char **v, size_t n, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(buf);
        snprintf(buf + k, cap - k, "%s%s", i ? "," : "", v[i]);
    }
}

AMB_TEST(app_deps_order_is_topological_and_names_cycles)
{
    graph g = {{"a", "b", "c", "d", "x", "y", "z", "m"},
               {NULL, DEPS("a"), DEPS("a"), DEPS("b", "c", "a"), DEPS("y"), DEPS("z"),
                DEPS("a", "y"), DEPS("a", "gone")},
               0};
    amb__deps_src src = {graph_deps, &g};
    amb__deps_result r;
    char buf[256];

    assert_ok(amb__deps_order(&src, "d", &r));
    joined(r.order, r.norder, buf, sizeof buf);
    assert_string_equal(buf, "a,b,c,d"); /* the diamond's a once, first */
    amb__deps_result_free(&r);

    assert_ok(amb__deps_order(&src, "a", &r));
    joined(r.order, r.norder, buf, sizeof buf);
    assert_string_equal(buf, "a");
    amb__deps_result_free(&r);

    assert_rc(AMB_EINIT, amb__deps_order(&src, "x", &r));
    joined(r.cycle, r.ncycle, buf, sizeof buf);
    assert_string_equal(buf, "y,z,y"); /* x leads into the cycle, is not in it */
    amb__deps_result_free(&r);

    assert_rc(AMB_ENOTFOUND, amb__deps_order(&src, "m", &r));
    assert_string_equal(r.missing, "gone");
    amb__deps_result_free(&r);

    assert_rc(AMB_ENOTFOUND, amb__deps_order(&src, "nothing", &r));
    assert_string_equal(r.missing, "nothing");
    amb__deps_result_free(&r);

    assert_rc(AMB_EBADARG, amb__deps_order(NULL, "a", &r));
}

/* A self-dependency is a cycle of one; a long chain needs no deep C stack. */
#define CHAIN 5000
static char g_chain_names[CHAIN][8];
static const char *g_chain_deps[CHAIN][2];

static int chain_deps(void *ctx, const char *name, const char *const **deps)
{
    (void)ctx;
    if (strcmp(name, "self") == 0) {
        static const char *const self_dep[] = {"self", NULL};
        *deps = self_dep;
        return 0;
    }
    int i = atoi(name + 1);
    if (name[0] != 'n' || i < 0 || i >= CHAIN)
        return AMB_ENOTFOUND;
    *deps = g_chain_deps[i];
    return 0;
}

AMB_TEST(app_deps_self_cycle_and_long_chain)
{
    amb__deps_src src = {chain_deps, NULL};
    amb__deps_result r;
    char buf[64];
    assert_rc(AMB_EINIT, amb__deps_order(&src, "self", &r));
    joined(r.cycle, r.ncycle, buf, sizeof buf);
    assert_string_equal(buf, "self,self");
    amb__deps_result_free(&r);

    for (int i = 0; i < CHAIN; i++)
        snprintf(g_chain_names[i], sizeof g_chain_names[i], "n%d", i);
    for (int i = 0; i < CHAIN; i++) /* n0 -> n1 -> ... -> n4999 */
        g_chain_deps[i][0] = i + 1 < CHAIN ? g_chain_names[i + 1] : NULL;
    assert_ok(amb__deps_order(&src, "n0", &r));
    assert_int_equal(r.norder, CHAIN);
    assert_string_equal(r.order[0], g_chain_names[CHAIN - 1]);
    assert_string_equal(r.order[CHAIN - 1], "n0");
    amb__deps_result_free(&r);
}

/* ===========================================================================
 * Load, start, which, stop
 * ======================================================================== */

static void load_start_which(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term reason = AMB_NONE;
    CHECK_WHICH(self, "");
    CHECK_RC(self, AMB_EBADARG, amb_app_load(self, NULL));
    amb_app bad = app_a;
    bad.start = NULL;
    CHECK_RC(self, AMB_EBADARG, amb_app_load(self, &bad));
    bad = app_a;
    bad.name = NULL;
    CHECK_RC(self, AMB_EBADARG, amb_app_load(self, &bad));
    CHECK_RC(self, AMB_ENOTFOUND, amb_app_start(self, "a", AMB_APP_TEMPORARY, &reason));
    CHECK_RC(self, AMB_EBADARG, amb_app_start(self, NULL, AMB_APP_TEMPORARY, NULL));
    CHECK_RC(self, AMB_EBADARG, amb_app_start(self, "a", (amb_app_type)7, NULL));

    LOAD(self, &app_a, &app_b);
    CHECK_RC(self, AMB_EEXIST, amb_app_load(self, &app_a));
    CHECK_WHICH(self, ""); /* loaded is not running */
    CHECK_OK(self, amb_app_start(self, "a", AMB_APP_TEMPORARY, NULL));
    CHECK_OK(self, amb_app_start(self, "b", AMB_APP_TEMPORARY, NULL));
    CHECK_OK(self, amb_app_start(self, "a", AMB_APP_TEMPORARY, NULL)); /* running: 0 */
    CHECK_EVENTS(self, "start:a,start:b");

    amb_term l = AMB_NONE;
    CHECK_OK(self, amb_app_which_applications(self, &l));
    char desc_b[64], vsn_b[16], desc_a[64], vsn_a[16];
    CHECK_OK(self,
             amb_match(l, "[{b, ~s, ~s}, {a, ~s, ~s}]", desc_b, sizeof desc_b, vsn_b,
                       sizeof vsn_b, desc_a, sizeof desc_a, vsn_a, sizeof vsn_a));
    CHECK(self, strcmp(desc_b, "the b application") == 0);
    CHECK(self, strcmp(vsn_a, "1.0") == 0);
    CHECK(self, reason == AMB_NONE); /* untouched by the failed calls */

    amb_pid top_a = atomic_load(&app_a_info.top);
    CHECK(self, amb_is_process_alive(self, top_a));
    CHECK_OK(self, amb_app_stop(self, "a"));
    CHECK(self, !amb_is_process_alive(self, top_a));
    CHECK_RC(self, AMB_ENOTFOUND, amb_app_stop(self, "a"));
    CHECK_RC(self, AMB_ENOTFOUND, amb_app_stop(self, "never_heard_of"));
    CHECK_WHICH(self, "b");
    CHECK_OK(self, amb_app_stop(self, "b"));
    CHECK_WHICH(self, "");
    CHECK_EVENTS(self, "start:a,start:b,stop:a,stop:b");
    /* A stopped application starts again. */
    CHECK_OK(self, amb_app_start(self, "a", AMB_APP_TEMPORARY, NULL));
    CHECK_WHICH(self, "a");
    amb_pid ctl = AMB_NONE;
    CHECK_OK(self, amb_whereis(self, amb_atom("application_controller"), &ctl));
    finish(self);
}

AMB_TEST(app_load_start_which_stop)
{
    set_mode(&app_a_info, M_SERVER);
    run(load_start_which, NULL);
}

static void dep_order(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_c, &app_b, &app_a); /* loaded in the reverse order */
    CHECK_OK(self, amb_app_start(self, "c", AMB_APP_TEMPORARY, NULL));
    CHECK_EVENTS(self, "start:a,start:b,start:c");
    CHECK_WHICH(self, "c,b,a");
    /* Stopping c leaves its dependencies running (OTP). */
    CHECK_OK(self, amb_app_stop(self, "c"));
    CHECK_WHICH(self, "b,a");
    CHECK_EVENTS(self, "start:a,start:b,start:c,stop:c");
    /* Starting c again starts only c. */
    CHECK_OK(self, amb_app_start(self, "c", AMB_APP_TEMPORARY, NULL));
    CHECK_EVENTS(self, "start:a,start:b,start:c,stop:c,start:c");
    finish(self);
}

AMB_TEST(app_start_starts_dependencies_first_and_stop_leaves_them)
{
    run(dep_order, NULL);
}

static void diamond(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_a, &app_b, &app_c2, &app_d);
    CHECK_OK(self, amb_app_start(self, "d", AMB_APP_TEMPORARY, NULL));
    CHECK_EVENTS(self, "start:a,start:b,start:c2,start:d");
    CHECK_WHICH(self, "d,c2,b,a");
    finish(self);
}

AMB_TEST(app_diamond_dependency_starts_once)
{
    run(diamond, NULL);
}

static void cycle(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_x, &app_y, &app_z);
    amb_term reason = AMB_NONE;
    CHECK_RC(self, AMB_EINIT, amb_app_start(self, "x", AMB_APP_TEMPORARY, &reason));
    CHECK_TEXT(self, reason, "{cycle,[y,z,y]}");
    CHECK_RC(self, AMB_EINIT, amb_app_start(self, "z", AMB_APP_TEMPORARY, &reason));
    CHECK_TEXT(self, reason, "{cycle,[z,y,z]}");
    CHECK_EVENTS(self, ""); /* nothing was started */
    CHECK_WHICH(self, "");
    finish(self);
}

AMB_TEST(app_dependency_cycle_is_einit_and_named)
{
    run(cycle, NULL);
}

static void missing(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_a, &app_m);
    amb_term reason = AMB_NONE;
    CHECK_RC(self, AMB_ENOTFOUND, amb_app_start(self, "m", AMB_APP_TEMPORARY, &reason));
    CHECK(self, reason == AMB_NONE);
    CHECK_EVENTS(self, ""); /* a missing dependency is found before any start */
    CHECK_WHICH(self, "");
    finish(self);
}

AMB_TEST(app_missing_dependency_is_enotfound)
{
    run(missing, NULL);
}

static void rollback(amb_proc *self, void *arg)
{
    (void)arg;
    set_mode(&app_f_info, M_FAIL);
    LOAD(self, &app_a, &app_b, &app_f);
    CHECK_OK(self, amb_app_start(self, "a", AMB_APP_TEMPORARY, NULL));
    amb_term reason = AMB_NONE;
    CHECK_RC(self, AMB_EINIT, amb_app_start(self, "f", AMB_APP_TEMPORARY, &reason));
    CHECK_TEXT(self, reason, "{f,{error,'AMB_EINIT'}}");
    /* b, started by this call, is stopped again; a, running before, stays. */
    CHECK_EVENTS(self, "start:a,start:b,start:f,stop:b");
    CHECK_WHICH(self, "a");
    /* A start that says why: that reason. */
    atomic_store(&app_f_info.give_reason, true);
    CHECK_RC(self, AMB_EINIT, amb_app_start(self, "f", AMB_APP_TEMPORARY, &reason));
    CHECK_TEXT(self, reason, "{f,{no_db,f}}");
    atomic_store(&app_f_info.give_reason, false);
    CHECK_EVENTS(self, "start:a,start:b,start:f,stop:b,start:b,start:f,stop:b");
    CHECK_WHICH(self, "a");

    /* A start that crashes its master: the reason is the crash's. */
    set_mode(&app_f_info, M_CRASH);
    CHECK_RC(self, AMB_EINIT, amb_app_start(self, "f", AMB_APP_TEMPORARY, &reason));
    CHECK_TEXT(self, reason, "{f,crashed_in_start}");
    CHECK_EVENTS(self, "start:a,start:b,start:f,stop:b,start:b,start:f,stop:b,start:b,"
                       "start:f,stop:b");
    CHECK_WHICH(self, "a");

    /* Nothing is left half-started: f starts once its start works. */
    set_mode(&app_f_info, M_SERVER);
    CHECK_OK(self, amb_app_start(self, "f", AMB_APP_TEMPORARY, NULL));
    CHECK_WHICH(self, "f,b,a");
    finish(self);
}

AMB_TEST(app_failing_start_rolls_back_what_it_started)
{
    run(rollback, NULL);
}

/* A start function that asks the controller to start, stop or shut down
 * would wait for the job that waits for it: AMB_EDEADLK, and its own
 * start goes on. */
static void nested(amb_proc *self, void *arg)
{
    (void)arg;
    set_mode(&app_t_info, M_NESTED);
    LOAD(self, &app_a, &app_t);
    CHECK_OK(self, amb_app_start(self, "a", AMB_APP_TEMPORARY, NULL));
    CHECK_OK(self, amb_app_start(self, "t", AMB_APP_TEMPORARY, NULL));
    CHECK_EVENTS(self, "start:a,start:t,nested:AMB_EDEADLK,nested:AMB_EDEADLK,"
                       "nested:AMB_EDEADLK");
    CHECK_WHICH(self, "t,a");
    set_mode(&app_t_info, M_SERVER);
    finish(self);
}

AMB_TEST(app_start_or_stop_from_a_start_function_is_edeadlk)
{
    run(nested, NULL);
}

/* Two processes race to make the controller: both loads work, one
 * controller serves both. */
static void racer(amb_proc *self, void *arg)
{
    amb_pid parent = (amb_pid)(uintptr_t)arg;
    CHECK_OK(self, amb_app_load(self, &app_b));
    amb_send(self, parent, amb_atom("loaded"));
}

static void race(amb_proc *self, void *arg)
{
    (void)arg;
    CHECK_OK(self, amb_spawn(self, racer, (void *)(uintptr_t)amb_self(self), NULL));
    CHECK_OK(self, amb_app_load(self, &app_a));
    CHECK_OK(self, amb_receive_match(self, DEADLINE_MS, NULL, "loaded"));
    CHECK_RC(self, AMB_EEXIST, amb_app_load(self, &app_b));
    CHECK_OK(self, amb_app_start(self, "b", AMB_APP_TEMPORARY, NULL));
    CHECK_WHICH(self, "b,a");
    finish(self);
}

AMB_TEST(app_first_calls_racing_share_one_controller)
{
    for (int i = 0; i < 20 / SLOW; i++)
        run(race, NULL);
}

/* ===========================================================================
 * Environment
 * ======================================================================== */

static void env_defaults(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term v = AMB_NONE;
    amb_term port = amb_atom("port");
    CHECK_RC(self, AMB_ENOTFOUND, amb_app_get_env(self, "e", port, &v));
    LOAD(self, &app_e);
    CHECK_OK(self, amb_app_get_env(self, "e", port, &v));
    CHECK_EQ(self, int_of(v), 8080);
    CHECK_OK(self, amb_app_get_env(self, "e", amb_atom("list"), &v));
    CHECK_TEXT(self, v, "[1,2,3]");
    CHECK_RC(self, AMB_ENOTFOUND, amb_app_get_env(self, "e", amb_atom("nokey"), &v));
    CHECK_RC(self, AMB_ENOTFOUND, amb_app_get_env(self, "zzz_unknown", port, &v));
    CHECK_RC(self, AMB_EBADARG, amb_app_get_env(self, "e", mk_int(1), &v));
    CHECK_RC(self, AMB_EBADARG, amb_app_get_env(self, "e", port, NULL));

    CHECK_OK(self, amb_app_set_env(self, "e", port, mk_int(9090)));
    CHECK_OK(self, amb_app_get_env(self, "e", port, &v));
    CHECK_EQ(self, int_of(v), 9090);
    amb_term tup = amb_pack(amb_proc_heap(self), "{new, \"value\", <<1,2,3>>}");
    CHECK_OK(self, amb_app_set_env(self, "e", amb_atom("fresh"), tup));
    CHECK_OK(self, amb_app_get_env(self, "e", amb_atom("fresh"), &v));
    CHECK(self, amb_equal(v, tup));
    CHECK_OK(self, amb_app_get_env(self, "e", amb_atom("mode"), &v));
    CHECK(self, v == amb_atom("fast")); /* the other keys are kept */
    CHECK_RC(self, AMB_ENOTFOUND, amb_app_set_env(self, "zzz_unknown", port, v));
    CHECK_RC(self, AMB_EBADARG, amb_app_set_env(self, "e", mk_int(3), v));

    /* Bad defaults: text, shape. */
    amb_app bad = app_a;
    bad.name = "bad_env1";
    bad.env = "[{port, 80}";
    CHECK_RC(self, AMB_ESYNTAX, amb_app_load(self, &bad));
    bad.env = "[{1, 2}]";
    CHECK_RC(self, AMB_EBADARG, amb_app_load(self, &bad));
    bad.env = "[{port, 80} | tail]";
    CHECK_RC(self, AMB_EBADARG, amb_app_load(self, &bad));
    bad.env = "#{port => 80}";
    CHECK_RC(self, AMB_EBADARG, amb_app_load(self, &bad));
    CHECK_RC(self, AMB_ENOTFOUND, amb_app_get_env(self, "bad_env1", port, &v));
    finish(self);
}

AMB_TEST(app_env_defaults_get_and_set)
{
    run(env_defaults, NULL);
}

/* The value got by get_env lives on the caller's heap: it survives the
 * caller's next receive and a later set_env. */
static void env_copy(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_e);
    amb_term v = AMB_NONE;
    CHECK_OK(self, amb_app_get_env(self, "e", amb_atom("list"), &v));
    CHECK_OK(self, amb_app_set_env(self, "e", amb_atom("list"), AMB_NIL));
    amb_send(self, amb_self(self), amb_atom("poke"));
    (void)RECV(self);
    CHECK_TEXT(self, v, "[1,2,3]");
    finish(self);
}

AMB_TEST(app_get_env_copies_onto_the_callers_heap)
{
    run(env_copy, NULL);
}

static void env_bounded(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_e);
    amb_heap *h = amb_proc_heap(self);
    amb_term big = AMB_NIL;
    for (int i = 0; i < 500; i++) /* ~8 KiB of list cells per copy */
        big = amb_cons(h, mk_int(i), big);
    amb_term key = amb_atom("big");
    int rounds = 4000 / SLOW;
    for (int i = 0; i < 200; i++) /* warm up pools and caches */
        CHECK_OK(self, amb_app_set_env(self, "e", key, big));
    long long before = amb_test_alloc_now().live_bytes;
    for (int i = 0; i < rounds; i++)
        CHECK_OK(self, amb_app_set_env(self, "e", key, big));
    long long grown = amb_test_alloc_now().live_bytes - before;
    /* Kept forever, the copies would take rounds * 8 KiB (>= 8 MiB). */
    if (grown > (1 << 20))
        proc_fail(self, __FILE__, __LINE__, "set_env grew memory by %lld bytes", grown);
    amb_term v = AMB_NONE;
    CHECK_OK(self, amb_app_get_env(self, "e", key, &v));
    CHECK(self, amb_equal(v, big));
    finish(self);
}

AMB_TEST(app_set_env_repeated_does_not_grow_memory)
{
    run(env_bounded, NULL);
}

/* Writes text to a new temporary file; its path into path. */
static void write_temp(char *path, size_t cap, const char *text)
{
    int fd = amb_test_tmpfile("amb_cfg_", path, cap);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_true(write(fd, text, n) == (ssize_t)n);
    close(fd);
}

static char g_cfg_path[64], g_bad_syntax[64], g_bad_shape[64], g_bad_shape2[64];

static void config_file(amb_proc *self, void *arg)
{
    (void)arg;
    amb_term v = AMB_NONE;
    amb_term port = amb_atom("port");
    /* e is loaded before the config, s after it: both get its values. */
    LOAD(self, &app_e);
    CHECK_OK(self, amb_app_set_env(self, "e", amb_atom("mode"), amb_atom("set_before")));
    CHECK_OK(self, amb_app_load_config(self, g_cfg_path));
    CHECK_OK(self, amb_app_get_env(self, "e", port, &v));
    CHECK_EQ(self, int_of(v), 1234);
    CHECK_OK(self, amb_app_get_env(self, "e", amb_atom("mode"), &v));
    CHECK(self, v == amb_atom("set_before")); /* not in the file: kept */
    CHECK_OK(self, amb_app_get_env(self, "e", amb_atom("added"), &v));
    CHECK_TEXT(self, v, "<<120>>");

    LOAD(self, &app_s);
    CHECK_OK(self, amb_app_get_env(self, "s", amb_atom("greeting"), &v));
    CHECK(self, v == amb_atom("from_file"));
    CHECK_OK(self, amb_app_get_env(self, "s", amb_atom("only_in_file"), &v));
    CHECK_EQ(self, int_of(v), 7);

    /* Bad files change nothing. */
    CHECK_RC(self, AMB_EIO, amb_app_load_config(self, "/nonexistent/dir/sys.config"));
    CHECK_RC(self, AMB_ESYNTAX, amb_app_load_config(self, g_bad_syntax));
    CHECK_RC(self, AMB_ETYPE, amb_app_load_config(self, g_bad_shape));
    CHECK_RC(self, AMB_ETYPE, amb_app_load_config(self, g_bad_shape2));
    CHECK_RC(self, AMB_EBADARG, amb_app_load_config(self, NULL));
    CHECK_OK(self, amb_app_get_env(self, "e", port, &v));
    CHECK_EQ(self, int_of(v), 1234);
    finish(self);
}

AMB_TEST(app_config_file_overrides_defaults_and_bad_files_fail)
{
    write_temp(g_cfg_path, sizeof g_cfg_path,
               "%% a sys.config\n"
               "[{e, [{port, 1234}, {added, <<\"x\">>}]},\n"
               " {s, [{greeting, from_file}, {only_in_file, 7}]}].\n");
    write_temp(g_bad_syntax, sizeof g_bad_syntax, "[{e, [{port, 1}]}");
    write_temp(g_bad_shape, sizeof g_bad_shape, "[{e, 1}].");
    write_temp(g_bad_shape2, sizeof g_bad_shape2, "[{e, [{1, 2}]}].");
    run(config_file, NULL);
    unlink(g_cfg_path);
    unlink(g_bad_syntax);
    unlink(g_bad_shape);
    unlink(g_bad_shape2);
}

/* ===========================================================================
 * Restart types
 * ======================================================================== */

static void temporary_crash(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_a, &app_t);
    CHECK_OK(self, amb_app_start(self, "a", AMB_APP_PERMANENT, NULL));
    CHECK_OK(self, amb_app_start(self, "t", AMB_APP_TEMPORARY, NULL));
    amb_pid top = atomic_load(&app_t_info.top);
    CHECK_OK(self, amb_exit(self, top, amb_atom("boom")));
    WAIT_UNTIL(self, amb_test_log_level_count(AMB_LOG_NOTICE) >= 1);
    CHECK_WHICH(self, "a");
    CHECK_EVENTS(self, "start:a,start:t,stop:t"); /* OTP calls stop then too */
    /* The runtime goes on: t can start again. */
    CHECK_OK(self, amb_app_start(self, "t", AMB_APP_TEMPORARY, NULL));
    CHECK_WHICH(self, "t,a");
    finish(self);
}

AMB_TEST(app_temporary_app_whose_top_crashes_is_only_reported)
{
    run(temporary_crash, NULL);
}

/* The tree ended by itself and the stop callback asks to stop the same
 * application: AMB_EDEADLK, not a controller waiting forever. */
static void stop_callback_calls(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_t);
    atomic_store(&app_t_info.stop_calls, true);
    CHECK_OK(self, amb_app_start(self, "t", AMB_APP_TEMPORARY, NULL));
    CHECK_OK(self, amb_exit(self, atomic_load(&app_t_info.top), amb_atom("boom")));
    WAIT_UNTIL(self, amb_test_log_level_count(AMB_LOG_NOTICE) >= 1);
    atomic_store(&app_t_info.stop_calls, false);
    CHECK_EVENTS(self, "start:t,stop:t,stopcall:AMB_EDEADLK");
    CHECK_WHICH(self, "");
    /* The controller still serves. */
    CHECK_OK(self, amb_app_start(self, "t", AMB_APP_TEMPORARY, NULL));
    CHECK_WHICH(self, "t");
    finish(self);
}

AMB_TEST(app_stop_callback_asking_to_stop_is_edeadlk)
{
    run(stop_callback_calls, NULL);
}

/* The controller killed: no tree outlives it (each master stops its tree
 * and runs its stop callback), so a fresh controller starts from nothing. */
static void controller_killed(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_t);
    CHECK_OK(self, amb_app_start(self, "t", AMB_APP_PERMANENT, NULL));
    amb_pid top = atomic_load(&app_t_info.top), ctl = AMB_NONE;
    amb_term ref = AMB_NONE;
    CHECK_OK(self, amb_monitor(self, top, &ref));
    CHECK_OK(self, amb_whereis(self, amb_atom("application_controller"), &ctl));
    CHECK_OK(self, amb_exit(self, ctl, AMB_ATOM_KILL));
    amb_term down;
    CHECK_OK(self,
             amb_receive_match(self, DEADLINE_MS, &down, "{'DOWN', ~v, _, _, _}", ref));
    CHECK_TEXT(self, amb_tuple_elem(down, 4), "shutdown");
    WAIT_UNTIL(self, strstr(events((char[2048]){0}, 2048), "stop:t") != NULL);
    CHECK_EVENTS(self, "start:t,stop:t");
    LOAD(self, &app_t); /* a fresh controller: nothing loaded, nothing runs */
    CHECK_WHICH(self, "");
    finish(self);
}

AMB_TEST(app_controller_killed_takes_the_trees_down)
{
    run(controller_killed, NULL);
}

/* The master itself killed: its tree goes down with it, the controller
 * sees the DOWN and judges it like a tree's end. */
static void master_killed(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_t);
    CHECK_OK(self, amb_app_start(self, "t", AMB_APP_TEMPORARY, NULL));
    amb_pid top = atomic_load(&app_t_info.top);
    amb_term ref = AMB_NONE;
    CHECK_OK(self, amb_monitor(self, top, &ref));
    CHECK_OK(self, amb_exit(self, atomic_load(&app_t_info.master), AMB_ATOM_KILL));
    CHECK(self, wait_down(self, ref, top) == AMB_ATOM_KILLED);
    WAIT_UNTIL(self, amb_test_log_level_count(AMB_LOG_NOTICE) >= 1);
    CHECK_WHICH(self, "");
    CHECK_OK(self, amb_app_start(self, "t", AMB_APP_TEMPORARY, NULL));
    CHECK_WHICH(self, "t");
    finish(self);
}

AMB_TEST(app_killed_master_takes_its_tree_down_and_is_reported)
{
    run(master_killed, NULL);
}

/* Starts a, t (type), b; then ends t's top with reason. */
static void end_t(amb_proc *self, amb_app_type type, amb_term reason, bool by_stop)
{
    LOAD(self, &app_a, &app_t, &app_b);
    CHECK_OK(self, amb_app_start(self, "a", AMB_APP_TEMPORARY, NULL));
    CHECK_OK(self, amb_app_start(self, "t", type, NULL));
    CHECK_OK(self, amb_app_start(self, "b", AMB_APP_TEMPORARY, NULL));
    amb_pid top = atomic_load(&app_t_info.top);
    if (by_stop)
        CHECK_OK(self, amb_gen_server_stop(self, top, reason, DEADLINE_MS));
    else
        CHECK_OK(self, amb_exit(self, top, reason));
}

static void permanent_crash(amb_proc *self, void *arg)
{
    (void)arg;
    end_t(self, AMB_APP_PERMANENT, amb_atom("boom"), false);
    /* The runtime stops: this receive never returns. */
    amb_term m = AMB_NONE;
    amb_receive(self, 3 * DEADLINE_MS, &m);
    proc_fail(self, __FILE__, __LINE__, "the runtime did not stop");
}

static void check_halted(void)
{
    char ev[2048];
    /* t's stop callback, then every other application, newest first. */
    assert_string_equal(events(ev, sizeof ev),
                        "start:a,start:t,start:b,stop:t,stop:b,stop:a");
    assert_int_equal(atomic_load(&g_done), 0);
    assert_true(amb_test_log_level_count(AMB_LOG_ERROR) >= 1);
}

AMB_TEST(app_permanent_app_whose_top_ends_stops_the_runtime)
{
    run_n(1, permanent_crash, NULL, false);
    check_halted();
    run_n(2, permanent_crash, NULL, false);
    check_halted();
}

/* Even a normal end of a permanent application's tree stops everything. */
static void permanent_normal(amb_proc *self, void *arg)
{
    (void)arg;
    end_t(self, AMB_APP_PERMANENT, AMB_ATOM_NORMAL, true);
    amb_term m = AMB_NONE;
    amb_receive(self, 3 * DEADLINE_MS, &m);
    proc_fail(self, __FILE__, __LINE__, "the runtime did not stop");
}

AMB_TEST(app_permanent_app_ending_normally_stops_the_runtime)
{
    run_n(2, permanent_normal, NULL, false);
    check_halted();
}

static void transient_normal(amb_proc *self, void *arg)
{
    (void)arg;
    end_t(self, AMB_APP_TRANSIENT, AMB_ATOM_NORMAL, true);
    WAIT_UNTIL(self, amb_test_log_level_count(AMB_LOG_NOTICE) >= 1);
    CHECK_WHICH(self, "b,a");
    CHECK_EVENTS(self, "start:a,start:t,start:b,stop:t");
    finish(self);
}

AMB_TEST(app_transient_app_ending_normally_is_only_reported)
{
    run(transient_normal, NULL);
}

/* Anything but normal, also shutdown (a top supervisor that gave up) and
 * {shutdown, _}, stops the runtime. */
static void transient_abnormal(amb_proc *self, void *arg)
{
    amb_term reason = amb_atom("boom");
    if (arg != NULL)
        reason = amb_pack(amb_proc_heap(self), (const char *)arg);
    end_t(self, AMB_APP_TRANSIENT, reason, false);
    amb_term m = AMB_NONE;
    amb_receive(self, 3 * DEADLINE_MS, &m);
    proc_fail(self, __FILE__, __LINE__, "the runtime did not stop");
}

AMB_TEST(app_transient_app_ending_abnormally_stops_the_runtime)
{
    run_n(1, transient_abnormal, NULL, false);
    check_halted();
    run_n(2, transient_abnormal, NULL, false);
    check_halted();
    run_n(2, transient_abnormal, (void *)(uintptr_t) "shutdown", false);
    check_halted();
    run_n(1, transient_abnormal, (void *)(uintptr_t) "{shutdown, done}", false);
    check_halted();
}

static void shutdown_all(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_c, &app_b, &app_a, &app_e);
    CHECK_OK(self, amb_app_start(self, "b", AMB_APP_TEMPORARY, NULL));
    CHECK_OK(self, amb_app_start(self, "c", AMB_APP_PERMANENT, NULL));
    CHECK_OK(self, amb_app_set_env(self, "e", amb_atom("port"), mk_int(1)));
    amb_pid old = AMB_NONE;
    CHECK_OK(self, amb_whereis(self, amb_atom("application_controller"), &old));
    CHECK_OK(self, amb_app_shutdown(self));
    /* Newest first; stopping a permanent application is no failure. */
    CHECK_EVENTS(self, "start:a,start:b,start:c,stop:c,stop:b,stop:a");
    CHECK(self, !amb_is_process_alive(self, old));
    CHECK_OK(self, amb_app_shutdown(self)); /* no controller: 0 */
    /* A fresh controller knows nothing. */
    amb_term v = AMB_NONE;
    CHECK_RC(self, AMB_ENOTFOUND, amb_app_get_env(self, "e", amb_atom("port"), &v));
    CHECK_WHICH(self, "");
    LOAD(self, &app_e);
    CHECK_OK(self, amb_app_get_env(self, "e", amb_atom("port"), &v));
    CHECK_EQ(self, int_of(v), 8080);
    CHECK_EQ(self, amb_test_log_level_count(AMB_LOG_ERROR), 0);
    finish(self);
}

AMB_TEST(app_shutdown_stops_all_in_reverse_and_ends_the_controller)
{
    run(shutdown_all, NULL);
}

/* ===========================================================================
 * A real supervision tree
 * ======================================================================== */

static void sup_tree(amb_proc *self, void *arg)
{
    (void)arg;
    LOAD(self, &app_s);
    CHECK_OK(self, amb_app_start(self, "s", AMB_APP_TEMPORARY, NULL));
    /* The worker read the env while the controller waited for the start. */
    CHECK_EVENTS(self, "start:s,env:hello");
    amb_pid sup = atomic_load(&app_s_info.top);
    amb_sup_counts counts = {0};
    CHECK_OK(self, amb_sup_count_children(self, sup, &counts));
    CHECK_EQ(self, counts.active, 1);
    amb_pid worker = AMB_NONE;
    CHECK_OK(self, amb_whereis(self, amb_atom("sup_worker"), &worker));
    amb_term wref = AMB_NONE, sref = AMB_NONE;
    CHECK_OK(self, amb_monitor(self, worker, &wref));
    CHECK_OK(self, amb_monitor(self, sup, &sref));
    CHECK_OK(self, amb_app_stop(self, "s"));
    /* Stopped in order: the worker (by the supervisor), then the tree. */
    CHECK(self, wait_down(self, wref, worker) == AMB_ATOM_SHUTDOWN);
    CHECK(self, wait_down(self, sref, sup) == AMB_ATOM_SHUTDOWN);
    CHECK_EVENTS(self, "start:s,env:hello,stop:s");
    CHECK_WHICH(self, "");
    finish(self);
}

AMB_TEST(app_with_a_supervision_tree_starts_and_stops_it)
{
    set_mode(&app_s_info, M_SUP);
    run(sup_tree, NULL);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(app_deps_order_is_topological_and_names_cycles),
              AMB_TEST_ENTRY(app_deps_self_cycle_and_long_chain),
              AMB_TEST_ENTRY(app_load_start_which_stop),
              AMB_TEST_ENTRY(app_start_starts_dependencies_first_and_stop_leaves_them),
              AMB_TEST_ENTRY(app_diamond_dependency_starts_once),
              AMB_TEST_ENTRY(app_dependency_cycle_is_einit_and_named),
              AMB_TEST_ENTRY(app_missing_dependency_is_enotfound),
              AMB_TEST_ENTRY(app_failing_start_rolls_back_what_it_started),
              AMB_TEST_ENTRY(app_start_or_stop_from_a_start_function_is_edeadlk),
              AMB_TEST_ENTRY(app_first_calls_racing_share_one_controller),
              AMB_TEST_ENTRY(app_env_defaults_get_and_set),
              AMB_TEST_ENTRY(app_get_env_copies_onto_the_callers_heap),
              AMB_TEST_ENTRY(app_set_env_repeated_does_not_grow_memory),
              AMB_TEST_ENTRY(app_config_file_overrides_defaults_and_bad_files_fail),
              AMB_TEST_ENTRY(app_temporary_app_whose_top_crashes_is_only_reported),
              AMB_TEST_ENTRY(app_killed_master_takes_its_tree_down_and_is_reported),
              AMB_TEST_ENTRY(app_permanent_app_whose_top_ends_stops_the_runtime),
              AMB_TEST_ENTRY(app_permanent_app_ending_normally_stops_the_runtime),
              AMB_TEST_ENTRY(app_transient_app_ending_normally_is_only_reported),
              AMB_TEST_ENTRY(app_stop_callback_asking_to_stop_is_edeadlk),
              AMB_TEST_ENTRY(app_controller_killed_takes_the_trees_down),
              AMB_TEST_ENTRY(app_transient_app_ending_abnormally_stops_the_runtime),
              AMB_TEST_ENTRY(app_shutdown_stops_all_in_reverse_and_ends_the_controller),
              AMB_TEST_ENTRY(app_with_a_supervision_tree_starts_and_stops_it))

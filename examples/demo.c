/*
 * demo.c - a supervision tree doing real work: what `make demo` runs.
 * docs/supervision-walkthrough.md walks through it.
 *
 * The application `jobs` starts this tree:
 *
 *   jobs_sup (rest_for_one)
 *   ├── stats     counts finished and failed jobs, prints a line a second
 *   ├── pool_sup  a dynamic supervisor of 4 permanent workers
 *   │   └── worker x 4   count the primes in a range
 *   └── producer  makes 4 jobs a second and hands each to an idle worker
 *
 * Every fifth job is poison: its range runs backwards, and the worker that
 * gets it crashes ("let it crash": no error handling in the worker). The
 * crash report goes through the logger; pool_sup starts a fresh worker in
 * its place; the producer, which monitors its workers, reports the job
 * failed. The other workers never notice.
 *
 * The run ends by itself: when every job is done or failed and every
 * crashed worker has been replaced, stats tells the main process, which
 * prints the tree again, stops the application and checks the counts.
 * Its waits have deadlines (10 s for the end), so it cannot hang on a lost
 * message. Exit status 0 when the counts are the expected ones.
 */
#include <ambitious.h>
#include <stdio.h>
#include <string.h>

#define NJOBS     20    /* jobs the producer makes ... */
#define BATCH     4     /* ... BATCH at a time ... */
#define PERIOD_MS 1000  /* ... every PERIOD_MS */
#define POOL      4     /* workers under pool_sup */
#define SPAN      20000 /* each job counts the primes among SPAN numbers */

/* Jobs 3, 8, 13 and 18 are poison. */
static bool is_poison(int job)
{
    return job % 5 == 3;
}

/* A term as a human reads it (the pretty style: a pid as Erlang's shell
 * shows it, <0.Id.Serial>), for printf: printf("%s", pid_text(pid).s). */
typedef struct pid_text_buf {
    char s[120];
} pid_text_buf;
static pid_text_buf pid_text(amb_term t)
{
    pid_text_buf b;
    amb_print_ex(t, AMB_PRINT_PRETTY, b.s, sizeof b.s, NULL); /* a cut text is fine */
    return b;
}

/* ===========================================================================
 * worker: a gen_server that runs one job at a time
 * ======================================================================== */

static int64_t count_primes(int64_t lo, int64_t hi)
{
    int64_t n = 0;
    for (int64_t x = lo < 2 ? 2 : lo; x < hi; x++) {
        bool prime = true;
        for (int64_t d = 2; d * d <= x && prime; d++)
            prime = x % d != 0;
        n += prime;
    }
    return n;
}

/* Says hello to stats (which numbers the starts, so a worker knows whether
 * it replaces a crashed one) and tells the producer it is ready. */
static amb_gen_ret worker_init(amb_proc *self, void *state, void *arg)
{
    amb_term reply;
    int rc = amb_gen_server_call(self, amb_atom("stats"), amb_atom("worker_started"),
                                 5000, &reply);
    if (rc != 0)
        return amb_gen_fail(rc);
    int64_t start_no = 0;
    amb_int_get(reply, &start_no);
    if (start_no > POOL)
        printf("  worker %s started (restart #%d)\n", pid_text(amb_self(self)).s,
               (int)(start_no - POOL));
    amb_gen_server_cast(self, amb_atom("producer"),
                        amb_pack(amb_proc_heap(self), "{ready, ~p}", amb_self(self)));
    return amb_gen_ok();
}

/* {job, N, Lo, Hi}: count the primes in [Lo, Hi). */
static amb_gen_ret worker_cast(amb_proc *self, void *state, amb_term msg)
{
    amb_heap *h = amb_proc_heap(self);
    int job;
    int64_t lo, hi;
    if (amb_match(msg, "{job, ~i, ~l, ~l}", &job, &lo, &hi) != 0)
        return amb_gen_noreply();
    /* No error handling: a bad job crashes the worker, with a reason that
     * says why. The supervisor deals with the rest. */
    if (lo > hi)
        amb_exit_self(self, amb_pack(h, "{bad_range, ~l, ~l}", lo, hi));

    int64_t primes = count_primes(lo, hi);
    printf("job %2d: %4lld primes in [%lld, %lld)   (worker %s)\n", job,
           (long long)primes, (long long)lo, (long long)hi, pid_text(amb_self(self)).s);
    amb_gen_server_cast(self, amb_atom("stats"), amb_pack(h, "{done, ~i}", job));
    amb_gen_server_cast(self, amb_atom("producer"),
                        amb_pack(h, "{ready, ~p}", amb_self(self)));
    return amb_gen_noreply();
}

static const amb_gen_server worker_server = {
    .name = "worker",
    .init = worker_init,
    .handle_cast = worker_cast,
};

/* ===========================================================================
 * stats: a gen_server that counts
 * ======================================================================== */

typedef struct stats {
    int done, failed;
    int starts;      /* workers started, first ones included */
    int seconds;     /* ticks so far */
    amb_pid watcher; /* told when everything is over (AMB_NONE: nobody) */
} stats;

static int restarts(const stats *s)
{
    return s->starts > POOL ? s->starts - POOL : 0;
}

/* The end: every job done or failed, and every crashed worker replaced. */
static void maybe_tell_watcher(amb_proc *self, stats *s)
{
    if (s->watcher == AMB_NONE || s->done + s->failed < NJOBS || restarts(s) < s->failed)
        return;
    amb_send(self, s->watcher,
             amb_pack(amb_proc_heap(self), "{jobs_finished, ~i, ~i, ~i}", s->done,
                      s->failed, restarts(s)));
    s->watcher = AMB_NONE;
}

static amb_gen_ret stats_init(amb_proc *self, void *state, void *arg)
{
    amb_send_after(self, amb_self(self), amb_atom("tick"), 1000, NULL);
    return amb_gen_ok();
}

/* worker_started -> the number of this start (1, 2, ...). */
static amb_gen_ret stats_call(amb_proc *self, void *state, amb_term request,
                              amb_term from)
{
    stats *s = state;
    if (request != amb_atom("worker_started"))
        return amb_gen_reply(amb_atom("bad_request"));
    s->starts++;
    maybe_tell_watcher(self, s);
    return amb_gen_reply(amb_int(amb_proc_heap(self), s->starts));
}

/* {done, N}, {failed, N}, {notify, Pid}. */
static amb_gen_ret stats_cast(amb_proc *self, void *state, amb_term msg)
{
    stats *s = state;
    int job;
    amb_pid pid;
    if (amb_match(msg, "{done, ~i}", &job) == 0) {
        s->done++;
    } else if (amb_match(msg, "{failed, ~i}", &job) == 0) {
        s->failed++;
        printf("  job %d failed: its worker died\n", job);
    } else if (amb_match(msg, "{notify, ~p}", &pid) == 0) {
        s->watcher = pid; /* a pid is a plain word: it may live in the state */
    }
    maybe_tell_watcher(self, s);
    return amb_gen_noreply();
}

/* tick: one line a second. */
static amb_gen_ret stats_info(amb_proc *self, void *state, amb_term msg)
{
    stats *s = state;
    if (msg == amb_atom("tick")) {
        s->seconds++;
        printf("[stats %ds] done %d, failed %d, restarts %d\n", s->seconds, s->done,
               s->failed, restarts(s));
        amb_send_after(self, amb_self(self), amb_atom("tick"), 1000, NULL);
    }
    return amb_gen_noreply();
}

static const amb_gen_server stats_server = {
    .name = "stats",
    .state_size = sizeof(stats),
    .init = stats_init,
    .handle_call = stats_call,
    .handle_cast = stats_cast,
    .handle_info = stats_info,
};

/* ===========================================================================
 * producer: a gen_server that makes jobs and hands them out
 * ======================================================================== */

/* The workers the producer knows: a pid and the job it runs (0: idle). A
 * replacement may say hello before the DOWN of the one it replaces
 * arrives, hence more slots than workers. */
#define SLOTS (2 * POOL)

typedef struct producer {
    int made;   /* jobs made so far */
    int handed; /* jobs handed to a worker; jobs made - handed wait */
    struct {
        amb_pid pid; /* AMB_NONE: free slot */
        int job;
    } slot[SLOTS];
} producer;

/* The worker spec: permanent, so pool_sup replaces a worker that crashes. */
static const amb_gen_child worker_child = {&worker_server, NULL, AMB_NONE};
static const amb_child_spec worker_spec = {
    .start = amb_gen_child_start,
    .arg = (void *)&worker_child,
    .restart = AMB_PERMANENT,
    .shutdown_ms = 1000,
    .type = AMB_WORKER,
};

/* Job n counts the primes in [n * 50000, n * 50000 + SPAN); a poison job
 * has the bounds the wrong way round. */
static amb_term job_term(amb_heap *h, int n)
{
    int64_t lo = (int64_t)n * 50000, hi = lo + SPAN;
    if (is_poison(n))
        return amb_pack(h, "{job, ~i, ~l, ~l}", n, hi, lo);
    return amb_pack(h, "{job, ~i, ~l, ~l}", n, lo, hi);
}

/* Hands waiting jobs to idle workers, oldest job first. */
static void dispatch(amb_proc *self, producer *p)
{
    for (int i = 0; i < SLOTS && p->handed < p->made; i++) {
        if (p->slot[i].pid == AMB_NONE || p->slot[i].job != 0)
            continue;
        p->slot[i].job = ++p->handed;
        amb_gen_server_cast(self, p->slot[i].pid,
                            job_term(amb_proc_heap(self), p->slot[i].job));
    }
}

/* Starts the pool's workers; each says {ready, Pid} when it is up. */
static amb_gen_ret producer_init(amb_proc *self, void *state, void *arg)
{
    for (int i = 0; i < POOL; i++) {
        int rc =
            amb_dynsup_start_child(self, amb_atom("pool_sup"), &worker_spec, NULL, NULL);
        if (rc != 0)
            return amb_gen_fail(rc);
    }
    /* The first batch in half a period (time for main to print the tree),
     * the next ones every period. */
    amb_send_after(self, amb_self(self), amb_atom("tick"), PERIOD_MS / 2, NULL);
    return amb_gen_ok();
}

/* The slot holding pid (AMB_NONE: a free slot), or -1. */
static int slot_of(const producer *p, amb_pid pid)
{
    for (int i = 0; i < SLOTS; i++)
        if (p->slot[i].pid == pid)
            return i;
    return -1;
}

/* {ready, Pid}: a worker is idle. A new one gets a slot and a monitor. */
static amb_gen_ret producer_cast(amb_proc *self, void *state, amb_term msg)
{
    producer *p = state;
    amb_pid pid;
    amb_term ref;
    if (amb_match(msg, "{ready, ~p}", &pid) != 0)
        return amb_gen_noreply();
    int i = slot_of(p, pid);
    if (i < 0 && (i = slot_of(p, AMB_NONE)) >= 0) {
        amb_monitor(self, pid, &ref);
        p->slot[i].pid = pid;
    }
    if (i >= 0)
        p->slot[i].job = 0;
    dispatch(self, p);
    return amb_gen_noreply();
}

/* tick: make a batch of jobs. {'DOWN', _, process, Pid, _}: a worker died;
 * its job, if it had one, failed. */
static amb_gen_ret producer_info(amb_proc *self, void *state, amb_term msg)
{
    producer *p = state;
    amb_pid pid;
    int i;
    if (msg == amb_atom("tick")) {
        p->made = p->made + BATCH < NJOBS ? p->made + BATCH : NJOBS;
        if (p->made < NJOBS)
            amb_send_after(self, amb_self(self), amb_atom("tick"), PERIOD_MS, NULL);
    } else if (amb_match(msg, "{'DOWN', _, process, ~p, _}", &pid) == 0 &&
               (i = slot_of(p, pid)) >= 0) {
        if (p->slot[i].job != 0)
            amb_gen_server_cast(
                self, amb_atom("stats"),
                amb_pack(amb_proc_heap(self), "{failed, ~i}", p->slot[i].job));
        p->slot[i].pid = AMB_NONE;
    }
    dispatch(self, p);
    return amb_gen_noreply();
}

static const amb_gen_server producer_server = {
    .name = "producer",
    .state_size = sizeof(producer),
    .init = producer_init,
    .handle_cast = producer_cast,
    .handle_info = producer_info,
};

/* ===========================================================================
 * The application: its start function builds the tree
 * ======================================================================== */

static int pool_sup_start(amb_proc *self, void *arg, amb_pid *out, amb_term *reason)
{
    /* Up to 5 restarts in 5 s: the 4 poison jobs fit. A 6th crash within
     * 5 s would make pool_sup give up (escalation: jobs_sup restarts it). */
    amb_dynsup_opts opts = {.intensity = 5, .period_ms = 5000, .max_children = POOL};
    amb_gen_opts gopts = {.name = amb_atom("pool_sup")};
    return amb_dynsup_start_link(self, &opts, &gopts, out, reason);
}

/* Names are atoms, made at run time: these are filled in by jobs_start. */
static amb_gen_child stats_child, producer_child;

static int jobs_start(amb_proc *self, void *arg, amb_pid *top, amb_term *reason)
{
    stats_child = (amb_gen_child){&stats_server, NULL, amb_atom("stats")};
    producer_child = (amb_gen_child){&producer_server, NULL, amb_atom("producer")};
    amb_child_spec children[] = {
        {.id = amb_atom("stats"), .start = amb_gen_child_start, .arg = &stats_child},
        {.id = amb_atom("pool_sup"), .start = pool_sup_start, .type = AMB_SUPERVISOR},
        {.id = amb_atom("producer"),
         .start = amb_gen_child_start,
         .arg = &producer_child},
    }; /* zeroes: permanent, default shutdown, worker */
    amb_sup_spec spec = {
        /* rest_for_one: a child that restarts takes the children after it
         * along. The producer fills pool_sup with workers, so if pool_sup
         * ever restarts (empty), the producer must restart after it. */
        .flags = {.strategy = AMB_REST_FOR_ONE, .intensity = 3, .period_ms = 5000},
        .children = children,
        .nchildren = 3,
    };
    amb_gen_opts opts = {.name = amb_atom("jobs_sup")};
    return amb_sup_start_link(self, &spec, &opts, top, reason); /* why, if it fails */
}

static const amb_app jobs_app = {
    .name = "jobs",
    .description = "a job queue",
    .vsn = "1.0.0",
    .start = jobs_start,
};

/* ===========================================================================
 * The main process: start, watch, stop, check
 * ======================================================================== */

/* The logger handler: one line per event. It runs on any scheduler thread,
 * so it keeps to one printf (stdio locks the stream for each call). */
static void log_line(void *ctx, const amb_log_event *ev)
{
    if (ev->crash_report) {
        printf("  crash report: %s died: %s\n", pid_text(ev->pid).s,
               pid_text(ev->reason).s);
    } else {
        printf("  log %s: %.*s\n", pid_text(ev->pid).s, (int)strcspn(ev->text, "\n"),
               ev->text);
    }
}

/* Prints the children of sup, and theirs, as a tree. */
static void print_tree(amb_proc *self, amb_pid sup, const char *indent)
{
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark mark = amb_heap_save(h);
    amb_term children;
    if (amb_sup_which_children(self, sup, &children) == 0) {
        /* which_children lists the newest child first, as OTP does: printed
         * the other way round, the tree reads in start order. */
        amb_term in_order = AMB_NIL;
        for (amb_term l = children; amb_is_cons(l); l = amb_list_tail(l))
            in_order = amb_cons(h, amb_list_head(l), in_order);
        for (amb_term l = in_order; amb_is_cons(l); l = amb_list_tail(l)) {
            amb_term id, child, type;
            if (amb_match(amb_list_head(l), "{~w, ~w, ~w, _}", &id, &child, &type) != 0)
                continue;
            bool last = !amb_is_cons(amb_list_tail(l));
            const char *name =
                id == AMB_ATOM_UNDEFINED ? "worker" : amb_atom_name(id, NULL);
            printf("%s%s %-8s %s\n", indent, last ? "└──" : "├──", name ? name : "?",
                   pid_text(child).s);
            if (type == amb_atom("supervisor") && amb_type_of(child) == AMB_T_PID) {
                char deeper[64];
                snprintf(deeper, sizeof deeper, "%s%s", indent, last ? "    " : "│   ");
                print_tree(self, child, deeper);
            }
        }
    }
    amb_heap_rewind(h, mark);
}

static void show_tree(amb_proc *self, const char *title)
{
    amb_pid top;
    printf("%s\n", title);
    if (amb_whereis(self, amb_atom("jobs_sup"), &top) != 0) {
        printf("  (no jobs_sup)\n");
        return;
    }
    printf("jobs_sup %s\n", pid_text(top).s);
    print_tree(self, top, "");
}

static void main_process(amb_proc *self, void *arg)
{
    int *exit_code = arg;
    amb_logger_set_handler(amb_proc_rt(self), log_line, NULL);

    int rc = amb_app_load(self, &jobs_app);
    amb_term reason = AMB_NONE;
    if (rc == 0)
        rc = amb_app_start(self, "jobs", AMB_APP_PERMANENT, &reason);
    if (rc != 0) {
        printf("cannot start jobs: %s ", amb_err_name(rc));
        if (reason != AMB_NONE)
            amb_fprint_ex(reason, AMB_PRINT_PRETTY, stdout);
        printf("\n");
        amb_app_shutdown(self);
        return;
    }
    show_tree(self, "== the tree at the start");
    printf("== %d jobs, %d every %d ms; jobs", NJOBS, BATCH, PERIOD_MS);
    for (int j = 1; j <= NJOBS; j++)
        if (is_poison(j))
            printf(" %d", j);
    printf(" are poison\n");

    /* Ask stats to tell us when it is all over; wait at most 10 s. */
    amb_gen_server_cast(self, amb_atom("stats"),
                        amb_pack(amb_proc_heap(self), "{notify, ~p}", amb_self(self)));
    int done = 0, failed = 0, restarts = 0;
    bool finished = amb_receive_match(self, 10000, NULL, "{jobs_finished, ~i, ~i, ~i}",
                                      &done, &failed, &restarts) == 0;

    show_tree(self, "== the tree at the end (restarted workers have new pids)");
    rc = amb_app_stop(self, "jobs");
    amb_pid pid;
    bool gone = rc == 0 && amb_whereis(self, amb_atom("jobs_sup"), &pid) != 0;
    printf("== application jobs stopped: %s\n", gone ? "the tree is gone" : "FAILED");
    /* The application controller is a process too: end it, so that every
     * process has ended and amb_main returns. */
    amb_app_shutdown(self);

    int poison = 0;
    for (int j = 1; j <= NJOBS; j++)
        poison += is_poison(j);
    bool ok = finished && gone && done == NJOBS - poison && failed == poison &&
              restarts == poison;
    if (finished)
        printf("== summary: %d jobs done, %d failed, %d workers restarted (expected %d, "
               "%d, %d): %s\n",
               done, failed, restarts, NJOBS - poison, poison, poison,
               ok ? "OK" : "WRONG");
    else
        printf("== summary: the jobs did not finish within 10 s: WRONG\n");
    *exit_code = ok ? 0 : 1;
}

int main(void)
{
    int exit_code = 1; /* stays 1 unless main_process saw the expected counts */
    int rc = amb_main(NULL, main_process, &exit_code);
    if (rc != 0) {
        fprintf(stderr, "demo: %s\n", amb_strerror(rc));
        return 1;
    }
    printf("all processes ended\n");
    return exit_code;
}

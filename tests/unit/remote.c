/*
 * tests/unit/remote.c - the process layer's contract with the
 * distribution layer (src/process/remote.h), without sockets: a fake dist
 * layer records every op the process layer calls, and the test process
 * plays the connection process, pushing signals from "another node" with
 * the amb__remote_* functions.
 *
 * What is proved:
 *   - without a node, a foreign pid, alias or {Name, Node} stays
 *     AMB_ENOTSUP for send, link, unlink, monitor and exit;
 *   - with one, each route reaches its op with what the wire needs: send
 *     (from the sender, or AMB_NONE from amb_rt_send) to a foreign pid, a
 *     foreign alias and {Name, Node}; link, unlink with its id and the link's
 *     connection; exit/2; monitor of a pid and of a name with the
 *     reference, and demonitor with the same reference;
 *   - signals from another node act as local ones do: a LINK becomes a link
 *     (process_info lists the foreign pid) whose end sends an exit with the
 *     real reason over its connection; an EXIT of a link acts only while it
 *     is active, and is trapped as {'EXIT', Pid, Reason}; UNLINK_ID ends the
 *     link and is acknowledged; a MONITOR_P gets MONITOR_P_EXIT with the
 *     reason (naming the name for a monitor by name), at once with noproc
 *     for a dead pid or a name nobody has, never after DEMONITOR_P; a DOWN
 *     from there reaches the watcher only while its monitor is active;
 *   - NODEDOWN ends exactly the relations of its connection, each once:
 *     every active link with an exit noconnection, every monitor held with
 *     a DOWN noconnection naming {Name, Node} for a name, the monitors of
 *     the process silently; relations of another connection stay, and a
 *     second NODEDOWN or a late exit from the far end does nothing;
 *     handling NODEDOWN takes no memory (the ends become the signals);
 *   - the dist layer hears when a process with foreign relations ends
 *     (after the signals of its end);
 *   - a distributed identity (amb__remote_set_node) renames every pid of
 *     the runtime, made before or after, while references and aliases made
 *     under the first name stay the runtime's own (a demonitor, an alias
 *     send);
 *   - gen_server across nodes: a call to {Name, Node} monitors the name
 *     and sends OTP's [alias | Alias] tag; a server answers a caller of
 *     another node through its alias, or at its pid for a plain tag.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "amb_test_rt.h"
#include "ambitious/gen_server.h"
#include "process/remote.h"

/* ===========================================================================
 * The fake dist layer: every op appends {Op, Args...} to a log.
 * ======================================================================== */

#define LOG_MAX 256

static struct {
    pthread_mutex_t lock;
    amb_heap *heap; /* the log's terms; freed with the runtime (ops->free) */
    amb_term rec[LOG_MAX];
    bool taken[LOG_MAX];
    size_t n;
    atomic_uint next_conn; /* what link and monitor hand out */
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Appends {op, args...} (copies) to the log. */
static void record(const char *op, size_t n, const amb_term *args)
{
    pthread_mutex_lock(&fake.lock);
    if (fake.heap == NULL && amb_heap_new(&fake.heap) != 0)
        abort();
    amb_term v[8];
    v[0] = amb_atom(op);
    for (size_t i = 0; i < n; i++)
        if (amb_term_copy(fake.heap, args[i], &v[i + 1]) != 0)
            abort();
    if (fake.n == LOG_MAX)
        abort();
    fake.rec[fake.n] = amb_tuple(fake.heap, n + 1, v);
    fake.taken[fake.n++] = false;
    pthread_mutex_unlock(&fake.lock);
}

static amb_term conn_term(uint32_t conn)
{
    return AMB_SMALL(conn);
}

static int op_send(void *ctx, amb__sched *s, amb_pid from, amb_term to, amb_term msg)
{
    (void)ctx, (void)s;
    record("send", 3,
           (amb_term[]){from == AMB_NONE ? AMB_ATOM_UNDEFINED : from, to, msg});
    return 0;
}
static int op_link(void *ctx, amb_proc *self, amb_pid to, uint32_t *conn)
{
    (void)ctx;
    *conn = atomic_load(&fake.next_conn);
    record("link", 3, (amb_term[]){amb_self(self), to, conn_term(*conn)});
    return 0;
}
static void op_unlink(void *ctx, amb_proc *self, amb_pid to, uint64_t id, uint32_t conn)
{
    (void)ctx;
    record("unlink", 4, (amb_term[]){amb_self(self), to, AMB_SMALL(id), conn_term(conn)});
}
static void op_unlink_ack(void *ctx, amb__sched *s, amb_pid from, amb_pid to, uint64_t id,
                          uint32_t conn)
{
    (void)ctx, (void)s;
    record("unlink_ack", 4, (amb_term[]){from, to, AMB_SMALL(id), conn_term(conn)});
}
static void op_exit(void *ctx, amb__sched *s, amb_pid from, amb_pid to, amb_term reason,
                    bool linked, uint32_t conn)
{
    (void)ctx, (void)s;
    record("exit", 5,
           (amb_term[]){from, to, reason, linked ? AMB_ATOM_TRUE : AMB_ATOM_FALSE,
                        conn_term(conn)});
}
static int op_monitor(void *ctx, amb_proc *self, amb_term target, amb_term node,
                      amb_term ref, uint32_t *conn)
{
    (void)ctx;
    *conn = atomic_load(&fake.next_conn);
    record("monitor", 5,
           (amb_term[]){amb_self(self), target, node, ref, conn_term(*conn)});
    return 0;
}
static void op_demonitor(void *ctx, amb__sched *s, amb_pid watcher, amb_term target,
                         amb_term node, amb_term ref, uint32_t conn)
{
    (void)ctx, (void)s;
    record("demonitor", 5, (amb_term[]){watcher, target, node, ref, conn_term(conn)});
}
static void op_down(void *ctx, amb__sched *s, amb_pid from, amb_term target,
                    amb_pid watcher, amb_term ref, amb_term reason, uint32_t conn)
{
    (void)ctx, (void)s, (void)from;
    record("down", 5, (amb_term[]){target, watcher, ref, reason, conn_term(conn)});
}
static void op_gone(void *ctx, amb__sched *s, amb_pid pid)
{
    (void)ctx, (void)s;
    record("gone", 1, &pid);
}
static void op_free(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&fake.lock);
    amb_heap_free(fake.heap);
    fake.heap = NULL;
    fake.n = 0;
    pthread_mutex_unlock(&fake.lock);
}

static const amb__remote_ops fake_ops = {
    .send = op_send,
    .link = op_link,
    .unlink = op_unlink,
    .unlink_ack = op_unlink_ack,
    .exit = op_exit,
    .monitor = op_monitor,
    .demonitor = op_demonitor,
    .down = op_down,
    .gone = op_gone,
    .free = op_free,
};
static const amb__remote fake_remote = {.ops = &fake_ops};

/* Installs the fake in the caller's runtime. */
static void install(amb_proc *self)
{
    atomic_store(&fake.next_conn, 1);
    CHECK_OK(self, amb__remote_install(amb_proc_rt(self), &fake_remote));
}

/* The first log entry not taken yet that matches fmt (amb_match), waited
 * for with a deadline (ops from a teardown run on any scheduler); it is
 * taken. Its terms live until the runtime is freed. */
static amb_term wait_rec_at(amb_proc *self, const char *file, int line, const char *fmt,
                            ...)
{
    int64_t until = amb_now_ms() + AMB_TEST_WAIT_MS;
    for (;;) {
        pthread_mutex_lock(&fake.lock);
        for (size_t i = 0; i < fake.n; i++) {
            if (fake.taken[i])
                continue;
            va_list ap;
            va_start(ap, fmt);
            int rc = amb_vmatch(fake.rec[i], NULL, fmt, ap);
            va_end(ap);
            if (rc == 0) {
                fake.taken[i] = true;
                amb_term t = fake.rec[i];
                pthread_mutex_unlock(&fake.lock);
                return t;
            }
        }
        pthread_mutex_unlock(&fake.lock);
        if (amb_now_ms() > until)
            proc_fail(self, file, line, "no op matching %s", fmt);
        amb_yield(self);
    }
}
#define WAIT_REC(self, ...) wait_rec_at((self), __FILE__, __LINE__, __VA_ARGS__)

/* The number of log entries not taken yet that match fmt (no variables). */
static size_t count_rec(const char *fmt)
{
    size_t n = 0;
    pthread_mutex_lock(&fake.lock);
    for (size_t i = 0; i < fake.n; i++)
        n += !fake.taken[i] && amb_match(fake.rec[i], fmt) == 0;
    pthread_mutex_unlock(&fake.lock);
    return n;
}

/* A pid of another node (a box), and a reference there. */
static amb_pid foreign_pid(amb_proc *self, const char *node, uint32_t id)
{
    return amb_pid_term(amb_proc_heap(self), amb_atom(node), id, 0, 7);
}
static amb_term foreign_ref(amb_proc *self, const char *node, uint32_t n)
{
    uint32_t w[3] = {n, 1, 2};
    return amb_ref_term(amb_proc_heap(self), amb_atom(node), 7, w, 3);
}

/* True when the proper list l holds a term equal to t. */
static bool list_has(amb_term l, amb_term t)
{
    for (; amb_is_cons(l); l = amb_list_tail(l))
        if (amb_equal(amb_list_head(l), t))
            return true;
    return false;
}

static size_t list_len(amb_term l)
{
    size_t n = 0;
    amb_list_length(l, &n);
    return n;
}

/* Nothing is (or arrives) in the caller's mailbox now. */
static void check_empty(amb_proc *self)
{
    amb_term t;
    CHECK_RC(self, AMB_ETIMEDOUT, amb_receive(self, 0, &t));
}

/* A process that waits for anything and ends with it as its reason
 * (normal for 'normal'), trapping exits when arg is non-NULL; it sends
 * its {'EXIT', ...} messages back to the test as {got, Msg}. */
typedef struct victim_arg {
    amb_pid parent;
    bool trap;
} victim_arg;
static void victim(amb_proc *self, void *arg)
{
    victim_arg *a = arg;
    amb_trap_exit(self, a->trap);
    CHECK_OK(self,
             amb_send(self, a->parent,
                      AMB_TUPLE(amb_proc_heap(self), amb_atom("ready"), amb_self(self))));
    for (;;) {
        amb_term m = RECV(self);
        amb_term reason;
        if (amb_match(m, "{die,~w}", &reason) == 0)
            amb_exit_self(self, reason);
        CHECK_OK(self, amb_send(self, a->parent,
                                AMB_TUPLE(amb_proc_heap(self), amb_atom("got"), m)));
    }
}

/* Spawns a victim and waits until it is ready (trapping, if asked). */
static amb_pid start_victim(amb_proc *self, victim_arg *a)
{
    amb_pid v;
    CHECK_OK(self, amb_spawn(self, victim, a, &v));
    WAIT_MSG(self, NULL, "{ready,~v}", v);
    return v;
}

/* ===========================================================================
 * Without a node
 * ======================================================================== */

static void no_node_body(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid r = foreign_pid(self, "other@host", 5);
    amb_term name =
        AMB_TUPLE(amb_proc_heap(self), amb_atom("srv"), amb_atom("other@host"));
    CHECK_RC(self, AMB_ENOTSUP, amb_send(self, r, AMB_ATOM_OK));
    CHECK_RC(self, AMB_ENOTSUP, amb_send(self, name, AMB_ATOM_OK));
    CHECK_RC(self, AMB_ENOTSUP, amb_link(self, r));
    CHECK_RC(self, AMB_ENOTSUP, amb_unlink(self, r));
    CHECK_RC(self, AMB_ENOTSUP, amb_monitor(self, r, NULL));
    CHECK_RC(self, AMB_ENOTSUP, amb_monitor(self, name, NULL));
    CHECK_RC(self, AMB_ENOTSUP, amb_exit(self, r, AMB_ATOM_KILL));
    amb_term out;
    CHECK_RC(self, AMB_ENOTSUP, amb_dest_resolve(self, name, &out));
    /* A foreign reference is no destination of ours either. */
    CHECK_RC(self, AMB_ENOTSUP, amb_send(self, foreign_ref(self, "other@host", 1), 1));
}

AMB_TEST(remote_without_a_node_foreign_destinations_are_notsup)
{
    run_both(no_node_body, NULL);
}

/* ===========================================================================
 * Out: each route reaches its op
 * ======================================================================== */

static void routes_body(amb_proc *self, void *arg)
{
    (void)arg;
    install(self);
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self), r = foreign_pid(self, "other@host", 5);
    amb_term name = AMB_TUPLE(h, amb_atom("srv"), amb_atom("other@host"));
    amb_term fref = foreign_ref(self, "other@host", 9);

    CHECK_OK(self, amb_send(self, r, amb_atom("hello")));
    WAIT_REC(self, "{send,~v,~v,hello}", me, r);
    CHECK_OK(self, amb_send(self, name, amb_atom("by_name")));
    WAIT_REC(self, "{send,~v,{srv,'other@host'},by_name}", me);
    CHECK_OK(self, amb_send(self, fref, amb_atom("to_alias")));
    WAIT_REC(self, "{send,~v,~v,to_alias}", me, fref);
    CHECK_OK(self, amb_rt_send(amb_proc_rt(self), r, amb_atom("outside")));
    WAIT_REC(self, "{send,undefined,~v,outside}", r);
    amb_term out;
    CHECK_OK(self, amb_dest_resolve(self, name, &out));
    CHECK(self, amb_equal(out, name));

    /* link, then link again (no signal), unlink with its id and the
     * link's connection (the connection handed out at link time, not the
     * one handed out now). */
    atomic_store(&fake.next_conn, 3);
    CHECK_OK(self, amb_link(self, r));
    WAIT_REC(self, "{link,~v,~v,3}", me, r);
    atomic_store(&fake.next_conn, 4);
    CHECK_OK(self, amb_link(self, r));
    CHECK_EQ(self, count_rec("{link,_,_,_}"), 0);
    amb_term links;
    CHECK_OK(self, amb_process_info_items(self, me, amb_atom("links"), &links));
    CHECK(self, list_has(amb_tuple_elem(links, 1), r));
    CHECK_OK(self, amb_unlink(self, r));
    WAIT_REC(self, "{unlink,~v,~v,_,3}", me, r);
    CHECK_OK(self, amb_unlink(self, r)); /* an unlink under way: nothing more */
    CHECK_EQ(self, count_rec("{unlink,_,_,_,_}"), 0);

    CHECK_OK(self, amb_exit(self, r, amb_atom("bye")));
    WAIT_REC(self, "{exit,~v,~v,bye,false,0}", me, r);

    /* monitor of a pid and of a name, demonitor with the same reference */
    amb_term ref1, ref2;
    CHECK_OK(self, amb_monitor(self, r, &ref1));
    WAIT_REC(self, "{monitor,~v,~v,'other@host',~r,4}", me, r, ref1);
    CHECK_OK(self, amb_monitor(self, name, &ref2));
    WAIT_REC(self, "{monitor,~v,srv,'other@host',~r,4}", me, ref2);
    CHECK_OK(self, amb_demonitor(self, ref1, 0));
    WAIT_REC(self, "{demonitor,~v,~v,'other@host',~r,4}", me, r, ref1);
    CHECK_OK(self, amb_demonitor(self, ref2, AMB_DEMONITOR_FLUSH));
    WAIT_REC(self, "{demonitor,~v,srv,'other@host',~r,4}", me, ref2);
    CHECK_RC(self, AMB_ENOTFOUND, amb_demonitor(self, ref2, 0));
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, me, &pi));
    CHECK_EQ(self, pi.monitors, 0);
}

AMB_TEST(remote_routes_reach_the_dist_layer)
{
    run_both(routes_body, NULL);
}

/* ===========================================================================
 * In: links and exits from another node
 * ======================================================================== */

static void links_in_body(amb_proc *self, void *arg)
{
    (void)arg;
    install(self);
    amb_pid me = amb_self(self), r = foreign_pid(self, "other@host", 5),
            r2 = foreign_pid(self, "other@host", 6);

    /* A LINK from there makes a link; the victim's end sends its real
     * reason back over the link's connection. */
    victim_arg va = {me, false};
    amb_pid v;
    v = start_victim(self, &va);
    CHECK_OK(self, amb__remote_link(self, r, v, 7));
    amb_term links = AMB_NONE;
    WAIT_UNTIL(self, amb_process_info_items(self, v, amb_atom("links"), &links) == 0 &&
                         list_has(amb_tuple_elem(links, 1), r));
    CHECK_OK(self,
             amb_send(self, v, amb_pack(amb_proc_heap(self), "{die,{shutdown,x}}")));
    WAIT_REC(self, "{exit,~v,~v,{shutdown,x},true,7}", v, r);
    WAIT_REC(self, "{gone,~v}", v);

    /* A LINK to a dead pid: exit noproc back. */
    CHECK_OK(self, amb__remote_link(self, r, v, 7));
    WAIT_REC(self, "{exit,~v,~v,noproc,true,7}", v, r);

    /* A trapping process: the link's EXIT is a message with the foreign
     * pid; an EXIT2 normal too; a link EXIT after UNLINK_ID is dropped, and
     * the UNLINK_ID is acknowledged. */
    victim_arg ta = {me, true};
    v = start_victim(self, &ta);
    CHECK_OK(self, amb__remote_link(self, r, v, 7));
    CHECK_OK(self, amb__remote_exit(self, r, v, amb_atom("boom"), true));
    amb_term got;
    WAIT_MSG(self, &got, "{got,{'EXIT',~v,boom}}", r);
    CHECK_OK(self, amb__remote_exit(self, r2, v, AMB_ATOM_NORMAL, false));
    WAIT_MSG(self, &got, "{got,{'EXIT',~v,normal}}", r2);
    CHECK_OK(self, amb__remote_link(self, r2, v, 7));
    CHECK_OK(self, amb__remote_unlink(self, r2, v, 41, 7));
    WAIT_REC(self, "{unlink_ack,~v,~v,41,7}", v, r2);
    CHECK_OK(self, amb__remote_exit(self, r2, v, amb_atom("late"), true));
    /* An EXIT of a link that is gone (the boom above removed r's link). */
    CHECK_OK(self, amb__remote_exit(self, r, v, amb_atom("again"), true));
    CHECK_OK(self, amb_send(self, v, amb_atom("marker")));
    WAIT_MSG(self, &got, "{got,marker}");
    check_empty(self);

    /* Our unlink, acknowledged from there, ends the link: a link EXIT
     * after it is dropped. */
    amb_trap_exit(self, true);
    CHECK_OK(self, amb_link(self, r));
    amb_term rec = WAIT_REC(self, "{link,~v,~v,1}", me, r);
    (void)rec;
    CHECK_OK(self, amb_unlink(self, r));
    amb_term un = WAIT_REC(self, "{unlink,~v,~v,_,1}", me, r);
    uint64_t id = (uint64_t)amb_small_value(amb_tuple_elem(un, 3));
    CHECK_OK(self, amb__remote_unlink_ack(self, r, me, id));
    CHECK_OK(self, amb__remote_exit(self, r, me, amb_atom("after_unlink"), true));
    CHECK_OK(self, amb_send(self, me, amb_atom("marker")));
    CHECK(self, RECV(self) == amb_atom("marker"));
    amb_term links_me;
    CHECK_OK(self, amb_process_info_items(self, me, amb_atom("links"), &links_me));
    CHECK(self, amb_tuple_elem(links_me, 1) == AMB_NIL);

    /* exit/2 kill from there cannot be trapped. */
    amb_term mref;
    CHECK_OK(self, amb_monitor(self, v, &mref));
    CHECK_OK(self, amb__remote_exit(self, r, v, AMB_ATOM_KILL, false));
    CHECK(self, wait_down(self, mref, v) == AMB_ATOM_KILLED);
    amb_trap_exit(self, false);
}

AMB_TEST(remote_links_and_exits_from_another_node_follow_the_local_rules)
{
    run_both(links_in_body, NULL);
}

/* ===========================================================================
 * In: monitors from another node, and DOWNs from there
 * ======================================================================== */

static void monitors_in_body(amb_proc *self, void *arg)
{
    (void)arg;
    install(self);
    amb_pid me = amb_self(self), w = foreign_pid(self, "other@host", 5);
    amb_term wref1 = foreign_ref(self, "other@host", 1),
             wref2 = foreign_ref(self, "other@host", 2),
             wref3 = foreign_ref(self, "other@host", 3);
    victim_arg va = {me, false};
    amb_pid v;
    v = start_victim(self, &va);
    CHECK_OK(self, amb_register(self, amb_atom("victim"), v));

    /* by pid, by name, and one removed again */
    CHECK_OK(self, amb__remote_monitor(self, w, v, AMB_NONE, wref1, 2));
    CHECK_OK(self, amb__remote_monitor(self, w, v, amb_atom("victim"), wref2, 2));
    CHECK_OK(self, amb__remote_monitor(self, w, v, AMB_NONE, wref3, 2));
    CHECK_OK(self, amb__remote_demonitor(self, w, v, wref3));
    amb_term mb = AMB_NONE;
    WAIT_UNTIL(self,
               amb_process_info_items(self, v, amb_atom("monitored_by"), &mb) == 0 &&
                   list_len(amb_tuple_elem(mb, 1)) == 2);
    CHECK(self, list_has(amb_tuple_elem(mb, 1), w));
    CHECK_OK(self, amb_send(self, v, amb_pack(amb_proc_heap(self), "{die,crashed}")));
    WAIT_REC(self, "{down,~v,~v,~r,crashed,2}", v, w, wref1);
    WAIT_REC(self, "{down,victim,~v,~r,crashed,2}", w, wref2);
    WAIT_REC(self, "{gone,~v}", v);
    CHECK_EQ(self, count_rec("{down,_,_,_,_,_}"), 0); /* none for wref3 */

    /* A dead pid, a name nobody has: noproc at once. */
    CHECK_OK(self, amb__remote_monitor(self, w, v, AMB_NONE, wref1, 2));
    WAIT_REC(self, "{down,~v,~v,~r,noproc,2}", v, w, wref1);
    CHECK_OK(self, amb__remote_monitor(self, w, AMB_NONE, amb_atom("nobody"), wref2, 2));
    WAIT_REC(self, "{down,nobody,~v,~r,noproc,2}", w, wref2);

    /* A DOWN from there: the watcher gets it while the monitor is active,
     * naming {Name, Node} for a name; a DOWN for a monitor that is gone,
     * or for a reference that is not ours, is dropped. */
    amb_pid r = foreign_pid(self, "other@host", 9);
    amb_heap *h = amb_proc_heap(self);
    amb_term name = AMB_TUPLE(h, amb_atom("srv"), amb_atom("other@host"));
    amb_term m1, m2, m3;
    CHECK_OK(self, amb_monitor(self, r, &m1));
    CHECK_OK(self, amb_monitor(self, name, &m2));
    CHECK_OK(self, amb_monitor(self, r, &m3));
    CHECK_OK(self, amb_demonitor(self, m3, 0));
    CHECK_OK(self, amb__remote_down(self, me, m1, r, amb_atom("gone1")));
    CHECK_OK(self, amb__remote_down(self, me, m2, name, amb_atom("gone2")));
    CHECK_OK(self, amb__remote_down(self, me, m3, r, amb_atom("gone3")));
    CHECK_OK(self, amb__remote_down(self, me, wref1, r, amb_atom("not_ours")));
    CHECK(self, wait_down(self, m1, r) == amb_atom("gone1"));
    CHECK(self, wait_down(self, m2, name) == amb_atom("gone2"));
    check_empty(self);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, me, &pi));
    CHECK_EQ(self, pi.monitors, 0);
}

AMB_TEST(remote_monitors_from_and_to_another_node_follow_the_local_rules)
{
    run_both(monitors_in_body, NULL);
}

/* ===========================================================================
 * NODEDOWN
 * ======================================================================== */

static void nodedown_body(amb_proc *self, void *arg)
{
    (void)arg;
    install(self);
    amb_trap_exit(self, true);
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self), r1 = foreign_pid(self, "other@host", 1),
            r2 = foreign_pid(self, "other@host", 2),
            r3 = foreign_pid(self, "other@host", 3),
            r4 = foreign_pid(self, "third@host", 4);
    amb_term name = AMB_TUPLE(h, amb_atom("srv"), amb_atom("other@host"));
    amb_term node = amb_atom("other@host");

    /* Connection 1: links to r1 (ours) and r2 (theirs), an unlink under
     * way to r3, monitors of r1 and of srv, a monitor of us by r2. */
    atomic_store(&fake.next_conn, 1);
    CHECK_OK(self, amb_link(self, r1));
    CHECK_OK(self, amb__remote_link(self, r2, me, 1));
    CHECK_OK(self, amb_link(self, r3));
    CHECK_OK(self, amb_unlink(self, r3));
    amb_term m1, m2;
    CHECK_OK(self, amb_monitor(self, r1, &m1));
    CHECK_OK(self, amb_monitor(self, name, &m2));
    CHECK_OK(self, amb__remote_monitor(self, r2, me, AMB_NONE,
                                       foreign_ref(self, "other@host", 5), 1));
    /* Connection 2 to the same node, and another node on connection 1's
     * number: both stay. */
    atomic_store(&fake.next_conn, 2);
    amb_pid r5 = foreign_pid(self, "other@host", 5);
    amb_term m5;
    CHECK_OK(self, amb_link(self, r5));
    CHECK_OK(self, amb_monitor(self, r5, &m5));
    atomic_store(&fake.next_conn, 1);
    CHECK_OK(self, amb_link(self, r4));

    CHECK_OK(self, amb__remote_nodedown(self, me, node, 1));
    amb_term t;
    WAIT_MSG(self, &t, "{'EXIT',~v,noconnection}", r1);
    WAIT_MSG(self, &t, "{'EXIT',~v,noconnection}", r2);
    CHECK(self, wait_down(self, m1, r1) == AMB_ATOM_NOCONNECTION);
    CHECK(self, wait_down(self, m2, name) == AMB_ATOM_NOCONNECTION);
    check_empty(self);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, me, &pi));
    CHECK_EQ(self, pi.links, 2); /* r5 (connection 2), r4 (another node) */
    CHECK_EQ(self, pi.monitors, 1);
    amb_term mb;
    CHECK_OK(self, amb_process_info_items(self, me, amb_atom("monitored_by"), &mb));
    CHECK(self, amb_tuple_elem(mb, 1) == AMB_NIL);

    /* Exactly once: a second NODEDOWN, and the far end's own exit coming
     * late, do nothing. */
    CHECK_OK(self, amb__remote_nodedown(self, me, node, 1));
    CHECK_OK(self, amb__remote_exit(self, r1, me, amb_atom("late"), true));
    CHECK_OK(self, amb_send(self, me, amb_atom("marker")));
    CHECK(self, RECV(self) == amb_atom("marker"));
    check_empty(self);

    /* Connection 2 goes too. */
    CHECK_OK(self, amb__remote_nodedown(self, me, node, 2));
    WAIT_MSG(self, &t, "{'EXIT',~v,noconnection}", r5);
    CHECK(self, wait_down(self, m5, r5) == AMB_ATOM_NOCONNECTION);
    CHECK_OK(self, amb_unlink(self, r4));
    amb_trap_exit(self, false);

    /* A process that is not trapping dies of it. */
    victim_arg va = {me, false};
    amb_pid v;
    amb_term vm;
    v = start_victim(self, &va);
    CHECK_OK(self, amb_monitor(self, v, &vm));
    CHECK_OK(self, amb__remote_link(self, r1, v, 3));
    CHECK_OK(self, amb__remote_nodedown(self, v, node, 3));
    CHECK(self, wait_down(self, vm, v) == AMB_ATOM_NOCONNECTION);
}

AMB_TEST(remote_nodedown_ends_the_relations_of_its_connection_once)
{
    run_both(nodedown_body, NULL);
}

/* Ending the relations of a lost connection takes no memory (fail.h): each
 * end is a cell made with its relation, and becomes the exit signal or the
 * DOWN in place. The NODEDOWN cell is made first (the connection
 * process's); then every allocation fails while the process handles it. */
static void nodedown_memory_body(amb_proc *self, void *arg)
{
    (void)arg;
    install(self);
    amb_trap_exit(self, true);
    amb_heap *h = amb_proc_heap(self);
    amb_pid me = amb_self(self), r1 = foreign_pid(self, "other@host", 1),
            r2 = foreign_pid(self, "other@host", 2);
    amb_term name = AMB_TUPLE(h, amb_atom("srv"), amb_atom("other@host"));
    amb_term node = amb_atom("other@host");
    atomic_store(&fake.next_conn, 1);
    amb_term m1, m2, m3;
    CHECK_OK(self, amb_link(self, r1));
    CHECK_OK(self, amb__remote_link(self, r2, me, 1));
    CHECK_OK(self, amb_monitor(self, r1, &m1));
    CHECK_OK(self, amb_monitor(self, name, &m2));
    amb_monitor_opts ao = {.alias = AMB_MONITOR_ALIAS_DEMONITOR};
    CHECK_OK(self, amb_monitor_opt(self, r2, &ao, &m3));
    CHECK_OK(self, amb__remote_monitor(self, r2, me, AMB_NONE,
                                       foreign_ref(self, "other@host", 5), 1));
    CHECK_OK(self, amb__remote_nodedown(self, me, node, 1));

    amb_test_alloc_count before = amb_test_alloc_now();
    amb_test_alloc_fail(0, AMB_TEST_FAIL_FOREVER);
    size_t n = amb_message_queue_len(self); /* drains: NODEDOWN acts here */
    amb_test_alloc_disarm();
    amb_test_alloc_count after = amb_test_alloc_now();
    CHECK_EQ(self, after.failed, before.failed);
    CHECK_EQ(self, n, 5);

    amb_term t;
    WAIT_MSG(self, &t, "{'EXIT',~v,noconnection}", r1);
    WAIT_MSG(self, &t, "{'EXIT',~v,noconnection}", r2);
    CHECK(self, wait_down(self, m1, r1) == AMB_ATOM_NOCONNECTION);
    CHECK(self, wait_down(self, m2, name) == AMB_ATOM_NOCONNECTION);
    CHECK(self, wait_down(self, m3, r2) == AMB_ATOM_NOCONNECTION);
    check_empty(self);
    amb_proc_info pi;
    CHECK_OK(self, amb_process_info(self, me, &pi));
    CHECK_EQ(self, pi.links, 0);
    CHECK_EQ(self, pi.monitors, 0);
    /* The alias monitor's alias went with its DOWN. */
    CHECK_OK(self, amb_send(self, m3, amb_atom("late")));
    check_empty(self);
}

AMB_TEST(remote_nodedown_needs_no_memory)
{
    run_in(1, nodedown_memory_body, NULL);
}

/* ===========================================================================
 * The distributed identity
 * ======================================================================== */

static void identity_body(amb_proc *self, void *arg)
{
    (void)arg;
    install(self);
    amb_rt *rt = amb_proc_rt(self);
    amb_term before_ref, alias, node;
    victim_arg va = {amb_self(self), false};
    amb_pid v;
    v = start_victim(self, &va);
    CHECK_OK(self, amb_monitor(self, v, &before_ref));
    CHECK_OK(self, amb_alias(self, 0, &alias));
    /* A name of its own per run: run_both's two runs may fall in the same
     * millisecond, and an identity stays taken for the life of the OS
     * process (node.c: slots are never reused): AMB_EEXIST under -j2. */
    static atomic_uint runs;
    char name[64];
    snprintf(name, sizeof name, "renamed%u_%u@host", (unsigned)(amb_now_ms() % 100000),
             atomic_fetch_add(&runs, 1));
    uint32_t creation = 0x1234;
    CHECK_OK(self, amb__remote_set_node(rt, amb_atom(name), creation));
    CHECK_RC(self, AMB_ESTATE, amb__remote_set_node(rt, amb_atom(name), creation + 1));
    uint32_t cr;
    CHECK_OK(self, amb_pid_get(amb_self(self), &node, NULL, NULL, &cr));
    CHECK(self, node == amb_atom(name));
    CHECK_EQ(self, cr, creation);
    /* A pid of ours under the new name is the same immediate word. */
    uint32_t id, serial;
    CHECK_OK(self, amb_pid_get(v, NULL, &id, &serial, NULL));
    CHECK(self, amb_pid_term(NULL, amb_atom(name), id, serial, creation) == v);
    /* A reference made now carries the new name; the old ones stay ours. */
    amb_term ref_now = amb_make_ref(self);
    amb_term rn;
    CHECK_OK(self, amb_ref_get(ref_now, (uint32_t[5]){0}, 5, &rn, &cr, NULL));
    CHECK(self, rn == amb_atom(name));
    CHECK_OK(self, amb_send(self, alias, amb_atom("via_old_alias")));
    CHECK(self, RECV(self) == amb_atom("via_old_alias"));
    CHECK_OK(self, amb_demonitor(self, before_ref, 0));
    /* {Name, Node} with the new name is this node. */
    CHECK_OK(self, amb_register(self, amb_atom("me"), amb_self(self)));
    CHECK_OK(self,
             amb_send(self,
                      AMB_TUPLE(amb_proc_heap(self), amb_atom("me"), amb_atom(name)),
                      amb_atom("by_name")));
    CHECK(self, RECV(self) == amb_atom("by_name"));
    CHECK_OK(self, amb_send(self, v, amb_pack(amb_proc_heap(self), "{die,normal}")));
}

AMB_TEST(remote_set_node_renames_pids_and_keeps_old_references)
{
    run_both(identity_body, NULL);
}

/* ===========================================================================
 * gen_server across nodes
 * ======================================================================== */

static amb_gen_ret echo_call(amb_proc *self, void *state, amb_term req, amb_term from)
{
    (void)self, (void)state, (void)from;
    return amb_gen_reply(req);
}
static const amb_gen_server echo_server = {.handle_call = echo_call};

typedef struct caller_arg {
    amb_term server;
    atomic_int rc;
    amb_pid parent;
} caller_arg;

static void caller(amb_proc *self, void *arg)
{
    caller_arg *a = arg;
    amb_term reply = AMB_NONE;
    int rc =
        amb_gen_server_call(self, a->server, amb_atom("ping"), AMB_TEST_WAIT_MS, &reply);
    atomic_store(&a->rc, rc);
    CHECK_OK(self, amb_send(self, a->parent,
                            AMB_TUPLE(amb_proc_heap(self), amb_atom("called"),
                                      rc == 0 ? reply : AMB_ATOM_ERROR)));
}

static void gen_server_body(amb_proc *self, void *arg)
{
    (void)arg;
    install(self);
    amb_heap *h = amb_proc_heap(self);
    /* A call to {srv, Node}: MONITOR_P by name, then the request with
     * OTP's tag; the reply through the alias ends the call. */
    caller_arg ca = {.server = AMB_TUPLE(h, amb_atom("srv"), amb_atom("other@host")),
                     .parent = amb_self(self)};
    amb_pid c;
    CHECK_OK(self, amb_spawn(self, caller, &ca, &c));
    amb_term mref;
    WAIT_REC(self, "{monitor,~v,srv,'other@host',~w,_}", c, &mref);
    amb_term call = WAIT_REC(self, "{send,~v,{srv,'other@host'},_}", c);
    amb_term alias;
    CHECK_OK(self, amb_match(amb_tuple_elem(call, 3),
                             "{'$gen_call',{~v,[alias|~w]},ping}", c, &alias));
    CHECK(self, amb_equal(alias, mref));
    CHECK_OK(self, amb_send(self, alias,
                            AMB_TUPLE(h, amb_cons(h, amb_atom("alias"), alias),
                                      amb_atom("pong"))));
    amb_term got;
    WAIT_MSG(self, &got, "{called,pong}");
    /* The alias went with the reply: the monitor is gone, and so is a
     * second reply (none reaches the caller; it has ended anyway). */
    WAIT_REC(self, "{demonitor,~v,srv,'other@host',~v,_}", c, mref);

    /* A C server answers a caller of another node: through its alias for
     * [alias | Alias] (here an alias of ours stands for it), at its pid
     * for a plain reference. */
    amb_pid srv;
    CHECK_OK(self, amb_gen_server_start(self, &echo_server, NULL, NULL, &srv, NULL));
    amb_pid r = foreign_pid(self, "other@host", 5);
    amb_term mine;
    CHECK_OK(self, amb_alias(self, 0, &mine));
    amb_term tag = amb_cons(h, amb_atom("alias"), mine);
    CHECK_OK(self, amb_send(self, srv,
                            AMB_TUPLE(h, AMB_ATOM_GEN_CALL, AMB_TUPLE(h, r, tag),
                                      amb_atom("one"))));
    WAIT_MSG(self, &got, "{[alias|~v],one}", mine);
    amb_term plain = foreign_ref(self, "other@host", 77);
    CHECK_OK(self, amb_send(self, srv,
                            AMB_TUPLE(h, AMB_ATOM_GEN_CALL, AMB_TUPLE(h, r, plain),
                                      amb_atom("two"))));
    WAIT_REC(self, "{send,~v,~v,{~v,two}}", srv, r, plain);
    CHECK_OK(self, amb_gen_server_stop(self, srv, AMB_ATOM_NORMAL, AMB_INFINITY));
}

AMB_TEST(remote_gen_server_calls_use_otp_tags_across_nodes)
{
    run_both(gen_server_body, NULL);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(remote_without_a_node_foreign_destinations_are_notsup),
    AMB_TEST_ENTRY(remote_routes_reach_the_dist_layer),
    AMB_TEST_ENTRY(remote_links_and_exits_from_another_node_follow_the_local_rules),
    AMB_TEST_ENTRY(remote_monitors_from_and_to_another_node_follow_the_local_rules),
    AMB_TEST_ENTRY(remote_nodedown_ends_the_relations_of_its_connection_once),
    AMB_TEST_ENTRY(remote_nodedown_needs_no_memory),
    AMB_TEST_ENTRY(remote_set_node_renames_pids_and_keeps_old_references),
    AMB_TEST_ENTRY(remote_gen_server_calls_use_otp_tags_across_nodes))

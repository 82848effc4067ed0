/*
 * tests/unit/ctx.c - the context switch (src/arch/ctx.h).
 *
 * Every test runs twice: on the build's CPU layer (ctx_x86_64.S on this
 * machine) and on the portable ucontext reference, which this file
 * compiles into itself with AMB_CTX_UCONTEXT_EMBED (its functions become
 * static amb__ctx_ucontext_*, so they do not clash with the library's).
 * The portable layer (annotations, boot, exit) is the same inline code in
 * both runs, reached through amb__ctx_*_with(). One binary, one source of
 * truth: the two implementations cannot drift apart unnoticed.
 *
 * What is proved: a ping-pong keeps the argument and counts; thousands of
 * contexts, each suspended deep inside its own recursion, switch to one
 * another in a chain and find every frame intact when resumed; rbx, rbp and
 * r12-r15 (x86-64) hold what their owner put there across a switch while
 * the other side fills them with different values; each context keeps its
 * own MXCSR / x87 control word (FPCR on aarch64) and a new one starts with
 * the ABI defaults; live doubles and integers survive switches (on aarch64
 * the compiler keeps them in the callee-saved d8-d15/x19-x28); a context
 * created on one OS thread is resumed alternately on two threads and keeps
 * its frames; an entry function that returns panics (in a child process);
 * a context destroyed while suspended deep in poisoned frames leaves its
 * stack reusable (ASan would report otherwise).
 *
 * Contexts never call cmocka (a failed assertion would longjmp off their
 * stack): they record what they saw and the test asserts afterwards.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amb_test.h"
#include "arch/ctx.h"
#include "runtime/stack.h"

#define AMB_CTX_UCONTEXT_EMBED 1
#include "arch/ctx_ucontext.c"

/* ---- the two implementations ---- */

struct impl {
    const char *name;
    amb__ctx_jump_fn *jump;
    amb__ctx_frame_fn *frame;
};

static const struct impl impls[] = {
    {"native", amb__ctx_jump, amb__ctx_frame},
    {"ucontext", amb__ctx_ucontext_jump, amb__ctx_ucontext_frame},
};

/* The implementation under test. Set before any context or thread starts
 * and only read afterwards. */
static const struct impl *impl;

#if AMB__CTX_TSAN
/* Every TSan fiber is a full thread state; keep the counts moderate. */
#define MANY 1000
#else
#define MANY 3000
#endif

static amb__stack_pool *pool;
static amb__stack_cache cache;

static void setup(int which)
{
    impl = &impls[which];
    assert_ok(amb__stack_pool_new(&(amb__stack_config){.stack_size = 256 * 1024}, &pool));
    amb__stack_cache_init(&cache, pool);
}

static void teardown(void)
{
    amb__stack_cache_term(&cache);
    amb__stack_pool_free(pool);
    pool = NULL;
}

static amb__stack *stack_new(void)
{
    amb__stack *s = NULL;
    assert_ok(amb__stack_alloc(&cache, &s));
    return s;
}

static void make(amb__ctx *c, amb__stack *s, amb__ctx_fn *fn, void *arg)
{
    amb__ctx_make_with(c, s->lo, s->size, fn, arg, impl->frame);
}

static void sw(amb__ctx *from, amb__ctx *to)
{
    amb__ctx_switch_with(from, to, impl->jump);
}

static _Noreturn void leave(amb__ctx *from, amb__ctx *to)
{
    amb__ctx_exit_with(from, to, impl->jump);
}

/* ---- ping-pong ---- */

struct pp {
    amb__ctx *main;
    long rounds;
    long seen;
    void *arg_seen;
};

static void pp_body(amb__ctx *self, void *arg)
{
    struct pp *p = arg;
    p->arg_seen = arg;
    for (long i = 0; i < p->rounds; i++) {
        p->seen++;
        sw(self, p->main);
    }
    leave(self, p->main);
}

static void ping_pong(void)
{
    amb__ctx main_ctx = {0}, c;
    amb__stack *s = stack_new();
    struct pp p = {.main = &main_ctx, .rounds = 100000};

    make(&c, s, pp_body, &p);
    for (long i = 0; i < p.rounds; i++) {
        sw(&main_ctx, &c);
        assert_int_equal(p.seen, i + 1);
    }
    sw(&main_ctx, &c); /* the body leaves for good */
    assert_ptr_equal(p.arg_seen, &p);
    amb__ctx_destroy(&c);
    amb__stack_free(&cache, s);
}

AMB_TEST(ctx_ping_pong_native)
{
    setup(0);
    ping_pong();
    teardown();
}

AMB_TEST(ctx_ping_pong_ucontext)
{
    setup(1);
    ping_pong();
    teardown();
}

/* ---- many contexts, deep frames, a chain of context-to-context switches ---- */

#define DEPTH  48
#define ROUNDS 4

struct chain {
    amb__ctx *main;
    amb__ctx *ctxs;
    int n;
    long frames_ok;  /* frames found intact after a resume, all contexts */
    long frames_bad; /* frames found changed */
};

struct link {
    struct chain *ch;
    int index;
};

/* Each frame holds values derived from its context and depth, suspends at
 * the bottom by switching to the next context, and checks its values when
 * the recursion unwinds after the resume. */
static __attribute__((noinline)) void dig(struct link *l, int depth)
{
    volatile uint64_t v[6];
    for (int i = 0; i < 6; i++)
        v[i] = ((uint64_t)l->index << 32) ^ ((uint64_t)depth << 8) ^ (uint64_t)i;

    if (depth > 0) {
        dig(l, depth - 1);
    } else {
        struct chain *ch = l->ch;
        amb__ctx *next = l->index + 1 < ch->n ? &ch->ctxs[l->index + 1] : ch->main;
        sw(&ch->ctxs[l->index], next);
    }
    for (int i = 0; i < 6; i++) {
        if (v[i] == (((uint64_t)l->index << 32) ^ ((uint64_t)depth << 8) ^ (uint64_t)i))
            l->ch->frames_ok++;
        else
            l->ch->frames_bad++;
    }
}

static void chain_body(amb__ctx *self, void *arg)
{
    struct link *l = arg;
    struct chain *ch = l->ch;

    for (int r = 0; r < ROUNDS; r++)
        dig(l, DEPTH);
    leave(self, l->index + 1 < ch->n ? &ch->ctxs[l->index + 1] : ch->main);
}

static void many_contexts(void)
{
    int n = MANY;
    amb__ctx main_ctx = {0};
    struct chain ch = {.main = &main_ctx, .n = n};
    amb__stack **stacks = calloc((size_t)n, sizeof *stacks);
    struct link *links = calloc((size_t)n, sizeof *links);
    ch.ctxs = calloc((size_t)n, sizeof *ch.ctxs);
    assert_non_null(stacks);
    assert_non_null(links);
    assert_non_null(ch.ctxs);

    for (int i = 0; i < n; i++) {
        stacks[i] = stack_new();
        links[i] = (struct link){.ch = &ch, .index = i};
        make(&ch.ctxs[i], stacks[i], chain_body, &links[i]);
    }
    /* Each switch to the first context runs one round down the whole chain
     * (the last context comes back here); the extra one lets every context
     * unwind its last round and leave. */
    for (int r = 0; r <= ROUNDS; r++)
        sw(&main_ctx, &ch.ctxs[0]);

    assert_int_equal(ch.frames_bad, 0);
    assert_int_equal(ch.frames_ok, (long)n * ROUNDS * (DEPTH + 1) * 6);
    for (int i = 0; i < n; i++) {
        amb__ctx_destroy(&ch.ctxs[i]);
        assert_true(amb__stack_intact(stacks[i]));
        amb__stack_free(&cache, stacks[i]);
    }
    free(stacks);
    free(links);
    free(ch.ctxs);
}

AMB_TEST(ctx_many_contexts_deep_frames_native)
{
    setup(0);
    many_contexts();
    teardown();
}

AMB_TEST(ctx_many_contexts_deep_frames_ucontext)
{
    setup(1);
    many_contexts();
    teardown();
}

/* ---- callee-saved general registers (x86-64) ---- */

#if defined(__x86_64__)
/*
 * ctx_test_probe(from, to, seed, out, jump): loads rbx, rbp, r12-r15 with
 * seed+0..5, calls jump(from, to), and when resumed stores the six
 * registers in out[0..5]. Plain assembly, so nothing but the jump itself
 * stands between the loads and the stores.
 */
__asm__(".text\n"
        ".globl ctx_test_probe\n"
        ".hidden ctx_test_probe\n"
        ".type ctx_test_probe, @function\n"
        ".p2align 4\n"
        "ctx_test_probe:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  pushq %rcx\n" /* out; rsp is now 16-byte aligned for the call */
        "  movq %rdx, %rbx\n"
        "  leaq 1(%rdx), %rbp\n"
        "  leaq 2(%rdx), %r12\n"
        "  leaq 3(%rdx), %r13\n"
        "  leaq 4(%rdx), %r14\n"
        "  leaq 5(%rdx), %r15\n"
        "  call *%r8\n"
        "  popq %rcx\n"
        "  movq %rbx, 0(%rcx)\n"
        "  movq %rbp, 8(%rcx)\n"
        "  movq %r12, 16(%rcx)\n"
        "  movq %r13, 24(%rcx)\n"
        "  movq %r14, 32(%rcx)\n"
        "  movq %r15, 40(%rcx)\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size ctx_test_probe, .-ctx_test_probe\n");
void ctx_test_probe(amb__ctx *from, amb__ctx *to, uint64_t seed, uint64_t *out,
                    amb__ctx_jump_fn *jump);

/* Under a sanitizer every switch must be annotated, so the probe jumps
 * through this wrapper; the plain build gives it the bare CPU layer, where
 * a register the assembly forgot cannot hide behind a C prologue. */
static amb__ctx *annotated_jump(amb__ctx *from, amb__ctx *to)
{
    sw(from, to);
    return NULL;
}

static amb__ctx_jump_fn *probe_jump(void)
{
    return AMB__CTX_ASAN || AMB__CTX_TSAN ? annotated_jump : impl->jump;
}

#define PROBES 100

struct regs {
    amb__ctx *main;
    uint64_t out[6];
    int ok, bad;
};

static int regs_match(const uint64_t *out, uint64_t seed)
{
    for (int i = 0; i < 6; i++)
        if (out[i] != seed + (uint64_t)i)
            return 0;
    return 1;
}

static void regs_body(amb__ctx *self, void *arg)
{
    struct regs *r = arg;
    for (int i = 0; i < PROBES; i++) {
        uint64_t seed = 0xC0FFEE0000000000u + (uint64_t)i * 64;
        ctx_test_probe(self, r->main, seed, r->out, probe_jump());
        if (regs_match(r->out, seed))
            r->ok++;
        else
            r->bad++;
    }
    leave(self, r->main);
}

static void callee_saved(void)
{
    amb__ctx main_ctx = {0}, c;
    amb__stack *s = stack_new();
    struct regs r = {.main = &main_ctx};
    uint64_t out[6];

    make(&c, s, regs_body, &r);
    for (int i = 0; i <= PROBES; i++) {
        uint64_t seed = 0xBEEF000000000000u + (uint64_t)i * 64;
        ctx_test_probe(&main_ctx, &c, seed, out, probe_jump());
        assert_true(regs_match(out, seed));
    }
    assert_int_equal(r.ok, PROBES);
    assert_int_equal(r.bad, 0);
    amb__ctx_destroy(&c);
    amb__stack_free(&cache, s);
}
#else
static void callee_saved(void)
{
    skip(); /* the probe is x86-64 assembly; fp_and_live_values covers the rest */
}
#endif

AMB_TEST(ctx_callee_saved_registers_native)
{
    setup(0);
    callee_saved();
    teardown();
}

AMB_TEST(ctx_callee_saved_registers_ucontext)
{
    setup(1);
    callee_saved();
    teardown();
}

/* ---- floating-point modes ---- */

#if defined(__x86_64__)
struct fpmode {
    uint32_t mxcsr;
    uint16_t cw;
};
static struct fpmode fp_get(void)
{
    struct fpmode m;
    __asm__ volatile("stmxcsr %0" : "=m"(m.mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(m.cw));
    return m;
}
static void fp_set(struct fpmode m)
{
    __asm__ volatile("ldmxcsr %0" ::"m"(m.mxcsr));
    __asm__ volatile("fldcw %0" ::"m"(m.cw));
}
static bool fp_eq(struct fpmode a, struct fpmode b)
{
    /* Status flags (MXCSR bits 0-5) are caller-saved scratch: compare the
     * control bits only. */
    return (a.mxcsr & ~0x3Fu) == (b.mxcsr & ~0x3Fu) && a.cw == b.cw;
}
static const struct fpmode FP_DEFAULT = {0x1F80, 0x037F};
static const struct fpmode FP_UP = {0x1F80 | 0x4000, 0x037F | 0x0800};
static const struct fpmode FP_ZERO = {0x1F80 | 0x6000, 0x037F | 0x0C00};
#define HAVE_FP_MODES 1
#elif defined(__aarch64__)
struct fpmode {
    uint64_t fpcr;
};
static struct fpmode fp_get(void)
{
    struct fpmode m;
    __asm__ volatile("mrs %0, fpcr" : "=r"(m.fpcr));
    return m;
}
static void fp_set(struct fpmode m)
{
    __asm__ volatile("msr fpcr, %0" ::"r"(m.fpcr));
}
static bool fp_eq(struct fpmode a, struct fpmode b)
{
    return a.fpcr == b.fpcr;
}
static const struct fpmode FP_DEFAULT = {0};
static const struct fpmode FP_UP = {1u << 22};   /* RMode 01: towards +inf */
static const struct fpmode FP_ZERO = {3u << 22}; /* RMode 11: towards zero */
#define HAVE_FP_MODES 1
#endif

#ifdef HAVE_FP_MODES
struct fpstate {
    amb__ctx *main;
    bool started_default, kept_zero;
    double third_zero;
};

static void fp_body(amb__ctx *self, void *arg)
{
    struct fpstate *f = arg;
    volatile double one = 1.0, three = 3.0;

    f->started_default = fp_eq(fp_get(), FP_DEFAULT);
    fp_set(FP_ZERO);
    sw(self, f->main);
    f->kept_zero = fp_eq(fp_get(), FP_ZERO);
    f->third_zero = one / three;
    fp_set(FP_DEFAULT);
    leave(self, f->main);
}

static void fp_modes(void)
{
    amb__ctx main_ctx = {0}, c;
    amb__stack *s = stack_new();
    struct fpstate f = {.main = &main_ctx};
    volatile double one = 1.0, three = 3.0;

    assert_true(fp_eq(fp_get(), FP_DEFAULT));
    make(&c, s, fp_body, &f);
    fp_set(FP_UP); /* after make: the ucontext reference captures modes there */
    sw(&main_ctx, &c);
    bool main_kept_up = fp_eq(fp_get(), FP_UP);
    double third_up = one / three;
    sw(&main_ctx, &c);
    bool main_still_up = fp_eq(fp_get(), FP_UP);
    fp_set(FP_DEFAULT);

    assert_true(f.started_default);
    assert_true(main_kept_up);
    assert_true(f.kept_zero);
    assert_true(main_still_up);
    /* The modes were really in force: 1/3 rounds differently. */
    assert_true(third_up > f.third_zero);
    amb__ctx_destroy(&c);
    amb__stack_free(&cache, s);
}
#else
static void fp_modes(void)
{
    skip();
}
#endif

AMB_TEST(ctx_fp_modes_per_context_native)
{
    setup(0);
    fp_modes();
    teardown();
}

AMB_TEST(ctx_fp_modes_per_context_ucontext)
{
    setup(1);
    fp_modes();
    teardown();
}

/* ---- live doubles and integers across switches ---- */

struct live {
    amb__ctx *main;
    double dsum;
    uint64_t isum;
};

/* Ten doubles and eight integers live across every switch: where the ABI
 * has callee-saved registers for them (aarch64 d8-d15, x19-x28; x86-64
 * rbx, r12-r15) the compiler keeps them there. */
static __attribute__((noinline)) void live_work(amb__ctx *self, struct live *l,
                                                double seed)
{
    double a = seed, b = seed * 2, c = seed * 3, d = seed * 4, e = seed * 5;
    double f = seed * 6, g = seed * 7, h = seed * 8, i = seed * 9, j = seed * 10;
    uint64_t p = (uint64_t)seed, q = p * 3, r = p * 5, s = p * 7;
    uint64_t t = p * 11, u = p * 13, v = p * 17, w = p * 19;

    for (int k = 0; k < 50; k++) {
        sw(self, l->main);
        a += 1.5, b -= 0.25, c *= 1.0001, d += a, e -= b, f += c, g *= 0.9999, h += d;
        i -= e, j += f;
        p += 1, q ^= p, r += q, s ^= r, t += s, u ^= t, v += u, w ^= v;
    }
    l->dsum = a + b + c + d + e + f + g + h + i + j;
    l->isum = p + q + r + s + t + u + v + w;
}

static void live_body(amb__ctx *self, void *arg)
{
    struct live *l = arg;
    live_work(self, l, 3.0);
    leave(self, l->main);
}

/* The same arithmetic with no switch in between. */
static void live_reference(double seed, double *dsum, uint64_t *isum)
{
    volatile double vs = seed;
    double a = vs, b = vs * 2, c = vs * 3, d = vs * 4, e = vs * 5;
    double f = vs * 6, g = vs * 7, h = vs * 8, i = vs * 9, j = vs * 10;
    uint64_t p = (uint64_t)vs, q = p * 3, r = p * 5, s = p * 7;
    uint64_t t = p * 11, u = p * 13, v = p * 17, w = p * 19;

    for (int k = 0; k < 50; k++) {
        a += 1.5, b -= 0.25, c *= 1.0001, d += a, e -= b, f += c, g *= 0.9999, h += d;
        i -= e, j += f;
        p += 1, q ^= p, r += q, s ^= r, t += s, u ^= t, v += u, w ^= v;
    }
    *dsum = a + b + c + d + e + f + g + h + i + j;
    *isum = p + q + r + s + t + u + v + w;
}

static void live_values(void)
{
    amb__ctx main_ctx = {0}, c;
    amb__stack *s = stack_new();
    struct live l = {.main = &main_ctx};
    double want_d, mine_d = 0;
    uint64_t want_i;

    live_reference(3.0, &want_d, &want_i);
    make(&c, s, live_body, &l);
    /* Main keeps its own live doubles across the same switches. */
    volatile double seed = 0.5;
    double x = seed, y = seed * 3, z = seed * 7;
    for (int k = 0; k <= 50; k++) {
        sw(&main_ctx, &c);
        x += y, y *= 1.01, z -= x;
    }
    mine_d = x + y + z;
    double ref_x = 0.5, ref_y = 1.5, ref_z = 3.5;
    for (int k = 0; k <= 50; k++)
        ref_x += ref_y, ref_y *= 1.01, ref_z -= ref_x;

    assert_true(l.dsum == want_d);
    assert_true(l.isum == want_i);
    assert_true(mine_d == ref_x + ref_y + ref_z);
    amb__ctx_destroy(&c);
    amb__stack_free(&cache, s);
}

AMB_TEST(ctx_live_values_survive_native)
{
    setup(0);
    live_values();
    teardown();
}

AMB_TEST(ctx_live_values_survive_ucontext)
{
    setup(1);
    live_values();
    teardown();
}

/* ---- a context resumed on another OS thread ---- */

#define MIGRATIONS 200

static pid_t thread_id(void)
{
    return (pid_t)syscall(SYS_gettid);
}

struct roam {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn;         /* 0: main thread resumes next, 1: the other thread */
    int resumes;      /* resumes done so far */
    amb__ctx *home;   /* the thread context to switch back to */
    pid_t seen[2];    /* each side's kernel thread id */
    int wrong_thread; /* resumes that ran on the wrong thread */
    long frames_bad;
    bool ready; /* seen[1] is set */
    bool done;
    amb__ctx ctx;
};

static __attribute__((noinline)) void roam_dig(struct roam *r, int depth)
{
    volatile uint64_t v[4] = {(uint64_t)depth, (uint64_t)depth * 7, 42, (uint64_t)~depth};

    if (depth > 0) {
        roam_dig(r, depth - 1);
    } else {
        for (int i = 0; i < MIGRATIONS; i++) {
            /* Which thread runs us now must be the one whose turn it is.
             * Not pthread_self(): glibc declares it const, so the compiler
             * may hoist it out of this loop, across the switches, and read
             * the first thread's id forever (the thread-local hazard of
             * DESIGN §2, caught by this very test). */
            if (thread_id() != r->seen[i % 2])
                r->wrong_thread++;
            sw(&r->ctx, r->home);
        }
    }
    if (v[0] != (uint64_t)depth || v[1] != (uint64_t)depth * 7 || v[2] != 42 ||
        v[3] != (uint64_t)~depth)
        r->frames_bad++;
}

static void roam_body(amb__ctx *self, void *arg)
{
    struct roam *r = arg;
    roam_dig(r, 16);
    r->done = true;
    leave(self, r->home);
}

/* Resumes the roaming context whenever it is side's turn. */
static void roam_side(struct roam *r, int side)
{
    amb__ctx home = {0};

    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->turn != side && r->resumes <= MIGRATIONS)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->resumes > MIGRATIONS)
            break;
        r->home = &home;
        /* The lock stays held across the switch: the context only touches
         * r while it runs, which is on this thread, under this lock. */
        sw(&home, &r->ctx);
        r->resumes++;
        r->turn = 1 - side;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

static void *roam_thread(void *arg)
{
    struct roam *r = arg;
    pthread_mutex_lock(&r->mu);
    r->seen[1] = thread_id();
    r->ready = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    roam_side(r, 1);
    return NULL;
}

static void migrate(void)
{
    struct roam r = {.turn = 0};
    amb__stack *s = stack_new();
    pthread_t t;

    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    r.seen[0] = thread_id();
    /* Created here, on the main thread; the first resume is ours too, and
     * the context starts roaming only once both ids are known. */
    make(&r.ctx, s, roam_body, &r);
    assert_int_equal(pthread_create(&t, NULL, roam_thread, &r), 0);
    pthread_mutex_lock(&r.mu);
    while (!r.ready)
        pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
    roam_side(&r, 0);
    assert_int_equal(pthread_join(t, NULL), 0);

    assert_true(r.done);
    assert_int_equal(r.resumes, MIGRATIONS + 1);
    assert_int_equal(r.wrong_thread, 0);
    assert_int_equal(r.frames_bad, 0);
    assert_true(r.seen[0] != r.seen[1]);
    amb__ctx_destroy(&r.ctx);
    amb__stack_free(&cache, s);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
}

AMB_TEST(ctx_resume_on_another_thread_native)
{
    setup(0);
    migrate();
    teardown();
}

AMB_TEST(ctx_resume_on_another_thread_ucontext)
{
    setup(1);
    migrate();
    teardown();
}

/* ---- an entry function that returns ---- */

static void returns_body(amb__ctx *self, void *arg)
{
    (void)self;
    (void)arg;
}

static void entry_return_panics(void)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        amb__ctx main_ctx = {0}, c;
        amb__stack *s = stack_new();
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(3);
        make(&c, s, returns_body, NULL);
        sw(&main_ctx, &c);
        _exit(0); /* reached only if the return went unnoticed */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

AMB_TEST(ctx_entry_return_panics_native)
{
    setup(0);
    entry_return_panics();
    teardown();
}

AMB_TEST(ctx_entry_return_panics_ucontext)
{
    setup(1);
    entry_return_panics();
    teardown();
}

/* ---- killing a suspended context, then reusing its stack ---- */

struct kill_state {
    amb__ctx *main;
    long sum;
};

/* Frames with address-taken arrays: under ASan each has poisoned redzones
 * in the shadow, which stay there when the context is destroyed without
 * unwinding. */
static __attribute__((noinline)) void poisoned_dig(amb__ctx *self, struct kill_state *k,
                                                   int depth)
{
    char buf[200];
    memset(buf, depth, sizeof buf);
    if (depth > 0)
        poisoned_dig(self, k, depth - 1);
    else
        sw(self, k->main);
    k->sum += buf[depth % 200];
}

static void kill_body(amb__ctx *self, void *arg)
{
    struct kill_state *k = arg;
    poisoned_dig(self, k, 40);
    leave(self, k->main);
}

/* Writes over the whole depth the killed context used, with a different
 * frame layout. */
static __attribute__((noinline)) void overwrite_dig(int depth, long *sum)
{
    char buf[328];
    memset(buf, 0x5a, sizeof buf);
    *sum += buf[depth % 328];
    if (depth > 0)
        overwrite_dig(depth - 1, sum);
}

struct reuse_state {
    amb__ctx *main;
    long sum;
};

static void reuse_body(amb__ctx *self, void *arg)
{
    struct reuse_state *r = arg;
    overwrite_dig(60, &r->sum);
    leave(self, r->main);
}

static void kill_and_reuse(void)
{
    amb__ctx main_ctx = {0}, c;
    amb__stack *s = stack_new();

    for (int round = 0; round < 20; round++) {
        struct kill_state k = {.main = &main_ctx};
        make(&c, s, kill_body, &k);
        sw(&main_ctx, &c); /* c is now suspended 41 frames deep */
        amb__ctx_destroy(&c);

        struct reuse_state r = {.main = &main_ctx};
        make(&c, s, reuse_body, &r);
        sw(&main_ctx, &c);
        amb__ctx_destroy(&c);
        assert_int_equal(r.sum, 61L * 0x5a);
        assert_int_equal(k.sum, 0); /* the killed frames never resumed */
    }
    amb__stack_free(&cache, s);
}

AMB_TEST(ctx_kill_suspended_then_reuse_stack_native)
{
    setup(0);
    kill_and_reuse();
    teardown();
}

AMB_TEST(ctx_kill_suspended_then_reuse_stack_ucontext)
{
    setup(1);
    kill_and_reuse();
    teardown();
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(ctx_ping_pong_native),
              AMB_TEST_ENTRY(ctx_ping_pong_ucontext),
              AMB_TEST_ENTRY(ctx_many_contexts_deep_frames_native),
              AMB_TEST_ENTRY(ctx_many_contexts_deep_frames_ucontext),
              AMB_TEST_ENTRY(ctx_callee_saved_registers_native),
              AMB_TEST_ENTRY(ctx_callee_saved_registers_ucontext),
              AMB_TEST_ENTRY(ctx_fp_modes_per_context_native),
              AMB_TEST_ENTRY(ctx_fp_modes_per_context_ucontext),
              AMB_TEST_ENTRY(ctx_live_values_survive_native),
              AMB_TEST_ENTRY(ctx_live_values_survive_ucontext),
              AMB_TEST_ENTRY(ctx_resume_on_another_thread_native),
              AMB_TEST_ENTRY(ctx_resume_on_another_thread_ucontext),
              AMB_TEST_ENTRY(ctx_entry_return_panics_native),
              AMB_TEST_ENTRY(ctx_entry_return_panics_ucontext),
              AMB_TEST_ENTRY(ctx_kill_suspended_then_reuse_stack_native),
              AMB_TEST_ENTRY(ctx_kill_suspended_then_reuse_stack_ucontext))

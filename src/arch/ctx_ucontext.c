/*
 * ctx_ucontext.c - the portable CPU layer of src/arch/ctx.h, on POSIX
 * ucontext (getcontext/makecontext/swapcontext). It is the fallback on CPUs
 * without their own ctx_<cpu>.S, the reference the tests compare the
 * assembly against, and what -DAMB_CTX_UCONTEXT=ON selects everywhere.
 *
 * It is slow and says so: glibc's swapcontext saves every register and the
 * whole floating-point environment, and makes a sigprocmask syscall on every
 * switch (hundreds of ns against a few for the assembly). Behaviour is the
 * same as the assembly's with three differences, all harmless to the
 * runtime: a new context starts with its creator's floating-point modes and
 * signal mask (captured by getcontext in amb__ctx_frame), the signal mask
 * travels with a context from thread to thread (the runtime never changes
 * masks, so they are all equal), and the frame of a new context takes
 * about 1 KiB at the top of its stack instead of 80 bytes.
 *
 * Where a suspended context is kept: ctx->sp points to a `struct save`. For
 * a context that has run, that is a local of the amb__ctx_ucontext_jump
 * call it is suspended in, on its own stack (as the assembly keeps its
 * registers on the stack); for a fresh one, it sits at the top of its
 * stack, placed there by amb__ctx_frame. The jumping side writes itself
 * into the target's save.prev, which is how the resumed side learns who
 * resumed it without thread-local storage (a thread-local read after
 * swapcontext could use an address computed on another thread).
 *
 * Names: this file's own functions are amb__ctx_ucontext_*. When it is the
 * build's CPU layer it also defines the contract's amb__ctx_jump and
 * amb__ctx_frame. tests/unit/ctx.c compiles it into itself with
 * AMB_CTX_UCONTEXT_EMBED defined, which makes the amb__ctx_ucontext_*
 * functions static and leaves the contract names to the real CPU layer, so
 * one test binary runs the same tests on both.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "ctx.h"

#ifdef AMB_CTX_UCONTEXT_EMBED
#define UCTX_API static
#else
#define UCTX_API
amb__ctx *amb__ctx_ucontext_jump(amb__ctx *from, amb__ctx *to);
void amb__ctx_ucontext_frame(amb__ctx *ctx, void *lo, size_t size, amb__ctx_boot_fn *boot,
                             amb__ctx_fn *fn, void *arg);
#endif

struct save {
    ucontext_t uc;
    amb__ctx *prev; /* written by the context that jumps here */
    /* Only for a fresh context: what uctx_start hands to boot. */
    amb__ctx *self;
    amb__ctx_boot_fn *boot;
    amb__ctx_fn *fn;
    void *arg;
};

/* makecontext passes int arguments only, so the save's address comes in
 * two halves. */
static void uctx_start(unsigned hi, unsigned lo)
{
    struct save *s = (struct save *)(uintptr_t)(((uint64_t)hi << 32) | lo);

    s->boot(s->prev, s->self, s->fn, s->arg);
    amb__panic("context boot returned");
}

UCTX_API amb__ctx *amb__ctx_ucontext_jump(amb__ctx *from, amb__ctx *to)
{
    struct save here;
    struct save *there = to->sp;

    /* ASan's swapcontext interceptor clears the shadow of the target's
     * uc_stack; glibc's swapcontext never fills it in, so say "none". */
    memset(&here.uc.uc_stack, 0, sizeof here.uc.uc_stack);
    here.prev = NULL;
    from->sp = &here;
    there->prev = from;
    if (swapcontext(&here.uc, &there->uc) != 0)
        amb__panic("swapcontext failed");
    return here.prev;
}

UCTX_API void amb__ctx_ucontext_frame(amb__ctx *ctx, void *lo, size_t size,
                                      amb__ctx_boot_fn *boot, amb__ctx_fn *fn, void *arg)
{
    uintptr_t top = (uintptr_t)lo + size;
    struct save *s = (struct save *)((top - sizeof(struct save)) & ~(uintptr_t)63);
    uint64_t addr = (uint64_t)(uintptr_t)s;

    if (getcontext(&s->uc) != 0)
        amb__panic("getcontext failed");
    s->uc.uc_stack.ss_sp = lo;
    s->uc.uc_stack.ss_size = (size_t)((char *)s - (char *)lo);
    s->uc.uc_stack.ss_flags = 0;
    s->uc.uc_link = NULL;
    s->prev = NULL;
    s->self = ctx;
    s->boot = boot;
    s->fn = fn;
    s->arg = arg;
    makecontext(&s->uc, (void (*)(void))uctx_start, 2, (unsigned)(addr >> 32),
                (unsigned)(addr & 0xffffffffu));
    ctx->sp = s;
}

#ifndef AMB_CTX_UCONTEXT_EMBED
amb__ctx *amb__ctx_jump(amb__ctx *from, amb__ctx *to)
{
    return amb__ctx_ucontext_jump(from, to);
}

void amb__ctx_frame(amb__ctx *ctx, void *lo, size_t size, amb__ctx_boot_fn *boot,
                    amb__ctx_fn *fn, void *arg)
{
    amb__ctx_ucontext_frame(ctx, lo, size, boot, fn, arg);
}
#endif

/*
 * ctx.h - the context switch: the one contract between the runtime and the
 * CPU (DESIGN §2 "Stacks"; docs/design/stacks.md says why it looks so).
 *
 * A context is a suspended flow of control: a stack plus the registers that
 * a C function must find unchanged when a call returns. The runtime uses
 * one context per stackful process and one per scheduler thread (the OS
 * thread's own stack). Everything here is cooperative: a context runs until
 * it switches away by itself.
 *
 *   amb__ctx_make(ctx, lo, size, fn, arg)   a new context on [lo, lo+size)
 *                                           that will run fn(ctx, arg)
 *   amb__ctx_switch(from, to)               save the running flow in from,
 *                                           resume to; returns when someone
 *                                           switches back to from
 *   amb__ctx_exit(from, to)                 the last switch of a finished
 *                                           context: never returns
 *   amb__ctx_destroy(ctx)                   forget a made context that is
 *                                           not running (after exit, or to
 *                                           kill it while suspended)
 *
 * Two layers. The CPU layer is two functions, one file per CPU
 * (ctx_x86_64.S + .c, ctx_aarch64.S + .c, or the portable ctx_ucontext.c):
 * amb__ctx_jump saves the callee-saved registers on the running stack and
 * loads another stack's, amb__ctx_frame lays out a new stack so that the
 * first jump to it calls a boot function. The portable layer below (all
 * static inline, so the fast path is one direct call) wraps them with the
 * sanitizer and Valgrind annotations. The runtime calls only the portable
 * layer, so it cannot forget an annotation: there is no other way in.
 *
 * What is saved (x86-64 SysV): rbx rbp r12-r15, the MXCSR control bits and
 * the x87 control word, which the ABI makes callee-saved. (aarch64 AAPCS64:
 * x19-x29, lr, d8-d15 and FPCR.) Nothing else: the caller-saved registers
 * are dead across a call by the ABI, and there is no signal-mask syscall.
 * A new context starts with the ABI's default floating-point modes
 * (MXCSR 0x1F80, x87 CW 0x037F; FPCR 0), not with its creator's.
 *
 * Invariants and rules:
 *   - A thread context is a zero-initialised amb__ctx (`amb__ctx t = {0};`)
 *     that stands for the OS thread's own stack. It is bound to the thread
 *     that first switches away from it and may be resumed only on that
 *     thread. It is never made and never needs destroying.
 *   - A made context may be resumed on any thread (work stealing): nothing
 *     in it depends on the thread that created it. Code running on it must
 *     not keep a thread-local address across a switch (DESIGN §2).
 *   - A context is either running (on exactly one thread) or suspended;
 *     only a suspended context may be switched to, and only one thread may
 *     switch to it (the scheduler's run queue guarantees both). Switching
 *     to a running context, or to a finished one, is undefined.
 *   - fn must never return: a process ends by amb__ctx_exit() to the
 *     scheduler, which then destroys the context. If fn returns anyway the
 *     boot function panics ("context entry returned") instead of running off
 *     the top of the stack.
 *   - Stack memory belongs to the caller (src/runtime/stack.c). It must
 *     stay mapped until amb__ctx_destroy(); [lo, lo+size) is the whole
 *     stack (the frame for fn is built at its top, 16-byte aligned). Overflow
 *     checking is the stack allocator's job (amb__stack_check).
 */
#ifndef AMB_ARCH_CTX_H
#define AMB_ARCH_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Which annotations this build needs. GCC says -fsanitize=address|thread
 * with __SANITIZE_*__, clang with __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define AMB__CTX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AMB__CTX_ASAN 1
#endif
#endif
#ifndef AMB__CTX_ASAN
#define AMB__CTX_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define AMB__CTX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AMB__CTX_TSAN 1
#endif
#endif
#ifndef AMB__CTX_TSAN
#define AMB__CTX_TSAN 0
#endif

/* Valgrind needs to be told where stacks are, or it mistakes every switch
 * for a wild stack-pointer jump. Its client requests cost a few
 * instructions when not under Valgrind, and are made only when a context
 * is made or destroyed, never per switch. Define AMB_NO_VALGRIND to leave
 * them out even when the header is installed. */
#if !defined(AMB_NO_VALGRIND) && defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define AMB__CTX_VALGRIND 1
#endif
#endif
#ifndef AMB__CTX_VALGRIND
#define AMB__CTX_VALGRIND 0
#endif

#if AMB__CTX_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if AMB__CTX_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* amb__ctx.flags */
#define AMB__CTX_MADE 1u /* made by amb__ctx_make (else a thread context) */

/*
 * A context. Embed it where it belongs (the process block, the scheduler);
 * the runtime never allocates one. `sp` must stay the first field: the
 * assembly reads and writes it at offset 0.
 */
typedef struct amb__ctx {
    void *sp;             /* CPU layer: saved stack pointer while suspended */
    const void *stack_lo; /* lowest byte of the stack; for a thread context,
                             learnt at the first switch under ASan, else NULL */
    size_t stack_size;    /* bytes in the stack, 0 while unknown */
    unsigned flags;       /* AMB__CTX_MADE */
    unsigned valgrind_id; /* VALGRIND_STACK_REGISTER's id, when made */
#if AMB__CTX_ASAN
    void *asan_fake_stack; /* ASan's fake stack of this context while it is
                              suspended (use-after-return detection) */
#endif
#if AMB__CTX_TSAN
    void *tsan_fiber; /* TSan's fiber: created by make, or the thread's own */
#endif
} amb__ctx;

/* The body of a made context. It receives its own context (so that it can
 * switch away from it) and the argument given to amb__ctx_make. It must
 * never return (see above). */
typedef void amb__ctx_fn(amb__ctx *self, void *arg);

/* Called on the new stack by the first jump to a made context: prev is the
 * context that jumped. */
typedef void amb__ctx_boot_fn(amb__ctx *prev, amb__ctx *self, amb__ctx_fn *fn, void *arg);

/* --- CPU layer (one implementation per build, see the file comment) --- */

/* Saves the running flow's callee-saved registers on its own stack and its
 * stack pointer in from->sp, then restores to's and continues where to was
 * suspended. Returns, once some context switches back to from, that
 * context (the portable layer needs it to learn a thread stack's bounds).
 * No annotations: call amb__ctx_switch instead. */
amb__ctx *amb__ctx_jump(amb__ctx *from, amb__ctx *to);

/* Lays out a fresh frame at the top of [lo, lo+size) and sets ctx->sp so
 * that the first amb__ctx_jump(x, ctx) calls boot(x, ctx, fn, arg) on that
 * stack, with the ABI's default floating-point modes. Touches only the top
 * of the stack (under 1 KiB; the ucontext fallback needs about 1 KiB). */
void amb__ctx_frame(amb__ctx *ctx, void *lo, size_t size, amb__ctx_boot_fn *boot,
                    amb__ctx_fn *fn, void *arg);

typedef amb__ctx *amb__ctx_jump_fn(amb__ctx *from, amb__ctx *to);
typedef void amb__ctx_frame_fn(amb__ctx *ctx, void *lo, size_t size,
                               amb__ctx_boot_fn *boot, amb__ctx_fn *fn, void *arg);

/* --- Portable layer: what the runtime calls --- */

/* After a jump lands on a context (resumed, or booted for the first time):
 * tell ASan which stack we came from, learning a thread stack's bounds the
 * first time we leave it. */
static inline void amb__ctx_landed(amb__ctx *self, amb__ctx *prev)
{
#if AMB__CTX_ASAN
    const void *lo = NULL;
    size_t size = 0;
    __sanitizer_finish_switch_fiber(self->asan_fake_stack, &lo, &size);
    if (!(prev->flags & AMB__CTX_MADE)) {
        prev->stack_lo = lo;
        prev->stack_size = size;
    }
#else
    (void)self;
    (void)prev;
#endif
}

/* Just before a jump: tell the sanitizers where we go. dying says that from
 * will never run again (ASan then frees its fake stack). */
static inline void amb__ctx_leaving(amb__ctx *from, amb__ctx *to, int dying)
{
#if AMB__CTX_ASAN
    __sanitizer_start_switch_fiber(dying ? NULL : &from->asan_fake_stack, to->stack_lo,
                                   to->stack_size);
#endif
#if AMB__CTX_TSAN
    /* A thread context meets TSan at its first switch away: its fiber is
     * the thread's own. */
    if (from->tsan_fiber == NULL)
        from->tsan_fiber = __tsan_get_current_fiber();
    /* Flags 0: the switch is a synchronisation (happens-before from the
     * code before it to the code the target runs after it), which is what a
     * cooperative switch is. */
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    (void)from;
    (void)to;
    (void)dying;
}

/* The first code on a new context's stack (the CPU layer calls it through
 * the frame that amb__ctx_frame built). */
static inline void amb__ctx_boot(amb__ctx *prev, amb__ctx *self, amb__ctx_fn *fn,
                                 void *arg)
{
#if AMB__CTX_ASAN
    /* The first landing has no fake stack to restore (ASan's rule). */
    self->asan_fake_stack = NULL;
#endif
    amb__ctx_landed(self, prev);
    fn(self, arg);
    amb__panic("context entry returned (a context must end with amb__ctx_exit)");
}

/* amb__ctx_make with an explicit CPU layer (the tests run the same code on
 * the ucontext reference this way). */
static inline void amb__ctx_make_with(amb__ctx *ctx, void *lo, size_t size,
                                      amb__ctx_fn *fn, void *arg,
                                      amb__ctx_frame_fn *frame)
{
    *ctx = (amb__ctx){.stack_lo = lo, .stack_size = size, .flags = AMB__CTX_MADE};
#if AMB__CTX_ASAN
    /* A stack whose previous context was destroyed while suspended (a
     * killed process) still carries that context's frame redzones in
     * ASan's shadow. Clear from the lowest poisoned byte up: the shadow of
     * a stack that was never that deep is not touched (no RSS). */
    void *bad = __asan_region_is_poisoned(lo, size);
    if (bad != NULL)
        __asan_unpoison_memory_region(bad, (size_t)((char *)lo + size - (char *)bad));
#endif
#if AMB__CTX_TSAN
    ctx->tsan_fiber = __tsan_create_fiber(0);
#endif
#if AMB__CTX_VALGRIND
    ctx->valgrind_id = VALGRIND_STACK_REGISTER(lo, (char *)lo + size);
#endif
    frame(ctx, lo, size, amb__ctx_boot, fn, arg);
}

/* Makes ctx a new suspended context on the stack [lo, lo+size), which must
 * be at least 4 KiB, 16-byte aligned at both ends, and not used by another
 * live context. The first switch to ctx calls fn(ctx, arg) there. ctx must
 * not be a live made context (destroy it first). Never fails. */
static inline void amb__ctx_make(amb__ctx *ctx, void *lo, size_t size, amb__ctx_fn *fn,
                                 void *arg)
{
    amb__ctx_make_with(ctx, lo, size, fn, arg, amb__ctx_frame);
}

static inline void amb__ctx_switch_with(amb__ctx *from, amb__ctx *to,
                                        amb__ctx_jump_fn *jump)
{
    amb__ctx_leaving(from, to, 0);
    amb__ctx *prev = jump(from, to);
    amb__ctx_landed(from, prev);
}

/* Suspends the running flow into from (which must be the running context)
 * and resumes to. Returns when a later switch resumes from, possibly on
 * another OS thread. Costs one call plus 8 stores and 8 loads on x86-64 when
 * no sanitizer is on. */
static inline void amb__ctx_switch(amb__ctx *from, amb__ctx *to)
{
    amb__ctx_switch_with(from, to, amb__ctx_jump);
}

static inline _Noreturn void amb__ctx_exit_with(amb__ctx *from, amb__ctx *to,
                                                amb__ctx_jump_fn *jump)
{
    amb__ctx_leaving(from, to, 1);
    (void)jump(from, to);
    amb__panic("a finished context was resumed");
}

/* The last switch of a made context that has finished: resumes to and never
 * returns. The caller (the scheduler, now running on to) then destroys from
 * and may free its stack. Under ASan this also frees from's fake stack. */
static inline _Noreturn void amb__ctx_exit(amb__ctx *from, amb__ctx *to)
{
    amb__ctx_exit_with(from, to, amb__ctx_jump);
}

/* Releases what amb__ctx_make registered (TSan fiber, Valgrind stack id).
 * ctx must be a made context that is not running: finished through
 * amb__ctx_exit, or suspended and now abandoned (a killed process; its
 * frames are simply dropped, nothing on them runs). The stack may be freed
 * or reused afterwards. A thread context needs no destroy; passing one is
 * harmless. Never fails. */
static inline void amb__ctx_destroy(amb__ctx *ctx)
{
    if (!(ctx->flags & AMB__CTX_MADE))
        return;
#if AMB__CTX_TSAN
    __tsan_destroy_fiber(ctx->tsan_fiber);
    ctx->tsan_fiber = NULL;
#endif
#if AMB__CTX_VALGRIND
    VALGRIND_STACK_DEREGISTER(ctx->valgrind_id);
#endif
    ctx->flags = 0;
    ctx->sp = NULL;
}

/* The stack pointer where this is inlined: what a check of the room left
 * on a stack compares (one register read; the portable fallback costs the
 * caller a frame pointer). */
static inline char *amb__ctx_sp(void)
{
    char *sp;
#if defined(__x86_64__)
    __asm__("mov %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
    __asm__("mov %0, sp" : "=r"(sp));
#else
    sp = (char *)__builtin_frame_address(0);
#endif
    return sp;
}

#endif /* AMB_ARCH_CTX_H */

/*
 * ctx_x86_64.c - the C half of the x86-64 CPU layer of src/arch/ctx.h:
 * amb__ctx_frame, which lays out a fresh context's stack so that the first
 * amb__ctx_jump to it "returns" into amb__ctx_trampoline_x86_64
 * (ctx_x86_64.S, where the saved-frame layout is drawn).
 *
 * The frame, from the new ctx->sp upwards (top = the stack's end rounded
 * down to 16 bytes):
 *
 *     top-80  MXCSR 0x1F80, x87 CW 0x037F   (the ABI's initial modes)
 *     top-72  r15 = 0
 *     top-64  r14 = arg
 *     top-56  r13 = fn
 *     top-48  r12 = boot
 *     top-40  rbx = ctx
 *     top-32  rbp = 0                      (ends frame-pointer chains)
 *     top-24  return address = the trampoline
 *     top-16  0, 0                         (a null frame above it all)
 *
 * After the jump pops all that, rsp = top-16, 16-byte aligned, which is
 * what the trampoline's call to boot needs. Only these 80 bytes of the
 * stack are written.
 */
#include "ctx.h"

/* In ctx_x86_64.S. Not a C function: it is only ever "returned" into. */
void amb__ctx_trampoline_x86_64(void);

void amb__ctx_frame(amb__ctx *ctx, void *lo, size_t size, amb__ctx_boot_fn *boot,
                    amb__ctx_fn *fn, void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 80);

    sp[0] = (uint64_t)0x1F80 | ((uint64_t)0x037F << 32);
    sp[1] = 0;
    sp[2] = (uint64_t)(uintptr_t)arg;
    sp[3] = (uint64_t)(uintptr_t)fn;
    sp[4] = (uint64_t)(uintptr_t)boot;
    sp[5] = (uint64_t)(uintptr_t)ctx;
    sp[6] = 0;
    sp[7] = (uint64_t)(uintptr_t)amb__ctx_trampoline_x86_64;
    sp[8] = 0;
    sp[9] = 0;
    ctx->sp = sp;
}

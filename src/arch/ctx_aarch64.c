/*
 * ctx_aarch64.c - the C half of the aarch64 CPU layer of src/arch/ctx.h:
 * amb__ctx_frame, which lays out a fresh context's stack so that the first
 * amb__ctx_jump to it "returns" (ret to x30) into
 * amb__ctx_trampoline_aarch64 (ctx_aarch64.S, where the saved-frame layout
 * is drawn).
 *
 * The frame, from the new ctx->sp upwards (top = the stack's end rounded
 * down to 16 bytes; sp = top-192):
 *
 *     sp+0    x19 = ctx     x20 = boot
 *     sp+16   x21 = fn      x22 = arg
 *     sp+32   x23..x28 = 0
 *     sp+80   x29 = 0       x30 = the trampoline
 *     sp+96   d8..d15 = 0
 *     sp+160  FPCR = 0 (round to nearest, no traps: Linux's initial mode), pad
 *     sp+176  0, 0          (a null frame record above it all)
 *
 * After the jump pops 176 bytes, sp = top-16, 16-byte aligned as AAPCS64
 * requires at all times. Only these 192 bytes of the stack are written.
 */
#include <string.h>

#include "ctx.h"

/* In ctx_aarch64.S. Not a C function: it is only ever "returned" into. */
void amb__ctx_trampoline_aarch64(void);

void amb__ctx_frame(amb__ctx *ctx, void *lo, size_t size, amb__ctx_boot_fn *boot,
                    amb__ctx_fn *fn, void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 192);

    memset(sp, 0, 192);
    sp[0] = (uint64_t)(uintptr_t)ctx;                          /* x19 */
    sp[1] = (uint64_t)(uintptr_t)boot;                         /* x20 */
    sp[2] = (uint64_t)(uintptr_t)fn;                           /* x21 */
    sp[3] = (uint64_t)(uintptr_t)arg;                          /* x22 */
    sp[11] = (uint64_t)(uintptr_t)amb__ctx_trampoline_aarch64; /* x30 */
    ctx->sp = sp;
}

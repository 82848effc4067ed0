/*
 * ctx_aarch64.S - the CPU layer of src/arch/ctx.h for aarch64 (AAPCS64):
 * amb__ctx_jump, and the trampoline a fresh context starts in. The frame a
 * fresh context needs is laid out in C (ctx_aarch64.c), from the same
 * layout.
 *
 * A suspended context's stack, from its saved stack pointer (ctx->sp)
 * upwards; 176 bytes, so ctx->sp stays 16-byte aligned:
 *
 *     sp+0    x19 x20
 *     sp+16   x21 x22
 *     sp+32   x23 x24
 *     sp+48   x25 x26
 *     sp+64   x27 x28
 *     sp+80   x29 (fp)  x30 (lr: where the context goes on)
 *     sp+96   d8 d9
 *     sp+112  d10 d11
 *     sp+128  d12 d13
 *     sp+144  d14 d15
 *     sp+160  FPCR, 8 bytes unused
 *
 * These are exactly the registers AAPCS64 makes callee-saved (only the low
 * 64 bits of v8-v15), plus FPCR, whose mode bits a called function must
 * leave as it found them. x18 (the platform register) is not touched. No
 * signal mask, no syscall. FPCR is written only when it differs, because a
 * write to it may serialise the pipeline on some cores.
 *
 * x0 (`from`) is never clobbered, so the jump returns `from` to the
 * resumed context for free.
 *
 * Branch protection: amb__ctx_jump starts with BTI C (a hint, a no-op on
 * cores without BTI) because C code may call it through a pointer. The
 * saved x30 is stored unsigned: under pac-ret, C functions sign and check
 * their own return addresses on their own stack, which a switch preserves.
 * The GNU property note below tells the linker so when the C code is built
 * with -mbranch-protection.
 */

    .text

/* amb__ctx *amb__ctx_jump(amb__ctx *from (x0), amb__ctx *to (x1)) */
    .globl amb__ctx_jump
    .hidden amb__ctx_jump
    .type amb__ctx_jump, %function
    .p2align 4
amb__ctx_jump:
    .cfi_startproc
    hint #34                   /* bti c */
    sub sp, sp, #176
    .cfi_adjust_cfa_offset 176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]

    mov x9, sp
    str x9, [x0]               /* from->sp: from is now suspended */
    ldr x9, [x1]               /* to->sp */
    mov sp, x9                 /* from here on we run on to's stack */

    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    ldr x9, [sp, #160]
    mrs x10, fpcr
    cmp x9, x10
    b.eq 1f
    msr fpcr, x9
1:
    add sp, sp, #176
    .cfi_adjust_cfa_offset -176
    ret                        /* x0 = from: tells the resumed context who resumed it */
    .cfi_endproc
    .size amb__ctx_jump, .-amb__ctx_jump

/*
 * The first return of a fresh context lands here (amb__ctx_frame put this
 * address in the saved x30), with x0 = the context that jumped, and the
 * frame's registers loaded: x19 = the new context, x20 = boot, x21 = fn,
 * x22 = arg, x29 = 0. sp is 16-byte aligned. boot never returns. The
 * return address is marked undefined so that unwinders stop here.
 */
    .globl amb__ctx_trampoline_aarch64
    .hidden amb__ctx_trampoline_aarch64
    .type amb__ctx_trampoline_aarch64, %function
    .p2align 4
amb__ctx_trampoline_aarch64:
    .cfi_startproc
    .cfi_undefined x30
    hint #34                   /* bti c (reached by ret, which BTI does not check) */
    mov x1, x19                /* self; x0 is already prev */
    mov x2, x21                /* fn */
    mov x3, x22                /* arg */
    blr x20                    /* boot(prev, self, fn, arg) */
    brk #1                     /* boot panics rather than return */
    .cfi_endproc
    .size amb__ctx_trampoline_aarch64, .-amb__ctx_trampoline_aarch64

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define AMB_CTX_GNU_BTI 1
#else
#define AMB_CTX_GNU_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT
#define AMB_CTX_GNU_PAC 2
#else
#define AMB_CTX_GNU_PAC 0
#endif
#if AMB_CTX_GNU_BTI || AMB_CTX_GNU_PAC
    .pushsection .note.gnu.property, "a"
    .balign 8
    .long 4                    /* name size */
    .long 16                   /* descriptor size */
    .long 5                    /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz "GNU"
    .long 0xc0000000           /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .long 4                    /* property data size */
    .long (AMB_CTX_GNU_BTI | AMB_CTX_GNU_PAC)
    .long 0                    /* padding to 8 bytes */
    .popsection
#endif

    .section .note.GNU-stack,"",%progbits

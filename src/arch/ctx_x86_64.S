/*
 * ctx_x86_64.S - the CPU layer of src/arch/ctx.h for x86-64 (System V ABI):
 * amb__ctx_jump, and the trampoline a fresh context starts in. The frame a
 * fresh context needs is laid out in C (ctx_x86_64.c), from the same layout.
 *
 * A suspended context's stack, from its saved stack pointer (ctx->sp)
 * upwards; ctx->sp is always 16-byte aligned:
 *
 *     sp+0   MXCSR (4 bytes), x87 control word (2 bytes), 2 bytes unused
 *     sp+8   r15
 *     sp+16  r14
 *     sp+24  r13
 *     sp+32  r12
 *     sp+40  rbx
 *     sp+48  rbp
 *     sp+56  return address (where the context goes on)
 *
 * Only the registers the ABI makes callee-saved are kept. MXCSR and the x87
 * control word are saved whole, and restored whole when their control bits
 * differ from the running context's (restoring MXCSR's old status flags is
 * allowed: they are caller-saved). No signal mask, no syscall. The return value (rax) of a jump, seen by the context that is
 * resumed, is the `from` argument of the jump that resumed it.
 *
 * No shadow stack support (CET SHSTK would need the shadow stack switched
 * too); the file marks indirect-branch targets with endbr64 when the C code
 * is built with -fcf-protection, and then returns with ret instead of the
 * faster pop + indirect jump, so IBT keeps working.
 */
#if defined(__CET__) && (__CET__ & 1)
#define ENDBR endbr64
#else
#define ENDBR
#endif

    .text

/* amb__ctx *amb__ctx_jump(amb__ctx *from (rdi), amb__ctx *to (rsi)) */
    .globl amb__ctx_jump
    .hidden amb__ctx_jump
    .type amb__ctx_jump, @function
    .p2align 4
amb__ctx_jump:
    .cfi_startproc
    ENDBR
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    pushq %r12
    .cfi_adjust_cfa_offset 8
    pushq %r13
    .cfi_adjust_cfa_offset 8
    pushq %r14
    .cfi_adjust_cfa_offset 8
    pushq %r15
    .cfi_adjust_cfa_offset 8
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    /* from's modes into rax, for the comparison below: read back with
     * the sizes they were stored with (4 and 2 bytes), so each load is
     * forwarded from its store. One 8-byte load over both stores cannot be
     * forwarded and waits for them to reach the cache: measured, that
     * stall was most of the switch's time (ping-pong, perf on the 2-vCPU
     * VM). */
    movl (%rsp), %eax
    movzwl 4(%rsp), %ecx
    shlq $32, %rcx
    orq %rcx, %rax

    movq %rsp, (%rdi)          /* from->sp: from is now suspended */
    movq (%rsi), %rsp          /* to->sp: from here on we run on to's stack */

    /* Restoring the modes (ldmxcsr, and fldcw above all) costs more than
     * the rest of the switch, and they almost never differ: load them only
     * when a control bit does. Compared: MXCSR bits 6-31 and the x87
     * control word; not MXCSR's status flags (bits 0-5, caller-saved, so
     * they need no restoring) nor the 2 unused bytes. */
    xorq (%rsp), %rax
    movabsq $0x0000FFFFFFFFFFC0, %rcx
    testq %rcx, %rax
    jnz 2f
1:
    .cfi_remember_state
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %r15
    .cfi_adjust_cfa_offset -8
    popq %r14
    .cfi_adjust_cfa_offset -8
    popq %r13
    .cfi_adjust_cfa_offset -8
    popq %r12
    .cfi_adjust_cfa_offset -8
    popq %rbx
    .cfi_adjust_cfa_offset -8
    popq %rbp
    .cfi_adjust_cfa_offset -8
    movq %rdi, %rax            /* tell the resumed context who resumed it */
#if defined(__CET__) && (__CET__ & 1)
    ret
#else
    /* An indirect jump instead of ret: ret would be predicted from the
     * return stack buffer, which holds the *other* context's call site, and
     * mispredict on every switch (measured: 13.4 ns per switch with ret,
     * 6.7 with this). Not under IBT, where the jump would need an endbr64
     * at a return address. */
    popq %rdx
    .cfi_adjust_cfa_offset -8
    jmp *%rdx
#endif
2:
    .cfi_restore_state
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    jmp 1b
    .cfi_endproc
    .size amb__ctx_jump, .-amb__ctx_jump

/*
 * The first return of a fresh context lands here (amb__ctx_frame put this
 * address where the return address goes), with rax = the context that
 * jumped, and the frame's saved registers loaded: rbx = the new context,
 * r12 = boot, r13 = fn, r14 = arg. rsp is 16-byte aligned, so the call
 * below gives boot the alignment the ABI promises. boot never returns.
 * The return address is marked undefined so that debuggers and unwinders
 * stop here instead of walking into garbage.
 */
    .globl amb__ctx_trampoline_x86_64
    .hidden amb__ctx_trampoline_x86_64
    .type amb__ctx_trampoline_x86_64, @function
    .p2align 4
amb__ctx_trampoline_x86_64:
    .cfi_startproc
    .cfi_undefined rip
    ENDBR
    movq %rax, %rdi            /* prev */
    movq %rbx, %rsi            /* self */
    movq %r13, %rdx            /* fn */
    movq %r14, %rcx            /* arg */
    call *%r12                 /* boot(prev, self, fn, arg) */
    ud2                        /* boot panics rather than return */
    .cfi_endproc
    .size amb__ctx_trampoline_x86_64, .-amb__ctx_trampoline_x86_64

    .section .note.GNU-stack,"",@progbits

/*
 * 256 interrupt stubs, 16 bytes apart (irq.c computes their addresses),
 * and the common path: save every general register and the SSE state (C
 * code may use SSE), call irq_dispatch(frame), restore, iretq. The CPU
 * pushes an error code for some exceptions only; the others push a zero so
 * that every frame has the same layout (IrqFrame in irq.c).
 */
    .text
    .code64
    .balign 16
    .globl isr_stubs
isr_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if !(vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30)
    pushq   $0
    .endif
    pushq   $vec
    jmp     isr_common
    .set vec, vec + 1
    .endr

isr_common:
    push    %rax
    push    %rbx
    push    %rcx
    push    %rdx
    push    %rsi
    push    %rdi
    push    %rbp
    push    %r8
    push    %r9
    push    %r10
    push    %r11
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, %rbx              /* the frame; rbx is callee-saved */
    and     $-16, %rsp              /* fxsave and the ABI want alignment */
    sub     $512, %rsp
    fxsave  (%rsp)
    mov     %rbx, %rdi
    cld
    call    irq_dispatch
    fxrstor (%rsp)
    mov     %rbx, %rsp
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %r11
    pop     %r10
    pop     %r9
    pop     %r8
    pop     %rbp
    pop     %rdi
    pop     %rsi
    pop     %rdx
    pop     %rcx
    pop     %rbx
    pop     %rax
    add     $16, %rsp               /* vector and error code */
    iretq

    .section .note.GNU-stack, "", @progbits

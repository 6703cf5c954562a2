/*
 * Entry of every bare-metal test. minivmm starts us in 64-bit mode with
 * interrupts off, rsp = 0x8000 (a few KiB under the page tables) and
 * rdi = the device tree. Move to our own stack, turn on SSE (gcc and libfdt
 * may use it; with CR4.OSFXSR clear every SSE instruction is #UD), run
 * main(fdt) and hand its result to the test exit port.
 */
#define CR0_MP         (1 << 1)
#define CR0_EM         (1 << 2)
#define CR0_TS         (1 << 3)
#define CR4_OSFXSR     (1 << 9)
#define CR4_OSXMMEXCPT (1 << 10)

    .section .text.entry, "ax"
    .code64
    .globl _start
_start:
    cli
    lea     stack_top(%rip), %rsp
    xor     %ebp, %ebp
    mov     %rdi, %r12              /* callee-saved: survives fw_init */

    mov     %cr0, %rax
    and     $~(CR0_EM | CR0_TS), %rax
    or      $CR0_MP, %rax
    mov     %rax, %cr0
    mov     %cr4, %rax
    or      $(CR4_OSFXSR | CR4_OSXMMEXCPT), %rax
    mov     %rax, %cr4

    mov     %r12, %rdi
    call    fw_init
    mov     %r12, %rdi
    call    main
    mov     %eax, %edi
    call    fw_exit                 /* does not return */
1:  cli
    hlt
    jmp     1b

    .section .bss
    .balign 4096
stack:
    .skip   64 * 1024
stack_top:

    .section .note.GNU-stack, "", @progbits

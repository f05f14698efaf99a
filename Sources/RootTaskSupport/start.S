// The root task's entry (docs/kernel/abi.md, "The root task"): the kernel
// enters `_start` at EL0 with SP set and x0 = the boot information's VA.
// The Swift entry runs the program; should it return, the thread yields
// for ever.
#if defined(__aarch64__) && defined(__ELF__) && !defined(__linux__) && !defined(__APPLE__)
    .section .text.start, "ax"
    .global _start
    .type _start, %function
_start:
    mov x29, xzr
    mov x30, xzr
    bl cmk_root_task_main
1:  mov x7, #7          // Yield (Syscall.yield)
    svc #0
    b 1b
    .size _start, . - _start
#endif

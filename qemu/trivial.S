// The reference image for `cmk bench boot`: the least a multi-core boot can
// do on QEMU virt. Core 0 starts every other core with PSCI CPU_ON (until
// PSCI says the core does not exist), each started core raises its flag,
// core 0 waits for all flags, prints one line on the PL011 and powers off.
// No MMU, no C, no Swift. Built with clang by `cmk bench boot`.
    .section .text.boot, "ax"
    .global _start
_start:
    adr x20, flags
    mov x19, #1                 // next core to start
1:  cmp x19, #64
    b.ge 3f
    and x1, x19, #15            // MPIDR: Aff0 = core % 16, Aff1 = core / 16
    lsr x2, x19, #4
    orr x1, x1, x2, lsl #8
    ldr x0, =0xC4000003         // CPU_ON
    adr x2, secondary
    mov x3, x19                 // context id: the core number
    smc #0
    cbnz x0, 3f                 // no such core: all started
    add x19, x19, #1
    b 1b
3:  mov x21, #1                 // wait for cores 1..x19-1
4:  cmp x21, x19
    b.ge 6f
5:  ldrb w0, [x20, x21]
    cbz w0, 5b
    add x21, x21, #1
    b 4b
6:  ldr x1, =0x09000000
    adr x2, message
7:  ldrb w0, [x2], #1
    cbz w0, 8f
    str w0, [x1]
    b 7b
8:  ldr x0, =0x84000008         // SYSTEM_OFF
    smc #0
9:  wfi
    b 9b

secondary:                      // x0 = core number
    adr x1, flags
    mov w2, #1
    strb w2, [x1, x0]
    dsb sy
10: wfi
    b 10b

    .ltorg
message:
    .asciz "trivial: all cores up\n"
    .balign 64
flags:
    .space 64

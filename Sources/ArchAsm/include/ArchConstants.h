// Architectural constants shared by the assembly (entry.S, vectors.S) and by
// Swift (imported through ArchAsm). One definition, two languages.
#ifndef CMK_ARCH_CONSTANTS_H
#define CMK_ARCH_CONSTANTS_H

// MAIR_EL2 attribute indices (AttrIndx in a descriptor).
#define CMK_ATTR_DEVICE_nGnRnE 0
#define CMK_ATTR_DEVICE_nGnRE 1
#define CMK_ATTR_NORMAL_WB 2
#define CMK_ATTR_NORMAL_NC 3
// Attr0 = 0x00 Device-nGnRnE, Attr1 = 0x04 Device-nGnRE,
// Attr2 = 0xFF Normal write-back RA/WA, Attr3 = 0x44 Normal non-cacheable.
#define CMK_MAIR_EL2 0x44FF0400

// TCR_EL2 (E2H = 0): T0SZ = 25 (39-bit VA, walks start at level 1), 4 KiB
// granule, walks inner/outer write-back cacheable and inner shareable,
// PS = 40-bit physical addresses, bits 31 and 23 RES1.
#define CMK_TCR_EL2 0x80823519
#define CMK_VA_BITS 39

// SCTLR_EL2 (E2H = 0). RES1 bits 29,28,23,22,18,16,11,5,4, plus M (MMU),
// C (data cache), SA (SP alignment check), I (instruction cache).
// The boot identity map is writable everywhere, so it runs without WXN; a
// cluster's own tables run with WXN (bit 19): nothing writable is executable.
#define CMK_SCTLR_EL2_BOOT 0x30C5183D
#define CMK_SCTLR_EL2_CLUSTER 0x30CD183D

// CPTR_EL2 (E2H = 0): RES1 bits, TFP = 0 so FP/SIMD does not trap (Swift
// code uses FP registers); SVE and SME stay trapped.
#define CMK_CPTR_EL2 0x33FF
// HCR_EL2: RW = 1 (EL1 is AArch64). Guest traps are configured per vCPU later.
#define CMK_HCR_EL2 0x80000000

// Exception frame built by vectors.S: x0..x30, sp_el0, elr, spsr, esr, far,
// then the FP/SIMD state: q0..q31 (two words each), fpsr, fpcr. The trap path
// saves the FP/SIMD registers before any Swift runs, because the kernel's
// Swift code uses them and a guest's must survive every exit; except the EL0
// Call/ReplyRecv fastpath, whose Swift code is checked to use none
// (scripts/kernel-size.sh) and which moves them only on a thread switch.
#define CMK_FRAME_SP 31
#define CMK_FRAME_ELR 32
#define CMK_FRAME_SPSR 33
#define CMK_FRAME_ESR 34
#define CMK_FRAME_FAR 35
#define CMK_FRAME_FP 36
// x0..x30, sp_el0, elr, spsr: what cmk_copy_general_registers moves.
#define CMK_FRAME_GENERAL_WORDS 34
#define CMK_FRAME_FPSR 100
#define CMK_FRAME_FPCR 101
#define CMK_FRAME_WORDS 102
#define CMK_FRAME_SIZE (CMK_FRAME_WORDS * 8)

// HCR_EL2 while a guest runs (docs/guest.md): VM (stage 2 on), FMO and IMO
// (physical FIQ/IRQ to EL2, virtual ones to the guest), TSC (SMC traps),
// RW (EL1 is AArch64), APK and API (pointer authentication usable at EL1
// without traps; EL2 code is built without it, so the keys stay the
// guest's). WFI and WFE are not trapped: an idle vCPU waits in hardware and
// any physical interrupt brings the core back to EL2.
// Bits 0, 3, 4, 19, 31, 40, 41.
#define CMK_HCR_EL2_GUEST 0x30080080019
// HCR_EL2 while a native user thread runs at EL0 (seL4's HCR_NATIVE,
// docs/kernel/abi.md): TGE (every EL0 exception and interrupt to EL2), DC
// (stage 1 off, accesses Normal write-back) with VM (stage 2 on: the
// thread's VSpace, VA = IPA), TVM, TTLB, TAC (EL1 controls trap, though no
// EL1 runs), SWIO, FMO/IMO/AMO, TSC, RW.
// Bits 0, 1, 3, 4, 5, 12, 19, 21, 25, 26, 27, 31.
#define CMK_HCR_EL2_NATIVE 0x8E28103B
// VTCR_EL2: T0SZ = 25 (39-bit IPA, walks start at level 1: SL0 = 1), inner
// and outer write-back walks, inner shareable, 4 KiB granule, PS = 40-bit
// physical addresses, bit 31 RES1.
#define CMK_VTCR_EL2 0x80023559
#define CMK_IPA_BITS 39
// The guest's VMID (one guest per machine): every cluster's stage 2 uses it,
// so the guest's broadcast TLB maintenance reaches all its vCPUs.
#define CMK_GUEST_VMID 1

// Vector kinds passed to the handlers: (source << 2) | type.
// source: 0 current EL with SP0, 1 current EL with SPx, 2 lower EL AArch64,
// 3 lower EL AArch32. type: 0 sync, 1 IRQ, 2 FIQ, 3 SError.

// Per-core state word 0 holds the top of the core's emergency stack, which
// fatal exceptions switch to (so a kernel stack overflow still reports).
#define CMK_CORE_EMERGENCY_TOP 0

// Boot core stacks inside the image region (identity mapped during boot).
#define CMK_BOOT_STACK_SIZE 0x8000
#define CMK_BOOT_EMERGENCY_SIZE 0x2000

// The static boot identity map covers [0, 1 GiB) as device memory and
// [1 GiB, 1 GiB + CMK_BOOT_RAM_GIB GiB) as normal memory.
#define CMK_BOOT_RAM_GIB 8

// A VCPU's saved context (Kernel.VCPUContext, words): the trap frame at
// CMK_VCPU_FRAME, the EL1 system registers (with the virtual CPU interface's
// VMCR and active-priority registers) at CMK_VCPU_EL1 in the order guest.S
// saves them. The list registers need no slot: they are rebuilt from the
// vCPU's virtual-GIC state on every entry (docs/guest.md).
#define CMK_VCPU_FRAME 0
#define CMK_VCPU_EL1 128
#define CMK_VCPU_EL1_SCTLR 0
#define CMK_VCPU_EL1_VBAR 6
#define CMK_VCPU_EL1_ELR 12
#define CMK_VCPU_EL1_SPSR 13
#define CMK_VCPU_EL1_ESR 14
#define CMK_VCPU_EL1_FAR 15
#define CMK_VCPU_EL1_VMCR 35
#define CMK_VCPU_EL1_WORDS 40
// SCTLR_EL1 at a vCPU's reset: RES1 bits (29, 28, 23, 22, 20, 11), MMU and
// caches off, little-endian.
#define CMK_SCTLR_EL1_RESET 0x30D00800
// The guest's PSTATE at entry: EL1h with D, A, I and F masked.
#define CMK_SPSR_EL1H_MASKED 0x3C5

#endif

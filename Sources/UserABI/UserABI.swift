/// The contract between a cluster's kernel and its user-level programs
/// (docs/kernel/abi.md): how a system call passes its arguments and gets its
/// results, the IPC buffer, and the root task's address space and boot
/// information. A module of its own, with no dependencies, because three
/// sides share it: the kernel (Kernel, Boot) and the EL0 root task, which
/// must not link any kernel code.

/// A system call: `svc #0` with the number in x7.
public enum UserABI {
    /// Register indices (x0...x7) in a thread's saved context.
    public enum Register {
        /// In: the capability address (CPtr). Out: the badge of what was received.
        public static let capOrBadge = 0
        /// In and out: the message tag (`MessageTag`).
        public static let info = 1
        /// In and out: message registers 0...3 (the rest are in the IPC buffer).
        public static let firstMessage = 2
        /// Out: 0, or the error (seL4_Error numbering, `KernelError.code`).
        public static let error = 6
        /// In: the system call number (`Syscall` raw value, or `debugPutChar`).
        public static let number = 7
    }
    /// Message registers passed in registers (x2...x5); MR4...MR7 travel in
    /// the IPC buffer.
    public static let registerMessages = 4
    public static let messageRegisters = 8
    /// Debug: write the byte in x0 to the console (a whole line at a time,
    /// under the console lock). Handled by Boot, never by the kernel.
    public static let debugPutChar: UInt64 = 0x100
    /// Debug: the kernel checks its invariants under the big lock
    /// (`checkInvariants()`); a violation is a kernel bug and panics the
    /// machine. x6 = 0. Handled by Boot, as `debugPutChar`.
    public static let debugCheckInvariants: UInt64 = 0x101
    /// Benchmark (seL4's benchmark calls are of this kind: for measuring the
    /// kernel, no capability, no kernel state but one counter): in the
    /// kernel, under the big lock, do x0 iterations of a dependent
    /// computation (at most `benchmarkHoldLimit`, else x6 = 1,
    /// InvalidArgument) and count the call in a plain (non-atomic) counter
    /// only the lock protects. Out: x0 = the virtual counter at the
    /// handler's first instruction (the lock held), x1 = the counter after
    /// the work, x2 = the counter of calls including this one, x3 = 1 if the
    /// trap waited for the lock, x6 = 0. The lock experiment and the boot's
    /// lock check run on it (docs/experiments.md). Handled by Boot.
    public static let benchmarkHold: UInt64 = 0x102
    /// Longest hold one `benchmarkHold` may ask for: about a millisecond of
    /// a core, so no thread holds the lock much longer than a time slice.
    public static let benchmarkHoldLimit: UInt64 = 1 << 18

    /// Word indices of the IPC buffer (a 4 KiB frame of the thread's VSpace,
    /// set with TCB SetIPCBuffer; 16 words are used).
    public enum IPCBuffer {
        public static let tag = 0
        /// msg[0...7]: message registers (msg[0...3] mirror x2...x5).
        public static let message = 1
        /// caps_or_badges[0...2]: extra capability addresses on send, badges of
        /// unwrapped capabilities on receive.
        public static let caps = 9
        /// Where a received capability goes: CNode CPtr, index, depth.
        public static let receiveCNode = 12
        public static let receiveIndex = 13
        public static let receiveDepth = 14
        /// Free for the thread (thread-local storage pointer).
        public static let userData = 15
        public static let words = 16
    }
}

/// The message tag word (seL4's seL4_MessageInfo layout): length in bits
/// 0-6, extra capabilities in 7-8, unwrapped-capability mask in 9-11, the
/// label in 12-63.
public struct MessageTag: Equatable, Sendable {
    public var label: UInt64
    public var length: Int
    public var extraCaps: Int
    public var capsUnwrapped: UInt8

    public init(label: UInt64, length: Int, extraCaps: Int = 0, capsUnwrapped: UInt8 = 0) {
        self.label = label
        self.length = length
        self.extraCaps = extraCaps
        self.capsUnwrapped = capsUnwrapped
    }

    /// Any word decodes (fields are masked); the kernel range-checks them.
    public init(word: UInt64) {
        length = Int(word & 0x7F)
        extraCaps = Int((word >> 7) & 3)
        capsUnwrapped = UInt8((word >> 9) & 7)
        label = word >> 12
    }

    public var word: UInt64 {
        (label << 12) | (UInt64(capsUnwrapped & 7) << 9) | (UInt64(extraCaps & 3) << 7) | UInt64(length & 0x7F)
    }
}

/// The root task's address space, as the kernel's boot builds it (VA = IPA
/// under stage 2; nothing else is mapped).
public enum RootTaskLayout {
    /// The image (text, data, bss), linked here (qemu/root-task.ld).
    public static let imageBase: UInt64 = 0x0040_0000
    /// At most this much image (file + bss), 2 MiB below the IPC buffer.
    public static let imageLimit: UInt64 = 0x0040_0000
    public static let ipcBuffer: UInt64 = 0x0080_0000
    /// Read-only: `RootTaskBootInfo`.
    public static let bootInfo: UInt64 = 0x0080_1000
    public static let stackBase: UInt64 = 0x0090_0000
    public static let stackSize: UInt64 = 64 << 10
    /// The initial SP (16-byte aligned, top of the stack).
    public static var stackTop: UInt64 { stackBase + stackSize }
}

/// Root-CNode slots the kernel fills for the root task (seL4's
/// seL4_CapInitThread* constants).
public enum RootTaskSlot {
    public static let thread: UInt64 = 1
    public static let cnode: UInt64 = 2
    public static let interKernel: UInt64 = 3
    public static let vspace: UInt64 = 4
    public static let ipcBuffer: UInt64 = 5
    public static let bootInfo: UInt64 = 6
    /// IRQ control: makes IRQHandler capabilities (seL4's seL4_CapIRQControl).
    public static let irqControl: UInt64 = 8
}

/// The root task's boot information frame (words at `RootTaskLayout.bootInfo`).
public enum RootTaskBootInfo {
    public static let magicValue: UInt64 = 0x3149_4254_524B_4D43  // "CMKRTBI1"
    public static let magic = 0
    public static let clusterId = 1
    public static let clusterCount = 2
    public static let cores = 3
    /// Root-CNode slots of the Untyped capabilities: first, count.
    public static let firstUntyped = 4
    public static let untypedCount = 5
    /// Empty root-CNode slots the root task may use: [first, end).
    public static let firstFreeSlot = 6
    public static let freeSlotEnd = 7
    /// log2 of the root CNode's slot count (addresses are plain slot numbers
    /// at depth 64).
    public static let cnodeRadix = 8
    /// `cmk bench ipc --qemu`: 0, or the round trips the root task measures
    /// (docs/bench-ipc.md).
    public static let benchmark = 9
    /// How many random system calls the root task's fuzzer makes
    /// (`cmk boot --fuzz N`; `RootTaskImage.defaultFuzzCalls` otherwise).
    public static let fuzzCalls = 10
    /// Clusters whose kernels had not failed when the boot started this
    /// root task (bit c: cluster c; docs/boot.md): the peers worth waiting
    /// for (the cross-cluster notification handshake, RemoteNotify.swift).
    public static let liveClusters = 11
    /// Untyped i's size (log2 bytes) at `untypedSizes + i`, i < untypedCount (at most 32).
    public static let untypedSizes = 16
    /// The cluster's big lock: its kind's name (`ClusterLock.Kind.name`), up
    /// to 8 ASCII bytes, little-endian, NUL-padded.
    public static let lockName = 48
    /// The virtual counter's frequency (CNTFRQ_EL0), Hz.
    public static let counterFrequency = 49
    /// `cmk experiment lock --qemu`: 0 (none), or 1 + the workload (1 null
    /// entry, 2 critical section of `lockHold` iterations); `lockDelay`
    /// iterations outside the lock; a window of `lockTicks` counter ticks.
    public static let lockExperiment = 50
    public static let lockHold = 51
    public static let lockDelay = 52
    public static let lockTicks = 53
    public static let words = 56
}

import Arch
import BigLock
import Cluster
import InterKernel

/// The kernel console: whole lines on the shared PL011.
///
/// The UART is the one device every cluster writes, so a line is written
/// under the console lock in the shared channel control page (not kernel
/// data: a word in the shared region, like the rings). Before the boot core
/// enters its cluster only it runs, and it writes without the lock.
///
/// Lines that tests and users rely on are documented in docs/boot.md.
enum Console {

    /// How long a line waits for the console lock before it writes without
    /// it (virtual-counter fraction of a second: 1/4 s).
    static let lockWaitDivisor: UInt64 = 4

    /// Take the console for one line. The console lock is the one lock clusters share:
    /// a cluster that dies holding it must not silence the others, so the wait
    /// is bounded. Past the bound this cluster prints one urgent line and moves
    /// to the next console lock in the control page (`ChannelControl
    /// .consoleLock(_:level:)`), where the other survivors meet it, so their
    /// lines stay whole. Past the last level it writes without a lock (lines
    /// may then interleave; none is lost).
    static func begin() {
        guard KernelGlobals.mapped, KernelGlobals.consoleLock != nil else { return }
        var gaveUp = false
        while !KernelGlobals.consoleLockAbandoned {
            if acquire(KernelGlobals.consoleLock!, within: CPU.counterFrequency / lockWaitDivisor) { break }
            giveUpConsoleLock()
            gaveUp = true
        }
        startLine()
        if gaveUp {
            // Under the next lock (if any), so it too stays a whole line.
            put(KernelGlobals.consoleLockAbandoned
                ? "cmk: console lock held for 1/4 s (its holder died?): this cluster writes without it"
                : "cmk: console lock held for 1/4 s (its holder died?): this cluster moves to the next console lock")
            PL011.write(UInt8(ascii: "\n"))
        }
    }

    /// Take `lock`, giving up after `ticks` of the virtual counter.
    static func acquire(_ lock: UnsafeMutablePointer<TicketLock>, within ticks: UInt64) -> Bool {
        let deadline = CPU.counter &+ ticks
        while !lock.pointee.tryAcquire() {
            CPU.relax()
            if CPU.counter > deadline { return false }
        }
        return true
    }

    /// The holder of this cluster's console lock seems to have died: move to
    /// the next lock level (no lock at all after the last).
    static func giveUpConsoleLock() {
        let next = KernelGlobals.consoleLockLevel + 1
        if let page = KernelGlobals.controlPage, next < ChannelControl.consoleLockLevels {
            KernelGlobals.consoleLockLevel = next
            KernelGlobals.consoleLock = ChannelControl.consoleLock(page, level: next)
        } else {
            KernelGlobals.consoleLockAbandoned = true
        }
    }

    /// A kernel line never continues a guest's unfinished line: it starts
    /// on a fresh one. (Only the cluster that prints the guest's output can
    /// have a guest line open; the flag is that cluster's own.)
    static func startLine() {
        if KernelGlobals.guestLineOpen {
            PL011.write(UInt8(ascii: "\n"))
            KernelGlobals.guestLineOpen = false
        }
    }

    /// The guest's console output, as it comes (a prompt without a newline
    /// must reach the terminal at once), under the console lock.
    static func guestOutput(_ drain: ((UInt8) -> Void) -> Void) {
        guard KernelGlobals.mapped, KernelGlobals.consoleLock != nil else { return }
        lockForLine()
        drain { byte in
            PL011.write(byte)
            KernelGlobals.guestLineOpen = byte != UInt8(ascii: "\n")
        }
        unlockAfterLine()
    }

    /// `begin` without a fresh line.
    static func lockForLine() {
        let open = KernelGlobals.guestLineOpen
        KernelGlobals.guestLineOpen = false
        begin()
        KernelGlobals.guestLineOpen = open
    }

    static func unlockAfterLine() {
        guard KernelGlobals.mapped, !KernelGlobals.consoleLockAbandoned, let lock = KernelGlobals.consoleLock else { return }
        lock.pointee.release()
    }

    /// Take the console for a report that must get out even if the lock is
    /// never released: wait for it as a line does (1/4 s of the virtual
    /// counter, relaxing, so under single-threaded TCG the holder's vCPU gets
    /// to finish its line), then write anyway on a fresh line. (It counted a
    /// million attempts without relaxing before: under host load the holder
    /// got no turn, and the report began in the middle of its line, as
    /// `ccmk: exception ...`; boot-tests missed the line now and then.)
    static func beginUrgent() {
        guard KernelGlobals.mapped else { return }
        KernelGlobals.urgentHeld = false
        guard !KernelGlobals.consoleLockAbandoned, let lock = KernelGlobals.consoleLock else {
            startLine()
            return
        }
        if acquire(lock, within: CPU.counterFrequency / lockWaitDivisor) {
            KernelGlobals.urgentHeld = true
            startLine()
            return
        }
        // The holder never let go (it may be the core that faulted): write
        // anyway, from a fresh line, and stop waiting for it.
        KernelGlobals.consoleLockAbandoned = true
        PL011.write(UInt8(ascii: "\n"))
        startLine()
    }

    static func end() {
        PL011.write(UInt8(ascii: "\n"))
        unlockAfterLine()
    }

    static func endUrgent() {
        PL011.write(UInt8(ascii: "\n"))
        guard KernelGlobals.mapped, KernelGlobals.urgentHeld, let lock = KernelGlobals.consoleLock else { return }
        lock.pointee.release()
    }

    static func put(_ text: StaticString) {
        text.withUTF8Buffer { for byte in $0 { PL011.write(byte) } }
    }

    static func hex(_ value: UInt64) {
        put("0x")
        var started = false
        for nibble in stride(from: 60, through: 0, by: -4) {
            let digit = UInt8((value >> UInt64(nibble)) & 0xF)
            if digit != 0 || started || nibble == 0 {
                started = true
                PL011.write(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
            }
        }
    }

    /// "0xLO-0xHI".
    static func hexRange(_ low: UInt64, _ high: UInt64) {
        hex(low)
        put("-")
        hex(high)
    }

    static func decimal(_ value: UInt64) {
        var divisor: UInt64 = 1
        while value / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            PL011.write(UInt8(ascii: "0") + UInt8((value / divisor) % 10))
            divisor /= 10
        }
    }

    static func decimal(_ value: Int) { decimal(UInt64(value)) }

    /// "A,B,C": the cores of a mask in increasing order.
    static func coreList(_ mask: UInt64) {
        var rest = mask
        var first = true
        while rest != 0 {
            if !first { put(",") }
            first = false
            decimal(UInt64(rest.trailingZeroBitCount))
            rest &= rest - 1
        }
    }
}

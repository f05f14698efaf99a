import BigLock
import Synchronization

/// The first page of the shared channel region: the few shared words that are
/// not messages. Every cluster maps it; no cluster's kernel data lives here.
///
/// Layout (each field on its own 64-byte cache line, so a cluster spinning on
/// one never steals the line another cluster is writing):
///
/// | offset | field          | use                                          |
/// |--------|----------------|----------------------------------------------|
/// | 0x000  | magic          | written by the loader once the page is ready  |
/// | 0x040  | consoleLock    | serialises whole lines on the shared UART     |
/// | 0x2C0+ | consoleLock 1..3 | the next console locks, one line each: a cluster that gave up on a lock whose holder died moves to the next |
/// | 0x080  | bootArrived    | clusters that finished the private-data write |
/// | 0x0C0  | bootDone       | mask: clusters that finished their boot        |
/// | 0x100  | bootCores      | cores up, summed over clusters that are done  |
/// | 0x140  | channelDone    | mask: clusters that finished their boot pings |
/// | 0x180  | channelReady   | mask: clusters ready to answer boot pings     |
/// | 0x1C0  | reserved       | unused (was the boot's doorbell demonstration's flag) |
/// | 0x200  | experimentTurn | boot experiment: the cluster whose pairs run now |
/// | 0x240  | guestStopped   | clusters whose vCPU stopped and reported, at the guest's end |
/// | 0x280  | clustersUp     | mask: clusters that printed their `up` line   |
///
/// Masks (bit c: cluster c) rather than counts, so a waiting cluster knows
/// which one is missing and can declare it failed (docs/boot.md). Every
/// cluster maps this page read-write: a cluster can lie here, which can only
/// make the others wait until their deadlines or skip a rendezvous early; the
/// lines they print are their own.
///
/// The message rings of the inter-kernel channel follow this page
/// (`ChannelControl.size` bytes in).
public enum ChannelControl {
    public static let size: UInt64 = 4096
    public static let magic: UInt64 = 0x4C52_5443_4B4D_4300  // "\0CMKCTRL"

    static let magicOffset = 0x000
    static let consoleLockOffset = 0x040

    /// The page's atomic counters and flags, one cache line each from 0x080
    /// in this order (the table above).
    public enum Counter: Int {
        case bootArrived, bootDone, bootCores, channelDone, channelReady, reserved, experimentTurn, guestStopped,
            clustersUp
        static let count = 9
        var offset: Int { 0x080 + 0x40 * rawValue }
    }

    /// Zero the page and construct its atomics. The loader calls this once,
    /// before any cluster runs.
    public static func format(_ page: UnsafeMutableRawPointer) {
        for offset in stride(from: 0, to: Int(size), by: 8) {
            page.storeBytes(of: 0, toByteOffset: offset, as: UInt64.self)
        }
        (page + consoleLockOffset).bindMemory(to: TicketLock.self, capacity: 1)
            .initialize(to: TicketLock())
        for level in 1..<consoleLockLevels {
            (page + fallbackConsoleLockOffset(level)).bindMemory(to: TicketLock.self, capacity: 1)
                .initialize(to: TicketLock())
        }
        for index in 0..<Counter.count {
            (page + Counter(rawValue: index)!.offset).bindMemory(to: Atomic<UInt64>.self, capacity: 1)
                .initialize(to: Atomic(0))
        }
        page.storeBytes(of: magic, toByteOffset: magicOffset, as: UInt64.self)
    }

    public static func consoleLock(_ page: UnsafeMutableRawPointer) -> UnsafeMutablePointer<TicketLock> {
        (page + consoleLockOffset).assumingMemoryBound(to: TicketLock.self)
    }

    /// Console locks after the first, for clusters that gave up on the one
    /// before (its holder died holding it): the survivors move on together
    /// and their lines stay whole. Levels 1..<consoleLockLevels.
    public static let consoleLockLevels = 4
    static func fallbackConsoleLockOffset(_ level: Int) -> Int { 0x2C0 + 0x40 * (level - 1) }

    /// The console lock of `level` (0 is `consoleLock`).
    public static func consoleLock(_ page: UnsafeMutableRawPointer, level: Int) -> UnsafeMutablePointer<TicketLock> {
        precondition(level >= 0 && level < consoleLockLevels)
        return (page + (level == 0 ? consoleLockOffset : fallbackConsoleLockOffset(level))).assumingMemoryBound(to: TicketLock.self)
    }

    /// One of the page's counters, as an atomic word.
    public static func counter(_ counter: Counter, _ page: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (page + counter.offset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
}

import Synchronization

/// The hook the kernel provides to wake a cluster whose receiving core may be
/// asleep (bare metal: a GIC SGI to that cluster's channel core; hosted: a
/// semaphore, or nothing when the receiver only polls). It is a generic
/// parameter, so each kernel specialises it statically: no function tables.
public protocol ChannelDoorbell {
    /// Wake `cluster`. May be called when it is already awake (harmless).
    func ring(cluster: Int)
}

/// For receivers that never sleep (benchmarks, a polling core).
public struct NoDoorbell: ChannelDoorbell {
    public init() {}
    @inlinable public func ring(cluster: Int) {}
}

/// A doorbell that calls a C function, e.g. the kernel's `Arch` SGI sender.
public struct FunctionDoorbell: ChannelDoorbell {
    public let function: @convention(c) (Int) -> Void
    public init(_ function: @convention(c) (Int) -> Void) { self.function = function }
    @inlinable public func ring(cluster: Int) { function(cluster) }
}

/// One cluster's view of the whole channel: its sending rings to every other
/// cluster, its receiving rings from them, their wake flags, and the
/// receivers' private state (cursors and counters, in the cluster's own
/// memory: a peer cannot rewind or forge them).
///
/// Sleep protocol (no lost wake-ups). Each ring i->j carries j's wake flag
/// (written by j only), so a cluster touches no flag of a ring it is not on:
///
///   receiver (cluster j)                         sender (cluster i)
///   --------------------                         ------------------
///   wake[i->j].store(1, relaxed), every i        slot.header.store(H, release)   (trySend)
///   fence(seq_cst)                               fence(seq_cst)
///   any incoming ring hasPending? -> stay awake  if wake[i->j].load(relaxed) != 0: ring(j)
///   else sleep (WFI) until the doorbell
///   wake[i->j].store(0, relaxed), every i
///
/// The two seq_cst fences are a Dekker pair on each ring: whichever fence
/// comes second in the single total order of seq_cst operations sees the
/// other side's store, so either the receiver sees the message before
/// sleeping or the sender sees the flag and rings. Release/acquire alone cannot give this store-then-load
/// order. The fence costs a full barrier per doorbell check, so `trySend` does
/// not check; `send(_:to:doorbell:)` and `ringDoorbellIfIdle` do, and a sender
/// of a batch checks once at the end.
public struct ChannelEndpoint {
    public let region: UnsafeMutableRawPointer
    public let layout: ChannelLayout
    public let cluster: Int
    /// The receivers' cursors and counters, one `RingReceiver.stateSize`
    /// block per cluster (indexed by sender): the cluster's private memory.
    public let privateState: UnsafeMutableRawPointer

    /// Bytes of private memory an endpoint needs for `clusterCount` clusters.
    public static func privateStateSize(clusterCount: Int) -> Int { clusterCount * RingReceiver.stateSize }

    /// Give the private state its initial value (nothing received). Once,
    /// before the endpoint's first poll; views made later share it.
    public static func formatPrivateState(_ state: UnsafeMutableRawPointer, clusterCount: Int) {
        for peer in 0..<clusterCount { RingReceiver.formatState(state + peer * RingReceiver.stateSize) }
    }

    /// Nil if `cluster` is not in the layout or the region or the private
    /// state is not 64-byte aligned. `privateState` holds
    /// `privateStateSize(clusterCount:)` bytes formatted with `formatPrivateState`.
    public init?(region: UnsafeMutableRawPointer, layout: ChannelLayout, cluster: Int,
                 privateState: UnsafeMutableRawPointer) {
        guard cluster >= 0, cluster < layout.clusterCount,
              UInt(bitPattern: region) & UInt(ChannelLayout.slotSize - 1) == 0,
              UInt(bitPattern: privateState) & UInt(ChannelLayout.slotSize - 1) == 0 else { return nil }
        self.region = region
        self.layout = layout
        self.cluster = cluster
        self.privateState = privateState
    }

    /// The ring on which this cluster sends to `peer`.
    public func sender(to peer: Int) -> RingSender {
        RingSender(ring: region + layout.ringOffset(from: cluster, to: peer),
                   slotsPerRing: layout.slotsPerRing, sender: cluster)
    }

    /// The ring on which this cluster receives from `peer`.
    public func receiver(from peer: Int) -> RingReceiver {
        RingReceiver(ring: region + layout.ringOffset(from: peer, to: cluster),
                     state: privateState + peer * RingReceiver.stateSize,
                     slotsPerRing: layout.slotsPerRing, sender: peer)
    }

    /// The wake flag of the ring from `from` to `to`.
    func wakeFlag(from: Int, to: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (region + layout.wakeFlagOffset(from: from, to: to)).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Store `value` in the wake flag of every ring we receive on. Relaxed:
    /// the callers order it (a fence, or nothing needed); see the protocol.
    func setWakeFlags(_ value: UInt64) {
        var peer = 0
        while peer < layout.clusterCount {
            if peer != cluster { wakeFlag(from: peer, to: cluster).pointee.store(value, ordering: .relaxed) }
            peer += 1
        }
    }

    /// Send without checking the doorbell: for a receiver known to be polling,
    /// or a batch followed by `ringDoorbellIfIdle`.
    public func trySend(_ message: InterKernelMessage, to peer: Int) -> SendResult {
        sender(to: peer).trySend(message)
    }

    /// Send, then ring `peer`'s doorbell if it may be asleep (also when the
    /// ring is full, so a sleeping receiver drains it). On `.full` the caller
    /// decides: retry later (calling this again) or give up.
    public func send<Doorbell: ChannelDoorbell>(_ message: InterKernelMessage, to peer: Int,
                                                doorbell: Doorbell) -> SendResult {
        sendThenRing(message, to: peer, doorbell: doorbell)
    }

    func sendThenRing<Doorbell: ChannelDoorbell>(_ message: InterKernelMessage, to peer: Int,
                                                 doorbell: Doorbell) -> SendResult {
        let result = sender(to: peer).trySend(message)
        // Sent: the receiver must see it. Full: only possible with the
        // receiver asleep if garbage fills the slot; waking it makes it drain
        // (a sender that waits on `.full` would otherwise wait forever).
        _ = ringIfIdle(peer, doorbell: doorbell)
        return result
    }

    /// `send(_:to:doorbell:)` with a C-function doorbell: a non-generic entry
    /// point (and the instantiation the Embedded build compiles and checks).
    public func send(_ message: InterKernelMessage, to peer: Int, doorbell: FunctionDoorbell) -> SendResult {
        sendThenRing(message, to: peer, doorbell: doorbell)
    }

    /// Ring `peer`'s doorbell if its wake flag says it may be asleep. Call after
    /// the messages it must see are in the ring. Returns true if it rang.
    public func ringDoorbellIfIdle(_ peer: Int, doorbell: FunctionDoorbell) -> Bool {
        ringIfIdle(peer, doorbell: doorbell)
    }

    /// `ringDoorbellIfIdle` for any doorbell type.
    public func ringDoorbellIfIdle<Doorbell: ChannelDoorbell>(_ peer: Int, doorbell: Doorbell) -> Bool {
        ringIfIdle(peer, doorbell: doorbell)
    }

    func ringIfIdle<Doorbell: ChannelDoorbell>(_ peer: Int, doorbell: Doorbell) -> Bool {
        // Seq_cst fence: orders our header stores before the flag load below
        // (store->load), pairing with the receiver's fence in `prepareToSleep`.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        // Relaxed: the fence above gives the ordering; the value alone decides.
        guard wakeFlag(from: cluster, to: peer).pointee.load(ordering: .relaxed) != 0 else { return false }
        sender(to: peer).noteDoorbell()
        doorbell.ring(cluster: peer)
        return true
    }

    /// Poll every incoming ring once, calling `body(from, result)` for each
    /// ring that was not empty. Returns how many were not empty.
    public func pollAll(_ body: (Int, ReceiveResult) -> Void) -> Int {
        var found = 0
        var peer = 0
        while peer < layout.clusterCount {
            if peer != cluster {
                let result = receiver(from: peer).poll()
                if result != .empty {
                    found += 1
                    body(peer, result)
                }
            }
            peer += 1
        }
        return found
    }

    /// True if any incoming ring has a line waiting.
    public var hasPending: Bool {
        var peer = 0
        while peer < layout.clusterCount {
            if peer != cluster && receiver(from: peer).hasPending { return true }
            peer += 1
        }
        return false
    }

    /// Announce that this cluster's receiving core is about to sleep. Returns
    /// true if it may sleep now (nothing pending; senders will ring the
    /// doorbell), false if something arrived (the flag is cleared again).
    /// After waking, call `finishSleep()` and poll.
    ///
    /// Bare metal: mask IRQs, `prepareToSleep()`, WFI if true (a pending SGI
    /// still ends WFI while masked), `finishSleep()`, unmask, poll.
    public func prepareToSleep() -> Bool {
        // Relaxed stores + seq_cst fence: the flag stores are ordered before the
        // header loads in `hasPending` (store->load), pairing with the fence
        // in `ringDoorbellIfIdle`.
        setWakeFlags(1)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if hasPending {
            setWakeFlags(0)
            return false
        }
        return true
    }

    /// Ask every sender to ring the doorbell from now on, until
    /// `finishSleep()`: for a receiving core that serves its rings from the
    /// doorbell's interrupt instead of polling (the kernel while its root
    /// task runs at EL0, Boot/UserChannel.swift). Relaxed stores + seq_cst
    /// fence, as in `prepareToSleep` (the Dekker pair with the fence in
    /// `ringDoorbellIfIdle`): once this returns, a message a sender puts in a
    /// ring either rings the doorbell or is visible to the caller's next
    /// poll, so the caller polls once after this call.
    public func requestDoorbells() {
        setWakeFlags(1)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// Clear the wake flag after sleeping. Relaxed: a sender that still sees
    /// 1 only rings a doorbell we did not need (a spurious wake-up).
    public func finishSleep() {
        setWakeFlags(0)
    }
}

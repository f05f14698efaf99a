import Arch
import BigLock
import Cluster
import InterKernel
import Kernel
import VMM

/// The guest's traffic on the inter-kernel channel (docs/guest.md, "SMP").
///
/// vCPU i runs on cluster i (its first core, which is also the cluster's
/// channel core, so the doorbell SGI reaches the core whose list registers
/// must change). Cluster 0 owns the distributor, the UART and the end of the
/// run. Everything another cluster needs goes as a message, never as shared
/// kernel data:
///   CPU_ON / CPU_OFF      vcpuPower (to the target; the new state to all)
///   guest IPIs            guestSGI to the target's cluster
///   SPI state             guestSPI / guestGroupEnable (owner -> vCPU), guestSPIReport (vCPU -> owner)
///   GICD and UART access  guestDeviceAccess -> owner, guestDeviceReply back
///   SYSTEM_OFF / RESET    guestStop -> cluster 0, which sends shutdown to all
///
/// Every message is validated by the channel (`InterKernelMessage.init`)
/// and again here against this guest (vCPU numbers below the guest's count,
/// a vCPU named only where it runs); what fails is dropped and counted.
/// Called only under the cluster's big lock, by the vCPU's core.
enum GuestChannel {
    /// Messages dropped: by the channel (malformed lines) or here (valid
    /// lines that make no sense for this guest).
    nonisolated(unsafe) static var dropped: UInt64 = 0
    /// Messages this cluster gave up sending (the peer's ring stayed full).
    nonisolated(unsafe) static var unsent: UInt64 = 0
    /// A CPU_ON for this cluster's vCPU, waiting to be taken by `waitForStart`.
    nonisolated(unsafe) static var startEntry: UInt64 = 0
    nonisolated(unsafe) static var startContext: UInt64 = 0
    nonisolated(unsafe) static var startRequested = false
    /// The vCPU runs (it was started and is not off).
    nonisolated(unsafe) static var running = false
    /// The answer to this cluster's forwarded device access.
    nonisolated(unsafe) static var awaitedToken: UInt64 = 0
    nonisolated(unsafe) static var replyArrived = false
    nonisolated(unsafe) static var replyRefused = false
    nonisolated(unsafe) static var replyValue: UInt64 = 0
    nonisolated(unsafe) static var nextToken: UInt64 = 1
    /// Cluster 0: a stop was asked for (by a message), with this reason.
    nonisolated(unsafe) static var stopRequested: GuestStopReason? = nil
    /// Not cluster 0: cluster 0 told us to stop.
    nonisolated(unsafe) static var shutdownRequested = false
    /// Nested pumping (a send that waits for room while handling a message)
    /// only polls; it never handles a second message inside the first.
    nonisolated(unsafe) static var pumping = false

    static var cluster: Int { GuestGlobals.cluster }
    static var endpoint: ChannelEndpoint { KernelGlobals.channel! }
    /// How long a send waits for room, and a forwarded access for its answer.
    static var sendTimeoutTicks: UInt64 { CPU.counterFrequency }
    static var replyTimeoutTicks: UInt64 { CPU.counterFrequency }

    // MARK: Sending

    /// Send to `peer` and ring its doorbell (always: a core that runs a
    /// guest is not asleep in the channel's sense, but it must leave the
    /// guest to see the message). A full ring: serve our own rings (the peer
    /// may be waiting for us), then retry, for at most `sendTimeoutTicks`.
    /// A peer that never drains cannot stop this cluster: after the bound the
    /// message is dropped, counted (`unsent`) and reported (the first few).
    static func send(_ message: InterKernelMessage, to peer: Int) {
        let deadline = CPU.counter &+ sendTimeoutTicks
        while endpoint.trySend(message, to: peer) == .full {
            if !pumping { pump() }
            CPU.relax()
            if CPU.counter > deadline {
                unsent &+= 1
                if unsent <= 4 {
                    Console.begin()
                    Console.put("cmk: guest: channel ring to cluster ")
                    Console.decimal(peer)
                    Console.put(" full for a second, message dropped")
                    Console.end()
                }
                return
            }
        }
        ChannelBringUp.doorbell.ring(cluster: peer)
    }

    /// Everything the machine queued for other clusters.
    static func flushOutbox() {
        while let m = GuestGlobals.vm.pointee.outbox.pop() {
            switch m {
            case .distributor(.spi(let n)):
                send(.guestSPI(vcpu: UInt64(n.vcpu), intid: UInt64(n.intid), priority: UInt64(n.priority),
                               levelSensitive: n.levelSensitive, pending: n.pending, sequence: UInt64(n.sequence)),
                     to: clusterOf(vcpu: n.vcpu))
            case .distributor(.group1Enable(let v, let enabled)):
                send(.guestGroupEnable(vcpu: UInt64(v), enabled: enabled), to: clusterOf(vcpu: v))
            case .report(let r):
                send(.guestSPIReport(vcpu: UInt64(r.vcpu), intid: UInt64(r.intid), sequence: UInt64(r.sequence),
                                     pending: r.pending, active: r.active), to: 0)
            }
        }
    }

    /// The cluster that runs vCPU `v` (one vCPU per cluster).
    static func clusterOf(vcpu v: Int) -> Int { v }

    /// Tell every other cluster running a vCPU that `v` is now `state`.
    static func broadcast(vcpu v: Int, _ state: VCPUPowerState) {
        for c in 0..<GuestGlobals.vcpuCount where c != cluster {
            send(.vcpuPower(vcpu: UInt64(v), state: state, entry: 0, context: 0), to: c)
        }
    }

    /// PSCI CPU_ON of vCPU `v` (already onPending in our table): ask its
    /// cluster to start it, and tell the others it is pending.
    static func startRemote(vcpu v: Int, entry: UInt64, context: UInt64) {
        for c in 0..<GuestGlobals.vcpuCount where c != cluster && c != clusterOf(vcpu: v) {
            send(.vcpuPower(vcpu: UInt64(v), state: .onPending, entry: 0, context: 0), to: c)
        }
        send(.vcpuPower(vcpu: UInt64(v), state: .on, entry: entry, context: context), to: clusterOf(vcpu: v))
    }

    /// A guest IPI for the vCPUs in `targets` (other clusters').
    static func sendSGI(targets: UInt64, intid: Int) {
        var mask = targets
        while mask != 0 {
            let v = mask.trailingZeroBitCount
            mask &= mask - 1
            guard v < GuestGlobals.vcpuCount, v != GuestGlobals.vm.pointee.vcpu else { continue }
            send(.guestSGI(vcpu: UInt64(v), intid: UInt64(intid)), to: clusterOf(vcpu: v))
        }
    }

    /// Ask the owner (cluster 0) to perform `access`, serving our own rings
    /// while we wait. A missing answer is a refusal (and a log line).
    static func forward(_ access: MMIOAccess, value: UInt64) -> MMIOResult {
        let token = nextToken
        nextToken &+= 1
        awaitedToken = token
        replyArrived = false
        send(.guestDeviceAccess(token: token, vcpu: UInt64(GuestGlobals.vm.pointee.vcpu), ipa: access.ipa,
                                size: UInt64(access.size), isWrite: access.isWrite, value: value), to: 0)
        let deadline = CPU.counter &+ replyTimeoutTicks
        while !replyArrived {
            pump()
            if replyArrived { break }
            CPU.relax()
            if CPU.counter > deadline {
                Console.begin()
                Console.put("cmk: guest device access forwarded to cluster 0 timed out, ipa=")
                Console.hex(access.ipa)
                Console.end()
                return .refused
            }
        }
        return replyRefused ? .refused : .done(replyValue)
    }

    // MARK: Receiving

    /// Handle every message waiting in our incoming rings.
    static func pump() {
        pumping = true
        defer { pumping = false }
        _ = endpoint.pollAll { from, result in
            switch result {
            case .message(let m): handle(m, from: from)
            case .dropped: dropped &+= 1
            case .empty: break
            }
        }
    }

    static func handle(_ message: InterKernelMessage, from: Int) {
        let vcpus = UInt64(GuestGlobals.vcpuCount)
        let local = UInt64(GuestGlobals.vm.pointee.vcpu)
        switch message {
        case let .vcpuPower(v, state, entry, context):
            guard v < vcpus else { dropped &+= 1; return }
            if v == local {
                // Only CPU_ON is addressed to the vCPU's own cluster.
                guard state == .on, !running, !startRequested else { dropped &+= 1; return }
                startEntry = entry
                startContext = context
                startRequested = true
            } else {
                let s: GuestPSCI.PowerState = state == .on ? .on : state == .onPending ? .onPending : .off
                GuestGlobals.vm.pointee.psci.noteState(Int(v), s)
            }
        case let .guestSGI(v, intid):
            guard v == local else { dropped &+= 1; return }
            GuestGlobals.vm.pointee.receiveSGI(Int(intid))
        case let .guestSPI(v, intid, priority, level, pending, sequence):
            guard v == local, from == 0 else { dropped &+= 1; return }
            GuestGlobals.vm.pointee.receive(.spi(SPINotice(
                vcpu: Int(v), intid: Int(intid), priority: UInt8(priority), levelSensitive: level, pending: pending,
                sequence: UInt8(sequence))))
        case let .guestGroupEnable(v, enabled):
            guard v == local, from == 0 else { dropped &+= 1; return }
            GuestGlobals.vm.pointee.receive(.group1Enable(vcpu: Int(v), enabled: enabled))
        case let .guestSPIReport(v, intid, sequence, pending, active):
            // Only the owner accepts reports, and only from the vCPU's own cluster.
            guard GuestGlobals.vm.pointee.distributor != nil, v < vcpus, from == clusterOf(vcpu: Int(v)) else {
                dropped &+= 1
                return
            }
            GuestGlobals.vm.pointee.receive(SPIReport(
                vcpu: Int(v), intid: Int(intid), sequence: UInt8(sequence), pending: pending, active: active))
            flushOutbox()
        case let .guestDeviceAccess(token, v, ipa, size, isWrite, value):
            guard GuestGlobals.vm.pointee.distributor != nil, v < vcpus, from == clusterOf(vcpu: Int(v)) else {
                dropped &+= 1
                return
            }
            let result = GuestGlobals.vm.pointee.ownedDeviceAccess(ipa: ipa, size: Int(size), isWrite: isWrite, value: value)
            switch result {
            case .done(let r): send(.guestDeviceReply(token: token, refused: false, value: r), to: from)
            case .refused: send(.guestDeviceReply(token: token, refused: true, value: 0), to: from)
            }
            flushOutbox()
            VCPURun.drainConsole()
        case let .guestDeviceReply(token, refused, value):
            guard from == 0, token == awaitedToken, !replyArrived else { dropped &+= 1; return }
            replyRefused = refused
            replyValue = value
            replyArrived = true
        case let .guestStop(reason):
            guard cluster == 0 else { dropped &+= 1; return }
            stopRequested = stopRequested ?? reason
        case .shutdown:
            guard cluster != 0, from == 0 else { dropped &+= 1; return }
            shutdownRequested = true
        case .ping, .pong, .notify, .clusterFailed:
            // Boot traffic; a cluster fails alone only during the boot.
            dropped &+= 1
        }
    }
}

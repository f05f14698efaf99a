import Arch
import BigLock
import Cluster
import InterKernel
import Kernel
import VMM

/// The guest's traffic on the inter-kernel channel (docs/guest.md, "SMP").
///
/// Where each vCPU runs is `GuestGlobals.map` (one per cluster, or one per
/// core). Cluster 0's vCPU 0 owns the distributor, the UART and the end of
/// the run. Everything another cluster needs goes as a message, never as
/// shared kernel data; between the vCPUs of one cluster (core placement) the
/// same messages are handled in place, under the cluster's big lock:
///   CPU_ON / CPU_OFF      vcpuPower (to the target; the new state to all)
///   guest IPIs            guestSGI to the target's cluster
///   SPI state             guestSPI / guestGroupEnable (owner -> vCPU), guestSPIReport (vCPU -> owner)
///   GICD and UART access  guestDeviceAccess -> owner, guestDeviceReply back
///   SYSTEM_OFF / RESET    guestStop -> cluster 0, which sends shutdown to all
///
/// A message for a vCPU rings the doorbell of the core that runs it: only
/// that core can write its list registers. A core that handles a message for
/// a sibling vCPU of its cluster rings the sibling's core (`kick`).
///
/// Every message is validated by the channel (`InterKernelMessage.init`)
/// and again here against this guest (vCPU numbers below the guest's count,
/// a vCPU named only where it runs); what fails is dropped and counted.
/// Called only under the cluster's big lock.
enum GuestChannel {
    /// Messages this cluster gave up sending (the peer's ring stayed full).
    nonisolated(unsafe) static var unsent: UInt64 = 0
    /// Cluster 0: a stop was asked for (by a message), with this reason.
    nonisolated(unsafe) static var stopRequested: GuestStopReason? = nil
    /// Every core of this cluster must stop (cluster 0 told us, or, on
    /// cluster 0, the guest is over).
    nonisolated(unsafe) static var shutdownRequested = false
    /// Cluster 0: a core is running `VCPURun.finish`.
    nonisolated(unsafe) static var finishing = false
    /// Local cores that reported their stop.
    nonisolated(unsafe) static var localStopped = 0
    /// Nested pumping (a send that waits for room while handling a message)
    /// only polls; it never handles a second message inside the first.
    nonisolated(unsafe) static var pumping = false

    static var cluster: Int { GuestGlobals.cluster }
    static var endpoint: ChannelEndpoint { KernelGlobals.channel! }
    /// How long a send waits for room, and a forwarded access for its answer.
    static var sendTimeoutTicks: UInt64 { CPU.counterFrequency }
    static var replyTimeoutTicks: UInt64 { CPU.counterFrequency }
    /// This cluster runs vCPU 0, so owns the devices (`GuestGlobals.machine(0)`).
    static var ownsDevices: Bool { GuestGlobals.firstVCPU == 0 && GuestGlobals.localCount > 0 }

    /// Count a dropped message against the core that handled it.
    static func drop() { GuestGlobals.here.pointee.dropped &+= 1 }

    // MARK: Sending

    /// Send to `peer` and ring the doorbell of the core that runs `vcpu`
    /// (nil: the peer's first core). Always: a core that runs a guest is not
    /// asleep in the channel's sense, but it must leave the guest to see the
    /// message. A full ring: serve our own rings (the peer may be waiting for
    /// us), then retry, for at most `sendTimeoutTicks`. A peer that never
    /// drains cannot stop this cluster: after the bound the message is
    /// dropped, counted (`unsent`) and reported (the first few).
    @inline(never)
    static func send(_ message: InterKernelMessage, to peer: Int, ringing vcpu: Int? = nil) {
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
        if let vcpu { GICv3.ring(mpidr: GuestGlobals.coreMPIDR(ofVCPU: vcpu)) } else { ChannelBringUp.doorbell.ring(cluster: peer) }
    }

    /// A message about vCPU `vcpu` for cluster `peer`: sent, or (our own
    /// cluster) handled in place.
    static func deliver(_ message: InterKernelMessage, to peer: Int, vcpu: Int) {
        if peer == cluster { handle(message, from: cluster) } else { send(message, to: peer, ringing: vcpu) }
    }

    /// Make local core `core` leave its guest (or its sleep) to see what we
    /// changed in its vCPU's state.
    static func kick(core: Int) {
        guard core != GuestGlobals.hereIndex else { return }
        GICv3.ring(mpidr: GuestGlobals.coreMPIDR(ofVCPU: GuestGlobals.firstVCPU + core))
    }

    /// Everything the local machines queued for other vCPUs.
    static func flushOutbox() {
        for j in 0..<GuestGlobals.localCount {
            let vm = GuestGlobals.machine(j)
            while let m = vm.pointee.outbox.pop() {
                switch m {
                case .distributor(.spi(let n)):
                    guard let c = GuestGlobals.clusterOf(vcpu: n.vcpu) else { continue }
                    deliver(.guestSPI(vcpu: UInt64(n.vcpu), intid: UInt64(n.intid), priority: UInt64(n.priority),
                                      levelSensitive: n.levelSensitive, pending: n.pending, sequence: UInt64(n.sequence)),
                            to: c, vcpu: n.vcpu)
                case .distributor(.group1Enable(let v, let enabled)):
                    guard let c = GuestGlobals.clusterOf(vcpu: v) else { continue }
                    deliver(.guestGroupEnable(vcpu: UInt64(v), enabled: enabled), to: c, vcpu: v)
                case .report(let r):
                    deliver(.guestSPIReport(vcpu: UInt64(r.vcpu), intid: UInt64(r.intid), sequence: UInt64(r.sequence),
                                            pending: r.pending, active: r.active), to: 0, vcpu: 0)
                }
            }
        }
    }

    /// Every cluster other than ours that runs a vCPU.
    static func forEachOtherCluster(_ body: (Int) -> Void) {
        let map = GuestGlobals.map
        for c in 0..<map.pointee.clusterCount where c != cluster && !map.pointee.vcpus(inCluster: c).isEmpty { body(c) }
    }

    /// Note vCPU `v`'s power state in every local machine's PSCI table.
    static func noteLocally(vcpu v: Int, _ state: GuestPSCI.PowerState) {
        for j in 0..<GuestGlobals.localCount { GuestGlobals.machine(j).pointee.psci.noteState(v, state) }
    }

    /// Tell every vCPU that `v` is now `state`.
    static func broadcast(vcpu v: Int, _ state: VCPUPowerState) {
        noteLocally(vcpu: v, state == .on ? .on : state == .onPending ? .onPending : .off)
        forEachOtherCluster { c in send(.vcpuPower(vcpu: UInt64(v), state: state, entry: 0, context: 0), to: c) }
    }

    /// PSCI CPU_ON of vCPU `v` (already onPending in our table): ask its
    /// cluster to start it, and tell the others it is pending.
    static func startRemote(vcpu v: Int, entry: UInt64, context: UInt64) {
        guard let target = GuestGlobals.clusterOf(vcpu: v) else { return }
        forEachOtherCluster { c in
            if c != target { send(.vcpuPower(vcpu: UInt64(v), state: .onPending, entry: 0, context: 0), to: c) }
        }
        deliver(.vcpuPower(vcpu: UInt64(v), state: .on, entry: entry, context: context), to: target, vcpu: v)
    }

    /// A guest IPI for the vCPUs in `targets` (not the sender).
    static func sendSGI(targets: UInt64, intid: Int) {
        var mask = targets
        let me = GuestGlobals.vm.pointee.vcpu
        while mask != 0 {
            let v = mask.trailingZeroBitCount
            mask &= mask - 1
            guard v != me, let c = GuestGlobals.clusterOf(vcpu: v) else { continue }
            deliver(.guestSGI(vcpu: UInt64(v), intid: UInt64(intid)), to: c, vcpu: v)
        }
    }

    /// Ask the owner of the devices to perform `access`. The owner in our
    /// own cluster (core placement, cluster 0): in place, under the lock we
    /// hold. Elsewhere: a message, serving our own rings while we wait (and
    /// letting the lock go between polls); a missing answer is a refusal
    /// (and a log line).
    static func forward(_ access: MMIOAccess, value: UInt64) -> MMIOResult {
        if ownsDevices {
            let result = GuestGlobals.machine(0).pointee.ownedDeviceAccess(
                ipa: access.ipa, size: access.size, isWrite: access.isWrite, value: value)
            flushOutbox()
            VCPURun.drainConsole()
            kick(core: 0)
            return result
        }
        let here = GuestGlobals.here
        let token = here.pointee.nextToken
        here.pointee.nextToken &+= 1
        here.pointee.awaitedToken = token
        here.pointee.replyArrived = false
        send(.guestDeviceAccess(token: token, vcpu: UInt64(GuestGlobals.vm.pointee.vcpu), ipa: access.ipa,
                                size: UInt64(access.size), isWrite: access.isWrite, value: value), to: 0, ringing: 0)
        let deadline = CPU.counter &+ replyTimeoutTicks
        let me = GuestGlobals.hereIndex
        while !here.pointee.replyArrived {
            pump()
            if here.pointee.replyArrived || shutdownRequested { break }
            // The cluster's other cores need the lock more than we do while
            // the owner answers (our state here is only ours).
            GuestLock.release(core: me)
            CPU.relax()
            GuestLock.acquire(core: me)
            if CPU.counter > deadline {
                Console.begin()
                Console.put("cmk: guest device access forwarded to cluster 0 timed out, ipa=")
                Console.hex(access.ipa)
                Console.end()
                return .refused
            }
        }
        return !here.pointee.replyArrived || here.pointee.replyRefused ? .refused : .done(here.pointee.replyValue)
    }

    // MARK: Receiving

    /// Handle every message waiting in our incoming rings.
    static func pump() {
        pumping = true
        defer { pumping = false }
        _ = endpoint.pollAll { from, result in
            switch result {
            case .message(let m): handle(m, from: from)
            case .dropped: drop()
            case .empty: break
            }
        }
    }

    static func handle(_ message: InterKernelMessage, from: Int) {
        let vcpus = UInt64(GuestGlobals.vcpuCount)
        switch message {
        case let .vcpuPower(v, state, entry, context):
            guard v < vcpus else { drop(); return }
            if let k = GuestGlobals.localCore(ofVCPU: Int(v)) {
                // Only CPU_ON is addressed to the vCPU's own cluster.
                let target = GuestGlobals.state(k)
                guard state == .on, !target.pointee.running, !target.pointee.startRequested else { drop(); return }
                target.pointee.startEntry = entry
                target.pointee.startContext = context
                target.pointee.startRequested = true
                // The caller's cluster and the others know it is pending; so do we.
                noteLocally(vcpu: Int(v), .onPending)
                kick(core: k)
            } else {
                noteLocally(vcpu: Int(v), state == .on ? .on : state == .onPending ? .onPending : .off)
            }
        case let .guestSGI(v, intid):
            guard let k = GuestGlobals.localCore(ofVCPU: Int(v)) else { drop(); return }
            GuestGlobals.machine(k).pointee.receiveSGI(Int(intid))
            kick(core: k)
        case let .guestSPI(v, intid, priority, level, pending, sequence):
            guard let k = GuestGlobals.localCore(ofVCPU: Int(v)), from == 0 else { drop(); return }
            GuestGlobals.machine(k).pointee.receive(.spi(SPINotice(
                vcpu: Int(v), intid: Int(intid), priority: UInt8(priority), levelSensitive: level, pending: pending,
                sequence: UInt8(sequence))))
            kick(core: k)
        case let .guestGroupEnable(v, enabled):
            guard let k = GuestGlobals.localCore(ofVCPU: Int(v)), from == 0 else { drop(); return }
            GuestGlobals.machine(k).pointee.receive(.group1Enable(vcpu: Int(v), enabled: enabled))
            kick(core: k)
        case let .guestSPIReport(v, intid, sequence, pending, active):
            // Only the owner accepts reports, and only from the vCPU's own cluster.
            guard ownsDevices, v < vcpus, from == GuestGlobals.clusterOf(vcpu: Int(v)) else { drop(); return }
            GuestGlobals.machine(0).pointee.receive(SPIReport(
                vcpu: Int(v), intid: Int(intid), sequence: UInt8(sequence), pending: pending, active: active))
            flushOutbox()
            kick(core: 0)
        case let .guestDeviceAccess(token, v, ipa, size, isWrite, value):
            guard ownsDevices, v < vcpus, from != cluster, from == GuestGlobals.clusterOf(vcpu: Int(v)) else {
                drop()
                return
            }
            let result = GuestGlobals.machine(0).pointee.ownedDeviceAccess(ipa: ipa, size: Int(size), isWrite: isWrite, value: value)
            switch result {
            case .done(let r): send(.guestDeviceReply(token: token, refused: false, value: r), to: from, ringing: Int(v))
            case .refused: send(.guestDeviceReply(token: token, refused: true, value: 0), to: from, ringing: Int(v))
            }
            flushOutbox()
            VCPURun.drainConsole()
            kick(core: 0)
        case let .guestDeviceReply(token, refused, value):
            // The local core that waits for this token (each core numbers its own).
            guard from == 0, from != cluster else { drop(); return }
            for j in 0..<GuestGlobals.localCount {
                let s = GuestGlobals.state(j)
                guard s.pointee.awaitedToken == token, !s.pointee.replyArrived else { continue }
                s.pointee.replyRefused = refused
                s.pointee.replyValue = value
                s.pointee.replyArrived = true
                kick(core: j)
                return
            }
            drop()
        case let .guestStop(reason):
            guard cluster == 0 else { drop(); return }
            stopRequested = stopRequested ?? reason
        case .shutdown:
            guard cluster != 0, from == 0 else { drop(); return }
            shutdownRequested = true
            for j in 0..<GuestGlobals.localCount { kick(core: j) }
        case .ping, .pong, .notify, .clusterFailed:
            // Boot traffic; a cluster fails alone only during the boot.
            drop()
        }
    }
}

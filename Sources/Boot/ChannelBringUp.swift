import Arch
import Cluster
import InterKernel
import Kernel
import Synchronization

/// The inter-kernel channel at boot (docs/channel.md, docs/boot.md).
///
/// 1. Once every cluster is ready to answer, every cluster pings every other
///    cluster, one at a time, `pingsPerPair` times, answering the pings it
///    receives while it waits, and reports the median round trip:
///    `cmk: channel I->J rtt=N ticks` (virtual-counter ticks).
/// 2. A cross-cluster notification: cluster 0's first core goes to sleep in
///    WFI; the last cluster waits until it has committed to that, then sends
///    `.notify` for cluster 0's root-CNode slot of its notification, which
///    rings the doorbell SGI. Cluster 0 wakes, takes the SGI, receives the
///    message and signals its kernel's notification; its root thread polls
///    the badge back: `cmk: notify K->0 woke doorbells=D badge=B ok`.
///
/// Only the first core of each cluster touches its ring ends.
enum ChannelBringUp {
    /// The kernel notification cluster 0 exposes to remote signals: the one
    /// the kernel smoke test made (root CNode slot).
    static let exportedNotification = KernelSmokeTest.notificationSlot

    /// First-core set-up, before the cluster's other cores run.
    static func setUp(record: UnsafeMutablePointer<UInt64>) {
        let info: BootInfo
        do {
            info = try BootInfo.decode(
                UnsafeRawPointer(bitPattern: UInt(Machine.bootInfoAddress))!, available: Int(Machine.bootInfoMaxSize))
        } catch {
            panic(error.message)
        }
        for c in 0..<info.clusterCount {
            Scratch.doorbellTarget[c] = QemuVirt.mpidr(ofCore: info.clusters[c].firstCore)
        }
        let region = UnsafeMutableRawPointer(bitPattern: UInt(record[ClusterRecord.channelBase]))!
        guard let layout = ChannelLayout(clusterCount: info.clusterCount, regionSize: Int(info.channel.size)),
            let endpoint = ChannelEndpoint(region: region, layout: layout, cluster: Int(record[ClusterRecord.clusterId]))
        else { panic("channel layout does not fit the channel region") }
        KernelGlobals.channel = endpoint
    }

    /// The doorbell: an SGI to the first core of `cluster`.
    static var doorbell: FunctionDoorbell {
        FunctionDoorbell { cluster in GICv3.ring(mpidr: Scratch.doorbellTarget[cluster]) }
    }

    static func run(clusterId me: Int, clusterCount: Int, control: UnsafeMutableRawPointer) {
        guard clusterCount > 1, let endpoint = KernelGlobals.channel else { return }
        let deadline = CPU.counter + bringUpTimeoutSeconds * CPU.counterFrequency
        var state = ServeState()
        // Rendezvous (releasing/acquiring, as the other boot counters), so a
        // round trip never includes a peer still busy with its own bring-up.
        let ready = ChannelControl.channelReady(control)
        ready.pointee.wrappingAdd(1, ordering: .releasing)
        ringEveryone(except: me, clusterCount: clusterCount)
        waitUntil(endpoint, &state, deadline: deadline, "clusters missing at the channel rendezvous") { _ in
            ready.pointee.load(ordering: .acquiring) >= UInt64(clusterCount)
        }

        for peer in 0..<clusterCount where peer != me {
            var samples = InlineArray<9, UInt64>(repeating: 0)
            for k in 0..<samples.count {
                let token = UInt64(me) << 48 | UInt64(peer) << 32 | UInt64(k)
                state.awaitedToken = token
                state.rtt = nil
                send(endpoint, .ping(token: token, sentAt: CPU.counter), to: peer, state: &state)
                waitUntil(endpoint, &state, deadline: deadline, "no pong from a cluster") { $0.rtt != nil }
                samples[k] = state.rtt!
            }
            Console.begin()
            Console.put("cmk: channel ")
            Console.decimal(me)
            Console.put("->")
            Console.decimal(peer)
            Console.put(" rtt=")
            Console.decimal(median(&samples))
            Console.put(" ticks")
            Console.end()
        }
        // Keep answering until every cluster has its pongs. Releasing/acquiring:
        // a cluster counted here has printed its lines.
        let done = ChannelControl.channelDone(control)
        done.pointee.wrappingAdd(1, ordering: .releasing)
        ringEveryone(except: me, clusterCount: clusterCount)
        waitUntil(endpoint, &state, deadline: deadline, "clusters did not finish their pings") { _ in
            done.pointee.load(ordering: .acquiring) >= UInt64(clusterCount)
        }

        let signaller = clusterCount - 1
        if me == 0 {
            sleepUntilNotified(endpoint, from: signaller, deadline: deadline, control: control, state: &state)
        } else if me == signaller {
            // Wait until cluster 0 committed to WFI, so the doorbell really has
            // a sleeper to wake (the demonstration, not a protocol rule).
            // Acquiring: pairs with cluster 0's releasing store.
            let sleeper = ChannelControl.bootSleeper(control)
            while sleeper.pointee.load(ordering: .acquiring) == 0 {
                CPU.relax()
                if CPU.counter > deadline { panic("cluster 0 never went to sleep") }
            }
            send(endpoint, .notify(object: UInt64(exportedNotification), badge: 1 << UInt64(me)), to: 0, state: &state)
        }
    }

    struct ServeState {
        var awaitedToken: UInt64 = ~0
        var rtt: UInt64? = nil
        var notified = false
        var dropped: UInt64 = 0
    }

    /// Serve the rings until `condition` holds. When a poll finds nothing the
    /// core sleeps in WFI at once (measured: spinning first, even 2000 polls,
    /// made QEMU round trips 20x slower on a 2-CPU host, since spinning vCPUs
    /// starve the ones with work) (announced with `prepareToSleep`, so a sender rings
    /// the doorbell), which on QEMU also frees the host CPU for the cores
    /// that have work. No lost wake-up: a message or a counter change that
    /// lands after the check leaves a pending SGI, and WFI returns at once.
    /// The deadline is checked after every wake-up.
    static func waitUntil(
        _ endpoint: ChannelEndpoint, _ state: inout ServeState, deadline: UInt64, _ failure: StaticString,
        _ condition: (ServeState) -> Bool
    ) {
        while !condition(state) {
            if serve(endpoint, &state) == 0, !condition(state) {
                if endpoint.prepareToSleep() {
                    if !condition(state) { CPU.waitForInterrupt() }
                    endpoint.finishSleep()
                }
                GICv3.drain()
            }
            if CPU.counter > deadline { panic(failure) }
        }
    }

    /// Wake every other cluster's first core: a shared counter changed.
    /// Unconditional (counters have no wake flag); an unneeded SGI costs a
    /// spurious wake-up only.
    static func ringEveryone(except me: Int, clusterCount: Int) {
        for c in 0..<clusterCount where c != me { doorbell.ring(cluster: c) }
    }

    /// Send, waiting (and serving our own rings) while the ring is full.
    static func send(_ endpoint: ChannelEndpoint, _ message: InterKernelMessage, to peer: Int, state: inout ServeState) {
        while endpoint.send(message, to: peer, doorbell: doorbell) == .full { serve(endpoint, &state) }
    }

    /// Poll every incoming ring once and act on what arrived. Returns how
    /// many rings had something.
    @discardableResult
    static func serve(_ endpoint: ChannelEndpoint, _ state: inout ServeState) -> Int {
        endpoint.pollAll { from, result in
            switch result {
            case .message(.ping(let token, let sentAt)):
                // The reply goes on another ring; a full one waits for its
                // receiver, who serves its own rings meanwhile.
                while endpoint.send(.pong(token: token, pingSentAt: sentAt, repliedAt: CPU.counter), to: from, doorbell: doorbell) == .full {}
            case .message(.pong(let token, let pingSentAt, _)):
                if token == state.awaitedToken { state.rtt = CPU.counter - pingSentAt }
            case .message(.notify(let object, let badge)):
                if let error = KernelGlobals.kernel!.remoteSignal(slot: Word(object), badge: Word(badge)) {
                    _ = error
                    panic("remote signal refused for slot", object)
                }
                state.notified = true
            case .message(.shutdown):
                break
            case .dropped:
                state.dropped += 1
            case .empty:
                break
            }
        }
    }

    /// Cluster 0: sleep in WFI until the signal arrives, counting doorbells.
    static func sleepUntilNotified(
        _ endpoint: ChannelEndpoint, from signaller: Int, deadline: UInt64, control: UnsafeMutableRawPointer,
        state: inout ServeState
    ) {
        var doorbells = 0
        var sleeps = 0
        let start = CPU.counter
        while !state.notified {
            if endpoint.prepareToSleep() {
                sleeps += 1
                // Our wake flag is set and nothing was pending: from here any
                // send sees the flag and rings the doorbell, so WFI either
                // sleeps until the SGI or returns at once on a pending one.
                // Releasing: the flag store is visible before this one.
                ChannelControl.bootSleeper(control).pointee.store(1, ordering: .releasing)
                CPU.waitForInterrupt()
                endpoint.finishSleep()
            }
            doorbells += GICv3.drain()
            serve(endpoint, &state)
            if CPU.counter > deadline { panic("no notification from cluster", decimal: signaller) }
        }
        // The root thread polls its notification: the badge the remote sent.
        KernelSmokeTest.syscall(KernelGlobals.kernel!, .nbRecv, exportedNotification)
        let badge = UInt64(KernelGlobals.kernel!.rootThread.pointee.badge)
        guard badge == 1 << UInt64(signaller) else { panic("notification badge differs from the one sent:", badge) }
        guard sleeps >= 1, doorbells >= 1 else { panic("notified without sleeping on a doorbell; doorbells:", decimal: doorbells) }
        Console.begin()
        Console.put("cmk: notify ")
        Console.decimal(signaller)
        Console.put("->0 woke doorbells=")
        Console.decimal(doorbells)
        Console.put(" badge=")
        Console.hex(badge)
        Console.put(" after=")
        Console.decimal(CPU.counter - start)
        Console.put(" ticks ok")
        Console.end()
    }
}

/// The median of a few samples (sorts them in place; no heap).
func median(_ samples: inout InlineArray<9, UInt64>) -> UInt64 {
    for i in 1..<samples.count {
        var j = i
        while j > 0 && samples[j - 1] > samples[j] {
            samples.swapAt(j - 1, j)
            j -= 1
        }
    }
    return samples[samples.count / 2]
}

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

    static func run(clusterId me: Int, clusterCount: Int, control: UnsafeMutableRawPointer, experiment: ExperimentRequest?) {
        guard clusterCount > 1, let endpoint = KernelGlobals.channel else { return }
        let deadline = CPU.counter + bringUpTimeoutSeconds * CPU.counterFrequency
        var state = ServeState()
        // Rendezvous (releasing/acquiring, as the other boot counters), so a
        // round trip never includes a peer still busy with its own bring-up.
        let ready = ChannelControl.counter(.channelReady, control)
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
        let done = ChannelControl.counter(.channelDone, control)
        done.pointee.wrappingAdd(1, ordering: .releasing)
        ringEveryone(except: me, clusterCount: clusterCount)
        waitUntil(endpoint, &state, deadline: deadline, "clusters did not finish their pings") { _ in
            done.pointee.load(ordering: .acquiring) >= UInt64(clusterCount)
        }

        if case .channel(let roundTrips, let messages)? = experiment {
            ChannelExperiment.run(
                endpoint, me: me, clusterCount: clusterCount, control: control,
                roundTrips: roundTrips, messages: messages, state: &state)
        }

        let signaller = clusterCount - 1
        if me == 0 {
            sleepUntilNotified(endpoint, from: signaller, deadline: deadline, control: control, state: &state)
        } else if me == signaller {
            // Wait until cluster 0 committed to WFI, so the doorbell really has
            // a sleeper to wake (the demonstration, not a protocol rule).
            // Acquiring: pairs with cluster 0's releasing store.
            let sleeper = ChannelControl.counter(.bootSleeper, control)
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
        /// Streamed pings received since the last stream's final ping.
        var streamed: UInt64 = 0
        /// The awaited pong came back marked `ChannelExperiment.mismatch`.
        var mismatch = false
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
            case .message(.ping(var token, let sentAt)):
                if token & ChannelExperiment.stream != 0 {
                    // Experiment stream: no reply but to the last ping, whose
                    // low 32 bits count the streamed pings before it.
                    if token & ChannelExperiment.last == 0 {
                        state.streamed += 1
                        return
                    }
                    if state.streamed != token & 0xFFFF_FFFF { token |= ChannelExperiment.mismatch }
                    state.streamed = 0
                }
                // The reply goes on another ring; a full one waits for its
                // receiver, who serves its own rings meanwhile.
                while endpoint.send(.pong(token: token, pingSentAt: sentAt, repliedAt: CPU.counter), to: from, doorbell: doorbell) == .full {}
            case .message(.pong(let token, let pingSentAt, _)):
                if token == state.awaitedToken {
                    state.rtt = CPU.counter - pingSentAt
                } else if token == state.awaitedToken | ChannelExperiment.mismatch {
                    state.rtt = CPU.counter - pingSentAt
                    state.mismatch = true
                }
            case .message(.notify(let object, let badge)):
                if let error = KernelGlobals.kernel!.remoteSignal(slot: Word(object), badge: Word(badge)) {
                    _ = error
                    panic("remote signal refused for slot", object)
                }
                state.notified = true
            case .message(.shutdown):
                break
            case .message:
                // Guest traffic cannot come before the guest runs (after the
                // boot): counted with the drops, never acted on.
                state.dropped += 1
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
                ChannelControl.counter(.bootSleeper, control).pointee.store(1, ordering: .releasing)
                CPU.waitForInterrupt()
                endpoint.finishSleep()
            }
            doorbells += GICv3.drain()
            serve(endpoint, &state)
            if CPU.counter > deadline { panic("no notification from cluster", decimal: signaller) }
        }
        // The root thread polls its notification: the badge the remote sent.
        RootThread.syscall(KernelGlobals.kernel!, .nbRecv, exportedNotification)
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

/// The boot channel experiment (`cmk experiment channel --qemu`, docs/channel.md):
/// requested through the boot information. The clusters take turns (a
/// counter in the control page), so one pair runs at a time while every
/// other cluster serves its rings. For each peer the cluster on turn takes
/// `roundTrips` round trips (capped at the sample buffer), then streams
/// `messages` pings the peer does not answer but the last, and prints
///
///     cmk: channelexp I->J trips=N rtt_p50=A rtt_p99=B rtt_mean=C stream=M ticks=T errors=E dropped=D freq=F
///
/// (A, B, C, T in CNTVCT ticks, F = CNTFRQ: ticks per second; T from the
/// first streamed send to the pong of the last; E is 1 when the peer counted
/// a different number of streamed pings than were sent; D the messages this
/// cluster's rings dropped (`.dropped`, or traffic no experiment sends)
/// while the pair ran.)
enum ChannelExperiment {
    /// Ping token flags: a streamed ping (answered only if `last`), and, in
    /// the pong to the last one, the peer's count of streamed pings differed.
    static let stream: UInt64 = 1 << 63
    static let last: UInt64 = 1 << 62
    static let mismatch: UInt64 = 1 << 61
    /// Seconds allowed for the whole experiment (all pairs).
    static let timeoutSeconds: UInt64 = 300

    static func run(
        _ endpoint: ChannelEndpoint, me: Int, clusterCount: Int, control: UnsafeMutableRawPointer,
        roundTrips: UInt64, messages: UInt64, state: inout ChannelBringUp.ServeState
    ) {
        let deadline = CPU.counter + timeoutSeconds * CPU.counterFrequency
        let turn = ChannelControl.counter(.experimentTurn, control)
        // Acquiring: pairs with the previous cluster's releasing increment
        // (its pairs are over).
        ChannelBringUp.waitUntil(endpoint, &state, deadline: deadline, "channel experiment: turn never came") { _ in
            turn.pointee.load(ordering: .acquiring) >= UInt64(me)
        }
        for peer in 0..<clusterCount where peer != me {
            measure(endpoint, me: me, peer: peer, roundTrips: roundTrips, messages: messages, deadline: deadline, state: &state)
        }
        turn.pointee.wrappingAdd(1, ordering: .releasing)
        ChannelBringUp.ringEveryone(except: me, clusterCount: clusterCount)
        ChannelBringUp.waitUntil(endpoint, &state, deadline: deadline, "channel experiment: clusters did not finish") { _ in
            turn.pointee.load(ordering: .acquiring) >= UInt64(clusterCount)
        }
    }

    static func measure(
        _ endpoint: ChannelEndpoint, me: Int, peer: Int, roundTrips: UInt64, messages: UInt64, deadline: UInt64,
        state: inout ChannelBringUp.ServeState
    ) {
        let droppedBefore = state.dropped
        let samples = Scratch.channelSamples
        let trips = Int(min(roundTrips, UInt64(Scratch.channelSampleCapacity)))
        var sum: UInt64 = 0
        for k in 0..<trips {
            let token = UInt64(me) << 48 | UInt64(peer) << 32 | UInt64(k)
            state.awaitedToken = token
            state.rtt = nil
            ChannelBringUp.send(endpoint, .ping(token: token, sentAt: CPU.counter), to: peer, state: &state)
            ChannelBringUp.waitUntil(endpoint, &state, deadline: deadline, "channel experiment: no pong") { $0.rtt != nil }
            samples[k] = state.rtt!
            sum &+= state.rtt!
        }
        sort(samples, count: trips)

        // Stream: back to back; on a full ring, wake the peer if it sleeps and
        // serve our own rings until a slot frees.
        let streamed = messages - 1
        let start = CPU.counter
        var sent: UInt64 = 0
        while sent < streamed {
            let token = stream | (sent & 0xFFFF_FFFF)
            if endpoint.trySend(.ping(token: token, sentAt: 0), to: peer) == .full {
                _ = endpoint.ringDoorbellIfIdle(peer, doorbell: ChannelBringUp.doorbell)
                ChannelBringUp.serve(endpoint, &state)
                CPU.relax()
                if CPU.counter > deadline { panic("channel experiment: stream stalled") }
            } else {
                sent += 1
            }
        }
        let token = stream | last | (streamed & 0xFFFF_FFFF)
        state.awaitedToken = token
        state.rtt = nil
        state.mismatch = false
        ChannelBringUp.send(endpoint, .ping(token: token, sentAt: CPU.counter), to: peer, state: &state)
        ChannelBringUp.waitUntil(endpoint, &state, deadline: deadline, "channel experiment: stream not answered") {
            $0.rtt != nil
        }
        let ticks = CPU.counter - start

        Console.begin()
        Console.put("cmk: channelexp ")
        Console.decimal(me)
        Console.put("->")
        Console.decimal(peer)
        Console.put(" trips=")
        Console.decimal(trips)
        Console.put(" rtt_p50=")
        Console.decimal(percentile(50, count: trips))
        Console.put(" rtt_p99=")
        Console.decimal(percentile(99, count: trips))
        Console.put(" rtt_mean=")
        Console.decimal(sum / UInt64(trips))
        Console.put(" stream=")
        Console.decimal(messages)
        Console.put(" ticks=")
        Console.decimal(ticks)
        Console.put(" errors=")
        Console.decimal(state.mismatch ? 1 : 0)
        Console.put(" dropped=")
        Console.decimal(state.dropped &- droppedBefore)
        Console.put(" freq=")
        Console.decimal(CPU.counterFrequency)
        Console.end()
    }

    /// Nearest-rank percentile of the sorted samples (as the hosted backend).
    static func percentile(_ p: Int, count: Int) -> UInt64 {
        let rank = max((p * count + 99) / 100, 1)
        return Scratch.channelSamples[min(rank, count) - 1]
    }

    /// Insertion sort of the first `count` samples (at most 1024: fast enough).
    static func sort(_ samples: UnsafeMutablePointer<UInt64>, count: Int) {
        guard count > 1 else { return }
        for i in 1..<count {
            let value = samples[i]
            var j = i
            while j > 0 && samples[j - 1] > value {
                samples[j] = samples[j - 1]
                j -= 1
            }
            samples[j] = value
        }
    }
}

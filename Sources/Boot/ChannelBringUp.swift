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
/// 2. Afterwards, while the root task runs, the first core serves the rings
///    from the doorbell's interrupt (`UserChannel`): the root tasks' own
///    cross-cluster notifications (docs/kernel/notifications.md).
///
/// Only the first core of each cluster touches its ring ends.
enum ChannelBringUp {
    /// First-core set-up, before the cluster's other cores run.
    static func setUp(record: UnsafeMutablePointer<UInt64>) {
        let info = decodedBootInfo()
        for c in 0..<info.clusterCount {
            Scratch.doorbellTarget[c] = QemuVirt.mpidr(ofCore: info.clusters[c].firstCore)
        }
        let region = UnsafeMutableRawPointer(bitPattern: UInt(record[ClusterRecord.channelBase]))!
        guard info.clusterCount <= Scratch.channelReceiverCapacity else { panic("too many clusters for the channel's receiver state") }
        ChannelEndpoint.formatPrivateState(Scratch.channelReceivers, clusterCount: info.clusterCount)
        guard let layout = ChannelLayout(clusterCount: info.clusterCount, regionSize: Int(info.channel.size)),
            let endpoint = ChannelEndpoint(
                region: region, layout: layout, cluster: Int(record[ClusterRecord.clusterId]),
                privateState: Scratch.channelReceivers)
        else { panic("channel layout does not fit the channel region") }
        KernelGlobals.channel = endpoint
    }

    /// The doorbell: an SGI to the first core of `cluster`.
    static var doorbell: FunctionDoorbell {
        FunctionDoorbell { cluster in GICv3.ring(mpidr: Scratch.doorbellTarget[cluster]) }
    }

    static func run(
        clusterId me: Int, clusterCount: Int, control: UnsafeMutableRawPointer, experiment: ExperimentRequest?,
        flood: Bool
    ) {
        guard clusterCount > 1, let endpoint = KernelGlobals.channel else { return }
        let deadline = CPU.counter &+ bringUpTimeoutSeconds * CPU.counterFrequency
        let all = ClusterFailures.all(clusterCount)
        var state = ServeState()
        guard GICv3.enablePrivateInterrupt(WakeTimer.interrupt, priority: 0x80) else {
            panic("no GICv3 redistributor for the wake timer")
        }
        // Rendezvous (releasing/acquiring, as the other boot counters), so a
        // round trip never includes a peer still busy with its own bring-up.
        // A cluster that reported itself up but does not come within the
        // peer timeout (or any cluster within the bring-up deadline) failed.
        let ready = ChannelControl.counter(.channelReady, control)
        ready.pointee.bitwiseOr(ClusterFailures.bit(me), ordering: .releasing)
        ringEveryone(except: me, clusterCount: clusterCount)
        rendezvous(endpoint, &state, ready, all: all, control: control, deadline: deadline,
                   "no answer at the channel rendezvous")

        if flood { Flood.run(endpoint, me: me, clusterCount: clusterCount, state: &state) }

        for peer in 0..<clusterCount where peer != me && !ClusterFailures.isFailed(peer) {
            var samples = InlineArray<9, UInt64>(repeating: 0)
            var answered = true
            for k in 0..<samples.count {
                let token = UInt64(me) << 48 | UInt64(peer) << 32 | UInt64(k)
                state.awaitedToken = token
                state.rtt = nil
                let peerDeadline = min(deadline, CPU.counter &+ ClusterFailures.peerTimeoutSeconds * CPU.counterFrequency)
                guard send(endpoint, .ping(token: token, sentAt: CPU.counter), to: peer, state: &state, deadline: peerDeadline),
                    waitFor(endpoint, &state, deadline: peerDeadline, { $0.rtt != nil || ClusterFailures.isFailed(peer) }),
                    let rtt = state.rtt
                else {
                    ClusterFailures.declare(peer, "no answer to a ping")
                    answered = false
                    break
                }
                samples[k] = rtt
            }
            guard answered else { continue }
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
        done.pointee.bitwiseOr(ClusterFailures.bit(me), ordering: .releasing)
        ringEveryone(except: me, clusterCount: clusterCount)
        if !waitFor(endpoint, &state, deadline: deadline, { _ in
            done.pointee.load(ordering: .acquiring) | KernelGlobals.failedClusters & all == all
        }) {
            declareMissing(done.pointee.load(ordering: .acquiring), all: all, "did not finish its boot pings")
        }

        if case .channel(let roundTrips, let messages)? = experiment {
            ChannelExperiment.run(
                endpoint, me: me, clusterCount: clusterCount, control: control,
                roundTrips: roundTrips, messages: messages, state: &state)
        }

        report(endpoint, me: me, clusterCount: clusterCount, state: state)
    }

    /// Wait until every cluster set its bit in `mask` or is known failed.
    /// Past the peer timeout, a cluster that printed its `up` line but is
    /// still missing failed; past `deadline`, every missing cluster did.
    static func rendezvous(
        _ endpoint: ChannelEndpoint, _ state: inout ServeState, _ mask: UnsafeMutablePointer<Atomic<UInt64>>,
        all: UInt64, control: UnsafeMutableRawPointer, deadline: UInt64, _ reason: StaticString
    ) {
        let up = ChannelControl.counter(.clustersUp, control)
        let peerDeadline = CPU.counter &+ ClusterFailures.peerTimeoutSeconds * CPU.counterFrequency
        // Acquiring: pairs with each cluster's releasing bitwise-or.
        let complete = { (_: ServeState) -> Bool in
            mask.pointee.load(ordering: .acquiring) | KernelGlobals.failedClusters & all == all
        }
        if waitFor(endpoint, &state, deadline: min(deadline, peerDeadline), complete) { return }
        // Clusters that are up yet absent: failed now.
        declareMissing(mask.pointee.load(ordering: .acquiring) | ~up.pointee.load(ordering: .acquiring), all: all, reason)
        if waitFor(endpoint, &state, deadline: deadline, complete) { return }
        declareMissing(mask.pointee.load(ordering: .acquiring), all: all, "did not come up")
    }

    /// Declare failed every cluster of `all` whose bit is clear in `present`.
    static func declareMissing(_ present: UInt64, all: UInt64, _ reason: StaticString) {
        var missing = all & ~present & ~KernelGlobals.failedClusters
        while missing != 0 {
            ClusterFailures.declare(missing.trailingZeroBitCount, reason)
            missing &= missing &- 1
        }
    }

    /// The channel's error counts, when there are any (stable line):
    /// `cmk: channel I errors dropped=D lost=L refused=R unanswered=U`:
    /// malformed lines dropped and messages lost on our incoming rings,
    /// valid requests refused (a bad notification slot, traffic not
    /// expected at boot), pongs not sent because the asker's ring stayed full.
    static func report(_ endpoint: ChannelEndpoint, me: Int, clusterCount: Int, state: ServeState) {
        var dropped: UInt64 = 0
        var lost: UInt64 = 0
        for peer in 0..<clusterCount where peer != me {
            let stats = endpoint.receiver(from: peer).stats
            dropped &+= stats.dropped.total
            lost &+= stats.lost
        }
        guard dropped | lost | state.refused | state.unanswered != 0 else { return }
        Console.begin()
        Console.put("cmk: channel ")
        Console.decimal(me)
        Console.put(" errors dropped=")
        Console.decimal(dropped)
        Console.put(" lost=")
        Console.decimal(lost)
        Console.put(" refused=")
        Console.decimal(state.refused)
        Console.put(" unanswered=")
        Console.decimal(state.unanswered)
        Console.end()
    }

    struct ServeState {
        var awaitedToken: UInt64 = ~0
        var rtt: UInt64? = nil
        /// Valid messages refused: a notification naming a slot that holds
        /// no notification, traffic that has no meaning at boot.
        var refused: UInt64 = 0
        /// Pings whose pong was not sent: the asker's ring stayed full.
        var unanswered: UInt64 = 0
        /// Lines dropped by the channel and messages no boot step sends
        /// (guest traffic): what the channel experiment reports as dropped.
        var dropped: UInt64 = 0
        /// Peers whose ring back to them was full past the bound (bit c):
        /// further pongs to them are tried once, not waited for.
        var congested: UInt64 = 0
        /// Streamed pings received since the last stream's final ping.
        var streamed: UInt64 = 0
        /// The awaited pong came back marked `ChannelExperiment.mismatch`.
        var mismatch = false
    }

    /// How long a pong waits for room in a full ring (1/100 s): a peer that
    /// floods us with pings and never drains its ring must not hold us.
    static let replyWaitDivisor: UInt64 = 100

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
        if !waitFor(endpoint, &state, deadline: deadline, condition) { panic(failure) }
    }

    /// `waitUntil` that reports the deadline instead of panicking: false if
    /// `condition` still fails at `deadline`.
    static func waitFor(
        _ endpoint: ChannelEndpoint, _ state: inout ServeState, deadline: UInt64, _ condition: (ServeState) -> Bool
    ) -> Bool {
        while !condition(state) {
            if serve(endpoint, &state) == 0, !condition(state) {
                if endpoint.prepareToSleep() {
                    if !condition(state) { sleep(until: deadline) }
                    endpoint.finishSleep()
                }
                GICv3.drain()
            }
            if CPU.counter > deadline { return condition(state) }
        }
        return true
    }

    /// WFI, but no later than `deadline`: a peer that died rings no doorbell,
    /// so the EL2 timer bounds the sleep (disarmed before the interrupts are
    /// drained, so it leaves nothing pending).
    static func sleep(until deadline: UInt64) {
        WakeTimer.arm(at: deadline &+ 1)
        CPU.waitForInterrupt()
        WakeTimer.disarm()
    }

    /// Wake every other cluster's first core: a shared counter changed.
    /// Unconditional (counters have no wake flag); an unneeded SGI costs a
    /// spurious wake-up only.
    static func ringEveryone(except me: Int, clusterCount: Int) {
        for c in 0..<clusterCount where c != me && !ClusterFailures.isFailed(c) { doorbell.ring(cluster: c) }
    }

    /// Send, waiting (and serving our own rings) while the ring is full, at
    /// most until `deadline`. False if the ring stayed full.
    static func send(
        _ endpoint: ChannelEndpoint, _ message: InterKernelMessage, to peer: Int, state: inout ServeState,
        deadline: UInt64
    ) -> Bool {
        while endpoint.send(message, to: peer, doorbell: doorbell) == .full {
            serve(endpoint, &state)
            CPU.relax()
            if CPU.counter > deadline { return false }
        }
        return true
    }

    /// Answer a ping. A full ring gets a bounded wait (the asker may be busy
    /// for a moment); past it the pong is dropped and counted, and the peer
    /// is marked congested: its next pongs are tried once until one fits.
    static func reply(_ endpoint: ChannelEndpoint, _ message: InterKernelMessage, to peer: Int, state: inout ServeState) {
        let bit = ClusterFailures.bit(peer)
        if endpoint.send(message, to: peer, doorbell: doorbell) == .sent {
            state.congested &= ~bit
            return
        }
        if state.congested & bit == 0 {
            let until = CPU.counter &+ CPU.counterFrequency / replyWaitDivisor
            while CPU.counter <= until {
                CPU.relax()
                if endpoint.send(message, to: peer, doorbell: doorbell) == .sent { return }
            }
        }
        state.congested |= bit
        state.unanswered &+= 1
    }

    /// Poll every incoming ring once and act on what arrived. Returns how
    /// many rings had something. Nothing a peer writes can make this trap,
    /// hang or panic: times it echoes are subtracted with wrapping, a
    /// notification for a slot that is not ours to signal is refused and
    /// counted, a pong to a ring that stays full is dropped and counted.
    @discardableResult
    static func serve(_ endpoint: ChannelEndpoint, _ state: inout ServeState) -> Int {
        endpoint.pollAll { from, result in
            switch result {
            case .message(.ping(var token, let sentAt)):
                if token & ChannelExperiment.stream != 0 {
                    // Experiment stream: no reply but to the last ping, whose
                    // low 32 bits count the streamed pings before it.
                    if token & ChannelExperiment.last == 0 {
                        state.streamed &+= 1
                        return
                    }
                    if state.streamed != token & 0xFFFF_FFFF { token |= ChannelExperiment.mismatch }
                    state.streamed = 0
                }
                reply(endpoint, .pong(token: token, pingSentAt: sentAt, repliedAt: CPU.counter), to: from, state: &state)
            case .message(.pong(let token, let pingSentAt, _)):
                // Wrapping: `pingSentAt` is only echoed by the peer.
                if token == state.awaitedToken {
                    state.rtt = CPU.counter &- pingSentAt
                } else if token == state.awaitedToken | ChannelExperiment.mismatch {
                    state.rtt = CPU.counter &- pingSentAt
                    state.mismatch = true
                }
            case .message(.notify(let export)):
                // A remote cluster names an export index; an empty entry is
                // refused and counted, never fatal. The badge is ours.
                // (A root task that started early signals a cluster still
                // here: refused until that cluster's root task exports.)
                if KernelGlobals.kernel!.remoteSignal(export: Word(export), from: from) != nil {
                    state.refused &+= 1
                }
            case .message(.clusterFailed(let reason, _)):
                ClusterFailures.declare(from, reason.name)
            case .message(.shutdown):
                break
            case .message:
                // Guest traffic cannot come before the guest runs (after the
                // boot): counted, never acted on.
                state.refused &+= 1
                state.dropped &+= 1
            case .dropped:
                // Also counted by the receiver, per reason (`report`).
                state.dropped &+= 1
            case .empty:
                break
            }
        }
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
            guard ChannelBringUp.send(endpoint, .ping(token: token, sentAt: CPU.counter), to: peer, state: &state, deadline: deadline)
            else { panic("channel experiment: ring stayed full") }
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
        guard ChannelBringUp.send(endpoint, .ping(token: token, sentAt: CPU.counter), to: peer, state: &state, deadline: deadline)
        else { panic("channel experiment: ring stayed full") }
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

/// `cmk boot --inject flood@I` (docs/boot.md): cluster I, once every cluster
/// is at the channel rendezvous, writes garbage into every ring it sends on
/// for `linesPerRing` lines per ring, as a broken or hostile kernel could:
/// random bytes over random slots (torn headers, other senders, wrong
/// sequences), lines with its own intact header and random kind, length and
/// payload, notifications naming slots the peer does not export, and pings
/// it never drains the answers of. It serves nothing meanwhile. Then it
/// behaves; every receiver must have dropped and counted the garbage
/// (`cmk: channel J errors ...`), kept its own traffic going, and the boot
/// completes. It writes only slots: its own cursor line stays true, as a
/// kernel that breaks its own cursor only loses its own traffic.
enum Flood {
    static let linesPerRing = 3000

    static func run(_ endpoint: ChannelEndpoint, me: Int, clusterCount: Int, state: inout ChannelBringUp.ServeState) {
        var random = CPU.counter | 1
        func next() -> UInt64 {
            // xorshift64: no heap, no state beyond one word.
            random ^= random << 13
            random ^= random >> 7
            random ^= random << 17
            return random
        }
        let layout = endpoint.layout
        var written: UInt64 = 0
        for _ in 0..<linesPerRing {
            // Let the receivers run between rounds (single-threaded TCG
            // switches vCPUs on YIELD), so they see the garbage line by line.
            CPU.relax()
            for peer in 0..<clusterCount where peer != me && !ClusterFailures.isFailed(peer) {
                let sender = endpoint.sender(to: peer)
                switch next() % 8 {
                case 0, 1, 2, 3:
                    // Random bytes over a random slot, header last.
                    sender.unsafeScribble(
                        slot: Int(truncatingIfNeeded: next() % UInt64(layout.slotsPerRing)), header: next() | 1,
                        payload: Payload(next(), next(), next(), next(), next(), next(), next()))
                case 4:
                    // Our own header, a random kind and length: consumed and dropped.
                    let word = next()
                    let header = sender.nextHeader(
                        kind: UInt8(truncatingIfNeeded: word), length: UInt8(truncatingIfNeeded: word >> 8) & 15)
                    _ = sender.unsafeSendScribbled(header: header, payload: Payload(next(), next(), next(), next()))
                case 5:
                    // A valid message naming an export the peer does not have
                    // (no root task runs yet, so nothing is exported).
                    _ = endpoint.trySend(.notify(export: 0), to: peer)
                case 6:
                    // A ping whose pong we do not drain while flooding.
                    _ = endpoint.trySend(.ping(token: next() & ~ChannelExperiment.stream, sentAt: next()), to: peer)
                default:
                    // A line claiming to be from another cluster, or a sequence from another lap.
                    let word = next()
                    let header = MessageHeader(
                        kind: MessageKind.ping.rawValue, sender: UInt8(truncatingIfNeeded: word),
                        length: 2, sequence: UInt32(truncatingIfNeeded: word >> 32))
                    _ = sender.unsafeSendScribbled(header: header, payload: Payload(next(), next()))
                }
                written &+= 1
            }
            if written % 64 == 0 { ChannelBringUp.ringEveryone(except: me, clusterCount: clusterCount) }
        }
        ChannelBringUp.ringEveryone(except: me, clusterCount: clusterCount)

        // A ping storm: two rings' worth of valid pings to every peer, whose
        // pongs we do not drain meanwhile. Each peer's ring back to us fills;
        // it must give up on the rest (bounded, counted `unanswered`), not
        // wait for us. At most 1/10 s per peer for room on our side.
        var pings: UInt64 = 0
        for peer in 0..<clusterCount where peer != me && !ClusterFailures.isFailed(peer) {
            let until = CPU.counter &+ CPU.counterFrequency / 10
            var sent = 0
            while sent < 2 * layout.slotsPerRing && CPU.counter <= until {
                let token = UInt64(me) << 48 | 0xFFFF << 32 | UInt64(sent)
                if endpoint.trySend(.ping(token: token, sentAt: CPU.counter), to: peer) == .sent {
                    sent += 1
                } else {
                    _ = endpoint.ringDoorbellIfIdle(peer, doorbell: ChannelBringUp.doorbell)
                    CPU.relax()
                }
            }
            pings &+= UInt64(sent)
            ChannelBringUp.doorbell.ring(cluster: peer)
        }
        // Behave again: drain what came back (stale pongs are ignored), until
        // the rings stay empty for a while, at most 1 s.
        let until = CPU.counter &+ CPU.counterFrequency
        var quiet = 0
        while quiet < 2000 && CPU.counter <= until {
            quiet = ChannelBringUp.serve(endpoint, &state) == 0 ? quiet + 1 : 0
            CPU.relax()
        }

        Console.begin()
        Console.put("cmk: channel ")
        Console.decimal(me)
        Console.put(" flooded lines=")
        Console.decimal(written)
        Console.put(" pings=")
        Console.decimal(pings)
        Console.end()
    }
}

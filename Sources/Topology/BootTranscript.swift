import Cluster

/// What `cmk boot` learns from the serial console: the stable lines of
/// docs/boot.md, parsed, and the verdict against the topology.
public struct BootTranscript {
    public struct ClusterUp: Equatable {
        public var cluster: Int
        public var cores: [Int]
        public var dataLow: UInt64
        public var dataHigh: UInt64
    }
    public struct PrivateCheck: Equatable {
        public var cluster: Int
        public var va: UInt64
        public var pa: UInt64
        public var value: Int
    }

    public var ups: [ClusterUp] = []
    public var privates: [PrivateCheck] = []
    /// Median round trips, in ticks, by (from, to) cluster.
    public var channelRTT: [Pair: UInt64] = [:]
    /// The root tasks' cross-cluster notifications, by (from, to) cluster:
    /// the badge the receiver got (`cmk: notify K->J badge=0xB ... ok`).
    public var notifyBadges: [Pair: UInt64] = [:]
    public var bootOK: (clusters: Int, cores: Int)?
    /// Clusters whose root task printed `cmk: cluster I user ipc ok`.
    public var userIPC: Set<Int> = []
    /// Clusters whose root task printed `cmk: cluster I user preemption ok
    /// ticks=T` (two equal-priority spinners both ran: time slices work).
    public var userPreemption: Set<Int> = []
    /// `cmk: cluster I lock=KIND stress cores=N increments=M ok`: the root
    /// task's lock check (a thread per core, every call counted by the
    /// kernel under the big lock, none lost): cluster -> (cores, increments).
    public var lockCheck: [Int: (cores: Int, increments: UInt64)] = [:]
    /// Clusters whose root task printed `cmk: cluster I user irq ok ...`
    /// (an interrupt through its IRQ control capability).
    public var userIRQ: Set<Int> = []
    /// Clusters whose root task's fuzzer finished:
    /// `cmk: cluster I user fuzz calls=N errors=E faults=F seed=S ok`.
    public var userFuzz: [Int: (calls: UInt64, errors: UInt64, faults: UInt64)] = [:]
    /// The boot channel experiment's lines (`cmk experiment channel --qemu`).
    public var channelExperiments: [ChannelExperimentLine] = []

    public struct Pair: Hashable {
        public var from: Int
        public var to: Int
        public init(_ from: Int, _ to: Int) {
            self.from = from
            self.to = to
        }
    }
    /// Entries of a kernel's export table (the kernel's `exportLimit`):
    /// only peers below it can signal cluster 0.
    static let exportLimit = 16
    /// The first `cmk: panic` or `cmk: exception` line.
    public var failure: String?

    public init() {}

    public mutating func consume(_ rawLine: String) {
        let parsed = ConsoleLine(rawLine)
        let line = parsed.text, words = parsed.words
        guard line.hasPrefix("cmk: ") else { return }
        if failure == nil, line.hasPrefix("cmk: panic") || line.hasPrefix("cmk: exception") {
            failure = line
            return
        }
        if words.count >= 4, words[1] == "cluster", let id = Int(words[2]) {
            if words.count == 6, words[3] == "user", words[4] == "ipc", words[5] == "ok" { userIPC.insert(id) }
            if words.count == 7, words[3] == "user", words[4] == "preemption", words[5] == "ok", parsed.int("ticks") != nil {
                userPreemption.insert(id)
            }
            if words.count == 8, words[3].hasPrefix("lock="), words[4] == "stress", words[7] == "ok",
                let cores = parsed.int("cores"), let increments = parsed.decimal("increments")
            {
                lockCheck[id] = (cores, increments)
            }
            if words.count == 8, words[3] == "user", words[4] == "irq", words[5] == "ok" { userIRQ.insert(id) }
            if words.count == 10, words[3] == "user", words[4] == "fuzz", words[9] == "ok",
                let calls = parsed.decimal("calls"), let errors = parsed.decimal("errors"), let faults = parsed.decimal("faults")
            {
                userFuzz[id] = (calls, errors, faults)
            }
            if words[3] == "up", let cores = parsed.field("cores"), let data = parsed.field("data") {
                let range = data.split(separator: "-").map(String.init)
                if range.count == 2, let lo = ConsoleLine.hex(range[0]), let hi = ConsoleLine.hex(range[1]) {
                    ups.append(ClusterUp(
                        cluster: id, cores: cores.split(separator: ",").compactMap { Int($0) }, dataLow: lo, dataHigh: hi))
                }
            } else if words[3] == "private", words.last == "ok", let va = parsed.hex("va"), let pa = parsed.hex("pa"),
                let value = parsed.int("value")
            {
                privates.append(PrivateCheck(cluster: id, va: va, pa: pa, value: value))
            }
        } else if words.count == 5, words[1] == "channel", words[4] == "ticks", let arrow = ConsoleLine.arrow(words[2]),
            let rtt = parsed.decimal("rtt")
        {
            channelRTT[Pair(arrow.from, arrow.to)] = rtt
        } else if words.count >= 3, words[1] == "channelexp" {
            if let experiment = ChannelExperimentLine(line) { channelExperiments.append(experiment) }
        } else if words.count >= 4, words[1] == "notify", words.last == "ok", let arrow = ConsoleLine.arrow(words[2]),
            let badge = parsed.hex("badge")
        {
            notifyBadges[Pair(arrow.from, arrow.to)] = badge
        } else if line.hasPrefix("cmk: boot ok"), let c = parsed.int("clusters"), let n = parsed.int("cores") {
            bootOK = (c, n)
        }
    }

    /// Whether the transcript proves the topology booted: every cluster up
    /// with exactly its cores, its private check passed with its own id and a
    /// physical address inside its own partition, distinct clusters'
    /// globals at distinct addresses, and `boot ok` with the right counts.
    /// Returns the first thing missing or wrong, or nil if all is well.
    public func problem(against topology: Topology) -> String? {
        if let failure { return failure }
        let layout = Layout(topology)
        for (i, spec) in topology.clusters.enumerated() {
            guard let up = ups.first(where: { $0.cluster == i }) else { return "no `cmk: cluster \(i) up` line" }
            if up.cores != spec.cores.sorted() {
                return "cluster \(i) reported cores \(up.cores) but the topology gives \(spec.cores.sorted())"
            }
            if !layout.partitions[i].contains(Region(base: up.dataLow, size: up.dataHigh &- up.dataLow)) {
                return "cluster \(i) data range is outside its partition"
            }
            guard let check = privates.first(where: { $0.cluster == i }) else {
                return "no `cmk: cluster \(i) private ... ok` line"
            }
            if !userIPC.contains(i) { return "no `cmk: cluster \(i) user ipc ok` line (its root task's ping-pong)" }
            if !userPreemption.contains(i) {
                return "no `cmk: cluster \(i) user preemption ok` line (its root task's time-slice test)"
            }
            guard let lock = lockCheck[i] else {
                return "no `cmk: cluster \(i) lock=... stress ... ok` line (its root task's lock check)"
            }
            if lock.cores != spec.cores.count || lock.increments < UInt64(spec.cores.count) * 1000 {
                return "cluster \(i) checked its lock on \(lock.cores) cores with \(lock.increments) calls; the topology gives \(spec.cores.count) cores (1,000 calls each at least)"
            }
            if !userIRQ.contains(i) { return "no `cmk: cluster \(i) user irq ok` line (its root task's interrupt test)" }
            if userFuzz[i] == nil { return "no `cmk: cluster \(i) user fuzz ... ok` line (its root task's fuzzer)" }
            if check.value != i { return "cluster \(i) read back \(check.value) from its private global" }
            if !layout.partitions[i].contains(Region(base: check.pa, size: 8)) {
                return "cluster \(i) private global at PA 0x\(String(check.pa, radix: 16)) is outside its partition"
            }
        }
        if Set(privates.map(\.pa)).count != privates.count { return "two clusters report the same private global address" }
        let n = topology.clusters.count
        for i in 0..<n {
            for j in 0..<n where i != j && channelRTT[Pair(i, j)] == nil {
                return "no `cmk: channel \(i)->\(j) rtt=... ticks` line"
            }
        }
        // Every peer K that has an export index at cluster 0 (K < 16)
        // signalled cluster 0 from its root task, with the badge cluster 0
        // exported to it (1 << K), and had cluster 0's answer, with the badge
        // it exported to cluster 0 (1 << 0).
        for k in 1..<max(min(n, Self.exportLimit), 1) {
            guard let badge = notifyBadges[Pair(k, 0)] else {
                return "no `cmk: notify \(k)->0 badge=... ok` line (cluster \(k)'s root task signalling cluster 0)"
            }
            if badge != 1 << UInt64(k) {
                return "notify \(k)->0 delivered badge 0x\(String(badge, radix: 16)), not the exported 0x\(String(1 << UInt64(k), radix: 16))"
            }
            guard let answer = notifyBadges[Pair(0, k)] else {
                return "no `cmk: notify 0->\(k) badge=... ok` line (cluster 0's answer to cluster \(k))"
            }
            if answer != 1 { return "notify 0->\(k) delivered badge 0x\(String(answer, radix: 16)), not the exported 0x1" }
        }
        guard let ok = bootOK else { return "no `cmk: boot ok` line" }
        if ok.clusters != topology.clusters.count || ok.cores != topology.coreCount {
            return "boot ok reports \(ok.clusters) clusters and \(ok.cores) cores, the topology has \(topology.clusters.count) and \(topology.coreCount)"
        }
        return nil
    }
}

/// One `cmk: channelexp I->J trips=N rtt_p50=A rtt_p99=B rtt_mean=C stream=M
/// ticks=T errors=E dropped=D freq=F` line of the boot channel experiment
/// (Boot/ChannelBringUp.swift): times in generic-timer ticks, `freq` ticks
/// per second; `errors` the peer's count of streamed pings differed,
/// `dropped` messages the measuring cluster's rings dropped meanwhile.
public struct ChannelExperimentLine: Equatable, Sendable {
    public var from: Int
    public var to: Int
    public var trips: Int
    public var rttP50: UInt64
    public var rttP99: UInt64
    public var rttMean: UInt64
    public var messages: UInt64
    public var streamTicks: UInt64
    public var errors: UInt64
    public var dropped: UInt64
    public var frequency: UInt64

    public init(from: Int, to: Int, trips: Int, rttP50: UInt64, rttP99: UInt64, rttMean: UInt64, messages: UInt64,
                streamTicks: UInt64, errors: UInt64, dropped: UInt64, frequency: UInt64) {
        self.from = from
        self.to = to
        self.trips = trips
        self.rttP50 = rttP50
        self.rttP99 = rttP99
        self.rttMean = rttMean
        self.messages = messages
        self.streamTicks = streamTicks
        self.errors = errors
        self.dropped = dropped
        self.frequency = frequency
    }

    /// The fields, in the order the kernel prints them.
    static let keys = ["trips", "rtt_p50", "rtt_p99", "rtt_mean", "stream", "ticks", "errors", "dropped", "freq"]

    /// Parse a console line; nil unless it is a complete, well-formed one.
    public init?(_ rawLine: String) {
        let line = ConsoleLine(rawLine)
        let words = line.words
        guard words.count == 3 + Self.keys.count, words[0] == "cmk:", words[1] == "channelexp",
            let arrow = ConsoleLine.arrow(words[2]), arrow.from != arrow.to,
            zip(words.dropFirst(3), Self.keys).allSatisfy({ $0.hasPrefix($1 + "=") })
        else { return nil }
        guard let trips = line.decimal("trips"), trips >= 1, let p50 = line.decimal("rtt_p50"),
            let p99 = line.decimal("rtt_p99"), let mean = line.decimal("rtt_mean"),
            let messages = line.decimal("stream"), messages >= 1, let ticks = line.decimal("ticks"),
            let errors = line.decimal("errors"), let dropped = line.decimal("dropped"),
            let freq = line.decimal("freq"), freq > 0
        else { return nil }
        self.init(from: arrow.from, to: arrow.to, trips: Int(trips), rttP50: p50, rttP99: p99, rttMean: mean,
                  messages: messages, streamTicks: ticks, errors: errors, dropped: dropped, frequency: freq)
    }

    /// Ticks to nanoseconds.
    public func nanoseconds(_ ticks: UInt64) -> Double { Double(ticks) * 1e9 / Double(frequency) }
    /// Streamed messages per second (first send to the last one's pong).
    public var messagesPerSecond: Double {
        streamTicks == 0 ? 0 : Double(messages) * Double(frequency) / Double(streamTicks)
    }
}

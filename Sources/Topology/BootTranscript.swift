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
    /// The cross-cluster notification line: (from, to, doorbells).
    public var notify: (from: Int, to: Int, doorbells: Int)?
    public var bootOK: (clusters: Int, cores: Int)?
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
    /// The first `cmk: panic` or `cmk: exception` line.
    public var failure: String?

    public init() {}

    public mutating func consume(_ rawLine: String) {
        let line = rawLine.trimmed("\r ")
        guard line.hasPrefix("cmk: ") else { return }
        if failure == nil, line.hasPrefix("cmk: panic") || line.hasPrefix("cmk: exception") {
            failure = line
            return
        }
        let words = line.split(separator: " ").map(String.init)
        func field(_ key: String) -> String? {
            words.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        func hex(_ s: String?) -> UInt64? {
            guard let s, s.hasPrefix("0x") else { return nil }
            return UInt64(s.dropFirst(2), radix: 16)
        }
        if words.count >= 4, words[1] == "cluster", let id = Int(words[2]) {
            if words[3] == "up", let cores = field("cores"), let data = field("data") {
                let range = data.split(separator: "-").map(String.init)
                if range.count == 2, let lo = hex(range[0]), let hi = hex(range[1]) {
                    ups.append(ClusterUp(
                        cluster: id, cores: cores.split(separator: ",").compactMap { Int($0) }, dataLow: lo, dataHigh: hi))
                }
            } else if words[3] == "private", words.last == "ok", let va = hex(field("va")), let pa = hex(field("pa")),
                let value = field("value").flatMap({ Int($0) })
            {
                privates.append(PrivateCheck(cluster: id, va: va, pa: pa, value: value))
            }
        } else if words.count == 5, words[1] == "channel", words[4] == "ticks",
            let arrow = words[2].split(separator: "-", maxSplits: 1).map(String.init) as [String]?, arrow.count == 2,
            let from = Int(arrow[0]), let to = Int(arrow[1].dropFirst()), let rtt = field("rtt").flatMap({ UInt64($0) })
        {
            channelRTT[Pair(from, to)] = rtt
        } else if words.count >= 3, words[1] == "channelexp" {
            if let parsed = ChannelExperimentLine(line) { channelExperiments.append(parsed) }
        } else if words.count >= 4, words[1] == "notify", words.last == "ok",
            let arrow = words[2].split(separator: "-", maxSplits: 1).map(String.init) as [String]?, arrow.count == 2,
            let from = Int(arrow[0]), let to = Int(arrow[1].dropFirst()), let doorbells = field("doorbells").flatMap({ Int($0) })
        {
            notify = (from, to, doorbells)
        } else if line.hasPrefix("cmk: boot ok"), let c = field("clusters").flatMap({ Int($0) }),
            let n = field("cores").flatMap({ Int($0) })
        {
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
        if n > 1 {
            guard let notify, notify.from == n - 1, notify.to == 0, notify.doorbells >= 1 else {
                return "no `cmk: notify \(n - 1)->0 woke doorbells=...` line"
            }
        }
        guard let ok = bootOK else { return "no `cmk: boot ok` line" }
        if ok.clusters != topology.clusters.count || ok.cores != topology.coreCount {
            return "boot ok reports \(ok.clusters) clusters and \(ok.cores) cores, the topology has \(topology.clusters.count) and \(topology.coreCount)"
        }
        return nil
    }
}

/// One `cmk: channelexp I->J trips=N rtt_p50=A rtt_p99=B rtt_mean=C stream=M
/// ticks=T errors=E freq=F` line of the boot channel experiment: times in
/// generic-timer ticks, `freq` ticks per second.
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
    public var frequency: UInt64

    public init(from: Int, to: Int, trips: Int, rttP50: UInt64, rttP99: UInt64, rttMean: UInt64, messages: UInt64,
                streamTicks: UInt64, errors: UInt64, frequency: UInt64) {
        self.from = from
        self.to = to
        self.trips = trips
        self.rttP50 = rttP50
        self.rttP99 = rttP99
        self.rttMean = rttMean
        self.messages = messages
        self.streamTicks = streamTicks
        self.errors = errors
        self.frequency = frequency
    }

    /// Parse a console line; nil unless it is a complete, well-formed one.
    public init?(_ rawLine: String) {
        let words = rawLine.trimmed("\r ").split(separator: " ").map(String.init)
        guard words.count == 11, words[0] == "cmk:", words[1] == "channelexp" else { return nil }
        let arrow = words[2].split(separator: "-", maxSplits: 1).map(String.init)
        guard arrow.count == 2, arrow[1].hasPrefix(">"), let from = Int(arrow[0]), let to = Int(arrow[1].dropFirst()),
            from != to
        else { return nil }
        func field(_ index: Int, _ key: String) -> UInt64? {
            let word = words[index]
            guard word.hasPrefix(key + "=") else { return nil }
            return UInt64(word.dropFirst(key.count + 1))
        }
        guard let trips = field(3, "trips"), trips >= 1, let p50 = field(4, "rtt_p50"), let p99 = field(5, "rtt_p99"),
            let mean = field(6, "rtt_mean"), let messages = field(7, "stream"), messages >= 1,
            let ticks = field(8, "ticks"), let errors = field(9, "errors"), let freq = field(10, "freq"), freq > 0
        else { return nil }
        self.init(from: from, to: to, trips: Int(trips), rttP50: p50, rttP99: p99, rttMean: mean, messages: messages,
                  streamTicks: ticks, errors: errors, frequency: freq)
    }

    /// Ticks to nanoseconds.
    public func nanoseconds(_ ticks: UInt64) -> Double { Double(ticks) * 1e9 / Double(frequency) }
    /// Streamed messages per second (first send to the last one's pong).
    public var messagesPerSecond: Double {
        streamTicks == 0 ? 0 : Double(messages) * Double(frequency) / Double(streamTicks)
    }
}

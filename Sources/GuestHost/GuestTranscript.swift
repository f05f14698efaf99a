import Topology

/// What `cmk guest` learns from the console: the kernel's stable guest lines
/// (docs/guest.md), the guest's own markers and failures, and `cmk boot`'s
/// lines (through `BootTranscript`). Fed one line at a time, so a test can
/// replay any ending; `verdict` turns it and QEMU's end into an exit status.
public struct GuestTranscript {
    /// `cmk: guest stats [cluster=I [vcpu=V]] kind=NAME exits=N us=T` (one
    /// per kind and vCPU; cluster 0 when the line names none, and the
    /// cluster's only vCPU, numbered as the cluster, when it names no vCPU).
    public struct ExitStat: Equatable, Sendable {
        public var cluster: Int
        public var vcpu: Int
        public var kind: String
        public var exits: UInt64
        public var microseconds: UInt64
        public init(cluster: Int = 0, vcpu: Int? = nil, kind: String, exits: UInt64, microseconds: UInt64) {
            self.cluster = cluster
            self.vcpu = vcpu ?? cluster
            self.kind = kind
            self.exits = exits
            self.microseconds = microseconds
        }
    }

    /// `cmk: guest lock cluster=I cores=K acquisitions=N contended=N
    /// wait_p50_ns=N wait_p90_ns=N wait_p99_ns=N wait_max_ns=N hold_p50_ns=N`:
    /// the big-lock acquisitions of one cluster made by VM exits and the
    /// guest's other kernel entries, all its cores merged (docs/guest.md).
    public struct LockStat: Equatable, Sendable {
        public var cluster: Int
        public var cores: Int
        public var acquisitions: UInt64
        public var contended: UInt64
        public var waitP50: UInt64
        public var waitP90: UInt64
        public var waitP99: UInt64
        public var waitMax: UInt64
        public var holdP50: UInt64
        public init(cluster: Int, cores: Int, acquisitions: UInt64, contended: UInt64, waitP50: UInt64, waitP90: UInt64,
                    waitP99: UInt64, waitMax: UInt64, holdP50: UInt64) {
            self.cluster = cluster
            self.cores = cores
            self.acquisitions = acquisitions
            self.contended = contended
            self.waitP50 = waitP50
            self.waitP90 = waitP90
            self.waitP99 = waitP99
            self.waitMax = waitMax
            self.holdP50 = holdP50
        }

        /// The line's fields, or nil if one is missing or not a number, or
        /// the figures contradict each other (more contended acquisitions
        /// than acquisitions, percentiles out of order).
        public init?(_ line: ConsoleLine) {
            guard let cluster = line.int("cluster"), cluster >= 0, let cores = line.int("cores"), cores >= 1,
                let acquisitions = line.decimal("acquisitions"), let contended = line.decimal("contended"),
                let p50 = line.decimal("wait_p50_ns"), let p90 = line.decimal("wait_p90_ns"),
                let p99 = line.decimal("wait_p99_ns"), let max = line.decimal("wait_max_ns"),
                let hold = line.decimal("hold_p50_ns"),
                contended <= acquisitions, p50 <= p90, p90 <= p99, p99 <= max
            else { return nil }
            self.init(cluster: cluster, cores: cores, acquisitions: acquisitions, contended: contended, waitP50: p50,
                      waitP90: p90, waitP99: p99, waitMax: max, holdP50: hold)
        }
    }

    public static let statsPrefix = "cmk: guest stats "
    public static let lockPrefix = "cmk: guest lock "
    public static let initMarker = "guest: init"
    public static let guestPanic = "Kernel panic - not syncing"
    public static let guestPanicEnd = "---[ end Kernel panic"

    public var boot = BootTranscript()
    /// `cmk: guest start vcpus=N entry=0x... dtb=0x...`.
    public var started: (vcpus: Int, entry: UInt64, dtb: UInt64)?
    /// The guest's `/init` reached userspace (`guest: init`).
    public var reachedInit = false
    /// `guest: run exit=N` from guest/init.
    public var runExit: Int?
    public var poweredOff = false
    public var reset = false
    /// The guest's `Kernel panic - not syncing: ...` line.
    public var guestPanic: String?
    /// The guest printed its panic's last line: nothing more will come.
    public var guestPanicEnded = false
    /// `cmk: guest abort ipa=...` lines (the guest touched memory it has not).
    public var aborts: [String] = []
    public var stats: [ExitStat] = []
    /// `cmk: guest stats [cluster=I [vcpu=V]] refused=N aborts=N undefined=N ...`:
    /// what was refused, one group per line (per cluster or vCPU), the
    /// line's `cluster=` and `vcpu=` included.
    public var refusals: [[(name: String, count: UInt64)]] = []
    /// `cmk: guest lock ...` lines, in order (a cluster's later line
    /// replaces its earlier one in the table).
    public var locks: [LockStat] = []
    /// `cmk: guest lock` lines that did not parse (reported under the table).
    public var malformedLocks: [String] = []

    public init() {}

    /// The kernel's first `cmk: panic` or `cmk: exception` line.
    public var kernelFailure: String? { boot.failure }

    /// True once the run has ended as far as the console can tell; QEMU is
    /// given a moment to exit by itself, then stopped (a panicked guest
    /// loops forever).
    public var isFinished: Bool {
        kernelFailure != nil || poweredOff || reset || guestPanicEnded
    }

    public mutating func consume(_ rawLine: String) {
        let line = rawLine.trimmed("\r ")
        // Guest lines may carry anything before the marker (a timestamp,
        // the end of a prompt): match inside the line.
        if guestPanic == nil, let range = line.range(of: Self.guestPanic) {
            guestPanic = String(line[range.lowerBound...])
        }
        if guestPanic != nil, line.contains(Self.guestPanicEnd) { guestPanicEnded = true }
        if line == Self.initMarker { reachedInit = true }
        if line.hasPrefix("guest: run exit="), let n = Int(line.dropFirst("guest: run exit=".count)) { runExit = n }
        guard line.hasPrefix("cmk: ") else { return }
        boot.consume(line)
        let parsed = ConsoleLine(line)
        let words = parsed.words
        guard words.count >= 3, words[1] == "guest" else { return }
        switch words[2] {
        case "start":
            if let n = parsed.int("vcpus"), let entry = parsed.hex("entry"), let dtb = parsed.hex("dtb") {
                started = (n, entry, dtb)
            }
        case "power" where words.count == 4 && words[3] == "off":
            poweredOff = true
        case "reset":
            reset = true
        case "abort":
            aborts.append(line)
        case "stats":
            if let kind = parsed.field("kind"), let exits = parsed.decimal("exits"), let us = parsed.decimal("us") {
                stats.append(ExitStat(cluster: parsed.int("cluster") ?? 0, vcpu: parsed.int("vcpu"), kind: kind, exits: exits,
                                      microseconds: us))
            } else if parsed.field("kind") == nil {
                var group: [(name: String, count: UInt64)] = []
                for word in words.dropFirst(3) {
                    let kv = word.split(separator: "=", maxSplits: 1)
                    if kv.count == 2, let n = UInt64(kv[1]) { group.append((String(kv[0]), n)) }
                }
                refusals.append(group)
            }
        case "lock":
            if let lock = LockStat(parsed) {
                locks.append(lock)
            } else {
                malformedLocks.append(line)
            }
        default:
            break
        }
    }

    /// How a run ended on the host's side.
    public struct Ending: Equatable, Sendable {
        /// QEMU's exit status (nil: killed by a signal).
        public var qemuStatus: Int32?
        public var timedOut = false
        public var interrupted = false
        public var timeout: Double = 0
        public var lastLine: String?
        /// QEMU's own error output, if any.
        public var qemuErrors = ""
        public init(qemuStatus: Int32?, timedOut: Bool = false, interrupted: Bool = false, timeout: Double = 0,
                    lastLine: String? = nil, qemuErrors: String = "") {
            self.qemuStatus = qemuStatus
            self.timedOut = timedOut
            self.interrupted = interrupted
            self.timeout = timeout
            self.lastLine = lastLine
            self.qemuErrors = qemuErrors
        }
    }

    /// The exit status and, unless it is 0, the reason. Order: what the
    /// console says went wrong first (a kernel failure outranks a guest
    /// failure, which outranks the timeout it caused), then the host's end.
    public func verdict(_ end: Ending, topology: Topology) -> (status: GuestStatus, reason: String?) {
        if let kernelFailure { return (.kernelFailure, kernelFailure) }
        if let guestPanic { return (.guestFailure, "the guest panicked: \(guestPanic)") }
        if reset { return (.guestFailure, "the guest reset itself (`cmk: guest reset`; PSCI SYSTEM_RESET)") }
        if end.interrupted { return (.interrupted, "interrupted; QEMU stopped") }
        if end.timedOut {
            let stage = poweredOff ? "after the guest's power-off" : reachedInit ? "after `guest: init`"
                : started != nil ? "after `cmk: guest start`" : "before the guest started"
            return (.timeout, "QEMU still running after \(Self.seconds(end.timeout)) (\(stage)); last line: \(end.lastLine ?? "(none)")")
        }
        let qemu = end.qemuStatus.map { "QEMU exit status \($0)" } ?? "QEMU killed by a signal"
        let errors = end.qemuErrors.trimmed(" \n\r")
        let detail = errors.isEmpty ? "" : ": \(errors)"
        if poweredOff {
            if end.qemuStatus == 0 { return (.ok, nil) }
            return (.kernelFailure, "the guest powered off but \(qemu)\(detail)")
        }
        if started == nil, let problem = boot.problem(against: topology) {
            return (.kernelFailure, "the guest never started: \(problem) (\(qemu)\(detail))")
        }
        if started == nil {
            return (.kernelFailure, "the clusters booted but the guest never started (no `cmk: guest start` line; \(qemu)\(detail))")
        }
        return (.kernelFailure, "\(qemu) without `cmk: guest power off`\(detail); last line: \(end.lastLine ?? "(none)")")
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }

    /// The `--stats` tables: `statsTable(clusterCount:)` without the topology
    /// (the clusters are the ones the lines name).
    public var statsTable: String { statsTable(clusterCount: nil) }

    /// The `--stats` tables. First the exits and handling time by kind
    /// (summed over the vCPUs; with several clusters, the exits of each
    /// cluster in a column, cluster 0 first; with more vCPUs than clusters,
    /// the exits of each vCPU too), then totals and the refusal lines; then
    /// the big-lock table, a row per cluster (`clusterCount` of them; a
    /// cluster without its `cmk: guest lock` line says so).
    public func statsTable(clusterCount: Int?) -> String {
        (exitTable + [""] + lockTable(clusterCount: clusterCount)).joined(separator: "\n")
    }

    /// Rows as columns two spaces apart, each as wide as its widest cell;
    /// the first left-aligned, the figures right-aligned.
    static func render(_ table: [[String]]) -> [String] {
        guard let header = table.first else { return [] }
        let widths = (0..<header.count).map { c in table.map { $0[c].count }.max()! }
        return table.map { r in
            r.enumerated().map { c, cell in
                c == 0 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  ")
        }
    }

    var exitTable: [String] {
        if stats.isEmpty { return ["guest exits: the kernel printed no `cmk: guest stats` lines"] }
        var kinds: [String] = []
        for s in stats where !kinds.contains(s.kind) { kinds.append(s.kind) }
        let clusters = Set(stats.map(\.cluster)).sorted()
        let vcpus = Set(stats.map(\.vcpu)).sorted()
        let perCluster = clusters.count > 1
        let perVCPU = stats.contains { $0.vcpu != $0.cluster }
        var header = ["kind", "exits", "total us", "us/exit"]
        if perCluster { header.append("exits by cluster") }
        if perVCPU { header.append("exits by vCPU") }
        func sum(_ items: [ExitStat]) -> UInt64 { items.reduce(0) { $0 + $1.exits } }
        func row(_ name: String, _ items: [ExitStat]) -> [String] {
            let exits = sum(items)
            let us = items.reduce(0) { $0 + $1.microseconds }
            var r = [name, "\(exits)", "\(us)", exits == 0 ? "-" : String(format: "%.2f", Double(us) / Double(exits))]
            if perCluster {
                r.append(clusters.map { c in "\(sum(items.filter { $0.cluster == c }))" }.joined(separator: "/"))
            }
            if perVCPU {
                // Every vCPU up to the highest named, so a missing one shows.
                r.append((0...(vcpus.last ?? 0)).map { v in
                    vcpus.contains(v) ? "\(sum(items.filter { $0.vcpu == v }))" : "-"
                }.joined(separator: "/"))
            }
            return r
        }
        var rows = kinds.map { k in row(k, stats.filter { $0.kind == k }) }
        rows.append(row("total", stats))
        var lines = ["guest exits by kind:"] + Self.render([header] + rows)
        for group in refusals {
            lines.append("refused: " + group.map { "\($0.name)=\($0.count)" }.joined(separator: " "))
        }
        return lines
    }

    /// A time in nanoseconds: "850 ns", "1.25 µs", "312.5 µs".
    static func nanoseconds(_ ns: UInt64) -> String {
        if ns < 1000 { return "\(ns) ns" }
        let us = Double(ns) / 1000
        return us < 100 ? String(format: "%.2f µs", us) : String(format: "%.1f µs", us)
    }

    /// The big-lock table: a row per cluster (0..<clusterCount, or the
    /// clusters the lines name), the cluster's last lock line.
    func lockTable(clusterCount: Int?) -> [String] {
        var latest: [Int: LockStat] = [:]
        for l in locks { latest[l.cluster] = l }
        let named = Set(latest.keys).union(stats.map(\.cluster))
        let clusters = clusterCount.map { Array(0..<$0) } ?? named.sorted()
        var lines: [String] = []
        if latest.isEmpty {
            let of = clusterCount.map { " (from none of the \($0) cluster\($0 == 1 ? "" : "s"))" } ?? ""
            lines.append("big lock: the kernel printed no `cmk: guest lock` lines\(of)")
        } else {
            lines.append("big lock by cluster (acquisitions by VM exits and the guest's other kernel entries, all cores):")
            let header = ["cluster", "cores", "acquisitions", "contended", "wait p50", "wait p90", "wait p99", "wait max",
                          "hold p50"]
            var rows: [[String]] = []
            var missing: Set<Int> = []
            for c in clusters {
                guard let l = latest[c] else {
                    missing.insert(c)
                    rows.append(["\(c)"] + Array(repeating: "", count: header.count - 1))
                    continue
                }
                let share = l.acquisitions == 0 ? "-" : String(format: "%.2f%%", Double(l.contended) * 100 / Double(l.acquisitions))
                rows.append(["\(c)", "\(l.cores)", "\(l.acquisitions)", "\(l.contended) (\(share))",
                             Self.nanoseconds(l.waitP50), Self.nanoseconds(l.waitP90), Self.nanoseconds(l.waitP99),
                             Self.nanoseconds(l.waitMax), Self.nanoseconds(l.holdP50)])
            }
            let rendered = Self.render([header] + rows)
            lines.append(rendered[0])
            for (i, c) in clusters.enumerated() {
                if missing.contains(c) {
                    let cell = "\(c)".padding(toLength: header[0].count, withPad: " ", startingAt: 0)
                    lines.append(cell + "  no `cmk: guest lock` line from this cluster")
                } else {
                    lines.append(rendered[i + 1])
                }
            }
            // A line for a cluster the topology does not have.
            for c in latest.keys.sorted() where !clusters.contains(c) {
                lines.append("(a `cmk: guest lock` line for cluster \(c), which the topology does not have)")
            }
        }
        for line in malformedLocks { lines.append("ignored a malformed lock line: \(line)") }
        return lines
    }
}

extension String {
    func trimmed(_ characters: String) -> String {
        var s = Substring(self)
        while let f = s.first, characters.contains(f) { s = s.dropFirst() }
        while let l = s.last, characters.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

import BigLock

/// One cluster's result of a lock experiment run in the booted kernel: the
/// `cmk: lockexp ...` line (RootTask/LockRun.swift, docs/experiments.md).
public struct LockExperimentLine: Equatable {
    public var cluster: Int
    public var lock: String
    public var cores: Int
    /// Length of the measured window in virtual-counter ticks, and the
    /// counter's frequency.
    public var ticks: UInt64
    public var frequency: UInt64
    /// Entries the kernel counted under the lock, and those that waited.
    public var kernelEntries: UInt64
    public var contended: UInt64
    /// Entries each core counted itself.
    public var entriesPerCore: [UInt64]
    public var wait: LockHistogram
    public var hold: LockHistogram

    public static func == (a: Self, b: Self) -> Bool {
        a.cluster == b.cluster && a.lock == b.lock && a.cores == b.cores && a.ticks == b.ticks
            && a.frequency == b.frequency && a.kernelEntries == b.kernelEntries && a.contended == b.contended
            && a.entriesPerCore == b.entriesPerCore && a.wait.count == b.wait.count && a.wait.sum == b.wait.sum
            && a.hold.count == b.hold.count && a.hold.sum == b.hold.sum
    }

    /// Parse a console line; nil if it is not a well-formed `lockexp` line.
    public static func parse(_ line: String) -> LockExperimentLine? {
        let text = line.trimmed("\r ")
        guard text.hasPrefix("cmk: lockexp ") else { return nil }
        var fields: [String: String] = [:]
        for word in text.split(separator: " ").dropFirst(2) {
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { return nil }
            fields[parts[0]] = parts[1]
        }
        func int(_ key: String) -> UInt64? { fields[key].flatMap { UInt64($0) } }
        guard let cluster = int("cluster"), let lock = fields["lock"], let cores = int("cores"),
            let ticks = int("ticks"), let frequency = int("freq"), frequency > 0,
            let kernel = int("kernel"), let contended = int("contended"),
            let entriesText = fields["entries"], let wait = histogram(fields["wait"]),
            let hold = histogram(fields["hold"])
        else { return nil }
        let entries = entriesText.split(separator: ",").compactMap { UInt64($0) }
        guard entries.count == Int(cores) else { return nil }
        return LockExperimentLine(
            cluster: Int(cluster), lock: lock, cores: Int(cores), ticks: ticks, frequency: frequency,
            kernelEntries: kernel, contended: contended, entriesPerCore: entries, wait: wait, hold: hold)
    }

    /// `sum/max/bucket:count,...`
    static func histogram(_ text: String?) -> LockHistogram? {
        guard let parts = text?.split(separator: "/", omittingEmptySubsequences: false), parts.count == 3,
            let sum = UInt64(parts[0]), let max = UInt64(parts[1])
        else { return nil }
        var h = LockHistogram()
        h.sum = sum
        h.max = max
        for pair in parts[2].split(separator: ",") {
            let kv = pair.split(separator: ":")
            guard kv.count == 2, let index = Int(kv[0]), index >= 0, index < LockHistogram.bucketCount,
                let count = UInt64(kv[1])
            else { return nil }
            h.buckets[index] = count
            h.count &+= count
        }
        // The reporter (the root task) buckets with its own copy of
        // `LockHistogram.bucket(of:)`: its max must fall in its top
        // non-empty bucket, or the two bucket functions disagree.
        if h.count > 0 {
            let top = (0..<LockHistogram.bucketCount).last { h.buckets[$0] != 0 }!
            guard LockHistogram.bucket(of: max) == top else { return nil }
        }
        return h
    }
}

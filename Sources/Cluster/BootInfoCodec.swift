import BigLock

/// Why a boot information blob was refused. The kernel prints `message` and
/// powers off; the host tool's tests check that each case is detected.
public enum BootInfoError: Error, Equatable {
    case tooSmall
    case badMagic
    case badVersion
    case badSize
    case badChecksum
    case badClusterCount
    case badCoreCount
    case badRAM
    case badBootRegion
    case misalignedRegion
    case regionOutsideRAM
    case regionsOverlap
    case channelTooSmall
    case partitionTooSmall
    case badCoreMask
    case coresNotCovered
    case reservedNotZero
    case badInjection
    case badLockKind
    case badExperiment
    case badGuest
    case badRootTask

    public var message: StaticString {
        switch self {
        case .tooSmall: return "blob smaller than its header"
        case .badMagic: return "bad magic (no boot information loaded?)"
        case .badVersion: return "unsupported version"
        case .badSize: return "size does not match the cluster count"
        case .badChecksum: return "checksum mismatch"
        case .badClusterCount: return "cluster count out of range"
        case .badCoreCount: return "core count out of range"
        case .badRAM: return "RAM base or size not supported"
        case .badBootRegion: return "boot region size differs from the kernel's"
        case .misalignedRegion: return "region not aligned to 2 MiB (or channel to 4 KiB)"
        case .regionOutsideRAM: return "region outside RAM or inside the boot region"
        case .regionsOverlap: return "two regions overlap"
        case .channelTooSmall: return "channel region too small"
        case .partitionTooSmall: return "partition below the minimum size"
        case .badCoreMask: return "cluster core mask empty, shared, or beyond the core count"
        case .coresNotCovered: return "some core belongs to no cluster"
        case .reservedNotZero: return "reserved word not zero"
        case .badInjection: return "unknown fault injection"
        case .badLockKind: return "unknown big-lock kind"
        case .badExperiment: return "malformed experiment request"
        case .badGuest: return "guest record malformed or its blobs outside the guest region"
        case .badRootTask: return "root-task record malformed, too large, or outside the root-task window"
        }
    }
}

extension BootInfo {
    /// FNV-1a over 64-bit words' bytes, little-endian. Simple and enough to
    /// catch a truncated or stale blob; it is not a security boundary (the
    /// blob comes from whoever starts the machine).
    static func checksum(words: (Int) -> UInt64, count: Int) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<count {
            let word = i == 3 ? 0 : words(i)
            for byte in 0..<8 {
                hash ^= (word >> UInt64(byte * 8)) & 0xff
                hash = hash &* 0x100_0000_01b3
            }
        }
        return hash
    }

    /// The blob as words, checksum filled in.
    public func encodedWords(into body: (Int, UInt64) -> Void) {
        let count = byteCount / 8
        var words = InlineArray<295, UInt64>(repeating: 0)  // 18 + 64 * 4 + 8 + 8 + 5
        words[0] = Self.magic
        words[1] = Self.version
        words[2] = UInt64(byteCount)
        words[4] = UInt64(clusters.count)
        words[5] = UInt64(coreCount)
        words[6] = ramBase
        words[7] = ramSize
        words[8] = bootRegionSize
        words[9] = channel.base
        words[10] = channel.size
        words[11] = guest.base
        words[12] = guest.size
        words[13] = lockKind
        words[14] = inject
        if let experiment {
            words[15] = UInt64(ExperimentRequest.wordCount)
            let at = Self.headerWords + clusters.count * Self.clusterWords
            let record = experiment.words
            for i in 0..<ExperimentRequest.wordCount { words[at + i] = record[i] }
        }
        if let guestImage {
            words[16] = UInt64(GuestImage.wordCount)
            let at = Self.headerWords + clusters.count * Self.clusterWords
                + (experiment == nil ? 0 : ExperimentRequest.wordCount)
            let record = guestImage.words
            for i in 0..<GuestImage.wordCount { words[at + i] = record[i] }
        }
        if let rootTask {
            words[17] = UInt64(RootTaskImage.wordCount)
            let at = Self.headerWords + clusters.count * Self.clusterWords
                + (experiment == nil ? 0 : ExperimentRequest.wordCount) + (guestImage == nil ? 0 : GuestImage.wordCount)
            let record = rootTask.words
            for i in 0..<RootTaskImage.wordCount { words[at + i] = record[i] }
        }
        for c in 0..<clusters.count {
            let at = Self.headerWords + c * Self.clusterWords
            words[at] = clusters[c].partition.base
            words[at + 1] = clusters[c].partition.size
            words[at + 2] = clusters[c].coreMask
        }
        words[3] = Self.checksum(words: { words[$0] }, count: count)
        for i in 0..<count { body(i, words[i]) }
    }

    /// Decode and validate the blob at `bytes` (at most `available` bytes
    /// readable). Every field is checked; nothing is trusted.
    public static func decode(_ bytes: UnsafeRawPointer, available: Int) throws(BootInfoError) -> BootInfo {
        func word(_ i: Int) -> UInt64 { bytes.load(fromByteOffset: i * 8, as: UInt64.self) }
        guard available >= headerWords * 8 else { throw .tooSmall }
        guard word(0) == magic else { throw .badMagic }
        guard word(1) == version else { throw .badVersion }
        let clusterCount = word(4)
        guard clusterCount >= 1, clusterCount <= UInt64(ClusterTable.capacity) else { throw .badClusterCount }
        let size = word(2)
        let experimentWords = word(15)
        guard experimentWords == 0 || experimentWords == UInt64(ExperimentRequest.wordCount) else { throw .badExperiment }
        let guestWords = word(16)
        guard guestWords == 0 || guestWords == UInt64(GuestImage.wordCount) else { throw .badGuest }
        let rootTaskWords = word(17)
        guard rootTaskWords == 0 || rootTaskWords == UInt64(RootTaskImage.wordCount) else { throw .badRootTask }
        let expected = UInt64(
            (headerWords + Int(clusterCount) * clusterWords + Int(experimentWords) + Int(guestWords) + Int(rootTaskWords)) * 8)
        guard size == expected, size <= UInt64(available), size <= Machine.bootInfoMaxSize else {
            throw .badSize
        }
        guard word(3) == checksum(words: word, count: Int(size / 8)) else { throw .badChecksum }
        guard FaultInjection.isValid(word(14), clusterCount: Int(clusterCount)) else { throw .badInjection }
        let coreCount = word(5)
        guard coreCount >= 1, coreCount <= UInt64(Machine.maxCores), coreCount >= clusterCount else {
            throw .badCoreCount
        }
        var clusters = ClusterTable()
        for c in 0..<Int(clusterCount) {
            let at = headerWords + c * clusterWords
            guard word(at + 3) == 0 else { throw .reservedNotZero }
            clusters.append(
                ClusterDescriptor(
                    partition: Region(base: word(at), size: word(at + 1)), coreMask: word(at + 2)))
        }
        var info = BootInfo(
            ramBase: word(6), ramSize: word(7), bootRegionSize: word(8),
            channel: Region(base: word(9), size: word(10)),
            guest: Region(base: word(11), size: word(12)),
            lockKind: word(13), coreCount: Int(coreCount), clusters: clusters)
        info.inject = word(14)
        if experimentWords != 0 {
            let at = headerWords + Int(clusterCount) * clusterWords
            guard let request = ExperimentRequest(words: { word(at + $0) }) else { throw .badExperiment }
            info.experiment = request
        }
        if guestWords != 0 {
            let at = headerWords + Int(clusterCount) * clusterWords + Int(experimentWords)
            guard let image = GuestImage(words: { word(at + $0) }) else { throw .badGuest }
            info.guestImage = image
        }
        if rootTaskWords != 0 {
            let at = headerWords + Int(clusterCount) * clusterWords + Int(experimentWords) + Int(guestWords)
            info.rootTask = RootTaskImage(words: { word(at + $0) })
        }
        try info.validate()
        return info
    }

    /// The checks `decode` makes, usable on a blob the host just built.
    public func validate() throws(BootInfoError) {
        guard ramBase == Machine.ramBase, ramSize % Machine.regionAlignment == 0,
            ramSize > bootRegionSize, ramSize <= Machine.maxRAM
        else { throw .badRAM }
        guard bootRegionSize == Machine.bootRegionSize else { throw .badBootRegion }
        guard ClusterLock.Kind(rawValue: lockKind) != nil else { throw .badLockKind }
        if let experiment {
            // What the kernel will decode must decode: the same checks.
            let words = experiment.words
            guard ExperimentRequest(words: { words[$0] }) == experiment else { throw .badExperiment }
        }
        guard coreCount >= 1, coreCount <= Machine.maxCores, coreCount >= clusters.count else {
            throw .badCoreCount
        }
        if let rootTask { guard rootTask.isValid else { throw .badRootTask } }
        let usable = Region(base: ramBase + bootRegionSize, size: ramSize - bootRegionSize)

        // Every region: aligned, inside usable RAM, disjoint from all others.
        func check(_ r: Region, sizeGranule: UInt64) throws(BootInfoError) {
            guard r.base % Machine.regionAlignment == 0, r.size % sizeGranule == 0 else {
                throw .misalignedRegion
            }
            guard r.size > 0, usable.contains(r) else { throw .regionOutsideRAM }
        }
        try check(channel, sizeGranule: Machine.pageSize)
        guard channel.size >= Machine.minChannelSize else { throw .channelTooSmall }
        if guest.size != 0 { try check(guest, sizeGranule: Machine.regionAlignment) }
        guard !channel.overlaps(guest) else { throw .regionsOverlap }
        if let guestImage {
            guard guestImage.fits(in: guest) else { throw .badGuest }
            let words = guestImage.words
            guard GuestImage(words: { words[$0] }) == guestImage else { throw .badGuest }
        }

        var seen: UInt64 = 0
        for c in 0..<clusters.count {
            let cluster = clusters[c]
            try check(cluster.partition, sizeGranule: Machine.partitionGranule)
            guard cluster.partition.size >= Machine.minPartitionSize else { throw .partitionTooSmall }
            guard !cluster.partition.overlaps(channel), !cluster.partition.overlaps(guest) else {
                throw .regionsOverlap
            }
            for d in 0..<c where cluster.partition.overlaps(clusters[d].partition) {
                throw .regionsOverlap
            }
            let allCores: UInt64 = coreCount == 64 ? ~0 : (1 << UInt64(coreCount)) - 1
            guard cluster.coreMask != 0, cluster.coreMask & seen == 0,
                cluster.coreMask & ~allCores == 0
            else { throw .badCoreMask }
            seen |= cluster.coreMask
        }
        let allCores: UInt64 = coreCount == 64 ? ~0 : (1 << UInt64(coreCount)) - 1
        guard seen == allCores else { throw .coresNotCovered }
    }
}

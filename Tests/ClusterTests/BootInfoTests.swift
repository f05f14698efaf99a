import Testing

@testable import Cluster

func sampleInfo() -> BootInfo {
    var clusters = ClusterTable()
    clusters.append(ClusterDescriptor(partition: Region(base: 0x4100_0000, size: 128 << 20), coreMask: 0b0011))
    clusters.append(ClusterDescriptor(partition: Region(base: 0x4900_0000, size: 128 << 20), coreMask: 0b1100))
    return BootInfo(
        ramBase: Machine.ramBase, ramSize: 1 << 30, bootRegionSize: Machine.bootRegionSize,
        channel: Region(base: 0x5100_0000, size: 1 << 20), guest: Region(base: 0x5120_0000, size: 256 << 20),
        lockKind: 0, coreCount: 4, clusters: clusters)
}

func words(_ info: BootInfo) -> [UInt64] {
    var w: [UInt64] = []
    info.encodedWords { _, word in w.append(word) }
    return w
}

func decode(_ w: [UInt64], fixChecksum: Bool = true) throws(BootInfoError) -> BootInfo {
    var w = w
    if fixChecksum && w.count > 3 { w[3] = BootInfo.checksum(words: { w[$0] }, count: w.count) }
    let copy = w
    let result: Result<BootInfo, BootInfoError> = copy.withUnsafeBytes { bytes in
        do {
            return .success(try BootInfo.decode(bytes.baseAddress!, available: bytes.count))
        } catch let error as BootInfoError {
            return .failure(error)
        } catch {
            fatalError("untyped error \(error)")
        }
    }
    return try result.get()
}

@Suite struct BootInfoTests {
    @Test func roundTrip() throws {
        let info = try decode(words(sampleInfo()), fixChecksum: false)
        #expect(info.clusterCount == 2)
        #expect(info.coreCount == 4)
        #expect(info.clusters[1].partition == Region(base: 0x4900_0000, size: 128 << 20))
        #expect(info.cluster(ofCore: 3) == 1)
        #expect(info.cluster(ofCore: 0) == 0)
        #expect(info.clusters[1].core(at: 1) == 3)
        #expect(info.clusters[1].index(ofCore: 3) == 1)
        #expect(info.clusters[1].firstCore == 2)
    }

    /// Every refusal the kernel makes, each from one corrupted word.
    @Test func corruptBlobsAreRefused() {
        let good = words(sampleInfo())
        func with(_ edits: [(Int, UInt64)]) -> [UInt64] {
            var w = good
            for (i, v) in edits { w[i] = v }
            return w
        }
        let cases: [([UInt64], BootInfoError, Bool)] = [
            (with([(0, 0)]), .badMagic, true),
            (with([(1, 2)]), .badVersion, true),
            (with([(2, 8)]), .badSize, true),
            (with([(12, 1)]), .badChecksum, false),  // any change without a new checksum
            (with([(4, 0)]), .badClusterCount, true),
            (with([(5, 65)]), .badCoreCount, true),
            (with([(6, 0)]), .badRAM, true),
            (with([(8, 1 << 20)]), .badBootRegion, true),
            (with([(16, 0x4100_1000)]), .misalignedRegion, true),
            (with([(16, 0x4000_0000)]), .regionOutsideRAM, true),  // inside the boot region
            (with([(20, 0x4100_0000 + (64 << 20))]), .regionsOverlap, true),  // cluster 1 into cluster 0
            (with([(9, 0x4100_0000)]), .regionsOverlap, true),  // channel into cluster 0
            (with([(10, 4096)]), .channelTooSmall, true),
            (with([(17, 2 << 20)]), .partitionTooSmall, true),
            (with([(22, 0b0110)]), .badCoreMask, true),  // core 1 in both clusters
            (with([(22, 0b1_0000_1000)]), .badCoreMask, true),  // core 8 beyond the count
            (with([(22, 0b1000)]), .coresNotCovered, true),  // core 2 in no cluster
            (with([(15, 1)]), .badExperiment, true),  // experiment words: 0 or 4
            (with([(15, 4)]), .badSize, true),  // experiment words the size does not cover
            (with([(14, 99)]), .badInjection, true),
        ]
        for (w, expected, fix) in cases {
            #expect(throws: expected) { try decode(w, fixChecksum: fix) }
        }
        // Too few bytes for the header.
        let short: [UInt64] = Array(good.prefix(4))
        #expect(throws: BootInfoError.tooSmall) { try decode(short, fixChecksum: false) }
    }

    @Test func experimentRequestRoundTrips() throws {
        var info = sampleInfo()
        #expect(words(info).count == 16 + 2 * 4)
        #expect(try decode(words(info), fixChecksum: false).experiment == .none)
        info.experiment = .channel(roundTrips: 100, messages: 2000)
        let w = words(info)
        #expect(w.count == 16 + 2 * 4 + 4)
        #expect(w[15] == 4)
        #expect(w[2] == UInt64(w.count * 8))
        #expect(Array(w[24...]) == [1, 100, 2000, 0])
        let decoded = try decode(w, fixChecksum: false)
        #expect(decoded.experiment == .channel(roundTrips: 100, messages: 2000))
        #expect(decoded.byteCount == w.count * 8)
    }

    @Test func badExperimentsAreRefused() {
        var info = sampleInfo()
        info.experiment = .channel(roundTrips: 100, messages: 2000)
        let good = words(info)
        func with(_ i: Int, _ v: UInt64) -> [UInt64] {
            var w = good
            w[i] = v
            return w
        }
        let cases: [([UInt64], BootInfoError, Bool)] = [
            (with(24, 2), .badExperiment, true),  // unknown kind
            (with(24, 0), .badExperiment, true),  // words present, kind none
            (with(25, 0), .badExperiment, true),  // no round trips
            (with(25, ExperimentRequest.maxRoundTrips + 1), .badExperiment, true),
            (with(26, 0), .badExperiment, true),  // no messages
            (with(26, ExperimentRequest.maxMessages + 1), .badExperiment, true),
            (with(27, 1), .reservedNotZero, true),
            (with(15, 3), .badExperiment, true),
            (with(15, 0), .badSize, true),  // size still counts the experiment words
            (with(26, 7), .badChecksum, false),
        ]
        for (w, expected, fix) in cases {
            #expect(throws: expected) { try decode(w, fixChecksum: fix) }
        }
        // A host-built request is validated the same way.
        info.experiment = .channel(roundTrips: 0, messages: 1)
        #expect(throws: BootInfoError.badExperiment) { try info.validate() }
        #expect(BootInfoError.badExperiment.message.description.contains("experiment"))
    }

    @Test func partitionLayoutInvariants() {
        for cores in [1, 2, 8, 64] {
            let layout = PartitionLayout(privateImageSize: 0x1234, coreCount: cores)
            #expect(layout.recordOffset == 0x2000)
            #expect(layout.recordOffset % 4096 == 0 && layout.stacksOffset % 4096 == 0)
            #expect(layout.tablesOffset % 4096 == 0 && layout.freeOffset % 4096 == 0)
            #expect(layout.coreStateOffset(cores - 1) + UInt64(CoreState.size) <= layout.stacksOffset)
            for i in 0..<cores {
                let guardLow = layout.lowGuardOffset(i)
                #expect(layout.emergencyStackTop(i) == guardLow + PartitionLayout.guardSize + PartitionLayout.emergencyStackSize)
                #expect(layout.highGuardOffset(i) == layout.emergencyStackTop(i))
                #expect(layout.kernelStackTop(i) - PartitionLayout.kernelStackSize == layout.highGuardOffset(i) + PartitionLayout.guardSize)
                #expect(layout.kernelStackTop(i) <= layout.tablesOffset)
            }
            #expect(layout.fits(partitionSize: Machine.minPartitionSize), "\(cores) cores do not fit the minimum partition")
        }
    }
}

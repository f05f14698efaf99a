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

    /// `--inject KIND@CLUSTER`: the word names an existing cluster or none
    /// (the last, the legacy form); anything else is refused at decode.
    @Test func faultInjectionNamesAClusterOrNone() throws {
        var info = sampleInfo()
        for (kind, cluster, target) in [(FaultInjection.panic, nil, 1), (FaultInjection.hang, 0, 0), (FaultInjection.flood, 1, 1)] as [(UInt64, Int?, Int)] {
            info.inject = FaultInjection.word(kind: kind, cluster: cluster)
            let decoded = try decode(words(info))
            #expect(FaultInjection.kind(decoded.inject) == kind)
            #expect(FaultInjection.namesCluster(decoded.inject) == (cluster != nil))
            #expect(FaultInjection.target(decoded.inject, clusterCount: 2) == target)
        }
        for bad in [FaultInjection.word(kind: FaultInjection.panic, cluster: 2), FaultInjection.word(kind: 0, cluster: 0),
                    FaultInjection.last + 1, 1 << 16 | FaultInjection.panic] {
            info.inject = bad
            #expect(throws: BootInfoError.badInjection) { try decode(words(info)) }
        }
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
            (with([(1, 1)]), .badVersion, true),
            (with([(2, 8)]), .badSize, true),
            (with([(12, 1)]), .badChecksum, false),  // any change without a new checksum
            (with([(4, 0)]), .badClusterCount, true),
            (with([(5, 65)]), .badCoreCount, true),
            (with([(6, 0)]), .badRAM, true),
            (with([(8, 1 << 20)]), .badBootRegion, true),
            (with([(18, 0x4100_1000)]), .misalignedRegion, true),
            (with([(18, 0x4000_0000)]), .regionOutsideRAM, true),  // inside the boot region
            (with([(22, 0x4100_0000 + (64 << 20))]), .regionsOverlap, true),  // cluster 1 into cluster 0
            (with([(9, 0x4100_0000)]), .regionsOverlap, true),  // channel into cluster 0
            (with([(10, 4096)]), .channelTooSmall, true),
            (with([(19, 2 << 20)]), .partitionTooSmall, true),
            (with([(24, 0b0110)]), .badCoreMask, true),  // core 1 in both clusters
            (with([(24, 0b1_0000_1000)]), .badCoreMask, true),  // core 8 beyond the count
            (with([(24, 0b1000)]), .coresNotCovered, true),  // core 2 in no cluster
            (with([(21, 1)]), .reservedNotZero, true),  // cluster 0's reserved word
            (with([(15, 1)]), .badExperiment, true),  // experiment words but not 8
            (with([(14, 99)]), .badInjection, true),
            (with([(16, 3)]), .badGuest, true),  // guest words but not 8
            (with([(17, 1)]), .badRootTask, true),  // root-task words but not 4
        ]
        for (w, expected, fix) in cases {
            #expect(throws: expected) { try decode(w, fixChecksum: fix) }
        }
        // Too few bytes for the header.
        let short: [UInt64] = Array(good.prefix(4))
        #expect(throws: BootInfoError.tooSmall) { try decode(short, fixChecksum: false) }
    }

    @Test func experimentRecordRoundTripsAndIsChecked() throws {
        var info = sampleInfo()
        info.experiment = .lock(workload: 1, hold: 200, delay: 400, durationTicks: 62_500_000)
        let w = words(info)
        #expect(w.count == 18 + 2 * 4 + 8 && w[15] == 8)
        #expect(try decode(w, fixChecksum: false).experiment == info.experiment)
        info.experiment = .channel(roundTrips: 1000, messages: 20000)
        #expect(try decode(words(info), fixChecksum: false).experiment == info.experiment)
        // Each malformed record is refused.
        let base = 18 + 2 * 4
        for (offset, value) in [(0, 9), (1, 0), (1, 2_000_000), (5, 1)] as [(Int, UInt64)] {
            var bad = words(info)
            bad[base + offset] = value
            #expect(throws: BootInfoError.badExperiment) { try decode(bad) }
        }
        info.experiment = .lock(workload: 1, hold: 1, delay: 1, durationTicks: 1)
        var bad = words(info)
        bad[base + 1] = 2  // unknown workload
        #expect(throws: BootInfoError.badExperiment) { try decode(bad) }
        bad = words(info)
        bad[base + 4] = 0  // empty window
        #expect(throws: BootInfoError.badExperiment) { try decode(bad) }
        // The critical section runs in the kernel's benchmark call: no
        // longer than it allows; the work outside may be longer.
        info.experiment = .lock(workload: 1, hold: ExperimentRequest.maxHold, delay: ExperimentRequest.maxHold + 1, durationTicks: 1)
        #expect(try decode(words(info), fixChecksum: false).experiment == info.experiment)
        bad = words(info)
        bad[base + 2] = ExperimentRequest.maxHold + 1
        #expect(throws: BootInfoError.badExperiment) { try decode(bad) }
    }

    func sampleGuest() -> GuestImage {
        GuestImage(
            kernel: Region(base: 0x5120_0000, size: 0x1ab_0000), deviceTree: Region(base: 0x6000_0000, size: 0x2000),
            initrd: Region(base: 0x6010_0000, size: 0x10_0000), placement: .cluster, vcpuCount: 1)
    }

    @Test func guestRecordRoundTripsAfterTheExperiment() throws {
        var info = sampleInfo()
        info.guestImage = sampleGuest()
        var w = words(info)
        #expect(w.count == 18 + 2 * 4 + 8 && w[16] == 8 && w[15] == 0)
        #expect(try decode(w, fixChecksum: false).guestImage == info.guestImage)
        info.experiment = .channel(roundTrips: 10, messages: 20)
        w = words(info)
        #expect(w.count == 18 + 2 * 4 + 8 + 8)
        let decoded = try decode(w, fixChecksum: false)
        #expect(decoded.guestImage == info.guestImage && decoded.experiment == info.experiment)
    }

    /// Each malformed guest record, and each blob outside the guest region
    /// or overlapping another, is refused.
    @Test func badGuestRecordsAreRefused() {
        var info = sampleInfo()
        info.guestImage = sampleGuest()
        let base = 18 + 2 * 4
        let edits: [(Int, UInt64)] = [
            (0, 0x5130_0000),  // kernel not 2 MiB aligned
            (0, 0x4000_0000),  // kernel outside the guest region
            (1, 0),  // empty kernel
            (2, 0x5120_1000),  // device tree inside the kernel
            (2, 0x6000_0004),  // device tree not 8-byte aligned
            (3, 3 << 20),  // device tree above 2 MiB
            (3, 0),  // no device tree
            (4, 0x6000_0000),  // initrd over the device tree
            (5, 0x1000_0000),  // initrd beyond the region's end
            (6, 0), (6, 3),  // unknown placement
            (7, 0), (7, 65),  // vCPU count
        ]
        for (offset, value) in edits {
            var w = words(info)
            w[base + offset] = value
            #expect(throws: BootInfoError.badGuest, "word \(offset) = \(value)") { try decode(w) }
        }
        var noInitrd = sampleGuest()
        noInitrd.initrd = Region(base: 0, size: 0)
        #expect(noInitrd.fits(in: info.guest))
        noInitrd.initrd.base = 0x6010_0000
        #expect(!noInitrd.fits(in: info.guest))  // a base without a size
    }

    func sampleRootTask() -> RootTaskImage {
        RootTaskImage(fileSize: 0x1208, memorySize: 0x6000, entry: 0x40_0000)
    }

    /// The root-task record (header word 17) comes after the experiment and
    /// the guest; absent, word 17 is 0.
    @Test func rootTaskRecordRoundTripsAfterTheGuest() throws {
        var info = sampleInfo()
        #expect(words(info)[17] == 0)
        #expect(try decode(words(info), fixChecksum: false).rootTask == nil)
        info.rootTask = sampleRootTask()
        var w = words(info)
        #expect(w.count == 18 + 2 * 4 + 5 && w[17] == 5 && w[18 + 2 * 4] == Machine.rootTaskAddress)
        #expect(w[18 + 2 * 4 + 4] == RootTaskImage.defaultFuzzCalls)
        #expect(try decode(w, fixChecksum: false).rootTask == info.rootTask)
        info.guestImage = sampleGuest()
        info.experiment = .channel(roundTrips: 10, messages: 20)
        w = words(info)
        #expect(w.count == 18 + 2 * 4 + 8 + 8 + 5)
        let decoded = try decode(w, fixChecksum: false)
        #expect(decoded.rootTask == info.rootTask && decoded.guestImage == info.guestImage)
        #expect(decoded.experiment == info.experiment)
    }

    /// Each malformed root-task record is refused: outside the window,
    /// unaligned, empty, larger than the window or than
    /// RootTaskLayout.imageLimit, file larger than memory, entry outside
    /// the file image.
    @Test func badRootTaskRecordsAreRefused() {
        var info = sampleInfo()
        info.rootTask = sampleRootTask()
        let base = 18 + 2 * 4
        let edits: [(Int, UInt64)] = [
            (0, Machine.rootTaskAddress + 0x800),  // not page aligned
            (0, Machine.bootInfoAddress),  // beyond the window
            (0, Machine.rootTaskAddress - 0x1000),  // below it
            (0, Machine.rootTaskAddress + Machine.rootTaskWindowSize - 0x1000),  // runs past its end
            (1, 0),  // empty
            (1, Machine.rootTaskWindowSize + 0x1000),  // larger than the window
            (1, 0x7000),  // file beyond memory
            (2, 0x40_1000),  // memory above RootTaskLayout.imageLimit
            (3, 0x3F_F000),  // entry below the image
            (3, 0x40_1208),  // entry past the file image
            (3, 0x40_0002),  // entry not an instruction
            (4, RootTaskImage.maxFuzzCalls + 1),  // too many fuzz calls
        ]
        for (offset, value) in edits {
            var w = words(info)
            w[base + offset] = value
            #expect(throws: BootInfoError.badRootTask, "word \(offset) = \(value)") { try decode(w) }
        }
        #expect(sampleRootTask().isValid)
        // The window lies in the boot region, below the boot information.
        #expect(RootTaskImage.window.end <= Machine.bootInfoAddress)
        #expect(RootTaskImage.window.base >= Machine.ramBase + (2 << 20))
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

@Suite struct GuestVCPUMapTests {
    @Test func clusterPlacementIsOneVCPUPerClusterOnItsFirstCore() throws {
        let cores = [4, 4, 2]
        let map = try #require(GuestVCPUMap(placement: .cluster, vcpuCount: 3, clusterCount: 3, coresIn: { cores[$0] }))
        #expect(map.vcpus(inCluster: 1) == 1..<2)
        #expect(map.home(ofVCPU: 2)! == (cluster: 2, core: 0))
        #expect(map.home(ofVCPU: 3) == nil)
        #expect(map.home(ofVCPU: -1) == nil)
        // Fewer vCPUs than clusters: the last clusters run none.
        let two = try #require(GuestVCPUMap(placement: .cluster, vcpuCount: 2, clusterCount: 3, coresIn: { cores[$0] }))
        #expect(two.vcpus(inCluster: 2).isEmpty)
        #expect(GuestVCPUMap(placement: .cluster, vcpuCount: 4, clusterCount: 3, coresIn: { cores[$0] }) == nil)
    }

    @Test func corePlacementNumbersVCPUsClusterByCluster() throws {
        let cores = [2, 3, 1]
        let count = GuestVCPUMap.vcpuCount(placement: .core, clusterCount: 3, coresIn: { cores[$0] })
        #expect(count == 6)
        let map = try #require(GuestVCPUMap(placement: .core, vcpuCount: count, clusterCount: 3, coresIn: { cores[$0] }))
        #expect(map.vcpus(inCluster: 0) == 0..<2)
        #expect(map.vcpus(inCluster: 1) == 2..<5)
        #expect(map.vcpus(inCluster: 2) == 5..<6)
        #expect(map.vcpus(inCluster: 3).isEmpty)
        var seen: [Int] = []
        for v in 0..<count {
            let h = try #require(map.home(ofVCPU: v))
            #expect(map.vcpus(inCluster: h.cluster).contains(v))
            #expect(map.vcpus(inCluster: h.cluster).lowerBound + h.core == v)
            seen.append(h.cluster)
        }
        #expect(seen == [0, 0, 1, 1, 1, 2])
        // The count must cover every core exactly.
        #expect(GuestVCPUMap(placement: .core, vcpuCount: 5, clusterCount: 3, coresIn: { cores[$0] }) == nil)
        #expect(GuestVCPUMap(placement: .core, vcpuCount: 6, clusterCount: 3, coresIn: { _ in 0 }) == nil)
        #expect(GuestVCPUMap(placement: .core, vcpuCount: 65, clusterCount: 1, coresIn: { _ in 65 }) == nil)
    }
}

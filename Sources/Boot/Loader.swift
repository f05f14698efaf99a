import Arch
import BigLock
import ArchAsm
import Cluster
import InterKernel

/// The loader: what the boot core does before any cluster runs.
///
/// It runs on core 0 with the MMU on under the static boot identity map
/// (entry.S), on the boot stack, with TPIDR_EL2 = 0 and no kernel globals
/// (they are not mapped yet). For every cluster it:
///   1. copies the kernel's initial .data into the cluster's partition and
///      zeroes .bss there: the cluster's private kernel state;
///   2. writes the cluster record and one CoreState (with a start record)
///      per core;
///   3. builds the cluster's translation tables inside its partition: the
///      shared read-only image, the devices, the boot information, the shared
///      channel and guest regions, and its own partition at PRIVATE_BASE;
///      nothing of any other partition;
///   4. walks those tables and refuses to go on if any leaf reaches another
///      partition, or if the image is writable.
/// Then it starts the first core of every other cluster (PSCI CPU_ON) and
/// enters its own cluster like any first core.
enum Loader {
    static func run() -> Never {
        guard CPU.currentEL == 2 else { panic("cmk must start at EL2 (QEMU virtualization=on)") }
        let info = decodedBootInfo()
        guard cmk_image_end() <= Machine.rootTaskAddress else {
            panic("kernel image runs into the root-task window at", Machine.rootTaskAddress)
        }
        let privateImageSize = cmk_bss_end() - cmk_private_start()

        Console.put("cmk: loader image=")
        Console.hexRange(cmk_image_start(), cmk_image_end())
        Console.put(" private=")
        Console.decimal(privateImageSize)
        Console.put("B clusters=")
        Console.decimal(info.clusterCount)
        Console.put(" cores=")
        Console.decimal(info.coreCount)
        Console.put(" lock=")
        Console.put(ClusterLock.Kind(rawValue: info.lockKind)!.name)
        Console.end()

        GICv3.initDistributor()
        ChannelControl.format(pointer(info.channel.base))
        guard let channelLayout = ChannelLayout(clusterCount: info.clusterCount, regionSize: Int(info.channel.size)) else {
            panic("channel region too small for the rings of this many clusters; bytes:", info.channel.size)
        }
        channelLayout.format(pointer(info.channel.base))
        CPU.cleanToPoC(info.channel.base, size: UInt64(channelLayout.usedSize))

        for c in 0..<info.clusterCount {
            prepare(cluster: c, info: info, channelLayout: channelLayout, privateImageSize: privateImageSize)
        }

        guard let home = info.cluster(ofCore: 0) else { panic("core 0 belongs to no cluster") }
        for c in 0..<info.clusterCount where c != home {
            startFirstCore(of: c, info: info, privateImageSize: privateImageSize)
        }
        enter(cluster: home, info: info, privateImageSize: privateImageSize)
    }

    /// The cluster that maps the GIC distributor: the one that owns the
    /// guest's UART and virtual distributor and routes the UART's interrupt
    /// (docs/guest.md). The loader programs the distributor before any
    /// cluster runs; nobody else touches it.
    static let distributorOwner = 0

    static func pointer(_ physical: UInt64) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(bitPattern: UInt(physical))!
    }

    static func prepare(cluster c: Int, info: BootInfo, channelLayout: ChannelLayout, privateImageSize: UInt64) {
        let descriptor = info.clusters[c]
        let partition = descriptor.partition
        let layout = PartitionLayout(privateImageSize: privateImageSize, coreCount: descriptor.coreCount)
        guard layout.fits(partitionSize: partition.size), layout.freeOffset <= Machine.privateWindowSize else {
            panic("partition too small for the kernel's private state; bytes needed:", layout.freeOffset + 4096)
        }
        let base = pointer(partition.base)

        // 1. Private kernel state: .data copied, .bss zeroed.
        let dataSize = Int(cmk_data_end() - cmk_private_start())
        base.copyMemory(from: pointer(cmk_data_lma()), byteCount: dataSize)
        zero(base + dataSize, bytes: Int(privateImageSize) - dataSize)

        // 2. Cluster record and core states.
        let records = base + Int(layout.recordOffset)
        zero(records, bytes: Int(layout.stacksOffset - layout.recordOffset))
        let record = records.assumingMemoryBound(to: UInt64.self)
        record[ClusterRecord.magic] = ClusterRecord.magicValue
        record[ClusterRecord.clusterId] = UInt64(c)
        record[ClusterRecord.clusterCount] = UInt64(info.clusterCount)
        record[ClusterRecord.machineCoreCount] = UInt64(info.coreCount)
        record[ClusterRecord.coreMask] = descriptor.coreMask
        record[ClusterRecord.partitionBase] = partition.base
        record[ClusterRecord.partitionSize] = partition.size
        record[ClusterRecord.channelBase] = info.channel.base
        record[ClusterRecord.channelSize] = info.channel.size
        record[ClusterRecord.guestBase] = info.guest.base
        record[ClusterRecord.guestSize] = info.guest.size
        record[ClusterRecord.privateImageSize] = privateImageSize
        record[ClusterRecord.freeOffset] = layout.freeOffset
        record[ClusterRecord.lockKind] = info.lockKind
        record[ClusterRecord.inject] =
            c == FaultInjection.target(info.inject, clusterCount: info.clusterCount) ? info.inject : FaultInjection.none
        if let experiment = info.experiment {
            let words = experiment.words
            for i in 0..<ExperimentRequest.wordCount { record[ClusterRecord.experiment + i] = words[i] }
        }
        if let guestImage = info.guestImage {
            let words = guestImage.words
            for i in 0..<GuestImage.wordCount { record[ClusterRecord.guest + i] = words[i] }
        }

        // 3. Translation tables, in the partition's table pool.
        var tables = TranslationTables(
            poolPhysical: partition.base + layout.tablesOffset,
            pool: base + Int(layout.tablesOffset), size: PartitionLayout.tablePoolSize)
        do {
            // Devices: the UART, this cluster's cores' GIC redistributors,
            // and the distributor only in its owner; nothing that can DMA.
            try tables.map(virtual: QemuVirt.uart, physical: QemuVirt.uart, size: QemuVirt.uartSize, attributes: .device)
            if c == distributorOwner {
                try tables.map(
                    virtual: QemuVirt.gicDistributor, physical: QemuVirt.gicDistributor,
                    size: QemuVirt.gicDistributorSize, attributes: .device)
            }
            var cores = descriptor.coreMask
            while cores != 0 {
                let frame = QemuVirt.redistributor(ofCore: cores.trailingZeroBitCount)
                cores &= cores - 1
                try tables.map(virtual: frame, physical: frame, size: QemuVirt.gicRedistributorSize, attributes: .device)
            }
            try tables.map(
                virtual: cmk_image_start(), physical: cmk_image_start(),
                size: cmk_rodata_start() - cmk_image_start(), attributes: .kernelText)
            try tables.map(
                virtual: cmk_rodata_start(), physical: cmk_rodata_start(),
                size: cmk_image_ro_end() - cmk_rodata_start(), attributes: .readOnly)
            try tables.map(
                virtual: Machine.bootInfoAddress, physical: Machine.bootInfoAddress,
                size: pageAlign(UInt64(info.byteCount)), attributes: .readOnly)
            // The root task's file image as QEMU loaded it, read-only: the
            // kernel copies it into the cluster's own frames.
            if let rootTask = info.rootTask {
                try tables.map(
                    virtual: rootTask.physicalAddress, physical: rootTask.physicalAddress,
                    size: pageAlign(rootTask.fileSize), attributes: .readOnly)
            }
            // Of the channel region, only the control page and the rings
            // this cluster sends or receives on (each ring is whole pages):
            // it cannot read or forge traffic between two other clusters.
            try tables.map(
                virtual: info.channel.base, physical: info.channel.base,
                size: ChannelControl.size, attributes: .readWrite)
            for peer in 0..<info.clusterCount where peer != c {
                for direction in 0..<2 {
                    let offset = direction == 0
                        ? channelLayout.ringOffset(from: c, to: peer) : channelLayout.ringOffset(from: peer, to: c)
                    try tables.map(
                        virtual: info.channel.base + UInt64(offset), physical: info.channel.base + UInt64(offset),
                        size: UInt64(channelLayout.ringStride), attributes: .readWrite)
                }
            }
            if info.guest.size > 0 {
                try tables.map(
                    virtual: info.guest.base, physical: info.guest.base,
                    size: info.guest.size, attributes: .readWrite)
            }
            // The private area at PRIVATE_BASE, all of it but the guard pages.
            func mapPrivate(_ from: UInt64, _ to: UInt64) throws(MapError) {
                try tables.map(
                    virtual: Machine.privateBase + from, physical: partition.base + from,
                    size: to - from, attributes: .readWrite)
            }
            try mapPrivate(0, layout.stacksOffset)
            for i in 0..<descriptor.coreCount {
                try mapPrivate(layout.lowGuardOffset(i) + PartitionLayout.guardSize, layout.highGuardOffset(i))
                try mapPrivate(layout.highGuardOffset(i) + PartitionLayout.guardSize, layout.kernelStackTop(i))
            }
            try mapPrivate(layout.tablesOffset, layout.freeOffset)
            // The whole partition again at its physical address: the
            // cluster's free (untyped) memory is reached with VA = PA.
            try tables.map(
                virtual: partition.base, physical: partition.base, size: partition.size,
                attributes: .readWrite)
        } catch {
            panic(error.message)
        }
        record[ClusterRecord.rootTable] = tables.root
        record[ClusterRecord.tablesUsed] = UInt64(tables.tablesUsed)

        // 4. Check what we built: nothing of another partition, image read-only.
        checkIsolation(tables, cluster: c, info: info, channelLayout: channelLayout)

        // 5. The guest's stage 2 in this cluster: the guest region at IPA =
        // PA and nothing else (devices stay unmapped, so every access to them
        // traps and is emulated or refused). Every cluster builds its own,
        // for the same region and VMID (docs/guest.md).
        if info.guest.size > 0 {
            var stage2 = TranslationTables(
                poolPhysical: partition.base + layout.stage2Offset,
                pool: base + Int(layout.stage2Offset), size: PartitionLayout.stage2PoolSize, regime: .stage2)
            do {
                try stage2.map(
                    virtual: info.guest.base, physical: info.guest.base, size: info.guest.size,
                    attributes: .guestRAM)
            } catch {
                panic(error.message)
            }
            var outside: UInt64 = 0
            var leaks = false
            stage2.forEachLeaf { leaf in
                if !info.guest.contains(Region(base: leaf.physical, size: leaf.size)) {
                    if !leaks { outside = leaf.virtual }
                    leaks = true
                }
            }
            if leaks { panic("guest stage 2 maps memory outside the guest region, at IPA", outside) }
            record[ClusterRecord.stage2Root] = stage2.root
        }

        for i in 0..<descriptor.coreCount {
            let state = (base + Int(layout.coreStateOffset(i))).assumingMemoryBound(to: UInt64.self)
            let core = descriptor.core(at: i)
            state[CoreState.emergencyTop] = Machine.privateBase + layout.emergencyStackTop(i)
            state[CoreState.coreId] = UInt64(core)
            state[CoreState.clusterId] = UInt64(c)
            state[CoreState.indexInCluster] = UInt64(i)
            state[CoreState.mpidr] = QemuVirt.mpidr(ofCore: core)
            state[CoreState.kernelStackTop] = Machine.privateBase + layout.kernelStackTop(i)
            state[CoreState.state] = CoreRunState.off
            state[CoreState.startTTBR] = tables.root
            state[CoreState.startSP] = Machine.privateBase + layout.kernelStackTop(i)
            state[CoreState.startTPIDR] = Machine.privateBase + layout.coreStateOffset(i)
            state[CoreState.startEntry] = cmk_cluster_entry_address()
            state[CoreState.startArg] = Machine.privateBase + layout.coreStateOffset(i)
        }

        // Cores that start with their MMU off read memory uncached: push
        // everything written here to the point of coherency.
        CPU.cleanToPoC(partition.base, size: layout.freeOffset)

        Console.put("cmk: loader cluster ")
        Console.decimal(c)
        Console.put(" partition=")
        Console.hexRange(partition.base, partition.end)
        Console.put(" tables=")
        Console.decimal(tables.tablesUsed)
        Console.put(" isolated")
        Console.end()
    }

    /// Every leaf of cluster `c`'s tables must lie in a region the cluster
    /// may see; none may touch another cluster's partition; of the channel
    /// region only the control page and the cluster's own rings; of the
    /// devices only what `QemuVirt.clusterMayMapDevice` allows, as device
    /// memory; the image and the boot information must be read-only.
    static func checkIsolation(_ tables: TranslationTables, cluster c: Int, info: BootInfo, channelLayout: ChannelLayout) {
        let own = info.clusters[c].partition
        let image = Region(base: cmk_image_start(), size: cmk_image_ro_end() - cmk_image_start())
        let bootInfo = Region(base: Machine.bootInfoAddress, size: pageAlign(UInt64(info.byteCount)))
        let rootTask = RootTaskImage.window
        var violation: UInt64 = 0
        var found = false
        tables.forEachLeaf { leaf in
            let target = Region(base: leaf.physical, size: leaf.size)
            for d in 0..<info.clusterCount where d != c && info.clusters[d].partition.overlaps(target) {
                if !found { violation = leaf.virtual }
                found = true
            }
            let allowed =
                own.contains(target)
                || (info.channel.contains(target)
                    && channelLayout.clusterMayMap(c, offset: Int(target.base - info.channel.base), size: Int(target.size)))
                || (info.guest.size > 0 && info.guest.contains(target))
                || (leaf.attributes == .device
                    && QemuVirt.clusterMayMapDevice(
                        base: target.base, size: target.size, coreMask: info.clusters[c].coreMask,
                        ownsDistributor: c == distributorOwner))
                || ((image.contains(target) || bootInfo.contains(target) || rootTask.contains(target))
                    && !leaf.attributes.writable)
            if !allowed {
                if !found { violation = leaf.virtual }
                found = true
            }
        }
        if found { panic("cluster tables map memory the cluster does not own, at VA", violation) }
    }

    static func startFirstCore(of c: Int, info: BootInfo, privateImageSize: UInt64) {
        let descriptor = info.clusters[c]
        let layout = PartitionLayout(privateImageSize: privateImageSize, coreCount: descriptor.coreCount)
        let startRecord = descriptor.partition.base + layout.coreStateOffset(0)
            + UInt64(CoreState.startRecordByteOffset)
        let result = PSCI.startCore(
            mpidr: QemuVirt.mpidr(ofCore: descriptor.firstCore),
            entry: cmk_secondary_entry_address(), context: startRecord)
        guard result == .success else {
            panic("PSCI CPU_ON failed (does QEMU have every core of the topology?) for core", decimal: descriptor.firstCore)
        }
    }

    /// The boot core becomes the first core of its own cluster.
    static func enter(cluster c: Int, info: BootInfo, privateImageSize: UInt64) -> Never {
        let descriptor = info.clusters[c]
        let layout = PartitionLayout(privateImageSize: privateImageSize, coreCount: descriptor.coreCount)
        let state = pointer(descriptor.partition.base + layout.coreStateOffset(0))
            .assumingMemoryBound(to: UInt64.self)
        cmk_enter_cluster(
            state[CoreState.startTTBR], state[CoreState.startSP], state[CoreState.startTPIDR],
            state[CoreState.startEntry], state[CoreState.startArg])
        while true {}
    }

    static func zero(_ start: UnsafeMutableRawPointer, bytes: Int) {
        var offset = 0
        while offset + 8 <= bytes {
            start.storeBytes(of: 0, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        while offset < bytes {
            start.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
    }

    static func pageAlign(_ x: UInt64) -> UInt64 { (x + Machine.pageSize - 1) & ~(Machine.pageSize - 1) }
}

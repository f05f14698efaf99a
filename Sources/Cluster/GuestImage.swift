/// Where the host loaded a Linux guest, carried in the boot information
/// after the cluster records and the experiment (`cmk guest`).
///
/// QEMU loads the blobs (`-device loader`) into the topology's guest region;
/// the kernel parses no file format, it only checks these ranges and starts
/// vCPU 0 at `kernel.base` with x0 = `deviceTree.base` (Linux's arm64 boot
/// protocol: text_offset 0, 2 MiB aligned, "anywhere in RAM").
///
/// Encoding (8 words): kernelBase, kernelSize, dtbBase, dtbSize, initrdBase,
/// initrdSize, placement, vcpuCount. A boot without a guest carries none
/// (header word 16 = 0).
public struct GuestImage: Equatable, Sendable {
    public static let wordCount = 8
    /// Linux's arm64 limit on the device tree blob.
    public static let maxDeviceTreeSize: UInt64 = 2 << 20
    /// Linux's arm64 Image must start on a 2 MiB boundary.
    public static let kernelAlignment: UInt64 = 2 << 20

    /// Where each vCPU runs: one per cluster (the seed's model) or one per
    /// core (a cluster's vCPUs share its kernel and its big lock).
    public enum Placement: UInt64, Sendable {
        case cluster = 1
        case core = 2
    }

    /// The kernel Image, `size` = the header's image_size (includes BSS).
    public var kernel: Region
    public var deviceTree: Region
    /// Size 0: no initramfs.
    public var initrd: Region
    public var placement: Placement
    public var vcpuCount: Int

    public init(kernel: Region, deviceTree: Region, initrd: Region, placement: Placement, vcpuCount: Int) {
        self.kernel = kernel
        self.deviceTree = deviceTree
        self.initrd = initrd
        self.placement = placement
        self.vcpuCount = vcpuCount
    }

    public var words: InlineArray<8, UInt64> {
        var w = InlineArray<8, UInt64>(repeating: 0)
        w[0] = kernel.base
        w[1] = kernel.size
        w[2] = deviceTree.base
        w[3] = deviceTree.size
        w[4] = initrd.base
        w[5] = initrd.size
        w[6] = placement.rawValue
        w[7] = UInt64(vcpuCount)
        return w
    }

    /// Decode 8 words (shape only; `check(guestRegion:)` checks placement).
    public init?(words w: (Int) -> UInt64) {
        guard let placement = Placement(rawValue: w(6)), w(7) >= 1, w(7) <= UInt64(Machine.maxCores) else {
            return nil
        }
        self.init(
            kernel: Region(base: w(0), size: w(1)), deviceTree: Region(base: w(2), size: w(3)),
            initrd: Region(base: w(4), size: w(5)), placement: placement, vcpuCount: Int(w(7)))
    }

    /// Every blob inside the guest region, none overlapping, the kernel
    /// 2 MiB aligned, the device tree 8-byte aligned and at most 2 MiB.
    public func fits(in guest: Region) -> Bool {
        guard guest.size != 0, kernel.size != 0, kernel.base % Self.kernelAlignment == 0,
            guest.contains(kernel), kernel.end > kernel.base
        else { return false }
        guard deviceTree.size != 0, deviceTree.size <= Self.maxDeviceTreeSize, deviceTree.base % 8 == 0,
            guest.contains(deviceTree), !deviceTree.overlaps(kernel)
        else { return false }
        if initrd.size != 0 {
            guard guest.contains(initrd), !initrd.overlaps(kernel), !initrd.overlaps(deviceTree) else { return false }
        } else if initrd.base != 0 {
            return false
        }
        return true
    }
}

/// Where each vCPU of the guest runs: the one definition the loader, the
/// kernel and the host's device tree share (docs/guest.md, "Placement").
///
/// vCPUs are numbered cluster by cluster, and inside a cluster core by core:
///   `.cluster`: vCPU c runs on the first core of cluster c (c < vcpuCount);
///   `.core`:    cluster c runs vCPUs first(c) ..< first(c) + cores(c), vCPU
///               first(c) + j on its core j (j-th in increasing core id).
/// Either way every vCPU belongs to one NUMA node: its cluster.
///
/// - Invariant: `init` accepts only maps where every vCPU 0..<vcpuCount has
///   exactly one home, and `.core` covers every core of every cluster.
/// Fixed size, no heap: the kernel builds one from its boot information.
public struct GuestVCPUMap: Equatable, Sendable {
    public static let maxClusters = 64
    public let placement: GuestImage.Placement
    public let vcpuCount: Int
    public let clusterCount: Int
    /// Cores per cluster (cluster placement: 1 for each cluster that runs a vCPU).
    private var vcpusPerCluster: InlineArray<64, UInt8>

    /// `coresIn(c)`: how many cores cluster c has (1...64).
    public init?(placement: GuestImage.Placement, vcpuCount: Int, clusterCount: Int, coresIn: (Int) -> Int) {
        guard clusterCount >= 1, clusterCount <= Self.maxClusters, vcpuCount >= 1, vcpuCount <= Machine.maxCores else {
            return nil
        }
        var table = InlineArray<64, UInt8>(repeating: 0)
        var total = 0
        for c in 0..<clusterCount {
            let cores = coresIn(c)
            guard cores >= 1, cores <= Machine.maxCores else { return nil }
            let n = placement == .core ? cores : (c < vcpuCount ? 1 : 0)
            table[c] = UInt8(n)
            total += n
        }
        guard total == vcpuCount else { return nil }
        self.placement = placement
        self.vcpuCount = vcpuCount
        self.clusterCount = clusterCount
        self.vcpusPerCluster = table
    }

    public static func == (a: GuestVCPUMap, b: GuestVCPUMap) -> Bool {
        guard a.placement == b.placement, a.vcpuCount == b.vcpuCount, a.clusterCount == b.clusterCount else {
            return false
        }
        for c in 0..<a.clusterCount where a.vcpusPerCluster[c] != b.vcpusPerCluster[c] { return false }
        return true
    }

    /// The vCPUs cluster `c` runs (empty if none, or c out of range).
    public func vcpus(inCluster c: Int) -> Range<Int> {
        guard c >= 0, c < clusterCount else { return 0..<0 }
        var first = 0
        for i in 0..<c { first += Int(vcpusPerCluster[i]) }
        return first..<(first + Int(vcpusPerCluster[c]))
    }

    /// vCPU `v`'s cluster and core (index in the cluster), or nil if no such vCPU.
    public func home(ofVCPU v: Int) -> (cluster: Int, core: Int)? {
        guard v >= 0, v < vcpuCount else { return nil }
        var first = 0
        for c in 0..<clusterCount {
            let n = Int(vcpusPerCluster[c])
            if v < first + n { return (c, v - first) }
            first += n
        }
        return nil
    }

    /// The vCPU count a placement gives (cluster: one per cluster; core: one per core).
    public static func vcpuCount(placement: GuestImage.Placement, clusterCount: Int, coresIn: (Int) -> Int) -> Int {
        guard placement == .core else { return clusterCount }
        var total = 0
        for c in 0..<clusterCount { total += coresIn(c) }
        return total
    }
}

import Cluster

/// Where the guest's blobs go inside the topology's guest region (which is
/// the guest's RAM, at IPA = PA):
///
///     guest.base (2 MiB aligned)   kernel Image: header image_size bytes
///                                  (BSS included; text_offset 0)
///     ...                          free: the guest's own memory
///     below the initramfs          device tree blob (page aligned; Linux
///                                  needs 8 bytes and at most 2 MiB)
///     guest.end - initrd (4 KiB)   initramfs, at the top
///
/// The kernel low and the blobs high leave one free run between them: Linux
/// reserves its image, the initramfs and the DTB itself and uses the rest.
public struct GuestLayout: Equatable, Sendable {
    public static let initrdAlignment: UInt64 = 4096
    public static let deviceTreeAlignment: UInt64 = 4096
    /// Refuse a layout that leaves the guest less than this between its
    /// kernel and its blobs: Linux would not get far (unpacking the
    /// initramfs alone needs a few times its size).
    public static let minimumFree: UInt64 = 32 << 20

    public var guest: Region
    public var kernel: Region
    public var initrd: Region
    public var deviceTree: Region

    /// Free memory between the kernel and the lowest blob.
    public var free: UInt64 { deviceTree.base - kernel.end }

    /// The initramfs placement alone (the device tree names its range, so it
    /// comes first): at the top of the guest region, 4 KiB aligned.
    public static func initrd(size: UInt64, guest: Region) throws(GuestHostError) -> Region {
        guard size != 0 else { return Region(base: 0, size: 0) }
        guard size < guest.size else {
            throw .badInput("the initramfs (\(mib(size))) does not fit in the guest region (\(mib(guest.size)))")
        }
        return Region(base: (guest.end - size) & ~(initrdAlignment - 1), size: size)
    }

    /// Place the kernel (its header's `image_size`) and the device tree
    /// (`deviceTreeSize` bytes) around an initramfs already placed by
    /// `initrd(size:guest:)`.
    public init(guest: Region, imageSize: UInt64, initrd: Region, deviceTreeSize: UInt64) throws(GuestHostError) {
        guard guest.size != 0 else {
            throw .badInput("the topology has no guest region: add `guest = \"256M\"` under [shared]")
        }
        guard guest.base % GuestImage.kernelAlignment == 0 else {
            throw .badInput("the guest region 0x\(String(guest.base, radix: 16)) is not 2 MiB aligned")
        }
        guard deviceTreeSize != 0, deviceTreeSize <= GuestImage.maxDeviceTreeSize else {
            throw .badInput("the guest device tree is \(deviceTreeSize) bytes; Linux accepts at most 2 MiB")
        }
        self.guest = guest
        kernel = Region(base: guest.base, size: imageSize)
        self.initrd = initrd
        let top = initrd.size == 0 ? guest.end : initrd.base
        guard top >= deviceTreeSize else {
            throw .badInput("the guest device tree does not fit below the initramfs")
        }
        deviceTree = Region(base: (top - deviceTreeSize) & ~(Self.deviceTreeAlignment - 1), size: deviceTreeSize)
        let needed = imageSize + Self.minimumFree + (guest.end - deviceTree.base)
        guard deviceTree.base >= kernel.end, deviceTree.base - kernel.end >= Self.minimumFree else {
            throw .badInput("the guest does not fit in the guest region (\(Self.mib(guest.size)) at 0x\(String(guest.base, radix: 16))): kernel \(Self.mib(imageSize)) (image_size, with BSS) + initramfs \(Self.mib(initrd.size)) + device tree + at least \(Self.mib(Self.minimumFree)) free for Linux = \(Self.mib(needed)); make `guest` under [shared] larger")
        }
    }

    /// The record that goes into the boot information.
    public func image(placement: GuestImage.Placement = .cluster, vcpuCount: Int = 1) -> GuestImage {
        GuestImage(kernel: kernel, deviceTree: deviceTree, initrd: initrd, placement: placement, vcpuCount: vcpuCount)
    }

    static func mib(_ bytes: UInt64) -> String {
        if bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes < 1 << 20 { return bytes % 1024 == 0 ? "\(bytes >> 10) KiB" : "\(bytes) B" }
        return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
    }

    /// The layout as a table (`cmk guest` prints it on stderr).
    public var description: String {
        func row(_ what: String, _ r: Region) -> String {
            "  0x\(String(r.base, radix: 16))-0x\(String(r.end, radix: 16))  \(Self.mib(r.size).padding(toLength: 10, withPad: " ", startingAt: 0))  \(what)"
        }
        var rows = [row("kernel Image (image_size)", kernel),
                    row("free for the guest", Region(base: kernel.end, size: free)),
                    row("device tree", deviceTree)]
        if initrd.size != 0 { rows.append(row("initramfs", initrd)) }
        return "guest memory 0x\(String(guest.base, radix: 16))-0x\(String(guest.end, radix: 16)) (\(Self.mib(guest.size))):\n" + rows.joined(separator: "\n")
    }
}

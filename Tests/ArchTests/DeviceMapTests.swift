import Testing

@testable import Arch

/// What a cluster may map of QEMU virt's devices (the loader's isolation walk
/// asks `clusterMayMapDevice` of every device leaf).
@Suite struct DeviceMapTests {
    let page: UInt64 = 0x1000

    func may(_ base: UInt64, _ size: UInt64 = 0x1000, cores: UInt64, owner: Bool = false) -> Bool {
        QemuVirt.clusterMayMapDevice(base: base, size: size, coreMask: cores, ownsDistributor: owner)
    }

    @Test func theUARTEveryCluster() {
        #expect(may(QemuVirt.uart, cores: 0b1100))
        #expect(!may(QemuVirt.uart, 2 * page, cores: 0b1100))  // the page after it is not the UART
    }

    @Test func theDistributorOnlyItsOwner() {
        #expect(may(QemuVirt.gicDistributor, QemuVirt.gicDistributorSize, cores: 0b11, owner: true))
        #expect(!may(QemuVirt.gicDistributor, cores: 0b1100, owner: false))
    }

    @Test func onlyItsOwnCoresRedistributors() {
        // Cores 2 and 3 (cluster 1 of the default topology).
        for core in 0..<24 {
            let frame = QemuVirt.redistributor(ofCore: core)
            let own = core == 2 || core == 3
            #expect(may(frame, QemuVirt.gicRedistributorSize, cores: 0b1100) == own, "core \(core)")
            #expect(may(frame + 0x1_0000, page, cores: 0b1100) == own, "core \(core) SGI frame")
        }
        // A range that runs from our frame into the next core's.
        #expect(!may(QemuVirt.redistributor(ofCore: 3), 2 * QemuVirt.gicRedistributorSize, cores: 0b1100))
        #expect(QemuVirt.redistributor(ofCore: 0) == 0x080A_0000 && QemuVirt.redistributor(ofCore: 2) == 0x080E_0000)
    }

    /// Devices that write memory by DMA, and the rest of the window.
    @Test func nothingElse() {
        for base: UInt64 in [0x0808_0000 /* GIC ITS */, 0x0902_0000 /* fw_cfg */, 0x0A00_0000 /* virtio-mmio */,
                             0x0901_0000 /* RTC */, 0x0903_0000 /* GPIO */, 0x0800_0000 + 0x1_0000] {
            #expect(!may(base, cores: ~0, owner: true), "\(String(base, radix: 16))")
        }
        #expect(!may(0, 0, cores: ~0, owner: true))
        #expect(!may(~0 - 10, page, cores: ~0, owner: true))
    }
}

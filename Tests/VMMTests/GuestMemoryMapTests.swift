import Testing
import VMM

@Suite struct GuestMemoryMapTests {
    static let ramBase: UInt64 = 0x5120_0000
    static let ramSize: UInt64 = 0x1000_0000

    func map(vcpus: Int = 4) -> GuestMemoryMap {
        GuestMemoryMap(ramBase: Self.ramBase, ramSize: Self.ramSize, vcpus: vcpus)!
    }

    @Test func qemuVirtConstants() {
        #expect(GuestMemoryMap.distributorBase == 0x0800_0000)
        #expect(GuestMemoryMap.distributorSize == 0x1_0000)
        #expect(GuestMemoryMap.redistributorBase == 0x080A_0000)
        #expect(GuestMemoryMap.redistributorStride == 0x2_0000)
        #expect(GuestMemoryMap.uartBase == 0x0900_0000)
        #expect(GuestMemoryMap.uartSize == 0x1000)
        #expect(GuestMemoryMap.uartInterruptID == 33)
    }

    @Test func ram() {
        let m = map()
        #expect(m.classify(Self.ramBase) == .ram(offset: 0))
        #expect(m.classify(Self.ramBase + Self.ramSize - 1) == .ram(offset: Self.ramSize - 1))
        #expect(m.classify(Self.ramBase + Self.ramSize) == .unmapped)
        #expect(m.classify(Self.ramBase - 1) == .unmapped)
    }

    @Test func distributor() {
        let m = map()
        #expect(m.classify(0x0800_0000) == .gicDistributor(offset: 0))
        #expect(m.classify(0x0800_FFFC) == .gicDistributor(offset: 0xFFFC))
        #expect(m.classify(0x0801_0000) == .unmapped)
        #expect(m.classify(0x07FF_FFFF) == .unmapped)
    }

    @Test func redistributors() {
        let m = map(vcpus: 4)
        #expect(m.classify(0x080A_0000) == .gicRedistributor(vcpu: 0, offset: 0))
        #expect(m.classify(0x080A_0008) == .gicRedistributor(vcpu: 0, offset: 8))         // GICR_TYPER
        #expect(m.classify(0x080B_0080) == .gicRedistributor(vcpu: 0, offset: 0x1_0080))  // SGI_base IGROUPR0
        #expect(m.classify(0x080C_0000) == .gicRedistributor(vcpu: 1, offset: 0))
        #expect(m.classify(0x0811_FFFF) == .gicRedistributor(vcpu: 3, offset: 0x1_FFFF))
        #expect(m.classify(0x0812_0000) == .unmapped)  // vCPU 4's frame: this guest has 4
        #expect(map(vcpus: 5).classify(0x0812_0000) == .gicRedistributor(vcpu: 4, offset: 0))
        #expect(map(vcpus: 64).classify(0x080A_0000 + 63 * 0x2_0000 + 4) == .gicRedistributor(vcpu: 63, offset: 4))
        #expect(m.classify(0x0809_FFFF) == .unmapped)  // between GICD and GICR
    }

    @Test func uart() {
        let m = map()
        #expect(m.classify(0x0900_0000) == .uart(offset: 0))
        #expect(m.classify(0x0900_0FFC) == .uart(offset: 0xFFC))
        #expect(m.classify(0x0900_1000) == .unmapped)
        #expect(m.classify(0x08FF_FFFF) == .unmapped)
    }

    @Test func unmapped() {
        let m = map()
        for ipa: UInt64 in [0, 0x0A00_0000, 0x1000_0000, 0x4000_0000, 0xFF_FFFF_F000, UInt64.max] {
            #expect(m.classify(ipa) == .unmapped, "ipa \(ipa)")
        }
    }

    @Test func invalidMaps() {
        #expect(GuestMemoryMap(ramBase: Self.ramBase, ramSize: Self.ramSize, vcpus: 0) == nil)
        #expect(GuestMemoryMap(ramBase: Self.ramBase, ramSize: Self.ramSize, vcpus: 65) == nil)
        #expect(GuestMemoryMap(ramBase: Self.ramBase, ramSize: 0, vcpus: 1) == nil)
        #expect(GuestMemoryMap(ramBase: UInt64.max, ramSize: 2, vcpus: 1) == nil)
        // RAM over a device region.
        #expect(GuestMemoryMap(ramBase: 0x0800_0000, ramSize: 0x1000, vcpus: 1) == nil)
        #expect(GuestMemoryMap(ramBase: 0, ramSize: 0x0800_0001, vcpus: 1) == nil)
        #expect(GuestMemoryMap(ramBase: 0x0900_0FFF, ramSize: 1, vcpus: 1) == nil)
        #expect(GuestMemoryMap(ramBase: 0x080C_0000, ramSize: 0x1000, vcpus: 2) == nil)  // vCPU 1's GICR
        // Just clear of every device, and RAM to the top of the address space.
        #expect(GuestMemoryMap(ramBase: 0x080C_0000, ramSize: 0x1000, vcpus: 1) != nil)
        #expect(GuestMemoryMap(ramBase: 0, ramSize: 0x0800_0000, vcpus: 1) != nil)
        #expect(GuestMemoryMap(ramBase: 0x0900_1000, ramSize: 0x1000, vcpus: 1) != nil)
        #expect(GuestMemoryMap(ramBase: 0xFFFF_FFFF_FFFF_F000, ramSize: 0x1000, vcpus: 1) != nil)
    }
}

import Testing
import VMM

/// ICC_SGI1R_EL1 from its fields.
func sgi1r(intid: UInt64, targets: UInt64, aff1: UInt64 = 0, aff2: UInt64 = 0, aff3: UInt64 = 0,
           rs: UInt64 = 0, irm: Bool = false) -> UInt64 {
    targets | aff1 << 16 | intid << 24 | aff2 << 32 | (irm ? 1 << 40 : 0) | rs << 44 | aff3 << 48
}

@Suite struct SGIRequestTests {
    @Test func decodesEveryField() {
        let r = SGIRequest(raw: 0x00AB_51CD_07EF_BEEF)
        #expect(r.targetList == 0xBEEF)
        #expect(r.aff1 == 0xEF)
        #expect(r.intid == 7)
        #expect(r.aff2 == 0xCD)
        #expect(r.broadcast)
        #expect(r.rangeSelector == 5)
        #expect(r.aff3 == 0xAB)
        let s = SGIRequest(raw: sgi1r(intid: 15, targets: 1, aff1: 2, aff2: 3, aff3: 4, rs: 15))
        #expect(s.intid == 15 && s.targetList == 1 && s.aff1 == 2 && s.aff2 == 3 && s.aff3 == 4)
        #expect(s.rangeSelector == 15 && !s.broadcast)
    }

    @Test func targetListWithinOneCluster() {
        let topo = VCPUTopology(count: 4)
        let r = SGIRequest(raw: sgi1r(intid: 1, targets: 0b1010))
        #expect(r.targets(sender: 0, topology: topo) == 0b1010)
        // Naming yourself without IRM is allowed.
        #expect(SGIRequest(raw: sgi1r(intid: 1, targets: 0b1)).targets(sender: 0, topology: topo) == 0b1)
        // Aff0 values no vCPU has add nothing.
        #expect(SGIRequest(raw: sgi1r(intid: 1, targets: 0xFFF0)).targets(sender: 0, topology: topo) == 0)
    }

    @Test func aff1SelectsTheSecondGroupOf16() {
        let topo = VCPUTopology(count: 20)      // vCPU 16..19: Aff1 = 1, Aff0 = 0..3
        let r = SGIRequest(raw: sgi1r(intid: 2, targets: 0b0110, aff1: 1))
        #expect(r.targets(sender: 0, topology: topo) == (1 << 17) | (1 << 18))
        // The same target list with Aff1 = 0 means vCPUs 1 and 2.
        #expect(SGIRequest(raw: sgi1r(intid: 2, targets: 0b0110)).targets(sender: 0, topology: topo) == 0b110)
    }

    @Test func broadcastIsAllButSender() {
        let topo = VCPUTopology(count: 64)
        let r = SGIRequest(raw: sgi1r(intid: 0, targets: 0, aff1: 3, irm: true))
        #expect(r.targets(sender: 5, topology: topo) == ~UInt64(1 << 5))
        #expect(r.targets(sender: 63, topology: topo) == ~UInt64(0) >> 1)
        #expect(r.targets(sender: 0, topology: VCPUTopology(count: 1)) == 0)
    }

    @Test func rangeSelectorAff2AndAff3() {
        var topo = VCPUTopology(count: 4)
        topo.setMPIDR(0x00_0000_0012, forVCPU: 1)   // Aff0 = 18: RS = 1, bit 2
        topo.setMPIDR(0x00_0005_0000, forVCPU: 2)   // Aff2 = 5
        topo.setMPIDR(0x09_0000_0100, forVCPU: 3)   // Aff3 = 9, Aff1 = 1
        #expect(SGIRequest(raw: sgi1r(intid: 3, targets: 1 << 2, rs: 1)).targets(sender: 0, topology: topo) == 0b0010)
        #expect(SGIRequest(raw: sgi1r(intid: 3, targets: 1 << 2, rs: 0)).targets(sender: 0, topology: topo) == 0)
        #expect(SGIRequest(raw: sgi1r(intid: 3, targets: 1, aff2: 5)).targets(sender: 0, topology: topo) == 0b0100)
        #expect(SGIRequest(raw: sgi1r(intid: 3, targets: 1, aff1: 1, aff3: 9)).targets(sender: 0, topology: topo) == 0b1000)
        #expect(SGIRequest(raw: sgi1r(intid: 3, targets: 1, aff1: 1)).targets(sender: 0, topology: topo) == 0)
        #expect(SGIRequest(raw: sgi1r(intid: 3, targets: 1)).targets(sender: 1, topology: topo) == 0b0001)
    }

    @Test func defaultTopologyIsQEMUVirt() {
        let topo = VCPUTopology(count: 64)
        #expect(topo.mpidr(ofVCPU: 0) == 0)
        #expect(topo.mpidr(ofVCPU: 15) == 0x0F)
        #expect(topo.mpidr(ofVCPU: 16) == 0x100)
        #expect(topo.mpidr(ofVCPU: 63) == 0x30F)
        #expect(topo.vcpu(withAffinity: 0x8000_0201) == 33)
        #expect(topo.allVCPUs == ~0)
        #expect(VCPUTopology(count: 100).count == 64)
        #expect(VCPUTopology(count: 3).allVCPUs == 0b111)
    }
}

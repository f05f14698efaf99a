import Testing
@testable import VMM

/// A whole virtual GIC: one distributor and a redistributor per vCPU, with
/// the messages passed at once (as when they share a cluster) or held back
/// (as across clusters) by the test.
struct GICHarness {
    var dist: VirtualDistributor
    var vcpus: [VirtualRedistributor]
    var lrs: [ListRegisterFile]

    init(vcpus n: Int, lrCount: Int = 4) {
        let topo = VCPUTopology(count: n)
        dist = VirtualDistributor(spiCount: 32, topology: topo)
        vcpus = (0..<n).map { VirtualRedistributor(vcpu: $0, topology: topo) }
        lrs = Array(repeating: ListRegisterFile(count: lrCount), count: n)
    }

    /// Distributor messages to the vCPUs, in order.
    mutating func deliver() {
        while let m = dist.nextMessage() { vcpus[m.vcpu].accept(m) }
    }

    /// An exit of vCPU `v`: sync, then reports to the distributor, then its messages.
    mutating func exit(_ v: Int) {
        vcpus[v].sync(lrs[v])
        while let r = vcpus[v].nextReport() { dist.accept(r) }
        deliver()
    }

    @discardableResult
    mutating func enter(_ v: Int) -> FlushResult { vcpus[v].flush(into: &lrs[v]) }

    func lr(_ v: Int, _ i: Int) -> ListRegister { ListRegister(raw: lrs[v][i]) }

    mutating func guest(_ v: Int, _ i: Int, _ state: ListRegister.State) {
        var x = ListRegister(raw: lrs[v][i]); x.state = state; lrs[v][i] = x.raw
    }

    /// Linux's boot sequence for SPI 33 (UART, level) routed to `target`.
    mutating func bootUART(target: Int) {
        _ = dist.access(offset: 0x0000, size: 4, isWrite: true, value: 0x13)
        _ = dist.access(offset: 0x0421, size: 1, isWrite: true, value: 0xA0)
        _ = dist.access(offset: 0x6000 + 33 * 8, size: 8, isWrite: true, value: vcpus[target].mpidr)
        _ = dist.access(offset: 0x0104, size: 4, isWrite: true, value: 0x2)
        deliver()
    }
}

@Suite struct VirtualGICTests {
    @Test func uartInterruptRoundTripOnSecondVCPU() {
        var g = GICHarness(vcpus: 2)
        g.bootUART(target: 1)
        #expect(g.vcpus[0].group1Enabled && g.vcpus[1].group1Enabled)
        g.dist.setLevel(intid: 33, high: true)
        g.deliver()
        #expect(g.enter(0).used == 0)
        #expect(g.enter(1).used == 1)
        #expect(g.lr(1, 0) == ListRegister(virtualID: 33, priority: 0xA0, state: .pending, eoiMaintenance: true))
        // Guest acknowledges; exit for the UART register access; the handler
        // drains the UART (line low); guest deactivates; EOI maintenance exit.
        g.guest(1, 0, .active)
        g.exit(1)
        #expect(g.dist.isActive(intid: 33))
        g.dist.setLevel(intid: 33, high: false)
        g.deliver()
        g.enter(1)
        #expect(g.lr(1, 0).state == .active)
        g.guest(1, 0, .invalid)
        g.exit(1)
        #expect(!g.dist.isActive(intid: 33) && !g.dist.isPending(intid: 33))
        #expect(g.enter(1).used == 0)
    }

    @Test func uartLineStillHighIsDeliveredAgain() {
        var g = GICHarness(vcpus: 1)
        g.bootUART(target: 0)
        g.dist.setLevel(intid: 33, high: true)
        g.deliver()
        g.enter(0)
        g.guest(0, 0, .invalid)          // acknowledged and deactivated in one run
        g.exit(0)
        #expect(g.enter(0).used == 1)
        #expect(g.lr(0, 0).virtualID == 33 && g.lr(0, 0).state == .pending)
    }

    /// Across clusters: a second edge crosses the guest's acknowledgement
    /// of the first; it must be delivered once more, not lost.
    @Test func edgeCrossingAnAcknowledgementIsNotLost() {
        var g = GICHarness(vcpus: 2)
        g.bootUART(target: 1)
        _ = g.dist.access(offset: 0x0C08, size: 4, isWrite: true, value: 0x8)   // SPI 33 edge
        g.deliver()
        g.dist.setPending(intid: 33)
        g.deliver()
        g.enter(1)
        g.guest(1, 0, .active)
        // vCPU 1 exits and reports, but the report is still in flight when a
        // new edge reaches the distributor.
        g.vcpus[1].sync(g.lrs[1])
        let report = g.vcpus[1].nextReport()
        #expect(report == SPIReport(vcpu: 1, intid: 33, sequence: 1, pending: false, active: true))
        g.dist.setPending(intid: 33)
        var held: [DistributorMessage] = []
        while let m = g.dist.nextMessage() { held.append(m) }
        g.dist.accept(report!)
        #expect(g.dist.isPending(intid: 33))
        for m in held { g.vcpus[1].accept(m) }
        g.deliver()
        let res = g.enter(1)
        #expect(res.used == 1)
        #expect(g.lr(1, 0).state == .pendingAndActive)
    }

    @Test func ipiFromSGI1R() {
        var g = GICHarness(vcpus: 3)
        g.bootUART(target: 0)
        for v in 0..<3 { _ = g.vcpus[v].access(offset: 0x10100, size: 4, isWrite: true, value: 0xFFFF) }
        let req = SGIRequest(raw: 1 << 40 | 3 << 24)     // SGI 3 to all but the sender
        let mask = req.targets(sender: 1, topology: g.dist.topology)
        for v in 0..<3 where mask & (1 << UInt64(v)) != 0 { g.vcpus[v].setPending(intid: req.intid) }
        #expect(g.enter(0).used == 1 && g.enter(2).used == 1 && g.enter(1).used == 0)
        #expect(g.lr(2, 0).virtualID == 3)
    }

    /// A seeded random run: the guest takes interrupts at random, devices
    /// toggle lines and fire edges, messages are delivered at once. At the end
    /// the guest finishes everything with the lines low: nothing may stay
    /// pending or active anywhere, and every edge since the last quiet point
    /// has been seen.
    @Test func randomRunSettles() {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed }
        var g = GICHarness(vcpus: 2, lrCount: 2)
        g.bootUART(target: 0)
        _ = g.dist.access(offset: 0x0104, size: 4, isWrite: true, value: 0xFF)      // SPIs 32..39
        _ = g.dist.access(offset: 0x0C08, size: 4, isWrite: true, value: 0xAA00)    // 36..39 edge
        for v in 0..<2 { _ = g.vcpus[v].access(offset: 0x10100, size: 4, isWrite: true, value: 0xFFFF_FFFF) }
        g.deliver()
        for step in 0..<3000 {
            let r = next()
            let v = Int(r & 1)
            switch (r >> 1) % 8 {
            case 0: g.dist.setLevel(intid: 32 + Int((r >> 8) % 4), high: (r >> 12) & 1 == 1); g.deliver()
            case 1: g.dist.setPending(intid: 36 + Int((r >> 8) % 4)); g.deliver()
            case 2: g.vcpus[v].setPending(intid: Int((r >> 8) % 16))
            case 3: _ = g.dist.access(offset: 0x6000 + (32 + Int((r >> 8) % 8)) * 8, size: 8, isWrite: true,
                                      value: (r >> 16) & 1); g.deliver()
            default:
                // The guest runs: each LR advances (take or finish) at random.
                g.enter(v)
                for i in 0..<g.lrs[v].used {
                    let s = g.lr(v, i).state
                    let roll = (r >> UInt64(8 + 2 * i)) & 3
                    if roll == 0 { continue }
                    g.guest(v, i, s.isActive ? .invalid : (roll == 1 ? .invalid : .active))
                }
                g.exit(v)
            }
            _ = step
        }
        // Quiesce: lines low; the guest takes and finishes everything.
        for i in 32..<36 { g.dist.setLevel(intid: i, high: false) }
        g.deliver()
        for _ in 0..<50 {
            for v in 0..<2 {
                g.enter(v)
                for i in 0..<g.lrs[v].used { g.guest(v, i, .invalid) }
                g.exit(v)
            }
        }
        for v in 0..<2 {
            #expect(g.enter(v).used == 0, "vcpu \(v)")
            for i in 0..<64 {
                #expect(!g.vcpus[v].isPending(intid: i) && !g.vcpus[v].isActive(intid: i), "vcpu \(v) intid \(i)")
            }
        }
        for i in 32..<64 {
            #expect(!g.dist.isPending(intid: i) && !g.dist.isActive(intid: i), "intid \(i)")
        }
    }

    @Test func edgeCountIsPreservedAcrossClusters() {
        // Each separated edge (the guest finished the previous one) is
        // delivered exactly once, even when every report reaches the
        // distributor only after the next edge did.
        var g = GICHarness(vcpus: 2)
        g.bootUART(target: 1)
        _ = g.dist.access(offset: 0x0C08, size: 4, isWrite: true, value: 0x8)
        g.deliver()
        var deliveries = 0
        var inFlight: [SPIReport] = []
        for _ in 0..<10 {
            g.dist.setPending(intid: 33)
            for r in inFlight { g.dist.accept(r) }
            inFlight = []
            g.deliver()
            if g.enter(1).used == 1 { deliveries += 1; g.guest(1, 0, .invalid) }
            g.vcpus[1].sync(g.lrs[1])
            while let r = g.vcpus[1].nextReport() { inFlight.append(r) }
        }
        for r in inFlight { g.dist.accept(r) }
        g.deliver()
        #expect(deliveries == 10)
        #expect(g.enter(1).used == 0)
        #expect(!g.dist.isPending(intid: 33))
    }

    /// A priority change crossing the guest's acknowledgement refreshes the
    /// vCPU's copy but must not make a consumed edge pending again.
    @Test func refreshDoesNotRepend() {
        var g = GICHarness(vcpus: 2)
        g.bootUART(target: 1)
        _ = g.dist.access(offset: 0x0C08, size: 4, isWrite: true, value: 0x8)   // edge
        g.deliver()
        g.dist.setPending(intid: 33)
        g.deliver()
        g.enter(1)
        g.guest(1, 0, .invalid)
        g.vcpus[1].sync(g.lrs[1])
        let report = g.vcpus[1].nextReport()!
        _ = g.dist.access(offset: 0x0421, size: 1, isWrite: true, value: 0x40)
        g.deliver()                                   // refresh reaches vCPU 1 first
        #expect(g.vcpus[1].priority(intid: 33) == 0x40)
        #expect(!g.vcpus[1].isPending(intid: 33))
        g.dist.accept(report)
        g.deliver()
        #expect(!g.dist.isPending(intid: 33))
        #expect(g.enter(1).used == 0)
    }
}

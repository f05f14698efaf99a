import Testing

@testable import Topology

@Suite struct BootTranscriptTests {
    let good = """
        cmk: loader image=0x40080000-0x40094000 private=128B clusters=2 cores=4
        cmk: cluster 1 private va=0x20000000 pa=0x49000000 value=1 ok
        cmk: cluster 0 private va=0x20000000 pa=0x41000000 value=0 ok
        cmk: cluster 0 user ipc ok
        cmk: cluster 1 user ipc ok
        cmk: cluster 0 lock=ticket stress cores=2 increments=4000 ok
        cmk: cluster 1 lock=ticket stress cores=2 increments=4000 ok
        cmk: cluster 0 user irq ok irq=23 badge=0x23
        cmk: cluster 1 user irq ok irq=23 badge=0x23
        cmk: cluster 0 user preemption ok ticks=6
        cmk: cluster 1 user preemption ok ticks=7
        cmk: cluster 0 user fuzz calls=2000 errors=1500 faults=12 seed=7 ok
        cmk: cluster 1 user fuzz calls=2000 errors=1490 faults=9 seed=8 ok
        cmk: cluster 1 up cores=2,3 data=0x49000000-0x49000080
        cmk: cluster 0 up cores=0,1 data=0x41000000-0x41000080
        cmk: channel 0->1 rtt=1500 ticks
        cmk: channel 1->0 rtt=1700 ticks
        cmk: notify 1->0 badge=0x2 word=0x2 ok
        cmk: notify 0->1 badge=0x1 tries=1 ok
        cmk: boot ok clusters=2 cores=4
        """

    func transcript(_ text: String) -> BootTranscript {
        var t = BootTranscript()
        for line in text.split(separator: "\n") { t.consume(String(line)) }
        return t
    }

    @Test func aCompleteBootPasses() throws {
        let topology = try TopologyLoader.load(text: validTopology, file: "t")
        #expect(transcript(good).problem(against: topology) == nil)
        #expect(transcript(good).userFuzz[1]?.faults == 9)
    }

    @Test func aMissingFuzzLineFails() throws {
        let topology = try TopologyLoader.load(text: validTopology, file: "t")
        let text = good.split(separator: "\n").filter { !$0.contains("cluster 1 user fuzz") }.joined(separator: "\n")
        #expect(transcript(text).problem(against: topology)?.contains("user fuzz") == true)
    }

    /// Every peer below the export limit must signal cluster 0 and have its
    /// answer; peers at 16 and above have no export index and print nothing.
    @Test func everyPeerBelowTheExportLimitSignals() throws {
        var t = BootTranscript()
        for k in 1..<20 {
            if k != 7 { t.consume("cmk: notify \(k)->0 badge=0x\(String(1 << k, radix: 16)) word=0x\(String(1 << k, radix: 16)) ok") }
            t.consume("cmk: notify 0->\(k) badge=0x1 tries=2 ok")
        }
        #expect(t.notifyBadges.count == 19 + 18)
        #expect(t.notifyBadges[.init(9, 0)] == 1 << 9 && t.notifyBadges[.init(0, 9)] == 1)
        #expect(t.notifyBadges[.init(7, 0)] == nil)
    }

    @Test func eachMissingOrWrongLineIsCaught() throws {
        let topology = try TopologyLoader.load(text: validTopology, file: "t")
        let cases: [(String, String)] = [
            (good.replacingOccurrences(of: "cmk: cluster 1 up cores=2,3 data=0x49000000-0x49000080", with: ""), "no `cmk: cluster 1 up` line"),
            (good.replacingOccurrences(of: "up cores=2,3", with: "up cores=2"), "cluster 1 reported cores [2]"),
            (good.replacingOccurrences(of: "pa=0x49000000 value=1", with: "pa=0x49000000 value=0"), "cluster 1 read back 0"),
            (good.replacingOccurrences(of: "pa=0x49000000", with: "pa=0x41000000"), "outside its partition"),
            (good.replacingOccurrences(of: "cmk: boot ok clusters=2 cores=4", with: ""), "no `cmk: boot ok` line"),
            (good.replacingOccurrences(of: "cores=4", with: "cores=3"), "boot ok reports 2 clusters and 3 cores"),
            (good + "\ncmk: panic core=2 cluster=1: boom", "cmk: panic core=2 cluster=1: boom"),
            (good.replacingOccurrences(of: "cmk: channel 1->0 rtt=1700 ticks", with: ""), "no `cmk: channel 1->0"),
            (good.replacingOccurrences(of: "cmk: cluster 1 lock=ticket stress cores=2 increments=4000 ok", with: "cmk: cluster 1 user lock FAILED step=lost-increments error=3999"),
             "no `cmk: cluster 1 lock=... stress ... ok` line"),
            (good.replacingOccurrences(of: "cmk: cluster 0 lock=ticket stress cores=2 increments=4000 ok", with: "cmk: cluster 0 lock=ticket stress cores=1 increments=2000 ok"),
             "cluster 0 checked its lock on 1 cores"),
            (good.replacingOccurrences(of: "cmk: notify 1->0 badge=0x2 word=0x2 ok", with: ""), "no `cmk: notify 1->0"),
            (good.replacingOccurrences(of: "notify 1->0 badge=0x2 word=0x2 ok", with: "notify 1->0 badge=0x2 word=0x2 FAILED"),
             "no `cmk: notify 1->0"),
            // The badge must be the receiver's (1 << K), not something the sender chose.
            (good.replacingOccurrences(of: "notify 1->0 badge=0x2", with: "notify 1->0 badge=0x1"),
             "notify 1->0 delivered badge 0x1, not the exported 0x2"),
            (good.replacingOccurrences(of: "cmk: notify 0->1 badge=0x1 tries=1 ok", with: ""), "no `cmk: notify 0->1"),
            (good.replacingOccurrences(of: "notify 0->1 badge=0x1", with: "notify 0->1 badge=0x3"),
             "notify 0->1 delivered badge 0x3"),
            (good.replacingOccurrences(of: "cmk: cluster 1 user irq ok irq=23 badge=0x23", with: "cmk: cluster 1 user irq FAILED step=badge error=0"),
             "no `cmk: cluster 1 user irq ok` line"),
            (good.replacingOccurrences(of: "cmk: cluster 1 user preemption ok ticks=7", with: ""),
             "no `cmk: cluster 1 user preemption ok` line"),
            (good.replacingOccurrences(of: "cmk: cluster 0 user preemption ok ticks=6", with: "cmk: cluster 0 user preemption FAILED step=wait error=3"),
             "no `cmk: cluster 0 user preemption ok` line"),
        ]
        for (text, expected) in cases {
            let problem = transcript(text).problem(against: topology)
            #expect(problem?.contains(expected) == true, "expected \(expected), got \(problem ?? "nil")")
        }
    }
}

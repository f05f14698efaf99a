import BigLock
import Testing

@testable import Topology

@Suite struct LockExperimentLineTests {
    @Test func parsesTheKernelsLine() throws {
        let line = "cmk: lockexp cluster=1 lock=clh cores=2 ticks=6250000 freq=62500000 kernel=300 contended=120 entries=160,140 wait=900/40/3:100,26:200 hold=600/2/2:300"
        let r = try #require(LockExperimentLine.parse(line))
        #expect(r.cluster == 1 && r.lock == "clh" && r.cores == 2)
        #expect(r.ticks == 6_250_000 && r.frequency == 62_500_000)
        #expect(r.kernelEntries == 300 && r.contended == 120)
        #expect(r.entriesPerCore == [160, 140])
        #expect(r.wait.count == 300 && r.wait.sum == 900 && r.wait.max == 40)
        #expect(r.wait.buckets[3] == 100 && r.wait.buckets[26] == 200)
        #expect(r.hold.count == 300 && r.hold.buckets[2] == 300)
    }

    @Test func refusesMalformedLines() {
        let good = "cmk: lockexp cluster=0 lock=ticket cores=1 ticks=10 freq=10 kernel=1 contended=0 entries=1 wait=1/1/1:1 hold=1/1/1:1"
        #expect(LockExperimentLine.parse(good) != nil)
        for bad in [
            good.replacingOccurrences(of: "entries=1", with: "entries=1,2"),  // entries for 2 cores, 1 core
            good.replacingOccurrences(of: "freq=10", with: "freq=0"),
            good.replacingOccurrences(of: "wait=1/1/1:1", with: "wait=1/1/999:1"),  // bucket out of range
            good.replacingOccurrences(of: " hold=1/1/1:1", with: ""),
            // max 100 is in bucket 36, not in the top bucket 1: the
            // reporter's bucket function is not LockHistogram's.
            good.replacingOccurrences(of: "hold=1/1/1:1", with: "hold=1/100/1:1"),
            "cmk: cluster 0 up cores=0 data=0x1-0x2",
        ] {
            #expect(LockExperimentLine.parse(bad) == nil, "\(bad)")
        }
    }
}

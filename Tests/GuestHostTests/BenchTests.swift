import Foundation
import Testing

@testable import GuestHost

@Suite struct BenchTests {
    @Test func summaryStatistics() throws {
        let s = try #require(BenchSummary([5, 1, 4, 2, 3]))
        #expect(s.count == 5)
        #expect(s.median == 3)
        #expect(s.min == 1)
        #expect(s.max == 5)
        #expect(s.q1 == 2)
        #expect(s.q3 == 4)
        #expect(abs(s.spread - 2.0 / 3.0) < 1e-12)
        let even = try #require(BenchSummary([4, 1, 3, 2]))
        #expect(even.median == 2.5)
        #expect(even.q1 == 1.75)
        #expect(even.q3 == 3.25)
        let one = try #require(BenchSummary([7]))
        #expect(one.median == 7 && one.q1 == 7 && one.q3 == 7 && one.spread == 0)
        #expect(BenchSummary([]) == nil)
        // One slow outlier moves the median little and the mean a lot.
        let outlier = try #require(BenchSummary([2, 2, 2, 2, 2, 2, 100]))
        #expect(outlier.median == 2)
    }

    @Test func interleavedAndRatios() throws {
        var bench = GuestBench()
        var order: [GuestBench.Side] = []
        var t = 0.0
        try bench.run(runs: 3, sides: GuestBench.Side.allCases, measure: { side in
            order.append(side)
            t += 1
            return side == .cmk ? .init(shell: 2.2, powerOff: 2.4 + t / 100) : .init(shell: 2.0, powerOff: 2.0 + t / 100)
        }, progress: { _ in })
        #expect(order == [.cmk, .plain, .cmk, .plain, .cmk, .plain])
        let r = try #require(bench.ratios)
        #expect(abs(r.shell - 1.1) < 1e-9)
        #expect(abs(r.powerOff - (2.43 / 2.04)) < 1e-9)
        let report = bench.report()
        #expect(report.last == "ratio: cmk/plain boot-to-shell 1.10 power-off 1.19")
        #expect(report.contains { $0.hasPrefix("cmk ") })
        #expect(report.contains { $0.hasPrefix("plain ") })
    }

    @Test func oneSideHasNoRatio() throws {
        var bench = GuestBench()
        try bench.run(runs: 2, sides: [.plain], measure: { _ in .init(shell: 1, powerOff: 1.5) }, progress: { _ in })
        #expect(bench.ratios == nil)
        #expect(!bench.report().contains { $0.hasPrefix("ratio:") })
    }

    @Test func aFailedRunStopsTheBenchAndSaysWhich() {
        var bench = GuestBench()
        var calls = 0
        #expect {
            try bench.run(runs: 5, sides: GuestBench.Side.allCases, measure: { side throws(GuestHostError) in
                calls += 1
                if calls == 3 { throw .environment("boom") }
                return .init(shell: 1, powerOff: 1)
            }, progress: { _ in })
        } throws: { ($0 as? GuestHostError)?.message == "run 2 (cmk): boom" }
        #expect(calls == 3)
    }
}

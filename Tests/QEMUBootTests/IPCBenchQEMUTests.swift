import Cluster
import Testing
import Topology

@testable import QEMUBoot

/// `cmk bench ipc --qemu`: the root task's lines and the summary.
@Suite struct IPCBenchQEMUTests {
    let good = [
        "cmk: cluster 0 user start",
        "cmk: cluster 0 user ipc ok",
        "cmk: cluster 0 user ipc bench same-core roundtrips=1000 instructions=600000 cycles=610000",
        "cmk: cluster 0 user ipc bench null-syscall calls=1000 instructions=120000 cycles=120500",
        "cmk: cluster 0 user ipc bench cross-core roundtrips=1000 instructions=3001000 cycles=4000000",
        "cmk: cluster 1 user ipc ok",
    ]

    @Test func parsesGoodLines() throws {
        let r = try IPCBenchQEMU.parse(good)
        #expect(r.sameCore == .init(roundTrips: 1000, instructions: 600_000, cycles: 610_000))
        #expect(r.crossCore == .init(roundTrips: 1000, instructions: 3_001_000, cycles: 4_000_000))
        #expect(r.nullSyscall == .init(roundTrips: 1000, instructions: 120_000, cycles: 120_500))
        #expect(r.sameCore.perOneWay(r.sameCore.instructions) == 300)
        #expect(IPCBenchQEMU.table(r).count == 4)
    }

    @Test func machineWideCounterTakesTheClientAlone() throws {
        let line = "cmk: cluster 0 user ipc bench cross-core roundtrips=1000 instructions=8000000 cycles=4000000 client=4000000 server=4000000"
        let lines = Array(good.prefix(4)) + [line]
        let perCore = try IPCBenchQEMU.parse(lines)
        #expect(perCore.crossCore.instructions == 8_000_000)
        #expect(perCore.crossCoreParts?.client == 4_000_000)
        let qemu = try IPCBenchQEMU.parse(lines, machineWideCounter: true)
        #expect(qemu.crossCore.instructions == 4_000_000)
        #expect(throws: CMKFailure.self) {
            try IPCBenchQEMU.parse(Array(good.prefix(4)) + [line.replacingOccurrences(of: "server=4000000", with: "server=1")])
        }
    }

    @Test func summaryIsTheStableLastLine() throws {
        let line = IPCBenchQEMU.summary(try IPCBenchQEMU.parse(good))
        #expect(line == "aarch64: 300 instructions per one-way IPC (same core), 1501 (cross-core)")
        let pattern = #/^aarch64: [0-9]+ instructions per one-way IPC \(same core\), [0-9]+ \(cross-core\)$/#
        #expect(line.wholeMatch(of: pattern) != nil)
    }

    @Test func malformedLinesAreErrors() {
        for bad in [
            "cmk: cluster 0 user ipc bench same-core roundtrips=1000 instructions=x cycles=1",
            "cmk: cluster 0 user ipc bench same-core roundtrips=0 instructions=1 cycles=1",
            "cmk: cluster 0 user ipc bench same-core instructions=1 cycles=1",
            "cmk: cluster 0 user ipc bench sideways roundtrips=1 instructions=1 cycles=1",
        ] {
            #expect(throws: CMKFailure.self) { try IPCBenchQEMU.parse([bad] + good.suffix(2)) }
        }
        #expect(throws: CMKFailure.self) { try IPCBenchQEMU.parse(["cmk: cluster 0 user ipc ok"]) }
        #expect(throws: CMKFailure.self) {
            try IPCBenchQEMU.parse(good + ["cmk: cluster 0 user ipc FAILED step=call error=3"])
        }
        #expect(throws: CMKFailure.self) {
            try IPCBenchQEMU.parse(good + ["cmk: cluster 0 user ipc bench FAILED step=set-space error=3"])
        }
    }

    @Test func missingCrossCoreSaysWhy() {
        let oneCore = Array(good.prefix(4)) + ["cmk: cluster 0 user ipc bench cross-core skipped cores=1"]
        do {
            _ = try IPCBenchQEMU.parse(oneCore)
            Issue.record("parsed without a cross-core line")
        } catch {
            #expect(error.description.contains("at least 2 cores"))
        }
        do {
            _ = try IPCBenchQEMU.parse(Array(good.prefix(4)))
            Issue.record("parsed without a cross-core line")
        } catch {
            #expect(error.description.contains("no cross-core"))
        }
    }

    @Test func topologyNeedsTwoCoresInClusterZero() throws {
        #expect(throws: CMKFailure.self) { try IPCBenchQEMU.check(try shipped("4x1")) }
        try IPCBenchQEMU.check(try shipped("default"))
        try IPCBenchQEMU.check(try shipped("1x4"))
    }

    @Test func requestRoundTrips() {
        let r = ExperimentRequest.ipcBench(roundTrips: 10_000)
        let w = r.words
        #expect(ExperimentRequest(words: { w[$0] }) == r)
        #expect(ExperimentRequest(words: { $0 == 0 ? ExperimentRequest.ipcBenchKind : 0 }) == nil)
        #expect(ExperimentRequest(words: { $0 == 0 ? ExperimentRequest.ipcBenchKind : ($0 == 1 ? 100_001 : 0) }) == nil)
    }
}

import Cluster
import Foundation
import HostedChannel
import HostedLock
import Testing
import Topology

@testable import QEMUBoot

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func shipped(_ name: String) throws -> Topology {
    try TopologyLoader.load(path: repository.appendingPathComponent("topologies/\(name).toml").path)
}

/// The console of a good boot of `topology`, as the kernel prints it.
func goodBoot(_ topology: Topology) -> [String] {
    let layout = Layout(topology)
    var lines: [String] = []
    let n = topology.clusters.count
    for (i, spec) in topology.clusters.enumerated() {
        let base = layout.partitions[i].base
        lines.append("cmk: cluster \(i) up cores=\(spec.cores.sorted().map(String.init).joined(separator: ",")) data=0x\(String(base, radix: 16))-0x\(String(base + 0x1000, radix: 16))")
        lines.append("cmk: cluster \(i) private va=0x20000000 pa=0x\(String(base + 0x100, radix: 16)) value=\(i) ok")
        lines.append("cmk: cluster \(i) user ipc ok")
        lines.append("cmk: cluster \(i) lock=ticket stress cores=\(spec.cores.count) increments=\(2000 * spec.cores.count) ok")
        lines.append("cmk: cluster \(i) user irq ok irq=23 badge=0x23")
        lines.append("cmk: cluster \(i) user preemption ok ticks=6")
        lines.append("cmk: cluster \(i) user fuzz calls=2000 errors=1000 faults=10 seed=1 ok")
        for j in 0..<n where j != i { lines.append("cmk: channel \(i)->\(j) rtt=100 ticks") }
    }
    for k in 1..<max(min(n, 16), 1) {
        lines.append("cmk: notify \(k)->0 badge=0x\(String(1 << k, radix: 16)) word=0x\(String(1 << k, radix: 16)) ok")
        lines.append("cmk: notify 0->\(k) badge=0x1 tries=1 ok")
    }
    lines.append("cmk: boot ok clusters=\(n) cores=\(topology.coreCount)")
    return lines
}

@Suite struct KernelBootTests {
    func transcript(_ lines: [String]) -> BootTranscript {
        var t = BootTranscript()
        for l in lines { t.consume(l) }
        return t
    }

    @Test func theVerdictOfEachEnding() throws {
        let topology = try shipped("default")
        let good = transcript(goodBoot(topology))
        #expect(KernelBoot.verdict(.init(status: 0), transcript: good, topology: topology, timeout: 9) == nil)
        #expect(KernelBoot.verdict(.init(status: 0, interrupted: true), transcript: good, topology: topology, timeout: 9)?.exitCode == 130)
        let timedOut = KernelBoot.verdict(.init(status: -1, timedOut: true, lastLine: "x"), transcript: good, topology: topology, timeout: 9)
        #expect(timedOut?.description == "timeout: QEMU still running after 9.0 s; last line: x")
        #expect(timedOut?.exitCode == 3)
        let panicked = transcript(goodBoot(topology) + ["cmk: panic core=1 cluster=0: boom"])
        #expect(KernelBoot.verdict(.init(status: 1), transcript: panicked, topology: topology, timeout: 9)?.description
                == "boot failed: cmk: panic core=1 cluster=0: boom")
        let incomplete = transcript(Array(goodBoot(topology).dropLast()))
        #expect(KernelBoot.verdict(.init(status: 0), transcript: incomplete, topology: topology, timeout: 9)?.description
                == "boot failed: no `cmk: boot ok` line")
        let qemuFailed = KernelBoot.verdict(.init(status: 1, errorOutput: "bad\n"), transcript: good, topology: topology, timeout: 9)
        #expect(qemuFailed?.description == "boot failed: QEMU exit status 1: bad\n")
        #expect(qemuFailed?.exitCode == 1)
    }

    @Test func runQEMUHandsOverEveryLine() throws {
        var lines: [String] = []
        let run = try KernelBoot.runQEMU(["/bin/sh", "-c", "echo 'cmk: a'; echo err >&2; printf 'cmk: b\\r\\n'; exit 2"], timeout: 30) {
            lines.append($0)
        }
        #expect(lines == ["cmk: a", "cmk: b"])
        #expect(run.status == 2 && !run.timedOut && run.errorOutput == "err\n" && run.lastLine == "cmk: b")
        let stopped = try KernelBoot.runQEMU(["/bin/sh", "-c", "exec sleep 30"], timeout: 0.3) { _ in }
        #expect(stopped.timedOut && stopped.status == -1)
        #expect(throws: CMKFailure.self) { try KernelBoot.runQEMU(["/nonexistent/qemu"], timeout: 1) { _ in } }
    }

    @Test func exitCodesMatchTheDocs() {
        let all: [CMKFailure] = [.bootFailed(""), .invalidTopology, .timeout(""), .environment(""), .interrupted]
        #expect(all.map(\.exitCode) == [1, 2, 3, 4, 130])
    }
}

@Suite struct BootJSONTests {
    @Test func aGoodAndAFailedBoot() throws {
        let topology = try shipped("default")
        var t = BootTranscript()
        for l in goodBoot(topology) { t.consume(l) }
        let ok = try #require(try JSONSerialization.jsonObject(with: Data(
            BootJSON.render(topology: topology, file: "f.toml", transcript: t, seconds: 0.12345, verdict: nil).utf8)) as? [String: Any])
        #expect(ok["result"] as? String == "ok")
        #expect(ok["seconds"] as? Double == 0.123)
        #expect(ok["cores"] as? Int == topology.coreCount)
        let clusters = try #require(ok["clusters"] as? [[String: Any]])
        #expect(clusters.count == topology.clusters.count)
        #expect(clusters.allSatisfy { $0["up"] as? Bool == true && $0["private"] != nil })
        #expect(ok["error"] == nil)

        t.consume("cmk: exception core=0 cluster=0 vector=sync ec=0x25")
        let failed = try #require(try JSONSerialization.jsonObject(with: Data(
            BootJSON.render(topology: topology, file: "f.toml", transcript: t, seconds: 1,
                            verdict: .bootFailed(t.failure!)).utf8)) as? [String: Any])
        #expect(failed["result"] as? String == "exception")
        #expect((failed["error"] as? String)?.hasPrefix("boot failed: cmk: exception") == true)
        let timedOut = try #require(try JSONSerialization.jsonObject(with: Data(
            BootJSON.render(topology: topology, file: "f.toml", transcript: BootTranscript(), seconds: 1,
                            verdict: .timeout("t")).utf8)) as? [String: Any])
        #expect(timedOut["result"] as? String == "timeout")
        #expect((timedOut["clusters"] as? [[String: Any]])?.allSatisfy { $0["up"] as? Bool == false } == true)
    }
}

@Suite struct ExperimentBootTests {
    @Test func anOutOfRangeRequestIsRefusedBeforeQEMU() throws {
        let topology = try shipped("default")
        #expect(throws: CMKFailure.self) {
            try ExperimentBoot.bootInfo(topology, request: .channel(roundTrips: 0, messages: 10))
        }
        let info = try ExperimentBoot.bootInfo(topology, request: .channel(roundTrips: 10, messages: 10))
        #expect(throws: Never.self) { try info.validate() }
    }
}

@Suite struct QEMULockBackendTests {
    @Test func oneMeasurementPerClusterInOrder() throws {
        let lines = [
            "cmk: cluster 0 up cores=0,1 data=0x1-0x2",
            "cmk: lockexp cluster=1 lock=mcs cores=1 ticks=625 freq=62500000 kernel=5 contended=0 entries=5 wait=5/1/1:5 hold=10/2/2:5",
            "cmk: lockexp cluster=0 lock=mcs cores=2 ticks=625 freq=62500000 kernel=9 contended=3 entries=4,5 wait=9/1/1:9 hold=18/2/2:9",
        ]
        let m = try QEMULockBackend.measurements(lines, clusters: 2)
        #expect(m.map(\.cluster) == [0, 1])
        #expect(m[0].entriesPerCore == [4, 5] && m[0].kernelEntries == 9 && m[0].contendedEntries == 3)
        #expect(m[0].elapsedSeconds == 625.0 / 62_500_000)
        #expect(m[0].waitUnit == "ticks" && m[0].hold.sum == 18)
        #expect(throws: CMKFailure.self) { try QEMULockBackend.measurements(Array(lines.prefix(2)), clusters: 2) }
    }
}

@Suite struct QEMUChannelBackendTests {
    @Test func aKernelLineBecomesARow() throws {
        let topology = try shipped("default")
        let line = try #require(ChannelExperimentLine(
            "cmk: channelexp 1->0 trips=10 rtt_p50=125 rtt_p99=250 rtt_mean=150 stream=1000 ticks=62500 errors=1 dropped=2 freq=62500000"))
        let row = QEMUChannelBackend.row(line, topology: topology, slots: 64)
        #expect(row.backend == "qemu" && row.from == 1 && row.to == 0 && row.unit == "ns")
        #expect(row.fromCPU == topology.clusters[1].cores.min()! && row.toCPU == topology.clusters[0].cores.min()!)
        #expect(row.rttP50 == 2000 && row.rttP99 == 4000 && row.rttMean == 2400)
        #expect(row.messages == 1000 && row.messagesPerSecond == 1_000_000 && row.slots == 64)
        #expect(row.errors == 3)  // the peer's mismatch and the drops, counted as the hosted backend counts them
    }
}

@Suite struct BootBenchTests {
    @Test func threeSeriesAndTheReport() throws {
        let topology = try shipped("2x4")
        var bench = BootBench(topology: topology, tool: ["cmk", "boot", "t.toml"], kernel: "k.elf", trivial: "t.elf", bootInfo: "b.bin")
        #expect(bench.series.map(\.mustPrint) == ["cmk: boot ok", "cmk: boot ok", "trivial: all cores up"])
        #expect(bench.series[1].command.contains { $0.contains("b.bin") })
        #expect(!bench.series[2].command.contains { $0.contains("b.bin") })
        #expect(bench.series[2].command.contains("t.elf"))
        bench.series[0].seconds = [0.3, 0.2, 0.4]
        bench.series[1].seconds = [0.2, 0.2, 0.2]
        bench.series[2].seconds = [0.1, 0.1, 0.3]
        let report = bench.report(machine: "m", qemu: "q", file: "t.toml", topology: topology, runs: 3, rerun: "cmk bench boot")
        #expect(report.contains("cmk boot (whole tool)        0.300    0.200    0.400   3.00x"))
        #expect(report.contains("QEMU + trivial image         0.100    0.100    0.300   1.00x"))
        #expect(report.contains("cmk boot / trivial = 3.00x (goal: at most 2x)"))
        #expect(report.hasSuffix("rerun: cmk bench boot"))
    }

    @Test func aFailedRunIsABootFailure() throws {
        let topology = try shipped("2x4")
        var bench = BootBench(topology: topology, tool: ["/bin/sh", "-c", "echo nope"], kernel: "k", trivial: "t", bootInfo: "b")
        #expect(throws: CMKFailure.self) { try bench.run(runs: 1) }
    }
}

@Suite struct ProjectTests {
    @Test func theKernelBuildCommand() {
        let args = Project.kernelBuildArguments
        #expect(args.starts(with: ["swift", "build"]))
        #expect(args.contains("aarch64-none-none-elf") && args.contains("cmk-kernel"))
        #expect(Project.kernel.path.hasSuffix(".build-kernel/aarch64-none-none-elf/release/cmk-kernel"))
    }
}

/// The root-task record from the ELF headers (`RootTaskELF`).
@Suite struct RootTaskELFTests {
    /// A minimal ELF64 AArch64 executable header with PT_LOAD segments
    /// (vaddr, memsz) and `entry`.
    func elf(entry: UInt64, machine: UInt16 = 183, segments: [(UInt64, UInt64)]) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 64 + 56 * segments.count)
        func put(_ v: UInt64, _ at: Int, _ n: Int) { for i in 0..<n { b[at + i] = UInt8((v >> UInt64(8 * i)) & 0xFF) } }
        b[0] = 0x7F; b[1] = 0x45; b[2] = 0x4C; b[3] = 0x46; b[4] = 2; b[5] = 1
        put(UInt64(machine), 18, 2)
        put(entry, 24, 8)
        put(64, 32, 8)
        put(56, 54, 2)
        put(UInt64(segments.count), 56, 2)
        for (i, (vaddr, memsz)) in segments.enumerated() {
            put(1, 64 + 56 * i, 4)
            put(vaddr, 64 + 56 * i + 16, 8)
            put(memsz, 64 + 56 * i + 40, 8)
        }
        return b
    }

    @Test func recordFromTheProgramHeaders() throws {
        let e = elf(entry: 0x40_0000, segments: [(0x40_0000, 0xC58), (0x40_1000, 0x208), (0x40_2000, 0x4000)])
        let image = try #require(RootTaskELF.image(elf: e, fileSize: 0x1208))
        #expect(image == RootTaskImage(fileSize: 0x1208, memorySize: 0x6000, entry: 0x40_0000))
        #expect(image.isValid)
        // Not linked at the image base, not AArch64, truncated: refused.
        #expect(RootTaskELF.image(elf: elf(entry: 0x50_0000, segments: [(0x50_0000, 0x100)]), fileSize: 0x100) == nil)
        #expect(RootTaskELF.image(elf: elf(entry: 0x40_0000, machine: 62, segments: [(0x40_0000, 0x100)]), fileSize: 0x100) == nil)
        #expect(RootTaskELF.image(elf: Array(e.prefix(100)), fileSize: 0x1208) == nil)
        // Too large for RootTaskLayout.imageLimit: decoded, but not valid.
        let big = try #require(RootTaskELF.image(elf: elf(entry: 0x40_0000, segments: [(0x40_0000, 0x40_1000)]), fileSize: 0x100))
        #expect(!big.isValid)
    }
}

import Foundation
import Hosted
import Topology

/// `cmk bench boot`: the wall time of `cmk boot` against QEMU booting a
/// trivial image on the same cores (docs/boot.md). Three series, run in
/// turn `runs` times, interleaved so machine noise hits them alike.
public struct BootBench {
    public struct Series: Equatable {
        public var name: String
        public var command: [String]
        /// What the console must show for a run to count.
        public var mustPrint: String
        public var seconds: [Double] = []
    }

    public var series: [Series]

    /// The three commands: the whole tool (`tool` boots `file`), QEMU with
    /// the cmk kernel, QEMU with the trivial image (no boot information).
    public init(topology: Topology, tool: [String], kernel: String, trivial: String, bootInfo: String,
                rootTask: RootTaskFile? = nil) {
        let kernelCommand = QEMUCommand(topology: topology, kernel: kernel, bootInfo: bootInfo, rootTask: rootTask).arguments
        var trivialCommand = QEMUCommand(topology: topology, kernel: trivial, bootInfo: bootInfo).arguments
        trivialCommand.removeLast(2)  // no boot information for the trivial image
        series = [
            Series(name: "cmk boot (whole tool)", command: tool, mustPrint: "cmk: boot ok"),
            Series(name: "QEMU + cmk kernel", command: kernelCommand, mustPrint: "cmk: boot ok"),
            Series(name: "QEMU + trivial image", command: trivialCommand, mustPrint: "trivial: all cores up"),
        ]
    }

    /// Build qemu/trivial.S into `scratch`; its path.
    public static func buildTrivialImage() throws(CMKFailure) -> String {
        let trivial = Project.scratch.appendingPathComponent("trivial.elf").path
        let build: Subprocess.Output
        do {
            build = try Subprocess.capture(
                ["clang", "--target=aarch64-none-elf", "-nostdlib", "-fuse-ld=lld", "-Wl,-Ttext=0x40080000",
                 "-Wl,-e,_start", Project.root.appendingPathComponent("qemu/trivial.S").path, "-o", trivial])
        } catch {
            throw .environment(error.description)
        }
        guard build.status == 0 else { throw .environment("building qemu/trivial.S failed:\n\(build.text)") }
        return trivial
    }

    /// Run every series `runs` times, interleaved; `progress(run)` after each round.
    public mutating func run(runs: Int, progress: (Int) -> Void = { _ in }) throws(CMKFailure) {
        for run in 1...runs {
            for i in series.indices {
                let start = Date()
                let result: Subprocess.Output
                do {
                    result = try Subprocess.capture(series[i].command)
                } catch {
                    throw .environment(error.description)
                }
                let elapsed = Date().timeIntervalSince(start)
                guard result.status == 0, result.text.contains(series[i].mustPrint) else {
                    throw .bootFailed("\(series[i].name) failed in run \(run) (status \(result.status)):\n\(result.text)")
                }
                series[i].seconds.append(elapsed)
            }
            progress(run)
        }
    }

    /// The report: medians, min, max and the ratio of each to the trivial
    /// image (the last series).
    public func report(machine: String, qemu: String, file: String, topology: Topology, runs: Int, rerun: String) -> String {
        let reference = Statistics.median(series[series.count - 1].seconds)
        var lines = [
            "machine: \(machine)",
            "qemu:    \(qemu)",
            "topology: \(file) (\(topology.coreCount) cores in \(topology.clusters.count) clusters), \(runs) interleaved runs",
            "",
            "what".padding(toLength: 24, withPad: " ", startingAt: 0) + "  median s    min s    max s   ratio to trivial",
        ]
        for s in series {
            let m = Statistics.median(s.seconds)
            lines.append(s.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                + String(format: "  %8.3f %8.3f %8.3f   %.2fx", m, s.seconds.min() ?? 0, s.seconds.max() ?? 0, m / reference))
        }
        lines.append("")
        lines.append(String(format: "cmk boot / trivial = %.2fx (goal: at most 2x)", Statistics.median(series[0].seconds) / reference))
        lines.append("rerun: \(rerun)")
        return lines.joined(separator: "\n")
    }
}

import ArgumentParser
import Foundation
import Hosted
import HostedChannel
import Topology

struct BenchBoot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Wall time of `cmk boot` against QEMU booting a trivial image on the same cores.",
        discussion: """
            Runs three things in turn, --runs times, interleaved so machine noise hits \
            them alike: (1) `cmk boot FILE`, the whole tool (boot-info file, QEMU, \
            console checks); (2) QEMU running the cmk kernel directly (the command of \
            `cmk topology qemu FILE`); (3) QEMU running qemu/trivial.S, which only \
            starts every core with PSCI, waits for them, prints a line and powers off, \
            with the same -smp and -m. Prints medians and the ratios to (3). Goal: \
            (1)/(3) at most 2.
            """)

    @Argument(help: "Topology file (default: topologies/2x4.toml).")
    var file: String?

    @Option(help: "Runs of each of the three.")
    var runs = 11

    func run() throws {
        try withExitCodes {
            let path = file ?? Project.root.appendingPathComponent("topologies/2x4.toml").path
            let topology = try loadTopology(path)
            guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
            guard Shell.which(QEMUCommand.binary) else {
                throw CMKFailure.environment("\(QEMUCommand.binary) not found: run scripts/setup.sh")
            }
            try Project.buildKernelIfStale()
            let trivial = Project.scratch.appendingPathComponent("trivial.elf")
            let build = try Shell.run(
                ["clang", "--target=aarch64-none-elf", "-nostdlib", "-fuse-ld=lld", "-Wl,-Ttext=0x40080000",
                 "-Wl,-e,_start", Project.root.appendingPathComponent("qemu/trivial.S").path, "-o", trivial.path],
                captureOutput: true)
            guard build.status == 0 else { throw CMKFailure.environment("building qemu/trivial.S failed:\n\(build.output)") }

            let blob = try Project.writeBootInfo(Layout.bootInfoBytes(Layout.bootInfo(topology)), name: topology.name)
            let kernelCommand = QEMUCommand(topology: topology, kernel: Project.kernel.path, bootInfo: blob.path).arguments
            var trivialCommand = QEMUCommand(topology: topology, kernel: trivial.path, bootInfo: blob.path).arguments
            trivialCommand.removeLast(2)  // no boot information for the trivial image
            let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
            let tool = [me, "boot", path]

            var series: [(name: String, command: [String], mustPrint: String, seconds: [Double])] = [
                ("cmk boot (whole tool)", tool, "cmk: boot ok", []),
                ("QEMU + cmk kernel", kernelCommand, "cmk: boot ok", []),
                ("QEMU + trivial image", trivialCommand, "trivial: all cores up", []),
            ]
            FileHandle.standardError.write(Data("bench boot: \(topology.name) (\(topology.coreCount) cores, \(topology.clusters.count) clusters), \(runs) runs each\n".utf8))
            for run in 1...runs {
                for i in series.indices {
                    let start = Date()
                    let result = try Shell.run(series[i].command, captureOutput: true)
                    let elapsed = Date().timeIntervalSince(start)
                    guard result.status == 0, result.output.contains(series[i].mustPrint) else {
                        throw CMKFailure.bootFailed("\(series[i].name) failed in run \(run) (status \(result.status)):\n\(result.output)")
                    }
                    series[i].seconds.append(elapsed)
                }
                FileHandle.standardError.write(Data("\rrun \(run)/\(runs)".utf8))
            }
            FileHandle.standardError.write(Data("\n".utf8))

            func median(_ xs: [Double]) -> Double {
                let s = xs.sorted()
                return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
            }
            let reference = median(series[2].seconds)
            print("machine: \(HostMachine.summary)")
            print("qemu:    \(qemuVersion)")
            print("topology: \(path) (\(topology.coreCount) cores in \(topology.clusters.count) clusters), \(runs) interleaved runs\n")
            print("what".padding(toLength: 24, withPad: " ", startingAt: 0) + "  median s    min s    max s   ratio to trivial")
            for s in series {
                let m = median(s.seconds)
                print(s.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                    + String(format: "  %8.3f %8.3f %8.3f   %.2fx", m, s.seconds.min()!, s.seconds.max()!, m / reference))
            }
            print(String(format: "\ncmk boot / trivial = %.2fx (goal: at most 2x)", median(series[0].seconds) / reference))
            print("rerun: cmk bench boot \(file ?? "topologies/2x4.toml") --runs \(runs)")
        }
    }
}

/// The QEMU that `cmk boot` runs, as it names itself.
var qemuVersion: String {
    ((try? Shell.run([QEMUCommand.binary, "--version"], captureOutput: true).output) ?? "")
        .split(separator: "\n").first.map(String.init) ?? "unknown"
}

import Foundation
import Topology

/// Where the repository is and how to build what `cmk` runs.
public enum Project {
    /// The checkout: `$CMK_ROOT`, else the nearest directory above the `cmk`
    /// executable or the current directory that holds this Package.swift.
    public static let root: URL = {
        if let env = ProcessInfo.processInfo.environment["CMK_ROOT"] { return URL(fileURLWithPath: env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for start in [exe.deletingLastPathComponent(), URL(fileURLWithPath: FileManager.default.currentDirectoryPath)] {
            var dir = start.standardizedFileURL
            while dir.path != "/" {
                let manifest = dir.appendingPathComponent("Package.swift")
                if let text = try? String(contentsOf: manifest, encoding: .utf8), text.contains("name: \"cmk\"") {
                    return dir
                }
                dir.deleteLastPathComponent()
            }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    public static var scratch: URL { root.appendingPathComponent(".build-kernel") }
    public static var kernel: URL { scratch.appendingPathComponent("aarch64-none-none-elf/release/cmk-kernel") }
    public static var defaultTopology: String { root.appendingPathComponent("topologies/default.toml").path }

    public static var kernelBuildArguments: [String] {
        ["swift", "build", "--package-path", root.path, "--triple", "aarch64-none-none-elf",
         "--toolset", root.appendingPathComponent("qemu/toolset.json").path, "-c", "release",
         "--product", "cmk-kernel", "--scratch-path", scratch.path]
    }

    /// Newest modification time (seconds since the epoch) of anything the
    /// kernel image is built from. Plain `stat(2)`: Foundation's resource
    /// values also resolve owner names, two file reads per source file,
    /// which `cmk bench boot` measured.
    public static func newestKernelInput() -> Double {
        var newest = 0.0
        var inputs = ["Package.swift", "qemu/toolset.json", "qemu/kernel.ld"].map { root.appendingPathComponent($0).path }
        let sources = root.appendingPathComponent("Sources").path
        if let e = FileManager.default.enumerator(atPath: sources) {
            for case let relative as String in e { inputs.append(sources + "/" + relative) }
        }
        for path in inputs { newest = max(newest, modificationTime(path) ?? 0) }
        return newest
    }

    public static func modificationTime(_ path: String) -> Double? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }

    /// Build the kernel image if any input is newer than it. Progress goes to
    /// stderr; a failed build is an error (with the compiler's output).
    public static func buildKernelIfStale(quiet: Bool = false) throws(CMKFailure) {
        let built = modificationTime(kernel.path)
        if let built, built >= newestKernelInput() { return }
        if !quiet { FileHandle.standardError.write(Data("cmk: building the kernel image (\(built == nil ? "first build" : "sources changed"))...\n".utf8)) }
        let result: Subprocess.Output
        do {
            result = try Subprocess.capture(kernelBuildArguments)
        } catch {
            throw CMKFailure.environment(error.description)
        }
        guard result.status == 0 else {
            throw CMKFailure.environment("kernel build failed:\n\(result.text)\ncommand: \(kernelBuildArguments.joined(separator: " "))")
        }
        // A build with nothing to do leaves the image's time alone; mark it
        // up to date so the next check does not build again.
        do {
            try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: kernel.path)
        } catch {
            throw .environment("cannot mark \(kernel.path) up to date: \(error.localizedDescription)")
        }
    }

    /// Write the boot information for a topology next to the kernel, whole
    /// or not at all (a temporary file renamed into place).
    public static func writeBootInfo(_ bytes: [UInt8], name: String) throws -> URL {
        let dir = scratch.appendingPathComponent("bootinfo")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("\(name).bin")
        try Data(bytes).write(to: url, options: .atomic)
        return url
    }
}

/// Failures of the tool itself, each with its exit status (docs/boot.md).
public enum CMKFailure: Error, CustomStringConvertible {
    /// The kernel panicked, took an exception, or did not report a full boot.
    case bootFailed(String)
    /// The topology file is invalid (its diagnostics are already printed).
    case invalidTopology
    /// QEMU ran past the timeout.
    case timeout(String)
    /// Something the tool needs is missing or broken (QEMU, the build).
    case environment(String)
    /// SIGINT, SIGTERM or SIGHUP reached cmk: QEMU was stopped.
    case interrupted

    public var exitCode: Int32 {
        switch self {
        case .bootFailed: return 1
        case .invalidTopology: return 2
        case .timeout: return 3
        case .environment: return 4
        case .interrupted: return 130
        }
    }

    public var description: String {
        switch self {
        case .bootFailed(let s): return "boot failed: \(s)"
        case .invalidTopology: return "invalid topology"
        case .timeout(let s): return "timeout: \(s)"
        case .environment(let s): return s
        case .interrupted: return "interrupted"
        }
    }
}


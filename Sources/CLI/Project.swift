import ArgumentParser
import Foundation
import Topology

/// Where the repository is and how to build what `cmk` runs.
enum Project {
    /// The checkout: `$CMK_ROOT`, else the nearest directory above the `cmk`
    /// executable or the current directory that holds this Package.swift.
    static let root: URL = {
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

    static var scratch: URL { root.appendingPathComponent(".build-kernel") }
    static var kernel: URL { scratch.appendingPathComponent("aarch64-none-none-elf/release/cmk-kernel") }
    static var defaultTopology: String { root.appendingPathComponent("topologies/default.toml").path }

    static var kernelBuildArguments: [String] {
        ["swift", "build", "--package-path", root.path, "--triple", "aarch64-none-none-elf",
         "--toolset", root.appendingPathComponent("qemu/toolset.json").path, "-c", "release",
         "--product", "cmk-kernel", "--scratch-path", scratch.path]
    }

    /// Newest modification time (seconds since the epoch) of anything the
    /// kernel image is built from. Plain `stat(2)`: Foundation's resource
    /// values also resolve owner names, two file reads per source file,
    /// which `cmk bench boot` measured.
    static func newestKernelInput() -> Double {
        var newest = 0.0
        var inputs = ["Package.swift", "qemu/toolset.json", "qemu/kernel.ld"].map { root.appendingPathComponent($0).path }
        let sources = root.appendingPathComponent("Sources").path
        if let e = FileManager.default.enumerator(atPath: sources) {
            for case let relative as String in e { inputs.append(sources + "/" + relative) }
        }
        for path in inputs { newest = max(newest, modificationTime(path) ?? 0) }
        return newest
    }

    static func modificationTime(_ path: String) -> Double? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }

    /// Build the kernel image if any input is newer than it. Progress goes to
    /// stderr; a failed build is an error (with the compiler's output).
    static func buildKernelIfStale(quiet: Bool = false) throws {
        let built = modificationTime(kernel.path)
        if let built, built >= newestKernelInput() { return }
        if !quiet { FileHandle.standardError.write(Data("cmk: building the kernel image (\(built == nil ? "first build" : "sources changed"))...\n".utf8)) }
        let result = try Shell.run(kernelBuildArguments, captureOutput: true)
        guard result.status == 0 else {
            throw CMKFailure.environment("kernel build failed:\n\(result.output)\ncommand: \(kernelBuildArguments.joined(separator: " "))")
        }
        // A build with nothing to do leaves the image's time alone; mark it
        // up to date so the next check does not build again.
        try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: kernel.path)
    }

    /// Write the boot information for a topology next to the kernel, whole
    /// or not at all (a temporary file renamed into place).
    static func writeBootInfo(_ bytes: [UInt8], name: String) throws -> URL {
        let dir = scratch.appendingPathComponent("bootinfo")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("\(name).bin")
        try Data(bytes).write(to: url, options: .atomic)
        return url
    }
}

/// Failures of the tool itself, each with its exit status (docs/boot.md).
enum CMKFailure: Error, CustomStringConvertible {
    /// The kernel panicked, took an exception, or did not report a full boot.
    case bootFailed(String)
    /// The topology file is invalid (its diagnostics are already printed).
    case invalidTopology
    /// QEMU ran past the timeout.
    case timeout(String)
    /// Something the tool needs is missing or broken (QEMU, the build).
    case environment(String)

    var exitCode: Int32 {
        switch self {
        case .bootFailed: return 1
        case .invalidTopology: return 2
        case .timeout: return 3
        case .environment: return 4
        }
    }

    var description: String {
        switch self {
        case .bootFailed(let s): return "boot failed: \(s)"
        case .invalidTopology: return "invalid topology"
        case .timeout(let s): return "timeout: \(s)"
        case .environment(let s): return s
        }
    }
}

enum Shell {
    struct Result {
        var status: Int32
        var output: String
    }

    /// Run a command (found on PATH), wait for it.
    static func run(_ arguments: [String], captureOutput: Bool) throws -> Result {
        let process = Process()
        guard let executable = resolve(arguments[0]) else {
            throw CMKFailure.environment("\(arguments[0]) not found on PATH")
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        if captureOutput {
            process.standardOutput = pipe
            process.standardError = pipe
        }
        try process.run()
        let data = captureOutput ? pipe.fileHandleForReading.readDataToEndOfFile() : Data()
        wait(for: process)
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// Wait for a process to end. Foundation's `waitUntilExit` polls its run
    /// loop every 50 ms on Linux, which `cmk bench boot` would measure; its
    /// child-reaping thread updates `isRunning` as soon as the child exits.
    static func wait(for process: Process) {
        while process.isRunning { usleep(500) }
    }

    /// Whether `tool` is an executable file on PATH (no shell spawned).
    static func which(_ tool: String) -> Bool { resolve(tool) != nil }

    /// The full path of `tool` on PATH, or nil.
    static func resolve(_ tool: String) -> String? {
        if tool.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
            return "\(dir)/\(tool)"
        }
        return nil
    }
}

/// Load a topology file, or print its diagnostics and fail with status 2.
func loadTopology(_ path: String) throws -> Topology {
    do {
        return try TopologyLoader.load(path: path)
    } catch {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw CMKFailure.invalidTopology
    }
}

/// Run a command body, turning CMKFailure into its message and exit status.
func withExitCodes<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let failure as CMKFailure {
        if case .invalidTopology = failure {} else {
            FileHandle.standardError.write(Data("cmk: \(failure.description)\n".utf8))
        }
        throw ExitCode(failure.exitCode)
    }
}

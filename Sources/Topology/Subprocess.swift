import Foundation

/// Running the tools `cmk` needs (the kernel build, clang, dtc, QEMU's
/// version, the guest image script) to completion. QEMU itself, with its
/// console watched as it runs, goes through `QEMUProcess`.
public enum Subprocess {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: Data
        public var stderr: Data

        /// stdout then stderr, as text (for messages).
        public var text: String { String(decoding: stdout + stderr, as: UTF8.self) }
    }

    /// The full path of `tool` on PATH (or `tool` itself if it is a path),
    /// found without spawning a shell; nil if there is none.
    public static func resolve(_ tool: String) -> String? {
        if tool.contains("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
            return "\(dir)/\(tool)"
        }
        return nil
    }

    /// Whether `tool` is an executable file on PATH.
    public static func which(_ tool: String) -> Bool { resolve(tool) != nil }

    /// Run `arguments` (arguments[0] found on PATH) to completion with `input`
    /// on stdin; capture stdout and stderr.
    public static func capture(_ arguments: [String], input: Data = Data()) throws(Failure) -> Output {
        guard let executable = resolve(arguments[0]) else { throw Failure("\(arguments[0]) not found on PATH") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        process.standardError = errPipe
        do {
            try process.run()
        } catch {
            throw Failure("cannot start \(arguments[0]): \(error.localizedDescription)")
        }
        // Drain stderr on a thread, stdout here, while feeding stdin: no
        // pipe can fill up and block the child.
        let errBox = DataBox()
        let errThread = Thread { errBox.set(errPipe.fileHandleForReading.readDataToEndOfFile()) }
        errThread.start()
        let writer = Thread {
            inPipe.fileHandleForWriting.write(input)
            try? inPipe.fileHandleForWriting.close()
        }
        writer.start()
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        wait(for: process)
        while !errThread.isFinished || !writer.isFinished { usleep(500) }
        return Output(status: process.terminationStatus, stdout: out, stderr: errBox.get())
    }

    /// Wait for a process to end. Foundation's `waitUntilExit` polls its run
    /// loop every 50 ms on Linux, which `cmk bench boot` would measure; its
    /// child-reaping thread updates `isRunning` as soon as the child exits.
    static func wait(for process: Process) {
        while process.isRunning { usleep(500) }
    }

    /// A tool that could not be started.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    final class DataBox: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
        func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
    }
}

extension QEMUCommand {
    /// The installed QEMU as it names itself (`qemu-system-aarch64 --version`'s first line).
    public static var installedVersion: String {
        ((try? Subprocess.capture([binary, "--version"]))?.text ?? "")
            .split(separator: "\n").first.map(String.init) ?? "unknown"
    }
}

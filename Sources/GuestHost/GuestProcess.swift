import Foundation

/// Small helpers to run the tools the guest needs (dtc, the image script).
enum GuestProcess {
    struct Output {
        var status: Int32
        var stdout: Data
        var stderr: Data
    }

    /// The full path of `tool` on PATH (or `tool` itself if it is a path).
    static func resolve(_ tool: String) -> String? {
        if tool.contains("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
            return "\(dir)/\(tool)"
        }
        return nil
    }

    /// Run to completion with `input` on stdin; capture stdout and stderr.
    static func capture(_ arguments: [String], input: Data = Data()) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
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
        while process.isRunning { usleep(500) }
        while !errThread.isFinished || !writer.isFinished { usleep(500) }
        return Output(status: process.terminationStatus, stdout: out, stderr: errBox.get())
    }

    final class DataBox: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
        func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
    }
}

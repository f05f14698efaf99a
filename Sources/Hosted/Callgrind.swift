import Foundation

/// Instruction counts of a host program under valgrind's callgrind (its
/// `Collected` total of `Ir`: instructions executed on the host, not on the
/// bare-metal target).
public enum Callgrind {
    public enum Outcome: Equatable, Sendable {
        /// Host instructions executed, and whether they were counted on a copy
        /// with the debug information stripped (valgrind could not read the
        /// original's).
        case counted(instructions: Int, stripped: Bool)
        /// No `valgrind` on PATH.
        case notInstalled
        /// valgrind ran but gave no count; the words say what it reported.
        case failed(String)
    }

    /// Runs `executable arguments` under callgrind. Some valgrind releases
    /// (3.19) refuse the Swift toolchain's DWARF and stop before running
    /// anything; then the count is taken on a copy whose debug information
    /// `objcopy --strip-debug` removed (the instructions are the same).
    public static func count(executable: String, arguments: [String]) -> Outcome {
        guard let valgrind = which("valgrind") else { return .notInstalled }
        let first = run(valgrind, executable, arguments)
        if case .success(let n) = first { return .counted(instructions: n, stripped: false) }
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("cmk-callgrind-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: copy) }
        guard let objcopy = which("objcopy") else {
            return .failed(reason(first) + "; no objcopy to strip the debug information and retry")
        }
        let strip = Process()
        strip.executableURL = URL(fileURLWithPath: objcopy)
        strip.arguments = ["--strip-debug", executable, copy]
        strip.standardError = FileHandle.nullDevice
        guard (try? strip.run()) != nil else { return .failed(reason(first)) }
        strip.waitUntilExit()
        guard strip.terminationStatus == 0 else {
            return .failed(reason(first) + "; objcopy --strip-debug failed too")
        }
        switch run(valgrind, copy, arguments) {
        case .success(let n): return .counted(instructions: n, stripped: true)
        case .failure(let second):
            return .failed(reason(first) + "; on a copy without debug information: " + second.text)
        }
    }

    struct Failure: Error { let text: String }

    static func reason(_ result: Result<Int, Failure>) -> String {
        if case .failure(let f) = result { return f.text }
        return ""
    }

    static func run(_ valgrind: String, _ executable: String, _ arguments: [String]) -> Result<Int, Failure> {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: valgrind)
        p.arguments = ["--tool=callgrind", "--callgrind-out-file=/dev/null", executable] + arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { return .failure(Failure(text: "cannot start valgrind: \(error.localizedDescription)")) }
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        if p.terminationStatus == 0, let n = collected(text) { return .success(n) }
        return .failure(Failure(text: "valgrind exit \(p.terminationStatus): \(lastWords(text))"))
    }

    /// The `Collected : N` total callgrind prints.
    static func collected(_ text: String) -> Int? {
        for line in text.split(separator: "\n") where line.contains("Collected :") {
            return Int(line.split(separator: ":").last!.trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// The last non-empty line valgrind printed, without its `==PID==` prefix.
    static func lastWords(_ text: String) -> String {
        let lines = text.split(separator: "\n").map { line -> String in
            var s = Substring(line)
            if s.hasPrefix("=="), let end = s.dropFirst(2).firstRange(of: "==") { s = s[end.upperBound...] }
            return s.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        return lines.last ?? "no output"
    }

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

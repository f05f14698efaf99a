import ArgumentParser
import Hosted

/// Helpers shared by `cmk bench channel` and `cmk experiment channel`.
enum ChannelCLI {
    /// Parse `--cpus A,B`, or take the first two CPUs this process may use
    /// (both threads on one CPU if it may use only one).
    static func cpuPair(_ text: String?) throws -> (Int, Int) {
        if let text {
            let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2, let a = parts[0], let b = parts[1] else {
                throw ValidationError("--cpus takes two CPU numbers, e.g. 0,1")
            }
            return (a, b)
        }
        do { return try hostCPUPair() } catch { throw CommandFailure(error.description) }
    }

    static func describe(_ pair: (Int, Int)) -> String { "cpu\(pair.0) <-> cpu\(pair.1)" }
}

import Foundation

/// Runs QEMU with the guest's console on the user's terminal: QEMU's serial
/// output is shown as it comes (unbuffered: a prompt without a newline
/// appears at once) and watched line by line; stdin is QEMU's (typed input
/// reaches the guest). When stdin is a terminal QEMU switches it to raw
/// mode; its settings are saved first and restored on every way out (QEMU's
/// exit, the timeout, Ctrl-C or SIGTERM/SIGHUP to cmk, QEMU killed).
public enum GuestConsole {
    public struct Options: Sendable {
        public enum Input: Sendable {
            /// QEMU reads the user's stdin (`cmk guest`).
            case inherit
            /// QEMU reads nothing (benchmarks).
            case none
        }
        public var input: Input = .inherit
        /// Show the console on stdout (else only watch it).
        public var echo = true
        /// Lines starting with these are watched but not shown.
        public var hidden: [String] = []
        /// Seconds before QEMU is stopped; nil: no limit.
        public var timeout: Double?
        /// After the watcher says the run is over, how long QEMU may take to
        /// exit by itself before it is stopped.
        public var grace: Double = 2
        public init() {}
    }

    public struct Result: Sendable {
        /// QEMU's exit status; nil if a signal ended it.
        public var status: Int32?
        public var timedOut: Bool
        public var interrupted: Bool
        public var lastLine: String?
        /// QEMU's stderr.
        public var errors: String
        /// Seconds from QEMU's start to its exit.
        public var seconds: Double
    }

    /// Monotonic seconds.
    public static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Run `arguments` (arguments[0] on PATH). `onLine(line, seconds since
    /// QEMU started)` sees every console line and returns true once the run
    /// is over as far as the console can tell.
    public static func run(_ arguments: [String], options: Options,
                           onLine: (String, Double) -> Bool) throws(GuestHostError) -> Result {
        guard let executable = GuestProcess.resolve(arguments[0]) else {
            throw .environment("\(arguments[0]) not found: run scripts/setup.sh (installs qemu-system-arm)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        if options.input == .none { process.standardInput = FileHandle.nullDevice }

        let terminal = options.input == .inherit && isatty(STDIN_FILENO) == 1
        var saved = termios()
        let haveSaved = terminal && tcgetattr(STDIN_FILENO, &saved) == 0
        let previous = SignalFlag.install()
        defer {
            if haveSaved { tcsetattr(STDIN_FILENO, TCSADRAIN, &saved) }
            SignalFlag.restore(previous)
        }

        let started = now()
        do {
            try process.run()
        } catch {
            throw .environment("cannot start \(executable): \(error.localizedDescription)")
        }
        let errBox = GuestProcess.DataBox()
        let errThread = Thread { errBox.set(err.fileHandleForReading.readDataToEndOfFile()) }
        errThread.start()

        var stream = ConsoleStream(hiding: options.hidden)
        var last: String?
        var timedOut = false, interrupted = false
        var stopAt: Double? = options.timeout.map { started + $0 }
        var finishedAt: Double?
        let fd = out.fileHandleForReading.fileDescriptor
        var chunk = [UInt8](repeating: 0, count: 4096)
        func show(_ bytes: [UInt8]) {
            guard options.echo, !bytes.isEmpty else { return }
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(STDOUT_FILENO, raw.baseAddress! + offset, raw.count - offset)
                    if n <= 0 { if errno == EINTR { continue }; break }
                    offset += n
                }
            }
        }
        reading: while true {
            if SignalFlag.raised != 0 { interrupted = true; break }
            let t = now()
            if let finishedAt, t >= finishedAt { break }
            if let stopAt, t >= stopAt { timedOut = true; break }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 100)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }  // EOF: QEMU closed its console (it exited)
            let (bytes, lines) = stream.feed(chunk[0..<n])
            show(bytes)
            let at = now() - started
            for line in lines {
                last = line
                if onLine(line, at), finishedAt == nil {
                    finishedAt = now() + options.grace
                    stopAt = nil
                }
            }
            if SignalFlag.raised != 0 { interrupted = true; break reading }
        }
        let stopped = timedOut || interrupted || (finishedAt != nil && process.isRunning && now() >= finishedAt!)
        if stopped {
            stop(process)
        }
        // Anything QEMU wrote before exiting.
        while true {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, stopped ? 0 : 200) > 0 else { break }
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            let (bytes, lines) = stream.feed(chunk[0..<n])
            show(bytes)
            for line in lines { last = line; _ = onLine(line, now() - started) }
        }
        let (tail, partial) = stream.finish()
        show(tail)
        if let partial { last = partial; _ = onLine(partial, now() - started) }
        while process.isRunning {
            if SignalFlag.raised != 0, !interrupted { interrupted = true; stop(process) }
            usleep(200)
        }
        let seconds = now() - started
        while !errThread.isFinished { usleep(500) }
        let status: Int32? = process.terminationReason == .exit ? process.terminationStatus : nil
        return Result(status: status, timedOut: timedOut, interrupted: interrupted, lastLine: last,
                      errors: String(decoding: errBox.get(), as: UTF8.self), seconds: seconds)
    }

    /// SIGTERM, then SIGKILL after 2 s.
    static func stop(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        let killAt = now() + 2
        while process.isRunning && now() < killAt { usleep(2_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// SIGINT, SIGTERM and SIGHUP while QEMU runs: remembered, so the console
/// loop stops QEMU and restores the terminal instead of dying with it raw.
enum SignalFlag {
    nonisolated(unsafe) static var raised: sig_atomic_t = 0
    static let signals = [SIGINT, SIGTERM, SIGHUP]

    static func install() -> [sigaction] {
        raised = 0
        return signals.map { sig in
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in SignalFlag.raised = 1 }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            var old = sigaction()
            sigaction(sig, &action, &old)
            return old
        }
    }

    static func restore(_ previous: [sigaction]) {
        for (sig, old) in zip(signals, previous) {
            var o = old
            sigaction(sig, &o, nil)
        }
    }
}

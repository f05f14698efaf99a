import Foundation

/// The one way `cmk` runs QEMU (`cmk boot`, the experiment boots, `cmk
/// guest`, `cmk bench guest`): its serial console is watched line by line
/// and, with `echo`, shown as it comes (unbuffered: a prompt without a
/// newline appears at once); with `.inherit` input, stdin is QEMU's (typed
/// input reaches the guest). When stdin is a terminal QEMU switches it to raw
/// mode; its settings are saved first and restored on every way out (QEMU's
/// exit, the timeout, Ctrl-C or SIGTERM/SIGHUP to cmk, QEMU killed). QEMU
/// stays in cmk's process group (see `Child`).
public enum QEMUProcess {
    public struct Options: Sendable {
        public enum Input: Sendable {
            /// QEMU reads the user's stdin (`cmk guest`).
            case inherit
            /// QEMU reads nothing (`cmk boot`, benchmarks).
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
        /// The console's last line had no newline (a prompt): the caller
        /// ends it before printing its own messages.
        public var endedMidLine: Bool
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
                           onLine: (String, Double) -> Bool) throws(Subprocess.Failure) -> Result {
        guard let executable = Subprocess.resolve(arguments[0]) else {
            throw Subprocess.Failure("\(arguments[0]) not found: run scripts/setup.sh (installs qemu-system-arm)")
        }
        let terminal = options.input == .inherit && isatty(STDIN_FILENO) == 1
        var saved = termios()
        let haveSaved = terminal && tcgetattr(STDIN_FILENO, &saved) == 0
        let previous = SignalFlag.install()
        defer {
            if haveSaved { tcsetattr(STDIN_FILENO, TCSADRAIN, &saved) }
            SignalFlag.restore(previous)
        }

        let started = now()
        let child = try Child.spawn(executable, arguments: Array(arguments.dropFirst()), nullInput: options.input == .none)
        defer { close(child.output); close(child.errors) }

        var stream = ConsoleStream(hiding: options.hidden)
        var last: String?
        var errors: [UInt8] = []
        var timedOut = false, interrupted = false, outputOpen = true, errorsOpen = true
        var stopAt: Double? = options.timeout.map { started + $0 }
        var finishedAt: Double?
        var exitStatus: Int32?
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
        func consume(_ bytes: ArraySlice<UInt8>) {
            let (shown, lines) = stream.feed(bytes)
            show(shown)
            let at = now() - started
            for line in lines {
                last = line
                if onLine(line, at), finishedAt == nil {
                    finishedAt = now() + options.grace
                    stopAt = nil
                }
            }
        }
        /// Read what is there (waiting up to `wait` ms); false at EOF of both.
        func pump(wait: Int32) {
            var fds = [pollfd(fd: outputOpen ? child.output : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: errorsOpen ? child.errors : -1, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, wait) > 0 else { return }
            if fds[0].revents != 0 {
                let n = read(child.output, &chunk, chunk.count)
                if n > 0 { consume(chunk[0..<n]) } else if n == 0 || errno != EINTR { outputOpen = false }
            }
            if fds[1].revents != 0 {
                let n = read(child.errors, &chunk, chunk.count)
                if n > 0 { errors += chunk[0..<n] } else if n == 0 || errno != EINTR { errorsOpen = false }
            }
        }

        // Stopping: SIGTERM, then SIGKILL if QEMU is still there 2 s later.
        var stopped = false
        var killAt = Double.infinity
        while exitStatus == nil {
            if SignalFlag.raised != 0 && !interrupted { interrupted = true }
            let t = now()
            if !stopped {
                if interrupted || (finishedAt.map { t >= $0 } ?? false) || (stopAt.map { t >= $0 } ?? false) {
                    if !interrupted && finishedAt == nil { timedOut = true }
                    stopped = true
                    child.signal(SIGTERM)
                    killAt = t + 2
                }
            } else if t >= killAt {
                child.signal(SIGKILL)
                killAt = .infinity
            }
            pump(wait: outputOpen || errorsOpen ? 50 : 0)
            if !outputOpen && !errorsOpen { usleep(200) }
            exitStatus = child.poll()
        }
        // A Ctrl-C reaches QEMU and cmk together: QEMU may be gone before
        // the loop looked at the flag.
        if SignalFlag.raised != 0 { interrupted = true }
        // Anything left in the pipes.
        while outputOpen || errorsOpen {
            let before = (outputOpen, errorsOpen)
            pump(wait: 0)
            if before == (outputOpen, errorsOpen) { break }
        }
        let seconds = now() - started
        let (tail, partial) = stream.finish()
        show(tail)
        if let partial { last = partial; _ = onLine(partial, seconds) }
        let raw = exitStatus!
        let status: Int32? = raw & 0x7f == 0 ? (raw >> 8) & 0xff : nil
        return Result(status: status, timedOut: timedOut, interrupted: interrupted, lastLine: last,
                      errors: String(decoding: errors, as: UTF8.self), seconds: seconds,
                      endedMidLine: options.echo && partial != nil)
    }

    /// QEMU as a child in cmk's own process group: on a terminal it must be
    /// in the foreground group to switch the terminal to raw mode and read it
    /// (Foundation's `Process` starts children in a new group, where QEMU
    /// stops on SIGTTOU), and Ctrl-C reaches both.
    struct Child {
        var pid: pid_t
        var output: Int32
        var errors: Int32

        static func spawn(_ path: String, arguments: [String], nullInput: Bool) throws(Subprocess.Failure) -> Child {
            var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
            guard pipe(&out) == 0, pipe(&err) == 0 else {
                throw Subprocess.Failure("cannot create pipes for \(path): \(String(cString: strerror(errno)))")
            }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            if nullInput { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
            posix_spawn_file_actions_adddup2(&actions, out[1], 1)
            posix_spawn_file_actions_adddup2(&actions, err[1], 2)
            for fd in out + err { posix_spawn_file_actions_addclose(&actions, fd) }
            let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
            defer { for p in argv { free(p) } }
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
            close(out[1])
            close(err[1])
            guard rc == 0 else {
                close(out[0]); close(err[0])
                throw Subprocess.Failure("cannot start \(path): \(String(cString: strerror(rc)))")
            }
            _ = fcntl(out[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(err[0], F_SETFD, FD_CLOEXEC)
            return Child(pid: pid, output: out[0], errors: err[0])
        }

        /// The raw wait status once the child has exited, else nil.
        func poll() -> Int32? {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return status }
            if r < 0 && errno != EINTR { return 0x7f00 }  // already reaped: report a failure
            return nil
        }

        func signal(_ sig: Int32) { kill(pid, sig) }
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

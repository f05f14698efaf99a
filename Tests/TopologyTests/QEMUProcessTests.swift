import Foundation
import Testing

@testable import Topology

@Suite struct QEMUProcessTests {
    func options(timeout: Double? = nil) -> QEMUProcess.Options {
        var o = QEMUProcess.Options()
        o.input = .none
        o.echo = false
        o.timeout = timeout
        return o
    }

    @Test func linesErrorsAndStatus() throws {
        var lines: [String] = []
        let result = try QEMUProcess.run(["/bin/sh", "-c", "echo one; printf 'two\\r\\n'; echo oops >&2; printf tail; exit 3"],
                                         options: options()) { line, _ in
            lines.append(line)
            return false
        }
        #expect(lines == ["one", "two", "tail"])
        #expect(result.status == 3)
        #expect(result.errors == "oops\n")
        #expect(result.lastLine == "tail")
        #expect(!result.timedOut && !result.interrupted)
    }

    @Test func theTimeoutStopsTheChild() throws {
        let result = try QEMUProcess.run(["/bin/sh", "-c", "echo started; exec sleep 30"], options: options(timeout: 0.5)) { _, _ in false }
        #expect(result.timedOut)
        #expect(result.status == nil)  // ended by SIGTERM
        #expect(result.lastLine == "started")
        #expect(result.seconds < 10)
    }

    @Test func theWatcherEndsTheRun() throws {
        var o = options(timeout: 30)
        o.grace = 0.2
        let result = try QEMUProcess.run(["/bin/sh", "-c", "echo done; exec sleep 30"], options: o) { line, _ in line == "done" }
        #expect(!result.timedOut)
        #expect(result.seconds < 10)
    }

    @Test func aMissingToolIsAFailure() {
        #expect(throws: Subprocess.Failure.self) {
            try QEMUProcess.run(["/nonexistent/qemu"], options: options()) { _, _ in false }
        }
    }
}

@Suite struct SubprocessTests {
    @Test func captureFeedsStdinAndSeparatesTheStreams() throws {
        let out = try Subprocess.capture(["/bin/sh", "-c", "cat; echo err >&2; exit 2"], input: Data("in\n".utf8))
        #expect(out.status == 2)
        #expect(String(decoding: out.stdout, as: UTF8.self) == "in\n")
        #expect(String(decoding: out.stderr, as: UTF8.self) == "err\n")
        #expect(out.text == "in\nerr\n")
        #expect(Subprocess.resolve("sh") != nil)
        #expect(Subprocess.resolve("/nonexistent") == nil)
        #expect(throws: Subprocess.Failure.self) { try Subprocess.capture(["no-such-tool-here"]) }
    }
}

@Suite struct ConsoleStreamTests {
    func run(_ chunks: [String], hiding: [String] = ["cmk: guest stats "]) -> (shown: String, lines: [String]) {
        var s = ConsoleStream(hiding: hiding)
        var shown: [UInt8] = []
        var lines: [String] = []
        for c in chunks {
            let (b, l) = s.feed(Array(c.utf8))
            shown += b
            lines += l
        }
        let (tail, last) = s.finish()
        shown += tail
        if let last { lines.append(last) }
        return (String(decoding: shown, as: UTF8.self), lines)
    }

    @Test func aPromptAppearsAtOnce() {
        var s = ConsoleStream(hiding: ["cmk: guest stats "])
        #expect(s.feed(Array("guest# ".utf8)).show == Array("guest# ".utf8))
        // Typed "cat" echoed on the prompt's line: shown as it comes.
        #expect(s.feed(Array("c".utf8)).show == Array("c".utf8))
        _ = s.feed(Array("\n".utf8))
        // At a line's start, "c" could begin a hidden line: held back, then
        // shown once the line departs from the prefix.
        #expect(s.feed(Array("c".utf8)).show.isEmpty)
        #expect(s.feed(Array("at".utf8)).show == Array("cat".utf8))
    }

    @Test func statsLinesAreHiddenButWatched() {
        let (shown, lines) = run(["cmk: boot ok\n", "cmk: guest st", "ats kind=hvc exits=1 us=2\r\n", "cmk: guest power off\n"])
        #expect(shown == "cmk: boot ok\ncmk: guest power off\n")
        #expect(lines == ["cmk: boot ok", "cmk: guest stats kind=hvc exits=1 us=2", "cmk: guest power off"])
        // With --stats nothing is hidden here (the table comes at the end).
        #expect(run(["cmk: guest stats kind=hvc exits=1 us=2\n"], hiding: []).shown == "cmk: guest stats kind=hvc exits=1 us=2\n")
    }

    @Test func byteByByte() {
        let text = "a\ncmk: guest stats kind=x exits=1 us=1\ncmk: guest start vcpus=1\nguest# "
        let (shown, lines) = run(text.map { String($0) })
        #expect(shown == "a\ncmk: guest start vcpus=1\nguest# ")
        #expect(lines == ["a", "cmk: guest stats kind=x exits=1 us=1", "cmk: guest start vcpus=1", "guest# "])
    }

    @Test func anUnfinishedPrefixAtTheEndIsShown() {
        #expect(run(["cmk: gue"]).shown == "cmk: gue")
        #expect(run(["cmk: guest stats kind"]).shown == "")
    }
}

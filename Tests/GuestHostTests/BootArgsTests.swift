import Foundation
import Testing
import Topology

@testable import GuestHost

@Suite struct BootArgsTests {
    @Test func defaultsAppendAndRun() throws {
        #expect(try GuestBootArgs().line() == "console=ttyAMA0 earlycon=pl011,0x9000000 nokaslr quiet")
        #expect(try GuestBootArgs(append: " loglevel=7 ").line() == GuestBootArgs.defaults + " loglevel=7")
        let line = try GuestBootArgs(append: "init_on_free=0", run: "uname -r; nproc").line()
        #expect(line == GuestBootArgs.defaults + " init_on_free=0 cmk.run=" + GuestBootArgs.encode(script: "uname -r; nproc\n"))
        // One parameter: no space, no quote.
        let value = try #require(line.split(separator: " ").last)
        #expect(!value.contains("\""))
    }

    @Test func refusals() {
        #expect(throws: GuestHostError.self) { try GuestBootArgs(append: "a\nb").line() }
        #expect(throws: GuestHostError.self) { try GuestBootArgs(append: "cmk.run=abc").line() }
    }

    /// Linux's arm64 COMMAND_LINE_SIZE is 2048 with its NUL: 2047 bytes pass,
    /// 2048 are refused, with a message that names the limit.
    @Test func theCommandLineLimit() throws {
        let base = GuestBootArgs.defaults.utf8.count + 1
        #expect(try GuestBootArgs(append: String(repeating: "x", count: 2047 - base)).line().utf8.count == 2047)
        #expect {
            try GuestBootArgs(append: String(repeating: "x", count: 2048 - base)).line()
        } throws: { ($0 as? GuestHostError)?.message.contains("at most 2047") == true }
        // A script whose base64 is too long; base64 grows by 4/3.
        #expect {
            try GuestBootArgs(run: String(repeating: "echo hello; ", count: 130)).line()
        } throws: {
            guard let e = $0 as? GuestHostError else { return false }
            return e.kind == .badInput && e.message.contains("--run")
        }
        #expect(try GuestBootArgs(run: String(repeating: "echo hello; ", count: 100)).line().utf8.count < 2048)
    }

    /// What guest/init does: `echo "$run" | base64 -d`. Checked against the
    /// host's `base64 -d` (coreutils; busybox's decodes the same RFC 4648
    /// alphabet), and busybox itself when the default guest's is runnable.
    @Test(arguments: [
        "true",
        "uname -r; nproc",
        "echo 'single' \"double\" $HOME `date` \\ back; exit 3",
        "line one\nline two\n\ttabbed\n",
        "printf '%s\\n' é ü 中文 🙂",
        String(decoding: (1...255).map { UInt8($0) }, as: UTF8.self),
        String(repeating: "a", count: 1), String(repeating: "ab", count: 1), String(repeating: "abc", count: 1),
    ])
    func base64RoundTrip(script: String) throws {
        let encoded = GuestBootArgs.encode(script: script)
        #expect(encoded.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+/=".contains($0)) })
        #expect(Data(base64Encoded: encoded) == Data(script.utf8))
        guard let base64 = Subprocess.resolve("base64") else {
            print("NOTE: no base64 tool on PATH: the decode check is skipped")
            return
        }
        // The shell's echo adds a newline, as in guest/init.
        let decoded = try Subprocess.capture([base64, "-d"], input: Data((encoded + "\n").utf8))
        #expect(decoded.status == 0)
        #expect(decoded.stdout == Data(script.utf8))
    }
}

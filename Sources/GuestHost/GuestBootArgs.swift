import Foundation

/// The guest kernel's command line: the defaults, the user's `--append`, and
/// the `--run` script as `cmk.run=<base64>` (guest/init decodes it with
/// busybox `base64 -d`). The same line goes into the device tree's
/// `chosen/bootargs` under cmk and to `-append` under plain QEMU.
public struct GuestBootArgs: Equatable, Sendable {
    /// The console is the emulated PL011; earlycon prints before the
    /// console driver is up (a guest that dies early is not silent);
    /// `nokaslr quiet` save about 0.25 s of boot under TCG.
    public static let defaults = "console=ttyAMA0 earlycon=pl011,0x9000000 nokaslr quiet"
    /// The kernel parameter guest/init reads its script from.
    public static let runParameter = "cmk.run"

    public var append: String?
    public var run: String?

    public init(append: String? = nil, run: String? = nil) {
        self.append = append
        self.run = run
    }

    /// The script as it travels: standard base64 (RFC 4648, with padding,
    /// no line breaks), which busybox `base64 -d` decodes. Its alphabet has
    /// no space or quote, so the kernel keeps it as one parameter.
    public static func encode(script: String) -> String {
        Data(script.utf8).base64EncodedString()
    }

    /// The whole line. Refuses one the kernel would truncate.
    public func line() throws(GuestHostError) -> String {
        var parts = [Self.defaults]
        if let append, !append.trimmingCharacters(in: .whitespaces).isEmpty {
            guard !append.contains(where: { $0.isNewline || $0 == "\0" }) else {
                throw .badInput("--append must be one line (no newline or NUL)")
            }
            guard !append.contains("\(Self.runParameter)=") else {
                throw .badInput("--append must not set \(Self.runParameter)=: use --run")
            }
            parts.append(append.trimmingCharacters(in: .whitespaces))
        }
        if let run {
            parts.append("\(Self.runParameter)=\(Self.encode(script: run + (run.hasSuffix("\n") ? "" : "\n")))")
        }
        let line = parts.joined(separator: " ")
        let limit = GuestMachine.commandLineSize - 1
        let bytes = line.utf8.count
        guard bytes <= limit else {
            let script = run.map { " (--run's script: \($0.utf8.count) bytes, \(Self.encode(script: $0).utf8.count) in base64)" } ?? ""
            throw .badInput("the guest's kernel command line would be \(bytes) bytes; Linux keeps at most \(limit) (COMMAND_LINE_SIZE 2048 with its NUL)\(script): shorten --run or --append, or put the commands in the initramfs")
        }
        return line
    }
}

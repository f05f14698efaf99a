/// QEMU's gdbstub for `cmk boot --gdb`: QEMU starts with every vCPU stopped
/// before its first instruction (`-S`) and waits for gdb on a local TCP port.
public struct GDBStub: Equatable, Sendable {
    public var port: Int

    public init(port: Int = 1234) { self.port = port }

    /// The QEMU options: listen on `port` (this machine only), start stopped.
    public var qemuArguments: [String] { ["-gdb", "tcp:127.0.0.1:\(port)", "-S"] }

    /// The gdb command that attaches with the kernel's symbols, and those of
    /// the guest's `vmlinux` when given (it is linked at its own addresses).
    public func debuggerCommand(kernel: String, vmlinux: String? = nil) -> [String] {
        var command = ["gdb-multiarch", "-q", kernel]
        if let vmlinux { command += ["-ex", "add-symbol-file \(vmlinux)"] }
        command += ["-ex", "target remote 127.0.0.1:\(port)"]
        return command
    }

    /// `debuggerCommand` as a shell line.
    public func debuggerShellLine(kernel: String, vmlinux: String? = nil) -> String {
        debuggerCommand(kernel: kernel, vmlinux: vmlinux).map(shellQuoted).joined(separator: " ")
    }
}

extension QEMUCommand {
    /// Adds QEMU's gdbstub to the command.
    public mutating func add(_ stub: GDBStub) {
        arguments.insert(contentsOf: stub.qemuArguments, at: 1)
    }
}

/// `arg`, quoted for a POSIX shell where needed.
func shellQuoted(_ arg: String) -> String {
    arg.allSatisfy { $0.isLetter || $0.isNumber || "-_./=,:+@".contains($0) } ? arg : "'\(arg.replacing("'", with: "'\\''"))'"
}

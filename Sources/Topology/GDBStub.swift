/// QEMU's gdbstub for `cmk boot --gdb` and `cmk guest --gdb`: QEMU starts with every vCPU stopped
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

    /// What `cmk boot --gdb` and `cmk guest --gdb` print on stderr before
    /// QEMU starts: where QEMU waits and the exact command that attaches.
    public func attachMessage(kernel: String, vmlinux: String? = nil) -> String {
        """
        cmk: QEMU waits for gdb on 127.0.0.1:\(port), stopped before the first instruction; attach with
          \(debuggerShellLine(kernel: kernel, vmlinux: vmlinux))
        """
    }
}

extension QEMUCommand {
    /// Adds QEMU's gdbstub to the command.
    public mutating func add(_ stub: GDBStub) {
        arguments.insert(contentsOf: stub.qemuArguments, at: 1)
    }
}

/// A command as a POSIX shell line, each argument quoted where needed.
public func shellLine(_ arguments: [String]) -> String {
    arguments.map(shellQuoted).joined(separator: " ")
}

/// `arg`, quoted for a POSIX shell where needed.
public func shellQuoted(_ arg: String) -> String {
    arg.allSatisfy { $0.isLetter || $0.isNumber || "-_./=,:+@".contains($0) } ? arg : "'\(arg.replacing("'", with: "'\\''"))'"
}

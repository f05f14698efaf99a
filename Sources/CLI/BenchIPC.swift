import ArgumentParser
import Foundation
import Hosted
import HostedChannel
import Kernel

/// `cmk bench ipc`: a client `Call`s and a server `ReplyRecv`s through the
/// real kernel entry (big lock, lookup, fast path, scheduler) on the host.
/// Reports nanoseconds and instructions per one-way IPC, each differenced
/// against the same loop with the kernel calls left out.
struct BenchIPC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipc",
        abstract: "Measure one-way IPC (Call / ReplyRecv) through the host kernel.")

    @Option(help: "Round trips to time (each is two one-way IPCs).")
    var iterations = 2_000_000

    @Option(help: "Round trips under callgrind (instruction counts).")
    var countIterations = 100_000

    @Flag(help: "Skip the callgrind instruction count.")
    var noCallgrind = false

    @Option(help: .hidden)
    var inner: String? = nil

    func run() throws {
        if let mode = inner {
            // Child process under callgrind: run the loop once and exit.
            let world = try IPCWorld()
            world.run(roundTrips: countIterations, ipc: mode == "ipc")
            if mode == "ipc" { try world.verify(roundTrips: countIterations) }
            return
        }
        let world = try IPCWorld()
        world.run(roundTrips: 10_000, ipc: true)  // warm up
        let clock = ContinuousClock()
        let withIPC = clock.measure { world.run(roundTrips: iterations, ipc: true) }
        try world.verify(roundTrips: 10_000 + iterations)
        let without = clock.measure { world.run(roundTrips: iterations, ipc: false) }
        let ns = (seconds(withIPC) - seconds(without)) * 1e9 / Double(2 * iterations)
        print("cmk bench ipc: one-way IPC = Call or ReplyRecv, client and server at equal priority")
        print("machine: \(HostMachine.summary)")
        print(String(format: "time: %.1f ns per one-way IPC (%d round trips; %.3f s with IPC, %.3f s without)",
            ns, iterations, seconds(withIPC), seconds(without)))
        if noCallgrind {
            print("instructions: skipped (--no-callgrind)")
        } else if let ipc = callgrind("ipc"), let base = callgrind("baseline") {
            let per = Double(ipc - base) / Double(2 * countIterations)
            print(String(format: "instructions: %.1f per one-way IPC (callgrind Ir, %d round trips: %d with IPC, %d without)",
                per, countIterations, ipc, base))
            print(per <= 300 ? "goal (<= 300 instructions per one-way IPC): met" : "goal (<= 300 instructions per one-way IPC): NOT met")
        } else {
            print("instructions: valgrind not available")
        }
        print("rerun: swift run -c release cmk bench ipc --iterations \(iterations) --count-iterations \(countIterations)")
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Total instructions (callgrind "Collected") of a child run in `mode`.
    private func callgrind(_ mode: String) -> Int? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        p.arguments = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", exe,
            "bench", "ipc", "--inner", mode, "--count-iterations", String(countIterations)]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let text = String(data: data, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.contains("Collected :") {
            return Int(line.split(separator: ":").last!.trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}

/// A booted kernel with an endpoint, a server blocked in Recv and a client
/// about to Call, both at priority 100.
final class IPCWorld {
    let memory: UnsafeMutableRawPointer
    let kernel: ClusterKernel
    let client: TCBRef
    let server: TCBRef
    static let endpoint: Word = 20

    struct SetupFailed: Error { let what: String }

    init() throws {
        let size = 1 << 20
        memory = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 1 << 16)
        guard let k = ClusterKernel.boot(memory: memory, size: size) else { throw SetupFailed(what: "boot") }
        kernel = k
        let root = k.rootThread
        var untyped = RootSlot.firstUntyped, bits: UInt8 = 0
        var i = RootSlot.firstUntyped
        while k.rootSlot(i).type == .untyped {
            if k.rootSlot(i).bits > bits { bits = k.rootSlot(i).bits; untyped = i }
            i += 1
        }
        func invoke(_ cap: Word, _ label: InvocationLabel, _ args: [Word], _ extra: [Word] = []) throws {
            root.pointee.messageInfo = MessageInfo(label: label.rawValue, length: args.count, extraCaps: extra.count)
            for (i, a) in args.enumerated() { root.pointee.mr[i] = a }
            for (i, c) in extra.enumerated() { root.pointee.extraCaps[i] = c }
            k.syscall(.call, capAddress: cap)
            if let e = root.pointee.error { throw SetupFailed(what: "\(label): \(e)") }
        }
        let cnode = RootSlot.cnode
        try invoke(untyped, .untypedRetype, [ObjectType.endpoint.rawValue, 0, 0, 0, IPCWorld.endpoint, 1], [cnode])
        try invoke(untyped, .untypedRetype, [ObjectType.tcb.rawValue, 0, 0, 0, 30, 2], [cnode])
        for t: Word in [30, 31] {
            try invoke(t, .tcbConfigure, [0], [cnode])
            try invoke(t, .tcbSetPriority, [100, 100])
        }
        server = k.thread(k.rootSlot(30))!
        client = k.thread(k.rootSlot(31))!
        try invoke(RootSlot.thread, .tcbSetPriority, [99])
        try invoke(30, .tcbResume, [])
        // The server runs (100 > 99) and waits on the endpoint.
        guard k.currentThread == server else { throw SetupFailed(what: "server not running") }
        k.syscall(.recv, capAddress: IPCWorld.endpoint)
        guard k.currentThread == root else { throw SetupFailed(what: "root not back") }
        try invoke(31, .tcbResume, [])
        guard k.currentThread == client else { throw SetupFailed(what: "client not running") }
    }

    /// The benchmark loop. `ipc == false` does the same register work
    /// without entering the kernel (the baseline).
    @inline(never)
    func run(roundTrips: Int, ipc: Bool) {
        let k = kernel, c = client, s = server
        var n = 0
        while n < roundTrips {
            c.pointee.messageInfo = MessageInfo(label: 1, length: 1)
            c.pointee.mr[0] = c.pointee.mr[0] &+ 1
            if ipc { k.syscall(.call, capAddress: IPCWorld.endpoint) }
            s.pointee.messageInfo = MessageInfo(label: 0, length: 1)
            s.pointee.mr[0] = s.pointee.mr[0] &+ 1
            if ipc { k.syscall(.replyRecv, capAddress: IPCWorld.endpoint) }
            n &+= 1
        }
    }

    /// The message really went both ways `roundTrips` times.
    func verify(roundTrips: Int) throws {
        guard kernel.currentThread == client, server.pointee.state == .blockedOnReceive else {
            throw SetupFailed(what: "wrong thread states after the loop")
        }
        // Each round trip adds 1 on each side and the reply copies the
        // server's word back: both hold 2 * roundTrips.
        if roundTrips > 0 && (client.pointee.mr[0] != Word(2 * roundTrips) || server.pointee.mr[0] != Word(2 * roundTrips)) {
            throw SetupFailed(what: "message not delivered")
        }
        if let v = kernel.checkInvariants() { throw SetupFailed(what: "invariant: \(v.message)") }
    }
}

import Kernel

/// `cmk bench ipc`'s world: the kernel booted on the host (`ClusterKernel`),
/// one-way IPC through its real entry path.
/// A booted kernel with an endpoint, a server blocked in Recv and a client
/// about to Call, both at priority 100.
public final class IPCWorld {
    let memory: UnsafeMutableRawPointer
    let kernel: ClusterKernel
    let client: TCBRef
    let server: TCBRef
    static let endpoint: Word = 20

    public struct SetupFailed: Error, CustomStringConvertible {
        public let what: String
        public var description: String { "IPC world: \(what)" }
    }

    public init() throws {
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
    public func run(roundTrips: Int, ipc: Bool) {
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
    public func verify(roundTrips: Int) throws {
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

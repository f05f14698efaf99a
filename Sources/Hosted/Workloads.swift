import BigLock
import CHosted
import Topology

/// What a core does inside one kernel entry, under its cluster's big lock.
///
/// A generic parameter of the entry loop, so each workload specialises the
/// loop (no existential, no dynamic dispatch in the measured path). Add IPC
/// ping-pong and notification signalling as new conformers once the kernel
/// objects exist (issue 5); the runner and the reports stay as they are.
public protocol KernelEntryWorkload: Sendable {
    /// The name in reports (`--workload`).
    var name: String { get }
    /// Runs the entry's work on the cluster's kernel data (`kernel` points at
    /// 16 words of one 128-byte block; word 0 is the entry counter the runner
    /// maintains, words 8..<16 are free for the workload).
    func enter(core: Int, kernel: UnsafeMutablePointer<UInt64>)
}

/// A null system call: take the lock, count the entry, release.
public struct NullEntry: KernelEntryWorkload {
    public init() {}
    public var name: String { "null" }
    @inline(__always)
    public func enter(core: Int, kernel: UnsafeMutablePointer<UInt64>) {}
}

/// A critical section of `hold` read-modify-writes of kernel data (about one
/// cycle each when the line is local; `cmk_kernel_work`).
public struct CriticalSection: KernelEntryWorkload {
    public let hold: UInt64
    public init(hold: UInt64) { self.hold = hold }
    public var name: String { "cs" }
    @inline(__always)
    public func enter(core: Int, kernel: UnsafeMutablePointer<UInt64>) {
        cmk_kernel_work(kernel + 8, hold)
    }
}

/// The workloads `cmk experiment lock --workload` knows, by name.
public enum WorkloadKind: String, CaseIterable, Sendable, Codable {
    /// `NullEntry`.
    case null
    /// `CriticalSection` of `--hold` units.
    case cs
}

/// The hosted kernel's wait hook: the spin hint (`pause`/`yield`), and a count
/// of the spins. It serves nothing: the hosted kernel has no remote calls.
public struct HostWaitHook: LockWaitHook {
    /// Spin iterations this core has waited. (Also keeps the hook from being
    /// an empty value: in debug builds Swift boxes it, gives every empty box
    /// the same address, and ThreadSanitizer reports the threads' `inout`
    /// accesses to that one address as a race.)
    public var waits: UInt64 = 0
    @inlinable public init() {}
    @inlinable @inline(__always) public mutating func waiting() {
        waits &+= 1
        cmk_cpu_relax()
    }
}

/// The host's one dispatch from a lock kind (BigLock's `ClusterLock.Kind`,
/// the enum the topology file names and the boot information carries) to
/// the specialised lock type: every hosted run, benchmark and test that
/// needs the concrete type goes through `visit`. Inlinable, so that a caller
/// in another module gets its visitor specialised for each lock type (else
/// every acquire and release goes through witness tables: `cmk bench lock`
/// measured the specialised Swift loop at twice the C reference's time).
extension ClusterLock.Kind {
    /// Calls `visitor.visit` with this kind's lock type.
    @inlinable
    public func visit<V: LockKindVisitor>(_ visitor: V) throws(V.Failure) -> V.Result {
        switch self {
        case .ticket: return try visitor.visit(BigTicketLock.self)
        case .mcs: return try visitor.visit(MCSLock.self)
        case .clh: return try visitor.visit(CLHLock.self)
        }
    }

    /// Parses a comma-separated list of topology names ("ticket,mcs,clh"),
    /// or says what is wrong.
    public static func parseList(_ text: String) throws(HostedError) -> [ClusterLock.Kind] {
        var kinds: [ClusterLock.Kind] = []
        for name in text.split(separator: ",").map({ $0.lowercased().trimmingCharacters(in: " ") }) {
            guard let k = ClusterLock.Kind(topologyName: name) else {
                throw HostedError("unknown lock '\(name)' (known: \(topologyNames.joined(separator: ", ")))")
            }
            if !kinds.contains(k) { kinds.append(k) }
        }
        if kinds.isEmpty { throw HostedError("no lock named in '\(text)'") }
        return kinds
    }
}

/// Generic code run for one lock kind (see `LockKind.visit`).
public protocol LockKindVisitor {
    associatedtype Result
    associatedtype Failure: Error = Never
    func visit<L: KernelLock & ~Copyable>(_ lock: L.Type) throws(Failure) -> Result
}

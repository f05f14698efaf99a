import RootTaskSupport
import UserABI

/// A thread the kernel cannot run at EL0 must not stop the kernel: the
/// root task resumes a thread with no VSpace (and no fault handler) at its
/// own priority and yields to it. The kernel faults it, as its first
/// instruction would, stops it (no handler: a `user fault ... stopped`
/// line), and the root task runs on: `cmk: cluster I user no-vspace ok`.
/// (Before this check the trap path panicked: a user could stop its
/// cluster.)
enum NoVSpace {
    static func run(_ pingPong: inout PingPong) {
        let cluster = pingPong.cluster
        let tcb = pingPong.nextSlot
        pingPong.nextSlot += 1
        var e = pingPong.retype(.tcb, into: tcb)
        if e == 0 { e = Kernel.configure(tcb, cspace: RootTaskSlot.cnode) }
        if e == 0 { e = Kernel.writeRegisters(tcb, pc: RootTaskLayout.imageBase, sp: 0, x0: 0) }
        if e == 0 { e = Kernel.setPriority(tcb, 255) }
        if e == 0 { e = Kernel.resume(tcb) }
        if e != 0 {
            Console.failure(cluster, step: "no-vspace-setup", error: e)
            return
        }
        // Same priority: the yield hands the core to it; it faults at once
        // and is stopped, and the core comes back here.
        let r = Kernel.syscall(.yield, 0, 0)
        if r.x6 != 0 {
            Console.failure(cluster, step: "no-vspace-yield", error: r.x6)
            return
        }
        // Stopped: a second resume restarts it (still no VSpace: it faults
        // and stops again); the kernel survives that too.
        _ = Kernel.resume(tcb)
        _ = Kernel.syscall(.yield, 0, 0)
        Console.line(cluster, "user no-vspace ok")
    }
}

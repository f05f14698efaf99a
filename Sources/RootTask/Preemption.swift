import RootTaskSupport
import UserABI

/// Time slices at user level (issue 10: "a spinning thread cannot starve an
/// equal-priority one"). Two spinner threads at the same priority, below
/// the root thread's, each only counting in memory (no system call in the
/// loop). Whichever runs first (spinner 1: resumed last, it joins the head
/// of the level) would keep the core for ever without timer preemption, and
/// the other would never run. Each spinner counts the
/// switches it observes: the other's counter moved since it last looked, so
/// the other ran a slice in between and the tick handed the core back.
/// When spinner 1 has seen `switchesWanted` of them it signals a
/// notification the root thread waits on; the root thread (higher, so it
/// runs at once) suspends both and prints
/// `cmk: cluster I user preemption ok ticks=T`, T the switches both
/// spinners observed (each one the end of a time slice).
enum Preemption {
    static let priority: UInt64 = 50
    static let switchesWanted: UInt64 = 3

    /// Words of `cmk_spinner_shared()`.
    enum Shared {
        static let count = 0  // +0, +1: each spinner's iterations
        static let switches = 2  // +2, +3: switches each spinner saw
        static let notification = 4
        static let goal = 5
        static let lostThreadPointer = 6  // a spinner found another TPIDR_EL0 after a switch
    }
    static func threadPointer(_ index: UInt64) -> UInt64 { 0x5917_0000_7EAD_0000 | index }

    /// Run the test with slots from `pingPong.nextSlot` and its Untyped;
    /// prints the `ok` line or `user preemption FAILED step=S error=E`.
    static func run(_ pingPong: inout PingPong) {
        if let (step, error) = test(&pingPong) {
            Console.failure(pingPong.cluster, "user preemption FAILED step=", step: step, error: error)
        }
    }

    static func test(_ pingPong: inout PingPong) -> (StaticString, UInt64)? {
        let info = pingPong.bootInfo
        guard info[RootTaskBootInfo.freeSlotEnd] >= pingPong.nextSlot + 3 else {
            return ("slots", info[RootTaskBootInfo.freeSlotEnd])
        }
        let notification = pingPong.nextSlot, tcbs = (pingPong.nextSlot + 1, pingPong.nextSlot + 2)
        pingPong.nextSlot += 3
        let shared = cmk_spinner_shared()!
        for i in 0..<8 { cmk_volatile_store(shared + i, 0) }
        cmk_volatile_store(shared + Shared.notification, notification)
        cmk_volatile_store(shared + Shared.goal, switchesWanted)

        var e = pingPong.retype(.notification, into: notification)
        if e != 0 { return ("retype-notification", e) }
        for index: UInt64 in 0...1 {
            let tcb = index == 0 ? tcbs.0 : tcbs.1
            e = pingPong.retype(.tcb, into: tcb)
            if e != 0 { return ("retype-tcb", e) }
            let spinner = NewThread(tcb: tcb, pc: cmk_spinner_entry(), sp: cmk_spinner_stack_top(index), x0: index, priority: priority)
            if let failure = spinner.start(resume: false) { return failure }
        }
        // Both queued at one level; they run once we wait.
        e = Kernel.resume(tcbs.0)
        if e != 0 { return ("resume", e) }
        e = Kernel.resume(tcbs.1)
        if e != 0 { return ("resume", e) }
        let r = Kernel.syscall(.recv, notification, 0)
        if r.x6 != 0 { return ("wait", r.x6) }
        e = Kernel.invoke(tcbs.0, .tcbSuspend, length: 0)
        if e != 0 { return ("suspend", e) }
        e = Kernel.invoke(tcbs.1, .tcbSuspend, length: 0)
        if e != 0 { return ("suspend", e) }

        let seen = (cmk_volatile_load(shared + Shared.switches), cmk_volatile_load(shared + Shared.switches + 1))
        // Spinner 1 saw its switches: spinner 0 ran between each of them.
        // Spinner 0 usually saw one fewer, but not always: a slice may end
        // before it completed an iteration (QEMU with -icount and busy
        // cores), so its count is reported, not checked.
        if seen.1 < switchesWanted { return ("switches-1", seen.1) }
        // Each switch was a tick's (the general trap path): each spinner
        // found its own thread pointer after every one.
        let lost = cmk_volatile_load(shared + Shared.lostThreadPointer)
        if lost != 0 { return ("thread-pointer", lost) }
        Console.put("cmk: cluster ")
        Console.put(decimal: pingPong.cluster)
        Console.put(" user preemption ok ticks=")
        Console.put(decimal: seen.0 + seen.1)
        cmk_debug_put_char(10)
        return nil
    }
}

/// A spinner (`index` 0 or 1): count for ever; count the switches seen (the
/// other spinner's counter moved). Spinner 1 signals the root thread's
/// notification once when it has seen the goal; no other system call.
@_cdecl("cmk_root_spinner")
public func rootSpinner(_ index: UInt64) {
    let shared = cmk_spinner_shared()!
    let me = Int(index & 1)
    let mine = shared + Preemption.Shared.count + me
    let other = shared + Preemption.Shared.count + (1 - me)
    let switches = shared + Preemption.Shared.switches + me
    var last = cmk_volatile_load(other)
    cmk_set_thread_pointer(Preemption.threadPointer(index))
    while true {
        cmk_volatile_store(mine, cmk_volatile_load(mine) &+ 1)
        let now = cmk_volatile_load(other)
        if now != last {
            last = now
            if cmk_thread_pointer() != Preemption.threadPointer(index) {
                cmk_volatile_store(shared + Preemption.Shared.lostThreadPointer, cmk_thread_pointer())
            }
            let seen = cmk_volatile_load(switches) &+ 1
            cmk_volatile_store(switches, seen)
            if me == 1 && seen == cmk_volatile_load(shared + Preemption.Shared.goal) {
                _ = Kernel.syscall(.send, cmk_volatile_load(shared + Preemption.Shared.notification), 0)
            }
        }
    }
}

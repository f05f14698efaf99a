import RootTaskSupport
import UserABI

/// The cluster's big lock, exercised and measured from user level (issue
/// 10): one thread per core of the cluster, each in a loop of a short
/// system call (`UserABI.benchmarkHold`), so every call is a real trap that
/// takes the big lock, as sel4bench measures SMP. The root thread is core
/// 0's thread; it makes one more thread per other core (SetAffinity), which
/// waits on an endpoint between runs: each `Send` from the root thread
/// starts one thread's round (the parameters are in shared memory), the
/// thread counts itself `ready` and waits for the root thread's `start`
/// (released only when every thread is ready), runs, counts itself `done`
/// and signals a notification. (Without the `start` gate a thread that
/// finished early could take a second start meant for a thread not yet
/// waiting, run twice while that one never ran: the lock check caught it.)
///
/// - **the lock check**, every boot: every core makes `checkCalls` calls;
///   the kernel counts them in a plain global only the lock protects, and
///   the count must come out exact (a lock that let two cores in at once
///   loses increments). Line:
///   `cmk: cluster I lock=KIND stress cores=N increments=M ok`.
/// - **the lock experiment** (`cmk experiment lock --qemu`, boot
///   information words `lockExperiment`...): for a window of `lockTicks`
///   counter ticks, starting together, every core calls in a loop: a null
///   entry (workload 1) or `lockHold` iterations of work inside the kernel
///   (workload 2), then `lockDelay` iterations outside. Per call: wait =
///   from just before the `svc` to the handler's first instruction under
///   the lock (so it includes the exception entry and the trap path before
///   the handler: a few ticks even uncontended), hold = the handler's work
///   (the trap path's own hold around it is not in it). Line (the host's
///   `LockExperimentLine`, docs/experiments.md):
///   `cmk: lockexp cluster=I lock=K cores=N ticks=T freq=F kernel=E contended=C entries=e0,... wait=S/M/b:c,... hold=S/M/b:c,...`
///   where `kernel` is the kernel's count of the window's calls (checked
///   against the sum of `entries`), `contended` the calls whose trap waited
///   for the lock.
enum LockRun {
    static let checkCalls: UInt64 = 2000
    static let maxCores = Int(CMK_LOCK_MAX_CORES)
    /// The experiment keeps histograms for this many cores per cluster (the
    /// host refuses a larger cluster: `QEMULockBackend.maxCoresPerCluster`).
    static let maxMeasuredCores = Int(CMK_LOCK_MAX_MEASURED_CORES)
    static let threadPriority: UInt64 = 200

    /// Words of `cmk_lock_shared()`: written by the root thread before it
    /// resumes the threads, except `done` (each thread adds 1, releasing,
    /// when its results are written) and the per-core results.
    enum Shared {
        static let mode = 0  // 1 check, 2 experiment
        static let start = 1  // counter value the window opens at (0: not yet)
        static let end = 2
        static let hold = 3
        static let delay = 4
        static let notification = 5
        static let ready = 6  // threads that are waiting for `start`
        static let done = 7
        static let entries = 64  // + core
        static let contended = 128  // + core
        static let failed = 192  // + core: 0 or the error of a call
    }

    enum Mode {
        static let check: UInt64 = 1
        static let experiment: UInt64 = 2
    }

    struct Threads {
        var notification: UInt64 = 0
        var endpoint: UInt64 = 0
        var tcbs: UInt64 = 0  // slot of core 1's TCB; core j's is tcbs + j - 1
        var cores = 1
    }

    /// Both runs; a failure prints `user lock FAILED step=S error=E`.
    static func run(_ pingPong: inout PingPong) {
        var threads = Threads()
        let failure = make(&pingPong, &threads) ?? check(pingPong, threads) ?? experiment(pingPong, threads)
        // Parked in Recv (or never started): not current anywhere.
        for core in 1..<max(threads.cores, 1) where threads.tcbs != 0 {
            _ = Kernel.invoke(threads.tcbs + UInt64(core - 1), .tcbSuspend, length: 0)
        }
        if let (step, error) = failure { Console.failure(pingPong.cluster, "user lock FAILED step=", step: step, error: error) }
    }

    /// A notification, an endpoint, and per other core a TCB in the root
    /// task's VSpace and CSpace, bound to its core (SetAffinity), running:
    /// each waits on the endpoint for its first round.
    static func make(_ pingPong: inout PingPong, _ threads: inout Threads) -> (StaticString, UInt64)? {
        let info = pingPong.bootInfo
        let cores = Int(info[RootTaskBootInfo.cores])
        guard cores >= 1, cores <= maxCores else { return ("cores", UInt64(cores)) }
        guard info[RootTaskBootInfo.freeSlotEnd] >= pingPong.nextSlot + UInt64(cores) + 1 else {
            return ("slots", info[RootTaskBootInfo.freeSlotEnd])
        }
        threads.notification = pingPong.nextSlot
        threads.endpoint = pingPong.nextSlot + 1
        let tcbs = pingPong.nextSlot + 2
        pingPong.nextSlot += UInt64(cores) + 1
        var e = pingPong.retype(.notification, into: threads.notification)
        if e != 0 { return ("retype-notification", e) }
        e = pingPong.retype(.endpoint, into: threads.endpoint)
        if e != 0 { return ("retype-endpoint", e) }
        let shared = cmk_lock_shared()!
        cmk_volatile_store(shared + Shared.notification, threads.notification)
        for core in 1..<max(cores, 1) {
            let tcb = tcbs + UInt64(core - 1)
            e = pingPong.retype(.tcb, into: tcb)
            if e != 0 { return ("retype-tcb", e) }
            threads.tcbs = tcbs
            threads.cores = core + 1
            let thread = NewThread(
                tcb: tcb, pc: cmk_lock_thread_entry(), sp: cmk_lock_thread_stack_top(UInt64(core)),
                x0: UInt64(core) | threads.endpoint << 8, priority: threadPriority, core: UInt64(core))
            if let failure = thread.start() { return failure }
        }
        threads.cores = cores
        return nil
    }

    /// Run one round on every core: a `Send` starts each other core's thread,
    /// the root thread is core 0's; returns when all are done (their results
    /// in the shared words and histograms).
    static func round(_ threads: Threads, mode: UInt64, hold: UInt64, delay: UInt64, ticks: UInt64, frequency: UInt64)
        -> (StaticString, UInt64)?
    {
        let shared = cmk_lock_shared()!
        for i in 0..<Int(CMK_LOCK_SHARED_WORDS) where i != Shared.notification { cmk_volatile_store(shared + i, 0) }
        for core in 0..<min(threads.cores, maxMeasuredCores) {
            for which: UInt64 in 0...1 {
                let h = cmk_lock_histogram(UInt64(core), which)!
                for i in 0..<Int(CMK_LOCK_HISTOGRAM_WORDS) { h[i] = 0 }
            }
        }
        cmk_volatile_store(shared + Shared.mode, mode)
        cmk_volatile_store(shared + Shared.hold, hold)
        cmk_volatile_store(shared + Shared.delay, delay)
        for _ in 1..<max(threads.cores, 1) {
            // Blocks until a thread waits (the first round: until it got there).
            let r = Kernel.syscall(.send, threads.endpoint, MessageTag(label: 0, length: 0).word)
            if r.x6 != 0 { return ("start", r.x6) }
        }
        // Open the gate once every thread took its start and waits (so none
        // can finish and take another's start), for the experiment a
        // millisecond ahead (releasing: a thread that sees `start` sees
        // `end` and the parameters).
        let others = UInt64(threads.cores - 1)
        while cmk_atomic_load_acquire(shared + Shared.ready) < others { _ = Kernel.syscall(.yield, 0, 0) }
        let start = mode == Mode.experiment ? cmk_counter() &+ frequency / 1000 : 1
        cmk_volatile_store(shared + Shared.end, start &+ ticks)
        cmk_atomic_store_release(shared + Shared.start, start)
        work(core: 0, shared: shared)
        // Wait for the others: each adds itself to `done` (releasing) and
        // then signals; a signal that comes after we looked wakes the Recv.
        while cmk_atomic_load_acquire(shared + Shared.done) < others + 1 {
            let r = Kernel.syscall(.recv, threads.notification, 0)
            if r.x6 != 0 { return ("wait", r.x6) }
        }
        for core in 0..<threads.cores where cmk_volatile_load(shared + Shared.failed + core) != 0 {
            return ("benchmark-call", cmk_volatile_load(shared + Shared.failed + core))
        }
        return nil
    }

    /// The kernel's count of benchmark calls so far (this call included).
    static func kernelCount() -> UInt64? {
        let r = cmk_syscall(UserABI.benchmarkHold, 0, 0, 0, 0, 0, 0)
        return r.x6 == 0 ? r.x2 : nil
    }

    /// The calls counted per core against the kernel's count of them: the
    /// kernel's count moved by exactly the calls made (plus our own probe).
    /// Returns the kernel's count of the round's calls.
    static func checkedCount(_ threads: Threads, before: UInt64) -> (counted: UInt64, failure: (StaticString, UInt64)?) {
        let shared = cmk_lock_shared()!
        var total: UInt64 = 0
        for core in 0..<threads.cores { total &+= cmk_volatile_load(shared + Shared.entries + core) }
        guard let after = kernelCount() else { return (0, ("count", 0)) }
        let counted = after &- before &- 1
        return (counted, counted == total ? nil : ("lost-increments", counted))
    }

    static func check(_ pingPong: PingPong, _ threads: Threads) -> (StaticString, UInt64)? {
        guard let before = kernelCount() else { return ("count", 0) }
        if let failure = round(threads, mode: Mode.check, hold: 0, delay: 0, ticks: 0, frequency: 0) { return failure }
        let (total, failure) = checkedCount(threads, before: before)
        if let failure { return failure }  // the count equals the calls made
        Console.put("cmk: cluster ")
        Console.put(decimal: pingPong.cluster)
        Console.put(" lock=")
        putLockName(pingPong.bootInfo)
        Console.put(" stress cores=")
        Console.put(decimal: UInt64(threads.cores))
        Console.put(" increments=")
        Console.put(decimal: total)
        Console.put(" ok")
        cmk_debug_put_char(10)
        return nil
    }

    static func experiment(_ pingPong: PingPong, _ threads: Threads) -> (StaticString, UInt64)? {
        let info = pingPong.bootInfo
        let request = info[RootTaskBootInfo.lockExperiment]
        guard request != 0 else { return nil }
        guard request <= 2 else { return ("request", request) }
        let ticks = info[RootTaskBootInfo.lockTicks]
        let hold = request == 2 ? info[RootTaskBootInfo.lockHold] : 0
        guard threads.cores <= maxMeasuredCores else { return ("measured-cores", UInt64(threads.cores)) }
        guard let before = kernelCount() else { return ("count", 0) }
        if let failure = round(
            threads, mode: Mode.experiment, hold: hold, delay: info[RootTaskBootInfo.lockDelay], ticks: ticks,
            frequency: info[RootTaskBootInfo.counterFrequency])
        {
            return failure
        }
        let (counted, failure) = checkedCount(threads, before: before)
        if let failure { return failure }

        let shared = cmk_lock_shared()!
        var contended: UInt64 = 0
        for core in 0..<threads.cores { contended &+= cmk_volatile_load(shared + Shared.contended + core) }
        Console.put("cmk: lockexp cluster=")
        Console.put(decimal: pingPong.cluster)
        Console.put(" lock=")
        putLockName(info)
        Console.put(" cores=")
        Console.put(decimal: UInt64(threads.cores))
        Console.put(" ticks=")
        Console.put(decimal: ticks)
        Console.put(" freq=")
        Console.put(decimal: info[RootTaskBootInfo.counterFrequency])
        Console.put(" kernel=")
        Console.put(decimal: counted)
        Console.put(" contended=")
        Console.put(decimal: contended)
        Console.put(" entries=")
        for core in 0..<threads.cores {
            if core > 0 { Console.put(",") }
            Console.put(decimal: cmk_volatile_load(shared + Shared.entries + core))
        }
        for which: UInt64 in 0...1 {
            Console.put(which == 0 ? " wait=" : " hold=")
            putMerged(which, cores: threads.cores)
        }
        cmk_debug_put_char(10)
        return nil
    }

    /// The cores' histograms `which` merged: `sum/max/bucket:count,...`.
    static func putMerged(_ which: UInt64, cores: Int) {
        var sum: UInt64 = 0
        var top: UInt64 = 0
        for core in 0..<cores {
            let h = cmk_lock_histogram(UInt64(core), which)!
            sum &+= h[Histogram.sum]
            top = max(top, h[Histogram.max])
        }
        Console.put(decimal: sum)
        Console.put("/")
        Console.put(decimal: top)
        Console.put("/")
        var first = true
        for bucket in 0..<Histogram.buckets {
            var count: UInt64 = 0
            for core in 0..<cores { count &+= cmk_lock_histogram(UInt64(core), which)![bucket] }
            if count == 0 { continue }
            if !first { Console.put(",") }
            first = false
            Console.put(decimal: UInt64(bucket))
            Console.put(":")
            Console.put(decimal: count)
        }
    }

    static func putLockName(_ info: UnsafePointer<UInt64>) {
        let name = info[RootTaskBootInfo.lockName]
        for i in 0..<8 {
            let byte = UInt8(truncatingIfNeeded: name >> UInt64(8 * i))
            if byte == 0 { break }
            cmk_debug_put_char(byte)
        }
    }

    /// One core's loop (the root thread's on core 0, a lock thread's
    /// elsewhere). Results go to the shared words and this core's
    /// histograms, then `done` (releasing).
    static func work(core: Int, shared: UnsafeMutablePointer<UInt64>) {
        let mode = cmk_volatile_load(shared + Shared.mode)
        let hold = cmk_volatile_load(shared + Shared.hold)
        let delay = cmk_volatile_load(shared + Shared.delay)
        let wait = cmk_lock_histogram(UInt64(core), 0)!
        let held = cmk_lock_histogram(UInt64(core), 1)!
        var calls: UInt64 = 0
        var contended: UInt64 = 0
        var failed: UInt64 = 0
        if core != 0 { _ = cmk_atomic_add_release(shared + Shared.ready, 1) }
        // Acquiring: pairs with the root thread's releasing store.
        var start = cmk_atomic_load_acquire(shared + Shared.start)
        while start == 0 {
            cmk_yield_hint()
            start = cmk_atomic_load_acquire(shared + Shared.start)
        }
        if mode == Mode.check {
            while calls < checkCalls {
                let r = cmk_syscall(UserABI.benchmarkHold, 0, 0, 0, 0, 0, 0)
                if r.x6 != 0 { failed = r.x6; break }
                calls &+= 1
                cmk_yield_hint()
            }
        } else {
            let end = cmk_volatile_load(shared + Shared.end)
            while cmk_counter() < start { cmk_yield_hint() }
            while true {
                let t0 = cmk_counter()
                if t0 >= end { break }
                let r = cmk_syscall(UserABI.benchmarkHold, hold, 0, 0, 0, 0, 0)
                if r.x6 != 0 { failed = r.x6; break }
                Histogram.record(wait, r.x0 &- t0)
                Histogram.record(held, r.x1 &- r.x0)
                contended &+= r.x3
                calls &+= 1
                if delay > 0 { cmk_lock_keep(cmk_lock_work(delay)) }
                // As the kernel loop did: QEMU's single-threaded TCG then
                // switches vCPUs here, outside the lock, not in the middle
                // of a hold (which would count another vCPU's instructions
                // as this one's hold under -icount).
                cmk_yield_hint()
            }
        }
        cmk_volatile_store(shared + Shared.entries + core, calls)
        cmk_volatile_store(shared + Shared.contended + core, contended)
        cmk_volatile_store(shared + Shared.failed + core, failed)
        _ = cmk_atomic_add_release(shared + Shared.done, 1)
    }

    /// `LockHistogram`'s layout and bucket function (BigLock/LockProbe.swift:
    /// the host reads the bucket indices back with it; the root task links
    /// no kernel module, so the five lines are repeated here, and the host's
    /// parser checks each histogram's max lies in its top bucket).
    enum Histogram {
        static let buckets = 496
        static let count = 496
        static let sum = 497
        static let max = 498

        static func bucket(of value: UInt64) -> Int {
            if value < 8 { return Int(truncatingIfNeeded: value) }
            let msb = 63 &- value.leadingZeroBitCount
            let sub = Int(truncatingIfNeeded: value >> UInt64(msb &- 3)) & 7
            return (msb &- 2) &* 8 &+ sub
        }

        static func record(_ h: UnsafeMutablePointer<UInt64>, _ value: UInt64) {
            h[bucket(of: value)] &+= 1
            h[count] &+= 1
            h[sum] &+= value
            if value > h[max] { h[max] = value }
        }
    }
}

/// A lock thread (cores 1...): entered with x0 = its core | the endpoint's
/// slot << 8. Waits on the endpoint; each message is a round: run it, count
/// itself done, signal the root thread, wait again. Registers only (no IPC
/// buffer: the messages are empty, the parameters in shared memory).
@_cdecl("cmk_root_lock_thread")
public func rootLockThread(_ argument: UInt64) {
    let shared = cmk_lock_shared()!
    let core = Int(argument & 0xFF)
    let endpoint = argument >> 8
    while true {
        let r = Kernel.syscall(.recv, endpoint, 0)
        if r.x6 != 0 {
            // Reported by the root thread; this thread stops calling (it
            // spins until the root thread suspends it).
            cmk_volatile_store(shared + LockRun.Shared.failed + core, r.x6)
            _ = cmk_atomic_add_release(shared + LockRun.Shared.done, 1)
            _ = Kernel.syscall(.send, cmk_volatile_load(shared + LockRun.Shared.notification), 0)
            while true {}
        }
        LockRun.work(core: core, shared: shared)
        _ = Kernel.syscall(.send, cmk_volatile_load(shared + LockRun.Shared.notification), 0)
    }
}

import Arch
import ArchAsm
import BigLock
import Cluster
import Synchronization

/// `cmk experiment lock --qemu`: the big lock under a workload, measured in
/// the booted kernel (docs/experiments.md).
///
/// Every core of the cluster runs the same loop for the same window of the
/// virtual counter, starting together: take the big lock (timing the wait),
/// run the workload inside (`null`: nothing; `cs`: `hold` iterations of
/// work), count the entry in a kernel global the lock protects, release,
/// do `delay` iterations of work outside the lock, and execute YIELD. Wait and hold times
/// go into the cluster's two histograms, recorded inside the critical
/// section, so the lock protects them too (the recording is part of the
/// measured hold, a few instructions). The first core prints one line:
///
/// `cmk: lockexp cluster=I lock=K cores=N ticks=T freq=F kernel=E contended=C entries=e0,e1,... wait=S/M/b:c,... hold=S/M/b:c,...`
///
/// with sum/max and the non-empty histogram buckets (`LockHistogram` indices).
enum LockExperiment {
    struct Parameters {
        /// 0: null entry, 1: critical section of `hold` iterations.
        var workload: UInt64
        var hold: UInt64
        var delay: UInt64
        var durationTicks: UInt64
    }

    /// The request in this cluster's record, if it is a lock experiment.
    static func requested(_ record: UnsafeMutablePointer<UInt64>) -> Parameters? {
        guard let request = ExperimentRequest(words: { record[ClusterRecord.experiment + $0] }),
            case .lock(let workload, let hold, let delay, let durationTicks) = request
        else { return nil }
        return Parameters(workload: workload, hold: hold, delay: delay, durationTicks: durationTicks)
    }

    /// The window's start word in the cluster record.
    static func start(_ record: UnsafeMutablePointer<UInt64>) -> UnsafeMutablePointer<Atomic<UInt64>> {
        UnsafeMutableRawPointer(record + ClusterRecord.experimentStart).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The per-cluster results, private, all protected by the big lock except
    /// `Scratch.lockEntries[core]`, which only that core writes. The
    /// histograms are in the scratch area (`Scratch.waitHistogram`, ...).
    nonisolated(unsafe) static var kernelEntries: UInt64 = 0
    nonisolated(unsafe) static var contended: UInt64 = 0
    nonisolated(unsafe) static var finished = 0

    /// `iterations` steps of a dependent chain (an LCG: no closed form the
    /// optimiser could substitute). Its result must be `kept`, or the call
    /// is dead code: a pure function whose value is unused may be deleted.
    @inline(never)
    static func work(_ iterations: UInt64) -> UInt64 {
        var x: UInt64 = iterations
        var i: UInt64 = 0
        while i < iterations {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            i &+= 1
        }
        return x
    }

    /// Keeps `value`: a volatile store to this core's stack. The compiler
    /// must compute the value and must store it before the next counter read
    /// (volatile accesses and the counter's `asm volatile` keep their
    /// order), so the work stays inside the window it is timed in. An
    /// ordinary sink such as `global &+= sink & 0` folds to nothing and
    /// leaves the work dead. `tests/qemu/boot-tests.sh` proves the work runs:
    /// under `-icount` the measured hold grows with `--hold`.
    @inline(__always)
    static func keep(_ value: UInt64) {
        var slot: UInt64 = 0
        withUnsafeMutablePointer(to: &slot) { cmk_mmio_write64(UInt64(UInt(bitPattern: $0)), value) }
    }

    /// One core's part. `start` is published by the first core (releasing)
    /// once every core of the cluster is up; the others wait for it.
    static func run(
        _ lock: ClusterLock, core: Int, parameters p: Parameters, start: UnsafeMutablePointer<Atomic<UInt64>>
    ) {
        // Acquiring: pairs with the first core's releasing store of `start`.
        var begin = start.pointee.load(ordering: .acquiring)
        while begin == 0 {
            CPU.relax()
            begin = start.pointee.load(ordering: .acquiring)
        }
        while CPU.counter < begin { CPU.relax() }
        let end = begin + p.durationTicks
        let wait = Scratch.waitHistogram
        let hold = Scratch.holdHistogram
        var mine: UInt64 = 0
        while true {
            let t0 = CPU.counter
            if t0 >= end { break }
            let waited = lock.acquire(core: core)
            let t1 = CPU.counter
            if p.workload == 1 { keep(work(p.hold)) }
            kernelEntries &+= 1
            if waited { contended &+= 1 }
            wait.pointee.record(t1 &- t0)
            hold.pointee.record(CPU.counter &- t1)
            lock.release(core: core)
            mine &+= 1
            if p.delay > 0 { keep(work(p.delay)) }
            // A hint, about free on hardware; in QEMU's single-threaded TCG it
            // hands the host thread to the next vCPU, so the cores interleave
            // entry by entry instead of one running alone for a time slice.
            CPU.relax()
        }
        Scratch.lockEntries[core] = mine
        lock.acquire(core: core)
        finished += 1
        lock.release(core: core)
    }

    /// First core: wait for every core, then print the cluster's line.
    static func report(_ lock: ClusterLock, clusterId: UInt64, cores: Int, parameters p: Parameters, deadline: UInt64) {
        while true {
            lock.acquire(core: 0)
            let done = finished
            lock.release(core: 0)
            if done == cores { break }
            CPU.relax()
            if CPU.counter > deadline { panic("lock experiment: cores did not finish; done:", decimal: done) }
        }
        Console.begin()
        Console.put("cmk: lockexp cluster=")
        Console.decimal(clusterId)
        Console.put(" lock=")
        Console.put(lock.kind.name)
        Console.put(" cores=")
        Console.decimal(cores)
        Console.put(" ticks=")
        Console.decimal(p.durationTicks)
        Console.put(" freq=")
        Console.decimal(CPU.counterFrequency)
        Console.put(" kernel=")
        Console.decimal(kernelEntries)
        Console.put(" contended=")
        Console.decimal(contended)
        Console.put(" entries=")
        for c in 0..<cores {
            if c > 0 { Console.put(",") }
            Console.decimal(Scratch.lockEntries[c])
        }
        Console.put(" wait=")
        put(Scratch.waitHistogram.pointee)
        Console.put(" hold=")
        put(Scratch.holdHistogram.pointee)
        Console.end()
    }

    /// `sum/max/bucket:count,...` (non-empty buckets only).
    static func put(_ h: borrowing LockHistogram) {
        Console.decimal(h.sum)
        Console.put("/")
        Console.decimal(h.max)
        Console.put("/")
        var first = true
        for i in 0..<LockHistogram.bucketCount where h.buckets[i] != 0 {
            if !first { Console.put(",") }
            first = false
            Console.decimal(i)
            Console.put(":")
            Console.decimal(h.buckets[i])
        }
    }
}

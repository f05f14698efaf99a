import RootTaskSupport
import UserABI

/// The root task: the EL0 program every cluster's kernel starts (issue 10,
/// docs/kernel/abi.md "The root task"). On bare metal, entry.S `_start`
/// (RootTaskSupport) calls `cmk_root_task_main` with the boot information's
/// address; `main` is never called there. On the host this target builds to
/// a program that says what it is, so `swift build` and `swift test` stay
/// whole.
@main
struct RootTaskImage {
    static func main() {
        #if hasFeature(Embedded)
        rootTaskMain(RootTaskLayout.bootInfo)
        #else
        print("cmk-root-task is the EL0 root task (bare metal); `cmk boot` builds it and QEMU loads it for the kernel.")
        #endif
    }
}

/// The program: say hello, run the user-level ping-pong, the big lock's
/// check and experiment on every core (LockRun.swift), the time-slice test
/// (Preemption.swift), the no-VSpace check, the fuzzer, the IPC benchmark
/// when asked; suspend.
@_cdecl("cmk_root_task_main")
public func rootTaskMain(_ bootInfoAddress: UInt64) {
    guard let info = UnsafePointer<UInt64>(bitPattern: UInt(bootInfoAddress)) else { return }
    let valid = info[RootTaskBootInfo.magic] == RootTaskBootInfo.magicValue
    let cluster = valid ? info[RootTaskBootInfo.clusterId] : ~0
    Console.line(cluster, "user start")
    if !valid {
        Console.failure(cluster, step: "bootinfo", error: info[RootTaskBootInfo.magic])
    } else {
        RemoteNotify.setUp(bootInfo: info, cluster: cluster)
        var pingPong = PingPong(bootInfo: info, cluster: cluster)
        if let (step, error) = pingPong.run() {
            Console.failure(cluster, step: step, error: error)
        } else {
            Console.line(cluster, "user ipc ok")
            LockRun.run(&pingPong)
            IRQTest.run(pingPong)
            Preemption.run(&pingPong)
            NoVSpace.run(&pingPong)
            Fuzz.run(bootInfo: info, cluster: cluster, nextSlot: pingPong.nextSlot)
            RemoteNotify.finish(bootInfo: info, cluster: cluster)
            // The fuzzer takes 6 slots from there.
            if info[RootTaskBootInfo.benchmark] != 0 {
                IPCBench.run(bootInfo: info, cluster: cluster, firstSlot: pingPong.nextSlot + 6)
            }
        }
    }
    _ = Kernel.invoke(RootTaskSlot.thread, .tcbSuspend, length: 0)
}

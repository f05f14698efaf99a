import Arch
import BigLock
import InterKernel
import Kernel

/// The inter-kernel channel while the root task runs at EL0
/// (docs/channel.md, "After the boot's channel phase"; docs/kernel/notifications.md).
///
/// From `open` (the root task's launch) to `close` (it suspended itself)
/// the cluster's first core runs user threads instead of polling its rings,
/// so it asks every peer for the doorbell on each message
/// (`ChannelEndpoint.requestDoorbells`) and serves its rings from the
/// doorbell's interrupt, under the big lock: in the EL0 trap path's
/// interrupt loop (`UserRun.interrupts`) and when the doorbell ends its WFI
/// in `UserRun.idle`. A `notify(export:)` becomes `remoteSignalLocked`: the
/// badge is the one this cluster exported, never the message's.
///
/// The other way: a user thread's Send on a remote notification capability
/// queues the signal in the kernel; after the system call the trap path
/// (`afterSyscall`) sends it as `notify(export:)`, ringing the peer's
/// doorbell.
///
/// Invariant: only the cluster's first core (kernel core 0) touches its
/// ring ends, always under the big lock in this phase. A signal queued on
/// another core waits in the kernel's queue; that core rings the first
/// core's doorbell SGI (the reschedule IPI's SGI: the first core's
/// interrupt loop serves the channel on every interrupt) and the first core
/// sends it.
enum UserChannel {
    /// The channel while the root task runs (nil otherwise, or with one
    /// cluster). `RootTaskBringUp.running` is a plain global: written by
    /// the first core before the root task's first entry and under the big
    /// lock when it ends, read here under the big lock, so the lock's
    /// release/acquire orders every access (no atomic needed).
    ///
    /// The doorbell SGI is also the reschedule IPI; the first core cannot
    /// tell them apart and does both on either (a poll of empty rings is a
    /// few header loads).
    static var endpoint: ChannelEndpoint? {
        RootTaskBringUp.running ? KernelGlobals.channel : nil
    }

    /// Before the root task's first instruction, on the first core (lock not
    /// held): ask for doorbells, then poll once (the `requestDoorbells`
    /// contract: what was sent before the request rang nothing).
    static func open(_ kernel: ClusterKernel) {
        guard let channel = endpoint else { return }
        channel.requestDoorbells()
        kernel.lock.acquire(core: 0)
        serve(kernel, core: 0)
        kernel.lock.release(core: 0)
    }

    /// The root task suspended itself (first core, lock not held): peers
    /// stop ringing; the boot (or the guest's channel) polls from here on.
    /// Signals still queued stay in the kernel's queue.
    static func close() {
        KernelGlobals.channel?.finishSleep()
    }

    /// After a system call from EL0 (lock held): send what it queued. On the
    /// first core at once; on another, ring the first core's doorbell.
    static func afterSyscall(_ kernel: ClusterKernel, core: Int) {
        guard kernel.outgoingSignalCount != 0, let channel = endpoint else { return }
        if core == 0 {
            forward(kernel, channel)
        } else {
            ChannelBringUp.doorbell.ring(cluster: channel.cluster)
        }
    }

    /// Serve the channel (lock held): on the first core only, while the root
    /// task runs. Sends the queued signals, then drains every incoming ring,
    /// then sends the reschedule IPIs the signals owe other cores.
    static func serve(_ kernel: ClusterKernel, core: Int) {
        guard core == 0, let channel = endpoint else { return }
        forward(kernel, channel)
        // At most one ring's worth of rounds: a peer that keeps its ring
        // full cannot keep this core in the kernel (the rest waits for the
        // next interrupt; its doorbell is pending again by then).
        var rounds = 0
        while rounds < channel.layout.slotsPerRing,
            channel.pollAll({ from, result in receive(kernel, channel, from, result) }) != 0
        {
            rounds += 1
        }
        UserRun.ringRescheduled(kernel, except: core)
    }

    /// Send every queued signal, oldest first. One to a failed cluster, or
    /// into a ring still full (its receiver does not drain it), is dropped:
    /// the sender learns nothing either way, as with a signal to an export
    /// that is not there; a user that needs an answer asks for one
    /// (the root tasks' handshake, docs/kernel/notifications.md).
    static func forward(_ kernel: ClusterKernel, _ channel: ChannelEndpoint) {
        while let out = kernel.takeOutgoingSignalLocked() {
            guard !ClusterFailures.isFailed(out.cluster) else { continue }
            _ = channel.send(.notify(export: UInt64(out.index)), to: out.cluster, doorbell: ChannelBringUp.doorbell)
        }
    }

    /// One message (lock held). Nothing a peer sends can make this block or
    /// panic: a notification for an export that is not there is refused by
    /// the kernel (`.failedLookup`, nothing changes), a pong is answered once
    /// or not at all (the big lock is held: no waiting for ring space),
    /// guest traffic has no meaning before the guest runs and is ignored.
    static func receive(_ kernel: ClusterKernel, _ channel: ChannelEndpoint, _ from: Int, _ result: ReceiveResult) {
        switch result {
        case .message(.notify(let export)):
            _ = kernel.remoteSignalLocked(export: Word(export), from: from, core: 0)
        case .message(.ping(let token, let sentAt)):
            _ = channel.send(
                .pong(token: token, pingSentAt: sentAt, repliedAt: CPU.counter), to: from, doorbell: ChannelBringUp.doorbell)
        case .message(.clusterFailed(let reason, _)):
            ClusterFailures.declare(from, reason.name)
        case .message, .dropped, .empty:
            // Late pongs, shutdown, guest traffic: nothing to do. Lines
            // the ring dropped are counted by the receiver (its stats).
            break
        }
    }
}

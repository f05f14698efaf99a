import RootTaskSupport
import UserABI

/// Cross-cluster notifications between root tasks (docs/kernel/notifications.md,
/// "The root tasks' handshake"): a root task signals a notification of
/// another cluster through a capability its own kernel issued, and the
/// receiving kernel decides the badge from what its root task exported,
/// never from the message.
///
/// Cluster 0 receives from every live peer K (1 <= K < 16, the export
/// table's size): in `setUp` it retypes a notification, mints one copy per
/// peer with badge 1 << K and exports it at index K. Each peer K, in its
/// `setUp`, exports its own notification at index 0 with badge 1 (1 << 0:
/// "from cluster 0") and issues itself a remote notification capability for
/// export K of cluster 0 (`interKernelIssueRemote`).
///
/// The rendezvous needs no shared memory. Nothing tells a sender whether
/// its signal was taken: cluster 0's kernel refuses (and forgets) a signal
/// for an export its root task has not made yet. So in `finish` a peer
/// Sends, then polls its own notification for cluster 0's answer, Yielding
/// between polls; with no answer after `pollsPerTry` polls it Sends again,
/// at most `maxTries` times. Cluster 0 Waits on its notification (its first
/// core sleeps in WFI until a doorbell, unless other threads run), checks
/// that every bit of the word it got is one of its exports' badges, prints
/// `cmk: notify K->0 badge=0x.. word=0x.. ok` for each new peer K and
/// answers it through a remote capability for export 0 of K (issued, used,
/// deleted); a peer it already answered that signals again is answered
/// again. It waits for every live peer (`RootTaskBootInfo.liveClusters`).
/// The answer cannot be refused: the peer exported before its first Send.
/// A peer prints `cmk: notify 0->K badge=0x1 tries=N ok`.
///
/// Signals OR together at the receiver, so repeated Sends are harmless.
/// Cluster 0 exports first thing and answers after its own tests; the peers
/// Send after theirs: the tries are few. A peer that was never answered
/// prints `cmk: cluster K user notify FAILED step=no-answer error=T`;
/// cluster 0 has no deadline (a blocking Wait has none): a live peer that
/// never signals leaves the boot to `cmk boot`'s timeout.
///
/// Root CNode slots 360-376 (of the root task's [360, 385)).
enum RemoteNotify {
    /// The notification (both roles).
    static let notification: UInt64 = 360
    /// Cluster 0: the copy for peer K in `notification + K` (K in 1..<16).
    /// A peer: its badge-1 copy.
    static let minted: UInt64 = 361
    /// Cluster 0: the answer's remote capability (one at a time). A peer:
    /// its remote capability for export K of cluster 0.
    static let remote: UInt64 = 376
    static let exportLimit: UInt64 = 16
    static let pollsPerTry: UInt64 = 2000
    static let maxTries: UInt64 = 5000

    /// Set by `setUp` when it completed: `finish` runs only then.
    nonisolated(unsafe) static var ready = false

    /// The peers cluster 0 receives from: live clusters 1..<16 (bit K).
    static func peers(_ info: UnsafePointer<UInt64>) -> UInt64 {
        let count = info[RootTaskBootInfo.clusterCount]
        let all: UInt64 = count >= 64 ? ~0 : (1 << count) &- 1
        return info[RootTaskBootInfo.liveClusters] & all & ((1 << exportLimit) &- 1) & ~1
    }

    /// Early in the root task: make and export the notification (cluster 0
    /// once per peer; a peer once, for the answers).
    static func setUp(bootInfo info: UnsafePointer<UInt64>, cluster: UInt64) {
        let peers = peers(info)
        if cluster == 0 ? peers == 0 : peers & (1 << cluster) == 0 || info[RootTaskBootInfo.liveClusters] & 1 == 0 {
            return  // alone, or not a peer cluster 0 waits for (K >= 16, cluster 0 failed)
        }
        if let (step, error) = export(info, cluster: cluster, peers: peers) {
            failure(cluster, step, error)
            return
        }
        ready = true
    }

    static func export(_ info: UnsafePointer<UInt64>, cluster: UInt64, peers: UInt64) -> (StaticString, UInt64)? {
        let all: UInt64 = 0xF
        var e = PingPong(bootInfo: info, cluster: cluster).retype(.notification, into: notification)
        if e != 0 { return ("retype", e) }
        if cluster != 0 {
            e = Kernel.mint(notification, into: minted, rights: all, badge: 1)
            if e != 0 { return ("mint", e) }
            e = Kernel.invoke(minted, .notificationExport, length: 1, 0)
            if e != 0 { return ("export", e) }
            e = issueRemote(cluster: 0, index: cluster, into: remote)
            return e != 0 ? ("issue-remote", e) : nil
        }
        var k: UInt64 = 1
        while k < exportLimit {
            if peers & (1 << k) != 0 {
                e = Kernel.mint(notification, into: notification + k, rights: all, badge: 1 << k)
                if e != 0 { return ("mint", e) }
                e = Kernel.invoke(notification + k, .notificationExport, length: 1, k)
                if e != 0 { return ("export", e) }
            }
            k += 1
        }
        return nil
    }

    /// Late in the root task: cluster 0 waits for every peer and answers
    /// each; a peer signals until answered.
    static func finish(bootInfo info: UnsafePointer<UInt64>, cluster: UInt64) {
        guard ready else { return }
        ready = false
        if let (step, error) = cluster == 0 ? receive(peers(info)) : signal(cluster) {
            failure(cluster, step, error)
        }
    }

    /// Cluster 0: Wait until every peer's bit came; print and answer each.
    static func receive(_ peers: UInt64) -> (StaticString, UInt64)? {
        var seen: UInt64 = 0
        while seen != peers {
            let r = Kernel.syscall(.recv, notification, 0)
            if r.x6 != 0 { return ("wait", r.x6) }
            let word = r.x0
            // The receiver's badges only: a bit no export carries means the
            // badge came from somewhere else (the message, a forged signal).
            if word == 0 || word & ~peers != 0 { return ("badge", word) }
            var k: UInt64 = 1
            while k < exportLimit {
                let bit: UInt64 = 1 << k
                if word & bit != 0 {
                    if seen & bit == 0 {
                        Console.put("cmk: notify ")
                        Console.put(decimal: k)
                        Console.put("->0 badge=0x")
                        Console.put(hex: word & bit)
                        Console.put(" word=0x")
                        Console.put(hex: word)
                        Console.put(" ok")
                        cmk_debug_put_char(10)
                        seen |= bit
                    }
                    // Answer (again, if the peer signalled again: it may
                    // not have had the first answer yet).
                    var e = issueRemote(cluster: k, index: 0, into: remote)
                    if e != 0 { return ("issue-remote", e) }
                    e = Kernel.syscall(.send, remote, 0).x6
                    if e != 0 { return ("answer", e) }
                    e = Kernel.invoke(RootTaskSlot.cnode, .cnodeDelete, length: 2, remote, 64)
                    if e != 0 { return ("delete", e) }
                }
                k += 1
            }
        }
        return nil
    }

    /// Peer K: Send, poll for the answer, Send again, until answered.
    static func signal(_ cluster: UInt64) -> (StaticString, UInt64)? {
        var tries: UInt64 = 0
        while tries < maxTries {
            let e = Kernel.syscall(.send, remote, 0).x6
            if e != 0 { return ("send", e) }
            tries += 1
            var polls: UInt64 = 0
            while polls < pollsPerTry {
                let r = Kernel.syscall(.nbRecv, notification, 0)
                if r.x6 != 0 { return ("poll", r.x6) }
                if r.x0 != 0 {
                    // Only cluster 0 is exported to, with badge 1.
                    if r.x0 != 1 { return ("badge", r.x0) }
                    Console.put("cmk: notify 0->")
                    Console.put(decimal: cluster)
                    Console.put(" badge=0x")
                    Console.put(hex: r.x0)
                    Console.put(" tries=")
                    Console.put(decimal: tries)
                    Console.put(" ok")
                    cmk_debug_put_char(10)
                    return nil
                }
                _ = Kernel.syscall(.yield, 0, 0)
                polls += 1
            }
        }
        return ("no-answer", tries)
    }

    /// InterKernel IssueRemote(cluster, index, slot of the root CNode).
    static func issueRemote(cluster: UInt64, index: UInt64, into slot: UInt64) -> UInt64 {
        Kernel.invoke(RootTaskSlot.interKernel, .interKernelIssueRemote, length: 3, cluster, index, slot,
                      caps: 1, RootTaskSlot.cnode)
    }

    /// `cmk: cluster I user notify FAILED step=S error=E`.
    static func failure(_ cluster: UInt64, _ step: StaticString, _ error: UInt64) {
        Console.put("cmk: cluster ")
        Console.put(decimal: cluster)
        Console.put(" user notify FAILED step=")
        Console.put(step)
        Console.put(" error=")
        Console.put(decimal: error)
        cmk_debug_put_char(10)
    }
}

extension Console {
    /// Lower-case hexadecimal, no leading zeros.
    static func put(hex v: UInt64) {
        if v >= 16 { put(hex: v >> 4) }
        let digit = UInt8(truncatingIfNeeded: v & 15)
        cmk_debug_put_char(digit < 10 ? 48 + digit : 87 + digit)
    }
}

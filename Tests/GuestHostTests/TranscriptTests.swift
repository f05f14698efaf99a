import Foundation
import Testing
import Topology

@testable import GuestHost

@Suite struct TranscriptTests {
    let topology: Topology = {
        try! TopologyLoader.load(text: """
            name = "1x2"
            memory = "1G"
            [[cluster]]
            cores = [0, 1]
            memory = "128M"
            [shared]
            channel = "1M"
            guest = "256M"
            """, file: "t.toml")
    }()

    let boot = """
        cmk: loader image=0x40080000-0x40094000 private=128B clusters=1 cores=2 lock=ticket
        cmk: cluster 0 private va=0x20000000 pa=0x41000000 value=0 ok
        cmk: cluster 0 up cores=0,1 data=0x41000000-0x41000080
        cmk: boot ok clusters=1 cores=2
        """
    let start = "cmk: guest start vcpus=1 entry=0x51200000 dtb=0x6110d000"
    let guestBoot = """
        [    0.000000] Booting Linux on physical CPU 0x0000000000 [0x000f0510]\r
        guest: init\r
        6.1.0-57-cloud-arm64
        guest: run exit=0
        [    2.962526] reboot: Power down
        """
    let stats = """
        cmk: guest stats kind=hvc exits=12 us=40
        cmk: guest stats kind=mmio-uart exits=300 us=900
        cmk: guest stats refused=2 aborts=1 undefined=0
        """

    func transcript(_ parts: String...) -> GuestTranscript {
        var t = GuestTranscript()
        for part in parts { 
            // Split bytes, as ConsoleStream does ("\r\n" is one Character).
            for line in part.utf8.split(separator: 10, omittingEmptySubsequences: false) {
                t.consume(String(decoding: line, as: UTF8.self))
            }
         }
        return t
    }

    func verdict(_ t: GuestTranscript, status: Int32? = 0, timedOut: Bool = false, interrupted: Bool = false) -> (GuestStatus, String?) {
        let v = t.verdict(.init(qemuStatus: status, timedOut: timedOut, interrupted: interrupted, timeout: 120,
                                lastLine: "last words", qemuErrors: ""), topology: topology)
        return (v.status, v.reason)
    }

    @Test func powerOffIsSuccess() {
        let t = transcript(boot, start, guestBoot, stats, "cmk: guest power off")
        #expect(t.started?.entry == 0x5120_0000)
        #expect(t.started?.dtb == 0x6110_d000)
        #expect(t.reachedInit)
        #expect(t.runExit == 0)
        #expect(t.poweredOff)
        #expect(t.isFinished)
        #expect(t.stats == [.init(kind: "hvc", exits: 12, microseconds: 40), .init(kind: "mmio-uart", exits: 300, microseconds: 900)])
        #expect(verdict(t).0 == .ok)
        #expect(verdict(t).1 == nil)
        // Powered off, but QEMU failed: cmk's failure.
        #expect(verdict(t, status: 1).0 == .kernelFailure)
        #expect(verdict(t, status: nil).0 == .kernelFailure)
    }

    @Test func aGuestPanic() {
        let t = transcript(boot, start, "[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs", "[    1.1] ---[ end Kernel panic - not syncing: VFS ]---")
        #expect(t.isFinished)
        let (status, reason) = verdict(t, status: 0)
        #expect(status == .guestFailure)
        #expect(reason?.contains("Kernel panic - not syncing: VFS") == true)
        // Even when the host then had to stop QEMU.
        #expect(verdict(t, status: nil, timedOut: true).0 == .guestFailure)
    }

    @Test func aGuestReset() {
        let t = transcript(boot, start, guestBoot, "cmk: guest reset")
        #expect(t.isFinished)
        #expect(verdict(t).0 == .guestFailure)
        #expect(verdict(t).1?.contains("reset") == true)
    }

    @Test func aKernelPanicOrException() {
        let p = transcript(boot, start, "cmk: panic core=0 cluster=0: vgic: list register overflow")
        #expect(p.isFinished)
        #expect(verdict(p, status: 1) == (.kernelFailure, "cmk: panic core=0 cluster=0: vgic: list register overflow"))
        let e = transcript(boot, start, "cmk: exception core=0 cluster=0 vector=current-sp-elx sync class=0x25 (data abort) esr=0x96000005 far=0x0 elr=0x40081234 sp=0x41010000")
        #expect(verdict(e, status: 1).0 == .kernelFailure)
        // A kernel failure outranks the guest's panic it may have caused.
        let both = transcript(boot, start, "Kernel panic - not syncing: x", "cmk: panic core=0 cluster=0: y")
        #expect(verdict(both).0 == .kernelFailure)
    }

    @Test func theTimeout() {
        let t = transcript(boot, start, "[    0.1] Booting Linux")
        #expect(!t.isFinished)
        let (status, reason) = verdict(t, status: nil, timedOut: true)
        #expect(status == .timeout)
        #expect(reason?.contains("last line: last words") == true)
        #expect(reason?.contains("after `cmk: guest start`") == true)
        #expect(reason?.contains("120 s") == true)
    }

    @Test func interrupted() {
        #expect(verdict(transcript(boot, start), status: nil, interrupted: true).0 == .interrupted)
        #expect(GuestStatus.interrupted.rawValue == 130)
    }

    @Test func qemuEndsWithoutPowerOff() {
        // The guest never started: the boot transcript says what is missing.
        let noBoot = transcript("cmk: loader image=0x40080000-0x40094000 private=128B clusters=1 cores=2")
        let (s1, r1) = verdict(noBoot)
        #expect(s1 == .kernelFailure)
        #expect(r1?.contains("no `cmk: cluster 0 up` line") == true)
        // Booted, powered off as before the guest work: no guest start.
        let (s2, r2) = verdict(transcript(boot))
        #expect(s2 == .kernelFailure)
        #expect(r2?.contains("never started") == true)
        // Started, then QEMU went away.
        let (s3, r3) = verdict(transcript(boot, start, guestBoot), status: 0)
        #expect(s3 == .kernelFailure)
        #expect(r3?.contains("without `cmk: guest power off`") == true)
    }

    @Test func abortsAreCollected() {
        let t = transcript(boot, start, "cmk: guest abort ipa=0x41000000 write size=4 injected", guestBoot, "cmk: guest power off")
        #expect(t.aborts.count == 1)
        #expect(verdict(t).0 == .ok)
    }

    @Test func statsTable() throws {
        let table = transcript(stats).statsTable
        #expect(table.contains("mmio-uart"))
        #expect(table.contains("300"))
        // Totals last in the exit table, then the refusals, then the big lock.
        let lines = table.split(separator: "\n").map(String.init)
        let refused = try #require(lines.firstIndex { $0.hasPrefix("refused:") })
        #expect(lines[refused - 1].hasPrefix("total"))
        #expect(lines.last == "big lock: the kernel printed no `cmk: guest lock` lines")
        #expect(table.contains("312"))
        #expect(table.contains("3.00"))
        #expect(table.contains("refused: refused=2 aborts=1 undefined=0"))
        #expect(GuestTranscript().statsTable.contains("no `cmk: guest stats` lines"))
    }

    @Test func exitStatusesMatchTheDocs() {
        #expect(GuestStatus.allCases.map(\.rawValue) == [0, 1, 2, 3, 4, 5, 130])
    }
}

@Suite struct SMPStatsTests {
    /// Two clusters' lines: the table sums each kind and shows each
    /// cluster's exits; every cluster's refusal line is kept.
    @Test func statsOfSeveralClusters() {
        var t = GuestTranscript()
        for line in [
            "cmk: guest stats cluster=1 kind=irq exits=10 us=30",
            "cmk: guest stats cluster=1 refused=1 aborts=1 undefined=0 dropped=2",
            "cmk: guest stats cluster=0 kind=irq exits=5 us=20",
            "cmk: guest stats cluster=0 refused=0 aborts=0 undefined=0 dropped=0",
        ] { t.consume(line) }
        #expect(t.stats == [
            GuestTranscript.ExitStat(cluster: 1, kind: "irq", exits: 10, microseconds: 30),
            GuestTranscript.ExitStat(cluster: 0, kind: "irq", exits: 5, microseconds: 20),
        ])
        let lines = t.statsTable.split(separator: "\n").map(String.init)
        #expect(lines[1].hasSuffix("exits by cluster"))
        #expect(lines[2].hasPrefix("irq") && lines[2].contains(" 15 ") && lines[2].hasSuffix("5/10"))
        #expect(lines.contains("refused: cluster=1 refused=1 aborts=1 undefined=0 dropped=2"))
        #expect(lines.contains("refused: cluster=0 refused=0 aborts=0 undefined=0 dropped=0"))
    }
}

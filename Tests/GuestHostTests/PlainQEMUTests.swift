import Cluster
import Foundation
import Testing
import Topology

@testable import GuestHost

/// The default guest (scripts/guest-image.sh's cache) booted under plain
/// QEMU, Linux at EL1, with the device tree `GuestDeviceTree` generates
/// (its memory node moved to where QEMU's RAM is; QEMU rewrites the initrd
/// range): checks guest/init, the initramfs, `cmk.run`, PSCI over HVC and
/// the nodes Linux needs (timer ticking, PL011 console with its interrupt),
/// everything but cmk's kernel. A few seconds; skipped, with a note, when
/// QEMU, dtc or the cached guest is missing.
@Suite struct PlainQEMUTests {
    @Test func theDefaultGuestBootsOnOurDeviceTree() throws {
        let cache = GuestCache()
        guard toolAvailable(QEMUCommand.binary), toolAvailable("dtc"),
            FileManager.default.fileExists(atPath: cache.kernel.path),
            FileManager.default.fileExists(atPath: cache.initramfs.path)
        else {
            print("NOTE: QEMU, dtc or the default guest (scripts/setup.sh) missing: the plain-QEMU guest boot is skipped")
            return
        }
        let script = """
            tr -d '\\0' < /proc/device-tree/model; echo
            nproc
            tr -d '\\0' < /proc/device-tree/psci/method; echo
            awk '/arch_timer/ { print "timer", ($2 > 0) }' /proc/interrupts
            grep -c uart-pl011 /proc/interrupts
            exit 7
            """
        let bootArgs = try GuestBootArgs(run: script).line()
        let ram = Region(base: Machine.ramBase, size: 256 << 20)
        let tree = GuestDeviceTree(vcpuCount: 1, guest: ram, bootArgs: bootArgs,
                                   initrd: Region(base: 0x4800_0000, size: 4096))
        let dtb = FileManager.default.temporaryDirectory.appendingPathComponent("guesthost-\(UUID().uuidString).dtb")
        try Data(try GuestDeviceTree.compile(tree.source)).write(to: dtb)
        defer { try? FileManager.default.removeItem(at: dtb) }
        let arguments = [
            QEMUCommand.binary, "-M", "virt,gic-version=3", "-cpu", QEMUCommand.cpu, "-smp", "1", "-m", "256M",
            "-display", "none", "-monitor", "none", "-serial", "stdio", "-nic", "none", "-no-reboot",
            "-dtb", dtb.path, "-kernel", cache.kernel.path, "-initrd", cache.initramfs.path,
        ]
        var transcript = GuestTranscript()
        var lines: [String] = []
        var options = QEMUProcess.Options()
        options.input = .none
        options.echo = false
        options.timeout = 120
        let result = try QEMUProcess.run(arguments, options: options) { line, _ in
            lines.append(line)
            transcript.consume(line)
            return transcript.guestPanicEnded
        }
        let log = lines.joined(separator: "\n")
        #expect(result.status == 0, "\(log)\n\(result.errors)")
        #expect(transcript.guestPanic == nil)
        #expect(transcript.reachedInit, "\(log)")
        #expect(transcript.runExit == 7, "\(log)")
        for expected in ["cmk guest", "1", "hvc", "timer 1"] {
            #expect(lines.contains(expected), "no line `\(expected)` in:\n\(log)")
        }
    }
}

import Cluster
import Foundation
import Testing
@testable import Topology

@Suite struct SizeTests {
    /// One parser and one printer for sizes; the command line's old copy
    /// printed 0 as "0G" and lost bytes below 1K.
    @Test func sizesPrintExactlyAndParseBack() {
        #expect(formatSize(0) == "0")
        #expect(formatSize(100) == "100")
        #expect(formatSize(4096) == "4K")
        #expect(formatSize(128 << 20) == "128M")
        #expect(formatSize(3 << 30) == "3G")
        #expect(formatSize((1 << 20) + 1) == "1048577")
        for bytes: UInt64 in [0, 1, 1000, 4096, 2 << 20, 1 << 30, 5 << 40, 12345] {
            #expect(parseSize(formatSize(bytes)) == bytes)
        }
        #expect(parseSize("128MiB") == 128 << 20)
        #expect(parseSize("1gb") == 1 << 30)
        #expect(parseSize("") == nil)
        #expect(parseSize("M") == nil)
        #expect(parseSize("-1K") == nil)
    }
}

@Suite struct TopologyFileTests {
    @Test func anUnreadableFileIsOneDiagnosticAtLineOne() {
        let path = "/nonexistent/cmk-\(UUID().uuidString).toml"
        do {
            _ = try TopologyLoader.load(path: path)
            Issue.record("loaded a file that does not exist")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.description.hasPrefix("\(path):1: cannot read the file"))
        }
    }

    @Test func aReadableFileLoadsAsItsText() throws {
        let path = NSTemporaryDirectory() + "cmk-\(UUID().uuidString).toml"
        let text = "name = \"t\"\nmemory = \"1G\"\nlock = \"clh\"\n[[cluster]]\ncores = [0]\nmemory = \"64M\"\n[shared]\nchannel = \"1M\"\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try TopologyLoader.load(path: path) == TopologyLoader.load(text: text, file: path))
        #expect(try TopologyLoader.load(path: path).lock.topologyName == "clh")
    }
}

@Suite struct TextTableTests {
    @Test func figuresAlignRightAndTextLeft() {
        let t = TextTable(["name", "n"], rows: [["a", "1"], ["bbb", "100"]])
        #expect(t.rendered == "name    n\n----  ---\na       1\nbbb   100\n")
        let text = TextTable(["name", "what"], rows: [["a", "x"], ["bbb", ""]], alignment: .text)
        #expect(text.rendered == "name  what\n----  ----\na     x\nbbb\n")
    }
}

@Suite struct TopologyReportTests {
    @Test func theDefaultTopologysMapIsWhatTheDocsShow() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let topology = try TopologyLoader.load(path: root.appendingPathComponent("topologies/default.toml").path)
        let report = TopologyReport.render(topology)
        #expect(report.hasPrefix("topology default: 2 clusters, 4 cores, 1G RAM, ticket lock\n"))
        #expect(report.contains("0        0,1    0x41000000-0x49000000  128M"))
        #expect(report.contains("0x51000000-0x51100000  1M    shared: inter-kernel channel"))
        #expect(!report.split(separator: "\n").contains { $0.hasSuffix(" ") })
    }
}

@Suite struct GDBStubTests {
    @Test func qemuStartsStoppedAndTheCommandAttaches() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let topology = try TopologyLoader.load(path: root.appendingPathComponent("topologies/default.toml").path)
        var command = QEMUCommand(topology: topology, kernel: "k.elf", bootInfo: "b.bin")
        let plain = command.arguments
        let stub = GDBStub(port: 4321)
        command.add(stub)
        #expect(command.arguments.count == plain.count + 3)
        #expect(command.arguments[0] == QEMUCommand.binary)
        #expect(command.shellLine.contains(" -gdb tcp:127.0.0.1:4321 -S "))
        #expect(stub.debuggerShellLine(kernel: "/k/cmk-kernel") == "gdb-multiarch -q /k/cmk-kernel -ex 'target remote 127.0.0.1:4321'")
        #expect(stub.debuggerShellLine(kernel: "k", vmlinux: "/g/vmlinux")
                == "gdb-multiarch -q k -ex 'add-symbol-file /g/vmlinux' -ex 'target remote 127.0.0.1:4321'")
        #expect(stub.attachMessage(kernel: "k", vmlinux: "/g/vmlinux") == """
            cmk: QEMU waits for gdb on 127.0.0.1:4321, stopped before the first instruction; attach with
              gdb-multiarch -q k -ex 'add-symbol-file /g/vmlinux' -ex 'target remote 127.0.0.1:4321'
            """)
        #expect(shellLine(["a b", "it's", "-x=1,2"]) == "'a b' 'it'\\''s' -x=1,2")
    }
}

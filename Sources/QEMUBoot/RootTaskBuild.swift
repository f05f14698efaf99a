import Cluster
import Foundation
import Topology
import UserABI

/// The EL0 root task (Sources/RootTask): built like the kernel, with its own
/// toolset and scratch directory, then turned into the raw file image QEMU
/// loads into the root-task window (`Machine.rootTaskAddress`), with the
/// boot information's record for it (docs/boot.md, "The root task").
extension Project {
    public static var rootTaskScratch: URL { root.appendingPathComponent(".build-root-task") }
    public static var rootTaskELF: URL {
        rootTaskScratch.appendingPathComponent("aarch64-none-none-elf/release/cmk-root-task")
    }
    public static var rootTaskBinary: URL { rootTaskScratch.appendingPathComponent("cmk-root-task.bin") }

    public static var rootTaskBuildArguments: [String] {
        ["swift", "build", "--package-path", root.path, "--triple", "aarch64-none-none-elf",
         "--toolset", root.appendingPathComponent("qemu/toolset-root-task.json").path, "-c", "release",
         "--product", "cmk-root-task", "--scratch-path", rootTaskScratch.path]
    }

    /// An LLVM tool of the Swift toolchain (next to `swift`, as
    /// scripts/kernel-size.sh finds them), else whatever PATH has.
    public static func llvmTool(_ name: String) -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let swift = URL(fileURLWithPath: String(dir)).appendingPathComponent("swift")
            guard FileManager.default.isExecutableFile(atPath: swift.path) else { continue }
            let tool = swift.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: tool.path) { return tool.path }
        }
        return name
    }

    /// Newest modification time of what the root task is built from.
    public static func newestRootTaskInput() -> Double {
        var newest = 0.0
        var inputs = ["Package.swift", "qemu/toolset-root-task.json", "qemu/root-task.ld"]
            .map { root.appendingPathComponent($0).path }
        for module in ["RootTask", "RootTaskSupport", "UserABI"] {
            let dir = root.appendingPathComponent("Sources/\(module)").path
            if let e = FileManager.default.enumerator(atPath: dir) {
                for case let relative as String in e { inputs.append(dir + "/" + relative) }
            }
        }
        for path in inputs { newest = max(newest, modificationTime(path) ?? 0) }
        return newest
    }

    /// Build the root task if any input is newer than its file image, and
    /// return the image with its record (checked: `RootTaskImage.isValid`).
    public static func buildRootTask(quiet: Bool = false) throws(CMKFailure) -> RootTaskFile {
        let built = modificationTime(rootTaskBinary.path)
        if built == nil || built! < newestRootTaskInput() {
            if !quiet { FileHandle.standardError.write(Data("cmk: building the root task (\(built == nil ? "first build" : "sources changed"))...\n".utf8)) }
            let objcopy = [llvmTool("llvm-objcopy"), "-O", "binary", rootTaskELF.path, rootTaskBinary.path]
            for command in [rootTaskBuildArguments, objcopy] {
                let result: Subprocess.Output
                do {
                    result = try Subprocess.capture(command)
                } catch {
                    throw .environment(error.description)
                }
                guard result.status == 0 else {
                    throw .environment("root task build failed:\n\(result.text)\ncommand: \(command.joined(separator: " "))")
                }
            }
            do {
                try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: rootTaskBinary.path)
            } catch {
                throw .environment("cannot mark \(rootTaskBinary.path) up to date: \(error.localizedDescription)")
            }
        }
        let elf: Data, binary: Data
        do {
            elf = try Data(contentsOf: rootTaskELF)
            binary = try Data(contentsOf: rootTaskBinary)
        } catch {
            throw .environment("cannot read the root task: \(error.localizedDescription)")
        }
        guard let image = RootTaskELF.image(elf: [UInt8](elf), fileSize: UInt64(binary.count)) else {
            throw .environment("\(rootTaskELF.path): not an AArch64 ELF executable linked at 0x\(String(RootTaskLayout.imageBase, radix: 16))")
        }
        guard image.isValid else {
            throw .environment("the root task does not fit: \(image.fileSize) bytes of file, \(image.memorySize) in memory "
                + "(limits: \(Machine.rootTaskWindowSize) bytes of window, RootTaskLayout.imageLimit \(RootTaskLayout.imageLimit))")
        }
        return RootTaskFile(path: rootTaskBinary.path, image: image)
    }
}

/// The root-task record from the ELF executable's header and program
/// headers: the entry, and the memory size (the end of the last loaded
/// segment, bss included, page aligned, from `RootTaskLayout.imageBase`).
/// nil unless it is a 64-bit little-endian AArch64 executable whose lowest
/// loaded segment starts at the image base (where the raw file image starts).
public enum RootTaskELF {
    public static func image(elf: [UInt8], fileSize: UInt64, at address: UInt64 = Machine.rootTaskAddress) -> RootTaskImage? {
        func load(_ offset: Int, _ bytes: Int) -> UInt64? {
            guard offset >= 0, offset + bytes <= elf.count else { return nil }
            var v: UInt64 = 0
            for i in 0..<bytes { v |= UInt64(elf[offset + i]) << UInt64(8 * i) }
            return v
        }
        guard elf.count >= 64, elf[0] == 0x7F, elf[1] == 0x45, elf[2] == 0x4C, elf[3] == 0x46,
            elf[4] == 2, elf[5] == 1, load(18, 2) == 183,  // ELFCLASS64, little-endian, EM_AARCH64
            let entry = load(24, 8), let phoff = load(32, 8), let phentsize = load(54, 2), let phnum = load(56, 2),
            phentsize >= 56, phoff < UInt64(elf.count)
        else { return nil }
        var low = UInt64.max, high: UInt64 = 0
        for i in 0..<Int(phnum) {
            let at = Int(phoff) + i * Int(phentsize)
            guard let type = load(at, 4), let vaddr = load(at + 16, 8), let memsz = load(at + 40, 8) else { return nil }
            guard type == 1, memsz > 0 else { continue }  // PT_LOAD
            low = min(low, vaddr)
            high = max(high, vaddr &+ memsz)
        }
        guard low == RootTaskLayout.imageBase, high > low else { return nil }
        let memory = (high - low + Machine.pageSize - 1) & ~(Machine.pageSize - 1)
        return RootTaskImage(physicalAddress: address, fileSize: fileSize, memorySize: memory, entry: entry)
    }
}

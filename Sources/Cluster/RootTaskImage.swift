import UserABI

/// The boot information's root-task record: where QEMU loaded the EL0 root
/// task's file image (in the root-task window, `Machine.rootTaskAddress`)
/// and what the kernel needs to build each cluster's copy of it: the file
/// size (copied), the memory size (file + bss, zero-filled past the file,
/// at most `RootTaskLayout.imageLimit`) and the entry point (a VA in the
/// image at `RootTaskLayout.imageBase`).
///
/// Words: 0 physical address, 1 file size, 2 memory size, 3 entry.
public struct RootTaskImage: Equatable, Sendable {
    public static let wordCount = 5
    /// The root task's fuzzer: random system calls per cluster in a normal
    /// boot (`cmk boot --fuzz N` asks for more), and the most a blob may ask.
    public static let defaultFuzzCalls: UInt64 = 2_000
    public static let maxFuzzCalls: UInt64 = 100_000_000

    public var physicalAddress: UInt64
    public var fileSize: UInt64
    public var memorySize: UInt64
    public var entry: UInt64
    /// Word 4: how many system calls the root task's fuzzer makes
    /// (`RootTaskBootInfo.fuzzCalls`).
    public var fuzzCalls: UInt64 = RootTaskImage.defaultFuzzCalls

    public init(physicalAddress: UInt64 = Machine.rootTaskAddress, fileSize: UInt64, memorySize: UInt64, entry: UInt64) {
        self.physicalAddress = physicalAddress
        self.fileSize = fileSize
        self.memorySize = memorySize
        self.entry = entry
    }

    public init(words: (Int) -> UInt64) {
        self.init(physicalAddress: words(0), fileSize: words(1), memorySize: words(2), entry: words(3))
        fuzzCalls = words(4)
    }

    public var words: InlineArray<5, UInt64> {
        var w = InlineArray<5, UInt64>(repeating: 0)
        w[0] = physicalAddress
        w[1] = fileSize
        w[2] = memorySize
        w[3] = entry
        w[4] = fuzzCalls
        return w
    }

    /// The window QEMU loads the file image into.
    public static var window: Region { Region(base: Machine.rootTaskAddress, size: Machine.rootTaskWindowSize) }

    /// Where the file image lies.
    public var file: Region { Region(base: physicalAddress, size: fileSize) }

    /// Page aligned, inside the window, not empty, file within memory
    /// within `RootTaskLayout.imageLimit`, entry inside the file image.
    public var isValid: Bool {
        physicalAddress % Machine.pageSize == 0
            && fileSize > 0 && fileSize <= Machine.rootTaskWindowSize
            && Self.window.contains(file)
            && memorySize >= fileSize && memorySize <= RootTaskLayout.imageLimit
            && fuzzCalls <= Self.maxFuzzCalls
            && entry >= RootTaskLayout.imageBase && entry - RootTaskLayout.imageBase < fileSize
            && entry % 4 == 0
    }
}

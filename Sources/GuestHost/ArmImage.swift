import Foundation

/// The 64-byte header at the start of an arm64 Linux `Image`
/// (Linux Documentation/arch/arm64/booting.rst, "Call the kernel image"):
///
///     0x00 code0, code1 (on EFI kernels "MZ" and a branch)
///     0x08 text_offset   image load offset from a 2 MiB aligned base, LE
///     0x10 image_size    effective image size (includes BSS), LE
///     0x18 flags         bit 0 big-endian, bits 1-2 page size,
///                        bit 3 placement anywhere in RAM
///     0x20 res2, res3, res4
///     0x38 magic         "ARM\x64" (0x644d5241 LE)
///     0x3c res5          PE header offset on EFI kernels
public struct ArmImageHeader: Equatable, Sendable {
    public static let size = 64
    public static let magic: UInt32 = 0x644D_5241

    public var textOffset: UInt64
    /// What the kernel occupies once running, BSS included: reserve this
    /// much, not the file's size.
    public var imageSize: UInt64
    public var flags: UInt64

    public enum PageSize: UInt64, Sendable {
        case unspecified = 0, fourK = 1, sixteenK = 2, sixtyFourK = 3
    }
    public var pageSize: PageSize { PageSize(rawValue: (flags >> 1) & 3)! }
    public var isBigEndian: Bool { flags & 1 != 0 }
    /// Bit 3: the kernel may sit at any 2 MiB boundary of RAM.
    public var placeAnywhere: Bool { flags & 8 != 0 }

    /// Parse a header; `name` names the file in messages, `fileSize` (if
    /// known) is checked against `image_size`.
    public init(bytes: some Collection<UInt8>, name: String, fileSize: UInt64? = nil) throws(GuestHostError) {
        let b = Array(bytes.prefix(Self.size))
        guard b.count == Self.size else {
            throw .badInput("\(name) is not an arm64 Linux Image: \(b.count) bytes, shorter than the 64-byte header")
        }
        func word(_ at: Int, _ n: Int) -> UInt64 {
            (0..<n).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
        }
        guard UInt32(word(0x38, 4)) == Self.magic else {
            throw .badInput("\(name) is not an arm64 Linux Image: no \"ARM\\x64\" magic at offset 0x38 (an ELF vmlinux or a compressed vmlinuz.gz will not do; use arch/arm64/boot/Image)")
        }
        textOffset = word(0x08, 8)
        imageSize = word(0x10, 8)
        flags = word(0x18, 8)
        guard !isBigEndian else {
            throw .badInput("\(name) is a big-endian arm64 kernel (flags bit 0): the guest runs little-endian")
        }
        guard imageSize != 0 else {
            throw .badInput("\(name) has image_size 0 (a kernel older than 3.17): its memory footprint is unknown")
        }
        guard textOffset == 0 else {
            throw .badInput("\(name) has text_offset 0x\(String(textOffset, radix: 16)); cmk enters the guest at a 2 MiB boundary and needs text_offset 0 (Linux 5.8 and later)")
        }
        if let fileSize, fileSize > imageSize {
            throw .badInput("\(name) is \(fileSize) bytes but its header's image_size is \(imageSize): not a consistent arm64 Image")
        }
    }

    /// Read and parse the header of the file at `path`; returns it with the
    /// file's size.
    public static func read(path: String) throws(GuestHostError) -> (header: ArmImageHeader, fileSize: UInt64) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .badInput("cannot read the guest kernel \(path)")
        }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: Self.size)) ?? Data()
        let size = (try? handle.seekToEnd()) ?? UInt64(head.count)
        return (try ArmImageHeader(bytes: head, name: path, fileSize: size), size)
    }
}

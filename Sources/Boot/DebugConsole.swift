import Arch

/// DebugPutChar: user output a line at a time, so lines of different
/// clusters never interleave (one `lineBytes` buffer per core, in memory the
/// boot retyped for it: `RootTaskBringUp.debugSlot`).
///
/// A buffer's first two bytes hold the line's length (little-endian); a
/// full buffer is flushed as it is (the rest of the line follows as another
/// line). 4 KiB: the longest line a root task prints is the lock
/// experiment's (two histograms, about 1 KB).
enum DebugConsole {
    static let lineBytes = 4096
    nonisolated(unsafe) static var area: UInt = 0
    nonisolated(unsafe) static var cores = 0

    /// log2 of the bytes `cores` buffers take (at least a page).
    static func areaBits(cores: Int) -> Int {
        var bits = 12
        while (1 << bits) < cores * lineBytes { bits += 1 }
        return bits
    }

    static func put(_ byte: UInt8, core: Int) {
        guard area != 0, core < cores else { return }
        let line = UnsafeMutablePointer<UInt8>(bitPattern: area + UInt(core * lineBytes))!
        var length = Int(line[0]) | Int(line[1]) << 8
        if byte != 10 && byte != 13 {
            line[2 + length] = byte >= 32 && byte < 127 ? byte : 63  // '?'
            length += 1
            line[0] = UInt8(truncatingIfNeeded: length)
            line[1] = UInt8(truncatingIfNeeded: length >> 8)
            if length < lineBytes - 2 { return }
        } else if byte == 13 || length == 0 {
            return
        }
        Console.begin()
        for i in 0..<length { PL011.write(line[2 + i]) }
        Console.end()
        line[0] = 0
        line[1] = 0
    }
}

import RootTaskSupport

/// Whole lines through DebugPutChar (the kernel's Boot layer prints a line
/// at a time under the console lock).
enum Console {
    static func put(_ s: StaticString) {
        s.withUTF8Buffer { bytes in
            for b in bytes { cmk_debug_put_char(b) }
        }
    }

    static func put(decimal v: UInt64) {
        if v >= 10 { put(decimal: v / 10) }
        cmk_debug_put_char(UInt8(48 + v % 10))
    }

    /// `cmk: cluster I <text>`.
    static func line(_ cluster: UInt64, _ text: StaticString) {
        put("cmk: cluster ")
        put(decimal: cluster)
        put(" ")
        put(text)
        cmk_debug_put_char(10)
    }

    /// `cmk: cluster I user ipc FAILED step=S error=E` (or another `what`).
    static func failure(
        _ cluster: UInt64, _ what: StaticString = "user ipc FAILED step=", step: StaticString, error: UInt64
    ) {
        put("cmk: cluster ")
        put(decimal: cluster)
        put(" ")
        put(what)
        put(step)
        put(" error=")
        put(decimal: error)
        cmk_debug_put_char(10)
    }
}

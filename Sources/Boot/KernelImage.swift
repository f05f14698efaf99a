import Arch
import ArchAsm

@main
struct KernelImage {
    static func main() {
        #if hasFeature(Embedded)
        for b in "cmk: hello\n".utf8 { PL011.put(b) }
        _ = cmk_smc(0x8400_0008, 0, 0, 0)
        #else
        print("cmk-kernel is the bare-metal image; build it with `cmk build`.")
        #endif
    }
}
@_cdecl("cmk_trap") func cmkTrap(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) {}
@_cdecl("cmk_fatal_exception") func cmkFatal(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) { while true {} }

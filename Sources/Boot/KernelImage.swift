/// The cmk kernel image. On bare metal, `main` is the boot core's first Swift
/// code (entry.S `_start` calls it with the MMU on under the boot identity
/// map); it runs the loader, which never returns. On the host this target
/// builds to a program that says what it is, so `swift build` stays whole.
@main
struct KernelImage {
    static func main() {
        #if hasFeature(Embedded)
        Loader.run()
        #else
        print("cmk-kernel is the bare-metal kernel image; `cmk boot` builds and runs it in QEMU.")
        #endif
    }
}

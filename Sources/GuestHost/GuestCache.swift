import Foundation
import Topology

/// The default guest, built by scripts/guest-image.sh (from scripts/setup.sh)
/// into `${XDG_CACHE_HOME:-$HOME/.cache}/cmk/guest/`: the Debian cloud arm64
/// `Image` and `initramfs.cpio.gz` (busybox and guest/init). The cache is
/// keyed by `initramfs.init`, the exact guest/init inside the initramfs:
/// when the repository's guest/init differs, the initramfs is rebuilt (the
/// script keeps busybox, so this needs neither network nor root).
public struct GuestCache: Sendable {
    public var directory: URL

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let base: URL
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            base = URL(fileURLWithPath: xdg)
        } else {
            base = URL(fileURLWithPath: environment["HOME"] ?? NSHomeDirectory()).appendingPathComponent(".cache")
        }
        directory = base.appendingPathComponent("cmk/guest")
    }

    public init(directory: URL) { self.directory = directory }

    public var kernel: URL { directory.appendingPathComponent("Image") }
    public var initramfs: URL { directory.appendingPathComponent("initramfs.cpio.gz") }
    public var initramfsKey: URL { directory.appendingPathComponent("initramfs.init") }
    public var busybox: URL { directory.appendingPathComponent("busybox") }

    /// Whether the cached initramfs was built from `initSource` (guest/init).
    public func initramfsIsCurrent(initSource: URL) -> Bool {
        guard FileManager.default.fileExists(atPath: initramfs.path),
            let built = FileManager.default.contents(atPath: initramfsKey.path),
            let current = FileManager.default.contents(atPath: initSource.path)
        else { return false }
        return built == current
    }

    /// The default kernel and initramfs, rebuilding the initramfs first if
    /// the repository's guest/init changed. `progress` gets one line.
    public func defaultFiles(repository: URL, progress: (String) -> Void) throws(GuestHostError)
        -> (kernel: String, initrd: String)
    {
        let setup = "run scripts/setup.sh (it builds the default guest with scripts/guest-image.sh; the first time needs the Debian mirrors and root or sudo for apt)"
        guard FileManager.default.fileExists(atPath: kernel.path) else {
            throw .environment("no default guest kernel at \(kernel.path): \(setup)")
        }
        let initSource = repository.appendingPathComponent("guest/init")
        if !initramfsIsCurrent(initSource: initSource) {
            guard FileManager.default.isExecutableFile(atPath: busybox.path) else {
                throw .environment("no busybox in \(directory.path) to build the initramfs from: \(setup)")
            }
            progress("cmk: guest/init changed: rebuilding the initramfs (scripts/guest-image.sh)")
            let script = repository.appendingPathComponent("scripts/guest-image.sh").path
            let result: Subprocess.Output
            do {
                result = try Subprocess.capture(["/bin/bash", script])
            } catch {
                throw .environment("cannot run \(script): \(error)")
            }
            guard result.status == 0, initramfsIsCurrent(initSource: initSource) else {
                throw .environment("scripts/guest-image.sh failed:\n\(String(decoding: result.stderr, as: UTF8.self))")
            }
        }
        return (kernel.path, initramfs.path)
    }
}

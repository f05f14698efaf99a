// swift-tools-version: 6.1
//
// cmk: a clustered multikernel for AArch64.
//
// One manifest, two builds (docs/design.md, "Builds"):
//   host:       swift build / swift test           (every target)
//   bare metal: swift build --triple aarch64-none-none-elf \
//                 --toolset qemu/toolset.json -c release --product cmk-kernel
//   root task:  swift build --triple aarch64-none-none-elf \
//                 --toolset qemu/toolset-root-task.json -c release \
//                 --product cmk-root-task --scratch-path .build-root-task
// The Embedded Swift flag lives only in qemu/toolset.json, never here.
import PackageDescription

let package = Package(
    name: "cmk",
    products: [
        .executable(name: "cmk", targets: ["CLI"]),
        .executable(name: "cmk-kernel", targets: ["Boot"]),
        .executable(name: "cmk-root-task", targets: ["RootTask"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Portable kernel modules: no dependencies but the toolchain; they build
        // for the host and for aarch64-none-none-elf unchanged.
        .target(name: "BigLock"),
        .target(name: "InterKernel", dependencies: ["BigLock"]),
        .target(name: "Kernel", dependencies: ["BigLock", "UserABI"]),
        // The system-call contract shared by the kernel and EL0 programs
        // (docs/kernel/abi.md): no dependencies, so the root task links no
        // kernel code.
        .target(name: "UserABI"),
        .target(name: "Cluster", dependencies: ["BigLock", "InterKernel", "UserABI"]),
        // The virtual machine monitor's decisions: exit decoding, the virtual
        // GICv3, PSCI, the emulated PL011. Portable and host-tested; the
        // kernel calls it on every VM exit (docs/guest.md).
        .target(name: "VMM"),
        // Architecture: AArch64 formats (portable, host-tested) and hardware
        // accessors (inline assembly in ArchAsm; trap stubs on the host).
        .target(name: "ArchAsm"),
        .target(name: "Arch", dependencies: ["ArchAsm"]),
        // The bare-metal kernel image. On the host it builds to a stub that
        // explains itself, so `swift build` and `swift test` stay whole.
        .executableTarget(
            name: "Boot",
            dependencies: ["Arch", "ArchAsm", "Cluster", "BigLock", "InterKernel", "Kernel", "VMM", "UserABI"]),
        // The EL0 root task every cluster's kernel starts (docs/design.md,
        // "Builds"): its own executable and linker script, depending only on
        // the user ABI so that no kernel code links in. RootTaskSupport holds
        // `_start` and the `svc` stubs. On the host it builds to a stub.
        .target(name: "RootTaskSupport"),
        .executableTarget(name: "RootTask", dependencies: ["UserABI", "RootTaskSupport"]),
        // Host only: the topology tool and the command-line front end.
        .target(name: "Topology", dependencies: ["Cluster", "BigLock", "InterKernel"]),
        // Host only: `cmk guest` and `cmk bench guest`: the guest's device
        // tree, memory layout, command line, console and benchmark.
        .target(name: "GuestHost", dependencies: ["Topology", "Cluster", "VMM"]),
        // Host only: the hosted runtime (clusters on pinned host threads,
        // partitions from libnuma) and the C reference locks of `cmk bench lock`.
        .systemLibrary(name: "CNuma", providers: [.apt(["libnuma-dev"])]),
        .target(name: "CHosted"),
        .target(name: "CLockReference", dependencies: ["CHosted"]),
        .target(name: "Hosted", dependencies: ["BigLock", "Kernel", "Topology", "CHosted", "CNuma"]),
        // Host only: `cmk bench lock` and `cmk experiment lock` on the hosted
        // runtime: loops, orchestration, rows, CSV, JSON, SVG, tables.
        .target(name: "HostedLock", dependencies: ["Hosted", "BigLock", "Topology", "CHosted", "CLockReference"]),
        // Host only: the cmk kernel booted in QEMU: the checkout and its kernel
        // build, `cmk boot`'s run and verdict and its JSON, `cmk bench boot`,
        // the experiment boots and the QEMU backends of `cmk experiment`.
        .target(name: "QEMUBoot", dependencies: ["Topology", "Cluster", "UserABI", "Hosted", "HostedLock", "HostedChannel", "InterKernel", "BigLock"]),
        .executableTarget(
            name: "CLI",
            dependencies: [
                "Topology", "Cluster", "Kernel", "BigLock", "Hosted", "HostedLock", "HostedChannel", "GuestHost", "QEMUBoot",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Host only: the C reference ring for `cmk bench channel` and the hosted
        // channel runtime (pinned threads, host regions, measurements).
        .target(name: "CChannelReference", dependencies: ["CHosted"]),
        .target(name: "HostedChannel", dependencies: ["Hosted", "Topology", "InterKernel", "CChannelReference"]),
        .testTarget(name: "InterKernelTests", dependencies: ["InterKernel", "HostedChannel", "Hosted"]),
        .testTarget(name: "HostedChannelTests", dependencies: ["HostedChannel", "Hosted", "InterKernel"]),
        .testTarget(name: "HostedTests", dependencies: ["Hosted", "CHosted", "BigLock", "Kernel", "Topology"]),
        .testTarget(name: "HostedLockTests", dependencies: ["HostedLock", "Hosted", "BigLock", "Topology"]),
        .testTarget(name: "TopologyTests", dependencies: ["Topology", "Cluster"]),
        .testTarget(name: "ArchTests", dependencies: ["Arch"]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster"]),
        .testTarget(name: "KernelTests", dependencies: ["Kernel", "UserABI", "ArchAsm"]),
        .testTarget(name: "VMMTests", dependencies: ["VMM"]),
        .testTarget(name: "GuestHostTests", dependencies: ["GuestHost", "Topology", "Cluster", "VMM"]),
        .testTarget(name: "QEMUBootTests", dependencies: ["QEMUBoot", "Topology", "Cluster", "HostedLock", "HostedChannel"]),
        .testTarget(name: "BigLockTests", dependencies: ["BigLock", "Hosted"]),
    ]
)

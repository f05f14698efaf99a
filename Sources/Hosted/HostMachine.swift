import Foundation

/// The one description of the host that every benchmark and experiment
/// prints and records.
public enum HostMachine {
    /// "AMD EPYC 7B13, 2 CPUs available, Linux 6.1.0 x86_64".
    public static var summary: String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n")
            .first { $0.hasPrefix("model name") || $0.hasPrefix("CPU part") }?
            .split(separator: ":", maxSplits: 1).last?
            .trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "\(model), \(allowedHostCPUs().count) CPUs available, Linux \(release) \(machine)"
    }

    /// `summary` and what libnuma says about the nodes.
    public static var summaryWithNUMA: String {
        "\(summary), \(NUMAHost.isAvailable ? "\(NUMAHost.nodeCount) NUMA node(s)" : "NUMA unavailable")"
    }

    /// True if this binary was built without optimisation.
    public static var isDebugBuild: Bool {
        #if DEBUG
        return true
        #else
        return false
        #endif
    }

    /// The warning a benchmark prints first in a debug build.
    public static func debugBuildWarning(rerun: String) -> String? {
        isDebugBuild ? "warning: debug build; numbers mean little. Rerun with `\(rerun)`." : nil
    }
}

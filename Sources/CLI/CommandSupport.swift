import ArgumentParser
import Foundation
import QEMUBoot
import Topology

/// Load a topology file, or print its diagnostics and fail with status 2.
func loadTopology(_ path: String) throws -> Topology {
    do {
        return try TopologyLoader.load(path: path)
    } catch {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw CMKFailure.invalidTopology
    }
}

/// Run a command body, turning CMKFailure into its message and exit status.
func withExitCodes<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let failure as CMKFailure {
        if case .invalidTopology = failure {} else {
            FileHandle.standardError.write(Data("cmk: \(failure.description)\n".utf8))
        }
        throw ExitCode(failure.exitCode)
    }
}

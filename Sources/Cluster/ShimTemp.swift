// TEMPORARY (removed at merge): the root-task record helper-14 adds.
public struct RootTaskImageShim { public var physicalAddress: UInt64; public var fileSize: UInt64; public var memorySize: UInt64; public var entry: UInt64 }
extension BootInfo { public var rootTask: RootTaskImageShim? { nil } }

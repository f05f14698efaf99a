// TEMPORARY: the user-thread API helper-13 is writing (removed at merge).
public enum UserFault: Equatable { case vmFault(address: UInt64, isInstruction: Bool, status: UInt64), unknownSyscall(number: UInt64), userException(status: UInt64) }
extension ClusterKernel {
    public func userContext(_ t: TCBRef) -> UnsafeMutablePointer<UInt64> { fatalError() }
    public func userSyscall(core: Int) {}
    public func prepareUserReturn(core: Int) -> TCBRef? { nil }
    public func userFault(_ f: UserFault, core: Int) {}
    public func takeUnhandledFault() -> (thread: TCBRef, fault: UserFault)? { nil }
    public func timerTickLocked(core: Int) {}
    public func rescheduleLocked(core: Int) {}
    public func vspace(of t: TCBRef) -> (root: UInt64, vmid: UInt64)? { nil }
}

import InterKernel
import Testing

/// The guest's message kinds: every one round-trips through its payload, and
/// every out-of-range field a hostile peer could write is refused.
@Suite struct GuestMessageTests {
    static let good: [InterKernelMessage] = [
        .vcpuPower(vcpu: 3, state: .on, entry: 0x5120_0000, context: 0x42),
        .vcpuPower(vcpu: 63, state: .off, entry: 0, context: 0),
        .vcpuPower(vcpu: 1, state: .onPending, entry: 0, context: 0),
        .guestSGI(vcpu: 2, intid: 15),
        .guestSPI(vcpu: 1, intid: 33, priority: 0xA0, levelSensitive: true, pending: true, sequence: 255),
        .guestSPI(vcpu: 0, intid: 127, priority: 0, levelSensitive: false, pending: false, sequence: 0),
        .guestSPIReport(vcpu: 5, intid: 33, sequence: 7, pending: false, active: true),
        .guestGroupEnable(vcpu: 4, enabled: true),
        .guestDeviceAccess(token: 9, vcpu: 1, ipa: 0x0800_0004, size: 4, isWrite: true, value: 0x12),
        .guestDeviceAccess(token: 10, vcpu: 1, ipa: 0x0800_6108, size: 8, isWrite: false, value: 0),
        .guestDeviceReply(token: 9, refused: true, value: 0),
        .guestStop(.reset),
        .clusterFailed(.panic, detail: 0),
        .clusterFailed(.exception, detail: 0x9600_0010),
    ]

    @Test func everyKindRoundTrips() {
        for m in Self.good {
            #expect(m.payload[Int(m.kind.payloadLength)] == 0, "\(m) uses more words than its kind says")
            #expect(InterKernelMessage(kind: m.kind, payload: m.payload) == m, "\(m)")
            #expect(m.isValid)
        }
    }

    @Test func hostilePayloadsAreRefused() {
        let bad: [(MessageKind, Payload)] = [
            (.vcpuPower, Payload(64, 2, 0, 0)),  // vCPU beyond the limit
            (.vcpuPower, Payload(1, 3, 0, 0)),  // unknown state
            (.vcpuPower, Payload(1, 0, 0x5120_0000, 0)),  // entry without CPU_ON
            (.guestSGI, Payload(1, 16)),  // not an SGI
            (.guestSGI, Payload(~0, 1)),
            (.guestSPI, Payload(1, 31, 0, 0, 0)),  // a PPI, not an SPI
            (.guestSPI, Payload(1, 128, 0, 0, 0)),  // beyond the vGIC
            (.guestSPI, Payload(1, 33, 0x100, 0, 0)),  // priority
            (.guestSPI, Payload(1, 33, 0, 4, 0)),  // stray flag bit
            (.guestSPI, Payload(1, 33, 0, 0, 256)),  // sequence
            (.guestSPIReport, Payload(64, 33, 0, 0)),
            (.guestSPIReport, Payload(1, 33, 0, 8)),
            (.guestGroupEnable, Payload(1, 2)),
            (.guestDeviceAccess, Payload(1, 1, 0x0800_0000, 3, 0, 0)),  // size
            (.guestDeviceAccess, Payload(1, 1, 0x0800_0002, 4, 0, 0)),  // unaligned
            (.guestDeviceAccess, Payload(1, 1, 0x0800_0000, 4, 2, 0)),  // write flag
            (.guestDeviceAccess, Payload(1, 99, 0x0800_0000, 4, 0, 0)),  // vCPU
            (.guestDeviceReply, Payload(1, 2, 0)),
            (.guestStop, Payload(0)),
            (.guestStop, Payload(3)),
            (.clusterFailed, Payload(0, 0)),  // no reason
            (.clusterFailed, Payload(3, 0)),  // unknown reason
        ]
        for (kind, payload) in bad {
            #expect(InterKernelMessage(kind: kind, payload: payload) == nil, "\(kind) \(payload)")
        }
    }
}

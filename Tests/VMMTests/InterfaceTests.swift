import Testing
import VMM

@Suite struct InterfaceTests {
    @Test func mmioAccessKeepsItsFields() {
        let a = MMIOAccess(ipa: 0x0800_0004, size: 4, isWrite: true, register: 3, signExtend: false, sixtyFourBit: false)
        #expect(a.ipa == 0x0800_0004 && a.size == 4 && a.isWrite && a.register == 3)
        #expect(MMIOResult.done(1) != MMIOResult.refused)
    }
}

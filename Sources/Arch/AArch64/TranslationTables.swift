import ArchAsm

/// What a mapping allows and what kind of memory it is.
public struct PageAttributes: Equatable, Sendable {
    public enum Memory: Equatable, Sendable { case normal, device }
    public var memory: Memory
    public var writable: Bool
    public var executable: Bool
    public init(memory: Memory, writable: Bool, executable: Bool) {
        self.memory = memory
        self.writable = writable
        self.executable = executable
    }
    public static let kernelText = PageAttributes(memory: .normal, writable: false, executable: true)
    public static let readOnly = PageAttributes(memory: .normal, writable: false, executable: false)
    public static let readWrite = PageAttributes(memory: .normal, writable: true, executable: false)
    public static let device = PageAttributes(memory: .device, writable: true, executable: false)
    /// A guest's RAM in its stage 2: normal, writable, executable.
    public static let guestRAM = PageAttributes(memory: .normal, writable: true, executable: true)
}

public enum MapError: Error, Equatable {
    case misaligned
    case outOfRange
    case alreadyMapped
    case outOfTables
    case writableAndExecutable

    public var message: StaticString {
        switch self {
        case .misaligned: return "address or size not 4 KiB aligned"
        case .outOfRange: return "address beyond the 39-bit VA / 40-bit PA range"
        case .alreadyMapped: return "range already mapped"
        case .outOfTables: return "translation table pool exhausted"
        case .writableAndExecutable: return "mapping both writable and executable"
        }
    }
}

/// One leaf of a translation table: a block or a page.
public struct Leaf: Equatable {
    public var virtual: UInt64
    public var physical: UInt64
    public var size: UInt64
    public var attributes: PageAttributes
}

/// EL2 stage-1 translation tables (VMSAv8-64, 4 KiB granule, 39-bit VA, so
/// walks start at level 1), built in a pool of 4 KiB tables.
///
/// The pool is given twice: by physical address (what descriptors hold) and
/// by a pointer through which the builder writes it. While the boot core
/// builds tables under the identity map the two are equal; host tests pass a
/// buffer. Every table the builder follows lies in the pool, so a descriptor's
/// address converts back to a pointer by its offset in the pool.
///
/// Invariants: the root is the pool's first table; a descriptor is either
/// invalid, a leaf, or a table inside the pool; no range is mapped twice;
/// nothing is both writable and executable (SCTLR_EL2.WXN would refuse it).
///
/// The same builder makes a guest's stage-2 tables (`regime: .stage2`):
/// input addresses are then the guest's IPAs (39 bits, VTCR_EL2.T0SZ = 25,
/// walks from level 1, like stage 1), and leaves carry stage-2 attributes
/// (MemAttr, S2AP, XN). The invariants are the same.
public struct TranslationTables {
    /// Which translation regime the descriptors are for.
    public enum Regime: Sendable { case el2, stage2 }
    public static let vaLimit: UInt64 = 1 << 39
    public static let paLimit: UInt64 = 1 << 40
    static let tableSize: UInt64 = 4096
    static let addressMask: UInt64 = 0x0000_FFFF_FFFF_F000

    public let poolPhysical: UInt64
    public let regime: Regime
    let pool: UnsafeMutableRawPointer
    let poolSize: UInt64
    public private(set) var tablesUsed: Int = 1

    /// The root table's physical address: the value for TTBR0_EL2.
    public var root: UInt64 { poolPhysical }

    public init(poolPhysical: UInt64, pool: UnsafeMutableRawPointer, size: UInt64, regime: Regime = .el2) {
        precondition(poolPhysical % Self.tableSize == 0 && size >= Self.tableSize)
        self.poolPhysical = poolPhysical
        self.regime = regime
        self.pool = pool
        self.poolSize = size
        Self.zero(pool)
    }

    /// Tables built earlier in this pool (the root is its first table), to
    /// walk or translate; nothing is zeroed.
    public init(existingPoolPhysical poolPhysical: UInt64, pool: UnsafeMutableRawPointer, size: UInt64, regime: Regime = .el2) {
        precondition(poolPhysical % Self.tableSize == 0 && size >= Self.tableSize)
        self.poolPhysical = poolPhysical
        self.regime = regime
        self.pool = pool
        self.poolSize = size
    }

    static func zero(_ table: UnsafeMutableRawPointer) {
        for i in 0..<512 { table.storeBytes(of: 0, toByteOffset: i * 8, as: UInt64.self) }
    }

    func table(at physical: UInt64) -> UnsafeMutableRawPointer {
        precondition(physical >= poolPhysical && physical < poolPhysical + poolSize)
        return pool + Int(physical - poolPhysical)
    }

    static func index(_ va: UInt64, level: Int) -> Int {
        Int((va >> shift(level)) & 511)
    }
    static func shift(_ level: Int) -> UInt64 { 39 - 9 * UInt64(level) }

    /// Map [virtual, virtual + size) to [physical, ...). Uses 1 GiB and 2 MiB
    /// blocks where alignment allows, 4 KiB pages elsewhere.
    public mutating func map(
        virtual: UInt64, physical: UInt64, size: UInt64, attributes: PageAttributes
    ) throws(MapError) {
        guard virtual % 4096 == 0, physical % 4096 == 0, size % 4096 == 0 else { throw .misaligned }
        guard virtual &+ size <= Self.vaLimit, physical &+ size <= Self.paLimit,
            virtual &+ size >= virtual
        else { throw .outOfRange }
        // EL2 runs with WXN; a guest's RAM is its to write and execute.
        guard regime == .stage2 || !(attributes.writable && attributes.executable) else { throw .writableAndExecutable }
        var offset: UInt64 = 0
        while offset < size {
            let va = virtual + offset
            let pa = physical + offset
            let left = size - offset
            // Largest leaf level that fits alignment and length (levels 1..3).
            var level = 3
            for candidate in 1...2 {
                let span: UInt64 = 1 << Self.shift(candidate)
                if va % span == 0 && pa % span == 0 && left >= span {
                    level = candidate
                    break
                }
            }
            try install(va: va, pa: pa, level: level, attributes: attributes)
            offset += 1 << Self.shift(level)
        }
    }

    mutating func install(va: UInt64, pa: UInt64, level: Int, attributes: PageAttributes) throws(MapError) {
        var table = root
        for current in 1..<level {
            let slot = self.table(at: table) + Self.index(va, level: current) * 8
            let entry = slot.load(as: UInt64.self)
            if entry & 1 == 0 {
                guard UInt64(tablesUsed) * Self.tableSize < poolSize else { throw .outOfTables }
                let next = poolPhysical + UInt64(tablesUsed) * Self.tableSize
                tablesUsed += 1
                Self.zero(self.table(at: next))
                slot.storeBytes(of: next | 0b11, as: UInt64.self)
                table = next
            } else if entry & 0b11 == 0b11 {
                table = entry & Self.addressMask
            } else {
                throw .alreadyMapped  // a block already covers this range
            }
        }
        let slot = self.table(at: table) + Self.index(va, level: level) * 8
        guard slot.load(as: UInt64.self) & 1 == 0 else { throw .alreadyMapped }
        let descriptor = regime == .el2
            ? Self.leafDescriptor(pa, level: level, attributes) : Self.stage2LeafDescriptor(pa, level: level, attributes)
        slot.storeBytes(of: descriptor, as: UInt64.self)
    }

    /// The descriptor bits for a leaf at `level` (block at 1-2, page at 3).
    public static func leafDescriptor(_ pa: UInt64, level: Int, _ a: PageAttributes) -> UInt64 {
        var d = pa & addressMask
        d |= level == 3 ? 0b11 : 0b01
        switch a.memory {
        case .normal:
            d |= UInt64(CMK_ATTR_NORMAL_WB) << 2
            d |= 0b11 << 8  // SH: inner shareable
        case .device:
            d |= UInt64(CMK_ATTR_DEVICE_nGnRE) << 2
        }
        d |= 1 << 6  // AP[1]: RES1 in the single-EL EL2 regime
        if !a.writable { d |= 1 << 7 }  // AP[2]: read-only
        d |= 1 << 10  // AF: access flag set, no access-flag faults
        if !a.executable { d |= 1 << 54 }  // XN
        return d
    }

    /// A stage-2 leaf: MemAttr normal write-back (0b1111) or Device-nGnRE
    /// (0b0001), S2AP read-only (0b01) or read-write (0b11), inner shareable
    /// for normal memory, AF set, XN (bits 54:53 = 0b10) unless executable.
    public static func stage2LeafDescriptor(_ pa: UInt64, level: Int, _ a: PageAttributes) -> UInt64 {
        var d = pa & addressMask
        d |= level == 3 ? 0b11 : 0b01
        switch a.memory {
        case .normal:
            d |= 0b1111 << 2
            d |= 0b11 << 8
        case .device:
            d |= 0b0001 << 2
        }
        d |= (a.writable ? 0b11 : 0b01) << 6
        d |= 1 << 10
        if !a.executable { d |= 0b10 << 53 }
        return d
    }

    func attributes(of d: UInt64) -> PageAttributes {
        switch regime {
        case .el2: Self.attributes(of: d)
        case .stage2:
            PageAttributes(
                memory: (d >> 2) & 0xF == 0b1111 ? .normal : .device,
                writable: (d >> 6) & 0b11 == 0b11,
                executable: (d >> 53) & 0b11 == 0)
        }
    }

    static func attributes(of d: UInt64) -> PageAttributes {
        PageAttributes(
            memory: (d >> 2) & 7 == UInt64(CMK_ATTR_NORMAL_WB) ? .normal : .device,
            writable: d & (1 << 7) == 0,
            executable: d & (1 << 54) == 0)
    }

    /// Walk the tables for `virtual`, as the MMU would.
    public func translate(_ virtual: UInt64) -> (physical: UInt64, attributes: PageAttributes)? {
        guard virtual < Self.vaLimit else { return nil }
        var table = root
        for level in 1...3 {
            let entry = self.table(at: table).load(fromByteOffset: Self.index(virtual, level: level) * 8, as: UInt64.self)
            if entry & 1 == 0 { return nil }
            if level < 3 && entry & 0b11 == 0b11 {
                table = entry & Self.addressMask
                continue
            }
            let span: UInt64 = 1 << Self.shift(level)
            return ((entry & Self.addressMask & ~(span - 1)) | (virtual & (span - 1)), attributes(of: entry))
        }
        return nil
    }

    /// Every leaf, in increasing virtual-address order.
    public func forEachLeaf(_ body: (Leaf) -> Void) {
        walk(table: root, level: 1, base: 0, body)
    }

    func walk(table: UInt64, level: Int, base: UInt64, _ body: (Leaf) -> Void) {
        let t = self.table(at: table)
        for i in 0..<512 {
            let entry = t.load(fromByteOffset: i * 8, as: UInt64.self)
            if entry & 1 == 0 { continue }
            let va = base | (UInt64(i) << Self.shift(level))
            if level < 3 && entry & 0b11 == 0b11 {
                walk(table: entry & Self.addressMask, level: level + 1, base: va, body)
            } else {
                body(Leaf(virtual: va, physical: entry & Self.addressMask, size: 1 << Self.shift(level),
                          attributes: attributes(of: entry)))
            }
        }
    }
}

// IRTA_REG (VT-d spec, "Interrupt Remapping Table Address Register"): where the interrupt
// remapping table is, how many entries it has and which interrupt mode its destinations use.
// The unit acts on the value latched by GCMD.SIRTP, never on what the guest wrote since.

public struct InterruptRemappingTableAddress: RawRepresentable, Equatable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// IRTA (bits 63:12): 4 KiB-aligned base of the table.
    public var base: UInt64 { rawValue & ~0xFFF }
    /// EIME (bit 11): destinations are 32-bit x2APIC ids; compatibility-format requests are
    /// always blocked.
    public var extendedInterruptMode: Bool { rawValue & (1 << 11) != 0 }
    /// S (bits 3:0): the table has 2^(S+1) entries.
    public var sizeField: UInt8 { UInt8(rawValue & 0xF) }
    public var entryCount: UInt32 { 1 << (UInt32(sizeField) + 1) }

    /// Guest-physical address of entry `index` (16 bytes each). The caller checked the bound.
    public func entryAddress(_ index: UInt32) -> UInt64 { base &+ UInt64(index) * 16 }

    public init(base: UInt64, sizeField: UInt8, extendedInterruptMode: Bool = false) {
        rawValue = (base & ~0xFFF) | (extendedInterruptMode ? 1 << 11 : 0) | UInt64(sizeField & 0xF)
    }
}

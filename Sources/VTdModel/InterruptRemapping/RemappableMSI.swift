// An interrupt request as it reaches the remapping unit: a DWORD write to 0xFEEx_xxxx with its
// data (VT-d spec 5.1, "interrupt request formats"). Bit 4 of the address selects the format:
// compatibility (0) carries the APIC destination itself, remappable (1) carries a handle that
// indexes the interrupt remapping table.

public struct InterruptRequestAddress: RawRepresentable, Equatable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Bits 31:20 are 0xFEE and 63:32 are zero: anything else is not a well-formed interrupt
    /// request (fault 0x20 when remapping is on).
    public var isWellFormed: Bool { rawValue >> 20 == 0xFEE }
    /// Bit 4: 1 = remappable format.
    public var isRemappable: Bool { rawValue & (1 << 4) != 0 }
    /// Bit 3: SHV, the data's low 16 bits are a sub-handle added to the handle.
    public var subhandleValid: Bool { rawValue & (1 << 3) != 0 }
    /// HANDLE[14:0] from bits 19:5, HANDLE[15] from bit 2.
    public var handle: UInt16 {
        UInt16(truncatingIfNeeded: (rawValue >> 5) & 0x7FFF) | UInt16(truncatingIfNeeded: (rawValue >> 2) & 1) << 15
    }

    /// The IRTE index a remappable request with `data` names: the handle, plus the data's
    /// sub-handle when SHV is set; nil when SHV is set and data bits 31:16 are not zero.
    @inline(__always)
    public func entryIndex(data: UInt32) -> UInt32? {
        guard subhandleValid else { return UInt32(handle) }
        let payload = InterruptRequestData(rawValue: data)
        guard payload.upperBitsClear else { return nil }
        return UInt32(handle) + UInt32(payload.subhandle)
    }

    /// A remappable-format request for `handle` (fixtures, the IOAPIC's view of its RTEs).
    public static func remappable(handle: UInt16, subhandleValid: Bool = false) -> InterruptRequestAddress {
        var value: UInt64 = 0xFEE0_0000 | 1 << 4
        value |= UInt64(handle & 0x7FFF) << 5
        value |= UInt64(handle >> 15) << 2
        if subhandleValid { value |= 1 << 3 }
        return InterruptRequestAddress(rawValue: value)
    }
}

public struct InterruptRequestData: RawRepresentable, Equatable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Bits 15:0: the sub-handle, meaningful when the address has SHV set.
    public var subhandle: UInt16 { UInt16(truncatingIfNeeded: rawValue) }
    /// Bits 31:16 must be zero in a remappable request with SHV set.
    public var upperBitsClear: Bool { rawValue >> 16 == 0 }
}

// The identifiers every layer passes: requester IDs, PASIDs, domain IDs. One value type each,
// so a requester ID is split into bus and devfn in one place and "no PASID" has one encoding
// (an absent `PASID?`; the C ABI's all-ones value is converted at the boundary).
// Each wraps its integer and nothing else, so passing one costs what passing the integer does.
// An integer literal may stand for one (tests, spec constants); an integer variable may not.

/// A PCI requester ID (bus << 8 | devfn), as VT-d names devices (the spec's source-id).
public struct RequesterID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
                           ExpressibleByIntegerLiteral {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    @inlinable public init(integerLiteral value: UInt16) { rawValue = value }
    @inlinable public init(bus: UInt8, devfn: UInt8) { rawValue = UInt16(bus) << 8 | UInt16(devfn) }
    public init(bus: UInt8, device: UInt8, function: UInt8) {
        self.init(bus: bus, devfn: (device & 0x1f) << 3 | (function & 0x7))
    }

    /// Indexes the root table.
    @inlinable public var bus: UInt8 { UInt8(truncatingIfNeeded: rawValue.bits(15, 8)) }
    /// Indexes the context table.
    @inlinable public var devfn: UInt8 { UInt8(truncatingIfNeeded: rawValue.bits(7, 0)) }
    public var device: UInt8 { devfn >> 3 }
    public var function: UInt8 { devfn & 0x7 }

    /// This requester with the function-number bits set in `ignored` (of bits 2:0) cleared: how
    /// device-selective invalidations (FM) and IRTE source checks (SQ) compare requesters.
    @inlinable public func ignoringFunctionBits(_ ignored: UInt8) -> RequesterID {
        RequesterID(rawValue: rawValue & ~UInt16(ignored & 0b111))
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// bb:dd.f, as lspci prints it.
    public var description: String { "\(hex(bus, 2)):\(hex(device, 2)).\(function)" }
}

/// A process address space ID: 20 bits in VT-d.
public struct PASID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
                     ExpressibleByIntegerLiteral {
    public var rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public init(integerLiteral value: UInt32) { rawValue = value }

    /// How many PASIDs there are.
    public static let limit: UInt32 = 1 << 20
    /// The largest PASID (PASID fields are 20 bits wide everywhere in the spec).
    public static let maximum: UInt32 = limit - 1
    /// The value Linux guests (and QEMU) put in the context entry's RID_PASID field.
    public static let zero = PASID(rawValue: 0)

    /// A PASID field's value: its low 20 bits.
    @inlinable public init(field: UInt64) { rawValue = UInt32(truncatingIfNeeded: field.bits(19, 0)) }
    /// nil when `value` does not fit in 20 bits.
    @inlinable public init?(checking value: UInt32) {
        guard value <= Self.maximum else { return nil }
        rawValue = value
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "PASID \(rawValue)" }
}

/// A VT-d domain ID (16 bits with CAP.ND=6).
public struct DomainID: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    @inlinable public init(integerLiteral value: UInt16) { rawValue = value }
    public var description: String { "DID \(rawValue)" }
}

/// `value` in hex, zero-padded to `digits`.
public func hex<T: BinaryInteger>(_ value: T, _ digits: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}

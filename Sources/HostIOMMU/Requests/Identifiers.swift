/// A PCI requester ID (bus << 8 | devfn), as the VT-d model names devices.
public struct RequesterID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(bus: UInt8, device: UInt8, function: UInt8) {
        rawValue = UInt16(bus) << 8 | UInt16(device & 0x1f) << 3 | UInt16(function & 0x7)
    }

    public var bus: UInt8 { UInt8(rawValue >> 8) }
    public var device: UInt8 { UInt8((rawValue >> 3) & 0x1f) }
    public var function: UInt8 { UInt8(rawValue & 0x7) }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        "\(hex(bus, 2)):\(hex(device, 2)).\(function)"
    }
}

/// A process address space ID: 20 bits in VT-d.
public struct PASID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let limit: UInt32 = 1 << 20
    /// The value Linux guests (and QEMU) put in the context entry's RID_PASID field.
    public static let zero = PASID(rawValue: 0)

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "PASID \(rawValue)" }
}

/// A VT-d domain ID (16 bits with CAP.ND=6).
public struct DomainID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public var description: String { "DID \(rawValue)" }
}

/// An iommufd object ID (IOAS, HWPT, device, fault queue). Zero is never a valid object.
public struct ObjectID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt32) { rawValue = value }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "#\(rawValue)" }
}

@usableFromInline
func hex<T: BinaryInteger>(_ value: T, _ digits: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}

// Interrupt Remapping Table Entry, remapped-interrupt format (VT-d spec 9.10): a typed view
// over the 128-bit entry. Posted-format entries (spec 9.11, IM = 1) are recognised only to be
// refused: this unit does not offer posted interrupts (CAP.PI clear), and with PI clear the spec
// treats the IM bit as reserved.

public struct IRTE: RawRepresentable, Equatable, Sendable {
    public var rawValue: UInt128
    public init(rawValue: UInt128) { self.rawValue = rawValue }

    /// The entry as two little-endian quadwords in guest memory (bits 63:0, then 127:64).
    public init(low: UInt64, high: UInt64) {
        rawValue = UInt128(high) << 64 | UInt128(low)
    }
    public var low: UInt64 { UInt64(truncatingIfNeeded: rawValue) }
    public var high: UInt64 { UInt64(truncatingIfNeeded: rawValue >> 64) }

    /// P (bit 0).
    public var present: Bool { rawValue.bit(0) }
    /// FPD (bit 1): qualified faults for this entry are not recorded.
    public var faultProcessingDisabled: Bool { rawValue.bit(1) }
    /// DM (bit 2): 1 = logical destination.
    public var destinationModeLogical: Bool { rawValue.bit(2) }
    /// RH (bit 3): redirection hint.
    public var redirectionHint: Bool { rawValue.bit(3) }
    /// TM (bit 4): 1 = level-triggered.
    public var levelTriggered: Bool { rawValue.bit(4) }
    /// DLM (bits 7:5).
    public var deliveryMode: DeliveryMode { DeliveryMode(rawValue: UInt8(truncatingIfNeeded: rawValue.bits(7, 5))) }
    /// AVAIL (bits 11:8): software's own, never checked.
    public var available: UInt8 { UInt8(truncatingIfNeeded: rawValue.bits(11, 8)) }
    /// IM (bit 15): 1 = posted format.
    public var postedFormat: Bool { rawValue.bit(15) }
    /// V (bits 23:16).
    public var vector: UInt8 { UInt8(truncatingIfNeeded: rawValue.bits(23, 16)) }
    /// DST (bits 63:32) as stored; what it means depends on IRTA.EIME (see `destination(extended:)`).
    public var destinationField: UInt32 { UInt32(truncatingIfNeeded: rawValue.bits(63, 32)) }
    /// SID (bits 79:64).
    public var sourceID: RequesterID { RequesterID(rawValue: UInt16(truncatingIfNeeded: rawValue.bits(79, 64))) }
    /// SQ (bits 81:80): function-number bits ignored by SVT 01 verification.
    public var sourceQualifier: UInt8 { UInt8(truncatingIfNeeded: rawValue.bits(81, 80)) }
    /// SVT (bits 83:82).
    public var sourceValidation: SourceValidationType { SourceValidationType(rawValue: UInt8(truncatingIfNeeded: rawValue.bits(83, 82))) ?? .reserved }

    /// The APIC destination: the 32-bit x2APIC id in extended interrupt mode, else the 8-bit
    /// xAPIC id held in DST bits 15:8.
    public func destination(extended: Bool) -> UInt32 {
        extended ? destinationField : destinationField.bits(15, 8)
    }

    // Reserved (0) bits of the remapped format: 14:12, 31:24 and 127:84; IM (15) while posted
    // interrupts are not offered; in xAPIC mode also DST bits 7:0 and 31:16 (entry bits 39:32, 63:48).
    // Computed, not stored: a stored UInt128 built by `mask` is a lazily initialised global,
    // and every remap paid a swift_once for it; computed, the masks fold to constants.
    static var reservedBits: UInt128 { .mask(14, 12) | .mask(31, 24) | .mask(127, 84) }
    static var postedFormatBit: UInt128 { .mask(15, 15) }
    static var xAPICReservedDestinationBits: UInt128 { .mask(39, 32) | .mask(63, 48) }

    /// Whether any bit that must be zero is set, for the given interrupt mode (IRTA.EIME).
    public func hasReservedBitsSet(extended: Bool) -> Bool {
        var reserved = Self.reservedBits
        if !extended { reserved |= Self.xAPICReservedDestinationBits }
        return rawValue & reserved != 0
    }

    /// Builds an entry field by field (tests, fixtures).
    public init(present: Bool = true, faultProcessingDisabled: Bool = false, destinationModeLogical: Bool = false,
                redirectionHint: Bool = false, levelTriggered: Bool = false, deliveryMode: DeliveryMode = .fixed,
                vector: UInt8, destinationField: UInt32, sourceID: RequesterID = 0, sourceQualifier: UInt8 = 0,
                sourceValidation: SourceValidationType = .none) {
        var low: UInt64 = present ? 1 : 0
        if faultProcessingDisabled { low |= 1 << 1 }
        if destinationModeLogical { low |= 1 << 2 }
        if redirectionHint { low |= 1 << 3 }
        if levelTriggered { low |= 1 << 4 }
        low |= UInt64(deliveryMode.rawValue & 0x7) << 5
        low |= UInt64(vector) << 16
        low |= UInt64(destinationField) << 32
        let high = UInt64(sourceID.rawValue) | UInt64(sourceQualifier & 0x3) << 16 | UInt64(sourceValidation.rawValue) << 18
        self.init(low: low, high: high)
    }
}

/// IRTE.DLM encodings (VT-d spec 9.10); 011b and 110b are reserved.
public struct DeliveryMode: RawRepresentable, Equatable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue & 0x7 }
    public static let fixed = DeliveryMode(rawValue: 0b000)
    public static let lowestPriority = DeliveryMode(rawValue: 0b001)
    public static let smi = DeliveryMode(rawValue: 0b010)
    public static let nmi = DeliveryMode(rawValue: 0b100)
    public static let initialize = DeliveryMode(rawValue: 0b101)
    public static let extINT = DeliveryMode(rawValue: 0b111)
    public var isReserved: Bool { rawValue == 0b011 || rawValue == 0b110 }
}

/// IRTE.SVT: how the requester's source-id is checked against IRTE.SID (VT-d spec 9.10).
public enum SourceValidationType: UInt8, Sendable {
    /// No verification.
    case none = 0b00
    /// Compare the requester id with SID, ignoring the function bits SQ names.
    case requesterID = 0b01
    /// The requester's bus must lie in [SID[15:8], SID[7:0]] (devices behind a PCIe-to-PCI bridge).
    case busRange = 0b10
    case reserved = 0b11
}

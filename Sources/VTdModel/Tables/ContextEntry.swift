// Legacy context entry (VT-d 9.3): 16 bytes, one per devfn, in the context table a root
// entry points at.

struct ContextEntry: Equatable, Sendable {
    var lo: UInt64
    var hi: UInt64

    static let size: UInt64 = 16

    init(lo: UInt64, hi: UInt64) { self.lo = lo; self.hi = hi }

    enum TranslationType: UInt8, Sendable {
        /// Untranslated requests walk the second level; translation requests are blocked.
        case multiLevel = 0b00
        /// As multi-level, and ATS translation requests are allowed (needs ECAP.DT).
        case deviceTLB = 0b01
        /// Untranslated requests pass through (needs ECAP.PT).
        case passThrough = 0b10
        case reserved = 0b11
    }

    var isPresent: Bool { lo & 1 != 0 }
    var faultProcessingDisabled: Bool { lo & 0b10 != 0 }
    var translationType: TranslationType { TranslationType(rawValue: UInt8(truncatingIfNeeded: lo >> 2) & 0b11)! }
    var secondLevelPointer: UInt64 { lo & ~0xFFF }
    /// AW: the second-level table has AW + 2 levels.
    var addressWidth: UInt8 { UInt8(truncatingIfNeeded: hi) & 0b111 }
    var levels: Int { Int(addressWidth) + 2 }
    var domainID: DomainID { DomainID(rawValue: UInt16(truncatingIfNeeded: hi >> 8)) }

    /// lo 11:4 and the pointer above HAW; hi bit 7 and 63:24 (QEMU's masks).
    struct ReservedBits: Sendable {
        let lo: UInt64
        let hi: UInt64 = 0xFFFF_FFFF_FF00_0080
        init(_ limits: TranslationLimits) { lo = 0xFF0 | limits.aboveHostAddressWidth }
    }

    func hasReservedBits(_ reserved: ReservedBits) -> Bool {
        lo & reserved.lo != 0 || hi & reserved.hi != 0
    }
}

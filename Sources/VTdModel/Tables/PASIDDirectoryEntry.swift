// PASID directory entry (VT-d 9.5): 8 bytes, indexed by PASID[19:6]; points at a PASID
// table of 64 entries.

struct PASIDDirectoryEntry: Equatable, Sendable {
    var raw: UInt64

    static let size: UInt64 = 8

    init(_ raw: UInt64) { self.raw = raw }

    var isPresent: Bool { raw & 1 != 0 }
    var faultProcessingDisabled: Bool { raw & (1 << 1) != 0 }
    var pasidTablePointer: UInt64 { raw & ~0xFFF }

    static func index(of pasid: PASID) -> UInt64 { UInt64(pasid.rawValue >> 6) }

    /// Bits 11:2 and the pointer above HAW.
    struct ReservedBits: Sendable {
        let raw: UInt64
        init(_ limits: TranslationLimits) { raw = 0xFFC | limits.aboveHostAddressWidth }
    }

    func hasReservedBits(_ reserved: ReservedBits) -> Bool { raw & reserved.raw != 0 }
}

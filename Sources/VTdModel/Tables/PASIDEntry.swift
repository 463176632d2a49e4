// Scalable-mode PASID table entry (VT-d 9.6): 64 bytes, indexed by PASID[5:0]. Chooses the
// translation type (PGTT) of one PASID of one device and carries both table pointers.

struct PASIDEntry: Equatable, Sendable {
    /// val[0] ... val[7] of the spec's figure, little-endian words.
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

    static let size: UInt64 = 64

    init(_ w0: UInt64, _ w1: UInt64 = 0, _ w2: UInt64 = 0, _ w3: UInt64 = 0,
         _ w4: UInt64 = 0, _ w5: UInt64 = 0, _ w6: UInt64 = 0, _ w7: UInt64 = 0) {
        words = (w0, w1, w2, w3, w4, w5, w6, w7)
    }

    static func == (a: PASIDEntry, b: PASIDEntry) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
            && a.words.4 == b.words.4 && a.words.5 == b.words.5 && a.words.6 == b.words.6 && a.words.7 == b.words.7
    }

    /// PASID 5:0 indexes the table.
    static func index(of pasid: PASID) -> UInt64 { UInt64(pasid.rawValue).bits(5, 0) }

    /// PGTT: PASID-granular translation type.
    enum TranslationType: UInt8, Sendable {
        case firstLevel = 0b001
        case secondLevel = 0b010
        case nested = 0b011
        case passThrough = 0b100
    }

    // val[0]
    var isPresent: Bool { words.0.bit(0) }
    var faultProcessingDisabled: Bool { words.0.bit(1) }
    /// AW, 4:2: second-level tables have AW + 2 levels.
    var addressWidth: UInt8 { UInt8(truncatingIfNeeded: words.0.bits(4, 2)) }
    var secondLevelLevels: Int { Int(addressWidth) + 2 }
    /// SLEE, 5: second-level entries' X bit governs execute requests (clear: R does).
    var secondLevelExecuteEnable: Bool { words.0.bit(5) }
    /// PGTT, 8:6.
    var rawTranslationType: UInt8 { UInt8(truncatingIfNeeded: words.0.bits(8, 6)) }
    /// nil for the reserved encodings 000, 101, 110, 111.
    var translationType: TranslationType? { TranslationType(rawValue: rawTranslationType) }
    /// SSADE, 9: second-stage accessed/dirty enable.
    var secondLevelAccessedDirty: Bool { words.0.bit(9) }
    /// SSPTPTR, 63:12.
    var secondLevelPointer: UInt64 { words.0 & .mask(63, 12) }

    // val[1]
    /// DID, 15:0.
    var domainID: DomainID { DomainID(rawValue: UInt16(truncatingIfNeeded: words.1.bits(15, 0))) }
    /// PWSNP (23), PGSNP (24): page-walk snoop, page snoop.
    var pageWalkSnoop: Bool { words.1.bit(23) }
    var pageSnoop: Bool { words.1.bit(24) }

    // val[2]
    /// SRE, 0: supervisor requests allowed.
    var supervisorRequests: Bool { words.2.bit(0) }
    /// ERE, 1: execute requests allowed.
    var executeRequests: Bool { words.2.bit(1) }
    /// FLPM, 3:2: 0 = 4-level, 1 = 5-level first-level tables; 2 and 3 are reserved.
    var firstLevelPagingMode: UInt8 { UInt8(truncatingIfNeeded: words.2.bits(3, 2)) }
    /// Levels of the first-level tables (FLPM validated to 0 or 1 when the entry was read).
    var firstLevelLevels: Int { firstLevelPagingMode == 1 ? 5 : 4 }
    /// WPE, 4: supervisor writes honour R/W (CR0.WP).
    var writeProtect: Bool { words.2.bit(4) }
    /// NXE, 5: XD in first-level entries forbids execute (EFER.NXE). Linux sets it.
    var noExecute: Bool { words.2.bit(5) }
    /// SMEP, 6: supervisor execute of user pages forbidden.
    var supervisorExecuteProtect: Bool { words.2.bit(6) }
    /// EAFE, 7: first-level walks also set the extended-accessed bit.
    var extendedAccessed: Bool { words.2.bit(7) }
    /// FSPTPTR, 63:12.
    var firstLevelPointer: UInt64 { words.2 & .mask(63, 12) }

    /// val[0] 11:10, val[1] 22:16, val[2] 11:8, val[3...7]; SSADE (val[0] bit 9) without
    /// ECAP.SLADS and EAFE (val[2] bit 7) without ECAP.EAFS; a table pointer above HAW when
    /// the PGTT uses that table (Linux leaves the unused pointer zero, others may not).
    struct ReservedBits: Sendable {
        let w0: UInt64
        let w1: UInt64 = .mask(22, 16)
        let w2: UInt64
        let pointer: UInt64
        init(_ limits: TranslationLimits) {
            pointer = limits.aboveHostAddressWidth
            w0 = .mask(11, 10) | (limits.secondStageAccessedDirty ? 0 : .mask(9, 9))
            w2 = .mask(11, 8) | (limits.extendedAccessedFlag ? 0 : .mask(7, 7))
        }
    }

    func hasReservedBits(_ reserved: ReservedBits) -> Bool {
        if words.0 & reserved.w0 != 0 || words.1 & reserved.w1 != 0 || words.2 & reserved.w2 != 0 { return true }
        if words.3 | words.4 | words.5 | words.6 | words.7 != 0 { return true }
        switch translationType {
        case .firstLevel: return firstLevelPointer & reserved.pointer != 0
        case .secondLevel: return secondLevelPointer & reserved.pointer != 0
        case .nested: return (firstLevelPointer | secondLevelPointer) & reserved.pointer != 0
        case .passThrough, nil: return false
        }
    }
}

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

    static func index(of pasid: UInt32) -> UInt64 { UInt64(pasid & 0x3F) }

    /// PGTT: PASID-granular translation type.
    enum TranslationType: UInt8, Sendable {
        case firstLevel = 0b001
        case secondLevel = 0b010
        case nested = 0b011
        case passThrough = 0b100
    }

    // val[0]
    var isPresent: Bool { words.0 & 1 != 0 }
    var faultProcessingDisabled: Bool { words.0 & (1 << 1) != 0 }
    /// AW: second-level tables have AW + 2 levels.
    var addressWidth: UInt8 { UInt8(truncatingIfNeeded: words.0 >> 2) & 0b111 }
    var secondLevelLevels: Int { Int(addressWidth) + 2 }
    /// SLEE: second-level entries' X bit governs execute requests (clear: R does).
    var secondLevelExecuteEnable: Bool { words.0 & (1 << 5) != 0 }
    var rawTranslationType: UInt8 { UInt8(truncatingIfNeeded: words.0 >> 6) & 0b111 }
    /// nil for the reserved encodings 000, 101, 110, 111.
    var translationType: TranslationType? { TranslationType(rawValue: rawTranslationType) }
    /// SSADE: second-stage accessed/dirty enable.
    var secondLevelAccessedDirty: Bool { words.0 & (1 << 9) != 0 }
    var secondLevelPointer: UInt64 { words.0 & ~0xFFF }

    // val[1]
    var domainID: UInt16 { UInt16(truncatingIfNeeded: words.1) }
    /// PWSNP, PGSNP: page-walk snoop, page snoop.
    var pageWalkSnoop: Bool { words.1 & (1 << 23) != 0 }
    var pageSnoop: Bool { words.1 & (1 << 24) != 0 }

    // val[2]
    /// SRE: supervisor requests allowed.
    var supervisorRequests: Bool { words.2 & 1 != 0 }
    /// ERE: execute requests allowed.
    var executeRequests: Bool { words.2 & (1 << 1) != 0 }
    /// FLPM: 0 = 4-level, 1 = 5-level first-level tables; 2 and 3 are reserved.
    var firstLevelPagingMode: UInt8 { UInt8(truncatingIfNeeded: words.2 >> 2) & 0b11 }
    /// WPE: supervisor writes honour R/W (CR0.WP).
    var writeProtect: Bool { words.2 & (1 << 4) != 0 }
    /// NXE: XD in first-level entries forbids execute (EFER.NXE). Linux sets it.
    var noExecute: Bool { words.2 & (1 << 5) != 0 }
    /// SMEP: supervisor execute of user pages forbidden.
    var supervisorExecuteProtect: Bool { words.2 & (1 << 6) != 0 }
    /// EAFE: first-level walks also set the extended-accessed bit.
    var extendedAccessed: Bool { words.2 & (1 << 7) != 0 }
    var firstLevelPointer: UInt64 { words.2 & ~0xFFF }

    /// val[0] 11:10, val[1] 22:16, val[2] 11:8, val[3...7]; SSADE (val[0] bit 9) without
    /// ECAP.SLADS and EAFE (val[2] bit 7) without ECAP.EAFS; a table pointer above HAW when
    /// the PGTT uses that table (Linux leaves the unused pointer zero, others may not).
    struct ReservedBits: Sendable {
        let w0: UInt64
        let w1: UInt64 = 0x7F_0000
        let w2: UInt64
        let pointer: UInt64
        init(_ limits: TranslationLimits) {
            pointer = limits.aboveHostAddressWidth
            w0 = 0xC00 | (limits.secondStageAccessedDirty ? 0 : 1 << 9)
            w2 = 0xF00 | (limits.extendedAccessedFlag ? 0 : 1 << 7)
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

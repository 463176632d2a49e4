// Scalable-mode context entry (VT-d 9.4): 32 bytes, 128 per context table (one table per
// root-entry half). Points at the device's PASID directory.

struct ScalableContextEntry: Equatable, Sendable {
    var w0: UInt64
    var w1: UInt64
    var w2: UInt64
    var w3: UInt64

    static let size: UInt64 = 32

    init(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64 = 0, _ w3: UInt64 = 0) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }

    var isPresent: Bool { w0 & 1 != 0 }
    var faultProcessingDisabled: Bool { w0 & (1 << 1) != 0 }
    /// DTE: ATS translation requests (device-TLB) allowed.
    var deviceTLBEnabled: Bool { w0 & (1 << 2) != 0 }
    /// PASIDE: requests with a PASID prefix allowed.
    var pasidEnabled: Bool { w0 & (1 << 3) != 0 }
    /// PRE: page requests allowed.
    var pageRequestsEnabled: Bool { w0 & (1 << 4) != 0 }
    /// PDTS: the PASID directory has 2^(PDTS + 7) entries.
    var pasidDirectorySize: UInt8 { UInt8(truncatingIfNeeded: w0 >> 9) & 0b111 }
    var pasidDirectoryEntries: UInt32 { 1 << (UInt32(pasidDirectorySize) + 7) }
    var pasidDirectoryPointer: UInt64 { w0 & ~0xFFF }
    /// RID_PASID field (83:64): honoured only by units that advertise ECAP.RPS (bit 49).
    var ridPASIDField: UInt32 { PASID(field: w1).rawValue }
    /// The PASID requests without PASID use. This unit never advertises ECAP.RPS (QEMU 10.0's
    /// capabilities, bit for bit), so RID_PASID is ignored and they use PASID 0 (spec 9.4).
    var ridPASID: PASID { 0 }
    /// RID_PRIV: requests without PASID are supervisor requests.
    var ridPrivileged: Bool { w1 & (1 << 20) != 0 }

    /// w0 bits 8:5 and the pointer above HAW; w1 63:21; w2 and w3 entirely.
    struct ReservedBits: Sendable {
        let w0: UInt64
        let w1: UInt64 = ~0 << 21
        init(_ limits: TranslationLimits) { w0 = 0x1E0 | limits.aboveHostAddressWidth }
    }

    func hasReservedBits(_ reserved: ReservedBits) -> Bool {
        w0 & reserved.w0 != 0 || w1 & reserved.w1 != 0 || w2 != 0 || w3 != 0
    }
}

// First-level paging entry (VT-d 9.7): the x86 IA-32e format, so a guest can share its
// CPU page tables. PS marks a 2 MiB (PDE) or 1 GiB (PDPTE) page.

struct FirstLevelEntry: Equatable, Sendable {
    var raw: UInt64

    init(_ raw: UInt64) { self.raw = raw }

    static let presentBit: UInt64 = 1 << 0
    static let writableBit: UInt64 = 1 << 1
    static let userBit: UInt64 = 1 << 2
    static let accessedBit: UInt64 = 1 << 5
    static let dirtyBit: UInt64 = 1 << 6
    static let pageSizeBit: UInt64 = 1 << 7
    static let extendedAccessedBit: UInt64 = 1 << 10
    static let executeDisableBit: UInt64 = 1 << 63
    /// The bits the walk itself sets; a change in any other bit means the guest rewrote the entry.
    static let hardwareUpdatedBits: UInt64 = accessedBit | dirtyBit | extendedAccessedBit

    var isPresent: Bool { raw & Self.presentBit != 0 }
    var isWritable: Bool { raw & Self.writableBit != 0 }
    var isUser: Bool { raw & Self.userBit != 0 }
    var isAccessed: Bool { raw & Self.accessedBit != 0 }
    var isDirty: Bool { raw & Self.dirtyBit != 0 }
    var isPageSize: Bool { raw & Self.pageSizeBit != 0 }
    var isExecuteDisabled: Bool { raw & Self.executeDisableBit != 0 }
    /// Bits 51:12: the next table, or the page frame of a leaf (PAT of a large page is bit 12,
    /// masked off by the page size).
    var address: UInt64 { raw & 0x000F_FFFF_FFFF_F000 }

    func isLeaf(atLevel level: Int) -> Bool { level == 1 || (level <= 3 && isPageSize) }

    /// Reserved bits for one unit (QEMU's masks, and x86's): the address above HAW
    /// everywhere; PS in PML4E/PML5E; PS in a PDPTE without CAP.FS1GP; a large page's frame
    /// bits between PAT (12) and its size. Bits 62:52 are ignored and XD (63) is honoured
    /// only with NXE but never reserved: Linux 6.1 sets it in every leaf.
    struct ReservedBits: Sendable {
        let common: UInt64
        let leaf2M: UInt64
        let leaf1G: UInt64
        let largePages1G: Bool

        init(_ limits: TranslationLimits) {
            common = limits.aboveHostAddressWidth & 0x000F_FFFF_FFFF_FFFF
            leaf2M = common | 0x1F_E000
            leaf1G = common | 0x3FFF_E000
            largePages1G = limits.firstLevel1GPages
        }
    }

    func hasReservedBits(atLevel level: Int, _ reserved: ReservedBits) -> Bool {
        switch level {
        case 2 where isPageSize: return raw & reserved.leaf2M != 0
        case 3 where isPageSize: return !reserved.largePages1G || raw & reserved.leaf1G != 0
        case 4, 5: return isPageSize || raw & reserved.common != 0
        default: return raw & reserved.common != 0
        }
    }
}

// Second-level paging entry (VT-d 9.8): the VT-d format. No present bit: an entry with
// R and W clear is not present. PS marks a 2 MiB (level 2) or 1 GiB (level 3) page.

struct SecondLevelEntry: Equatable, Sendable {
    var raw: UInt64

    init(_ raw: UInt64) { self.raw = raw }

    var isReadable: Bool { raw & 1 != 0 }
    var isWritable: Bool { raw & (1 << 1) != 0 }
    var isExecutable: Bool { raw & (1 << 2) != 0 }
    var isPresent: Bool { raw & 0b11 != 0 }
    var isPageSize: Bool { raw & (1 << 7) != 0 }
    /// Bits 51:12: the next table, or the page frame of a leaf.
    var address: UInt64 { raw & 0x000F_FFFF_FFFF_F000 }

    var permissions: Permissions {
        var p: Permissions = []
        if isReadable { p.insert(.read) }
        if isWritable { p.insert(.write) }
        if isExecutable { p.insert(.execute) }
        return p
    }

    /// Reserved bits for one unit, as QEMU masks them: the address above HAW everywhere;
    /// SNP (11) and TM (62) in non-leaf entries, and in leaves unless snoop control /
    /// device-IOTLB with stale TM make them fields; a large page's frame bits below its size.
    /// Bits 61:52 and 63 are ignored.
    struct ReservedBits: Sendable {
        let nonLeaf: UInt64
        let leaf4K: UInt64
        let leaf2M: UInt64
        let leaf1G: UInt64
        let largePages2M: Bool
        let largePages1G: Bool

        init(_ limits: TranslationLimits) {
            let snoop: UInt64 = 1 << 11
            let transientMapping: UInt64 = 1 << 62
            let aboveHAW = limits.aboveHostAddressWidth & 0x000F_FFFF_FFFF_FFFF
            nonLeaf = aboveHAW | snoop | transientMapping
            leaf4K = aboveHAW | (limits.snoopControl ? 0 : snoop) | (limits.transientMapping ? 0 : transientMapping)
            leaf2M = leaf4K | 0x1F_F000
            leaf1G = leaf4K | 0x3FFF_F000
            largePages2M = limits.secondLevel2MPages
            largePages1G = limits.secondLevel1GPages
        }
    }

    /// Whether this present entry at `level` (1 = PTE) maps a page.
    func isLeaf(atLevel level: Int) -> Bool { level == 1 || (level <= 3 && isPageSize) }

    func hasReservedBits(atLevel level: Int, _ reserved: ReservedBits) -> Bool {
        switch level {
        case 1: return raw & reserved.leaf4K != 0
        case 2 where isPageSize: return !reserved.largePages2M || raw & reserved.leaf2M != 0
        case 3 where isPageSize: return !reserved.largePages1G || raw & reserved.leaf1G != 0
        default: return isPageSize || raw & reserved.nonLeaf != 0
        }
    }
}

// Second-level walk (VT-d 3.7): input address -> output address through 2..5 levels of
// VT-d-format tables. Used by legacy context entries, PGTT 010, and as the second stage of
// nested translation. Bounded by `levels` whatever the guest wrote: a table pointing at
// itself is simply read again at the next level, never followed past level 1.

/// A fault met by the second-level walk; the caller maps it to the reason code of its mode.
enum SecondLevelFault: Error, Equatable {
    /// Input beyond the table's adjusted guest address width.
    case beyondAddressWidth
    /// The root table could not be read.
    case rootAccessError
    case accessError
    case notPresent
    case reserved
    case readDenied
    case writeDenied
    case executeDenied
}

/// A page the second level maps.
struct SecondLevelMapping: Equatable {
    var outputPage: UInt64
    var pageShift: UInt8
    /// R/W/X granted by every level.
    var permissions: Permissions
}

struct SecondLevelWalk {
    let root: UInt64
    let levels: Int
    /// SLEE (PASID entry bit 5): execute requests need X in every entry. Clear, X is ignored and
    /// an instruction fetch needs only R, as a read does (spec 3.7, 3.8.2). Legacy context
    /// entries have no such bit; requests without PASID never execute.
    var executeEnable = true

    /// Input addresses below 2^inputWidth translate.
    var inputWidth: Int { 12 + 9 * levels }

    func translate(_ address: UInt64, access: Permissions, platform: any Platform,
                   reserved: SecondLevelEntry.ReservedBits) throws(SecondLevelFault) -> SecondLevelMapping {
        guard (1...5).contains(levels) else { throw .beyondAddressWidth }
        if address >> UInt64(inputWidth) != 0 { throw .beyondAddressWidth }
        var table = root
        // Not an array literal: across the module boundary that builds an array per walk.
        var granted = Permissions.readWrite.union(.execute)
        var level = levels
        while level >= 1 {
            let shift = UInt64(12 + 9 * (level - 1))
            let index = (address >> shift) & 0x1FF
            guard let raw = platform.readGuest64(table + index * 8) else {
                throw level == levels ? .rootAccessError : .accessError
            }
            let entry = SecondLevelEntry(raw)
            guard entry.isPresent else { throw .notPresent }
            if entry.hasReservedBits(atLevel: level, reserved) { throw .reserved }
            var rights = entry.permissions
            if !executeEnable {
                if rights.contains(.read) { rights.insert(.execute) } else { rights.remove(.execute) }
            }
            granted.formIntersection(rights)
            if entry.isLeaf(atLevel: level) {
                if access.contains(.write) && !granted.contains(.write) { throw .writeDenied }
                if access.contains(.read) && !granted.contains(.read) { throw .readDenied }
                if access.contains(.execute) && !granted.contains(.execute) { throw .executeDenied }
                let pageMask: UInt64 = (1 << shift) - 1
                return SecondLevelMapping(outputPage: entry.address & ~pageMask, pageShift: UInt8(shift),
                                          permissions: granted)
            }
            table = entry.address
            level -= 1
        }
        // Unreachable: level 1 is always a leaf.
        throw .notPresent
    }
}

// Every present leaf of a device's page tables, for replay (QEMU's vtd_page_walk): what a
// host that shadows the tables or binds them must learn without a DMA to trigger a walk.
// Read-only: no accessed/dirty updates. Each table is read in one piece: the entries that
// reach into the range asked for (a page-selective re-sync reads one entry per level, as a
// walk does, not four whole table pages).
//
// Bounded by a budget of table pages: a table that points at itself at every level would
// otherwise present 512^levels leaves. Entries with reserved bits set are skipped, as a walk
// would fault on them.

/// One present leaf: `2^pageShift` bytes at `iova` map to `output`.
public struct Mapping: Equatable, Sendable {
    public var iova: UInt64
    public var pageShift: UInt8
    public var output: UInt64
    public var permissions: Permissions
    public var size: UInt64 { 1 << UInt64(pageShift) }
}

struct MappingEnumerator {
    let platform: any Platform
    /// Table pages still allowed to be read.
    var budget: Int
    /// Second-level walks visit only leaves that reach into `first...last` (a page-selective
    /// re-sync reads the tables over its range only).
    var first: UInt64 = 0
    var last: UInt64 = .max
    /// Where a walk stopped for want of budget: every leaf below it was visited.
    private(set) var stoppedAt: UInt64?

    init(platform: any Platform, budget: Int, first: UInt64 = 0, last: UInt64 = .max) {
        self.platform = platform
        self.budget = budget
        self.first = first
        self.last = last
    }

    /// Visits the second-level leaves; false when the budget ran out first.
    mutating func secondLevel(root: UInt64, levels: Int, reserved: SecondLevelEntry.ReservedBits,
                              visit: (Mapping) -> Void) -> Bool {
        guard (1...5).contains(levels) else { return true }
        return secondLevel(table: root, level: levels, base: 0, granted: [.read, .write, .execute],
                           reserved: reserved, visit: visit)
    }

    private mutating func secondLevel(table: UInt64, level: Int, base: UInt64, granted: Permissions,
                                      reserved: SecondLevelEntry.ReservedBits, visit: (Mapping) -> Void) -> Bool {
        guard budget > 0 else {
            stoppedAt = stoppedAt ?? base
            return false
        }
        budget -= 1
        let shift = UInt64(12 + 9 * (level - 1))
        let wanted = entryRange(base: base, shift: shift)
        guard wanted.count > 1 else {
            // One entry, as a page-selective re-sync reads at every level: no buffer, no closure.
            var raw: UInt64 = 0
            let start = table &+ UInt64(wanted.lowerBound) &* 8
            guard withUnsafeMutableBytes(of: &raw, { platform.readGuest(start, into: $0) }) else { return true }
            return secondLevelEntry(UInt64(littleEndian: raw), index: wanted.lowerBound, level: level, base: base,
                                    granted: granted, reserved: reserved, visit: visit)
        }
        return withTablePage(table, entries: wanted) { raw, this in
            this.secondLevelEntry(raw.entry, index: raw.index, level: level, base: base, granted: granted,
                                  reserved: reserved, visit: visit)
        }
    }

    /// Entry `index` of a second-level table at `level` covering from `base`: a leaf is visited,
    /// a table walked; false when the budget ran out.
    private mutating func secondLevelEntry(_ raw: UInt64, index: Int, level: Int, base: UInt64, granted: Permissions,
                                           reserved: SecondLevelEntry.ReservedBits, visit: (Mapping) -> Void) -> Bool {
        let shift = UInt64(12 + 9 * (level - 1))
        let iova = base | UInt64(index) << shift
        guard iova | ((1 << shift) - 1) >= first, iova <= last else { return true }
        let entry = SecondLevelEntry(raw)
        guard entry.isPresent, !entry.hasReservedBits(atLevel: level, reserved) else { return true }
        let permissions = granted.intersection(entry.permissions)
        if entry.isLeaf(atLevel: level) {
            visit(Mapping(iova: iova, pageShift: UInt8(shift), output: entry.address & ~((1 << shift) - 1),
                          permissions: permissions))
            return true
        }
        return secondLevel(table: entry.address, level: level - 1, base: iova, granted: permissions,
                           reserved: reserved, visit: visit)
    }

    /// Visits the first-level leaves a user (non-privileged) request may use, IOVAs in
    /// canonical form; false when the budget ran out first.
    mutating func firstLevel(root: UInt64, levels: Int, reserved: FirstLevelEntry.ReservedBits,
                             visit: (Mapping) -> Void) -> Bool {
        guard levels == 4 || levels == 5 else { return true }
        let width = UInt64(levels == 5 ? 57 : 48)
        return firstLevel(table: root, level: levels, base: 0, writable: true, reserved: reserved) { mapping in
            var m = mapping
            // Sign-extend the top bit: the upper half of the canonical space.
            if m.iova >> (width - 1) & 1 != 0 { m.iova |= ~0 << width }
            visit(m)
        }
    }

    private mutating func firstLevel(table: UInt64, level: Int, base: UInt64, writable: Bool,
                                     reserved: FirstLevelEntry.ReservedBits, visit: (Mapping) -> Void) -> Bool {
        guard budget > 0 else { return false }
        budget -= 1
        return withTablePage(table) { raw, this in
            let entry = FirstLevelEntry(raw.entry)
            guard entry.isPresent, entry.isUser, !entry.hasReservedBits(atLevel: level, reserved) else { return true }
            let shift = UInt64(12 + 9 * (level - 1))
            let iova = base | UInt64(raw.index) << shift
            let canWrite = writable && entry.isWritable
            if entry.isLeaf(atLevel: level) {
                visit(Mapping(iova: iova, pageShift: UInt8(shift), output: entry.address & ~((1 << shift) - 1),
                              permissions: canWrite ? .readWrite : .read))
                return true
            }
            return this.firstLevel(table: entry.address, level: level - 1, base: iova, writable: canWrite,
                                   reserved: reserved, visit: visit)
        }
    }

    /// The entries of a table at `base`, each mapping `1 << shift` bytes, that reach into
    /// `first...last` (the caller visits only tables that do).
    private func entryRange(base: UInt64, shift: UInt64) -> ClosedRange<Int> {
        let lower = first <= base ? 0 : min((first - base) >> shift, 511)
        let upper = last < base ? 0 : min((last - base) >> shift, 511)
        return Int(lower)...Int(max(lower, upper))
    }

    /// Reads `entries` of `table` in one piece and calls `body` for each until it returns
    /// false. An unreadable table maps nothing.
    private mutating func withTablePage(_ table: UInt64, entries wanted: ClosedRange<Int> = 0...511,
                                        _ body: ((index: Int, entry: UInt64), inout MappingEnumerator) -> Bool) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: wanted.count) { entries in
            let start = table &+ UInt64(wanted.lowerBound) * 8
            guard platform.readGuest(start, into: UnsafeMutableRawBufferPointer(entries)) else { return true }
            for (slot, index) in wanted.enumerated() where !body((index, UInt64(littleEndian: entries[slot])), &self) {
                return false
            }
            return true
        }
    }
}

// Context-entry and PASID-entry caches (VT-d 6.2.1, 6.2.2). Small, direct-mapped, fixed
// storage: lookups and fills are O(1) and allocate nothing. Only present, valid entries are
// cached (as hardware without caching mode does), so a guest that fixes a bad entry needs
// no invalidation to be seen. Filled by translate only if no invalidation ran while it read
// guest memory (UnitState.invalidationGeneration).

/// A context entry as translate uses it.
enum CachedContext: Equatable, Sendable {
    case legacy(ContextEntry)
    case scalable(ScalableContextEntry)
}

struct ContextCache {
    static let slotCount = 512

    private struct Slot {
        /// The root table the entry was read through: a new SRTP never hits old entries.
        var root: RootTablePointer
        var sourceID: RequesterID
        var context: CachedContext
    }

    private var slots: [Slot?] = Array(repeating: nil, count: ContextCache.slotCount)

    @inline(__always)
    private static func slot(of sourceID: RequesterID) -> Int {
        Int((UInt32(sourceID.rawValue) &* 0x9E37_79B1) >> 23)
    }

    func lookup(sourceID: RequesterID, root: RootTablePointer) -> CachedContext? {
        guard let slot = slots[Self.slot(of: sourceID)], slot.sourceID == sourceID, slot.root == root else {
            return nil
        }
        return slot.context
    }

    mutating func insert(sourceID: RequesterID, root: RootTablePointer, context: CachedContext) {
        slots[Self.slot(of: sourceID)] = Slot(root: root, sourceID: sourceID, context: context)
    }

    mutating func invalidate(_ scope: ContextInvalidationScope) {
        switch scope {
        case .global:
            removeAll()
        case .domain(let domain):
            // Scalable-mode context entries carry no domain id: drop them all.
            removeAll { slot in
                if case .legacy(let entry) = slot.context { return entry.domainID == domain }
                return true
            }
        case .device:
            removeAll { scope.covers(sourceID: $0.sourceID) }
        }
    }

    mutating func removeAll() {
        for i in slots.indices { slots[i] = nil }
    }

    /// Cached entries. O(slots): for state dumps.
    var count: Int { slots.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    private mutating func removeAll(where matches: (Slot) -> Bool) {
        for i in slots.indices {
            if let slot = slots[i], matches(slot) { slots[i] = nil }
        }
    }
}

/// A PASID-table entry as translate uses it, with what led to it.
struct CachedPASIDEntry: Equatable, Sendable {
    var sourceID: RequesterID
    var pasid: PASID
    /// The PASID directory it was read through: a context entry pointing elsewhere never hits it.
    var directory: UInt64
    /// FPD of the PASID directory entry.
    var directoryFaultProcessingDisabled: Bool
    var entry: PASIDEntry
}

struct PASIDCache {
    static let slotCount = 1024

    private var slots: [CachedPASIDEntry?] = Array(repeating: nil, count: PASIDCache.slotCount)

    @inline(__always)
    private static func slot(sourceID: RequesterID, pasid: PASID) -> Int {
        let key = UInt64(sourceID.rawValue) << 20 | UInt64(pasid.rawValue).bits(19, 0)
        return Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 54)
    }

    func lookup(sourceID: RequesterID, pasid: PASID, directory: UInt64) -> CachedPASIDEntry? {
        guard let slot = slots[Self.slot(sourceID: sourceID, pasid: pasid)],
              slot.sourceID == sourceID, slot.pasid == pasid, slot.directory == directory else { return nil }
        return slot
    }

    mutating func insert(_ entry: CachedPASIDEntry) {
        slots[Self.slot(sourceID: entry.sourceID, pasid: entry.pasid)] = entry
    }

    mutating func invalidate(_ scope: PASIDCacheInvalidationScope) {
        for i in slots.indices {
            guard let slot = slots[i] else { continue }
            switch scope {
            case .global:
                slots[i] = nil
            case .domain(let domain):
                if slot.entry.domainID == domain { slots[i] = nil }
            case .pasid(let domain, let pasid):
                if slot.entry.domainID == domain && slot.pasid == pasid { slots[i] = nil }
            }
        }
    }

    mutating func removeAll() {
        for i in slots.indices { slots[i] = nil }
    }

    /// Cached entries. O(slots): for state dumps.
    var count: Int { slots.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }
}

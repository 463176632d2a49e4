// The translation caches as a part of the unit's state: the IOTLB, the context cache, the PASID
// cache, and the invalidation generation that ties them to walks done without the lock. The
// rule they keep: a translation never outlives the invalidation that covers it. Every
// invalidation calls `invalidated()`; a walk notes the generation it started at and its results
// go in only while that generation is still current (`fillCaches`, Translate.swift).
// What each invalidation scope removes is CacheInvalidation.swift's.

struct TranslationCaches: Sendable {
    /// Cached translations; hits are also served without the lock (IOTLBReader).
    let iotlb: IOTLB
    var context = ContextCache()
    var pasid = PASIDCache()
    /// Bumped by every invalidation of any of them, and by changes of the tables they came from.
    private(set) var generation: UInt64 = 0
    /// Bumped when a device's domain may change: context- and PASID-cache invalidations, the root
    /// table pointer or TE, reset. IOTLB invalidations leave it.
    private(set) var setupGeneration: UInt64 = 0
    /// The second-level tables a shadowed address space (NotifierRegistry.key) was last walked
    /// with, as the context and PASID caches would hold them: until the setup changes, a re-sync
    /// reads no root, context or PASID entry, and an IOTLB invalidation of another domain needs
    /// no re-sync of it at all.
    private var shadowedTables: [(key: UInt64, tables: ShadowedTables)] = []

    init(iotlbCapacity: Int) {
        iotlb = IOTLB(capacity: iotlbCapacity)
    }

    /// What is cached (or being walked) may be stale from now on.
    mutating func invalidated() { generation &+= 1 }

    /// Devices may be in other domains from now on (and what is cached is stale too).
    mutating func setupChanged() {
        setupGeneration &+= 1
        shadowedTables.removeAll(keepingCapacity: true)
        invalidated()
    }

    func shadowedTables(_ key: UInt64) -> ShadowedTables? {
        for entry in shadowedTables where entry.key == key { return entry.tables }
        return nil
    }

    /// Notes the tables a walk begun at setup generation `setup` found, unless the setup changed since.
    mutating func noteShadowedTables(_ key: UInt64, _ tables: ShadowedTables, walkedAt setup: UInt64) {
        guard setup == setupGeneration else { return }
        if let index = shadowedTables.firstIndex(where: { $0.key == key }) {
            shadowedTables[index].tables = tables
        } else {
            shadowedTables.append((key, tables))
        }
    }

    /// Everything goes (reset); the IOTLB storage stays.
    mutating func removeAll() {
        iotlb.removeAll()
        context.removeAll()
        pasid.removeAll()
        setupChanged()
    }
}

/// A shadowed address space's second-level tables, as its context or PASID entry names them.
struct ShadowedTables: Equatable, Sendable {
    var root: UInt64
    var levels: Int
    var domain: DomainID
}

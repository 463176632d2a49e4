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

    init(iotlbCapacity: Int) {
        iotlb = IOTLB(capacity: iotlbCapacity)
    }

    /// What is cached (or being walked) may be stale from now on.
    mutating func invalidated() { generation &+= 1 }

    /// Everything goes (reset); the IOTLB storage stays.
    mutating func removeAll() {
        iotlb.removeAll()
        context.removeAll()
        pasid.removeAll()
        invalidated()
    }
}

// Context-entry and PASID-entry caches.
// OWNER: tables + walkers work (issue 3). Stub: the invalidation interface.

struct ContextCache {
    mutating func invalidate(_ scope: ContextInvalidationScope) {}
    mutating func removeAll() {}
}

struct PASIDCache {
    mutating func invalidate(_ scope: PASIDCacheInvalidationScope) {}
    mutating func removeAll() {}
}

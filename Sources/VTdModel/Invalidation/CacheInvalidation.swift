// Cache invalidation as the spec defines it (6.5), shared by the invalidation queue and the
// register-based interface (CCMD, IOTLB registers): one place that knows which caches a scope
// reaches and that every invalidation ends translations walked before it.

extension UnitState {
    mutating func invalidateContextCache(_ scope: ContextInvalidationScope, effects: inout Effects) {
        contextCache.invalidate(scope)
        // PASID entries hang off context entries: whatever is cached below the invalidated
        // context entries goes too (as the register-based interface does).
        switch scope {
        case .global: pasidCache.invalidate(.global)
        case .domain(let domain), .device(_, _, let domain): pasidCache.invalidate(.domain(domain))
        }
        invalidationGeneration &+= 1
        switch scope {
        case .global, .domain:
            // Which devices a domain holds is in the tables, not here: every device re-queries.
            effects.events.append(.contextChanged(sid: nil, pasid: nil))
        case let .device(sourceID, functionMask, _):
            // FM n ignores the low n bits of the function number (spec 6.5.2.1).
            let ignored = UInt16((1 << functionMask) - 1)
            let first = sourceID & ~ignored
            for sid in first...(first | ignored) { effects.events.append(.contextChanged(sid: sid, pasid: nil)) }
        }
    }

    mutating func invalidateIOTLB(_ scope: IOTLBInvalidationScope) {
        iotlb.invalidate(scope)
        invalidationGeneration &+= 1
    }

    mutating func invalidatePASIDCache(_ scope: PASIDCacheInvalidationScope, effects: inout Effects) {
        pasidCache.invalidate(scope)
        invalidationGeneration &+= 1
        switch scope {
        case .global, .domain: effects.events.append(.contextChanged(sid: nil, pasid: nil))
        case let .pasid(_, pasid): effects.events.append(.contextChanged(sid: nil, pasid: pasid))
        }
    }
}

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
            let ignored = ContextInvalidationScope.ignoredSourceIDBits(functionMask: functionMask)
            let first = sourceID & ~ignored
            for bits in UInt16(0)...0b111 where bits & ~ignored == 0 {
                effects.events.append(.contextChanged(sid: first | bits, pasid: nil))
            }
        }
    }

    /// IOTLB invalidation, then UNMAP events for the hosts that asked (vhost, VFIO).
    mutating func invalidateIOTLB(_ scope: IOTLBInvalidationScope, effects: inout Effects) {
        invalidateIOTLB(scope)
        guard !notifiers.isEmpty else { return }
        notifyUnmap(scope, effects: &effects)
    }

    mutating func invalidateIOTLB(_ scope: IOTLBInvalidationScope) {
        iotlb.invalidate(scope)
        invalidationGeneration &+= 1
    }

    /// Which device a domain holds is in guest memory, not here, so every registration that
    /// the scope can concern hears of it: more UNMAPs than strictly needed, never fewer (a host
    /// dropping a mapping it still needs only maps it again). A PASID-granular scope spares
    /// registrations of other PASIDs; requests without PASID may be using it as RID_PASID.
    private func notifyUnmap(_ scope: IOTLBInvalidationScope, effects: inout Effects) {
        let pasid: UInt32?
        var address: UInt64 = 0
        var size: UInt64 = .max
        switch scope {
        case .global, .domain:
            pasid = nil
        case .pasid(_, let p):
            pasid = p
        case .pages(_, let a, let mask, _), .pasidPages(_, _, let a, let mask, _):
            if case .pasidPages(_, let p, _, _, _) = scope { pasid = p } else { pasid = nil }
            let shift = UInt64(mask) + 12
            if shift < 64 {
                size = 1 << shift
                address = a & ~(size - 1)
            }
        }
        for r in notifiers.registrations where r.kinds.contains(.unmap) {
            if let pasid, let registered = r.pasid, registered != pasid { continue }
            effects.events.append(.unmap(sid: r.sourceID, pasid: r.pasid, address: address, size: size))
        }
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

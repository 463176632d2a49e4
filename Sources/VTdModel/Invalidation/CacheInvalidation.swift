// Cache invalidation as the spec defines it (6.5), shared by the invalidation queue and the
// register-based interface (CCMD, IOTLB registers): one place that knows which caches a scope
// reaches and that every invalidation ends translations walked before it.

extension UnitState {
    mutating func invalidateContextCache(_ scope: ContextInvalidationScope, effects: inout Effects) {
        tracer?.trace(.contextInvalidation, .contextInvalidation(scope))
        caches.context.invalidate(scope)
        // PASID entries hang off context entries: whatever is cached below the invalidated
        // context entries goes too (as the register-based interface does).
        switch scope {
        case .global: caches.pasid.invalidate(.global)
        case .domain(let domain), .device(_, _, let domain): caches.pasid.invalidate(.domain(domain))
        }
        caches.setupChanged()
        // Context entries name the tables: a shadowed device re-reads all of them. (A domain-
        // selective scope names the old domain, which is in the tables no longer.)
        requestShadowResync(effects: &effects) { sid, _ in scope.covers(sourceID: sid) }
        switch scope {
        case .global, .domain:
            // Which devices a domain holds is in the tables, not here: every device re-queries.
            effects.events.append(.contextChanged(sid: nil, pasid: nil))
        case let .device(sourceID, functionMask, _):
            let ignored = ContextInvalidationScope.ignoredSourceIDBits(functionMask: functionMask)
            let first = sourceID.ignoringFunctionBits(ignored)
            for bits in UInt16(0)...0b111 where bits & ~UInt16(ignored) == 0 {
                effects.events.append(.contextChanged(sid: RequesterID(rawValue: first.rawValue | bits), pasid: nil))
            }
        }
    }

    /// IOTLB invalidation, then UNMAP events for the hosts that asked (vhost) and a re-sync of
    /// the shadowing ones (VFIO's MAP notifiers), which learn exactly what changed.
    mutating func invalidateIOTLB(_ scope: IOTLBInvalidationScope, effects: inout Effects) {
        invalidateIOTLB(scope)
        guard !notifiers.isEmpty else { return }
        notifyUnmap(scope, effects: &effects)
        resyncShadows(scope, effects: &effects)
    }

    private mutating func resyncShadows(_ scope: IOTLBInvalidationScope, effects: inout Effects) {
        var first: UInt64 = 0
        var last: UInt64 = .max
        let (domain, pasid): (DomainID?, PASID?)
        switch scope {
        case .global: (domain, pasid) = (nil, nil)
        case .domain(let d): (domain, pasid) = (d, nil)
        case let .pasid(d, p): (domain, pasid) = (d, p)
        case let .pages(d, address, mask, _), let .pasidPages(d, _, address, mask, _):
            if case .pasidPages(_, let p, _, _, _) = scope { (domain, pasid) = (d, p) } else { (domain, pasid) = (d, nil) }
            (first, last) = Self.pageRange(address: address, addressMask: mask)
        }
        requestShadowResync(first: first, last: last, domain: domain, effects: &effects) { _, registered in
            // Requests without PASID may be using the named PASID as RID_PASID.
            pasid == nil || registered == nil || registered == pasid
        }
    }

    /// The bytes 2^mask pages from `address` (aligned down) cover.
    static func pageRange(address: UInt64, addressMask: UInt8) -> (first: UInt64, last: UInt64) {
        let shift = UInt64(addressMask) + 12
        guard shift < 64 else { return (0, .max) }
        let size: UInt64 = 1 << shift
        let first = address & ~(size - 1)
        return (first, first | (size - 1))
    }

    mutating func invalidateIOTLB(_ scope: IOTLBInvalidationScope) {
        tracer?.trace(.iotlbInvalidation, .iotlbInvalidation(scope))
        caches.iotlb.invalidate(scope)
        caches.invalidated()
    }

    /// Which device a domain holds is in guest memory, not here, so every registration that
    /// the scope can concern hears of it: more UNMAPs than strictly needed, never fewer (a host
    /// dropping a mapping it still needs only maps it again). A PASID-granular scope spares
    /// registrations of other PASIDs; requests without PASID may be using it as RID_PASID.
    private func notifyUnmap(_ scope: IOTLBInvalidationScope, effects: inout Effects) {
        let pasid: PASID?
        var address: UInt64 = 0
        var size: UInt64 = .max
        switch scope {
        case .global, .domain:
            pasid = nil
        case .pasid(_, let p):
            pasid = p
        case .pages(let domain, let a, let mask, _), .pasidPages(let domain, _, let a, let mask, _):
            if case .pasidPages(_, let p, _, _, _) = scope { pasid = p } else { pasid = nil }
            let shift = UInt64(mask) + 12
            // A page-selective IOTLB invalidation names second-stage pages: what a nested
            // translation of the domain went through is not known here, so it goes whole.
            let secondStageOfNested = pasid == nil && nestedDomains.contains(domain)
            if shift < 64 && !secondStageOfNested {
                size = 1 << shift
                address = a & ~(size - 1)
            }
        }
        // Shadowing hosts (MAP) hear of exactly what changed from the re-sync instead.
        for r in notifiers.registrations where r.kinds.contains(.unmap) && !r.kinds.contains(.map) {
            if let pasid, let registered = r.pasid, registered != pasid { continue }
            effects.events.append(.unmap(sid: r.sourceID, pasid: r.pasid, address: address, size: size))
        }
    }

    mutating func invalidatePASIDCache(_ scope: PASIDCacheInvalidationScope, effects: inout Effects) {
        tracer?.trace(.pasidCacheInvalidation, .pasidCacheInvalidation(scope))
        caches.pasid.invalidate(scope)
        caches.setupChanged()
        requestShadowResync(effects: &effects) { _, registered in
            guard case let .pasid(_, pasid) = scope else { return true }
            return registered == nil || registered == pasid
        }
        switch scope {
        case .global, .domain: effects.events.append(.contextChanged(sid: nil, pasid: nil))
        case let .pasid(_, pasid): effects.events.append(.contextChanged(sid: nil, pasid: pasid))
        }
    }
}

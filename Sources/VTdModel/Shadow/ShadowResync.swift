// Caching-mode shadowing (QEMU's MAP notifiers): with CAP.CM the guest invalidates after it maps
// as well as after it unmaps, so every invalidation that can cover a shadowed address space
// re-reads its second-level tables over the range and sends the host the difference from what it
// was told (ShadowRecord). Under the lock an invalidation only notes which (sid, pasid) and which
// range (`requestShadowResync`); the walk reads guest memory without the lock, the diff is applied
// under it and the events go out after it.
//
// Only second-level tables are shadowed. A guest does not invalidate after first-level maps, even
// with caching mode (Linux: "only flush if caching mode and second level"; spec 6.1), so a
// first-level, nested or pass-through PASID entry, a faulting setup or translation off shadows
// nothing: whatever was mapped is unmapped.
//
// Bounds: a walk reads at most `VTdUnit.replayBudget` table pages; when it stops early the
// record keeps what lies beyond the point reached, and says so. A record holds at most
// `shadowMappingLimit` mappings; MAPs beyond it are dropped and logged.
// Two invalidations on different threads may send their events in either order; QEMU serialises
// MMIO under its big lock.

/// An address space (sid, pasid) to re-sync over `first...last`.
struct ShadowResyncRequest: Equatable {
    var sourceID: RequesterID
    var pasid: PASID?
    var first: UInt64 = 0
    var last: UInt64 = .max
    /// IOTLB invalidations name a domain: a device now in another one has nothing to re-sync.
    var domain: DomainID?

    func covers(_ other: ShadowResyncRequest) -> Bool {
        sourceID == other.sourceID && pasid == other.pasid && first <= other.first && last >= other.last
            && (domain == nil || domain == other.domain)
    }
}

extension Effects {
    /// Adds a re-sync unless one already pending covers it (a queue window of page-selective
    /// invalidations inside one domain-selective one walks once).
    mutating func requestResync(_ request: ShadowResyncRequest) {
        if resyncs.contains(where: { $0.covers(request) }) { return }
        resyncs.removeAll { request.covers($0) }
        resyncs.append(request)
    }
}

extension UnitState {
    /// Notes a re-sync of every address space with a MAP notifier that `concerns` selects.
    mutating func requestShadowResync(first: UInt64 = 0, last: UInt64 = .max, domain: DomainID? = nil,
                                      effects: inout Effects, concerns: (RequesterID, PASID?) -> Bool) {
        guard !notifiers.isEmpty else { return }
        for r in notifiers.registrations where r.kinds.contains(.map) && concerns(r.sourceID, r.pasid) {
            // A device known to be in another domain has nothing to re-sync.
            if let domain, let known = caches.shadowedDomain(NotifierRegistry.key(r.sourceID, r.pasid)),
               known != domain { continue }
            effects.requestResync(ShadowResyncRequest(sourceID: r.sourceID, pasid: r.pasid, first: first,
                                                      last: last, domain: domain))
        }
    }
}

extension VTdUnit {
    /// Walks retried when an invalidation ran meanwhile, before the last walk is applied anyway.
    static let shadowResyncAttempts = 4

    /// Walks the tables of `request` over its range and tells the host what changed.
    func resyncShadow(_ request: ShadowResyncRequest, budget: Int = VTdUnit.replayBudget) {
        let (sid, pasid) = (request.sourceID, request.pasid)
        var effects = Effects()
        for attempt in 1...Self.shadowResyncAttempts {
            // Decide under the lock: still shadowed? which range, counting whole recorded entries?
            guard let start = state.withLock({ s -> (UInt64, UInt64, Bool, RootTablePointer, UInt64, UInt64)? in
                guard s.notifiers[sid, pasid].contains(.map) else { return nil }
                let (first, last) = s.shadows[sid, pasid].span(request.first, request.last)
                return (s.caches.generation, s.caches.setupGeneration, s.translationEnabled, s.translationRootTable,
                        first, last)
            }) else { return }
            let (generation, setup, enabled, root, first, last) = start
            // Read guest memory without it.
            var tableDomain: DomainID?
            let walk = shadowWalk(sid, pasid, enabled: enabled, root: root, first: first, last: last,
                                  domain: request.domain, budget: budget, tableDomain: &tableDomain)
            let key = NotifierRegistry.key(sid, pasid)
            guard let walk else {
                // Another domain's invalidation: learn the domain, so the next one reads nothing.
                if let tableDomain { state.withLock { $0.caches.noteShadowedDomain(key, tableDomain, walkedAt: setup) } }
                return
            }
            // Apply under it, unless an invalidation ran meanwhile (its walk may already be applied).
            let applied = state.withLock { s -> Bool in
                if let tableDomain, s.caches.shadowedDomain(key) != tableDomain {
                    s.caches.noteShadowedDomain(key, tableDomain, walkedAt: setup)
                }
                guard s.notifiers[sid, pasid].contains(.map) else { return true }
                guard s.caches.generation == generation || attempt == Self.shadowResyncAttempts else {
                    return false
                }
                var last = last
                if let stop = walk.stoppedAt {
                    effects.log(.guestError, "shadow re-sync of 0x\(String(sid.rawValue, radix: 16)) stopped "
                                + (walk.outOfBudget ? "after \(budget) table pages" : "at its limit of \(s.configuration.shadowMappingLimit) mappings")
                                + "; mappings from 0x\(String(stop, radix: 16)) left as they were")
                    guard stop > first else { return true }
                    last = min(last, stop - 1)
                }
                let (limit, host) = (s.configuration.shadowMappingLimit, s.shadows.host(sid))
                let dropped = s.shadows.modify(sourceID: sid, pasid: pasid) {
                    $0.update(first: first, last: last, found: walk.leaves, limit: limit, host: host,
                              sourceID: sid, pasid: pasid, events: &effects.events)
                }
                if dropped > 0 {
                    effects.log(.guestError, "shadow of 0x\(String(sid.rawValue, radix: 16)) holds its limit of "
                                + "\(s.configuration.shadowMappingLimit) mappings: \(dropped) MAPs dropped")
                }
                return true
            }
            if applied { break }
        }
        if !effects.isEmpty { perform(&effects) }
    }

    /// The second-level leaves (sid, pasid) has over `first...last`, as the host may shadow them;
    /// nil when the tables belong to a domain the invalidation did not name.
    /// `tableDomain`: the second-level tables' domain, when the device has such tables.
    private func shadowWalk(_ sid: RequesterID, _ pasid: PASID?, enabled: Bool, root: RootTablePointer,
                            first: UInt64, last: UInt64, domain: DomainID?, budget: Int,
                            tableDomain found: inout DomainID?) -> (leaves: [Mapping], stoppedAt: UInt64?, outOfBudget: Bool)? {
        guard enabled,
              case .success(let tables) = translationEngine.deviceTables(sourceID: sid, pasid: pasid, root: root,
                                                                         platform: platform) else {
            return domain == nil ? ([], nil, false) : nil
        }
        guard case let .secondLevel(tableRoot, levels, tableDomain) = tables else {
            // First-level, nested and pass-through entries are not shadowed.
            return domain == nil ? ([], nil, false) : nil
        }
        found = tableDomain
        if let domain, domain != tableDomain { return nil }
        var leaves: [Mapping] = []
        // More leaves than a record may hold cannot all be recorded: stop there, as at the budget.
        var full: UInt64?
        let limit = configuration.shadowMappingLimit
        var enumerator = MappingEnumerator(platform: platform, budget: budget, first: first, last: last)
        _ = enumerator.secondLevel(root: tableRoot, levels: levels, reserved: translationEngine.secondLevelReserved) { m in
            // Requests without PASID cannot reach the interrupt range through it (they fault).
            if pasid == nil && TranslationEngine.overlapsInterruptRange(page: m.output, shift: m.pageShift) { return }
            guard leaves.count < limit else {
                full = full ?? m.iova
                return
            }
            leaves.append(m)
        }
        if let full, full < enumerator.stoppedAt ?? .max { return (leaves, full, false) }
        return (leaves, enumerator.stoppedAt, enumerator.stoppedAt != nil)
    }

    /// QEMU's replay for a shadowing host: forget what it was told and map every second-level
    /// leaf (sid, pasid) has now. Returns how many MAPs.
    func replayShadow(sourceID: RequesterID, pasid: PASID?, budget: Int) -> Int {
        state.withLock { $0.shadows.remove(sourceID: sourceID, pasid: pasid) }
        resyncShadow(ShadowResyncRequest(sourceID: sourceID, pasid: pasid), budget: budget)
        return state.withLock { $0.shadows[sourceID, pasid].mappings.count }
    }

    /// How the host of `sourceID` takes shadow events (HostDevices: from the attach flags). A record
    /// already held stays valid either way: its entries are what the host holds.
    public func setShadowHost(_ host: ShadowHost, sourceID: RequesterID) {
        state.withLock { $0.shadows.setHost(host, sourceID: sourceID) }
    }

    /// What the host shadowing (sid, pasid) was told is mapped (tests, dumps).
    func shadowMappings(sourceID: RequesterID, pasid: PASID?) -> [Mapping] {
        state.withLock { $0.shadows[sourceID, pasid].mappings }
    }
}

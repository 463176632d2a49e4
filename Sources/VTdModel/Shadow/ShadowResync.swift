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

/// What a re-sync read under the lock before it walks without it.
struct ShadowResyncStart {
    var generation: UInt64
    var setup: UInt64
    var enabled: Bool
    var root: RootTablePointer
    /// The tables a walk in this setup already found.
    var known: ShadowedTables?
    /// The request's range widened to whole recorded entries.
    var first: UInt64
    var last: UInt64
}

/// What a walk found, besides its leaves.
struct ShadowWalk {
    /// False: the tables are another domain's than the invalidation named; nothing to apply.
    var inDomain: Bool
    /// The second-level tables walked, when the device has some.
    var tables: ShadowedTables?
    /// Leaves from here on were not visited (budget or record limit).
    var stoppedAt: UInt64?
    var outOfBudget = false
}

enum ShadowResyncOutcome { case done, retry }

/// Where a re-sync's events go: an array, or a buffer on the re-sync's stack
/// (`ShadowEventBuffer`), so that the common one-page re-sync allocates nothing.
protocol ShadowEventSink {
    mutating func append(_ event: PlatformEvent)
    /// Each event in the order appended.
    func forEachEvent(_ body: (PlatformEvent) -> Void)
}

extension Array: ShadowEventSink where Element == PlatformEvent {
    func forEachEvent(_ body: (PlatformEvent) -> Void) {
        for event in self { body(event) }
    }
}

/// Events in stack memory the caller provides; any beyond its capacity go to an array after them.
struct ShadowEventBuffer: ShadowEventSink {
    private let storage: UnsafeMutableBufferPointer<PlatformEvent>
    private var count = 0
    private var overflow: [PlatformEvent] = []

    init(_ storage: UnsafeMutableBufferPointer<PlatformEvent>) { self.storage = storage }

    mutating func append(_ event: PlatformEvent) {
        guard count < storage.count else {
            overflow.append(event)
            return
        }
        storage.initializeElement(at: count, to: event)
        count += 1
    }

    func forEachEvent(_ body: (PlatformEvent) -> Void) {
        for i in 0..<count { body(storage[i]) }
        for event in overflow { body(event) }
    }

    /// Before its storage goes.
    mutating func deinitialize() {
        if count > 0 { storage.baseAddress?.deinitialize(count: count) }
        count = 0
        overflow = []
    }
}

extension UnitState {
    /// Notes a re-sync of every address space with a MAP notifier that `concerns` selects.
    mutating func requestShadowResync(first: UInt64 = 0, last: UInt64 = .max, domain: DomainID? = nil,
                                      effects: inout Effects, concerns: (RequesterID, PASID?) -> Bool) {
        guard !notifiers.isEmpty else { return }
        for r in notifiers.registrations where r.kinds.contains(.map) && concerns(r.sourceID, r.pasid) {
            // A device known to be in another domain has nothing to re-sync.
            if let domain, let known = caches.shadowedTables(NotifierRegistry.key(r.sourceID, r.pasid)),
               known.domain != domain { continue }
            effects.requestResync(ShadowResyncRequest(sourceID: r.sourceID, pasid: r.pasid, first: first,
                                                      last: last, domain: domain))
        }
    }
}

extension VTdUnit {
    /// Walks retried when an invalidation ran meanwhile, before the last walk is applied anyway.
    static let shadowResyncAttempts = 4
    /// Ranges of at most this many pages (a page-selective invalidation: Linux sends one per
    /// mapped page) collect their leaves and events in buffers on the stack; wider ones in arrays.
    static let stackLeafPages: UInt64 = 64

    /// Walks the tables of `request` over its range and tells the host what changed.
    func resyncShadow(_ request: ShadowResyncRequest, budget: Int = VTdUnit.replayBudget) {
        let (sid, pasid) = (request.sourceID, request.pasid)
        let key = NotifierRegistry.key(sid, pasid)
        var effects = Effects()
        for attempt in 1...Self.shadowResyncAttempts {
            // Decide under the lock: still shadowed? which range, counting whole recorded entries?
            guard let start = state.withLock({ s -> ShadowResyncStart? in
                guard s.notifiers[sid, pasid].contains(.map) else { return nil }
                let (first, last) = s.shadows[sid, pasid].span(request.first, request.last)
                return ShadowResyncStart(generation: s.caches.generation, setup: s.caches.setupGeneration,
                                         enabled: s.translationEnabled, root: s.translationRootTable,
                                         known: s.caches.shadowedTables(key), first: first, last: last)
            }) else { return }
            // Read guest memory without it.
            let pages = (start.last >> 12) &- (start.first >> 12) &+ 1
            let outcome: ShadowResyncOutcome
            if pages <= Self.stackLeafPages {
                // n pages hold at most n leaves and n recorded entries, whose UNMAPs a few
                // aligned chunks cover: the buffer holds them all in practice.
                outcome = withUnsafeTemporaryAllocation(of: Mapping.self, capacity: Int(pages)) { buffer in
                    withUnsafeTemporaryAllocation(of: PlatformEvent.self, capacity: 2 * Int(pages) + 8) { storage in
                        var events = ShadowEventBuffer(storage)
                        defer { events.deinitialize() }
                        var count = 0
                        let walk = shadowWalk(request, start, budget: budget) { leaf in
                            // A range of n pages holds at most n leaves: never full in practice.
                            guard count < buffer.count else { return false }
                            buffer.initializeElement(at: count, to: leaf)
                            count += 1
                            return true
                        }
                        let outcome = applyShadowWalk(walk, UnsafeBufferPointer(rebasing: buffer[..<count]), request,
                                                      start, attempt: attempt, budget: budget, effects: &effects,
                                                      events: &events)
                        if outcome == .done { deliver(&effects, events) }
                        return outcome
                    }
                }
            } else {
                var leaves: [Mapping] = []
                var events: [PlatformEvent] = []
                let walk = shadowWalk(request, start, budget: budget) { leaves.append($0); return true }
                outcome = leaves.withUnsafeBufferPointer {
                    applyShadowWalk(walk, $0, request, start, attempt: attempt, budget: budget, effects: &effects,
                                    events: &events)
                }
                if outcome == .done { deliver(&effects, events) }
            }
            if outcome == .done { return }
        }
    }

    /// A re-sync's logs, then its events, as `perform` would deliver them (the events are MAPs
    /// and UNMAPs only: nothing the host binding observer takes).
    private func deliver<Events: ShadowEventSink>(_ effects: inout Effects, _ events: Events) {
        if !effects.isEmpty { perform(&effects) }
        events.forEachEvent { platform.notify($0) }
    }

    /// Records the leaves a walk found over the range and appends the events to `events`, under the lock;
    /// `.retry` when an invalidation ran meanwhile (its walk may already be applied).
    private func applyShadowWalk<Events: ShadowEventSink>(
        _ walk: ShadowWalk, _ found: UnsafeBufferPointer<Mapping>, _ request: ShadowResyncRequest,
        _ start: ShadowResyncStart, attempt: Int, budget: Int, effects: inout Effects, events: inout Events
    ) -> ShadowResyncOutcome {
        let (sid, pasid) = (request.sourceID, request.pasid)
        let key = NotifierRegistry.key(sid, pasid)
        guard walk.inDomain else {
            // Another domain's invalidation: learn the tables, so the next one reads nothing.
            if let tables = walk.tables, tables != start.known {
                state.withLock { $0.caches.noteShadowedTables(key, tables, walkedAt: start.setup) }
            }
            return .done
        }
        return state.withLock { s -> ShadowResyncOutcome in
            if let tables = walk.tables, tables != start.known {
                s.caches.noteShadowedTables(key, tables, walkedAt: start.setup)
            }
            guard s.notifiers[sid, pasid].contains(.map) else { return .done }
            guard s.caches.generation == start.generation || attempt == Self.shadowResyncAttempts else {
                return .retry
            }
            var last = start.last
            if let stop = walk.stoppedAt {
                effects.log(.guestError, "shadow re-sync of 0x\(String(sid.rawValue, radix: 16)) stopped "
                            + (walk.outOfBudget ? "after \(budget) table pages" : "at its limit of \(s.configuration.shadowMappingLimit) mappings")
                            + "; mappings from 0x\(String(stop, radix: 16)) left as they were")
                guard stop > start.first else { return .done }
                last = min(last, stop - 1)
            }
            let (limit, host) = (s.configuration.shadowMappingLimit, s.shadows.host(sid))
            let dropped = s.shadows.modify(sourceID: sid, pasid: pasid) {
                $0.update(first: start.first, last: last, found: found, limit: limit, host: host,
                          sourceID: sid, pasid: pasid, events: &events)
            }
            if dropped > 0 {
                effects.log(.guestError, "shadow of 0x\(String(sid.rawValue, radix: 16)) holds its limit of "
                            + "\(s.configuration.shadowMappingLimit) mappings: \(dropped) MAPs dropped")
            }
            return .done
        }
    }

    /// Hands `leaf` the second-level leaves (sid, pasid) has over the start's range, as the host
    /// may shadow them, until it returns false. None when the tables belong to a domain the
    /// invalidation did not name (`inDomain` false) or are not second-level ones.
    private func shadowWalk(_ request: ShadowResyncRequest, _ start: ShadowResyncStart, budget: Int,
                            leaf: (Mapping) -> Bool) -> ShadowWalk {
        guard let tables = secondLevelTables(request, start) else {
            // First-level, nested and pass-through entries are not shadowed: nothing is mapped.
            return ShadowWalk(inDomain: request.domain == nil)
        }
        var walk = ShadowWalk(inDomain: request.domain == nil || request.domain == tables.domain, tables: tables)
        guard walk.inDomain else { return walk }
        // More leaves than a record may hold cannot all be recorded: stop there, as at the budget.
        var full: UInt64?
        var count = 0
        let limit = configuration.shadowMappingLimit
        let withoutPASID = request.pasid == nil
        var enumerator = MappingEnumerator(platform: platform, budget: budget, first: start.first, last: start.last)
        _ = enumerator.secondLevel(root: tables.root, levels: tables.levels,
                                   reserved: translationEngine.secondLevelReserved) { m in
            // Requests without PASID cannot reach the interrupt range through it (they fault).
            if withoutPASID && TranslationEngine.overlapsInterruptRange(page: m.output, shift: m.pageShift) { return }
            guard full == nil else { return }
            guard count < limit, leaf(m) else {
                full = m.iova
                return
            }
            count += 1
        }
        if let full, full < enumerator.stoppedAt ?? .max {
            walk.stoppedAt = full
        } else {
            walk.stoppedAt = enumerator.stoppedAt
            walk.outOfBudget = enumerator.stoppedAt != nil
        }
        return walk
    }

    /// The second-level tables of (sid, pasid): those a walk in this setup already found, or
    /// what its root, context and PASID entries say now; nil when it has none.
    private func secondLevelTables(_ request: ShadowResyncRequest, _ start: ShadowResyncStart) -> ShadowedTables? {
        guard start.enabled else { return nil }
        if let known = start.known { return known }
        guard case .success(.secondLevel(let root, let levels, let domain)) =
                translationEngine.deviceTables(sourceID: request.sourceID, pasid: request.pasid, root: start.root,
                                               platform: platform) else { return nil }
        return ShadowedTables(root: root, levels: levels, domain: domain)
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

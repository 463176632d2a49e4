// The devices the unit has translated for, and how: per (source-id, PASID), the translation
// type and domain the last table walk found. For the state dump, so a person (or a guest test)
// can see which translation type each device ended up with.
//
// Updated on the translate miss path only (a walk already costs guest memory reads): the hit
// path never touches it. Fixed storage, no allocation after init; when full, the entry walked
// least recently gives way.

/// How translations of one (source-id, PASID) went, as of its last walk.
struct DeviceRoute: Equatable, Sendable {
    enum Kind: Equatable, Sendable {
        /// Legacy mode: the context entry's TT.
        case legacy(ContextEntry.TranslationType)
        /// Scalable mode: the PASID entry's PGTT.
        case scalable(PASIDEntry.TranslationType)
        /// The walk faulted before it found a translation type.
        case unknown
    }

    var sourceID: RequesterID
    /// The request's PASID; nil for requests without PASID.
    var pasid: PASID?
    var kind: Kind
    /// The domain of the context (legacy) or PASID (scalable) entry; nil when the walk found none.
    var domainID: DomainID?
    /// Fault reason of the last walk, nil when it translated.
    var lastFault: FaultReason?
    /// Table walks (translate misses) for this (source-id, PASID).
    var walks: UInt64
    var lastUse: UInt64
}

struct DevicesSeen {
    static let capacity = 64

    private var routes: [DeviceRoute?] = Array(repeating: nil, count: DevicesSeen.capacity)
    private var clock: UInt64 = 0
    /// The slot of the last walk: a device's walks come in runs, so most record there without a search.
    private var lastSlot = 0

    /// Notes what one walk found for (sourceID, pasid).
    mutating func record(sourceID: RequesterID, pasid: PASID?, kind: DeviceRoute.Kind, domainID: DomainID?,
                         fault: FaultReason?) {
        clock &+= 1
        if let last = routes[lastSlot], last.sourceID == sourceID, last.pasid == pasid {
            routes[lastSlot] = DeviceRoute(sourceID: sourceID, pasid: pasid, kind: kind, domainID: domainID,
                                           lastFault: fault, walks: last.walks &+ 1, lastUse: clock)
            return
        }
        var slot = 0
        var oldest = UInt64.max
        for i in routes.indices {
            guard let route = routes[i] else {
                if oldest != 0 { slot = i; oldest = 0 }
                continue
            }
            if route.sourceID == sourceID && route.pasid == pasid {
                slot = i
                break
            }
            if route.lastUse < oldest { slot = i; oldest = route.lastUse }
        }
        var walks: UInt64 = 1
        if let old = routes[slot], old.sourceID == sourceID, old.pasid == pasid { walks = old.walks &+ 1 }
        routes[slot] = DeviceRoute(sourceID: sourceID, pasid: pasid, kind: kind, domainID: domainID,
                                   lastFault: fault, walks: walks, lastUse: clock)
        lastSlot = slot
    }

    mutating func removeAll() {
        for i in routes.indices { routes[i] = nil }
    }

    /// Every route, by source-id then PASID (requests without PASID first).
    var all: [DeviceRoute] {
        routes.compactMap { $0 }.sorted {
            ($0.sourceID, $0.pasid.map { Int($0.rawValue) } ?? -1) < ($1.sourceID, $1.pasid.map { Int($0.rawValue) } ?? -1)
        }
    }
}

extension UnitState {
    /// After a walk (the miss path): counts it, and notes what it found for the request's device.
    /// The context and PASID entries come from the walk, or from the caches that spared it
    /// reading them.
    mutating func noteWalk(_ r: TranslationRequest, hints: CacheHints, result: WalkResult) {
        let fault: FaultReason?
        if case .fault(let reason) = result.outcome { fault = reason } else { fault = nil }
        statistics.walks &+= 1
        if fault != nil { statistics.faults &+= 1 }
        var kind = DeviceRoute.Kind.unknown
        var domain: DomainID?
        switch result.context ?? hints.context {
        case .legacy(let context)?:
            kind = .legacy(context.translationType)
            domain = context.domainID
        case .scalable(let context)?:
            let pasid = r.pasid ?? context.ridPASID
            let hint = hints.pasidEntry.flatMap { $0.sourceID == r.sourceID && $0.pasid == pasid ? $0 : nil }
            if let entry = (result.pasidEntry ?? hint)?.entry, let type = entry.translationType {
                kind = .scalable(type)
                domain = entry.domainID
            }
        case nil:
            break
        }
        devicesSeen.record(sourceID: r.sourceID, pasid: r.pasid, kind: kind, domainID: domain, fault: fault)
    }
}

// What an operation decided under the state lock and the unit performs after releasing it:
// callbacks never run under the lock (a callback may re-enter the unit).

public struct MSIMessage: Equatable, Sendable {
    public var address: UInt64
    public var data: UInt32
    public init(address: UInt64, data: UInt32) { self.address = address; self.data = data }
}

struct Effects {
    // At most one each of fault, invalidation-completion and page-request events per operation:
    // fixed slots keep the MMIO path free of allocation.
    var faultEvent: MSIMessage?
    var invalidationEvent: MSIMessage?
    var pageRequestEvent: MSIMessage?
    /// Notifications; allocates only when there are some (invalidations with listeners).
    var events: [PlatformEvent] = []
    /// The first shadowed address space whose tables changed (a page-selective invalidation asks
    /// for one): inline, no allocation. Further ones are in `rare`.
    private var firstResync: ShadowResyncRequest?
    /// The queued-invalidation engine has work (IQT written, QIE enabled with a non-empty queue).
    var runInvalidationQueue = false
    /// How many of `events` the host binding observer has heard (a wait hands them over early).
    var hostEventsDelivered = 0
    /// What few operations have, in one box: an operation without any of it ends with one
    /// reference to release (`events`), not five arrays.
    private var rare: RareEffects?

    var isEmpty: Bool {
        faultEvent == nil && invalidationEvent == nil && pageRequestEvent == nil
            && events.isEmpty && firstResync == nil && !runInvalidationQueue && (rare?.isEmpty ?? true)
    }

    /// Guest errors and traces.
    var logs: [(LogLevel, String)] { rare?.logs ?? [] }
    /// PASID-IOTLB descriptors for the host binding observer (only while one is installed).
    var hostInvalidations: [HostPASIDInvalidation] { rare?.hostInvalidations ?? [] }
    /// Which queued descriptor added which of `events` (only while a host is bound): a setup change
    /// the host cannot carry out is reported as IQE on the descriptor that caused it.
    var hostSetupOrigins: [(events: Range<Int>, descriptor: Int)] { rare?.hostSetupOrigins ?? [] }

    mutating func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        let entry = (level, message())
        changeRare { $0.logs.append(entry) }
    }

    mutating func appendHostInvalidation(_ invalidation: HostPASIDInvalidation) {
        changeRare { $0.hostInvalidations.append(invalidation) }
    }

    mutating func removeHostInvalidations() {
        guard let rare, !rare.hostInvalidations.isEmpty else { return }
        changeRare { $0.hostInvalidations.removeAll(keepingCapacity: true) }
    }

    mutating func appendHostSetupOrigin(events: Range<Int>, descriptor: Int) {
        changeRare { $0.hostSetupOrigins.append((events, descriptor)) }
    }

    // The pending re-syncs, in the order asked for (ShadowResync.swift decides which).

    func forEachResync(_ body: (ShadowResyncRequest) -> Void) {
        guard let first = firstResync else { return }
        body(first)
        rare?.resyncs.forEach(body)
    }

    mutating func appendResync(_ request: ShadowResyncRequest) {
        if firstResync == nil { firstResync = request } else { changeRare { $0.resyncs.append(request) } }
    }

    mutating func removeResyncs(where isRemoved: (ShadowResyncRequest) -> Bool) {
        guard let first = firstResync else { return }
        if let rare, rare.resyncs.contains(where: isRemoved) { changeRare { $0.resyncs.removeAll(where: isRemoved) } }
        if isRemoved(first) {
            firstResync = nil
            if let rare, !rare.resyncs.isEmpty { firstResync = changeRare { $0.resyncs.removeFirst() } }
        }
    }

    /// Changes the box, made (or copied, when another Effects shares it) first.
    private mutating func changeRare<R>(_ change: (RareEffects) -> R) -> R {
        if rare == nil {
            rare = RareEffects()
        } else if !isKnownUniquelyReferenced(&rare) {
            rare = rare?.copy()
        }
        return change(rare!)
    }
}

/// Effects few operations have (see `Effects.rare`).
private final class RareEffects {
    var logs: [(LogLevel, String)] = []
    /// Re-syncs after `Effects.firstResync`, in the order asked for.
    var resyncs: [ShadowResyncRequest] = []
    var hostInvalidations: [HostPASIDInvalidation] = []
    var hostSetupOrigins: [(events: Range<Int>, descriptor: Int)] = []

    var isEmpty: Bool { logs.isEmpty && resyncs.isEmpty && hostInvalidations.isEmpty }

    func copy() -> RareEffects {
        let copy = RareEffects()
        (copy.logs, copy.resyncs) = (logs, resyncs)
        (copy.hostInvalidations, copy.hostSetupOrigins) = (hostInvalidations, hostSetupOrigins)
        return copy
    }
}

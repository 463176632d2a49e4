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
    /// The queued-invalidation engine has work (IQT written, QIE enabled with a non-empty queue).
    var runInvalidationQueue = false
    /// How many of `events` the host binding observer has heard (a wait hands them over early).
    var hostEventsDelivered = 0
    /// The re-sync, when an operation has exactly one (a shadowed device's page-selective
    /// invalidation): no box for it. More go to the box, this one first.
    private var soleResync: ShadowResyncRequest?
    /// What few operations have, in one box: an operation without any of it (a strict-mode IQT
    /// write, a translate miss) ends with no reference to release and no array to look at.
    private var rare: RareEffects?

    var isEmpty: Bool {
        faultEvent == nil && invalidationEvent == nil && pageRequestEvent == nil && !runInvalidationQueue
            && soleResync == nil && (rare?.isEmpty ?? true)
    }

    /// Notifications (invalidations with listeners, context changes, page group responses).
    var events: [PlatformEvent] {
        get { rare?.events ?? [] }
        _modify { yield &uniqueRare().events }
    }
    /// How many `events` there are so far, without making an empty array to ask (0 without a box).
    var eventCount: Int { rare?.events.count ?? 0 }
    /// Shadowed address spaces whose tables changed: walked and diffed after the lock is released
    /// (`requestResync` decides which). `forEachResync` reads them without making an array.
    var resyncs: [ShadowResyncRequest] {
        if let soleResync { return [soleResync] }
        return rare?.resyncs ?? []
    }

    func forEachResync(_ body: (ShadowResyncRequest) -> Void) {
        if let soleResync { body(soleResync) }
        if let rare { for request in rare.resyncs { body(request) } }
    }

    /// Adds a re-sync unless one already pending covers it (a queue window of page-selective
    /// invalidations inside one domain-selective one walks once); drops those it covers.
    mutating func requestResync(_ request: ShadowResyncRequest) {
        if let sole = soleResync {
            if sole.covers(request) { return }
            soleResync = nil
            if request.covers(sole) {
                soleResync = request
            } else {
                uniqueRare().resyncs = [sole, request]
            }
            return
        }
        guard let rare, !rare.resyncs.isEmpty else {
            soleResync = request
            return
        }
        if rare.resyncs.contains(where: { $0.covers(request) }) { return }
        let box = uniqueRare()
        box.resyncs.removeAll { request.covers($0) }
        box.resyncs.append(request)
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
        uniqueRare().logs.append(entry)
    }

    mutating func appendHostInvalidation(_ invalidation: HostPASIDInvalidation) {
        uniqueRare().hostInvalidations.append(invalidation)
    }

    mutating func removeHostInvalidations() {
        guard let rare, !rare.hostInvalidations.isEmpty else { return }
        uniqueRare().hostInvalidations.removeAll(keepingCapacity: true)
    }

    mutating func appendHostSetupOrigin(events: Range<Int>, descriptor: Int) {
        uniqueRare().hostSetupOrigins.append((events, descriptor))
    }

    /// The box, made (or copied, when another Effects shares it) first: Effects stays a value.
    private mutating func uniqueRare() -> RareEffects {
        if rare == nil {
            rare = RareEffects()
        } else if !isKnownUniquelyReferenced(&rare) {
            rare = rare?.copy()
        }
        return rare!
    }
}

/// Effects few operations have (see `Effects.rare`).
private final class RareEffects {
    var events: [PlatformEvent] = []
    var resyncs: [ShadowResyncRequest] = []
    var logs: [(LogLevel, String)] = []
    var hostInvalidations: [HostPASIDInvalidation] = []
    var hostSetupOrigins: [(events: Range<Int>, descriptor: Int)] = []

    var isEmpty: Bool { events.isEmpty && resyncs.isEmpty && logs.isEmpty && hostInvalidations.isEmpty }

    func copy() -> RareEffects {
        let copy = RareEffects()
        (copy.events, copy.resyncs, copy.logs) = (events, resyncs, logs)
        (copy.hostInvalidations, copy.hostSetupOrigins) = (hostInvalidations, hostSetupOrigins)
        return copy
    }
}

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
    /// What few operations have, in one box: an operation without any of it (a strict-mode IQT
    /// write, a translate miss) ends with no reference to release and no array to look at.
    private var rare: RareEffects?

    var isEmpty: Bool {
        faultEvent == nil && invalidationEvent == nil && pageRequestEvent == nil && !runInvalidationQueue
            && (rare?.isEmpty ?? true)
    }

    /// Notifications (invalidations with listeners, context changes, page group responses).
    var events: [PlatformEvent] {
        get { rare?.events ?? [] }
        _modify { yield &uniqueRare().events }
    }
    /// How many `events` there are so far, without making an empty array to ask (0 without a box).
    var eventCount: Int { rare?.events.count ?? 0 }
    /// Shadowed address spaces whose tables changed: walked and diffed after the lock is released
    /// (`requestResync` decides which).
    var resyncs: [ShadowResyncRequest] {
        get { rare?.resyncs ?? [] }
        _modify { yield &uniqueRare().resyncs }
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

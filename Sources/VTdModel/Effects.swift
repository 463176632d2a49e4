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
    /// Guest errors and traces; allocates only when the guest misbehaves.
    var logs: [(LogLevel, String)] = []
    /// Shadowed address spaces whose tables changed: walked and diffed after the lock is released.
    var resyncs: [ShadowResyncRequest] = []
    /// The queued-invalidation engine has work (IQT written, QIE enabled with a non-empty queue).
    var runInvalidationQueue = false
    /// PASID-IOTLB descriptors for the host binding observer (only while one is installed).
    var hostInvalidations: [HostPASIDInvalidation] = []
    /// How many of `events` the host binding observer has heard (a wait hands them over early).
    var hostEventsDelivered = 0
    /// Which queued descriptor added which of `events` (only while a host is bound): a setup change
    /// the host cannot carry out is reported as IQE on the descriptor that caused it.
    var hostSetupOrigins: [(events: Range<Int>, descriptor: Int)] = []

    var isEmpty: Bool {
        faultEvent == nil && invalidationEvent == nil && pageRequestEvent == nil
            && events.isEmpty && logs.isEmpty && resyncs.isEmpty && !runInvalidationQueue && hostInvalidations.isEmpty
    }

    mutating func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        logs.append((level, message()))
    }
}

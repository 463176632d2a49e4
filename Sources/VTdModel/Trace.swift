// Structured trace records: the decisions a guest engineer debugs with (swiftvtd_trace in
// the C header). A TraceSink hears them where they are made, possibly under the unit's lock,
// so it must only record. Without one (the usual case) a call site costs one nil check and
// builds nothing.

public enum TraceRecord: Equatable, Sendable {
    public enum DescriptorOutcome: Equatable, Sendable {
        case done
        case statusWrite
        case refused(InvalidationQueueError)
    }

    /// A queued-invalidation descriptor was processed (`wide`: from a 256-bit queue).
    case descriptor(InvalidationDescriptor, wide: Bool, outcome: DescriptorOutcome)
    /// A fault went into fault recording register `index`.
    case fault(FaultRecord, index: Int)
    case contextInvalidation(ContextInvalidationScope)
    case pasidCacheInvalidation(PASIDCacheInvalidationScope)
    case iotlbInvalidation(IOTLBInvalidationScope)
}

public protocol TraceSink: AnyObject, Sendable {
    /// Whether records are wanted at all; read once, when the unit is created.
    var tracing: Bool { get }
    func trace(_ record: TraceRecord)
}

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

/// The sink as the unit's state holds it. QEMU's glue always asks for records (its trace events
/// decide what is printed), so the queue run traces every descriptor: a strong reference
/// loaded from the state would be retained and released around each call. The unit owns the
/// sink (`VTdUnit.traceSink`) for as long as it owns the state; the state holds it unretained
/// and calls it through a guaranteed reference, with no reference counting.
struct TraceHook {
    final class Sink: Sendable {
        let sink: any TraceSink
        init(_ sink: any TraceSink) { self.sink = sink }
    }

    private let sink: Unmanaged<Sink>

    /// `owner` must outlive every copy of the state this hook is stored in.
    init(_ owner: Sink) { sink = .passUnretained(owner) }

    @inline(__always)
    func trace(_ record: TraceRecord) {
        sink._withUnsafeGuaranteedRef { $0.sink.trace(record) }
    }
}

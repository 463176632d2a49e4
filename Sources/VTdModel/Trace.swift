// Structured trace records: the decisions a guest engineer debugs with (swiftvtd_trace in
// the C header). A TraceSink hears them where they are made, possibly under the unit's lock,
// so it must only record. Without one a call site costs one nil check and builds nothing; with
// one, a record whose kind the sink does not want (TraceKinds) costs one load and builds nothing.

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

/// Which kinds of model record a sink wants built. QEMU prints a record only when its trace event
/// is on, and those are usually all off: building and handing over a record per descriptor
/// cost about a sixth of a queue run.
public struct TraceKinds: OptionSet, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    @inlinable public static var descriptor: Self { Self(rawValue: 1 << 0) }
    @inlinable public static var fault: Self { Self(rawValue: 1 << 1) }
    @inlinable public static var contextInvalidation: Self { Self(rawValue: 1 << 2) }
    @inlinable public static var pasidCacheInvalidation: Self { Self(rawValue: 1 << 3) }
    @inlinable public static var iotlbInvalidation: Self { Self(rawValue: 1 << 4) }
    @inlinable public static var all: Self { Self(rawValue: 0x1F) }
}

public protocol TraceSink: AnyObject, Sendable {
    /// Whether records are wanted at all; read once, when the unit is created.
    var tracing: Bool { get }
    func trace(_ record: TraceRecord)
}

/// The sink as the unit's state holds it. A queue run may trace every descriptor: a strong
/// reference loaded from the state would be retained and released around each call. The unit owns the
/// sink (`VTdUnit.traceSink`) for as long as it owns the state; the state holds it unretained
/// and calls it through a guaranteed reference, with no reference counting.
struct TraceHook {
    final class Sink: Sendable {
        let sink: any TraceSink
        init(_ sink: any TraceSink) { self.sink = sink }
    }

    private let sink: Unmanaged<Sink>
    /// What `VTdUnit.setTraceKinds` last said (every kind at first), changed under the unit's
    /// lock. Kept here, in the state, rather than in the sink: a queue run checks it per
    /// descriptor and per invalidation, and the sink's object would be one more cold line.
    var wanted = TraceKinds.all

    /// `owner` must outlive every copy of the state this hook is stored in.
    init(_ owner: Sink) { sink = .passUnretained(owner) }

    /// Builds the record and hands it over only when its kind is wanted.
    @inline(__always)
    func trace(_ kind: TraceKinds, _ record: @autoclosure () -> TraceRecord) {
        guard wanted.rawValue & kind.rawValue != 0 else { return }
        sink._withUnsafeGuaranteedRef { $0.sink.trace(record()) }
    }
}

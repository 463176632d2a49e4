// One emulated VT-d remapping unit: the object behind a swiftvtd_t handle.
//
// Concurrency: all mutable state is in `UnitState` behind one lock (StateLock.swift). Every public
// operation takes the lock, decides, releases it, and only then performs callbacks
// (guest memory, MSIs, notifications) collected in `Effects`. Operations that must read
// guest memory (table walks, the invalidation queue) do so between lock sections.
// Hot paths (translate hit, MMIO) allocate nothing and call no existential on the hit path.

import Synchronization

public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

// Unchecked: `configuration` and `translationEngine` are written only by adoptHostDecision, at
// machine-init-done before the guest runs (no translate in flight); everything else is `let`,
// Sendable, or behind `state`'s lock.
public final class VTdUnit: @unchecked Sendable {
    // Declaration order is memory order: what a translate and an IQT write read comes first,
    // the state's lock word and pointer included, so that the strict-mode unmap cycle finds
    // the unit in a few cache lines.

    /// IOTLB hits without the lock (the translate hot path); the storage is the state's IOTLB's.
    let iotlbReader: IOTLBReader
    let platform: any Platform
    /// Whether `hostObserverSlot` holds one: lets `perform` skip its lock on every other unit.
    let hostObserverInstalled = Atomic<Bool>(false)
    /// Hints for an IQT write to read its descriptors before it takes the lock (checked under
    /// it): the ring (IQA) the last queue run used, 0 before any, and the last IQT written.
    let queueRingHint = Atomic<UInt64>(0)
    let queueTailHint = Atomic<UInt64>(0)
    let state: StateLock<UnitState>
    /// Immutable walk logic and this unit's reserved-bit masks (read without the lock).
    /// Replaced only by `adoptHostDecision`, before the guest runs (no translate is in flight then).
    var translationEngine: TranslationEngine
    /// Fixed at creation, except CAP.CM/ECAP.FLTS by `adoptHostDecision` before the guest runs.
    public internal(set) var configuration: VTdConfiguration
    /// What `UnitState.tracer` calls, owned here for the unit's life (the state holds it unretained).
    let traceSink: TraceHook.Sink?
    /// The host binding observer (HostBinding.swift); nil for units without assigned devices.
    let hostObserverSlot = Mutex<(any HostBindingObserver)?>(nil)

    public init(configuration: VTdConfiguration, platform: any Platform) throws(ConfigurationError) {
        if let problem = configuration.validationError() { throw ConfigurationError(problem) }
        self.configuration = configuration
        self.platform = platform
        var initial = UnitState(configuration: configuration)
        if let sink = platform as? any TraceSink, sink.tracing {
            let owner = TraceHook.Sink(sink)
            traceSink = owner
            initial.tracer = TraceHook(owner)
        } else {
            traceSink = nil
        }
        self.iotlbReader = initial.caches.iotlb.reader
        self.state = StateLock(initial)
        self.translationEngine = TranslationEngine(configuration: configuration)
    }

    /// Which kinds of trace record to build from now on (every kind until this is called); a
    /// unit without a sink has none to build.
    public func setTraceKinds(_ kinds: TraceKinds) {
        guard traceSink != nil else { return }
        state.withLock { $0.tracer?.wanted = kinds }
    }

    /// Size of the register window in bytes.
    public var windowSize: Int { state.withLock { $0.registers.size } }

    /// Power-on reset.
    public func reset() {
        var effects = Effects()
        state.withLock { s in
            s.reset()
            // Shadowed mappings go: translation is off.
            s.requestShadowResync(effects: &effects) { _, _ in true }
        }
        // Translation is off again: every device's address space goes back to identity.
        platform.notify(.contextChanged(sid: nil, pasid: nil))
        hostObserver?.translationSetupChanged(sourceID: nil, pasid: nil, descriptorIndex: nil)
        if !effects.isEmpty { perform(&effects) }
    }

    // MARK: MMIO

    public func mmioRead(offset: Int, width: Int) -> UInt64 {
        // Reads have no side effects: no Effects to build on this path.
        if let value = state.withLock({ $0.mmioRead(offset: offset, width: width) }) { return value }
        platform.log(.guestError, UnitState.rejectedAccess("read", offset: offset, width: width))
        return 0
    }

    public func mmioWrite(offset: Int, value: UInt64, width: Int) {
        if offset == Reg.invalidationQueueTail && (width == 8 || width == 4) {
            writeInvalidationQueueTail(value: value, width: width)
            return
        }
        var effects = Effects()
        // An IQT write claims the queue run and decides its first window in its own lock
        // section (one lock round trip fewer per strict-mode unmap); the run starts after the
        // other effects, as `perform` would start it.
        let queueRun: InvalidationQueueWindow? = state.withLock { s in
            s.mmioWrite(offset: offset, value: value, width: width, effects: &effects)
            guard effects.runInvalidationQueue else { return nil }
            effects.runInvalidationQueue = false
            return s.startInvalidationQueueRun(effects: &effects)
        }
        if !effects.isEmpty { perform(&effects) }
        if let queueRun { runInvalidationQueue(claimedWith: queueRun) }
    }

    // MARK: Effects

    /// Runs what a locked section decided. Never called with the lock held.
    func perform(_ effects: inout Effects) {
        for (level, message) in effects.logs { platform.log(level, message) }
        if let m = effects.faultEvent { platform.sendMSI(address: m.address, data: m.data) }
        if let m = effects.invalidationEvent { platform.sendMSI(address: m.address, data: m.data) }
        if let m = effects.pageRequestEvent { platform.sendMSI(address: m.address, data: m.data) }
        if effects.eventCount > 0 {
            for event in effects.events { platform.notify(event) }
        }
        if hostObserverInstalled.load(ordering: .relaxed), let observer = hostObserver {
            deliverToHost(&effects, observer)
        }
        effects.forEachResync { resyncShadow($0) }
        if effects.runInvalidationQueue {
            effects.runInvalidationQueue = false
            runInvalidationQueue()
        }
    }
}

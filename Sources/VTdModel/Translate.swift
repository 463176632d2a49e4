// VTdUnit.translate: the DMA hot path.
//
// Hit path (IOTLB hit): one lock section, no guest memory, no allocation, no existential
// call, no ARC traffic. Miss path: lock (snapshot the root, cache hints and the
// invalidation generation) -> unlock -> walk guest memory -> lock (fill caches if no
// invalidation ran meanwhile; record the fault) -> unlock -> perform the fault event.
// Guarded by `make bench` (translate hit and 4-level first-level miss).

/// What the first lock section decided.
enum TranslationStart {
    case finished(TranslationOutcome)
    case walk(WalkSnapshot)
}

/// What the unlocked walk starts from.
struct WalkSnapshot {
    var root: RootTablePointer
    var generation: UInt64
    var hints: CacheHints
}

extension VTdUnit {
    /// Translates one DMA request (VT-d chapter 3), recording its fault as chapter 7 says.
    public func translate(_ request: TranslationRequest) -> TranslationOutcome {
        let request = TranslationEngine.normalized(request)
        let snapshot: WalkSnapshot
        switch state.withLock({ $0.startTranslation(request) }) {
        case .finished(let outcome): return outcome
        case .walk(let s): snapshot = s
        }
        let result = translationEngine.walk(request, root: snapshot.root, platform: platform, hints: snapshot.hints)
        var effects = Effects()
        state.withLock { $0.finishTranslation(request, snapshot: snapshot, result: result, effects: &effects) }
        if !effects.isEmpty { perform(&effects) }
        return result.outcome
    }

    /// The same translation read straight from guest memory: no cache is consulted or
    /// filled, no fault recorded, no accessed/dirty-free shortcut. The oracle for
    /// differential tests of the caches and the invalidation paths.
    public func walkUncached(_ request: TranslationRequest) -> TranslationOutcome {
        let request = TranslationEngine.normalized(request)
        let (enabled, root) = state.withLock { ($0.translationEnabled, $0.translationRootTable) }
        guard enabled else { return .translated(TranslationEngine.identity(request.address)) }
        return translationEngine.walk(request, root: root, platform: platform).outcome
    }
}

extension UnitState {
    /// The root table translation walks: the latched one, or RTADDR's reset value (address 0,
    /// legacy) when a guest set TE before any SRTP, which is what hardware would walk.
    var translationRootTable: RootTablePointer { latchedRootTable ?? RootTablePointer(address: 0, mode: .legacy) }

    /// Under the lock: remapping off, an IOTLB hit, or what the walk needs.
    func startTranslation(_ r: TranslationRequest) -> TranslationStart {
        // GSTS read through its view directly: the computed property made the optimizer copy
        // the whole UnitState on every translate (measured with make bench).
        guard GlobalCommand(rawValue: registers.get32(Reg.globalStatus)).contains(.translationEnable) else {
            return .finished(.translated(TranslationEngine.identity(r.address)))
        }
        // Translation requests may need a fault the cached walk did not see (TT 00, DTE clear).
        if !r.isTranslationRequest,
           let hit = iotlb.lookup(sourceID: r.sourceID, pasid: r.pasid ?? noPASID, address: r.address,
                                  privileged: r.privileged),
           hit.permissions.isSuperset(of: r.access),
           // A request without PASID may not reach the interrupt range, even through what a
           // request with PASID RID_PASID cached.
           r.pasid != nil || !TranslationEngine.overlapsInterruptRange(page: hit.outputPage, shift: hit.pageShift) {
            let offsetMask: UInt64 = (1 << UInt64(hit.pageShift)) - 1
            return .finished(.translated(Translation(translated: hit.outputPage | (r.address & offsetMask),
                                                     pageMask: ~offsetMask, permissions: hit.permissions)))
        }
        let root = translationRootTable
        var hints = CacheHints()
        hints.context = contextCache.lookup(sourceID: r.sourceID, root: root)
        if case .scalable(let context)? = hints.context {
            hints.pasidEntry = pasidCache.lookup(sourceID: r.sourceID, pasid: r.pasid ?? context.ridPASID,
                                                 directory: context.pasidDirectoryPointer)
        }
        return .walk(WalkSnapshot(root: root, generation: invalidationGeneration, hints: hints))
    }

    /// Under the lock again: cache what the walk read, unless an invalidation (or a new root
    /// table) came in between, and record its fault.
    mutating func finishTranslation(_ r: TranslationRequest, snapshot: WalkSnapshot, result: WalkResult,
                                    effects: inout Effects) {
        if invalidationGeneration == snapshot.generation && translationRootTable == snapshot.root {
            if let context = result.context {
                contextCache.insert(sourceID: r.sourceID, root: snapshot.root, context: context)
            }
            if let entry = result.pasidEntry { pasidCache.insert(entry) }
            if let entry = result.iotlbEntry { iotlb.insert(entry) }
        }
        if result.recordsFault(for: r), case .fault(let reason) = result.outcome {
            recordFault(FaultRecord(sourceID: r.sourceID, pasid: r.pasid, address: r.address, reason: reason,
                                    isRead: !r.access.contains(.write), privileged: r.privileged,
                                    execute: r.access.contains(.execute)),
                        effects: &effects)
        }
    }
}

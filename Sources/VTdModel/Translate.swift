// VTdUnit.translate: the DMA hot path.
//
// Hit path (IOTLB hit): no lock (IOTLBReader), no guest memory, no allocation, no
// existential call, no ARC traffic; when a writer is busy with the set, one lock section. Miss path: lock (snapshot the root, cache hints and the
// invalidation generation) -> unlock -> walk guest memory -> lock (fill caches if no
// invalidation ran meanwhile; record the fault) -> unlock -> perform the fault event.
// Guarded by `make bench` (translate hit and 4-level first-level miss).

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
        // Counted in the IOTLB's storage (IOTLB.lockFreeHits): no locked add on the hit path.
        if !request.isTranslationRequest,
           let hit = lockFreeHit(sourceID: request.sourceID, pasid: request.pasid,
                                 address: request.address, access: request.access, privileged: request.privileged) {
            return .translated(hit)
        }
        return translateLocked(request)
    }

    /// The hit path alone, for a host to keep beside the unit (the C ABI's handle does).
    public var cachedTranslator: CachedTranslator { CachedTranslator(reader: iotlbReader) }

    /// `translate` for a request `CachedTranslator` just answered nil (or a translation
    /// request): the same answer, without asking the IOTLB a second time.
    public func translateMissed(_ request: TranslationRequest) -> TranslationOutcome {
        translateLocked(TranslationEngine.normalized(request))
    }

    /// Everything but the lock-free hit. Not inlined: its stack frame (the snapshot) and
    /// register saves would otherwise be paid by every hit.
    @inline(never)
    private func translateLocked(_ request: TranslationRequest) -> TranslationOutcome {
        // The snapshot is large: a miss writes it into uninitialised stack space, so a hit
        // under the lock neither initialises nor copies it (an Optional would do both).
        withUnsafeTemporaryAllocation(of: WalkSnapshot.self, capacity: 1) { slot in
            let snapshot = slot.baseAddress!
            if let answer = state.withLock({ $0.untranslated(request, orSnapshotInto: snapshot) }) {
                return .translated(answer)
            }
            return translateMiss(request, from: snapshot.move())
        }
    }

    @inline(never)
    private func translateMiss(_ request: TranslationRequest, from snapshot: WalkSnapshot) -> TranslationOutcome {
        let result = translationEngine.walk(request, root: snapshot.root, platform: platform, hints: snapshot.hints)
        guard result.recordsFault(for: request) else {
            state.withLock { s in
                s.fillCaches(request, snapshot: snapshot, result: result)
                s.noteWalk(request, hints: snapshot.hints, result: result)
            }
            return result.outcome
        }
        var effects = Effects()
        state.withLock { s in
            s.fillCaches(request, snapshot: snapshot, result: result)
            s.noteWalk(request, hints: snapshot.hints, result: result)
            s.recordFault(of: request, result: result, effects: &effects)
        }
        if !effects.isEmpty { perform(&effects) }
        return result.outcome
    }

    @inline(__always)
    func lockFreeHit(sourceID: RequesterID, pasid: PASID?, address: UInt64, access: Permissions,
                     privileged: Bool) -> Translation? {
        cachedTranslator.translation(sourceID: sourceID, pasid: pasid, address: address, access: access,
                                     privileged: privileged)
    }

    /// The same translation read straight from guest memory: no cache is consulted or
    /// filled and no fault recorded (first-level accessed/dirty bits are set as by any walk).
    /// The oracle for differential tests of the caches and the invalidation paths.
    public func walkUncached(_ request: TranslationRequest) -> TranslationOutcome {
        let request = TranslationEngine.normalized(request)
        let (enabled, root) = state.withLock { ($0.translationEnabled, $0.translationRootTable) }
        guard enabled else { return .translated(TranslationEngine.identity(request.address)) }
        return translationEngine.walk(request, root: root, platform: platform).outcome
    }
}

/// The translate hit path without the lock, the only IOTLB lookup translate makes: the
/// translation when the IOTLB answers, else nil (a miss, translation off, or a set being
/// written) and the caller calls `VTdUnit.translateMissed`. The request in scalars (`pasid` nil
/// for none), so that a hit builds no request and no outcome; never for translation
/// requests (ATS), which may need a fault the cached walk did not see. A host keeps it beside
/// the unit (one dependent load fewer per hit than through the unit); valid while the unit lives.
public struct CachedTranslator: Sendable {
    let reader: IOTLBReader

    @inline(__always)
    public func translation(sourceID: RequesterID, pasid: PASID?, address: UInt64, access: Permissions,
                            privileged: Bool) -> Translation? {
        let hasPASID = pasid != nil
        let access = TranslationEngine.normalized(access, hasPASID: hasPASID)
        guard let hit = reader.lookup(sourceID: sourceID, pasid: pasid, address: address,
                                      privileged: hasPASID && privileged),
              hit.permissions.isSuperset(of: access),
              hasPASID || !hit.overlapsInterruptRange
        else { return nil }
        let offsetMask: UInt64 = (1 &<< hit.pageShift) &- 1
        return Translation(translated: hit.outputPage | (address & offsetMask), pageMask: ~offsetMask,
                           permissions: hit.permissions)
    }
}

extension UnitState {
    /// The root table translation walks: the latched one, or RTADDR's reset value (address 0,
    /// legacy) when a guest set TE before any SRTP, which is what hardware would walk.
    var translationRootTable: RootTablePointer { latchedRootTable ?? RootTablePointer(address: 0, mode: .legacy) }

    // `mutating` on the lookups below is for speed: a non-mutating method called on the locked
    // state copies the whole UnitState first (measured with make bench).

    /// Under the lock: the answer when remapping is off; otherwise nil, with what the walk needs
    /// initialised at `snapshot`. The IOTLB is not asked again: the lock-free lookup just
    /// missed (with remapping on, lock-free lookups are on: GSTS.TES), or met a writer, and a
    /// walk gives what an entry inserted meanwhile would; translation requests never use it.
    @inline(__always)
    mutating func untranslated(_ r: TranslationRequest,
                               orSnapshotInto snapshot: UnsafeMutablePointer<WalkSnapshot>) -> Translation? {
        guard GlobalCommand(rawValue: registers.get32(Reg.globalStatus)).contains(.translationEnable) else {
            statistics.untranslated &+= 1
            return TranslationEngine.identity(r.address)
        }
        snapshot.initialize(to: walkSnapshot(r))
        return nil
    }

    /// The root table, cached entries and invalidation generation a walk starts from.
    @inline(never)
    mutating func walkSnapshot(_ r: TranslationRequest) -> WalkSnapshot {
        let root = translationRootTable
        var hints = CacheHints()
        hints.context = caches.context.lookup(sourceID: r.sourceID, root: root)
        if case .scalable(let context)? = hints.context {
            hints.pasidEntry = caches.pasid.lookup(sourceID: r.sourceID, pasid: r.pasid ?? context.ridPASID,
                                                 directory: context.pasidDirectoryPointer)
        }
        return WalkSnapshot(root: root, generation: caches.generation, hints: hints)
    }

    /// Under the lock again: cache what the walk read, unless an invalidation (or a new root
    /// table) came in between.
    mutating func fillCaches(_ r: TranslationRequest, snapshot: WalkSnapshot, result: WalkResult) {
        // Even when not cached: the requester holds the translation from now on.
        if let entry = result.iotlbEntry, entry.nested { nestedDomains.insert(entry.domainID) }
        guard caches.generation == snapshot.generation && translationRootTable == snapshot.root else { return }
        if let context = result.context {
            caches.context.insert(sourceID: r.sourceID, root: snapshot.root, context: context)
        }
        if let entry = result.pasidEntry { caches.pasid.insert(entry) }
        if let entry = result.iotlbEntry { caches.iotlb.insert(entry) }
    }

    /// Records the walk's fault (the caller checked `recordsFault`).
    mutating func recordFault(of r: TranslationRequest, result: WalkResult, effects: inout Effects) {
        guard case .fault(let reason) = result.outcome else { return }
        recordFault(FaultRecord(sourceID: r.sourceID, pasid: r.pasid, address: r.address, reason: reason,
                                isRead: !r.access.contains(.write), privileged: r.privileged,
                                execute: r.access.contains(.execute)),
                    effects: &effects)
    }
}

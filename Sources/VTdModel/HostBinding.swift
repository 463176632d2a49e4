// What a host backend (nested iommufd binding) needs from the model, kept narrow: the model stays
// pure and knows nothing of iommufd. A unit without an observer behaves exactly as before; with one,
// the invalidation queue forwards PASID-based IOTLB descriptors and asks at each wait descriptor (and
// when the queue drains) whether the host managed them.
//
// Off the hot path: translate never looks at any of this. The queue records PASID-IOTLB descriptors
// only while an observer is installed, and every observer call is made without the state lock.

/// One PASID-based IOTLB invalidation descriptor (spec 6.5.2.4), as the host needs it.
public struct HostPASIDInvalidation: Equatable, Sendable {
    public var domainID: DomainID
    public var pasid: PASID
    /// nil: every address of (domain, pasid) (granularity 10b); else 2^addressMask pages from address.
    public var address: UInt64?
    public var addressMask: UInt8
    /// The invalidation hint (IH): only leaf entries changed.
    public var leafOnly: Bool
    /// Ring index of the descriptor in the invalidation queue.
    public var descriptorIndex: Int

    public init(domainID: DomainID, pasid: PASID, address: UInt64?, addressMask: UInt8, leafOnly: Bool,
                descriptorIndex: Int) {
        self.domainID = domainID
        self.pasid = pasid
        self.address = address
        self.addressMask = addressMask
        self.leafOnly = leafOnly
        self.descriptorIndex = descriptorIndex
    }
}

/// What the guest programmed for (sid, pasid), read afresh from its tables.
public struct HostPASIDEntry: Equatable, Sendable {
    public enum Translation: Equatable, Sendable {
        /// PGTT 001b: the first-level table at `pointer`, 4 or 5 levels (FLPM), with SRE/WPE/EAFE.
        case firstLevel(pointer: UInt64, fiveLevel: Bool, supervisorRequests: Bool, writeProtect: Bool,
                        extendedAccessed: Bool)
        case secondLevel
        case nested
        case passThrough
        /// Not present, or a walk to it faults (reason given): DMA through it is blocked.
        case blocked(FaultReason)
    }
    /// The PASID the entry is for: the request's, or the context entry's RID_PASID.
    public var pasid: PASID
    /// The context entry's RID_PASID (0 when the context entry could not be read).
    public var ridPASID: PASID
    public var domainID: DomainID
    public var translation: Translation
}

/// Receives, outside the unit's lock, what an assigned device's host binding depends on.
public protocol HostBindingObserver: AnyObject, Sendable {
    /// The translation setup of (sid, pasid) may have changed (nil: every device / every PASID):
    /// a context- or PASID-cache invalidation, SRTP, TE, reset or a loaded state. `descriptorIndex`
    /// is the ring index of the invalidation descriptor behind it (nil: a register write, reset or
    /// load): a change the host cannot carry out may be reported at the next barrier by that index.
    func translationSetupChanged(sourceID: RequesterID?, pasid: PASID?, descriptorIndex: Int?)
    /// A PASID-based IOTLB invalidation descriptor was processed.
    func pasidIOTLBInvalidated(_ invalidation: HostPASIDInvalidation)
    /// A wait descriptor at ring index `descriptorIndex` (nil: the queue drained) needs everything
    /// before it done. Returns the ring index of a descriptor the host could not carry out, or nil.
    func invalidationBarrier(descriptorIndex: Int?) -> Int?
}

extension VTdUnit {
    /// Installs (or removes) the host observer. Call before the guest runs.
    public func setHostBindingObserver(_ observer: (any HostBindingObserver)?) {
        hostObserverSlot.withLock { $0 = observer }
        hostObserverInstalled.store(observer != nil, ordering: .relaxed)
        state.withLock { $0.hostBound = observer != nil }
    }

    /// Setup changes first, then invalidations: a PASID-IOTLB descriptor after a PASID-cache
    /// invalidation must reach the binding that invalidation made. (One before it, reaching the new
    /// binding too, only over-invalidates.)
    func deliverToHost(_ effects: inout Effects, _ observer: any HostBindingObserver) {
        while effects.hostEventsDelivered < effects.events.count {
            let index = effects.hostEventsDelivered
            if case let .contextChanged(sid, pasid) = effects.events[index] {
                let descriptor = effects.hostSetupOrigins.first { $0.events.contains(index) }?.descriptor
                observer.translationSetupChanged(sourceID: sid, pasid: pasid, descriptorIndex: descriptor)
            }
            effects.hostEventsDelivered += 1
        }
        for invalidation in effects.hostInvalidations { observer.pasidIOTLBInvalidated(invalidation) }
        effects.removeHostInvalidations()
    }

    var hostObserver: (any HostBindingObserver)? {
        hostObserverInstalled.load(ordering: .relaxed) ? hostObserverSlot.withLock { $0 } : nil
    }

    /// GCMD.TE, and whether the latched root table is in scalable mode.
    public var dmaRemapping: (enabled: Bool, scalable: Bool) {
        state.withLock { s in (s.translationEnabled, s.latchedRootTable?.isScalable ?? false) }
    }

    /// Reads the PASID entry that translates (sid, pasid) (nil: requests without PASID, through
    /// RID_PASID). Reads guest memory without the lock; touches no cache.
    public func hostPASIDEntry(sourceID: RequesterID, pasid: PASID?) -> HostPASIDEntry {
        let root = state.withLock { $0.latchedRootTable }
        guard let root else {
            return HostPASIDEntry(pasid: pasid ?? 0, ridPASID: 0, domainID: 0,
                                  translation: .blocked(.smRootTableAddressInvalid))
        }
        return translationEngine.hostPASIDEntry(sourceID: sourceID, pasid: pasid, root: root, platform: platform)
    }

    /// PASIDs other than 0 whose PASID entries are present for `sourceID` (at most `limit`), for a
    /// host binding that must find what the guest bound: after a loaded state, or a setup change
    /// that names no PASID. Reads guest memory without the lock; touches no cache.
    public func presentPASIDs(sourceID: RequesterID, limit: Int) -> [PASID] {
        guard let root = state.withLock({ $0.latchedRootTable }) else { return [] }
        return translationEngine.presentPASIDs(sourceID: sourceID, root: root, platform: platform, limit: limit)
    }

    /// Fixes CAP.CM and ECAP.FLTS/SLTS from the host-mode decision taken at machine-init-done.
    /// Only before the guest has touched the unit: the capability registers are what a guest reads
    /// once at boot.
    public func adoptHostDecision(cachingMode: Bool, firstLevel: Bool) throws(ConfigurationError) {
        var next = configuration
        next.cachingMode = cachingMode
        next.firstLevel = firstLevel
        if next == configuration { return }
        if let problem = next.validationError() { throw ConfigurationError(problem) }
        let started = state.withLock { s in
            s.translationEnabled || s.latchedRootTable != nil || s.globalStatus.rawValue != 0
        }
        if started { throw ConfigurationError("the guest already programmed the unit: capabilities are fixed") }
        state.withLock { $0.reconfigure(next) }
        configuration = next
        translationEngine = TranslationEngine(configuration: next)
    }
}

extension UnitState {
    /// New capabilities for a unit the guest has not touched: registers (the sub-states' too)
    /// are defined afresh, caches, notifier registrations and the IOTLB storage stay.
    mutating func reconfigure(_ next: VTdConfiguration) {
        configuration = next
        registers = RegisterFile(size: Reg.windowSize(faultRecords: next.faultRecords))
        defineRegisters()
        (faults, invalidationQueue, interruptRemapping, pageRequests) = Self.subStates(next)
        caches.invalidated()
    }

    /// The PASID-IOTLB descriptor at ring `index`, for the host (only while one is bound).
    func hostInvalidation(_ d: InvalidationDescriptor, index: Int) -> HostPASIDInvalidation? {
        guard hostBound, d.type == .pasidIOTLB,
              let scope = PASIDIOTLBDescriptor(d: d).scope(maximumAddressMask: UInt8(capability.maximumAddressMaskValue))
        else { return nil }
        switch scope {
        case let .pasid(domain, pasid):
            return HostPASIDInvalidation(domainID: domain, pasid: pasid, address: nil, addressMask: 0, leafOnly: false,
                                         descriptorIndex: index)
        case let .pasidPages(domain, pasid, address, mask, leaf):
            return HostPASIDInvalidation(domainID: domain, pasid: pasid, address: address, addressMask: mask,
                                         leafOnly: leaf, descriptorIndex: index)
        default:
            return nil
        }
    }

    /// The host could not carry out the descriptor at `failed`: the queue stops there with IQE,
    /// as for a descriptor the unit itself refuses (the guest sees IQH on it). Only if the queue
    /// is still where the barrier was asked (a callback may have moved or disabled it).
    mutating func reportHostInvalidationFailure(at failed: Int, expectedHead: Int?, window: InvalidationQueueWindow,
                                                effects: inout Effects) {
        guard invalidationQueueActive, invalidationQueue.isUnchanged(since: window, head: expectedHead) else { return }
        invalidationQueue.moveHead(to: failed, in: window)
        effects.log(.guestError, "invalidation queue: the host IOMMU could not perform descriptor \(failed)")
        reportInvalidationQueueError(.hostInvalidationFailed, effects: &effects)
    }
}

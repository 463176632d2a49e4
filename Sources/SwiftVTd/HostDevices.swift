// Host devices behind one unit: the candidates handed over by the glue, the host-mode decision taken
// at machine-init-done, and the adapter that turns the model's HostBindingObserver calls into
// HostIOMMU backend calls. Control paths only (attach, decision, PASID-entry changes, invalidation
// batches); translate never comes here.

import CSwiftVTd
import HostIOMMU
import Synchronization
import VTdModel

final class HostDevices: HostBindingObserver {
    /// One device as the glue handed it over.
    struct Candidate {
        var device: AssignedDevice?  // nil: legacy VFIO container (shadowed by the host's notifiers)
        var name: String
        var info: HostIOMMUInfo?
    }

    private struct State {
        var candidates: [UInt16: Candidate] = [:]
        var decision: Negotiation.Decision?
        var nested: NestedBackend?
        /// PASIDs (other than RID_PASID) the guest bound per device, re-read on wide setup changes.
        var boundPASIDs: [UInt16: Set<UInt32>] = [:]
        /// TE with a scalable root, as last told to the backend.
        var remapping = false
        /// The first queued descriptor since the last barrier whose setup change the kernel refused
        /// (a binding it would not allocate or attach): the next barrier reports it as not done.
        var failedDescriptor: Int?
        var seam: IoctlSeam = .kernel
    }

    private unowned let unit: VTdUnit
    private let platform: HostPlatform
    private let state = Mutex(State())
    /// The door to the kernel: the real ioctl, or a test double (tests set it before any attach).
    var seam: IoctlSeam {
        get { state.withLock { $0.seam } }
        set { state.withLock { $0.seam = newValue } }
    }

    init(unit: VTdUnit, platform: HostPlatform) {
        self.unit = unit
        self.platform = platform
    }

    var isEmpty: Bool { state.withLock { $0.candidates.isEmpty } }
    var decision: Negotiation.Decision? { state.withLock { $0.decision } }

    // MARK: Attach, detach

    func attach(sid: UInt16, _ candidate: Candidate) throws(HostError) {
        let decision = try state.withLock { s throws(HostError) -> Negotiation.Decision? in
            guard s.candidates[sid] == nil else {
                throw HostError(.invalidArgument, "a host device is already attached at \(RequesterID(rawValue: sid))")
            }
            return s.decision
        }
        var candidate = candidate
        if let device = candidate.device {
            candidate.info = try NestedBackend.probe(device, seam: seam)
        }
        if let decision {
            // Hot-plug after the decision: the guest already saw the capabilities.
            switch decision.mode {
            case .nested:
                guard let device = candidate.device else {
                    throw HostError(.unsupported, "\(candidate.name): a legacy VFIO container cannot nest, and this "
                                        + "unit exposes first-level translation (host mode nested)")
                }
                try state.withLock { s throws(HostError) in
                    _ = try s.nested!.adopt(device)
                }
            case .shadow:
                break
            case .emulatedOnly:
                guard decision.cachingMode else {
                    throw HostError(.unsupported, "\(candidate.name): this unit was started without host devices and "
                                        + "without caching-mode, so guest mappings would never reach the host; "
                                        + "set caching-mode=on to hot-plug host devices")
                }
                if decision.exposeFirstLevel {
                    throw HostError(.unsupported, "\(candidate.name): this unit exposes first-level translation "
                                        + "without a nesting backend; first-level tables cannot be shadowed")
                }
            }
        }
        state.withLock { $0.candidates[sid] = candidate }
        // Shadow events for an iommufd IOAS go in runs and coalesced blocks; a legacy type1
        // container keeps one per leaf (docs/INVALIDATION.md).
        unit.setShadowHost(candidate.device == nil ? .perLeaf : .wholeAreas, sourceID: sid)
        if decision?.mode == .nested { rebind(sourceID: sid, pasid: nil) }
    }

    func detach(sid: UInt16) -> Bool {
        unit.setShadowHost(.perLeaf, sourceID: sid)
        return state.withLock { s in
            guard s.candidates.removeValue(forKey: sid) != nil else { return false }
            s.boundPASIDs[sid] = nil
            if let nested = s.nested {
                // Release stops at the first step the kernel refuses and can be resumed: try it
                // once more, then the HWPT destroys that failed, so that a passing refusal does not
                // leave HWPTs (or the device on one of them) that nobody would free later.
                let requester = RequesterID(rawValue: sid)
                for attempt in 1...2 {
                    do throws(HostError) {
                        try nested.release(requester)
                        break
                    } catch {
                        platform.log(.info, "host device \(requester) detached with an error (attempt \(attempt)): \(error)")
                    }
                }
                nested.retryPendingDestroys()
            }
            return true
        }
    }

    /// How the host arranges a host device's address space (SWIFTVTD_VIEW_*).
    struct View: OptionSet {
        let rawValue: UInt32
        /// DMA sees guest RAM: nesting, where the host IOMMU walks the guest's tables over GPA -> HVA.
        static let guestRAM = View(rawValue: 1 << 0)
        /// The host page table holding guest RAM must be a nest parent.
        static let nestParent = View(rawValue: 1 << 1)
    }

    /// Before the decision every device starts on guest RAM: MAP notifiers, which the IOMMU view
    /// brings, need the caching mode that the decision fixes; the nest parent is built unless
    /// shadowing is forced, so that nesting stays possible. After it, what was decided.
    func view(hostMode: Negotiation.HostModeChoice) -> View {
        switch decision?.mode {
        case nil: return hostMode == .shadow ? [.guestRAM] : [.guestRAM, .nestParent]
        case .nested: return [.guestRAM, .nestParent]
        case .shadow, .emulatedOnly: return []
        }
    }

    // MARK: The decision

    /// Decides the host mode, fixes the unit's capabilities and binds the devices.
    func decide(hostMode: Negotiation.HostModeChoice) -> Result<Negotiation.Decision, HostError> {
        let configuration = unit.configuration
        let candidates = state.withLock { s in s.candidates.sorted { $0.key < $1.key }.map(\.value) }
        if state.withLock({ $0.decision != nil }) {
            return .failure(HostError(.invalidArgument, "the host mode was already decided"))
        }
        let properties = Negotiation.Properties(
            scalableMode: configuration.scalableMode, flts: configuration.firstLevel ? .on : .auto,
            cachingMode: configuration.cachingMode ? .on : .auto, hostMode: hostMode)
        let guest = Self.guestProfile(configuration)
        let result = Negotiation.decide(properties, guest: guest,
                                        devices: candidates.map { Negotiation.Candidate(name: $0.name, info: $0.info) })
        guard case .success(var decision) = result else { return result }
        if decision.mode == .emulatedOnly {
            // Nothing is renegotiated: say what the guest sees, library-only properties included.
            decision.description = "host mode: emulated only (no assigned devices); " + Self.shownFlags(configuration)
        }
        if decision.mode != .emulatedOnly {
            do throws(ConfigurationError) {
                try unit.adoptHostDecision(cachingMode: decision.cachingMode, firstLevel: decision.exposeFirstLevel)
            } catch {
                return .failure(HostError(.configuration, "\(decision.description): \(error.description)"))
            }
        }
        var nested: NestedBackend?
        if decision.mode == .nested {
            let backend = NestedBackend(guest: guest, seam: seam)
            for candidate in candidates {
                do throws(HostError) { try backend.adopt(candidate.device!) } catch {
                    for adopted in backend.assignedDevices { try? backend.release(adopted.requesterID) }
                    return .failure(HostError(error.kind, "\(decision.description), but: \(error.message)"))
                }
            }
            nested = backend
        }
        state.withLock { s in
            s.decision = decision
            s.nested = nested
        }
        if nested != nil { unit.setHostBindingObserver(self) }
        // Every run without assigned devices would print it: a trace line then, a log line otherwise.
        platform.log(decision.mode == .emulatedOnly ? .trace : .info, decision.description)
        return .success(decision)
    }

    /// The translation capabilities the guest sees, for the decision line.
    static func shownFlags(_ c: VTdConfiguration) -> String {
        guard c.scalableMode else { return "legacy CM=\(c.cachingMode ? 1 : 0)" }
        let slts = !c.firstLevel || c.secondLevelWithFirstLevel
        return "FLTS=\(c.firstLevel ? 1 : 0) SLTS=\(slts ? 1 : 0) NEST=\(c.nesting ? 1 : 0) CM=\(c.cachingMode ? 1 : 0)"
    }

    /// What the guest will be shown, as the host's capability audit needs it.
    static func guestProfile(_ c: VTdConfiguration) -> GuestCapabilityProfile {
        GuestCapabilityProfile(
            addressWidth: c.addressWidth, firstStage1GPages: c.firstLevel1GPages, firstStage5Level: c.firstLevel5Level,
            supervisorRequests: false, extendedAccessed: false, pasidWidth: c.pasid ? c.pasidBits : 0)
    }

    /// Lines for the state dump.
    func describe() -> String {
        state.withLock { s in
            var text = "host: " + (s.decision?.description ?? "host mode not decided yet") + "\n"
            for (sid, candidate) in s.candidates.sorted(by: { $0.key < $1.key }) {
                let kind = candidate.device == nil ? "legacy VFIO container" : "iommufd"
                text += "host device \(RequesterID(rawValue: sid)): \(candidate.name) (\(kind))\n"
            }
            if let nested = s.nested { text += nested.describe() }
            if !text.hasSuffix("\n") { text += "\n" }
            return text
        }
    }

    // MARK: HostBindingObserver

    func translationSetupChanged(sourceID: UInt16?, pasid: UInt32?, descriptorIndex: Int?) {
        // Only a kernel refusal counts as "not carried out": an entry the guest was not offered
        // (second level, a first-level feature the host lacks) is detached by the backend, so the
        // host IOMMU blocks DMA through it.
        var refused = false
        let remapping = unit.dmaRemapping
        let enabled = remapping.enabled && remapping.scalable
        let changed = state.withLock { s -> Bool in
            guard s.nested != nil, s.remapping != enabled else { return false }
            s.remapping = enabled
            return true
        }
        if changed {
            state.withLock { s in
                do throws(HostError) { try s.nested?.dmaRemappingChanged(enabled: enabled) } catch {
                    refused = refused || error.errno != nil
                    platform.log(.guestError, "host binding: DMA remapping \(enabled ? "on" : "off"): \(error)")
                }
            }
        }
        let sids = state.withLock { s in s.nested == nil ? [] : s.candidates.keys.sorted() }
        for sid in sids where sourceID == nil || sourceID == sid {
            if rebind(sourceID: sid, pasid: pasid) { refused = true }
        }
        // A register write (SRTP, TE), reset or load has no descriptor to stop at: the log line
        // stays the only report there (docs/HOST.md).
        guard refused, let descriptorIndex else { return }
        state.withLock { s in
            if s.failedDescriptor == nil { s.failedDescriptor = descriptorIndex }
        }
    }

    /// PASIDs looked for in a device's tables when a change names none (state load, global
    /// PASID-cache invalidation): more than a host device binds in practice.
    static let pasidScanLimit = 4096

    /// Re-reads the PASID entries of `sid` the change can concern and tells the backend. Returns
    /// whether the kernel refused one of the bindings.
    @discardableResult
    private func rebind(sourceID sid: UInt16, pasid: UInt32?) -> Bool {
        var refused = false
        var pasids: [UInt32?] = [nil]
        if let pasid {
            pasids.append(pasid)
        } else {
            // What this process saw bound, and what the tables hold now: after a state load the
            // first is empty, and a global invalidation may announce entries never named before.
            var known = state.withLock { $0.boundPASIDs[sid] ?? [] }
            known.formUnion(unit.presentPASIDs(sourceID: sid, limit: Self.pasidScanLimit))
            pasids += known.sorted().map { Optional($0) }
        }
        for p in pasids {
            // Guest memory is read here, with no lock of ours held.
            let entry = unit.hostPASIDEntry(sourceID: sid, pasid: p)
            if p != nil && entry.pasid == entry.ridPASID && pasids.contains(nil) { continue }
            let binding = Self.binding(sid: sid, entry)
            state.withLock { s in
                if p != nil {
                    if case .cleared = binding.translation { s.boundPASIDs[sid]?.remove(entry.pasid) } else {
                        s.boundPASIDs[sid, default: []].insert(entry.pasid)
                    }
                }
                guard let nested = s.nested else { return }
                var failed: HostError?
                do throws(HostError) { try nested.pasidEntryChanged(binding) } catch {
                    failed = error
                    refused = refused || error.errno != nil
                    platform.log(.guestError, "host binding \(binding): \(error)")
                }
                Self.traceBinding(binding, entry, failed, platform)
            }
        }
        return refused
    }

    /// SWIFTVTD_TRACE_HOST_BIND / _UNBIND for what the backend was just told.
    static func traceBinding(_ binding: PASIDBinding, _ entry: HostPASIDEntry, _ failed: HostError?,
                             _ platform: HostPlatform) {
        let kind: swiftvtd_trace_kind
        var table: UInt64 = 0
        switch binding.translation {
        case .cleared: kind = SWIFTVTD_TRACE_HOST_UNBIND
        case .firstLevel(let t): kind = SWIFTVTD_TRACE_HOST_BIND; table = t.rootPointer
        default: kind = SWIFTVTD_TRACE_HOST_BIND
        }
        platform.trace(kind) { t in
            t.sid = binding.requesterID.rawValue
            t.pasid = entry.pasid
            t.did = entry.domainID
            t.addr = table
            t.code = failed.map { UInt32(bitPattern: $0.errno?.rawValue ?? -1) } ?? 0
        }
    }

    static func binding(sid: UInt16, _ entry: HostPASIDEntry) -> PASIDBinding {
        let translation: PASIDBinding.Translation
        switch entry.translation {
        case let .firstLevel(pointer, fiveLevel, sre, wpe, eafe):
            var flags: FirstLevelFlags = []
            if sre { flags.insert(.supervisorRequests) }
            if wpe { flags.insert(.writeProtect) }
            if eafe { flags.insert(.extendedAccessed) }
            translation = .firstLevel(FirstLevelTable(rootPointer: pointer, addressWidth: fiveLevel ? .bits57 : .bits48,
                                                      flags: flags))
        case .passThrough: translation = .passThrough
        case .secondLevel, .nested: translation = .secondLevel
        case .blocked: translation = .cleared
        }
        return PASIDBinding(requesterID: RequesterID(rawValue: sid), pasid: PASID(rawValue: entry.pasid),
                            ridPASID: PASID(rawValue: entry.ridPASID), domainID: DomainID(rawValue: entry.domainID),
                            translation: translation)
    }

    func pasidIOTLBInvalidated(_ invalidation: HostPASIDInvalidation) {
        let scope: PASIDInvalidation.Scope =
            invalidation.address.map { .addressMask(address: $0, am: invalidation.addressMask) } ?? .all
        let request = PASIDInvalidation(domainID: DomainID(rawValue: invalidation.domainID),
                                        pasid: PASID(rawValue: invalidation.pasid), scope: scope,
                                        leafOnly: invalidation.leafOnly, tag: UInt64(invalidation.descriptorIndex))
        let forwarded = state.withLock { s -> Bool in
            guard let nested = s.nested else { return false }
            nested.enqueue(request)
            return true
        }
        guard forwarded else { return }
        platform.trace(SWIFTVTD_TRACE_HOST_INVALIDATE) { t in
            t.did = invalidation.domainID
            t.pasid = invalidation.pasid
            t.addr = invalidation.address ?? 0
            t.data = UInt64(invalidation.addressMask)
            t.scope = (invalidation.address == nil ? SWIFTVTD_SCOPE_PASID : SWIFTVTD_SCOPE_PASID_PAGES).rawValue
        }
    }

    func invalidationBarrier(descriptorIndex: Int?) -> Int? {
        let (outcome, refusedSetup) = state.withLock { s in
            defer { s.failedDescriptor = nil }
            return (s.nested?.endBatch() ?? BatchOutcome(), s.failedDescriptor)
        }
        var failedInvalidation: Int?
        switch outcome.result {
        case .completed:
            break
        case .recovered(let failure):
            platform.log(.info, "host invalidation refused, recovered by a full flush: \(failure)")
        case .failed(let failure):
            platform.log(.guestError, "host invalidation failed: \(failure)")
            platform.trace(SWIFTVTD_TRACE_HOST_INVALIDATE) { t in t.code = UInt32(bitPattern: -1) }
            failedInvalidation = Int(clamping: failure.tag)
        }
        // Setup changes reach the host before the batch's invalidations (deliverToHost), so a
        // refused binding is the first thing of the batch that was not done.
        if let refusedSetup {
            platform.log(.guestError, "host binding refused for descriptor \(refusedSetup): the invalidation "
                             + "queue stops there (IQE); DMA through the entry is blocked until a binding succeeds")
            return refusedSetup
        }
        return failedInvalidation
    }
}

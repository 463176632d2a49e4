// Host devices behind one unit: the candidates the host handed over, the host-mode decision taken
// at machine-init-done (HostDecision.swift), and the adapter that turns the model's
// HostBindingObserver calls into NestedBackend calls (BindingAdapter.swift). Control paths only
// (attach, decision, PASID-entry changes, invalidation batches); translate never comes here.

import HostIOMMU
import Synchronization
import VTdModel
import VTdSpec

public final class HostDevices: HostBindingObserver {
    /// One device as the host handed it over.
    public struct Candidate: Sendable {
        public var device: AssignedDevice?  // nil: legacy VFIO container (shadowed by the host's notifiers)
        public var name: String
        public var info: HostIOMMUInfo?
        /// The highest IOVA the device's IOAS (asked at attach) or legacy container (as the
        /// host said) can map; nil when not known.
        public var lastIOVA: UInt64?

        public init(device: AssignedDevice?, name: String, info: HostIOMMUInfo? = nil, lastIOVA: UInt64? = nil) {
            self.device = device
            self.name = name
            self.info = info
            self.lastIOVA = lastIOVA
        }

        var negotiated: Negotiation.Candidate { Negotiation.Candidate(name: name, info: info, lastIOVA: lastIOVA) }
    }

    /// Not Sendable (NestedBackend and the seam are single-threaded): the Mutex owns it, and
    /// Swift 6's region checking proves that no part of it leaves a `withLock`.
    struct State {
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
        /// The door to the kernel: the real ioctl, or a test double.
        var seam: IoctlSeam = .kernel
    }

    unowned let unit: VTdUnit
    let reporter: HostReporter
    let state: Mutex<State>

    /// `unit` must outlive this object (its owner keeps both); it holds this object strongly
    /// once the decision installs it as the unit's HostBindingObserver. Tests pass a `seam` that
    /// sends every ioctl to a fake kernel.
    public init(unit: VTdUnit, reporter: HostReporter, seam: sending IoctlSeam = .kernel) {
        self.unit = unit
        self.reporter = reporter
        state = Mutex(State(seam: seam))
    }

    public var decision: Negotiation.Decision? { state.withLock { $0.decision } }

    // MARK: Attach, detach

    public func attach(sid: UInt16, _ candidate: Candidate) throws(HostError) {
        let decision = try state.withLock { s throws(HostError) -> Negotiation.Decision? in
            guard s.candidates[sid] == nil else {
                throw HostError(.invalidArgument, "a host device is already attached at \(RequesterID(rawValue: sid))")
            }
            return s.decision
        }
        var candidate = candidate
        if let device = candidate.device {
            (candidate.info, candidate.lastIOVA) = try state.withLock { s throws(HostError) in
                let client = IOMMUFDClient(seam: s.seam)
                return (try NestedBackend.probe(device, seam: s.seam),
                        try client.lastIOVA(iommufd: device.iommufd, ioas: device.ioasID))
            }
        }
        if let decision { try hotPlug(candidate, after: decision) }
        state.withLock { $0.candidates[sid] = candidate }
        // Shadow events for an iommufd IOAS go in runs and coalesced blocks; a legacy type1
        // container keeps one per leaf (docs/INVALIDATION.md).
        unit.setShadowHost(candidate.device == nil ? .perLeaf : .wholeAreas, sourceID: RequesterID(rawValue: sid))
        if decision?.mode == .nested { rebind(sourceID: sid, pasid: nil) }
    }

    /// A device attached after the decision: the guest already saw the capabilities, so it must
    /// fit them.
    private func hotPlug(_ candidate: Candidate, after decision: Negotiation.Decision) throws(HostError) {
        switch decision.mode {
        case .nested:
            guard let device = candidate.device else {
                throw HostError(.unsupported, "\(candidate.name): a legacy VFIO container cannot nest, and this "
                                    + "unit exposes first-level translation (host mode nested)")
            }
            try state.withLock { s throws(HostError) in
                _ = try s.nested?.adopt(device)
            }
        case .shadow:
            try Negotiation.checkShadowWidth([candidate.negotiated], guest: Self.guestProfile(unit.configuration))
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
            try Negotiation.checkShadowWidth([candidate.negotiated], guest: Self.guestProfile(unit.configuration))
        }
    }

    public func detach(sid: UInt16) -> Bool {
        unit.setShadowHost(.perLeaf, sourceID: RequesterID(rawValue: sid))
        let (found, problems) = state.withLock { s -> (Bool, [String]) in
            guard s.candidates.removeValue(forKey: sid) != nil else { return (false, []) }
            s.boundPASIDs[sid] = nil
            guard let nested = s.nested else { return (true, []) }
            return (true, Self.release(RequesterID(rawValue: sid), from: nested))
        }
        for problem in problems { reporter.log(.info, problem) }
        return found
    }

    /// Gives a device back to VFIO. Release stops at the first step the kernel refuses and can be
    /// resumed: try it once more, then the HWPT destroys that failed, so that a passing refusal
    /// does not leave HWPTs (or the device on one of them) that nobody would free later. Returns a
    /// line per refused attempt.
    private static func release(_ requester: RequesterID, from nested: NestedBackend) -> [String] {
        var problems: [String] = []
        for attempt in 1...2 {
            do throws(HostError) {
                try nested.release(requester)
                break
            } catch {
                problems.append("host device \(requester) detached with an error (attempt \(attempt)): \(error)")
            }
        }
        nested.retryPendingDestroys()
        return problems
    }

    /// How the host arranges a host device's address space.
    public struct View: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// DMA sees guest RAM: nesting, where the host IOMMU walks the guest's tables over GPA -> HVA.
        public static let guestRAM = View(rawValue: 1 << 0)
        /// The host page table holding guest RAM must be a nest parent.
        public static let nestParent = View(rawValue: 1 << 1)
    }

    /// Before the decision every device starts on guest RAM: MAP notifiers, which the IOMMU view
    /// brings, need the caching mode that the decision fixes; the nest parent is built unless
    /// shadowing is forced, so that nesting stays possible. After it, what was decided.
    public func view(hostMode: Negotiation.HostModeChoice) -> View {
        switch decision?.mode {
        case nil: return hostMode == .shadow ? [.guestRAM] : [.guestRAM, .nestParent]
        case .nested: return [.guestRAM, .nestParent]
        case .shadow, .emulatedOnly: return []
        }
    }

    /// Lines for the state dump: empty for a unit that never had host devices nor a decision.
    public func describe() -> String {
        state.withLock { s in
            guard !s.candidates.isEmpty || s.decision != nil else { return "" }
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
}

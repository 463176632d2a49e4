import LinuxUAPI

/// Nested translation through iommufd: the guest's first-level tables are bound straight into the
/// host IOMMU (stage 1 over a stage-2 nest parent holding GPA → HPA), so guest map/unmap never traps;
/// only PASID-entry changes and PASID-based IOTLB invalidations reach this class.
///
/// Per assigned device it keeps a NEST_PARENT HWPT on VFIO's IOAS and, per attach point (RID or
/// PASID), what the guest last programmed and what is attached on the host. Every state change is
/// ordered so a failure leaves no HWPT behind: allocate, attach (an atomic replace), then destroy
/// what was replaced. A change the kernel refuses detaches the point (DMA blocked) rather than
/// keep an attachment that gives more access than the guest programmed.
///
/// Not thread-safe: the model calls it under its own lock (MMIO and the invalidation queue run under
/// QEMU's big lock).
public final class NestedBackend {
    public let guest: GuestCapabilityProfile
    let client: IOMMUFDClient

    /// GCMD.TE with a scalable root table. While false, RIDs are attached to the parent (GPA
    /// pass-through) and PASIDs are detached; guest bindings are remembered and applied on enable.
    public private(set) var dmaRemappingEnabled = false

    enum Attached: Equatable {
        case parent
        case nested(ObjectID, FirstLevelTable)
    }

    enum Desired: Equatable {
        case parent
        case nested(FirstLevelTable)
        case detached
    }

    final class HostDevice {
        let device: AssignedDevice
        let info: HostIOMMUInfo
        let parent: ObjectID
        let ownsParent: Bool
        /// What the guest last programmed, per attach point (cleared entries are absent).
        var wanted: [AttachPoint: PASIDBinding] = [:]
        /// What the host has attached, per attach point (detached points are absent).
        var attached: [AttachPoint: Attached] = [.requestsWithoutPASID: .parent]

        init(device: AssignedDevice, info: HostIOMMUInfo, parent: ObjectID, ownsParent: Bool) {
            self.device = device
            self.info = info
            self.parent = parent
            self.ownsParent = ownsParent
        }
    }

    var devices: [RequesterID: HostDevice] = [:]
    var slots: ContiguousArray<InvalidationSlot> = []
    /// HWPTs whose IOMMU_DESTROY failed; retried before the next change and on release.
    public private(set) var orphans: [(iommufd: Int32, hwpt: ObjectID)] = []
    private var fallback = InvalidationSlot.everything()

    public init(guest: GuestCapabilityProfile, seam: IoctlSeam = .kernel) {
        self.guest = guest
        client = IOMMUFDClient(seam: seam)
    }

    /// Devices this backend manages.
    public var assignedDevices: [AssignedDevice] { devices.values.map(\.device).sorted { $0.requesterID < $1.requesterID } }

    /// What the host IOMMU behind `device` reports (IOMMU_GET_HW_INFO), for negotiation.
    public static func probe(_ device: AssignedDevice, seam: IoctlSeam = .kernel) throws(HostError) -> HostIOMMUInfo {
        try IOMMUFDClient(seam: seam).hardwareInfo(iommufd: device.iommufd, device: device.deviceID)
    }

    // ---- device lifetime --------------------------------------------------------------------------

    /// Takes over an assigned device: checks its IOMMU against the guest profile, gives it a nest
    /// parent on its IOAS (QEMU 10.0's own HWPT is not one) and attaches the RID there.
    @discardableResult
    public func adopt(_ device: AssignedDevice) throws(HostError) -> HostIOMMUInfo {
        guard devices[device.requesterID] == nil else {
            throw HostError(.invalidArgument, "\(device) is already managed by the nested backend")
        }
        let info = try client.hardwareInfo(iommufd: device.iommufd, device: device.deviceID)
        let problems = CapabilityAudit.nestingProblems(info, guest: guest)
        if !problems.isEmpty {
            throw HostError(.capability, "\(device) cannot nest: " + problems.joined(separator: "; "))
        }
        let host: HostDevice
        if device.hwptIsNestParent {
            host = HostDevice(device: device, info: info, parent: device.hwptID, ownsParent: false)
        } else {
            let parent: ObjectID
            do {
                parent = try client.allocateNestParent(
                    iommufd: device.iommufd, device: device.deviceID, ioas: device.ioasID)
            } catch {
                var error = error
                if error.errno == .einval && info.readOnlyNestParentErratum {
                    error.message += " (host erratum 772415: the IOAS holds read-only mappings, which a nest "
                        + "parent cannot; VFIO must skip read-only sections)"
                }
                throw error
            }
            do {
                try client.attach(deviceFD: device.deviceFD, .requestsWithoutPASID, to: parent)
            } catch {
                destroyOrKeep(iommufd: device.iommufd, parent)
                throw error
            }
            host = HostDevice(device: device, info: info, parent: parent, ownsParent: true)
        }
        devices[device.requesterID] = host
        if dmaRemappingEnabled {
            // Hot-added while translation is on: nothing is programmed for it yet, so block.
            try apply(host, .requestsWithoutPASID)
        }
        return info
    }

    /// Gives a device back to VFIO as it was: RID on VFIO's HWPT, PASIDs detached, our HWPTs gone.
    /// Stops at the first refusal with the device still managed, so calling it again finishes the job.
    public func release(_ requesterID: RequesterID) throws(HostError) {
        retryOrphans()
        guard let host = devices[requesterID] else { return }
        let device = host.device
        do throws(HostError) {
            for point in host.attached.keys.sorted(by: { $0.order < $1.order }) where point != .requestsWithoutPASID {
                try client.detach(deviceFD: device.deviceFD, point)
                if let attached = host.attached.removeValue(forKey: point) { retire(attached) }
            }
            if host.ownsParent {
                do {
                    try client.attach(deviceFD: device.deviceFD, .requestsWithoutPASID, to: device.hwptID)
                } catch where error.errno == .enoent {
                    // VFIO's HWPT was an automatic domain that went away with its last device.
                    _ = try client.attach(deviceFD: device.deviceFD, .requestsWithoutPASID, to: device.ioasID)
                }
            } else {
                try client.attach(deviceFD: device.deviceFD, .requestsWithoutPASID, to: host.parent)
            }
        } catch {
            throw HostError(error.kind, "releasing \(device): \(error.message)")
        }
        // VFIO owns the device again: drop what was ours, nested HWPTs before their parent.
        devices[requesterID] = nil
        if let attached = host.attached.removeValue(forKey: .requestsWithoutPASID) { retire(attached) }
        if host.ownsParent { destroyOrKeep(iommufd: device.iommufd, host.parent) }
    }

    /// Retries IOMMU_DESTROY of HWPTs a failed destroy left behind (see `orphans`).
    public func retryPendingDestroys() { retryOrphans() }

    // ---- guest events -----------------------------------------------------------------------------

    public enum BindOutcome: Equatable, Sendable {
        /// Not an assigned device: nothing to do on the host.
        case notAssigned
        /// The host already had exactly this.
        case unchanged
        /// DMA remapping is off; the binding is remembered and applied when it is turned on.
        case deferred
        case attachedNested(ObjectID)
        case attachedParent
        case detached
    }

    /// The guest (re)programmed or cleared a PASID entry of a device.
    @discardableResult
    public func bind(_ binding: PASIDBinding) throws(HostError) -> BindOutcome {
        guard let host = devices[binding.requesterID] else { return .notAssigned }
        retryOrphans()
        let point = binding.attachPoint
        if case .pasid(let pasid) = point {
            if pasid.rawValue >= PASID.limit {
                throw HostError(.invalidArgument, "\(binding): PASID out of range")
            }
            if !host.info.ecap.pasid {
                throw HostError(.capability, "\(binding): host IOMMU of \(host.device) has no PASID support")
            }
        }
        if case .cleared = binding.translation {
            host.wanted[point] = nil
        } else {
            host.wanted[point] = binding
        }
        if !dmaRemappingEnabled { return .deferred }
        let before = host.attached[point]
        try apply(host, point)
        // Entries the host cannot carry are blocked by apply(); say why.
        switch binding.translation {
        case .secondLevel:
            throw HostError(
                .unsupported,
                "\(binding): second-level PASID entries cannot be nested (only first-level is offered); "
                    + "DMA through it is blocked")
        case .firstLevel(let table):
            if let problem = CapabilityAudit.bindingProblem(table, info: host.info) {
                throw HostError(.capability, "\(binding): \(problem); DMA through it is blocked")
            }
        default:
            break
        }
        let after = host.attached[point]
        if after == before { return .unchanged }
        switch after {
        case .nested(let id, _)?: return .attachedNested(id)
        case .parent?: return .attachedParent
        case nil: return .detached
        }
    }

    /// The guest turned DMA remapping on or off (GCMD.TE), or switched root-table mode. Pass `true`
    /// only for translation through a scalable-mode root table: a legacy-mode guest uses second-level
    /// tables, which cannot be nested, and gets GPA pass-through like QEMU's accel path.
    public func dmaRemappingChanged(enabled: Bool) throws(HostError) {
        dmaRemappingEnabled = enabled
        retryOrphans()
        var firstError: HostError?
        for requesterID in devices.keys.sorted() {
            let host = devices[requesterID]!
            let points = Set(host.wanted.keys).union(host.attached.keys).union([.requestsWithoutPASID])
            for point in points.sorted(by: { $0.order < $1.order }) {
                do { try apply(host, point) } catch { firstError = firstError ?? error }
            }
        }
        if let firstError { throw firstError }
    }

    /// System reset: forget every guest binding and go back to GPA pass-through.
    public func reset() throws(HostError) {
        for host in devices.values { host.wanted.removeAll() }
        try dmaRemappingChanged(enabled: false)
    }

    /// Queues one guest PASID-based IOTLB invalidation for every nested HWPT bound with its DID and
    /// PASID. Sent at `endBatch()`.
    public func enqueue(_ invalidation: PASIDInvalidation) {
        for index in slots.indices
        where slots[index].domainID == invalidation.domainID && slots[index].pasid == invalidation.pasid {
            slots[index].add(invalidation)
        }
    }

    /// The model reached a wait descriptor (or drained its queue): send each HWPT's pending entries in
    /// one IOMMU_HWPT_INVALIDATE. A refused entry triggers a full flush of that HWPT, so no stale
    /// translation survives; the outcome says which descriptor failed and whether the flush worked.
    public func endBatch() -> BatchOutcome {
        // Hot path (with enqueue): no allocation, see InvalidationBatch.swift.
        var outcome = BatchOutcome()
        for index in slots.indices where !slots[index].entries.isEmpty {
            let count = slots[index].entries.count
            outcome.entries += count
            outcome.hostCalls += 1
            // Copy out scalars only: a copy of the slot would share its entry buffer and make the
            // mutable access below copy it (an allocation per flush).
            let iommufd = slots[index].iommufd
            let hwpt = slots[index].hwpt
            let (processed, errno) = slots[index].entries.withUnsafeMutableBufferPointer { entries in
                client.invalidate(iommufd: iommufd, hwpt: hwpt, entries: entries)
            }
            if let errno {
                let failure = InvalidationFailure(
                    tag: slots[index].tags[min(processed, count - 1)], errno: errno,
                    requesterID: slots[index].requesterID, hwptID: hwpt, processed: processed)
                outcome.hostCalls += 1
                fallback = InvalidationSlot.everything()
                let flushed = withUnsafeMutablePointer(to: &fallback) { entry in
                    client.invalidate(iommufd: iommufd, hwpt: hwpt, entries: UnsafeMutableBufferPointer(start: entry, count: 1))
                }
                outcome.result = outcome.result.merged(with: flushed.errno == nil ? .recovered(failure) : .failed(failure))
            }
            slots[index].clear()
        }
        return outcome
    }

    // ---- transitions ------------------------------------------------------------------------------

    /// What a point should be attached to, given the guest's binding and the TE state.
    func desired(_ host: HostDevice, _ point: AttachPoint) -> Desired {
        guard dmaRemappingEnabled else { return point == .requestsWithoutPASID ? .parent : .detached }
        switch host.wanted[point]?.translation {
        case .firstLevel(let table)?:
            return CapabilityAudit.bindingProblem(table, info: host.info) == nil ? .nested(table) : .detached
        case .passThrough?:
            return .parent
        case .secondLevel?, .cleared?, nil:
            return .detached
        }
    }

    /// Moves one attach point to its desired state: allocate, attach (atomic replace), then destroy
    /// what was replaced. A change the kernel refuses leaves nothing new behind and the point
    /// blocked (see `block`): never the previous attachment, which may be the nest parent (GPA
    /// pass-through the guest did not ask for) or a first-level table the guest has replaced.
    func apply(_ host: HostDevice, _ point: AttachPoint) throws(HostError) {
        let wanted = desired(host, point)
        do {
            try move(host, point, to: wanted)
        } catch {
            // Moving to `.detached` failed at the detach itself: there is nothing else to try.
            if wanted == .detached { throw error }
            throw block(host, point, after: error)
        }
    }

    /// After `refusal`, detaches `point` so the host IOMMU blocks DMA through it, and says so in
    /// the error returned. If the detach is refused too the point keeps what it had, and the
    /// error says that instead; the next change for the point tries again.
    func block(_ host: HostDevice, _ point: AttachPoint, after refusal: HostError) -> HostError {
        var error = refusal
        guard let current = host.attached[point] else {
            error.message += "; DMA through \(point) stays blocked"
            return error
        }
        do {
            try client.detach(deviceFD: host.device.deviceFD, point)
        } catch {
            var both = refusal
            both.message += "; detaching \(point) failed too (\(error.message)), so it keeps its previous attachment"
            return both
        }
        host.attached[point] = nil
        retire(current)
        error.message += "; DMA through \(point) is blocked"
        return error
    }

    /// One transition of `apply`. On failure the previous attachment stays and nothing new is left
    /// behind; `apply` then blocks the point.
    private func move(_ host: HostDevice, _ point: AttachPoint, to wanted: Desired) throws(HostError) {
        let device = host.device
        let current = host.attached[point]
        switch wanted {
        case .parent:
            if current == .parent { return }
            try client.attach(deviceFD: device.deviceFD, point, to: host.parent)
            host.attached[point] = .parent
        case .detached:
            guard current != nil else { return }
            try client.detach(deviceFD: device.deviceFD, point)
            host.attached[point] = nil
        case .nested(let table):
            if case .nested(let hwpt, let bound)? = current, bound == table {
                // Same table; the guest may still have moved it to another DID (or PASID value).
                if let binding = host.wanted[point], let index = slots.firstIndex(where: { $0.hwpt == hwpt }) {
                    slots[index].domainID = binding.domainID
                    slots[index].pasid = binding.pasid
                }
                return
            }
            let hwpt = try client.allocateNested(
                iommufd: device.iommufd, device: device.deviceID, parent: host.parent, table: table)
            do {
                try client.attach(deviceFD: device.deviceFD, point, to: hwpt)
            } catch {
                destroyOrKeep(iommufd: device.iommufd, hwpt)
                throw error
            }
            host.attached[point] = .nested(hwpt, table)
            let binding = host.wanted[point]!
            slots.append(
                InvalidationSlot(
                    hwpt: hwpt, iommufd: device.iommufd, requesterID: device.requesterID,
                    domainID: binding.domainID, pasid: binding.pasid))
        }
        if let current { retire(current) }
    }

    /// A nested HWPT nothing is attached to any more: stop queuing for it and destroy it.
    func retire(_ attached: Attached) {
        guard case .nested(let hwpt, _) = attached else { return }
        guard let index = slots.firstIndex(where: { $0.hwpt == hwpt }) else { return }
        let iommufd = slots[index].iommufd
        slots.remove(at: index)
        destroyOrKeep(iommufd: iommufd, hwpt)
    }

    func destroyOrKeep(iommufd: Int32, _ hwpt: ObjectID) {
        do { try client.destroy(iommufd: iommufd, hwpt) } catch { orphans.append((iommufd, hwpt)) }
    }

    func retryOrphans() {
        guard !orphans.isEmpty else { return }
        let pending = orphans
        orphans.removeAll()
        for (iommufd, hwpt) in pending { destroyOrKeep(iommufd: iommufd, hwpt) }
    }

    // ---- inspection -------------------------------------------------------------------------------

    /// Every HWPT this backend owns right now (nest parents it allocated, nested HWPTs, orphans).
    public func ownedHWPTs(iommufd: Int32) -> Set<ObjectID> {
        var owned = Set(orphans.filter { $0.iommufd == iommufd }.map(\.hwpt))
        for host in devices.values where host.device.iommufd == iommufd {
            if host.ownsParent { owned.insert(host.parent) }
            for case .nested(let id, _) in host.attached.values { owned.insert(id) }
        }
        return owned
    }

    /// The HWPT the host has at `point` of a device (nil: detached or unknown device).
    public func attachedHWPT(_ requesterID: RequesterID, _ point: AttachPoint = .requestsWithoutPASID) -> ObjectID? {
        guard let host = devices[requesterID] else { return nil }
        switch host.attached[point] {
        case .parent?: return host.parent
        case .nested(let id, _)?: return id
        case nil: return nil
        }
    }

    /// Where a nested HWPT's pending entries live (tests check it never moves: no reallocation).
    func pendingStorage(_ hwpt: ObjectID) -> UnsafeRawPointer? {
        guard let index = slots.firstIndex(where: { $0.hwpt == hwpt }) else { return nil }
        return slots[index].entries.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
    }

    /// The nest parent of a device.
    public func parentHWPT(_ requesterID: RequesterID) -> ObjectID? { devices[requesterID]?.parent }

    /// Lines for the state dump.
    public func describe() -> String {
        var lines = ["nested backend: DMA remapping \(dmaRemappingEnabled ? "on" : "off"), \(devices.count) device(s)"]
        for requesterID in devices.keys.sorted() {
            let host = devices[requesterID]!
            lines.append(
                "  \(host.device): nest parent HWPT \(host.parent)\(host.ownsParent ? "" : " (VFIO's)") on IOAS "
                    + "\(host.device.ioasID)")
            let points = Set(host.wanted.keys).union(host.attached.keys)
            for point in points.sorted(by: { $0.order < $1.order }) {
                let state: String =
                    switch host.attached[point] {
                    case .parent?: "parent (GPA pass-through)"
                    case .nested(let id, let table)?: "nested HWPT \(id), \(table)"
                    case nil: "detached (blocked)"
                    }
                let guestSide = host.wanted[point].map { " [guest \($0.domainID)]" } ?? ""
                lines.append("    \(point) → \(state)\(guestSide)")
            }
        }
        if !orphans.isEmpty { lines.append("  HWPTs awaiting destroy: \(orphans.map { "\($0.hwpt)" }.joined(separator: ", "))") }
        return lines.joined(separator: "\n")
    }
}

extension AttachPoint {
    /// RID first, then PASIDs in order: the order state changes and dumps walk attach points.
    var order: UInt64 {
        switch self {
        case .requestsWithoutPASID: 0
        case .pasid(let pasid): UInt64(pasid.rawValue) + 1
        }
    }
}

// IOMMU notifiers (QEMU's IOMMUNotifier flags): which (source-id, PASID) pairs the host wants
// map/unmap events for, with QEMU's rules for what a configuration can deliver, and replay:
// a MAP event for every translation a device has now.

/// Raw values match SWIFTVTD_NOTIFY_*.
public struct NotificationKinds: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Cached translations went away (vhost, VFIO).
    public static let unmap = NotificationKinds(rawValue: 1 << 0)
    /// Translations appeared: shadowing, which only caching mode makes possible.
    public static let map = NotificationKinds(rawValue: 1 << 1)
    /// Device-TLB invalidations (vhost with ATS).
    public static let deviceTLBUnmap = NotificationKinds(rawValue: 1 << 2)
    public static let all: NotificationKinds = [.unmap, .map, .deviceTLBUnmap]
}

/// The registered pairs. Consulted when invalidations decide which events to send; never on
/// the translate path.
struct NotifierRegistry {
    typealias Registration = (sourceID: RequesterID, pasid: PASID?, kinds: NotificationKinds)

    /// Every registration, ordered by source-id then PASID (requests without PASID first). Kept
    /// sorted as registrations change, which is rare, so that the invalidations that read it on
    /// every descriptor neither sort nor allocate.
    private(set) var registrations: [Registration] = [] {
        didSet { isEmpty = registrations.isEmpty }
    }
    /// No registration: kept beside the array because every invalidation asks, and the array's
    /// own count is one more cold cache line for the strict-mode unmap.
    private(set) var isEmpty = true

    /// One word per (sid, pasid), shared with the shadow records.
    static func key(_ sourceID: RequesterID, _ pasid: PASID?) -> UInt64 {
        UInt64(sourceID.rawValue) << 32 | UInt64(pasid.storageWord)
    }

    /// The registrations' order: noPASID is all ones, so adding one wraps it to the front of its
    /// source-id.
    private static func order(_ sourceID: RequesterID, _ pasid: PASID?) -> UInt64 {
        UInt64(sourceID.rawValue) << 32 | UInt64(pasid.storageWord &+ 1)
    }

    subscript(sourceID: RequesterID, pasid: PASID?) -> NotificationKinds {
        get {
            let key = Self.key(sourceID, pasid)
            return registrations.first { Self.key($0.sourceID, $0.pasid) == key }?.kinds ?? []
        }
        set {
            let key = Self.key(sourceID, pasid)
            if let index = registrations.firstIndex(where: { Self.key($0.sourceID, $0.pasid) == key }) {
                if newValue.isEmpty { registrations.remove(at: index) } else { registrations[index].kinds = newValue }
                return
            }
            guard !newValue.isEmpty else { return }
            let order = Self.order(sourceID, pasid)
            let index = registrations.firstIndex { Self.order($0.sourceID, $0.pasid) > order } ?? registrations.count
            registrations.insert((sourceID, pasid, newValue), at: index)
        }
    }
}

public struct NotifierError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

extension VTdUnit {
    /// Sets the notifications the host wants for (sid, pasid); empty withdraws them. Refuses
    /// what this configuration cannot deliver, as QEMU's notify_flag_changed does: nothing
    /// with snoop-control, MAP without caching mode, device-TLB unmaps without device-iotlb.
    public func setNotifications(_ kinds: NotificationKinds, sourceID: RequesterID, pasid: PASID?) throws(NotifierError) {
        let c = configuration
        if !kinds.isEmpty && c.snoopControl {
            throw NotifierError(description: "snoop-control is on: IOMMU notifiers (VFIO, vhost) are not supported")
        }
        if kinds.contains(.map) && !c.cachingMode {
            throw NotifierError(description: "MAP notifications (VFIO shadowing) need caching-mode=on")
        }
        if kinds.contains(.deviceTLBUnmap) && !c.deviceIOTLB {
            throw NotifierError(description: "device-TLB notifications need device-iotlb=on")
        }
        state.withLock { s in
            s.notifiers[sourceID, pasid] = kinds
            // The host forgets a notifier's mappings with it; a new one starts from a replay.
            if !kinds.contains(.map) { s.shadows.remove(sourceID: sourceID, pasid: pasid) }
        }
    }

    public func notifications(sourceID: RequesterID, pasid: PASID?) -> NotificationKinds {
        state.withLock { $0.notifiers[sourceID, pasid] }
    }

    /// Every (sid, pasid) with notifications, for the invalidation side and the host backends.
    public var notifierRegistrations: [(sourceID: RequesterID, pasid: PASID?, kinds: NotificationKinds)] {
        state.withLock { $0.notifiers.registrations }
    }

    /// Table pages one replay may read by default: 32 MiB of tables (up to 4 M leaves), more
    /// than a guest that maps its RAM needs, and a bound on tables that point at themselves.
    public static let replayBudget = 8192

    /// Calls `body` for every translation (sid, pasid) has now, in IOVA order; false when the
    /// budget of table pages ran out first. Nothing when remapping is off, the device passes
    /// through or its setup faults (there is nothing to shadow); nested tables are bound by the
    /// host, not replayed. Requests without PASID skip pages in the interrupt range (they fault).
    @discardableResult
    public func forEachMapping(sourceID: RequesterID, pasid: PASID?, budget: Int = VTdUnit.replayBudget,
                               _ body: (Mapping) -> Void) -> Bool {
        let (enabled, root) = state.withLock { ($0.translationEnabled, $0.translationRootTable) }
        guard enabled,
              case .success(let tables) = translationEngine.deviceTables(sourceID: sourceID, pasid: pasid, root: root,
                                                                         platform: platform) else { return true }
        var enumerator = MappingEnumerator(platform: platform, budget: budget)
        let visit: (Mapping) -> Void = { m in
            if pasid == nil && TranslationEngine.overlapsInterruptRange(page: m.output, shift: m.pageShift) { return }
            body(m)
        }
        switch tables {
        case .passThrough, .nested:
            return true
        case let .secondLevel(tableRoot, levels, _):
            return enumerator.secondLevel(root: tableRoot, levels: levels,
                                          reserved: translationEngine.secondLevelReserved, visit: visit)
        case let .firstLevel(tableRoot, levels, _):
            return enumerator.firstLevel(root: tableRoot, levels: levels,
                                         reserved: translationEngine.firstLevelReserved, visit: visit)
        }
    }

    /// QEMU's replay: a MAP event for every translation (sid, pasid) has now, sent as found (no
    /// list is built, whatever the guest's tables hold). Returns how many. With a MAP notifier
    /// the shadow's record starts afresh and only second-level leaves are mapped (Shadow/).
    @discardableResult
    public func replay(sourceID: RequesterID, pasid: PASID?, budget: Int = VTdUnit.replayBudget) -> Int {
        // A shadowing host: start its record afresh and map every second-level leaf.
        if notifications(sourceID: sourceID, pasid: pasid).contains(.map) {
            return replayShadow(sourceID: sourceID, pasid: pasid, budget: budget)
        }
        var count = 0
        let complete = forEachMapping(sourceID: sourceID, pasid: pasid, budget: budget) { m in
            count += 1
            platform.notify(.map(sid: sourceID, pasid: pasid, address: m.iova, size: m.size, translated: m.output,
                                 permissions: m.permissions))
        }
        if !complete {
            platform.log(.guestError, "replay of 0x\(String(sourceID.rawValue, radix: 16)) stopped after \(budget) table pages")
        }
        return count
    }
}

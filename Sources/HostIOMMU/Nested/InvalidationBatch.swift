import LinuxUAPI

// Hot path: every guest unmap on a first-level domain arrives here as a PASID-based IOTLB descriptor.
// Queuing must not allocate: each slot keeps its entry storage (capacity reserved at bind time) and
// empties it with removeAll(keepingCapacity:). Guarded by host-bench's nested figures.

/// The pending invalidations of one nested HWPT, sent as ONE IOMMU_HWPT_INVALIDATE at the batch end.
struct InvalidationSlot {
    let hwpt: ObjectID
    let iommufd: Int32
    let requesterID: RequesterID
    /// The PASID entry's DID and PASID: what a guest descriptor names.
    var domainID: DomainID
    var pasid: PASID
    var entries: ContiguousArray<uapi_iommu_hwpt_vtd_s1_invalidate>
    /// The model's tag of the descriptor behind each entry, to name the one the kernel refused.
    var tags: ContiguousArray<UInt64>
    /// An all-addresses entry is queued: anything more for this batch is already covered.
    var coversAll = false

    static let reservedEntries = 64

    init(hwpt: ObjectID, iommufd: Int32, requesterID: RequesterID, domainID: DomainID, pasid: PASID) {
        self.hwpt = hwpt
        self.iommufd = iommufd
        self.requesterID = requesterID
        self.domainID = domainID
        self.pasid = pasid
        entries = []
        entries.reserveCapacity(Self.reservedEntries)
        tags = []
        tags.reserveCapacity(Self.reservedEntries)
    }

    static func everything() -> uapi_iommu_hwpt_vtd_s1_invalidate {
        var entry = uapi_iommu_hwpt_vtd_s1_invalidate()
        entry.addr = 0
        entry.npages = UInt64.max
        return entry
    }

    mutating func add(_ invalidation: PASIDInvalidation) {
        if coversAll { return }
        switch invalidation.scope {
        case .all:
            // Supersedes everything queued; a full flush also drops paging-structure caches, so it is
            // never leaf-only.
            entries.removeAll(keepingCapacity: true)
            tags.removeAll(keepingCapacity: true)
            entries.append(Self.everything())
            coversAll = true
        case .pages(let address, let count):
            guard count > 0 else { return }
            var entry = uapi_iommu_hwpt_vtd_s1_invalidate()
            entry.addr = address & ~0xfff
            entry.npages = count
            entry.flags = invalidation.leafOnly ? UAPI_IOMMU_VTD_INV_FLAGS_LEAF : 0
            entries.append(entry)
        }
        tags.append(invalidation.tag)
    }

    mutating func clear() {
        entries.removeAll(keepingCapacity: true)
        tags.removeAll(keepingCapacity: true)
        coversAll = false
    }
}

extension BatchOutcome.Result {
    /// Failed outranks recovered outranks completed; between equals, the earlier descriptor wins.
    func merged(with other: Self) -> Self {
        switch (self, other) {
        case (.completed, _): other
        case (_, .completed): self
        case (.recovered(let a), .recovered(let b)), (.failed(let a), .failed(let b)):
            a.tag <= b.tag ? self : other
        case (.failed, .recovered): self
        case (.recovered, .failed): other
        }
    }
}

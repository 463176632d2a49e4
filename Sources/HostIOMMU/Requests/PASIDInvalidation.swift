/// One guest PASID-based IOTLB invalidation descriptor (type 6), decoded by the model.
/// With nesting these are the only guest page-table events that reach the host.
public struct PASIDInvalidation: Hashable, Sendable {
    public var domainID: DomainID
    public var pasid: PASID
    public var scope: Scope
    /// IH: only leaf entries changed, paging-structure caches may be kept.
    public var leafOnly: Bool
    /// The model's handle for this descriptor (e.g. its queue index), handed back if the host fails it.
    public var tag: UInt64

    public init(domainID: DomainID, pasid: PASID, scope: Scope, leafOnly: Bool = false, tag: UInt64 = 0) {
        self.domainID = domainID
        self.pasid = pasid
        self.scope = scope
        self.leafOnly = leafOnly
        self.tag = tag
    }

    public enum Scope: Hashable, Sendable {
        /// Granularity 10b: every address in the PASID.
        case all
        /// Granularity 11b: `pages` 4 KiB pages from `address` (ADDR with AM = log2 pages).
        case pages(address: UInt64, count: UInt64)

        /// What the descriptor's ADDR and AM fields encode.
        public static func addressMask(address: UInt64, am: UInt8) -> Scope {
            let count: UInt64 = am >= 52 ? 1 << 52 : 1 << UInt64(am)
            return .pages(address: address & ~((count << 12) &- 1), count: count)
        }
    }
}

/// Where the model is in its invalidation queue: a wait descriptor closes a batch, and everything
/// queued before it must be done before the wait's status write or interrupt.
public struct BatchOutcome: Equatable, Sendable {
    /// IOMMU_HWPT_INVALIDATE calls this batch took (one per HWPT, plus any fallback).
    public var hostCalls: Int = 0
    /// Descriptors forwarded.
    public var entries: Int = 0
    public var result: Result = .completed

    public init() {}

    public enum Result: Equatable, Sendable {
        /// Everything the guest asked for is done.
        case completed
        /// The host refused a descriptor, but a full flush of the affected HWPT succeeded, so no stale
        /// translation remains: the guest need not see anything (log it).
        case recovered(InvalidationFailure)
        /// The host could not invalidate. The model should report an invalidation queue error at the
        /// failing descriptor (`tag`) instead of completing the wait.
        case failed(InvalidationFailure)
    }
}

/// The first descriptor the kernel did not process (`entry_num` on return), and why.
public struct InvalidationFailure: Equatable, Sendable, CustomStringConvertible {
    public var tag: UInt64
    public var errno: Errno
    public var requesterID: RequesterID
    public var hwptID: ObjectID
    /// Descriptors before it that the kernel did process.
    public var processed: Int

    public var description: String {
        "IOMMU_HWPT_INVALIDATE on HWPT \(hwptID) for \(requesterID) failed with \(errno) at descriptor "
            + "\(tag) after \(processed) entries"
    }
}

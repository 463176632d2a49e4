// What an invalidation covers: the common language of register-based invalidation,
// queued-invalidation descriptors and the caches.

public enum ContextInvalidationScope: Equatable, Sendable {
    case global
    case domain(DomainID)
    /// Device-selective: source-id with the function mask (CCMD.FM / descriptor FM: 0 none,
    /// 1 ignore bit 2, 2 ignore bits 2:1, 3 ignore bits 2:0 of the function number).
    case device(sourceID: RequesterID, functionMask: UInt8, domain: DomainID)

    /// The source-id bits a device-selective invalidation ignores. FM masks the most
    /// significant function-number bits (spec 6.5.2.1, CCMD.FM): 1 → bit 2, 2 → bits 2:1,
    /// 3 → bits 2:0.
    static func ignoredSourceIDBits(functionMask: UInt8) -> UInt8 {
        switch functionMask & 0b11 {
        case 0: 0b000
        case 1: 0b100
        case 2: 0b110
        default: 0b111
        }
    }

    /// Whether a device-selective scope reaches `sourceID` (always true for the others).
    func covers(sourceID candidate: RequesterID) -> Bool {
        guard case let .device(sourceID, functionMask, _) = self else { return true }
        let ignored = Self.ignoredSourceIDBits(functionMask: functionMask)
        return candidate.ignoringFunctionBits(ignored) == sourceID.ignoringFunctionBits(ignored)
    }
}

public enum IOTLBInvalidationScope: Equatable, Sendable {
    case global
    case domain(DomainID)
    /// Page-selective within a domain: 2^addressMask pages from `address` (aligned down);
    /// `leafOnly` is the invalidation hint (IH).
    case pages(domain: DomainID, address: UInt64, addressMask: UInt8, leafOnly: Bool)
    /// PASID-based: every address of (domain, pasid).
    case pasid(domain: DomainID, pasid: PASID)
    /// PASID-based page-selective.
    case pasidPages(domain: DomainID, pasid: PASID, address: UInt64, addressMask: UInt8, leafOnly: Bool)
}

public enum PASIDCacheInvalidationScope: Equatable, Sendable {
    case global
    case domain(DomainID)
    case pasid(domain: DomainID, pasid: PASID)
}

// IOTLB: cached translations tagged by domain, PASID, source and page size.
// OWNER: caches + invalidation work (issue 3). Stub: the interface the translation path uses.

/// Marker for "request without PASID" in cache tags.
public let noPASID: UInt32 = .max

public struct IOTLBEntry: Equatable, Sendable {
    public var domainID: UInt16
    public var sourceID: UInt16
    public var pasid: UInt32          // noPASID for requests without PASID
    public var inputPage: UInt64      // input address aligned to the page size
    public var outputPage: UInt64     // output address of the page
    public var pageShift: UInt8       // 12, 21 or 30
    public var permissions: Permissions

    public init(domainID: UInt16, sourceID: UInt16, pasid: UInt32, inputPage: UInt64, outputPage: UInt64,
                pageShift: UInt8, permissions: Permissions) {
        self.domainID = domainID
        self.sourceID = sourceID
        self.pasid = pasid
        self.inputPage = inputPage
        self.outputPage = outputPage
        self.pageShift = pageShift
        self.permissions = permissions
    }
}

public struct IOTLB {
    public let capacity: Int
    public init(capacity: Int) { self.capacity = capacity }
    public func lookup(sourceID: UInt16, pasid: UInt32, address: UInt64) -> IOTLBEntry? { nil }
    public mutating func insert(_ entry: IOTLBEntry) {}
    public mutating func invalidate(_ scope: IOTLBInvalidationScope) {}
    public mutating func removeAll() {}
}

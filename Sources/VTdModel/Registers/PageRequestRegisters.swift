// Page request queue registers (VT-d spec 7.5, 11.4.10): PQH, PQT, PQA, PRS and the page
// request event. They exist only with page-requests on (ECAP.PRS); otherwise they read 0 and
// ignore writes. `PageRequestQueueState` (PageRequests/) owns them.

/// PQA (offset 0xD0).
public struct PageRequestQueueAddress: RawRepresentable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// PQA, 63:12.
    public var base: UInt64 { rawValue & UInt64.mask(63, 12) }
    /// PQS, 2:0: 2^PQS 4 KiB pages of 32-byte page request descriptors.
    public var sizeField: UInt64 { rawValue.bits(2, 0) }
    public var entryCount: Int { (4096 << Int(sizeField)) / 32 }

    static let writable: UInt64 = UInt64.mask(63, 12) | UInt64.mask(2, 0)
}

/// PQH and PQT (offsets 0xC0, 0xC8): a byte offset of a 32-byte descriptor, 18:5.
public struct PageRequestQueuePointer: RawRepresentable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(index: Int) { rawValue = UInt64(index) << 5 }
    public var index: Int { Int(rawValue.bits(18, 5)) }

    static let writable: UInt64 = UInt64.mask(18, 5)
}

/// PRS (offset 0xDC).
public struct PageRequestStatus: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// PPR, 0: requests are pending in the queue; RW1C.
    public static let pendingPageRequest = PageRequestStatus(rawValue: 1 << 0)
    /// PRO, 1: a request was dropped because the queue was full; RW1C.
    public static let pageRequestOverflow = PageRequestStatus(rawValue: 1 << 1)

    static let writeOneToClear: PageRequestStatus = [.pendingPageRequest, .pageRequestOverflow]
}

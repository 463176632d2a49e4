// The page request queue's registers as typed views (VT-d spec 10.4, PQH/PQT/PQA/PRS).
// The register work (issue 2) owns their masks; these name their fields.

/// PQA: base (63:12) and size (PQS, 2:0) of the queue: 2^PQS 4 KiB pages of 32-byte descriptors,
/// 2^(PQS+7) entries. (Some Intel datasheets print 2^(X+8), the invalidation queue's 16-byte
/// figure; Linux's 32-byte ring stride is what hardware and drivers agree on.)
public struct PageRequestQueueAddress: RawRepresentable, Equatable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(base: UInt64, sizeField: UInt8) { rawValue = base & ~0xFFF | UInt64(sizeField & 0x7) }

    public static let descriptorSize: UInt64 = 32
    public var base: UInt64 { rawValue & ~0xFFF }
    public var sizeField: UInt8 { UInt8(rawValue & 0x7) }
    public var byteSize: UInt64 { 4096 << UInt64(sizeField) }
    public var entryCount: UInt64 { byteSize / Self.descriptorSize }
}

/// PQH and PQT: byte offsets of 32-byte descriptors into the queue (bits 18:5).
public enum PageRequestQueueOffset {
    public static let mask: UInt64 = 0x7_FFE0
}

/// PRS: page request status, both bits RW1C.
public struct PageRequestStatus: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// PPR: the unit queued page requests since software last cleared this bit.
    public static let pending = PageRequestStatus(rawValue: 1 << 0)
    /// PRO: a request found the queue full; every request is dropped until software clears this.
    public static let overflow = PageRequestStatus(rawValue: 1 << 1)
}

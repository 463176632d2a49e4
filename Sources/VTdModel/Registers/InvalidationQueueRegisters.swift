// The registers of queued invalidation (VT-d spec 6.5.2, 11.4.9): IQA, IQH, IQT, ICS and
// IQERCD, and the queue's errors. `InvalidationQueueState` (Invalidation/) owns them.

/// IQA (offset 0x90).
public struct InvalidationQueueAddress: RawRepresentable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// IQA, 63:12: base of the queue, aligned to its size.
    public var base: UInt64 { rawValue & UInt64.mask(63, 12) }
    /// DW, 11: 256-bit descriptors (scalable mode) instead of 128-bit.
    public var wideDescriptors: Bool { rawValue.bit(11) }
    /// QS, 2:0: the queue is 2^QS 4 KiB pages.
    public var sizeField: UInt64 { rawValue.bits(2, 0) }
    public var descriptorSize: Int { wideDescriptors ? 32 : 16 }
    /// A power of two. A shift, not a division: every queue run computes it several times.
    public var entryCount: Int { (4096 << Int(sizeField)) >> (wideDescriptors ? 5 : 4) }

    /// DW is reserved-zero without scalable-mode support (ECAP.SMTS).
    static func writable(scalableMode: Bool) -> UInt64 {
        UInt64.mask(63, 12) | (scalableMode ? 1 << 11 : 0) | UInt64.mask(2, 0)
    }
}

/// IQH and IQT (offsets 0x80, 0x88): a byte offset into the queue, 18:4.
/// With 256-bit descriptors bit 4 must be 0 (tail) and is always 0 (head).
public struct InvalidationQueuePointer: RawRepresentable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(index: Int, wideDescriptors: Bool) {
        rawValue = UInt64(index) << (wideDescriptors ? 5 : 4)
    }
    /// Constant field bounds in each branch: a computed low bit costs a generic shift (measured).
    @inline(__always)
    public func index(wideDescriptors: Bool) -> Int {
        wideDescriptors ? Int(rawValue.bits(18, 5)) : Int(rawValue.bits(18, 4))
    }
    /// Bit 4 of a tail in 256-bit mode: half a descriptor.
    public var isHalfDescriptor: Bool { rawValue.bit(4) }

    static let writable: UInt64 = UInt64.mask(18, 4)
}

/// ICS (offset 0x9C).
public struct InvalidationCompletionStatus: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// IWC, 0: a wait descriptor with IF completed; RW1C.
    public static let waitComplete = InvalidationCompletionStatus(rawValue: 1 << 0)
}

/// What went wrong in queued invalidation, as the spec reports it: FSTS.IQE with the
/// IQERCD.IQEI code, or FSTS.ICE / FSTS.ITE with the device's source-id.
public enum InvalidationQueueError: Equatable, Sendable {
    /// IQEI 1: the tail points past the end of the queue.
    case invalidTail
    /// IQEI 2: reading a descriptor from guest memory failed.
    case descriptorFetchFailed
    /// IQEI 3: unknown or unsupported descriptor type.
    case invalidDescriptorType
    /// IQEI 4: a reserved field of a valid descriptor is not zero.
    case reservedFieldSet
    /// IQEI 5: a descriptor that needs 256-bit mode in a 128-bit queue.
    case invalidDescriptorWidth
    /// IQEI 6: a tail with bit 4 set in 256-bit mode.
    case misalignedTail
    /// IQEI 0 (no detail defined): the status write of a wait descriptor did not reach memory.
    case statusWriteFailed
    /// IQEI 0 (no detail defined): the host IOMMU refused a PASID-based IOTLB invalidation of an
    /// assigned device (nested binding) and could not flush instead.
    case hostInvalidationFailed
    /// FSTS.ICE with IQERCD.ICESID: unexpected or invalid device-TLB invalidation completion.
    case completionError(sourceID: RequesterID)
    /// FSTS.ITE with IQERCD.ITESID: a device-TLB invalidation timed out.
    case timeout(sourceID: RequesterID)

    /// The FSTS bit that reports it.
    public var faultStatusBit: FaultStatus {
        switch self {
        case .completionError: .invalidationCompletionError
        case .timeout: .invalidationTimeoutError
        default: .invalidationQueueError
        }
    }

    /// IQERCD.IQEI for a queue error; nil for ICE and ITE, which carry a source-id instead.
    public var queueErrorInfo: UInt64? {
        switch self {
        case .invalidTail: 1
        case .descriptorFetchFailed: 2
        case .invalidDescriptorType: 3
        case .reservedFieldSet: 4
        case .invalidDescriptorWidth: 5
        case .misalignedTail: 6
        case .statusWriteFailed, .hostInvalidationFailed: 0
        case .completionError, .timeout: nil
        }
    }
}

/// IQERCD (offset 0xB0): read-only details of the errors in FSTS.
public struct InvalidationQueueErrorRecord: RawRepresentable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// IQEI, 3:0.
    public var queueErrorInfo: UInt64 { get { rawValue.bits(3, 0) } set { rawValue.setBits(3, 0, to: newValue) } }
    /// ITESID, 47:32.
    public var timeoutSourceID: RequesterID {
        get { RequesterID(rawValue: UInt16(rawValue.bits(47, 32))) } set { rawValue.setBits(47, 32, to: UInt64(newValue.rawValue)) }
    }
    /// ICESID, 63:48.
    public var completionErrorSourceID: RequesterID {
        get { RequesterID(rawValue: UInt16(rawValue.bits(63, 48))) } set { rawValue.setBits(63, 48, to: UInt64(newValue.rawValue)) }
    }
}

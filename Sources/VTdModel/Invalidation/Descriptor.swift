// Invalidation descriptors (VT-d spec 6.5.2): the raw 128- or 256-bit words the guest puts in
// the invalidation queue, and one typed view per descriptor type. Every field and every
// reserved mask of a descriptor is declared once, here.
//
// Type code: bits 3:0 plus bits 11:9 as bits 6:4. Reserved bits are checked per type; in a
// 256-bit queue the upper 128 bits of a 128-bit type must be zero, and the PASID-granular types
// (6-9) exist only in a 256-bit queue.

public enum DescriptorType: UInt8, Sendable {
    case contextCache = 1
    case iotlb = 2
    case deviceTLB = 3
    case interruptEntryCache = 4
    case wait = 5
    case pasidIOTLB = 6
    case pasidCache = 7
    case pasidDeviceTLB = 8
    case pageGroupResponse = 9

    /// Types whose fields need the upper 128 bits' layout, hence a 256-bit queue.
    var needsWideQueue: Bool { rawValue >= 6 }

    /// Why a descriptor of this type cannot be in a queue of this width, or nil.
    func widthError(wideQueue: Bool, upperHalfIsZero: Bool) -> InvalidationQueueError? {
        if needsWideQueue && !wideQueue { return .invalidDescriptorWidth }
        // A 128-bit type in a 256-bit queue: the upper half is reserved.
        if !needsWideQueue && !upperHalfIsZero { return .reservedFieldSet }
        return nil
    }
}

/// One descriptor as read from the queue; `words.2` and `words.3` are zero in a 128-bit queue.
public struct InvalidationDescriptor: Equatable, Sendable {
    public var words: (UInt64, UInt64, UInt64, UInt64)

    public init(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64 = 0, _ w3: UInt64 = 0) { words = (w0, w1, w2, w3) }

    /// The descriptor at `w` as read from guest memory (little-endian): 2 words, or 4 if `wide`.
    @inline(__always)
    init(_ w: UnsafePointer<UInt64>, wide: Bool) {
        words = (UInt64(littleEndian: w[0]), UInt64(littleEndian: w[1]),
                 wide ? UInt64(littleEndian: w[2]) : 0, wide ? UInt64(littleEndian: w[3]) : 0)
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    var low: UInt64 { words.0 }
    var high: UInt64 { words.1 }
    var upperHalfIsZero: Bool { words.2 == 0 && words.3 == 0 }

    /// The 7-bit type code.
    public var typeCode: UInt8 { UInt8(truncatingIfNeeded: (low & 0xF) | ((low >> 5) & 0x70)) }
    public var type: DescriptorType? { DescriptorType(rawValue: typeCode) }
    /// Granularity field, bits 5:4, for the types that have one.
    var granularity: UInt8 { UInt8(truncatingIfNeeded: (low >> 4) & 3) }
}

/// Type bits (3:0 and 11:9) never count as reserved: the type code already decided them.
private let typeBits = UInt64.mask(3, 0) | UInt64.mask(11, 9)

// MARK: Typed views. Each checks its own reserved bits in `reservedBitsSet`.

/// Context-cache invalidate (type 1, spec 6.5.2.1).
struct ContextCacheDescriptor {
    let d: InvalidationDescriptor
    static let reservedLow = UInt64.mask(8, 6) | UInt64.mask(15, 12) | UInt64.mask(63, 50)
    var reservedBitsSet: Bool { d.low & Self.reservedLow != 0 || d.high != 0 }
    var domainID: DomainID { DomainID(rawValue: UInt16(truncatingIfNeeded: d.low >> 16)) }
    var sourceID: RequesterID { RequesterID(rawValue: UInt16(truncatingIfNeeded: d.low >> 32)) }
    var functionMask: UInt8 { UInt8(truncatingIfNeeded: (d.low >> 48) & 3) }
    /// 01 global, 10 domain-selective, 11 device-selective; 00 is not a granularity.
    var scope: ContextInvalidationScope? {
        switch d.granularity {
        case 1: .global
        case 2: .domain(domainID)
        case 3: .device(sourceID: sourceID, functionMask: functionMask, domain: domainID)
        default: nil
        }
    }
}

/// IOTLB invalidate (type 2, spec 6.5.2.2).
struct IOTLBDescriptor {
    let d: InvalidationDescriptor
    static let reservedLow = UInt64.mask(8, 8) | UInt64.mask(15, 12) | UInt64.mask(63, 32)
    static let reservedHigh = UInt64.mask(11, 7)
    var reservedBitsSet: Bool { d.low & Self.reservedLow != 0 || d.high & Self.reservedHigh != 0 }
    var domainID: DomainID { DomainID(rawValue: UInt16(truncatingIfNeeded: d.low >> 16)) }
    /// Drain reads / writes (bits 7, 6): satisfied at once, every request is synchronous here.
    var drainReads: Bool { d.low & (1 << 7) != 0 }
    var drainWrites: Bool { d.low & (1 << 6) != 0 }
    var address: UInt64 { d.high & ~0xFFF }
    var invalidationHint: Bool { d.high & (1 << 6) != 0 }
    var addressMask: UInt8 { UInt8(truncatingIfNeeded: d.high & 0x3F) }
    /// 01 global, 10 domain-selective, 11 page-selective within the domain.
    var scope: IOTLBInvalidationScope? {
        switch d.granularity {
        case 1: .global
        case 2: .domain(domainID)
        case 3: .pages(domain: domainID, address: address, addressMask: addressMask, leafOnly: invalidationHint)
        default: nil
        }
    }
}

/// Device-TLB invalidate (type 3, spec 6.5.2.5).
struct DeviceTLBDescriptor {
    let d: InvalidationDescriptor
    static let reservedLow = UInt64.mask(8, 4) | UInt64.mask(31, 21) | UInt64.mask(51, 48)
    static let reservedHigh = UInt64.mask(11, 1)
    var reservedBitsSet: Bool { d.low & Self.reservedLow != 0 || d.high & Self.reservedHigh != 0 }
    var sourceID: RequesterID { RequesterID(rawValue: UInt16(truncatingIfNeeded: d.low >> 32)) }
    var range: (address: UInt64, size: UInt64) { atsInvalidationRange(address: d.high & ~0xFFF, sizeBit: d.high & 1 != 0) }
}

/// Interrupt entry cache invalidate (type 4, spec 6.5.2.7).
struct InterruptEntryCacheDescriptor {
    let d: InvalidationDescriptor
    static let reservedLow = UInt64.mask(8, 5) | UInt64.mask(26, 12) | UInt64.mask(63, 48)
    var reservedBitsSet: Bool { d.low & Self.reservedLow != 0 || d.high != 0 }
    var indexSelective: Bool { d.low & (1 << 4) != 0 }
    var indexMask: UInt8 { UInt8(truncatingIfNeeded: (d.low >> 27) & 0x1F) }
    var interruptIndex: UInt16 { UInt16(truncatingIfNeeded: d.low >> 32) }
    /// (first index, count); count 0 means every entry.
    var entries: (index: UInt32, count: UInt32) {
        guard indexSelective else { return (0, 0) }
        let count = UInt32(1) << UInt32(indexMask)
        return (UInt32(interruptIndex) & ~(count - 1), count)
    }
}

/// Invalidation wait (type 5, spec 6.5.2.8).
struct WaitDescriptor {
    let d: InvalidationDescriptor
    /// PD (bit 7) is reserved unless page requests (ECAP.PDS) are offered.
    static func reservedLow(pageDrain: Bool) -> UInt64 { UInt64.mask(8, 8) | UInt64.mask(31, 12) | (pageDrain ? 0 : UInt64.mask(7, 7)) }
    static let reservedHigh = UInt64.mask(1, 0)
    func reservedBitsSet(pageDrain: Bool) -> Bool {
        d.low & Self.reservedLow(pageDrain: pageDrain) != 0 || d.high & Self.reservedHigh != 0
    }
    var interruptFlag: Bool { d.low & (1 << 4) != 0 }
    var statusWrite: Bool { d.low & (1 << 5) != 0 }
    var fence: Bool { d.low & (1 << 6) != 0 }
    var pageDrain: Bool { d.low & (1 << 7) != 0 }
    var statusData: UInt32 { UInt32(truncatingIfNeeded: d.low >> 32) }
    var statusAddress: UInt64 { d.high & ~3 }
}

/// PASID-based IOTLB invalidate (type 6, spec 6.5.2.4).
struct PASIDIOTLBDescriptor {
    let d: InvalidationDescriptor
    static let reservedLow = UInt64.mask(8, 6) | UInt64.mask(15, 12) | UInt64.mask(63, 52)
    static let reservedHigh = UInt64.mask(11, 7)
    var reservedBitsSet: Bool {
        d.low & Self.reservedLow != 0 || d.high & Self.reservedHigh != 0 || !d.upperHalfIsZero
    }
    var domainID: DomainID { DomainID(rawValue: UInt16(truncatingIfNeeded: d.low >> 16)) }
    var pasid: PASID { PASID(rawValue: UInt32(truncatingIfNeeded: d.low.bits(51, 32))) }
    var address: UInt64 { d.high & ~0xFFF }
    var invalidationHint: Bool { d.high & (1 << 6) != 0 }
    var addressMask: UInt8 { UInt8(truncatingIfNeeded: d.high & 0x3F) }
    /// 10 every address of the PASID, 11 page-selective; 00 and 01 are not granularities here.
    /// An address mask above CAP.MAMV widens to the whole PASID rather than being refused: Linux
    /// sends first-level unmaps with AM = log2(pages) uncapped (cache_tag_flush_range ->
    /// qi_flush_piotlb), and an IQE there makes qi_check_fault drop the descriptor, leaving the old
    /// translation usable. Over-invalidating is always allowed (spec 6.5.2.4, 6.1).
    func scope(maximumAddressMask: UInt8) -> IOTLBInvalidationScope? {
        switch d.granularity {
        case 2: .pasid(domain: domainID, pasid: pasid)
        case 3 where addressMask > maximumAddressMask: .pasid(domain: domainID, pasid: pasid)
        case 3: .pasidPages(domain: domainID, pasid: pasid, address: address, addressMask: addressMask,
                            leafOnly: invalidationHint)
        default: nil
        }
    }
}

/// PASID cache invalidate (type 7, spec 6.5.2.3).
struct PASIDCacheDescriptor {
    let d: InvalidationDescriptor
    static let reservedLow = UInt64.mask(8, 6) | UInt64.mask(15, 12) | UInt64.mask(63, 52)
    var reservedBitsSet: Bool { d.low & Self.reservedLow != 0 || d.high != 0 || !d.upperHalfIsZero }
    var domainID: DomainID { DomainID(rawValue: UInt16(truncatingIfNeeded: d.low >> 16)) }
    var pasid: PASID { PASID(rawValue: UInt32(truncatingIfNeeded: d.low.bits(51, 32))) }
    /// 00 domain-selective, 01 PASID-selective, 11 global; 10 is reserved.
    var scope: PASIDCacheInvalidationScope? {
        switch d.granularity {
        case 0: .domain(domainID)
        case 1: .pasid(domain: domainID, pasid: pasid)
        case 3: .global
        default: nil
        }
    }
}

/// PASID-based device-TLB invalidate (type 8, spec 6.5.2.6).
struct PASIDDeviceTLBDescriptor {
    let d: InvalidationDescriptor
    static let reservedHigh = UInt64.mask(10, 1)
    var reservedBitsSet: Bool { d.high & Self.reservedHigh != 0 || !d.upperHalfIsZero }
    var sourceID: RequesterID { RequesterID(rawValue: UInt16(truncatingIfNeeded: d.low >> 16)) }
    var pasid: PASID { PASID(rawValue: UInt32(truncatingIfNeeded: d.low.bits(51, 32))) }
    /// Global: translations of every PASID with the global attribute go too.
    var global: Bool { d.high & 1 != 0 }
    var range: (address: UInt64, size: UInt64) {
        atsInvalidationRange(address: d.high & ~0xFFF, sizeBit: d.high & (1 << 11) != 0)
    }
}

/// Page group response (type 9, spec 6.5.2.9): fields in PageRequests/PageGroupResponseDescriptor.swift;
/// these are the bits no revision of the descriptor uses.
enum PageGroupResponseReservedBits {
    static let low = UInt64.mask(8, 6) | UInt64.mask(63, 52)
    static let high = UInt64.mask(1, 0)
    static func set(in d: InvalidationDescriptor) -> Bool {
        d.low & low != 0 || d.high & high != 0 || !d.upperHalfIsZero
    }
}

/// The range of an ATS invalidation request (PCIe ATS 2.3 "Invalidate Request"): without S,
/// one 4 KiB page; with S, the lowest clear address bit from 12 up gives the size: clear bit n
/// means 2^(n+1) bytes. All bits set means every address.
func atsInvalidationRange(address: UInt64, sizeBit: Bool) -> (address: UInt64, size: UInt64) {
    guard sizeBit else { return (address, 1 << 12) }
    let ones = (~(address >> 12)).trailingZeroBitCount
    let shift = 12 + ones + 1
    guard shift < 64 else { return (0, .max) }
    let size = UInt64(1) << UInt64(shift)
    return (address & ~(size - 1), size)
}

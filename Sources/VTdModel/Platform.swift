// The model's only window on the world: guest memory, interrupts, notifications, logs.
//
// The model never calls these while it holds its state lock (a callback may re-enter
// the unit, e.g. a guest that points a status write at the register window).
// The IOTLB hit path of translate calls none of them.

public enum LogLevel: Int32, Sendable {
    case guestError = 0
    case unimplemented = 1
    case trace = 2
    case info = 3
}

/// Notifications to the host, mirroring `swiftvtd_event_kind` in the C header.
public enum PlatformEvent: Equatable, Sendable {
    /// Cached translations of `[address, address+size)` for (sid, pasid) are gone.
    case unmap(sid: RequesterID, pasid: PASID?, address: UInt64, size: UInt64)
    /// A translation appeared (caching-mode shadowing).
    case map(sid: RequesterID, pasid: PASID?, address: UInt64, size: UInt64, translated: UInt64, permissions: Permissions)
    /// The translation setup of (sid, pasid) may have changed: re-query its mode.
    case contextChanged(sid: RequesterID?, pasid: PASID?)
    /// Device-TLB invalidation of `[address, address+size)` for (sid, pasid).
    case deviceTLBInvalidate(sid: RequesterID, pasid: PASID?, address: UInt64, size: UInt64)
    /// Interrupt entry cache invalidation; `count == 0` means every entry.
    case interruptCacheInvalidate(index: UInt32, count: UInt32)
    /// Page group response for the device.
    case pageGroupResponse(sid: RequesterID, pasid: PASID?, groupIndex: UInt16, responseCode: UInt8)
}

public protocol Platform: AnyObject {
    /// Reads guest-physical memory; false when the range is not accessible (the spec's access error).
    func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool
    /// Writes guest-physical memory; false when the range is not accessible.
    func writeGuest(_ address: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool
    /// Atomic 64-bit compare-and-exchange on guest RAM. Returns the value found
    /// (equal to `expected` when it exchanged), nil when the address is not accessible.
    func compareExchangeGuest64(_ address: UInt64, expected: UInt64, desired: UInt64) -> UInt64?
    func sendMSI(address: UInt64, data: UInt32)
    func notify(_ event: PlatformEvent)
    func log(_ level: LogLevel, _ message: String)
}

extension Platform {
    /// Reads one little-endian 64-bit word of guest memory.
    @inline(__always)
    public func readGuest64(_ address: UInt64) -> UInt64? {
        var value: UInt64 = 0
        let ok = withUnsafeMutableBytes(of: &value) { readGuest(address, into: $0) }
        return ok ? UInt64(littleEndian: value) : nil
    }

    @inline(__always)
    public func writeGuest32(_ address: UInt64, _ value: UInt32) -> Bool {
        var le = value.littleEndian
        return withUnsafeBytes(of: &le) { writeGuest(address, from: $0) }
    }
}

extension PlatformEvent {
    /// The event with its range cut to the unit's input address space, [0, 2^width): nothing
    /// above it can be translated, and a host keeps its notifier ranges inside it. nil when
    /// nothing of the range is left (or it was empty). Events without a range are unchanged.
    public func clamped(toAddressWidth width: Int) -> PlatformEvent? {
        let last: UInt64 = width >= 64 ? .max : (1 << UInt64(width)) - 1
        func size(from address: UInt64, _ size: UInt64) -> UInt64? {
            guard size > 0, address <= last else { return nil }
            let end = address &+ (size - 1)
            return end < address || end > last ? last - address + 1 : size
        }
        switch self {
        case let .unmap(sid, pasid, address, length):
            return size(from: address, length).map { .unmap(sid: sid, pasid: pasid, address: address, size: $0) }
        case let .map(sid, pasid, address, length, translated, permissions):
            return size(from: address, length).map {
                .map(sid: sid, pasid: pasid, address: address, size: $0, translated: translated, permissions: permissions)
            }
        case let .deviceTLBInvalidate(sid, pasid, address, length):
            return size(from: address, length).map {
                .deviceTLBInvalidate(sid: sid, pasid: pasid, address: address, size: $0)
            }
        case .contextChanged, .interruptCacheInvalidate, .pageGroupResponse:
            return self
        }
    }
}

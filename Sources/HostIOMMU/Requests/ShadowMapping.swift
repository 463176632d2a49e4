/// One translation the model's replay walk found in a guest second-level table (caching mode):
/// `length` bytes of guest IOVA at `iova` map to guest-physical `target`.
public struct ShadowMapping: Hashable, Sendable, CustomStringConvertible {
    public var iova: UInt64
    public var length: UInt64
    public var target: UInt64
    public var permissions: Permissions

    public init(iova: UInt64, length: UInt64, target: UInt64, permissions: Permissions) {
        self.iova = iova
        self.length = length
        self.target = target
        self.permissions = permissions
    }

    /// The last byte (inclusive), so ranges ending at 2^64 stay representable.
    public var last: UInt64 { iova &+ (length &- 1) }

    public var description: String {
        "[0x\(String(iova, radix: 16))+0x\(String(length, radix: 16))) → 0x\(String(target, radix: 16)) \(permissions)"
    }
}

/// DMA permissions of a shadowed range.
public struct Permissions: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let read = Permissions(rawValue: 1 << 0)
    public static let write = Permissions(rawValue: 1 << 1)
    public static let readWrite: Permissions = [.read, .write]

    public var description: String {
        (contains(.read) ? "r" : "-") + (contains(.write) ? "w" : "-")
    }
}

/// A change the replay walk asks the host to make visible.
public enum ShadowChange: Hashable, Sendable {
    case map(ShadowMapping)
    case unmap(iova: UInt64, length: UInt64)
}

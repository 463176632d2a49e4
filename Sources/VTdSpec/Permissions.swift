/// Access rights: of a translation (read, write, execute), of a request, and of a host IOAS
/// mapping (IOMMU_IOAS_MAP_READABLE / _WRITEABLE, which have no execute). Raw values match
/// SWIFTVTD_PERM_*.
public struct Permissions: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    // Inlinable and computed: a stored static of another module is reached through its lazy
    // initialiser's addressor on every use (the translate hit checks permissions on every call).
    @inlinable public static var read: Permissions { Permissions(rawValue: 1 << 0) }
    @inlinable public static var write: Permissions { Permissions(rawValue: 1 << 1) }
    @inlinable public static var execute: Permissions { Permissions(rawValue: 1 << 2) }
    @inlinable public static var readWrite: Permissions { Permissions(rawValue: 1 << 0 | 1 << 1) }

    public var description: String {
        (contains(.read) ? "r" : "-") + (contains(.write) ? "w" : "-") + (contains(.execute) ? "x" : "")
    }
}

/// Access rights: of a translation (read, write, execute), of a request, and of a host IOAS
/// mapping (IOMMU_IOAS_MAP_READABLE / _WRITEABLE, which have no execute). Raw values match
/// SWIFTVTD_PERM_*.
public struct Permissions: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let read = Permissions(rawValue: 1 << 0)
    public static let write = Permissions(rawValue: 1 << 1)
    public static let execute = Permissions(rawValue: 1 << 2)
    public static let readWrite: Permissions = [.read, .write]

    public var description: String {
        (contains(.read) ? "r" : "-") + (contains(.write) ? "w" : "-") + (contains(.execute) ? "x" : "")
    }
}

/// DMA permissions of an IOAS mapping (IOMMU_IOAS_MAP_READABLE / _WRITEABLE).
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

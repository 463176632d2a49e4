/// Access rights of a translation, and the kind of a request. Raw values match SWIFTVTD_PERM_*.
public struct Permissions: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let read = Permissions(rawValue: 1)
    public static let write = Permissions(rawValue: 2)
    public static let execute = Permissions(rawValue: 4)
    public static let readWrite: Permissions = [.read, .write]
}

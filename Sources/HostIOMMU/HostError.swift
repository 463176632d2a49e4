/// Why a host operation did not happen. `message` is written for a log line or an error returned
/// through the C ABI; `kind` is for code that must react differently (tests, the model's adapter).
public struct HostError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The kernel refused an ioctl.
        case ioctl(IoctlRequest, Errno)
        /// The host IOMMU lacks something the guest was (or would be) shown.
        case capability
        /// The request is valid VT-d but this backend cannot carry it out (e.g. shadowing first level).
        case unsupported
        /// The request itself is malformed (misaligned range, unknown device, …).
        case invalidArgument
        /// Properties contradict each other or the hosts (negotiation).
        case configuration
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The errno behind an ioctl failure, if that is what this is.
    public var errno: Errno? {
        if case .ioctl(_, let errno) = kind { return errno }
        return nil
    }

    public var description: String { message }

    static func ioctl(_ request: IoctlRequest, _ errno: Errno, _ context: String) -> HostError {
        HostError(.ioctl(request, errno), "\(request) failed with \(errno): \(context)")
    }
}

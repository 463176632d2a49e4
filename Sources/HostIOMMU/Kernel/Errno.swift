import Glibc

/// An errno value as the kernel returns it, named so tests and messages read like the uAPI docs.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let eperm = Errno(rawValue: EPERM)
    public static let enoent = Errno(rawValue: ENOENT)
    public static let eio = Errno(rawValue: EIO)
    public static let ebadf = Errno(rawValue: EBADF)
    public static let ebadfd = Errno(rawValue: EBADFD)
    public static let enomem = Errno(rawValue: ENOMEM)
    public static let efault = Errno(rawValue: EFAULT)
    public static let ebusy = Errno(rawValue: EBUSY)
    public static let eexist = Errno(rawValue: EEXIST)
    public static let enodev = Errno(rawValue: ENODEV)
    public static let einval = Errno(rawValue: EINVAL)
    public static let enotty = Errno(rawValue: ENOTTY)
    public static let enospc = Errno(rawValue: ENOSPC)
    public static let espipe = Errno(rawValue: ESPIPE)
    public static let erange = Errno(rawValue: ERANGE)
    public static let enosys = Errno(rawValue: ENOSYS)
    public static let emsgsize = Errno(rawValue: EMSGSIZE)
    public static let eopnotsupp = Errno(rawValue: EOPNOTSUPP)
    public static let eoverflow = Errno(rawValue: EOVERFLOW)
    public static let e2big = Errno(rawValue: E2BIG)

    public var description: String {
        switch self {
        case .eperm: "EPERM"
        case .enoent: "ENOENT"
        case .eio: "EIO"
        case .ebadf: "EBADF"
        case .ebadfd: "EBADFD"
        case .enomem: "ENOMEM"
        case .efault: "EFAULT"
        case .ebusy: "EBUSY"
        case .eexist: "EEXIST"
        case .enodev: "ENODEV"
        case .einval: "EINVAL"
        case .enotty: "ENOTTY"
        case .enospc: "ENOSPC"
        case .espipe: "ESPIPE"
        case .erange: "ERANGE"
        case .enosys: "ENOSYS"
        case .emsgsize: "EMSGSIZE"
        case .eopnotsupp: "EOPNOTSUPP"
        case .eoverflow: "EOVERFLOW"
        case .e2big: "E2BIG"
        default: "errno \(rawValue)"
        }
    }
}

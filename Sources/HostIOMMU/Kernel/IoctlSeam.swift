import LinuxUAPI

/// The one door to the kernel. Every ioctl SwiftVTd issues passes through `call`, so a test replaces
/// the kernel here (see `FakeIOMMUFD.seam`) and nothing else.
///
/// The closure returns the ioctl's non-negative result, or minus errno. Callers serialize: a seam is
/// used under the owner's lock, never concurrently.
public struct IoctlSeam {
    public typealias Call = (_ fd: Int32, _ request: IoctlRequest, _ argument: UnsafeMutableRawPointer) -> Int32

    @usableFromInline let call: Call

    public init(_ call: @escaping Call) { self.call = call }

    /// The real kernel.
    public static var kernel: IoctlSeam {
        IoctlSeam { fd, request, argument in uapi_ioctl(fd, request.rawValue, argument) }
    }

    /// Issues `request` with `argument` as its in/out struct; returns nil on success.
    @inlinable
    func issue<T>(_ fd: Int32, _ request: IoctlRequest, _ argument: inout T) -> Errno? {
        let result = withUnsafeMutableBytes(of: &argument) { call(fd, request, $0.baseAddress!) }
        return result < 0 ? Errno(rawValue: -result) : nil
    }
}

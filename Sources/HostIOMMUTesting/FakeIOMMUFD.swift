import HostIOMMU
import LinuxUAPI

/// A test double of the kernel's iommufd (/dev/iommu) and VFIO device cdevs, installed at the
/// `IoctlSeam`. It enforces the argument rules of VTD-FACTS Part E — sizes, reserved fields, flags,
/// the errno of each refusal, object lifetimes and the IOAS area rules — and records every call, so
/// tests can assert both what the backends asked and what state the "kernel" ended up in.
///
/// Not modelled, and answered loudly rather than faked: the VFIO type1 compatibility path (ENOTTY),
/// IOAS_ALLOW_IOVAS/COPY, IOMMU_OPTION, VFIO_IOAS, dirty tracking ioctls and IOAS_MAP_FILE (ENOSYS),
/// VFIO group fds, and the EBUSY of an area being mapped by another thread (the fake is single-threaded).
///
/// It lives in its own target (HostIOMMUTesting), never linked into libSwiftVTd.so, so the benchmark
/// and the test targets of both the host layer and the C ABI can use it.
/// Not thread-safe: one test drives one fake.
public final class FakeIOMMUFD {
    /// What the IOMMU behind a device reports and allows.
    public struct HostProfile: Hashable, Sendable {
        public var cap: UInt64
        public var ecap: UInt64
        public var readOnlyNestParentErratum: Bool
        public var dirtyTracking: Bool
        public var maxPASIDLog2: UInt8

        public init(
            cap: UInt64, ecap: UInt64, readOnlyNestParentErratum: Bool = true, dirtyTracking: Bool = false,
            maxPASIDLog2: UInt8 = 0
        ) {
            self.cap = cap
            self.ecap = ecap
            self.readOnlyNestParentErratum = readOnlyNestParentErratum
            self.dirtyTracking = dirtyTracking
            self.maxPASIDLog2 = maxPASIDLog2
        }

        /// A scalable-mode VT-d unit that can nest: SMTS, FLTS, SLTS, NEST, PT, PASID (20 bits), SRS,
        /// FS1GP, 48-bit MGAW. Intel reports the read-only erratum on every unit.
        public static func nesting(
            addressWidth: Int = 48, fiveLevel: Bool = false, extendedAccessed: Bool = false, pasidBits: Int = 20
        ) -> HostProfile {
            var cap: UInt64 = 6  // ND: 16-bit domain IDs
            cap |= 1 << 10  // SAGAW 48-bit
            if fiveLevel { cap |= 1 << 11 }
            cap |= UInt64(addressWidth - 1) << 16
            cap |= 1 << 56  // FS1GP
            if fiveLevel { cap |= 1 << 60 }
            var ecap: UInt64 = 1 << 1 | 1 << 3 | 1 << 6  // QI, IR, PT
            ecap |= 1 << 26 | 1 << 31  // NEST, SRS
            if extendedAccessed { ecap |= 1 << 34 }
            if pasidBits > 0 { ecap |= UInt64(pasidBits - 1) << 35 | 1 << 40 }
            ecap |= 1 << 43 | 1 << 46 | 1 << 47  // SMTS, SLTS, FLTS
            return HostProfile(cap: cap, ecap: ecap)
        }

        /// The same unit without ECAP.NEST (e.g. an older server part).
        public static var withoutNesting: HostProfile {
            var profile = nesting()
            profile.ecap &= ~(1 << 26)
            return profile
        }

        var nestSupported: Bool { ecap & (1 << 43) != 0 && ecap & (1 << 26) != 0 }
        var pasidSupported: Bool { ecap & (1 << 43) != 0 && ecap & (1 << 40) != 0 }
        var srs: Bool { ecap & (1 << 31) != 0 }
        var eafs: Bool { ecap & (1 << 34) != 0 }
        var fl5lp: Bool { cap & (1 << 60) != 0 }
        var addressWidth: Int { Int((cap >> 16) & 0x3f) + 1 }
    }

    /// A VFIO device cdev as the fake knows it.
    public struct DeviceProfile: Hashable, Sendable {
        public var host: HostProfile
        /// The PCI device has a PASID capability the host driver enabled.
        public var pasidCapable: Bool
        public init(host: HostProfile = .nesting(), pasidCapable: Bool = true) {
            self.host = host
            self.pasidCapable = pasidCapable
        }
    }

    /// One IOAS area: IOVA [iova, iova + length) backed by user memory at `userVA`.
    public struct Area: Hashable, Sendable, CustomStringConvertible {
        public var iova: UInt64
        public var length: UInt64
        public var userVA: UInt64
        public var writable: Bool
        public var readable: Bool
        public var last: UInt64 { iova &+ (length &- 1) }
        public var description: String {
            "[0x\(String(iova, radix: 16))+0x\(String(length, radix: 16))) va 0x\(String(userVA, radix: 16))"
                + " \(readable ? "r" : "-")\(writable ? "w" : "-")"
        }
    }

    /// One entry the fake processed for a nested HWPT.
    public struct Invalidation: Hashable, Sendable {
        public var address: UInt64
        public var pages: UInt64
        public var leaf: Bool

        public init(address: UInt64, pages: UInt64, leaf: Bool) {
            self.address = address
            self.pages = pages
            self.leaf = leaf
        }
    }

    /// What an object ID names, for assertions.
    public enum ObjectKind: Hashable, Sendable {
        case ioas
        case hwptPaging(ioas: ObjectID, nestParent: Bool, automatic: Bool)
        case hwptNested(parent: ObjectID)
        case device
        case faultQueue
    }

    // ---- configuration ----------------------------------------------------------------------------

    /// Kernels before the "no mapped entries is success" change returned ENOENT for an empty unmap.
    public var emptyUnmapIsENOENT = false
    /// IOVA ranges no IOAS may map (the x86 MSI window).
    public var reservedIOVARanges: [ClosedRange<UInt64>] = [0xFEE0_0000...0xFEEF_FFFF]
    /// The last IOVA an attached domain can translate (48-bit aperture).
    public var apertureLast: UInt64 = (1 << 48) - 1
    /// When set, user VAs must fall inside one of these (writable or not) or mapping is EFAULT.
    public var userMemory: [(range: Range<UInt64>, writable: Bool)] = []

    // ---- observation ------------------------------------------------------------------------------

    /// Every ioctl that reached the fake, in order, including refused ones.
    public private(set) var calls: [IoctlRequest] = []
    public func count(_ request: IoctlRequest) -> Int { calls.reduce(0) { $0 + ($1 == request ? 1 : 0) } }
    public func clearCallLog() { calls.removeAll(keepingCapacity: true) }

    // ---- fault injection --------------------------------------------------------------------------

    private struct Injection {
        var request: IoctlRequest?
        var callIndex: Int?
        var skip: Int
        var errno: Errno
    }
    private var injections: [Injection] = []
    private var invalidationFailure: (entry: Int, errno: Errno)?

    /// Fails the next `request` (after letting `skipping` of them through) before it changes anything.
    public func failNext(_ request: IoctlRequest, with errno: Errno = .enomem, skipping: Int = 0) {
        injections.append(Injection(request: request, callIndex: nil, skip: skipping, errno: errno))
    }

    /// Fails the call that will be `calls[index]`, whatever it is.
    public func failCall(at index: Int, with errno: Errno = .enomem) {
        injections.append(Injection(request: nil, callIndex: index, skip: 0, errno: errno))
    }

    /// Makes the next IOMMU_HWPT_INVALIDATE stop at entry `entry` with `errno`, as the VT-d driver
    /// does when one entry is bad: earlier entries are done and `entry_num` says how many.
    public func failInvalidation(atEntry entry: Int, with errno: Errno = .einval) {
        invalidationFailure = (entry, errno)
    }

    func takeInvalidationFailure() -> (entry: Int, errno: Errno)? {
        defer { invalidationFailure = nil }
        return invalidationFailure
    }

    private func injectedFailure(for request: IoctlRequest, at index: Int) -> Errno? {
        for i in injections.indices {
            if let callIndex = injections[i].callIndex {
                if callIndex == index { return injections.remove(at: i).errno }
                continue
            }
            guard injections[i].request == request else { continue }
            if injections[i].skip > 0 {
                injections[i].skip -= 1
                continue
            }
            return injections.remove(at: i).errno
        }
        return nil
    }

    // ---- kernel state -----------------------------------------------------------------------------

    final class Context {
        var objects: [UInt32: Object] = [:]

        /// IDs come from an xarray with XA_FLAGS_ALLOC1: the lowest free index, starting at 1.
        func insert(_ object: Object) -> UInt32 {
            var id: UInt32 = 1
            while objects[id] != nil { id += 1 }
            objects[id] = object
            return id
        }
    }

    enum Object {
        case ioas(IOAS)
        case paging(Paging)
        case nested(Nested)
        case device(Device)
        case fault(FaultQueue)
    }

    final class IOAS {
        /// Sorted by IOVA, never overlapping.
        var areas: [Area] = []
    }

    final class Paging {
        let ioas: UInt32
        let flags: UInt32
        let automatic: Bool
        let host: HostProfile
        let faultID: UInt32?
        init(ioas: UInt32, flags: UInt32, automatic: Bool, host: HostProfile, faultID: UInt32?) {
            self.ioas = ioas
            self.flags = flags
            self.automatic = automatic
            self.host = host
            self.faultID = faultID
        }
        var nestParent: Bool { flags & UAPI_IOMMU_HWPT_ALLOC_NEST_PARENT != 0 }
        var dirtyTracking: Bool { flags & UAPI_IOMMU_HWPT_ALLOC_DIRTY_TRACKING != 0 }
    }

    final class Nested {
        let parent: UInt32
        let data: uapi_iommu_hwpt_vtd_s1
        let faultID: UInt32?
        var invalidations: [Invalidation] = []
        init(parent: UInt32, data: uapi_iommu_hwpt_vtd_s1, faultID: UInt32?) {
            self.parent = parent
            self.data = data
            self.faultID = faultID
        }
    }

    /// The iommufd side of a bound VFIO device.
    final class Device {
        unowned let file: DeviceFile
        init(file: DeviceFile) { self.file = file }
    }

    /// An open VFIO device cdev.
    final class DeviceFile {
        let profile: DeviceProfile
        var context: Context?
        var deviceID: UInt32 = 0
        /// What each attach point is attached to (HWPT IDs).
        var attachments: [AttachPoint: UInt32] = [:]
        init(profile: DeviceProfile) { self.profile = profile }
    }

    final class FaultQueue {
        let fd: Int32
        var pending: [[uapi_iommu_hwpt_pgfault]] = []
        var awaitingResponse: Set<UInt32> = []
        var nextCookie: UInt32 = 1
        init(fd: Int32) { self.fd = fd }
    }

    var iommufds: [Int32: Context] = [:]
    var deviceFiles: [Int32: DeviceFile] = [:]
    var faultFiles: [Int32: (Context, UInt32)] = [:]
    private var nextFD: Int32 = 100

    public init() {}

    /// Opens /dev/iommu.
    public func openIOMMUFD() -> Int32 {
        let fd = allocateFD()
        iommufds[fd] = Context()
        return fd
    }

    /// Opens /dev/vfio/devices/vfioN for a device behind an IOMMU with `profile`.
    public func openDevice(_ profile: DeviceProfile = DeviceProfile()) -> Int32 {
        let fd = allocateFD()
        deviceFiles[fd] = DeviceFile(profile: profile)
        return fd
    }

    func allocateFD() -> Int32 {
        defer { nextFD += 1 }
        return nextFD
    }

    /// The seam that sends every ioctl here instead of the kernel.
    public var seam: IoctlSeam {
        IoctlSeam { [self] fd, request, argument in handle(fd, request, argument) }
    }

    func handle(_ fd: Int32, _ request: IoctlRequest, _ argument: UnsafeMutableRawPointer) -> Int32 {
        let index = calls.count
        calls.append(request)
        if let errno = injectedFailure(for: request, at: index) {
            // Even a refusal before any work reports entry_num (as 0) for HWPT_INVALIDATE.
            if request == .hwptInvalidate, iommufds[fd] != nil, argument.loadUnaligned(as: UInt32.self) >= 28 {
                argument.storeBytes(of: UInt32(0), toByteOffset: 24, as: UInt32.self)
            }
            return -errno.rawValue
        }
        do throws(Errno) {
            if let context = iommufds[fd] {
                try iommufdIoctl(context, request, argument)
            } else if let file = deviceFiles[fd] {
                try vfioIoctl(file, request, argument)
            } else if faultFiles[fd] != nil {
                throw Errno.enotty
            } else {
                throw Errno.ebadf
            }
            return 0
        } catch {
            return -error.rawValue
        }
    }

    /// iommufd_fops_ioctl: a table indexed by nr, each entry with its exact command value.
    private func iommufdIoctl(_ context: Context, _ request: IoctlRequest, _ argument: UnsafeMutableRawPointer)
        throws(Errno)
    {
        let nr = request.rawValue & 0xff
        // Below the table is the VFIO type1 compatibility path, which this fake does not provide.
        guard nr >= 0x80, nr <= 0x92 else { throw .enotty }
        // A table entry whose encoding differs (size or direction bits) is -ENOIOCTLCMD.
        guard request.rawValue == 0x3B00 | nr else { throw .enotty }
        switch request {
        case .destroy: try destroy(context, argument)
        case .ioasAlloc: try ioasAlloc(context, argument)
        case .ioasIOVARanges: try ioasIOVARanges(context, argument)
        case .ioasMap: try ioasMap(context, argument)
        case .ioasUnmap: try ioasUnmap(context, argument)
        case .hwptAlloc: try hwptAlloc(context, argument)
        case .getHWInfo: try getHWInfo(context, argument)
        case .hwptInvalidate: try hwptInvalidate(context, argument)
        case .faultQueueAlloc: try faultQueueAlloc(context, argument)
        case .viommuAlloc: try viommuAlloc(context, argument)
        case .vdeviceAlloc: try vdeviceAlloc(context, argument)
        default: throw .enosys  // real commands this fake does not model; never silently "succeed"
        }
    }

    // ---- object lookups (iommufd_get_object) ------------------------------------------------------

    func ioas(_ context: Context, _ id: UInt32) throws(Errno) -> IOAS {
        guard case .ioas(let ioas)? = context.objects[id] else { throw .enoent }
        return ioas
    }

    func device(_ context: Context, _ id: UInt32) throws(Errno) -> DeviceFile {
        guard case .device(let device)? = context.objects[id] else { throw .enoent }
        return device.file
    }

    /// Whether anything still holds `id`: the refcounts that make IOMMU_DESTROY answer EBUSY.
    func isReferenced(_ context: Context, _ id: UInt32) -> Bool {
        switch context.objects[id] {
        case .ioas?:
            return context.objects.values.contains { if case .paging(let p) = $0 { p.ioas == id } else { false } }
        case .paging?:
            let hasChild = context.objects.values.contains {
                if case .nested(let n) = $0 { n.parent == id } else { false }
            }
            return hasChild || isAttached(context, id)
        case .nested?:
            return isAttached(context, id)
        case .device?:
            return true  // VFIO holds a long-term reference until unbind
        case .fault?:
            return context.objects.values.contains {
                switch $0 {
                case .paging(let p): p.faultID == id
                case .nested(let n): n.faultID == id
                default: false
                }
            }
        case nil:
            return false
        }
    }

    func isAttached(_ context: Context, _ hwpt: UInt32) -> Bool {
        deviceFiles.values.contains { $0.context === context && $0.attachments.values.contains(hwpt) }
    }

    /// An automatic domain disappears with its last device.
    func dropIfUnusedAutomatic(_ context: Context, _ hwpt: UInt32) {
        guard case .paging(let paging)? = context.objects[hwpt], paging.automatic,
            !isReferenced(context, hwpt)
        else { return }
        context.objects[hwpt] = nil
    }

    private func destroy(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        let (cmd, _) = try UserCopy.command(uapi_iommu_destroy.self, argument, minSize: UAPI_IOMMU_DESTROY_MIN_SIZE)
        guard context.objects[cmd.id] != nil else { throw .enoent }
        if isReferenced(context, cmd.id) { throw .ebusy }
        if case .fault(let queue)? = context.objects[cmd.id] { faultFiles[queue.fd] = nil }
        context.objects[cmd.id] = nil
    }

    // ---- inspection -------------------------------------------------------------------------------

    /// Every live object of an iommufd and what it is.
    public func objects(iommufd: Int32) -> [ObjectID: ObjectKind] {
        guard let context = iommufds[iommufd] else { return [:] }
        var result: [ObjectID: ObjectKind] = [:]
        for (id, object) in context.objects {
            let kind: ObjectKind =
                switch object {
                case .ioas: .ioas
                case .paging(let p):
                    .hwptPaging(ioas: ObjectID(rawValue: p.ioas), nestParent: p.nestParent, automatic: p.automatic)
                case .nested(let n): .hwptNested(parent: ObjectID(rawValue: n.parent))
                case .device: .device
                case .fault: .faultQueue
                }
            result[ObjectID(rawValue: id)] = kind
        }
        return result
    }

    /// The IDs of live HWPTs (paging and nested) of an iommufd.
    public func hwpts(iommufd: Int32) -> Set<ObjectID> {
        Set(
            objects(iommufd: iommufd).compactMap { id, kind in
                switch kind {
                case .hwptNested, .hwptPaging: id
                default: nil
                }
            })
    }

    /// The areas of an IOAS, in IOVA order.
    public func areas(iommufd: Int32, ioas: ObjectID) -> [Area] {
        guard let context = iommufds[iommufd], case .ioas(let ioas)? = context.objects[ioas.rawValue] else {
            return []
        }
        return ioas.areas
    }

    /// What a device's attach point is attached to, if anything.
    public func attachment(deviceFD: Int32, _ point: AttachPoint = .requestsWithoutPASID) -> ObjectID? {
        deviceFiles[deviceFD]?.attachments[point].map { ObjectID(rawValue: $0) }
    }

    /// All attach points of a device.
    public func attachments(deviceFD: Int32) -> [AttachPoint: ObjectID] {
        deviceFiles[deviceFD]?.attachments.mapValues { ObjectID(rawValue: $0) } ?? [:]
    }

    /// The invalidation entries a nested HWPT has processed.
    public func invalidations(iommufd: Int32, hwpt: ObjectID) -> [Invalidation] {
        guard let context = iommufds[iommufd], case .nested(let nested)? = context.objects[hwpt.rawValue] else {
            return []
        }
        return nested.invalidations
    }

    /// The guest table a nested HWPT was allocated with.
    public func nestedTable(iommufd: Int32, hwpt: ObjectID) -> FirstLevelTable? {
        guard let context = iommufds[iommufd], case .nested(let nested)? = context.objects[hwpt.rawValue] else {
            return nil
        }
        return FirstLevelTable(
            rootPointer: nested.data.pgtbl_addr, addressWidth: AddressWidth(rawValue: nested.data.addr_width) ?? .bits48,
            flags: FirstLevelFlags(rawValue: nested.data.flags))
    }
}

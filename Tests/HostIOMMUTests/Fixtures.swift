import LinuxUAPI
import Testing

@testable import HostIOMMU
import HostIOMMUTesting

/// One fake kernel with one /dev/iommu, and helpers to poke it the way a VMM would.
final class Kernel {
    let fake = FakeIOMMUFD()
    let iommufd: Int32
    let client: IOMMUFDClient

    init() {
        iommufd = fake.openIOMMUFD()
        client = IOMMUFDClient(seam: fake.seam)
    }

    /// A device set up as QEMU 10.0's VFIO leaves it (bound, own IOAS, plain HWPT attached).
    func device(
        _ bus: UInt8 = 1, profile: FakeIOMMUFD.DeviceProfile = .init(), ioas: ObjectID? = nil
    ) throws(HostError) -> AssignedDevice {
        try fake.assignDevice(
            requesterID: RequesterID(bus: bus, device: 0, function: 0), profile: profile, iommufd: iommufd, ioas: ioas)
    }

    /// Issues `value` as the ioctl argument, its size field as the caller left it.
    func call<T>(_ request: IoctlRequest, _ value: inout T, fd: Int32? = nil) -> Errno? {
        fake.seam.issue(fd ?? iommufd, request, &value)
    }

    /// Issues `value` inside a larger zeroed buffer whose declared size is `size`; `tail` bytes are
    /// written just past the struct (to test the trailing-bytes rule).
    func call<T>(_ request: IoctlRequest, _ value: T, size: UInt32, tail: [UInt8] = [], fd: Int32? = nil) -> Errno? {
        var buffer = [UInt8](repeating: 0, count: max(Int(size), MemoryLayout<T>.size) + 64)
        withUnsafeBytes(of: value) { bytes in
            for i in 0..<bytes.count { buffer[i] = bytes[i] }
        }
        for (i, byte) in tail.enumerated() { buffer[MemoryLayout<T>.size + i] = byte }
        withUnsafeBytes(of: size) { bytes in
            for i in 0..<4 { buffer[i] = bytes[i] }
        }
        return buffer.withUnsafeMutableBytes { bytes in
            let result = fake.seam.call(fd ?? iommufd, request, bytes.baseAddress!)
            return result < 0 ? Errno(rawValue: -result) : nil
        }
    }

    func ioas() throws(HostError) -> ObjectID { try client.allocateIOAS(iommufd: iommufd) }

    func nestParent(_ device: AssignedDevice) throws(HostError) -> ObjectID {
        try client.allocateNestParent(iommufd: iommufd, device: device.deviceID, ioas: device.ioasID)
    }

    func map(_ ioas: ObjectID, _ iova: UInt64, _ length: UInt64, _ permissions: Permissions = .readWrite) throws(HostError) {
        try client.map(
            iommufd: iommufd, ioas: ioas, iova: iova, length: length, userVA: 0x10_0000_0000 + iova,
            permissions: permissions)
    }

    func areas(_ ioas: ObjectID) -> [(UInt64, UInt64)] {
        fake.areas(iommufd: iommufd, ioas: ioas).map { ($0.iova, $0.length) }
    }
}

/// Sized command structs as a VMM fills them.
enum Command {
    static func map(ioas: ObjectID, iova: UInt64, length: UInt64, flags: UInt32) -> uapi_iommu_ioas_map {
        var cmd = uapi_iommu_ioas_map()
        cmd.size = UInt32(MemoryLayout<uapi_iommu_ioas_map>.size)
        cmd.flags = flags
        cmd.ioas_id = ioas.rawValue
        cmd.user_va = 0x10_0000_0000
        cmd.length = length
        cmd.iova = iova
        return cmd
    }

    static func unmap(ioas: ObjectID, iova: UInt64, length: UInt64) -> uapi_iommu_ioas_unmap {
        var cmd = uapi_iommu_ioas_unmap()
        cmd.size = UInt32(MemoryLayout<uapi_iommu_ioas_unmap>.size)
        cmd.ioas_id = ioas.rawValue
        cmd.iova = iova
        cmd.length = length
        return cmd
    }

    static func hwptAlloc(device: ObjectID, pt: ObjectID, flags: UInt32 = 0) -> uapi_iommu_hwpt_alloc {
        var cmd = uapi_iommu_hwpt_alloc()
        cmd.size = UInt32(MemoryLayout<uapi_iommu_hwpt_alloc>.size)
        cmd.flags = flags
        cmd.dev_id = device.rawValue
        cmd.pt_id = pt.rawValue
        return cmd
    }

    static func invalidate(hwpt: ObjectID) -> uapi_iommu_hwpt_invalidate {
        var cmd = uapi_iommu_hwpt_invalidate()
        cmd.size = UInt32(MemoryLayout<uapi_iommu_hwpt_invalidate>.size)
        cmd.hwpt_id = hwpt.rawValue
        cmd.data_type = UAPI_IOMMU_HWPT_INVALIDATE_DATA_VTD_S1
        cmd.entry_len = UInt32(MemoryLayout<uapi_iommu_hwpt_vtd_s1_invalidate>.size)
        return cmd
    }

    static func entry(_ address: UInt64, _ pages: UInt64, leaf: Bool = false) -> uapi_iommu_hwpt_vtd_s1_invalidate {
        var entry = uapi_iommu_hwpt_vtd_s1_invalidate()
        entry.addr = address
        entry.npages = pages
        entry.flags = leaf ? UAPI_IOMMU_VTD_INV_FLAGS_LEAF : 0
        return entry
    }

    static func attach(pt: ObjectID, pasid: UInt32? = nil) -> uapi_vfio_device_attach_iommufd_pt {
        var cmd = uapi_vfio_device_attach_iommufd_pt()
        cmd.argsz = pasid == nil ? 12 : 16
        cmd.flags = pasid == nil ? 0 : UAPI_VFIO_DEVICE_ATTACH_PASID
        cmd.pt_id = pt.rawValue
        cmd.pasid = pasid ?? 0
        return cmd
    }
}

extension FirstLevelTable {
    static let guestRoot = FirstLevelTable(rootPointer: 0x1234_5000)
}

extension RequesterID {
    static func bus(_ bus: UInt8) -> RequesterID { RequesterID(bus: bus, device: 0, function: 0) }
}

/// The errno a host call failed with (nil: it succeeded).
func errnoOf<T>(_ body: () throws -> T) -> Errno? {
    do {
        _ = try body()
        return nil
    } catch {
        return (error as? HostError)?.errno
    }
}

/// The errno of a failed Result.
func failure<T>(_ result: Result<T, Errno>) -> Errno? {
    if case .failure(let errno) = result { return errno }
    return nil
}

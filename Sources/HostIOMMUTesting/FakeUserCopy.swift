import HostIOMMU
import LinuxUAPI

// How the fake kernel reads and writes user memory: the same rules as the kernel's
// copy_struct_from_user() and its "copy back min(user size, kernel size)" convention.

/// uAPI structs the fake copies in and out; each has a zeroing init from the clang importer.
protocol UserStruct { init() }

extension uapi_iommu_destroy: UserStruct {}
extension uapi_iommu_ioas_alloc: UserStruct {}
extension uapi_iommu_ioas_map: UserStruct {}
extension uapi_iommu_ioas_unmap: UserStruct {}
extension uapi_iommu_ioas_iova_ranges: UserStruct {}
extension uapi_iommu_iova_range: UserStruct {}
extension uapi_iommu_hwpt_alloc: UserStruct {}
extension uapi_iommu_hwpt_vtd_s1: UserStruct {}
extension uapi_iommu_hw_info: UserStruct {}
extension uapi_iommu_hw_info_vtd: UserStruct {}
extension uapi_iommu_hwpt_vtd_s1_invalidate: UserStruct {}
extension uapi_iommu_hwpt_invalidate: UserStruct {}
extension uapi_iommu_fault_alloc: UserStruct {}
extension uapi_iommu_hwpt_pgfault: UserStruct {}
extension uapi_iommu_hwpt_page_response: UserStruct {}
extension uapi_iommu_viommu_alloc: UserStruct {}
extension uapi_iommu_vdevice_alloc: UserStruct {}
extension uapi_vfio_device_bind_iommufd: UserStruct {}
extension uapi_vfio_device_attach_iommufd_pt: UserStruct {}
extension uapi_vfio_device_detach_iommufd_pt: UserStruct {}

enum UserCopy {
    /// copy_struct_from_user: a shorter user struct is zero-extended; a longer one is accepted only
    /// if every byte the kernel does not know is zero (else E2BIG).
    static func structFromUser<T: UserStruct>(
        _: T.Type, at address: UnsafeRawPointer, userSize: Int
    ) throws(Errno) -> T {
        let kernelSize = MemoryLayout<T>.size
        if userSize > kernelSize {
            for offset in kernelSize..<userSize where address.load(fromByteOffset: offset, as: UInt8.self) != 0 {
                throw .e2big
            }
        }
        var value = T()
        withUnsafeMutableBytes(of: &value) { bytes in
            bytes.baseAddress!.copyMemory(from: address, byteCount: min(userSize, kernelSize))
        }
        return value
    }

    /// The iommufd ioctl prologue: `size` below the mandatory part is EINVAL, the rest as above.
    static func command<T: UserStruct>(_ type: T.Type, _ argument: UnsafeMutableRawPointer, minSize: UInt32)
        throws(Errno) -> (T, Int)
    {
        let size = argument.loadUnaligned(as: UInt32.self)
        if size < minSize { throw .einval }
        return (try structFromUser(type, at: argument, userSize: Int(size)), Int(size))
    }

    /// Copies the kernel's answer back, never past what the user declared.
    static func respond<T>(_ value: T, to argument: UnsafeMutableRawPointer, userSize: Int) {
        var copy = value
        withUnsafeBytes(of: &copy) { bytes in
            argument.copyMemory(from: bytes.baseAddress!, byteCount: min(userSize, bytes.count))
        }
    }

    /// A user pointer carried as u64; null is EFAULT, as an unmapped address would be.
    static func pointer(_ address: UInt64) throws(Errno) -> UnsafeMutableRawPointer {
        guard let pointer = UnsafeMutableRawPointer(bitPattern: UInt(address)) else { throw .efault }
        return pointer
    }
}

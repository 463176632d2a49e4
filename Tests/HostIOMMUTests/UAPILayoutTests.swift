import LinuxUAPI
import Testing

@testable import HostIOMMU
import HostIOMMUTesting

/// The C shim's static asserts prove the layouts to the C compiler; these prove Swift imports the
/// same layouts (no padding surprises through the clang importer).
@Suite struct UAPILayoutTests {
    @Test func structSizesMatchTheKernelABI() {
        #expect(MemoryLayout<uapi_iommu_destroy>.size == 8)
        #expect(MemoryLayout<uapi_iommu_ioas_alloc>.size == 12)
        #expect(MemoryLayout<uapi_iommu_ioas_map>.size == 40)
        #expect(MemoryLayout<uapi_iommu_ioas_unmap>.size == 24)
        #expect(MemoryLayout<uapi_iommu_ioas_iova_ranges>.size == 32)
        #expect(MemoryLayout<uapi_iommu_hwpt_alloc>.size == 48)
        #expect(MemoryLayout<uapi_iommu_hwpt_vtd_s1>.size == 24)
        #expect(MemoryLayout<uapi_iommu_hw_info>.size == 40)
        #expect(MemoryLayout<uapi_iommu_hw_info_vtd>.size == 24)
        #expect(MemoryLayout<uapi_iommu_hwpt_vtd_s1_invalidate>.size == 24)
        #expect(MemoryLayout<uapi_iommu_hwpt_vtd_s1_invalidate>.stride == 24)
        #expect(MemoryLayout<uapi_iommu_hwpt_invalidate>.size == 32)
        #expect(MemoryLayout<uapi_iommu_fault_alloc>.size == 16)
        #expect(MemoryLayout<uapi_iommu_hwpt_pgfault>.size == 40)
        #expect(MemoryLayout<uapi_vfio_device_bind_iommufd>.size == 16)
        #expect(MemoryLayout<uapi_vfio_device_attach_iommufd_pt>.size == 16)
        #expect(MemoryLayout<uapi_vfio_device_detach_iommufd_pt>.size == 12)
    }

    @Test func fieldOffsetsMatchTheKernelABI() {
        #expect(MemoryLayout<uapi_iommu_ioas_map>.offset(of: \.user_va) == 16)
        #expect(MemoryLayout<uapi_iommu_ioas_map>.offset(of: \.iova) == 32)
        #expect(MemoryLayout<uapi_iommu_hwpt_alloc>.offset(of: \.data_type) == 24)
        #expect(MemoryLayout<uapi_iommu_hwpt_alloc>.offset(of: \.data_uptr) == 32)
        #expect(MemoryLayout<uapi_iommu_hwpt_alloc>.offset(of: \.fault_id) == 40)
        #expect(MemoryLayout<uapi_iommu_hw_info>.offset(of: \.out_data_type) == 24)
        #expect(MemoryLayout<uapi_iommu_hw_info>.offset(of: \.out_capabilities) == 32)
        #expect(MemoryLayout<uapi_iommu_hwpt_invalidate>.offset(of: \.entry_num) == 24)
        #expect(MemoryLayout<uapi_iommu_hwpt_vtd_s1>.offset(of: \.addr_width) == 16)
        #expect(MemoryLayout<uapi_vfio_device_attach_iommufd_pt>.offset(of: \.pasid) == 12)
    }

    @Test func ioctlNumbersAreSemicolonTypeWithoutSizeBits() {
        #expect(IoctlRequest.destroy.rawValue == 0x3B80)
        #expect(IoctlRequest.ioasMap.rawValue == 0x3B85)
        #expect(IoctlRequest.hwptAlloc.rawValue == 0x3B89)
        #expect(IoctlRequest.getHWInfo.rawValue == 0x3B8A)
        #expect(IoctlRequest.hwptInvalidate.rawValue == 0x3B8D)
        #expect(IoctlRequest.vfioDeviceBindIOMMUFD.rawValue == 0x3B76)
        #expect(IoctlRequest.vfioDeviceAttach.rawValue == 0x3B77)
        #expect(IoctlRequest.vfioDeviceDetach.rawValue == 0x3B78)
        #expect("\(IoctlRequest.hwptInvalidate)" == "IOMMU_HWPT_INVALIDATE")
    }
}

// Compile-time proof that linux_uapi.h matches the kernel ABI recorded in VTD-FACTS Part C, and the
// single ioctl entry point.
#include "linux_uapi.h"

#include <errno.h>
#include <stddef.h>
#include <sys/ioctl.h>

#define SIZE_IS(type, bytes) _Static_assert(sizeof(struct type) == (bytes), #type " size")
#define AT(type, field, offset) \
    _Static_assert(offsetof(struct type, field) == (offset), #type "." #field " offset")
#define END(type, field) (offsetof(struct type, field) + sizeof(((struct type *)0)->field))

// Numbers: _IO(';', nr) has no size or direction bits; check against the libc's own _IO.
_Static_assert(UAPI_IOMMU_DESTROY == _IO(';', 0x80), "IOMMU_DESTROY");
_Static_assert(UAPI_IOMMU_IOAS_ALLOC == _IO(';', 0x81), "IOMMU_IOAS_ALLOC");
_Static_assert(UAPI_IOMMU_IOAS_ALLOW_IOVAS == _IO(';', 0x82), "IOMMU_IOAS_ALLOW_IOVAS");
_Static_assert(UAPI_IOMMU_IOAS_COPY == _IO(';', 0x83), "IOMMU_IOAS_COPY");
_Static_assert(UAPI_IOMMU_IOAS_IOVA_RANGES == _IO(';', 0x84), "IOMMU_IOAS_IOVA_RANGES");
_Static_assert(UAPI_IOMMU_IOAS_MAP == _IO(';', 0x85), "IOMMU_IOAS_MAP");
_Static_assert(UAPI_IOMMU_IOAS_UNMAP == _IO(';', 0x86), "IOMMU_IOAS_UNMAP");
_Static_assert(UAPI_IOMMU_OPTION == _IO(';', 0x87), "IOMMU_OPTION");
_Static_assert(UAPI_IOMMU_VFIO_IOAS == _IO(';', 0x88), "IOMMU_VFIO_IOAS");
_Static_assert(UAPI_IOMMU_HWPT_ALLOC == _IO(';', 0x89), "IOMMU_HWPT_ALLOC");
_Static_assert(UAPI_IOMMU_GET_HW_INFO == _IO(';', 0x8a), "IOMMU_GET_HW_INFO");
_Static_assert(UAPI_IOMMU_HWPT_SET_DIRTY == _IO(';', 0x8b), "IOMMU_HWPT_SET_DIRTY_TRACKING");
_Static_assert(UAPI_IOMMU_HWPT_GET_DIRTY == _IO(';', 0x8c), "IOMMU_HWPT_GET_DIRTY_BITMAP");
_Static_assert(UAPI_IOMMU_HWPT_INVALIDATE == _IO(';', 0x8d), "IOMMU_HWPT_INVALIDATE");
_Static_assert(UAPI_IOMMU_FAULT_QUEUE_ALLOC == _IO(';', 0x8e), "IOMMU_FAULT_QUEUE_ALLOC");
_Static_assert(UAPI_IOMMU_IOAS_MAP_FILE == _IO(';', 0x8f), "IOMMU_IOAS_MAP_FILE");
_Static_assert(UAPI_IOMMU_VIOMMU_ALLOC == _IO(';', 0x90), "IOMMU_VIOMMU_ALLOC");
_Static_assert(UAPI_IOMMU_VDEVICE_ALLOC == _IO(';', 0x91), "IOMMU_VDEVICE_ALLOC");
_Static_assert(UAPI_VFIO_DEVICE_BIND_IOMMUFD == _IO(';', 100 + 18), "VFIO_DEVICE_BIND_IOMMUFD");
_Static_assert(UAPI_VFIO_DEVICE_ATTACH_IOMMUFD_PT == _IO(';', 100 + 19), "VFIO_DEVICE_ATTACH");
_Static_assert(UAPI_VFIO_DEVICE_DETACH_IOMMUFD_PT == _IO(';', 100 + 20), "VFIO_DEVICE_DETACH");

SIZE_IS(uapi_iommu_destroy, 8);
AT(uapi_iommu_destroy, id, 4);

SIZE_IS(uapi_iommu_ioas_alloc, 12);
AT(uapi_iommu_ioas_alloc, out_ioas_id, 8);

SIZE_IS(uapi_iommu_ioas_map, 40);
AT(uapi_iommu_ioas_map, flags, 4);
AT(uapi_iommu_ioas_map, ioas_id, 8);
AT(uapi_iommu_ioas_map, reserved, 12);
AT(uapi_iommu_ioas_map, user_va, 16);
AT(uapi_iommu_ioas_map, length, 24);
AT(uapi_iommu_ioas_map, iova, 32);

SIZE_IS(uapi_iommu_ioas_unmap, 24);
AT(uapi_iommu_ioas_unmap, ioas_id, 4);
AT(uapi_iommu_ioas_unmap, iova, 8);
AT(uapi_iommu_ioas_unmap, length, 16);

SIZE_IS(uapi_iommu_iova_range, 16);
SIZE_IS(uapi_iommu_ioas_iova_ranges, 32);
AT(uapi_iommu_ioas_iova_ranges, num_iovas, 8);
AT(uapi_iommu_ioas_iova_ranges, reserved, 12);
AT(uapi_iommu_ioas_iova_ranges, allowed_iovas, 16);
AT(uapi_iommu_ioas_iova_ranges, out_iova_alignment, 24);

SIZE_IS(uapi_iommu_hwpt_alloc, 48);
AT(uapi_iommu_hwpt_alloc, flags, 4);
AT(uapi_iommu_hwpt_alloc, dev_id, 8);
AT(uapi_iommu_hwpt_alloc, pt_id, 12);
AT(uapi_iommu_hwpt_alloc, out_hwpt_id, 16);
AT(uapi_iommu_hwpt_alloc, reserved, 20);
AT(uapi_iommu_hwpt_alloc, data_type, 24);
AT(uapi_iommu_hwpt_alloc, data_len, 28);
AT(uapi_iommu_hwpt_alloc, data_uptr, 32);
AT(uapi_iommu_hwpt_alloc, fault_id, 40);
AT(uapi_iommu_hwpt_alloc, reserved2, 44);

SIZE_IS(uapi_iommu_hwpt_vtd_s1, 24);
AT(uapi_iommu_hwpt_vtd_s1, pgtbl_addr, 8);
AT(uapi_iommu_hwpt_vtd_s1, addr_width, 16);
AT(uapi_iommu_hwpt_vtd_s1, reserved, 20);

SIZE_IS(uapi_iommu_hw_info, 40);
AT(uapi_iommu_hw_info, flags, 4);
AT(uapi_iommu_hw_info, dev_id, 8);
AT(uapi_iommu_hw_info, data_len, 12);
AT(uapi_iommu_hw_info, data_uptr, 16);
AT(uapi_iommu_hw_info, out_data_type, 24);
AT(uapi_iommu_hw_info, out_max_pasid_log2, 28);
AT(uapi_iommu_hw_info, out_capabilities, 32);

SIZE_IS(uapi_iommu_hw_info_vtd, 24);
AT(uapi_iommu_hw_info_vtd, cap_reg, 8);
AT(uapi_iommu_hw_info_vtd, ecap_reg, 16);

SIZE_IS(uapi_iommu_hwpt_vtd_s1_invalidate, 24);
AT(uapi_iommu_hwpt_vtd_s1_invalidate, npages, 8);
AT(uapi_iommu_hwpt_vtd_s1_invalidate, flags, 16);
AT(uapi_iommu_hwpt_vtd_s1_invalidate, reserved, 20);

SIZE_IS(uapi_iommu_hwpt_invalidate, 32);
AT(uapi_iommu_hwpt_invalidate, hwpt_id, 4);
AT(uapi_iommu_hwpt_invalidate, data_uptr, 8);
AT(uapi_iommu_hwpt_invalidate, data_type, 16);
AT(uapi_iommu_hwpt_invalidate, entry_len, 20);
AT(uapi_iommu_hwpt_invalidate, entry_num, 24);
AT(uapi_iommu_hwpt_invalidate, reserved, 28);

SIZE_IS(uapi_iommu_fault_alloc, 16);
AT(uapi_iommu_fault_alloc, out_fault_id, 8);
AT(uapi_iommu_fault_alloc, out_fault_fd, 12);

SIZE_IS(uapi_iommu_hwpt_pgfault, 40);
AT(uapi_iommu_hwpt_pgfault, perm, 16);
AT(uapi_iommu_hwpt_pgfault, addr, 24);
AT(uapi_iommu_hwpt_pgfault, length, 32);
AT(uapi_iommu_hwpt_pgfault, cookie, 36);

SIZE_IS(uapi_iommu_hwpt_page_response, 8);

SIZE_IS(uapi_iommu_viommu_alloc, 24);
AT(uapi_iommu_viommu_alloc, out_viommu_id, 20);

SIZE_IS(uapi_iommu_vdevice_alloc, 24);
AT(uapi_iommu_vdevice_alloc, out_vdevice_id, 12);
AT(uapi_iommu_vdevice_alloc, virt_id, 16);

SIZE_IS(uapi_vfio_device_bind_iommufd, 16);
AT(uapi_vfio_device_bind_iommufd, iommufd, 8);
AT(uapi_vfio_device_bind_iommufd, out_devid, 12);

SIZE_IS(uapi_vfio_device_attach_iommufd_pt, 16);
AT(uapi_vfio_device_attach_iommufd_pt, pt_id, 8);
AT(uapi_vfio_device_attach_iommufd_pt, pasid, 12);

SIZE_IS(uapi_vfio_device_detach_iommufd_pt, 12);
AT(uapi_vfio_device_detach_iommufd_pt, pasid, 8);

// Minimum sizes are where the last mandatory field ends.
_Static_assert(UAPI_IOMMU_DESTROY_MIN_SIZE == END(uapi_iommu_destroy, id), "destroy min");
_Static_assert(UAPI_IOMMU_IOAS_ALLOC_MIN_SIZE == END(uapi_iommu_ioas_alloc, out_ioas_id), "ioas alloc min");
_Static_assert(UAPI_IOMMU_IOAS_MAP_MIN_SIZE == END(uapi_iommu_ioas_map, iova), "map min");
_Static_assert(UAPI_IOMMU_IOAS_UNMAP_MIN_SIZE == END(uapi_iommu_ioas_unmap, length), "unmap min");
_Static_assert(UAPI_IOMMU_IOAS_IOVA_RANGES_MIN_SIZE == END(uapi_iommu_ioas_iova_ranges, out_iova_alignment),
               "iova ranges min");
_Static_assert(UAPI_IOMMU_HWPT_ALLOC_MIN_SIZE == END(uapi_iommu_hwpt_alloc, reserved), "hwpt alloc min");
_Static_assert(UAPI_IOMMU_GET_HW_INFO_MIN_SIZE == END(uapi_iommu_hw_info, reserved), "hw info min");
_Static_assert(UAPI_IOMMU_HWPT_INVALIDATE_MIN_SIZE == END(uapi_iommu_hwpt_invalidate, reserved),
               "invalidate min");
_Static_assert(UAPI_IOMMU_FAULT_QUEUE_ALLOC_MIN_SIZE == END(uapi_iommu_fault_alloc, out_fault_fd),
               "fault alloc min");
_Static_assert(UAPI_IOMMU_VIOMMU_ALLOC_MIN_SIZE == END(uapi_iommu_viommu_alloc, out_viommu_id), "viommu min");
_Static_assert(UAPI_IOMMU_VDEVICE_ALLOC_MIN_SIZE == END(uapi_iommu_vdevice_alloc, virt_id), "vdevice min");
_Static_assert(UAPI_VFIO_DEVICE_BIND_MIN_ARGSZ == END(uapi_vfio_device_bind_iommufd, out_devid), "bind min");
_Static_assert(UAPI_VFIO_DEVICE_ATTACH_MIN_ARGSZ == END(uapi_vfio_device_attach_iommufd_pt, pt_id),
               "attach min");
_Static_assert(UAPI_VFIO_DEVICE_ATTACH_PASID_ARGSZ == END(uapi_vfio_device_attach_iommufd_pt, pasid),
               "attach pasid min");
_Static_assert(UAPI_VFIO_DEVICE_DETACH_MIN_ARGSZ == END(uapi_vfio_device_detach_iommufd_pt, flags),
               "detach min");
_Static_assert(UAPI_VFIO_DEVICE_DETACH_PASID_ARGSZ == END(uapi_vfio_device_detach_iommufd_pt, pasid),
               "detach pasid min");

int uapi_ioctl(int fd, unsigned long request, void *arg) {
    int result = ioctl(fd, request, arg);
    return result < 0 ? -errno : result;
}

// The hand-written mirror (linux_uapi.h: the names Swift sees) checked against the kernel's own
// uAPI headers, vendored verbatim in linux-headers/ by scripts/refresh-linux-headers.sh (the
// release is in linux-headers/VERSION): every ioctl number, flag and field the backends use must
// be the kernel's. (The *_MIN_SIZE values are checked in linux_uapi.c: the kernel has no names.)
#include "linux_uapi.h"
#include <stddef.h>
#include "linux/iommufd.h"
#include "linux/vfio.h"

#define SAME_AS_KERNEL(ours, kernel) _Static_assert((ours) == (kernel), #ours " is the kernel's " #kernel)
#define SAME_SIZE(ours, kernel) \
    _Static_assert(sizeof(struct ours) == sizeof(struct kernel), #ours " size is the kernel's")
// Extensible structs (first field size/argsz) may mirror an older, shorter version: the kernel
// takes any size from its first version on and zero-fills the rest.
#define OLDER_VERSION_OF(ours, kernel) \
    _Static_assert(sizeof(struct ours) <= sizeof(struct kernel), #ours " is a prefix of the kernel's")
#define SAME_FIELD(ours, field, kernel, kfield) \
    _Static_assert(offsetof(struct ours, field) == offsetof(struct kernel, kfield) && \
                   sizeof(((struct ours *)0)->field) == sizeof(((struct kernel *)0)->kfield), \
                   #ours "." #field " is the kernel's " #kernel "." #kfield)

SAME_AS_KERNEL(UAPI_IOMMU_DESTROY, IOMMU_DESTROY);
SAME_AS_KERNEL(UAPI_IOMMU_IOAS_ALLOC, IOMMU_IOAS_ALLOC);
SAME_AS_KERNEL(UAPI_IOMMU_IOAS_ALLOW_IOVAS, IOMMU_IOAS_ALLOW_IOVAS);
SAME_AS_KERNEL(UAPI_IOMMU_IOAS_COPY, IOMMU_IOAS_COPY);
SAME_AS_KERNEL(UAPI_IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_IOVA_RANGES);
SAME_AS_KERNEL(UAPI_IOMMU_IOAS_MAP, IOMMU_IOAS_MAP);
SAME_AS_KERNEL(UAPI_IOMMU_IOAS_UNMAP, IOMMU_IOAS_UNMAP);
SAME_AS_KERNEL(UAPI_IOMMU_OPTION, IOMMU_OPTION);
SAME_AS_KERNEL(UAPI_IOMMU_VFIO_IOAS, IOMMU_VFIO_IOAS);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_ALLOC, IOMMU_HWPT_ALLOC);
SAME_AS_KERNEL(UAPI_IOMMU_GET_HW_INFO, IOMMU_GET_HW_INFO);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_SET_DIRTY, IOMMU_HWPT_SET_DIRTY_TRACKING);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_GET_DIRTY, IOMMU_HWPT_GET_DIRTY_BITMAP);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_INVALIDATE, IOMMU_HWPT_INVALIDATE);
SAME_AS_KERNEL(UAPI_IOMMU_FAULT_QUEUE_ALLOC, IOMMU_FAULT_QUEUE_ALLOC);
SAME_AS_KERNEL(UAPI_IOMMU_IOAS_MAP_FILE, IOMMU_IOAS_MAP_FILE);
SAME_AS_KERNEL(UAPI_IOMMU_VIOMMU_ALLOC, IOMMU_VIOMMU_ALLOC);
SAME_AS_KERNEL(UAPI_IOMMU_VDEVICE_ALLOC, IOMMU_VDEVICE_ALLOC);
SAME_AS_KERNEL(UAPI_VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_BIND_IOMMUFD);
SAME_AS_KERNEL(UAPI_VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_ATTACH_IOMMUFD_PT);
SAME_AS_KERNEL(UAPI_VFIO_DEVICE_DETACH_IOMMUFD_PT, VFIO_DEVICE_DETACH_IOMMUFD_PT);
SAME_AS_KERNEL(UAPI_IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_FIXED_IOVA);
SAME_AS_KERNEL(UAPI_IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_MAP_WRITEABLE);
SAME_AS_KERNEL(UAPI_IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_READABLE);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_ALLOC_NEST_PARENT);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_ALLOC_FAULT_ID_VALID, IOMMU_HWPT_FAULT_ID_VALID);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_ALLOC_PASID);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_DATA_NONE, IOMMU_HWPT_DATA_NONE);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_DATA_VTD_S1, IOMMU_HWPT_DATA_VTD_S1);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HWPT_DATA_ARM_SMMUV3);
SAME_AS_KERNEL(UAPI_IOMMU_VTD_S1_SRE, IOMMU_VTD_S1_SRE);
SAME_AS_KERNEL(UAPI_IOMMU_VTD_S1_EAFE, IOMMU_VTD_S1_EAFE);
SAME_AS_KERNEL(UAPI_IOMMU_VTD_S1_WPE, IOMMU_VTD_S1_WPE);
SAME_AS_KERNEL(UAPI_IOMMU_HW_INFO_TYPE_NONE, IOMMU_HW_INFO_TYPE_NONE);
SAME_AS_KERNEL(UAPI_IOMMU_HW_INFO_TYPE_INTEL_VTD, IOMMU_HW_INFO_TYPE_INTEL_VTD);
SAME_AS_KERNEL(UAPI_IOMMU_HW_INFO_TYPE_ARM_SMMUV3, IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
SAME_AS_KERNEL(UAPI_IOMMU_HW_CAP_DIRTY_TRACKING, IOMMU_HW_CAP_DIRTY_TRACKING);
SAME_AS_KERNEL(UAPI_IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17);
SAME_AS_KERNEL(UAPI_IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1);
SAME_AS_KERNEL(UAPI_IOMMU_VTD_INV_FLAGS_LEAF, IOMMU_VTD_INV_FLAGS_LEAF);
SAME_AS_KERNEL(UAPI_VFIO_DEVICE_ATTACH_PASID, VFIO_DEVICE_ATTACH_PASID);
SAME_AS_KERNEL(UAPI_VFIO_DEVICE_DETACH_PASID, VFIO_DEVICE_DETACH_PASID);

SAME_SIZE(uapi_iommu_destroy, iommu_destroy);
SAME_FIELD(uapi_iommu_destroy, size, iommu_destroy, size);
SAME_FIELD(uapi_iommu_destroy, id, iommu_destroy, id);

SAME_SIZE(uapi_iommu_ioas_alloc, iommu_ioas_alloc);
SAME_FIELD(uapi_iommu_ioas_alloc, size, iommu_ioas_alloc, size);
SAME_FIELD(uapi_iommu_ioas_alloc, flags, iommu_ioas_alloc, flags);
SAME_FIELD(uapi_iommu_ioas_alloc, out_ioas_id, iommu_ioas_alloc, out_ioas_id);

SAME_SIZE(uapi_iommu_ioas_map, iommu_ioas_map);
SAME_FIELD(uapi_iommu_ioas_map, size, iommu_ioas_map, size);
SAME_FIELD(uapi_iommu_ioas_map, flags, iommu_ioas_map, flags);
SAME_FIELD(uapi_iommu_ioas_map, ioas_id, iommu_ioas_map, ioas_id);
SAME_FIELD(uapi_iommu_ioas_map, reserved, iommu_ioas_map, __reserved);
SAME_FIELD(uapi_iommu_ioas_map, user_va, iommu_ioas_map, user_va);
SAME_FIELD(uapi_iommu_ioas_map, length, iommu_ioas_map, length);
SAME_FIELD(uapi_iommu_ioas_map, iova, iommu_ioas_map, iova);

SAME_SIZE(uapi_iommu_ioas_unmap, iommu_ioas_unmap);
SAME_FIELD(uapi_iommu_ioas_unmap, size, iommu_ioas_unmap, size);
SAME_FIELD(uapi_iommu_ioas_unmap, ioas_id, iommu_ioas_unmap, ioas_id);
SAME_FIELD(uapi_iommu_ioas_unmap, iova, iommu_ioas_unmap, iova);
SAME_FIELD(uapi_iommu_ioas_unmap, length, iommu_ioas_unmap, length);

SAME_SIZE(uapi_iommu_iova_range, iommu_iova_range);
SAME_FIELD(uapi_iommu_iova_range, start, iommu_iova_range, start);
SAME_FIELD(uapi_iommu_iova_range, last, iommu_iova_range, last);

SAME_SIZE(uapi_iommu_ioas_iova_ranges, iommu_ioas_iova_ranges);
SAME_FIELD(uapi_iommu_ioas_iova_ranges, size, iommu_ioas_iova_ranges, size);
SAME_FIELD(uapi_iommu_ioas_iova_ranges, ioas_id, iommu_ioas_iova_ranges, ioas_id);
SAME_FIELD(uapi_iommu_ioas_iova_ranges, num_iovas, iommu_ioas_iova_ranges, num_iovas);
SAME_FIELD(uapi_iommu_ioas_iova_ranges, reserved, iommu_ioas_iova_ranges, __reserved);
SAME_FIELD(uapi_iommu_ioas_iova_ranges, allowed_iovas, iommu_ioas_iova_ranges, allowed_iovas);
SAME_FIELD(uapi_iommu_ioas_iova_ranges, out_iova_alignment, iommu_ioas_iova_ranges, out_iova_alignment);

SAME_SIZE(uapi_iommu_hwpt_alloc, iommu_hwpt_alloc);
SAME_FIELD(uapi_iommu_hwpt_alloc, size, iommu_hwpt_alloc, size);
SAME_FIELD(uapi_iommu_hwpt_alloc, flags, iommu_hwpt_alloc, flags);
SAME_FIELD(uapi_iommu_hwpt_alloc, dev_id, iommu_hwpt_alloc, dev_id);
SAME_FIELD(uapi_iommu_hwpt_alloc, pt_id, iommu_hwpt_alloc, pt_id);
SAME_FIELD(uapi_iommu_hwpt_alloc, out_hwpt_id, iommu_hwpt_alloc, out_hwpt_id);
SAME_FIELD(uapi_iommu_hwpt_alloc, reserved, iommu_hwpt_alloc, __reserved);
SAME_FIELD(uapi_iommu_hwpt_alloc, data_type, iommu_hwpt_alloc, data_type);
SAME_FIELD(uapi_iommu_hwpt_alloc, data_len, iommu_hwpt_alloc, data_len);
SAME_FIELD(uapi_iommu_hwpt_alloc, data_uptr, iommu_hwpt_alloc, data_uptr);
SAME_FIELD(uapi_iommu_hwpt_alloc, fault_id, iommu_hwpt_alloc, fault_id);
SAME_FIELD(uapi_iommu_hwpt_alloc, reserved2, iommu_hwpt_alloc, __reserved2);

SAME_SIZE(uapi_iommu_hwpt_vtd_s1, iommu_hwpt_vtd_s1);
SAME_FIELD(uapi_iommu_hwpt_vtd_s1, flags, iommu_hwpt_vtd_s1, flags);
SAME_FIELD(uapi_iommu_hwpt_vtd_s1, pgtbl_addr, iommu_hwpt_vtd_s1, pgtbl_addr);
SAME_FIELD(uapi_iommu_hwpt_vtd_s1, addr_width, iommu_hwpt_vtd_s1, addr_width);
SAME_FIELD(uapi_iommu_hwpt_vtd_s1, reserved, iommu_hwpt_vtd_s1, __reserved);

SAME_SIZE(uapi_iommu_hw_info, iommu_hw_info);
SAME_FIELD(uapi_iommu_hw_info, size, iommu_hw_info, size);
SAME_FIELD(uapi_iommu_hw_info, flags, iommu_hw_info, flags);
SAME_FIELD(uapi_iommu_hw_info, dev_id, iommu_hw_info, dev_id);
SAME_FIELD(uapi_iommu_hw_info, data_len, iommu_hw_info, data_len);
SAME_FIELD(uapi_iommu_hw_info, data_uptr, iommu_hw_info, data_uptr);
SAME_FIELD(uapi_iommu_hw_info, out_data_type, iommu_hw_info, out_data_type);
SAME_FIELD(uapi_iommu_hw_info, out_max_pasid_log2, iommu_hw_info, out_max_pasid_log2);
SAME_FIELD(uapi_iommu_hw_info, reserved, iommu_hw_info, __reserved);
SAME_FIELD(uapi_iommu_hw_info, out_capabilities, iommu_hw_info, out_capabilities);

SAME_SIZE(uapi_iommu_hw_info_vtd, iommu_hw_info_vtd);
SAME_FIELD(uapi_iommu_hw_info_vtd, flags, iommu_hw_info_vtd, flags);
SAME_FIELD(uapi_iommu_hw_info_vtd, reserved, iommu_hw_info_vtd, __reserved);
SAME_FIELD(uapi_iommu_hw_info_vtd, cap_reg, iommu_hw_info_vtd, cap_reg);
SAME_FIELD(uapi_iommu_hw_info_vtd, ecap_reg, iommu_hw_info_vtd, ecap_reg);

SAME_SIZE(uapi_iommu_hwpt_vtd_s1_invalidate, iommu_hwpt_vtd_s1_invalidate);
SAME_FIELD(uapi_iommu_hwpt_vtd_s1_invalidate, addr, iommu_hwpt_vtd_s1_invalidate, addr);
SAME_FIELD(uapi_iommu_hwpt_vtd_s1_invalidate, npages, iommu_hwpt_vtd_s1_invalidate, npages);
SAME_FIELD(uapi_iommu_hwpt_vtd_s1_invalidate, flags, iommu_hwpt_vtd_s1_invalidate, flags);
SAME_FIELD(uapi_iommu_hwpt_vtd_s1_invalidate, reserved, iommu_hwpt_vtd_s1_invalidate, __reserved);

SAME_SIZE(uapi_iommu_hwpt_invalidate, iommu_hwpt_invalidate);
SAME_FIELD(uapi_iommu_hwpt_invalidate, size, iommu_hwpt_invalidate, size);
SAME_FIELD(uapi_iommu_hwpt_invalidate, hwpt_id, iommu_hwpt_invalidate, hwpt_id);
SAME_FIELD(uapi_iommu_hwpt_invalidate, data_uptr, iommu_hwpt_invalidate, data_uptr);
SAME_FIELD(uapi_iommu_hwpt_invalidate, data_type, iommu_hwpt_invalidate, data_type);
SAME_FIELD(uapi_iommu_hwpt_invalidate, entry_len, iommu_hwpt_invalidate, entry_len);
SAME_FIELD(uapi_iommu_hwpt_invalidate, entry_num, iommu_hwpt_invalidate, entry_num);
SAME_FIELD(uapi_iommu_hwpt_invalidate, reserved, iommu_hwpt_invalidate, __reserved);

SAME_SIZE(uapi_iommu_fault_alloc, iommu_fault_alloc);
SAME_FIELD(uapi_iommu_fault_alloc, size, iommu_fault_alloc, size);
SAME_FIELD(uapi_iommu_fault_alloc, flags, iommu_fault_alloc, flags);
SAME_FIELD(uapi_iommu_fault_alloc, out_fault_id, iommu_fault_alloc, out_fault_id);
SAME_FIELD(uapi_iommu_fault_alloc, out_fault_fd, iommu_fault_alloc, out_fault_fd);

SAME_SIZE(uapi_iommu_hwpt_pgfault, iommu_hwpt_pgfault);
SAME_FIELD(uapi_iommu_hwpt_pgfault, flags, iommu_hwpt_pgfault, flags);
SAME_FIELD(uapi_iommu_hwpt_pgfault, dev_id, iommu_hwpt_pgfault, dev_id);
SAME_FIELD(uapi_iommu_hwpt_pgfault, pasid, iommu_hwpt_pgfault, pasid);
SAME_FIELD(uapi_iommu_hwpt_pgfault, grpid, iommu_hwpt_pgfault, grpid);
SAME_FIELD(uapi_iommu_hwpt_pgfault, perm, iommu_hwpt_pgfault, perm);
SAME_FIELD(uapi_iommu_hwpt_pgfault, reserved, iommu_hwpt_pgfault, __reserved);
SAME_FIELD(uapi_iommu_hwpt_pgfault, addr, iommu_hwpt_pgfault, addr);
SAME_FIELD(uapi_iommu_hwpt_pgfault, length, iommu_hwpt_pgfault, length);
SAME_FIELD(uapi_iommu_hwpt_pgfault, cookie, iommu_hwpt_pgfault, cookie);

SAME_SIZE(uapi_iommu_hwpt_page_response, iommu_hwpt_page_response);
SAME_FIELD(uapi_iommu_hwpt_page_response, cookie, iommu_hwpt_page_response, cookie);
SAME_FIELD(uapi_iommu_hwpt_page_response, code, iommu_hwpt_page_response, code);

OLDER_VERSION_OF(uapi_iommu_viommu_alloc, iommu_viommu_alloc);
SAME_FIELD(uapi_iommu_viommu_alloc, size, iommu_viommu_alloc, size);
SAME_FIELD(uapi_iommu_viommu_alloc, flags, iommu_viommu_alloc, flags);
SAME_FIELD(uapi_iommu_viommu_alloc, type, iommu_viommu_alloc, type);
SAME_FIELD(uapi_iommu_viommu_alloc, dev_id, iommu_viommu_alloc, dev_id);
SAME_FIELD(uapi_iommu_viommu_alloc, hwpt_id, iommu_viommu_alloc, hwpt_id);
SAME_FIELD(uapi_iommu_viommu_alloc, out_viommu_id, iommu_viommu_alloc, out_viommu_id);

SAME_SIZE(uapi_iommu_vdevice_alloc, iommu_vdevice_alloc);
SAME_FIELD(uapi_iommu_vdevice_alloc, size, iommu_vdevice_alloc, size);
SAME_FIELD(uapi_iommu_vdevice_alloc, viommu_id, iommu_vdevice_alloc, viommu_id);
SAME_FIELD(uapi_iommu_vdevice_alloc, dev_id, iommu_vdevice_alloc, dev_id);
SAME_FIELD(uapi_iommu_vdevice_alloc, out_vdevice_id, iommu_vdevice_alloc, out_vdevice_id);
SAME_FIELD(uapi_iommu_vdevice_alloc, virt_id, iommu_vdevice_alloc, virt_id);

OLDER_VERSION_OF(uapi_vfio_device_bind_iommufd, vfio_device_bind_iommufd);
SAME_FIELD(uapi_vfio_device_bind_iommufd, argsz, vfio_device_bind_iommufd, argsz);
SAME_FIELD(uapi_vfio_device_bind_iommufd, flags, vfio_device_bind_iommufd, flags);
SAME_FIELD(uapi_vfio_device_bind_iommufd, iommufd, vfio_device_bind_iommufd, iommufd);
SAME_FIELD(uapi_vfio_device_bind_iommufd, out_devid, vfio_device_bind_iommufd, out_devid);

SAME_SIZE(uapi_vfio_device_attach_iommufd_pt, vfio_device_attach_iommufd_pt);
SAME_FIELD(uapi_vfio_device_attach_iommufd_pt, argsz, vfio_device_attach_iommufd_pt, argsz);
SAME_FIELD(uapi_vfio_device_attach_iommufd_pt, flags, vfio_device_attach_iommufd_pt, flags);
SAME_FIELD(uapi_vfio_device_attach_iommufd_pt, pt_id, vfio_device_attach_iommufd_pt, pt_id);
SAME_FIELD(uapi_vfio_device_attach_iommufd_pt, pasid, vfio_device_attach_iommufd_pt, pasid);

SAME_SIZE(uapi_vfio_device_detach_iommufd_pt, vfio_device_detach_iommufd_pt);
SAME_FIELD(uapi_vfio_device_detach_iommufd_pt, argsz, vfio_device_detach_iommufd_pt, argsz);
SAME_FIELD(uapi_vfio_device_detach_iommufd_pt, flags, vfio_device_detach_iommufd_pt, flags);
SAME_FIELD(uapi_vfio_device_detach_iommufd_pt, pasid, vfio_device_detach_iommufd_pt, pasid);

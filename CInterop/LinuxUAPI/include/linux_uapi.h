// Linux iommufd and VFIO-cdev user API, as SwiftVTd uses it.
//
// The names Swift sees (a `uapi_` prefix, so they never collide with a real <linux/iommufd.h>).
// Swift cannot import the kernel's _IO() macros, and some structs here mirror an older, shorter
// version the kernel still takes, so this file stays; kernel_headers_check.c proves at compile time
// that every number, flag, size and field offset here is the kernel's, against the headers of one
// release vendored verbatim in ../linux-headers/ (scripts/refresh-linux-headers.sh).
#ifndef SWIFTVTD_LINUX_UAPI_H
#define SWIFTVTD_LINUX_UAPI_H

#include <stdint.h>

// ---- ioctl numbers --------------------------------------------------------------------------------
// iommufd and VFIO both use _IO(';', nr): no direction or size bits, so the value is 0x3B00 | nr.
// The payload size travels in each struct's first u32 (`size` or `argsz`) instead.

#define UAPI_IOMMU_DESTROY              0x3B80UL
#define UAPI_IOMMU_IOAS_ALLOC           0x3B81UL
#define UAPI_IOMMU_IOAS_ALLOW_IOVAS     0x3B82UL
#define UAPI_IOMMU_IOAS_COPY            0x3B83UL
#define UAPI_IOMMU_IOAS_IOVA_RANGES     0x3B84UL
#define UAPI_IOMMU_IOAS_MAP             0x3B85UL
#define UAPI_IOMMU_IOAS_UNMAP           0x3B86UL
#define UAPI_IOMMU_OPTION               0x3B87UL
#define UAPI_IOMMU_VFIO_IOAS            0x3B88UL
#define UAPI_IOMMU_HWPT_ALLOC           0x3B89UL
#define UAPI_IOMMU_GET_HW_INFO          0x3B8AUL
#define UAPI_IOMMU_HWPT_SET_DIRTY       0x3B8BUL
#define UAPI_IOMMU_HWPT_GET_DIRTY       0x3B8CUL
#define UAPI_IOMMU_HWPT_INVALIDATE      0x3B8DUL
#define UAPI_IOMMU_FAULT_QUEUE_ALLOC    0x3B8EUL
#define UAPI_IOMMU_IOAS_MAP_FILE        0x3B8FUL
#define UAPI_IOMMU_VIOMMU_ALLOC         0x3B90UL
#define UAPI_IOMMU_VDEVICE_ALLOC        0x3B91UL

// VFIO_BASE is 100, so these are _IO(';', 100 + 18/19/20).
#define UAPI_VFIO_DEVICE_BIND_IOMMUFD       0x3B76UL
#define UAPI_VFIO_DEVICE_ATTACH_IOMMUFD_PT  0x3B77UL
#define UAPI_VFIO_DEVICE_DETACH_IOMMUFD_PT  0x3B78UL

// ---- flag and type values -------------------------------------------------------------------------

#define UAPI_IOMMU_IOAS_MAP_FIXED_IOVA      (1u << 0)
#define UAPI_IOMMU_IOAS_MAP_WRITEABLE       (1u << 1)
#define UAPI_IOMMU_IOAS_MAP_READABLE        (1u << 2)

#define UAPI_IOMMU_HWPT_ALLOC_NEST_PARENT     (1u << 0)
#define UAPI_IOMMU_HWPT_ALLOC_DIRTY_TRACKING  (1u << 1)
#define UAPI_IOMMU_HWPT_ALLOC_FAULT_ID_VALID  (1u << 2)
#define UAPI_IOMMU_HWPT_ALLOC_PASID           (1u << 3)

#define UAPI_IOMMU_HWPT_DATA_NONE           0u
#define UAPI_IOMMU_HWPT_DATA_VTD_S1         1u
#define UAPI_IOMMU_HWPT_DATA_ARM_SMMUV3     2u

#define UAPI_IOMMU_VTD_S1_SRE               (1ull << 0)
#define UAPI_IOMMU_VTD_S1_EAFE              (1ull << 1)
#define UAPI_IOMMU_VTD_S1_WPE               (1ull << 2)

#define UAPI_IOMMU_HW_INFO_TYPE_NONE        0u
#define UAPI_IOMMU_HW_INFO_TYPE_INTEL_VTD   1u
#define UAPI_IOMMU_HW_INFO_TYPE_ARM_SMMUV3  2u

#define UAPI_IOMMU_HW_CAP_DIRTY_TRACKING    (1ull << 0)

#define UAPI_IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17  (1u << 0)

#define UAPI_IOMMU_HWPT_INVALIDATE_DATA_VTD_S1  0u
#define UAPI_IOMMU_VTD_INV_FLAGS_LEAF           (1u << 0)

#define UAPI_VFIO_DEVICE_ATTACH_PASID       (1u << 0)
#define UAPI_VFIO_DEVICE_DETACH_PASID       (1u << 0)

// ---- iommufd structures ---------------------------------------------------------------------------
// Every u64 is naturally aligned, exactly as the kernel's __aligned_u64 demands.

struct uapi_iommu_destroy {
    uint32_t size;
    uint32_t id;
};

struct uapi_iommu_ioas_alloc {
    uint32_t size;
    uint32_t flags;
    uint32_t out_ioas_id;
};

struct uapi_iommu_ioas_map {
    uint32_t size;
    uint32_t flags;
    uint32_t ioas_id;
    uint32_t reserved;
    uint64_t user_va;
    uint64_t length;
    uint64_t iova;          // in with FIXED_IOVA, out otherwise
};

struct uapi_iommu_ioas_unmap {
    uint32_t size;
    uint32_t ioas_id;
    uint64_t iova;
    uint64_t length;        // out: bytes actually unmapped
};

struct uapi_iommu_iova_range {
    uint64_t start;
    uint64_t last;
};

struct uapi_iommu_ioas_iova_ranges {
    uint32_t size;
    uint32_t ioas_id;
    uint32_t num_iovas;     // in: array capacity, out: ranges that exist
    uint32_t reserved;
    uint64_t allowed_iovas; // user pointer to uapi_iommu_iova_range[num_iovas]
    uint64_t out_iova_alignment;
};

struct uapi_iommu_hwpt_alloc {
    uint32_t size;
    uint32_t flags;
    uint32_t dev_id;
    uint32_t pt_id;
    uint32_t out_hwpt_id;
    uint32_t reserved;
    uint32_t data_type;     // everything from here on is optional for the kernel (min size 24)
    uint32_t data_len;
    uint64_t data_uptr;
    uint32_t fault_id;
    uint32_t reserved2;
};

// Driver data for a nested HWPT on VT-d: the guest's first-stage table.
struct uapi_iommu_hwpt_vtd_s1 {
    uint64_t flags;         // UAPI_IOMMU_VTD_S1_*
    uint64_t pgtbl_addr;    // guest-physical address of the first-stage root
    uint32_t addr_width;    // 48 (4-level) or 57 (5-level)
    uint32_t reserved;
};

struct uapi_iommu_hw_info {
    uint32_t size;
    uint32_t flags;
    uint32_t dev_id;
    uint32_t data_len;      // in: buffer size, out: driver data size
    uint64_t data_uptr;
    uint32_t out_data_type;
    // Reserved (zero) in QEMU 10.0's headers; newer kernels report the PASID width in the first byte.
    uint8_t out_max_pasid_log2;
    uint8_t reserved[3];
    uint64_t out_capabilities;
};

struct uapi_iommu_hw_info_vtd {
    uint32_t flags;         // UAPI_IOMMU_HW_INFO_VTD_ERRATA_*
    uint32_t reserved;
    uint64_t cap_reg;
    uint64_t ecap_reg;
};

struct uapi_iommu_hwpt_vtd_s1_invalidate {
    uint64_t addr;          // 4 KiB aligned
    uint64_t npages;        // UINT64_MAX with addr 0: everything
    uint32_t flags;         // UAPI_IOMMU_VTD_INV_FLAGS_LEAF
    uint32_t reserved;
};

struct uapi_iommu_hwpt_invalidate {
    uint32_t size;
    uint32_t hwpt_id;
    uint64_t data_uptr;
    uint32_t data_type;
    uint32_t entry_len;
    uint32_t entry_num;     // in: entries, out: entries handled (also on error)
    uint32_t reserved;
};

struct uapi_iommu_fault_alloc {
    uint32_t size;
    uint32_t flags;
    uint32_t out_fault_id;
    uint32_t out_fault_fd;
};

struct uapi_iommu_hwpt_pgfault {
    uint32_t flags;
    uint32_t dev_id;
    uint32_t pasid;
    uint32_t grpid;
    uint32_t perm;
    uint32_t reserved;
    uint64_t addr;
    uint32_t length;
    uint32_t cookie;
};

struct uapi_iommu_hwpt_page_response {
    uint32_t cookie;
    uint32_t code;
};

struct uapi_iommu_viommu_alloc {
    uint32_t size;
    uint32_t flags;
    uint32_t type;
    uint32_t dev_id;
    uint32_t hwpt_id;
    uint32_t out_viommu_id;
};

struct uapi_iommu_vdevice_alloc {
    uint32_t size;
    uint32_t viommu_id;
    uint32_t dev_id;
    uint32_t out_vdevice_id;
    uint64_t virt_id;
};

// ---- VFIO device cdev structures ------------------------------------------------------------------

struct uapi_vfio_device_bind_iommufd {
    uint32_t argsz;
    uint32_t flags;
    int32_t iommufd;
    uint32_t out_devid;
};

struct uapi_vfio_device_attach_iommufd_pt {
    uint32_t argsz;
    uint32_t flags;
    uint32_t pt_id;         // in: IOAS or HWPT, out: the HWPT actually attached
    uint32_t pasid;         // read only with UAPI_VFIO_DEVICE_ATTACH_PASID (argsz 16)
};

struct uapi_vfio_device_detach_iommufd_pt {
    uint32_t argsz;
    uint32_t flags;
    uint32_t pasid;         // read only with UAPI_VFIO_DEVICE_DETACH_PASID (argsz 12)
};

// Minimum sizes the kernel accepts: offsetofend of the last mandatory field.
#define UAPI_IOMMU_DESTROY_MIN_SIZE          8u
#define UAPI_IOMMU_IOAS_ALLOC_MIN_SIZE       12u
#define UAPI_IOMMU_IOAS_MAP_MIN_SIZE         40u
#define UAPI_IOMMU_IOAS_UNMAP_MIN_SIZE       24u
#define UAPI_IOMMU_IOAS_IOVA_RANGES_MIN_SIZE 32u
#define UAPI_IOMMU_HWPT_ALLOC_MIN_SIZE       24u
#define UAPI_IOMMU_GET_HW_INFO_MIN_SIZE      32u
#define UAPI_IOMMU_HWPT_INVALIDATE_MIN_SIZE  32u
#define UAPI_IOMMU_FAULT_QUEUE_ALLOC_MIN_SIZE 16u
#define UAPI_IOMMU_VIOMMU_ALLOC_MIN_SIZE     24u
#define UAPI_IOMMU_VDEVICE_ALLOC_MIN_SIZE    24u
#define UAPI_VFIO_DEVICE_BIND_MIN_ARGSZ      16u
#define UAPI_VFIO_DEVICE_ATTACH_MIN_ARGSZ    12u
#define UAPI_VFIO_DEVICE_ATTACH_PASID_ARGSZ  16u
#define UAPI_VFIO_DEVICE_DETACH_MIN_ARGSZ    8u
#define UAPI_VFIO_DEVICE_DETACH_PASID_ARGSZ  12u

// The one place SwiftVTd enters the kernel. ioctl(2) is variadic, which Swift cannot call, and its
// errno is thread-local state Swift cannot read reliably after the fact: this returns the result, or
// minus errno on failure.
int uapi_ioctl(int fd, unsigned long request, void *arg);

#endif

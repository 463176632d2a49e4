import LinuxUAPI

/// Typed iommufd and VFIO-cdev calls. Each fills the uAPI struct, goes through the seam, and turns a
/// refusal into a `HostError` that names the ioctl and the object.
public struct IOMMUFDClient {
    public let seam: IoctlSeam

    public init(seam: IoctlSeam = .kernel) { self.seam = seam }

    public func destroy(iommufd: Int32, _ id: ObjectID) throws(HostError) {
        var cmd = uapi_iommu_destroy()
        cmd.size = UInt32(MemoryLayout.size(ofValue: cmd))
        cmd.id = id.rawValue
        if let errno = seam.issue(iommufd, .destroy, &cmd) {
            throw .ioctl(.destroy, errno, "object \(id)")
        }
    }

    public func allocateIOAS(iommufd: Int32) throws(HostError) -> ObjectID {
        var cmd = uapi_iommu_ioas_alloc()
        cmd.size = UInt32(MemoryLayout.size(ofValue: cmd))
        if let errno = seam.issue(iommufd, .ioasAlloc, &cmd) { throw .ioctl(.ioasAlloc, errno, "new IOAS") }
        return ObjectID(rawValue: cmd.out_ioas_id)
    }

    /// Maps `length` bytes of this process's memory at `userVA` to `iova` (FIXED_IOVA).
    public func map(
        iommufd: Int32, ioas: ObjectID, iova: UInt64, length: UInt64, userVA: UInt64, permissions: Permissions
    ) throws(HostError) {
        var cmd = uapi_iommu_ioas_map()
        cmd.size = UInt32(MemoryLayout.size(ofValue: cmd))
        cmd.flags = UAPI_IOMMU_IOAS_MAP_FIXED_IOVA
        if permissions.contains(.read) { cmd.flags |= UAPI_IOMMU_IOAS_MAP_READABLE }
        if permissions.contains(.write) { cmd.flags |= UAPI_IOMMU_IOAS_MAP_WRITEABLE }
        cmd.ioas_id = ioas.rawValue
        cmd.user_va = userVA
        cmd.length = length
        cmd.iova = iova
        if let errno = seam.issue(iommufd, .ioasMap, &cmd) {
            throw .ioctl(.ioasMap, errno, "IOAS \(ioas) iova 0x\(String(iova, radix: 16)) length 0x\(String(length, radix: 16))")
        }
    }

    /// Unmaps exactly [iova, iova + length); returns the bytes the kernel unmapped.
    @discardableResult
    public func unmap(iommufd: Int32, ioas: ObjectID, iova: UInt64, length: UInt64) throws(HostError) -> UInt64 {
        var cmd = uapi_iommu_ioas_unmap()
        cmd.size = UInt32(MemoryLayout.size(ofValue: cmd))
        cmd.ioas_id = ioas.rawValue
        cmd.iova = iova
        cmd.length = length
        if let errno = seam.issue(iommufd, .ioasUnmap, &cmd) {
            throw .ioctl(.ioasUnmap, errno, "IOAS \(ioas) iova 0x\(String(iova, radix: 16)) length 0x\(String(length, radix: 16))")
        }
        return cmd.length
    }

    /// A stage-2 HWPT on an IOAS that nested HWPTs can sit on.
    public func allocateNestParent(iommufd: Int32, device: ObjectID, ioas: ObjectID) throws(HostError) -> ObjectID {
        var cmd = uapi_iommu_hwpt_alloc()
        cmd.size = UInt32(MemoryLayout.size(ofValue: cmd))
        cmd.flags = UAPI_IOMMU_HWPT_ALLOC_NEST_PARENT
        cmd.dev_id = device.rawValue
        cmd.pt_id = ioas.rawValue
        if let errno = seam.issue(iommufd, .hwptAlloc, &cmd) {
            throw .ioctl(.hwptAlloc, errno, "NEST_PARENT HWPT for device \(device) on IOAS \(ioas)")
        }
        return ObjectID(rawValue: cmd.out_hwpt_id)
    }

    /// A plain paging HWPT on an IOAS (what VFIO allocates for itself).
    public func allocatePaging(iommufd: Int32, device: ObjectID, ioas: ObjectID) throws(HostError) -> ObjectID {
        var cmd = uapi_iommu_hwpt_alloc()
        cmd.size = UInt32(MemoryLayout.size(ofValue: cmd))
        cmd.dev_id = device.rawValue
        cmd.pt_id = ioas.rawValue
        if let errno = seam.issue(iommufd, .hwptAlloc, &cmd) {
            throw .ioctl(.hwptAlloc, errno, "HWPT for device \(device) on IOAS \(ioas)")
        }
        return ObjectID(rawValue: cmd.out_hwpt_id)
    }

    /// A nested HWPT whose first stage is the guest's table.
    public func allocateNested(
        iommufd: Int32, device: ObjectID, parent: ObjectID, table: FirstLevelTable
    ) throws(HostError) -> ObjectID {
        var data = uapi_iommu_hwpt_vtd_s1()
        data.flags = table.flags.rawValue
        data.pgtbl_addr = table.rootPointer
        data.addr_width = table.addressWidth.rawValue
        var cmd = uapi_iommu_hwpt_alloc()
        cmd.size = UInt32(MemoryLayout.size(ofValue: cmd))
        cmd.dev_id = device.rawValue
        cmd.pt_id = parent.rawValue
        cmd.data_type = UAPI_IOMMU_HWPT_DATA_VTD_S1
        cmd.data_len = UInt32(MemoryLayout.size(ofValue: data))
        let errno = withUnsafeMutableBytes(of: &data) { bytes -> Errno? in
            cmd.data_uptr = UInt64(UInt(bitPattern: bytes.baseAddress))
            return seam.issue(iommufd, .hwptAlloc, &cmd)
        }
        if let errno {
            throw .ioctl(.hwptAlloc, errno, "nested VTD_S1 HWPT for device \(device) on parent \(parent), \(table)")
        }
        return ObjectID(rawValue: cmd.out_hwpt_id)
    }

    /// The highest IOVA the IOAS can map (IOMMU_IOAS_IOVA_RANGES: the aperture minus reserved
    /// ranges such as the MSI window; its last allowed byte bounds what shadowing can map). Nil
    /// when the kernel reports no allowed range at all.
    public func lastIOVA(iommufd: Int32, ioas: ObjectID) throws(HostError) -> UInt64? {
        // A few dozen ranges at most on real hosts; more than this many is not an answer to trust.
        let capacity = 64
        var ranges = [uapi_iommu_iova_range](repeating: uapi_iommu_iova_range(), count: capacity)
        var cmd = uapi_iommu_ioas_iova_ranges()
        cmd.size = UInt32(MemoryLayout.size(ofValue: cmd))
        cmd.ioas_id = ioas.rawValue
        cmd.num_iovas = UInt32(capacity)
        let errno = ranges.withUnsafeMutableBytes { bytes -> Errno? in
            cmd.allowed_iovas = UInt64(UInt(bitPattern: bytes.baseAddress))
            return seam.issue(iommufd, .ioasIOVARanges, &cmd)
        }
        if let errno { throw .ioctl(.ioasIOVARanges, errno, "IOAS \(ioas)") }
        let count = min(Int(cmd.num_iovas), capacity)
        return ranges.prefix(count).filter { $0.start <= $0.last }.map(\.last).max()
    }

    public func hardwareInfo(iommufd: Int32, device: ObjectID) throws(HostError) -> HostIOMMUInfo {
        var data = uapi_iommu_hw_info_vtd()
        var cmd = uapi_iommu_hw_info()
        cmd.size = UInt32(MemoryLayout.size(ofValue: cmd))
        cmd.dev_id = device.rawValue
        cmd.data_len = UInt32(MemoryLayout.size(ofValue: data))
        let errno = withUnsafeMutableBytes(of: &data) { bytes -> Errno? in
            cmd.data_uptr = UInt64(UInt(bitPattern: bytes.baseAddress))
            return seam.issue(iommufd, .getHWInfo, &cmd)
        }
        if let errno { throw .ioctl(.getHWInfo, errno, "device \(device)") }
        let vtd = cmd.out_data_type == HostIOMMUInfo.intelVTd
        return HostIOMMUInfo(
            type: cmd.out_data_type, cap: vtd ? data.cap_reg : 0, ecap: vtd ? data.ecap_reg : 0,
            readOnlyNestParentErratum: vtd && data.flags & UAPI_IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 != 0,
            capabilities: cmd.out_capabilities, maxPASIDLog2: cmd.out_max_pasid_log2)
    }

    /// Attaches (or atomically replaces) what translates `point` of the device. Returns the HWPT the
    /// kernel attached: `pt` itself, or the automatic domain when `pt` is an IOAS.
    @discardableResult
    public func attach(deviceFD: Int32, _ point: AttachPoint, to pt: ObjectID) throws(HostError) -> ObjectID {
        var cmd = uapi_vfio_device_attach_iommufd_pt()
        cmd.pt_id = pt.rawValue
        if case .pasid(let pasid) = point {
            cmd.argsz = UAPI_VFIO_DEVICE_ATTACH_PASID_ARGSZ
            cmd.flags = UAPI_VFIO_DEVICE_ATTACH_PASID
            cmd.pasid = pasid.rawValue
        } else {
            cmd.argsz = UAPI_VFIO_DEVICE_ATTACH_MIN_ARGSZ
        }
        if let errno = seam.issue(deviceFD, .vfioDeviceAttach, &cmd) {
            throw .ioctl(.vfioDeviceAttach, errno, "\(point) of device fd \(deviceFD) to \(pt)")
        }
        return ObjectID(rawValue: cmd.pt_id)
    }

    /// Leaves `point` with no translation: DMA through it is blocked.
    public func detach(deviceFD: Int32, _ point: AttachPoint) throws(HostError) {
        var cmd = uapi_vfio_device_detach_iommufd_pt()
        if case .pasid(let pasid) = point {
            cmd.argsz = UAPI_VFIO_DEVICE_DETACH_PASID_ARGSZ
            cmd.flags = UAPI_VFIO_DEVICE_DETACH_PASID
            cmd.pasid = pasid.rawValue
        } else {
            cmd.argsz = UAPI_VFIO_DEVICE_DETACH_MIN_ARGSZ
        }
        if let errno = seam.issue(deviceFD, .vfioDeviceDetach, &cmd) {
            throw .ioctl(.vfioDeviceDetach, errno, "\(point) of device fd \(deviceFD)")
        }
    }

    /// Sends `entries` to a nested HWPT in one call. On failure returns how many the kernel handled
    /// (its `entry_num` write-back) with the errno.
    func invalidate(
        iommufd: Int32, hwpt: ObjectID, entries: UnsafeMutableBufferPointer<uapi_iommu_hwpt_vtd_s1_invalidate>
    ) -> (processed: Int, errno: Errno?) {
        var cmd = uapi_iommu_hwpt_invalidate()
        cmd.size = UInt32(MemoryLayout.size(ofValue: cmd))
        cmd.hwpt_id = hwpt.rawValue
        cmd.data_uptr = UInt64(UInt(bitPattern: entries.baseAddress))
        cmd.data_type = UAPI_IOMMU_HWPT_INVALIDATE_DATA_VTD_S1
        cmd.entry_len = UInt32(MemoryLayout<uapi_iommu_hwpt_vtd_s1_invalidate>.stride)
        cmd.entry_num = UInt32(entries.count)
        let errno = seam.issue(iommufd, .hwptInvalidate, &cmd)
        return (Int(cmd.entry_num), errno)
    }

    /// Binds a VFIO device cdev to an iommufd (QEMU does this; tests and tools use it to set up).
    public func bind(deviceFD: Int32, iommufd: Int32) throws(HostError) -> ObjectID {
        var cmd = uapi_vfio_device_bind_iommufd()
        cmd.argsz = UInt32(MemoryLayout.size(ofValue: cmd))
        cmd.iommufd = iommufd
        if let errno = seam.issue(deviceFD, .vfioDeviceBindIOMMUFD, &cmd) {
            throw .ioctl(.vfioDeviceBindIOMMUFD, errno, "device fd \(deviceFD) to iommufd \(iommufd)")
        }
        return ObjectID(rawValue: cmd.out_devid)
    }
}

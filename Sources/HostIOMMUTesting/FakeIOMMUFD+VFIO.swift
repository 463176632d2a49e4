import HostIOMMU
import LinuxUAPI

// VFIO device cdev ioctls of the fake kernel (drivers/vfio/device_cdev.c and iommufd/device.c).
extension FakeIOMMUFD {
    func vfioIoctl(_ file: DeviceFile, _ request: IoctlRequest, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        switch request {
        case .vfioDeviceBindIOMMUFD: try bind(file, argument)
        case .vfioDeviceAttach: try attach(file, argument)
        case .vfioDeviceDetach: try detach(file, argument)
        default: throw .enotty
        }
    }

    /// VFIO reads `minsz` bytes and checks `argsz` covers them; the rest is ignored.
    private func vfioArgument<T: UserStruct>(_: T.Type, _ argument: UnsafeMutableRawPointer, minSize: UInt32)
        throws(Errno) -> T
    {
        let argsz = argument.loadUnaligned(as: UInt32.self)
        if argsz < minSize { throw .einval }
        var value = T()
        withUnsafeMutableBytes(of: &value) { $0.baseAddress!.copyMemory(from: argument, byteCount: Int(minSize)) }
        return value
    }

    private func bind(_ file: DeviceFile, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        var cmd = try vfioArgument(
            uapi_vfio_device_bind_iommufd.self, argument, minSize: UAPI_VFIO_DEVICE_BIND_MIN_ARGSZ)
        if cmd.flags != 0 || cmd.iommufd < 0 || file.context != nil { throw .einval }
        guard let context = iommufds[cmd.iommufd] else {
            throw deviceFiles[cmd.iommufd] != nil || faultFiles[cmd.iommufd] != nil ? .ebadfd : .ebadf
        }
        file.context = context
        file.deviceID = context.insert(.device(Device(file: file)))
        cmd.out_devid = file.deviceID
        argument.storeBytes(of: cmd.out_devid, toByteOffset: 12, as: UInt32.self)
    }

    private func attach(_ file: DeviceFile, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        let cmd = try vfioArgument(
            uapi_vfio_device_attach_iommufd_pt.self, argument, minSize: UAPI_VFIO_DEVICE_ATTACH_MIN_ARGSZ)
        let point = try attachPoint(
            argument, flags: cmd.flags, pasidFlag: UAPI_VFIO_DEVICE_ATTACH_PASID,
            pasidArgsz: UAPI_VFIO_DEVICE_ATTACH_PASID_ARGSZ)
        guard let context = file.context else { throw .einval }
        let host = file.profile.host
        if case .pasid = point, !(file.profile.pasidCapable && host.pasidSupported) { throw .eopnotsupp }
        guard let target = context.objects[cmd.pt_id] else { throw .enoent }

        let hwpt: UInt32
        switch target {
        case .ioas:
            hwpt = automaticDomain(context, ioas: cmd.pt_id, host: host)
        case .paging(let paging):
            // A domain built for a wider IOMMU cannot be walked by this one.
            if paging.host.addressWidth > host.addressWidth { throw .enodev }
            hwpt = cmd.pt_id
        case .nested(let nested):
            if case .paging(let parent)? = context.objects[nested.parent], parent.host.addressWidth > host.addressWidth {
                throw .enodev
            }
            // intel_pasid_setup_nested: checked at attach, not at allocation.
            let s1 = nested.data
            if s1.addr_width != 48 && s1.addr_width != 57 { throw .einval }
            if s1.addr_width == 57 && !host.fl5lp { throw .einval }
            if s1.flags & UAPI_IOMMU_VTD_S1_SRE != 0 && !host.srs { throw .einval }
            if s1.flags & UAPI_IOMMU_VTD_S1_EAFE != 0 && !host.eafs { throw .einval }
            if case .pasid = point, case .paging(let parent)? = context.objects[nested.parent], parent.dirtyTracking {
                throw .einval
            }
            hwpt = cmd.pt_id
        default:
            throw .einval
        }
        // Attaching an attached point replaces its HWPT atomically.
        let previous = file.attachments[point]
        file.attachments[point] = hwpt
        if let previous, previous != hwpt { dropIfUnusedAutomatic(context, previous) }
        argument.storeBytes(of: hwpt, toByteOffset: 8, as: UInt32.self)
    }

    /// The PASID flag is the only one known; with it, `argsz` must reach the pasid field (the last u32).
    private func attachPoint(_ argument: UnsafeMutableRawPointer, flags: UInt32, pasidFlag: UInt32, pasidArgsz: UInt32)
        throws(Errno) -> AttachPoint
    {
        if flags & ~pasidFlag != 0 { throw .einval }
        guard flags & pasidFlag != 0 else { return .requestsWithoutPASID }
        if argument.loadUnaligned(as: UInt32.self) < pasidArgsz { throw .einval }
        let pasid = argument.loadUnaligned(fromByteOffset: Int(pasidArgsz) - 4, as: UInt32.self)
        return .pasid(PASID(rawValue: pasid))
    }

    /// Attaching to an IOAS picks (or creates) the kernel-owned paging domain for it.
    private func automaticDomain(_ context: Context, ioas: UInt32, host: HostProfile) -> UInt32 {
        for (id, object) in context.objects {
            if case .paging(let p) = object, p.automatic, p.ioas == ioas, p.host == host { return id }
        }
        return context.insert(.paging(Paging(ioas: ioas, flags: 0, automatic: true, host: host, faultID: nil)))
    }

    private func detach(_ file: DeviceFile, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        let cmd = try vfioArgument(
            uapi_vfio_device_detach_iommufd_pt.self, argument, minSize: UAPI_VFIO_DEVICE_DETACH_MIN_ARGSZ)
        let point = try attachPoint(
            argument, flags: cmd.flags, pasidFlag: UAPI_VFIO_DEVICE_DETACH_PASID,
            pasidArgsz: UAPI_VFIO_DEVICE_DETACH_PASID_ARGSZ)
        guard let context = file.context else { throw .einval }
        // Detaching what is not attached is quietly nothing.
        if let previous = file.attachments.removeValue(forKey: point) { dropIfUnusedAutomatic(context, previous) }
    }
}

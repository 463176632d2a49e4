import LinuxUAPI
import Testing

@testable import HostIOMMU
import HostIOMMUTesting

/// VTD-FACTS Part E: the VFIO device cdev's BIND, ATTACH and DETACH, and the VT-d driver's
/// attach-time checks of a nested HWPT.
@Suite struct FakeVFIORulesTests {
    @Test func bindRules() {
        let kernel = Kernel()
        let fd = kernel.fake.openDevice()
        func bind(argsz: UInt32 = 16, flags: UInt32 = 0, iommufd: Int32) -> Errno? {
            var cmd = uapi_vfio_device_bind_iommufd(argsz: argsz, flags: flags, iommufd: iommufd, out_devid: 0)
            return kernel.call(.vfioDeviceBindIOMMUFD, &cmd, fd: fd)
        }
        #expect(bind(argsz: 12, iommufd: kernel.iommufd) == .einval)
        #expect(bind(flags: 1, iommufd: kernel.iommufd) == .einval)
        #expect(bind(iommufd: -1) == .einval)
        #expect(bind(iommufd: 4242) == .ebadf)
        #expect(bind(iommufd: kernel.fake.openDevice()) == .ebadfd)
        #expect(bind(iommufd: kernel.iommufd) == nil)
        #expect(bind(iommufd: kernel.iommufd) == .einval)  // already bound
        #expect(kernel.fake.objects(iommufd: kernel.iommufd) == [1: .device])
    }

    @Test func attachArgumentRules() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        var cmd = Command.attach(pt: device.hwptID)
        cmd.argsz = 8
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: device.deviceFD) == .einval)
        cmd = Command.attach(pt: device.hwptID)
        cmd.flags = 2
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: device.deviceFD) == .einval)
        cmd = Command.attach(pt: device.hwptID, pasid: 1)
        cmd.argsz = 12  // PASID flag needs the pasid field
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: device.deviceFD) == .einval)
        cmd = Command.attach(pt: 99)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: device.deviceFD) == .enoent)
        cmd = Command.attach(pt: device.deviceID)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: device.deviceFD) == .einval)
        let unbound = kernel.fake.openDevice()
        cmd = Command.attach(pt: device.hwptID)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: unbound) == .einval)
    }

    @Test func pasidAttachNeedsPASIDOnDeviceAndHost() throws {
        let kernel = Kernel()
        let noPASID = try kernel.device(1, profile: .init(pasidCapable: false))
        var cmd = Command.attach(pt: noPASID.hwptID, pasid: 5)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: noPASID.deviceFD) == .eopnotsupp)
        let hostWithout = try kernel.device(2, profile: .init(host: .nesting(pasidBits: 0)))
        cmd = Command.attach(pt: hostWithout.hwptID, pasid: 5)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: hostWithout.deviceFD) == .eopnotsupp)
        let capable = try kernel.device(3)
        cmd = Command.attach(pt: capable.hwptID, pasid: 5)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: capable.deviceFD) == nil)
        #expect(kernel.fake.attachment(deviceFD: capable.deviceFD, .pasid(PASID(rawValue: 5))) == capable.hwptID)
    }

    @Test func attachingAnIOASWritesBackTheAutomaticDomainWhichDiesWithItsLastDevice() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        var cmd = Command.attach(pt: device.ioasID)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: device.deviceFD) == nil)
        let auto = ObjectID(rawValue: cmd.pt_id)
        #expect(auto != device.ioasID)
        #expect(kernel.fake.objects(iommufd: kernel.iommufd)[auto] == .hwptPaging(ioas: device.ioasID, nestParent: false, automatic: true))
        // Replacing it with VFIO's HWPT again frees the automatic domain.
        try kernel.client.attach(deviceFD: device.deviceFD, .requestsWithoutPASID, to: device.hwptID)
        #expect(kernel.fake.objects(iommufd: kernel.iommufd)[auto] == nil)
    }

    @Test func nestedAttachChecksTheTableAgainstTheHost() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        let parent = try kernel.nestParent(device)
        func attachNested(_ table: FirstLevelTable) throws -> Errno? {
            let hwpt = try kernel.client.allocateNested(
                iommufd: kernel.iommufd, device: device.deviceID, parent: parent, table: table)
            var cmd = Command.attach(pt: hwpt)
            return kernel.call(.vfioDeviceAttach, &cmd, fd: device.deviceFD)
        }
        // Allocation accepts them all; attach is where the VT-d driver looks.
        #expect(try attachNested(FirstLevelTable(rootPointer: 0x1000, addressWidth: .bits57)) == .einval)
        #expect(try attachNested(FirstLevelTable(rootPointer: 0x1000, flags: .extendedAccessed)) == .einval)
        #expect(try attachNested(FirstLevelTable(rootPointer: 0x1000, flags: .supervisorRequests)) == nil)
        let noSRS = try kernel.device(2, profile: .init(host: .init(cap: FakeIOMMUFD.HostProfile.nesting().cap,
            ecap: FakeIOMMUFD.HostProfile.nesting().ecap & ~(1 << 31))))
        let parent2 = try kernel.nestParent(noSRS)
        let hwpt = try kernel.client.allocateNested(
            iommufd: kernel.iommufd, device: noSRS.deviceID, parent: parent2,
            table: FirstLevelTable(rootPointer: 0x1000, flags: .supervisorRequests))
        var cmd = Command.attach(pt: hwpt)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: noSRS.deviceFD) == .einval)
        let fiveLevel = try kernel.device(3, profile: .init(host: .nesting(fiveLevel: true, extendedAccessed: true)))
        let parent3 = try kernel.nestParent(fiveLevel)
        let wide = try kernel.client.allocateNested(
            iommufd: kernel.iommufd, device: fiveLevel.deviceID, parent: parent3,
            table: FirstLevelTable(rootPointer: 0x1000, addressWidth: .bits57, flags: .extendedAccessed))
        cmd = Command.attach(pt: wide)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: fiveLevel.deviceFD) == nil)
    }

    @Test func pasidAttachOfNestedOverADirtyTrackingParentIsEINVAL() throws {
        let kernel = Kernel()
        var host = FakeIOMMUFD.HostProfile.nesting()
        host.dirtyTracking = true
        let device = try kernel.device(profile: .init(host: host))
        var alloc = Command.hwptAlloc(
            device: device.deviceID, pt: device.ioasID,
            flags: UAPI_IOMMU_HWPT_ALLOC_NEST_PARENT | UAPI_IOMMU_HWPT_ALLOC_DIRTY_TRACKING)
        #expect(kernel.call(.hwptAlloc, &alloc) == nil)
        let nested = try kernel.client.allocateNested(
            iommufd: kernel.iommufd, device: device.deviceID, parent: ObjectID(rawValue: alloc.out_hwpt_id), table: .guestRoot)
        var cmd = Command.attach(pt: nested, pasid: 3)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: device.deviceFD) == .einval)
        cmd = Command.attach(pt: nested)
        #expect(kernel.call(.vfioDeviceAttach, &cmd, fd: device.deviceFD) == nil)
    }

    @Test func aStage2BuiltForAWiderIOMMUIsENODEVOnANarrowerOne() throws {
        let kernel = Kernel()
        let wide = try kernel.device(1, profile: .init(host: .nesting(addressWidth: 57, fiveLevel: true)))
        let narrow = try kernel.device(2, ioas: wide.ioasID)
        let parent = try kernel.nestParent(wide)
        let nested = try kernel.client.allocateNested(
            iommufd: kernel.iommufd, device: wide.deviceID, parent: parent, table: .guestRoot)
        #expect(errnoOf { try kernel.client.attach(deviceFD: narrow.deviceFD, .requestsWithoutPASID, to: parent) } == .enodev)
        #expect(errnoOf { try kernel.client.attach(deviceFD: narrow.deviceFD, .requestsWithoutPASID, to: nested) } == .enodev)
        // The other way round is fine.
        let narrowParent = try kernel.nestParent(narrow)
        #expect(errnoOf { try kernel.client.attach(deviceFD: wide.deviceFD, .requestsWithoutPASID, to: narrowParent) } == nil)
    }

    @Test func detachRules() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        var cmd = uapi_vfio_device_detach_iommufd_pt(argsz: 4, flags: 0, pasid: 0)
        #expect(kernel.call(.vfioDeviceDetach, &cmd, fd: device.deviceFD) == .einval)
        cmd = uapi_vfio_device_detach_iommufd_pt(argsz: 8, flags: 2, pasid: 0)
        #expect(kernel.call(.vfioDeviceDetach, &cmd, fd: device.deviceFD) == .einval)
        cmd = uapi_vfio_device_detach_iommufd_pt(argsz: 8, flags: UAPI_VFIO_DEVICE_DETACH_PASID, pasid: 1)
        #expect(kernel.call(.vfioDeviceDetach, &cmd, fd: device.deviceFD) == .einval)
        // Detaching a PASID that was never attached is quietly nothing.
        cmd = uapi_vfio_device_detach_iommufd_pt(argsz: 12, flags: UAPI_VFIO_DEVICE_DETACH_PASID, pasid: 1)
        #expect(kernel.call(.vfioDeviceDetach, &cmd, fd: device.deviceFD) == nil)
        cmd = uapi_vfio_device_detach_iommufd_pt(argsz: 8, flags: 0, pasid: 0)
        #expect(kernel.call(.vfioDeviceDetach, &cmd, fd: device.deviceFD) == nil)
        #expect(kernel.fake.attachment(deviceFD: device.deviceFD) == nil)
        var destroy = uapi_iommu_destroy(size: 8, id: device.hwptID.rawValue)
        #expect(kernel.call(.destroy, &destroy) == nil)  // nothing holds it now
    }
}

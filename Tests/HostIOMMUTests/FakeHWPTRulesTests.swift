import LinuxUAPI
import Testing

@testable import HostIOMMU
import HostIOMMUTesting

/// VTD-FACTS Part E: IOMMU_HWPT_ALLOC (paging and nested) and IOMMU_GET_HW_INFO.
@Suite struct FakeHWPTRulesTests {
    @Test func allocChecksReservedDataAndIDs() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        var cmd = Command.hwptAlloc(device: device.deviceID, pt: device.ioasID)
        cmd.reserved = 1
        #expect(kernel.call(.hwptAlloc, &cmd) == .eopnotsupp)
        cmd = Command.hwptAlloc(device: device.deviceID, pt: device.ioasID)
        cmd.data_len = 24  // data without a type
        #expect(kernel.call(.hwptAlloc, &cmd) == .einval)
        cmd = Command.hwptAlloc(device: device.deviceID, pt: device.ioasID)
        cmd.data_type = UAPI_IOMMU_HWPT_DATA_VTD_S1  // a type without data
        #expect(kernel.call(.hwptAlloc, &cmd) == .einval)
        cmd = Command.hwptAlloc(device: 99, pt: device.ioasID)
        #expect(kernel.call(.hwptAlloc, &cmd) == .enoent)
        cmd = Command.hwptAlloc(device: device.deviceID, pt: 99)
        #expect(kernel.call(.hwptAlloc, &cmd) == .einval)  // bad pt_id is EINVAL, not ENOENT
        cmd = Command.hwptAlloc(device: device.deviceID, pt: device.deviceID)
        #expect(kernel.call(.hwptAlloc, &cmd) == .einval)
    }

    @Test func pagingAllocFlagRules() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        var cmd = Command.hwptAlloc(device: device.deviceID, pt: device.ioasID, flags: 1 << 7)
        #expect(kernel.call(.hwptAlloc, &cmd) == .eopnotsupp)
        cmd = Command.hwptAlloc(device: device.deviceID, pt: device.ioasID, flags: UAPI_IOMMU_HWPT_ALLOC_DIRTY_TRACKING)
        #expect(kernel.call(.hwptAlloc, &cmd) == .eopnotsupp)  // host has no dirty tracking
        var data = uapi_iommu_hwpt_vtd_s1()
        withUnsafeMutableBytes(of: &data) { bytes in
            cmd = Command.hwptAlloc(device: device.deviceID, pt: device.ioasID)
            cmd.data_type = UAPI_IOMMU_HWPT_DATA_VTD_S1
            cmd.data_len = 24
            cmd.data_uptr = UInt64(UInt(bitPattern: bytes.baseAddress))
            #expect(kernel.call(.hwptAlloc, &cmd) == .eopnotsupp)  // user data on a paging HWPT
        }
        cmd = Command.hwptAlloc(device: device.deviceID, pt: device.ioasID, flags: UAPI_IOMMU_HWPT_ALLOC_FAULT_ID_VALID)
        cmd.fault_id = device.ioasID.rawValue
        #expect(kernel.call(.hwptAlloc, &cmd) == .enoent)  // not a fault object

        let plain = try kernel.device(2, profile: .init(host: .withoutNesting))
        cmd = Command.hwptAlloc(device: plain.deviceID, pt: plain.ioasID, flags: UAPI_IOMMU_HWPT_ALLOC_NEST_PARENT)
        #expect(kernel.call(.hwptAlloc, &cmd) == .eopnotsupp)
    }

    func nestedAlloc(
        _ kernel: Kernel, device: AssignedDevice, parent: ObjectID, flags: UInt32 = 0, type: UInt32 = UAPI_IOMMU_HWPT_DATA_VTD_S1,
        length: UInt32 = 24, tail: UInt8 = 0, nullPointer: Bool = false
    ) -> Errno? {
        var buffer = [UInt8](repeating: 0, count: 64)
        buffer[8] = 0x10  // pgtbl_addr 0x1000
        buffer[16] = 48  // addr_width
        buffer[30] = tail
        return buffer.withUnsafeMutableBytes { bytes in
            var cmd = Command.hwptAlloc(device: device.deviceID, pt: parent, flags: flags)
            cmd.data_type = type
            cmd.data_len = length
            cmd.data_uptr = nullPointer ? 0 : UInt64(UInt(bitPattern: bytes.baseAddress))
            return kernel.call(.hwptAlloc, &cmd)
        }
    }

    @Test func nestedAllocRules() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        let parent = try kernel.nestParent(device)
        #expect(nestedAlloc(kernel, device: device, parent: parent) == nil)
        #expect(nestedAlloc(kernel, device: device, parent: parent, flags: UAPI_IOMMU_HWPT_ALLOC_NEST_PARENT) == .eopnotsupp)
        #expect(nestedAlloc(kernel, device: device, parent: device.hwptID) == .einval)  // not a nest parent
        #expect(nestedAlloc(kernel, device: device, parent: parent, type: UAPI_IOMMU_HWPT_DATA_ARM_SMMUV3) == .eopnotsupp)
        #expect(nestedAlloc(kernel, device: device, parent: parent, length: 16) == .einval)
        #expect(nestedAlloc(kernel, device: device, parent: parent, length: 32) == nil)
        #expect(nestedAlloc(kernel, device: device, parent: parent, length: 32, tail: 1) == .e2big)
        #expect(nestedAlloc(kernel, device: device, parent: parent, nullPointer: true) == .efault)
        // Nested on nested, and nested on an automatic domain, are EINVAL.
        let nested = try kernel.client.allocateNested(
            iommufd: kernel.iommufd, device: device.deviceID, parent: parent, table: .guestRoot)
        #expect(nestedAlloc(kernel, device: device, parent: nested) == .einval)
        let auto = try kernel.client.attach(deviceFD: device.deviceFD, .requestsWithoutPASID, to: device.ioasID)
        #expect(nestedAlloc(kernel, device: device, parent: auto) == .einval)
        // A nest parent without driver data cannot make a nested HWPT.
        var cmd = Command.hwptAlloc(device: device.deviceID, pt: parent)
        #expect(kernel.call(.hwptAlloc, &cmd) == .eopnotsupp)
    }

    @Test func hwInfoReportsVTdRegistersAndTheErratum() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        let info = try kernel.client.hardwareInfo(iommufd: kernel.iommufd, device: device.deviceID)
        let host = FakeIOMMUFD.HostProfile.nesting()
        #expect(info.type == 1)
        #expect(info.cap.rawValue == host.cap)
        #expect(info.ecap.rawValue == host.ecap)
        #expect(info.readOnlyNestParentErratum)
        #expect(info.ecap.nestedTranslation && info.ecap.firstLevelTranslation && info.ecap.pasidWidth == 20)
        #expect(info.cap.maximumGuestAddressWidth == 48 && info.cap.firstLevel1GPages)
    }

    @Test func hwInfoCopiesWhatFitsZeroesTheRestAndAlwaysReportsTheKernelLength() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        var buffer = [UInt8](repeating: 0xff, count: 40)
        var cmd = uapi_iommu_hw_info()
        cmd.size = 40
        cmd.dev_id = device.deviceID.rawValue
        cmd.data_len = 40
        buffer.withUnsafeMutableBytes { bytes in
            cmd.data_uptr = UInt64(UInt(bitPattern: bytes.baseAddress))
            #expect(kernel.call(.getHWInfo, &cmd) == nil)
        }
        #expect(cmd.data_len == 24 && cmd.out_data_type == 1)
        #expect(buffer[24..<40].allSatisfy { $0 == 0 })
        #expect(buffer[0] == 1)  // flags: erratum

        // A type query with no buffer.
        cmd.data_len = 0
        cmd.data_uptr = 0
        #expect(kernel.call(.getHWInfo, &cmd) == nil)
        #expect(cmd.data_len == 24)

        cmd.data_len = 8
        #expect(kernel.call(.getHWInfo, &cmd) == .efault)
        cmd.flags = 1
        #expect(kernel.call(.getHWInfo, &cmd) == .eopnotsupp)
        cmd.flags = 0
        cmd.reserved.0 = 1
        #expect(kernel.call(.getHWInfo, &cmd) == .eopnotsupp)
        cmd.reserved.0 = 0
        cmd.dev_id = 99
        #expect(kernel.call(.getHWInfo, &cmd) == .enoent)
    }
}

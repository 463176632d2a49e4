import LinuxUAPI
import Testing

@testable import HostIOMMU
import HostIOMMUTesting

/// VTD-FACTS Part E: IOMMU_IOAS_ALLOC, _MAP, _UNMAP and _IOVA_RANGES.
@Suite struct FakeIOASRulesTests {
    let fixed = UAPI_IOMMU_IOAS_MAP_FIXED_IOVA
    let rw = UAPI_IOMMU_IOAS_MAP_READABLE | UAPI_IOMMU_IOAS_MAP_WRITEABLE

    @Test func ioasAllocRejectsFlags() {
        let kernel = Kernel()
        var cmd = uapi_iommu_ioas_alloc(size: 12, flags: 1, out_ioas_id: 0)
        #expect(kernel.call(.ioasAlloc, &cmd) == .eopnotsupp)
    }

    @Test func mapArgumentChecksInKernelOrder() throws {
        let kernel = Kernel()
        let ioas = try kernel.ioas()
        func map(_ iova: UInt64, _ length: UInt64, _ flags: UInt32, ioasID: ObjectID? = nil, reserved: UInt32 = 0) -> Errno? {
            var cmd = Command.map(ioas: ioasID ?? ioas, iova: iova, length: length, flags: flags)
            cmd.reserved = reserved
            return kernel.call(.ioasMap, &cmd)
        }
        #expect(map(0x1000, 0x1000, fixed | rw | 1 << 3) == .eopnotsupp)
        #expect(map(0x1000, 0x1000, fixed | rw, reserved: 1) == .eopnotsupp)
        #expect(map(UInt64.max, 0x1000, fixed | rw) == .eoverflow)
        #expect(map(0x1000, UInt64.max, fixed | rw) == .eoverflow)
        #expect(map(0x1000, 0x1000, fixed) == .einval)  // neither readable nor writeable
        #expect(map(0x1000, 0x1000, fixed | rw, ioasID: 99) == .enoent)
        #expect(map(0x1000, 0, fixed | rw) == .einval)
        #expect(map(0x1000, 0x800, fixed | rw) == .einval)
        #expect(map(0x1800, 0x1000, fixed | rw) == .einval)
        #expect(map(0xFFFF_FFFF_FFFF_F000, 0x2000, fixed | rw) == .eoverflow)
        #expect(map(0xFEE0_0000, 0x1000, fixed | rw) == .einval)  // MSI window is reserved
        #expect(map(1 << 48, 0x1000, fixed | rw) == .einval)  // beyond the aperture
        #expect(map(0x1000, 0x2000, fixed | rw) == nil)
        #expect(map(0x2000, 0x1000, fixed | rw) == .eexist)
        #expect(map(0x0, 0x2000, fixed | rw) == .eexist)
        #expect(kernel.areas(ioas).map(\.0) == [0x1000])
    }

    @Test func mapWithoutFixedIOVAPicksTheLowestFreeRangeAndReportsIt() throws {
        let kernel = Kernel()
        let ioas = try kernel.ioas()
        try kernel.map(ioas, 0, 0x3000)
        var cmd = Command.map(ioas: ioas, iova: 0, length: 0x2000, flags: rw)
        #expect(kernel.call(.ioasMap, &cmd) == nil)
        #expect(cmd.iova == 0x3000)
        kernel.fake.apertureLast = 0x5fff
        kernel.fake.reservedIOVARanges = []
        cmd = Command.map(ioas: ioas, iova: 0, length: 0x2000, flags: rw)
        #expect(kernel.call(.ioasMap, &cmd) == .enospc)
    }

    @Test func writeableMappingOfReadOnlyUserMemoryFails() throws {
        let kernel = Kernel()
        let ioas = try kernel.ioas()
        kernel.fake.userMemory = [(0x10_0000_0000..<0x10_0001_0000, false)]
        var cmd = Command.map(ioas: ioas, iova: 0x1000, length: 0x1000, flags: fixed | rw)
        #expect(kernel.call(.ioasMap, &cmd) == .efault)
        cmd.flags = fixed | UAPI_IOMMU_IOAS_MAP_READABLE
        #expect(kernel.call(.ioasMap, &cmd) == nil)
        cmd = Command.map(ioas: ioas, iova: 0x8000, length: 0x1000, flags: fixed | UAPI_IOMMU_IOAS_MAP_READABLE)
        cmd.user_va = 0x20_0000_0000
        #expect(kernel.call(.ioasMap, &cmd) == .efault)
    }

    @Test func readOnlyMappingsAndIntelNestParentsExcludeEachOther() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        try kernel.map(device.ioasID, 0x1000, 0x1000, .read)
        // Erratum 772415: the new nest parent cannot take the existing read-only area.
        #expect(throws: HostError.self) { try kernel.nestParent(device) }
        try kernel.client.unmap(iommufd: kernel.iommufd, ioas: device.ioasID, iova: 0x1000, length: 0x1000)
        _ = try kernel.nestParent(device)
        var cmd = Command.map(ioas: device.ioasID, iova: 0x1000, length: 0x1000, flags: fixed | UAPI_IOMMU_IOAS_MAP_READABLE)
        #expect(kernel.call(.ioasMap, &cmd) == .einval)
        cmd.flags = fixed | rw
        #expect(kernel.call(.ioasMap, &cmd) == nil)
    }

    @Test func hostsWithoutTheErratumAcceptReadOnlyMappingsBesideANestParent() throws {
        let kernel = Kernel()
        var host = FakeIOMMUFD.HostProfile.nesting()
        host.readOnlyNestParentErratum = false
        let device = try kernel.device(profile: .init(host: host))
        _ = try kernel.nestParent(device)
        try kernel.map(device.ioasID, 0x1000, 0x1000, .read)
        #expect(kernel.areas(device.ioasID).count == 1)
    }

    @Test func unmapNeverSplitsAnAreaAndReportsBytes() throws {
        let kernel = Kernel()
        let ioas = try kernel.ioas()
        try kernel.map(ioas, 0x10000, 0x4000)
        try kernel.map(ioas, 0x14000, 0x1000)
        var cmd = Command.unmap(ioas: ioas, iova: 0x11000, length: 0x1000)
        #expect(kernel.call(.ioasUnmap, &cmd) == .enoent)
        cmd = Command.unmap(ioas: ioas, iova: 0x10000, length: 0x2000)
        #expect(kernel.call(.ioasUnmap, &cmd) == .enoent)
        #expect(kernel.areas(ioas).count == 2)
        cmd = Command.unmap(ioas: ioas, iova: 0xF000, length: 0x7000)
        #expect(kernel.call(.ioasUnmap, &cmd) == nil)
        #expect(cmd.length == 0x5000)
        #expect(kernel.areas(ioas).isEmpty)
    }

    @Test func unmapStopsAtTheFirstAreaThatSticksOutKeepingEarlierProgress() throws {
        let kernel = Kernel()
        let ioas = try kernel.ioas()
        try kernel.map(ioas, 0x10000, 0x1000)
        try kernel.map(ioas, 0x11000, 0x2000)
        var cmd = Command.unmap(ioas: ioas, iova: 0x10000, length: 0x2000)
        #expect(kernel.call(.ioasUnmap, &cmd) == .enoent)
        #expect(kernel.areas(ioas).map(\.0) == [0x11000])
    }

    @Test func unmapArgumentChecks() throws {
        let kernel = Kernel()
        let ioas = try kernel.ioas()
        var cmd = Command.unmap(ioas: 77, iova: 0, length: 0x1000)
        #expect(kernel.call(.ioasUnmap, &cmd) == .enoent)
        cmd = Command.unmap(ioas: ioas, iova: UInt64.max, length: 0x1000)
        #expect(kernel.call(.ioasUnmap, &cmd) == .eoverflow)
        cmd = Command.unmap(ioas: ioas, iova: 0x1000, length: 0)
        #expect(kernel.call(.ioasUnmap, &cmd) == .einval)
        cmd = Command.unmap(ioas: ioas, iova: 0xFFFF_FFFF_FFFF_F000, length: 0x2000)
        #expect(kernel.call(.ioasUnmap, &cmd) == .eoverflow)
        cmd = Command.unmap(ioas: ioas, iova: 0x1000, length: 0x1000)
        #expect(kernel.call(.ioasUnmap, &cmd) == nil)  // nothing mapped: success, 0 bytes
        #expect(cmd.length == 0)
        kernel.fake.emptyUnmapIsENOENT = true
        cmd = Command.unmap(ioas: ioas, iova: 0x1000, length: 0x1000)
        #expect(kernel.call(.ioasUnmap, &cmd) == .enoent)
    }

    @Test func unmapAllIsIOVAZeroLengthMax() throws {
        let kernel = Kernel()
        let ioas = try kernel.ioas()
        try kernel.map(ioas, 0x1000, 0x1000)
        try kernel.map(ioas, 0x8000_0000, 0x20_0000)
        var cmd = Command.unmap(ioas: ioas, iova: 0, length: UInt64.max)
        #expect(kernel.call(.ioasUnmap, &cmd) == nil)
        #expect(cmd.length == 0x20_1000)
        #expect(kernel.areas(ioas).isEmpty)
    }

    @Test func iovaRangesReportsTheHolesAndTooSmallArraysGetEMSGSIZE() throws {
        let kernel = Kernel()
        let ioas = try kernel.ioas()
        var ranges = [uapi_iommu_iova_range](repeating: .init(), count: 4)
        var cmd = uapi_iommu_ioas_iova_ranges()
        cmd.size = 32
        cmd.ioas_id = ioas.rawValue
        cmd.num_iovas = 1
        ranges.withUnsafeMutableBufferPointer { cmd.allowed_iovas = UInt64(UInt(bitPattern: $0.baseAddress)) }
        #expect(kernel.call(.ioasIOVARanges, &cmd) == .emsgsize)
        #expect(cmd.num_iovas == 2)
        ranges.withUnsafeMutableBufferPointer { buffer in
            cmd.allowed_iovas = UInt64(UInt(bitPattern: buffer.baseAddress))
            #expect(kernel.call(.ioasIOVARanges, &cmd) == nil)
        }
        #expect(cmd.out_iova_alignment == 4096)
        #expect(ranges[0].start == 0 && ranges[0].last == 0xFEDF_FFFF)
        #expect(ranges[1].start == 0xFEF0_0000 && ranges[1].last == (1 << 48) - 1)
        cmd.reserved = 1
        #expect(kernel.call(.ioasIOVARanges, &cmd) == .eopnotsupp)
    }
}

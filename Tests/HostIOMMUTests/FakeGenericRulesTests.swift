import LinuxUAPI
import Testing

@testable import HostIOMMU
import HostIOMMUTesting

/// VTD-FACTS Part E, generic rules: the size prologue, dispatch, object IDs and lifetimes.
@Suite struct FakeGenericRulesTests {
    static let commands: [(IoctlRequest, UInt32, Int)] = [
        (.destroy, 8, 8), (.ioasAlloc, 12, 12), (.ioasMap, 40, 40), (.ioasUnmap, 24, 24),
        (.ioasIOVARanges, 32, 32), (.hwptAlloc, 24, 48), (.getHWInfo, 32, 40), (.hwptInvalidate, 32, 32),
        (.faultQueueAlloc, 16, 16), (.viommuAlloc, 24, 24), (.vdeviceAlloc, 24, 24),
    ]

    @Test(arguments: commands)
    func sizeBelowTheMandatoryPartIsEINVAL(_ command: (IoctlRequest, UInt32, Int)) {
        let kernel = Kernel()
        let (request, minimum, _) = command
        #expect(kernel.call(request, [UInt8](repeating: 0, count: 8), size: minimum - 1) == .einval)
    }

    @Test(arguments: commands)
    func nonZeroBytesPastTheKernelStructAreE2BIG(_ command: (IoctlRequest, UInt32, Int)) {
        let kernel = Kernel()
        let (request, _, kernelSize) = command
        let zeros = [UInt8](repeating: 0, count: kernelSize)
        #expect(kernel.call(request, Tuple64(zeros), size: UInt32(kernelSize + 8), tail: []) != .e2big)
        let withTail = zeros + [0, 0, 0, 1]
        #expect(kernel.call(request, Tuple64(withTail), size: UInt32(kernelSize + 8)) == .e2big)
    }

    @Test func shortHWPTAllocWithoutOptionalFieldsIsZeroExtended() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        var cmd = Command.hwptAlloc(device: device.deviceID, pt: device.ioasID)
        let id = kernel.call(.hwptAlloc, cmd, size: 24)
        #expect(id == nil)
        cmd.size = 24
        #expect(kernel.call(.hwptAlloc, &cmd) == nil)
        #expect(cmd.out_hwpt_id != 0)
    }

    @Test func objectIDsStartAtOneAndReuseTheLowestFree() throws {
        let kernel = Kernel()
        let first = try kernel.ioas()
        let second = try kernel.ioas()
        let third = try kernel.ioas()
        #expect([first, second, third] == [1, 2, 3])
        try kernel.client.destroy(iommufd: kernel.iommufd, second)
        #expect(try kernel.ioas() == 2)
    }

    @Test func destroyOfAnUnknownIDIsENOENT() {
        let kernel = Kernel()
        #expect(throws: HostError.self) { try kernel.client.destroy(iommufd: kernel.iommufd, 42) }
        var cmd = uapi_iommu_destroy(size: 8, id: 42)
        #expect(kernel.call(.destroy, &cmd) == .enoent)
    }

    @Test func destroyOfReferencedObjectsIsEBUSY() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        // The IOAS holds VFIO's HWPT; the HWPT is attached; the device belongs to VFIO.
        var cmd = uapi_iommu_destroy(size: 8, id: device.ioasID.rawValue)
        #expect(kernel.call(.destroy, &cmd) == .ebusy)
        cmd.id = device.hwptID.rawValue
        #expect(kernel.call(.destroy, &cmd) == .ebusy)
        cmd.id = device.deviceID.rawValue
        #expect(kernel.call(.destroy, &cmd) == .ebusy)
        // A nest parent with a nested child is busy until the child goes.
        let parent = try kernel.nestParent(device)
        let nested = try kernel.client.allocateNested(
            iommufd: kernel.iommufd, device: device.deviceID, parent: parent, table: .guestRoot)
        cmd.id = parent.rawValue
        #expect(kernel.call(.destroy, &cmd) == .ebusy)
        cmd.id = nested.rawValue
        #expect(kernel.call(.destroy, &cmd) == nil)
        cmd.id = parent.rawValue
        #expect(kernel.call(.destroy, &cmd) == nil)
    }

    @Test func destroyingAnAttachedNestedHWPTIsEBUSYUntilReplaced() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        let parent = try kernel.nestParent(device)
        let nested = try kernel.client.allocateNested(
            iommufd: kernel.iommufd, device: device.deviceID, parent: parent, table: .guestRoot)
        try kernel.client.attach(deviceFD: device.deviceFD, .requestsWithoutPASID, to: nested)
        var cmd = uapi_iommu_destroy(size: 8, id: nested.rawValue)
        #expect(kernel.call(.destroy, &cmd) == .ebusy)
        try kernel.client.attach(deviceFD: device.deviceFD, .requestsWithoutPASID, to: parent)
        #expect(kernel.call(.destroy, &cmd) == nil)
    }

    @Test func wrongEncodingOrUnknownNumbersAreENOTTYAndUnknownFDsEBADF() {
        let kernel = Kernel()
        var cmd = uapi_iommu_destroy(size: 8, id: 1)
        // _IOWR-style encoding of a valid nr.
        #expect(kernel.call(IoctlRequest(rawValue: 0xC008_3B80), &cmd) == .enotty)
        // Below the iommufd table: the VFIO compat path, not modelled.
        #expect(kernel.call(IoctlRequest(rawValue: 0x3B64), &cmd) == .enotty)
        #expect(kernel.call(.destroy, &cmd, fd: 9999) == .ebadf)
        // iommufd commands on a VFIO device fd are not VFIO's.
        let deviceFD = kernel.fake.openDevice()
        #expect(kernel.call(.destroy, &cmd, fd: deviceFD) == .enotty)
    }

    @Test func viommuAndVDeviceAreNotOfferedByVTd() throws {
        let kernel = Kernel()
        let device = try kernel.device()
        let parent = try kernel.nestParent(device)
        var viommu = uapi_iommu_viommu_alloc()
        viommu.size = 24
        viommu.dev_id = device.deviceID.rawValue
        viommu.hwpt_id = parent.rawValue
        #expect(kernel.call(.viommuAlloc, &viommu) == .eopnotsupp)
        viommu.hwpt_id = device.hwptID.rawValue
        #expect(kernel.call(.viommuAlloc, &viommu) == .einval)
        var vdevice = uapi_iommu_vdevice_alloc()
        vdevice.size = 24
        vdevice.viommu_id = 77
        #expect(kernel.call(.vdeviceAlloc, &vdevice) == .enoent)
    }

    @Test func everyCallIsLoggedAndInjectedFailuresChangeNothing() throws {
        let kernel = Kernel()
        kernel.fake.failNext(.ioasAlloc, with: .enomem)
        #expect(throws: HostError.self) { try kernel.ioas() }
        #expect(kernel.fake.objects(iommufd: kernel.iommufd).isEmpty)
        #expect(try kernel.ioas() == 1)
        #expect(kernel.fake.calls == [.ioasAlloc, .ioasAlloc])
        kernel.fake.failCall(at: 2, with: .eio)
        #expect(errnoOf { try kernel.ioas() } == .eio)
    }
}

/// 64 bytes of raw argument, for commands exercised only through their size prologue.
struct Tuple64 {
    var bytes:
        (
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
        ) = (0, 0, 0, 0, 0, 0, 0, 0)
    init(_ prefix: [UInt8]) {
        withUnsafeMutableBytes(of: &bytes) { raw in
            for (i, byte) in prefix.prefix(64).enumerated() { raw[i] = byte }
        }
    }
}

import Testing

@testable import HostIOMMU
import HostIOMMUTesting

/// A fake kernel, a nested backend over it, and assigned devices as the glue hands them over.
final class NestedHost {
    let kernel = Kernel()
    let backend: NestedBackend
    var devices: [AssignedDevice] = []

    var fake: FakeIOMMUFD { kernel.fake }

    init(guest: GuestCapabilityProfile = GuestCapabilityProfile(pasidWidth: 20)) {
        backend = NestedBackend(guest: guest, seam: kernel.fake.seam)
    }

    @discardableResult
    func assign(_ bus: UInt8 = 1, profile: FakeIOMMUFD.DeviceProfile = .init()) throws -> AssignedDevice {
        let device = try kernel.device(bus, profile: profile)
        devices.append(device)
        return device
    }

    /// Assigns and adopts, with DMA remapping on, and forgets the setup calls.
    @discardableResult
    func adopted(_ bus: UInt8 = 1) throws -> AssignedDevice {
        let device = try assign(bus)
        try backend.adopt(device)
        try backend.dmaRemappingChanged(enabled: true)
        fake.clearCallLog()
        return device
    }

    static func firstLevel(
        _ device: AssignedDevice, root: UInt64 = 0x10_0000, did: UInt16 = 1, pasid: UInt32 = 0,
        flags: FirstLevelFlags = []
    ) -> PASIDBinding {
        PASIDBinding(
            requesterID: device.requesterID, pasid: PASID(rawValue: pasid), domainID: DomainID(rawValue: did),
            translation: .firstLevel(FirstLevelTable(rootPointer: root, flags: flags)))
    }

    static func binding(_ device: AssignedDevice, _ translation: PASIDBinding.Translation, pasid: UInt32 = 0) -> PASIDBinding {
        PASIDBinding(
            requesterID: device.requesterID, pasid: PASID(rawValue: pasid), domainID: DomainID(rawValue: 1),
            translation: translation)
    }

    static func invalidation(did: UInt16 = 1, pasid: UInt32 = 0, page: UInt64, count: UInt64 = 1, tag: UInt64 = 0)
        -> PASIDInvalidation
    {
        PASIDInvalidation(
            domainID: DomainID(rawValue: did), pasid: PASID(rawValue: pasid), scope: .pages(address: page << 12, count: count),
            leafOnly: true, tag: tag)
    }

    /// The host's attachment and the backend's belief agree for every device and point, and the
    /// kernel holds exactly VFIO's HWPTs plus the backend's.
    func expectAgreement(points: [AttachPoint] = [.requestsWithoutPASID], sourceLocation: SourceLocation = #_sourceLocation) {
        for device in devices {
            for point in points {
                let kernelSide = fake.attachment(deviceFD: device.deviceFD, point)
                let backendSide = backend.attachedHWPT(device.requesterID, point)
                if backend.parentHWPT(device.requesterID) != nil {
                    #expect(kernelSide == backendSide, "\(device) \(point)", sourceLocation: sourceLocation)
                }
            }
        }
        let vfio = Set(devices.map(\.hwptID))
        #expect(
            fake.hwpts(iommufd: kernel.iommufd) == vfio.union(backend.ownedHWPTs(iommufd: kernel.iommufd)),
            sourceLocation: sourceLocation)
    }
}

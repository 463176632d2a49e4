import HostIOMMU
// Sets a device up the way QEMU 10.0's VFIO iommufd backend does, through the seam, so tests and the
// benchmark start from the state the glue would hand over.
extension FakeIOMMUFD {
    /// Host virtual addresses the fake hands out for guest RAM: GPA plus this base.
    public static let guestRAMBase: UInt64 = 0x7f00_0000_0000

    /// Opens a device cdev, binds it to `iommufd`, gives it an IOAS (new unless `ioas` is passed) and
    /// a plain (not nest-parent) HWPT, and attaches it: what vfio-pci with iommufd does in QEMU 10.0.
    public func assignDevice(
        requesterID: RequesterID, name: String? = nil, profile: DeviceProfile = DeviceProfile(), iommufd: Int32,
        ioas: ObjectID? = nil
    ) throws(HostError) -> AssignedDevice {
        let client = IOMMUFDClient(seam: seam)
        let deviceFD = openDevice(profile)
        let deviceID = try client.bind(deviceFD: deviceFD, iommufd: iommufd)
        let ioasID: ObjectID
        if let ioas { ioasID = ioas } else { ioasID = try client.allocateIOAS(iommufd: iommufd) }
        let hwpt = try client.allocatePaging(iommufd: iommufd, device: deviceID, ioas: ioasID)
        try client.attach(deviceFD: deviceFD, .requestsWithoutPASID, to: hwpt)
        return AssignedDevice(
            requesterID: requesterID, name: name ?? "0000:\(busDigits(requesterID.bus)):00.0", iommufd: iommufd,
            deviceFD: deviceFD, deviceID: deviceID, ioasID: ioasID, hwptID: hwpt)
    }
}

/// A bus number as the two lower-case hex digits of a PCI address.
private func busDigits(_ bus: UInt8) -> String {
    let digits = String(bus, radix: 16)
    return digits.count < 2 ? "0" + digits : digits
}

/// A VFIO device that the QEMU glue hands to the host layer, with the iommufd state VFIO already set
/// up for it (QEMU keeps these in VFIODevice and its IOMMUFD container).
public struct AssignedDevice: Hashable, Sendable, CustomStringConvertible {
    /// Where the guest sees it.
    public var requesterID: RequesterID
    /// A name for messages, e.g. the host BDF "0000:3b:00.0".
    public var name: String
    /// /dev/iommu, already bound to the device.
    public var iommufd: Int32
    /// The VFIO device cdev; attach and detach ioctls go here.
    public var deviceFD: Int32
    /// The iommufd device object ID from VFIO_DEVICE_BIND_IOMMUFD.
    public var deviceID: ObjectID
    /// The IOAS that VFIO's memory listener fills with guest RAM (GPA → HVA).
    public var ioasID: ObjectID
    /// The HWPT VFIO attached the device to.
    public var hwptID: ObjectID
    /// Whether that HWPT was allocated with NEST_PARENT (upstream QEMU does; 10.0 does not).
    public var hwptIsNestParent: Bool

    public init(
        requesterID: RequesterID, name: String, iommufd: Int32, deviceFD: Int32, deviceID: ObjectID,
        ioasID: ObjectID, hwptID: ObjectID, hwptIsNestParent: Bool = false
    ) {
        self.requesterID = requesterID
        self.name = name
        self.iommufd = iommufd
        self.deviceFD = deviceFD
        self.deviceID = deviceID
        self.ioasID = ioasID
        self.hwptID = hwptID
        self.hwptIsNestParent = hwptIsNestParent
    }

    public var description: String { "\(name) (guest \(requesterID))" }
}

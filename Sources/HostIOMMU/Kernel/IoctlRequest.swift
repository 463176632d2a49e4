import LinuxUAPI

/// An ioctl command number. The values live in the C shim (linux_uapi.h), next to their static
/// asserts; this type only names them.
public struct IoctlRequest: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }

    public static let destroy = IoctlRequest(rawValue: UAPI_IOMMU_DESTROY)
    public static let ioasAlloc = IoctlRequest(rawValue: UAPI_IOMMU_IOAS_ALLOC)
    public static let ioasAllowIOVAs = IoctlRequest(rawValue: UAPI_IOMMU_IOAS_ALLOW_IOVAS)
    public static let ioasCopy = IoctlRequest(rawValue: UAPI_IOMMU_IOAS_COPY)
    public static let ioasIOVARanges = IoctlRequest(rawValue: UAPI_IOMMU_IOAS_IOVA_RANGES)
    public static let ioasMap = IoctlRequest(rawValue: UAPI_IOMMU_IOAS_MAP)
    public static let ioasUnmap = IoctlRequest(rawValue: UAPI_IOMMU_IOAS_UNMAP)
    public static let option = IoctlRequest(rawValue: UAPI_IOMMU_OPTION)
    public static let vfioIOAS = IoctlRequest(rawValue: UAPI_IOMMU_VFIO_IOAS)
    public static let hwptAlloc = IoctlRequest(rawValue: UAPI_IOMMU_HWPT_ALLOC)
    public static let getHWInfo = IoctlRequest(rawValue: UAPI_IOMMU_GET_HW_INFO)
    public static let hwptSetDirtyTracking = IoctlRequest(rawValue: UAPI_IOMMU_HWPT_SET_DIRTY)
    public static let hwptGetDirtyBitmap = IoctlRequest(rawValue: UAPI_IOMMU_HWPT_GET_DIRTY)
    public static let hwptInvalidate = IoctlRequest(rawValue: UAPI_IOMMU_HWPT_INVALIDATE)
    public static let faultQueueAlloc = IoctlRequest(rawValue: UAPI_IOMMU_FAULT_QUEUE_ALLOC)
    public static let ioasMapFile = IoctlRequest(rawValue: UAPI_IOMMU_IOAS_MAP_FILE)
    public static let viommuAlloc = IoctlRequest(rawValue: UAPI_IOMMU_VIOMMU_ALLOC)
    public static let vdeviceAlloc = IoctlRequest(rawValue: UAPI_IOMMU_VDEVICE_ALLOC)
    public static let vfioDeviceBindIOMMUFD = IoctlRequest(rawValue: UAPI_VFIO_DEVICE_BIND_IOMMUFD)
    public static let vfioDeviceAttach = IoctlRequest(rawValue: UAPI_VFIO_DEVICE_ATTACH_IOMMUFD_PT)
    public static let vfioDeviceDetach = IoctlRequest(rawValue: UAPI_VFIO_DEVICE_DETACH_IOMMUFD_PT)

    public var description: String {
        switch self {
        case .destroy: "IOMMU_DESTROY"
        case .ioasAlloc: "IOMMU_IOAS_ALLOC"
        case .ioasAllowIOVAs: "IOMMU_IOAS_ALLOW_IOVAS"
        case .ioasCopy: "IOMMU_IOAS_COPY"
        case .ioasIOVARanges: "IOMMU_IOAS_IOVA_RANGES"
        case .ioasMap: "IOMMU_IOAS_MAP"
        case .ioasUnmap: "IOMMU_IOAS_UNMAP"
        case .option: "IOMMU_OPTION"
        case .vfioIOAS: "IOMMU_VFIO_IOAS"
        case .hwptAlloc: "IOMMU_HWPT_ALLOC"
        case .getHWInfo: "IOMMU_GET_HW_INFO"
        case .hwptSetDirtyTracking: "IOMMU_HWPT_SET_DIRTY_TRACKING"
        case .hwptGetDirtyBitmap: "IOMMU_HWPT_GET_DIRTY_BITMAP"
        case .hwptInvalidate: "IOMMU_HWPT_INVALIDATE"
        case .faultQueueAlloc: "IOMMU_FAULT_QUEUE_ALLOC"
        case .ioasMapFile: "IOMMU_IOAS_MAP_FILE"
        case .viommuAlloc: "IOMMU_VIOMMU_ALLOC"
        case .vdeviceAlloc: "IOMMU_VDEVICE_ALLOC"
        case .vfioDeviceBindIOMMUFD: "VFIO_DEVICE_BIND_IOMMUFD"
        case .vfioDeviceAttach: "VFIO_DEVICE_ATTACH_IOMMUFD_PT"
        case .vfioDeviceDetach: "VFIO_DEVICE_DETACH_IOMMUFD_PT"
        default: "ioctl 0x\(String(rawValue, radix: 16))"
        }
    }
}

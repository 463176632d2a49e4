/// Where shadow mappings land: straight into an iommufd IOAS, or handed to the QEMU glue (which turns
/// them into IOMMU notifier events for VFIO).
public protocol ShadowSink: AnyObject {
    /// Makes the mapping visible to the device. Returns false when it was deliberately not made (the
    /// record is kept so nothing is mapped twice, but there is nothing to unmap later).
    func map(_ mapping: ShadowMapping) throws(HostError) -> Bool
    /// Removes host mappings that lie entirely inside [iova, iova + length). The shadow backend only
    /// passes ranges made of whole mappings it made, because iommufd never splits one (ENOENT).
    func unmap(iova: UInt64, length: UInt64) throws(HostError)
}

/// Guest-physical → this process's virtual address, for a range that must be one contiguous piece of
/// guest RAM (QEMU's RAM blocks). nil: not RAM, or not contiguous.
public typealias GuestRAMResolver = @Sendable (_ guestPhysical: UInt64, _ length: UInt64) -> UInt64?

/// Shadows into an iommufd IOAS with IOMMU_IOAS_MAP/UNMAP (FIXED_IOVA).
public final class IOASShadowSink: ShadowSink {
    public let iommufd: Int32
    public let ioas: ObjectID
    /// Skip read-only mappings: set when the IOAS also feeds an Intel nest-parent domain, which
    /// rejects them (IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17). The device then faults on reads of those
    /// pages instead of the whole map failing; QEMU upstream makes the same choice for RAM sections.
    public let skipReadOnly: Bool
    let client: IOMMUFDClient
    let guestRAM: GuestRAMResolver

    public init(
        iommufd: Int32, ioas: ObjectID, skipReadOnly: Bool = false, seam: IoctlSeam = .kernel,
        guestRAM: @escaping GuestRAMResolver
    ) {
        self.iommufd = iommufd
        self.ioas = ioas
        self.skipReadOnly = skipReadOnly
        client = IOMMUFDClient(seam: seam)
        self.guestRAM = guestRAM
    }

    /// Whether a device's IOAS must skip read-only mappings: the host has the erratum and the IOAS
    /// holds a nest parent.
    public static func mustSkipReadOnly(_ info: HostIOMMUInfo, ioasHoldsNestParent: Bool) -> Bool {
        info.readOnlyNestParentErratum && ioasHoldsNestParent
    }

    public func map(_ mapping: ShadowMapping) throws(HostError) -> Bool {
        if skipReadOnly && !mapping.permissions.contains(.write) { return false }
        guard let userVA = guestRAM(mapping.target, mapping.length) else {
            throw HostError(.invalidArgument, "shadow map \(mapping): target is not contiguous guest RAM")
        }
        try client.map(
            iommufd: iommufd, ioas: ioas, iova: mapping.iova, length: mapping.length, userVA: userVA,
            permissions: mapping.permissions)
        return true
    }

    public func unmap(iova: UInt64, length: UInt64) throws(HostError) {
        let unmapped = try client.unmap(iommufd: iommufd, ioas: ioas, iova: iova, length: length)
        if unmapped != length {
            throw HostError(
                .invalidArgument,
                "IOMMU_IOAS_UNMAP of 0x\(String(length, radix: 16)) bytes at 0x\(String(iova, radix: 16)) removed "
                    + "0x\(String(unmapped, radix: 16)): the IOAS holds mappings the shadow records do not")
        }
    }
}

/// Hands shadow changes to closures (the QEMU glue's notifier calls). A closure returns nil on
/// success or the error to report.
public final class CallbackShadowSink: ShadowSink {
    let onMap: (ShadowMapping) -> HostError?
    let onUnmap: (_ iova: UInt64, _ length: UInt64) -> HostError?

    public init(
        map: @escaping (ShadowMapping) -> HostError?, unmap: @escaping (_ iova: UInt64, _ length: UInt64) -> HostError?
    ) {
        onMap = map
        onUnmap = unmap
    }

    public func map(_ mapping: ShadowMapping) throws(HostError) -> Bool {
        if let error = onMap(mapping) { throw error }
        return true
    }

    public func unmap(iova: UInt64, length: UInt64) throws(HostError) {
        if let error = onUnmap(iova, length) { throw error }
    }
}

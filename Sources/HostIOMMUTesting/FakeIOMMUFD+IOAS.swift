import HostIOMMU
import LinuxUAPI

// IOAS commands of the fake kernel (drivers/iommu/iommufd/ioas.c and io_pagetable.c rules).
extension FakeIOMMUFD {
    static let pageSize: UInt64 = 4096

    func ioasAlloc(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        var (cmd, size) = try UserCopy.command(
            uapi_iommu_ioas_alloc.self, argument, minSize: UAPI_IOMMU_IOAS_ALLOC_MIN_SIZE)
        if cmd.flags != 0 { throw .eopnotsupp }
        cmd.out_ioas_id = context.insert(.ioas(IOAS()))
        UserCopy.respond(cmd, to: argument, userSize: size)
    }

    /// Allowed IOVA: the aperture minus the reserved ranges.
    func allowedRanges() -> [ClosedRange<UInt64>] {
        var ranges: [ClosedRange<UInt64>] = []
        var start: UInt64 = 0
        for reserved in reservedIOVARanges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if reserved.lowerBound > start { ranges.append(start...min(reserved.lowerBound - 1, apertureLast)) }
            if reserved.upperBound >= apertureLast { return ranges }
            start = max(start, reserved.upperBound + 1)
        }
        if start <= apertureLast { ranges.append(start...apertureLast) }
        return ranges
    }

    func isReservedIOVA(_ range: ClosedRange<UInt64>) -> Bool {
        range.upperBound > apertureLast || reservedIOVARanges.contains { $0.overlaps(range) }
    }

    /// Whether a read-only area would have to enter an Intel nest-parent domain on this IOAS.
    func holdsErratumNestParent(_ context: Context, ioas id: UInt32) -> Bool {
        context.objects.values.contains {
            if case .paging(let p) = $0 { p.ioas == id && p.nestParent && p.host.readOnlyNestParentErratum } else { false }
        }
    }

    func ioasMap(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        var (cmd, size) = try UserCopy.command(uapi_iommu_ioas_map.self, argument, minSize: UAPI_IOMMU_IOAS_MAP_MIN_SIZE)
        let known = UAPI_IOMMU_IOAS_MAP_FIXED_IOVA | UAPI_IOMMU_IOAS_MAP_WRITEABLE | UAPI_IOMMU_IOAS_MAP_READABLE
        if cmd.flags & ~known != 0 || cmd.reserved != 0 { throw .eopnotsupp }
        if cmd.iova >= UInt64.max || cmd.length >= UInt64.max { throw .eoverflow }
        let writable = cmd.flags & UAPI_IOMMU_IOAS_MAP_WRITEABLE != 0
        let readable = cmd.flags & UAPI_IOMMU_IOAS_MAP_READABLE != 0
        if !writable && !readable { throw .einval }
        let ioas = try ioas(context, cmd.ioas_id)
        if cmd.length == 0 || cmd.length % Self.pageSize != 0 { throw .einval }
        if !userMemory.isEmpty {
            let (end, wrapped) = cmd.user_va.addingReportingOverflow(cmd.length)
            guard !wrapped,
                let region = userMemory.first(where: { $0.range.lowerBound <= cmd.user_va && end <= $0.range.upperBound })
            else { throw .efault }
            if writable && !region.writable { throw .efault }
        }
        let iova: UInt64
        if cmd.flags & UAPI_IOMMU_IOAS_MAP_FIXED_IOVA != 0 {
            if cmd.iova % Self.pageSize != 0 { throw .einval }
            let (last, wrapped) = cmd.iova.addingReportingOverflow(cmd.length - 1)
            if wrapped { throw .eoverflow }
            if isReservedIOVA(cmd.iova...last) { throw .einval }
            if ioas.areas.contains(where: { $0.iova <= last && cmd.iova <= $0.last }) { throw .eexist }
            iova = cmd.iova
        } else {
            guard let found = freeIOVA(in: ioas, length: cmd.length) else { throw .enospc }
            iova = found
        }
        // Erratum 772415: a nest-parent domain cannot hold a read-only mapping; the kernel fails the
        // domain fill with EINVAL.
        if !writable && holdsErratumNestParent(context, ioas: cmd.ioas_id) { throw .einval }
        let area = Area(iova: iova, length: cmd.length, userVA: cmd.user_va, writable: writable, readable: readable)
        let index = ioas.areas.firstIndex { $0.iova > iova } ?? ioas.areas.endIndex
        ioas.areas.insert(area, at: index)
        cmd.iova = iova
        UserCopy.respond(cmd, to: argument, userSize: size)
    }

    /// The lowest aligned IOVA where `length` fits between allowed ranges and existing areas.
    func freeIOVA(in ioas: IOAS, length: UInt64) -> UInt64? {
        for range in allowedRanges() {
            var candidate = (range.lowerBound + Self.pageSize - 1) & ~(Self.pageSize - 1)
            while true {
                let (last, wrapped) = candidate.addingReportingOverflow(length - 1)
                if wrapped || last > range.upperBound { break }
                guard let blocking = ioas.areas.first(where: { $0.iova <= last && candidate <= $0.last }) else {
                    return candidate
                }
                let (next, over) = blocking.last.addingReportingOverflow(1)
                if over { return nil }
                candidate = next
            }
        }
        return nil
    }

    func ioasUnmap(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        var (cmd, size) = try UserCopy.command(
            uapi_iommu_ioas_unmap.self, argument, minSize: UAPI_IOMMU_IOAS_UNMAP_MIN_SIZE)
        let ioas = try ioas(context, cmd.ioas_id)
        var unmapped: UInt64 = 0
        if cmd.iova == 0 && cmd.length == UInt64.max {
            unmapped = ioas.areas.reduce(0) { $0 + $1.length }
            ioas.areas.removeAll()
        } else {
            if cmd.iova >= UInt64.max || cmd.length >= UInt64.max { throw .eoverflow }
            if cmd.length == 0 { throw .einval }
            let (last, wrapped) = cmd.iova.addingReportingOverflow(cmd.length - 1)
            if wrapped { throw .eoverflow }
            // Areas are removed whole, in IOVA order; the first one that sticks out of the range stops
            // the walk with ENOENT (areas are never split). Work already done stays done, and the
            // byte count is not reported on failure — exactly the kernel's shape.
            while let index = ioas.areas.firstIndex(where: { $0.iova <= last && cmd.iova <= $0.last }) {
                let area = ioas.areas[index]
                if area.iova < cmd.iova || area.last > last { throw .enoent }
                ioas.areas.remove(at: index)
                unmapped += area.length
            }
            if unmapped == 0 && emptyUnmapIsENOENT { throw .enoent }
        }
        cmd.length = unmapped
        UserCopy.respond(cmd, to: argument, userSize: size)
    }

    func ioasIOVARanges(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        var (cmd, size) = try UserCopy.command(
            uapi_iommu_ioas_iova_ranges.self, argument, minSize: UAPI_IOMMU_IOAS_IOVA_RANGES_MIN_SIZE)
        if cmd.reserved != 0 { throw .eopnotsupp }
        _ = try ioas(context, cmd.ioas_id)
        let ranges = allowedRanges()
        let capacity = Int(cmd.num_iovas)
        if capacity > 0 {
            let array = try UserCopy.pointer(cmd.allowed_iovas)
            for (i, range) in ranges.prefix(capacity).enumerated() {
                var entry = uapi_iommu_iova_range()
                entry.start = range.lowerBound
                entry.last = range.upperBound
                array.storeBytes(of: entry, toByteOffset: i * MemoryLayout<uapi_iommu_iova_range>.stride, as: uapi_iommu_iova_range.self)
            }
        }
        cmd.num_iovas = UInt32(ranges.count)
        cmd.out_iova_alignment = Self.pageSize
        UserCopy.respond(cmd, to: argument, userSize: size)
        if capacity < ranges.count { throw .emsgsize }
    }
}

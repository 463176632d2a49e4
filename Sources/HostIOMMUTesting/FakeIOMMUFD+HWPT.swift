import HostIOMMU
import LinuxUAPI

// HWPT, hardware-info and invalidation commands of the fake kernel (hw_pagetable.c, device.c and the
// VT-d driver's nested.c rules).
extension FakeIOMMUFD {
    func hwptAlloc(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        var (cmd, size) = try UserCopy.command(
            uapi_iommu_hwpt_alloc.self, argument, minSize: UAPI_IOMMU_HWPT_ALLOC_MIN_SIZE)
        if cmd.reserved != 0 || cmd.reserved2 != 0 { throw .eopnotsupp }
        let hasData = cmd.data_type != UAPI_IOMMU_HWPT_DATA_NONE
        if hasData != (cmd.data_len != 0) { throw .einval }
        let device = try device(context, cmd.dev_id)
        // A missing parent is EINVAL here, not ENOENT.
        guard let parent = context.objects[cmd.pt_id] else { throw .einval }

        let allocated: Object
        switch parent {
        case .ioas(let ioas):
            let valid = UAPI_IOMMU_HWPT_ALLOC_NEST_PARENT | UAPI_IOMMU_HWPT_ALLOC_DIRTY_TRACKING
                | UAPI_IOMMU_HWPT_ALLOC_FAULT_ID_VALID | UAPI_IOMMU_HWPT_ALLOC_PASID
            if cmd.flags & ~valid != 0 || hasData { throw .eopnotsupp }
            let host = device.profile.host
            if cmd.flags & UAPI_IOMMU_HWPT_ALLOC_DIRTY_TRACKING != 0 && !host.dirtyTracking { throw .eopnotsupp }
            let nestParent = cmd.flags & UAPI_IOMMU_HWPT_ALLOC_NEST_PARENT != 0
            if nestParent && !host.nestSupported { throw .eopnotsupp }
            let faultID = try faultID(context, cmd)
            // Filling a new nest-parent domain with an existing read-only area hits erratum 772415.
            if nestParent && host.readOnlyNestParentErratum && ioas.areas.contains(where: { !$0.writable }) {
                throw .einval
            }
            allocated = .paging(
                Paging(ioas: cmd.pt_id, flags: cmd.flags, automatic: false, host: host, faultID: faultID))
        case .paging(let paging):
            let valid = UAPI_IOMMU_HWPT_ALLOC_FAULT_ID_VALID | UAPI_IOMMU_HWPT_ALLOC_PASID
            if cmd.flags & ~valid != 0 || cmd.data_len == 0 { throw .eopnotsupp }
            if paging.automatic || !paging.nestParent { throw .einval }
            // intel_iommu_domain_alloc_nested
            if cmd.data_type != UAPI_IOMMU_HWPT_DATA_VTD_S1 { throw .eopnotsupp }
            let minimum = MemoryLayout<uapi_iommu_hwpt_vtd_s1>.size  // offsetofend(__reserved)
            if cmd.data_len < minimum { throw .einval }
            let data = try UserCopy.structFromUser(
                uapi_iommu_hwpt_vtd_s1.self, at: try UserCopy.pointer(cmd.data_uptr), userSize: Int(cmd.data_len))
            let faultID = try faultID(context, cmd)
            allocated = .nested(Nested(parent: cmd.pt_id, data: data, faultID: faultID))
        default:
            throw .einval
        }
        cmd.out_hwpt_id = context.insert(allocated)
        UserCopy.respond(cmd, to: argument, userSize: size)
    }

    private func faultID(_ context: Context, _ cmd: uapi_iommu_hwpt_alloc) throws(Errno) -> UInt32? {
        guard cmd.flags & UAPI_IOMMU_HWPT_ALLOC_FAULT_ID_VALID != 0 else { return nil }
        guard case .fault? = context.objects[cmd.fault_id] else { throw .enoent }
        return cmd.fault_id
    }

    func getHWInfo(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        var (cmd, size) = try UserCopy.command(uapi_iommu_hw_info.self, argument, minSize: UAPI_IOMMU_GET_HW_INFO_MIN_SIZE)
        if cmd.flags != 0 || cmd.out_max_pasid_log2 != 0 || cmd.reserved != (0, 0, 0) { throw .eopnotsupp }
        let host = try device(context, cmd.dev_id).profile.host
        var info = uapi_iommu_hw_info_vtd()
        info.flags = host.readOnlyNestParentErratum ? UAPI_IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 : 0
        info.cap_reg = host.cap
        info.ecap_reg = host.ecap
        let kernelLength = MemoryLayout<uapi_iommu_hw_info_vtd>.size
        let userLength = Int(cmd.data_len)
        if userLength > 0 {
            // Copy what fits and zero the rest of the user's buffer.
            let buffer = try UserCopy.pointer(cmd.data_uptr)
            buffer.initializeMemory(as: UInt8.self, repeating: 0, count: userLength)
            withUnsafeBytes(of: &info) { buffer.copyMemory(from: $0.baseAddress!, byteCount: min(userLength, kernelLength)) }
        }
        cmd.data_len = UInt32(kernelLength)
        cmd.out_data_type = UAPI_IOMMU_HW_INFO_TYPE_INTEL_VTD
        cmd.out_max_pasid_log2 = host.maxPASIDLog2
        cmd.out_capabilities = host.dirtyTracking ? UAPI_IOMMU_HW_CAP_DIRTY_TRACKING : 0
        UserCopy.respond(cmd, to: argument, userSize: size)
    }

    func hwptInvalidate(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        var (cmd, size) = try UserCopy.command(
            uapi_iommu_hwpt_invalidate.self, argument, minSize: UAPI_IOMMU_HWPT_INVALIDATE_MIN_SIZE)
        let requested = Int(cmd.entry_num)
        var done = 0
        // entry_num goes back to the user whatever happens, with the number handled.
        defer {
            cmd.entry_num = UInt32(done)
            UserCopy.respond(cmd, to: argument, userSize: size)
        }
        if cmd.reserved != 0 { throw .eopnotsupp }
        if requested > 0 && (cmd.data_uptr == 0 || cmd.entry_len == 0) { throw .einval }
        guard let object = context.objects[cmd.hwpt_id] else { throw .enoent }
        guard case .nested(let nested) = object else { throw .einval }
        // intel_nested_cache_invalidate_user
        if cmd.data_type != UAPI_IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 { throw .einval }
        let injected = takeInvalidationFailure()
        let minimum = MemoryLayout<uapi_iommu_hwpt_vtd_s1_invalidate>.size
        for index in 0..<requested {
            if let injected, injected.entry == index { throw injected.errno }
            if Int(cmd.entry_len) < minimum { throw .einval }
            let base = try UserCopy.pointer(cmd.data_uptr) + index * Int(cmd.entry_len)
            let entry = try UserCopy.structFromUser(
                uapi_iommu_hwpt_vtd_s1_invalidate.self, at: base, userSize: Int(cmd.entry_len))
            if entry.flags & ~UAPI_IOMMU_VTD_INV_FLAGS_LEAF != 0 || entry.reserved != 0 { throw .eopnotsupp }
            if entry.addr % Self.pageSize != 0 || (entry.npages == UInt64.max && entry.addr != 0) { throw .einval }
            nested.invalidations.append(
                Invalidation(address: entry.addr, pages: entry.npages, leaf: entry.flags & UAPI_IOMMU_VTD_INV_FLAGS_LEAF != 0))
            done += 1
        }
    }

    func faultQueueAlloc(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        var (cmd, size) = try UserCopy.command(
            uapi_iommu_fault_alloc.self, argument, minSize: UAPI_IOMMU_FAULT_QUEUE_ALLOC_MIN_SIZE)
        if cmd.flags != 0 { throw .eopnotsupp }
        let fd = allocateFD()
        let id = context.insert(.fault(FaultQueue(fd: fd)))
        faultFiles[fd] = (context, id)
        cmd.out_fault_id = id
        cmd.out_fault_fd = UInt32(bitPattern: fd)
        UserCopy.respond(cmd, to: argument, userSize: size)
    }

    func viommuAlloc(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        let (cmd, _) = try UserCopy.command(
            uapi_iommu_viommu_alloc.self, argument, minSize: UAPI_IOMMU_VIOMMU_ALLOC_MIN_SIZE)
        if cmd.flags != 0 { throw .eopnotsupp }
        _ = try device(context, cmd.dev_id)
        guard case .paging(let parent)? = context.objects[cmd.hwpt_id] else { throw .enoent }
        if !parent.nestParent { throw .einval }
        // The VT-d driver of these kernels implements no vIOMMU object type.
        throw .eopnotsupp
    }

    func vdeviceAlloc(_ context: Context, _ argument: UnsafeMutableRawPointer) throws(Errno) {
        _ = try UserCopy.command(uapi_iommu_vdevice_alloc.self, argument, minSize: UAPI_IOMMU_VDEVICE_ALLOC_MIN_SIZE)
        throw .enoent  // no vIOMMU object can exist (see viommuAlloc)
    }

    // ---- fault queue file (read/write, not ioctls) ------------------------------------------------

    /// Queues one page-request group on a fault queue, as the IOMMU would; returns its cookie.
    @discardableResult
    public func raiseFaultGroup(faultFD: Int32, _ group: [uapi_iommu_hwpt_pgfault]) -> UInt32? {
        guard let (context, id) = faultFiles[faultFD], case .fault(let queue)? = context.objects[id] else { return nil }
        let cookie = queue.nextCookie
        queue.nextCookie += 1
        queue.pending.append(group.map { var fault = $0; fault.cookie = cookie; return fault })
        return cookie
    }

    /// read(2) on a fault fd: whole 40-byte records, whole groups only.
    public func readFaults(faultFD: Int32, count: Int, offset: Int = 0) -> Result<[uapi_iommu_hwpt_pgfault], Errno> {
        guard let (context, id) = faultFiles[faultFD], case .fault(let queue)? = context.objects[id] else {
            return .failure(.ebadf)
        }
        let record = MemoryLayout<uapi_iommu_hwpt_pgfault>.size
        if offset != 0 || count % record != 0 { return .failure(.espipe) }
        var delivered: [uapi_iommu_hwpt_pgfault] = []
        while let group = queue.pending.first, (delivered.count + group.count) * record <= count {
            delivered += group
            queue.awaitingResponse.insert(group[0].cookie)
            queue.pending.removeFirst()
        }
        return .success(delivered)
    }

    /// write(2) of responses on a fault fd; returns the bytes consumed.
    public func writeResponses(faultFD: Int32, _ responses: [uapi_iommu_hwpt_page_response], byteCount: Int? = nil)
        -> Result<Int, Errno>
    {
        guard let (context, id) = faultFiles[faultFD], case .fault(let queue)? = context.objects[id] else {
            return .failure(.ebadf)
        }
        let record = MemoryLayout<uapi_iommu_hwpt_page_response>.size
        let count = byteCount ?? responses.count * record
        if count % record != 0 { return .failure(.espipe) }
        var done = 0
        for response in responses.prefix(count / record) {
            let bad = response.code > 1 || !queue.awaitingResponse.contains(response.cookie)
            if bad { return done > 0 ? .success(done) : .failure(.einval) }
            queue.awaitingResponse.remove(response.cookie)
            done += record
        }
        return .success(done)
    }
}

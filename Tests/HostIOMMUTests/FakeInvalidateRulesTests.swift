import LinuxUAPI
import Testing

@testable import HostIOMMU
import HostIOMMUTesting

/// VTD-FACTS Part E: IOMMU_HWPT_INVALIDATE and the VT-d driver's per-entry rules, including the
/// entry_num write-back on every outcome.
@Suite struct FakeInvalidateRulesTests {
    struct Setup {
        let kernel = Kernel()
        let device: AssignedDevice
        let parent: ObjectID
        let nested: ObjectID
        init() throws {
            device = try kernel.device()
            parent = try kernel.nestParent(device)
            nested = try kernel.client.allocateNested(
                iommufd: kernel.iommufd, device: device.deviceID, parent: parent, table: .guestRoot)
        }

        /// Sends `entries` (each `entryLength` bytes, zero-padded) and returns errno and entry_num.
        func invalidate(
            _ entries: [uapi_iommu_hwpt_vtd_s1_invalidate], hwpt: ObjectID? = nil, entryLength: Int = 24,
            patch: (inout uapi_iommu_hwpt_invalidate) -> Void = { _ in }, tailByte: UInt8 = 0
        ) -> (Errno?, UInt32) {
            var buffer = [UInt8](repeating: 0, count: max(1, entries.count) * max(entryLength, 24))
            for (i, entry) in entries.enumerated() {
                withUnsafeBytes(of: entry) { bytes in
                    for j in 0..<min(24, entryLength) { buffer[i * entryLength + j] = bytes[j] }
                }
                if entryLength > 24 { buffer[i * entryLength + entryLength - 1] = tailByte }
            }
            return buffer.withUnsafeMutableBytes { bytes in
                var cmd = Command.invalidate(hwpt: hwpt ?? nested)
                cmd.entry_len = UInt32(entryLength)
                cmd.entry_num = UInt32(entries.count)
                cmd.data_uptr = UInt64(UInt(bitPattern: bytes.baseAddress))
                patch(&cmd)
                let errno = kernel.call(.hwptInvalidate, &cmd)
                return (errno, cmd.entry_num)
            }
        }

        var processed: [FakeIOMMUFD.Invalidation] { kernel.fake.invalidations(iommufd: kernel.iommufd, hwpt: nested) }
    }

    @Test func acceptedEntriesAreRecordedAndCounted() throws {
        let setup = try Setup()
        let (errno, done) = setup.invalidate([Command.entry(0x1000, 1, leaf: true), Command.entry(0, UInt64.max)])
        #expect(errno == nil && done == 2)
        #expect(setup.processed == [.init(address: 0x1000, pages: 1, leaf: true), .init(address: 0, pages: UInt64.max, leaf: false)])
    }

    @Test func zeroEntriesProbeTheDataType() throws {
        let setup = try Setup()
        #expect(setup.invalidate([]) == (nil, 0))
        #expect(setup.invalidate([], patch: { $0.data_type = 1 }) == (.einval, 0))
    }

    @Test func commandLevelErrorsReportZeroProcessed() throws {
        let setup = try Setup()
        let one = [Command.entry(0x1000, 1)]
        #expect(setup.invalidate(one, patch: { $0.reserved = 1 }) == (.eopnotsupp, 0))
        #expect(setup.invalidate(one, patch: { $0.data_uptr = 0 }) == (.einval, 0))
        #expect(setup.invalidate(one, patch: { $0.entry_len = 0 }) == (.einval, 0))
        #expect(setup.invalidate(one, hwpt: 99) == (.enoent, 0))
        #expect(setup.invalidate(one, hwpt: setup.parent) == (.einval, 0))  // paging HWPTs have no guest cache
        #expect(setup.invalidate(one, patch: { $0.data_type = 7 }) == (.einval, 0))
        #expect(setup.processed.isEmpty)
    }

    @Test func theFirstBadEntryStopsProcessingAndEntryNumSaysWhere() throws {
        let setup = try Setup()
        let good = Command.entry(0x1000, 1)
        #expect(setup.invalidate([good, Command.entry(0x1800, 1), good]) == (.einval, 1))  // unaligned
        #expect(setup.invalidate([good, good, Command.entry(0x1000, UInt64.max)]) == (.einval, 2))  // all needs addr 0
        var flagged = good
        flagged.flags = 1 << 4
        #expect(setup.invalidate([flagged]) == (.eopnotsupp, 0))
        var reserved = good
        reserved.reserved = 1
        #expect(setup.invalidate([good, reserved]) == (.eopnotsupp, 1))
        #expect(setup.processed.count == 4)
    }

    @Test func entryLengthFollowsCopyStructFromUser() throws {
        let setup = try Setup()
        #expect(setup.invalidate([Command.entry(0x1000, 1)], entryLength: 16) == (.einval, 0))
        #expect(setup.invalidate([Command.entry(0x1000, 1), Command.entry(0x2000, 1)], entryLength: 32) == (nil, 2))
        #expect(setup.invalidate([Command.entry(0x1000, 1)], entryLength: 32, tailByte: 1) == (.e2big, 0))
    }

    @Test func injectedPartialFailureKeepsEarlierEntries() throws {
        let setup = try Setup()
        setup.kernel.fake.failInvalidation(atEntry: 2, with: .eio)
        let entries = (0..<5).map { Command.entry(UInt64($0) << 12, 1) }
        #expect(setup.invalidate(entries) == (.eio, 2))
        #expect(setup.processed.map(\.address) == [0, 0x1000])
    }
}

/// VTD-FACTS Part E: IOMMU_FAULT_QUEUE_ALLOC and the fault fd's read/write rules.
@Suite struct FakeFaultQueueRulesTests {
    func allocate(_ kernel: Kernel, flags: UInt32 = 0) -> (Errno?, uapi_iommu_fault_alloc) {
        var cmd = uapi_iommu_fault_alloc(size: 16, flags: flags, out_fault_id: 0, out_fault_fd: 0)
        return (kernel.call(.faultQueueAlloc, &cmd), cmd)
    }

    @Test func allocRejectsFlagsAndReturnsAnIDAndAnFD() throws {
        let kernel = Kernel()
        #expect(allocate(kernel, flags: 1).0 == .eopnotsupp)
        let (errno, cmd) = allocate(kernel)
        #expect(errno == nil && cmd.out_fault_id == 1 && cmd.out_fault_fd != 0)
        // HWPTs can name it; destroy is refused while one does.
        let device = try kernel.device()
        var alloc = Command.hwptAlloc(device: device.deviceID, pt: device.ioasID, flags: UAPI_IOMMU_HWPT_ALLOC_FAULT_ID_VALID)
        alloc.fault_id = cmd.out_fault_id
        #expect(kernel.call(.hwptAlloc, &alloc) == nil)
        var destroy = uapi_iommu_destroy(size: 8, id: cmd.out_fault_id)
        #expect(kernel.call(.destroy, &destroy) == .ebusy)
    }

    @Test func readDeliversWholeGroupsOfWholeRecords() throws {
        let kernel = Kernel()
        let fd = Int32(bitPattern: allocate(kernel).1.out_fault_fd)
        let fault = uapi_iommu_hwpt_pgfault()
        kernel.fake.raiseFaultGroup(faultFD: fd, [fault, fault])
        kernel.fake.raiseFaultGroup(faultFD: fd, [fault])
        #expect(failure(kernel.fake.readFaults(faultFD: fd, count: 41)) == .espipe)
        #expect(failure(kernel.fake.readFaults(faultFD: fd, count: 40, offset: 40)) == .espipe)
        #expect(try kernel.fake.readFaults(faultFD: fd, count: 40).get().isEmpty)  // group of 2 does not fit
        #expect(try kernel.fake.readFaults(faultFD: fd, count: 120).get().count == 3)
    }

    @Test func writeChecksSizeCodeAndCookieAndReportsPartialProgress() throws {
        let kernel = Kernel()
        let fd = Int32(bitPattern: allocate(kernel).1.out_fault_fd)
        let first = kernel.fake.raiseFaultGroup(faultFD: fd, [uapi_iommu_hwpt_pgfault()])!
        let second = kernel.fake.raiseFaultGroup(faultFD: fd, [uapi_iommu_hwpt_pgfault()])!
        _ = kernel.fake.readFaults(faultFD: fd, count: 80)
        let ok = uapi_iommu_hwpt_page_response(cookie: first, code: 0)
        #expect(kernel.fake.writeResponses(faultFD: fd, [ok], byteCount: 12) == .failure(.espipe))
        #expect(kernel.fake.writeResponses(faultFD: fd, [.init(cookie: first, code: 2)]) == .failure(.einval))
        #expect(kernel.fake.writeResponses(faultFD: fd, [.init(cookie: 99, code: 0)]) == .failure(.einval))
        #expect(kernel.fake.writeResponses(faultFD: fd, [ok, .init(cookie: 99, code: 0)]) == .success(8))
        #expect(kernel.fake.writeResponses(faultFD: fd, [.init(cookie: second, code: 1)]) == .success(8))
    }
}

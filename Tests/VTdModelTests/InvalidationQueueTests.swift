import Testing
@testable import VTdModel

@Suite("Queued invalidation: queue mechanics")
struct InvalidationQueueMechanicsTests {
    @Test("a wait descriptor's status write lands after the invalidations before it (6.5.2.8)")
    func statusWrite() {
        let q = InvalidationQueueScenario()
        q.cache(domain: 4, iova: 0x5000)
        q.submit(Desc.iotlbDomain(4), Desc.wait(status: 0xC0FFEE, at: 0x9000))
        #expect(!q.cached(iova: 0x5000))
        #expect(q.status(at: 0x9000) == 0xC0FFEE)
        #expect(q.head == 2)
        #expect(!q.queueError)
    }

    @Test("256-bit descriptors in scalable mode: IQH counts 32-byte slots (6.5.2, IQA.DW)")
    func wideQueue() {
        let q = InvalidationQueueScenario(scalable: true)
        q.submit(Desc.iotlbGlobal(), Desc.wait(status: 1, at: 0x9000))
        #expect(q.unit.state.withLock { $0.invalidationQueue.registers.get64(Reg.invalidationQueueHead) } == 2 << 5)
        #expect(q.status(at: 0x9000) == 1)
    }

    @Test("IQA.DW is ignored without scalable mode: the queue stays 128-bit")
    func dwIgnoredInLegacy() {
        let q = InvalidationQueueScenario(scalable: false, setDW: true)
        #expect(!q.wide)
        q.submit(Desc.iotlbGlobal(), Desc.wait(status: 7, at: 0x9000))
        #expect(q.status(at: 0x9000) == 7)
        #expect(q.unit.state.withLock { $0.invalidationQueue.registers.get64(Reg.invalidationQueueHead) } == 2 << 4)
    }

    @Test("the ring wraps: descriptors across the end are all processed")
    func wrapAround() {
        let q = InvalidationQueueScenario()
        q.moveHead(to: q.entries - 1)
        q.submit(Desc.wait(status: 1, at: 0x9000), Desc.wait(status: 2, at: 0x9008), Desc.wait(status: 3, at: 0x9010))
        #expect(q.head == 2)
        #expect([q.status(at: 0x9000), q.status(at: 0x9008), q.status(at: 0x9010)] == [1, 2, 3])
    }

    @Test("more descriptors than one read batch are all processed, in order")
    func manyDescriptors() {
        let q = InvalidationQueueScenario()
        q.submit((0..<100).map { Desc.wait(status: UInt32($0), at: 0x9000) })
        #expect(q.head == 100)
        #expect(q.status(at: 0x9000) == 99)
    }

    @Test("nothing is processed while queued invalidation is off")
    func disabled() {
        let q = InvalidationQueueScenario()
        q.unit.mmioWrite(offset: Reg.globalCommand, value: 0, width: 4)
        q.submit(Desc.wait(status: 5, at: 0x9000))
        #expect(q.head == 0)
        #expect(q.status(at: 0x9000) == 0)
    }

    @Test("a tail beyond the queue size stops the queue with IQE, IQEI 1 (11.4.9)")
    func tailBeyondSize() {
        let q = InvalidationQueueScenario()
        q.setTailRaw(UInt64(q.entries) << 4)
        #expect(q.queueError)
        #expect(q.errorInfo == 1)
        #expect(q.guest.msis == [MSIMessage(address: 0xFEE0_0000, data: 0x31)])
    }

    @Test("a 256-bit queue with IQT bit 4 set stops with IQE, IQEI 6 (11.4.9)")
    func halfDescriptorTail() {
        let q = InvalidationQueueScenario(scalable: true)
        q.setTailRaw(0x30)
        #expect(q.queueError)
        #expect(q.errorInfo == 6)
    }

    @Test("a queue outside guest memory stops with IQE, IQEI 2 (descriptor fetch error)")
    func fetchFails() {
        let q = InvalidationQueueScenario(base: 0x4000_0000)
        q.setTail(1)
        #expect(q.queueError)
        #expect(q.errorInfo == 2)
        #expect(q.head == 0)
    }

    @Test("a bad descriptor stops the queue at it: earlier ones done, later ones not (6.5.2.10)")
    func stopsAtBadDescriptor() {
        let q = InvalidationQueueScenario()
        q.cache(domain: 1, iova: 0x1000)
        q.cache(domain: 2, iova: 0x2000)
        q.submit(Desc.iotlbDomain(1), InvalidationDescriptor(0xF, 0), Desc.iotlbDomain(2),
                 Desc.wait(status: 9, at: 0x9000))
        #expect(!q.cached(iova: 0x1000))
        #expect(q.cached(iova: 0x2000))
        #expect(q.head == 1)
        #expect(q.queueError && q.errorInfo == 3)
        #expect(q.status(at: 0x9000) == 0)
        // Stopped until software clears IQE: another IQT write does nothing.
        q.submit(Desc.wait(status: 10, at: 0x9008))
        #expect(q.head == 1 && q.status(at: 0x9008) == 0)
        #expect(q.guest.msis.count == 1)
    }

    @Test("after software fixes the descriptor and clears IQE the queue resumes at the head")
    func resumeAfterError() {
        let q = InvalidationQueueScenario()
        q.submit(InvalidationDescriptor(0x0, 0), Desc.wait(status: 3, at: 0x9000))
        #expect(q.queueError && q.head == 0)
        q.guest.write64(q.base, Desc.iotlbGlobal().words.0)
        q.clearQueueError()
        #expect(q.head == 2)
        #expect(q.status(at: 0x9000) == 3)
    }

    @Test("the fault event for IQE is masked by FECTL.IM: IP is set instead of an MSI (7.4)")
    func maskedFaultEvent() {
        let q = InvalidationQueueScenario()
        q.unit.mmioWrite(offset: Reg.faultEventControl, value: 1 << 31, width: 4)
        q.submit(InvalidationDescriptor(0xA, 0))
        #expect(q.queueError)
        #expect(q.guest.msis.isEmpty)
        #expect(q.unit.state.withLock { $0.faults.statusRegisters.get32(Reg.faultEventControl) } & (1 << 30) != 0)
    }

    @Test("a failed status write stops the queue at the wait descriptor")
    func statusWriteFails() {
        let q = InvalidationQueueScenario()
        q.submit(Desc.wait(status: 1, at: 0x7000_0000), Desc.wait(status: 2, at: 0x9000))
        #expect(q.queueError)
        #expect(q.head == 0)
        #expect(q.status(at: 0x9000) == 0)
    }
}

@Suite("Queued invalidation: descriptors")
struct InvalidationDescriptorTests {
    @Test("context-cache invalidation: global, domain and device with function mask (6.5.2.1)")
    func contextCache() {
        let q = InvalidationQueueScenario()
        q.submit(Desc.contextGlobal(), Desc.contextDomain(3), Desc.contextDevice(3, sid: 0x0102, fm: 2))
        #expect(!q.queueError)
        #expect(q.guest.events == [
            .contextChanged(sid: nil, pasid: nil), .contextChanged(sid: nil, pasid: nil),
            // FM 2 ignores function bits 2:1: functions 0, 2, 4 and 6 of device 0x0100.
            .contextChanged(sid: 0x0100, pasid: nil), .contextChanged(sid: 0x0102, pasid: nil),
            .contextChanged(sid: 0x0104, pasid: nil), .contextChanged(sid: 0x0106, pasid: nil),
        ])
    }

    @Test("the function mask ignores the most significant function bits, for events and cache alike (6.5.2.1)",
          arguments: [(UInt8(1), [UInt16(0x0101), 0x0105]), (UInt8(2), [UInt16(0x0101), 0x0103, 0x0105, 0x0107]),
                      (UInt8(3), Array(UInt16(0x0100)...0x0107))] as [(UInt8, [UInt16])])
    func contextFunctionMask(functionMask: UInt8, reached: [UInt16]) {
        let q = InvalidationQueueScenario()
        q.submit(Desc.contextDevice(3, sid: 0x0101, fm: UInt64(functionMask)))
        #expect(q.guest.events == reached.map { .contextChanged(sid: RequesterID(rawValue: $0), pasid: nil) })
        let scope = ContextInvalidationScope.device(sourceID: 0x0101, functionMask: functionMask, domain: 3)
        #expect((0x0100...0x0107).filter { scope.covers(sourceID: RequesterID(rawValue: $0)) } == reached)
    }

    @Test("context-cache invalidation with granularity 0 or reserved bits set is an error (6.5.2.1)")
    func contextCacheErrors() {
        let bad = InvalidationQueueScenario()
        bad.submit(InvalidationDescriptor(0x1, 0))
        #expect(bad.queueError && bad.errorInfo == 4)
        let reserved = InvalidationQueueScenario()
        reserved.submit(InvalidationDescriptor(0x1 | 1 << 4 | 1 << 60, 0))
        #expect(reserved.queueError && reserved.errorInfo == 4)
        let high = InvalidationQueueScenario()
        high.submit(InvalidationDescriptor(0x1 | 1 << 4, 1))
        #expect(high.queueError && high.errorInfo == 4)
    }

    @Test("IOTLB invalidation: global, domain-selective and page-selective with AM (6.5.2.2)")
    func iotlb() {
        let q = InvalidationQueueScenario()
        q.cache(domain: 1, iova: 0x1000)
        q.cache(domain: 2, iova: 0x4000)
        q.cache(domain: 2, iova: 0x5000)
        q.cache(domain: 2, iova: 0x8000)
        q.submit(Desc.iotlbPages(2, 0x4000, am: 1, ih: true))
        #expect(!q.cached(iova: 0x4000) && !q.cached(iova: 0x5000))
        #expect(q.cached(iova: 0x8000) && q.cached(iova: 0x1000))
        q.submit(Desc.iotlbDomain(2, drain: true))
        #expect(!q.cached(iova: 0x8000) && q.cached(iova: 0x1000))
        q.submit(Desc.iotlbGlobal())
        #expect(!q.cached(iova: 0x1000))
        #expect(!q.queueError)
    }

    @Test("IOTLB invalidation with AM above CAP.MAMV, granularity 0 or reserved bits is an error (6.5.2.2)")
    func iotlbErrors() {
        let am = InvalidationQueueScenario()
        am.submit(Desc.iotlbPages(1, 0, am: 19))
        #expect(am.queueError && am.errorInfo == 4)
        let maxAM = InvalidationQueueScenario()
        maxAM.submit(Desc.iotlbPages(1, 0, am: 18))
        #expect(!maxAM.queueError)
        let granularity = InvalidationQueueScenario()
        granularity.submit(InvalidationDescriptor(0x2, 0))
        #expect(granularity.queueError)
        let reserved = InvalidationQueueScenario()
        reserved.submit(InvalidationDescriptor(0x2 | 1 << 4, 1 << 8))
        #expect(reserved.queueError && reserved.errorInfo == 4)
    }

    @Test("device-TLB invalidation decodes the ATS size from S and the address (6.5.2.5)")
    func deviceTLB() throws {
        let q = InvalidationQueueScenario { $0.deviceIOTLB = true }
        try q.unit.setNotifications(.deviceTLBUnmap, sourceID: 0x0308, pasid: nil)
        q.submit(Desc.deviceTLB(sid: 0x0308, addr: 0x12_3000, size: false),
                 Desc.deviceTLB(sid: 0x0308, addr: 0x12_2000, size: true),     // bit 12 clear: 8 KiB
                 Desc.deviceTLB(sid: 0x0308, addr: 0x10_7000, size: true),     // bits 14:12 set: 64 KiB
                 Desc.deviceTLB(sid: 0x0308, addr: 0x7FFF_FFFF_FFFF_F000, size: true)) // every address
        #expect(q.guest.events == [
            .deviceTLBInvalidate(sid: 0x0308, pasid: nil, address: 0x12_3000, size: 0x1000),
            .deviceTLBInvalidate(sid: 0x0308, pasid: nil, address: 0x12_2000, size: 0x2000),
            .deviceTLBInvalidate(sid: 0x0308, pasid: nil, address: 0x10_0000, size: 0x1_0000),
            .deviceTLBInvalidate(sid: 0x0308, pasid: nil, address: 0, size: .max),
        ])
    }

    @Test("interrupt entry cache invalidation: global and index-selective with IM (6.5.2.7)")
    func interruptEntryCache() {
        let q = InvalidationQueueScenario()
        q.submit(Desc.iecGlobal(), Desc.iecIndex(0x2B, im: 2))
        #expect(q.guest.events == [.interruptCacheInvalidate(index: 0, count: 0),
                                   .interruptCacheInvalidate(index: 0x28, count: 4)])
        let bad = InvalidationQueueScenario()
        bad.submit(InvalidationDescriptor(0x4 | 1 << 20, 0))
        #expect(bad.queueError && bad.errorInfo == 4)
    }

    @Test("wait with IF sets ICS.IWC and sends the invalidation event once (6.5.2.8)")
    func waitInterrupt() {
        let q = InvalidationQueueScenario()
        q.submit(Desc.wait(interrupt: true))
        #expect(q.waitComplete)
        #expect(q.guest.msis == [MSIMessage(address: 0xFEE0_1000, data: 0x41)])
        // IWC still set: no new interrupt condition.
        q.submit(Desc.wait(interrupt: true))
        #expect(q.guest.msis.count == 1)
    }

    @Test("wait with IF while IECTL.IM is set leaves IECTL.IP pending, no MSI (6.5.2.8)")
    func waitInterruptMasked() {
        let q = InvalidationQueueScenario()
        q.unit.mmioWrite(offset: Reg.invalidationEventControl, value: 1 << 31, width: 4)
        q.submit(Desc.wait(interrupt: true))
        #expect(q.waitComplete && q.completionPending)
        #expect(q.guest.msis.isEmpty)
    }

    @Test("a wait with IF and no SW (FreeBSD's, which hit QEMU's assertion #3028) completes by interrupt and the queue goes on (6.5.2.8)")
    func waitInterruptWithoutStatusWrite() {
        let q = InvalidationQueueScenario()
        // FreeBSD dmar_qi_emit_wait_descr(intr, !memw, fence): IF | FN, no status data or address.
        q.submit(Desc.iotlbGlobal(), InvalidationDescriptor(0x5 | 1 << 4 | 1 << 6, 0), Desc.iotlbGlobal())
        #expect(!q.queueError)
        #expect(q.head == 3)
        #expect(q.waitComplete)
        #expect(q.guest.msis == [MSIMessage(address: 0xFEE0_1000, data: 0x41)])
        // The guest clears IWC; the next such wait interrupts again.
        q.unit.mmioWrite(offset: Reg.invalidationCompletionStatus, value: 1, width: 4)
        q.submit(InvalidationDescriptor(0x5 | 1 << 4, 0))
        #expect(q.waitComplete && q.head == 4 && q.guest.msis.count == 2)
    }

    @Test("a 128-bit queue (IQA.DW 0) while the latched root table is scalable: IQE, invalid descriptor width (IQEI 5, spec 6.5.2)")
    func narrowQueueWithScalableRoot() {
        let q = InvalidationQueueScenario(scalable: true, setDW: false)
        q.submit(Desc.iotlbGlobal())  // legacy root (none latched yet): 128-bit is right
        #expect(!q.queueError && q.head == 1)
        q.unit.mmioWrite(offset: Reg.rootTableAddress, value: 0x50000 | 1 << 10, width: 8)
        q.unit.mmioWrite(offset: Reg.globalCommand, value: UInt64(GlobalCommand.queuedInvalidationEnable.rawValue
                                                                  | GlobalCommand.setRootTablePointer.rawValue), width: 4)
        q.submit(Desc.iotlbGlobal())
        #expect(q.queueError && q.errorInfo == 5)
        #expect(q.head == 1)
    }

    @Test("wait with both SW and IF writes the status, then interrupts; with neither it is a fence")
    func waitCombinations() {
        let q = InvalidationQueueScenario()
        q.submit(Desc.wait(status: 0x55, at: 0x9000, interrupt: true), Desc.wait(fence: true))
        #expect(q.status(at: 0x9000) == 0x55)
        #expect(q.waitComplete)
        #expect(q.head == 2 && !q.queueError)
    }

    @Test("wait with PD (no page requests) or status address bits 1:0 set is an error (6.5.2.8)")
    func waitErrors() {
        let drain = InvalidationQueueScenario()
        drain.submit(InvalidationDescriptor(0x5 | 1 << 7, 0))
        #expect(drain.queueError && drain.errorInfo == 4)
        let address = InvalidationQueueScenario()
        address.submit(Desc.wait(status: 1, at: 0x9002))
        #expect(address.queueError && address.errorInfo == 4)
        let withPageRequests = InvalidationQueueScenario(scalable: true, pageRequests: true)
        withPageRequests.submit(InvalidationDescriptor(0x5 | 1 << 7, 0))
        #expect(!withPageRequests.queueError)
    }

    @Test("PASID-based IOTLB: all-in-PASID and page-selective, RID_PASID entries included (6.5.2.4)")
    func pasidIOTLB() {
        let q = InvalidationQueueScenario(scalable: true)
        q.cache(domain: 5, pasid: nil, effectivePASID: 0, iova: 0x3000)
        q.cache(domain: 5, pasid: nil, effectivePASID: 0, iova: 0x6000)
        q.cache(domain: 5, pasid: 7, iova: 0x3000)
        q.submit(Desc.pasidIOTLBPages(5, pasid: 0, 0x3000, am: 0), Desc.wait(status: 1, at: 0x9000))
        #expect(!q.cached(iova: 0x3000))
        #expect(q.cached(iova: 0x6000) && q.cached(pasid: 7, iova: 0x3000))
        q.submit(Desc.pasidIOTLBAll(5, pasid: 7))
        #expect(!q.cached(pasid: 7, iova: 0x3000) && q.cached(iova: 0x6000))
        #expect(!q.queueError)
    }

    @Test("IOTLB invalidations send UNMAP events to the registered (sid, PASID) pairs they can concern")
    func unmapNotifications() throws {
        let q = InvalidationQueueScenario(scalable: true)
        try q.unit.setNotifications(.unmap, sourceID: 0x10, pasid: nil)
        try q.unit.setNotifications(.unmap, sourceID: 0x18, pasid: 5)
        q.submit(Desc.pasidIOTLBPages(1, pasid: 0, 0x7_3000, am: 2))
        #expect(q.guest.events == [.unmap(sid: 0x10, pasid: nil, address: 0x7_0000, size: 0x4000)])
        q.submit(Desc.iotlbPages(1, 0x5000, am: 0), Desc.iotlbGlobal())
        #expect(q.guest.events.dropFirst() == [
            .unmap(sid: 0x10, pasid: nil, address: 0x5000, size: 0x1000),
            .unmap(sid: 0x18, pasid: 5, address: 0x5000, size: 0x1000),
            .unmap(sid: 0x10, pasid: nil, address: 0, size: .max),
            .unmap(sid: 0x18, pasid: 5, address: 0, size: .max),
        ])
    }

    @Test("PASID-based IOTLB with granularity 0/1 or in a 128-bit queue is an error (6.5.2.4); AM above MAMV is not (InvalidationReachTests)")
    func pasidIOTLBErrors() {
        for g: UInt64 in [0, 1] {
            let q = InvalidationQueueScenario(scalable: true)
            q.submit(InvalidationDescriptor(0x6 | g << 4, 0))
            #expect(q.queueError && q.errorInfo == 4)
        }
        let narrow = InvalidationQueueScenario(scalable: true, setDW: false)
        narrow.submit(Desc.pasidIOTLBAll(1, pasid: 0))
        #expect(narrow.queueError && narrow.errorInfo == 5)
        let upper = InvalidationQueueScenario(scalable: true)
        var d = Desc.pasidIOTLBAll(1, pasid: 0)
        d.words.3 = 1
        upper.submit(d)
        #expect(upper.queueError && upper.errorInfo == 4)
    }

    @Test("PASID-cache invalidation: domain, PASID-selective, global; granularity 2 is an error (6.5.2.3)")
    func pasidCache() {
        let q = InvalidationQueueScenario(scalable: true)
        q.submit(Desc.pasidCache(granularity: 0, 3, pasid: 0), Desc.pasidCache(granularity: 1, 3, pasid: 9),
                 Desc.pasidCache(granularity: 3, 0, pasid: 0))
        #expect(!q.queueError)
        #expect(q.guest.events == [.contextChanged(sid: nil, pasid: nil), .contextChanged(sid: nil, pasid: 9),
                                   .contextChanged(sid: nil, pasid: nil)])
        let bad = InvalidationQueueScenario(scalable: true)
        bad.submit(Desc.pasidCache(granularity: 2, 3, pasid: 0))
        #expect(bad.queueError && bad.errorInfo == 4)
    }

    @Test("device-TLB invalidations reach only hosts registered for them (QEMU's DEVIOTLB_UNMAP); global reaches every PASID")
    func deviceTLBOnlyToRegistered() throws {
        let q = InvalidationQueueScenario(scalable: true) { $0.deviceIOTLB = true }
        try q.unit.setNotifications(.unmap, sourceID: 0x0410, pasid: nil)
        try q.unit.setNotifications(.deviceTLBUnmap, sourceID: 0x0410, pasid: 7)
        try q.unit.setNotifications(.deviceTLBUnmap, sourceID: 0x0410, pasid: 9)
        try q.unit.setNotifications(.deviceTLBUnmap, sourceID: 0x0500, pasid: 7)
        q.submit(Desc.deviceTLB(sid: 0x0410, addr: 0x1000, size: false),  // no registration for (0x0410, none)
                 Desc.pasidDeviceTLB(sid: 0x0410, pasid: 8, addr: 0x1000, size: false),
                 Desc.pasidDeviceTLB(sid: 0x0410, pasid: 9, addr: 0x1000, size: false),
                 Desc.pasidDeviceTLB(sid: 0x0410, pasid: 8, addr: 0x1000, size: false, global: true))
        #expect(!q.queueError)
        #expect(q.guest.events == [
            .deviceTLBInvalidate(sid: 0x0410, pasid: 9, address: 0x1000, size: 0x1000),
            .deviceTLBInvalidate(sid: 0x0410, pasid: 7, address: 0x1000, size: 0x1000),
            .deviceTLBInvalidate(sid: 0x0410, pasid: 9, address: 0x1000, size: 0x1000),
        ])
    }

    @Test("the host hears of an invalidation before the guest sees the wait descriptor's status (6.5.2.8)")
    func eventsBeforeWaitStatus() throws {
        let q = InvalidationQueueScenario()
        try q.unit.setNotifications(.unmap, sourceID: 0x10, pasid: nil)
        var eventsAtStatusWrite: [PlatformEvent]?
        q.memory.onWrite = { [unowned q] in eventsAtStatusWrite = q.guest.events }
        q.submit(Desc.iotlbDomain(1), Desc.wait(status: 1, at: 0x9000))
        #expect(q.status(at: 0x9000) == 1)
        #expect(eventsAtStatusWrite == [.unmap(sid: 0x10, pasid: nil, address: 0, size: .max)])
    }

    @Test("PASID-based device-TLB invalidation carries the PASID and the ATS size (6.5.2.6)")
    func pasidDeviceTLB() throws {
        let q = InvalidationQueueScenario(scalable: true) { $0.deviceIOTLB = true }
        try q.unit.setNotifications(.deviceTLBUnmap, sourceID: 0x0410, pasid: 33)
        q.submit(Desc.pasidDeviceTLB(sid: 0x0410, pasid: 33, addr: 0x20_1000, size: true))
        #expect(q.guest.events == [.deviceTLBInvalidate(sid: 0x0410, pasid: 33, address: 0x20_0000, size: 0x4000)])
        let bad = InvalidationQueueScenario(scalable: true)
        bad.submit(InvalidationDescriptor(0x8, 1 << 5))
        #expect(bad.queueError && bad.errorInfo == 4)
    }

    @Test("page group response is delivered with page requests and an error without (6.5.2.9)")
    func pageGroupResponse() {
        let q = InvalidationQueueScenario(scalable: true, pageRequests: true)
        q.submit(Desc.pageGroupResponse(rid: 0x0500, pasid: 12, code: 1, index: 0x1A5))
        #expect(q.guest.events == [.pageGroupResponse(sid: 0x0500, pasid: 12, groupIndex: 0x1A5, responseCode: 1)])
        let off = InvalidationQueueScenario(scalable: true)
        off.submit(Desc.pageGroupResponse(rid: 0x0500, pasid: nil, code: 0, index: 1))
        #expect(off.queueError && off.errorInfo == 3)
    }

    @Test("unknown descriptor types stop the queue with IQEI 3 (6.5.2)")
    func unknownTypes() {
        for low: UInt64 in [0x0, 0xA, 0xF, 0x1 | 1 << 9, 0x5 | 1 << 11] {
            let q = InvalidationQueueScenario(scalable: true)
            q.submit(InvalidationDescriptor(low, 0))
            #expect(q.queueError && q.errorInfo == 3, "type word 0x\(String(low, radix: 16))")
        }
    }

    @Test("a 128-bit type in a 256-bit queue needs its upper half zero (6.5.2)")
    func narrowTypeInWideQueue() {
        let q = InvalidationQueueScenario(scalable: true)
        q.submit(InvalidationDescriptor(Desc.iotlbGlobal().words.0, 0, 0, 0x1000))
        #expect(q.queueError && q.errorInfo == 4)
    }
}

@Suite("Queued invalidation: an untrusted guest")
struct InvalidationQueueRobustnessTests {
    @Test("a run started from a callback of a run does not recurse; the outer run takes the new tail")
    func nestedTrigger() {
        let q = InvalidationQueueScenario()
        // The guest queues more work from inside the callback and writes IQT.
        q.queueFromFirstStatusWrite(Desc.wait(status: 2, at: 0x9008)) { [unowned q] in
            #expect(q.head == 0, "the nested run must not process anything")
        }
        q.submit(Desc.wait(status: 1, at: 0x9000))
        #expect(q.head == 2)
        #expect(q.status(at: 0x9008) == 2)
    }

    @Test("a guest that refills the queue from every status write is cut off after one lap")
    func oneLapPerTrigger() {
        let q = InvalidationQueueScenario()
        var writes = 0
        q.memory.onWrite = { [unowned q] in
            writes += 1
            q.place(Desc.wait(status: UInt32(writes), at: 0x9000))
            q.setTail(q.tail)
        }
        q.submit(Desc.wait(status: 0, at: 0x9000))
        #expect(writes == q.entries)
        #expect(!q.queueError)
        // The rest waits for the next trigger.
        #expect(q.head != q.tail)
    }
}


/// The IQT write's common case (`finishLastWait`): once a run has left its hints, a write whose
/// descriptors end in a wait with a status write is finished without the run loop. Each test
/// submits once to leave the hints, then checks the case's edges on the second write.
@Suite("Queued invalidation: an IQT write ending in a wait")
struct InvalidationQueueLastWaitTests {
    private func hinted() -> InvalidationQueueScenario {
        let q = InvalidationQueueScenario()
        q.submit(Desc.wait(status: 1, at: 0x9000))
        #expect(q.unit.queueRingHint.load(ordering: .relaxed) != 0, "the first run leaves the ring hint")
        return q
    }

    @Test("invalidations before the wait are done when its status lands, and IQH passes it")
    func invalidateThenStatus() {
        let q = hinted()
        q.cache(domain: 4, iova: 0x5000)
        var cachedAtStatusWrite: Bool?
        q.memory.onWrite = { [unowned q] in cachedAtStatusWrite = q.cached(iova: 0x5000) }
        q.submit(Desc.iotlbPages(4, 0x5000, am: 0), Desc.wait(status: 2, at: 0x9000))
        #expect(cachedAtStatusWrite == false)
        #expect(q.status(at: 0x9000) == 2)
        #expect(q.head == q.tail && q.head == 3)
        #expect(!q.queueError)
    }

    @Test("a failed status write stops the queue at the wait: IQE, IQH on it")
    func statusWriteFails() {
        let q = hinted()
        q.submit(Desc.iotlbDomain(4), Desc.wait(status: 2, at: 0x7000_0000))
        #expect(q.queueError)
        #expect(q.head == 2)
    }

    @Test("a wait with IF and SW writes the status, sets ICS.IWC and interrupts")
    func statusAndInterrupt() {
        let q = hinted()
        q.submit(Desc.wait(status: 3, at: 0x9000, interrupt: true))
        #expect(q.status(at: 0x9000) == 3)
        #expect(q.waitComplete)
        #expect(q.guest.msis == [MSIMessage(address: 0xFEE0_1000, data: 0x41)])
    }

    @Test("descriptors queued from the status write are run by the same IQT write")
    func queuedDuringStatusWrite() {
        let q = hinted()
        q.queueFromFirstStatusWrite(Desc.wait(status: 5, at: 0x9008))
        q.submit(Desc.wait(status: 4, at: 0x9000))
        #expect(q.status(at: 0x9000) == 4)
        #expect(q.status(at: 0x9008) == 5)
        #expect(q.head == q.tail)
    }

    @Test("a wait that is not the last descriptor: the ones after it run too")
    func waitInTheMiddle() {
        let q = hinted()
        q.cache(domain: 4, iova: 0x5000)
        q.submit(Desc.wait(status: 6, at: 0x9000), Desc.iotlbPages(4, 0x5000, am: 0))
        #expect(q.status(at: 0x9000) == 6)
        #expect(!q.cached(iova: 0x5000))
        #expect(q.head == q.tail)
    }
}

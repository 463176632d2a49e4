import Testing
@testable import VTdModel

@Suite("Register-based invalidation")
struct RegisterInvalidationTests {
    /// CCMD with ICC, granularity and the fields of a device-selective request.
    func ccmd(_ granularity: InvalidationGranularity, domain: UInt64 = 0, sid: UInt64 = 0, fm: UInt64 = 0) -> UInt64 {
        1 << 63 | granularity.rawValue << 61 | fm << 32 | sid << 16 | domain
    }

    /// IOTLB register with IVT, granularity and domain.
    func iotlb(_ granularity: InvalidationGranularity, domain: UInt64 = 0) -> UInt64 {
        1 << 63 | granularity.rawValue << 60 | domain << 32
    }

    func cache(_ rig: Rig, domain: DomainID, page: UInt64, sid: RequesterID = 0x10) {
        rig.withState { state, _ in
            state.caches.iotlb.insert(IOTLBEntry(domainID: domain, sourceID: sid, pasid: nil, effectivePASID: nil, inputPage: page,
                                          outputPage: page, pageShift: 12, permissions: .readWrite))
        }
    }

    func cached(_ rig: Rig, page: UInt64, sid: RequesterID = 0x10) -> Bool {
        rig.state { $0.caches.iotlb.lookup(sourceID: sid, pasid: nil, address: page) } != nil
    }

    @Test("CCMD completes at once: ICC reads clear, CAIG reports the granularity, spec 11.4.4.1",
          arguments: [InvalidationGranularity.global, .domain, .selective])
    func contextCommand(_ granularity: InvalidationGranularity) {
        let rig = Rig()
        let generation = rig.state(\.caches.generation)
        let request = ccmd(granularity, domain: 7, sid: 0x0108, fm: 2)
        rig.write64(Reg.contextCommand, request)
        let done = ContextCommand(rawValue: rig.read64(Reg.contextCommand))
        #expect(!done.invalidate)
        #expect(done.actualGranularity == granularity)
        #expect(done.requestedGranularity == granularity)
        #expect(done.domainID == 7 && done.sourceID == 0x0108 && done.functionMask == 2)
        #expect(rig.state(\.caches.generation) == generation + 1)
    }

    @Test("CCMD written as two halves acts when the half holding ICC is written, spec 10.2")
    func contextCommandHalves() {
        let rig = Rig()
        let request = ccmd(.domain, domain: 9)
        rig.write32(Reg.contextCommand, UInt32(truncatingIfNeeded: request))
        #expect(rig.state(\.caches.generation) == 0)
        rig.write32(Reg.contextCommand + 4, UInt32(request >> 32))
        #expect(ContextCommand(rawValue: rig.read64(Reg.contextCommand)).actualGranularity == .domain)
        #expect(rig.state(\.caches.generation) == 1)
    }

    @Test("CCMD with reserved granularity 0 is not performed: CAIG 0, logged, spec 11.4.4.1")
    func contextCommandReservedGranularity() {
        let rig = Rig()
        rig.write64(Reg.contextCommand, 1 << 63)
        #expect(rig.read64(Reg.contextCommand) == 0)
        #expect(rig.guest.guestErrors.count == 1)
    }

    @Test("CAIG is read-only for software, spec 11.4.4.1")
    func caigReadOnly() {
        let rig = Rig()
        rig.write64(Reg.contextCommand, 3 << 59)
        #expect(rig.read64(Reg.contextCommand) == 0)
    }

    @Test("IOTLB global invalidation drops every translation: IVT clear, IAIG global, spec 11.4.8.1")
    func iotlbGlobal() {
        let rig = Rig()
        cache(rig, domain: 1, page: 0x1000)
        cache(rig, domain: 2, page: 0x2000, sid: 0x20)
        rig.write64(Reg.iotlbInvalidate, iotlb(.global))
        let done = IOTLBInvalidate(rawValue: rig.read64(Reg.iotlbInvalidate))
        #expect(!done.invalidate && done.actualGranularity == .global)
        #expect(!cached(rig, page: 0x1000) && !cached(rig, page: 0x2000, sid: 0x20))
    }

    @Test("IOTLB domain-selective invalidation drops that domain only, spec 11.4.8.1")
    func iotlbDomain() {
        let rig = Rig()
        cache(rig, domain: 1, page: 0x1000)
        cache(rig, domain: 2, page: 0x2000, sid: 0x20)
        rig.write64(Reg.iotlbInvalidate, iotlb(.domain, domain: 1))
        #expect(IOTLBInvalidate(rawValue: rig.read64(Reg.iotlbInvalidate)).actualGranularity == .domain)
        #expect(!cached(rig, page: 0x1000) && cached(rig, page: 0x2000, sid: 0x20))
    }

    @Test("IOTLB page-selective invalidation takes IVA's address and mask; IVA reads 0, spec 11.4.8.2")
    func iotlbPages() {
        let rig = Rig()
        cache(rig, domain: 1, page: 0x1000)
        cache(rig, domain: 1, page: 0x5000)
        rig.write64(Reg.invalidateAddress, 0x4000 | 2)  // 4 pages from 0x4000
        #expect(rig.read64(Reg.invalidateAddress) == 0)
        rig.write64(Reg.iotlbInvalidate, iotlb(.selective, domain: 1))
        #expect(IOTLBInvalidate(rawValue: rig.read64(Reg.iotlbInvalidate)).actualGranularity == .selective)
        #expect(cached(rig, page: 0x1000) && !cached(rig, page: 0x5000))
    }

    @Test("register-based invalidations send the queue's events: UNMAP to notifiers, context changes with FM (6.5.1)")
    func registerEvents() throws {
        let rig = Rig()
        try rig.unit.setNotifications(.unmap, sourceID: 0x10, pasid: nil)
        rig.write64(Reg.invalidateAddress, 0x4000 | 2)  // 4 pages from 0x4000
        rig.write64(Reg.iotlbInvalidate, iotlb(.selective, domain: 1))
        rig.write64(Reg.iotlbInvalidate, iotlb(.domain, domain: 1))
        rig.write64(Reg.contextCommand, ccmd(.selective, domain: 1, sid: 0x0109, fm: 1))
        #expect(rig.guest.events == [
            .unmap(sid: 0x10, pasid: nil, address: 0x4000, size: 0x4000),
            .unmap(sid: 0x10, pasid: nil, address: 0, size: .max),
            .contextChanged(sid: 0x0109, pasid: nil), .contextChanged(sid: 0x010D, pasid: nil),
        ])
    }

    @Test("an address mask above CAP.MAMV is not performed: IAIG 0, spec 11.4.8.2")
    func iotlbMaskTooLarge() {
        let rig = Rig()
        cache(rig, domain: 1, page: 0x1000)
        rig.write64(Reg.invalidateAddress, 19)
        rig.write64(Reg.iotlbInvalidate, iotlb(.selective, domain: 1))
        #expect(IOTLBInvalidate(rawValue: rig.read64(Reg.iotlbInvalidate)).actualGranularity == InvalidationGranularity.none)
        #expect(cached(rig, page: 0x1000))
        #expect(rig.guest.guestErrors.count == 1)
    }

    @Test("while queued invalidation is enabled the registers do nothing and report granularity 0, spec 6.5.2")
    func refusedWithQueuedInvalidation() {
        let rig = Rig()
        cache(rig, domain: 1, page: 0x1000)
        rig.command(.queuedInvalidationEnable)
        rig.write64(Reg.iotlbInvalidate, iotlb(.global))
        rig.write64(Reg.contextCommand, ccmd(.global))
        #expect(rig.read64(Reg.iotlbInvalidate) == 1 << 60)  // IIRG as written, IVT clear, IAIG 0
        #expect(rig.read64(Reg.contextCommand) == 1 << 61)
        #expect(cached(rig, page: 0x1000))
        #expect(rig.state(\.caches.generation) == 0)
        #expect(rig.guest.guestErrors.count == 2)
    }

    @Test("IOTLB register masks: DID, DR, DW, IIRG writable; IAIG read-only, spec 11.4.8.1")
    func iotlbMasks() {
        let rig = Rig()
        rig.write64(Reg.iotlbInvalidate, ~(1 << 63))
        #expect(rig.read64(Reg.iotlbInvalidate) == 0x3003_FFFF_0000_0000)
    }
}

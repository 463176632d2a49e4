// Page requests meet the requester's context entry before they meet the queue: only a
// scalable-mode context entry with PRE set lets a device's page requests through.

import Testing
@testable import VTdModel

@Suite("Page requests and the requester's context entry (VT-d spec 7.5, 9.4 PRE)")
struct PageRequestContextTests {
    static let sid: RequesterID = 0x0308
    static let queueBase: UInt64 = 0x4_0000

    /// A first-level scalable unit with page requests, its queue at `queueBase`, the requester
    /// `sid` with PASID 5 mapped, and remapping on.
    struct Setup {
        let guest = GuestMemory()
        let unit: VTdUnit
        let device: ScalableDevice
        let tables: FirstLevelTables

        init(pageRequestsEnabled: Bool = true, contextFPD: Bool = false) {
            unit = guest.makeUnit(.scalableFirstLevel.with { $0.pasid = true; $0.pageRequests = true })
            let root = guest.scalableRoot()
            device = root.device(PageRequestContextTests.sid.rawValue, faultProcessingDisabled: contextFPD)
            if pageRequestsEnabled {
                guest.write64(device.contextEntry, guest.read64(device.contextEntry) | 1 << 4)  // PRE
            }
            tables = device.firstLevel(pasid: 5, domain: 7)
            unit.enableTranslation(root)
            unit.mmioWrite(offset: Reg.pageRequestQueueAddress, value: PageRequestContextTests.queueBase, width: 8)
        }

        func request(sid: RequesterID = PageRequestContextTests.sid, address: UInt64 = 0x7000) -> PageRequestOutcome {
            unit.pageRequest(PageRequest(sourceID: sid, pasid: 5, address: address, write: true, groupIndex: 0x33))
        }
        var tail: UInt64 { unit.mmioRead(offset: Reg.pageRequestQueueTail, width: 8) }
        var firstFaultRecord: FaultRecordingRegister { unit.state.withLock { $0.faults.record(0) } }
    }

    @Test("with PRE set the request is queued")
    func preSetQueues() {
        let s = Setup()
        #expect(s.request() == .queued)
        #expect(s.tail == 32)
        #expect(!s.firstFaultRecord.fault)
    }

    @Test("with PRE clear the request is refused with fault 0x47 and an invalid-request answer")
    func preClearFaults() {
        let s = Setup(pageRequestsEnabled: false)
        #expect(s.request(address: 0x7123) == .dropped(autoResponse: .invalidRequest))
        #expect(s.tail == 0)
        let record = s.firstFaultRecord
        #expect(record.fault && record.reason == FaultReason.smContextEntryPREClear.rawValue)
        #expect(record.sourceID == Self.sid && record.pasidPresent && record.pasid == 5)
        #expect(record.faultInfo == 0x7000 && !record.isRead)
        #expect(s.guest.events.contains(.pageGroupResponse(sid: Self.sid, pasid: 5, groupIndex: 0x33,
                                                            responseCode: PageGroupResponseCode.invalidRequest.rawValue)))
    }

    @Test("FPD in the context entry silences the PRE fault, not the refusal (spec 7.1.3)")
    func fpdSilencesPREFault() {
        let s = Setup(pageRequestsEnabled: false, contextFPD: true)
        #expect(s.request() == .dropped(autoResponse: .invalidRequest))
        #expect(!s.firstFaultRecord.fault)
    }

    @Test("a requester without a present context entry is refused with the context fault")
    func noContextEntry() {
        let s = Setup()
        #expect(s.request(sid: 0x0309) == .dropped(autoResponse: .invalidRequest))
        #expect(s.firstFaultRecord.reason == FaultReason.smContextEntryNotPresent.rawValue)
    }

    @Test("with legacy-mode tables page requests fault 0x32")
    func legacyTables() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel.with { $0.pasid = true; $0.pageRequests = true })
        unit.enableTranslation(guest.legacyRoot())
        unit.mmioWrite(offset: Reg.pageRequestQueueAddress, value: Self.queueBase, width: 8)
        #expect(unit.pageRequest(PageRequest(sourceID: Self.sid, pasid: 5, address: 0x1000))
                    == .dropped(autoResponse: .invalidRequest))
        #expect(unit.state.withLock { $0.faults.record(0) }.reason == FaultReason.smTTMZeroForPageGroupRequest.rawValue)
    }

    @Test("a queued page request drops what the IOTLB cached for that page (implicit invalidation, spec 6.5)")
    func implicitInvalidation() {
        let s = Setup()
        s.tables.map(iova: 0x7000, to: 0x9_9000, writable: false)
        s.tables.map(iova: 0x8000, to: 0x9_A000, writable: false)
        for page: UInt64 in [0x7000, 0x8000] {
            #expect(s.unit.translate(TranslationRequest(sourceID: Self.sid, pasid: 5, address: page, access: .read))
                        .faultReason == nil)
        }
        func cached(_ page: UInt64) -> Bool {
            s.unit.state.withLock { $0.caches.iotlb.lookup(sourceID: Self.sid, pasid: 5, address: page) != nil }
        }
        #expect(cached(0x7000) && cached(0x8000))
        #expect(s.request(address: 0x7000) == .queued)
        #expect(!cached(0x7000))
        #expect(cached(0x8000))
    }
}

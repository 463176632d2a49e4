import Testing
@testable import VTdModel

@Suite("Page request descriptors (VT-d spec 7.5)")
struct PageRequestDescriptorTests {
    @Test("a page request becomes a 256-bit descriptor with each field in its place (spec 7.5)")
    func encoding() {
        let request = PageRequest(sourceID: 0x0308, pasid: 0x1_2345, address: 0x7FFF_1234_5678, read: true,
                                  write: true, execute: true, privileged: true, lastInGroup: true, groupIndex: 0x1A5)
        let d = PageRequestDescriptor(request)
        #expect(d.words.0 == 0x01 | 1 << 8 | 0x0308 << 16 | 0x1_2345 << 32 | 1 << 52 | 1 << 53)
        #expect(d.words.1 == 0x7FFF_1234_5000 | 0x1A5 << 3 | 0b111)
        #expect(d.words.2 == 0 && d.words.3 == 0)
        #expect(d.descriptorType == 1 && d.pasidPresent && d.requesterID == 0x0308 && d.pasid == 0x1_2345)
        #expect(d.execute && d.privileged && d.read && d.write && d.lastInGroup)
        #expect(d.groupIndex == 0x1A5 && d.address == 0x7FFF_1234_5000)
    }

    @Test("without a PASID the PASID-present bit and field stay clear (spec 7.5)")
    func noPASID() {
        let d = PageRequestDescriptor(PageRequest(sourceID: 0x10, address: 0x1000, lastInGroup: false, groupIndex: 3))
        #expect(!d.pasidPresent && d.pasid == 0 && !d.lastInGroup && d.groupIndex == 3)
    }

    @Test("the page group response descriptor's fields (spec 6.5.2, type 9)")
    func responseDescriptor() {
        let r = PageGroupResponseDescriptor(requesterID: 0x0308, pasid: 0x42, groupIndex: 0x1FF, code: .invalidRequest)
        #expect(r.low == 0x9 | 1 << 4 | 0x1 << 12 | 0x0308 << 16 | 0x42 << 32)
        #expect(r.high == 0x1FF << 3)
        #expect(r.pasidPresent && r.requesterID == 0x0308 && r.pasid == 0x42 && r.groupIndex == 0x1FF)
        #expect(r.responseCode == .invalidRequest)
        #expect(PageGroupResponseDescriptor(low: 0x9 | 0x5 << 12, high: 0).responseCode == nil)
    }
}

@Suite("Page request queue (VT-d spec 7.5)")
struct PageRequestQueueTests {
    @Test("a request lands at PQT in guest memory, PQT advances by 32 bytes, PPR is set and the event fires")
    func requestIsQueued() {
        let s = PageRequestScenario()
        let request = PageRequest(sourceID: 0x0100, pasid: 7, address: 0xABC000, write: true, groupIndex: 9)
        #expect(s.unit.pageRequest(request) == .queued)
        #expect(s.descriptor(at: 0) == PageRequestDescriptor(request))
        #expect(s.tail == 32)
        #expect(s.status == .pendingPageRequest)
        #expect(s.eventMessages.count == 1)
    }

    @Test("no new event while PPR is still set; clearing PPR re-arms it (spec 7.5, Linux prq.c)")
    func eventOnlyOnPendingEdge() {
        let s = PageRequestScenario()
        _ = s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x1000, groupIndex: 1))
        _ = s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x2000, groupIndex: 2))
        #expect(s.eventMessages.count == 1)
        #expect(s.tail == 64)
        s.clearStatus(.pendingPageRequest)
        _ = s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x3000, groupIndex: 3))
        #expect(s.eventMessages.count == 2)
        #expect(s.descriptor(at: 64).address == 0x3000)
    }

    @Test("with PECTL.IM set the event is held pending in PECTL.IP instead of sent")
    func maskedEventSetsPending() {
        let s = PageRequestScenario()
        s.eventControl = 1 << 31
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x1000)) == .queued)
        #expect(s.eventMessages.isEmpty)
        #expect(s.eventControl == 1 << 31 | 1 << 30)
    }

    @Test("the tail wraps from the end of the queue to its start")
    func tailWraps() {
        let s = PageRequestScenario()
        let last = s.queueBytes - 32
        s.head = 0x40
        s.tail = last
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x5000)) == .queued)
        #expect(s.descriptor(at: last).address == 0x5000)
        #expect(s.tail == 0)
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x6000)) == .queued)
        #expect(s.tail == 32)
    }

    @Test("PQS sizes the queue at 2^PQS pages of 128 descriptors (spec PQA)")
    func queueSize() {
        let s = PageRequestScenario(queue: PageRequestQueueAddress(rawValue: 0x40000 | 2))
        #expect(s.queue.entryCount == 512)
        s.head = 0x40
        s.tail = 4 * 4096 - 32
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x7000)) == .queued)
        #expect(s.tail == 0)
    }

    @Test("a full queue sets PRO, raises the event and answers the group itself with success (spec 7.5 overflow)")
    func overflow() {
        let s = PageRequestScenario()
        for i in 0..<127 {
            #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: UInt64(i) << 12, lastInGroup: false)) == .queued)
        }
        #expect(s.tail == 127 * 32)
        s.clearStatus(.pendingPageRequest)
        let msisBefore = s.eventMessages.count
        let request = PageRequest(sourceID: 0x0200, pasid: 3, address: 0x99000, groupIndex: 0x55)
        #expect(s.unit.pageRequest(request) == .dropped(autoResponse: .success))
        #expect(s.tail == 127 * 32)
        #expect(s.status == .pageRequestOverflow)
        #expect(s.eventMessages.count == msisBefore + 1)
        #expect(s.groupResponses == [.pageGroupResponse(sid: 0x0200, pasid: 3, groupIndex: 0x55,
                                                        responseCode: PageGroupResponseCode.success.rawValue)])
    }

    @Test("while PRO is set every request is dropped, and only group-ending requests get an answer")
    func droppedWhileOverflowed() {
        let s = PageRequestScenario()
        // PRO as an earlier overflow left it (its event went out then, not here).
        s.unit.state.withLock { var event = Effects(); $0.pageRequests.signal(overflowed: true, effects: &event) }
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x1000, lastInGroup: false)) == .dropped(autoResponse: nil))
        // A stop marker (last, neither read nor write) expects no response.
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, pasid: 2, address: 0, read: false, lastInGroup: true))
                    == .dropped(autoResponse: nil))
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x2000, groupIndex: 4)) == .dropped(autoResponse: .success))
        #expect(s.tail == 0)
        #expect(s.groupResponses.count == 1)
        #expect(s.eventMessages.isEmpty)
        // Software drains and clears PRO: requests are queued again.
        s.clearStatus(.pageRequestOverflow)
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x3000)) == .queued)
    }

    @Test("a queue in memory the unit cannot write drops the request and answers response failure")
    func unwritableQueue() {
        let s = PageRequestScenario(queue: PageRequestQueueAddress(rawValue: 0xFFF0_0000))
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x1000, groupIndex: 8)) == .dropped(autoResponse: .responseFailure))
        #expect(s.tail == 0)
        #expect(s.status.isEmpty)
        #expect(s.groupResponses == [.pageGroupResponse(sid: 1, pasid: nil, groupIndex: 8,
                                                        responseCode: PageGroupResponseCode.responseFailure.rawValue)])
        #expect(!s.guest.logs(.guestError).isEmpty)
    }

    @Test("page requests are refused when the unit does not offer them (ECAP.PRS clear)")
    func unsupportedWithoutPRS() {
        let s = PageRequestScenario(pageRequests: false)
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x1000)) == .unsupported)
        #expect(s.tail == 0)
    }

    @Test("malformed requests (group index over 9 bits, PASID over 20 bits) are refused")
    func malformed() {
        let s = PageRequestScenario()
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, address: 0, groupIndex: 0x200)) == .invalid)
        #expect(s.unit.pageRequest(PageRequest(sourceID: 1, pasid: 0x10_0000, address: 0)) == .invalid)
        #expect(s.tail == 0)
    }

    @Test("a page group response descriptor reaches the device as a .pageGroupResponse event (spec 6.5.2)")
    func groupResponseDelivered() {
        let s = PageRequestScenario()
        var effects = Effects()
        let ok = s.unit.state.withLock {
            $0.deliverPageGroupResponse(PageGroupResponseDescriptor(requesterID: 0x0100, pasid: 7, groupIndex: 9,
                                                                    code: .success), effects: &effects)
        }
        #expect(ok)
        #expect(effects.events == [.pageGroupResponse(sid: 0x0100, pasid: 7, groupIndex: 9, responseCode: 0)])
        let noPASID = s.unit.state.withLock {
            $0.deliverPageGroupResponse(PageGroupResponseDescriptor(requesterID: 0x0100, pasid: nil, groupIndex: 1,
                                                                    code: .invalidRequest), effects: &effects)
        }
        #expect(noPASID)
        #expect(effects.events.last == .pageGroupResponse(sid: 0x0100, pasid: nil, groupIndex: 1, responseCode: 1))
    }

    @Test("a reserved response code, or page group responses without PRS, are invalid descriptors")
    func invalidGroupResponses() {
        let s = PageRequestScenario()
        var effects = Effects()
        #expect(!s.unit.state.withLock {
            $0.deliverPageGroupResponse(PageGroupResponseDescriptor(low: 0x9 | 0x2 << 12, high: 0), effects: &effects)
        })
        let off = PageRequestScenario(pageRequests: false)
        #expect(!off.unit.state.withLock {
            $0.deliverPageGroupResponse(PageGroupResponseDescriptor(requesterID: 1, pasid: nil, groupIndex: 0,
                                                                    code: .success), effects: &effects)
        })
        #expect(effects.events.isEmpty)
    }

    @Test("software rewriting PQT (queue re-initialisation) is where the next descriptor goes")
    func softwareResetsTail() {
        let s = PageRequestScenario()
        _ = s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x1000))
        s.head = 0
        s.tail = 0
        _ = s.unit.pageRequest(PageRequest(sourceID: 1, address: 0x2000))
        #expect(s.descriptor(at: 0).address == 0x2000)
        #expect(s.tail == 32)
    }

    @Test("a descriptor write that straddles a reset publishes nothing")
    func resetDuringWrite() {
        let s = PageRequestScenario()
        var effects = Effects()
        let request = PageRequest(sourceID: 1, address: 0x1000)
        let step = s.unit.state.withLock { $0.beginPageRequest(request, effects: &effects) }
        guard case let .slot(.write(address, nextTail, epoch)) = step else {
            Issue.record("expected a queue write, got \(step)")
            return
        }
        s.unit.state.withLock { $0.pageRequests.reset() }
        let outcome = s.unit.state.withLock {
            $0.finishPageRequest(request, address: address, nextTail: nextTail, epoch: epoch, written: true,
                                 effects: &effects)
        }
        #expect(outcome == .dropped(autoResponse: nil))
        #expect(s.tail == 0)
        #expect(s.unit.state.withLock { $0.pageRequests.reservations.writesInFlight } == 0)
    }
}

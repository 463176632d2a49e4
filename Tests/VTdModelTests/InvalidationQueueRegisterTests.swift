import Testing
@testable import VTdModel

@Suite("Queued invalidation registers and the invalidation event")
struct InvalidationQueueRegisterTests {
    let completion = MSIMessage(address: 0xFEE0_2000, data: 0x52)

    func armCompletionEvent(_ rig: Rig) {
        rig.write32(Reg.invalidationEventData, completion.data)
        rig.write32(Reg.invalidationEventAddress, UInt32(completion.address))
        rig.write32(Reg.invalidationEventControl, 0)
    }

    func iectl(_ rig: Rig) -> EventControl { EventControl(rawValue: rig.read32(Reg.invalidationEventControl)) }

    /// Whether writing `body` asked the queue engine to run (and keeps it from running).
    func runsQueue(_ rig: Rig, _ body: (inout UnitState, inout Effects) -> Void) -> Bool {
        rig.withState { state, effects -> Bool in
            body(&state, &effects)
            defer { effects.runInvalidationQueue = false }
            return effects.runInvalidationQueue
        }
    }

    @Test("IQA gives base, descriptor width and size in descriptors, spec 11.4.9.3",
          arguments: [(false, UInt64(0), 256), (false, 3, 2048), (true, 0, 128), (true, 7, 16384)])
    func queueGeometry(_ c: (wide: Bool, qs: UInt64, entries: Int)) {
        let rig = Rig { $0.scalableMode = true }
        rig.write64(Reg.invalidationQueueAddress, 0x12_3400_0000 | (c.wide ? 1 << 11 : 0) | c.qs)
        let queue = rig.state(\.invalidationQueue.address)
        #expect(queue.base == 0x12_3400_0000)
        #expect(queue.wideDescriptors == c.wide)
        #expect(queue.entryCount == c.entries)
        #expect(queue.descriptorSize == (c.wide ? 32 : 16))
    }

    @Test("IQH and IQT count descriptors of the queue's width, spec 11.4.9.1-2")
    func headAndTailIndices() {
        let rig = Rig { $0.scalableMode = true }
        rig.write64(Reg.invalidationQueueTail, 6 << 4)
        #expect(rig.state(\.invalidationQueue.tail) == 6)
        rig.write64(Reg.invalidationQueueAddress, 1 << 11)
        #expect(rig.state(\.invalidationQueue.tail) == 3)
        rig.withState { state, _ in state.invalidationQueue.moveHead(to: 2) }
        #expect(rig.read64(Reg.invalidationQueueHead) == 2 << 5)
        #expect(rig.state(\.invalidationQueue.head) == 2)
        // The decoded pointers follow a reset too (the run reads them, not the registers).
        rig.withState { state, _ in state.invalidationQueue.reset() }
        #expect(rig.state(\.invalidationQueue.head) == 0 && rig.state(\.invalidationQueue.tail) == 0)
        #expect(rig.state(\.invalidationQueue.address.entryCount) == 256)
    }

    @Test("advancing IQH past the last descriptor wraps to 0, spec 6.5.2")
    func headWraps() {
        let rig = Rig()
        rig.withState { state, _ in state.invalidationQueue.moveHead(to: 256) }
        #expect(rig.read64(Reg.invalidationQueueHead) == 0)
    }

    @Test("an IQT write runs the queue only while QI is enabled, spec 6.5.2")
    func tailWriteRunsQueue() {
        let rig = Rig()
        #expect(!runsQueue(rig) { state, effects in
            state.mmioWrite(offset: Reg.invalidationQueueTail, value: 1 << 4, width: 8, effects: &effects)
        })
        rig.write64(Reg.invalidationQueueTail, 0)
        rig.command(.queuedInvalidationEnable)
        #expect(runsQueue(rig) { state, effects in
            state.mmioWrite(offset: Reg.invalidationQueueTail, value: 1 << 4, width: 8, effects: &effects)
        })
    }

    @Test("a tail with bit 4 set in 256-bit mode is an invalidation queue error (IQEI 6), spec 6.5.2.10")
    func misalignedTail() {
        let rig = Rig { $0.scalableMode = true }
        rig.armFaultEvent()
        rig.write64(Reg.invalidationQueueAddress, 0x4000 | 1 << 11)
        rig.command(.queuedInvalidationEnable)
        rig.write64(Reg.invalidationQueueTail, 3 << 4)
        #expect(FaultStatus(rawValue: rig.read32(Reg.faultStatus)) == .invalidationQueueError)
        #expect(rig.read64(Reg.invalidationQueueErrorRecord) == 6)
        #expect(rig.guest.msis == [MSIMessage(address: 0xFEE0_0000, data: 0x41)])
    }

    @Test("a tail past the end of the queue is an invalidation queue error (IQEI 1), spec 6.5.2.10")
    func tailBeyondQueue() {
        let rig = Rig()
        rig.command(.queuedInvalidationEnable)
        rig.write64(Reg.invalidationQueueTail, 300 << 4)
        #expect(FaultStatus(rawValue: rig.read32(Reg.faultStatus)) == .invalidationQueueError)
        #expect(InvalidationQueueErrorRecord(rawValue: rig.read64(Reg.invalidationQueueErrorRecord)).queueErrorInfo == 1)
    }

    @Test("while IQE is set nothing runs; clearing IQE resumes at IQH, spec 6.5.2.10")
    func resumeAfterError() {
        let rig = Rig()
        rig.command(.queuedInvalidationEnable)
        rig.withState { state, effects in state.reportInvalidationQueueError(.invalidDescriptorType, effects: &effects) }
        #expect(!runsQueue(rig) { state, effects in
            state.mmioWrite(offset: Reg.invalidationQueueTail, value: 2 << 4, width: 8, effects: &effects)
        })
        #expect(runsQueue(rig) { state, effects in
            state.mmioWrite(offset: Reg.faultStatus, value: UInt64(FaultStatus.invalidationQueueError.rawValue), width: 4,
                            effects: &effects)
        })
    }

    @Test("IQE, ICE and ITE record IQEI, ICESID and ITESID; the first error's details stay, spec 11.4.9.x IQERCD")
    func errorRecord() {
        let rig = Rig()
        rig.withState { state, effects in
            state.reportInvalidationQueueError(.reservedFieldSet, effects: &effects)
            state.reportInvalidationQueueError(.descriptorFetchFailed, effects: &effects)
            state.reportInvalidationQueueError(.completionError(sourceID: 0x0210), effects: &effects)
            state.reportInvalidationQueueError(.timeout(sourceID: 0x0318), effects: &effects)
            state.reportInvalidationQueueError(.timeout(sourceID: 0x0400), effects: &effects)
        }
        let record = InvalidationQueueErrorRecord(rawValue: rig.read64(Reg.invalidationQueueErrorRecord))
        #expect(record.queueErrorInfo == 4)
        #expect(record.completionErrorSourceID == 0x0210)
        #expect(record.timeoutSourceID == 0x0318)
        #expect(rig.read64(Reg.invalidationQueueErrorRecord) == 0x0210_0318_0000_0004)
        // Read-only for software.
        rig.write64(Reg.invalidationQueueErrorRecord, 0)
        #expect(rig.read64(Reg.invalidationQueueErrorRecord) == 0x0210_0318_0000_0004)
    }

    @Test("an invalidation queue error raises the fault event once, spec 7.3", arguments: [
        InvalidationQueueError.invalidDescriptorType, .completionError(sourceID: 1), .timeout(sourceID: 2),
    ])
    func errorRaisesFaultEvent(_ error: InvalidationQueueError) {
        let rig = Rig()
        rig.armFaultEvent()
        rig.withState { state, effects in
            state.reportInvalidationQueueError(error, effects: &effects)
            state.reportInvalidationQueueError(error, effects: &effects)
        }
        #expect(rig.guest.msis == [MSIMessage(address: 0xFEE0_0000, data: 0x41)])
    }

    @Test("a completed wait with IF sets IWC and sends the invalidation event, spec 6.5.2.8")
    func waitCompletion() {
        let rig = Rig()
        armCompletionEvent(rig)
        rig.withState { state, effects in state.invalidationQueue.signalWaitCompletion(effects: &effects) }
        #expect(rig.read32(Reg.invalidationCompletionStatus) == 1)
        #expect(rig.guest.msis == [completion])
        #expect(iectl(rig).isEmpty)
    }

    @Test("while IWC is set another completion is no new interrupt condition, spec 11.4.9.4")
    func waitCompletionWhileIWCSet() {
        let rig = Rig()
        armCompletionEvent(rig)
        rig.withState { state, effects in
            state.invalidationQueue.signalWaitCompletion(effects: &effects)
            state.invalidationQueue.signalWaitCompletion(effects: &effects)
        }
        #expect(rig.guest.msis.count == 1)
        rig.write32(Reg.invalidationCompletionStatus, 1)
        #expect(rig.read32(Reg.invalidationCompletionStatus) == 0)
        rig.withState { state, effects in state.invalidationQueue.signalWaitCompletion(effects: &effects) }
        #expect(rig.guest.msis.count == 2)
    }

    @Test("masked, the invalidation event is pending in IP and goes out on unmask, spec 11.4.9.5")
    func maskedCompletion() {
        let rig = Rig()
        rig.write32(Reg.invalidationEventData, completion.data)
        rig.write32(Reg.invalidationEventAddress, UInt32(completion.address))
        rig.withState { state, effects in state.invalidationQueue.signalWaitCompletion(effects: &effects) }
        #expect(rig.guest.msis.isEmpty)
        #expect(iectl(rig) == [.interruptMask, .interruptPending])
        rig.write32(Reg.invalidationEventControl, 0)
        #expect(rig.guest.msis == [completion])
        #expect(iectl(rig).isEmpty)
    }

    @Test("clearing IWC while masked clears IP: unmasking then sends nothing, spec 11.4.9.5")
    func servicedWhileMasked() {
        let rig = Rig()
        rig.withState { state, effects in state.invalidationQueue.signalWaitCompletion(effects: &effects) }
        rig.write32(Reg.invalidationCompletionStatus, 1)
        #expect(iectl(rig) == .interruptMask)
        rig.write32(Reg.invalidationEventControl, 0)
        #expect(rig.guest.msis.isEmpty)
    }

    @Test("with EIM the invalidation event address includes IEUADDR, spec 5.1.6")
    func upperAddress() {
        let rig = Rig { $0.extendedInterruptMode = true }
        rig.write32(Reg.invalidationEventUpperAddress, 2)
        armCompletionEvent(rig)
        rig.withState { state, effects in state.invalidationQueue.signalWaitCompletion(effects: &effects) }
        #expect(rig.guest.msis == [MSIMessage(address: 0x2_FEE0_2000, data: 0x52)])
    }
}

@Suite("Page request registers and the page request event")
struct PageRequestRegisterTests {
    let message = MSIMessage(address: 0xFEE0_3000, data: 0x63)

    func rig() -> Rig { Rig { $0.scalableMode = true; $0.pasid = true; $0.pageRequests = true } }

    @Test("a page request sets PPR and sends the page request event, spec 7.5.1")
    func pageRequestEvent() {
        let rig = rig()
        rig.write32(Reg.pageRequestEventData, message.data)
        rig.write32(Reg.pageRequestEventAddress, UInt32(message.address))
        rig.write32(Reg.pageRequestEventControl, 0)
        rig.withState { state, effects in
            state.pageRequests.signal(effects: &effects)
            state.pageRequests.signal(effects: &effects)
        }
        #expect(rig.read32(Reg.pageRequestStatus) == 1)
        #expect(rig.guest.msis == [message])
    }

    @Test("masked, the page request event waits in PECTL.IP; clearing PPR and PRO services it, spec 11.4.10")
    func maskedPageRequest() {
        let rig = rig()
        rig.withState { state, effects in state.pageRequests.signal(overflowed: true, effects: &effects) }
        #expect(rig.read32(Reg.pageRequestStatus) == 2)
        #expect(EventControl(rawValue: rig.read32(Reg.pageRequestEventControl)) == [.interruptMask, .interruptPending])
        rig.write32(Reg.pageRequestStatus, 3)
        #expect(rig.read32(Reg.pageRequestStatus) == 0)
        #expect(EventControl(rawValue: rig.read32(Reg.pageRequestEventControl)) == .interruptMask)
        rig.write32(Reg.pageRequestEventControl, 0)
        #expect(rig.guest.msis.isEmpty)
    }

    @Test("PQA, PQH and PQT give the queue geometry and indices, spec 11.4.10")
    func queueGeometry() {
        let rig = rig()
        rig.write64(Reg.pageRequestQueueAddress, 0x8_0000 | 1)
        rig.write64(Reg.pageRequestQueueHead, 5 << 5)
        #expect(rig.state(\.pageRequests.address.base) == 0x8_0000)
        #expect(rig.state(\.pageRequests.address.entryCount) == 256)
        #expect(rig.state(\.pageRequests.head) == 5)
        rig.withState { state, _ in state.pageRequests.publish(tail: 257) }
        #expect(rig.read64(Reg.pageRequestQueueTail) == 1 << 5)
    }
}

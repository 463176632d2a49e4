// Page request scenarios: a scalable-mode unit with page requests on and a queue in FakeGuest RAM.

@testable import VTdModel

struct PageRequestScenario {
    let guest = FakeGuest()
    let unit: VTdUnit
    let queue: PageRequestQueueAddress
    static let eventAddress: UInt32 = 0xFEE0_0000
    static let eventData: UInt32 = 0x0000_0045

    /// A one-page (128-entry) queue at 0x40000 unless told otherwise; the event unmasked.
    init(queue: PageRequestQueueAddress = PageRequestQueueAddress(base: 0x40000, sizeField: 0), pageRequests: Bool = true) {
        var configuration = VTdConfiguration()
        configuration.scalableMode = true
        configuration.pasid = true
        configuration.pageRequests = pageRequests
        unit = try! VTdUnit(configuration: configuration, platform: guest)
        self.queue = queue
        // Until the register work (issue 2) lands PQA/PQH/PQT/PECTL masks, program them raw.
        unit.state.withLock {
            $0.registers.set64(Reg.pageRequestQueueAddress, queue.rawValue)
            $0.registers.set64(Reg.pageRequestQueueHead, 0)
            $0.registers.set64(Reg.pageRequestQueueTail, 0)
            $0.registers.set32(Reg.pageRequestEventControl, 0)
            $0.registers.set32(Reg.pageRequestEventAddress, Self.eventAddress)
            $0.registers.set32(Reg.pageRequestEventData, Self.eventData)
        }
    }

    var head: UInt64 {
        get { unit.state.withLock { $0.registers.get64(Reg.pageRequestQueueHead) } }
        nonmutating set { unit.state.withLock { $0.registers.set64(Reg.pageRequestQueueHead, newValue) } }
    }
    var tail: UInt64 {
        get { unit.state.withLock { $0.registers.get64(Reg.pageRequestQueueTail) } }
        nonmutating set { unit.state.withLock { $0.registers.set64(Reg.pageRequestQueueTail, newValue) } }
    }
    var status: PageRequestStatus { unit.state.withLock { $0.pageRequestStatus } }
    var eventControl: UInt32 {
        get { unit.state.withLock { $0.registers.get32(Reg.pageRequestEventControl) } }
        nonmutating set { unit.state.withLock { $0.registers.set32(Reg.pageRequestEventControl, newValue) } }
    }

    /// Software writes 1s to PRS bits to clear them.
    func clearStatus(_ bits: PageRequestStatus) {
        unit.state.withLock { $0.pageRequestStatus = $0.pageRequestStatus.subtracting(bits) }
    }

    /// The descriptor at byte offset `offset` of the queue.
    func descriptor(at offset: UInt64) -> PageRequestDescriptor {
        let a = queue.base + offset
        return PageRequestDescriptor(words: (guest.read64(a)!, guest.read64(a + 8)!, guest.read64(a + 16)!,
                                             guest.read64(a + 24)!))
    }

    var eventMessages: [MSIMessage] {
        guest.msis.filter { $0 == MSIMessage(address: UInt64(Self.eventAddress), data: Self.eventData) }
    }

    var groupResponses: [PlatformEvent] {
        guest.events.filter { if case .pageGroupResponse = $0 { return true } else { return false } }
    }
}

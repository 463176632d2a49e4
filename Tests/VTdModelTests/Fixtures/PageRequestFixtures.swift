// Page request scenarios: a scalable-mode unit with page requests on and a queue in FakeGuest RAM.

@testable import VTdModel

struct PageRequestScenario {
    let guest = FakeGuest()
    let unit: VTdUnit
    let queue: PageRequestQueueAddress
    static let eventAddress: UInt32 = 0xFEE0_0000
    static let eventData: UInt32 = 0x0000_0045

    /// A one-page (128-entry) queue at 0x40000 unless told otherwise; the event unmasked.
    init(queue: PageRequestQueueAddress = PageRequestQueueAddress(rawValue: 0x40000), pageRequests: Bool = true) {
        var configuration = VTdConfiguration()
        configuration.scalableMode = true
        configuration.pasid = true
        configuration.pageRequests = pageRequests
        unit = try! VTdUnit(configuration: configuration, platform: guest)
        self.queue = queue
        // What Linux's intel_iommu_enable_prq does, plus an unmasked, recognisable event.
        unit.mmioWrite(offset: Reg.pageRequestQueueHead, value: 0, width: 8)
        unit.mmioWrite(offset: Reg.pageRequestQueueTail, value: 0, width: 8)
        unit.mmioWrite(offset: Reg.pageRequestQueueAddress, value: queue.rawValue, width: 8)
        unit.mmioWrite(offset: Reg.pageRequestEventData, value: UInt64(Self.eventData), width: 4)
        unit.mmioWrite(offset: Reg.pageRequestEventAddress, value: UInt64(Self.eventAddress), width: 4)
        unit.mmioWrite(offset: Reg.pageRequestEventControl, value: 0, width: 4)
    }

    /// PQH and PQT as byte offsets, the way software reads and writes them.
    var head: UInt64 {
        get { unit.mmioRead(offset: Reg.pageRequestQueueHead, width: 8) }
        nonmutating set { unit.mmioWrite(offset: Reg.pageRequestQueueHead, value: newValue, width: 8) }
    }
    var tail: UInt64 {
        get { unit.mmioRead(offset: Reg.pageRequestQueueTail, width: 8) }
        nonmutating set { unit.mmioWrite(offset: Reg.pageRequestQueueTail, value: newValue, width: 8) }
    }
    var status: PageRequestStatus {
        PageRequestStatus(rawValue: UInt32(truncatingIfNeeded: unit.mmioRead(offset: Reg.pageRequestStatus, width: 4)))
    }
    var eventControl: UInt32 {
        get { UInt32(truncatingIfNeeded: unit.mmioRead(offset: Reg.pageRequestEventControl, width: 4)) }
        nonmutating set { unit.mmioWrite(offset: Reg.pageRequestEventControl, value: UInt64(newValue), width: 4) }
    }
    var queueBytes: UInt64 { UInt64(queue.entryCount) * PageRequestDescriptor.size }

    /// Software writes 1s to PRS bits to clear them.
    func clearStatus(_ bits: PageRequestStatus) {
        unit.mmioWrite(offset: Reg.pageRequestStatus, value: UInt64(bits.rawValue), width: 4)
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

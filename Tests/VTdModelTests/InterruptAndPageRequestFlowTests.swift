// Whole flows across the unit, driven the way a guest driver drives them: registers through
// MMIO, descriptors through the invalidation queue, devices through the model's entry points.

import Testing
@testable import VTdModel

@Suite("Guest flows: interrupt entry cache and page requests over the invalidation queue")
struct InterruptAndPageRequestFlowTests {
    static let table = InterruptRemappingTableAddress(base: 0x10000, sizeField: 7)

    func install(_ entry: IRTE, at index: UInt32, in guest: FakeGuest) {
        guest.write64(Self.table.entryAddress(index), entry.low)
        guest.write64(Self.table.entryAddress(index) + 8, entry.high)
    }

    func remap(_ unit: VTdUnit, handle: UInt16) -> InterruptRemapOutcome {
        unit.remapInterrupt(sourceID: 0x10, address: InterruptRequestAddress.remappable(handle: handle).rawValue, data: 0)
    }

    @Test("an IRTE changed by the guest takes effect once its IEC descriptor and wait complete, not before (spec 6.5.2)")
    func iecThroughTheQueue() {
        let q = InvalidationQueueScenario()
        q.unit.enableInterruptRemapping(table: Self.table)
        install(.xAPIC(vector: 0x30, apic: 1), at: 0x29, in: q.guest)
        #expect(remap(q.unit, handle: 0x29) == .remapped(CompatibilityMSI(destination: 1, vector: 0x30).message))

        // Linux modify_irte: rewrite the entry, then an index-selective IEC and a wait.
        install(.xAPIC(vector: 0x31, apic: 2), at: 0x29, in: q.guest)
        #expect(remap(q.unit, handle: 0x29) == .remapped(CompatibilityMSI(destination: 1, vector: 0x30).message))
        q.submit(Desc.iecIndex(0x29, im: 0), Desc.wait(status: 1, at: 0x30000))
        #expect(q.status(at: 0x30000) == 1)
        #expect(remap(q.unit, handle: 0x29) == .remapped(CompatibilityMSI(destination: 2, vector: 0x31).message))
        #expect(q.guest.events.contains(.interruptCacheInvalidate(index: 0x29, count: 1)))
    }

    @Test("a global IEC descriptor drops every cached IRTE")
    func globalIECThroughTheQueue() {
        let q = InvalidationQueueScenario()
        q.unit.enableInterruptRemapping(table: Self.table)
        for i: UInt32 in 0..<4 { install(.xAPIC(vector: UInt8(0x40 + i), apic: 1), at: i, in: q.guest) }
        for i: UInt16 in 0..<4 { _ = remap(q.unit, handle: i) }
        for i: UInt32 in 0..<4 { install(.xAPIC(vector: UInt8(0x50 + i), apic: 1), at: i, in: q.guest) }
        q.submit(Desc.iecGlobal())
        for i: UInt16 in 0..<4 {
            #expect(remap(q.unit, handle: i) == .remapped(CompatibilityMSI(destination: 1, vector: UInt8(0x50 + i)).message))
        }
    }

    @Test("page request -> descriptor in the queue -> PPR and event -> group response descriptor -> device event")
    func pageRequestRoundTrip() {
        let q = InvalidationQueueScenario(scalable: true, pageRequests: true)
        let unit = q.unit
        // The page request queue as intel_iommu_enable_prq sets it up, event unmasked.
        unit.mmioWrite(offset: Reg.pageRequestQueueAddress, value: 0x40000, width: 8)
        unit.mmioWrite(offset: Reg.pageRequestEventAddress, value: 0xFEE0_2000, width: 4)
        unit.mmioWrite(offset: Reg.pageRequestEventData, value: 0x61, width: 4)
        unit.mmioWrite(offset: Reg.pageRequestEventControl, value: 0, width: 4)

        // The device faults on a page and asks for it.
        let request = PageRequest(sourceID: 0x0500, pasid: 12, address: 0x7F00_1000, write: true, groupIndex: 0x1A5)
        #expect(unit.pageRequest(request) == .queued)
        #expect(q.guest.msis.contains(MSIMessage(address: 0xFEE0_2000, data: 0x61)))
        #expect(unit.mmioRead(offset: Reg.pageRequestStatus, width: 4) & 1 == 1)

        // The guest's handler: clear PPR, read PQH..PQT, handle the descriptor, move PQH.
        unit.mmioWrite(offset: Reg.pageRequestStatus, value: 1, width: 4)
        let head = unit.mmioRead(offset: Reg.pageRequestQueueHead, width: 8)
        let tail = unit.mmioRead(offset: Reg.pageRequestQueueTail, width: 8)
        #expect(head == 0 && tail == 32)
        let d = PageRequestDescriptor(words: (q.guest.read64(0x40000)!, q.guest.read64(0x40008)!,
                                              q.guest.read64(0x40010)!, q.guest.read64(0x40018)!))
        #expect(d.requesterID == 0x0500 && d.pasidPresent && d.pasid == 12 && d.address == 0x7F00_1000)
        #expect(d.write && d.lastInGroup && d.groupIndex == 0x1A5)
        unit.mmioWrite(offset: Reg.pageRequestQueueHead, value: tail, width: 8)

        // ... then answers the group through the invalidation queue.
        q.submit(Desc.pageGroupResponse(rid: d.requesterID.rawValue, pasid: d.pasid.rawValue, code: 0, index: UInt64(d.groupIndex)),
                 Desc.wait(status: 7, at: 0x30000))
        #expect(!q.queueError)
        #expect(q.status(at: 0x30000) == 7)
        #expect(q.guest.events.contains(.pageGroupResponse(sid: 0x0500, pasid: 12, groupIndex: 0x1A5, responseCode: 0)))
    }

    @Test("a page group response with a reserved response code is an invalidation queue error")
    func reservedResponseCodeIsQueueError() {
        let q = InvalidationQueueScenario(scalable: true, pageRequests: true)
        q.submit(Desc.pageGroupResponse(rid: 0x0500, pasid: nil, code: 0x3, index: 1))
        #expect(q.queueError)
        #expect(!q.guest.events.contains { if case .pageGroupResponse = $0 { true } else { false } })
    }
}

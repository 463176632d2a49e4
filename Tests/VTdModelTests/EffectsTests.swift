import Testing
@testable import VTdModel

@Suite("Effects: what an operation decided under the lock, kept for after it")
struct EffectsTests {
    private func resyncs(_ effects: Effects) -> [ShadowResyncRequest] { effects.resyncs }

    private func request(_ sid: UInt16, _ first: UInt64, _ last: UInt64, domain: UInt16? = 3) -> ShadowResyncRequest {
        ShadowResyncRequest(sourceID: RequesterID(rawValue: sid), pasid: nil, first: first, last: last,
                            domain: domain.map { DomainID(rawValue: $0) })
    }

    @Test("re-syncs: a covered request is dropped, a covering one replaces what it covers, order is kept")
    func resyncCoverage() {
        var e = Effects()
        #expect(e.isEmpty)
        e.requestResync(request(8, 0x1000, 0x1fff))
        e.requestResync(request(9, 0x1000, 0x1fff))
        e.requestResync(request(8, 0x3000, 0x3fff))
        e.requestResync(request(8, 0x1000, 0x1fff))  // already pending
        #expect(resyncs(e) == [request(8, 0x1000, 0x1fff), request(9, 0x1000, 0x1fff), request(8, 0x3000, 0x3fff)])
        #expect(!e.isEmpty)
        // One over all of device 8's space (domain-selective) takes the place of both of its PSIs;
        // the first pending one goes, and device 9's moves up.
        e.requestResync(request(8, 0, .max))
        #expect(resyncs(e) == [request(9, 0x1000, 0x1fff), request(8, 0, .max)])
        e.requestResync(request(9, 0x10_0000, 0x10_0fff))
        e.requestResync(request(9, 0, .max, domain: nil))
        #expect(resyncs(e) == [request(8, 0, .max), request(9, 0, .max, domain: nil)])
    }

    @Test("one re-sync needs no box: a covered one is dropped, a covering one replaces it, a second one follows it")
    func soleResync() {
        var e = Effects()
        e.requestResync(request(8, 0x1000, 0x1fff))
        #expect(!e.isEmpty && resyncs(e) == [request(8, 0x1000, 0x1fff)])
        e.requestResync(request(8, 0x1000, 0x1fff))
        #expect(resyncs(e) == [request(8, 0x1000, 0x1fff)])
        e.requestResync(request(8, 0, 0xffff))
        #expect(resyncs(e) == [request(8, 0, 0xffff)])
        e.requestResync(request(9, 0x1000, 0x1fff))
        var seen: [ShadowResyncRequest] = []
        e.forEachResync { seen.append($0) }
        #expect(seen == [request(8, 0, 0xffff), request(9, 0x1000, 0x1fff)] && resyncs(e) == seen)
        var merged = Effects()
        merged.merge(e)
        #expect(resyncs(merged) == seen)
    }

    @Test("a re-sync's stack event buffer keeps the order of what it was given, beyond its capacity too")
    func eventBufferOverflow() {
        let events = (0..<5).map { PlatformEvent.unmap(sid: RequesterID(rawValue: 8), pasid: nil, address: UInt64($0) << 12, size: 0x1000) }
        withUnsafeTemporaryAllocation(of: PlatformEvent.self, capacity: 3) { storage in
            var buffer = ShadowEventBuffer(storage)
            for event in events { buffer.append(event) }
            var seen: [PlatformEvent] = []
            buffer.forEachEvent { seen.append($0) }
            #expect(seen == events)
            buffer.deinitialize()
            seen = []
            buffer.forEachEvent { seen.append($0) }
            #expect(seen.isEmpty)
        }
    }

    @Test("a copy does not share what the original adds later (logs, re-syncs, host work)")
    func copiesAreValues() {
        var e = Effects()
        e.log(.guestError, "first")
        e.requestResync(request(8, 0x1000, 0x1fff))
        e.requestResync(request(9, 0x1000, 0x1fff))
        let copy = e
        e.log(.guestError, "second")
        e.requestResync(request(10, 0x1000, 0x1fff))
        e.appendHostSetupOrigin(events: 0..<1, descriptor: 4)
        #expect(copy.logs.map(\.1) == ["first"])
        #expect(e.logs.map(\.1) == ["first", "second"])
        #expect(resyncs(copy).count == 2 && resyncs(e).count == 3)
        #expect(copy.hostSetupOrigins.isEmpty && e.hostSetupOrigins.count == 1)
        var merged = Effects()
        merged.merge(e)
        #expect(merged.logs.map(\.1) == ["first", "second"] && resyncs(merged) == resyncs(e))
    }
}

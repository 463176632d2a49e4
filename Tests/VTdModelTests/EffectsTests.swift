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

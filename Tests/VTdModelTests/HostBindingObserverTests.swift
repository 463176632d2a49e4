import Testing
@testable import VTdModel

/// Records what the model tells a host binding, in order; can refuse one barrier.
// Unchecked: each test drives it from one thread.
private final class RecordingHost: HostBindingObserver, @unchecked Sendable {
    var calls: [String] = []
    /// The ring index the next barrier reports as not done.
    var refuseNextBarrier: Int?

    func translationSetupChanged(sourceID: RequesterID?, pasid: PASID?, descriptorIndex: Int?) {
        calls.append("setup sid \(sourceID.map { String($0.rawValue) } ?? "all") pasid \(pasid.map { String($0.rawValue) } ?? "all")"
                         + (descriptorIndex.map { " #\($0)" } ?? ""))
    }

    func pasidIOTLBInvalidated(_ i: HostPASIDInvalidation) {
        let range = i.address.map { "0x\(String($0, radix: 16)) am \(i.addressMask)" } ?? "all"
        calls.append("p_iotlb #\(i.descriptorIndex) did \(i.domainID.rawValue) pasid \(i.pasid.rawValue) \(range)\(i.leafOnly ? " leaf" : "")")
    }

    func invalidationBarrier(descriptorIndex: Int?) -> Int? {
        calls.append("barrier \(descriptorIndex.map { "#\($0)" } ?? "drain")")
        defer { refuseNextBarrier = nil }
        return refuseNextBarrier
    }
}

@Suite("Host binding observer: what a nested host hears from the invalidation queue")
struct HostBindingObserverTests {
    @Test("PASID-cache invalidation first, then P_IOTLBs tagged with their ring index, a barrier before the wait's status write, one at drain")
    func order() {
        let q = InvalidationQueueScenario(scalable: true)
        let host = RecordingHost()
        q.unit.setHostBindingObserver(host)
        q.submit(Desc.pasidCache(granularity: 1, 5, pasid: 0),
                 Desc.pasidIOTLBPages(5, pasid: 0, 0x1000, am: 0),
                 Desc.pasidIOTLBAll(5, pasid: 3),
                 Desc.wait(status: 1, at: 0x9000))
        #expect(host.calls == [
            "setup sid all pasid 0 #0",
            "p_iotlb #1 did 5 pasid 0 0x1000 am 0 leaf",
            "p_iotlb #2 did 5 pasid 3 all",
            "barrier #3",
            "barrier drain",
        ])
        #expect(q.status(at: 0x9000) == 1)
        #expect(!q.queueError)
    }

    @Test("a barrier the host refuses stops the queue with IQE on the refused descriptor; the wait's status is not written")
    func refusedAtWait() {
        let q = InvalidationQueueScenario(scalable: true)
        let host = RecordingHost()
        q.unit.setHostBindingObserver(host)
        host.refuseNextBarrier = 1
        q.submit(Desc.pasidIOTLBPages(5, pasid: 0, 0x1000, am: 0),
                 Desc.pasidIOTLBPages(5, pasid: 0, 0x2000, am: 0),
                 Desc.wait(status: 1, at: 0x9000))
        #expect(q.queueError)
        #expect(q.head == 1)
        #expect(q.status(at: 0x9000) == 0)
        #expect(q.unit.state.withLock { $0.invalidationQueue.registers.get64(Reg.invalidationQueueErrorRecord) } & 0xF == 0)
        #expect(q.guest.logs(.guestError).contains { $0.contains("could not perform descriptor 1") })
    }

    @Test("without a wait, the drain barrier reports the refusal the same way")
    func refusedAtDrain() {
        let q = InvalidationQueueScenario(scalable: true)
        let host = RecordingHost()
        q.unit.setHostBindingObserver(host)
        host.refuseNextBarrier = 0
        q.submit(Desc.pasidIOTLBAll(5, pasid: 0))
        #expect(host.calls == ["p_iotlb #0 did 5 pasid 0 all", "barrier drain"])
        #expect(q.queueError)
        #expect(q.head == 0)
    }

    @Test("a unit without an observer records nothing for a host (the queue runs as before)")
    func noObserver() {
        let q = InvalidationQueueScenario(scalable: true)
        let host = RecordingHost()
        q.unit.setHostBindingObserver(host)
        q.unit.setHostBindingObserver(nil)
        q.submit(Desc.pasidIOTLBAll(5, pasid: 0), Desc.wait(status: 1, at: 0x9000))
        #expect(host.calls.isEmpty)
        #expect(q.status(at: 0x9000) == 1)
        #expect(q.unit.state.withLock { !$0.hostBound })
    }

    @Test("the host decision rewrites CM and FLTS/SLTS only before the guest programs the unit")
    func adoptDecision() throws {
        let guest = GuestMemory()
        var configuration = VTdConfiguration()
        configuration.scalableMode = true
        let unit = try VTdUnit(configuration: configuration, platform: guest)
        try unit.adoptHostDecision(cachingMode: true, firstLevel: true)
        let cap = unit.mmioRead(offset: Reg.capability, width: 8)
        let ecap = unit.mmioRead(offset: Reg.extendedCapability, width: 8)
        #expect(cap & (1 << 7) != 0)
        #expect(ecap & (1 << 47) != 0 && ecap & (1 << 46) == 0)
        #expect(unit.configuration.firstLevel && unit.configuration.cachingMode)

        unit.mmioWrite(offset: Reg.rootTableAddress, value: 0x10000 | 1 << 10, width: 8)
        unit.mmioWrite(offset: Reg.globalCommand, value: 1 << 30, width: 4)
        #expect(throws: ConfigurationError.self) { try unit.adoptHostDecision(cachingMode: true, firstLevel: false) }
        #expect(unit.mmioRead(offset: Reg.extendedCapability, width: 8) == ecap)
    }
}

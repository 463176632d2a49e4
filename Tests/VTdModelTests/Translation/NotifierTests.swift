import Testing
@testable import VTdModel

@Suite("Notifiers and replay (QEMU's IOMMU notifiers)")
struct NotifierTests {
    @Test("registrations follow QEMU's rules: MAP needs caching mode, device-TLB needs device-iotlb, snoop-control none")
    func registrationRules() {
        let guest = GuestMemory()
        let plain = guest.makeUnit()
        #expect(throws: NotifierError.self) { try plain.setNotifications(.map, sourceID: 0x10, pasid: nil) }
        #expect(throws: NotifierError.self) { try plain.setNotifications(.deviceTLBUnmap, sourceID: 0x10, pasid: nil) }
        #expect(throws: Never.self) { try plain.setNotifications(.unmap, sourceID: 0x10, pasid: nil) }
        #expect(plain.notifications(sourceID: 0x10, pasid: nil) == .unmap)

        let shadowing = guest.makeUnit(.legacy.with { $0.cachingMode = true; $0.deviceIOTLB = true })
        #expect(throws: Never.self) { try shadowing.setNotifications(.all, sourceID: 0x10, pasid: 3) }
        #expect(shadowing.notifications(sourceID: 0x10, pasid: 3) == .all)

        let snooping = guest.makeUnit(.legacy.with { $0.snoopControl = true })
        #expect(throws: NotifierError.self) { try snooping.setNotifications(.unmap, sourceID: 0x10, pasid: nil) }
        #expect(throws: Never.self) { try snooping.setNotifications([], sourceID: 0x10, pasid: nil) }
    }

    @Test("registrations are listed per (sid, PASID) and withdrawn with an empty set")
    func registrations() throws {
        let unit = GuestMemory().makeUnit(.scalableFirstLevel.with { $0.cachingMode = true })
        try unit.setNotifications(.unmap, sourceID: 0x18, pasid: nil)
        try unit.setNotifications([.unmap, .map], sourceID: 0x10, pasid: 5)
        try unit.setNotifications(.unmap, sourceID: 0x10, pasid: nil)
        let listed = unit.notifierRegistrations.map { "\($0.sourceID.rawValue):\($0.pasid.map { String($0.rawValue) } ?? "-"):\($0.kinds.rawValue)" }
        #expect(listed == ["16:-:1", "16:5:3", "24:-:1"])
        try unit.setNotifications([], sourceID: 0x10, pasid: 5)
        #expect(unit.notifierRegistrations.count == 2)
    }

    @Test("replay sends a MAP event for every second-level mapping, with its size and rights")
    func replaySecondLevel() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.legacy.with { $0.cachingMode = true })
        let root = guest.legacyRoot()
        let device = root.device()
        device.map(iova: 0x1000, to: 0x9000, permissions: .read)
        device.map(iova: 0x4000_0000, to: 0x8000_0000, pageSize: .size1G)
        device.map(iova: 0x7F_FFE0_0000, to: 0x20_0000, pageSize: .size2M)
        unit.enableTranslation(root)
        #expect(unit.replay(sourceID: testRequester, pasid: nil) == 3)
        let maps = guest.events.filter { if case .map = $0 { return true } else { return false } }
        #expect(maps == [
            .map(sid: testRequester, pasid: nil, address: 0x1000, size: 0x1000, translated: 0x9000, permissions: .read),
            .map(sid: testRequester, pasid: nil, address: 0x4000_0000, size: 1 << 30, translated: 0x8000_0000,
                 permissions: .readWrite),
            .map(sid: testRequester, pasid: nil, address: 0x7F_FFE0_0000, size: 1 << 21, translated: 0x20_0000,
                 permissions: .readWrite),
        ])
    }

    @Test("replay of first-level tables lists the pages a user request may use, IOVAs canonical")
    func replayFirstLevel() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let tables = root.device().firstLevel()
        tables.mapLikeLinux(iova: 0xFFFF_FFFF_FFFF_F000, to: 0x3000)
        tables.map(iova: 0x5000, to: 0x6000, writable: false)
        tables.map(iova: 0x7000, to: 0x8000, user: false)
        unit.enableTranslation(root)
        let accessedBefore = tables.entry(iova: 0x5000, level: 1)
        var mappings: [Mapping] = []
        unit.forEachMapping(sourceID: testRequester, pasid: nil) { mappings.append($0) }
        #expect(mappings == [
            Mapping(iova: 0x5000, pageShift: 12, output: 0x6000, permissions: .read),
            Mapping(iova: 0xFFFF_FFFF_FFFF_F000, pageShift: 12, output: 0x3000, permissions: .readWrite),
        ])
        #expect(tables.entry(iova: 0x5000, level: 1) == accessedBefore, "replay sets no accessed bit")
    }

    @Test("replay sends nothing when remapping is off, for pass-through, or when the setup faults")
    func replayNothing() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        root.device().map(iova: 0x1000, to: 0x2000)
        root.device(0x0018, translationType: 0b10)
        #expect(unit.replay(sourceID: testRequester, pasid: nil) == 0)
        unit.enableTranslation(root)
        #expect(unit.replay(sourceID: 0x0018, pasid: nil) == 0)
        #expect(unit.replay(sourceID: 0x0020, pasid: nil) == 0)
        #expect(guest.events.allSatisfy { if case .map = $0 { return false } else { return true } })
    }

    @Test("replay of tables that point at themselves stops at its budget and says so")
    func replayBounded() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        let device = root.device(levels: 4)
        let top = device.secondLevel.root
        for i in 0..<UInt64(512) { guest.write64(top + i * 8, top | 0b11) }
        unit.enableTranslation(root)
        // Every present entry at every level leads back to the same table: 512^4 leaves unbounded.
        #expect(unit.replay(sourceID: testRequester, pasid: nil, budget: 40) <= 40 * 512)
        #expect(guest.logs.contains { $0.0 == .guestError && $0.1.contains("replay") })
    }
}

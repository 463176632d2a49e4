import Testing
@testable import VTdModel

@Suite("DMA view: which devices need no translate call")
struct DMAViewTests {
    @Test("remapping off: every device untranslated; TE set: a device without tables is translated; TE clear: all untranslated again")
    func translationEnable() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        #expect(unit.dmaView(sourceID: testRequester) == .untranslated)
        let root = guest.legacyRoot()
        root.device(testSourceID, translationType: 0b10)
        unit.enableTranslation(root)
        #expect(unit.dmaView(sourceID: testRequester) == .untranslated)
        #expect(unit.dmaView(sourceID: 0x0018) == .translated)
        unit.disableTranslation()
        #expect(guest.events.last == .contextChanged(sid: nil, pasid: nil))
        #expect(unit.dmaView(sourceID: 0x0018) == .untranslated)
    }

    @Test("legacy TT 10b is untranslated; made multi-level again, the device-selective invalidation tells the host and the answer follows")
    func legacyPassThroughAndBack() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        let device = root.device(testSourceID, translationType: 0b10)
        unit.enableTranslation(root)
        #expect(unit.dmaView(sourceID: testRequester) == .untranslated)

        guest.write64(device.contextEntry, device.secondLevel.root | 1)
        let before = guest.events.count
        unit.invalidateContextCache(granularity: 3, sourceID: testSourceID)
        #expect(guest.events[before...].contains(.contextChanged(sid: RequesterID(rawValue: testSourceID), pasid: nil)))
        #expect(unit.dmaView(sourceID: testRequester) == .translated)
    }

    @Test("malformed or absent tables: translated, and translate still records the fault")
    func malformedStaysTranslated() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        let device = root.device(testSourceID, translationType: 0b11)  // reserved TT
        unit.enableTranslation(root)
        #expect(unit.dmaView(sourceID: testRequester) == .translated)
        #expect(unit.faultRecord().fault == false)
        #expect(unit.translate(.read(0x1000)).faultReason == .contextEntryInvalid)
        #expect(unit.faultRecord().fault)

        guest.write64(device.contextEntry, 0)  // not present
        #expect(unit.dmaView(sourceID: testRequester) == .translated)
    }

    @Test("pass-through needs the unit's ECAP.PT: without it TT 10b is invalid, so translated")
    func passThroughNeedsPT() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(VTdConfiguration.legacy.with { $0.passThrough = false })
        let root = guest.legacyRoot()
        root.device(testSourceID, translationType: 0b10)
        unit.enableTranslation(root)
        #expect(unit.dmaView(sourceID: testRequester) == .translated)
    }

    @Test("scalable PGTT 100b on RID_PASID is untranslated; a first-level entry after a PASID-selective PASID-cache invalidation is not, and every device is named")
    func scalablePassThroughAndBack() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device(testSourceID)
        device.passThrough(pasid: 0)
        unit.enableTranslation(root)
        let queue = GuestQueue(unit, guest: guest)
        #expect(unit.dmaView(sourceID: testRequester) == .untranslated)

        device.firstLevel(pasid: 0)
        let before = guest.events.count
        #expect(queue.flush(Desc.pasidCache(granularity: 1, 1, pasid: 0)))
        // The PASID names no device: requests without PASID of any device may use it as RID_PASID.
        #expect(guest.events[before...].contains(.contextChanged(sid: nil, pasid: 0)))
        #expect(unit.dmaView(sourceID: testRequester) == .translated)

        device.passThrough(pasid: 0)
        #expect(queue.flush(Desc.pasidCache(granularity: 1, 1, pasid: 0)))
        #expect(unit.dmaView(sourceID: testRequester) == .untranslated)
        // Cleared (not present): the device's DMA must fault, so it goes through translate.
        device.writePASIDEntry(0, [])
        #expect(queue.flush(Desc.pasidCache(granularity: 1, 1, pasid: 0)))
        #expect(unit.dmaView(sourceID: testRequester) == .translated)
    }

    @Test("RID_PRIV with SRE clear faults even on a pass-through entry: translated")
    func ridPrivilegedWithoutSRE() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        root.device(testSourceID, ridPrivileged: true).passThrough(pasid: 0, options: [])
        unit.enableTranslation(root)
        #expect(unit.dmaView(sourceID: testRequester) == .translated)
        #expect(unit.translate(.read(0x1000)).faultReason == .pasidEntrySREClear)
    }

    @Test("a device answered untranslated is in the state dump, though it never calls translate")
    func dumpShowsPassThroughDevice() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        root.device(testSourceID).passThrough(pasid: 0)
        unit.enableTranslation(root)
        _ = unit.dmaView(sourceID: testRequester)
        #expect(unit.dumpState().contains("device 00:02.0 pasid none pgtt pass-through"))
    }
}

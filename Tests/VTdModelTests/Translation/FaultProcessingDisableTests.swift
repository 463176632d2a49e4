import Testing
@testable import VTdModel

@Suite("Translation: fault recording and fault processing disable (VT-d 7.1.3, 7.2)")
struct FaultProcessingDisableTests {
    @Test("a recorded DMA fault fills FRCD 0 (SID, page, reason, T) and raises the fault event")
    func recordedFault() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        root.device().map(iova: 0x1000, to: 0x2000, permissions: .read)
        unit.enableTranslation(root)
        unit.armFaultEvent(address: 0xFEE0_1000, data: 0x55)
        #expect(unit.translate(.write(0x1234)).faultReason == .writeDenied)
        let record = unit.faultRecord(0)
        #expect(record.fault)
        #expect(record.sourceID.rawValue == testSourceID)
        #expect(record.faultInfo == 0x1000)
        #expect(record.reason == FaultReason.writeDenied.rawValue)
        #expect(!record.isRead)
        #expect(unit.faultStatus.contains(.primaryPendingFault))
        #expect(guest.sentMSIs == [MSIMessage(address: 0xFEE0_1000, data: 0x55)])
    }

    @Test("a fault of a request with PASID records PP, PV, PRIV and EXE")
    func pasidFault() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        root.device().firstLevel(pasid: 0x321, options: [.noExecute, .executeRequests, .supervisorRequests])
        unit.enableTranslation(root)
        var request = TranslationRequest.execute(0x7000, pasid: 0x321, privileged: true)
        request.access = [.execute]
        #expect(unit.translate(request).faultReason == .flEntryNotPresent)
        let record = unit.faultRecord(0)
        #expect(record.pasidPresent && record.pasid == 0x321 && record.privileged && record.execute && record.isRead)
    }

    @Test("FPD in a legacy context entry suppresses its qualified faults; the request still faults")
    func legacyContextFPD() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        root.device(faultProcessingDisabled: true)
        unit.enableTranslation(root)
        unit.armFaultEvent()
        #expect(unit.translate(.read(0x1000)).faultReason == .readDenied)
        #expect(!unit.faultRecord(0).fault)
        #expect(guest.sentMSIs.isEmpty)
    }

    @Test("FPD in a scalable context entry suppresses faults found below it")
    func scalableContextFPD() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        root.device(faultProcessingDisabled: true).firstLevel()
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).faultReason == .flEntryNotPresent)
        #expect(unit.translate(.read(0x1000, pasid: 9)).faultReason == .pasidEntryNotPresent)
        #expect(!unit.faultRecord(0).fault)
    }

    @Test("FPD in a PASID directory entry suppresses faults of every PASID it covers")
    func directoryFPD() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device()
        device.firstLevel(pasid: 0)
        _ = device.pasidEntryAddress(0, directoryFaultProcessingDisabled: true)
        device.firstLevel(pasid: 0x40)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).faultReason == .flEntryNotPresent)
        #expect(!unit.faultRecord(0).fault)
        // PASID 0x40 has its own directory entry, without FPD.
        #expect(unit.translate(.read(0x1000, pasid: 0x40)).faultReason == .flEntryNotPresent)
        #expect(unit.faultRecord(0).fault)
    }

    @Test("FPD in a PASID entry suppresses that PASID's faults only")
    func pasidEntryFPD() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device()
        device.firstLevel(pasid: 1, faultProcessingDisabled: true)
        device.firstLevel(pasid: 2)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000, pasid: 1)).faultReason == .flEntryNotPresent)
        #expect(!unit.faultRecord(0).fault)
        #expect(unit.translate(.read(0x1000, pasid: 2)).faultReason == .flEntryNotPresent)
        #expect(unit.faultRecord(0).pasid == 2)
    }

    @Test("FPD of a not-present entry still applies to the fault it raises")
    func notPresentEntryFPD() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device()
        device.writePASIDEntry(3, [0b10])  // P clear, FPD set
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000, pasid: 3)).faultReason == .pasidEntryNotPresent)
        #expect(!unit.faultRecord(0).fault)
    }

    @Test("faults that are not qualified are recorded despite FPD (PASID table access error)")
    func unqualifiedIgnoresFPD() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device(faultProcessingDisabled: true)
        device.firstLevel()
        guest.write64(device.directoryEntryAddress(0), 1 << 40 | 1)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).faultReason == .pasidTableAccessError)
        #expect(unit.faultRecord(0).reason == FaultReason.pasidTableAccessError.rawValue)
    }

    @Test("the FPD bit of an entry with reserved bits set is not trusted")
    func malformedEntryFPD() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        let device = root.device(faultProcessingDisabled: true)
        guest.write64(device.contextEntry + 8, guest.read64(device.contextEntry + 8) | 1 << 7)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).faultReason == .contextEntryReserved)
        #expect(unit.faultRecord(0).fault)
    }

    @Test("probes (recordsFaults false) and ATS translation requests never record")
    func unrecordedRequests() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.legacy.with { $0.deviceIOTLB = true })
        let root = guest.legacyRoot()
        root.device(translationType: 0b01)
        unit.enableTranslation(root)
        var probe = TranslationRequest.read(0x1000)
        probe.recordsFaults = false
        var ats = TranslationRequest.read(0x1000)
        ats.isTranslationRequest = true
        #expect(unit.translate(probe).faultReason == .readDenied)
        #expect(unit.translate(ats).faultReason == .readDenied)
        #expect(!unit.faultRecord(0).fault)
    }

    @Test("the qualified-fault table: table-structure faults are not, entry and paging faults are")
    func qualifiedTable() {
        for reason in [FaultReason.rootEntryNotPresent, .rootTableAccessError, .contextTableAccessError,
                       .rootEntryReserved, .smRootEntryNotPresent, .smContextEntryAccessError,
                       .pasidDirectoryAccessError, .pasidTableAccessError] {
            #expect(!reason.isQualified, "\(reason)")
        }
        for reason in [FaultReason.contextEntryNotPresent, .readDenied, .writeDenied, .pagingEntryReserved,
                       .interruptAddressRange, .pasidEntryNotPresent, .flEntryNotPresent, .smWriteDenied,
                       .smInterruptAddressRange, .nestedFLEntryReadDenied] {
            #expect(reason.isQualified, "\(reason)")
        }
    }
}

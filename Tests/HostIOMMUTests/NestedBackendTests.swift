import Testing

@testable import HostIOMMU
import HostIOMMUTesting

@Suite struct NestedBackendTests {
    @Test func adoptGivesTheDeviceANestParentAndKeepsVFIOsHWPT() throws {
        let host = NestedHost()
        let device = try host.assign()
        let info = try host.backend.adopt(device)
        #expect(info.ecap.nestedTranslation)
        let parent = try #require(host.backend.parentHWPT(device.requesterID))
        #expect(host.fake.objects(iommufd: device.iommufd)[parent] == .hwptPaging(ioas: device.ioasID, nestParent: true, automatic: false))
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == parent)
        #expect(host.fake.objects(iommufd: device.iommufd)[device.hwptID] != nil)
        host.expectAgreement()
    }

    @Test func adoptReusesAVFIONestParent() throws {
        let host = NestedHost()
        var device = try host.assign()
        let parent = try host.kernel.nestParent(device)
        try host.kernel.client.attach(deviceFD: device.deviceFD, .requestsWithoutPASID, to: parent)
        device.hwptID = parent
        device.hwptIsNestParent = true
        host.fake.clearCallLog()
        try host.backend.adopt(device)
        #expect(host.fake.calls == [.getHWInfo])
        #expect(host.backend.parentHWPT(device.requesterID) == parent)
    }

    @Test func adoptRefusesAHostThatCannotNestAndSaysWhy() throws {
        let host = NestedHost()
        let device = try host.assign(profile: .init(host: .withoutNesting))
        do {
            try host.backend.adopt(device)
            Issue.record("adopt should fail")
        } catch {
            #expect(error.kind == .capability)
            #expect(error.message.contains("ECAP.NEST"))
        }
        #expect(host.fake.calls.suffix(1) == [.getHWInfo])
    }

    @Test func adoptExplainsTheReadOnlyErratum() throws {
        let host = NestedHost()
        let device = try host.assign()
        try host.kernel.map(device.ioasID, 0xC0000, 0x1000, .read)
        #expect(throws: HostError.self) { try host.backend.adopt(device) }
        do { try host.backend.adopt(device) } catch { #expect(error.message.contains("772415")) }
        host.expectAgreement()
    }

    @Test func bindingsWaitForDMARemappingThenAttachANestedHWPT() throws {
        let host = NestedHost()
        let device = try host.assign()
        try host.backend.adopt(device)
        let binding = NestedHost.firstLevel(device, root: 0xABC000, flags: .supervisorRequests)
        #expect(try host.backend.bind(binding) == .deferred)
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == host.backend.parentHWPT(device.requesterID))
        try host.backend.dmaRemappingChanged(enabled: true)
        let nested = try #require(host.backend.attachedHWPT(device.requesterID))
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == nested)
        #expect(host.fake.nestedTable(iommufd: device.iommufd, hwpt: nested) == FirstLevelTable(rootPointer: 0xABC000, flags: .supervisorRequests))
        host.expectAgreement()
    }

    @Test func rebindReplacesAtomicallyAndDestroysTheOldHWPT() throws {
        let host = NestedHost()
        let device = try host.adopted()
        guard case .attachedNested(let first) = try host.backend.bind(NestedHost.firstLevel(device, root: 0x1000)) else {
            Issue.record("expected a nested attach")
            return
        }
        host.fake.clearCallLog()
        guard case .attachedNested(let second) = try host.backend.bind(NestedHost.firstLevel(device, root: 0x2000)) else {
            Issue.record("expected a nested attach")
            return
        }
        // Allocate, replace, then destroy: the device is never left without a translation.
        #expect(host.fake.calls == [.hwptAlloc, .vfioDeviceAttach, .destroy])
        #expect(host.fake.objects(iommufd: device.iommufd)[first] == nil)
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == second)
        host.expectAgreement()
    }

    @Test func reprogrammingTheSameTableCostsNoHostCall() throws {
        let host = NestedHost()
        let device = try host.adopted()
        try host.backend.bind(NestedHost.firstLevel(device))
        host.fake.clearCallLog()
        #expect(try host.backend.bind(NestedHost.firstLevel(device)) == .unchanged)
        #expect(try host.backend.bind(NestedHost.firstLevel(device, did: 9)) == .unchanged)
        #expect(host.fake.calls.isEmpty)
        // The new DID now selects the HWPT for invalidation.
        host.backend.enqueue(NestedHost.invalidation(did: 9, page: 1))
        #expect(host.backend.endBatch().hostCalls == 1)
    }

    @Test func passThroughAttachesTheParentAndClearedDetaches() throws {
        let host = NestedHost()
        let device = try host.adopted()
        try host.backend.bind(NestedHost.firstLevel(device))
        #expect(try host.backend.bind(NestedHost.binding(device, .passThrough)) == .attachedParent)
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == host.backend.parentHWPT(device.requesterID))
        #expect(try host.backend.bind(NestedHost.binding(device, .cleared)) == .detached)
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == nil)
        host.expectAgreement()
    }

    @Test func turningDMARemappingOffFallsBackToTheParentAndBackOnRestoresBindings() throws {
        let host = NestedHost()
        let device = try host.adopted()
        try host.backend.bind(NestedHost.firstLevel(device))
        try host.backend.bind(NestedHost.firstLevel(device, root: 0x5000, pasid: 7))
        try host.backend.dmaRemappingChanged(enabled: false)
        let parent = host.backend.parentHWPT(device.requesterID)
        #expect(host.fake.attachments(deviceFD: device.deviceFD) == [.requestsWithoutPASID: parent!])
        try host.backend.dmaRemappingChanged(enabled: true)
        #expect(host.fake.attachments(deviceFD: device.deviceFD).count == 2)
        host.expectAgreement(points: [.requestsWithoutPASID, .pasid(PASID(rawValue: 7))])
        try host.backend.reset()
        #expect(host.fake.attachments(deviceFD: device.deviceFD) == [.requestsWithoutPASID: parent!])
        host.expectAgreement(points: [.requestsWithoutPASID, .pasid(PASID(rawValue: 7))])
    }

    @Test func pasidEntriesUseThePASIDAttachAndLeaveTheRIDAlone() throws {
        let host = NestedHost()
        let device = try host.adopted()
        try host.backend.bind(NestedHost.firstLevel(device, root: 0x1000))
        let rid = host.fake.attachment(deviceFD: device.deviceFD)
        guard case .attachedNested(let hwpt) = try host.backend.bind(NestedHost.firstLevel(device, root: 0x9000, pasid: 5)) else {
            Issue.record("expected a nested attach")
            return
        }
        #expect(host.fake.attachment(deviceFD: device.deviceFD, .pasid(PASID(rawValue: 5))) == hwpt)
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == rid)
        #expect(try host.backend.bind(NestedHost.binding(device, .cleared, pasid: 5)) == .detached)
        #expect(host.fake.attachment(deviceFD: device.deviceFD, .pasid(PASID(rawValue: 5))) == nil)
        host.expectAgreement(points: [.requestsWithoutPASID, .pasid(PASID(rawValue: 5))])
    }

    @Test func aNonZeroRIDPASIDIsAttachedAsTheRID() throws {
        let host = NestedHost()
        let device = try host.adopted()
        var binding = NestedHost.firstLevel(device, pasid: 3)
        binding.ridPASID = PASID(rawValue: 3)
        try host.backend.bind(binding)
        #expect(host.fake.attachments(deviceFD: device.deviceFD).keys.sorted { $0.order < $1.order } == [.requestsWithoutPASID])
    }

    @Test func secondLevelEntriesAreBlockedWithAnExplanation() throws {
        let host = NestedHost()
        let device = try host.adopted()
        try host.backend.bind(NestedHost.firstLevel(device))
        do {
            try host.backend.bind(NestedHost.binding(device, .secondLevel))
            Issue.record("second level must be refused")
        } catch {
            #expect(error.kind == .unsupported)
            #expect(error.message.contains("blocked"))
        }
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == nil)
        host.expectAgreement()
    }

    @Test func tablesTheHostCannotWalkAreBlockedBeforeTheKernelSaysEINVAL() throws {
        let host = NestedHost()
        let device = try host.adopted()
        do {
            try host.backend.bind(NestedHost.firstLevel(device, flags: .extendedAccessed))
            Issue.record("EAFE without host EAFS must be refused")
        } catch {
            #expect(error.kind == .capability)
            #expect(error.message.contains("EAFS"))
        }
        #expect(!host.fake.calls.contains(.hwptAlloc))
        host.expectAgreement()
    }

    // ---- refusals: never more access than the guest programmed ------------------------------------

    @Test func aRefusedEnableBlocksTheRIDInsteadOfLeavingItOnTheParent() throws {
        let host = NestedHost()
        let device = try host.assign()
        try host.backend.adopt(device)
        try host.backend.bind(NestedHost.firstLevel(device))
        try host.backend.bind(NestedHost.firstLevel(device, root: 0x5000, pasid: 7))
        host.fake.failNext(.hwptAlloc, with: .enomem)  // the RID's; PASID 7 binds
        do {
            try host.backend.dmaRemappingChanged(enabled: true)
            Issue.record("the refusal must be reported")
        } catch {
            #expect(error.errno == .enomem)
            #expect(error.message.contains("blocked"))
        }
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == nil)
        #expect(host.fake.attachment(deviceFD: device.deviceFD, .pasid(PASID(rawValue: 7))) != nil)
        host.expectAgreement(points: [.requestsWithoutPASID, .pasid(PASID(rawValue: 7))])
        // The retry of the same binding (the model's re-read) is refused too: still blocked.
        host.fake.failNext(.hwptAlloc, with: .enomem)
        #expect(throws: HostError.self) { try host.backend.bind(NestedHost.firstLevel(device)) }
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == nil)
        // The next change the kernel accepts binds.
        guard case .attachedNested(let hwpt) = try host.backend.bind(NestedHost.firstLevel(device)) else {
            Issue.record("expected a nested attach")
            return
        }
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == hwpt)
        host.expectAgreement(points: [.requestsWithoutPASID, .pasid(PASID(rawValue: 7))])
    }

    @Test(arguments: [IoctlRequest.hwptAlloc, .vfioDeviceAttach])
    func aRefusedRebindRetiresTheStaleTableAndBlocks(_ refused: IoctlRequest) throws {
        let host = NestedHost()
        let device = try host.adopted()
        guard case .attachedNested(let old) = try host.backend.bind(NestedHost.firstLevel(device, root: 0x1000)) else {
            Issue.record("expected a nested attach")
            return
        }
        host.fake.clearCallLog()
        host.fake.failNext(refused, with: .enomem)
        do {
            try host.backend.bind(NestedHost.firstLevel(device, root: 0x2000))
            Issue.record("the refusal must be reported")
        } catch {
            #expect(error.errno == .enomem)
            #expect(error.message.contains("is blocked"))
        }
        // Nothing new left behind, then the old table detached and destroyed: the guest replaced it.
        let expected: [IoctlRequest] =
            refused == .hwptAlloc
            ? [.hwptAlloc, .vfioDeviceDetach, .destroy]
            : [.hwptAlloc, .vfioDeviceAttach, .destroy, .vfioDeviceDetach, .destroy]
        #expect(host.fake.calls == expected)
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == nil)
        #expect(host.fake.objects(iommufd: device.iommufd)[old] == nil)
        #expect(host.backend.attachedHWPT(device.requesterID) == nil)
        // Invalidations for the old table's DID have nowhere to go any more.
        host.backend.enqueue(NestedHost.invalidation(page: 1))
        #expect(host.backend.endBatch().hostCalls == 0)
        host.expectAgreement()
        #expect(host.backend.describe().contains("detached (blocked)"))
    }

    @Test func aRefusedPASIDRebindBlocksThatPASIDOnly() throws {
        let host = NestedHost()
        let device = try host.adopted()
        try host.backend.bind(NestedHost.firstLevel(device))
        let rid = host.fake.attachment(deviceFD: device.deviceFD)
        try host.backend.bind(NestedHost.firstLevel(device, root: 0x9000, pasid: 5))
        host.fake.failNext(.hwptAlloc, with: .enospc)
        #expect(throws: HostError.self) { try host.backend.bind(NestedHost.firstLevel(device, root: 0xA000, pasid: 5)) }
        #expect(host.fake.attachment(deviceFD: device.deviceFD, .pasid(PASID(rawValue: 5))) == nil)
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == rid)
        host.expectAgreement(points: [.requestsWithoutPASID, .pasid(PASID(rawValue: 5))])
    }

    @Test func aRefusedPassThroughBlocksRatherThanKeepTheOldTable() throws {
        let host = NestedHost()
        let device = try host.adopted()
        try host.backend.bind(NestedHost.firstLevel(device))
        host.fake.failNext(.vfioDeviceAttach, with: .einval)
        #expect(throws: HostError.self) { try host.backend.bind(NestedHost.binding(device, .passThrough)) }
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == nil)
        host.expectAgreement()
    }

    @Test func whenTheDetachIsRefusedTooThePointKeepsWhatItHadAndTheErrorSaysSo() throws {
        let host = NestedHost()
        let device = try host.adopted()
        guard case .attachedNested(let old) = try host.backend.bind(NestedHost.firstLevel(device, root: 0x1000)) else {
            Issue.record("expected a nested attach")
            return
        }
        host.fake.failNext(.hwptAlloc, with: .enomem)
        host.fake.failNext(.vfioDeviceDetach, with: .ebusy)
        do {
            try host.backend.bind(NestedHost.firstLevel(device, root: 0x2000))
            Issue.record("the refusal must be reported")
        } catch {
            #expect(error.errno == .enomem)
            #expect(error.message.contains("detaching") && error.message.contains("keeps its previous attachment"))
        }
        #expect(host.fake.attachment(deviceFD: device.deviceFD) == old)
        host.expectAgreement()
        // The next change tries again.
        #expect(try host.backend.bind(NestedHost.binding(device, .cleared)) == .detached)
        #expect(host.fake.objects(iommufd: device.iommufd)[old] == nil)
        host.expectAgreement()
    }

    @Test func unassignedDevicesAreNotTheHostsBusiness() throws {
        let host = NestedHost()
        _ = try host.adopted()
        let emulated = PASIDBinding(requesterID: .bus(9), domainID: DomainID(rawValue: 1), translation: .passThrough)
        #expect(try host.backend.bind(emulated) == .notAssigned)
        #expect(host.fake.calls.isEmpty)
    }

    @Test func releaseReturnsTheDeviceToVFIOWithNothingLeftBehind() throws {
        let host = NestedHost()
        let device = try host.adopted()
        try host.backend.bind(NestedHost.firstLevel(device))
        try host.backend.bind(NestedHost.firstLevel(device, root: 0x7000, pasid: 2))
        try host.backend.release(device.requesterID)
        #expect(host.fake.attachments(deviceFD: device.deviceFD) == [.requestsWithoutPASID: device.hwptID])
        #expect(host.fake.hwpts(iommufd: device.iommufd) == [device.hwptID])
        #expect(host.backend.assignedDevices.isEmpty)
    }

    @Test func theStateDumpNamesEveryAttachment() throws {
        let host = NestedHost()
        let device = try host.adopted()
        try host.backend.bind(NestedHost.firstLevel(device, root: 0x42000))
        let dump = host.backend.describe()
        #expect(dump.contains("DMA remapping on"))
        #expect(dump.contains("RID → nested HWPT"))
        #expect(dump.contains("root 0x42000 48-bit"))
    }
}

@Suite struct NestedInvalidationTests {
    @Test func descriptorsUpToAWaitBecomeOneCallPerHWPT() throws {
        let host = NestedHost()
        let device = try host.adopted()
        guard case .attachedNested(let hwpt) = try host.backend.bind(NestedHost.firstLevel(device)) else {
            Issue.record("expected a nested attach")
            return
        }
        host.fake.clearCallLog()
        for page in 0..<16 as Range<UInt64> { host.backend.enqueue(NestedHost.invalidation(page: page * 2, tag: page)) }
        host.backend.enqueue(NestedHost.invalidation(did: 2, page: 99))  // another domain: not ours
        #expect(host.fake.calls.isEmpty)
        let outcome = host.backend.endBatch()
        #expect(outcome.hostCalls == 1 && outcome.entries == 16 && outcome.result == .completed)
        #expect(host.fake.calls == [.hwptInvalidate])
        let seen = host.fake.invalidations(iommufd: device.iommufd, hwpt: hwpt)
        #expect(seen.map(\.address) == (0..<16).map { UInt64($0) * 2 << 12 })
        #expect(seen.allSatisfy { $0.leaf && $0.pages == 1 })
        // An empty batch costs nothing.
        #expect(host.backend.endBatch().hostCalls == 0)
    }

    @Test func queuingAndFlushingReuseTheSameEntryStorage() throws {
        let host = NestedHost()
        let device = try host.adopted()
        guard case .attachedNested(let hwpt) = try host.backend.bind(NestedHost.firstLevel(device)) else {
            Issue.record("expected a nested attach")
            return
        }
        let storage = host.backend.pendingStorage(hwpt)
        #expect(storage != nil)
        for round in 0..<3 as Range<UInt64> {
            for page in 0..<UInt64(InvalidationSlot.reservedEntries) {
                host.backend.enqueue(NestedHost.invalidation(page: page, tag: round))
            }
            #expect(host.backend.endBatch().entries == InvalidationSlot.reservedEntries)
            #expect(host.backend.pendingStorage(hwpt) == storage, "round \(round) reallocated")
        }
    }

    @Test func twoDevicesInOneDomainGetOneCallEach() throws {
        let host = NestedHost()
        let a = try host.adopted(1)
        let b = try host.adopted(2)
        try host.backend.bind(NestedHost.firstLevel(a))
        try host.backend.bind(NestedHost.firstLevel(b))
        for page in 0..<5 as Range<UInt64> { host.backend.enqueue(NestedHost.invalidation(page: page)) }
        let outcome = host.backend.endBatch()
        #expect(outcome.hostCalls == 2 && outcome.entries == 10)
    }

    @Test func anAllAddressesDescriptorSupersedesTheBatch() throws {
        let host = NestedHost()
        let device = try host.adopted()
        guard case .attachedNested(let hwpt) = try host.backend.bind(NestedHost.firstLevel(device)) else {
            Issue.record("expected a nested attach")
            return
        }
        host.backend.enqueue(NestedHost.invalidation(page: 1))
        host.backend.enqueue(PASIDInvalidation(domainID: DomainID(rawValue: 1), pasid: .zero, scope: .all))
        host.backend.enqueue(NestedHost.invalidation(page: 2))
        #expect(host.backend.endBatch().entries == 1)
        #expect(host.fake.invalidations(iommufd: device.iommufd, hwpt: hwpt) == [.init(address: 0, pages: UInt64.max, leaf: false)])
    }

    @Test func addressMaskDecodingAlignsTheRange() {
        #expect(PASIDInvalidation.Scope.addressMask(address: 0x1_3000, am: 2) == .pages(address: 0x1_0000, count: 4))
        #expect(PASIDInvalidation.Scope.addressMask(address: 0x5000, am: 0) == .pages(address: 0x5000, count: 1))
    }

    @Test func aRefusedEntryIsReportedByItsDescriptorAndRecoveredByAFullFlush() throws {
        let host = NestedHost()
        let device = try host.adopted()
        guard case .attachedNested(let hwpt) = try host.backend.bind(NestedHost.firstLevel(device)) else {
            Issue.record("expected a nested attach")
            return
        }
        for page in 0..<6 as Range<UInt64> { host.backend.enqueue(NestedHost.invalidation(page: page, tag: 100 + page)) }
        host.fake.failInvalidation(atEntry: 3, with: .einval)
        let outcome = host.backend.endBatch()
        guard case .recovered(let failure) = outcome.result else {
            Issue.record("expected a recovered failure, got \(outcome.result)")
            return
        }
        #expect(failure.tag == 103 && failure.processed == 3 && failure.errno == .einval && failure.hwptID == hwpt)
        #expect(outcome.hostCalls == 2)
        let seen = host.fake.invalidations(iommufd: device.iommufd, hwpt: hwpt)
        #expect(seen.count == 4 && seen.last == .init(address: 0, pages: UInt64.max, leaf: false))
        #expect("\(failure)".contains("descriptor 103"))
    }

    @Test func whenEvenTheFullFlushFailsTheGuestMustSeeAnError() throws {
        let host = NestedHost()
        let a = try host.adopted(1)
        let b = try host.adopted(2)
        try host.backend.bind(NestedHost.firstLevel(a))
        try host.backend.bind(NestedHost.firstLevel(b))
        host.backend.enqueue(NestedHost.invalidation(page: 1, tag: 7))
        host.fake.failNext(.hwptInvalidate, with: .eio)
        host.fake.failNext(.hwptInvalidate, with: .eio)
        let outcome = host.backend.endBatch()
        #expect(outcome.result == .failed(InvalidationFailure(
            tag: 7, errno: .eio, requesterID: a.requesterID, hwptID: host.backend.attachedHWPT(a.requesterID)!, processed: 0)))
        // The other device's HWPT was still invalidated.
        #expect(host.fake.invalidations(iommufd: b.iommufd, hwpt: host.backend.attachedHWPT(b.requesterID)!).count == 1)
    }

    @Test func queuedEntriesOfAReplacedHWPTAreDropped() throws {
        let host = NestedHost()
        let device = try host.adopted()
        try host.backend.bind(NestedHost.firstLevel(device))
        host.backend.enqueue(NestedHost.invalidation(page: 1))
        try host.backend.bind(NestedHost.binding(device, .passThrough))
        host.fake.clearCallLog()
        #expect(host.backend.endBatch().hostCalls == 0)
        #expect(host.fake.calls.isEmpty)
    }
}

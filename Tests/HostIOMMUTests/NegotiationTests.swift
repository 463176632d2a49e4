import Testing

@testable import HostIOMMU
import HostIOMMUTesting

@Suite struct NegotiationTests {
    let nesting = HostIOMMUInfo(
        cap: FakeIOMMUFD.HostProfile.nesting().cap, ecap: FakeIOMMUFD.HostProfile.nesting().ecap)
    let plain = HostIOMMUInfo(
        cap: FakeIOMMUFD.HostProfile.withoutNesting.cap, ecap: FakeIOMMUFD.HostProfile.withoutNesting.ecap)
    let guest = GuestCapabilityProfile()

    func decide(_ properties: Negotiation.Properties, _ devices: [Negotiation.Candidate]) -> Result<Negotiation.Decision, HostError> {
        Negotiation.decide(properties, guest: guest, devices: devices)
    }

    @Test func everyDeviceCanNestSoFirstLevelIsExposedAndBound() throws {
        let decision = try decide(.init(), [.init(name: "0000:3b:00.0", info: nesting), .init(name: "0000:5e:00.0", info: nesting)]).get()
        #expect(decision.mode == .nested)
        #expect(decision.exposeFirstLevel && !decision.exposeSecondLevel && decision.cachingMode)
        #expect(decision.description == "host mode: nested first-level; FLTS=1 SLTS=0 CM=1; every assigned device can nest: 0000:3b:00.0, 0000:5e:00.0")
    }

    @Test func oneDeviceThatCannotNestMeansShadowingWithCachingModeAndNoFLTS() throws {
        let decision = try decide(.init(), [.init(name: "0000:3b:00.0", info: nesting), .init(name: "0000:af:00.0", info: plain)]).get()
        #expect(decision.mode == .shadow)
        #expect(!decision.exposeFirstLevel && decision.exposeSecondLevel && decision.cachingMode)
        #expect(decision.description.contains("0000:af:00.0: host IOMMU has no nested translation (ECAP.NEST, bit 26)"))
    }

    @Test func aLegacyContainerDeviceCannotNest() throws {
        let decision = try decide(.init(), [.init(name: "0000:01:00.0", info: nil)]).get()
        #expect(decision.mode == .shadow)
        #expect(decision.description.contains("not on iommufd"))
    }

    @Test func forcingNestingWithADeviceThatCannotIsAClearError() {
        for properties in [Negotiation.Properties(flts: .on), Negotiation.Properties(hostMode: .nested)] {
            guard case .failure(let error) = decide(properties, [.init(name: "0000:af:00.0", info: plain)]) else {
                Issue.record("expected a failure")
                continue
            }
            #expect(error.kind == .configuration)
            #expect(error.message.contains("0000:af:00.0"))
            #expect(error.message.contains("ECAP.NEST"))
        }
    }

    /// Issue 15: the hint once named x-flts=auto, which QEMU rejects (x-flts is on/off).
    @Test func theRefusalOfForcedNestingPointsAtHostModeAutoOrShadow() {
        for properties in [Negotiation.Properties(flts: .on), Negotiation.Properties(hostMode: .nested)] {
            guard case .failure(let error) = decide(properties, [.init(name: "0000:af:00.0", info: plain)]) else {
                Issue.record("expected a failure")
                continue
            }
            #expect(error.message.contains("host-mode=auto"))
            #expect(error.message.contains("host-mode=shadow"))
            #expect(!error.message.contains("x-flts=auto"))
        }
    }

    @Test func contradictoryChoicesAreRefused() {
        if case .success = decide(.init(flts: .on, hostMode: .shadow), [.init(name: "d", info: nesting)]) {
            Issue.record("x-flts=on with forced shadowing must fail")
        }
        if case .success = decide(.init(flts: .off, hostMode: .nested), [.init(name: "d", info: nesting)]) {
            Issue.record("x-flts=off with forced nesting must fail")
        }
        if case .success = decide(.init(scalableMode: false, hostMode: .nested), [.init(name: "d", info: nesting)]) {
            Issue.record("nesting without scalable mode must fail")
        }
    }

    @Test func cachingModeOffCannotWorkWithAssignedDevices() {
        guard case .failure(let nestedError) = decide(.init(cachingMode: .off), [.init(name: "d", info: nesting)]),
            case .failure(let shadowError) = decide(.init(cachingMode: .off), [.init(name: "d", info: plain)])
        else {
            Issue.record("caching-mode=off must fail")
            return
        }
        #expect(nestedError.message.contains("PASID entries"))
        #expect(shadowError.message.contains("never reach the host"))
    }

    @Test func shadowingCanBeForcedEvenWhenNestingWouldWork() throws {
        let decision = try decide(.init(hostMode: .shadow), [.init(name: "d", info: nesting)]).get()
        #expect(decision.mode == .shadow && !decision.exposeFirstLevel)
        #expect(decision.description.hasSuffix("forced by host mode shadow"))
        #expect(try decide(.init(flts: .off), [.init(name: "d", info: nesting)]).get().mode == .shadow)
        let legacy = try decide(.init(scalableMode: false), [.init(name: "d", info: nesting)]).get()
        #expect(legacy.mode == .shadow && !legacy.exposeSecondLevel && legacy.description.contains("legacy CM=1"))
    }

    @Test func withoutAssignedDevicesThePropertiesDecide() throws {
        let flts = try decide(.init(flts: .on), []).get()
        #expect(flts.mode == .emulatedOnly && flts.exposeFirstLevel && !flts.cachingMode)
        let auto = try decide(.init(), []).get()
        #expect(!auto.exposeFirstLevel && auto.exposeSecondLevel)
        #expect(auto.description == "host mode: emulated only (no assigned devices); FLTS=0 SLTS=1 CM=0")
    }

    @Test func theAuditChecksEveryCapabilityTheGuestIsShown() {
        let demanding = GuestCapabilityProfile(
            addressWidth: 57, firstStage1GPages: true, firstStage5Level: true, supervisorRequests: true,
            extendedAccessed: true, pasidWidth: 20)
        var weak = FakeIOMMUFD.HostProfile.nesting(pasidBits: 10)
        weak.cap &= ~(1 << 56)
        weak.ecap &= ~(1 << 31)
        let problems = CapabilityAudit.nestingProblems(HostIOMMUInfo(cap: weak.cap, ecap: weak.ecap), guest: demanding)
        let text = problems.joined(separator: "\n")
        for needle in ["CAP.MGAW", "FS1GP", "FL5LP", "ECAP.SRS", "ECAP.EAFS", "PASID width 20 exceeds the host's 10"] {
            #expect(text.contains(needle), "\(needle)")
        }
        #expect(CapabilityAudit.nestingProblems(nesting, guest: guest).isEmpty)
        #expect(CapabilityAudit.nestingProblems(HostIOMMUInfo(type: 2, cap: 0, ecap: 0), guest: guest) == [
            "host IOMMU is not Intel VT-d (IOMMU_GET_HW_INFO type 2)"
        ])
    }

    @Test func aDeviceReportingANarrowPASIDWidthCannotTakeTheGuestsPASIDs() {
        var info = nesting
        info.maxPASIDLog2 = 8
        #expect(CapabilityAudit.nestingProblems(info, guest: GuestCapabilityProfile(pasidWidth: 20)) == [
            "guest PASID width 20 exceeds the device's 8 (out_max_pasid_log2)"
        ])
        #expect(CapabilityAudit.nestingProblems(info, guest: GuestCapabilityProfile(pasidWidth: 8)).isEmpty)
        #expect(CapabilityAudit.nestingProblems(info, guest: GuestCapabilityProfile(pasidWidth: 0)).isEmpty)
    }

    @Test func probingReadsTheHostThroughGetHWInfo() throws {
        let kernel = Kernel()
        let device = try kernel.device(profile: .init(host: .withoutNesting))
        let info = try NestedBackend.probe(device, seam: kernel.fake.seam)
        let decision = try decide(.init(), [.init(name: device.name, info: info)]).get()
        #expect(decision.mode == .shadow)
    }

    @Test func shadowingRefusesAGuestWiderThanTheHostIOAS() throws {
        // A 47-bit IOAS (the last byte below the MSI window is irrelevant: the top counts).
        let narrow = Negotiation.Candidate(name: "0000:af:00.0", info: plain, lastIOVA: (1 << 47) - 1)
        guard case .failure(let error) = decide(.init(), [narrow]) else {
            Issue.record("aw-bits=48 over a 47-bit IOAS was accepted")
            return
        }
        #expect(error.kind == .configuration)
        #expect(error.message.contains("0000:af:00.0: its host IOAS maps IOVAs up to 0x7fffffffffff"))
        #expect(error.message.contains("set aw-bits=39"))
        let narrower = GuestCapabilityProfile(addressWidth: 39)
        try Negotiation.checkShadowWidth([narrow], guest: narrower)
        // Nesting walks the guest's tables itself: the IOAS holds GPAs, not guest IOVAs.
        let nestable = Negotiation.Candidate(name: "d", info: nesting, lastIOVA: (1 << 47) - 1)
        #expect(try decide(.init(), [nestable]).get().mode == .nested)
        // A legacy container whose width the host did not tell (iova_bits 0) is not checked.
        #expect(try decide(.init(), [.init(name: "l", info: nil)]).get().mode == .shadow)
        #expect(Negotiation.addressBits(below: (1 << 48) - 1) == 48)
        #expect(Negotiation.addressBits(below: (1 << 48) - 0x1001) == 47)
        #expect(Negotiation.addressBits(below: .max) == 64)
    }

    /// host-mode=auto with aw-bits=39 (what the width refusal advises) over a host that can
    /// nest: first-level translation needs 48 bits, so the unit shadows instead of failing to
    /// start; forcing nesting says why it cannot.
    @Test func aUnitNarrowerThanFirstLevelShadowsUnderAutoAndRefusesForcedNesting() throws {
        let narrow = GuestCapabilityProfile(addressWidth: 39)
        let device = Negotiation.Candidate(name: "0000:3b:00.0", info: nesting, lastIOVA: (1 << 47) - 1)
        let decision = try Negotiation.decide(.init(), guest: narrow, devices: [device]).get()
        #expect(decision.mode == .shadow && !decision.exposeFirstLevel)
        #expect(decision.description.contains("first-level translation needs aw-bits of at least 48"), "\(decision.description)")
        guard case .failure(let error) = Negotiation.decide(.init(hostMode: .nested), guest: narrow, devices: [device]) else {
            Issue.record("forced nesting at aw-bits=39 was accepted")
            return
        }
        #expect(error.kind == .configuration && error.message.contains("aw-bits=39"), "\(error.message)")
    }

    @Test func theIOASWidthIsReadThroughIOVARanges() throws {
        let kernel = Kernel()
        let device = try kernel.device(profile: .init(host: .withoutNesting))
        kernel.fake.apertureLast = (1 << 39) - 1
        let last = try IOMMUFDClient(seam: kernel.fake.seam).lastIOVA(iommufd: device.iommufd, ioas: device.ioasID)
        #expect(last == (1 << 39) - 1)
    }
}

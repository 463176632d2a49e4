import Testing

@testable import HostIOMMU
import HostIOMMUTesting

/// A fake kernel, a shadow backend, and one device shadowed into its own IOAS.
final class ShadowHost {
    let kernel = Kernel()
    let backend = ShadowBackend()
    let device = RequesterID.bus(1)
    let ioas: ObjectID

    var fake: FakeIOMMUFD { kernel.fake }

    init(skipReadOnly: Bool = false) throws {
        ioas = try kernel.ioas()
        try backend.attach(
            device,
            sink: IOASShadowSink(
                iommufd: kernel.iommufd, ioas: ioas, skipReadOnly: skipReadOnly, seam: kernel.fake.seam,
                guestRAM: FakeIOMMUFD.guestRAM))
        kernel.fake.clearCallLog()
    }

    @discardableResult
    func map(_ iova: UInt64, _ length: UInt64, to target: UInt64, _ permissions: Permissions = .readWrite) throws
        -> ShadowBackend.Outcome
    {
        try backend.apply(.map(ShadowMapping(iova: iova, length: length, target: target, permissions: permissions)), for: device)
    }

    @discardableResult
    func unmap(_ iova: UInt64, _ length: UInt64) throws -> ShadowBackend.Outcome {
        try backend.apply(.unmap(iova: iova, length: length), for: device)
    }

    /// The kernel's areas, as shadow mappings (user VA turned back into guest-physical).
    var kernelMappings: [ShadowMapping] {
        fake.areas(iommufd: kernel.iommufd, ioas: ioas).map {
            ShadowMapping(
                iova: $0.iova, length: $0.length, target: $0.userVA - FakeIOMMUFD.guestRAMBase,
                permissions: ($0.readable ? Permissions.read : []).union($0.writable ? Permissions.write : []))
        }
    }

    /// What the backend believes is on the host.
    var recordedOnHost: [ShadowMapping] {
        let skipped = Set(backend.skippedMappings(device))
        return backend.mappings(device).filter { !skipped.contains($0) }
    }

    func expectAgreement(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(kernelMappings == recordedOnHost, sourceLocation: sourceLocation)
    }
}

let page: UInt64 = 0x1000

@Suite struct ShadowBackendTests {
    @Test func aNewTranslationIsOneMapAndAnUnchangedOneIsFree() throws {
        let host = try ShadowHost()
        #expect(try host.map(0x10000, page, to: 0x80000).hostMaps == 1)
        #expect(try host.map(0x10000, page, to: 0x80000).hostOperations == 0)
        #expect(host.fake.calls == [.ioasMap])
        host.expectAgreement()
    }

    @Test func aChangedTranslationIsUnmapThenMap() throws {
        let host = try ShadowHost()
        try host.map(0x10000, page, to: 0x80000)
        host.fake.clearCallLog()
        let outcome = try host.map(0x10000, page, to: 0x90000, .read)
        #expect(outcome == { var o = ShadowBackend.Outcome(); o.hostMaps = 1; o.hostUnmaps = 1; return o }())
        #expect(host.fake.calls == [.ioasUnmap, .ioasMap])
        #expect(host.kernelMappings == [ShadowMapping(iova: 0x10000, length: page, target: 0x90000, permissions: .read)])
    }

    @Test func unmappingPartOfALargePageRemapsTheRestInsteadOfSplitting() throws {
        let host = try ShadowHost()
        try host.map(0x20_0000, 0x20_0000, to: 0x4000_0000)  // one 2 MiB leaf
        host.fake.clearCallLog()
        let outcome = try host.unmap(0x20_1000, page)
        #expect(outcome.hostUnmaps == 1 && outcome.hostMaps == 2)
        #expect(host.kernelMappings == [
            ShadowMapping(iova: 0x20_0000, length: page, target: 0x4000_0000, permissions: .readWrite),
            ShadowMapping(iova: 0x20_2000, length: 0x1F_E000, target: 0x4000_2000, permissions: .readWrite),
        ])
        host.expectAgreement()
    }

    @Test func aGuestSplittingALargePageIntoSmallOnesIsReplayedExactly() throws {
        let host = try ShadowHost()
        try host.map(0, 0x20_0000, to: 0x4000_0000)
        // The replay walk now finds 4 KiB leaves; the first differs.
        try host.map(0, page, to: 0x7000_0000)
        try host.map(page, page, to: 0x4000_1000)
        host.expectAgreement()
        #expect(host.kernelMappings.map(\.iova) == [0, page, 0x2000])
        #expect(host.kernelMappings.reduce(0) { $0 + $1.length } == 0x20_0000)
    }

    @Test func unmappingAContiguousRunIsOneHostCall() throws {
        let host = try ShadowHost()
        for i in 0..<16 as Range<UInt64> { try host.map(0x100_0000 + i * page, page, to: 0x200_0000 + i * page) }
        host.fake.clearCallLog()
        let outcome = try host.unmap(0x100_0000, 16 * page)
        #expect(outcome.hostUnmaps == 1 && host.fake.calls == [.ioasUnmap])
        #expect(host.kernelMappings.isEmpty && host.backend.mappings(host.device).isEmpty)
    }

    @Test func unmappingNothingCostsNothingAndClearEmptiesEverything() throws {
        let host = try ShadowHost()
        #expect(try host.unmap(0x5000, page).hostOperations == 0)
        try host.map(0x1000, page, to: 0x1000)
        try host.map(0x9000, page, to: 0x2000)
        try host.backend.clear(host.device)
        #expect(host.kernelMappings.isEmpty)
        try host.backend.detach(host.device)
        #expect(throws: HostError.self) { try host.map(0x1000, page, to: 0x1000) }
    }

    @Test func readOnlyMappingsAreSkippedUnderTheNestParentErratum() throws {
        let host = try ShadowHost(skipReadOnly: true)
        #expect(try host.map(0x1000, page, to: 0x1000, .read).hostOperations == 0)
        try host.map(0x2000, page, to: 0x2000)
        #expect(host.backend.skippedMappings(host.device).map(\.iova) == [0x1000])
        #expect(host.kernelMappings.map(\.iova) == [0x2000])
        #expect(host.backend.describe().contains("1 read-only skipped (erratum 772415)"))
        // Becoming writable maps it; unmapping a skipped one costs nothing.
        #expect(try host.map(0x1000, page, to: 0x1000).hostMaps == 1)
        try host.map(0x3000, page, to: 0x3000, .read)
        #expect(try host.unmap(0x3000, page).hostOperations == 0)
        host.expectAgreement()
        #expect(host.backend.describe().contains("2 mapping(s)"))
    }

    @Test func theErratumDecisionNeedsBothTheFlagAndANestParent() {
        let info = HostIOMMUInfo(cap: 0, ecap: 0, readOnlyNestParentErratum: true)
        #expect(IOASShadowSink.mustSkipReadOnly(info, ioasHoldsNestParent: true))
        #expect(!IOASShadowSink.mustSkipReadOnly(info, ioasHoldsNestParent: false))
    }

    @Test func malformedRangesAreRefusedWithoutTouchingTheHost() throws {
        let host = try ShadowHost()
        #expect(throws: HostError.self) { try host.map(0x1800, page, to: 0) }
        #expect(throws: HostError.self) { try host.map(0x1000, 0, to: 0) }
        #expect(throws: HostError.self) { try host.map(UInt64.max - 0xfff, 0x2000, to: 0) }
        #expect(throws: HostError.self) { try host.unmap(UInt64.max, 2) }
        #expect(host.fake.calls.isEmpty)
    }

    @Test func aMappingWithNoPermissionsIsAnUnmap() throws {
        let host = try ShadowHost()
        try host.map(0x1000, page, to: 0x1000)
        try host.map(0x1000, page, to: 0x1000, [])
        #expect(host.kernelMappings.isEmpty)
    }

    @Test func firstLevelEntriesCannotBeShadowed() throws {
        let host = try ShadowHost()
        let binding = PASIDBinding(
            requesterID: host.device, domainID: DomainID(rawValue: 1), translation: .firstLevel(.guestRoot))
        #expect(throws: HostError.self) { try host.backend.bind(binding) }
        try host.backend.bind(PASIDBinding(requesterID: host.device, domainID: DomainID(rawValue: 1), translation: .secondLevel))
    }

    @Test func theCallbackSinkSeesTheSameOperations() throws {
        var log: [String] = []
        let backend = ShadowBackend()
        try backend.attach(
            .bus(3),
            sink: CallbackShadowSink(
                map: { log.append("map \(String($0.iova, radix: 16))+\(String($0.length, radix: 16))"); return nil },
                unmap: { log.append("unmap \(String($0, radix: 16))+\(String($1, radix: 16))"); return nil }))
        try backend.apply(.map(ShadowMapping(iova: 0x2000, length: 0x3000, target: 0, permissions: .read)), for: .bus(3))
        try backend.apply(.unmap(iova: 0x3000, length: 0x1000), for: .bus(3))
        #expect(log == ["map 2000+3000", "unmap 2000+3000", "map 2000+1000", "map 4000+1000"])
    }
}

import Testing
@testable import VTdModel

/// Shadow events for an iommufd IOAS (`ShadowHost.wholeAreas`): UNMAPs per run of removed entries,
/// MAPs coalesced into blocks aligned in IOVA and output; a legacy container keeps one per leaf.
@Suite("Caching-mode shadowing: coalesced events for iommufd, per leaf for legacy containers")
struct ShadowCoalescingTests {
    static let base: UInt64 = 0x10_0000  // 1 MiB, 1 MiB aligned

    func iommufd() throws -> ShadowScenario {
        let s = try ShadowScenario()
        s.unit.setShadowHost(.wholeAreas, sourceID: testRequester)
        _ = s.take()
        return s
    }

    /// Unmaps every page of `first..<first + count` pages and invalidates `base` over 1 MiB.
    func unmapPages(_ s: ShadowScenario, _ pages: some Sequence<UInt64>) {
        for i in pages { s.unmap(iova: Self.base + i << 12) }
        s.invalidatePages(Self.base, mask: 8)
    }

    @Test("scattered guest pages: 256 MAPs, then one UNMAP for the whole 1 MiB run")
    func scatteredPages() throws {
        let s = try iommufd()
        // Every other guest page: nothing is contiguous in output.
        for i in UInt64(0)..<256 { s.device.map(iova: Self.base + i << 12, to: 0x8000_0000 + i << 13) }
        s.invalidatePages(Self.base, mask: 8)
        #expect(s.take() == (UInt64(0)..<256).map { map(Self.base + $0 << 12, 0x1000, to: 0x8000_0000 + $0 << 13) })
        #expect(s.record == s.tables)
        unmapPages(s, 0..<256)
        #expect(s.take() == [unmap(Self.base, 0x10_0000)])
        #expect(s.record.isEmpty)
    }

    @Test("contiguous guest pages: one MAP per block aligned in IOVA and output; one UNMAP")
    func contiguousPages() throws {
        let s = try iommufd()
        for i in UInt64(0)..<256 { s.device.map(iova: Self.base + i << 12, to: 0x4010_0000 + i << 12) }
        s.invalidatePages(Self.base, mask: 8)
        #expect(s.take() == [map(Self.base, 0x10_0000, to: 0x4010_0000)])
        unmapPages(s, 0..<256)
        #expect(s.take() == [unmap(Self.base, 0x10_0000)])

        // Output aligned to 256 KiB only: four blocks. A page with other permissions breaks a run.
        for i in UInt64(0)..<256 { s.device.map(iova: Self.base + i << 12, to: 0x4004_0000 + i << 12) }
        s.invalidatePages(Self.base, mask: 8)
        #expect(s.take() == (UInt64(0)..<4).map { map(Self.base + $0 << 18, 0x4_0000, to: 0x4004_0000 + $0 << 18) })
        unmapPages(s, 0..<256)
        _ = s.take()
        for i in UInt64(0)..<4 { s.device.map(iova: Self.base + i << 12, to: 0x5000_0000 + i << 12) }
        s.device.map(iova: Self.base + 4 << 12, to: 0x5000_4000, permissions: .read)
        s.invalidatePages(Self.base, mask: 8)
        #expect(s.take() == [map(Self.base, 0x4000, to: 0x5000_0000), map(Self.base + 0x4000, 0x1000, to: 0x5000_4000, .read)])
    }

    @Test("a partial unmap of a coalesced MAP unmaps it whole and maps the rest again (IOAS_UNMAP cannot split an area)")
    func partialUnmapOfCoalesced() throws {
        let s = try iommufd()
        for i in UInt64(0)..<256 { s.device.map(iova: Self.base + i << 12, to: 0x4010_0000 + i << 12) }
        s.invalidatePages(Self.base, mask: 8)
        _ = s.take()
        s.unmap(iova: Self.base + 0x5000)
        s.invalidatePages(Self.base + 0x5000)  // the guest invalidates the one page
        let rest: [(UInt64, UInt64)] = [(0, 0x4000), (0x4000, 0x1000), (0x6000, 0x2000), (0x8000, 0x8000),
                                        (0x1_0000, 0x1_0000), (0x2_0000, 0x2_0000), (0x4_0000, 0x4_0000),
                                        (0x8_0000, 0x8_0000)]
        #expect(s.take() == [unmap(Self.base, 0x10_0000)]
                    + rest.map { map(Self.base + $0.0, $0.1, to: 0x4010_0000 + $0.0) })
        #expect(s.record.map(\.size) == rest.map(\.1))
        // A later unmap of one of those blocks goes on working at block granularity.
        s.unmap(iova: Self.base + 0x4000)
        s.invalidatePages(Self.base + 0x4000)
        #expect(s.take() == [unmap(Self.base + 0x4000, 0x1000)])
    }

    @Test("pages still mapped between removed ones are never covered by an UNMAP")
    func holesStayMapped() throws {
        let s = try iommufd()
        for i in UInt64(0)..<16 { s.device.map(iova: Self.base + i << 12, to: 0x8000_0000 + i << 13) }
        s.invalidatePages(Self.base, mask: 8)
        _ = s.take()
        unmapPages(s, Array(0..<4) + Array(8..<12))  // 4...7 and 12...15 stay mapped
        #expect(s.take() == [unmap(Self.base, 0x4000), unmap(Self.base + 0x8000, 0x4000)])
        #expect(s.record == s.tables)
        #expect(s.record.count == 8)

        // A range in which nothing stays recorded may be covered whole, gaps included.
        unmapPages(s, Array(4..<8) + Array(12..<16))
        #expect(s.take() == [unmap(Self.base + 0x4000, 0x4000), unmap(Self.base + 0x8000, 0x8000)],
                "8...11 hold nothing recorded: one run over 4...15, as aligned blocks")
        for i in [UInt64(0), 1, 4, 5] { s.device.map(iova: Self.base + i << 12, to: 0x8000_0000 + i << 13) }
        s.invalidatePages(Self.base, mask: 8)
        _ = s.take()
        unmapPages(s, [0, 1, 4, 5])
        #expect(s.take() == [unmap(Self.base, 0x4000), unmap(Self.base + 0x4000, 0x2000)],
                "pages 2 and 3 were never mapped: one run over 0...5, as aligned blocks")
    }

    @Test("a legacy (type1) container keeps one MAP and one UNMAP per leaf")
    func legacyContainerPerLeaf() throws {
        let s = try ShadowScenario()
        s.unit.setShadowHost(.wholeAreas, sourceID: testRequester)
        s.unit.setShadowHost(.perLeaf, sourceID: testRequester)  // as HostDevices does for the flag
        _ = s.take()
        for i in UInt64(0)..<16 { s.device.map(iova: Self.base + i << 12, to: 0x4010_0000 + i << 12) }
        s.invalidatePages(Self.base, mask: 8)
        #expect(s.take() == (UInt64(0)..<16).map { map(Self.base + $0 << 12, 0x1000, to: 0x4010_0000 + $0 << 12) })
        unmapPages(s, 0..<16)
        #expect(s.take() == (UInt64(0)..<16).map { unmap(Self.base + $0 << 12, 0x1000) })
    }

    @Test("2 MiB leaves stay one MAP each and are not merged with neighbours; UNMAP runs cover them whole")
    func twoMiBPages() throws {
        let s = try iommufd()
        s.device.map(iova: 0x20_0000, to: 0x4020_0000, pageSize: .size2M)
        s.device.map(iova: 0x40_0000, to: 0x4040_0000, pageSize: .size2M)
        s.device.map(iova: 0x1F_F000, to: 0x401F_F000)
        s.unit.mmioWrite(offset: Reg.iotlbInvalidate, value: 1 << 63 | 2 << 60 | 3 << 32, width: 8)
        #expect(s.take() == [map(0x1F_F000, 0x1000, to: 0x401F_F000), map(0x20_0000, 0x20_0000, to: 0x4020_0000),
                             map(0x40_0000, 0x20_0000, to: 0x4040_0000)])
        s.unmap(iova: 0x20_0000, level: 2)
        s.unmap(iova: 0x40_0000, level: 2)
        s.unmap(iova: 0x1F_F000)
        s.unit.mmioWrite(offset: Reg.iotlbInvalidate, value: 1 << 63 | 2 << 60 | 3 << 32, width: 8)
        #expect(s.take() == [unmap(0x1F_F000, 0x1000), unmap(0x20_0000, 0x20_0000), unmap(0x40_0000, 0x20_0000)],
                "one run, as blocks aligned to their size (0x200000 is not 4 MiB aligned)")
        #expect(s.record.isEmpty)
    }
}

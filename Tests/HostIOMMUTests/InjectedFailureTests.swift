import Testing

@testable import HostIOMMU
import HostIOMMUTesting

/// Fails every ioctl of every step of a scenario, one at a time, and checks that the fake kernel and
/// the backend still agree (nothing mapped, attached or allocated that the backend does not know,
/// nothing it believes in that the kernel lacks), that retrying converges to the failure-free end
/// state, and that nothing is left behind.
@Suite struct InjectedFailureTests {
    typealias NestedStep = (name: String, run: (NestedHost) throws -> Void)

    static let pasid = PASID(rawValue: 4)

    static let nestedScenario: [NestedStep] = [
        ("adopt", { try $0.backend.adopt($0.devices[0]) }),
        ("enable DMA remapping", { try $0.backend.dmaRemappingChanged(enabled: true) }),
        ("bind first level", { try $0.backend.bind(NestedHost.firstLevel($0.devices[0], root: 0xA000)) }),
        ("rebind", { try $0.backend.bind(NestedHost.firstLevel($0.devices[0], root: 0xB000)) }),
        ("PASID bind", { try $0.backend.bind(NestedHost.firstLevel($0.devices[0], root: 0xC000, pasid: 4)) }),
        ("invalidate", { host in
            host.backend.enqueue(NestedHost.invalidation(page: 3))
            host.backend.enqueue(NestedHost.invalidation(pasid: 4, page: 5))
            if case .failed(let failure) = host.backend.endBatch().result { throw HostError(.ioctl(.hwptInvalidate, failure.errno), "\(failure)") }
        }),
        ("pass-through", { try $0.backend.bind(NestedHost.binding($0.devices[0], .passThrough)) }),
        ("disable DMA remapping", { try $0.backend.dmaRemappingChanged(enabled: false) }),
        ("enable again", { try $0.backend.dmaRemappingChanged(enabled: true) }),
        ("clear PASID", { try $0.backend.bind(NestedHost.binding($0.devices[0], .cleared, pasid: 4)) }),
        ("rebind first level", { try $0.backend.bind(NestedHost.firstLevel($0.devices[0], root: 0xD000)) }),
        ("release", { try $0.backend.release($0.devices[0].requesterID) }),
    ]

    static func freshNestedHost() throws -> NestedHost {
        let host = NestedHost()
        try host.assign()
        host.fake.clearCallLog()
        return host
    }

    /// How many ioctls each step takes when nothing fails.
    static func nestedCallCounts() throws -> [Int] {
        let host = try freshNestedHost()
        var counts: [Int] = []
        for step in nestedScenario {
            let before = host.fake.calls.count
            try step.run(host)
            counts.append(host.fake.calls.count - before)
        }
        return counts
    }

    @Test func everyNestedIoctlFailureLeavesKernelAndBackendInAgreement() throws {
        let counts = try Self.nestedCallCounts()
        #expect(counts == [3, 1, 2, 3, 2, 2, 2, 2, 2, 2, 2, 3])
        let points: [AttachPoint] = [.requestsWithoutPASID, .pasid(Self.pasid)]
        for (failing, count) in counts.enumerated() {
            for call in 0..<count {
                let host = try Self.freshNestedHost()
                for step in Self.nestedScenario[..<failing] { try step.run(host) }
                host.fake.failCall(at: host.fake.calls.count + call, with: .enomem)
                _ = try? Self.nestedScenario[failing].run(host)
                let where_ = "\(Self.nestedScenario[failing].name), call \(call)"
                host.expectAgreement(points: points)
                // Retrying from the failed step reaches the same end: the device back on VFIO's
                // HWPT and not one of our HWPTs left.
                do {
                    for step in Self.nestedScenario[failing...] { try step.run(host) }
                } catch {
                    Issue.record("retry after a failure in \(where_) failed: \(error)")
                }
                let device = host.devices[0]
                #expect(
                    host.fake.attachments(deviceFD: device.deviceFD) == [.requestsWithoutPASID: device.hwptID],
                    "\(where_)")
                #expect(host.fake.hwpts(iommufd: device.iommufd) == [device.hwptID], "\(where_)")
                #expect(host.backend.orphans.isEmpty, "\(where_)")
            }
        }
    }
}

// The model's HostBindingObserver, adapted to NestedBackend: PASID-entry changes become bindings,
// PASID-based IOTLB descriptors become queued host invalidations, and each barrier sends them and
// reports what the host could not do. Called by the model without its lock held; logs and traces
// go out after HostDevices' own lock is released (the host's callbacks may call back in).

import HostIOMMU
import VTdModel
import VTdSpec

extension HostDevices {
    public func translationSetupChanged(sourceID: RequesterID?, pasid: PASID?, descriptorIndex: Int?) {
        let sourceID = sourceID?.rawValue, pasid = pasid?.rawValue
        // Only a kernel refusal counts as "not carried out": an entry the guest was not offered
        // (second level, a first-level feature the host lacks) is detached by the backend, so the
        // host IOMMU blocks DMA through it.
        var refused = false
        let remapping = unit.dmaRemapping
        let enabled = remapping.enabled && remapping.scalable
        let remappingRefusal = state.withLock { s -> HostError? in
            guard let nested = s.nested, s.remapping != enabled else { return nil }
            s.remapping = enabled
            do throws(HostError) { try nested.dmaRemappingChanged(enabled: enabled) } catch { return error }
            return nil
        }
        if let remappingRefusal {
            refused = remappingRefusal.errno != nil
            reporter.log(.guestError, "host binding: DMA remapping \(enabled ? "on" : "off"): \(remappingRefusal)")
        }
        let sids = state.withLock { s in s.nested == nil ? [] : s.candidates.keys.sorted() }
        for sid in sids where sourceID == nil || sourceID == sid {
            if rebind(sourceID: sid, pasid: pasid) { refused = true }
        }
        // A register write (SRTP, TE), reset or load has no descriptor to stop at: the log line
        // stays the only report there (docs/HOST.md).
        guard refused, let descriptorIndex else { return }
        state.withLock { s in
            if s.failedDescriptor == nil { s.failedDescriptor = descriptorIndex }
        }
    }

    /// PASIDs looked for in a device's tables when a change names none (state load, global
    /// PASID-cache invalidation): more than a host device binds in practice.
    static let pasidScanLimit = 4096

    /// Re-reads the PASID entries of `sid` the change can concern and tells the backend. Returns
    /// whether the kernel refused one of the bindings.
    @discardableResult
    func rebind(sourceID sid: UInt16, pasid: UInt32?) -> Bool {
        var refused = false
        var pasids: [UInt32?] = [nil]
        if let pasid {
            pasids.append(pasid)
        } else {
            // What this process saw bound, and what the tables hold now: after a state load the
            // first is empty, and a global invalidation may announce entries never named before.
            var known = state.withLock { $0.boundPASIDs[sid] ?? [] }
            known.formUnion(unit.presentPASIDs(sourceID: RequesterID(rawValue: sid), limit: Self.pasidScanLimit).map(\.rawValue))
            pasids += known.sorted().map { Optional($0) }
        }
        for p in pasids {
            // Guest memory is read here, with no lock of ours held.
            let entry = unit.hostPASIDEntry(sourceID: RequesterID(rawValue: sid), pasid: p.map(PASID.init(rawValue:)))
            if p != nil && entry.pasid == entry.ridPASID && pasids.contains(nil) { continue }
            let binding = Self.binding(sid: sid, entry)
            let (told, failed) = state.withLock { s -> (Bool, HostError?) in
                if p != nil {
                    if case .cleared = binding.translation { s.boundPASIDs[sid]?.remove(entry.pasid.rawValue) } else {
                        s.boundPASIDs[sid, default: []].insert(entry.pasid.rawValue)
                    }
                }
                guard let nested = s.nested else { return (false, nil) }
                do throws(HostError) { _ = try nested.bind(binding) } catch { return (true, error) }
                return (true, nil)
            }
            guard told else { continue }
            if let failed {
                refused = refused || failed.errno != nil
                reporter.log(.guestError, "host binding \(binding): \(failed)")
            }
            reporter.trace(Self.traceRecord(binding, entry, failed))
        }
        return refused
    }

    /// The trace record of what the backend was just told.
    static func traceRecord(_ binding: PASIDBinding, _ entry: HostPASIDEntry, _ failed: HostError?) -> HostTraceRecord {
        let result = failed.map { $0.errno?.rawValue ?? -1 } ?? 0
        switch binding.translation {
        case .cleared:
            return .unbind(binding.requesterID, pasid: entry.pasid.rawValue, domainID: entry.domainID.rawValue, result: result)
        case .firstLevel(let table):
            return .bind(binding.requesterID, pasid: entry.pasid.rawValue, domainID: entry.domainID.rawValue, table: table.rootPointer,
                         result: result)
        default:
            return .bind(binding.requesterID, pasid: entry.pasid.rawValue, domainID: entry.domainID.rawValue, table: 0, result: result)
        }
    }

    static func binding(sid: UInt16, _ entry: HostPASIDEntry) -> PASIDBinding {
        let translation: PASIDBinding.Translation
        switch entry.translation {
        case let .firstLevel(pointer, fiveLevel, sre, wpe, eafe):
            var flags: FirstLevelFlags = []
            if sre { flags.insert(.supervisorRequests) }
            if wpe { flags.insert(.writeProtect) }
            if eafe { flags.insert(.extendedAccessed) }
            translation = .firstLevel(FirstLevelTable(rootPointer: pointer, addressWidth: fiveLevel ? .bits57 : .bits48,
                                                      flags: flags))
        case .passThrough: translation = .passThrough
        case .secondLevel, .nested: translation = .secondLevel
        case .blocked: translation = .cleared
        }
        return PASIDBinding(requesterID: RequesterID(rawValue: sid), pasid: entry.pasid, ridPASID: entry.ridPASID,
                            domainID: entry.domainID,
                            translation: translation)
    }

    public func pasidIOTLBInvalidated(_ invalidation: HostPASIDInvalidation) {
        let scope: PASIDInvalidation.Scope =
            invalidation.address.map { .addressMask(address: $0, am: invalidation.addressMask) } ?? .all
        let request = PASIDInvalidation(domainID: invalidation.domainID, pasid: invalidation.pasid, scope: scope,
                                        leafOnly: invalidation.leafOnly, tag: UInt64(invalidation.descriptorIndex))
        let forwarded = state.withLock { s -> Bool in
            guard let nested = s.nested else { return false }
            nested.enqueue(request)
            return true
        }
        guard forwarded else { return }
        reporter.trace(.invalidate(domainID: invalidation.domainID.rawValue, pasid: invalidation.pasid.rawValue,
                                   address: invalidation.address, addressMask: invalidation.addressMask))
    }

    public func invalidationBarrier(descriptorIndex: Int?) -> Int? {
        let (outcome, refusedSetup) = state.withLock { s in
            defer { s.failedDescriptor = nil }
            return (s.nested?.endBatch() ?? BatchOutcome(), s.failedDescriptor)
        }
        var failedInvalidation: Int?
        switch outcome.result {
        case .completed:
            break
        case .recovered(let failure):
            reporter.log(.info, "host invalidation refused, recovered by a full flush: \(failure)")
        case .failed(let failure):
            reporter.log(.guestError, "host invalidation failed: \(failure)")
            reporter.trace(.invalidationFailed)
            failedInvalidation = Int(clamping: failure.tag)
        }
        // Setup changes reach the host before the batch's invalidations (deliverToHost), so a
        // refused binding is the first thing of the batch that was not done.
        if let refusedSetup {
            reporter.log(.guestError, "host binding refused for descriptor \(refusedSetup): the invalidation "
                             + "queue stops there (IQE); DMA through the entry is blocked until a binding succeeds")
            return refusedSetup
        }
        return failedInvalidation
    }
}

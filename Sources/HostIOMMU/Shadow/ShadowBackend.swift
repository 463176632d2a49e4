/// Shadow second-level translation (caching mode): the model replays the guest's second-level tables
/// after every invalidation and reports what changed; this class makes the host IOAS match.
///
/// Per device it keeps the exact extents it mapped. A changed translation becomes unmap + map,
/// an unchanged one costs nothing, and because iommufd never splits a mapping (an unmap that cuts one
/// is ENOENT), a range that cuts a recorded mapping unmaps that whole mapping and re-maps the parts
/// that stay. Every step updates the records only after the host confirmed it, and a failed change is
/// rolled back, so the records always equal what the kernel holds.
///
/// Not thread-safe: called under the model's lock.
public final class ShadowBackend {
    final class Space {
        let sink: ShadowSink
        var records = MappingRecords()
        init(sink: ShadowSink) { self.sink = sink }
    }

    var spaces: [RequesterID: Space] = [:]

    public init() {}

    /// Host operations one change took.
    public struct Outcome: Equatable, Sendable {
        public var hostMaps = 0
        public var hostUnmaps = 0
        public init() {}
        public var hostOperations: Int { hostMaps + hostUnmaps }
    }

    /// Starts shadowing a device into `sink` (which starts empty).
    public func attach(_ requesterID: RequesterID, sink: ShadowSink) throws(HostError) {
        guard spaces[requesterID] == nil else {
            throw HostError(.invalidArgument, "\(requesterID) is already shadowed")
        }
        spaces[requesterID] = Space(sink: sink)
    }

    /// Stops shadowing a device, unmapping everything it mapped.
    public func detach(_ requesterID: RequesterID) throws(HostError) {
        try clear(requesterID)
        spaces[requesterID] = nil
    }

    /// Unmaps everything of a device (a global or context invalidation before a full replay).
    @discardableResult
    public func clear(_ requesterID: RequesterID) throws(HostError) -> Outcome {
        try apply(.unmap(iova: 0, length: 0), for: requesterID)
    }

    /// What the host holds for a device, in IOVA order.
    public func mappings(_ requesterID: RequesterID) -> [ShadowMapping] {
        spaces[requesterID]?.records.records.map(\.mapping) ?? []
    }

    /// Mappings kept only as records (read-only under the nest-parent erratum).
    public func skippedMappings(_ requesterID: RequesterID) -> [ShadowMapping] {
        spaces[requesterID]?.records.records.filter { !$0.onHost }.map(\.mapping) ?? []
    }

    /// A PASID entry changed. Shadowing follows second-level tables (and pass-through, which the model
    /// replays as identity maps); a first-level entry cannot be shadowed because the guest does not
    /// invalidate after first-level maps (VT-d 6.1, caching mode applies to second level only).
    public func bind(_ binding: PASIDBinding) throws(HostError) {
        if case .firstLevel = binding.translation {
            throw HostError(
                .unsupported,
                "\(binding): first-level tables cannot be shadowed (guest maps are not invalidated); FLTS must "
                    + "not be exposed while shadowing")
        }
    }

    /// Applies one change from the replay walk. `.unmap` with length 0 means "everything".
    @discardableResult
    public func apply(_ change: ShadowChange, for requesterID: RequesterID) throws(HostError) -> Outcome {
        guard let space = spaces[requesterID] else {
            throw HostError(.invalidArgument, "\(requesterID) is not shadowed")
        }
        switch change {
        case .map(let mapping):
            try validate(mapping, requesterID)
            if mapping.permissions.isEmpty {
                return try replace(space, mapping.iova, mapping.last, with: nil, requesterID)
            }
            return try replace(space, mapping.iova, mapping.last, with: mapping, requesterID)
        case .unmap(let iova, let length):
            if length == 0 { return try replace(space, 0, UInt64.max, with: nil, requesterID) }
            let (last, wrapped) = iova.addingReportingOverflow(length - 1)
            if wrapped { throw HostError(.invalidArgument, "\(requesterID): unmap range wraps") }
            return try replace(space, iova, last, with: nil, requesterID)
        }
    }

    func validate(_ mapping: ShadowMapping, _ requesterID: RequesterID) throws(HostError) {
        let misaligned = (mapping.iova | mapping.length | mapping.target) & 0xfff != 0
        if mapping.length == 0 || misaligned {
            throw HostError(.invalidArgument, "\(requesterID): shadow map \(mapping) is empty or not 4 KiB aligned")
        }
        if mapping.iova.addingReportingOverflow(mapping.length - 1).overflow
            || mapping.target.addingReportingOverflow(mapping.length - 1).overflow
        {
            throw HostError(.invalidArgument, "\(requesterID): shadow map \(mapping) wraps")
        }
    }

    private enum Step {
        case unmapped([MappingRecords.Record])
        case dropped(MappingRecords.Record)
        case mapped(MappingRecords.Record)
    }

    /// Makes [first, last] hold exactly `new` (or nothing), keeping what lies outside it.
    private func replace(
        _ space: Space, _ first: UInt64, _ last: UInt64, with new: ShadowMapping?, _ requesterID: RequesterID
    ) throws(HostError) -> Outcome {
        let range = space.records.overlapping(first, last)
        var outcome = Outcome()
        if range.isEmpty && new == nil { return outcome }
        if let new, range.count == 1, space.records[range.lowerBound].mapping == new { return outcome }

        let old = Array(space.records.records[range])
        var steps: [Step] = []
        do throws(HostError) {
            // Unmap whole recorded mappings, one host call per contiguous run.
            var runStart = 0
            while runStart < old.count {
                guard old[runStart].onHost else {
                    space.records.remove(old[runStart].mapping)
                    steps.append(.dropped(old[runStart]))
                    runStart += 1
                    continue
                }
                var runEnd = runStart + 1
                while runEnd < old.count && old[runEnd].onHost
                    && old[runEnd].mapping.iova == old[runEnd - 1].mapping.last &+ 1
                {
                    runEnd += 1
                }
                let run = Array(old[runStart..<runEnd])
                let span = run.last!.mapping.last - run.first!.mapping.iova + 1
                try space.sink.unmap(iova: run.first!.mapping.iova, length: span)
                outcome.hostUnmaps += 1
                for record in run { space.records.remove(record.mapping) }
                steps.append(.unmapped(run))
                runStart = runEnd
            }
            // Re-map what stays outside the range, then the new translation.
            var additions: [ShadowMapping] = []
            for record in old {
                let mapping = record.mapping
                if mapping.iova < first {
                    additions.append(
                        ShadowMapping(
                            iova: mapping.iova, length: first - mapping.iova, target: mapping.target,
                            permissions: mapping.permissions))
                }
                if mapping.last > last {
                    let offset = last - mapping.iova + 1
                    additions.append(
                        ShadowMapping(
                            iova: last + 1, length: mapping.length - offset, target: mapping.target + offset,
                            permissions: mapping.permissions))
                }
            }
            if let new { additions.append(new) }
            for mapping in additions {
                let onHost = try space.sink.map(mapping)
                if onHost { outcome.hostMaps += 1 }
                let record = MappingRecords.Record(mapping: mapping, onHost: onHost)
                space.records.insert(record)
                steps.append(.mapped(record))
            }
            return outcome
        } catch {
            let restored = rollBack(space, steps)
            throw HostError(
                error.kind,
                "\(requesterID): \(error.message); "
                    + (restored ? "previous mappings restored" : "rollback incomplete, records follow the host"))
        }
    }

    /// Undoes `steps` newest first. Each undo updates the records only if the host confirmed it.
    private func rollBack(_ space: Space, _ steps: [Step]) -> Bool {
        var complete = true
        for step in steps.reversed() {
            switch step {
            case .mapped(let record):
                if record.onHost {
                    do { try space.sink.unmap(iova: record.mapping.iova, length: record.mapping.length) } catch {
                        complete = false
                        continue
                    }
                }
                space.records.remove(record.mapping)
            case .dropped(let record):
                space.records.insert(record)
            case .unmapped(let run):
                for record in run {
                    do {
                        let onHost = try space.sink.map(record.mapping)
                        space.records.insert(MappingRecords.Record(mapping: record.mapping, onHost: onHost))
                    } catch {
                        complete = false
                    }
                }
            }
        }
        return complete
    }

    /// Lines for the state dump.
    public func describe() -> String {
        var lines = ["shadow backend: \(spaces.count) device(s)"]
        for requesterID in spaces.keys.sorted() {
            let records = spaces[requesterID]!.records
            let bytes = records.records.reduce(UInt64(0)) { $0 + $1.mapping.length }
            let skipped = records.records.filter { !$0.onHost }.count
            lines.append(
                "  \(requesterID): \(records.count) mapping(s), 0x\(String(bytes, radix: 16)) bytes"
                    + (skipped > 0 ? ", \(skipped) read-only skipped (erratum 772415)" : ""))
        }
        return lines.joined(separator: "\n")
    }
}

// What a host that shadows a device's second-level tables (caching mode, a MAP notifier: VFIO's
// legacy container) was told is mapped: one entry per MAP event sent, so every UNMAP names
// exactly a range that was mapped (VFIO type1 refuses to split a mapping). Kept in IOVA order,
// never overlapping, on an array that grows amortised and never beyond the configured limit.
//
// A re-sync replaces the entries over a range with the leaves a walk found there: an entry also
// found unchanged stays and sends nothing; a gone or changed one is unmapped; a new or changed
// leaf is mapped. Every UNMAP goes before every MAP, so a changed translation is UNMAP then MAP
// and a 2 MiB leaf replaced by 4 KiB leaves (or the reverse) never overlaps on the host.
// Cost: O(log n) to find the range, O(n) to move the tail when the count changes.

/// The (sid, pasid) records; an address space without one has nothing mapped on the host.
struct ShadowRecords {
    private var records: [UInt64: ShadowRecord] = [:]

    subscript(sourceID: UInt16, pasid: UInt32?) -> ShadowRecord {
        get { records[NotifierRegistry.key(sourceID, pasid)] ?? ShadowRecord() }
        set { records[NotifierRegistry.key(sourceID, pasid)] = newValue.mappings.isEmpty ? nil : newValue }
    }

    /// Forgets what (sid, pasid) has mapped (its MAP notifier went away: the host dropped it all).
    mutating func remove(sourceID: UInt16, pasid: UInt32?) {
        records[NotifierRegistry.key(sourceID, pasid)] = nil
    }

    mutating func removeAll() { records.removeAll() }
}

struct ShadowRecord: Equatable {
    /// Sorted by IOVA, non-overlapping.
    private(set) var mappings: [Mapping] = []

    /// The entries that reach into `first...last`.
    func overlapping(_ first: UInt64, _ last: UInt64) -> Range<Int> {
        // The first entry whose last byte is at or above `first`, then the first entry at or
        // beyond `last`: entries do not overlap, so their ends are in order too.
        let lower = partition { $0.iova &+ ($0.size &- 1) >= first }
        let upper = partition { $0.iova > last }
        return lower..<max(lower, upper)
    }

    /// `first...last` widened to whole recorded entries at its edges.
    func span(_ first: UInt64, _ last: UInt64) -> (first: UInt64, last: UInt64) {
        let r = overlapping(first, last)
        guard !r.isEmpty else { return (first, last) }
        return (min(first, mappings[r.lowerBound].iova),
                max(last, mappings[r.upperBound - 1].iova &+ (mappings[r.upperBound - 1].size &- 1)))
    }

    private func partition(_ isAbove: (Mapping) -> Bool) -> Int {
        var low = 0
        var high = mappings.count
        while low < high {
            let mid = (low + high) / 2
            if isAbove(mappings[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }

    /// Replaces what is recorded over `first...last` with `found` (the leaves a walk found there,
    /// in IOVA order, each reaching into the range), appending the events that tell the host.
    /// Maps nothing that would take the record beyond `limit`; returns how many MAPs it dropped.
    @discardableResult
    mutating func update(first: UInt64, last: UInt64, found: [Mapping], limit: Int,
                         sourceID: UInt16, pasid: UInt32?, events: inout [PlatformEvent]) -> Int {
        // Leaves found may reach past the range, and recorded entries under them must go too.
        var (low, high) = span(first, last)
        if let f = found.first, let l = found.last {
            (low, high) = span(min(low, f.iova), max(high, l.iova &+ (l.size &- 1)))
        }
        let old = overlapping(low, high)
        var replacement: [Mapping] = []
        replacement.reserveCapacity(found.count)
        var maps: [Mapping] = []
        var i = old.lowerBound
        var j = 0
        while i < old.upperBound || j < found.count {
            if i < old.upperBound && j < found.count && mappings[i] == found[j] {
                replacement.append(found[j])
                i += 1
                j += 1
            } else if j == found.count || (i < old.upperBound && mappings[i].iova <= found[j].iova) {
                let m = mappings[i]
                events.append(.unmap(sid: sourceID, pasid: pasid, address: m.iova, size: m.size))
                i += 1
            } else {
                maps.append(found[j])
                replacement.append(found[j])
                j += 1
            }
        }
        // Room for what is new: entries outside the range stay, unchanged ones stay.
        let room = limit - (mappings.count - old.count) - (replacement.count - maps.count)
        var dropped = 0
        if maps.count > room {
            dropped = maps.count - max(room, 0)
            let kept = Set(maps.prefix(max(room, 0)).map(\.iova))
            let new = Set(maps.map(\.iova))
            replacement.removeAll { new.contains($0.iova) && !kept.contains($0.iova) }
            maps.removeLast(dropped)
        }
        for m in maps {
            events.append(.map(sid: sourceID, pasid: pasid, address: m.iova, size: m.size, translated: m.output,
                               permissions: m.permissions))
        }
        mappings.replaceSubrange(old, with: replacement)
        return dropped
    }
}

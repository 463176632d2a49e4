// What a host that shadows a device's second-level tables (caching mode, a MAP notifier: QEMU's
// VFIO, on a legacy type1 container or on iommufd) was told is mapped: one entry per MAP event
// sent, so every UNMAP covers whole entries (neither host splits a mapping: type1 v2 refuses a
// range that bisects one, iommufd's IOAS_UNMAP returns -ENOENT, which QEMU takes as success).
// Kept in IOVA order, never overlapping, on an array that grows amortised and never beyond the
// configured limit.
//
// A re-sync replaces the entries over a range with the leaves a walk found there: an entry the
// leaves still tile with its translation stays and sends nothing; any other is unmapped whole;
// the leaves not under a kept entry are mapped. Every UNMAP goes before every MAP, so a changed
// translation is UNMAP then MAP, and a 2 MiB leaf replaced by 4 KiB leaves (or the reverse), or a
// coalesced entry partly unmapped (unmapped whole, the rest mapped again), never overlaps.
// Per device (`ShadowHost`): one event per leaf, or for an iommufd IOAS UNMAPs per run of removed
// entries and MAPs per run of leaves contiguous in IOVA and output, cut into aligned blocks.
// Cost: O(log n + k) to find the k entries of a range, O(n) to move the tail when the count changes.

/// How a device's host takes shadow events (docs/INVALIDATION.md, "Caching-mode shadowing").
public enum ShadowHost: Sendable, Equatable {
    /// One MAP and one UNMAP per leaf: a legacy VFIO (type1) container, or a device the unit was
    /// told nothing about.
    case perLeaf
    /// An iommufd IOAS: one UNMAP removes every whole area in its range, so removed entries go
    /// in runs; MAPs are coalesced into aligned blocks of up to 2 MiB.
    case wholeAreas
}

/// The (sid, pasid) records; an address space without one has nothing mapped on the host.
/// A few spaces shadow at once (one per assigned device), and every re-sync looks its record up:
/// a sorted array searched by halves, not a dictionary (hashing its key cost more than the rest
/// of a one-page re-sync's bookkeeping).
struct ShadowRecords {
    private var entries: [(key: UInt64, record: ShadowRecord)] = []
    /// Source-ids whose host is an iommufd IOAS; every other one is per leaf.
    private var wholeAreas: [RequesterID] = []

    func host(_ sourceID: RequesterID) -> ShadowHost { wholeAreas.contains(sourceID) ? .wholeAreas : .perLeaf }

    mutating func setHost(_ host: ShadowHost, sourceID: RequesterID) {
        wholeAreas.removeAll { $0 == sourceID }
        if host == .wholeAreas { wholeAreas.append(sourceID) }
    }

    /// Where `key` is, or would be inserted.
    private func position(_ key: UInt64) -> (index: Int, found: Bool) {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].key < key { low = mid + 1 } else { high = mid }
        }
        return (low, low < entries.count && entries[low].key == key)
    }

    subscript(sourceID: RequesterID, pasid: PASID?) -> ShadowRecord {
        let (index, found) = position(NotifierRegistry.key(sourceID, pasid))
        return found ? entries[index].record : ShadowRecord()
    }

    /// Changes the record of (sid, pasid) in place: a copy taken out and stored back would copy
    /// its whole array on every re-sync (the array still holds it while the copy changes).
    mutating func modify<R>(sourceID: RequesterID, pasid: PASID?, _ change: (inout ShadowRecord) -> R) -> R {
        let key = NotifierRegistry.key(sourceID, pasid)
        let (index, found) = position(key)
        if !found { entries.insert((key, ShadowRecord()), at: index) }
        let result = change(&entries[index].record)
        if entries[index].record.mappings.isEmpty { entries.remove(at: index) }
        return result
    }

    /// Forgets what (sid, pasid) has mapped (its MAP notifier went away: the host dropped it all).
    mutating func remove(sourceID: RequesterID, pasid: PASID?) {
        let (index, found) = position(NotifierRegistry.key(sourceID, pasid))
        if found { entries.remove(at: index) }
    }

    mutating func removeAll() { entries.removeAll() }
}

struct ShadowRecord: Equatable {
    /// Sorted by IOVA, non-overlapping.
    private(set) var mappings: [Mapping] = []

    /// The entries that reach into `first...last`.
    func overlapping(_ first: UInt64, _ last: UInt64) -> Range<Int> {
        mappings.withUnsafeBufferPointer { entries in
            // The first entry whose last byte is at or above `first` (entries do not overlap, so
            // their ends are in order too), then the entries from there that start by `last`:
            // a re-sync's range holds few, so they are counted rather than searched.
            var low = 0
            var high = entries.count
            while low < high {
                let mid = (low &+ high) >> 1
                let e = entries[mid]
                if e.iova &+ (e.size &- 1) >= first { high = mid } else { low = mid &+ 1 }
            }
            var upper = low
            while upper < entries.count && entries[upper].iova <= last { upper &+= 1 }
            return low..<upper
        }
    }

    /// `first...last` widened to whole recorded entries at its edges.
    func span(_ first: UInt64, _ last: UInt64) -> (first: UInt64, last: UInt64) {
        let r = overlapping(first, last)
        guard !r.isEmpty else { return (first, last) }
        return (min(first, mappings[r.lowerBound].iova),
                max(last, mappings[r.upperBound - 1].iova &+ (mappings[r.upperBound - 1].size &- 1)))
    }

    /// Replaces what is recorded over `first...last` with `found` (the leaves a walk found there,
    /// in IOVA order, each reaching into the range), appending the events that tell the host.
    /// `host` decides how events are cut (see `ShadowHost`). Maps nothing that would take the
    /// record beyond `limit`; returns how many MAPs it dropped.
    @discardableResult
    mutating func update<Events: ShadowEventSink>(first: UInt64, last: UInt64, found: UnsafeBufferPointer<Mapping>,
                                                  limit: Int, host: ShadowHost = .perLeaf, sourceID: RequesterID,
                                                  pasid: PASID?, events: inout Events) -> Int {
        // Leaves found may reach past the range, and recorded entries under them must go too
        // (widening a range to whole entries at its edges adds no other entry: none overlap).
        var (low, high) = (first, last)
        if let f = found.first, let l = found.last {
            (low, high) = (min(low, f.iova), max(high, l.iova &+ (l.size &- 1)))
        }
        let old = overlapping(low, high)

        // The common re-sync, a one-page map (Linux maps page by page, each with its own PSI):
        // nothing recorded there, one leaf found, which is its own MAP (a leaf is aligned to its
        // size, so coalescing leaves it whole). No flags, no MAP list to build.
        if old.isEmpty && found.count <= 1 {
            guard let leaf = found.first else { return 0 }
            guard mappings.count < limit else { return 1 }
            events.append(.map(sid: sourceID, pasid: pasid, address: leaf.iova, size: leaf.size,
                               translated: leaf.output, permissions: leaf.permissions))
            mappings.insert(leaf, at: old.lowerBound)
            return 0
        }

        // An entry stays when the leaves found tile it exactly with its translation and
        // permissions; the leaves under it are then accounted for.
        // (Nothing recorded in the range: no flags to allocate.)
        var kept = [Bool](repeating: false, count: old.count)
        var underKept = old.isEmpty ? [] : [Bool](repeating: false, count: found.count)
        func isUnderKept(_ u: Int) -> Bool { !underKept.isEmpty && underKept[u] }
        var j = 0
        for (k, i) in old.enumerated() {
            let e = mappings[i]
            let eLast = e.iova &+ (e.size &- 1)
            while j < found.count && found[j].iova &+ (found[j].size &- 1) < e.iova { j += 1 }
            var t = j
            var next = e.iova
            var tiled = false
            while t < found.count && found[t].iova <= eLast {
                let f = found[t]
                let fLast = f.iova &+ (f.size &- 1)
                guard f.iova == next, fLast <= eLast, f.permissions == e.permissions,
                      f.output == e.output &+ (f.iova &- e.iova) else { break }
                t += 1
                if fLast == eLast {
                    tiled = true
                    break
                }
                next = fLast &+ 1
            }
            guard tiled else { continue }
            kept[k] = true
            for u in j..<t { underKept[u] = true }
            j = t
        }

        // UNMAPs: per leaf, or per run of removed entries with no kept entry between them.
        var runStart: UInt64?
        var runLast: UInt64 = 0
        for (k, i) in old.enumerated() {
            let e = mappings[i]
            if kept[k] {
                if let start = runStart {
                    Self.appendChunks(start, runLast, sourceID: sourceID, pasid: pasid, events: &events)
                    runStart = nil
                }
                continue
            }
            switch host {
            case .perLeaf:
                events.append(.unmap(sid: sourceID, pasid: pasid, address: e.iova, size: e.size))
            case .wholeAreas:
                runStart = runStart ?? e.iova
                runLast = e.iova &+ (e.size &- 1)
            }
        }
        if let start = runStart {
            Self.appendChunks(start, runLast, sourceID: sourceID, pasid: pasid, events: &events)
        }

        // MAPs: the leaves not under a kept entry, per leaf or coalesced.
        var maps: [Mapping] = []
        var u = 0
        while u < found.count {
            if isUnderKept(u) {
                u += 1
                continue
            }
            guard host == .wholeAreas, found[u].size <= Self.coalescedLimit else {
                maps.append(found[u])
                u += 1
                continue
            }
            // A run of new leaves contiguous in IOVA and output with one set of permissions.
            var end = u + 1
            while end < found.count && !isUnderKept(end) {
                let p = found[end - 1]
                let f = found[end]
                guard f.size <= Self.coalescedLimit, f.iova == p.iova &+ p.size,
                      f.output == p.output &+ p.size, f.permissions == p.permissions else { break }
                end += 1
            }
            let l = found[end - 1]
            Self.appendCoalesced(found[u], last: l.iova &+ (l.size &- 1), into: &maps)
            u = end
        }

        // Room for what is new: entries outside the range stay, kept ones stay.
        let keptCount = kept.reduce(0) { $0 + ($1 ? 1 : 0) }
        let room = max(limit - (mappings.count - old.count) - keptCount, 0)
        var dropped = 0
        if maps.count > room {
            dropped = maps.count - room
            maps.removeLast(dropped)
        }
        for m in maps {
            events.append(.map(sid: sourceID, pasid: pasid, address: m.iova, size: m.size, translated: m.output,
                               permissions: m.permissions))
        }
        guard keptCount > 0 else {
            mappings.replaceSubrange(old, with: maps)
            return dropped
        }
        // Kept entries and new ones, merged in IOVA order.
        var replacement: [Mapping] = []
        replacement.reserveCapacity(keptCount + maps.count)
        var n = 0
        for (k, i) in old.enumerated() where kept[k] {
            while n < maps.count && maps[n].iova < mappings[i].iova {
                replacement.append(maps[n])
                n += 1
            }
            replacement.append(mappings[i])
        }
        replacement.append(contentsOf: maps[n...])
        mappings.replaceSubrange(old, with: replacement)
        return dropped
    }

    /// The largest coalesced MAP: a 2 MiB chunk is what a guest may already map as one leaf, so
    /// coalescing creates no host mapping larger than the tables could (QEMU's vfio_get_xlat_addr
    /// refuses a MAP whose target crosses a memory-region boundary; RAM regions are 2 MiB aligned).
    static let coalescedLimit: UInt64 = 1 << 21

    /// `first...last` as the fewest naturally aligned power-of-two UNMAP events. No event cuts
    /// a recorded entry: entries are aligned power-of-two blocks too, so each is inside one
    /// event or outside it.
    static func appendChunks<Events: ShadowEventSink>(_ first: UInt64, _ last: UInt64, sourceID: RequesterID,
                                                      pasid: PASID?, events: inout Events) {
        var start = first
        while true {
            let shift = chunkShift(start, nil, last)
            let size: UInt64 = 1 << UInt64(shift)
            events.append(.unmap(sid: sourceID, pasid: pasid, address: start, size: size))
            let chunkLast = start &+ (size &- 1)
            if chunkLast >= last { return }
            start = chunkLast &+ 1
        }
    }

    /// A run of leaves from `run` to `last` (contiguous in IOVA and output) as the fewest MAPs
    /// whose IOVA and output are both aligned to their size, none above `coalescedLimit`.
    static func appendCoalesced(_ run: Mapping, last: UInt64, into maps: inout [Mapping]) {
        var m = run
        while true {
            m.pageShift = min(chunkShift(m.iova, m.output, last), UInt8(coalescedLimit.trailingZeroBitCount))
            maps.append(m)
            let chunkLast = m.iova &+ (m.size &- 1)
            if chunkLast >= last { return }
            m.output &+= m.size
            m.iova = chunkLast &+ 1
        }
    }

    /// The shift of the largest power-of-two block at `start` that `start` (and `output`) are
    /// aligned to and that ends at or before `last`.
    private static func chunkShift(_ start: UInt64, _ output: UInt64?, _ last: UInt64) -> UInt8 {
        let alignment = start == 0 ? 64 : start.trailingZeroBitCount
        let outputAlignment = output.map { $0 == 0 ? 64 : $0.trailingZeroBitCount } ?? 64
        let span = last &- start  // bytes in the range, minus one
        let fits = span == .max ? 64 : 63 - (span &+ 1).leadingZeroBitCount
        return UInt8(min(alignment, outputAlignment, fits, 63))
    }
}

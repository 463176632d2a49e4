// IOTLB (VT-d spec 6.2.2, 6.5.2): cached leaf translations, tagged by domain, PASID,
// source-id and page size (4 KiB, 2 MiB, 1 GiB).
//
// HOT PATH. `lookup` runs on every translate hit: it must not allocate, touch a reference
// count, call an existential or loop over the table. It reads at most one set per page size
// (8 tags in one cache line) and skips page sizes the cache holds none of. Guarded by
// `make bench` ("translate IOTLB hit").
//
// Shape: set-associative, 8 ways a set. The set of an entry is a hash of its input page and
// page size only, not of its requester: page-selective invalidation names a domain and an
// address range, never a requester, so it can probe the few sets that can hold the range.
// The low bits of a tag carry a fingerprint of the requester so that entries of several
// devices at the same IOVA (Linux hands out IOVAs top-down in every domain) rarely need a
// second comparison.
//
// Validity: an entry records a stamp, global + domain + (domain, PASID) generation, when it
// is inserted. Global, domain-selective and PASID-selective invalidations bump one counter,
// so they are O(1); an entry whose stamp no longer adds up is dead and its way is free.
// The domain and (domain, PASID) counters are hashed into small tables: two domains sharing
// a counter only over-invalidate, which the spec allows.
//
// Eviction: CLOCK (second chance) within the set. The cache is never dropped for being full.

/// Marker for "request without PASID" in cache tags.
public let noPASID: UInt32 = .max

/// One cached translation, as inserted by the translate path and returned by a hit.
public struct IOTLBEntry: Equatable, Sendable {
    public var domainID: UInt16
    public var sourceID: UInt16
    /// PASID the request carried; `noPASID` for requests without PASID. Part of the lookup key.
    public var pasid: UInt32
    /// PASID that invalidations name for this translation: `pasid` for requests with PASID,
    /// RID_PASID for requests without PASID in scalable mode, `noPASID` in legacy mode.
    /// A PASID-based invalidation of PASID 0 must reach what requests without PASID cached.
    public var effectivePASID: UInt32
    /// Supervisor request (PASID TLP with PMR). Part of the lookup key: a user request never
    /// hits what a supervisor request cached.
    public var privileged: Bool
    /// Input address aligned to the page size.
    public var inputPage: UInt64
    /// Output address of the page.
    public var outputPage: UInt64
    /// 12, 21 or 30.
    public var pageShift: UInt8
    /// What a hit may grant without a walk. The translate path leaves out what needs a walk
    /// anyway (e.g. write when the first-level dirty bit is not yet set).
    public var permissions: Permissions

    public init(domainID: UInt16, sourceID: UInt16, pasid: UInt32, effectivePASID: UInt32? = nil,
                privileged: Bool = false, inputPage: UInt64, outputPage: UInt64, pageShift: UInt8,
                permissions: Permissions) {
        self.domainID = domainID
        self.sourceID = sourceID
        self.pasid = pasid
        self.effectivePASID = effectivePASID ?? pasid
        self.privileged = privileged
        self.inputPage = inputPage
        self.outputPage = outputPage
        self.pageShift = pageShift
        self.permissions = permissions
    }

    public var pageSize: UInt64 { 1 << UInt64(pageShift) }
}

/// The page sizes a translation can have, as the 2-bit code kept in a tag (0 = empty way).
enum IOTLBPageSize: UInt64, CaseIterable {
    case size4K = 1, size2M = 2, size1G = 3

    init?(shift: UInt8) {
        switch shift {
        case 12: self = .size4K
        case 21: self = .size2M
        case 30: self = .size1G
        default: return nil
        }
    }

    var shift: UInt64 {
        switch self {
        case .size4K: 12
        case .size2M: 21
        case .size1G: 30
        }
    }
}

/// Payload of one way; its tag lives in the set's tag line.
struct IOTLBSlot {
    var requester: UInt64
    var outputPage: UInt64
    var stamp: UInt32
    var effectivePASID: UInt32
    var domainID: UInt16
    var permissions: UInt8
}

/// Owns the IOTLB's raw storage: allocated once, freed once, never resized.
final class IOTLBStorage {
    let tags: UnsafeMutablePointer<UInt64>
    let slots: UnsafeMutablePointer<IOTLBSlot>
    /// Per set: bits 7:0 referenced mask, bits 10:8 clock hand.
    let clocks: UnsafeMutablePointer<UInt16>
    let domainGenerations: UnsafeMutablePointer<UInt32>
    let pasidGenerations: UnsafeMutablePointer<UInt32>
    let wayCount: Int
    let generationCount: Int

    init(sets: Int, ways: Int, generations: Int) {
        wayCount = sets * ways
        generationCount = generations
        let lines = UnsafeMutableRawPointer.allocate(byteCount: wayCount * MemoryLayout<UInt64>.stride, alignment: 64)
        tags = lines.bindMemory(to: UInt64.self, capacity: wayCount)
        tags.initialize(repeating: 0, count: wayCount)
        slots = .allocate(capacity: wayCount)
        slots.initialize(repeating: IOTLBSlot(requester: 0, outputPage: 0, stamp: 0, effectivePASID: 0,
                                              domainID: 0, permissions: 0), count: wayCount)
        clocks = .allocate(capacity: sets)
        clocks.initialize(repeating: 0, count: sets)
        domainGenerations = .allocate(capacity: generations)
        domainGenerations.initialize(repeating: 0, count: generations)
        pasidGenerations = .allocate(capacity: generations)
        pasidGenerations.initialize(repeating: 0, count: generations)
    }

    deinit {
        UnsafeMutableRawPointer(tags).deallocate()
        slots.deallocate()
        clocks.deallocate()
        domainGenerations.deallocate()
        pasidGenerations.deallocate()
    }
}

/// The IOTLB. A value lives in `UnitState` and is never copied: copies would share storage.
public struct IOTLB {
    public static let ways = 8
    /// Size of each generation table (domain, domain+PASID).
    static let generationSlots = 4096
    /// Page-selective invalidations probing more sets than this scan the table instead.
    static let probeLimit = 64
    /// Invalidation counters are 32-bit: after this many bumps everything is dropped and the
    /// counters restart, so a stamp can never come round to a dead entry's value again.
    static let bumpLimit: UInt32 = 1 << 30

    /// Entries the cache can hold: the configured size rounded down to whole sets of a power of two.
    public let capacity: Int
    private let sets: Int
    private let setShift: UInt64
    private let storage: IOTLBStorage
    // Raw pointers copied out of `storage`, so that reaching them costs no reference counting.
    private let tags: UnsafeMutablePointer<UInt64>
    private let slots: UnsafeMutablePointer<IOTLBSlot>
    private let clocks: UnsafeMutablePointer<UInt16>
    private let domainGenerations: UnsafeMutablePointer<UInt32>
    private let pasidGenerations: UnsafeMutablePointer<UInt32>
    private var globalGeneration: UInt32 = 0
    private var bumps: UInt32 = 0
    /// Ways holding a tag of each page size (dead ones included until reused): a size with
    /// none is not probed.
    private var waysOfSize: (UInt32, UInt32, UInt32) = (0, 0, 0)

    public init(capacity requested: Int) {
        var sets = 2
        while sets * 2 * Self.ways <= requested { sets *= 2 }
        self.sets = sets
        capacity = sets * Self.ways
        setShift = UInt64(64 - sets.trailingZeroBitCount)
        storage = IOTLBStorage(sets: sets, ways: Self.ways, generations: Self.generationSlots)
        tags = storage.tags
        slots = storage.slots
        clocks = storage.clocks
        domainGenerations = storage.domainGenerations
        pasidGenerations = storage.pasidGenerations
    }

    // MARK: Lookup (hot)

    /// The cached translation of `address` for the requester, or nil. Marks the hit as recently used.
    @inline(__always)
    public func lookup(sourceID: UInt16, pasid: UInt32, address: UInt64, privileged: Bool = false) -> IOTLBEntry? {
        let requester = Self.requesterKey(sourceID: sourceID, pasid: pasid, privileged: privileged)
        let print = Self.fingerprint(requester)
        if waysOfSize.0 != 0, let e = probe(.size4K, address, requester, print) { return e }
        if waysOfSize.1 != 0, let e = probe(.size2M, address, requester, print) { return e }
        if waysOfSize.2 != 0, let e = probe(.size1G, address, requester, print) { return e }
        return nil
    }

    @inline(__always)
    private func probe(_ size: IOTLBPageSize, _ address: UInt64, _ requester: UInt64, _ print: UInt64) -> IOTLBEntry? {
        let page = address &>> size.shift
        let tag = (page &<< size.shift) | print | size.rawValue
        let set = setIndex(page: page, size: size)
        let first = set &* Self.ways
        for way in 0..<Self.ways where tags[first &+ way] == tag {
            let slot = slots[first &+ way]
            guard slot.requester == requester, slot.stamp == stamp(slot.domainID, slot.effectivePASID) else { continue }
            let clock = clocks[set]
            let bit = UInt16(1) &<< UInt16(way)
            if clock & bit == 0 { clocks[set] = clock | bit }
            return IOTLBEntry(
                domainID: slot.domainID, sourceID: UInt16(truncatingIfNeeded: requester &>> 32),
                pasid: UInt32(truncatingIfNeeded: requester), effectivePASID: slot.effectivePASID,
                privileged: requester & Self.privilegedBit != 0, inputPage: page &<< size.shift,
                outputPage: slot.outputPage, pageShift: UInt8(size.shift),
                permissions: Permissions(rawValue: slot.permissions))
        }
        return nil
    }

    // MARK: Insert

    /// Caches a translation, replacing an entry with the same key, else taking a free or dead
    /// way, else evicting the set's least recently used way (second chance).
    public mutating func insert(_ entry: IOTLBEntry) {
        guard let size = IOTLBPageSize(shift: entry.pageShift) else { return }
        let requester = Self.requesterKey(sourceID: entry.sourceID, pasid: entry.pasid, privileged: entry.privileged)
        let page = entry.inputPage &>> size.shift
        let tag = (page &<< size.shift) | Self.fingerprint(requester) | size.rawValue
        let set = setIndex(page: page, size: size)
        let first = set * Self.ways
        var target = -1
        for way in 0..<Self.ways {
            let t = tags[first + way]
            if t == tag && slots[first + way].requester == requester { target = way; break }
            if target < 0 && (t == 0 || !isLive(first + way)) { target = way }
        }
        if target < 0 { target = evictionVictim(set: set) }
        let index = first + target
        forgetSize(of: tags[index])
        tags[index] = tag
        countSize(of: tag)
        slots[index] = IOTLBSlot(
            requester: requester, outputPage: entry.outputPage, stamp: stamp(entry.domainID, entry.effectivePASID),
            effectivePASID: entry.effectivePASID, domainID: entry.domainID, permissions: entry.permissions.rawValue)
        // Not referenced until it is hit again: a stream of one-off translations then evicts
        // its own kind first and leaves the entries in use alone.
        clocks[set] &= ~(UInt16(1) << UInt16(target))
    }

    /// Second chance: the hand skips (and clears) referenced ways and stops at the first that is not.
    /// Terminates within one lap plus one way: every way it passes loses its mark.
    private func evictionVictim(set: Int) -> Int {
        var clock = clocks[set]
        var hand = Int(clock >> 8) & (Self.ways - 1)
        while clock & (1 << UInt16(hand)) != 0 {
            clock &= ~(1 << UInt16(hand))
            hand = (hand + 1) & (Self.ways - 1)
        }
        let victim = hand
        hand = (hand + 1) & (Self.ways - 1)
        clocks[set] = (clock & 0xFF) | UInt16(hand) << 8
        return victim
    }

    // MARK: Invalidation

    public mutating func invalidate(_ scope: IOTLBInvalidationScope) {
        switch scope {
        case .global:
            if countBump() { globalGeneration &+= 1 }
        case .domain(let domain):
            if countBump() { domainGenerations[Self.domainSlot(domain)] &+= 1 }
        case .pasid(let domain, let pasid):
            if countBump() { pasidGenerations[Self.pasidSlot(domain, pasid)] &+= 1 }
        case .pages(let domain, let address, let mask, _):
            // IH only spares paging-structure caches; these are leaf entries.
            removePages(domain: domain, pasid: nil, address: address, addressMask: mask)
        case .pasidPages(let domain, let pasid, let address, let mask, _):
            removePages(domain: domain, pasid: pasid, address: address, addressMask: mask)
        }
    }

    /// Drops everything (reset, counter wrap).
    public mutating func removeAll() {
        tags.update(repeating: 0, count: capacity)
        clocks.update(repeating: 0, count: sets)
        domainGenerations.update(repeating: 0, count: Self.generationSlots)
        pasidGenerations.update(repeating: 0, count: Self.generationSlots)
        globalGeneration = 0
        bumps = 0
        waysOfSize = (0, 0, 0)
    }

    /// Counts one generation bump; false when the counters were restarted instead (which
    /// already invalidated everything).
    private mutating func countBump() -> Bool {
        bumps += 1
        if bumps < Self.bumpLimit { return true }
        removeAll()
        return false
    }

    /// Removes the entries of `domain` (and `pasid`, when given) that overlap the 2^addressMask
    /// 4 KiB pages at `address` (aligned down to that size, as the spec's address mask says).
    private mutating func removePages(domain: UInt16, pasid: UInt32?, address: UInt64, addressMask: UInt8) {
        let spanShift = UInt64(addressMask) + 12
        guard spanShift < 64 else {
            // Wider than any address: the whole domain (or PASID) goes.
            if let pasid { invalidate(.pasid(domain: domain, pasid: pasid)) } else { invalidate(.domain(domain)) }
            return
        }
        let start = address & ~((1 << spanShift) - 1)
        let last = start | ((1 << spanShift) - 1)
        // Count the sets to probe: per present page size, the pages of that size overlapping the range.
        var probes: UInt64 = 0
        for size in IOTLBPageSize.allCases where ways(of: size) != 0 {
            probes += (last >> size.shift) - (start >> size.shift) + 1
        }
        if probes > UInt64(Self.probeLimit) {
            for index in 0..<capacity where tags[index] != 0 {
                removeIfCovered(index, domain: domain, pasid: pasid, start: start, last: last)
            }
            return
        }
        for size in IOTLBPageSize.allCases where ways(of: size) != 0 {
            var page = start >> size.shift
            while page <= last >> size.shift {
                let first = setIndex(page: page, size: size) * Self.ways
                for way in 0..<Self.ways where tags[first + way] != 0 {
                    removeIfCovered(first + way, domain: domain, pasid: pasid, start: start, last: last)
                }
                page += 1
            }
        }
    }

    private mutating func removeIfCovered(_ index: Int, domain: UInt16, pasid: UInt32?, start: UInt64, last: UInt64) {
        let tag = tags[index]
        guard let size = IOTLBPageSize(rawValue: tag & 3) else { return }
        let pageStart = tag & ~((1 << size.shift) - 1)
        let pageLast = pageStart | ((1 << size.shift) - 1)
        let slot = slots[index]
        guard pageStart <= last, pageLast >= start, slot.domainID == domain else { return }
        if let pasid, slot.effectivePASID != pasid { return }
        forgetSize(of: tag)
        tags[index] = 0
    }

    // MARK: Keys, stamps, counters

    static let privilegedBit: UInt64 = 1 << 48

    @inline(__always)
    static func requesterKey(sourceID: UInt16, pasid: UInt32, privileged: Bool) -> UInt64 {
        (privileged ? privilegedBit : 0) | UInt64(sourceID) &<< 32 | UInt64(pasid)
    }

    /// 10 bits of the requester, placed at tag bits 11:2.
    @inline(__always)
    static func fingerprint(_ requester: UInt64) -> UInt64 {
        ((requester &* 0xD6E8_FEB8_6659_FD93) &>> 54) &<< 2
    }

    @inline(__always)
    private func setIndex(page: UInt64, size: IOTLBPageSize) -> Int {
        Int(truncatingIfNeeded: ((page ^ (size.rawValue &<< 62)) &* 0x9E37_79B9_7F4A_7C15) &>> setShift)
    }

    @inline(__always)
    static func domainSlot(_ domain: UInt16) -> Int { Int(domain) & (generationSlots - 1) }

    @inline(__always)
    static func pasidSlot(_ domain: UInt16, _ pasid: UInt32) -> Int {
        Int(truncatingIfNeeded: ((UInt64(pasid) &<< 16 | UInt64(domain)) &* 0x9E37_79B9_7F4A_7C15) &>> 52)
    }

    @inline(__always)
    private func stamp(_ domain: UInt16, _ pasid: UInt32) -> UInt32 {
        globalGeneration &+ domainGenerations[Self.domainSlot(domain)] &+ pasidGenerations[Self.pasidSlot(domain, pasid)]
    }

    private func isLive(_ index: Int) -> Bool {
        let slot = slots[index]
        return tags[index] != 0 && slot.stamp == stamp(slot.domainID, slot.effectivePASID)
    }

    private func ways(of size: IOTLBPageSize) -> UInt32 {
        switch size {
        case .size4K: waysOfSize.0
        case .size2M: waysOfSize.1
        case .size1G: waysOfSize.2
        }
    }

    private mutating func countSize(of tag: UInt64) {
        switch IOTLBPageSize(rawValue: tag & 3) {
        case .size4K: waysOfSize.0 += 1
        case .size2M: waysOfSize.1 += 1
        case .size1G: waysOfSize.2 += 1
        case nil: break
        }
    }

    private mutating func forgetSize(of tag: UInt64) {
        switch IOTLBPageSize(rawValue: tag & 3) {
        case .size4K: waysOfSize.0 -= 1
        case .size2M: waysOfSize.1 -= 1
        case .size1G: waysOfSize.2 -= 1
        case nil: break
        }
    }

    // MARK: Inspection (tests, state dumps)

    /// Live entries. O(capacity): not for hot paths.
    public var count: Int {
        (0..<capacity).reduce(0) { $0 + (isLive($1) ? 1 : 0) }
    }

    /// Live entries as values. O(capacity): not for hot paths.
    public var entries: [IOTLBEntry] {
        (0..<capacity).compactMap { index -> IOTLBEntry? in
            guard isLive(index), let size = IOTLBPageSize(rawValue: tags[index] & 3) else { return nil }
            let slot = slots[index]
            return IOTLBEntry(
                domainID: slot.domainID, sourceID: UInt16(truncatingIfNeeded: slot.requester >> 32),
                pasid: UInt32(truncatingIfNeeded: slot.requester), effectivePASID: slot.effectivePASID,
                privileged: slot.requester & Self.privilegedBit != 0,
                inputPage: tags[index] & ~((1 << size.shift) - 1), outputPage: slot.outputPage,
                pageShift: UInt8(size.shift), permissions: Permissions(rawValue: slot.permissions))
        }
    }
}

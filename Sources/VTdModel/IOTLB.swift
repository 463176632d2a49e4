// IOTLB (VT-d spec 6.2.2, 6.5.2): cached leaf translations, tagged by domain, PASID,
// source-id and page size (4 KiB, 2 MiB, 1 GiB).
//
// HOT PATH. `IOTLBReader.lookup` runs on every translate hit WITHOUT the unit's lock: it must
// not allocate, touch a reference count, call an existential, perform an atomic
// read-modify-write (except once to mark an entry used), or loop over the table. It reads at
// most one set per page size (8 tags in one cache line) and skips page sizes the cache holds
// none of. Guarded by `make bench` ("translate, IOTLB hit").
//
// Shape: set-associative, 8 ways a set. The set of an entry is a hash of its input page and
// page size only, not of its requester: page-selective invalidation names a domain and an
// address range, never a requester, so it can probe the few sets that can hold the range.
// The low bits of a tag carry a fingerprint of the requester so that entries of several
// devices at the same IOVA (Linux hands out IOVAs top-down in every domain) rarely need a
// second comparison.
//
// Validity: an entry records a stamp, global + domain + (domain, PASID) generation, when it
// is inserted; a nested entry adds its domain's nested generation. Global, domain-selective and
// PASID-selective invalidations bump one counter, so they are O(1); an entry whose stamp no
// longer adds up is dead and its way is free.
//
// Nested entries (PGTT 011) are tagged by their first-stage input page only, but also depend on
// every second-stage page the walk went through. A second-stage invalidation names guest-physical
// pages, so a page-selective IOTLB invalidation of a domain bumps that domain's nested generation
// (once the IOTLB has held a nested entry):
// every nested translation of the domain goes (Linux relies on it, nested.c: "There is no easy way
// to identify the exact set of nested translations affected by a change in S2").
// The domain and (domain, PASID) counters are hashed into small tables: two domains sharing
// a counter only over-invalidate, which the spec allows.
//
// Eviction: CLOCK (second chance) within the set. The cache is never dropped for being full.
//
// Concurrency: every change happens under the unit's lock (one writer). Readers without the
// lock see each set through a sequence counter (odd while the set is being written; a reader
// that saw it change retries under the lock), and every word is an atomic, so a reader never
// uses a torn entry. An invalidation is complete when its writer returns: a lookup that starts
// afterwards sees the bumped counters or the cleared tags.

import Synchronization

/// How packed keys (the IOTLB's below, the notifier registry's) store "no PASID": all ones (a
/// PASID has 20 bits). Only such storage uses it; everything else says `PASID?`.
let noPASID: UInt32 = .max

extension Optional where Wrapped == PASID {
    /// The PASID word of a packed key.
    @inline(__always) var storageWord: UInt32 { self?.rawValue ?? noPASID }
    @inline(__always) init(storageWord word: UInt32) { self = word == noPASID ? nil : PASID(rawValue: word) }
}

/// One cached translation, as inserted by the translate path and returned by a hit.
public struct IOTLBEntry: Equatable, Sendable {
    public var domainID: DomainID
    public var sourceID: RequesterID
    /// PASID the request carried; nil for requests without PASID. Part of the lookup key.
    public var pasid: PASID?
    /// PASID that invalidations name for this translation: `pasid` for requests with PASID,
    /// RID_PASID for requests without PASID in scalable mode, nil in legacy mode.
    /// A PASID-based invalidation of PASID 0 must reach what requests without PASID cached.
    public var effectivePASID: PASID?
    /// Supervisor request (PASID TLP with PMR). Part of the lookup key: a user request never
    /// hits what a supervisor request cached.
    public var privileged: Bool
    /// Input address aligned to the page size.
    public var inputPage: UInt64
    /// Output address of the page.
    public var outputPage: UInt64
    /// Walked through a second stage (PGTT 011): any second-stage invalidation of the domain ends it.
    public var nested: Bool
    /// 12, 21 or 30.
    public var pageShift: UInt8
    /// What a hit may grant without a walk. The translate path leaves out what needs a walk
    /// anyway (e.g. write when the first-level dirty bit is not yet set).
    public var permissions: Permissions

    public init(domainID: DomainID, sourceID: RequesterID, pasid: PASID?, effectivePASID: PASID?,
                privileged: Bool = false, inputPage: UInt64, outputPage: UInt64, pageShift: UInt8,
                permissions: Permissions, nested: Bool = false) {
        self.domainID = domainID
        self.sourceID = sourceID
        self.pasid = pasid
        self.effectivePASID = effectivePASID
        self.privileged = privileged
        self.inputPage = inputPage
        self.outputPage = outputPage
        self.pageShift = pageShift
        self.permissions = permissions
        self.nested = nested
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

/// The IOTLB's storage: allocated once, freed once, never resized; shared by the writer (the
/// `IOTLB` value under the unit's lock) and lock-free readers (`IOTLBReader`).
final class IOTLBStorage: @unchecked Sendable {
    static let ways = 8
    /// Size of each generation table (domain, domain+PASID).
    static let generationSlots = 4096
    /// Words of payload per way: requester key; output page | `Hit` bits (what a lock-free hit
    /// returns as it is); stamp << 32 | effective PASID; PASID slot << 40 | nested << 32 |
    /// domain << 8 | permissions.
    static let slotWords = 4

    // Declaration order is memory order: what a page-selective invalidation and an insert read
    // (besides the set's own lines) comes first, so that they find it in one cache line.
    let setShift: UInt64
    let tags: UnsafeMutablePointer<Atomic<UInt64>>
    let slots: UnsafeMutablePointer<Atomic<UInt64>>
    /// Two words per set, side by side so that a hit finds both on one cache line:
    /// `[2 set]` the sequence, odd while the writer changes the set; `[2 set + 1]` the clock,
    /// bits 7:0 referenced mask, bits 10:8 hand. Use `sequence(of:)` and `clock(of:)`.
    let setWords: UnsafeMutablePointer<Atomic<UInt32>>
    /// Ways holding a tag of each page size (dead ones included until reused): a size with
    /// none is not probed.
    let ways4K = Atomic<UInt32>(0), ways2M = Atomic<UInt32>(0), ways1G = Atomic<UInt32>(0)
    /// A nested entry was inserted since the last `removeAll` (writer only). Without one, a
    /// page-selective invalidation has no nested generation to bump: its cold line is not read.
    var holdsNested = false
    /// Generation bumps since the counters last restarted (writer only, under the unit's lock).
    var bumps: UInt32 = 0
    let globalGeneration = Atomic<UInt32>(0)
    /// Lock-free lookups are allowed (translation is enabled); cleared, they all go to the lock.
    let concurrentLookups = Atomic<Bool>(false)
    let domainGenerations: UnsafeMutablePointer<Atomic<UInt32>>
    let pasidGenerations: UnsafeMutablePointer<Atomic<UInt32>>
    /// Per domain slot: bumped by second-stage (page-selective IOTLB) invalidations; only nested
    /// entries count it.
    let nestedGenerations: UnsafeMutablePointer<Atomic<UInt32>>
    /// Per set (writer only): `bumps + 1` when the writer last found every way of the set live.
    /// No generation has moved since, so no way can have died: a full set is not searched for
    /// dead ways again (page-selective invalidation clears tags, which leaves empty ways instead).
    let allLiveAt: UnsafeMutablePointer<UInt32>
    /// Hits answered without the lock, for the state dump. On a cache line of its own (every
    /// hit writes it) and counted with a plain load and store: concurrent hits may lose a count,
    /// a statistic can afford that, the hit path cannot afford a locked add.
    let lockFreeHits: UnsafeMutablePointer<Atomic<UInt64>>
    let sets: Int
    var capacity: Int { sets * Self.ways }

    init(sets: Int) {
        self.sets = sets
        setShift = UInt64(64 - sets.trailingZeroBitCount)
        let wayCount = sets * Self.ways
        func atomics<T: AtomicRepresentable>(_ count: Int, _ zero: T, alignment: Int = 64) -> UnsafeMutablePointer<Atomic<T>> {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Atomic<T>>.stride, alignment: alignment)
            let p = raw.bindMemory(to: Atomic<T>.self, capacity: count)
            for i in 0..<count { (p + i).initialize(to: Atomic(zero)) }
            return p
        }
        tags = atomics(wayCount, UInt64(0))
        slots = atomics(wayCount * Self.slotWords, UInt64(0))
        setWords = atomics(2 * sets, UInt32(0))
        domainGenerations = atomics(Self.generationSlots, UInt32(0))
        pasidGenerations = atomics(Self.generationSlots, UInt32(0))
        nestedGenerations = atomics(Self.generationSlots, UInt32(0))
        lockFreeHits = atomics(8, UInt64(0))
        allLiveAt = .allocate(capacity: sets)
        allLiveAt.initialize(repeating: 0, count: sets)
    }

    deinit {
        // Atomics of integers are trivially destroyed: freeing the memory is enough.
        UnsafeMutableRawPointer(tags).deallocate()
        UnsafeMutableRawPointer(slots).deallocate()
        UnsafeMutableRawPointer(setWords).deallocate()
        UnsafeMutableRawPointer(domainGenerations).deallocate()
        UnsafeMutableRawPointer(pasidGenerations).deallocate()
        UnsafeMutableRawPointer(nestedGenerations).deallocate()
        UnsafeMutableRawPointer(lockFreeHits).deallocate()
        allLiveAt.deallocate()
    }

    // MARK: Keys, hashes, stamps (shared by writer and readers)

    static let privilegedBit: UInt64 = 1 << 48
    /// In the fourth payload word: the entry is a nested translation.
    static let nestedBit: UInt64 = 1 << 32
    /// In the fourth payload word, 12 bits from here: the entry's `pasidSlot`, kept so that a
    /// lookup checks the stamp without hashing.
    static let pasidSlotShift: UInt64 = 40

    @inline(__always)
    static func requesterKey(sourceID: RequesterID, pasid: PASID?, privileged: Bool) -> UInt64 {
        (privileged ? privilegedBit : 0) | UInt64(sourceID.rawValue) &<< 32 | UInt64(pasid.storageWord)
    }

    /// 10 bits of the requester, placed at tag bits 11:2.
    @inline(__always)
    func sequence(of set: Int) -> UnsafeMutablePointer<Atomic<UInt32>> { setWords + (set &<< 1) }

    @inline(__always)
    func clock(of set: Int) -> UnsafeMutablePointer<Atomic<UInt32>> { setWords + (set &<< 1 | 1) }

    @inline(__always)
    static func fingerprint(_ requester: UInt64) -> UInt64 {
        ((requester &* 0xD6E8_FEB8_6659_FD93) &>> 54) &<< 2
    }

    @inline(__always)
    func setIndex(page: UInt64, size: IOTLBPageSize) -> Int {
        Int(truncatingIfNeeded: ((page ^ (size.rawValue &<< 62)) &* 0x9E37_79B9_7F4A_7C15) &>> setShift)
    }

    @inline(__always)
    static func domainSlot(_ domain: DomainID) -> Int { Int(domain.rawValue) & (generationSlots - 1) }

    @inline(__always)
    static func pasidSlot(_ domain: DomainID, _ pasid: PASID?) -> Int {
        Int(truncatingIfNeeded: ((UInt64(pasid.storageWord) &<< 16 | UInt64(domain.rawValue)) &* 0x9E37_79B9_7F4A_7C15) &>> 52)
    }

    @inline(__always)
    func stamp(_ domain: DomainID, _ pasid: PASID?, nested: Bool) -> UInt32 {
        stamp(domainSlot: Self.domainSlot(domain), pasidSlot: Self.pasidSlot(domain, pasid), nested: nested)
    }

    @inline(__always)
    func stamp(domainSlot: Int, pasidSlot: Int, nested: Bool) -> UInt32 {
        let common = globalGeneration.load(ordering: .relaxed)
            &+ domainGenerations[domainSlot].load(ordering: .relaxed)
            &+ pasidGenerations[pasidSlot].load(ordering: .relaxed)
        guard nested else { return common }
        return common &+ nestedGenerations[domainSlot].load(ordering: .relaxed)
    }

    /// The stamp an entry must carry to be live, from its fourth payload word (which holds the
    /// domain and the entry's PASID slot).
    @inline(__always)
    func stamp(fourth: UInt64) -> UInt32 {
        stamp(domainSlot: Int(truncatingIfNeeded: fourth &>> 8) & (Self.generationSlots - 1),
              pasidSlot: Int(truncatingIfNeeded: fourth &>> Self.pasidSlotShift) & (Self.generationSlots - 1),
              nested: fourth & Self.nestedBit != 0)
    }

    /// Calls `body` with each page size some way holds a tag of, smallest first. Not a loop over
    /// `allCases`: that array is one more cold line for every page-selective invalidation.
    @inline(__always)
    func forEachPresentSize(_ body: (IOTLBPageSize) -> Void) {
        if ways4K.load(ordering: .relaxed) != 0 { body(.size4K) }
        if ways2M.load(ordering: .relaxed) != 0 { body(.size2M) }
        if ways1G.load(ordering: .relaxed) != 0 { body(.size1G) }
    }

    @inline(__always)
    func waysOf(_ size: IOTLBPageSize) -> UInt32 {
        switch size {
        case .size4K: ways4K.load(ordering: .relaxed)
        case .size2M: ways2M.load(ordering: .relaxed)
        case .size1G: ways1G.load(ordering: .relaxed)
        }
    }

    /// Marks a way as recently used; an atomic update only when it was not marked already.
    @inline(__always)
    func markReferenced(set: Int, way: Int) {
        let bit = UInt32(1) &<< UInt32(way)
        let clock = clock(of: set)
        if clock.pointee.load(ordering: .relaxed) & bit == 0 {
            clock.pointee.bitwiseOr(bit, ordering: .relaxed)
        }
    }

    @inline(__always)
    func entry(tag: UInt64, index: Int, size: IOTLBPageSize) -> IOTLBEntry {
        let words = slots + index &* Self.slotWords
        return Self.entry(tag: tag, size: size, requester: words[0].load(ordering: .relaxed),
                          outputPage: words[1].load(ordering: .relaxed), third: words[2].load(ordering: .relaxed),
                          fourth: words[3].load(ordering: .relaxed))
    }

    @inline(__always)
    static func entry(tag: UInt64, size: IOTLBPageSize, requester: UInt64, outputPage: UInt64, third: UInt64,
                      fourth: UInt64) -> IOTLBEntry {
        IOTLBEntry(
            domainID: DomainID(rawValue: UInt16(truncatingIfNeeded: fourth &>> 8)),
            sourceID: RequesterID(rawValue: UInt16(truncatingIfNeeded: requester &>> 32)),
            pasid: PASID?(storageWord: UInt32(truncatingIfNeeded: requester)),
            effectivePASID: PASID?(storageWord: UInt32(truncatingIfNeeded: third)),
            privileged: requester & privilegedBit != 0, inputPage: tag & ~((1 &<< size.shift) &- 1),
            outputPage: outputPage & ~0xFFF, pageShift: UInt8(truncatingIfNeeded: size.shift),
            permissions: Permissions(rawValue: UInt8(truncatingIfNeeded: fourth)), nested: fourth & nestedBit != 0)
    }
}

/// Lookups without the unit's lock, for the translate hit path.
public struct IOTLBReader: @unchecked Sendable {
    let storage: IOTLBStorage

    /// A hit in one word, stored so in the entry: output page | overlaps the interrupt range << 5
    /// | size code << 3 | permissions. The page is aligned to at least 4 KiB, so bits 11:6 are
    /// free; the size code (1-3) is never 0 in a hit.
    public struct Hit: Equatable, Sendable {
        public let word: UInt64
        static let interruptRangeBit: UInt64 = 1 << 5

        @inline(__always)
        init(word: UInt64) { self.word = word }

        init(_ entry: IOTLBEntry, size: IOTLBPageSize) {
            let overlaps = TranslationEngine.overlapsInterruptRange(page: entry.outputPage, shift: entry.pageShift)
            word = entry.outputPage | (overlaps ? Self.interruptRangeBit : 0) | size.rawValue << 3
                | UInt64(entry.permissions.rawValue & 7)
        }

        @inline(__always) public var outputPage: UInt64 { word & ~0xFFF }
        /// 12, 21 or 30.
        @inline(__always) public var pageShift: UInt64 { 3 &+ 9 &* ((word &>> 3) & 3) }
        @inline(__always) public var permissions: Permissions { Permissions(rawValue: UInt8(truncatingIfNeeded: word & 7)) }
        /// The page reaches into the interrupt range (a request without PASID may not use it).
        @inline(__always) public var overlapsInterruptRange: Bool { word & Self.interruptRangeBit != 0 }
    }

    /// The cached translation of `address`, or nil: nil also when a writer was busy with the
    /// set or lock-free lookups are off, and the caller then asks under the lock.
    @inline(__always)
    public func lookup(sourceID: RequesterID, pasid: PASID?, address: UInt64, privileged: Bool = false) -> Hit? {
        storage.lookupUnlocked(IOTLBStorage.requesterKey(sourceID: sourceID, pasid: pasid, privileged: privileged),
                               address)
    }
}

extension IOTLBStorage {
    /// `probe`'s answers besides a hit word: no live entry in the set, or a writer in it.
    static let missed: UInt64 = 0
    static let busy: UInt64 = 1

    /// The lock-free lookup. 4 KiB pages (what DMA API mappings are) inline, large ones out of line.
    @inline(__always)
    func lookupUnlocked(_ requester: UInt64, _ address: UInt64) -> IOTLBReader.Hit? {
        guard concurrentLookups.load(ordering: .acquiring) else { return nil }
        if ways4K.load(ordering: .relaxed) != 0 {
            let word = probeUnlocked(.size4K, address, requester)
            if word != Self.missed { return word == Self.busy ? nil : IOTLBReader.Hit(word: word) }
        }
        return lookupLargeUnlocked(requester, address)
    }

    @inline(never)
    func lookupLargeUnlocked(_ requester: UInt64, _ address: UInt64) -> IOTLBReader.Hit? {
        // Unrolled: iterating `allCases` would retain and release an array on every lookup.
        if ways2M.load(ordering: .relaxed) != 0 {
            let word = probeUnlocked(.size2M, address, requester)
            if word != Self.missed { return word == Self.busy ? nil : IOTLBReader.Hit(word: word) }
        }
        if ways1G.load(ordering: .relaxed) != 0 {
            let word = probeUnlocked(.size1G, address, requester)
            if word != Self.missed { return word == Self.busy ? nil : IOTLBReader.Hit(word: word) }
        }
        return nil
    }

    /// One set: a hit word, `missed` or `busy`.
    @inline(__always)
    private func probeUnlocked(_ size: IOTLBPageSize, _ address: UInt64, _ requester: UInt64) -> UInt64 {
        let page = address &>> size.shift
        let tag = (page &<< size.shift) | Self.fingerprint(requester) | size.rawValue
        let set = setIndex(page: page, size: size)
        let sequence = sequence(of: set).pointee.load(ordering: .acquiring)
        guard sequence & 1 == 0 else { return Self.busy }
        let first = set &* Self.ways
        for way in 0..<Self.ways where tags[first &+ way].load(ordering: .relaxed) == tag {
            let words = slots + (first &+ way) &* Self.slotWords
            let candidate = words[0].load(ordering: .relaxed)
            let outputPage = words[1].load(ordering: .relaxed)  // with the Hit bits
            let third = words[2].load(ordering: .relaxed)
            let fourth = words[3].load(ordering: .relaxed)
            // Everything read so far belongs to one version of the set, or it is not used.
            atomicMemoryFence(ordering: .acquiring)
            guard self.sequence(of: set).pointee.load(ordering: .relaxed) == sequence else { return Self.busy }
            guard candidate == requester, UInt32(truncatingIfNeeded: third &>> 32) == stamp(fourth: fourth) else {
                continue
            }
            markReferenced(set: set, way: way)
            lockFreeHits[0].store(lockFreeHits[0].load(ordering: .relaxed) &+ 1, ordering: .relaxed)
            return outputPage
        }
        return Self.missed
    }
}

/// The IOTLB as the unit's state holds it: the single writer, used under the unit's lock.
/// All its state is in the storage it shares with `IOTLBReader`, so `UnitState` holds it as a
/// `let`: the storage readers see can never be swapped for another.
public struct IOTLB: Sendable {
    public static let ways = IOTLBStorage.ways
    /// Page-selective invalidations probing more sets than this scan the table instead.
    static let probeLimit = 64
    /// Invalidation counters are 32-bit: after this many bumps everything is dropped and the
    /// counters restart, so a stamp can never come round to a dead entry's value again.
    static let bumpLimit: UInt32 = 1 << 30

    /// Entries the cache can hold: the configured size rounded down to whole sets of a power of two.
    public let capacity: Int
    private let storage: IOTLBStorage

    public init(capacity requested: Int) {
        var sets = 2
        while sets * 2 * Self.ways <= requested { sets *= 2 }
        storage = IOTLBStorage(sets: sets)
        capacity = storage.capacity
    }

    /// Lookups for threads that do not hold the unit's lock.
    public var reader: IOTLBReader { IOTLBReader(storage: storage) }

    /// Hits answered by `IOTLBReader` (approximate under concurrent hits).
    public var lockFreeHits: UInt64 {
        get { storage.lockFreeHits[0].load(ordering: .relaxed) }
        nonmutating set { storage.lockFreeHits[0].store(newValue, ordering: .relaxed) }
    }

    /// Whether lock-free lookups may answer (the unit sets this from GSTS.TES).
    public func allowConcurrentLookups(_ allowed: Bool) {
        storage.concurrentLookups.store(allowed, ordering: .releasing)
    }

    // MARK: Lookup under the lock

    /// The cached translation of `address` for the requester, or nil. Marks the hit as recently used.
    public func lookup(sourceID: RequesterID, pasid: PASID?, address: UInt64, privileged: Bool = false) -> IOTLBEntry? {
        let s = storage
        let requester = IOTLBStorage.requesterKey(sourceID: sourceID, pasid: pasid, privileged: privileged)
        let print = IOTLBStorage.fingerprint(requester)
        for size in IOTLBPageSize.allCases where s.waysOf(size) != 0 {
            let page = address &>> size.shift
            let tag = (page &<< size.shift) | print | size.rawValue
            let set = s.setIndex(page: page, size: size)
            let first = set &* Self.ways
            for way in 0..<Self.ways where s.tags[first &+ way].load(ordering: .relaxed) == tag {
                let index = first &+ way
                guard requesterOf(index) == requester, isLive(index) else { continue }
                s.markReferenced(set: set, way: way)
                return s.entry(tag: tag, index: index, size: size)
            }
        }
        return nil
    }

    // MARK: Insert

    /// Caches a translation, replacing an entry with the same key, else taking a free or dead
    /// way, else evicting the set's least recently used way (second chance).
    public func insert(_ entry: IOTLBEntry) {
        guard let size = IOTLBPageSize(shift: entry.pageShift) else { return }
        let s = storage
        let requester = IOTLBStorage.requesterKey(sourceID: entry.sourceID, pasid: entry.pasid, privileged: entry.privileged)
        let page = entry.inputPage &>> size.shift
        let tag = (page &<< size.shift) | IOTLBStorage.fingerprint(requester) | size.rawValue
        let set = s.setIndex(page: page, size: size)
        let first = set * Self.ways
        // The same key, else an empty way; only when neither is there are stamps computed
        // (dead ways), and only then is a live entry evicted.
        var target = -1, empty = -1
        for way in 0..<Self.ways {
            let t = s.tags[first + way].load(ordering: .relaxed)
            if t == tag && requesterOf(first + way) == requester { target = way; break }
            if empty < 0 && t == 0 { empty = way }
        }
        if target < 0 { target = empty }
        if target < 0 && s.allLiveAt[set] != s.bumps &+ 1 {
            for way in 0..<Self.ways where !isLive(first + way) { target = way; break }
            if target < 0 { s.allLiveAt[set] = s.bumps &+ 1 }
        }
        if target < 0 { target = evictionVictim(set: set) }
        let index = first + target
        let pasidSlot = IOTLBStorage.pasidSlot(entry.domainID, entry.effectivePASID)
        let stamp = s.stamp(entry.domainID, entry.effectivePASID, nested: entry.nested)
        if entry.nested { s.holdsNested = true }
        writing(set: set) {
            forgetSize(of: s.tags[index].load(ordering: .relaxed))
            let words = s.slots + index * IOTLBStorage.slotWords
            words[0].store(requester, ordering: .relaxed)
            words[1].store(IOTLBReader.Hit(entry, size: size).word, ordering: .relaxed)
            words[2].store(UInt64(stamp) << 32 | UInt64(entry.effectivePASID.storageWord), ordering: .relaxed)
            words[3].store(UInt64(pasidSlot) << IOTLBStorage.pasidSlotShift | (entry.nested ? IOTLBStorage.nestedBit : 0)
                           | UInt64(entry.domainID.rawValue) << 8 | UInt64(entry.permissions.rawValue), ordering: .relaxed)
            s.tags[index].store(tag, ordering: .relaxed)
            countSize(of: tag)
        }
        // Not referenced until it is hit again: a stream of one-off translations then evicts
        // its own kind first and leaves the entries in use alone.
        // A load and a store, not a locked and: a reader's mark lost in between only makes the
        // clock less exact.
        let clock = s.clock(of: set)
        clock.pointee.store(clock.pointee.load(ordering: .relaxed) & ~(UInt32(1) << UInt32(target)), ordering: .relaxed)
    }

    /// Second chance: the hand skips (and clears) referenced ways and stops at the first that is not.
    /// Terminates within one lap plus one way: every way it passes loses its mark.
    private func evictionVictim(set: Int) -> Int {
        let word = storage.clock(of: set)
        var clock = word.pointee.load(ordering: .relaxed)
        var hand = Int(clock >> 8) & (Self.ways - 1)
        while clock & (1 << UInt32(hand)) != 0 {
            clock &= ~(1 << UInt32(hand))
            hand = (hand + 1) & (Self.ways - 1)
        }
        let victim = hand
        hand = (hand + 1) & (Self.ways - 1)
        word.pointee.store((clock & 0xFF) | UInt32(hand) << 8, ordering: .relaxed)
        return victim
    }

    // MARK: Invalidation

    public func invalidate(_ scope: IOTLBInvalidationScope) {
        let s = storage
        switch scope {
        case .global:
            if countBump() { Self.bump(s.globalGeneration) }
        case .domain(let domain):
            if countBump() { Self.bump(s.domainGenerations[IOTLBStorage.domainSlot(domain)]) }
        case .pasid(let domain, let pasid):
            if countBump() { Self.bump(s.pasidGenerations[IOTLBStorage.pasidSlot(domain, pasid)]) }
        case .pages(let domain, let address, let mask, _):
            // IH only spares paging-structure caches; these are leaf entries. The address is a
            // second-stage input: nested entries of the domain may have used it anywhere.
            if s.holdsNested, countBump() { Self.bump(s.nestedGenerations[IOTLBStorage.domainSlot(domain)]) }
            removePages(domain: domain, pasid: nil, address: address, addressMask: mask)
        case .pasidPages(let domain, let pasid, let address, let mask, _):
            removePages(domain: domain, pasid: pasid, address: address, addressMask: mask)
        }
    }

    /// Drops everything (reset, counter wrap).
    public func removeAll() {
        let s = storage
        for set in 0..<s.sets {
            writing(set: set) {
                for way in 0..<Self.ways { s.tags[set * Self.ways + way].store(0, ordering: .relaxed) }
            }
            s.clock(of: set).pointee.store(0, ordering: .relaxed)
        }
        for i in 0..<IOTLBStorage.generationSlots {
            s.domainGenerations[i].store(0, ordering: .relaxed)
            s.pasidGenerations[i].store(0, ordering: .relaxed)
            s.nestedGenerations[i].store(0, ordering: .relaxed)
        }
        s.globalGeneration.store(0, ordering: .relaxed)
        s.ways4K.store(0, ordering: .relaxed)
        s.ways2M.store(0, ordering: .relaxed)
        s.ways1G.store(0, ordering: .relaxed)
        s.bumps = 0
        s.holdsNested = false
        s.allLiveAt.update(repeating: 0, count: s.sets)
    }

    /// Counts one generation bump; false when the counters were restarted instead (which
    /// already invalidated everything).
    private func countBump() -> Bool {
        storage.bumps += 1
        if storage.bumps < Self.bumpLimit { return true }
        removeAll()
        return false
    }

    /// Removes the entries of `domain` (and `pasid`, when given) that overlap the 2^addressMask
    /// 4 KiB pages at `address` (aligned down to that size, as the spec's address mask says).
    @inline(__always)
    private func removePages(domain: DomainID, pasid: PASID?, address: UInt64, addressMask: UInt8) {
        let spanShift = UInt64(addressMask) + 12
        guard spanShift < 64 else {
            // Wider than any address: the whole domain (or PASID) goes.
            if let pasid { invalidate(.pasid(domain: domain, pasid: pasid)) } else { invalidate(.domain(domain)) }
            return
        }
        let s = storage
        let start = address & ~((1 << spanShift) - 1)
        let last = start | ((1 << spanShift) - 1)
        // Count the sets to probe: per present page size, the pages of that size overlapping the range.
        var probes: UInt64 = 0
        s.forEachPresentSize { size in probes += (last >> size.shift) - (start >> size.shift) + 1 }
        if probes > UInt64(Self.probeLimit) {
            for set in 0..<s.sets { removeCovered(inSet: set, domain: domain, pasid: pasid, start: start, last: last) }
            return
        }
        s.forEachPresentSize { size in
            var page = start >> size.shift
            while page <= last >> size.shift {
                removeCovered(inSet: s.setIndex(page: page, size: size), domain: domain, pasid: pasid, start: start, last: last)
                page += 1
            }
        }
    }

    @inline(__always)
    private func removeCovered(inSet set: Int, domain: DomainID, pasid: PASID?, start: UInt64, last: UInt64) {
        let s = storage
        let first = set * Self.ways
        var doomed: UInt8 = 0
        for way in 0..<Self.ways {
            let tag = s.tags[first + way].load(ordering: .relaxed)
            guard let size = IOTLBPageSize(rawValue: tag & 3) else { continue }
            let pageStart = tag & ~((1 << size.shift) - 1)
            let pageLast = pageStart | ((1 << size.shift) - 1)
            let words = s.slots + (first + way) * IOTLBStorage.slotWords
            guard pageStart <= last, pageLast >= start,
                  UInt16(truncatingIfNeeded: words[3].load(ordering: .relaxed) >> 8) == domain.rawValue else { continue }
            if let pasid, UInt32(truncatingIfNeeded: words[2].load(ordering: .relaxed)) != pasid.rawValue { continue }
            doomed |= 1 << UInt8(way)
        }
        guard doomed != 0 else { return }
        writing(set: set) {
            for way in 0..<Self.ways where doomed & (1 << UInt8(way)) != 0 {
                forgetSize(of: s.tags[first + way].load(ordering: .relaxed))
                s.tags[first + way].store(0, ordering: .relaxed)
            }
        }
    }

    // MARK: Writer helpers

    /// Changes one set: readers that overlap see an odd or changed sequence and retry under the lock.
    @inline(__always)
    private func writing(set: Int, _ change: () -> Void) {
        let sequence = storage.sequence(of: set)
        let before = sequence.pointee.load(ordering: .relaxed)
        sequence.pointee.store(before &+ 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        change()
        sequence.pointee.store(before &+ 2, ordering: .releasing)
    }

    /// Counters only the writer changes: a load and a store, no locked read-modify-write (20-odd
    /// cycles each on x86). Readers still see whole values, and the unlock or status write that
    /// ends the operation orders them before anything the guest can observe.
    @inline(__always)
    private static func add(_ delta: UInt32, to counter: borrowing Atomic<UInt32>) {
        counter.store(counter.load(ordering: .relaxed) &+ delta, ordering: .relaxed)
    }

    @inline(__always)
    private static func bump(_ generation: borrowing Atomic<UInt32>) {
        generation.store(generation.load(ordering: .relaxed) &+ 1, ordering: .releasing)
    }

    @inline(__always)
    private func requesterOf(_ index: Int) -> UInt64 {
        storage.slots[index * IOTLBStorage.slotWords].load(ordering: .relaxed)
    }

    private func isLive(_ index: Int) -> Bool {
        let s = storage
        let words = s.slots + index * IOTLBStorage.slotWords
        let third = words[2].load(ordering: .relaxed)
        return s.tags[index].load(ordering: .relaxed) != 0
            && UInt32(truncatingIfNeeded: third >> 32) == s.stamp(fourth: words[3].load(ordering: .relaxed))
    }

    private func countSize(of tag: UInt64) {
        switch IOTLBPageSize(rawValue: tag & 3) {
        case .size4K: Self.add(1, to: storage.ways4K)
        case .size2M: Self.add(1, to: storage.ways2M)
        case .size1G: Self.add(1, to: storage.ways1G)
        case nil: break
        }
    }

    private func forgetSize(of tag: UInt64) {
        switch IOTLBPageSize(rawValue: tag & 3) {
        case .size4K: Self.add(0 &- 1, to: storage.ways4K)
        case .size2M: Self.add(0 &- 1, to: storage.ways2M)
        case .size1G: Self.add(0 &- 1, to: storage.ways1G)
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
            let tag = storage.tags[index].load(ordering: .relaxed)
            guard isLive(index), let size = IOTLBPageSize(rawValue: tag & 3) else { return nil }
            return storage.entry(tag: tag, index: index, size: size)
        }
    }
}

// The interrupt entry cache: IRTEs the unit has read and validated, so a hot MSI costs a lock
// and an array probe instead of a guest-memory read (VT-d spec chapter 6, "interrupt entry
// cache"). Direct-mapped, allocated once; no allocation on lookup, insert or invalidation.
//
// FOR THE QUEUED-INVALIDATION ENGINE (issue 3): the interrupt entry cache invalidate descriptor
// (type 4) maps onto this type through `InterruptRemappingState.entryCache`:
//   G = 0 (global)          -> interruptEntryCache.invalidateAll()
//   G = 1 (index-selective) -> interruptEntryCache.invalidate(index: IIDX, mask: IM)
// then emit `.interruptCacheInvalidate(index:count:)` (count 0 = all) so the host refreshes
// its interrupt routes. Both calls are made under the state lock; once they return, no
// interrupt remapped afterwards can use an entry they covered (see `generation`).

struct InterruptEntryCache {
    struct Slot {
        var valid = false
        /// Which table the entry came from: a new IRTA (or EIME) never serves old entries.
        var table: InterruptRemappingTableAddress = InterruptRemappingTableAddress(rawValue: 0)
        var index: UInt32 = 0
        var entry = IRTE(rawValue: 0)
        /// What the entry delivers (it is valid, so that is fixed): a hit does not decode it again.
        var message = MSIMessage(address: 0, data: 0)
    }

    static let slotCount = 256
    private var slots = [Slot](repeating: Slot(), count: slotCount)

    /// Bumped by every invalidation. A remap that read an IRTE from guest memory without the
    /// lock caches it only if this is unchanged, so an entry read before an invalidation
    /// completed is never served after it.
    private(set) var generation: UInt64 = 0

    @inline(__always)
    private static func slot(for index: UInt32) -> Int { Int(index) & (slotCount - 1) }

    /// The cached entry and the message it delivers.
    @inline(__always)
    func lookup(table: InterruptRemappingTableAddress, index: UInt32) -> (entry: IRTE, message: MSIMessage)? {
        slots.withUnsafeBufferPointer { slots in
            let slot = slots[Self.slot(for: index)]
            guard slot.valid, slot.index == index, slot.table == table else { return nil }
            return (slot.entry, slot.message)
        }
    }

    /// Caches `entry`, valid and read while `generation` was `readGeneration`.
    mutating func insert(_ entry: IRTE, table: InterruptRemappingTableAddress, index: UInt32,
                         readGeneration: UInt64) {
        guard readGeneration == generation else { return }
        let message = CompatibilityMSI(entry, extendedInterruptMode: table.extendedInterruptMode).message
        slots[Self.slot(for: index)] = Slot(valid: true, table: table, index: index, entry: entry, message: message)
    }

    /// Global invalidation (IEC descriptor with G = 0, SIRTP, reset).
    mutating func invalidateAll() {
        generation &+= 1
        for i in slots.indices { slots[i].valid = false }
    }

    /// Index-selective invalidation: the 2^mask entries from `index` with its low `mask` bits
    /// cleared (IIDX and IM of the interrupt entry cache invalidate descriptor).
    mutating func invalidate(index: UInt32, mask: UInt8) {
        guard (1 << Int(min(mask, 31))) < Self.slotCount else { return invalidateAll() }
        generation &+= 1
        let count = UInt64(1) << UInt64(mask)
        let first = UInt64(index) & ~(count - 1)
        for i in first..<(first + count) {
            let index = UInt32(truncatingIfNeeded: i)
            let s = Self.slot(for: index)
            if slots[s].valid && slots[s].index == index { slots[s].valid = false }
        }
    }

    var validEntryCount: Int { slots.reduce(0) { $0 + ($1.valid ? 1 : 0) } }
}

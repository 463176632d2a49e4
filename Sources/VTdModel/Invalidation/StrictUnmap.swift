// The strict-mode unmap as Linux queues it (VT-d spec 6.5.2.2, 6.5.2.4, 6.5.2.8): with
// iommu.strict=1 (and for maps too when the unit has caching mode), the guest queues one
// page-selective IOTLB or PASID-IOTLB descriptor and a wait descriptor with a status write,
// then writes IQT. That IQT write is most of what the unit does per DMA buffer, and it runs
// with the unit's cache lines cold (the guest's emulation runs in between), so it pays for
// every line of code and data it touches.
//
// Here that pair is applied with the same per-descriptor rules (`process`) but without the
// queue run's general machinery: no window to decide, no batch loop, no per-descriptor trace
// or host forwarding checks. Anything else goes the general way: other descriptors, more or
// fewer of them, a ring that wraps between them, a bound host, notifiers, traced
// descriptors, a run already under way. StrictUnmapTests hold both ways to the same result.

extension UnitState {
    /// In the lock section of an IQT write that asked for a run: when the two descriptors read
    /// for `window` are such a pair and all the queue holds, claims the run, applies the
    /// invalidation, moves IQH onto the wait and returns its status write (the caller finishes
    /// the run as the general one would). nil, with nothing changed, for anything else.
    @inline(__always)
    mutating func applyStrictUnmap(_ words: UnsafePointer<UInt64>, window: InvalidationQueueWindow,
                                   processed: inout Int, effects: inout Effects) -> PendingStatusWrite? {
        guard window.count == 2, !hostBound, notifiers.isEmpty, tracer?.wanted.contains(.descriptor) != true,
              invalidationQueue.holds(exactly: window) else { return nil }
        let unmap = InvalidationDescriptor(words, wide: window.wide)
        let wait = InvalidationDescriptor(words + window.descriptorWords, wide: window.wide)
        // A wait with SW has no effect of its own (IF is signalled only after the status
        // write), so neither descriptor changes anything before both passed their checks.
        guard unmap.type == .iotlb || unmap.type == .pasidIOTLB, wait.type == .wait,
              WaitDescriptor(d: wait).statusWrite, invalidationQueue.beginRun() else { return nil }
        guard case .statusWrite(var write) = process(wait, wide: window.wide, effects: &effects),
              case .done = process(unmap, wide: window.wide, effects: &effects) else {
            invalidationQueue.endRun()
            return nil
        }
        processed = 1
        write.head = window.head + 1
        invalidationQueue.moveHead(to: write.head, in: window)
        return write
    }
}

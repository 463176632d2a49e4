// Queued invalidation (VT-d spec 6.5.2): the guest writes descriptors into a ring in its memory
// and moves the tail (IQT); the unit processes them from the head (IQH) on.
//
// HOT PATH for strict-mode guests: every unmap is a PASID-IOTLB invalidation plus a wait
// descriptor with a status write. Such an IQT write costs two lock sections (the write with the
// descriptors before the wait, then the wait's completion), one guest read of the new
// descriptors and one status write; nothing allocates. The first section applies exactly that
// pair without the window machinery (StrictUnmap.swift); when the wait is the last descriptor
// the write read, `finishLastWait` does the status write and the completion without the run
// loop below. Guarded by `make bench` ("queued invalidation", "strict-mode unmap cycle").
//
// The run loop: lock -> decide the window of descriptors to read -> unlock -> read them from
// guest memory -> lock -> check nothing moved meanwhile, apply them in order -> unlock -> status
// write of a wait descriptor -> lock -> complete the wait, apply the rest of the batch already
// read, next window -> ... An IQT write reads the window it guesses before it takes the lock and
// applies it in the same section as the register write (`writeInvalidationQueueTail`). Guest
// memory is never touched with the lock held. A bad descriptor stops the queue at that descriptor with
// FSTS.IQE and IQERCD.IQEI. One run processes at most one lap of the ring, so a guest that keeps
// refilling the queue from a status write (pointed at IQT) cannot hold the caller forever; a
// run started from inside a callback of another run returns at once and the outer run picks up
// the new tail.

/// Where the queue is and what one unlocked read should fetch.
struct InvalidationQueueWindow: Equatable {
    var base: UInt64
    /// 256-bit descriptors (IQA.DW, honoured only in scalable mode).
    var wide: Bool
    /// Ring size in descriptors.
    var entries: Int
    var head: Int
    /// Descriptors to read from `head` on: up to the tail, the end of the ring or the batch size.
    var count: Int

    var descriptorBytes: Int { wide ? 32 : 16 }
    var descriptorWords: Int { wide ? 4 : 2 }
    var address: UInt64 { base &+ UInt64(head * descriptorBytes) }

    /// IQA as this window's ring (base, DW, QS): the hint an IQT write guesses its window from.
    var ringHint: UInt64 {
        let pages = UInt64(entries * descriptorBytes) >> 12
        return base | (wide ? 1 << 11 : 0) | UInt64(pages.trailingZeroBitCount)
    }

    /// Whether `other` starts at the same descriptor of the same ring (its count may differ).
    func startsWhere(_ other: InvalidationQueueWindow) -> Bool {
        base == other.base && wide == other.wide && entries == other.entries && head == other.head
    }
}

/// A wait descriptor whose status write is due: the run performs it unlocked, then completes it.
struct PendingStatusWrite {
    /// Ring index of the wait descriptor.
    var head: Int
    var address: UInt64
    var data: UInt32
    var interrupt: Bool
}

enum InvalidationQueue {
    /// Descriptors read from guest memory at once.
    static let batch = 16
}

/// What a queue run carries between its lock sections.
struct InvalidationQueueRun {
    var effects = Effects()
    /// Descriptors processed so far (a run does at most one lap).
    var processed = 0
    var lastWindow: InvalidationQueueWindow?
}

/// A batch read into the run's buffer and applied up to `applied`, where a wait may be pending.
struct AppliedInvalidationBatch {
    /// What the buffer holds.
    var read: InvalidationQueueWindow
    var fetched: Bool
    /// The descriptors of `read` applied so far end with this window.
    var applied: InvalidationQueueWindow
    var pending: PendingStatusWrite?
}

extension VTdUnit {
    /// Processes the invalidation queue from IQH to IQT. Called when queued invalidation is
    /// enabled or IQE cleared; never with the state lock held. `first`: the run was already
    /// claimed, and its first window decided, in the caller's lock section.
    func runInvalidationQueue(claimedWith first: InvalidationQueueWindow? = nil) {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: InvalidationQueue.batch * 4) { buffer in
            var run = InvalidationQueueRun()
            let window = first ?? state.withLock { $0.startInvalidationQueueRun(effects: &run.effects) }
            driveInvalidationQueue(buffer, &run, next: window, applied: nil)
        }
    }

    /// An IQT write (the strict-mode unmap path): the descriptors between the tail the last
    /// write left and the new one are read before the lock is taken, and the lock section that
    /// takes the write claims the run and applies them. The guess comes from the unit's own
    /// hints and is checked like any window (`startsWhere`); a wrong one only costs the read.
    func writeInvalidationQueueTail(value: UInt64, width: Int) {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: InvalidationQueue.batch * 4) { buffer in
            var run = InvalidationQueueRun()
            let guess = queueWindowGuess(tail: value)
            var fetched = false
            if let guess {
                fetched = platform.readGuest(guess.address, into: UnsafeMutableRawBufferPointer(
                    start: buffer.baseAddress, count: guess.count * guess.descriptorBytes))
            }
            // Set in the lock section: the run's first window when the guess did not hold, or
            // the part of the guess applied and the wait it stopped at.
            var claimed: InvalidationQueueWindow?
            var applied: InvalidationQueueWindow?
            var pending: PendingStatusWrite?
            let next: InvalidationQueueWindow? = state.withLock { s in
                s.guestWriteInvalidationQueueTail(value, width: width, effects: &run.effects)
                guard run.effects.runInvalidationQueue else { return nil }
                run.effects.runInvalidationQueue = false
                if let guess, fetched, let wait = s.applyStrictUnmap(UnsafePointer(buffer.baseAddress!), window: guess,
                                                                     processed: &run.processed, effects: &run.effects) {
                    (applied, pending) = (guess, wait)
                    return nil
                }
                guard let first = s.startInvalidationQueueRun(effects: &run.effects) else { return nil }
                guard let guess, fetched, first.startsWhere(guess) else {
                    claimed = first
                    return nil
                }
                var w = first
                w.count = min(first.count, guess.count)
                applied = w
                return s.applyInvalidationDescriptors(UnsafeBufferPointer(buffer), window: w, current: true,
                                                      processed: &run.processed, pending: &pending,
                                                      effects: &run.effects)
            }
            queueTailHint.store(value, ordering: .relaxed)
            guard claimed != nil || applied != nil else {
                if !run.effects.isEmpty { perform(&run.effects) }
                return
            }
            var batch: AppliedInvalidationBatch?
            if let guess, let w = applied {
                if let wait = pending, wait.head + 1 == guess.head + guess.count,
                   finishLastWait(wait, window: w, buffer, &run) { return }
                batch = AppliedInvalidationBatch(read: guess, fetched: true, applied: w, pending: pending)
            }
            driveInvalidationQueue(buffer, &run, next: claimed ?? next, applied: batch)
        }
    }

    /// The strict-mode unmap's common case, without the run loop: the descriptors the IQT write
    /// applied (`window`) stopped at a wait descriptor that is the last one read, nothing is owed
    /// to a host, and the lock section decided no effect. Then the rest of the run is the status
    /// write and the wait's completion; the loop is needed only when the guest queued more
    /// meanwhile. false (nothing done) when the case does not apply.
    @inline(__always)
    private func finishLastWait(_ wait: PendingStatusWrite, window: InvalidationQueueWindow,
                                _ buffer: UnsafeMutableBufferPointer<UInt64>, _ run: inout InvalidationQueueRun) -> Bool {
        guard run.effects.isEmpty, !hostObserverInstalled.load(ordering: .relaxed) else { return false }
        let written = platform.writeGuest32(wait.address, wait.data)
        let next = state.withLock { s in
            s.completeWait(wait, written: written, window: window, processed: &run.processed, effects: &run.effects)
        }
        if next != nil {
            // More arrived (or a callback moved the queue): the loop takes it from here.
            run.lastWindow = window
            driveInvalidationQueue(buffer, &run, next: next, applied: nil)
            return true
        }
        queueRingHint.store(window.ringHint, ordering: .relaxed)
        if !run.effects.isEmpty { perform(&run.effects) }
        return true
    }

    /// Where the descriptors of an IQT write to `tail` probably are: from the ring the last run
    /// used to the tail the last IQT write left. nil when there is no such hint.
    @inline(__always)
    private func queueWindowGuess(tail value: UInt64) -> InvalidationQueueWindow? {
        let ring = queueRingHint.load(ordering: .relaxed)
        guard ring != 0 else { return nil }
        let queue = InvalidationQueueAddress(rawValue: ring)
        let wide = queue.wideDescriptors, entries = queue.entryCount
        let head = InvalidationQueuePointer(rawValue: queueTailHint.load(ordering: .relaxed)).index(wideDescriptors: wide)
        let tail = InvalidationQueuePointer(rawValue: value).index(wideDescriptors: wide)
        guard head < entries, tail < entries, head != tail else { return nil }
        let available = tail > head ? tail - head : entries - head
        return InvalidationQueueWindow(base: queue.base, wide: wide, entries: entries, head: head,
                                       count: min(available, InvalidationQueue.batch))
    }

    /// The run loop: read a batch, apply it under the lock, do each wait's status write unlocked
    /// and complete it (with the rest of the batch) under the lock, until the queue is drained.
    /// `applied`: a first batch the caller already read and applied; `next`: the window after it.
    private func driveInvalidationQueue(_ buffer: UnsafeMutableBufferPointer<UInt64>, _ run: inout InvalidationQueueRun,
                                        next: InvalidationQueueWindow?, applied: AppliedInvalidationBatch?) {
        var window = next
        var carried = applied
        while true {
            var batch: AppliedInvalidationBatch
            if let carried { batch = carried } else {
                guard let w = window else { break }
                let bytes = UnsafeMutableRawBufferPointer(start: buffer.baseAddress, count: w.count * w.descriptorBytes)
                let fetched = platform.readGuest(w.address, into: bytes)
                var pending: PendingStatusWrite?
                window = state.withLock { s in
                    s.applyInvalidationDescriptors(fetched ? UnsafeBufferPointer(buffer) : nil, window: w, current: false,
                                                   processed: &run.processed, pending: &pending, effects: &run.effects)
                }
                batch = AppliedInvalidationBatch(read: w, fetched: fetched, applied: w, pending: pending)
            }
            carried = nil
            while let wait = batch.pending {
                run.lastWindow = batch.applied
                batch.pending = nil
                if let failed = hostBarrier(at: wait.head, effects: &run.effects) {
                    window = state.withLock { s in
                        s.reportHostInvalidationFailure(at: failed, expectedHead: wait.head, window: batch.applied,
                                                        effects: &run.effects)
                        return s.nextInvalidationWindow(processed: run.processed, effects: &run.effects)
                    }
                    break
                }
                // What the descriptors before the wait decided reaches the host first: the
                // guest may use a new mapping as soon as it sees the status.
                if !run.effects.isEmpty {
                    perform(&run.effects)
                    run.effects = Effects()
                }
                let written = platform.writeGuest32(wait.address, wait.data)
                // The rest of the batch already read, after the wait: applied in the same lock
                // section that completes the wait, without reading it again.
                var restOfBatch = batch.read
                restOfBatch.head = wait.head + 1
                restOfBatch.count = batch.read.head + batch.read.count - restOfBatch.head
                window = state.withLock { s in
                    let next = s.completeWait(wait, written: written, window: batch.applied, processed: &run.processed,
                                              effects: &run.effects)
                    guard batch.fetched, restOfBatch.count > 0, var rest = next, rest.startsWhere(restOfBatch) else {
                        return next
                    }
                    rest.count = min(rest.count, restOfBatch.count)
                    batch.applied = rest
                    let offset = (rest.head - batch.read.head) * rest.descriptorWords
                    return s.applyInvalidationDescriptors(
                        UnsafeBufferPointer(start: buffer.baseAddress! + offset, count: rest.count * rest.descriptorWords),
                        window: rest, current: true, processed: &run.processed, pending: &batch.pending, effects: &run.effects)
                }
            }
            run.lastWindow = batch.applied
            if !run.effects.isEmpty {
                perform(&run.effects)
                run.effects = Effects()
            }
        }
        // The queue drained: what the host still holds must be done before the guest polls on.
        if let w = run.lastWindow {
            queueRingHint.store(w.ringHint, ordering: .relaxed)
            if let failed = hostBarrier(at: nil, effects: &run.effects) {
                state.withLock { s in
                    s.reportHostInvalidationFailure(at: failed, expectedHead: nil, window: w, effects: &run.effects)
                }
            }
        }
        if !run.effects.isEmpty { perform(&run.effects) }
    }

    /// Hands the host what this run forwarded so far and asks it to finish: nil when it did (or
    /// no host is bound), else the ring index of the descriptor it could not perform.
    private func hostBarrier(at head: Int?, effects: inout Effects) -> Int? {
        guard let observer = hostObserver else { return nil }
        deliverToHost(&effects, observer)
        return observer.invalidationBarrier(descriptorIndex: head)
    }
}

extension UnitState {
    // MARK: Windows

    /// Claims the queue for one run and returns the first window, or nil when there is nothing to
    /// do or another run is under way further up this thread's stack.
    mutating func startInvalidationQueueRun(effects: inout Effects) -> InvalidationQueueWindow? {
        guard invalidationQueue.beginRun() else { return nil }
        return nextInvalidationWindow(processed: 0, effects: &effects)
    }

    /// The next descriptors to read, or nil (and the run ends) when the queue is off, stopped by
    /// an error, empty, or this run has done a full lap.
    mutating func nextInvalidationWindow(processed: Int, effects: inout Effects) -> InvalidationQueueWindow? {
        // Drained with a sound tail (the strict-mode unmap's end): nil whether or not the queue
        // is still active, so neither GSTS/FSTS nor a window is needed.
        if invalidationQueue.endRunIfDrained() { return nil }
        if invalidationQueueActive {
            switch invalidationQueue.next(processed: processed) {
            case .read(let window): return window
            case .idle: break
            case .error(let error): reportInvalidationQueueError(error, effects: &effects)
            }
        }
        invalidationQueue.endRun()
        return nil
    }

    // MARK: Applying descriptors

    /// Applies the descriptors read for `window` (nil: the read failed) until the batch ends, a
    /// descriptor is bad, or a wait descriptor needs its status write (left in `pending`, head
    /// on it). Returns the next window, or nil when the run ends or must first do the write.
    /// `current`: `window` starts where `nextInvalidationWindow` said in the caller's lock section.
    mutating func applyInvalidationDescriptors(
        _ words: UnsafeBufferPointer<UInt64>?, window: InvalidationQueueWindow, current: Bool, processed: inout Int,
        pending: inout PendingStatusWrite?, effects: inout Effects
    ) -> InvalidationQueueWindow? {
        if !current {
            // A callback between the read and now may have changed the queue (disabled it, moved
            // IQA, hit an error): then this batch is stale and the queue is looked at afresh.
            let now = nextInvalidationWindow(processed: processed, effects: &effects)
            guard let now, now.startsWhere(window) else { return now }
        }
        guard let words else {
            reportInvalidationQueueError(.descriptorFetchFailed, effects: &effects)
            return nextInvalidationWindow(processed: processed, effects: &effects)
        }
        for i in 0..<window.count {
            let index = window.head + i
            let descriptor = InvalidationDescriptor(words.baseAddress! + i * window.descriptorWords, wide: window.wide)
            switch apply(descriptor, at: index, wide: window.wide, effects: &effects) {
            case .done:
                processed += 1
                invalidationQueue.moveHead(to: index + 1, in: window)
            case .statusWrite(var write):
                invalidationQueue.moveHead(to: index, in: window)
                write.head = index
                pending = write
                return nil
            case .error(let info):
                invalidationQueue.moveHead(to: index, in: window)
                reportInvalidationQueueError(info, effects: &effects)
                return nextInvalidationWindow(processed: processed, effects: &effects)
            }
        }
        return nextInvalidationWindow(processed: processed, effects: &effects)
    }

    /// Processes the descriptor at ring index `index`, traces it, and notes what a bound host
    /// must hear of it.
    private mutating func apply(_ descriptor: InvalidationDescriptor, at index: Int, wide: Bool,
                                effects: inout Effects) -> DescriptorOutcome {
        let eventsBefore = effects.eventCount
        let outcome = process(descriptor, wide: wide, effects: &effects)
        tracer?.trace(.descriptor, .descriptor(descriptor, wide: wide, outcome: outcome.traced))
        if hostBound, case .done = outcome {
            // hostBound first: the non-mutating call copied 512 bytes of the state per descriptor.
            if let host = hostInvalidation(descriptor, index: index) { effects.appendHostInvalidation(host) }
            if effects.eventCount > eventsBefore {
                effects.appendHostSetupOrigin(events: eventsBefore..<effects.eventCount, descriptor: index)
            }
        }
        return outcome
    }

    /// Finishes the wait descriptor at the head after its status write was attempted.
    @inline(__always)
    mutating func completeWait(_ wait: PendingStatusWrite, written: Bool, window: InvalidationQueueWindow,
                               processed: inout Int, effects: inout Effects) -> InvalidationQueueWindow? {
        // Still where we left it? (A callback may have disabled the queue, which resets the head.)
        guard invalidationQueueActive, invalidationQueue.isUnchanged(since: window, head: wait.head) else {
            return nextInvalidationWindow(processed: processed, effects: &effects)
        }
        guard written else {
            // QEMU stops the queue too: the guest would otherwise poll a status that never comes.
            effects.log(.guestError, "invalidation wait: status write to 0x\(String(wait.address, radix: 16)) failed")
            reportInvalidationQueueError(.statusWriteFailed, effects: &effects)
            return nextInvalidationWindow(processed: processed, effects: &effects)
        }
        processed += 1
        invalidationQueue.moveHead(to: wait.head + 1, in: window)
        if wait.interrupt { invalidationQueue.signalWaitCompletion(effects: &effects) }
        return nextInvalidationWindow(processed: processed, effects: &effects)
    }

    enum DescriptorOutcome {
        case done
        case statusWrite(PendingStatusWrite)
        case error(InvalidationQueueError)

        var traced: TraceRecord.DescriptorOutcome {
            switch self {
            case .done: .done
            case .statusWrite: .statusWrite
            case .error(let e): .refused(e)
            }
        }
    }

    // MARK: One descriptor

    /// Validates and applies one descriptor (spec 6.5.2.x per type).
    mutating func process(_ d: InvalidationDescriptor, wide: Bool, effects: inout Effects) -> DescriptorOutcome {
        // Scalable-mode tables are invalidated with 256-bit descriptors only (spec 6.5.2, IQA.DW):
        // a 128-bit queue while the latched root table is scalable has the wrong width.
        if !wide && latchedRootTable?.isScalable == true { return .error(.invalidDescriptorWidth) }
        guard let type = d.type else { return .error(.invalidDescriptorType) }
        if let error = type.widthError(wideQueue: wide, upperHalfIsZero: d.upperHalfIsZero) { return .error(error) }
        switch type {
        case .contextCache:
            let view = ContextCacheDescriptor(d: d)
            guard !view.reservedBitsSet, let scope = view.scope else { return .error(.reservedFieldSet) }
            invalidateContextCache(scope, effects: &effects)
        case .iotlb:
            let view = IOTLBDescriptor(d: d)
            guard !view.reservedBitsSet, let scope = view.scope else { return .error(.reservedFieldSet) }
            if case .pages = scope, view.addressMask > maximumAddressMask { return .error(.reservedFieldSet) }
            invalidateIOTLB(scope, effects: &effects)
        case .pasidIOTLB:
            let view = PASIDIOTLBDescriptor(d: d)
            guard !view.reservedBitsSet, let scope = view.scope(maximumAddressMask: maximumAddressMask) else {
                return .error(.reservedFieldSet)
            }
            invalidateIOTLB(scope, effects: &effects)
        case .pasidCache:
            let view = PASIDCacheDescriptor(d: d)
            guard !view.reservedBitsSet, let scope = view.scope else { return .error(.reservedFieldSet) }
            invalidatePASIDCache(scope, effects: &effects)
        case .deviceTLB: return processDeviceTLB(DeviceTLBDescriptor(d: d), effects: &effects)
        case .pasidDeviceTLB: return processPASIDDeviceTLB(PASIDDeviceTLBDescriptor(d: d), effects: &effects)
        case .interruptEntryCache:
            return processInterruptEntryCache(InterruptEntryCacheDescriptor(d: d), effects: &effects)
        case .wait: return processWait(WaitDescriptor(d: d), effects: &effects)
        case .pageGroupResponse:
            guard configuration.pageRequests else { return .error(.invalidDescriptorType) }
            guard !PageGroupResponseReservedBits.set(in: d),
                  deliverPageGroupResponse(PageGroupResponseDescriptor(low: d.low, high: d.high), effects: &effects)
            else { return .error(.reservedFieldSet) }
        }
        return .done
    }

    /// CAP.MAMV: the largest address mask a page-selective invalidation may carry.
    private var maximumAddressMask: UInt8 {
        UInt8(Capability(rawValue: registers.get64(Reg.capability)).maximumAddressMaskValue)
    }

    private mutating func processDeviceTLB(_ view: DeviceTLBDescriptor, effects: inout Effects) -> DescriptorOutcome {
        guard !view.reservedBitsSet else { return .error(.reservedFieldSet) }
        // Only hosts that asked for device-TLB invalidations (QEMU's DEVIOTLB_UNMAP) hear of them.
        if notifiers[view.sourceID, nil].contains(.deviceTLBUnmap) {
            let range = view.range
            effects.events.append(.deviceTLBInvalidate(sid: view.sourceID, pasid: nil, address: range.address,
                                                       size: range.size))
        }
        return .done
    }

    private mutating func processPASIDDeviceTLB(_ view: PASIDDeviceTLBDescriptor,
                                                effects: inout Effects) -> DescriptorOutcome {
        guard !view.reservedBitsSet else { return .error(.reservedFieldSet) }
        guard !notifiers.isEmpty else { return .done }
        // The global bit reaches every PASID of the device; each registration hears of it once.
        let range = view.range
        for r in notifiers.registrations where r.sourceID == view.sourceID && r.kinds.contains(.deviceTLBUnmap)
            && (r.pasid == view.pasid || (view.global && r.pasid != nil)) {
            effects.events.append(.deviceTLBInvalidate(sid: view.sourceID, pasid: r.pasid,
                                                       address: range.address, size: range.size))
        }
        return .done
    }

    private mutating func processInterruptEntryCache(_ view: InterruptEntryCacheDescriptor,
                                                     effects: inout Effects) -> DescriptorOutcome {
        guard !view.reservedBitsSet else { return .error(.reservedFieldSet) }
        if view.indexSelective {
            interruptRemapping.entryCache.invalidate(index: UInt32(view.interruptIndex), mask: view.indexMask)
        } else {
            interruptRemapping.entryCache.invalidateAll()
        }
        effects.events.append(.interruptCacheInvalidate(index: view.entries.index, count: view.entries.count))
        return .done
    }

    @inline(__always)
    private mutating func processWait(_ view: WaitDescriptor, effects: inout Effects) -> DescriptorOutcome {
        guard !view.reservedBitsSet(pageDrain: configuration.pageRequests) else { return .error(.reservedFieldSet) }
        // Everything before it is complete already (processing is synchronous), so fence and
        // drain hold. Neither SW nor IF is a plain fence: the spec has no rule against it.
        if view.statusWrite {
            return .statusWrite(PendingStatusWrite(head: 0, address: view.statusAddress, data: view.statusData,
                                                   interrupt: view.interruptFlag))
        }
        if view.interruptFlag { invalidationQueue.signalWaitCompletion(effects: &effects) }
        return .done
    }
}

extension Effects {
    /// Adds what another locked section decided (rare paths only: it may allocate).
    mutating func merge(_ other: Effects) {
        if let m = other.faultEvent { faultEvent = m }
        if let m = other.invalidationEvent { invalidationEvent = m }
        if let m = other.pageRequestEvent { pageRequestEvent = m }
        for origin in other.hostSetupOrigins {
            appendHostSetupOrigin(events: origin.events.lowerBound + events.count..<origin.events.upperBound + events.count,
                                  descriptor: origin.descriptor)
        }
        events += other.events
        for (level, message) in other.logs { log(level, message) }
        other.forEachResync { requestResync($0) }
        runInvalidationQueue = runInvalidationQueue || other.runInvalidationQueue
        for invalidation in other.hostInvalidations { appendHostInvalidation(invalidation) }
    }
}

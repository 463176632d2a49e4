// The invalidation queue as a part of the unit's state (VT-d spec 6.5.2, 11.4.9): it owns the
// registers from IQH to IQERCD (IQH, IQT, IQA, ICS, the invalidation event registers and
// IQERCD) and knows whether a run is under way. Its invariants live here: IQH always inside
// the ring, IQERCD keeping the first error's detail, ICS.IWC and IECTL.IP following the event
// rule. Whether the queue may run at all depends on registers other parts own (GSTS.QIES,
// FSTS.IQE): the unit passes that in, and reports the queue's errors in FSTS through
// `FaultRecordingState.report` (`UnitState.reportInvalidationQueueError`).

struct InvalidationQueueState: Sendable {
    /// The part of the register window the queue owns.
    static let offsets = Reg.invalidationQueueHead..<Reg.interruptRemappingTableAddress

    private(set) var registers: RegisterFile
    /// IQA.base is limited to the host address width.
    private let hostAddressMask: UInt64
    /// A run is under way (a callback of it must not start another).
    private var running = false
    /// IQA, IQH and IQT decoded: a queue run looks at them several times per descriptor. Kept in
    /// step with the registers here, by every method that changes one of the three.
    private var decoded = Decoded()

    private struct Decoded {
        var address = InvalidationQueueAddress(rawValue: 0)
        var entries = 0
        var head = 0
        var tailPointer = InvalidationQueuePointer(rawValue: 0)
        var tail = 0
    }

    init(configuration c: VTdConfiguration, hostAddressMask: UInt64) {
        self.hostAddressMask = hostAddressMask
        registers = RegisterFile(base: Self.offsets.lowerBound, size: Self.offsets.count)
        registers.define(Reg.invalidationQueueHead, width: 8)
        registers.define(Reg.invalidationQueueTail, width: 8, writable: InvalidationQueuePointer.writable)
        registers.define(Reg.invalidationQueueAddress, width: 8,
                         writable: InvalidationQueueAddress.writable(scalableMode: c.scalableMode))
        registers.define(Reg.invalidationCompletionStatus, width: 4,
                         writeOneToClear: UInt64(InvalidationCompletionStatus.waitComplete.rawValue))
        registers.defineEventRegisters(.invalidationCompletion, extendedInterruptMode: c.extendedInterruptMode)
        registers.define(Reg.invalidationQueueErrorRecord, width: 8)
        decode()
    }

    mutating func reset() {
        registers.reset()
        decode()
    }

    /// A guest write through the registers' masks; the unit then calls `slotWritten`.
    @inline(__always)
    mutating func guestWrite(_ offset: Int, _ value: UInt64, width: Int) {
        registers.write(offset, value, width: width)
        switch offset {
        case Reg.invalidationQueueTail:
            // The strict-mode unmap path: only the tail moved.
            decoded.tailPointer = InvalidationQueuePointer(rawValue: registers.get64(Reg.invalidationQueueTail))
            decoded.tail = decoded.tailPointer.index(wideDescriptors: decoded.address.wideDescriptors)
        case ..<(Reg.invalidationQueueAddress + 8): decode()
        default: break
        }
    }

    /// Puts back this file's part of a migrated register image.
    mutating func restore(window words: [UInt32]) {
        registers.restore(rawWords: words[registers.wordRange])
        decode()
    }

    /// Reads IQA, IQH and IQT into `decoded`.
    private mutating func decode() {
        let queue = InvalidationQueueAddress(rawValue: registers.get64(Reg.invalidationQueueAddress)
                                             & (hostAddressMask | UInt64.mask(11, 0)))
        let wide = queue.wideDescriptors
        let tail = InvalidationQueuePointer(rawValue: registers.get64(Reg.invalidationQueueTail))
        decoded = Decoded(address: queue, entries: queue.entryCount,
                          head: InvalidationQueuePointer(rawValue: registers.get64(Reg.invalidationQueueHead))
                              .index(wideDescriptors: wide),
                          tailPointer: tail, tail: tail.index(wideDescriptors: wide))
    }

    // MARK: Registers as the model reads them

    /// IQA as the guest programmed it: base (limited to the host address width), descriptor
    /// width, size. Software must not change it while QI is enabled; the run bounds every
    /// index by `entryCount` regardless.
    var address: InvalidationQueueAddress { decoded.address }

    /// IQH, in descriptors.
    var head: Int { decoded.head }
    /// IQT, in descriptors.
    var tail: Int { decoded.tail }
    var isEmpty: Bool { decoded.head == decoded.tail }

    var errorRecord: InvalidationQueueErrorRecord {
        InvalidationQueueErrorRecord(rawValue: registers.get64(Reg.invalidationQueueErrorRecord))
    }

    var completionStatus: InvalidationCompletionStatus {
        InvalidationCompletionStatus(rawValue: registers.get32(Reg.invalidationCompletionStatus))
    }

    // MARK: The head

    /// IQH on the descriptor at ring index `index` (wrapping at the end of the ring).
    mutating func moveHead(to index: Int) {
        moveHead(to: index, entries: decoded.entries, wide: decoded.address.wideDescriptors)
    }

    /// IQH on ring index `index` of the ring `window` was read from.
    mutating func moveHead(to index: Int, in window: InvalidationQueueWindow) {
        moveHead(to: index, entries: window.entries, wide: window.wide)
    }

    @inline(__always)
    private mutating func moveHead(to index: Int, entries: Int, wide: Bool) {
        // `entries` is a power of two: a mask, not a division.
        let head = index & (entries - 1)
        registers.set64(Reg.invalidationQueueHead, InvalidationQueuePointer(index: head, wideDescriptors: wide).rawValue)
        // The window's ring is the registers' (callers checked), so the decoded head is this one.
        decoded.head = head
    }

    /// QIE set or cleared: IQH starts at (and then reads) 0, as the spec requires.
    mutating func rewind() {
        registers.set64(Reg.invalidationQueueHead, 0)
        decoded.head = 0
    }

    // MARK: Runs

    /// Claims the queue for one run; false when a run is under way further up the stack.
    mutating func beginRun() -> Bool {
        guard !running else { return false }
        running = true
        return true
    }

    mutating func endRun() { running = false }

    /// Ends the run when the queue is drained and its tail sound, which `next` would report as
    /// idle, without building a window: the usual end of a strict-mode IQT write.
    mutating func endRunIfDrained() -> Bool {
        guard decoded.head == decoded.tail, tailProblem == nil else { return false }
        running = false
        return true
    }

    /// What a run reads next, having processed `processed` descriptors.
    enum Next {
        case read(InvalidationQueueWindow)
        /// Empty, or this run did a full lap.
        case idle
        case error(InvalidationQueueError)
    }

    /// The next descriptors to read: up to the tail, the end of the ring, the batch size and a
    /// full lap. IQT was checked when written, but IQA may have moved since, so both pointers
    /// are checked against the ring again.
    @inline(__always)
    func next(processed: Int) -> Next {
        let queue = decoded.address
        let wide = queue.wideDescriptors
        let entries = decoded.entries
        if let problem = tailProblem { return .error(problem) }
        let tail = decoded.tail, head = decoded.head
        guard head < entries else { return .error(.invalidTail) }
        let remaining = entries - processed
        guard head != tail, remaining > 0 else { return .idle }
        let available = tail > head ? tail - head : entries - head
        return .read(InvalidationQueueWindow(base: queue.base, wide: wide, entries: entries, head: head,
                                             count: min(available, InvalidationQueue.batch, remaining)))
    }

    /// Whether the ring is still the one `window` was read from and, when `head` is given, IQH
    /// still on it: a callback between two lock sections may have moved or reset either.
    func isUnchanged(since window: InvalidationQueueWindow, head: Int?) -> Bool {
        guard decoded.address.base == window.base else { return false }
        guard let head else { return true }
        return InvalidationQueuePointer(rawValue: registers.get64(Reg.invalidationQueueHead))
            .index(wideDescriptors: window.wide) == head
    }

    /// Whether the queue holds exactly `window`'s descriptors: its ring, IQH on its head and IQT
    /// right after its last descriptor (no wrap).
    @inline(__always)
    func holds(exactly window: InvalidationQueueWindow) -> Bool {
        decoded.head == window.head && decoded.tail == window.head + window.count
            && decoded.address.base == window.base && decoded.address.wideDescriptors == window.wide
            && decoded.entries == window.entries && tailProblem == nil
    }

    /// Why the tail software just wrote cannot be run to, or nil.
    var tailProblem: InvalidationQueueError? {
        if decoded.address.wideDescriptors && decoded.tailPointer.isHalfDescriptor { return .misalignedTail }
        if decoded.tail >= decoded.entries { return .invalidTail }
        return nil
    }

    // MARK: Errors and completion

    /// Records the detail of `error` in IQERCD unless its FSTS bit is already in `pending`:
    /// the first error is the one software reads.
    mutating func recordError(_ error: InvalidationQueueError, pending: FaultStatus) {
        guard !pending.contains(error.faultStatusBit) else { return }
        var record = errorRecord
        switch error {
        case .completionError(let sid): record.completionErrorSourceID = sid
        case .timeout(let sid): record.timeoutSourceID = sid
        default:
            guard let info = error.queueErrorInfo else { return }
            record.queueErrorInfo = info
        }
        registers.set64(Reg.invalidationQueueErrorRecord, record.rawValue)
    }

    /// A wait descriptor with IF completed: ICS.IWC and the invalidation completion event.
    /// While IWC is still set from an earlier wait this is not a new interrupt condition.
    mutating func signalWaitCompletion(effects: inout Effects) {
        var ics = completionStatus
        guard !ics.contains(.waitComplete) else { return }
        ics.insert(.waitComplete)
        registers.set32(Reg.invalidationCompletionStatus, ics.rawValue)
        registers.raiseEvent(.invalidationCompletion, effects: &effects)
    }

    /// After software wrote ICS (IWC is RW1C).
    mutating func completionStatusWritten() {
        if !completionStatus.contains(.waitComplete) { registers.eventServiced(.invalidationCompletion) }
    }

    /// After software wrote IECTL: unmasking delivers what was pending.
    mutating func eventControlWritten(effects: inout Effects) {
        registers.eventControlWritten(.invalidationCompletion, effects: &effects)
    }
}

extension UnitState {
    /// GSTS.QIES set and FSTS.IQE clear: the queue may run. Read through the registers directly:
    /// UnitState's computed properties made the optimizer copy the whole state (measured).
    var invalidationQueueActive: Bool {
        GlobalCommand(rawValue: registers.get32(Reg.globalStatus)).contains(.queuedInvalidationEnable)
            && !faults.status.contains(.invalidationQueueError)
    }

    /// Sets FSTS.IQE, ICE or ITE with its IQERCD detail and raises the fault event when that is
    /// a new interrupt condition. After IQE the run stops with IQH at the offending descriptor:
    /// processing resumes when software clears IQE.
    mutating func reportInvalidationQueueError(_ error: InvalidationQueueError, effects: inout Effects) {
        invalidationQueue.recordError(error, pending: faults.status)
        faults.report(error.faultStatusBit, effects: &effects)
        effects.log(.guestError, "invalidation queue error: \(error) "
                    + "(head \(invalidationQueue.head), tail \(invalidationQueue.tail))")
    }

    /// A guest write of IQT, 4 or 8 bytes: what `mmioWrite` does for this offset, without
    /// finding its owner and its slots (the strict-mode unmap path). Only the low half acts.
    @inline(__always)
    mutating func guestWriteInvalidationQueueTail(_ value: UInt64, width: Int, effects: inout Effects) {
        invalidationQueue.guestWrite(Reg.invalidationQueueTail, value, width: width)
        invalidationQueueTailWritten(effects: &effects)
    }

    /// After software wrote the low half of IQT: check the tail, then let the run start.
    @inline(__always)
    mutating func invalidationQueueTailWritten(effects: inout Effects) {
        guard queuedInvalidationEnabled else { return }
        scheduleInvalidationQueue(effects: &effects)
    }

    /// GCMD.QIE toggled. Enabling starts at IQH 0 and runs anything already queued (Windows
    /// writes IQT before enabling). Disabling is refused while descriptors are outstanding;
    /// once disabled IQH reads 0, as the spec requires.
    mutating func setQueuedInvalidation(enabled: Bool, effects: inout Effects) {
        if enabled {
            invalidationQueue.rewind()
            globalStatus.insert(.queuedInvalidationEnable)
            if invalidationQueue.tail != 0 { scheduleInvalidationQueue(effects: &effects) }
        } else {
            guard invalidationQueue.isEmpty else {
                effects.log(.guestError, "GCMD.QIE clear refused: queue not empty "
                            + "(head \(invalidationQueue.head), tail \(invalidationQueue.tail))")
                return
            }
            invalidationQueue.rewind()
            globalStatus.remove(.queuedInvalidationEnable)
        }
    }

    /// Software cleared IQE: the run resumes at IQH (spec 6.5.2.10).
    mutating func resumeInvalidationQueueAfterError(effects: inout Effects) {
        guard queuedInvalidationEnabled, !faults.status.contains(.invalidationQueueError),
              !invalidationQueue.isEmpty else { return }
        scheduleInvalidationQueue(effects: &effects)
    }

    /// Validates IQT against the ring and, if it is sound, asks for a run. The run may then
    /// trust 0 <= tail < entryCount.
    @inline(__always)
    private mutating func scheduleInvalidationQueue(effects: inout Effects) {
        guard !faults.status.contains(.invalidationQueueError) else { return }
        if let problem = invalidationQueue.tailProblem {
            reportInvalidationQueueError(problem, effects: &effects)
        } else if !invalidationQueue.isEmpty {
            effects.runInvalidationQueue = true
        }
    }
}

// The page request queue (VT-d spec 7.5): PCIe page requests from PRI-capable devices become
// descriptors in a guest-memory ring; the unit owns the tail (PQT), software the head (PQH).
// Software answers with page group response descriptors on the invalidation queue, which come
// back to the device as `.pageGroupResponse` events.
//
// Rules, as the spec and the Linux driver (prq.c) rely on them:
// - With remapping on, the requester needs a scalable-mode context entry with PRE set (spec
//   9.4); otherwise the fault is recorded (0x32 legacy tables, the context entry's own fault,
//   0x47 PRE clear; FPD-qualified) and the device is answered "invalid request".
// - A queued request implicitly invalidates what the IOTLB cached for its page (spec 6.5).
// - The queue is full when one more descriptor would make PQT equal PQH (one slot stays empty).
// - A request that finds the queue full sets PRS.PRO and is dropped; while PRO is set every
//   request is dropped. A dropped request that ends its page group (LPIG, not a stop marker)
//   is answered by the unit itself with a "success" page group response (VT-d spec 7.5, page
//   request queue overflow; the RISC-V IOMMU spec prescribes the same and gives the reason: a
//   success makes the device retry its translation, fault again and re-issue the request once
//   software has drained the queue, while an error code would end the device's I/O). QEMU's
//   PRI series instead returns an error to the calling device model and answers nothing.
// - Setting PRS.PPR or PRS.PRO while both were clear raises the page request event; Linux
//   clears PPR before reading PQT, so a request queued while it works raises a new one.
// - PQA.PQS gives 2^PQS pages of 32-byte descriptors, 2^(PQS+7) entries (some Intel datasheets
//   print 2^(X+8), the invalidation queue's 16-byte figure; Linux's 32-byte stride is right).
//
// Guest memory is written without the lock: a request reserves its slot under the lock,
// writes the descriptor, then publishes PQT under the lock once no earlier slot is still being
// written. Not a hot path.
//
// FOR THE QUEUED-INVALIDATION ENGINE (issue 3): a page group response descriptor (type 9)
// goes to `UnitState.deliverPageGroupResponse(_:effects:)`; false means the descriptor is
// invalid (report IQE).

/// What became of a page request.
public enum PageRequestOutcome: Equatable, Sendable {
    /// In the queue, for software to handle.
    case queued
    /// Not queued; when the request needed an answer the unit gave it this one itself.
    case dropped(autoResponse: PageGroupResponseCode?)
    /// The unit does not take page requests (page-requests off).
    case unsupported
    /// The request is malformed (see `PageRequest.malformation`).
    case invalid
}

/// The first step of a page request, decided under the lock.
enum PageRequestStep {
    case slot(PageRequestSlot)
    /// Read the requester's scalable-mode context entry (without the lock), then continue.
    case readContext(root: RootTablePointer)
}

/// Whether the request got a queue slot.
enum PageRequestSlot {
    case done(PageRequestOutcome)
    /// Write the descriptor at `address` (without the lock), then publish the slot ending at `nextTail`.
    case write(address: UInt64, nextTail: Int, epoch: UInt64)
}

// The ring, its registers and the slots are PageRequestQueueState's; this file decides what
// goes in the queue.

extension UnitState {
    mutating func beginPageRequest(_ request: PageRequest, effects: inout Effects) -> PageRequestStep {
        guard configuration.pageRequests else { return .slot(.done(.unsupported)) }
        if let problem = request.malformation {
            effects.log(.guestError, "page request from \(request.sourceID) refused: \(problem)")
            return .slot(.done(.invalid))
        }
        // With remapping off there is no context entry to ask (QEMU does not ask either).
        guard translationEnabled else { return .slot(reservePageRequestSlot(request, effects: &effects)) }
        let root = translationRootTable
        guard root.isScalable else {
            // Page requests exist only for scalable-mode tables.
            return .slot(.done(refusePageRequest(request, .smTTMZeroForPageGroupRequest, faultProcessingDisabled: false,
                                                 effects: &effects)))
        }
        if case .scalable(let context)? = caches.context.lookup(sourceID: request.sourceID, root: root) {
            return .slot(continuePageRequest(request, context: .success(context), effects: &effects))
        }
        return .readContext(root: root)
    }

    /// After the requester's scalable-mode context entry was read (or failed to be).
    mutating func continuePageRequest(_ request: PageRequest, context: Result<ScalableContextEntry, FaultReason>,
                                      faultProcessingDisabled: Bool = false,
                                      effects: inout Effects) -> PageRequestSlot {
        switch context {
        case .failure(let reason):
            return .done(refusePageRequest(request, reason, faultProcessingDisabled: faultProcessingDisabled,
                                           effects: &effects))
        case .success(let entry) where !entry.pageRequestsEnabled:
            return .done(refusePageRequest(request, .smContextEntryPREClear,
                                           faultProcessingDisabled: entry.faultProcessingDisabled, effects: &effects))
        case .success:
            return reservePageRequestSlot(request, effects: &effects)
        }
    }

    /// A request the requester's context does not allow: the fault is recorded (FPD permitting)
    /// and the device is told its request cannot be satisfied.
    private mutating func refusePageRequest(_ request: PageRequest, _ reason: FaultReason, faultProcessingDisabled: Bool,
                                            effects: inout Effects) -> PageRequestOutcome {
        if !(faultProcessingDisabled && reason.isQualified) {
            effects.log(.guestError, "page request from \(request.sourceID) refused, fault 0x"
                            + String(reason.rawValue, radix: 16))
            recordFault(FaultRecord(sourceID: request.sourceID, pasid: request.pasid, address: request.address & ~0xFFF,
                                    reason: reason, isRead: !request.write, privileged: request.privileged,
                                    execute: request.execute), effects: &effects)
        }
        return .dropped(autoResponse: respondForUnit(request, .invalidRequest, effects: &effects))
    }

    private mutating func reservePageRequestSlot(_ request: PageRequest, effects: inout Effects) -> PageRequestSlot {
        switch pageRequests.reserveSlot(effects: &effects) {
        case .overflowed:
            return .done(dropPageRequest(request, effects: &effects))
        case let .full(head, tail):
            effects.log(.trace, "page request queue full (head \(head), tail \(tail)): overflow")
            return .done(dropPageRequest(request, effects: &effects))
        case let .slot(address, nextTail, epoch):
            invalidateForPageRequest(request)
            return .write(address: address, nextTail: nextTail, epoch: epoch)
        }
    }

    /// Implicit invalidation on a page request (VT-d spec 6.5, as QEMU's PRI series does it):
    /// software that services a page request may widen the mapping without invalidating, so
    /// what the unit cached for the page must go now, and a walk running meanwhile must not
    /// cache what it read before.
    private mutating func invalidateForPageRequest(_ request: PageRequest) {
        let page = request.address & ~0xFFF
        if let hit = caches.iotlb.lookup(sourceID: request.sourceID, pasid: request.pasid, address: page,
                                  privileged: request.privileged) {
            if let pasid = hit.effectivePASID {
                caches.iotlb.invalidate(.pasidPages(domain: hit.domainID, pasid: pasid, address: page,
                                                    addressMask: 0, leafOnly: false))
            } else {
                caches.iotlb.invalidate(.pages(domain: hit.domainID, address: page, addressMask: 0, leafOnly: false))
            }
        }
        caches.invalidated()
    }

    mutating func finishPageRequest(_ request: PageRequest, address: UInt64, nextTail: Int, epoch: UInt64,
                                    written: Bool, effects: inout Effects) -> PageRequestOutcome {
        // Reset while the descriptor was being written: the queue it was meant for is gone.
        guard pageRequests.finishWrite(nextTail: nextTail, epoch: epoch, written: written, effects: &effects) else {
            return .dropped(autoResponse: nil)
        }
        guard written else {
            effects.log(.guestError, "page request queue entry at 0x\(String(address, radix: 16)) is not writable")
            return .dropped(autoResponse: respondForUnit(request, .responseFailure, effects: &effects))
        }
        return .queued
    }

    private mutating func dropPageRequest(_ request: PageRequest, effects: inout Effects) -> PageRequestOutcome {
        .dropped(autoResponse: respondForUnit(request, .success, effects: &effects))
    }

    /// The unit answers a request software will never see, when the device waits for an answer.
    private func respondForUnit(_ request: PageRequest, _ code: PageGroupResponseCode,
                                effects: inout Effects) -> PageGroupResponseCode? {
        guard request.needsResponse else { return nil }
        effects.events.append(.pageGroupResponse(sid: request.sourceID, pasid: request.pasid,
                                                 groupIndex: request.groupIndex, responseCode: code.rawValue))
        return code
    }

    /// Software's page group response (invalidation queue descriptor type 9) for the device.
    /// Returns false for a descriptor the unit must refuse (invalidation queue error).
    mutating func deliverPageGroupResponse(_ descriptor: PageGroupResponseDescriptor, effects: inout Effects) -> Bool {
        guard configuration.pageRequests else {
            effects.log(.guestError, "page group response descriptor without page request support (ECAP.PRS clear)")
            return false
        }
        guard let code = descriptor.responseCode else {
            effects.log(.guestError, "page group response with reserved response code 0x"
                            + String((descriptor.low >> 12) & 0xF, radix: 16))
            return false
        }
        effects.events.append(.pageGroupResponse(sid: descriptor.requesterID,
                                                 pasid: descriptor.pasidPresent ? descriptor.pasid : nil,
                                                 groupIndex: descriptor.groupIndex, responseCode: code.rawValue))
        return true
    }
}

extension VTdUnit {
    /// A PRI-capable device asks for a page (PCIe page request message).
    public func pageRequest(_ request: PageRequest) -> PageRequestOutcome {
        var effects = Effects()
        let slot: PageRequestSlot
        switch state.withLock({ $0.beginPageRequest(request, effects: &effects) }) {
        case .slot(let decided):
            slot = decided
        case .readContext(let root):
            var walk = WalkResult()
            let context: Result<ScalableContextEntry, FaultReason>
            do throws(FaultReason) {
                context = .success(try translationEngine.readScalableContext(request.sourceID, root: root,
                                                                              platform: platform, into: &walk))
            } catch {
                context = .failure(error)
            }
            slot = state.withLock {
                $0.continuePageRequest(request, context: context, faultProcessingDisabled: walk.faultProcessingDisabled,
                                       effects: &effects)
            }
        }
        let outcome: PageRequestOutcome
        switch slot {
        case .done(let decided):
            outcome = decided
        case let .write(address, nextTail, epoch):
            let descriptor = PageRequestDescriptor(request)
            var words = (descriptor.words.0.littleEndian, descriptor.words.1.littleEndian,
                         descriptor.words.2.littleEndian, descriptor.words.3.littleEndian)
            let written = withUnsafeBytes(of: &words) { platform.writeGuest(address, from: $0) }
            outcome = state.withLock {
                $0.finishPageRequest(request, address: address, nextTail: nextTail, epoch: epoch, written: written,
                                     effects: &effects)
            }
        }
        if !effects.isEmpty { perform(&effects) }
        return outcome
    }
}

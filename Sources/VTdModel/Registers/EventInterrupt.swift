// Remapping hardware event interrupts (VT-d spec 5.1.6 / 11.4.x): the fault event, the
// invalidation completion event and the page request event. Each has a control register
// (IM mask, IP pending), a data register and a 64-bit address split over two registers.
//
// The rule is the same for all three: a new interrupt condition sets IP; unless IM is set the
// message goes out at once and IP clears. A masked condition stays pending in IP and goes out
// when software clears IM; software servicing the status that caused it clears IP instead.

/// FECTL / IECTL / PECTL.
public struct EventControl: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// IM, 31: interrupt message mask (set at reset).
    public static let interruptMask = EventControl(rawValue: 1 << 31)
    /// IP, 30: an interrupt condition is held pending.
    public static let interruptPending = EventControl(rawValue: 1 << 30)

    /// Only IM is software-writable; IP is hardware status.
    static let writable: UInt32 = interruptMask.rawValue
}

/// Which of the unit's three event interrupts.
public enum EventInterrupt: Sendable, CaseIterable {
    case fault
    case invalidationCompletion
    case pageRequest

    var control: Int {
        switch self {
        case .fault: Reg.faultEventControl
        case .invalidationCompletion: Reg.invalidationEventControl
        case .pageRequest: Reg.pageRequestEventControl
        }
    }
    var data: Int { control + 4 }
    var address: Int { control + 8 }
    var upperAddress: Int { control + 12 }

    /// FEDATA/IEDATA/PEDATA 15:0 (31:16 were extended data in old specs, reserved now).
    static let dataWritable: UInt32 = 0xFFFF
    /// FEADDR/IEADDR/PEADDR 31:2: a dword-aligned message address.
    static let addressWritable: UInt32 = 0xFFFF_FFFC
}

extension Effects {
    /// Puts `message` in the slot of `event` (fixed slots: no allocation).
    mutating func send(_ message: MSIMessage, for event: EventInterrupt) {
        switch event {
        case .fault: faultEvent = message
        case .invalidationCompletion: invalidationEvent = message
        case .pageRequest: pageRequestEvent = message
        }
    }
}

// The rule works on whichever register file holds the event's registers: the one of the
// sub-state that owns the event (the invalidation queue holds IECTL..IEUADDR).
extension RegisterFile {
    /// Declares the four registers of `event`. The upper address carries x2APIC destinations;
    /// without EIM it is reserved-zero.
    mutating func defineEventRegisters(_ event: EventInterrupt, extendedInterruptMode: Bool) {
        define(event.control, width: 4, reset: UInt64(EventControl.interruptMask.rawValue),
               writable: UInt64(EventControl.writable))
        define(event.data, width: 4, writable: UInt64(EventInterrupt.dataWritable))
        define(event.address, width: 4, writable: UInt64(EventInterrupt.addressWritable))
        define(event.upperAddress, width: 4, writable: extendedInterruptMode ? 0xFFFF_FFFF : 0)
    }

    func eventControl(_ event: EventInterrupt) -> EventControl {
        EventControl(rawValue: get32(event.control))
    }

    private mutating func setEventControl(_ event: EventInterrupt, _ value: EventControl) {
        set32(event.control, value.rawValue)
    }

    /// The message the event registers describe now. The upper address is writable only with
    /// EIM, so it is 0 otherwise.
    func eventMessage(_ event: EventInterrupt) -> MSIMessage {
        let address = UInt64(get32(event.upperAddress)) << 32 | UInt64(get32(event.address))
        return MSIMessage(address: address, data: get32(event.data))
    }

    /// A new interrupt condition for `event`: pending while masked, sent otherwise.
    mutating func raiseEvent(_ event: EventInterrupt, effects: inout Effects) {
        var control = eventControl(event)
        if control.contains(.interruptMask) {
            control.insert(.interruptPending)
            setEventControl(event, control)
        } else {
            control.remove(.interruptPending)
            setEventControl(event, control)
            effects.send(eventMessage(event), for: event)
        }
    }

    /// After a write to the control register: unmasking delivers what was pending.
    mutating func eventControlWritten(_ event: EventInterrupt, effects: inout Effects) {
        var control = eventControl(event)
        guard control.contains(.interruptPending), !control.contains(.interruptMask) else { return }
        control.remove(.interruptPending)
        setEventControl(event, control)
        effects.send(eventMessage(event), for: event)
    }

    /// Software serviced every status bit behind `event`: nothing is pending any more.
    mutating func eventServiced(_ event: EventInterrupt) {
        var control = eventControl(event)
        guard control.contains(.interruptPending) else { return }
        control.remove(.interruptPending)
        setEventControl(event, control)
    }
}

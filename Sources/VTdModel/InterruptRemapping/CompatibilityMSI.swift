// The compatibility-format MSI the remapping unit delivers to the local APICs once it has
// remapped a request (Intel SDM vol. 3 "message address/data register format"): destination,
// destination mode and redirection hint in the address, vector, delivery mode and trigger mode
// in the data. Destinations above 255 (x2APIC) put bits 31:8 of the id in address bits 63:40,
// the encoding QEMU's x86 IOMMUs and KVM's x2APIC MSI routing use.

public struct CompatibilityMSI: Equatable, Sendable {
    public var destination: UInt32
    public var logicalDestination: Bool
    public var redirectionHint: Bool
    public var vector: UInt8
    public var deliveryMode: DeliveryMode
    public var levelTriggered: Bool

    public init(destination: UInt32, logicalDestination: Bool = false, redirectionHint: Bool = false,
                vector: UInt8, deliveryMode: DeliveryMode = .fixed, levelTriggered: Bool = false) {
        self.destination = destination
        self.logicalDestination = logicalDestination
        self.redirectionHint = redirectionHint
        self.vector = vector
        self.deliveryMode = deliveryMode
        self.levelTriggered = levelTriggered
    }

    /// What an IRTE says to deliver, in the interrupt mode the table was latched with.
    public init(_ entry: IRTE, extendedInterruptMode: Bool) {
        self.init(destination: entry.destination(extended: extendedInterruptMode),
                  logicalDestination: entry.destinationModeLogical, redirectionHint: entry.redirectionHint,
                  vector: entry.vector, deliveryMode: entry.deliveryMode, levelTriggered: entry.levelTriggered)
    }

    public var address: UInt64 {
        var value: UInt64 = 0xFEE0_0000
        value |= UInt64(destination & 0xFF) << 12
        if redirectionHint { value |= 1 << 3 }
        if logicalDestination { value |= 1 << 2 }
        value |= UInt64(destination & 0xFFFF_FF00) << 32
        return value
    }

    public var data: UInt32 {
        var value = UInt32(vector) | UInt32(deliveryMode.rawValue) << 8
        // Level (bit 14) is "assert" for every message the unit generates.
        value |= 1 << 14
        if levelTriggered { value |= 1 << 15 }
        return value
    }

    public var message: MSIMessage { MSIMessage(address: address, data: data) }
}

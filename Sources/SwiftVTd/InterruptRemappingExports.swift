// swiftvtd_interrupt_remap: the C face of VTdUnit.remapInterrupt. Thin: check, convert, call.

import CSwiftVTd
import VTdModel

@_cdecl("swiftvtd_interrupt_remap")
public func swiftvtd_interrupt_remap(_ unit: OpaquePointer?, _ sid: UInt16, _ input: UnsafePointer<swiftvtd_msi>?,
                                     _ output: UnsafeMutablePointer<swiftvtd_msi>?, _ flags: UInt32) -> Int32 {
    guard let unit, let input, let output else { return SWIFTVTD_EINVAL.rawValue }
    let request = input.pointee
    guard request.reserved == 0, flags & ~SWIFTVTD_IRQ_NO_FAULT == 0 else { return SWIFTVTD_EINVAL.rawValue }
    let outcome = withHandle(unit) {
        $0.unit.remapInterrupt(sourceID: sid, address: request.address, data: request.data,
                               recordsFaults: flags & SWIFTVTD_IRQ_NO_FAULT == 0)
    }
    switch outcome {
    case .remapped(let message):
        output.pointee = swiftvtd_msi(address: message.address, data: message.data, reserved: 0)
        return Int32(SWIFTVTD_IRQ_REMAPPED.rawValue)
    case .passThrough:
        output.pointee = request
        return Int32(SWIFTVTD_IRQ_PASSTHROUGH.rawValue)
    case .blocked(let reason):
        return Int32(reason.rawValue)
    }
}

// swiftvtd_interrupt_remap: the C face of VTdUnit.remapInterrupt. Thin: check, convert, call.

import CSwiftVTd
import VTdModel

@_cdecl("swiftvtd_interrupt_remap")
public func swiftvtd_interrupt_remap(_ unit: OpaquePointer?, _ sid: UInt16, _ input: UnsafePointer<swiftvtd_msi>?,
                                     _ output: UnsafeMutablePointer<swiftvtd_msi>?, _ flags: UInt32) -> Int32 {
    guard let unit, let input, let output else { return SWIFTVTD_EINVAL.rawValue }
    let request = input.pointee
    guard request.reserved == 0, flags & ~SWIFTVTD_IRQ_NO_FAULT == 0 else { return SWIFTVTD_EINVAL.rawValue }
    return withHandle(unit) { handle in
        let outcome = handle.unit.remapInterrupt(sourceID: RequesterID(rawValue: sid), address: request.address, data: request.data,
                                                 recordsFaults: flags & SWIFTVTD_IRQ_NO_FAULT == 0)
        let result: Int32
        switch outcome {
        case .remapped(let message):
            output.pointee = swiftvtd_msi(address: message.address, data: message.data, reserved: 0)
            result = Int32(SWIFTVTD_IRQ_REMAPPED.rawValue)
        case .passThrough:
            output.pointee = request
            result = Int32(SWIFTVTD_IRQ_PASSTHROUGH.rawValue)
        case .blocked(let reason):
            result = Int32(reason.rawValue)
        }
        handle.platform.trace(SWIFTVTD_TRACE_INTERRUPT_REMAP) { t in
            let address = InterruptRequestAddress(rawValue: request.address)
            t.sid = sid
            t.code = UInt32(bitPattern: result)
            t.addr = request.address
            t.words.0 = UInt64(request.data)
            if result == Int32(SWIFTVTD_IRQ_REMAPPED.rawValue) {
                t.words.1 = output.pointee.address
                t.words.2 = UInt64(output.pointee.data)
            }
            if address.isRemappable {
                let sub = address.subhandleValid ? InterruptRequestData(rawValue: request.data).subhandle : 0
                t.data = UInt64(address.handle &+ sub)
            }
        }
        return result
    }
}

@_cdecl("swiftvtd_interrupt_window")
public func swiftvtd_interrupt_window(_ unit: OpaquePointer?, _ base: UnsafeMutablePointer<UInt64>?,
                                      _ size: UnsafeMutablePointer<UInt64>?) {
    // The same for every unit: the architecture fixes it.
    let window = AddressRanges.interrupt
    base?.pointee = window.lowerBound
    size?.pointee = window.upperBound - window.lowerBound + 1
}

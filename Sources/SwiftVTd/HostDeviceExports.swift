// swiftvtd_host_device_attach / _detach and swiftvtd_machine_done: the C faces of HostDevices.
// Control calls, serialised with MMIO by the host.

import CSwiftVTd
import HostAttachment
import HostIOMMU
import VTdModel

@_cdecl("swiftvtd_host_device_attach")
public func swiftvtd_host_device_attach(_ unit: OpaquePointer?, _ sid: UInt16,
                                        _ dev: UnsafePointer<swiftvtd_host_device>?,
                                        _ err: UnsafeMutablePointer<CChar>?, _ errLength: Int) -> Int32 {
    guard let unit, let dev else {
        writeMessage("swiftvtd_host_device_attach: unit or device is NULL", to: err, length: errLength)
        return SWIFTVTD_EINVAL.rawValue
    }
    var d = swiftvtd_host_device()
    if let problem = SizedStruct.read(dev, into: &d, minimum: SizedStruct.hostDeviceMinimum, name: "host device") {
        writeMessage("swiftvtd_host_device_attach: \(problem)", to: err, length: errLength)
        return SWIFTVTD_EVERSION.rawValue
    }
    let legacy = d.flags & SWIFTVTD_HOST_DEVICE_LEGACY_CONTAINER != 0
    guard d.flags & ~SWIFTVTD_HOST_DEVICE_LEGACY_CONTAINER == 0,
          d.reserved.0 == 0, d.reserved.1 == 0, d.iova_bits <= 64,
          legacy || (d.iommufd >= 0 && d.device_fd >= 0 && d.dev_id != 0 && d.ioas_id != 0 && d.hwpt_id != 0)
    else {
        writeMessage("swiftvtd_host_device_attach: unknown flags, reserved bytes set, iova_bits above 64, "
                     + "or iommufd ids missing",
                     to: err, length: errLength)
        return SWIFTVTD_EINVAL.rawValue
    }
    let requester = RequesterID(rawValue: sid)
    let name = d.name.map { String(cString: $0) } ?? "host device at \(requester)"
    let device: AssignedDevice? = legacy ? nil : AssignedDevice(
        requesterID: requester, name: name, iommufd: d.iommufd, deviceFD: d.device_fd,
        deviceID: ObjectID(rawValue: d.dev_id), ioasID: ObjectID(rawValue: d.ioas_id),
        hwptID: ObjectID(rawValue: d.hwpt_id), hwptIsNestParent: d.hwpt_is_nest_parent != 0)
    return withHandle(unit) { handle in
        do throws(HostError) {
            // A legacy container's width comes from the host; an IOAS's the library asks itself.
            let lastIOVA: UInt64? = legacy && d.iova_bits > 0
                ? (d.iova_bits == 64 ? .max : (1 << UInt64(d.iova_bits)) - 1) : nil
            try handle.hostDevices.attach(sid: sid, HostDevices.Candidate(device: device, name: name,
                                                                          lastIOVA: lastIOVA))
            writeMessage("", to: err, length: errLength)
            return SWIFTVTD_OK.rawValue
        } catch {
            writeMessage("swiftvtd_host_device_attach \(name): \(error.message)", to: err, length: errLength)
            switch error.kind {
            case .invalidArgument: return SWIFTVTD_EINVAL.rawValue
            default: return SWIFTVTD_EUNSUPPORTED.rawValue
            }
        }
    }
}

@_cdecl("swiftvtd_host_device_detach")
public func swiftvtd_host_device_detach(_ unit: OpaquePointer?, _ sid: UInt16) -> Int32 {
    guard let unit else { return SWIFTVTD_EINVAL.rawValue }
    return withHandle(unit) { $0.hostDevices.detach(sid: sid) } ? SWIFTVTD_OK.rawValue : SWIFTVTD_ENOENT.rawValue
}

/// swiftvtd_host_mode as the negotiation names it; nil for an unknown value.
private func hostModeChoice(_ hostMode: UInt32) -> Negotiation.HostModeChoice? {
    switch hostMode {
    case SWIFTVTD_HOST_MODE_AUTO.rawValue: .auto
    case SWIFTVTD_HOST_MODE_NESTED.rawValue: .nested
    case SWIFTVTD_HOST_MODE_SHADOW.rawValue: .shadow
    default: nil
    }
}

@_cdecl("swiftvtd_machine_done")
public func swiftvtd_machine_done(_ unit: OpaquePointer?, _ hostMode: UInt32,
                                  _ decision: UnsafeMutablePointer<CChar>?, _ length: Int) -> Int32 {
    guard let unit else { return SWIFTVTD_EINVAL.rawValue }
    guard let choice = hostModeChoice(hostMode) else {
        writeMessage("swiftvtd_machine_done: unknown host mode \(hostMode)", to: decision, length: length)
        return SWIFTVTD_EINVAL.rawValue
    }
    return withHandle(unit) { handle in
        switch handle.hostDevices.decide(hostMode: choice) {
        case .success(let d):
            writeMessage(d.description, to: decision, length: length)
            return SWIFTVTD_OK.rawValue
        case .failure(let error):
            writeMessage("host mode: \(error.message)", to: decision, length: length)
            return error.kind == .invalidArgument ? SWIFTVTD_EINVAL.rawValue : SWIFTVTD_EUNSUPPORTED.rawValue
        }
    }
}

@_cdecl("swiftvtd_host_decision")
public func swiftvtd_host_decision(_ unit: OpaquePointer?) -> Int32 {
    guard let unit else { return SWIFTVTD_EINVAL.rawValue }
    switch withHandle(unit, { $0.hostDevices.decision?.mode }) {
    case .nested: return Int32(SWIFTVTD_HOST_MODE_NESTED.rawValue)
    case .shadow: return Int32(SWIFTVTD_HOST_MODE_SHADOW.rawValue)
    case .emulatedOnly, nil: return SWIFTVTD_ENOENT.rawValue
    }
}

@_cdecl("swiftvtd_host_view")
public func swiftvtd_host_view(_ unit: OpaquePointer?, _ hostMode: UInt32) -> UInt32 {
    // An unknown mode cannot be decided (machine_done refuses it): treat it as auto until then.
    guard let unit else { return 0 }
    let view = withHandle(unit) { $0.hostDevices.view(hostMode: hostModeChoice(hostMode) ?? .auto) }
    return (view.contains(.guestRAM) ? SWIFTVTD_VIEW_GUEST_RAM : 0) | (view.contains(.nestParent) ? SWIFTVTD_VIEW_NEST_PARENT : 0)
}

// The exported C ABI (CInterop/include/swiftvtd.h). Thin: check arguments, convert, call
// the model. A swiftvtd_t* is an unretained pointer to a `UnitHandle`; the hot entry
// points borrow it without retain/release.

import CSwiftVTd
import HostAttachment
import VTdModel

final class UnitHandle {
    let unit: VTdUnit
    /// The unit's lock-free hit path, kept here: a hit loads it from the handle.
    let cachedTranslator: CachedTranslator
    let platform: HostPlatform
    /// VFIO host devices and the host-mode decision (Sources/HostAttachment). Tests replace it,
    /// before any attach, with one whose ioctls reach a fake kernel.
    var hostDevices: HostDevices
    init(unit: VTdUnit, platform: HostPlatform) {
        self.unit = unit
        cachedTranslator = unit.cachedTranslator
        self.platform = platform
        hostDevices = HostDevices(unit: unit, reporter: platform)
    }

    deinit {
        // The unit holds the observer strongly; the observer holds the unit unowned.
        unit.setHostBindingObserver(nil)
    }
}

@inline(__always)
func withHandle<R>(_ raw: OpaquePointer, _ body: (UnitHandle) -> R) -> R {
    Unmanaged<UnitHandle>.fromOpaque(UnsafeRawPointer(raw))._withUnsafeGuaranteedRef(body)
}

/// Copies `message` into a C buffer, truncated and NUL-terminated.
func writeMessage(_ message: String, to buffer: UnsafeMutablePointer<CChar>?, length: Int) {
    guard let buffer, length > 0 else { return }
    var utf8 = Array(message.utf8.prefix(length - 1))
    utf8.append(0)
    utf8.withUnsafeBufferPointer { src in
        for (i, byte) in src.enumerated() { buffer[i] = CChar(bitPattern: byte) }
    }
}

@_cdecl("swiftvtd_abi_version")
public func swiftvtd_abi_version() -> UInt32 { SWIFTVTD_ABI_VERSION }

@_cdecl("swiftvtd_config_init")
public func swiftvtd_config_init(_ cfg: UnsafeMutablePointer<swiftvtd_config>?) {
    guard let cfg else { return }
    cfg.pointee = CConfiguration.encode(VTdConfiguration())
}

@_cdecl("swiftvtd_create")
public func swiftvtd_create(_ cfg: UnsafePointer<swiftvtd_config>?, _ ops: UnsafePointer<swiftvtd_host_ops>?,
                            _ err: UnsafeMutablePointer<CChar>?, _ errLength: Int) -> OpaquePointer? {
    guard let cfg else {
        writeMessage("swiftvtd_create: config is NULL", to: err, length: errLength)
        return nil
    }
    guard let ops else {
        writeMessage("swiftvtd_create: host ops are NULL", to: err, length: errLength)
        return nil
    }
    let configuration: VTdConfiguration
    switch CConfiguration.decode(cfg) {
    case .failure(let e):
        writeMessage(e.description, to: err, length: errLength)
        return nil
    case .success(let c):
        configuration = c
    }
    // 1.0 hosts pass 64-byte ops without `trace`: it reads as NULL.
    var hostOps = swiftvtd_host_ops()
    if let problem = SizedStruct.read(ops, into: &hostOps, minimum: SizedStruct.hostOpsMinimum, name: "host ops") {
        writeMessage("swiftvtd_create: \(problem)", to: err, length: errLength)
        return nil
    }
    guard hostOps.dma_read != nil, hostOps.dma_write != nil else {
        writeMessage("swiftvtd_create: dma_read and dma_write callbacks are required", to: err, length: errLength)
        return nil
    }
    let platform = HostPlatform(ops: hostOps, addressWidth: configuration.addressWidth)
    do {
        let unit = try VTdUnit(configuration: configuration, platform: platform)
        let handle = UnitHandle(unit: unit, platform: platform)
        return OpaquePointer(Unmanaged.passRetained(handle).toOpaque())
    } catch {
        writeMessage("swiftvtd_create: \(error.description)", to: err, length: errLength)
        return nil
    }
}

@_cdecl("swiftvtd_get_config")
public func swiftvtd_get_config(_ unit: OpaquePointer?, _ cfg: UnsafeMutablePointer<swiftvtd_config>?) -> Int32 {
    guard let unit, let cfg else { return SWIFTVTD_EINVAL.rawValue }
    let size = Int(UnsafeRawPointer(cfg).load(as: UInt32.self))
    guard size >= SizedStruct.configMinimum else { return SWIFTVTD_EVERSION.rawValue }
    // A newer host's larger struct gets zeros past what this library knows.
    var resolved = CConfiguration.encode(withHandle(unit) { $0.unit.configuration })
    let raw = UnsafeMutableRawPointer(cfg)
    let known = MemoryLayout<swiftvtd_config>.size
    withUnsafeBytes(of: &resolved) { raw.copyMemory(from: $0.baseAddress!, byteCount: min(size, known)) }
    if size > known { (raw + known).initializeMemory(as: UInt8.self, repeating: 0, count: size - known) }
    raw.storeBytes(of: UInt32(size), as: UInt32.self)
    return SWIFTVTD_OK.rawValue
}

@_cdecl("swiftvtd_destroy")
public func swiftvtd_destroy(_ unit: OpaquePointer?) {
    guard let unit else { return }
    Unmanaged<UnitHandle>.fromOpaque(UnsafeRawPointer(unit)).release()
}

@_cdecl("swiftvtd_reset")
public func swiftvtd_reset(_ unit: OpaquePointer?) {
    guard let unit else { return }
    withHandle(unit) { $0.unit.reset() }
}

@_cdecl("swiftvtd_mmio_size")
public func swiftvtd_mmio_size(_ unit: OpaquePointer?) -> UInt64 {
    guard let unit else { return 0 }
    return withHandle(unit) { UInt64($0.unit.windowSize) }
}

@_cdecl("swiftvtd_mmio_read")
public func swiftvtd_mmio_read(_ unit: OpaquePointer?, _ offset: UInt64, _ size: UInt32) -> UInt64 {
    guard let unit else { return 0 }
    // Out-of-range offsets and sizes reach the model, which ignores and logs them.
    return withHandle(unit) { $0.unit.mmioRead(offset: Int(clamping: offset), width: Int(clamping: size)) }
}

@_cdecl("swiftvtd_mmio_write")
public func swiftvtd_mmio_write(_ unit: OpaquePointer?, _ offset: UInt64, _ value: UInt64, _ size: UInt32) {
    guard let unit else { return }
    withHandle(unit) { $0.unit.mmioWrite(offset: Int(clamping: offset), value: value, width: Int(clamping: size)) }
}

// MARK: Translation (hot: any thread, no retain/release, no allocation on an IOTLB hit)

@_cdecl("swiftvtd_translate")
public func swiftvtd_translate(_ unit: OpaquePointer?, _ req: UnsafePointer<swiftvtd_translate_request>?,
                               _ out: UnsafeMutablePointer<swiftvtd_translation>?) -> Int32 {
    guard let unit, let req, let out else { return SWIFTVTD_EINVAL.rawValue }
    let r = req.pointee
    let knownAccess = UInt8(SWIFTVTD_ACCESS_READ.rawValue | SWIFTVTD_ACCESS_WRITE.rawValue | SWIFTVTD_ACCESS_EXEC.rawValue)
    let knownFlags = UInt8(SWIFTVTD_REQ_PRIVILEGED | SWIFTVTD_REQ_ATS | SWIFTVTD_REQ_NO_FAULT)
    guard r.access != 0, r.access & ~knownAccess == 0, r.flags & ~knownFlags == 0 else {
        return SWIFTVTD_EINVAL.rawValue
    }
    // PASIDs are 20 bits.
    if r.pasid != SWIFTVTD_NO_PASID && r.pasid > PASID.maximum { return SWIFTVTD_EINVAL.rawValue }
    // The IOTLB hit first: no request value, no outcome to convert.
    if r.flags & UInt8(SWIFTVTD_REQ_ATS) == 0,
       let t = withHandle(unit, {
           $0.cachedTranslator.translation(sourceID: RequesterID(rawValue: r.sid), pasid: PASID?(abi: r.pasid),
                                           address: r.addr, access: Permissions(rawValue: r.access),
                                           privileged: r.flags & UInt8(SWIFTVTD_REQ_PRIVILEGED) != 0)
       }) {
        out.pointee = swiftvtd_translation(translated: t.translated, page_mask: t.pageMask,
                                           perm: UInt32(t.permissions.rawValue),
                                           kind: UInt8(SWIFTVTD_XLATE_OK.rawValue), fault_reason: 0, identity: 0,
                                           reserved: 0)
        return SWIFTVTD_OK.rawValue
    }
    return translateLocked(unit, req, out)
}

/// `swiftvtd_translate` past the lock-free hit (kept out of line: the hit path stays small, and
/// reads the request again rather than keeping its fields alive across the hit's call).
@inline(never)
func translateLocked(_ unit: OpaquePointer, _ req: UnsafePointer<swiftvtd_translate_request>,
                     _ out: UnsafeMutablePointer<swiftvtd_translation>) -> Int32 {
    let r = req.pointee
    let request = TranslationRequest(
        sourceID: RequesterID(rawValue: r.sid), pasid: PASID?(abi: r.pasid), address: r.addr, access: Permissions(rawValue: r.access),
        privileged: r.flags & UInt8(SWIFTVTD_REQ_PRIVILEGED) != 0,
        isTranslationRequest: r.flags & UInt8(SWIFTVTD_REQ_ATS) != 0,
        recordsFaults: r.flags & UInt8(SWIFTVTD_REQ_NO_FAULT) == 0)
    let outcome = withHandle(unit) { $0.unit.translateMissed(request) }
    var result = swiftvtd_translation()
    switch outcome {
    case .translated(let t):
        result.translated = t.translated
        result.page_mask = t.pageMask
        result.perm = UInt32(t.permissions.rawValue)
        result.kind = UInt8(SWIFTVTD_XLATE_OK.rawValue)
        result.identity = t.identity ? 1 : 0
    case .fault(let reason):
        result.kind = UInt8(SWIFTVTD_XLATE_FAULT.rawValue)
        result.fault_reason = reason.rawValue
    }
    out.pointee = result
    return SWIFTVTD_OK.rawValue
}

// MARK: The view a device's DMA is given

@_cdecl("swiftvtd_dma_view")
public func swiftvtd_dma_view(_ unit: OpaquePointer?, _ sid: UInt16) -> Int32 {
    guard let unit else { return SWIFTVTD_EINVAL.rawValue }
    switch withHandle(unit, { $0.unit.dmaView(sourceID: RequesterID(rawValue: sid)) }) {
    case .translated: return Int32(SWIFTVTD_DMA_VIEW_TRANSLATED)
    case .untranslated: return Int32(SWIFTVTD_DMA_VIEW_UNTRANSLATED)
    }
}

// MARK: Which trace records to build

@_cdecl("swiftvtd_set_trace_kinds")
public func swiftvtd_set_trace_kinds(_ unit: OpaquePointer?, _ kinds: UInt32) -> Int32 {
    guard let unit else { return SWIFTVTD_EINVAL.rawValue }
    withHandle(unit) { handle in
        handle.platform.setWantedTraceKinds(kinds)
        handle.unit.setTraceKinds(TraceKinds(abiBits: kinds))
    }
    return SWIFTVTD_OK.rawValue
}

// MARK: Notifiers and replay

@_cdecl("swiftvtd_set_notifier")
public func swiftvtd_set_notifier(_ unit: OpaquePointer?, _ sid: UInt16, _ pasid: UInt32, _ flags: UInt32) -> Int32 {
    swiftvtd_set_notifications(unit, sid, pasid, flags, nil, 0)
}

@_cdecl("swiftvtd_set_notifications")
public func swiftvtd_set_notifications(_ unit: OpaquePointer?, _ sid: UInt16, _ pasid: UInt32, _ flags: UInt32,
                                       _ err: UnsafeMutablePointer<CChar>?, _ errLength: Int) -> Int32 {
    guard let unit, flags & ~NotificationKinds.all.rawValue == 0,
          pasid == SWIFTVTD_NO_PASID || pasid <= PASID.maximum else {
        writeMessage("swiftvtd_set_notifier: unknown flags or a PASID over 20 bits", to: err, length: errLength)
        return SWIFTVTD_EINVAL.rawValue
    }
    return withHandle(unit) { handle in
        do throws(NotifierError) {
            try handle.unit.setNotifications(NotificationKinds(rawValue: flags), sourceID: RequesterID(rawValue: sid),
                                             pasid: PASID?(abi: pasid))
            writeMessage("", to: err, length: errLength)
            return SWIFTVTD_OK.rawValue
        } catch {
            handle.platform.log(.unimplemented, "swiftvtd_set_notifier: \(error.description)")
            writeMessage(error.description, to: err, length: errLength)
            return SWIFTVTD_EUNSUPPORTED.rawValue
        }
    }
}

@_cdecl("swiftvtd_replay")
public func swiftvtd_replay(_ unit: OpaquePointer?, _ sid: UInt16, _ pasid: UInt32) -> Int32 {
    guard let unit, pasid == SWIFTVTD_NO_PASID || pasid <= PASID.maximum else { return SWIFTVTD_EINVAL.rawValue }
    let count = withHandle(unit) { $0.unit.replay(sourceID: RequesterID(rawValue: sid), pasid: PASID?(abi: pasid)) }
    return Int32(clamping: count)
}

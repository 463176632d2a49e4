/// Decides, once at machine-init-done, how assigned devices are translated, and therefore what the
/// guest is shown. The rule (DESIGN "Key decisions"): if every assigned device can nest, expose
/// first-level translation (FLTS) and bind guest tables through iommufd; otherwise expose second-level
/// (SLTS) with caching mode and shadow. Never FLTS while shadowing: a guest does not invalidate after
/// first-level maps, so new mappings would never reach the host.
public enum Negotiation {
    /// An on/off/auto device property.
    public enum Switch: String, Sendable {
        case on, off, auto
    }

    /// The property that forces a host mode ("auto" lets the devices decide).
    public enum HostModeChoice: String, Sendable {
        case auto, nested, shadow
    }

    /// What the user asked for.
    public struct Properties: Sendable {
        /// x-scalable-mode: first-level translation exists only in scalable mode.
        public var scalableMode: Bool
        /// x-flts. `on` demands nesting when devices are assigned; `auto` lets the devices decide.
        public var flts: Switch
        /// caching-mode. Both host modes need it with assigned devices: shadowing to see every map,
        /// nesting to hear about newly programmed PASID entries (a guest without CM only flushes the
        /// write buffer after filling a not-present entry).
        public var cachingMode: Switch
        public var hostMode: HostModeChoice

        public init(scalableMode: Bool = true, flts: Switch = .auto, cachingMode: Switch = .auto, hostMode: HostModeChoice = .auto) {
            self.scalableMode = scalableMode
            self.flts = flts
            self.cachingMode = cachingMode
            self.hostMode = hostMode
        }
    }

    /// One assigned device as negotiation sees it.
    public struct Candidate: Sendable {
        public var name: String
        /// IOMMU_GET_HW_INFO's answer; nil when the device is not on iommufd (legacy VFIO container).
        public var info: HostIOMMUInfo?
        /// The highest IOVA its IOAS can map; nil when not known (legacy VFIO container).
        public var lastIOVA: UInt64?

        public init(name: String, info: HostIOMMUInfo?, lastIOVA: UInt64? = nil) {
            self.name = name
            self.info = info
            self.lastIOVA = lastIOVA
        }
    }

    public enum Mode: String, Sendable {
        /// No assigned device: the properties alone decide what the guest sees.
        case emulatedOnly = "emulated only"
        case nested = "nested first-level"
        case shadow = "shadow second-level"
    }

    public struct Decision: Sendable, CustomStringConvertible {
        public var mode: Mode
        /// ECAP.FLTS.
        public var exposeFirstLevel: Bool
        /// ECAP.SLTS (scalable mode only).
        public var exposeSecondLevel: Bool
        /// CAP.CM.
        public var cachingMode: Bool
        /// One line for the log and the state dump.
        public var description: String
    }

    public static func decide(
        _ properties: Properties, guest: GuestCapabilityProfile, devices: [Candidate]
    ) -> Result<Decision, HostError> {
        guard !devices.isEmpty else { return .success(emulatedOnly(properties)) }
        var refusals = nestingRefusals(devices, guest: guest)
        if guest.addressWidth < AddressRanges.firstLevelMinimumWidth {
            // Nesting binds the guest's first-level tables, and 4-level first-level translation
            // covers 48 bits: a narrower unit cannot offer it, whatever the devices can do.
            refusals.insert("aw-bits=\(guest.addressWidth): first-level translation needs aw-bits of at least "
                            + "\(AddressRanges.firstLevelMinimumWidth)", at: 0)
        }
        let names = devices.map(\.name).joined(separator: ", ")
        do throws(HostError) {
            let nested = try nests(properties, refusals: refusals)
            if properties.cachingMode == .off {
                let why =
                    nested
                    ? "the guest would not report newly programmed PASID entries, so its first-level tables could not be bound"
                    : "guest map changes would never reach the host"
                throw HostError(.configuration, "caching-mode=off with assigned devices (\(names)): \(why)")
            }
            if !nested { try checkShadowWidth(devices, guest: guest) }
            return .success(nested ? nestedDecision(names) : shadowDecision(properties, refusals: refusals))
        } catch {
            return .failure(error)
        }
    }

    /// Shadowing maps guest IOVAs into each device's IOAS as they are: every IOVA the guest may use
    /// (aw-bits) must be one the IOAS can map, or a mapping above its last one would fail on the
    /// host while the guest believes it made it (QEMU's intel-iommu refuses the same way).
    public static func checkShadowWidth(_ devices: [Candidate], guest: GuestCapabilityProfile) throws(HostError) {
        let narrow = devices.filter { $0.lastIOVA.map { addressBits(below: $0) < guest.addressWidth } ?? false }
        guard !narrow.isEmpty else { return }
        let hostBits = narrow.compactMap(\.lastIOVA).map(addressBits(below:)).min() ?? 0
        let fitting = [48, 39].first { $0 <= hostBits }
        throw HostError(
            .configuration,
            "aw-bits=\(guest.addressWidth) lets the guest map IOVAs that shadowing cannot carry: "
                + narrow.map { "\($0.name): its host IOAS maps IOVAs up to 0x\(String($0.lastIOVA ?? 0, radix: 16))" }
                    .joined(separator: "; ")
                + (fitting.map { " (set aw-bits=\($0), or use a host that can nest)" } ?? " (use a host that can nest)"))
    }

    /// The widest n such that every IOVA below 2^n is at most `last`.
    static func addressBits(below last: UInt64) -> Int {
        last == .max ? 64 : 63 - (last + 1).leadingZeroBitCount
    }

    /// No assigned device: CAP/ECAP as the properties ask.
    private static func emulatedOnly(_ properties: Properties) -> Decision {
        let sm = properties.scalableMode
        let flts = sm && properties.flts == .on
        let cm = properties.cachingMode == .on
        return Decision(
            mode: .emulatedOnly, exposeFirstLevel: flts, exposeSecondLevel: sm && !flts, cachingMode: cm,
            description: "host mode: emulated only (no assigned devices); "
                + flags(flts: flts, slts: sm && !flts, cm: cm, scalable: sm))
    }

    /// Why each device that cannot nest cannot, one line each; empty when every device can.
    private static func nestingRefusals(_ devices: [Candidate], guest: GuestCapabilityProfile) -> [String] {
        devices.compactMap { device in
            guard let info = device.info else { return "\(device.name): not on iommufd (legacy VFIO container)" }
            let problems = CapabilityAudit.nestingProblems(info, guest: guest)
            return problems.isEmpty ? nil : "\(device.name): " + problems.joined(separator: "; ")
        }
    }

    /// Whether to nest: what the properties force, else whether every device can. Throws when the
    /// properties contradict each other or force what the devices cannot do.
    private static func nests(_ properties: Properties, refusals: [String]) throws(HostError) -> Bool {
        let wantsNested = properties.hostMode == .nested || properties.flts == .on
        let wantsShadow = properties.hostMode == .shadow || properties.flts == .off
        if wantsNested && wantsShadow {
            let why =
                properties.hostMode == .nested
                ? "host mode nested needs x-flts, but x-flts=off"
                : "x-flts=on needs nesting, but the host mode is forced to shadow"
            throw HostError(.configuration, "\(why): first-level tables cannot be shadowed")
        }
        if wantsShadow { return false }
        if !wantsNested { return properties.scalableMode && refusals.isEmpty }
        if !properties.scalableMode {
            throw HostError(.configuration, "nesting needs x-scalable-mode=on (first-level translation is scalable-mode only)")
        }
        if !refusals.isEmpty {
            let forcedBy = properties.hostMode == .nested ? "host mode nested" : "x-flts=on"
            throw HostError(
                .configuration,
                "\(forcedBy) needs every assigned device to nest, but " + refusals.joined(separator: "; ")
                    + " (use host-mode=auto to fall back to shadowing, or host-mode=shadow)")
        }
        return true
    }

    private static func nestedDecision(_ names: String) -> Decision {
        Decision(
            mode: .nested, exposeFirstLevel: true, exposeSecondLevel: false, cachingMode: true,
            description: "host mode: nested first-level; " + flags(flts: true, slts: false, cm: true, scalable: true)
                + "; every assigned device can nest: \(names)")
    }

    private static func shadowDecision(_ properties: Properties, refusals: [String]) -> Decision {
        let sm = properties.scalableMode
        return Decision(
            mode: .shadow, exposeFirstLevel: false, exposeSecondLevel: sm, cachingMode: true,
            description: "host mode: shadow second-level; " + flags(flts: false, slts: sm, cm: true, scalable: sm)
                + "; \(shadowReason(properties, refusals: refusals))")
    }

    /// Why the decision is to shadow, for the decision line.
    private static func shadowReason(_ properties: Properties, refusals: [String]) -> String {
        if properties.hostMode == .shadow { return "forced by host mode shadow" }
        if properties.flts == .off { return "x-flts=off" }
        if !properties.scalableMode { return "legacy mode (x-scalable-mode=off) has no first-level translation" }
        return "not every device can nest: " + refusals.joined(separator: "; ")
    }

    private static func flags(flts: Bool, slts: Bool, cm: Bool, scalable: Bool) -> String {
        let level = scalable ? "FLTS=\(flts ? 1 : 0) SLTS=\(slts ? 1 : 0)" : "legacy"
        return "\(level) CM=\(cm ? 1 : 0)"
    }
}

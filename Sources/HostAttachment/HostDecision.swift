// swiftvtd_machine_done's work: the host-mode decision for the devices attached so far, the
// capabilities it fixes, and the nested backend it starts.

import HostIOMMU
import VTdModel

extension HostDevices {
    /// Decides the host mode, fixes the unit's capabilities and binds the devices.
    public func decide(hostMode: Negotiation.HostModeChoice) -> Result<Negotiation.Decision, HostError> {
        let configuration = unit.configuration
        let candidates = state.withLock { s in s.candidates.sorted { $0.key < $1.key }.map(\.value) }
        if state.withLock({ $0.decision != nil }) {
            return .failure(HostError(.invalidArgument, "the host mode was already decided"))
        }
        let properties = Negotiation.Properties(
            scalableMode: configuration.scalableMode, flts: configuration.firstLevel ? .on : .auto,
            cachingMode: configuration.cachingMode ? .on : .auto, hostMode: hostMode)
        let guest = Self.guestProfile(configuration)
        let result = Negotiation.decide(properties, guest: guest,
                                        devices: candidates.map(\.negotiated))
        guard case .success(var decision) = result else { return result }
        if decision.mode == .emulatedOnly {
            // Nothing is renegotiated: say what the guest sees, library-only properties included.
            decision.description = "host mode: emulated only (no assigned devices); " + Self.shownFlags(configuration)
        } else {
            do throws(ConfigurationError) {
                try unit.adoptHostDecision(cachingMode: decision.cachingMode, firstLevel: decision.exposeFirstLevel)
            } catch {
                return .failure(HostError(.configuration, "\(decision.description): \(error.description)"))
            }
        }
        // Negotiation chose nesting only if every device is on iommufd.
        let nesting = decision.mode == .nested ? candidates.compactMap(\.device) : nil
        do throws(HostError) {
            try state.withLock { s throws(HostError) in
                if let nesting { s.nested = try Self.startNesting(guest: guest, devices: nesting, seam: s.seam) }
                s.decision = decision
            }
        } catch {
            return .failure(HostError(error.kind, "\(decision.description), but: \(error.message)"))
        }
        if nesting != nil { unit.setHostBindingObserver(self) }
        // Every run without assigned devices would print it: a trace line then, a log line otherwise.
        reporter.log(decision.mode == .emulatedOnly ? .trace : .info, decision.description)
        return .success(decision)
    }

    /// A nested backend that adopted every device; on a refusal, the devices adopted before it are
    /// given back and the refusal thrown.
    private static func startNesting(guest: GuestCapabilityProfile, devices: [AssignedDevice], seam: IoctlSeam)
        throws(HostError) -> NestedBackend
    {
        let backend = NestedBackend(guest: guest, seam: seam)
        for device in devices {
            do throws(HostError) { try backend.adopt(device) } catch {
                for adopted in backend.assignedDevices { try? backend.release(adopted.requesterID) }
                throw error
            }
        }
        return backend
    }

    /// The translation capabilities the guest sees, for the decision line.
    static func shownFlags(_ c: VTdConfiguration) -> String {
        guard c.scalableMode else { return "legacy CM=\(c.cachingMode ? 1 : 0)" }
        let slts = !c.firstLevel || c.secondLevelWithFirstLevel
        return "FLTS=\(c.firstLevel ? 1 : 0) SLTS=\(slts ? 1 : 0) NEST=\(c.nesting ? 1 : 0) CM=\(c.cachingMode ? 1 : 0)"
    }

    /// What the guest will be shown, as the host's capability audit needs it.
    static func guestProfile(_ c: VTdConfiguration) -> GuestCapabilityProfile {
        GuestCapabilityProfile(
            addressWidth: c.addressWidth, firstStage1GPages: c.firstLevel1GPages, firstStage5Level: c.firstLevel5Level,
            supervisorRequests: false, extendedAccessed: false, pasidWidth: c.pasid ? c.pasidBits : 0)
    }
}

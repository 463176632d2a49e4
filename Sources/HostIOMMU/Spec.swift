// The host backends speak the spec's identifiers and register layouts; their users get them
// with HostIOMMU.
@_exported import VTdSpec

// The model is written in the spec's layouts and identifiers; its users get them with VTdModel.
@_exported import VTdSpec

"""gridex generated protobuf code lives under :mod:`gridex.v1`."""

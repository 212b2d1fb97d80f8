"""Generated protobuf and gRPC code for the ``gridex.v1`` API (see ``*.proto`` beside this file)."""

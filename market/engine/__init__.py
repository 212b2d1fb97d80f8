"""The market engine: interval lifecycle, journal, gRPC servicers (see docs/engine.md)."""

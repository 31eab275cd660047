"""I/O shells that hold state outside a request: cache tiers (memory, Redis)."""

"""I/O shells that hold state outside a request: cache tiers, quota stores, cassette files."""

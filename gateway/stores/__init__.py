"""State behind small interfaces: cassette files (and, on other branches, cache and quota)."""

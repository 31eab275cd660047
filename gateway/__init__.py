"""harvest-gateway: a record-and-replay gateway and caching proxy for Harvest API v2."""

__version__ = "0.1.0"

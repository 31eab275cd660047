"""Configuration of the Harvest simulator."""

from __future__ import annotations

from dataclasses import dataclass

RETRY_AFTER_MODES = ("always", "never", "alternate")


@dataclass(kw_only=True)
class SimConfig:
    """Knobs of a :class:`~gateway.simulator.Simulator`.

    All fields may be changed at run time (e.g. ``sim.config.latency = 0.2``);
    the app reads them on every request.
    """

    general_limit: int = 100
    """Requests per ``general_window`` per account (every request, reports included)."""
    general_window: float = 15.0
    reports_limit: int = 100
    """``GET /v2/reports/*`` requests per ``reports_window``; also counted in the general limit."""
    reports_window: float = 900.0
    retry_after: str = "always"
    """Whether 429s carry ``Retry-After``: ``always``, ``never`` or ``alternate`` (flips)."""
    latency: float = 0.0
    """Seconds added to every response."""
    log_limit: int | None = None
    """Most requests kept in ``Simulator.log``; when it is full the older half is dropped.
    ``None`` keeps every request (tests count them). A long-running simulator needs a bound:
    every kept request is several objects the garbage collector walks on each full
    collection, which grew into pauses of a tenth of a second and more under load."""
    public_base: str | None = None
    """Origin for absolute links/Location, e.g. ``https://api.harvestapp.com``.

    ``None`` means the request's own ``scheme://host``."""
    location_prefix: str = "/api/v2"
    """Path prefix of the ``Location`` header of 201s.

    Real Harvest answers a ``POST /v2/clients`` with
    ``Location: https://api.harvestapp.com/api/v2/clients/<id>`` (observed), so the default
    is ``/api/v2``; set ``"/v2"`` to mirror the brief's simpler form."""

    def __post_init__(self) -> None:
        if self.retry_after not in RETRY_AFTER_MODES:
            raise ValueError(f"retry_after must be one of {RETRY_AFTER_MODES}")

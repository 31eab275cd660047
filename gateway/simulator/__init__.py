"""A Harvest API v2 simulator (plus the two Harvest ID endpoints) for tests and demos.

>>> sim = Simulator(SimConfig(general_limit=5, general_window=0.5))
>>> app = sim.app()  # serve with aiohttp; inspect sim.log, sim.count(), sim.max_in_window()
"""

from .app import SimRequest, Simulator
from .config import SimConfig
from .data import (
    ACCOUNT_ID_1,
    ACCOUNT_ID_2,
    ACCOUNTS,
    ADMIN_TOKEN_1,
    ADMIN_TOKEN_2,
    MEMBER_TOKEN_1,
    MEMBER_TOKEN_2,
    NO_ACCESS_TOKEN,
    OUTSIDER_TOKEN,
    REFRESH_TOKEN_1,
    REFRESH_TOKEN_2,
    headers_for,
)
from .faults import Fault, FaultPlan

__all__ = [
    "ACCOUNTS",
    "ACCOUNT_ID_1",
    "ACCOUNT_ID_2",
    "ADMIN_TOKEN_1",
    "ADMIN_TOKEN_2",
    "MEMBER_TOKEN_1",
    "MEMBER_TOKEN_2",
    "NO_ACCESS_TOKEN",
    "OUTSIDER_TOKEN",
    "REFRESH_TOKEN_1",
    "REFRESH_TOKEN_2",
    "Fault",
    "FaultPlan",
    "SimConfig",
    "SimRequest",
    "Simulator",
    "headers_for",
]

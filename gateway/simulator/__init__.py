"""A Harvest API v2 simulator (plus the two Harvest ID endpoints) for tests and demos.

Usage::

    sim = Simulator(SimConfig(general_limit=5, general_window=0.5))
    client = await aiohttp_client(sim.app())
    await client.get("/v2/time_entries", headers=headers_for(ADMIN_TOKEN_1, "111111"))
    assert sim.max_in_window(0.5) <= 5

Standalone: ``python -m gateway.simulator --port 9001 [--general-limit N ...]``.

Decisions worth knowing (where real Harvest is unknown, the choice is marked *inferred*):

* Request pipeline order: fault injection and latency, then the rate limiter, then the
  400 checks (``User-Agent`` missing, GET with a body), then routing (unknown route or
  method -> Harvest's HTML 404, no auth needed), then auth (401), then the handler.
* Rate limiting counts every ``/v2`` or ``/api/v2`` request that carries an account id
  (header or ``?account_id=``), including ones later answered 400/401/403/404/422
  (*inferred*). Requests without an account id, Harvest ID calls and ``/__sim__`` calls
  are not counted. A 429 never takes a slot. ``SimRequest.counted`` says which did.
* Faults ``reset``, ``status:*`` and ``429`` pre-empt the request: it never reaches the
  limiter. ``delay:*`` and ``truncate`` let it through normally.
* A valid token used with an account it does not belong to gets the 401 ``invalid_token``
  (*inferred*); ``OUTSIDER_TOKEN`` belongs to no account.
* Members: 403 on users (list and other users), clients, contacts, task and user
  assignments, billing (roles, invoices, estimates and their item categories), on writes to
  clients/tasks/company and on PATCH of expenses; time entries, expenses and reports are
  filtered to their own records.
* Cursor-capable lists (users, clients, contacts, projects, tasks, expense_categories)
  are ordered newest id first and use cursor links unless ``page`` is sent.
  time_entries/expenses are ordered by spent_date then id, newest first, page-only.
* Task and user assignments put every task and person on every project (*inferred*), listed
  flat and per project (``projects/{id}/task_assignments``), page-only, newest id first.
  One is read under its project (``projects/{id}/task_assignments/{id}``), as on Harvest;
  ``task_assignments/{id}`` is a 404.
* Billing: roles (from the users' ``roles``), item categories, one invoice per
  client (paid, open, draft) and two estimates, with line items, listed page-only, newest
  id first; their messages and payments only under them (``invoices/{id}/messages``,
  ``invoices/{id}/payments``, ``estimates/{id}/messages``). The one write is a payment on an
  open invoice (``POST invoices/{id}/payments``): it lowers the due amount and, once nothing
  is due, marks the invoice paid; other invoice states refuse it with a 422 (*inferred*).
* ``Location`` of 201s uses ``/api/v2`` like real Harvest (observed);
  ``SimConfig.location_prefix="/v2"`` changes that. ``links`` use the prefix the
  client used. DELETE answers 200 with an empty body (documented behaviour).
* ``updated_at``/``created_at`` of writes come from the injected clock (its zero is
  2024-06-01T09:00:00Z), so a fake clock gives deterministic bodies and ETags.
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

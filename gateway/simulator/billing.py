"""An account's billing records, shaped as Harvest serves them: roles, invoice and estimate item
categories, and invoices and estimates with their line items, messages and payments.

Messages and payments are listed only under their invoice or estimate
(``invoices/{id}/messages``), and Harvest's records of them do not name it; so which one each
belongs to is kept beside them, in ``parents``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

Record = dict[str, Any]  # as data.Record (data builds its accounts with this module)
Collections = dict[str, dict[int, Record]]
Parents = dict[str, dict[int, int]]  # child collection → child id → parent id
Stamp = Callable[[float], str]

BILLING_COLLECTIONS = (
    "roles",
    "invoice_item_categories",
    "estimate_item_categories",
    "invoices",
    "invoice_messages",
    "invoice_payments",
    "estimates",
    "estimate_messages",
)


def _client_key(seed: str) -> str:
    return hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()


def _id(account_id: str, series: int, n: int) -> int:
    """Ids in the account's range (1150001 ...), beside the fixture's 111xxxx clients."""
    return int(account_id[:2]) * 10**5 + series * 10**3 + n


def add_billing(
    account_id: str, cols: Collections, parents: Parents, stamp: Stamp, sender: Record
) -> None:
    """Fill the billing collections of ``cols`` from the account's clients, projects and people;
    ``stamp(days)`` is the timestamp that many days before the simulator's epoch, ``sender``
    the admin who sends invoices."""
    who = {"id": sender["id"], "name": f"{sender['first_name']} {sender['last_name']}"}
    _roles(account_id, cols, stamp)
    for n, (name, service, expense) in enumerate(
        (("Service", True, False), ("Product", True, True), ("Expense", False, True))
    ):
        rid = _id(account_id, 60, n + 1)
        cols["invoice_item_categories"][rid] = {
            "id": rid, "name": name, "use_as_service": service, "use_as_expense": expense,
            "created_at": stamp(330 - n), "updated_at": stamp(330 - n),
        }  # fmt: skip
    for n, name in enumerate(("Service", "Product")):
        rid = _id(account_id, 61, n + 1)
        cols["estimate_item_categories"][rid] = {
            "id": rid, "name": name, "created_at": stamp(330 - n), "updated_at": stamp(330 - n)
        }  # fmt: skip
    states = ("paid", "open", "draft")
    for n, client in enumerate(sorted(cols["clients"].values(), key=lambda c: c["id"])):
        _invoice(account_id, cols, parents, stamp, who, client, n + 1, states[n % len(states)])
    for n, client in enumerate(sorted(cols["clients"].values(), key=lambda c: c["id"])[:2]):
        _estimate(account_id, cols, parents, stamp, who, client, n + 1, ("accepted", "sent")[n])


def _roles(account_id: str, cols: Collections, stamp: Stamp) -> None:
    by_role: dict[str, list[int]] = {}
    for user in cols["users"].values():
        for role in user["roles"]:
            by_role.setdefault(role, []).append(user["id"])
    for n, (name, user_ids) in enumerate(sorted(by_role.items())):
        rid = _id(account_id, 50, n + 1)
        cols["roles"][rid] = {
            "id": rid, "name": name, "user_ids": sorted(user_ids),
            "created_at": stamp(350 - n), "updated_at": stamp(40 - n),
        }  # fmt: skip


def _document(account_id: str, kind: str, series: int, cols: Collections, client: Record,
              n: int, state: str, issued: str, who: Record) -> Record:  # fmt: skip
    """The fields an invoice and an estimate share, with a line item per project of the client
    (an invoice's name their project, an estimate's do not)."""
    projects = sorted((p for p in cols["projects"].values() if p["client"]["id"] == client["id"]),
                      key=lambda p: p["id"])  # fmt: skip
    items: list[Record] = []
    for k, project in enumerate(projects):
        hours = 8.0 * (n + k + 1)
        ref = {"project": {f: project[f] for f in ("id", "name", "code")}}
        items.append({
            "id": _id(account_id, series + 1, 10 * n + k + 1), **(ref if kind == "invoice" else {}),
            "kind": "Service", "description": f"{project['name']}: design and production",
            "quantity": hours, "unit_price": project["hourly_rate"],
            "amount": round(hours * project["hourly_rate"], 2), "taxed": False, "taxed2": False,
        })  # fmt: skip
    did = _id(account_id, series, n)
    return {
        "id": did, "client_key": _client_key(f"{kind}:{did}"), "number": str(n),
        "purchase_order": "", "amount": round(sum(i["amount"] for i in items), 2), "tax": None,
        "tax_amount": 0.0, "tax2": None, "tax2_amount": 0.0, "discount": None,
        "discount_amount": 0.0, "subject": f"{client['name']}: {kind} {n}", "notes": "",
        "currency": client["currency"], "state": state, "issue_date": issued[:10],
        "created_at": issued, "client": {"id": client["id"], "name": client["name"]},
        "creator": who, "line_items": items,
    }  # fmt: skip


def _message(mid: int, who: Record, sender_email: str, client: Record, subject: str,
             event: str | None, when: str) -> Record:  # fmt: skip
    return {
        "id": mid, "sent_by": who["name"], "sent_by_email": sender_email,
        "sent_from": who["name"], "sent_from_email": sender_email,
        "recipients": [{"name": f"Accounts at {client['name']}",
                        "email": f"accounts@{client['name'].split()[0].lower()}.example"}],
        "subject": subject, "body": "Please find it attached.", "send_me_a_copy": False,
        "event_type": event, "created_at": when, "updated_at": when,
    }  # fmt: skip


def _invoice(account_id: str, cols: Collections, parents: Parents, stamp: Stamp, who: Record,
             client: Record, n: int, state: str) -> None:  # fmt: skip
    issued, paid = stamp(90 - 20 * n), state == "paid"
    invoice = _document(account_id, "invoice", 80, cols, client, n, state, issued, who)
    iid, amount = invoice["id"], invoice["amount"]
    cols["invoices"][iid] = {
        **invoice, "due_amount": 0.0 if paid else amount, "period_start": None,
        "period_end": None, "due_date": issued[:10], "payment_term": "upon receipt",
        "payment_options": ["credit_card"], "sent_at": None if state == "draft" else issued,
        "paid_at": stamp(60) if paid else None, "paid_date": stamp(60)[:10] if paid else None,
        "closed_at": None, "recurring_invoice_id": None, "updated_at": stamp(60 - n),
        "estimate": None, "retainer": None,
    }  # fmt: skip
    if state == "draft":
        return
    email = f"{who['name'].split()[0].lower()}@sim.example"
    mid = _id(account_id, 82, n)
    cols["invoice_messages"][mid] = {
        **_message(mid, who, email, client, f"Invoice #{n}", "send", issued),
        "include_link_to_client_invoice": False, "attach_pdf": True, "thank_you": False,
        "reminder": False, "send_reminder_on": None,
    }  # fmt: skip
    parents["invoice_messages"][mid] = iid
    if paid:
        pid = _id(account_id, 83, n)
        cols["invoice_payments"][pid] = {
            "id": pid, "amount": amount, "paid_at": stamp(60), "paid_date": stamp(60)[:10],
            "recorded_by": who["name"], "recorded_by_email": email, "notes": "Bank transfer",
            "transaction_id": None, "payment_gateway": {"id": None, "name": None},
            "created_at": stamp(60), "updated_at": stamp(60),
        }  # fmt: skip
        parents["invoice_payments"][pid] = iid


def _estimate(account_id: str, cols: Collections, parents: Parents, stamp: Stamp, who: Record,
              client: Record, n: int, state: str) -> None:  # fmt: skip
    issued = stamp(150 - 20 * n)
    answered = stamp(140 - 20 * n) if state == "accepted" else None
    estimate = _document(account_id, "estimate", 90, cols, client, n, state, issued, who)
    eid = estimate["id"]
    cols["estimates"][eid] = {**estimate, "sent_at": issued, "accepted_at": answered,
                              "declined_at": None, "updated_at": answered or issued}  # fmt: skip
    email = f"{who['name'].split()[0].lower()}@sim.example"
    events = [("send", issued)] + ([("accept", answered)] if answered else [])
    for k, (event, when) in enumerate(events):
        mid = _id(account_id, 92, 10 * n + k + 1)
        cols["estimate_messages"][mid] = _message(
            mid, who, email, client, f"Estimate #{n}", event, when
        )
        parents["estimate_messages"][mid] = eid

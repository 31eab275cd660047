"""Recording a payment against an invoice (``POST invoices/{id}/payments``): the one billing
write the simulator serves, because it changes what other reads answer (the invoice's due
amount and state, its list, its payments)."""

from __future__ import annotations

import math
import re

from .catalog import next_id
from .context import Ctx, as_int, parse_date
from .data import Record
from .responses import Reply, forbidden, json_reply, not_found, unprocessable


def _amount(raw: object) -> float | None:
    try:
        value = float(str(raw))
    except ValueError:
        return None
    return value if 0 < value < math.inf else None  # nan fails both


def record_payment(ctx: Ctx, m: re.Match[str]) -> Reply:
    if not ctx.is_admin:
        return forbidden()
    cols, parents = ctx.data.collections, ctx.data.parents["invoice_payments"]
    invoice = cols["invoices"].get(as_int(m.group("invoice")) or 0)
    if invoice is None:
        return not_found()
    params = ctx.params()
    amount = _amount(params.get("amount"))
    if amount is None:
        return unprocessable("Amount must be greater than 0")
    if invoice["state"] != "open":  # *inferred*: a draft, paid or closed invoice takes none
        return unprocessable("Payments can only be recorded on open invoices")
    day = parse_date(params.get("paid_date")) if params.get("paid_date") else ctx.now.date()
    if day is None:
        return unprocessable("Paid date is not a valid date")
    user = cols["users"][ctx.grant.user_id]
    now = ctx.now_iso()
    payment_id = next_id(ctx, "invoice_payments")
    payment: Record = {
        "id": payment_id, "amount": amount, "paid_at": now, "paid_date": day.isoformat(),
        "recorded_by": f"{user['first_name']} {user['last_name']}",
        "recorded_by_email": user["email"], "notes": params.get("notes") or "",
        "transaction_id": None, "payment_gateway": {"id": None, "name": None},
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    cols["invoice_payments"][payment_id] = payment
    parents[payment_id] = invoice["id"]
    invoice["due_amount"] = round(max(0.0, invoice["due_amount"] - amount), 2)
    invoice["updated_at"] = now
    if invoice["due_amount"] == 0:
        invoice.update(state="paid", paid_at=now, paid_date=day.isoformat())
    location = ctx.location(f"invoices/{invoice['id']}/payments/{payment_id}")
    return json_reply(payment, 201, {"Location": location})

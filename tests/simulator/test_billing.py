"""The simulator's billing records: roles, item categories, invoices and estimates (with line
items), and the messages and payments Harvest lists under each invoice or estimate."""

from __future__ import annotations

from typing import Any

from gateway.simulator import MEMBER_TOKEN_1, headers_for


async def listed(client: Any, path: str, headers: dict[str, str], **params: str) -> Any:
    resp = await client.get(path, params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_invoices_and_estimates_list_with_their_line_items(client, admin1):
    projects = (await listed(client, "/v2/projects", admin1))["projects"]
    invoices = (await listed(client, "/v2/invoices", admin1))["invoices"]
    assert {i["state"] for i in invoices} == {"paid", "open", "draft"}
    for invoice in invoices:
        mine = {p["id"] for p in projects if p["client"]["id"] == invoice["client"]["id"]}
        assert {item["project"]["id"] for item in invoice["line_items"]} == mine
        assert invoice["amount"] == sum(item["amount"] for item in invoice["line_items"])
        assert invoice["due_amount"] == (0.0 if invoice["state"] == "paid" else invoice["amount"])
        one = await listed(client, f"/v2/invoices/{invoice['id']}", admin1)
        assert one == invoice
    estimates = (await listed(client, "/v2/estimates", admin1))["estimates"]
    assert {e["state"] for e in estimates} == {"accepted", "sent"}
    assert all(e["line_items"] and "project" not in e["line_items"][0] for e in estimates)


async def test_messages_and_payments_are_listed_under_their_invoice(client, admin1):
    invoices = {i["state"]: i for i in (await listed(client, "/v2/invoices", admin1))["invoices"]}
    paid, draft = invoices["paid"]["id"], invoices["draft"]["id"]
    messages = await listed(client, f"/v2/invoices/{paid}/messages", admin1, per_page="1")
    assert [m["event_type"] for m in messages["invoice_messages"]] == ["send"]
    origin = str(client.make_url("/")).rstrip("/")
    assert messages["links"]["first"].startswith(f"{origin}/v2/invoices/{paid}/messages?")
    payments = (await listed(client, f"/v2/invoices/{paid}/payments", admin1))["invoice_payments"]
    assert [p["amount"] for p in payments] == [invoices["paid"]["amount"]]
    unsent = await listed(client, f"/v2/invoices/{draft}/messages", admin1)
    assert unsent["invoice_messages"] == []
    estimates = (await listed(client, "/v2/estimates", admin1))["estimates"]
    accepted = next(e["id"] for e in estimates if e["state"] == "accepted")
    events = await listed(client, f"/v2/estimates/{accepted}/messages", admin1)
    assert sorted(m["event_type"] for m in events["estimate_messages"]) == ["accept", "send"]
    assert (await client.get("/v2/invoices/999/messages", headers=admin1)).status == 404
    assert (await client.get("/v2/invoice_messages", headers=admin1)).status == 404


async def test_roles_name_the_users_who_hold_them(client, admin1):
    users = (await listed(client, "/v2/users", admin1))["users"]
    roles = (await listed(client, "/v2/roles", admin1))["roles"]
    assert {r["name"]: r["user_ids"] for r in roles} == {
        name: sorted(u["id"] for u in users if name in u["roles"])
        for name in {n for u in users for n in u["roles"]}
    }
    assert (await listed(client, "/v2/invoice_item_categories", admin1))["total_entries"] == 3
    assert (await listed(client, "/v2/estimate_item_categories", admin1))["total_entries"] == 2


async def test_members_see_no_billing(client):
    member = headers_for(MEMBER_TOKEN_1, "111111")
    for path in ("/v2/invoices", "/v2/estimates", "/v2/roles", "/v2/invoice_item_categories"):
        assert (await client.get(path, headers=member)).status == 403, path


async def test_a_payment_lowers_what_is_due_and_pays_the_invoice(client, admin1):
    invoices = (await listed(client, "/v2/invoices", admin1))["invoices"]
    by_state = {i["state"]: i for i in invoices}
    unpaid = by_state["open"]
    path = f"/v2/invoices/{unpaid['id']}/payments"
    part = await client.post(path, json={"amount": 100, "notes": "first part"}, headers=admin1)
    assert part.status == 201
    assert part.headers["Location"].endswith(f"/api{path}/{(await part.json())['id']}")
    after = await listed(client, f"/v2/invoices/{unpaid['id']}", admin1)
    assert (after["state"], after["due_amount"]) == ("open", unpaid["amount"] - 100)
    rest = await client.post(path, json={"amount": after["due_amount"]}, headers=admin1)
    assert rest.status == 201
    paid = await listed(client, f"/v2/invoices/{unpaid['id']}", admin1)
    assert (paid["state"], paid["due_amount"]) == ("paid", 0.0)
    payments = (await listed(client, path, admin1))["invoice_payments"]
    assert sorted(p["amount"] for p in payments) == sorted([100.0, unpaid["amount"] - 100])
    # Refused: nothing more on a paid invoice, none on a draft, no amount, a member's.
    for invoice, body, headers, status in (
        (paid, {"amount": 1}, admin1, 422),
        (by_state["draft"], {"amount": 1}, admin1, 422),
        (by_state["draft"], {"amount": "lots"}, admin1, 422),
        (by_state["draft"], {"amount": 1}, headers_for(MEMBER_TOKEN_1, "111111"), 403),
    ):
        resp = await client.post(f"/v2/invoices/{invoice['id']}/payments", json=body,
                                 headers=headers)  # fmt: skip
        assert resp.status == status, (invoice["state"], body)
    assert (await client.post("/v2/invoices/999/payments", json={"amount": 1},
                              headers=admin1)).status == 404  # fmt: skip

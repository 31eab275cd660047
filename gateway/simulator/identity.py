"""Harvest ID endpoints (id.getharvest.com) served on the same app.

``POST /api/v2/oauth2/token`` (refresh_token grant) and ``GET /api/v2/accounts``.
Client id/secret are not checked. Refresh tokens stay valid after use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from .data import ACCOUNTS, OUTSIDER_TOKEN, TOKENS, Grant
from .responses import Reply, invalid_grant, json_reply, unauthorized

TOKEN_PATH = "/api/v2/oauth2/token"
ACCOUNTS_PATH = "/api/v2/accounts"
ACCESS_TOKEN_TTL = 1209599  # seconds, as Harvest ID answers (14 days - 1 s)


@dataclass
class TokenIssuer:
    """OAuth access/refresh tokens issued by one simulator."""

    access: dict[str, Grant] = field(default_factory=dict)
    refresh: dict[str, Grant] = field(default_factory=dict)
    issued: int = 0

    def __post_init__(self) -> None:
        for acct in ACCOUNTS.values():
            self.refresh[acct.refresh_token] = TOKENS[acct.admin_token]

    def grant_for(self, token: str | None) -> Grant | None:
        if token is None:
            return None
        return TOKENS.get(token) or self.access.get(token)

    def token(self, body: bytes, content_type: str, query: Mapping[str, str]) -> Reply:
        params: dict[str, str] = dict(query)
        if body.strip():
            if "json" in content_type.lower():
                try:
                    loaded = json.loads(body)
                except ValueError:
                    loaded = None
                if isinstance(loaded, dict):
                    params.update({k: str(v) for k, v in loaded.items()})
            else:
                params.update(parse_qsl(body.decode("utf-8", "replace")))
        grant = self.refresh.get(params.get("refresh_token", ""))
        if params.get("grant_type") != "refresh_token" or grant is None:
            return invalid_grant()
        self.issued += 1
        access = f"sim-oauth-{grant.account_id}-{self.issued}"
        refresh = f"sim-refresh-{grant.account_id}-{self.issued}"
        self.access[access] = grant
        self.refresh[refresh] = grant
        return json_reply(
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_TTL,
            }
        )

    def accounts(self, token: str | None) -> Reply:
        if token == OUTSIDER_TOKEN:
            user = {
                "id": 9900001,
                "first_name": "Olive",
                "last_name": "Outsider",
                "email": "olive@outside.example",
            }
            return json_reply({"user": user, "accounts": []})
        grant = self.grant_for(token)
        if grant is None:
            return unauthorized()
        fx = ACCOUNTS[grant.account_id]
        person = next(p for p in fx.people if p.id == grant.user_id)
        return json_reply(
            {
                "user": {
                    "id": person.id,
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "email": person.email,
                },
                "accounts": [
                    {
                        "id": int(fx.account_id),
                        "name": fx.name,
                        "product": "harvest",
                        "google_sign_in_required": False,
                    }
                ],
            }
        )

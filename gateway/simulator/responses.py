"""Response values and Harvest's canned error bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_CT = "application/json; charset=utf-8"
HTML_CT = "text/html; charset=UTF-8"
TEXT_CT = "text/plain; charset=utf-8"

INVALID_TOKEN_DESCRIPTION = (
    "The access token provided is expired, revoked, malformed or invalid for other reasons."
)
INVALID_GRANT_DESCRIPTION = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)
GET_BODY_MESSAGE = "HTTP GET requests with a body are not accepted."
NOT_AUTHORIZED = "Not authorized!"

_NOT_FOUND_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta http-equiv="Pragma" content="no-cache" />
  <title>HARVEST: Can\u02bct find page</title>
  <style type="text/css">
    body { font: 12px/16px Helvetica, Arial, sans-serif; background: #e7e7e7; color: #333; }
    a { color: #F60; }
  </style>
</head>
<body>
  <div id="content">
    <h1>We can\u02bct find the page you were looking for.</h1>
    <p>The address may be mistyped, or the page may have moved.</p>
    <ul>
      <li><a href="https://www.getharvest.com/">Go to the Harvest home page</a></li>
      <li><a href="https://help.getharvest.com/api-v2/">Read the Harvest API v2 docs</a></li>
    </ul>
  </div>
</body>
</html>
"""


@dataclass
class Reply:
    """What a handler answers; the app adds the common Harvest headers."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON_CT
    headers: dict[str, str] = field(default_factory=dict)


def dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, dump(obj), JSON_CT, dict(headers or {}))


def message(status: int, text: str, *, hint: bool = False) -> Reply:
    return json_reply({"message": text}, status, {"Hint": text} if hint else None)


def unauthorized() -> Reply:
    challenge = (
        'Bearer realm="Rack::OAuth2 Protected Resources", error="invalid_token", '
        f'error_description="{INVALID_TOKEN_DESCRIPTION}"'
    )
    return Reply(
        401,
        dump({"error": "invalid_token", "error_description": INVALID_TOKEN_DESCRIPTION}),
        "application/json",
        {"WWW-Authenticate": challenge, "Cache-Control": "no-cache"},
    )


def forbidden() -> Reply:
    return message(403, NOT_AUTHORIZED, hint=True)


def not_found() -> Reply:
    return Reply(
        404, dump({"status": 404, "error": "Not Found"}), "application/json; charset=UTF-8"
    )


def route_not_found() -> Reply:
    return Reply(404, _NOT_FOUND_PAGE.encode(), HTML_CT)


def bad_request(text: str) -> Reply:
    return Reply(400, text.encode(), TEXT_CT)


def unprocessable(text: str) -> Reply:
    return message(422, text)


def too_many_requests(retry_after: int | None) -> Reply:
    headers = {"Cache-Control": "no-cache, no-store"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Reply(429, b"", "text/html", headers)


def invalid_grant() -> Reply:
    return json_reply(
        {"error": "invalid_grant", "error_description": INVALID_GRANT_DESCRIPTION}, 400
    )

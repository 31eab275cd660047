"""Per-request context handed to resource handlers, and request-parameter parsing."""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .data import AccountData, Grant, Record

_CREDENTIAL_KEYS = frozenset({"access_token", "account_id"})


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    content: bytes


@dataclass
class Ctx:
    method: str
    prefix: str
    """``/v2`` or ``/api/v2``: the prefix the client used."""
    path: str
    """Path below the prefix, without leading slash or ``.json`` suffix."""
    query: Mapping[str, str]
    body: bytes
    content_type: str
    base: str
    """Public origin, e.g. ``http://127.0.0.1:9001``."""
    location_prefix: str
    data: AccountData
    grant: Grant
    now: dt.datetime
    _params: dict[str, Any] | None = field(default=None, repr=False)
    _files: dict[str, Upload] = field(default_factory=dict, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.grant.is_admin

    def url(self, rel: str) -> str:
        return f"{self.base}{self.prefix}/{rel}"

    def location(self, rel: str) -> str:
        return f"{self.base}{self.location_prefix}/{rel}"

    def now_iso(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def params(self) -> dict[str, Any]:
        """Query string merged with the body (JSON, form or multipart); body wins."""
        if self._params is None:
            merged: dict[str, Any] = {
                k: v for k, v in self.query.items() if k not in _CREDENTIAL_KEYS
            }
            merged.update(self._body_params())
            self._params = merged
        return self._params

    def files(self) -> dict[str, Upload]:
        self.params()
        return self._files

    def _body_params(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        ctype = self.content_type.lower()
        if ctype.startswith("multipart/form-data"):
            return self._multipart()
        if "json" in ctype or self.body.lstrip()[:1] in (b"{", b"["):
            try:
                loaded = json.loads(self.body)
            except ValueError:
                return {}
            return loaded if isinstance(loaded, dict) else {}
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def _multipart(self) -> dict[str, Any]:
        head = f"Content-Type: {self.content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        out: dict[str, Any] = {}
        if not msg.is_multipart():
            return out
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                self._files[name] = Upload(filename, part.get_content_type(), content)
            else:
                out[name] = content.decode("utf-8", "replace")
        return out


def parse_date(value: Any) -> dt.date | None:
    """``YYYY-MM-DD`` or ``YYYYMMDD``; None when invalid."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def parse_datetime(value: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        d = parse_date(value)
        return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC) if d else None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def _nested_id(record: Record, name: str) -> Any:
    nested = record.get(name)
    if isinstance(nested, dict):
        return nested.get("id")
    return record.get(f"{name}_id")


def _id_check(name: str, wanted: int | None) -> Callable[[Record], bool]:
    return lambda r: _nested_id(r, name) == wanted


def _flag_check(name: str, flag: bool) -> Callable[[Record], bool]:
    return lambda r: name not in r or bool(r[name]) == flag


def _range_check(name: str, bound: str, *, lower: bool) -> Callable[[Record], bool]:
    if lower:
        return lambda r: str(r.get(name, bound)) >= bound
    return lambda r: str(r.get(name, bound)) <= bound


def build_filter(query: Mapping[str, str]) -> Callable[[Record], bool]:
    """The common Harvest list filters present in ``query``."""
    checks: list[Callable[[Record], bool]] = []
    for key, raw in query.items():
        if key in ("user_id", "client_id", "project_id", "task_id", "expense_category_id"):
            checks.append(_id_check(key[:-3], as_int(raw)))
        elif key in ("is_active", "is_billed", "is_running", "billable"):
            checks.append(_flag_check(key, as_bool(raw)))
        elif key in ("from", "to"):
            day = parse_date(raw)
            if day is not None:
                checks.append(_range_check("spent_date", day.isoformat(), lower=key == "from"))
        elif key == "updated_since":
            since = parse_datetime(raw)
            if since is not None:
                stamp = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                checks.append(_range_check("updated_at", stamp, lower=True))
    return lambda record: all(check(record) for check in checks)

"""Harvest's list envelope: page/per_page pagination and cursor pagination.

Links are absolute. Query parameters other than the pagination ones (and the
``access_token``/``account_id`` credentials, which are never echoed) are kept in the
links, all keys sorted, as Rails' ``to_query`` does.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

MAX_PER_PAGE = 2000
_PAGINATION_KEYS = frozenset({"page", "per_page", "cursor", "ref"})
_SECRET_KEYS = frozenset({"access_token", "account_id"})

Record = dict[str, Any]


class PaginationError(ValueError):
    """Bad pagination parameters (answered with 422)."""


@dataclass(frozen=True)
class Cursor:
    direction: str  # "after" | "before"
    id: int


def encode_cursor(direction: str, item_id: int) -> str:
    raw = json.dumps({direction: {"id": item_id}}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(value: str) -> Cursor:
    try:
        padded = value + "=" * (-len(value) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_")))
        (direction, ref), *rest = data.items()
        if rest or direction not in ("after", "before"):
            raise ValueError(direction)
        return Cursor(direction, int(ref["id"]))
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PaginationError("The cursor is invalid.") from exc


def parse_per_page(query: Mapping[str, str]) -> int:
    raw = query.get("per_page")
    if raw is None or raw == "":
        return MAX_PER_PAGE
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PER_PAGE:
        raise PaginationError(f"per_page must be between 1 and {MAX_PER_PAGE}")
    return value


def parse_page(query: Mapping[str, str]) -> int:
    try:
        return max(1, int(query.get("page", "1")))
    except ValueError:
        return 1


def _link(base_url: str, extra: Mapping[str, str], **params: str | int) -> str:
    merged: dict[str, str] = dict(extra)
    merged.update({k: str(v) for k, v in params.items()})
    return f"{base_url}?{urlencode(sorted(merged.items()))}"


def paginate(
    key: str,
    items: Sequence[Record],
    query: Mapping[str, str],
    base_url: str,
    *,
    cursor_capable: bool = False,
) -> Record:
    """Build Harvest's list envelope for ``items`` (already filtered and ordered).

    Cursor-capable lists use cursor links unless the client asked for ``page``; an
    explicit ``cursor`` wins over ``page``. Cursor order assumes ids descend.
    """
    per_page = parse_per_page(query)
    extra = {k: v for k, v in query.items() if k not in _PAGINATION_KEYS and k not in _SECRET_KEYS}
    total = len(items)
    total_pages = max(1, math.ceil(total / per_page))
    first = _link(base_url, extra, page=1, per_page=per_page, ref="first")
    last = _link(base_url, extra, page=total_pages, per_page=per_page, ref="last")
    use_cursor = cursor_capable and ("cursor" in query or "page" not in query)
    if not use_cursor:
        page = parse_page(query)
        start = (page - 1) * per_page
        chunk = list(items[start : start + per_page])
        next_page = page + 1 if page < total_pages else None
        previous_page = page - 1 if page > 1 else None
        return {
            key: chunk,
            "per_page": per_page,
            "total_pages": total_pages,
            "total_entries": total,
            "next_page": next_page,
            "previous_page": previous_page,
            "page": page,
            "links": {
                "first": first,
                "next": _link(base_url, extra, page=next_page, per_page=per_page, ref="next")
                if next_page
                else None,
                "previous": _link(
                    base_url, extra, page=previous_page, per_page=per_page, ref="previous"
                )
                if previous_page
                else None,
                "last": last,
            },
        }
    start, stop = _cursor_slice(items, query.get("cursor"), per_page)
    chunk = list(items[start:stop])
    at_start, at_end = start == 0, stop >= total
    page_no: int | None = None
    if at_start:
        page_no = 1
    elif at_end:
        page_no = total_pages
    next_link = prev_link = None
    if not at_end and chunk:
        cur = encode_cursor("after", int(chunk[-1]["id"]))
        next_link = _link(base_url, extra, cursor=cur, per_page=per_page, ref="next_cursor")
    if not at_start and chunk:
        cur = encode_cursor("before", int(chunk[0]["id"]))
        prev_link = _link(base_url, extra, cursor=cur, per_page=per_page, ref="previous_cursor")
    return {
        key: chunk,
        "per_page": per_page,
        "total_pages": total_pages,
        "total_entries": total,
        "next_page": (2 if not at_end else None) if at_start else None,
        "previous_page": (total_pages - 1 if total_pages > 1 else None)
        if at_end and not at_start
        else None,
        "page": page_no,
        "links": {"first": first, "next": next_link, "previous": prev_link, "last": last},
    }


def _cursor_slice(items: Sequence[Record], raw: str | None, per_page: int) -> tuple[int, int]:
    if raw is None:
        return 0, per_page
    cursor = decode_cursor(raw)
    ids = [int(item["id"]) for item in items]
    if cursor.direction == "after":
        start = next((i for i, v in enumerate(ids) if v < cursor.id), len(ids))
        return start, start + per_page
    stop = next((i for i, v in enumerate(ids) if v <= cursor.id), len(ids))
    return max(0, stop - per_page), stop
